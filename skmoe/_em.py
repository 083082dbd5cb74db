"""The EM engine of the mixtures of experts.

Small functions over named state: the data of a fit (:class:`EMData`), the
model being fitted (:class:`EMState`: experts, gate, the likelihood's own
parameters ``theta``), the settings (:class:`EMConfig`) and the outcome
(:class:`EMResult`). The gate and the likelihood are used only through their
protocols (:mod:`skmoe._gating`, :mod:`skmoe._likelihood`).

One iteration of :func:`run_em`:

1. the M-step of the experts (:func:`m_step_experts`) on the assignments
   (posteriors, or hard / stochastic draws from them);
2. the M-step of the gate (:func:`m_step_gate`), a partial one
   (``gate_max_iter``) except where an exact step is needed;
3. the experts' outputs, on every row (dense) or on each expert's candidate
   rows (``top_k``, :mod:`skmoe._routing`), and the M-step of the
   likelihood's parameters (:func:`m_step_likelihood`, from sums over rows);
4. the E-step: responsibilities and the objective, the mean log-likelihood
   minus the gate's penalty over the total weight;
5. collapse repair (:mod:`skmoe._repair`), then the convergence test.
"""

import copy
import dataclasses
import time
from dataclasses import dataclass, field, fields

import numpy as np

from . import _repair, _routing
from ._backends import choose_passes
from ._experts import ExpertPool, assignments, expert_weights, refit_experts
from ._frames import take_rows
from ._gating import prepare_gate
from ._init import LazyInitColumns, initial_responsibilities


@dataclass
class EMData:
    """The validated data of a fit.

    ``init_columns`` builds, on first call, the scaled columns that
    repairs split an expert's rows on (:class:`skmoe._init.LazyInitColumns`;
    nothing is built for a fit that repairs nothing).
    ``X`` is what the experts receive: a float64 array, a sparse matrix or
    a DataFrame; for a DataFrame, ``numeric`` holds the float64 columns
    that the initialisation and the repairs cluster (:mod:`skmoe._frames`).
    """

    X: object
    y: np.ndarray
    sample_weight: np.ndarray
    Z: object
    likelihood: object
    init_columns: object = None
    numeric: object = None
    #: The passes of rows that are not in memory as NumPy (an array
    #: namespace, dask blocks; :mod:`skmoe._backends`); None: NumPy.
    passes: object = None
    total: float = field(init=False)

    def __post_init__(self):
        if self.passes is not None:
            self.total = self.passes.total_weight(self.sample_weight)
            return
        self.total = self.sample_weight.sum()
        if self.init_columns is None:
            self.init_columns = LazyInitColumns(
                self.likelihood, self.init_X, self.y, self.sample_weight
            )

    def subset(self, rows):
        """The data of ``rows`` (an index array or a slice)."""
        return EMData(
            take_rows(self.X, rows), self.y[rows], self.sample_weight[rows],
            self.Z[rows], self.likelihood,
            numeric=None if self.numeric is None else self.numeric[rows],
        )

    @property
    def init_X(self):
        """The columns that ``init="kmeans"`` clusters (with ``y``)."""
        return self.X if self.numeric is None else self.numeric

    def start(self, init, n_experts, rng, i_init):
        """The initial responsibilities of ``init`` (restart ``i_init``):
        on rows in memory, :func:`skmoe._init.initial_responsibilities`;
        elsewhere, the passes' own (dask blocks)."""
        if self.passes is not None:
            return self.passes.initial_responsibilities(self, init, n_experts, rng, i_init)
        return initial_responsibilities(
            init, self.likelihood, self.init_X, self.y, self.sample_weight,
            n_experts, rng, i_init,
        )

    def uniform_responsibilities(self, n_experts):
        """Responsibilities ``1 / n_experts`` on every row."""
        if self.passes is not None:
            return self.passes.uniform_responsibilities(self, n_experts)
        return np.full((self.y.shape[0], n_experts), 1.0 / n_experts)

    def prepare_gate(self, gate, n_outputs):
        """``gate`` prepared on the gate's input (its standardisation)."""
        if self.passes is not None:
            return self.passes.prepare_gate(gate, n_outputs)
        return prepare_gate(gate, self.Z, self.sample_weight, n_outputs)


