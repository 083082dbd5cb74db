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

The gate's own M-step still reads ``Z``: its fused gradient pass
(:func:`skmoe._threaded.gate_loss_grad`) under L-BFGS, or, for large gates on
at least ``NEWTON_MIN_ROWS`` rows, :func:`m_step_gate`: Newton steps whose
first gradient and Hessian :func:`e_pass` sums (:class:`GateSums`) and whose
trial points cost one :func:`gate_pass` each.

Chunks of ``_CHUNK`` rows are grouped into fixed groups of ``_GROUP`` rows;
each group is summed in order by one thread, and the groups' sums are added
in a fixed order: the results do not depend on the number of threads
(:func:`numba.set_num_threads`).
"""

import numpy as np
import scipy.sparse as sp

from . import _gating, _kernels, _linear, _routing, _threaded
from ._experts import EMPTY_EXPERT_SHARE, fit_expert
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
    if type(state.gate) is not _gating.SoftmaxGate or getattr(state.gate, "_sgd", None) is not None:
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
    """The packed weighted moments of every expert, and the shift they are about.

    ``gate``: the totals of a :class:`GateSums` at the current gate for the
    same responsibilities (None: not computed), for :func:`m_step_gate`.
    """

    def __init__(self, packed, shift, log_lik_sum=None, gate=None):
        self.packed = packed
        self.shift = shift
        self.log_lik_sum = log_lik_sum
        self.gate = gate


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
              out, ll_out, gate, start, stop):
    d = X.shape[1]
    m = d + 2
    K = coef.shape[1]
    AT = np.empty((m, _CHUNK))
    P = np.empty((m * (m + 1) // 2, _CHUNK))
    lik = np.empty((_CHUNK, K))
    log_norm = np.empty(_CHUNK)
    scratch = None if gate is None else gate.scratch()
    for g0 in range(start, stop, _GROUP):
        acc = out[g0 // _GROUP]
        acc[...] = 0.0
        ll = 0.0
        if gate is not None:
            gate.zero(g0 // _GROUP)
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
            if gate is not None:
                # The gate's M-step objective at the current gate (its
                # log-probabilities: ``logits``) for the new targets ``R``.
                gate.add_chunk(g0 // _GROUP, c0, Z[c0:c1], w, logits[:r], R, scratch)
        ll_out[g0 // _GROUP] = ll


#: From this many rows, a large gate's M-step is Newton's method on the
#: chunked sums (:func:`m_step_gate`); fewer rows keep the gate's own optimiser.
NEWTON_MIN_ROWS = 65536
#: The gate's Hessian is summed over every ``s``-th chunk of rows, with ``s``
#: chosen to keep at least this many chunks (all of them on fewer rows).
_HESS_CHUNKS = 16
#: Newton steps of a generalised M-step (``gate_max_iter="auto"``).
_AUTO_STEPS = 5


def _hess_stride(n):
    return max(1, -(-n // _CHUNK) // _HESS_CHUNKS)


class GateSums:
    """Per-group sums of the gate's soft-target cross-entropy over the rows.

    For the gate whose log-probabilities ``log p`` the passes hand to
    :meth:`add_chunk` and the targets ``R``: the loss ``sum_i w_i sum_k -R_ik
    log p_ik``, the column sums of ``G = w (p - R)`` and ``Z^T G`` (the
    gradient), and, on every ``stride``-th chunk (none for a ``stride`` of 0),
    the packed pairs of the Hessian of the cross-entropy, ``sum_i w_i (p_ik
    delta_kl - p_ik p_il) u_ia u_ib`` of the standardised inputs ``u_i =
    [(z_i - mean) / scale, 1]``, with the weight of those rows. Each group of
    ``_GROUP`` rows has its own row of sums (filled by one thread, in order).
    """

    def __init__(self, n, n_features, n_outputs, mean, scale, stride):
        n_groups = -(-n // _GROUP)
        d, K = n_features, n_outputs
        self.mean, self.scale, self.stride = mean, scale, stride
        self.loss = np.empty(n_groups)
        self.g = np.empty((n_groups, K))
        self.ZtG = np.empty((n_groups, d, K))
        self.pk, self.pl = np.triu_indices(K)
        self.diag = (self.pk == self.pl).astype(np.float64)
        if stride:
            self.H = np.empty((n_groups, (d + 1) * (d + 2) // 2, self.pk.size))
            self.wh = np.empty(n_groups)

    def scratch(self):
        d1 = len(self.mean) + 1
        n_blocks = -(-_CHUNK // _kernels._TB)
        return (
            np.empty((d1, _CHUNK)), np.empty((d1 * (d1 + 1) // 2, _CHUNK)),
            np.empty(n_blocks), np.empty((n_blocks, self.g.shape[1])),
        )

    def zero(self, j):
        self.loss[j] = 0.0
        self.g[j] = 0.0
        self.ZtG[j] = 0.0
        if self.stride:
            self.H[j] = 0.0
            self.wh[j] = 0.0

    def add_chunk(self, j, c0, Zc, w, log_p, R, scratch):
        """Add the rows ``Zc`` (starting at row ``c0``) to group ``j``'s sums;
        ``log_p`` is overwritten (with the gradient ``G``)."""
        UT, P, block_loss, block_sum = scratch
        r = Zc.shape[0]
        if self.stride and (c0 // _CHUNK) % self.stride == 0:
            p = np.exp(log_p)
            U = UT[:, :r]
            np.subtract(Zc.T, self.mean[:, None], out=U[:-1])
            U[:-1] /= self.scale[:, None]
            U[-1] = 1.0
            C = p[:, self.pk] * (self.diag - p[:, self.pl])
            C *= w[:, None]
            _moments(U, C, P, self.H[j])
            self.wh[j] += w.sum()
        # The soft-target kernel of the gate's own optimiser (the
        # log-probabilities are logits whose log-sum-exp is 0).
        n_blocks = -(-r // _kernels._TB)
        _kernels.soft_target_range(log_p, R, w, block_loss, block_sum, 0, r)
        self.loss[j] += np.add.reduce(block_loss[:n_blocks])
        self.g[j] += np.add.reduce(block_sum[:n_blocks], axis=0)
        self.ZtG[j] += Zc.T @ log_p

    def totals(self):
        """``(loss, g_sum, ZtG, hessian_pairs, hessian_weight)`` over the groups
        (fixed-order sums; the last two None without a Hessian)."""
        add = np.add.reduce
        H = add(self.H, axis=0) if self.stride else None
        wh = float(add(self.wh)) if self.stride else None
        return float(add(self.loss)), add(self.g, axis=0), add(self.ZtG, axis=0), H, wh


def _gate_groups(Z, sw, R, W, b, sums, start, stop):
    scratch = sums.scratch()
    for g0 in range(start, stop, _GROUP):
        j = g0 // _GROUP
        sums.zero(j)
        for c0 in range(g0, min(g0 + _GROUP, stop), _CHUNK):
            c1 = min(c0 + _CHUNK, stop)
            Zc = Z[c0:c1]
            logits = Zc @ W
            logits += b
            _kernels.log_softmax_range(logits, logits, 0, c1 - c0)
            sums.add_chunk(j, c0, Zc, sw[c0:c1], logits, R[c0:c1], scratch)


def gate_pass(Z, sw, R, W, b, mean, scale, hessian=True):
    """The totals of :class:`GateSums` for the gate of raw coefficients
    ``(W, b)`` (logits ``Z @ W + b``) and the targets ``R``, in one pass."""
    n, d = Z.shape
    stride = _hess_stride(n) if hessian else 0
    sums = GateSums(n, d, R.shape[1], mean, scale, stride)
    with _threaded.single_threaded_blas():
        _threaded.run_chunks(_gate_groups, n, _GROUP, Z, sw, R, W, b, sums)
    return sums.totals()


def _newton_gate(data, state):
    """Whether the gate's M-step runs on the chunked sums (:func:`m_step_gate`)."""
    gate = state.gate
    n, d = data.Z.shape
    return (
        n >= NEWTON_MIN_ROWS
        and float(gate.balance) == 0.0
        and not _gating._newton_pays(d, len(state.experts))
        and getattr(gate, "_standardization", None) is not None
    )


