"""Throughput of the E-step and combiner kernels against one numpy pass.

At ``n x K`` (default 1,000,000 x 8): each skmoe kernel (as the EM loop and
``predict`` call it, through ``skmoe._threaded``) against a plain numpy
expression that reads the same input arrays once and writes an output of the
same size (``a + b`` for two ``n x K`` inputs, ``einsum("ik,ik->i")`` for the
combiners). Ratio = kernel time / numpy time (target: at most 2).

    python benchmarks/bench_kernels.py [--n 1000000] [--k 8] [--repeat 9]
"""

import argparse
import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import best_of, table, write  # noqa: E402

from skmoe import _kernels, _threaded  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    load_start = list(os.getloadavg())
    rng = np.random.default_rng(0)
    n, k = args.n, args.k
    a = rng.standard_normal((n, k))
    b = rng.standard_normal((n, k)) * 10
    gate = _threaded.log_softmax_rows(a)
    np.exp(gate, out=gate)
    y = rng.standard_normal(n)
    var = rng.uniform(0.5, 2, size=k)
    sw = np.ones(n)
    buf = np.empty_like(a)

    np.copyto(buf, a)

    def grad():
        # In place, as the gate's optimiser calls it: from the second call on
        # ``buf`` holds gradients instead of logits (finite values; the cost
        # of exp and log does not depend on them), so no copy is timed.
        return _threaded.soft_target_grad_inplace(buf, gate, sw)

    cases = [
        ("e_step", lambda: _threaded.e_step(a, b), lambda: a + b),
        ("log_softmax_rows", lambda: _threaded.log_softmax_rows(a), lambda: a + 1.0),
        ("soft_target_grad (in place)", grad, lambda: a + b),
        ("gaussian_log_lik", lambda: _threaded.gaussian_log_lik(y, b, var), lambda: a + 1.0),
        ("mix_mean", lambda: _threaded.mix_mean(gate, b), lambda: np.einsum("ik,ik->i", gate, b)),
        ("mix_mean_var", lambda: _threaded.mix_mean_var(gate, b, var),
         lambda: np.einsum("ik,ik->i", gate, b)),
        ("e_step (old serial kernel)", lambda: _kernels.e_step(a, b), lambda: a + b),
    ]
    rows = []
    for threads in sorted({1, numba.get_num_threads()}):
        numba.set_num_threads(threads)
        for name, kern, ref in cases:
            kern()
            tk, _ = best_of(kern, args.repeat)
            tn, _ = best_of(ref, args.repeat)
            rows.append(dict(kernel=name, threads=threads, n=n, k=k, kernel_ms=1e3 * tk,
                             numpy_ms=1e3 * tn, ratio=tk / tn))
    table(rows, ["kernel", "threads", "kernel_ms", "numpy_ms", "ratio"])
    write("bench_kernels", rows, loadavg_at_start=load_start, target="ratio <= 2")


if __name__ == "__main__":
    main()
