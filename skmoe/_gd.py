"""Mini-batch gradient fitting of the mixtures (``solver="gd"``) and ``partial_fit``.

The on-line mixture of experts of Jordan & Jacobs: mini-batch gradient
ascent on the same penalised log-likelihood that EM maximises.

For every mini-batch ``B`` (weights ``w_i``, total ``w_B``):

1. the E-step on the batch with the current parameters gives the posteriors
   ``h_ik`` and the batch log-likelihood ``sum_i w_i log p(y_i | x_i)``;
2. the gate takes one optimiser step (Adam or momentum SGD, scikit-learn's
   own :mod:`sklearn.neural_network` optimisers) down the gradient of

   .. math::

       f_B(W_s, b_s) = -\\frac{1}{w_B} \\sum_{i \\in B} w_i \\log p(y_i \\mid x_i)
       + \\frac{\\alpha}{2\\,T} \\lVert W_s \\rVert_F^2,

   whose gradient with respect to the logits is ``w_i (pi_i - h_i) / w_B``
   (the compiled kernel :func:`skmoe._kernels.soft_target_loss_grad`), and
   with respect to the coefficients ``Z_B^T (pi - h)`` (one BLAS product).
   ``(W_s, b_s)`` are the coefficients of the *standardised* gate input,
   exactly as in :class:`~skmoe.SoftmaxGate`, so the penalty ``alpha`` has
   the same meaning for both solvers; ``T`` is the total training weight
   (:meth:`fit`) or the total weight seen so far (:meth:`partial_fit`), so
   that ``f_B`` is an unbiased estimate of the objective EM maximises
   (divided by ``T``). The standardisation statistics are those of the
   training data (:meth:`fit`) or of the first batch (:meth:`partial_fit`),
   then frozen: they define the parameterisation the optimiser moves in;
3. every expert takes ``expert.partial_fit(X_B, y_B, sample_weight=w_i h_ik)``,
   the posterior-weighted step of its own log-likelihood;
4. the regressor's noise variances follow exponentially decayed sums of the
   posterior-weighted squared residuals (decay ``_VARIANCE_DECAY`` per
   mini-batch), computed with the experts as they were before the step.

An epoch is one pass over the training data in shuffled mini-batches;
``max_iter`` counts epochs. Stopping follows scikit-learn's MLP estimators:
the epoch's objective (or the validation log-likelihood with
``early_stopping=True``) must improve by ``tol`` at least once every
``n_iter_no_change`` epochs.
"""

import copy
import inspect
import time
import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.ensemble._base import _set_random_states
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import _check_sample_weight, validate_data

from . import _kernels
from ._base import (
    _EMPTY_EXPERT_SHARE,
    _estimator_name,
    _fit_expert,
    _restore_on_error,
)
from ._gating import SoftmaxGate, _weighted_standardization

#: Decay per mini-batch of the sums behind the regressor's running noise
#: variances: the estimate remembers roughly the last ten mini-batches, so it
#: follows the experts as they move.
_VARIANCE_DECAY = 0.9

#: Fitted attributes that only ``solver="gd"`` sets; an EM fit removes them.
_GD_ATTRIBUTES = ("_gd_state", "validation_scores_", "best_validation_score_")


# ----------------------------------------------------------------------
# The gate's mini-batch gradient
# ----------------------------------------------------------------------
def gate_logits(W_s, b_s, Z, mean, scale):
    """Gate logits of ``Z`` for the standardised coefficients ``(W_s, b_s)``.

    Parameters
    ----------
    W_s : ndarray of shape (n_features, n_experts)
        Coefficients of the standardised input ``(Z - mean) / scale``.
    b_s : ndarray of shape (n_experts,)
        Intercepts of the standardised input.
    Z : ndarray of shape (n_samples, n_features)
        Gate input (not standardised: the standardisation is folded into the
        coefficients).
    mean, scale : ndarray of shape (n_features,)
        The standardisation statistics.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_experts)
    """
    W = W_s / scale[:, None]
    logits = Z @ W
    logits += b_s - mean @ W
    return logits


