"""Mini-batch gradient fitting of the mixtures (``solver="gd"``) and ``partial_fit``.

The on-line mixture of experts of Jordan & Jacobs: mini-batch gradient
ascent on the same penalised log-likelihood that EM maximises, written as
functions over the engine's state (:class:`skmoe._em.EMState`) that return
the engine's result type (:class:`skmoe._em.EMResult`).

The rows are taken in blocks (an epoch of :meth:`fit`: random blocks of
``_BLOCK`` = 10,000 rows; a :meth:`partial_fit` call: its rows), the work
batched per block, with no Python loop per row:

1. the E-step on the block with the current parameters gives the posteriors
   ``h_ik`` (kept on each row's ``top_k`` experts under ``top_k``, as in
   sparse EM) and the block's log-likelihood ``sum_i w_i log p(y_i | x_i)``;
2. for every mini-batch ``B`` of the block (weights ``w_i``, total ``w_B``)
   the gate takes one optimiser step (Adam or momentum SGD, scikit-learn's
   own :mod:`sklearn.neural_network` optimisers) along its
   ``sgd_gradient`` of

   .. math::

       f_B = -\\frac{1}{w_B} \\sum_{i \\in B} w_i \\sum_k h_{ik} \\log \\pi_k(x_i)
       + \\frac{\\text{penalty}}{T},

   the arrays it moves being the gate's ``sgd_parameters`` (for
   :class:`~skmoe.SoftmaxGate`, the coefficients of the input standardised
   with the statistics of the training data, or of the first batch of
   :meth:`partial_fit`). ``T`` is the total training weight (:meth:`fit`) or
   the total weight seen so far (:meth:`partial_fit`), so that ``f_B`` is
   an unbiased estimate of the objective EM maximises (divided by ``T``);
3. every expert takes one ``expert.partial_fit(X_b, y_b, sample_weight=w_i h_ik)``
   on the whole block, the posterior-weighted step of its own
   log-likelihood (an SGD expert: one pass of per-row updates, compiled);
4. the likelihood's parameters (the regressor's noise variances) follow
   exponentially decayed sums of its statistics (decay ``_VARIANCE_DECAY``
   per mini-batch), computed with the experts as they were before the step.

An epoch is one pass over the training data;
``max_iter`` counts epochs. Stopping follows scikit-learn's MLP estimators:
the epoch's objective (or the validation log-likelihood with
``early_stopping=True``) must improve by ``tol`` at least once every
``n_iter_no_change`` epochs. After an epoch (of :meth:`fit`), an expert
whose share of the epoch's weight fell below ``min_expert_weight`` is
repaired as in EM (:mod:`skmoe._repair`), and the mixture then takes a full
M-step from the repaired responsibilities.
"""

import time
from dataclasses import dataclass, fields

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.utils import gen_batches

from . import _em, _repair, _routing
from ._experts import (
    assignments,
    estimator_name,
    expert_weights,
    fit_expert,
    make_experts,
    partial_fit_expert,
)
from ._gating import prepare_gate

#: Decay per mini-batch of the sums behind the likelihood's running
#: parameters: the estimate remembers roughly the last ten mini-batches, so it
#: follows the experts as they move.
_VARIANCE_DECAY = 0.9


@dataclass
class SGDConfig:
    """The estimator's settings that the gradient solver reads."""

    assignment: str = "soft"
    top_k: object = None
    min_expert_weight: float = 1e-3
    on_collapse: str = "reseed"
    tol: float = 1e-4
    n_iter_no_change: int = 10
    batch_size: object = "auto"
    shuffle: bool = True
    optimizer: str = "adam"
    learning_rate: str = "constant"
    learning_rate_init: float = 0.1
    momentum: float = 0.9
    verbose: int = 0
    #: Prefix of the progress lines (``"[init 2/5] "`` for a restart).
    label: str = ""

    @classmethod
    def from_estimator(cls, estimator):
        return cls(**{
            f.name: getattr(estimator, f.name) for f in fields(cls)
            if f.name != "label"
        })


