"""Initial responsibilities of the mixtures: k-means, random partitions, arrays.

Also the deterministic weighted 2-means split (:func:`quantile_init_labels`
with two clusters) that collapse repair and growth use to divide an
expert's rows, on the scaled init columns built lazily by
:class:`LazyInitColumns`.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from . import _threaded
from ._gating import _CHUNK_ROWS, _weighted_standardization


def _first_principal_axis(D, mean, sample_weight, total, n_iter=100):
    """Leading eigenvector of the weighted covariance of ``D``.

    Dense data with few columns: an exact eigen-decomposition. Otherwise
    (sparse or wide data) power iteration with implicit centring, so a
    sparse ``D`` is never densified and no p x p matrix is formed. Both are
    deterministic functions of the weighted data.
    """
    n_cols = D.shape[1]
    if not sp.issparse(D) and n_cols <= 64:
        # Centred weighted covariance, chunk by chunk (no copy of D).
        cov = np.zeros((n_cols, n_cols))
        for c0 in range(0, D.shape[0], _CHUNK_ROWS):
            Dc = D[c0 : c0 + _CHUNK_ROWS] - mean
            cov += (Dc * sample_weight[c0 : c0 + _CHUNK_ROWS, None]).T @ Dc
        return np.linalg.eigh(cov / total)[1][:, -1]
    axis = np.full(n_cols, 1.0 / np.sqrt(n_cols))
    for _ in range(n_iter):
        u = np.asarray(D @ axis).ravel() - mean @ axis
        wu = sample_weight * u
        new = (np.asarray(D.T @ wu).ravel() - mean * wu.sum()) / total
        norm = np.linalg.norm(new)
        if norm == 0:
            return axis
        new /= norm
        if np.linalg.norm(new - axis) < 1e-10:
            return new
        axis = new
    return axis


def _row_projections(D, axis):
    """``D @ axis``, each row summed on its own in a fixed order.

    A BLAS matrix-vector product may round equal rows differently (a block
    of rows and the remainder take different kernels, which differ between
    CPUs): a repeated row would then fall on both sides of a quantile cut
    that is its own value. Row sums in NumPy's fixed order give equal rows
    equal projections on every machine.
    """
    if sp.issparse(D):
        return np.asarray(sp.csr_matrix(D).multiply(axis).sum(axis=1)).ravel()
    t = np.empty(D.shape[0])
    for c0 in range(0, D.shape[0], _CHUNK_ROWS):
        t[c0 : c0 + _CHUNK_ROWS] = np.sum(D[c0 : c0 + _CHUNK_ROWS] * axis, axis=1)
    return t


# Lloyd iterations of the deterministic k-means start (it rarely needs more;
# at a million rows each one costs about 0.1 s).
_INIT_LLOYD_ITER = 30


def quantile_init_labels(D, sample_weight, n_experts):
    """Deterministic, weight-aware initial partition.

    The rows are ordered along the weighted first principal axis of ``D`` and
    cut into ``n_experts`` slices of equal weight; the slices' weighted means
    seed Lloyd's algorithm. Everything here is a function of the weighted
    empirical distribution, so a weight of 2 and a duplicated row give the
    same start. ``D`` may be sparse.
    """
    total = sample_weight.sum()
    mean = np.asarray(sample_weight @ D).ravel() / total
    axis = _first_principal_axis(D, mean, sample_weight, total)
    # Fix the sign so the result does not depend on the eigen-solver.
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    t = _row_projections(D, axis) - mean @ axis
    # Cut at weighted quantile *values* (inverted CDF), so that equal rows
    # always land in the same slice whether repeated or weighted.
    order = np.argsort(t, kind="stable")
    cw = np.cumsum(sample_weight[order])
    targets = total * np.arange(1, n_experts) / n_experts
    cuts = t[order[np.minimum(np.searchsorted(cw, targets), len(t) - 1)]]
    labels = np.searchsorted(cuts, t, side="left")
    centers = np.empty((n_experts, D.shape[1]))
    for k in range(n_experts):
        w = sample_weight * (labels == k)
        if w.sum() > 0:
            centers[k] = np.asarray(w @ D).ravel() / w.sum()
        else:
            # An empty slice (ties): seed at the slice's quantile.
            q = min(np.searchsorted(cw, total * (k + 0.5) / n_experts), len(t) - 1)
            row = D[order[q]]
            centers[k] = np.asarray(row.todense() if sp.issparse(row) else row).ravel()
    # tol=0 (scikit-learn's tol is relative to the unweighted variance, which
    # a weight and a duplicated row change differently); a start for EM does
    # not need Lloyd run to its end, so at most _INIT_LLOYD_ITER iterations.
    # copy_x=False: k-means centres D in place and restores it, instead of
    # copying it (D is the caller's own scaled copy).
    km = KMeans(
        n_clusters=n_experts, init=centers, n_init=1, tol=0.0, algorithm="lloyd",
        max_iter=_INIT_LLOYD_ITER, copy_x=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return km.fit(D, sample_weight=sample_weight).labels_


class LazyInitColumns:
    """The init columns scaled to unit weighted variance, built on first call.

    Re-seeding and growth split an expert's rows with the deterministic
    2-means of the initialisation; scaling (not centring: the split is
    translation invariant) keeps a sparse ``X`` sparse, and nothing is built
    for a fit that repairs nothing.
    """

    def __init__(self, likelihood, X, y, sample_weight):
        self._args = (likelihood, X, y, sample_weight)
        self._D = None

    def __call__(self):
        if self._D is None:
            likelihood, X, y, sample_weight = self._args
            D = likelihood.init_columns(X, y)
            _, scale = _weighted_standardization(D, sample_weight)
            self._D = D @ sp.diags(1.0 / scale) if sp.issparse(D) else D / scale
        return self._D


def _kmeans_labels(D, sample_weight, n_experts, rng, i_init):
    """Labels of the k-means start (deterministic for restart 0)."""
    if i_init == 0:
        return quantile_init_labels(D, sample_weight, n_experts)
    # Later restarts must really differ: k-means++ on a Bayesian bootstrap
    # of the rows (random exponential weights), then every row goes to its
    # nearest centre.
    boot = sample_weight * rng.exponential(size=D.shape[0])
    km = KMeans(
        n_clusters=n_experts, n_init=1, random_state=rng.randint(np.iinfo(np.int32).max)
    )
    return km.fit(D, sample_weight=boot).predict(D)


def _check_init_array(init, n_samples, n_experts):
    resp = np.array(init, dtype=np.float64)
    if resp.shape != (n_samples, n_experts):
        raise ValueError(
            f"init as an array must have shape (n_samples, n_experts) = "
            f"({n_samples}, {n_experts}); got {resp.shape}."
        )
    if not np.all(np.isfinite(resp)) or np.any(resp < 0):
        raise ValueError("init as an array must be finite and non-negative.")
    sums = resp.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError("every row of init must have a positive sum.")
    return resp / sums


# Above this many rows, the k-means start clusters a fixed random subsample
# of this many rows and then labels every row by its nearest centre, in
# chunks: on a million rows the start costs a fraction of an EM iteration
# instead of several, and no scaled copy of ``X`` is made (a memmap stays
# on disk).
_INIT_SUBSAMPLE = 131072
# Lloyd iterations on every row after the subsample's (each one pass).
_INIT_FULL_LLOYD = 3


def _subsample_rows(n_samples):
    """The rows of the subsampled start: a function of the number of rows only."""
    return np.sort(
        np.random.default_rng(n_samples).choice(n_samples, _INIT_SUBSAMPLE, replace=False)
    )


def _subsample_centres(likelihood, X, y, sample_weight, n_experts, rng, i_init):
    """k-means on the subsample's rows: ``(centres, squared norms, scale)``."""
    D = np.asarray(likelihood.init_columns(X, y), dtype=np.float64)
    _, scale = _weighted_standardization(D, sample_weight)
    D /= scale
    labels = _kmeans_labels(D, sample_weight, n_experts, rng, i_init)
    centers = np.zeros((n_experts, D.shape[1]))
    c_sq = np.full(n_experts, np.inf)  # an empty cluster attracts no row
    for k in range(n_experts):
        w = sample_weight * (labels == k)
        if w.sum() > 0:
            centers[k] = (w @ D) / w.sum()
            c_sq[k] = centers[k] @ centers[k]
    return centers, c_sq, scale


