"""How much of the recommendation results is noise? Paired bootstrap against Ridge.

``recommendation.py`` tunes every model by a grid search and writes the held-out
means to ``results/recommendation.json``; the margins between the best models
are a few thousandths of a rating. This script refits every model once, with
the hyper-parameters the grid search chose (read from that JSON; no grid search
here, so it takes about a minute and a half rather than six and a half), on the same 80/20
split, checks that it reproduces the JSON's held-out scores, and then measures
how much each difference to Ridge would move if the held-out users had been
others: a paired bootstrap over *users* (every resampled user brings all of
their held-out ratings, so the correlation between one user's ratings is
respected), 2,000 resamples, 95% percentile intervals.

It also records what the two regression mixtures split on (their experts'
noise and level, how their responsibilities follow the rating or the gate)
and a few facts about the ratings (half-star use on MovieLens, lecturers
nested in departments on InstEval) that ``README.md``'s analysis cites.

Run: ``python benchmarks/recommendation_significance.py``. Writes
``results/recommendation_significance.json``.
"""

import json
import os
import sys
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.metrics import ndcg_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recommendation as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
N_BOOT = 2000
METRICS = ["rmse", "mae", "lpd", "lp_rating", "ndcg5"]


def best_params(row, grid):
    """The JSON's best parameters, with "N columns" mapped back to the indices."""
    out = {}
    for key, value in row["best_params"].items():
        if isinstance(value, str) and value.endswith(" columns"):
            n = int(value.split()[0])
            value = next(c for c in grid[key] if len(c) == n)
        out[key] = value
    return out


def per_row_scores(est, kind, train, test, spec, levels):
    """Per-rating prediction, log density and log P(rating bin); as evaluate()."""
    y_tr, y_te = train["rating"].to_numpy(), test["rating"].to_numpy()
    if kind == "clf":
        P = est.predict_proba(test)
        classes = est[-1].classes_ / 2.0
        pred = P @ classes
        idx = np.searchsorted(classes, y_te)
        lp_rating = np.log(np.maximum(P[np.arange(len(y_te)), idx], 1e-300))
        lpd = lp_rating - np.log(spec["step"])
    elif kind == "moe":
        moe, Xt = est[-1], est[:-1].transform(test)
        pred = est.predict(test)
        lpd = moe.log_prob(Xt, y_te)
        log_gate = np.log(np.maximum(moe.predict_gate(Xt), 1e-300))
        lp = R.gaussian_bin_logprob(y_te, levels, moe.predict_experts(Xt),
                                    np.sqrt(moe.noise_variance_))
        lp_rating = logsumexp(log_gate + lp, axis=1)
    else:
        pred = est.predict(test)
        sd = np.sqrt(np.mean((y_tr - est.predict(train)) ** 2))
        lpd = norm.logpdf(y_te, pred, sd)
        lp_rating = R.gaussian_bin_logprob(y_te, levels, pred, sd)
    return pred, lpd, lp_rating


def per_user(users, values):
    """Sums of ``values`` per user (users given as 0..U-1 codes)."""
    return np.bincount(users, weights=values)


