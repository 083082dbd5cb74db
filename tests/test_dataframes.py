"""DataFrames, named experts, tunable defaults, progress lines and warnings (issue 16)."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import estimator_html_repr
from threadpoolctl import threadpool_limits

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, SoftmaxGate
from skmoe import _gather

pd = pytest.importorskip("pandas")

#: What the recording experts saw: ("fit" or "predict", X, sample_weight).
SEEN = []


class RecordingRegressor(RegressorMixin, BaseEstimator):
    """Records its input; a least-squares line on column ``x``."""

    def fit(self, X, y, sample_weight=None):
        SEEN.append(("fit", X, sample_weight))
        self.line_ = LinearRegression().fit(
            np.asarray(X["x"], dtype=float)[:, None], y, sample_weight=sample_weight
        )
        return self

    def predict(self, X):
        SEEN.append(("predict", X, None))
        return self.line_.predict(np.asarray(X["x"], dtype=float)[:, None])


class RecordingRegressorNoWeights(RecordingRegressor):
    """The same without ``sample_weight``: fit on the rows it owns."""

    def fit(self, X, y):
        return super().fit(X, y)


def mixed_frame(n=300, seed=0):
    """Numeric, integer, categorical and string columns; two regimes by ``c``."""
    rng = np.random.RandomState(seed)
    x = rng.uniform(-2, 2, n)
    c = rng.choice(["a", "b", "c"], n)
    frame = pd.DataFrame({
        "x": x,
        "n": rng.randint(0, 10, n),
        "c": pd.Categorical(c, categories=["a", "b", "c"]),
        "s": rng.choice(["u", "v"], n).astype(object),
    }, index=np.arange(n)[::-1] * 10)  # an index that is not 0..n-1
    y = np.where(c == "a", 2.0 * x, -x + 1.0) + 0.05 * rng.randn(n)
    return frame, y


@pytest.fixture
def seen():
    SEEN.clear()
    yield SEEN
    SEEN.clear()


def _check_frames(records, frame, ordered=True):
    assert records
    for _, X, _ in records:
        assert isinstance(X, pd.DataFrame)
        assert list(X.columns) == list(frame.columns)
        assert (X.dtypes == frame.dtypes).all()
        assert X["c"].cat.categories.tolist() == ["a", "b", "c"]
        # A row subset keeps the frame's order of rows (and their index).
        positions = frame.index.get_indexer(X.index)
        assert (positions >= 0).all()
        assert not ordered or np.all(np.diff(positions) > 0)


@pytest.mark.parametrize("top_k", [None, 1])
def test_experts_receive_the_dataframe_unchanged(seen, top_k):
    frame, y = mixed_frame()
    moe = MixtureOfExpertsRegressor(
        RecordingRegressor(), n_experts=2, gate_features=["x", "n"], max_iter=5,
        top_k=top_k, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(frame, y)
    _check_frames([r for r in seen if r[0] == "fit"], frame)
    assert list(moe.feature_names_in_) == ["x", "n", "c", "s"]
    assert_array_equal(moe.gate_features_, [0, 1])
    seen.clear()
    for method in (moe.predict, moe.predict_gate, moe.predict_expert, moe.route):
        method(frame)
    moe.log_prob(frame, y)
    moe.responsibilities(frame, y)
    _check_frames(seen, frame)
    assert moe.predict(frame.iloc[:7]).shape == (7,)


def test_sample_weights_and_row_subsets_with_a_dataframe(seen):
    frame, y = mixed_frame()
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MixtureOfExpertsRegressor(
            RecordingRegressor(), n_experts=2, gate_features=["x"], max_iter=3,
            random_state=0,
        ).fit(frame, y, sample_weight=sw)
    fits = [r for r in seen if r[0] == "fit"]
    _check_frames(fits, frame)
    # Weighted experts get the rows with weight and sample_weight * posterior.
    for _, X, w in fits:
        rows = frame.index.get_indexer(X.index)
        assert w is not None and np.all(w <= sw[rows] + 1e-12)
    seen.clear()
    # An expert without sample_weight is fit on the rows it owns: proper,
    # ordered subsets of the frame that together cover it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MixtureOfExpertsRegressor(
            RecordingRegressorNoWeights(), n_experts=2, gate_features=["x"],
            max_iter=3, random_state=0,
        ).fit(frame, y)
    fits = [r for r in seen if r[0] == "fit"]
    _check_frames(fits, frame)
    sizes = [len(X) for _, X, _ in fits[-2:]]
    assert all(0 < s < len(frame) for s in sizes) and sum(sizes) == len(frame)


def test_column_selecting_pipelines_and_native_categories_as_experts():
    frame, y = mixed_frame(400)
    frame["s"] = frame["s"].astype("category")
    linear = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["c", "s"]),
            (StandardScaler(), ["x", "n"]),
        ),
        Ridge(alpha=1e-3),
    )
    tree = HistGradientBoostingRegressor(
        categorical_features="from_dtype", max_iter=20, random_state=0
    )
    moe = MixtureOfExpertsRegressor(
        [("linear", linear), ("tree", tree)], gate_features=["x"], max_iter=5,
        random_state=0,
    )
    # One OpenMP thread: the trees' threads only wait on a busy test machine.
    with warnings.catch_warnings(), threadpool_limits(1, "openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(frame, y)
    assert moe.experts_[1].is_categorical_.tolist() == [False, False, True, True]
    assert moe.score(frame, y) > 0.9
    # The same model from the numpy object array of the frame (with the
    # usual warning about feature names).
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        again = moe.predict(frame.to_numpy())
    assert_allclose(again, moe.predict(frame))


def test_all_numeric_frame_gives_the_numpy_model_and_feature_names():
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (300, 2))
    y = np.abs(X[:, 0]) + 0.1 * rng.randn(300)
    frame = pd.DataFrame(X, columns=["a", "b"])
    params = dict(n_experts=3, random_state=0)
    on_frame = MixtureOfExpertsRegressor(Ridge(1e-3), **params).fit(frame, y)
    on_array = MixtureOfExpertsRegressor(Ridge(1e-3), **params).fit(X, y)
    assert_allclose(on_frame.predict(frame), on_array.predict(X), rtol=1e-10)
    assert on_frame.n_iter_ == on_array.n_iter_
    # Batched Ridge experts still get the names their own fit would set.
    for expert in on_frame.experts_:
        assert list(expert.feature_names_in_) == ["a", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        on_frame.predict(frame)


def test_gate_pipeline_encodes_a_categorical_gate_feature():
    frame, y = mixed_frame(400)
    gate = make_pipeline(OneHotEncoder(sparse_output=False), SoftmaxGate(alpha=1e-3))
    moe = MixtureOfExpertsRegressor(
        RecordingRegressor(), n_experts=2, gate=gate, gate_features=["c"],
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(frame, y)
    assert isinstance(moe.gate_, SoftmaxGate)
    assert moe.gate_.coef_.shape == (2, 3)  # one column per category
    # The gate separates category "a" (slope 2) from the others (slope -1).
    expert = moe.predict_expert(frame)
    a = (frame["c"] == "a").to_numpy()
    assert len(set(expert[a])) == 1 and set(expert[~a]) == {1 - expert[a][0]}
    assert moe.score(frame, y) > 0.95
    # The gate parameters stay tunable through the Pipeline.
    assert moe.set_params(gate__softmaxgate__alpha=0.5).gate[-1].alpha == 0.5


def test_gate_needs_numeric_columns_or_a_pipeline():
    frame, y = mixed_frame()
    with pytest.raises(ValueError, match=r"gate needs numeric input.*\['s'\]"):
        MixtureOfExpertsRegressor(RecordingRegressor(), gate_features=["x", "s"]).fit(frame, y)
    with pytest.raises(TypeError, match="last step of a gate Pipeline"):
        MixtureOfExpertsRegressor(
            RecordingRegressor(), gate=make_pipeline(StandardScaler(), Ridge())
        ).fit(frame, y)
    # By default the gate takes the numeric columns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe = MixtureOfExpertsRegressor(RecordingRegressor(), max_iter=3).fit(frame, y)
    assert_array_equal(moe.gate_features_, [0, 1])


def test_partial_fit_and_early_stopping_with_a_dataframe(seen):
    frame, y = mixed_frame()

    class Online(RecordingRegressor):
        def partial_fit(self, X, y, sample_weight=None):
            return self.fit(X, y, sample_weight)

    moe = MixtureOfExpertsRegressor(
        Online(), n_experts=2, solver="gd", gate_features=["x"], random_state=0,
        max_iter=3, early_stopping=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(frame, y)
        # Mini-batches of shuffled rows (shuffle=True).
        _check_frames([r for r in seen if r[0] == "fit"], frame, ordered=False)
        moe = clone(moe).set_params(early_stopping=False)
        moe.partial_fit(frame.iloc[:150], y[:150]).partial_fit(frame.iloc[150:], y[150:])
    assert moe.predict(frame).shape == (300,)
    with pytest.raises(ValueError, match="feature names"):
        moe.partial_fit(frame.rename(columns={"x": "z"}), y)


@pytest.mark.parametrize("top_k", [None, 1])
def test_classifier_with_column_selecting_experts_on_a_dataframe(top_k):
    frame, y = mixed_frame(300)
    labels = np.where(y > np.median(y), "high", "low")
    expert = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["c", "s"]),
            (StandardScaler(), ["x"]),
        ),
        LogisticRegression(),
    )
    moe = MixtureOfExpertsClassifier(
        expert, n_experts=2, gate_features=["x"], top_k=top_k, max_iter=10,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(frame, labels)
    assert moe.score(frame, labels) > 0.8
    proba = moe.predict_proba(frame.iloc[::3])
    assert proba.shape == (100, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert moe.log_prob(frame, labels).shape == (300,)


def test_polars_frame_reaches_the_experts():
    pl = pytest.importorskip("polars")
    frame, y = mixed_frame()
    moe = MixtureOfExpertsRegressor(
        HistGradientBoostingRegressor(max_iter=10), n_experts=2, max_iter=3,
        gate_features=["x"], random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(pl.from_pandas(frame[["x", "n"]]), y)
    assert moe.predict(pl.from_pandas(frame[["x", "n"]])).shape == (300,)


# ---------------------------------------------------------------------------
# Named experts
# ---------------------------------------------------------------------------
def test_named_experts_in_a_grid_search():
    frame, y = mixed_frame(200)
    X = frame[["x", "n"]].to_numpy(dtype=float)
    moe = MixtureOfExpertsRegressor(
        [("linear", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))],
        max_iter=10, random_state=0,
    )
    params = moe.get_params()
    assert params["linear__alpha"] == 1.0 and params["tree__max_depth"] is None
    search = GridSearchCV(
        moe, {"linear__alpha": [0.01, 100.0], "tree__max_depth": [1, 3]}, cv=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    best = search.best_estimator_
    assert best.experts[0][1].alpha == search.best_params_["linear__alpha"]
    assert best.experts_[1].max_depth == search.best_params_["tree__max_depth"]
    # A named expert is replaced by its name; plain lists keep working.
    moe.set_params(tree=LinearRegression())
    assert isinstance(moe.experts[1][1], LinearRegression)
    with pytest.raises(ValueError, match="experts is a list"):
        MixtureOfExpertsRegressor([Ridge(), Ridge()]).set_params(experts__alpha=1.0)


@pytest.mark.parametrize(
    "experts, match",
    [
        ([("a", Ridge()), ("a", Ridge())], "not unique"),
        ([("gate", Ridge()), ("b", Ridge())], "conflict with constructor arguments"),
        ([("a__b", Ridge()), ("b", Ridge())], "must not contain __"),
        ([("a", Ridge()), Ridge()], "not a mix of both"),
    ],
)
def test_named_experts_are_checked(experts, match):
    X = np.random.RandomState(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor(experts).fit(X, X[:, 0])


def test_html_diagram_draws_the_gate_and_every_expert():
    moe = MixtureOfExpertsRegressor(
        [("linear", Ridge()), ("tree", DecisionTreeRegressor())]
    )
    html = estimator_html_repr(moe)
    for name in ("gate: SoftmaxGate", "linear: Ridge", "tree: DecisionTreeRegressor"):
        assert name in html
    html = estimator_html_repr(MixtureOfExpertsClassifier())
    assert "gate: SoftmaxGate" in html and "experts: LogisticRegression" in html


# ---------------------------------------------------------------------------
# Tunable defaults
# ---------------------------------------------------------------------------
def test_default_gate_and_expert_are_tunable_in_a_grid_search():
    frame, y = mixed_frame(200)
    X = frame[["x"]].to_numpy()
    search = GridSearchCV(
        MixtureOfExpertsRegressor(random_state=0, max_iter=20),
        {"gate__alpha": [0.01, 10.0], "experts__fit_intercept": [True, False]},
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    best = search.best_estimator_
    assert best.gate.alpha == search.best_params_["gate__alpha"]
    assert best.experts.fit_intercept == search.best_params_["experts__fit_intercept"]
    clf = MixtureOfExpertsClassifier().set_params(experts__C=0.5)
    assert isinstance(clf.experts, LogisticRegression) and clf.experts.C == 0.5


# ---------------------------------------------------------------------------
# Progress lines and warnings
# ---------------------------------------------------------------------------
def test_verbose_3_times_the_steps_and_restarts_are_labelled(capsys):
    frame, y = mixed_frame(200)
    X = frame[["x"]].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MixtureOfExpertsRegressor(
            n_init=2, max_iter=3, verbose=3, random_state=0, init="kmeans"
        ).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    step = r"\(experts [\d.]+s, gate [\d.]+s, E-step [\d.]+s\)"
    for i_init in (1, 2):
        for it in (1, 2, 3):
            assert any(
                re.match(rf"\[init {i_init}/2\] Iteration +{it}: .*{step}$", line)
                for line in lines
            ), lines
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MixtureOfExpertsRegressor(
            max_iter=2, verbose=2, random_state=0, init="kmeans"
        ).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration    1:") and "experts" not in lines[0]


class _OwnFitLogistic(LogisticRegression):
    """A subclass: fitted by its own ``fit`` (lbfgs), not the batched Newton path."""


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_warnings_of_the_experts_are_summarised_once(n_jobs):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    moe = MixtureOfExpertsClassifier(
        _OwnFitLogistic(max_iter=1), n_experts=2, n_init=2, n_jobs=n_jobs,
        max_iter=5, tol=0.0, random_state=0,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moe.fit(X, y)
    lbfgs = [w for w in caught if "lbfgs failed" in str(w.message)]
    assert len(lbfgs) == 1
    assert re.search(r"raised \d+ times during this fit", str(lbfgs[0].message))
    em = [w for w in caught if str(w.message).startswith("EM did not converge")]
    assert len(em) == 1


def test_a_worker_process_raises_each_warning_once(monkeypatch):
    monkeypatch.setattr(_gather, "_RAISED_IN_WORKER", set())
    monkeypatch.setattr(_gather.multiprocessing, "parent_process", lambda: object())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            _gather.warn("EM did not converge", ConvergenceWarning)
        _gather.warn("another one", UserWarning)
    assert [str(w.message) for w in caught] == ["EM did not converge", "another one"]


def test_missing_values_reach_experts_that_take_them():
    frame, y = mixed_frame()
    frame["n"] = frame["n"].astype(float)
    frame.loc[frame.index[::7], "n"] = np.nan
    moe = MixtureOfExpertsRegressor(
        HistGradientBoostingRegressor(max_iter=10), n_experts=2, max_iter=3,
        gate_features=["x"], random_state=0,
    )
    with warnings.catch_warnings(), threadpool_limits(1, "openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        moe.fit(frame[["x", "n"]], y)
    assert np.isfinite(moe.predict(frame[["x", "n"]])).all()
