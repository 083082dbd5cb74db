"""Every compiled kernel against its plain-numpy reference in ``naive.py``."""

import numpy as np
import pytest
from numba import njit
from numpy.testing import assert_allclose

import naive
from skmoe import _kernels, _threaded


def _logits(rng, n=50, k=4, extreme=False):
    a = rng.normal(size=(n, k)) * 3
    if extreme:
        a[0] = [1e4, -1e4, 0.0, 1e4 - 1.0][:k]
        a[1] = -1e4
        a[2, 0] = 1e4
    return np.ascontiguousarray(a)


@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_log_softmax_and_softmax_match_reference(extreme, k):
    rng = np.random.RandomState(k)
    a = _logits(rng, k=k, extreme=extreme)
    assert_allclose(_kernels.log_softmax_rows(a), naive.log_softmax_rows(a), rtol=1e-10, atol=1e-10)
    p = _kernels.softmax_rows(a)
    assert_allclose(p, naive.softmax_rows(a), rtol=1e-10, atol=1e-12)
    assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    # The E-step normaliser with zero log-likelihoods is the row log-sum-exp.
    assert_allclose(_kernels.e_step(a, np.zeros_like(a))[1], naive.logsumexp(a, axis=1), rtol=1e-12)


def test_log_softmax_all_minus_inf_row_is_uniform_not_nan():
    a = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]])
    out = _kernels.log_softmax_rows(a)
    assert_allclose(out[0], np.log(1 / 3))
    assert out[1, 1] == -np.inf
    assert_allclose(out[1, [0, 2]], naive.log_softmax_rows(a[1:, [0, 2]])[0])


@pytest.mark.parametrize("extreme", [False, True])
def test_e_step_matches_reference(extreme):
    rng = np.random.RandomState(0)
    log_gate = naive.log_softmax_rows(_logits(rng, extreme=extreme))
    log_lik = rng.normal(size=log_gate.shape) * 50
    log_lik[3, 1] = -np.inf  # an expert with zero likelihood
    log_lik[4, :3] = -np.inf
    resp, log_norm = _kernels.e_step(np.ascontiguousarray(log_gate), log_lik)
    ref_resp, ref_norm = naive.e_step(log_gate, log_lik)
    assert_allclose(resp, ref_resp, rtol=1e-10, atol=1e-12)
    assert_allclose(log_norm, ref_norm, rtol=1e-10)
    assert resp[3, 1] == 0.0
    assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)


def test_e_step_row_without_likelihood_falls_back_to_gate():
    log_gate = np.log(np.array([[0.25, 0.75]]))
    resp, log_norm = _kernels.e_step(log_gate, np.full((1, 2), -np.inf))
    assert log_norm[0] == -np.inf
    assert_allclose(resp, [[0.25, 0.75]])


@pytest.mark.parametrize("extreme", [False, True])
def test_soft_target_loss_grad_matches_reference(extreme):
    rng = np.random.RandomState(1)
    logits = _logits(rng, extreme=extreme)
    targets = naive.softmax_rows(rng.normal(size=logits.shape))
    targets[5] = [0, 1, 0, 0]  # hard row: zero targets with -inf-ish logits
    sw = rng.uniform(0, 2, size=logits.shape[0])
    loss, grad = _kernels.soft_target_loss_grad(logits, targets, sw)
    ref_loss, ref_grad = naive.soft_target_loss_grad(logits, targets, sw)
    assert_allclose(loss, ref_loss, rtol=1e-10)
    assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_soft_target_grad_is_derivative_of_loss():
    rng = np.random.RandomState(2)
    logits = _logits(rng, n=7, k=3)
    targets = naive.softmax_rows(rng.normal(size=logits.shape))
    sw = rng.uniform(0.5, 2, size=7)
    from scipy.optimize import check_grad

    def f(v):
        return _kernels.soft_target_loss_grad(v.reshape(7, 3), targets, sw)[0]

    def g(v):
        return _kernels.soft_target_loss_grad(v.reshape(7, 3), targets, sw)[1].ravel()

    assert check_grad(f, g, logits.ravel()) < 1e-5


