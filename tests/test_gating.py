"""SoftmaxGate: gradient, optimum, scale invariance, input checks."""

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import check_grad
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import naive
from skmoe import SoftmaxGate
from skmoe._gating import _gate_objective, _weighted_standardization


def _problem(n=300, d=3, k=3, seed=0):
    rng = np.random.RandomState(seed)
    Z = rng.normal(size=(n, d))
    R = naive.softmax_rows(Z @ rng.normal(size=(d, k)) * 2 + rng.normal(size=k))
    return Z, R, rng


def test_gate_gradient_matches_finite_differences():
    Z, R, rng = _problem(n=60)
    Z[:, 0] = Z[:, 0] * 10 + 2000  # a "year" column
    sw = rng.uniform(0.2, 3, size=60)
    mean, scale = _weighted_standardization(Z, sw)
    x0 = rng.normal(size=3 * 3 + 3)
    args = (Z, R, sw, mean, scale, 0.7, sw.sum())
    err = check_grad(lambda v: _gate_objective(v, *args)[0], lambda v: _gate_objective(v, *args)[1], x0)
    assert err < 1e-6


def test_gate_objective_matches_numpy_reference():
    Z, R, rng = _problem(n=80)
    sw = rng.uniform(0.2, 3, size=80)
    mean, scale = _weighted_standardization(Z, sw)
    W, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    value = _gate_objective(np.concatenate([W.ravel(), b]), Z, R, sw, mean, scale, 0.5, sw.sum())[0]
    assert_allclose(value, naive.gate_objective(W, b, Z, R, sw, 0.5), rtol=1e-12)


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_gate_on_hard_targets_equals_logistic_regression(C):
    # One-hot targets make the gate a multinomial logistic regression; with
    # standardised inputs alpha = 1 / C gives sklearn's objective.
    Z, R, rng = _problem(n=400)
    labels = R.argmax(axis=1)
    Zs = StandardScaler().fit_transform(Z)
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=10000).fit(Zs, labels)
    gate = SoftmaxGate(alpha=1 / C, tol=1e-10, max_iter=10000).fit(Zs, np.eye(3)[labels])
    assert_allclose(gate.predict_proba(Zs), lr.predict_proba(Zs), atol=1e-6)


def test_gate_on_unscaled_inputs_reaches_standardised_optimum():
    Z, R, _ = _problem(n=500, d=2)
    Z_raw = Z * np.array([15.0, 0.001]) + np.array([2000.0, 0.0])  # years, thousandths
    Z_std = StandardScaler().fit_transform(Z_raw)
    g_raw = SoftmaxGate(alpha=1.0, tol=1e-10, max_iter=5000).fit(Z_raw, R)
    g_std = SoftmaxGate(alpha=1.0, tol=1e-10, max_iter=5000).fit(Z_std, R)
    assert_allclose(g_raw.predict_proba(Z_raw), g_std.predict_proba(Z_std), atol=1e-7)
    assert_allclose(g_raw.objective_, g_std.objective_, rtol=1e-9)


def test_gate_alpha_zero_recovers_true_soft_targets():
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(2000, 2))
    V = np.array([[2.0, -1.0, 0.0], [0.5, 1.5, 0.0]])
    R = naive.softmax_rows(Z @ V + np.array([0.3, -0.2, 0.0]))
    gate = SoftmaxGate(alpha=0.0, tol=1e-10, max_iter=5000).fit(Z, R)
    assert_allclose(gate.predict_proba(Z), R, atol=1e-5)


def test_gate_sample_weight_equals_repetition():
    Z, R, rng = _problem(n=50)
    sw = rng.randint(0, 4, size=50)
    a = SoftmaxGate(tol=1e-10).fit(Z, R, sample_weight=sw)
    b = SoftmaxGate(tol=1e-10).fit(np.repeat(Z, sw, axis=0), np.repeat(R, sw, axis=0))
    assert_allclose(a.coef_, b.coef_, atol=1e-6)


def test_gate_warm_start_starts_at_previous_solution():
    Z, R, _ = _problem()
    gate = SoftmaxGate(warm_start=True, tol=1e-9).fit(Z, R)
    first = gate.n_iter_
    gate.fit(Z, R)
    assert gate.n_iter_ < first
    assert gate.n_iter_ <= 2


@pytest.mark.parametrize(
    "R, msg",
    [
        (np.full((10, 1), 1.0), "at least 2 columns"),
        (np.tile([0.7, 0.7], (10, 1)), "sum to 1"),
        (np.tile([1.5, -0.5], (10, 1)), "non-negative"),
    ],
)
def test_gate_rejects_bad_targets(R, msg):
    with pytest.raises(ValueError, match=msg):
        SoftmaxGate().fit(np.ones((10, 2)), R)


