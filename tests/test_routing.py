"""Sparse top-k routing, load balancing, collapse repair and growth."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split

import naive
from conftest import make_piecewise
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, SoftmaxGate

CALLS = []


class CountingRegressor(LinearRegression):
    """LinearRegression that records how many rows every fit / predict sees."""

    def fit(self, X, y, sample_weight=None):
        CALLS.append(("fit", len(X)))
        return super().fit(X, y, sample_weight=sample_weight)

    def predict(self, X):
        CALLS.append(("predict", len(X)))
        return super().predict(X)


def _quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning))
        return est.fit(X, y)


# ----------------------------------------------------------------------
# top_k at prediction
# ----------------------------------------------------------------------
@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_top_k_prediction_matches_reference(top_k):
    X, y = make_piecewise()
    moe = _quiet(MixtureOfExpertsRegressor(n_experts=4, top_k=top_k, random_state=0), X, y)
    dense = moe.predict_gate(X)
    gate = naive.top_k_softmax(np.log(dense), top_k)
    pred = moe.predict_experts(X)
    mean = np.sum(gate * pred, axis=1)
    var = np.sum(gate * (moe.noise_variance_ + pred**2), axis=1) - mean**2
    assert_allclose(moe.predict(X), mean, rtol=1e-10, atol=1e-10)
    m, s = moe.predict(X, return_std=True)
    assert_allclose(m, mean, rtol=1e-10, atol=1e-10)
    assert_allclose(s, np.sqrt(np.maximum(var, 0)), rtol=1e-7, atol=1e-7)
    routing = moe.route(X)
    assert_allclose(routing.weights, gate, rtol=1e-10, atol=1e-12)
    assert_allclose(routing.proba, dense, rtol=1e-10)
    assert routing.experts.shape == (len(X), top_k)
    assert_array_equal(routing.experts[:, 0], np.argmax(dense, axis=1))
    assert_array_equal(routing.counts, np.count_nonzero(gate > 0, axis=0))
    assert routing.counts.sum() <= top_k * len(X)


def test_experts_run_only_on_the_rows_routed_to_them():
    X, y = make_piecewise()
    moe = _quiet(
        MixtureOfExpertsRegressor(CountingRegressor(), n_experts=4, top_k=1, random_state=0), X, y
    )
    counts = moe.route(X).counts
    CALLS.clear()
    moe.predict(X)
    calls = [n for kind, n in CALLS if kind == "predict"]
    # One call per expert that serves rows, on exactly those rows.
    assert sorted(calls) == sorted(c for c in counts if c > 0)
    assert sum(calls) == len(X)
    CALLS.clear()
    moe.set_params(top_k=None).predict(X)
    assert [n for _, n in CALLS] == [len(X)] * 4


def test_top_k_classifier_matches_reference(three_class):
    X, y = three_class
    clf = _quiet(MixtureOfExpertsClassifier(n_experts=3, top_k=1, random_state=0), X, y)
    gate = naive.top_k_softmax(np.log(clf.predict_gate(X)), 1)
    dense = clf.set_params(top_k=None)
    proba = np.stack([dense._likelihood.expert_proba(e, k, X) for k, e in enumerate(clf.experts_)])
    clf.set_params(top_k=1)
    assert_allclose(clf.predict_proba(X), naive.mix_proba(gate, proba), rtol=1e-10)
    assert clf.score(X, y) > 0.9


# ----------------------------------------------------------------------
# Sparse EM
# ----------------------------------------------------------------------
@pytest.mark.parametrize("top_k", [1, 2])
def test_sparse_em_history_never_decreases(top_k):
    X, y = make_piecewise(n=400, noise=1.0)
    moe = _quiet(
        MixtureOfExpertsRegressor(
            LinearRegression(), n_experts=4, top_k=top_k, init="random", random_state=0,
            gate=SoftmaxGate(tol=1e-10), min_expert_weight=0,
        ),
        X, y,
    )
    assert moe.n_iter_ > 5
    assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-9)
    # The reported log-likelihood is the sparse bound, recomputed by log_prob,
    # and never above the dense mixture's with the same parameters.
    assert_allclose(moe.log_likelihood_, moe.log_prob(X, y).mean(), rtol=1e-10)
    resp = moe.responsibilities(X, y)
    assert np.all(np.count_nonzero(resp, axis=1) <= top_k)
    assert_allclose(moe.expert_usage_, resp.mean(axis=0), atol=1e-12)
    dense_ll = moe.set_params(top_k=None).log_prob(X, y).mean()
    assert moe.log_likelihood_ <= dense_ll + 1e-12


def test_sparse_em_classifier_history_never_decreases(three_class):
    X, y = three_class
    moe = _quiet(
        MixtureOfExpertsClassifier(
            LogisticRegression(C=1e6, tol=1e-10, max_iter=10000), n_experts=3, top_k=1,
            random_state=0, gate=SoftmaxGate(alpha=1.0),  # see test_classifier.py
        ),
        X, y,
    )
    assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-7)


def test_sparse_em_fits_experts_only_on_rows_with_weight():
    X, y = make_piecewise(n=600)
    CALLS.clear()
    moe = _quiet(
        MixtureOfExpertsRegressor(
            CountingRegressor(), n_experts=4, top_k=1, max_iter=5, random_state=0
        ),
        X, y,
    )
    fits = [n for kind, n in CALLS if kind == "fit"]
    assert len(fits) == 4 * moe.n_iter_
    # top_k=1: every row trains exactly one expert per M-step.
    assert sum(fits) == len(X) * moe.n_iter_


def test_top_k_at_least_n_experts_is_the_dense_model():
    X, y = make_piecewise()
    a = _quiet(MixtureOfExpertsRegressor(n_experts=3, random_state=0), X, y)
    b = _quiet(MixtureOfExpertsRegressor(n_experts=3, top_k=3, random_state=0), X, y)
    c = _quiet(MixtureOfExpertsRegressor(n_experts=3, top_k=7, random_state=0), X, y)
    assert_array_equal(a.log_likelihood_history_, b.log_likelihood_history_)
    assert_array_equal(a.predict(X), c.predict(X))
    assert c.route(X).experts.shape == (len(X), 3)


# ----------------------------------------------------------------------
# Balance
# ----------------------------------------------------------------------
def test_balance_is_in_the_em_objective_and_evens_out_usage():
    # Four experts for three pieces: without balance one expert is left small.
    X, y = make_piecewise(n=600)
    usages = []
    for balance in [0.0, 1.0]:
        moe = _quiet(
            MixtureOfExpertsRegressor(
                LinearRegression(), n_experts=4,
                gate=SoftmaxGate(alpha=0.1, balance=balance, tol=1e-10),
                random_state=0,
            ),
            X, y,
        )
        usages.append(moe.expert_usage_)
        assert_allclose(moe.expert_usage_.sum(), 1.0)
        Z = X
        W_s = moe.gate_.coef_.T * Z.std(axis=0)[:, None]
        pbar = moe.predict_gate(X).mean(axis=0)
        penalty = 0.5 * 0.1 * np.sum(W_s**2) - balance * len(y) / 4 * np.sum(np.log(4 * pbar))
        assert_allclose(moe.gate_.penalty(), penalty, rtol=1e-6)
        assert_allclose(
            moe.log_likelihood_history_[-1], moe.log_likelihood_ - penalty / len(y), rtol=1e-10
        )
        assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-7)
    assert usages[1].min() > usages[0].min() + 0.02


# ----------------------------------------------------------------------
# Collapse repair
# ----------------------------------------------------------------------
def test_reseed_repairs_a_collapse_forcing_init():
    X, y = make_piecewise(n=600)
    gate = SoftmaxGate(alpha=0.01)
    good = _quiet(
        MixtureOfExpertsRegressor(
            LinearRegression(), n_experts=3, gate=gate, random_state=0, init="kmeans"
        ),
        X, y,
    )
    resp = np.zeros((600, 3))
    resp[:, 0] = 1.0  # experts 1 and 2 start with nothing
    kept = _quiet(
        MixtureOfExpertsRegressor(LinearRegression(), n_experts=3, gate=gate, init=resp, min_expert_weight=0), X, y
    )
    with pytest.warns(UserWarning, match=r"Expert 1 \(LinearRegression\) collapsed at EM iteration 1.*re-seeded with half of the rows of expert 0"):
        repaired = MixtureOfExpertsRegressor(LinearRegression(), n_experts=3, gate=gate, init=resp).fit(X, y)
    assert kept.log_likelihood_ < good.log_likelihood_ - 1.0
    assert_allclose(repaired.log_likelihood_, good.log_likelihood_, atol=1e-4)
    assert [r["action"] for r in repaired.repairs_] == ["reseed", "reseed"]
    assert repaired.expert_usage_.min() > 0.3
    assert repaired.score(X, y) > 0.98


def _one_line(n=200):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.5, -1.0, 0.5] + rng.normal(size=n)


@pytest.mark.parametrize(
    "max_iter, kept", [(3, ["reseed", "undone"]), (300, ["reseed"])]
)
def test_reseed_is_kept_only_if_it_ends_above_the_collapsed_fit(max_iter, kept):
    # Expert 1 starts empty: it collapses at iteration 1 and is re-seeded.
    # With 3 iterations the repaired run has not climbed back above the
    # collapsed fit (EM continued from it, here the single line): the repair
    # is undone. With enough iterations the two experts end higher: kept.
    X, y = _one_line()
    resp = np.zeros((len(y), 2))
    resp[:, 0] = 1.0
    collapsed = _quiet(
        MixtureOfExpertsRegressor(
            n_experts=2, init=resp, max_iter=max_iter, min_expert_weight=0
        ),
        X, y,
    )
    make = lambda: MixtureOfExpertsRegressor(n_experts=2, init=resp, max_iter=max_iter)  # noqa: E731
    moe = _quiet(make(), X, y)
    assert [r["action"] for r in moe.repairs_] == kept
    final = moe.log_likelihood_history_[-1]
    reference = collapsed.log_likelihood_history_[-1]
    assert moe.n_iter_ <= max_iter
    if "undone" in kept:
        assert_allclose(final, reference, rtol=1e-10)
        assert moe.expert_usage_.min() < 1e-3
        with pytest.warns(UserWarning, match="That repair was undone"):
            make().fit(X, y)
    else:
        assert final > reference + 1e-3
        assert moe.expert_usage_.min() > 0.1


def test_drop_removes_collapsed_experts():
    X, y = make_piecewise(n=600)
    resp = np.zeros((600, 3))
    resp[:, 0] = 0.7
    resp[:, 1] = 0.3
    with pytest.warns(UserWarning, match=r"Expert 2 \(LinearRegression\) collapsed.*it was dropped"):
        moe = MixtureOfExpertsRegressor(LinearRegression(), n_experts=3, init=resp, on_collapse="drop", max_iter=300).fit(X, y)
    assert moe.n_experts_ == 2 and len(moe.experts_) == 2
    assert moe.gate_.coef_.shape == (2, 2) and moe.noise_variance_.shape == (2,)
    assert moe.predict_gate(X).shape == (600, 2)
    assert moe.repairs_ == [{"iteration": 1, "expert": 2, "action": "drop", "donor": None}]
    # Dropping is what a 2-expert fit from the same start does.
    ref = MixtureOfExpertsRegressor(LinearRegression(), n_experts=2, init=resp[:, :2], max_iter=300).fit(X, y)
    assert_allclose(moe.log_likelihood_, ref.log_likelihood_, rtol=1e-6)


# ----------------------------------------------------------------------
# Growth
# ----------------------------------------------------------------------
def _split():
    X, y = make_piecewise(n=1500)
    return train_test_split(X, y, random_state=0)


def test_growth_with_frozen_experts():
    # The two fitted experts were fitted on the first two pieces (x < 1);
    # the third piece arrives and a third expert is grown for it.
    Xtr, Xte, ytr, yte = _split()
    gate = SoftmaxGate(alpha=0.01)
    scratch = MixtureOfExpertsRegressor(n_experts=3, gate=gate, random_state=0).fit(Xtr, ytr)
    old = Xtr[:, 0] < 1
    moe = MixtureOfExpertsRegressor(n_experts=2, gate=gate, random_state=0, grow="freeze")
    moe.fit(Xtr[old], ytr[old])
    before = [pickle.dumps(e) for e in moe.experts_]
    variances = moe.noise_variance_.copy()
    assert moe.score(Xte, yte) < 0.5
    moe.set_params(n_experts=3, warm_start=True).fit(Xtr, ytr)
    assert moe.n_experts_ == 3
    assert [pickle.dumps(e) for e in moe.experts_[:2]] == before  # bit for bit
    assert_array_equal(moe.noise_variance_[:2], variances)
    assert abs(moe.score(Xte, yte) - scratch.score(Xte, yte)) < 0.01
    assert_allclose(moe.experts_[2].coef_[0], -1.5, atol=0.1)  # the new piece


def test_growth_refit_and_frozen_on_the_full_problem():
    Xtr, Xte, ytr, yte = _split()
    gate = SoftmaxGate(alpha=0.01)
    scratch = MixtureOfExpertsRegressor(n_experts=3, gate=gate, random_state=0).fit(Xtr, ytr)
    scores = {}
    for grow in ["refit", "freeze"]:
        moe = MixtureOfExpertsRegressor(n_experts=2, gate=gate, random_state=0, grow=grow)
        two = moe.fit(Xtr, ytr).score(Xte, yte)
        coef = [e.coef_.copy() for e in moe.experts_]
        moe.set_params(n_experts=3, warm_start=True).fit(Xtr, ytr)
        scores[grow] = moe.score(Xte, yte)
        assert scores[grow] > two + 0.15
        if grow == "freeze":
            for e, c in zip(moe.experts_, coef):
                assert_array_equal(e.coef_, c)
    assert abs(scores["refit"] - scratch.score(Xte, yte)) < 0.01
    # Frozen, the 2-expert fit's line across two pieces stays: growth helps,
    # but cannot reach the scratch fit here (see the docstring of ``grow``).
    assert scores["freeze"] < scores["refit"]


# ----------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, msg",
    [
        (dict(top_k=0), "The 'top_k' parameter"),
        (dict(min_expert_weight=1.0), "The 'min_expert_weight' parameter"),
        (dict(on_collapse="kill"), "The 'on_collapse' parameter"),
        (dict(grow="sometimes"), "The 'grow' parameter"),
        (dict(gate=SoftmaxGate(balance=-1.0)), "The 'balance' parameter"),
    ],
)
def test_bad_routing_parameters_are_named(params, msg):
    X, y = make_piecewise(n=50)
    moe = MixtureOfExpertsRegressor(**params)
    with pytest.raises(ValueError, match=msg):
        moe.fit(X, y)
    assert not hasattr(moe, "n_features_in_")


class _CountingRegressor(LinearRegression):
    """LinearRegression that records how many rows each predict call sees."""

    calls = []

    def predict(self, X):
        _CountingRegressor.calls.append(X.shape[0])
        return super().predict(X)


def test_sparse_em_runs_experts_on_their_candidate_rows_only():
    # Conditional computation in fitting: with top_k=1 of 8 experts, every
    # EM iteration evaluates each row on at most 2 experts (its top expert by
    # gate probability and the one holding its posterior), not on all 8.
    X, y = make_piecewise(n=800)
    _CountingRegressor.calls = []
    moe = _quiet(
        MixtureOfExpertsRegressor(
            _CountingRegressor(), n_experts=8, top_k=1, max_iter=6, tol=0, random_state=0,
            min_expert_weight=0,
        ),
        X, y,
    )
    calls = np.array(_CountingRegressor.calls)
    n_iter = moe.n_iter_
    # 8 predict calls per iteration on candidate rows, then one full pass
    # (8 calls on all rows) for the fitted model's responsibilities.
    assert calls.size == 8 * n_iter + 8
    per_iteration = calls[: 8 * n_iter].reshape(n_iter, 8).sum(axis=1)
    assert np.all(per_iteration <= 2 * 800)
    assert np.all(calls[8 * n_iter :] == 800)
    assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-9)
    assert_allclose(moe.log_likelihood_, moe.log_prob(X, y).mean(), rtol=1e-10)
