"""The predictive distribution: expert distributions, quantiles, intervals,
highest-density sets, sampling and density-based conformal sets.

Every check compares with an independent reference: scipy's closed forms,
a brute-force inversion of the mixture CDF on a fine grid, the model's own
``predict(return_std=True)`` and ``log_prob``.
"""

import numpy as np
import pytest
from scipy import stats
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from skmoe import (
    DensityConformalRegressor,
    MixtureOfExpertsRegressor,
    PredictionSet,
)
from skmoe._glm_likelihoods import GammaLikelihood, PoissonLikelihood
from skmoe._likelihood import GaussianLikelihood


def _two_branches(n, seed, gap=3.0, noise=0.3):
    """Two well separated branches y = +-(gap + x): bimodal given x."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 1))
    sign = np.where(rng.rand(n) < 0.5, 1.0, -1.0)
    return X, sign * (gap + X[:, 0]) + noise * rng.randn(n)


@pytest.fixture(scope="module")
def bimodal():
    X, y = _two_branches(600, 0)
    moe = MixtureOfExpertsRegressor(n_experts=2, init="kmeans", random_state=0)
    return moe.fit(X, y), X, y


@pytest.fixture(scope="module")
def counts():
    rng = np.random.RandomState(1)
    X = rng.uniform(-1, 1, size=(400, 1))
    y = rng.poisson(np.where(X[:, 0] < 0, 2.0, 12.0))
    moe = MixtureOfExpertsRegressor(n_experts=2, likelihood="poisson", random_state=0)
    return moe.fit(X, y), X, y


def _gaussian_reference(moe, X):
    """Gate weights, means and scales from the public API."""
    return (
        moe.predict_gate(X), moe.predict_experts(X), np.sqrt(moe.noise_variance_)
    )


# -- expert_distribution agrees with log_lik --------------------------------
@pytest.mark.parametrize(
    "likelihood, y, theta",
    [
        (GaussianLikelihood(), np.array([-1.0, 0.3, 2.5, 7.0]), np.array([0.5, 2.0, 9.0])),
        (PoissonLikelihood(), np.array([0.0, 1.0, 4.0, 11.0]), None),
        (GammaLikelihood(), np.array([0.2, 1.0, 3.5, 9.0]), np.array([0.7, 2.0, 15.0])),
    ],
    ids=["gaussian", "poisson", "gamma"],
)
def test_expert_distribution_matches_log_lik(likelihood, y, theta):
    rng = np.random.RandomState(0)
    outputs = rng.uniform(0.5, 6.0, size=(y.size, 3))
    dist = likelihood.expert_distribution(outputs, theta)
    log_density = dist.logpmf(y[:, None]) if likelihood.discrete else dist.logpdf(y[:, None])
    assert log_density.shape == (y.size, 3)
    np.testing.assert_allclose(log_density, likelihood.log_lik(outputs, y, theta), rtol=1e-12)
    assert likelihood.discrete is isinstance(likelihood, PoissonLikelihood)


# -- quantiles ---------------------------------------------------------------
def test_quantiles_of_one_expert_are_normal_quantiles():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = X @ [1.0, -2.0] + 0.5 * rng.randn(200)
    moe = MixtureOfExpertsRegressor(n_experts=1, random_state=0).fit(X, y)
    q = [0.01, 0.1, 0.5, 0.77, 0.99]
    expected = stats.norm.ppf(
        q, loc=moe.predict(X[:20])[:, None], scale=np.sqrt(moe.noise_variance_[0])
    )
    np.testing.assert_allclose(moe.predict_quantiles(X[:20], q), expected, atol=1e-9)


def test_quantiles_invert_the_mixture_cdf_on_a_grid(bimodal):
    moe, X, _ = bimodal
    rows = X[:6]
    weights, means, scales = _gaussian_reference(moe, rows)
    grid = np.linspace(-8, 8, 400_001)
    q = np.array([0.02, 0.25, 0.5, 0.6, 0.9])
    got = moe.predict_quantiles(rows, q)
    for i in range(rows.shape[0]):
        cdf = stats.norm.cdf(grid[:, None], means[i], scales) @ weights[i]
        np.testing.assert_allclose(got[i], np.interp(q, cdf, grid), atol=1e-4)


def test_discrete_quantiles_are_smallest_integers_reaching_q(counts):
    moe, X, _ = counts
    rows = X[::40]
    weights, means = moe.predict_gate(rows), moe.predict_experts(rows)
    support = np.arange(200)
    q = np.array([0.05, 0.3, 0.5, 0.95])
    got = moe.predict_quantiles(rows, q)
    for i in range(rows.shape[0]):
        cdf = stats.poisson.cdf(support[:, None], means[i]) @ weights[i]
        expected = support[np.argmax(cdf[:, None] >= q[None, :], axis=0)]
        np.testing.assert_array_equal(got[i], expected)


def test_gamma_quantiles_invert_the_mixture_cdf():
    rng = np.random.RandomState(2)
    X = rng.uniform(-1, 1, size=(300, 1))
    y = rng.gamma(4.0, np.exp(1 + X[:, 0]) / 4.0)
    moe = MixtureOfExpertsRegressor(n_experts=2, likelihood="gamma", random_state=0)
    moe.fit(X, y)
    rows, q = X[:4], [0.1, 0.5, 0.9]
    mu, nu, w = moe.predict_experts(rows), moe.shape_, moe.predict_gate(rows)
    got = moe.predict_quantiles(rows, q)
    F = (stats.gamma.cdf(got[:, :, None], nu, scale=mu[:, None, :] / nu) * w[:, None, :]).sum(2)
    np.testing.assert_allclose(F, np.broadcast_to(q, F.shape), atol=1e-9)


# -- intervals -----------------------------------------------------------------
def test_equal_tailed_interval_holds_its_mass(bimodal):
    moe, X, _ = bimodal
    rows = X[:30]
    weights, means, scales = _gaussian_reference(moe, rows)
    interval = moe.predict_interval(rows, alpha=0.2)
    assert interval.shape == (30, 2)

    def cdf(y):
        return (stats.norm.cdf(y[:, None], means, scales) * weights).sum(1)

    np.testing.assert_allclose(cdf(interval[:, 0]), 0.1, atol=1e-9)
    np.testing.assert_allclose(cdf(interval[:, 1]), 0.9, atol=1e-9)


def test_hdr_of_a_bimodal_mixture_is_two_intervals(bimodal):
    moe, X, _ = bimodal
    rows = X[:25]
    weights, means, scales = _gaussian_reference(moe, rows)
    hdr = moe.predict_interval(rows, alpha=0.1, kind="hdr")
    assert isinstance(hdr, PredictionSet) and len(hdr) == 25
    np.testing.assert_array_equal(hdr.n_intervals, 2)
    bounds = hdr.to_array()
    assert bounds.shape == (25, 2, 2)
    # its probability, recomputed with scipy, is 1 - alpha
    cdf = stats.norm.cdf(bounds[..., None], means[:, None, None, :], scales)
    mass = ((cdf[:, :, 1] - cdf[:, :, 0]) * weights[:, None, :]).sum(axis=(1, 2))
    np.testing.assert_allclose(mass, 0.9, atol=2e-3)
    np.testing.assert_allclose(hdr.mass, mass, atol=1e-9)
    # the density is the same at every endpoint (a superlevel set)
    dens = (stats.norm.pdf(bounds[..., None], means[:, None, None, :], scales)
            * weights[:, None, None, :]).sum(-1)
    np.testing.assert_allclose(dens / dens[:, :1, :1], 1.0, atol=0.02)
    # and it is shorter than the equal-tailed interval (which spans the gap)
    equal = moe.predict_interval(rows, alpha=0.1)
    assert np.all(hdr.size() < 0.6 * (equal[:, 1] - equal[:, 0]))
    inside = hdr.contains(means[:, 0])
    assert inside.all() and not hdr.contains(np.zeros(25)).any()


def test_hdr_of_one_gaussian_is_the_equal_tailed_interval():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 1))
    y = 2 * X[:, 0] + rng.randn(150)
    moe = MixtureOfExpertsRegressor(n_experts=1, random_state=0).fit(X, y)
    hdr = moe.predict_interval(X[:10], alpha=0.05, kind="hdr")
    np.testing.assert_array_equal(hdr.n_intervals, 1)
    np.testing.assert_allclose(hdr.hull(), moe.predict_interval(X[:10], 0.05), atol=1e-4)


def test_discrete_hdr_is_the_smallest_integer_set(counts):
    moe, X, _ = counts
    rows = X[::50]
    hdr = moe.predict_interval(rows, alpha=0.2, kind="hdr")
    weights, means = moe.predict_gate(rows), moe.predict_experts(rows)
    support = np.arange(200)
    for i in range(rows.shape[0]):
        pmf = stats.poisson.pmf(support[:, None], means[i]) @ weights[i]
        order = np.argsort(-pmf)
        n_needed = np.argmax(np.cumsum(pmf[order]) >= 0.8) + 1
        chosen = support[pmf >= pmf[order][n_needed - 1]]
        members = np.concatenate([np.arange(a, b + 1) for a, b in hdr.intervals[i]])
        np.testing.assert_array_equal(members, chosen)
        assert hdr.mass[i] == pytest.approx(pmf[chosen].sum(), abs=1e-10)


# -- sampling ------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["bimodal", "counts"])
def test_sample_y_moments_match_predict(fixture, request):
    moe, X, _ = request.getfixturevalue(fixture)
    rows = X[:5]
    draws = moe.sample_y(rows, n_samples=40_000, random_state=0)
    assert draws.shape == (5, 40_000)
    mean, std = moe.predict(rows, return_std=True)
    se = std / np.sqrt(draws.shape[1])
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 4.5 * se)
    np.testing.assert_allclose(draws.std(axis=1), std, rtol=0.03)
    np.testing.assert_array_equal(draws, moe.sample_y(rows, 40_000, random_state=0))


# -- conformal -------------------------------------------------------------------
def test_conformal_threshold_is_the_finite_sample_rank(bimodal):
    moe, _, _ = bimodal
    X_cal, y_cal = _two_branches(99, 5)
    conformal = DensityConformalRegressor(FrozenEstimator(moe), alpha=0.1).fit(X_cal, y_cal)
    density = np.sort(np.exp(moe.log_prob(X_cal, y_cal)))[::-1]
    # ceil((99 + 1) * 0.9) = 90: the 90th largest density
    assert conformal.threshold_ == pytest.approx(density[89], rel=1e-10)
    with pytest.raises(ValueError, match="calibration rows"):
        conformal.predict_set(X_cal[:2], alpha=0.005)


def test_conformal_sets_cover_at_the_nominal_rate(bimodal):
    moe, _, _ = bimodal
    X_test, y_test = _two_branches(400, 100)
    mixture_density = np.exp(moe.log_prob(X_test, y_test))
    coverage = []
    for seed in range(12):
        X_cal, y_cal = _two_branches(150, 200 + seed)
        conformal = DensityConformalRegressor(FrozenEstimator(moe), alpha=0.2)
        sets = conformal.fit(X_cal, y_cal).predict_set(X_test)
        inside = sets.contains(y_test)
        # the set is the superlevel set of the density at threshold_
        agree = inside == (mixture_density >= conformal.threshold_)
        assert agree.mean() > 0.99
        coverage.append(inside.mean())
    # E[coverage] lies in [0.8, 0.8 + 1/151]; 12 x 400 test rows: SE ~ 0.01
    assert 0.77 < np.mean(coverage) < 0.84


def test_conformal_fit_splits_and_refits():
    X, y = _two_branches(500, 7)
    conformal = DensityConformalRegressor(
        MixtureOfExpertsRegressor(n_experts=2, init="kmeans", random_state=0),
        calibration_size=0.3, random_state=0,
    ).fit(X, y)
    assert conformal.calibration_scores_.size == 150
    assert conformal.estimator_.n_features_in_ == 1
    np.testing.assert_allclose(conformal.predict(X[:5]), conformal.estimator_.predict(X[:5]))
    hull = conformal.predict_interval(X[:5])
    sets = conformal.predict_set(X[:5])
    np.testing.assert_allclose(hull[:, 0], [iv[0, 0] for iv in sets.intervals])


# -- input validation ------------------------------------------------------------
@pytest.mark.parametrize("q", [0.0, 1.0, [0.5, 1.2], -0.1, [], np.nan, [[0.1]]])
def test_quantiles_outside_the_unit_interval_are_refused(bimodal, q):
    moe, X, _ = bimodal
    with pytest.raises(ValueError, match="quantiles"):
        moe.predict_quantiles(X[:2], q)


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.2, "0.1", True, [0.1, 0.2]])
def test_bad_alpha_is_refused(bimodal, alpha):
    moe, X, _ = bimodal
    with pytest.raises(ValueError, match="alpha"):
        moe.predict_interval(X[:2], alpha=alpha)


def test_bad_arguments_are_refused(bimodal):
    moe, X, _ = bimodal
    with pytest.raises(ValueError, match="kind"):
        moe.predict_interval(X[:2], kind="central")
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_samples"):
            moe.sample_y(X[:2], n_samples=n)
    with pytest.raises(NotFittedError):
        MixtureOfExpertsRegressor().predict_quantiles(X[:2], 0.5)
    with pytest.raises(ValueError, match="features"):
        moe.predict_quantiles(np.ones((2, 3)), 0.5)
    with pytest.raises(ValueError, match="calibration rows"):
        DensityConformalRegressor(FrozenEstimator(moe), alpha=0.05).fit(X[:10], X[:10, 0])


class _NoDistribution:
    """A Gaussian likelihood without ``expert_distribution``."""

    def __init__(self):
        self.inner = GaussianLikelihood()

    def __getattr__(self, name):
        if name.startswith("_") or name == "expert_distribution":
            raise AttributeError(name)
        return getattr(self.__dict__["inner"], name)


def test_likelihood_without_expert_distribution_is_named(bimodal):
    _, X, y = bimodal
    moe = MixtureOfExpertsRegressor(n_experts=1, likelihood=_NoDistribution()).fit(X, y)
    with pytest.raises(TypeError, match="expert_distribution"):
        moe.sample_y(X[:2])


# -- MAPIE (optional) ------------------------------------------------------------
def test_works_with_mapie_split_and_cross_conformal():
    mapie = pytest.importorskip("mapie.regression")
    X, y = _two_branches(400, 3)
    X_test, y_test = _two_branches(400, 4)
    moe = MixtureOfExpertsRegressor(n_experts=2, init="kmeans", random_state=0)
    split = mapie.SplitConformalRegressor(moe, confidence_level=0.8, prefit=False)
    split.fit(X[:250], y[:250]).conformalize(X[250:], y[250:])
    point, interval = split.predict_interval(X_test)
    assert interval.shape == (400, 2, 1)
    covered = (interval[:, 0, 0] <= y_test) & (y_test <= interval[:, 1, 0])
    assert 0.72 < covered.mean() < 0.9
    cross = mapie.CrossConformalRegressor(
        moe, confidence_level=0.8, cv=3, method="plus", random_state=0
    )
    point, interval = cross.fit_conformalize(X, y).predict_interval(X_test)
    covered = (interval[:, 0, 0] <= y_test) & (y_test <= interval[:, 1, 0])
    assert 0.72 < covered.mean() < 0.95


# -- predictive_variance="leverage" -------------------------------------------
def _linear_data(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    return X, X @ [1.5, -1.0] + 0.5 + 0.3 * rng.randn(n)


def test_leverage_of_one_linear_expert_is_the_hat_value():
    from sklearn.linear_model import LinearRegression

    X, y = _linear_data()
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=1, predictive_variance="leverage"
    ).fit(X, y)
    X_new = np.array([[0.0, 0.0], [3.0, -2.0], [10.0, 10.0]])
    design = np.column_stack([np.ones(len(X)), X])
    new = np.column_stack([np.ones(3), X_new])
    hat = np.einsum("ij,jk,ik->i", new, np.linalg.inv(design.T @ design), new)
    sigma2 = moe.noise_variance_[0]
    # the prediction interval of a linear model (normal quantile, MLE variance)
    half = stats.norm.ppf(0.95) * np.sqrt(sigma2 * (1 + hat))
    centre = moe.predict(X_new)
    expected = np.column_stack([centre - half, centre + half])
    np.testing.assert_allclose(moe.predict_interval(X_new, alpha=0.1), expected, rtol=1e-6)
    np.testing.assert_allclose(
        moe.log_prob(X_new, centre + 1.0),
        stats.norm.logpdf(1.0, scale=np.sqrt(sigma2 * (1 + hat))), rtol=1e-6,
    )
    np.testing.assert_allclose(
        moe.predict(X_new, return_std=True)[1], np.sqrt(sigma2 * (1 + hat)), rtol=1e-6
    )


def test_leverage_leaves_the_fit_alone_and_widens_far_rows(bimodal):
    moe, X, y = bimodal
    wide = MixtureOfExpertsRegressor(
        n_experts=2, init="kmeans", random_state=0, predictive_variance="leverage"
    ).fit(X, y)
    assert wide.log_likelihood_ == moe.log_likelihood_
    np.testing.assert_array_equal(wide.noise_variance_, moe.noise_variance_)
    far = np.array([[15.0], [-15.0]])  # 26 SD of x beyond its range
    size_plugin = moe.predict_interval(far, kind="hdr").size()
    size_wide = wide.predict_interval(far, kind="hdr").size()
    assert np.all(size_wide > 1.5 * size_plugin)
    _, std_wide = wide.predict(far, return_std=True)
    near = X[:50]
    np.testing.assert_allclose(
        wide.predict(near, return_std=True)[1], moe.predict(near, return_std=True)[1],
        rtol=0.05,
    )
    draws = wide.sample_y(far, 40_000, random_state=0)
    np.testing.assert_allclose(draws.std(axis=1), std_wide, rtol=0.03)
    # switching the parameter back gives the plug-in density
    wide.set_params(predictive_variance="plugin")
    np.testing.assert_allclose(wide.log_prob(far, [0.0, 0.0]), moe.log_prob(far, [0.0, 0.0]))


def test_leverage_refuses_what_it_cannot_do():
    import scipy.sparse as sp

    X, y = _linear_data()
    with pytest.raises(ValueError, match="predictive_variance"):
        MixtureOfExpertsRegressor(
            likelihood="poisson", predictive_variance="leverage"
        ).fit(X, np.round(np.abs(y)))
    with pytest.raises(ValueError, match="sparse"):
        MixtureOfExpertsRegressor(
            n_experts=1, predictive_variance="leverage"
        ).fit(sp.csr_matrix(X), y)
    moe = MixtureOfExpertsRegressor(
        n_experts=1, solver="gd", predictive_variance="leverage", max_iter=5
    )
    with pytest.raises(ValueError, match="partial_fit"):
        moe.partial_fit(X, y)


def test_clip_inputs_holds_the_edge_values_beyond_the_training_range(bimodal):
    moe, X, y = bimodal
    clipped = MixtureOfExpertsRegressor(
        n_experts=2, init="kmeans", random_state=0, clip_inputs=True
    ).fit(X, y)
    assert clipped.log_likelihood_ == moe.log_likelihood_
    np.testing.assert_allclose(clipped.predict(X), moe.predict(X))
    far = np.array([[7.0], [-9.0], [0.2]])
    edge = np.array([[X.max()], [X.min()], [0.2]])
    np.testing.assert_allclose(clipped.predict(far), moe.predict(edge))
    np.testing.assert_allclose(clipped.predict_gate(far), moe.predict_gate(edge))
    np.testing.assert_allclose(
        clipped.predict_quantiles(far, [0.3, 0.8]), moe.predict_quantiles(edge, [0.3, 0.8])
    )
    with pytest.raises(ValueError, match="clip_inputs"):
        MixtureOfExpertsRegressor(n_experts=1, clip_inputs=True, solver="gd").partial_fit(X, y)


def test_clip_inputs_on_a_dataframe(bimodal):
    pd = pytest.importorskip("pandas")
    moe, X, y = bimodal
    frame = pd.DataFrame({"x": X[:, 0]})
    clipped = MixtureOfExpertsRegressor(
        n_experts=2, init="kmeans", random_state=0, clip_inputs=True,
        predictive_variance="leverage",
    ).fit(frame, y)
    far = pd.DataFrame({"x": [7.0, -9.0]})
    edge = np.array([[X.max()], [X.min()]])
    np.testing.assert_allclose(clipped.predict(far), moe.predict(edge))
    # the leverage is that of the unclipped row: wider than at the edge
    assert np.all(clipped.predict_interval(far, kind="hdr").size()
                  > clipped.predict_interval(pd.DataFrame({"x": edge[:, 0]}), kind="hdr").size())
