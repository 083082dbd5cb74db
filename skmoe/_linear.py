"""Batched weighted least squares for LinearRegression and Ridge experts.

Refitting ``K`` linear experts by calling their ``fit`` with
``sample_weight`` costs ``K`` validations of ``X``, ``K`` weighted copies of
it and ``K`` dense solves per EM iteration. Here the ``K`` weighted normal
equations are accumulated together from fixed chunks of rows (a few
BLAS products per chunk, on the threads of ``skmoe._threaded``), then each
``(n_features + 1)``-square system is solved directly. The fitted attributes
are those scikit-learn's own ``fit`` sets, to 1e-8 (the tests check it).

Only plain :class:`~sklearn.linear_model.LinearRegression` and
:class:`~sklearn.linear_model.Ridge` objects (not subclasses) with
``positive=False`` qualify, Ridge only with a scalar ``alpha > 0`` and an
exact dense solver (``"auto"``, ``"cholesky"`` or ``"svd"``). A system whose
condition number (after scaling its columns) exceeds ``_MAX_COND`` -- where
the normal equations could lose digits against scikit-learn's
least-squares solvers -- is handed back, and that expert is fitted by its own
``fit`` like any other.

LogisticRegression experts (L2 penalty or none, any solver but liblinear)
are fitted together in the same way by Newton's method on their exact
objective (:func:`fit_logistic_experts`): each iteration is one pass over
chunks of rows for all the experts (one product with the stacked parameters,
one for the gradients, weighted Gram products for the Hessians), warm-started
from the experts' current coefficients; :func:`predict_proba_logistic` scores
them with one product.
"""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from numba import njit
from numpy.linalg import LinAlgError
from scipy.linalg import cho_solve
from scipy.special import expit, softmax
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from . import _threaded
from ._ridge import StandardizedRidge

# Rows per chunk of the accumulation (results do not depend on the threads).
_CHUNK = 8192
# Above this condition number of the column-scaled normal equations the
# expert takes scikit-learn's own fit (normal equations square it).
_MAX_COND = 1e4


#: Sparse X with more columns than this keeps the experts' own sparse solvers:
#: the batched path forms a dense (n_features + 1)-square Gram matrix per
#: expert and decomposes it, which wide one-hot data cannot afford.
MAX_SPARSE_COLUMNS = 512


def takes_data(X):
    """Whether the batched solvers take ``X``: dense, or sparse and narrow
    (at most :data:`MAX_SPARSE_COLUMNS` columns)."""
    return not sp.issparse(X) or X.shape[1] <= MAX_SPARSE_COLUMNS


def batchable(expert):
    """Whether ``expert`` can be fitted by :func:`fit_linear_experts`."""
    kind = type(expert)
    if kind is LinearRegression:
        return not expert.positive
    if kind is StandardizedRidge:
        return isinstance(expert.alpha, Real) and not isinstance(expert.alpha, bool)
    if kind is Ridge:
        return (
            not expert.positive
            and expert.solver in ("auto", "cholesky", "svd")
            and isinstance(expert.alpha, Real)
            and not isinstance(expert.alpha, bool)
            and expert.alpha > 0
        )
    return False


