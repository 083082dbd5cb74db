"""Gates beyond the linear softmax: any classifier, and a tree of gates.

Both implement the gate protocol (``prepare``, ``fit_soft``, ``log_proba``,
``penalty``, ``n_parameters``, ``drop_output``, ``split_output``,
``sgd_parameters``, ``sgd_gradient``, ``n_outputs_``), so a mixture uses them
exactly as it uses :class:`~skmoe.SoftmaxGate`.

* :class:`ClassifierGate` turns any scikit-learn classifier with
  ``predict_proba`` and ``sample_weight`` into a gate: regimes whose
  boundaries are not linear in ``x`` (a disc, a checkerboard) are found with
  ``ClassifierGate(HistGradientBoostingClassifier())``.
* :class:`HierarchicalGate` is the gate of the hierarchical mixture of experts
  (Jordan & Jacobs, 1994): a tree of gates whose leaves are the experts.
"""

from numbers import Integral, Real

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["ClassifierGate", "HierarchicalGate"]


def _final_step(est):
    return est.steps[-1][1] if isinstance(est, Pipeline) else est


def _name(est):
    if isinstance(est, Pipeline):
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in est.steps) + ")"
    return type(est).__name__


def _count_classifier_parameters(est, n_classes):
    """Free parameters of a fitted classifier over ``n_classes`` classes.

    Linear models: ``(C - 1) * (n_features + 1)``; a multi-layer perceptron:
    its weights and biases; a tree: ``leaves * (C - 1)`` (one probability
    vector per leaf; split thresholds are not counted); histogram gradient
    boosting: the leaves of all its trees (one value each); other ensembles:
    the sum over their members. A Pipeline counts its final step.
    """
    est = _final_step(est)
    if hasattr(est, "coef_"):
        coef = np.atleast_2d(est.coef_)
        intercept = int(getattr(est, "fit_intercept", True))
        return int((n_classes - 1) * (coef.shape[1] + intercept))
    if hasattr(est, "coefs_"):  # MLPClassifier
        return int(sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_))
    if hasattr(est, "tree_"):
        return int(est.tree_.n_leaves) * (n_classes - 1)
    if hasattr(est, "_predictors"):  # HistGradientBoostingClassifier
        return int(sum(p.get_n_leaf_nodes() for it in est._predictors for p in it))
    if hasattr(est, "estimators_"):
        members = np.ravel(np.asarray(est.estimators_, dtype=object))
        if all(hasattr(m, "tree_") and not hasattr(m, "classes_") for m in members):
            # Gradient boosting: regression trees, one value per leaf.
            return int(sum(m.tree_.n_leaves for m in members))
        return int(sum(_count_classifier_parameters(m, n_classes) for m in members))
    raise NotImplementedError(
        f"ClassifierGate cannot count the free parameters of {_name(est)} "
        "(needed by bic, aic and icl)."
    )


def _warm_startable(est):
    """Whether ``warm_start=True`` means "start from the previous solution".

    True for the linear models and neural networks of scikit-learn. For the
    ensembles (forests, boosting) ``warm_start`` means "add members to the
    fitted ones", which is not a refit to new targets: they are refitted
    from scratch.
    """
    final = _final_step(est)
    module = type(final).__module__
    return "warm_start" in final.get_params() and module.startswith(
        ("sklearn.linear_model", "sklearn.neural_network")
    )


class _StandaloneGateMixin:
    """Stand-alone use of a gate built on other estimators: ``fit`` and
    ``predict_proba`` on validated input (a mixture calls the gate protocol
    -- ``prepare``, ``fit_soft``, ``log_proba`` -- directly)."""

    def fit(self, Z, R, sample_weight=None):
        """Validate ``Z`` and ``R``, then :meth:`prepare` and :meth:`fit_soft` (stand-alone use).

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs.

        R : array-like of shape (n_samples, n_outputs)
            Soft targets, rows summing to one.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights; ``None`` means all ones.

        Returns
        -------
        self : object
            The fitted gate.
        """
        Z = check_array(Z, accept_sparse=["csr", "csc"], dtype=np.float64, order="C")
        R = np.ascontiguousarray(check_array(R, dtype=np.float64))
        sw = np.ones(Z.shape[0]) if sample_weight is None else np.asarray(
            sample_weight, dtype=np.float64)
        return self.prepare(Z, sw).fit_soft(Z, R, sw)

    def predict_proba(self, Z):
        """Gate probabilities ``exp(log_proba(Z))`` on validated input.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, `n_outputs_`)
            Rows that sum to one.
        """
        check_is_fitted(self, "n_outputs_")
        Z = check_array(Z, accept_sparse=["csr", "csc"], dtype=np.float64, order="C")
        return np.exp(self.log_proba(Z))


