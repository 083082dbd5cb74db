"""Student-t experts against Gaussian experts, with and without gross outliers
(issue 25).

Simulated mixture of two linear regressions under a softmax gate on
``x = (x1, x2) ~ U(-2, 2)^2``: expert 1 ``y = 1 + 2 x1 - x2``, expert 2
``y = -1 - x1 + 0.5 x2``, Gaussian noise of standard deviation 0.5, the
gate ``P(expert 1) = sigmoid(4 x1)``. A share of the rows (``--outliers``,
default 5%; and 0%) is replaced by gross outliers: ``y`` shifted by
``+-U(10, 20)``. Training and test sets (``--n`` rows each) come from the same
distribution.

Models, both with ``LinearRegression`` experts and 2 experts:
``likelihood="gaussian"`` and ``likelihood="student_t"`` (degrees of
freedom estimated per expert), and ``StudentTLikelihood(df=4)``.

Printed over ``--seeds`` seeds: the held-out log density per row, the
experts' coefficient error (the largest absolute error over the six
coefficients, experts matched to the truth by the better of the two
pairings), their means and standard errors, and the paired differences to
the Gaussian mixture.

Run: ``python benchmarks/robust_experts.py [--seeds 10] [--n 600]``.
"""

import argparse
import json
import os
import warnings

import numpy as np
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor
from skmoe._student_t import StudentTLikelihood

TRUE = np.array([[2.0, -1.0, 1.0], [-1.0, 0.5, -1.0]])  # (slope1, slope2, intercept)


def simulate(n, outliers, rng):
    """``(X, y)``: the two-expert mixture with a share of gross outliers."""
    X = rng.uniform(-2, 2, size=(n, 2))
    first = rng.rand(n) < 1.0 / (1.0 + np.exp(-4.0 * X[:, 0]))
    coef = np.where(first[:, None], TRUE[0], TRUE[1])
    y = np.sum(coef[:, :2] * X, axis=1) + coef[:, 2] + 0.5 * rng.randn(n)
    bad = rng.rand(n) < outliers
    y[bad] += rng.choice([-1.0, 1.0], bad.sum()) * rng.uniform(10, 20, bad.sum())
    return X, y


def coefficient_error(moe):
    """Largest absolute error over the experts' coefficients (best pairing)."""
    fitted = np.array([np.append(e.coef_, e.intercept_) for e in moe.experts_])
    if len(fitted) != 2:
        return np.inf
    return min(np.abs(fitted - TRUE).max(), np.abs(fitted[::-1] - TRUE).max())


MODELS = {
    "gaussian": "gaussian",
    "student_t": "student_t",
    "t(df=4)": StudentTLikelihood(df=4),
}


def run(seeds, n, outliers):
    """``{model: {"logdens": [...], "coef_err": [...]}}`` over the seeds."""
    out = {m: {"logdens": [], "coef_err": []} for m in MODELS}
    for seed in range(seeds):
        rng = np.random.RandomState(seed)
        X, y = simulate(n, outliers, rng)
        Xt, yt = simulate(n, outliers, rng)
        for label, likelihood in MODELS.items():
            moe = MixtureOfExpertsRegressor(
                LinearRegression(),
                n_experts=2,
                likelihood=likelihood,
                random_state=seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                moe.fit(X, y)
            out[label]["logdens"].append(float(np.mean(moe.log_prob(Xt, yt))))
            out[label]["coef_err"].append(float(coefficient_error(moe)))
    return out


def report(out, outliers):
    """Print means, SEs and paired differences to the Gaussian mixture."""
    se = lambda a: np.std(a, ddof=1) / np.sqrt(len(a))  # noqa: E731
    base = {k: np.array(v) for k, v in out["gaussian"].items()}
    print(f"\noutliers {outliers:.0%}, {len(base['logdens'])} seeds")
    print(
        f"{'model':<10} {'log density/row':>20} {'diff vs gaussian':>22} "
        f"{'coef error':>18} {'diff vs gaussian':>22}"
    )
    for label, s in out.items():
        ld, ce = np.array(s["logdens"]), np.array(s["coef_err"])
        dl, dc = ld - base["logdens"], ce - base["coef_err"]
        print(
            f"{label:<10} {ld.mean():10.4f} +- {se(ld):.4f} "
            f"{dl.mean():+12.4f} +- {se(dl):.4f}"
            f" {ce.mean():9.4f} +- {se(ce):.4f} {dc.mean():+12.4f} +- {se(dc):.4f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--outliers", type=float, default=0.05)
    args = parser.parse_args()
    results = {"loadavg_start": os.getloadavg()}
    for share in (args.outliers, 0.0):
        out = run(args.seeds, args.n, share)
        report(out, share)
        results[str(share)] = out
    results["loadavg_end"] = os.getloadavg()
    path = os.path.join(os.path.dirname(__file__), "results", "robust_experts.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
