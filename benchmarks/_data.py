"""Synthetic piecewise-linear regression data for the skmoe benchmarks.

The data come from a mixture of linear regressions whose mixing weights are a
multinomial-logit (softmax) gate on ``X`` -- exactly the model family a
Mixture-of-Experts regressor with a softmax gate and linear Gaussian experts
can represent, so a correct fit can recover it:

.. math::

    x_i &\\sim N(0, I_d), \\\\
    P(z_i = k \\mid x_i) &= \\operatorname{softmax}_k(G x_i + g), \\\\
    y_i \\mid x_i, z_i = k &\\sim N(\\beta_k^\\top x_i + b_k, \\sigma_k^2).

The gate logits are sharp (``sharpness`` times a unit-norm projection of
``x``), so each piece is essentially a region of ``X`` with soft borders.

Every quantity is a pure function of ``random_state``: the true parameters
are drawn from one child of ``numpy.random.SeedSequence(random_state)`` and
the rows from per-block children of another, in fixed blocks of
``_BLOCK_ROWS`` rows.  Hence the rows do not depend on how they are requested:
the chunks of :func:`iter_piecewise_linear` concatenate to exactly the arrays
of :func:`make_piecewise_linear` with the same arguments, whatever the chunk
size, and ``make_piecewise_linear(n)`` is a prefix of
``make_piecewise_linear(m)`` for ``n < m``.
"""

import numpy as np
from scipy.special import log_softmax, logsumexp, softmax

__all__ = [
    "make_piecewise_linear",
    "iter_piecewise_linear",
    "piecewise_linear_params",
    "piecewise_linear_loglik",
    "piecewise_linear_posterior",
]

#: Rows drawn per independent random block; fixed so that the data do not
#: depend on the chunk size of the streaming generator.
_BLOCK_ROWS = 65536


def piecewise_linear_params(
    n_features=5, n_pieces=4, noise=0.5, sharpness=5.0, random_state=0
):
    """Draw the true parameters of the piecewise-linear model.

    Parameters
    ----------
    n_features : int, default=5
        Number of input features ``d``.
    n_pieces : int, default=4
        Number of pieces (mixture components) ``K``.
    noise : float or array-like of shape (n_pieces,), default=0.5
        Noise standard deviations.  A float ``s`` gives each piece its own
        level, ``s`` times a factor spread geometrically over ``[0.5, 2]``
        (assigned to the pieces in random order).  An array gives the
        standard deviation of each piece directly.
    sharpness : float, default=5.0
        Norm of each row of the gate matrix ``G``.  The gate logits of a
        sample are ``sharpness`` times unit-norm projections of it, so larger
        values give crisper borders between pieces.
    random_state : int, default=0
        Seed; the parameters are a pure function of it.

    Returns
    -------
    params : dict
        ``"gate_coef"`` : ndarray of shape (n_pieces, n_features)
            Gate matrix ``G``.  When ``n_pieces <= n_features`` its rows are
            orthogonal, so with isotropic ``X`` every piece has the same
            expected share ``1 / n_pieces`` of the samples.
        ``"gate_intercept"`` : ndarray of shape (n_pieces,)
            Gate intercepts ``g`` (zeros).
        ``"coef"`` : ndarray of shape (n_pieces, n_features)
            Slopes ``beta_k`` of the pieces, i.i.d. ``N(0, 1)``.
        ``"intercept"`` : ndarray of shape (n_pieces,)
            Intercepts ``b_k`` of the pieces, i.i.d. ``N(0, 1)``.
        ``"noise"`` : ndarray of shape (n_pieces,)
            Noise standard deviations ``sigma_k``.
    """
    if n_features < 1 or n_pieces < 1:
        raise ValueError("n_features and n_pieces must be positive.")
    rng = np.random.default_rng(_param_seed(random_state))
    gauss = rng.standard_normal((n_features, n_pieces))
    if n_pieces <= n_features:
        directions = np.linalg.qr(gauss)[0].T
    else:
        directions = gauss.T / np.linalg.norm(gauss, axis=0)[:, None]
    noise = np.asarray(noise, dtype=np.float64)
    if noise.ndim == 0:
        noise = noise * rng.permutation(np.geomspace(0.5, 2.0, n_pieces))
    if noise.shape != (n_pieces,) or np.any(noise <= 0):
        raise ValueError("noise must be a positive float or n_pieces positive values.")
    return {
        "gate_coef": sharpness * directions,
        "gate_intercept": np.zeros(n_pieces),
        "coef": rng.standard_normal((n_pieces, n_features)),
        "intercept": rng.standard_normal(n_pieces),
        "noise": noise,
    }


