"""Mixture of experts for classification: a gated mixture of classifiers."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context, is_regressor
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import column_or_1d

from . import _array_api, _pool, _routing
from ._base import _BaseMixtureOfExperts
from ._docstrings import fill_doc
from ._experts import estimator_name
from ._gating import SoftmaxGate
from ._inference import StandardErrorsMixin
from ._likelihood import CategoricalLikelihood


@fill_doc(
    sgd_expert=(
        ':class:`~sklearn.linear_model.SGDClassifier` with\n    ``loss="log_loss"``'
    ),
    sgd_name="SGDClassifier",
)
class MixtureOfExpertsClassifier(ClassifierMixin, StandardErrorsMixin, _BaseMixtureOfExperts):
    """Mixture of experts classifier (Jacobs, Jordan, Nowlan & Hinton, 1991).

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

    %(n_experts)s

    %(gate)s

    %(gate_features)s

    %(assignment)s

    init : {"auto", "kmeans", "random"} or array-like of shape (n_samples, n_experts), \
            default="auto"
        Initial responsibilities.
        ``"auto"`` (the default) runs a pool of diverse starts and keeps the best
        optimum: 8 random balanced partitions, 8 partitions by random quantile cut
        points along the first principal axis of the standardised gate inputs, 4 by
        random cut points along random directions in the standardised ``X`` and the
        deterministic k-means start. With L2-penalised ``LogisticRegression`` experts
        and a :class:`SoftmaxGate` (dense data, soft EM), the starts are tried in turn
        (k-means first, then one of each kind): a rough first M-step, then L-BFGS on the
        penalised log-likelihood, gate and experts together, until at least 4 starts
        were tried and the best optimum was reached from two; EM then confirms the
        kept optimum. Other experts get 10 EM iterations from each start, the best 3
        continued to convergence. On more than 5,000 rows the pool runs on a random
        subsample of 2,000 rows, and one full-data run starts from the winner (see the
        user guide for the cost). The starts' objectives are kept in
        ``init_objectives_``, the best candidates' in ``init_candidates_``.
        ``"kmeans"`` clusters the standardised ``X`` (a DataFrame's numeric columns; not
        the labels, which would split the clusters by class rather than by region); the
        first start is deterministic and weighted, later restarts use k-means++ seeds.
        ``"random"`` draws random balanced hard partitions.
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

    classes_ : ndarray of shape (n_classes,)
        The class labels.

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

    #: The pool of ``init="auto"`` (skmoe/_pool.py).
    _init_pool = _pool.CLASSIFIER_POOL

    def _default_gate(self):
        # A flatter gate than the regressor's: with logistic experts, a
        # sharp gate carves the data into regions that each expert overfits
        # (measured on four data sets: the only default that never lost to
        # a single LogisticRegression).
        return SoftmaxGate(alpha=10.0)

    def _make_likelihood(self, y=None):
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
        xp = _array_api.fitted_namespace(self)
        if xp is not None:  # fitted on array API inputs: skmoe/_array_api/
            X = _array_api.check_X(self, xp, X)[0]
            return _array_api.predict_proba(xp, self, X)
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
        proba = self.predict_proba(X)
        xp = _array_api.fitted_namespace(self)
        return np.log(proba) if xp is None else xp.log(proba)

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
        xp = _array_api.fitted_namespace(self)
        if xp is not None:
            return xp.take(self.classes_, xp.argmax(proba, axis=1), axis=0)
        return self.classes_[np.argmax(proba, axis=1)]
