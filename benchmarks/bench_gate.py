"""The gate M-step: SoftmaxGate against LogisticRegression on replicated data.

Both get the same standardised inputs ``Z`` (so SoftmaxGate's penalty on
standardised coefficients is LogisticRegression's), soft targets from a
softmax of a random linear function plus noise, and ``alpha = 1 / C``.
LogisticRegression (lbfgs) runs with ``tol=1e-8``; the objectives are
compared with ``peers.gate_objective``.

    python benchmarks/bench_gate.py [--n 100000] [--d 20] [--k 8] [--alpha 1.0]
"""

import argparse
import os
import sys

import numpy as np
from scipy.special import softmax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import best_of, table, write  # noqa: E402
from peers import fit_sklearn_gate, gate_objective  # noqa: E402

from skmoe import SoftmaxGate  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    load_start = list(os.getloadavg())
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((args.n, args.d))
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    R = softmax(Z @ rng.standard_normal((args.d, args.k)) + 0.5 * rng.standard_normal((args.n, args.k)), axis=1)
    SoftmaxGate(alpha=args.alpha).fit(Z[:1000], R[:1000])  # warm-up
    gate = SoftmaxGate(alpha=args.alpha, tol=1e-8, max_iter=1000)
    t, gate = best_of(lambda: gate.fit(Z, R), args.repeat)
    obj = gate_objective(Z, R, gate.coef_, gate.intercept_, args.alpha)
    sk = fit_sklearn_gate(Z, R, args.alpha, tol=1e-8)
    rows = [dict(
        n=args.n, d=args.d, k=args.k, alpha=args.alpha,
        skmoe_s=t, skmoe_iter=gate.n_iter_, skmoe_objective=obj,
        sklearn_s=sk["time_s"], sklearn_replicate_s=sk["replicate_s"], sklearn_iter=sk["n_iter"],
        sklearn_objective=sk["objective"], sklearn_status=sk["status"],
        speedup=sk["time_s"] / t, rel_objective_diff=(obj - sk["objective"]) / abs(sk["objective"]),
    )]
    table(rows, ["n", "d", "k", "skmoe_s", "skmoe_iter", "sklearn_s", "sklearn_iter",
                 "speedup", "rel_objective_diff"])
    write("bench_gate", rows, loadavg_at_start=load_start,
          target="speedup >= 10, |rel_objective_diff| <= 1e-6")


if __name__ == "__main__":
    main()
