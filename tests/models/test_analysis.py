"""The analyses of the models stage: hand examples, shared rows, and no model lost."""

import numpy as np
import pandas as pd
import pytest

from pipeline import catalog
from pipeline.config import AnalysisParams, ModelsParams
from pipeline.models import analysis
from pipeline.models.confounding import early_change_sensitivity
from pipeline.models.descriptive import kaplan_meier
from pipeline.models.tidy import card_slug

P = ModelsParams()


def test_cluster_falls_back_from_therapist_to_site_to_the_episode():
    episodes = pd.DataFrame(
        {
            "episode_id": ["e1", "e2", "e3"],
            "therapist_id": ["t1", None, None],
            "site_id": ["s1", "s1", None],
        }
    )
    assert list(analysis.cluster_key(episodes, P)) == ["c:t1", "f:s1", "episode:e3"]
    # A therapist token equal to a site token must not merge the two clusters.
    same = episodes.assign(therapist_id=["s1", None, None])
    key = analysis.cluster_key(same, P)
    assert key[0] != key[1]


def test_rare_levels_are_pooled_and_missing_stays_missing():
    values = pd.Series(["a"] * 5 + ["b"] * 2 + ["c"] + [None], dtype="string")
    pooled = analysis.pool_rare_levels(values, 3)
    assert list(pooled[:8]) == ["a"] * 5 + [analysis.POOLED] * 3
    assert pd.isna(pooled.iloc[8])


def test_cumulative_incidence_by_hand_with_a_competing_ending():
    # t=1 dropout (4 at risk): 1/4. t=2 other ending: no change, S = 3/4 · 2/3 = 1/2.
    # t=3 dropout (2 at risk): 1/4 + 1/2 · 1/2 = 1/2. t=4 censored.
    d = pd.DataFrame({"dropout_time_days": [1, 2, 3, 4.0], "ending_type": [1, 2, 1, 0], "g": "a"})
    ci = analysis.cumulative_incidence(d, "g")
    assert ci["incidence_dropout"].tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5])
    # Naive 1 − Kaplan–Meier treats the other ending as censoring and overstates dropout.
    km = kaplan_meier(
        d.assign(e=(d["ending_type"] == 1).astype(float)), "dropout_time_days", "e", "g"
    )
    assert 1 - km["survival"].min() == pytest.approx(1 - 0.75 * 0.5)


def test_without_competing_endings_incidence_is_one_minus_kaplan_meier():
    rng = np.random.default_rng(1)
    t = rng.integers(1, 60, 300).astype(float)
    e = rng.random(300) < 0.6
    d = pd.DataFrame({"dropout_time_days": t, "ending_type": e.astype(int), "g": "a"})
    ci = analysis.cumulative_incidence(d, "g")
    km = kaplan_meier(d.assign(e=e.astype(float)), "dropout_time_days", "e", "g")
    merged = ci.merge(km, on=["group", "time"])
    assert np.allclose(merged["incidence_dropout"], 1 - merged["survival"])


def test_numbers_at_risk_by_hand():
    d = pd.DataFrame({"dropout_time_days": [0, 6, 7, 14, 30.0], "g": ["a"] * 3 + ["b"] * 2})
    table = analysis.at_risk(d, "g", (0, 1, 2))
    assert table.set_index(["group", "week"])["n_at_risk"].to_dict() == {
        ("a", 0): 3, ("a", 1): 1, ("a", 2): 0,
        ("b", 0): 2, ("b", 1): 2, ("b", 2): 2,
    }  # fmt: skip


