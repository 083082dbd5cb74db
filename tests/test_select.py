"""``n_experts=None``: two experts, or one when BIC on the training data
prefers one (issue 13, table 2)."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from scipy.special import expit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDRegressor,
)
from sklearn.tree import DecisionTreeClassifier

from skmoe import (
    ClassifierGate,
    MixtureOfExpertsClassifier,
    MixtureOfExpertsRegressor,
    _pool,
    to_numpy,
)


def _one_line(seed=0, n=400):
    """One linear model: a mixture only splits it."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    return X, X @ [1.0, 2.0, 3.0] + rng.randn(n)


def _two_lines(seed=0, n=400):
    """A clear two-regime problem: slope +2 left of 0, -2 right of it."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-3, 3, n)
    y = np.where(x < 0, 2 * x, -2 * x) + 0.3 * rng.randn(n)
    return x[:, None], y


def _one_logistic(seed=0, n=500):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = (rng.rand(n) < expit(X @ [1.5, -1.0, 0.5])).astype(int)
    return X, y


def _gaussian_bic(y, pred, n_params):
    """BIC of one Gaussian linear model with its maximum-likelihood variance."""
    var = np.mean((y - pred) ** 2)
    log_lik = np.sum(-0.5 * np.log(2 * np.pi * var) - 0.5 * (y - pred) ** 2 / var)
    return -2 * log_lik + n_params * np.log(len(y))


def test_regressor_takes_one_expert_on_one_line():
    X, y = _one_line()
    moe = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    assert moe.n_experts_ == 1 and len(moe.experts_) == 1
    assert set(moe.n_experts_bic_) == {1, 2}
    assert moe.n_experts_bic_[1] < moe.n_experts_bic_[2]
    # The default expert, StandardizedRidge(alpha=1), is Ridge on X / std(X).
    s = X.std(axis=0)
    ridge = Ridge(alpha=1.0).fit(X / s, y)
    np.testing.assert_allclose(moe.predict(X), ridge.predict(X / s), rtol=1e-8, atol=1e-8)
    # Its BIC: 3 slopes, an intercept and a variance; a constant gate has none.
    expected = _gaussian_bic(y, ridge.predict(X / s), 5)
    assert moe.n_experts_bic_[1] == pytest.approx(expected, rel=1e-9)
    assert moe.bic(X, y) == pytest.approx(expected, rel=1e-9)
    assert moe.converged_ and moe.n_iter_ == 1


def test_regressor_keeps_two_experts_on_two_lines():
    X, y = _two_lines()
    moe = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    two = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    assert moe.n_experts_ == 2
    assert moe.n_experts_bic_[2] < moe.n_experts_bic_[1] - 100
    # The kept mixture is the n_experts=2 fit, bit for bit, and its BIC is bic().
    np.testing.assert_array_equal(moe.predict(X), two.predict(X))
    assert moe.n_experts_bic_[2] == pytest.approx(two.bic(X, y), rel=1e-12)
    assert two.n_experts_bic_ is None
    s = X.std(axis=0)
    line = Ridge(alpha=1.0).fit(X / s, y).predict(X / s)
    assert moe.n_experts_bic_[1] == pytest.approx(_gaussian_bic(y, line, 3), rel=1e-9)


def test_classifier_takes_one_expert_on_one_logistic_model():
    X, y = _one_logistic()
    moe = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    assert moe.n_experts_ == 1
    # The same penalised model (C=1), fitted to its optimum.
    ref = LogisticRegression(solver="newton-cg", tol=1e-12).fit(X, y)
    np.testing.assert_allclose(moe.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    proba = ref.predict_proba(X)[np.arange(len(y)), y]
    expected = -2 * np.sum(np.log(proba)) + 4 * np.log(len(y))
    assert moe.n_experts_bic_[1] == pytest.approx(expected, rel=1e-6)
    assert moe.bic(X, y) == pytest.approx(moe.n_experts_bic_[1], rel=1e-12)


def test_classifier_keeps_two_experts_on_two_regimes():
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (600, 1))
    logit = np.where(X[:, 0] < 0, 4 * X[:, 0] + 6, -4 * X[:, 0] + 6)
    y = (rng.rand(600) < expit(logit)).astype(int)
    moe = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    assert moe.n_experts_ == 2
    assert moe.n_experts_bic_[2] < moe.n_experts_bic_[1]


@pytest.mark.filterwarnings("ignore:The initialisation pool's candidates disagree")
def test_explicit_n_experts_keeps_that_many():
    X, y = _one_line()
    moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    assert moe.n_experts_ == 2 and moe.n_experts_bic_ is None
    listed = MixtureOfExpertsRegressor([Ridge(), Ridge()], random_state=0).fit(X, y)
    assert listed.n_experts_ == 2 and listed.n_experts_bic_ is None


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="gd", experts=SGDRegressor(), max_iter=3),
        dict(warm_start=True),
        dict(init=np.tile([1.0, 0.0], (400, 1))),
        dict(gate=ClassifierGate(DecisionTreeClassifier(max_depth=1))),
    ],
    ids=["gd", "warm_start", "init_array", "classifier_gate"],
)
def test_settings_without_a_choice_fit_two_experts(params):
    X, y = _one_line()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moe = MixtureOfExpertsRegressor(random_state=0, **params).fit(X, y)
    assert moe.n_experts_ == 2 and moe.n_experts_bic_ is None


class _Uncounted(RegressorMixin, BaseEstimator):
    """A weighted least-squares line whose parameters skmoe cannot count."""

    def fit(self, X, y, sample_weight=None):
        self.model_ = LinearRegression().fit(X, y, sample_weight=sample_weight)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def test_experts_without_a_parameter_count_keep_two():
    X, y = _one_line(n=100)
    moe = MixtureOfExpertsRegressor(_Uncounted(), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moe.fit(X, y)
    assert moe.n_experts_ == 2 and moe.n_experts_bic_ is None


@pytest.mark.filterwarnings("ignore:EM did not converge")
def test_array_api_inputs_fit_two_experts():
    xp = pytest.importorskip("array_api_strict")
    X, y = _one_line(n=200)
    try:
        with sklearn.config_context(array_api_dispatch=True):
            moe = MixtureOfExpertsRegressor(random_state=0, max_iter=20)
            moe.fit(xp.asarray(X), xp.asarray(y))
    except RuntimeError as exc:  # scipy imported without SCIPY_ARRAY_API=1
        pytest.skip(f"array API dispatch unavailable: {exc}")
    assert moe.n_experts_ == 2 and moe.n_experts_bic_ is None


def test_partial_fit_uses_two_experts():
    X, y = _one_line()
    moe = MixtureOfExpertsRegressor(solver="gd", experts=SGDRegressor(), random_state=0)
    moe.partial_fit(X, y)
    assert moe.n_experts_ == 2 and moe.n_experts_bic_ is None


def test_weights_count_as_repeated_rows():
    X, y = _one_line(n=200)
    w = np.where(np.arange(200) % 3 == 0, 2.0, 1.0)
    rows = np.repeat(np.arange(200), w.astype(int))
    weighted = MixtureOfExpertsRegressor(n_experts=None, random_state=0)
    weighted.fit(X, y, sample_weight=w)
    repeated = MixtureOfExpertsRegressor(random_state=0).fit(X[rows], y[rows])
    assert weighted.n_experts_ == repeated.n_experts_ == 1
    assert weighted.n_experts_bic_[1] == pytest.approx(repeated.n_experts_bic_[1], rel=1e-9)
    assert weighted.n_experts_bic_[1] == pytest.approx(
        repeated.bic(X[rows], y[rows]), rel=1e-9
    )


def test_only_the_kept_fit_warns(monkeypatch):
    # The two-expert fit of these data is made to warn (its pool's
    # candidates disagree); the kept one-expert model has nothing to warn
    # about.
    real = _pool.run_pool

    def disagreeing(*args, **kwargs):
        result = real(*args, **kwargs)
        result.disagree = True
        return result

    monkeypatch.setattr(_pool, "run_pool", disagreeing)
    X, y = _one_line()
    with pytest.warns(UserWarning, match="candidates disagree"):
        MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        moe = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    assert moe.n_experts_ == 1


def test_verbose_prints_the_choice(capsys):
    X, y = _one_line(n=100)
    MixtureOfExpertsRegressor(random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "n_experts=None: training BIC 1 expert" in out and "kept 1" in out


def _check_one_expert_model(moe, X, y):
    """Every public method of a fitted one-expert mixture."""
    n = len(y)
    assert moe.n_experts_ == 1
    np.testing.assert_allclose(moe.predict_gate(X), np.ones((n, 1)))
    np.testing.assert_array_equal(moe.predict_expert(X), np.zeros(n, dtype=int))
    np.testing.assert_allclose(moe.responsibilities(X, y), np.ones((n, 1)))
    routing = moe.route(X)
    assert routing.counts.tolist() == [n] and routing.experts.shape == (n, 1)
    log_prob = moe.log_prob(X, y)
    assert log_prob.shape == (n,) and np.all(np.isfinite(log_prob))
    assert moe.bic(X, y) == pytest.approx(moe.n_experts_bic_[1], rel=1e-12)
    assert moe.aic(X, y) < moe.bic(X, y)
    # One expert: the responsibilities have no entropy, ICL is BIC.
    assert moe.icl(X, y) == pytest.approx(moe.bic(X, y), rel=1e-12)
    assert np.isfinite(moe.score(X, y))
    again = pickle.loads(pickle.dumps(moe))
    np.testing.assert_array_equal(again.predict(X), moe.predict(X))
    np.testing.assert_array_equal(to_numpy(moe).predict(X), moe.predict(X))


def test_one_expert_regressor_is_a_full_mixture():
    X, y = _one_line(n=200)
    moe = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    _check_one_expert_model(moe, X, y)
    mean, std = moe.predict(X, return_std=True)
    np.testing.assert_allclose(std, np.sqrt(moe.noise_variance_[0]))
    np.testing.assert_allclose(moe.predict_experts(X)[:, 0], mean)


def test_one_expert_classifier_is_a_full_mixture():
    X, y = _one_logistic(n=300)
    moe = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    _check_one_expert_model(moe, X, y)
    np.testing.assert_allclose(moe.predict_log_proba(X), np.log(moe.predict_proba(X)))
    np.testing.assert_array_equal(moe.predict(X), moe.classes_[moe.predict_proba(X).argmax(1)])