def settings_from(settings_class, estimator):
    """A solver's settings dataclass filled from the estimator's parameters
    of the same names (``label`` is the caller's, not a parameter)."""
    return settings_class(**{
        f.name: getattr(estimator, f.name)
        for f in fields(settings_class) if f.name != "label"
    })


@dataclass
class EMConfig:
    """The estimator's settings that the engine reads."""

    assignment: str = "soft"
    max_iter: int = 100
    tol: float = 1e-6
    gate_max_iter: object = "auto"
    top_k: object = None
    min_expert_weight: float = 1e-3
    on_collapse: str = "reseed"
    n_jobs: object = None
    verbose: int = 0
    #: Prefix of the progress lines (``"[init 2/5] "`` for a restart).
    label: str = ""

    @classmethod
    def from_estimator(cls, estimator):
        return settings_from(cls, estimator)


@dataclass
class EMState:
    """The model being fitted.

    ``frozen[k]`` experts are not refit and keep ``frozen_theta[k]``
    (growth with ``grow="freeze"``).
    """

    experts: list
    gate: object
    theta: object = None
    frozen: np.ndarray = None
    frozen_theta: object = None

    def __post_init__(self):
        self.experts = list(self.experts)
        if self.frozen is None:
            self.frozen = np.zeros(len(self.experts), dtype=bool)

    def drop(self, k):
        """Remove expert ``k``, its gate output and its parameters."""
        del self.experts[k]
        self.gate.drop_output(k)
        if self.theta is not None:
            self.theta = np.delete(self.theta, k)
        if self.frozen_theta is not None:
            self.frozen_theta = np.delete(self.frozen_theta, k)
        self.frozen = np.delete(self.frozen, k)


@dataclass
class EMResult:
    """The outcome of a run: the fitted state and what the estimator reports."""

    state: EMState
    history: list
    converged: bool
    n_iter: int
    objective: float
    log_likelihood: float
    resp: np.ndarray
    empty: set = field(default_factory=set)
    repairs: list = field(default_factory=list)
    usage: np.ndarray = None
    weak: list = field(default_factory=list)
    validation_scores: list = None


def e_step(data, state, top_k, log_gate=None):
    """Responsibilities and per-row log-normalisers with every expert on every row."""
    if log_gate is None:
        log_gate = state.gate.log_proba(data.Z)
    lik = data.likelihood
    outputs = lik.outputs(state.experts, data.X)
    return _routing.e_step(log_gate, lik.log_lik(outputs, data.y, state.theta), top_k)


def m_step_experts(data, state, resp, assign, rng, config, keep_empty, pool=None):
    """Refit every expert that is not frozen; return the experts left empty.

    An empty expert keeps its previous fit with ``keep_empty``; otherwise
    (the first M-step of a run: nothing to keep) it is fit on every row.
    ``pool``: the run's :class:`~skmoe._experts.ExpertPool` (None: a loop).
    """
    weights = likelihood_fit_weights(data, state, data.sample_weight[:, None] * assign)
    columns, empty = expert_weights(
        state.experts, data.sample_weight, weights, resp, rng, config.assignment,
        keep_empty=keep_empty, skip=state.frozen,
    )
    state.experts = refit_experts(
        state.experts, columns, data.X, data.y, data.likelihood.subset_rows,
        pool, all_weights=weights,
        classes=getattr(data.likelihood, "classes_", None),
    )
    return empty


def likelihood_fit_weights(data, state, weights):
    """The experts' fit weights: EM's ``weights``, or what the likelihood's
    optional ``expert_fit_weights(outputs, y, weights, theta)`` hook makes of
    them given the current fit (the Student-t's latent scales, the negative
    binomial's mean-model weights). Without the hook, or before the
    likelihood has parameters, ``weights`` unchanged."""
    hook = getattr(data.likelihood, "expert_fit_weights", None)
    if hook is None or state.theta is None:
        return weights
    outputs = data.likelihood.outputs(state.experts, data.X)
    return hook(outputs, data.y, weights, state.theta)


