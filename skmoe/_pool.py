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
3. a race (:func:`race`): the best half run on, then the best quarter;
4. the best ``n_continue`` non-degenerate runs (:func:`degenerate`)
   continued to convergence; the best of them is kept.

Each run of steps 2-4 is a task with its own seed, run on ``n_jobs`` joblib
workers (:func:`_in_jobs`): the pool's result does not depend on ``n_jobs``.

Logistic-regression experts under a softmax gate take the polished pool
instead (:func:`polished_pool`): the starts in turn, each polished to its
optimum by L-BFGS on the penalised log-likelihood (:mod:`skmoe._polish`),
until the best optimum has been reached twice.

On more than ``SUBSAMPLE_ABOVE`` rows, steps 1-4 run on a random subsample of
``SUBSAMPLE_ROWS`` rows (their weights carried), then one full-data run
starts from the winner's responsibilities on every row (an E-step of the
winner's fitted state).
"""

import copy
import dataclasses
import warnings

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.base import clone
from sklearn.utils.parallel import Parallel, delayed

from . import _linear, _polish
from ._backends import choose_passes
from ._em import EMState, e_step, run_em
from ._experts import count_parameters, make_experts
from ._frames import numeric_array
from ._gating import SoftmaxGate, _weighted_standardization
from ._init import _first_principal_axis, initial_responsibilities

#: The pool of a regressor: (random partitions, gate-axis cuts, random-direction
#: cuts), short EM iterations, candidates continued.
REGRESSOR_POOL = ((15, 15, 10), 20, 3)
#: The classifier's smaller pool (its EM iterations cost more).
CLASSIFIER_POOL = ((8, 8, 4), 10, 3)
#: The rounds of :func:`race`: the best half of the short runs get
#: FACTORS[0] x short_iter more iterations, the best quarter FACTORS[1] x.
#: Measured on NPreg with 3 experts gated on x (12 seeds): the best optimum
#: from 4 seeds without the rounds, 8 with them, for 1.5x the iterations.
FACTORS = (0.5, 1)
#: Above this many rows the pool runs on a subsample of SUBSAMPLE_ROWS rows.
SUBSAMPLE_ABOVE = 5000
SUBSAMPLE_ROWS = 2000
#: Two polished starts within this total penalised log-likelihood reached
#: the same optimum (:func:`polished_pool`): closer optima are equivalent,
#: and the polish's tolerance leaves differences of this order on flat
#: objectives.
SAME_OPTIMUM = 0.05
#: The polished pool tries at least this many starts (the k-means start and
#: one of each kind) before it may stop.
MIN_STARTS = 4
#: The polish's gradient tolerance in the pool (the kept start's is tighter:
#: 1e-8). Enough to tell optima apart (``SAME_OPTIMUM``): on six
#: classification sets (2 and 3 experts, 4 seeds each) the kept fits equal
#: those of a pool polished to 1e-5, with about a fifth fewer L-BFGS
#: iterations.
POLISH_TOL = 1e-4
#: A noise variance below this multiple of its floor is degenerate.
FLOOR_MULTIPLE = 100.0


def eligible(prototypes, gate, X):
    """Whether ``init="auto"`` runs the pool for these experts and ``gate``
    on ``X``: linear experts fitted together in closed form or by batched
    Newton (:mod:`skmoe._linear`) and a :class:`~skmoe.SoftmaxGate` (its
    compiled M-step), whose EM iterations are cheap. Other experts, other
    gates (a ``ClassifierGate`` or ``HierarchicalGate`` refits scikit-learn
    estimators at every iteration), and wide sparse ``X`` (which the batched
    solvers do not take), start from k-means (``init="kmeans"``): the pool
    would cost hundreds of their fits."""
    if not isinstance(gate, SoftmaxGate):
        return False
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
        if theta is not None and hasattr(data.likelihood, "noise_variances"):
            theta = data.likelihood.noise_variances(theta)  # Student-t records
        at_floor = (
            theta is not None and np.ndim(theta) == 1
            and theta[k] < FLOOR_MULTIPLE * floor
        )
        if small or at_floor:
            bad.append(k)
    return bad


def _quietly(function, *args):
    """``function(*args)`` without warnings: a pool run's warnings (an
    expert's solver) say nothing about the kept fit, whose own warnings are
    raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args)


