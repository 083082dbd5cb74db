"""Namespaces and conversions: which namespace an input or a fitted mixture
lives in, the checks of inputs at predict time, and the copy to NumPy
(:func:`to_numpy`).

The namespace comes from :func:`array_api_compat.array_namespace`, through
the copy that scikit-learn vendors (``sklearn.externals.array_api_compat``):
scikit-learn 1.9 exposes its own array API helpers only in the private
``sklearn.utils._array_api``.
"""

import copy

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import array_api_compat


def namespace(*arrays):
    """The array API namespace of ``arrays`` when dispatch is on and they are
    not NumPy arrays; None otherwise (the NumPy path, as without dispatch)."""
    dispatch = sklearn.get_config().get("array_api_dispatch", False)
    if array_api_compat is None or not dispatch:
        return None
    objs = [
        a for a in arrays
        if a is not None and not sp.issparse(a) and array_api_compat.is_array_api_obj(a)
    ]
    if not objs:
        return None
    xp = array_api_compat.array_namespace(*objs)
    if array_api_compat.is_numpy_namespace(xp):
        return None
    return xp


def fitted_namespace(estimator):
    """The namespace of a mixture's fitted arrays (None: NumPy, or not fitted)."""
    usage = estimator.__dict__.get("expert_usage_")
    if usage is None or isinstance(usage, np.ndarray) or array_api_compat is None:
        return None
    return array_api_compat.array_namespace(usage)


def to_numpy_array(a):
    """A NumPy copy of the array API array ``a`` (from any device)."""
    if isinstance(a, np.ndarray):
        return a.copy()
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if hasattr(a, "cpu") and hasattr(a, "detach"):  # PyTorch
        return a.detach().cpu().numpy().copy()
    return np.array(np.from_dlpack(a), copy=True)


def _convert(value, memo):
    """``value`` with every array API array in it (attributes of estimators,
    lists, tuples, dicts) replaced by a NumPy copy."""
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, (np.ndarray, str, bytes, int, float, bool, type(None))):
        return value
    if array_api_compat.is_array_api_obj(value) and not sp.issparse(value):
        out = to_numpy_array(value)
        if out.ndim == 0:
            out = out[()]
    elif isinstance(value, list):
        out = [_convert(v, memo) for v in value]
    elif isinstance(value, tuple) and not hasattr(value, "_fields"):
        out = tuple(_convert(v, memo) for v in value)
    elif isinstance(value, dict):
        out = {k: _convert(v, memo) for k, v in value.items()}
    elif hasattr(value, "__dict__") and type(value).__module__.startswith(
        ("skmoe.", "sklearn.")
    ):
        out = copy.copy(value)
        memo[id(value)] = out
        for name, attr in vars(value).items():
            setattr(out, name, _convert(attr, memo))
        return out
    else:
        out = value
    memo[id(value)] = out
    return out


def to_numpy(estimator):
    """A copy of a fitted mixture with NumPy arrays for every fitted attribute.

    A mixture fitted under ``sklearn.config_context(array_api_dispatch=True)``
    on PyTorch, CuPy or array-api-strict arrays keeps its fitted attributes
    in that namespace and on that device (as scikit-learn's array API
    estimators do). This returns an equivalent mixture on the CPU: the same
    parameters as NumPy arrays (copied from the device), predicting as the
    device model does, without dispatch.

    Parameters
    ----------
    estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
        A fitted mixture (one fitted on NumPy arrays is copied as it is).

    Returns
    -------
    estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
        A new fitted mixture whose arrays are NumPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor, to_numpy
    >>> X = np.linspace(-3, 3, 200)[:, None]
    >>> y = np.abs(X[:, 0])
    >>> cpu = to_numpy(MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y))
    >>> cpu.predict(X[:2]).shape
    (2,)
    """
    check_is_fitted(estimator)
    return _convert(estimator, {})


def check_X(estimator, xp, X, y=None):
    """``X`` (and ``y``) for a mixture fitted in the namespace ``xp``: arrays
    of that namespace, under dispatch, cast to the fitted dtype."""
    check_is_fitted(estimator)
    if namespace(X) is not xp:
        raise TypeError(
            f"This {type(estimator).__name__} was fitted on {xp.__name__} arrays "
            "under array_api_dispatch=True: pass arrays of that namespace under "
            "sklearn.config_context(array_api_dispatch=True), or get a NumPy "
            "model with skmoe.to_numpy(estimator)."
        )
    X = validate_data(estimator, X, dtype=None, reset=False)
    dtype = estimator.expert_usage_.dtype
    X = xp.astype(X, dtype)
    if y is not None:

        y = xp.asarray(y, device=array_api_compat.device(X))
        if not is_classifier(estimator):
            y = xp.astype(y, dtype)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y has shape {tuple(y.shape)}; expected ({X.shape[0]},).")
    return X, y


def refuse_fitted_namespace(estimator, X=None):
    """The NumPy code paths of a mixture fitted on array API inputs, or of a
    NumPy mixture given array API inputs under dispatch: a clear error."""
    foreign = X is not None and namespace(X) is not None
    if foreign and fitted_namespace(estimator) is None:
        raise TypeError(
            f"This {type(estimator).__name__} was fitted on NumPy arrays: pass "
            "NumPy arrays (it does not move a model to a device; fit it on the "
            "device's arrays under array_api_dispatch=True instead)."
        )
    xp = fitted_namespace(estimator)
    if xp is not None:
        raise TypeError(
            f"This {type(estimator).__name__} was fitted on {xp.__name__} arrays "
            "under array_api_dispatch=True; this method runs on NumPy arrays "
            "only (predict, log_prob, responsibilities and score run in the "
            "namespace). Use skmoe.to_numpy(estimator) for a NumPy model."
        )
