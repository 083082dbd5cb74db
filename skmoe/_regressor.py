"""Mixture of experts for regression: a gated mixture of Gaussians."""

from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context, is_classifier
from sklearn.linear_model import LinearRegression
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import column_or_1d

from . import _linear, _threaded
from ._base import _BaseMixtureOfExperts, _estimator_name


class MixtureOfExpertsRegressor(RegressorMixin, _BaseMixtureOfExperts):
    """Mixture of experts regressor (Jordan & Jacobs, 1991).

    A softmax gating network ``pi(x) = softmax(V^T [z, 1])`` decides how much
    each expert owns each input; expert ``k`` is any scikit-learn regressor
    ``f_k`` with Gaussian noise of its own variance ``sigma_k^2``:

    .. math::

        p(y \\mid x) = \\sum_k \\pi_k(x)\\,
        \\mathcal{N}(y;\\, f_k(x),\\, \\sigma_k^2).

    It is fitted by EM: the E-step computes the posterior responsibility of
    every expert for every sample; the M-step refits each expert with
    ``sample_weight`` = responsibilities, sets each ``sigma_k^2`` to the
    weighted mean squared residual, and refits the gate
    (:class:`SoftmaxGate`) to the responsibilities.

    Parameters
    ----------
    experts : estimator or list of estimators, default=None
        A regressor cloned ``n_experts`` times, or a list of regressors (one
        per expert; they may differ). ``None`` means
        :class:`~sklearn.linear_model.LinearRegression`. Experts whose
        ``fit`` takes ``sample_weight`` (a Pipeline counts when its final step
        does; its steps that accept weights receive them) are fitted on the
        weighted data. An expert whose ``fit`` takes no ``sample_weight``
        (for example :class:`~sklearn.neighbors.KNeighborsRegressor`) is fitted
        on the rows assigned to it: the most probable ones when
        ``assignment="soft"`` or ``"hard"``, rows drawn from the posterior when
        ``"stochastic"``. Such experts cannot honour a non-uniform
        ``sample_weight``; :meth:`fit` then raises an error.

    n_experts : int, default=None
        Number of experts. ``None`` means 2 when ``experts`` is one estimator,
        and the length of the list otherwise (which must equal ``n_experts``
        when both are given).

    gate : SoftmaxGate, default=None
        The gating network, cloned at fit. ``None`` means ``SoftmaxGate()``
        (scikit-learn estimators take no estimator instance as a default).
        Pass ``gate=SoftmaxGate()`` to tune its penalty as ``gate__alpha``
        in :class:`~sklearn.model_selection.GridSearchCV`. A strong penalty
        smooths the boundaries between the experts; sharp regime changes
        want a small ``alpha``.

    gate_features : array-like of int, str or bool, default=None
        Columns of ``X`` that the gate sees: indices, names (when ``X`` is a
        pandas DataFrame) or a boolean mask. ``None`` means all columns. The
        experts always see all columns.

    assignment : {"soft", "hard", "stochastic"}, default="soft"
        What the M-step gives the experts and the gate, as flexmix's
        ``classify``: the posterior responsibilities (classic EM), the most
        probable expert of each sample (classification EM), or an expert
        drawn from each sample's posterior (stochastic EM).

    init : {"kmeans", "random"} or array-like of shape (n_samples, n_experts), \
            default="kmeans"
        Initial responsibilities. ``"kmeans"`` clusters the standardised
        ``[X, y]``: the first start is deterministic (weighted Lloyd
        iterations seeded by equal-weight slices along the first principal
        axis), later restarts use k-means++ seeds. ``"random"`` draws random
        balanced hard partitions. An array gives the responsibilities.

    n_init : int, default=1
        Number of restarts; the one with the highest objective is kept.
        The restarts run in parallel when ``n_jobs`` allows, each with its
        own random stream drawn from ``random_state``.

    max_iter : int, default=100
        Maximum number of EM iterations per restart.

    tol : float, default=1e-6
        Convergence threshold on the change of the objective (the mean
        log-likelihood minus the gate's penalty over the total sample weight).

    warm_start : bool, default=False
        If True and the model is fitted, :meth:`fit` continues EM from the
        fitted experts, gate and variances (``n_init`` is then ignored).

    reg_variance : float, default=1e-6
        Floor on every expert's noise variance, so that an expert fitting its
        rows exactly never has an infinite likelihood.

    n_jobs : int, default=None
        Number of jobs fitting the experts, and the ``n_init`` restarts, in
        parallel (joblib, through :mod:`sklearn.utils.parallel`; use
        ``joblib.parallel_config(backend="dask")`` to run on a
        dask.distributed cluster). ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context. Results do not depend on it.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, stochastic assignments and the experts'
        own ``random_state``. Pass an int for reproducible results.

    verbose : int, default=0
        If positive, print one line per EM iteration (iteration,
        log-likelihood, objective, change, seconds).

    Attributes
    ----------
    experts_ : list of estimators
        The fitted experts.

    gate_ : SoftmaxGate
        The fitted gate.

    gate_features_ : ndarray of int or None
        Column indices the gate sees (None: all).

    n_experts_ : int
        Number of experts.

    noise_variance_ : ndarray of shape (n_experts,)
        Noise variance ``sigma_k^2`` of every expert.

    converged_ : bool
        Whether the kept restart converged.

    n_iter_ : int
        Number of EM iterations of the kept restart.

    log_likelihood_ : float
        Final mean log-likelihood per unit of sample weight.

    log_likelihood_history_ : ndarray of shape (n_iter_,)
        The objective after every EM iteration of the kept restart (equal to
        the mean log-likelihood when the gate's ``alpha`` is 0).

    fit_time_ : float
        Seconds spent in the last :meth:`fit`.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :meth:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    MixtureOfExpertsClassifier : The classification counterpart.
    SoftmaxGate : The gating network.
    sklearn.mixture.GaussianMixture : A mixture without inputs.

    Notes
    -----
    Multi-output targets (``y`` of shape ``(n_samples, n_outputs)`` with more
    than one column) are not supported: fit one mixture per output, for
    example with :class:`~sklearn.multioutput.MultiOutputRegressor`.

    References
    ----------
    R. A. Jacobs, M. I. Jordan, S. J. Nowlan and G. E. Hinton, "Adaptive
    mixtures of local experts", Neural Computation 3(1), 1991.

    M. I. Jordan and R. A. Jacobs, "Hierarchical mixtures of experts and the
    EM algorithm", Neural Computation 6(2), 1994.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-3, 3, size=(300, 1))
    >>> y = np.where(X[:, 0] < 0, -2 * X[:, 0], 3 * X[:, 0]) + 0.1 * rng.randn(300)
    >>> moe = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    >>> round(moe.score(X, y), 3)
    0.994
    """

    _parameter_constraints = {
        **_BaseMixtureOfExperts._parameter_constraints,
        "reg_variance": [Interval(Real, 0, None, closed="neither")],
    }
    _n_aux_parameters_per_expert = 1  # the noise variance

    def __init__(
        self,
        experts=None,
        *,
        n_experts=None,
        gate=None,
        gate_features=None,
        assignment="soft",
        init="kmeans",
        n_init=1,
        max_iter=100,
        tol=1e-6,
        warm_start=False,
        reg_variance=1e-6,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            experts,
            n_experts=n_experts,
            gate=gate,
            gate_features=gate_features,
            assignment=assignment,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            warm_start=warm_start,
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=verbose,
        )
        self.reg_variance = reg_variance

    @_fit_context(
        # the experts and the gate are not validated yet
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None):
        """Fit the mixture of experts by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : array-like of shape (n_samples,)
            Target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, multiplied into the responsibilities that every
            expert and the gate receive.

        Returns
        -------
        self : MixtureOfExpertsRegressor
            The fitted mixture.
        """
        return self._fit(X, y, sample_weight)

    # -- hooks ---------------------------------------------------------
    def _default_expert(self):
        return LinearRegression()

    def _check_expert(self, expert, where):
        if is_classifier(expert):
            raise TypeError(
                f"{where} is a classifier ({_estimator_name(expert)}); "
                "MixtureOfExpertsRegressor needs regressors as experts."
            )

    def _validate_targets(self, y, sample_weight):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            raise ValueError(
                "MixtureOfExpertsRegressor supports a single target; y has shape "
                f"{y.shape}. Fit one mixture per output, e.g. with "
                "sklearn.multioutput.MultiOutputRegressor."
            )
        y = column_or_1d(y, warn=True).astype(np.float64)
        return y, None

    def _encode_y(self, y, n_samples):
        y = column_or_1d(np.asarray(y, dtype=np.float64), warn=True)
        if y.shape[0] != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]}.")
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity.")
        return np.ascontiguousarray(y)

    def _init_columns(self, X, y):
        return np.column_stack([X, y])

    def _expert_outputs(self, experts, X, y=None, info=None):
        pred = np.empty((X.shape[0], len(experts)))
        # Linear experts in one product; the others through predict.
        done = _linear.predict_linear(experts, X, pred)
        for k, expert in enumerate(experts):
            if not done[k]:
                pred[:, k] = np.ravel(expert.predict(X))
        return pred

    def _update_aux(self, outputs, y, weights, aux, info):
        wsum = weights.sum(axis=0)
        rss = _threaded.weighted_sq_residuals(y, outputs, np.ascontiguousarray(weights))
        variance = np.empty(len(wsum))
        owned = wsum > 0
        variance[owned] = rss[owned] / wsum[owned]
        if not owned.all():
            # An expert without weight keeps its variance, or starts from the
            # variance of y around that expert's predictions.
            if aux is not None:
                variance[~owned] = aux[~owned]
            else:
                r = y[:, None] - outputs[:, ~owned]
                variance[~owned] = np.mean(r * r, axis=0)
        return np.maximum(variance, self.reg_variance)

    def _log_lik_matrix(self, outputs, y, aux):
        return _threaded.gaussian_log_lik(y, outputs, aux)

    def _aux(self):
        return self.noise_variance_.copy()

    def _fitted_info(self):
        return None

    def _set_aux(self, aux, info):
        self.noise_variance_ = aux

    # -- inference -----------------------------------------------------
    def predict(self, X, return_std=False):
        """Predict the mixture mean, and optionally its standard deviation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        return_std : bool, default=False
            Also return the standard deviation of the predictive mixture,
            ``sqrt(sum_k pi_k (sigma_k^2 + f_k^2) - mean^2)``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
            ``sum_k pi_k(x) f_k(x)``.

        y_std : ndarray of shape (n_samples,)
            Standard deviation of the predictive distribution; only returned
            when ``return_std`` is True.
        """
        X = self._check_X(X)
        gate = np.exp(self._log_gate(X))
        pred = self._expert_outputs(self.experts_, X)
        if not return_std:
            return _threaded.mix_mean(gate, pred)
        mean, var = _threaded.mix_mean_var(gate, pred, self.noise_variance_)
        return mean, np.sqrt(np.maximum(var, 0.0))

    def predict_experts(self, X):
        """Every expert's own prediction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_experts)
            ``f_k(x)`` for every expert ``k``.
        """
        return self._expert_outputs(self.experts_, self._check_X(X))
