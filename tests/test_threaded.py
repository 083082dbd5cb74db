"""The range kernels driven by ``skmoe._threaded`` against the plain-numpy
references in ``naive.py``, and bit-identical for 1 and 2 threads."""

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import naive
from skmoe import _kernels, _threaded


def _data(rng, n=2000, m=5, extreme=True):
    a = rng.normal(size=(n, m)) * 3
    if extreme:
        a[0] = 1e4
        a[1, :2] = -1e4
        a[2, 0] = -np.inf
    return np.ascontiguousarray(a)


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
