"""Optional array API support: the ``array_api_compat`` helpers (the copy
scikit-learn vendors, else the package, else None) and the namespace of an
array, for the modules that work on NumPy and on array API arrays alike."""

import numpy as np

try:  # the copy scikit-learn vendors (1.6 and later), else the package
    from sklearn.externals import array_api_compat
except ImportError:  # pragma: no cover - older scikit-learn
    try:
        import array_api_compat
    except ImportError:
        array_api_compat = None


def namespace_of(a):
    """NumPy for a NumPy array (or a list), else the array API namespace of ``a``
    (PyTorch, CuPy, array-api-strict)."""
    if isinstance(a, (np.ndarray, list, tuple)) or array_api_compat is None:
        return np
    if not array_api_compat.is_array_api_obj(a):
        return np
    xp = array_api_compat.array_namespace(a)
    return np if array_api_compat.is_numpy_namespace(xp) else xp
