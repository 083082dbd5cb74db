"""Standard errors, covariance, bootstrap and summary tables (skmoe/_inference.py).

The exact information is checked against finite differences of a
log-likelihood written here independently (scipy.stats densities, explicit
softmax), and the one-expert cases against the textbook closed forms.
"""

import sys

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
)
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, SoftmaxGate
from skmoe._bootstrap import align_experts, permuted_mixture
from skmoe._information import Layout, information


# -- an independent log-likelihood ---------------------------------------------
def naive_loglik(family, K, q, p, L, params, Z, X, y):
    """log p(y | x) summed over rows: gate against expert 0, then per expert
    ``L`` coefficient rows of length ``p`` and (gaussian, gamma) one theta."""
    params = np.asarray(params, dtype=float)
    V = params[: (K - 1) * q].reshape(K - 1, q)
    logits = np.column_stack([np.zeros(len(y))] + [Z @ v for v in V])
    log_gate = logits - logsumexp(logits, axis=1, keepdims=True)
    rest = params[(K - 1) * q :]
    size = L * p + (family in ("gaussian", "gamma", "negbin"))
    cols = []
    for k in range(K):
        block = rest[k * size : (k + 1) * size]
        B = block[: L * p].reshape(L, p)
        eta = X @ B.T
        if family == "gaussian":
            cols.append(stats.norm.logpdf(y, eta[:, 0], np.sqrt(block[-1])))
        elif family == "poisson":
            cols.append(stats.poisson.logpmf(y, np.exp(eta[:, 0])))
        elif family == "gamma":
            nu = block[-1]
            cols.append(stats.gamma.logpdf(y, a=nu, scale=np.exp(eta[:, 0]) / nu))
        elif family == "negbin":
            r, mu = block[-1], np.exp(eta[:, 0])
            cols.append(stats.nbinom.logpmf(y, r, r / (r + mu)))
        else:
            full = np.column_stack([np.zeros(len(y)), eta])
            proba = np.exp(full) / np.exp(full).sum(axis=1, keepdims=True)
            cols.append(np.log(proba[np.arange(len(y)), y.astype(int)]))
    return float(logsumexp(log_gate + np.column_stack(cols), axis=1).sum())


def fd_hessian(f, x, h=1e-4):
    """Central second differences."""
    P = len(x)
    E = np.eye(P) * h
    H = np.empty((P, P))
    for i in range(P):
        for j in range(i, P):
            H[i, j] = H[j, i] = (
                f(x + E[i] + E[j])
                - f(x + E[i] - E[j])
                - f(x - E[i] + E[j])
                + f(x - E[i] - E[j])
            ) / (4 * h * h)
    return H


@pytest.mark.parametrize(
    "family, L",
    [
        ("gaussian", 1),
        ("poisson", 1),
        ("gamma", 1),
        ("negbin", 1),
        ("logistic", 1),
        ("logistic", 2),
    ],
)
def test_information_matches_finite_differences(family, L):
    rng = np.random.default_rng(1)
    n, K = 150, 3
    Z = np.column_stack([rng.normal(size=(n, 1)), np.ones(n)])
    X = np.column_stack([rng.normal(size=(n, 2)), np.ones(n)])
    y = {
        "gaussian": rng.normal(size=n),
        "poisson": rng.poisson(3, n).astype(float),
        "gamma": rng.gamma(2.0, size=n),
        "negbin": rng.negative_binomial(2, 0.4, n).astype(float),
        "logistic": rng.integers(0, L + 1, n).astype(float),
    }[family]
    layout = Layout(family, K, 2, 3, L)
    params = 0.3 * rng.normal(size=layout.size)
    if layout.n_theta:
        for k in range(K):
            params[layout.expert_slice(k).stop - 1] = 1.0 + 0.5 * k
    info, _, score = information(layout, params, Z, X, y)

    def f(v):
        return naive_loglik(family, K, 2, 3, L, v, Z, X, y)

    grad = np.array(
        [
            (f(params + 1e-6 * e) - f(params - 1e-6 * e)) / 2e-6
            for e in np.eye(layout.size)
        ]
    )
    np.testing.assert_allclose(score, grad, rtol=1e-5, atol=1e-5)
    H = fd_hessian(f, params)
    np.testing.assert_allclose(-info, H, rtol=1e-4, atol=1e-4 * np.abs(H).max())


