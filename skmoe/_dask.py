"""The dask backend of EM: per-block passes and tree-reduced sums.

``MixtureOfExpertsRegressor.fit(X, y)`` with a dask array (or a dask
DataFrame) ``X`` runs the estimator's own fit template and EM loop
(:func:`skmoe._em.run_em`, with ``n_experts=None``'s BIC choice, restarts,
the convergence and "indistinct experts" tests and the same fitted
attributes); only the passes over the rows differ: :class:`DaskPasses`
implements the passes protocol of :mod:`skmoe._backends` with every pass a
task per block of rows and the sums -- the experts' weighted moments, the
gate's loss, gradient and Hessian, the log-likelihood -- added pairwise on
the workers (a tree reduction); only those small sums come back. The
responsibilities stay on the workers, one array per block. ``X`` is never
gathered into one process: the k-means start reads a subsample of the rows
(as the in-memory fit does above 262,144 rows; below, the start reads the
rows of ``[X, y]`` to the client, as small data). Every block is checked
by the in-memory checks (NaN, infinity, magnitude): the same errors.

With a ``dask.distributed`` client the tasks run on its workers; without
one, in this process on dask's default scheduler (block by block).

Supported: LinearRegression and Ridge experts (plain, as in
:mod:`skmoe._linear`) with the Gaussian likelihood, the SoftmaxGate without
``balance``, soft assignments, dense EM (no ``top_k``),
``gate_features=None``, ``init`` "kmeans" or "auto" (on a dask collection,
``"auto"`` is the k-means start: the pool of short runs is for data in
memory), no warm start. Anything else raises a ValueError naming it: the
other experts can learn from a dask collection block by block with
``solver="gd"`` and ``partial_fit``. Not done on the blocks: collapse repair
(it splits an expert's rows by 2-means; an expert that collapses raises a
ValueError) and the ``init="auto"`` pool.
"""

import operator

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight

