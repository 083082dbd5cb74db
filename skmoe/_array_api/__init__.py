"""Array API inputs (PyTorch, CuPy, array-api-strict) under scikit-learn's dispatch.

With ``sklearn.config_context(array_api_dispatch=True)`` and an ``X`` that is
not a NumPy array, a regressor with linear Gaussian experts
(:class:`~sklearn.linear_model.LinearRegression`,
:class:`~sklearn.linear_model.Ridge`, :class:`~skmoe.StandardizedRidge`) or
a classifier with :class:`~sklearn.linear_model.LogisticRegression` experts,
and a :class:`~skmoe.SoftmaxGate`, is fitted in the input's namespace, on its
device and in its dtype. Nothing of size ``n`` is copied to the host except
the initial responsibilities of ``init="random"`` (drawn with NumPy from
``random_state``, then moved once to the device); ``init="auto"`` (the
default) builds its starts on the device, but for the k-means start, computed
on the host from at most ``skmoe._pool.SUBSAMPLE_ABOVE`` rows.

The EM loop is the engine's own (:func:`skmoe._em.run_em`); the modules:

- ``_namespace``: namespace detection, conversions, :func:`to_numpy`, the
  checks of inputs at predict time;
- ``_validation``: the supported settings and the fit's input checks;
- ``_arrays``: row chunks and small array helpers;
- ``_gate``: the softmax gate's objective, Hessian and Newton steps;
- ``_passes``: the chunked passes of linear Gaussian experts
  (``ArrayAPIPasses``, the passes protocol of :mod:`skmoe._backends`, used in place of
  :mod:`skmoe._chunked` when the data carry a namespace);
- ``_logistic``: the batched logistic experts (``LogisticPasses``);
- ``_starts``: the initial responsibilities, ``init="auto"``'s pool;
- ``_fit``: the fit.

This package re-exports what the estimators use.
"""

from ._fit import fit
from ._logistic import classifier_posterior, predict_proba
from ._namespace import (
    check_X,
    fitted_namespace,
    namespace,
    refuse_fitted_namespace,
    to_numpy,
)
from ._passes import ArrayAPIPasses, posterior, predict
from ._validation import unsupported

__all__ = [
    "ArrayAPIPasses",
    "check_X",
    "classifier_posterior",
    "fit",
    "fitted_namespace",
    "namespace",
    "posterior",
    "predict",
    "predict_proba",
    "refuse_fitted_namespace",
    "to_numpy",
    "unsupported",
]
