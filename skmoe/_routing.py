"""Sparse top-k routing of a mixture of experts.

- the routed (sparse) gate and the grouping of rows per expert, so that
  every expert runs once, on the rows routed to it;
- the sparse E-step (each row's posterior kept on its ``top_k`` experts)
  and the candidate rows on which sparse EM evaluates each expert.
"""

import numpy as np

from . import _kernels, _threaded


def effective_k(top_k, n_experts):
    """``top_k`` as an int below ``n_experts``, or None for the dense model."""
    if top_k is None or top_k >= n_experts:
        return None
    return int(top_k)


def routed_gate(log_gate, top_k):
    """Gate weights used for prediction: softmax over each row's ``top_k`` outputs.

    ``log_gate`` are the gate's log-probabilities (logits would do as well:
    the softmax is invariant to a shift of each row). The dense gate when
    ``top_k`` is None or at least the number of experts.
    """
    k = effective_k(top_k, log_gate.shape[1])
    if k is None:
        return np.exp(log_gate)
    return _kernels.top_k_softmax(log_gate, k)


def e_step(log_gate, log_lik, top_k, out=None, serial=False):
    """Dense E-step, or the sparse one keeping each row's ``top_k`` posteriors.

    ``out`` (dense E-step only): a buffer for the responsibilities.
    ``serial``: the serial kernel (mini-batches; it keeps the posteriors
    below ``exp(-708)`` that the threaded kernel's fast ``exp`` flushes to 0).
    """
    k = effective_k(top_k, log_gate.shape[1])
    if k is None:
        if serial:
            return _kernels.e_step(log_gate, log_lik)
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