class SGDState:
    """The optimiser, running sums and random stream of ``solver="gd"``.

    Kept by the estimator between :meth:`partial_fit` calls; its size does
    not depend on the number of samples or of calls.
    """

    def __init__(self, optimizer, rng):
        self.optimizer = optimizer
        self.rng = rng
        self.stats = None
        self.weight_seen = 0.0
        self.usage = None


def check_partial_fit_experts(experts, from_list):
    """Raise a TypeError naming the experts that have no ``partial_fit``."""
    if from_list:
        missing = [
            f"experts[{k}] ({estimator_name(e)})"
            for k, e in enumerate(experts)
            if not hasattr(e, "partial_fit")
        ]
    else:
        missing = [] if hasattr(experts[0], "partial_fit") else [
            f"experts ({estimator_name(experts[0])})"
        ]
    if missing:
        raise TypeError(
            "solver='gd' updates every expert with partial_fit on each mini-batch, "
            f"but {', '.join(missing)} has no partial_fit. Use experts with "
            "partial_fit (SGDRegressor, SGDClassifier, MLPRegressor, "
            "MLPClassifier, GaussianNB, ...) or solver='em'."
        )


def make_optimizer(config, params):
    """The gate's optimiser over ``params`` (its ``sgd_parameters``)."""
    if config.optimizer == "adam":
        return AdamOptimizer(params, config.learning_rate_init)
    return SGDOptimizer(
        params, config.learning_rate_init, config.learning_rate, config.momentum,
        nesterov=True,
    )


def split_validation(data, fraction, rng, stratify, n_experts):
    """``(train, held_out, train_rows)`` for ``early_stopping``."""
    train, held = train_test_split(
        np.arange(data.X.shape[0]), test_size=fraction, random_state=rng,
        stratify=stratify,
    )
    if held.size < 2:
        raise ValueError(
            "The validation set is too small. Increase "
            "'validation_fraction' or the size of your dataset."
        )
    train.sort()
    held.sort()
    if np.count_nonzero(data.sample_weight[train]) < n_experts:
        raise ValueError(
            "early_stopping leaves fewer training samples than n_experts="
            f"{n_experts}; decrease validation_fraction."
        )
    return data.subset(train), data.subset(held), train


def initial_state(data, prototypes, gate, resp, rng, config, classes):
    """New experts (clones of ``prototypes``) and ``gate`` after a full M-step
    from ``resp``; returns ``(state, sgd_state)``."""
    state = _em.EMState(make_experts(prototypes, rng), gate)
    prepare_gate(state.gate, data.Z, data.sample_weight, len(prototypes))
    sgd = SGDState(None, rng)
    full_m_step(data, state, resp, sgd, config, classes)
    return state, sgd


def resumed_state(data, state, prototypes, rng, config, classes, top_k, freeze):
    """The gradient state that continues a fitted ``state`` (its gate prepared
    on ``data``) with a fresh optimiser, as MLP's warm start; with more
    ``prototypes`` than experts, the mixture grows first (a full M-step)."""
    sgd = SGDState(make_optimizer(config, state.gate.sgd_parameters()), rng)
    if len(state.experts) < len(prototypes):
        resp = _repair.grow(data, state, prototypes, rng, top_k, freeze)
        full_m_step(data, state, resp, sgd, config, classes)
    return sgd


def _update_experts(data, state, weights, resp, rng, config, classes, init):
    """Give every expert one ``partial_fit`` step; return the weights used.

    ``init=True`` is a full M-step (the first one, or the one after a
    repair): an expert without weight is fit on every row, so that it can
    predict, and the experts are fit with their own ``fit`` unless the rows
    lack some of ``classes`` (a classifier's first batch), where ``fit``
    would learn too few classes and ``partial_fit(classes=...)`` is used.
    Otherwise an expert without weight is skipped for this batch.
    """
    X, y, sample_weight = data.X, data.y, data.sample_weight
    columns, _ = expert_weights(
        state.experts, sample_weight, weights, resp, rng, config.assignment,
        keep_empty=not init, skip=state.frozen, method="partial_fit",
    )
    use_fit = init and (classes is None or np.array_equal(np.unique(y), classes))
    subset_rows = data.likelihood.subset_rows
    used = np.array(weights)
    for k, (expert, w) in enumerate(zip(state.experts, columns)):
        if w is None:
            continue
        used[:, k] = w
        if use_fit:
            fit_expert(expert, X, y, w, subset_rows)
        else:
            partial_fit_expert(expert, X, y, w, classes, subset_rows)
    return used


