"""StandardizedRidge: a ridge regression whose penalty is on the standardised scale."""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context, clone
from sklearn.linear_model import Ridge
from sklearn.utils._param_validation import Interval
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._gating import _weighted_standardization


def column_scale(X, sample_weight=None):
    """Weighted standard deviation of every column of ``X`` (dense or
    sparse), chunk by chunk (no copy of ``X``); a constant column gets 1.

    The same standardisation as the softmax gate's (one rule): the mixture's
    default experts are penalised on the gate's standardised scale.
    """
    if sample_weight is None:
        sample_weight = np.ones(X.shape[0])
    return _weighted_standardization(X, np.asarray(sample_weight, dtype=np.float64))[1]


def with_data_scale(prototypes, scale):
    """``prototypes`` with every :class:`StandardizedRidge` that has no
    ``scale`` given a clone with ``scale`` (the training data's weighted
    column scales): the penalty is then on the scale of the whole data, not
    of each expert's rows. One clone per distinct prototype."""
    fixed = {}
    out = []
    for p in prototypes:
        if type(p) is StandardizedRidge and p.scale is None:
            if id(p) not in fixed:
                fixed[id(p)] = clone(p).set_params(scale=scale)
            p = fixed[id(p)]
        out.append(p)
    return out


class StandardizedRidge(RegressorMixin, BaseEstimator):
    """Ridge regression with its penalty on the standardised inputs.

    Minimises ``sum_i w_i (y_i - b - x_i . beta)^2 + alpha * sum_j (s_j
    beta_j)^2``, where ``s_j`` is the (``sample_weight``-weighted) standard
    deviation of column ``j`` in the data given to :meth:`fit`, or
    ``scale[j]`` when ``scale`` is given (a constant column gets ``s_j =
    1``), and the intercept ``b`` is not penalised. It is
    :class:`~sklearn.linear_model.Ridge` fitted on ``X / s``, with the
    coefficients expressed back on the scale of ``X``: the penalty does not
    depend on the units of the columns.

    It is the default expert of :class:`MixtureOfExpertsRegressor`: an
    expert fits a slope on the rows it owns, with sample weights that are
    its responsibilities; a column that barely varies among those rows gets
    a slope that no data support, and a row slightly outside the training
    range is then predicted far off. The penalty (a Gaussian prior on the
    slopes of the standardised inputs: EM then finds the posterior mode)
    bounds such slopes, and weighs more on the experts that own less data,
    the ones that extrapolate. The scale must be the whole training set's,
    not the expert's own rows' (there, the column barely varies): a
    mixture sets ``scale`` of its StandardizedRidge experts whose
    ``scale`` is None to the training data's column scales (weighted by the
    mixture's ``sample_weight``) once per fit, and fits the experts
    together from their weighted normal equations.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the penalty on the standardised slopes (0: ordinary
        least squares).
    fit_intercept : bool, default=True
        Whether to fit an (unpenalised) intercept.
    scale : array-like of shape (n_features,), default=None
        The column scales ``s``; None: the weighted standard deviations of
        the columns of the ``X`` given to :meth:`fit`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients on the scale of ``X``.
    intercept_ : float or ndarray of shape (n_targets,)
        Intercept (0.0 when ``fit_intercept=False``).
    scale_ : ndarray of shape (n_features,)
        The column scales ``s`` used.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`, when ``X`` has string
        column names.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import StandardizedRidge
    >>> X = np.array([[0.0, 1000.0], [1.0, 3000.0], [2.0, 2000.0], [3.0, 5000.0]])
    >>> y = np.array([1.0, 3.0, 3.0, 6.0])
    >>> StandardizedRidge(alpha=1.0).fit(X, y).predict(X).round(2)
    array([1.19, 3.06, 3.14, 5.61])
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "scale": ["array-like", None],
    }

    def __init__(self, alpha=1.0, *, fit_intercept=True, scale=None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.scale = scale

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the penalised least squares.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows' squared errors.

        Returns
        -------
        self : StandardizedRidge
            The fitted estimator.
        """
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], dtype=np.float64,
            multi_output=True, y_numeric=True,
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.scale is None:
            scale = column_scale(X, sample_weight)
        else:
            scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
            if scale.shape != (X.shape[1],) or not np.all(scale > 0):
                raise ValueError(
                    f"scale must hold {X.shape[1]} positive values (one per "
                    f"column of X); got {self.scale!r}."
                )
        Xs = X @ sp.diags(1.0 / scale) if sp.issparse(X) else X / scale
        ridge = Ridge(alpha=self.alpha, fit_intercept=self.fit_intercept)
        ridge.fit(Xs, y, sample_weight=sample_weight)
        self.scale_ = scale
        self.coef_ = ridge.coef_ / scale
        self.intercept_ = ridge.intercept_
        return self

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predicted values.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=np.float64, reset=False
        )
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags
