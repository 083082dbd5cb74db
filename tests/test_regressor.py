"""MixtureOfExpertsRegressor: what the model recovers and how it behaves."""

import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.ensemble import BaggingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDRegressor
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

import naive
from conftest import make_piecewise
from skmoe import MixtureOfExpertsRegressor, SoftmaxGate, StandardizedRidge
from skmoe._init import initial_responsibilities
from skmoe._likelihood import GaussianLikelihood


def test_recovers_three_linear_pieces():
    X, y = make_piecewise(n=1500)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    single = LinearRegression().fit(Xtr, ytr).score(Xte, yte)
    # The pieces jump by 2.5 at x=1: a sharp boundary needs a weak gate penalty.
    # Unpenalised experts: their slopes are the truth's.
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=3, gate=SoftmaxGate(alpha=0.01), random_state=0
    ).fit(Xtr, ytr)
    assert single < 0.8
    assert moe.score(Xte, yte) >= 0.98
    assert_allclose(np.sqrt(moe.noise_variance_), 0.3, rtol=0.1)
    slopes = sorted(e.coef_[0] for e in moe.experts_)
    assert_allclose(slopes, [-2.0, -1.5, 3.0], atol=0.1)
    # The default penalty (alpha=1) blurs that boundary a little.
    default = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(Xtr, ytr)
    assert default.score(Xte, yte) >= 0.95


def test_one_expert_is_the_bare_expert():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(LinearRegression(), n_experts=1).fit(X, y)
    lr = LinearRegression().fit(X, y)
    assert_allclose(moe.predict(X), lr.predict(X), rtol=1e-10)
    assert_allclose(moe.noise_variance_[0], np.mean((y - lr.predict(X)) ** 2))
    assert_allclose(moe.predict_gate(X), 1.0)


def test_em_iteration_matches_numpy_reference():
    # One M-step + E-step from given responsibilities, against naive.em_iteration
    # (weighted lstsq experts, BFGS gate on [X, 1]) with an unpenalised gate.
    X, y = make_piecewise(n=200)
    resp = naive.softmax_rows(np.column_stack([X[:, 0], -X[:, 0]]))
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=2, init=resp, max_iter=1,
        gate=SoftmaxGate(alpha=0.0, tol=1e-10),
        gate_max_iter=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, y)
    ref = naive.em_iteration(X, y, resp, np.zeros((3, 2)), alpha=0.0)
    assert_allclose(moe.log_likelihood_, ref, rtol=1e-6)


def test_log_likelihood_never_decreases():
    # sklearn's test_monotonic_likelihood for GaussianMixture, for exact M-steps.
    X, y = make_piecewise(n=400, noise=1.0)
    moe = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=3, warm_start=True, max_iter=1, init="random",
        random_state=0,
        gate=SoftmaxGate(tol=1e-10),
    )
    previous = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(60):
            moe.fit(X, y)
            current = moe.log_likelihood_history_[-1]
            assert current >= previous - 1e-9
            previous = current
    history = MixtureOfExpertsRegressor(
        LinearRegression(), n_experts=3, init="random", random_state=0
    ).fit(X, y)
    assert np.all(np.diff(history.log_likelihood_history_) >= -1e-9)


def test_objective_includes_gate_penalty():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    penalty = moe.gate_.penalty() / len(y)
    assert penalty > 0
    assert_allclose(moe.log_likelihood_history_[-1], moe.log_likelihood_ - penalty)
    assert_allclose(moe.log_likelihood_, moe.log_prob(X, y).mean())


def test_predict_std_is_the_mixture_standard_deviation():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    mean, std = moe.predict(X[:20], return_std=True)
    gate, pred = moe.predict_gate(X[:20]), moe.predict_experts(X[:20])
    second = np.sum(gate * (moe.noise_variance_ + pred**2), axis=1)
    assert_allclose(mean, np.sum(gate * pred, axis=1))
    assert_allclose(std, np.sqrt(second - mean**2), rtol=1e-8)
    assert_allclose(moe.predict(X[:20]), mean)


def test_responsibilities_and_log_prob_are_consistent():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    resp = moe.responsibilities(X, y)
    assert_allclose(resp.sum(axis=1), 1.0)
    gate, pred = moe.predict_gate(X), moe.predict_experts(X)
    dens = gate * np.exp(naive.gaussian_log_lik(y, pred, moe.noise_variance_))
    assert_allclose(moe.log_prob(X, y), np.log(dens.sum(axis=1)), rtol=1e-10)
    assert_allclose(resp, dens / dens.sum(axis=1, keepdims=True), atol=1e-12)
    assert_array_equal(moe.predict_expert(X), gate.argmax(axis=1))


