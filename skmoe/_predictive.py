"""The predictive distribution of a mixture: quantiles, sets, samples.

A fitted regressor's prediction at a row ``x`` is the mixture
``p(y | x) = sum_k pi_k(x) p_k(y | x)``, every ``p_k`` a frozen
``scipy.stats`` distribution from the likelihood's ``expert_distribution``.
:class:`MixtureDistribution` holds that mixture for a batch of rows and
answers, vectorised over the rows:

- its CDF, density and exact quantiles (a safeguarded Newton iteration on
  the mixture CDF inside the experts' quantile bracket, or an integer
  bisection for a discrete likelihood);
- superlevel sets ``{y : p(y | x) >= t}`` and highest-density regions,
  found on a grid refined around every expert and returned as a
  :class:`PredictionSet` (possibly several intervals per row);
- random draws (the expert from the gate, then ``y`` from that expert).

Nothing here knows about estimators: the regressor builds the mixture
(``MixtureOfExpertsRegressor._predictive_mixture``).
"""

from numbers import Real

import numpy as np
from scipy import stats
from scipy.special import logsumexp
from sklearn.utils import check_random_state

#: Probability left out in each tail by the grids of the density-based sets.
_GRID_TAIL = 1e-7
#: Evenly spaced grid points per row, and points per expert (at its own
#: quantiles), in the grids of the density-based sets.
_GRID_EVEN = 256
_GRID_PER_EXPERT = 64
#: Bisection steps on the density threshold of a highest-density region.
_THRESHOLD_STEPS = 50
#: Most integers a discrete highest-density set may span per row.
_MAX_DISCRETE_SPAN = 100_000


def check_probabilities(values, name):
    """``values`` as a 1-D float array strictly inside (0, 1), or a clear
    error naming the parameter."""
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a 1-D list of numbers; got {values!r}.")
    if not np.all((arr > 0) & (arr < 1)):
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {values!r}.")
    return arr


def check_alpha(alpha):
    """The miscoverage level ``alpha`` as a float in (0, 1)."""
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, Real):
        raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}.")
    return float(check_probabilities(alpha, "alpha")[0])


