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
