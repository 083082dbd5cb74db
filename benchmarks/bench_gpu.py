"""The mixture on a GPU through scikit-learn's array API dispatch (issue 17).

Fits ``MixtureOfExpertsRegressor`` (8 linear experts, a softmax gate,
``init="random"``) on ``n x 20`` data with PyTorch CUDA or CuPy arrays under
``sklearn.config_context(array_api_dispatch=True)``, in float64 and float32,
and the same model on the NumPy arrays (the CPU path, same initial
responsibilities; a tight ``tol`` for EM and for the gate, whose optimisers
differ -- L-BFGS on the CPU for a gate this large, Newton in the namespace --
so that both reach the same optimum). Prints, per fit: the total fit time,
the iterations, the log-likelihood and its difference from the CPU fit's
(target: 1e-6 in float64).

Without a GPU it says so plainly and runs a small comparison with PyTorch on
the CPU instead (``--n`` capped at 20,000), so that the script is exercised.

Usage::

    python benchmarks/bench_gpu.py                 # 1e6 x 20
    python benchmarks/bench_gpu.py --n 10000000    # 1e7 x 20 (the issue's second size)
    python benchmarks/bench_gpu.py --n 20000       # a quick run
    python benchmarks/bench_gpu.py --compare-init  # init="auto" vs "random" on the device

``--init auto`` fits with the default initialisation (the pool of short
runs, on the device) instead; ``--compare-init`` times the device fit with
``init="auto"`` and with ``init="random"`` alternately (best of
``--repeats``), in float64, and prints their ratio and log-likelihoods.
"""

import argparse
import os
import time

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy: dispatch needs it

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from _bench import write  # noqa: E402
from skmoe import MixtureOfExpertsRegressor, SoftmaxGate  # noqa: E402

CPU_CAP = 20_000


