"""skmoe: mixtures of experts for tabular machine learning, the scikit-learn way.

The public API:

- :class:`MixtureOfExpertsRegressor`: a gated mixture of regression experts
  (Gaussian, Poisson, Gamma, negative binomial or Student-t);
- :class:`MixtureOfExpertsClassifier`: a gated mixture of classifiers;
- :class:`StudentTLikelihood`: Student-t expert noise (robust regression
  experts) with fixed or estimated degrees of freedom, the regressor's
  ``likelihood="student_t"``;
- :class:`MultiOutputExpert`: one estimator per output, the expert of a
  multi-output mixture (a ``y`` of several columns);
- :class:`StandardizedRidge`: a ridge regression penalised on the
  standardised scale, the regressor's default expert;
- :class:`SoftmaxGate`: the softmax gating network, a soft-target
  multinomial logistic regression usable on its own;
- :class:`DensityConformalRegressor`: highest-density split conformal
  sets around a regressor's predictive mixture, and :class:`PredictionSet`,
  the sets (unions of intervals) it and ``predict_interval(kind="hdr")``
  return;
- :class:`ClassifierGate`: any scikit-learn classifier as the gate;
- :class:`HierarchicalGate`: the tree of gates of the hierarchical mixture
  of experts;
- :func:`to_numpy`: a NumPy copy of a mixture fitted on array API inputs
  (PyTorch, CuPy) under scikit-learn's ``array_api_dispatch``.
"""

from ._array_api import to_numpy
from ._classifier import MixtureOfExpertsClassifier
from ._conformal import DensityConformalRegressor
from ._gates import ClassifierGate, HierarchicalGate
from ._gating import SoftmaxGate
from ._multioutput import MultiOutputExpert
from ._predictive import PredictionSet
from ._regressor import MixtureOfExpertsRegressor
from ._ridge import StandardizedRidge
from ._student_t import StudentTLikelihood
from ._version import __version__

__all__ = [
    "ClassifierGate",
    "DensityConformalRegressor",
    "HierarchicalGate",
    "MixtureOfExpertsClassifier",
    "MixtureOfExpertsRegressor",
    "PredictionSet",
    "MultiOutputExpert",
    "SoftmaxGate",
    "StandardizedRidge",
    "StudentTLikelihood",
    "__version__",
    "to_numpy",
]
