"""Plain numpy / scipy references for the compiled kernels (stumpy style).

Written for clarity, not speed: each is the textbook formula, evaluated with
scipy's ``logsumexp`` where overflow matters.
"""

import numpy as np
from scipy.special import logsumexp


def log_softmax_rows(a):
    return a - logsumexp(a, axis=1, keepdims=True)


def softmax_rows(a):
    return np.exp(log_softmax_rows(a))


def e_step(log_gate, log_lik):
    joint = log_gate + log_lik
    log_norm = logsumexp(joint, axis=1)
    return np.exp(joint - log_norm[:, None]), log_norm


def soft_target_loss_grad(logits, targets, sample_weight):
    logp = log_softmax_rows(logits)
    loss = -np.sum(sample_weight[:, None] * targets * logp)
    p = np.exp(logp)
    grad = sample_weight[:, None] * (targets.sum(axis=1, keepdims=True) * p - targets)
    return loss, grad


def gaussian_log_lik(y, pred, variance):
    r = y[:, None] - pred
    return -0.5 * np.log(2 * np.pi * variance) - 0.5 * r**2 / variance


def weighted_sq_residuals(y, pred, weights):
    return np.sum(weights * (y[:, None] - pred) ** 2, axis=0)


def mix_mean_var(gate, pred, variance):
    mean = np.sum(gate * pred, axis=1)
    second = np.sum(gate * (variance + pred**2), axis=1)
    return mean, second - mean**2


def mix_proba(gate, proba):
    return np.einsum("ik,kic->ic", gate, proba)


def gate_objective(W, b, Z, R, sample_weight, alpha, balance=0.0):
    """Penalised soft-target cross-entropy of a gate given in *standardised* units.

    ``W`` are the coefficients of ``(Z - mean) / std`` (weighted statistics).
    """
    total = sample_weight.sum()
    mean = sample_weight @ Z / total
    std = np.sqrt(sample_weight @ (Z - mean) ** 2 / total)
    std[std == 0] = 1.0
    logits = ((Z - mean) / std) @ W + b
    loss = -np.sum(sample_weight[:, None] * R * log_softmax_rows(logits))
    loss += balance * balance_penalty(logits, sample_weight)
    return (loss + 0.5 * alpha * np.sum(W**2)) / total


