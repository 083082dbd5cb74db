"""The softmax gating network: a soft-target multinomial logistic regression."""

import inspect
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _kernels, _threaded
from ._compat import namespace_of

# Rows per chunk of the passes that would otherwise copy Z (the variance, the
# Hessian of a sparse Z, and the mixtures' k-means start).
_CHUNK_ROWS = 8192


def _weighted_standardization(Z, sample_weight):
    """Weighted mean and scale of the columns of ``Z`` (dense or sparse).

    Constant columns get a scale of one, so they only shift the intercept.
    A sparse ``Z`` is never densified: only its non-zeros are squared.
    """
    total = sample_weight.sum()
    mean = np.asarray(sample_weight @ Z).ravel() / total
    if sp.issparse(Z):
        var = np.asarray(sample_weight @ Z.multiply(Z)).ravel()
    else:
        # Chunk by chunk: no squared copy of Z.
        var = np.zeros(Z.shape[1])
        for c0 in range(0, Z.shape[0], _CHUNK_ROWS):
            chunk = Z[c0 : c0 + _CHUNK_ROWS]
            var += sample_weight[c0 : c0 + _CHUNK_ROWS] @ (chunk * chunk)
    var = var / total - mean * mean
    # The one-pass variance loses digits when |mean| >> std: recompute
    # those columns exactly (rare; it costs one centred pass over them).
    suspicious = var <= 1e-8 * mean * mean
    if np.any(suspicious):
        Zs = Z[:, np.flatnonzero(suspicious)]
        Zc = (Zs.toarray() if sp.issparse(Zs) else Zs) - mean[suspicious]
        var[suspicious] = sample_weight @ (Zc * Zc) / total
    scale = np.sqrt(np.maximum(var, 0.0))
    tiny = 1e-12 * np.maximum(np.abs(mean), 1.0)
    scale[scale <= tiny] = 1.0
    return mean, scale


def _to_standardised(coef, intercept, mean, scale):
    """Raw ``(coef_, intercept_)`` as the coefficients ``(W_s, b_s)`` of the
    standardised input ``(Z - mean) / scale``."""
    W_s = coef.T * scale[:, None]
    b_s = intercept + mean @ coef.T
    return np.ascontiguousarray(W_s), np.asarray(b_s, dtype=np.float64)


def _to_raw(W_s, b_s, mean, scale):
    """Standardised ``(W_s, b_s)`` as raw ``(coef_, intercept_)`` (NumPy
    arrays, or those of one array API namespace)."""
    W = W_s / scale[:, None]
    coef = np.ascontiguousarray(W.T) if isinstance(W, np.ndarray) else W.T
    return coef, b_s - mean @ W


def gate_logits(W_s, b_s, Z, mean, scale):
    """Gate logits of ``Z`` for the standardised coefficients ``(W_s, b_s)``.

    Parameters
    ----------
    W_s : ndarray of shape (n_features, n_experts)
        Coefficients of the standardised input ``(Z - mean) / scale``.
    b_s : ndarray of shape (n_experts,)
        Intercepts of the standardised input.
    Z : ndarray of shape (n_samples, n_features)
        Gate input (not standardised: the standardisation is folded into the
        coefficients).
    mean, scale : ndarray of shape (n_features,)
        The standardisation statistics.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_experts)
    """
    W = W_s / scale[:, None]
    logits = Z @ W
    logits += b_s - mean @ W
    return logits


def gate_batch_gradient(logits, Z, targets, sample_weight, W_s, mean, scale, alpha, total):
    """Gradient of the mini-batch objective ``f_B`` with respect to ``(W_s, b_s)``.

    With ``targets`` the posteriors ``h`` of the batch (computed at the
    current parameters), this is the gradient of
    ``-sum_i w_i log p(y_i | x_i) / w_B + alpha / (2 total) ||W_s||^2``: the
    derivative of ``-log sum_k pi_k p_k`` with respect to the logits is
    ``pi - h``. The per-row part comes from the compiled kernel
    :func:`~skmoe._kernels.soft_target_loss_grad`; the coefficients'
    gradient is the BLAS product ``Z^T (pi - h)`` mapped to standardised
    space.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_experts)
        Gate logits of the batch (:func:`gate_logits`).
    Z : ndarray of shape (n_samples, n_features)
        Gate input of the batch.
    targets : ndarray of shape (n_samples, n_experts)
        Posteriors (or hard / stochastic assignments) of the batch.
    sample_weight : ndarray of shape (n_samples,)
        Sample weights of the batch, with a positive sum ``w_B``.
    W_s : ndarray of shape (n_features, n_experts)
        Current standardised coefficients (for the penalty).
    mean, scale : ndarray of shape (n_features,)
        The standardisation statistics.
    alpha : float
        The gate's penalty.
    total : float
        ``T``, the weight the penalty is spread over.

    Returns
    -------
    grad_W : ndarray of shape (n_features, n_experts)
    grad_b : ndarray of shape (n_experts,)
    """
    _, G = _kernels.soft_target_loss_grad(logits, targets, sample_weight)
    w_batch = sample_weight.sum()
    g_sum = G.sum(axis=0)
    grad_W = (Z.T @ G - np.outer(mean, g_sum)) / (scale[:, None] * w_batch)
    grad_W += (alpha / total) * W_s
    return grad_W, g_sum / w_batch