def m_step_gate(data, state, assign, max_iter):
    """Refit the gate to the assignments (``max_iter``: see ``gate_max_iter``)."""
    state.gate.fit_soft(data.Z, assign, data.sample_weight, max_iter=max_iter)


def m_step_likelihood(data, state, outputs, assign):
    """The likelihood's parameters from the weighted sums over rows."""
    lik = data.likelihood
    stats = lik.stats(outputs, data.y, data.sample_weight[:, None] * assign)
    theta = lik.m_step(stats, state.theta)
    if theta is not None and state.frozen.any():
        theta[state.frozen] = state.frozen_theta[state.frozen]
    state.theta = theta


@dataclass
class _Run:
    """What one EM run's iterations share: the data, the state, the settings,
    the passes chosen for the run (:func:`skmoe._backends.choose_passes`;
    None: the general path), the expert pool, the result being filled and
    ``sums``, the next M-step's sums for the current responsibilities when
    the last pass computed them (None: not computed)."""

    data: EMData
    state: EMState
    config: EMConfig
    rng: object
    pool: object
    passes: object
    result: object
    sums: object = None


def _passes_iteration(run, resp, keep_empty, gate_max_iter, times):
    """One EM iteration by the run's passes (:mod:`skmoe._backends`).

    Returns None, having changed nothing, where the passes decline the
    M-step (an empty expert) and the general M-step can take it.
    """
    data, state, passes = run.data, run.state, run.passes
    tic = time.perf_counter()
    stats = run.sums if run.sums is not None else passes.stats_pass(data, resp)
    run.sums = None
    if not passes.m_step(data, state, stats, resp, keep_empty):
        return None
    toc = time.perf_counter()
    times["experts"] = toc - tic
    if not passes.m_step_gate(data, state, resp, stats, gate_max_iter):
        m_step_gate(data, state, resp, gate_max_iter)
    tic, toc = toc, time.perf_counter()
    times["gate"] = toc - tic
    resp, run.sums, log_lik = passes.e_pass(data, state, out=resp)
    times["E-step"] = time.perf_counter() - toc
    # The gate's log-probabilities and the outputs are not kept (a repair
    # computes them when it needs them).
    return resp, None, None, log_lik, passes.same_experts(state)


def _iteration(run, resp, keep_empty, gate_max_iter, times):
    """One EM iteration; returns ``(resp, log_gate, outputs, log_lik, indistinct)``.

    ``times`` receives the seconds of its steps (experts, gate, E-step).
    ``indistinct``: every expert gives every row the same likelihood (e.g. a
    constant ``y`` that every expert fits exactly), so the data hold
    nothing that could separate the experts.
    """
    if run.passes is not None:
        done = _passes_iteration(run, resp, keep_empty, gate_max_iter, times)
        if done is not None or not run.passes.falls_back:
            return done
    data, state, config, rng = run.data, run.state, run.config, run.rng
    run.sums = None
    tic = time.perf_counter()
    assign = assignments(resp, rng, config.assignment)
    run.result.empty |= m_step_experts(
        data, state, resp, assign, rng, config, keep_empty, run.pool
    )
    toc = time.perf_counter()
    times["experts"] = toc - tic
    m_step_gate(data, state, assign, gate_max_iter)
    tic, toc = toc, time.perf_counter()
    times["gate"] = toc - tic
    log_gate = state.gate.log_proba(data.Z)
    # Sparse EM: an expert runs only on its candidate rows (the rows where
    # the new gate ranks it in the top_k, or where it holds posterior weight
    # now); the others get log-likelihood -inf. Dense EM: every expert on
    # every row.
    candidates = _routing.candidates(log_gate, resp, config.top_k)
    rows = None if candidates is None else _routing.rows_per_expert(candidates)
    outputs = data.likelihood.outputs(state.experts, data.X, rows, run.pool)
    m_step_likelihood(data, state, outputs, assign)
    log_lik = data.likelihood.log_lik(outputs, data.y, state.theta)
    indistinct = candidates is None and _indistinct(log_lik)
    if candidates is not None:
        log_lik[~candidates] = -np.inf
    # The new responsibilities overwrite the old ones (no longer needed),
    # unless the M-step's weights were drawn from them.
    buffer = resp if assign is resp and resp.flags.c_contiguous else None
    assign = None
    resp, log_norm = _routing.e_step(log_gate, log_lik, config.top_k, out=buffer)
    times["E-step"] = time.perf_counter() - toc
    mean_log_lik = data.sample_weight @ log_norm / data.total
    return resp, log_gate, outputs, mean_log_lik, indistinct


