"""skmoe against R flexmix on flexmix's own Poisson example (NPreg).

flexmix documents a mixture of two Poisson GLMs with constant mixing weights
on its simulated data set NPreg (``?FLXMRglm``)::

    flexmix(yp ~ x, data = NPreg, k = 2, model = FLXMRglm(family = "poisson"))

whose best of 20 starts reaches a log-likelihood of -440.64 (BIC 907.77 with
flexmix's count of 5 parameters: two coefficients per expert and one free
mixing weight). This script fits the same model with skmoe's Poisson
likelihood and prints the log-likelihood, the BIC computed as flexmix does,
and the fit time, beside flexmix's (run in the same script when ``Rscript``
and the R package flexmix are installed; see ``install_peers.sh``).

Until the mixtures take ``likelihood="poisson"`` the skmoe side is a
stand-alone EM written only against the two protocols (expert likelihood and
gate), with :class:`MixingWeights`, a gate that ignores ``x``.

The data is not shipped with skmoe: ``--data-dir`` must hold ``NPreg.csv``
(exported from R: ``data(NPreg, package = "flexmix"); write.csv(NPreg, ...)``).

    python benchmarks/bench_glm.py [--data-dir ../shared/data] [--nrep 20]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator
from sklearn.linear_model import PoissonRegressor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import table, write  # noqa: E402
from peers import flexmix_available  # noqa: E402

from skmoe._glm_likelihoods import PoissonLikelihood  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FLEXMIX_REFERENCE = -440.64  # flexmix's best of 20 starts, as documented


class MixingWeights(BaseEstimator):
    """A gate that ignores its input: constant mixing weights ``softmax(logits_)``.

    flexmix's model without concomitant variables, written against the gate
    protocol (the M-step is the weighted mean of the responsibilities).
    """

    def prepare(self, Z, sample_weight):
        return self

    def fit_soft(self, Z, R, sample_weight, *, max_iter=None):
        share = sample_weight @ R / sample_weight.sum()
        self.logits_ = np.log(np.maximum(share, 1e-300))
        self.n_outputs_ = R.shape[1]
        return self

    def log_proba(self, Z):
        row = self.logits_ - logsumexp(self.logits_)
        return np.ascontiguousarray(np.broadcast_to(row, (Z.shape[0], self.n_outputs_)))

    def penalty(self):
        return 0.0

    def n_parameters(self):
        return self.n_outputs_ - 1

    def drop_output(self, k):
        self.logits_ = np.delete(self.logits_, k)
        self.n_outputs_ -= 1

    def split_output(self, j, n_new):
        self.logits_[j] -= np.log(n_new + 1.0)
        self.logits_ = np.concatenate([self.logits_, np.repeat(self.logits_[j], n_new)])
        self.n_outputs_ += n_new

    def sgd_parameters(self):
        return [self.logits_]

    def sgd_gradient(self, Z, R, sample_weight, total):
        return [softmax(self.logits_) - sample_weight @ R / sample_weight.sum()]


def protocol_em(X, y, likelihood, gate, experts, R, sample_weight, max_iter=500, tol=1e-9):
    """EM written only against the likelihood and gate protocols.

    Returns the final total log-likelihood, the number of iterations, the
    history of the objective, the experts, the gate and the likelihood's
    parameters.
    """
    y, _ = likelihood.validate_targets(y, sample_weight)
    gate.prepare(X, sample_weight)
    theta, history = None, []
    for it in range(1, max_iter + 1):
        W = sample_weight[:, None] * R
        for k, expert in enumerate(experts):
            expert.fit(X, y, sample_weight=W[:, k])
        outputs = likelihood.outputs(experts, X)
        theta = likelihood.m_step(likelihood.stats(outputs, y, W), theta)
        gate.fit_soft(X, R, sample_weight)
        joint = gate.log_proba(X) + likelihood.log_lik(outputs, y, theta)
        norm = logsumexp(joint, axis=1)
        history.append(float(sample_weight @ norm) - gate.penalty())
        R = np.exp(joint - norm[:, None])
        if it > 1 and history[-1] - history[-2] <= tol * abs(history[-1]):
            break
    return history[-1], it, history, experts, gate, theta


def fit_skmoe(x, y, n_experts, nrep, seed):
    """Best of ``nrep`` starts from random hard partitions, as flexmix starts."""
    X = x[:, None]
    rng = np.random.RandomState(seed)
    sample_weight = np.ones(len(y))
    lik = PoissonLikelihood()
    best, lls = None, []
    start = time.perf_counter()
    for _ in range(nrep):
        R = np.eye(n_experts)[rng.randint(n_experts, size=len(y))]
        # flexmix's glm.fit: unpenalised IRLS; Newton's method here.
        experts = [PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-8)
                   for _ in range(n_experts)]
        run = protocol_em(X, y, lik, MixingWeights(), experts, R, sample_weight)
        lls.append(run[0])
        if best is None or run[0] > best[0]:
            best = run
    seconds = time.perf_counter() - start
    ll, n_iter, history, experts, gate, _ = best
    n_params = (
        sum(e.coef_.size + 1 for e in experts)
        + gate.n_parameters()
        + lik.n_parameters_per_expert * n_experts
    )
    return {
        "time_s": seconds,
        "loglik": ll,
        "df": n_params,
        "bic": -2.0 * ll + n_params * np.log(len(y)),
        "n_iter": n_iter,
        "monotone": bool(np.all(np.diff(history) >= -1e-9 * abs(ll))),
        "prior": np.exp(gate.logits_ - logsumexp(gate.logits_)).tolist(),
        "coef": [[float(e.intercept_), *map(float, e.coef_)] for e in experts],
        "restart_logliks": lls,
    }


def run_flexmix_glm(x, y, family, n_experts, nrep, seed, rscript="Rscript"):
    """flexmix's ``FLXMRglm`` mixture through ``flexmix_glm.R`` (None without R)."""
    if not flexmix_available(rscript):
        return None
    with tempfile.TemporaryDirectory(prefix="skmoe-flexmix-") as tmp:
        csv = os.path.join(tmp, "data.csv")
        np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="x,y",
                   comments="", fmt="%.17g")
        proc = subprocess.run(
            [rscript, os.path.join(HERE, "flexmix_glm.R"), csv, family, str(n_experts),
             str(nrep), str(seed)],
            capture_output=True, text=True,
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FLEXMIX_JSON ")]
    if proc.returncode != 0 or not lines:
        return {"status": f"Rscript failed: {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1][len("FLEXMIX_JSON "):])


def read_npreg(data_dir):
    path = os.path.join(data_dir, "NPreg.csv")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: pass --data-dir, the folder holding NPreg.csv.")
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    return np.asarray(data["x"], dtype=float), np.asarray(data["yp"], dtype=float)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data"),
                   help="folder holding NPreg.csv (default: ../shared/data from the repository)")
    p.add_argument("--nrep", type=int, default=20, help="starts, for both (default 20)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    load_start = list(os.getloadavg())
    x, y = read_npreg(args.data_dir)
    sk = fit_skmoe(x, y, 2, args.nrep, args.seed)
    fm = run_flexmix_glm(x, y, "poisson", 2, args.nrep, args.seed)
    row = {
        "data": "NPreg yp ~ x", "n": len(y), "nrep": args.nrep,
        "skmoe_loglik": sk["loglik"], "skmoe_bic": sk["bic"], "skmoe_df": sk["df"],
        "skmoe_s": sk["time_s"], "skmoe_iter": sk["n_iter"], "skmoe_monotone": sk["monotone"],
        "flexmix_reference_loglik": FLEXMIX_REFERENCE,
    }
    if fm is not None and fm.get("loglik") is not None:
        row.update(flexmix_loglik=fm["loglik"], flexmix_bic=fm["bic"], flexmix_df=fm["df"],
                   flexmix_s=fm["time_s"], flexmix_iter=fm["n_iter"])
    elif fm is not None:
        row["flexmix_status"] = fm["status"]
    else:
        row["flexmix_status"] = "not installed (Rscript and the R package flexmix)"
    table([row], ["n", "nrep", "skmoe_loglik", "skmoe_bic", "skmoe_s", "skmoe_iter",
                  "flexmix_loglik", "flexmix_bic", "flexmix_s", "flexmix_iter"])
    print(f"log-likelihood: skmoe {sk['loglik']:.4f}, flexmix "
          f"{row.get('flexmix_loglik', float('nan')):.4f} (documented {FLEXMIX_REFERENCE}); "
          f"BIC: skmoe {sk['bic']:.4f}, flexmix {row.get('flexmix_bic', float('nan')):.4f}")
    print("skmoe  priors", np.round(sk["prior"], 4), "coef (intercept, x)", np.round(sk["coef"], 4))
    if fm is not None and fm.get("coef"):
        print("flexmix priors", np.round(fm["prior"], 4), "coef", np.round(fm["coef"], 4))
    write("bench_glm", [row], loadavg_at_start=load_start,
          target=f"skmoe_loglik >= {FLEXMIX_REFERENCE} (flexmix's best of 20), same BIC rule",
          skmoe=sk, flexmix=fm)


if __name__ == "__main__":
    main()
