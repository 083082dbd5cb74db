"""Property-based tests over shapes, values, weights and parameters.

For both estimators and any input hypothesis draws: ``fit`` either succeeds,
and then no output (predictions, standard deviations, probabilities, gate,
responsibilities, log-likelihoods, information criteria) holds NaN or inf;
or it raises a ``ValueError``/``TypeError`` whose message names what is
wrong. Nothing else (no ``LinAlgError``, no ``FloatingPointError``, no
NaN).
"""

import re
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor  # noqa: E402

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    # No shrinking: a failing example is reported as drawn (bounded run time).
    phases=[Phase.explicit, Phase.generate],
)

# Words that name the culprit of an error.
_CULPRITS = re.compile(
    r"\b(X|y|sample_weight|[Ss]ample weights?|n_samples|n_features|n_experts|"
    r"experts?|Expert \d+|"
    r"class(es)?|label|top_k|init|gate_features|batch_size|validation_fraction|"
    r"early_stopping|min_expert_weight|solver|assignment)\b"
)


def _check_error(exc):
    assert isinstance(exc, (ValueError, TypeError)), (
        f"{type(exc).__name__} instead of ValueError/TypeError: {exc}"
    )
    assert _CULPRITS.search(str(exc)), f"message names nothing: {exc!r}"


def _finite(name, a):
    a = np.asarray(a, dtype=float)
    assert np.isfinite(a).all(), f"{name} holds NaN or inf"


# Values: mostly ordinary, sometimes huge, tiny, repeated, or zero.
_values = st.one_of(
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e6, -1e6]),
    st.floats(-1e200, 1e200, allow_nan=False, allow_infinity=False),
)


@st.composite
def _problems(draw, classification):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(1, 4))
    X = draw(arrays(np.float64, (n, d), elements=_values))
    if draw(st.booleans()):
        # Mostly well-behaved data, so that the successful path is explored.
        X = np.random.RandomState(draw(st.integers(0, 100))).normal(size=(n, d)) * draw(
            st.sampled_from([1e-3, 1.0, 1e3])
        )
    if classification:
        n_classes = draw(st.integers(1, 4))
        y = draw(arrays(np.int64, n, elements=st.integers(0, n_classes - 1)))
    else:
        y = draw(arrays(np.float64, n, elements=_values))
        if draw(st.booleans()):
            noise = np.random.RandomState(0).normal(size=n)
            y = X.sum(axis=1) + draw(st.floats(0, 1)) * noise
    sw = draw(
        st.one_of(
            st.none(),
            arrays(
                np.float64,
                n,
                elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e-8, 1e8]),
            ),
        )
    )
    params = dict(
        n_experts=draw(st.integers(1, 4)),
        assignment=draw(st.sampled_from(["soft", "hard", "stochastic"])),
        solver=draw(st.sampled_from(["em", "em", "gd"])),
        max_iter=draw(st.integers(1, 5)),
        top_k=draw(st.sampled_from([None, None, 1, 2])),
        init=draw(st.sampled_from(["kmeans", "random"])),
        random_state=0,
    )
    if params["solver"] == "gd":
        params.pop("top_k")
        params.pop("assignment")
    return X, y, sw, params


def _fit(est, X, y, sw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y, sample_weight=sw)
        except Exception as exc:  # noqa: BLE001 - the type is the property
            _check_error(exc)
            return False
    return True


def _outputs_finite(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _finite("predict_gate", est.predict_gate(X))
        _finite("responsibilities", est.responsibilities(X, y))
        _finite("log_prob", est.log_prob(X, y))
        _finite("bic", est.bic(X, y))
        _finite("aic", est.aic(X, y))
        return est


@SETTINGS
@given(_problems(classification=False))
def test_regressor_properties(problem):
    X, y, sw, params = problem
    est = MixtureOfExpertsRegressor(**params)
    if not _fit(est, X, y, sw):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, std = est.predict(X, return_std=True)
        _finite("predict", mean)
        _finite("predict std", std)
        assert (std >= 0).all()
        _finite("predict_experts", est.predict_experts(X))
    _outputs_finite(est, X, y)


@SETTINGS
@given(_problems(classification=True))
def test_classifier_properties(problem):
    X, y, sw, params = problem
    est = MixtureOfExpertsClassifier(**params)
    if not _fit(est, X, y, sw):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = est.predict_proba(X)
        _finite("predict_proba", proba)
        assert (proba >= 0).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        _finite("predict_log_proba", np.maximum(est.predict_log_proba(X), -1e300))
        assert set(est.predict(X)) <= set(est.classes_)
    _outputs_finite(est, X, y)


@SETTINGS
@given(
    st.sampled_from([MixtureOfExpertsRegressor, MixtureOfExpertsClassifier]),
    st.sampled_from(
        [
            ("n_experts", 0),
            ("n_experts", -1),
            ("max_iter", 0),
            ("tol", -1.0),
            ("n_init", 0),
            ("n_jobs", 0),
            ("top_k", 0),
            ("assignment", "fuzzy"),
            ("solver", "lbfgs"),
            ("batch_size", 0),
            ("learning_rate_init", 0.0),
            ("min_expert_weight", 1.5),
            ("validation_fraction", 1.0),
            ("init", np.ones((3, 2))),
            ("gate_features", [7]),
        ]
    ),
)
def test_bad_parameters_name_themselves(Estimator, bad):
    name, value = bad
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(int)
    est = Estimator(**{name: value})
    with pytest.raises((ValueError, TypeError)) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    assert name in str(info.value), str(info.value)


@SETTINGS
@given(
    st.sampled_from([MixtureOfExpertsRegressor, MixtureOfExpertsClassifier]),
    st.sampled_from(["nan", "inf", "complex", "3d", "empty", "object"]),
    st.sampled_from(["X", "y", "sample_weight"]),
)
def test_bad_inputs_name_themselves(Estimator, kind, where):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(float)
    sw = np.ones(30)
    arrays_ = {"X": X, "y": y, "sample_weight": sw}
    a = arrays_[where].astype(float)
    if kind == "nan":
        a.flat[0] = np.nan
    elif kind == "inf":
        a.flat[0] = np.inf
    elif kind == "complex":
        a = a + 1j
    elif kind == "3d":
        a = a.reshape(a.shape + (1, 1))
    elif kind == "empty":
        a = a[:0]
    else:
        a = a.astype(object)
        a.flat[0] = "a"
    arrays_[where] = a
    est = Estimator(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(arrays_["X"], arrays_["y"], sample_weight=arrays_["sample_weight"])
        except Exception as exc:  # noqa: BLE001
            _check_error(exc)
            assert re.search(rf"\b{where}\b", str(exc)), str(exc)
            return
    # Accepted (an object y that is a valid set of labels for a classifier):
    # outputs must then be finite.
    _outputs_finite(est, X, arrays_["y"] if where == "y" and kind != "object" else y)
