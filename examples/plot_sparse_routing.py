"""
==============================================================
Sparse routing: top-k experts, load balancing and expert usage
==============================================================

With ``top_k`` each row is served only by its ``top_k`` most probable
experts (the gate's weights renormalised over them), and each expert runs only
on the rows routed to it, as in sparsely-gated mixtures of experts (Shazeer et
al., 2017). With expensive experts this divides the prediction cost by about
``n_experts / top_k``. ``SoftmaxGate(balance=...)`` adds a penalty that pulls
the average gate probabilities toward uniform use of the experts.

Here 8 gradient-boosting experts share a problem with four regimes: we compare
dense and top-2 prediction (accuracy and time), and the experts' usage with and
without the balance penalty.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

rng = np.random.RandomState(0)
X = rng.uniform(-2, 2, size=(6_000, 4))
regime = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
coef = rng.normal(size=(4, 4))
y = np.einsum("ij,ij->i", X, coef[regime]) + np.sin(3 * X[:, 2]) + 0.3 * rng.randn(len(X))
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

expert = HistGradientBoostingRegressor(max_iter=15, max_leaf_nodes=15, max_bins=31)


def fit(balance):
    # Five EM iterations are enough for this picture; EM has not converged yet
    # and would say so with a ConvergenceWarning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MixtureOfExpertsRegressor(
            expert, n_experts=8, gate=SoftmaxGate(alpha=0.1, balance=balance),
            max_iter=5, random_state=0,
        ).fit(X_train, y_train)


moe = fit(balance=0.0)

# %%
# Dense against top-2 prediction with the same fitted mixture. Each mode is
# called once untimed first (the routing kernels are compiled on first use),
# then the best of 5 calls is kept.
timings = {}
for top_k in (None, 2):
    moe.set_params(top_k=top_k)
    pred = moe.predict(X_test)
    times = []
    for _ in range(5):
        tic = time.perf_counter()
        moe.predict(X_test)
        times.append(time.perf_counter() - tic)
    timings[top_k] = min(times)
    r2 = 1 - np.mean((y_test - pred) ** 2) / np.var(y_test)
    print(f"top_k={top_k}: held-out R^2 {r2:.4f}, "
          f"predict {timings[top_k] * 1e3:.1f} ms")
routes = moe.route(X_test)
print("rows served per expert under top_k=2:", routes["counts"])
print(f"speed-up {timings[None] / timings[2]:.1f}x (n_experts / top_k = 4)")

# %%
# Each expert runs on a quarter of the rows on average; with 1,500 test rows
# and small boosted trees the fixed cost of every call keeps the speed-up
# below ``n_experts / top_k``. ``benchmarks/routing.py`` measures it on
# 100,000 rows.

# %%
# Expert usage: the share of the training weight each expert holds.
balanced = fit(balance=1.0)
fig, (ax_time, ax_use) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_time.bar(["dense", "top_k=2"], [timings[None] * 1e3, timings[2] * 1e3], color=["C0", "C1"])
ax_time.set_ylabel("predict time (ms)")
ax_time.set_title("prediction cost, 8 HGB experts")
width = 0.4
idx = np.arange(8)
ax_use.bar(idx - width / 2, moe.expert_usage_, width, label="balance=0")
ax_use.bar(idx + width / 2, balanced.expert_usage_, width, label="balance=1")
ax_use.axhline(1 / 8, color="k", ls="--", lw=1, label="uniform")
ax_use.set_xlabel("expert")
ax_use.set_ylabel("share of training weight")
ax_use.set_title("expert usage")
ax_use.set_ylim(0, 1.35 * max(moe.expert_usage_.max(), balanced.expert_usage_.max()))
ax_use.legend(fontsize=8, ncol=3, loc="upper center")
fig.tight_layout()
plt.show()

# %%
# Without the penalty the eight experts already share the rows fairly evenly
# (between about 10% and 15% each), so ``balance=1`` only nudges the shares
# toward 1/8; the penalty matters when a gate starves some experts, where it
# keeps them alive.
