"""The classifier's passes: LogisticRegression experts fitted together by
Newton's method (:func:`skmoe._linear.fit_logistic_experts`, in the
namespace; they read ``X``: no moments), the E-step by the experts' log
class probabilities (:class:`LogisticPasses`), and the classifier's
probabilities and posterior."""

import math

import numpy as np

from .. import _linear
from .._experts import EMPTY_EXPERT_SHARE
from .._likelihood import _PROBA_FLOOR
from ._arrays import chunks, logsumexp
from ._gate import gate_log_proba
from ._namespace import array_api_compat
from ._passes import ArrayAPIPasses
from ._validation import unsupported


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
    lse = logsumexp(xp, zm)
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
    for c0, c1 in chunks(Xa.shape[0]):
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
    """:func:`skmoe._linear.batched_backtrack` in the namespace: every
    expert still halving its step evaluated in one pass; returns the stuck
    experts."""
    slopes = {k: float(xp.sum(state[k][1] * steps[k])) for k in steps}

    def evaluate(trial, pending):
        return _logistic_terms(xp, *data, problems, {**thetas, **trial}, pending)

    return _linear.batched_backtrack(thetas, state, steps, slopes, evaluate)


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
                for c0, c1 in chunks(Xa.shape[0])
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
    out = []
    for e in experts:
        z = X @ e.coef_.T + e.intercept_
        if n_classes == 2:
            p = 1.0 / (1.0 + xp.exp(-z[:, 0]))
            P = xp.stack([1.0 - p, p], axis=1)
        else:
            P = xp.exp(z - logsumexp(xp, z)[:, None])
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

    def e_pass(self, data, state, out=None, gate_sums=True):
        xp = self.xp
        X, sw = data.X, data.sample_weight
        resp, ll = [], 0.0
        spread, top = 0.0, 0.0
        for c0, c1 in chunks(X.shape[0]):
            Xc = X[c0:c1, :]
            log_lik = expert_log_proba(xp, state.experts, Xc, self.Y[c0:c1, :])
            t = gate_log_proba(xp, state.gate, data.Z[c0:c1, :]) + log_lik
            log_norm = logsumexp(xp, t)
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
    for c0, c1 in chunks(X.shape[0]):
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
    for c0, c1 in chunks(X.shape[0]):
        Xc = X[c0:c1, :]
        t = gate_log_proba(xp, estimator.gate_, Xc) + expert_log_proba(
            xp, estimator.experts_, Xc, Y[c0:c1, :]
        )
        log_norm = logsumexp(xp, t)
        out_r.append(xp.exp(t - log_norm[:, None]))
        out_n.append(log_norm)
    return xp.concat(out_r, axis=0), xp.concat(out_n, axis=0)


def classifier_passes(xp, likelihood, y, sw):
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
