"""
===================================================
Choosing the number of experts: BIC, AIC and ICL
===================================================

Fit mixtures of 1 to 6 linear experts to data made of four linear pieces, and
compare the information criteria. BIC and AIC trade the log-likelihood
against the number of free parameters (the gate's, the experts' coefficients
and their noise variances); ICL adds the entropy of the responsibilities and
so prefers experts that do not overlap. Lower is better.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

rng = np.random.RandomState(0)
x = rng.uniform(0, 4, size=800)
y = np.select([x < 1, x < 2, x < 3], [2 * x, 4 - 2 * x, 3 * (x - 2)], 3 - (x - 3))
y = y + 0.15 * rng.randn(x.size)
X = x[:, None]

ks = range(1, 7)
scores = {"BIC": [], "AIC": [], "ICL": []}
for k in ks:
    moe = MixtureOfExpertsRegressor(
        n_experts=k, gate=SoftmaxGate(alpha=0.01), n_init=3, max_iter=500, random_state=0
    ).fit(X, y)
    scores["BIC"].append(moe.bic(X, y))
    scores["AIC"].append(moe.aic(X, y))
    scores["ICL"].append(moe.icl(X, y))
for name, values in scores.items():
    print(f"{name}: best n_experts = {ks[int(np.argmin(values))]}")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.axvline(4, color="0.6", ls=":", label="true number of pieces")
for name, values in scores.items():
    line, = ax.plot(list(ks), values, "o-", label=name)
    best = int(np.argmin(values))
    ax.plot(ks[best], values[best], "o", ms=12, mfc="none", color=line.get_color())
ax.set_xlabel("n_experts")
ax.set_ylabel("criterion (lower is better)")
ax.set_title("circled: each criterion's minimum")
ax.legend(loc="upper right")
fig.tight_layout()
plt.show()
