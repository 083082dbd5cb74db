"""Compiled hot loops of skmoe.

Every function here is a numba ``@njit(cache=True)`` kernel and nothing else:
no scikit-learn imports, no validation.  The contract of every kernel is
float64, C-contiguous 2-D arrays of shape ``(n_samples, n_experts)`` (or
``(n_samples,)`` vectors), checked by the Python callers in ``_gating.py`` and
``_base.py``.  Matrix products (the gate's logits ``Z @ W`` and its gradient
``Z.T @ G``) are *not* done here: they go to BLAS through numpy, and the
kernels do the per-row exp / log / normalise work between them.

The kernels are written row by row with a running maximum, so that extreme
logits (``+-1e4``) and rows where an expert has zero probability
(``-inf`` log-probability) give exact results instead of overflow or NaN.
Results agree with a plain numpy / scipy evaluation to a few ULPs
(``tests/naive.py`` holds the references).

The fastmath flags leave out ``nnan`` and ``ninf`` on purpose: ``-inf`` is a
legitimate value (a log-probability of zero) and must propagate exactly.
"""

import numpy as np
from numba import njit

# Allowed value-changing optimisations: no assumption that values are finite.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Without "reassoc": where the order of a subtraction carries the precision
# (``(a - amax) - logsum``), LLVM must not regroup it.
_NO_REASSOC = {"nsz", "arcp", "contract"}


@njit(cache=True, fastmath=FASTMATH)
def _row_logsumexp(a, i):
    """Log-sum-exp of row ``i`` of ``a``; ``-inf`` for a row of ``-inf``."""
    amax, logsum = _row_max_logsum(a, i)
    return amax + logsum


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _scale_row(a, i, factor):
    """Multiply row ``i`` of ``a`` by ``factor`` in place."""
    for k in range(a.shape[1]):
        a[i, k] *= factor


@njit(cache=True, fastmath=_NO_REASSOC)
def _row_max_logsum(a, i):
    """``(amax, log(sum_k exp(a[i, k] - amax)))`` of row ``i``.

    Kept apart (not added into a log-sum-exp) so that the log-softmax is
    ``(a - amax) - logsum``: at logits near 3e11 the spacing of doubles is
    6e-5, and ``a - (amax + logsum)`` rounds the sum, giving gate rows that
    sum to 0.99997. ``amax`` is ``-inf`` for a row of ``-inf``.
    """
    n_cols = a.shape[1]
    amax = -np.inf
    for k in range(n_cols):
        if a[i, k] > amax:
            amax = a[i, k]
    if amax == -np.inf:
        return amax, 0.0
    s = 0.0
    for k in range(n_cols):
        s += np.exp(a[i, k] - amax)
    return amax, np.log(s)


@njit(cache=True, fastmath=_NO_REASSOC)
def log_softmax_rows(a):
    """Row-wise log-softmax.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_cols), float64
        Logits. Finite values or ``-inf``; a row of ``-inf`` gives a uniform
        row (the limit that keeps downstream sums finite).

    Returns
    -------
    out : ndarray of shape (n_samples, n_cols)
        ``a[i, k] - logsumexp(a[i])``, computed as
        ``(a[i, k] - max(a[i])) - log(sum(exp(a[i] - max(a[i]))))`` so that
        large logits lose no digits.
    """
    n, m = a.shape
    out = np.empty((n, m))
    uniform = -np.log(m)
    for i in range(n):
        amax, logsum = _row_max_logsum(a, i)
        if amax == -np.inf:
            for k in range(m):
                out[i, k] = uniform
        else:
            for k in range(m):
                out[i, k] = (a[i, k] - amax) - logsum
    return out