def gate_batch_gradient(logits, Z, targets, sample_weight, W_s, mean, scale, alpha, total):
    """Gradient of the mini-batch objective ``f_B`` with respect to ``(W_s, b_s)``.

    With ``targets`` the posteriors ``h`` of the batch (computed at the
    current parameters), this is the gradient of
    ``-sum_i w_i log p(y_i | x_i) / w_B + alpha / (2 total) ||W_s||^2``: the
    derivative of ``-log sum_k pi_k p_k`` with respect to the logits is
    ``pi - h``. The per-row part comes from the compiled kernel
    :func:`~skmoe._kernels.soft_target_loss_grad`; the coefficients'
    gradient is the BLAS product ``Z^T (pi - h)`` mapped to standardised
    space.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_experts)
        Gate logits of the batch (:func:`gate_logits`).
    Z : ndarray of shape (n_samples, n_features)
        Gate input of the batch.
    targets : ndarray of shape (n_samples, n_experts)
        Posteriors (or hard / stochastic assignments) of the batch.
    sample_weight : ndarray of shape (n_samples,)
        Sample weights of the batch, with a positive sum ``w_B``.
    W_s : ndarray of shape (n_features, n_experts)
        Current standardised coefficients (for the penalty).
    mean, scale : ndarray of shape (n_features,)
        The standardisation statistics.
    alpha : float
        The gate's penalty.
    total : float
        ``T``, the weight the penalty is spread over.

    Returns
    -------
    grad_W : ndarray of shape (n_features, n_experts)
    grad_b : ndarray of shape (n_experts,)
    """
    _, G = _kernels.soft_target_loss_grad(logits, targets, sample_weight)
    w_batch = sample_weight.sum()
    g_sum = G.sum(axis=0)
    grad_W = (Z.T @ G - np.outer(mean, g_sum)) / (scale[:, None] * w_batch)
    grad_W += (alpha / total) * W_s
    return grad_W, g_sum / w_batch


def _to_standardised(coef, intercept, mean, scale):
    W_s = coef.T * scale[:, None]
    b_s = intercept + mean @ coef.T
    return np.ascontiguousarray(W_s), np.asarray(b_s, dtype=np.float64)


def _to_raw(W_s, b_s, mean, scale):
    W = W_s / scale[:, None]
    return np.ascontiguousarray(W.T), b_s - mean @ W


# ----------------------------------------------------------------------
# Experts
# ----------------------------------------------------------------------
def _partial_fit_accepts_sample_weight(expert):
    try:
        return "sample_weight" in inspect.signature(expert.partial_fit).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic callables
        return False


def _expert_partial_fit(expert, X, y, weight, classes, subset_rows):
    """One ``partial_fit`` step of one expert with posterior weights.

    Experts whose ``partial_fit`` takes no ``sample_weight`` get the rows with
    a positive weight (hard or stochastic assignments).
    """
    accepts = _partial_fit_accepts_sample_weight(expert)
    if not accepts or subset_rows:
        rows = weight > 0
        if not rows.all():
            X, y, weight = X[rows], y[rows], weight[rows]
    kwargs = {}
    if accepts:
        kwargs["sample_weight"] = weight
    if classes is not None:
        kwargs["classes"] = classes
    expert.partial_fit(X, y, **kwargs)


def _check_partial_fit_experts(est, experts):
    """Raise a TypeError naming the experts that have no ``partial_fit``."""
    if isinstance(est.experts, list):
        missing = [
            f"experts[{k}] ({_estimator_name(e)})"
            for k, e in enumerate(experts)
            if not hasattr(e, "partial_fit")
        ]
    else:
        missing = [] if hasattr(experts[0], "partial_fit") else [
            f"experts ({_estimator_name(experts[0])})"
        ]
    if missing:
        raise TypeError(
            "solver='gd' updates every expert with partial_fit on each mini-batch, "
            f"but {', '.join(missing)} has no partial_fit. Use experts with "
            "partial_fit (SGDRegressor, SGDClassifier, MLPRegressor, "
            "MLPClassifier, GaussianNB, ...) or solver='em'."
        )


def _check_weights_supported(experts, sample_weight):
    if np.allclose(sample_weight[sample_weight > 0], sample_weight.max()):
        return
    for k, expert in enumerate(experts):
        if not _partial_fit_accepts_sample_weight(expert):
            raise ValueError(
                f"Expert {k} ({_estimator_name(expert)}) takes no sample_weight in "
                "partial_fit, so non-uniform sample_weight cannot be honoured; "
                "use experts whose partial_fit accepts sample_weight."
            )


