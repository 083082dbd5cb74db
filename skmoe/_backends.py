"""The passes of EM over the rows: one protocol, one object per place the rows live.

EM (:func:`skmoe._em.run_em`) reads the rows only through a *passes* object,
chosen once per EM run by :func:`choose_passes` (and again only when a
collapse repair drops an expert, which may turn a sparse ``top_k`` model
into a dense one). The run imports no backend by name.

The protocol (every method takes the run's :class:`~skmoe._em.EMData`
``data`` and :class:`~skmoe._em.EMState` ``state``):

``stats_pass(data, resp)``
    The next M-step's sums for the responsibilities ``resp`` (one pass).
``m_step(data, state, stats, resp, keep_empty)``
    The experts and the likelihood's parameters (``state.theta``) from
    ``stats`` alone; False, having changed nothing, where it cannot (an
    empty expert): the in-memory backend then takes the general M-step for
    that iteration.
``m_step_gate(data, state, resp, stats, max_iter)``
    The gate's M-step from sums over the rows (``max_iter`` as the gate's
    ``fit_soft``); False, having changed nothing, where the gate's own
    optimiser should run instead.
``e_pass(data, state, out, gate_sums=True)``
    One fused pass: the gate, the experts' outputs, the log-likelihood,
    the responsibilities (into ``out`` where it can) and the next M-step's
    sums (with the gate's, for its next M-step, under ``gate_sums``).
    Returns ``(resp, stats, mean_log_lik)``.
``same_experts(state)``
    Whether every expert is one and the same model (EM's "indistinct
    experts" test).
``usage(data, resp)``
    Each expert's share of the training weight, ``sw @ resp / total``.
``repairs``
    Whether EM's collapse repair can read these rows (it splits an
    expert's rows by 2-means, in memory).
``falls_back``
    Whether a declined ``m_step`` falls back to the general M-step (the
    in-memory rows: any scikit-learn expert can be refit on them).

Implementations:

- :class:`InMemoryPasses` (here): float64 NumPy rows (dense, or a memmap),
  linear Gaussian experts, a softmax gate: the numba-threaded chunks of
  :mod:`skmoe._chunked`;
- ``None``: the general path of :mod:`skmoe._em` (any expert, likelihood,
  gate, sparse ``X``, DataFrames, ``top_k``), the in-memory fallback;
- :class:`skmoe._array_api.ArrayAPIPasses` (and ``LogisticPasses``): an
  array namespace on its device, carried by ``data.passes``;
- :class:`skmoe._dask.DaskPasses`: dask blocks, every sum tree-reduced on
  the workers, carried by ``data.passes``.
"""

from . import _chunked


class InMemoryPasses:
    """The fused passes of :mod:`skmoe._chunked` over rows in memory."""

    repairs = True
    falls_back = True

    def stats_pass(self, data, resp):
        """The M-step's sums for ``resp``."""
        return _chunked.stats_pass(data, resp)

    def m_step(self, data, state, stats, resp, keep_empty):
        """Experts and variances from the sums; False where an expert is empty."""
        return _chunked.m_step(data, state, stats, resp, keep_empty)

    def m_step_gate(self, data, state, resp, stats, max_iter):
        """The gate's Newton M-step on the sums (large gates, many rows)."""
        return _chunked.m_step_gate(data, state, resp, stats, max_iter)

    def e_pass(self, data, state, out, gate_sums=True):
        """The fused E-pass with the next M-step's sums."""
        return _chunked.e_pass(data, state, out, gate_sums=gate_sums)

    def same_experts(self, state):
        """Whether every expert is the same linear model."""
        return _chunked.same_experts(state)

    def usage(self, data, resp):
        """The experts' shares of the training weight."""
        return data.sample_weight @ resp / data.total


IN_MEMORY = InMemoryPasses()


def choose_passes(data, state, config):
    """The passes of an EM run on ``data`` from ``state``: the data's own
    (``data.passes``: an array namespace, dask blocks), the in-memory chunked
    passes where they apply (:func:`skmoe._chunked.applicable`), else None
    (the general path)."""
    if data.passes is not None:
        return data.passes
    if _chunked.applicable(data, state, config):
        return IN_MEMORY
    return None
