"""The mixture-of-experts base class: one EM loop, small per-task hooks."""

import copy
import time
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.cluster import KMeans
from sklearn.ensemble._base import _set_random_states
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils import get_tags
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from . import _kernels, _linear, _routing, _threaded
from ._gating import _CHUNK_ROWS, SoftmaxGate, _weighted_standardization

# Share of the total training weight under which an expert counts as empty.
_EMPTY_EXPERT_SHARE = 1e-10


@contextmanager
def _restore_on_error(estimator):
    """Leave ``estimator`` exactly as it was if the block raises.

    ``validate_data`` sets ``n_features_in_`` before anything can fail, and
    a failed fit must not leave a half-fitted estimator behind.
    """
    saved = estimator.__dict__.copy()
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


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
    if has_fit_parameter(expert, "sample_weight"):
        return {"sample_weight": weight}
    return None


def _accepts_sample_weight(expert):
    return _sample_weight_fit_params(expert, None) is not None


def _fit_expert(expert, X, y, weight, subset_rows):
    """Fit one expert on the rows that carry weight for it.

    Experts that accept ``sample_weight`` get ``weight``; the others are fit
    on the rows with a positive weight (hard or stochastic assignments,
    where every positive weight is the same). ``subset_rows=False`` keeps
    every row (with zero weights) so that a classifier sees every class.
    """
    params = _sample_weight_fit_params(expert, weight)
    if params is None or subset_rows:
        rows = weight > 0
        if not rows.all():
            X, y, weight = X[rows], y[rows], weight[rows]
            params = _sample_weight_fit_params(expert, weight)
    if params is None:
        expert.fit(X, y)
    else:
        expert.fit(X, y, **params)
    return expert


def _holds_estimator(value):
    if hasattr(value, "get_params"):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_estimator(v) for v in value)
    return False


def _leaf_params(estimator):
    """Parameters of ``estimator`` that neither are nor hold estimators."""
    return {
        key: value
        for key, value in estimator.get_params(deep=True).items()
        if not _holds_estimator(value)
    }


def _min_rows(expert):
    """Fewest rows an expert can be fit on (``n_neighbors`` for neighbours)."""
    if isinstance(expert, Pipeline):
        expert = expert.steps[-1][1]
    return max(int(getattr(expert, "n_neighbors", 1) or 1), 1)


def _estimator_name(est):
    if isinstance(est, Pipeline):
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in est.steps) + ")"
    return type(est).__name__


def _count_expert_parameters(expert, n_classes=None):
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
        return _count_expert_parameters(expert.steps[-1][1], n_classes)
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
        return int(sum(_count_expert_parameters(e) for e in ests))
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


def _first_principal_axis(D, mean, sample_weight, total, n_iter=100):
    """Leading eigenvector of the weighted covariance of ``D``.

    Dense data with few columns: an exact eigen-decomposition. Otherwise
    (sparse or wide data) power iteration with implicit centring, so a
    sparse ``D`` is never densified and no p x p matrix is formed. Both are
    deterministic functions of the weighted data.
    """
    n_cols = D.shape[1]
    if not sp.issparse(D) and n_cols <= 64:
        # Centred weighted covariance, chunk by chunk (no copy of D).
        cov = np.zeros((n_cols, n_cols))
        for c0 in range(0, D.shape[0], _CHUNK_ROWS):
            Dc = D[c0 : c0 + _CHUNK_ROWS] - mean
            cov += (Dc * sample_weight[c0 : c0 + _CHUNK_ROWS, None]).T @ Dc
        return np.linalg.eigh(cov / total)[1][:, -1]
    axis = np.full(n_cols, 1.0 / np.sqrt(n_cols))
    for _ in range(n_iter):
        u = np.asarray(D @ axis).ravel() - mean @ axis
        wu = sample_weight * u
        new = (np.asarray(D.T @ wu).ravel() - mean * wu.sum()) / total
        norm = np.linalg.norm(new)
        if norm == 0:
            return axis
        new /= norm
        if np.linalg.norm(new - axis) < 1e-10:
            return new
        axis = new
    return axis


# Lloyd iterations of the deterministic k-means start (it rarely needs more;
# at a million rows each one costs about 0.1 s).
_INIT_LLOYD_ITER = 30


