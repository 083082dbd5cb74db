"""Batched Newton fits of LogisticRegression experts (``skmoe._linear``).

Every expert fitted by :func:`fit_logistic_experts` must be scikit-learn's
``LogisticRegression`` fitted with the same sample weights, to 1e-6 in
``coef_``, ``intercept_`` and ``predict_proba``. The reference is
scikit-learn's own fit run to a tight tolerance (``newton-cholesky``), since
every batchable solver minimises the same strictly convex objective.
"""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skmoe import _linear

ATOL = 1e-6


class _MyLogistic(LogisticRegression):
    pass


def _problem(n_classes, seed=0, n=400, d=4):
    """Gaussian features, classes drawn from a multinomial logit model."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * [1.0, 2.0, 0.5, 1.0][:d] + 0.3
    beta = rng.normal(size=(d, n_classes))
    y = np.argmax(X @ beta + rng.gumbel(size=(n, n_classes)), axis=1)
    return X, y


def _reference(expert, X, y, sample_weight):
    """scikit-learn's fit of a copy of ``expert``, to a tight tolerance."""
    ref = LogisticRegression(
        C=expert.C,
        fit_intercept=expert.fit_intercept,
        solver="newton-cholesky",
        tol=1e-12,
        max_iter=1000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ref.fit(X, y, sample_weight=sample_weight)


def _assert_same_fit(mine, ref, X, atol=ATOL):
    np.testing.assert_array_equal(mine.classes_, ref.classes_)
    assert mine.n_features_in_ == ref.n_features_in_
    for name in ("coef_", "intercept_", "n_iter_"):
        assert getattr(mine, name).shape == getattr(ref, name).shape, name
        assert getattr(mine, name).dtype == getattr(ref, name).dtype, name
    np.testing.assert_allclose(mine.coef_, ref.coef_, rtol=0, atol=atol)
    np.testing.assert_allclose(mine.intercept_, ref.intercept_, rtol=0, atol=atol)
    np.testing.assert_allclose(
        mine.predict_proba(X), ref.predict_proba(X), rtol=0, atol=atol
    )


@pytest.mark.parametrize(
    "expert, expected",
    [
        (LogisticRegression(), True),
        (LogisticRegression(C=0.01, fit_intercept=False), True),
        (LogisticRegression(C=np.inf), True),
        (LogisticRegression(solver="newton-cg", warm_start=True), True),
        (LogisticRegression(solver="newton-cholesky"), True),
        (LogisticRegression(solver="sag"), True),
        (LogisticRegression(solver="saga"), True),
        (LogisticRegression(solver="liblinear"), False),
        (LogisticRegression(solver="saga", l1_ratio=1.0), False),
        (LogisticRegression(solver="saga", l1_ratio=0.5), False),
        (LogisticRegression(class_weight="balanced"), False),
        (LogisticRegression(class_weight={0: 2.0}), False),
        (LogisticRegression(solver="liblinear", dual=True), False),
        (_MyLogistic(), False),
    ],
)
def test_batchable_logistic(expert, expected):
    assert _linear.batchable_logistic(expert) is expected


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize(
    "penalty, expected", [("l2", True), (None, True), ("l1", False)]
)
def test_batchable_logistic_deprecated_penalty(penalty, expected):
    expert = LogisticRegression(penalty=penalty, solver="saga")
    assert _linear.batchable_logistic(expert) is expected


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("C", [0.01, 1.0, 1e4, np.inf])
def test_equals_sklearn(n_classes, fit_intercept, C):
    X, y = _problem(n_classes, seed=n_classes)
    rng = np.random.RandomState(1)
    weights = rng.uniform(size=(X.shape[0], 3)) * [1.0, 1e-3, 1e3]
    experts = [LogisticRegression(C=C, fit_intercept=fit_intercept) for _ in range(3)]
    fitted = _linear.fit_logistic_experts(experts, X, y, np.arange(n_classes), weights)
    assert fitted == [True] * 3
    for k, expert in enumerate(experts):
        _assert_same_fit(expert, _reference(expert, X, y, weights[:, k]), X)


def test_mixed_experts_and_labels():
    """Experts with different C and intercepts in one call; string labels."""
    X, y = _problem(3, seed=5)
    labels = np.array(["a", "b", "c"])
    weights = np.random.RandomState(2).dirichlet(np.ones(3), size=X.shape[0])
    experts = [
        LogisticRegression(C=0.1),
        LogisticRegression(C=10.0, fit_intercept=False, solver="sag"),
        LogisticRegression(C=np.inf, solver="newton-cg"),
    ]
    assert _linear.fit_logistic_experts(experts, X, y, labels, weights) == [True] * 3
    for k, expert in enumerate(experts):
        _assert_same_fit(expert, _reference(expert, X, labels[y], weights[:, k]), X)
        assert list(expert.predict(X[:5])) == list(
            labels[np.argmax(expert.predict_proba(X[:5]), axis=1)]
        )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_zero_weights_equal_dropped_rows(n_classes):
    X, y = _problem(n_classes, seed=7)
    weights = np.random.RandomState(3).uniform(size=(X.shape[0], 2))
    weights[:150, 0] = 0.0
    weights[::3, 1] = 0.0
    experts = [LogisticRegression(C=0.5) for _ in range(2)]
    assert _linear.fit_logistic_experts(experts, X, y, np.arange(n_classes), weights)
    for k, expert in enumerate(experts):
        _assert_same_fit(expert, _reference(expert, X, y, weights[:, k]), X)
        keep = weights[:, k] > 0
        dropped = _reference(expert, X[keep], y[keep], weights[keep, k])
        _assert_same_fit(expert, dropped, X)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_warm_start_from_perturbed_solution(n_classes):
    X, y = _problem(n_classes, seed=11)
    rng = np.random.RandomState(4)
    weights = rng.uniform(size=(X.shape[0], 2))
    experts = [LogisticRegression(C=2.0) for _ in range(2)]
    assert _linear.fit_logistic_experts(experts, X, y, np.arange(n_classes), weights)
    cold = [int(e.n_iter_[0]) for e in experts]
    for expert in experts:
        expert.coef_ = expert.coef_ + 0.01 * rng.normal(size=expert.coef_.shape)
        if n_classes > 2:
            expert.intercept_ = expert.intercept_ + 3.0  # a shift the loss cannot see
    assert _linear.fit_logistic_experts(experts, X, y, np.arange(n_classes), weights)
    for k, expert in enumerate(experts):
        _assert_same_fit(expert, _reference(expert, X, y, weights[:, k]), X)
        assert expert.n_iter_[0] < cold[k]


def test_warm_start_ignores_other_classes():
    """A fit on other classes (or with unusable values) is not a start."""
    X, y = _problem(3, seed=12)
    weights = np.ones((X.shape[0], 2))
    experts = [LogisticRegression(), LogisticRegression()]
    experts[0].fit(X, y == 1)  # binary: a different shape and classes
    experts[1].coef_ = np.full((3, X.shape[1]), np.nan)
    experts[1].intercept_ = np.zeros(3)
    experts[1].classes_ = np.arange(3)
    assert _linear.fit_logistic_experts(experts, X, y, np.arange(3), weights)
    for expert in experts:
        _assert_same_fit(expert, _reference(expert, X, y, weights[:, 0]), X)


def _seen_class_fit(X, y, w, seen, C):
    """sklearn's fit on the rows of the seen classes only (the limit problem).

    Two seen classes of a multinomial model are a binomial model whose
    penalty is half as strong (the two symmetric coefficient rows are
    opposite): ``C`` doubles.
    """
    rows = np.isin(y, seen) & (w > 0)
    C_seen = 2 * C if len(seen) == 2 else C
    return _reference(LogisticRegression(C=C_seen), X[rows], y[rows], w[rows])


@pytest.mark.parametrize("n_classes", [3, 4])
def test_weights_that_exclude_a_class(n_classes):
    X, y = _problem(n_classes, seed=13)
    weights = np.random.RandomState(5).uniform(size=(X.shape[0], 2))
    weights[y == 0, 0] = 0.0
    weights[y == n_classes - 1, 1] = 1e-14  # below 1e-10 of the total: unseen
    experts = [LogisticRegression(C=1.0) for _ in range(2)]
    assert _linear.fit_logistic_experts(experts, X, y, np.arange(n_classes), weights)
    for k, (expert, unseen) in enumerate(zip(experts, [0, n_classes - 1])):
        proba = expert.predict_proba(X)
        assert proba.shape == (X.shape[0], n_classes)
        assert np.all(proba[:, unseen] <= np.exp(-_linear._UNSEEN_GAP) * 1.0001)
        assert np.all(np.isfinite(expert.coef_))
        assert np.all(np.isfinite(expert.intercept_))
        np.testing.assert_allclose(expert.intercept_.sum(), 0.0, atol=1e-10)
        seen = np.setdiff1d(np.arange(n_classes), [unseen])
        w = np.where(y == unseen, 0.0, weights[:, k])
        limit = _seen_class_fit(X, y, w, seen, expert.C)
        np.testing.assert_allclose(
            proba[:, seen], limit.predict_proba(X), rtol=0, atol=ATOL
        )
        # scikit-learn with every row kept stops along the same ray.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = LogisticRegression(tol=1e-10, max_iter=10000).fit(
                X, y, sample_weight=weights[:, k]
            )
        np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("seen", [0, 1])
