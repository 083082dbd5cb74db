"""skmoe against cgmm's MixtureOfExpertsRegressor (3 experts, 5 features).

    python benchmarks/bench_cgmm.py [--n 1000 5000] [--repeat 3]

cgmm 0.5.1's gate never leaves its initialisation (see ``peers.run_cgmm``),
so its log-likelihood is poor; the time is still the time it takes.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import best_of, table, write  # noqa: E402
from _data import make_piecewise_linear, piecewise_linear_loglik  # noqa: E402
from peers import run_cgmm  # noqa: E402

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    load_start = list(os.getloadavg())
    rows = []
    for n in args.n:
        X, y, params = make_piecewise_linear(n, return_params=True)
        MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)  # warm-up
        moe = MixtureOfExpertsRegressor(n_experts=3, gate=SoftmaxGate(alpha=0.0), random_state=0)
        t, moe = best_of(lambda: moe.fit(X, y), args.repeat)
        ll = float(moe.log_prob(X, y).sum())
        best_c = None
        for _ in range(args.repeat):
            c = run_cgmm(X, y, n_components=3, random_state=0)
            if c["time_s"] is None:
                best_c = c
                break
            if best_c is None or c["time_s"] < best_c["time_s"]:
                best_c = c
        rows.append(dict(
            n=n, skmoe_s=t, skmoe_iter=int(moe.n_iter_), skmoe_loglik=ll,
            cgmm_s=best_c["time_s"], cgmm_iter=best_c["n_iter"], cgmm_loglik=best_c["loglik"],
            cgmm_status=best_c["status"], true_loglik=piecewise_linear_loglik(X, y, params),
            speedup=(best_c["time_s"] / t) if best_c["time_s"] else None,
            loglik_gain=(ll - best_c["loglik"]) if best_c["loglik"] is not None else None,
        ))
    table(rows, ["n", "skmoe_s", "skmoe_iter", "skmoe_loglik", "cgmm_s", "cgmm_iter",
                 "cgmm_loglik", "speedup", "loglik_gain", "cgmm_status"])
    write("bench_cgmm", rows, loadavg_at_start=load_start, target="speedup >= 20, loglik_gain >= 0")


if __name__ == "__main__":
    main()
