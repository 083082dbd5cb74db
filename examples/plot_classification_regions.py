"""
=============================================
Classification: decision regions and the gate
=============================================

On the two-moons data, a single logistic regression draws one straight
boundary. A mixture of three logistic experts lets the gate cut the plane into
regions, each with its own straight boundary: together they bend around the
moons. Left: the mixture's class probability; right: which expert the gate
gives each point to.
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

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
left.contourf(xx, yy, proba, levels=20, cmap="RdBu_r", alpha=0.8)
left.contour(xx, yy, proba, levels=[0.5], colors="k")
left.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu_r", edgecolor="k", s=15)
left.set_title("mixture: P(class 1) and its 0.5 boundary")
right.contourf(xx, yy, owner, levels=np.arange(4) - 0.5, cmap="Pastel1", alpha=0.9)
right.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu_r", edgecolor="k", s=15)
right.set_title("gate: most probable expert")
fig.tight_layout()
plt.show()
