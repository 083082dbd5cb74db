"""
==================================================
A gate that is not linear: any classifier as gate
==================================================

Two regimes follow different linear laws: one inside a disc, the other
around it. A :class:`~skmoe.SoftmaxGate` draws straight boundaries between
experts, so no setting of it separates a disc from its outside; a mixture
with it blends the two laws. :class:`~skmoe.ClassifierGate` makes any
scikit-learn classifier the gate; with
:class:`~sklearn.ensemble.HistGradientBoostingClassifier` the gate learns the
disc. Each M-step fits the classifier to the posterior responsibilities by
weighted replication (every row once per expert that holds a responsibility
above ``min_responsibility``, weighted by it), so a small booster (30 trees
of 8 leaves) keeps the many refits cheap.

The plots show where each mixture's gate sends the inputs (the probability
of the "inside" expert) and the true disc.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import r2_score
from threadpoolctl import threadpool_limits

from skmoe import ClassifierGate, MixtureOfExpertsRegressor, SoftmaxGate


def disc(n, seed):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    inside = (X**2).sum(axis=1) < 1.5
    y = np.where(inside, 3 + 2 * X[:, 0] - X[:, 1], -1 - X[:, 0] + 2 * X[:, 1])
    return X, y + 0.3 * rng.normal(size=n)


X, y = disc(800, 0)
X_test, y_test = disc(2000, 1)

# %%
gates = {
    "SoftmaxGate": SoftmaxGate(),
    "ClassifierGate(HistGradientBoostingClassifier)": ClassifierGate(
        HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=8),
        min_responsibility=0.05,
    ),
}
# The booster is refitted at every EM iteration on a few thousand rows: one
# OpenMP thread is faster there than many (threads cost more than they save
# on such small fits).
fitted = {}
for name, gate in gates.items():
    moe = MixtureOfExpertsRegressor(n_experts=2, gate=gate, max_iter=50, random_state=0)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        moe.fit(X, y)
    fitted[name] = moe
    print(f"{name}: held-out R^2 {r2_score(y_test, moe.predict(X_test)):.3f}")

# %%
grid = np.linspace(-2, 2, 150)
G = np.array(np.meshgrid(grid, grid)).reshape(2, -1).T
centre = np.zeros((1, 2))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
for ax, (name, moe) in zip(axes, fitted.items()):
    inside = np.argmax(moe.predict_gate(centre)[0])  # the expert of the centre
    p = moe.predict_gate(G)[:, inside].reshape(len(grid), len(grid))
    im = ax.contourf(grid, grid, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r")
    ax.add_patch(plt.Circle((0, 0), np.sqrt(1.5), fill=False, ls="--", color="k"))
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("x0")
    ax.set_aspect("equal")
axes[0].set_ylabel("x1")
fig.colorbar(im, ax=axes, label="gate probability of the centre's expert")
plt.show()
