"""The mixture-of-experts base class: one EM loop, small per-task hooks."""

import copy
import time
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.cluster import KMeans
from sklearn.ensemble._base import _set_random_states
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from . import _linear, _threaded
from ._gating import SoftmaxGate, _weighted_standardization

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

    Returns None when the expert cannot take sample weights. A Pipeline gets
    ``step__sample_weight`` for every step whose ``fit`` accepts it, and
    qualifies only when its final step does.
    """
    if isinstance(expert, Pipeline):
        steps = [(name, est) for name, est in expert.steps if est not in (None, "passthrough")]
        if not steps or not has_fit_parameter(steps[-1][1], "sample_weight"):
            return None
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


def _estimator_name(est):
    if isinstance(est, Pipeline):
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in est.steps) + ")"
    return type(est).__name__


def _count_expert_parameters(expert):
    """Number of free parameters of a fitted expert, for BIC / AIC / ICL.

    Linear models count their coefficients and intercepts. Trees count their
    leaves (one fitted value per leaf: the split thresholds are not counted),
    and tree ensembles the leaves of all their trees. Neighbours count
    ``n_samples_fit_ / n_neighbors``, the effective degrees of freedom of a
    k-nearest-neighbour smoother. A Pipeline counts its final step. Any
    other expert raises ``NotImplementedError``.
    """
    if isinstance(expert, Pipeline):
        return _count_expert_parameters(expert.steps[-1][1])
    if hasattr(expert, "coef_"):
        n = np.size(expert.coef_)
        if getattr(expert, "fit_intercept", True):
            n += np.size(getattr(expert, "intercept_", 0.0))
        return int(n)
    if hasattr(expert, "tree_"):
        return int(expert.tree_.n_leaves)
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


def _quantile_init_labels(D, sample_weight, n_experts):
    """Deterministic, weight-aware initial partition.

    The rows are ordered along the weighted first principal axis of ``D`` and
    cut into ``n_experts`` slices of equal weight; the slices' weighted means
    seed Lloyd's algorithm. Everything here is a function of the weighted
    empirical distribution, so a weight of 2 and a duplicated row give the
    same start.
    """
    total = sample_weight.sum()
    mean = sample_weight @ D / total
    Dc = D - mean
    cov = (Dc * sample_weight[:, None]).T @ Dc / total
    _, vecs = np.linalg.eigh(cov)
    axis = vecs[:, -1]
    # Fix the sign so the result does not depend on the eigen-solver.
    if axis[np.argmax(np.abs(axis))] < 0:
        axis = -axis
    t = Dc @ axis
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
            centers[k] = w @ D / w.sum()
        else:
            # An empty slice (ties): seed at the slice's quantile.
            q = min(np.searchsorted(cw, total * (k + 0.5) / n_experts), len(t) - 1)
            centers[k] = D[order[q]]
    km = KMeans(n_clusters=n_experts, init=centers, n_init=1, tol=0.0, algorithm="lloyd")
    return km.fit(D, sample_weight=sample_weight).labels_


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
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
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
        warm_start=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
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
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

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
        return np.ascontiguousarray(X[:, columns])

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
            mean, scale = _weighted_standardization(D, sample_weight)
            D = (D - mean) / scale
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
    def _m_step_experts(self, experts, fitted, X, y, sample_weight, resp, assign, rng, empty):
        """Refit every expert; return the fitted experts and their weights.

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
            if w.sum() <= _EMPTY_EXPERT_SHARE * total:
                empty.add(k)
                if fitted:
                    jobs.append(None)
                    continue
                w = sample_weight
            jobs.append((expert, w))
        # LinearRegression / Ridge experts: all weighted least-squares
        # systems at once (same coefficients as their own fit, to 1e-8).
        batch = [
            k for k, job in enumerate(jobs) if job is not None and _linear.batchable(job[0])
        ]
        done = set()
        if batch and y.ndim == 1:
            ok = _linear.fit_linear_experts(
                [jobs[k][0] for k in batch], X, y, np.column_stack([jobs[k][1] for k in batch])
            )
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
        return out, weights

    def _em_run(self, X, y, sample_weight, Z, z_stats, state, resp, rng, info):
        """Run EM from ``resp`` (or from ``state`` when ``resp`` is None)."""
        experts, gate, aux = state
        total = sample_weight.sum()
        history = []
        empty = set()
        converged = False
        prev = -np.inf
        n_iter = 0
        fitted = resp is None
        if fitted:
            # Warm start: one E-step with the fitted parameters.
            outputs = self._expert_outputs(experts, X, y, info)
            log_gate = _threaded.log_softmax_rows(gate._logits(Z))
            resp, log_norm = _threaded.e_step(log_gate, self._log_lik_matrix(outputs, y, aux))
            prev = (sample_weight @ log_norm - gate._penalty) / total
        for n_iter in range(1, self.max_iter + 1):
            tic = time.perf_counter()
            assign = self._assignments(resp, rng, self.assignment)
            experts, weights = self._m_step_experts(
                experts, fitted, X, y, sample_weight, resp, assign, rng, empty
            )
            fitted = True
            outputs = self._expert_outputs(experts, X, y, info)
            aux = self._update_aux(outputs, y, weights, aux, info)
            gate._fit_arrays(Z, assign, sample_weight, z_stats)
            log_gate = _threaded.log_softmax_rows(gate._logits(Z))
            resp, log_norm = _threaded.e_step(log_gate, self._log_lik_matrix(outputs, y, aux))
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
            if abs(change) < self.tol:
                converged = True
                break
            prev = objective
        return {
            "state": (experts, gate, aux),
            "history": history,
            "converged": converged,
            "n_iter": n_iter,
            "objective": history[-1] if history else prev,
            "log_likelihood": log_lik,
            "resp": resp,
            "empty": empty,
        }

    def _fit(self, X, y, sample_weight):
        """The fit template shared by the regressor and the classifier."""
        t_start = time.perf_counter()
        with _restore_on_error(self):
            prototypes = self._expert_prototypes()
            X, y = validate_data(
                self, X, y, dtype=np.float64, order="C", y_numeric=False, multi_output=True
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
            if not np.allclose(sample_weight[sample_weight > 0], sample_weight.max()):
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

            warm = (
                self.warm_start
                and hasattr(self, "experts_")
                and len(self.experts_) == n_experts
                and self.gate_.coef_.shape[1] == Z.shape[1]
            )
            if warm:
                # Continue from copies, so that a failure leaves the fitted
                # experts and gate untouched.
                gate = copy.deepcopy(self.gate_)
                gate.set_params(warm_start=True)
                state = (copy.deepcopy(self.experts_), gate, self._aux())
                with _threaded.single_threaded_blas():
                    run = self._em_run(X, y, sample_weight, Z, z_stats, state, None, rng, info)
            else:
                # One RandomState per restart, drawn up front, so that the
                # restarts can run in parallel (n_jobs) with the same results
                # as in series. A single restart keeps using `rng` itself.
                if self.n_init == 1:
                    rngs = [rng]
                else:
                    seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_init)
                    rngs = [np.random.RandomState(seed) for seed in seeds]
                args = (prototypes, X, y, sample_weight, Z, z_stats, n_experts, info)
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

        experts, gate, aux = run["state"]
        for k in sorted(run["empty"]):
            warnings.warn(
                f"Expert {k} ({_estimator_name(experts[k])}) owned no training "
                "weight during EM (it collapsed); it kept its previous fit. "
                "Consider fewer experts or another init.",
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
        self.experts_ = experts
        self.gate_ = gate
        self.gate_features_ = columns
        self.n_experts_ = n_experts
        self._set_aux(aux, info)
        self.converged_ = run["converged"]
        self.n_iter_ = run["n_iter"]
        self.log_likelihood_history_ = np.asarray(run["history"])
        self.log_likelihood_ = float(run["log_likelihood"])
        self.fit_time_ = time.perf_counter() - t_start
        return self

    def _restart(self, prototypes, X, y, sample_weight, Z, z_stats, n_experts, info, rng, i_init):
        """One EM run from a fresh initialisation (restart ``i_init``)."""
        experts = [clone(p) for p in prototypes]
        for e in experts:
            _set_random_states(e, rng)
        gate = clone(self.gate) if self.gate is not None else SoftmaxGate()
        gate.set_params(warm_start=True)
        with _threaded.single_threaded():
            resp = self._initial_responsibilities(X, y, sample_weight, n_experts, rng, i_init)
        with _threaded.single_threaded_blas():
            return self._em_run(
                X, y, sample_weight, Z, z_stats, (experts, gate, None), resp, rng, info
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
        return validate_data(self, X, dtype=np.float64, order="C", reset=False)

    def _log_gate(self, X):
        Z = self._gate_input(X, self.gate_features_)
        return _threaded.log_softmax_rows(self.gate_._logits(Z))

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
        return _threaded.e_step(
            self._log_gate(X), self._log_lik_matrix(outputs, y, self._aux())
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
            ``log sum_k pi_k(x) p_k(y | x)``.
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
        n_experts = sum(_count_expert_parameters(e) for e in self.experts_)
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
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


def _num_samples_of(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)