def _update_experts(
    est, experts, X, y, sample_weight, weights, resp, rng, classes, init=False
):
    """Give every expert one ``partial_fit`` step; return the weights used.

    ``init=True`` is the first M-step: an expert without weight is fit on
    every row, so that it can predict, and the experts are fit with their
    own ``fit`` (as EM's first M-step) unless the rows lack some of
    ``classes`` (a classifier's first batch), where ``fit`` would learn too
    few classes and ``partial_fit(classes=...)`` is used. Otherwise an
    expert without weight is skipped for this batch.
    """
    use_fit = init and (classes is None or np.array_equal(np.unique(y), classes))
    total = sample_weight.sum()
    hard = None
    used = np.array(weights)
    for k, expert in enumerate(experts):
        if _partial_fit_accepts_sample_weight(expert) or est.assignment != "soft":
            w = weights[:, k]
        else:
            # No sample_weight: the expert takes the rows it most probably owns.
            if hard is None:
                hard = est._assignments(resp, rng, "hard")
            w = hard[:, k] * sample_weight
        if w.sum() <= _EMPTY_EXPERT_SHARE * total:
            if not init:
                continue
            w = sample_weight
        used[:, k] = w
        if use_fit:
            _fit_expert(expert, X, y, w, est._subset_rows)
        else:
            _expert_partial_fit(expert, X, y, w, classes, est._subset_rows)
    return used


# ----------------------------------------------------------------------
# State carried between mini-batches and partial_fit calls
# ----------------------------------------------------------------------
class _GDState:
    """Gate parameters, optimiser, running noise sums and RNG of ``solver="gd"``.

    Its size does not depend on the number of samples or of calls.
    """

    def __init__(self, params, mean, scale, optimizer, aux, rng):
        self.params = params  # [W_s (n_features, n_experts), b_s (n_experts,)]
        self.mean = mean
        self.scale = scale
        self.optimizer = optimizer
        self.aux = aux
        self.rss = None
        self.wsum = None
        self.weight_seen = 0.0
        self.rng = rng


def _make_optimizer(est, params):
    if est.optimizer == "adam":
        return AdamOptimizer(params, est.learning_rate_init)
    return SGDOptimizer(
        params,
        est.learning_rate_init,
        est.learning_rate,
        est.momentum,
        nesterov=True,
    )


def _batch_size(est, n_samples):
    if est.batch_size == "auto":
        return min(200, n_samples)
    return max(1, min(est.batch_size, n_samples))


def _mean_log_lik(est, experts, st, X, Z, y, sample_weight, info):
    logits = gate_logits(*st.params, Z, st.mean, st.scale)
    outputs = est._expert_outputs(experts, X, y, info)
    _, log_norm = _kernels.e_step(
        _kernels.log_softmax_rows(logits), est._log_lik_matrix(outputs, y, st.aux)
    )
    return float(sample_weight @ log_norm / sample_weight.sum())


def _batch_step(est, st, experts, X, Z, y, sample_weight, info, classes, alpha, total):
    """One mini-batch: E-step, gate step, expert steps, noise variances.

    Returns the batch's weighted log-likelihood before the step.
    """
    W_s, b_s = st.params
    logits = gate_logits(W_s, b_s, Z, st.mean, st.scale)
    outputs = est._expert_outputs(experts, X, y, info)
    resp, log_norm = _kernels.e_step(
        _kernels.log_softmax_rows(logits), est._log_lik_matrix(outputs, y, st.aux)
    )
    assign = est._assignments(resp, st.rng, est.assignment)
    grads = gate_batch_gradient(
        logits, Z, assign, sample_weight, W_s, st.mean, st.scale, alpha, total
    )
    st.optimizer.update_params(st.params, list(grads))
    weights = sample_weight[:, None] * assign
    used = _update_experts(
        est, experts, X, y, sample_weight, weights, resp, st.rng, classes
    )
    stats = est._aux_batch_stats(outputs, y, np.ascontiguousarray(used))
    if stats is not None:
        rss, wsum = stats
        if st.rss is None:
            st.rss, st.wsum = rss, wsum
        else:
            st.rss = _VARIANCE_DECAY * st.rss + rss
            st.wsum = _VARIANCE_DECAY * st.wsum + wsum
        st.aux = est._aux_from_stats(st.rss, st.wsum, st.aux, info)
    return float(sample_weight @ log_norm)


