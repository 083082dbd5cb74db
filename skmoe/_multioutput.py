"""Several targets at once: one latent expert explains every output of a row.

``p(y | x) = sum_k pi_k(x) prod_t p_t(y_t | f_kt(x))``, the product over the
outputs *observed* on the row (NaN in ``y`` = not observed). Two pieces,
both plugged into the existing protocols so that EM is unchanged:

* :class:`MultiOutputLikelihood` implements the likelihood protocol of
  :mod:`skmoe._likelihood` over one likelihood per output (Gaussian,
  Poisson, Gamma, :class:`BernoulliLikelihood`, or any object with the
  protocol): ``outputs`` of shape ``(n, K, T)``, ``log_lik`` the sum over
  the observed outputs, ``stats`` / ``m_step`` per output, ``theta`` a
  structured array of shape ``(K,)`` with one field per output that has
  parameters (so that dropping or freezing an expert indexes it as before).
* :class:`MultiOutputExpert` is expert ``k``: one scikit-learn estimator per
  output, each clone fitted on its output's labelled rows with the same row
  weights (a classifier for a Bernoulli output, whose prediction is the
  probability of 1). Where every output is observed on every row and the
  outputs share one linear least-squares estimator, it fits one native
  multi-output clone: one pass over ``X`` for all the outputs.
"""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone, is_classifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_array, check_is_fitted

from . import _linear
from ._experts import (
    accepts_sample_weight,
    checked_output,
    expert_predictions,
    fit_expert,
)
from ._frames import take_rows
from ._glm_likelihoods import GammaLikelihood, PoissonLikelihood

__all__ = ["BernoulliLikelihood", "MultiOutputExpert", "MultiOutputLikelihood"]

#: Floor on a Bernoulli probability (and on one minus it).
_PROBA_FLOOR = 1e-10


def check_multi_targets(y, n_outputs=None, n_samples=None):
    """``y`` as a float64 ``(n, T)`` array; NaN (not observed) allowed, a row
    with no observed output, infinities and complex values refused."""
    y = np.asarray(y)
    if np.iscomplexobj(y):
        raise ValueError("y holds complex values; pass real numbers.")
    y = check_array(
        y, ensure_2d=False, dtype=np.float64, ensure_all_finite="allow-nan",
        input_name="y",
    )
    y = np.array(y, dtype=np.float64)  # a copy: the caller's y is never written
    if y.ndim == 1:
        y = y[:, None]
    if n_outputs is not None and y.shape[1] != n_outputs:
        raise ValueError(
            f"y has {y.shape[1]} output(s) (columns) but likelihood names "
            f"{n_outputs}; give one likelihood per column of y."
        )
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]}.")
    unlabelled = np.flatnonzero(np.isnan(y).all(axis=1))
    if unlabelled.size:
        raise ValueError(
            f"y has {unlabelled.size} row(s) with no observed output (all NaN; "
            f"first row {unlabelled[0]}): every row needs at least one label. "
            "Drop those rows."
        )
    return np.ascontiguousarray(y)


class BernoulliLikelihood:
    """A 0/1 output whose expert predicts the probability of 1.

    ``p_k(y | x) = p_k(x)^y (1 - p_k(x))^(1 - y)``, ``p_k`` floored at 1e-10
    away from 0 and 1. The expert is a classifier (its ``predict_proba``
    for the class 1); no parameters of its own. Used as one output of a
    :class:`MultiOutputLikelihood`.
    """

    n_parameters_per_expert = 0
    subset_rows = False  # a classifier must see both classes
    n_classes = None

    def default_expert(self):
        """:class:`~sklearn.linear_model.LogisticRegression` (``C=1``)."""
        return LogisticRegression()

    def _check(self, y):
        y = np.asarray(y, dtype=np.float64)
        bad = ~((y == 0) | (y == 1))
        if bad.any():
            i = np.flatnonzero(bad)[0]
            raise ValueError(
                "likelihood='bernoulli' needs a 0/1 output; y holds "
                f"{float(y[i]):.6g} (and {int(bad.sum()) - 1} more values "
                "other than 0 and 1)."
            )
        return np.ascontiguousarray(y)

    def validate_targets(self, y, sample_weight):
        y = self._check(y)
        if np.unique(y[sample_weight > 0]).size < 2:
            raise ValueError(
                "likelihood='bernoulli' needs both 0 and 1 among the labelled "
                "rows (with positive sample_weight) of its output."
            )
        return y, {}

    def encode_targets(self, y, n_samples):
        return self._check(y)

    def init_columns(self, X, y):
        return np.column_stack([X, y])

    def log_lik(self, outputs, y, theta):
        p = np.clip(outputs, _PROBA_FLOOR, 1.0 - _PROBA_FLOOR)
        return np.where(y[:, None] == 1.0, np.log(p), np.log1p(-p))

    def stats(self, outputs, y, weights):
        return ()

    def m_step(self, stats, theta):
        return None

    def row_loss(self, outputs, y):
        return -self.log_lik(outputs, y, None)

    def mean(self, gate_w, outputs):
        """The mixture's probability of 1, ``sum_k pi_k p_k``."""
        return np.einsum("ik,ik->i", gate_w, outputs)

    def mean_var(self, gate_w, outputs, theta):
        """Probability of 1 and the Bernoulli variance ``m (1 - m)``."""
        mean = self.mean(gate_w, outputs)
        return mean, mean * (1.0 - mean)