def test_trajectory_frame_by_hand():
    sessions = pd.DataFrame(
        {
            "session_id": ["s1", "s2", "s3", "s4"],
            "episode_id": ["e1", "e1", "e1", "e2"],
            "scheduled_date": pd.to_datetime(
                ["2024-01-01", "2024-01-08", "2024-01-15", "2024-02-01"]
            ),
            "alliance_score": [30.0, 36.0, np.nan, 40.0],
        }
    )
    measures = pd.DataFrame(
        {
            "episode_id": ["e1", "e1", "e1", "e1", "e2"],
            "measure_date": pd.to_datetime(
                ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-20", "2024-02-01"]
            ),
            "session_id": ["s1", "s2", "s3", None, "s4"],
            "instrument": ["PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9"],
            "score": [20.0, 15, 12, 10, 8],
        }
    )
    episodes = pd.DataFrame({"episode_id": ["e1", "e2"], "therapist_id": ["t1", "t2"]})
    long = analysis.trajectory_frame(sessions, measures, episodes, "PHQ-9", P)
    # s3 has no alliance and the last score no session: both left out of this model.
    assert long["session_id"].tolist() == ["s1", "s2", "s4"]
    assert long["weeks"].tolist() == [0.0, 1.0, 0.0]
    assert long["alliance_score_within"].tolist() == [-3.0, 3.0, 0.0]
    # person means 33 and 40; grand mean of person means 36.5
    assert long["alliance_score_between"].tolist() == [-3.5, -3.5, 3.5]
    assert long["cluster"].tolist() == ["c:t1", "c:t1", "c:t2"]
    assert np.allclose(long["log_weeks"], np.log([1.0, 2.0, 1.0]))
    # The lagged alliance: the previous scored session's (none for an episode's first row);
    # its within/between split is over the rows that have one (e1: one row, lag 30).
    assert long["alliance_lag"].tolist()[1] == 30.0 and long["alliance_lag"].isna().tolist() == [
        True,
        False,
        True,
    ]
    assert long["alliance_lag_within"].tolist()[1] == 0.0
    assert long["alliance_lag_between"].tolist()[1] == 0.0  # one person: the grand mean


def _fake_fit(model: str, llf: float, n_variance: int = 4, converged: bool = True, notes=()):
    from pipeline.models.tidy import ModelCard
    from pipeline.models.trajectories import TrajectoryFit

    card = ModelCard(model=model, formula="f", method="m", n_input=10, n_analysed=10)
    card.log_likelihood, card.converged, card.notes = llf, converged, list(notes)
    coefficients = pd.DataFrame({"term": ["Intercept", "time", "x"]})
    return TrajectoryFit(coefficients, pd.DataFrame({"sd": range(n_variance)}), card)


def test_time_shape_chooses_the_lower_aic_by_hand():
    linear = _fake_fit(catalog.TRAJECTORY_CLIENT, -100.0)
    log_time = _fake_fit(catalog.TRAJECTORY_LOG_TIME, -98.5)
    table = analysis.time_shape(linear, log_time).set_index("time")
    # 3 fixed + 4 variance parameters: AIC = 2 × 100 + 14 = 214 and 2 × 98.5 + 14 = 211
    assert table["aic"].tolist() == [214.0, 211.0]
    assert table["chosen"].tolist() == [False, True]


def test_the_model_to_read_is_the_three_level_one_only_when_estimable():
    two = _fake_fit(catalog.TRAJECTORY_CLIENT, -1.0)
    three = _fake_fit(catalog.TRAJECTORY_THERAPIST, -1.0)
    analysis._mark_model_to_read([two, three])
    assert any("to read" in n for n in three.card.notes)
    assert not any("to read" in n for n in two.card.notes)
    two = _fake_fit(catalog.TRAJECTORY_CLIENT, -1.0)
    boundary = ["random-effect variance at the boundary (near zero): ['cluster: intercept']"]
    three = _fake_fit(catalog.TRAJECTORY_THERAPIST, -1.0, notes=boundary)
    analysis._mark_model_to_read([two, three])
    assert any("not estimable" in n for n in two.card.notes)
    assert not any("to read" in n for n in three.card.notes)


@pytest.fixture(scope="module")
def frame(processed_run):
    from pipeline.io import read_interim

    root, _ = processed_run
    tables, _, _ = read_interim(root / "data/interim")
    f = pd.read_parquet(root / "data/processed/features.parquet")
    o = pd.read_parquet(root / "data/processed/outcomes.parquet")
    return analysis.analysis_frame(f, o, tables["episodes"], P)


