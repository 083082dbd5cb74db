"""The observed information of a mixture of linear experts under a softmax gate.

The model, for row ``i`` with gate design ``z_i = [z, 1]`` and expert design
``x_i`` (``[x, 1]`` when the experts fit an intercept)::

    log p(y_i | x_i) = logsumexp_k a_ik,   a_ik = log pi_k(z_i) + log f_k(y_i | x_i)

The gate is parametrised against a **reference expert 0**: ``log pi_k`` is
the log-softmax of the logits ``(0, z_i . v_1, ..., z_i . v_{K-1})``, so that
``v_k`` is ``coef_[k] - coef_[0]`` of :class:`~skmoe.SoftmaxGate` (which
stores one redundant row). Expert ``k`` has ``L`` linear predictors
``eta_il = x_i . b_kl`` (``L = 1``, or ``C - 1`` class logits against class
0 for a logistic expert) and ``T`` parameters of its likelihood (the
Gaussian variance, the Gamma shape).

The flat parameter vector is ``[v_1, ..., v_{K-1}, expert 0, ..., expert
K-1]``, an expert block being ``[b_k1, ..., b_kL, theta_k]``.

Exact derivatives (Louis' identity row by row): with ``g_ik = d a_ik /
d params`` and the posteriors ``r_ik``, the score of row ``i`` is ``s_i =
sum_k r_ik g_ik`` and its Hessian is ``sum_k r_ik d^2 a_ik + sum_k r_ik g_ik
g_ik^T - s_i s_i^T``: the complete-data information minus the missing
information.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, log_softmax, polygamma, softmax

from . import _threaded

#: The expert likelihoods with an exact information.
FAMILIES = ("gaussian", "poisson", "gamma", "negbin", "logistic")

#: Rows per block when the information is accumulated (bounds the memory of
#: the ``(rows, K, P)`` gradient array).
_CHUNK_ROWS = 16_384


@dataclass(frozen=True)
class Layout:
    """Where each parameter sits in the flat vector.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    n_experts : int
        ``K``.
    gate_width : int
        Columns of the gate design (its inputs + the intercept).
    expert_width : int
        Columns of the expert design (inputs, + 1 with an intercept).
    n_links : int
        Linear predictors per expert (``C - 1`` for a logistic expert).
    """

    family: str
    n_experts: int
    gate_width: int
    expert_width: int
    n_links: int = 1

    @property
    def n_theta(self):
        """Parameters of the likelihood per expert (variance, shape,
        dispersion)."""
        return 1 if self.family in ("gaussian", "gamma", "negbin") else 0

    @property
    def gate_size(self):
        """Length of the gate's block."""
        return (self.n_experts - 1) * self.gate_width

    @property
    def expert_size(self):
        """Length of one expert's block."""
        return self.n_links * self.expert_width + self.n_theta

    @property
    def size(self):
        """Length of the whole vector."""
        return self.gate_size + self.n_experts * self.expert_size

    def expert_slice(self, k):
        """The slice of expert ``k``'s block."""
        start = self.gate_size + k * self.expert_size
        return slice(start, start + self.expert_size)

    def unpack(self, params):
        """``(V, B, theta)``: gate ``(K-1, q)``, coefficients ``(K, L, p)``,
        likelihood parameters ``(K, T)``."""
        params = np.asarray(params, dtype=np.float64)
        V = params[: self.gate_size].reshape(self.n_experts - 1, self.gate_width)
        blocks = params[self.gate_size :].reshape(self.n_experts, self.expert_size)
        n_coef = self.n_links * self.expert_width
        B = blocks[:, :n_coef].reshape(self.n_experts, self.n_links, self.expert_width)
        return V, B, blocks[:, n_coef:]


def gate_log_proba(V, Zd):
    """``log pi`` of every expert, ``(n, K)``, expert 0 the reference."""
    logits = np.column_stack([np.zeros(Zd.shape[0]), Zd @ V.T])
    return log_softmax(logits, axis=1)


def _gaussian(eta, y, theta):
    var = theta[0]
    e = y - eta[:, 0]
    logf = -0.5 * np.log(2 * np.pi * var) - 0.5 * e * e / var
    d_eta = (e / var)[:, None]
    d_theta = (-0.5 / var + 0.5 * e * e / var**2)[:, None]
    h_ee = np.full((len(y), 1, 1), -1.0 / var)
    h_et = (-e / var**2)[:, None, None]
    h_tt = (0.5 / var**2 - e * e / var**3)[:, None, None]
    return logf, d_eta, d_theta, h_ee, h_et, h_tt


