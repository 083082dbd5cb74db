"""A safeguarded Newton solver for many 1-D roots at once.

The likelihoods' M-steps solve one score equation per expert (a negative
binomial dispersion, a Student-t scale or degrees of freedom); each is the
root of a function that falls from positive to negative on a bracket.
"""

import numpy as np

__all__ = ["decreasing_root"]


def decreasing_root(func, lo, hi, start, tol=1e-10, max_iter=100):
    """Roots of ``func``, elementwise, each on ``[lo, hi]``.

    ``func(t, idx) -> (f, df)`` evaluates the functions of the problems
    ``idx`` (an index array) and their derivatives at the points ``t`` (one
    per problem in ``idx``). Where ``f(hi) >= 0`` the answer is
    ``hi``, where ``f(lo) <= 0`` it is ``lo``; elsewhere Newton's method from
    ``start``, kept inside a bracket on which ``f`` changes sign (a step that
    leaves it, or a derivative that is not negative, is replaced by
    bisection), until a step or the bracket is below ``tol``.

    Parameters
    ----------
    func : callable
        ``func(t, idx)`` for arrays ``t`` and ``idx`` of one shape,
        returning two arrays of that shape.
    lo, hi : ndarray of shape (m,)
        The brackets.
    start : ndarray of shape (m,)
        Starting points (clipped to the brackets).
    tol : float, default=1e-10
        Absolute tolerance on ``t``.
    max_iter : int, default=100
        Most Newton or bisection steps.

    Returns
    -------
    t : ndarray of shape (m,)
    """
    lo = np.array(lo, dtype=np.float64)
    hi = np.array(hi, dtype=np.float64)
    every = np.arange(lo.size)
    f_lo, _ = func(lo, every)
    f_hi, _ = func(hi, every)
    result = np.where(f_hi >= 0, hi, np.where(f_lo <= 0, lo, np.nan))
    active = np.flatnonzero(np.isnan(result))
    if active.size == 0:
        return result
    lo, hi = lo[active], hi[active]
    t = np.clip(np.asarray(start, dtype=np.float64)[active], lo, hi)
    for _ in range(max_iter):
        f, df = func(t, active)
        lo = np.where(f > 0, t, lo)  # the root lies above t
        hi = np.where(f > 0, hi, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_new = np.where(df < 0, t - f / df, np.nan)
        outside = ~((t_new > lo) & (t_new < hi))
        t_new = np.where(outside, 0.5 * (lo + hi), t_new)
        done = (np.abs(t_new - t) <= tol) | (hi - lo <= tol)
        t = t_new
        if np.all(done):
            break
    result[active] = t
    return result
