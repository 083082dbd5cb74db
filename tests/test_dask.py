"""fit / predict on dask collections (skmoe/_dask.py), on a small LocalCluster."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def _data(n=20000, d=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    piece = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0.5)
    coef = rng.normal(size=(4, d)) * 2
    y = np.einsum("ij,ij->i", X, coef[piece]) + piece + 0.3 * rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def _quiet(fit, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args)


@pytest.mark.parametrize("expert, n, max_iter", [(None, 20000, 30), (Ridge(alpha=1.0), 6000, 8)])
def test_dask_fit_equals_in_memory_fit(client, expert, n, max_iter):
    X, y = _data(n)
    params = dict(n_experts=4, random_state=0, max_iter=max_iter)
    if expert is not None:
        params["experts"] = expert
    # On a dask collection the default init="auto" is the k-means start.
    ref = _quiet(MixtureOfExpertsRegressor(**params, init="kmeans").fit, X, y)
    Xd = da.from_array(X, chunks=(n // 4, 5))
    yd = da.from_array(y, chunks=n // 4)
    moe = _quiet(MixtureOfExpertsRegressor(**params).fit, Xd, yd)
    assert moe.n_iter_ == ref.n_iter_
    assert abs(moe.log_likelihood_ - ref.log_likelihood_) <= 1e-6
    for a, b in zip(moe.experts_, ref.experts_):
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-5, atol=1e-6)
    # The fitted model is an ordinary in-memory one; predict on dask is lazy.
    np.testing.assert_allclose(moe.predict(X), ref.predict(X), rtol=1e-5, atol=1e-5)
    lazy = moe.predict(Xd)
    assert isinstance(lazy, da.Array)
    assert lazy.numblocks == (4,)
    np.testing.assert_allclose(lazy.compute(), moe.predict(X), rtol=1e-12)


def test_dask_dataframe_and_sample_weight(client):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    X, y = _data(n=6000)
    w = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    ref = _quiet(
        MixtureOfExpertsRegressor(n_experts=4, random_state=0, max_iter=8, init="kmeans").fit,
        X, y, w,
    )
    frame = dd.from_pandas(pd.DataFrame(X, columns=list("abcde")), npartitions=2)
    yd = dd.from_pandas(pd.Series(y), npartitions=2)
    wd = dd.from_pandas(pd.Series(w), npartitions=2)
    moe = _quiet(MixtureOfExpertsRegressor(n_experts=4, random_state=0, max_iter=8).fit,
                 frame, yd, wd)
    assert abs(moe.log_likelihood_ - ref.log_likelihood_) <= 1e-6


def test_dask_unsupported_experts_name_them(client):
    X, y = _data(n=2000)
    Xd = da.from_array(X, chunks=(500, 5))
    yd = da.from_array(y, chunks=500)
    moe = MixtureOfExpertsRegressor(experts=DecisionTreeRegressor(), n_experts=2)
    with pytest.raises(ValueError, match=r"DecisionTreeRegressor.*partial_fit"):
        moe.fit(Xd, yd)
    with pytest.raises(ValueError, match="top_k"):
        MixtureOfExpertsRegressor(n_experts=3, top_k=1).fit(Xd, yd)
