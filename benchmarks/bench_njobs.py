"""n_jobs=2 against n_jobs=1 with expensive experts (HistGradientBoosting).

Experts are fitted in parallel through joblib (loky processes), each with
one OpenMP thread in both runs so that the comparison is of the experts'
parallelism alone; the results must be identical.

    python benchmarks/bench_njobs.py [--n 20000] [--repeat 2]
"""

import argparse
import os
import sys

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import best_of, table, write  # noqa: E402
from _data import make_piecewise_linear  # noqa: E402
from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: E402

from skmoe import MixtureOfExpertsRegressor  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    load_start = list(os.getloadavg())
    X, y = make_piecewise_linear(args.n)

    def fit(n_jobs):
        return MixtureOfExpertsRegressor(
            HistGradientBoostingRegressor(max_iter=100, random_state=0), n_experts=4,
            max_iter=args.max_iter, tol=0.0, n_jobs=n_jobs, random_state=0,
        ).fit(X, y)

    rows = []
    with threadpool_limits(1, user_api="openmp"):
        fit(2)  # start the workers once
        t1, m1 = best_of(lambda: fit(1), args.repeat)
        t2, m2 = best_of(lambda: fit(2), args.repeat)
    same = bool(
        np.array_equal(m1.log_likelihood_history_, m2.log_likelihood_history_)
        and np.array_equal(m1.predict(X), m2.predict(X))
    )
    rows.append(dict(n=args.n, em_iter=int(m1.n_iter_), n_jobs1_s=t1, n_jobs2_s=t2,
                     speedup=t1 / t2, identical=same))
    table(rows, ["n", "em_iter", "n_jobs1_s", "n_jobs2_s", "speedup", "identical"])
    write("bench_njobs", rows, loadavg_at_start=load_start, target="speedup >= 1.6, identical")


if __name__ == "__main__":
    main()
