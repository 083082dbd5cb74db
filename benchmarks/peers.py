"""Peer implementations the skmoe benchmarks compare against.

Each ``run_*`` function fits one peer on ``(X, y)`` and returns a dict with at
least the keys

``time_s``
    Wall-clock seconds of the fit alone (float, or None if it did not run).
``n_iter``
    EM iterations of the kept fit (int or None).
``loglik``
    Total (summed, not mean) log-likelihood of ``y`` given ``X`` on the
    training data, in nats (float or None).
``status``
    ``"ok"`` or a short sentence saying why there is no result.

:func:`fit_sklearn_gate` times the other building block, the M-step of the
gate, done with scikit-learn's ``LogisticRegression`` on replicated data.

Install the peers with ``benchmarks/install_peers.sh``.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np
from scipy.special import log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

__all__ = [
    "flexmix_available",
    "run_flexmix",
    "run_cgmm",
    "fit_sklearn_gate",
    "gate_objective",
]

_FLEXMIX_SCRIPT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "flexmix_fit.R"
)
_FLEXMIX_TAG = "FLEXMIX_JSON "


def flexmix_available(rscript="Rscript"):
    """Tell whether ``Rscript`` exists and can load the flexmix package.

    Parameters
    ----------
    rscript : str, default="Rscript"
        Name or path of the ``Rscript`` executable.

    Returns
    -------
    available : bool
    """
    if shutil.which(rscript) is None:
        return False
    probe = subprocess.run(
        [rscript, "-e", "suppressMessages(library(flexmix))"],
        capture_output=True,
    )
    return probe.returncode == 0


def run_flexmix(
    X,
    y,
    n_components=4,
    nrep=1,
    random_state=0,
    max_iter=200,
    tol=1e-6,
    minprior=0.05,
    timeout=None,
    rscript="Rscript",
):
    """Fit a softmax-gated mixture of linear regressions with R's flexmix.

    Runs ``flexmix_fit.R``, which fits
    ``flexmix(y ~ ., k=n_components, concomitant=FLXPmultinom(~ x1 + ... + xd))``
    ``nrep`` times with seeds ``random_state, random_state + 1, ...`` and keeps
    the fit with the highest log-likelihood (what ``stepFlexmix(nrep=)``
    does).  Each restart starts, as flexmix does by default, from a random
    assignment of the samples to the components.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs.
    y : array-like of shape (n_samples,)
        Targets.
    n_components : int, default=4
        Number of components ``k`` requested.  flexmix may drop some, see
        ``minprior``.
    nrep : int, default=1
        Number of EM restarts.
    random_state : int, default=0
        Seed of the first restart (R's ``set.seed``).
    max_iter : int, default=200
        flexmix ``control$iter.max``, EM iterations per restart (flexmix's
        default).
    tol : float, default=1e-6
        flexmix ``control$tolerance``: EM stops once the relative change of
        the log-likelihood is below it (flexmix's default).
    minprior : float, default=0.05
        flexmix ``control$minprior``: a component whose prior drops below it
        is removed during EM (flexmix's default).  Pass 0 to keep all.
    timeout : float, optional
        Seconds after which the R process is killed; the status then says so.
    rscript : str, default="Rscript"
        Name or path of the ``Rscript`` executable.

    Returns
    -------
    result : dict
        ``time_s``, ``n_iter``, ``loglik``, ``status`` as described in the
        module docstring (``time_s`` covers all restarts, measured inside R
        around the ``flexmix()`` calls only), plus

        ``k_kept`` : int or None
            Components left in the kept fit.
        ``converged`` : bool or None
            flexmix's convergence flag of the kept fit.
        ``df`` : int or None
            Number of free parameters of the kept fit (flexmix's count).
        ``restarts`` : list of dict
            Per restart: ``seed``, ``time_s``, ``n_iter``, ``loglik``,
            ``k_kept``, ``converged`` (or ``error``).
        ``wall_s`` : float or None
            Wall-clock seconds of the whole ``Rscript`` run, including R
            start-up and CSV reading, for reference.
    """
    result = {
        "time_s": None,
        "n_iter": None,
        "loglik": None,
        "status": "ok",
        "k_kept": None,
        "converged": None,
        "df": None,
        "restarts": [],
        "wall_s": None,
    }
    if not flexmix_available(rscript):
        result["status"] = (
            "flexmix not installed (needs Rscript and the R package flexmix; "
            "run benchmarks/install_peers.sh)"
        )
        return result
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    header = ",".join([f"x{j + 1}" for j in range(X.shape[1])] + ["y"])
    with tempfile.TemporaryDirectory(prefix="skmoe-flexmix-") as tmp:
        csv = os.path.join(tmp, "data.csv")
        np.savetxt(
            csv,
            np.column_stack([X, y]),
            delimiter=",",
            header=header,
            comments="",
            fmt="%.17g",
        )
        cmd = [
            rscript,
            _FLEXMIX_SCRIPT,
            csv,
            str(n_components),
            str(nrep),
            str(random_state),
            str(max_iter),
            repr(float(tol)),
            repr(float(minprior)),
        ]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result["status"] = f"timeout: flexmix did not finish within {timeout} s"
            return result
        result["wall_s"] = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_FLEXMIX_TAG)]
    if proc.returncode != 0 or not lines:
        result["status"] = (
            f"Rscript failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
        )
        return result
    out = json.loads(lines[-1][len(_FLEXMIX_TAG) :])
    for key in ("time_s", "n_iter", "loglik", "k_kept", "converged", "df", "restarts"):
        result[key] = out.get(key)
    if result["loglik"] is None:
        result["status"] = "every flexmix restart failed, see restarts"
    return result


def run_cgmm(X, y, n_components=3, random_state=0, **params):
    """Fit cgmm's ``MixtureOfExpertsRegressor``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs.
    y : array-like of shape (n_samples,)
        Targets.
    n_components : int, default=3
        Number of experts.
    random_state : int, default=0
        Seed passed to the estimator.
    **params
        Further constructor arguments of
        ``cgmm.MixtureOfExpertsRegressor`` (e.g. ``max_iter``, default 200;
        ``tol``, default 1e-4, a threshold on the relative change of the mean
        log-likelihood; ``n_init``, default 1).

    Returns
    -------
    result : dict
        ``time_s``, ``n_iter``, ``loglik``, ``status`` as described in the
        module docstring, plus

        ``gate_updated`` : bool or None
            Whether EM changed the gate from its random initialisation.
            In cgmm 0.5.1 it does not: its gate M-step calls
            ``scipy.linalg.cholesky(..., check_isfinite=False)``, a keyword
            scipy does not have, so every Newton step falls back to a
            ``pinv`` branch whose step has the wrong sign, the line search
            never accepts it, and the gate stays at its initial value.

    Notes
    -----
    cgmm's ``lower_bound_`` and ``score`` are *mean* log-likelihoods, and
    ``lower_bound_`` is moreover evaluated before the last M-step.  The
    ``loglik`` reported here is ``sum(model.log_prob(X, y))``, the total
    ``sum_i log sum_k pi_k(x_i) N(y_i; a_k^T x_i + b_k, s_k^2)`` at the final
    parameters -- the same quantity flexmix's ``logLik`` reports.  (Checked
    against a direct computation from the fitted ``_params``: baseline
    softmax gate ``[X W^T + c, 0]``, means ``A_k x + b_k``, variances
    ``cov[k]``; they agree to machine precision.)
    """
    result = {
        "time_s": None,
        "n_iter": None,
        "loglik": None,
        "status": "ok",
        "gate_updated": None,
    }
    try:
        from cgmm import MixtureOfExpertsRegressor
    except ImportError:
        result["status"] = "cgmm not installed (pip install cgmm)"
        return result
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    model = MixtureOfExpertsRegressor(
        n_components=n_components, random_state=random_state, **params
    )
    start = time.perf_counter()
    model.fit(X, y)
    result["time_s"] = time.perf_counter() - start
    result["n_iter"] = int(model.n_iter_)
    result["loglik"] = float(np.sum(model.log_prob(X, y)))
    # The gate intercepts start at exactly zero; any accepted gate step
    # moves them.
    result["gate_updated"] = bool(np.any(model._params.c != 0.0))
    return result


def gate_objective(Z, R, coef, intercept, alpha, sample_weight=None):
    """Objective of the softmax gate M-step, in plain numpy.

    .. math::

        \\sum_i w_i \\sum_k -R_{ik} \\log \\pi_{ik}
        + \\frac{\\alpha}{2} \\lVert W \\rVert_F^2,
        \\qquad \\pi_{i\\cdot} = \\operatorname{softmax}(W z_i + c),

    with the intercepts ``c`` not penalised.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        Gate inputs.
    R : array-like of shape (n_samples, n_classes)
        Soft targets (responsibilities); rows need not sum to one.
    coef : array-like of shape (n_classes, n_features)
        Gate weights ``W``.
    intercept : array-like of shape (n_classes,)
        Gate intercepts ``c``.
    alpha : float
        L2 strength.
    sample_weight : array-like of shape (n_samples,), optional
        Row weights ``w_i``; ones if omitted.

    Returns
    -------
    objective : float
    """
    Z = np.asarray(Z, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    coef = np.asarray(coef, dtype=np.float64)
    log_pi = log_softmax(Z @ coef.T + np.asarray(intercept, dtype=np.float64), axis=1)
    row_loss = -np.sum(R * log_pi, axis=1)
    if sample_weight is not None:
        row_loss = row_loss * np.asarray(sample_weight, dtype=np.float64)
    return float(row_loss.sum() + 0.5 * alpha * np.sum(coef * coef))


def fit_sklearn_gate(Z, R, alpha, sample_weight=None, tol=1e-10, max_iter=10000):
    """Fit the softmax gate with ``LogisticRegression`` on replicated data.

    The soft-label problem ``min_W sum_i w_i sum_k -R_ik log pi_ik +
    alpha/2 ||W||^2`` equals a weighted hard-label one: stack ``K`` copies of
    ``Z``, label copy ``k`` with ``k`` and weight its row ``i`` by
    ``w_i * R_ik``.  scikit-learn's multinomial ``LogisticRegression``
    minimises ``C * sum_j sw_j * loss_j + 0.5 * ||W||_F^2`` (intercept not
    penalised), which divided by ``C`` is that objective with
    ``alpha = 1 / C``.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_features)
        Gate inputs (without a column of ones; the intercept is fitted).
    R : array-like of shape (n_samples, n_classes)
        Soft targets, ``n_classes >= 2``.
    alpha : float
        L2 strength on the weights, > 0.
    sample_weight : array-like of shape (n_samples,), optional
        Row weights ``w_i``; ones if omitted.
    tol : float, default=1e-10
        ``LogisticRegression(tol=)``; for lbfgs a bound on the projected
        gradient of the objective scaled by ``1 / (C * sum of weights)``.
    max_iter : int, default=10000
        ``LogisticRegression(max_iter=)``.

    Returns
    -------
    result : dict
        ``time_s`` : float
            Seconds of ``LogisticRegression.fit`` alone.
        ``replicate_s`` : float
            Seconds spent building the replicated data.
        ``coef`` : ndarray of shape (n_classes, n_features)
            Gate weights ``W``.
        ``intercept`` : ndarray of shape (n_classes,)
            Gate intercepts.
        ``objective`` : float
            :func:`gate_objective` at the solution.
        ``n_iter`` : int
            Solver iterations.
        ``status`` : str
            ``"ok"``, or the text of scikit-learn's convergence warning.

    Notes
    -----
    With two classes scikit-learn fits a binomial model ``logit(pi_2) =
    w^T z + b`` with penalty ``0.5 ||w||^2``.  The minimiser of the softmax
    problem is symmetric, ``W = [-w/2, w/2]`` (the loss is invariant to
    adding a common vector to all rows of ``W``, the penalty is smallest at
    zero row mean), and then ``alpha/2 ||W||^2 = alpha/4 ||w||^2``.  So for
    two classes the binomial model is fitted with ``C = 2 / alpha`` and
    mapped back to ``W = [-w/2, w/2]``, ``c = [-b/2, b/2]``.
    """
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    n_samples, n_classes = R.shape
    if n_classes < 2:
        raise ValueError("R needs at least two columns.")
    row_weight = (
        np.ones(n_samples)
        if sample_weight is None
        else np.asarray(sample_weight, dtype=np.float64)
    )

    start = time.perf_counter()
    Z_rep = np.tile(Z, (n_classes, 1))
    labels = np.repeat(np.arange(n_classes), n_samples)
    weights = (R * row_weight[:, None]).T.ravel()
    replicate_s = time.perf_counter() - start

    binary = n_classes == 2
    model = LogisticRegression(
        C=(2.0 if binary else 1.0) / alpha, tol=tol, max_iter=max_iter
    )
    status = "ok"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(Z_rep, labels, sample_weight=weights)
        time_s = time.perf_counter() - start
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            status = " ".join(str(w.message).split())

    if binary:
        coef = np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
        intercept = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    else:
        coef = model.coef_.copy()
        intercept = model.intercept_.copy()
    return {
        "time_s": time_s,
        "replicate_s": replicate_s,
        "coef": coef,
        "intercept": intercept,
        "objective": gate_objective(Z, R, coef, intercept, alpha, row_weight),
        "n_iter": int(np.max(model.n_iter_)),
        "status": status,
    }
