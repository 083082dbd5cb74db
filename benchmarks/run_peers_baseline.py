"""Measure the peer baseline once and save it to ``results/peers_baseline.json``.

Runs, one fit at a time, on :func:`_data.make_piecewise_linear` data
(5 features, 4 true pieces, ``random_state=0``):

* flexmix with ``k=4``, ``nrep=1``, at 10,000 and 100,000 rows;
* cgmm's ``MixtureOfExpertsRegressor`` with 3 experts at 1,000 and 5,000 rows;
* the scikit-learn replicated-data gate fit (:func:`peers.fit_sklearn_gate`)
  on the true posterior responsibilities, at 10,000 and 100,000 rows.

Usage::

    python benchmarks/run_peers_baseline.py [--threads 1] [--out PATH]

BLAS / OpenMP threads of the Python peers are limited to ``--threads``
(R's reference BLAS is single-threaded anyway).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import scipy
import sklearn
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import (  # noqa: E402
    make_piecewise_linear,
    piecewise_linear_loglik,
    piecewise_linear_posterior,
)
from peers import fit_sklearn_gate, run_cgmm, run_flexmix  # noqa: E402

#: The flexmix series stops after a run slower than this (seconds).
FLEXMIX_SLOW_S = 180.0


def _versions():
    """Versions of the software involved, for the record."""
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import cgmm

        info["cgmm"] = cgmm.__version__
    except ImportError:
        info["cgmm"] = None
    try:
        info["R"] = subprocess.run(
            [
                "Rscript",
                "-e",
                'cat(R.version.string, format(packageVersion("flexmix")))',
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["R"] = None
    return info


def main(argv=None):
    """Run the measurements, print a table and write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "results", "peers_baseline.json"
        ),
    )
    args = parser.parse_args(argv)

    runs = []
    load_start = list(os.getloadavg())

    def record(peer, n, k, data_ll, res, **extra):
        row = {
            "peer": peer,
            "n_samples": n,
            "n_features": 5,
            "n_components": k,
            "true_loglik": data_ll,
            **res,
            **extra,
        }
        runs.append(row)
        print(
            f"  {peer:<12} n={n:>7,} k={k}  time={_fmt(res.get('time_s'), '.2f')} s  "
            f"iter={res.get('n_iter')}  loglik={_fmt(res.get('loglik'), '.1f')}  "
            f"(true model {data_ll:.1f})  status={res['status']}",
            flush=True,
        )
        return row

    with threadpool_limits(args.threads):
        for n in (10_000, 100_000):
            X, y, p = make_piecewise_linear(n, return_params=True)
            res = run_flexmix(X, y, n_components=4, nrep=1, random_state=0, timeout=900)
            record("flexmix", n, 4, piecewise_linear_loglik(X, y, p), res, nrep=1)
            if res["time_s"] is None or res["time_s"] > FLEXMIX_SLOW_S:
                print(
                    f"  flexmix at n={n:,} took over {FLEXMIX_SLOW_S:.0f} s "
                    "or failed; stopping the flexmix series here."
                )
                break
        for n in (1_000, 5_000):
            X, y, p = make_piecewise_linear(n, return_params=True)
            res = run_cgmm(X, y, n_components=3, random_state=0)
            record("cgmm", n, 3, piecewise_linear_loglik(X, y, p), res)
        for n in (10_000, 100_000):
            X, y, p = make_piecewise_linear(n, return_params=True)
            res = fit_sklearn_gate(X, piecewise_linear_posterior(X, y, p), alpha=1e-2)
            row = {
                key: res[key]
                for key in ("time_s", "replicate_s", "objective", "n_iter", "status")
            }
            runs.append(
                {
                    "peer": "sklearn_gate",
                    "n_samples": n,
                    "n_features": 5,
                    "n_components": 4,
                    "alpha": 1e-2,
                    **row,
                }
            )
            print(
                f"  sklearn_gate n={n:>7,} K=4  time={res['time_s']:.3f} s  "
                f"iter={res['n_iter']}  objective={res['objective']:.4f}  "
                f"status={res['status']}",
                flush=True,
            )

    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": "make_piecewise_linear(n, n_features=5, n_pieces=4, noise=0.5, "
        "sharpness=5.0, random_state=0)",
        "threads": args.threads,
        "loadavg_at_start": load_start,
        "loadavg_at_end": list(os.getloadavg()),
        "versions": _versions(),
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")
    print()
    print(_table(runs))
    print(f"\nwritten to {args.out}")


def _fmt(value, spec):
    """Format a number, or "-" for None."""
    return "-" if value is None else format(value, spec)


def _table(runs):
    """Plain-text table of the mixture-model runs."""
    head = (
        f"{'peer':<13}{'n':>9}{'k':>3}{'kept':>5}{'time_s':>9}{'iter':>6}"
        f"{'loglik':>14}{'true_ll':>14}  status"
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        if r["peer"] == "sklearn_gate":
            continue
        lines.append(
            f"{r['peer']:<13}{r['n_samples']:>9,}{r['n_components']:>3}"
            f"{_fmt(r.get('k_kept'), 'd'):>5}{_fmt(r['time_s'], '.2f'):>9}"
            f"{_fmt(r['n_iter'], 'd'):>6}{_fmt(r['loglik'], '.1f'):>14}"
            f"{r['true_loglik']:>14.1f}  {r['status']}"
            + (" (gate never updated)" if r.get("gate_updated") is False else "")
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