def _run(data, state, config, rng, resp):
    return _quietly(run_em, data, state, config, rng, resp)


def run_pool(data, prototypes, gate, config, rng, pool):
    """One pool; returns the kept :class:`~skmoe._em.EMResult` with
    ``init_objectives`` (the short runs' objectives), ``candidates`` (the
    continued ones') and ``disagree`` (True when only the best candidate
    reached its optimum and the others fall short by more than
    ``max(1, 1e-3 n)`` in total log-likelihood).

    Logistic-regression experts under a softmax gate
    (:func:`skmoe._polish.eligible`) take the polished pool
    (:func:`polished_pool`) instead of the short EM runs."""
    sizes, short_iter, n_continue = pool
    n = data.y.shape[0]
    K = len(prototypes)
    sub, sub_gate = data, gate
    if n > SUBSAMPLE_ABOVE:
        rows = np.sort(rng.choice(n, SUBSAMPLE_ROWS, replace=False))
        sub = data.subset(rows)
        sub_gate = copy.deepcopy(gate).prepare(sub.Z, sub.sample_weight)
    starts = pool_starts(sub, K, rng, sizes)
    found = None
    if _polish.eligible(prototypes, gate, data, config):
        found = polished_pool(sub, prototypes, sub_gate, config, rng, starts, sizes)
    polished = found is not None
    if not polished:
        found = _short_runs(
            sub, prototypes, sub_gate, config, rng, starts, short_iter, n_continue
        )
    best, objectives, candidates, disagree = found
    if sub is not data:
        resp, sums = _winner_responsibilities(data, best.state, config)
        # The winner's experts (fewer than K when its confirming EM dropped
        # a collapsed one under on_collapse="drop").
        kept = prototypes if len(best.state.experts) == K else best.state.experts
        state = EMState(make_experts(kept, rng), copy.deepcopy(gate))
        full = None
        if polished:
            # The subsample's pool had every expert start with rows of its
            # own: its verdict on a collapsed expert carries over.
            sub_collapsed = bool(np.any(best.usage < config.min_expert_weight))
            full = _polished_run(data, state, config, rng, resp, sub_collapsed)[1]
        if full is None:
            state = EMState(make_experts(kept, rng), copy.deepcopy(gate))
            full = run_em(data, state, config, rng, [resp], sums)
        if kept is not prototypes:
            full.repairs = best.repairs + full.repairs  # the subsample's drops
        best = full
    else:
        best.repairs = [r for r in best.repairs]  # the kept run's own
    best.init_objectives = objectives
    best.candidates = candidates
    best.disagree = disagree
    best.subsampled = sub is not data
    return best


def _winner_responsibilities(data, state, config):
    """The responsibilities of the subsample's winner ``state`` on every
    row, and the chunked M-step's sums for them: one fused pass on the
    threads (the ``e_pass`` of :mod:`skmoe._backends`) where the passes apply,
    which spares the full-data run its first pass; else the general E-step
    (no sums)."""
    passes = choose_passes(data, state, config)
    if passes is not None:
        resp, stats, _ = passes.e_pass(data, state, None, gate_sums=False)
        return resp, stats
    return e_step(data, state, None)[0], None


def _task_seeds(rng, n):
    """One random seed per task, drawn in order from ``rng``: each task (a
    short run, a continuation) has its own ``RandomState``, so that the pool
    gives the same result wherever its tasks run."""
    return rng.randint(np.iinfo(np.int32).max, size=n)


def _short_run(sub, prototypes, sub_gate, short, task):
    """A short EM run from the start ``resp`` of ``task = (resp, seed)``;
    the exception instead of a run when the experts cannot be fitted from
    it (a class missing from a slice, too few rows): the other starts
    decide."""
    resp, seed = task
    rng = np.random.RandomState(seed)
    state = EMState(make_experts(prototypes, rng), copy.deepcopy(sub_gate))
    try:
        return run_em(sub, state, short, rng, [resp])
    except (ValueError, np.linalg.LinAlgError) as exc:
        return exc


