"""
=====================================================
Piecewise-linear regression: experts and gate regions
=====================================================

Three linear regimes with a jump between two of them. A single linear model
cannot follow them; a mixture of three linear experts splits the input range
with its softmax gate and fits one line per piece. The top panel shows every
expert's line where its gate weight exceeds one half; the bottom panel shows
the gate's soft partition of the input.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, size=600)
y = np.select([x < -1, x < 1], [-2 * x - 4, 3 * x + 1], -1.5 * x + 8)
y = y + 0.3 * rng.randn(x.size)
X = x[:, None]

# %%
# A weak gate penalty lets the gate switch sharply at the jump.
moe = MixtureOfExpertsRegressor(
    n_experts=3, gate=SoftmaxGate(alpha=0.01), random_state=0
).fit(X, y)
single = LinearRegression().fit(X, y)
print(f"R^2, single linear model: {single.score(X, y):.3f}")
print(f"R^2, mixture of 3 linear experts: {moe.score(X, y):.3f}")
print("noise standard deviations:", np.sqrt(moe.noise_variance_).round(3))

# %%
grid = np.linspace(-3, 3, 400)[:, None]
gate = moe.predict_gate(grid)
experts = moe.predict_experts(grid)

fig, (top, bottom) = plt.subplots(
    2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
)
top.scatter(x, y, s=6, color="0.6", label="data")
for k in range(3):
    owned = gate[:, k] > 0.5
    top.plot(grid[owned, 0], experts[owned, k], lw=2.5, label=f"expert {k}")
top.plot(grid[:, 0], single.predict(grid), "k--", lw=1, label="single linear model")
top.set_ylabel("y")
top.legend(loc="upper left", fontsize=8)
bottom.stackplot(grid[:, 0], gate.T, alpha=0.8)
bottom.set_ylabel("gate probability")
bottom.set_xlabel("x")
fig.tight_layout()
plt.show()
