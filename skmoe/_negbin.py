"""Negative binomial (NB2) expert likelihood.

Expert ``k`` predicts the mean ``mu_k(x) > 0`` of a count ``y``; the
likelihood has one dispersion (size) ``r_k > 0`` per expert::

    log p_k(y | x) = lgamma(y + r) - lgamma(r) - lgamma(y + 1)
                     + r log(r / (r + mu)) + y log(mu / (r + mu))

the NB2 model of Cameron & Trivedi: mean ``mu``, variance
``mu + mu^2 / r`` (statsmodels' ``alpha = 1 / r``; scipy's
``nbinom(r, r / (r + mu))``). ``r -> inf`` is the Poisson limit.

How EM fits it
--------------
The M-step maximises ``sum_i w_ik log p_k(y_i | x_i)`` over expert ``k``'s
mean model and ``r_k``, in two blocks:

* the experts are Poisson-loss regressors (the default: a log-link
  :class:`~sklearn.linear_model.PoissonRegressor`) refitted with the weights
  ``w_ik / (1 + mu_ik / r_k)`` (:meth:`NegativeBinomialLikelihood.expert_fit_weights`,
  ``mu`` the expert's current means). The weighted Poisson score
  ``sum_i w_i (y_i - mu_i) x_i / (1 + mu_i / r)`` is the NB2 mean model's
  score (its Fisher-scoring weights), so EM's fixed point is the NB2 mixture's
  maximum-likelihood point, not the Poisson one's;
* ``r_k`` maximises the weighted NB2 log-likelihood with the means fixed
  (:func:`nb_shape_mle`: Newton's method on ``log r``, safeguarded by
  bisection, bounded by ``[min_shape, max_shape]``).
"""

from numbers import Real

import numpy as np
import scipy.stats
from scipy.special import digamma, gammaln, polygamma, xlogy
from sklearn.utils._param_validation import Interval

from ._glm_likelihoods import PoissonLikelihood
from ._roots import decreasing_root

__all__ = ["NegativeBinomialLikelihood", "nb_shape_mle", "nb_log_pmf"]


def nb_log_pmf(y, mu, r):
    """NB2 log-probabilities ``log p(y | mu, r)`` (broadcast).

    Parameters
    ----------
    y : array-like
        Non-negative integer counts.
    mu : array-like
        Positive means.
    r : array-like
        Positive dispersions (sizes).

    Returns
    -------
    log_p : ndarray
        ``lgamma(y + r) - lgamma(r) - lgamma(y + 1) - r log1p(mu / r)
        + y log(mu / (r + mu))``.
    """
    y, mu, r = (np.asarray(a, dtype=np.float64) for a in (y, mu, r))
    out = gammaln(y + r) - gammaln(r) - gammaln(y + 1.0)
    out -= r * np.log1p(mu / r)
    out += xlogy(y, mu) - xlogy(y, mu + r)
    return out


def _profile_score(y, mu, w):
    """The derivative in ``t = log r`` of the weighted NB2 log-likelihood
    (per unit weight) of every expert, and its own derivative, as
    ``func(t, idx)`` for :func:`~skmoe._roots.decreasing_root`."""

    def score(t, idx):
        r = np.exp(t)
        m, ww = mu[:, idx], w[:, idx]
        rm = r + m
        d_r = digamma(y + r) - digamma(r) + np.log(r / rm) + (m - y) / rm
        dd_r = (
            polygamma(1, y + r)
            - polygamma(1, r)
            + 1.0 / r
            - 1.0 / rm
            - (m - y) / (rm * rm)
        )
        f = r * np.einsum("ik,ik->k", ww, d_r)
        return f, f + r * r * np.einsum("ik,ik->k", ww, dd_r)

    return score