def _candidate_config(config):
    """The settings of a candidate continued to convergence: on one job;
    at ``verbose >= 2`` its iterations print, labelled as the pool's."""
    if config.verbose < 2:
        return dataclasses.replace(config, verbose=0, n_jobs=1)
    label = f"{config.label}[pool candidate] "
    return dataclasses.replace(config, n_jobs=1, label=label)


def _continued(sub, config, task):
    """EM to convergence from the state of a short run: ``task = (run, seed)``."""
    run, seed = task
    return run_em(sub, run.state, config, np.random.RandomState(seed), None)


def _quiet_group(function, shared, items):
    """``[function(*shared, item) for item in items]``, :func:`_quietly`."""
    return _quietly(lambda: [function(*shared, item) for item in items])


def _in_jobs(n_jobs, function, shared, items):
    """``[function(*shared, item) for item in items]``, in order; on
    ``n_jobs`` joblib workers when it allows more than one, ``items`` cut
    into one contiguous group per worker, so that ``shared`` (the
    subsample's data) is sent once to each. Each item carries its own seed:
    the results do not depend on ``n_jobs``."""
    n_workers = min(effective_n_jobs(n_jobs), len(items))
    if n_workers <= 1:
        return _quiet_group(function, shared, items)
    groups = np.array_split(np.arange(len(items)), n_workers)
    out = Parallel(n_jobs=n_workers)(
        delayed(_quiet_group)(function, shared, [items[i] for i in group])
        for group in groups
    )
    return [result for group in out for result in group]


def _best_runs(runs, sub, n):
    """Indices of the ``n`` runs of highest objective, the non-degenerate
    ones (:func:`degenerate`) first."""
    objectives = np.array([r.objective for r in runs])
    bad = np.array([bool(degenerate(r, sub)) for r in runs])
    order = [i for i in np.argsort(-objectives, kind="stable") if np.isfinite(objectives[i])]
    return [i for i in order if not bad[i]][:n] or order[:n]


def race(runs, sub, short, n_continue, advance):
    """Successive halving of the short runs: the runs to continue to convergence.

    After the first ``short.max_iter`` iterations the ranking of the runs is
    still rough: the run that reaches the best optimum can rank tenth. So the
    best half (non-degenerate first, :func:`degenerate`) get ``FACTORS[0]``
    times as many iterations more, then the best quarter ``FACTORS[1]``
    times as many, and the best ``n_continue`` of those are returned. ``advance(runs, config)`` runs EM
    on from each of ``runs`` under ``config`` (its own seeds, in order). A
    round that would keep no more than ``n_continue`` runs is skipped.
    """
    keep = len(runs)
    for factor in FACTORS:
        keep //= 2
        if keep <= n_continue:
            break
        again = dataclasses.replace(short, max_iter=round(factor * short.max_iter))
        runs = advance([runs[i] for i in _best_runs(runs, sub, keep)], again)
    return [runs[i] for i in _best_runs(runs, sub, n_continue)]


def kept_run(finals, sub):
    """The best non-degenerate continued run, and whether the candidates
    disagree: only the best reached its optimum, the others falling short
    by more than ``max(1, 1e-3 n)`` in total log-likelihood."""
    good = [r for r in finals if not degenerate(r, sub)] or finals
    best = max(good, key=lambda r: r.objective)
    threshold = max(1.0, 1e-3 * sub.total)
    others = [r.objective for r in finals if r is not best]
    disagree = bool(others) and all(
        (best.objective - o) * sub.total > threshold for o in others
    )
    return best, disagree


def _short_runs(sub, prototypes, sub_gate, config, rng, starts, short_iter, n_continue):
    """Short EM runs from every start, raced (:func:`race`), the best
    ``n_continue`` continued to convergence: ``(best run, short objectives,
    continued objectives, disagree)``.

    Every stage runs its tasks on ``config.n_jobs`` joblib workers
    (:func:`_in_jobs`), each task with its own seed."""
    short = dataclasses.replace(
        config, max_iter=short_iter, tol=-np.inf, verbose=0, n_jobs=1
    )
    tasks = list(zip(starts, _task_seeds(rng, len(starts))))
    outcomes = _in_jobs(
        config.n_jobs, _short_run, (sub, prototypes, sub_gate, short), tasks
    )
    runs = [r for r in outcomes if not isinstance(r, Exception)]
    if not runs:
        raise outcomes[-1]
    objectives = np.array([r.objective for r in runs])

    def advance(runs, run_config):
        tasks = list(zip(runs, _task_seeds(rng, len(runs))))
        return _in_jobs(config.n_jobs, _continued, (sub, run_config), tasks)

    chosen = race(runs, sub, short, n_continue, advance)
    finals = advance(chosen, _candidate_config(config))
    best, disagree = kept_run(finals, sub)
    if config.verbose:
        print(
            f"{config.label}init='auto': {objectives.size} short runs of {short_iter} "
            f"iterations on {sub.y.shape[0]} rows (best objective "
            f"{np.max(objectives):.6f}), raced; {len(finals)} continued: "
            + ", ".join(f"{r.objective:.6f} ({r.n_iter} it)" for r in finals),
            flush=True,
        )
    return best, objectives, np.array([r.objective for r in finals]), disagree


