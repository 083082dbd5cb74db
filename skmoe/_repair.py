"""Collapse repair and growth of a mixture of experts.

Both give an expert rows to own by splitting the rows of another: the
expert that fits worst (largest weighted loss) is cut in two by the
deterministic weighted 2-means of the initialisation, and the half it fits
worse moves to the expert being seeded. A repair may instead drop an expert.
The gate is edited only through its protocol (``drop_output``,
``split_output``).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _kernels, _routing
from ._experts import estimator_name, make_experts
from ._init import quantile_init_labels


@dataclass(frozen=True)
class Repair:
    """One collapse repair: at EM ``iteration``, ``expert`` was re-seeded
    from ``donor`` or dropped; ``share`` was its share of the weight."""

    iteration: int
    expert: int
    action: str
    donor: object
    share: float
    name: str

    def as_dict(self):
        return {
            "iteration": self.iteration, "expert": self.expert,
            "action": self.action, "donor": self.donor,
        }


def split_in_two(D, weight):
    """Split weighted rows in two groups of similar weight.

    The rows (with ``weight > 0``) are cut at the weighted median of their
    first principal axis, refined by weighted 2-means (the deterministic
    initialisation of the mixtures, with two clusters). Returns a boolean
    mask of the second group over all rows, or None if the rows cannot be
    split (fewer than two distinct rows).
    """
    rows = np.flatnonzero(weight > 0)
    if rows.size < 2:
        return None
    Dr = D[rows]
    spread = Dr.max(axis=0) - Dr.min(axis=0)
    if (spread.count_nonzero() if sp.issparse(spread) else np.count_nonzero(spread)) == 0:
        return None
    labels = quantile_init_labels(Dr, weight[rows], 2)
    if labels.min() == labels.max():
        return None
    mask = np.zeros(D.shape[0], dtype=bool)
    mask[rows[labels == 1]] = True
    return mask


def seed_from_donor(resp, target, donors, losses, sample_weight, D):
    """Give ``target`` half of the rows of the expert that fits worst.

    The donor is, among ``donors``, the expert with the largest weighted loss
    ``sum_i w_i resp[i, j] losses[i, j]`` (residual sum of squares for the
    regressor, log-loss for the classifier) that can be split. Its rows are
    split in two (:func:`split_in_two` on the standardised columns ``D``);
    the half it fits worse (larger weighted mean loss) moves, with its
    responsibilities, to ``target``. ``resp`` is modified in place.

    Returns the donor's index, or None if no donor could be split.
    """
    weighted = (sample_weight[:, None] * resp)[:, donors] * losses[:, donors]
    order = np.argsort(-weighted.sum(axis=0), kind="stable")
    for j in (donors[o] for o in order):
        w = sample_weight * resp[:, j]
        half = split_in_two(D, w)
        if half is None:
            continue
        rest = (w > 0) & ~half
        loss_half = w[half] @ losses[half, j] / w[half].sum()
        loss_rest = w[rest] @ losses[rest, j] / w[rest].sum()
        moved = half if loss_half >= loss_rest else rest
        resp[moved, target] += resp[moved, j]
        resp[moved, j] = 0.0
        return j
    return None


def drop_column(resp, k, log_gate):
    """Responsibilities without expert ``k``, rows renormalised.

    A row that only expert ``k`` held goes to the other experts in
    proportion to their gate probabilities (``log_gate`` without ``k``).
    """
    out = np.delete(resp, k, axis=1)
    sums = out.sum(axis=1)
    orphan = sums <= 0
    if np.any(orphan):
        out[orphan] = _kernels.softmax_rows(
            np.ascontiguousarray(np.delete(log_gate[orphan], k, axis=1))
        )
        sums[orphan] = 1.0
    out /= sums[:, None]
    return np.ascontiguousarray(out)


def repair_collapse(data, state, config, resp, log_gate, outputs, log, n_iter):
    """Re-seed or drop the experts whose share fell below ``min_expert_weight``.

    Re-seeding (``on_collapse="reseed"``) gives a collapsed expert half of
    the rows of the expert with the largest weighted loss
    (:func:`seed_from_donor`); the next M-step refits both. Frozen experts
    are never re-seeded, and an expert is re-seeded at most once per EM run:
    one that collapses again is redundant, and re-seeding it over and over
    would stall EM. Dropping (``on_collapse="drop"``) removes the expert, its
    gate output and its responsibilities (rows renormalised).

    ``log`` has the run's ``repairs`` (a list of :class:`Repair`) and
    ``empty`` (a set of experts), both updated. Returns the repaired
    responsibilities, or None when nothing was done.
    """
    if config.min_expert_weight <= 0 or resp.shape[1] < 2:
        return None
    share = data.sample_weight @ resp / data.total
    collapsed = np.flatnonzero(share < config.min_expert_weight)
    if collapsed.size == 0:
        return None
    # The chunked iterations keep neither the gate's log-probabilities nor
    # the outputs: computed here, for the rare iteration that repairs.
    if config.on_collapse == "drop":
        if log_gate is None:
            log_gate = state.gate.log_proba(data.Z)
        return _drop_collapsed(state, resp, log_gate, share, collapsed, log, n_iter)
    if outputs is None:
        outputs = data.likelihood.outputs(state.experts, data.X)
    return _reseed_collapsed(data, state, resp, outputs, share, collapsed, log, n_iter)


def _drop_collapsed(state, resp, log_gate, share, collapsed, log, n_iter):
    # Keep at least one expert: the largest one never goes.
    collapsed = [k for k in collapsed if k != np.argmax(share)]
    for k in sorted(collapsed, reverse=True):
        resp = drop_column(resp, k, log_gate)
        log_gate = np.delete(log_gate, k, axis=1)
        log.repairs.append(
            Repair(n_iter, k, "drop", None, share[k], estimator_name(state.experts[k]))
        )
        state.drop(k)
        kept = {e - (e > k) for e in log.empty if e != k}
        log.empty.clear()
        log.empty.update(kept)
    return resp


def _reseed_collapsed(data, state, resp, outputs, share, collapsed, log, n_iter):
    reseeded = {r.expert for r in log.repairs}
    targets = [k for k in collapsed if not state.frozen[k] and k not in reseeded]
    donors = [j for j in range(resp.shape[1]) if j not in set(collapsed)]
    if not targets or not donors:
        return None
    losses = data.likelihood.row_loss(outputs, data.y)
    resp = resp.copy()
    done = False
    for k in targets:
        j = seed_from_donor(resp, k, donors, losses, data.sample_weight, data.init_columns())
        if j is None:
            continue
        log.repairs.append(
            Repair(n_iter, k, "reseed", j, share[k], estimator_name(state.experts[k]))
        )
        log.empty.discard(k)
        done = True
    return resp if done else None


def grow(data, state, prototypes, rng, top_k, freeze):
    """Add experts to a fitted ``state``; return the responsibilities to start EM.

    The fitted mixture's responsibilities are computed on the training
    data; every new expert (a clone of its prototype) takes half of the rows
    of the expert that fits worst (:func:`seed_from_donor`), and its gate
    output starts as a copy of that expert's, the two sharing its
    probability. With ``freeze`` the fitted experts (and their ``theta``)
    are marked frozen. ``state`` is modified in place.
    """
    lik = data.likelihood
    n_old, n_experts = len(state.experts), len(prototypes)
    state.experts += make_experts(prototypes[n_old:], rng)
    outputs = lik.outputs(state.experts[:n_old], data.X)
    resp_old, _ = _routing.e_step(
        state.gate.log_proba(data.Z), lik.log_lik(outputs, data.y, state.theta), top_k
    )
    resp = np.zeros((data.X.shape[0], n_experts))
    resp[:, :n_old] = resp_old
    losses = np.zeros_like(resp)
    losses[:, :n_old] = lik.row_loss(outputs, data.y)
    for t in range(n_old, n_experts):
        donor = seed_from_donor(
            resp, t, list(range(t)), losses, data.sample_weight, data.init_columns()
        )
        if donor is None:
            # Nothing can be split: the new expert starts on every row.
            resp[:, t] = 1.0 / n_experts
            resp[:, :t] *= 1.0 - 1.0 / n_experts
            donor = int(np.argmax(data.sample_weight @ resp[:, :t]))
        losses[:, t] = losses[:, donor]
        state.gate.split_output(donor, 1)
    state.frozen = np.zeros(n_experts, dtype=bool)
    if freeze:
        state.frozen[:n_old] = True
        if state.theta is not None:
            state.frozen_theta = np.concatenate([state.theta, np.zeros(n_experts - n_old)])
    state.theta = None
    return resp
