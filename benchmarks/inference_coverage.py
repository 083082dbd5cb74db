"""Coverage of the 95% Wald intervals of ``summary()`` on simulated mixtures.

Two gated mixtures of linear-Gaussian experts with a known truth (2 experts
on 500 rows, 3 experts on 1,000 rows; one input feeding the gate and the
experts). Every replication draws new data, fits
``MixtureOfExpertsRegressor(LinearRegression(), gate=SoftmaxGate(alpha=0))``
by EM **started from the true parameters' responsibilities** on that data
(``init=`` the posterior of the true model; one start, ``tol=1e-10``), computes
the observed-information covariance and checks whether each interval
``coef +- 1.96 se`` covers the true value. The fitted experts keep the true
order (checked: a replication whose experts swapped would be counted and
reported). The Monte Carlo standard error of a coverage over 500 replications
is about 1 point.

    python benchmarks/inference_coverage.py [--reps 500] [--n-jobs 2] [--robust]
"""

import argparse
import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from scipy.special import softmax
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

#: The true models: gate rows (coef, intercept) per expert, expert
#: (slope, intercept, variance) per expert, input range and rows.
DESIGNS = {
    2: dict(
        gate=[[0.0, 0.0], [2.0, 0.3]],
        experts=[[-1.0, -1.0, 0.25], [2.0, 1.0, 0.25]],
        low=-2.0,
        high=2.0,
        n=500,
    ),
    3: dict(
        gate=[[-2.0, 0.0], [0.0, 1.0], [2.0, 0.0]],
        experts=[[1.0, 2.0, 0.3], [-1.0, 0.0, 0.5], [2.0, -1.0, 0.4]],
        low=-3.0,
        high=3.0,
        n=1000,
    ),
}


def true_vector(design):
    """The true parameters in ``summary_frame``'s order."""
    W = np.asarray(design["gate"])
    parts = [(W[1:] - W[0]).ravel()]
    parts += [np.asarray(e) for e in design["experts"]]
    return np.concatenate(parts)


def simulate(design, rng, n=None):
    """``(X, y, true responsibilities)`` of one draw of the design."""
    n = design["n"] if n is None else n
    x = rng.uniform(design["low"], design["high"], n)
    W = np.asarray(design["gate"])
    E = np.asarray(design["experts"])
    pi = softmax(x[:, None] * W[:, 0] + W[:, 1], axis=1)
    k = (rng.uniform(size=(n, 1)) > np.cumsum(pi, axis=1)).sum(axis=1)
    k = np.minimum(k, len(W) - 1)
    mean = E[:, 0] * x[:, None] + E[:, 1]
    y = mean[np.arange(n), k] + np.sqrt(E[k, 2]) * rng.standard_normal(n)
    dens = pi * np.exp(-0.5 * (y[:, None] - mean) ** 2 / E[:, 2]) / np.sqrt(E[:, 2])
    return x[:, None], y, dens / dens.sum(axis=1, keepdims=True)


def fit_from_truth(design, X, y, resp):
    """The mixture fitted by EM from the true responsibilities."""
    return MixtureOfExpertsRegressor(
        LinearRegression(),
        n_experts=len(design["gate"]),
        gate=SoftmaxGate(alpha=0),
        init=resp,
        n_init=1,
        tol=1e-10,
        max_iter=5000,
        min_expert_weight=0,
    ).fit(X, y)


def one_replication(design, seed, covariance_type):
    """``(estimates, standard errors, ok)`` of one replication."""
    rng = np.random.default_rng(seed)
    X, y, resp = simulate(design, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a Newton-step warning fails it
        try:
            moe = fit_from_truth(design, X, y, resp)
            frame = moe.summary_frame(X, y, covariance_type=covariance_type)
        except (UserWarning, ValueError) as exc:
            return None, None, str(exc)[:80]
    return frame["coef"].to_numpy(), frame["std err"].to_numpy(), frame.index.tolist()


def coverage(k, reps, n_jobs, covariance_type):
    """Print the coverage of every parameter of the ``k``-expert design."""
    design = DESIGNS[k]
    truth = true_vector(design)
    t0 = time.perf_counter()
    out = Parallel(n_jobs=n_jobs)(
        delayed(one_replication)(design, 1000 * k + r, covariance_type)
        for r in range(reps)
    )
    ok = [o for o in out if o[0] is not None]
    failed = [o[2] for o in out if o[0] is None]
    names = ok[0][2]
    est = np.array([o[0] for o in ok])
    se = np.array([o[1] for o in ok])
    covered = np.abs(est - truth) <= 1.959964 * se
    print(
        f"\n{k} experts, n={design['n']}, {len(ok)} of {reps} replications kept "
        f"({covariance_type}), {time.perf_counter() - t0:.0f} s"
    )
    for reason in sorted(set(failed)):
        print(f"  left out ({failed.count(reason)}): {reason}")
    print(
        f"  {'parameter':<34}{'truth':>8}{'mean est':>10}{'sd est':>9}{'mean se':>9}"
        f"{'coverage':>10}"
    )
    for j, (block, term) in enumerate(names):
        print(
            f"  {block + ': ' + term:<34}{truth[j]:>8.3f}{est[:, j].mean():>10.3f}"
            f"{est[:, j].std(ddof=1):>9.4f}{se[:, j].mean():>9.4f}"
            f"{100 * covered[:, j].mean():>9.1f}%"
        )
    gate = np.array([b.startswith("gate") for b, _ in names])
    theta = np.array([t == "variance" for _, t in names])
    for label, mask in (
        ("gate", gate),
        ("expert coefficients", ~gate & ~theta),
        ("noise variances", theta),
    ):
        print(f"  pooled {label:<27}{100 * covered[:, mask].mean():>37.1f}%")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=500)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--robust", action="store_true", help="sandwich covariance")
    args = p.parse_args()
    kind = "robust" if args.robust else "observed"
    for k in (2, 3):
        coverage(k, args.reps, args.n_jobs, kind)


if __name__ == "__main__":
    main()
