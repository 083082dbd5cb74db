"""The expert-likelihood protocol: how an expert's output scores a target.

A mixture of experts is ``p(y | x) = sum_k pi_k(x) p_k(y | x)``; the gate
gives ``pi``, and a *likelihood* turns what expert ``k`` predicts into
``p_k(y | x)``. EM and the gradient solver talk to it only through the
methods below, so a new noise model is one small class (see the user guide,
"Write your own likelihood"):

``validate_targets(y, sample_weight) -> (y, info)``
    Fit-time check of ``y``; fixes fit-level facts (the variance floor, the
    classes) on the likelihood and returns them in ``info``.
``encode_targets(y, n_samples) -> y``
    Inference-time check of ``y`` against the fitted facts.
``init_columns(X, y)``
    The columns that ``init="kmeans"`` clusters.
``outputs(experts, X, rows=None)``
    What ``log_lik`` needs from the experts: ``(n, K)`` predictions or
    ``(n, K, C)`` probabilities. ``rows[k]`` is None (every row) or the rows
    where expert ``k`` runs; the other rows hold a neutral filler.
``log_lik(outputs, y, theta) -> (n, K)``
    ``log p_k(y_i | x_i)``; ``theta`` are the likelihood's own parameters
    (the Gaussian variances), None when it has none.
``stats(outputs, y, weights) -> tuple``
    Additive sums over rows (so they can be accumulated over chunks).
``m_step(stats, theta) -> theta``
    The new parameters from the sums (experts without weight keep theirs).
``row_loss(outputs, y) -> (n, K)``
    A per-row loss, to pick the expert that fits worst.
``n_parameters_per_expert``, ``subset_rows``
    The parameters in ``theta`` per expert (for BIC); whether an expert is
    fit only on the rows that carry weight for it.

Regression likelihoods also describe each expert's whole predictive
distribution (for quantiles, intervals and sampling, ``skmoe/_predictive.py``):

``expert_distribution(outputs, theta) -> frozen scipy.stats distribution``
    Its parameters broadcast to ``(n, K)``; its ``logpdf`` (``logpmf``)
    equals ``log_lik``.
``discrete``
    True when that distribution is a pmf over the integers.
"""

import numpy as np
import scipy.sparse as sp
from scipy import stats
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from . import _kernels, _linear, _threaded
from ._experts import checked_output, expert_predictions
from ._frames import numeric_array, take_rows
from ._magnitude import check_magnitude

#: An expert whose weighted squared error exceeds this many times the
#: weighted variance of its rows' targets fits them worse than their mean.
WEAK_EXPERT_RATIO = 1.1


