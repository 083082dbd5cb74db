"""Density-based (highest predictive density) split conformal sets.

The conformity score of a calibration pair ``(x_i, y_i)`` is the mixture's
predictive density ``p(y_i | x_i)``. With ``n`` calibration pairs and
``k = ceil((n + 1)(1 - alpha))``, the threshold ``t`` is the ``k``-th largest
score, and the set of a new row is ``{y : p(y | x) >= t}``: a superlevel set
of the predictive density, one interval or several. If the calibration pairs
and the new pair are exchangeable, it contains the new ``y`` with
probability at least ``1 - alpha`` (and below ``1 - alpha + 1 / (n + 1)``
when the scores have no ties), whether or not the model is right.
"""

from math import ceil
from numbers import Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
)
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from ._predictive import check_alpha
from ._regressor import MixtureOfExpertsRegressor


class DensityConformalRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Split conformal prediction sets from a mixture's predictive density.

    The highest-predictive-density conformal set (HPD-split): the
    conformity score of a calibration pair is the mixture's density
    ``p(y | x)``, and the set of a new row is ``{y : p(y | x) >= t}``, with
    ``t`` the ``ceil((n + 1)(1 - alpha))``-th largest of the ``n``
    calibration scores. For exchangeable data the set covers the new target
    with probability at least ``1 - alpha`` (finite-sample, marginal), and
    it follows the shape of the density: two intervals where the mixture is
    bimodal.

    Two ways to use it, as :class:`~sklearn.calibration.CalibratedClassifierCV`:

    - ``DensityConformalRegressor(MixtureOfExpertsRegressor(...)).fit(X, y)``
      splits ``(X, y)``: a clone of the mixture is fitted on
      ``1 - calibration_size`` of the rows and calibrated on the rest.
    - ``DensityConformalRegressor(FrozenEstimator(fitted_mixture)).fit(X_cal, y_cal)``
      calibrates an already fitted mixture on ``(X_cal, y_cal)`` (rows it was
      not fitted on) without refitting it.

    Parameters
    ----------
    estimator : MixtureOfExpertsRegressor or FrozenEstimator, default=None
        The mixture (``None``: ``MixtureOfExpertsRegressor()``). Wrapped in
        :class:`~sklearn.frozen.FrozenEstimator`, a fitted mixture is used
        as it is and every row passed to :meth:`fit` calibrates it.

    alpha : float, default=0.1
        Miscoverage level in (0, 1): the sets cover with probability at
        least ``1 - alpha``. :meth:`predict_set` can take another.

    calibration_size : float, default=0.25
        Fraction of the rows passed to :meth:`fit` held out to calibrate
        (ignored for a ``FrozenEstimator``).

    random_state : int, RandomState instance or None, default=None
        Seed of the train/calibration split.

    Attributes
    ----------
    estimator_ : MixtureOfExpertsRegressor or FrozenEstimator
        The fitted mixture.

    calibration_scores_ : ndarray of shape (n_calibration,)
        The predictive density of every calibration pair, sorted from the
        largest.

    threshold_ : float
        The density threshold of the sets at ``alpha``.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    See Also
    --------
    MixtureOfExpertsRegressor.predict_interval : The model's own intervals
        (no coverage guarantee when the model is wrong).

    References
    ----------
    R. Izbicki, G. Shimizu and R. B. Stern, "CD-split and HPD-split:
    efficient conformal regions in high dimensions", JMLR 23(87), 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import DensityConformalRegressor, MixtureOfExpertsRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(600, 1))
    >>> y = np.where(rng.rand(600) < 0.5, 2, -2) * X[:, 0] + 0.2 * rng.randn(600)
    >>> conformal = DensityConformalRegressor(
    ...     MixtureOfExpertsRegressor(n_experts=2, random_state=0), random_state=0
    ... ).fit(X, y)
    >>> sets = conformal.predict_set(np.array([[1.5]]))
    >>> sets.n_intervals  # two branches: two intervals
    array([2])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "calibration_size": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, alpha=0.1, calibration_size=0.25, random_state=None):
        self.estimator = estimator
        self.alpha = alpha
        self.calibration_size = calibration_size
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the mixture on part of the rows and calibrate on the rest.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (calibration data only, for a ``FrozenEstimator``).

        y : array-like of shape (n_samples,)
            Target values.

        Returns
        -------
        self : DensityConformalRegressor
            The calibrated estimator.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        estimator = self._estimator()
        if isinstance(estimator, FrozenEstimator):
            self.estimator_ = estimator
            X_cal, y_cal = X, y
        else:
            X_fit, X_cal, y_fit, y_cal = train_test_split(
                X, y, test_size=self.calibration_size, random_state=self.random_state
            )
            self.estimator_ = clone(estimator).fit(X_fit, y_fit)
        check_is_fitted(self.estimator_)
        self.calibration_scores_ = -np.sort(-self._density(X_cal, y_cal))
        self.threshold_ = self._threshold(self.alpha)
        self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        return self

    def _estimator(self):
        if self.estimator is None:
            return MixtureOfExpertsRegressor()
        return self.estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self._estimator().__sklearn_tags__()
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.target_tags.positive_only = inner.target_tags.positive_only
        return tags

    def _density(self, X, y):
        mixture = self.estimator_._predictive_mixture(X)
        y = self.estimator_._likelihood.encode_targets(y, mixture.n_rows)
        return mixture.pdf_at(np.arange(mixture.n_rows), y)

    def _threshold(self, alpha):
        """The ``ceil((n + 1)(1 - alpha))``-th largest calibration density."""
        n = self.calibration_scores_.size
        rank = ceil((n + 1) * (1 - alpha) - 1e-12)
        if rank > n:
            raise ValueError(
                f"alpha={alpha} needs at least {ceil(1 / alpha - 1)} calibration "
                f"rows for a finite conformal set; got {n}. Use more calibration "
                "rows (calibration_size) or a larger alpha."
            )
        return float(self.calibration_scores_[rank - 1])

    def predict(self, X):
        """Predict the mixture's mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``estimator_.predict(X)``.
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    def predict_set(self, X, alpha=None):
        """Predict every row's conformal set, ``{y : p(y | x) >= t}``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        alpha : float, default=None
            Miscoverage level; ``None`` uses the ``alpha`` given at
            construction (``threshold_``).

        Returns
        -------
        sets : PredictionSet
            One or more intervals per row (possibly none); ``contains(y)``
            tells coverage, ``size()`` the total length, ``hull()`` the
            enclosing interval.
        """
        check_is_fitted(self)
        t = self.threshold_ if alpha is None else self._threshold(check_alpha(alpha))
        return self.estimator_._predictive_mixture(X).superlevel_set(t)

    def predict_interval(self, X, alpha=None):
        """Predict the smallest interval enclosing every row's conformal set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        alpha : float, default=None
            Miscoverage level; ``None`` uses the constructor's ``alpha``.

        Returns
        -------
        interval : ndarray of shape (n_samples, 2)
            ``[lower, upper]`` (it covers at least as often as the set);
            NaN for a row whose set is empty.
        """
        return self.predict_set(X, alpha).hull()
