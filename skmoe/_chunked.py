"""Chunked EM passes: linear Gaussian experts with a softmax gate.

For the common case -- plain LinearRegression / Ridge experts, the Gaussian
likelihood, a :class:`~skmoe.SoftmaxGate`, soft assignments, dense ``X`` --
one EM iteration reads ``X`` in row chunks and keeps nothing of size
``n x n_experts`` besides the responsibilities:

* :func:`e_pass` (one pass): per chunk, the gate's log-probabilities, the
  experts' predictions and log-likelihoods, the E-step (written into the
  responsibilities), the log-likelihood sum, and the sufficient statistics
  of the next M-step: for every expert ``k`` the weighted moments
  ``sum_i w_ik a_i a_i^T`` of ``a_i = [x_i - c_x, y_i - c_y, 1]`` (``c``: a
  fixed shift, the weighted mean of ``[X, y]``, so that the centred Gram
  matrices lose no digits);
* :func:`m_step`: the experts' weighted least squares and the Gaussian
  variances (``u^T S_k u`` is the weighted residual sum of squares of the
  new coefficients) from those sums alone, with no pass over ``X``.

The gate's own M-step still reads ``Z`` (its fused gradient pass,
:func:`skmoe._threaded.gate_loss_grad`).

Chunks of ``_CHUNK`` rows are grouped into fixed groups of ``_GROUP`` rows;
each group is summed in order by one thread, and the groups' sums are added
in a fixed order: the results do not depend on the number of threads
(:func:`numba.set_num_threads`).
"""

import numpy as np
import scipy.sparse as sp

from . import _kernels, _linear, _routing, _threaded
from ._experts import EMPTY_EXPERT_SHARE, fit_expert
from ._gating import SoftmaxGate
from ._likelihood import GaussianLikelihood

# Rows per chunk (a multiple of the kernels' block) and per fixed group.
_CHUNK = 2048
_GROUP = 16 * _CHUNK


def applicable(data, state, config):
    """Whether the chunked passes can run this EM iteration."""
    if config.assignment != "soft":
        return False
    if _routing.effective_k(config.top_k, len(state.experts)) is not None:
        return False  # sparse EM (a top_k of at least n_experts is the dense model)
    if type(data.likelihood) is not GaussianLikelihood or data.y.ndim != 1:
        return False
    if type(state.gate) is not SoftmaxGate or getattr(state.gate, "_sgd", None) is not None:
        return False
    if state.frozen.any() or len(state.experts) < 1:
        return False
    for X in (data.X, data.Z):
        if sp.issparse(X) or not isinstance(X, np.ndarray) or X.dtype != np.float64:
            return False
    return all(_linear.batchable(e) for e in state.experts)


def _pair_index(m):
    """Offsets of the rows ``a`` of the upper triangle in the packed pairs."""
    return np.concatenate([[0], np.cumsum(np.arange(m, 0, -1))])


def _unpack(packed, m):
    """``(K, m, m)`` symmetric matrices from the ``(m (m + 1) / 2, K)`` pairs."""
    K = packed.shape[1]
    S = np.empty((K, m, m))
    off = _pair_index(m)
    for a in range(m):
        block = packed[off[a] : off[a + 1]].T  # (K, m - a)
        S[:, a, a:] = block
        S[:, a:, a] = block
    return S


def _moments(AT, w, P, out):
    """``out += pairs(AT) @ w``: weighted moments of the columns of ``AT``."""
    m, r = AT.shape
    off = 0
    for a in range(m):
        np.multiply(AT[a], AT[a:], out=P[off : off + m - a, :r])
        off += m - a
    out += P[:, :r] @ w


def _shifted(X, y, shift, c0, c1, AT):
    d = X.shape[1]
    r = c1 - c0
    A = AT[:, :r]
    np.subtract(X[c0:c1].T, shift[:d, None], out=A[:d])
    np.subtract(y[c0:c1], shift[d], out=A[d])
    A[d + 1] = 1.0
    return A


