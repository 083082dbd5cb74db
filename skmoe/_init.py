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
    t = np.asarray(D @ axis).ravel() - mean @ axis
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


def initial_responsibilities(init, likelihood, X, y, sample_weight, n_experts, rng, i_init):
    """Responsibilities that start restart ``i_init`` (``init`` as the estimator's)."""
    n_samples = X.shape[0]
    if not isinstance(init, str):
        return _check_init_array(init, n_samples, n_experts)
    # "auto" (a pool of starts, skmoe/_pool.py) starts a single run (a
    # warm start's growth, solver="gd", partial_fit) from k-means.
    if init == "random":
        labels = rng.permutation(n_samples) % n_experts
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
    resp[np.arange(n_samples), labels] = 1.0
    return resp