def _chunk_grams(X, y, weights, means, grams, start, stop):
    """Add the centred weighted Gram matrices of rows ``start:stop``."""
    d = X.shape[1]
    block = np.empty((min(_CHUNK, stop - start), d + 1))
    for c0 in range(start, stop, _CHUNK):
        c1 = min(c0 + _CHUNK, stop)
        rows = c1 - c0
        chunk = block[:rows]
        chunk[:, :d] = X[c0:c1]
        chunk[:, d] = y[c0:c1]
        g = grams[c0 // _CHUNK]
        sqrt_w = np.sqrt(weights[c0:c1])
        for k in range(weights.shape[1]):
            s = (chunk - means[k]) * sqrt_w[:, k : k + 1]
            g[k] = s.T @ s


def _sparse_grams(X, y, weights, means):
    """Centred weighted Gram matrices of a sparse ``X``, shape (K, d+1, d+1).

    ``X^T W X`` is formed sparse (its cost is that of the non-zeros, never
    ``n x d`` dense), then centred with the weighted means:
    ``sum_i w_i (x_i - m)(x_i - m)^T = X^T W X - W m m^T`` for the weighted
    mean ``m`` (``m = 0`` without an intercept). Returns None when the
    centring cancels so much of a diagonal (over 1e-6 of it) that the
    subtraction could lose digits against the dense, centred accumulation;
    the experts then take their own ``fit``.
    """
    X = sp.csr_matrix(X)
    n, d = X.shape
    K = weights.shape[1]
    grams = np.empty((K, d + 1, d + 1))
    for k in range(K):
        w = weights[:, k]
        Xw = sp.diags(w) @ X
        xx = (X.T @ Xw).toarray()
        xy = Xw.T @ y
        yy = w @ (y * y)
        raw_diag = np.append(np.diag(xx), yy)
        W = w.sum()
        m = means[k]
        g = grams[k]
        g[:d, :d] = xx - W * np.outer(m[:d], m[:d])
        g[:d, d] = g[d, :d] = xy - W * m[:d] * m[d]
        g[d, d] = yy - W * m[d] * m[d]
        cent_diag = np.diag(g)
        if np.any(cent_diag < 1e-6 * raw_diag):
            return None
    return grams


def fit_linear_experts(experts, X, y, weights):
    """Fit LinearRegression / Ridge experts to weighted data, all together.

    Parameters
    ----------
    experts : list of estimators
        Experts for which :func:`batchable` is True.
    X : ndarray of shape (n_samples, n_features), float64, C-contiguous, \
            or sparse matrix (CSR or CSC)
        Training data. A sparse ``X`` takes the same exact normal equations
        (its Gram matrix is cheap), so that it gives the model of its dense
        copy.
    y : ndarray of shape (n_samples,), float64
        Targets.
    weights : ndarray of shape (n_samples, len(experts)), float64
        Non-negative sample weights of every expert (each with a positive
        sum).

    Returns
    -------
    fitted : list of bool
        ``fitted[k]`` is True when ``experts[k]`` now holds the fitted
        attributes of ``experts[k].fit(X, y, sample_weight=weights[:, k])``,
        False when its system was too ill-conditioned and it was left
        untouched (fit it the normal way). All False for a sparse ``X``
        whose centring would lose digits (see :func:`_sparse_grams`).
    """
    n, d = X.shape
    K = len(experts)
    weights = np.ascontiguousarray(weights)
    wsum = weights.sum(axis=0)
    intercepts = np.array([e.fit_intercept for e in experts])
    with _threaded.single_threaded_blas():
        # Weighted means of [X, y] (zero for experts without an intercept).
        means = np.zeros((K, d + 1))
        if intercepts.any():
            means[:, :d] = (X.T @ weights).T if sp.issparse(X) else weights.T @ X
            means[:, d] = y @ weights
            means /= wsum[:, None]
            means[~intercepts] = 0.0
        if sp.issparse(X):
            gram = _sparse_grams(X, y, weights, means)
            if gram is None:
                return [False] * K
        else:
            n_chunks = -(-n // _CHUNK)
            grams = np.empty((n_chunks, K, d + 1, d + 1))
            _threaded.run_chunks(
                _chunk_grams, n, _CHUNK, X, y, weights, means, grams
            )
            # Fixed-order sum over the chunks.
            gram = np.add.reduce(grams, axis=0)
    return solve_linear_experts(experts, gram, means)


def _standardized_scale(expert, d):
    """The column scales of a StandardizedRidge expert's penalty, or None
    (no ``scale`` set, or one of the wrong shape: left to its own fit)."""
    if expert.scale is None:
        return None
    scale = np.asarray(expert.scale, dtype=np.float64).reshape(-1)
    if scale.shape != (d,) or not np.all(scale > 0):
        return None
    return scale


def _penalty_diagonal(expert, d):
    """What the expert's penalty adds to the diagonal of its normal
    equations: nothing for a LinearRegression, ``alpha`` for a Ridge,
    ``alpha * s**2`` for a StandardizedRidge with the scales ``s`` fixed by
    the mixture (its training data's scale); None for a StandardizedRidge
    without one (its own fit computes its weighted scale)."""
    if type(expert) is Ridge:
        return np.full(d, float(expert.alpha))
    if type(expert) is StandardizedRidge:
        scale = _standardized_scale(expert, d)
        return None if scale is None else float(expert.alpha) * scale**2
    return np.zeros(d)


def _set_solution(expert, coef, intercept, gram):
    """The fitted attributes of a LinearRegression, Ridge or
    StandardizedRidge expert with coefficients ``coef``; ``gram``: its
    weighted Gram matrix of the centred ``X``."""
    d = coef.shape[0]
    expert.n_features_in_ = d
    expert.coef_ = coef
    if type(expert) is StandardizedRidge:
        expert.scale_ = _standardized_scale(expert, d)
    elif type(expert) is Ridge:
        expert.n_iter_ = None
        expert.solver_ = "svd" if expert.solver == "svd" else "cholesky"
    else:
        expert.rank_ = d
        # Singular values of the centred, sqrt-weighted X.
        expert.singular_ = np.sqrt(np.maximum(np.linalg.eigvalsh(gram)[::-1], 0.0))
    expert.intercept_ = np.float64(intercept) if expert.fit_intercept else 0.0


def solve_linear_experts(experts, gram, means):
    """Set the fitted attributes of the experts from their normal equations.

    ``gram[k]`` is the ``(d + 1)``-square weighted Gram matrix of ``[X, y]``,
    centred at ``means[k]`` (the weighted means of ``[X, y]``, zero for an
    expert without an intercept). Every expert's system is solved through
    the eigendecomposition of its normal matrix scaled to a unit diagonal,
    all of them in one batched call. An expert whose system is not finite
    (squares of values above ~1e154 overflow), not positive definite or
    worse conditioned than ``_MAX_COND`` is left to its own fit. Returns
    the ``fitted`` list of :func:`fit_linear_experts`.
    """
    d = gram.shape[1] - 1
    fitted = [False] * len(experts)
    penalties = {
        k: _penalty_diagonal(expert, d)
        for k, expert in enumerate(experts)
        if np.isfinite(gram[k]).all()
    }
    solvable = [k for k, p in penalties.items() if p is not None]
    if not solvable:
        return fitted
    A = gram[solvable, :d, :d].copy()
    A[:, np.arange(d), np.arange(d)] += np.array([penalties[k] for k in solvable])
    rhs = gram[solvable, :d, d]
    diag = np.sqrt(np.maximum(np.diagonal(A, axis1=1, axis2=2), 0.0))
    positive = np.all(diag > 0.0, axis=1)
    diag[~positive] = 1.0  # not solved here: any scale keeps eigh finite
    vals, vecs = np.linalg.eigh(A / diag[:, :, None] / diag[:, None, :])
    for j, k in enumerate(solvable):
        if not positive[j] or vals[j, 0] <= 0.0 or vals[j, -1] > _MAX_COND * vals[j, 0]:
            continue
        V = vecs[j]
        coef = (V @ ((V.T @ (rhs[j] / diag[j])) / vals[j])) / diag[j]
        intercept = means[k, d] - means[k, :d] @ coef if experts[k].fit_intercept else 0.0
        _set_solution(experts[k], coef, intercept, gram[k, :d, :d])
        fitted[k] = True
    return fitted


def predict_linear(experts, X, out):
    """Predictions of the fitted LinearRegression / Ridge experts, together.

    Parameters
    ----------
    experts : list of estimators
        Fitted experts.
    X : ndarray of shape (n_samples, n_features), float64, or sparse matrix
        Validated input.
    out : ndarray of shape (n_samples, len(experts))
        Receives ``X @ coef_ + intercept_`` in the columns of the experts
        that are plain LinearRegression or Ridge with 1-D ``coef_``.

    Returns
    -------
    done : list of bool
        Which columns were filled.
    """
    done = [
        type(e) in (LinearRegression, Ridge, StandardizedRidge)
        and getattr(e, "coef_", None) is not None
        and np.ndim(e.coef_) == 1
        and e.coef_.shape[0] == X.shape[1]
        for e in experts
    ]
    idx = [k for k, ok in enumerate(done) if ok]
    if idx:
        coef = np.column_stack([experts[k].coef_ for k in idx])
        intercept = np.array([float(experts[k].intercept_) for k in idx])
        with _threaded.single_threaded_blas():
            pred = np.asarray(X @ coef)
        pred += intercept
        out[:, idx] = pred
    return done


# ---------------------------------------------------------------------------
# Batched Newton fits of LogisticRegression experts
# ---------------------------------------------------------------------------
#
# scikit-learn's LogisticRegression (lbfgs, newton-cg, newton-cholesky, sag,
# saga; L2 penalty or none) minimises, for sample weights ``w`` summing to
# ``S``, ``(1/S) * (sum_i w_i * loss_i + ||coef||^2 / (2 C))``: the pointwise
# loss is averaged over the weight sum and the penalty strength is
# ``1 / (C S)`` (``_logistic_regression_path``), so the minimiser is that of
# ``sum_i w_i * loss_i + ||coef||^2 / (2 C)``, the objective used here. The
# intercept is not penalised. Binary problems have one logit (of
# ``classes[1]``), binomial loss; more classes have one logit per class
# (symmetric parametrisation), multinomial loss, with scikit-learn's
# conventions for the directions the loss cannot see: intercepts summing to
# zero over the classes, and also coefficients when ``C`` is infinite.

# A class whose total weight in an expert is at most this share of the
# expert's weight is "unseen" by that expert (see fit_logistic_experts).
_UNSEEN_SHARE = 1e-10
# An unseen class's logit is set this far below the smallest, over the
# training rows, of the largest seen logit: probability <= exp(-30).
_UNSEEN_GAP = 30.0
# Experts with more free parameters than this (number of logits times
# n_features + 1) are handed back: their dense Hessian would cost too much.
_MAX_NEWTON_PARAMS = 2000
# Armijo constant and the most halvings of a Newton step.
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
# Newton decrement (relative to the objective) below which f's rounding
# hides the decrease: the step is taken and the fit has converged.
_ROUNDING = 1e-12
_LOGISTIC_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")
# multi_class values (scikit-learn < 1.8) under which more classes are
# multinomial.
_MULTINOMIAL = ("auto", "multinomial", "deprecated")


def _l2_inverse_C(expert):
    """``1 / C`` of an L2-penalised (0.0: unpenalised) LogisticRegression.

    Returns None when the expert's penalty is not a plain L2 penalty (or
    none), following scikit-learn's reading of ``penalty``, ``l1_ratio`` and
    ``C`` (``penalty`` is deprecated since 1.8 in favour of ``l1_ratio``
    and ``C=np.inf``).
    """
    C = expert.C
    if isinstance(C, bool) or not isinstance(C, Real) or not C > 0:
        return None
    penalty = getattr(expert, "penalty", "l2")
    l1_ratio = getattr(expert, "l1_ratio", None)
    if penalty is None:
        return 0.0
    if penalty == "deprecated":
        if C == np.inf:
            return 0.0
        return 1.0 / C if l1_ratio is None or l1_ratio == 0 else None
    if penalty == "l2":
        return 0.0 if C == np.inf else 1.0 / C
    return None


def batchable_logistic(expert):
    """Whether ``expert`` can be fitted by :func:`fit_logistic_experts`.

    True for a plain :class:`~sklearn.linear_model.LogisticRegression` (not a
    subclass) with an L2 penalty or none, ``dual=False``,
    ``class_weight=None``, a solver that reaches the unique optimum of that
    objective (``"lbfgs"``, ``"newton-cg"``, ``"newton-cholesky"``,
    ``"sag"``, ``"saga"``; ``"liblinear"`` penalises the intercept and is
    excluded) and, in scikit-learn versions that still have
    ``multi_class``, the multinomial loss. ``warm_start`` does not matter:
    it changes where scikit-learn's solver starts, not the optimum.

    Parameters
    ----------
    expert : estimator
        Any estimator.

    Returns
    -------
    bool
        Whether the batched Newton fit gives this expert's own fit.
    """
    if type(expert) is not LogisticRegression:
        return False
    return (
        _l2_inverse_C(expert) is not None
        and not expert.dual
        and expert.class_weight is None
        and expert.solver in _LOGISTIC_SOLVERS
        and getattr(expert, "multi_class", "auto") in _MULTINOMIAL
    )


class _LogitModel:
    """One expert's logistic problem: parameters and which of them are free.

    ``theta`` has one row per logit (1 for two classes, else one per class)
    and ``n_features + 1`` columns, the last the intercept (kept at 0
    without ``fit_intercept``). ``free`` marks the entries Newton updates;
    ``masked`` the logits of unseen classes, held at minus infinity during
    the fit. ``drop`` marks the classes whose rows get zero weight.
    """

    def __init__(self, expert, n_classes, n_features, class_weights):
        self.binary = n_classes == 2
        self.fit_intercept = bool(expert.fit_intercept)
        self.inv_C = _l2_inverse_C(expert)
        m = 1 if self.binary else n_classes
        total = class_weights.sum()
        # No finite weight, or none at all: nothing to fit (handed back).
        self.usable = bool(np.isfinite(total) and total > 0)
        seen = class_weights > _UNSEEN_SHARE * total
        if not self.usable:
            seen[:] = True
        if not self.fit_intercept:
            # Without an intercept the optimum is finite; nothing is unseen.
            seen[:] = True
        self.seen = seen
        self.drop = ~seen
        self.theta = np.zeros((m, n_features + 1))
        self.free = np.ones((m, n_features + 1), dtype=bool)
        self.masked = np.zeros(m, dtype=bool)
        if not self.fit_intercept:
            self.free[:, -1] = False
        if self.binary:
            if not seen.all():
                self.free[:] = False
        else:
            self.masked = ~seen
            self.free[~seen] = False
            last = np.flatnonzero(seen)[-1]
            if self.inv_C == 0.0:
                # Unpenalised multinomial: fix the last seen class's row.
                self.free[last] = False
            elif self.fit_intercept:
                # Only the intercepts can shift together: fix the last one.
                self.free[last, -1] = False
        self.n_iter = 0

    def warm_start(self, expert, classes):
        """Start from the expert's fitted coefficients when they fit."""
        coef = getattr(expert, "coef_", None)
        intercept = getattr(expert, "intercept_", None)
        old = getattr(expert, "classes_", None)
        m, d1 = self.theta.shape
        if (
            coef is None
            or old is None
            or len(old) != len(classes)
            or not np.array_equal(old, classes)
            or np.shape(coef) != (m, d1 - 1)
        ):
            return
        start = np.zeros_like(self.theta)
        start[:, :-1] = coef
        if self.fit_intercept:
            start[:, -1] = np.broadcast_to(intercept, (m,))
        if not np.all(np.isfinite(start)):
            return
        if not self.binary:
            # Move the fixed entries to 0 along the directions the loss
            # cannot see (a common shift of the seen classes' logits).
            last = np.flatnonzero(self.seen)[-1]
            if self.inv_C == 0.0:
                start[self.seen] -= start[last]
            elif self.fit_intercept:
                start[self.seen, -1] -= start[last, -1]
        self.theta = np.where(self.free, start, 0.0)


def _logit_terms(model, z, y, w, need_hessian):
    """Loss, logit gradient and logit Hessian weights of one chunk.

    Returns the weighted loss sum, ``G`` (rows x logits) and, when asked, a
    dict ``(a, b) -> h`` of non-negative row weights (see
    :func:`_add_hessian`), else None.
    """
    if model.binary:
        yb = (y == 1).astype(np.float64)
        loss = float(w @ (np.logaddexp(0.0, z[:, 0]) - yb * z[:, 0]))
        p = expit(z[:, 0])
        G = (w * (p - yb))[:, None]
        hess = {(0, 0): w * p * (1.0 - p)} if need_hessian else None
        return loss, G, hess
    live = np.flatnonzero(~model.masked)
    n_pairs = len(live) * (len(live) - 1) // 2 if need_hessian else 0
    G = np.empty(z.shape)
    pairs = np.empty((z.shape[0], n_pairs))
    loss = _multinomial_terms(np.ascontiguousarray(z), y, w, model.masked, G, pairs)
    if not need_hessian:
        return loss, G, None
    keys = [(a, b) for i, a in enumerate(live) for b in live[i + 1 :]]
    return loss, G, {key: pairs[:, q] for q, key in enumerate(keys)}


@njit(cache=True)
def _multinomial_terms(z, y, w, masked, G, pairs):
    """Row loop of the multinomial loss, its logit gradient and Hessian weights.

    For each row: the softmax ``p`` over the unmasked logits, the weighted
    loss ``w (logsumexp(z) - z_y)`` (added to the returned sum when
    ``w > 0``), ``G = w (p - onehot(y))`` and, in ``pairs`` (whose columns
    are the pairs ``a < b`` of unmasked logits in order, or none),
    ``w p_a p_b``.
    """
    n_rows, m = z.shape
    p = np.empty(m)
    loss = 0.0
    for i in range(n_rows):
        top = -np.inf
        for a in range(m):
            if not masked[a] and z[i, a] > top:
                top = z[i, a]
        total = 0.0
        for a in range(m):
            p[a] = 0.0 if masked[a] else np.exp(z[i, a] - top)
            total += p[a]
        wi = w[i]
        if wi > 0.0:
            loss += wi * (top + np.log(total) - z[i, y[i]])
        for a in range(m):
            p[a] /= total
            G[i, a] = wi * p[a]
        G[i, y[i]] -= wi
        if pairs.shape[1]:
            q = 0
            for a in range(m):
                if masked[a]:
                    continue
                for b in range(a + 1, m):
                    if not masked[b]:
                        pairs[i, q] = wi * p[a] * p[b]
                        q += 1
    return loss


def _add_hessian(H, Xa, binary, terms):
    """Add one chunk's Hessian blocks to ``H`` (logits, d + 1, logits, d + 1).

    Binary: ``terms[(0, 0)]`` holds ``w p (1 - p)`` and the block is
    ``Xa.T @ diag(h) @ Xa``. Multinomial: ``terms[(a, b)]``, ``a < b``, holds
    ``w p_a p_b``; block ``(a, b)`` is minus ``Xa.T @ diag(h) @ Xa`` and,
    since each row's logit Hessian ``diag(p) - p p^T`` sums to zero along
    its rows, block ``(a, a)`` is minus the sum of the other blocks of its
    row: C(C-1)/2 Gram products instead of C(C+1)/2, each a symmetric
    product of one scaled copy of the chunk.
    """
    for (a, b), h in terms.items():
        scaled = Xa * np.sqrt(h)[:, None]
        gram = scaled.T @ scaled
        if binary:
            H[0, :, 0, :] += gram
            continue
        H[a, :, b, :] -= gram
        H[b, :, a, :] -= gram
        H[a, :, a, :] += gram
        H[b, :, b, :] += gram


def _accumulate(X, y, weights, models, thetas, idx, need_hessian):
    """Objective, gradient and Hessian of experts ``idx`` at ``thetas``.

    One pass over fixed chunks of rows: one product of the chunk with all
    the stacked parameters, one for all the gradients, and weighted Gram
    products for the Hessians (see :func:`_add_hessian`).
    """
    n, d = X.shape
    sizes = [thetas[k].shape[0] for k in idx]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    stacked = np.vstack([thetas[k] for k in idx])
    loss = np.zeros(len(idx))
    grad = np.zeros((d + 1, offsets[-1]))
    hess = [
        np.zeros((s, d + 1, s, d + 1)) if need_hessian else None for s in sizes
    ]
    block = np.empty((min(_CHUNK, n), d + 1))
    block[:, d] = 1.0
    for c0 in range(0, n, _CHUNK):
        c1 = min(c0 + _CHUNK, n)
        Xa = block[: c1 - c0]
        Xa[:, :d] = X[c0:c1]
        y_c = y[c0:c1]
        Z = Xa @ stacked.T
        G_all = np.empty_like(Z)
        for j, k in enumerate(idx):
            model = models[k]
            w = weights[c0:c1, k]
            if model.drop.any():
                w = np.where(model.drop[y_c], 0.0, w)
            sl = slice(offsets[j], offsets[j + 1])
            part, G_all[:, sl], h = _logit_terms(model, Z[:, sl], y_c, w, need_hessian)
            loss[j] += part
            if need_hessian:
                _add_hessian(hess[j], Xa, model.binary, h)
        grad += Xa.T @ G_all
    out = []
    for j, k in enumerate(idx):
        theta, inv_C = thetas[k], models[k].inv_C
        g = grad[:, offsets[j] : offsets[j + 1]].T.copy()
        f = loss[j] + 0.5 * inv_C * np.sum(theta[:, :d] ** 2)
        g[:, :d] += inv_C * theta[:, :d]
        H = None
        if need_hessian:
            s = sizes[j]
            H = hess[j].reshape(s * (d + 1), s * (d + 1))
            coef_entries = np.ones((s, d + 1), dtype=bool)
            coef_entries[:, d] = False
            H[np.flatnonzero(coef_entries), np.flatnonzero(coef_entries)] += inv_C
        out.append((f, g, H))
    return out


def _newton_direction(free, f, g, H):
    """Newton step on the free entries ``free`` (flat indices) of ``g``.

    None when the free block of ``H`` is not positive definite or the step
    is not finite.
    """
    if not np.isfinite(f):
        return None
    try:
        lower = np.linalg.cholesky(H[free[:, None], free])
    except LinAlgError:
        return None
    step = cho_solve((lower, True), -g.ravel()[free], check_finite=False)
    if not np.all(np.isfinite(step)):
        return None
    full = np.zeros(g.size)
    full[free] = step
    return full.reshape(g.shape)


def _converged(step, theta, f, g, tol):
    """Whether Newton has converged (the step is then taken unchecked).

    Either no entry of the step exceeds ``tol * (1 + max |theta|)``, or the
    predicted decrease (the Newton decrement) is below the rounding of
    ``f``, where a line search can no longer judge; the step is
    quadratically accurate then.
    """
    small = np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(theta)))
    decrement = -float(np.sum(g * step))
    return small or decrement <= _ROUNDING * abs(f)


