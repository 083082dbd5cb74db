"""The default initialisation, ``init="auto"``: many short EM runs, the best few continued.

One pool (one of ``n_init``) is:

1. diverse hard starts drawn from the fit's ``RandomState``: random balanced
   partitions; partitions by ``K - 1`` uniform-random quantile cut points
   along the first principal axis of the standardised gate inputs (of the
   standardised ``[X, y]`` when the gate has no input); partitions by random
   cut points along a Gaussian random direction in the standardised
   ``[X, y]``; and the deterministic k-means start of ``init="kmeans"``;
2. a short run of ``short_iter`` EM iterations from each (the same engine,
   :func:`skmoe._em.run_em`, with no convergence test);
3. the best ``n_continue`` non-degenerate short runs (:func:`degenerate`)
   continued to convergence; the best of them is kept.

On more than ``SUBSAMPLE_ABOVE`` rows, steps 1-3 run on a random subsample of
``SUBSAMPLE_ROWS`` rows (their weights carried), then one full-data run
starts from the winner's responsibilities on every row (an E-step of the
winner's fitted state).
"""

import copy
import dataclasses
import warnings

import numpy as np
import scipy.sparse as sp

from . import _linear
from ._em import EMState, e_step, run_em
from ._experts import count_parameters, make_experts
from ._frames import numeric_array
from ._gating import _weighted_standardization
from ._init import _first_principal_axis, initial_responsibilities

#: The pool of a regressor: (random partitions, gate-axis cuts, random-direction
#: cuts), short EM iterations, candidates continued.
REGRESSOR_POOL = ((15, 15, 10), 20, 3)
#: The classifier's smaller pool (its EM iterations cost more).
CLASSIFIER_POOL = ((8, 8, 4), 10, 3)
#: Above this many rows the pool runs on a subsample of SUBSAMPLE_ROWS rows.
SUBSAMPLE_ABOVE = 5000
SUBSAMPLE_ROWS = 2000
#: A noise variance below this multiple of its floor is degenerate.
FLOOR_MULTIPLE = 100.0


def eligible(prototypes, X):
    """Whether ``init="auto"`` runs the pool for these experts on ``X``:
    linear experts fitted together in closed form or by batched Newton
    (:mod:`skmoe._linear`), whose EM iterations are cheap. Other experts,
    and wide sparse ``X`` (which the batched solvers do not take), start
    from k-means (``init="kmeans"``): the pool would cost hundreds of their
    fits."""
    X_num = numeric_array(X)
    if X_num is None or not _linear.takes_data(X_num):
        return False
    return all(
        _linear.batchable(p) or _linear.batchable_logistic(p) for p in prototypes
    )


class _Scaled:
    """The standardised columns of ``D`` (dense or sparse, never densified):
    projections ``t = ((D - mean) / scale) @ direction``."""

    def __init__(self, D, sample_weight):
        mean, scale = _weighted_standardization(D, sample_weight)
        self.D = D @ sp.diags(1.0 / scale) if sp.issparse(D) else D / scale
        self.mean = mean / scale
        self.weight = sample_weight
        self.n_columns = D.shape[1]

    def project(self, direction):
        return np.asarray(self.D @ direction).ravel() - self.mean @ direction

    def principal_axis(self):
        return _first_principal_axis(
            self.D, self.mean, self.weight, self.weight.sum()
        )


def _hard(labels, n_experts):
    resp = np.zeros((labels.shape[0], n_experts))
    resp[np.arange(labels.shape[0]), labels] = 1.0
    return resp


def _random_cuts(t, n_experts, rng):
    """Labels by ``n_experts - 1`` uniform-random quantile cut points of ``t``."""
    q = np.sort(rng.uniform(size=n_experts - 1))
    cuts = np.quantile(t, q)
    return np.searchsorted(cuts, t, side="left")


def pool_starts(data, n_experts, rng, sizes):
    """The hard starts of one pool (a list of ``(n, K)`` arrays)."""
    n = data.y.shape[0]
    w = data.sample_weight
    n_random, n_axis, n_proj = sizes
    D = None
    starts = []
    for _ in range(n_random):
        starts.append(_hard(rng.permutation(n) % n_experts, n_experts))
    if n_axis or n_proj:
        D = _Scaled(data.likelihood.init_columns(data.init_X, data.y), w)
    if n_axis:
        # The gate's inputs; [X, y] when the gate has none (or only
        # constant ones: a constant gate).
        t = None
        if data.Z.ndim == 2 and data.Z.shape[1] > 0:
            S = _Scaled(data.Z, w)
            t = S.project(S.principal_axis())
        if t is None or not np.ptp(t) > 0:
            t = D.project(D.principal_axis())
        for _ in range(n_axis):
            starts.append(_hard(_random_cuts(t, n_experts, rng), n_experts))
    for _ in range(n_proj):
        t = D.project(rng.normal(size=D.n_columns))
        starts.append(_hard(_random_cuts(t, n_experts, rng), n_experts))
    starts.append(initial_responsibilities(
        "kmeans", data.likelihood, data.init_X, data.y, w, n_experts, rng, 0
    ))
    return starts


