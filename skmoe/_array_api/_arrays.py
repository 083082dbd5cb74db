"""Row chunks and the small array helpers every pass uses (namespace-generic)."""


#: Rows per chunk of every pass (bounds the temporaries on the device).
CHUNK_ROWS = 1 << 18


def chunks(n):
    for c0 in range(0, n, CHUNK_ROWS):
        yield c0, min(c0 + CHUNK_ROWS, n)


def weighted_standardization(xp, Z, sw, total):
    """Weighted column means and scales of ``Z`` (the gate's and the
    StandardizedRidge's rule, :func:`skmoe._gating._weighted_standardization`),
    the variance taken about the mean (no cancellation)."""
    mean = sw @ Z / total
    var = xp.zeros_like(mean)
    for c0, c1 in chunks(Z.shape[0]):
        D = Z[c0:c1, :] - mean
        var = var + sw[c0:c1] @ (D * D)
    var = var / total
    scale = xp.sqrt(xp.clip(var, min=0.0))
    tiny = 1e-12 * xp.clip(xp.abs(mean), min=1.0)
    scale = xp.where(scale <= tiny, xp.ones_like(scale), scale)
    return mean, scale


def logsumexp(xp, a):
    amax = xp.max(a, axis=1)
    return amax + xp.log(xp.sum(xp.exp(a - amax[:, None]), axis=1))


def outer(xp, a, b):
    return xp.reshape(a, (-1, 1)) * xp.reshape(b, (1, -1))
