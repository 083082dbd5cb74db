"""The batched weighted least squares of ``skmoe._linear`` against
scikit-learn's own ``fit`` with ``sample_weight``."""

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import Lasso, LinearRegression, Ridge

from skmoe import MixtureOfExpertsRegressor, _linear


def _linear_problem(seed=0, n=3000):
    rng = np.random.RandomState(seed)
    # Columns on very different scales and far from zero.
    X = rng.normal(size=(n, 5)) * [1.0, 10.0, 100.0, 1e-3, 5.0] + [0.0, 1e3, 0.0, 5.0, -7.0]
    y = X @ rng.normal(size=5) + rng.normal(size=n)
    W = rng.dirichlet(np.ones(4), size=n)
    W[: n // 4, 0] = 0.0  # rows without weight for an expert
    return X, y, W


@pytest.mark.parametrize(
    "expert",
    [
        LinearRegression(),
        LinearRegression(fit_intercept=False),
        Ridge(alpha=3.0),
        Ridge(alpha=1e-2, fit_intercept=False, solver="svd"),
        Ridge(alpha=10.0, solver="cholesky"),
    ],
    ids=repr,
)
def test_batched_wls_equals_sklearn_fit(expert):
    X, y, W = _linear_problem()
    mine = [copy.deepcopy(expert) for _ in range(W.shape[1])]
    assert all(_linear.batchable(e) for e in mine)
    ok = _linear.fit_linear_experts(mine, X, y, W)
    if expert.fit_intercept:
        assert ok == [True] * W.shape[1]
    # Without an intercept, columns far from zero make nearly collinear
    # normal equations: those systems may be handed back to sklearn.
    for k, est in enumerate(mine):
        if not ok[k]:
            assert not hasattr(est, "coef_")
            est.fit(X, y, sample_weight=W[:, k])
        ref = copy.deepcopy(expert).fit(X, y, sample_weight=W[:, k])
        fitted = sorted(a for a in vars(ref) if a.endswith("_") and not a.startswith("_"))
        assert fitted == sorted(a for a in vars(est) if a.endswith("_") and not a.startswith("_"))
        assert_allclose(est.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
        assert_allclose(est.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
        if hasattr(ref, "singular_"):
            assert est.rank_ == ref.rank_
            assert_allclose(est.singular_, ref.singular_, rtol=1e-6)
        if hasattr(ref, "solver_"):
            assert est.solver_ == ref.solver_ and est.n_iter_ == ref.n_iter_
        assert_allclose(est.predict(X), ref.predict(X), rtol=1e-8, atol=1e-8)
    out = np.empty((X.shape[0], len(mine)))
    assert all(_linear.predict_linear(mine, X, out))
    assert_allclose(out, np.column_stack([e.predict(X) for e in mine]), rtol=1e-12, atol=1e-10)


def test_batched_wls_hands_back_what_it_cannot_match():
    for est in [
        LinearRegression(positive=True),
        Ridge(positive=True, solver="lbfgs"),
        Ridge(solver="sag"),
        Ridge(solver="lsqr"),
        Ridge(alpha=0.0),
        Ridge(alpha=np.array([1.0])),
        Lasso(),
        type("MyLinear", (LinearRegression,), {})(),
    ]:
        assert not _linear.batchable(est), est
    # A rank-deficient system (duplicated column): left to sklearn's lstsq.
    X, y, W = _linear_problem()
    X = np.column_stack([X, X[:, 0]])
    est = [LinearRegression()]
    assert _linear.fit_linear_experts(est, X, y, W[:, :1]) == [False]
    assert not hasattr(est[0], "coef_")


def test_mixture_with_batched_experts_equals_normal_path(monkeypatch, piecewise):
    X, y = piecewise
    # init="kmeans": without batchable experts, init="auto" would not run its pool.
    kw = dict(n_experts=3, random_state=0, init="kmeans")
    fast = MixtureOfExpertsRegressor(Ridge(alpha=1e-3), **kw).fit(X, y)
    monkeypatch.setattr(_linear, "batchable", lambda expert: False)
    slow = MixtureOfExpertsRegressor(Ridge(alpha=1e-3), **kw).fit(X, y)
    assert fast.n_iter_ == slow.n_iter_
    assert_allclose(fast.log_likelihood_, slow.log_likelihood_, rtol=1e-9)
    for a, b in zip(fast.experts_, slow.experts_):
        assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
