"""The experts of a mixture: their weights, fitting, outputs and parameter counts.

Every rule about the experts is written here once:

- which weights each expert receives in an M-step (:func:`expert_weights`:
  posterior weights, or hard assignments for an expert that takes no
  ``sample_weight``, and the empty-expert threshold);
- whether an expert takes ``sample_weight`` (:func:`accepts_sample_weight`,
  with Pipelines and metadata routing) and how a non-uniform
  ``sample_weight`` is refused (:func:`check_sample_weight_support`);
- fitting and partial-fitting one expert (:func:`fit_expert`,
  :func:`partial_fit_expert`), refitting them all (:func:`refit_experts`);
- cloning and seeding the experts of a run (:func:`make_experts`);
- the check of what an expert returns (:func:`checked_output`);
- their free parameters, for BIC / AIC / ICL (:func:`count_parameters`).
"""

import inspect
import time
from contextlib import ExitStack, contextmanager

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.base import clone
from sklearn.ensemble._base import _set_random_states
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import _get_feature_names, has_fit_parameter

from . import _glm, _linear
from ._frames import non_numeric_columns, numeric_array, take_rows

#: Share of the total training weight under which an expert counts as empty.
EMPTY_EXPERT_SHARE = 1e-10

#: Relative spread of the positive sample weights under which they count as
#: uniform (an expert without ``sample_weight`` can then honour them).
UNIFORM_WEIGHT_RTOL = 1e-12


def estimator_name(est):
    """Short name of an expert for messages (a Pipeline lists its steps)."""
    if isinstance(est, Pipeline):
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in est.steps) + ")"
    return type(est).__name__


def _sample_weight_fit_params(expert, weight):
    """Keyword arguments that pass ``weight`` to ``expert.fit``.

    Returns None when the expert cannot take sample weights. A Pipeline
    qualifies when its final step accepts them; it gets
    ``step__sample_weight`` for every step whose ``fit`` accepts it or, with
    metadata routing enabled, ``sample_weight`` routed by the steps' requests.
    """
    if isinstance(expert, Pipeline):
        steps = [(name, est) for name, est in expert.steps if est not in (None, "passthrough")]
        if not steps or not has_fit_parameter(steps[-1][1], "sample_weight"):
            return None
        if _routing_enabled():
            # The Pipeline routes sample_weight to the steps that request it
            # (``step.set_fit_request(sample_weight=True)``).
            return {"sample_weight": weight}
        return {
            f"{name}__sample_weight": weight
            for name, est in steps
            if has_fit_parameter(est, "sample_weight")
        }
    if _fit_takes_weight(type(expert)):
        return {"sample_weight": weight}
    return None


def _active_steps(pipeline):
    return [
        (name, est) for name, est in pipeline.steps if est not in (None, "passthrough")
    ]


def _takes_sample_weight(method):
    try:
        return "sample_weight" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic callables
        return False


def supports_partial_fit(expert):
    """Whether ``solver="gd"`` can step ``expert``: it has ``partial_fit``, or
    it is a Pipeline whose every step has (``StandardScaler`` has)."""
    if isinstance(expert, Pipeline):
        steps = _active_steps(expert)
        return bool(steps) and all(hasattr(est, "partial_fit") for _, est in steps)
    return hasattr(expert, "partial_fit")


#: Whether a class's ``fit`` takes ``sample_weight`` (the signature is read
#: once per class, not at every EM iteration).
_TAKES_WEIGHT = {}


def _fit_takes_weight(kind):
    if kind not in _TAKES_WEIGHT:
        _TAKES_WEIGHT[kind] = has_fit_parameter(kind, "sample_weight")
    return _TAKES_WEIGHT[kind]


def accepts_sample_weight(expert, method="fit"):
    """Whether ``expert.<method>`` (``"fit"`` or ``"partial_fit"``) takes ``sample_weight``."""
    if method == "fit":
        return _sample_weight_fit_params(expert, None) is not None
    if isinstance(expert, Pipeline):
        steps = _active_steps(expert)
        return bool(steps) and _takes_sample_weight(
            getattr(steps[-1][1], "partial_fit", None)
        )
    return _takes_sample_weight(expert.partial_fit)


