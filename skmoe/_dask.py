"""EM on dask arrays: per-block E-steps and tree-reduced statistics.

``MixtureOfExpertsRegressor.fit(X, y)`` with a dask array (or a dask
DataFrame) ``X`` runs here: the same EM as the in-memory chunked engine
(:mod:`skmoe._chunked`), with every pass over the rows a task per block of
rows and the sums -- the experts' weighted moments, the gate's loss,
gradient and Hessian, the log-likelihood -- added pairwise on the workers
(a tree reduction); only those small sums come back. The responsibilities
stay on the workers, one array per block. ``X`` is never gathered into one
process: the k-means start reads a subsample of the rows (as the in-memory
fit does above 262,144 rows; below, the start reads the rows of
``[X, y]`` to the client, as small data).

With a ``dask.distributed`` client the tasks run on its workers; without
one, in this process on dask's default scheduler (block by block).

Supported: LinearRegression and Ridge experts (plain, as in
:mod:`skmoe._linear`), the SoftmaxGate without ``balance``, soft
assignments, dense EM (no ``top_k``), ``gate_features=None``, ``init``
"kmeans" or "auto" (on a dask collection, ``"auto"`` is the k-means start:
the pool of short runs is for data in memory), one restart, no warm start. Anything else raises a ValueError
naming it: the other experts can learn from a dask collection block by block
with ``solver="gd"`` and ``partial_fit``.
"""

import operator
import time
import types

import numpy as np

from . import _chunked, _init, _linear
from ._em import EMResult, EMState
from ._gating import SoftmaxGate
from ._ridge import with_data_scale
from ._experts import estimator_name, make_experts


def is_dask_collection(X):
    """Whether ``X`` is a dask array or DataFrame (without importing dask)."""
    return type(X).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(
        X, "__dask_graph__"
    )


# ----------------------------------------------------------------------
# Running tasks: on the distributed client's workers, or here.
# ----------------------------------------------------------------------
class _Runner:
    def __init__(self):
        try:
            from distributed import get_client

            self.client = get_client()
        except (ImportError, ValueError):
            self.client = None

    def blocks(self, arr):
        """Handles of the row blocks of ``arr`` (futures on the workers)."""
        delayed = list(arr.to_delayed().ravel())
        if self.client is None:
            return delayed
        return self.client.compute(delayed)

    def map(self, func, *lists, **kwargs):
        if self.client is None:
            out = []
            for args in zip(*lists):
                args = [a.compute() if hasattr(a, "__dask_graph__") else a for a in args]
                out.append(func(*args, **kwargs))
            return out
        n = len(lists[0])
        return self.client.map(_on_one_thread, [func] * n, *lists, pure=False, **kwargs)

    def pick(self, handles, i):
        if self.client is None:
            return [h[i] for h in handles]
        return self.client.map(operator.itemgetter(i), handles, pure=False)

    def reduce(self, handles):
        """Sum of the results (tuples of arrays), pairwise on the workers."""
        if self.client is None:
            return _tree(handles, _add)
        level = list(handles)
        while len(level) > 1:
            nxt = [
                self.client.submit(_add, level[i], level[i + 1], pure=False)
                for i in range(0, len(level) - 1, 2)
            ]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0].result()

    def release(self, handles):
        if self.client is not None:
            for h in handles:
                h.release()


