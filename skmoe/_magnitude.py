"""Refusal of inputs whose squares (weighted, summed over rows) overflow float64.

skmoe squares X and y (variances, Gram matrices, weighted standardisation)
and sums them over rows with their sample weights. float64 overflows above
about 1.8e308, so a square overflows above about 1.3e154. The one limit:
values up to :data:`MAX_ABS_VALUE` (1e150) in absolute value, which leaves
room for sums over up to 1e8 rows of unit weight; the weighted sums
``sum(sample_weight) * max|value| ** 2`` up to :data:`MAX_WEIGHTED_SQUARES`.
"""

import numpy as np
import scipy.sparse as sp

#: Largest absolute value accepted in X or y.
MAX_ABS_VALUE = 1e150

#: Largest ``sum(sample_weight) * max|X or y| ** 2`` accepted.
MAX_WEIGHTED_SQUARES = 1e306


def largest_abs(a):
    """The largest absolute value of an array or sparse matrix (0 if empty).

    Two reductions, no temporary of the size of ``a`` (np.abs would copy
    it: 1.6 GB for a 10,000,000 x 20 memmap).
    """
    values = a.data if sp.issparse(a) else a
    if values.size == 0:
        return 0.0
    return max(float(np.max(values)), -float(np.min(values)))


def check_magnitude(a, name):
    """Refuse values above :data:`MAX_ABS_VALUE` in absolute value."""
    largest = largest_abs(a)
    if largest > MAX_ABS_VALUE:
        raise ValueError(
            f"{name} holds values up to {largest:.3g} in absolute value; skmoe "
            f"accepts values up to {MAX_ABS_VALUE:.0e}: it squares them "
            "(variances, Gram matrices) and float64 overflows above about "
            f"1.3e154. Rescale {name} (e.g. divide it by a constant or use "
            "sklearn.preprocessing.StandardScaler)."
        )


def check_weighted_magnitude(sample_weight, arrays):
    """Refuse sample weights whose weighted sums of squares overflow.

    ``arrays`` maps a name (``"X"``, ``"y"``) to a numeric array whose
    squares are summed with the weights. The weights are not rescaled
    here: the penalties of the gate and of the experts weigh against the
    weighted sums, so a fit is not invariant to the weights' scale.
    """
    total = float(np.sum(sample_weight))
    if not np.isfinite(total):
        raise ValueError(
            "sample_weight sums to more than float64 can hold (the largest "
            f"weight is {float(np.max(sample_weight)):.3g}). sample_weight is "
            "relative: divide it by a constant (e.g. by its mean)."
        )
    for name, a in arrays.items():
        largest = largest_abs(a)
        if total > 0 and largest > 0 and (
            np.log10(total) + 2.0 * np.log10(largest) > np.log10(MAX_WEIGHTED_SQUARES)
        ):
            raise ValueError(
                f"sample_weight sums to {total:.3g} and {name} holds values up "
                f"to {largest:.3g} in absolute value: the weighted sums of "
                f"squares of {name} (about {total:.3g} x {largest:.3g}^2) "
                "overflow float64. Divide sample_weight by a constant (e.g. "
                f"by its mean) or rescale {name}."
            )