def uniform_weights(sample_weight):
    """Whether the positive sample weights are all equal (to ``UNIFORM_WEIGHT_RTOL``)."""
    positive = sample_weight[sample_weight > 0]
    return np.ptp(positive) <= UNIFORM_WEIGHT_RTOL * positive.max()


def check_sample_weight_support(experts, sample_weight, method="fit"):
    """Refuse a non-uniform ``sample_weight`` that some expert cannot take."""
    if uniform_weights(sample_weight):
        return
    for k, expert in enumerate(experts):
        if not accepts_sample_weight(expert, method):
            what = (
                "does not accept sample_weight" if method == "fit"
                else "takes no sample_weight in partial_fit"
            )
            raise ValueError(
                f"Expert {k} ({estimator_name(expert)}) {what}, so non-uniform "
                f"sample_weight cannot be honoured; use experts whose {method} "
                "accepts sample_weight."
            )


def min_rows(expert):
    """Fewest rows an expert can be fit on (``n_neighbors`` for neighbours)."""
    if isinstance(expert, Pipeline):
        expert = expert.steps[-1][1]
    return max(int(getattr(expert, "n_neighbors", 1) or 1), 1)


def make_experts(prototypes, rng):
    """Unfitted clones of ``prototypes``, their ``random_state`` drawn from ``rng``."""
    experts = [clone(p) for p in prototypes]
    for e in experts:
        _set_random_states(e, rng)
    return experts


def _holds_estimator(value):
    if hasattr(value, "get_params"):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_estimator(v) for v in value)
    return False


def leaf_params(estimator):
    """Parameters of ``estimator`` that neither are nor hold estimators."""
    return {
        key: value
        for key, value in estimator.get_params(deep=True).items()
        if not _holds_estimator(value)
    }


def assignments(resp, rng, mode):
    """Weights the M-step gives: posteriors, or hard / stochastic draws from them."""
    if mode == "soft":
        return resp
    n_samples, n_experts = resp.shape
    if mode == "hard":
        labels = np.argmax(resp, axis=1)
    else:
        cum = np.cumsum(resp, axis=1)
        u = rng.uniform(size=(n_samples, 1)) * cum[:, -1:]
        labels = np.minimum((cum < u).sum(axis=1), n_experts - 1)
    hard = np.zeros_like(resp)
    hard[np.arange(n_samples), labels] = 1.0
    return hard


def expert_weights(
    experts, sample_weight, weights, resp, rng, assignment, *, keep_empty, skip=None,
    method="fit",
):
    """The weight column every expert is fit with, and the experts left empty.

    ``weights`` is ``sample_weight[:, None] * assignments``. An expert whose
    ``method`` takes ``sample_weight`` (or any expert when ``assignment`` is
    not ``"soft"``: the assignments are already hard) gets its column; one
    that takes none gets the rows it most probably owns. An expert with at
    most ``EMPTY_EXPERT_SHARE`` of the total weight (or too few rows for it)
    is empty: with ``keep_empty`` it is not refit (None), otherwise it is
    fit on every row so that it can predict. Experts with ``skip[k]`` are
    not refit (None).

    Returns ``(columns, empty)``: a list of weight arrays or None, and the
    set of empty experts.
    """
    total = sample_weight.sum()
    hard = None
    columns, empty = [], set()
    for k, expert in enumerate(experts):
        if skip is not None and skip[k]:
            columns.append(None)
            continue
        accepts = accepts_sample_weight(expert, method)
        if accepts or assignment != "soft":
            w = weights[:, k]
        else:
            if hard is None:
                hard = assignments(resp, rng, "hard")
            w = hard[:, k] * sample_weight
        too_few = not accepts and np.count_nonzero(w) < min_rows(expert)
        if too_few or w.sum() <= EMPTY_EXPERT_SHARE * total:
            empty.add(k)
            if keep_empty:
                columns.append(None)
                continue
            w = sample_weight
        columns.append(w)
    return columns, empty