def _lloyd_update(centers, sums, weight):
    """New centres from the weighted sums of their rows (an empty one stays put)."""
    owned = weight > 0
    centers = centers.copy()
    centers[owned] = sums[owned] / weight[owned, None]
    return centers, np.where(owned, np.sum(centers * centers, axis=1), np.inf)


def _subsampled_kmeans_labels(likelihood, X, y, sample_weight, n_experts, rng, i_init):
    """k-means start on a subsample of the rows, every row labelled after."""
    n_samples = X.shape[0]
    idx = _subsample_rows(n_samples)
    centers, c_sq, scale = _subsample_centres(
        likelihood, X[idx], y[idx], sample_weight[idx], n_experts, rng, i_init
    )
    labels = np.empty(n_samples, dtype=np.int32)
    n_chunks = -(-n_samples // _CHUNK_ROWS)
    sums = np.empty((n_chunks,) + centers.shape)
    weight = np.empty((n_chunks, n_experts))
    # A few Lloyd iterations on every row, chunk by chunk (on the threads of
    # skmoe._threaded; the chunks' sums added in a fixed order), from the
    # subsample's centres; the last one only labels the rows.
    for it in range(_INIT_FULL_LLOYD + 1):
        last = it == _INIT_FULL_LLOYD
        with _threaded.single_threaded_blas():
            _threaded.run_chunks(
                _lloyd_chunks, n_samples, _CHUNK_ROWS, likelihood, X, y, sample_weight,
                scale, centers, c_sq, labels, sums, weight, last,
            )
        if not last:
            centers, c_sq = _lloyd_update(
                centers, np.add.reduce(sums, axis=0), np.add.reduce(weight, axis=0)
            )
    return labels


def _lloyd_chunks(likelihood, X, y, sample_weight, scale, centers, c_sq, labels,
                  sums, weight, last, start, stop):
    """Label rows ``start:stop`` by their nearest centre; per-chunk weighted sums."""
    n_experts = len(c_sq)
    for c0 in range(start, stop, _CHUNK_ROWS):
        c1 = min(c0 + _CHUNK_ROWS, stop)
        Dc = np.asarray(likelihood.init_columns(X[c0:c1], y[c0:c1])) / scale
        # ||D - c||^2 up to the row's own norm.
        lab = np.argmin(c_sq - 2.0 * (Dc @ centers.T), axis=1)
        labels[c0:c1] = lab
        if not last:
            onehot = np.zeros((c1 - c0, n_experts))
            onehot[np.arange(c1 - c0), lab] = sample_weight[c0:c1]
            sums[c0 // _CHUNK_ROWS] = onehot.T @ Dc
            weight[c0 // _CHUNK_ROWS] = onehot.sum(axis=0)


def initial_responsibilities(init, likelihood, X, y, sample_weight, n_experts, rng, i_init):
    """Responsibilities that start restart ``i_init`` (``init`` as the estimator's)."""
    n_samples = X.shape[0]
    if not isinstance(init, str):
        return _check_init_array(init, n_samples, n_experts)
    # "auto" (a pool of starts, skmoe/_pool.py) starts a single run (a
    # warm start's growth, solver="gd", partial_fit) from k-means.
    if init == "random":
        labels = rng.permutation(n_samples) % n_experts
    elif n_samples > 2 * _INIT_SUBSAMPLE and not sp.issparse(X):
        labels = _subsampled_kmeans_labels(
            likelihood, X, y, sample_weight, n_experts, rng, i_init
        )
    else:
        D = likelihood.init_columns(X, y)
        # k-means is translation invariant: scaling is all it needs, and it
        # keeps sparse data sparse.
        _, scale = _weighted_standardization(D, sample_weight)
        if sp.issparse(D):
            D = D @ sp.diags(1.0 / scale)
        elif np.may_share_memory(D, X):
            D = D / scale  # never scale the caller's data in place
        else:
            D /= scale  # our own copy: no second one
        labels = _kmeans_labels(D, sample_weight, n_experts, rng, i_init)
    resp = np.zeros((n_samples, n_experts))
    for c0 in range(0, n_samples, _CHUNK_ROWS):  # no n-long index array
        c1 = min(c0 + _CHUNK_ROWS, n_samples)
        resp[np.arange(c0, c1), labels[c0:c1]] = 1.0
    return resp