def test_information_criteria():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    # gate: (2 features + 1) * (3 - 1); experts: 3 coefficients each; 3 variances
    assert moe._n_parameters() == 6 + 9 + 3
    ll = moe.log_prob(X, y).sum()
    assert_allclose(moe.aic(X, y), -2 * ll + 2 * 18)
    assert_allclose(moe.bic(X, y), -2 * ll + 18 * np.log(len(y)))
    assert moe.icl(X, y) >= moe.bic(X, y)
    bics = [
        MixtureOfExpertsRegressor(n_experts=k, n_init=2, random_state=0).fit(X, y).bic(X, y)
        for k in (1, 2, 3)
    ]
    assert np.argmin(bics) == 2


def test_parameter_count_of_trees_and_neighbours():
    X, y = make_piecewise(n=200)
    tree = MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=2), n_experts=2, random_state=0
    ).fit(X, y)
    leaves = sum(e.tree_.n_leaves for e in tree.experts_)
    assert tree._n_parameters() == 3 * 1 + leaves + 2
    knn = MixtureOfExpertsRegressor(KNeighborsRegressor(10), n_experts=2, random_state=0).fit(X, y)
    assert knn._n_parameters() == 3 + sum(int(np.ceil(e.n_samples_fit_ / 10)) for e in knn.experts_) + 2


def test_sample_weight_equals_repetition():
    X, y = make_piecewise(n=100)
    sw = np.random.RandomState(0).randint(0, 3, size=100)
    # The deterministic start (init="auto" draws random partitions of the rows:
    # a repeated row is two rows there).
    a = MixtureOfExpertsRegressor(n_experts=3, init="kmeans", random_state=0).fit(
        X, y, sample_weight=sw
    )
    b = MixtureOfExpertsRegressor(n_experts=3, init="kmeans", random_state=0).fit(
        np.repeat(X, sw, axis=0), np.repeat(y, sw)
    )
    assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-8)


def test_random_state_makes_fits_reproducible_and_restarts_differ():
    X, y = make_piecewise(noise=1.0)
    a = MixtureOfExpertsRegressor(n_experts=3, init="random", random_state=3).fit(X, y)
    b = MixtureOfExpertsRegressor(n_experts=3, init="random", random_state=3).fit(X, y)
    assert_array_equal(a.predict(X), b.predict(X))
    lls = {
        round(MixtureOfExpertsRegressor(n_experts=4, init="random", random_state=s).fit(X, y).log_likelihood_, 6)
        for s in range(6)
    }
    assert len(lls) > 1
    best = MixtureOfExpertsRegressor(n_experts=4, init="random", n_init=6, random_state=0).fit(X, y)
    singles = [
        MixtureOfExpertsRegressor(n_experts=4, init="random", random_state=s).fit(X, y)
        for s in range(3)
    ]
    assert best.log_likelihood_history_[-1] >= max(s.log_likelihood_history_[-1] for s in singles) - 0.05


def test_kmeans_restarts_differ():
    X, y = make_piecewise(noise=1.0)
    moe = MixtureOfExpertsRegressor(n_experts=5, random_state=0)
    def _initial_responsibilities(X, y, sw, n_experts, rng, i_init):
        return initial_responsibilities(moe.init, GaussianLikelihood(), X, y, sw, n_experts, rng, i_init)

    starts = [_initial_responsibilities(X, y, np.ones(len(y)), 5, np.random.RandomState(s), 1) for s in range(4)]
    assert len({s.argmax(axis=1).tobytes() for s in starts}) == 4
    first = [_initial_responsibilities(X, y, np.ones(len(y)), 5, np.random.RandomState(s), 0) for s in range(2)]
    assert_array_equal(first[0], first[1])  # the first start is deterministic


def test_init_array_is_used():
    X, y = make_piecewise()
    resp = np.column_stack([X[:, 0] < -1, (X[:, 0] >= -1) & (X[:, 0] < 1), X[:, 0] >= 1]).astype(float)
    moe = MixtureOfExpertsRegressor(
        n_experts=3, init=resp, max_iter=200, gate=SoftmaxGate(alpha=0.01)
    ).fit(X, y)
    assert moe.score(X, y) > 0.98
    with pytest.raises(ValueError, match=r"init as an array must have shape"):
        MixtureOfExpertsRegressor(n_experts=2, init=resp).fit(X, y)


@pytest.mark.parametrize("assignment", ["hard", "stochastic"])
def test_hard_and_stochastic_assignments(assignment):
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(n_experts=3, assignment=assignment, random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, y)
    assert moe.score(X, y) > 0.95


