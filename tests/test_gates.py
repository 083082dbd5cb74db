"""ClassifierGate and HierarchicalGate on the gate protocol."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skmoe import ClassifierGate, HierarchicalGate, SoftmaxGate


def _soft_problem(n=300, K=4, d=2, seed=0):
    rng = np.random.RandomState(seed)
    Z = rng.normal(size=(n, d))
    logits = Z @ rng.normal(scale=2.0, size=(d, K)) + rng.normal(size=K)
    R = softmax(logits + rng.gumbel(size=(n, K)), axis=1)
    w = rng.uniform(0.5, 2.0, size=n)
    return Z, np.ascontiguousarray(R), w


def _objective(gate, Z, R, w):
    return float(np.sum(w[:, None] * R * gate.log_proba(Z))) - gate.penalty()


# -- ClassifierGate -----------------------------------------------------------------
def _replicate(Z, R, w, threshold):
    """The replicated training set, built independently of the gate."""
    Zs, ys, ws = [], [], []
    for i in range(Z.shape[0]):
        for k in range(R.shape[1]):
            if R[i, k] > threshold:
                Zs.append(Z[i])
                ys.append(k)
                ws.append(w[i] * R[i, k])
    return np.array(Zs), np.array(ys), np.array(ws)


def test_classifier_gate_is_the_classifier_on_replicated_rows():
    Z, R, w = _soft_problem(K=3)
    gate = ClassifierGate(LogisticRegression(C=0.5), min_responsibility=0.05)
    gate.prepare(Z, w).fit_soft(Z, R, w)
    Zr, yr, wr = _replicate(Z, R, w, 0.05)
    ref = LogisticRegression(C=0.5).fit(Zr, yr, sample_weight=wr)
    np.testing.assert_allclose(np.exp(gate.log_proba(Z)), ref.predict_proba(Z), atol=1e-6)
    assert gate.n_replicated_ == yr.size
    assert gate.n_outputs_ == 3


def test_classifier_gate_fits_soft_targets_like_softmax_gate():
    """Replication maximises sum_i w_i sum_k R_ik log pi_k: SoftmaxGate's objective."""
    Z, R, w = _soft_problem(K=3)
    gate = ClassifierGate(LogisticRegression(C=1e8, tol=1e-10, max_iter=1000),
                          min_responsibility=0.0)
    gate.fit(Z, R, w)
    ref = SoftmaxGate(alpha=0.0, tol=1e-10).fit(Z, R, w)
    np.testing.assert_allclose(np.exp(gate.log_proba(Z)), ref.predict_proba(Z), atol=1e-4)


def test_classifier_gate_aligns_absent_classes_and_floors():
    Z, R, w = _soft_problem(K=3)
    R = np.column_stack([R[:, 0] + R[:, 2], R[:, 1], np.zeros(len(R))])  # expert 2 empty
    gate = ClassifierGate(DecisionTreeClassifier(max_depth=2), min_proba=1e-8).fit(Z, R, w)
    lp = gate.log_proba(Z)
    assert lp.shape == (len(Z), 3) and lp.flags.c_contiguous
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp[:, 2], np.log(1e-8), atol=1e-6)


def test_classifier_gate_with_a_single_class():
    Z, _, w = _soft_problem(K=3)
    R = np.zeros((len(Z), 3))
    R[:, 1] = 1.0
    gate = ClassifierGate(LogisticRegression()).fit(Z, R, w)
    assert gate.estimator_ is None
    p = np.exp(gate.log_proba(Z))
    np.testing.assert_allclose(p[:, 1], 1.0, atol=1e-9)
    assert gate.n_parameters() == 0


