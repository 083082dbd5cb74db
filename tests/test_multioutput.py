"""Several targets at once: a 2-D y, one likelihood per output, missing labels."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor, MultiOutputExpert

# True coefficients [intercept, x0, x1] of expert k (rows) for output t.
BETA = np.array([
    [[2.0, 1.0, -1.0], [1.0, -1.0, 0.5]],
    [[-2.0, -1.0, 1.5], [-1.0, 1.0, 1.0]],
])
SIGMA = np.array([0.3, 0.5])


def _two_output_data(n, rng, gate_slope=4.0):
    """Two experts, two Gaussian outputs; expert 1 is more likely for large
    ``x0 + x1`` (``gate_slope`` 0: a latent expert independent of x)."""
    X = rng.uniform(-2, 2, size=(n, 2))
    p1 = 1.0 / (1.0 + np.exp(-gate_slope * (X[:, 0] + X[:, 1])))
    z = (rng.uniform(size=n) < p1).astype(int)
    A = np.column_stack([np.ones(n), X])
    mean = np.einsum("nd,ntd->nt", A, BETA[z])
    return X, mean + SIGMA * rng.standard_normal((n, 2)), z


def _matched(estimated):
    """Estimated (K, T, 3) coefficients in the order of BETA's experts."""
    if np.abs(estimated - BETA).sum() > np.abs(estimated[::-1] - BETA).sum():
        return estimated[::-1]
    return estimated


def _coefficients(moe):
    """(K, T, 3): one native multi-output fit or one estimator per output."""
    out = []
    for expert in moe.experts_:
        ests = expert.estimators_
        if len(ests) == 1 and expert.n_outputs_ > 1:
            out.append(np.column_stack([ests[0].intercept_, ests[0].coef_]))
        else:
            out.append([np.r_[est.intercept_, est.coef_] for est in ests])
    return np.array(out)


def test_coefficients_recovered_within_three_standard_errors():
    rng = np.random.RandomState(0)
    X, y, z = _two_output_data(1500, rng, gate_slope=20.0)
    experts = MultiOutputExpert([LinearRegression(), LinearRegression()])
    moe = MixtureOfExpertsRegressor(experts, n_experts=2, random_state=0).fit(X, y)
    est = _matched(_coefficients(moe))
    # Standard errors of least squares on each expert's true rows, from the
    # known design: sigma_t^2 (A_k^T A_k)^-1.
    A = np.column_stack([np.ones(len(X)), X])
    for k in range(2):
        inv = np.linalg.inv(A[z == k].T @ A[z == k])
        for t in range(2):
            se = SIGMA[t] * np.sqrt(np.diag(inv))
            assert np.all(np.abs(est[k, t] - BETA[k, t]) < 3 * se), (k, t, est[k, t])
    assert moe.likelihood_params_[0].shape == (2,)
    np.testing.assert_allclose(np.sort(moe.likelihood_params_[0]), SIGMA[0] ** 2, rtol=0.15)


def test_shared_latent_expert_beats_separate_mixtures_on_joint_log_likelihood():
    # The latent expert does not depend on x: only a model of both outputs
    # together learns that they move with the same expert.
    rng = np.random.RandomState(1)
    X, y, _ = _two_output_data(1000, rng, gate_slope=0.0)
    train, test = slice(0, 500), slice(500, None)
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=2, init="kmeans", n_init=2, random_state=0
    )
    shared = clone(moe).fit(X[train], y[train])
    joint = shared.log_prob(X[test], y[test])
    separate = sum(
        clone(moe).fit(X[train], y[train, t]).log_prob(X[test], y[test, t])
        for t in range(2)
    )
    diff = joint - separate
    assert diff.mean() > 3 * diff.std(ddof=1) / np.sqrt(diff.size), diff.mean()