@njit(cache=True, fastmath=_NO_REASSOC)
def softmax_rows(a):
    """Row-wise softmax.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_cols), float64
        Logits, as for :func:`log_softmax_rows`.

    Returns
    -------
    out : ndarray of shape (n_samples, n_cols)
        Non-negative rows that sum to one (``exp(a - max)`` divided by its
        row sum: within a few ULPs of one whatever the size of the logits).
    """
    n, m = a.shape
    out = np.empty((n, m))
    for i in range(n):
        amax = -np.inf
        for k in range(m):
            if a[i, k] > amax:
                amax = a[i, k]
        if amax == -np.inf:
            for k in range(m):
                out[i, k] = 1.0 / m
            continue
        s = 0.0
        for k in range(m):
            e = np.exp(a[i, k] - amax)
            out[i, k] = e
            s += e
        for k in range(m):
            out[i, k] /= s
    return out


@njit(cache=True, fastmath=FASTMATH)
def e_step(log_gate, log_lik):
    """Posterior responsibilities and per-sample mixture log-likelihood.

    ``h[i, k] = pi_k(x_i) p_k(y_i | x_i) / sum_j pi_j(x_i) p_j(y_i | x_i)``,
    computed in log space.

    Parameters
    ----------
    log_gate : ndarray of shape (n_samples, n_experts), float64
        Log gate probabilities ``log pi_k(x_i)``.
    log_lik : ndarray of shape (n_samples, n_experts), float64
        Expert log-likelihoods ``log p_k(y_i | x_i)``; ``-inf`` allowed.

    Returns
    -------
    resp : ndarray of shape (n_samples, n_experts)
        Responsibilities; each row sums to one. A row where every expert
        gives zero likelihood falls back to the gate probabilities.
    log_norm : ndarray of shape (n_samples,)
        ``log sum_k pi_k(x_i) p_k(y_i | x_i)`` (``-inf`` for such a row).
    """
    n, m = log_gate.shape
    resp = np.empty((n, m))
    log_norm = np.empty(n)
    for i in range(n):
        amax = -np.inf
        for k in range(m):
            v = log_gate[i, k] + log_lik[i, k]
            resp[i, k] = v
            if v > amax:
                amax = v
        if amax == -np.inf:
            log_norm[i] = -np.inf
            for k in range(m):
                resp[i, k] = np.exp(log_gate[i, k])
            continue
        s = 0.0
        for k in range(m):
            e = np.exp(resp[i, k] - amax)
            resp[i, k] = e
            s += e
        _scale_row(resp, i, 1.0 / s)
        log_norm[i] = amax + np.log(s)
    return resp, log_norm


@njit(cache=True, fastmath=FASTMATH)
def soft_target_loss_grad(logits, targets, sample_weight):
    """Weighted soft-target cross-entropy and its gradient w.r.t. the logits.

    The loss is ``sum_i w_i sum_k -t_ik log softmax(logits_i)_k`` and the
    gradient with respect to ``logits[i, k]`` is
    ``w_i (s_i p_ik - t_ik)`` with ``s_i = sum_k t_ik`` (``p - t`` for rows
    of targets that sum to one). The gate's gradient with respect to its
    coefficients is then one BLAS product, ``Z.T @ grad``.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes), float64
        Finite gate logits.
    targets : ndarray of shape (n_samples, n_classes), float64
        Non-negative soft targets (posterior responsibilities).
    sample_weight : ndarray of shape (n_samples,), float64
        Non-negative sample weights.

    Returns
    -------
    loss : float
        The weighted cross-entropy.
    grad : ndarray of shape (n_samples, n_classes)
        Its gradient with respect to ``logits``.
    """
    n, m = logits.shape
    grad = np.empty((n, m))
    loss = 0.0
    for i in range(n):
        w = sample_weight[i]
        lse = _row_logsumexp(logits, i)
        tsum = 0.0
        row_loss = 0.0
        for k in range(m):
            t = targets[i, k]
            tsum += t
            if t != 0.0:
                row_loss -= t * (logits[i, k] - lse)
        loss += w * row_loss
        for k in range(m):
            grad[i, k] = w * (tsum * np.exp(logits[i, k] - lse) - targets[i, k])
    return loss, grad


