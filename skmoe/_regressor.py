"""Mixture of experts for regression: a gated mixture of Gaussians."""

import inspect
import copy
from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context, is_classifier
from sklearn.linear_model import SGDRegressor
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if

from . import _array_api, _dask, _pool, _routing
from ._base import _BaseMixtureOfExperts

# The keyword parameters of the base class, passed on by ``__init__``.
_SHARED_PARAMS = frozenset(
    inspect.signature(_BaseMixtureOfExperts.__init__).parameters
) - {"self", "experts"}
from ._docstrings import fill_doc
from ._experts import estimator_name
from ._glm_likelihoods import GammaLikelihood, PoissonLikelihood
from ._likelihood import GaussianLikelihood
from ._ridge import StandardizedRidge

#: The likelihoods named by a string, and the fitted attribute that holds
#: their own parameters (``theta``) under a readable name.
_LIKELIHOODS = {
    "gaussian": (GaussianLikelihood, "noise_variance_"),
    "poisson": (PoissonLikelihood, None),
    "gamma": (GammaLikelihood, "shape_"),
}
#: What a likelihood instance must implement (the protocol of skmoe/_likelihood.py).
_LIKELIHOOD_METHODS = [
    "validate_targets", "encode_targets", "init_columns", "outputs", "log_lik",
    "stats", "m_step", "row_loss", "mean", "mean_var",
]