def test_classifier_gate_split_and_drop():
    Z, R, w = _soft_problem(K=3)
    gate = ClassifierGate(LogisticRegression()).fit(Z, R, w)
    before = np.exp(gate.log_proba(Z))
    gate.split_output(1, 2)
    after = np.exp(gate.log_proba(Z))
    assert gate.n_outputs_ == 5 and after.shape == (len(Z), 5)
    np.testing.assert_allclose(after[:, [0, 2]], before[:, [0, 2]], rtol=1e-12)
    for j in (1, 3, 4):
        np.testing.assert_allclose(after[:, j], before[:, 1] / 3, rtol=1e-12)
    gate.drop_output(0)
    dropped = np.exp(gate.log_proba(Z))
    np.testing.assert_allclose(dropped, after[:, 1:] / after[:, 1:].sum(axis=1, keepdims=True))
    # The next M-step refits the classifier on the new outputs.
    gate.fit_soft(Z, softmax(np.log(dropped) + 0.1, axis=1), w)
    assert gate.n_outputs_ == 4 and list(gate.estimator_.classes_) == [0, 1, 2, 3]
    np.testing.assert_array_equal(gate.output_map_, np.arange(4))


@pytest.mark.parametrize(
    "est, expected",
    [
        (LogisticRegression(), lambda e, K, d: (K - 1) * (d + 1)),
        (DecisionTreeClassifier(max_depth=2), lambda e, K, d: e.tree_.n_leaves * (K - 1)),
        (make_pipeline(StandardScaler(), LogisticRegression()), lambda e, K, d: (K - 1) * (d + 1)),
        (HistGradientBoostingClassifier(max_iter=5),
         lambda e, K, d: sum(p.get_n_leaf_nodes() for it in e._predictors for p in it)),
        (RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0),
         lambda e, K, d: sum(t.tree_.n_leaves for t in e.estimators_) * (K - 1)),
        (MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0),
         lambda e, K, d: d * 4 + 4 + 4 * K + K),
    ],
)
def test_classifier_gate_counts_parameters(est, expected):
    Z, R, w = _soft_problem(K=3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP's ConvergenceWarning
        gate = ClassifierGate(est).fit(Z, R, w)
    assert gate.n_parameters() == expected(gate.estimator_[-1] if hasattr(gate.estimator_, "steps") else gate.estimator_, 3, 2)


def test_classifier_gate_warm_starts_linear_models_only():
    Z, R, w = _soft_problem(K=3)
    lin = ClassifierGate(LogisticRegression()).fit(Z, R, w)
    first = lin.estimator_
    lin.fit_soft(Z, R, w)
    assert lin.estimator_ is first and first.warm_start
    hgb = ClassifierGate(HistGradientBoostingClassifier(max_iter=5)).fit(Z, R, w)
    first = hgb.estimator_
    hgb.fit_soft(Z, R, w)
    assert hgb.estimator_ is not first
    never = ClassifierGate(LogisticRegression(), warm_start=False).fit(Z, R, w)
    first = never.estimator_
    never.fit_soft(Z, R, w)
    assert never.estimator_ is not first
    # The template is never fitted nor modified.
    assert not lin.estimator.warm_start and not hasattr(lin.estimator, "coef_")


def test_classifier_gate_takes_sparse_input_and_clones():
    Z, R, w = _soft_problem(K=3)
    gate = ClassifierGate(LogisticRegression())
    dense = clone(gate).fit(Z, R, w).log_proba(Z)
    Zs = sp.csr_matrix(Z)
    sparse = clone(gate).fit(Zs, R, w).log_proba(Zs)
    np.testing.assert_allclose(sparse, dense, atol=1e-6)
    assert ClassifierGate().penalty() == 0.0


def test_classifier_gate_has_no_gradient_solver():
    gate = ClassifierGate(LogisticRegression())
    with pytest.raises(NotImplementedError, match='solver="em"'):
        gate.sgd_parameters()
    with pytest.raises(NotImplementedError, match='solver="em"'):
        gate.sgd_gradient(None, None, None, 1.0)


# -- HierarchicalGate -------------------------------------------------------------------
def _hme(branching=(2, 2), alpha=0.5):
    return HierarchicalGate(branching, node_gate=SoftmaxGate(alpha=alpha))


def test_hierarchical_paths():
    Z, R, w = _soft_problem(K=4)
    gate = _hme().fit(Z, R, w)
    assert gate.paths_ == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert gate.path(2) == (1, 0)
    gate = _hme((3, 2)).fit(*_soft_problem(K=6))
    assert gate.paths_ == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert len(gate.node_gates_) == 4 and gate.n_outputs_ == 6
    assert _hme((4,)).fit(Z, R, w).paths_ == [(0,), (1,), (2,), (3,)]


def test_hierarchical_probabilities_are_products_of_node_softmaxes():
    Z, R, w = _soft_problem(K=4)
    gate = _hme().fit(Z, R, w)
    root, left, right = gate.node_gates_

    def by_hand(g):
        return softmax(Z @ g.coef_.T + g.intercept_, axis=1)

    pr, pl, pq = by_hand(root), by_hand(left), by_hand(right)
    want = np.column_stack(
        [pr[:, 0] * pl[:, 0], pr[:, 0] * pl[:, 1], pr[:, 1] * pq[:, 0], pr[:, 1] * pq[:, 1]]
    )
    p = np.exp(gate.log_proba(Z))
    np.testing.assert_allclose(p, want, rtol=1e-10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_hierarchical_nodes_fit_the_posterior_mass_of_their_subtrees():
    Z, R, w = _soft_problem(K=4)
    gate = _hme().fit(Z, R, w)
    root, left, right = gate.node_gates_

    def ref(targets, weights):
        g = SoftmaxGate(alpha=0.5)
        g.prepare(Z, w)  # the node gates are prepared with the mixture's weights
        return g.fit_soft(Z, np.ascontiguousarray(targets), weights)

    mass = np.column_stack([R[:, :2].sum(axis=1), R[:, 2:].sum(axis=1)])
    for node, want in [
        (root, ref(mass, w)),
        (left, ref(R[:, :2] / mass[:, :1], w * mass[:, 0])),
        (right, ref(R[:, 2:] / mass[:, 1:], w * mass[:, 1])),
    ]:
        np.testing.assert_allclose(node.coef_, want.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(node.intercept_, want.intercept_, rtol=1e-10, atol=1e-12)
    assert gate.penalty() == pytest.approx(root.penalty() + left.penalty() + right.penalty())
    assert gate.n_parameters() == 3 * 3


def test_hierarchical_fit_soft_raises_the_gate_objective():
    Z, R, w = _soft_problem(K=4, seed=2)
    gate = _hme(alpha=0.1)
    gate.prepare(Z, w)
    previous = -np.inf
    rng = np.random.RandomState(0)
    for _ in range(4):  # new targets every time, as EM would give
        R_t = softmax(np.log(R) + 0.3 * rng.normal(size=R.shape), axis=1)
        gate.fit_soft(Z, R_t, w, max_iter=1)
        partial = _objective(gate, Z, R_t, w)
        gate.fit_soft(Z, R_t, w)
        full = _objective(gate, Z, R_t, w)
        assert full >= partial - 1e-8
        previous = full
    assert np.isfinite(previous)


def test_hierarchical_sgd_gradient_matches_finite_differences():
    Z, R, w = _soft_problem(n=40, K=4, seed=3)
    gate = _hme(alpha=0.7).fit(Z, R, w)
    # An empty subtree in the batch: the right node gets no mass.
    Rb = R.copy()
    Rb[:, 2:] = 0.0
    Rb /= Rb.sum(axis=1, keepdims=True)
    total = 3.0 * w.sum()  # the batch is a third of the data

    def f():
        return -np.sum(w[:, None] * Rb * gate.log_proba(Z)) / w.sum() + gate.penalty() / total
    params = gate.sgd_parameters()
    grads = gate.sgd_gradient(Z, Rb, w, total)
    assert len(params) == len(grads) == 6
    eps = 1e-6
    for p, g in zip(params, grads):
        assert g.shape == p.shape
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = f()
            p[idx] = old - eps
            down = f()
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-7)


def test_hierarchical_split_keeps_the_other_probabilities():
    Z, R, w = _soft_problem(K=4)
    gate = _hme().fit(Z, R, w)
    before = np.exp(gate.log_proba(Z))
    gate.split_output(2, 1)
    after = np.exp(gate.log_proba(Z))
    assert gate.n_outputs_ == 5
    assert gate.paths_[4] == (1, 2)
    np.testing.assert_allclose(after[:, [0, 1, 3]], before[:, [0, 1, 3]], rtol=1e-10)
    np.testing.assert_allclose(after[:, 2], before[:, 2] / 2, rtol=1e-10)
    np.testing.assert_allclose(after[:, 4], before[:, 2] / 2, rtol=1e-10)
    # The next M-step fits 5 outputs.
    gate.fit_soft(Z, softmax(np.log(after) + 0.1, axis=1), w)


def test_hierarchical_drop_gives_the_mass_to_the_siblings():
    Z, R, w = _soft_problem(K=4)
    gate = _hme().fit(Z, R, w)
    before = np.exp(gate.log_proba(Z))
    gate.drop_output(1)
    after = np.exp(gate.log_proba(Z))
    assert gate.n_outputs_ == 3 and gate.paths_ == [(0, 0), (1, 0), (1, 1)]
    np.testing.assert_allclose(after[:, 0], before[:, 0] + before[:, 1], rtol=1e-10)
    np.testing.assert_allclose(after[:, 1:], before[:, 2:], rtol=1e-10)
    assert gate.n_parameters() == 2 * 3  # the left node has one child: no gate
    # Splitting the lone child: its node's gate (one output) shares it in two.
    import copy

    grown = copy.deepcopy(gate)
    grown.split_output(0, 1)
    p = np.exp(grown.log_proba(Z))
    assert grown.paths_ == [(0, 0), (1, 0), (1, 1), (0, 1)]
    np.testing.assert_allclose(p[:, [0, 3]], after[:, [0, 0]] / 2, rtol=1e-10)
    np.testing.assert_allclose(p[:, 1:3], after[:, 1:], rtol=1e-10)
    # Dropping the lone child's leaf removes its node too.
    gate.drop_output(0)
    assert gate.paths_ == [(0, 0), (0, 1)]
    np.testing.assert_allclose(np.exp(gate.log_proba(Z)), after[:, 1:] / after[:, 1:].sum(
        axis=1, keepdims=True), rtol=1e-10)
    # A new M-step still works.
    gate.fit_soft(Z, softmax(np.log(R[:, :2]), axis=1), w)
    np.testing.assert_allclose(np.exp(gate.log_proba(Z)).sum(axis=1), 1.0)


def test_hierarchical_gate_survives_deepcopy_and_clone():
    import copy

    Z, R, w = _soft_problem(K=4)
    gate = _hme().fit(Z, R, w)
    twin = copy.deepcopy(gate)
    twin.fit_soft(Z, R, w)
    np.testing.assert_allclose(twin.log_proba(Z), gate.log_proba(Z), rtol=1e-6, atol=1e-8)
    fresh = clone(gate)
    assert not hasattr(fresh, "tree_")
    np.testing.assert_allclose(fresh.fit(Z, R, w).log_proba(Z), gate.log_proba(Z), rtol=1e-10)


def test_hierarchical_checks_the_number_of_experts():
    Z, R, w = _soft_problem(K=3)
    with pytest.raises(ValueError, match="has 4 leaves but the mixture has 3 experts"):
        _hme().fit(Z, R, w)
    with pytest.raises(ValueError, match="branching"):
        _hme((2, 1)).fit(*_soft_problem(K=2))


def test_hierarchical_with_classifier_gates_at_the_nodes():
    Z, R, w = _soft_problem(K=4)
    gate = HierarchicalGate((2, 2), node_gate=ClassifierGate(LogisticRegression())).fit(Z, R, w)
    p = np.exp(gate.log_proba(Z))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert gate.n_parameters() == 3 * 3