def degenerate(result, data):
    """Experts of a run's fitted state that are degenerate: effective rows
    (rows times usage) below its coefficients + 1, or a noise variance below
    ``FLOOR_MULTIPLE`` times its floor."""
    floor = getattr(data.likelihood, "variance_floor_", None)
    if floor is None:
        # No noise variance to collapse (a classifier's likelihood is
        # bounded): no spurious optimum of this kind.
        return []
    state = result.state
    n = data.y.shape[0]
    usage = result.usage if result.usage is not None else np.ones(len(state.experts))
    bad = []
    for k, expert in enumerate(state.experts):
        try:
            n_coef = count_parameters(expert, getattr(data.likelihood, "n_classes", None))
        except Exception:  # an expert whose parameters cannot be counted
            n_coef = 0
        small = n * usage[k] < n_coef + 1
        theta = state.theta
        at_floor = (
            theta is not None and np.ndim(theta) == 1
            and theta[k] < FLOOR_MULTIPLE * floor
        )
        if small or at_floor:
            bad.append(k)
    return bad


def _run(data, state, config, rng, resp):
    with warnings.catch_warnings():
        # A short run's warnings (an expert's solver) say nothing about the
        # kept fit, whose own warnings are raised.
        warnings.simplefilter("ignore")
        return run_em(data, state, config, rng, resp)


def run_pool(data, prototypes, gate, config, rng, pool):
    """One pool; returns the kept :class:`~skmoe._em.EMResult` with
    ``init_objectives`` (the short runs' objectives), ``candidates`` (the
    continued ones') and ``disagree`` (True when only the best candidate
    reached its optimum and the others fall short by more than
    ``max(1, 1e-3 n)`` in total log-likelihood)."""
    sizes, short_iter, n_continue = pool
    n = data.y.shape[0]
    K = len(prototypes)
    sub, sub_gate = data, gate
    if n > SUBSAMPLE_ABOVE:
        rows = np.sort(rng.choice(n, SUBSAMPLE_ROWS, replace=False))
        sub = data.subset(rows)
        sub_gate = copy.deepcopy(gate).prepare(sub.Z, sub.sample_weight)
    short = dataclasses.replace(config, max_iter=short_iter, tol=-np.inf, verbose=0)
    runs, error = [], None
    for resp in pool_starts(sub, K, rng, sizes):
        state = EMState(make_experts(prototypes, rng), copy.deepcopy(sub_gate))
        try:
            runs.append(_run(sub, state, short, rng, [resp]))
        except (ValueError, np.linalg.LinAlgError) as exc:
            # A start the experts cannot be fit on (a class missing from
            # a slice, too few rows): the other starts decide.
            error = exc
    if not runs:
        raise error
    objectives = np.array([r.objective for r in runs])
    bad = np.array([bool(degenerate(r, sub)) for r in runs])
    order = [i for i in np.argsort(-objectives, kind="stable") if np.isfinite(objectives[i])]
    chosen = [i for i in order if not bad[i]][:n_continue] or order[:n_continue]
    long = dataclasses.replace(config, verbose=0)
    finals = [_run(sub, runs[i].state, long, rng, None) for i in chosen]
    good = [r for r in finals if not degenerate(r, sub)] or finals
    best = max(good, key=lambda r: r.objective)
    totals = np.array([r.objective for r in finals]) * sub.total
    threshold = max(1.0, 1e-3 * sub.total)
    best_total = best.objective * sub.total
    others = [t for r, t in zip(finals, totals) if r is not best]
    disagree = bool(others) and all(best_total - t > threshold for t in others)
    if config.verbose:
        print(
            f"{config.label}init='auto': {objectives.size} short runs of {short_iter} "
            f"iterations on {sub.y.shape[0]} rows (best objective "
            f"{np.max(objectives):.6f}); {len(finals)} continued: "
            + ", ".join(f"{r.objective:.6f} ({r.n_iter} it)" for r in finals),
            flush=True,
        )
    if sub is not data:
        resp, _ = e_step(data, best.state, None)
        state = EMState(make_experts(prototypes, rng), copy.deepcopy(gate))
        best = run_em(data, state, config, rng, [resp])
    else:
        best.repairs = [r for r in best.repairs]  # the kept run's own
    best.init_objectives = objectives
    best.candidates = np.array([r.objective for r in finals])
    best.disagree = disagree
    best.subsampled = sub is not data
    return best