class ClassifierGate(_StandaloneGateMixin, BaseEstimator):
    """Any probabilistic classifier as the gate of a mixture of experts.

    The gate's probabilities ``pi_k(z)`` are the classifier's
    ``predict_proba``, over the classes ``0 .. K - 1`` (the experts). The
    M-step fits the classifier to the soft targets ``R`` (the posterior
    responsibilities) by **weighted replication**: every row ``i`` appears
    once for every expert ``k`` with ``R[i, k] > min_responsibility``, with
    label ``k`` and sample weight ``sample_weight[i] * R[i, k]``. Maximising
    the classifier's weighted log-likelihood on those rows is maximising
    ``sum_i w_i sum_k R_ik log pi_k(z_i)``, the gate's part of the EM
    objective (up to the dropped responsibilities below the threshold).

    Cost: the replicated training set has between ``n_samples`` rows (hard
    responsibilities) and ``n_samples * n_experts`` rows (every expert above
    the threshold), each a copy of the row of ``Z``; the classifier is
    refitted on it at every EM iteration. Soft EM early on is the expensive
    part; as responsibilities sharpen, most rows appear once.
    ``min_responsibility`` trades accuracy of the soft targets for size.

    The classifier is cloned at the first M-step and refitted at every
    M-step. Linear models and neural networks of scikit-learn are refitted
    with ``warm_start=True`` (starting from the previous solution) when the
    set of classes has not changed; ensembles are refitted from scratch (their
    ``warm_start`` would add members instead). An expert that holds no
    responsibility above the threshold is absent from the training labels:
    its probability is then ``min_proba`` everywhere. A classifier that sees a
    single class gives that class all the probability (up to the floor).

    The classifier's M-step need not maximise the weighted log-likelihood
    exactly (trees, boosting, penalties, stopping rules): the EM objective
    may then fall slightly between iterations. ``gate_max_iter`` of the
    mixtures does not apply (every M-step is a full fit), the gate adds no
    penalty to the objective (the classifier's own regularisation is part of
    its fit), and the gradient solver (``solver="gd"``) is not supported.

    Parameters
    ----------
    estimator : classifier, default=None
        A scikit-learn classifier with ``predict_proba`` whose ``fit`` takes
        ``sample_weight`` (or a Pipeline ending in one). ``None`` means
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.

    min_responsibility : float in [0, 1), default=1e-3
        Responsibilities at or below it are not replicated.

    min_proba : float in (0, 1), default=1e-10
        Floor on the gate probabilities (then renormalised): a tree's empty
        leaf or an absent class never gives ``log(0)``.

    warm_start : {"auto"} or bool, default="auto"
        ``"auto"``: warm-start linear models and neural networks, refit
        anything else from scratch; ``True``: warm-start any classifier with a
        ``warm_start`` parameter; ``False``: always refit from scratch.

    Attributes
    ----------
    estimator_ : classifier or None
        The classifier fitted at the last M-step (None when it saw one class).

    n_outputs_ : int
        Number of gate outputs (experts).

    output_map_ : ndarray of int of shape (`n_outputs_`,)
        The classifier's class behind every output (the identity after a
        fit; after :meth:`split_output` several outputs share a class).

    output_offset_ : ndarray of shape (`n_outputs_`,)
        Log-weight added to every output before normalisation (0 after a
        fit; ``-log(n_new + 1)`` on the outputs that share a split class).

    n_replicated_ : int
        Rows of the last replicated training set.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmoe._gates import ClassifierGate
    >>> Z = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> R = np.array([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.9]])
    >>> gate = ClassifierGate(LogisticRegression()).fit(Z, R)
    >>> np.exp(gate.log_proba(Z)).round(2)
    array([[0.72, 0.28],
           [0.58, 0.42],
           [0.42, 0.58],
           [0.28, 0.72]])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "min_responsibility": [Interval(Real, 0, 1, closed="left")],
        "min_proba": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self, estimator=None, *, min_responsibility=1e-3, min_proba=1e-10, warm_start="auto"
    ):
        self.estimator = estimator
        self.min_responsibility = min_responsibility
        self.min_proba = min_proba
        self.warm_start = warm_start

    # -- the gate protocol ------------------------------------------------
    #: The gradient solver cannot move a classifier (see :meth:`sgd_parameters`).
    supports_gradient = False

    def prepare(self, Z, sample_weight, n_outputs=None):
        """Nothing to precompute (the classifier sees ``Z`` at every M-step).

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        n_outputs : int, default=None
            The number of experts (unused: any number of classes works).

        Returns
        -------
        self : ClassifierGate
            The gate.
        """
        self._validate_params()
        return self

    def fit_soft(self, Z, R, sample_weight, *, max_iter=None):
        """Fit the classifier to soft targets ``R`` by weighted replication.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        R : ndarray of shape (n_samples, n_outputs)
            Soft targets, rows summing to one.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        max_iter : int, "auto" or None, default=None
            Ignored: every M-step is a full fit of the classifier.

        Returns
        -------
        self : ClassifierGate
            The gate.
        """
        n, K = R.shape
        keep = R > self.min_responsibility
        rows, cols = np.nonzero(keep)
        w = sample_weight[rows] * R[rows, cols]
        pos = w > 0
        rows, cols, w = rows[pos], cols[pos], w[pos]
        classes = np.unique(cols)
        self.n_replicated_ = int(rows.size)
        self._n_base = K
        self.output_map_ = np.arange(K)
        self.output_offset_ = np.zeros(K)
        self.n_outputs_ = K
        if classes.size < 2:
            self.estimator_ = None
            self._single_class = int(classes[0]) if classes.size else 0
            return self
        self._single_class = None
        prev = getattr(self, "estimator_", None)
        warm = (
            self.warm_start is True
            or (self.warm_start == "auto" and prev is not None and _warm_startable(prev))
        )
        if (
            warm
            and prev is not None
            and "warm_start" in _final_step(prev).get_params()
            and np.array_equal(getattr(prev, "classes_", None), classes)
        ):
            est = prev
            key = (
                f"{est.steps[-1][0]}__warm_start" if isinstance(est, Pipeline) else "warm_start"
            )
            est.set_params(**{key: True})
        else:
            est = clone(self.estimator if self.estimator is not None
                        else HistGradientBoostingClassifier())
        Zr = Z[rows]
        if isinstance(est, Pipeline):
            est.fit(Zr, cols, **{f"{est.steps[-1][0]}__sample_weight": w})
        else:
            est.fit(Zr, cols, sample_weight=w)
        self.estimator_ = est
        return self

    def _base_log_proba(self, Z):
        """Log-probabilities over the classes ``0 .. K - 1`` of the last fit."""
        n = Z.shape[0]
        floor = np.log(self.min_proba)
        out = np.full((n, self._n_base), floor)
        if self.estimator_ is None:
            out[:, self._single_class] = 0.0
        else:
            P = self.estimator_.predict_proba(Z)
            cls = np.asarray(self.estimator_.classes_, dtype=np.intp)
            out[:, cls] = np.log(np.maximum(P, self.min_proba))
        return out

    def log_proba(self, Z):
        """Log of the gate probabilities, floored at ``min_proba`` and normalised.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, `n_outputs_`)
            C-contiguous; ``exp`` of every row sums to one.
        """
        out = self._base_log_proba(Z)[:, self.output_map_] + self.output_offset_
        out -= logsumexp(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out)

    def penalty(self):
        """The term subtracted from the EM objective: none.

        Returns
        -------
        penalty : float
            0.0: the classifier's regularisation is part of its own fit.
        """
        return 0.0

    def n_parameters(self):
        """Free parameters of the fitted classifier, for BIC / AIC / ICL.

        Returns
        -------
        n_parameters : int
            Linear models ``(C - 1) * (n_features + 1)``, trees ``leaves * (C - 1)``,
            boosting the leaves of all its trees, networks their weights.
        """
        check_is_fitted(self, "n_outputs_")
        if self.estimator_ is None:
            return 0
        return _count_classifier_parameters(self.estimator_, len(self.estimator_.classes_))

    def drop_output(self, k):
        """Remove output ``k``; the others are renormalised (in place).

        Parameters
        ----------
        k : int
            The output to remove.

        Returns
        -------
        self : ClassifierGate
            The gate.
        """
        check_is_fitted(self, "n_outputs_")
        self.output_map_ = np.delete(self.output_map_, k)
        self.output_offset_ = np.delete(self.output_offset_, k)
        self.n_outputs_ -= 1
        return self

    def split_output(self, j, n_new):
        """Append ``n_new`` copies of output ``j`` sharing its probability (in place).

        In log space: output ``j``'s column is duplicated and
        ``log(n_new + 1)`` subtracted from it and its copies, so every other
        output keeps its probability exactly. The next :meth:`fit_soft`
        refits the classifier on all the outputs.

        Parameters
        ----------
        j : int
            The output to copy.

        n_new : int
            How many copies to add.

        Returns
        -------
        self : ClassifierGate
            The gate.
        """
        check_is_fitted(self, "n_outputs_")
        shift = np.log(n_new + 1.0)
        self.output_offset_[j] -= shift
        self.output_map_ = np.concatenate([self.output_map_, np.repeat(self.output_map_[j], n_new)])
        self.output_offset_ = np.concatenate(
            [self.output_offset_, np.repeat(self.output_offset_[j], n_new)]
        )
        self.n_outputs_ += n_new
        return self

    def sgd_parameters(self):
        """Not supported: a classifier is refitted, not moved by gradient steps.

        Raises
        ------
        NotImplementedError
            Always: use ``solver="em"``.
        """
        raise NotImplementedError(
            f"ClassifierGate({_name(self.estimator or HistGradientBoostingClassifier())}) "
            "is refitted at every EM iteration and has no gradient: it needs "
            'solver="em" (and no partial_fit). Use SoftmaxGate or '
            'HierarchicalGate for solver="gd".'
        )

    def sgd_gradient(self, Z, R, sample_weight, total):
        """Not supported (see :meth:`sgd_parameters`).

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        R : ndarray of shape (n_samples, n_outputs)
            Soft targets, rows summing to one.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        total : float
            The weight the penalty is spread over.

        Raises
        ------
        NotImplementedError
            Always: use ``solver="em"``.
        """
        self.sgd_parameters()


class _Node:
    """An internal node: a gate over its children (expert indices or nodes)."""

    __slots__ = ("gate", "children", "leaf_sets")

    def __init__(self, gate, children):
        self.gate = gate
        self.children = children  # list of ("leaf", k) or ("node", _Node)
        self.leaf_sets = None  # per child, the experts below it (set by _refresh)

    def leaves(self):
        out = []
        for kind, c in self.children:
            out.extend([c] if kind == "leaf" else c.leaves())
        return out


def _tree_as_dict(node):
    """A :class:`_Node` tree as nested dicts (its gates kept as they are)."""
    return {
        "gate": node.gate,
        "children": [
            ["leaf", int(c)] if kind == "leaf" else ["node", _tree_as_dict(c)]
            for kind, c in node.children
        ],
    }


def _tree_from_dict(tree):
    """The :class:`_Node` tree of :func:`_tree_as_dict` (leaf sets unset)."""
    return _Node(tree["gate"], [
        ("leaf", int(c)) if kind == "leaf" else ("node", _tree_from_dict(c))
        for kind, c in tree["children"]
    ])


class HierarchicalGate(_StandaloneGateMixin, BaseEstimator):
    """Gate of the hierarchical mixture of experts (Jordan & Jacobs, 1994).

    A tree of gates whose leaves are the experts. ``branching=(2, 2)`` is a
    root gate over two internal nodes, each a gate over two experts: four
    experts at depth 2, numbered depth first (experts 0 and 1 under the
    root's first child). The probability of an expert is the product of the
    gate probabilities along its path::

        pi_k(z) = prod_{(node, c) on the path of k} g_node,c(z).

    EM fits every internal gate separately: with ``M_i^c`` the posterior mass
    of the experts under child ``c`` (the responsibilities summed over its
    leaves) and ``M_i = sum_c M_i^c`` the node's mass, the node's gate is
    fitted to the targets ``M_i^c / M_i`` with sample weights
    ``sample_weight_i * M_i``. The gate's part of the EM objective,
    ``sum_i w_i sum_k R_ik log pi_k(z_i)``, is the sum of these node
    objectives, so each node's M-step raises it.

    Parameters
    ----------
    branching : tuple of int, default=(2, 2)
        Children per node at every depth; the number of experts is their
        product (the mixture's ``n_experts`` must equal it).

    alpha : float, default=1.0
        L2 penalty of every node's :class:`~skmoe.SoftmaxGate`.

    max_iter : int, default=200
        ``max_iter`` of every node's SoftmaxGate.

    tol : float, default=1e-6
        ``tol`` of every node's SoftmaxGate.

    node_gate : gate, default=None
        The gate cloned for every internal node (any gate of the gate
        protocol, a :class:`ClassifierGate` too). ``None`` means
        ``SoftmaxGate(alpha=alpha, max_iter=max_iter, tol=tol)``; when it is
        given, ``alpha``, ``max_iter`` and ``tol`` are not used.

    Attributes
    ----------
    n_outputs_ : int
        Number of experts (leaves).

    paths_ : list of tuple of int
        ``paths_[k]``: the child taken at every depth from the root to expert
        ``k`` (``(1, 0)``: the root's second child, then its first).

    node_gates_ : list of gates
        The gates of the internal nodes, breadth first from the root.

    Notes
    -----
    :meth:`drop_output` removes the expert's leaf (its parent's gate drops
    that output); :meth:`split_output` adds the copies as siblings of the
    split expert (its parent's gate splits that output), so the tree can
    become unbalanced after collapse repairs or growth.

    References
    ----------
    M. I. Jordan and R. A. Jacobs, "Hierarchical mixtures of experts and the
    EM algorithm", Neural Computation 6(2), 1994.
    """

    _parameter_constraints = {
        "branching": ["array-like"],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "node_gate": [HasMethods(["fit_soft", "log_proba"]), None],
    }

    def __init__(self, branching=(2, 2), *, alpha=1.0, max_iter=200, tol=1e-6, node_gate=None):
        self.branching = branching
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.node_gate = node_gate

    # -- the tree ----------------------------------------------------------
    def _new_gate(self):
        if self.node_gate is not None:
            return clone(self.node_gate)
        from ._gating import SoftmaxGate

        return SoftmaxGate(alpha=self.alpha, max_iter=self.max_iter, tol=self.tol)

    def _build(self):
        branching = tuple(int(b) for b in np.ravel(self.branching))
        if not branching or any(b < 2 for b in branching):
            raise ValueError(
                "branching must be a non-empty sequence of integers >= 2; "
                f"got {self.branching!r}."
            )
        counter = iter(range(int(np.prod(branching))))

        def make(depth):
            if depth == len(branching) - 1:
                children = [("leaf", next(counter)) for _ in range(branching[depth])]
            else:
                children = [("node", make(depth + 1)) for _ in range(branching[depth])]
            return _Node(self._new_gate(), children)

        self.tree_ = make(0)
        self._refresh()

    def __getstate__(self):
        """The state with the tree as nested dicts of plain data.

        ``_Node`` (with ``__slots__``) is private: skops would neither save
        it nor trust it. The derived ``node_gates_`` and leaf sets are
        rebuilt by :meth:`__setstate__` (sharing the tree's gates).
        """
        state = dict(super().__getstate__())  # object.__getstate__: __dict__ itself
        if "tree_" in state:
            state["tree_"] = _tree_as_dict(state["tree_"])
            state.pop("node_gates_", None)
        return state

    def __setstate__(self, state):
        """Rebuild the tree that :meth:`__getstate__` stored as dicts."""
        state = dict(state)
        tree = state.get("tree_")
        super().__setstate__(state)
        if isinstance(tree, dict):
            self.tree_ = _tree_from_dict(tree)
            self._refresh()

    def _nodes(self):
        """Internal nodes, breadth first."""
        out, queue = [], [self.tree_]
        while queue:
            node = queue.pop(0)
            out.append(node)
            queue.extend(c for kind, c in node.children if kind == "node")
        return out

    def _refresh(self):
        """Recompute ``n_outputs_``, ``paths_``, ``node_gates_`` and the leaf sets."""
        paths = {}

        def walk(node, prefix):
            for pos, (kind, c) in enumerate(node.children):
                if kind == "leaf":
                    paths[c] = prefix + (pos,)
                else:
                    walk(c, prefix + (pos,))

        walk(self.tree_, ())
        self.n_outputs_ = len(paths)
        self.paths_ = [paths[k] for k in range(self.n_outputs_)]
        nodes = self._nodes()
        self.node_gates_ = [node.gate for node in nodes]
        for node in nodes:
            # On the node itself: the tree is deep-copied with the gate.
            node.leaf_sets = [
                np.asarray([c] if kind == "leaf" else c.leaves(), dtype=np.intp)
                for kind, c in node.children
            ]

    def path(self, k):
        """The child taken at every depth from the root to expert ``k``.

        Parameters
        ----------
        k : int
            The expert.

        Returns
        -------
        path : tuple of int
            ``paths_[k]``.
        """
        check_is_fitted(self, "tree_")
        return self.paths_[k]

    def _active(self):
        """Nodes whose gate is used: those with at least two children."""
        return [node for node in self._nodes() if len(node.children) > 1]

    def _node_targets(self, node, R, sample_weight):
        mass = np.column_stack([R[:, s].sum(axis=1) for s in node.leaf_sets])
        total = mass.sum(axis=1)
        targets = np.full(mass.shape, 1.0 / mass.shape[1])
        owned = total > 0
        targets[owned] = mass[owned] / total[owned, None]
        return np.ascontiguousarray(targets), sample_weight * total

    # -- the gate protocol ---------------------------------------------------
    def prepare(self, Z, sample_weight, n_outputs=None):
        """Build the tree (unless it is fitted) and prepare every node's gate.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        n_outputs : int, default=None
            The number of experts the mixture fits; a ValueError is raised
            before any fitting when it is not the number of leaves.

        Returns
        -------
        self : HierarchicalGate
            The gate.
        """
        from ._gating import prepare_gate

        self._validate_params()
        if not hasattr(self, "tree_"):
            self._build()
        if n_outputs is not None and n_outputs != self.n_outputs_:
            raise ValueError(self._count_message(n_outputs))
        for node in self._nodes():
            prepare_gate(node.gate, Z, sample_weight, len(node.children))
        return self

    def _count_message(self, n_experts):
        branching = tuple(int(b) for b in np.ravel(self.branching))
        return (
            f"HierarchicalGate(branching={branching}) has "
            f"{self.n_outputs_} leaves but the mixture has {n_experts} experts; "
            f"set n_experts={self.n_outputs_} (the product of branching)."
        )

    @property
    def supports_gradient(self):
        """Whether ``solver="gd"`` can move the gate: when its node gates can."""
        from ._gating import supports_gradient

        return supports_gradient(self._new_gate())

    def fit_soft(self, Z, R, sample_weight, *, max_iter=None):
        """Fit every internal gate to the posterior mass of its subtrees.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        R : ndarray of shape (n_samples, n_outputs)
            Soft targets, rows summing to one.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        max_iter : int, "auto" or None, default=None
            Passed on to every node's gate (a partial M-step when not None).

        Returns
        -------
        self : HierarchicalGate
            The gate.
        """
        if not hasattr(self, "tree_"):
            self.prepare(Z, sample_weight)
        if R.shape[1] != self.n_outputs_:
            raise ValueError(self._count_message(R.shape[1]))
        for node in self._active():
            targets, weights = self._node_targets(node, R, sample_weight)
            if weights.sum() <= 0:
                if getattr(node.gate, "n_outputs_", None) == len(node.children):
                    continue  # no mass below this node: keep its gate
                # Never fitted: a flat gate from uniform targets.
                weights = sample_weight
            node.gate.fit_soft(Z, targets, weights, max_iter=max_iter)
        return self

    def log_proba(self, Z):
        """Log of the gate probabilities: node log-probabilities summed along every path.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, `n_outputs_`)
            C-contiguous; ``exp`` of every row sums to one.
        """
        n = Z.shape[0]
        out = np.empty((n, self.n_outputs_))

        def walk(node, base):
            if len(node.children) > 1:
                lp = node.gate.log_proba(Z)
            else:
                lp = np.zeros((n, 1))
            for pos, (kind, c) in enumerate(node.children):
                col = lp[:, pos] if base is None else base + lp[:, pos]
                if kind == "leaf":
                    out[:, c] = col
                else:
                    walk(c, col)

        walk(self.tree_, None)
        return out

    def penalty(self):
        """The term subtracted from the EM objective: the nodes' penalties summed.

        Returns
        -------
        penalty : float
            Sum of the ``penalty()`` of the gates of nodes with two or more children.
        """
        return float(sum(node.gate.penalty() for node in self._active()))

    def n_parameters(self):
        """Free parameters of the internal gates, for BIC / AIC / ICL.

        Returns
        -------
        n_parameters : int
            Sum over the nodes with two or more children.
        """
        return int(sum(node.gate.n_parameters() for node in self._active()))

    def _parent(self, k):
        def find(node):
            for pos, (kind, c) in enumerate(node.children):
                if kind == "leaf" and c == k:
                    return node, pos
                if kind == "node":
                    hit = find(c)
                    if hit is not None:
                        return hit
            return None

        check_is_fitted(self, "tree_")
        if not 0 <= k < self.n_outputs_:
            raise IndexError(f"expert {k} out of range for {self.n_outputs_} experts.")
        return find(self.tree_)

    def drop_output(self, k):
        """Remove expert ``k``'s leaf; its parent's gate drops that output (in place).

        A node left without children is removed from its own parent the same
        way. Experts after ``k`` are renumbered down by one.

        Parameters
        ----------
        k : int
            The output to remove.

        Returns
        -------
        self : HierarchicalGate
            The gate.
        """
        if self.n_outputs_ < 2:
            raise ValueError("HierarchicalGate cannot drop its last expert.")
        node, pos = self._parent(k)
        while len(node.children) == 1:
            # Its only child goes: the node goes too, from its own parent.
            node, pos = self._parent_of_node(node)
        node.gate.drop_output(pos)
        del node.children[pos]

        def renumber(n):
            n.children = [
                (kind, (c - (c > k)) if kind == "leaf" else c) for kind, c in n.children
            ]
            for kind, c in n.children:
                if kind == "node":
                    renumber(c)

        renumber(self.tree_)
        self._refresh()
        return self

    def _parent_of_node(self, target):
        for node in self._nodes():
            for pos, (kind, c) in enumerate(node.children):
                if kind == "node" and c is target:
                    return node, pos
        raise ValueError("HierarchicalGate: the root has no parent.")

    def split_output(self, j, n_new):
        """Add ``n_new`` experts as siblings of expert ``j``, sharing its probability.

        Expert ``j``'s parent gate splits that output (the copies are appended
        to the node's children), so every other expert keeps its probability
        exactly. The new experts come last.

        Parameters
        ----------
        j : int
            The output to copy.

        n_new : int
            How many copies to add.

        Returns
        -------
        self : HierarchicalGate
            The gate.
        """
        node, pos = self._parent(j)
        # A node left with one child by drop_output keeps its fitted gate
        # (of one output): splitting it gives its outputs equal shares.
        node.gate.split_output(pos, n_new)
        node.children.extend(("leaf", self.n_outputs_ + t) for t in range(n_new))
        self._refresh()
        return self

    def sgd_parameters(self):
        """The arrays that the gradient solver moves, in place.

        Returns
        -------
        params : list of ndarray
            The ``sgd_parameters()`` of the nodes with two or more children,
            concatenated breadth first from the root.
        """
        out = []
        for node in self._active():
            out.extend(node.gate.sgd_parameters())
        return out

    def sgd_gradient(self, Z, R, sample_weight, total):
        """Gradient of the mini-batch objective with respect to :meth:`sgd_parameters`.

        The objective ``-sum_i w_i sum_k R_ik log pi_k(z_i) / w_B + penalty /
        total`` (``w_B`` the batch's weight) is the sum of the node
        objectives (targets and weights as in :meth:`fit_soft`). A node's
        gate divides its data term by the weight it receives, ``s w_B`` with
        ``s = sum_i w_i M_i / w_B``: it is called with ``total * s`` and its
        gradient multiplied by ``s``. A node without mass in the batch gets
        its own probabilities as targets, whose data gradient is zero,
        leaving the penalty's.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        R : ndarray of shape (n_samples, n_outputs)
            Soft targets, rows summing to one.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        total : float
            The weight the penalty is spread over.

        Returns
        -------
        grads : list of ndarray
            Gradients of the shapes of :meth:`sgd_parameters`.
        """
        w_b = sample_weight.sum()
        out = []
        for node in self._active():
            targets, weights = self._node_targets(node, R, sample_weight)
            s = weights.sum() / w_b
            if s > 0:
                grads = node.gate.sgd_gradient(Z, targets, weights, total * s)
                out.extend(g * s for g in grads)
            else:
                own = np.exp(node.gate.log_proba(Z))
                out.extend(node.gate.sgd_gradient(Z, own, sample_weight, total))
        return out
