"""Array API inputs (PyTorch, CuPy, array-api-strict) under scikit-learn's dispatch.

With ``sklearn.config_context(array_api_dispatch=True)`` and an ``X`` that is
not a NumPy array, a regressor with linear Gaussian experts
(:class:`~sklearn.linear_model.LinearRegression`,
:class:`~sklearn.linear_model.Ridge`, :class:`~skmoe.StandardizedRidge`) or
a classifier with :class:`~sklearn.linear_model.LogisticRegression` experts,
and a :class:`~skmoe.SoftmaxGate`, is fitted in the input's namespace, on its
device and in its dtype: nothing of size ``n`` is copied to the host except
the initial responsibilities of ``init="random"`` (drawn with NumPy from
``random_state``, then moved once to the device).

The EM loop is the engine's own (:func:`skmoe._em.run_em`): this module
provides the namespace-generic form of the chunked passes of
:mod:`skmoe._chunked` -- the same sufficient statistics (per expert, the
weighted moments of ``[x - c_x, y - c_y, 1]``), the experts' weighted normal
equations solved from them, the gate's damped Newton steps (the steps of
:mod:`skmoe._gating`'s Newton solver), and the fused E-step -- as the object
``ArrayAPIPasses``, which :func:`skmoe._em._iteration` uses in place of
:mod:`skmoe._chunked` when the data carry a namespace. The classifier's
``LogisticPasses`` replace the experts' M-step by the Newton steps of
:func:`skmoe._linear.fit_logistic_experts` (they read ``X``: no moments)
and the E-step by the experts' log class probabilities.

The namespace comes from :func:`array_api_compat.array_namespace`, through
the copy that scikit-learn vendors (``sklearn.externals.array_api_compat``):
scikit-learn 1.9 exposes its own array API helpers only in the private
``sklearn.utils._array_api``.
"""

import copy
import math

import numpy as np
import scipy.sparse as sp
import sklearn

try:  # the copy scikit-learn vendors (1.6 and later), else the package
    from sklearn.externals import array_api_compat
except ImportError:  # pragma: no cover - older scikit-learn
    try:
        import array_api_compat
    except ImportError:
        array_api_compat = None
from sklearn.linear_model import LinearRegression, Ridge

from . import _linear
from ._experts import EMPTY_EXPERT_SHARE
from ._gating import SoftmaxGate
from ._ridge import StandardizedRidge

#: Rows per chunk of every pass (bounds the temporaries on the device).
CHUNK_ROWS = 1 << 18

#: ``init`` values supported under array API dispatch (and an array).
SUPPORTED_INIT = ("auto", "random")


# ----------------------------------------------------------------------
# Namespaces and conversions
# ----------------------------------------------------------------------
def namespace(*arrays):
    """The array API namespace of ``arrays`` when dispatch is on and they are
    not NumPy arrays; None otherwise (the NumPy path, as without dispatch)."""
    dispatch = sklearn.get_config().get("array_api_dispatch", False)
    if array_api_compat is None or not dispatch:
        return None
    objs = [
        a for a in arrays
        if a is not None and not sp.issparse(a) and array_api_compat.is_array_api_obj(a)
    ]
    if not objs:
        return None
    xp = array_api_compat.array_namespace(*objs)
    if array_api_compat.is_numpy_namespace(xp):
        return None
    return xp


def fitted_namespace(estimator):
    """The namespace of a mixture's fitted arrays (None: NumPy, or not fitted)."""
    usage = estimator.__dict__.get("expert_usage_")
    if usage is None or isinstance(usage, np.ndarray) or array_api_compat is None:
        return None
    return array_api_compat.array_namespace(usage)


def to_numpy_array(a):
    """A NumPy copy of the array API array ``a`` (from any device)."""
    if isinstance(a, np.ndarray):
        return a.copy()
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if hasattr(a, "cpu") and hasattr(a, "detach"):  # PyTorch
        return a.detach().cpu().numpy().copy()
    return np.array(np.from_dlpack(a), copy=True)


def _convert(value, memo):
    """``value`` with every array API array in it (attributes of estimators,
    lists, tuples, dicts) replaced by a NumPy copy."""
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, (np.ndarray, str, bytes, int, float, bool, type(None))):
        return value
    if array_api_compat.is_array_api_obj(value) and not sp.issparse(value):
        out = to_numpy_array(value)
        if out.ndim == 0:
            out = out[()]
    elif isinstance(value, list):
        out = [_convert(v, memo) for v in value]
    elif isinstance(value, tuple) and not hasattr(value, "_fields"):
        out = tuple(_convert(v, memo) for v in value)
    elif isinstance(value, dict):
        out = {k: _convert(v, memo) for k, v in value.items()}
    elif hasattr(value, "__dict__") and type(value).__module__.startswith(
        ("skmoe.", "sklearn.")
    ):
        out = copy.copy(value)
        memo[id(value)] = out
        for name, attr in vars(value).items():
            setattr(out, name, _convert(attr, memo))
        return out
    else:
        out = value
    memo[id(value)] = out
    return out