def test_gaussian_kernels_match_reference():
    rng = np.random.RandomState(3)
    y = rng.normal(size=40) * 1e3
    pred = rng.normal(size=(40, 3)) * 1e3
    var = np.array([1e-12, 1.0, 1e8])
    assert_allclose(_threaded.gaussian_log_lik(y, pred, var), naive.gaussian_log_lik(y, pred, var), rtol=1e-10)
    w = rng.uniform(size=(40, 3))
    assert_allclose(_kernels.weighted_sq_residuals(y, pred, w), naive.weighted_sq_residuals(y, pred, w), rtol=1e-10)


def test_mixture_combiners_match_reference():
    rng = np.random.RandomState(4)
    gate = naive.softmax_rows(_logits(rng, extreme=True))
    pred = rng.normal(size=gate.shape)
    var = rng.uniform(0.1, 2, size=gate.shape[1])
    mean, v = _threaded.mix_mean_var(gate, pred, var)
    ref_mean, ref_v = naive.mix_mean_var(gate, pred, var)
    assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-12)
    assert_allclose(v, ref_v, rtol=1e-10, atol=1e-12)
    assert np.all(v > 0)
    assert_allclose(_threaded.mix_mean(gate, pred), ref_mean, rtol=1e-10, atol=1e-12)
    proba = naive.softmax_rows(rng.normal(size=(4 * 50, 3))).reshape(4, 50, 3)
    assert_allclose(_kernels.mix_proba(gate, proba), naive.mix_proba(gate, proba), rtol=1e-10)


def test_kernels_are_cached_to_disk():
    # cache=True on every kernel: a new process loads them instead of compiling.
    for name in ["log_softmax_rows", "softmax_rows", "e_step", "soft_target_loss_grad",
                 "gaussian_log_lik_range", "weighted_sq_residuals", "mix_mean_var_range",
                 "mix_mean_range", "mix_proba", "log_softmax_range", "top_k_softmax",
                 "sparse_e_step", "balance_penalty_grad", "gate_hessian_sums"]:
        kernel = getattr(_kernels, name)
        assert kernel._cache is not None and type(kernel._cache).__name__ == "FunctionCache", name


@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_top_k_softmax_matches_reference(extreme, k):
    rng = np.random.RandomState(5)
    a = _logits(rng, extreme=extreme)
    a[7] = [0.5, 0.5, 0.5, 0.5]  # ties go to the lower index
    a[8, 1:] = -np.inf
    out = _kernels.top_k_softmax(a, k)
    assert_allclose(out, naive.top_k_softmax(a, k), rtol=1e-10, atol=1e-12)
    assert np.all(np.count_nonzero(out, axis=1) <= k)
    assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    assert_allclose(out[7], np.r_[np.full(k, 1 / k), np.zeros(4 - k)])
    # k = n_experts is the dense softmax.
    assert_allclose(_kernels.top_k_softmax(a, 4), naive.softmax_rows(a), rtol=1e-10, atol=1e-12)