def _interleaved(sizes):
    """The order in which the polished pool tries the starts of
    :func:`pool_starts`: the k-means start (the last one), then one of each
    kind in turn (random partition, gate-axis cuts, random-direction cuts)."""
    n_random, n_axis, n_proj = sizes
    groups = [
        list(range(0, n_random)),
        list(range(n_random, n_random + n_axis)),
        list(range(n_random + n_axis, n_random + n_axis + n_proj)),
    ]
    order = [n_random + n_axis + n_proj]
    for j in range(max(sizes)):
        order.extend(g[j] for g in groups if j < len(g))
    return order


def _rough_m_step(data, state, resp):
    """A rough first M-step from the start ``resp``, where the polish takes
    over: one Newton step of every expert from zero
    (:func:`skmoe._linear.fit_logistic_experts`, ``partial``) and a partial
    step of the gate (``max_iter="auto"``). Rougher than EM's exact first
    M-step, and measured better: fewer starts end on a saddle where the
    experts are alike. False when an expert cannot be fitted so."""
    classes = data.likelihood.classes_
    fitted = _linear.fit_logistic_experts(
        state.experts, data.X, np.searchsorted(classes, data.y), classes,
        data.sample_weight[:, None] * resp, max_iter=1, partial=True,
    )
    if not all(fitted):
        return False
    state.gate.fit_soft(data.Z, resp, data.sample_weight, max_iter="auto")
    return True


def _polished_state(data, state, config, rng, resp):
    """A first M-step from ``resp`` (:func:`_rough_m_step`, else one EM
    iteration), then the polish (:func:`skmoe._polish.polish`) to the
    optimum of the objective: ``(objective, polished state, collapsed)``,
    ``collapsed`` when an expert's share of the weight is below
    ``min_expert_weight`` there; ``(None, None, None)`` when the polish
    does not apply to the fitted state."""
    if not _rough_m_step(data, state, resp):
        first = dataclasses.replace(config, max_iter=1, tol=-np.inf, verbose=0)
        state = EMState(
            [clone(e) for e in state.experts], state.gate, state.theta
        )
        state = _run(data, state, first, rng, [resp]).state
    if not _polish.applicable(data, state, config):
        return None, None, None
    objective, usage = _polish.polish(data, state, tol=POLISH_TOL)
    return objective, state, bool(np.any(usage < config.min_expert_weight))


def _confirmed(data, state, config, rng, collapsed=False):
    """EM from a polished state: it checks the convergence itself (a few
    iterations at an optimum) and fills the run's result.

    ``collapsed``: the state is the pool's best optimum and an expert's
    share is below ``min_expert_weight`` there. Under
    ``on_collapse="reseed"`` EM does not re-seed it: every start of the
    pool was such a re-seeding (every expert began with rows of its own)
    and none ended higher, so the repair would be undone (as EM undoes a
    repair that ends at a lower objective than the collapsed fit); the
    fit reports the expert by the usage warning and ``expert_usage_``.
    ``"drop"`` drops it, as EM does.

    The gate's M-steps are exact (``gate_max_iter=None``): at an optimum
    EM's convergence test needs an exact step, which then comes first and
    one iteration confirms."""
    config = dataclasses.replace(config, gate_max_iter=None)
    if collapsed and config.on_collapse == "reseed":
        config = dataclasses.replace(config, min_expert_weight=0.0)
    return _run(data, state, config, rng, None)