def test_binary_weights_on_one_class(seen):
    X, y = _problem(2, seed=17)
    weights = np.where(y == seen, 1.0, 0.0)[:, None]
    expert = LogisticRegression()
    assert _linear.fit_logistic_experts([expert], X, y, np.arange(2), weights) == [True]
    np.testing.assert_array_equal(expert.coef_, 0.0)
    proba = expert.predict_proba(X)
    assert np.all(proba[:, 1 - seen] <= np.exp(-_linear._UNSEEN_GAP) * 1.0001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(tol=1e-10).fit(X, y, sample_weight=weights[:, 0])
    np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=0, atol=ATOL)


def test_no_intercept_with_an_excluded_class_has_a_finite_optimum():
    X, y = _problem(3, seed=19)
    weights = np.where(y == 2, 0.0, 1.0)[:, None]
    expert = LogisticRegression(fit_intercept=False)
    assert _linear.fit_logistic_experts([expert], X, y, np.arange(3), weights)
    _assert_same_fit(expert, _reference(expert, X, y, weights[:, 0]), X)


def test_failure_leaves_the_expert_untouched():
    """Unpenalised and separable: no optimum, so Newton hands it back."""
    X, _ = _problem(2, seed=23)
    y = (X[:, 0] > 0.3).astype(int)
    expert = LogisticRegression(C=np.inf)
    weights = np.ones((X.shape[0], 1))
    fitted = _linear.fit_logistic_experts([expert], X, y, np.arange(2), weights)
    assert fitted == [False]
    assert not hasattr(expert, "coef_")


