"""Poisson and Gamma mixtures, ClassifierGate and HierarchicalGate, through the
estimator."""

import contextlib
import copy
import warnings

import numpy as np
import pytest
from scipy.special import expit, logsumexp
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import GammaRegressor, LinearRegression, PoissonRegressor
from sklearn.metrics import r2_score
from threadpoolctl import threadpool_limits

from skmoe import (
    ClassifierGate,
    HierarchicalGate,
    MixtureOfExpertsRegressor,
    SoftmaxGate,
)
from skmoe._glm_likelihoods import GammaLikelihood
from skmoe._likelihood import GaussianLikelihood


def _glm_mixture(kind, n=1500, seed=0):
    """Two log-link GLMs under a logistic gate on x0; returns X, y and the truth."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    p_first = expit(3.0 * X[:, 0])
    first = rng.uniform(size=n) < p_first
    coef = np.array([[1.0, 0.8, -0.5], [2.5, -1.0, 0.4]])  # intercept, x0, x1
    eta = np.where(first, coef[0, 0] + X @ coef[0, 1:], coef[1, 0] + X @ coef[1, 1:])
    mu = np.exp(eta)
    shapes = np.array([3.0, 10.0])
    if kind == "poisson":
        y = rng.poisson(mu).astype(float)
    else:
        nu = np.where(first, shapes[0], shapes[1])
        y = rng.gamma(nu, mu / nu)
    return X, y, coef, shapes, p_first


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- Gamma: parameter recovery ----------------------------------------
def test_gamma_mixture_recovers_its_parameters():
    X, y, coef, shapes, p_first = _glm_mixture("gamma")
    moe = MixtureOfExpertsRegressor(
        n_experts=2, likelihood="gamma", gate=SoftmaxGate(alpha=0.0), random_state=0,
        max_iter=200, tol=1e-8,
    ).fit(X, y)
    fitted = np.array([[e.intercept_, *e.coef_] for e in moe.experts_])
    order = np.argsort(fitted[:, 0])  # expert 0 has the smaller intercept
    fitted, shape = fitted[order], moe.shape_[order]
    resp = moe.responsibilities(X, y)[:, order]
    Xa = np.column_stack([np.ones(len(X)), X])
    for k in range(2):
        # Standard errors of a Gamma GLM (log link) on its rows: the inverse
        # Fisher information nu * X^T diag(r) X (responsibilities held fixed,
        # so these errors are if anything too small: a stricter test).
        info = shape[k] * (Xa * resp[:, k : k + 1]).T @ Xa
        se = np.sqrt(np.diag(np.linalg.inv(info)))
        assert np.all(np.abs(fitted[k] - coef[k]) <= 3 * se), (fitted[k], coef[k], se)
        assert abs(shape[k] / shapes[k] - 1) <= 0.10, (shape, shapes)
    assert np.array_equal(moe.shape_, moe.likelihood_params_)
    assert not hasattr(moe, "noise_variance_")
    # The log-likelihood at the fit is at least that at the true parameters.
    mu = np.exp(Xa @ coef.T)
    lik = GammaLikelihood()
    log_gate = np.log(np.column_stack([p_first, 1 - p_first]))
    true_ll = logsumexp(log_gate + lik.log_lik(mu, y, shapes), axis=1).sum()
    fit_ll = moe.log_prob(X, y).sum()
    assert fit_ll >= true_ll
    assert fit_ll == pytest.approx(moe.log_likelihood_ * len(y))
    # BIC counts the gate (3), the experts (2 x 3) and one shape per expert.
    assert moe.bic(X, y) == pytest.approx(-2 * fit_ll + (3 + 6 + 2) * np.log(len(y)))
    assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-9)


def test_poisson_mixture_fits_and_predicts_mean_and_std():
    X, y, coef, _, _ = _glm_mixture("poisson", n=1000)
    moe = MixtureOfExpertsRegressor(n_experts=2, likelihood="poisson", random_state=0)
    moe.fit(X, y)
    fitted = np.sort([e.intercept_ for e in moe.experts_])
    np.testing.assert_allclose(fitted, coef[:, 0], atol=0.15)
    assert moe.likelihood_params_ is None
    mean, std = moe.predict(X, return_std=True)
    # Law of total variance: sum_k pi_k (mu_k + mu_k^2) - mean^2.
    pi, mu = moe.predict_gate(X), moe.predict_experts(X)
    np.testing.assert_allclose(mean, np.sum(pi * mu, axis=1))
    np.testing.assert_allclose(std**2, np.sum(pi * (mu + mu**2), axis=1) - mean**2)
    # Poisson counts 2 x 3 expert parameters and 3 gate ones; no likelihood ones.
    ll = moe.log_prob(X, y).sum()
    assert moe.aic(X, y) == pytest.approx(-2 * ll + 2 * 9)
    # A default expert: Newton's method with a negligible ridge.
    assert isinstance(moe.experts_[0], PoissonRegressor)
    assert moe.experts_[0].solver == "newton-cholesky" and moe.experts_[0].alpha == 1e-4


def test_glm_mixtures_top_k_and_sample_weight():
    X, y, _, _, _ = _glm_mixture("gamma", n=300)
    dense = MixtureOfExpertsRegressor(n_experts=3, likelihood="gamma", random_state=0)
    sparse = clone(dense).set_params(top_k=1)
    with _quiet():
        dense.fit(X, y)
        sparse.fit(X, y)
    assert np.all(sparse.route(X).counts.sum() == len(X))
    assert np.all(sparse.log_prob(X, y) <= dense.log_prob(X, y).max() + 50)
    assert np.all(sparse.predict(X) > 0)
    # Integer sample weights = repeated rows.
    w = np.random.RandomState(1).randint(0, 3, size=len(y))
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    a = MixtureOfExpertsRegressor(n_experts=2, likelihood="gamma", init="random",
                                  random_state=0, tol=1e-9, max_iter=30)
    b = clone(a)
    init = np.eye(2)[np.random.RandomState(2).randint(2, size=len(y))]
    a.set_params(init=init).fit(X, y, sample_weight=w)
    b.set_params(init=np.repeat(init, w, axis=0)).fit(Xr, yr)
    np.testing.assert_allclose(a.shape_, b.shape_, rtol=1e-4)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4)


def test_glm_targets_and_experts_are_checked():
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="y must hold counts"):
        MixtureOfExpertsRegressor(likelihood="poisson").fit(X, np.linspace(-1, 1, 20))
    with pytest.raises(ValueError, match="y must hold counts.*fractional"):
        MixtureOfExpertsRegressor(likelihood="poisson").fit(X, np.full(20, 0.5))
    with pytest.raises(ValueError, match="y must be positive"):
        MixtureOfExpertsRegressor(likelihood="gamma").fit(X, np.arange(20.0))
    # A linear expert predicts negative means: the error names it.
    y = np.r_[np.zeros(10), np.full(10, 30.0)]
    X1 = np.linspace(-3, 3, 20)[:, None]
    match = r"Expert \d \(LinearRegression\) predicted a non-positive"
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor(LinearRegression(), likelihood="poisson").fit(X1, y)
    # Any regressor with positive predictions works (boosting with a Poisson loss).
    hgb = HistGradientBoostingRegressor(loss="poisson", max_iter=10)
    with _quiet(), threadpool_limits(1):
        moe = MixtureOfExpertsRegressor(
            hgb, likelihood="poisson", max_iter=5, random_state=0
        )
        moe.fit(X1, y + 1)
    assert np.all(moe.predict(X1) > 0)
    with pytest.raises(ValueError, match="likelihood"):
        MixtureOfExpertsRegressor(likelihood="binomial").fit(X1, y)


def test_glm_mixture_gd_needs_experts_with_partial_fit():
    X, y, _, _, _ = _glm_mixture("poisson", n=200)
    match = "solver='gd' with likelihood='poisson'.*experts"
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor(likelihood="poisson", solver="gd").fit(X, y)
    with pytest.raises(TypeError, match="partial_fit"):
        MixtureOfExpertsRegressor(
            GammaRegressor(), likelihood="gamma", solver="gd"
        ).fit(X, y + 1)


class _LogLinearSGD(RegressorMixin, BaseEstimator):
    """A positive-mean expert with partial_fit: Poisson regression by gradient steps."""

    def __init__(self, lr=0.05):
        self.lr = lr

    def partial_fit(self, X, y, sample_weight=None):
        w = np.ones(len(y)) if sample_weight is None else sample_weight
        if not hasattr(self, "coef_"):
            self.coef_, self.intercept_ = np.zeros(X.shape[1]), np.log(np.mean(y) + 1)
        for _ in range(5):
            mu = self.predict(X)
            g = w * (mu - y) / max(w.sum(), 1e-12)
            self.coef_ = self.coef_ - self.lr * (X.T @ g)
            self.intercept_ = self.intercept_ - self.lr * g.sum()
        return self

    def fit(self, X, y, sample_weight=None):
        self.__dict__.pop("coef_", None)
        for _ in range(20):
            self.partial_fit(X, y, sample_weight)
        return self

    def predict(self, X):
        return np.exp(np.clip(X @ self.coef_ + self.intercept_, -30, 30))


def test_glm_mixture_gd_and_partial_fit_with_partial_fit_experts():
    X, y, _, _, _ = _glm_mixture("poisson", n=600)
    moe = MixtureOfExpertsRegressor(
        _LogLinearSGD(), likelihood="poisson", solver="gd", max_iter=5, random_state=0
    )
    with _quiet():
        moe.fit(X, y)
        moe.partial_fit(X[:100], y[:100])
    assert np.all(np.isfinite(moe.log_prob(X, y)))
    assert np.all(moe.predict(X) > 0)


def test_likelihood_instances_are_copied_never_mutated():
    X, y, _, _, _ = _glm_mixture("gamma", n=300)
    lik = GammaLikelihood(max_shape=50.0)
    moe = MixtureOfExpertsRegressor(likelihood=lik, random_state=0)
    with _quiet():
        moe.fit(X, y)
    assert moe.likelihood is lik and lik.get_params() == {"max_shape": 50.0}
    assert np.all(moe.likelihood_params_ <= 50.0)
    assert not hasattr(moe, "shape_")  # an instance: the generic attribute only
    # A Gaussian likelihood object gives the string's model exactly.
    Xg = np.random.RandomState(0).normal(size=(200, 1))
    yg = np.abs(Xg[:, 0]) + 0.1 * np.random.RandomState(1).normal(size=200)
    a = MixtureOfExpertsRegressor(random_state=0).fit(Xg, yg)
    b = MixtureOfExpertsRegressor(likelihood=GaussianLikelihood(1e-6), random_state=0)
    b.fit(Xg, yg)
    np.testing.assert_allclose(a.predict(Xg), b.predict(Xg))
    np.testing.assert_allclose(a.noise_variance_, b.likelihood_params_)
    # A fresh copy each fit: the parameter stays as it was given.
    copy.deepcopy(moe).fit(X, y * 2)
    assert lik.get_params() == {"max_shape": 50.0}


# -- ClassifierGate --------------------------------------------------
def _disc(n, seed):
    """Two linear laws: inside a disc and outside it (a boundary no line draws)."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    inside = (X**2).sum(axis=1) < 1.5
    y = np.where(inside, 3 + 2 * X[:, 0] - X[:, 1], -1 - X[:, 0] + 2 * X[:, 1])
    return X, y + 0.3 * rng.normal(size=n)


