"""``n_jobs`` (experts and ``n_init`` restarts) and a dask.distributed
cluster give the same model as the serial fit."""

import pytest
from numpy.testing import assert_array_equal
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor


def _assert_same_model(a, b):
    assert a.n_iter_ == b.n_iter_
    assert_array_equal(a.log_likelihood_history_, b.log_likelihood_history_)
    assert_array_equal(a.gate_.coef_, b.gate_.coef_)
    assert_array_equal(a.noise_variance_, b.noise_variance_)


@pytest.mark.parametrize(
    "experts", [LinearRegression(), DecisionTreeRegressor(max_depth=3)], ids=repr
)
def test_n_jobs_and_parallel_restarts_give_the_serial_model(experts, piecewise):
    X, y = piecewise
    params = dict(n_experts=3, n_init=3, init="kmeans", random_state=0, max_iter=30)
    serial = MixtureOfExpertsRegressor(experts, n_jobs=1, **params).fit(X, y)
    parallel = MixtureOfExpertsRegressor(experts, n_jobs=2, **params).fit(X, y)
    _assert_same_model(serial, parallel)
    assert_array_equal(serial.predict(X), parallel.predict(X))


def test_fit_on_a_dask_distributed_cluster_gives_the_serial_model(piecewise):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X, y = piecewise
    params = dict(
        experts=DecisionTreeRegressor(max_depth=3),
        n_experts=2, random_state=0, max_iter=3,
    )
    serial = MixtureOfExpertsRegressor(n_jobs=1, **params).fit(X, y)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, distributed.Client(cluster):
        with parallel_config(backend="dask"):
            on_dask = MixtureOfExpertsRegressor(n_jobs=2, **params).fit(X, y)
    _assert_same_model(serial, on_dask)
    assert_array_equal(serial.predict(X), on_dask.predict(X))
