"""Clinical significance: each formula by hand, direction and boundaries, and the R package
clinicalsignificance's results on its own public datasets reproduced client by client.

The reference results in tests/data/clinical_significance/ were made by the package itself
(scripts/clinical_significance_reference.R, commit 863dc77 of
github.com/pedscience/clinicalsignificance); ``PUBLISHED`` repeats the counts the package's
authors published in its test snapshots, so the fixture is checked against them too.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.clinical_significance import (
    CATEGORIES,
    CHANGE_CATEGORIES,
    METHODS,
    POINTS,
    POINTS_CATEGORIES,
    SIDE_BY_SIDE_COLUMNS,
    Classification,
    Population,
    SampleStats,
    category_counts,
    change_categories,
    classify,
    critical_value,
    cutoff,
    cutoff_ha,
    ha_group_level,
    instrument_classification,
    outcome_counts,
    outcome_settings,
    reliable_change_index,
    s_diff,
    sample_stats,
    se_measurement,
    se_prediction,
    side_by_side,
)
from pipeline.config import instrument_registry, parse_params
from pipeline.instruments import BUILTIN_INSTRUMENTS, get_instrument

DATA = Path(__file__).parent / "data" / "clinical_significance"

# Two clients, both starting at 20 (higher is worse): A ends at 12, B at 16. The sample
# statistics are given by hand: pre mean 18, SD 5; post mean 14, SD 6; correlation .5.
PRE, POST = np.array([20.0, 20.0]), np.array([12.0, 16.0])
STATS = SampleStats(n=2, mean_pre=18, sd_pre=5, mean_post=14, sd_post=6, correlation=0.5)


def rci(method, **kw):
    return reliable_change_index(PRE, POST, method, reliability=0.8, stats=STATS, **kw)


# --- the formulas, worked by hand -------------------------------------------------------


def test_standard_errors():
    assert se_measurement(5, 0.8) == pytest.approx(5 * 0.2**0.5)  # 2.2361
    assert s_diff(5, 0.8) == pytest.approx(3.1622777)  # 5 · sqrt(2 · 0.2)
    assert se_prediction(5, 0.8) == pytest.approx(3.0)  # 5 · sqrt(1 − 0.64)


def test_critical_values_are_the_normal_quantiles():
    assert critical_value("JT") == pytest.approx(1.959963985)
    assert critical_value("HA") == pytest.approx(1.644853627)  # one-sided
    assert critical_value("EN", 0.10) == pytest.approx(1.644853627)
    with pytest.raises(ValueError, match="between 0 and 1"):
        critical_value("JT", 1.5)


def test_jacobson_truax_index():
    # (post − pre) / S_diff: −8 / 3.1623 = −2.5298; −4 / 3.1623 = −1.2649
    assert rci("JT") == pytest.approx([-2.5298221, -1.2649111])


def test_gulliksen_lord_novick_and_hsu_linn_lord():
    # GLN: (12 − 18 − 0.8 · (20 − 18)) / (5 · sqrt(1 − 0.64)) = −7.6 / 3 = −2.5333
    assert rci("GLN")[0] == pytest.approx(-7.6 / 3)
    # HLL uses the post mean: (12 − 14 − 1.6) / 3 = −1.2
    assert rci("HLL")[0] == pytest.approx(-1.2)


def test_edwards_nunnally_and_nunnally_kotsch():
    # EN: estimated true pre score 0.8 · 2 + 18 = 19.6; (12 − 19.6) / (5 · sqrt(0.2))
    assert rci("EN")[0] == pytest.approx(-3.3988233)
    # NK: sqrt(0.64 · 25 · 0.2 + 25 · (1 − r_post)) = sqrt(15.7) with r_post .5
    assert rci("NK", reliability_post=0.5)[0] == pytest.approx(-7.6 / 15.7**0.5)
    # without r_post, r_post = r: sqrt(3.2 + 5) = sqrt(8.2)
    assert rci("NK")[0] == pytest.approx(-7.6 / 8.2**0.5)


def test_hageman_arrindell_index():
    # SE² = 25 · 0.2 = 5; r_pre = (25 − 5)/25 = .8, r_post = (36 − 5)/36; r_dd = (20 + 31 −
    # 30) / (25 + 36 − 30) = 21/31; RC = (−8 · r_dd + (14 − 18)(1 − r_dd)) / (sqrt(r_dd) ·
    # sqrt(10)) = −2.57794
    assert rci("HA")[0] == pytest.approx(-2.5779402)


def test_a_given_sd_replaces_the_sample_sd():
    # normative SD 10 instead of the sample's 5: S_diff = 10 · sqrt(0.4) = 6.3246
    assert rci("JT", sd=10)[0] == pytest.approx(-8 / 6.3245553)


def test_reliability_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        reliable_change_index(PRE, POST, "JT", reliability=1.0, stats=STATS)
    with pytest.raises(ValueError, match="reliability_post"):
        rci("NK", reliability_post=0)


def test_sample_statistics_use_n_minus_one():
    s = sample_stats(np.array([10.0, 20.0, 30.0]), np.array([5.0, 15.0, 10.0]))
    assert (s.mean_pre, s.sd_pre, s.sd_post) == (20, pytest.approx(10.0), pytest.approx(5.0))
    assert s.correlation == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two complete pairs"):
        sample_stats(np.array([1.0]), np.array([2.0]))


# --- cut-offs ---------------------------------------------------------------------------


def test_cutoffs_from_jacobson_and_truax_example():
    # The package's test of Jacobson & Truax's example: dysfunctional 40 (SD 7.5),
    # functional 60 (SD 7.5).
    dys, fun = Population(40, 7.5), Population(60, 7.5)
    better = {k: cutoff(k, dys, fun, higher_is_worse=False) for k in "abc"}
    worse = {k: cutoff(k, dys, fun, higher_is_worse=True) for k in "abc"}
    assert better == {"a": 55, "b": 45, "c": 50}
    assert worse == {"a": 25, "b": 75, "c": 50}


def test_cutoff_b_spread_and_c_with_unequal_sds():
    dys, fun = Population(40, 10), Population(60, 5)
    # b: the package takes the dysfunctional SD (60 − 2 · 10); Jacobson & Truax's wording
    # the functional one (60 − 2 · 5)
    assert cutoff("b", dys, fun, higher_is_worse=False) == 40
    assert cutoff("b", dys, fun, higher_is_worse=False, b_spread="functional") == 50
    # c = (10 · 60 + 5 · 40) / 15
    assert cutoff("c", dys, fun, higher_is_worse=False) == pytest.approx(800 / 15)
    with pytest.raises(ValueError, match="functional population"):
        cutoff("c", dys, None, higher_is_worse=False)


def test_true_score_cutoffs():
    # SE² = 25 · 0.2 = 5; r_fun = (16 − 5) / 16 = .6875; spreads 5 · sqrt(.8), 4 · sqrt(.6875)
    dys, fun = Population(20, 5), Population(8, 4)
    assert cutoff_ha("a", dys, 0.8, fun, higher_is_worse=True) == pytest.approx(11.0557281)
    assert cutoff_ha("b", dys, 0.8, fun, higher_is_worse=True) == pytest.approx(16.9442719)
    assert cutoff_ha("c", dys, 0.8, fun, higher_is_worse=True) == pytest.approx(13.1098626)


# --- classification: worked example, direction, boundaries ------------------------------


def jt(**kw):
    base = dict(method="JT", reliability=0.8, sd=5.0, dysfunctional=Population(24, 5))
    return Classification(**{**base, **kw})


def test_two_client_worked_example():
    # cut-off a = 24 − 2 · 5 = 14. A: RCI −2.53, clinical before (20 > 14), functional after
    # (12 < 14): recovered. B: RCI −1.26: unchanged.
    out = classify(PRE, POST, jt(), ids=["A", "B"])
    assert out["cutoff"].iloc[0] == 14
    assert out.set_index("id")["category"].to_dict() == {"A": "recovered", "B": "unchanged"}
    assert list(out["change_category"]) == ["improved", "unchanged"]
    assert list(out["rci"]) == pytest.approx([-2.5298221, -1.2649111])


def test_every_combined_category_and_the_boundaries():
    # cut-off 14, S_diff 3.1623, critical 1.96: |change| ≥ 7 is reliable, 6 is not.
    pre = [22, 22, 20, 14, 12, 16, 14, 2]
    post = [12, 14, 14, 22, 20, 24, 14, 10]
    out = classify(pre, post, jt())
    assert list(out["category"]) == [
        "recovered",  # reliably down, from clinical to functional
        "improved",  # reliably down, but ends exactly at the cut-off: not functional
        "unchanged",  # 6 points: not reliable
        "harmed",  # starts exactly at the cut-off (not clinical), reliably up to clinical
        "harmed",  # functional to clinical
        "deteriorated",  # reliably up, but started clinical
        "unchanged",
        "deteriorated",  # reliably up, but still functional (10 < 14)
    ]
    assert list(out["clinical_pre"]) == [True, True, True, False, False, True, False, False]
    assert list(out["functional_post"]) == [True, False, False, False, False, False, False, True]


def test_index_exactly_at_the_critical_value_is_not_reliable():
    c = critical_value()
    assert list(change_categories(np.array([c, -c, 1.97, np.nan]), False, c)) == [
        "unchanged",
        "unchanged",
        "improved",
        None,
    ]


def test_direction_mirror():
    # A higher-is-better scale is the mirror image: scores 40 − x with the norms mirrored
    # classify every client the same.
    pre, post = np.array([22, 22, 20, 14, 12, 16]), np.array([12, 14, 14, 22, 20, 24])
    worse = classify(pre, post, jt())
    better = classify(
        40 - pre, 40 - post, jt(higher_is_worse=False, dysfunctional=Population(16, 5))
    )
    assert better["cutoff"].iloc[0] == 26  # 16 + 2 · 5
    assert list(better["category"]) == list(worse["category"])
    assert list(better["rci"]) == pytest.approx(list(-worse["rci"]))


def test_missing_scores_are_kept_but_not_classified():
    out = classify([22, 20, np.nan, 18], [12, np.nan, 10, 19], jt())
    assert out["category"].isna().tolist() == [False, True, True, False]
    assert category_counts(out)["n"].sum() == 2
    # the sample statistics come from complete pairs only (as the package's na.omit)
    alone = classify([22, 18], [12, 19], jt())
    assert list(out["rci"].dropna()) == pytest.approx(list(alone["rci"]))


def test_defaults_take_the_sample_as_the_package_does():
    # no SD and no dysfunctional norms: the pre-treatment mean and SD of the pairs
    pre, post = np.array([30.0, 20, 10]), np.array([20.0, 22, 4])
    out = classify(pre, post, Classification(reliability=0.8))
    assert out["cutoff"].iloc[0] == pytest.approx(20 - 2 * 10)  # mean 20, SD 10
    assert out["rci"].iloc[0] == pytest.approx(-10 / s_diff(10, 0.8))


def test_counts_list_every_category():
    out = classify(PRE, POST, jt())
    counts = category_counts(out)
    assert list(counts["category"]) == list(CATEGORIES)
    assert counts.set_index("category")["n"].to_dict() == {
        "recovered": 1,
        "improved": 0,
        "unchanged": 1,
        "deteriorated": 0,
        "harmed": 0,
    }
    assert list(category_counts(out, "change_category")["category"]) == list(CHANGE_CATEGORIES)


# --- the R package's own datasets, reproduced -------------------------------------------

SETTINGS = pd.read_csv(DATA / "settings.csv")
EXPECTED = pd.read_csv(DATA / "expected_counts.csv")
CLIENTS = pd.read_csv(DATA / "expected_clients.csv")
IDS = {"claus_2020": "id", "jacobson_1989": "subject"}

# Published by the package's authors: tests/testthat/_snaps/cs_combined.md and
# cs_distribution.md at commit 863dc77 (claus_2020, HAM-D, pre 1, post 4, reliability .80,
# functional M 8, SD 8, cut-off c; NK with reliability_post .5). Categories in the order
# recovered, improved, unchanged, deteriorated, harmed (distribution: improved, unchanged,
# deteriorated).
PUBLISHED = {
    ("combined", "JT"): [26, 3, 10, 1, 0],
    ("combined", "EN"): [26, 6, 5, 3, 0],
    ("combined", "HLL"): [12, 0, 16, 11, 1],
    ("combined", "GLN"): [26, 3, 10, 1, 0],
    ("combined", "NK"): [26, 2, 11, 1, 0],
    ("combined", "HA"): [23, 9, 7, 1, 0],
    ("distribution", "JT"): [29, 10, 1],
    ("distribution", "EN"): [32, 5, 3],
    ("distribution", "HLL"): [12, 16, 12],
    ("distribution", "GLN"): [29, 10, 1],
    ("distribution", "NK"): [28, 11, 1],
    ("distribution", "HA"): [32, 7, 1],
}


def pairs(setting: pd.Series) -> pd.DataFrame:
    """The setting's complete pre/post pairs, as the package's .prep_data makes them."""
    data = pd.read_csv(DATA / f"{setting['dataset']}.csv")
    wide = data.assign(time=data["time"].astype(str)).pivot(
        index=IDS[setting["dataset"]], columns="time", values=setting["outcome"]
    )
    return (
        wide[[str(setting["pre"]), str(setting["post"])]].dropna().set_axis(["pre", "post"], axis=1)
    )


def spec(setting: pd.Series, method: str) -> Classification:
    functional = None
    if not pd.isna(setting["m_functional"]):
        functional = Population(setting["m_functional"], setting["sd_functional"])
    return Classification(
        method=method,
        reliability=setting["reliability"],
        reliability_post=setting["reliability_post"],
        higher_is_worse=setting["better_is"] == "lower",
        cutoff_type=setting["cutoff_type"],
        functional=functional,
    )


def expected(setting: str, approach: str, method: str) -> dict[str, int]:
    rows = EXPECTED[
        (EXPECTED["setting"] == setting)
        & (EXPECTED["approach"] == approach)
        & (EXPECTED["method"] == method)
    ]
    return dict(zip(rows["category"], rows["n"].astype(int), strict=True))


CASES = [(s, m) for s in SETTINGS["setting"] for m in METHODS]


@pytest.mark.parametrize(("setting", "method"), CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_reproduces_the_r_package(setting, method):
    s = SETTINGS.set_index("setting").loc[setting]
    wide = pairs(s)
    out = classify(wide["pre"], wide["post"], spec(s, method), ids=wide.index)
    for approach, column in (("combined", "category"), ("distribution", "change_category")):
        ours = category_counts(out, column).set_index("category")["n"].to_dict()
        assert ours == expected(setting, approach, method), approach
    # client by client: the same category and the same index
    ref = CLIENTS[(CLIENTS["setting"] == setting) & (CLIENTS["method"] == method)]
    mine = out.set_index("id").loc[ref["id"]]
    assert list(mine["category"]) == list(ref["category"])
    assert mine["rci"].to_numpy() == pytest.approx(ref["rci"].to_numpy(), abs=1e-9)


@pytest.mark.parametrize("setting", list(SETTINGS["setting"]))
@pytest.mark.parametrize("method", ["JT", "HA"])
def test_reproduces_the_cutoff_only_approach(setting, method):
    s = SETTINGS.set_index("setting").loc[setting]
    wide = pairs(s)
    out = classify(wide["pre"], wide["post"], spec(s, method))
    ours = category_counts(out, "cutoff_category").set_index("category")["n"].to_dict()
    assert ours == expected(setting, "statistical", method)


def test_reproduction_fixture_equals_the_published_snapshots():
    for (approach, method), counts in PUBLISHED.items():
        levels = CATEGORIES if approach == "combined" else CHANGE_CATEGORIES
        assert expected("claus_hamd_c", approach, method) == dict(zip(levels, counts, strict=True))


def test_reproduces_the_hageman_arrindell_group_level():
    ref = pd.read_csv(DATA / "expected_ha_group.csv")
    for setting, rows in ref.groupby("setting"):
        s = SETTINGS.set_index("setting").loc[setting]
        wide = pairs(s)
        ours = ha_group_level(wide["pre"], wide["post"], spec(s, "HA"))
        assert list(ours["category"]) == list(rows["category"])
        assert ours["proportion"].to_numpy() == pytest.approx(
            rows["proportion"].to_numpy(), abs=1e-9
        )
    # and as published (rounded to two decimals in the snapshot): changed .90, functional .76
    s = SETTINGS.set_index("setting").loc["claus_hamd_c"]
    wide = pairs(s)
    ours = ha_group_level(wide["pre"], wide["post"], spec(s, "HA"))["proportion"]
    assert [round(p, 2) for p in ours] == [0.90, 0.76]


# --- the pipeline's outcome table --------------------------------------------------------


def outcome_frame() -> pd.DataFrame:
    # PHQ-9 (reference SD 5.5, alpha .89: S_diff 2.5797, JT criterion 5.06 points; NHS TT 6
    # points; dysfunctional norms 15.4 / 5.5 give cut-off a = 4.4; caseness 10)
    return pd.DataFrame(
        {
            "phq9_baseline": [18, 16, 10, 3, 12],
            "phq9_last": [12, 4, 15, 10, np.nan],
            "wsas_baseline": [20, 20, 10, 5, 5],  # WSAS: no reliability registered
            "wsas_last": [10, 19, 30, 5, 6],
        }
    )


def test_outcome_counts_points_rule_and_jacobson_truax_side_by_side():
    counts = outcome_counts(outcome_frame(), BUILTIN_INSTRUMENTS)
    phq = counts[counts["instrument"] == "PHQ-9"]
    points = phq[phq["method"] == POINTS].set_index("category")["n"].to_dict()
    # 18 → 12: 6 points, still ≥ 10; 16 → 4: recovered; 10 → 15: 5 points (no); 3 → 10: 7 up
    assert points == {
        "reliable_recovery": 1,
        "reliable_improvement_not_recovered": 1,
        "no_reliable_change": 1,
        "reliable_deterioration": 1,
    }
    jt_counts = phq[phq["method"] == "JT"].set_index("category")["n"].to_dict()
    # RCIs −2.33, −4.65, 1.94, 2.71. 18 → 12 improved but 12 is above 4.4; 16 → 4 recovered;
    # 10 → 15 not reliable; 3 → 10 starts below the cut-off and ends above it: harmed.
    assert jt_counts == {
        "recovered": 1,
        "improved": 1,
        "unchanged": 1,
        "deteriorated": 0,
        "harmed": 1,
    }
    # WSAS has no reliability: the points rule only; GAD-7 is not in the frame: no rows
    assert set(counts.loc[counts["instrument"] == "WSAS", "method"]) == {POINTS}
    assert "GAD-7" not in set(counts["instrument"])
    assert list(counts.columns) == ["instrument", "method", "category", "n"]
    assert counts["n"].dtype == "int64"


def test_outcome_counts_points_rule_agrees_with_the_outcome_table_rules():
    from pipeline.outcomes import instrument_outcomes

    frame = outcome_frame()
    summary = pd.DataFrame(
        {"baseline": frame["phq9_baseline"], "last": frame["phq9_last"], "n": [2, 2, 2, 2, 1]}
    )
    table = instrument_outcomes(summary, "PHQ-9")
    counts = outcome_counts(frame, BUILTIN_INSTRUMENTS)
    points = counts[(counts["instrument"] == "PHQ-9") & (counts["method"] == POINTS)]
    n = points.set_index("category")["n"]
    assert n["reliable_recovery"] == int(table["reliable_recovery"].fillna(False).sum())
    improved = int(table["reliable_change"].eq(1).sum())
    assert n["reliable_recovery"] + n["reliable_improvement_not_recovered"] == improved
    assert n["reliable_deterioration"] == int(table["reliable_change"].eq(-1).sum())
    assert set(points["category"]) == set(POINTS_CATEGORIES)


def test_outcome_settings_say_what_was_used():
    settings = outcome_settings(outcome_frame(), BUILTIN_INSTRUMENTS).set_index(
        ["instrument", "method"]
    )
    row = settings.loc[("PHQ-9", "JT")]
    assert row["n"] == 4
    assert (row["sd"], row["sd_source"], row["reliability"]) == (5.5, "reference", 0.89)
    assert (row["cutoff_type"], row["cutoff_source"]) == ("a", "norms")
    assert row["cutoff"] == pytest.approx(15.4 - 2 * 5.5)
    assert row["criterion_points"] == pytest.approx(critical_value() * 5.5 * 0.22**0.5)  # 5.06
    assert settings.loc[("PHQ-9", POINTS), "criterion_points"] == 6


def test_outcome_counts_for_a_params_registered_instrument():
    params = parse_params(
        {
            "instruments": {
                "HAMD-17": {
                    "minimum": 0,
                    "maximum": 52,
                    "higher_is_worse": True,
                    "caseness": 8,
                    "reliability": 0.8,
                    "reference_sd": 5.0,
                    "dysfunctional_mean": 24,
                    "dysfunctional_sd": 5,
                    "functional_mean": 4,
                    "functional_sd": 5,
                }
            }
        }
    )
    registry = instrument_registry(params)
    hamd = get_instrument("HAMD-17", registry)
    spec_ = instrument_classification(hamd)
    assert (spec_.cutoff_type, spec_.sd) == ("c", 5.0)  # functional norms: cut-off c = 14
    frame = pd.DataFrame({"hamd17_baseline": [22, 22, 20], "hamd17_last": [12, 14, 14]})
    counts = outcome_counts(frame, registry, methods=("JT", "HA"))
    jt_counts = counts[(counts["instrument"] == "HAMD-17") & (counts["method"] == "JT")]
    assert jt_counts.set_index("category")["n"].to_dict() == {
        "recovered": 1,
        "improved": 1,
        "unchanged": 1,
        "deteriorated": 0,
        "harmed": 0,
    }
    # HA is undefined here (the post-treatment SD, 1.15, is below the measurement error,
    # SE = 5 · sqrt(0.2) = 2.24): no rows, and the settings say why
    assert set(counts["method"]) == {POINTS, "JT"}
    notes = outcome_settings(frame, registry, methods=("JT", "HA")).set_index("method")["note"]
    assert notes["JT"] == ""
    assert "post-treatment SD" in notes["HA"]
    # reliable_change null: the points rule uses 1.96 · 5 · sqrt(0.4) = 6.20 points
    points = counts[(counts["instrument"] == "HAMD-17") & (counts["method"] == POINTS)]
    assert points.set_index("category")["n"]["no_reliable_change"] == 1  # 20 → 14: 6 < 6.20


# --- the stage's side-by-side table ----------------------------------------------------


@given(
    pre=st.lists(st.integers(10, 27), min_size=2, max_size=40),
    post=st.lists(st.integers(0, 27), min_size=40, max_size=40),
)
def test_jacobson_truax_agrees_with_the_nhs_points_rule_on_whole_phq9_scores(pre, post):
    """With the NHS intake SD 5.5 and alpha .89, JT's criterion is 5.06 points: on a
    whole-number scale a change is reliable by JT exactly when it is 6 or more, the NHS
    rule. The two classifications can differ only in the cut-off."""
    pre_a = np.array(pre, dtype=float)
    post_a = np.array(post[: len(pre)], dtype=float)
    spec = instrument_classification(get_instrument("PHQ-9"), "JT")
    jt = classify(pre_a, post_a, spec)["change_category"].to_numpy()
    nhs = np.where(
        pre_a - post_a >= 6, "improved", np.where(post_a - pre_a >= 6, "deteriorated", "unchanged")
    )
    assert list(jt) == list(nhs)


def test_side_by_side_counts_clients_at_caseness_who_finished_a_course():
    frame = pd.DataFrame(
        {
            # at caseness and finished; finished but below caseness (3 → 1); not finished
            "phq9_baseline": [18.0, 16.0, 3.0, 20.0, 12.0],
            "phq9_last": [12.0, 4.0, 1.0, 5.0, np.nan],
            "finished_course": [True, True, True, False, True],
        }
    )
    counts, settings = side_by_side(frame, "caseness", ("JT",), registry=BUILTIN_INSTRUMENTS)
    points = counts[counts["method"] == POINTS].set_index("category")
    assert (points["clients_classified"] == 2).all()  # the client at PHQ-9 3 is not counted
    assert points.loc["reliable_recovery", "clients"] == 1  # 16 → 4
    assert points.loc["reliable_improvement_not_recovered", "clients"] == 1  # 18 → 12
    assert points["share_clients"].sum() == pytest.approx(1.0)
    jt = counts[counts["method"] == "JT"].set_index("category")["clients"]
    assert (jt["recovered"], jt["improved"]) == (1, 1)  # 4 < 4.4; 12 is above cut-off a
    assert set(counts["population"]) == {"finished a course, at caseness at baseline"}
    assert settings.set_index("method").loc["JT", "n"] == 2
    everyone, _ = side_by_side(frame, "all", ("JT",), registry=BUILTIN_INSTRUMENTS)
    assert (everyone.loc[everyone["method"] == POINTS, "clients_classified"] == 3).all()
    assert list(counts.columns) == SIDE_BY_SIDE_COLUMNS


def test_side_by_side_of_an_outcome_table_without_scores_is_empty():
    counts, settings = side_by_side(pd.DataFrame({"episode_id": ["e1"]}))
    assert counts.empty and list(counts.columns) == SIDE_BY_SIDE_COLUMNS and settings.empty
