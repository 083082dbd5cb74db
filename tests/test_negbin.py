"""The negative binomial (NB2) likelihood: ``likelihood="negbin"``."""

import pickle

import numpy as np
import pytest
import scipy.stats
from naive import nb_mixture_loglik, nb_mixture_mle
from numpy.testing import assert_allclose
from scipy.optimize import minimize_scalar
from sklearn.base import clone
from sklearn.linear_model import PoissonRegressor

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate
from skmoe._negbin import NegativeBinomialLikelihood, nb_log_pmf, nb_shape_mle


def _two_nb_experts(n=400, seed=0):
    """Two NB2 GLMs on either side of x0 = 0, well separated."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    right = X[:, 0] > 0
    mu = np.where(right, np.exp(2.0 + 0.5 * X[:, 0]), np.exp(0.3 - 0.6 * X[:, 0]))
    r = np.where(right, 3.0, 20.0)
    y = rng.negative_binomial(r, r / (r + mu)).astype(float)
    return X, y


def _exact_glm():
    return PoissonRegressor(alpha=0.0, solver="newton-cholesky", tol=1e-10)


def test_log_lik_is_scipy_logpmf_and_expert_distribution():
    rng = np.random.RandomState(0)
    y = rng.poisson(4.0, size=50).astype(float)
    mu = rng.uniform(0.1, 20.0, size=(50, 3))
    r = np.array([0.3, 5.0, 1e5])
    lik = NegativeBinomialLikelihood()
    y, _ = lik.validate_targets(y, None)
    expected = scipy.stats.nbinom.logpmf(y[:, None], r[None, :], r / (r + mu))
    assert_allclose(lik.log_lik(mu, y, r), expected, rtol=1e-9, atol=1e-9)
    dist = lik.expert_distribution(mu, r)
    assert NegativeBinomialLikelihood.discrete
    assert_allclose(
        dist.logpmf(y[:, None]), lik.log_lik(mu, y, r), rtol=1e-9, atol=1e-9
    )
    assert_allclose(dist.mean(), mu, rtol=1e-9)
    assert_allclose(dist.var(), mu + mu**2 / r, rtol=1e-8)


def test_dispersion_m_step_is_the_weighted_mle():
    rng = np.random.RandomState(1)
    n = 300
    mu = np.exp(rng.normal(1.0, 0.5, size=(n, 3)))
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu[:, 0])).astype(float)
    w = rng.uniform(0, 1, size=(n, 3))
    r = nb_shape_mle(y, mu, w)
    for k in range(3):
        res = minimize_scalar(
            lambda t: -w[:, k] @ nb_log_pmf(y, mu[:, k], np.exp(t)),
            bounds=(-9, 14),
            method="bounded",
            options={"xatol": 1e-12},
        )
        assert_allclose(r[k], np.exp(res.x), rtol=1e-6)


def test_dispersion_poisson_limit_and_bounds():
    # Under-dispersed counts: the likelihood rises towards the Poisson limit.
    y = np.array([2.0, 3.0, 2.0, 3.0, 2.0, 3.0])
    mu = np.full((6, 1), 2.5)
    r = nb_shape_mle(y, mu, np.ones((6, 1)), max_shape=1e6)
    assert r[0] == pytest.approx(1e6)
    lik = NegativeBinomialLikelihood(max_shape=1e6)
    y_ok, _ = lik.validate_targets(y, None)
    poisson = scipy.stats.poisson.logpmf(y, 2.5)
    assert_allclose(lik.log_lik(mu, y_ok, r)[:, 0], poisson, atol=1e-5)
    # All zeros: the likelihood rises as r falls: the lower bound, not NaN.
    r0 = nb_shape_mle(
        np.zeros(5), np.full((5, 1), 1.0), np.ones((5, 1)), min_shape=1e-4
    )
    assert r0[0] == pytest.approx(1e-4)


def test_one_expert_is_the_nb2_glm_mle():
    X, y = _two_nb_experts(n=300, seed=2)
    moe = MixtureOfExpertsRegressor(
        _exact_glm(),
        n_experts=1,
        likelihood="negbin",
        tol=1e-12,
        max_iter=2000,
        random_state=0,
    ).fit(X, y)
    expert = moe.experts_[0]
    start = np.concatenate([expert.coef_, [expert.intercept_], np.log(moe.shape_)])
    ll_ref, params = nb_mixture_mle(X, y, 1, start + 0.3)  # started elsewhere
    assert moe.log_prob(X, y).sum() == pytest.approx(ll_ref, abs=1e-6)
    assert_allclose(start, params, atol=1e-4)
    # statsmodels' NB2 GLM, where it is installed: the same fit.
    sm = pytest.importorskip("statsmodels.api")
    fit = sm.NegativeBinomial(y, sm.add_constant(X, prepend=False)).fit(
        disp=0, method="newton", maxiter=200
    )
    assert fit.llf == pytest.approx(ll_ref, abs=1e-5)
    assert 1.0 / fit.params[-1] == pytest.approx(moe.shape_[0], rel=1e-4)


def test_mixture_agrees_with_direct_maximisation():
    X, y = _two_nb_experts()
    moe = MixtureOfExpertsRegressor(
        _exact_glm(),
        n_experts=2,
        likelihood="negbin",
        gate=SoftmaxGate(alpha=0.0, tol=1e-10),
        tol=1e-12,
        max_iter=3000,
        random_state=0,
    ).fit(X, y)
    ll = moe.log_prob(X, y).sum()
    coef, intercept = moe.gate_.coef_, moe.gate_.intercept_
    V = np.append(coef[1] - coef[0], intercept[1] - intercept[0])
    B = [np.append(e.coef_, e.intercept_) for e in moe.experts_]
    start = np.concatenate([V, *B, np.log(moe.shape_)])
    ll_at, grad = nb_mixture_loglik(start, X, y, 2)
    assert ll_at == pytest.approx(ll, abs=1e-8)  # the reference scores the same model
    assert np.max(np.abs(grad)) < 1e-3  # a stationary point of the likelihood
    ll_ref, _ = nb_mixture_mle(X, y, 2, start)
    assert ll == pytest.approx(ll_ref, abs=1e-4)
    # From elsewhere (the truth's neighbourhood, not skmoe's solution).
    truth = np.array([5.0, 0.0, 0.3, -0.6, 0.5, 2.0, np.log(20.0), np.log(3.0)])
    ll_far, _ = nb_mixture_mle(X, y, 2, truth + 0.2)
    assert ll >= ll_far - 1e-4


def test_recovers_a_simulated_mixture():
    X, y = _two_nb_experts(n=2000, seed=3)
    moe = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="negbin", random_state=0
    ).fit(X, y)
    order = np.argsort([e.intercept_ for e in moe.experts_])  # low mean first
    low, high = (moe.experts_[k] for k in order)
    assert low.coef_[0] == pytest.approx(-0.6, abs=0.15)
    assert high.coef_[0] == pytest.approx(0.5, abs=0.15)
    assert high.intercept_ == pytest.approx(2.0, abs=0.15)
    assert moe.shape_[order[1]] == pytest.approx(3.0, rel=0.3)
    assert moe.shape_[order[0]] > 5.0  # 20: nearly Poisson
    # The Poisson mixture of the same data fits worse.
    poisson = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="poisson", random_state=0
    ).fit(X, y)
    assert moe.log_prob(X, y).sum() > poisson.log_prob(X, y).sum() + 50


def test_predictive_moments_bic_and_top_k():
    X, y = _two_nb_experts(n=300, seed=4)
    moe = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="negbin", max_iter=50, init="kmeans", random_state=0
    ).fit(X, y)
    r = moe.shape_
    assert_allclose(moe.likelihood_params_, r)
    pi = moe.gate_.predict_proba(X)
    mu = moe.predict_experts(X)
    mean, std = moe.predict(X, return_std=True)
    assert_allclose(mean, np.sum(pi * mu, axis=1), rtol=1e-10)
    second = np.sum(pi * (mu + mu**2 / r + mu**2), axis=1)
    assert_allclose(std**2, second - mean**2, rtol=1e-8)
    n_params = 2 + 2 * 2 + 2  # gate (1 logit), experts, one dispersion each
    log_lik = moe.log_prob(X, y).sum()
    assert moe.bic(X, y) == pytest.approx(-2 * log_lik + n_params * np.log(len(y)))
    top1 = MixtureOfExpertsRegressor(
        n_experts=2,
        likelihood="negbin",
        top_k=1,
        max_iter=30,
        init="kmeans",
        random_state=0,
    ).fit(X, y)
    assert np.isfinite(top1.log_prob(X, y)).all()


def test_integer_sample_weight_is_repetition():
    X, y = _two_nb_experts(n=120, seed=5)
    w = np.random.RandomState(0).randint(1, 3, size=len(y))
    params = dict(n_experts=1, likelihood="negbin", tol=1e-12, max_iter=500)
    weighted = MixtureOfExpertsRegressor(_exact_glm(), **params).fit(
        X, y, sample_weight=w
    )
    repeated = MixtureOfExpertsRegressor(_exact_glm(), **params).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    assert_allclose(weighted.shape_, repeated.shape_, rtol=1e-6)
    assert_allclose(weighted.experts_[0].coef_, repeated.experts_[0].coef_, rtol=1e-6)


@pytest.mark.parametrize(
    "y, message",
    [([0, 1, -1, 2], "below 0"), ([0, 1, 2.5, 2], "fractional")],
)
def test_invalid_counts_are_refused(y, message):
    X = np.arange(4.0)[:, None]
    with pytest.raises(ValueError, match=f"negative binomial likelihood.*{message}"):
        MixtureOfExpertsRegressor(likelihood="negbin").fit(X, y)


def test_gd_solver_is_refused():
    X, y = _two_nb_experts(n=50)
    with pytest.raises(ValueError, match="solver='em'"):
        MixtureOfExpertsRegressor(likelihood="negbin", solver="gd").fit(X, y)


def test_clone_and_pickle():
    X, y = _two_nb_experts(n=200, seed=6)
    moe = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="negbin", max_iter=30, init="kmeans", random_state=0
    )
    assert clone(moe).get_params()["likelihood"] == "negbin"
    moe.fit(X, y)
    again = pickle.loads(pickle.dumps(moe))
    assert_allclose(again.log_prob(X, y), moe.log_prob(X, y))
    assert_allclose(again.shape_, moe.shape_)
    # A refit with another likelihood drops the NB attributes' meaning.
    moe.set_params(likelihood="poisson").fit(X, y)
    assert not hasattr(moe, "shape_") and moe.likelihood_params_ is None
