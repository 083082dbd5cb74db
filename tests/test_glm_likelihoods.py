"""Poisson and Gamma expert likelihoods against independent references."""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.exceptions import DataConversionWarning
from sklearn.linear_model import GammaRegressor, LinearRegression, PoissonRegressor
from sklearn.metrics import mean_gamma_deviance, mean_poisson_deviance
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe._glm import fit_glm_experts
from skmoe._glm_likelihoods import GammaLikelihood, PoissonLikelihood, gamma_shape_mle


@pytest.fixture
def counts():
    rng = np.random.RandomState(0)
    mu = rng.uniform(0.2, 8.0, size=(50, 3))
    y = rng.poisson(mu[:, 0]).astype(float)
    return mu, y


@pytest.fixture
def positive():
    rng = np.random.RandomState(1)
    mu = rng.uniform(0.5, 4.0, size=(60, 3))
    y = rng.gamma(2.5, mu[:, 0] / 2.5)
    return mu, y


# -- log-likelihoods ------------------------------------------------------------
def test_poisson_log_lik_matches_scipy(counts):
    mu, y = counts
    got = PoissonLikelihood().log_lik(mu, y, None)
    want = stats.poisson.logpmf(y[:, None], mu)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_gamma_log_lik_matches_scipy(positive):
    mu, y = positive
    nu = np.array([0.7, 2.5, 40.0])
    got = GammaLikelihood().log_lik(mu, y, nu)
    want = stats.gamma.logpdf(y[:, None], a=nu, scale=mu / nu)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_gamma_log_lik_needs_theta(positive):
    mu, y = positive
    with pytest.raises(ValueError, match="theta"):
        GammaLikelihood().log_lik(mu, y, None)