def batched_backtrack(thetas, state, steps, slopes, evaluate):
    """Backtracking (Armijo) line search along ``steps``, all experts together.

    ``steps`` and ``slopes`` (the directional derivatives ``g . step``) are
    keyed by expert; ``evaluate(trial, pending)`` returns the
    ``(objective, gradient, Hessian)`` of each expert of ``pending`` at its
    ``trial`` point, in one pass. An accepted point replaces ``thetas[k]``
    and ``state[k]`` (a list or a dict). Returns the experts for which no
    step length gave a decrease. Shared by the NumPy experts here and those
    in an array API namespace (:mod:`skmoe._array_api._logistic`).
    """
    length = dict.fromkeys(steps, 1.0)
    pending = list(steps)
    for _ in range(_MAX_HALVINGS):
        if not pending:
            break
        trial = {k: thetas[k] + length[k] * steps[k] for k in pending}
        results = evaluate(trial, pending)
        still = []
        for k, res in zip(pending, results):
            bound = state[k][0] + _ARMIJO * length[k] * slopes[k]
            if np.isfinite(res[0]) and res[0] <= bound:
                thetas[k], state[k] = trial[k], res
            else:
                length[k] *= 0.5
                still.append(k)
        pending = still
    return pending


def _line_search(X, y, weights, models, thetas, state, steps, need_hessian=True):
    """:func:`batched_backtrack` for the NumPy experts: each round evaluates,
    in one pass, the experts whose step is still being halved (without the
    Hessian unless ``need_hessian``: the last iteration's)."""
    slopes = {k: float(np.sum(state[k][1] * steps[k])) for k in steps}

    def evaluate(trial, pending):
        points = [trial.get(k, theta) for k, theta in enumerate(thetas)]
        return _accumulate(X, y, weights, models, points, pending, need_hessian)

    return batched_backtrack(thetas, state, steps, slopes, evaluate)


