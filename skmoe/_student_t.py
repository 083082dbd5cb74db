"""Student-t expert likelihood: robust regression experts.

Expert ``k`` predicts the location ``f_k(x)`` of ``y``; its noise is a
Student-t of scale ``sigma_k`` and ``nu_k`` degrees of freedom::

    log p_k(y | x) = lgamma((nu + 1) / 2) - lgamma(nu / 2) - log(pi nu) / 2
                     - log sigma - (nu + 1) / 2 log(1 + z^2 / nu),
    z = (y - f_k(x)) / sigma.

How EM fits it (the ECM algorithm of Lange, Little & Taylor, 1989)
-----------------------------------------------------------------
A t variable is a Gaussian whose precision is scaled by a latent
``u ~ Gamma(nu / 2, nu / 2)``. Given the current fit, the expected scale of
row ``i`` under expert ``k`` is ``u_ik = (nu_k + 1) / (nu_k + z_ik^2)``: a
row far from the expert's prediction weighs little. The M-step

* refits the experts with ``sample_weight = w_ik u_ik`` (EM's weights times
  the latent scales: :meth:`StudentTLikelihood.expert_fit_weights`), a
  weighted least-squares fit that raises the expected complete-data
  log-likelihood, hence the likelihood;
* sets ``(sigma_k, nu_k)`` to the maximum of the weighted t log-likelihood
  with the locations fixed (:func:`t_scale_df_mle`, L-BFGS-B on
  ``(log sigma, log nu)``), or ``sigma_k`` alone with a fixed ``df``.

Every step raises the mixture's log-likelihood (a generalised EM).
"""

from numbers import Real

import numpy as np
import scipy.stats
from scipy.special import digamma, gammaln, polygamma
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from ._likelihood import GaussianLikelihood
from ._roots import decreasing_root

__all__ = ["StudentTLikelihood", "t_scale_df_mle", "t_log_pdf"]

#: Bounds on an estimated number of degrees of freedom: 1 (Cauchy) to
#: 1000 (a Gaussian to within 1e-3 in log density at 3 scales).
MIN_DF = 1.0
MAX_DF = 1000.0

#: The dtype of ``theta``: one ``(scale, df)`` record per expert.
THETA_DTYPE = np.dtype([("scale", np.float64), ("df", np.float64)])


def t_log_pdf(z2, scale, df):
    """Student-t log-density from the squared standardised residual.

    Parameters
    ----------
    z2 : array-like
        ``((y - loc) / scale)^2``.
    scale, df : array-like
        Scales and degrees of freedom (broadcast).

    Returns
    -------
    log_p : ndarray
    """
    half = 0.5 * (df + 1.0)
    return (
        gammaln(half)
        - gammaln(0.5 * df)
        - 0.5 * np.log(np.pi * df)
        - np.log(scale)
        - half * np.log1p(z2 / df)
    )


def _scale_score(r2, w, df):
    """The derivative in ``log sigma`` of the weighted t log-likelihood (per
    unit weight), ``-1 + sum_i w_i u_i z_i^2``, and its own derivative;
    decreasing in ``sigma``. ``func(t, idx)`` for
    :func:`~skmoe._roots.decreasing_root`."""

    def score(t, idx):
        nu = df[idx]
        z2 = r2[:, idx] * np.exp(-2.0 * t)
        uz2 = (nu + 1.0) * z2 / (nu + z2)
        ww = w[:, idx]
        f = np.einsum("ik,ik->k", ww, uz2) - 1.0
        # d(u z^2)/dt = -2 (nu + 1) nu z^2 / (nu + z^2)^2
        df_ = -2.0 * np.einsum("ik,ik->k", ww, uz2 * nu / (nu + z2))
        return f, df_

    return score