def _gate_objective(
    params, Z, targets, sample_weight, mean, scale, alpha, total, balance=0.0
):
    """Penalised soft-target cross-entropy and gradient, in standardised space.

    ``params`` holds ``W_s`` (n_features, n_classes) then ``b_s`` (n_classes,),
    the coefficients for the standardised inputs ``(Z - mean) / scale``. The
    standardised matrix is never formed: the logits are
    ``Z @ (W_s / scale) + (b_s - mean @ (W_s / scale))``.

    Returns the objective ``(CE + alpha/2 ||W_s||^2 + balance * P) / total``
    and its gradient, with ``P`` the load-balancing penalty of
    :func:`_kernels.balance_penalty_grad` (added only when ``balance > 0``).
    """
    n_features = Z.shape[1]
    n_classes = params.size // (n_features + 1)
    W_s = params[: n_features * n_classes].reshape(n_features, n_classes)
    b_s = params[n_features * n_classes :]
    W = W_s / scale[:, None]
    b = b_s - mean @ W
    if hasattr(Z, "loss_grad"):
        # Blocks of a dask collection (skmoe._dask): sums over the blocks.
        loss, g_sum, ZtG = Z.loss_grad(W, b)
    elif balance <= 0 and not sp.issparse(Z):
        # One pass over Z for the logits and the gradient (chunks in cache).
        loss, g_sum, ZtG = _threaded.gate_loss_grad(Z, W, b, targets, sample_weight)
    else:
        logits = np.ascontiguousarray(Z @ W)
        logits += b
        if balance > 0:
            # Before the in-place kernel below overwrites the logits.
            penalty, G_bal = _kernels.balance_penalty_grad(logits, sample_weight)
        # The kernel overwrites ``logits`` with the gradient w.r.t. the logits.
        loss, g_sum = _threaded.soft_target_grad_inplace(logits, targets, sample_weight)
        G = logits
        if balance > 0:
            G += balance * G_bal
            loss += balance * penalty
            g_sum = G.sum(axis=0)
        ZtG = np.asarray(Z.T @ G)
    grad_W = (ZtG - np.outer(mean, g_sum)) / scale[:, None]
    loss += 0.5 * alpha * np.dot(W_s.ravel(), W_s.ravel())
    grad_W += alpha * W_s
    grad = np.concatenate([grad_W.ravel(), g_sum])
    return loss / total, grad / total


# L-BFGS iterations of a generalised M-step (``max_iter="auto"``).
_AUTO_LBFGS_ITER = 5


def _newton_pays(n_features, n_classes):
    """Whether exact-Hessian Newton beats L-BFGS for this gate size.

    The Hessian costs about ``(n_classes + 1) * (n_features + 1) / 4``
    objective evaluations; Newton needs 1-3 iterations from an EM warm start
    where L-BFGS, whose curvature memory starts empty at every call, needs
    10-20 evaluations.
    """
    return (n_classes + 1) * (n_features + 1) <= 64


