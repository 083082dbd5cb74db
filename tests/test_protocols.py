"""The gate and likelihood protocols, used by a gate written against them alone.

``MixingWeightsGate`` ignores ``x``: it learns only the mixing weights, which
turns the mixture of experts into a plain mixture of regressions. It uses
nothing of skmoe but the documented protocol (the user guide's "Write your
own gate"), and it fits through EM and through the gradient solver.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp, softmax
from sklearn.base import BaseEstimator
from sklearn.linear_model import SGDRegressor

from skmoe import MixtureOfExpertsRegressor


class MixingWeightsGate(BaseEstimator):
    """``pi_k(x) = softmax(b)_k`` whatever ``x``: learned mixing weights."""

    def prepare(self, Z, sample_weight):
        return self

    def fit_soft(self, Z, R, sample_weight, *, max_iter=None):
        share = sample_weight @ R / sample_weight.sum()
        self.logits_ = np.log(np.maximum(share, 1e-300))
        self.n_outputs_ = R.shape[1]
        return self

    def log_proba(self, Z):
        log_pi = self.logits_ - logsumexp(self.logits_)
        return np.ascontiguousarray(np.tile(log_pi, (Z.shape[0], 1)))

    def penalty(self):
        return 0.0

    def n_parameters(self):
        return self.n_outputs_ - 1

    def drop_output(self, k):
        self.logits_ = np.delete(self.logits_, k)
        self.n_outputs_ -= 1

    def split_output(self, j, n_new):
        shift = np.log(n_new + 1.0)
        self.logits_ = np.concatenate([self.logits_, np.repeat(self.logits_[j], n_new)])
        self.logits_[j] -= shift
        self.logits_[-n_new:] -= shift
        self.n_outputs_ += n_new

    def sgd_parameters(self):
        return [self.logits_]

    def sgd_gradient(self, Z, R, sample_weight, total):
        w_batch = sample_weight.sum()
        return [(w_batch * softmax(self.logits_) - sample_weight @ R) / w_batch]


def _two_lines(n=2000, share=0.3, seed=0):
    """A mixture of two regression lines whose weights do not depend on x."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-2, 2, size=n)
    first = rng.uniform(size=n) < share
    y = np.where(first, 3 * x + 2, -x - 1) + 0.2 * rng.normal(size=n)
    return x[:, None], y


def _weights(moe, X):
    pi = moe.predict_gate(X)
    assert_allclose(pi, np.tile(pi[0], (len(X), 1)))  # the gate ignores x
    return np.sort(pi[0])


def test_protocol_gate_fits_through_em():
    X, y = _two_lines()
    moe = MixtureOfExpertsRegressor(
        n_experts=2, gate=MixingWeightsGate(), random_state=0
    ).fit(X, y)
    assert moe.converged_
    assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-10)
    assert_allclose(_weights(moe, X), [0.3, 0.7], atol=0.03)
    assert_allclose(moe.log_likelihood_, moe.log_prob(X, y).mean())
    assert moe._n_parameters() == 1 + 2 * 2 + 2  # weights, lines, variances
    assert np.isfinite(moe.bic(X, y))


def test_protocol_gate_fits_through_gradient_solver():
    X, y = _two_lines()
    moe = MixtureOfExpertsRegressor(
        SGDRegressor(random_state=0), n_experts=2, gate=MixingWeightsGate(),
        solver="gd", max_iter=30, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moe.fit(X, y)
    assert_allclose(_weights(moe, X), [0.3, 0.7], atol=0.1)
    slopes = sorted(float(e.coef_[0]) for e in moe.experts_)
    assert_allclose(slopes, [-1.0, 3.0], atol=0.1)  # both lines found
    assert_allclose(moe.expert_usage_.sum(), 1.0)
    moe.partial_fit(X[:500], y[:500])  # continues through the same protocol
    assert np.isfinite(moe.log_likelihood_)


@pytest.mark.parametrize("on_collapse", ["reseed", "drop"])
def test_protocol_gate_supports_repairs_and_growth(on_collapse):
    X, y = _two_lines()
    moe = MixtureOfExpertsRegressor(
        n_experts=2, gate=MixingWeightsGate(), random_state=0, warm_start=True,
        on_collapse=on_collapse,
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moe.set_params(n_experts=3).fit(X, y)  # growth splits a gate output
    assert moe.n_experts_ in (2, 3)
    assert_allclose(moe.predict_gate(X).sum(axis=1), 1.0)
