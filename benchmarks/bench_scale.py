"""Scale: 1,000,000 rows x 20 features, 8 linear experts; time and peak memory.

Runs the fit in this process after generating the data; reports the fit's
wall time, its peak of traced allocations (tracemalloc: numpy buffers; the
numba kernels' scratch is a few KB) and the growth of the process's peak RSS
during the fit (``ru_maxrss``, what ``/usr/bin/time -v`` reports as maximum
resident set size), both relative to the size of ``X``.

    python benchmarks/bench_scale.py [--n 1000000] [--d 20] [--k 8] [--max-iter 100]

With ``--before DIR`` (a checkout of an earlier skmoe) it times the fit
instead in fresh processes, untraced, alternating between that checkout and
this one ``--repeat`` times, and prints the best time of each, their ratio
and the two log-likelihoods (``results/bench_scale_before_after.json``).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import table, write  # noqa: E402
from _data import make_piecewise_linear  # noqa: E402

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate  # noqa: E402


def _maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--no-tracemalloc", action="store_true")
    p.add_argument("--before", default=None)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.before:
        return before_after(args)
    if args.child:
        return child(args)
    load_start = list(os.getloadavg())
    X, y = make_piecewise_linear(args.n, n_features=args.d, n_pieces=args.k)
    MixtureOfExpertsRegressor(n_experts=args.k, random_state=0).fit(X[:5000], y[:5000])
    moe = _model(args)
    rss_before = _maxrss()
    if not args.no_tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    moe.fit(X, y)
    t = time.perf_counter() - start
    traced_peak = tracemalloc.get_traced_memory()[1] if not args.no_tracemalloc else None
    tracemalloc.stop()
    rss_growth = _maxrss() - rss_before
    rows = [dict(
        n=args.n, d=args.d, k=args.k, fit_s=t, n_iter=int(moe.n_iter_),
        converged=bool(moe.converged_), s_per_iter=t / moe.n_iter_,
        X_MB=X.nbytes / 2**20,
        traced_peak_over_X=None if traced_peak is None else traced_peak / X.nbytes,
        maxrss_growth_over_X=rss_growth / X.nbytes,
        tracemalloc=not args.no_tracemalloc,
    )]
    table(rows, ["n", "d", "k", "fit_s", "n_iter", "s_per_iter", "X_MB",
                 "traced_peak_over_X", "maxrss_growth_over_X"])
    write("bench_scale" + ("" if not args.no_tracemalloc else "_untraced"), rows,
          loadavg_at_start=load_start, target="fit_s < 30, peak memory < 3x X")


def _model(args):
    return MixtureOfExpertsRegressor(
        n_experts=args.k, gate=SoftmaxGate(alpha=0.0), max_iter=args.max_iter, random_state=0
    )


def child(args):
    """One untraced fit; prints its figures as JSON."""
    X, y = make_piecewise_linear(args.n, n_features=args.d, n_pieces=args.k)
    MixtureOfExpertsRegressor(n_experts=args.k, random_state=0).fit(X[:5000], y[:5000])
    moe = _model(args)
    start, cpu = time.perf_counter(), time.process_time()
    moe.fit(X, y)
    print(json.dumps(dict(
        fit_s=time.perf_counter() - start, cpu_s=time.process_time() - cpu,
        n_iter=int(moe.n_iter_), log_likelihood=float(moe.log_likelihood_),
    )))


def before_after(args):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--n", str(args.n),
           "--d", str(args.d), "--k", str(args.k), "--max-iter", str(args.max_iter)]
    load_start = list(os.getloadavg())
    runs = {"before": [], "after": []}
    for _ in range(args.repeat):
        for label, source in (("before", args.before), ("after", here)):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(source))
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(label, runs[label][-1], flush=True)
    rows = []
    for label in ("before", "after"):
        best = min(runs[label], key=lambda r: r["fit_s"])
        rows.append(dict(version=label, **best))
    rows[1]["speedup"] = rows[0]["fit_s"] / rows[1]["fit_s"]
    table(rows, ["version", "fit_s", "cpu_s", "n_iter", "log_likelihood"])
    diff = rows[1]["log_likelihood"] - rows[0]["log_likelihood"]
    print(f"speed-up {rows[1]['speedup']:.2f}x; log-likelihood after - before: {diff:.3e}")
    print(f"load average at start {load_start}, at end {list(os.getloadavg())}")
    write("bench_scale_before_after", rows, runs=runs, log_likelihood_diff=diff,
          loadavg_at_start=load_start, target="fit_s <= 8 s; log-likelihood equal to 1e-6")


if __name__ == "__main__":
    main()