@njit(cache=True, fastmath=FASTMATH)
def weighted_sq_residuals(y, pred, weights):
    """Weighted residual sums of squares per expert.

    Parameters
    ----------
    y : ndarray of shape (n_samples,), float64
        Targets.
    pred : ndarray of shape (n_samples, n_experts), float64
        Expert predictions.
    weights : ndarray of shape (n_samples, n_experts), float64
        Non-negative weights (sample weight times responsibility).

    Returns
    -------
    rss : ndarray of shape (n_experts,)
        ``sum_i weights[i, k] * (y_i - pred[i, k]) ** 2`` over the rows with
        a positive weight (a row without weight adds nothing, even where its
        squared residual overflows: never ``0 * inf``).
    """
    n, m = pred.shape
    rss = np.zeros(m)
    for i in range(n):
        yi = y[i]
        for k in range(m):
            w = weights[i, k]
            if w != 0.0:
                r = yi - pred[i, k]
                rss[k] += w * r * r
    return rss


@njit(cache=True, fastmath=FASTMATH)
def mix_proba(gate, proba):
    """Gate-weighted mixture of the experts' class probabilities.

    Parameters
    ----------
    gate : ndarray of shape (n_samples, n_experts), float64
        Mixing weights (rows sum to one).
    proba : ndarray of shape (n_experts, n_samples, n_classes), float64
        Every expert's class probabilities on the global classes.

    Returns
    -------
    out : ndarray of shape (n_samples, n_classes)
        ``sum_k gate[i, k] * proba[k, i, c]``.
    """
    m, n, c = proba.shape
    out = np.zeros((n, c))
    for i in range(n):
        for k in range(m):
            g = gate[i, k]
            for j in range(c):
                out[i, j] += g * proba[k, i, j]
    return out


# ----------------------------------------------------------------------
# Sparse routing (top-k experts) and load balancing
# ----------------------------------------------------------------------
@njit(cache=True)
def _row_top_k(a, i, k, chosen):
    """Mark in ``chosen`` the ``k`` largest entries of row ``i`` of ``a``.

    Ties go to the lower column index, so the choice is deterministic.
    ``chosen`` is a boolean scratch vector of length ``a.shape[1]``; it is
    reset here. Returns the largest chosen value.
    """
    m = a.shape[1]
    for j in range(m):
        chosen[j] = False
    top = -np.inf
    for r in range(k):
        best = -1
        vbest = -np.inf
        for j in range(m):
            if not chosen[j] and (best == -1 or a[i, j] > vbest):
                best = j
                vbest = a[i, j]
        chosen[best] = True
        if r == 0:
            top = vbest
    return top


@njit(cache=True, fastmath=FASTMATH)
def top_k_softmax(logits, k):
    """Softmax over each row's ``k`` largest logits, zero elsewhere.

    This is the sparse gate ``softmax(KeepTopK(logits, k))`` of Shazeer et
    al. (2017): the gate probabilities of the ``k`` most probable experts,
    renormalised to sum to one.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_experts), float64
        Gate logits (or log-probabilities: the result is the same). ``-inf``
        allowed; a row whose chosen entries are all ``-inf`` gets a uniform
        weight on them.
    k : int
        Number of experts kept per row, ``1 <= k <= n_experts``. Ties go to
        the lower expert index.

    Returns
    -------
    out : ndarray of shape (n_samples, n_experts)
        Non-negative rows summing to one, with at most ``k`` non-zeros.
    """
    n, m = logits.shape
    out = np.zeros((n, m))
    chosen = np.empty(m, dtype=np.bool_)
    for i in range(n):
        amax = _row_top_k(logits, i, k, chosen)
        if amax == -np.inf:
            for j in range(m):
                if chosen[j]:
                    out[i, j] = 1.0 / k
            continue
        s = 0.0
        for j in range(m):
            if chosen[j]:
                e = np.exp(logits[i, j] - amax)
                out[i, j] = e
                s += e
        _scale_row(out, i, 1.0 / s)
    return out


