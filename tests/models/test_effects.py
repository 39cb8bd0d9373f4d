"""Logistic and Cox effect models: known truth recovered, traps handled."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from pipeline.models.effects import (
    MIN_CLUSTERS,
    FitOptions,
    fit_cox,
    fit_linear,
    fit_logistic,
    standardise,
)
from pipeline.models.tidy import ModelError


def _clustered_binary(n=6000, clusters=60, beta=0.8, seed=0):
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, clusters, n)
    u = rng.normal(0, 0.5, clusters)[cluster]
    x = rng.standard_normal(n)
    flag = (rng.random(n) < 0.3).astype(float)
    logit = -0.5 + beta * x + 0.4 * flag + u
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "flag": flag, "therapist": cluster})


def test_logistic_recovers_a_known_odds_ratio_with_cluster_robust_errors():
    d = _clustered_binary()
    fit = fit_logistic(d, "y", ["x", "flag"], "therapist", model="toy")
    rows = fit.coefficients.set_index("term")
    # The therapist effect attenuates the marginal OR a little (population-averaged).
    assert rows.loc["x", "ci_low"] < np.exp(0.8) * 1.02 and rows.loc["x", "estimate"] > 1.8
    assert rows.loc["flag", "estimate"] > 1.2
    assert (rows["scale"] == "odds ratio").all() and fit.card.n_groups == 60
    assert not fit.card.notes  # clustered errors used, nothing dropped


def test_logistic_by_newton_equals_statsmodels_irls_to_optimiser_precision():
    d = _clustered_binary(seed=3)
    fit = fit_logistic(d, "y", ["x", "flag"], "therapist").coefficients.set_index("term")
    x = sm.add_constant(d[["x", "flag"]])
    ref = sm.GLM(d["y"], x, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["therapist"])[0]}
    )
    np.testing.assert_allclose(fit["estimate"], np.exp(ref.params), rtol=1e-7)
    np.testing.assert_allclose(fit["p_value"], ref.pvalues, rtol=1e-6)


def test_few_clusters_keep_clustered_errors_with_a_t_reference_and_say_so():
    d = _clustered_binary(clusters=MIN_CLUSTERS - 5)
    fit = fit_logistic(d, "y", ["x"], "therapist")
    assert any("t reference on 14 df" in note for note in fit.card.notes)
    assert not any("HC1" in note for note in fit.card.notes)  # never unclustered
    row = fit.coefficients.set_index("term").loc["x"]
    se = np.sqrt(fit.cov.loc["x", "x"])
    q = stats.t.ppf(0.975, 14)
    assert row["ci_high"] == pytest.approx(np.exp(fit.params["x"] + q * se), rel=1e-12)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(fit.params["x"] / se), 14))
    # Only a single cluster cannot be clustered at all: HC1, said.
    one = d.assign(therapist=0)
    assert any("HC1" in n for n in fit_logistic(one, "y", ["x"], "therapist").card.notes)


def test_separation_and_constant_predictors_fail_clearly():
    d = _clustered_binary()
    with pytest.raises(ModelError, match="separates the outcome"):
        fit_logistic(d.assign(leak=d["y"]), "y", ["x", "leak"], "therapist")
    # A continuous predictor that separates completely (Newton's estimates go non-finite).
    split = d.assign(y=(d["x"] > 0).astype(float))
    with pytest.raises(ModelError, match="separates the outcome"):
        fit_logistic(split, "y", ["x", "flag"], "therapist")
    with pytest.raises(ModelError, match="single value"):
        fit_logistic(d.assign(const=1.0), "y", ["x", "const"], "therapist")


def test_missing_rows_are_counted():
    d = _clustered_binary()
    d.loc[:99, "x"] = np.nan
    fit = fit_logistic(d, "y", ["x"], "therapist")
    assert fit.card.n_input == 6000 and fit.card.n_analysed == 5900
    assert (fit.coefficients["n_analysed"] == 5900).all()


def test_cox_recovers_a_known_hazard_ratio():
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.standard_normal(n)
    t = rng.exponential(1 / (0.02 * np.exp(0.5 * x)))
    censor = rng.uniform(0, 120, n)
    d = pd.DataFrame(
        {
            "time": np.minimum(t, censor),
            "event": (t <= censor).astype(float),
            "x": x,
            "therapist": rng.integers(0, 50, n),
        }
    )
    fit = fit_cox(d, "time", "event", ["x"], "therapist")
    row = fit.coefficients.set_index("term").loc["x"]
    assert row["ci_low"] < np.exp(0.5) < row["ci_high"]
    assert row["scale"] == "hazard ratio" and fit.card.n_groups == 50
    with pytest.raises(ModelError, match="no events"):
        fit_cox(d.assign(event=0.0), "time", "event", ["x"], "therapist")


def test_standardise_leaves_flags_alone():
    d = pd.DataFrame({"a": [1.0, 2.0, 3.0], "f": [0.0, 1.0, 1.0]})
    out = standardise(d, ["a", "f"])
    assert list(out["a"]) == [-1.0, 0.0, 1.0] and list(out["f"]) == [0.0, 1.0, 1.0]


def test_quasi_separation_and_collinearity_fail_clearly():
    d = _clustered_binary()
    # Every flagged client has the outcome (but not every unflagged one lacks it).
    quasi = d.assign(flag=((d["y"] == 1) & (np.arange(len(d)) % 3 == 0)).astype(float))
    with pytest.raises(ModelError, match="separates"):
        fit_logistic(quasi, "y", ["x", "flag"], "therapist")
    with pytest.raises(ModelError, match="collinear"):
        fit_logistic(d.assign(x2=d["x"] * 2), "y", ["x", "x2"], "therapist")


def test_cox_monotone_likelihood_is_not_reported_as_a_fit():
    rng = np.random.default_rng(5)
    n = 1000
    flag = (rng.random(n) < 0.3).astype(float)
    t = rng.exponential(10, n)
    event = np.where(flag == 1, 1.0, (rng.random(n) < 0.5).astype(float))
    t = np.where(flag == 1, t.min() / 2 + rng.random(n) * 1e-3, t)  # flagged all fail first
    d = pd.DataFrame({"t": t, "e": event, "flag": flag, "g": rng.integers(0, 40, n)})
    with pytest.raises(ModelError, match="separates"):
        fit_cox(d, "t", "e", ["flag"], "g")


def test_population_size_is_the_input_n_when_rows_were_selected_before():
    d = _clustered_binary()
    fit = fit_logistic(d.iloc[:5000], "y", ["x"], "therapist", options=FitOptions(n_input=6000))
    assert fit.card.n_input == 6000 and fit.card.n_analysed == 5000
    assert any("1000 row(s)" in n for n in fit.card.notes)


def test_proportional_hazards_check_flags_a_changing_hazard_ratio():
    rng = np.random.default_rng(8)
    n = 3000
    x = (rng.random(n) < 0.5).astype(float)
    # Proportional: exponential times, HR 2. Non-proportional: the flagged group's hazard is
    # high early and low late (a crossing), via a Weibull shape that differs by group.
    t_ph = rng.exponential(1 / np.exp(0.7 * x))
    shape = np.where(x == 1, 0.5, 2.0)
    t_nph = rng.weibull(shape)
    g = rng.integers(0, 40, n)
    ph = fit_cox(pd.DataFrame({"t": t_ph, "e": 1.0, "x": x, "g": g}), "t", "e", ["x"], "g")
    nph = fit_cox(pd.DataFrame({"t": t_nph, "e": 1.0, "x": x, "g": g}), "t", "e", ["x"], "g")
    assert any(n.startswith("PH check `x`") for n in ph.card.notes)  # a label, quoted
    assert not any("may change over time" in n for n in ph.card.notes)
    assert any("may change over time" in n for n in nph.card.notes)


# --- the final score: linear regression (ANCOVA) ----------------------------------------


def _ancova(n=3000, clusters=50, beta=2.0, seed=0):
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, clusters, n)
    baseline = rng.normal(16, 5, n)
    x = rng.standard_normal(n)
    flag = (rng.random(n) < 0.3).astype(float)
    final = 3 + 0.5 * baseline + beta * x + 1.0 * flag + rng.normal(0, 2, clusters)[cluster]
    final += rng.normal(0, 4, n)
    return pd.DataFrame(
        {"final": final, "baseline": baseline, "x": x, "flag": flag, "therapist": cluster}
    )


def _sandwich_by_hand(d: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """OLS and its cluster-robust covariance written out (Liang–Zeger with the small-sample
    factor G/(G−1)·(N−1)/(N−K), as Stata and R sandwich::vcovCL(type = "HC1")), not
    statsmodels."""
    x = np.column_stack([np.ones(len(d)), d[columns].to_numpy(float)])
    y = d["final"].to_numpy(float)
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y
    e = y - x @ beta
    meat = np.zeros((x.shape[1], x.shape[1]))
    for g in np.unique(d["therapist"]):
        s = x[d["therapist"].to_numpy() == g].T @ e[d["therapist"].to_numpy() == g]
        meat += np.outer(s, s)
    n, k, groups = len(y), x.shape[1], d["therapist"].nunique()
    factor = groups / (groups - 1) * (n - 1) / (n - k)
    return beta, factor * bread @ meat @ bread


def test_linear_fit_equals_ols_and_the_cluster_sandwich_written_out():
    d = _ancova()
    fit = fit_linear(d, "final", ["x", "flag", "baseline"], "therapist", model="toy")
    beta, cov = _sandwich_by_hand(d, ["x", "flag", "baseline"])
    np.testing.assert_allclose(fit.params.to_numpy(), beta, rtol=1e-10)
    np.testing.assert_allclose(fit.cov.to_numpy(), cov, rtol=1e-8)
    rows = fit.coefficients.set_index("term")
    se = np.sqrt(np.diag(cov))[1]
    assert rows.loc["x", "ci_low"] == pytest.approx(beta[1] - 1.959964 * se, rel=1e-8)
    z = abs(rows.loc["flag", "estimate"]) / np.sqrt(np.diag(cov))[2]
    assert rows.loc["flag", "p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-6)
    assert (rows["scale"] == "difference in points").all() and fit.card.n_groups == 50
    # the planted effect is recovered (difference in points per unit of x)
    assert rows.loc["x", "ci_low"] < 2.0 < rows.loc["x", "ci_high"]
    # what a 0/1 term rests on: people at each level
    assert fit.card.level_counts["flag"] == (int(d["flag"].sum()), int((d["flag"] == 0).sum()))


def test_linear_fit_by_qr_equals_statsmodels_pseudo_inverse_fit():
    """The QR solve replaces ``OLS.fit``'s SVD; estimates, HC1 and model-based errors and
    the log-likelihood are unchanged (badly scaled columns included)."""
    import statsmodels.api as sm

    d = _ancova(n=2000, seed=5).assign(big=lambda f: f["x"] * 1e4 + 3e5)
    predictors = ["big", "flag", "baseline"]
    fit = fit_linear(d, "final", predictors, None, model="toy")
    x = sm.add_constant(d[predictors])
    ref = sm.OLS(d["final"], x).fit(cov_type="HC1")
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fit.cov.to_numpy(), ref.cov_params().to_numpy(), rtol=1e-8)
    assert fit.card.log_likelihood == pytest.approx(ref.llf, rel=1e-12)
    assert fit.card.optimizer == "least squares (QR decomposition)"


def test_linear_fit_with_few_clusters_uses_cr2_and_fails_clearly_on_collinearity():
    d = _ancova(n=400, clusters=5, seed=2)
    fit = fit_linear(d, "final", ["x", "baseline"], "therapist", options=FitOptions(20))
    assert any("t reference on 4 df" in note for note in fit.card.notes)
    d["x2"] = 2 * d["x"]
    with pytest.raises(ModelError, match="collinear"):
        fit_linear(d, "final", ["x", "x2", "baseline"], "therapist")


def test_case_mix_reference_is_the_most_common_whatever_sorts_first():
    from pipeline.models.effects import _design, most_common_first, reference_levels

    data = pd.DataFrame({"treatment": ["CBT"] * 5 + ["ACT"] * 2 + ["counselling"] * 3})
    coded = data.assign(treatment=most_common_first(data["treatment"]))
    assert reference_levels(coded, ["treatment"]) == {"treatment": "CBT"}
    assert list(_design(coded, ["treatment"]).columns) == [
        "treatment_ACT",
        "treatment_counselling",
    ]
    # without the coding (an exposure such as the flags group): label order, 0 first
    groups = pd.DataFrame({"g": ["2+", "2+", "2+", "0", "1"]})
    assert reference_levels(groups, ["g"]) == {"g": "0"}
    assert list(_design(groups, ["g"]).columns) == ["g_1", "g_2+"]
    # ties go to the label that sorts first; numeric predictors have no reference
    tie = pd.DataFrame({"g": ["b", "a", "b", "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    tie = tie.assign(g=most_common_first(tie["g"]))
    assert reference_levels(tie, ["g", "x"]) == {"g": "a"}


def test_standardise_records_the_sd_behind_each_per_sd_term():
    from pipeline.models.effects import standardise

    data = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "flag": [0.0, 1.0, 0.0, 1.0]})
    out = standardise(data, ["x", "flag"])
    assert out.attrs["sd_units"] == {"x": pytest.approx(data["x"].std())}
    assert list(out["flag"]) == [0.0, 1.0, 0.0, 1.0]