def test_experts_without_sample_weight_use_hard_assignments():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(KNeighborsRegressor(15), n_experts=3, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(X, y)
    owned = np.bincount(moe.responsibilities(X, y).argmax(axis=1), minlength=3)
    # each expert was fit on the rows it owns, not on all of them
    assert sum(e.n_samples_fit_ for e in moe.experts_) == len(y)
    assert moe.score(X, y) > 0.95
    assert owned.min() > 0
    with pytest.raises(ValueError, match=r"Expert 0 \(KNeighborsRegressor\) does not accept sample_weight"):
        moe.fit(X, y, sample_weight=np.arange(len(y)) % 3 + 1.0)


def test_pipeline_experts_receive_sample_weight():
    X, y = make_piecewise(n=100)
    sw = np.random.RandomState(1).randint(0, 3, size=100)
    pipe = make_pipeline(StandardScaler(), Ridge(alpha=1e-3))
    a = MixtureOfExpertsRegressor(pipe, n_experts=2, random_state=0).fit(X, y, sample_weight=sw)
    b = MixtureOfExpertsRegressor(pipe, n_experts=2, random_state=0).fit(np.repeat(X, sw, axis=0), np.repeat(y, sw))
    assert_allclose(a.predict(X), b.predict(X), rtol=1e-6)


def test_heterogeneous_experts():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor([LinearRegression(), DecisionTreeRegressor(max_depth=3), Ridge()], random_state=0).fit(X, y)
    assert moe.n_experts_ == 3
    assert [type(e) for e in moe.experts_] == [LinearRegression, DecisionTreeRegressor, Ridge]


def test_n_jobs_gives_the_serial_result():
    X, y = make_piecewise()
    a = MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=4), n_experts=3, random_state=0, max_iter=10)
    b = clone(a).set_params(n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y)
        b.fit(X, y)
    assert_array_equal(a.predict(X), b.predict(X))


def test_warm_start_continues_from_the_fitted_state():
    X, y = make_piecewise(noise=1.0)
    full = MixtureOfExpertsRegressor(n_experts=3, init="random", max_iter=12, tol=0, random_state=0)
    part = clone(full).set_params(max_iter=5, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full.fit(X, y)
        part.fit(X, y)
        part.set_params(max_iter=7).fit(X, y)
    assert_allclose(part.log_likelihood_, full.log_likelihood_, rtol=1e-9)


def test_convergence_warning_and_verbose(capsys):
    X, y = make_piecewise()
    with pytest.warns(ConvergenceWarning, match="EM did not converge in max_iter=2"):
        MixtureOfExpertsRegressor(
            n_experts=3, max_iter=2, tol=0, verbose=2, init="kmeans"
        ).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # two iterations and the restart summary
    assert re.match(r"Iteration +1: log-likelihood -?\d+\.\d+, objective .*, change .*, \d+\.\d+s", lines[0])


def test_sklearn_tooling(piecewise):
    X, y = piecewise
    pipe = make_pipeline(StandardScaler(), MixtureOfExpertsRegressor(n_experts=3, random_state=0))
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9
    grid = GridSearchCV(
        MixtureOfExpertsRegressor(Ridge(), gate=SoftmaxGate(), random_state=0),
        {"n_experts": [1, 3], "experts__alpha": [0.1, 10.0], "gate__alpha": [0.1, 1.0]},
        cv=3,
    ).fit(X, y)
    assert grid.best_params_["n_experts"] == 3
    assert grid.best_estimator_.gate_.alpha == grid.best_params_["gate__alpha"]


def test_pickle_and_joblib_round_trip(tmp_path, piecewise):
    X, y = piecewise
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(moe))
    assert_array_equal(again.predict(X, return_std=True)[1], moe.predict(X, return_std=True)[1])
    joblib.dump(moe, tmp_path / "moe.joblib")
    assert_array_equal(joblib.load(tmp_path / "moe.joblib").predict(X), moe.predict(X))


def test_pandas_feature_names_and_gate_features_by_name(piecewise):
    pd = pytest.importorskip("pandas")
    X, y = piecewise
    df = pd.DataFrame(X, columns=["x", "noise"])
    moe = MixtureOfExpertsRegressor(n_experts=3, gate_features=["x"], random_state=0).fit(df, y)
    assert list(moe.feature_names_in_) == ["x", "noise"]
    assert_array_equal(moe.gate_features_, [0])
    assert moe.gate_.coef_.shape == (3, 1)
    by_index = MixtureOfExpertsRegressor(n_experts=3, gate_features=[0], random_state=0).fit(X, y)
    assert_allclose(moe.predict(df), by_index.predict(X))
    with pytest.raises(ValueError, match=r"gate_features names columns not in X: \['z'\]"):
        clone(moe).set_params(gate_features=["z"]).fit(df, y)
    with pytest.raises(ValueError, match="no feature names"):
        clone(moe).fit(X, y)


