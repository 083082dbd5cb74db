"""
===================================================
EM against gradient descent, and streaming fits
===================================================

Both solvers maximise the same log-likelihood. EM refits every expert and the
gate on all the data at each iteration; ``solver="gd"`` takes mini-batch
gradient steps (Adam) and updates experts that have ``partial_fit`` on every
mini-batch, so it also learns from data that arrives in chunks through
:meth:`~skmoe.MixtureOfExpertsRegressor.partial_fit`, never holding it whole.

The plot shows the held-out mean log-likelihood against the fitting time:
EM after each iteration, gradient descent after each epoch, and the streaming
fit after each chunk.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, SGDRegressor

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate


def make_data(n, rng):
    X = rng.uniform(-3, 3, size=(n, 2))
    y = np.select([X[:, 0] < -1, X[:, 0] < 1], [-2 * X[:, 0] - 4, 3 * X[:, 0] + 1],
                  -1.5 * X[:, 0] + 8)
    return X, y + 0.5 * X[:, 1] + 0.3 * rng.randn(n)


rng = np.random.RandomState(0)
X, y = make_data(20_000, rng)
X_test, y_test = make_data(5_000, rng)


def trace(make_model, steps, fit_step):
    """Held-out mean log-likelihood after each step, with the elapsed time."""
    times, scores, elapsed = [], [], 0.0
    model = make_model()
    for step in range(steps):
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit_step(model, step)
        elapsed += time.perf_counter() - tic
        times.append(elapsed)
        scores.append(model.log_prob(X_test, y_test).mean())
    return np.array(times), np.array(scores), model


# %%
# EM, one iteration per step (``warm_start`` continues from the last one).
em_t, em_s, em = trace(
    lambda: MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=3, gate=SoftmaxGate(alpha=0.01),
        max_iter=1, warm_start=True, random_state=0,
    ),
    25, lambda m, _: m.fit(X, y),
)

# %%
# Gradient descent, one epoch per step, SGD experts updated per mini-batch.
gd_t, gd_s, gd = trace(
    lambda: MixtureOfExpertsRegressor(
        SGDRegressor(eta0=0.1), n_experts=3, gate=SoftmaxGate(alpha=0.01),
        solver="gd", max_iter=1, warm_start=True, random_state=0,
    ),
    25, lambda m, _: m.fit(X, y),
)

# %%
# Streaming: ``partial_fit`` on 20 chunks of 1,000 rows, each seen once.
chunks = np.array_split(np.arange(len(y)), 20)
st_t, st_s, stream = trace(
    lambda: MixtureOfExpertsRegressor(
        SGDRegressor(eta0=0.1), n_experts=3, gate=SoftmaxGate(alpha=0.01),
        solver="gd", random_state=0,
    ),
    len(chunks), lambda m, i: m.partial_fit(X[chunks[i]], y[chunks[i]]),
)
for name, model in [("EM", em), ("gradient descent", gd), ("streaming", stream)]:
    print(f"{name:>17s}: held-out R^2 {model.score(X_test, y_test):.4f}, "
          f"mean log-likelihood {model.log_prob(X_test, y_test).mean():.4f}")

# %%
# A log time axis: EM's 25 iterations take a fraction of a second, gradient
# descent's 25 epochs several seconds.
fig, ax = plt.subplots(figsize=(7, 4.8))
ax.plot(em_t, em_s, "o-", ms=4, label="EM (one point per iteration)")
ax.plot(gd_t, gd_s, "s-", ms=4, label="gradient descent (one point per epoch)")
ax.plot(st_t, st_s, "^-", ms=4, label="partial_fit stream (one point per chunk)")
ax.set_xscale("log")
ax.set_xlabel("fitting time (s, log scale)")
ax.set_ylabel("held-out mean log-likelihood")
low = max(min(em_s.min(), gd_s.min(), st_s.min()), -3)
high = max(em_s.max(), gd_s.max(), st_s.max())
ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
ax.grid(alpha=0.3)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9)
fig.tight_layout()
plt.show()
