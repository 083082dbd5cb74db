"""Poisson and Gamma expert likelihoods (the expert-likelihood protocol).

Each expert ``k`` predicts the mean ``mu_k(x) > 0`` of ``y`` given ``x``; the
likelihood turns that mean into a density:

* :class:`PoissonLikelihood` (counts)::

      log p_k(y | x) = y log mu_k - mu_k - log(y!)

  with no parameter of its own (``theta`` is None);

* :class:`GammaLikelihood` (positive continuous values), with a shape
  ``nu_k`` per expert (``theta``, estimated by maximum likelihood in the
  M-step)::

      log p_k(y | x) = nu_k log(nu_k y / mu_k) - nu_k y / mu_k - log y - lgamma(nu_k)

  whose mean is ``mu_k`` and variance ``mu_k^2 / nu_k``.

Both follow the protocol of ``skmoe/_likelihood.py``: ``validate_targets``,
``encode_targets``, ``init_columns``, ``outputs``, ``log_lik``, ``stats``,
``m_step``, ``row_loss``, ``mean``, ``mean_var``, ``n_parameters_per_expert``,
``subset_rows`` and ``n_classes``. The experts are any scikit-learn regressors
whose predictions are positive: :class:`~sklearn.linear_model.PoissonRegressor`
and :class:`~sklearn.linear_model.GammaRegressor` (the defaults, log link),
:class:`~sklearn.ensemble.HistGradientBoostingRegressor` with
``loss="poisson"`` or ``loss="gamma"``, or a Pipeline ending in one of them.
"""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy import stats
from scipy.special import digamma, gammaln, polygamma, xlogy
from sklearn.base import BaseEstimator
from sklearn.linear_model import GammaRegressor, PoissonRegressor
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import column_or_1d

from . import _glm
from ._experts import checked_output, estimator_name, expert_predictions
from ._frames import take_rows

__all__ = ["PoissonLikelihood", "GammaLikelihood", "gamma_shape_mle"]


def glm_expert(cls):
    """The default expert of a Poisson or Gamma mixture: ``cls`` (a
    scikit-learn GLM with a log link) as a demanding user would set it.

    Newton's method (``solver="newton-cholesky"``) with a negligible ridge
    (``alpha=1e-4``) and ``tol=1e-6``. scikit-learn's default ``alpha=1``
    shrinks the coefficients of unscaled features: on AER's
    RecreationDemand (659 rows, 7 columns) one PoissonRegressor reaches a
    log-likelihood of -1592.8 at ``alpha=1`` against -1529.4 unpenalised
    (``alpha=1e-4``: -1529.4), and the default L-BFGS solver takes 80 to 160
    iterations where Newton takes 6. The small ridge keeps the Hessian
    positive definite when an expert owns few rows.
    """
    return cls(alpha=1e-4, solver="newton-cholesky", tol=1e-6)