class MixtureDistribution:
    """The predictive mixture ``sum_k w_k p_k`` on a batch of rows.

    Parameters
    ----------
    weights : ndarray of shape (n_rows, n_experts)
        The gate weights; rows sum to one.
    components : scipy.stats frozen distribution
        The experts' distributions, parameters broadcasting to
        ``(n_rows, n_experts)``.
    discrete : bool
        Whether the components are pmfs over the integers.
    """

    def __init__(self, weights, components, discrete):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.discrete = bool(discrete)
        self._family = components.dist
        shape = self.weights.shape
        self._args = [np.broadcast_to(a, shape) for a in components.args]
        self._kwds = {k: np.broadcast_to(v, shape) for k, v in components.kwds.items()}

    @property
    def n_rows(self):
        """Number of rows of the batch."""
        return self.weights.shape[0]

    def _components(self, take):
        """The components with ``take`` applied to every parameter array."""
        args = [take(a) for a in self._args]
        kwds = {k: take(v) for k, v in self._kwds.items()}
        return self._family(*args, **kwds)

    def _mix(self, method, rows, y):
        """``sum_k w_k method_k(y)`` at the pairs ``(rows[j], y[j])``."""
        comps = self._components(lambda a: a[rows])
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            values = getattr(comps, method)(np.asarray(y, dtype=np.float64)[:, None])
        w = self.weights[rows]
        return np.sum(np.where(w > 0, w * np.nan_to_num(values), 0.0), axis=1)

    def logpdf_at(self, rows, y):
        """The log of the mixture density (pmf) at ``(rows[j], y[j])``,
        by a log-sum-exp over the experts (no underflow in the tails)."""
        comps = self._components(lambda a: a[rows])
        y = np.asarray(y, dtype=np.float64)[:, None]
        log_k = comps.logpmf(y) if self.discrete else comps.logpdf(y)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights[rows])
        return logsumexp(np.where(log_w > -np.inf, log_w + log_k, -np.inf), axis=1)

    def cdf_at(self, rows, y):
        """The mixture CDF ``P(Y <= y)`` at the pairs ``(rows[j], y[j])``."""
        return self._mix("cdf", rows, y)

    def pdf_at(self, rows, y):
        """The mixture density (pmf when discrete) at ``(rows[j], y[j])``."""
        return self._mix("pmf" if self.discrete else "pdf", rows, y)

    def _on_grid(self, method, grid):
        n, m = grid.shape
        rows = np.repeat(np.arange(n), m)
        return self._mix(method, rows, grid.ravel()).reshape(n, m)

    def expert_quantiles(self, q):
        """Every expert's ``q``-quantile, ``(n_rows, n_experts)``."""
        return self._components(lambda a: a).ppf(q)

    def _bracket(self, q):
        """``[min_k, max_k]`` of the routed experts' ``q``-quantiles: the
        mixture's ``q``-quantile lies between them."""
        qk = self.expert_quantiles(q)
        active = self.weights > 0
        lo = np.min(np.where(active, qk, np.inf), axis=1)
        hi = np.max(np.where(active, qk, -np.inf), axis=1)
        return lo, hi

    def quantiles(self, q):
        """The mixture's quantiles, ``(n_rows, len(q))``.

        Continuous: the root of ``F(y) = q``. Discrete: the smallest integer
        ``y`` with ``F(y) >= q``.
        """
        solve = self._discrete_quantile if self.discrete else self._continuous_quantile
        return np.column_stack([solve(float(p)) for p in q])

    def _continuous_quantile(self, q, max_iter=200):
        lo, hi = self._bracket(q)
        rows = np.arange(self.n_rows)
        x = 0.5 * (lo + hi)
        todo = hi > lo
        for _ in range(max_iter):
            if not todo.any():
                break
            r = rows[todo]
            excess = self.cdf_at(r, x[r]) - q
            dens = self.pdf_at(r, x[r])
            lo[r] = np.where(excess < 0, x[r], lo[r])
            hi[r] = np.where(excess >= 0, x[r], hi[r])
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                newton = x[r] - excess / dens
            ok = (dens > 0) & (newton > lo[r]) & (newton < hi[r])
            step = np.where(ok, newton, 0.5 * (lo[r] + hi[r]))
            tol = 1e-12 * (1.0 + np.abs(x[r]))
            converged = (np.abs(step - x[r]) <= tol) | (hi[r] - lo[r] <= tol)
            x[r] = step
            todo[r[converged]] = False
        return np.where(hi > lo, x, lo)

    def _discrete_quantile(self, q):
        lo, hi = self._bracket(q)
        lo = lo - 1.0  # F(lo) < q <= F(hi)
        rows = np.arange(self.n_rows)
        while True:
            todo = hi - lo > 1
            if not todo.any():
                return hi
            r = rows[todo]
            mid = np.floor(0.5 * (lo[r] + hi[r]))
            above = self.cdf_at(r, mid) >= q
            hi[r] = np.where(above, mid, hi[r])
            lo[r] = np.where(above, lo[r], mid)

    def sample(self, n_samples, random_state=None):
        """Draws from the mixture, ``(n_rows, n_samples)``: the expert from
        the weights, then ``y`` from that expert."""
        rng = check_random_state(random_state)
        cum = np.cumsum(self.weights, axis=1)
        u = rng.uniform(size=(self.n_rows, n_samples)) * cum[:, -1:]
        expert = np.minimum(
            (u[:, :, None] >= cum[:, None, :]).sum(axis=2), self.weights.shape[1] - 1
        )
        rows = np.repeat(np.arange(self.n_rows), n_samples)
        cols = expert.ravel()
        chosen = self._components(lambda a: a[rows, cols])
        return chosen.rvs(random_state=rng).reshape(self.n_rows, n_samples)

    # -- density-based sets ------------------------------------------
    def _continuous_grid(self):
        """Per row, an even grid over the central ``1 - 2e-7`` of the mixture
        plus every routed expert's own quantiles, sorted: a narrow mode is
        never missed."""
        span = self.quantiles([_GRID_TAIL, 1 - _GRID_TAIL])
        even = span[:, :1] + (span[:, 1:] - span[:, :1]) * np.linspace(0, 1, _GRID_EVEN)
        u = stats.norm.cdf(np.linspace(-5.3, 5.3, _GRID_PER_EXPERT))
        own = self._components(lambda a: a[:, :, None]).ppf(u)
        active = (self.weights > 0)[:, :, None]
        own = np.where(active & np.isfinite(own), own, span[:, None, :1])
        own = np.clip(own, span[:, None, :1], span[:, None, 1:])
        return np.sort(np.concatenate([even, own.reshape(self.n_rows, -1)], axis=1), axis=1)

    def _discrete_grid(self):
        span = self.quantiles([_GRID_TAIL, 1 - _GRID_TAIL])
        width = int(np.max(span[:, 1] - span[:, 0])) + 1
        if width > _MAX_DISCRETE_SPAN:
            raise ValueError(
                f"The predictive distribution spans {width} integers; the "
                f"density-based set supports at most {_MAX_DISCRETE_SPAN}."
            )
        grid = span[:, :1] + np.arange(width)
        return np.minimum(grid, span[:, 1:])

    def density_grid(self):
        """``(grid, density)``: the grid of the density-based sets and the
        mixture density on it (duplicates of a grid point get density 0
        after the first, for the discrete grid)."""
        if self.discrete:
            grid = self._discrete_grid()
            dens = self._on_grid("pmf", grid)
            dens[:, 1:][grid[:, 1:] == grid[:, :-1]] = 0.0
            return grid, dens
        grid = self._continuous_grid()
        return grid, self._on_grid("pdf", grid)

    def superlevel_set(self, threshold, grid=None):
        """``{y : p(y | x) >= threshold}`` per row, a :class:`PredictionSet`.

        Parameters
        ----------
        threshold : float or ndarray of shape (n_rows,)
            The density (pmf) threshold per row.
        grid : tuple, default=None
            ``(grid, density)`` from :meth:`density_grid` (computed if None).
        """
        grid, dens = self.density_grid() if grid is None else grid
        t = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (self.n_rows,))
        if self.discrete:
            return _integer_runs(grid, dens >= t[:, None], self)
        starts, ends = _crossings(grid, dens, t)
        return _interval_set(starts, ends, self)

    def highest_density_set(self, alpha):
        """The smallest set of predictive probability ``1 - alpha`` per row:
        the superlevel set whose threshold gives it that mass."""
        grid = self.density_grid()
        if self.discrete:
            t = _discrete_threshold(grid[1], 1.0 - alpha)
        else:
            t = self._continuous_threshold(grid, 1.0 - alpha)
        return self.superlevel_set(t, grid)

    def _set_mass(self, grid, dens, t):
        starts, ends = _crossings(grid, dens, t)
        mass = np.zeros(self.n_rows)
        for points, sign in ((ends, 1.0), (starts, -1.0)):
            rows, y = points
            np.add.at(mass, rows, sign * self.cdf_at(rows, y))
        return mass

    def _continuous_threshold(self, grid, level):
        """Bisection on the threshold ``t`` until the set's probability
        (computed from the CDF at its endpoints) is ``level``; returns the
        lower end, whose set holds at least ``level``."""
        grid, dens = grid
        lo = np.zeros(self.n_rows)
        hi = dens.max(axis=1)
        for _ in range(_THRESHOLD_STEPS):
            mid = 0.5 * (lo + hi)
            enough = self._set_mass(grid, dens, mid) >= level
            lo = np.where(enough, mid, lo)
            hi = np.where(enough, hi, mid)
        return lo


