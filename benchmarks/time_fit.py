"""Time one fit of bench_flexmix's or bench_scale's problem, for before/after comparisons.

The model is the one both benchmarks fitted before issue 13 changed the defaults
(LinearRegression experts, an unpenalised gate, the k-means start, max_iter=100), so
that any two checkouts fit the same model. Run it in each checkout, alternating, and
compare the medians::

    for i in 1 2 3; do
        (cd OLD && PYTHONPATH=$PWD python benchmarks/time_fit.py flexmix)
        (cd NEW && PYTHONPATH=$PWD python benchmarks/time_fit.py flexmix)
    done

It prints the wall and process CPU seconds of the fit, its iterations and its mean
log-likelihood.
"""

import inspect
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import make_piecewise_linear  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate  # noqa: E402


def main():
    problem = sys.argv[1] if len(sys.argv) > 1 else "flexmix"
    if problem == "flexmix":
        X, y = make_piecewise_linear(100_000)
        k = 4
    else:
        X, y = make_piecewise_linear(1_000_000, n_features=20, n_pieces=8)
        k = 8
    params = dict(
        n_experts=k, gate=SoftmaxGate(alpha=0.0), random_state=0, experts=LinearRegression()
    )
    if "init" in inspect.signature(MixtureOfExpertsRegressor).parameters:
        params.update(init="kmeans", max_iter=100)
    # Compile or load the numba kernels before timing.
    MixtureOfExpertsRegressor(**{**params, "gate": SoftmaxGate()}).fit(X[:3000], y[:3000])
    cpu, wall = time.process_time(), time.perf_counter()
    moe = MixtureOfExpertsRegressor(**params).fit(X, y)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{problem}: wall {wall:.3f} s, cpu {cpu:.3f} s, {moe.n_iter_} iterations, "
          f"log-likelihood {moe.log_likelihood_:.12f}")


if __name__ == "__main__":
    main()