def _poisson(eta, y, theta):
    mu = np.exp(eta[:, 0])
    logf = y * eta[:, 0] - mu - gammaln(y + 1.0)
    n = len(y)
    empty = np.zeros((n, 1, 0))
    return (
        logf,
        (y - mu)[:, None],
        np.zeros((n, 0)),
        -mu[:, None, None],
        empty,
        np.zeros((n, 0, 0)),
    )


def _gamma(eta, y, theta):
    nu = theta[0]
    ratio = y * np.exp(-eta[:, 0])  # y / mu
    logf = nu * np.log(nu * ratio) - nu * ratio - np.log(y) - gammaln(nu)
    d_eta = (nu * (ratio - 1.0))[:, None]
    d_theta = (np.log(nu * ratio) + 1.0 - ratio - digamma(nu))[:, None]
    h_ee = (-nu * ratio)[:, None, None]
    h_et = (ratio - 1.0)[:, None, None]
    h_tt = np.full((len(y), 1, 1), 1.0 / nu - float(polygamma(1, nu)))
    return logf, d_eta, d_theta, h_ee, h_et, h_tt


def _negbin(eta, y, theta):
    """NB2 with log link: ``Var = mu + mu^2 / r``, ``theta = (r,)``."""
    r = theta[0]
    mu = np.exp(eta[:, 0])
    rm = r + mu
    logf = (
        gammaln(y + r) - gammaln(r) - gammaln(y + 1.0)
        + r * np.log(r / rm) + y * (eta[:, 0] - np.log(rm))
    )
    d_eta = (r * (y - mu) / rm)[:, None]
    d_theta = (digamma(y + r) - digamma(r) + np.log(r / rm) + (mu - y) / rm)[:, None]
    h_ee = (-r * mu * (r + y) / rm**2)[:, None, None]
    h_et = (mu * (y - mu) / rm**2)[:, None, None]
    h_tt = (
        polygamma(1, y + r) - float(polygamma(1, r)) + 1.0 / r - 1.0 / rm
        - (mu - y) / rm**2
    )[:, None, None]
    return logf, d_eta, d_theta, h_ee, h_et, h_tt


def _logistic(eta, y, theta):
    n, L = eta.shape
    logp = log_softmax(np.column_stack([np.zeros(n), eta]), axis=1)
    y = y.astype(np.intp)
    logf = logp[np.arange(n), y]
    p = np.exp(logp[:, 1:])
    onehot = np.zeros((n, L))
    rows = np.flatnonzero(y > 0)
    onehot[rows, y[rows] - 1] = 1.0
    h_ee = p[:, :, None] * p[:, None, :]
    h_ee[:, np.arange(L), np.arange(L)] -= p
    return (
        logf,
        onehot - p,
        np.zeros((n, 0)),
        h_ee,
        np.zeros((n, L, 0)),
        np.zeros((n, 0, 0)),
    )


_EXPERT_TERMS = {
    "gaussian": _gaussian,
    "poisson": _poisson,
    "gamma": _gamma,
    "negbin": _negbin,
    "logistic": _logistic,
}


def expert_terms(family, eta, y, theta):
    """``log f`` of one expert on every row and its derivatives.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    eta : ndarray of shape (n, L)
        The expert's linear predictors.
    y : ndarray of shape (n,)
        Targets (class indices for ``"logistic"``).
    theta : ndarray of shape (T,)
        The expert's likelihood parameters.

    Returns
    -------
    terms : tuple
        ``(log f (n,), d/d eta (n, L), d/d theta (n, T), d2/d eta2 (n, L, L),
        d2/d eta d theta (n, L, T), d2/d theta2 (n, T, T))``.
    """
    return _EXPERT_TERMS[family](eta, y, theta)


def mixture_log_terms(layout, params, Zd, Xd, y):
    """``a_ik = log pi_ik + log f_ik``, ``(n, K)``, and every expert's terms."""
    V, B, theta = layout.unpack(params)
    log_pi = gate_log_proba(V, Zd)
    terms = [
        expert_terms(layout.family, Xd @ B[k].T, y, theta[k])
        for k in range(layout.n_experts)
    ]
    return log_pi + np.column_stack([t[0] for t in terms]), log_pi, terms