def _crossings(grid, dens, t):
    """Start and end points of the runs of ``dens >= t`` along every row,
    the crossings placed by linear interpolation of the density: two
    ``(rows, points)`` pairs."""
    inside = dens >= t[:, None]
    n, m = grid.shape
    padded = np.zeros((n, m + 2), dtype=bool)
    padded[:, 1:-1] = inside
    step = np.diff(padded.astype(np.int8), axis=1)  # +1 enter, -1 leave
    out = []
    for sign in (1, -1):
        rows, j = np.nonzero(step == sign)
        # entering at j: between j-1 and j; leaving at j: between j-1 and j
        inner = (j > 0) & (j < m)
        a = np.clip(j - 1, 0, m - 1)
        b = np.clip(j, 0, m - 1)
        edge = np.where(sign == 1, grid[rows, b], grid[rows, a])
        ga, gb = dens[rows, a], dens[rows, b]
        xa, xb = grid[rows, a], grid[rows, b]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((t[rows] - ga) / (gb - ga), 0.0, 1.0)
        point = np.where(inner & np.isfinite(frac), xa + frac * (xb - xa), edge)
        out.append((rows, point))
    return out[0], out[1]


def _discrete_threshold(pmf, level):
    """Per row, the largest pmf value whose superlevel set holds ``level``."""
    order = -np.sort(-pmf, axis=1)
    cum = np.cumsum(order, axis=1)
    first = np.minimum(np.argmax(cum >= level - 1e-12, axis=1), pmf.shape[1] - 1)
    return order[np.arange(pmf.shape[0]), first]


def _integer_runs(grid, inside, mixture):
    n, m = grid.shape
    padded = np.zeros((n, m + 2), dtype=bool)
    padded[:, 1:-1] = inside
    step = np.diff(padded.astype(np.int8), axis=1)
    rows_s, j_s = np.nonzero(step == 1)
    rows_e, j_e = np.nonzero(step == -1)
    starts = (rows_s, grid[rows_s, j_s])
    ends = (rows_e, grid[rows_e, j_e - 1])
    return _interval_set(starts, ends, mixture)


