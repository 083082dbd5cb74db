"""skmoe: mixtures of experts for tabular machine learning, the scikit-learn way.

The public API:

- :class:`MixtureOfExpertsRegressor`: a gated mixture of Gaussian experts;
- :class:`MixtureOfExpertsClassifier`: a gated mixture of classifiers;
- :class:`StandardizedRidge`: a ridge regression penalised on the
  standardised scale, the regressor's default expert;
- :class:`SoftmaxGate`: the softmax gating network, a soft-target
  multinomial logistic regression usable on its own.
"""

from ._classifier import MixtureOfExpertsClassifier
from ._gating import SoftmaxGate
from ._regressor import MixtureOfExpertsRegressor
from ._ridge import StandardizedRidge
from ._version import __version__

__all__ = [
    "MixtureOfExpertsClassifier",
    "MixtureOfExpertsRegressor",
    "SoftmaxGate",
    "StandardizedRidge",
    "__version__",
]
