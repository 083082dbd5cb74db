"""Quasi-Newton polish of a mixture of logistic experts under a softmax gate.

EM creeps on a mixture of logistic-regression experts: near-separable
classes and a flat (penalised) gate leave it moving by a little at every
iteration for hundreds of iterations. The objective it increases is a
smooth function of few parameters (the gate's and the experts'
coefficients), so it can be maximised directly, all parameters together,
by L-BFGS (the hybrid of Redner & Walker 1984 and Jamshidian & Jennrich
1997: EM to approach the optimum, a quasi-Newton method to reach it).

The objective is the one EM increases, penalties included::

    F = [sum_i w_i log sum_k pi_k(z_i) p_k(y_i | x_i)
         - alpha / 2 ||W_s||^2 - sum_k 1 / (2 C_k) ||coef_k||^2] / sum_i w_i

with ``pi`` the :class:`~skmoe.SoftmaxGate` (coefficients ``W_s`` on the
standardised gate inputs, intercepts unpenalised) and ``p_k`` the
``LogisticRegression`` experts (scikit-learn's objective: an L2 penalty
``1 / (2 C)`` on the coefficients, none on the intercepts). Its gradient is
that of EM's expected complete-data objective at the current posteriors
(Fisher's identity), so a stationary point of ``F`` is a fixed point of EM.
"""

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from . import _linear
from ._gating import SoftmaxGate, _to_standardised


def eligible(prototypes, gate, data, config):
    """Whether a fit from these prototypes can be polished (before any
    fit): see :func:`applicable`."""
    return (
        _settings_allow(gate, data, config)
        and all(_penalised_logistic(p) for p in prototypes)
    )


def _settings_allow(gate, data, config):
    X, Z = data.X, data.Z
    return (
        config.assignment == "soft"
        and config.top_k is None
        and type(gate) is SoftmaxGate
        and not gate.balance > 0
        and _dense_or_sparse(X) and _dense_or_sparse(Z)
        and hasattr(data.likelihood, "classes_")
    )


def _dense_or_sparse(A):
    """A 2-D ndarray or a SciPy sparse matrix (its products stay sparse:
    sparse and dense data are polished alike, to the same model)."""
    return (isinstance(A, np.ndarray) or sp.issparse(A)) and A.ndim == 2


def _product(A, B, out):
    """``out[:] = A @ B`` for a dense or sparse ``A``."""
    if sp.issparse(A):
        out[...] = A @ B
    else:
        np.matmul(A, B, out=out)


def _penalised_logistic(expert):
    if type(expert) is not LogisticRegression or not _linear.batchable_logistic(expert):
        return False
    inv_C = _linear._l2_inverse_C(expert)
    return inv_C is not None and inv_C > 0


def applicable(data, state, config):
    """Whether the polish applies: soft EM with every expert on every row,
    a plain :class:`~skmoe.SoftmaxGate` (no balance penalty) on a dense
    gate input, and fitted L2-penalised LogisticRegression experts that
    :mod:`skmoe._linear` fits (dense ``X``), none frozen."""
    gate = state.gate
    return (
        _settings_allow(gate, data, config)
        and getattr(gate, "coef_", None) is not None
        and getattr(gate, "_sgd", None) is None
        and gate.coef_.shape == (len(state.experts), data.Z.shape[1])
        and not state.frozen.any()
        and all(_fitted_logistic(e, data.likelihood.classes_, data.X.shape[1])
                for e in state.experts)
    )


def _fitted_logistic(expert, classes, n_features):
    coef = getattr(expert, "coef_", None)
    fitted_classes = getattr(expert, "classes_", None)
    m = 1 if len(classes) == 2 else len(classes)
    return (
        _penalised_logistic(expert)
        and coef is not None and coef.shape == (m, n_features)
        and fitted_classes is not None and np.array_equal(fitted_classes, classes)
    )