def _slots(layout, Zd, Xd):
    """Every parameter is a per-row coefficient times a column of one
    design: the designs ``[Zd, Xd, ones]`` and, for each *slot* (a gate row
    ``v_j``, an expert's link ``b_kl``, an expert's theta), ``(design
    index, offset)``."""
    p, L = layout.expert_width, layout.n_links
    slots = [(0, j * layout.gate_width) for j in range(layout.n_experts - 1)]
    for k in range(layout.n_experts):
        start = layout.expert_slice(k).start
        slots += [(1, start + link * p) for link in range(L)]
        slots += [(2, start + L * p + t) for t in range(layout.n_theta)]
    return [Zd, Xd, np.ones((Zd.shape[0], 1))], slots


def _slot_coefficients(layout, log_pi, terms):
    """``C[i, k, a]``: the gradient of ``a_ik`` is ``sum_a C[i, k, a]``
    times slot ``a``'s design row (zero outside expert ``k``'s slots)."""
    n, K = log_pi.shape
    per_expert = layout.n_links + layout.n_theta
    C = np.zeros((n, K, (K - 1) + K * per_expert))
    C[:, :, : K - 1] = -np.exp(log_pi[:, None, 1:])
    C[:, np.arange(1, K), np.arange(K - 1)] += 1.0
    for k, (_, d_eta, d_theta, *_rest) in enumerate(terms):
        first = K - 1 + k * per_expert
        C[:, k, first : first + per_expert] = np.column_stack([d_eta, d_theta])
    return C


def _curvature_weights(layout, log_pi, terms, R, w):
    """The second derivatives ``sum_k r_ik d^2 a_ik`` as row weights of the
    slot pairs ``(a, b)``, ``a <= b``, where they can be non-zero: within the
    gate (the same for every ``k``) and within one expert."""
    K = layout.n_experts
    per_expert = layout.n_links + layout.n_theta
    pi = np.exp(log_pi[:, 1:])
    out = {}
    for j in range(K - 1):
        for m in range(j, K - 1):
            out[j, m] = w * (pi[:, j] * pi[:, m] - (pi[:, j] if j == m else 0.0))
    for k, (_, _, _, h_ee, h_et, h_tt) in enumerate(terms):
        first, L = K - 1 + k * per_expert, layout.n_links
        wr = w * R[:, k]
        for a in range(per_expert):
            for b in range(a, per_expert):
                if b < L:
                    h = h_ee[:, a, b]
                elif a < L:
                    h = h_et[:, a, b - L]
                else:
                    h = h_tt[:, a - L, b - L]
                out[first + a, first + b] = wr * h
    return out


def _slot_products(designs, slots, weights, size):
    """``sum_i weights[a, b][i] D_a(i) D_b(i)^T`` for the slot pairs
    ``(a, b)`` of ``weights``, laid (symmetrically) into a ``(size, size)``
    matrix: one matrix product per pair of designs, of the pairs' weights
    with the rows' outer products of the two designs."""
    out = np.zeros((size, size))
    for da in range(len(designs)):
        for db in range(len(designs)):
            chosen = [
                (a, b) for a, b in weights if slots[a][0] == da and slots[b][0] == db
            ]
            if not chosen:
                continue
            Da, Db = designs[da], designs[db]
            outer = (Da[:, :, None] * Db[:, None, :]).reshape(len(Da), -1)
            picked = np.stack([weights[pair] for pair in chosen])
            blocks = (picked @ outer).reshape(len(chosen), Da.shape[1], Db.shape[1])
            for (a, b), block in zip(chosen, blocks):
                oa, ob = slots[a][1], slots[b][1]
                out[oa : oa + Da.shape[1], ob : ob + Db.shape[1]] = block
                out[ob : ob + Db.shape[1], oa : oa + Da.shape[1]] = block.T
    return out


def _expanded(designs, slots, coef, chosen=None):
    """Rows ``sum_a coef[i, a] D_a(i)`` laid out as parameters, ``(n, P)``;
    with ``chosen``, the columns of those slots only."""
    chosen = range(len(slots)) if chosen is None else chosen
    return np.concatenate(
        [designs[slots[a][0]] * coef[:, a, None] for a in chosen], axis=1
    )


