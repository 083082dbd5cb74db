"""The regressor's predictive distribution as methods: quantiles, intervals,
samples (the maths in :mod:`skmoe._predictive`), and the options that keep
the density of rows off the training data from collapsing
(``predictive_variance="leverage"``, :mod:`skmoe._leverage`;
``clip_inputs``)."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp

from . import _dask, _routing
from ._frames import is_dataframe, numeric_array
from ._leverage import MAX_FEATURES, ExpertLeverage
from ._predictive import MixtureDistribution, check_alpha, check_probabilities


class PredictiveDistributionMixin:
    """Quantiles, intervals and samples of a fitted regression mixture, and
    the leverage and clipping options of its predictive density.

    Mixed into :class:`~skmoe.MixtureOfExpertsRegressor` before its base, so
    that ``_check_X`` (the clipping) and ``log_prob`` (the leverage) take
    effect in every prediction method.
    """

    def _predictive_mixture(self, X):
        """The predictive mixture at the rows of ``X``: routed gate weights
        and every expert's ``expert_distribution``."""
        X_raw, X = self._inputs(X)
        likelihood = self._likelihood
        if not hasattr(likelihood, "expert_distribution"):
            raise TypeError(
                f"The likelihood {type(likelihood).__name__} has no "
                "expert_distribution method; quantiles, intervals and samples "
                "need it (see the user guide, 'Write your own likelihood')."
            )
        gate = self._routed_gate(X)
        outputs = likelihood.outputs(self.experts_, X, _routing.rows_per_expert(gate))
        # Experts not routed to a row (top_k) carry no weight: give them the
        # row's mean, a valid parameter for every likelihood.
        outputs = np.where(gate > 0, outputs, likelihood.mean(gate, outputs)[:, None])
        theta = self._fitted_theta()
        if self._uses_leverage():
            theta = theta * (1.0 + self._leverage(numeric_array(X_raw)))
        components = likelihood.expert_distribution(outputs, theta)
        return MixtureDistribution(gate, components, getattr(likelihood, "discrete", False))

    def predict_quantiles(self, X, quantiles):
        """Compute quantiles of the predictive mixture.

        The ``q``-quantile of ``p(y | x) = sum_k pi_k(x) p_k(y | x)`` is the
        root of the mixture CDF ``sum_k pi_k(x) F_k(y) = q``, found per row
        inside the bracket of the experts' own ``q``-quantiles (to a relative
        1e-12); for a discrete likelihood (``"poisson"``), the smallest
        integer ``y`` with ``F(y) >= q``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        quantiles : float or array-like of shape (n_quantiles,)
            Probabilities, each strictly between 0 and 1.

        Returns
        -------
        y_quantiles : ndarray of shape (n_samples, n_quantiles)
            ``y_quantiles[i, j]`` is row ``i``'s ``quantiles[j]``-quantile.
        """
        q = check_probabilities(quantiles, "quantiles")
        return self._predictive_mixture(X).quantiles(q)

    def predict_interval(self, X, alpha=0.1, kind="equal-tailed"):
        """Predict intervals of probability ``1 - alpha`` under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        alpha : float, default=0.1
            Miscoverage level in (0, 1): the interval holds ``1 - alpha`` of
            the predictive probability.

        kind : {"equal-tailed", "hdr"}, default="equal-tailed"
            ``"equal-tailed"``: the ``alpha / 2`` and ``1 - alpha / 2``
            quantiles. ``"hdr"``: the highest predictive density region, the
            smallest set of probability ``1 - alpha``; for a bimodal mixture
            it is two (or more) intervals. It is found with a density
            threshold on a grid refined around every expert, the threshold
            solved by bisection so that the set's probability (from the CDF
            at its endpoints) is ``1 - alpha``; the achieved probability is
            returned in the set's ``mass``.

        Returns
        -------
        interval : ndarray of shape (n_samples, 2) or PredictionSet
            ``"equal-tailed"``: ``[lower, upper]`` per row. ``"hdr"``: a
            :class:`PredictionSet`, whose ``intervals[i]`` holds row ``i``'s
            intervals, ``to_array()`` pads them with NaN into an array of
            shape ``(n_samples, max_intervals, 2)``, and ``contains(y)``,
            ``size()`` and ``hull()`` answer the usual questions.
        """
        alpha = check_alpha(alpha)
        if kind not in ("equal-tailed", "hdr"):
            raise ValueError(f"kind must be 'equal-tailed' or 'hdr'; got {kind!r}.")
        mixture = self._predictive_mixture(X)
        if kind == "hdr":
            return mixture.highest_density_set(alpha)
        return mixture.quantiles([alpha / 2, 1 - alpha / 2])

    def sample_y(self, X, n_samples=1, random_state=None):
        """Draw targets from the predictive mixture.

        For every row and draw, an expert is drawn from the (routed) gate
        probabilities, then ``y`` from that expert's distribution, as
        :meth:`sklearn.gaussian_process.GaussianProcessRegressor.sample_y`
        draws from its posterior.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
            Input samples.

        n_samples : int, default=1
            Number of draws per row.

        random_state : int, RandomState instance or None, default=None
            Seed of the draws (``None``: fresh entropy, as in scikit-learn).

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples)
            The draws; integers (as floats) for a discrete likelihood.
        """
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(
            n_samples, Integral
        ) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        mixture = self._predictive_mixture(X)
        return mixture.sample(int(n_samples), random_state).astype(np.float64)

    def _check_predictive_variance(self, X):
        """Refuse, before fitting, what ``predictive_variance="leverage"``
        and ``clip_inputs=True`` cannot do."""
        leverage = self.predictive_variance == "leverage"
        if not (leverage or self.clip_inputs):
            return
        options = "predictive_variance='leverage' and clip_inputs=True"
        if _dask.is_dask_collection(X) or sp.issparse(X):
            raise ValueError(
                f"{options} need dense numeric X; sparse and dask inputs are "
                "not supported. Use predictive_variance='plugin' and "
                "clip_inputs=False."
            )
        if is_dataframe(X) and numeric_array(X) is None:
            raise ValueError(
                f"{options} need numeric X; the DataFrame has non-numeric "
                "columns. Use predictive_variance='plugin' and clip_inputs=False."
            )
        if not leverage:
            return
        shape = getattr(X, "shape", None)
        if shape is not None and len(shape) == 2 and shape[1] > MAX_FEATURES:
            raise ValueError(
                f"predictive_variance='leverage' supports at most {MAX_FEATURES} "
                f"columns; X has {shape[1]}. Use predictive_variance='plugin'."
            )
        if not isinstance(self.likelihood, str) or self.likelihood != "gaussian":
            raise ValueError(
                "predictive_variance='leverage' widens Gaussian experts' "
                f"variances; likelihood={self.likelihood!r} is not supported. "
                "Use predictive_variance='plugin'."
            )
        if _dask.is_dask_collection(X):
            raise ValueError(
                "predictive_variance='leverage' is not supported for dask "
                "inputs; use predictive_variance='plugin'."
            )

    def _fit_leverage(self, X, y, sample_weight):
        """The experts' leverage model (None for ``"plugin"``)."""
        if self.predictive_variance != "leverage":
            return None
        X_checked = self._check_X(X)
        X_num = numeric_array(X_checked)
        weights = self.responsibilities(X_checked, y)
        if sample_weight is not None:
            weights = weights * np.asarray(sample_weight, dtype=np.float64)[:, None]
        return ExpertLeverage.fit(X_num, weights)

    def _fit_input_range(self, X, sample_weight):
        """Every column's ``(min, max)`` over the training rows of positive
        weight (None unless ``clip_inputs``)."""
        if not self.clip_inputs:
            return None
        X_num = numeric_array(super()._check_X(X))
        if sample_weight is not None:
            X_num = X_num[np.asarray(sample_weight, dtype=np.float64) > 0]
        return X_num.min(axis=0), X_num.max(axis=0)

    def _inputs(self, X):
        """``(X checked, X as the experts and the gate see it)``: clipped to
        the training range under ``clip_inputs``."""
        X = super()._check_X(X)
        bounds = getattr(self, "_input_range", None)
        if not self.clip_inputs or bounds is None:
            return X, X
        if is_dataframe(X):
            return X, X.clip(lower=bounds[0], upper=bounds[1], axis=1)
        return X, np.clip(X, bounds[0], bounds[1])

    def _check_X(self, X):
        return self._inputs(X)[1]

    def _uses_leverage(self):
        return (
            self.predictive_variance == "leverage"
            and getattr(self, "_leverage", None) is not None
        )

    def log_prob(self, X, y):
        """Log-density of the mixture, ``log p(y | x)``, per sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            ``log sum_k pi_k(x) p_k(y | x)``. Under ``top_k``, the sum runs over each
            row's ``top_k`` most probable experts (by posterior): the
            sparse-EM bound that fitting maximises, never above the dense
            value. With ``predictive_variance="leverage"``, the experts'
            variances are ``sigma_k^2 (1 + h_k(x))`` and, under ``top_k``,
            the gate is routed as in :meth:`predict`.
        """
        if not self._uses_leverage():
            return super().log_prob(X, y)
        mixture = self._predictive_mixture(X)
        y = self._likelihood.encode_targets(y, mixture.n_rows)
        return mixture.logpdf_at(np.arange(mixture.n_rows), y)
