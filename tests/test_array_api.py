"""Array API inputs under scikit-learn's dispatch (the package skmoe/_array_api).

The fit in the input's namespace (array-api-strict, PyTorch on the CPU)
equals the NumPy fit from the same initial responsibilities, to 1e-8 in
float64: log-likelihood, coefficients of the experts and of the gate, noise
variances, predictions, ``predict_proba``, ``log_prob``,
``responsibilities`` and ``score``, for the regressor (linear experts) and
the classifier (logistic experts).
"""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skmoe import (
    MixtureOfExpertsClassifier,
    MixtureOfExpertsRegressor,
    _pool,
    to_numpy,
)

try:  # scikit-learn's dispatch needs SCIPY_ARRAY_API=1 (tests/conftest.py sets it)
    with sklearn.config_context(array_api_dispatch=True):
        pass
except RuntimeError as exc:  # pragma: no cover - scipy imported without it
    pytest.skip(f"array API dispatch unavailable: {exc}", allow_module_level=True)

NAMESPACES = ["array_api_strict", "torch"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """PyTorch on one thread: its thread pool spins on tiny arrays and, on a
    loaded machine, slows these small fits by an order of magnitude."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _namespace(name):
    return pytest.importorskip(name)


def _host(a):
    """A NumPy copy of an array API array (the test's own conversion)."""
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.from_dlpack(a)


def _data(n=600, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(-3, 3, size=n)
    X = np.column_stack([x, rng.normal(size=n)])
    y = np.select([x < -1, x < 1], [-2 * x - 4, 3 * x + 1], -1.5 * x + 8)
    return X, y + 0.3 * rng.randn(n)


def _model(expert=None, **kw):
    params = dict(n_experts=3, init="random", random_state=0, tol=1e-10, max_iter=60)
    params.update(kw)
    return MixtureOfExpertsRegressor(experts=expert, **params)


def _fit_xp(est, xp, X, y, **fit_params):
    with sklearn.config_context(array_api_dispatch=True):
        return clone(est).fit(xp.asarray(X), xp.asarray(y), **fit_params)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize(
    "expert", [None, LinearRegression(), Ridge(alpha=0.5)],
    ids=["StandardizedRidge", "LinearRegression", "Ridge"],
)
def test_fit_equals_numpy_path(name, expert):
    xp = _namespace(name)
    X, y = _data()
    ref = _model(expert).fit(X, y)
    est = _fit_xp(_model(expert), xp, X, y)
    assert est.n_iter_ == ref.n_iter_
    assert abs(est.log_likelihood_ - ref.log_likelihood_) <= 1e-8
    np.testing.assert_allclose(
        _host(est.log_likelihood_history_), ref.log_likelihood_history_, atol=1e-8
    )
    for e_xp, e_np in zip(est.experts_, ref.experts_):
        assert type(e_xp) is type(e_np)
        np.testing.assert_allclose(_host(e_xp.coef_), e_np.coef_, atol=1e-8)
        np.testing.assert_allclose(float(e_xp.intercept_), e_np.intercept_, atol=1e-8)
    np.testing.assert_allclose(_host(est.gate_.coef_), ref.gate_.coef_, atol=1e-8)
    np.testing.assert_allclose(_host(est.gate_.intercept_), ref.gate_.intercept_, atol=1e-8)
    np.testing.assert_allclose(_host(est.noise_variance_), ref.noise_variance_, atol=1e-8)
    np.testing.assert_allclose(_host(est.expert_usage_), ref.expert_usage_, atol=1e-8)
    Xa, ya = xp.asarray(X), xp.asarray(y)
    with sklearn.config_context(array_api_dispatch=True):
        pred = est.predict(Xa)
        log_prob = est.log_prob(Xa, ya)
        resp = est.responsibilities(Xa, ya)
        score = est.score(Xa, ya)
    # Outputs stay in the input's namespace.
    assert type(pred) is type(Xa) and type(log_prob) is type(Xa)
    np.testing.assert_allclose(_host(pred), ref.predict(X), atol=1e-8)
    np.testing.assert_allclose(_host(log_prob), ref.log_prob(X, y), atol=1e-8)
    np.testing.assert_allclose(_host(resp), ref.responsibilities(X, y), atol=1e-8)
    assert abs(score - ref.score(X, y)) <= 1e-8


@pytest.mark.parametrize("name", NAMESPACES)
def test_sample_weight_and_given_init(name):
    """Weights and an init array (given in the namespace) as in NumPy."""
    xp = _namespace(name)
    X, y = _data(n=400, seed=1)
    rng = np.random.RandomState(3)
    sw = rng.uniform(0.2, 2.0, size=len(y))
    init = rng.dirichlet(np.ones(2), size=len(y))
    kw = dict(n_experts=2, max_iter=500)
    ref = _model(LinearRegression(), init=init, **kw).fit(X, y, sample_weight=sw)
    est = _model(LinearRegression(), init=xp.asarray(init), **kw)
    est = _fit_xp(est, xp, X, y, sample_weight=xp.asarray(sw))
    assert abs(est.log_likelihood_ - ref.log_likelihood_) <= 1e-8
    np.testing.assert_allclose(_host(est.gate_.coef_), ref.gate_.coef_, atol=1e-8)


@pytest.mark.parametrize("name", NAMESPACES)
def test_to_numpy_predicts_as_device_model(name):
    xp = _namespace(name)
    X, y = _data(n=300, seed=2)
    est = _fit_xp(_model(), xp, X, y)
    cpu = to_numpy(est)
    assert isinstance(cpu.gate_.coef_, np.ndarray)
    assert isinstance(cpu.experts_[0].coef_, np.ndarray)
    assert isinstance(cpu.noise_variance_, np.ndarray)
    # The device model is untouched.
    assert not isinstance(est.gate_.coef_, np.ndarray)
    Xa, ya = xp.asarray(X), xp.asarray(y)
    with sklearn.config_context(array_api_dispatch=True):
        pred, log_prob = est.predict(Xa), est.log_prob(Xa, ya)
    np.testing.assert_allclose(cpu.predict(X), _host(pred), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cpu.log_prob(X, y), _host(log_prob), rtol=0, atol=1e-12)
    # The NumPy model runs every method (here one the device model refuses).
    assert cpu.predict_gate(X).shape == (len(y), 3)


def test_float32_within_documented_tolerance():
    """float32 stays float32; the fit is the float64 one to about 1e-4 (relative)."""
    torch = _namespace("torch")
    X, y = _data()
    ref = _model(tol=1e-6).fit(X, y)
    with sklearn.config_context(array_api_dispatch=True):
        est = clone(_model(tol=1e-6)).fit(
            torch.asarray(X, dtype=torch.float32), torch.asarray(y, dtype=torch.float32)
        )
        pred = est.predict(torch.asarray(X, dtype=torch.float32))
    assert pred.dtype == torch.float32
    assert est.gate_.coef_.dtype == torch.float32
    assert abs(est.log_likelihood_ - ref.log_likelihood_) <= 1e-4 * abs(ref.log_likelihood_)
    np.testing.assert_allclose(_host(pred), ref.predict(X), rtol=0, atol=1e-3 * np.ptp(y))


@pytest.mark.parametrize(
    "params, what",
    [
        (dict(experts=DecisionTreeRegressor()), "DecisionTreeRegressor"),
        (dict(experts=Ridge(solver="lsqr")), "Ridge"),
        (dict(init="kmeans"), "init='kmeans'"),
        (dict(solver="gd"), "solver='gd'"),
        (dict(top_k=1), "top_k=1"),
        (dict(likelihood="poisson"), "likelihood='poisson'"),
        (dict(assignment="hard"), "assignment='hard'"),
        (dict(n_jobs=2), "n_jobs=2"),
    ],
)
def test_unsupported_settings_raise(params, what):
    xps = _namespace("array_api_strict")
    X, y = _data(n=100)
    if params.get("likelihood") == "poisson":
        y = np.abs(y)
    est = MixtureOfExpertsRegressor(**{"n_experts": 2, "init": "random", **params})
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="not supported under array_api_dispatch") as e:
            est.fit(xps.asarray(X), xps.asarray(y))
    assert what in str(e.value)


def _labels(n=600, seed=0, n_classes=3):
    """Classes whose rule changes with a linear gate on x0 (with 3 classes,
    each region lacks one: an expert there holds a class without weight)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    region = X[:, 0] > 0
    if n_classes == 2:
        y = np.where(region, X[:, 1] > 0, X[:, 1] < 0.3) ^ (rng.rand(n) < 0.1)
        return X, y.astype(np.int64)
    return X, np.where(region, (X[:, 1] > 0).astype(int), 2 * (X[:, 1] > 0.5))


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("expert", [None, LogisticRegression(C=0.5)], ids=["default", "C=0.5"])
def test_classifier_equals_numpy_path(name, n_classes, expert):
    xp = _namespace(name)
    X, y = _labels(n_classes=n_classes)
    clf = MixtureOfExpertsClassifier(
        n_experts=2, experts=expert, init="random", random_state=0, tol=1e-10,
        max_iter=200,
    )
    ref = clone(clf).fit(X, y)
    est = _fit_xp(clf, xp, X, y)
    assert est.n_iter_ == ref.n_iter_
    assert abs(est.log_likelihood_ - ref.log_likelihood_) <= 1e-8
    np.testing.assert_array_equal(_host(est.classes_), ref.classes_)
    for e_xp, e_np in zip(est.experts_, ref.experts_):
        np.testing.assert_allclose(_host(e_xp.coef_), e_np.coef_, atol=1e-8)
        np.testing.assert_allclose(_host(e_xp.intercept_), e_np.intercept_, atol=1e-8)
    np.testing.assert_allclose(_host(est.gate_.coef_), ref.gate_.coef_, atol=1e-8)
    Xa, ya = xp.asarray(X), xp.asarray(y)
    with sklearn.config_context(array_api_dispatch=True):
        proba = est.predict_proba(Xa)
        log_proba = est.predict_log_proba(Xa)
        pred = est.predict(Xa)
        log_prob = est.log_prob(Xa, ya)
        score = est.score(Xa, ya)
    np.testing.assert_allclose(_host(proba), ref.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(_host(log_proba), ref.predict_log_proba(X), atol=1e-8)
    np.testing.assert_array_equal(_host(pred), ref.predict(X))
    np.testing.assert_allclose(_host(log_prob), ref.log_prob(X, y), atol=1e-8)
    # scikit-learn's accuracy_score on PyTorch sums in torch's default
    # float32 (the labels themselves are equal, above).
    assert abs(score - ref.score(X, y)) <= (1e-8 if name != "torch" else 1e-6)
    cpu = to_numpy(est)
    np.testing.assert_allclose(cpu.predict_proba(X), _host(proba), rtol=0, atol=1e-12)


def test_classifier_float32():
    """float32 logistic experts (Newton's tolerances widened to float32):
    the float64 fit's probabilities to 2e-3 (EM's stopping test at tol=1e-6
    can stop an iteration apart in float32)."""
    torch = _namespace("torch")
    X, y = _labels()
    clf = MixtureOfExpertsClassifier(n_experts=2, init="random", random_state=0)
    ref = clone(clf).fit(X, y)
    X32 = torch.asarray(X, dtype=torch.float32)
    with sklearn.config_context(array_api_dispatch=True):
        est = clone(clf).fit(X32, torch.asarray(y))
        proba = est.predict_proba(X32)
    assert proba.dtype == torch.float32
    assert abs(est.log_likelihood_ - ref.log_likelihood_) <= 1e-4 * abs(ref.log_likelihood_)
    np.testing.assert_allclose(_host(proba), ref.predict_proba(X), rtol=0, atol=2e-3)


@pytest.mark.parametrize("name", NAMESPACES)
def test_n_init_restarts(name):
    """n_init restarts draw their seeds as the NumPy fit does: same best run."""
    xp = _namespace(name)
    X, y = _data(n=300, seed=4)
    est = _model(LinearRegression(), n_experts=2, n_init=3, tol=1e-8, max_iter=500)
    ref = clone(est).fit(X, y)
    fit = _fit_xp(est, xp, X, y)
    assert abs(fit.log_likelihood_ - ref.log_likelihood_) <= 1e-8


def test_unsupported_classifier_expert_raises():
    xps = _namespace("array_api_strict")
    X, y = _labels(n=100)
    clf = MixtureOfExpertsClassifier(
        n_experts=2, init="random", experts=DecisionTreeClassifier()
    )
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="DecisionTreeClassifier"):
            clf.fit(xps.asarray(X), xps.asarray(y))


def test_collapse_warns_without_repair():
    """No collapse repair in the namespace: a warning names the expert."""
    xps = _namespace("array_api_strict")
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=30, n_features=10, random_state=42)
    clf = MixtureOfExpertsClassifier(n_experts=2, init="random", random_state=0)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.warns(UserWarning, match="collapse repair does not run"):
            clf.fit(xps.asarray(X), xps.asarray(y))


def test_device_model_refuses_numpy_paths():
    xps = _namespace("array_api_strict")
    X, y = _data(n=200)
    est = _fit_xp(_model(), xps, X, y)
    with pytest.raises(TypeError, match="to_numpy"):
        est.predict(X)  # NumPy input (and no dispatch): no silent conversion
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(TypeError, match="to_numpy"):
            est.predict_gate(xps.asarray(X))
        with pytest.raises(ValueError, match="return_std"):
            est.predict(xps.asarray(X), return_std=True)


def test_collinear_columns_agree_to_condition_times_eps():
    """Condition above the NumPy path's 1e4 (it then calls the expert's own
    least squares): the namespace's normal equations agree to ~cond * eps."""
    xps = _namespace("array_api_strict")
    X, y = _data(n=400, seed=5)
    rng = np.random.RandomState(0)
    X = np.column_stack([X, X[:, 0] + 1e-3 * rng.normal(size=len(y))])
    est = _model(LinearRegression(), n_experts=2, tol=1e-6)
    ref = clone(est).fit(X, y)
    fit = _fit_xp(est, xps, X, y)
    assert abs(fit.log_likelihood_ - ref.log_likelihood_) <= 1e-6
    with sklearn.config_context(array_api_dispatch=True):
        pred = fit.predict(xps.asarray(X))
    np.testing.assert_allclose(_host(pred), ref.predict(X), rtol=0, atol=1e-6)


def test_numpy_model_refuses_array_api_inputs():
    xps = _namespace("array_api_strict")
    X, y = _data(n=200)
    est = _model().fit(X, y)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(TypeError, match="fitted on NumPy arrays"):
            est.predict(xps.asarray(X))


def test_without_dispatch_torch_is_converted_as_before():
    """Without dispatch, scikit-learn's validation converts a CPU tensor to
    NumPy: the NumPy fit, NumPy attributes."""
    torch = _namespace("torch")
    X, y = _data(n=300)
    ref = _model(tol=1e-6).fit(X, y)
    est = clone(_model(tol=1e-6)).fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(est.gate_.coef_, np.ndarray)
    assert est.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-12)


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("check_sample_weight", [False, True])
@pytest.mark.parametrize(
    "est",
    [
        MixtureOfExpertsRegressor(n_experts=2, init="random", random_state=0),
        # On the check's 30 rows an expert collapses; the NumPy fit re-seeds
        # it, the namespace's does not (min_expert_weight=0: neither does).
        MixtureOfExpertsClassifier(
            n_experts=2, init="random", random_state=0, min_expert_weight=0.0
        ),
    ],
    ids=["regressor", "classifier"],
)
def test_check_array_api_input(name, check_sample_weight, est):
    _namespace(name)
    from sklearn.utils.estimator_checks import check_array_api_input

    check_array_api_input(
        type(est).__name__, est, name, check_values=True,
        check_sample_weight=check_sample_weight,
    )


