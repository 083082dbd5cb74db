"""The chunked passes of :mod:`skmoe._chunked` for linear Gaussian experts,
in the namespace: the sufficient statistics (per expert, the weighted
moments of ``[x - c_x, y - c_y, 1]``), the experts' weighted normal
equations solved from them, the noise variances, and the fused E-step, as
:class:`ArrayAPIPasses` (the passes of :mod:`skmoe._backends`
when the data carry a namespace); the regressor's prediction and
posterior."""

import math

from sklearn.linear_model import Ridge

from .. import _linear
from .._experts import EMPTY_EXPERT_SHARE
from .._ridge import StandardizedRidge
from ._arrays import chunks, logsumexp, outer
from ._gate import fit_gate, gate_log_proba
from ._namespace import array_api_compat
from ._validation import unsupported


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
            grams.append(S11 - wsum[k] * outer(xp, mt, mt))
            means.append(mt + shift)
        else:
            g = S11 + outer(xp, shift, sums) + outer(xp, sums, shift)
            grams.append(g + wsum[k] * outer(xp, shift, shift))
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
    for c0, c1 in chunks(X.shape[0]):
        t = gate_log_proba(xp, estimator.gate_, X[c0:c1, :]) + log_lik_chunk(
            xp, X[c0:c1, :], y[c0:c1], coef, icpt, var
        )
        log_norm = logsumexp(xp, t)
        out_r.append(xp.exp(t - log_norm[:, None]))
        out_n.append(log_norm)
    return xp.concat(out_r, axis=0), xp.concat(out_n, axis=0)


def predict(xp, estimator, X):
    """The mixture's mean prediction ``sum_k pi_k(x) f_k(x)``."""
    coef, icpt = expert_matrix(xp, estimator.experts_, X)
    out = []
    for c0, c1 in chunks(X.shape[0]):
        Xc = X[c0:c1, :]
        gate = xp.exp(gate_log_proba(xp, estimator.gate_, Xc))
        out.append(xp.sum(gate * (Xc @ coef + icpt), axis=1))
    return xp.concat(out, axis=0)


class ArrayAPIPasses:
    """The chunked passes of :mod:`skmoe._chunked`, in the namespace ``xp``:
    the passes protocol of :mod:`skmoe._backends`."""

    #: No collapse repair in the namespace (it splits rows by 2-means on the host).
    repairs = False
    #: A declined M-step has no general fallback here.
    falls_back = False

    def __init__(self, xp):
        self.xp = xp

    def usage(self, data, resp):
        """The experts' shares of the training weight."""
        return data.sample_weight @ resp / data.total

    def total_weight(self, sample_weight):
        """The total sample weight."""
        return float(self.xp.sum(sample_weight))

    def stats_pass(self, data, resp):
        xp = self.xp
        shift = _shift(xp, data)
        S = None
        for c0, c1 in chunks(data.X.shape[0]):
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

    def m_step_gate(self, data, state, resp, stats, max_iter):
        """The gate's Newton steps in the namespace (``stats`` unused: the
        interface of :func:`skmoe._chunked.m_step_gate`); always done."""
        fit_gate(
            self.xp, state.gate, data.Z, resp, data.sample_weight, data.total, max_iter
        )
        return True

    def e_pass(self, data, state, out=None, gate_sums=True):
        xp = self.xp
        shift = _shift(xp, data)
        coef, icpt = expert_matrix(xp, state.experts, data.X)
        var = state.theta
        X, y, sw = data.X, data.y, data.sample_weight
        resp, S, ll = [], None, 0.0
        for c0, c1 in chunks(X.shape[0]):
            Xc = X[c0:c1, :]
            t = gate_log_proba(xp, state.gate, data.Z[c0:c1, :]) + log_lik_chunk(
                xp, Xc, y[c0:c1], coef, icpt, var
            )
            log_norm = logsumexp(xp, t)
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