def _on_one_thread(func, *args, **kwargs):
    """Run a block task with one numba thread: the workers' own threads (and
    processes) already share the cores, block by block."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return func(*args, **kwargs)
    finally:
        numba.set_num_threads(before)


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


def _tree(values, func):
    values = list(values)
    while len(values) > 1:
        nxt = [func(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


# ----------------------------------------------------------------------
# Block tasks (module-level: they travel to the workers by pickle).
# ----------------------------------------------------------------------
def _c(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _block_sums(X, y, sw):
    X, y, sw = _c(X), _c(y), _c(sw)
    return (sw @ X, np.array([sw @ y, sw @ (y * y), sw.sum(), float(len(y))]))


def _block_centred(X, y, sw, mean_x, mean_y):
    X, y, sw = _c(X), _c(y), _c(sw)
    Xc = X - mean_x
    r = y - mean_y
    return (sw @ (Xc * Xc), np.array([sw @ (r * r)]))


def _block_lloyd(X, y, sw, centers, c_sq, scale, last):
    X, y, sw = _c(X), _c(y), _c(sw)
    D = np.column_stack([X, y]) / scale
    lab = np.argmin(c_sq - 2.0 * (D @ centers.T), axis=1)
    if last:
        resp = np.zeros((len(y), len(c_sq)))
        resp[np.arange(len(y)), lab] = 1.0
        return resp
    onehot = np.zeros((len(y), len(c_sq)))
    onehot[np.arange(len(y)), lab] = sw
    return (onehot.T @ D, onehot.sum(axis=0))


def _block_moments(X, y, sw, resp, shift):
    return _chunked.moments(_c(X), _c(y), _c(sw), resp, shift)


def _block_e_step(X, y, sw, arrays, shift):
    X = _c(X)
    resp, packed, ll = _chunked.e_step_moments(X, X, _c(y), _c(sw), arrays, shift)
    return resp, packed, np.array([ll])


def _block_gate(X, resp, sw, W, b):
    from . import _threaded

    loss, g_sum, ZtG = _threaded.gate_loss_grad(_c(X), W, b, resp, _c(sw))
    return (np.array([loss]), g_sum, ZtG)


def _block_gate_hessian(X, resp, sw, params, mean, scale):
    from ._gating import _gate_hessian

    return _gate_hessian(params, _c(X), resp, _c(sw), mean, scale, 0.0, 1.0)


class BlockGateData:
    """The gate's optimiser's view of the blocks: loss, gradient and Hessian
    as tree-reduced sums over the blocks (see :func:`skmoe._gating._gate_objective`)."""

    def __init__(self, runner, Xb, Rb, swb, shape):
        self.runner, self.Xb, self.Rb, self.swb = runner, Xb, Rb, swb
        self.shape = shape

    def loss_grad(self, W, b):
        parts = self.runner.map(_block_gate, self.Xb, self.Rb, self.swb, W=W, b=b)
        loss, g_sum, ZtG = self.runner.reduce(parts)
        return float(loss[0]), g_sum, ZtG

    def hessian(self, params, mean, scale, alpha, total):
        parts = self.runner.map(
            _block_gate_hessian, self.Xb, self.Rb, self.swb,
            params=params, mean=mean, scale=scale,
        )
        H = self.runner.reduce(parts)
        d, K = self.shape[1], len(params) // (self.shape[1] + 1)
        idx = np.arange(d * K)
        H[idx, idx] += alpha
        return H / total


# ----------------------------------------------------------------------
# The fit
# ----------------------------------------------------------------------
def _check_supported(est, prototypes):
    bad = [
        f"experts[{k}] ({estimator_name(p)})" if isinstance(est.experts, list)
        else f"experts ({estimator_name(p)})"
        for k, p in enumerate(prototypes)
        if not _linear.batchable(p)
    ]
    if bad:
        raise ValueError(
            "fit on a dask collection supports LinearRegression and Ridge experts "
            f"(plain, positive=False) only; got {', '.join(sorted(set(bad)))}. Fit "
            "other experts block by block with solver='gd' and partial_fit, e.g. "
            "for block in X.to_delayed(): moe.partial_fit(block.compute(), ...), "
            "or compute X into memory."
        )
    gate = est.gate if est.gate is not None else SoftmaxGate()
    problems = []
    if type(gate) is not SoftmaxGate or gate.balance > 0:
        problems.append("a SoftmaxGate without balance")
    if getattr(est, "likelihood", "gaussian") != "gaussian":  # its sums are Gaussian
        problems.append("likelihood='gaussian'")
    for name, want in [
        ("solver", "em"), ("assignment", "soft"), ("top_k", None), ("gate_features", None),
        ("init", ("auto", "kmeans")), ("n_init", 1), ("warm_start", False),
    ]:
        value = getattr(est, name, None)
        if not (value in want if isinstance(want, tuple) else value == want):
            problems.append(f"{name}={want!r}")
    if problems:
        raise ValueError(
            "fit on a dask collection needs " + ", ".join(problems) + "; compute X into "
            "memory (or a numpy.memmap) for the other settings."
        )
    return gate


def _as_dask_array(X, name):
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(X, dd.DataFrame):
        names = np.asarray(X.columns, dtype=object)
        return X.to_dask_array(lengths=True).astype(np.float64), names
    if isinstance(X, dd.Series):
        return X.to_dask_array(lengths=True).astype(np.float64), None
    if not isinstance(X, da.Array):
        X = da.asarray(X)
    return X.astype(np.float64), None


def _validated_blocks(X, y, sample_weight):
    """``X``, ``y`` and the sample weights as dask arrays with aligned row blocks."""
    import dask.array as da

    X, _ = _as_dask_array(X, "X")
    y, _ = _as_dask_array(y, "y")
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"Expected X 2-D and y 1-D; got shapes {X.shape} and {y.shape}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown block sizes; call X.compute_chunk_sizes() first.")
    X = X.rechunk({1: -1})
    y = y.rechunk((X.chunks[0],))
    if sample_weight is None:
        sw = da.ones(X.shape[0], chunks=(X.chunks[0],))
    else:
        sw, _ = _as_dask_array(sample_weight, "sample_weight")
        sw = sw.rechunk((X.chunks[0],))
    return X, y, sw


def _prepare(runner, blocks, est, gate):
    """Totals, the likelihood's variance floor and the gate's standardisation,
    in two passes (means, then centred squares). Returns ``(likelihood,
    total, shift, scale)``, ``shift`` the means of ``[X, y]`` the moments are
    taken around, ``scale`` the weighted column scales of ``X``."""
    Xb, yb, swb = blocks
    sx, s = runner.reduce(runner.map(_block_sums, Xb, yb, swb))
    total = s[2]
    if not total > 0:
        raise ValueError("sample_weight must have a positive sum.")
    mean_x, mean_y = sx / total, s[0] / total
    vx, vy = runner.reduce(runner.map(_block_centred, Xb, yb, swb, mean_x=mean_x,
                                      mean_y=mean_y))
    var_y = vy[0] / total
    lik = est._make_likelihood()
    scale_y = var_y if var_y > 0 else max(mean_y * mean_y, 1.0)
    lik.variance_floor_ = lik.reg_variance * scale_y
    gate_scale = np.sqrt(np.maximum(vx / total, 0.0))
    gate_scale[gate_scale <= 1e-12 * np.maximum(np.abs(mean_x), 1.0)] = 1.0
    gate.prepare_statistics(mean_x, gate_scale)
    return lik, total, np.concatenate([mean_x, [mean_y]]), gate_scale


def _run_em(est, runner, blocks, Rb, state, lik, total, shift, shape):
    """The EM iterations over the blocks (as :func:`skmoe._em.run_em`'s loop
    for the chunked engine): the experts and variances from the moments, the
    gate from its sums, then one pass of E-steps that also takes the next
    moments. Returns the result and the last responsibilities' blocks."""
    Xb, yb, swb = blocks
    n = shape[0]
    stats = _chunked.LinearStats(
        runner.reduce(runner.map(_block_moments, Xb, yb, swb, Rb, shift=shift)), shift
    )
    history, converged, prev, exact_gate, log_lik = [], False, -np.inf, False, -np.inf
    for n_iter in range(1, est.max_iter + 1):
        step_exact = exact_gate or est.gate_max_iter is None
        _m_step_experts(state, stats, n, total, lik)
        _gate_m_step(state.gate, BlockGateData(runner, Xb, Rb, swb, shape), total,
                     len(state.experts), None if step_exact else est.gate_max_iter)
        arrays = _chunked.model_arrays(state.experts, state.gate, state.theta)
        out = runner.map(_block_e_step, Xb, yb, swb, arrays=arrays, shift=shift)
        runner.release(Rb)
        Rb = runner.pick(out, 0)
        packed, ll = runner.reduce(_pair(runner, out))
        runner.release(out)
        stats = _chunked.LinearStats(packed, shift)
        log_lik = float(ll[0]) / total
        objective = log_lik - state.gate.penalty() / total
        change = objective - prev
        history.append(objective)
        if est.verbose:
            print(f"Iteration {n_iter:4d}: log-likelihood {log_lik:.6f}, change {change:.3e}")
        if change < est.tol and step_exact:
            converged = True
            break
        exact_gate = change < est.tol
        prev = objective
    result = EMResult(state, history, converged, n_iter, history[-1], log_lik, None)
    return result, Rb