def nb_shape_mle(
    y, mu, weights, min_shape=1e-4, max_shape=1e6, tol=1e-10, max_iter=100
):
    """Maximum-likelihood NB2 dispersions ``r_k`` with the means fixed.

    Maximises ``sum_i w_ik log NB(y_i; mu_ik, r_k)`` over each ``r_k`` in
    ``[min_shape, max_shape]``: Newton's method on ``t = log r`` (digamma
    and trigamma), kept inside a bracket on which the score changes sign
    (:func:`~skmoe._roots.decreasing_root`). Where the score is still
    positive at ``max_shape`` (no overdispersion: the Poisson limit) the
    result is ``max_shape``; where it is negative at ``min_shape``,
    ``min_shape``. Newton starts from the moment estimate
    ``sum w mu^2 / sum w ((y - mu)^2 - y)``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Counts.
    mu : ndarray of shape (n_samples, n_experts)
        The experts' means (positive).
    weights : ndarray of shape (n_samples, n_experts)
        Non-negative weights; every column must have a positive sum.
    min_shape : float, default=1e-4
        Lower bound on ``r``.
    max_shape : float, default=1e6
        Upper bound on ``r``.
    tol : float, default=1e-10
        Tolerance on ``log r``.
    max_iter : int, default=100
        Most Newton / bisection steps.

    Returns
    -------
    r : ndarray of shape (n_experts,)
    """
    y = np.asarray(y, dtype=np.float64)[:, None]
    mu = np.asarray(mu, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum(axis=0)
    K = w.shape[1]
    excess = np.einsum("ik,ik->k", w, (y - mu) ** 2 - y)
    moments = np.einsum("ik,ik->k", w, mu * mu) / np.maximum(excess, 1e-300)
    t = decreasing_root(
        _profile_score(y, mu, w),
        np.full(K, np.log(min_shape)),
        np.full(K, np.log(max_shape)),
        np.log(np.maximum(moments, 1e-300)),
        tol=tol,
        max_iter=max_iter,
    )
    return np.exp(t)


class NegativeBinomialLikelihood(PoissonLikelihood):
    """Negative binomial (NB2) experts: counts with mean ``mu_k(x)`` and
    dispersion ``r_k``.

    ``log p_k(y | x) = lgamma(y + r_k) - lgamma(r_k) - lgamma(y + 1)
    + r_k log(r_k / (r_k + mu_k)) + y log(mu_k / (r_k + mu_k))``: mean
    ``mu_k(x)``, variance ``mu_k + mu_k^2 / r_k``. ``theta`` holds the
    dispersions ``r_k``, estimated by maximum likelihood in every M-step
    (:func:`nb_shape_mle`). The experts are Poisson-loss regressors refitted
    with the NB2 weights ``w / (1 + mu / r)`` (:meth:`expert_fit_weights`),
    so that EM converges to the NB2 mixture's maximum-likelihood point.
    Targets must be non-negative integers.

    Parameters
    ----------
    max_shape : float, default=1e6
        Upper bound on every ``r_k``: the Poisson limit (an expert whose rows
        are not overdispersed).
    min_shape : float, default=1e-4
        Lower bound on every ``r_k``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe._negbin import NegativeBinomialLikelihood
    >>> lik = NegativeBinomialLikelihood()
    >>> y, _ = lik.validate_targets([0, 0, 1, 5, 9], None)
    >>> mu = np.full((5, 1), 3.0)
    >>> r = lik.m_step(lik.stats(mu, y, np.ones((5, 1))), None)
    >>> r.round(3)
    array([0.501])
    """

    n_parameters_per_expert = 1
    discrete = True
    _name = "negbin"
    _label = "negative binomial"
    _suggestion = "PoissonRegressor, HistGradientBoostingRegressor(loss='poisson')"

    _parameter_constraints = {
        "max_shape": [Interval(Real, 0, None, closed="neither")],
        "min_shape": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, max_shape=1e6, min_shape=1e-4):
        self.max_shape = max_shape
        self.min_shape = min_shape

    def validate_targets(self, y, sample_weight):
        """Fit-time check of ``y`` (non-negative integer counts) and of the
        bounds; clear ValueError naming ``y``.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
        sample_weight : ndarray of shape (n_samples,) or None

        Returns
        -------
        y : ndarray of shape (n_samples,), float64
        info : dict
            Empty.
        """
        y, info = super().validate_targets(y, sample_weight)
        if not self.min_shape < self.max_shape:
            raise ValueError(
                f"NegativeBinomialLikelihood needs min_shape < max_shape; got "
                f"min_shape={self.min_shape} and max_shape={self.max_shape}."
            )
        return y, info

    def log_lik(self, outputs, y, theta):
        """NB2 log-probabilities, (n_samples, n_experts).

        ``theta`` holds the dispersions ``r_k``; entries of ``outputs`` that
        are 0 (experts not run on that row) get ``-inf``.
        """
        if theta is None:
            raise ValueError(
                "NegativeBinomialLikelihood.log_lik needs the dispersions theta; "
                "run m_step first."
            )
        mu, missing = self._safe_mu(outputs)
        out = nb_log_pmf(y[:, None], mu, np.asarray(theta, dtype=np.float64)[None, :])
        if np.any(missing):
            out[missing] = -np.inf
        return out

    def stats(self, outputs, y, weights):
        """The rows the dispersions are estimated from: ``(y, mu, weights)``.

        The NB2 dispersion has no finite sufficient statistics, so these are
        the rows themselves (not sums): the likelihood works with EM on the
        rows in memory, not with the gradient solver's decayed sums.
        """
        return (
            y,
            np.array(outputs, dtype=np.float64),
            np.asarray(weights, dtype=np.float64),
        )

    def m_step(self, stats, theta):
        """Maximum-likelihood dispersions (:func:`nb_shape_mle`). An expert
        without weight keeps its ``r`` (at the first M-step: the ``r`` of all
        the rows pooled, or 1 without any weight)."""
        y, mu, w = stats
        mu, _ = self._safe_mu(mu)
        owned = w.sum(axis=0) > 0
        r = np.empty(w.shape[1])
        bounds = {"min_shape": self.min_shape, "max_shape": self.max_shape}
        if owned.any():
            r[owned] = nb_shape_mle(y, mu[:, owned], w[:, owned], **bounds)
        if not owned.all():
            if theta is not None:
                r[~owned] = np.asarray(theta, dtype=np.float64)[~owned]
            elif w.sum() > 0:
                pooled = nb_shape_mle(
                    np.tile(y, mu.shape[1]),
                    mu.T.reshape(-1, 1),
                    w.T.reshape(-1, 1),
                    **bounds,
                )
                r[~owned] = pooled[0]
            else:
                r[~owned] = 1.0
        return r

    def expert_fit_weights(self, outputs, y, weights, theta):
        """The NB2 mean model's weights for a Poisson-loss expert fit:
        ``weights / (1 + mu / r)`` (Fisher scoring for the log link).

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' current means.
        y : ndarray of shape (n_samples,)
            Not used.
        weights : ndarray of shape (n_samples, n_experts)
            The EM weights (sample weights times assignments).
        theta : ndarray of shape (n_experts,)
            The current dispersions.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_experts)
        """
        mu, _ = self._safe_mu(outputs)
        r = np.asarray(theta, dtype=np.float64)[None, :]
        return weights * (r / (r + mu))

    def expert_distribution(self, outputs, theta):
        """Every expert's predictive distribution, frozen, ``(n, K)``.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' means.
        theta : ndarray of shape (n_experts,)
            The dispersions ``r_k``.

        Returns
        -------
        dist : scipy.stats frozen distribution
            ``scipy.stats.nbinom(r, r / (r + mu))``: its ``logpmf`` equals
            :meth:`log_lik`.
        """
        mu, _ = self._safe_mu(outputs)
        r = np.broadcast_to(np.asarray(theta, dtype=np.float64)[None, :], mu.shape)
        return scipy.stats.nbinom(r, r / (r + mu))

    @staticmethod
    def _expert_var(mu, theta):
        return mu + mu * mu / np.asarray(theta, dtype=np.float64)