def _df_score(z2, w):
    """The derivative in ``log nu`` of the weighted t log-likelihood (per
    unit weight) at fixed standardised residuals, and its own derivative.
    ``func(t, idx)`` for :func:`~skmoe._roots.decreasing_root`."""

    def score(t, idx):
        nu = np.exp(t)
        x, ww = z2[:, idx], w[:, idx]
        a = nu + x
        d1 = (
            0.5 * digamma(0.5 * (nu + 1.0))
            - 0.5 * digamma(0.5 * nu)
            - 0.5 / nu
            - 0.5 * np.einsum("ik,ik->k", ww, np.log1p(x / nu))
            + 0.5 * (nu + 1.0) * np.einsum("ik,ik->k", ww, x / (nu * a))
        )
        # d/dnu of the terms above
        d2 = (
            0.25 * polygamma(1, 0.5 * (nu + 1.0))
            - 0.25 * polygamma(1, 0.5 * nu)
            + 0.5 / (nu * nu)
            + 0.5 * np.einsum("ik,ik->k", ww, x / (nu * a))
            + 0.5
            * np.einsum(
                "ik,ik->k", ww, x * (nu * a - (nu + 1.0) * (a + nu)) / (nu * a) ** 2
            )
        )
        return nu * d1, nu * d1 + nu * nu * d2

    return score