@njit(cache=True, fastmath=FASTMATH)
def sparse_e_step(log_gate, log_lik, k):
    """E-step of sparse EM: each row's posterior kept on its ``k`` best experts.

    The experts kept for row ``i`` are the ``k`` with the largest joint
    ``log pi_k(x_i) + log p_k(y_i | x_i)`` (the largest posteriors); the
    posterior is renormalised over them, and
    ``log_norm[i] = log sum_{k kept} pi_k(x_i) p_k(y_i | x_i)`` is the
    sparse-EM bound on the row's log-likelihood (Neal & Hinton, 1998): it
    never exceeds the dense ``log sum_k``, and equals it when ``k`` is the
    number of experts.

    Parameters
    ----------
    log_gate : ndarray of shape (n_samples, n_experts), float64
        Log gate probabilities.
    log_lik : ndarray of shape (n_samples, n_experts), float64
        Expert log-likelihoods; ``-inf`` allowed.
    k : int
        Number of experts kept per row, ``1 <= k <= n_experts``.

    Returns
    -------
    resp : ndarray of shape (n_samples, n_experts)
        Responsibilities with at most ``k`` non-zeros per row, summing to one.
        A row where every expert gives zero likelihood falls back to the
        gate's top ``k`` (renormalised).
    log_norm : ndarray of shape (n_samples,)
        The sparse bound per row (``-inf`` for such a row).
    """
    n, m = log_gate.shape
    resp = np.zeros((n, m))
    log_norm = np.empty(n)
    joint = np.empty((1, m))
    chosen = np.empty(m, dtype=np.bool_)
    for i in range(n):
        for j in range(m):
            joint[0, j] = log_gate[i, j] + log_lik[i, j]
        amax = _row_top_k(joint, 0, k, chosen)
        fallback = amax == -np.inf
        if fallback:
            # No expert explains y_i: keep the gate's top k, as e_step does.
            for j in range(m):
                joint[0, j] = log_gate[i, j]
            amax = _row_top_k(joint, 0, k, chosen)
            if amax == -np.inf:
                for j in range(m):
                    if chosen[j]:
                        resp[i, j] = 1.0 / k
                log_norm[i] = -np.inf
                continue
        s = 0.0
        for j in range(m):
            if chosen[j]:
                e = np.exp(joint[0, j] - amax)
                resp[i, j] = e
                s += e
        inv = 1.0 / s
        for j in range(m):
            resp[i, j] *= inv
        log_norm[i] = -np.inf if fallback else amax + np.log(s)
    return resp, log_norm


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def gate_hessian_sums(Z, prob, weight, pk, pl, fa, fb):
    """The distinct sums of the softmax Hessian over raw inputs.

    ``S[p, j] = sum_i c_i[p] v_i[fa[j]] v_i[fb[j]]`` with ``v_i = [Z[i], 1]``
    and ``c_i[p] = weight[i] * (delta_kl prob[i, k] - prob[i, k] prob[i, l])``
    for the pair ``(k, l) = (pk[p], pl[p])``: the entries ``k <= l``,
    ``a <= b`` of ``sum_i w_i (diag(p_i) - p_i p_i^T) kron v_i v_i^T``, in one
    pass over the rows (no ``n x n_pairs`` or ``n x n_features^2`` array).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features), float64
    prob : ndarray of shape (n_samples, n_classes), float64
        Softmax probabilities.
    weight : ndarray of shape (n_samples,), float64
    pk, pl : ndarray of shape (n_pairs,), int64
        Class pairs, ``pk <= pl``.
    fa, fb : ndarray of shape (n_products,), int64
        Feature pairs over ``n_features + 1`` (the last one is the constant).

    Returns
    -------
    S : ndarray of shape (n_pairs, n_products)
    """
    n, d = Z.shape
    n_pairs = pk.shape[0]
    n_prod = fa.shape[0]
    S = np.zeros((n_pairs, n_prod))
    # Blocks of rows, transposed, so that the inner products run over rows.
    V = np.empty((d + 1, _TB))
    VV = np.empty((n_prod, _TB))
    C = np.empty((n_pairs, _TB))
    for j in range(_TB):
        V[d, j] = 1.0
    for b0 in range(0, n, _TB):
        nb = min(b0 + _TB, n) - b0
        for j in range(nb):
            for a in range(d):
                V[a, j] = Z[b0 + j, a]
        for q in range(n_prod):
            a = fa[q]
            b = fb[q]
            for j in range(nb):
                VV[q, j] = V[a, j] * V[b, j]
        for p in range(n_pairs):
            k = pk[p]
            k2 = pl[p]
            for j in range(nb):
                i = b0 + j
                cp = -prob[i, k] * prob[i, k2]
                if k == k2:
                    cp += prob[i, k]
                C[p, j] = weight[i] * cp
        for p in range(n_pairs):
            for q in range(n_prod):
                acc = 0.0
                for j in range(nb):
                    acc += C[p, j] * VV[q, j]
                S[p, q] += acc
    return S


