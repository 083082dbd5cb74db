"""Every core: the 1,000,000 x 20, 8-linear-expert fit with 1 and with N threads.

The problem of ``benchmarks/bench_scale.py``. Fits the same mixture with
``numba.set_num_threads(t)`` for each ``t`` of ``--threads``, with the
initialisation pool's short runs in the fitting process (``n_jobs=None``)
and, for ``t > 1``, also on ``t`` joblib workers (``n_jobs=t``: every core
for the whole fit), alternating, ``--repeat`` times (medians reported);
checks that every fit gives the bit-identical log-likelihood, and prints the
speed-up over one thread.

Then prints a profile of one EM iteration on all the rows (the 3rd; threads
as the last entry of ``--threads``): the wall time of each phase, and which are
parallel (row chunks on the threads of ``skmoe._threaded``) or serial:

* ``m_step``: experts and variances from the moments (serial, tiny);
* ``gate passes``: the gate's loss and gradient over the rows (parallel);
* ``gate other``: the optimiser between the passes (serial);
* ``e_pass``: predictions, E-step and the next M-step's moments (parallel);
* ``rest``: the EM loop's own bookkeeping (serial);

and the share of the fit taken by the initialisation pool (short EM runs on a
subsample of 2,000 rows: in this process, or on ``n_jobs`` workers) and by
the EM run on all the rows; the profiled fit runs with every configuration too (alternating, ``--repeat``
times), for the speed-up of the EM run on all the rows alone; and, as a
control, the speed-up that a compiled GIL-free kernel alone gets from the
threads at that moment (on a machine with no idle core, none).

    python benchmarks/bench_threads.py [--n 1000000] [--threads 1 2] [--repeat 1]
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import table, write  # noqa: E402
from _data import make_piecewise_linear  # noqa: E402

from skmoe import (  # noqa: E402
    MixtureOfExpertsRegressor, SoftmaxGate, _base, _chunked, _em, _pool, _threaded,
)


def _model(k, max_iter, n_jobs=None):
    return MixtureOfExpertsRegressor(
        n_experts=k, gate=SoftmaxGate(alpha=0.0), max_iter=max_iter, random_state=0,
        n_jobs=n_jobs,
    )


class _Timer:
    """Wall time of wrapped functions, per call, for one chosen full-data iteration."""

    def __init__(self, n_rows):
        self.times = {}
        self.iteration = 0
        self.record_at = 3
        self.n_rows = n_rows

    def recording(self):
        return self.iteration == self.record_at

    def wrap(self, module, name, label, full_data_only=False):
        real = getattr(module, name)

        def timed(*args, **kwargs):
            tic = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                if self.recording() or (
                    full_data_only and args[0].X.shape[0] == self.n_rows
                ):
                    self.times[label] = self.times.get(label, 0.0) + time.perf_counter() - tic

        setattr(module, name, timed)
        return real


def profile_iteration(X, y, k, threads, max_iter, n_jobs=None):
    """Wall time of the phases of the 3rd EM iteration on all the rows, and of
    the fit's two parts: the initialisation pool (on a subsample) and the EM
    run on every row."""
    numba.set_num_threads(threads)
    timer = _Timer(X.shape[0])
    originals = []
    real_iter = _em._iteration

    def iteration(data, *args, **kwargs):
        full = data.X.shape[0] == timer.n_rows
        timer.iteration += full
        tic = time.perf_counter()
        out = real_iter(data, *args, **kwargs)
        if full and timer.recording():
            timer.times["iteration"] = time.perf_counter() - tic
        return out

    originals.append((_em, "_iteration", real_iter))
    _em._iteration = iteration
    for module, name, label, full in [
        (_pool, "run_em", "full-data EM", True),
        (_base, "run_em", "full-data EM", True),
        (_chunked, "m_step", "m_step", False),
        (_chunked, "m_step_gate", "gate M-step (Newton)", False),
        (_em, "m_step_gate", "gate M-step (L-BFGS)", False),
        (_chunked, "gate_pass", "gate passes", False),
        (_threaded, "gate_loss_grad", "gate passes", False),
        (_chunked, "e_pass", "e_pass", False),
    ]:
        originals.append((module, name, timer.wrap(module, name, label, full)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tic = time.perf_counter()
            moe = _model(k, max_iter, n_jobs).fit(X, y)
            fit_s = time.perf_counter() - tic
    finally:
        for module, name, real in reversed(originals):
            setattr(module, name, real)
    t = timer.times
    total = t["iteration"]
    gate = t.get("gate M-step (Newton)", 0.0) + t.get("gate M-step (L-BFGS)", 0.0)
    rows = [
        dict(phase="m_step (serial)", seconds=t.get("m_step", 0.0)),
        dict(phase="gate passes (parallel)", seconds=t.get("gate passes", 0.0)),
        dict(phase="gate optimiser (serial)", seconds=gate - t.get("gate passes", 0.0)),
        dict(phase="e_pass (parallel)", seconds=t.get("e_pass", 0.0)),
    ]
    rows.append(dict(phase="rest (serial)", seconds=total - sum(r["seconds"] for r in rows)))
    rows.append(dict(phase="iteration", seconds=total))
    for r in rows:
        r["share"] = r["seconds"] / total
    em = t.get("full-data EM", 0.0)
    parts = [
        dict(part=f"init pool + start (subsample, n_jobs={n_jobs})", seconds=fit_s - em),
        dict(part=f"EM on all rows ({moe.n_iter_} iterations)", seconds=em),
        dict(part="fit", seconds=fit_s),
    ]
    for r in parts:
        r["share"] = r["seconds"] / fit_s
    return rows, parts


def control(threads, repeat=6):
    """Best-of-``repeat`` seconds of a compiled, GIL-free kernel (row-wise
    log-softmax of 4,000,000 x 8) per thread count: what the machine itself
    gives a second thread at the moment (on a busy machine, about nothing)."""
    a = np.random.RandomState(0).normal(size=(4_000_000, 8))
    _threaded.log_softmax_rows(a)
    best = {t: np.inf for t in threads}
    for _ in range(repeat):
        for t in threads:
            numba.set_num_threads(t)
            tic = time.perf_counter()
            _threaded.log_softmax_rows(a)
            best[t] = min(best[t], time.perf_counter() - tic)
    return [dict(threads=t, kernel_s=best[t], speedup=best[threads[0]] / best[t])
            for t in threads]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--max-iter", type=int, default=100)
    args = p.parse_args()
    load = list(os.getloadavg())
    X, y = make_piecewise_linear(args.n, n_features=args.d, n_pieces=args.k)
    _model(args.k, 5).fit(X[:5000], y[:5000])  # compile / load the kernels
    # Each thread count t with the pool's short runs in this process
    # (n_jobs=None) and, for t > 1, on t joblib workers (n_jobs=t).
    configs = [(t, None) for t in args.threads] + [(t, t) for t in args.threads if t > 1]
    for t, jobs in configs:  # start the workers, compile the kernels in them
        if jobs:
            numba.set_num_threads(t)
            _model(args.k, 5, jobs).fit(X[:6000], y[:6000])
    times = {c: [] for c in configs}
    lls = {}
    iters = {}
    for _ in range(args.repeat):
        for t, jobs in configs:
            numba.set_num_threads(t)
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                moe = _model(args.k, args.max_iter, jobs).fit(X, y)
            times[t, jobs].append(time.perf_counter() - tic)
            lls.setdefault((t, jobs), float(moe.log_likelihood_))
            iters[t, jobs] = int(moe.n_iter_)
    base = statistics.median(times[configs[0]])
    rows = [dict(
        threads=t, n_jobs=str(jobs), fit_s=statistics.median(times[t, jobs]),
        n_iter=iters[t, jobs], speedup=base / statistics.median(times[t, jobs]),
        log_likelihood=lls[t, jobs],
    ) for t, jobs in configs]
    table(rows, ["threads", "n_jobs", "fit_s", "n_iter", "speedup", "log_likelihood"])
    same = len(set(lls.values())) == 1
    print(f"log-likelihood identical for every thread count and n_jobs: {same}")
    # The profiled fit with every configuration (alternating), the last one
    # shown: the EM run on all the rows is the part that the threads share.
    em = {c: [] for c in configs}
    for _ in range(args.repeat):
        for t, jobs in configs:
            prof, parts = profile_iteration(X, y, args.k, t, args.max_iter, jobs)
            em[t, jobs].append(parts[1]["seconds"])
    print(f"\nOne EM iteration on all rows (the 3rd), {configs[-1][0]} threads:")
    table(prof, ["phase", "seconds", "share"])
    print("\nThe parts of the fit (the same fit, timed):")
    table(parts, ["part", "seconds", "share"])
    em_rows = [dict(threads=t, n_jobs=str(jobs), em_s=statistics.median(em[t, jobs]),
                    speedup=statistics.median(em[configs[0]]) / statistics.median(em[t, jobs]))
               for t, jobs in configs]
    print("\nThe EM run on all the rows alone (medians):")
    table(em_rows, ["threads", "n_jobs", "em_s", "speedup"])
    ctrl = control(args.threads)
    print("\nControl: a compiled GIL-free kernel alone (best of 6):")
    table(ctrl, ["threads", "kernel_s", "speedup"])
    print(f"load average at start {load}, at end {list(os.getloadavg())}")
    write("bench_threads", rows, profile=prof, fit_parts=parts, em_on_all_rows=em_rows,
          control=ctrl,
          identical=same,
          loadavg_at_start=load,
          loadavg_at_end=list(os.getloadavg()),
          target="fit_s <= 8 s; 2 threads >= 1.7x faster than 1; no serial phase > 15%")


if __name__ == "__main__":
    main()
