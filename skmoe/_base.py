"""The mixture-of-experts base class: parameters, the fit template, inference.

The estimators are thin: parameters, documentation and the likelihood they
use (:mod:`skmoe._likelihood`). This module validates, chooses the solver
(EM, :mod:`skmoe._em`; gradient, :mod:`skmoe._sgd`), runs the restarts or
the warm start (growing the mixture, :mod:`skmoe._repair`), stores the
fitted attributes, and answers the inference and model-selection questions.
"""

import copy
import dataclasses
import re
import time
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs
from sklearn.base import MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    check_array,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from . import _array_api, _dask, _frames, _gather, _pool, _repair, _routing, _threaded
from ._composition import ExpertsComposition, is_named
from ._em import EMConfig, EMData, EMState, run_em
from ._experts import (
    check_sample_weight_support,
    count_parameters,
    estimator_name,
    leaf_params,
    make_experts,
)
from ._gating import SoftmaxGate, supports_gradient
from ._init import initial_responsibilities
from ._magnitude import check_magnitude, check_weighted_magnitude
from ._messages import convergence_message, warn_disagreement
from ._ridge import StandardizedRidge, column_scale, with_data_scale
from ._sgd import (
    SGDConfig,
    check_partial_fit_experts,
    initial_state,
    resumed_state,
    run_sgd,
    split_validation,
)

#: Fitted attributes that only ``solver="gd"`` sets; an EM fit removes them.
_GD_ATTRIBUTES = ("_gd_state", "validation_scores_", "best_validation_score_")


_NAMED = re.compile(r"\b(X|y|sample_weight)\b")


@contextmanager
def named_errors(name):
    """Prefix ``name`` to a ValueError/TypeError that names no input."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        if _NAMED.search(str(exc)):
            raise
        raise type(exc)(f"{name}: {exc}") from exc


def check_weights(sample_weight, X):
    """scikit-learn's check of ``sample_weight``, its errors naming it."""
    if sample_weight is not None:
        refuse_complex(sample_weight, "sample_weight")
    with named_errors("sample_weight"):
        return _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )


def refuse_complex(a, name):
    """Refuse complex values, naming the input (scikit-learn's message
    does not)."""
    dtype = getattr(a, "dtype", None)
    if dtype is None and isinstance(a, (list, tuple)):
        dtype = np.asarray(a).dtype
    if dtype is not None and not isinstance(dtype, np.dtype):
        # An array API array (PyTorch, CuPy): its dtype's name says it.
        if "complex" in str(dtype):
            dtype = np.complex128
        else:
            return
    if dtype is not None and np.issubdtype(dtype, np.complexfloating):
        raise ValueError(
            f"{name} holds complex values (dtype {dtype}). Complex data not "
            "supported: pass real numbers."
        )


def check_target_dims(y):
    """Refuse a ``y`` of more than 2 dimensions, naming it (before
    ``validate_data``, whose message does not)."""
    ndim = np.ndim(y) if hasattr(y, "shape") or isinstance(y, (list, tuple)) else 1
    if ndim > 2:
        raise ValueError(
            f"y must be 1-dimensional (one target per sample); got an array "
            f"with {ndim} dimensions."
        )


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


def _em_restart(init, data, prototypes, gate, config, rng, i_init, pool=None):
    """One EM run from a fresh initialisation (restart ``i_init``); with
    ``init="auto"``, one pool of short runs (:mod:`skmoe._pool`)."""
    if (
        isinstance(init, str) and init == "auto" and data.passes is None
        and _pool.eligible(prototypes, gate, data.X)
    ):
        with _threaded.single_threaded(), _threaded.single_threaded_blas():
            return _pool.run_pool(data, prototypes, gate, config, rng, pool)
    state = EMState(make_experts(prototypes, rng), copy.deepcopy(gate))
    with _threaded.single_threaded():
        # A one-element list that run_em empties: no reference to the
        # initial responsibilities outlives their first use.
        resp = [data.start(init, len(prototypes), rng, i_init)]
    with _threaded.single_threaded_blas():
        return run_em(data, state, config, rng, resp)


def _fix_scales(prototypes, X, sample_weight):
    """The prototypes, StandardizedRidge experts without a ``scale`` set to
    the training data's weighted column scales (:func:`with_data_scale`)."""
    if not any(type(p) is StandardizedRidge and p.scale is None for p in prototypes):
        return prototypes
    X_num = _frames.numeric_array(X)
    if X_num is None:  # columns that are not numbers: the experts' own scale
        return prototypes
    return with_data_scale(prototypes, column_scale(X_num, sample_weight))


def _warn_repairs(result, min_expert_weight, solver):
    step = "EM iteration" if solver == "em" else "epoch"
    for r in result.repairs:
        if r.action == "undone":
            continue  # the usage warning reports the expert kept collapsed
        what = (
            f"re-seeded with half of the rows of expert {r.donor}, the expert "
            "with the largest weighted loss"
            if r.action == "reseed"
            else "dropped; the experts after it were renumbered"
        )
        if r.action == "reseed" and any(
            u.action == "undone" and u.expert == r.expert and u.iteration == r.iteration
            for u in result.repairs
        ):
            what += (
                " That repair was undone: the repaired run ended at a lower "
                "penalised objective than the collapsed fit continued without it"
            )
        _gather.warn(
            f"Expert {r.expert} ({r.name}) collapsed at {step} {r.iteration}: its "
            f"share of the training weight fell to {r.share:.3g}, below "
            f"min_expert_weight={min_expert_weight}; it was {what}.",
            UserWarning,
        )


