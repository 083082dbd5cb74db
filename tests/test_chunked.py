"""The chunked EM passes (skmoe/_chunked.py): same fit as the general path,
bit-identical for any number of threads, and the same on a memmap."""

import numba
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, Ridge

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate, _chunked, _threaded


def _data(n=4000, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) + 3.0
    piece = (X[:, 0] > 3.0).astype(int) + (X[:, 1] > 3.5)
    coef = rng.normal(size=(3, d)) * 2
    y = np.einsum("ij,ij->i", X, coef[piece]) + piece * 4.0 + 0.3 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize(
    "expert", [LinearRegression(), Ridge(alpha=0.5), LinearRegression(fit_intercept=False)]
)
def test_chunked_matches_general_path(monkeypatch, expert):
    X, y = _data()
    w = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    params = dict(n_experts=3, experts=expert, random_state=0, max_iter=40,
                  gate=SoftmaxGate(alpha=1e-3))
    calls = []
    real = _chunked.e_pass
    monkeypatch.setattr(_chunked, "e_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = MixtureOfExpertsRegressor(**params).fit(X, y, sample_weight=w)
    assert calls, "the chunked path did not run"
    monkeypatch.setattr(_chunked, "applicable", lambda *a: False)
    slow = MixtureOfExpertsRegressor(**params).fit(X, y, sample_weight=w)
    assert fast.n_iter_ == slow.n_iter_
    np.testing.assert_allclose(fast.log_likelihood_, slow.log_likelihood_, rtol=0, atol=1e-9)
    for a, b in zip(fast.experts_, slow.experts_):
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fast.noise_variance_, slow.noise_variance_, rtol=1e-7)
    np.testing.assert_allclose(fast.predict(X), slow.predict(X), rtol=1e-7, atol=1e-8)


def test_chunked_identical_for_any_thread_count(monkeypatch):
    X, y = _data(n=20000)
    # Small chunks and groups, so that several threads share the rows.
    monkeypatch.setattr(_chunked, "_CHUNK", 512)
    monkeypatch.setattr(_chunked, "_GROUP", 2048)
    monkeypatch.setattr(_threaded, "_MIN_ROWS", 2048)
    fits = []
    before = numba.get_num_threads()
    try:
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0, max_iter=15)
            fits.append(moe.fit(X, y))
    finally:
        numba.set_num_threads(before)
    for other in fits[1:]:
        assert other.log_likelihood_ == fits[0].log_likelihood_
        for a, b in zip(other.experts_, fits[0].experts_):
            np.testing.assert_array_equal(a.coef_, b.coef_)


def test_memmap_fit_equals_in_memory_fit(tmp_path):
    X, y = _data(n=6000)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0, max_iter=10)
    fitted = moe.fit(mm, y)
    ref = MixtureOfExpertsRegressor(n_experts=3, random_state=0, max_iter=10).fit(X, y)
    assert fitted.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-12)


def test_memmap_is_read_in_place(tmp_path, monkeypatch):
    # Validation does not copy a float64 C-contiguous memmap, and the gate
    # reads the same array (gate_features=None).
    from skmoe import _base

    X, y = _data(n=3000)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", shape=X.shape)
    mm[:] = X
    seen = []
    real = _base.run_em

    def spy(data, *args, **kwargs):
        seen.append((np.shares_memory(data.X, mm), data.Z is data.X))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(_base, "run_em", spy)
    # One EM run (init="auto" would copy a subsample for its pool).
    MixtureOfExpertsRegressor(n_experts=3, random_state=0, max_iter=3, init="kmeans").fit(mm, y)
    assert seen == [(True, True)]


def _gate_problem(n=3000, d=6, K=4, seed=0):
    rng = np.random.RandomState(seed)
    Z = rng.normal(size=(n, d)) * 3.0 + 1.0
    sw = rng.uniform(0.5, 2.0, size=n)
    R = rng.dirichlet(np.ones(K), size=n)
    return Z, sw, R


