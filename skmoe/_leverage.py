"""How far a row lies from the rows each expert was fitted on: its leverage.

A linear model's prediction at ``x`` has variance ``sigma^2 h(x)`` with the
leverage ``h(x) = x~^T (X~^T W X~)^{-1} x~`` (``x~ = [1, x]``), so a new
``y`` has variance ``sigma^2 (1 + h(x))``: the prediction interval of a
linear model widens away from its data. Under a mixture, expert ``k`` is
fitted with the weights ``W_k`` = its responsibilities, and ``h_k(x)`` is
small inside the region it owns and grows quadratically outside it. The
regressor's ``predictive_variance="leverage"`` uses ``sigma_k^2 (1 + h_k(x))``
as expert ``k``'s predictive variance.

The columns are standardised (training mean and standard deviation) before
the Gram matrices are formed, and each matrix gets a relative jitter, so
the leverage does not depend on the units of ``X`` and stays finite for an
expert whose rows do not span every column.
"""

import numpy as np
from scipy import linalg

#: Relative jitter added to the diagonal of every weighted Gram matrix.
_JITTER = 1e-8
#: Most numeric columns for which the leverage is computed (``K (p + 1)^2``
#: numbers are stored).
MAX_FEATURES = 1000


class ExpertLeverage:
    """Every expert's weighted Gram matrix inverse on standardised inputs.

    Parameters
    ----------
    mean, scale : ndarray of shape (n_features,)
        The standardisation of the columns.
    precisions : ndarray of shape (n_experts, n_features + 1, n_features + 1)
        ``(Z^T W_k Z + jitter)^{-1}`` with ``Z = [1, (X - mean) / scale]``.
    """

    def __init__(self, mean, scale, precisions):
        self.mean = mean
        self.scale = scale
        self.precisions = precisions

    @classmethod
    def fit(cls, X, weights):
        """The leverage model of training rows ``X`` under ``weights``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The numeric training inputs.
        weights : ndarray of shape (n_samples, n_experts)
            Every expert's weight on every row (responsibilities times
            sample weights).
        """
        total = weights.sum(axis=1)
        mean = np.average(X, axis=0, weights=total)
        scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=total))
        scale[~(scale > 0)] = 1.0
        Z = _design(X, mean, scale)
        d = Z.shape[1]
        precisions = np.empty((weights.shape[1], d, d))
        for k in range(weights.shape[1]):
            gram = Z.T @ (Z * weights[:, k : k + 1])
            gram[np.diag_indices(d)] += _JITTER * max(np.trace(gram) / d, 1.0)
            precisions[k] = linalg.pinvh(gram)
        return cls(mean, scale, precisions)

    def __call__(self, X):
        """``h_k(x)`` for every row and expert, ``(n_samples, n_experts)``."""
        Z = _design(X, self.mean, self.scale)
        return np.maximum(np.einsum("ij,kjl,il->ik", Z, self.precisions, Z), 0.0)


def _design(X, mean, scale):
    return np.column_stack([np.ones(X.shape[0]), (X - mean) / scale])