def _newton(X, y, weights, models, tol, max_iter, partial):
    """Damped Newton on every model with free parameters, together.

    Returns a bool array: which models converged (or, with ``partial``,
    were still decreasing their objective after ``max_iter`` iterations).
    """
    K = len(models)
    thetas = [m.theta for m in models]
    free = [np.flatnonzero(m.free.ravel()) for m in models]
    active = [k for k in range(K) if free[k].size]
    ok = np.ones(K, dtype=bool)
    state = {}
    if active:
        at_start = _accumulate(X, y, weights, models, thetas, active, True)
        state = dict(zip(active, at_start))
    for it in range(1, max_iter + 1):
        if not active:
            break
        steps = {}
        for k in active:
            step = _newton_direction(free[k], *state[k])
            if step is None:
                ok[k] = False
                continue
            models[k].n_iter = it
            if _converged(step, thetas[k], *state[k][:2], tol):
                thetas[k] = thetas[k] + step
            else:
                steps[k] = step
        stuck = _line_search(
            X, y, weights, models, thetas, state, steps, need_hessian=it < max_iter
        )
        for k in stuck:
            # No decrease at all: at the optimum to rounding, or a failure.
            scale = max(1.0, weights[:, k].sum())
            ok[k] = np.max(np.abs(state[k][1])) <= 1e-8 * scale
        active = [k for k in steps if ok[k] and k not in stuck]
    for k in active:
        ok[k] = partial  # still moving after max_iter iterations
    for k in range(K):
        models[k].theta = thetas[k]
    return ok


