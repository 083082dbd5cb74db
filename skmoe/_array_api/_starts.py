"""The initial responsibilities of a fit in the namespace: those of
``init="random"`` or a given array (moved once to the device), and
``init="auto"``, the initialisation pool of :mod:`skmoe._pool` run on the
device (:func:`run_pool`)."""

import copy
import dataclasses
import warnings

import numpy as np

from .. import _pool
from .._em import EMData, EMState, run_em
from .._experts import make_experts
from .._init import initial_responsibilities
from ._arrays import weighted_standardization
from ._gate import prepare_gate
from ._logistic import LogisticPasses
from ._namespace import array_api_compat, namespace, to_numpy_array
from ._passes import ArrayAPIPasses


def initial_resp(estimator, xp, X, n_experts, rng, i_init):
    """The initial responsibilities: drawn on the host (``init="random"``) or
    given, then moved once to the device of ``X``."""
    init = estimator.init
    if not isinstance(init, str) and namespace(init) is xp:
        init = to_numpy_array(init)
    resp = initial_responsibilities(
        init, None, X, None, None, n_experts, rng, i_init
    )
    return xp.asarray(resp, dtype=X.dtype, device=array_api_compat.device(X))


def _one_hot(xp, labels, n_experts, dtype):
    """Hard responsibilities ``(m, K)`` from integer ``labels`` (on the device)."""
    dev = array_api_compat.device(labels)
    return xp.astype(
        xp.reshape(labels, (-1, 1))
        == xp.reshape(xp.arange(n_experts, device=dev), (1, -1)),
        dtype,
    )


def _quantile_labels(xp, t, n_experts, rng):
    """Labels by ``n_experts - 1`` uniform-random quantile cut points of ``t``
    (:func:`skmoe._pool._random_cuts`: linear interpolation between order
    statistics, as :func:`numpy.quantile`), computed on the device."""
    q = np.sort(rng.uniform(size=n_experts - 1))
    dev = array_api_compat.device(t)
    s = xp.sort(t)
    pos = q * (t.shape[0] - 1)
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    s_lo = xp.take(s, xp.asarray(lo, device=dev))
    s_hi = xp.take(s, xp.asarray(hi, device=dev))
    frac = xp.asarray(pos - lo, dtype=t.dtype, device=dev)
    cuts = s_lo + frac * (s_hi - s_lo)
    return xp.searchsorted(cuts, t, side="left")


class _Projector:
    """Projections ``((D - mean) / scale) @ direction`` of the weighted
    standardised columns of ``D`` (:class:`skmoe._pool._Scaled`), on the
    device; only ``d``-vectors and a ``d x d`` matrix cross to the host."""

    def __init__(self, xp, D, sw, total):
        self.xp, self.D, self.sw, self.total = xp, D, sw, total
        self.mean, self.scale = weighted_standardization(xp, D, sw, total)

    def project(self, direction):
        xp = self.xp
        v = xp.asarray(direction, dtype=self.D.dtype, device=array_api_compat.device(self.D))
        v = v / self.scale
        return self.D @ v - xp.sum(self.mean * v)

    def principal_axis(self):
        """The first eigenvector of the weighted covariance of the
        standardised columns (:func:`skmoe._init._first_principal_axis`;
        the ``d x d`` matrix is decomposed on the host)."""
        S = (self.D - self.mean) / self.scale
        C = to_numpy_array(((S * self.sw[:, None]).T @ S) / self.total)
        return np.linalg.eigh(C)[1][:, -1]


def _columns(xp, data):
    """The columns the random directions cut, as ``likelihood.init_columns``
    on NumPy: ``[X, y]`` for the regressor, ``X`` for the classifier (not
    the labels, which would split by class rather than by region)."""
    if isinstance(data.passes, LogisticPasses):
        return data.X
    return xp.concat([data.X, xp.reshape(data.y, (-1, 1))], axis=1)


def pool_starts(xp, data, n_experts, rng, sizes):
    """The hard starts of one pool, built on the device: random balanced
    partitions (labels drawn on the host: ``m`` integers each), and
    random quantile cuts along the gate inputs' first principal axis and
    along Gaussian random directions in the standardised ``[X, y]``; and
    the k-means start, computed on the host from the pool's rows
    (:func:`_kmeans_start`)."""
    m = data.X.shape[0]
    dev = array_api_compat.device(data.X)
    dtype = data.X.dtype
    n_random, n_axis, n_proj = sizes
    starts = []
    for _ in range(n_random):
        labels = xp.asarray(rng.permutation(m) % n_experts, device=dev)
        starts.append(_one_hot(xp, labels, n_experts, dtype))
    D = _Projector(xp, _columns(xp, data), data.sample_weight, data.total)
    if n_axis:
        Z = _Projector(xp, data.Z, data.sample_weight, data.total)
        t = Z.project(Z.principal_axis())
        if not float(xp.max(t) - xp.min(t)) > 0:
            t = D.project(D.principal_axis())
        for _ in range(n_axis):
            starts.append(_one_hot(xp, _quantile_labels(xp, t, n_experts, rng), n_experts, dtype))
    for _ in range(n_proj):
        t = D.project(rng.normal(size=D.D.shape[1]))
        starts.append(_one_hot(xp, _quantile_labels(xp, t, n_experts, rng), n_experts, dtype))
    starts.append(_kmeans_start(xp, data, n_experts, rng))
    return starts


