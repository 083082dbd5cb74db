"""skmoe against R flexmix: the same model on the same data.

A mixture of 4 linear-Gaussian experts with a softmax gate on all inputs
(flexmix: ``flexmix(y ~ ., k=4, concomitant=FLXPmultinom(~ x1 + ... + x5))``;
skmoe: ``MixtureOfExpertsRegressor(n_experts=4, gate=SoftmaxGate(alpha=0))``,
the unpenalised gate of flexmix), on ``make_piecewise_linear(n)``; both with
``--nrep`` restarts, keeping the best log-likelihood.

    python benchmarks/bench_flexmix.py [--n 100000] [--nrep 1] [--repeat 3]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import best_of, table, write  # noqa: E402
from _data import make_piecewise_linear, piecewise_linear_loglik  # noqa: E402
from peers import run_flexmix  # noqa: E402

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[100_000])
    p.add_argument("--nrep", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3, help="skmoe timings: best of")
    args = p.parse_args()
    load_start = list(os.getloadavg())
    rows = []
    for n in args.n:
        X, y, params = make_piecewise_linear(n, return_params=True)
        true_ll = piecewise_linear_loglik(X, y, params)
        # warm the numba cache / JIT before timing
        MixtureOfExpertsRegressor(n_experts=4, random_state=0).fit(X[:2000], y[:2000])
        moe = MixtureOfExpertsRegressor(
            n_experts=4, gate=SoftmaxGate(alpha=0.0), n_init=args.nrep, random_state=0
        )
        t, moe = best_of(lambda: moe.fit(X, y), args.repeat)
        ll = float(moe.log_prob(X, y).sum())
        fm = run_flexmix(X, y, n_components=4, nrep=args.nrep, random_state=0)
        rows.append(dict(
            n=n, nrep=args.nrep, skmoe_s=t, skmoe_iter=int(moe.n_iter_), skmoe_loglik=ll,
            flexmix_s=fm["time_s"], flexmix_iter=fm["n_iter"], flexmix_loglik=fm["loglik"],
            flexmix_k_kept=fm["k_kept"], flexmix_status=fm["status"], true_loglik=true_ll,
            speedup=(fm["time_s"] / t) if fm["time_s"] else None,
            loglik_gain=(ll - fm["loglik"]) if fm["loglik"] is not None else None,
        ))
        table(rows[-1:], ["n", "skmoe_s", "skmoe_iter", "skmoe_loglik", "flexmix_s",
                          "flexmix_iter", "flexmix_loglik", "speedup", "loglik_gain"])
    write("bench_flexmix", rows, loadavg_at_start=load_start, target="speedup >= 50, loglik_gain >= 0")


if __name__ == "__main__":
    main()
