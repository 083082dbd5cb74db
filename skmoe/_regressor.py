"""Mixture of experts for regression: a gated mixture of Gaussians."""

import copy
import inspect
from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context, is_classifier
from sklearn.linear_model import SGDRegressor
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if

from . import _array_api, _dask, _frames, _pool, _routing
from ._base import _BaseMixtureOfExperts
from ._docstrings import fill_doc
from ._experts import estimator_name
from ._frames import numeric_array
from ._glm_likelihoods import GammaLikelihood, PoissonLikelihood
from ._inference import StandardErrorsMixin
from ._likelihood import GaussianLikelihood
from ._multioutput import BernoulliLikelihood, MultiOutputLikelihood
from ._multioutput_methods import MultiOutputMixin, target_shape
from ._negbin import NegativeBinomialLikelihood
from ._predictive_methods import PredictiveDistributionMixin
from ._ridge import StandardizedRidge
from ._student_t import StudentTLikelihood

# The keyword parameters of the base class, passed on by ``__init__``.
_SHARED_PARAMS = frozenset(
    inspect.signature(_BaseMixtureOfExperts.__init__).parameters
) - {"self", "experts"}

#: The likelihoods named by a string, and the fitted attribute that holds
#: their own parameters (``theta``) under a readable name (the Student-t's
#: records become ``scale_`` and ``df_``).
_LIKELIHOODS = {
    "gaussian": (GaussianLikelihood, "noise_variance_"),
    "poisson": (PoissonLikelihood, None),
    "gamma": (GammaLikelihood, "shape_"),
    "negbin": (NegativeBinomialLikelihood, "shape_"),
    "student_t": (StudentTLikelihood, ("scale_", "df_")),
    "bernoulli": (BernoulliLikelihood, None),  # outputs of a multi-output y
}
#: The likelihoods whose experts are refitted with weights that depend on
#: the likelihood's parameters (EM only: the gradient solver has no such step).
_EM_ONLY = ("negbin", "student_t")
#: What a likelihood instance must implement (the protocol of skmoe/_likelihood.py).
_LIKELIHOOD_METHODS = [
    "validate_targets", "encode_targets", "init_columns", "outputs", "log_lik",
    "stats", "m_step", "row_loss", "mean", "mean_var",
]


