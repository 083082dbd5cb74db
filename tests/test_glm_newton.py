"""The direct Newton fit of Poisson / Gamma GLM experts against scikit-learn's
own fit."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import GammaRegressor, PoissonRegressor

from skmoe._glm import batchable_glm, fit_glm_experts


def _data(kind, n=400, d=3, seed=0):
    rng = np.random.RandomState(seed)
    scale, shift = np.array([1.0, 10.0, 0.1])[:d], np.array([0, 5, -1])[:d]
    X = rng.normal(size=(n, d)) * scale + shift
    eta = 0.5 + X @ (np.array([0.3, -0.02, 2.0])[:d])
    mu = np.exp(eta)
    if kind is PoissonRegressor:
        y = rng.poisson(mu).astype(float)
    else:
        y = rng.gamma(4.0, mu / 4.0)
    w = rng.uniform(0, 2, size=(n, 2))
    w[rng.uniform(size=n) < 0.3, 0] = 0.0  # rows without weight for expert 0
    return X, y, w


@pytest.mark.parametrize("kind", [PoissonRegressor, GammaRegressor])
@pytest.mark.parametrize("alpha", [0.0, 1e-4, 1.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_newton_matches_sklearn_with_sample_weight(kind, alpha, fit_intercept):
    X, y, w = _data(kind)
    proto = kind(alpha=alpha, fit_intercept=fit_intercept, solver="newton-cholesky",
                 tol=1e-12, max_iter=1000)
    assert batchable_glm(proto)
    experts = [clone(proto), clone(proto)]
    assert all(fit_glm_experts(experts, X, y, w))
    for j, e in enumerate(experts):
        ref = clone(proto).fit(X, y, sample_weight=w[:, j])
        np.testing.assert_allclose(e.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(e.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(e.predict(X), ref.predict(X), rtol=1e-6)
    # Warm start from the fitted coefficients: the same optimum.
    again = fit_glm_experts(experts, X, y, w[:, ::-1])
    assert all(again)
    ref = clone(proto).fit(X, y, sample_weight=w[:, 1])
    np.testing.assert_allclose(experts[0].coef_, ref.coef_, rtol=1e-6, atol=1e-8)


def test_only_plain_glms_are_batched():
    from sklearn.linear_model import TweedieRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert not batchable_glm(TweedieRegressor(power=1, link="log"))
    assert not batchable_glm(make_pipeline(StandardScaler(), PoissonRegressor()))
    assert batchable_glm(GammaRegressor())


def test_direct_prediction_is_sklearns():
    from skmoe._glm import predict_glm, predicts_directly

    X, y, w = _data(GammaRegressor)
    e = GammaRegressor().fit(X, y)
    assert predicts_directly(e, X)
    np.testing.assert_allclose(predict_glm(e, X), e.predict(X), rtol=1e-12)
    assert not predicts_directly(GammaRegressor(), X)  # not fitted
