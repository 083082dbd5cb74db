"""Poisson and Gamma GLM experts fitted by a direct Newton method.

A mixture's M-step refits every expert with new weights, and a
:class:`~sklearn.linear_model.PoissonRegressor` or
:class:`~sklearn.linear_model.GammaRegressor` fit costs milliseconds of
validation and set-up around a few Newton iterations on a small problem.
Here the experts are refitted directly: for expert ``k`` with weights
``w`` (normalised to ``s = w / sum(w)``), scikit-learn's objective

.. math::

    f(\\beta) = \\sum_i s_i\\, \\ell(y_i, \\eta_i) + \\frac{\\alpha}{2}
    \\lVert \\beta_{\\text{coef}} \\rVert^2, \\qquad \\eta = X\\beta_{\\text{coef}}
    + \\beta_0,

with the half deviance ``l = exp(eta) - y eta`` (Poisson) or
``l = eta + y exp(-eta)`` (Gamma), both with the log link, is minimised by
Newton's method with a backtracking (Armijo) line search, warm-started from
the expert's current coefficients. The gradient is ``X^T (s g)`` and the
Hessian ``X^T diag(s h) X + alpha I`` with ``g = mu - y, h = mu`` (Poisson)
or ``g = 1 - y / mu, h = y / mu`` (Gamma), ``mu = exp(eta)``. It stops
when the largest gradient component is below ``_GTOL`` or the predicted
decrease of ``f`` is below its floating-point resolution: the same optimum
as the estimator's own ``fit(X, y, sample_weight=w)`` (to 1e-6 on the
coefficients; see the tests). An expert whose Newton iteration does not
converge is handed back to its own ``fit``.
"""

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from sklearn.linear_model import GammaRegressor, PoissonRegressor

#: Gradient tolerance of the direct Newton fit (the objective is a weighted
#: mean, so this is relative to the scale of the loss).
_GTOL = 1e-10
_MAX_ITER = 100
_MAX_ETA = 700.0  # exp overflows above
#: Largest sparse X (in entries) that the mixtures densify for this fit.
MAX_DENSIFY = 2_000_000


def batchable_glm(expert):
    """Whether ``expert`` is a plain Poisson or Gamma GLM (log link) fitted here."""
    kind = type(expert)
    if kind not in (PoissonRegressor, GammaRegressor):
        return False
    alpha = expert.alpha
    number = isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
    return number and alpha >= 0


def _terms(kind, eta, y):
    """Half deviance up to a constant, its first and second derivatives in ``eta``."""
    if kind is PoissonRegressor:
        mu = np.exp(eta)
        return mu - y * eta, mu - y, mu
    ratio = y * np.exp(-eta)
    return eta + ratio, 1.0 - ratio, ratio


def _objective(kind, Xa, y, s, beta, alpha, penalised):
    eta = Xa @ beta
    if not np.all(np.abs(eta) < _MAX_ETA):
        return np.inf, None
    loss, g, h = _terms(kind, eta, y)
    b = beta[penalised]
    return float(s @ loss) + 0.5 * alpha * float(b @ b), (g, h)


def _newton(kind, Xa, y, s, beta, alpha, penalised):
    """Minimise the objective from ``beta``; returns ``(beta, n_iter)`` or None."""
    f, gh = _objective(kind, Xa, y, s, beta, alpha, penalised)
    if not np.isfinite(f):
        return None
    reg = np.zeros(Xa.shape[1])
    reg[penalised] = alpha
    for n_iter in range(1, _MAX_ITER + 1):
        g, h = gh
        grad = Xa.T @ (s * g) + reg * beta
        if np.max(np.abs(grad)) <= _GTOL:
            return beta, n_iter - 1
        H = (Xa * (s * h)[:, None]).T @ Xa
        H[np.diag_indices_from(H)] += reg
        try:
            factor = cho_factor(H, check_finite=False)
            step = cho_solve(factor, grad, check_finite=False)
        except (LinAlgError, ValueError):
            return None
        if not np.all(np.isfinite(step)):
            return None
        decrease = float(grad @ step)
        if decrease <= 4e-16 * max(1.0, abs(f)):
            # The predicted decrease (twice the Newton decrement) is below the
            # resolution of f: the optimum, to floating-point accuracy.
            return beta, n_iter - 1
        t = 1.0
        while True:
            trial = beta - t * step
            f_new, gh_new = _objective(kind, Xa, y, s, trial, alpha, penalised)
            if f_new <= f - 1e-4 * t * decrease or t < 1e-10:
                break
            t *= 0.5
        if not np.isfinite(f_new):
            return None
        if f_new >= f and t < 1e-10:
            # No progress is possible in floating point: at the optimum.
            return beta, n_iter
        beta, f, gh = trial, f_new, gh_new
    return None


def _start(expert, Xa, y, s, fit_intercept):
    """The expert's current coefficients (warm start) or scikit-learn's start."""
    n_coef = Xa.shape[1] - int(fit_intercept)
    coef = getattr(expert, "coef_", None)
    if coef is not None and np.shape(coef) == (n_coef,) and np.all(np.isfinite(coef)):
        beta = np.array(coef, dtype=np.float64)
        if fit_intercept:
            beta = np.append(beta, float(expert.intercept_))
        return beta
    beta = np.zeros(Xa.shape[1])
    if fit_intercept:
        beta[-1] = np.log(max(float(s @ y), 1e-300))
    return beta


def fit_glm_experts(experts, X, y, weights):
    """Fit Poisson / Gamma GLM experts (see :func:`batchable_glm`) on dense ``X``.

    ``weights[:, j]`` are expert ``j``'s sample weights. Returns, per expert,
    whether it was fitted here (False: fit it with its own ``fit``).
    """
    X = np.asarray(X, dtype=np.float64)
    with_intercept = np.column_stack([X, np.ones(X.shape[0])])
    done = []
    for j, expert in enumerate(experts):
        w = weights[:, j]
        rows = w > 0
        total = w.sum()
        if not total > 0 or rows.sum() < 1:
            done.append(False)
            continue
        fit_intercept = bool(expert.fit_intercept)
        Xa = (with_intercept if fit_intercept else X)[rows]
        yr, s = y[rows], w[rows] / total
        penalised = np.arange(X.shape[1])
        kind = type(expert)
        beta0 = _start(expert, Xa, yr, s, fit_intercept)
        out = _newton(kind, Xa, yr, s, beta0, float(expert.alpha), penalised)
        if out is None:
            done.append(False)
            continue
        beta, n_iter = out
        if fit_intercept:
            expert.coef_, expert.intercept_ = beta[:-1].copy(), float(beta[-1])
        else:
            expert.coef_, expert.intercept_ = beta.copy(), 0.0
        expert.n_iter_ = n_iter
        expert.n_features_in_ = X.shape[1]
        expert._base_loss = expert._get_loss()
        done.append(True)
    return done


def predicts_directly(expert, X):
    """Whether :func:`predict_glm` may replace ``expert.predict(X)``: a fitted
    plain GLM (:func:`batchable_glm`) on a numpy ``X`` of its width (not a
    DataFrame: the expert's own predict checks its column names)."""
    return (
        batchable_glm(expert)
        and isinstance(X, np.ndarray)
        and getattr(expert, "n_features_in_", None) == X.shape[1]
        and hasattr(expert, "coef_")
    )


def predict_glm(expert, X):
    """``expert.predict(X)`` without the validation: ``exp(X coef + b)``."""
    eta = X @ expert.coef_
    eta += expert.intercept_
    return np.exp(eta, out=eta)