@contextmanager
def naming_text_columns(expert, X):
    """Name the expert and the columns when an expert fails on a frame
    with non-numeric columns (scikit-learn's "could not convert string to
    float: 'Rome'" names neither)."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        bad = non_numeric_columns(X)
        if not bad:
            raise
        raise ValueError(
            f"The expert {estimator_name(expert)} failed on X's non-numeric "
            f"columns {bad}: {exc}. Encode them for the experts, for example "
            "experts=make_pipeline(make_column_transformer((OneHotEncoder(), "
            f"{bad}), remainder='passthrough'), Ridge()), or drop them from X."
        ) from exc


def fit_expert(expert, X, y, weight, subset_rows):
    """Fit one expert on the rows that carry weight for it.

    Experts that accept ``sample_weight`` get ``weight``; the others are fit
    on the rows with a positive weight (hard or stochastic assignments,
    where every positive weight is the same). ``subset_rows=False`` keeps
    every row (with zero weights) so that a classifier sees every class.
    """
    # A column of the (n, K) weights is strided; libsvm (SVR, SVC, ...)
    # takes only a C-contiguous sample_weight.
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    params = _sample_weight_fit_params(expert, weight)
    if params is None or subset_rows:
        rows = weight > 0
        if not rows.all():
            X, y, weight = take_rows(X, np.flatnonzero(rows)), y[rows], weight[rows]
            params = _sample_weight_fit_params(expert, weight)
    with naming_text_columns(expert, X):
        if params is None:
            expert.fit(X, y)
        else:
            expert.fit(X, y, **params)
    return expert


def partial_fit_expert(expert, X, y, weight, classes, subset_rows):
    """One ``partial_fit`` step of one expert with posterior weights.

    Experts whose ``partial_fit`` takes no ``sample_weight`` get the rows with
    a positive weight (hard or stochastic assignments).
    """
    accepts = accepts_sample_weight(expert, "partial_fit")
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    if not accepts or subset_rows:
        rows = weight > 0
        if not rows.all():
            X, y, weight = take_rows(X, np.flatnonzero(rows)), y[rows], weight[rows]
    kwargs = {}
    if accepts:
        kwargs["sample_weight"] = weight
    if classes is not None:
        kwargs["classes"] = classes
    if isinstance(expert, Pipeline):
        # Every transformer takes its own partial_fit step (with the weights
        # when it accepts them), then transforms the batch for the next step.
        *transforms, (_, final) = _active_steps(expert)
        for _, step in transforms:
            if _takes_sample_weight(step.partial_fit):
                step.partial_fit(X, sample_weight=weight)
            else:
                step.partial_fit(X)
            X = step.transform(X)
        expert = final
    with naming_text_columns(expert, X):
        expert.partial_fit(X, y, **kwargs)


#: Mean seconds per expert fit above which fits are worth dispatching to
#: joblib workers (trees, forests, boosting; not a small linear model).
DISPATCH_MIN_SECONDS = 0.02


class ExpertPool:
    """Where a run's expert fits go: a plain loop, or one joblib ``Parallel``.

    One per EM run (use it as a context manager): the ``Parallel`` context is
    opened on the first dispatch and reused by every later M-step, so the
    workers (and joblib's memmapping of ``X``) are set up once. Nothing is
    dispatched where there is nothing to share: ``n_jobs`` giving one worker,
    one expert to fit, or fits too quick to pay for the transfer (the first
    fit of the run is timed serially; the others are dispatched only when it
    took ``DISPATCH_MIN_SECONDS``). Where fits run never changes the model:
    every expert has its own seed, drawn before any fit.
    """

    def __init__(self, n_jobs):
        self.n_jobs = n_jobs
        self.parallel = None
        self.worth = None if effective_n_jobs(n_jobs) > 1 else False
        self._stack = ExitStack()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self.parallel = None
        return False

    def map(self, jobs):
        """``fit_expert(*job)`` for every job, in order."""
        out = []
        if self.worth is None and len(jobs) > 1:
            # Time the first fit of the run; dispatch the others if it was slow.
            tic = time.perf_counter()
            out.append(fit_expert(*jobs[0]))
            self.worth = time.perf_counter() - tic >= DISPATCH_MIN_SECONDS
            jobs = jobs[1:]
        return out + self.run([(fit_expert, job) for job in jobs])

    def run(self, calls):
        """``function(*args)`` for every ``(function, args)`` of ``calls``, in
        order: in the workers once the run's fits proved worth dispatching
        (the experts' predictions then go there too), else here."""
        if len(calls) <= 1 or not self.worth:
            return [function(*args) for function, args in calls]
        if self.parallel is None:
            self.parallel = self._stack.enter_context(Parallel(n_jobs=self.n_jobs))
        return list(self.parallel(delayed(function)(*args) for function, args in calls))


def expert_predictions(experts, X, method="predict", pool=None):
    """``getattr(expert, method)(X)`` for every expert, in order, unchecked.

    ``pool``: the run's :class:`ExpertPool`; where its fits were worth
    dispatching (trees, boosting), the predictions are made by its workers
    too, so that the E-step's expert predictions are not a serial section.
    """
    calls = [(getattr(expert, method), (X,)) for expert in experts]
    if pool is None:
        return [function(*args) for function, args in calls]
    return pool.run(calls)


def refit_experts(
    experts, columns, X, y, subset_rows, pool=None, all_weights=None, classes=None
):
    """Fit every expert ``k`` with ``columns[k]`` (None: keep it as it is).

    Plain LinearRegression / Ridge experts solve their weighted least
    squares together (:mod:`skmoe._linear`, the same coefficients as their
    own fit to 1e-8, on dense or sparse ``X``), plain PoissonRegressor /
    GammaRegressor experts take a direct Newton fit (:mod:`skmoe._glm`, the
    same optimum as their own fit); the others go to ``pool`` (an
    :class:`ExpertPool`; None: a plain loop). ``all_weights``: the ``(n, K)``
    array whose columns the ``columns`` are, when they all are (spares a
    copy). An all-numeric DataFrame takes the batched path on its float64
    values (the experts then get its feature names, as their own fit would
    set). With ``classes`` (a classifier's), plain LogisticRegression experts
    are fitted together by Newton's method, warm-started from their current
    coefficients (:func:`skmoe._linear.fit_logistic_experts`, their own fit's
    optimum).
    """
    # Sparse X too: its Gram matrices are formed sparse (_linear), so sparse
    # and dense X give the same model.
    X_num = numeric_array(X)
    batch = [] if X_num is None or not _linear.takes_data(X_num) else [
        k for k, w in enumerate(columns) if w is not None and _linear.batchable(experts[k])
    ]
    done = set()
    if batch and y.ndim == 1:
        if batch == list(range(len(columns))) and all(
            columns[k].base is all_weights for k in batch
        ) and all_weights is not None:
            batch_weights = all_weights  # every expert, its own column: no copy
        else:
            batch_weights = np.column_stack([columns[k] for k in batch])
        ok = _linear.fit_linear_experts([experts[k] for k in batch], X_num, y, batch_weights)
        done = {k for k, fitted in zip(batch, ok) if fitted}
        if X_num is not X:
            _set_feature_names([experts[k] for k in done], X)
    logistic = [] if classes is None or X_num is None or sp.issparse(X_num) else [
        k for k, w in enumerate(columns)
        if w is not None and _linear.batchable_logistic(experts[k])
    ]
    if logistic:
        y_encoded = np.searchsorted(classes, y)
        ok = _linear.fit_logistic_experts(
            [experts[k] for k in logistic], X_num, y_encoded, classes,
            np.column_stack([columns[k] for k in logistic]),
        )
        fitted = [k for k, good in zip(logistic, ok) if good]
        done |= set(fitted)
        if X_num is not X:
            _set_feature_names([experts[k] for k in fitted], X)
    # Poisson / Gamma GLM experts: a direct Newton fit (skmoe/_glm.py); a
    # small sparse X is densified for it (the same optimum).
    if sp.issparse(X_num) and np.prod(X_num.shape) <= _glm.MAX_DENSIFY:
        X_num = X_num.toarray()
    glm = [] if X_num is None or sp.issparse(X_num) or y.ndim != 1 else [
        k for k, w in enumerate(columns)
        if w is not None and _glm.batchable_glm(experts[k])
    ]
    if glm:
        ok = _glm.fit_glm_experts(
            [experts[k] for k in glm], X_num, y,
            np.column_stack([columns[k] for k in glm]),
        )
        fitted = {k for k, fit in zip(glm, ok) if fit}
        if X_num is not X and not sp.issparse(X):
            _set_feature_names([experts[k] for k in fitted], X)
        done |= fitted
    jobs = [
        (experts[k], X, y, w, subset_rows)
        for k, w in enumerate(columns)
        if w is not None and k not in done
    ]
    it = iter(ExpertPool(None).map(jobs) if pool is None else pool.map(jobs))
    return [
        experts[k] if w is None or k in done else next(it)
        for k, w in enumerate(columns)
    ]


#: Tolerance on a probability below 0 or on a row sum away from 1.
PROBA_ATOL = 1e-6


def _set_feature_names(experts, X):
    """``feature_names_in_`` of experts fitted on the values of frame ``X``."""
    names = _get_feature_names(X)
    for expert in experts:
        if names is None:
            expert.__dict__.pop("feature_names_in_", None)
        else:
            expert.feature_names_in_ = names


def checked_output(expert, k, out, shape, proba=False):
    """``out`` (what expert ``k`` returned) as a float array of ``shape``.

    The one check of the experts' outputs, on both solvers and at predict
    time: a clear error naming the expert when the shape is wrong, a value
    is not finite or, with ``proba``, the rows are not probabilities (a
    value below 0 or a row sum away from 1, by more than ``PROBA_ATOL``).
    """
    name = f"Expert {k} ({estimator_name(expert)})"
    what = "probabilities" if proba else "predictions"
    try:
        out = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} returned {what} that are not numbers: {exc}") from exc
    if out.size != int(np.prod(shape)) or (out.ndim and out.shape[0] != shape[0]):
        raise ValueError(
            f"{name} returned {what} of shape {out.shape} for {shape[0]} samples; "
            f"expected {shape}."
        )
    out = out.reshape(shape)
    finite = np.isfinite(out)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(shape[0], -1).all(axis=1))
        raise ValueError(
            f"{name} returned NaN or infinite {what} on {bad.size} of "
            f"{shape[0]} samples (first sample {bad[0]})."
        )
    if proba and out.size:
        low = out.min()
        sums = out.sum(axis=1)
        if low < -PROBA_ATOL or np.abs(sums - 1.0).max() > PROBA_ATOL:
            raise ValueError(
                f"{name} returned invalid probabilities (values down to {low:.3g}, "
                f"row sums from {sums.min():.6g} to {sums.max():.6g}): "
                "predict_proba must give non-negative rows that sum to 1."
            )
    return out