def _interval_set(starts, ends, mixture):
    """A :class:`PredictionSet` from matching start and end points (in row
    order, as ``np.nonzero`` gives them) and its probability per row."""
    (rows, lower), (_, upper) = starts, ends
    n = mixture.n_rows
    if mixture.discrete:
        mass_parts = mixture.cdf_at(rows, upper) - mixture.cdf_at(rows, lower - 1)
    else:
        mass_parts = mixture.cdf_at(rows, upper) - mixture.cdf_at(rows, lower)
    mass = np.bincount(rows, weights=mass_parts, minlength=n)
    cuts = np.searchsorted(rows, np.arange(1, n))
    pairs = np.column_stack([lower, upper])
    return PredictionSet(np.split(pairs, cuts), mass, mixture.discrete)


class PredictionSet:
    """A set of target values per row: a union of intervals.

    Returned by :meth:`MixtureOfExpertsRegressor.predict_interval` with
    ``kind="hdr"`` and by :meth:`DensityConformalRegressor.predict_set`. A
    bimodal predictive density gives two intervals on a row; a row can also
    have none (an empty conformal set).

    Parameters
    ----------
    intervals : list of ndarray of shape (n_intervals_i, 2)
        Every row's disjoint intervals ``[lower, upper]``, in increasing order.
    mass : ndarray of shape (n_rows,)
        The predictive probability of every row's set.
    discrete : bool
        Whether the intervals hold integers (closed integer ranges).

    Attributes
    ----------
    intervals : list of ndarray of shape (n_intervals_i, 2)
        As given.
    mass : ndarray of shape (n_rows,)
        As given: check it against the nominal ``1 - alpha``.
    discrete : bool
        As given.
    """

    def __init__(self, intervals, mass, discrete=False):
        self.intervals = [np.asarray(iv, dtype=np.float64).reshape(-1, 2) for iv in intervals]
        self.mass = np.asarray(mass, dtype=np.float64)
        self.discrete = bool(discrete)

    def __len__(self):
        return len(self.intervals)

    def __repr__(self):
        return (
            f"PredictionSet(n_rows={len(self)}, max_intervals="
            f"{int(self.n_intervals.max(initial=0))}, discrete={self.discrete})"
        )

    @property
    def n_intervals(self):
        """ndarray of shape (n_rows,): the number of intervals of every row."""
        return np.array([len(iv) for iv in self.intervals], dtype=np.intp)

    def to_array(self):
        """Pad the intervals with NaN into one array.

        Returns
        -------
        bounds : ndarray of shape (n_rows, max_intervals, 2)
            ``bounds[i, j] = [lower, upper]`` of row ``i``'s ``j``-th interval;
            NaN beyond its ``n_intervals[i]`` intervals.
        """
        width = int(self.n_intervals.max(initial=0))
        out = np.full((len(self), max(width, 1), 2), np.nan)
        for i, iv in enumerate(self.intervals):
            out[i, : len(iv)] = iv
        return out

    def contains(self, y):
        """Tell whether every row's set contains its ``y``.

        Parameters
        ----------
        y : array-like of shape (n_rows,)
            One target value per row.

        Returns
        -------
        inside : ndarray of shape (n_rows,) of bool
            True where ``y[i]`` lies in one of row ``i``'s intervals.
        """
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.shape[0] != len(self):
            raise ValueError(f"y has {y.shape[0]} values for {len(self)} rows.")
        return np.array([
            bool(np.any((iv[:, 0] <= v) & (v <= iv[:, 1])))
            for iv, v in zip(self.intervals, y)
        ])

    def size(self):
        """Measure every row's set.

        Returns
        -------
        size : ndarray of shape (n_rows,)
            The total length of the intervals; for a discrete set, the
            number of integers in it.
        """
        extra = 1.0 if self.discrete else 0.0
        return np.array([float(np.sum(iv[:, 1] - iv[:, 0] + extra)) for iv in self.intervals])

    def hull(self):
        """Compute every row's smallest enclosing interval.

        Returns
        -------
        hull : ndarray of shape (n_rows, 2)
            ``[lowest lower bound, highest upper bound]``; NaN for an empty set.
        """
        out = np.full((len(self), 2), np.nan)
        for i, iv in enumerate(self.intervals):
            if len(iv):
                out[i] = iv[0, 0], iv[-1, 1]
        return out