def test_top_k_softmax_row_of_minus_inf_is_uniform_on_kept():
    a = np.array([[-np.inf, -np.inf, -np.inf]])
    assert_allclose(_kernels.top_k_softmax(a, 2), [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_sparse_e_step_matches_reference(extreme, k):
    rng = np.random.RandomState(6)
    log_gate = naive.log_softmax_rows(_logits(rng, extreme=extreme))
    log_lik = rng.normal(size=log_gate.shape) * 50
    log_lik[3, 1] = -np.inf
    log_lik[4, :3] = -np.inf
    log_lik[9] = -np.inf  # no expert explains y: falls back to the gate's top k
    resp, log_norm = _kernels.sparse_e_step(np.ascontiguousarray(log_gate), log_lik, k)
    ref_resp, ref_norm = naive.sparse_e_step(log_gate, log_lik, k)
    assert_allclose(resp, ref_resp, rtol=1e-10, atol=1e-12)
    assert_allclose(log_norm, ref_norm, rtol=1e-10)
    assert log_norm[9] == -np.inf
    assert np.all(np.count_nonzero(resp, axis=1) <= k)
    assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    # The sparse bound never exceeds the dense log-likelihood; equal at k = K.
    with np.errstate(invalid="ignore"):
        dense_resp, dense = naive.e_step(log_gate, log_lik)
    finite = np.isfinite(dense)
    assert np.all(log_norm[finite] <= dense[finite] + 1e-12)
    if k == 4:
        assert_allclose(log_norm, dense, rtol=1e-10)
        assert_allclose(resp[finite], dense_resp[finite], atol=1e-12)


@pytest.mark.parametrize("extreme", [False, True])
def test_balance_penalty_matches_reference_and_its_gradient(extreme):
    from scipy.optimize import check_grad

    rng = np.random.RandomState(7)
    logits = _logits(rng, n=30, extreme=extreme) * (10 if extreme else 1)
    sw = rng.uniform(0.2, 2, size=30)
    pen, grad = _kernels.balance_penalty_grad(logits, sw)
    assert_allclose(pen, naive.balance_penalty(logits, sw), rtol=1e-10)
    assert np.isfinite(pen) and pen >= 0
    assert_allclose(_kernels.balance_penalty_grad(np.zeros((5, 3)), np.ones(5))[0], 0.0, atol=1e-14)
    small = np.ascontiguousarray(logits[:8, :3] / (1e3 if extreme else 1))

    def f(v):
        return _kernels.balance_penalty_grad(v.reshape(8, 3), sw[:8])[0]

    def g(v):
        return _kernels.balance_penalty_grad(v.reshape(8, 3), sw[:8])[1].ravel()

    assert check_grad(f, g, small.ravel()) < 1e-6


# The inlined exp and log of the range kernels, compiled over arrays here
# (the package has no caller for such wrappers).
@njit(fastmath=_kernels._EXP_FASTMATH)
def _exp_nonpos(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = _kernels._exp_nonpos(x[i])
    return out


@njit(fastmath=_kernels._EXP_FASTMATH, error_model="numpy")
def _log_pos(x):
    out = np.empty_like(x)
    bits = x.view(np.int64)
    for i in range(x.shape[0]):
        out[i] = _kernels._log_bits(bits[i])
    return out


def test_exp_nonpos_matches_numpy():
    x = -np.concatenate([np.linspace(0, 745, 200_001), [0.0, 1e-300, 707.9, 708.1, 800.0, np.inf]])
    got = _exp_nonpos(x)
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
    got = _log_pos(x)
    ref = np.log(x)
    assert got[0 + 200_000 + 50_000] == 0.0
    ulps = np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), 1e-300))
    assert ulps.max() <= 2.0


@pytest.mark.parametrize("n", [7, 600])
def test_gate_hessian_sums_match_reference(n):
    rng = np.random.RandomState(n)
    d, K = 3, 4
    Z = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1]
    prob = naive.softmax_rows(rng.normal(size=(n, K)))
    weight = rng.uniform(0, 2, size=n)
    pk, pl = np.triu_indices(K)
    fa, fb = np.triu_indices(d + 1)
    assert_allclose(
        _kernels.gate_hessian_sums(Z, prob, weight, pk, pl, fa, fb),
        naive.gate_hessian_sums(Z, prob, weight, pk, pl, fa, fb),
        rtol=1e-10, atol=1e-12,
    )


def test_weighted_sq_residuals_skip_rows_without_weight():
    # A row with no weight for an expert adds nothing, even where its squared
    # residual overflows (0 * inf would be NaN); a weighted overflow stays inf.
    y = np.array([1.0, 2.0, 3.0])
    pred = np.array([[1e200, 2.5], [2.0, 1e200], [4.0, 3.0]])
    w = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 1.0]])
    for rss in (_kernels.weighted_sq_residuals(y, pred, w),
                _threaded.weighted_sq_residuals(y, pred, w)):
        assert_allclose(rss[0], 0.0 + 1.0 * 0.0 + 2.0 * 1.0)
        assert rss[1] == np.inf


def test_overflowing_residuals_raise_naming_the_expert():
    from skmoe._likelihood import GaussianLikelihood

    lik = GaussianLikelihood()
    lik.variance_floor_ = 1e-6
    stats = (np.array([2.0, np.inf]), np.array([1.0, 1.0]), np.zeros(2), np.full(2, 3.0))
    with pytest.raises(ValueError, match=r"Expert 1 .*overflow"):
        lik.m_step(stats, None)
