"""A fitted mixture's parameters as one flat vector, with their names.

Reads a fitted :class:`~skmoe.MixtureOfExpertsRegressor` or
:class:`~skmoe.MixtureOfExpertsClassifier` whose gate is a
:class:`~skmoe.SoftmaxGate` and whose experts are linear models, checks that
the exact information of :mod:`skmoe._information` applies (no penalty), and
lays the parameters out as :class:`~skmoe._information.Layout` says: the
gate against the reference expert 0, then every expert's coefficients and
its likelihood's parameters.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    Ridge,
)

from ._experts import estimator_name
from ._frames import is_dataframe
from ._gating import SoftmaxGate
from ._glm_likelihoods import GammaLikelihood, PoissonLikelihood
from ._information import Layout
from ._likelihood import GaussianLikelihood
from ._negbin import NegativeBinomialLikelihood
from ._ridge import StandardizedRidge

#: Experts with coefficients for each family, and the call that fits them
#: without a penalty (for the error message).
_SUPPORTED = {
    "gaussian": (
        (LinearRegression, Ridge, StandardizedRidge),
        "experts=LinearRegression()",
    ),
    "poisson": (
        (PoissonRegressor,),
        'experts=PoissonRegressor(alpha=0, solver="newton-cholesky")',
    ),
    "gamma": (
        (GammaRegressor,),
        'experts=GammaRegressor(alpha=0, solver="newton-cholesky")',
    ),
    "negbin": (
        (PoissonRegressor,),
        'experts=PoissonRegressor(alpha=0, solver="newton-cholesky")',
    ),
    "logistic": ((LogisticRegression,), "experts=LogisticRegression(C=np.inf)"),
}

#: The name of each family's own parameter in the tables.
THETA_NAMES = {"gaussian": "variance", "gamma": "shape", "negbin": "dispersion r"}

BOOTSTRAP_HINT = (
    "For other models, bootstrap(X, y, statistic=...) gives the sampling "
    "distribution of any quantity of the fitted mixture."
)


def family_of(model):
    """``"gaussian"``, ``"poisson"``, ``"gamma"``, ``"negbin"`` or
    ``"logistic"``, or a
    TypeError for a likelihood without an exact information."""
    if is_classifier(model):
        return "logistic"
    likelihood = model._likelihood
    for cls, name in (
        (GaussianLikelihood, "gaussian"),
        (PoissonLikelihood, "poisson"),
        (GammaLikelihood, "gamma"),
        (NegativeBinomialLikelihood, "negbin"),
    ):
        if type(likelihood) is cls:
            return name
    raise TypeError(
        f"Standard errors are computed for the gaussian, poisson, gamma and "
        f"negbin likelihoods; this mixture has {type(likelihood).__name__}. {BOOTSTRAP_HINT}"
    )


def _penalty(expert):
    """The penalty of a supported expert, 0 when it has none."""
    if isinstance(expert, LinearRegression):
        return 0.0
    if isinstance(expert, LogisticRegression):
        return 0.0 if expert.penalty is None or np.isinf(expert.C) else 1.0 / expert.C
    return float(expert.alpha)


def check_experts(model, family):
    """A TypeError for experts without coefficients; returns ``fit_intercept``."""
    classes = _SUPPORTED[family][0]
    for k, expert in enumerate(model.experts_):
        if type(expert) not in classes:
            names = ", ".join(c.__name__ for c in classes)
            raise TypeError(
                f"Expert {k} is {estimator_name(expert)}: standard errors of the "
                f"coefficients need linear experts ({names}"
                f" for likelihood {family!r}). {BOOTSTRAP_HINT}"
            )
    intercepts = {bool(e.fit_intercept) for e in model.experts_}
    if len(intercepts) > 1:
        raise ValueError("Every expert must have the same fit_intercept.")
    return intercepts.pop()


def refuse_penalties(model, family):
    """One ValueError naming every penalty of the fit (experts, gate) and
    the setting that removes it."""
    fixes = []
    penalised = [k for k, e in enumerate(model.experts_) if _penalty(e) > 0]
    if penalised:
        fixes.append(
            f"experts {penalised} ({estimator_name(model.experts_[penalised[0]])}) are "
            f"penalised: fit them with {_SUPPORTED[family][1]}"
        )
    gate = model.gate_
    if model.n_experts_ > 1 and (gate.alpha > 0 or gate.balance > 0):
        fixes.append(
            f"the gate is penalised (SoftmaxGate(alpha={gate.alpha}, balance="
            f"{gate.balance})): fit it with gate=SoftmaxGate(alpha=0)"
        )
    if fixes:
        raise ValueError(
            "Standard errors are those of the maximum-likelihood estimate, which a "
            f"penalty biases; {'; '.join(fixes)}. Or bootstrap the penalised fit "
            "with bootstrap(X, y) (the spread of the penalised estimator)."
        )


def check_gate(model):
    """A TypeError unless the gate is a SoftmaxGate (after any Pipeline
    steps); a ValueError under ``top_k``."""
    gate = model.gate_
    if not isinstance(gate, SoftmaxGate):
        raise TypeError(
            f"The gate is {type(gate).__name__}: standard errors need a SoftmaxGate "
            f"(the default). {BOOTSTRAP_HINT}"
        )
    if model.top_k is not None:
        raise ValueError(
            f"top_k={model.top_k} fits a sparse bound, not the likelihood; set "
            "top_k=None for standard errors."
        )


def layout_of(model, penalised_ok=False):
    """The :class:`~skmoe._information.Layout` of a fitted mixture and
    whether its experts fit an intercept, after every check."""
    family = family_of(model)
    check_gate(model)
    fit_intercept = check_experts(model, family)
    if not penalised_ok:
        refuse_penalties(model, family)
    n_links = len(model.classes_) - 1 if family == "logistic" else 1
    gate_width = model.gate_.coef_.shape[1] + 1
    expert_width = model.n_features_in_ + int(fit_intercept)
    return Layout(
        family, model.n_experts_, gate_width, expert_width, n_links
    ), fit_intercept


def _expert_block(expert, family, fit_intercept, n_classes):
    """One expert's coefficients ``(L, p)`` (class logits against class 0)."""
    coef = np.atleast_2d(np.asarray(expert.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(expert.intercept_, dtype=np.float64))
    if family == "logistic" and n_classes > 2:
        coef, intercept = coef[1:] - coef[0], intercept[1:] - intercept[0]
    if not fit_intercept:
        return coef
    return np.column_stack([coef, np.broadcast_to(intercept, (coef.shape[0],))])


def flat_parameters(model, layout, fit_intercept, order=None):
    """The flat parameter vector of ``model`` with its experts in ``order``
    (``order[j]``: the model's expert that becomes expert ``j``)."""
    order = np.arange(layout.n_experts) if order is None else np.asarray(order)
    gate = model.gate_
    W = np.column_stack([gate.coef_, gate.intercept_])[order]
    parts = [(W[1:] - W[0]).ravel()]
    theta = model.likelihood_params_ if layout.n_theta else None
    n_classes = layout.n_links + 1
    for k in order:
        expert = model.experts_[k]
        if family_classes_differ(model, expert, layout):
            raise ValueError(
                f"Expert {k} saw classes {expert.classes_.tolist()}, not every class "
                f"of the mixture ({model.classes_.tolist()}); its coefficients "
                "have no counterpart in the other experts'."
            )
        parts.append(
            _expert_block(expert, layout.family, fit_intercept, n_classes).ravel()
        )
        if layout.n_theta:
            parts.append([float(theta[k])])
    return np.concatenate(parts)


def family_classes_differ(model, expert, layout):
    """Whether a logistic expert's classes are not the mixture's."""
    return layout.family == "logistic" and len(expert.classes_) != layout.n_links + 1


def _input_names(model, columns=None):
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        names = np.array([f"x{j}" for j in range(model.n_features_in_)], dtype=object)
    names = [str(n) for n in names]
    return names if columns is None else [names[j] for j in columns]


def _gate_names(model):
    transformer = model._gate_parts()[0]
    if transformer is not None:
        try:
            return [str(n) for n in transformer.get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):
            return [f"z{j}" for j in range(model.gate_.coef_.shape[1])]
    return _input_names(model, model.gate_features_)


def parameter_names(model, layout, fit_intercept):
    """``(block, term)`` of every entry of the flat vector, in order."""
    names = []
    gate_terms = _gate_names(model) + ["intercept"]
    for k in range(1, layout.n_experts):
        names += [(f"gate: expert {k} vs 0", t) for t in gate_terms]
    terms = _input_names(model) + (["intercept"] if fit_intercept else [])
    for k in range(layout.n_experts):
        if layout.family == "logistic" and layout.n_links > 1:
            classes = [str(c) for c in model.classes_]
            block = [
                f"{classes[c]} vs {classes[0]}: {t}"
                for c in range(1, layout.n_links + 1)
                for t in terms
            ]
        else:
            block = list(terms)
        if layout.n_theta:
            block.append(THETA_NAMES[layout.family])
        names += [(f"expert {k}", t) for t in block]
    return names


def _dense(A, what):
    if sp.issparse(A):
        return A.toarray()
    try:
        return np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Standard errors need numeric {what}; encode its columns first ({exc})."
        ) from exc


def designs(model, X, y, fit_intercept):
    """``(Zd, Xd, y)``: the gate and expert designs and the encoded targets."""
    X = model._check_X(X)
    Z = _dense(model._gate_in(X), "gate input")
    Xn = _dense(X.to_numpy() if is_dataframe(X) else X, "X")
    n = Xn.shape[0]
    Zd = np.column_stack([Z, np.ones(n)])
    Xd = np.column_stack([Xn, np.ones(n)]) if fit_intercept else Xn
    y = model._likelihood.encode_targets(y, n)
    if is_classifier(model):
        y = np.searchsorted(model.classes_, y).astype(np.float64)
    return Zd, Xd, np.asarray(y, dtype=np.float64)
