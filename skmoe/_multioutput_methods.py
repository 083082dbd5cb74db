"""The regressor's multi-output methods: which fits are multi-output, their
likelihood and experts (one estimator per output, :mod:`skmoe._multioutput`),
predictions shaped as ``y``, per-output log-densities and the multi-output
R^2."""

import numpy as np
from scipy.special import logsumexp
from sklearn.base import is_classifier
from sklearn.metrics import r2_score

from . import _frames
from ._experts import estimator_name
from ._multioutput import BernoulliLikelihood, MultiOutputExpert, MultiOutputLikelihood
from ._ridge import StandardizedRidge, column_scale, with_data_scale


def target_shape(y):
    """The shape of ``y`` (a list, an array or anything with ``__array__``)."""
    return tuple(y.shape) if hasattr(y, "shape") else np.asarray(y).shape


class MultiOutputMixin:
    """A 2-D ``y``: one latent expert explains every output of a row.

    Mixed into :class:`~skmoe.MixtureOfExpertsRegressor` before
    ``RegressorMixin`` (its ``score`` is the multi-output R^2). The
    estimator provides ``_one_likelihood(spec)``, the likelihood named by
    one entry of ``likelihood``.
    """

    def _is_multi_output(self, y=None):
        """Whether a fit on ``y`` is multi-output: a list ``likelihood``,
        ``"bernoulli"`` or a ``y`` with more than one column."""
        return (
            isinstance(self.likelihood, list)
            or (isinstance(self.likelihood, str) and self.likelihood == "bernoulli")
            or (y is not None and target_shape(y)[1:2] > (1,))
        )

    def _allows_missing_targets(self, y):
        return self._is_multi_output(y)

    def _make_likelihood(self, y=None):
        if not self._is_multi_output(y):
            return self._one_likelihood(self.likelihood)
        if isinstance(self.likelihood, list):
            if not self.likelihood:
                raise ValueError("likelihood must name at least one output.")
            parts = [self._one_likelihood(s) for s in self.likelihood]
        else:
            n_outputs = 1 if y is None else (target_shape(y) + (1,))[1]
            parts = [self._one_likelihood(self.likelihood) for _ in range(n_outputs)]
        reweighted = [type(p).__name__ for p in parts if hasattr(p, "expert_fit_weights")]
        if reweighted:
            raise ValueError(
                f"likelihood holds {reweighted}, whose experts are refitted with "
                "weights of their own; a multi-output mixture supports "
                "'gaussian', 'poisson', 'gamma' and 'bernoulli' outputs."
            )
        return MultiOutputLikelihood(parts)

    def _prototypes_for(self, prototypes, likelihood, X, sample_weight):
        """Multi-output fits: every expert a :class:`MultiOutputExpert`, one
        estimator per output (the output's default when ``experts`` is None)."""
        if not isinstance(likelihood, MultiOutputLikelihood):
            return prototypes
        if self.experts is None:
            wrapped = [MultiOutputExpert([
                part.default_expert() if hasattr(part, "default_expert")
                else StandardizedRidge(alpha=1.0)
                for part in likelihood.parts
            ])] * len(prototypes)
        else:
            wrapped = [
                self._per_output_expert(p, likelihood, k) for k, p in enumerate(prototypes)
            ]
        X_num = _frames.numeric_array(X)
        if X_num is None:
            return wrapped
        scale = column_scale(X_num, sample_weight)
        # StandardizedRidge penalised on the whole data's scale (as single-output).
        return [
            MultiOutputExpert(with_data_scale(list(p.estimators), scale)) for p in wrapped
        ]

    @staticmethod
    def _per_output_expert(expert, likelihood, k):
        """``expert`` as a :class:`MultiOutputExpert` (one estimator for every
        output unless it is one), each output's estimator of the right kind."""
        T = likelihood.n_outputs
        if isinstance(expert, MultiOutputExpert):
            if len(expert.estimators) != T:
                raise ValueError(
                    f"Expert {k} is a MultiOutputExpert with "
                    f"{len(expert.estimators)} estimators, but y has {T} outputs."
                )
            per_output = list(expert.estimators)
        else:
            per_output = [expert] * T
        for t, (est, part) in enumerate(zip(per_output, likelihood.parts)):
            wants = isinstance(part, BernoulliLikelihood)
            if wants != is_classifier(est) or (wants and not hasattr(est, "predict_proba")):
                need = "a classifier with predict_proba" if wants else "a regressor"
                raise TypeError(
                    f"Expert {k}'s estimator for output {t} is "
                    f"{estimator_name(est)}, but output {t}'s likelihood "
                    f"({type(part).__name__}) needs {need}. Pass "
                    "experts=MultiOutputExpert([...]) with one estimator per output."
                )
        return MultiOutputExpert(per_output)

    def _as_target_shape(self, values):
        """Predictions shaped as the fitted ``y``: 1-D for a 1-D ``y``,
        ``(n_samples, n_outputs)`` for a 2-D one."""
        if getattr(self, "_target_ndim", 1) == 1:
            return values.reshape(values.shape[0]) if values.ndim == 2 else values
        return values.reshape(values.shape[0], -1)

    def log_prob_outputs(self, X, y):
        """Log-density of each output on its own, ``log p(y_t | x)``.

        The marginal of output ``t`` under the mixture,
        ``log sum_k pi_k(x) p_kt(y_t | x)``: the figure to compare with a
        model of that output alone. :meth:`log_prob` is the joint density
        of a row's observed outputs (their sum for one expert, not across
        experts).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; NaN marks an output not observed on a row.

        Returns
        -------
        log_prob : ndarray of shape (n_samples, n_outputs)
            NaN where the output is not observed.
        """
        X = self._check_X(X)
        log_gate = self._log_gate(X)
        lik = self._likelihood
        outputs = lik.outputs(self.experts_, X)
        if not isinstance(lik, MultiOutputLikelihood):
            per_output = lik.log_lik(outputs, lik.encode_targets(y, X.shape[0]),
                                     self._fitted_theta())[:, :, None]
            seen = np.ones((X.shape[0], 1), dtype=bool)
        else:
            y = lik.encode_targets(y, X.shape[0])
            per_output = lik.log_lik_outputs(outputs, y, self._fitted_theta())
            seen = ~np.isnan(y)
        joint = logsumexp(log_gate[:, :, None] + per_output, axis=1)
        return np.where(seen, joint, np.nan)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 of the prediction.

        For several outputs, scikit-learn's multi-output
        :func:`~sklearn.metrics.r2_score` with its uniform average over the
        outputs, each output's R^2 taken over the rows where it is observed
        (not NaN). For a ``"bernoulli"`` output it is the R^2 of the
        probability (the Brier skill score).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Test samples.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values; NaN marks an output not observed.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R^2 averaged uniformly over the outputs.
        """
        if not isinstance(getattr(self, "_likelihood", None), MultiOutputLikelihood):
            return super().score(X, y, sample_weight=sample_weight)
        n = X.shape[0] if hasattr(X, "shape") else len(X)
        y = self._likelihood.encode_targets(y, n)
        pred = self.predict(X).reshape(y.shape)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        scores = []
        for t in range(y.shape[1]):
            seen = ~np.isnan(y[:, t])
            scores.append(r2_score(
                y[seen, t], pred[seen, t], sample_weight=None if w is None else w[seen]
            ))
        return float(np.mean(scores))
