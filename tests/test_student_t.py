"""The Student-t likelihood: ``likelihood="student_t"`` (robust experts)."""

import pickle

import numpy as np
import pytest
import scipy.stats
from naive import t_regression_loglik
from numpy.testing import assert_allclose
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor
from skmoe._student_t import StudentTLikelihood, t_log_pdf, t_scale_df_mle


def _theta(scale, df):
    theta = np.empty(len(scale), dtype=[("scale", float), ("df", float)])
    theta["scale"], theta["df"] = scale, df
    return theta


def _two_lines_with_outliers(n=600, seed=0, outliers=0.05):
    """Two regression lines (x < 0, x > 0) with Gaussian noise, and a share
    of gross outliers (+-15 to 25 away)."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    y = np.where(X[:, 0] > 0, 1.0 + 2.0 * X[:, 0], -1.0 - 1.0 * X[:, 0])
    y += 0.3 * rng.randn(n)
    bad = rng.rand(n) < outliers
    y[bad] += rng.choice([-1, 1], bad.sum()) * rng.uniform(15, 25, bad.sum())
    return X, y


def test_log_lik_is_scipy_logpdf_and_expert_distribution():
    rng = np.random.RandomState(0)
    y = rng.standard_t(3, size=40) * 2
    loc = rng.normal(size=(40, 3))
    theta = _theta([0.5, 2.0, 7.0], [1.0, 4.5, 900.0])
    lik = StudentTLikelihood()
    y, _ = lik.validate_targets(y, np.ones(40))
    expected = scipy.stats.t.logpdf(
        y[:, None], theta["df"][None, :], loc=loc, scale=theta["scale"][None, :]
    )
    assert_allclose(lik.log_lik(loc, y, theta), expected, rtol=1e-10)
    dist = lik.expert_distribution(loc, theta)
    assert not StudentTLikelihood.discrete
    assert_allclose(dist.logpdf(y[:, None]), lik.log_lik(loc, y, theta), rtol=1e-10)


@pytest.mark.parametrize("df", [None, 4.0])
def test_scale_df_m_step_is_the_weighted_mle(df):
    rng = np.random.RandomState(1)
    n = 400
    R = np.column_stack([2 * rng.standard_t(3, n), rng.standard_t(1.5, n)])
    w = rng.uniform(0, 1, size=(n, 2))
    sigma, nu = t_scale_df_mle(
        R, w, (np.ones(2), np.full(2, 10.0)), df, 1e-10, n_rounds=200, tol=1e-12
    )
    for k in range(2):

        def nll(p):
            v = np.exp(p[1]) if df is None else df
            return -w[:, k] @ t_log_pdf(
                R[:, k] ** 2 / np.exp(2 * p[0]), np.exp(p[0]), v
            )

        ref = minimize(
            nll,
            [0.0, 1.0],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 10000},
        )
        assert sigma[k] == pytest.approx(np.exp(ref.x[0]), rel=1e-5)
        if df is None:
            assert nu[k] == pytest.approx(np.exp(ref.x[1]), rel=1e-4)
        else:
            assert nu[k] == df


def test_one_expert_is_the_t_regression_mle():
    X, y = _two_lines_with_outliers(n=300, seed=2)
    X, y = X[X[:, 0] > 0], y[X[:, 0] > 0]  # one line and its outliers
    moe = MixtureOfExpertsRegressor(
        LinearRegression(),
        n_experts=1,
        likelihood="student_t",
        tol=1e-13,
        max_iter=3000,
    ).fit(X, y)
    e = moe.experts_[0]
    fitted = np.array(
        [e.coef_[0], e.intercept_, np.log(moe.scale_[0]), np.log(moe.df_[0])]
    )
    ref = minimize(
        lambda p: -t_regression_loglik(p, X, y),
        fitted + 0.2,
        method="BFGS",
        options={"gtol": 1e-7},
    )
    assert moe.log_prob(X, y).sum() == pytest.approx(-ref.fun, abs=1e-5)
    assert_allclose(fitted, ref.x, atol=1e-3)
    assert e.coef_[0] == pytest.approx(2.0, abs=0.1)  # the outliers do not pull it


def test_robust_mixture_beats_the_gaussian_one_with_outliers():
    X, y = _two_lines_with_outliers(n=600, seed=3)
    fits = {
        lik: MixtureOfExpertsRegressor(
            LinearRegression(), n_experts=2, likelihood=lik, random_state=0
        ).fit(X, y)
        for lik in ("student_t", "gaussian")
    }
    slopes = {
        lik: sorted(float(e.coef_[0]) for e in m.experts_) for lik, m in fits.items()
    }
    assert_allclose(slopes["student_t"], [-1.0, 2.0], atol=0.1)
    err = {lik: np.abs(np.array(s) - [-1.0, 2.0]).max() for lik, s in slopes.items()}
    assert err["student_t"] < err["gaussian"]
    assert fits["student_t"].df_.min() < 10  # the outliers call for heavy tails


def test_fixed_df_and_predictive_moments():
    X, y = _two_lines_with_outliers(n=300, seed=4)
    moe = MixtureOfExpertsRegressor(
        n_experts=2,
        likelihood=StudentTLikelihood(df=4),
        max_iter=50,
        init="kmeans",
        random_state=0,
    ).fit(X, y)
    theta = moe.likelihood_params_
    assert_allclose(theta["df"], 4.0)
    pi = moe.gate_.predict_proba(X)
    f = moe.predict_experts(X)
    mean, std = moe.predict(X, return_std=True)
    var = theta["scale"] ** 2 * 4.0 / 2.0
    assert_allclose(std**2, np.sum(pi * (var + f**2), axis=1) - mean**2, rtol=1e-8)
    n_params = 2 + 2 * 2 + 2  # gate, experts, one scale each (df fixed)
    log_lik = moe.log_prob(X, y).sum()
    assert moe.bic(X, y) == pytest.approx(-2 * log_lik + n_params * np.log(len(y)))
    # Estimated df: two parameters per expert; no variance where df <= 2.
    free = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="student_t", max_iter=50, init="kmeans", random_state=0
    ).fit(X, y)
    assert free.bic(X, y) == pytest.approx(
        -2 * free.log_prob(X, y).sum() + (n_params + 2) * np.log(len(y))
    )
    _, std = free.predict(X, return_std=True)
    assert not np.isnan(std).any()
    heavy = free.df_ <= 2
    assert np.all(np.isinf(std[free.gate_.predict_proba(X)[:, heavy].sum(axis=1) > 0]))


def test_gd_solver_and_bad_df_are_refused():
    X, y = _two_lines_with_outliers(n=50)
    with pytest.raises(ValueError, match="solver='em'"):
        MixtureOfExpertsRegressor(likelihood="student_t", solver="gd").fit(X, y)
    with pytest.raises(ValueError, match="df"):
        MixtureOfExpertsRegressor(likelihood=StudentTLikelihood(df=-1)).fit(X, y)


def test_clone_and_pickle():
    X, y = _two_lines_with_outliers(n=200, seed=6)
    moe = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="student_t", max_iter=30, init="kmeans", random_state=0
    )
    assert clone(moe).get_params()["likelihood"] == "student_t"
    moe.fit(X, y)
    again = pickle.loads(pickle.dumps(moe))
    assert_allclose(again.log_prob(X, y), moe.log_prob(X, y))
    assert_allclose(again.df_, moe.df_)
    moe.set_params(likelihood="gaussian").fit(X, y)
    assert not hasattr(moe, "df_") and not hasattr(moe, "scale_")