def test_sparse_second_output_borrows_from_the_first():
    # 80% of the second (noisier) output missing at random: the shared
    # mixture learns the gate from the first output's labels.
    rng = np.random.RandomState(2)
    X, y, _ = _two_output_data(1400, rng)
    y[:, 1] += 1.5 * rng.standard_normal(len(y))  # the sparse task is noisy
    train, test = slice(0, 400), slice(400, None)
    y_train = y[train].copy()
    y_train[rng.uniform(size=400) < 0.8, 1] = np.nan
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=2, init="kmeans", n_init=2, random_state=0
    )
    shared = clone(moe).fit(X[train], y_train)
    own = shared.log_prob_outputs(X[test], y[test])[:, 1]
    labelled = ~np.isnan(y_train[:, 1])
    alone = clone(moe).fit(
        X[train][labelled], y_train[labelled, 1]
    ).log_prob(X[test], y[test, 1])
    diff = own - alone
    assert diff.mean() > diff.std(ddof=1) / np.sqrt(diff.size), diff.mean()


@pytest.mark.parametrize(
    "name, expert",
    [
        ("gaussian", make_pipeline(StandardScaler(), LinearRegression())),
        (
            "poisson",
            make_pipeline(
                StandardScaler(), PoissonRegressor(alpha=1e-4, solver="newton-cholesky")
            ),
        ),
    ],
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_one_output_gives_the_single_output_model(name, expert):
    rng = np.random.RandomState(3)
    X, y, _ = _two_output_data(300, rng)
    y = y[:, 0] if name == "gaussian" else rng.poisson(np.exp(0.3 * y[:, 0]))
    # (Few iterations: PoissonRegressor fits are slow; exactness is per iteration.)
    params = dict(n_experts=2, init="kmeans", random_state=0, max_iter=6)
    single = MixtureOfExpertsRegressor(expert, likelihood=name, **params).fit(X, y)
    listed = MixtureOfExpertsRegressor(expert, likelihood=[name], **params).fit(X, y)
    assert abs(single.log_likelihood_ - listed.log_likelihood_) < 1e-10
    assert single.n_iter_ == listed.n_iter_
    np.testing.assert_allclose(single.predict(X), listed.predict(X), rtol=0, atol=1e-10)
    np.testing.assert_allclose(single.log_prob(X, y), listed.log_prob(X, y), atol=1e-10)


def test_one_column_y_is_the_single_output_model_shaped_as_y():
    rng = np.random.RandomState(4)
    X, y, _ = _two_output_data(300, rng)
    moe = MixtureOfExpertsRegressor(n_experts=2, init="kmeans", random_state=0)
    flat = clone(moe).fit(X, y[:, 0])
    column = clone(moe).fit(X, y[:, :1])
    assert column.log_likelihood_ == flat.log_likelihood_
    assert column.predict(X).shape == (300, 1)
    np.testing.assert_array_equal(column.predict(X)[:, 0], flat.predict(X))
    assert flat.predict(X).shape == (300,)


def _observed_log_prob(moe, X, y):
    """``log sum_k pi_k prod_{t observed} N(y_t; f_kt, s_kt^2)`` by scipy."""
    pi = moe.predict_gate(X)
    f = moe.predict_experts(X)  # (n, K, T)
    var = np.stack(moe.likelihood_params_, axis=1)  # (K, T)
    logpdf = stats.norm.logpdf(y[:, None, :], f, np.sqrt(var)[None])
    logpdf = np.where(np.isnan(y)[:, None, :], 0.0, logpdf)
    return logsumexp(np.log(pi) + logpdf.sum(axis=2), axis=1)


def test_missing_labels_log_prob_counts_what_is_observed():
    rng = np.random.RandomState(5)
    X, y, _ = _two_output_data(500, rng)
    y[rng.uniform(size=500) < 0.5, 1] = np.nan
    y[:20, 0] = np.nan  # some rows lack the first output only
    y[:20, 1] = np.where(np.isnan(y[:20, 1]), 0.5, y[:20, 1])
    moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(moe.log_prob(X, y), _observed_log_prob(moe, X, y), rtol=1e-9)
    per_output = moe.log_prob_outputs(X, y)
    assert np.array_equal(np.isnan(per_output), np.isnan(y))
    # Each output's R^2 on its labelled rows, averaged.
    pred = moe.predict(X)
    expected = np.mean([
        r2_score(y[~np.isnan(y[:, t]), t], pred[~np.isnan(y[:, t]), t]) for t in range(2)
    ])
    assert moe.score(X, y) == pytest.approx(expected, rel=1e-12)


def test_each_output_is_fit_on_its_labelled_rows_only():
    rng = np.random.RandomState(6)
    X, y, _ = _two_output_data(400, rng)
    y[rng.uniform(size=400) < 0.7, 1] = np.nan
    moe = MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=2), n_experts=2, init="kmeans", random_state=0,
        max_iter=5,
    ).fit(X, y)
    labelled = int((~np.isnan(y[:, 1])).sum())
    for expert in moe.experts_:
        first, second = expert.estimators_
        assert second.tree_.n_node_samples[0] == labelled
        assert first.tree_.n_node_samples[0] <= 400


