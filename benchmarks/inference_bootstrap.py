"""Analytic standard errors against the bootstrap's, on the same fitted model.

One draw of each design of ``inference_coverage.py`` (2 experts on 500 rows,
3 experts on 1,000), fitted from the true responsibilities; then
``moe.bootstrap(X, y, n_boot=B, method="parametric")`` (targets drawn from the
fitted mixture, each refit started from the fitted posteriors and its experts
aligned to the fit's) and the same with ``method="nonparametric"`` (rows
resampled) against the sandwich. Prints, per parameter, the analytic
standard error, the bootstrap's (standard deviation of the aligned
replicates; for the nonparametric one also the interquartile range / 1.349,
which a few extreme replicates do not inflate) and their ratio. With B
replicates the bootstrap standard error itself is uncertain by about
``1 / sqrt(2 B)`` (3% at B=500).

    python benchmarks/inference_bootstrap.py [--boot 500] [--n-jobs 2]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from inference_coverage import DESIGNS, fit_from_truth, simulate  # noqa: E402


def compare(k, n_boot, n_jobs):
    design = DESIGNS[k]
    X, y, resp = simulate(design, np.random.default_rng(20261208 + k))
    moe = fit_from_truth(design, X, y, resp)
    frame = moe.summary_frame(X, y)
    robust = np.sqrt(np.diag(moe.covariance(X, y, covariance_type="robust")))
    print(f"\n{k} experts, n={design['n']}, B={n_boot}")
    results = {}
    for method in ("parametric", "nonparametric"):
        t0 = time.perf_counter()
        reps = moe.bootstrap(
            X, y, n_boot=n_boot, method=method, n_jobs=n_jobs, random_state=k
        )
        q75, q25 = np.percentile(reps, [75, 25], axis=0)
        results[method] = (reps.std(axis=0, ddof=1), (q75 - q25) / 1.349)
        print(
            f"  {method} bootstrap: {len(reps)} refits kept, "
            f"{time.perf_counter() - t0:.0f} s"
        )
    print(
        f"  {'parameter':<34}{'observed':>9}{'par.boot':>9}{'ratio':>7}"
        f"{'robust':>9}{'np.boot':>9}{'ratio':>7}{'np.iqr':>9}{'ratio':>7}"
    )
    se = frame["std err"].to_numpy()
    par = results["parametric"][0]
    npb, npi = results["nonparametric"]
    for j, (block, term) in enumerate(frame.index):
        print(
            f"  {block + ': ' + term:<34}{se[j]:>9.4f}{par[j]:>9.4f}"
            f"{se[j] / par[j]:>7.3f}{robust[j]:>9.4f}{npb[j]:>9.4f}"
            f"{robust[j] / npb[j]:>7.3f}{npi[j]:>9.4f}{robust[j] / npi[j]:>7.3f}"
        )
    for label, ratio in (
        ("observed / parametric sd", se / par),
        ("robust / nonparametric sd", robust / npb),
        ("robust / nonparametric iqr", robust / npi),
    ):
        print(
            f"  {label}: median {np.median(ratio):.3f}, range [{ratio.min():.3f}, "
            f"{ratio.max():.3f}], within 10%: {np.mean(np.abs(ratio - 1) <= 0.1):.0%}"
        )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--boot", type=int, default=500)
    p.add_argument("--n-jobs", type=int, default=2)
    args = p.parse_args()
    for k in (2, 3):
        compare(k, args.boot, args.n_jobs)


if __name__ == "__main__":
    main()