def _min_max_logit(X, theta, seen):
    """Smallest, over the rows of ``X``, of the largest seen logit."""
    d = X.shape[1]
    low = np.inf
    for c0 in range(0, X.shape[0], _CHUNK):
        Z = X[c0 : c0 + _CHUNK] @ theta[seen, :d].T + theta[seen, d]
        low = min(low, float(Z.max(axis=1).min()))
    return low


def _final_parameters(model, X):
    """Coefficients and intercepts in scikit-learn's conventions.

    Unseen classes (see :func:`fit_logistic_experts`) get zero coefficients
    and an intercept ``_UNSEEN_GAP`` below every training row's largest
    seen logit.
    """
    theta = model.theta.copy()
    d = X.shape[1]
    if model.binary:
        if not model.seen.all():
            theta[0, d] = _UNSEEN_GAP if model.seen[1] else -_UNSEEN_GAP
        return theta[:, :d], theta[:, d]
    if not model.seen.all():
        if model.seen.sum() == 1:
            low = 0.0
        else:
            low = _min_max_logit(X, theta, model.seen)
        theta[~model.seen, d] = low - _UNSEEN_GAP
    if model.inv_C == 0.0:
        theta -= theta.mean(axis=0)
    elif model.fit_intercept:
        theta[:, d] -= theta[:, d].mean()
    return theta[:, :d], theta[:, d]


