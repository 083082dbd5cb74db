"""Shared helpers of the skmoe benchmark scripts: timing, machine state, output."""

import json
import os
import platform
import time
from datetime import datetime, timezone

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def best_of(func, repeat):
    """Run ``func`` ``repeat`` times; return (best seconds, last result)."""
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def machine():
    import numba
    import scipy
    import sklearn

    import skmoe

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "numba": numba.__version__,
        "skmoe": skmoe.__version__,
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
    }


def write(name, rows, **extra):
    """Write ``results/<name>.json`` with the machine state; print the path."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "loadavg_at_end": list(os.getloadavg()),
        "versions": machine(),
        **extra,
        "rows": rows,
    }
    with open(path, "w") as fh:
        json.dump(report, fh, indent=2, default=float)
        fh.write("\n")
    print(f"\nwritten to {path}")


def table(rows, columns):
    """Print ``rows`` (dicts) as a plain-text table of ``columns``."""
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.1f}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for x in cells:
        print("  ".join(v.rjust(w) for v, w in zip(x, widths)))