def _m_step_experts(state, stats, n, total, lik):
    """The experts and the noise variances from the moments."""
    ok, theta, not_fitted = _chunked.m_step_stats(
        state.experts, state.theta, stats, n, total, lik
    )
    if not ok or not_fitted:
        raise ValueError(
            "An expert lost its training weight (or its normal equations are too "
            "ill-conditioned) during EM on the dask collection, which has no "
            "collapse repair; use fewer experts, or fit in memory."
        )
    state.theta = theta


def fit(est, X, y, sample_weight=None):
    """Fit ``est`` (a MixtureOfExpertsRegressor) on dask collections."""
    t_start = time.perf_counter()
    X, y, sw = _validated_blocks(X, y, sample_weight)
    prototypes = est._expert_prototypes()
    gate = _check_supported(est, prototypes)
    gate = type(gate)(**gate.get_params())  # a fresh clone
    runner = _Runner()
    blocks = (runner.blocks(X), runner.blocks(y), runner.blocks(sw))
    lik, total, shift, scale = _prepare(runner, blocks, est, gate)
    prototypes = with_data_scale(prototypes, scale)
    # The k-means start: the in-memory fit's, from the same rows.
    rng = est.random_state
    if not isinstance(rng, np.random.RandomState):
        rng = np.random.RandomState(rng)
    Rb = _start(runner, X, y, sw, *blocks, lik, len(prototypes), rng)
    state = EMState(make_experts(prototypes, rng), gate)
    result, Rb = _run_em(est, runner, blocks, Rb, state, lik, total, shift, X.shape)
    result.usage = runner.reduce(runner.map(_block_usage, Rb, blocks[2])) / total
    runner.release(Rb)
    est.n_features_in_ = X.shape[1]
    est.__dict__.pop("feature_names_in_", None)
    data = types.SimpleNamespace(X=X, Z=X, likelihood=lik)
    est._finish_dask_fit(result, data, t_start)
    return est