def _set_fitted(expert, coef, intercept, classes, n_iter):
    """Set the attributes scikit-learn's ``fit`` sets on a LogisticRegression."""
    if hasattr(expert, "feature_names_in_"):
        del expert.feature_names_in_
    expert.n_features_in_ = coef.shape[1]
    expert.classes_ = np.array(classes, copy=True)
    expert.n_iter_ = np.array([n_iter], dtype=np.int32)
    expert.coef_ = np.ascontiguousarray(coef)
    if expert.fit_intercept:
        expert.intercept_ = np.array(intercept, dtype=np.float64)
    else:
        expert.intercept_ = np.zeros(coef.shape[0])


def fit_logistic_experts(
    experts, X, y_encoded, classes, weights, *, tol=1e-8, max_iter=100, partial=False
):
    """Fit LogisticRegression experts to weighted data, all together.

    Each expert's objective is scikit-learn's for
    ``expert.fit(X, classes[y_encoded], sample_weight=weights[:, k])``,
    minimised by Newton's method with a backtracking (Armijo) line search
    from the expert's current ``coef_`` / ``intercept_`` when it has them
    for the same classes (the previous EM iteration's). Every iteration makes
    one pass over chunks of rows for all the experts still iterating; no
    weighted copy of ``X`` is made.

    Every expert is fitted on every class of ``classes`` (as scikit-learn is
    when zero-weight rows are kept in ``X``). A class whose weight in an
    expert is at most ``1e-10`` of that expert's total (with
    ``fit_intercept=True``) has no finite optimum: its logit tends to minus
    infinity. Such a class is "unseen": the other classes are fitted
    exactly as if its rows were absent (the limit of the objective), its
    coefficients are 0 and its intercept puts its probability below
    ``exp(-30)`` on every training row. scikit-learn's own solvers stop
    somewhere along that ray, at a point that depends on their tolerance.

    Parameters
    ----------
    experts : list of LogisticRegression
        Experts for which :func:`batchable_logistic` is True.
    X : ndarray of shape (n_samples, n_features), float64
        Training data (dense: sparse input is handed back).
    y_encoded : ndarray of shape (n_samples,), int
        Index of each row's class in ``classes``.
    classes : ndarray of shape (n_classes,)
        Sorted class labels (at least 2), set as every expert's
        ``classes_``.
    weights : ndarray of shape (n_samples, len(experts)), float64
        Non-negative sample weights of every expert (each with a positive
        sum).
    tol : float, default=1e-8
        Newton stops when no parameter's step exceeds ``tol`` times
        ``1 + max |parameter|``.
    max_iter : int, default=100
        Most Newton iterations; an expert still moving after them is handed
        back (unless ``partial``).
    partial : bool, default=False
        Keep the parameters of an expert still moving after ``max_iter``
        iterations (and report it fitted): every accepted step decreased its
        objective, so with a small ``max_iter`` this is a generalised-EM
        M-step, which still increases the mixture's likelihood but is no
        longer the expert's own fit until EM converges.

    Returns
    -------
    fitted : list of bool
        ``fitted[k]`` is True when ``experts[k]`` now holds the fitted
        attributes of its own ``fit`` on the weighted data (``coef_``,
        ``intercept_``, ``classes_``, ``n_features_in_``, ``n_iter_``),
        False when Newton failed (a singular Hessian, as when an unpenalised
        problem is separable, no convergence, or too many parameters) and
        it was left untouched: fit it the normal way.
    """
    if sp.issparse(X):
        return [False] * len(experts)
    X = np.asarray(X, dtype=np.float64)
    y_encoded = np.asarray(y_encoded, dtype=np.intp)
    weights = np.asarray(weights, dtype=np.float64)
    n_classes = len(classes)
    d = X.shape[1]
    class_weights = np.column_stack(
        [np.bincount(y_encoded, w, minlength=n_classes) for w in weights.T]
    )
    models = [
        _LogitModel(e, n_classes, d, class_weights[:, k]) for k, e in enumerate(experts)
    ]
    # Too many parameters for a dense Hessian, or no weight: handed back.
    skip = [m.free.sum() > _MAX_NEWTON_PARAMS or not m.usable for m in models]
    for model, expert, skipped in zip(models, experts, skip):
        if skipped:
            model.free[:] = False
        else:
            model.warm_start(expert, classes)
    with _threaded.single_threaded_blas():
        ok = _newton(X, y_encoded, weights, models, tol, max_iter, partial)
        fitted = []
        for model, expert, good, skipped in zip(models, experts, ok, skip):
            if skipped or not good:
                fitted.append(False)
                continue
            coef, intercept = _final_parameters(model, X)
            _set_fitted(expert, coef, intercept, classes, model.n_iter)
            fitted.append(True)
    return fitted


