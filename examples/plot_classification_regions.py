"""
=============================================
Classification: decision regions and the gate
=============================================

On the two-moons data, a single logistic regression draws one straight
boundary. A mixture of three logistic experts lets the gate cut the plane into
regions, each with its own straight boundary: together they bend around the
moons. Left: the mixture's class probability, its 0.5 boundary and, dashed,
the single logistic regression's; right: which expert the gate gives each
point to. The points are the held-out data.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skmoe import MixtureOfExpertsClassifier, SoftmaxGate

X, y = make_moons(n_samples=600, noise=0.2, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
single = LogisticRegression().fit(X_train, y_train)
moe = MixtureOfExpertsClassifier(
    LogisticRegression(C=10.0), n_experts=3, gate=SoftmaxGate(alpha=0.1),
    n_init=3, random_state=0,
).fit(X_train, y_train)
print(f"held-out accuracy, logistic regression: {single.score(X_test, y_test):.3f}")
print(f"held-out accuracy, mixture of 3 logistic experts: {moe.score(X_test, y_test):.3f}")

# %%
xx, yy = np.meshgrid(np.linspace(-1.6, 2.6, 300), np.linspace(-1.2, 1.7, 300))
grid = np.column_stack([xx.ravel(), yy.ravel()])
proba = moe.predict_proba(grid)[:, 1].reshape(xx.shape)
owner = moe.predict_expert(grid).reshape(xx.shape)

single_proba = single.predict_proba(grid)[:, 1].reshape(xx.shape)

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5), sharey=True)
# Pale background, saturated points: the classes stay visible on it.
left.contourf(xx, yy, proba, levels=20, cmap="RdBu_r", alpha=0.35)
left.contour(xx, yy, proba, levels=[0.5], colors="k")
left.contour(xx, yy, single_proba, levels=[0.5], colors="0.4", linestyles="--")
for c, marker in [(0, "o"), (1, "s")]:
    left.scatter(*X_test[y_test == c].T, color=plt.cm.RdBu_r(0.9 * c + 0.05),
                 marker=marker, edgecolor="w", linewidth=0.5, s=22, label=f"class {c}")
left.plot([], [], "k-", label="mixture, P = 0.5")
left.plot([], [], "--", color="0.4", label="single logistic, P = 0.5")
left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
left.set_title("mixture: P(class 1) and its 0.5 boundary")
left.set_xlabel("x1")
left.set_ylabel("x2")

colors = plt.cm.Set2(np.arange(moe.n_experts_))
right.contourf(xx, yy, owner, levels=np.arange(moe.n_experts_ + 1) - 0.5,
               colors=colors, alpha=0.6)
for c, marker in [(0, "o"), (1, "s")]:
    right.scatter(*X_test[y_test == c].T, color=plt.cm.RdBu_r(0.9 * c + 0.05),
                  marker=marker, edgecolor="w", linewidth=0.5, s=22)
right.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colors[k], alpha=0.6)
                      for k in range(moe.n_experts_)],
             labels=[f"expert {k}" for k in range(moe.n_experts_)],
             loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8)
right.set_title("gate: most probable expert")
right.set_xlabel("x1")
fig.tight_layout()
plt.show()