def test_degenerate_data_stays_finite():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 2))
    for y in [np.full(50, 3.0), X[:, 0] * 2.0]:  # constant y, exact linear fit
        moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
        mean, std = moe.predict(X, return_std=True)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
        assert np.all(np.isfinite(moe.log_prob(X, y)))
        assert np.all(moe.noise_variance_ >= moe.reg_variance)
    Xd = np.repeat(X[:5], 10, axis=0)  # duplicated rows
    moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(Xd, Xd[:, 0])
    assert np.all(np.isfinite(moe.predict(Xd)))


def test_collapsed_expert_warns_and_stays_finite():
    X, y = make_piecewise(n=60)
    resp = np.zeros((60, 3))
    resp[:, 0] = 1.0  # expert 2 and 3 start with nothing
    resp[:, 1] = 0.0
    with pytest.warns(UserWarning, match=r"Expert 1 \(LinearRegression\) owned no training weight"):
        moe = MixtureOfExpertsRegressor(
            LinearRegression(), n_experts=3, init=resp, max_iter=5, min_expert_weight=0
        ).fit(X, y)
    assert np.all(np.isfinite(moe.predict(X, return_std=True)[1]))


@pytest.mark.parametrize(
    "params, msg",
    [
        (dict(n_experts=0), "The 'n_experts' parameter"),
        (dict(experts=[LinearRegression(), Ridge()], n_experts=3), "n_experts=3 disagrees with the 2 estimators"),
        (dict(experts=LogisticRegression()), r"experts is a classifier \(LogisticRegression\)"),
        (dict(experts=[LinearRegression(), LogisticRegression()]), r"experts\[1\] is a classifier"),
        (dict(experts=[]), "non-empty list"),
        (dict(gate=Ridge()), "The 'gate' parameter"),
        (dict(assignment="fuzzy"), "The 'assignment' parameter"),
        (dict(gate_features=[5]), r"gate_features indices must lie in \[0, 2\)"),
    ],
)
def test_bad_parameters_are_named(params, msg):
    X, y = make_piecewise(n=50)
    moe = MixtureOfExpertsRegressor(**params)
    with pytest.raises((ValueError, TypeError), match=msg):
        moe.fit(X, y)
    assert not hasattr(moe, "n_features_in_")  # nothing half-fitted is left


@pytest.mark.parametrize(
    "X, y, msg",
    [
        (np.array([[np.nan], [1.0], [2.0]]), np.ones(3), "Input X contains NaN"),
        (np.array([[0.0], [1.0], [2.0]]), np.array([1.0, np.inf, 2.0]), "Input y contains infinity"),
        (np.zeros((3, 1)), np.zeros(4), "inconsistent numbers of samples"),
        # A 2-D y is several outputs (tests/test_multioutput.py); a row
        # without any label is refused.
        (
            np.zeros((3, 1)), np.array([[1.0, np.nan], [np.nan, np.nan], [2.0, 1.0]]),
            "no observed output",
        ),
        (np.arange(3.0)[:, None], np.arange(3.0), "Expected n_samples >= n_experts, got n_samples=3"),
    ],
)
def test_bad_data_is_rejected(X, y, msg):
    with pytest.raises(ValueError, match=msg):
        MixtureOfExpertsRegressor(n_experts=4).fit(X, y)


def test_failed_refit_leaves_fitted_model_untouched():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0, warm_start=True).fit(X, y)
    before = moe.predict(X)
    state = dict(moe.__dict__)
    with pytest.raises(ValueError):
        moe.fit(X[:, :1], np.full(len(y), np.nan))
    assert moe.__dict__.keys() == state.keys()
    assert_array_equal(moe.predict(X), before)


def test_pipeline_experts_with_metadata_routing():
    import sklearn

    X, y = make_piecewise(n=100)
    sw = np.random.RandomState(1).randint(0, 3, size=100)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=True),
            Ridge(alpha=1e-3).set_fit_request(sample_weight=True),
        )
        a = MixtureOfExpertsRegressor(pipe, n_experts=2, random_state=0).fit(X, y, sample_weight=sw)
        b = MixtureOfExpertsRegressor(pipe, n_experts=2, random_state=0).fit(
            np.repeat(X, sw, axis=0), np.repeat(y, sw)
        )
        assert_allclose(a.predict(X), b.predict(X), rtol=1e-6)


