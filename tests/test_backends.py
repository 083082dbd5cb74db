"""One model on every container: the cross-backend matrix (issue 23).

The same estimator, fitted on the same rows held as a NumPy array, a
``numpy.memmap``, a CSR matrix, a pandas DataFrame, a dask array (dask's
local scheduler, no cluster), an array-api-strict array and a PyTorch CPU
tensor (both under scikit-learn's array API dispatch), keeps the same
number of experts, sets the same fitted attributes and, in float64, reaches
the same log-likelihood to 1e-8 relative. The data are well separated (two
regimes), or hold one linear model (``n_experts=None``), so that every path
reaches the same optimum whatever the order of its sums; ``tol`` is small so
that each run stops at that optimum, not a few iterations before it.

The combinations that are not unified yet are marked ``xfail(strict=True)``
with the reason: a combination that starts passing fails the suite, so the
table stays true.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.linear_model import LinearRegression

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor

CONTAINERS = ["numpy", "memmap", "csr", "dataframe", "dask", "array_api_strict", "torch"]
RTOL = 1e-8


def _two_regimes(n=800, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    y = np.where(X[:, 0] > 0, 3.0 * X[:, 1] + 4.0, -2.0 * X[:, 1] - 4.0)
    return X, y + 0.3 * rng.normal(size=n)


def _one_line(n=800, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    return X, X @ np.array([1.5, -2.0]) + 0.5 + 0.5 * rng.normal(size=n)


def _labels(n=800, seed=3):
    """Two classes drawn from a logistic model per regime (not separable:
    the logistic experts have a finite optimum)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    logit = np.where(X[:, 0] > 0, 2.0 * X[:, 1] + 1.0, -2.0 * X[:, 1] - 1.0)
    return X, (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)


def _counts(n=800, seed=2):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 2))
    rate = np.exp(np.where(X[:, 0] > 0, 2.0 + 0.5 * X[:, 1], 0.2 - 0.5 * X[:, 1]))
    return X, rng.poisson(rate).astype(float)


# name: (estimator, data, containers that do not fit it yet -> reason)
NO_DASK_CLF = "the dask backend fits the regressor only (no block passes for logistic experts)"
NO_DASK_GLM = "the dask block passes are the linear Gaussian moments; no GLM expert on blocks"
NO_DASK_TOPK = "top_k (sparse EM) runs on rows in memory only"
NO_AA_TOPK = "top_k is not supported under array API dispatch"
NO_AA_GLM = "array API dispatch fits linear Gaussian and logistic experts only"
NO_AA_NONE = "n_experts=None means 2 under array API dispatch (no BIC choice there)"
NO_REPAIR = "collapse repair splits an expert's rows by 2-means in memory; none on {}"
NO_AA_KMEANS = "init='kmeans' is refused under array API dispatch (its own start pool)"
NO_CLF_PATH = (
    "the default classifier reaches another optimum on {} (1e-5 to 3e-4 in mean "
    "log-likelihood): its start or EM path there is not the dense NumPy one yet"
)
NO_AA_CLF = "the array API classifier has no polish: its optimum differs by about 1e-4"
CASES = {
    "regressor": (
        # init="kmeans": the default "auto" runs its pool of short runs on
        # rows in memory only (dask starts from k-means), and the pool's
        # polished optimum stops EM 1e-7 short of the one k-means reaches.
        lambda: MixtureOfExpertsRegressor(
            n_experts=2, init="kmeans", tol=1e-10, random_state=0
        ),
        _two_regimes, {"array_api_strict": NO_AA_KMEANS, "torch": NO_AA_KMEANS},
    ),
    "n_experts_none": (
        lambda: MixtureOfExpertsRegressor(tol=1e-10, random_state=0),
        _one_line, {"array_api_strict": NO_AA_NONE, "torch": NO_AA_NONE},
    ),
    "classifier": (
        lambda: MixtureOfExpertsClassifier(n_experts=2, tol=1e-10, random_state=0),
        _labels,
        {
            "csr": NO_CLF_PATH.format("CSR"), "dataframe": NO_CLF_PATH.format("a DataFrame"),
            "dask": NO_DASK_CLF, "array_api_strict": NO_AA_CLF, "torch": NO_AA_CLF,
        },
    ),
    "poisson": (
        lambda: MixtureOfExpertsRegressor(
            n_experts=2, likelihood="poisson", tol=1e-10, random_state=0
        ),
        _counts,
        {"dask": NO_DASK_GLM, "array_api_strict": NO_AA_GLM, "torch": NO_AA_GLM},
    ),
    "top_k": (
        lambda: MixtureOfExpertsRegressor(
            LinearRegression(), n_experts=3, top_k=1, init="kmeans", tol=1e-10,
            random_state=0,
        ),
        _two_regimes,
        {"dask": NO_DASK_TOPK, "array_api_strict": NO_AA_TOPK, "torch": NO_AA_TOPK},
    ),
    "repair": (
        # Three experts on two regimes of about half the rows each, a
        # min_expert_weight of 0.3: the third expert is dropped.
        lambda: MixtureOfExpertsRegressor(
            n_experts=3, init="kmeans", on_collapse="drop", min_expert_weight=0.3,
            tol=1e-10, random_state=0,
        ),
        _two_regimes,
        {
            "dask": NO_REPAIR.format("dask blocks"),
            "array_api_strict": NO_REPAIR.format("an array namespace"),
            "torch": NO_REPAIR.format("an array namespace"),
        },
    ),
}