def _field(t):
    return f"output{t}"


class MultiOutputLikelihood:
    """One likelihood per output; the outputs of a row share its expert.

    ``log p_k(y | x) = sum_{t observed} log p_kt(y_t | x)``. Implements the
    likelihood protocol of :mod:`skmoe._likelihood` over ``parts`` (the
    outputs' likelihoods), with ``outputs`` of shape ``(n, K, T)`` and
    ``theta`` a structured array of shape ``(K,)`` (a field per output with
    parameters), or None when no output has any.

    Parameters
    ----------
    parts : list of likelihood objects
        One per output (column of ``y``).
    """

    n_classes = None
    # The experts (MultiOutputExpert) take each output's rows themselves.
    subset_rows = False

    def __init__(self, parts):
        self.parts = list(parts)
        self.fill_ = None

    @property
    def n_outputs(self):
        """The number of outputs ``T``."""
        return len(self.parts)

    @property
    def n_parameters_per_expert(self):
        return sum(part.n_parameters_per_expert for part in self.parts)

    # -- targets -------------------------------------------------------
    def validate_targets(self, y, sample_weight):
        y = check_multi_targets(y, self.n_outputs)
        self.fill_ = np.empty(self.n_outputs)
        for t, part in enumerate(self.parts):
            seen = ~np.isnan(y[:, t])
            try:
                y_t, _ = part.validate_targets(y[seen, t], sample_weight[seen])
            except ValueError as exc:
                raise ValueError(f"y[:, {t}] (output {t}): {exc}") from exc
            y[seen, t] = y_t
            self.fill_[t] = np.average(y_t, weights=sample_weight[seen]) if (
                sample_weight[seen].sum() > 0) else np.mean(y_t)
        return y, {}

    def encode_targets(self, y, n_samples):
        y = check_multi_targets(y, self.n_outputs, n_samples)
        for t, part in enumerate(self.parts):
            seen = ~np.isnan(y[:, t])
            try:
                y[seen, t] = part.encode_targets(y[seen, t], int(seen.sum()))
            except ValueError as exc:
                raise ValueError(f"y[:, {t}] (output {t}): {exc}") from exc
        return y

    def init_columns(self, X, y):
        """Each output's columns beside ``X`` (its own ``init_columns``),
        an unobserved value replaced by the output's weighted mean."""
        cols = X
        for t, part in enumerate(self.parts):
            y_t = np.where(np.isnan(y[:, t]), self.fill_[t], y[:, t])
            cols = part.init_columns(cols, y_t)
        return cols

    # -- the experts' outputs -------------------------------------------
    def outputs(self, experts, X, rows=None, pool=None):
        """Every expert's predictions of every output, ``(n, K, T)``; with
        ``rows``, expert ``k`` runs on ``rows[k]`` only (its other rows hold
        0.5: a valid mean and probability, masked by the E-step)."""
        n, T = X.shape[0], self.n_outputs
        out = np.full((n, len(experts), T), 0.5)
        if rows is None:
            preds = expert_predictions(experts, X, pool=pool)
            for k, pred in enumerate(preds):
                out[:, k] = checked_output(experts[k], k, pred, (n, T))
        else:
            for k, expert in enumerate(experts):
                if rows[k] is None:
                    out[:, k] = checked_output(expert, k, expert.predict(X), (n, T))
                elif rows[k].size:
                    pred = expert.predict(take_rows(X, rows[k]))
                    out[rows[k], k] = checked_output(expert, k, pred, (rows[k].size, T))
        self._check_domains(experts, out)
        return out

    def _check_domains(self, experts, out):
        """Positive means for Poisson / Gamma outputs, probabilities in
        [0, 1] for Bernoulli ones: a clear error naming the expert."""
        if out.shape[0] == 0:
            return
        for t, part in enumerate(self.parts):
            low, high = out[:, :, t].min(axis=0), out[:, :, t].max(axis=0)
            if isinstance(part, BernoulliLikelihood):
                bad, need = ~((low >= 0) & (high <= 1)), "a probability in [0, 1]"
            elif isinstance(part, (PoissonLikelihood, GammaLikelihood)):
                bad, need = ~(low > 0), "a positive mean (use a log link)"
            else:
                continue
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"Expert {k} predicts values in [{low[k]:.6g}, {high[k]:.6g}] "
                    f"for output {t}, whose likelihood ({type(part).__name__}) "
                    f"needs {need}."
                )

    # -- likelihood ----------------------------------------------------
    def split_theta(self, theta):
        """Each output's own parameters (a ``(K,)`` array or None)."""
        names = () if theta is None else theta.dtype.names
        return [
            np.array(theta[_field(t)], dtype=np.float64) if _field(t) in names else None
            for t in range(self.n_outputs)
        ]

    def join_theta(self, thetas, n_experts):
        """The structured ``(K,)`` array of the outputs' parameters."""
        fields = [(_field(t), np.float64) for t, th in enumerate(thetas) if th is not None]
        if not fields:
            return None
        theta = np.zeros(n_experts, dtype=fields)
        for t, th in enumerate(thetas):
            if th is not None:
                theta[_field(t)] = th
        return theta

    def _per_output(self, outputs, y, t):
        """Output ``t``'s predictions and targets on its observed rows, and
        those rows (None: every row)."""
        seen = ~np.isnan(y[:, t])
        if seen.all():
            return np.ascontiguousarray(outputs[:, :, t]), np.ascontiguousarray(y[:, t]), None
        return (
            np.ascontiguousarray(outputs[seen, :, t]), np.ascontiguousarray(y[seen, t]), seen
        )

    def log_lik_outputs(self, outputs, y, theta):
        """``log p_kt(y_t | x)`` per output, ``(n, K, T)``, 0 where unobserved."""
        thetas = self.split_theta(theta)
        out = np.zeros(outputs.shape)
        for t, part in enumerate(self.parts):
            f, y_t, seen = self._per_output(outputs, y, t)
            ll = part.log_lik(f, y_t, thetas[t])
            if seen is None:
                out[:, :, t] = ll
            else:
                out[seen, :, t] = ll
        return out

    def log_lik(self, outputs, y, theta):
        if self.n_outputs == 1:  # exactly the single output's likelihood
            return np.ascontiguousarray(self.log_lik_outputs(outputs, y, theta)[:, :, 0])
        return np.ascontiguousarray(self.log_lik_outputs(outputs, y, theta).sum(axis=2))

    def stats(self, outputs, y, weights):
        """Each output's sums over its observed rows."""
        sums = []
        for t, part in enumerate(self.parts):
            f, y_t, seen = self._per_output(outputs, y, t)
            w = weights if seen is None else weights[seen]
            sums.append(part.stats(f, y_t, np.ascontiguousarray(w)))
        return tuple(sums)

    def m_step(self, stats, theta):
        old = self.split_theta(theta)
        thetas = [part.m_step(s, old[t]) for t, (part, s) in enumerate(zip(self.parts, stats))]
        n_experts = next(
            (len(th) for th in thetas if th is not None),
            0 if theta is None else len(theta),
        )
        return self.join_theta(thetas, n_experts)

    def row_loss(self, outputs, y):
        """The outputs' row losses, each scaled to a mean of 1 over its
        observed entries, summed over the observed outputs."""
        total = np.zeros(outputs.shape[:2])
        for t, part in enumerate(self.parts):
            f, y_t, seen = self._per_output(outputs, y, t)
            loss = part.row_loss(f, y_t)
            scale = max(float(np.mean(loss)), np.finfo(float).tiny) if loss.size else 1.0
            if seen is None:
                total += loss / scale
            else:
                total[seen] += loss / scale
        return total

    # -- prediction ------------------------------------------------------
    def mean(self, gate_w, outputs):
        """Each output's predictive mean, ``(n, T)``."""
        return np.column_stack([
            part.mean(gate_w, np.ascontiguousarray(outputs[:, :, t]))
            for t, part in enumerate(self.parts)
        ])

    def mean_var(self, gate_w, outputs, theta):
        """Each output's predictive mean and variance, ``(n, T)`` each."""
        thetas = self.split_theta(theta)
        pairs = [
            part.mean_var(gate_w, np.ascontiguousarray(outputs[:, :, t]), thetas[t])
            for t, part in enumerate(self.parts)
        ]
        return (
            np.column_stack([m for m, _ in pairs]),
            np.column_stack([v for _, v in pairs]),
        )