def _warn_usage(result, min_expert_weight):
    experts = result.state.experts
    for k in sorted(result.empty):
        _gather.warn(
            f"Expert {k} ({estimator_name(experts[k])}) owned no training "
            "weight (or too few rows to be fit) during EM: it collapsed and "
            "kept its previous fit (at the first M-step, a fit on all the "
            "data; with init='auto', its fit at the best optimum, where it "
            "collapsed). Consider fewer experts or another init.",
            UserWarning,
        )
    for k in np.flatnonzero(result.usage < min_expert_weight):
        if k not in result.empty and len(experts) > 1:
            _gather.warn(
                f"Expert {k} ({estimator_name(experts[k])}) holds only "
                f"{result.usage[k]:.3g} of the training weight after fitting, below "
                f"min_expert_weight={min_expert_weight}, and could not be "
                "repaired (already re-seeded once in this run, frozen, no "
                "iteration left, or its repair ended at a lower penalised "
                "objective and was undone; with init='auto', every start that "
                "gave it rows of its own ended lower); consider fewer experts.",
                UserWarning,
            )


def _warn_weak(result):
    """Warn about experts that fit their rows worse than the rows' mean."""
    for k, mse, var in result.weak:
        expert = result.state.experts[k]
        own = getattr(expert, "steps", [(None, expert)])[-1][1]
        n_iter, max_iter = getattr(own, "n_iter_", None), getattr(own, "max_iter", None)
        why = ""
        if n_iter is not None and max_iter is not None and np.max(n_iter) < max_iter:
            why = (
                f" Its own training stopped early (n_iter_={np.max(n_iter)} of "
                f"max_iter={max_iter}): iterative experts such as MLPRegressor "
                "stop on the noise that weighted mini-batches add to their loss "
                "when y is not scaled."
            )
        _gather.warn(
            f"Expert {k} ({estimator_name(expert)}) fits the rows it owns worse "
            f"than their mean (weighted mean squared error {mse:.4g} against "
            f"their variance {var:.4g}).{why} Standardise y (e.g. "
            "sklearn.compose.TransformedTargetRegressor with StandardScaler), "
            "or change the expert's settings.",
            ConvergenceWarning,
            )


def _gate_input(X, columns):
    """The gate's columns of ``X`` (all of it when ``columns`` is None)."""
    if columns is None:
        return X
    Z = X[:, columns]
    return Z if sp.issparse(Z) else np.ascontiguousarray(Z)


def _print_restart(verbose, i_init, n_init, result, unit):
    if verbose:
        label = f"[init {i_init + 1}/{n_init}]" if n_init > 1 else f"Initialisation {i_init}:"
        print(
            f"{label} objective {result.objective:.6f}, "
            f"{result.n_iter} {unit}, converged={result.converged}",
            flush=True,
        )


def _restart_config(config, i_init, n_init):
    """``config`` with the label of restart ``i_init`` in its progress lines."""
    if n_init == 1:
        return config
    return dataclasses.replace(config, label=f"[init {i_init + 1}/{n_init}] ")


def _gate_columns(gate_features, n_features, names):
    """Column indices of the gate's input, or None for all columns.

    ``gate_features`` as the estimator's parameter; ``names`` the feature
    names of ``X`` (None when it has none).
    """
    if gate_features is None:
        return None
    cols = np.asarray(gate_features)
    if cols.ndim == 1 and cols.size == 0:
        # No column: the gate learns constant mixing weights.
        return np.zeros(0, dtype=np.intp)
    if cols.ndim != 1:
        raise ValueError(
            "gate_features must be a 1-D list of column indices, column names "
            "or a boolean mask."
        )
    if cols.dtype.kind in "OUS":
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


def free_parameters(experts, gate, likelihood):
    """Free parameters of a mixture, for BIC / AIC / ICL: the gate's own
    count (:meth:`SoftmaxGate.n_parameters`; 0 for one expert), the
    experts' (:func:`skmoe._experts.count_parameters`) and the likelihood's
    parameters of each expert (the regressor's noise variance)."""
    return (
        gate.n_parameters()
        + sum(count_parameters(e, likelihood.n_classes) for e in experts)
        + likelihood.n_parameters_per_expert * len(experts)
    )


def training_bic(result, data):
    """BIC of a run's fitted state on its training data: ``-2 sum_i w_i log
    p(y_i | x_i) + p log(sum_i w_i)``, a weight counting as that many
    repeated rows (with unit weights, :meth:`bic` on the training data).
    The run's last E-step gave the log-likelihood of its fitted state
    (``log_likelihood``, per unit weight): no pass over the data here."""
    state = result.state
    log_lik = float(result.log_likelihood) * data.total
    n_params = free_parameters(state.experts, state.gate, data.likelihood)
    return -2.0 * log_lik + n_params * float(np.log(data.total))


def _warn_degenerate(experts, degenerate):
    """One warning per degenerate expert of the kept fit."""
    for k in degenerate:
        _gather.warn(
            f"Expert {k} ({estimator_name(experts[k])}) is "
            "degenerate: it holds fewer effective rows than its "
            "coefficients + 1, or its noise variance is within "
            f"{_pool.FLOOR_MULTIPLE:g}x of its floor (it fits a handful of "
            "rows exactly). Its likelihood is spurious; consider fewer "
            "experts, another random_state or a larger reg_variance.",
            UserWarning,
        )