from . import _chunked, _init, _linear
from ._em import EMData
from ._experts import estimator_name
from ._gating import SoftmaxGate
from ._likelihood import GaussianLikelihood


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

    def reduce_max(self, handles):
        """Elementwise maximum of the results (arrays), on the workers."""
        if self.client is None:
            return _tree(handles, np.maximum)
        level = list(handles)
        while len(level) > 1:
            nxt = [
                self.client.submit(np.maximum, level[i], level[i + 1], pure=False)
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
# The checks and the data of a fit
# ----------------------------------------------------------------------
def check_supported(params, prototypes, gate, likelihood):
    """Refuse, naming it, a setting the block passes do not run (``params``:
    the estimator's parameters)."""
    bad = [
        f"experts[{k}] ({estimator_name(p)})" if isinstance(params["experts"], list)
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
    problems = []
    if type(likelihood) is not GaussianLikelihood:
        problems.append("likelihood='gaussian'")
    if type(gate) is not SoftmaxGate or gate.balance > 0:
        problems.append("a SoftmaxGate without balance")
    for name, want in [
        ("solver", "em"), ("assignment", "soft"), ("top_k", None), ("gate_features", None),
        ("init", ("auto", "kmeans")), ("warm_start", False),
    ]:
        value = params.get(name)
        if not (value in want if isinstance(want, tuple) else value == want):
            problems.append(f"{name}={want!r}")
    if problems:
        raise ValueError(
            "fit on a dask collection needs " + ", ".join(problems) + "; compute X into "
            "memory (or a numpy.memmap) for the other settings."
        )


def _block_checks(X, y, sw, estimator_name):
    """The in-memory checks of one block (the same errors); its extremes."""
    X = check_array(X, dtype=np.float64, input_name="X", estimator=estimator_name)
    y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y",
                    estimator=estimator_name)
    sw = _check_sample_weight(sw, X, dtype=np.float64, ensure_non_negative=True)
    return np.array([
        float(X.max()) if X.size else -np.inf, -float(X.min()) if X.size else -np.inf,
        float(np.count_nonzero(sw)),
    ])


def _as_dask_array(X, name):
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(X, dd.DataFrame):
        return X.to_dask_array(lengths=True).astype(np.float64)
    if isinstance(X, dd.Series):
        return X.to_dask_array(lengths=True).astype(np.float64)
    if not isinstance(X, da.Array):
        X = da.asarray(X)
    return X.astype(np.float64)


def _validated_blocks(X, y, sample_weight):
    """``X``, ``y`` and the sample weights as dask arrays with aligned row blocks."""
    import dask.array as da

    X, y = _as_dask_array(X, "X"), _as_dask_array(y, "y")
    if X.ndim != 2 or y.ndim != 1:
        raise ValueError(f"Expected X 2-D and y 1-D; got shapes {X.shape} and {y.shape}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown block sizes; call X.compute_chunk_sizes() first.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: {X.shape[0]} and "
            f"{y.shape[0]}."
        )
    X = X.rechunk({1: -1})
    y = y.rechunk((X.chunks[0],))
    if sample_weight is None:
        sw = da.ones(X.shape[0], chunks=(X.chunks[0],))
    else:
        sw = _as_dask_array(sample_weight, "sample_weight").rechunk((X.chunks[0],))
    return X, y, sw


def block_data(X, y, sample_weight, likelihood, estimator_name):
    """The :class:`~skmoe._em.EMData` of a fit on dask collections: the rows
    stay in their blocks, ``passes`` is a :class:`DaskPasses` over them.

    Raises the in-memory fit's errors for NaN, infinity and magnitude.
    Returns ``(data, n_positive)``, ``n_positive`` the rows of positive weight.
    """
    X, y, sw = _validated_blocks(X, y, sample_weight)
    runner = _Runner()
    blocks = (runner.blocks(X), runner.blocks(y), runner.blocks(sw))
    extremes = runner.reduce_max(
        runner.map(_block_checks, *blocks, estimator_name=estimator_name)
    )
    largest = max(extremes[0], extremes[1])
    if largest > _MAX_ABS:
        raise ValueError(
            f"X holds values up to {largest:.3g} in absolute value; skmoe "
            "squares them (variances, Gram matrices) and float64 overflows above "
            "about 1e154. Rescale X (e.g. divide it by a constant or use "
            "sklearn.preprocessing.StandardScaler)."
        )
    passes = DaskPasses(runner, blocks, X.shape)
    passes.prepare(likelihood)
    data = EMData(X, y, sw, X, likelihood, passes=passes)
    return data, int(runner.reduce(runner.map(_block_count, blocks[2])))


def _block_count(sw):
    return np.array(float(np.count_nonzero(_c(sw))))


#: As skmoe._base.MAX_ABS_VALUE (the in-memory check).
_MAX_ABS = 1e150


class DaskPasses:
    """The passes protocol of :mod:`skmoe._backends` over dask blocks.

    ``runner`` runs the block tasks (on the client's workers, or here);
    ``blocks`` holds the handles of the row blocks of ``X``, ``y`` and the
    sample weights; the responsibilities are lists of block handles.
    """

    repairs = False
    falls_back = False

    def __init__(self, runner, blocks, shape):
        self.runner, self.blocks, self.shape = runner, blocks, shape

    def prepare(self, likelihood):
        """Totals, the likelihood's variance floor, the columns' means and
        scales, in two passes (means, then centred squares)."""
        runner, (Xb, yb, swb) = self.runner, self.blocks
        sx, s = runner.reduce(runner.map(_block_sums, Xb, yb, swb))
        self.total = s[2]
        if not self.total > 0:
            raise ValueError("sample_weight must have a positive sum.")
        mean_x, mean_y = sx / self.total, s[0] / self.total
        vx, vy = runner.reduce(runner.map(
            _block_centred, Xb, yb, swb, mean_x=mean_x, mean_y=mean_y
        ))
        var_y = vy[0] / self.total
        scale_y = var_y if var_y > 0 else max(mean_y * mean_y, 1.0)
        likelihood.variance_floor_ = likelihood.reg_variance * scale_y
        likelihood.target_variance_ = scale_y
        scale = np.sqrt(np.maximum(vx / self.total, 0.0))
        scale[scale <= 1e-12 * np.maximum(np.abs(mean_x), 1.0)] = 1.0
        self.mean, self.scale = mean_x, scale
        self.shift = np.concatenate([mean_x, [mean_y]])

    def total_weight(self, sample_weight):
        """The total sample weight (summed by :meth:`prepare`)."""
        return float(self.total)

    def prepare_gate(self, gate, n_outputs):
        """The gate's standardisation from the columns' sums."""
        return gate.prepare_statistics(self.mean, self.scale)

    def initial_responsibilities(self, data, init, n_experts, rng, i_init):
        """The in-memory k-means start, per block."""
        return _start(self.runner, data, self.blocks, n_experts, rng)

    def uniform_responsibilities(self, data, n_experts):
        """Responsibilities ``1 / n_experts`` on every row, per block."""
        bounds = data.X.chunks[0]
        parts = [np.full((n, n_experts), 1.0 / n_experts) for n in bounds]
        return parts if self.runner.client is None else self.runner.client.scatter(parts)

    def stats_pass(self, data, resp):
        """The experts' moments for ``resp``, tree-reduced."""
        Xb, yb, swb = self.blocks
        parts = self.runner.map(_block_moments, Xb, yb, swb, resp, shift=self.shift)
        return _chunked.LinearStats(self.runner.reduce(parts), self.shift)

    def m_step(self, data, state, stats, resp, keep_empty):
        """The experts and the noise variances from the moments."""
        ok, theta, not_fitted = _chunked.m_step_stats(
            state.experts, state.theta, stats, self.shape[0], self.total, data.likelihood
        )
        if not ok or not_fitted:
            raise ValueError(
                "An expert lost its training weight (or its normal equations are too "
                "ill-conditioned) during EM on the dask collection, which has no "
                "collapse repair; use fewer experts, or fit in memory."
            )
        state.theta = theta
        return True

    def m_step_gate(self, data, state, resp, stats, max_iter):
        """The SoftmaxGate's M-step with its sums taken over the blocks."""
        Xb, _, swb = self.blocks
        sums = BlockGateData(self.runner, Xb, resp, swb, self.shape)
        state.gate.fit_soft_sums(
            sums, self.total, len(state.experts), lambda: self.usage(data, resp),
            max_iter=max_iter,
        )
        return True

    def e_pass(self, data, state, out, gate_sums=True):
        """E-steps per block with the next moments; ``out``'s blocks released."""
        Xb, yb, swb = self.blocks
        arrays = _chunked.model_arrays(state.experts, state.gate, state.theta)
        done = self.runner.map(_block_e_step, Xb, yb, swb, arrays=arrays, shift=self.shift)
        if out is not None:
            self.runner.release(out)
        resp = self.runner.pick(done, 0)
        packed, ll = self.runner.reduce(_pair(self.runner, done))
        self.runner.release(done)
        return resp, _chunked.LinearStats(packed, self.shift), float(ll[0]) / self.total

    def same_experts(self, state):
        """Whether every expert is the same linear model."""
        return _chunked.same_experts(state)

    def usage(self, data, resp):
        """The experts' shares of the training weight, tree-reduced."""
        Rb, swb = resp, self.blocks[2]
        return self.runner.reduce(self.runner.map(_block_usage, Rb, swb)) / self.total


def _pair(runner, out):
    """The (moments, log-likelihood) of every E-step block, as tuples."""
    if runner.client is None:
        return [(o[1], o[2]) for o in out]
    return runner.client.map(_moments_ll, out, pure=False)


def _moments_ll(o):
    return o[1], o[2]


def _block_usage(resp, sw):
    return _c(sw) @ resp


def _start(runner, data, blocks, K, rng):
    """Initial responsibilities per block: the in-memory k-means start."""
    Xb, yb, swb = blocks
    X, y, sw, lik = data.X, data.y, data.sample_weight, data.likelihood
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


def predict(est, X, return_std=False):
    """``est.predict`` block by block: lazy dask arrays (``map_blocks``)."""
    import dask.array as da

    X = _as_dask_array(X, "X").rechunk({1: -1})

    def block(b, i):
        out = est.predict(np.asarray(b), return_std=return_std)
        return out[i] if return_std else out

    parts = [
        da.map_blocks(block, X, i, drop_axis=1, dtype=np.float64, meta=np.empty((0,)))
        for i in range(2 if return_std else 1)
    ]
    return tuple(parts) if return_std else parts[0]