def test_gate_checks_n_features_at_predict():
    Z, R, _ = _problem()
    gate = SoftmaxGate().fit(Z, R)
    with pytest.raises(ValueError, match="features"):
        gate.predict_proba(Z[:, :2])


def test_gate_objective_with_balance_matches_reference_and_gradient():
    Z, R, rng = _problem(n=60)
    Z[:, 0] = Z[:, 0] * 10 + 2000
    sw = rng.uniform(0.2, 3, size=60)
    mean, scale = _weighted_standardization(Z, sw)
    W, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    x0 = np.concatenate([W.ravel(), b])
    args = (Z, R, sw, mean, scale, 0.7, sw.sum(), 2.5)
    assert_allclose(
        _gate_objective(x0, *args)[0],
        naive.gate_objective(W, b, Z, R, sw, 0.7, balance=2.5),
        rtol=1e-12,
    )
    err = check_grad(lambda v: _gate_objective(v, *args)[0], lambda v: _gate_objective(v, *args)[1], x0)
    # check_grad's forward differences carry an O(step * curvature) error;
    # central differences pin the gradient down to 1e-8.
    grad = _gate_objective(x0, *args)[1]
    assert err < 1e-5 * np.linalg.norm(grad)
    h = 1e-5
    central = np.array([
        (_gate_objective(x0 + h * e, *args)[0] - _gate_objective(x0 - h * e, *args)[0]) / (2 * h)
        for e in np.eye(x0.size)
    ])
    assert_allclose(central, grad, atol=1e-8)
    # The balance term alone, through the full chain (standardisation included).
    no_bal = args[:-1] + (0.0,)
    diff = lambda v: _gate_objective(v, *args)[0] - _gate_objective(v, *no_bal)[0]  # noqa: E731
    diff_grad = lambda v: _gate_objective(v, *args)[1] - _gate_objective(v, *no_bal)[1]  # noqa: E731
    g = diff_grad(x0)
    assert np.linalg.norm(g) > 1e-3
    assert check_grad(diff, diff_grad, x0) < 1e-5 * np.linalg.norm(g)


def test_balance_pulls_mean_gate_probabilities_toward_uniform():
    # Targets that use expert 0 for 80% of the rows.
    rng = np.random.RandomState(0)
    Z = rng.normal(size=(500, 2))
    R = naive.softmax_rows(np.column_stack([2 * Z[:, 0] + 2, -Z[:, 0], Z[:, 1] - 1]))
    kl = []
    for balance in [0.0, 0.1, 1.0, 10.0]:
        gate = SoftmaxGate(alpha=0.1, balance=balance, tol=1e-9, max_iter=2000).fit(Z, R)
        pbar = gate.predict_proba(Z).mean(axis=0)
        kl.append(-np.mean(np.log(3 * pbar)))
        # The penalty the mixture subtracts is recomputed at the solution.
        W_s = gate.coef_.T * Z.std(axis=0)[:, None]
        l2 = 0.5 * 0.1 * np.sum(W_s**2)
        assert_allclose(gate.penalty(), l2 + balance * 500 * kl[-1], rtol=1e-6)
    assert kl[0] > 0.05
    assert np.all(np.diff(kl) < 0)
    assert kl[-1] < 0.01 * kl[0]


def test_gate_hessian_matches_finite_differences_and_newton_equals_lbfgs(monkeypatch):
    from scipy.optimize import approx_fprime

    from skmoe import SoftmaxGate
    from skmoe import _gating

    rng = np.random.RandomState(0)
    n, d, K = 3000, 3, 4
    Z = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1] + [0.0, 5.0, 1.0]
    R = rng.dirichlet(np.ones(K), size=n)
    sw = rng.uniform(0.5, 2, size=n)
    mean, scale = _gating._weighted_standardization(Z, sw)
    args = (Z, R, sw, mean, scale, 0.7, sw.sum())
    x = rng.normal(size=(d + 1) * K) * 0.3
    H = _gating._gate_hessian(x, *args)
    H_fd = np.array([
        approx_fprime(x, lambda v: _gating._gate_objective(v, *args)[1][i], 1e-6)
        for i in range(x.size)
    ])
    assert_allclose(H, H_fd, atol=1e-6)
    assert _gating._newton_pays(d, K)
    newton = SoftmaxGate(alpha=0.7, tol=1e-9).fit(Z, R, sample_weight=sw)
    monkeypatch.setattr(_gating, "_newton_pays", lambda *a: False)
    lbfgs = SoftmaxGate(alpha=0.7, tol=1e-9).fit(Z, R, sample_weight=sw)
    assert newton.n_iter_ < lbfgs.n_iter_
    assert_allclose(newton.objective_, lbfgs.objective_, rtol=1e-12)
    assert_allclose(newton.coef_, lbfgs.coef_, rtol=1e-5, atol=1e-6)


