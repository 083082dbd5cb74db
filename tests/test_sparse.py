"""Sparse inputs: the same model as on dense data, without densifying X."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

import naive
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, SoftmaxGate


class RecordingRidge(Ridge):
    """A Ridge that remembers the type of every X it was fitted on."""

    seen = []

    def fit(self, X, y, sample_weight=None):
        RecordingRidge.seen.append(type(X))
        return super().fit(X, y, sample_weight=sample_weight)


def _one_hot_problem(n=400, seed=0):
    """Users and items as one-hot columns plus a side feature; two user groups."""
    rng = np.random.RandomState(seed)
    users, items = rng.randint(0, 30, n), rng.randint(0, 20, n)
    side = rng.normal(size=n)
    X = sp.hstack(
        [
            sp.csr_matrix((np.ones(n), (np.arange(n), users)), shape=(n, 30)),
            sp.csr_matrix((np.ones(n), (np.arange(n), items)), shape=(n, 20)),
            sp.csr_matrix(side[:, None]),
        ],
        format="csr",
    )
    item_effect = rng.normal(size=20)
    y = np.where(users < 15, item_effect[items], -item_effect[items]) + 0.5 * side
    return X, y + 0.1 * rng.randn(n)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_regressor_on_sparse_equals_dense(fmt):
    X, y = _one_hot_problem()
    Xs = X.asformat(fmt)
    kw = dict(n_experts=2, gate_features=np.arange(30), random_state=0)
    # One Ridge solver for both (Ridge's "auto" picks different ones).
    ridge = dict(alpha=1.0, solver="lsqr", tol=1e-14)
    RecordingRidge.seen.clear()
    sparse = MixtureOfExpertsRegressor(RecordingRidge(**ridge), **kw).fit(Xs, y)
    assert RecordingRidge.seen and all(t.__module__.startswith("scipy.sparse") for t in RecordingRidge.seen)
    dense = MixtureOfExpertsRegressor(Ridge(**ridge), **kw).fit(X.toarray(), y)
    assert_allclose(sparse.predict(Xs), dense.predict(X.toarray()), rtol=1e-8, atol=1e-8)
    assert_allclose(sparse.log_likelihood_, dense.log_likelihood_, rtol=1e-8)
    assert_allclose(sparse.gate_.coef_, dense.gate_.coef_, rtol=1e-6, atol=1e-8)
    mean_s, std_s = sparse.predict(Xs, return_std=True)
    assert_allclose(std_s, dense.predict(X.toarray(), return_std=True)[1], rtol=1e-8)


def test_sparse_gate_over_ids_learns_user_segments():
    X, y = _one_hot_problem(n=3000)
    moe = MixtureOfExpertsRegressor(
        Ridge(alpha=0.1), n_experts=2, gate_features=np.arange(30), gate=SoftmaxGate(alpha=0.1),
        n_init=5, random_state=0,
    ).fit(X, y)
    single = Ridge(alpha=0.1).fit(X, y)
    assert moe.score(X, y) > 0.95 > single.score(X, y)


def test_classifier_on_sparse_equals_dense():
    X, y = _one_hot_problem()
    labels = (y > 0).astype(int)
    # Dense experts take the batched Newton fit (their optimum), sparse ones
    # scikit-learn's own: a tight tol makes both the optimum.
    expert = LogisticRegression(tol=1e-10, max_iter=10000)
    a = MixtureOfExpertsClassifier(expert, n_experts=2, random_state=0).fit(X, labels)
    b = MixtureOfExpertsClassifier(expert, n_experts=2, random_state=0).fit(X.toarray(), labels)
    # The default pool polishes by L-BFGS, whose path rounding steers: on
    # these one-hot columns the optimum is flat (log-likelihoods 1e-8 apart
    # per row), and the two fits stop 5e-7 apart in probability (the
    # iterative sparse solvers this test caught left 2.6e-4).
    assert_allclose(a.log_likelihood_, b.log_likelihood_, rtol=1e-7)
    assert_allclose(a.predict_proba(X), b.predict_proba(X.toarray()), rtol=0, atol=5e-6)


def test_softmax_gate_on_sparse_equals_dense():
    X, y = _one_hot_problem()
    rng = np.random.RandomState(1)
    R = naive.softmax_rows(rng.normal(size=(X.shape[0], 3)))
    a = SoftmaxGate(alpha=0.5, tol=1e-10).fit(X, R)
    b = SoftmaxGate(alpha=0.5, tol=1e-10).fit(X.toarray(), R)
    assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)
    assert_allclose(a.predict_proba(X), b.predict_proba(X.toarray()), atol=1e-10)


def test_expert_without_sparse_support_is_named():
    X, y = _one_hot_problem(n=100)
    moe = MixtureOfExpertsRegressor(HistGradientBoostingRegressor(max_iter=5))
    with pytest.raises(TypeError, match=r"expert 0 \(HistGradientBoostingRegressor\) does not accept sparse"):
        moe.fit(X, y)
    assert not moe.__sklearn_tags__().input_tags.sparse
    assert MixtureOfExpertsRegressor(Ridge()).__sklearn_tags__().input_tags.sparse
