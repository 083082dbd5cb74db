"""Bad input and misuse on the paths of issue 28 (items 2-10), the warnings'
line and the meaning of ``verbose``; every test fails on da4ebc0."""

import pickle
import re
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor
from sklearn.utils import shuffle

import skmoe
from skmoe import (
    HierarchicalGate,
    MixtureOfExpertsClassifier,
    MixtureOfExpertsRegressor,
)
from skmoe._gating import _weighted_standardization
from skmoe._init import quantile_init_labels


def _two_regimes(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    y = np.where(X[:, 0] > 0, 2.0 * X[:, 1], -X[:, 1]) + 0.1 * rng.normal(size=n)
    return X, y


# ----------------------------------------------------------------------
# The k-means start of a repeated row and of a weighted row (the common
# check's HierarchicalGate failure on another OpenBLAS kernel)
# ----------------------------------------------------------------------
def test_repeated_and_weighted_rows_start_in_the_same_cluster():
    """The data of scikit-learn's sample-weight equivalence check: a BLAS
    matrix-vector product rounded equal rows differently (SkylakeX kernel),
    so copies of a row fell on both sides of a quantile cut at its own
    value and the repeated and weighted fits started apart."""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15).astype(float)
    sw = rng.randint(0, 5, size=15)

    def start(X, y, weight):  # the fit's k-means start (skmoe._init)
        D = np.column_stack([X, y])
        scale = _weighted_standardization(D, weight)[1]
        return quantile_init_labels(D / scale, weight, 4)

    copies = X.repeat(sw, axis=0)
    repeated = start(copies, y.repeat(sw), np.ones(sw.sum()))
    Xw, yw, sww = shuffle(X, y, sw.astype(float), random_state=0)
    weighted = start(Xw, yw, sww)
    label_of = {tuple(row): lab for row, lab, w in zip(Xw, weighted, sww) if w > 0}
    # Every copy of a row in one cluster, the same as the weighted row's.
    assert_array_equal(repeated, [label_of[tuple(row)] for row in copies])


# ----------------------------------------------------------------------
# 2-3. Weights and values whose squares overflow
# ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MixtureOfExpertsRegressor, MixtureOfExpertsClassifier])
def test_sample_weight_summing_past_float64_is_refused(cls):
    X, y = _two_regimes(50)
    if cls is MixtureOfExpertsClassifier:
        y = (y > 0).astype(int)
    est = cls(random_state=0)
    with pytest.raises(ValueError, match="sample_weight sums to more than float64"):
        est.fit(X, y, sample_weight=np.full(50, 1e308))
    assert not hasattr(est, "n_features_in_")


def test_weighted_squares_of_X_overflowing_are_refused():
    X, y = _two_regimes(50)
    with pytest.raises(ValueError, match=r"sample_weight sums to 5e\+251 and X holds"):
        MixtureOfExpertsRegressor(random_state=0).fit(
            X * 1e100, y, sample_weight=np.full(50, 1e250)
        )
    # The same weights on X of ordinary size fit.
    moe = MixtureOfExpertsRegressor(init="kmeans", random_state=0)
    moe.fit(X, y, sample_weight=np.full(50, 1e250))
    assert np.isfinite(moe.predict(X, return_std=True)).all()