def _initial_state(est, X, Z, y, sample_weight, resp, prototypes, rng, info, classes):
    """Experts, gate and state from initial responsibilities (one M-step)."""
    experts = [clone(p) for p in prototypes]
    for e in experts:
        _set_random_states(e, rng)
    gate = clone(est.gate) if est.gate is not None else SoftmaxGate()
    gate.set_params(warm_start=False)
    mean, scale = _weighted_standardization(Z, sample_weight)
    assign = est._assignments(resp, rng, est.assignment)
    weights = sample_weight[:, None] * assign
    used = _update_experts(
        est, experts, X, y, sample_weight, weights, resp, rng, classes, init=True
    )
    outputs = est._expert_outputs(experts, X, y, info)
    aux = est._update_aux(outputs, y, used, None, info)
    gate._fit_arrays(Z, assign, sample_weight, (mean, scale))
    params = list(_to_standardised(gate.coef_, gate.intercept_, mean, scale))
    st = _GDState(params, mean, scale, _make_optimizer(est, params), aux, rng)
    return experts, gate, st


def _resumed_state(est, Z, sample_weight, rng):
    """Copies of the fitted experts and gate, and a fresh state around them."""
    experts = copy.deepcopy(est.experts_)
    _check_partial_fit_experts(est, experts)
    gate = copy.deepcopy(est.gate_)
    mean, scale = _weighted_standardization(Z, sample_weight)
    params = list(_to_standardised(gate.coef_, gate.intercept_, mean, scale))
    st = _GDState(params, mean, scale, _make_optimizer(est, params), est._aux(), rng)
    return experts, gate, st


