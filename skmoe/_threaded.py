"""Multi-threaded drivers of the range kernels in ``_kernels.py``.

Each function here has the signature and the result of the serial kernel of
the same name in ``_kernels.py`` (up to a few ULPs: the range kernels use a
vectorisable ``exp``).  The rows are cut into at most
``numba.get_num_threads()`` contiguous ranges (whole blocks of
``_kernels._TB`` rows, and at least ``_MIN_ROWS`` rows each); the compiled
range kernels release the GIL, so the ranges run on a small thread pool.
Every row is computed the same way whatever the cut, and reductions are added
per fixed block in order, so the results are bit-identical for any number of
threads (``NUMBA_NUM_THREADS`` or :func:`numba.set_num_threads` choose it).
"""

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from . import _kernels

_TB = _kernels._TB
# Below this many rows per thread, a thread costs more than it saves.
_MIN_ROWS = 32768

_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _get_pool():
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child needs its own
            _pool = ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="skmoe"
            )
            _pool_pid = os.getpid()
        return _pool


_controller = None
_limits = threading.local()


@contextlib.contextmanager
def _limited(user_api):
    """Limit ``user_api`` (None: all) to one thread; cheap when nested."""
    global _controller
    key = user_api or "all"
    depth = getattr(_limits, key, 0)
    if depth or getattr(_limits, "all", 0):
        # Already limited by an enclosing block: entering threadpoolctl
        # again costs ~0.5 ms, which small fits pay hundreds of times.
        setattr(_limits, key, depth + 1)
        try:
            yield
        finally:
            setattr(_limits, key, depth)
        return
    if _controller is None:
        _controller = ThreadpoolController()
    setattr(_limits, key, 1)
    try:
        with _controller.limit(limits=1, user_api=user_api):
            yield
    finally:
        setattr(_limits, key, 0)


def single_threaded_blas():
    """Context manager: BLAS on one thread inside the block.

    The gate's optimiser makes hundreds of skinny products (``Z @ W``,
    ``Z.T @ G``) per fit. A multi-threaded BLAS wakes its threads for each
    one, and on a busy machine (more runnable threads than cores) waiting
    for them costs far more than the product: a 100,000-row mixture fit
    measured 16x slower with 2 BLAS threads than with one on a loaded
    2-core machine. The row-wise kernels have their own threads.
    """
    return _limited("blas")


def single_threaded():
    """Context manager: BLAS and OpenMP on one thread inside the block.

    For the initialisation (k-means on the data): scikit-learn's Lloyd
    iterations are OpenMP loops, and on a busy machine their threads' waits
    cost far more than they save on the sizes skmoe gives them (1 s instead
    of a few ms for 1,000 rows, measured on a loaded 2-core machine).
    """
    return _limited(None)