class _MixtureInferenceMixin:
    """What a fitted mixture answers: gate, routing, posteriors, criteria.

    Reads only the fitted attributes (``experts_``, ``gate_``,
    ``gate_features_``, the fitted likelihood) and talks to the gate and the
    likelihood through their protocols.
    """

    def _check_X(self, X):
        check_is_fitted(self)
        _array_api.refuse_fitted_namespace(self, X)
        refuse_complex(X, "X")
        if getattr(self, "_frame_template", None) is None:
            with named_errors("X"):
                X = validate_data(
                    self, X, accept_sparse=["csr", "csc"], dtype=np.float64, order="C",
                    reset=False,
                )
            check_magnitude(X, "X")
            return X
        # Fitted on a DataFrame: the experts get one.
        return validate_data(self, self._as_frame(X), reset=False, skip_check_array=True)

    def _as_frame(self, X, first=False):
        """``X`` as given when it is a DataFrame (or for a first fit); an
        array for a mixture fitted on a frame becomes a frame with the fitted
        columns and dtypes (after the usual warning about feature names)."""
        if first or _frames.is_dataframe(X):
            return X
        validate_data(self, X, reset=False, skip_check_array=True)
        return _frames.frame_like(X, self._frame_template)

    def _log_gate(self, X):
        gate_in = getattr(self, "_gate_in", None)
        if gate_in is None:  # a mixture pickled before the gate input was stored
            return self.gate_.log_proba(_gate_input(X, self.gate_features_))
        return self.gate_.log_proba(gate_in(X))

    def _routed_gate(self, X):
        """Gate weights for prediction: renormalised over each row's ``top_k``."""
        return _routing.routed_gate(self._log_gate(X), self.top_k)

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
            paths : list of tuple of int
                Only with a gate that has ``paths_`` (a
                :class:`HierarchicalGate`): expert ``k``'s path from the
                root of the gate tree, the child taken at every depth.

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
        log_gate = self._log_gate(self._check_X(X))
        weights = _routing.routed_gate(log_gate, self.top_k)
        k = _routing.effective_k(self.top_k, self.n_experts_) or self.n_experts_
        order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
        routing = Bunch(
            counts=_routing.route_counts(weights),
            experts=order,
            weights=weights,
            proba=np.exp(log_gate),
        )
        if hasattr(self.gate_, "paths_"):
            routing.paths = list(self.gate_.paths_)
        return routing

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
        xp = _array_api.fitted_namespace(self)
        if xp is not None:
            X, y = _array_api.check_X(self, xp, X, y)
            if is_classifier(self):
                return _array_api.classifier_posterior(xp, self, X, y)
            return _array_api.posterior(xp, self, X, y)
        X = self._check_X(X)
        likelihood = self._likelihood
        y = likelihood.encode_targets(y, X.shape[0])
        outputs = likelihood.outputs(self.experts_, X)
        log_lik = likelihood.log_lik(outputs, y, self._fitted_theta())
        return _routing.e_step(self._log_gate(X), log_lik, self.top_k)

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
        """Free parameters: gate, experts and the likelihood's own parameters.

        The gate counts its own (:meth:`SoftmaxGate.n_parameters`); see
        :func:`skmoe._experts.count_parameters` for the experts.
        """
        check_is_fitted(self)
        return free_parameters(self.experts_, self.gate_, self._likelihood)

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