def make_data(n, d, n_experts, seed=0):
    """Piecewise-linear data: ``n_experts`` regimes of a softmax gate on X."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    V = rng.normal(size=(d, n_experts)) * 2.0
    regime = np.argmax(X @ V, axis=1)
    B = rng.normal(size=(n_experts, d))
    y = np.einsum("ij,ij->i", X, B[regime]) + rng.normal(size=n_experts)[regime]
    return X, y + 0.1 * rng.normal(size=n)


def find_device():
    """``(name, to_device, synchronize)`` of the GPU library present, or None."""
    try:
        import torch

        if torch.cuda.is_available():
            return (
                f"torch CUDA ({torch.cuda.get_device_name(0)})",
                lambda a, dtype: torch.asarray(
                    a, dtype=getattr(torch, dtype), device="cuda"
                ),
                torch.cuda.synchronize,
            )
    except ImportError:
        pass
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return (
                "CuPy",
                lambda a, dtype: cupy.asarray(a, dtype=dtype),
                cupy.cuda.Device().synchronize,
            )
    except Exception:  # noqa: BLE001 - no CuPy, or no device
        pass
    return None


def cpu_torch():
    import torch

    return (
        "torch CPU (no GPU)",
        lambda a, dtype: torch.asarray(a, dtype=getattr(torch, dtype)),
        lambda: None,
    )


def model(args):
    return MixtureOfExpertsRegressor(
        n_experts=args.experts, experts=LinearRegression(), init=args.init,
        random_state=0, max_iter=args.max_iter, tol=args.tol,
        gate=SoftmaxGate(tol=args.gate_tol),
    )


def fit_device(args, X, y, to_device, sync, dtype):
    Xd, yd = to_device(X, dtype), to_device(y, dtype)
    sync()
    est = sklearn.base.clone(model(args))
    tic = time.perf_counter()
    with sklearn.config_context(array_api_dispatch=True):
        est.fit(Xd, yd)
    sync()
    return time.perf_counter() - tic, est


def compare_init(args, X, y, name, to_device, sync):
    """init="auto" vs init="random" on the device, alternated, best of
    ``args.repeats``; the ratio of the best times."""
    best = {"random": np.inf, "auto": np.inf}
    fits = {}
    for _ in range(args.repeats):
        for init in ("random", "auto"):
            args.init = init
            seconds, fits[init] = fit_device(args, X, y, to_device, sync, "float64")
            best[init] = min(best[init], seconds)
    for init in ("random", "auto"):
        est = fits[init]
        print(
            f"{name} float64 init={init!r:8}: best {best[init]:8.2f} s, "
            f"{est.n_iter_:3d} iterations, log-likelihood {est.log_likelihood_:.10f}"
        )
    print(f"init='auto' / init='random' time: {best['auto'] / best['random']:.2f}")
    print(f"load average after: {os.getloadavg()}")
    write("bench_gpu_init", [
        dict(init=k, seconds=best[k], n_iter=fits[k].n_iter_,
             log_likelihood=fits[k].log_likelihood_) for k in best
    ], n=args.n, d=args.d, n_experts=args.experts, device=name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows")
    parser.add_argument("--d", type=int, default=20, help="columns")
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--tol", type=float, default=1e-9, help="EM's tol")
    parser.add_argument(
        "--gate-tol", type=float, default=1e-10,
        help="the gate's tol (its optimisers differ: L-BFGS on the CPU for "
        "large gates, Newton in the namespace; a small one makes them agree)",
    )
    parser.add_argument("--no-cpu", action="store_true", help="skip the NumPy fit")
    parser.add_argument("--init", choices=("random", "auto"), default="random")
    parser.add_argument(
        "--compare-init", action="store_true",
        help="time init='auto' against init='random' on the device (float64)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}")
    device = find_device()
    if device is None:
        print(
            "No GPU present (neither PyTorch with CUDA nor CuPy with a device): "
            "the GPU figures were NOT measured. Running a small comparison with "
            f"PyTorch on the CPU instead (n capped at {CPU_CAP})."
        )
        try:
            device = cpu_torch()
        except ImportError:
            print("PyTorch is not installed either: nothing to run.")
            return
        args.n = min(args.n, CPU_CAP)
        import torch

        torch.set_num_threads(1)
    name, to_device, sync = device
    X, y = make_data(args.n, args.d, args.experts)
    print(f"data: {args.n} x {args.d}, {args.experts} linear experts; device: {name}")
    if args.compare_init:
        compare_init(args, X, y, name, to_device, sync)
        return
    rows = []
    cpu_ll = None
    if not args.no_cpu:
        tic = time.perf_counter()
        cpu = sklearn.base.clone(model(args)).fit(X, y)
        seconds = time.perf_counter() - tic
        cpu_ll = cpu.log_likelihood_
        print(
            f"NumPy (CPU)      : {seconds:8.2f} s, {cpu.n_iter_:3d} iterations, "
            f"log-likelihood {cpu_ll:.10f}"
        )
        rows.append(dict(path="numpy", seconds=seconds, n_iter=cpu.n_iter_,
                         log_likelihood=cpu_ll))
    for dtype in ("float64", "float32"):
        seconds, est = fit_device(args, X, y, to_device, sync, dtype)
        ll = est.log_likelihood_
        diff = "" if cpu_ll is None else f", |difference| {abs(ll - cpu_ll):.2e}"
        target = " (target 1e-6)" if dtype == "float64" and cpu_ll is not None else ""
        print(
            f"{name} {dtype}: {seconds:8.2f} s, {est.n_iter_:3d} iterations, "
            f"log-likelihood {ll:.10f}{diff}{target}"
        )
        rows.append(dict(
            path=f"{name} {dtype}", seconds=seconds, n_iter=est.n_iter_,
            log_likelihood=ll,
            difference=None if cpu_ll is None else abs(ll - cpu_ll),
        ))
    write("bench_gpu", rows, n=args.n, d=args.d, n_experts=args.experts, device=name)


if __name__ == "__main__":
    main()