def t_scale_df_mle(
    residuals, weights, start, df=None, variance_floor=0.0, n_rounds=20, tol=1e-9
):
    """Maximum-likelihood scales (and degrees of freedom) of t experts.

    Maximises ``sum_i w_ik log t(r_ik; sigma_k, nu_k)`` for every expert
    ``k`` with the locations fixed (the residuals ``r`` given), by
    coordinate ascent: the exact ``sigma`` given ``nu`` (the score in
    ``log sigma`` falls from ``nu`` to ``-1``: one root), then the exact
    ``nu`` given ``sigma`` in ``[MIN_DF, MAX_DF]``, each by
    :func:`~skmoe._roots.decreasing_root`, until ``log sigma`` and
    ``log nu`` move less than ``tol`` (at most ``n_rounds`` rounds; every
    round raises the likelihood). ``sigma^2 >= variance_floor``.

    Parameters
    ----------
    residuals : ndarray of shape (n_samples, n_experts)
    weights : ndarray of shape (n_samples, n_experts)
        Non-negative, every column with a positive sum.
    start : tuple of two ndarrays of shape (n_experts,)
        The starting ``(sigma, nu)``.
    df : float or None, default=None
        A fixed ``nu`` (only ``sigma`` is estimated), or None.
    variance_floor : float, default=0.0
        Lower bound on ``sigma^2``.
    n_rounds : int, default=20
        Most rounds of the coordinate ascent.
    tol : float, default=1e-9
        Tolerance on ``log sigma`` and ``log nu``.

    Returns
    -------
    sigma, nu : ndarray of shape (n_experts,)
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum(axis=0)
    r2 = np.asarray(residuals, dtype=np.float64) ** 2
    K = w.shape[1]
    floor = max(float(variance_floor), 1e-300)
    spread = np.sqrt(np.maximum(np.einsum("ik,ik->k", w, r2), floor))
    lo_s = np.full(K, 0.5 * np.log(floor))
    hi_s = np.log(spread) + 0.5 * np.log(MAX_DF + 1.0)  # u z^2 <= nu + 1
    log_s = np.log(np.asarray(start[0], dtype=np.float64))
    nu = np.clip(np.asarray(start[1], dtype=np.float64), MIN_DF, MAX_DF)
    if df is not None:
        nu = np.full(K, float(df))
    for _ in range(n_rounds):
        new_s = decreasing_root(
            _scale_score(r2, w, nu), lo_s, np.maximum(hi_s, lo_s), log_s
        )
        new_nu = nu
        if df is None:
            z2 = r2 * np.exp(-2.0 * new_s)
            new_nu = np.exp(
                decreasing_root(
                    _df_score(z2, w),
                    np.full(K, np.log(MIN_DF)),
                    np.full(K, np.log(MAX_DF)),
                    np.log(nu),
                )
            )
        moved = max(np.max(np.abs(new_s - log_s)), np.max(np.abs(np.log(new_nu / nu))))
        log_s, nu = new_s, new_nu
        if moved <= tol:
            break
    return np.exp(log_s), nu


class StudentTLikelihood(BaseEstimator):
    """Student-t experts: a robust alternative to Gaussian noise.

    ``p_k(y | x) = t_{nu_k}(y; f_k(x), sigma_k)``. ``theta`` holds one
    ``(scale, df)`` record per expert (a structured array), estimated in
    every M-step by maximum likelihood given the experts' predictions; the
    experts are refitted with their EM weights times the latent scales
    ``(nu + 1) / (nu + z^2)`` (:meth:`expert_fit_weights`), which
    down-weight the rows far from their prediction.

    Parameters
    ----------
    df : float or None, default=None
        Fixed degrees of freedom for every expert, or None to estimate one
        per expert (bounded to ``[1, 1000]``). ``df=4`` is a common robust
        choice (Lange, Little & Taylor, 1989).
    reg_variance : float, default=1e-6
        Floor on every ``sigma_k^2``, relative to the variance of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import StudentTLikelihood
    >>> lik = StudentTLikelihood(df=4)
    >>> y, _ = lik.validate_targets([-1.0, 0.0, 0.5, 1.0, 20.0], None)
    >>> theta = lik.m_step(lik.stats(np.zeros((5, 1)), y, np.ones((5, 1))), None)
    >>> float(theta["df"][0]), bool(theta["scale"][0] < y.std())
    (4.0, True)
    """

    subset_rows = True
    n_classes = None
    discrete = False

    _parameter_constraints = {
        "df": [Interval(Real, 0, None, closed="neither"), None],
        "reg_variance": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, df=None, reg_variance=1e-6):
        self.df = df
        self.reg_variance = reg_variance

    @property
    def n_parameters_per_expert(self):
        """Two per expert (scale and degrees of freedom), one with a fixed ``df``."""
        return 1 if self.df is not None else 2

    def _gaussian(self):
        return GaussianLikelihood(self.reg_variance)

    def validate_targets(self, y, sample_weight):
        """Check ``y`` at fit time and fix ``variance_floor_``.

        ``y`` must hold finite real numbers (the Gaussian likelihood's
        check); the parameters are validated too.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            The targets.
        sample_weight : ndarray of shape (n_samples,) or None
            The sample weights (for the variance of ``y``).

        Returns
        -------
        y : ndarray of shape (n_samples,)
            ``y`` as float64.
        info : dict
            ``{"variance_floor": ...}``.
        """
        self._validate_params()
        gaussian = self._gaussian()
        y, info = gaussian.validate_targets(y, sample_weight)
        self.variance_floor_ = gaussian.variance_floor_
        self.target_variance_ = gaussian.target_variance_
        return y, info

    def encode_targets(self, y, n_samples):
        """Check ``y`` at inference time, as the Gaussian likelihood does.

        Parameters
        ----------
        y : array-like of shape (n_samples,)
            The targets.
        n_samples : int
            The number of rows of ``X``.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            ``y`` as float64.
        """
        return self._gaussian().encode_targets(y, n_samples)

    def init_columns(self, X, y):
        """Give the columns that ``init="kmeans"`` clusters: ``[X, y]``.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
            The inputs.
        y : ndarray of shape (n_samples,)
            The targets.

        Returns
        -------
        columns : ndarray or sparse matrix of shape (n_samples, n_features + 1)
            ``X`` and ``y`` side by side.
        """
        return self._gaussian().init_columns(X, y)

    def outputs(self, experts, X, rows=None, pool=None):
        """Predict every expert's location, as the Gaussian likelihood does.

        Parameters
        ----------
        experts : list of fitted regressors
            The experts.
        X : ndarray, sparse matrix or DataFrame of shape (n_samples, n_features)
            The inputs.
        rows : list or None, default=None
            ``rows[k]``: None (expert ``k`` runs on every row) or the rows it
            runs on (its other entries are 0).
        pool : ExpertPool or None, default=None
            The run's pool of workers.

        Returns
        -------
        locations : ndarray of shape (n_samples, n_experts)
            The experts' predictions.
        """
        return self._gaussian().outputs(experts, X, rows, pool)

    @staticmethod
    def noise_variances(theta):
        """Give ``sigma_k^2`` of every expert (for the collapse check).

        Parameters
        ----------
        theta : structured ndarray of shape (n_experts,)
            The ``(scale, df)`` records.

        Returns
        -------
        variances : ndarray of shape (n_experts,)
            The squared scales.
        """
        return np.asarray(theta["scale"], dtype=np.float64) ** 2

    def log_lik(self, outputs, y, theta):
        """Compute the Student-t log-densities of every row under every expert.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' locations.
        y : ndarray of shape (n_samples,)
            The targets.
        theta : structured ndarray of shape (n_experts,)
            The ``(scale, df)`` records.

        Returns
        -------
        log_lik : ndarray of shape (n_samples, n_experts)
            ``log t_{nu_k}(y_i; f_k(x_i), sigma_k)``.
        """
        if theta is None:
            raise ValueError(
                "StudentTLikelihood.log_lik needs theta (scales and degrees of "
                "freedom); run m_step first."
            )
        scale = np.asarray(theta["scale"], dtype=np.float64)[None, :]
        df = np.asarray(theta["df"], dtype=np.float64)[None, :]
        z2 = ((y[:, None] - outputs) / scale) ** 2
        return t_log_pdf(z2, scale, df)

    def stats(self, outputs, y, weights):
        """Collect the rows that the scales are estimated from.

        The t scale has no finite sufficient statistics, so these are the
        rows themselves (not sums): the likelihood works with EM on the rows
        in memory, not with the gradient solver's decayed sums.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' locations.
        y : ndarray of shape (n_samples,)
            The targets.
        weights : ndarray of shape (n_samples, n_experts)
            EM's weights.

        Returns
        -------
        stats : tuple of two ndarrays of shape (n_samples, n_experts)
            The residuals and the weights.
        """
        return y[:, None] - outputs, np.asarray(weights, dtype=np.float64)

    def m_step(self, stats, theta):
        """Estimate ``(scale, df)`` per expert by maximum likelihood.

        :func:`t_scale_df_mle` given the predictions, started from ``theta``
        (at the first M-step: the weighted standard deviation and ``df``, or
        10). An expert without weight keeps its parameters (at the first
        M-step: it is estimated from every row).

        Parameters
        ----------
        stats : tuple
            What :meth:`stats` returned.
        theta : structured ndarray of shape (n_experts,) or None
            The current records (None at the first M-step).

        Returns
        -------
        theta : structured ndarray of shape (n_experts,)
            The new ``(scale, df)`` records.
        """
        residuals, w = stats
        owned = w.sum(axis=0) > 0
        if theta is None:
            w = np.where(owned, w, 1.0)
            spread = np.sqrt(np.einsum("ik,ik->k", w, residuals**2) / w.sum(axis=0))
            start = (
                np.maximum(spread, np.sqrt(self.variance_floor_)),
                np.full(w.shape[1], 10.0 if self.df is None else float(self.df)),
            )
            owned = np.ones(w.shape[1], dtype=bool)
        else:
            start = (
                np.array(theta["scale"], dtype=np.float64),
                np.array(theta["df"], dtype=np.float64),
            )
        out = np.empty(w.shape[1], dtype=THETA_DTYPE)
        if theta is not None:
            out[:] = theta
        if owned.any():
            # From the previous M-step's values one round is a generalised
            # M-step (it raises the likelihood); EM iterates it to the joint
            # maximum.
            sigma, nu = t_scale_df_mle(
                residuals[:, owned],
                w[:, owned],
                (start[0][owned], start[1][owned]),
                self.df,
                self.variance_floor_,
                n_rounds=5 if theta is None else 1,
            )
            out["scale"][owned], out["df"][owned] = sigma, nu
        return out

    def expert_fit_weights(self, outputs, y, weights, theta):
        """Multiply EM's weights by the latent scales ``(nu + 1) / (nu + z^2)``.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' current predictions.
        y : ndarray of shape (n_samples,)
            The targets.
        weights : ndarray of shape (n_samples, n_experts)
            EM's weights (sample weights times assignments).
        theta : structured ndarray of shape (n_experts,)
            The current ``(scale, df)`` records.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_experts)
            The experts' fit weights.
        """
        scale = np.asarray(theta["scale"], dtype=np.float64)[None, :]
        df = np.asarray(theta["df"], dtype=np.float64)[None, :]
        z2 = ((y[:, None] - outputs) / scale) ** 2
        return weights * ((df + 1.0) / (df + z2))

    def row_loss(self, outputs, y):
        """Give the squared residuals (which expert fits a row worst).

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' locations.
        y : ndarray of shape (n_samples,)
            The targets.

        Returns
        -------
        loss : ndarray of shape (n_samples, n_experts)
            ``(y - f_k)^2``.
        """
        r = y[:, None] - outputs
        return r * r

    def mean(self, gate_w, outputs):
        """Compute the predictive mean ``sum_k pi_k f_k``.

        The centre of every t; its mean where ``nu_k > 1``.

        Parameters
        ----------
        gate_w : ndarray of shape (n_samples, n_experts)
            The gate's probabilities.
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' locations.

        Returns
        -------
        mean : ndarray of shape (n_samples,)
            The mixture's mean.
        """
        return self._gaussian().mean(gate_w, outputs)

    def mean_var(self, gate_w, outputs, theta):
        """Compute the predictive mean and variance (law of total variance).

        Each expert's variance is ``sigma^2 nu / (nu - 2)``, infinite where
        ``nu <= 2``: the mixture's variance is then infinite on the rows
        where such an expert has weight.

        Parameters
        ----------
        gate_w : ndarray of shape (n_samples, n_experts)
            The gate's probabilities.
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' locations.
        theta : structured ndarray of shape (n_experts,)
            The ``(scale, df)`` records.

        Returns
        -------
        mean : ndarray of shape (n_samples,)
            The mixture's mean.
        var : ndarray of shape (n_samples,)
            The mixture's variance (``inf`` where it does not exist).
        """
        df = np.asarray(theta["df"], dtype=np.float64)
        with np.errstate(divide="ignore"):
            var = np.where(
                df > 2, self.noise_variances(theta) * df / (df - 2.0), np.inf
            )
        gate_w = np.asarray(gate_w, dtype=np.float64)
        mean = self.mean(gate_w, outputs)
        f = np.where(gate_w > 0, outputs, 0.0)
        used_var = np.where(gate_w > 0, var[None, :], 0.0)
        second = np.einsum("ik,ik->i", gate_w, used_var + f * f)
        with np.errstate(invalid="ignore"):
            total = second - mean * mean
        return mean, np.where(np.isinf(second), np.inf, np.maximum(total, 0.0))

    def expert_distribution(self, outputs, theta):
        """Give every expert's predictive distribution, frozen, ``(n, K)``.

        Parameters
        ----------
        outputs : ndarray of shape (n_samples, n_experts)
            The experts' locations.
        theta : structured ndarray of shape (n_experts,)
            The ``(scale, df)`` records.

        Returns
        -------
        dist : scipy.stats frozen distribution
            ``scipy.stats.t(df, loc=outputs, scale=scale)``: its ``logpdf``
            equals :meth:`log_lik`.
        """
        scale = np.broadcast_to(
            np.asarray(theta["scale"], dtype=np.float64), outputs.shape
        )
        df = np.broadcast_to(np.asarray(theta["df"], dtype=np.float64), outputs.shape)
        return scipy.stats.t(df, loc=outputs, scale=scale)