@pytest.mark.parametrize("init", ["kmeans", "random", "auto"])
@pytest.mark.parametrize("value", [1e152, 1e160])
def test_constant_huge_y_is_refused_at_the_one_limit(init, value):
    X, _ = _two_regimes(50)
    limit = f"{skmoe._magnitude.MAX_ABS_VALUE:.0e}"
    message = rf"y holds values up to .* accepts values up to {re.escape(limit)}"
    with pytest.raises(ValueError, match=message):
        MixtureOfExpertsRegressor(init=init, random_state=0).fit(X, np.full(50, value))
    # At the limit itself: a finite fit and finite predictions.
    moe = MixtureOfExpertsRegressor(init=init, random_state=0)
    moe.fit(X, np.full(50, 1e150))
    mean, std = moe.predict(X, return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all()


# ----------------------------------------------------------------------
# 4. partial_fit after set_params
# ----------------------------------------------------------------------
def _sgd_mixture():
    return MixtureOfExpertsRegressor(
        SGDRegressor(random_state=0), n_experts=2, solver="gd", random_state=0
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_honours_parameters_set_since_the_last_batch():
    X, y = _two_regimes(200)
    moe = _sgd_mixture().partial_fit(X, y)
    # Reference: the same mixture with the new values also written into
    # its fitted experts and gate by hand (SGDRegressor.partial_fit reads
    # its alpha at every call).
    by_hand = pickle.loads(pickle.dumps(moe))
    by_hand.set_params(experts__alpha=0.5, gate__alpha=50.0)
    for expert in by_hand.experts_:
        expert.alpha = 0.5
    by_hand.gate_.alpha = 50.0
    by_hand.partial_fit(X, y)
    moe.set_params(experts__alpha=0.5, gate__alpha=50.0)
    moe.partial_fit(X, y)
    assert [e.alpha for e in moe.experts_] == [0.5, 0.5]
    assert moe.gate_.alpha == 50.0
    assert_allclose(moe.predict(X), by_hand.predict(X), rtol=1e-12, atol=1e-12)
    # The new values matter: the second batch without them gives another model.
    unchanged = _sgd_mixture().partial_fit(X, y).partial_fit(X, y)
    assert not np.allclose(moe.predict(X), unchanged.predict(X))


# ----------------------------------------------------------------------
# 5. One estimator fitted from two threads
# ----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_two_threads_fitting_one_estimator():
    X, y = _two_regimes(300)
    est = MixtureOfExpertsRegressor(
        n_experts=2, init="kmeans", max_iter=30, random_state=0
    )
    alone = clone(est).fit(X, y).predict(X)
    errors = []

    def fit_several():
        try:
            for _ in range(4):
                est.fit(X, y)
        except Exception as exc:  # what the test looks for
            errors.append(exc)

    threads = [threading.Thread(target=fit_several) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_allclose(est.predict(X), alone, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------
# 6. A DataFrame with an unencoded text column
# ----------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["em", "gd"])
def test_text_column_named_with_the_expert(solver):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({
        "a": rng.normal(size=60), "city": rng.choice(["Rome", "Oslo"], 60),
        "b": rng.normal(size=60),
    })
    y = frame["a"].to_numpy() + rng.normal(size=60)
    expert = "StandardizedRidge" if solver == "em" else "SGDRegressor"
    with pytest.raises(ValueError, match=rf"expert {expert} .*\['city'\].*'Rome'"):
        MixtureOfExpertsRegressor(solver=solver, random_state=0).fit(frame, y)


# ----------------------------------------------------------------------
# 9. The constant gate with a DataFrame
# ----------------------------------------------------------------------
def test_constant_gate_on_a_dataframe_equals_the_array_fit():
    pd = pytest.importorskip("pandas")
    X, y = _two_regimes(80)
    frame = pd.DataFrame(X, columns=["u", "v"])
    on_array = MixtureOfExpertsRegressor(gate_features=[], random_state=0).fit(X, y)
    on_frame = MixtureOfExpertsRegressor(gate_features=[], random_state=0).fit(frame, y)
    assert_allclose(
        on_frame.predict(frame), on_array.predict(X), rtol=1e-10, atol=1e-12
    )
    assert len(on_frame.gate_features_) == 0


# ----------------------------------------------------------------------
# 10. skops
# ----------------------------------------------------------------------
@pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::sklearn.exceptions.ConvergenceWarning"
)
@pytest.mark.parametrize("kind", ["default", "hierarchical", "classifier"])
def test_skops_round_trip_with_public_types_only(kind):
    sio = pytest.importorskip("skops.io")
    X, y = _two_regimes(120)
    if kind == "classifier":
        est, y = MixtureOfExpertsClassifier(random_state=0), (y > 0).astype(int)
    elif kind == "hierarchical":
        est = MixtureOfExpertsRegressor(
            gate=HierarchicalGate((2, 2)), n_experts=4, init="kmeans", max_iter=10,
            random_state=0,
        )
    else:
        est = MixtureOfExpertsRegressor(random_state=0)
    est.fit(X, y)
    data = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=data)
    private = [t for t in untrusted if t.rsplit(".", 1)[1] not in skmoe.__all__]
    assert private == []
    loaded = sio.loads(data, trusted=untrusted)
    assert_array_equal(loaded.predict(X), est.predict(X))
    if kind == "hierarchical":
        assert_allclose(loaded.gate_.predict_proba(X), est.gate_.predict_proba(X))
        # The tree's gates are the node gates (one object each).
        tree_gates = [node.gate for node in loaded.gate_._nodes()]
        assert all(a is b for a, b in zip(loaded.gate_.node_gates_, tree_gates))


# ----------------------------------------------------------------------
# Warnings point at the user's line; verbose=1 and 2 differ
# ----------------------------------------------------------------------
def test_warnings_point_at_the_callers_line():
    X, y = _two_regimes(60)
    y = np.abs(X[:, 0]) + 0.3 * np.random.RandomState(1).normal(size=60)
    est = MixtureOfExpertsRegressor(max_iter=2, init="kmeans", random_state=0)
    with pytest.warns(ConvergenceWarning) as record:
        est.fit(X, y)
    assert {w.filename for w in record} == {__file__}


def test_verbose_1_summarises_and_2_prints_every_iteration(capsys):
    X, y = _two_regimes(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MixtureOfExpertsRegressor(n_experts=2, random_state=0, verbose=1).fit(X, y)
    one = capsys.readouterr().out.splitlines()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MixtureOfExpertsRegressor(n_experts=2, random_state=0, verbose=2).fit(X, y)
    two = capsys.readouterr().out.splitlines()
    assert any(line.startswith("init='auto':") for line in one)
    assert not any("Iteration" in line for line in one)
    line = r"\[pool candidate\] Iteration +1: log-likelihood"
    assert any(re.match(line, ln) for ln in two)
    assert set(one) <= set(two)
