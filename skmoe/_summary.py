"""Coefficient tables of a fitted mixture: text as statsmodels prints them, or
a DataFrame."""

import numpy as np
from scipy.stats import norm

#: Rows whose Wald test of zero means nothing (a variance, a shape).
_UNTESTED = ("variance", "shape")


def coefficient_table(names, coef, se, alpha=0.05):
    """Rows of ``(block, term, coef, std err, z, p, lower, upper)``.

    Parameters
    ----------
    names : list of (str, str)
        ``(block, term)`` of every parameter.
    coef : ndarray of shape (P,)
        The estimates.
    se : ndarray of shape (P,)
        Their standard errors.
    alpha : float, default=0.05
        The intervals are at level ``1 - alpha``.

    Returns
    -------
    rows : list of tuple
        One per parameter; ``z`` and ``p`` are NaN for the likelihood's own
        parameters (their value 0 is not a hypothesis).
    """
    q = norm.ppf(1 - alpha / 2)
    rows = []
    for (block, term), b, s in zip(names, coef, se):
        z = b / s if s > 0 else np.nan
        p = 2 * norm.sf(abs(z)) if np.isfinite(z) else np.nan
        if term in _UNTESTED:
            z = p = np.nan
        rows.append((block, term, b, s, z, p, b - q * s, b + q * s))
    return rows


def _fmt(value, width=10):
    """One cell: a space, then the number in ``width - 1`` characters."""
    if not np.isfinite(value):
        return " " * width
    if abs(value) < 1e4:
        return f" {value:>{width - 1}.4f}"
    return f" {value:>{width - 1}.2e}"


def format_table(rows, title, alpha=0.05):
    """The rows as a text table, one section per block.

    Parameters
    ----------
    rows : list of tuple
        From :func:`coefficient_table`.
    title : str
        The header line.
    alpha : float, default=0.05
        The level of the intervals (for the column names).

    Returns
    -------
    text : str
        The table.
    """
    lo, hi = f"[{alpha / 2:.3f}", f"{1 - alpha / 2:.3f}]"
    width = max([len(r[1]) for r in rows] + [12]) + 2
    head = (
        f"{'':<{width}}{'coef':>10}{'std err':>10}{'z':>10}{'P>|z|':>10}"
        f"{lo:>10}{hi:>10}"
    )
    rule = "=" * len(head)
    lines = [rule, title, rule]
    block = None
    for name, term, b, s, z, p, low, up in rows:
        if name != block:
            block = name
            lines += ["", name, head, "-" * len(head)]
        lines.append(
            f"{term:<{width}}" + "".join(_fmt(v) for v in (b, s, z, p, low, up))
        )
    lines.append(rule)
    return "\n".join(lines)


def table_frame(rows, alpha=0.05):
    """The rows as a pandas DataFrame indexed by ``(block, term)``.

    Parameters
    ----------
    rows : list of tuple
        From :func:`coefficient_table`.
    alpha : float, default=0.05
        The level of the intervals (for the column names).

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``coef, std err, z, P>|z|, [alpha/2, 1-alpha/2]``.
    """
    try:
        import pandas as pd
    except ImportError as exc:  # pandas is optional
        raise ImportError(
            "summary_frame needs pandas (pip install pandas); summary() prints the "
            "same table without it."
        ) from exc
    columns = [
        "coef",
        "std err",
        "z",
        "P>|z|",
        f"[{alpha / 2:g}",
        f"{1 - alpha / 2:g}]",
    ]
    index = pd.MultiIndex.from_tuples([r[:2] for r in rows], names=["block", "term"])
    return pd.DataFrame([r[2:] for r in rows], index=index, columns=columns)


class MixtureSummary:
    """The coefficient table of a fitted mixture; ``print`` it.

    Parameters
    ----------
    rows : list of tuple
        From :func:`coefficient_table`.
    title : str
        The header line.
    alpha : float
        The level of the intervals.
    """

    def __init__(self, rows, title, alpha):
        self.rows = rows
        self.title = title
        self.alpha = alpha

    def as_text(self):
        """The table as text.

        Returns
        -------
        text : str
            What ``print`` shows.
        """
        return format_table(self.rows, self.title, self.alpha)

    def as_frame(self):
        """The table as a pandas DataFrame (pandas needed).

        Returns
        -------
        frame : pandas.DataFrame
            Indexed by ``(block, term)``.
        """
        return table_frame(self.rows, self.alpha)

    def __str__(self):
        return self.as_text()

    def __repr__(self):
        return self.as_text()
