"""The defaults (issue 13): the ``init="auto"`` pool, StandardizedRidge experts,
batched logistic experts in EM, and the warnings about the optimum."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression

from skmoe import (
    MixtureOfExpertsClassifier,
    MixtureOfExpertsRegressor,
    SoftmaxGate,
    StandardizedRidge,
)


def _two_curves(seed=1, n=200):
    """flexmix's NPreg design: a line and a parabola, mixed evenly."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 10, n)
    first = rng.rand(n) < 0.5
    y = np.where(first, 5 * x, 15 + 10 * x - x**2) + 3 * rng.randn(n)
    return np.column_stack([x, x**2]), y


_CONSTANT = dict(n_experts=2, gate_features=np.zeros(2, dtype=bool), gate=SoftmaxGate(alpha=0))


def test_auto_reaches_the_optimum_a_kmeans_start_misses():
    X, y = _two_curves()
    n = len(y)
    kmeans = MixtureOfExpertsRegressor(init="kmeans", **_CONSTANT).fit(X, y)
    auto = MixtureOfExpertsRegressor(random_state=0, **_CONSTANT).fit(X, y)
    many = MixtureOfExpertsRegressor(
        init="random", n_init=20, random_state=0, **_CONSTANT
    ).fit(X, y)
    assert auto.log_likelihood_ * n > kmeans.log_likelihood_ * n + 30
    assert auto.log_likelihood_ * n >= many.log_likelihood_ * n - 0.01
    # The pool's record: 40 short runs plus the k-means start, 3 continued.
    assert auto.init_objectives_.shape == (41,)
    assert auto.init_candidates_.shape == (3,)
    assert auto.log_likelihood_ >= auto.init_candidates_.max() - 1e-12 - 1.0
    assert kmeans.init_objectives_ is None
    assert auto.degenerate_experts_ == []


def test_random_state_changes_the_pool():
    X, y = _two_curves()
    a = MixtureOfExpertsRegressor(random_state=0, **_CONSTANT).fit(X, y)
    b = MixtureOfExpertsRegressor(random_state=1, **_CONSTANT).fit(X, y)
    c = MixtureOfExpertsRegressor(random_state=0, **_CONSTANT).fit(X, y)
    assert not np.allclose(a.init_objectives_, b.init_objectives_)
    np.testing.assert_array_equal(a.init_objectives_, c.init_objectives_)


def _quiet_column(seed=0, n=200):
    """Two regimes apart in x1; x2 barely varies in the first one."""
    rng = np.random.RandomState(seed)
    first = np.arange(n) < n // 2
    x1 = np.where(first, rng.uniform(-2, -1, n), rng.uniform(1, 2, n))
    x2 = np.where(first, 1e-3 * rng.randn(n), rng.randn(n))
    y = np.where(first, 1 + x1, 5 - x1 + x2) + 0.3 * rng.randn(n)
    return np.column_stack([x1, x2]), y


def test_far_out_row_stays_in_a_sane_range():
    X, y = _quiet_column()
    # Inside the training range of every column, but x2 = 2 is far from the
    # first regime's rows.
    far = np.array([[-1.5, 2.0]])
    span = np.ptp(y)
    default = MixtureOfExpertsRegressor(init="kmeans", random_state=0).fit(X, y)
    pred = default.predict(far)[0]
    assert y.min() - span <= pred <= y.max() + span
    assert isinstance(default.experts_[0], StandardizedRidge)
    # The mechanism: a least-squares expert fits a slope no data support.
    ols = MixtureOfExpertsRegressor(
        experts=LinearRegression(), init="kmeans", random_state=0
    ).fit(X, y)
    assert abs(ols.predict(far)[0]) > 10 * span


def test_mixture_fixes_the_scale_of_standardized_ridge_experts():
    X, y = _quiet_column()
    moe = MixtureOfExpertsRegressor(init="kmeans", random_state=0).fit(X, y)
    for expert in moe.experts_:
        np.testing.assert_allclose(expert.scale, X.std(axis=0))
    # Its own fit (the generic path) gives the batched path's model.
    w = moe.responsibilities(X, y)[:, 0]
    own = clone(moe.experts_[0]).fit(X, y, sample_weight=w)
    again = MixtureOfExpertsRegressor(
        experts=moe.experts_[0].__class__(scale=X.std(axis=0)), init="kmeans",
        random_state=0,
    ).fit(X, y)
    np.testing.assert_allclose(again.predict(X), moe.predict(X), atol=1e-10)
    assert own.coef_.shape == (2,)