def _gate_hessian(params, Z, targets, sample_weight, mean, scale, alpha, total, balance=0.0):
    """Hessian of the cross-entropy and L2 terms of :func:`_gate_objective`.

    ``sum_i w_i s_i (diag(p_i) - p_i p_i^T) kron u_i u_i^T`` over the
    standardised inputs with a column of ones ``u_i``, plus ``alpha`` on the
    coefficients, divided by ``total``. Terms that other code adds to
    ``_gate_objective`` are not in it: Newton's line search then still
    decreases the full objective, with a less exact step.

    The sum is taken over the raw inputs ``v_i = [z_i, 1]`` (``u_i = A v_i``
    with ``A`` the standardisation) and only over the distinct entries of
    the two symmetric factors (``k <= l`` and ``a <= b``), in one compiled
    pass over the rows (:func:`_kernels.gate_hessian_sums`: no ``n x
    n_classes x n_features`` array, no standardised copy of ``Z``); the
    blocks are then mapped to standardised space, ``A H_kl A^T``.
    """
    if hasattr(Z, "hessian"):  # blocks of a dask collection (skmoe._dask)
        return Z.hessian(params, mean, scale, alpha, total)
    n, d = Z.shape
    K = targets.shape[1]
    W = params[: d * K].reshape(d, K) / scale[:, None]
    logits = Z @ W
    logits += params[d * K :] - mean @ W
    P = _threaded.log_softmax_rows(np.ascontiguousarray(logits))
    np.exp(P, out=P)
    q = sample_weight * (targets @ np.ones(K))
    pk, pl = np.triu_indices(K)
    fa, fb = np.triu_indices(d + 1)
    if sp.issparse(Z):
        # Newton runs only for small gates: densify chunk by chunk.
        S = np.zeros((pk.size, fa.size))
        for c0 in range(0, n, _CHUNK_ROWS):
            c1 = min(c0 + _CHUNK_ROWS, n)
            S += _kernels.gate_hessian_sums(
                Z[c0:c1].toarray(), P[c0:c1], q[c0:c1], pk, pl, fa, fb
            )
    else:
        S = _kernels.gate_hessian_sums(Z, P, q, pk, pl, fa, fb)
    # Symmetric (d + 1) x (d + 1) blocks in raw space, then A B A^T.
    B = np.zeros((pk.size, d + 1, d + 1))
    B[:, fa, fb] = S
    B[:, fb, fa] = S
    A = np.zeros((d + 1, d + 1))
    A[np.arange(d), np.arange(d)] = 1.0 / scale
    A[:d, d] = -mean / scale
    A[d, d] = 1.0
    B = np.einsum("ab,pbc,ec->pae", A, B, A)
    return assemble_hessian(B, pk, pl, K, d, alpha) / total


def assemble_hessian(B, pk, pl, K, d, alpha):
    """The gate's Hessian from its ``(d + 1) x (d + 1)`` blocks ``B[p]``, one
    per pair of classes ``(pk[p], pl[p])`` of the upper triangle, in
    :func:`_gate_objective`'s (feature, class) order of the parameters, with
    the penalty ``alpha`` on the slopes."""
    H4 = np.empty((K, K, d + 1, d + 1))
    H4[pk, pl] = B
    H4[pl, pk] = B
    m = K * (d + 1)
    H = H4.transpose(2, 0, 3, 1).reshape(m, m)
    idx = np.arange(d * K)
    H[idx, idx] += alpha
    return H


def newton_direction(H, g):
    """The Newton step ``-H^+ g`` (the pseudo-inverse: the softmax's shift
    invariance makes ``H`` singular)."""
    vals, vecs = np.linalg.eigh(H)
    keep = vals > 1e-10 * max(vals[-1], 1e-300)
    return -(vecs[:, keep] @ ((vecs[:, keep].T @ g) / vals[keep]))


def backtrack(evaluate, f, slope, c=1e-4, min_step=1e-10):
    """Armijo backtracking along a descent direction with ``slope < 0``.

    ``evaluate(t)`` returns a tuple whose first entry is the objective at
    step ``t`` (the rest is passed back). Tries ``t = 1, 1/2, 1/4, ...`` and
    returns ``(t, evaluate(t))`` for the first ``t`` with a sufficient
    decrease (``f(t) <= f + c t slope``), or None once ``t`` falls below
    ``min_step``. The one line search of the gate's Newton solvers (on
    arrays, on chunked sums, and in an array API namespace).
    """
    t = 1.0
    while True:
        out = evaluate(t)
        if out[0] <= f + c * t * slope:
            return t, out
        t *= 0.5
        if t < min_step:
            return None


def newton_minimise(objective, direction, x, max_iter, gtol, ftol=1e-12):
    """Damped Newton steps on NumPy or array API arrays.

    ``objective(x)`` returns ``(f, g)``; ``direction(x, g)`` the step (the
    pseudo-inverse Newton step: the softmax's shift invariance makes the
    Hessian singular). Each step is searched by :func:`backtrack`. Stops as
    scipy's L-BFGS-B does in :class:`SoftmaxGate`: largest gradient
    component at most ``gtol``, or a relative decrease at most ``ftol``.
    Returns ``(x, f, n_iter, ok)``; ``ok`` is False when a step failed to
    decrease the objective (``x``, ``f``: the last accepted point).
    """
    xp = namespace_of(x)
    f, g = objective(x)
    for it in range(max_iter):
        if float(xp.max(xp.abs(g))) <= gtol:
            return x, f, it, True
        step = direction(x, g)
        slope = float(xp.sum(g * step))
        if not slope < 0.0:
            return x, f, it, False
        found = backtrack(lambda t: objective(x + t * step), f, slope)
        if found is None:
            return x, f, it, False
        t, (f_new, g_new) = found
        x = x + t * step
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        f, g = f_new, g_new
        if decrease <= ftol:
            return x, f, it + 1, True
    return x, f, max_iter, True