class _Problem:
    """The data and layout of the parameter vector: the gate's ``W_s``
    (q, K) and ``b_s`` (K,), then each expert's ``(m, d + 1)`` block
    (coefficients, then the intercept)."""

    def __init__(self, data, state):
        gate = state.gate
        self.mean, self.scale = gate.get_standardization()
        # Used as they are (no standardised or augmented copy): the
        # standardisation and the intercepts enter the products below.
        self.Z = Z = data.Z
        self.X = X = data.X
        self.w = data.sample_weight
        self.total = data.total
        self.alpha = float(gate.alpha)
        classes = data.likelihood.classes_
        self.binary = len(classes) == 2
        self.y = np.searchsorted(classes, data.y)
        self.K = len(state.experts)
        self.q = Z.shape[1]
        self.d = X.shape[1]
        self.m = 1 if self.binary else len(classes)
        self.inv_C = np.array([_linear._l2_inverse_C(e) for e in state.experts])
        self.intercepts = np.array([bool(e.fit_intercept) for e in state.experts])
        self.n_gate = (self.q + 1) * self.K
        # The penalties' weights on the parameters (none on the intercepts),
        # and the parameters that move (no intercept without fit_intercept),
        # all over the total weight (as the row weights ``w``).
        gate_penalty = np.zeros((self.q + 1, self.K))
        gate_penalty[: self.q] = self.alpha
        expert_penalty = np.zeros((self.d + 1, self.K * self.m))
        expert_penalty[: self.d] = np.repeat(self.inv_C, self.m)
        self.penalty = np.concatenate([gate_penalty.ravel(), expert_penalty.ravel()])
        self.penalty /= self.total
        self.w = self.w / self.total
        free = np.ones((self.d + 1, self.K * self.m))
        free[self.d] = np.repeat(self.intercepts, self.m)
        self.free = np.concatenate([np.ones(self.n_gate), free.ravel()])
        self.constrained = not self.free.all()
        n = X.shape[0]
        # When the gate and the experts see the same dense array (the
        # default: the gate on every feature), one product gives both
        # blocks of logits, and one both blocks of the gradient.
        self.shared = Z is X and isinstance(X, np.ndarray) and (
            X.flags.c_contiguous or X.flags.f_contiguous
        )
        width = self.K + self.K * self.m
        logits, coefs = np.empty((n, width)), np.empty((n, width))
        self._stacked = (logits, coefs, np.empty((self.q, width)))
        self._buffers = (
            logits[:, : self.K], logits[:, self.K :],
            coefs[:, : self.K], coefs[:, self.K :],
        )

    def pack(self, state):
        W_s, b_s = _to_standardised(
            state.gate.coef_, state.gate.intercept_, self.mean, self.scale
        )
        V = np.vstack([W_s, b_s[None, :]])
        T = np.empty((self.d + 1, self.K * self.m))
        for k, e in enumerate(state.experts):
            sl = slice(k * self.m, (k + 1) * self.m)
            T[: self.d, sl] = e.coef_.T
            T[self.d, sl] = np.broadcast_to(e.intercept_, (self.m,)) if e.fit_intercept else 0.0
        return np.concatenate([V.ravel(), T.ravel()])

    def unpack(self, params):
        V = params[: self.n_gate].reshape(self.q + 1, self.K)
        T = params[self.n_gate :].reshape(self.d + 1, self.K * self.m)
        return V, T

    def _logits(self, params, G, E):
        """The gate's logits into ``G``, the experts' into ``E`` (the two
        blocks of one buffer)."""
        V, T = self.unpack(params)
        W = V[: self.q] / self.scale[:, None]
        if self.shared:
            logits, _, stacked = self._stacked
            stacked[:, : self.K] = W
            stacked[:, self.K :] = T[: self.d]
            np.matmul(self.X, stacked, out=logits)
        else:
            _product(self.Z, W, G)
            _product(self.X, T[: self.d], E)
        G += V[self.q] - self.mean @ W
        E += T[self.d]

    def objective(self, params):
        """``-F`` and its gradient (the rows' terms by
        :func:`_row_terms`; everything in one compiled call,
        :func:`_shared_objective`, when the gate and the experts see the
        same dense array)."""
        if self.shared:
            logits, coefs, stacked = self._stacked
            grad = np.empty_like(params)
            f = _shared_objective(
                self.X, params, self.y, self.w, self.m, self.K, self.mean,
                self.scale, self.penalty, self.free, logits, coefs, stacked, grad,
            )
            return f, grad
        G, E, CG, CE = self._buffers
        self._logits(params, G, E)
        log_lik = _row_terms(G, E, self.y, self.w, self.m, CG, CE)
        grad = np.empty_like(params)
        grad_V, grad_T = self.unpack(grad)
        g_sum = CG.sum(axis=0)
        _product(self.Z.T, CG, grad_V[: self.q])
        _product(self.X.T, CE, grad_T[: self.d])
        grad_T[self.d] = CE.sum(axis=0)
        grad_V[: self.q] -= np.outer(self.mean, g_sum)
        grad_V[: self.q] /= self.scale[:, None]
        grad_V[self.q] = g_sum
        weighted = self.penalty * params
        grad += weighted
        if self.constrained:
            grad *= self.free
        return 0.5 * float(weighted @ params) - log_lik, grad

    def usage(self, params):
        """Each expert's share of the total weight in the posteriors."""
        G, E, CG, CE = self._buffers
        self._logits(params, G, E)
        _row_terms(G, E, self.y, self.w, self.m, CG, CE)
        # CG = w (pi - posterior)
        pi = np.exp(G - G.max(axis=1, keepdims=True))
        pi /= pi.sum(axis=1, keepdims=True)
        return self.w @ pi - CG.sum(axis=0)

    def store(self, state, params):
        """Write the parameters into the gate and the experts."""
        V, T = self.unpack(params)
        gate = state.gate
        gate.set_standardized_params(np.concatenate([V[: self.q].ravel(), V[self.q]]))
        for k, e in enumerate(state.experts):
            sl = slice(k * self.m, (k + 1) * self.m)
            e.coef_ = np.ascontiguousarray(T[: self.d, sl].T)
            if e.fit_intercept:
                b = T[self.d, sl].copy()
                if not self.binary:
                    b -= b.mean()
                e.intercept_ = b
            else:
                e.intercept_ = np.zeros(self.m)