@pytest.mark.parametrize("lik", [PoissonLikelihood(), GammaLikelihood()])
def test_missing_outputs_give_minus_inf_without_warnings(lik):
    # Entries no expert computed (rows routed elsewhere) are 0 in outputs.
    y = np.array([0.0 if isinstance(lik, PoissonLikelihood) else 0.5, 2.0, 3.0])
    mu = np.array([[1.0, 0.0], [0.0, 2.0], [1.5, 2.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = lik.log_lik(mu, y, np.array([2.0, 3.0]))
        loss = lik.row_loss(mu, y)
    assert np.isneginf(ll[0, 1]) and np.isneginf(ll[1, 0])
    assert np.all(np.isfinite(ll[mu > 0]))
    assert np.all(np.isfinite(loss))


# -- the Gamma shape ---------------------------------------------------------------
@pytest.mark.parametrize("c", [1e-7, 1e-3, 0.05, 0.3, 1.0, 5.0, 200.0])
def test_gamma_shape_mle_solves_its_equation(c):
    nu = gamma_shape_mle([c], max_shape=1e12)[0]
    from scipy.special import digamma

    assert np.log(nu) - digamma(nu) == pytest.approx(c, rel=1e-9)


def test_gamma_m_step_is_the_weighted_ml_shape(positive):
    """Per expert, the M-step shape maximises the weighted Gamma log-likelihood."""
    mu, y = positive
    rng = np.random.RandomState(3)
    weights = rng.dirichlet(np.ones(3), size=y.size)
    lik = GammaLikelihood()
    nu = lik.m_step(lik.stats(mu, y, weights), None)
    for k in range(3):

        def neg(log_nu):
            return -weights[:, k] @ stats.gamma.logpdf(
                y, a=np.exp(log_nu), scale=mu[:, k] / np.exp(log_nu)
            )

        ref = optimize.minimize_scalar(neg, bounds=(-8, 12), method="bounded",
                                       options={"xatol": 1e-10})
        assert nu[k] == pytest.approx(np.exp(ref.x), rel=1e-6)


def test_gamma_stats_are_additive(positive):
    mu, y = positive
    w = np.random.RandomState(4).uniform(size=mu.shape)
    lik = GammaLikelihood()
    whole = lik.stats(mu, y, w)
    a, b = lik.stats(mu[:25], y[:25], w[:25]), lik.stats(mu[25:], y[25:], w[25:])
    for s, sa, sb in zip(whole, a, b):
        np.testing.assert_allclose(s, sa + sb, rtol=1e-13)
    # The documented identity with the brief's sums.
    s1 = np.einsum("ik,ik->k", w, np.log(y[:, None] / mu) - y[:, None] / mu)
    np.testing.assert_allclose(whole[0], -s1 - whole[1], rtol=1e-12)


def test_gamma_shape_is_capped_for_an_exact_fit():
    y = np.array([1.0, 2.0, 3.0])
    lik = GammaLikelihood(max_shape=1e5)
    nu = lik.m_step(lik.stats(np.column_stack([y, y + 1]), y, np.ones((3, 2))), None)
    assert nu[0] == 1e5
    assert 0 < nu[1] < 1e5


def test_gamma_m_step_expert_without_weight():
    y = np.array([1.0, 2.0, 3.0])
    mu = np.full((3, 2), 2.0)
    w = np.column_stack([np.ones(3), np.zeros(3)])
    lik = GammaLikelihood()
    pooled = lik.m_step(lik.stats(mu, y, w), None)
    assert pooled[1] == pytest.approx(pooled[0])
    kept = lik.m_step(lik.stats(mu, y, w), np.array([1.0, 7.0]))
    assert kept[1] == 7.0


def test_poisson_has_no_theta(counts):
    mu, y = counts
    lik = PoissonLikelihood()
    assert lik.m_step(lik.stats(mu, y, np.ones_like(mu)), None) is None
    assert lik.n_parameters_per_expert == 0
    assert GammaLikelihood().n_parameters_per_expert == 1


# -- row losses ------------------------------------------------------------------
def test_row_loss_is_the_unit_deviance(counts, positive):
    mu, y = counts
    loss = PoissonLikelihood().row_loss(mu, y)
    for k in range(3):
        assert loss[:, k].mean() == pytest.approx(mean_poisson_deviance(y, mu[:, k]))
    assert PoissonLikelihood().row_loss(np.array([[2.5]]), np.array([0.0]))[0, 0] == 5.0
    mu, y = positive
    loss = GammaLikelihood().row_loss(mu, y)
    for k in range(3):
        assert loss[:, k].mean() == pytest.approx(mean_gamma_deviance(y, mu[:, k]))


# -- predictive mean and variance -------------------------------------------------
@pytest.mark.parametrize("name", ["poisson", "gamma"])
def test_mean_var_matches_monte_carlo(name):
    rng = np.random.RandomState(5)
    gate = np.array([[0.2, 0.5, 0.3], [0.9, 0.0, 0.1]])
    mu = np.array([[1.0, 4.0, 9.0], [0.5, 0.0, 6.0]])  # 0: expert not routed to
    nu = np.array([0.8, 3.0, 20.0])
    lik = PoissonLikelihood() if name == "poisson" else GammaLikelihood()
    mean, var = lik.mean_var(gate, mu, nu)
    m = 400_000
    for i in range(2):
        k = rng.choice(3, size=m, p=gate[i])
        if name == "poisson":
            draws = rng.poisson(mu[i, k])
        else:
            draws = rng.gamma(nu[k], np.maximum(mu[i, k], 1e-300) / nu[k])
        assert mean[i] == pytest.approx(draws.mean(), rel=0.01)
        assert var[i] == pytest.approx(draws.var(), rel=0.03)


# -- targets -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "y, match",
    [
        ([0, 1, -1], r"non-negative integers.*1 value is below 0 \(y\[2\] = -1\)"),
        ([0, 1.5, 2], r"1 value is fractional \(y\[1\] = 1.5\)"),
        ([0, np.nan, 2], "NaN"),
        ([[0, 1], [1, 2]], "single target"),
    ],
)
def test_poisson_rejects_invalid_y(y, match):
    with pytest.raises(ValueError, match=match):
        PoissonLikelihood().validate_targets(y, None)


@pytest.mark.parametrize(
    "y, match",
    [([1.0, 0.0, 2.0], r"positive.*1 value is not positive \(y\[1\] = 0\)"),
     ([1.0, -2.0, -3.0], "2 values are not positive"),
     ([1.0, np.inf], "infinity")],
)
def test_gamma_rejects_invalid_y(y, match):
    with pytest.raises(ValueError, match=match):
        GammaLikelihood().validate_targets(y, None)


def test_valid_targets_pass():
    y, info = PoissonLikelihood().validate_targets([0, 3, 7], np.ones(3))
    assert y.dtype == np.float64 and info == {}
    with pytest.warns(DataConversionWarning):  # as the Gaussian mixture does
        y, _ = GammaLikelihood().validate_targets(np.array([[0.1], [2.0]]), None)
    assert y.shape == (2,)


# -- expert outputs --------------------------------------------------------------------
def test_outputs_name_an_expert_with_a_non_positive_mean():
    X = np.linspace(0, 1, 20)[:, None]
    y = 3.0 - 5.0 * X[:, 0]  # goes negative: LinearRegression predicts it
    good = PoissonRegressor().fit(X, np.abs(y).round())
    bad = LinearRegression().fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"Expert 1 \(LinearRegression\) predicted a non-positive mean \(-.*\) where "
        r"the Poisson likelihood needs mu > 0; use PoissonRegressor",
    ):
        PoissonLikelihood().outputs([good, bad], X)
    with pytest.raises(ValueError, match="Expert 0 .*Gamma likelihood.*GammaRegressor"):
        GammaLikelihood().outputs([bad], X)
    # The rows the expert does not run on are not checked.
    rows = [None, np.flatnonzero(y > 0)]
    mu = PoissonLikelihood().outputs([good, bad], X, rows=rows)
    assert np.all(mu[y <= 0, 1] == 1.0)  # the neutral filler
    np.testing.assert_allclose(mu[y > 0, 1], bad.predict(X[y > 0]))


def test_outputs_of_glm_experts_and_pipelines():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 2))
    y = rng.gamma(2.0, np.exp(X[:, 0]) / 2.0)
    experts = [GammaRegressor().fit(X, y), make_pipeline(StandardScaler(), GammaRegressor()).fit(X, y)]
    lik = GammaLikelihood()
    mu = lik.outputs(experts, X)
    np.testing.assert_allclose(mu[:, 0], experts[0].predict(X))
    np.testing.assert_allclose(mu[:, 1], experts[1].predict(X))
    assert isinstance(lik.default_expert(), GammaRegressor)
    assert isinstance(PoissonLikelihood().default_expert(), PoissonRegressor)