def _stats_groups(X, y, sw, resp, shift, out, start, stop):
    d = X.shape[1]
    m = d + 2
    AT = np.empty((m, _CHUNK))
    P = np.empty((m * (m + 1) // 2, _CHUNK))
    for g0 in range(start, stop, _GROUP):
        acc = out[g0 // _GROUP]
        acc[...] = 0.0
        for c0 in range(g0, min(g0 + _GROUP, stop), _CHUNK):
            c1 = min(c0 + _CHUNK, stop)
            A = _shifted(X, y, shift, c0, c1, AT)
            _moments(A, resp[c0:c1] * sw[c0:c1, None], P, acc)


class LinearStats:
    """The packed weighted moments of every expert, and the shift they are about."""

    def __init__(self, packed, shift, log_lik_sum=None):
        self.packed = packed
        self.shift = shift
        self.log_lik_sum = log_lik_sum


def _shift(data):
    shift = getattr(data, "_chunked_shift", None)
    if shift is None:
        sw = data.sample_weight
        d = data.X.shape[1]
        shift = np.empty(d + 1)
        with _threaded.single_threaded_blas():
            shift[:d] = _colsum(data.X, sw) / data.total
        shift[d] = sw @ data.y / data.total
        data._chunked_shift = shift
    return shift


def _colsum(X, sw):
    """``sw @ X`` in chunks (a memmap is read, never copied whole)."""
    total = np.zeros(X.shape[1])
    for c0 in range(0, X.shape[0], _GROUP):
        total += sw[c0 : c0 + _GROUP] @ X[c0 : c0 + _GROUP]
    return total


def moments(X, y, sw, resp, shift):
    """Packed weighted moments of ``[X - c_x, y - c_y, 1]`` for ``resp`` (any rows)."""
    n, d = X.shape
    m = d + 2
    out = np.empty((-(-n // _GROUP), m * (m + 1) // 2, resp.shape[1]))
    with _threaded.single_threaded_blas():
        _threaded.run_chunks(_stats_groups, n, _GROUP, X, y, sw, resp, shift, out)
    return np.add.reduce(out, axis=0)


def stats_pass(data, resp):
    """The M-step's sums for the responsibilities ``resp`` (one pass over ``X``)."""
    shift = _shift(data)
    return LinearStats(moments(data.X, data.y, data.sample_weight, resp, shift), shift)


def _e_groups(X, Z, y, sw, Wg, bg, coef, icpt, half_log, inv_var, shift, resp,
              out, ll_out, start, stop):
    d = X.shape[1]
    m = d + 2
    K = coef.shape[1]
    AT = np.empty((m, _CHUNK))
    P = np.empty((m * (m + 1) // 2, _CHUNK))
    lik = np.empty((_CHUNK, K))
    log_norm = np.empty(_CHUNK)
    for g0 in range(start, stop, _GROUP):
        acc = out[g0 // _GROUP]
        acc[...] = 0.0
        ll = 0.0
        for c0 in range(g0, min(g0 + _GROUP, stop), _CHUNK):
            c1 = min(c0 + _CHUNK, stop)
            r = c1 - c0
            Xc = X[c0:c1]
            logits = (Xc if Z is X else Z[c0:c1]) @ Wg
            logits += bg
            _kernels.log_softmax_range(logits, logits, 0, r)
            pred = Xc @ coef
            pred += icpt
            _kernels.gaussian_log_lik_range(y[c0:c1], pred, half_log, inv_var, lik, 0, r)
            R = resp[c0:c1]
            _kernels.e_step_range(logits, lik[:r], R, log_norm, 0, r)
            w = sw[c0:c1]
            ll += float(w @ log_norm[:r])
            A = _shifted(X, y, shift, c0, c1, AT)
            _moments(A, R * w[:, None], P, acc)
        ll_out[g0 // _GROUP] = ll


def model_arrays(experts, gate, theta):
    """What the E-step reads of the model: gate and expert coefficients, variances."""
    Wg = np.ascontiguousarray(gate.coef_.T)
    bg = np.asarray(gate.intercept_, dtype=np.float64)
    coef = np.column_stack([np.asarray(e.coef_, dtype=np.float64) for e in experts])
    icpt = np.array([float(e.intercept_) for e in experts])
    var = np.asarray(theta, dtype=np.float64)
    half_log = 0.5 * (np.log(2.0 * np.pi) + np.log(var))
    inv_var = 0.5 / var
    return Wg, bg, coef, icpt, half_log, inv_var


def e_step_moments(X, Z, y, sw, arrays, shift, out=None):
    """E-step of rows ``X`` into ``out``, with the moments of the new weights.

    Returns ``(resp, packed_moments, weighted_log_lik_sum)``.
    """
    n, d = X.shape
    m = d + 2
    K = arrays[2].shape[1]
    if out is None or not out.flags.c_contiguous or out.shape != (n, K):
        out = np.empty((n, K))
    n_groups = -(-n // _GROUP)
    packed = np.empty((n_groups, m * (m + 1) // 2, K))
    ll = np.empty(n_groups)
    with _threaded.single_threaded_blas():
        _threaded.run_chunks(
            _e_groups, n, _GROUP, X, Z, y, sw, *arrays, shift, out, packed, ll,
        )
    return out, np.add.reduce(packed, axis=0), float(np.add.reduce(ll))


def e_pass(data, state, out):
    """E-step of the current model into ``out``, with the next M-step's sums.

    Returns ``(resp, stats, log_lik)``: the responsibilities (``out``), the
    :class:`LinearStats` of them, and the mean log-likelihood.
    """
    shift = _shift(data)
    arrays = model_arrays(state.experts, state.gate, state.theta)
    out, packed, ll = e_step_moments(
        data.X, data.Z, data.y, data.sample_weight, arrays, shift, out
    )
    return out, LinearStats(packed, shift), ll / data.total


def m_step_stats(experts, theta, stats, n_samples, total, likelihood):
    """Experts and variances from ``stats``, in place of the experts.

    Returns ``(ok, theta, not_fitted)``: ``ok`` False (nothing changed) when
    an expert is empty; ``not_fitted`` the experts whose systems were too
    ill-conditioned for the normal equations (fit them the normal way, then
    call :func:`variances`).
    """
    m = stats.packed.shape[0]
    m = int((np.sqrt(8 * m + 1) - 1) / 2)
    d = m - 2
    S = _unpack(stats.packed, m)
    wsum = S[:, d + 1, d + 1]
    if np.any(wsum <= EMPTY_EXPERT_SHARE * total):
        return False, theta, []
    shift = stats.shift
    K = len(experts)
    gram = np.empty((K, d + 1, d + 1))
    means = np.zeros((K, d + 1))
    for k, expert in enumerate(experts):
        S11 = S[k, : d + 1, : d + 1]
        sums = S[k, : d + 1, d + 1]
        if expert.fit_intercept:
            mt = sums / wsum[k]
            gram[k] = S11 - wsum[k] * np.outer(mt, mt)
            means[k] = mt + shift
        else:
            gram[k] = S11 + np.outer(shift, sums) + np.outer(sums, shift)
            gram[k] += wsum[k] * np.outer(shift, shift)
    fitted = _linear.solve_linear_experts(experts, gram, means)
    not_fitted = [k for k, ok in enumerate(fitted) if not ok]
    if not_fitted:  # the variances once those are fitted
        return True, None, not_fitted
    return True, variances(experts, theta, S, shift, n_samples, likelihood), not_fitted


def variances(experts, theta, S, shift, n_samples, likelihood):
    """Weighted residual sums of squares of the current coefficients, from the
    moments: ``r_i = a_i . u`` with ``u = [-coef, 1, c_y - c_x . coef - intercept]``."""
    K = len(experts)
    m = S.shape[1]
    d = m - 2
    rss = np.empty(K)
    for k, expert in enumerate(experts):
        coef = np.asarray(expert.coef_, dtype=np.float64)
        u = np.empty(m)
        u[:d] = -coef
        u[d] = 1.0
        u[d + 1] = shift[d] - shift[:d] @ coef - float(expert.intercept_)
        rss[k] = max(float(u @ S[k] @ u), 0.0)
    wsum = S[:, d + 1, d + 1]
    return likelihood.m_step((rss, wsum, np.zeros(K), np.full(K, float(n_samples))), theta)


def m_step(data, state, stats, resp, keep_empty):
    """Experts and variances from ``stats``; False (nothing changed) when an
    expert is empty, for the general M-step to handle."""
    ok, theta, not_fitted = m_step_stats(
        state.experts, state.theta, stats, data.X.shape[0], data.total, data.likelihood
    )
    if not ok:
        return False
    if not_fitted:  # ill-conditioned: the expert's own fit
        for k in not_fitted:
            state.experts[k] = fit_expert(
                state.experts[k], data.X, data.y, data.sample_weight * resp[:, k],
                data.likelihood.subset_rows,
            )
        m = data.X.shape[1] + 2
        theta = variances(
            state.experts, state.theta, _unpack(stats.packed, m), stats.shift,
            data.X.shape[0], data.likelihood,
        )
    state.theta = theta
    return True