class _PartialFitMixin:
    """``partial_fit`` (``solver="gd"``) of the mixtures: one pass of the
    gradient solver (:func:`skmoe._sgd.run_sgd`) over each batch, on copies
    of the fitted state committed only at the end. Uses the base class's
    validation (``_validate_frame``, ``_validate_X_y``, ``_data``) and
    ``_set_fitted``.
    """

    def _check_gd_solver(self):
        if self.solver != "gd":
            raise AttributeError(
                "partial_fit is only available for solver='gd'; this mixture has "
                f"solver={self.solver!r}."
            )
        return True

    def _partial_fit(self, X, y, sample_weight=None, classes=None):
        """One pass of mini-batch gradient steps over ``(X, y)``.

        All checks run before anything changes, and the pass works on copies
        of the fitted experts, gate and state, committed only at the end: an
        error leaves the fitted mixture exactly as it was.
        """
        t_start = time.perf_counter()
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True (there is no "
                "held-out data in a stream); set early_stopping=False."
            )
        first = not hasattr(self, "experts_")
        with _restore_on_error(self):
            data, gate_in = self._validate_partial_data(
                X, y, sample_weight, classes, first
            )
            config = SGDConfig.from_estimator(self)
            classes = getattr(data.likelihood, "classes_", None)
            if first:
                state, sgd = self._partial_start(data, config, classes)
            else:
                state, sgd = self._partial_resume(data, config)
            n_iter = 0 if first else self.n_iter_
            sgd.weight_seen += float(data.sample_weight.sum())
            result = run_sgd(data, state, sgd, config, 1, sgd.weight_seen, None, classes)
            self._set_fitted(result, data, gate_in, t_start)
            self._gd_state = sgd
            self.converged_ = False
            self.n_iter_ = n_iter + 1
            self.validation_scores_ = None
            self.best_validation_score_ = None
        return self

    def _validate_partial_data(self, X, y, sample_weight, classes, first):
        if first:
            self._check_gd_gate()
            check_partial_fit_experts(
                self._expert_prototypes(), isinstance(self.experts, list)
            )
        if first:
            self.__dict__.pop("_frame_template", None)
        check_target_dims(y)
        refuse_complex(y, "y")
        if _frames.is_dataframe(X) or (
            not first and getattr(self, "_frame_template", None) is not None
        ):
            X, y = self._validate_frame(self._as_frame(X, first), y, reset=first)
        else:
            refuse_complex(X, "X")
            X, y = self._validate_X_y(X, y, first)
            check_magnitude(X, "X")
        if X.shape[0] < 2:
            # A batch of one row is refused (issue 3): collect rows into
            # mini-batches of at least two.
            raise ValueError(
                f"partial_fit needs a batch of at least 2 samples; got "
                f"{X.shape[0]}. Collect single rows into mini-batches."
            )
        sample_weight = check_weights(sample_weight, X)
        self._check_weighted_squares(sample_weight, X, y)
        # What the first batch fixed (the classes, the regressor's variance
        # floor) stays fixed.
        likelihood = self._make_likelihood() if first else copy.deepcopy(self._likelihood)
        y = self._validate_partial_targets(likelihood, y, sample_weight, classes, first)
        return self._data(X, y, sample_weight, likelihood, first)

    def _partial_start(self, data, config, classes):
        """The first ``partial_fit`` call initialises the mixture on its batch."""
        prototypes = self._expert_prototypes()
        n_pos = int(np.count_nonzero(data.sample_weight))
        if n_pos < max(2, len(prototypes)):
            raise ValueError(
                "The first call to partial_fit initialises the mixture and "
                f"needs at least max(2, n_experts)={max(2, len(prototypes))} "
                f"samples with positive sample_weight; got {n_pos}."
            )
        check_sample_weight_support(prototypes, data.sample_weight, "partial_fit")
        rng = check_random_state(self.random_state)
        with _threaded.single_threaded():  # as fit's start (see _em_restart)
            resp = initial_responsibilities(
                self.init, data.likelihood, data.init_X, data.y, data.sample_weight,
                len(prototypes), rng, 0,
            )
        return initial_state(data, prototypes, self._new_gate(), resp, rng, config, classes)

    def _partial_resume(self, data, config):
        """Copies of the fitted mixture and of its gradient state (a mixture
        fitted by EM continues from its experts and gate)."""
        check_sample_weight_support(self.experts_, data.sample_weight, "partial_fit")
        gate, experts = self._fitted_copies(self._expert_prototypes())
        state = EMState(experts, gate, self._fitted_theta())
        if getattr(self, "_gd_state", None) is not None:
            return state, copy.deepcopy(self._gd_state)
        check_partial_fit_experts(state.experts, isinstance(self.experts, list))
        state.gate.prepare(data.Z, data.sample_weight)
        rng = check_random_state(self.random_state)
        return state, resumed_state(data, state, state.experts, rng, config, None, None, False)