def _as_targets(y, sample_weight, name):
    """``y`` as a 1-D finite float64 array, or a ValueError naming ``y``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(
            f"MixtureOfExpertsRegressor(likelihood={name!r}) supports a single "
            f"target; y has shape {y.shape}. Fit one mixture per output, e.g. with "
            "sklearn.multioutput.MultiOutputRegressor."
        )
    y = column_or_1d(y, warn=True).astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("Input y contains NaN or infinity.")
    if sample_weight is not None and np.shape(sample_weight) != y.shape:
        raise ValueError(
            f"sample_weight has shape {np.shape(sample_weight)} but y has {y.shape}."
        )
    return np.ascontiguousarray(y)


def _describe_bad(y, bad, what):
    """``'2 values are below 0 (y[4] = -1)'`` for the rows where ``bad`` holds."""
    rows = np.flatnonzero(bad)
    count = "1 value is" if rows.size == 1 else f"{rows.size} values are"
    return f"{count} {what} (y[{rows[0]}] = {float(y[rows[0]]):.6g})"


class _PositiveMeanLikelihood(BaseEstimator):
    """What Poisson and Gamma share: experts predict a positive mean."""

    _parameter_constraints = {}
    _name = None  # "poisson" or "gamma"
    _label = None  # "Poisson" or "Gamma": the name in error messages
    _suggestion = None  # the experts to recommend in the error message

    def default_expert(self):
        """The expert used when the mixture is given none."""
        raise NotImplementedError

    def outputs(self, experts, X, rows=None, pool=None):
        """Every expert's predicted mean ``mu_k(x)``, checked positive.

        Parameters
        ----------
        experts : list of fitted regressors
        X : ndarray or sparse matrix of shape (n_samples, n_features)
        rows : list or None
            ``rows[k]`` is None (expert ``k`` runs on every row) or an index
            array (it runs on those rows only; its other entries hold 1, a
            neutral filler: a valid mean, masked by the E-step).
        pool : ExpertPool or None
            The run's pool: without ``rows``, the experts that are not
            predicted directly run in its workers where it dispatches.

        Returns
        -------
        mu : ndarray of shape (n_samples, n_experts)

        Raises
        ------
        ValueError
            When an expert predicts a mean that is not positive (or not
            finite), naming the expert and what to use instead.
        """
        n = X.shape[0]
        mu = np.ones((n, len(experts)))
        if n == 0:
            return mu
        direct = [_glm.predicts_directly(expert, X) for expert in experts]
        if rows is None:
            todo = [k for k in range(len(experts)) if not direct[k]]
            outs = expert_predictions([experts[k] for k in todo], X, pool=pool)
            for k, out in zip(todo, outs):
                mu[:, k] = self._positive(out, k, experts[k], n)
        for k, expert in enumerate(experts):
            predict = _glm.predict_glm if direct[k] else None
            if rows is None and not direct[k]:
                continue  # predicted above
            if rows is None or rows[k] is None:
                pred = predict(expert, X) if predict else expert.predict(X)
                mu[:, k] = self._positive(pred, k, expert, n)
            elif rows[k].size:
                Xk = take_rows(X, rows[k])
                pred = predict(expert, Xk) if predict else expert.predict(Xk)
                mu[rows[k], k] = self._positive(pred, k, expert, rows[k].size)
        return mu

    def _positive(self, pred, k, expert, n):
        """The shared check (shape, finiteness), then ``mu > 0``."""
        pred = checked_output(expert, k, pred, (n,))
        bad = ~(pred > 0)
        if np.any(bad):
            value = pred[np.flatnonzero(bad)[0]]
            raise ValueError(
                f"Expert {k} ({estimator_name(expert)}) predicted a non-positive mean "
                f"({float(value):.6g}) where the {self._label} "
                "likelihood needs "
                f"mu > 0; use {self._suggestion}, or any regressor whose "
                "predictions are positive (a log link)."
            )
        return pred

    # Protocol attributes shared by both likelihoods.
    subset_rows = True  # a GLM expert can be fit on the rows that carry weight
    n_classes = None

    def encode_targets(self, y, n_samples):
        """Inference-time check of ``y`` (``log_prob``, ``score``...): as at fit."""
        y = self._check_domain(_as_targets(y, None, self._name))
        if y.shape[0] != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]}.")
        return y

    def validate_targets(self, y, sample_weight):
        """Fit-time check of ``y``; clear ValueError naming ``y``.

        Returns
        -------
        y : ndarray of shape (n_samples,), float64
        info : dict
            Empty: no fit-level constants.
        """
        self._validate_params()
        return self._check_domain(_as_targets(y, sample_weight, self._name)), {}

    def init_columns(self, X, y):
        """``[X, log(y)]`` (``log1p`` for counts): the experts model ``log mu``
        linearly, so ``init="kmeans"`` clusters on the log scale."""
        ly = self._log_target(y)[:, None]
        if sp.issparse(X):
            return sp.hstack([X, ly], format="csr")
        return np.column_stack([X, ly])

    def mean(self, gate_w, outputs):
        """Predictive mean ``sum_k pi_k mu_k`` (entries with ``pi_k = 0`` skipped)."""
        gate_w = np.asarray(gate_w, dtype=np.float64)
        return np.einsum("ik,ik->i", gate_w, np.where(gate_w > 0, outputs, 0.0))

    @staticmethod
    def _safe_mu(outputs):
        """``outputs`` with non-positive entries (never produced by
        :meth:`outputs`) replaced by 1; the caller gives them ``-inf``."""
        missing = ~(outputs > 0)
        if np.any(missing):
            outputs = np.where(missing, 1.0, outputs)
        return outputs, missing

    def mean_var(self, gate_w, outputs, theta):
        """Mean and variance of the predictive mixture.

        ``mean = sum_k pi_k mu_k`` and
        ``var = sum_k pi_k (var_k + mu_k^2) - mean^2`` with the expert's own
        variance ``var_k`` (``mu_k`` for Poisson, ``mu_k^2 / nu_k`` for Gamma).
        Entries with ``gate_w == 0`` (experts not routed to) do not count.
        """
        gate_w = np.asarray(gate_w, dtype=np.float64)
        mu = np.where(gate_w > 0, outputs, 0.0)
        mean = self.mean(gate_w, outputs)
        second = np.einsum("ik,ik->i", gate_w, self._expert_var(mu, theta) + mu * mu)
        return mean, np.maximum(second - mean * mean, 0.0)


class PoissonLikelihood(_PositiveMeanLikelihood):
    """Poisson experts: ``y`` counts with mean ``mu_k(x)`` predicted by expert ``k``.

    ``log p_k(y | x) = y log mu_k(x) - mu_k(x) - log(y!)``. The likelihood has
    no parameter of its own. Targets must be non-negative integers.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe._glm_likelihoods import PoissonLikelihood
    >>> lik = PoissonLikelihood()
    >>> y, _ = lik.validate_targets([0, 1, 3], None)
    >>> lik.log_lik(np.array([[1.0], [1.0], [2.0]]), y, None).round(3).ravel()
    array([-1.   , -1.   , -1.712])
    """

    n_parameters_per_expert = 0
    discrete = True
    _name = "poisson"
    _label = "Poisson"  # the likelihood's name in error messages
    _suggestion = (
        "PoissonRegressor, HistGradientBoostingRegressor(loss='poisson')"
    )

    def default_expert(self):
        """A Poisson GLM with a log link (see :func:`glm_expert`)."""
        return glm_expert(PoissonRegressor)

    def _check_domain(self, y):
        negative = y < 0
        if np.any(negative):
            raise ValueError(
                "y must hold counts (non-negative integers) for the "
                f"{self._label} likelihood; {_describe_bad(y, negative, 'below 0')}."
            )
        fractional = y != np.floor(y)
        if np.any(fractional):
            raise ValueError(
                "y must hold counts (non-negative integers) for the "
                f"{self._label} likelihood; {_describe_bad(y, fractional, 'fractional')}. For "
                "positive continuous targets use the Gamma likelihood."
            )
        return y

    @staticmethod
    def _log_target(y):
        return np.log1p(y)

    def log_lik(self, outputs, y, theta):
        """``y log mu - mu - lgamma(y + 1)``, (n_samples, n_experts).

        Entries of ``outputs`` that are 0 (experts not run on that row)
        get ``-inf``.
        """
        mu, missing = self._safe_mu(outputs)
        out = xlogy(y[:, None], mu)
        out -= mu
        out -= gammaln(y + 1.0)[:, None]
        if np.any(missing):
            out[missing] = -np.inf
        return out

    def stats(self, outputs, y, weights):
        """Weight per expert (the likelihood has no parameter to estimate)."""
        return (np.asarray(weights).sum(axis=0),)

    def m_step(self, stats, theta):
        """No parameter: returns None."""
        return None

    def row_loss(self, outputs, y):
        """Poisson unit deviance ``2 (y log(y / mu) - (y - mu))``."""
        mu, _ = self._safe_mu(outputs)
        yy = y[:, None]
        return 2.0 * (xlogy(yy, yy) - xlogy(yy, mu) - (yy - mu))

    @staticmethod
    def _expert_var(mu, theta):
        return mu

    def expert_distribution(self, outputs, theta):
        """Every expert's Poisson distribution on every row.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' means ``mu_k(x)`` (positive).
        theta : None
            The likelihood has no parameter.

        Returns
        -------
        distribution : scipy.stats frozen distribution
            ``poisson(mu_k(x))`` of shape ``(n_samples, n_experts)``; its
            ``logpmf`` is :meth:`log_lik`.
        """
        return stats.poisson(np.asarray(outputs, dtype=np.float64))


def gamma_shape_mle(c, max_shape=1e6, tol=1e-12, max_iter=100):
    """Solve ``log(nu) - digamma(nu) = c`` for the Gamma shape ``nu``.

    The maximum-likelihood shape of a Gamma GLM with the means fixed: with
    weighted sums ``s0 = sum_i w_i`` and
    ``s1 = sum_i w_i (log(y_i / mu_i) - y_i / mu_i)``, ``c = -s1 / s0 - 1``
    (half the weighted mean Gamma deviance; ``c >= 0``). The left side falls
    from ``+inf`` (``nu -> 0``) to ``0`` (``nu -> inf``), so there is one
    root for every ``c > 0``. Newton's method in ``log(nu)``, from Minka's
    starting point, safeguarded by bisection on a bracket that every step
    narrows. ``c <= 1 / (2 max_shape)`` (an expert that fits its rows
    exactly) gives ``max_shape``.

    Parameters
    ----------
    c : array-like of float
    max_shape : float, default=1e6
    tol : float, default=1e-12
        Relative tolerance on ``nu``.
    max_iter : int, default=100

    Returns
    -------
    nu : ndarray of the shape of ``c``
    """
    c = np.atleast_1d(np.asarray(c, dtype=np.float64)).copy()
    nu = np.full(c.shape, float(max_shape))
    active = c > 0
    if np.any(active):
        cc = c[active]
        # Minka (2002): log(nu) - digamma(nu) ~ 1/(2 nu) + 1/(12 nu^2) inverted.
        x = (3.0 - cc + np.sqrt((cc - 3.0) ** 2 + 24.0 * cc)) / (12.0 * cc)
        t = np.log(np.minimum(x, max_shape))
        lo = np.full(cc.shape, -800.0)  # bracket on t = log(nu)
        hi = np.full(cc.shape, np.log(max_shape))
        for _ in range(max_iter):
            nu_t = np.exp(t)
            f = np.log(nu_t) - digamma(nu_t) - cc  # decreasing in t
            # Narrow the bracket: f > 0 means the root lies above t.
            lo = np.where(f > 0, t, lo)
            hi = np.where(f > 0, hi, t)
            # d f / d t = 1 - nu * trigamma(nu) (< 0)
            df = 1.0 - nu_t * polygamma(1, nu_t)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(df < 0, -f / df, np.nan)
            t_new = t + step
            outside = ~((t_new > lo) & (t_new < hi))
            t_new = np.where(outside, 0.5 * (lo + hi), t_new)
            done = np.abs(t_new - t) <= tol
            t = t_new
            if np.all(done):
                break
        nu[active] = np.minimum(np.exp(t), max_shape)
    return nu


class GammaLikelihood(_PositiveMeanLikelihood):
    """Gamma experts: positive ``y`` with mean ``mu_k(x)`` and shape ``nu_k``.

    ``log p_k(y | x) = nu_k log(nu_k y / mu_k) - nu_k y / mu_k - log y -
    lgamma(nu_k)``: mean ``mu_k(x)``, variance ``mu_k(x)^2 / nu_k`` (a constant
    coefficient of variation ``1 / sqrt(nu_k)`` per expert). The shapes
    (``theta``) are estimated in the M-step by maximum likelihood given the
    experts' means (:func:`gamma_shape_mle`), from two additive weighted
    sums, so the estimate is the same whether the rows come in one piece or
    in chunks. Targets must be positive.

    Parameters
    ----------
    max_shape : float, default=1e6
        Upper bound on every shape ``nu_k`` (a lower bound of
        ``1 / max_shape`` on the squared coefficient of variation): an expert
        that fits its rows exactly never gets an infinite likelihood. It is
        unit-free, like the Gaussian mixture's ``reg_variance``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe._glm_likelihoods import GammaLikelihood
    >>> lik = GammaLikelihood()
    >>> y, _ = lik.validate_targets([0.5, 1.0, 2.0], None)
    >>> mu = np.ones((3, 1))
    >>> nu = lik.m_step(lik.stats(mu, y, np.ones((3, 1))), None)
    >>> nu.round(3)
    array([3.157])
    """

    n_parameters_per_expert = 1
    discrete = False
    _name = "gamma"
    _label = "Gamma"
    _suggestion = "GammaRegressor, HistGradientBoostingRegressor(loss='gamma')"

    _parameter_constraints = {"max_shape": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, max_shape=1e6):
        self.max_shape = max_shape

    def default_expert(self):
        """A Gamma GLM with a log link (see :func:`glm_expert`)."""
        return glm_expert(GammaRegressor)

    def _check_domain(self, y):
        bad = ~(y > 0)
        if np.any(bad):
            raise ValueError(
                "y must be positive for the Gamma likelihood; "
                f"{_describe_bad(y, bad, 'not positive')}. For counts with zeros "
                "use the Poisson likelihood."
            )
        return y

    @staticmethod
    def _log_target(y):
        return np.log(y)

    def log_lik(self, outputs, y, theta):
        """Gamma log-densities, (n_samples, n_experts).

        ``theta`` holds the shapes ``nu_k``. Entries of ``outputs`` that are 0
        (experts not run on that row) get ``-inf``.
        """
        if theta is None:
            raise ValueError(
                "GammaLikelihood.log_lik needs the shapes theta; run m_step first."
            )
        nu = np.asarray(theta, dtype=np.float64)
        mu, missing = self._safe_mu(outputs)
        ratio = y[:, None] / mu
        out = np.log(ratio)
        out -= ratio
        out *= nu
        out += nu * np.log(nu) - gammaln(nu)
        out -= np.log(y)[:, None]
        if np.any(missing):
            out[missing] = -np.inf
        return out

    @staticmethod
    def _half_deviance(outputs, y):
        """``y / mu - 1 - log(y / mu)`` without cancellation near ``y = mu``."""
        mu, _ = _PositiveMeanLikelihood._safe_mu(outputs)
        x = y[:, None] / mu - 1.0
        return x - np.log1p(x)

    def stats(self, outputs, y, weights):
        """Additive sums per expert: ``(sum_i w_ik d_ik, sum_i w_ik)``.

        ``d_ik = y_i / mu_ik - 1 - log(y_i / mu_ik) >= 0`` is half the unit
        Gamma deviance, so the first sum equals
        ``-sum_i w_ik (log(y_i / mu_ik) - y_i / mu_ik) - sum_i w_ik``,
        computed without the cancellation of that difference.
        """
        weights = np.asarray(weights, dtype=np.float64)
        d = self._half_deviance(outputs, y)
        d[weights == 0] = 0.0  # rows an expert did not run on
        return np.einsum("ik,ik->k", weights, d), weights.sum(axis=0)

    def m_step(self, stats, theta):
        """Maximum-likelihood shapes from the sums of :meth:`stats`.

        Solves ``log(nu) - digamma(nu) = s_dev / s_w`` per expert. An expert
        without weight keeps its shape (or, at the first M-step, takes the
        shape of all the experts' rows pooled).
        """
        s_dev, s_w = (np.asarray(s, dtype=np.float64) for s in stats)
        nu = np.empty(s_w.shape)
        owned = s_w > 0
        nu[owned] = gamma_shape_mle(s_dev[owned] / s_w[owned], self.max_shape)
        if not owned.all():
            if theta is not None:
                nu[~owned] = np.asarray(theta, dtype=np.float64)[~owned]
            elif s_w.sum() > 0:
                nu[~owned] = gamma_shape_mle(s_dev.sum() / s_w.sum(), self.max_shape)[0]
            else:
                nu[~owned] = 1.0
        return nu

    def row_loss(self, outputs, y):
        """Gamma unit deviance ``2 (y / mu - 1 - log(y / mu))``."""
        return 2.0 * self._half_deviance(outputs, y)

    @staticmethod
    def _expert_var(mu, theta):
        return mu * mu / np.asarray(theta, dtype=np.float64)

    def expert_distribution(self, outputs, theta):
        """Every expert's Gamma distribution on every row.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' means ``mu_k(x)`` (positive).
        theta : ndarray of shape (n_experts,)
            The shapes ``nu_k``.

        Returns
        -------
        distribution : scipy.stats frozen distribution
            ``gamma(a=nu_k, scale=mu_k(x) / nu_k)`` of shape
            ``(n_samples, n_experts)``; its ``logpdf`` is :meth:`log_lik`.
        """
        mu = np.asarray(outputs, dtype=np.float64)
        nu = np.broadcast_to(np.asarray(theta, dtype=np.float64), mu.shape)
        return stats.gamma(a=nu, scale=mu / nu)