def _same_linear(estimators):
    """Whether every output's estimator is the same linear least-squares
    model (one type, equal parameters), so one native multi-output fit of
    it equals the fits per output."""
    first = estimators[0]
    if not _linear.batchable(first):
        return False
    params = first.get_params(deep=False)
    for est in estimators[1:]:
        if type(est) is not type(first):
            return False
        other = est.get_params(deep=False)
        if other.keys() != params.keys() or not all(
            np.array_equal(np.asarray(other[key], dtype=object),
                           np.asarray(params[key], dtype=object))
            for key in params
        ):
            return False
    return True


class MultiOutputExpert(RegressorMixin, BaseEstimator):
    """One expert of a multi-output mixture: one estimator per output.

    Each output's estimator is cloned and fitted on the rows where that
    output is observed (not NaN), with the rows' weights; a classifier
    (for a 0/1 output, ``likelihood="bernoulli"``) predicts its probability
    of 1. When every output is observed on every row and all outputs use
    the same :class:`~sklearn.linear_model.LinearRegression`,
    :class:`~sklearn.linear_model.Ridge` or :class:`StandardizedRidge`, one
    native multi-output clone is fitted instead (the same coefficients, one
    pass over ``X``).

    Parameters
    ----------
    estimators : list of estimators
        One per output (column of ``y``), in order; each must accept
        ``sample_weight`` in ``fit``.

    Attributes
    ----------
    estimators_ : list of fitted estimators
        One per output, or a single native multi-output estimator.
    n_outputs_ : int
        The number of outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression, LogisticRegression
    >>> from skmoe import MultiOutputExpert
    >>> X = np.arange(8.0)[:, None]
    >>> y = np.column_stack([2 * X[:, 0], [0, 0, 1, 0, 1, 1, np.nan, 1]])
    >>> expert = MultiOutputExpert([LinearRegression(), LogisticRegression()])
    >>> expert.fit(X, y).predict(X).shape
    (8, 2)
    """

    def __init__(self, estimators):
        self.estimators = estimators

    def fit(self, X, y, sample_weight=None):
        """Fit every output's estimator on its labelled rows.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples, n_outputs)
            Targets; NaN marks an output not observed on a row.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, shared by every output.

        Returns
        -------
        self : MultiOutputExpert
            The fitted expert.
        """
        estimators = list(self.estimators)
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if y.shape[1] != len(estimators):
            raise ValueError(
                f"MultiOutputExpert has {len(estimators)} estimators but y has "
                f"{y.shape[1]} outputs; give one estimator per output."
            )
        weight = np.ones(y.shape[0]) if sample_weight is None else np.asarray(
            sample_weight, dtype=np.float64)
        seen = ~np.isnan(y)
        self.n_outputs_ = y.shape[1]
        self._native = y.shape[1] > 1 and seen.all() and _same_linear(estimators)
        if self._native:
            self.estimators_ = [fit_expert(clone(estimators[0]), X, y, weight, True)]
            return self
        self.estimators_ = [
            self._fit_output(clone(est), X, y[:, t], weight, seen[:, t], t)
            for t, est in enumerate(estimators)
        ]
        return self

    @staticmethod
    def _fit_output(est, X, y_t, weight, seen, t):
        if not accepts_sample_weight(est):
            raise TypeError(
                f"The estimator of output {t} ({type(est).__name__}) takes no "
                "sample_weight in fit; a multi-output mixture fits every output's "
                "estimator with the rows' posterior weights."
            )
        if not seen.all():
            rows = np.flatnonzero(seen)
            X, y_t, weight = take_rows(X, rows), y_t[rows], weight[rows]
        return fit_expert(est, X, y_t, weight, not is_classifier(est))

    def predict(self, X):
        """Every output's prediction (a probability of 1 for a classifier).

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_outputs)
            The predictions.
        """
        check_is_fitted(self)
        if self._native:
            return np.asarray(self.estimators_[0].predict(X), dtype=np.float64)
        return np.column_stack([_predict_output(est, X) for est in self.estimators_])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags


def _predict_output(est, X):
    """A regressor's prediction or a classifier's probability of class 1."""
    if not is_classifier(est):
        return np.asarray(est.predict(X), dtype=np.float64).reshape(-1)
    proba = np.asarray(est.predict_proba(X), dtype=np.float64)
    classes = list(est.classes_)
    if 1 in classes or 1.0 in classes:
        return proba[:, classes.index(1)]
    return np.zeros(proba.shape[0])
