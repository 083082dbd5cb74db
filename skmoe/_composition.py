"""Parameters of a mixture as a composition: named experts and tunable defaults.

- A list of ``(name, estimator)`` experts works as the estimators of
  :class:`~sklearn.ensemble.VotingRegressor`: ``get_params`` lists each
  expert by its name and its parameters as ``<name>__<parameter>``, and
  ``set_params`` sets them or replaces an expert by name (scikit-learn's
  ``_BaseComposition``).
- The defaults ``gate=None`` and ``experts=None`` are tunable as they are: a
  nested parameter (``gate__alpha``, ``experts__fit_intercept``) first puts
  the default estimator in their place.
- The HTML diagram draws the gate and every expert.
"""

from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import _BaseComposition

from ._gating import SoftmaxGate


def is_named(experts):
    """Whether ``experts`` is a list of ``(name, estimator)`` tuples."""
    return isinstance(experts, list) and bool(experts) and all(
        isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        for item in experts
    )


class ExpertsComposition(_BaseComposition):
    """``get_params`` / ``set_params`` / the HTML diagram of the mixtures.

    Subclasses define ``_default_expert(solver)``.
    """

    def _default_gate(self):
        """The gate used when ``gate`` is None."""
        return SoftmaxGate()

    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        With a list of named experts (``[("linear", Ridge()), ...]``) the
        deep parameters include every expert by its name and its parameters
        as ``<name>__<parameter>`` (as :class:`~sklearn.ensemble.VotingRegressor`).

        Parameters
        ----------
        deep : bool, default=True
            If True, return the parameters of the gate and the experts too.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        if is_named(self.experts):
            return self._get_params("experts", deep=deep)
        # A single expert may itself be iterable (a fitted ensemble iterates
        # over its members): _BaseComposition would take it for a list.
        return BaseEstimator.get_params(self, deep=deep)

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Nested parameters reach the gate (``gate__alpha``), a single expert
        estimator (``experts__alpha``) or a named expert
        (``linear__alpha`` for ``experts=[("linear", Ridge()), ...]``; a
        named expert can also be replaced, ``linear=Lasso()``). With the
        default ``gate=None`` or ``experts=None``, a nested parameter first
        sets the default estimator (:class:`SoftmaxGate`; the default
        expert, for example ``LinearRegression``), so that
        ``GridSearchCV(MixtureOfExpertsRegressor(), {"gate__alpha": [...]})``
        works as it is.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        for prefix in ("experts", "gate"):
            nested = [k for k in params if k.startswith(prefix + "__")]
            if nested and params.get(prefix, getattr(self, prefix, None)) is None:
                params[prefix] = (
                    self._default_gate() if prefix == "gate"
                    else self._default_expert(params.get("solver", self.solver))
                )
            if nested and isinstance(params.get(prefix, getattr(self, prefix, None)), list):
                raise ValueError(
                    f"Cannot set {nested[0]!r}: experts is a list. Name the "
                    'experts, experts=[("linear", Ridge()), ("tree", '
                    'DecisionTreeRegressor())], and set linear__alpha.'
                )
        if is_named(params.get("experts", self.experts)):
            return self._set_params("experts", **params)
        return BaseEstimator.set_params(self, **params)

    def _sk_visual_block_(self):
        """The HTML diagram: the gate and every expert, side by side."""
        try:
            from sklearn.utils._repr_html.estimator import _VisualBlock
        except ImportError:  # scikit-learn < 1.7
            from sklearn.utils._estimator_html_repr import _VisualBlock
        gate = self._default_gate() if self.gate is None else self.gate
        names, estimators = ["gate"], [gate]
        experts = self.experts
        if isinstance(experts, list) and is_named(experts):
            names += [str(name) for name, _ in experts]
            estimators += [est for _, est in experts]
        elif isinstance(experts, list):
            names += [f"experts[{i}]" for i in range(len(experts))]
            estimators += list(experts)
        else:
            names.append("experts")
            estimators.append(
                self._default_expert(self.solver) if experts is None else experts
            )
        names = [f"{n}: {type(e).__name__}" for n, e in zip(names, estimators)]
        return _VisualBlock(
            "parallel", estimators, names=names,
            name_details=[str(e) for e in estimators],
        )
