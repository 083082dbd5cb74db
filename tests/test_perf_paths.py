"""The fast paths of issue 5 against independent references.

* the range kernels driven by ``skmoe._threaded`` against the plain-numpy
  references in ``naive.py``, and bit-identical for 1 and 2 threads;
* the batched weighted least squares of ``skmoe._linear`` against
  scikit-learn's own ``fit`` with ``sample_weight``;
* ``n_jobs`` (experts and ``n_init`` restarts) and a dask.distributed cluster
  giving the same model as the serial fit.

No timing assertions: speed is measured by ``benchmarks/``.
"""

import copy

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.tree import DecisionTreeRegressor

import naive
from skmoe import MixtureOfExpertsRegressor, _kernels, _linear, _threaded


@pytest.fixture
def two_threads(monkeypatch):
    """Let the kernels split rows over 2 threads even on small arrays."""
    monkeypatch.setattr(_threaded, "_MIN_ROWS", 300)
    old = numba.get_num_threads()
    yield
    numba.set_num_threads(old)


def _data(rng, n=2000, m=5, extreme=True):
    a = rng.normal(size=(n, m)) * 3
    if extreme:
        a[0] = 1e4
        a[1, :2] = -1e4
        a[2, 0] = -np.inf
    return np.ascontiguousarray(a)


def test_exp_nonpos_matches_numpy():
    x = -np.concatenate([np.linspace(0, 745, 200_001), [0.0, 1e-300, 707.9, 708.1, 800.0, np.inf]])
    got = _kernels.exp_nonpos(x)
    ref = np.exp(x)
    normal = ref > 1e-307
    assert_allclose(got[normal], ref[normal], rtol=5e-16 * 4, atol=0)
    assert np.all(np.abs(got[~normal]) <= 1e-307)
    assert got[-1] == 0.0 and got[0] == 1.0


def test_log_bits_within_two_ulps_of_numpy():
    rng = np.random.RandomState(0)
    x = np.concatenate([
        rng.uniform(1.0, 64.0, size=200_000),  # the kernels' range: sums in [1, K]
        10.0 ** rng.uniform(-300, 300, size=50_000),
        [1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 3), 2.2250738585072014e-308,
         1.7976931348623157e308, np.nextafter(1.0, 2), np.nextafter(1.0, 0)],
    ])
    got = _kernels.log_pos(x)
    ref = np.log(x)
    assert got[0 + 200_000 + 50_000] == 0.0
    ulps = np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), 1e-300))
    assert ulps.max() <= 2.0


@pytest.mark.parametrize("m", [1, 2, 5, 8])
def test_threaded_kernels_match_reference(m, two_threads):
    rng = np.random.RandomState(m)
    n = 2000 + 37  # not a multiple of the block size
    a = _data(rng, n, m, extreme=m > 1)
    a[2, 0] = -np.inf if m > 1 else a[2, 0]
    a[3] = -np.inf  # an all -inf row
    assert_allclose(_threaded.log_softmax_rows(a), _kernels.log_softmax_rows(a), rtol=1e-13, atol=1e-13)

    log_gate = naive.log_softmax_rows(_data(rng, n, m, extreme=False))
    log_lik = rng.normal(size=(n, m)) * 50
    log_lik[5, 0] = -np.inf
    log_lik[6] = -np.inf  # no expert explains row 6: falls back to the gate
    resp, log_norm = _threaded.e_step(log_gate, log_lik)
    with np.errstate(invalid="ignore"):
        ref_resp, ref_norm = naive.e_step(log_gate, log_lik)
    ok = np.isfinite(ref_norm)
    assert_allclose(resp[ok], ref_resp[ok], rtol=1e-12, atol=1e-14)
    assert_allclose(log_norm[ok], ref_norm[ok], rtol=1e-13)
    assert log_norm[6] == -np.inf
    assert_allclose(resp[6], np.exp(log_gate[6]))

    logits = _data(rng, n, m, extreme=False)
    targets = naive.softmax_rows(rng.normal(size=(n, m)))
    targets[7] = 0.0
    targets[7, 0] = 1.0
    sw = rng.uniform(0, 2, size=n)
    ref_loss, ref_grad = naive.soft_target_loss_grad(logits, targets, sw)
    G = logits.copy()
    loss, col_sum = _threaded.soft_target_grad_inplace(G, targets, sw)
    assert_allclose(loss, ref_loss, rtol=1e-12)
    assert_allclose(G, ref_grad, rtol=1e-11, atol=1e-13)
    assert_allclose(col_sum, ref_grad.sum(axis=0), rtol=1e-10, atol=1e-10)

    y = rng.normal(size=n) * 10
    pred = rng.normal(size=(n, m)) * 10
    var = rng.uniform(1e-3, 10, size=m)
    assert_allclose(_threaded.gaussian_log_lik(y, pred, var), naive.gaussian_log_lik(y, pred, var), rtol=1e-12)
    w = rng.uniform(size=(n, m))
    assert_allclose(_threaded.weighted_sq_residuals(y, pred, w), naive.weighted_sq_residuals(y, pred, w), rtol=1e-12)
    gate = naive.softmax_rows(rng.normal(size=(n, m)))
    mean, v = _threaded.mix_mean_var(gate, pred, var)
    ref_mean, ref_v = naive.mix_mean_var(gate, pred, var)
    assert_allclose(mean, ref_mean, rtol=1e-11, atol=1e-11)
    assert_allclose(v, ref_v, rtol=1e-9, atol=1e-9)
    assert_allclose(_threaded.mix_mean(gate, pred), ref_mean, rtol=1e-11, atol=1e-11)


