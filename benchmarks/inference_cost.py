"""The cost of the covariance against 5 EM iterations, at 100,000 rows.

A gated mixture of ``K`` linear-Gaussian experts on ``n x d`` inputs (gate
on every input, ``LinearRegression()`` experts, ``SoftmaxGate(alpha=0)``).
Measured in the same run, best of ``--repeat``:

* ``fit`` with ``max_iter=5, tol=0``, ``n_init=1`` and a fixed initial
  responsibility array (no initialisation pool): 5 EM iterations;
* ``covariance(X, y)`` of a converged fit of the same model (the exact
  observed information, ``P = (K-1)(d+1) + K(d+2)`` parameters, and its
  inverse).

    python benchmarks/inference_cost.py [--n 100000] [--d 5] [--k 3] [--repeat 3]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate


def make_data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = 2 * rng.normal(size=(k, d))
    logits = X @ W.T
    z = np.argmax(logits + rng.gumbel(size=(n, k)), axis=1)
    B = rng.normal(size=(k, d))
    y = np.einsum("ij,ij->i", X, B[z]) + z + 0.3 * rng.standard_normal(n)
    resp = np.full((n, k), 0.1 / (k - 1))
    resp[np.arange(n), z] = 0.9
    return X, y, resp


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=5)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    X, y, resp = make_data(args.n, args.d, args.k)

    def model(**kw):
        return MixtureOfExpertsRegressor(
            LinearRegression(),
            n_experts=args.k,
            gate=SoftmaxGate(alpha=0),
            n_init=1,
            init=resp,
            **kw,
        )

    converged = model(tol=1e-10, max_iter=2000).fit(X, y)
    model(max_iter=5, tol=0).fit(X, y)  # warm up the compiled kernels
    converged.covariance(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 5 iterations do not converge
        t_em, fit5 = best_time(lambda: model(max_iter=5, tol=0).fit(X, y), args.repeat)
    t_cov, cov = best_time(lambda: converged.covariance(X, y), args.repeat)
    t_rob, _ = best_time(
        lambda: converged.covariance(X, y, covariance_type="robust"), args.repeat
    )
    print(
        f"n={args.n}, d={args.d}, K={args.k}: {cov.shape[0]} parameters; "
        f"converged fit: {converged.n_iter_} EM iterations"
    )
    print(f"  fit, {fit5.n_iter_} EM iterations (max_iter=5, tol=0): {t_em:.3f} s")
    print(
        f"  covariance(X, y), observed:           {t_cov:.3f} s  "
        f"({t_cov / t_em:.2f} x the 5 iterations)"
    )
    print(
        f"  covariance(X, y), robust:             {t_rob:.3f} s  "
        f"({t_rob / t_em:.2f} x the 5 iterations)"
    )


if __name__ == "__main__":
    main()