def _zigzag(n=300, seed=0):
    """Four linear regimes along x: single random starts end far below the
    pool's optimum (checked in the test)."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-4, 4, n)
    X = np.column_stack([x, rng.normal(size=n)])
    y = np.select(
        [x < -2, x < 0, x < 2], [3 * x + 8, -3 * x - 4, 3 * x - 4], -3 * x + 8
    )
    return X, y + 0.2 * rng.randn(n)


def _fit_recording_disagreement(est, X, y, xp=None):
    """The fitted ``est`` (in ``xp`` when given) and whether it warned that
    the pool's candidates disagree."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = est.fit(X, y) if xp is None else _fit_xp(est, xp, X, y)
    return est, any("candidates disagree" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", NAMESPACES)
def test_default_init_auto_runs_the_pool(name):
    """init="auto" (the default) on the device: the NumPy pool's short runs
    (the same starts from the same random_state) and an optimum at least as
    good as the NumPy default fit's, where one random start is poor."""
    xp = _namespace(name)
    X, y = _zigzag()
    kw = dict(n_experts=4, random_state=0, tol=1e-10, max_iter=500)
    ref, ref_warned = _fit_recording_disagreement(MixtureOfExpertsRegressor(**kw), X, y)
    est, est_warned = _fit_recording_disagreement(
        MixtureOfExpertsRegressor(**kw), X, y, xp
    )
    assert est_warned == ref_warned
    one = _fit_xp(MixtureOfExpertsRegressor(init="random", **kw), xp, X, y)
    assert one.log_likelihood_ < ref.log_likelihood_ - 0.1  # the test can fail
    assert est.log_likelihood_ >= ref.log_likelihood_ - 1e-6
    assert isinstance(est.init_objectives_, np.ndarray)
    np.testing.assert_allclose(
        est.init_objectives_, ref.init_objectives_, rtol=0, atol=1e-6
    )
    assert est.init_candidates_.shape == ref.init_candidates_.shape
    assert est.degenerate_experts_ == []
    if name == "torch":  # deterministic for a fixed random_state
        again = _fit_xp(MixtureOfExpertsRegressor(**kw), xp, X, y)
        assert again.log_likelihood_ == est.log_likelihood_


@pytest.mark.parametrize("name", NAMESPACES)
def test_default_estimators_fit(name, monkeypatch):
    """MixtureOfExperts{Regressor,Classifier}() with every default fits on
    the device's arrays, to the NumPy default fit's log-likelihood (for the
    classifier, the NumPy pool's short EM runs: the polish that follows them
    on NumPy is compiled for the CPU and does not run on the device; the
    classifier's within 0.01 per row)."""
    xp = _namespace(name)
    X, y = _data(n=300)
    ref = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    est = _fit_xp(MixtureOfExpertsRegressor(random_state=0), xp, X, y)
    assert est.log_likelihood_ >= ref.log_likelihood_ - 1e-6
    Xc, yc = _labels(n=300, n_classes=2)
    polished = MixtureOfExpertsClassifier(random_state=0).fit(Xc, yc)
    monkeypatch.setattr(_pool._polish, "eligible", lambda *args: False)
    ref = MixtureOfExpertsClassifier(random_state=0).fit(Xc, yc)
    # The polish is not worse than the short EM runs (here -0.467145 vs -0.467160).
    assert polished.log_likelihood_ >= ref.log_likelihood_ - 1e-6
    clf = _fit_xp(MixtureOfExpertsClassifier(random_state=0), xp, Xc, yc)
    # The device's short runs of logistic experts are not NumPy's (no
    # collapse repair, its own batched Newton M-step): the same level, not
    # the same run (here -0.4722 on the device, -0.4672 on NumPy).
    assert clf.log_likelihood_ >= ref.log_likelihood_ - 0.01
    assert clf.init_objectives_.shape == ref.init_objectives_.shape


def test_default_init_subsamples_on_the_device(monkeypatch):
    """Above SUBSAMPLE_ABOVE rows the pool runs on a subsample taken with
    xp.take, then one full-data run: the NumPy pool's result."""
    monkeypatch.setattr(_pool, "SUBSAMPLE_ABOVE", 200)
    monkeypatch.setattr(_pool, "SUBSAMPLE_ROWS", 150)
    xp = _namespace("torch")
    X, y = _zigzag(n=400, seed=1)
    kw = dict(n_experts=4, random_state=0, tol=1e-10, max_iter=500)
    ref = MixtureOfExpertsRegressor(**kw).fit(X, y)
    est = _fit_xp(MixtureOfExpertsRegressor(**kw), xp, X, y)
    # The same subsample and starts; a short run may differ where the NumPy
    # one repaired a collapsed expert (no repair runs on the device).
    same = np.abs(est.init_objectives_ - ref.init_objectives_) <= 1e-6
    assert same.sum() >= 0.9 * same.size
    assert est.log_likelihood_ >= ref.log_likelihood_ - 1e-6
