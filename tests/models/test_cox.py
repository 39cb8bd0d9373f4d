"""Cox inference against R (survival 3.5.3): cluster-robust errors of Efron fits and the
Grambsch–Therneau proportional-hazards test, on UIS (quantreg) and a synthetic dropout
model. References: ``tests/data/inference/r_*.csv``, written by
``scripts/inference_reference.R`` from the rows ``scripts/inference_reference_data.py``
stored; R is not needed here."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.duration.hazard_regression import PHReg, PHSurvivalTime

from pipeline.models.cox import ClusteredPHReg, SurvivalTimes, proportional_hazards_test
from pipeline.models.effects import fit_cox
from pipeline.models.replication import UIS_COVARIATES

DATA = Path(__file__).resolve().parents[1] / "data" / "inference"
R_COX = pd.read_csv(DATA / "r_cox.csv")
R_ZPH = pd.read_csv(DATA / "r_zph.csv")


def _rows(name: str) -> tuple[pd.DataFrame, str, str, list[str], str]:
    if name == "uis":
        return pd.read_csv(DATA / "uis.csv"), "TIME", "CENSOR", ["FRAC", *UIS_COVARIATES], "ID"
    d = pd.read_csv(DATA / "dropout.csv")
    return d, "time", "event", [c for c in d if c.startswith("x")], "cluster"


def _model(name: str, ties: str = "efron") -> tuple[ClusteredPHReg, np.ndarray]:
    d, t, e, xs, g = _rows(name)
    model = ClusteredPHReg(
        d[t].astype(float), d[xs].astype(float), status=d[e].astype(float), ties=ties
    )
    return model, d[g].to_numpy()


@pytest.mark.parametrize("name", ["uis", "dropout"])
def test_cluster_robust_errors_of_an_efron_fit_equal_r_coxph(name):
    ref = R_COX[R_COX["model"] == name]
    model, groups = _model(name)
    fit = model.fit(groups=groups)
    np.testing.assert_allclose(fit.params, ref["coef"], rtol=1e-6, atol=1e-9)
    # At R's own coefficients the formula is exact; at ours, as close as the two fits.
    at_r = np.sqrt(np.diag(model.robust_covariance(ref["coef"].to_numpy())))
    np.testing.assert_allclose(at_r, ref["robust_se"], rtol=1e-9)
    np.testing.assert_allclose(fit.bse, ref["robust_se"], rtol=1e-6)
    naive = np.sqrt(np.diag(np.linalg.inv(-model.hessian(fit.params))))
    np.testing.assert_allclose(naive, ref["se"], rtol=1e-6)
    # statsmodels' own (Breslow-form) residuals give errors that are too small.
    plain = PHReg(model.endog, model.exog, status=model.status, ties="efron").fit(groups=groups)
    assert np.max(np.abs(plain.bse / ref["robust_se"].to_numpy() - 1)) > 1e-3


def test_fit_cox_gives_rs_robust_interval_on_uis():
    d, t, e, xs, g = _rows("uis")
    fit = fit_cox(d, t, e, xs, g, "uis")
    ref = R_COX[R_COX["model"] == "uis"].set_index("term")
    rows = fit.coefficients.set_index("term").loc[xs]
    hi = np.exp(ref["coef"] + 1.959963984540054 * ref["robust_se"])
    np.testing.assert_allclose(rows["ci_high"], hi, rtol=1e-6)
    assert fit.card.ph_test[-1]["term"] == "GLOBAL"


@pytest.mark.parametrize("name", ["uis", "dropout"])
@pytest.mark.parametrize("transform", ["km", "identity"])
def test_proportional_hazards_test_equals_r_cox_zph(name, transform):
    ref = R_ZPH[(R_ZPH["model"] == name) & (R_ZPH["transform"] == transform)]
    coef = R_COX.loc[R_COX["model"] == name, "coef"].to_numpy()
    model, groups = _model(name)
    terms = {c: [i] for i, c in enumerate(model.exog_names)}
    ours = proportional_hazards_test(model, coef, terms, transform)
    assert list(ours["term"]) == list(ref["term"])  # every term, then GLOBAL
    np.testing.assert_allclose(ours["chisq"], ref["chisq"], rtol=1e-8)
    np.testing.assert_array_equal(ours["df"], ref["df"])
    np.testing.assert_allclose(ours["p"], ref["p"], rtol=1e-6)
    fitted = proportional_hazards_test(model, model.fit(groups=groups).params, terms, transform)
    np.testing.assert_allclose(fitted["chisq"], ref["chisq"], rtol=1e-5)


def test_a_factor_is_one_term_with_as_many_df_as_dummies():
    rng = np.random.default_rng(2)
    n = 1200
    level = rng.choice(["a", "b", "c"], n)
    x = rng.normal(size=n)
    t = np.round(rng.exponential(10, n) * np.exp(-0.3 * x))
    d = pd.DataFrame({"t": t, "e": 1.0, "x": x, "level": level, "g": rng.integers(0, 50, n)})
    fit = fit_cox(d, "t", "e", ["x", "level"], "g")
    table = pd.DataFrame(fit.card.ph_test).set_index("term")
    assert table.loc["level", "df"] == 2 and table.loc["x", "df"] == 1
    assert table.loc["GLOBAL", "df"] == 3


def test_proportional_hazards_test_rejects_an_unknown_transform():
    model, _ = _model("uis")
    with pytest.raises(ValueError, match="transform must be one of"):
        proportional_hazards_test(model, np.zeros(len(model.exog_names)), transform="weeks")


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(5, 300),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_vectorised_survival_times_equal_statsmodels(seed, n, strata, entry, offset):
    """Every attribute of the risk-set bookkeeping equals statsmodels' loop, element by
    element: tied times, strata (one without events), delayed entry (some after a
    stratum's last failure), censoring before the first failure, offsets."""
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(5, n))
    d = (rng.random(n) < 0.5).astype(float)
    d[0] = 1.0
    x = rng.normal(size=(n, 2))
    s = rng.integers(0, 4, n) if strata else None
    if strata:
        d[s == 3] = 0.0  # a stratum without events is dropped
        d[np.flatnonzero(s == 0)[:1]] = 1.0
    e = np.minimum(t, np.round(rng.uniform(0, 6, n))) if entry else None
    o = rng.normal(size=n) if offset else None
    ref = PHSurvivalTime(t, d, x, s, e, o)
    ours = SurvivalTimes(t, d, x, s, e, o)
    assert vars(ours).keys() == vars(ref).keys()
    for name, want in vars(ref).items():
        got = getattr(ours, name)
        if isinstance(want, list) and want and isinstance(want[0], list):
            assert [len(g) for g in got] == [len(g) for g in want], name
            for g, w in zip(got, want, strict=True):
                for a, b in zip(g, w, strict=True):
                    np.testing.assert_array_equal(a, b, err_msg=name)
                    assert a.dtype == b.dtype, name
        elif isinstance(want, list):
            assert len(got) == len(want), name
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert got == want, name


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(5, 300),
    st.sampled_from(["efron", "breslow"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_vectorised_likelihood_score_and_hessian_equal_statsmodels(
    seed, n, ties, strata, entry, offset
):
    """The partial likelihood, score and Hessian the fit uses equal PHReg's loops at
    arbitrary parameters (heavy ties, strata, delayed entry, offsets), and so does the fit."""
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(4, n))
    d = (rng.random(n) < 0.6).astype(float)
    d[0] = 1.0
    x = rng.normal(size=(n, 3))
    kw = {
        "status": d,
        "ties": ties,
        "strata": rng.integers(0, 3, n) if strata else None,
        "entry": np.minimum(t, np.round(rng.uniform(0, 4, n))) if entry else None,
        "offset": rng.normal(size=n) if offset else None,
    }
    ref, ours = PHReg(t, x, **kw), ClusteredPHReg(t, x, **kw)
    for params in (np.zeros(3), rng.normal(scale=0.7, size=3)):
        np.testing.assert_allclose(
            ours.loglike(params), ref.loglike(params), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(ours.score(params), ref.score(params), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ours.hessian(params), ref.hessian(params), rtol=1e-9, atol=1e-10)
    if n < 30:  # a handful of rows: the likelihood is too flat for a sharp optimum
        return
    try:
        want = ref.fit()
    except np.linalg.LinAlgError:  # a degenerate draw neither can fit
        return
    got = ours.fit()
    if np.isfinite(want.params).all() and np.abs(want.params).max() < 5:
        np.testing.assert_allclose(got.params, want.params, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(got.llf, want.llf, rtol=1e-10)


@pytest.mark.parametrize("strata", [False, True])
def test_vectorised_breslow_score_residuals_equal_statsmodels(strata):
    """Same residuals and cluster-robust errors as statsmodels' own loop: tied times,
    strata, and subjects censored before the first failure (undefined: NaN)."""
    rng = np.random.default_rng(7)
    n = 1500
    x = rng.normal(size=(n, 3))
    t = np.round(rng.exponential(8, n) * np.exp(-0.4 * x[:, 0]))
    d = (rng.random(n) < 0.5).astype(float)
    d[t == t.min()] = 0.0  # the earliest subjects are censored: never in a risk set
    strata_all = rng.integers(0, 3, n) if strata else None
    kw = {"status": d, "ties": "breslow", "strata": strata_all}
    groups = rng.integers(0, 40, n)
    ref = PHReg(t, x, **kw)
    ours = ClusteredPHReg(t, x, **kw)
    params = ref.fit().params
    np.testing.assert_allclose(
        ours.score_residuals(params), ref.score_residuals(params), rtol=1e-9, atol=1e-12
    )
    assert np.isnan(ours.score_residuals(params)).any()  # the early censored rows
    # They add nothing to any cluster's score: the same errors as without them (where
    # statsmodels' own covariance is undefined).
    keep = np.isfinite(ref.score_residuals(params)).all(axis=1)
    assert not keep.all()
    kw["status"], kw["strata"] = d[keep], None if kw["strata"] is None else kw["strata"][keep]
    a = PHReg(t[keep], x[keep], **kw).fit(groups=groups[keep])
    b = ClusteredPHReg(t[keep], x[keep], **kw).fit(groups=groups[keep])
    np.testing.assert_allclose(b.bse, a.bse, rtol=1e-10)
    everyone = dict(kw, status=d, strata=None if kw["strata"] is None else strata_all)
    c = ClusteredPHReg(t, x, **everyone).fit(groups=groups)
    np.testing.assert_allclose(c.params, a.params, rtol=1e-8)
    np.testing.assert_allclose(c.bse, a.bse, rtol=1e-8)


def test_vectorised_breslow_with_failures_at_time_zero_equals_statsmodels():
    rng = np.random.default_rng(11)
    n = 800
    x = rng.normal(size=(n, 2))
    t = np.round(rng.exponential(5, n))
    d = (rng.random(n) < 0.6).astype(float)
    t[:5], d[:5] = 0.0, 1.0  # failures on day 0 (and others tied with them)
    groups = rng.integers(0, 30, n)
    a = PHReg(t, x, status=d, ties="breslow").fit(groups=groups)
    b = ClusteredPHReg(t, x, status=d, ties="breslow").fit(groups=groups)
    assert np.isfinite(a.bse).all()
    np.testing.assert_allclose(b.bse, a.bse, rtol=1e-10)


def test_efron_residuals_sum_to_the_efron_score_and_equal_breslow_without_ties():
    rng = np.random.default_rng(4)
    n = 900
    x = rng.normal(size=(n, 2))
    tied = np.round(rng.exponential(6, n))
    d = (rng.random(n) < 0.7).astype(float)
    efron = ClusteredPHReg(tied, x, status=d, ties="efron")
    params = efron.fit().params
    # At the Efron estimate the residuals sum to the Efron score (0); the Breslow form
    # statsmodels uses does not.
    np.testing.assert_allclose(efron.score_residuals(params).sum(axis=0), 0, atol=1e-8)
    breslow_form = PHReg(tied, x, status=d, ties="efron").score_residuals(params).sum(axis=0)
    assert np.abs(breslow_form).max() > 1e-3
    distinct = tied + rng.random(n) * 0.5  # no ties: the two forms are the same
    a = ClusteredPHReg(distinct, x, status=d, ties="efron")
    b = PHReg(distinct, x, status=d, ties="breslow")
    p = a.fit().params
    np.testing.assert_allclose(a.score_residuals(p), b.score_residuals(p), rtol=1e-9, atol=1e-12)


def test_delayed_entry_equals_r_counting_process_fit():
    # The period-specific model of dropout_by_period: at risk from day 28, censored at 84;
    # R: coxph(Surv(28, pmin(time, 84), event & time <= 84) ~ ., cluster = cluster).
    d, _, _, xs, g = _rows("dropout")
    late = d[d["time"] > 28].assign(
        entry=28.0,
        stop=lambda x: np.minimum(x["time"], 84.0),
        status=lambda x: x["event"] * (x["time"] <= 84),
    )
    ref = R_COX[R_COX["model"] == "dropout_28_84"]
    fit = fit_cox(late, "stop", "status", xs, g, "dropout 28-84", entry="entry")
    rows = fit.coefficients.set_index("term").loc[xs]
    np.testing.assert_allclose(np.log(rows["estimate"]), ref["coef"], rtol=1e-6, atol=1e-9)
    hi = np.exp(ref["coef"].to_numpy() + 1.959963984540054 * ref["robust_se"].to_numpy())
    np.testing.assert_allclose(rows["ci_high"], hi, rtol=1e-6)
    assert fit.card.formula.startswith("Surv(entry, stop, status)")