def test_feature_names_of_an_earlier_fit_are_dropped():
    pd = pytest.importorskip("pandas")
    X, y = _problem(2, seed=29)
    expert = LogisticRegression().fit(pd.DataFrame(X, columns=list("abcd")), y)
    weights = np.ones((X.shape[0], 1))
    assert _linear.fit_logistic_experts([expert], X, y, np.arange(2), weights)
    assert not hasattr(expert, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expert.predict_proba(X)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_logistic(n_classes):
    X, y = _problem(n_classes, seed=31)
    weights = np.random.RandomState(6).uniform(size=(X.shape[0], 3))
    experts = [LogisticRegression(C=c) for c in (0.1, 1.0, 10.0)]
    experts[2].fit(X, y, sample_weight=weights[:, 2])
    classes = np.arange(n_classes)
    _linear.fit_logistic_experts(experts[:2], X, y, classes, weights[:, :2])
    experts.append(_MyLogistic().fit(X, y))  # not batched
    out = np.full((X.shape[0], 4, n_classes), -1.0)
    done = _linear.predict_proba_logistic(experts, X, out)
    assert done == [True, True, True, False]
    for k in range(3):
        np.testing.assert_allclose(
            out[:, k], experts[k].predict_proba(X), rtol=0, atol=1e-14
        )
    np.testing.assert_array_equal(out[:, 3], -1.0)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_converges_on_many_random_problems(n_classes):
    """Newton (and its stopping rule at the rounding of the objective)."""
    for seed in range(8):
        X, y = _problem(n_classes, seed=100 + seed, n=300)
        rng = np.random.RandomState(seed)
        weights = rng.dirichlet(np.full(4, 0.5), size=X.shape[0])
        experts = [LogisticRegression(C=c) for c in (0.05, 1.0, 50.0, np.inf)]
        classes = np.arange(n_classes)
        fitted = _linear.fit_logistic_experts(experts, X, y, classes, weights)
        assert fitted == [True] * 4, seed
        for k, expert in enumerate(experts):
            _assert_same_fit(expert, _reference(expert, X, y, weights[:, k]), X)


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "sag", "saga"])
def test_same_optimum_as_every_batchable_solver(solver):
    """Each solver's objective (its scaling of C and the weights) is ours."""
    X, y = _problem(3, seed=37)
    weights = np.random.RandomState(7).uniform(size=(X.shape[0], 1)) * 5.0
    expert = LogisticRegression(C=0.5, solver=solver)
    assert _linear.fit_logistic_experts([expert], X, y, np.arange(3), weights)
    ref = LogisticRegression(C=0.5, solver=solver, tol=1e-12, max_iter=100000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y, sample_weight=weights[:, 0])
    _assert_same_fit(expert, ref, X)


