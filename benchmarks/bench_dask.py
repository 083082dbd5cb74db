"""On a cluster: fit on a 4,000,000 x 20 dask array in 16 blocks, 2 workers.

A ``LocalCluster`` of 2 worker processes, each with a memory limit smaller
than ``X`` (640 MB; default limit 600 MB per worker, which the workers
enforce by spilling their blocks to disk). The rows of the
piecewise-linear data of ``benchmarks/_data.py`` (8 pieces) are generated
on the workers, block by block, and persisted there: ``X`` is never in one
process during the dask fit. ``MixtureOfExpertsRegressor(n_experts=8)``
(linear experts) is fitted on the dask arrays; then ``X`` is computed into
this process and the same mixture fitted in memory. Prints both times, the
iterations and the two log-likelihoods (which must agree to 1e-6).

    python benchmarks/bench_dask.py [--n 4000000] [--blocks 16] [--memory-limit 600MB]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _bench import table, write  # noqa: E402


def _block(block_info=None, *, params):
    from _data import _rows

    (start, stop), _ = block_info[None]["array-location"]
    X, y, _ = _rows(params, 0, start, stop)
    return np.column_stack([X, y])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4_000_000)
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--memory-limit", default="600MB")
    p.add_argument("--max-iter", type=int, default=100)
    args = p.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from _data import piecewise_linear_params
    from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

    params = piecewise_linear_params(n_features=args.d, n_pieces=args.k, random_state=0)
    rows = -(-args.n // args.blocks)
    x_bytes = args.n * args.d * 8
    warnings.simplefilter("ignore")

    def model():
        return MixtureOfExpertsRegressor(
            n_experts=args.k, gate=SoftmaxGate(alpha=0.0), max_iter=args.max_iter,
            random_state=0,
        )

    # The limit governs spilling: above 70% of it a worker moves its
    # blocks of X and of the responsibilities to disk. A worker process
    # takes about 400 MB before any data (numpy, scipy, scikit-learn,
    # numba), so with a limit below X's size pausing or restarting workers
    # would only stall the run: both are switched off.
    dask.config.set({
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": False,
    })
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True,
        memory_limit=args.memory_limit, dashboard_address=":0",
    ) as cluster, Client(cluster) as client:
        client.upload_file(os.path.join(HERE, "_data.py"))
        Xy = da.map_blocks(
            _block, dtype=np.float64, chunks=((rows,) * (args.n // rows)
                                              + ((args.n % rows,) if args.n % rows else ()),
                                              (args.d + 1,)),
            params=params,
        ).persist()
        X, y = Xy[:, : args.d], Xy[:, args.d]
        limit = cluster.workers[0].memory_manager.memory_limit if hasattr(
            cluster.workers[0], "memory_manager") else None
        start = time.perf_counter()
        moe = model().fit(X, y)
        t_dask = time.perf_counter() - start
        lazy = moe.predict(X)
        is_lazy = type(lazy).__name__ == "Array"
        Xl, yl = X.compute(), y.compute()
    start = time.perf_counter()
    ref = model().fit(Xl, yl)
    t_mem = time.perf_counter() - start
    rows_out = [dict(
        n=args.n, d=args.d, k=args.k, blocks=args.blocks, X_MB=x_bytes / 1e6,
        worker_memory_limit_MB=(limit or 0) / 1e6,
        dask_fit_s=t_dask, dask_n_iter=int(moe.n_iter_),
        memory_fit_s=t_mem, memory_n_iter=int(ref.n_iter_),
        dask_log_lik=float(moe.log_likelihood_), memory_log_lik=float(ref.log_likelihood_),
        log_lik_diff=abs(moe.log_likelihood_ - ref.log_likelihood_),
        predict_is_lazy=is_lazy,
    )]
    table(rows_out, ["n", "blocks", "X_MB", "worker_memory_limit_MB", "dask_fit_s",
                     "dask_n_iter", "memory_fit_s", "memory_n_iter", "log_lik_diff"])
    print(f"log-likelihood: dask {moe.log_likelihood_!r}, in memory {ref.log_likelihood_!r}")
    write("bench_dask", rows_out, loadavg=list(os.getloadavg()),
          target="log-likelihoods equal to 1e-6; worker memory limit below X")


if __name__ == "__main__":
    main()
