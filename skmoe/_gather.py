"""Warnings raised while a mixture is fitted, gathered and summarised once.

EM refits every expert at every iteration, and the ``n_init`` restarts may
run in worker processes (``n_jobs``), where a warning goes to the worker's
stderr instead of the caller's filters. So the warnings of a fit are
recorded (:func:`recording`, in the worker; :func:`gathered`, around the
whole fit) and, at the end of the fit, each distinct warning is raised once
in the caller's process, with the number of times it was raised:

    ConvergenceWarning: lbfgs failed to converge ... (raised 37 times during
    this fit)

The caller's warning filters then apply as usual (``"ignore"``, ``"error"``).

In a worker process (a grid search or ``cross_validate`` with ``n_jobs``, on
joblib's process backends) the mixture raises each distinct warning of its
own once per worker (:func:`warn`): scikit-learn's workers reset the
warnings registry at every task, so a warning that Python would show once
came back from every fit of the search.
"""

import contextlib
import multiprocessing
import os
import sys
import warnings
from contextlib import contextmanager

import sklearn

#: (category, message) already raised by this worker process.
_RAISED_IN_WORKER = set()

#: Files whose frames a warning skips to reach the user's line: skmoe,
#: scikit-learn (its fit wrappers, a grid search), contextlib (the exit of
#: :func:`gathered`).
_LIBRARY_FILES = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep,
    os.path.abspath(contextlib.__file__),
)


def _user_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` in :func:`warn` that points
    at the first frame outside skmoe and scikit-learn: the user's line."""
    frame, level = sys._getframe(2), 2  # the caller of warn()
    while frame.f_back is not None and os.path.abspath(
        frame.f_code.co_filename
    ).startswith(_LIBRARY_FILES):
        frame, level = frame.f_back, level + 1
    return level


def warn(message, category, stacklevel=None):
    """``warnings.warn``, but once per distinct warning in a worker process.

    The warning points at the user's line (the first frame outside skmoe
    and scikit-learn) unless ``stacklevel`` is given.
    """
    if multiprocessing.parent_process() is not None:
        if (category, message) in _RAISED_IN_WORKER:
            return
        _RAISED_IN_WORKER.add((category, message))
    if stacklevel is None:
        stacklevel = _user_stacklevel()
    warnings.warn(message, category, stacklevel=stacklevel)


def recording(func, *args, **kwargs):
    """``(func(*args, **kwargs), records)``: its warnings as (category, message)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    return result, [(w.category, str(w.message)) for w in caught]


def replay(records):
    """Raise recorded warnings again (inside :func:`gathered`, they are counted)."""
    for category, message in records:
        warnings.warn(message, category, stacklevel=2)


def summary(records):
    """``(category, message)`` of each distinct warning, with its count appended."""
    counts = {}
    for category, message in records:
        counts[(category, message)] = counts.get((category, message), 0) + 1
    return [
        (category, message if n == 1 else f"{message} (raised {n} times during this fit)")
        for (category, message), n in counts.items()
    ]


@contextmanager
def gathered():
    """Record the warnings of the block; raise each distinct one once at its end."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            records = [(w.category, str(w.message)) for w in caught]
    for category, message in summary(records):
        warn(message, category)
