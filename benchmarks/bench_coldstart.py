"""Cold start: a new process that imports skmoe and fits a small model.

Runs, ``--repeat`` times each, a fresh interpreter that imports skmoe and
fits a 500-row mixture (timing import + fit), and compares the best with the
same fit repeated in a warm process (everything imported and compiled). The
difference is what a user pays per process: with the numba cache working it
is loading cached machine code, not compiling. It also times a new process
that imports scikit-learn and fits a LinearRegression, which every
scikit-learn user pays anyway (``sklearn_alone_cold_s``; importing
scikit-learn loads scipy.stats, and pandas when it is installed), and
reports skmoe's own part, ``skmoe_extra_s`` = cold - sklearn alone - warm.

    python benchmarks/bench_coldstart.py [--repeat 5]

Read-only installs: numba writes its cache next to the module
(``skmoe/__pycache__``) when that directory is writable, and otherwise falls
back to a per-user directory (``$NUMBA_CACHE_DIR`` if set, else
``~/.cache/numba`` or the platform's equivalent, keyed by the module's full
path). ``--readonly`` checks it: it copies the package into a temporary
directory, sets ``NUMBA_CACHE_DIR`` to an empty temporary directory, makes
the package's tree read-only, and reports first and second cold runs.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench import table, write  # noqa: E402

SNIPPET = r"""
import time
t0 = time.perf_counter()
import numpy as np
import sklearn.base, sklearn.linear_model
ts = time.perf_counter()
from skmoe import MixtureOfExpertsRegressor
rng = np.random.RandomState(0)
X = rng.uniform(-3, 3, size=(500, 2))
y = np.where(X[:, 0] < 0, -2 * X[:, 0], 3 * X[:, 0]) + 0.1 * rng.randn(500)
t1 = time.perf_counter()
MixtureOfExpertsRegressor(n_experts=2, random_state=0, max_iter=20).fit(X, y)
t2 = time.perf_counter()
print(t2 - t0, t2 - t1, ts - t0)
"""

# The same process with scikit-learn alone: what any scikit-learn user pays.
SNIPPET_SKLEARN = r"""
import time
t0 = time.perf_counter()
import numpy as np
import sklearn.base, sklearn.linear_model
from sklearn.linear_model import LinearRegression
rng = np.random.RandomState(0)
X = rng.uniform(-3, 3, size=(500, 2))
y = 3 * X[:, 0] + 0.1 * rng.randn(500)
LinearRegression().fit(X, y)
print(time.perf_counter() - t0)
"""


def _cold(env=None, cwd=None, snippet=SNIPPET):
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                         env=env, cwd=cwd, check=True).stdout.split()
    return tuple(float(v) for v in out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--readonly", action="store_true")
    args = p.parse_args()
    load_start = list(os.getloadavg())
    _cold()  # make sure the cache exists
    runs = [_cold() for _ in range(args.repeat)]
    cold = min(r[0] for r in runs)
    sklearn_import = min(r[2] for r in runs)
    sklearn_alone = min(_cold(snippet=SNIPPET_SKLEARN)[0] for _ in range(args.repeat))
    import numpy as np

    from skmoe import MixtureOfExpertsRegressor

    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, size=(500, 2))
    y = np.where(X[:, 0] < 0, -2 * X[:, 0], 3 * X[:, 0]) + 0.1 * rng.randn(500)
    warm = np.inf
    for _ in range(args.repeat + 1):
        t = time.perf_counter()
        MixtureOfExpertsRegressor(n_experts=2, random_state=0, max_iter=20).fit(X, y)
        warm = min(warm, time.perf_counter() - t)
    rows = [dict(
        case="installed", cold_import_fit_s=cold, warm_fit_s=warm, extra_s=cold - warm,
        sklearn_import_s=sklearn_import, sklearn_alone_cold_s=sklearn_alone,
        # What skmoe adds to a process that has scikit-learn anyway: its
        # imports (numba included), loading the cached kernels, the fit.
        skmoe_extra_s=cold - sklearn_alone - warm,
    )]
    if args.readonly:
        import skmoe

        src = os.path.dirname(os.path.abspath(skmoe.__file__))
        with tempfile.TemporaryDirectory() as tmp:
            pkg = os.path.join(tmp, "site", "skmoe")
            shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__"))
            cache = os.path.join(tmp, "numba-cache")
            os.makedirs(cache)
            for root, dirs, files in os.walk(os.path.join(tmp, "site")):
                for name in files + dirs:
                    os.chmod(os.path.join(root, name), 0o555)
            os.chmod(os.path.join(tmp, "site"), 0o555)
            env = dict(os.environ, PYTHONPATH=os.path.join(tmp, "site"), NUMBA_CACHE_DIR=cache,
                       PYTHONDONTWRITEBYTECODE="1")
            first = _cold(env, cwd=tmp)[0]
            second = min(_cold(env, cwd=tmp)[0] for _ in range(args.repeat))
            n_cached = sum(len(f) for _, _, f in os.walk(cache))
            wrote_in_tree = os.path.exists(os.path.join(pkg, "__pycache__"))
            for root, dirs, files in os.walk(os.path.join(tmp, "site")):
                os.chmod(root, 0o755)
        rows.append(dict(case="read-only tree, NUMBA_CACHE_DIR", cold_import_fit_s=second,
                         first_run_s=first, warm_fit_s=warm, extra_s=second - warm,
                         cache_files=n_cached, wrote_in_package=wrote_in_tree,
                         note="running as root ignores file modes" if os.geteuid() == 0 else ""))
    table(rows, ["case", "cold_import_fit_s", "warm_fit_s", "extra_s", "sklearn_import_s",
                 "sklearn_alone_cold_s", "skmoe_extra_s", "first_run_s", "cache_files"])
    write("bench_coldstart", rows, loadavg_at_start=load_start,
          target="extra_s < 1 (skmoe_extra_s: the part beyond importing scikit-learn)")


if __name__ == "__main__":
    main()
