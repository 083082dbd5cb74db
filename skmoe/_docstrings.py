"""Parameter and attribute documentation shared by the two mixtures, written once.

As scikit-learn's and imbalanced-learn's ``_docstrings`` helpers: each
paragraph is written here once and substituted into the docstrings of
:class:`~skmoe.MixtureOfExpertsRegressor` and
:class:`~skmoe.MixtureOfExpertsClassifier` by :func:`fill_doc`, where a
placeholder ``%(name)s`` stands on a line of its own. ``{field}`` marks in a
paragraph take the estimator's own words (its SGD expert, ...).
"""

import textwrap

PARAMETERS = {
    "n_experts": """\
n_experts : int, default=None
    Number of experts. An int fits exactly that many (no selection). With
    a list of ``experts``, ``None`` means the length of the list (which
    must equal ``n_experts`` when both are given). With one estimator,
    ``None`` means two experts, or one when BIC on the training data
    prefers one, as mclust's ``Mclust`` and flexmix's ``stepFlexmix``
    choose: :meth:`fit` fits the two-expert mixture exactly as
    ``n_experts=2`` would, then the one-expert model (a single fit of the
    expert on every row, with a constant gate), and keeps the one with
    the lower BIC, ``-2 log L + p log n`` counted as :meth:`bic` counts
    (a ``sample_weight`` counts as that many repeated rows; a tie keeps
    one expert); ``n_experts_`` and ``n_experts_bic_`` record the choice,
    and ``verbose`` prints it. Where the data hold one linear model the
    default mixture would overfit (two experts splitting one line) and
    lose to the single model held out; one expert then matches it. The
    choice runs in :meth:`fit` with ``solver="em"``, ``warm_start=False``,
    a string ``init`` and a :class:`SoftmaxGate` (or a gate Pipeline
    ending in one). Elsewhere ``None`` means 2: ``solver="gd"`` and
    :meth:`partial_fit` (a stream cannot compare criteria over all its
    rows), ``warm_start=True`` (a continued fit keeps its experts), an
    ``init`` array (of two columns), another gate (a
    :class:`ClassifierGate` or :class:`HierarchicalGate` has no
    one-expert form), experts whose parameters skmoe cannot count (no
    BIC), dask collections and array API inputs. ``n_init``
    restarts, ``top_k``, ``on_collapse`` and ``n_jobs`` apply to the
    two-expert fit; the one-expert fit is deterministic and needs none
    of them. Pass ``n_experts=2`` for a mixture whatever BIC says.
""",
    "gate": """\
gate : SoftmaxGate, estimator with the gate protocol or Pipeline, \
        default=None
    The gating network, cloned at fit. ``None`` means ``SoftmaxGate()``
    for the regressor and ``SoftmaxGate(alpha=10.0)`` for the classifier
    (a flatter gate: a sharp one carves the data into regions that each
    logistic expert overfits), as scikit-learn estimators take no
    estimator instance as a default; a
    nested parameter such as ``gate__alpha`` sets that default first, so
    ``GridSearchCV(MixtureOfExpertsRegressor(), {"gate__alpha": [...]})``
    works as it is. A Pipeline whose last step is a gate, for example
    ``make_pipeline(OneHotEncoder(), SoftmaxGate())``, encodes the gate's
    columns: its leading steps are fitted once per fit on them (a
    DataFrame stays a DataFrame) and turn them into the gate's numeric
    input; ``gate_`` is then its fitted last step. A strong penalty
    smooths the boundaries between the experts; sharp regime changes
    want a small ``alpha``.
    Load balancing is the gate's ``balance`` penalty
    (``gate=SoftmaxGate(balance=0.1)``), which pulls the mean gate
    probabilities toward equal use of the experts; it is part of the
    objective that EM maximises. Any estimator that implements the gate
    protocol (the methods of :class:`SoftmaxGate` listed in the user
    guide, "Write your own gate") can take its place.
""",
    "gate_features": """\
gate_features : array-like of int, str or bool, default=None
    Columns of ``X`` that the gate sees: indices, names (when ``X`` is a
    DataFrame) or a boolean mask. ``None`` means all columns; for a
    DataFrame and a gate that is not a Pipeline, all its numeric columns.
    An empty list (or a mask without a True) means none: the gate then
    learns constant mixing weights, as flexmix without concomitant
    variables. The gate needs numbers: a string or categorical column
    reaches it only through a gate Pipeline that encodes it. The experts
    always see all columns.
""",
    "assignment": """\
assignment : {"soft", "hard", "stochastic"}, default="soft"
    What the M-step gives the experts and the gate, as flexmix's
    ``classify``: the posterior responsibilities (classic EM), the most
    probable expert of each sample (classification EM), or an expert
    drawn from each sample's posterior (stochastic EM).
""",
    "n_init": """\
n_init : int, default=1
    Number of restarts (with ``init="auto"``, of independent pools of
    starts); the one with the highest objective (the mean
    log-likelihood minus the gate's penalty) is kept. The restarts run in
    parallel when ``n_jobs`` allows, each with its own random stream
    drawn from ``random_state``. With ``init`` given as an array every
    restart starts from it, so ``n_init > 1`` only matters for stochastic
    assignments.
""",
    "max_iter": """\
max_iter : int, default=500
    Maximum number of EM iterations per restart (with ``init="auto"``, per
    continued candidate); for ``solver="gd"``,
    the maximum number of epochs (passes over the data).
""",
    "tol": """\
tol : float, default=1e-6
    EM stops once an iteration raises the objective (the mean
    log-likelihood minus the gate's penalty over the total sample weight)
    by less than ``tol``. With exact M-steps the objective never
    decreases; experts with their own penalty or stopping tolerance (such
    as ``LogisticRegression``) make the M-step inexact, and a decrease at
    the level of their tolerance then also ends EM.
    For ``solver="gd"``, the improvement required at least once every
    ``n_iter_no_change`` epochs.
""",
    "gate_max_iter": """\
gate_max_iter : int, "auto" or None, default="auto"
    Iterations of the gate's optimiser per EM iteration, started from the
    previous gate: a generalised EM step, which raises the objective
    without maximising it. ``"auto"`` takes one Newton iteration for
    small gates (``(n_experts + 1) * (n_gate_features + 1) <= 64``) and
    five L-BFGS iterations for larger ones (five Newton steps on sums over
    the rows, with a Hessian from a fixed subset of them, where the chunked
    engine fits at least 65,536 rows: see :ref:`scaling`); an int takes
    that many of either; ``None`` runs the gate's optimiser to convergence (its own
    ``max_iter`` and ``tol``), the exact M-step. The partial step makes
    each EM iteration cheaper and, with an unpenalised gate, it keeps the
    gate from turning sharp before the experts have settled: on
    piecewise-linear data EM then needs about as many iterations as with
    the exact M-step, or fewer (``benchmarks/bench_flexmix.py``). EM
    declares convergence only after an iteration whose gate step was
    exact. Ignored by ``solver="gd"``.
""",
    "warm_start": """\
warm_start : bool, default=False
    If True and the model is fitted, :meth:`fit` continues EM from the
    fitted experts, gate and likelihood parameters (``n_init`` is then
    ignored).
    With ``solver="gd"`` it continues from the fitted parameters with a
    fresh optimiser, as MLP does; :meth:`partial_fit` always continues,
    keeping the optimiser's state.
    With a larger ``n_experts`` it grows the mixture (see ``grow``).
""",
    "solver": """\
solver : {"em", "gd"}, default="em"
    How the mixture is fitted. ``"em"``: EM, every expert refit on all
    the data at every iteration. ``"gd"``: mini-batch gradient ascent on
    the same penalised log-likelihood (the on-line mixture of experts of
    Jordan & Jacobs); at every mini-batch the gate takes one optimiser
    step along ``Z^T (h - pi)`` (posteriors minus gate probabilities) and
    every expert takes one ``partial_fit`` step with
    ``sample_weight`` = its posteriors. ``"gd"`` needs experts with
    ``partial_fit`` (a :class:`TypeError` names those without one; the
    default expert becomes {sgd_expert}),
    makes :meth:`partial_fit` available, and counts ``max_iter`` in
    epochs. ``assignment`` applies to every mini-batch's posteriors, and
    experts whose ``partial_fit`` takes no ``sample_weight`` get the rows
    they most probably own.
    ``n_jobs`` is not used by ``"gd"``. The gate's penalty keeps its
    meaning (it is spread over the total training weight, or over the
    weight seen so far by :meth:`partial_fit`); the likelihood's parameters are
    running estimates over the last mini-batches. See ``skmoe/_sgd.py``.
""",
    "optimizer": """\
optimizer : {"adam", "sgd"}, default="adam"
    Optimiser of the gate for ``solver="gd"``, as ``solver`` of
    :class:`~sklearn.neural_network.MLPRegressor`: Adam (with MLP's
    ``beta_1=0.9, beta_2=0.999, epsilon=1e-8``) or SGD with Nesterov
    momentum. The experts follow their own ``partial_fit`` rules.
""",
    "learning_rate": """\
learning_rate : {"constant", "adaptive"}, default="constant"
    Learning-rate schedule of ``optimizer="sgd"``, as in MLP: with
    ``"adaptive"``, when the stopping criterion triggers the rate is
    divided by 5 instead of stopping (until it falls below 1e-6).
""",
    "learning_rate_init": """\
learning_rate_init : float, default=0.1
    Step size of the gate's optimiser, in the standardised units of the
    gate's input (so it does not depend on the units of ``X``).
""",
    "momentum": """\
momentum : float, default=0.9
    Momentum of ``optimizer="sgd"``, in [0, 1].
""",
    "batch_size": """\
batch_size : int or "auto", default="auto"
    Rows per mini-batch for ``solver="gd"``; ``"auto"`` means
    ``min(200, n_samples)``, as MLP. Larger values are clipped to the
    number of rows.
""",
    "shuffle": """\
shuffle : bool, default=True
    Shuffle the rows at every epoch (and within every
    :meth:`partial_fit` call) for ``solver="gd"``.
""",
    "n_iter_no_change": """\
n_iter_no_change : int, default=10
    ``solver="gd"`` stops when the epoch's objective (or the validation
    log-likelihood with ``early_stopping``) has not improved by ``tol``
    for more than ``n_iter_no_change`` consecutive epochs.
""",
    "early_stopping": """\
early_stopping : bool, default=False
    For ``solver="gd"``, hold out ``validation_fraction`` of the training
    data (stratified for the classifier) and stop on its mean
    log-likelihood instead of the training objective. The experts and
    gate of the last epoch are kept (as {sgd_name} does). Not
    supported by :meth:`partial_fit`.
""",
    "validation_fraction": """\
validation_fraction : float, default=0.1
    Share of the training data held out when ``early_stopping=True``.
""",
    "n_jobs": """\
n_jobs : int, default=None
    Number of jobs fitting the experts, the ``n_init`` restarts, and the
    short runs of ``init="auto"``'s pool, in
    parallel (joblib, through :mod:`sklearn.utils.parallel`; use
    ``joblib.parallel_config(backend="dask")`` to run on a
    dask.distributed cluster). ``None`` means 1 unless in a
    :func:`joblib.parallel_config` context. Results do not depend on it.
""",
    "random_state": """\
random_state : int, RandomState instance or None, default=None
    Seeds the initialisation, stochastic assignments and the experts'
    own ``random_state``. Pass an int for reproducible results.
""",
    "verbose": """\
verbose : int, default=0
    As in scikit-learn: 1 prints a summary line per stage of the fit
    (the initialisation pool's stages, every restart's objective,
    iterations and convergence) and, with ``solver="gd"``, one line per
    epoch; 2 adds one line per EM iteration (iteration, log-likelihood,
    objective, change, seconds), those of the pool's continued
    candidates included; with ``n_init > 1`` the lines of every restart
    start with ``[init i/n_init]``. From 3, every EM line also gives the
    seconds of the experts' M-step, the gate's M-step and the E-step. Warnings
    raised during a fit, by the experts or by restarts in worker
    processes, are raised once each at its end, with their count.
""",
    "top_k": """\
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
    model. With ``solver="gd"`` every mini-batch's posteriors are kept on
    each row's ``top_k`` experts in the same way. See :meth:`route`.
""",
    "min_expert_weight": """\
min_expert_weight : float in [0, 1), default=1e-3
    Collapse threshold: an expert whose share of the training weight
    (``sum_i w_i h_ik / sum_i w_i``) falls below it after an E-step is
    repaired as ``on_collapse`` says, with a warning naming the expert and
    the action (and recorded in ``repairs_``). The objective may drop at a
    repair (EM restarts from the repaired posteriors); it is
    non-decreasing between repairs. A re-seeding (EM) is a proposal: the
    collapsed fit it replaced is continued by EM too, and the repair is
    undone when the repaired run ends at a lower penalised objective (the
    data prefer fewer experts: the collapsed expert is then reported by a
    warning and ``expert_usage_``; the classifier's ``init="auto"``
    pool, whose starts each give every expert rows of its own, keeps its
    best optimum by the same rule without re-seeding it again). ``0``
    switches repairs off (an empty expert then keeps its previous fit,
    with a warning). With
    ``solver="gd"`` the share is measured over each epoch's mini-batches
    of :meth:`fit` (:meth:`partial_fit` does not repair); a repair is
    followed by a full M-step from the repaired posteriors (every expert's
    ``fit``, the gate's exact fit, a fresh optimiser).
""",
    "on_collapse": """\
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
""",
    "grow": """\
grow : {"refit", "freeze"}, default="refit"
    Growing a fitted mixture: with ``warm_start=True`` and ``n_experts``
    larger than ``n_experts_``, :meth:`fit` keeps the fitted experts and
    gate, seeds every new expert with half of the rows of the expert that
    fits worst (as ``on_collapse="reseed"``; its gate output starts as a
    copy of that expert's, the two sharing its probability) and continues
    EM (with ``solver="gd"``: a full M-step, then the epochs). ``"refit"``
    refits every expert; ``"freeze"`` leaves the fitted
    experts (and their likelihood parameters) bit-for-bit unchanged and fits only
    the new experts and the gate. Freezing suits experts that are right
    in their own region (e.g. a new regime appears in new data); a
    fitted expert that straddles two regimes stays a compromise when
    frozen, and ``"refit"`` does better there.
""",
}