def test_sparse_input_is_handed_back():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _problem(2, seed=41)
    expert = LogisticRegression()
    X_sparse = sparse.csr_matrix(X)
    weights = np.ones((X.shape[0], 1))
    fitted = _linear.fit_logistic_experts([expert], X_sparse, y, np.arange(2), weights)
    assert fitted == [False]
    expert.fit(X, y)
    out = np.zeros((X.shape[0], 1, 2))
    assert _linear.predict_proba_logistic([expert], X_sparse, out) == [False]


def test_too_many_parameters_or_no_weight_is_handed_back(monkeypatch):
    X, y = _problem(3, seed=43)
    weights = np.ones((X.shape[0], 2))
    weights[:, 1] = 0.0
    experts = [LogisticRegression(), LogisticRegression()]
    monkeypatch.setattr(_linear, "_MAX_NEWTON_PARAMS", 3 * (X.shape[1] + 1) - 2)
    fitted = _linear.fit_logistic_experts(experts, X, y, np.arange(3), weights)
    assert fitted == [False, False]
    monkeypatch.undo()
    fitted = _linear.fit_logistic_experts(experts, X, y, np.arange(3), weights)
    assert fitted == [True, False]
    assert not hasattr(experts[1], "coef_")


def test_partial_newton_steps_decrease_the_objective():
    """``partial=True``, ``max_iter=1``: one damped step, kept (generalised EM)."""
    X, y = _problem(3, seed=47)
    weights = np.random.RandomState(8).uniform(size=(X.shape[0], 2))
    experts = [LogisticRegression(), LogisticRegression()]
    strict = _linear.fit_logistic_experts(
        experts, X, y, np.arange(3), weights, max_iter=1
    )
    assert strict == [False, False]
    assert not hasattr(experts[0], "coef_")

    def objective(expert, w):
        proba = expert.predict_proba(X)[np.arange(X.shape[0]), y]
        return -w @ np.log(proba) + 0.5 * np.sum(expert.coef_**2) / expert.C

    before = weights.sum(axis=0) * np.log(3.0)  # at zero parameters
    fitted = _linear.fit_logistic_experts(
        experts, X, y, np.arange(3), weights, max_iter=1, partial=True
    )
    assert fitted == [True, True]
    for k, expert in enumerate(experts):
        assert expert.n_iter_[0] == 1
        assert objective(expert, weights[:, k]) < before[k]
    # Further calls, warm-started, reach the optimum.
    for _ in range(10):
        _linear.fit_logistic_experts(
            experts, X, y, np.arange(3), weights, max_iter=1, partial=True
        )
    for k, expert in enumerate(experts):
        _assert_same_fit(expert, _reference(expert, X, y, weights[:, k]), X)