@fill_doc(
    sgd_expert=":class:`~sklearn.linear_model.SGDRegressor`", sgd_name="SGDRegressor"
)
class MixtureOfExpertsRegressor(RegressorMixin, _BaseMixtureOfExperts):
    """Mixture of experts regressor (Jacobs, Jordan, Nowlan & Hinton, 1991).

    Gaussian, Poisson or Gamma experts (``likelihood``) under a gate. A
    softmax gating network ``pi(x) = softmax(V^T [z, 1])`` decides how much
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
    experts : estimator, list of estimators or of (str, estimator) tuples, \
            default=None
        A regressor cloned ``n_experts`` times, or a list of regressors (one
        per expert; they may differ). A list of ``(name, estimator)`` tuples
        names the experts, as :class:`~sklearn.ensemble.VotingRegressor`
        does: their parameters are then reachable as ``<name>__<parameter>``
        (``linear__alpha`` in a grid search) and an expert is replaced by
        ``set_params(<name>=estimator)``. ``None`` means
        :class:`StandardizedRidge(alpha=1.0) <StandardizedRidge>`, a ridge
        penalised on the standardised scale of the training data, so that
        an expert's slope on a column that barely varies among its rows
        stays bounded (:class:`~sklearn.linear_model.SGDRegressor` for
        ``solver="gd"``), for ``likelihood="gaussian"`` (see ``likelihood``
        for the others);
        a nested parameter such as ``experts__fit_intercept`` sets that
        default first, so it is tunable as it is. Experts whose
        ``fit`` takes ``sample_weight`` (a Pipeline counts when its final step
        does; its steps that accept weights receive them) are fitted on the
        weighted data. An expert whose ``fit`` takes no ``sample_weight``
        (for example :class:`~sklearn.neighbors.KNeighborsRegressor`) is fitted
        on the rows assigned to it: the most probable ones when
        ``assignment="soft"`` or ``"hard"``, rows drawn from the posterior when
        ``"stochastic"``. Such experts cannot honour a non-uniform
        ``sample_weight``; :meth:`fit` then raises an error. Experts receive
        ``X`` as it is given: a float64 array, a sparse matrix, or a pandas
        (or polars) DataFrame with its columns and dtypes, a row subset
        keeping the frame's order of rows. Pipelines selecting columns by
        name and :class:`~sklearn.ensemble.HistGradientBoostingRegressor`
        with ``categorical_features="from_dtype"`` therefore work as experts.

    %(n_experts)s

    %(gate)s

    %(gate_features)s

    %(assignment)s

    init : {"auto", "kmeans", "random"} or array-like of shape (n_samples, n_experts), \
            default="auto"
        Initial responsibilities.
        ``"auto"`` (the default) runs a pool of diverse starts and keeps the best
        optimum: 15 random balanced partitions, 15 partitions by random quantile cut
        points along the first principal axis of the standardised gate inputs (of
        ``[X, y]`` for a gate without inputs), 10 by random cut points along random directions
        in the standardised ``[X, y]`` and the deterministic k-means start, 20 EM
        iterations from each (no convergence test), then the best 3 non-degenerate runs
        continued to convergence. On more than 5,000 rows the pool runs on a random
        subsample of 2,000 rows, and one full-data run starts from the winner. It costs
        about 40 x 20 = 800 short EM iterations more than one start (see the user
        guide); the short runs' objectives are kept in ``init_objectives_``, the
        continued candidates' in ``init_candidates_``.
        ``"kmeans"`` clusters the standardised ``[X, y]`` (for a DataFrame, its numeric
        columns and ``y``; the gate's input and ``y`` when it has no numeric column):
        the first start is deterministic (weighted Lloyd iterations seeded by equal-weight
        slices along the first principal axis), later restarts use k-means++
        seeds. ``"random"`` draws random balanced hard partitions. An array gives the
        responsibilities.
        Under array API dispatch (PyTorch, CuPy, array-api-strict inputs),
        ``"auto"`` runs the same pool on the device, ``"random"`` and arrays are
        supported, ``"kmeans"`` is not (see the user guide's GPU section).

    %(n_init)s

    %(max_iter)s

    %(tol)s

    %(gate_max_iter)s

    %(warm_start)s

    %(solver)s

    %(optimizer)s

    %(learning_rate)s

    %(learning_rate_init)s

    %(momentum)s

    %(batch_size)s

    %(shuffle)s

    %(n_iter_no_change)s

    %(early_stopping)s

    %(validation_fraction)s

    reg_variance : float, default=1e-6
        Floor on every expert's noise variance, relative to the (weighted)
        variance of ``y``: ``sigma_k^2 >= reg_variance * Var(y)``. An expert
        that fits its rows exactly never gets an infinite likelihood, and the
        floor does not depend on the units of ``y``. Used by
        ``likelihood="gaussian"`` only.

    likelihood : {"gaussian", "poisson", "gamma"} or likelihood object, \
            default="gaussian"
        The noise model of the experts. ``"gaussian"``: Gaussian noise of one
        variance per expert around its prediction (``noise_variance_``).
        ``"poisson"``: counts, ``y`` non-negative integers, each expert
        predicting a Poisson mean. ``"gamma"``: positive ``y``, each expert
        predicting a Gamma mean with a shape per expert (``shape_``,
        estimated by maximum likelihood). The experts of ``"poisson"`` and
        ``"gamma"`` must predict positive values; ``experts=None`` then
        means :class:`~sklearn.linear_model.PoissonRegressor` or
        :class:`~sklearn.linear_model.GammaRegressor` with
        ``solver="newton-cholesky"``, ``alpha=1e-4`` and ``tol=1e-6`` (the
        default ``alpha=1`` shrinks unscaled coefficients). An object with
        the likelihood protocol (user guide, "Write your own likelihood") is
        deep-copied at fit and never modified.

    %(n_jobs)s

    %(random_state)s

    %(verbose)s

    %(top_k)s

    %(min_expert_weight)s

    %(on_collapse)s

    %(grow)s

    Attributes
    ----------
    %(experts_)s

    %(gate_)s

    %(gate_features_)s

    %(n_experts_)s

    %(n_experts_bic_)s

    noise_variance_ : ndarray of shape (n_experts,)
        Noise variance ``sigma_k^2`` of every expert (``likelihood="gaussian"``).

    shape_ : ndarray of shape (n_experts,)
        Gamma shape ``nu_k`` of every expert (``likelihood="gamma"``): its
        variance is ``mu_k(x)^2 / nu_k``.

    likelihood_params_ : ndarray of shape (n_experts,) or None
        The likelihood's own fitted parameters (the variances, the shapes;
        None for ``"poisson"``), whatever the likelihood.

    %(converged_)s

    %(n_iter_)s

    %(log_likelihood_)s

    %(log_likelihood_history_)s

    %(validation_scores_)s

    %(best_validation_score_)s

    %(expert_usage_)s

    %(repairs_)s

    %(fit_time_)s

    %(n_features_in_)s

    %(feature_names_in_)s

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
    0.995
    """

    _parameter_constraints = {
        **_BaseMixtureOfExperts._parameter_constraints,
        "reg_variance": [Interval(Real, 0, None, closed="neither")],
        "likelihood": [
            StrOptions(set(_LIKELIHOODS)), HasMethods(_LIKELIHOOD_METHODS)
        ],
    }

    def __init__(
        self,
        experts=None,
        *,
        n_experts=None,
        gate=None,
        gate_features=None,
        assignment="soft",
        init="auto",
        n_init=1,
        max_iter=500,
        tol=1e-6,
        gate_max_iter="auto",
        warm_start=False,
        solver="em",
        optimizer="adam",
        learning_rate="constant",
        learning_rate_init=0.1,
        momentum=0.9,
        batch_size="auto",
        shuffle=True,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        reg_variance=1e-6,
        likelihood="gaussian",
        n_jobs=None,
        random_state=None,
        verbose=0,
        top_k=None,
        min_expert_weight=1e-3,
        on_collapse="reseed",
        grow="refit",
    ):
        shared = {
            name: value for name, value in locals().items() if name in _SHARED_PARAMS
        }
        super().__init__(experts, **shared)
        self.reg_variance = reg_variance
        self.likelihood = likelihood

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

        Notes
        -----
        ``X`` (and ``y``, ``sample_weight``) may be dask arrays or a dask
        DataFrame: EM then runs block by block on the dask workers (see the
        user guide, "Scaling"), for LinearRegression and Ridge experts.
        """
        if _dask.is_dask_collection(X):
            return _dask.fit(self, X, y, sample_weight)
        return self._fit(X, y, sample_weight)

    # -- hooks ---------------------------------------------------------
    @available_if(_BaseMixtureOfExperts._check_gd_solver)
    @_fit_context(
        # the experts and the gate are not validated yet
        prefer_skip_nested_validation=False
    )
    def partial_fit(self, X, y, sample_weight=None):
        """Update the mixture with one gradient pass over a batch.

        Only available with ``solver="gd"``. The first call (on an unfitted
        mixture) initialises it on the batch as :meth:`fit` does (``init``
        responsibilities, one ``partial_fit`` of every expert, the gate
        fitted to them; it needs at least ``max(2, n_experts)`` rows), then
        takes the pass. Every call shuffles the batch (``shuffle``), cuts it
        into mini-batches of ``batch_size`` rows and takes one gate step and
        one ``partial_fit`` step of every expert per mini-batch, keeping the
        optimiser's state between calls. Later batches may have any number
        of rows, but ``n_features_in_`` features. A mixture fitted by
        ``solver="em"`` (with experts that have ``partial_fit``) continues
        from its fitted state. Memory does not grow with the number of
        calls. If anything is wrong with the batch, an error is raised and
        the fitted mixture is left exactly as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data, of at least 2 rows (the first call:
            at least ``max(2, n_experts)``). A sparse matrix is accepted.

        y : array-like of shape (n_samples,)
            Target values of the batch.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights of the batch, multiplied into the posteriors.

        Returns
        -------
        self : MixtureOfExpertsRegressor
            The updated mixture.
        """
        return self._partial_fit(X, y, sample_weight)

    #: The pool of ``init="auto"`` (skmoe/_pool.py).
    _init_pool = _pool.REGRESSOR_POOL

    def _make_likelihood(self):
        if isinstance(self.likelihood, str):
            cls = _LIKELIHOODS[self.likelihood][0]
            return cls(self.reg_variance) if cls is GaussianLikelihood else cls()
        # A likelihood object: a copy per fit, the parameter is never mutated.
        return copy.deepcopy(self.likelihood)

    def _default_expert(self, solver):
        name = self.likelihood if isinstance(self.likelihood, str) else None
        if name in ("poisson", "gamma"):
            if solver == "gd":
                raise ValueError(
                    f"solver='gd' with likelihood={name!r} needs experts with "
                    "partial_fit, and scikit-learn's PoissonRegressor and "
                    "GammaRegressor (the default experts) have none; pass such "
                    "experts explicitly in the experts parameter, or use "
                    "solver='em'."
                )
            return _LIKELIHOODS[name][0]().default_expert()
        if name is None and hasattr(self.likelihood, "default_expert"):
            return self.likelihood.default_expert()
        if solver == "gd":
            return SGDRegressor()
        return StandardizedRidge(alpha=1.0)

    def _check_expert(self, expert, where):
        if is_classifier(expert):
            raise TypeError(
                f"{where} is a classifier ({estimator_name(expert)}); "
                "MixtureOfExpertsRegressor needs regressors as experts."
            )

    def _likelihood_attributes(self, likelihood, theta):
        # Attributes of an earlier fit with another likelihood go.
        for _, alias in _LIKELIHOODS.values():
            if alias is not None:
                self.__dict__.pop(alias, None)
        out = {"likelihood_params_": theta}
        if isinstance(self.likelihood, str):
            alias = _LIKELIHOODS[self.likelihood][1]
            if alias is not None:
                out[alias] = theta
        return out

    def _can_warm_start(self, Z, n_experts):
        # A fit with another likelihood does not continue from this one.
        fitted = getattr(self, "_likelihood", None)
        return super()._can_warm_start(Z, n_experts) and type(fitted) is type(
            self._make_likelihood()
        )

    def _fitted_theta(self):
        theta = self.likelihood_params_
        return None if theta is None else np.array(theta, copy=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Poisson and Gamma likelihoods need y >= 0 (counts) or y > 0.
        tags.target_tags.positive_only = self.likelihood in ("poisson", "gamma")
        return tags

    # -- inference -----------------------------------------------------
    def predict(self, X, return_std=False):
        """Predict the mixture mean, and optionally its standard deviation.

        Under ``top_k``, ``pi`` holds the gate probabilities of each row's
        ``top_k`` experts renormalised (zero elsewhere), and each expert is
        run only on the rows routed to it.

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

            For a dask array or DataFrame ``X``, lazy dask arrays computed
            block by block.
        """
        if _dask.is_dask_collection(X):
            return _dask.predict(self, X, return_std)
        xp = _array_api.fitted_namespace(self)
        if xp is not None:  # fitted on array API inputs: skmoe/_array_api/
            if return_std:
                raise _array_api.unsupported("predict(return_std=True)")
            return _array_api.predict(xp, self, _array_api.check_X(self, xp, X)[0])
        X = self._check_X(X)
        gate = self._routed_gate(X)
        pred = self._likelihood.outputs(self.experts_, X, _routing.rows_per_expert(gate))
        if not return_std:
            return self._likelihood.mean(gate, pred)
        mean, var = self._likelihood.mean_var(gate, pred, self.likelihood_params_)
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
        return self._likelihood.outputs(self.experts_, self._check_X(X))

