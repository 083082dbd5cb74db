"""Larger than memory: fit on a numpy.memmap of 10,000,000 x 20 float64 (1.6 GB).

Writes the data of ``benchmarks/_data.py`` (8 pieces) chunk by chunk into a
``.npy`` file in a temporary directory (``--dir``), opens it as a read-only
memmap and fits ``MixtureOfExpertsRegressor(n_experts=8)`` (linear experts)
on it, with ``y`` in memory. Reports, as multiples of ``X``'s size:

* the peak of traced allocations during the fit (``tracemalloc``: every
  numpy buffer; the memmap's pages are not allocations);
* the peak growth of the process's anonymous resident memory (``RssAnon``
  of ``/proc/self/status``, sampled every 20 ms): the fit's own memory,
  without the memmap's file pages, which the kernel reads in and can drop
  at will;
* the growth of the peak RSS (``ru_maxrss``), which also counts the file
  pages of the memmap that were resident at the same time.

The responsibilities (``n x n_experts`` float64, 0.4 X here) are the bulk
of the extra memory and cannot be avoided by EM.

    python benchmarks/bench_memmap.py [--n 10000000] [--max-iter 100]
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import table, write  # noqa: E402
from _data import iter_piecewise_linear  # noqa: E402

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate  # noqa: E402


def _rss_anon():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class _AnonPeak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss_anon()
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(0.02):
            self.peak = max(self.peak, _rss_anon())

    def stop(self):
        self._done.set()
        self.join()
        self.peak = max(self.peak, _rss_anon())
        return self.peak


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(dir=args.dir)
    try:
        path = os.path.join(tmp, "X.npy")
        X = np.lib.format.open_memmap(path, mode="w+", shape=(args.n, args.d))
        y = np.empty(args.n)
        pos = 0
        for Xc, yc in iter_piecewise_linear(
            args.n, 1_000_000, n_features=args.d, n_pieces=args.k
        ):
            X[pos : pos + len(yc)] = Xc
            y[pos : pos + len(yc)] = yc
            pos += len(yc)
        X.flush()
        del X
        X = np.load(path, mmap_mode="r")
        # Compile / load the kernels outside the measurement.
        MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(
            np.asarray(X[:2000]), y[:2000]
        )
        moe = MixtureOfExpertsRegressor(
            n_experts=args.k, gate=SoftmaxGate(alpha=0.0), max_iter=args.max_iter,
            random_state=0,
        )
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        sampler = _AnonPeak()
        anon_before = sampler.peak
        sampler.start()
        tracemalloc.start()
        start = time.perf_counter()
        moe.fit(X, y)
        seconds = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        anon_peak = sampler.stop()
        maxrss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_before
        size = X.nbytes
        rows = [dict(
            n=args.n, d=args.d, k=args.k, X_GB=size / 1e9, fit_s=seconds,
            n_iter=int(moe.n_iter_), s_per_iter=seconds / moe.n_iter_,
            traced_peak_over_X=traced / size,
            anon_rss_growth_over_X=(anon_peak - anon_before) / size,
            maxrss_growth_over_X=maxrss_growth / size,
            log_likelihood=float(moe.log_likelihood_),
        )]
        table(rows, ["n", "X_GB", "fit_s", "n_iter", "s_per_iter", "traced_peak_over_X",
                     "anon_rss_growth_over_X", "maxrss_growth_over_X"])
        write("bench_memmap", rows, loadavg=list(os.getloadavg()),
              target="traced and anonymous-RSS peaks below 0.5 X")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