# -- fitted mixtures -------------------------------------------------------------
def two_experts(n=400, seed=0):
    """Well separated gated experts and their true responsibilities."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, n)
    pi1 = 1 / (1 + np.exp(-(2.5 * x + 0.2)))
    z = rng.uniform(size=n) < pi1
    y = np.where(z, 1 + 2 * x, -1 - x) + 0.4 * rng.standard_normal(n)
    resp = np.column_stack([~z, z]).astype(float)
    return x[:, None], y, resp


def fitted(X, y, resp, **kw):
    return MixtureOfExpertsRegressor(
        LinearRegression(),
        n_experts=2,
        gate=SoftmaxGate(alpha=0),
        init=resp,
        tol=1e-12,
        max_iter=3000,
        **kw,
    ).fit(X, y)


def test_fitted_covariance_is_inverse_fd_hessian_of_naive_loglik():
    X, y, resp = two_experts()
    moe = fitted(X, y, resp)
    cov = moe.covariance(X, y)
    frame = moe.summary_frame(X, y)
    params = frame["coef"].to_numpy()
    # the table reads the fitted attributes in the documented order
    W = np.column_stack([moe.gate_.coef_, moe.gate_.intercept_])
    np.testing.assert_allclose(params[:2], W[1] - W[0])
    e0 = moe.experts_[0]
    np.testing.assert_allclose(
        params[2:5], [e0.coef_[0], e0.intercept_, moe.noise_variance_[0]]
    )
    Z = np.column_stack([X, np.ones(len(y))])
    H = fd_hessian(lambda v: naive_loglik("gaussian", 2, 2, 2, 1, v, Z, Z, y), params)
    np.testing.assert_allclose(cov, np.linalg.inv(-H), rtol=2e-3, atol=1e-7)
    np.testing.assert_allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    np.testing.assert_allclose(frame["std err"], np.sqrt(np.diag(cov)))


def test_one_expert_ols_closed_form():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 + rng.standard_normal(120)
    moe = MixtureOfExpertsRegressor(LinearRegression(), n_experts=1).fit(X, y)
    cov = moe.covariance(X, y)
    Xd = np.column_stack([X, np.ones(120)])
    beta = np.linalg.lstsq(Xd, y, rcond=None)[0]
    sigma2 = np.mean((y - Xd @ beta) ** 2)  # the MLE variance
    np.testing.assert_allclose(
        cov[:4, :4], sigma2 * np.linalg.inv(Xd.T @ Xd), rtol=1e-6
    )
    np.testing.assert_allclose(cov[4, 4], 2 * sigma2**2 / 120, rtol=1e-6)
    # robust: the HC0 sandwich of least squares
    robust = moe.covariance(X, y, covariance_type="robust")
    bread = np.linalg.inv(Xd.T @ Xd)
    e = y - Xd @ beta
    np.testing.assert_allclose(
        robust[:4, :4], bread @ (Xd.T * e**2) @ Xd @ bread, rtol=1e-6
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_one_expert_logistic_inverse_fisher(n_classes):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 2))
    logits = np.column_stack(
        [np.zeros(300)] + [X @ rng.normal(size=2) for _ in range(n_classes - 1)]
    )
    y = (
        rng.uniform(size=(300, 1))
        > np.cumsum(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), axis=1)
    ).sum(axis=1)
    expert = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    moe = MixtureOfExpertsClassifier(expert, n_experts=1).fit(X, y)
    cov = moe.covariance(X, y)
    Xd = np.column_stack([X, np.ones(300)])
    p = moe.experts_[0].predict_proba(X)[:, 1:]
    C = n_classes - 1
    info = np.zeros((3 * C, 3 * C))
    for a in range(C):
        for b in range(C):
            w = p[:, a] * ((a == b) - p[:, b])
            info[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] = (Xd * w[:, None]).T @ Xd
    np.testing.assert_allclose(cov, np.linalg.inv(info), rtol=1e-5, atol=1e-10)


def test_one_expert_poisson_closed_form():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 2))
    y = rng.poisson(np.exp(0.5 + X @ [0.3, -0.2])).astype(float)
    moe = MixtureOfExpertsRegressor(
        PoissonRegressor(alpha=0, solver="newton-cholesky", tol=1e-10),
        n_experts=1,
        likelihood="poisson",
    ).fit(X, y)
    Xd = np.column_stack([X, np.ones(200)])
    mu = moe.experts_[0].predict(X)
    np.testing.assert_allclose(
        moe.covariance(X, y), np.linalg.inv((Xd.T * mu) @ Xd), rtol=1e-5
    )


def test_gamma_mixture_covariance_positive_definite():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(300, 1))
    z = rng.uniform(size=300) < 1 / (1 + np.exp(-4 * X[:, 0]))
    mu = np.exp(np.where(z, 1 + X[:, 0], -0.5 - X[:, 0]))
    y = rng.gamma(5.0, mu / 5.0)
    moe = MixtureOfExpertsRegressor(
        GammaRegressor(alpha=0, solver="newton-cholesky", tol=1e-10),
        n_experts=2,
        likelihood="gamma",
        gate=SoftmaxGate(alpha=0),
        init=np.column_stack([~z, z]).astype(float),
        tol=1e-12,
        max_iter=3000,
    ).fit(X, y)
    frame = moe.summary_frame(X, y)
    assert list(frame.index.get_level_values("term")[-3:]) == [
        "x0",
        "intercept",
        "shape",
    ]
    assert np.all(np.linalg.eigvalsh(moe.covariance(X, y)) > 0)


def test_summary_names_inputs_of_a_dataframe():
    pd = pytest.importorskip("pandas")
    X, y, resp = two_experts()
    frame = pd.DataFrame({"dose": X[:, 0], "age": np.linspace(0, 1, len(y))})
    moe = fitted(frame, y, resp, gate_features=["dose"])
    text = str(moe.summary(frame, y))
    assert "gate: expert 1 vs 0" in text and "P>|z|" in text
    table = moe.summary_frame(frame, y)
    assert table.loc["gate: expert 1 vs 0"].index.tolist() == ["dose", "intercept"]
    assert table.loc["expert 1"].index.tolist() == [
        "dose",
        "age",
        "intercept",
        "variance",
    ]
    assert np.isnan(table.loc[("expert 1", "variance"), "z"])


def test_summary_frame_without_pandas_says_so(monkeypatch):
    X, y, resp = two_experts()
    moe = fitted(X, y, resp)
    print(moe.summary(X, y))  # the text needs no pandas
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="summary_frame needs pandas"):
        moe.summary_frame(X, y)


def test_penalised_and_unsupported_fits_are_refused():
    X, y, resp = two_experts(n=200)
    default = MixtureOfExpertsRegressor(n_experts=2, init=resp).fit(X, y)
    with pytest.raises(
        ValueError, match=r"experts=LinearRegression\(\).*gate=SoftmaxGate\(alpha=0\)"
    ):
        default.covariance(X, y)
    gate = MixtureOfExpertsRegressor(LinearRegression(), n_experts=2, init=resp).fit(
        X, y
    )
    with pytest.raises(ValueError, match=r"gate=SoftmaxGate\(alpha=0\)"):
        gate.summary(X, y)
    tree = MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=2),
        n_experts=2,
        gate=SoftmaxGate(alpha=0),
        init=resp,
    ).fit(X, y)
    with pytest.raises(TypeError, match="bootstrap"):
        tree.covariance(X, y)
    clf = MixtureOfExpertsClassifier(n_experts=1).fit(X, y > 0)
    with pytest.raises(ValueError, match=r"LogisticRegression\(C=np.inf\)"):
        clf.covariance(X, y > 0)
    moe = fitted(X, y, resp)
    with pytest.raises(ValueError, match="covariance_type"):
        moe.covariance(X, y, covariance_type="hc3")


def test_alignment_undoes_a_permutation():
    X, y, resp = two_experts()
    rng = np.random.default_rng(6)
    R = rng.dirichlet(np.ones(4), size=50)
    perm = np.array([2, 0, 3, 1])
    order = align_experts(R, R[:, perm])
    np.testing.assert_array_equal(R[:, perm][:, order], R)
    moe = fitted(X, y, resp)
    swapped = permuted_mixture(moe, [1, 0])
    np.testing.assert_allclose(swapped.predict(X), moe.predict(X))
    back = permuted_mixture(
        swapped,
        align_experts(moe.responsibilities(X, y), swapped.responsibilities(X, y)),
    )
    np.testing.assert_allclose(
        back.summary_frame(X, y)["coef"], moe.summary_frame(X, y)["coef"]
    )


@pytest.mark.parametrize("method", ["parametric", "nonparametric"])
def test_bootstrap_replicates_are_aligned_and_reproducible(method):
    X, y, resp = two_experts(n=300)
    moe = fitted(X, y, resp)
    reps = moe.bootstrap(X, y, n_boot=8, method=method, random_state=0)
    again = moe.bootstrap(X, y, n_boot=8, method=method, random_state=0)
    np.testing.assert_array_equal(reps, again)
    frame = moe.summary_frame(X, y)
    assert reps.shape == (8, len(frame))
    # aligned: every replicate's slopes lie within 6 standard errors of the fit's
    z = (reps - frame["coef"].to_numpy()) / frame["std err"].to_numpy()
    assert np.all(np.abs(z) < 6)
    table = moe.summary_frame(X, y, cov=np.cov(reps, rowvar=False))
    assert np.all(table["std err"] > 0)


def test_negbin_mixture_covariance_is_inverse_fd_hessian_of_naive_loglik():
    rng = np.random.default_rng(7)
    n = 400
    X = rng.uniform(-1, 1, size=(n, 1))
    z = rng.uniform(size=n) < 1 / (1 + np.exp(-4 * X[:, 0]))
    mu = np.exp(np.where(z, 1.5 + X[:, 0], 0.2 - X[:, 0]))
    y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu)).astype(float)
    moe = MixtureOfExpertsRegressor(
        PoissonRegressor(alpha=0, solver="newton-cholesky", tol=1e-12),
        n_experts=2,
        likelihood="negbin",
        gate=SoftmaxGate(alpha=0, tol=1e-12),
        init=np.column_stack([~z, z]).astype(float),
        tol=1e-12,
        max_iter=3000,
    ).fit(X, y)
    frame = moe.summary_frame(X, y)
    assert frame.index.get_level_values("term")[-1] == "dispersion r"
    params = frame["coef"].to_numpy()
    Z = np.column_stack([X, np.ones(n)])
    H = fd_hessian(lambda v: naive_loglik("negbin", 2, 2, 2, 1, v, Z, Z, y), params)
    np.testing.assert_allclose(
        moe.covariance(X, y), np.linalg.inv(-H), rtol=5e-3, atol=1e-6
    )