def _gate_objective(gate, x, totals, total):
    """Objective, gradient and (approximate) Hessian of the gate's M-step in
    the standardised parameters ``x``, from :func:`gate_pass`'s totals."""
    mean, scale = gate.get_standardization()
    d = len(mean)
    loss, g_sum, ZtG, pairs, wh = totals
    if pairs is not None and not wh > 0:
        pairs = None  # the Hessian's rows carry no weight: no Hessian
    K = g_sum.size
    alpha = float(gate.alpha)
    W_s = x[: d * K].reshape(d, K)
    f = loss + 0.5 * alpha * float(W_s.ravel() @ W_s.ravel())
    grad_W = (ZtG - np.outer(mean, g_sum)) / scale[:, None] + alpha * W_s
    g = np.concatenate([grad_W.ravel(), g_sum])
    if pairs is None:
        return f / total, g / total, None
    # (class, class, feature, feature) blocks, scaled from the Hessian's rows
    # to all of them, in the (feature, class) order of the parameters.
    B = _unpack(pairs, d + 1) * (total / wh)
    pk, pl = np.triu_indices(K)
    H = _gating.assemble_hessian(B, pk, pl, K, d, alpha)
    return f / total, g / total, H / total


def _raw(gate, x, K):
    mean, scale = gate.get_standardization()
    d = len(mean)
    W = x[: d * K].reshape(d, K) / scale[:, None]
    return np.ascontiguousarray(W), x[d * K :] - mean @ W