def _kmeans_start(xp, data, n_experts, rng):
    """The k-means start of the NumPy pool (:func:`skmoe._init.initial_responsibilities`
    with ``"kmeans"``), run on the host on a copy of the pool's rows: at most
    ``SUBSAMPLE_ABOVE`` rows of ``[X, y]`` go to the host, ``(m, K)``
    responsibilities come back."""
    resp = initial_responsibilities(
        "kmeans", data.likelihood, to_numpy_array(data.X), to_numpy_array(data.y),
        to_numpy_array(data.sample_weight), n_experts, rng, 0,
    )
    return xp.asarray(resp, dtype=data.X.dtype, device=array_api_compat.device(data.X))


def degenerate(result, data):
    """:func:`skmoe._pool.degenerate` for a run in the namespace (reads the
    ``K`` shares and variances only)."""
    floor = getattr(data.likelihood, "variance_floor_", None)
    theta = result.state.theta
    if floor is None or theta is None or result.usage is None:
        return []
    n, n_coef = data.X.shape[0], data.X.shape[1] + 1
    usage = to_numpy_array(result.usage)
    theta = to_numpy_array(theta)
    return [
        k for k in range(usage.shape[0])
        if n * usage[k] < n_coef + 1 or theta[k] < _pool.FLOOR_MULTIPLE * floor
    ]


def subsample(xp, data, gate, rows):
    """The data of ``rows`` (host indices), taken on the device with
    ``xp.take``, and the gate prepared on them."""
    idx = xp.asarray(rows, device=array_api_compat.device(data.X))
    X = xp.take(data.X, idx, axis=0)
    y = xp.take(data.y, idx, axis=0)
    sw = xp.take(data.sample_weight, idx, axis=0)
    passes = data.passes
    if isinstance(passes, LogisticPasses):
        passes = LogisticPasses(
            xp, passes.classes, xp.take(passes.yenc, idx, axis=0),
            xp.take(passes.Y, idx, axis=0),
        )
    else:
        passes = ArrayAPIPasses(xp)

    sub = EMData(X, y, sw, X, data.likelihood, passes=passes)
    return sub, prepare_gate(xp, copy.deepcopy(gate), X, sw, sub.total)


#: What a short run may raise on a start the experts cannot be fit on (an
#: emptied expert, a singular system): the other starts decide.
_START_ERRORS = (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)


def run_pool(xp, data, prototypes, gate, config, rng, pool):
    """One pool of ``init="auto"`` (:func:`skmoe._pool.run_pool`) in the
    namespace: short :func:`~skmoe._em.run_em` runs from :func:`pool_starts`
    (on a device subsample of ``SUBSAMPLE_ROWS`` rows above
    ``SUBSAMPLE_ABOVE``), raced (:func:`skmoe._pool.race`), the best
    ``n_continue`` continued to convergence, and, when subsampled, one
    full-data run from the winner's responsibilities. Returns the kept result with
    ``init_objectives``, ``candidates``, ``disagree`` as on NumPy."""
    sizes, short_iter, n_continue = pool
    n, K = data.X.shape[0], len(prototypes)
    sub, sub_gate = data, gate
    if n > _pool.SUBSAMPLE_ABOVE:
        rows = np.sort(rng.choice(n, _pool.SUBSAMPLE_ROWS, replace=False))
        sub, sub_gate = subsample(xp, data, gate, rows)
    short = dataclasses.replace(config, max_iter=short_iter, tol=-np.inf, verbose=0)
    long = dataclasses.replace(config, verbose=0)
    runs, error = [], None

    def advance(runs, run_config):
        return [run_em(sub, r.state, run_config, rng, [r.resp]) for r in runs]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for resp in pool_starts(xp, sub, K, rng, sizes):
            state = EMState(make_experts(prototypes, rng), copy.deepcopy(sub_gate))
            try:
                runs.append(run_em(sub, state, short, rng, [resp]))
            except _START_ERRORS as exc:
                error = exc
        if not runs:
            raise error
        objectives = np.array([r.objective for r in runs])
        finals = advance(_pool.race(runs, sub, short, n_continue, advance), long)
    best, disagree = _pool.kept_run(finals, sub)
    if sub is not data:
        resp = data.passes.e_pass(data, best.state)[0]
        state = EMState(make_experts(prototypes, rng), copy.deepcopy(gate))
        best = run_em(data, state, config, rng, [resp])
    best.init_objectives = objectives
    best.candidates = np.array([r.objective for r in finals])
    best.disagree = disagree
    return best
