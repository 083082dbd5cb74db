"""DataFrame input: what the experts, the gate and the initialisation see.

A numpy array or a sparse matrix is validated to float64 as always, and
everything reads it directly: nothing in this module touches it (the fast
paths are unchanged).

A pandas or polars DataFrame is kept as it is: every expert receives it with
its columns and dtypes (a row subset keeps the order of its index), so that
Pipelines selecting columns by name and native categorical support work.
The other parts need numbers:

- the gate receives the columns that ``gate_features`` selects (by default,
  the numeric columns), as a float64 matrix; a gate Pipeline
  (``make_pipeline(OneHotEncoder(), SoftmaxGate())``) receives the selected
  columns as a DataFrame and its leading steps encode them once per fit
  (:class:`GateInput`);
- the k-means initialisation and the collapse repairs cluster the numeric
  columns of the frame (with ``y`` for the regressor), or the gate's input
  when the frame has no numeric column (:func:`numeric_columns`). An
  all-numeric frame therefore starts exactly as its numpy array does;
- the batched LinearRegression / Ridge paths run on the float64 values of an
  all-numeric frame (:func:`numeric_array`).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import check_array

#: dtype kinds that count as numeric columns (booleans, integers, floats).
_NUMERIC_KINDS = "biuf"


def is_dataframe(X):
    """Whether ``X`` is a pandas or polars DataFrame (kept as a frame)."""
    module = type(X).__module__.split(".")[0]
    return module in ("pandas", "polars") and hasattr(X, "columns") and hasattr(X, "shape")


def take_rows(X, rows):
    """``X[rows]`` for arrays, sparse matrices and DataFrames (positional rows)."""
    if is_dataframe(X):
        return _safe_indexing(X, rows, axis=0)
    return X[rows]


def _column_kinds(X):
    """The numpy dtype kind of every column of a frame (``"O"`` when not numeric)."""
    kinds = []
    for dtype in list(X.dtypes):
        try:
            kinds.append(np.dtype(dtype).kind)
        except TypeError:  # pandas extension dtypes (category, string), polars
            kind = getattr(dtype, "kind", None)
            if kind is None and hasattr(dtype, "is_numeric"):  # polars
                kind = "f" if dtype.is_numeric() else "O"
            kinds.append(kind if isinstance(kind, str) and kind in _NUMERIC_KINDS else "O")
    return np.array(kinds)


def numeric_positions(X):
    """Positions of the numeric (boolean, integer, float) columns of a frame."""
    kinds = _column_kinds(X)
    return np.flatnonzero(np.isin(kinds, list(_NUMERIC_KINDS)))


def non_numeric_columns(X):
    """Names of the columns of a frame that are not numeric ([] for an array)."""
    if not is_dataframe(X):
        return []
    numeric = set(numeric_positions(X))
    return [str(c) for i, c in enumerate(X.columns) if i not in numeric]


def _to_float(X):
    return np.ascontiguousarray(check_array(X, dtype=np.float64, ensure_all_finite=False))


def numeric_array(X):
    """``X`` as float64 values when every column is numeric, else None.

    Arrays and sparse matrices are returned as they are.
    """
    if not is_dataframe(X):
        return X
    if X.shape[1] == 0 or numeric_positions(X).size != X.shape[1]:
        return None
    try:
        return _to_float(X)
    except (TypeError, ValueError):
        return None


def numeric_columns(X, Z):
    """The float64 columns that the initialisation and the repairs cluster.

    None for an array (they use ``X`` itself). For a frame, its numeric
    columns (missing values set to their column's mean), or the gate's input
    ``Z`` when it has none.
    """
    if not is_dataframe(X):
        return None
    cols = numeric_positions(X)
    if cols.size == 0:
        return Z
    values = _to_float(_safe_indexing(X, cols, axis=1))
    missing = ~np.isfinite(values)
    if missing.any():
        # Experts such as HistGradientBoosting take missing values; the
        # start only needs a place for them: the column's mean.
        values[missing] = np.nan
        means = np.nan_to_num(np.nanmean(values, axis=0))
        values[missing] = np.take(means, np.nonzero(missing)[1])
    return values


def frame_like(X, template):
    """An array ``X`` as a pandas DataFrame with the columns and dtypes of
    ``template`` (a dict with ``columns`` and ``dtypes``), for experts fitted
    on a frame. (For a mixture fitted on a polars frame the dtypes are not
    kept: pass a polars frame to it.)"""
    import pandas as pd

    frame = pd.DataFrame(np.asarray(X, dtype=object), columns=template["columns"])
    return frame.astype(dict(zip(template["columns"], template["dtypes"])))


def frame_template(X):
    """What :func:`frame_like` needs to rebuild a frame like ``X``."""
    columns = list(X.columns)
    if type(X).__module__.split(".")[0] == "pandas":
        return {"columns": columns, "dtypes": list(X.dtypes)}
    return {"columns": columns, "dtypes": [object] * len(columns)}


def split_gate(gate, default):
    """``(transformer, gate)``: the leading steps of a gate Pipeline (or
    None) and the gate that follows the gate protocol (``default()`` when
    ``gate`` is None)."""
    if gate is None:
        return None, default()
    if isinstance(gate, Pipeline):
        steps = gate.steps
        final = steps[-1][1]
        if not all(hasattr(final, m) for m in ("prepare", "fit_soft", "log_proba")):
            raise TypeError(
                "The last step of a gate Pipeline must be a gate (with prepare, "
                f"fit_soft and log_proba, such as SoftmaxGate); got {final!r}."
            )
        head = Pipeline(steps[:-1]) if len(steps) > 1 else None
        return head, final
    return None, gate


class GateInput:
    """Builds the gate's float64 input from ``X``.

    ``columns``: positions of the gate's columns (None: all of them);
    ``transformer``: the fitted leading steps of a gate Pipeline, or None.
    """

    def __init__(self, columns, transformer):
        self.columns = columns
        self.transformer = transformer

    @classmethod
    def fit(cls, X, y, columns, transformer):
        """Fit ``transformer`` (a clone) on the gate's columns of ``X``."""
        if transformer is not None:
            transformer = clone(transformer)
        out = cls(columns, transformer)
        Xg = out._select(X)
        if transformer is None:
            return out, out._check(Xg, X)
        return out, out._check(transformer.fit_transform(Xg, y), X)

    def __call__(self, X):
        Xg = self._select(X)
        if self.transformer is not None:
            Xg = self.transformer.transform(Xg)
        return self._check(Xg, X)

    def _select(self, X):
        if self.columns is None:
            return X
        if len(self.columns) == 0:  # gate_features=[]: the constant gate
            return np.zeros((X.shape[0], 0))
        if is_dataframe(X):
            return _safe_indexing(X, self.columns, axis=1)
        Z = X[:, self.columns]
        return Z if sp.issparse(Z) else np.ascontiguousarray(Z)

    def _check(self, Z, X):
        if not is_dataframe(Z) and self.transformer is None and (
            not is_dataframe(X) or Z.shape[1] == 0
        ):
            return Z  # an array already validated with X, or no column
        try:
            return check_array(
                Z, accept_sparse=["csr", "csc"], dtype=np.float64, order="C"
            )
        except (TypeError, ValueError) as exc:
            bad = non_numeric_columns(Z)
            if bad:
                raise ValueError(
                    f"The gate needs numeric input, but its columns {bad} are not "
                    "numeric. Select numeric columns with gate_features, or "
                    "encode them in a gate Pipeline, for example gate="
                    "make_pipeline(OneHotEncoder(), SoftmaxGate())."
                ) from exc
            raise ValueError(f"Invalid input for the gate: {exc}") from exc
