"""Standard errors, covariance, bootstrap and summary tables of a fitted mixture.

The public methods that :class:`~skmoe.MixtureOfExpertsRegressor` and
:class:`~skmoe.MixtureOfExpertsClassifier` inherit from
:class:`StandardErrorsMixin`; the maths is in :mod:`skmoe._information`, the
parameters' layout in :mod:`skmoe._coefficients`, the refits in
:mod:`skmoe._bootstrap` and the tables in :mod:`skmoe._summary`.
"""

import warnings

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _bootstrap, _coefficients, _information, _summary

#: The analytic covariances.
COVARIANCE_TYPES = ("observed", "robust")

#: A Newton step from the fitted parameters longer than this many standard
#: errors means the fit stopped short of the maximum.
_NEWTON_STEP_WARN = 0.1


class StandardErrorsMixin:
    """Covariance, standard errors, bootstrap and ``summary()`` of a mixture
    of linear experts under a :class:`~skmoe.SoftmaxGate`."""

    def _information_parts(self, X, y, sample_weight):
        """``(layout, names, params, info, meat)`` on the data ``(X, y)``."""
        check_is_fitted(self)
        layout, fit_intercept = _coefficients.layout_of(self)
        params = _coefficients.flat_parameters(self, layout, fit_intercept)
        Zd, Xd, y_enc = _coefficients.designs(self, X, y, fit_intercept)
        w = None if sample_weight is None else _check_sample_weight(sample_weight, Xd)
        info, meat, score = _information.information(layout, params, Zd, Xd, y_enc, w)
        names = _coefficients.parameter_names(self, layout, fit_intercept)
        return layout, names, params, info, meat, score

    def covariance(self, X, y, sample_weight=None, *, covariance_type="observed"):
        """Covariance of every gate and expert parameter at the fitted optimum.

        The inverse of the observed information (the negative Hessian of
        the mixture's log-likelihood on ``(X, y)``, exact), or the sandwich
        ``H^-1 (sum_i s_i s_i^T) H^-1`` of the per-row scores ``s_i``. The
        gate's coefficients are those of expert ``k`` against expert 0
        (``coef_[k] - coef_[0]`` of :class:`~skmoe.SoftmaxGate`); a
        logistic expert's are those of class ``c`` against the first class.
        Needs unpenalised linear experts and gate: see the user guide,
        "Standard errors and tests".

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data the mixture was fitted on.
        y : array-like of shape (n_samples,)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The fit's sample weights (frequency weights).
        covariance_type : {"observed", "robust"}, default="observed"
            The inverse observed information, or the sandwich (robust to a
            misspecified expert likelihood).

        Returns
        -------
        cov : ndarray of shape (n_parameters, n_parameters)
            In the order of :meth:`summary_frame`'s rows.
        """
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}; "
                f"got {covariance_type!r}."
            )
        _, _, _, info, meat, score = self._information_parts(X, y, sample_weight)
        return _checked_covariance(
            info, meat if covariance_type == "robust" else None, score
        )

    def bootstrap(
        self,
        X,
        y,
        sample_weight=None,
        *,
        n_boot=200,
        method="parametric",
        statistic=None,
        n_jobs=None,
        random_state=None,
    ):
        """Refit the mixture on bootstrap replicates, aligned to its experts.

        Every replicate starts EM from this fit's responsibilities on its
        rows; its experts are then matched to this fit's (label switching)
        by their responsibilities on ``(X, y)`` and an optimal assignment.
        The spread of the rows estimates the sampling distribution, also for
        penalised fits (then of the penalised estimator).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data the mixture was fitted on.
        y : array-like of shape (n_samples,)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The fit's sample weights.
        n_boot : int, default=200
            Number of replicates.
        method : {"parametric", "nonparametric"}, default="parametric"
            Targets drawn from the fitted mixture at the same inputs, or
            rows drawn with replacement.
        statistic : callable, default=None
            ``statistic(mixture) -> 1-D array``, applied to every aligned
            refit; None gives the parameters in :meth:`summary_frame`'s
            order (linear experts and a SoftmaxGate needed).
        n_jobs : int, default=None
            Replicates fitted in parallel (joblib).
        random_state : int, RandomState instance or None, default=None
            Seeds the replicates.

        Returns
        -------
        replicates : ndarray of shape (n_replicates, n_statistics)
            One row per replicate whose refit kept every expert;
            ``np.cov(replicates, rowvar=False)`` is a covariance for
            :meth:`summary`'s ``cov``.
        """
        check_is_fitted(self)
        _coefficients.check_gate(self)
        if statistic is None:
            layout, fit_intercept = _coefficients.layout_of(self, penalised_ok=True)

            def statistic(model):
                return _coefficients.flat_parameters(model, layout, fit_intercept)

        return _bootstrap.bootstrap(
            self,
            X,
            y,
            statistic,
            sample_weight=sample_weight,
            n_boot=n_boot,
            method=method,
            n_jobs=n_jobs,
            random_state=random_state,
        )

    def _summary_rows(self, X, y, sample_weight, covariance_type, cov, alpha):
        layout, names, params, info, meat, score = self._information_parts(
            X, y, sample_weight
        )
        if cov is None:
            if covariance_type not in COVARIANCE_TYPES:
                raise ValueError(
                    f"covariance_type must be one of {COVARIANCE_TYPES}; got "
                    f"{covariance_type!r}."
                )
            cov = _checked_covariance(
                info, meat if covariance_type == "robust" else None, score
            )
            label = covariance_type
        else:
            cov = np.asarray(cov, dtype=np.float64)
            if cov.shape != (layout.size, layout.size):
                raise ValueError(
                    f"cov must have shape {(layout.size, layout.size)}; "
                    f"got {cov.shape}."
                )
            label = "given"
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
        title = (
            f"{type(self).__name__}: {layout.n_experts} experts "
            f"({layout.family}), covariance: {label}"
        )
        return _summary.coefficient_table(names, params, se, alpha), title

    def summary(
        self,
        X,
        y,
        sample_weight=None,
        *,
        covariance_type="observed",
        cov=None,
        alpha=0.05,
    ):
        """Coefficient tables of the gate and of every expert.

        For each parameter: the estimate, its standard error, the Wald
        ``z``, its two-sided p-value and the ``1 - alpha`` interval, with the
        input names of ``feature_names_in_``. The experts keep the fitted
        order; the gate's rows compare expert ``k`` with expert 0.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data the mixture was fitted on.
        y : array-like of shape (n_samples,)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The fit's sample weights.
        covariance_type : {"observed", "robust"}, default="observed"
            See :meth:`covariance`.
        cov : array-like of shape (n_parameters, n_parameters), default=None
            A covariance to use instead (e.g. of :meth:`bootstrap`'s rows).
        alpha : float, default=0.05
            The intervals are at level ``1 - alpha``.

        Returns
        -------
        summary : MixtureSummary
            ``print(summary)`` shows the table; ``summary.as_frame()`` is
            :meth:`summary_frame`.
        """
        rows, title = self._summary_rows(
            X, y, sample_weight, covariance_type, cov, alpha
        )
        return _summary.MixtureSummary(rows, title, alpha)

    def summary_frame(
        self,
        X,
        y,
        sample_weight=None,
        *,
        covariance_type="observed",
        cov=None,
        alpha=0.05,
    ):
        """The table of :meth:`summary` as a pandas DataFrame.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data the mixture was fitted on.
        y : array-like of shape (n_samples,)
            Its targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The fit's sample weights.
        covariance_type : {"observed", "robust"}, default="observed"
            See :meth:`covariance`.
        cov : array-like of shape (n_parameters, n_parameters), default=None
            A covariance to use instead.
        alpha : float, default=0.05
            The intervals are at level ``1 - alpha``.

        Returns
        -------
        frame : pandas.DataFrame
            Indexed by ``(block, term)``; columns ``coef``, ``std err``,
            ``z``, ``P>|z|`` and the interval's bounds.
        """
        rows, _ = self._summary_rows(X, y, sample_weight, covariance_type, cov, alpha)
        return _summary.table_frame(rows, alpha)


def _checked_covariance(info, meat, score):
    """The covariance, a clear error where the information is singular, and
    a warning where the fit stopped short of the maximum."""
    try:
        cov = _information.covariance_from_information(info, meat)
    except np.linalg.LinAlgError:
        raise ValueError(
            "The observed information is not positive definite: the fit is not at "
            "a maximum of the likelihood (see converged_), or a parameter is not "
            "identified (an expert with fewer rows than coefficients, collinear "
            "inputs, a gate that separates the experts perfectly). Use "
            "bootstrap(X, y) or fewer experts."
        ) from None
    inv_info = _information.covariance_from_information(info)
    step = inv_info @ score
    se = np.sqrt(np.diag(inv_info))
    if np.max(np.abs(step) / se) > _NEWTON_STEP_WARN:
        warnings.warn(
            "The fit is not at the maximum of the likelihood: a Newton step moves "
            f"a parameter by {np.max(np.abs(step) / se):.2f} standard errors. Refit "
            "with a smaller tol (and a larger max_iter) before reading the standard "
            "errors.",
            UserWarning,
            stacklevel=3,
        )
    return cov