def _run_epochs(est, st, experts, gate, data, val, info, classes, n_epochs, total):
    """Up to ``n_epochs`` passes over ``data``; MLP-style stopping."""
    X, Z, y, sample_weight = data
    n_samples = X.shape[0]
    batch_size = _batch_size(est, n_samples)
    alpha = float(gate.alpha)
    history, val_scores = [], []
    best, no_improvement, converged = -np.inf, 0, False
    log_lik = -np.inf
    for epoch in range(1, n_epochs + 1):
        tic = time.perf_counter()
        order = st.rng.permutation(n_samples) if est.shuffle else None
        acc, seen = 0.0, 0.0
        for batch in gen_batches(n_samples, batch_size):
            rows = batch if order is None else order[batch]
            sw = sample_weight[rows]
            w_batch = sw.sum()
            if w_batch <= 0:
                continue
            acc += _batch_step(
                est, st, experts, X[rows], Z[rows], y[rows], sw, info, classes,
                alpha, total,
            )
            seen += w_batch
        W_s = st.params[0]
        log_lik = acc / seen
        objective = log_lik - 0.5 * alpha * float(np.sum(W_s * W_s)) / total
        history.append(objective)
        if val is not None:
            score = _mean_log_lik(est, experts, st, *val, info)
            val_scores.append(score)
        else:
            score = objective
        if est.verbose:
            extra = f", validation {score:.6f}" if val is not None else ""
            print(
                f"Epoch {epoch:4d}: log-likelihood {log_lik:.6f}, objective "
                f"{objective:.6f}{extra}, {time.perf_counter() - tic:.3f}s"
            )
        if n_epochs == 1:  # partial_fit: one pass, no stopping rule
            break
        if score < best + est.tol:
            no_improvement += 1
        else:
            no_improvement = 0
        best = max(best, score)
        if no_improvement > est.n_iter_no_change:
            what = "Validation log-likelihood" if val is not None else "Objective"
            msg = (
                f"{what} did not improve more than tol={est.tol} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            if st.optimizer.trigger_stopping(msg, est.verbose):
                converged = True
                break
            no_improvement = 0
    return {
        "history": history,
        "log_likelihood": log_lik,
        "objective": max(val_scores) if val_scores else history[-1],
        "converged": converged,
        "n_iter": len(history),
        "validation_scores": val_scores,
    }


def _commit(est, experts, gate, st, columns, info, run, t_start):
    W_s, b_s = st.params
    gate.coef_, gate.intercept_ = _to_raw(W_s, b_s, st.mean, st.scale)
    gate._penalty = 0.5 * float(gate.alpha) * float(np.sum(W_s * W_s))
    gate.set_params(warm_start=est.gate is not None and est.gate.warm_start)
    est.experts_ = experts
    est.gate_ = gate
    est.gate_features_ = columns
    est.n_experts_ = len(experts)
    est._set_aux(st.aux, info)
    est._gd_state = st
    est.log_likelihood_history_ = np.asarray(run["history"])
    est.log_likelihood_ = float(run["log_likelihood"])
    est.fit_time_ = time.perf_counter() - t_start


# ----------------------------------------------------------------------
# The estimator side
# ----------------------------------------------------------------------
class _GradientDescentMixin:
    """``solver="gd"`` and ``partial_fit`` for the mixtures of experts.

    Mixed into :class:`MixtureOfExpertsRegressor` and
    :class:`MixtureOfExpertsClassifier` before the EM base class; the base
    class's ``_fit`` hands over to :meth:`_fit_gd` when ``solver="gd"``.
    """

    # -- hooks with defaults (the regressor overrides the aux ones) -------
    def _aux_batch_stats(self, outputs, y, weights):
        """Sufficient statistics of the auxiliary parameters on a batch."""
        return None

    def _aux_from_stats(self, rss, wsum, aux, info):
        """Auxiliary parameters from running sufficient statistics."""
        return aux

    def _validate_partial_targets(self, y, sample_weight, classes, first):
        """Check ``y`` of a ``partial_fit`` batch; return ``(y, info)``."""
        return self._validate_targets(y, sample_weight)

    def _check_gd_solver(self):
        if self.solver != "gd":
            raise AttributeError(
                "partial_fit is only available for solver='gd'; this mixture has "
                f"solver={self.solver!r}."
            )
        return True

    def _clear_gd_state(self):
        for name in _GD_ATTRIBUTES:
            self.__dict__.pop(name, None)

    # -- fit ------------------------------------------------------------
    def _fit_gd(self, X, y, sample_weight, info, prototypes, t_start):
        """``fit`` with ``solver="gd"`` on validated data (inside the
        base class's ``_restore_on_error``)."""
        _check_partial_fit_experts(self, prototypes)
        _check_weights_supported(prototypes, sample_weight)
        n_experts = len(prototypes)
        classes = info.get("classes") if info else None
        columns = self._gate_columns(X.shape[1])
        Z = self._gate_input(X, columns)
        rng = check_random_state(self.random_state)

        train = np.arange(X.shape[0])
        val = None
        if self.early_stopping:
            train, held = train_test_split(
                train,
                test_size=self.validation_fraction,
                random_state=rng,
                stratify=y if is_classifier(self) else None,
            )
            if held.size < 2:
                raise ValueError(
                    "The validation set is too small. Increase "
                    "'validation_fraction' or the size of your dataset."
                )
            held.sort()
            train.sort()
            val = (X[held], Z[held], y[held], sample_weight[held])
            if np.count_nonzero(sample_weight[train]) < n_experts:
                raise ValueError(
                    "early_stopping leaves fewer training samples than n_experts="
                    f"{n_experts}; decrease validation_fraction."
                )
        data = (X[train], Z[train], y[train], sample_weight[train])
        total = data[3].sum()

        warm = (
            self.warm_start
            and hasattr(self, "experts_")
            and len(self.experts_) == n_experts
            and self.gate_.coef_.shape[1] == Z.shape[1]
        )
        if warm:
            # As MLP's warm start: the fitted parameters, a fresh optimiser.
            experts, gate, st = _resumed_state(self, data[1], data[3], rng)
            best = (experts, gate, st, _run_epochs(
                self, st, experts, gate, data, val, info, classes, self.max_iter, total
            ))
        else:
            best = None
            for i_init in range(self.n_init):
                if isinstance(self.init, str):
                    resp = self._initial_responsibilities(
                        data[0], data[2], data[3], n_experts, rng, i_init
                    )
                else:
                    resp = self._initial_responsibilities(
                        X, y, sample_weight, n_experts, rng, i_init
                    )[train]
                experts, gate, st = _initial_state(
                    self, data[0], data[1], data[2], data[3], resp, prototypes, rng,
                    info, classes,
                )
                run = _run_epochs(
                    self, st, experts, gate, data, val, info, classes, self.max_iter,
                    total,
                )
                if self.verbose:
                    print(
                        f"Initialisation {i_init}: objective {run['objective']:.6f}, "
                        f"{run['n_iter']} epochs, converged={run['converged']}"
                    )
                if best is None or run["objective"] > best[3]["objective"]:
                    best = (experts, gate, st, run)
        experts, gate, st, run = best
        if not run["converged"]:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations (max_iter={self.max_iter} "
                "epochs) reached and the optimization hasn't converged yet. "
                "Increase max_iter or learning_rate_init.",
                ConvergenceWarning,
            )
        st.weight_seen = total
        _commit(self, experts, gate, st, columns, info, run, t_start)
        self.converged_ = run["converged"]
        self.n_iter_ = run["n_iter"]
        if self.early_stopping:
            self.validation_scores_ = np.asarray(run["validation_scores"])
            self.best_validation_score_ = float(np.max(self.validation_scores_))
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        return self

    # -- partial_fit ------------------------------------------------------
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
            if first:
                prototypes = self._expert_prototypes()
                _check_partial_fit_experts(self, prototypes)
            X, y = validate_data(
                self,
                X,
                y,
                accept_sparse=["csr", "csc"],
                dtype=np.float64,
                order="C",
                y_numeric=False,
                multi_output=True,
                reset=first,
            )
            if X.shape[0] < 2:
                # A batch of one row is refused (issue 3): collect rows into
                # mini-batches of at least two.
                raise ValueError(
                    f"partial_fit needs a batch of at least 2 samples; got "
                    f"{X.shape[0]}. Collect single rows into mini-batches."
                )
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            y, info = self._validate_partial_targets(y, sample_weight, classes, first)
            if not first:
                # What the first batch fixed (the classes, the regressor's
                # variance floor) stays fixed.
                info = {**(info or {}), **(self._fitted_info() or {})}
            class_list = info.get("classes") if info else None
            if first:
                n_experts = len(prototypes)
                n_pos = int(np.count_nonzero(sample_weight))
                if n_pos < max(2, n_experts):
                    raise ValueError(
                        "The first call to partial_fit initialises the mixture and "
                        f"needs at least max(2, n_experts)={max(2, n_experts)} "
                        f"samples with positive sample_weight; got {n_pos}."
                    )
                _check_weights_supported(prototypes, sample_weight)
                columns = self._gate_columns(X.shape[1])
                Z = self._gate_input(X, columns)
                rng = check_random_state(self.random_state)
                resp = self._initial_responsibilities(
                    X, y, sample_weight, n_experts, rng, 0
                )
                experts, gate, st = _initial_state(
                    self, X, Z, y, sample_weight, resp, prototypes, rng, info,
                    class_list,
                )
                n_iter = 0
            else:
                _check_weights_supported(self.experts_, sample_weight)
                columns = self.gate_features_
                Z = self._gate_input(X, columns)
                if getattr(self, "_gd_state", None) is None:
                    # Fitted by EM: continue from its experts and gate.
                    rng = check_random_state(self.random_state)
                    experts, gate, st = _resumed_state(self, Z, sample_weight, rng)
                else:
                    experts = copy.deepcopy(self.experts_)
                    gate = copy.deepcopy(self.gate_)
                    st = copy.deepcopy(self._gd_state)
                n_iter = self.n_iter_
            st.weight_seen += float(sample_weight.sum())
            run = _run_epochs(
                self, st, experts, gate, (X, Z, y, sample_weight), None, info,
                class_list, 1, st.weight_seen,
            )
            _commit(self, experts, gate, st, columns, info, run, t_start)
            self.converged_ = False
            self.n_iter_ = n_iter + 1
            self.validation_scores_ = None
            self.best_validation_score_ = None
        return self