def test_flags_group_follows_the_flag_count(frame):
    assessed = frame["flags_assessed"] > 0
    expected = np.select([frame["flags_count"] == 0, frame["flags_count"] == 1], ["0", "1"], "2+")
    assert (frame.loc[assessed, "flags_group"] == expected[assessed]).all()
    assert frame.loc[~assessed, "flags_group"].isna().all()


def test_adjusted_and_unadjusted_rest_on_the_same_people(frame):
    r = analysis.poor_outcome_models(frame, P)
    side = r.tables["poor_outcome_side_by_side"]
    assert len(side) >= len(P.blocks) + len(P.flags)
    assert (side["n_analysed_unadjusted"] == side["n_analysed_adjusted"]).all()
    assert (side["status_adjusted"] == "fitted").all()
    # Goals has gaps (no homework set): fewer analysed than in the population, and said so.
    goals = side[side["block"] == "goals"].iloc[0]
    assert goals["n_analysed_adjusted"] < goals["n_input_adjusted"]
    assert goals["n_input_adjusted"] == frame["poor_outcome"].notna().sum()
    assert (side["scale"] == "odds ratio").all()
    full = r.tables["poor_outcome"]
    # Adjusted models carry baseline severity; unadjusted ones do not.
    assert "primary_baseline" in set(full.loc[full["adjusted"], "term"])
    assert "primary_baseline" not in set(full.loc[~full["adjusted"], "term"])
    assert {c.status for c in r.cards} == {"fitted"}
    # Every card says what the robust errors cluster on.
    assert all(any(n.startswith("clusters: therapist_id for") for n in c.notes) for c in r.cards)


def test_an_absent_block_or_a_separated_flag_is_reported_not_raised(frame):
    broken = frame.assign(
        client_contacts_per_week=np.nan,  # no contacts table in this export
        flag_no_client_goal=frame["poor_outcome"],  # perfectly separates the outcome
    )
    r = analysis.poor_outcome_models(broken, P)
    cards = {c.model: c for c in r.cards}
    # the block is fitted on what the export records, and says what it left out
    partial = cards["poor_outcome: communication (adjusted)"]
    assert partial.status == "fitted"
    assert any(
        n == "not in this export, so left out of the block: client_contacts_per_week"
        for n in partial.notes
    )
    terms = set(r.tables["poor_outcome"].query("block == 'communication'")["term"])
    assert "alliance_mean" in terms and "client_contacts_per_week" not in terms
    # nothing of a block recorded (the NHS Talking Therapies data set): not fitted, said so
    none = analysis.poor_outcome_models(
        broken.assign(alliance_mean=np.nan, agenda_client_share=np.nan), P
    )
    absent = {c.model: c for c in none.cards}["poor_outcome: communication (adjusted)"]
    assert absent.status == "not fitted"
    assert absent.notes[0].startswith("not in this export: alliance_mean")
    separated = cards["poor_outcome: flag_no_client_goal (unadjusted)"]
    assert separated.status == "not fitted" and "separates the outcome" in separated.notes[0]
    assert cards["poor_outcome: index (adjusted)"].status == "fitted"
    assert "flag_no_client_goal" not in set(r.tables["poor_outcome"]["block"])


def test_one_therapist_for_everyone_falls_back_to_robust_errors(frame):
    r = analysis.poor_outcome_models(frame.assign(cluster="c:t1"), P)
    card = next(c for c in r.cards if c.model == "poor_outcome: index (adjusted)")
    assert card.status == "fitted" and any("HC1" in n for n in card.notes)


def test_dropout_tables_and_cards(frame):
    r = analysis.dropout_models(frame, P)
    assert set(r.tables) >= {
        "dropout",
        "dropout_km",
        "dropout_at_risk",
        "dropout_cumulative_incidence",
    }
    assert (r.tables["dropout"]["scale"] == "hazard ratio").all()
    km = r.tables["dropout_km"]
    assert ((km["ci_low"] <= km["survival"] + 1e-12) | km["ci_low"].isna()).all()
    assert set(km["group"]) <= set(analysis.FLAGS_GROUPS)
    # Cumulative incidence of dropout never exceeds 1 − KM (competing endings).
    ci = r.tables["dropout_cumulative_incidence"]
    last = ci.groupby("group")["incidence_dropout"].max()
    km_last = 1 - km.groupby("group")["survival"].min()
    assert (last <= km_last + 1e-9).all()


