"""skmoe: mixtures of experts for tabular machine learning, the scikit-learn way.

The public API:

- :class:`MixtureOfExpertsRegressor`: a gated mixture of regression experts
  (Gaussian, Poisson or Gamma);
- :class:`MixtureOfExpertsClassifier`: a gated mixture of classifiers;
- :class:`SoftmaxGate`: the softmax gating network, a soft-target
  multinomial logistic regression usable on its own;
- :class:`ClassifierGate`: any scikit-learn classifier as the gate;
- :class:`HierarchicalGate`: the tree of gates of the hierarchical mixture
  of experts.
"""

from ._classifier import MixtureOfExpertsClassifier
from ._gates import ClassifierGate, HierarchicalGate
from ._gating import SoftmaxGate
from ._regressor import MixtureOfExpertsRegressor
from ._version import __version__

__all__ = [
    "ClassifierGate",
    "HierarchicalGate",
    "MixtureOfExpertsClassifier",
    "MixtureOfExpertsRegressor",
    "SoftmaxGate",
    "__version__",
]