def to_numpy(estimator):
    """A copy of a fitted mixture with NumPy arrays for every fitted attribute.

    A mixture fitted under ``sklearn.config_context(array_api_dispatch=True)``
    on PyTorch, CuPy or array-api-strict arrays keeps its fitted attributes
    in that namespace and on that device (as scikit-learn's array API
    estimators do). This returns an equivalent mixture on the CPU: the same
    parameters as NumPy arrays (copied from the device), predicting as the
    device model does, without dispatch.

    Parameters
    ----------
    estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
        A fitted mixture (one fitted on NumPy arrays is copied as it is).

    Returns
    -------
    estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
        A new fitted mixture whose arrays are NumPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor, to_numpy
    >>> X = np.linspace(-3, 3, 200)[:, None]
    >>> y = np.abs(X[:, 0])
    >>> cpu = to_numpy(MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y))
    >>> cpu.predict(X[:2]).shape
    (2,)
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    return _convert(estimator, {})


def check_X(estimator, xp, X, y=None):
    """``X`` (and ``y``) for a mixture fitted in the namespace ``xp``: arrays
    of that namespace, under dispatch, cast to the fitted dtype."""
    from sklearn.utils.validation import check_is_fitted, validate_data

    check_is_fitted(estimator)
    if namespace(X) is not xp:
        raise TypeError(
            f"This {type(estimator).__name__} was fitted on {xp.__name__} arrays "
            "under array_api_dispatch=True: pass arrays of that namespace under "
            "sklearn.config_context(array_api_dispatch=True), or get a NumPy "
            "model with skmoe.to_numpy(estimator)."
        )
    X = validate_data(estimator, X, dtype=None, reset=False)
    dtype = estimator.expert_usage_.dtype
    X = xp.astype(X, dtype)
    if y is not None:
        from sklearn.base import is_classifier

        y = xp.asarray(y, device=array_api_compat.device(X))
        if not is_classifier(estimator):
            y = xp.astype(y, dtype)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y has shape {tuple(y.shape)}; expected ({X.shape[0]},).")
    return X, y


def refuse_fitted_namespace(estimator, X=None):
    """The NumPy code paths of a mixture fitted on array API inputs, or of a
    NumPy mixture given array API inputs under dispatch: a clear error."""
    foreign = X is not None and namespace(X) is not None
    if foreign and fitted_namespace(estimator) is None:
        raise TypeError(
            f"This {type(estimator).__name__} was fitted on NumPy arrays: pass "
            "NumPy arrays (it does not move a model to a device; fit it on the "
            "device's arrays under array_api_dispatch=True instead)."
        )
    xp = fitted_namespace(estimator)
    if xp is not None:
        raise TypeError(
            f"This {type(estimator).__name__} was fitted on {xp.__name__} arrays "
            "under array_api_dispatch=True; this method runs on NumPy arrays "
            "only (predict, log_prob, responsibilities and score run in the "
            "namespace). Use skmoe.to_numpy(estimator) for a NumPy model."
        )


# ----------------------------------------------------------------------
# What the array API path supports
# ----------------------------------------------------------------------
def unsupported(what):
    return ValueError(
        f"{what} is not supported under array_api_dispatch=True with non-NumPy "
        "inputs (skmoe never copies the data to the CPU silently); pass NumPy "
        "arrays, or see the user guide's 'GPU and the array API' section for "
        "what runs in the array's namespace."
    )


def check_supported(estimator, prototypes, gate, sample_weight):
    """Raise a clear error for any setting the array API path cannot run."""
    from sklearn.base import is_classifier

    from ._likelihood import GaussianLikelihood

    from ._likelihood import CategoricalLikelihood

    classifier = is_classifier(estimator)
    likelihood = CategoricalLikelihood if classifier else GaussianLikelihood
    checks = [
        (estimator.solver == "em", f"solver={estimator.solver!r}"),
        (estimator.assignment == "soft", f"assignment={estimator.assignment!r}"),
        (estimator.top_k is None, f"top_k={estimator.top_k!r}"),
        (estimator.gate_features is None, "gate_features"),
        (not estimator.warm_start, "warm_start=True"),
        (estimator.n_jobs in (None, 1), f"n_jobs={estimator.n_jobs!r}"),
        (
            not isinstance(estimator.init, str) or estimator.init in SUPPORTED_INIT,
            f"init={estimator.init!r} (use init='auto', init='random' or an array "
            "of initial responsibilities)",
        ),
        (type(gate) is SoftmaxGate, f"the gate {type(gate).__name__}"),
        (
            type(gate) is not SoftmaxGate or float(gate.balance) == 0.0,
            "SoftmaxGate(balance > 0)",
        ),
        (
            type(estimator._make_likelihood()) is likelihood,
            f"likelihood={getattr(estimator, 'likelihood', None)!r}",
        ),
    ]
    for ok, what in checks:
        if not ok:
            raise unsupported(what)
    if classifier:
        for k, p in enumerate(prototypes):
            if not _linear.batchable_logistic(p):
                raise unsupported(
                    f"Expert {k} ({type(p).__name__}; the supported experts are "
                    "LogisticRegression with an L2 penalty or none, no "
                    "class_weight, dual=False)"
                )
        return
    for k, p in enumerate(prototypes):
        if type(p) not in (LinearRegression, Ridge, StandardizedRidge) or not (
            _linear.batchable(p)
        ):
            raise unsupported(
                f"Expert {k} ({type(p).__name__}; the supported experts are "
                "LinearRegression, Ridge with solver 'auto'/'cholesky'/'svd' and "
                "StandardizedRidge)"
            )


# ----------------------------------------------------------------------
# Chunked statistics
# ----------------------------------------------------------------------
def _chunks(n):
    for c0 in range(0, n, CHUNK_ROWS):
        yield c0, min(c0 + CHUNK_ROWS, n)


def weighted_standardization(xp, Z, sw, total):
    """Weighted column means and scales of ``Z`` (the gate's and the
    StandardizedRidge's rule, :func:`skmoe._gating._weighted_standardization`),
    the variance taken about the mean (no cancellation)."""
    mean = sw @ Z / total
    var = xp.zeros_like(mean)
    for c0, c1 in _chunks(Z.shape[0]):
        D = Z[c0:c1, :] - mean
        var = var + sw[c0:c1] @ (D * D)
    var = var / total
    scale = xp.sqrt(xp.clip(var, min=0.0))
    tiny = 1e-12 * xp.clip(xp.abs(mean), min=1.0)
    scale = xp.where(scale <= tiny, xp.ones_like(scale), scale)
    return mean, scale


class ArrayStats:
    """The weighted moments ``(K, m, m)`` of every expert about ``shift``."""

    def __init__(self, S, shift):
        self.S = S
        self.shift = shift


def _shifted(xp, X, y, shift, c0, c1):
    d = X.shape[1]
    ones = xp.ones((c1 - c0, 1), dtype=X.dtype, device=array_api_compat.device(X))
    return xp.concat(
        [X[c0:c1, :] - shift[:d], xp.reshape(y[c0:c1] - shift[d], (-1, 1)), ones],
        axis=1,
    )


def _moments(xp, A, W):
    """``(K, m, m)``: ``A^T diag(W[:, k]) A`` for every column ``k`` of ``W``."""
    return xp.stack([A.T @ (A * W[:, k : k + 1]) for k in range(W.shape[1])])


def _shift(xp, data):
    shift = getattr(data, "_chunked_shift", None)
    if shift is None:
        sw = data.sample_weight
        y_mean = xp.reshape(sw @ data.y / data.total, (1,))
        shift = xp.concat([sw @ data.X / data.total, y_mean])
        data._chunked_shift = shift
    return shift


# ----------------------------------------------------------------------
# The M-steps
# ----------------------------------------------------------------------
def _outer(xp, a, b):
    return xp.reshape(a, (-1, 1)) * xp.reshape(b, (1, -1))


def _diag(xp, A):
    """Diagonals of the stacked matrices ``A`` ``(K, d, d)``: ``(K, d)``."""
    d = A.shape[-1]
    eye = xp.eye(d, dtype=A.dtype, device=array_api_compat.device(A))
    return xp.sum(A * eye, axis=-1)


def _penalty_diag(xp, expert, d, like):
    """The diagonal the expert's penalty adds to its normal equations (None: none)."""
    if type(expert) is Ridge:
        return xp.full(
            (d,), float(expert.alpha), dtype=like.dtype,
            device=array_api_compat.device(like),
        )
    if type(expert) is StandardizedRidge:
        scale = expert.scale
        return float(expert.alpha) * scale * scale
    return None


def max_condition(dtype, xp):
    """The largest condition number of the column-scaled normal equations
    solved in the namespace: the NumPy path's ``_MAX_COND`` (above which it
    calls the expert's own least squares instead, more accurate there), or
    ``1e-4 / eps`` of the dtype when larger -- the solution then loses at
    most about ``cond * eps`` relative (up to 4.5e11 in float64)."""
    return max(_linear._MAX_COND, 1e-4 / float(xp.finfo(dtype).eps))


def solve_experts(xp, experts, S, shift, total):
    """The experts' coefficients from the moments ``S`` (the normal equations
    of :func:`skmoe._linear.solve_linear_experts`, in the namespace); sets
    their fitted attributes. Raises for an empty or ill-conditioned expert."""
    K, m, _ = S.shape
    d = m - 2
    wsum = S[:, d + 1, d + 1]
    wsum_host = [float(w) for w in wsum]
    for k, w in enumerate(wsum_host):
        if not w > EMPTY_EXPERT_SHARE * total:
            raise ValueError(
                f"Expert {k} owns no training weight: an empty (collapsed) expert "
                "is not supported under array API dispatch (collapse repair runs "
                "on NumPy arrays only); use fewer experts or another random_state."
            )
    grams, means = [], []
    for k, expert in enumerate(experts):
        S11 = S[k, : d + 1, : d + 1]
        sums = S[k, : d + 1, d + 1]
        if expert.fit_intercept:
            mt = sums / wsum[k]
            grams.append(S11 - wsum[k] * _outer(xp, mt, mt))
            means.append(mt + shift)
        else:
            g = S11 + _outer(xp, shift, sums) + _outer(xp, sums, shift)
            grams.append(g + wsum[k] * _outer(xp, shift, shift))
            means.append(xp.zeros_like(shift))
    gram = xp.stack(grams)
    A = gram[:, :d, :d]
    rhs = gram[:, :d, d]
    eye = xp.eye(d, dtype=S.dtype, device=array_api_compat.device(S))
    pen = []
    for k, expert in enumerate(experts):
        p = _penalty_diag(xp, expert, d, S)
        if p is None:
            p = xp.zeros((d,), dtype=S.dtype, device=array_api_compat.device(S))
        pen.append(p)
    A = A + xp.stack(pen)[:, None, :] * eye
    diag = xp.sqrt(xp.clip(_diag(xp, A), min=0.0))
    if not bool(xp.all(diag > 0.0)):
        raise unsupported(
            "An expert with a constant column on its rows (a singular system)"
        )
    As = A / diag[:, :, None] / diag[:, None, :]
    vals, vecs = xp.linalg.eigh(As)
    if not bool(xp.all(vals[:, 0] > 0.0)) or not bool(
        xp.all(vals[:, -1] <= max_condition(S.dtype, xp) * vals[:, 0])
    ):
        raise unsupported(
            "An expert whose normal equations are too ill-conditioned for "
            f"{S.dtype} (collinear columns on its rows; float64 or Ridge experts "
            "help)"
        )
    t = xp.sum(vecs * (rhs / diag)[:, :, None], axis=1) / vals  # vecs^T (rhs / diag)
    coef = xp.sum(vecs * t[:, None, :], axis=2) / diag
    means = xp.stack(means)
    for k, expert in enumerate(experts):
        c = coef[k, :]
        expert.n_features_in_ = d
        expert.coef_ = c
        if expert.fit_intercept:
            expert.intercept_ = means[k, d] - xp.sum(means[k, :d] * c)
        else:
            expert.intercept_ = 0.0
        if type(expert) is StandardizedRidge:
            expert.scale_ = expert.scale
        elif type(expert) is Ridge:
            expert.n_iter_ = None
            expert.solver_ = "svd" if expert.solver == "svd" else "cholesky"
        else:
            expert.rank_ = d
            ev = xp.linalg.eigvalsh(gram[k, :d, :d])
            expert.singular_ = xp.flip(xp.sqrt(xp.clip(ev, min=0.0)))
    return wsum


def _intercept(xp, expert, like):
    b = expert.intercept_
    if isinstance(b, float):
        return xp.asarray(b, dtype=like.dtype, device=array_api_compat.device(like))
    return b


def variances(xp, experts, S, shift, likelihood, wsum):
    """Noise variances: ``u^T S_k u / wsum_k`` (floored), ``u`` the residual map."""
    m = S.shape[1]
    d = m - 2
    rss = []
    for k, expert in enumerate(experts):
        c = expert.coef_
        b = _intercept(xp, expert, S)
        last = shift[d] - xp.sum(shift[:d] * c) - b
        one = xp.ones((1,), dtype=S.dtype, device=array_api_compat.device(S))
        u = xp.concat([-c, one, xp.reshape(last, (1,))])
        rss.append(xp.clip(xp.sum(u * (S[k, ...] @ u)), min=0.0))
    variance = xp.stack(rss) / wsum
    return xp.clip(variance, min=float(likelihood.variance_floor_))


# ----------------------------------------------------------------------
# The gate (Newton's steps of skmoe._gating._newton, in the namespace)
# ----------------------------------------------------------------------
def _gate_objective(xp, x, Z, R, sw, mean, scale, alpha, total, K):
    """:func:`skmoe._gating._gate_objective` (no balance) for ``x``."""
    d = Z.shape[1]
    W_s = xp.reshape(x[: d * K], (d, K))
    b_s = x[d * K :]
    W = W_s / scale[:, None]
    b = b_s - mean @ W
    loss = 0.0
    g_sum = xp.zeros((K,), dtype=Z.dtype, device=array_api_compat.device(Z))
    ZtG = xp.zeros((d, K), dtype=Z.dtype, device=array_api_compat.device(Z))
    for c0, c1 in _chunks(Z.shape[0]):
        Zc = Z[c0:c1, :]
        logits = Zc @ W + b
        lse = _logsumexp(xp, logits)
        Rc = R[c0:c1, :]
        w = sw[c0:c1]
        tsum = xp.sum(Rc, axis=1)
        loss = loss + xp.sum(w * xp.sum(Rc * (lse[:, None] - logits), axis=1))
        G = w[:, None] * (tsum[:, None] * xp.exp(logits - lse[:, None]) - Rc)
        g_sum = g_sum + xp.sum(G, axis=0)
        ZtG = ZtG + Zc.T @ G
    grad_W = (ZtG - _outer(xp, mean, g_sum)) / scale[:, None]
    loss = loss + 0.5 * alpha * xp.sum(W_s * W_s)
    grad_W = grad_W + alpha * W_s
    grad = xp.concat([xp.reshape(grad_W, (-1,)), g_sum])
    return float(loss) / total, grad / total


def _gate_hessian(xp, x, Z, R, sw, mean, scale, alpha, total, K):
    """:func:`skmoe._gating._gate_hessian` in the namespace."""
    n, d = Z.shape
    dev = array_api_compat.device(Z)
    W = xp.reshape(x[: d * K], (d, K)) / scale[:, None]
    b = x[d * K :] - mean @ W
    B = [[None] * K for _ in range(K)]
    blocks = {}
    for c0, c1 in _chunks(n):
        Zc = Z[c0:c1, :]
        logits = Zc @ W + b
        P = xp.exp(logits - _logsumexp(xp, logits)[:, None])
        q = sw[c0:c1] * xp.sum(R[c0:c1, :], axis=1)
        V = xp.concat([Zc, xp.ones((c1 - c0, 1), dtype=Z.dtype, device=dev)], axis=1)
        for k in range(K):
            for l in range(k, K):
                c = -q * P[:, k] * P[:, l]
                if k == l:
                    c = c + q * P[:, k]
                blk = V.T @ (V * c[:, None])
                blocks[k, l] = blk if (k, l) not in blocks else blocks[k, l] + blk
    # A: the standardisation of [z, 1].
    inv = 1.0 / scale
    top = xp.concat([xp.eye(d, dtype=Z.dtype, device=dev) * inv[None, :],
                     xp.reshape(-mean * inv, (-1, 1))], axis=1)
    last = xp.concat([xp.zeros((1, d), dtype=Z.dtype, device=dev),
                      xp.ones((1, 1), dtype=Z.dtype, device=dev)], axis=1)
    A = xp.concat([top, last], axis=0)
    for (k, l), blk in blocks.items():
        B[k][l] = A @ blk @ A.T
        B[l][k] = B[k][l].T if k != l else B[k][l]
    # (class, class, feature, feature) -> the parameters' (feature, class) order.
    H4 = xp.stack([xp.stack(row) for row in B])  # (K, K, d + 1, d + 1)
    H = xp.reshape(xp.permute_dims(H4, (2, 0, 3, 1)), (K * (d + 1), K * (d + 1)))
    pen = xp.concat([
        xp.full((d * K,), alpha, dtype=Z.dtype, device=dev),
        xp.zeros((K,), dtype=Z.dtype, device=dev),
    ])
    H = H + xp.eye(K * (d + 1), dtype=Z.dtype, device=dev) * pen
    return H / total


def _newton(xp, x, args, max_iter, gtol, ftol=1e-12):
    """Damped Newton (backtracking line search, pseudo-inverse of the
    Hessian), as :func:`skmoe._gating._newton`; returns ``(x, f, n_iter)``
    (the last accepted point when a step fails to decrease)."""
    f, g = _gate_objective(xp, x, *args)
    for it in range(max_iter):
        if float(xp.max(xp.abs(g))) <= gtol:
            return x, f, it
        vals, vecs = xp.linalg.eigh(_gate_hessian(xp, x, *args))
        top = max(float(vals[-1]), 1e-300)
        keep = vals > 1e-10 * top
        safe = xp.where(keep, vals, xp.ones_like(vals))
        inv = xp.where(keep, 1.0 / safe, xp.zeros_like(vals))
        step = -(vecs @ ((vecs.T @ g) * inv))
        slope = float(xp.sum(g * step))
        if not slope < 0.0:
            return x, f, it
        t = 1.0
        while True:
            f_new, g_new = _gate_objective(xp, x + t * step, *args)
            if f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-10:
                return x, f, it
        x = x + t * step
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        f, g = f_new, g_new
        if decrease <= ftol:
            return x, f, it + 1
    return x, f, max_iter


def prepare_gate(xp, gate, Z, sw, total):
    """The gate's standardisation statistics, in the namespace."""
    gate._validate_params()
    gate._sgd = None
    gate._standardization = weighted_standardization(xp, Z, sw, total)
    return gate


def fit_gate(xp, gate, Z, R, sw, total, gate_max_iter):
    """The gate's M-step: Newton's steps from its current coefficients."""
    mean, scale = gate._standardization
    d = Z.shape[1]
    K = R.shape[1]
    coef = getattr(gate, "coef_", None)
    if coef is not None and tuple(coef.shape) == (K, d):
        W_s = coef.T * scale[:, None]
        b_s = gate.intercept_ + mean @ coef.T
        x0 = xp.concat([xp.reshape(W_s, (-1,)), b_s])
    else:
        freq = sw @ R / total
        x0 = xp.concat([
            xp.zeros((d * K,), dtype=Z.dtype, device=array_api_compat.device(Z)),
            xp.log(xp.clip(freq, min=1e-12)),
        ])
    if gate_max_iter is None:
        n_newton = gate.max_iter
    elif gate_max_iter == "auto":
        n_newton = 1
    else:
        n_newton = min(int(gate_max_iter), gate.max_iter)
    args = (Z, R, sw, mean, scale, float(gate.alpha), total, K)
    x, f, nit = _newton(xp, x0, args, n_newton, gate.tol)
    W_s = xp.reshape(x[: d * K], (d, K))
    W = W_s / scale[:, None]
    gate.coef_ = W.T
    gate.intercept_ = x[d * K :] - mean @ W
    gate.n_classes_ = gate.n_outputs_ = K
    gate.classes_ = np.arange(K)
    gate.n_features_in_ = d
    gate.objective_ = f
    gate.n_iter_ = int(nit)
    gate._penalty = 0.5 * float(gate.alpha) * float(xp.sum(W_s * W_s))
    return gate


# ----------------------------------------------------------------------
# E-step
# ----------------------------------------------------------------------
def _logsumexp(xp, a):
    amax = xp.max(a, axis=1)
    return amax + xp.log(xp.sum(xp.exp(a - amax[:, None]), axis=1))


def gate_log_proba(xp, gate, Z):
    logits = Z @ gate.coef_.T + gate.intercept_
    return logits - _logsumexp(xp, logits)[:, None]


def expert_matrix(xp, experts, like):
    """``(d, K)`` coefficients and ``(K,)`` intercepts of the linear experts."""
    coef = xp.stack([e.coef_ for e in experts], axis=1)
    icpt = xp.stack([_intercept(xp, e, like) for e in experts])
    return coef, icpt


def log_lik_chunk(xp, X, y, coef, icpt, var):
    """Gaussian log-likelihoods ``(r, K)`` of rows ``X``."""
    pred = X @ coef + icpt
    r = y[:, None] - pred
    return -0.5 * (math.log(2.0 * math.pi) + xp.log(var)) - (0.5 / var) * r * r


def posterior(xp, estimator, X, y):
    """``(resp, log_norm)`` of a fitted mixture on ``(X, y)`` (any rows)."""
    coef, icpt = expert_matrix(xp, estimator.experts_, X)
    var = estimator.noise_variance_
    out_r, out_n = [], []
    for c0, c1 in _chunks(X.shape[0]):
        t = gate_log_proba(xp, estimator.gate_, X[c0:c1, :]) + log_lik_chunk(
            xp, X[c0:c1, :], y[c0:c1], coef, icpt, var
        )
        log_norm = _logsumexp(xp, t)
        out_r.append(xp.exp(t - log_norm[:, None]))
        out_n.append(log_norm)
    return xp.concat(out_r, axis=0), xp.concat(out_n, axis=0)


def predict(xp, estimator, X):
    """The mixture's mean prediction ``sum_k pi_k(x) f_k(x)``."""
    coef, icpt = expert_matrix(xp, estimator.experts_, X)
    out = []
    for c0, c1 in _chunks(X.shape[0]):
        Xc = X[c0:c1, :]
        gate = xp.exp(gate_log_proba(xp, estimator.gate_, Xc))
        out.append(xp.sum(gate * (Xc @ coef + icpt), axis=1))
    return xp.concat(out, axis=0)


class ArrayAPIPasses:
    """The chunked passes of :mod:`skmoe._chunked`, in the namespace ``xp``:
    what :func:`skmoe._em._chunked_iteration` calls."""

    def __init__(self, xp):
        self.xp = xp

    def stats_pass(self, data, resp):
        xp = self.xp
        shift = _shift(xp, data)
        S = None
        for c0, c1 in _chunks(data.X.shape[0]):
            A = _shifted(xp, data.X, data.y, shift, c0, c1)
            part = _moments(xp, A, resp[c0:c1, :] * data.sample_weight[c0:c1, None])
            S = part if S is None else S + part
        return ArrayStats(S, shift)

    def m_step(self, data, state, stats, resp, keep_empty):
        xp = self.xp
        wsum = solve_experts(xp, state.experts, stats.S, stats.shift, data.total)
        state.theta = variances(
            xp, state.experts, stats.S, stats.shift, data.likelihood, wsum
        )
        return True

    def m_step_gate(self, data, state, resp, max_iter):
        fit_gate(
            self.xp, state.gate, data.Z, resp, data.sample_weight, data.total, max_iter
        )

    def e_pass(self, data, state, out=None):
        xp = self.xp
        shift = _shift(xp, data)
        coef, icpt = expert_matrix(xp, state.experts, data.X)
        var = state.theta
        X, y, sw = data.X, data.y, data.sample_weight
        resp, S, ll = [], None, 0.0
        for c0, c1 in _chunks(X.shape[0]):
            Xc = X[c0:c1, :]
            t = gate_log_proba(xp, state.gate, data.Z[c0:c1, :]) + log_lik_chunk(
                xp, Xc, y[c0:c1], coef, icpt, var
            )
            log_norm = _logsumexp(xp, t)
            R = xp.exp(t - log_norm[:, None])
            w = sw[c0:c1]
            ll = ll + xp.sum(w * log_norm)
            A = _shifted(xp, X, y, shift, c0, c1)
            part = _moments(xp, A, R * w[:, None])
            S = part if S is None else S + part
            resp.append(R)
        resp = xp.concat(resp, axis=0)
        return resp, ArrayStats(S, shift), float(ll) / data.total

    def same_experts(self, state):
        """Whether every expert is the same model (``indistinct``)."""
        xp = self.xp
        if len(state.experts) < 2:
            return False

        def params(k):
            e = state.experts[k]
            return xp.concat([
                xp.reshape(e.coef_, (-1,)),
                xp.reshape(_intercept(xp, e, state.theta), (1,)),
                state.theta[k : k + 1],
            ])

        first = params(0)
        scale = 1.0 + float(xp.max(xp.abs(first)))
        return all(
            float(xp.max(xp.abs(params(k) - first))) <= 1e-12 * scale
            for k in range(1, len(state.experts))
        )


# ----------------------------------------------------------------------
# The fit
# ----------------------------------------------------------------------
def _check_inputs(estimator, xp, X, y, sample_weight):
    """Validated ``(X, y, sample_weight)`` in the namespace of ``X``."""
    from sklearn.utils.validation import validate_data

    if y is None:
        raise ValueError(
            f"{type(estimator).__name__} requires y to be passed, but the target "
            "y is None."
        )
    from sklearn.base import is_classifier

    classifier = is_classifier(estimator)
    X, y = validate_data(
        estimator, X, y, dtype=None, y_numeric=not classifier, reset=True
    )
    if X.dtype not in (xp.float64, xp.float32):
        X = xp.astype(X, xp.float64)
    if y.ndim != 1:
        raise unsupported("A 2-D y (several outputs)")
    if not classifier:
        y = xp.astype(y, X.dtype)
    dev = array_api_compat.device(X)
    if sample_weight is None:
        sw = xp.ones((X.shape[0],), dtype=X.dtype, device=dev)
    else:
        if namespace(sample_weight) is not xp and not isinstance(sample_weight, float):
            raise unsupported("A sample_weight in another namespace than X")
        sw = xp.astype(xp.asarray(sample_weight, device=dev), X.dtype)
        if sw.ndim == 0:
            sw = xp.full((X.shape[0],), float(sw), dtype=X.dtype, device=dev)
        if sw.shape != (X.shape[0],):
            raise ValueError(
                f"sample_weight has shape {tuple(sw.shape)}; expected ({X.shape[0]},)."
            )
        if not bool(xp.all(xp.isfinite(sw))) or bool(xp.any(sw < 0)):
            raise ValueError("sample_weight must be finite and non-negative.")
        if not float(xp.sum(sw)) > 0:
            raise ValueError("sample_weight must have a positive sum.")
    return X, y, sw


def _initial_resp(estimator, xp, X, n_experts, rng, i_init):
    """The initial responsibilities: drawn on the host (``init="random"``) or
    given, then moved once to the device of ``X``."""
    from ._init import initial_responsibilities

    init = estimator.init
    if not isinstance(init, str) and namespace(init) is xp:
        init = to_numpy_array(init)
    resp = initial_responsibilities(
        init, None, X, None, None, n_experts, rng, i_init
    )
    return xp.asarray(resp, dtype=X.dtype, device=array_api_compat.device(X))


def _variance_floor(xp, likelihood, y, sw, total):
    """The Gaussian likelihood's floor: ``reg_variance`` times the weighted
    variance of ``y`` (:meth:`GaussianLikelihood.validate_targets`)."""
    if not bool(xp.all(xp.isfinite(y))):
        raise ValueError("Input y contains NaN or infinity.")
    mean_y = float(sw @ y) / total
    var_y = float(sw @ ((y - mean_y) ** 2)) / total
    if not var_y > 0:
        var_y = max(mean_y * mean_y, 1.0)
    likelihood.variance_floor_ = likelihood.reg_variance * var_y
    likelihood.target_variance_ = var_y


def _classifier_passes(xp, likelihood, y, sw):
    """The classes (in the namespace of ``y``), the encoded and one-hot
    targets, in the passes of a classifier's fit."""
    classes = xp.unique_values(y)
    if classes.shape[0] < 2:
        raise ValueError(
            "MixtureOfExpertsClassifier needs samples of at least 2 classes; got "
            f"{classes.shape[0]} class."
        )
    yenc = xp.searchsorted(classes, y)
    dev = array_api_compat.device(sw)
    Y = xp.astype(
        xp.reshape(yenc, (-1, 1))
        == xp.reshape(xp.arange(classes.shape[0], device=dev), (1, -1)),
        sw.dtype,
    )
    present = xp.sum(xp.astype(xp.sum(Y * sw[:, None], axis=0) > 0, xp.int64))
    if int(present) < 2:
        raise ValueError(
            "MixtureOfExpertsClassifier needs samples of at least 2 classes "
            "(with positive sample_weight)."
        )
    likelihood.classes_ = classes
    return LogisticPasses(xp, classes, yenc, Y)


def fit(estimator, X, y, sample_weight, xp):
    """:meth:`fit` of a mixture on array API inputs, in their namespace."""
    import time

    from sklearn.base import is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils import check_random_state

    from . import _gather
    from ._em import EMConfig, EMData, EMState, run_em
    from ._experts import make_experts
    from ._ridge import with_data_scale

    t_start = time.perf_counter()
    if estimator.__dict__.get("_frame_template") is not None:
        del estimator._frame_template
    prototypes = estimator._expert_prototypes()
    gate = estimator._new_gate()
    check_supported(estimator, prototypes, gate, sample_weight)
    X, y, sw = _check_inputs(estimator, xp, X, y, sample_weight)
    likelihood = estimator._make_likelihood()
    if is_classifier(estimator):
        passes = _classifier_passes(xp, likelihood, y, sw)
    else:
        passes = ArrayAPIPasses(xp)
    data = EMData(X, y, sw, X, likelihood, passes=passes)
    if X.shape[0] < len(prototypes):
        raise ValueError(
            f"Expected n_samples >= n_experts, got n_samples={X.shape[0]} and "
            f"n_experts={len(prototypes)}."
        )
    if not is_classifier(estimator):
        _variance_floor(xp, likelihood, y, sw, data.total)
    mean, scale = weighted_standardization(xp, X, sw, data.total)
    if any(type(p) is StandardizedRidge and p.scale is None for p in prototypes):
        prototypes = with_data_scale(prototypes, scale)
    gate = prepare_gate(xp, gate, X, sw, data.total)
    gate._standardization = (mean, scale)
    rng = check_random_state(estimator.random_state)
    config = EMConfig.from_estimator(estimator)
    n = len(prototypes)
    seeds = (
        [None] if estimator.n_init == 1
        else rng.randint(np.iinfo(np.int32).max, size=estimator.n_init)
    )
    best = None
    with _gather.gathered():
        for i_init, seed in enumerate(seeds):
            r = rng if seed is None else np.random.RandomState(seed)
            if isinstance(estimator.init, str) and estimator.init == "auto":
                result = run_pool(
                    xp, data, prototypes, gate, config, r, estimator._init_pool
                )
            else:
                state = EMState(make_experts(prototypes, r), copy.deepcopy(gate))
                resp = [_initial_resp(estimator, xp, X, n, r, i_init)]
                result = run_em(data, state, config, r, resp)
            if best is None or result.objective > best.objective:
                best = result
        if not best.converged:
            from ._base import _convergence_message

            _gather.warn(_convergence_message(estimator), ConvergenceWarning)
        _warn_collapsed(best, estimator.min_expert_weight)
    _set_fitted(estimator, best, data, xp, t_start)
    return estimator


def _warn_collapsed(result, min_expert_weight):
    """Warn about the experts below ``min_expert_weight`` (no collapse repair
    runs in the namespace; reads the ``n_experts`` shares only)."""
    from . import _gather

    usage = [float(u) for u in result.usage]
    if len(usage) < 2:
        return
    for k, share in enumerate(usage):
        if share < min_expert_weight:
            _gather.warn(
                f"Expert {k} holds only {share:.3g} of the training weight after "
                f"fitting, below min_expert_weight={min_expert_weight}; collapse "
                "repair does not run under array API dispatch (it does on NumPy "
                "arrays); consider fewer experts or another random_state.",
                UserWarning, stacklevel=4,
            )


def _set_fitted(estimator, result, data, xp, t_start):
    """The fitted attributes of an array API fit (arrays in ``xp``)."""
    import time

    from ._frames import GateInput

    state = result.state
    dev = array_api_compat.device(data.X)
    estimator.experts_ = state.experts
    estimator.gate_ = state.gate
    estimator._gate_in = GateInput(None, None)
    estimator.gate_features_ = None
    estimator._gate_width = data.X.shape[1]
    estimator.n_experts_ = len(state.experts)
    estimator._likelihood = data.likelihood
    estimator.__dict__.update(
        estimator._likelihood_attributes(data.likelihood, state.theta)
    )
    estimator.converged_ = result.converged
    estimator.n_iter_ = result.n_iter
    estimator.log_likelihood_history_ = xp.asarray(
        result.history, dtype=data.X.dtype, device=dev
    )
    estimator.log_likelihood_ = float(result.log_likelihood)
    estimator.expert_usage_ = result.usage
    estimator.repairs_ = []
    estimator.init_objectives_ = getattr(result, "init_objectives", None)
    estimator.init_candidates_ = getattr(result, "candidates", None)
    estimator.degenerate_experts_ = degenerate(result, data)
    estimator.fit_time_ = time.perf_counter() - t_start


# ----------------------------------------------------------------------
# The classifier: LogisticRegression experts by Newton's method
# (skmoe._linear.fit_logistic_experts, in the namespace)
# ----------------------------------------------------------------------
class _Logit:
    """One logistic expert's problem (``skmoe._linear._LogitModel``): its
    weights (zero on the rows of unseen classes), which logits are masked
    and which parameters Newton moves."""

    def __init__(self, xp, expert, Xa, Y, w):
        n_classes = Y.shape[1]
        dev = array_api_compat.device(Xa)
        self.expert = expert
        self.binary = n_classes == 2
        self.m = 1 if self.binary else n_classes
        self.d = Xa.shape[1] - 1
        self.inv_C = _linear._l2_inverse_C(expert)
        self.total = float(xp.sum(w))
        if not (math.isfinite(self.total) and self.total > 0):
            raise unsupported("A logistic expert without weight")
        class_w = xp.sum(Y * w[:, None], axis=0)
        bound = _linear._UNSEEN_SHARE * self.total
        seen = np.array([float(c) > bound for c in class_w])
        if not expert.fit_intercept:
            seen[:] = True
        self.seen = seen
        self.masked = None
        if not seen.all():
            # The rows of unseen classes get no weight (the objective's limit).
            w = w * (Y @ xp.asarray(seen.astype(float), dtype=Xa.dtype, device=dev))
            if not self.binary:
                self.masked = xp.asarray(~seen, device=dev)
        self.w = w
        self.free = _free_mask(
            self.m, self.d, self.binary, self.inv_C, bool(expert.fit_intercept), seen
        )
        self.free_idx = xp.asarray(np.flatnonzero(self.free.ravel()), device=dev)
        self.n_iter = 0


def _chunk_terms(xp, problem, z, Xc, yc, Yc, wc):
    """Loss, logit gradient and Hessian row weights of one expert on a chunk."""
    if problem.binary:
        yb = xp.astype(yc == 1, Xc.dtype)
        z0 = z[:, 0]
        softplus = xp.clip(z0, min=0.0) + xp.log1p(xp.exp(-xp.abs(z0)))
        loss = xp.sum(wc * (softplus - yb * z0))
        p = 1.0 / (1.0 + xp.exp(-z0))
        return loss, xp.reshape(wc * (p - yb), (-1, 1)), {(0, 0): wc * p * (1.0 - p)}
    zm = z if problem.masked is None else xp.where(problem.masked, -xp.inf, z)
    lse = _logsumexp(xp, zm)
    loss = xp.sum(wc * (lse - xp.sum(Yc * z, axis=1)))
    P = xp.exp(zm - lse[:, None])
    h = {}
    for a in range(problem.m):
        for b in range(a, problem.m):
            c = -wc * P[:, a] * P[:, b]
            h[a, b] = c + wc * P[:, a] if a == b else c
    return loss, wc[:, None] * (P - Yc), h


def _logistic_terms(xp, Xa, yenc, Y, problems, thetas, idx):
    """Objective, gradient ``(m, d + 1)`` and Hessian of the experts ``idx``
    at ``thetas``, in one pass over the rows (one product of each chunk with
    all their stacked parameters, as ``skmoe._linear._accumulate``)."""
    dev = array_api_compat.device(Xa)
    d1 = Xa.shape[1]
    sizes = [problems[k].m for k in idx]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    stacked = xp.concat([thetas[k] for k in idx], axis=0)
    loss = [0.0] * len(idx)
    grad = xp.zeros((d1, offsets[-1]), dtype=Xa.dtype, device=dev)
    blocks = [{} for _ in idx]
    for c0, c1 in _chunks(Xa.shape[0]):
        Xc = Xa[c0:c1, :]
        Z = Xc @ stacked.T
        Gs = []
        for j, k in enumerate(idx):
            part, G, h = _chunk_terms(
                xp, problems[k], Z[:, offsets[j] : offsets[j + 1]], Xc,
                yenc[c0:c1], Y[c0:c1, :], problems[k].w[c0:c1],
            )
            loss[j] = loss[j] + part
            Gs.append(G)
            for key, c in h.items():
                gram = Xc.T @ (Xc * c[:, None])
                blocks[j][key] = gram if key not in blocks[j] else blocks[j][key] + gram
        grad = grad + Xc.T @ xp.concat(Gs, axis=1)
    out = []
    for j, k in enumerate(idx):
        m, theta, inv_C = sizes[j], thetas[k], problems[k].inv_C
        d = d1 - 1
        f = float(loss[j]) + 0.5 * inv_C * float(xp.sum(theta[:, :d] * theta[:, :d]))
        pen = xp.concat([
            xp.full((m, d), inv_C, dtype=Xa.dtype, device=dev),
            xp.zeros((m, 1), dtype=Xa.dtype, device=dev),
        ], axis=1)
        g = grad[:, offsets[j] : offsets[j + 1]].T + pen * theta
        B = blocks[j]
        H = xp.concat([
            xp.concat([B[a, b] if a <= b else B[b, a].T for b in range(m)], axis=1)
            for a in range(m)
        ], axis=0)
        eye = xp.eye(m * d1, dtype=Xa.dtype, device=dev)
        out.append((f, g, H + eye * xp.reshape(pen, (-1,))))
    return out


def _free_mask(m, d, binary, inv_C, fit_intercept, seen):
    """Which of the ``(m, d + 1)`` parameters Newton moves (as ``_LogitModel``)."""
    free = np.ones((m, d + 1), dtype=bool)
    if not fit_intercept:
        free[:, -1] = False
    if binary:
        if not seen.all():
            free[:] = False
        return free
    free[~seen] = False
    last = np.flatnonzero(seen)[-1]
    if inv_C == 0.0:
        free[last] = False
    elif fit_intercept:
        free[last, -1] = False
    return free


def _logistic_start(xp, expert, m, d, free, seen, inv_C, like):
    """The expert's previous coefficients (EM's warm start), or zeros."""
    dev = array_api_compat.device(like)
    zeros = xp.zeros((m, d + 1), dtype=like.dtype, device=dev)
    coef = getattr(expert, "coef_", None)
    if coef is None or tuple(coef.shape) != (m, d):
        return zeros
    start = xp.concat([coef, xp.reshape(expert.intercept_, (m, 1))], axis=1)
    if not bool(xp.all(xp.isfinite(start))):
        return zeros
    if m > 1:
        # The fixed entries to 0 along the directions the loss cannot see
        # (a common shift of the seen classes' logits).
        last = int(np.flatnonzero(seen)[-1])
        rows = xp.asarray(seen[:, None].astype(float), dtype=like.dtype, device=dev)
        if inv_C == 0.0:
            start = start - rows * start[last : last + 1, :]
        elif expert.fit_intercept:
            shift = xp.concat([
                xp.zeros((m, d), dtype=like.dtype, device=dev),
                rows * start[last, d],
            ], axis=1)
            start = start - shift
    mask = xp.asarray(free, device=dev)
    return xp.where(mask, start, zeros)


def _newton_direction(xp, problem, g, H):
    """The Newton step on the free parameters (Cholesky: positive definite),
    zero on the others."""
    idx = problem.free_idx
    Hf = xp.take(xp.take(H, idx, axis=0), idx, axis=1)
    gf = xp.take(xp.reshape(g, (-1,)), idx, axis=0)
    try:
        xp.linalg.cholesky(Hf)
    except Exception as exc:  # noqa: BLE001 - each library its own LinAlgError
        raise unsupported(
            "A logistic expert whose Hessian is singular (e.g. unpenalised and "
            "separable)"
        ) from exc
    sf = xp.linalg.solve(Hf, -gf[:, None])[:, 0]
    dev = array_api_compat.device(g)
    step = xp.zeros((g.shape[0] * g.shape[1],), dtype=g.dtype, device=dev)
    return xp.reshape(_scatter(xp, step, idx, sf), g.shape)


def _line_search(xp, data, problems, thetas, state, steps):
    """Backtracking (Armijo) rounds along ``steps``, every expert still
    halving its step evaluated in one pass; returns the stuck experts."""
    slopes = {k: float(xp.sum(state[k][1] * steps[k])) for k in steps}
    length = dict.fromkeys(steps, 1.0)
    pending = list(steps)
    for _ in range(_linear._MAX_HALVINGS):
        if not pending:
            break
        trial = dict(thetas)
        trial.update({k: thetas[k] + length[k] * steps[k] for k in pending})
        results = _logistic_terms(xp, *data, problems, trial, pending)
        still = []
        for k, res in zip(pending, results):
            bound = state[k][0] + _linear._ARMIJO * length[k] * slopes[k]
            if math.isfinite(res[0]) and res[0] <= bound:
                thetas[k], state[k] = trial[k], res
            else:
                length[k] *= 0.5
                still.append(k)
        pending = still
    return pending


def fit_logistic_experts(xp, experts, Xa, yenc, Y, W, classes, tol=1e-8, max_iter=100):
    """Newton's method with an Armijo line search on every expert's weighted
    objective, together: the steps of :func:`skmoe._linear._newton` (one pass
    over the rows per evaluation round, for every expert still iterating);
    sets their fitted attributes.

    In float32 the tolerances are those of float64 widened to the dtype's
    precision (``tol`` at least ``sqrt(eps)``, the rounding of the
    objective at least ``10 eps``): float64's cannot be met there."""
    eps = float(xp.finfo(Xa.dtype).eps)
    tol = max(tol, math.sqrt(eps))
    rounding = max(_linear._ROUNDING, 10.0 * eps)
    grad_tol = max(1e-8, math.sqrt(eps))
    problems = [_Logit(xp, e, Xa, Y, W[:, k]) for k, e in enumerate(experts)]
    thetas = {
        k: _logistic_start(xp, p.expert, p.m, p.d, p.free, p.seen, p.inv_C, Xa)
        for k, p in enumerate(problems)
    }
    data = (Xa, yenc, Y)
    active = [k for k, p in enumerate(problems) if p.free.any()]
    state = dict(zip(active, _logistic_terms(xp, *data, problems, thetas, active)))
    for it in range(1, max_iter + 1):
        if not active:
            break
        steps = {}
        for k in active:
            f, g, H = state[k]
            step = _newton_direction(xp, problems[k], g, H)
            problems[k].n_iter = it
            biggest = float(xp.max(xp.abs(thetas[k])))
            small = float(xp.max(xp.abs(step))) <= tol * (1.0 + biggest)
            if small or -float(xp.sum(g * step)) <= rounding * abs(f):
                thetas[k] = thetas[k] + step  # converged: taken unchecked
            else:
                steps[k] = step
        stuck = _line_search(xp, data, problems, thetas, state, steps)
        for k in stuck:
            # No decrease at all: at the optimum to rounding, or a failure.
            scale = grad_tol * max(1.0, problems[k].total)
            if not float(xp.max(xp.abs(state[k][1]))) <= scale:
                raise unsupported("A logistic expert whose Newton line search failed")
        active = [k for k in steps if k not in stuck]
    if active:
        raise unsupported(
            f"A logistic expert still moving after {max_iter} Newton iterations"
        )
    for k, p in enumerate(problems):
        _set_logistic(xp, p, _final_theta(
            xp, thetas[k], Xa, p.seen, p.binary, p.inv_C, bool(p.expert.fit_intercept)
        ), classes)


def _set_logistic(xp, problem, theta, classes):
    """The fitted attributes of a LogisticRegression expert."""
    expert, d = problem.expert, problem.d
    expert.n_features_in_ = d
    expert.classes_ = classes
    expert.n_iter_ = np.array([problem.n_iter], dtype=np.int32)
    expert.coef_ = theta[:, :d]
    expert.intercept_ = (
        theta[:, d] if expert.fit_intercept else xp.zeros_like(theta[:, d])
    )


def _final_theta(xp, theta, Xa, seen, binary, inv_C, fit_intercept):
    """:func:`skmoe._linear._final_parameters`: unseen classes put below every
    row's largest seen logit, the softmax's free shift removed."""
    m, d1 = theta.shape
    d = d1 - 1
    dev = array_api_compat.device(Xa)
    gap = _linear._UNSEEN_GAP
    if binary:
        if not seen.all():
            value = gap if seen[1] else -gap
            icpt = xp.full((1, 1), value, dtype=Xa.dtype, device=dev)
            theta = xp.concat([theta[:, :d], icpt], axis=1)
        return theta
    if not seen.all():
        if seen.sum() == 1:
            low = 0.0
        else:
            idx = xp.asarray(np.flatnonzero(seen), device=dev)
            ts = xp.take(theta, idx, axis=0)
            low = min(
                float(xp.min(xp.max(Xa[c0:c1, :] @ ts.T, axis=1)))
                for c0, c1 in _chunks(Xa.shape[0])
            )
        unseen = xp.asarray((~seen).astype(float), dtype=Xa.dtype, device=dev)
        icpt = theta[:, d] * (1.0 - unseen) + (low - gap) * unseen
        theta = xp.concat([theta[:, :d], xp.reshape(icpt, (-1, 1))], axis=1)
    if inv_C == 0.0:
        theta = theta - xp.mean(theta, axis=0)
    elif fit_intercept:
        icpt = theta[:, d:] - xp.mean(theta[:, d])
        theta = xp.concat([theta[:, :d], icpt], axis=1)
    return theta


def _scatter(xp, out, idx, values):
    """``out`` with ``out[idx] = values`` (a copy; no in-place indexing)."""
    n = out.shape[0]
    onehot = xp.astype(
        xp.reshape(idx, (-1, 1)) == xp.reshape(
            xp.arange(n, device=array_api_compat.device(out)), (1, -1)
        ),
        out.dtype,
    )
    return out + values @ onehot


def expert_log_proba(xp, experts, X, Y):
    """``log p_k(y_i | x_i)`` ``(r, K)`` of the logistic experts (``Y``: the
    one-hot targets), from :func:`expert_proba`."""
    P = expert_proba(xp, experts, X, Y.shape[1])
    cols = [xp.log(xp.sum(P[k, ...] * Y, axis=1)) for k in range(P.shape[0])]
    return xp.stack(cols, axis=1)


def expert_proba(xp, experts, X, n_classes):
    """Every expert's class probabilities, ``(K, r, C)``."""
    from ._likelihood import _PROBA_FLOOR

    out = []
    for e in experts:
        z = X @ e.coef_.T + e.intercept_
        if n_classes == 2:
            p = 1.0 / (1.0 + xp.exp(-z[:, 0]))
            P = xp.stack([1.0 - p, p], axis=1)
        else:
            P = xp.exp(z - _logsumexp(xp, z)[:, None])
        P = xp.clip(P, min=_PROBA_FLOOR)
        out.append(P / xp.sum(P, axis=1, keepdims=True))
    return xp.stack(out)


def _with_ones(xp, X):
    dev = array_api_compat.device(X)
    return xp.concat([X, xp.ones((X.shape[0], 1), dtype=X.dtype, device=dev)], axis=1)


class LogisticPasses(ArrayAPIPasses):
    """:class:`ArrayAPIPasses` for the classifier: the experts' M-step is
    Newton's method on their weighted logistic objectives (reading ``X``),
    the E-step their log class probabilities; no moments."""

    def __init__(self, xp, classes, yenc, Y):
        super().__init__(xp)
        self.classes = classes
        self.yenc = yenc
        self.Y = Y
        self.indistinct = False
        self._Xa = None

    def stats_pass(self, data, resp):
        return resp

    def m_step(self, data, state, stats, resp, keep_empty):
        xp = self.xp
        if self._Xa is None:
            self._Xa = _with_ones(xp, data.X)
        W = data.sample_weight[:, None] * resp
        wsum = xp.sum(W, axis=0)
        for k in range(W.shape[1]):
            if not float(wsum[k]) > EMPTY_EXPERT_SHARE * data.total:
                raise ValueError(
                    f"Expert {k} owns no training weight: an empty (collapsed) "
                    "expert is not supported under array API dispatch (collapse "
                    "repair runs on NumPy arrays only); use fewer experts or "
                    "another random_state."
                )
        fit_logistic_experts(
            xp, state.experts, self._Xa, self.yenc, self.Y, W, self.classes
        )
        return True

    def e_pass(self, data, state, out=None):
        xp = self.xp
        X, sw = data.X, data.sample_weight
        resp, ll = [], 0.0
        spread, top = 0.0, 0.0
        for c0, c1 in _chunks(X.shape[0]):
            Xc = X[c0:c1, :]
            log_lik = expert_log_proba(xp, state.experts, Xc, self.Y[c0:c1, :])
            t = gate_log_proba(xp, state.gate, data.Z[c0:c1, :]) + log_lik
            log_norm = _logsumexp(xp, t)
            resp.append(xp.exp(t - log_norm[:, None]))
            ll = ll + xp.sum(sw[c0:c1] * log_norm)
            spread = max(spread, float(xp.max(
                xp.max(log_lik, axis=1) - xp.min(log_lik, axis=1)
            )))
            top = max(top, float(xp.max(xp.abs(log_lik))))
        self.indistinct = (
            len(state.experts) > 1 and spread <= 1e-12 * (1.0 + top)
        )
        return xp.concat(resp, axis=0), None, float(ll) / data.total

    def same_experts(self, state):
        return self.indistinct


def predict_proba(xp, estimator, X):
    """The classifier's ``sum_k pi_k(x) p_k(. | x)``, ``(n, C)``."""
    n_classes = estimator.classes_.shape[0]
    out = []
    for c0, c1 in _chunks(X.shape[0]):
        Xc = X[c0:c1, :]
        gate = xp.exp(gate_log_proba(xp, estimator.gate_, Xc))
        P = expert_proba(xp, estimator.experts_, Xc, n_classes)
        out.append(xp.sum(gate.T[:, :, None] * P, axis=0))
    return xp.concat(out, axis=0)


def classifier_posterior(xp, estimator, X, y):
    """``(resp, log_norm)`` of a fitted classifier on ``(X, y)``."""
    classes = estimator.classes_
    yenc = xp.searchsorted(classes, xp.asarray(y, device=array_api_compat.device(X)))
    Y = xp.astype(
        xp.reshape(yenc, (-1, 1))
        == xp.reshape(
            xp.arange(classes.shape[0], device=array_api_compat.device(X)), (1, -1)
        ),
        X.dtype,
    )
    out_r, out_n = [], []
    for c0, c1 in _chunks(X.shape[0]):
        Xc = X[c0:c1, :]
        t = gate_log_proba(xp, estimator.gate_, Xc) + expert_log_proba(
            xp, estimator.experts_, Xc, Y[c0:c1, :]
        )
        log_norm = _logsumexp(xp, t)
        out_r.append(xp.exp(t - log_norm[:, None]))
        out_n.append(log_norm)
    return xp.concat(out_r, axis=0), xp.concat(out_n, axis=0)


# ----------------------------------------------------------------------
# init="auto" on the device: the pool of skmoe._pool, in the namespace
# ----------------------------------------------------------------------
def _one_hot(xp, labels, n_experts, dtype):
    """Hard responsibilities ``(m, K)`` from integer ``labels`` (on the device)."""
    dev = array_api_compat.device(labels)
    return xp.astype(
        xp.reshape(labels, (-1, 1))
        == xp.reshape(xp.arange(n_experts, device=dev), (1, -1)),
        dtype,
    )


def _quantile_labels(xp, t, n_experts, rng):
    """Labels by ``n_experts - 1`` uniform-random quantile cut points of ``t``
    (:func:`skmoe._pool._random_cuts`: linear interpolation between order
    statistics, as :func:`numpy.quantile`), computed on the device."""
    q = np.sort(rng.uniform(size=n_experts - 1))
    dev = array_api_compat.device(t)
    s = xp.sort(t)
    pos = q * (t.shape[0] - 1)
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    s_lo = xp.take(s, xp.asarray(lo, device=dev))
    s_hi = xp.take(s, xp.asarray(hi, device=dev))
    frac = xp.asarray(pos - lo, dtype=t.dtype, device=dev)
    cuts = s_lo + frac * (s_hi - s_lo)
    return xp.searchsorted(cuts, t, side="left")


class _Projector:
    """Projections ``((D - mean) / scale) @ direction`` of the weighted
    standardised columns of ``D`` (:class:`skmoe._pool._Scaled`), on the
    device; only ``d``-vectors and a ``d x d`` matrix cross to the host."""

    def __init__(self, xp, D, sw, total):
        self.xp, self.D, self.sw, self.total = xp, D, sw, total
        self.mean, self.scale = weighted_standardization(xp, D, sw, total)

    def project(self, direction):
        xp = self.xp
        v = xp.asarray(direction, dtype=self.D.dtype, device=array_api_compat.device(self.D))
        v = v / self.scale
        return self.D @ v - xp.sum(self.mean * v)

    def principal_axis(self):
        """The first eigenvector of the weighted covariance of the
        standardised columns (:func:`skmoe._init._first_principal_axis`;
        the ``d x d`` matrix is decomposed on the host)."""
        xp = self.xp
        S = (self.D - self.mean) / self.scale
        C = to_numpy_array(((S * self.sw[:, None]).T @ S) / self.total)
        return np.linalg.eigh(C)[1][:, -1]


def _columns(xp, data):
    """The columns the projections cut: ``[X, y]`` (regressor) or ``[X, Y]``
    (classifier: its one-hot targets), as :meth:`init_columns` on NumPy."""
    Y = getattr(data.passes, "Y", None)
    if Y is None:
        Y = xp.reshape(data.y, (-1, 1))
    return xp.concat([data.X, xp.astype(Y, data.X.dtype)], axis=1)


def pool_starts(xp, data, n_experts, rng, sizes):
    """The hard starts of one pool, built on the device: random balanced
    partitions (labels drawn on the host: ``m`` integers each), and
    random quantile cuts along the gate inputs' first principal axis and
    along Gaussian random directions in the standardised ``[X, y]``; and
    the k-means start, computed on the host from the pool's rows
    (:func:`_kmeans_start`)."""
    m = data.X.shape[0]
    dev = array_api_compat.device(data.X)
    dtype = data.X.dtype
    n_random, n_axis, n_proj = sizes
    starts = []
    for _ in range(n_random):
        labels = xp.asarray(rng.permutation(m) % n_experts, device=dev)
        starts.append(_one_hot(xp, labels, n_experts, dtype))
    D = _Projector(xp, _columns(xp, data), data.sample_weight, data.total)
    if n_axis:
        Z = _Projector(xp, data.Z, data.sample_weight, data.total)
        t = Z.project(Z.principal_axis())
        if not float(xp.max(t) - xp.min(t)) > 0:
            t = D.project(D.principal_axis())
        for _ in range(n_axis):
            starts.append(_one_hot(xp, _quantile_labels(xp, t, n_experts, rng), n_experts, dtype))
    for _ in range(n_proj):
        t = D.project(rng.normal(size=D.D.shape[1]))
        starts.append(_one_hot(xp, _quantile_labels(xp, t, n_experts, rng), n_experts, dtype))
    starts.append(_kmeans_start(xp, data, n_experts, rng))
    return starts


def _kmeans_start(xp, data, n_experts, rng):
    """The k-means start of the NumPy pool (:func:`skmoe._init.initial_responsibilities`
    with ``"kmeans"``), run on the host on a copy of the pool's rows: at most
    ``SUBSAMPLE_ABOVE`` rows of ``[X, y]`` go to the host, ``(m, K)``
    responsibilities come back."""
    from ._init import initial_responsibilities

    resp = initial_responsibilities(
        "kmeans", data.likelihood, to_numpy_array(data.X), to_numpy_array(data.y),
        to_numpy_array(data.sample_weight), n_experts, rng, 0,
    )
    return xp.asarray(resp, dtype=data.X.dtype, device=array_api_compat.device(data.X))


def degenerate(result, data):
    """:func:`skmoe._pool.degenerate` for a run in the namespace (reads the
    ``K`` shares and variances only)."""
    from ._pool import FLOOR_MULTIPLE

    floor = getattr(data.likelihood, "variance_floor_", None)
    theta = result.state.theta
    if floor is None or theta is None or result.usage is None:
        return []
    n, n_coef = data.X.shape[0], data.X.shape[1] + 1
    usage = to_numpy_array(result.usage)
    theta = to_numpy_array(theta)
    return [
        k for k in range(usage.shape[0])
        if n * usage[k] < n_coef + 1 or theta[k] < FLOOR_MULTIPLE * floor
    ]


def subsample(xp, data, gate, rows):
    """The data of ``rows`` (host indices), taken on the device with
    ``xp.take``, and the gate prepared on them."""
    idx = xp.asarray(rows, device=array_api_compat.device(data.X))
    X = xp.take(data.X, idx, axis=0)
    y = xp.take(data.y, idx, axis=0)
    sw = xp.take(data.sample_weight, idx, axis=0)
    passes = data.passes
    if isinstance(passes, LogisticPasses):
        passes = LogisticPasses(
            xp, passes.classes, xp.take(passes.yenc, idx, axis=0),
            xp.take(passes.Y, idx, axis=0),
        )
    else:
        passes = ArrayAPIPasses(xp)
    from ._em import EMData

    sub = EMData(X, y, sw, X, data.likelihood, passes=passes)
    return sub, prepare_gate(xp, copy.deepcopy(gate), X, sw, sub.total)


#: What a short run may raise on a start the experts cannot be fit on (an
#: emptied expert, a singular system): the other starts decide.
_START_ERRORS = (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError)


def run_pool(xp, data, prototypes, gate, config, rng, pool):
    """One pool of ``init="auto"`` (:func:`skmoe._pool.run_pool`) in the
    namespace: short :func:`~skmoe._em.run_em` runs from :func:`pool_starts`
    (on a device subsample of ``SUBSAMPLE_ROWS`` rows above
    ``SUBSAMPLE_ABOVE``), the best ``n_continue`` non-degenerate ones
    continued to convergence, and, when subsampled, one full-data run from
    the winner's responsibilities. Returns the kept result with
    ``init_objectives``, ``candidates``, ``disagree`` as on NumPy."""
    import dataclasses
    import warnings

    from . import _pool
    from ._em import EMState, run_em
    from ._experts import make_experts

    sizes, short_iter, n_continue = pool
    n, K = data.X.shape[0], len(prototypes)
    sub, sub_gate = data, gate
    if n > _pool.SUBSAMPLE_ABOVE:
        rows = np.sort(rng.choice(n, _pool.SUBSAMPLE_ROWS, replace=False))
        sub, sub_gate = subsample(xp, data, gate, rows)
    short = dataclasses.replace(config, max_iter=short_iter, tol=-np.inf, verbose=0)
    long = dataclasses.replace(config, verbose=0)
    runs, error = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for resp in pool_starts(xp, sub, K, rng, sizes):
            state = EMState(make_experts(prototypes, rng), copy.deepcopy(sub_gate))
            try:
                runs.append(run_em(sub, state, short, rng, [resp]))
            except _START_ERRORS as exc:
                error = exc
        if not runs:
            raise error
        objectives = np.array([r.objective for r in runs])
        bad = [bool(degenerate(r, sub)) for r in runs]
        order = [
            i for i in np.argsort(-objectives, kind="stable")
            if np.isfinite(objectives[i])
        ]
        chosen = [i for i in order if not bad[i]][:n_continue] or order[:n_continue]
        finals = [
            run_em(sub, runs[i].state, long, rng, [runs[i].resp]) for i in chosen
        ]
    good = [r for r in finals if not degenerate(r, sub)] or finals
    best = max(good, key=lambda r: r.objective)
    totals = np.array([r.objective for r in finals]) * sub.total
    threshold = max(1.0, 1e-3 * sub.total)
    others = [t for r, t in zip(finals, totals) if r is not best]
    disagree = bool(others) and all(
        best.objective * sub.total - t > threshold for t in others
    )
    if sub is not data:
        resp = data.passes.e_pass(data, best.state)[0]
        state = EMState(make_experts(prototypes, rng), copy.deepcopy(gate))
        best = run_em(data, state, config, rng, [resp])
    best.init_objectives = objectives
    best.candidates = np.array([r.objective for r in finals])
    best.disagree = disagree
    return best