def _indistinct(log_lik):
    """Whether no row's log-likelihood differs across the experts."""
    if log_lik.shape[1] < 2 or not np.isfinite(log_lik).all():
        return False
    spread = np.ptp(log_lik, axis=1).max()
    return bool(spread <= 1e-12 * (1.0 + np.abs(log_lik).max()))


def _progress(config, n_iter, log_lik, objective, change, seconds, times):
    """The line that ``verbose >= 2`` prints after an iteration (with the
    time of every step at ``verbose >= 3``)."""
    line = (
        f"{config.label}Iteration {n_iter:4d}: log-likelihood {log_lik:.6f}, "
        f"objective {objective:.6f}, change {change:.3e}, {seconds:.3f}s"
    )
    if config.verbose >= 3:
        line += " (" + ", ".join(f"{k} {v:.3f}s" for k, v in times.items()) + ")"
    print(line, flush=True)


def run_em(data, state, config, rng, resp=None, sums=None):
    """Run EM from ``resp`` (or, when None, from the fitted ``state``).

    ``resp`` may be a one-element list, emptied here: no reference to the
    initial responsibilities then outlives their first use (peak memory).
    ``sums``: the passes' M-step sums for ``resp`` when the pass that
    made ``resp`` computed them (``e_pass`` of :mod:`skmoe._backends`), which
    spares the first iteration a pass over the rows.
    The expert fits of every iteration share one
    :class:`~skmoe._experts.ExpertPool` (``config.n_jobs``).
    """
    if isinstance(resp, list):
        resp = resp.pop()
    with ExpertPool(config.n_jobs) as pool:
        return _run_em(data, state, config, rng, resp, pool, sums=sums)


def _run_em(data, state, config, rng, resp, pool, repairs=(), sums=None):
    """:func:`run_em` with the run's expert pool.

    A re-seeding repair is a proposal: the state before it (a snapshot) is
    continued by EM too, without re-seeding that expert again, and the run
    that ends at the higher penalised objective is kept
    (:func:`_keep_better`). ``repairs``: those of the run this one
    continues (its re-seeded experts are not re-seeded again).
    """
    result = EMResult(state, [], False, 0, -np.inf, -np.inf, resp)
    result.repairs = list(repairs)
    run = _Run(data, state, config, rng, pool, choose_passes(data, state, config),
               result, sums)
    snapshot = None
    keep_empty = resp is None
    prev = -np.inf
    if keep_empty:
        # Warm start: one E-step with the fitted parameters.
        resp, log_norm = e_step(data, state, config.top_k)
        prev = (data.sample_weight @ log_norm - state.gate.penalty()) / data.total
    exact_gate = False
    for n_iter in range(1, config.max_iter + 1):
        tic = time.perf_counter()
        # A generalised M-step: a few gate iterations from the previous gate.
        # The M-step after a repair starts far from its optimum: that one is
        # exact, as is the one that confirms convergence.
        step_exact = exact_gate or config.gate_max_iter is None
        log_gate = outputs = None  # drop the last iteration's arrays (peak memory)
        times = {}
        resp, log_gate, outputs, log_lik, indistinct = _iteration(
            run, resp, keep_empty, None if step_exact else config.gate_max_iter, times
        )
        keep_empty, exact_gate = True, False
        objective = log_lik - state.gate.penalty() / data.total
        change = objective - prev
        result.history.append(objective)
        if config.verbose >= 2:
            _progress(
                config, n_iter, log_lik, objective, change,
                time.perf_counter() - tic, times,
            )
        # A repair needs an M-step after it: none at the last iteration (nor
        # on rows that the repair cannot split: see the passes' ``repairs``).
        last = n_iter == config.max_iter or not getattr(run.passes, "repairs", True)
        repaired = None if last else _repair.repair_collapse(
            data, state, config, resp, log_gate, outputs, result, n_iter
        )
        if repaired is not None:
            if snapshot is None and config.on_collapse == "reseed":
                snapshot = (copy.deepcopy(state), n_iter, list(result.history))
            resp, prev, exact_gate = repaired, -np.inf, True  # EM restarts from it
            run.sums = None
            if config.on_collapse == "drop":
                # A dropped expert may turn top_k into the dense model.
                run.passes = choose_passes(data, state, config)
            continue
        # Converged once the objective stops rising by tol; a small change
        # after a partial gate step is confirmed by an exact one. Experts
        # that the data cannot tell apart have converged too: the remaining
        # moves are the gate's, shrinking under its penalty; one exact gate
        # step finishes them.
        if (change < config.tol or indistinct) and step_exact:
            result.converged = True
            break
        exact_gate = change < config.tol or indistinct
        prev = objective
    result = _finish(run, resp, log_gate, outputs, log_lik, n_iter)
    if snapshot is None:
        return result
    return _keep_better(data, config, rng, pool, result, snapshot)


