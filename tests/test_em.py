"""The EM engine: generalised (partial) gate M-steps and the convergence rule."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skmoe import MixtureOfExpertsRegressor


def test_generalised_m_step_reaches_the_exact_em_optimum():
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, size=(1500, 2))
    y = np.where(X[:, 0] > 0, 2 * X[:, 1], -X[:, 1] + 1) + 0.1 * rng.normal(size=1500)
    from skmoe import SoftmaxGate

    fits = {
        g: MixtureOfExpertsRegressor(
            n_experts=2, gate=SoftmaxGate(alpha=0.1), gate_max_iter=g, random_state=0,
            tol=1e-9, max_iter=500,
        ).fit(X, y)
        for g in ["auto", 3, None]
    }
    exact = fits[None]
    for g, moe in fits.items():
        # Every generalised step raises the objective ...
        assert np.all(np.diff(moe.log_likelihood_history_) >= -1e-10), g
        # ... and EM ends where the exact M-steps end.
        assert_allclose(moe.log_likelihood_, exact.log_likelihood_, atol=1e-6)
        assert_allclose(moe.predict(X), exact.predict(X), atol=1e-3)


def test_gate_max_iter_is_validated():
    X = np.random.RandomState(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="gate_max_iter"):
        MixtureOfExpertsRegressor(gate_max_iter=0).fit(X, X[:, 0])


def test_convergence_is_confirmed_by_an_exact_gate_step(monkeypatch):
    # EM with partial gate steps declares convergence only after an
    # iteration whose gate step was exact (a short partial step can make a
    # small change without being at a fixed point).
    from skmoe import SoftmaxGate, _gating

    calls = []
    original = _gating.SoftmaxGate.fit_soft

    def spy(self, *args, max_iter=None, **kwargs):
        calls.append(max_iter)
        return original(self, *args, max_iter=max_iter, **kwargs)

    monkeypatch.setattr(_gating.SoftmaxGate, "fit_soft", spy)
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, size=(600, 2))
    y = np.where(X[:, 0] > 0, 2 * X[:, 1], -X[:, 1] + 1) + 0.1 * rng.normal(size=600)
    moe = MixtureOfExpertsRegressor(
        n_experts=2, gate=SoftmaxGate(alpha=0.1), random_state=0, max_iter=500,
        init="kmeans",  # one run (init="auto" runs a pool of them)
    ).fit(X, y)
    assert moe.converged_
    assert len(calls) == moe.n_iter_
    assert calls[-1] is None  # the last gate step was exact
    assert calls.count("auto") >= moe.n_iter_ - 3  # the others were partial
