"""skmoe's standard errors against flexmix's ``refit()`` on NPreg.

flexmix's own example, ``flexmix(yn ~ x + I(x^2), data = NPreg, k = 2)``:
two Gaussian linear experts on ``[x, x^2]`` under a constant prior (skmoe:
``gate_features=[]``, ``gate=SoftmaxGate(alpha=0)``, ``LinearRegression()``
experts). flexmix is run by ``inference_npreg.R`` (best of 10 starts), and
its two ``refit`` methods are read back:

* ``method="optim"`` (the default): BFGS on the full observed-data
  log-likelihood started at the EM estimate, and the inverse of optim's
  finite-difference Hessian at BFGS's end point; parameters ``log(sigma)``
  and the prior's logit;
* ``method="mstep"``: every component refitted as a weighted glm on the
  posteriors, with glm's standard errors -- the complete-data information
  given the posteriors, which leaves out the missing information.

skmoe's table is printed at its own maximum, and its information is also
evaluated at flexmix's ``optim`` point (to separate a difference of point
from a difference of method). The variance's standard error is carried to
``log(sigma)`` by the delta method: ``se(log sigma) = se(var) / (2 var)``.

    python benchmarks/inference_npreg.py --data-dir ../shared/data [--nrep 10]
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate
from skmoe._bootstrap import align_experts
from skmoe._information import Layout, covariance_from_information, information

HERE = os.path.dirname(os.path.abspath(__file__))


def run_flexmix(csv, nrep):
    """flexmix's EM, refit(optim) and refit(mstep) tables, and its posterior."""
    out = os.path.join(tempfile.mkdtemp(), "np")
    res = subprocess.run(
        ["Rscript", os.path.join(HERE, "inference_npreg.R"), csv, out, str(nrep)],
        capture_output=True,
        text=True,
        check=True,
    )
    print(res.stdout.strip())
    read = {
        s: pd.read_csv(f"{out}_{s}.csv") for s in ("optim", "mstep", "em", "posterior")
    }
    return read


def fit_skmoe(X, y):
    """Best of 10 skmoe fits by log-likelihood."""
    best = None
    for seed in range(10):
        moe = MixtureOfExpertsRegressor(
            LinearRegression(),
            n_experts=2,
            gate=SoftmaxGate(alpha=0),
            gate_features=[],
            tol=1e-12,
            max_iter=5000,
            random_state=seed,
        ).fit(X, y)
        if best is None or moe.log_likelihood_ > best.log_likelihood_:
            best = moe
    return best


def flexmix_point(optim, order):
    """flexmix's optim estimate in skmoe's layout (features then intercept,
    variance; the gate: expert 1 vs 0), for skmoe's experts ``order``."""
    c = dict(zip(optim["name"], optim["coef"]))
    blocks = []
    for comp in (1, 2):
        p = f"model.1_Comp.{comp}_"
        blocks.append(
            [
                c[p + "coef.x"],
                c[p + "coef.I(x^2)"],
                c[p + "coef.(Intercept)"],
                np.exp(2 * c[p + "log(sigma)"]),
            ]
        )
    alpha = c["concomitant_Comp.2.alpha"]  # log(prior 2 / prior 1)
    gate = alpha if order[0] == 0 else -alpha
    return np.concatenate([[gate], blocks[order[0]], blocks[order[1]]])


def to_flexmix_scale(coef, se, names):
    """Variance rows as log(sigma) (delta method), the rest unchanged."""
    coef, se = np.array(coef, float), np.array(se, float)
    var = np.array([t == "variance" for _, t in names])
    se[var] = se[var] / (2 * coef[var])
    coef[var] = 0.5 * np.log(coef[var])
    return coef, se


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--nrep", type=int, default=10)
    args = p.parse_args()
    csv = os.path.join(args.data_dir, "NPreg.csv")
    data = pd.read_csv(csv)
    x = data["x"].to_numpy()
    # numpy, not a DataFrame: gate_features=[] on a DataFrame fails in
    # skmoe's gate input ("at least one array or dtype is required")
    X = np.column_stack([x, x**2])
    y = data["yn"].to_numpy()
    moe = fit_skmoe(X, y)
    frame = moe.summary_frame(X, y)
    names = list(frame.index)
    print(f"skmoe log-likelihood: {moe.log_likelihood_ * len(y):.9f}")
    fm = run_flexmix(csv, args.nrep)
    # skmoe expert j plays flexmix component order[j] + 1
    order = align_experts(moe.responsibilities(X, y), fm["posterior"].to_numpy())
    point = flexmix_point(fm["optim"], order)
    Zd = np.ones((len(y), 1))
    Xd = np.column_stack([x, x**2, np.ones(len(y))])
    info = information(Layout("gaussian", 2, 1, 3), point, Zd, Xd, y)[0]
    se_at_fm = np.sqrt(np.diag(covariance_from_information(info)))
    ours, our_se = to_flexmix_scale(frame["coef"], frame["std err"], names)
    _, se_at_fm = to_flexmix_scale(point, se_at_fm, names)
    fm_coef, _ = to_flexmix_scale(point, np.zeros(len(point)), names)
    c = dict(zip(fm["optim"]["name"], fm["optim"]["se"]))
    mstep = fm["mstep"]
    print(
        "\nvariances as log(sigma); gate = log(prior of expert 1 / prior of expert 0)"
    )
    print(
        f"{'parameter':<30}{'skmoe':>10}{'se':>9}{'flexmix':>10}{'se optim':>9}"
        f"{'skmoe se@fm':>12}{'se mstep':>10}"
    )
    terms = {
        "x0": "coef.x",
        "x1": "coef.I(x^2)",
        "intercept": "coef.(Intercept)",
        "variance": "log(sigma)",
    }
    mterms = {"x0": "x", "x1": "I(x^2)", "intercept": "(Intercept)"}
    for j, (block, term) in enumerate(names):
        if block.startswith("gate"):
            fse, mse = c["concomitant_Comp.2.alpha"], np.nan
        else:
            comp = order[int(block.split()[-1])] + 1
            fse = c[f"model.1_Comp.{comp}_{terms[term]}"]
            row = mstep[
                (mstep["component"] == comp) & (mstep["term"] == mterms.get(term))
            ]
            mse = row["se"].iloc[0] if len(row) else np.nan
        label = f"{block}: {dict(x0='x', x1='x^2').get(term, term)}" + (
            " (log sigma)" if term == "variance" else ""
        )
        print(
            f"{label:<30}{ours[j]:>10.4f}{our_se[j]:>9.4f}{fm_coef[j]:>10.4f}{fse:>9.4f}"
            f"{se_at_fm[j]:>12.4f}{mse:>10.4f}"
        )


if __name__ == "__main__":
    sys.exit(main())