def count_parameters(expert, n_classes=None):
    """Number of free parameters of a fitted expert, for BIC / AIC / ICL.

    Linear models count their coefficients and intercepts; a linear
    classifier over ``C`` classes has ``(C - 1) * (n_features + 1)`` free
    parameters whether it stores ``C`` rows (multinomial, invariant to a
    common shift) or one (binary). Trees count their leaves, times ``C - 1``
    for a classifier (one probability vector per leaf; the split thresholds
    are not counted), and tree ensembles the leaves of all their trees.
    Neighbours count ``n_samples_fit_ / n_neighbors``, the effective degrees
    of freedom of a k-nearest-neighbour smoother. A Pipeline counts its final
    step. Any other expert raises ``NotImplementedError``.
    """
    per_value = 1 if n_classes is None else n_classes - 1
    if isinstance(expert, Pipeline):
        return count_parameters(expert.steps[-1][1], n_classes)
    if hasattr(expert, "coef_"):
        coef = np.atleast_2d(expert.coef_)
        intercept = int(getattr(expert, "fit_intercept", True))
        if n_classes is not None:
            seen = len(getattr(expert, "classes_", [])) or n_classes
            return int((seen - 1) * (coef.shape[1] + intercept))
        return int(coef.size + intercept * np.size(getattr(expert, "intercept_", 0.0)))
    if hasattr(expert, "tree_"):
        return int(expert.tree_.n_leaves) * per_value
    if hasattr(expert, "estimators_"):
        ests = np.ravel(np.asarray(expert.estimators_, dtype=object))
        return int(sum(count_parameters(e) for e in ests))
    if hasattr(expert, "_predictors"):  # HistGradientBoosting
        return int(
            sum(p.get_n_leaf_nodes() for it in expert._predictors for p in it)
        )
    if hasattr(expert, "n_samples_fit_") and hasattr(expert, "n_neighbors"):
        return int(np.ceil(expert.n_samples_fit_ / expert.n_neighbors))
    raise NotImplementedError(
        f"skmoe cannot count the parameters of a {type(expert).__name__} expert, "
        "so it cannot compute BIC, AIC or ICL for this mixture."
    )
