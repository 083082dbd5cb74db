"""The fit of a mixture on array API inputs: validation, the engine's EM
(:func:`skmoe._em.run_em`) from each restart's start, and the fitted
attributes (arrays in the input's namespace and on its device)."""

import copy
import time

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .. import _gather
from .._em import EMConfig, EMData, EMState, run_em
from .._experts import make_experts
from .._frames import GateInput
from .._messages import convergence_message, warn_disagreement
from .._ridge import StandardizedRidge, with_data_scale
from ._arrays import weighted_standardization
from ._logistic import classifier_passes
from ._namespace import array_api_compat
from ._passes import ArrayAPIPasses
from ._starts import degenerate, initial_resp, run_pool
from ._validation import check_inputs, check_supported


def _variance_floor(xp, likelihood, y, sw, total):
    """The Gaussian likelihood's floor: ``reg_variance`` times the weighted
    variance of ``y`` (:meth:`GaussianLikelihood.validate_targets`)."""
    if not bool(xp.all(xp.isfinite(y))):
        raise ValueError("Input y contains NaN or infinity.")
    mean_y = float(sw @ y) / total
    var_y = float(sw @ ((y - mean_y) ** 2)) / total
    if not var_y > 0:
        var_y = max(mean_y * mean_y, 1.0)
    likelihood.variance_floor_ = likelihood.reg_variance * var_y
    likelihood.target_variance_ = var_y


def fit(estimator, X, y, sample_weight, xp):
    """:meth:`fit` of a mixture on array API inputs, in their namespace."""
    t_start = time.perf_counter()
    if estimator.__dict__.get("_frame_template") is not None:
        del estimator._frame_template
    prototypes = estimator._expert_prototypes()
    gate = estimator._new_gate()
    check_supported(estimator, prototypes, gate, sample_weight)
    X, y, sw = check_inputs(estimator, xp, X, y, sample_weight)
    likelihood = estimator._make_likelihood()
    if is_classifier(estimator):
        passes = classifier_passes(xp, likelihood, y, sw)
    else:
        passes = ArrayAPIPasses(xp)
    data = EMData(X, y, sw, X, likelihood, passes=passes)
    if X.shape[0] < len(prototypes):
        raise ValueError(
            f"Expected n_samples >= n_experts, got n_samples={X.shape[0]} and "
            f"n_experts={len(prototypes)}."
        )
    if not is_classifier(estimator):
        _variance_floor(xp, likelihood, y, sw, data.total)
    mean, scale = weighted_standardization(xp, X, sw, data.total)
    if any(type(p) is StandardizedRidge and p.scale is None for p in prototypes):
        prototypes = with_data_scale(prototypes, scale)
    gate = gate.prepare_statistics(mean, scale)
    rng = check_random_state(estimator.random_state)
    config = EMConfig.from_estimator(estimator)
    seeds = (
        [None] if estimator.n_init == 1
        else rng.randint(np.iinfo(np.int32).max, size=estimator.n_init)
    )
    best = None
    with _gather.gathered():
        for i_init, seed in enumerate(seeds):
            r = rng if seed is None else np.random.RandomState(seed)
            result = _restart(estimator, xp, data, prototypes, gate, config, r, i_init)
            if best is None or result.objective > best.objective:
                best = result
        if not best.converged:
            _gather.warn(convergence_message(estimator), ConvergenceWarning)
        if getattr(best, "disagree", False):
            warn_disagreement(best.candidates, data.total)
        _warn_collapsed(best, estimator.min_expert_weight)
    _set_fitted(estimator, best, data, xp, t_start)
    return estimator


def _restart(estimator, xp, data, prototypes, gate, config, rng, i_init):
    """One restart: the pool of ``init="auto"`` (:func:`run_pool`), or one
    EM run from the initial responsibilities of ``init``."""
    if isinstance(estimator.init, str) and estimator.init == "auto":
        return run_pool(xp, data, prototypes, gate, config, rng, estimator._init_pool)
    state = EMState(make_experts(prototypes, rng), copy.deepcopy(gate))
    resp = [initial_resp(estimator, xp, data.X, len(prototypes), rng, i_init)]
    return run_em(data, state, config, rng, resp)


def _warn_collapsed(result, min_expert_weight):
    """Warn about the experts below ``min_expert_weight`` (no collapse repair
    runs in the namespace; reads the ``n_experts`` shares only)."""
    usage = [float(u) for u in result.usage]
    if len(usage) < 2:
        return
    for k, share in enumerate(usage):
        if share < min_expert_weight:
            _gather.warn(
                f"Expert {k} holds only {share:.3g} of the training weight after "
                f"fitting, below min_expert_weight={min_expert_weight}; collapse "
                "repair does not run under array API dispatch (it does on NumPy "
                "arrays); consider fewer experts or another random_state.",
                UserWarning,
            )


def _set_fitted(estimator, result, data, xp, t_start):
    """The fitted attributes of an array API fit (arrays in ``xp``)."""
    state = result.state
    dev = array_api_compat.device(data.X)
    estimator.experts_ = state.experts
    estimator.gate_ = state.gate
    estimator._gate_in = GateInput(None, None)
    estimator.gate_features_ = None
    estimator._gate_width = data.X.shape[1]
    estimator.n_experts_ = len(state.experts)
    estimator._likelihood = data.likelihood
    estimator.__dict__.update(
        estimator._likelihood_attributes(data.likelihood, state.theta)
    )
    estimator.converged_ = result.converged
    estimator.n_iter_ = result.n_iter
    estimator.log_likelihood_history_ = xp.asarray(
        result.history, dtype=data.X.dtype, device=dev
    )
    estimator.log_likelihood_ = float(result.log_likelihood)
    estimator.expert_usage_ = result.usage
    estimator.repairs_ = []
    estimator.n_experts_bic_ = None  # n_experts=None means 2 here: no choice
    estimator.init_objectives_ = getattr(result, "init_objectives", None)
    estimator.init_candidates_ = getattr(result, "candidates", None)
    estimator.degenerate_experts_ = degenerate(result, data)
    estimator.fit_time_ = time.perf_counter() - t_start