def test_variance_floor_is_relative_to_y():
    X, y = make_piecewise()
    fits = [
        MixtureOfExpertsRegressor(n_experts=3, gate=SoftmaxGate(alpha=0.01), random_state=0).fit(X, y * scale)
        for scale in (1.0, 1e-8, 1e8)
    ]
    for scale, moe in zip((1.0, 1e-8, 1e8), fits):
        assert_allclose(np.sqrt(moe.noise_variance_) / scale, np.sqrt(fits[0].noise_variance_), rtol=1e-4)
        assert_allclose(moe.score(X, y * scale), fits[0].score(X, y), rtol=1e-6)


def test_warm_start_uses_the_current_parameters():
    X, y = make_piecewise()
    moe = MixtureOfExpertsRegressor(Ridge(alpha=1.0), gate=SoftmaxGate(alpha=1.0), warm_start=True, random_state=0)
    moe.fit(X, y)
    moe.set_params(experts__alpha=1e3, gate__alpha=5.0).fit(X, y)
    assert {e.alpha for e in moe.experts_} == {1e3}
    assert moe.gate_.alpha == 5.0


def test_nested_parameters_of_default_estimators_set_the_default_first():
    moe = MixtureOfExpertsRegressor().set_params(gate__alpha=0.1)
    assert isinstance(moe.gate, SoftmaxGate) and moe.gate.alpha == 0.1
    moe = MixtureOfExpertsRegressor().set_params(experts__fit_intercept=False)
    assert isinstance(moe.experts, StandardizedRidge) and not moe.experts.fit_intercept
    # The default expert of the solver being set.
    moe = MixtureOfExpertsRegressor().set_params(solver="gd", experts__alpha=1e-3)
    assert isinstance(moe.experts, SGDRegressor) and moe.experts.alpha == 1e-3
    # The default StandardizedRidge has an alpha; an unknown parameter gets
    # scikit-learn's own error, naming the default expert.
    moe = MixtureOfExpertsRegressor().set_params(experts__alpha=0.1)
    assert isinstance(moe.experts, StandardizedRidge) and moe.experts.alpha == 0.1
    with pytest.raises(ValueError, match=r"Invalid parameter 'l1_ratio' for estimator StandardizedRidge"):
        MixtureOfExpertsRegressor().set_params(experts__l1_ratio=0.1)
    moe = MixtureOfExpertsRegressor().set_params(gate=SoftmaxGate(), gate__alpha=0.1)
    assert moe.gate.alpha == 0.1


def test_neighbour_experts_with_too_few_rows_collapse_with_a_warning():
    X, y = make_piecewise(n=200)
    moe = MixtureOfExpertsRegressor(KNeighborsRegressor(15), n_experts=6, random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="too few rows"):
            moe.fit(X, y)
    assert np.all(np.isfinite(moe.predict(X)))


def test_tiny_non_uniform_weights_are_not_silently_dropped():
    X, y = make_piecewise(n=60)
    sw = np.where(np.arange(60) % 2, 1e-9, 3e-9)
    with pytest.raises(ValueError, match="does not accept sample_weight"):
        MixtureOfExpertsRegressor(KNeighborsRegressor(5)).fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_fit_never_modifies_the_callers_data(init):
    # The k-means start scales and centres its working copy in place; the
    # user's X (which the classifier uses directly as that copy's source)
    # and y must come back bit for bit.
    from skmoe import MixtureOfExpertsClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3)) * [1.0, 50.0, 0.01] + [0.0, 100.0, 5.0]
    y = X[:, 0] + 0.01 * X[:, 1]
    labels = (y > np.median(y)).astype(int)
    X0, y0 = X.copy(), y.copy()
    MixtureOfExpertsRegressor(n_experts=2, init=init, random_state=0).fit(X, y)
    MixtureOfExpertsClassifier(n_experts=2, init=init, random_state=0).fit(X, labels)
    assert_array_equal(X, X0)
    assert_array_equal(y, y0)


@pytest.mark.parametrize("expert", [RandomForestRegressor(n_estimators=3), BaggingRegressor(n_estimators=3)])
def test_parameters_of_a_mixture_of_ensemble_experts(expert):
    # An ensemble is iterable; it must not be taken for a list of named experts.
    moe = MixtureOfExpertsRegressor(expert, n_experts=2)
    moe.set_params(init="random", experts__n_estimators=4)
    assert moe.get_params()["experts__n_estimators"] == 4
    assert clone(moe).get_params()["init"] == "random"