def m_step_gate(data, state, resp, stats, max_iter):
    """The gate's M-step by Newton's method on chunked sums; False where it
    does not apply or fails (nothing changed: the gate's own optimiser runs).

    For a large gate (more parameters than :func:`skmoe._gating._newton_pays`
    allows) on many rows: from the current gate, the gradient and a Hessian
    summed over a fixed subset of the chunks (at least ``_HESS_CHUNKS`` of
    them; exact gradient, approximate Hessian) give a Newton step, and a
    backtracking line search on the exact objective accepts it. The first
    sums come from the E-pass that computed ``resp`` (``stats.gate``); each
    trial point costs one pass over ``Z`` (with the Hessian when another step
    follows). ``max_iter`` as the gate's ``fit_soft``: ``"auto"`` is one
    step; None runs to the gate's ``tol``.
    """
    if not _newton_gate(data, state):
        return False
    gate = state.gate
    Z, sw, total = data.Z, data.sample_weight, data.total
    mean, scale = gate.get_standardization()
    K = resp.shape[1]
    exact = max_iter is None
    if exact:
        n_steps = gate.max_iter
    else:
        n_steps = _AUTO_STEPS if max_iter == "auto" else min(int(max_iter), gate.max_iter)
    x = _gating.start_params(gate, lambda: sw @ resp / total, K)
    warm = getattr(gate, "coef_", None) is not None and gate.coef_.shape[0] == K
    totals = stats.gate if warm and stats is not None else None
    if totals is None:
        totals = gate_pass(Z, sw, resp, *_raw(gate, x, K), mean, scale)
    f, g, H = _gate_objective(gate, x, totals, total)
    if H is None:
        return False
    it = 0
    while it < n_steps and np.max(np.abs(g)) > gate.tol:
        step = _gating.newton_direction(H, g)
        slope = float(g @ step)
        if not slope < 0.0:
            return False
        # A generalised M-step from the previous gate keeps its first
        # Hessian (a chord method); an exact one, or one from scratch, sums a
        # new one at every step.
        more = (exact or not warm) and it + 1 < n_steps

        def evaluate(t):
            trial = gate_pass(Z, sw, resp, *_raw(gate, x + t * step, K), mean, scale, more)
            return _gate_objective(gate, x + t * step, trial, total)

        found = _gating.backtrack(evaluate, f, slope)
        if found is None:
            return False
        t, (f_new, g_new, H_new) = found
        x = x + t * step
        it += 1
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        f, g = f_new, g_new
        H = H if H_new is None else H_new
        if decrease <= 1e-12:
            break
    gate.set_standardized_params(x, f, it)
    return True


def same_experts(state):
    """Whether the (linear, Gaussian) experts are one and the same model --
    equal coefficients, intercepts and noise variances -- so that every row
    has the same likelihood under each (the chunked passes' ``indistinct``)."""
    def params(k):
        e = state.experts[k]
        return np.concatenate([np.ravel(e.coef_), np.ravel(e.intercept_), [state.theta[k]]])

    first = params(0)
    scale = 1.0 + np.abs(first).max()
    return len(state.experts) > 1 and all(
        np.abs(params(k) - first).max() <= 1e-12 * scale
        for k in range(1, len(state.experts))
    )


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


def e_step_moments(X, Z, y, sw, arrays, shift, out=None, gate=None):
    """E-step of rows ``X`` into ``out``, with the moments of the new weights.

    ``gate``: a :class:`GateSums` that receives the gate's cross-entropy sums
    at the current gate for the new responsibilities (None: not computed).
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
            _e_groups, n, _GROUP, X, Z, y, sw, *arrays, shift, out, packed, ll, gate,
        )
    return out, np.add.reduce(packed, axis=0), float(np.add.reduce(ll))


def e_pass(data, state, out, gate_sums=True):
    """E-step of the current model into ``out``, with the next M-step's sums.

    Returns ``(resp, stats, log_lik)``: the responsibilities (``out``), the
    :class:`LinearStats` of them, and the mean log-likelihood. The gate's
    sums at the current gate are part of them with ``gate_sums`` (for the
    next M-step of this same gate).
    """
    shift = _shift(data)
    arrays = model_arrays(state.experts, state.gate, state.theta)
    gate = None
    if gate_sums and _newton_gate(data, state):  # the next gate M-step's first sums
        n, d = data.Z.shape
        gate = GateSums(n, d, len(state.experts), *state.gate.get_standardization(),
                        _hess_stride(n))
    out, packed, ll = e_step_moments(
        data.X, data.Z, data.y, data.sample_weight, arrays, shift, out, gate
    )
    stats = LinearStats(packed, shift, gate=None if gate is None else gate.totals())
    return out, stats, ll / data.total


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