def _check_numeric_y(y, n_samples=None):
    """The one check of a regression target, at fit and after it: 1-D,
    float64, finite, real (complex refused), ``n_samples`` long."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            "MixtureOfExpertsRegressor supports a single target; y has shape "
            f"{y.shape}. Fit one mixture per output, e.g. with "
            "sklearn.multioutput.MultiOutputRegressor."
        )
    y = column_or_1d(y, warn=True)
    if np.iscomplexobj(y):
        raise ValueError(
            "y holds complex values. Complex data not supported: pass real numbers."
        )
    try:
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    except (TypeError, ValueError) as exc:
        if " y" in str(exc):
            raise
        raise type(exc)(f"y: {exc}") from exc
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]}.")
    return np.ascontiguousarray(y)


def _check_labels(y, n_samples=None):
    """The one check of class labels, at fit and after it."""
    y = column_or_1d(y, warn=True)
    if np.iscomplexobj(y):
        raise ValueError(
            "y holds complex labels; use labels that are integers or strings."
        )
    if y.dtype == object:
        kinds = {type(v).__name__ for v in y.tolist()}
        if len(kinds) > 1:
            raise TypeError(
                f"y holds labels of mixed types ({', '.join(sorted(kinds))}); "
                "use labels of a single type (all strings or all numbers)."
            )
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]}.")
    return y


# Floor on an expert's class probability: a class that an expert never saw,
# or rules out, keeps a finite log-likelihood.
_PROBA_FLOOR = 1e-10


def _refuse_overflowing_residuals(variance):
    """A clear error, naming the experts, where a noise variance is not
    finite: the expert's squared residuals overflow (its predictions
    diverged, e.g. an SGD expert on unscaled features)."""
    bad = np.flatnonzero(~np.isfinite(variance))
    if bad.size:
        raise ValueError(
            f"Expert {bad[0]} (of experts {bad.tolist()}) predicts values so far "
            "from y that its squared residuals overflow (noise variance "
            f"{variance[bad[0]]}): its fit diverged. Scale the features (e.g. "
            "a StandardScaler in a Pipeline expert), lower its learning rate, "
            "or use solver='em'."
        )


class GaussianLikelihood:
    """Gaussian noise of one variance per expert around its prediction.

    ``p_k(y | x) = N(y; f_k(x), sigma_k^2)``; ``theta`` holds the variances
    ``sigma_k^2``, floored at ``reg_variance`` times the weighted variance of
    ``y``.

    Parameters
    ----------
    reg_variance : float, default=1e-6
        Floor on every variance, relative to the variance of ``y``.
    """

    n_parameters_per_expert = 1
    subset_rows = True
    n_classes = None
    discrete = False

    def __init__(self, reg_variance=1e-6):
        self.reg_variance = reg_variance
        self.variance_floor_ = None
        self.target_variance_ = None

    def validate_targets(self, y, sample_weight):
        y = _check_numeric_y(y)
        # The variances square y, and a constant y falls back to mean ** 2.
        check_magnitude(y, "y")
        mean = np.average(y, weights=sample_weight)
        scale = np.average((y - mean) ** 2, weights=sample_weight)
        if not scale > 0:  # constant y: fall back to its magnitude
            scale = max(mean * mean, 1.0)
        self.variance_floor_ = self.reg_variance * scale
        self.target_variance_ = scale
        return y, {"variance_floor": self.variance_floor_}

    def encode_targets(self, y, n_samples):
        return _check_numeric_y(y, n_samples)

    def init_columns(self, X, y):
        if sp.issparse(X):
            return sp.hstack([X, y[:, None]], format="csr")
        return np.column_stack([X, y])

    def outputs(self, experts, X, rows=None, pool=None):
        """Every expert's predictions, ``(n, K)``; with ``rows``, expert ``k``
        runs on ``rows[k]`` only (the other entries are 0).

        Linear experts on every row are predicted together in one product;
        the others in ``pool``'s workers where it dispatches (see
        :func:`~skmoe._experts.expert_predictions`).
        """
        n = X.shape[0]
        if rows is None:
            pred = np.empty((n, len(experts)))
            X_num = numeric_array(X)
            done = (
                [False] * len(experts) if X_num is None
                else _linear.predict_linear(experts, X_num, pred)
            )
            todo = [k for k in range(len(experts)) if not done[k]]
            outs = expert_predictions([experts[k] for k in todo], X, pool=pool)
            for k, out in zip(todo, outs):
                pred[:, k] = checked_output(experts[k], k, out, (n,))
            return pred
        pred = np.zeros((n, len(experts)))
        for k, expert in enumerate(experts):
            if rows[k] is None:
                pred[:, k] = checked_output(expert, k, expert.predict(X), (n,))
            elif rows[k].size:
                pred[rows[k], k] = checked_output(
                    expert, k, expert.predict(take_rows(X, rows[k])), (rows[k].size,)
                )
        return pred

    def log_lik(self, outputs, y, theta):
        return _threaded.gaussian_log_lik(y, outputs, theta)

    def stats(self, outputs, y, weights):
        """``(rss, wsum, rss_all, n)``: weighted residual sums of squares and
        weights per expert, and the unweighted sums (with the row count) of
        the experts without weight (their start when ``theta`` is None)."""
        wsum = weights.sum(axis=0)
        rss = _threaded.weighted_sq_residuals(y, outputs, np.ascontiguousarray(weights))
        rss_all = np.zeros(len(wsum))
        unowned = ~(wsum > 0)
        if unowned.any():
            r = y[:, None] - outputs[:, unowned]
            rss_all[unowned] = np.sum(r * r, axis=0)
        return rss, wsum, rss_all, np.full(len(wsum), float(len(y)))

    def m_step(self, stats, theta):
        """Variances ``rss / wsum``, floored; an expert without weight keeps its
        variance (or starts from the variance of ``y`` around its predictions)."""
        rss, wsum, rss_all, count = stats
        variance = np.empty(len(wsum))
        owned = wsum > 0
        variance[owned] = rss[owned] / wsum[owned]
        if not owned.all():
            source = theta if theta is not None else rss_all / count
            variance[~owned] = source[~owned]
        _refuse_overflowing_residuals(variance)
        return np.maximum(variance, self.variance_floor_)

    def row_loss(self, outputs, y):
        r = y[:, None] - outputs
        return r * r

    def expert_distribution(self, outputs, theta):
        """Every expert's predictive distribution on every row.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' predictions ``f_k(x)``.
        theta : ndarray of shape (n_experts,)
            The noise variances ``sigma_k^2``.

        Returns
        -------
        distribution : scipy.stats frozen distribution
            ``norm(loc=f_k(x), scale=sigma_k)``, parameters of shape
            ``(n_samples, n_experts)``; its ``logpdf`` is :meth:`log_lik`.
        """
        scale = np.sqrt(np.asarray(theta, dtype=np.float64))
        loc = np.asarray(outputs, dtype=np.float64)
        return stats.norm(loc=loc, scale=np.broadcast_to(scale, loc.shape))

    def weak_experts(self, outputs, y, weights, min_share):
        """The experts that fit their own rows worse than those rows' mean.

        Returns ``(k, mse, variance)`` for every expert (holding at least
        ``min_share`` of the weight) whose weighted mean squared error is
        above ``WEAK_EXPERT_RATIO`` times the weighted variance of ``y`` on
        its weights: such an expert learned less than a constant would.
        """
        wsum = weights.sum(axis=0)
        share = wsum / max(wsum.sum(), np.finfo(float).tiny)
        weak = []
        for k in np.flatnonzero((share >= min_share) & (wsum > 0)):
            w = weights[:, k]
            mse = float(w @ (y - outputs[:, k]) ** 2 / wsum[k])
            mean = float(w @ y / wsum[k])
            var = float(w @ (y - mean) ** 2 / wsum[k])
            if mse > WEAK_EXPERT_RATIO * var + self.variance_floor_:
                weak.append((int(k), mse, var))
        return weak

    def mean(self, gate_w, outputs):
        """Predictive mean ``sum_k pi_k f_k``."""
        return _threaded.mix_mean(gate_w, outputs)

    def mean_var(self, gate_w, outputs, theta):
        """Predictive mean and variance (law of total variance)."""
        return _threaded.mix_mean_var(gate_w, outputs, theta)


class CategoricalLikelihood:
    """Class probabilities of a classifier expert.

    ``p_k(y | x)`` is expert ``k``'s ``predict_proba`` for the class ``y``,
    aligned to ``classes_`` and floored at 1e-10. No parameters of its own.

    Parameters
    ----------
    classes : ndarray, default=None
        The classes (set by :meth:`validate_targets` when None).
    """

    n_parameters_per_expert = 0
    subset_rows = False  # a classifier expert must see every class

    def __init__(self, classes=None):
        self.classes_ = classes

    @property
    def n_classes(self):
        return len(self.classes_)

    def validate_targets(self, y, sample_weight):
        y = _check_labels(y)
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise ValueError(f"y: {exc}") from exc
        classes, y_enc = np.unique(y, return_inverse=True)
        present = np.unique(y_enc[sample_weight > 0])
        if present.size < 2:
            raise ValueError(
                "MixtureOfExpertsClassifier needs samples of at least 2 classes "
                f"(with positive sample_weight); got {present.size} class."
            )
        self.classes_ = classes
        return y, {"classes": classes}

    def encode_targets(self, y, n_samples):
        y = _check_labels(y, n_samples)
        idx = np.searchsorted(self.classes_, y)
        idx = np.minimum(idx, len(self.classes_) - 1)
        unseen = self.classes_[idx] != y
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not seen during fit: {np.unique(y[unseen]).tolist()}."
            )
        return y

    def init_columns(self, X, y):
        return X

    def expert_proba(self, expert, k, X, proba=None):
        """``expert.predict_proba`` on ``classes_``, floored and renormalised
        (``proba``: what ``expert.predict_proba(X)`` returned, if called)."""
        if proba is None:
            proba = expert.predict_proba(X)
        proba = checked_output(
            expert, k, proba, (X.shape[0], len(expert.classes_)), proba=True,
        )
        cols = np.searchsorted(self.classes_, expert.classes_)
        full = np.full((X.shape[0], len(self.classes_)), _PROBA_FLOOR)
        full[:, cols] = np.maximum(proba, _PROBA_FLOOR)
        full /= full.sum(axis=1, keepdims=True)
        return full

    def outputs(self, experts, X, rows=None, pool=None):
        """Every expert's class probabilities, ``(n, K, C)`` (a view of a
        ``(K, n, C)`` array); with ``rows``, expert ``k`` runs on ``rows[k]``
        only and its other rows hold ones (log-likelihood 0). ``pool``: see
        :meth:`GaussianLikelihood.outputs`."""
        proba = np.ones((len(experts), X.shape[0], len(self.classes_)))
        done = [False] * len(experts)
        X_num = numeric_array(X) if rows is None else None
        if X_num is not None:
            # Plain LogisticRegression experts: one product for all of them.
            out = proba.transpose(1, 0, 2)
            done = _linear.predict_proba_logistic(experts, X_num, out)
            for k in np.flatnonzero(done):
                np.maximum(proba[k], _PROBA_FLOOR, out=proba[k])
                proba[k] /= proba[k].sum(axis=1, keepdims=True)
        if rows is None:
            todo = [k for k in range(len(experts)) if not done[k]]
            outs = expert_predictions(
                [experts[k] for k in todo], X, "predict_proba", pool=pool
            )
            for k, out in zip(todo, outs):
                proba[k] = self.expert_proba(experts[k], k, X, out)
                done[k] = True
        for k, expert in enumerate(experts):
            if done[k]:
                continue
            r = None if rows is None else rows[k]
            if r is None:
                proba[k] = self.expert_proba(expert, k, X)
            elif r.size:
                proba[k, r] = self.expert_proba(expert, k, take_rows(X, r))
        return proba.transpose(1, 0, 2)

    def log_lik(self, outputs, y, theta):
        y_idx = np.searchsorted(self.classes_, y)
        return np.ascontiguousarray(np.log(outputs[np.arange(len(y)), :, y_idx]))

    def stats(self, outputs, y, weights):
        return ()

    def m_step(self, stats, theta):
        return None

    def row_loss(self, outputs, y):
        return -self.log_lik(outputs, y, None)

    def mix_proba(self, gate_w, outputs):
        """Mixture class probabilities ``sum_k pi_k p_k(. | x)``, ``(n, C)``."""
        return _kernels.mix_proba(gate_w, outputs.transpose(1, 0, 2))
