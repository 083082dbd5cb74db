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

The skmoe side is the estimator itself:
``MixtureOfExpertsRegressor(likelihood="poisson", gate_features=[])`` (no
gate feature: constant mixing weights, flexmix's model without concomitant
variables), its default experts (``PoissonRegressor`` fitted by Newton's
method, with a negligible ridge) and ``n_init`` random starts, as flexmix
starts from random partitions. Its BIC is ``moe.bic(X, y)``, whose count of
parameters is flexmix's: two coefficients per expert and one free mixing
weight (the gate's intercept difference).

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
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import table, write  # noqa: E402
from peers import flexmix_available  # noqa: E402

from skmoe import MixtureOfExpertsRegressor  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FLEXMIX_REFERENCE = -440.64  # flexmix's best of 20 starts, as documented


def fit_skmoe(x, y, n_experts, nrep, seed):
    """The estimator: best of ``nrep`` random starts, constant mixing weights.

    ``max_iter=200`` and the default ``tol=1e-6`` (on the mean log-likelihood
    per sample, 2e-4 in total here) as flexmix's ``iter.max = 200`` and its
    relative tolerance of 1e-6 (4e-4 in total here).
    """
    X = x[:, None]
    moe = MixtureOfExpertsRegressor(
        n_experts=n_experts, likelihood="poisson", gate_features=[], init="random",
        n_init=nrep, max_iter=200, random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a start that stops at max_iter
        moe.fit(X, y)
    seconds = time.perf_counter() - start
    ll = float(moe.log_prob(X, y).sum())
    history = moe.log_likelihood_history_
    return {
        "time_s": seconds,
        "loglik": ll,
        "df": int(moe._n_parameters()),
        "bic": moe.bic(X, y),
        "n_iter": int(moe.n_iter_),
        "monotone": bool(np.all(np.diff(history) >= -1e-9 * abs(history[-1]))),
        "prior": moe.predict_gate(X[:1])[0].tolist(),
        "coef": [[float(e.intercept_), *map(float, e.coef_)] for e in moe.experts_],
        "experts": repr(moe.experts_[0]),
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
    row["target_met"] = bool(
        round(sk["loglik"], 2) >= FLEXMIX_REFERENCE
        and sk["loglik"] >= row.get("flexmix_loglik", -np.inf)
    )
    table([row], ["n", "nrep", "skmoe_loglik", "skmoe_bic", "skmoe_s", "skmoe_iter",
                  "flexmix_loglik", "flexmix_bic", "flexmix_s", "flexmix_iter"])
    print(f"log-likelihood: skmoe {sk['loglik']:.4f}, flexmix "
          f"{row.get('flexmix_loglik', float('nan')):.4f} (documented {FLEXMIX_REFERENCE}); "
          f"BIC: skmoe {sk['bic']:.4f}, flexmix {row.get('flexmix_bic', float('nan')):.4f}")
    print("skmoe  priors", np.round(sk["prior"], 4), "coef (intercept, x)", np.round(sk["coef"], 4))
    if fm is not None and fm.get("coef"):
        print("flexmix priors", np.round(fm["prior"], 4), "coef", np.round(fm["coef"], 4))
    write("bench_glm", [row], loadavg_at_start=load_start,
          target=(f"round(skmoe_loglik, 2) >= {FLEXMIX_REFERENCE} (flexmix's documented "
                  "best of 20) and skmoe_loglik >= flexmix_loglik of the same run; "
                  "same BIC rule"),
          skmoe=sk, flexmix=fm)


if __name__ == "__main__":
    main()
