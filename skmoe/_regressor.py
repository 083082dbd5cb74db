"""Mixture of experts for regression: a gated mixture of Gaussians."""

from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin, _fit_context, is_classifier
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if

from . import _dask, _routing
from ._base import _BaseMixtureOfExperts
from ._experts import estimator_name
from ._likelihood import GaussianLikelihood


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
        ``sample_weight``; :meth:`fit` then raises an error. Experts receive
        ``X`` as a float64 numpy array (column names are not passed on: select
        columns by position inside an expert Pipeline).

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
        Load balancing is the gate's ``balance`` penalty
        (``gate=SoftmaxGate(balance=0.1)``), which pulls the mean gate
        probabilities toward equal use of the experts; it is part of the
        objective that EM maximises.

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
        Number of restarts; the one with the highest objective (the mean
        log-likelihood minus the gate's penalty) is kept. The restarts run in
        parallel when ``n_jobs`` allows, each with its own random stream
        drawn from ``random_state``. With ``init`` given as an array every
        restart starts from it, so ``n_init > 1`` only matters for stochastic
        assignments.

    max_iter : int, default=100
        Maximum number of EM iterations per restart; for ``solver="gd"``,
        the maximum number of epochs (passes over the data).

    tol : float, default=1e-6
        EM stops once an iteration raises the objective (the mean
        log-likelihood minus the gate's penalty over the total sample weight)
        by less than ``tol``. With exact M-steps the objective never
        decreases; experts with their own penalty or stopping tolerance (such
        as ``LogisticRegression``) make the M-step inexact, and a decrease at
        the level of their tolerance then also ends EM.
        For ``solver="gd"``, the improvement required at least once every
        ``n_iter_no_change`` epochs.

    gate_max_iter : int, "auto" or None, default="auto"
        Iterations of the gate's optimiser per EM iteration, started from the
        previous gate: a generalised EM step, which raises the objective
        without maximising it. ``"auto"`` takes one Newton iteration for
        small gates (``(n_experts + 1) * (n_gate_features + 1) <= 64``) and
        five L-BFGS iterations for larger ones; an int takes that many of
        either; ``None`` runs the gate's optimiser to convergence (its own
        ``max_iter`` and ``tol``), the exact M-step. The partial step makes
        each EM iteration cheaper and, with an unpenalised gate, it keeps the
        gate from turning sharp before the experts have settled: on
        piecewise-linear data EM then needs about as many iterations as with
        the exact M-step, or fewer (``benchmarks/bench_flexmix.py``). EM
        declares convergence only after an iteration whose gate step was
        exact. Ignored by ``solver="gd"``.

    warm_start : bool, default=False
        If True and the model is fitted, :meth:`fit` continues EM from the
        fitted experts, gate and variances (``n_init`` is then ignored).
        With ``solver="gd"`` it continues from the fitted parameters with a
        fresh optimiser, as MLP does; :meth:`partial_fit` always continues,
        keeping the optimiser's state.
        With a larger ``n_experts`` it grows the mixture (see ``grow``).

    solver : {"em", "gd"}, default="em"
        How the mixture is fitted. ``"em"``: EM, every expert refit on all
        the data at every iteration. ``"gd"``: mini-batch gradient ascent on
        the same penalised log-likelihood (the on-line mixture of experts of
        Jordan & Jacobs); at every mini-batch the gate takes one optimiser
        step along ``Z^T (h - pi)`` (posteriors minus gate probabilities) and
        every expert takes one ``partial_fit`` step with
        ``sample_weight`` = its posteriors. ``"gd"`` needs experts with
        ``partial_fit`` (a :class:`TypeError` names those without one; the
        default expert becomes :class:`~sklearn.linear_model.SGDRegressor`),
        makes :meth:`partial_fit` available, and counts ``max_iter`` in
        epochs. ``assignment`` applies to every mini-batch's posteriors, and
        experts whose ``partial_fit`` takes no ``sample_weight`` get the rows
        they most probably own.
        ``n_jobs`` is not used by ``"gd"``. The gate's penalty keeps its
        meaning (it is spread over the total training weight, or over the
        weight seen so far by :meth:`partial_fit`); the noise variances are
        running estimates over the last mini-batches. See ``skmoe/_sgd.py``.

    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of the gate for ``solver="gd"``, as ``solver`` of
        :class:`~sklearn.neural_network.MLPRegressor`: Adam (with MLP's
        ``beta_1=0.9, beta_2=0.999, epsilon=1e-8``) or SGD with Nesterov
        momentum. The experts follow their own ``partial_fit`` rules.

    learning_rate : {"constant", "adaptive"}, default="constant"
        Learning-rate schedule of ``optimizer="sgd"``, as in MLP: with
        ``"adaptive"``, when the stopping criterion triggers the rate is
        divided by 5 instead of stopping (until it falls below 1e-6).

    learning_rate_init : float, default=0.1
        Step size of the gate's optimiser, in the standardised units of the
        gate's input (so it does not depend on the units of ``X``).

    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``, in [0, 1].

    batch_size : int or "auto", default="auto"
        Rows per mini-batch for ``solver="gd"``; ``"auto"`` means
        ``min(200, n_samples)``, as MLP. Larger values are clipped to the
        number of rows.

    shuffle : bool, default=True
        Shuffle the rows at every epoch (and within every
        :meth:`partial_fit` call) for ``solver="gd"``.

    n_iter_no_change : int, default=10
        ``solver="gd"`` stops when the epoch's objective (or the validation
        log-likelihood with ``early_stopping``) has not improved by ``tol``
        for more than ``n_iter_no_change`` consecutive epochs.

    early_stopping : bool, default=False
        For ``solver="gd"``, hold out ``validation_fraction`` of the training
        data (stratified for the classifier) and stop on its mean
        log-likelihood instead of the training objective. The experts and
        gate of the last epoch are kept (as SGDRegressor does). Not
        supported by :meth:`partial_fit`.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.

    reg_variance : float, default=1e-6
        Floor on every expert's noise variance, relative to the (weighted)
        variance of ``y``: ``sigma_k^2 >= reg_variance * Var(y)``. An expert
        that fits its rows exactly never gets an infinite likelihood, and the
        floor does not depend on the units of ``y``.

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

    top_k : int, default=None
        Sparse routing. ``None`` is the dense mixture. With an int, each
        prediction uses only the sample's ``top_k`` most probable experts, the
        gate probabilities renormalised over them (the gate
        ``softmax(KeepTopK(logits, top_k))`` of Shazeer et al., 2017), and
        every expert runs only on the rows routed to it (one call per expert),
        so prediction cost scales with ``top_k / n_experts``. Fitting is sparse
        EM (Neal & Hinton, 1998): each sample's posterior is kept on its
        ``top_k`` most probable experts (by posterior) and renormalised, and
        each expert is refit only on the rows that carry weight for it. The
        objective is then the sparse-EM bound
        ``sum_i w_i log sum_{k in S_i} pi_k(x_i) p_k(y_i | x_i)`` (``S_i`` the
        sample's ``top_k`` experts by posterior), never above the dense
        log-likelihood and non-decreasing under exact M-steps;
        :meth:`log_prob` and :meth:`responsibilities` (which see ``y``) use the
        same sparse posterior. Values at least ``n_experts`` give the dense
        model. See :meth:`route`.

    min_expert_weight : float in [0, 1), default=1e-3
        Collapse threshold: an expert whose share of the training weight
        (``sum_i w_i h_ik / sum_i w_i``) falls below it after an E-step is
        repaired as ``on_collapse`` says, with a warning naming the expert and
        the action (and recorded in ``repairs_``). The objective may drop at a
        repair (EM restarts from the repaired posteriors); it is
        non-decreasing between repairs. ``0`` switches repairs off (an empty
        expert then keeps its previous fit, with a warning).

    on_collapse : {"reseed", "drop"}, default="reseed"
        ``"reseed"``: the collapsed expert takes half of the rows of the
        expert with the largest weighted loss (residual sum of squares for the
        regressor, log-loss for the classifier): that expert's rows are split
        in two by weighted 2-means on the standardised columns used by
        ``init="kmeans"``, and the half it fits worse moves to the collapsed
        expert; the next M-step refits both. An expert is re-seeded at most
        once per EM run. ``"drop"`` (what flexmix does): the expert, its gate
        output and its responsibilities are removed, so ``n_experts_`` may be
        smaller than ``n_experts``.

    grow : {"refit", "freeze"}, default="refit"
        Growing a fitted mixture: with ``warm_start=True`` and ``n_experts``
        larger than ``n_experts_``, :meth:`fit` keeps the fitted experts and
        gate, seeds every new expert with half of the rows of the expert that
        fits worst (as ``on_collapse="reseed"``; its gate output starts as a
        copy of that expert's, the two sharing its probability) and continues
        EM. ``"refit"`` refits every expert; ``"freeze"`` leaves the fitted
        experts (and their noise variances) bit-for-bit unchanged and fits only
        the new experts and the gate. Freezing suits experts that are right
        in their own region (e.g. a new regime appears in new data); a
        fitted expert that straddles two regimes stays a compromise when
        frozen, and ``"refit"`` does better there.

    Attributes
    ----------
    experts_ : list of estimators
        The fitted experts.

    gate_ : SoftmaxGate
        The fitted gate.

    gate_features_ : ndarray of int or None
        Column indices the gate sees (None: all).

    n_experts_ : int
        Number of fitted experts (smaller than ``n_experts`` when
        ``on_collapse="drop"`` dropped some).

    noise_variance_ : ndarray of shape (n_experts,)
        Noise variance ``sigma_k^2`` of every expert.

    converged_ : bool
        Whether the kept restart converged (for ``solver="gd"``, whether the
        stopping rule triggered; always False after :meth:`partial_fit`).

    n_iter_ : int
        Number of EM iterations of the kept restart; for ``solver="gd"``,
        the number of epochs, incremented by every :meth:`partial_fit` call.

    log_likelihood_ : float
        Final mean log-likelihood per unit of sample weight. For
        ``solver="gd"``, the mean over the last epoch's (or
        :meth:`partial_fit` call's) mini-batches, each evaluated just before
        its gradient step (as MLP's ``loss_``).

    log_likelihood_history_ : ndarray of shape (`n_iter_`,)
        The objective after every EM iteration of the kept restart (equal to
        the mean log-likelihood when the gate's ``alpha`` is 0); for
        ``solver="gd"``, after every epoch, measured as ``log_likelihood_``
        (one entry after :meth:`partial_fit`: memory does not grow with the
        number of calls).

    validation_scores_ : ndarray of shape (`n_iter_`,) or None
        Mean validation log-likelihood after every epoch; only set by
        ``solver="gd"``, and None unless ``early_stopping=True``.

    best_validation_score_ : float or None
        Largest of ``validation_scores_``; only set by ``solver="gd"``.

    expert_usage_ : ndarray of shape (`n_experts_`,)
        Share of the training weight each expert holds after fitting,
        ``sum_i w_i h_ik / sum_i w_i`` with the final responsibilities.

    repairs_ : list of dict
        The collapse repairs of the kept EM run, in order: ``{"iteration",
        "expert", "action", "donor"}`` (``action`` is ``"reseed"`` or
        ``"drop"``; ``donor`` the expert whose rows were split, or None).

    fit_time_ : float
        Seconds spent in the last :meth:`fit` (or :meth:`partial_fit`).

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
        n_jobs=None,
        random_state=None,
        verbose=0,
        top_k=None,
        min_expert_weight=1e-3,
        on_collapse="reseed",
        grow="refit",
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
            gate_max_iter=gate_max_iter,
            warm_start=warm_start,
            solver=solver,
            optimizer=optimizer,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            momentum=momentum,
            batch_size=batch_size,
            shuffle=shuffle,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=verbose,
            top_k=top_k,
            min_expert_weight=min_expert_weight,
            on_collapse=on_collapse,
            grow=grow,
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

    def _make_likelihood(self):
        return GaussianLikelihood(self.reg_variance)

    def _default_expert(self):
        if self.solver == "gd":
            return SGDRegressor()
        return LinearRegression()

    def _check_expert(self, expert, where):
        if is_classifier(expert):
            raise TypeError(
                f"{where} is a classifier ({estimator_name(expert)}); "
                "MixtureOfExpertsRegressor needs regressors as experts."
            )

    def _likelihood_attributes(self, likelihood, theta):
        return {"noise_variance_": theta}

    def _fitted_theta(self):
        return self.noise_variance_.copy()

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
        X = self._check_X(X)
        gate = self._routed_gate(X)
        pred = self._likelihood.outputs(self.experts_, X, _routing.rows_per_expert(gate))
        if not return_std:
            return self._likelihood.mean(gate, pred)
        mean, var = self._likelihood.mean_var(gate, pred, self.noise_variance_)
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
