"""Small helpers shared by the estimators."""

from contextlib import nullcontext

from threadpoolctl import ThreadpoolController

# Below this many input elements, BLAS threads cost more than they save: the
# EM's products are tiny and OpenBLAS threads spin between them (measured: an
# 8-parameter L-BFGS solve took 58 ms with the default threads on a busy
# 2-core machine and 1 ms with one thread).
SMALL_PROBLEM_ELEMENTS = 2_000_000

_controller = None


def blas_threads_for(n_elements):
    """Context manager limiting BLAS to one thread for small problems.

    Parameters
    ----------
    n_elements : int
        Size of the data the block works on (``n_samples * n_features``).

    Returns
    -------
    context : context manager
        ``threadpoolctl``'s limit for small problems, a no-op otherwise.
    """
    global _controller
    if n_elements > SMALL_PROBLEM_ELEMENTS:
        return nullcontext()
    if _controller is None:
        # Created lazily, once the BLAS libraries are loaded (~10 us per use).
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
