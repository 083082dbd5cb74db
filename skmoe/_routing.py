"""Sparse top-k routing, collapse repair and growth of a mixture of experts.

Helpers of :class:`skmoe._base._BaseMixtureOfExperts`, kept apart from the EM
loop:

- the routed (sparse) gate and the grouping of rows per expert, so that
  every expert runs once, on the rows routed to it;
- the sparse E-step (each row's posterior kept on its ``top_k`` experts);
- seeding an expert by splitting the rows of another (collapse repair and
  growth), and dropping an expert.
"""

import numpy as np
import scipy.sparse as sp

from . import _kernels, _threaded


def effective_k(top_k, n_experts):
    """``top_k`` as an int below ``n_experts``, or None for the dense model."""
    if top_k is None or top_k >= n_experts:
        return None
    return int(top_k)


def routed_gate(logits, top_k):
    """Gate weights used for prediction: softmax over each row's ``top_k`` logits.

    Dense softmax when ``top_k`` is None or at least the number of experts.
    """
    k = effective_k(top_k, logits.shape[1])
    if k is None:
        return _kernels.softmax_rows(logits)
    return _kernels.top_k_softmax(logits, k)


def e_step(log_gate, log_lik, top_k, out=None):
    """Dense E-step, or the sparse one keeping each row's ``top_k`` posteriors.

    ``out`` (dense E-step only): a buffer for the responsibilities.
    """
    k = effective_k(top_k, log_gate.shape[1])
    if k is None:
        return _threaded.e_step(log_gate, log_lik, out=out)
    return _kernels.sparse_e_step(log_gate, log_lik, k)


def candidates(log_gate, resp, top_k):
    """Where sparse EM evaluates the experts: a boolean ``(n, K)`` mask.

    Row ``i``'s candidates are its ``top_k`` experts by gate probability and
    the experts that hold posterior weight for it now; None for dense EM.
    The E-step then keeps each row's ``top_k`` largest posteriors among its
    candidates. Because the current posterior's support is among them, the
    sparse-EM bound cannot decrease from one iteration to the next (the new
    support carries at least the posterior mass of the old one), and an
    expert runs on its candidate rows only: about ``2 * top_k / K`` of the
    rows instead of all.
    """
    k = effective_k(top_k, log_gate.shape[1])
    if k is None:
        return None
    top = np.argpartition(-log_gate, k - 1, axis=1)[:, :k]
    mask = resp > 0
    np.put_along_axis(mask, top, True, axis=1)
    return mask


def rows_per_expert(gate):
    """For every expert, the rows with a positive weight (None: all rows).

    ``None`` spares a copy of ``X`` when an expert serves every row (the dense
    model).
    """
    n = gate.shape[0]
    out = []
    for k in range(gate.shape[1]):
        rows = np.flatnonzero(gate[:, k] > 0)
        out.append(None if rows.size == n else rows)
    return out


def route_counts(gate):
    """Number of rows each expert serves (a positive routed weight)."""
    return np.count_nonzero(gate > 0, axis=0)


def split_in_two(D, weight):
    """Split weighted rows in two groups of similar weight.

    The rows (with ``weight > 0``) are cut at the weighted median of their
    first principal axis, refined by weighted 2-means (the deterministic
    initialisation of the mixtures, with two clusters). Returns a boolean
    mask of the second group over all rows, or None if the rows cannot be
    split (fewer than two distinct rows).
    """
    from ._base import _quantile_init_labels

    rows = np.flatnonzero(weight > 0)
    if rows.size < 2:
        return None
    Dr = D[rows]
    spread = Dr.max(axis=0) - Dr.min(axis=0)
    if (spread.count_nonzero() if sp.issparse(spread) else np.count_nonzero(spread)) == 0:
        return None
    labels = _quantile_init_labels(Dr, weight[rows], 2)
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


def drop_gate_output(gate, k):
    """Remove output ``k`` from a fitted SoftmaxGate (in place)."""
    gate.coef_ = np.ascontiguousarray(np.delete(gate.coef_, k, axis=0))
    gate.intercept_ = np.delete(gate.intercept_, k)
    gate.n_classes_ = gate.coef_.shape[0]
    gate.classes_ = np.arange(gate.n_classes_)


def split_gate_output(gate, j, n_new):
    """Add ``n_new`` outputs to a fitted gate, copies of output ``j``.

    Output ``j`` and its copies share ``j``'s probability equally
    (intercepts lowered by ``log(n_new + 1)``), so every other expert keeps
    its gate probability exactly.
    """
    coef = np.vstack([gate.coef_] + [gate.coef_[j : j + 1]] * n_new)
    intercept = np.concatenate([gate.intercept_, np.repeat(gate.intercept_[j], n_new)])
    shift = np.log(n_new + 1.0)
    intercept[j] -= shift
    intercept[-n_new:] -= shift
    gate.coef_ = np.ascontiguousarray(coef)
    gate.intercept_ = intercept
    gate.n_classes_ = coef.shape[0]
    gate.classes_ = np.arange(gate.n_classes_)
