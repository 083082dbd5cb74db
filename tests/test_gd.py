"""solver="gd" and partial_fit: the on-line mixture of experts."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import check_grad
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

import naive
from conftest import make_piecewise
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, SoftmaxGate
from skmoe import _kernels
from skmoe._gating import _weighted_standardization
from skmoe._gating import gate_batch_gradient, gate_logits


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _gd_regressor(**kwargs):
    params = dict(
        experts=SGDRegressor(eta0=0.1),
        n_experts=3,
        gate=SoftmaxGate(alpha=0.01),
        solver="gd",
        random_state=0,
    )
    params.update(kwargs)
    return MixtureOfExpertsRegressor(**params)


def _three_class(n=1500):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, 2))
    y = np.where(X[:, 0] > 0, (X[:, 1] > 0).astype(int), 2 * (X[:, 1] > 0.5))
    return X, y


# ----------------------------------------------------------------------
# The gate's mini-batch gradient
# ----------------------------------------------------------------------
def _gradient_problem(seed=0, n=40, d=3, k=3):
    rng = np.random.RandomState(seed)
    Z = rng.normal(size=(n, d))
    Z[:, 0] = 10 * Z[:, 0] + 2000  # a "year" column: standardisation matters
    sw = rng.uniform(0.2, 3, size=n)
    log_lik = rng.normal(size=(n, k)) * 3
    log_lik[0, 1] = -np.inf  # an expert that rules a row out
    mean, scale = _weighted_standardization(Z, sw)
    W_s, b_s = rng.normal(size=(d, k)), rng.normal(size=k)
    return Z, sw, np.ascontiguousarray(log_lik), mean, scale, W_s, b_s


def _kernel_gradient(W_s, b_s, Z, log_lik, sw, mean, scale, alpha, total):
    """The gradient skmoe takes: posteriors at the current gate, then the kernel."""
    logits = gate_logits(W_s, b_s, Z, mean, scale)
    resp, _ = _kernels.e_step(_kernels.log_softmax_rows(logits), log_lik)
    return gate_batch_gradient(logits, Z, resp, sw, W_s, mean, scale, alpha, total)


def test_gate_batch_gradient_matches_finite_differences():
    Z, sw, log_lik, mean, scale, W_s, b_s = _gradient_problem()
    d, k = W_s.shape
    args = (Z, log_lik, sw, mean, scale, 0.7, 5 * sw.sum())

    def f(v):
        return naive.mixture_batch_objective(v[: d * k].reshape(d, k), v[d * k :], *args)

    def g(v):
        gW, gb = _kernel_gradient(v[: d * k].reshape(d, k), v[d * k :], *args)
        return np.concatenate([gW.ravel(), gb])

    x0 = np.concatenate([W_s.ravel(), b_s])
    assert check_grad(f, g, x0) < 1e-6 * max(1.0, np.linalg.norm(g(x0)))


def test_gate_batch_gradient_matches_numpy_reference():
    Z, sw, log_lik, mean, scale, W_s, b_s = _gradient_problem(seed=1)
    args = (Z, log_lik, sw, mean, scale, 0.3, 3 * sw.sum())
    gW, gb = _kernel_gradient(W_s, b_s, *args)
    ref_W, ref_b = naive.gate_batch_gradient(W_s, b_s, *args)
    assert_allclose(gW, ref_W, rtol=1e-10, atol=1e-12)
    assert_allclose(gb, ref_b, rtol=1e-10, atol=1e-12)


def test_batch_gradients_average_to_the_full_gradient():
    # Weighting every batch's gradient by its share of the weight gives the
    # full-data gradient: the mini-batch steps are unbiased.
    Z, sw, log_lik, mean, scale, W_s, b_s = _gradient_problem(seed=2, n=60)
    total = sw.sum()
    full = _kernel_gradient(W_s, b_s, Z, log_lik, sw, mean, scale, 0.5, total)
    acc_W, acc_b = np.zeros_like(W_s), np.zeros_like(b_s)
    for rows in np.array_split(np.random.RandomState(0).permutation(60), 4):
        share = sw[rows].sum() / total
        gW, gb = _kernel_gradient(
            W_s, b_s, Z[rows], np.ascontiguousarray(log_lik[rows]), sw[rows], mean,
            scale, 0.5, total,
        )
        acc_W += share * gW
        acc_b += share * gb
    assert_allclose(acc_W, full[0], rtol=1e-10)
    assert_allclose(acc_b, full[1], rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------
# gd reaches what EM reaches
# ----------------------------------------------------------------------
def test_gd_regressor_matches_em_on_three_pieces():
    X, y = make_piecewise(n=1500)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    em = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=3, gate=SoftmaxGate(alpha=0.01), random_state=0
    ).fit(Xtr, ytr)
    gd = _quiet(_gd_regressor().fit, Xtr, ytr)
    r2_em, r2_gd = em.score(Xte, yte), gd.score(Xte, yte)
    assert r2_em > 0.97
    assert abs(r2_gd - r2_em) <= 0.02 * r2_em
    slopes = sorted(e.coef_[0] for e in gd.experts_)
    assert_allclose(slopes, [-2.0, -1.5, 3.0], atol=0.15)
    assert_allclose(np.sqrt(gd.noise_variance_), 0.3, rtol=0.2)
    assert np.all(np.isfinite(gd.log_likelihood_history_))


def test_gd_classifier_matches_em_on_three_classes():
    X, y = _three_class()
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    em = MixtureOfExpertsClassifier(LogisticRegression(), n_experts=2, random_state=0)
    acc_em = em.fit(Xtr, ytr).score(Xte, yte)
    gd = MixtureOfExpertsClassifier(
        SGDClassifier(loss="log_loss", random_state=0), n_experts=2, solver="gd",
        random_state=0,
    )
    acc_gd = _quiet(gd.fit, Xtr, ytr).score(Xte, yte)
    single = LogisticRegression().fit(Xtr, ytr).score(Xte, yte)
    assert acc_em > single + 0.02  # the gate matters on this problem
    assert abs(acc_gd - acc_em) <= 0.02 * acc_em


def test_gd_streaming_partial_fit_matches_em():
    # The regression problem arriving in 30 chunks of 50 rows, 3 passes.
    X, y = make_piecewise(n=2000)
    Xte, yte = X[1500:], y[1500:]
    em = MixtureOfExpertsRegressor(n_experts=3, gate=SoftmaxGate(alpha=0.01), random_state=0)
    r2_em = em.fit(X[:1500], y[:1500]).score(Xte, yte)
    gd = _gd_regressor(batch_size=50)
    for _ in range(3):
        for rows in np.array_split(np.arange(1500), 30):
            gd.partial_fit(X[rows], y[rows])
    assert gd.n_iter_ == 90
    assert abs(gd.score(Xte, yte) - r2_em) <= 0.02 * r2_em


# ----------------------------------------------------------------------
# partial_fit conventions
# ----------------------------------------------------------------------
def test_fit_with_one_epoch_is_one_partial_fit_call():
    # Same initialisation, same shuffled pass (the same random stream).
    X, y = make_piecewise(n=300)
    a = _quiet(_gd_regressor(max_iter=1).fit, X, y)
    b = _gd_regressor().partial_fit(X, y)
    assert_array_equal(a.predict(X), b.predict(X))
    assert_array_equal(a.gate_.coef_, b.gate_.coef_)
    assert a.n_iter_ == b.n_iter_ == 1


def test_repeated_partial_fit_is_fit_without_penalty():
    # fit's epochs and partial_fit's calls differ only in the weight the gate
    # penalty is spread over (the training total vs. the weight seen so far).
    X, y = make_piecewise(n=300)
    gate = SoftmaxGate(alpha=0.0, max_iter=20)
    a = _quiet(_gd_regressor(gate=gate, max_iter=3, n_iter_no_change=5).fit, X, y)
    b = _gd_regressor(gate=gate)
    for _ in range(3):
        b.partial_fit(X, y)
    assert_allclose(a.predict(X), b.predict(X), rtol=1e-12)
    assert_allclose(a.log_likelihood_history_[-1], b.log_likelihood_, rtol=1e-12)


def test_partial_fit_continues_a_fit_and_warm_start_resets_the_optimizer():
    X, y = make_piecewise(n=600)
    fitted = _quiet(_gd_regressor(max_iter=40).fit, X, y)
    score, coef = fitted.score(X, y), fitted.gate_.coef_.copy()
    n_iter = fitted.n_iter_
    fitted.partial_fit(X[:100], y[:100])
    assert fitted.n_iter_ == n_iter + 1  # continued, not re-initialised
    assert fitted.score(X, y) > score - 0.01
    # warm_start: from the fitted parameters with a fresh optimiser.
    warm = _quiet(_gd_regressor(max_iter=40).fit, X, y)
    warm.set_params(warm_start=True, max_iter=1)
    _quiet(warm.fit, X, y)
    cold = _quiet(_gd_regressor(max_iter=1).fit, X, y)
    assert warm.n_iter_ == 1
    assert warm.score(X, y) > score - 0.01
    assert warm.score(X, y) > cold.score(X, y) + 0.05
    # a fresh Adam's first step moves every gate coefficient by ~learning_rate
    assert np.max(np.abs(warm.gate_.coef_ - coef)) < 1.0


def test_partial_fit_after_em_continues_from_em():
    X, y = make_piecewise(n=600)
    moe = MixtureOfExpertsRegressor(
        SGDRegressor(eta0=0.05, random_state=0), n_experts=3,
        gate=SoftmaxGate(alpha=0.01), random_state=0,
    )
    _quiet(moe.fit, X, y)
    score = moe.score(X, y)
    assert not hasattr(moe, "partial_fit")  # solver="em"
    moe.set_params(solver="gd", learning_rate_init=0.01)
    moe.partial_fit(X[:200], y[:200])
    assert moe.score(X, y) > score - 0.02
    # an EM refit drops the gd state
    moe.set_params(solver="em")
    _quiet(moe.fit, X, y)
    assert not hasattr(moe, "_gd_state")


def test_memory_does_not_grow_with_partial_fit_calls():
    X, y = make_piecewise(n=400)
    moe = _gd_regressor()
    sizes = []
    for i in range(30):
        moe.partial_fit(X[(i % 4) * 100 : (i % 4 + 1) * 100], y[(i % 4) * 100 : (i % 4 + 1) * 100])
        if i in (4, 29):
            sizes.append(len(pickle.dumps(moe)))
    # Equal but for counters whose pickle encoding widens (1 -> 2 bytes past
    # 255); storing anything per call would add at least 25 * 8 bytes.
    assert abs(sizes[1] - sizes[0]) <= 16
    assert moe.log_likelihood_history_.shape == (1,)


def test_partial_fit_refuses_a_batch_of_one_row_and_keeps_its_state():
    X, y = make_piecewise(n=300)
    moe = _gd_regressor().partial_fit(X, y)
    before = pickle.dumps(moe)
    with pytest.raises(ValueError, match="partial_fit needs a batch of at least 2 samples; got 1"):
        moe.partial_fit(X[:1], y[:1])
    assert pickle.dumps(moe) == before
    moe.partial_fit(X[:2], y[:2])  # two rows are a batch
    assert np.all(np.isfinite(moe.predict(X)))
    clf = MixtureOfExpertsClassifier(GaussianNB(), solver="gd", random_state=0)
    Xc, yc = _three_class(300)
    with pytest.raises(ValueError, match="at least 2 samples"):
        clf.partial_fit(Xc[:1], yc[:1], classes=[0, 1, 2])
    assert not hasattr(clf, "n_features_in_")


def test_classifier_partial_fit_stream_with_missing_classes_per_batch():
    X, y = _three_class(1200)
    order = np.argsort(y, kind="stable")  # batches of mostly one class
    clf = MixtureOfExpertsClassifier(
        SGDClassifier(loss="log_loss", random_state=0), n_experts=2, solver="gd",
        random_state=0,
    )
    shuffled = np.random.RandomState(0).permutation(1200)
    clf.partial_fit(X[shuffled[:200]], y[shuffled[:200]], classes=np.array([0, 1, 2]))
    for rows in np.array_split(order, 10):
        clf.partial_fit(X[rows], y[rows])
    for rows in np.array_split(shuffled, 6):
        clf.partial_fit(X[rows], y[rows], classes=[2, 1, 0])
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.score(X, y) > 0.9


# ----------------------------------------------------------------------
# Bad input: a clear error and nothing changed
# ----------------------------------------------------------------------
def _snapshot(moe, X):
    proba = moe.predict_proba(X) if hasattr(moe, "predict_proba") else moe.predict(X)
    return pickle.dumps(moe), proba


@pytest.mark.parametrize(
    "batch, msg",
    [
        (lambda X, y: (X[:, :1], y), "features"),
        (lambda X, y: (np.where(np.arange(len(X))[:, None] == 3, np.nan, X), y), "NaN"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.nan, y)), "NaN"),
        (lambda X, y: (X[0], y[:1]), "2D array"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    ],
)
def test_regressor_partial_fit_bad_batch_leaves_state_unchanged(batch, msg):
    X, y = make_piecewise(n=200)
    moe = _gd_regressor().partial_fit(X, y)
    before, pred = _snapshot(moe, X)
    Xb, yb = batch(X, y)
    with pytest.raises(ValueError, match=msg):
        moe.partial_fit(Xb, yb)
    after, pred_after = _snapshot(moe, X)
    assert before == after
    assert_array_equal(pred, pred_after)


@pytest.mark.parametrize(
    "batch, kwargs, msg",
    [
        (lambda X, y: (X, np.where(y == 2, 7, y)), {}, r"labels not in classes: \[7\]"),
        (lambda X, y: (X, y), {"classes": [0, 1, 2, 3]}, "not the same as on the first"),
        (lambda X, y: (X[:, :1], y), {}, "features"),
        (lambda X, y: (np.where(X > 2, np.inf, X), y), {}, "infinity"),
        (lambda X, y: (X, y), {"sample_weight": np.zeros(300)}, "Sample weights"),
    ],
)
def test_classifier_partial_fit_bad_batch_leaves_state_unchanged(batch, kwargs, msg):
    X, y = _three_class(300)
    clf = MixtureOfExpertsClassifier(GaussianNB(), n_experts=2, solver="gd", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    before, proba = _snapshot(clf, X)
    Xb, yb = batch(X, y)
    with pytest.raises(ValueError, match=msg):
        clf.partial_fit(Xb, yb, **kwargs)
    after, proba_after = _snapshot(clf, X)
    assert before == after
    assert_array_equal(proba, proba_after)


def test_first_partial_fit_errors_leave_the_estimator_unfitted():
    X, y = _three_class(300)
    clf = MixtureOfExpertsClassifier(GaussianNB(), n_experts=3, solver="gd")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"labels not in classes: \[2\]"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"at least max\(2, n_experts\)=3 samples"):
        clf.partial_fit(X[:2], y[:2], classes=[0, 1, 2])
    reg = _gd_regressor()
    with pytest.raises(ValueError, match=r"at least max\(2, n_experts\)=3 samples"):
        reg.partial_fit(X[:2], y[:2])
    for est in (clf, reg):
        assert not any(k.endswith("_") and not k.startswith("_") for k in vars(est))
    # and it still works afterwards
    clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_features_in_ == 2


# ----------------------------------------------------------------------
# Experts, parameters, tooling
# ----------------------------------------------------------------------
def test_experts_without_partial_fit_are_named():
    X, y = make_piecewise(n=100)
    with pytest.raises(TypeError, match=r"experts \(DecisionTreeRegressor\) has no partial_fit"):
        MixtureOfExpertsRegressor(DecisionTreeRegressor(), solver="gd").fit(X, y)
    moe = MixtureOfExpertsRegressor([SGDRegressor(), LinearRegression()], solver="gd")
    with pytest.raises(TypeError, match=r"experts\[1\] \(LinearRegression\) has no partial_fit"):
        moe.partial_fit(X, y)
    assert not hasattr(moe, "n_features_in_")
    # a Pipeline qualifies when every step has partial_fit (StandardScaler
    # has; PolynomialFeatures has not)
    pipe = make_pipeline(PolynomialFeatures(), SGDRegressor())
    with pytest.raises(TypeError, match=r"Pipeline\(PolynomialFeatures, SGDRegressor\)"):
        MixtureOfExpertsRegressor(pipe, solver="gd").fit(X, y)


def test_default_experts_for_gd_have_partial_fit():
    X, y = make_piecewise(n=200)
    moe = _quiet(MixtureOfExpertsRegressor(solver="gd", max_iter=3, random_state=0).fit, X, y)
    assert all(isinstance(e, SGDRegressor) for e in moe.experts_)
    Xc, yc = _three_class(200)
    clf = _quiet(MixtureOfExpertsClassifier(solver="gd", max_iter=3, random_state=0).fit, Xc, yc)
    assert all(isinstance(e, SGDClassifier) and e.loss == "log_loss" for e in clf.experts_)


def test_partial_fit_only_with_gd():
    moe = MixtureOfExpertsRegressor()
    assert not hasattr(moe, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as exc:
        moe.partial_fit(np.ones((4, 1)), np.ones(4))
    assert "only available for solver='gd'" in str(exc.value.__cause__)
    assert hasattr(MixtureOfExpertsClassifier(solver="gd"), "partial_fit")


class _UnweightedSGDRegressor(SGDRegressor):
    """An expert whose partial_fit takes no sample_weight."""

    def partial_fit(self, X, y):
        return super().partial_fit(X, y)


def test_experts_without_sample_weight_get_hard_assignments():
    X, y = make_piecewise(n=600)
    moe = _gd_regressor(experts=_UnweightedSGDRegressor(eta0=0.1), max_iter=100)
    assert _quiet(moe.fit, X, y).score(X, y) > 0.95
    with pytest.raises(
        ValueError, match=r"Expert 0 \(_UnweightedSGDRegressor\) takes no sample_weight"
    ):
        moe.partial_fit(X, y, sample_weight=np.r_[np.ones(300), 2 * np.ones(300)])


@pytest.mark.parametrize(
    "params, msg",
    [
        ({"solver": "newton"}, "'solver' parameter"),
        ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
        ({"learning_rate_init": 0.0}, "'learning_rate_init' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"n_iter_no_change": 0}, "'n_iter_no_change' parameter"),
        ({"momentum": 1.5}, "'momentum' parameter"),
    ],
)
def test_bad_gd_parameters_are_named(params, msg):
    X, y = make_piecewise(n=50)
    with pytest.raises(ValueError, match=msg):
        MixtureOfExpertsRegressor(**params).fit(X, y)


def test_early_stopping_records_validation_scores():
    X, y = make_piecewise(n=600)
    moe = _gd_regressor(early_stopping=True, n_iter_no_change=3, max_iter=200)
    moe.fit(X, y)
    assert moe.converged_
    assert moe.validation_scores_.shape == (moe.n_iter_,)
    assert moe.best_validation_score_ == moe.validation_scores_.max()
    assert moe.n_iter_ < 200
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        moe.partial_fit(X, y)
    no_es = _quiet(_gd_regressor(max_iter=2).fit, X, y)
    assert no_es.validation_scores_ is None


def test_sgd_optimizer_and_adaptive_learning_rate():
    X, y = make_piecewise(n=600)
    moe = _gd_regressor(
        optimizer="sgd", learning_rate="adaptive", learning_rate_init=0.5,
        n_iter_no_change=5, max_iter=400,
    )
    moe.fit(X, y)
    # "adaptive" divides the rate by 5 until it falls below 1e-6, then stops
    assert moe.converged_
    assert moe._gd_state.optimizer.learning_rate <= 1e-6
    assert moe.score(X, y) > 0.9


def test_random_state_makes_gd_reproducible():
    X, y = make_piecewise(n=300)
    a = _quiet(_gd_regressor(max_iter=5).fit, X, y)
    b = _quiet(_gd_regressor(max_iter=5).fit, X, y)
    c = _quiet(_gd_regressor(max_iter=5, random_state=1).fit, X, y)
    assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_pipeline_and_grid_search_with_gd():
    X, y = make_piecewise(n=400)
    pipe = make_pipeline(StandardScaler(), _gd_regressor(max_iter=20))
    assert _quiet(pipe.fit, X, y).score(X, y) > 0.8
    search = GridSearchCV(
        _gd_regressor(max_iter=15), {"learning_rate_init": [0.01, 0.1]}, cv=2
    )
    _quiet(search.fit, X, y)
    assert search.best_params_["learning_rate_init"] in (0.01, 0.1)
    assert search.best_estimator_.solver == "gd"


def test_degenerate_data_stays_finite_with_gd():
    X = np.ones((60, 2))
    y = np.zeros(60)
    moe = _quiet(_gd_regressor(max_iter=5).fit, X, y)
    assert np.all(np.isfinite(moe.predict(X)))
    assert np.all(np.isfinite(moe.noise_variance_))
    assert np.isfinite(moe.log_likelihood_)
    moe.partial_fit(X, y + 1e6)  # a wild batch
    assert np.all(np.isfinite(moe.predict(X)))
    assert np.all(np.isfinite(moe.gate_.coef_))


# ----------------------------------------------------------------------
# Routing and repair parameters under solver="gd" (issue 12)
# ----------------------------------------------------------------------
def test_gd_honours_top_k_in_every_e_step(monkeypatch):
    from skmoe import _routing

    seen = []
    original = _routing.e_step

    def spy(log_gate, log_lik, top_k, *args, **kwargs):
        seen.append(top_k)
        return original(log_gate, log_lik, top_k, *args, **kwargs)

    monkeypatch.setattr(_routing, "e_step", spy)
    X, y = make_piecewise()
    moe = _quiet(_gd_regressor(top_k=1, max_iter=3).fit, X, y)
    assert seen and set(seen) == {1}
    # The sparse posteriors it trained on are what it predicts with.
    assert_array_equal(moe.route(X).counts.sum(), len(X))
    assert np.all(np.count_nonzero(moe.responsibilities(X, y), axis=1) == 1)


def test_gd_sets_expert_usage_and_repairs():
    X, y = make_piecewise()
    moe = _quiet(_gd_regressor(max_iter=5).fit, X, y)
    assert moe.expert_usage_.shape == (3,)
    assert_allclose(moe.expert_usage_.sum(), 1.0)
    assert moe.repairs_ == []
    moe.partial_fit(X[:300], y[:300])
    assert_allclose(moe.expert_usage_.sum(), 1.0)


@pytest.mark.parametrize("on_collapse", ["reseed", "drop"])
def test_gd_repairs_a_collapsed_expert(on_collapse):
    X, y = make_piecewise()
    init = np.zeros((len(y), 3))
    init[:, 0] = X[:, 0] < 0
    init[:, 1] = X[:, 0] >= 0  # expert 2 starts with nothing
    moe = _gd_regressor(init=init, max_iter=5, on_collapse=on_collapse)
    with pytest.warns(UserWarning, match=r"Expert 2 .* collapsed at epoch 1"):
        _quiet(moe.fit, X, y)
    assert moe.repairs_[0]["expert"] == 2
    assert moe.repairs_[0]["action"] == on_collapse
    assert moe.repairs_[0]["iteration"] == 1
    assert moe.n_experts_ == (3 if on_collapse == "reseed" else 2)


def test_gd_warm_start_honours_set_params_on_experts_and_gate():
    X, y = make_piecewise()
    moe = _quiet(_gd_regressor(warm_start=True, max_iter=2).fit, X, y)
    moe.set_params(experts__alpha=0.5, gate__alpha=3.0)
    _quiet(moe.fit, X, y)
    assert all(e.alpha == 0.5 for e in moe.experts_)
    assert moe.gate_.alpha == 3.0


def test_gd_warm_start_grows_the_mixture():
    X, y = make_piecewise()
    moe = _quiet(_gd_regressor(n_experts=2, warm_start=True, max_iter=3).fit, X, y)
    _quiet(moe.set_params(n_experts=3).fit, X, y)
    assert moe.n_experts_ == 3
    assert moe.predict_gate(X).shape == (len(X), 3)
