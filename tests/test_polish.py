"""The polish of logistic experts under a softmax gate (skmoe/_polish.py)."""

import copy
import dataclasses
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

from skmoe import MixtureOfExpertsClassifier, SoftmaxGate
from skmoe import _polish, _pool
from skmoe._em import EMConfig, EMData, EMState, run_em
from skmoe._gating import prepare_gate
from skmoe._likelihood import CategoricalLikelihood


def _data(n_classes, seed=0, n=240):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    W = rng.randn(3, n_classes) * 2
    logits = np.where(X[:, :1] > 0, X @ W, -(X @ W))
    p = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    y = np.array([rng.choice(n_classes, p=row) for row in p])
    return X, y


def _em_state(X, y, experts, alpha=10.0, n_iter=3, seed=0, gate_on_X=False):
    """Data and a state after a few EM iterations from a random start
    (the gate on the first two columns, or on ``X`` itself: the same
    array as the experts')."""
    rng = np.random.RandomState(seed)
    w = np.ones(len(y))
    w[::7] = 2.5  # weights enter the objective
    lik = CategoricalLikelihood()
    y_checked, _ = lik.validate_targets(y, w)
    data = EMData(X, y_checked, w, X if gate_on_X else X[:, :2].copy(), lik)
    gate = prepare_gate(SoftmaxGate(alpha=alpha), data.Z, w, len(experts))
    state = EMState(experts, gate)
    resp = rng.dirichlet(np.ones(len(experts)), size=len(y))
    config = EMConfig(max_iter=n_iter, tol=-np.inf)
    run = run_em(data, state, config, rng, [resp])
    return data, run.state, config


def _independent_objective(data, state):
    """F from the fitted gate's and experts' public predict_proba."""
    pi = state.gate.predict_proba(data.Z)
    classes = data.likelihood.classes_
    idx = np.searchsorted(classes, data.y)
    p = np.column_stack([e.predict_proba(data.X)[np.arange(len(idx)), idx] for e in state.experts])
    log_lik = data.sample_weight @ np.log(np.sum(pi * p, axis=1))
    mean, scale = state.gate._standardization
    W_s = state.gate.coef_.T * scale[:, None]
    penalty = 0.5 * state.gate.alpha * np.sum(W_s**2)
    penalty += sum(0.5 / e.C * np.sum(e.coef_**2) for e in state.experts)
    return (log_lik - penalty) / data.sample_weight.sum()


@pytest.mark.parametrize("gate_on_X", [False, True])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_objective_and_gradient(n_classes, gate_on_X):
    X, y = _data(n_classes)
    experts = [LogisticRegression(C=0.5), LogisticRegression(C=2.0, fit_intercept=False)]
    data, state, config = _em_state(X, y, experts, gate_on_X=gate_on_X)
    assert _polish.applicable(data, state, config)
    problem = _polish._Problem(data, state)
    # The gate on the experts' array takes the one compiled call.
    assert problem.shared == gate_on_X
    x = problem.pack(state)
    f, g = problem.objective(x)
    np.testing.assert_allclose(-f, _independent_objective(data, state), rtol=1e-10)
    # Central differences along every parameter that moves.
    free = problem.free.astype(bool)
    h = 1e-6
    for j in np.flatnonzero(free):
        e = np.zeros_like(x)
        e[j] = h
        numeric = (problem.objective(x + e)[0] - problem.objective(x - e)[0]) / (2 * h)
        assert abs(numeric - g[j]) <= 1e-6 * (1 + abs(g[j]))
    assert np.all(g[~free] == 0)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_polish_reaches_an_em_fixed_point(n_classes):
    X, y = _data(n_classes, seed=1)
    data, state, config = _em_state(X, y, [LogisticRegression(), LogisticRegression()])
    before = _independent_objective(data, state)
    objective, usage = _polish.polish(data, state)
    assert objective > before
    np.testing.assert_allclose(objective, _independent_objective(data, state), rtol=1e-10)
    np.testing.assert_allclose(usage.sum(), 1.0)
    # EM from the polished state: converged at once, and it cannot climb
    # further (its exact M-steps increase F).
    confirm = run_em(data, state, dataclasses.replace(config, max_iter=20, tol=1e-6),
                     np.random.RandomState(0))
    assert confirm.converged and confirm.n_iter <= 3
    assert _independent_objective(data, state) == pytest.approx(objective, abs=1e-7)