def polish(data, state, max_iter=1000, tol=1e-8):
    """Maximise ``F`` from ``state`` by L-BFGS; ``state`` is updated in place.

    ``tol``: L-BFGS stops when no entry of the gradient of ``F`` exceeds
    it. Returns ``(F, usage)``: the objective reached and each expert's share
    of the total weight in the posteriors there. The state is left as it
    was when L-BFGS does not improve on it.
    """
    problem = _Problem(data, state)
    x0 = problem.pack(state)
    f0, _ = problem.objective(x0)
    result = minimize(
        problem.objective, x0, jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-13, "maxcor": 20},
    )
    x, f = x0, f0
    if np.isfinite(result.fun) and result.fun <= f0 and np.all(np.isfinite(result.x)):
        x, f = result.x, float(result.fun)
        problem.store(state, x)
    return -f, problem.usage(x)


@njit(cache=True)
def _shared_objective(X, params, y, w, m, K, mean, scale, penalty, free, L, C, S, grad):
    """``-F``, and its gradient into ``grad``, when the gate and the
    experts see the same dense ``X`` (n, q): what :meth:`_Problem.objective`
    computes, in one call. One product gives the gate's and the experts'
    logits (``L``: n by K + K m), one their gradients (from the rows'
    terms ``C``, :func:`_row_terms`); ``S`` (q by K + K m) holds the
    stacked coefficients, then the products' gradient block."""
    n, q = X.shape
    Km = K * m
    width = K + Km
    n_gate = (q + 1) * K
    # The gate's coefficients on X's scale, then the experts'.
    for j in range(q):
        for k in range(K):
            S[j, k] = params[j * K + k] / scale[j]
        for c in range(Km):
            S[j, K + c] = params[n_gate + j * Km + c]
    offsets = np.empty(width)
    for k in range(K):
        b = params[q * K + k]
        for j in range(q):
            b -= mean[j] * S[j, k]
        offsets[k] = b
    for c in range(Km):
        offsets[K + c] = params[n_gate + q * Km + c]
    np.dot(X, S, L)
    for i in range(n):
        for c in range(width):
            L[i, c] += offsets[c]
    log_lik = _row_terms(L[:, :K], L[:, K:], y, w, m, C[:, :K], C[:, K:])
    np.dot(X.T, C, S)
    sums = np.zeros(width)
    for i in range(n):
        for c in range(width):
            sums[c] += C[i, c]
    for j in range(q):
        for k in range(K):
            grad[j * K + k] = (S[j, k] - mean[j] * sums[k]) / scale[j]
        for c in range(Km):
            grad[n_gate + j * Km + c] = S[j, K + c]
    for k in range(K):
        grad[q * K + k] = sums[k]
    for c in range(Km):
        grad[n_gate + q * Km + c] = sums[K + c]
    penalty_sum = 0.0
    for p in range(params.size):
        weighted = penalty[p] * params[p]
        penalty_sum += weighted * params[p]
        grad[p] = (grad[p] + weighted) * free[p]
    return 0.5 * penalty_sum - log_lik