def _as_container(name, X, y, tmp_path):
    """``(X, y)`` held as ``name``; the array API ones under dispatch."""
    if name == "numpy":
        return X, y
    if name == "memmap":
        mm = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
        mm[:] = X
        return mm, y
    if name == "csr":
        return sp.csr_matrix(X), y
    if name == "dataframe":
        return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]), y
    if name == "dask":
        da = pytest.importorskip("dask.array")
        return da.from_array(X, chunks=(X.shape[0] // 3, X.shape[1])), da.from_array(
            y, chunks=X.shape[0] // 3
        )
    xp = pytest.importorskip(name)
    return xp.asarray(X), xp.asarray(y)


def _fit(estimator, container, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if container in ("array_api_strict", "torch"):
            try:
                with sklearn.config_context(array_api_dispatch=True):
                    return estimator.fit(X, y)
            except RuntimeError as exc:  # scipy imported without SCIPY_ARRAY_API
                pytest.skip(f"array API dispatch unavailable: {exc}")
        return estimator.fit(X, y)


def _fitted_names(estimator):
    """The fitted attributes, but ``feature_names_in_`` (set for a DataFrame only)."""
    return sorted(
        k for k in vars(estimator)
        if k.endswith("_") and not k.startswith("_") and k != "feature_names_in_"
    )


@pytest.fixture(scope="module")
def reference():
    """The NumPy fit of every case, once."""
    cache = {}

    def get(case):
        if case not in cache:
            make, data, _ = CASES[case]
            X, y = data()
            cache[case] = _fit(make(), "numpy", X, y)
        return cache[case]

    return get


def _params():
    for case, (_, _, fails) in CASES.items():
        for container in CONTAINERS[1:]:
            marks = []
            if container in fails:
                marks = [pytest.mark.xfail(strict=True, reason=fails[container])]
            yield pytest.param(case, container, marks=marks, id=f"{case}-{container}")


@pytest.mark.parametrize("case, container", list(_params()))
def test_same_model_on_every_container(case, container, reference, tmp_path):
    make, data, _ = CASES[case]
    X, y = data()
    ref = reference(case)
    Xc, yc = _as_container(container, X, y, tmp_path)
    moe = _fit(make(), container, Xc, yc)
    assert moe.n_experts_ == ref.n_experts_
    assert _fitted_names(moe) == _fitted_names(ref)
    np.testing.assert_allclose(moe.log_likelihood_, ref.log_likelihood_, rtol=RTOL)


def test_reference_fits_are_the_intended_models(reference):
    """The NumPy fits themselves: two experts on two regimes, one on one
    line (by BIC), the repair case dropped its third expert."""
    assert reference("regressor").n_experts_ == 2
    assert reference("n_experts_none").n_experts_ == 1
    assert set(reference("n_experts_none").n_experts_bic_) == {1, 2}
    repaired = reference("repair")
    assert repaired.n_experts_ == 2
    assert [r["action"] for r in repaired.repairs_] == ["drop"]
