"""What the array API path supports, and the validation of a fit's inputs:
a clear error for anything else (never a silent copy to the CPU)."""

from sklearn.base import is_classifier
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.utils.validation import validate_data

from .. import _linear
from .._gating import SoftmaxGate
from .._likelihood import CategoricalLikelihood, GaussianLikelihood
from .._ridge import StandardizedRidge
from ._namespace import array_api_compat, namespace

#: ``init`` values supported under array API dispatch (and an array).
SUPPORTED_INIT = ("auto", "random")


def unsupported(what):
    return ValueError(
        f"{what} is not supported under array_api_dispatch=True with non-NumPy "
        "inputs (skmoe never copies the data to the CPU silently); pass NumPy "
        "arrays, or see the user guide's 'GPU and the array API' section for "
        "what runs in the array's namespace."
    )


def check_supported(estimator, prototypes, gate, sample_weight):
    """Raise a clear error for any setting the array API path cannot run."""
    classifier = is_classifier(estimator)
    likelihood = CategoricalLikelihood if classifier else GaussianLikelihood
    checks = [
        (estimator.solver == "em", f"solver={estimator.solver!r}"),
        (estimator.assignment == "soft", f"assignment={estimator.assignment!r}"),
        (estimator.top_k is None, f"top_k={estimator.top_k!r}"),
        (estimator.gate_features is None, "gate_features"),
        (not estimator.warm_start, "warm_start=True"),
        (estimator.n_jobs in (None, 1), f"n_jobs={estimator.n_jobs!r}"),
        (
            not isinstance(estimator.init, str) or estimator.init in SUPPORTED_INIT,
            f"init={estimator.init!r} (use init='auto', init='random' or an array "
            "of initial responsibilities)",
        ),
        (type(gate) is SoftmaxGate, f"the gate {type(gate).__name__}"),
        (
            type(gate) is not SoftmaxGate or float(gate.balance) == 0.0,
            "SoftmaxGate(balance > 0)",
        ),
        (
            type(estimator._make_likelihood()) is likelihood,
            f"likelihood={getattr(estimator, 'likelihood', None)!r}",
        ),
    ]
    for ok, what in checks:
        if not ok:
            raise unsupported(what)
    if classifier:
        for k, p in enumerate(prototypes):
            if not _linear.batchable_logistic(p):
                raise unsupported(
                    f"Expert {k} ({type(p).__name__}; the supported experts are "
                    "LogisticRegression with an L2 penalty or none, no "
                    "class_weight, dual=False)"
                )
        return
    for k, p in enumerate(prototypes):
        if type(p) not in (LinearRegression, Ridge, StandardizedRidge) or not (
            _linear.batchable(p)
        ):
            raise unsupported(
                f"Expert {k} ({type(p).__name__}; the supported experts are "
                "LinearRegression, Ridge with solver 'auto'/'cholesky'/'svd' and "
                "StandardizedRidge)"
            )


def check_inputs(estimator, xp, X, y, sample_weight):
    """Validated ``(X, y, sample_weight)`` in the namespace of ``X``."""
    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target "
            "y is None."
        )

    classifier = is_classifier(estimator)
    X, y = validate_data(
        estimator, X, y, dtype=None, y_numeric=not classifier, reset=True
    )
    if X.dtype not in (xp.float64, xp.float32):
        X = xp.astype(X, xp.float64)
    if y.ndim != 1:
        raise unsupported("A 2-D y (several outputs)")
    if not classifier:
        y = xp.astype(y, X.dtype)
    dev = array_api_compat.device(X)
    if sample_weight is None:
        sw = xp.ones((X.shape[0],), dtype=X.dtype, device=dev)
    else:
        if namespace(sample_weight) is not xp and not isinstance(sample_weight, float):
            raise unsupported("A sample_weight in another namespace than X")
        sw = xp.astype(xp.asarray(sample_weight, device=dev), X.dtype)
        if sw.ndim == 0:
            sw = xp.full((X.shape[0],), float(sw), dtype=X.dtype, device=dev)
        if sw.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight has shape {tuple(sw.shape)}; expected ({X.shape[0]},)."
            )
        if not bool(xp.all(xp.isfinite(sw))) or bool(xp.any(sw < 0)):
            raise ValueError("sample_weight must be finite and non-negative.")
        if not float(xp.sum(sw)) > 0:
            raise ValueError("sample_weight must have a positive sum.")
    return X, y, sw
