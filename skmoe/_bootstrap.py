"""Parametric and nonparametric bootstrap of a fitted mixture.

Every replicate is refitted by EM from the fitted model's posterior
responsibilities on the replicate's rows (``init=`` that array, one start),
so that it starts at the fitted optimum rather than anywhere. Its experts
are then matched to the fitted ones (label switching): the replicate's and
the fitted model's responsibilities on the original data are compared, and
:func:`scipy.optimize.linear_sum_assignment` picks the permutation with the
largest agreement ``sum_i r_ik r'_{i order[k]}``.
"""

import copy
import warnings

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.utils import check_random_state

#: The bootstrap kinds.
METHODS = ("parametric", "nonparametric")


def align_experts(reference_resp, replicate_resp):
    """The order of a replicate's experts that matches the reference's.

    Parameters
    ----------
    reference_resp : ndarray of shape (n_samples, n_experts)
        Responsibilities of the fitted model.
    replicate_resp : ndarray of shape (n_samples, n_experts)
        Responsibilities of the replicate on the same rows.

    Returns
    -------
    order : ndarray of shape (n_experts,)
        ``order[k]`` is the replicate's expert that plays the fitted
        expert ``k``.
    """
    agreement = reference_resp.T @ replicate_resp
    rows, cols = linear_sum_assignment(-agreement)
    return cols[np.argsort(rows)]


def permuted_mixture(model, order):
    """A copy of a fitted mixture (SoftmaxGate) with its experts in ``order``.

    Parameters
    ----------
    model : fitted mixture
        Its gate must store one row of coefficients per expert.
    order : array-like of shape (n_experts,)
        ``order[j]``: the model's expert that becomes expert ``j``.

    Returns
    -------
    permuted : fitted mixture
        The same model with its experts renumbered.
    """
    order = np.asarray(order)
    out = copy.deepcopy(model)
    out.experts_ = [out.experts_[k] for k in order]
    out.gate_.coef_ = out.gate_.coef_[order]
    out.gate_.intercept_ = out.gate_.intercept_[order]
    theta = getattr(out, "likelihood_params_", None)
    if theta is not None:
        for name in ("likelihood_params_", "noise_variance_", "shape_"):
            if name in out.__dict__:
                setattr(out, name, np.asarray(getattr(out, name))[order])
    return out


def simulate(model, X, rng):
    """Targets drawn from a fitted mixture at the inputs ``X``.

    Parameters
    ----------
    model : fitted mixture
        A regressor whose likelihood has ``expert_distribution`` (every
        built-in one), or a classifier.
    X : array-like of shape (n_samples, n_features)
        The inputs.
    rng : numpy.random.RandomState
        The random numbers.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        One draw of ``y`` given every row of ``X``.
    """
    gate = model.predict_gate(X)
    cum = np.cumsum(gate, axis=1)
    k = np.minimum(
        (rng.uniform(size=(len(gate), 1)) > cum).sum(axis=1), gate.shape[1] - 1
    )
    rows = np.arange(len(gate))
    outputs = model._likelihood.outputs(model.experts_, model._check_X(X))
    if outputs.ndim == 3:  # class probabilities (n, K, C)
        proba = outputs[rows, k]
        c = (rng.uniform(size=(len(gate), 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
        return model.classes_[np.minimum(c, proba.shape[1] - 1)]
    likelihood = model._likelihood
    if not hasattr(likelihood, "expert_distribution"):
        raise TypeError(
            f"The parametric bootstrap cannot draw from {type(likelihood).__name__} "
            "(it has no expert_distribution); use method='nonparametric'."
        )
    experts = likelihood.expert_distribution(outputs, model._fitted_theta())
    draws = np.asarray(experts.rvs(random_state=rng), dtype=np.float64)
    return draws[rows, k]


def _replicate(model, X, y, method, seed):
    """``(rows, y)`` of one replicate: resampled rows, or simulated targets."""
    rng = np.random.RandomState(seed)
    n = len(y)
    if method == "nonparametric":
        rows = rng.randint(0, n, size=n)
        return rows, np.asarray(y)[rows]
    return np.arange(n), simulate(model, X, rng)


def _take(A, rows):
    if A is None:
        return None
    return A.iloc[rows] if hasattr(A, "iloc") else A[rows]


def _one_replicate(model, X, y, sample_weight, method, seed, statistic, ref_resp):
    """The aligned statistic of one bootstrap replicate (None if its fit failed)."""
    rows, y_b = _replicate(model, X, y, method, seed)
    X_b = _take(X, rows)
    w_b = _take(sample_weight, rows)
    init = model.responsibilities(X_b, y_b)
    params = {"init": init, "n_init": 1, "random_state": seed, "warm_start": False}
    if not isinstance(model.experts, list):
        params["n_experts"] = model.n_experts_
    refit = clone(model).set_params(**params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refit.fit(X_b, y_b, sample_weight=w_b)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    if refit.n_experts_ != model.n_experts_:
        return None
    order = align_experts(ref_resp, refit.responsibilities(X, y))
    return np.asarray(statistic(permuted_mixture(refit, order)), dtype=np.float64)


def bootstrap(
    model,
    X,
    y,
    statistic,
    *,
    sample_weight=None,
    n_boot=200,
    method="parametric",
    n_jobs=None,
    random_state=None,
):
    """The statistic of ``n_boot`` aligned bootstrap refits, ``(n_ok, m)``.

    Parameters
    ----------
    model : fitted mixture
        The fitted model (a SoftmaxGate).
    X, y : array-like
        The training data.
    statistic : callable
        ``statistic(mixture) -> 1-D array`` on an aligned refit.
    sample_weight : array-like of shape (n_samples,), default=None
        The fit's sample weights.
    n_boot : int, default=200
        Replicates.
    method : {"parametric", "nonparametric"}, default="parametric"
        Simulated targets at the same inputs, or resampled rows.
    n_jobs : int, default=None
        Replicates fitted in parallel (joblib).
    random_state : int, RandomState instance or None, default=None
        Seeds the replicates.

    Returns
    -------
    replicates : ndarray of shape (n_ok, m)
        One row per replicate whose refit succeeded with every expert kept.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    rng = check_random_state(random_state)
    seeds = rng.randint(0, 2**31 - 1, size=n_boot)
    ref_resp = model.responsibilities(X, y)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_one_replicate)(
            model, X, y, sample_weight, method, s, statistic, ref_resp
        )
        for s in seeds
    )
    kept = [r for r in results if r is not None]
    if len(kept) < n_boot:
        warnings.warn(
            f"{n_boot - len(kept)} of {n_boot} bootstrap refits failed or lost an "
            "expert and were left out.",
            UserWarning,
            stacklevel=3,
        )
    if not kept:
        raise ValueError("Every bootstrap refit failed; no replicate to pool.")
    return np.vstack(kept)