def make_piecewise_linear(
    n_samples,
    n_features=5,
    n_pieces=4,
    noise=0.5,
    sharpness=5.0,
    random_state=0,
    return_params=False,
):
    """Generate piecewise-linear regression data with a softmax gate.

    Parameters
    ----------
    n_samples : int
        Number of rows.
    n_features : int, default=5
        Number of input features.
    n_pieces : int, default=4
        Number of linear pieces (true mixture components).
    noise : float or array-like of shape (n_pieces,), default=0.5
        Noise standard deviations, see :func:`piecewise_linear_params`.
    sharpness : float, default=5.0
        Sharpness of the softmax gate, see :func:`piecewise_linear_params`.
    random_state : int, default=0
        Seed; the output is a pure function of the arguments.
    return_params : bool, default=False
        If True, also return the true parameters and the piece of each row.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Inputs, float64, C-contiguous, i.i.d. ``N(0, I)``.
    y : ndarray of shape (n_samples,)
        Targets, float64.
    params : dict
        Only if ``return_params``: the dict of
        :func:`piecewise_linear_params`, plus ``"labels"``, an int64 array of
        shape (n_samples,) with the piece that generated each row.

    See Also
    --------
    iter_piecewise_linear : The same rows, chunk by chunk.
    piecewise_linear_loglik : True log-likelihood of the data.
    piecewise_linear_posterior : True posterior piece probabilities.

    Examples
    --------
    >>> X, y = make_piecewise_linear(1000)
    >>> X.shape, y.shape, X.flags["C_CONTIGUOUS"]
    ((1000, 5), (1000,), True)
    """
    params = piecewise_linear_params(
        n_features, n_pieces, noise, sharpness, random_state
    )
    X, y, labels = _rows(params, random_state, 0, n_samples)
    if return_params:
        return X, y, dict(params, labels=labels)
    return X, y