def test_threaded_kernels_do_not_depend_on_thread_count(two_threads):
    rng = np.random.RandomState(0)
    n, m = 5000 + 11, 6
    a, b = rng.normal(size=(n, m)), rng.normal(size=(n, m)) * 20
    t = naive.softmax_rows(rng.normal(size=(n, m)))
    sw, y = rng.uniform(size=n), rng.normal(size=n)
    var = rng.uniform(0.5, 2, size=m)

    def run():
        G = a.copy()
        return (
            _threaded.log_softmax_rows(a),
            *_threaded.e_step(a, b),
            *_threaded.soft_target_grad_inplace(G, t, sw),
            G,
            _threaded.gaussian_log_lik(y, b, var),
            _threaded.weighted_sq_residuals(y, b, t),
            *_threaded.mix_mean_var(t, b, var),
        )

    numba.set_num_threads(1)
    assert len(_threaded._ranges(n)) == 1
    serial = run()
    numba.set_num_threads(2)
    assert len(_threaded._ranges(n)) == 2
    for s_, p_ in zip(serial, run()):
        assert_array_equal(s_, p_)


def _linear_problem(seed=0, n=3000):
    rng = np.random.RandomState(seed)
    # Columns on very different scales and far from zero.
    X = rng.normal(size=(n, 5)) * [1.0, 10.0, 100.0, 1e-3, 5.0] + [0.0, 1e3, 0.0, 5.0, -7.0]
    y = X @ rng.normal(size=5) + rng.normal(size=n)
    W = rng.dirichlet(np.ones(4), size=n)
    W[: n // 4, 0] = 0.0  # rows without weight for an expert
    return X, y, W


@pytest.mark.parametrize(
    "expert",
    [
        LinearRegression(),
        LinearRegression(fit_intercept=False),
        Ridge(alpha=3.0),
        Ridge(alpha=1e-2, fit_intercept=False, solver="svd"),
        Ridge(alpha=10.0, solver="cholesky"),
    ],
    ids=repr,
)
def test_batched_wls_equals_sklearn_fit(expert):
    X, y, W = _linear_problem()
    mine = [copy.deepcopy(expert) for _ in range(W.shape[1])]
    assert all(_linear.batchable(e) for e in mine)
    ok = _linear.fit_linear_experts(mine, X, y, W)
    if expert.fit_intercept:
        assert ok == [True] * W.shape[1]
    # Without an intercept, columns far from zero make nearly collinear
    # normal equations: those systems may be handed back to sklearn.
    for k, est in enumerate(mine):
        if not ok[k]:
            assert not hasattr(est, "coef_")
            est.fit(X, y, sample_weight=W[:, k])
        ref = copy.deepcopy(expert).fit(X, y, sample_weight=W[:, k])
        fitted = sorted(a for a in vars(ref) if a.endswith("_") and not a.startswith("_"))
        assert fitted == sorted(a for a in vars(est) if a.endswith("_") and not a.startswith("_"))
        assert_allclose(est.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
        assert_allclose(est.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
        if hasattr(ref, "singular_"):
            assert est.rank_ == ref.rank_
            assert_allclose(est.singular_, ref.singular_, rtol=1e-6)
        if hasattr(ref, "solver_"):
            assert est.solver_ == ref.solver_ and est.n_iter_ == ref.n_iter_
        assert_allclose(est.predict(X), ref.predict(X), rtol=1e-8, atol=1e-8)
    out = np.empty((X.shape[0], len(mine)))
    assert all(_linear.predict_linear(mine, X, out))
    assert_allclose(out, np.column_stack([e.predict(X) for e in mine]), rtol=1e-12, atol=1e-10)


def test_batched_wls_hands_back_what_it_cannot_match():
    for est in [
        LinearRegression(positive=True),
        Ridge(positive=True, solver="lbfgs"),
        Ridge(solver="sag"),
        Ridge(solver="lsqr"),
        Ridge(alpha=0.0),
        Ridge(alpha=np.array([1.0])),
        Lasso(),
        type("MyLinear", (LinearRegression,), {})(),
    ]:
        assert not _linear.batchable(est), est
    # A rank-deficient system (duplicated column): left to sklearn's lstsq.
    X, y, W = _linear_problem()
    X = np.column_stack([X, X[:, 0]])
    est = [LinearRegression()]
    assert _linear.fit_linear_experts(est, X, y, W[:, :1]) == [False]
    assert not hasattr(est[0], "coef_")


def test_mixture_with_batched_experts_equals_normal_path(monkeypatch, piecewise):
    X, y = piecewise
    fast = MixtureOfExpertsRegressor(Ridge(alpha=1e-3), n_experts=3, random_state=0).fit(X, y)
    monkeypatch.setattr(_linear, "batchable", lambda expert: False)
    slow = MixtureOfExpertsRegressor(Ridge(alpha=1e-3), n_experts=3, random_state=0).fit(X, y)
    assert fast.n_iter_ == slow.n_iter_
    assert_allclose(fast.log_likelihood_, slow.log_likelihood_, rtol=1e-9)
    for a, b in zip(fast.experts_, slow.experts_):
        assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)


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


def test_gate_hessian_matches_finite_differences_and_newton_equals_lbfgs(monkeypatch):
    from scipy.optimize import approx_fprime

    from skmoe import SoftmaxGate
    from skmoe import _gating

    rng = np.random.RandomState(0)
    n, d, K = 3000, 3, 4
    Z = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1] + [0.0, 5.0, 1.0]
    R = rng.dirichlet(np.ones(K), size=n)
    sw = rng.uniform(0.5, 2, size=n)
    mean, scale = _gating._weighted_standardization(Z, sw)
    args = (Z, R, sw, mean, scale, 0.7, sw.sum())
    x = rng.normal(size=(d + 1) * K) * 0.3
    H = _gating._gate_hessian(x, *args)
    H_fd = np.array([
        approx_fprime(x, lambda v: _gating._gate_objective(v, *args)[1][i], 1e-6)
        for i in range(x.size)
    ])
    assert_allclose(H, H_fd, atol=1e-6)
    assert _gating._newton_pays(d, K)
    newton = SoftmaxGate(alpha=0.7, tol=1e-9).fit(Z, R, sample_weight=sw)
    monkeypatch.setattr(_gating, "_newton_pays", lambda *a: False)
    lbfgs = SoftmaxGate(alpha=0.7, tol=1e-9).fit(Z, R, sample_weight=sw)
    assert newton.n_iter_ < lbfgs.n_iter_
    assert_allclose(newton.objective_, lbfgs.objective_, rtol=1e-12)
    assert_allclose(newton.coef_, lbfgs.coef_, rtol=1e-5, atol=1e-6)


def test_gate_hessian_and_fused_objective_sparse_equal_dense(two_threads):
    import scipy.sparse as sp

    from skmoe import _gating

    rng = np.random.RandomState(1)
    n, d, K = 5000, 4, 3
    Z = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 5.0, 1.0, -2.0]
    Z[rng.uniform(size=Z.shape) < 0.3] = 0.0
    R = rng.dirichlet(np.ones(K), size=n)
    sw = rng.uniform(0.5, 2, size=n)
    mean, scale = _gating._weighted_standardization(Z, sw)
    x = rng.normal(size=(d + 1) * K) * 0.3
    dense = (Z, R, sw, mean, scale, 0.3, sw.sum())
    sparse = (sp.csr_matrix(Z),) + dense[1:]
    # The dense objective takes the fused chunked pass, the sparse one the
    # plain products: two independent computations of the same numbers.
    f_d, g_d = _gating._gate_objective(x, *dense)
    f_s, g_s = _gating._gate_objective(x, *sparse)
    assert_allclose(f_d, f_s, rtol=1e-12)
    assert_allclose(g_d, g_s, rtol=1e-10, atol=1e-14)
    W = x[: d * K].reshape(d, K)
    b = x[d * K :]
    assert_allclose(f_d, naive.gate_objective(W, b, Z, R, sw, 0.3), rtol=1e-10)
    assert_allclose(
        _gating._gate_hessian(x, *dense), _gating._gate_hessian(x, *sparse), rtol=1e-10,
        atol=1e-14,
    )
    # Bit-identical whatever the number of threads.
    numba.set_num_threads(1)
    f_1, g_1 = _gating._gate_objective(x, *dense)
    assert f_1 == f_d and np.array_equal(g_1, g_d)


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
        n_experts=2, gate=SoftmaxGate(alpha=0.1), random_state=0, max_iter=500
    ).fit(X, y)
    assert moe.converged_
    assert len(calls) == moe.n_iter_
    assert calls[-1] is None  # the last gate step was exact
    assert calls.count("auto") >= moe.n_iter_ - 3  # the others were partial