def test_classifier_gate_finds_a_disc_that_softmax_cannot():
    X, y = _disc(800, 0)
    Xt, yt = _disc(2000, 1)
    hgb = HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=8)
    scores = {}
    for name, gate in [
        ("softmax", SoftmaxGate()),
        ("hgb", ClassifierGate(hgb, min_responsibility=0.05)),
    ]:
        moe = MixtureOfExpertsRegressor(
            n_experts=2, gate=gate, max_iter=50, random_state=0
        )
        # One OpenMP thread: many small boosting fits, on a shared machine.
        with _quiet(), threadpool_limits(1):
            moe.fit(X, y)
        scores[name] = r2_score(yt, moe.predict(Xt))
    assert scores["hgb"] >= scores["softmax"] + 0.1, scores
    assert scores["hgb"] > 0.8, scores


def test_classifier_gate_refuses_the_gradient_solver_up_front():
    X, y = _disc(100, 0)
    from sklearn.linear_model import SGDRegressor

    moe = MixtureOfExpertsRegressor(SGDRegressor(), gate=ClassifierGate(), solver="gd")
    with pytest.raises(ValueError, match="ClassifierGate has no gradient.*solver='em'"):
        moe.fit(X, y)
    with pytest.raises(ValueError, match="ClassifierGate has no gradient"):
        moe.partial_fit(X, y)
    assert not hasattr(moe, "experts_")
    nested = HierarchicalGate(node_gate=ClassifierGate())
    with pytest.raises(ValueError, match="HierarchicalGate has no gradient"):
        moe.set_params(gate=nested, n_experts=4).fit(X, y)