@fill_doc(
    sgd_expert=":class:`~sklearn.linear_model.SGDRegressor`", sgd_name="SGDRegressor"
)
class MixtureOfExpertsRegressor(
    MultiOutputMixin, RegressorMixin, StandardErrorsMixin, PredictiveDistributionMixin,
    _BaseMixtureOfExperts,
):
    """Mixture of experts regressor (Jacobs, Jordan, Nowlan & Hinton, 1991).

    Gaussian, Poisson, Gamma, negative binomial or Student-t experts
    (``likelihood``) under a gate. A
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

    likelihood : {"gaussian", "poisson", "gamma", "negbin", "student_t", "bernoulli"}, \
            likelihood object or list of them, default="gaussian"
        The noise model of the experts. A list gives one per output (column
        of a 2-D ``y``), e.g. ``["gaussian", "bernoulli"]``; a single name is
        used for every column. ``"bernoulli"``: a 0/1 output whose expert is
        a classifier and whose prediction is the probability of 1 (see the
        user guide, "Several targets at once"). ``"gaussian"``: Gaussian noise of one
        variance per expert around its prediction (``noise_variance_``).
        ``"poisson"``: counts, ``y`` non-negative integers, each expert
        predicting a Poisson mean. ``"gamma"``: positive ``y``, each expert
        predicting a Gamma mean with a shape per expert (``shape_``,
        estimated by maximum likelihood). ``"negbin"``: overdispersed
        counts, each expert predicting the mean ``mu`` of a negative
        binomial (NB2: variance ``mu + mu^2 / r``) with a dispersion ``r``
        per expert (``shape_``, estimated by maximum likelihood; large ``r``
        is the Poisson limit); its experts are refitted with the NB2 mean
        model's weights ``w / (1 + mu / r)``. ``"student_t"``: robust
        regression experts, Student-t noise with a scale and degrees of
        freedom per expert (``scale_``, ``df_``, both estimated; pass
        :class:`StudentTLikelihood(df=4) <StudentTLikelihood>` to fix the
        degrees of freedom), fitted by EM with latent scales that
        down-weight the rows far from an expert's prediction. The experts of
        ``"poisson"``, ``"gamma"`` and ``"negbin"`` must predict positive
        values; ``experts=None`` then means
        :class:`~sklearn.linear_model.PoissonRegressor` (Poisson and negative
        binomial) or :class:`~sklearn.linear_model.GammaRegressor` with
        ``solver="newton-cholesky"``, ``alpha=1e-4`` and ``tol=1e-6`` (the
        default ``alpha=1`` shrinks unscaled coefficients). ``"negbin"`` and
        ``"student_t"`` need ``solver="em"``. An object with the likelihood
        protocol (user guide, "Write your own likelihood") is deep-copied at
        fit and never modified.

    predictive_variance : {"plugin", "leverage"}, default="plugin"
        The experts' variance in the predictive distribution. ``"plugin"``:
        the fitted ``sigma_k^2``, the model that EM maximises. ``"leverage"``
        (``likelihood="gaussian"`` with numeric ``X``): ``sigma_k^2 (1 +
        h_k(x))`` with ``h_k(x)`` the row's leverage under expert ``k``
        (computed from its responsibility-weighted Gram matrix of the
        standardised training inputs), as a linear model's prediction
        interval widens away from its data; a row far outside the region an
        expert was fitted on then gets a wide density instead of a confident
        wrong one. It changes :meth:`log_prob` (and so :meth:`bic`,
        :meth:`aic` on new data), ``predict(return_std=True)``,
        :meth:`predict_quantiles`, :meth:`predict_interval` and
        :meth:`sample_y`; never the fit, its ``log_likelihood_`` or the
        criterion that chooses ``n_experts``. See the user guide,
        "Predictive distributions".

    clip_inputs : bool, default=False
        At prediction, clip every input column to its training range
        ``[min, max]`` before the experts and the gate see it: beyond the
        data, the mixture holds the experts' and the gate's values at the
        edge of the training range instead of extrapolating a local
        expert's slope (which can send two experts far apart with tight
        noise). Rows inside the training range are unchanged, and so is the
        fit. Dense numeric ``X`` only. With ``predictive_variance="leverage"``
        (whose leverage is computed on the unclipped row) the predictive
        density of a row far outside the data is wide and centred near the
        edge's values (see the user guide, "Predictive distributions").

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
        variance is ``mu_k(x)^2 / nu_k``. Negative binomial dispersion
        ``r_k`` (``likelihood="negbin"``): its variance is
        ``mu_k(x) + mu_k(x)^2 / r_k``.

    scale_ : ndarray of shape (n_experts,)
        Student-t scale ``sigma_k`` of every expert (``likelihood="student_t"``).

    df_ : ndarray of shape (n_experts,)
        Student-t degrees of freedom ``nu_k`` of every expert
        (``likelihood="student_t"``).

    likelihood_params_ : ndarray of shape (n_experts,), None or list
        The likelihood's own fitted parameters (the variances, the shapes;
        None for ``"poisson"``; for ``"student_t"`` a structured array of
        ``(scale, df)`` records), whatever the likelihood; for a multi-output
        mixture a list with one such entry per output.

    n_outputs_ : int
        The number of outputs (columns of ``y``; 1 for a 1-D ``y``).

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
    A ``y`` of shape ``(n_samples, n_outputs)`` is explained by one latent
    expert per row, ``p(y | x) = sum_k pi_k(x) prod_t p_t(y_t | f_kt(x))``
    over the observed outputs; each expert is then a
    :class:`MultiOutputExpert` and :meth:`predict` returns
    ``(n_samples, n_outputs)`` (user guide, "Several targets at once").

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
            StrOptions(set(_LIKELIHOODS)), HasMethods(_LIKELIHOOD_METHODS), list
        ],
        "predictive_variance": [StrOptions({"plugin", "leverage"})],
        "clip_inputs": ["boolean"],
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
        predictive_variance="plugin",
        clip_inputs=False,
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
        self.predictive_variance = predictive_variance
        self.clip_inputs = clip_inputs

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

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values. Several columns: one latent expert explains every
            output of a row, with one ``likelihood`` per output; NaN marks an
            output not observed on that row (every row needs one label).

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
        self._check_predictive_variance(X)
        multi = self._is_multi_output(y)
        if multi and self.solver == "gd":
            raise ValueError(
                "A multi-output fit (a list likelihood, 'bernoulli' or a y with "
                "several columns) needs solver='em'; solver='gd' takes one target."
            )
        shape = target_shape(y)
        target_ndim = len(shape)
        if target_ndim == 2 and not multi and shape[1] == 1:
            if self._takes_several_targets():
                # One column, one named likelihood: the single-output model,
                # its predictions of shape (n_samples, 1) as y's (as Ridge's).
                y = y.iloc[:, 0] if _frames.is_dataframe(y) else np.asarray(y)[:, 0]
            else:  # a single-target setting: y is raveled with a warning
                target_ndim = 1
        if multi and self.predictive_variance == "leverage":
            raise ValueError(
                "predictive_variance='leverage' widens one Gaussian target's "
                "variances; a multi-output fit needs predictive_variance='plugin'."
            )
        self._input_range = None
        self._fit(X, y, sample_weight)
        self._target_ndim = target_ndim
        self.n_outputs_ = (
            self._likelihood.n_outputs if isinstance(self._likelihood, MultiOutputLikelihood)
            else 1
        )
        self._input_range = self._fit_input_range(X, sample_weight)
        self._leverage = self._fit_leverage(X, y, sample_weight)
        return self

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
        if self.predictive_variance == "leverage" or self.clip_inputs:
            raise ValueError(
                "predictive_variance='leverage' and clip_inputs=True need every "
                "training row at once (the experts' weighted Gram matrices, the "
                "training range); partial_fit sees batches. Use fit, or "
                "predictive_variance='plugin' and clip_inputs=False."
            )
        return self._partial_fit(X, y, sample_weight)

    #: The pool of ``init="auto"`` (skmoe/_pool.py).
    _init_pool = _pool.REGRESSOR_POOL

    def _one_likelihood(self, spec):
        if isinstance(spec, str):
            if spec not in _LIKELIHOODS:
                raise ValueError(
                    f"likelihood holds {spec!r}; each output's likelihood must be "
                    f"one of {sorted(_LIKELIHOODS)} or a likelihood object."
                )
            if spec in _EM_ONLY and self.solver == "gd":
                raise ValueError(
                    f"likelihood={spec!r} is fitted by EM only (its "
                    "experts are refitted with weights that depend on its "
                    "parameters); use solver='em'."
                )
            cls = _LIKELIHOODS[spec][0]
            if cls in (GaussianLikelihood, StudentTLikelihood):
                return cls(reg_variance=self.reg_variance)
            return cls()
        missing = [m for m in _LIKELIHOOD_METHODS if not hasattr(spec, m)]
        if missing:
            raise ValueError(
                f"likelihood holds {spec!r}, which lacks {missing} of the "
                "likelihood protocol."
            )
        # A likelihood object: a copy per fit, the parameter is never mutated.
        return copy.deepcopy(spec)

    def _default_expert(self, solver):
        name = self.likelihood if isinstance(self.likelihood, str) else None
        if name in ("poisson", "gamma", "negbin"):
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
        names = self.likelihood if isinstance(self.likelihood, list) else [self.likelihood]
        if is_classifier(expert) and "bernoulli" not in [
            n for n in names if isinstance(n, str)
        ]:
            raise TypeError(
                f"{where} is a classifier ({estimator_name(expert)}); "
                "MixtureOfExpertsRegressor needs regressors as experts."
            )

    def _likelihood_attributes(self, likelihood, theta):
        # Attributes of an earlier fit with another likelihood go.
        for _, alias in _LIKELIHOODS.values():
            for name in (alias,) if isinstance(alias, str) else alias or ():
                self.__dict__.pop(name, None)
        if isinstance(likelihood, MultiOutputLikelihood):
            # One entry per output: its parameters per expert, or None.
            self._theta = None if theta is None else np.array(theta, copy=True)
            return {"likelihood_params_": likelihood.split_theta(theta)}
        self.__dict__.pop("_theta", None)
        out = {"likelihood_params_": theta}
        if isinstance(self.likelihood, str):
            alias = _LIKELIHOODS[self.likelihood][1]
            if isinstance(alias, tuple):  # a record per expert: one array per field
                out.update({name: np.array(theta[name[:-1]]) for name in alias})
            elif alias is not None:
                out[alias] = theta
        return out

    def _can_warm_start(self, Z, n_experts):
        # A fit with another likelihood does not continue from this one.
        fitted = getattr(self, "_likelihood", None)
        if not super()._can_warm_start(Z, n_experts):
            return False
        if not isinstance(fitted, MultiOutputLikelihood):
            return type(fitted) is type(self._make_likelihood())
        now = self._make_likelihood(np.empty((0, fitted.n_outputs)))
        return isinstance(now, MultiOutputLikelihood) and [
            type(p) for p in now.parts] == [type(p) for p in fitted.parts]

    def _fitted_theta(self):
        if isinstance(self._likelihood, MultiOutputLikelihood):
            theta = getattr(self, "_theta", None)
            return None if theta is None else np.array(theta, copy=True)
        theta = self.likelihood_params_
        return None if theta is None else np.array(theta, copy=True)

    def _takes_several_targets(self):
        """Whether these settings fit a ``y`` of several columns: EM only
        (``solver="gd"`` takes one target), not with the likelihoods that
        reweight their experts, nor with the leverage variances."""
        return (
            self.solver == "em"
            and self.predictive_variance != "leverage"
            and not (isinstance(self.likelihood, str) and self.likelihood in _EM_ONLY)
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Poisson, Gamma and NB likelihoods need y >= 0 (counts) or y > 0.
        positive = ("poisson", "gamma", "negbin")
        tags.target_tags.positive_only = (
            isinstance(self.likelihood, str) and self.likelihood in positive
        )
        if self.clip_inputs or self.predictive_variance == "leverage":
            tags.input_tags.sparse = False
        # A y of several columns: one latent expert for all the outputs
        # (EM only: solver="gd" takes one target; not with the likelihoods
        # that reweight their experts, nor with the leverage variances).
        tags.target_tags.multi_output = self._takes_several_targets()
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
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            ``sum_k pi_k(x) f_k(x)``.

        y_std : ndarray of shape (n_samples,) or (n_samples, n_outputs)
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
        X_raw, X = self._inputs(X)
        gate = self._routed_gate(X)
        pred = self._likelihood.outputs(self.experts_, X, _routing.rows_per_expert(gate))
        if not return_std:
            return self._as_target_shape(self._likelihood.mean(gate, pred))
        theta = self._fitted_theta()
        if self._uses_leverage():
            theta = theta * (1.0 + self._leverage(numeric_array(X_raw)))
            mean = self._likelihood.mean(gate, pred)
            var = np.einsum("ik,ik->i", gate, theta + (pred - mean[:, None]) ** 2)
            return self._as_target_shape(mean), self._as_target_shape(np.sqrt(var))
        mean, var = self._likelihood.mean_var(gate, pred, theta)
        return self._as_target_shape(mean), self._as_target_shape(
            np.sqrt(np.maximum(var, 0.0))
        )

    def predict_experts(self, X):
        """Every expert's own prediction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        pred : ndarray of shape (n_samples, n_experts) or \
                (n_samples, n_experts, n_outputs)
            ``f_k(x)`` for every expert ``k`` (of every output for a
            multi-output mixture; a probability of 1 for a ``"bernoulli"``
            output).
        """
        return self._likelihood.outputs(self.experts_, self._check_X(X))