def test_fully_observed_shared_linear_fit_is_one_native_multi_output_fit():
    rng = np.random.RandomState(7)
    X, y, _ = _two_output_data(200, rng)
    w = rng.uniform(0.1, 2.0, size=200)
    expert = MultiOutputExpert([LinearRegression(), LinearRegression()]).fit(X, y, w)
    assert len(expert.estimators_) == 1  # one fit of both columns
    for t in range(2):
        own = LinearRegression().fit(X, y[:, t], sample_weight=w)
        np.testing.assert_allclose(expert.predict(X)[:, t], own.predict(X), atol=1e-10)
    y[0, 1] = np.nan
    expert.fit(X, y, w)
    assert len(expert.estimators_) == 2
    own = LinearRegression().fit(X[1:], y[1:, 1], sample_weight=w[1:])
    np.testing.assert_allclose(expert.predict(X)[:, 1], own.predict(X), atol=1e-10)


def test_bernoulli_output_predicts_a_probability():
    rng = np.random.RandomState(8)
    X, y, z = _two_output_data(600, rng)
    liked = (y[:, 1] > 0).astype(float)
    liked[rng.uniform(size=600) < 0.5] = np.nan
    Y = np.column_stack([y[:, 0], liked])
    moe = MixtureOfExpertsRegressor(
        n_experts=2, likelihood=["gaussian", "bernoulli"], random_state=0
    ).fit(X, Y)
    pred = moe.predict(X)
    assert pred.shape == (600, 2)
    assert np.all((pred[:, 1] >= 0) & (pred[:, 1] <= 1))
    assert isinstance(moe.experts_[0].estimators_[1], LogisticRegression)
    assert moe.likelihood_params_[1] is None
    # The Bernoulli output's log-likelihood is scipy's log-pmf.
    seen = ~np.isnan(liked)
    p = moe.predict_experts(X)[:, :, 1]
    ll = logsumexp(
        np.log(moe.predict_gate(X)[seen]) + stats.bernoulli.logpmf(liked[seen, None], p[seen]),
        axis=1,
    )
    np.testing.assert_allclose(moe.log_prob_outputs(X, Y)[seen, 1], ll, rtol=1e-9)
    mean, std = moe.predict(X, return_std=True)
    np.testing.assert_allclose(std[:, 1], np.sqrt(mean[:, 1] * (1 - mean[:, 1])))
    assert moe.route(X).weights.shape == (600, 2)
    assert moe.predict_expert(X).shape == (600,)


def test_bad_multi_output_input_is_refused_clearly():
    rng = np.random.RandomState(9)
    X, y, _ = _two_output_data(100, rng)
    moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0)
    unlabelled = y.copy()
    unlabelled[3] = np.nan
    with pytest.raises(ValueError, match="no observed output"):
        moe.fit(X, unlabelled)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        moe.fit(X, unlabelled[:, 0])
    with pytest.raises(ValueError, match="one likelihood per column"):
        MixtureOfExpertsRegressor(likelihood=["gaussian"] * 3).fit(X, y)
    with pytest.raises(TypeError, match="needs a classifier"):
        MixtureOfExpertsRegressor(
            LinearRegression(), likelihood=["gaussian", "bernoulli"]
        ).fit(X, np.column_stack([y[:, 0], y[:, 1] > 0]))
    with pytest.raises(ValueError, match="0/1 output"):
        MixtureOfExpertsRegressor(likelihood=["gaussian", "bernoulli"]).fit(X, y)
    with pytest.raises(ValueError, match="solver='em'"):
        MixtureOfExpertsRegressor(solver="gd").fit(X, y)
    assert not hasattr(moe, "experts_")  # nothing half-fitted