def test_em_only_creeps_where_the_polish_arrives():
    X, y = _data(2, seed=2)
    data, state, config = _em_state(X, y, [LogisticRegression(), LogisticRegression()])
    em_state = copy.deepcopy(state)
    run_em(data, em_state, dataclasses.replace(config, max_iter=30), np.random.RandomState(0))
    objective, _ = _polish.polish(data, state)
    assert objective >= _independent_objective(data, em_state) - 1e-9


def test_not_applicable():
    X, y = _data(2)
    data, state, config = _em_state(X, y, [LogisticRegression(), LogisticRegression()])
    assert not _polish.applicable(data, state, dataclasses.replace(config, assignment="hard"))
    assert not _polish.applicable(data, state, dataclasses.replace(config, top_k=1))
    gate = SoftmaxGate(alpha=1.0, balance=0.1)
    assert not _polish.eligible([LogisticRegression()] * 2, gate, data, config)
    assert not _polish.eligible([LogisticRegression(C=np.inf)] * 2, SoftmaxGate(), data, config)
    assert _polish.eligible([LogisticRegression()] * 2, SoftmaxGate(), data, config)


def test_default_classifier_ends_at_a_stationary_point():
    X, y = _data(2, seed=3, n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence or collapse warning
        moe = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    assert moe.converged_ and moe.n_iter_ <= 5
    assert _pool.MIN_STARTS <= moe.init_objectives_.size <= 21
    lik = CategoricalLikelihood()
    y_checked, _ = lik.validate_targets(y, np.ones(len(y)))
    data = EMData(X, y_checked, np.ones(len(y)), X, lik)
    problem = _polish._Problem(data, EMState(moe.experts_, moe.gate_))
    _, g = problem.objective(problem.pack(EMState(moe.experts_, moe.gate_)))
    assert np.max(np.abs(g)) < 1e-4
    # The kept optimum is the best objective the pool reached.
    f = -problem.objective(problem.pack(EMState(moe.experts_, moe.gate_)))[0]
    assert f >= moe.init_objectives_.max() - 1e-6


def _one_logistic_model(n=300, seed=0):
    """Data from a single logistic model: three experts are more than the
    penalised likelihood wants (one collapses at the best optimum)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    p = 1.0 / (1.0 + np.exp(-(X @ [1.5, -1.0, 0.5])))
    return X, (rng.uniform(size=n) < p).astype(int)


def _fitted_objective(moe, X, y):
    lik = CategoricalLikelihood()
    y_checked, _ = lik.validate_targets(y, np.ones(len(y)))
    data = EMData(X, y_checked, np.ones(len(y)), X, lik)
    return _independent_objective(data, EMState(moe.experts_, moe.gate_))


def test_pool_keeps_its_best_optimum_when_an_expert_collapses_there():
    X, y = _one_logistic_model()
    # The usage warning (or, at a share below 1e-10, the empty-expert one).
    with pytest.warns(UserWarning, match="holds only|owned no training weight"):
        moe = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(X, y)
    # No re-seeding and no EM creeping after it: the pool's starts were the
    # re-seedings, and they ended lower.
    assert moe.repairs_ == [] and moe.converged_ and moe.n_iter_ <= 2
    assert np.sum(moe.expert_usage_ < moe.min_expert_weight) == 1
    f = _fitted_objective(moe, X, y)
    assert f >= moe.init_objectives_.max() - 1e-6
    # A mixture whose gate shuts all experts but one is a single
    # LogisticRegression (same penalty): the best optimum is at least its.
    lr = LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, y)
    p = lr.predict_proba(X)[np.arange(len(y)), y]
    f_lr = (np.sum(np.log(p)) - 0.5 * np.sum(lr.coef_**2)) / len(y)
    assert f >= f_lr - 1e-6


def test_pool_drops_a_collapsed_expert_under_on_collapse_drop():
    X, y = _one_logistic_model()
    with pytest.warns(UserWarning, match="dropped"):
        moe = MixtureOfExpertsClassifier(
            n_experts=3, random_state=0, on_collapse="drop"
        ).fit(X, y)
    assert moe.n_experts_ == 2
    assert [r["action"] for r in moe.repairs_] == ["drop"]
    assert np.all(moe.expert_usage_ >= moe.min_expert_weight)
