"""Issue 13, table 2 with a model choice: what choosing by BIC between the
default mixture and one expert would do to the held-out scores.

An experiment, not a default (yet): for every training fold of table 2
(``benchmarks/defaults.py``, the same sets and folds), the default mixture
and the same estimator with ``n_experts=1`` are fitted; "BIC-chosen" is the
one with the lower :meth:`bic` on the training fold. Printed: the fold
differences to the single LinearRegression (LogisticRegression) ± their
standard error, for the mixture and for the BIC choice, and on how many
folds BIC kept the mixture. Held-out log densities as in table 2.

Run::

    python benchmarks/defaults_bic.py [--quick] [--data-dir DIR]
"""

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import defaults as D  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss, r2_score  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor  # noqa: E402


def _mean_se(d):
    d = np.asarray(d)
    return f"{d.mean():+.4f}±{d.std(ddof=1) / np.sqrt(len(d)):.4f}"


def _scores(est, single, Xtr, ytr, Xte, yte, clf):
    """(score, held-out log density) of ``est`` and of the single model."""
    if clf:
        out = [(accuracy_score(yte, m.predict(Xte)),
                -log_loss(yte, m.predict_proba(Xte), labels=m.classes_)) for m in (est, single)]
    else:
        var = float(np.mean((ytr - single.predict(Xtr)) ** 2))
        out = [(r2_score(yte, est.predict(Xte)), float(np.mean(est.log_prob(Xte, yte)))),
               (r2_score(yte, single.predict(Xte)),
                D._gauss_logdens(yte, single.predict(Xte), var))]
    return out


def one_set(name, X, y, clf):
    folds = (StratifiedKFold if clf else KFold)(5, shuffle=True, random_state=0)
    moe = MixtureOfExpertsClassifier if clf else MixtureOfExpertsRegressor
    single = LogisticRegression if clf else LinearRegression
    diffs = {"mixture": ([], []), "BIC-chosen": ([], [])}
    kept = 0
    for train, test in folds.split(X, y):
        sc = StandardScaler().fit(X[train])
        Xtr, Xte = sc.transform(X[train]), sc.transform(X[test])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mix = moe(random_state=0).fit(Xtr, y[train])
            one = moe(n_experts=1, random_state=0).fit(Xtr, y[train])
            ref = single().fit(Xtr, y[train])
        chosen = mix if mix.bic(Xtr, y[train]) < one.bic(Xtr, y[train]) else one
        kept += chosen is mix
        for key, est in (("mixture", mix), ("BIC-chosen", chosen)):
            (s, ld), (s0, ld0) = _scores(est, ref, Xtr, y[train], Xte, y[test], clf)
            diffs[key][0].append(s - s0)
            diffs[key][1].append(ld - ld0)
    cells = [f"{k} d_score {_mean_se(v[0])} d_logdens {_mean_se(v[1])}" for k, v in diffs.items()]
    print(f"{name:24s} " + " | ".join(cells) + f" | mixture kept {kept}/5", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.path.join(D.REPO, "..", "shared", "data"))
    p.add_argument("--quick", action="store_true", help="table 2's quick sets")
    args = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; d_*: mean fold difference to the single "
          "linear (logistic) model ± its standard error")
    for name, X, y in D.regression_sets(args):
        one_set(name, X, y, clf=False)
    for name, X, y in D.classification_sets(args):
        one_set(name, X, y, clf=True)


if __name__ == "__main__":
    main()
