"""Streaming benchmark: partial_fit on a 1,000,000-row stream vs. EM on 100,000 rows.

The piecewise-linear regression of ``benchmarks/_data.py`` (5 features, 4
pieces, softmax gate) is generated chunk by chunk (10,000 rows per chunk,
never held whole) and fed to ``MixtureOfExpertsRegressor(solver="gd")
.partial_fit``. The reference is an EM fit on the first 100,000 rows of the
same stream. Both are scored (R^2) on 20,000 held-out rows, the rows
1,000,000 to 1,020,000 of the same distribution (no training set contains
them); the R^2 of the true regression function on those rows is reported too.

Peak memory of the stream is measured for 20 and for 100 chunks, each run in
its own fresh process: Python-level peak with ``tracemalloc`` (numpy
allocations included) from just before the first chunk to the end, and the
process's peak RSS (``ru_maxrss``, what ``/usr/bin/time -v`` reports as
"Maximum resident set size"). If partial_fit kept anything per call, the
100-chunk peaks would exceed the 20-chunk ones.

The throughput (rows/s in ``partial_fit``) comes from a third, untraced run
of the 100 chunks: tracemalloc slows every allocation. With ``--before
PATH`` (a checkout of an earlier skmoe), its untraced stream and this one's
alternate, twice each (best of two each).

Run from the repository root::

    python benchmarks/streaming.py

It prints its figures and writes ``benchmarks/results/streaming.json``. The
three runs go one after the other (never in parallel).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _data import (  # noqa: E402
    _rows,
    iter_piecewise_linear,
    make_piecewise_linear,
    piecewise_linear_params,
)

N_STREAM = 1_000_000
CHUNK = 10_000
N_EM = 100_000
N_TEST = 20_000
N_EXPERTS = 4
SEED = 0


def _test_set():
    """Rows [N_STREAM, N_STREAM + N_TEST) of the stream: held out by everyone."""
    params = piecewise_linear_params(random_state=SEED)
    X, y, _ = _rows(params, SEED, N_STREAM, N_STREAM + N_TEST)
    return X, y, params


def _oracle_r2(X, y, params):
    from scipy.special import softmax
    from sklearn.metrics import r2_score

    gate = softmax(X @ params["gate_coef"].T + params["gate_intercept"], axis=1)
    mean = np.sum(gate * (X @ params["coef"].T + params["intercept"]), axis=1)
    return float(r2_score(y, mean))


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def run_stream(n_chunks, traced=True):
    """The stream of ``n_chunks`` chunks; ``traced``: under tracemalloc (its
    peak), which slows every allocation: the rows/s of record come from an
    untraced run."""
    from skmoe import MixtureOfExpertsRegressor

    X_test, y_test, _ = _test_set()
    moe = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, solver="gd", random_state=SEED)
    # Compile the numba kernels (loaded from cache) outside the measurement.
    MixtureOfExpertsRegressor(n_experts=2, solver="gd", random_state=0).partial_fit(
        X_test[:50], y_test[:50]
    )
    rss_before = _peak_rss_mb()
    if traced:
        tracemalloc.start()
    tic = time.perf_counter()
    scores = []
    fit_seconds = 0.0
    for i, (X, y) in enumerate(iter_piecewise_linear(n_chunks * CHUNK, CHUNK, random_state=SEED)):
        t0 = time.perf_counter()
        moe.partial_fit(X, y)
        fit_seconds += time.perf_counter() - t0
        if (i + 1) % 10 == 0 or i + 1 == n_chunks:
            scores.append((i + 1, float(moe.score(X_test, y_test))))
    seconds = time.perf_counter() - tic
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n_chunks": n_chunks,
        "n_rows": n_chunks * CHUNK,
        "r2": float(moe.score(X_test, y_test)),
        "r2_every_10_chunks": scores,
        "seconds": seconds,
        "partial_fit_seconds": fit_seconds,
        "rows_per_s": n_chunks * CHUNK / fit_seconds,
        "traced": traced,
        "tracemalloc_peak_mb": peak / 2**20,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_before_stream_mb": rss_before,
        "n_iter": int(moe.n_iter_),
        "noise_std": np.sqrt(moe.noise_variance_).tolist(),
    }


def run_em():
    from sklearn.exceptions import ConvergenceWarning

    from skmoe import MixtureOfExpertsRegressor

    X_test, y_test, params = _test_set()
    X, y = make_piecewise_linear(N_EM, random_state=SEED)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=SEED).fit(X, y)
    return {
        "n_rows": N_EM,
        "r2": float(moe.score(X_test, y_test)),
        "seconds": time.perf_counter() - tic,
        "n_iter": int(moe.n_iter_),
        "converged": bool(moe.converged_),
        "oracle_r2": _oracle_r2(X_test, y_test, params),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(*args, source=None):
    env = None
    if source is not None:  # another checkout of skmoe (--before)
        env = dict(os.environ, PYTHONPATH=os.path.abspath(source))
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["stream", "em"], help=argparse.SUPPRESS)
    parser.add_argument("--n-chunks", type=int, default=N_STREAM // CHUNK)
    parser.add_argument("--untraced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--output", default=os.path.join(HERE, "results", "streaming.json")
    )
    parser.add_argument(
        "--before", default=None,
        help="a checkout of an earlier skmoe: its 1,000,000-row stream is timed too, "
        "right after this one's, for rows/s before and after",
    )
    args = parser.parse_args()
    if args.child == "stream":
        print(json.dumps(run_stream(args.n_chunks, traced=not args.untraced)))
        return
    if args.child == "em":
        print(json.dumps(run_em()))
        return

    em = _child("--child", "em")
    print(
        f"EM on {em['n_rows']:,} rows: R^2 {em['r2']:.4f} ({em['n_iter']} iterations, "
        f"{em['seconds']:.1f}s); true regression function: R^2 {em['oracle_r2']:.4f}"
    )
    streams = []
    for n_chunks in (20, N_STREAM // CHUNK):
        res = _child("--child", "stream", "--n-chunks", str(n_chunks))
        streams.append(res)
        print(
            f"partial_fit, {n_chunks} chunks of {CHUNK:,} rows ({res['n_rows']:,} rows): "
            f"R^2 {res['r2']:.4f}, {res['seconds']:.1f}s ({res['rows_per_s']:,.0f} rows/s "
            f"in partial_fit under tracemalloc), tracemalloc peak "
            f"{res['tracemalloc_peak_mb']:.2f} MiB, peak RSS {res['peak_rss_mb']:.1f} MiB"
        )
    full = streams[-1]
    # Throughput without tracemalloc (which slows every allocation); with
    # --before, the earlier checkout's and this one's untraced streams
    # alternate, twice each, best of two.
    stream = ("--child", "stream", "--n-chunks", str(N_STREAM // CHUNK), "--untraced")
    sources = [args.before, None] * 2 if args.before else [None]
    runs = {}
    for source in sources:
        runs.setdefault(source, []).append(_child(*stream, source=source))
    untraced = max(runs[None], key=lambda r: r["rows_per_s"])
    load = list(os.getloadavg())
    print(
        f"partial_fit, untraced: {untraced['rows_per_s']:,.0f} rows/s "
        f"(R^2 {untraced['r2']:.4f}); load average {load}"
    )
    before = None
    if args.before:
        before = max(runs[args.before], key=lambda r: r["rows_per_s"])
        print(
            f"partial_fit rows/s, untraced: before {before['rows_per_s']:,.0f} "
            f"(R^2 {before['r2']:.4f}), after {untraced['rows_per_s']:,.0f} "
            f"(R^2 {untraced['r2']:.4f}): {untraced['rows_per_s'] / before['rows_per_s']:.2f}x"
        )
    gap = full["r2"] - em["r2"]
    print(f"R^2 of the 1,000,000-row stream minus EM: {gap:+.4f} (must be within 0.02)")
    print(
        "peak memory, 100 vs 20 chunks: tracemalloc "
        f"{full['tracemalloc_peak_mb'] / streams[0]['tracemalloc_peak_mb']:.3f}x, "
        f"RSS {full['peak_rss_mb'] / streams[0]['peak_rss_mb']:.3f}x"
    )
    result = {
        "benchmark": "streaming partial_fit vs EM",
        "data": {
            "generator": "benchmarks/_data.py piecewise linear",
            "n_features": 5,
            "n_pieces": 4,
            "noise": 0.5,
            "sharpness": 5.0,
            "random_state": SEED,
            "chunk_size": CHUNK,
            "test_rows": [N_STREAM, N_STREAM + N_TEST],
        },
        "model": (
            f"MixtureOfExpertsRegressor(n_experts={N_EXPERTS}, solver='gd', "
            f"random_state={SEED}) (SGDRegressor experts, defaults)"
        ),
        "em": em,
        "streams": streams,
        "stream_untraced": untraced,
        "stream_before": before,
        "loadavg_after_streams": load,
        "r2_gap_stream_minus_em": gap,
        "within_0.02": bool(abs(gap) <= 0.02),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count()},
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