def _pair(runner, out):
    """The (moments, log-likelihood) of every E-step block, as tuples."""
    if runner.client is None:
        return [(o[1], o[2]) for o in out]
    return runner.client.map(_moments_ll, out, pure=False)


def _moments_ll(o):
    return o[1], o[2]


def _block_usage(resp, sw):
    return _c(sw) @ resp


def _start(runner, X, y, sw, Xb, yb, swb, lik, K, rng):
    """Initial responsibilities per block: the in-memory k-means start."""
    n = X.shape[0]
    if n <= 2 * _init._INIT_SUBSAMPLE:
        # Small data: the in-memory start on every row, read here.
        Xl, yl, swl = (a.compute() for a in (X, y, sw))
        resp = _init.initial_responsibilities("kmeans", lik, Xl, yl, swl, K, rng, 0)
        bounds = np.cumsum((0,) + X.chunks[0])
        parts = [resp[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        if runner.client is None:
            return parts
        return runner.client.scatter(parts)
    idx = _init._subsample_rows(n)
    Xs, ys, sws = (np.asarray(a[idx].compute(), dtype=np.float64) for a in (X, y, sw))
    centers, c_sq, scale = _init._subsample_centres(lik, Xs, ys, sws, K, rng, 0)
    for it in range(_init._INIT_FULL_LLOYD):
        sums, weight = runner.reduce(runner.map(
            _block_lloyd, Xb, yb, swb, centers=centers, c_sq=c_sq, scale=scale, last=False
        ))
        centers, c_sq = _init._lloyd_update(centers, sums, weight)
    return runner.map(
        _block_lloyd, Xb, yb, swb, centers=centers, c_sq=c_sq, scale=scale, last=True
    )


def _gate_m_step(gate, blocks, total, K, max_iter):
    """The SoftmaxGate's M-step with its sums taken over the blocks."""

    def freq():
        runner = blocks.runner
        return runner.reduce(runner.map(_block_usage, blocks.Rb, blocks.swb)) / total

    gate.fit_soft_sums(blocks, total, K, freq, max_iter=max_iter)


def predict(est, X, return_std=False):
    """``est.predict`` block by block: lazy dask arrays (``map_blocks``)."""
    import dask.array as da

    X, _ = _as_dask_array(X, "X")
    X = X.rechunk({1: -1})

    def block(b, i):
        out = est.predict(np.asarray(b), return_std=return_std)
        return out[i] if return_std else out

    parts = [
        da.map_blocks(block, X, i, drop_axis=1, dtype=np.float64, meta=np.empty((0,)))
        for i in range(2 if return_std else 1)
    ]
    return tuple(parts) if return_std else parts[0]