def _chunk_information(layout, params, Zd, Xd, y, w):
    """The Hessian, the score outer products and the score sum of some rows:
    ``sum_k r_ik g_ik g_ik^T`` one expert at a time (the gate's columns and
    that expert's), ``- s_i s_i^T`` and the curvature of every ``a_ik``."""
    a, log_pi, terms = mixture_log_terms(layout, params, Zd, Xd, y)
    R = softmax(a, axis=1)
    C = _slot_coefficients(layout, log_pi, terms)
    designs, slots = _slots(layout, Zd, Xd)
    scores = _expanded(designs, slots, np.einsum("ik,ika->ia", R, C))
    meat = (scores * w[:, None]).T @ scores
    H = (
        _slot_products(
            designs, slots, _curvature_weights(layout, log_pi, terms, R, w), layout.size
        )
        - meat
    )
    K, per_expert = layout.n_experts, layout.n_links + layout.n_theta
    for k in range(K):
        cols = np.r_[
            np.arange(layout.gate_size), np.arange(layout.size)[layout.expert_slice(k)]
        ]
        chosen = list(range(K - 1)) + list(
            range(K - 1 + k * per_expert, K - 1 + (k + 1) * per_expert)
        )
        G = _expanded(designs, slots, C[:, k, :], chosen)
        G *= np.sqrt(w * R[:, k])[:, None]
        H[np.ix_(cols, cols)] += G.T @ G
    return H, meat, w @ scores


def information(layout, params, Zd, Xd, y, sample_weight=None):
    """The observed information ``-d^2 l / d params^2`` of the mixture's
    log-likelihood, the sum of the score outer products, and the score.

    Parameters
    ----------
    layout : Layout
        The parametrisation.
    params : ndarray of shape (P,)
        The flat parameter vector.
    Zd : ndarray of shape (n, q)
        Gate design (inputs then a column of ones).
    Xd : ndarray of shape (n, p)
        Expert design.
    y : ndarray of shape (n,)
        Targets (class indices for a logistic expert).
    sample_weight : ndarray of shape (n,), default=None
        Frequency weights of the rows.

    Returns
    -------
    info : ndarray of shape (P, P)
        The observed information (the negative Hessian).
    meat : ndarray of shape (P, P)
        ``sum_i w_i s_i s_i^T``, the middle of the sandwich.
    score : ndarray of shape (P,)
        ``sum_i w_i s_i``, zero at the maximum.
    """
    n = Zd.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    parts = {}

    def block(start, stop):
        # whole chunks of _CHUNK_ROWS, however the rows were shared out:
        # the same sums in the same order on any number of threads
        for a in range(start, stop, _CHUNK_ROWS):
            b = min(a + _CHUNK_ROWS, stop)
            parts[a] = _chunk_information(
                layout, params, Zd[a:b], Xd[a:b], y[a:b], w[a:b]
            )

    # blocks of rows on the module's threads; thin products: threaded BLAS
    # only synchronises (as in EM)
    with _threaded.single_threaded_blas():
        _threaded.run_chunks(block, n, _CHUNK_ROWS)
    info = np.zeros((layout.size, layout.size))
    meat = np.zeros_like(info)
    score = np.zeros(layout.size)
    for start in sorted(parts):  # a fixed order of summation
        H, m, s = parts[start]
        info -= H
        meat += m
        score += s
    return info, meat, score


def log_likelihood(layout, params, Zd, Xd, y, sample_weight=None):
    """The mixture's (weighted) log-likelihood at ``params``.

    Parameters
    ----------
    layout : Layout
        The parametrisation.
    params : ndarray of shape (P,)
        The flat parameter vector.
    Zd, Xd : ndarray
        Gate and expert designs.
    y : ndarray of shape (n,)
        Targets.
    sample_weight : ndarray of shape (n,), default=None
        Frequency weights.

    Returns
    -------
    log_lik : float
        ``sum_i w_i logsumexp_k a_ik``.
    """
    a = mixture_log_terms(layout, params, Zd, Xd, y)[0]
    amax = a.max(axis=1, keepdims=True)
    per_row = np.log(np.exp(a - amax).sum(axis=1)) + amax[:, 0]
    w = np.ones(len(per_row)) if sample_weight is None else sample_weight
    return float(w @ per_row)


def covariance_from_information(info, meat=None):
    """``info^-1``, or the sandwich ``info^-1 meat info^-1`` with ``meat``.

    Parameters
    ----------
    info : ndarray of shape (P, P)
        The observed information.
    meat : ndarray of shape (P, P), default=None
        The score outer products (robust covariance).

    Returns
    -------
    cov : ndarray of shape (P, P)
        The covariance, symmetric.

    Raises
    ------
    numpy.linalg.LinAlgError
        When the information is not positive definite (the fit is not at a
        maximum, or a parameter is not identified).
    """
    L = np.linalg.cholesky(info)  # raises when not positive definite
    inv_L = np.linalg.solve(L, np.eye(len(info)))
    cov = inv_L.T @ inv_L
    if meat is not None:
        cov = cov @ meat @ cov
    return (cov + cov.T) / 2