def em_iteration(X, y, resp, gate_W, alpha, reg_variance=1e-6):
    """One EM M-step + E-step of a mixture of linear regressions.

    Weighted least squares per expert, the variance as the weighted mean
    squared residual, and the gate (unstandardised, ``Z = [X, 1]``) refit by
    scipy's BFGS on the soft-target cross-entropy; returns the new mean
    log-likelihood.
    """
    from scipy.optimize import minimize

    n, d = X.shape
    K = resp.shape[1]
    Xa = np.column_stack([X, np.ones(n)])
    pred = np.empty((n, K))
    var = np.empty(K)
    for k in range(K):
        w = resp[:, k]
        beta = np.linalg.lstsq(Xa * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
        pred[:, k] = Xa @ beta
        var[k] = max(np.sum(w * (y - pred[:, k]) ** 2) / w.sum(), reg_variance)

    def f(v):
        V = v.reshape(d + 1, K)
        return -np.sum(resp * log_softmax_rows(Xa @ V)) + 0.5 * alpha * np.sum(V[:-1] ** 2)

    V = minimize(f, gate_W.ravel(), method="BFGS", options={"gtol": 1e-10}).x
    log_gate = log_softmax_rows(Xa @ V.reshape(d + 1, K))
    _, log_norm = e_step(log_gate, gaussian_log_lik(y, pred, var))
    return log_norm.mean()


def gate_batch_gradient(W_s, b_s, Z, log_lik, sample_weight, mean, scale, alpha, total):
    """Mini-batch gradient of the penalised mixture negative log-likelihood.

    ``f = -sum_i w_i log sum_k pi_k(z_i) p_ik / w_B + alpha / (2 total) ||W_s||^2``
    with ``pi = softmax(((Z - mean) / scale) @ W_s + b_s)`` and the experts'
    likelihoods ``p_ik = exp(log_lik)`` held fixed. Textbook chain rule on the
    materialised standardised inputs: ``df/dlogits = w (pi - h) / w_B``.
    """
    Zs = (Z - mean) / scale
    logits = Zs @ W_s + b_s
    log_pi = log_softmax_rows(logits)
    joint = log_pi + log_lik
    h = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
    w_batch = sample_weight.sum()
    G = sample_weight[:, None] * (np.exp(log_pi) - h) / w_batch
    return Zs.T @ G + alpha / total * W_s, G.sum(axis=0)


def mixture_batch_objective(W_s, b_s, Z, log_lik, sample_weight, mean, scale, alpha, total):
    """The function whose gradient :func:`gate_batch_gradient` is."""
    Zs = (Z - mean) / scale
    joint = log_softmax_rows(Zs @ W_s + b_s) + log_lik
    nll = -np.sum(sample_weight * logsumexp(joint, axis=1)) / sample_weight.sum()
    return nll + 0.5 * alpha / total * np.sum(W_s**2)


def _top_k_mask(a, k):
    """Boolean mask of each row's k largest entries (ties: lower index)."""
    order = np.argsort(-a, axis=1, kind="stable")[:, :k]
    mask = np.zeros(a.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def top_k_softmax(logits, k):
    mask = _top_k_mask(logits, k)
    kept = np.where(mask, logits, -np.inf)
    out = np.empty_like(logits)
    for i in range(len(logits)):
        if np.all(kept[i][mask[i]] == -np.inf):
            out[i] = mask[i] / k
        else:
            out[i] = np.exp(kept[i] - logsumexp(kept[i]))
    return out


def sparse_e_step(log_gate, log_lik, k):
    joint = log_gate + log_lik
    mask = _top_k_mask(joint, k)
    kept = np.where(mask, joint, -np.inf)
    log_norm = logsumexp(kept, axis=1)
    with np.errstate(invalid="ignore"):
        resp = np.exp(kept - log_norm[:, None])
    dead = ~np.isfinite(log_norm)
    if dead.any():
        resp[dead] = top_k_softmax(log_gate[dead], k)
    return resp, log_norm


def balance_penalty(logits, sample_weight):
    """-(T / K) sum_k log(K pbar_k), pbar the weighted mean gate probabilities."""
    p = softmax_rows(logits)
    total = sample_weight.sum()
    pbar = sample_weight @ p / total
    K = logits.shape[1]
    return -(total / K) * np.sum(np.log(K * pbar))


def gate_hessian_sums(Z, prob, weight, pk, pl, fa, fb):
    """``S[p, j] = sum_i w_i (delta_kl p_ik - p_ik p_il) v_ia v_ib`` for the
    class pairs ``(k, l) = (pk[p], pl[p])`` and the feature pairs
    ``(a, b) = (fa[j], fb[j])`` of ``v_i = [Z[i], 1]``: the blocks of the
    softmax Hessian, from the dense ``(n, K, K)`` and ``(n, d+1, d+1)`` arrays."""
    V = np.column_stack([Z, np.ones(len(Z))])
    C = weight[:, None, None] * (
        np.einsum("ik,kl->ikl", prob, np.eye(prob.shape[1]))
        - prob[:, :, None] * prob[:, None, :]
    )
    VV = V[:, :, None] * V[:, None, :]
    return np.einsum("ip,iq->pq", C[:, pk, pl], VV[:, fa, fb])


def nb_mixture_unpack(params, p, K):
    """``(V, B, log_r)`` from a flat vector: gate logits' coefficients
    ``V`` (K, p + 1) with the first row 0, expert coefficients ``B``
    (K, p + 1) with the intercept last, and ``log r`` (K,)."""
    n_gate = (K - 1) * (p + 1)
    V = np.vstack([np.zeros(p + 1), params[:n_gate].reshape(K - 1, p + 1)])
    B = params[n_gate:n_gate + K * (p + 1)].reshape(K, p + 1)
    return V, B, params[n_gate + K * (p + 1):]


def nb_mixture_loglik(params, X, y, K):
    """Log-likelihood of a mixture of K NB2 log-link GLMs under a softmax gate
    on ``X``, and its gradient (plain numpy / scipy, the textbook formulas)."""
    from scipy.special import digamma, gammaln

    n, p = X.shape
    Xa = np.column_stack([X, np.ones(n)])
    V, B, log_r = nb_mixture_unpack(params, p, K)
    r = np.exp(log_r)[None, :]
    log_gate = log_softmax_rows(Xa @ V.T)
    mu = np.exp(Xa @ B.T)
    yy = y[:, None]
    log_p = (
        gammaln(yy + r) - gammaln(r) - gammaln(yy + 1) + r * np.log(r / (r + mu))
        + yy * np.log(mu / (r + mu))
    )
    resp, log_norm = e_step(log_gate, log_p)
    g_V = ((resp - np.exp(log_gate)).T @ Xa)[1:]
    g_B = (resp * r * (yy - mu) / (r + mu)).T @ Xa
    d_r = digamma(yy + r) - digamma(r) + np.log(r / (r + mu)) + (mu - yy) / (r + mu)
    g_r = np.sum(resp * d_r, axis=0) * r[0]
    return log_norm.sum(), np.concatenate([g_V.ravel(), g_B.ravel(), g_r])


def nb_mixture_mle(X, y, K, start):
    """Direct maximisation of :func:`nb_mixture_loglik` by BFGS from
    ``start``; returns ``(log-likelihood, parameters)``."""
    from scipy.optimize import minimize

    res = minimize(
        lambda v: tuple(-a for a in nb_mixture_loglik(v, X, y, K)), start,
        jac=True, method="BFGS", options={"gtol": 1e-8, "maxiter": 5000},
    )
    return -res.fun, res.x


def t_regression_loglik(params, X, y):
    """Log-likelihood of one linear regression with Student-t noise,
    ``params = (coef..., intercept, log sigma, log nu)``."""
    from scipy.stats import t

    n, p = X.shape
    loc = X @ params[:p] + params[p]
    scale, df = np.exp(params[p + 1]), np.exp(params[p + 2])
    return t.logpdf(y, df, loc=loc, scale=scale).sum()