@njit(cache=True, fastmath=FASTMATH)
def balance_penalty_grad(logits, sample_weight):
    """Load-balancing penalty on the mean gate probabilities, and its gradient.

    With ``pi_i = softmax(logits_i)``, ``T = sum_i w_i`` and the mean gate
    probabilities ``pbar_k = sum_i w_i pi_ik / T``, the penalty is

    ``P = T * KL(uniform || pbar) = -(T / K) * sum_k log(K * pbar_k)``,

    which is zero when the experts are used equally on average and positive
    otherwise (a symmetric Dirichlet prior on ``pbar``). Its gradient with
    respect to the logits is
    ``dP / dlogits[i, j] = w_i pi_ij (c_j - sum_k c_k pi_ik)`` with
    ``c_k = -1 / (K pbar_k)``. ``pbar_k`` is floored at 1e-300, so the
    penalty stays finite.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_experts), float64
        Finite gate logits.
    sample_weight : ndarray of shape (n_samples,), float64
        Non-negative sample weights with a positive sum.

    Returns
    -------
    penalty : float
        ``P``.
    grad : ndarray of shape (n_samples, n_experts)
        Its gradient with respect to ``logits``.
    """
    n, m = logits.shape
    proba = np.empty((n, m))
    pbar = np.zeros(m)
    total = 0.0
    for i in range(n):
        lse = _row_logsumexp(logits, i)
        w = sample_weight[i]
        total += w
        for j in range(m):
            p = np.exp(logits[i, j] - lse)
            proba[i, j] = p
            pbar[j] += w * p
    c = np.empty(m)
    penalty = 0.0
    for j in range(m):
        pb = max(pbar[j] / total, 1e-300)
        penalty -= np.log(m * pb)
        c[j] = -1.0 / (m * pb)
    penalty *= total / m
    grad = proba  # overwritten row by row
    for i in range(n):
        w = sample_weight[i]
        dot = 0.0
        for j in range(m):
            dot += c[j] * proba[i, j]
        for j in range(m):
            grad[i, j] = w * proba[i, j] * (c[j] - dot)
    return penalty, grad

# ----------------------------------------------------------------------
# Range kernels for the hot path.
#
# Each one computes rows ``start:stop`` of its result into arrays allocated
# by the caller and releases the GIL, so that ``skmoe._threaded`` can run
# disjoint row ranges on several threads (``numba``'s own ``parallel=True``
# lowering stops LLVM from vectorising these loops).  Row ``i`` of every
# result is computed the same way whatever the range, and the reductions are
# made per fixed block of ``_TB`` rows (``start`` is always a multiple of
# ``_TB``), so the results do not depend on how the rows are split.
#
# With a handful of experts, loops over the entries of one row are too short
# for SIMD: the kernels copy ``_TB`` rows into a transposed scratch
# ``T[k, j]`` so that the inner loops run over rows, contiguously.  numba
# calls libm's scalar ``exp``, which LLVM cannot vectorise; ``_exp_nonpos``
# is an ``exp`` in plain arithmetic that it can.
# ----------------------------------------------------------------------