def _newton(x0, args, max_iter, gtol, ftol=1e-12):
    """:func:`newton_minimise` on ``_gate_objective``: ``(x, f, n_iter)``,
    or None when a step fails to decrease the objective (the caller then
    runs L-BFGS)."""
    x, f, it, ok = newton_minimise(
        lambda x: _gate_objective(x, *args),
        lambda x, g: newton_direction(_gate_hessian(x, *args), g),
        x0.copy(), max_iter, gtol, ftol,
    )
    return (x, f, it) if ok else None


def _split_output(coef, intercept, j, n_new):
    """``(coef, intercept)`` with ``n_new`` copies of row ``j`` that share its
    probability (intercepts lowered by ``log(n_new + 1)``) appended."""
    coef = np.vstack([coef] + [coef[j : j + 1]] * n_new)
    intercept = np.concatenate([intercept, np.repeat(intercept[j], n_new)])
    shift = np.log(n_new + 1.0)
    intercept[j] -= shift
    intercept[-n_new:] -= shift
    return coef, intercept


def _initial_params(gate, freq, n_classes, mean, scale, warm):
    """Starting point of the optimiser: the fitted ``gate`` (``warm``, same
    shape) in standardised space, or the log of the weighted target
    frequencies (``freq()``, evaluated only then)."""
    n_features = len(mean)
    coef = getattr(gate, "coef_", None)
    if warm and coef is not None and coef.shape == (n_classes, n_features):
        W_s, b_s = _to_standardised(coef, gate.intercept_, mean, scale)
        return np.concatenate([W_s.ravel(), b_s])
    # A common shift of the intercepts is irrelevant to the softmax.
    x0 = np.zeros(n_features * n_classes + n_classes)
    x0[n_features * n_classes :] = np.log(np.maximum(freq(), 1e-12))
    return x0


def start_params(gate, freq, n_classes):
    """The standardised parameters an M-step of ``gate`` starts from (see
    :func:`_initial_params`; the fitted gate when it has ``n_classes`` outputs)."""
    return _initial_params(gate, freq, n_classes, *gate._standardization, warm=True)


def _minimise(x0, args, n_features, n_classes, max_iter, gate_max_iter, tol):
    """Newton for small gates (L-BFGS when it fails), L-BFGS otherwise.

    ``gate_max_iter``: None (``max_iter`` iterations), an int (at most that
    many) or ``"auto"`` (one Newton or ``_AUTO_LBFGS_ITER`` L-BFGS
    iterations). Returns ``(x, objective, n_iter)``.
    """
    if gate_max_iter is None:
        n_newton = n_lbfgs = max_iter
    elif gate_max_iter == "auto":
        n_newton, n_lbfgs = 1, min(_AUTO_LBFGS_ITER, max_iter)
    else:
        n_newton = n_lbfgs = min(gate_max_iter, max_iter)
    with _threaded.single_threaded_blas():
        if _newton_pays(n_features, n_classes):
            newton = _newton(x0, args, n_newton, tol)
            if newton is not None:
                return newton
        result = minimize(
            _gate_objective, x0, args=args, jac=True, method="L-BFGS-B",
            options={"maxiter": n_lbfgs, "gtol": tol, "ftol": 1e-12},
        )
    return result.x, result.fun, result.nit