def _quantile_init_labels(D, sample_weight, n_experts):
    """Deterministic, weight-aware initial partition.

    The rows are ordered along the weighted first principal axis of ``D`` and
    cut into ``n_experts`` slices of equal weight; the slices' weighted means
    seed Lloyd's algorithm. Everything here is a function of the weighted
    empirical distribution, so a weight of 2 and a duplicated row give the
    same start. ``D`` may be sparse.
    """
    total = sample_weight.sum()
    mean = np.asarray(sample_weight @ D).ravel() / total
    axis = _first_principal_axis(D, mean, sample_weight, total)
    # Fix the sign so the result does not depend on the eigen-solver.
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    t = np.asarray(D @ axis).ravel() - mean @ axis
    # Cut at weighted quantile *values* (inverted CDF), so that equal rows
    # always land in the same slice whether repeated or weighted.
    order = np.argsort(t, kind="stable")
    cw = np.cumsum(sample_weight[order])
    targets = total * np.arange(1, n_experts) / n_experts
    cuts = t[order[np.minimum(np.searchsorted(cw, targets), len(t) - 1)]]
    labels = np.searchsorted(cuts, t, side="left")
    centers = np.empty((n_experts, D.shape[1]))
    for k in range(n_experts):
        w = sample_weight * (labels == k)
        if w.sum() > 0:
            centers[k] = np.asarray(w @ D).ravel() / w.sum()
        else:
            # An empty slice (ties): seed at the slice's quantile.
            q = min(np.searchsorted(cw, total * (k + 0.5) / n_experts), len(t) - 1)
            row = D[order[q]]
            centers[k] = np.asarray(row.todense() if sp.issparse(row) else row).ravel()
    # tol=0 (scikit-learn's tol is relative to the unweighted variance, which
    # a weight and a duplicated row change differently); a start for EM does
    # not need Lloyd run to its end, so at most _INIT_LLOYD_ITER iterations.
    # copy_x=False: k-means centres D in place and restores it, instead of
    # copying it (D is the caller's own scaled copy).
    km = KMeans(
        n_clusters=n_experts, init=centers, n_init=1, tol=0.0, algorithm="lloyd",
        max_iter=_INIT_LLOYD_ITER, copy_x=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return km.fit(D, sample_weight=sample_weight).labels_


class _LazyInitColumns:
    """The init columns scaled to unit weighted variance, built on first call.

    Re-seeding and growth split an expert's rows with the deterministic
    2-means of the initialisation; scaling (not centring: the split is
    translation invariant) keeps a sparse ``X`` sparse, and nothing is built
    for a fit that repairs nothing.
    """

    def __init__(self, estimator, X, y, sample_weight):
        self._args = (estimator, X, y, sample_weight)
        self._D = None

    def __call__(self):
        if self._D is None:
            estimator, X, y, sample_weight = self._args
            D = estimator._init_columns(X, y)
            _, scale = _weighted_standardization(D, sample_weight)
            self._D = D @ sp.diags(1.0 / scale) if sp.issparse(D) else D / scale
        return self._D


class _BaseMixtureOfExperts(MetaEstimatorMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the mixtures of experts.

    Owns the fit loop (validation, initialisation, ``n_init`` restarts of EM,
    convergence, keeping the best restart) and the gate. Subclasses implement
    the expert likelihood through a few hooks.
    """

    _parameter_constraints = {
        "experts": [HasMethods(["fit", "predict"]), list, None],
        "n_experts": [Interval(Integral, 1, None, closed="left"), None],
        "gate": [SoftmaxGate, None],
        "gate_features": ["array-like", None],
        "assignment": [StrOptions({"soft", "hard", "stochastic"})],
        "init": [StrOptions({"kmeans", "random"}), "array-like"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "gate_max_iter": [
            Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None
        ],
        "warm_start": ["boolean"],
        "solver": [StrOptions({"em", "gd"})],
        "optimizer": [StrOptions({"adam", "sgd"})],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "min_expert_weight": [Interval(Real, 0, 1, closed="left")],
        "on_collapse": [StrOptions({"reseed", "drop"})],
        "grow": [StrOptions({"refit", "freeze"})],
    }

    @abstractmethod
    def __init__(
        self,
        experts=None,
        *,
        n_experts=None,
        gate=None,
        gate_features=None,
        assignment="soft",
        init="kmeans",
        n_init=1,
        max_iter=100,
        tol=1e-6,
        gate_max_iter="auto",
        warm_start=False,
        solver="em",
        optimizer="adam",
        learning_rate="constant",
        learning_rate_init=0.1,
        momentum=0.9,
        batch_size="auto",
        shuffle=True,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        n_jobs=None,
        random_state=None,
        verbose=0,
        top_k=None,
        min_expert_weight=1e-3,
        on_collapse="reseed",
        grow="refit",
    ):
        # Don't instantiate estimators now: their parameters may still change.
        self.experts = experts
        self.n_experts = n_experts
        self.gate = gate
        self.gate_features = gate_features
        self.assignment = assignment
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.gate_max_iter = gate_max_iter
        self.warm_start = warm_start
        self.solver = solver
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.top_k = top_k
        self.min_expert_weight = min_expert_weight
        self.on_collapse = on_collapse
        self.grow = grow

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Nested parameters such as ``experts__alpha`` or ``gate__alpha`` need
        the estimator they belong to: with the default ``experts=None`` or
        ``gate=None``, pass the estimator explicitly first (for example
        ``gate=SoftmaxGate()``).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        for prefix in ("experts", "gate"):
            nested = [k for k in params if k.startswith(prefix + "__")]
            owner = params.get(prefix, getattr(self, prefix, None))
            if nested and owner is None:
                default = "LinearRegression()" if prefix == "experts" else "SoftmaxGate()"
                raise ValueError(
                    f"Cannot set {nested[0]!r}: {prefix}=None. Pass the "
                    f"{prefix} estimator explicitly (e.g. {prefix}="
                    f"{default if prefix == 'gate' else 'Ridge()'}) to tune its "
                    "parameters."
                )
            if nested and isinstance(owner, list):
                raise ValueError(
                    f"Cannot set {nested[0]!r}: experts is a list; set the "
                    "parameters of its estimators directly."
                )
        return super().set_params(**params)

    # ------------------------------------------------------------------
    # Hooks implemented by the regressor and the classifier
    # ------------------------------------------------------------------
    @abstractmethod
    def _default_expert(self):
        """The expert used when ``experts`` is None."""

    @abstractmethod
    def _check_expert(self, expert, where):
        """Raise a TypeError naming ``where`` if ``expert`` is of the wrong kind."""

    @abstractmethod
    def _validate_targets(self, y, sample_weight):
        """Check ``y``; return ``(y_fit, target_info)`` (info set on success)."""

    @abstractmethod
    def _init_columns(self, X, y):
        """Columns clustered by ``init="kmeans"``."""

    @abstractmethod
    def _expert_outputs(self, experts, X, y, info):
        """What the E-step needs from the fitted experts on the training data."""

    @abstractmethod
    def _update_aux(self, outputs, y, weights, aux, info):
        """Closed-form M-step of auxiliary parameters (noise variances)."""

    @abstractmethod
    def _log_lik_matrix(self, outputs, y, aux):
        """``log p_k(y_i | x_i)``, shape (n_samples, n_experts)."""

    @abstractmethod
    def _row_losses(self, outputs, y):
        """Per-row loss of every expert (squared residual, log-loss), (n, K).

        Picks the expert that fits worst when an expert is re-seeded or the
        mixture grows.
        """

    _subset_rows = True  # fit experts only on the rows that carry weight
    _n_aux_parameters_per_expert = 0

    # ------------------------------------------------------------------
    # Parameter resolution
    # ------------------------------------------------------------------
    def _expert_prototypes(self):
        """Unfitted experts, one per slot, after checking their kind."""
        experts = self.experts
        if isinstance(experts, list):
            if len(experts) == 0:
                raise ValueError("experts must be an estimator or a non-empty list.")
            if self.n_experts is not None and self.n_experts != len(experts):
                raise ValueError(
                    f"n_experts={self.n_experts} disagrees with the {len(experts)} "
                    "estimators given in experts; set n_experts=None or "
                    f"n_experts={len(experts)}."
                )
            for i, est in enumerate(experts):
                if not (hasattr(est, "fit") and hasattr(est, "predict")):
                    raise TypeError(
                        f"experts[{i}] must be an estimator with fit and predict; "
                        f"got {est!r}."
                    )
                self._check_expert(est, f"experts[{i}]")
            return list(experts)
        proto = self._default_expert() if experts is None else experts
        self._check_expert(proto, "experts")
        n = 2 if self.n_experts is None else self.n_experts
        return [proto] * n

    def _gate_columns(self, n_features):
        """Column indices of the gate's input, or None for all columns."""
        if self.gate_features is None:
            return None
        cols = np.asarray(self.gate_features)
        if cols.ndim != 1 or cols.size == 0:
            raise ValueError(
                "gate_features must be a non-empty 1-D list of column indices, "
                "column names or a boolean mask."
            )
        if cols.dtype.kind in "OUS":
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                raise ValueError(
                    "gate_features holds column names, but X has no feature "
                    "names; pass a pandas DataFrame or column indices."
                )
            missing = [str(c) for c in cols if c not in set(names)]
            if missing:
                raise ValueError(f"gate_features names columns not in X: {missing}.")
            lookup = {name: i for i, name in enumerate(names)}
            return np.array([lookup[c] for c in cols], dtype=np.intp)
        if cols.dtype.kind == "b":
            if cols.size != n_features:
                raise ValueError(
                    f"gate_features as a boolean mask must have {n_features} "
                    f"entries, got {cols.size}."
                )
            return np.flatnonzero(cols)
        if cols.dtype.kind not in "iu":
            raise ValueError(
                "gate_features must hold integer column indices, column names "
                f"or booleans; got dtype {cols.dtype}."
            )
        if cols.min() < -n_features or cols.max() >= n_features:
            raise ValueError(
                f"gate_features indices must lie in [0, {n_features}); got {cols.tolist()}."
            )
        return np.asarray(cols % n_features, dtype=np.intp)

    def _gate_input(self, X, columns):
        if columns is None:
            return X
        Z = X[:, columns]
        return Z if sp.issparse(Z) else np.ascontiguousarray(Z)

    # ------------------------------------------------------------------
    # Initialisation
    # ------------------------------------------------------------------
    def _initial_responsibilities(self, X, y, sample_weight, n_experts, rng, i_init):
        n_samples = X.shape[0]
        if not isinstance(self.init, str):
            resp = np.array(self.init, dtype=np.float64)
            if resp.shape != (n_samples, n_experts):
                raise ValueError(
                    f"init as an array must have shape (n_samples, n_experts) = "
                    f"({n_samples}, {n_experts}); got {resp.shape}."
                )
            if not np.all(np.isfinite(resp)) or np.any(resp < 0):
                raise ValueError("init as an array must be finite and non-negative.")
            sums = resp.sum(axis=1, keepdims=True)
            if np.any(sums <= 0):
                raise ValueError("every row of init must have a positive sum.")
            return resp / sums
        if self.init == "random":
            labels = rng.permutation(n_samples) % n_experts
        else:
            D = self._init_columns(X, y)
            # k-means is translation invariant: scaling is all it needs, and
            # it keeps sparse data sparse.
            _, scale = _weighted_standardization(D, sample_weight)
            if sp.issparse(D):
                D = D @ sp.diags(1.0 / scale)
            elif np.may_share_memory(D, X):
                D = D / scale  # never scale the caller's data in place
            else:
                D /= scale  # our own copy: no second one
            if i_init == 0:
                labels = _quantile_init_labels(D, sample_weight, n_experts)
            else:
                # Later restarts must really differ: k-means++ on a Bayesian
                # bootstrap of the rows (random exponential weights), then
                # every row goes to its nearest centre.
                boot = sample_weight * rng.exponential(size=n_samples)
                km = KMeans(
                    n_clusters=n_experts,
                    n_init=1,
                    random_state=rng.randint(np.iinfo(np.int32).max),
                )
                labels = km.fit(D, sample_weight=boot).predict(D)
        resp = np.zeros((n_samples, n_experts))
        resp[np.arange(n_samples), labels] = 1.0
        return resp

    def _assignments(self, resp, rng, mode):
        """Weights the M-step gives the experts: posteriors or draws from them."""
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

    # ------------------------------------------------------------------
    # EM
    # ------------------------------------------------------------------
    def _m_step_experts(
        self, experts, fitted, X, y, sample_weight, resp, assign, rng, empty, frozen=None
    ):
        """Refit every expert; return the fitted experts.

        Experts with ``frozen[k]`` True are not refit (growth with
        ``grow="freeze"``).

        ``experts`` are the current expert objects, already fitted when
        ``fitted`` is True. An expert with no training weight keeps its
        previous fit; at the first M-step of a run (nothing to keep) it is fit
        on all the data so that it can predict. Both cases are recorded in
        ``empty`` for a warning.
        """
        total = sample_weight.sum()
        weights = sample_weight[:, None] * assign
        hard = None
        jobs = []
        for k, expert in enumerate(experts):
            if frozen is not None and frozen[k]:
                jobs.append(None)
                continue
            if _accepts_sample_weight(expert):
                w = weights[:, k]
            else:
                # No sample_weight: hard (or stochastic) assignment for this
                # expert; `assign` is already hard unless the mode is soft.
                if self.assignment == "soft":
                    if hard is None:
                        hard = self._assignments(resp, rng, "hard")
                    w = hard[:, k] * sample_weight
                else:
                    w = weights[:, k]
            too_few = (
                not _accepts_sample_weight(expert)
                and np.count_nonzero(w) < _min_rows(expert)
            )
            if too_few or w.sum() <= _EMPTY_EXPERT_SHARE * total:
                empty.add(k)
                if fitted:
                    jobs.append(None)
                    continue
                w = sample_weight
            jobs.append((expert, w))
        # LinearRegression / Ridge experts: all weighted least-squares
        # systems at once (same coefficients as their own fit, to 1e-8). Dense
        # X only: sparse (typically wide one-hot) data keeps the experts' own
        # sparse solvers.
        batch = [] if sp.issparse(X) else [
            k for k, job in enumerate(jobs) if job is not None and _linear.batchable(job[0])
        ]
        done = set()
        if batch and y.ndim == 1:
            if batch == list(range(len(jobs))) and all(
                jobs[k][1].base is weights for k in batch
            ):
                batch_weights = weights  # every expert, its own column: no copy
            else:
                batch_weights = np.column_stack([jobs[k][1] for k in batch])
            ok = _linear.fit_linear_experts(
                [jobs[k][0] for k in batch], X, y, batch_weights
            )
            batch_weights = None
            done = {k for k, fitted in zip(batch, ok) if fitted}
        refit = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_expert)(job[0], X, y, job[1], self._subset_rows)
            for k, job in enumerate(jobs)
            if job is not None and k not in done
        )
        it = iter(refit)
        out = [
            experts[k] if job is None else job[0] if k in done else next(it)
            for k, job in enumerate(jobs)
        ]
        return out

    def _em_run(
        self, X, y, sample_weight, Z, z_stats, state, resp, rng, info, D,
        frozen=None, frozen_aux=None,
    ):
        """Run EM from ``resp`` (or from ``state`` when ``resp`` is None).

        ``frozen`` marks experts that are not refit (their auxiliary
        parameters stay at ``frozen_aux``); ``D`` are the standardised
        columns used to split an expert's rows when an expert is re-seeded.
        With ``top_k`` the E-step is sparse (:func:`_routing.e_step`) and the
        objective is the sparse-EM bound.
        """
        experts, gate, aux = state
        experts = list(experts)
        n_experts = len(experts)
        if isinstance(resp, list):
            resp = resp.pop()
        frozen = (
            np.zeros(n_experts, dtype=bool) if frozen is None else np.array(frozen, dtype=bool)
        )
        total = sample_weight.sum()
        history = []
        empty = set()
        repairs = []
        converged = False
        prev = -np.inf
        n_iter = 0
        fitted = resp is None
        exact_gate = False
        if fitted:
            # Warm start: one E-step with the fitted parameters.
            outputs = self._expert_outputs(experts, X, y, info)
            log_gate = _threaded.log_softmax_rows(gate._logits(Z))
            resp, log_norm = _routing.e_step(
                log_gate, self._log_lik_matrix(outputs, y, aux), self.top_k
            )
            prev = (sample_weight @ log_norm - gate._penalty) / total
        for n_iter in range(1, self.max_iter + 1):
            tic = time.perf_counter()
            # Drop the previous iteration's n x n_experts arrays before the
            # M-step makes new ones (peak memory).
            outputs = log_gate = None
            assign = self._assignments(resp, rng, self.assignment)
            experts = self._m_step_experts(
                experts, fitted, X, y, sample_weight, resp, assign, rng, empty, frozen
            )
            fitted = True
            # A generalised M-step: a few optimiser iterations from the
            # previous gate (``gate_max_iter``), enough to raise the objective.
            # The M-step after a repair starts far from its optimum (a new
            # expert's gate output is a copy of its donor's): that one is
            # exact. (The first M-step of a run is not: from hard initial
            # labels, an exact unpenalised gate turns sharp at once and EM
            # then needs more iterations.)
            step_exact = exact_gate or self.gate_max_iter is None
            gate._fit_arrays(
                Z, assign, sample_weight, z_stats,
                max_iter=None if step_exact else self.gate_max_iter,
            )
            exact_gate = False
            log_gate = _threaded.log_softmax_rows(gate._logits(Z))
            # Sparse EM: an expert runs only on its candidate rows (the
            # rows where the new gate ranks it in the top_k, or where it
            # holds posterior weight now); the others get log-likelihood
            # -inf (the E-step keeps each row's top_k posteriors among its
            # candidates). Dense EM: every expert on every row.
            candidates = _routing.candidates(log_gate, resp, self.top_k)
            if candidates is None:
                outputs = self._expert_outputs(experts, X, y, info)
            else:
                outputs = self._expert_outputs(
                    experts, X, y, info, rows=_routing.rows_per_expert(candidates)
                )
            # The M-step's weights, made again rather than kept alive through
            # the gate's fit (peak memory).
            aux = self._update_aux(outputs, y, sample_weight[:, None] * assign, aux, info)
            if aux is not None and frozen.any():
                aux[frozen] = frozen_aux[frozen]
            log_lik_matrix = self._log_lik_matrix(outputs, y, aux)
            if candidates is not None:
                log_lik_matrix[~candidates] = -np.inf
            # The new responsibilities overwrite the old ones (no longer
            # needed), unless the M-step's weights were drawn from them
            # (assign is then another array).
            buffer = resp if assign is resp and resp.flags.c_contiguous else None
            assign = None
            resp, log_norm = _routing.e_step(log_gate, log_lik_matrix, self.top_k, out=buffer)
            log_lik_matrix = None
            buffer = None
            log_lik = sample_weight @ log_norm / total
            objective = log_lik - gate._penalty / total
            history.append(objective)
            change = objective - prev
            if self.verbose:
                print(
                    f"Iteration {n_iter:4d}: log-likelihood {log_lik:.6f}, "
                    f"objective {objective:.6f}, change {change:.3e}, "
                    f"{time.perf_counter() - tic:.3f}s"
                )
            repaired = False
            if n_iter < self.max_iter:
                # A repair needs an M-step after it: none at the last iteration.
                repair = self._repair_collapse(
                    resp, log_gate, outputs, y, sample_weight, D, experts, gate, aux,
                    frozen, frozen_aux, empty, repairs, n_iter,
                )
                if repair is not None:
                    resp, experts, aux, frozen, frozen_aux = repair
                    repaired = True
            if repaired:
                # EM restarts from the repaired responsibilities.
                prev = -np.inf
                exact_gate = True
                continue
            # Converged once the objective stops rising by tol. With exact
            # M-steps EM never decreases it; penalised or iterative experts
            # (LogisticRegression's own L2 and tol) make the M-step inexact
            # and the objective then jitters at the level of their tolerance.
            if change < self.tol:
                if not step_exact:
                    # A small change after a partial gate step may only mean
                    # the step was short: confirm with an exact M-step.
                    exact_gate = True
                    prev = objective
                    continue
                converged = True
                break
            prev = objective
        if history and _routing.effective_k(self.top_k, len(experts)) is not None:
            # The iterations evaluated each expert on its candidate rows
            # only; the fitted model's responsibilities and log-likelihood
            # (what log_prob and responsibilities() give) take each row's
            # top_k posteriors among all the experts: one full E-step.
            # (``log_gate`` is the last iteration's: a repair is always
            # followed by another iteration.)
            outputs = self._expert_outputs(experts, X, y, info)
            resp, log_norm = _routing.e_step(
                log_gate, self._log_lik_matrix(outputs, y, aux), self.top_k
            )
            log_lik = sample_weight @ log_norm / total
        return {
            "state": (experts, gate, aux),
            "history": history,
            "converged": converged,
            "n_iter": n_iter,
            "objective": history[-1] if history else prev,
            "log_likelihood": log_lik,
            "resp": resp,
            "empty": empty,
            "repairs": repairs,
        }

    def _repair_collapse(
        self, resp, log_gate, outputs, y, sample_weight, D, experts, gate, aux,
        frozen, frozen_aux, empty, repairs, n_iter,
    ):
        """Re-seed or drop the experts whose share fell below ``min_expert_weight``.

        Re-seeding (``on_collapse="reseed"``) gives a collapsed expert half of
        the rows of the expert with the largest weighted loss
        (:func:`_routing.seed_from_donor`); the next M-step refits both.
        Frozen experts are never re-seeded, and an expert is re-seeded at
        most once per EM run: one that collapses again is redundant, and
        re-seeding it over and over would stall EM. Dropping
        (``on_collapse="drop"``) removes the expert, its gate output and its
        responsibilities (rows renormalised).

        Returns ``(resp, experts, aux, frozen, frozen_aux)`` after a repair,
        None when nothing was done. ``repairs`` and ``empty`` are updated.
        """
        n_experts = resp.shape[1]
        if self.min_expert_weight <= 0 or n_experts < 2:
            return None
        share = sample_weight @ resp / sample_weight.sum()
        collapsed = np.flatnonzero(share < self.min_expert_weight)
        if collapsed.size == 0:
            return None
        if self.on_collapse == "drop":
            # Keep at least one expert: the largest one never goes.
            collapsed = [k for k in collapsed if k != np.argmax(share)]
            for k in sorted(collapsed, reverse=True):
                resp = _routing.drop_column(resp, k, log_gate)
                log_gate = np.delete(log_gate, k, axis=1)
                repairs.append((n_iter, k, "drop", None, share[k], _estimator_name(experts[k])))
                del experts[k]
                _routing.drop_gate_output(gate, k)
                if aux is not None:
                    aux = np.delete(aux, k)
                if frozen_aux is not None:
                    frozen_aux = np.delete(frozen_aux, k)
                frozen = np.delete(frozen, k)
                kept = {e - (e > k) for e in empty if e != k}
                empty.clear()
                empty.update(kept)
            return resp, experts, aux, frozen, frozen_aux
        reseeded = {r[1] for r in repairs}
        targets = [k for k in collapsed if not frozen[k] and k not in reseeded]
        if not targets:
            return None
        donors = [j for j in range(n_experts) if j not in set(collapsed)]
        if not donors:
            return None
        losses = self._row_losses(outputs, y)
        resp = resp.copy()
        done = False
        for k in targets:
            j = _routing.seed_from_donor(resp, k, donors, losses, sample_weight, D())
            if j is None:
                continue
            repairs.append((n_iter, k, "reseed", j, share[k], _estimator_name(experts[k])))
            empty.discard(k)
            done = True
        if not done:
            return None
        return resp, experts, aux, frozen, frozen_aux

    def _run_em_restarts(self, X, y, sample_weight, Z, z_stats, prototypes, rng, info, D):
        """EM from the fitted state (warm start, growing it if ``n_experts``
        grew) or the best of ``n_init`` restarts, in parallel when ``n_jobs``
        allows."""
        n_experts = len(prototypes)
        warm = (
            self.warm_start
            and hasattr(self, "experts_")
            and self.gate_.coef_.shape[1] == Z.shape[1]
            and len(self.experts_) <= n_experts
        )
        if warm and len(self.experts_) == n_experts:
            # Continue from copies, so that a failure leaves the fitted
            # experts and gate untouched. The copies take the current
            # parameters (e.g. experts__alpha or gate__alpha set since).
            gate = copy.deepcopy(self.gate_)
            gate.set_params(**_leaf_params(self.gate if self.gate is not None else SoftmaxGate()))
            gate.set_params(warm_start=True)
            experts = copy.deepcopy(self.experts_)
            for expert, proto in zip(experts, prototypes):
                expert.set_params(**_leaf_params(proto))
            state = (experts, gate, self._aux())
            with _threaded.single_threaded_blas():
                return self._em_run(X, y, sample_weight, Z, z_stats, state, None, rng, info, D)
        if warm:
            with _threaded.single_threaded_blas():
                return self._grow(X, y, sample_weight, Z, z_stats, prototypes, rng, info, D)
        # One RandomState per restart, drawn up front, so that the restarts
        # can run in parallel (n_jobs) with the same results as in series. A
        # single restart keeps using `rng` itself.
        if self.n_init == 1:
            rngs = [rng]
        else:
            seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_init)
            rngs = [np.random.RandomState(seed) for seed in seeds]
        args = (prototypes, X, y, sample_weight, Z, z_stats, n_experts, info, D)
        if self.n_init == 1:
            trials = [self._restart(*args, rngs[0], 0)]
        else:
            trials = Parallel(n_jobs=self.n_jobs)(
                delayed(self._restart)(*args, rngs[i_init], i_init)
                for i_init in range(self.n_init)
            )
        run = None
        for i_init, trial in enumerate(trials):
            if self.verbose:
                print(
                    f"Initialisation {i_init}: objective "
                    f"{trial['objective']:.6f}, {trial['n_iter']} iterations, "
                    f"converged={trial['converged']}"
                )
            if run is None or trial["objective"] > run["objective"]:
                run = trial
        return run

    def _fit(self, X, y, sample_weight):
        """The fit template shared by the regressor and the classifier."""
        t_start = time.perf_counter()
        with _restore_on_error(self):
            prototypes = self._expert_prototypes()
            if self.gate is not None:
                # The mixture fits the gate without its fit(): check it here.
                self.gate._validate_params()
            X, y = validate_data(
                self,
                X,
                y,
                accept_sparse=["csr", "csc"],
                dtype=np.float64,
                order="C",
                y_numeric=False,
                multi_output=True,
            )
            if sp.issparse(X):
                for k, p in enumerate(prototypes):
                    if not get_tags(p).input_tags.sparse:
                        raise TypeError(
                            f"X is sparse but expert {k} ({_estimator_name(p)}) "
                            "does not accept sparse input; pass a dense X or "
                            "experts that accept sparse matrices."
                        )
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            y, info = self._validate_targets(y, sample_weight)
            n_experts = len(prototypes)
            n_pos = int(np.count_nonzero(sample_weight))
            if n_pos < n_experts:
                raise ValueError(
                    f"Expected n_samples >= n_experts, got n_samples={n_pos} "
                    f"(with positive sample_weight) and n_experts={n_experts}."
                )
            if self.solver == "gd":  # mini-batch gradient ascent, skmoe/_gd.py
                return self._fit_gd(X, y, sample_weight, info, prototypes, t_start)
            positive = sample_weight[sample_weight > 0]
            if np.ptp(positive) > 1e-12 * positive.max():
                for k, p in enumerate(prototypes):
                    if not _accepts_sample_weight(p):
                        raise ValueError(
                            f"Expert {k} ({_estimator_name(p)}) does not accept "
                            "sample_weight, so non-uniform sample_weight cannot "
                            "be honoured; use experts that accept sample_weight."
                        )
            columns = self._gate_columns(X.shape[1])
            Z = self._gate_input(X, columns)
            z_stats = _weighted_standardization(Z, sample_weight)
            rng = check_random_state(self.random_state)

            # The scaled init columns, for re-seeding and growth: built only
            # when a repair needs them.
            D = _LazyInitColumns(self, X, y, sample_weight)
            run = self._run_em_restarts(
                X, y, sample_weight, Z, z_stats, prototypes, rng, info, D
            )

        experts, gate, aux = run["state"]
        for n_iter, k, action, donor, share, name in run["repairs"]:
            what = (
                f"re-seeded with half of the rows of expert {donor}, the expert "
                "with the largest weighted loss"
                if action == "reseed"
                else "dropped; the experts after it were renumbered"
            )
            warnings.warn(
                f"Expert {k} ({name}) collapsed at EM iteration {n_iter}: its share "
                f"of the training weight fell to {share:.3g}, below "
                f"min_expert_weight={self.min_expert_weight}; it was {what}.",
                UserWarning,
            )
        for k in sorted(run["empty"]):
            warnings.warn(
                f"Expert {k} ({_estimator_name(experts[k])}) owned no training "
                "weight (or too few rows to be fit) during EM: it collapsed and "
                "kept its previous fit (at the first M-step, a fit on all the "
                "data). Consider fewer experts or another init.",
                UserWarning,
            )
        usage = sample_weight @ run["resp"] / sample_weight.sum()
        for k in np.flatnonzero(usage < self.min_expert_weight):
            if k not in run["empty"] and len(experts) > 1:
                warnings.warn(
                    f"Expert {k} ({_estimator_name(experts[k])}) holds only "
                    f"{usage[k]:.3g} of the training weight after fitting, below "
                    f"min_expert_weight={self.min_expert_weight}, and could not be "
                    "repaired (already re-seeded once in this run, frozen, or no "
                    "EM iteration left); consider fewer experts.",
                    UserWarning,
                )
        if not run["converged"]:
            warnings.warn(
                "EM did not converge in max_iter="
                f"{self.max_iter} iterations (last change of the objective "
                f"above tol={self.tol}). Increase max_iter or tol.",
                ConvergenceWarning,
            )
        # The fitted gate keeps the user's own warm_start setting.
        gate.set_params(warm_start=self.gate is not None and self.gate.warm_start)
        self._clear_gd_state()  # the state of an earlier solver="gd" fit
        self.experts_ = experts
        self.gate_ = gate
        self.gate_features_ = columns
        self.n_experts_ = len(experts)
        self._set_aux(aux, info)
        self.converged_ = run["converged"]
        self.n_iter_ = run["n_iter"]
        self.log_likelihood_history_ = np.asarray(run["history"])
        self.log_likelihood_ = float(run["log_likelihood"])
        self.expert_usage_ = usage
        self.repairs_ = [
            {"iteration": r[0], "expert": r[1], "action": r[2], "donor": r[3]}
            for r in run["repairs"]
        ]
        self.fit_time_ = time.perf_counter() - t_start
        return self

    def _grow(self, X, y, sample_weight, Z, z_stats, prototypes, rng, info, D):
        """Warm start with more experts: keep the fitted ones, seed the new ones.

        The fitted mixture's responsibilities are computed on the training
        data; every new expert takes half of the rows of the expert that fits
        worst (largest weighted loss, :func:`_routing.seed_from_donor`), and
        its gate output starts as a copy of that expert's, the two sharing
        its probability. EM then continues; with ``grow="freeze"`` the fitted
        experts (and their noise variances) are not refit.
        """
        n_old = len(self.experts_)
        n_experts = len(prototypes)
        experts = copy.deepcopy(self.experts_)
        for p in prototypes[n_old:]:
            e = clone(p)
            _set_random_states(e, rng)
            experts.append(e)
        gate = copy.deepcopy(self.gate_)
        gate.set_params(warm_start=True)
        aux_old = self._aux()
        outputs = self._expert_outputs(experts[:n_old], X, y, info)
        log_gate = _kernels.log_softmax_rows(gate._logits(Z))
        resp_old, _ = _routing.e_step(
            log_gate, self._log_lik_matrix(outputs, y, aux_old), self.top_k
        )
        resp = np.zeros((X.shape[0], n_experts))
        resp[:, :n_old] = resp_old
        losses = np.zeros_like(resp)
        losses[:, :n_old] = self._row_losses(outputs, y)
        for t in range(n_old, n_experts):
            donor = _routing.seed_from_donor(
                resp, t, list(range(t)), losses, sample_weight, D()
            )
            if donor is None:
                # Nothing can be split: the new expert starts on every row.
                resp[:, t] = 1.0 / n_experts
                resp[:, :t] *= 1.0 - 1.0 / n_experts
                donor = int(np.argmax(sample_weight @ resp[:, :t]))
            losses[:, t] = losses[:, donor]
            _routing.split_gate_output(gate, donor, 1)
        frozen = np.zeros(n_experts, dtype=bool)
        frozen_aux = None
        if self.grow == "freeze":
            frozen[:n_old] = True
            if aux_old is not None:
                frozen_aux = np.concatenate([aux_old, np.zeros(n_experts - n_old)])
        return self._em_run(
            X, y, sample_weight, Z, z_stats, (experts, gate, None), resp, rng, info, D,
            frozen=frozen, frozen_aux=frozen_aux,
        )

    def _restart(
        self, prototypes, X, y, sample_weight, Z, z_stats, n_experts, info, D, rng, i_init
    ):
        """One EM run from a fresh initialisation (restart ``i_init``)."""
        experts = [clone(p) for p in prototypes]
        for e in experts:
            _set_random_states(e, rng)
        gate = clone(self.gate) if self.gate is not None else SoftmaxGate()
        gate.set_params(warm_start=True)
        with _threaded.single_threaded():
            # A one-element list that _em_run empties: no reference to the
            # initial responsibilities outlives their first use.
            resp = [self._initial_responsibilities(X, y, sample_weight, n_experts, rng, i_init)]
        with _threaded.single_threaded_blas():
            return self._em_run(
                X, y, sample_weight, Z, z_stats, (experts, gate, None), resp, rng, info, D
            )

    @abstractmethod
    def _aux(self):
        """Fitted auxiliary parameters, for a warm start."""

    @abstractmethod
    def _fitted_info(self):
        """The target info of the fitted model (the classes), for inference."""

    @abstractmethod
    def _set_aux(self, aux, info):
        """Store the auxiliary parameters and target info as fitted attributes."""

    # ------------------------------------------------------------------
    # Shared inference
    # ------------------------------------------------------------------
    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=np.float64, order="C", reset=False
        )

    def _log_gate(self, X):
        Z = self._gate_input(X, self.gate_features_)
        return _threaded.log_softmax_rows(self.gate_._logits(Z))

    def _routed_gate(self, X):
        """Gate weights for prediction: renormalised over each row's ``top_k``."""
        Z = self._gate_input(X, self.gate_features_)
        return _routing.routed_gate(self.gate_._logits(Z), self.top_k)

    def route(self, X):
        """Route samples to experts: which experts serve each row, and how much.

        Under ``top_k`` every row is served by its ``top_k`` most probable
        experts, with the gate probabilities renormalised over them; without
        it (``top_k=None``) every expert serves every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        routing : :class:`~sklearn.utils.Bunch`
            With the fields

            counts : ndarray of shape (`n_experts_`,)
                How many rows each expert serves (a positive routed weight):
                the number of rows that :meth:`predict` runs it on.
            experts : ndarray of shape (n_samples, k)
                Each row's experts, most probable first, with
                ``k = min(top_k, n_experts_)`` (``n_experts_`` when dense).
            weights : ndarray of shape (n_samples, `n_experts_`)
                The routed gate weights that :meth:`predict` uses: zero
                outside each row's experts, rows summing to one.
            proba : ndarray of shape (n_samples, `n_experts_`)
                The gate's full probabilities ``pi_k(x)``, as
                :meth:`predict_gate`.

        Examples
        --------
        >>> import numpy as np
        >>> from skmoe import MixtureOfExpertsRegressor
        >>> rng = np.random.RandomState(0)
        >>> X = rng.uniform(-3, 3, size=(300, 1))
        >>> y = np.abs(X[:, 0]) + 0.1 * rng.randn(300)
        >>> moe = MixtureOfExpertsRegressor(n_experts=3, top_k=1, random_state=0)
        >>> routing = moe.fit(X, y).route(X)
        >>> int(routing.counts.sum())  # one expert per row
        300
        >>> routing.experts.shape, routing.proba.shape
        ((300, 1), (300, 3))
        """
        X = self._check_X(X)
        Z = self._gate_input(X, self.gate_features_)
        logits = self.gate_._logits(Z)
        weights = _routing.routed_gate(logits, self.top_k)
        k = _routing.effective_k(self.top_k, self.n_experts_) or self.n_experts_
        order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
        return Bunch(
            counts=_routing.route_counts(weights),
            experts=order,
            weights=weights,
            proba=_kernels.softmax_rows(logits),
        )

    def predict_gate(self, X):
        """Gate probabilities ``pi_k(x)`` of every expert.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_experts)
            How much each expert owns each sample; rows sum to one.
        """
        return np.exp(self._log_gate(self._check_X(X)))

    def predict_expert(self, X):
        """Index of the expert with the largest gate probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        experts : ndarray of shape (n_samples,)
            Expert indices in ``range(n_experts_)``.
        """
        return np.argmax(self._log_gate(self._check_X(X)), axis=1)

    def _posterior(self, X, y):
        X = self._check_X(X)
        y = self._encode_y(y, X.shape[0])
        outputs = self._expert_outputs(self.experts_, X, y, self._fitted_info())
        return _routing.e_step(
            self._log_gate(X), self._log_lik_matrix(outputs, y, self._aux()), self.top_k
        )

    def responsibilities(self, X, y):
        """Posterior probability that each expert generated each ``(x, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_experts)
            ``pi_k(x) p_k(y | x) / sum_j pi_j(x) p_j(y | x)``; rows sum to one.
            Under ``top_k``, the sparse-EM posterior: kept on each row's
            ``top_k`` most probable experts and renormalised.
        """
        return self._posterior(X, y)[0]

    def log_prob(self, X, y):
        """Log-density of the mixture, ``log p(y | x)``, per sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            ``log sum_k pi_k(x) p_k(y | x)``. Under ``top_k``, the sum runs over each
            row's ``top_k`` most probable experts (by posterior): the
            sparse-EM bound that fitting maximises, never above the dense
            value.
        """
        return self._posterior(X, y)[1]

    def _n_parameters(self):
        """Free parameters: gate, experts and auxiliary parameters.

        The gate has ``(n_gate_features + 1) * (n_experts - 1)`` free
        parameters (the softmax is invariant to a common shift of its
        columns); see ``_count_expert_parameters`` for the experts.
        """
        check_is_fitted(self)
        n_gate = (self.gate_.coef_.shape[1] + 1) * (self.n_experts_ - 1)
        n_classes = len(self.classes_) if hasattr(self, "classes_") else None
        n_experts = sum(_count_expert_parameters(e, n_classes) for e in self.experts_)
        return n_gate + n_experts + self._n_aux_parameters_per_expert * self.n_experts_

    def bic(self, X, y):
        """Bayesian information criterion on ``(X, y)``; lower is better.

        ``-2 log L + p log n`` with ``p`` the number of free parameters: the
        gate's ``(n_gate_features + 1) * (n_experts - 1)``, the experts'
        (coefficients and intercepts of linear experts; leaves of trees and of
        tree ensembles; ``n_samples_fit_ / n_neighbors`` for neighbours), and
        one noise variance per expert for the regressor.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        bic : float
            The criterion.
        """
        n = _num_samples_of(X)
        return float(-2.0 * self.log_prob(X, y).sum() + self._n_parameters() * np.log(n))

    def aic(self, X, y):
        """Akaike information criterion on ``(X, y)``; lower is better.

        ``-2 log L + 2 p``, with ``p`` counted as in :meth:`bic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        aic : float
            The criterion.
        """
        return float(-2.0 * self.log_prob(X, y).sum() + 2.0 * self._n_parameters())

    def icl(self, X, y):
        """Integrated completed likelihood on ``(X, y)``; lower is better.

        :meth:`bic` plus twice the classification entropy
        ``-sum_i sum_k h_ik log h_ik`` of the responsibilities (as flexmix and
        MoEClust report it): it penalises mixtures whose experts overlap.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        icl : float
            The criterion.
        """
        resp, log_norm = self._posterior(X, y)
        n = resp.shape[0]
        entropy = -np.sum(resp * np.log(np.clip(resp, 1e-300, None)))
        return float(
            -2.0 * log_norm.sum() + self._n_parameters() * np.log(n) + 2.0 * entropy
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Sparse X is accepted when every expert accepts it (the gate does).
        try:
            prototypes = self._expert_prototypes()
        except (TypeError, ValueError):
            prototypes = []
        tags.input_tags.sparse = bool(prototypes) and all(
            get_tags(p).input_tags.sparse for p in prototypes
        )
        tags.input_tags.allow_nan = False
        return tags


def _num_samples_of(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)