def test_gate_hessian_and_fused_objective_sparse_equal_dense(two_threads):
    import scipy.sparse as sp

    from skmoe import _gating

    rng = np.random.RandomState(1)
    n, d, K = 5000, 4, 3
    Z = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 5.0, 1.0, -2.0]
    Z[rng.uniform(size=Z.shape) < 0.3] = 0.0
    R = rng.dirichlet(np.ones(K), size=n)
    sw = rng.uniform(0.5, 2, size=n)
    mean, scale = _gating._weighted_standardization(Z, sw)
    x = rng.normal(size=(d + 1) * K) * 0.3
    dense = (Z, R, sw, mean, scale, 0.3, sw.sum())
    sparse = (sp.csr_matrix(Z),) + dense[1:]
    # The dense objective takes the fused chunked pass, the sparse one the
    # plain products: two independent computations of the same numbers.
    f_d, g_d = _gating._gate_objective(x, *dense)
    f_s, g_s = _gating._gate_objective(x, *sparse)
    assert_allclose(f_d, f_s, rtol=1e-12)
    assert_allclose(g_d, g_s, rtol=1e-10, atol=1e-14)
    W = x[: d * K].reshape(d, K)
    b = x[d * K :]
    assert_allclose(f_d, naive.gate_objective(W, b, Z, R, sw, 0.3), rtol=1e-10)
    assert_allclose(
        _gating._gate_hessian(x, *dense), _gating._gate_hessian(x, *sparse), rtol=1e-10,
        atol=1e-14,
    )
    # Bit-identical whatever the number of threads.
    numba.set_num_threads(1)
    f_1, g_1 = _gating._gate_objective(x, *dense)
    assert f_1 == f_d and np.array_equal(g_1, g_d)


def test_standardized_params_round_trip():
    # Solvers outside the gate (chunked Newton steps, the classifier's
    # polish) set it through get_standardization / set_standardized_params:
    # the gate's own fit, mapped to the standardised scale by hand, must
    # give back the same gate (coefficients, probabilities, penalty).
    rng = np.random.RandomState(0)
    Z = rng.randn(300, 4) * [1.0, 10.0, 0.1, 3.0] + [0.0, 5.0, -2.0, 1.0]
    R = rng.dirichlet(np.ones(3), size=300)
    sw = rng.uniform(0.5, 2.0, 300)
    fitted = SoftmaxGate(alpha=2.0).fit(Z, R, sample_weight=sw)
    mean, scale = fitted.get_standardization()
    assert_allclose(mean, np.average(Z, axis=0, weights=sw))
    # logits = Z coef^T + b = ((Z - mean) / scale) W_s + b_s
    W_s = fitted.coef_.T * scale[:, None]
    b_s = fitted.intercept_ + mean @ fitted.coef_.T
    other = SoftmaxGate(alpha=2.0)
    other.prepare(Z, sw)
    other.set_standardized_params(np.concatenate([W_s.ravel(), b_s]), objective=1.5, n_iter=7)
    assert_allclose(other.coef_, fitted.coef_, rtol=1e-12, atol=1e-12)
    assert_allclose(other.predict_proba(Z), fitted.predict_proba(Z), rtol=1e-12)
    assert_allclose(other.penalty(), 0.5 * 2.0 * np.sum(W_s**2), rtol=1e-12)
    assert (other.objective_, other.n_iter_) == (1.5, 7)


def test_backtrack_armijo_steps():
    # The one line search of the gate's Newton solvers: f(t) = (1 - 2.5 t)^2
    # from f = 1 with slope -5 rejects t = 1 (2.25) and accepts t = 1/2.
    from skmoe._gating import backtrack

    found = backtrack(lambda t: ((1 - 2.5 * t) ** 2, "extra"), 1.0, -5.0)
    assert found == (0.5, (0.0625, "extra"))
    # No decrease anywhere along the direction: None (the caller falls back).
    assert backtrack(lambda t: (1.0 + t, None), 1.0, -1.0) is None
