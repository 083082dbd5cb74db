"""Sparse top-k routing against the dense mixture, with expensive experts.

16 :class:`~sklearn.ensemble.HistGradientBoostingRegressor` experts on
100,000 training rows of :func:`_data.make_piecewise_linear` (5 features,
4 true pieces, ``random_state=0``), fitted for a few EM iterations by a dense
mixture and by one with ``top_k=2``. It reports

* the prediction time on 20,000 held-out rows of the top_k=2 model, routed
  (``top_k=2``) and dense (the same fitted model with ``top_k=None``), and
  of the dense model;
* the fit time per EM iteration (from the ``verbose`` lines; iteration 1
  starts from hard k-means assignments, so the dense model's soft cost shows
  from iteration 2 on, and the ratio is taken over iterations 2 and later);
* the held-out R^2 of both fits.

It prints a table and writes ``results/routing.json``.

Usage::

    python benchmarks/routing.py [--n-train 100000] [--em-iter 4] [--threads 1]
"""

import argparse
import contextlib
import io
import json
import os
import platform
import re
import sys
import time
import warnings
from datetime import datetime, timezone

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import make_piecewise_linear  # noqa: E402

from skmoe import MixtureOfExpertsRegressor  # noqa: E402

N_EXPERTS = 16


def _fit(X, y, top_k, em_iter):
    expert = HistGradientBoostingRegressor(
        max_iter=10, max_leaf_nodes=15, max_bins=31, early_stopping=False, random_state=0
    )
    moe = MixtureOfExpertsRegressor(
        expert, n_experts=N_EXPERTS, top_k=top_k, max_iter=em_iter, tol=0,
        random_state=0, verbose=1,
    )
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, y)
    per_iter = [float(t) for t in re.findall(r", ([0-9.]+)s$", out.getvalue(), re.M)]
    return moe, per_iter


def _best_time(f, repeat=3):
    best = np.inf
    for _ in range(repeat):
        tic = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - tic)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=100_000)
    parser.add_argument("--n-test", type=int, default=20_000)
    parser.add_argument("--em-iter", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "routing.json"),
    )
    args = parser.parse_args()

    X, y = make_piecewise_linear(
        args.n_train + args.n_test, n_features=5, n_pieces=4, noise=0.5,
        sharpness=5.0, random_state=0,
    )
    Xtr, ytr = X[: args.n_train], y[: args.n_train]
    Xte, yte = X[args.n_train :], y[args.n_train :]

    results = {}
    with threadpool_limits(args.threads):
        for name, top_k in [("dense", None), ("top_k=2", 2)]:
            tic = time.perf_counter()
            moe, per_iter = _fit(Xtr, ytr, top_k, args.em_iter)
            fit_total = time.perf_counter() - tic
            results[name] = {
                "model": moe,
                "fit_total_s": fit_total,
                "iteration_s": per_iter,
                "iteration_2plus_mean_s": float(np.mean(per_iter[1:])),
                "r2_test": float(moe.score(Xte, yte)),
                "predict_s": _best_time(lambda m=moe: m.predict(Xte)),
                "route_counts_test": moe.route(Xte).counts.tolist(),
            }
        sparse = results["top_k=2"]["model"]
        sparse.set_params(top_k=None)
        sparse_dense_predict = _best_time(lambda: sparse.predict(Xte))
        r2_sparse_fit_dense_predict = float(sparse.score(Xte, yte))
        sparse.set_params(top_k=2)

    d, s = results["dense"], results["top_k=2"]
    summary = {
        "predict_speedup_same_model": sparse_dense_predict / s["predict_s"],
        "predict_speedup_vs_dense_model": d["predict_s"] / s["predict_s"],
        "fit_speedup_per_iteration_2plus": d["iteration_2plus_mean_s"] / s["iteration_2plus_mean_s"],
        "fit_speedup_total": d["fit_total_s"] / s["fit_total_s"],
        "r2_change_test": s["r2_test"] - d["r2_test"],
    }

    print(f"{N_EXPERTS} HistGradientBoostingRegressor experts, {args.n_train} training rows, "
          f"{args.n_test} test rows, {args.em_iter} EM iterations, {args.threads} thread(s)")
    print(f"{'':28s}{'dense':>12s}{'top_k=2':>12s}{'ratio':>10s}")
    print(f"{'fit s / EM iteration (>=2)':28s}{d['iteration_2plus_mean_s']:12.3f}"
          f"{s['iteration_2plus_mean_s']:12.3f}{summary['fit_speedup_per_iteration_2plus']:10.2f}")
    print(f"{'fit s total':28s}{d['fit_total_s']:12.3f}{s['fit_total_s']:12.3f}"
          f"{summary['fit_speedup_total']:10.2f}")
    print(f"{'predict s (own model)':28s}{d['predict_s']:12.4f}{s['predict_s']:12.4f}"
          f"{summary['predict_speedup_vs_dense_model']:10.2f}")
    print(f"{'predict s (top_k model)':28s}{sparse_dense_predict:12.4f}{s['predict_s']:12.4f}"
          f"{summary['predict_speedup_same_model']:10.2f}")
    print(f"{'held-out R^2':28s}{d['r2_test']:12.4f}{s['r2_test']:12.4f}"
          f"{summary['r2_change_test']:+10.4f}")
    print(f"(top_k model predicting densely: R^2 {r2_sparse_fit_dense_predict:.4f})")

    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "sklearn": sklearn.__version__, "numpy": np.__version__,
                    "cpu_count": os.cpu_count(), "threads": args.threads},
        "setup": {"n_experts": N_EXPERTS, "n_train": args.n_train, "n_test": args.n_test,
                  "em_iter": args.em_iter,
                  "expert": "HistGradientBoostingRegressor(max_iter=10, max_leaf_nodes=15, max_bins=31, "
                            "early_stopping=False)",
                  "data": "make_piecewise_linear(n_features=5, n_pieces=4, noise=0.5, "
                          "sharpness=5.0, random_state=0)"},
        "dense": {k: v for k, v in d.items() if k != "model"},
        "top_k=2": {k: v for k, v in s.items() if k != "model"},
        "top_k=2 model predicting densely": {"predict_s": sparse_dense_predict,
                                             "r2_test": r2_sparse_fit_dense_predict},
        "summary": summary,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