def _set_theta(state, lik, stats):
    theta = lik.m_step(stats, state.theta)
    if theta is not None and state.frozen.any():
        theta[state.frozen] = state.frozen_theta[state.frozen]
    state.theta = theta


def full_m_step(data, state, resp, sgd, config, classes):
    """An M-step on all of ``data`` from ``resp``: the start of a run, or the
    step after a repair. Resets the optimiser and the running sums."""
    lik = data.likelihood
    assign = assignments(resp, sgd.rng, config.assignment)
    weights = data.sample_weight[:, None] * assign
    used = _update_experts(data, state, weights, resp, sgd.rng, config, classes, True)
    outputs = lik.outputs(state.experts, data.X)
    state.theta = None
    _set_theta(state, lik, lik.stats(outputs, data.y, used))
    state.gate.fit_soft(data.Z, assign, data.sample_weight)
    sgd.optimizer = make_optimizer(config, state.gate.sgd_parameters())
    sgd.stats = None


def _block_step(data, state, sgd, config, classes, total):
    """One block of rows: returns its mean log-likelihood before the step.

    The posteriors of every row come from one E-step on the whole block
    (one product per expert, one kernel call); the gate then takes one
    optimiser step per mini-batch of ``batch_size`` rows (shuffled) against
    them (a few small products each), and every expert takes ONE
    posterior-weighted ``partial_fit`` step on the whole block (for SGD
    experts: a pass of per-row updates in compiled code). The likelihood's
    running sums decay by ``_VARIANCE_DECAY`` per mini-batch. No Python work
    is done per row, and the per-mini-batch work is the gate's only.
    """
    n_samples = data.X.shape[0]
    batch_size = (
        min(200, n_samples) if config.batch_size == "auto"
        else max(1, min(config.batch_size, n_samples))
    )
    lik = data.likelihood
    outputs = lik.outputs(state.experts, data.X)
    resp, log_norm = _routing.e_step(
        state.gate.log_proba(data.Z), lik.log_lik(outputs, data.y, state.theta),
        config.top_k,
    )
    assign = assignments(resp, sgd.rng, config.assignment)
    order = sgd.rng.permutation(n_samples) if config.shuffle else None
    n_batches = 0
    for batch in gen_batches(n_samples, batch_size):
        rows = batch if order is None else order[batch]
        sw = data.sample_weight[rows]
        if sw.sum() <= 0:
            continue
        grads = state.gate.sgd_gradient(data.Z[rows], assign[rows], sw, total)
        sgd.optimizer.update_params(state.gate.sgd_parameters(), grads)
        n_batches += 1
    weights = data.sample_weight[:, None] * assign
    used = _update_experts(data, state, weights, resp, sgd.rng, config, classes, False)
    stats = lik.stats(outputs, data.y, np.ascontiguousarray(used))
    if sgd.stats is not None:
        decay = _VARIANCE_DECAY ** max(n_batches, 1)
        stats = tuple(decay * a + b for a, b in zip(sgd.stats, stats))
    sgd.stats = stats
    _set_theta(state, lik, stats)
    seen = data.sample_weight.sum()
    sgd.usage = data.sample_weight @ resp / seen
    return float(data.sample_weight @ log_norm) / seen


#: Rows per block of an epoch (see :func:`_epoch`).
_BLOCK = 10000