def _ranges(n, chunk=_TB):
    """Contiguous row ranges made of whole chunks, one per thread.

    One thread per ``_MIN_ROWS`` rows at most: small arrays run in the
    calling thread.
    """
    n_chunks = -(-n // chunk)
    n_threads = min(numba.get_num_threads(), max(1, n // _MIN_ROWS), n_chunks)
    if n_threads <= 1:
        return [(0, n)]
    per = -(-n_chunks // n_threads)
    return [(c * chunk, min((c + per) * chunk, n)) for c in range(0, n_chunks, per)]


# Rows per unit of work that a thread takes at a time (whole chunks).
_UNIT_ROWS = 16384


def run_chunks(func, n, chunk, *args):
    """Run ``func(*args, start, stop)`` over the rows, on the threads of this module.

    The rows are cut into units of whole chunks (at least ``_UNIT_ROWS``
    rows each) that the threads (as many as :func:`_ranges` allows) take one
    at a time, as each finishes its last: a thread that the operating system
    leaves waiting (a busy machine) does not hold up the others with a fixed
    share of the rows. For the compiled range kernels (``chunk=_TB``) and
    for Python functions that release the GIL in BLAS; ``func`` must give
    per-chunk results, so that which thread takes a unit does not matter.
    """
    n_threads = len(_ranges(n, chunk))
    if n_threads <= 1:
        func(*args, 0, n)
        return
    step = chunk * max(1, _UNIT_ROWS // chunk)
    starts = iter(range(0, n, step))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                a = next(starts, None)
            if a is None:
                return
            func(*args, a, min(a + step, n))

    pool = _get_pool()
    futures = [pool.submit(work) for _ in range(n_threads - 1)]
    try:
        work()
    finally:
        for f in futures:
            f.result()


def _run(kernel, n, *args):
    run_chunks(kernel, n, _TB, *args)


def log_softmax_rows(a):
    """Row-wise log-softmax; see :func:`skmoe._kernels.log_softmax_rows`."""
    out = np.empty(a.shape)
    _run(_kernels.log_softmax_range, a.shape[0], a, out)
    return out


def e_step(log_gate, log_lik, out=None):
    """Responsibilities and log-normalisers; see :func:`skmoe._kernels.e_step`.

    ``out``: an array of the shape of ``log_gate`` (not one of the inputs)
    to write the responsibilities into.
    """
    n = log_gate.shape[0]
    resp = np.empty(log_gate.shape) if out is None else out
    log_norm = np.empty(n)
    _run(_kernels.e_step_range, n, log_gate, log_lik, resp, log_norm)
    return resp, log_norm


def soft_target_grad_inplace(logits, targets, sample_weight):
    """Soft-target loss; ``logits`` is overwritten with the gradient.

    See :func:`skmoe._kernels.soft_target_loss_grad`: returns the loss and
    the column sums of the gradient, and leaves the gradient with respect to
    the logits in ``logits``.
    """
    n, m = logits.shape
    n_blocks = -(-n // _TB)
    block_loss = np.empty(n_blocks)
    block_sum = np.empty((n_blocks, m))
    _run(
        _kernels.soft_target_range, n, logits, targets, sample_weight, block_loss, block_sum
    )
    # Fixed-order sums over the blocks (np.add.reduce's pairwise order depends
    # only on the shape).
    return float(np.add.reduce(block_loss)), np.add.reduce(block_sum, axis=0)


# Rows per chunk of the fused gate pass: the chunk of ``Z`` (and its logits)
# stays in cache between the two products. A multiple of ``_TB``.
_GATE_CHUNK = 4096


def _gate_chunks(Z, W, b, targets, sample_weight, block_loss, block_sum, ZtG, start, stop):
    """Logits, soft-target kernel and ``Z^T G`` of rows ``start:stop``, chunk by chunk."""
    for c0 in range(start, stop, _GATE_CHUNK):
        c1 = min(c0 + _GATE_CHUNK, stop)
        Zc = Z[c0:c1]
        G = Zc @ W
        G += b
        b0 = c0 // _TB
        b1 = -(-c1 // _TB)
        _kernels.soft_target_range(
            G, targets[c0:c1], sample_weight[c0:c1], block_loss[b0:b1], block_sum[b0:b1],
            0, c1 - c0,
        )
        ZtG[c0 // _GATE_CHUNK] = Zc.T @ G


def gate_loss_grad(Z, W, b, targets, sample_weight):
    """Soft-target loss of the logits ``Z @ W + b`` and its gradient, in one pass.

    For a dense ``Z``: returns the loss, the column sums of the gradient
    ``G`` with respect to the logits, and ``Z^T G``, reading ``Z`` once (each
    chunk of rows is used for both products while it is in cache) and
    without an ``n x n_classes`` array. Chunks run on the threads of this
    module; the per-chunk results are added in a fixed order, so the result
    does not depend on the number of threads.
    """
    n = Z.shape[0]
    n_blocks = -(-n // _TB)
    block_loss = np.empty(n_blocks)
    block_sum = np.empty((n_blocks, W.shape[1]))
    ZtG = np.empty((-(-n // _GATE_CHUNK), Z.shape[1], W.shape[1]))
    run_chunks(
        _gate_chunks, n, _GATE_CHUNK, Z, W, b, targets, sample_weight,
        block_loss, block_sum, ZtG,
    )
    return (
        float(np.add.reduce(block_loss)),
        np.add.reduce(block_sum, axis=0),
        np.add.reduce(ZtG, axis=0),
    )


def gaussian_log_lik(y, pred, variance):
    """``log N(y_i; pred[i, k], variance[k])`` for every row and expert, ``(n, K)``."""
    half_log = 0.5 * (np.log(2.0 * np.pi) + np.log(variance))
    inv_var = 0.5 / variance
    out = np.empty(pred.shape)
    _run(_kernels.gaussian_log_lik_range, pred.shape[0], y, pred, half_log, inv_var, out)
    return out


def weighted_sq_residuals(y, pred, weights):
    """Weighted residual sums of squares; see :func:`skmoe._kernels.weighted_sq_residuals`."""
    n, m = pred.shape
    block_sum = np.empty((-(-n // _TB), m))
    _run(_kernels.weighted_sq_residuals_range, n, y, pred, weights, block_sum)
    return np.add.reduce(block_sum, axis=0)


def mix_mean_var(gate, pred, variance):
    """Mean ``sum_k gate_ik pred_ik`` and variance ``sum_k gate_ik (variance_k +
    (pred_ik - mean_i)^2)`` (the law of total variance) of a Gaussian mixture,
    row by row."""
    n = pred.shape[0]
    mean = np.empty(n)
    var = np.empty(n)
    _run(_kernels.mix_mean_var_range, n, gate, pred, variance, mean, var)
    return mean, var


def mix_mean(gate, pred):
    """Gate-weighted mean ``sum_k gate_ik pred_ik`` of the expert predictions."""
    mean = np.empty(pred.shape[0])
    _run(_kernels.mix_mean_range, pred.shape[0], gate, pred, mean)
    return mean