class _GenericLogistic(LogisticRegression):
    """Not batchable (a subclass): fitted by its own ``fit`` every iteration."""


def _blobs(seed=0, n=300):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    logit = np.where(X[:, 0] > 0, 2 * X[:, 1], -2 * X[:, 2])
    y = (rng.rand(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_batched_logistic_experts_in_em_equal_the_generic_path():
    X, y = _blobs()
    kw = dict(init="kmeans", max_iter=15, tol=0.0, random_state=0)
    batched = MixtureOfExpertsClassifier(experts=LogisticRegression(), **kw)
    generic = MixtureOfExpertsClassifier(
        experts=_GenericLogistic(solver="newton-cholesky", tol=1e-12, max_iter=1000),
        **kw,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batched.fit(X, y)
        generic.fit(X, y)
    np.testing.assert_allclose(
        batched.log_likelihood_history_, generic.log_likelihood_history_, atol=1e-6
    )
    np.testing.assert_allclose(batched.predict_proba(X), generic.predict_proba(X), atol=1e-6)
    for a, b in zip(batched.experts_, generic.experts_):
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5)
        # Each batched expert is scikit-learn's fit with the same weights.
        assert type(a) is LogisticRegression


def test_classifier_default_gate_and_pool():
    X, y = _blobs()
    moe = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    assert moe.gate_.alpha == 10.0
    # The polished pool (skmoe/_polish.py) tries at least 2 of its 21 starts.
    assert 2 <= moe.init_objectives_.shape[0] <= 21
    assert MixtureOfExpertsRegressor()._default_gate().alpha == 1.0


def test_degenerate_expert_warns_and_is_recorded():
    rng = np.random.RandomState(0)
    n = 120
    X = rng.uniform(-1, 1, (n, 1))
    y = 2 * X[:, 0] + 0.5 * rng.randn(n)
    y[:2] = 10.0  # two rows with the same target: an expert fits them exactly
    init = np.zeros((n, 3))
    init[:2, 2] = 1.0
    init[2:, 0] = 1.0
    init[2:, 1] = 1.0
    init[2:, :2] += rng.rand(n - 2, 2)
    moe = MixtureOfExpertsRegressor(
        n_experts=3, init=init, gate_features=np.zeros(1, dtype=bool), max_iter=20
    )
    with pytest.warns(UserWarning, match="Expert 2 .* is degenerate"):
        moe.fit(X, y)
    assert moe.degenerate_experts_ == [2]


def test_no_warning_on_a_clean_problem():
    X, y = _two_curves()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moe = MixtureOfExpertsRegressor(random_state=0, **_CONSTANT).fit(X, y)
    assert moe.degenerate_experts_ == []


def test_disagreement_warning(monkeypatch):
    from skmoe import _pool

    X, y = _two_curves()
    real = _pool.run_pool

    def disagreeing(*args, **kwargs):
        result = real(*args, **kwargs)
        result.disagree = True
        return result

    monkeypatch.setattr(_pool, "run_pool", disagreeing)
    with pytest.warns(UserWarning, match="candidates disagree"):
        MixtureOfExpertsRegressor(random_state=0, **_CONSTANT).fit(X, y)


def test_pool_on_a_subsample_for_large_n():
    rng = np.random.RandomState(0)
    n = 6000
    X = rng.uniform(-1, 1, (n, 1))
    y = np.where(X[:, 0] > 0, 3 * X[:, 0], -3 * X[:, 0]) + 0.1 * rng.randn(n)
    moe = MixtureOfExpertsRegressor(random_state=0, max_iter=50).fit(X, y)
    assert moe.score(X, y) > 0.95
    assert moe.init_objectives_.shape == (41,)


def test_pool_skipped_for_other_experts():
    from sklearn.tree import DecisionTreeRegressor

    X, y = _quiet_column()
    moe = MixtureOfExpertsRegressor(
        experts=DecisionTreeRegressor(max_depth=2), random_state=0
    ).fit(X, y)
    assert moe.init_objectives_ is None


@pytest.mark.parametrize("gate", ["classifier", "hierarchical"])
def test_pool_skipped_for_other_gates(gate):
    # A ClassifierGate or HierarchicalGate refits scikit-learn estimators at
    # every iteration: init="auto" starts from k-means there (the pool's
    # hundreds of short iterations cost seconds on a few dozen rows).
    from skmoe import ClassifierGate, HierarchicalGate

    X, y = _two_curves(n=80)
    make_gate = {
        "classifier": lambda: ClassifierGate(LogisticRegression()),
        "hierarchical": lambda: HierarchicalGate((2, 2)),
    }[gate]
    n_experts = 4 if gate == "hierarchical" else 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = MixtureOfExpertsRegressor(
            gate=make_gate(), n_experts=n_experts, random_state=0
        ).fit(X, y)
        kmeans = MixtureOfExpertsRegressor(
            gate=make_gate(), n_experts=n_experts, init="kmeans", random_state=0
        ).fit(X, y)
    assert auto.init_objectives_ is None
    np.testing.assert_array_equal(auto.predict(X), kmeans.predict(X))


def _two_curves_three_experts():
    """NPreg's design fitted with three experts gated on x: the pool's
    20-iteration ranking misses the best optimum here (checked)."""
    X, y = _two_curves(seed=8)
    kw = dict(n_experts=3, gate_features=[0], gate=SoftmaxGate(alpha=0.0))
    return X, y, kw


def test_race_reaches_the_optimum_the_first_ranking_misses(monkeypatch):
    from skmoe import _pool

    X, y, kw = _two_curves_three_experts()
    n = len(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        many = MixtureOfExpertsRegressor(
            LinearRegression(), init="random", n_init=40, random_state=0, **kw
        ).fit(X, y)
        auto = MixtureOfExpertsRegressor(LinearRegression(), random_state=0, **kw).fit(X, y)
        monkeypatch.setattr(_pool, "FACTORS", ())  # no rounds: the old pool
        unraced = MixtureOfExpertsRegressor(
            LinearRegression(), random_state=0, **kw
        ).fit(X, y)
    assert auto.log_likelihood_ * n >= many.log_likelihood_ * n - 0.01
    assert unraced.log_likelihood_ * n < many.log_likelihood_ * n - 1.0  # can fail
    assert auto.degenerate_experts_ == []


class _Run:
    """What :func:`skmoe._pool.race` reads of a run: its objective, and the
    state that :func:`skmoe._pool.degenerate` checks (one expert whose noise
    variance is ``variance``)."""

    def __init__(self, name, objective, variance=1.0):
        self.name, self.objective, self.usage = name, objective, None
        self.state = SimpleNamespace(experts=[None], theta=np.array([variance]))


def test_race_keeps_the_best_half_then_a_quarter():
    """41 runs: the best 20 (a degenerate run last whatever its objective)
    get FACTORS[0] x short_iter more iterations, the best 10 of those
    FACTORS[1] x short_iter, and the best 3 of those are returned. Each round
    here reverses the ranking of the runs it advances: the later ranking
    decides, not the first."""
    from skmoe import _em, _pool

    floor = 1e-6
    sub = SimpleNamespace(
        y=np.zeros(100), likelihood=SimpleNamespace(variance_floor_=floor)
    )
    objectives = np.random.RandomState(0).normal(size=41)
    runs = [_Run(i, v) for i, v in enumerate(objectives)]
    runs[7] = _Run(7, 10.0, variance=floor)  # the best objective, degenerate
    calls = []

    def advance(chosen, config):
        calls.append(([r.name for r in chosen], config.max_iter))
        return [_Run(r.name, float(k)) for k, r in enumerate(chosen)]

    out = _pool.race(runs, sub, _em.EMConfig(max_iter=20), 3, advance)
    first = [int(i) for i in np.argsort(-objectives, kind="stable") if i != 7][:20]
    f0, f1 = _pool.FACTORS
    assert calls[0] == (first, round(f0 * 20))
    assert calls[1] == (first[::-1][:10], round(f1 * 20))
    assert [r.name for r in out] == calls[1][0][::-1][:3]


def test_pool_runs_its_tasks_in_jobs_with_the_same_result():
    """n_jobs spreads the pool's short runs over joblib workers: the fit is
    the serial one, bit for bit."""
    X, y, kw = _two_curves_three_experts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = MixtureOfExpertsRegressor(LinearRegression(), random_state=0, **kw).fit(X, y)
        jobs = MixtureOfExpertsRegressor(
            LinearRegression(), random_state=0, n_jobs=2, **kw
        ).fit(X, y)
    np.testing.assert_array_equal(jobs.init_objectives_, serial.init_objectives_)
    np.testing.assert_array_equal(jobs.init_candidates_, serial.init_candidates_)
    assert jobs.log_likelihood_ == serial.log_likelihood_
    np.testing.assert_array_equal(jobs.predict(X), serial.predict(X))