def test_card_slugs_are_file_names():
    assert card_slug("poor_outcome: flags group (adjusted)") == (
        "poor-outcome-flags-group-adjusted"
    )
    assert card_slug("poor_outcome: 2+ flags") == "poor-outcome-2plus-flags"


def test_trajectory_sample_keeps_whole_clusters_and_is_reproducible():
    from pipeline.models.analysis import sample_clusters

    rng = np.random.default_rng(0)
    long = pd.DataFrame(
        {
            "episode_id": np.repeat([f"e{i}" for i in range(300)], 3),
            "cluster": np.repeat([f"t{i % 30}" for i in range(300)], 3),
            "score": rng.normal(size=900),
        }
    )
    same, note = sample_clusters(long, 1000, 1, "max")
    assert note is None and same is long  # small enough: untouched
    sample, note = sample_clusters(long, 100, 1, "max")
    episodes = sample["episode_id"].nunique()
    assert 100 <= episodes < 110  # whole caseloads of 10 until at least 100 episodes
    # Whole clusters, and every score of every sampled episode.
    kept = set(sample["cluster"])
    assert len(sample) == len(long[long["cluster"].isin(kept)]) == 3 * episodes
    assert f"{episodes} of 300 episodes" in note and "10 of 30 clusters" in note
    assert "(max = 100, seed 1)" in note
    again, _ = sample_clusters(long, 100, 1, "max")
    pd.testing.assert_frame_equal(sample, again)
    other, _ = sample_clusters(long, 100, 2, "max")
    assert set(other["cluster"]) != kept


def test_only_the_three_level_model_is_sampled():
    from pathlib import Path

    stored = Path(__file__).resolve().parents[1] / "data" / "inference" / "trajectory.csv"
    long = pd.read_csv(stored).rename(
        columns={"episode": "episode_id", "cluster": analysis.CLUSTER}
    )
    long = long.assign(log_weeks=np.log1p(long["weeks"]), alliance_lag_within=np.nan)
    out = analysis.trajectory_models(
        long, ModelsParams(therapist_level_max_episodes=200, trajectory_sample_seed=3)
    )
    cards = {c.model: c for c in out.cards}
    client, three = cards[catalog.TRAJECTORY_CLIENT], cards[catalog.TRAJECTORY_THERAPIST]
    assert client.n_groups == long["episode_id"].nunique()  # every episode
    assert not any("random sample" in n for n in client.notes)
    assert client.method.startswith("linear mixed model") and three.method.startswith("statsmodels")
    assert any("random sample of whole clusters" in n for n in three.notes)
    assert three.n_analysed < client.n_analysed


def test_baseline_severity_by_hand():
    """Scored at the landmark: two at caseness (one improved), two below (one
    deteriorated); an episode without a later score is not counted."""
    from pipeline.models.analysis import baseline_severity

    frame = pd.DataFrame(
        {
            "in_treatment_at_landmark": [True, True, True, True, True],
            "primary_last_after_landmark": [True, True, True, True, None],
            "primary_n": [3, 2, 2, 2, 1],
            "primary_reliable_change": [1.0, 0.0, -1.0, 0.0, np.nan],
            "primary_case_start": [True, True, False, False, True],
            "primary_baseline": [20.0, 12.0, 4.0, 8.0, 15.0],
            "primary_change": [8.0, 2.0, -6.0, 1.0, np.nan],
            "outcome_population": [True, True, False, False, True],
        }
    )
    t = baseline_severity(frame).set_index("baseline")
    assert t.loc["at caseness", ["episodes", "improved", "deteriorated"]].tolist() == [2, 1, 0]
    assert t.loc["below caseness", ["episodes", "improved", "deteriorated"]].tolist() == [2, 0, 1]
    assert t.loc["at caseness", "mean_baseline"] == 16.0
    assert t.loc["below caseness", "mean_change"] == -2.5
    assert not t.loc["below caseness", "in_outcome_population"]


