"""
======================================================
Predictive distributions: quantiles, intervals, sets
======================================================

A mixture of experts predicts a whole conditional density
``p(y | x) = sum_k pi_k(x) p_k(y | x)``. Here ``y`` follows one of two
branches for every ``x`` (``y = +-(2 + x)`` plus noise), so the predictive
density is bimodal: its mean lies between the branches, where ``y`` never
is, and its standard deviation says nothing of the gap.

The figure shows, for one input, the density with its equal-tailed 90%
interval (one interval across the gap) and its 90% highest-density region
(two intervals, one per branch); then, over ``x``, the predicted deciles and
the density-based conformal sets (:class:`~skmoe.DensityConformalRegressor`)
with their held-out coverage, next to a split conformal interval around the
mean of the same width everywhere.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.frozen import FrozenEstimator

from skmoe import DensityConformalRegressor, MixtureOfExpertsRegressor


def two_branches(n, seed):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, size=(n, 1))
    sign = np.where(rng.rand(n) < 0.5, 1.0, -1.0)
    return X, sign * (2 + X[:, 0]) + 0.4 * rng.randn(n)


X, y = two_branches(600, 0)
X_cal, y_cal = two_branches(300, 1)
X_test, y_test = two_branches(2000, 2)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the start pool's notes
    moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)

# %%
# The density at one input, with its quantiles and intervals
# -----------------------------------------------------------
# ``log_prob`` gives the density; ``predict_interval`` the equal-tailed
# interval (``kind="equal-tailed"``) and the highest-density region
# (``kind="hdr"``), a :class:`~skmoe.PredictionSet` of two intervals here.
x0 = np.array([[0.3]])
grid = np.linspace(-5, 5, 801)
density = np.exp(moe.log_prob(np.repeat(x0, grid.size, axis=0), grid))
equal = moe.predict_interval(x0, alpha=0.1)[0]
hdr = moe.predict_interval(x0, alpha=0.1, kind="hdr")
mean, std = moe.predict(x0, return_std=True)
print(f"mean {mean[0]:.2f}, std {std[0]:.2f}")
print(f"equal-tailed 90%: [{equal[0]:.2f}, {equal[1]:.2f}], length {equal[1] - equal[0]:.2f}")
print(f"highest-density 90%: {np.round(hdr.intervals[0], 2).tolist()}, "
      f"length {hdr.size()[0]:.2f}, probability {hdr.mass[0]:.3f}")

fig, (ax_d, ax_x) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_d.plot(grid, density, color="k", lw=1.5, label="p(y | x = 0.3)")
ax_d.axvline(mean[0], color="grey", ls=":", label="mean")
ax_d.hlines(-0.03, *equal, color="tab:orange", lw=5, label="equal-tailed 90%")
for lower, upper in hdr.intervals[0]:
    ax_d.hlines(-0.07, lower, upper, color="tab:blue", lw=5)
ax_d.plot([], [], color="tab:blue", lw=5, label="highest-density 90%")
ax_d.set(xlabel="y", ylabel="density", title="A bimodal predictive density")
ax_d.legend(loc="upper center", fontsize=8)

# %%
# Deciles and conformal sets over x
# ---------------------------------
# ``predict_quantiles`` gives the deciles. :class:`DensityConformalRegressor`
# calibrates the density threshold on 300 held-out rows (the fitted mixture
# is wrapped in :class:`~sklearn.frozen.FrozenEstimator`, so it is not refit):
# its sets cover 90% of new rows whatever the model, and follow the two
# branches. A conformal interval around the mean (the absolute residual's
# 90% quantile on the same calibration rows, as MAPIE's split conformal
# regressor computes it) covers as often but must span the gap.
xs = np.linspace(-1, 1, 101)[:, None]
deciles = moe.predict_quantiles(xs, np.arange(1, 10) / 10)
conformal = DensityConformalRegressor(FrozenEstimator(moe), alpha=0.1).fit(X_cal, y_cal)
sets = conformal.predict_set(xs)

residual = np.abs(y_cal - moe.predict(X_cal))
k = int(np.ceil((residual.size + 1) * 0.9))
half_width = np.sort(residual)[k - 1]

test_sets = conformal.predict_set(X_test)
print(f"density conformal set: coverage {test_sets.contains(y_test).mean():.3f}, "
      f"mean size {test_sets.size().mean():.2f}")
inside = np.abs(y_test - moe.predict(X_test)) <= half_width
print(f"interval around the mean: coverage {inside.mean():.3f}, size {2 * half_width:.2f}")

ax_x.scatter(X[:, 0], y, s=4, color="0.7", label="training data")
ax_x.plot(xs[:, 0], deciles, color="tab:green", lw=0.8)
ax_x.plot([], [], color="tab:green", lw=0.8, label="deciles")
bounds = sets.to_array()
for j in range(bounds.shape[1]):
    ax_x.fill_between(xs[:, 0], bounds[:, j, 0], bounds[:, j, 1], color="tab:blue",
                      alpha=0.25, label="density conformal set" if j == 0 else None)
centre = moe.predict(xs)
ax_x.plot(xs[:, 0], centre - half_width, color="tab:orange", ls="--")
ax_x.plot(xs[:, 0], centre + half_width, color="tab:orange", ls="--",
          label="conformal interval around the mean")
ax_x.set(xlabel="x", ylabel="y", title="Deciles and 90% conformal sets")
ax_x.legend(loc="lower left", fontsize=7)
fig.tight_layout()
plt.show()