_TB = 256

# exp(x) = 2**k * exp(r), k = round(x / log 2), |r| <= log(2) / 2, with log 2
# split in two (fdlibm's constants) so that r is exact.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


# No "reassoc" in ``_exp_nonpos`` and the kernels it is inlined into: it
# would let LLVM fold the two-part reduction (x - k*hi) - k*lo into
# x - k*(hi + lo) and lose the split of log 2 (errors of 1e-14 at x = -50).
_EXP_FASTMATH = {"nsz", "arcp", "contract"}


@njit(cache=True, fastmath=_EXP_FASTMATH, inline="always")
def _exp_nonpos(x):
    """``exp(x)`` for ``x <= 0`` (or ``-inf``), in plain arithmetic.

    Range reduction, a degree-13 Taylor polynomial on ``|r| <= log(2)/2``
    and an exponent built from its bits: within about 2 ULPs of
    ``numpy.exp``. Below ``-708`` (where ``exp`` becomes subnormal) it
    returns 0, and ``exp(-inf) = 0`` exactly.
    """
    under = x < -708.0
    if under:
        x = -708.0
    k = np.floor(x * _LOG2E + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (
        1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (
            1.0 / 362880 + r * (1.0 / 3628800 + r * (1.0 / 39916800 + r * (
                1.0 / 479001600 + r * (1.0 / 6227020800)))))))))))))
    scale = np.int64((np.int64(k) + 1023) << 52).view(np.float64)
    out = p * scale
    if under:
        out = 0.0
    return out


_LN2 = 0.6931471805599453
_SQRT2 = 1.4142135623730951


@njit(cache=True, fastmath=_EXP_FASTMATH, inline="always", error_model="numpy")
def _log_bits(bits):
    """``log(x)`` from the bits of a positive, normal, finite ``x``.

    ``x = 2**e * f`` with ``f`` in ``[sqrt(1/2), sqrt(2))`` read off the bits;
    ``log(f) = 2 atanh(s)``, ``s = (f - 1) / (f + 1)``, ``|s| <= 0.172``, by
    its series to ``s**23``: within 2 ULPs of ``numpy.log`` (the tests check
    it). Plain arithmetic, which LLVM vectorises, where libm's ``log`` is a
    scalar call. The kernels call it on sums of exponentials, which lie in
    ``[1, n_experts]``.
    """
    e = np.float64((bits >> 52) - 1023)
    f = np.int64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
    big = f > _SQRT2
    f = f * (0.5 if big else 1.0)
    e = e + (1.0 if big else 0.0)
    s = (f - 1.0) / (f + 1.0)
    z = s * s
    p = 2.0 * s * (1.0 + z * (1.0 / 3 + z * (1.0 / 5 + z * (1.0 / 7 + z * (
        1.0 / 9 + z * (1.0 / 11 + z * (1.0 / 13 + z * (1.0 / 15 + z * (
            1.0 / 17 + z * (1.0 / 19 + z * (1.0 / 21 + z * (1.0 / 23))))))))))))
    return e * _LN2 + p


@njit(cache=True, inline="always")
def _block_buffers(m):
    """Scratch arrays of the blocked kernels: a block of ``_TB`` rows stored as
    the columns of an ``(m, _TB)`` array, and two values per row."""
    return np.empty((m, _TB)), np.empty(_TB), np.empty(_TB)


