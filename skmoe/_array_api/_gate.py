"""The softmax gate in the namespace: its penalised objective, Hessian and
damped Newton steps (the steps of :mod:`skmoe._gating`'s Newton solver),
its preparation and log-probabilities."""


from .._gating import newton_minimise
from ._arrays import chunks, logsumexp, outer, weighted_standardization
from ._namespace import array_api_compat


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
    for c0, c1 in chunks(Z.shape[0]):
        Zc = Z[c0:c1, :]
        logits = Zc @ W + b
        lse = logsumexp(xp, logits)
        Rc = R[c0:c1, :]
        w = sw[c0:c1]
        tsum = xp.sum(Rc, axis=1)
        loss = loss + xp.sum(w * xp.sum(Rc * (lse[:, None] - logits), axis=1))
        G = w[:, None] * (tsum[:, None] * xp.exp(logits - lse[:, None]) - Rc)
        g_sum = g_sum + xp.sum(G, axis=0)
        ZtG = ZtG + Zc.T @ G
    grad_W = (ZtG - outer(xp, mean, g_sum)) / scale[:, None]
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
    for c0, c1 in chunks(n):
        Zc = Z[c0:c1, :]
        logits = Zc @ W + b
        P = xp.exp(logits - logsumexp(xp, logits)[:, None])
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


def _pinv_step(xp, H, g):
    """The Newton step ``-H^+ g`` in the namespace (as
    :func:`skmoe._gating.newton_direction`)."""
    vals, vecs = xp.linalg.eigh(H)
    top = max(float(vals[-1]), 1e-300)
    keep = vals > 1e-10 * top
    safe = xp.where(keep, vals, xp.ones_like(vals))
    inv = xp.where(keep, 1.0 / safe, xp.zeros_like(vals))
    return -(vecs @ ((vecs.T @ g) * inv))


def _newton(xp, x, args, max_iter, gtol, ftol=1e-12):
    """:func:`skmoe._gating.newton_minimise` on the gate's objective in the
    namespace; returns ``(x, f, n_iter)`` (the last accepted point when a
    step fails to decrease)."""
    x, f, it, _ = newton_minimise(
        lambda x: _gate_objective(xp, x, *args),
        lambda x, g: _pinv_step(xp, _gate_hessian(xp, x, *args), g),
        x, max_iter, gtol, ftol,
    )
    return x, f, it


def prepare_gate(xp, gate, Z, sw, total):
    """The gate's standardisation statistics, in the namespace."""
    return gate.prepare_statistics(*weighted_standardization(xp, Z, sw, total))


def fit_gate(xp, gate, Z, R, sw, total, gate_max_iter):
    """The gate's M-step: Newton's steps from its current coefficients."""
    mean, scale = gate.get_standardization()
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
    return gate.set_standardized_params(x, f, nit)


def gate_log_proba(xp, gate, Z):
    logits = Z @ gate.coef_.T + gate.intercept_
    return logits - logsumexp(xp, logits)[:, None]