def _epoch(data, state, sgd, config, classes, total):
    """One pass over ``data``; the mean log-likelihood.

    The rows are cut into random blocks of ``_BLOCK`` rows (one block when
    there are fewer), each taken by :func:`_block_step`. A
    :meth:`partial_fit` call is one epoch over its rows, so ``fit`` with
    ``max_iter=1`` and one ``partial_fit`` call on the same data agree.
    """
    n = data.X.shape[0]
    if n <= _BLOCK:
        return _block_step(data, state, sgd, config, classes, total)
    order = sgd.rng.permutation(n) if config.shuffle else np.arange(n)
    acc = seen = 0.0
    usage = np.zeros(len(state.experts))
    for b0 in range(0, n, _BLOCK):
        rows = np.sort(order[b0 : b0 + _BLOCK])  # sorted: contiguous reads
        part = data.subset(rows)
        if part.total <= 0:
            continue
        acc += _block_step(part, state, sgd, config, classes, total) * part.total
        usage += sgd.usage * part.total
        seen += part.total
    sgd.usage = usage / seen
    return acc / seen


def mean_log_lik(data, state, top_k):
    """Mean log-likelihood of ``data`` under ``state`` (validation score)."""
    _, log_norm = _em.e_step(data, state, top_k)
    return float(data.sample_weight @ log_norm / data.total)


def _repair_epoch(data, state, sgd, config, classes, result, epoch):
    """Repair the experts that collapsed during the epoch; True if any was."""
    if config.min_expert_weight <= 0 or not np.any(sgd.usage < config.min_expert_weight):
        return False
    log_gate = state.gate.log_proba(data.Z)
    outputs = data.likelihood.outputs(state.experts, data.X)
    resp, _ = _routing.e_step(
        log_gate, data.likelihood.log_lik(outputs, data.y, state.theta), config.top_k
    )
    resp = _repair.repair_collapse(data, state, config, resp, log_gate, outputs, result, epoch)
    if resp is None:
        return False
    full_m_step(data, state, resp, sgd, config, classes)
    return True


def run_sgd(data, state, sgd, config, n_epochs, total, val=None, classes=None):
    """Up to ``n_epochs`` passes over ``data`` (an :class:`~skmoe._em.EMData`).

    ``val`` (an EMData or None) is the held-out data of ``early_stopping``.
    ``n_epochs=1`` (:meth:`partial_fit`) takes one pass, with no stopping
    rule and no repair. Returns an :class:`~skmoe._em.EMResult` whose
    ``usage`` are the expert shares over the last epoch's mini-batches.
    """
    result = _em.EMResult(state, [], False, 0, -np.inf, -np.inf, None)
    result.validation_scores = []
    best, no_improvement = -np.inf, 0
    for epoch in range(1, n_epochs + 1):
        tic = time.perf_counter()
        log_lik = _epoch(data, state, sgd, config, classes, total)
        objective = log_lik - state.gate.penalty() / total
        result.history.append(objective)
        score = objective if val is None else mean_log_lik(val, state, config.top_k)
        if val is not None:
            result.validation_scores.append(score)
        if config.verbose:
            extra = f", validation {score:.6f}" if val is not None else ""
            print(
                f"{config.label}Epoch {epoch:4d}: log-likelihood {log_lik:.6f}, objective "
                f"{objective:.6f}{extra}, {time.perf_counter() - tic:.3f}s"
            )
        if n_epochs == 1:  # partial_fit: one pass, no stopping rule
            break
        if epoch < n_epochs and _repair_epoch(
            data, state, sgd, config, classes, result, epoch
        ):
            best, no_improvement = -np.inf, 0
            continue
        no_improvement = no_improvement + 1 if score < best + config.tol else 0
        best = max(best, score)
        if no_improvement > config.n_iter_no_change:
            if sgd.optimizer.trigger_stopping(_stall_message(config, val), config.verbose):
                result.converged = True
                break
            no_improvement = 0
    result.n_iter = len(result.history)
    result.log_likelihood = log_lik
    result.usage = sgd.usage
    scores = result.validation_scores
    result.objective = max(scores) if scores else result.history[-1]
    return result


def _stall_message(config, val):
    what = "Validation log-likelihood" if val is not None else "Objective"
    return (
        f"{what} did not improve more than tol={config.tol} for "
        f"{config.n_iter_no_change} consecutive epochs."
    )
