"""Speed of the default classifier against one LogisticRegression (issue 13, table 3b).

The default ``MixtureOfExpertsClassifier`` on scikit-learn's breast cancer
data (standardised), against one ``LogisticRegression`` on the same data,
timed in the same process: the ratio of the two, best of ``--repeat`` fits
each (the default's ``n_experts=None`` fits two experts and one and keeps
the lower BIC: "experts" says which, 1 on these data). With ``--before
DIR`` (another checkout of the repository, e.g. ``git worktree add
../skmoe-before <commit>``) the same measurement runs
with that checkout's skmoe too, the two alternating in fresh processes,
so that both ratios come from one run on the same machine load. BLAS runs
single-threaded in every process (on a loaded machine a threaded BLAS
slows LogisticRegression down by up to a hundred times).

    python benchmarks/clf_speed.py [--before DIR] [--rounds 3] [--repeat 5]
"""

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, time, warnings
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
import skmoe
from skmoe import MixtureOfExpertsClassifier

repeat = int(__import__("sys").argv[1])
bc = load_breast_cancer()
X = StandardScaler().fit_transform(bc.data)
y = bc.target


def best(make):
    times, est = [], None
    for _ in range(repeat):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            est = make().fit(X, y)
            times.append(time.perf_counter() - start)
    return min(times), est


best(lambda: MixtureOfExpertsClassifier(random_state=0))  # compile and warm up
t_lr, _ = best(LogisticRegression)
t_moe, moe = best(lambda: MixtureOfExpertsClassifier(random_state=0))
# The objective EM and the polish maximise: the log-likelihood minus the
# gate's penalty (alpha / 2 times its squared coefficients on the
# standardised inputs) and the experts' (1 / (2 C) times theirs).
W_s = moe.gate_.coef_.T * X.std(axis=0)[:, None]
penalty = 0.5 * moe.gate_.alpha * np.sum(W_s**2) + sum(
    0.5 / e.C * np.sum(e.coef_**2) for e in moe.experts_)
loglik = float(moe.log_likelihood_) * len(y)
print(json.dumps(dict(
    skmoe_s=t_moe, logreg_s=t_lr, ratio=t_moe / t_lr,
    n_iter=int(moe.n_iter_), loglik=loglik, penalised=loglik - penalty,
    converged=bool(moe.converged_), n_experts=int(moe.n_experts_),
)))
"""


def measure(checkout, repeat):
    env = dict(os.environ, PYTHONPATH=checkout, OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(repeat)], env=env, check=True, cwd=checkout,
        capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", help="another checkout to compare with")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    checkouts = {"this checkout": REPO}
    if args.before:
        checkouts = {"before": os.path.abspath(args.before), **checkouts}
    print(f"load average {os.getloadavg()[0]:.2f}")
    results = {name: [] for name in checkouts}
    for r in range(args.rounds):
        for name, path in checkouts.items():
            res = measure(path, args.repeat)
            results[name].append(res)
            print(f"round {r + 1} {name:>13}: skmoe {res['skmoe_s'] * 1e3:8.1f} ms, "
                  f"LogisticRegression {res['logreg_s'] * 1e3:6.2f} ms, ratio "
                  f"{res['ratio']:7.1f}, experts {res.get('n_experts', 2)}, EM iterations "
                  f"{res['n_iter']}, total log-lik "
                  f"{res['loglik']:.3f} (penalised {res['penalised']:.3f}), converged "
                  f"{res['converged']}", flush=True)
    for name, res in results.items():
        ratios = sorted(r["ratio"] for r in res)
        print(f"{name}: ratio median {ratios[len(ratios) // 2]:.1f} (best {ratios[0]:.1f}); "
              "target <= 20")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
