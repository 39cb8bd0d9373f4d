"""The trajectory code path reproduces a published analysis, and fails clearly."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.models.replication import (
    BTHEB_FORMULA,
    BTHEB_PUBLISHED,
    as_printed,
    btheb_long,
    btheb_reproduction,
)
from pipeline.models.tidy import ModelError
from pipeline.models.trajectories import fit_trajectory, person_mean_centre


@pytest.fixture(scope="module")
def btheb():
    return btheb_long()


def test_as_printed_rounds_to_the_printed_decimals_trailing_zeros_included():
    assert as_printed(5.943675, "5.94") == 5.94
    assert as_printed(0.2563, "0.256") == 0.256
    assert as_printed(-2.3749, "-2.37") == -2.37
    assert as_printed(-2.376, "-2.37") == -2.38  # one digit further off: no match
    assert as_printed(-2.7978, "-2.80") == -2.80
    assert as_printed(-2.7478, "-2.80") == -2.75  # would pass at one decimal; not at two
    assert as_printed(7.04, "7") == 7.0


def test_beat_the_blues_published_fixed_effects_and_sds(btheb):
    fit = fit_trajectory(btheb, BTHEB_FORMULA, "subject", model="btheb")
    table = btheb_reproduction(fit)
    assert set(table.index) == set(BTHEB_PUBLISHED)  # every published figure is checked
    assert table["matches"].all(), table
    assert (table["as_printed"] == pd.Series(BTHEB_PUBLISHED)).all()
    assert fit.card.converged and fit.card.n_groups == 97
    assert fit.card.n_analysed == 280 and fit.card.n_input == 400  # 120 missed visits


def test_person_mean_centring_by_hand():
    df = pd.DataFrame({"id": ["a", "a", "b", "b"], "x": [1.0, 3.0, 10.0, 14.0]})
    out = person_mean_centre(df, "x", "id")
    assert list(out["x_within"]) == [-1.0, 1.0, -2.0, 2.0]
    assert list(out["x_between"]) == [-5.0, -5.0, 5.0, 5.0]  # person means 2 and 12, grand 7


def test_one_group_or_a_constant_column_fails_clearly(btheb):
    one = btheb.assign(subject=1)
    with pytest.raises(ModelError, match="one subject"):
        fit_trajectory(one, BTHEB_FORMULA, "subject")
    constant = btheb.assign(bdi_pre=20)
    with pytest.raises(ModelError, match="single value"):
        fit_trajectory(constant, BTHEB_FORMULA, "subject")
    with pytest.raises(ModelError, match="not in the data"):
        fit_trajectory(btheb, "bdi ~ nonexistent", "subject")


def test_boundary_random_slope_is_flagged_and_cross_checked():
    # No slope variance in the data: the MLE of the slope variance sits at the boundary.
    rng = np.random.default_rng(1)
    n, k = 60, 4
    df = pd.DataFrame({"id": np.repeat(np.arange(n), k), "t": np.tile(np.arange(k), n)})
    df["y"] = 10 + np.repeat(rng.normal(0, 2, n), k) - 0.5 * df["t"] + rng.normal(0, 1, n * k)
    fit = fit_trajectory(df, "y ~ t", "id", re_formula="~t", model="no slope variance")
    notes = " ".join(fit.card.notes)
    assert "boundary" in notes and "without the boundary term" in notes
    assert any("boundary" in w for w in fit.card.warnings)  # statsmodels' own warning kept
    assert fit.coefficients.set_index("term").loc["t", "estimate"] == pytest.approx(-0.5, abs=0.1)
    # With real slope variance nothing is flagged.
    df["y"] += df["t"] * np.repeat(rng.normal(0, 1.5, n), k)
    clean = fit_trajectory(df, "y ~ t", "id", re_formula="~t")
    assert not any("boundary" in note for note in clean.card.notes)


def test_random_intercept_slope_sds_and_correlation_are_recovered():
    rng = np.random.default_rng(4)
    n, k = 800, 6
    cov = [[4.0**2, -0.5 * 4.0 * 0.8], [-0.5 * 4.0 * 0.8, 0.8**2]]
    b = rng.multivariate_normal([0, 0], cov, n)
    t = np.tile(np.arange(k, dtype=float), n)
    ids = np.repeat(np.arange(n), k)
    y = 15 + b[ids, 0] + (-1 + b[ids, 1]) * t + rng.normal(0, 1.5, n * k)
    fit = fit_trajectory(pd.DataFrame({"id": ids, "t": t, "y": y}), "y ~ t", "id", "~t")
    v = fit.variance.set_index("component")
    assert v.loc["id: intercept", "sd"] == pytest.approx(4.0, rel=0.1)
    assert v.loc["id: t", "sd"] == pytest.approx(0.8, rel=0.1)
    assert v.loc["residual", "sd"] == pytest.approx(1.5, rel=0.1)
    assert v.loc["id: corr(intercept, t)", "correlation"] == pytest.approx(-0.5, abs=0.1)


# --- fixed-effect errors as lme4: (X'V^-1X)^-1 ----------------------------------------
# References from scripts/mixed_reference.R (lme4, ML) on the stored rows in
# tests/data/inference (btheb.csv: Beat the Blues; trajectory.csv: the trajectory models'
# rows of a 600-episode synthetic cohort).

INFERENCE = Path(__file__).resolve().parents[1] / "data" / "inference"
R_TERMS = {  # lme4's names → ours (patsy)
    "(Intercept)": "Intercept",
    "treatmentBtheB": "treatment[T.BtheB]",
    "drugYes": "drug[T.Yes]",
    "length>6m": "length[T.>6m]",
}


def _r_fixed(model: str) -> pd.DataFrame:
    r = pd.read_csv(INFERENCE / "r_lmer.csv")
    r = r[r["model"] == model].assign(term=lambda d: d["term"].replace(R_TERMS))
    return r.set_index("term")


def _r_variance(model: str) -> dict[str, float]:
    vc = pd.read_csv(INFERENCE / "r_lmer_vc.csv")
    return dict(vc.loc[vc["model"] == model, ["component", "variance"]].to_numpy())


def _relative_se_gap(fit, model: str) -> pd.Series:
    ours = fit.coefficients.set_index("term")
    r = _r_fixed(model)
    se = (ours["ci_high"] - ours["ci_low"]) / (2 * 1.959963984540054)
    assert set(se.index) == set(r.index)
    return (se / r["se"].reindex(se.index) - 1).abs()


def test_beat_the_blues_fixed_effect_errors_equal_lme4(stored_btheb):
    fit = fit_trajectory(stored_btheb, BTHEB_FORMULA, "subject", model="btheb")
    gap = _relative_se_gap(fit, "btheb")
    assert gap.max() < 1e-4, gap
    # statsmodels' own (inverse observed Hessian) errors are 0.02–0.4% larger.
    assert "lme4" in " ".join(fit.card.notes)


def test_trajectory_model_errors_equal_lme4(stored_trajectory):
    from pipeline.models import analysis

    two = analysis._client_model(stored_trajectory)
    assert (_relative_se_gap(two, "client") < 1e-4).all()
    three = analysis._therapist_model(
        stored_trajectory.rename(columns={"therapist": analysis.CLUSTER}), two
    )
    # On these rows the therapist variance is at its boundary (lme4: singular, 0) and
    # statsmodels stops short of it ("not converged" on the card): the errors differ by
    # where the optimisers stop, not by the formula (checked at R's estimates below).
    assert three.card.status == "not converged"
    assert (_relative_se_gap(three, "therapist") < 1e-2).all()


def test_gls_covariance_at_r_estimates_equals_vcov(stored_btheb, stored_trajectory):
    import patsy

    from pipeline.models.trajectories import gls_covariance

    # Random intercept per subject (Beat the Blues).
    v = _r_variance("btheb")
    x = patsy.dmatrix(BTHEB_FORMULA.split("~")[1], stored_btheb, return_type="dataframe")
    groups = [
        (x.to_numpy()[rows], np.ones((len(rows), 1)), np.array([[v["subject:(Intercept)"]]]))
        for rows in stored_btheb.groupby("subject").indices.values()
    ]
    se = pd.Series(np.sqrt(np.diag(gls_covariance(groups, v["Residual"]))), index=x.columns)
    r = _r_fixed("btheb")["se"]
    assert np.allclose(se, r.reindex(se.index), rtol=1e-7, atol=0)
    # Correlated intercept and slope per client (the two-level trajectory model).
    v = _r_variance("client")
    d = stored_trajectory
    x = patsy.dmatrix(
        "weeks + alliance_score_within + alliance_score_between", d, return_type="dataframe"
    )
    cov = np.array(
        [
            [v["episode:(Intercept)"], v["episode:(Intercept):weeks"]],
            [v["episode:(Intercept):weeks"], v["episode:weeks"]],
        ]
    )
    groups = []
    for rows in d.groupby("episode_id").indices.values():
        w = np.column_stack([np.ones(len(rows)), d["weeks"].to_numpy()[rows]])
        groups.append((x.to_numpy()[rows], w, cov))
    se = np.sqrt(np.diag(gls_covariance(groups, v["Residual"])))
    r = _r_fixed("client")["se"].rename({"(Intercept)": "Intercept"})
    assert np.allclose(se, r.reindex(x.columns), rtol=1e-7, atol=0)

    # Therapist intercept, then each client's intercept and slope as independent
    # components nested in it (the three-level trajectory model).
    v = _r_variance("therapist")
    groups = []
    for rows in d.groupby("therapist").indices.values():
        episode = pd.get_dummies(d["episode_id"].to_numpy()[rows], dtype=float).to_numpy()
        weeks = d["weeks"].to_numpy()[rows][:, None]
        w = np.hstack([np.ones((len(rows), 1)), episode, episode * weeks])
        m = episode.shape[1]
        cov = np.diag(
            [v["cluster:(Intercept)"]] + [v["episode.1:(Intercept)"]] * m + [v["episode:weeks"]] * m
        )
        groups.append((x.to_numpy()[rows], w, cov))
    se = np.sqrt(np.diag(gls_covariance(groups, v["Residual"])))
    r = _r_fixed("therapist")["se"].rename({"(Intercept)": "Intercept"})
    assert np.allclose(se, r.reindex(x.columns), rtol=1e-7, atol=0)


def test_fixed_covariance_reads_statsmodels_components_in_their_order(stored_trajectory):
    # _fixed_covariance reads MixedLM internals (exog_li, exog_re_li, exog_vc.mats, cov_re,
    # vcomp); compare it with a hand-built gls_covariance at the same fit's estimates, with
    # component names whose sorted order (statsmodels') differs from the dict's.
    import statsmodels.formula.api as smf

    from pipeline.models.trajectories import _fixed_covariance, gls_covariance

    d = stored_trajectory[stored_trajectory["therapist"] <= 6].reset_index(drop=True)
    formula = "score ~ weeks + alliance_score_within + alliance_score_between"
    vc = {"z intercept": "0 + C(episode_id)", "a slope": "0 + C(episode_id):weeks"}
    result = smf.mixedlm(formula, d, groups=d["therapist"], re_formula="1", vc_formula=vc).fit(
        reml=False, method=["lbfgs"]
    )
    variance = dict(zip(result.model.exog_vc.names, np.asarray(result.vcomp), strict=True))
    assert list(result.model.exog_vc.names) == ["a slope", "z intercept"]
    x_all = np.column_stack(
        [np.ones(len(d)), d["weeks"], d["alliance_score_within"], d["alliance_score_between"]]
    )
    groups = []
    for _, rows in sorted(d.groupby("therapist").indices.items()):
        episode = pd.get_dummies(d["episode_id"].to_numpy()[rows], dtype=float).to_numpy()
        weeks = d["weeks"].to_numpy()[rows][:, None]
        w = np.hstack([np.ones((len(rows), 1)), episode, episode * weeks])
        m = episode.shape[1]
        cov = np.diag(
            [float(np.asarray(result.cov_re)[0, 0])]
            + [variance["z intercept"]] * m
            + [variance["a slope"]] * m
        )
        groups.append((x_all[rows], w, cov))
    expected = gls_covariance(groups, float(result.scale))
    np.testing.assert_allclose(_fixed_covariance(result), expected, rtol=1e-10)
