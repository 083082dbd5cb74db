"""Demo: ``python -m skmoe``.

Fits both estimators on real datasets shipped with scikit-learn (no download)
and prints 5-fold cross-validated scores against a single expert of the same
kind, with fit times.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor


def _n_experts(model):
    """The fitted number of experts of a mixture (the last step of a pipeline)."""
    return getattr(model[-1] if hasattr(model, "steps") else model, "n_experts_", None)


def _row(name, model, X, y, cv, scoring):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = cross_validate(model, X, y, cv=cv, scoring=scoring, return_estimator=True)
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    score = res["test_score"]
    note = f"  ({unconverged}/{len(score)} fits stopped at max_iter)" if unconverged else ""
    counts = [_n_experts(est) for est in res["estimator"]]
    if None not in counts:
        note += f"  (experts kept per fold: {' '.join(map(str, counts))})"
    print(
        f"  {name:<46s} {score.mean():7.4f} +- {score.std():.4f}   "
        f"fit {res['fit_time'].mean():6.3f} s{note}"
    )


def main():
    print("skmoe demo: 5-fold cross-validation on datasets shipped with scikit-learn\n")

    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    print(f"Regression: diabetes ({X.shape[0]} rows, {X.shape[1]} features), R^2")
    _row("LinearRegression", LinearRegression(), X, y, cv, "r2")
    # The defaults: two StandardizedRidge experts, or one where training BIC
    # prefers one; init="auto" (a pool of starts).
    moe = MixtureOfExpertsRegressor(random_state=0)
    _row("MoE, linear experts (defaults: 2, or 1 by BIC)", moe, X, y, cv, "r2")
    _row("DecisionTreeRegressor(max_depth=3)", DecisionTreeRegressor(max_depth=3), X, y, cv, "r2")
    moe = MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=2), n_experts=3, random_state=0)
    _row("MoE, 3 tree experts (max_depth=2)", moe, X, y, cv, "r2")

    for loader in (load_breast_cancer, load_wine):
        data = loader()
        X, y = data.data, data.target
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        name = loader.__name__.replace("load_", "").replace("_", " ")
        print(f"\nClassification: {name} ({X.shape[0]} rows, {X.shape[1]} features, "
              f"{len(np.unique(y))} classes), accuracy")
        _row("LogisticRegression", make_pipeline(StandardScaler(), LogisticRegression()),
             X, y, cv, "accuracy")
        for k in (2, 3):
            moe = MixtureOfExpertsClassifier(n_experts=k, random_state=0)
            _row(f"MoE, {k} logistic experts (defaults)", make_pipeline(StandardScaler(), moe),
                 X, y, cv, "accuracy")

    tic = time.perf_counter()
    X, y = load_diabetes(return_X_y=True)
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    print(f"\nOne 3-expert fit on diabetes (a pool of {moe.init_objectives_.size} "
          f"short runs, then {moe.n_iter_} EM iterations, "
          f"converged: {moe.converged_}), "
          f"log-likelihood {moe.log_likelihood_:.4f} per sample, "
          f"{time.perf_counter() - tic:.3f} s")
    print("Gate probabilities of the first 3 rows:")
    print(np.round(moe.predict_gate(X[:3]), 3))


if __name__ == "__main__":
    main()