@njit(cache=True, fastmath=_EXP_FASTMATH, inline="always")
def _block_exp(T, nb, m, amax, s):
    """Shifted exponentials of a block of rows stored as columns of ``T``.

    For the ``nb`` columns of ``T`` (one per row, ``m`` values each):
    ``amax[j]`` their maximum, ``T[k, j] = exp(T[k, j] - amax[j])`` and
    ``s[j]`` the sum of those exponentials (the log-sum-exp is then
    ``amax[j] + log(s[j])``). The shared core of the range kernels below.
    """
    for j in range(nb):
        amax[j] = T[0, j]
        s[j] = 0.0
    for k in range(1, m):
        for j in range(nb):
            amax[j] = max(amax[j], T[k, j])
    for k in range(m):
        for j in range(nb):
            e = _exp_nonpos(T[k, j] - amax[j])
            T[k, j] = e
            s[j] += e


@njit(cache=True, fastmath=_EXP_FASTMATH, nogil=True, error_model="numpy")
def log_softmax_range(a, out, start, stop):
    """Rows ``start:stop`` of :func:`log_softmax_rows` into ``out``."""
    m = a.shape[1]
    T, amax, s = _block_buffers(m)
    s_bits = s.view(np.int64)
    uniform = -np.log(m)
    for b0 in range(start, stop, _TB):
        nb = min(b0 + _TB, stop) - b0
        for j in range(nb):
            for k in range(m):
                T[k, j] = a[b0 + j, k]
        _block_exp(T, nb, m, amax, s)
        for j in range(nb):
            s[j] = _log_bits(s_bits[j])  # s[j] becomes log(sum)
        for j in range(nb):
            i = b0 + j
            # (a - amax) - log(sum), not a - (amax + log(sum)): at large
            # logits the latter rounds the sum (rows summing to 0.99997
            # at logits near 3e11).
            for k in range(m):
                out[i, k] = (a[i, k] - amax[j]) - s[j]
        for j in range(nb):
            if amax[j] == -np.inf:
                for k in range(m):
                    out[b0 + j, k] = uniform


@njit(cache=True, fastmath=_EXP_FASTMATH, nogil=True, error_model="numpy")
def e_step_range(log_gate, log_lik, resp, log_norm, start, stop):
    """Rows ``start:stop`` of :func:`e_step` into ``resp`` and ``log_norm``."""
    m = log_gate.shape[1]
    T, amax, s = _block_buffers(m)
    s_bits = s.view(np.int64)
    for b0 in range(start, stop, _TB):
        nb = min(b0 + _TB, stop) - b0
        for j in range(nb):
            for k in range(m):
                T[k, j] = log_gate[b0 + j, k] + log_lik[b0 + j, k]
        _block_exp(T, nb, m, amax, s)
        for j in range(nb):
            log_norm[b0 + j] = amax[j] + _log_bits(s_bits[j])
        for j in range(nb):
            s[j] = 1.0 / s[j]
        for j in range(nb):
            i = b0 + j
            inv = s[j]
            for k in range(m):
                resp[i, k] = T[k, j] * inv
        for j in range(nb):
            if amax[j] == -np.inf:
                # No expert explains the row: fall back to the gate.
                i = b0 + j
                log_norm[i] = -np.inf
                for k in range(m):
                    resp[i, k] = np.exp(log_gate[i, k])


