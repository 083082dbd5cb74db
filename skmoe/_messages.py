"""The warnings that the NumPy and the array API fits both raise (a module
below both, so that neither imports the other)."""

import numpy as np

from . import _gather


def convergence_message(estimator):
    """The ConvergenceWarning's text of a fit that reached ``max_iter``."""
    if estimator.solver == "gd":
        return (
            f"Stochastic optimizer: maximum iterations (max_iter={estimator.max_iter} "
            "epochs) reached and the optimization hasn't converged yet. "
            "Increase max_iter or learning_rate_init."
        )
    return (
        f"EM did not converge in max_iter={estimator.max_iter} iterations (last "
        f"change of the objective above tol={estimator.tol}). Increase max_iter or tol."
    )


def warn_disagreement(candidates, total):
    """The initialisation pool's continued candidates reached different optima."""
    c = np.sort(candidates)[::-1] * total
    _gather.warn(
        "The initialisation pool's candidates disagree: the best "
        f"optimum (total log-likelihood {c[0]:.2f}) was reached by only "
        f"one of the {c.size} candidates continued (the others: "
        + ", ".join(f"{v:.2f}" for v in c[1:])
        + "); a better optimum may exist. n_init=3 explores more; the "
        "candidates' objectives are in init_candidates_.",
        UserWarning,
    )