def iter_piecewise_linear(
    n_samples,
    chunk_size,
    n_features=5,
    n_pieces=4,
    noise=0.5,
    sharpness=5.0,
    random_state=0,
):
    """Generate piecewise-linear regression data chunk by chunk.

    Only one chunk (plus one internal block of ``_BLOCK_ROWS`` rows) is in
    memory at a time, so ``n_samples`` may exceed the memory of the machine.

    Parameters
    ----------
    n_samples : int
        Total number of rows over all chunks.
    chunk_size : int
        Rows per chunk; the last chunk holds the remainder.
    n_features, n_pieces, noise, sharpness, random_state
        As in :func:`make_piecewise_linear`.

    Yields
    ------
    X : ndarray of shape (chunk_rows, n_features)
        Inputs of the chunk, float64, C-contiguous.
    y : ndarray of shape (chunk_rows,)
        Targets of the chunk, float64.

    Notes
    -----
    Concatenating the chunks gives exactly the arrays returned by
    ``make_piecewise_linear(n_samples, ...)`` with the same arguments.

    Examples
    --------
    >>> chunks = list(iter_piecewise_linear(1000, chunk_size=300))
    >>> [len(y) for _, y in chunks]
    [300, 300, 300, 100]
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive.")
    params = piecewise_linear_params(
        n_features, n_pieces, noise, sharpness, random_state
    )
    cache = {}
    for start in range(0, n_samples, chunk_size):
        stop = min(start + chunk_size, n_samples)
        X, y, _ = _rows(params, random_state, start, stop, cache)
        yield X, y


def piecewise_linear_loglik(X, y, params):
    """Total log-likelihood of ``y`` given ``X`` under the given parameters.

    This is the reference value for a fitted mixture of experts: with
    ``params`` the true parameters it is the log-likelihood of the generating
    model, ``sum_i log sum_k pi_k(x_i) N(y_i; beta_k^T x_i + b_k, sigma_k^2)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs.
    y : array-like of shape (n_samples,)
        Targets.
    params : dict
        Parameters as returned by :func:`piecewise_linear_params` (extra keys
        are ignored).

    Returns
    -------
    loglik : float
        Total (not mean) log-likelihood, in nats.
    """
    return float(np.sum(logsumexp(_log_joint(X, y, params), axis=1)))


def piecewise_linear_posterior(X, y, params):
    """Posterior probability of each piece given ``(x_i, y_i)``.

    These are the exact E-step responsibilities of the model with parameters
    ``params``, e.g. soft targets for benchmarking a gate M-step.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Inputs.
    y : array-like of shape (n_samples,)
        Targets.
    params : dict
        Parameters as returned by :func:`piecewise_linear_params` (extra keys
        are ignored).

    Returns
    -------
    resp : ndarray of shape (n_samples, n_pieces)
        ``P(z_i = k | x_i, y_i)``; rows sum to one.
    """
    return softmax(_log_joint(X, y, params), axis=1)


def _log_joint(X, y, params):
    """``log pi_k(x_i) + log N(y_i; beta_k^T x_i + b_k, sigma_k^2)``, (n, K)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    log_gate = log_softmax(X @ params["gate_coef"].T + params["gate_intercept"], axis=1)
    resid = y[:, None] - (X @ params["coef"].T + params["intercept"])
    sigma = params["noise"]
    return (
        log_gate - 0.5 * (resid / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    )


def _param_seed(random_state):
    """Seed sequence for the true parameters of ``random_state``."""
    return np.random.SeedSequence(random_state, spawn_key=(0,))


def _block(params, random_state, index):
    """Rows ``[index * _BLOCK_ROWS, (index + 1) * _BLOCK_ROWS)`` of the data."""
    rng = np.random.default_rng(
        np.random.SeedSequence(random_state, spawn_key=(1, index))
    )
    n_features = params["coef"].shape[1]
    X = rng.standard_normal((_BLOCK_ROWS, n_features))
    gate = np.exp(
        log_softmax(X @ params["gate_coef"].T + params["gate_intercept"], axis=1)
    )
    # Inverse-CDF draw of one piece per row from its gate probabilities.
    u = rng.random(_BLOCK_ROWS)
    labels = (gate.cumsum(axis=1) < u[:, None]).sum(axis=1)
    labels = np.minimum(labels, gate.shape[1] - 1)
    eps = rng.standard_normal(_BLOCK_ROWS)
    y = (
        np.einsum("ij,ij->i", X, params["coef"][labels])
        + params["intercept"][labels]
        + params["noise"][labels] * eps
    )
    return X, y, labels


def _rows(params, random_state, start, stop, cache=None):
    """Rows ``[start, stop)`` of the data, assembled from random blocks.

    ``cache`` (a dict, optional) keeps the last block used so that
    consecutive chunks inside one block do not redraw it.
    """
    if cache is None:
        cache = {}
    n_features = params["coef"].shape[1]
    n = max(stop - start, 0)
    X = np.empty((n, n_features))
    y = np.empty(n)
    labels = np.empty(n, dtype=np.int64)
    pos = start
    while pos < stop:
        index, offset = divmod(pos, _BLOCK_ROWS)
        if index not in cache:
            cache.clear()
            cache[index] = _block(params, random_state, index)
        bX, by, blab = cache[index]
        take = min(_BLOCK_ROWS - offset, stop - pos)
        out = slice(pos - start, pos - start + take)
        X[out] = bX[offset : offset + take]
        y[out] = by[offset : offset + take]
        labels[out] = blab[offset : offset + take]
        pos += take
    return X, y, labels