def _keep_better(data, config, rng, pool, result, snapshot):
    """The better of a repaired run and the collapsed state it replaced.

    ``snapshot`` is ``(state, n_iter, history)`` just before the run's first
    re-seeding. EM continues it (from an E-step of that state, so the same
    responsibilities), for the iterations the repaired run had left, with
    the repairs made so far recorded, so that the
    re-seeded experts are not re-seeded again. EM's objective never falls
    between repairs: a repair that ends lower than the collapsed fit
    continued has traded that objective for a forced extra expert. The
    collapsed run is then kept, and its ``repairs`` record the undone
    re-seeding (action ``"undone"``); its collapsed expert is reported by
    the usage warning and ``expert_usage_``.
    """
    state, n_iter, history = snapshot
    done = [r for r in result.repairs if r.iteration <= n_iter]
    # The same budget as the repaired run: the iterations left after the snapshot.
    rest = dataclasses.replace(config, max_iter=config.max_iter - n_iter)
    alt = _run_em(data, state, rest, rng, None, pool, repairs=done)
    if not alt.objective > result.objective:
        return result
    alt.repairs = done + [
        _repair.Repair(n_iter, r.expert, "undone", r.donor, r.share, r.name)
        for r in done if r.iteration == n_iter and r.action == "reseed"
    ] + alt.repairs[len(done):]
    alt.history = history + alt.history
    alt.n_iter += n_iter
    return alt


def _finish(run, resp, log_gate, outputs, log_lik, n_iter):
    """Fill the run's result. Under ``top_k``, one full E-step at the end: the
    iterations evaluated each expert on its candidate rows only; the fitted
    model's responsibilities and log-likelihood take each row's ``top_k``
    posteriors among all the experts (``log_gate`` is the last iteration's:
    a repair is always followed by another iteration)."""
    data, state, config, result = run.data, run.state, run.config, run.result
    if _routing.effective_k(config.top_k, len(state.experts)) is not None:
        resp, log_norm = e_step(data, state, config.top_k, log_gate=log_gate)
        log_lik = data.sample_weight @ log_norm / data.total
    elif outputs is not None and hasattr(data.likelihood, "weak_experts"):
        # The outputs are the fitted experts' on every row. (The chunked
        # passes keep none: their least-squares experts, with an intercept,
        # cannot fit their rows worse than those rows' mean.)
        result.weak = data.likelihood.weak_experts(
            outputs, data.y, data.sample_weight[:, None] * resp,
            config.min_expert_weight,
        )
    result.state = state
    result.resp = resp
    result.n_iter = n_iter
    result.objective = result.history[-1]
    result.log_likelihood = log_lik
    result.usage = (
        data.sample_weight @ resp / data.total if run.passes is None
        else run.passes.usage(data, resp)
    )
    return result
