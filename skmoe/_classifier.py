"""Mixture of experts for classification: a gated mixture of classifiers."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context, is_regressor
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import column_or_1d

from . import _routing
from ._base import _BaseMixtureOfExperts
from ._experts import estimator_name
from ._likelihood import CategoricalLikelihood


class MixtureOfExpertsClassifier(ClassifierMixin, _BaseMixtureOfExperts):
    """Mixture of experts classifier (Jordan & Jacobs, 1991).

    A softmax gating network ``pi(x) = softmax(V^T [z, 1])`` mixes the class
    probabilities of ``n_experts`` scikit-learn classifiers:

    .. math::

        p(y = c \\mid x) = \\sum_k \\pi_k(x)\\, p_k(y = c \\mid x),

    where ``p_k`` is expert ``k``'s ``predict_proba``, mapped onto the global
    ``classes_`` (a class an expert never saw gets a probability floor of
    1e-10, and every expert's rows are renormalised). It is fitted by EM
    exactly as :class:`MixtureOfExpertsRegressor`, with
    ``log p_k(y_i | x_i)`` as the expert log-likelihood.

    Parameters
    ----------
    experts : estimator, list of estimators or of (str, estimator) tuples, \
            default=None
        A classifier with ``predict_proba``, cloned ``n_experts`` times, or a
        list of them; ``(name, estimator)`` tuples name them, their
        parameters reachable as ``<name>__<parameter>``. ``None`` means
        :class:`~sklearn.linear_model.LogisticRegression`
        (``SGDClassifier(loss="log_loss")`` for ``solver="gd"``); a nested
        parameter such as ``experts__C`` sets that default first. Experts
        that accept ``sample_weight`` are fitted on every row with weights
        (so that each sees every class); the others on the rows assigned to
        them (see :class:`MixtureOfExpertsRegressor`). Experts receive ``X``
        as given, a DataFrame with its columns and dtypes included.

    n_experts : int, default=None
        Number of experts. ``None`` means 2 when ``experts`` is one estimator,
        and the length of the list otherwise.

    gate : SoftmaxGate, gate or Pipeline, default=None
        The gating network, cloned at fit. ``None`` means ``SoftmaxGate()``;
        ``gate__alpha`` is tunable as it is (a nested parameter sets the
        default gate first), and ``SoftmaxGate(balance=...)`` balances the
        experts' load. A Pipeline ending in a gate,
        ``make_pipeline(OneHotEncoder(), SoftmaxGate())``, encodes the
        gate's columns (see :class:`MixtureOfExpertsRegressor`).

    gate_features : array-like of int, str or bool, default=None
        Columns of ``X`` that the gate sees (indices, names or a mask);
        ``None`` means all, or a DataFrame's numeric columns.

    assignment : {"soft", "hard", "stochastic"}, default="soft"
        Posterior responsibilities (EM), the most probable expert
        (classification EM) or a draw from the posterior (stochastic EM).

    init : {"kmeans", "random"} or array-like of shape (n_samples, n_experts), \
            default="kmeans"
        Initial responsibilities. ``"kmeans"`` clusters the standardised
        ``X`` (a DataFrame's numeric columns; not the labels, which would split the clusters by class rather
        than by region); the first start is deterministic and weighted,
        later restarts use k-means++ seeds. ``"random"`` draws random
        balanced hard partitions.

    n_init : int, default=1
        Number of restarts; the one with the highest objective (the mean
        log-likelihood minus the gate's penalty) is kept. The restarts run in
        parallel when ``n_jobs`` allows, each with its own random stream
        drawn from ``random_state``. With ``init`` given as an array every
        restart starts from it, so ``n_init > 1`` only matters for stochastic
        assignments.

    max_iter : int, default=100
        Maximum number of EM iterations per restart; for ``solver="gd"``,
        the maximum number of epochs.

    tol : float, default=1e-6
        EM stops once an iteration raises the objective by less than ``tol``
        (see :class:`MixtureOfExpertsRegressor`). For ``solver="gd"``, the
        improvement required at least once every ``n_iter_no_change`` epochs.

    gate_max_iter : int, "auto" or None, default="auto"
        Iterations of the gate's optimiser per EM iteration, from the
        previous gate (a generalised EM step); ``None`` runs it to
        convergence. See :class:`MixtureOfExpertsRegressor`.

    warm_start : bool, default=False
        If True and the model is fitted, :meth:`fit` continues EM from the
        fitted state. With ``solver="gd"`` it continues from the fitted
        parameters with a fresh optimiser, as MLP does; :meth:`partial_fit`
        always continues, keeping the optimiser's state. With a larger
        ``n_experts`` it grows the mixture (see ``grow``).

    solver : {"em", "gd"}, default="em"
        How the mixture is fitted. ``"em"``: EM, every expert refit on all
        the data at every iteration. ``"gd"``: mini-batch gradient ascent on
        the same penalised log-likelihood (the on-line mixture of experts of
        Jordan & Jacobs); at every mini-batch the gate takes one optimiser
        step along ``Z^T (h - pi)`` (posteriors minus gate probabilities) and
        every expert takes one ``partial_fit`` step with
        ``sample_weight`` = its posteriors. ``"gd"`` needs experts with
        ``partial_fit`` (a :class:`TypeError` names those without one; the
        default expert becomes :class:`~sklearn.linear_model.SGDClassifier` with
        ``loss="log_loss"``), makes :meth:`partial_fit`
        available, and counts ``max_iter`` in epochs. ``assignment`` applies
        to every mini-batch's posteriors, and experts whose ``partial_fit``
        takes no ``sample_weight`` get the rows they most probably own.
        ``n_jobs`` is not used by ``"gd"``. The gate's penalty keeps its
        meaning (it is spread over the total training weight, or over the
        weight seen so far by :meth:`partial_fit`). See ``skmoe/_sgd.py``.

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
        gate of the last epoch are kept (as SGDClassifier does). Not
        supported by :meth:`partial_fit`.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.

    n_jobs : int, default=None
        Number of jobs fitting the experts, and the ``n_init`` restarts, in
        parallel (joblib, through :mod:`sklearn.utils.parallel`; use
        ``joblib.parallel_config(backend="dask")`` to run on a
        dask.distributed cluster). Results do not depend on it.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, stochastic assignments and the experts'
        own ``random_state``.

    verbose : int, default=0
        If positive, print one line per EM iteration or epoch, labelled
        ``[init i/n_init]`` for restarts; from 2, with the seconds of the
        experts' M-step, the gate's M-step and the E-step.

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
        experts bit-for-bit unchanged and fits only the new experts and the
        gate. Freezing suits experts that are right in their own region (e.g.
        a new regime appears in new data); a fitted expert that straddles two
        regimes stays a compromise when frozen, and ``"refit"`` does better
        there.

    Attributes
    ----------
    experts_ : list of estimators
        The fitted experts.

    gate_ : SoftmaxGate
        The fitted gate (the last step of a gate Pipeline).

    gate_features_ : ndarray of int or None
        Column indices the gate sees (None: all).

    n_experts_ : int
        Number of fitted experts (smaller than ``n_experts`` when
        ``on_collapse="drop"`` dropped some).

    classes_ : ndarray of shape (n_classes,)
        The class labels.

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
        The objective after every EM iteration of the kept restart; for
        ``solver="gd"``, after every epoch (one entry after
        :meth:`partial_fit`).

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
    MixtureOfExpertsRegressor : The regression counterpart.
    SoftmaxGate : The gating network.

    References
    ----------
    R. A. Jacobs, M. I. Jordan, S. J. Nowlan and G. E. Hinton, "Adaptive
    mixtures of local experts", Neural Computation 3(1), 1991.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from skmoe import MixtureOfExpertsClassifier
    >>> X, y = make_moons(n_samples=300, noise=0.1, random_state=0)
    >>> clf = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

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
            Class labels.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, multiplied into the responsibilities.

        Returns
        -------
        self : MixtureOfExpertsClassifier
            The fitted mixture.
        """
        return self._fit(X, y, sample_weight)

    # -- hooks ---------------------------------------------------------
    @available_if(_BaseMixtureOfExperts._check_gd_solver)
    @_fit_context(
        # the experts and the gate are not validated yet
        prefer_skip_nested_validation=False
    )
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the mixture with one gradient pass over a batch.

        Only available with ``solver="gd"``. The first call (on an unfitted
        mixture) needs ``classes`` and at least ``max(2, n_experts)`` rows;
        it initialises the mixture on the batch as :meth:`fit` does, then
        takes the pass. Every call cuts the (shuffled) batch into
        mini-batches of ``batch_size`` rows and takes one gate step and one
        ``partial_fit`` step of every expert (with ``classes=classes_``) per
        mini-batch, keeping the optimiser's state between calls. A batch may
        hold any subset of the classes, but no label outside ``classes_``.
        Memory does not grow with the number of calls. If anything is wrong
        with the batch, an error is raised and the fitted mixture is left
        exactly as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data, of at least 2 rows (the first call:
            at least ``max(2, n_experts)``). A sparse matrix is accepted.

        y : array-like of shape (n_samples,)
            Class labels of the batch.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights of the batch, multiplied into the posteriors.

        classes : array-like of shape (n_classes,), default=None
            Every class that can appear in the stream. Required on the first
            call; later calls may omit it or must repeat it exactly.

        Returns
        -------
        self : MixtureOfExpertsClassifier
            The updated mixture.
        """
        return self._partial_fit(X, y, sample_weight, classes)

    def _validate_partial_targets(self, likelihood, y, sample_weight, classes, first):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
            classes = unique_labels(classes)
            if classes.size < 2:
                raise ValueError(
                    "MixtureOfExpertsClassifier needs at least 2 classes; got "
                    f"classes={classes.tolist()}."
                )
            likelihood.classes_ = classes
        elif classes is not None and not np.array_equal(
            unique_labels(classes), self.classes_
        ):
            raise ValueError(
                f"classes={unique_labels(classes).tolist()} is not the same as "
                f"on the first call to partial_fit: {self.classes_.tolist()}."
            )
        classes = likelihood.classes_
        unseen = np.setdiff1d(np.unique(y), classes)
        if unseen.size:
            raise ValueError(
                f"y contains labels not in classes: {unseen.tolist()}; every "
                f"label must be one of {classes.tolist()}."
            )
        return y

    def _make_likelihood(self):
        return CategoricalLikelihood()

    def _default_expert(self, solver):
        if solver == "gd":
            return SGDClassifier(loss="log_loss")
        return LogisticRegression()

    def _check_expert(self, expert, where):
        if is_regressor(expert):
            raise TypeError(
                f"{where} is a regressor ({estimator_name(expert)}); "
                "MixtureOfExpertsClassifier needs classifiers as experts."
            )
        if not hasattr(expert, "predict_proba"):
            raise TypeError(
                f"{where} ({estimator_name(expert)}) has no predict_proba; "
                "MixtureOfExpertsClassifier needs experts with predict_proba."
            )

    def _likelihood_attributes(self, likelihood, theta):
        return {"classes_": likelihood.classes_}

    # -- inference -----------------------------------------------------
    def predict_proba(self, X):
        """Mixture of the experts' class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            ``sum_k pi_k(x) p_k(y | x)``, columns in the order of ``classes_``.
            Under ``top_k``, ``pi`` is renormalised over each row's ``top_k``
            experts and every expert runs only on the rows routed to it.
        """
        X = self._check_X(X)
        gate = self._routed_gate(X)
        proba = self._likelihood.outputs(self.experts_, X, _routing.rows_per_expert(gate))
        return self._likelihood.mix_proba(gate, proba)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log class probabilities (finite: every expert's probabilities are
            floored).
        """
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted class labels.
        """
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]