# -- HierarchicalGate ------------------------------------------------
def _pieces(n, seed):
    """Four linear laws on the quadrants of [-1, 1]^2."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    q = 2 * (X[:, 0] > 0) + (X[:, 1] > 0)
    coef = np.array(
        [[1.0, 2.0, 0.0], [-2.0, 1.0, 3.0], [0.5, -1.0, -2.0], [3.0, 0.0, 1.0]]
    )
    y = coef[q, 0] + np.sum(coef[q, 1:] * X, axis=1)
    return X, y + 0.2 * rng.normal(size=n)


def test_hierarchical_mixture_matches_a_flat_one():
    X, y = _pieces(1200, 0)
    Xt, yt = _pieces(2000, 1)
    # Unpenalised experts: exact M-steps, a history that never decreases.
    flat = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=4, n_init=3, random_state=0
    ).fit(X, y)
    hme = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=4, gate=HierarchicalGate(branching=(2, 2)), n_init=3,
        random_state=0
    ).fit(X, y)
    r2_flat, r2_hme = r2_score(yt, flat.predict(Xt)), r2_score(yt, hme.predict(Xt))
    assert r2_hme >= r2_flat - 0.01, (r2_hme, r2_flat)
    assert np.all(np.diff(hme.log_likelihood_history_) >= -1e-9)
    routing = hme.route(Xt[:5])
    assert routing.paths == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert routing.paths == hme.gate_.paths_
    # top_k through the tree: one expert per row, the gate's most probable.
    top = clone(hme).set_params(top_k=1).fit(X, y)
    r = top.route(Xt)
    most_probable = np.argmax(top.predict_gate(Xt), axis=1)
    np.testing.assert_array_equal(r.experts[:, 0], most_probable)
    np.testing.assert_allclose(top.predict_gate(Xt).sum(axis=1), 1.0)
    assert r.counts.sum() == len(Xt) and not hasattr(flat.route(Xt), "paths")


def test_hierarchical_gate_checks_the_number_of_experts_before_fitting():
    X, y = _pieces(100, 0)
    match = "4 leaves but the mixture has 2 experts; set n_experts=4"
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor(gate=HierarchicalGate((2, 2))).fit(X, y)


def test_gates_without_n_outputs_in_prepare_still_work():
    """``prepare(Z, sample_weight)`` (no ``n_outputs``) is still the protocol."""

    class OldSoftmax(SoftmaxGate):
        def prepare(self, Z, sample_weight):
            return super().prepare(Z, sample_weight)

    X, y = _pieces(300, 0)
    a = MixtureOfExpertsRegressor(n_experts=2, gate=OldSoftmax(), random_state=0)
    a.fit(X, y)
    b = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(a.predict(X), b.predict(X))


def test_constant_gate_with_no_gate_features():
    X, y, _, _, _ = _glm_mixture("poisson", n=400)
    moe = MixtureOfExpertsRegressor(
        likelihood="poisson", gate_features=[], random_state=0
    )
    moe.fit(X, y)
    pi = moe.predict_gate(X)
    np.testing.assert_allclose(pi, np.tile(pi[0], (len(X), 1)))
    assert moe.gate_.n_parameters() == 1


def test_poisson_mixture_on_a_dataframe_matches_the_array():
    pd = pytest.importorskip("pandas")
    X, y, _, _, _ = _glm_mixture("poisson", n=400)
    frame = pd.DataFrame(X, columns=["a", "b"])
    on_array = MixtureOfExpertsRegressor(likelihood="poisson", random_state=0).fit(X, y)
    on_frame = MixtureOfExpertsRegressor(likelihood="poisson", random_state=0)
    on_frame.fit(frame, y)
    assert list(on_frame.experts_[0].feature_names_in_) == ["a", "b"]
    np.testing.assert_allclose(on_frame.predict(frame), on_array.predict(X), rtol=1e-8)
