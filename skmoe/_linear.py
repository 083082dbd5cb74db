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
"""

from numbers import Real

import numpy as np
from sklearn.linear_model import LinearRegression, Ridge

from . import _threaded

# Rows per chunk of the accumulation (results do not depend on the threads).
_CHUNK = 8192
# Above this condition number of the column-scaled normal equations the
# expert takes scikit-learn's own fit (normal equations square it).
_MAX_COND = 1e4


def batchable(expert):
    """Whether ``expert`` can be fitted by :func:`fit_linear_experts`."""
    kind = type(expert)
    if kind is LinearRegression:
        return not expert.positive
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


def fit_linear_experts(experts, X, y, weights):
    """Fit LinearRegression / Ridge experts to weighted data, all together.

    Parameters
    ----------
    experts : list of estimators
        Experts for which :func:`batchable` is True.
    X : ndarray of shape (n_samples, n_features), float64, C-contiguous
        Training data.
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
        untouched (fit it the normal way).
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
            means[:, :d] = weights.T @ X
            means[:, d] = y @ weights
            means /= wsum[:, None]
            means[~intercepts] = 0.0
        n_chunks = -(-n // _CHUNK)
        grams = np.empty((n_chunks, K, d + 1, d + 1))
        _threaded.run_chunks(
            _chunk_grams, n, _CHUNK, X, y, weights, means, grams
        )
        # Fixed-order sum over the chunks.
        gram = np.add.reduce(grams, axis=0)
    return solve_linear_experts(experts, gram, means)


def solve_linear_experts(experts, gram, means):
    """Set the fitted attributes of the experts from their normal equations.

    ``gram[k]`` is the ``(d + 1)``-square weighted Gram matrix of ``[X, y]``,
    centred at ``means[k]`` (the weighted means of ``[X, y]``, zero for an
    expert without an intercept). Returns the ``fitted`` list of
    :func:`fit_linear_experts`.
    """
    d = gram.shape[1] - 1
    fitted = []
    for k, expert in enumerate(experts):
        A = gram[k, :d, :d].copy()
        rhs = gram[k, :d, d]
        is_ridge = type(expert) is Ridge
        if is_ridge:
            A[np.diag_indices(d)] += float(expert.alpha)
        diag = np.sqrt(np.maximum(np.diag(A), 0.0))
        if np.any(diag <= 0.0):
            fitted.append(False)
            continue
        As = A / diag[:, None] / diag[None, :]
        vals, vecs = np.linalg.eigh(As)
        if vals[0] <= 0.0 or vals[-1] > _MAX_COND * vals[0]:
            fitted.append(False)
            continue
        coef = (vecs @ ((vecs.T @ (rhs / diag)) / vals)) / diag
        if expert.fit_intercept:
            intercept = means[k, d] - means[k, :d] @ coef
        else:
            intercept = 0.0
        expert.n_features_in_ = d
        expert.coef_ = coef
        if is_ridge:
            expert.n_iter_ = None
            expert.solver_ = "svd" if expert.solver == "svd" else "cholesky"
        else:
            expert.rank_ = d
            # Singular values of the centred, sqrt-weighted X.
            expert.singular_ = np.sqrt(
                np.maximum(np.linalg.eigvalsh(gram[k, :d, :d])[::-1], 0.0)
            )
        expert.intercept_ = np.float64(intercept) if expert.fit_intercept else 0.0
        fitted.append(True)
    return fitted


def predict_linear(experts, X, out):
    """Predictions of the fitted LinearRegression / Ridge experts, together.

    Parameters
    ----------
    experts : list of estimators
        Fitted experts.
    X : ndarray of shape (n_samples, n_features), float64
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
        type(e) in (LinearRegression, Ridge)
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
            pred = X @ coef
        pred += intercept
        out[:, idx] = pred
    return done