def test_gate_pass_matches_gate_objective(monkeypatch):
    # The chunked sums (several groups, every chunk in the Hessian) give the
    # objective, gradient and Hessian of the gate's own optimiser.
    from skmoe import _gating

    monkeypatch.setattr(_chunked, "_CHUNK", 256)
    monkeypatch.setattr(_chunked, "_GROUP", 1024)
    Z, sw, R = _gate_problem()
    d, K = Z.shape[1], R.shape[1]
    gate = SoftmaxGate(alpha=0.3).prepare(Z, sw)
    mean, scale = gate._standardization
    x = np.random.RandomState(1).normal(size=d * K + K) * 0.3
    args = (Z, R, sw, mean, scale, 0.3, sw.sum(), 0.0)
    f_ref, g_ref = _gating._gate_objective(x, *args)
    H_ref = _gating._gate_hessian(x, *args)
    totals = _chunked.gate_pass(Z, sw, R, *_chunked._raw(gate, x, K), mean, scale)
    f, g, H = _chunked._gate_objective(gate, x, totals, sw.sum())
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(H, H_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_newton_gate_m_step_reaches_the_gate_optimum(monkeypatch, alpha):
    # Newton on the chunked sums, with the Hessian of every 4th chunk only,
    # reaches the optimum of SoftmaxGate.fit (L-BFGS) on the same targets.
    from types import SimpleNamespace

    monkeypatch.setattr(_chunked, "_CHUNK", 256)
    monkeypatch.setattr(_chunked, "_GROUP", 1024)
    monkeypatch.setattr(_chunked, "_HESS_CHUNKS", 4)
    monkeypatch.setattr(_chunked, "NEWTON_MIN_ROWS", 0)
    Z, sw, R = _gate_problem(n=4000, d=9, K=6)  # (6 + 1) * (9 + 1) > 64
    ref = SoftmaxGate(alpha=alpha, tol=1e-10, max_iter=1000).fit(Z, R, sample_weight=sw)
    gate = SoftmaxGate(alpha=alpha, tol=1e-10).prepare(Z, sw)
    data = SimpleNamespace(Z=Z, sample_weight=sw, total=sw.sum())
    state = SimpleNamespace(gate=gate, experts=[None] * R.shape[1])
    assert _chunked.m_step_gate(data, state, R, None, None)
    assert gate.objective_ == pytest.approx(ref.objective_, rel=1e-10)
    np.testing.assert_allclose(gate.predict_proba(Z), ref.predict_proba(Z), atol=1e-6)
    # A generalised step ("auto") decreases the objective from a warm start.
    start = SoftmaxGate(alpha=alpha, max_iter=2).fit(Z, R, sample_weight=sw)
    before = start.objective_
    state.gate = start
    assert _chunked.m_step_gate(data, state, R, None, "auto")
    assert ref.objective_ - 1e-12 <= start.objective_ < before


def _wide_data(n=30000, d=9, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    piece = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-1.0, -0.4, 0.0, 0.4, 1.0])
    coef = rng.normal(size=(6, d)) * 2
    y = np.einsum("ij,ij->i", X, coef[piece]) + piece * 3.0 + 0.3 * rng.normal(size=n)
    return X, y


def test_newton_gate_em_matches_lbfgs_gate_em(monkeypatch):
    # A gate of (6 + 1) * (9 + 1) > 64: L-BFGS, or Newton on the chunked sums.
    X, y = _wide_data(n=20000)
    monkeypatch.setattr(_chunked, "_CHUNK", 1024)
    monkeypatch.setattr(_chunked, "_GROUP", 4096)
    params = dict(n_experts=6, experts=LinearRegression(), random_state=0,
                  gate=SoftmaxGate(alpha=1.0), init="kmeans", tol=1e-9, max_iter=300)
    calls = []
    real = _chunked.gate_pass
    monkeypatch.setattr(_chunked, "NEWTON_MIN_ROWS", 0)
    monkeypatch.setattr(_chunked, "gate_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
    newton = MixtureOfExpertsRegressor(**params).fit(X, y)
    assert calls, "the Newton gate step did not run"
    monkeypatch.setattr(_chunked, "NEWTON_MIN_ROWS", 10**9)
    lbfgs = MixtureOfExpertsRegressor(**params).fit(X, y)
    assert newton.converged_ and lbfgs.converged_

    def objective(moe):  # what EM maximises: the log-likelihood less the gate's penalty
        return moe.log_likelihood_ - moe.gate_.penalty() / len(y)

    assert objective(newton) == pytest.approx(objective(lbfgs), abs=1e-7)
    np.testing.assert_allclose(newton.predict(X), lbfgs.predict(X), atol=1e-2)


def test_newton_gate_identical_for_any_thread_count(monkeypatch):
    X, y = _wide_data(n=20000)
    monkeypatch.setattr(_chunked, "_CHUNK", 512)
    monkeypatch.setattr(_chunked, "_GROUP", 2048)
    monkeypatch.setattr(_chunked, "_HESS_CHUNKS", 8)
    monkeypatch.setattr(_chunked, "NEWTON_MIN_ROWS", 0)
    monkeypatch.setattr(_threaded, "_MIN_ROWS", 2048)
    fits = []
    before = numba.get_num_threads()
    try:
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            moe = MixtureOfExpertsRegressor(
                n_experts=6, random_state=0, max_iter=8, init="kmeans",
                gate=SoftmaxGate(alpha=0.0),
            )
            fits.append(moe.fit(X, y))
    finally:
        numba.set_num_threads(before)
    for other in fits[1:]:
        assert other.log_likelihood_ == fits[0].log_likelihood_
        np.testing.assert_array_equal(other.gate_.coef_, fits[0].gate_.coef_)


def test_newton_gate_without_hessian_weight_falls_back(monkeypatch):
    # Zero weight on every row of the Hessian's chunks: no Newton step (the
    # gate's own optimiser runs), and nothing is changed.
    from types import SimpleNamespace

    monkeypatch.setattr(_chunked, "_CHUNK", 256)
    monkeypatch.setattr(_chunked, "_GROUP", 1024)
    monkeypatch.setattr(_chunked, "_HESS_CHUNKS", 4)
    monkeypatch.setattr(_chunked, "NEWTON_MIN_ROWS", 0)
    Z, sw, R = _gate_problem(n=4096, d=9, K=6)
    stride = _chunked._hess_stride(len(sw))
    chunk = np.arange(len(sw)) // 256
    sw[chunk % stride == 0] = 0.0
    gate = SoftmaxGate(alpha=1.0, max_iter=2).fit(Z, R, sample_weight=sw)
    coef = gate.coef_.copy()
    data = SimpleNamespace(Z=Z, sample_weight=sw, total=sw.sum())
    state = SimpleNamespace(gate=gate, experts=[None] * R.shape[1])
    assert not _chunked.m_step_gate(data, state, R, None, "auto")
    np.testing.assert_array_equal(gate.coef_, coef)
