"""Shared fixtures: small synthetic problems with a known mixture structure."""

import os

# scikit-learn's array API dispatch (tests/test_array_api.py) needs scipy's
# own array API support, switched on before scipy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numba  # noqa: E402
import numpy as np
import pytest

from skmoe import _threaded


def make_piecewise(n=600, seed=0, noise=0.3):
    """Three linear pieces on x in [-3, 3] (breaks at -1 and 1), plus a nuisance column."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-3, 3, size=n)
    X = np.column_stack([x, rng.normal(size=n)])
    y = np.select([x < -1, x < 1], [-2 * x - 4, 3 * x + 1], -1.5 * x + 8)
    return X, y + noise * rng.randn(n)


@pytest.fixture
def piecewise():
    return make_piecewise()


@pytest.fixture
def three_class():
    """Three classes whose decision rule changes with a linear gate on x0."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 2))
    region = X[:, 0] > 0
    y = np.where(region, (X[:, 1] > 0).astype(int), 2 * (X[:, 1] > 0.5))
    return X, y


@pytest.fixture
def two_threads(monkeypatch):
    """Let the kernels split rows over 2 threads even on small arrays
    (skipped where numba has one thread: ``NUMBA_NUM_THREADS=1``)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs on one thread here (NUMBA_NUM_THREADS=1)")
    monkeypatch.setattr(_threaded, "_MIN_ROWS", 300)
    old = numba.get_num_threads()
    yield
    numba.set_num_threads(old)
