"""Mixture of experts for classification: a gated mixture of classifiers."""

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context, is_regressor
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from . import _kernels
from ._base import _BaseMixtureOfExperts, _estimator_name

# Floor on an expert's class probability: a class that an expert never saw,
# or rules out, keeps a finite log-likelihood.
_PROBA_FLOOR = 1e-10


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
    experts : estimator or list of estimators, default=None
        A classifier with ``predict_proba``, cloned ``n_experts`` times, or a
        list of them. ``None`` means
        :class:`~sklearn.linear_model.LogisticRegression`. Experts that
        accept ``sample_weight`` are fitted on every row with weights
        (so that each sees every class); the others on the rows assigned to
        them (see :class:`MixtureOfExpertsRegressor`).

    n_experts : int, default=None
        Number of experts. ``None`` means 2 when ``experts`` is one estimator,
        and the length of the list otherwise.

    gate : SoftmaxGate, default=None
        The gating network, cloned at fit. ``None`` means ``SoftmaxGate()``;
        pass ``gate=SoftmaxGate()`` to tune ``gate__alpha``.

    gate_features : array-like of int, str or bool, default=None
        Columns of ``X`` that the gate sees; ``None`` means all.

    assignment : {"soft", "hard", "stochastic"}, default="soft"
        Posterior responsibilities (EM), the most probable expert
        (classification EM) or a draw from the posterior (stochastic EM).

    init : {"kmeans", "random"} or array-like of shape (n_samples, n_experts), \
            default="kmeans"
        Initial responsibilities. ``"kmeans"`` clusters the standardised
        ``X`` (not the labels, which would split the clusters by class rather
        than by region); the first start is deterministic and weighted,
        later restarts use k-means++ seeds. ``"random"`` draws random
        balanced hard partitions.

    n_init : int, default=1
        Number of restarts; the one with the highest objective is kept.
        The restarts run in parallel when ``n_jobs`` allows, each with its
        own random stream drawn from ``random_state``.

    max_iter : int, default=100
        Maximum number of EM iterations per restart.

    tol : float, default=1e-6
        Convergence threshold on the change of the objective.

    warm_start : bool, default=False
        If True and the model is fitted, :meth:`fit` continues EM from the
        fitted state.

    n_jobs : int, default=None
        Number of jobs fitting the experts, and the ``n_init`` restarts, in
        parallel (joblib, through :mod:`sklearn.utils.parallel`; use
        ``joblib.parallel_config(backend="dask")`` to run on a
        dask.distributed cluster). Results do not depend on it.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, stochastic assignments and the experts'
        own ``random_state``.

    verbose : int, default=0
        If positive, print one line per EM iteration.

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

    classes_ : ndarray of shape (n_classes,)
        The class labels.

    converged_ : bool
        Whether the kept restart converged.

    n_iter_ : int
        Number of EM iterations of the kept restart.

    log_likelihood_ : float
        Final mean log-likelihood per unit of sample weight.

    log_likelihood_history_ : ndarray of shape (n_iter_,)
        The objective after every EM iteration of the kept restart.

    fit_time_ : float
        Seconds spent in the last :meth:`fit`.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (n_features_in_,)
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
        warm_start=False,
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

    # Every expert that accepts sample_weight sees every row (and class).
    _subset_rows = False

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
    def _default_expert(self):
        return LogisticRegression()

    def _check_expert(self, expert, where):
        if is_regressor(expert):
            raise TypeError(
                f"{where} is a regressor ({_estimator_name(expert)}); "
                "MixtureOfExpertsClassifier needs classifiers as experts."
            )
        if not hasattr(expert, "predict_proba"):
            raise TypeError(
                f"{where} ({_estimator_name(expert)}) has no predict_proba; "
                "MixtureOfExpertsClassifier needs experts with predict_proba."
            )

    def _validate_targets(self, y, sample_weight):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        present = np.unique(y_enc[sample_weight > 0])
        if present.size < 2:
            raise ValueError(
                "MixtureOfExpertsClassifier needs samples of at least 2 classes "
                f"(with positive sample_weight); got {present.size} class."
            )
        return y, {"classes": classes}

    def _encode_y(self, y, n_samples):
        y = column_or_1d(y, warn=True)
        if y.shape[0] != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]}.")
        idx = np.searchsorted(self.classes_, y)
        idx = np.minimum(idx, len(self.classes_) - 1)
        unseen = self.classes_[idx] != y
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not seen during fit: {np.unique(y[unseen]).tolist()}."
            )
        return y

    def _init_columns(self, X, y):
        return X

    def _expert_proba(self, expert, X, classes):
        """``expert.predict_proba`` on the global classes, floored and renormalised."""
        proba = np.asarray(expert.predict_proba(X), dtype=np.float64)
        cols = np.searchsorted(classes, expert.classes_)
        full = np.full((X.shape[0], len(classes)), _PROBA_FLOOR)
        full[:, cols] = np.maximum(proba, _PROBA_FLOOR)
        full /= full.sum(axis=1, keepdims=True)
        return full

    def _expert_outputs(self, experts, X, y, info):
        classes = info["classes"]
        y_idx = np.searchsorted(classes, y)
        rows = np.arange(X.shape[0])
        log_lik = np.empty((X.shape[0], len(experts)))
        for k, expert in enumerate(experts):
            log_lik[:, k] = np.log(self._expert_proba(expert, X, classes)[rows, y_idx])
        return log_lik

    def _update_aux(self, outputs, y, weights, aux, info):
        return None

    def _log_lik_matrix(self, outputs, y, aux):
        return outputs

    def _aux(self):
        return None

    def _set_aux(self, aux, info):
        self.classes_ = info["classes"]

    def _fitted_info(self):
        return {"classes": self.classes_}

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
        """
        X = self._check_X(X)
        gate = np.exp(self._log_gate(X))
        proba = np.stack(
            [self._expert_proba(e, X, self.classes_) for e in self.experts_]
        )
        return _kernels.mix_proba(gate, proba)

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