def _multinomial_lr(expert, n_classes):
    """Whether ``expert`` is a fitted LogisticRegression scored by a softmax."""
    coef = getattr(expert, "coef_", None)
    classes = getattr(expert, "classes_", None)
    if type(expert) is not LogisticRegression or coef is None or classes is None:
        return False
    if len(classes) != n_classes or np.ndim(coef) != 2:
        return False
    if n_classes == 2:
        return coef.shape[0] == 1
    multi_class = getattr(expert, "multi_class", "auto")
    return coef.shape[0] == n_classes and multi_class in _MULTINOMIAL


def predict_proba_logistic(experts, X, out):
    """``predict_proba`` of the fitted LogisticRegression experts, together.

    Parameters
    ----------
    experts : list of estimators
        Fitted experts.
    X : ndarray of shape (n_samples, n_features), float64
        Validated input.
    out : ndarray of shape (n_samples, len(experts), n_classes)
        Receives, in ``out[:, k, :]``, ``experts[k].predict_proba(X)`` for
        the experts that are plain LogisticRegression fitted on
        ``n_classes`` classes (binomial, or multinomial), from one product
        of ``X`` with all their stacked coefficients.

    Returns
    -------
    done : list of bool
        Which experts' slices were filled.
    """
    n_classes = out.shape[2]
    if sp.issparse(X):
        return [False] * len(experts)
    done = [
        _multinomial_lr(e, n_classes) and e.coef_.shape[1] == X.shape[1]
        for e in experts
    ]
    idx = [k for k, ok in enumerate(done) if ok]
    if not idx:
        return done
    coef = np.vstack([experts[k].coef_ for k in idx])
    intercept = np.concatenate(
        [
            np.broadcast_to(experts[k].intercept_, (experts[k].coef_.shape[0],))
            for k in idx
        ]
    )
    with _threaded.single_threaded_blas():
        Z = X @ coef.T
    Z += intercept
    m = coef.shape[0] // len(idx)
    for j, k in enumerate(idx):
        z = Z[:, j * m : (j + 1) * m]
        if n_classes == 2:
            p = expit(z[:, 0])
            out[:, k, 0] = 1.0 - p
            out[:, k, 1] = p
        else:
            out[:, k, :] = softmax(z, axis=1)
    return done