def test_early_change_sensitivity_of_the_default_plan_on_the_small_cohort(frame):
    table = early_change_sensitivity(frame, P, AnalysisParams())
    assert set(table["role"]) == {"primary", "secondary"}
    assert (table["n_analysed"] > 0).all() and table["e_value"].ge(1).all()
    primary = table[table["role"] == "primary"]
    assert list(primary["term"]) == ["disengagement_index"]


def test_sparse_outcome_levels_are_pooled_and_a_sparse_pool_joins_the_common_level():
    values = pd.Series(["a"] * 20 + ["b"] * 20 + ["c"] * 6 + ["d"] * 4, name="age_band")
    outcome = pd.Series([1, 0] * 10 + [1, 0] * 10 + [0] * 6 + [1, 0, 0, 0], dtype=float)
    out, note = analysis.pool_sparse_outcome_levels(values, outcome, 2)
    # c has no event, d one: both pooled; the pool (1 event, 9 non-events) is still sparse,
    # so it joins a, the most common level.
    assert out.tolist() == ["a"] * 20 + ["b"] * 20 + ["a"] * 10
    # The note counts; it never repeats an input label (cards are shared).
    assert note == (
        "age_band: 2 categories pooled; the pooled level joined the most common category "
        "(fewer than 2 events or non-events)"
    )
    # Enough events and non-events everywhere: nothing changes, no note.
    same, none = analysis.pool_sparse_outcome_levels(values[:40], outcome[:40], 2)
    assert same.equals(values[:40]) and none is None
    # A pool with enough of both stays its own level.
    outcome2 = pd.Series([1, 0] * 10 + [1, 0] * 10 + [1, 1, 0, 0, 0, 0] + [1, 0, 1, 0], dtype=float)
    pooled, _ = analysis.pool_sparse_outcome_levels(values, outcome2, 3)
    assert set(pooled[40:]) == {analysis.POOLED}


def test_log_log_interval_by_hand_stays_inside_zero_one():
    # F = 0.2, se = 0.05: a = 1.96 × 0.05 / (0.2 × |log 0.2|) = 0.30447...
    low, high = analysis.log_log_interval(np.array([0.2, 0.0, 0.01]), np.array([0.05, 0.0, 0.02]))
    a = 1.959964 * 0.05 / (0.2 * abs(np.log(0.2)))
    assert low[0] == pytest.approx(0.2 ** np.exp(a)) and high[0] == pytest.approx(0.2 ** np.exp(-a))
    assert low[0] < 0.2 < high[0]
    assert high[0] - 0.2 > 0.2 - low[0]  # asymmetric, unlike the Wald interval ± 0.098
    assert low[1] == high[1] == 0.0
    # A Wald interval would go below 0 here (0.01 − 1.96 × 0.02 < 0); this one does not.
    assert 0 < low[2] < 0.01 < high[2] < 1


def test_dropout_by_period_enters_at_each_cut_and_censors_at_the_next(frame):
    out = analysis.dropout_by_period(frame, P)
    table = out.tables["dropout_by_period"]
    assert [c.model for c in out.cards] == [
        f"dropout by period: {p}" for p in ("days 0–28", "days 28–84", "days 84+")
    ]
    # A period too small to fit (the small cohort's 84+) has a card but no rows.
    assert set(table["period"]) <= {"days 0–28", "days 28–84", "days 84+"}
    assert {"days 0–28", "days 28–84"} <= set(table["period"])
    pop = frame[frame["in_treatment_at_landmark"] & frame["dropout_time_days"].notna()]
    # Everyone is at risk in the first period; later ones hold those still in treatment.
    assert table["n_analysed"].is_monotonic_decreasing
    # The first period has every row of the main adjusted model (time-0 dropouts included).
    main = analysis.dropout_models(frame, P).cards
    main_n = next(c.n_analysed for c in main if c.model == "dropout: index (adjusted)")
    assert table["n_analysed"].iloc[0] == main_n
    events = pop["dropout_event"].astype(float)
    t = pop["dropout_time_days"]
    assert table["n_events"].iloc[0] <= int((events * (t <= 28)).sum())
    assert all(c.model.startswith("dropout by period") for c in out.cards)