@njit(cache=True, fastmath=_EXP_FASTMATH, nogil=True, error_model="numpy")
def soft_target_range(logits, targets, sample_weight, block_loss, block_sum, start, stop):
    """Rows ``start:stop`` of the soft-target loss; the gradient overwrites ``logits``.

    The in-place form of :func:`soft_target_loss_grad` used inside the gate's
    optimiser. Row ``i`` of ``logits`` becomes ``w_i (s_i p_i - t_i)``;
    block ``b`` (rows ``b*_TB:(b+1)*_TB``) stores its loss in
    ``block_loss[b]`` and the column sums of its gradient in
    ``block_sum[b]``. ``start`` must be a multiple of ``_TB``.
    """
    m = logits.shape[1]
    T, amax, s = _block_buffers(m)
    s_bits = s.view(np.int64)
    for b0 in range(start, stop, _TB):
        nb = min(b0 + _TB, stop) - b0
        blk = b0 // _TB
        for j in range(nb):
            for k in range(m):
                T[k, j] = logits[b0 + j, k]
        _block_exp(T, nb, m, amax, s)
        loss = 0.0
        for k in range(m):
            block_sum[blk, k] = 0.0
        for j in range(nb):
            amax[j] = amax[j] + _log_bits(s_bits[j])  # amax[j] becomes the lse
        for j in range(nb):
            i = b0 + j
            w = sample_weight[i]
            lse = amax[j]
            tsum = 0.0
            row_loss = 0.0
            for k in range(m):
                t = targets[i, k]
                tsum += t
                row_loss += t * (lse - logits[i, k])  # finite logits
            loss += w * row_loss
            scale = w * tsum / s[j]
            for k in range(m):
                g = scale * T[k, j] - w * targets[i, k]
                logits[i, k] = g
                block_sum[blk, k] += g
        block_loss[blk] = loss


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def gaussian_log_lik_range(y, pred, half_log, inv_var, out, start, stop):
    """Rows ``start:stop`` of the Gaussian log-densities into ``out``.

    ``out[i, k] = log N(y_i; pred[i, k], variance[k])``, with
    ``half_log[k] = (log(2 pi) + log(variance[k])) / 2`` and
    ``inv_var[k] = 1 / (2 variance[k])``.
    """
    m = pred.shape[1]
    for i in range(start, stop):
        yi = y[i]
        for k in range(m):
            r = yi - pred[i, k]
            out[i, k] = -half_log[k] - r * r * inv_var[k]


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def weighted_sq_residuals_range(y, pred, weights, block_sum, start, stop):
    """Per-block :func:`weighted_sq_residuals` of rows ``start:stop``.

    Block ``b`` (rows ``b*_TB:(b+1)*_TB``) stores its sums in
    ``block_sum[b]``. ``start`` must be a multiple of ``_TB``.
    """
    m = pred.shape[1]
    for b0 in range(start, stop, _TB):
        blk = b0 // _TB
        for k in range(m):
            block_sum[blk, k] = 0.0
        for i in range(b0, min(b0 + _TB, stop)):
            yi = y[i]
            for k in range(m):
                w = weights[i, k]
                if w != 0.0:  # as weighted_sq_residuals: never 0 * inf
                    r = yi - pred[i, k]
                    block_sum[blk, k] += w * r * r


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def mix_mean_var_range(gate, pred, variance, mean, var, start, stop):
    """Rows ``start:stop`` of a Gaussian mixture's mean and variance.

    ``mean[i] = sum_k gate[i, k] pred[i, k]`` and ``var[i] = sum_k gate[i, k]
    (variance[k] + (pred[i, k] - mean[i]) ** 2)`` (the law of total variance).
    """
    m = pred.shape[1]
    mu = np.empty(_TB)
    v = np.empty(_TB)
    for b0 in range(start, stop, _TB):
        nb = min(b0 + _TB, stop) - b0
        for j in range(nb):
            mu[j] = 0.0
            v[j] = 0.0
        for j in range(nb):
            for k in range(m):
                mu[j] += gate[b0 + j, k] * pred[b0 + j, k]
        for j in range(nb):
            for k in range(m):
                d = pred[b0 + j, k] - mu[j]
                v[j] += gate[b0 + j, k] * (variance[k] + d * d)
        for j in range(nb):
            mean[b0 + j] = mu[j]
            var[b0 + j] = v[j]


@njit(cache=True, fastmath=FASTMATH, nogil=True)
def mix_mean_range(gate, pred, mean, start, stop):
    """Rows ``start:stop`` of the gate-weighted mean ``sum_k gate[i, k] pred[i, k]``."""
    m = pred.shape[1]
    for i in range(start, stop):
        mu = 0.0
        for k in range(m):
            mu += gate[i, k] * pred[i, k]
        mean[i] = mu