class SoftmaxGate(BaseEstimator):
    """Softmax gating network fitted to soft targets.

    A multinomial logistic regression ``pi(z) = softmax(W^T z + b)`` whose
    targets are probability vectors (for instance the posterior
    responsibilities of a mixture of experts) rather than labels. It
    minimises

    .. math::

        \\sum_i w_i \\sum_k -r_{ik} \\log \\pi_k(z_i)
        + \\frac{\\alpha}{2} \\lVert W_s \\rVert_F^2
        - \\beta \\frac{T}{K} \\sum_k \\log\\left(K \\bar\\pi_k\\right)

    where :math:`W_s` are the coefficients for the inputs standardised with
    their (weighted) mean and standard deviation. The penalty is therefore
    the same whatever the units of the inputs: a column measured in years
    next to one measured in thousandths reaches the same gate as the
    standardised data, without the user scaling anything. The intercept is
    not penalised. ``alpha=1`` is on the scale of
    :class:`~sklearn.linear_model.LogisticRegression`'s default ``C=1``
    applied to standardised inputs.

    The last term, of strength :math:`\\beta` (``balance``), balances the
    load of the experts: with :math:`T = \\sum_i w_i` and the mean gate
    probabilities :math:`\\bar\\pi_k = \\sum_i w_i \\pi_k(z_i) / T` over the
    :math:`K` outputs, it is :math:`\\beta\\, T\\, \\mathrm{KL}(u \\,\\|\\,
    \\bar\\pi)` with :math:`u` the uniform distribution: zero when every
    expert gets the same average share, positive otherwise, and infinite
    as a share goes to zero. It is the negative log-density of a symmetric
    Dirichlet prior with concentration :math:`1 + \\beta T / K` on
    :math:`\\bar\\pi` (up to a constant); it pulls the average use of the
    experts toward uniform without forcing any single sample's gate to be
    flat. Because it scales with :math:`T`, ``balance`` is per unit of
    sample weight, like the cross-entropy.

    The loss and its gradient with respect to the logits are computed by a
    compiled kernel; the two matrix products go to BLAS; the data is never
    replicated once per class. Small gates (``(n_classes + 1) *
    (n_features + 1) <= 64``) are fitted by Newton's method with the exact
    Hessian and a line search, which needs 1-3 iterations from the warm
    start of an EM iteration; larger ones by scipy's L-BFGS. Both stop at
    the same ``tol``. Inside a mixture's EM the optimiser runs for at most
    the mixture's ``gate_max_iter`` iterations per EM iteration.

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the L2 penalty on the standardised coefficients.
        ``alpha=0`` gives the unpenalised maximum-likelihood gate (whose
        coefficients diverge on separable targets; ``max_iter`` bounds them).

    max_iter : int, default=200
        Maximum number of Newton or L-BFGS iterations per call to :meth:`fit`.

    tol : float, default=1e-6
        Stop when the largest component of the projected gradient of the
        objective (divided by the total sample weight) falls below ``tol``.

    warm_start : bool, default=False
        Start the optimiser from the previous solution when refitting with
        the same number of features and classes.

    balance : float, default=0.0
        Strength :math:`\\beta` of the load-balancing penalty
        ``-(T / K) sum_k log(K * pbar_k)`` on the mean gate probabilities
        (see above). ``0`` switches it off. In a mixture of experts, values
        around 0.01 to 0.1 keep small experts alive; large values force
        equal shares.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features)
        Coefficients of the gate in the units of the inputs.

    intercept_ : ndarray of shape (n_classes,)
        Intercepts of the gate.

    n_classes_ : int
        Number of gate outputs (experts).

    n_outputs_ : int
        The same number, under the name of the gate protocol.

    classes_ : ndarray of shape (n_classes,)
        ``np.arange(n_classes_)``, the labels returned by :meth:`predict`.

    objective_ : float
        Final value of the penalised objective divided by the total weight.

    n_iter_ : int
        Number of Newton or L-BFGS iterations run by the last :meth:`fit`.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when ``Z``
        has feature names that are all strings.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The same model on hard labels.
    MixtureOfExpertsRegressor : Uses a SoftmaxGate as its gating network.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import SoftmaxGate
    >>> Z = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> R = np.array([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.9]])
    >>> gate = SoftmaxGate(alpha=0.0).fit(Z, R)
    >>> gate.predict_proba(Z).round(2)
    array([[0.91, 0.09],
           [0.68, 0.32],
           [0.32, 0.68],
           [0.09, 0.91]])
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "balance": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self, alpha=1.0, *, max_iter=200, tol=1e-6, warm_start=False, balance=0.0
    ):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.balance = balance

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, Z, R, sample_weight=None):
        """Fit the gate to soft targets.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs. A CSR or CSC matrix is used as it is: the logits and
            the gradient are sparse products.

        R : array-like of shape (n_samples, n_classes)
            Soft targets: non-negative, each row summing to one.

        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights; ``None`` means all ones.

        Returns
        -------
        self : SoftmaxGate
            The fitted gate.
        """
        Z, R = validate_data(
            self,
            Z,
            R,
            accept_sparse=["csr", "csc"],
            dtype=np.float64,
            order="C",
            multi_output=True,
            y_numeric=True,
        )
        R = np.ascontiguousarray(R, dtype=np.float64)
        if R.ndim != 2 or R.shape[1] < 2:
            raise ValueError(
                "R must be a 2-D array of soft targets with at least 2 columns; "
                f"got shape {R.shape}."
            )
        if np.any(R < 0) or not np.allclose(R.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(
                "R must hold soft targets: non-negative rows that sum to 1."
            )
        sample_weight = _check_sample_weight(
            sample_weight, Z, dtype=np.float64, ensure_non_negative=True
        )
        self.prepare(Z, sample_weight)
        return self._fit_soft(Z, R, sample_weight, None, warm=self.warm_start)

    # ------------------------------------------------------------------
    # The gate protocol: what the mixtures call, and nothing else
    # ------------------------------------------------------------------
    def prepare(self, Z, sample_weight, n_outputs=None):
        """Compute the statistics of the gate input, once per fit.

        The weighted mean and standard deviation of the columns of ``Z``
        define the standardised space of the penalty and of the gradient
        solver.

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input (CSR/CSC matrices are kept sparse).

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights with a positive sum.

        n_outputs : int, default=None
            The number of experts the mixture will fit (None: not known).
            Unused: a softmax gate takes any number of outputs.

        Returns
        -------
        self : SoftmaxGate
            The gate.
        """
        self._validate_params()
        if sample_weight.sum() <= 0:
            raise ValueError("sample_weight must have a positive sum.")
        self._leave_sgd()
        self._standardization = _weighted_standardization(Z, sample_weight)
        return self

    def fit_soft(self, Z, R, sample_weight, *, max_iter=None):
        """Fit to soft targets, starting from the current coefficients.

        The M-step of the gate: warm-starts from the fitted coefficients when
        they have ``R.shape[1]`` outputs (``warm_start`` is for :meth:`fit`).

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input, as given to :meth:`prepare`.

        R : ndarray of shape (n_samples, n_outputs)
            Soft targets, rows summing to one.

        sample_weight : ndarray of shape (n_samples,)
            Non-negative sample weights.

        max_iter : int, "auto" or None, default=None
            ``None`` runs the optimiser to convergence; an int caps its
            iterations; ``"auto"`` is one Newton iteration (a few L-BFGS
            ones for large gates): a generalised M-step.

        Returns
        -------
        self : SoftmaxGate
            The fitted gate.
        """
        return self._fit_soft(Z, R, sample_weight, max_iter, warm=True)

    def prepare_statistics(self, mean, scale):
        """Set the statistics of the gate input directly, instead of :meth:`prepare`.

        For data never held in one array (the blocks of a dask array): the
        caller computes the weighted column means and standard deviations
        over the blocks.

        Parameters
        ----------
        mean : ndarray of shape (n_features,)
            Weighted means of the gate input's columns.

        scale : ndarray of shape (n_features,)
            Their weighted standard deviations (1 for constant columns).

        Returns
        -------
        self : SoftmaxGate
            The gate.
        """
        self._validate_params()
        self._leave_sgd()
        if namespace_of(mean) is np:
            mean, scale = np.asarray(mean, float), np.asarray(scale, float)
        # Arrays of another namespace (array API dispatch) stay on their device.
        self._standardization = (mean, scale)
        self.n_features_in_ = int(mean.shape[0])
        return self

    def get_standardization(self):
        """The weighted means and scales of the gate input's columns.

        :meth:`prepare` (or :meth:`prepare_statistics`) sets them; the gate's
        optimisers work on the columns standardised by them, and so do the
        solvers outside the gate that fit its parameters from sums over the
        rows (see :meth:`set_standardized_params`).

        Returns
        -------
        standardization : tuple of two ndarray of shape (n_features,)
            The columns' weighted means, then their weighted standard
            deviations (1 for constant columns).
        """
        return self._standardization

    def set_standardized_params(self, params, objective=None, n_iter=None):
        """Set the gate from parameters on the standardised scale.

        For solvers outside the gate (Newton's steps on chunked sums, the
        classifier's joint polish): ``params`` holds the slopes ``W_s``
        (``n_features x n_outputs``, row-major) on the columns standardised
        by :meth:`get_standardization`, then the ``n_outputs`` intercepts.
        ``coef_``, ``intercept_`` and the L2 penalty follow from them, in
        the namespace of ``params`` (an array API fit keeps them on its
        device).

        Parameters
        ----------
        params : ndarray of shape ((n_features + 1) * n_outputs,)
            The standardised parameters.

        objective : float or None, default=None
            The objective they reach (``objective_``); None keeps it.

        n_iter : int or None, default=None
            The iterations taken (``n_iter_``); None keeps it.

        Returns
        -------
        self : SoftmaxGate
            The gate.
        """
        xp = namespace_of(params)  # NumPy, or the array API's (on its device)
        mean, scale = self._standardization
        n_features = int(mean.shape[0])
        n_classes = int(params.shape[0]) // (n_features + 1)
        W_s = xp.reshape(params[: n_features * n_classes], (n_features, n_classes))
        self._set_coef(*_to_raw(W_s, params[n_features * n_classes :], mean, scale))
        self._penalty = 0.5 * float(self.alpha) * float(xp.sum(W_s * W_s))
        if objective is not None:
            self.objective_ = float(objective)
        if n_iter is not None:
            self.n_iter_ = int(n_iter)
        return self

    def fit_soft_sums(self, sums, total, n_outputs, freq, *, max_iter=None):
        """:meth:`fit_soft` from sums over row blocks (out-of-core data).

        Parameters
        ----------
        sums : object
            Gives the cross-entropy's sums over all the rows:
            ``sums.loss_grad(W, b)`` returns ``(loss, grad_b, grad_W)`` and
            ``sums.hessian(params, mean, scale, alpha, total)`` the Hessian of
            the objective divided by ``total`` (see ``skmoe._dask``).

        total : float
            The total sample weight.

        n_outputs : int
            The number of outputs (experts).

        freq : callable
            Returns the weighted target frequencies, shape (n_outputs,); called
            only when the gate has no coefficients to start from.

        max_iter : int, "auto" or None, default=None
            As in :meth:`fit_soft`.

        Returns
        -------
        self : SoftmaxGate
            The fitted gate.
        """
        if self.balance > 0:
            raise ValueError("fit_soft_sums does not support balance > 0.")
        self._leave_sgd()
        mean, scale = self._standardization
        args = (sums, None, None, mean, scale, float(self.alpha), total, 0.0)
        return self._optimise(args, freq, n_outputs, max_iter, warm=True)

    def log_proba(self, Z):
        """Log of the gate probabilities, unvalidated (the mixtures' hot path).

        Parameters
        ----------
        Z : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated float64 gate input.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_outputs)
            Row-wise log-softmax of the logits (C-contiguous).
        """
        return _threaded.log_softmax_rows(self._logits(Z))

    def penalty(self):
        """The term subtracted from the weighted log-likelihood in the objective.

        Returns
        -------
        penalty : float
            ``alpha / 2 ||W_s||^2``, plus the balance penalty when
            ``balance > 0`` (not under the gradient solver, which leaves it
            out), at the current coefficients.
        """
        self._sync_raw()
        return self._penalty

    def n_parameters(self):
        """Free parameters of the fitted gate, for BIC / AIC / ICL.

        Returns
        -------
        n_parameters : int
            ``(n_features + 1) * (n_outputs - 1)``: the softmax is invariant
            to a common shift of its outputs.
        """
        self._sync_raw()
        return (self.coef_.shape[1] + 1) * (self.n_outputs_ - 1)

    def drop_output(self, k):
        """Remove output ``k`` (in place).

        Parameters
        ----------
        k : int
            The output to remove.
        """
        self._leave_sgd()
        self._set_coef(np.delete(self.coef_, k, axis=0), np.delete(self.intercept_, k))

    def split_output(self, j, n_new):
        """Add ``n_new`` copies of output ``j`` sharing its probability (in place).

        Output ``j`` and its copies share ``j``'s probability equally
        (intercepts lowered by ``log(n_new + 1)``), so every other output keeps
        its probability exactly. The copies come last.

        Parameters
        ----------
        j : int
            The output to copy.

        n_new : int
            How many copies to add.
        """
        self._leave_sgd()
        self._set_coef(*_split_output(self.coef_, self.intercept_, j, n_new))

    def sgd_parameters(self):
        """The arrays that the gradient solver moves, in place.

        ``[W_s, b_s]``, the coefficients of the input standardised by
        :meth:`prepare` (the learning rate then means the same whatever the
        units of ``Z``). Until the next :meth:`prepare`, :meth:`fit_soft` or
        output edit the gate follows these arrays; :meth:`penalty` brings
        ``coef_`` and ``intercept_`` up to date.

        Returns
        -------
        params : list of ndarray
            ``[W_s (n_features, n_outputs), b_s (n_outputs,)]``.
        """
        if getattr(self, "_sgd", None) is None:
            self._sgd = list(
                _to_standardised(self.coef_, self.intercept_, *self._standardization)
            )
        return self._sgd

    def sgd_gradient(self, Z, R, sample_weight, total):
        """Gradient of the mini-batch objective with respect to :meth:`sgd_parameters`.

        The objective is ``-sum_i w_i sum_k R_ik log pi_k(z_i) / w_B +
        alpha / (2 total) ||W_s||^2`` (``w_B`` the batch's weight); the
        balance penalty is left out.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_features)
            Gate input of the batch.

        R : ndarray of shape (n_samples, n_outputs)
            Soft targets of the batch.

        sample_weight : ndarray of shape (n_samples,)
            Sample weights of the batch, with a positive sum.

        total : float
            The weight the penalty is spread over.

        Returns
        -------
        grads : list of ndarray
            Gradients of the shapes of :meth:`sgd_parameters`.
        """
        W_s, b_s = self.sgd_parameters()
        mean, scale = self._standardization
        logits = gate_logits(W_s, b_s, Z, mean, scale)
        return list(gate_batch_gradient(
            logits, Z, R, sample_weight, W_s, mean, scale, float(self.alpha), total
        ))

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------
    def _sync_raw(self):
        """Bring ``coef_``, ``intercept_`` and the penalty up to the SGD arrays."""
        if getattr(self, "_sgd", None) is not None:
            W_s, b_s = self._sgd
            self.coef_, self.intercept_ = _to_raw(W_s, b_s, *self._standardization)
            self._penalty = 0.5 * float(self.alpha) * float(np.sum(W_s * W_s))

    def _leave_sgd(self):
        self._sync_raw()
        self._sgd = None

    def _set_coef(self, coef, intercept):
        self.coef_ = np.ascontiguousarray(coef) if namespace_of(coef) is np else coef
        self.intercept_ = intercept
        self.n_classes_ = self.n_outputs_ = self.coef_.shape[0]
        self.classes_ = np.arange(self.n_classes_)

    def _fit_soft(self, Z, R, sample_weight, max_iter, warm):
        """Fit on validated float64 C-contiguous arrays (no checks)."""
        self._leave_sgd()
        total = sample_weight.sum()
        if total <= 0:
            raise ValueError("sample_weight must have a positive sum.")
        if getattr(self, "_standardization", None) is None:
            self.prepare(Z, sample_weight)
        mean, scale = self._standardization
        args = (
            Z, R, sample_weight, mean, scale, float(self.alpha), total, float(self.balance)
        )
        n_classes = R.shape[1]
        self._optimise(
            args, lambda: sample_weight @ R / total, n_classes, max_iter, warm
        )
        if self.balance > 0:
            self._penalty += float(self.balance) * _kernels.balance_penalty_grad(
                self._logits(Z), sample_weight
            )[0]
        return self

    def _optimise(self, args, freq, n_classes, max_iter, warm):
        """Minimise the objective over ``args`` (arrays, or sums over blocks)
        and store the coefficients, the objective and the L2 penalty (what the
        mixture subtracts from its log-likelihood, with the balance term)."""
        mean, scale = self._standardization
        n_features = len(mean)
        x0 = _initial_params(self, freq, n_classes, mean, scale, warm)
        x, fun, nit = _minimise(
            x0, args, n_features, n_classes, self.max_iter, max_iter, self.tol
        )
        return self.set_standardized_params(x, fun, nit)

    def _logits(self, Z):
        if getattr(self, "_sgd", None) is not None:
            return gate_logits(*self._sgd, Z, *self._standardization)
        # Z @ coef for dense or sparse Z (sparse products cost the non-zeros).
        logits = np.ascontiguousarray(Z @ self.coef_.T)
        logits += self.intercept_
        return logits

    def _validate_Z(self, Z):
        check_is_fitted(self)
        return validate_data(
            self, Z, accept_sparse=["csr", "csc"], dtype=np.float64, order="C", reset=False
        )

    def decision_function(self, Z):
        """Gate logits ``Z @ coef_.T + intercept_``.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs.

        Returns
        -------
        logits : ndarray of shape (n_samples, n_classes)
            Unnormalised log-probabilities.
        """
        return self._logits(self._validate_Z(Z))

    def predict_log_proba(self, Z):
        """Log of the gate probabilities.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Row-wise log-softmax of the logits.
        """
        return _threaded.log_softmax_rows(self._logits(self._validate_Z(Z)))

    def predict_proba(self, Z):
        """Gate probabilities.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows that sum to one.
        """
        return _kernels.softmax_rows(self._logits(self._validate_Z(Z)))

    def predict(self, Z):
        """Most probable gate output.

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_samples, n_features)
            Gate inputs.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the largest gate probability.
        """
        return np.argmax(self.decision_function(Z), axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.input_tags.sparse = True
        return tags


def prepare_gate(gate, Z, sample_weight, n_outputs=None):
    """``gate.prepare(Z, sample_weight, n_outputs=n_outputs)``.

    ``n_outputs`` (the number of experts) is an optional keyword of the gate
    protocol: a gate whose ``prepare`` takes no ``n_outputs`` is called
    without it.
    """
    if n_outputs is not None:
        try:
            params = inspect.signature(gate.prepare).parameters
        except (TypeError, ValueError):  # pragma: no cover - exotic callables
            params = {}
        if "n_outputs" in params:
            return gate.prepare(Z, sample_weight, n_outputs=n_outputs)
    return gate.prepare(Z, sample_weight)


def supports_gradient(gate):
    """Whether ``gate`` can be moved by the gradient solver (``solver="gd"``).

    A gate supports it when it has ``sgd_parameters`` and ``sgd_gradient``
    and does not declare ``supports_gradient = False``.
    """
    return (
        hasattr(gate, "sgd_parameters")
        and hasattr(gate, "sgd_gradient")
        and bool(getattr(gate, "supports_gradient", True))
    )