@njit(cache=True)
def _row_terms(G, E, y, w, m, CG, CE):
    """The weighted log-likelihood ``sum_i w_i log sum_k pi_ik p_k(y_i)``
    from the gate logits ``G`` (n, K) and the experts' logits ``E``
    (n, K m); writes its derivatives with respect to them, negated, into
    ``CG`` (``w_i (pi_ik - posterior_ik)``) and ``CE``. ``m`` logits per
    expert: 1 (binary: ``p(y=1) = expit(z)``) or one per class (softmax)."""
    n, K = G.shape
    lp = np.empty(K)
    pi = np.empty(K)
    dz = np.empty(K * m)
    total = 0.0
    for i in range(n):
        top = G[i, 0]
        for k in range(1, K):
            top = max(top, G[i, k])
        s = 0.0
        for k in range(K):
            pi[k] = np.exp(G[i, k] - top)
            s += pi[k]
        log_norm = top + np.log(s)
        for k in range(K):
            pi[k] /= s
        for k in range(K):
            if m == 1:
                sign = 1.0 if y[i] == 1 else -1.0
                t = sign * E[i, k]
                # log expit(t), and d/dz = sign * expit(-t), both stable
                e = np.exp(-abs(t))
                if t >= 0.0:
                    log_p = -np.log1p(e)
                    dz[k] = sign * e / (1.0 + e)
                else:
                    log_p = t - np.log1p(e)
                    dz[k] = sign / (1.0 + e)
            else:
                top_z = E[i, k * m]
                for c in range(k * m + 1, (k + 1) * m):
                    top_z = max(top_z, E[i, c])
                s = 0.0
                for c in range(k * m, (k + 1) * m):
                    dz[c] = np.exp(E[i, c] - top_z)
                    s += dz[c]
                log_p = E[i, k * m + y[i]] - top_z - np.log(s)
                for c in range(k * m, (k + 1) * m):
                    dz[c] = -dz[c] / s
                dz[k * m + y[i]] += 1.0
            lp[k] = G[i, k] - log_norm + log_p
        top = lp[0]
        for k in range(1, K):
            top = max(top, lp[k])
        s = 0.0
        for k in range(K):
            lp[k] = np.exp(lp[k] - top)
            s += lp[k]
        total += w[i] * (top + np.log(s))
        for k in range(K):
            r = w[i] * lp[k] / s
            CG[i, k] = w[i] * pi[k] - r
            for c in range(k * m, (k + 1) * m):
                CE[i, c] = -r * dz[c]
    return total