ATTRIBUTES = {
    "experts_": """\
experts_ : list of estimators
    The fitted experts.
""",
    "gate_": """\
gate_ : SoftmaxGate or estimator with the gate protocol
    The fitted gate (the last step of a gate Pipeline).
""",
    "gate_features_": """\
gate_features_ : ndarray of int or None
    Column indices the gate sees (None: all).
""",
    "n_experts_": """\
n_experts_ : int
    Number of fitted experts (smaller than ``n_experts`` when
    ``on_collapse="drop"`` dropped some; 1 or 2 with ``n_experts=None``,
    by BIC).
""",
    "n_experts_bic_": """\
n_experts_bic_ : dict or None
    With ``n_experts=None`` and a choice by BIC (see ``n_experts``): the
    training BIC of each candidate, ``{1: bic_one_expert, 2: bic_mixture}``;
    the fitted model is the one with the lower value. None when no choice
    ran (an explicit ``n_experts``, a list of ``experts``, ``solver="gd"``,
    :meth:`partial_fit`, a warm start, ...).
""",
    "converged_": """\
converged_ : bool
    Whether the kept restart converged (for ``solver="gd"``, whether the
    stopping rule triggered; always False after :meth:`partial_fit`).
""",
    "n_iter_": """\
n_iter_ : int
    Number of EM iterations of the kept restart; for ``solver="gd"``,
    the number of epochs, incremented by every :meth:`partial_fit` call.
""",
    "log_likelihood_": """\
log_likelihood_ : float
    Final mean log-likelihood per unit of sample weight. For
    ``solver="gd"``, the mean over the last epoch's (or
    :meth:`partial_fit` call's) mini-batches, each evaluated just before
    its gradient step (as MLP's ``loss_``).
""",
    "log_likelihood_history_": """\
log_likelihood_history_ : ndarray of shape (`n_iter_`,)
    The objective after every EM iteration of the kept restart (equal to
    the mean log-likelihood when the gate's ``alpha`` is 0); for
    ``solver="gd"``, after every epoch, measured as ``log_likelihood_``
    (one entry after :meth:`partial_fit`: memory does not grow with the
    number of calls).
""",
    "validation_scores_": """\
validation_scores_ : ndarray of shape (`n_iter_`,) or None
    Mean validation log-likelihood after every epoch; only set by
    ``solver="gd"``, and None unless ``early_stopping=True``.
""",
    "best_validation_score_": """\
best_validation_score_ : float or None
    Largest of ``validation_scores_``; only set by ``solver="gd"``.
""",
    "expert_usage_": """\
expert_usage_ : ndarray of shape (`n_experts_`,)
    Share of the training weight each expert holds after fitting,
    ``sum_i w_i h_ik / sum_i w_i`` with the final responsibilities (for
    ``solver="gd"``, the posteriors of the last epoch's, or
    :meth:`partial_fit` call's, mini-batches, each before its step).
""",
    "repairs_": """\
repairs_ : list of dict
    The collapse repairs of the kept run, in order: ``{"iteration",
    "expert", "action", "donor"}`` (``action`` is ``"reseed"``,
    ``"drop"``, or ``"undone"``: a re-seeding undone because the collapsed
    fit, continued, reached a higher penalised objective; ``donor`` the
    expert whose rows were split, or None;
    ``iteration`` counts EM iterations, or epochs for ``solver="gd"``).
""",
    "fit_time_": """\
fit_time_ : float
    Seconds spent in the last :meth:`fit` (or :meth:`partial_fit`).
""",
    "n_features_in_": """\
n_features_in_ : int
    Number of features seen during :meth:`fit`.
""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during :meth:`fit`. Defined only when `X`
    has feature names that are all strings.
""",
}



def _indent(paragraph):
    """A paragraph indented for a class docstring, less its first line's indent."""
    return textwrap.indent(paragraph.strip("\n"), "    ").lstrip()


def fill_doc(**task):
    """Class decorator: substitute the shared paragraphs into the docstring.

    ``task`` fills the ``{name}`` fields of the paragraphs (the estimator's
    own words).
    """

    def decorate(cls):
        values = {}
        for name, paragraph in {**PARAMETERS, **ATTRIBUTES}.items():
            for field, words in task.items():
                paragraph = paragraph.replace("{" + field + "}", words)
            values[name] = _indent(paragraph)
        cls.__doc__ = cls.__doc__ % values
        return cls

    return decorate