# -- a stand-alone EM with the protocol ---------------------------------------------
def _em(lik, X, y, experts, resp, n_iter):
    """EM with constant mixing weights, written only against the protocol."""
    history = []
    theta = None
    for _ in range(n_iter):
        # The experts' own fit with these weights, by skmoe's direct Newton
        # iteration (the same optimum, tests/test_glm_newton.py; much faster).
        assert all(fit_glm_experts(experts, X, y, resp))
        mu = lik.outputs(experts, X)
        theta = lik.m_step(lik.stats(mu, y, resp), theta)
        prior = resp.mean(axis=0)
        joint = lik.log_lik(mu, y, theta) + np.log(prior)
        top = joint.max(axis=1, keepdims=True)
        norm = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
        history.append(norm.sum())
        resp = np.exp(joint - norm[:, None])
    return np.array(history), experts, theta


@pytest.mark.parametrize("name", ["poisson", "gamma"])
def test_standalone_em_is_monotone_and_recovers_two_glms(name):
    rng = np.random.RandomState(0)
    n = 600
    x = rng.uniform(0, 2, size=n)
    X = x[:, None]
    z = rng.rand(n) < 0.4
    log_mu = np.where(z, 0.2 + 1.2 * x, 2.0 - 0.8 * x)
    if name == "poisson":
        lik, make = PoissonLikelihood(), lambda: PoissonRegressor(alpha=0.0, solver="newton-cholesky")
        y = rng.poisson(np.exp(log_mu)).astype(float)
    else:
        lik, make = GammaLikelihood(), lambda: GammaRegressor(alpha=0.0, solver="newton-cholesky")
        y = rng.gamma(np.where(z, 8.0, 4.0), np.exp(log_mu) / np.where(z, 8.0, 4.0))
    resp = np.column_stack([z, ~z]).astype(float) * 0.6 + 0.2  # a noisy start
    history, experts, theta = _em(lik, X, y, [make(), make()], resp, 30)
    assert np.all(np.diff(history) >= -1e-6 * np.abs(history[1:]))
    slopes = sorted(e.coef_[0] for e in experts)
    assert slopes == pytest.approx([-0.8, 1.2], abs=0.25)
    # The fit is at least as likely as the parameters that generated the data.
    mu_true = np.column_stack([np.exp(2.0 - 0.8 * x), np.exp(0.2 + 1.2 * x)])
    nu_true = np.array([4.0, 8.0])
    joint = lik.log_lik(mu_true, y, nu_true) + np.log([0.6, 0.4])
    assert history[-1] >= np.logaddexp.reduce(joint, axis=1).sum()
    if name == "gamma":
        order = np.argsort([e.coef_[0] for e in experts])
        assert theta[order][0] < theta[order][1]


def test_gamma_likelihood_validates_its_parameter():
    with pytest.raises(ValueError, match="max_shape"):
        GammaLikelihood(max_shape=0).validate_targets([1.0, 2.0], None)


@pytest.mark.parametrize("lik", [PoissonLikelihood(), GammaLikelihood()])
def test_protocol_attributes_and_inference_checks(lik):
    assert lik.subset_rows and lik.n_classes is None
    y = np.array([1.0, 2.0, 5.0])
    np.testing.assert_array_equal(lik.encode_targets(y, 3), y)
    with pytest.raises(ValueError, match="X has 4 samples but y has 3"):
        lik.encode_targets(y, 4)
    with pytest.raises(ValueError, match="y must"):
        lik.encode_targets(np.array([1.0, -1.0, 2.0]), 3)
    gate = np.array([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    mu = np.array([[2.0, 4.0, 1.0], [3.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(lik.mean(gate, mu), [3.5, 3.0, 1.0])
    np.testing.assert_allclose(lik.mean_var(gate, mu, np.ones(3))[0], [3.5, 3.0, 1.0])


def test_init_columns_are_on_the_log_scale():
    X = np.arange(6.0).reshape(3, 2)
    y = np.array([0.0, 1.0, 9.0])
    np.testing.assert_allclose(PoissonLikelihood().init_columns(X, y)[:, 2], np.log1p(y))
    np.testing.assert_allclose(GammaLikelihood().init_columns(X, y + 1)[:, 2], np.log(y + 1))
    import scipy.sparse as sp

    cols = PoissonLikelihood().init_columns(sp.csr_matrix(X), y)
    assert sp.issparse(cols) and cols.shape == (3, 3)