def ndcg_per_user(codes, y_true, y_pred):
    """NDCG@5 of every user with at least 5 held-out ratings (NaN otherwise)."""
    out = np.full(codes.max() + 1, np.nan)
    order = np.argsort(codes, kind="stable")
    c, yt, yp = codes[order], y_true[order], y_pred[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    ends = np.r_[starts[1:], len(c)]
    for s, e in zip(starts, ends):
        if e - s >= 5:
            out[c[s]] = ndcg_score(yt[s:e][None], yp[s:e][None], k=5)
    return out


def mixture_diagnostics(est, train, test):
    """What the EM split is: by the gate's inputs or by the rating's value?"""
    moe = est[-1]
    X_tr, X_te = est[:-1].transform(train), est[:-1].transform(test)
    y_tr = train["rating"].to_numpy()
    H, G = moe.responsibilities(X_tr, y_tr), moe.predict_gate(X_tr)
    F = moe.predict_experts(X_te)
    return dict(
        noise_sd=np.sqrt(moe.noise_variance_).tolist(),
        expert_mean_prediction_test=F.mean(0).tolist(),
        corr_expert_predictions_test=float(np.corrcoef(F.T)[0, 1]),
        # expert 0's responsibility against the rating and against the gate
        corr_responsibility_rating=float(np.corrcoef(H[:, 0], y_tr)[0, 1]),
        corr_responsibility_gate=float(np.corrcoef(H[:, 0], G[:, 0])[0, 1]),
        gate_mean_entropy_nats=float(
            -(G * np.log(np.maximum(G, 1e-300))).sum(1).mean()),
        n_iter=int(moe.n_iter_),
    )


def data_facts(df, train, test):
    """Facts about the ratings that the analysis in README.md relies on."""
    values, counts = np.unique(df["rating"], return_counts=True)
    out = dict(rating_value_shares={f"{v:g}": round(float(c) / len(df), 4)
                                    for v, c in zip(values, counts)})
    half = (train["rating"] * 2) % 2 == 1
    if half.any():  # MovieLens: who uses half stars?
        share = half.groupby(train["user"]).mean()
        whole_only = test["user"].map(share).fillna(-1).to_numpy() == 0
        test_half = ((test["rating"] * 2) % 2 == 1).to_numpy()
        out.update(
            users_without_half_stars_in_training=round(float((share == 0).mean()), 4),
            test_share_from_those_users=round(float(whole_only.mean()), 4),
            half_star_share_of_their_test_ratings=round(
                float(test_half[whole_only].mean()), 4),
            half_star_share_of_other_test_ratings=round(
                float(test_half[~whole_only].mean()), 4),
        )
    if "dept" in df:  # InstEval: are lecturers nested in departments?
        out.update(
            lecturers_in_more_than_one_dept=int(
                (df.groupby("item", observed=True)["dept"].nunique() > 1).sum()),
            students_in_more_than_one_dept=round(float(
                (df.groupby("user", observed=True)["dept"].nunique() > 1).mean()), 4),
        )
    return out


def run(name, saved):
    df, spec = R.load(name)
    spec["title"] = name
    train, test = train_test_split(df, test_size=0.2, random_state=R.SEED)
    levels = np.sort(df["rating"].unique())
    specs, *_ = R.models(train, spec)
    y_tr, y_te = train["rating"].to_numpy(), test["rating"].to_numpy()
    codes = np.unique(test["user"].to_numpy(), return_inverse=True)[1]
    n_users = codes.max() + 1
    count = np.bincount(codes, minlength=n_users).astype(float)

    stats, checks, diagnostics = {}, {}, {}
    for row in saved[name]["models"]:
        mname = row["model"]
        pipe, grid, _, kind = specs[mname]
        if grid:
            pipe.set_params(**best_params(row, grid))
        target = y_tr if kind != "clf" else np.round(y_tr * 2).astype(int)
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipe.fit(train, target)
        pred, lpd, lp_rating = per_row_scores(pipe, kind, train, test, spec, levels)
        if mname in ("moe_side", "moe_users"):
            diagnostics[mname] = mixture_diagnostics(pipe, train, test)
        err = pred - y_te
        stats[mname] = dict(
            sq=per_user(codes, err ** 2), ab=per_user(codes, np.abs(err)),
            lpd=per_user(codes, lpd), lp_rating=per_user(codes, lp_rating),
            ndcg=ndcg_per_user(codes, y_te, pred),
        )
        ndcg = stats[mname]["ndcg"]
        now = dict(rmse=np.sqrt(np.mean(err ** 2)), mae=np.mean(np.abs(err)),
                   lpd=lpd.mean(), lp_rating=lp_rating.mean(),
                   ndcg5=np.nanmean(ndcg))
        checks[mname] = {m: dict(json=row[m], refit=float(now[m]),
                                 diff=float(now[m] - row[m])) for m in METRICS}
        worst = max(abs(v["diff"]) for v in checks[mname].values())
        print(f"  {name:9s} {mname:12s} refit in {time.perf_counter() - tic:5.1f} s, "
              f"largest difference to the JSON {worst:.1e}", flush=True)

    # Paired bootstrap over users: one multinomial draw of user counts per
    # resample, applied to every model (paired), B x U weights.
    rng = np.random.RandomState(0)
    W = rng.multinomial(n_users, np.full(n_users, 1 / n_users), size=N_BOOT)
    W = W.astype(float)
    has_ndcg = ~np.isnan(stats["ridge"]["ndcg"])

    def boot(s):
        n = W @ count
        w_ndcg = W[:, has_ndcg]
        return dict(
            rmse=np.sqrt(W @ s["sq"] / n), mae=W @ s["ab"] / n,
            lpd=W @ s["lpd"] / n, lp_rating=W @ s["lp_rating"] / n,
            ndcg5=w_ndcg @ s["ndcg"][has_ndcg] / w_ndcg.sum(1),
        )

    boots = {mname: boot(s) for mname, s in stats.items()}

    def compare(model, baseline):
        out = {}
        for m in METRICS:
            d = boots[model][m] - boots[baseline][m]
            point = checks[model][m]["refit"] - checks[baseline][m]["refit"]
            lo, hi = np.percentile(d, [2.5, 97.5])
            out[m] = dict(diff=float(point), se=float(d.std()),
                          ci95=[float(lo), float(hi)])
        return out

    versus_ridge = {m: compare(m, "ridge") for m in stats if m != "ridge"}
    # The mixture of classifiers against its own single-expert baseline.
    versus_logistic = {"moe_classes": compare("moe_classes", "logistic")}
    return dict(n_test=len(y_te), n_test_users=int(n_users),
                n_ndcg_users=int(has_ndcg.sum()), reproduction=checks,
                versus_ridge=versus_ridge, versus_logistic=versus_logistic,
                mixtures=diagnostics, data=data_facts(df, train, test))


def main():
    with open(os.path.join(HERE, "results", "recommendation.json")) as f:
        saved = json.load(f)
    results = dict(method=f"paired bootstrap over held-out users, {N_BOOT} resamples, "
                          "95% percentile intervals; differences are model - ridge "
                          "(negative is better for rmse and mae, positive for lpd, "
                          "lp_rating and ndcg5); moe_classes is also compared "
                          "with logistic",
                   source="results/recommendation.json (best parameters)")
    for name in ["insteval", "movielens"]:
        results[name] = run(name, saved)
        for baseline in ["ridge", "logistic"]:
            print(f"\n{name}: difference to {baseline} [95% interval]")
            for mname, row in results[name][f"versus_{baseline}"].items():
                print(f"  {mname:12s}" + "".join(
                    f"  {m} {v['diff']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}]"
                    for m, v in row.items()))
    out = os.path.join(HERE, "results", "recommendation_significance.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