def _polished_run(data, state, config, rng, resp, may_collapse=False):
    """:func:`_polished_state` then :func:`_confirmed`: ``(objective, run)``;
    ``(None, None)`` when the polish does not apply, or collapses an expert
    without ``may_collapse`` (EM's repairs then decide)."""
    objective, state, collapsed = _polished_state(data, state, config, rng, resp)
    if state is None or (collapsed and not may_collapse):
        return None, None
    _polish.polish(data, state)
    return objective, _confirmed(data, state, config, rng, collapsed)


def polished_pool(sub, prototypes, sub_gate, config, rng, starts, sizes):
    """The pool of logistic experts under a softmax gate.

    From each start in turn (:func:`_interleaved`): a rough first M-step,
    then the polish (L-BFGS on the penalised log-likelihood, all parameters
    together: :mod:`skmoe._polish`), which reaches the optimum that EM only
    creeps towards (:func:`_polished_state`). The pool ends as soon as
    ``MIN_STARTS`` starts have been tried and the best objective so far has
    been reached from two of them (within ``SAME_OPTIMUM`` in total
    penalised log-likelihood); at worst every start is tried. The best
    optimum is kept, also when an expert's share of the weight is below
    ``min_expert_weight`` there (a collapsed expert: the penalties prefer
    fewer experts than ``n_experts``, and every start, each expert with
    rows of its own, ended lower or collapsed too; see
    :func:`_confirmed`). EM from the kept optimum confirms it.

    Returns ``(best run, objectives of the starts tried, those of the three
    best, disagree)``, ``disagree`` when the second best falls short of the
    best by more than ``max(1, 1e-3 n)`` (as for the short runs'
    candidates).
    """
    tried = _polish_starts(sub, prototypes, sub_gate, config, rng, starts, sizes)
    objectives = np.array([t[0] for t in tried])
    values = np.sort(objectives)[::-1]
    # The kept optimum is polished to a tight gradient (1e-8), then EM
    # confirms it. Without the tight polish the fit would stop wherever the
    # pool's L-BFGS (gradient POLISH_TOL) stopped: EM's objective barely
    # changes that close to an optimum, so its ``tol`` would accept it, and
    # data equal up to rounding (a sparse X and its dense copy) would give
    # models 1e-4 apart.
    _, kept, collapsed = max(tried, key=lambda t: t[0])
    _polish.polish(sub, kept)
    best = _confirmed(sub, kept, config, rng, collapsed)
    threshold = max(1.0, 1e-3 * sub.total)
    disagree = values.size > 1 and (values[0] - values[1]) * sub.total > threshold
    if config.verbose:
        print(
            f"{config.label}init='auto': {objectives.size} starts polished on "
            f"{sub.y.shape[0]} rows; objectives "
            + ", ".join(f"{v:.6f}" for v in objectives)
            + f"; the best reached {_times_reached(values, sub.total)} time(s)"
            + (", an expert collapsed there" if collapsed else ""),
            flush=True,
        )
    return best, objectives, values[:3], disagree


def _times_reached(values, total):
    """How many of ``values`` (objectives per unit weight) reached their
    maximum, within ``SAME_OPTIMUM`` in total."""
    values = np.asarray(values)
    if not values.size:
        return 0
    return int(np.sum((values.max() - values) * total <= SAME_OPTIMUM))


def _polish_starts(sub, prototypes, sub_gate, config, rng, starts, sizes):
    """The loop of :func:`polished_pool`: ``(objective, state, collapsed)``
    of each start tried, in turn, until the stopping rule."""
    tried, error = [], None
    for i in _interleaved(sizes):
        state = EMState(make_experts(prototypes, rng), copy.deepcopy(sub_gate))
        try:
            objective, state, collapsed = _polished_state(sub, state, config, rng, starts[i])
        except (ValueError, np.linalg.LinAlgError) as exc:
            error = exc  # a start the experts cannot be fit on
            continue
        if state is None or not np.isfinite(objective):
            continue
        tried.append((objective, state, collapsed))
        reached = _times_reached([t[0] for t in tried], sub.total)
        if len(tried) >= MIN_STARTS and reached >= 2:
            break
    if not tried:
        if error is not None:
            raise error
        raise ValueError("no start of the initialisation pool could be fitted.")
    return tried