class _BaseMixtureOfExperts(
    _MixtureInferenceMixin, _PartialFitMixin, MetaEstimatorMixin, ExpertsComposition,
    metaclass=ABCMeta,
):
    """Base class of the mixtures of experts.

    Owns the parameters (the classifier takes this ``__init__`` as it is,
    the regressor adds ``reg_variance``) and the fit template (validation,
    solver dispatch, ``n_init`` restarts, warm start and growth, fitted
    attributes); inference and model selection come from
    :class:`_MixtureInferenceMixin`, named experts and tunable defaults from
    :class:`~skmoe._composition.ExpertsComposition`. Subclasses choose the
    likelihood (:meth:`_make_likelihood`) and the default expert.
    """

    _parameter_constraints = {
        "experts": [HasMethods(["fit", "predict"]), list, None],
        "n_experts": [Interval(Integral, 1, None, closed="left"), None],
        # Any estimator with the gate protocol (see SoftmaxGate), or a
        # Pipeline ending in one.
        "gate": [
            HasMethods(["prepare", "fit_soft", "log_proba", "penalty", "n_parameters"]),
            Pipeline,
            None,
        ],
        "gate_features": ["array-like", None],
        "assignment": [StrOptions({"soft", "hard", "stochastic"})],
        "init": [StrOptions({"auto", "kmeans", "random"}), "array-like"],
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
        # joblib's convention: 0 has no meaning.
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "min_expert_weight": [Interval(Real, 0, 1, closed="left")],
        "on_collapse": [StrOptions({"reseed", "drop"})],
        "grow": [StrOptions({"refit", "freeze"})],
    }

    def __init__(
        self,
        experts=None,
        *,
        n_experts=None,
        gate=None,
        gate_features=None,
        assignment="soft",
        init="auto",
        n_init=1,
        max_iter=500,
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

    # ------------------------------------------------------------------
    # Hooks of the regressor and the classifier
    # ------------------------------------------------------------------
    @abstractmethod
    def _make_likelihood(self, y=None):
        """A new likelihood object (:mod:`skmoe._likelihood`) for a fit
        (``y``: the fit's validated targets, where known)."""

    def _allows_missing_targets(self, y):
        """Whether ``y`` may hold NaN (an output not observed on a row)."""
        return False

    def _prototypes_for(self, prototypes, likelihood, X, sample_weight):
        """The experts' prototypes for the fit's likelihood (the
        regressor's multi-output fits wrap them per output)."""
        return prototypes

    @abstractmethod
    def _default_expert(self, solver):
        """The expert used when ``experts`` is None, for ``solver``."""

    @abstractmethod
    def _check_expert(self, expert, where):
        """Raise a TypeError naming ``where`` if ``expert`` is of the wrong kind."""

    @abstractmethod
    def _likelihood_attributes(self, likelihood, theta):
        """Fitted attributes that expose the likelihood (``noise_variance_``, ``classes_``)."""

    def _fitted_theta(self):
        """The fitted likelihood parameters, for a warm start (None: none)."""
        return None

    def _validate_partial_targets(self, likelihood, y, sample_weight, classes, first):
        """Check ``y`` of a ``partial_fit`` batch; the first batch fixes the facts."""
        if first:
            return likelihood.validate_targets(y, sample_weight)[0]
        return self._make_likelihood().validate_targets(y, sample_weight)[0]

    # ------------------------------------------------------------------
    # Parameter resolution
    # ------------------------------------------------------------------
    def _expert_prototypes(self):
        """Unfitted experts, one per slot, after checking their kind."""
        experts = self.experts
        if isinstance(experts, list):
            if len(experts) == 0:
                raise ValueError("experts must be an estimator or a non-empty list.")
            if is_named(experts):
                self._validate_names([name for name, _ in experts])
                experts = [est for _, est in experts]
            elif any(isinstance(e, tuple) for e in experts):
                raise ValueError(
                    "experts must be a list of estimators or a list of (name, "
                    "estimator) tuples, not a mix of both."
                )
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
        proto = self._default_expert(self.solver) if experts is None else experts
        self._check_expert(proto, "experts")
        n = 2 if self.n_experts is None else self.n_experts
        return [proto] * n

    def _gate_columns(self, X):
        """Column indices of the gate's input, or None for all columns.

        With a DataFrame and a gate that is not a Pipeline, ``None`` means
        the frame's numeric columns.
        """
        if self.gate_features is None and _frames.is_dataframe(X) and not isinstance(
            self.gate, Pipeline
        ):
            cols = _frames.numeric_positions(X)
            if cols.size == 0:
                raise ValueError(
                    "X has no numeric column for the gate. Encode its columns "
                    "in a gate Pipeline, for example gate="
                    "make_pipeline(OneHotEncoder(), SoftmaxGate())."
                )
            return None if cols.size == X.shape[1] else cols
        names = getattr(self, "feature_names_in_", None)
        return _gate_columns(self.gate_features, X.shape[1], names)

    def _gate_parts(self):
        """``(transformer, gate)``: the leading steps of a gate Pipeline
        (None for a plain gate) and the gate that EM fits."""
        return _frames.split_gate(self.gate, self._default_gate)

    def _new_gate(self):
        return clone(self._gate_parts()[1])

    def _fit_gate_input(self, X, y, first=True):
        """The gate's input of a fit (a :class:`~skmoe._frames.GateInput`,
        fitted on the first batch, and ``Z``)."""
        if not first:
            return self._gate_in, self._gate_in(X)
        return _frames.GateInput.fit(X, y, self._gate_columns(X), self._gate_parts()[0])

    def _validate_frame(self, X, y, reset):
        """Checks of a DataFrame ``X`` (kept as it is) and of ``y``."""
        X, y = validate_data(self, X, y, skip_check_array=True, reset=reset)
        y = check_array(
            y, ensure_2d=False, dtype=None, input_name="y",
            ensure_all_finite="allow-nan" if self._allows_missing_targets(y) else True,
        )
        check_consistent_length(X, y)
        if reset:
            self._frame_template = _frames.frame_template(X)
        return X, y

    def _data(self, X, y, sample_weight, likelihood, first=True):
        """``(EMData, gate input)`` of a fit or a batch.

        The gate input is returned, not stored on the estimator: nothing of
        one fit lives on the estimator before it ends, so two fits of one
        object (two threads) cannot take each other's.
        """
        gate_in, Z = self._fit_gate_input(X, y, first)
        # A DataFrame: the numeric columns that the initialisation and the
        # repairs cluster (skmoe/_frames.py).
        numeric = _frames.numeric_columns(X, Z)
        return EMData(X, y, sample_weight, Z, likelihood, numeric=numeric), gate_in

    # ------------------------------------------------------------------
    # The fit template
    # ------------------------------------------------------------------
    def _validate_X_y(self, X, y, reset):
        """``validate_data`` on ``X`` and on ``y`` separately, so that an
        error names the input it is about."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        with named_errors("X"):
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=np.float64, order="C",
                reset=reset,
            )
        with named_errors("y"):
            if self._allows_missing_targets(y):  # NaN: an output not observed
                y = check_array(
                    y, ensure_2d=False, dtype=None, ensure_all_finite="allow-nan",
                    input_name="y",
                )
            else:
                y = _check_y(y, multi_output=True, y_numeric=False, estimator=self)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {X.shape[0]} and "
                f"{y.shape[0]}."
            )
        return X, y

    def _validate_block_data(self, X, y, sample_weight):
        """Validated ``(prototypes, EMData, gate input)`` of a fit on dask collections:
        the rows stay in their blocks (:mod:`skmoe._dask`), checked there by
        the in-memory checks."""
        prototypes = self._expert_prototypes()
        likelihood = self._make_likelihood()
        _dask.check_supported(
            self.get_params(deep=False), prototypes, self._new_gate(), likelihood
        )
        for name in ("_frame_template", "feature_names_in_"):
            self.__dict__.pop(name, None)
        data, n_pos = _dask.block_data(X, y, sample_weight, likelihood, type(self).__name__)
        self.n_features_in_ = data.X.shape[1]
        if n_pos < len(prototypes):
            raise ValueError(
                f"Expected n_samples >= n_experts, got n_samples={n_pos} "
                f"(with positive sample_weight) and n_experts={len(prototypes)}."
            )
        return with_data_scale(prototypes, data.passes.scale), data, _frames.GateInput(None, None)

    def _check_weighted_squares(self, sample_weight, X, y):
        """Refuse weights whose weighted sums of squares of X (an array) or
        of a regression y overflow (:mod:`skmoe._magnitude`)."""
        arrays = {} if _frames.is_dataframe(X) else {"X": X}
        if not is_classifier(self) and np.issubdtype(np.asarray(y).dtype, np.number):
            arrays["y"] = np.asarray(y, dtype=np.float64)
            check_magnitude(arrays["y"], "y")  # before blaming the weights
        check_weighted_magnitude(sample_weight, arrays)

    def _validate_fit_data(self, X, y, sample_weight):
        """Validated ``(prototypes, EMData, gate input)`` of a fit, or a clear error."""
        if _dask.is_dask_collection(X):
            return self._validate_block_data(X, y, sample_weight)
        prototypes = self._expert_prototypes()
        self.__dict__.pop("_frame_template", None)
        check_target_dims(y)
        refuse_complex(y, "y")
        if _frames.is_dataframe(X):
            X, y = self._validate_frame(X, y, reset=True)
        else:
            refuse_complex(X, "X")
            X, y = self._validate_X_y(X, y, True)
            check_magnitude(X, "X")
        if sp.issparse(X):
            for k, p in enumerate(prototypes):
                if not get_tags(p).input_tags.sparse:
                    raise TypeError(
                        f"X is sparse but expert {k} ({estimator_name(p)}) "
                        "does not accept sparse input; pass a dense X or "
                        "experts that accept sparse matrices."
                    )
        sample_weight = check_weights(sample_weight, X)
        self._check_weighted_squares(sample_weight, X, y)
        likelihood = self._make_likelihood(y)
        y, _ = likelihood.validate_targets(y, sample_weight)
        prototypes = self._prototypes_for(prototypes, likelihood, X, sample_weight)
        n_pos = int(np.count_nonzero(sample_weight))
        if n_pos < len(prototypes):
            raise ValueError(
                f"Expected n_samples >= n_experts, got n_samples={n_pos} "
                f"(with positive sample_weight) and n_experts={len(prototypes)}."
            )
        if self.solver == "em":
            check_sample_weight_support(prototypes, sample_weight)
        prototypes = _fix_scales(prototypes, X, sample_weight)
        return (prototypes, *self._data(X, y, sample_weight, likelihood))

    def _fit(self, X, y, sample_weight):
        """The fit template shared by the regressor and the classifier."""
        xp = _array_api.namespace(X, y, sample_weight)
        if xp is not None:  # array API inputs under dispatch: skmoe/_array_api/
            with _restore_on_error(self):
                return _array_api.fit(self, X, y, sample_weight, xp)
        t_start = time.perf_counter()
        with _restore_on_error(self):
            prototypes, data, gate_in = self._validate_fit_data(X, y, sample_weight)
            rng = check_random_state(self.random_state)
            # The warnings of the experts (every iteration) and of the
            # restarts (maybe in worker processes) are raised once each, with
            # their count, at the end (skmoe/_gather.py).
            with _gather.gathered():
                if self.solver == "gd":  # mini-batch gradient ascent, skmoe/_sgd.py
                    result = self._fit_gd(data, prototypes, rng)
                elif self._selects_n_experts():  # n_experts=None: 2 or 1 by BIC
                    result = self._fit_selected(data, prototypes, rng)
                else:
                    result = self._fit_em(data, prototypes, rng)
        _warn_repairs(result, self.min_expert_weight, self.solver)
        _warn_usage(result, self.min_expert_weight)
        _warn_weak(result)
        if not result.converged:
            _gather.warn(convergence_message(self), ConvergenceWarning)
        if self.solver == "em":
            self._check_optimum(result, data)
            for name in _GD_ATTRIBUTES:  # the state of an earlier solver="gd" fit
                self.__dict__.pop(name, None)
        self._set_fitted(result, data, gate_in, t_start)
        return self

    def __getstate__(self):
        """The estimator's state with its private helpers as plain data.

        The gate input and the likelihood are stored as dicts and rebuilt
        by :meth:`__setstate__`, so that a fitted mixture saved with skops
        holds no private skmoe type (pickle round-trips the same way).
        """
        state = dict(super().__getstate__())  # object.__getstate__: __dict__ itself
        gate_in = state.get("_gate_in")
        if isinstance(gate_in, _frames.GateInput):
            state["_gate_in"] = {
                "columns": gate_in.columns, "transformer": gate_in.transformer
            }
        likelihood = state.get("_likelihood")
        if likelihood is not None and not isinstance(likelihood, dict):
            state["_likelihood"] = dict(vars(likelihood))
        return state

    def __setstate__(self, state):
        """Rebuild what :meth:`__getstate__` stored as plain data."""
        state = dict(state)
        gate_in = state.get("_gate_in")
        if isinstance(gate_in, dict):
            state["_gate_in"] = _frames.GateInput(
                gate_in["columns"], gate_in["transformer"]
            )
        super().__setstate__(state)
        if isinstance(state.get("_likelihood"), dict):
            likelihood = self._make_likelihood()
            vars(likelihood).update(state["_likelihood"])
            self._likelihood = likelihood

    def _set_fitted(self, result, data, gate_in, t_start):
        """Store a run's result as the fitted attributes (both solvers)."""
        state = result.state
        self.experts_ = state.experts
        self.gate_ = state.gate
        self._gate_in = gate_in
        self.gate_features_ = gate_in.columns
        self._gate_width = data.Z.shape[1]
        self.n_experts_ = len(state.experts)
        self._likelihood = data.likelihood
        self.__dict__.update(self._likelihood_attributes(data.likelihood, state.theta))
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.log_likelihood_history_ = np.asarray(result.history)
        self.log_likelihood_ = float(result.log_likelihood)
        self.expert_usage_ = result.usage
        self.repairs_ = [r.as_dict() for r in result.repairs]
        self.n_experts_bic_ = getattr(result, "n_experts_bic", None)
        self.fit_time_ = time.perf_counter() - t_start

    def _check_optimum(self, result, data):
        """The pool's objectives (``init="auto"``) and degenerate experts, with warnings."""
        self.init_objectives_ = getattr(result, "init_objectives", None)
        self.init_candidates_ = getattr(result, "candidates", None)
        if getattr(result, "disagree", False):
            warn_disagreement(self.init_candidates_, data.total)
        self.degenerate_experts_ = _pool.degenerate(result, data)
        _warn_degenerate(result.state.experts, self.degenerate_experts_)

    def _can_warm_start(self, Z, n_experts):
        """Whether :meth:`fit` continues from the fitted mixture (growing it
        when ``n_experts`` grew): the one warm-start test of both solvers."""
        return (
            self.warm_start
            and hasattr(self, "experts_")
            and self._gate_width == Z.shape[1]
            and len(self.experts_) <= n_experts
        )

    def _warm_state(self, prototypes, data):
        """Copies of the fitted experts and gate (a failure leaves the fitted
        ones untouched), with the current parameters (e.g. ``experts__alpha``
        or ``gate__alpha`` set since; the experts keep their seeds), the gate
        prepared on ``data``."""
        gate, experts = self._fitted_copies(prototypes)
        gate.prepare(data.Z, data.sample_weight)
        return EMState(experts, gate, self._fitted_theta())

    def _fitted_copies(self, prototypes):
        """Copies of the fitted gate and experts with the current parameters
        (``gate__alpha``, ``experts__alpha`` set since the fit; the experts
        keep their seeds): what a warm start and ``partial_fit`` continue."""
        gate = copy.deepcopy(self.gate_)
        gate.set_params(**leaf_params(self._gate_parts()[1]))
        experts = copy.deepcopy(self.experts_)
        for expert, proto in zip(experts, prototypes):
            params = leaf_params(proto)
            if type(expert) is StandardizedRidge and expert.scale is not None:
                # Its penalty keeps the scale of its first fit (a frozen
                # expert stays bit for bit what it was).
                params.pop("scale", None)
            expert.set_params(
                **{k: v for k, v in params.items() if not k.endswith("random_state")}
            )
        return gate, experts

    def _fit_em(self, data, prototypes, rng):
        """EM from the fitted state (warm start, growing it if ``n_experts``
        grew) or the best of ``n_init`` restarts, in parallel when ``n_jobs``
        allows."""
        config = EMConfig.from_estimator(self)
        if self._can_warm_start(data.Z, len(prototypes)):
            state = self._warm_state(prototypes, data)
            resp = None
            with _threaded.single_threaded_blas():
                if len(state.experts) < len(prototypes):
                    resp = _repair.grow(
                        data, state, prototypes, rng, self.top_k, self.grow == "freeze"
                    )
                return run_em(data, state, config, rng, resp)
        gate = data.prepare_gate(self._new_gate(), len(prototypes))
        # One RandomState per restart, drawn up front, so that the restarts
        # can run in parallel (n_jobs) with the same results as in series. A
        # single restart keeps using `rng` itself.
        args = (self.init, data, prototypes, gate)
        pool = self._init_pool
        if self.n_init == 1:
            trials = [_em_restart(*args, config, rng, 0, pool)]
        else:
            # Each restart's warnings come back with it (a worker process's
            # would not reach the caller): they are raised here, and summarised
            # with the others at the end of the fit.
            seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_init)
            if effective_n_jobs(self.n_jobs) == 1:
                runs = [
                    _gather.recording(
                        _em_restart, *args, _restart_config(config, i_init, self.n_init),
                        np.random.RandomState(seed), i_init, pool,
                    )
                    for i_init, seed in enumerate(seeds)
                ]
            else:
                # The restarts share the workers; each one fits its experts
                # in a plain loop (no nested dispatch).
                inner = dataclasses.replace(config, n_jobs=1)
                runs = Parallel(n_jobs=self.n_jobs)(
                    delayed(_gather.recording)(
                        _em_restart, *args, _restart_config(inner, i_init, self.n_init),
                        np.random.RandomState(seed), i_init, pool,
                    )
                    for i_init, seed in enumerate(seeds)
                )
            trials = [trial for trial, _ in runs]
            for _, records in runs:
                _gather.replay(records)
        for i_init, trial in enumerate(trials):
            _print_restart(self.verbose, i_init, self.n_init, trial, "iterations")
        return max(trials, key=lambda trial: trial.objective)

    def _selects_n_experts(self):
        """Whether :meth:`fit` chooses the number of experts by BIC
        (``n_experts=None``, see its documentation): one estimator as the
        experts, EM without a warm start, a string ``init`` and a
        :class:`SoftmaxGate` (which has a one-expert form: a constant
        gate). Elsewhere ``n_experts=None`` means 2."""
        return (
            self.n_experts is None
            and not isinstance(self.experts, list)
            and self.solver == "em"
            and not self.warm_start
            and isinstance(self.init, str)
            and isinstance(self._new_gate(), SoftmaxGate)
        )

    def _fit_selected(self, data, prototypes, rng):
        """``n_experts=None``: the mixture of ``len(prototypes)`` (2) experts
        and the one-expert model, the one with the lower BIC on the training
        data kept (as mclust's ``Mclust`` and flexmix's ``stepFlexmix``
        with ``getModel(..., "BIC")``). Only the kept fit's warnings are
        raised; both criteria are returned in ``n_experts_bic``. Experts
        whose parameters skmoe cannot count (no BIC) keep the mixture."""
        K = len(prototypes)
        runs = {K: _gather.recording(self._fit_em, data, prototypes, rng)}
        try:
            bics = {K: training_bic(runs[K][0], data)}
        except NotImplementedError:  # count_parameters does not know the expert
            _gather.replay(runs[K][1])
            return runs[K][0]
        runs[1] = _gather.recording(self._fit_one_expert, data, prototypes[:1], rng)
        bics[1] = training_bic(runs[1][0], data)
        kept = 1 if bics[1] <= bics[K] else K
        result, records = runs[kept]
        _gather.replay(records)
        result.n_experts_bic = {k: bics[k] for k in sorted(bics)}
        if self.verbose:
            scores = ", ".join(f"{k} expert{'s' * (k > 1)} {bics[k]:.6g}" for k in sorted(bics))
            print(f"n_experts=None: training BIC {scores}; kept {kept}", flush=True)
        return result

    def _fit_one_expert(self, data, prototypes, rng):
        """The one-expert model: one fit of the expert on every row and a
        constant gate. Every responsibility of one expert is 1, so the first
        EM iteration (the expert's fit, the likelihood's parameters given
        it) is EM's fixed point: no pool, no restart. A likelihood whose
        expert fit depends on its parameters (``expert_fit_weights``: the
        Student-t, the negative binomial) iterates to that fixed point."""
        gate = data.prepare_gate(self._new_gate(), 1)
        state = EMState(make_experts(prototypes, rng), gate)
        iterates = hasattr(data.likelihood, "expert_fit_weights")
        config = dataclasses.replace(
            EMConfig.from_estimator(self), max_iter=self.max_iter if iterates else 1,
            gate_max_iter=None,
            label="[n_experts=1] ",
        )
        result = run_em(data, state, config, rng, [data.uniform_responsibilities(1)])
        result.converged = result.converged or not iterates
        return result

    def _fit_gd(self, data, prototypes, rng):
        """``fit`` with ``solver="gd"``: a warm start, or the best of ``n_init`` runs."""
        from_list = isinstance(self.experts, list)
        self._check_gd_gate()
        check_partial_fit_experts(prototypes, from_list)
        check_sample_weight_support(prototypes, data.sample_weight, "partial_fit")
        config = SGDConfig.from_estimator(self)
        classes = getattr(data.likelihood, "classes_", None)
        train, val, rows = data, None, None
        if self.early_stopping:
            stratify = data.y if is_classifier(self) else None
            train, val, rows = split_validation(
                data, self.validation_fraction, rng, stratify, len(prototypes)
            )
        args = (config, self.max_iter, train.total, val, classes)
        warm = self._can_warm_start(train.Z, len(prototypes))
        if warm:
            state = self._warm_state(prototypes, train)
            check_partial_fit_experts(state.experts, from_list)
            sgd = resumed_state(
                train, state, prototypes, rng, config, classes, self.top_k,
                self.grow == "freeze",
            )
            best = (run_sgd(train, state, sgd, *args), sgd)
        for i_init in range(0 if warm else self.n_init):
            # An init array is given for all the rows: keep the training ones.
            source = train if isinstance(self.init, str) else data
            resp = initial_responsibilities(
                self.init, data.likelihood, source.init_X, source.y,
                source.sample_weight, len(prototypes), rng, i_init,
            )
            if source is data and rows is not None:
                resp = resp[rows]
            state, sgd = initial_state(
                train, prototypes, self._new_gate(), resp, rng, config, classes
            )
            result = run_sgd(
                train, state, sgd, _restart_config(config, i_init, self.n_init), *args[1:]
            )
            _print_restart(self.verbose, i_init, self.n_init, result, "epochs")
            if i_init == 0 or result.objective > best[0].objective:
                best = (result, sgd)
        result, self._gd_state = best
        self._gd_state.weight_seen = train.total
        scores = result.validation_scores if self.early_stopping else None
        self.validation_scores_ = None if scores is None else np.asarray(scores)
        self.best_validation_score_ = None if scores is None else float(np.max(scores))
        return result

    def _check_gd_gate(self):
        """Refuse, before any work, a gate that the gradient solver cannot move."""
        gate = self._new_gate()
        if not supports_gradient(gate):
            raise ValueError(
                f"solver='gd' moves the gate by gradient steps, but the gate "
                f"{type(gate).__name__} has no gradient (sgd_parameters / "
                "sgd_gradient); use solver='em' with this gate."
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
