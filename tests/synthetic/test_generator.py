"""The generator: determinism, contract conformance, planted structure, scale-safe shape."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import SyntheticParams
from pipeline.contract import SCHEMAS
from pipeline.synthetic.generator import generate_cohort


def _frames_equal(a: dict, b: dict) -> bool:
    return all(a[t].equals(b[t]) for t in a)


def test_same_seed_gives_identical_tables_and_truth(small_cohort, small_params):
    again = generate_cohort(small_params)
    assert _frames_equal(small_cohort.tables, again.tables)
    assert small_cohort.truth.equals(again.truth)


def test_different_seed_gives_different_tables(small_cohort, small_params):
    other = generate_cohort(small_params.model_copy(update={"seed": small_params.seed + 1}))
    assert not small_cohort.tables["sessions"].equals(other.tables["sessions"])


def test_clean_tables_conform_to_the_contract(small_cohort):
    for table, model in SCHEMAS.items():
        model.validate(small_cohort.tables[table], lazy=True)


def test_foreign_keys_hold(small_cohort):
    t = small_cohort.tables
    episodes = set(t["episodes"]["episode_id"])
    for table in ("sessions", "measures", "goals", "contacts"):
        assert set(t[table]["episode_id"]) <= episodes, table
    assert set(t["goal_ratings"]["goal_id"]) <= set(t["goals"]["goal_id"])
    assert set(t["measures"]["session_id"].dropna()) <= set(t["sessions"]["session_id"])


def test_no_record_after_the_extract_date_and_none_before_referral(small_cohort, small_params):
    t = small_cohort.tables
    extract = pd.Timestamp(small_params.extract_date)
    assert t["sessions"]["scheduled_date"].max() <= extract
    referral = t["sessions"]["episode_id"].map(
        t["episodes"].set_index("episode_id")["referral_date"]
    )
    assert (t["sessions"]["scheduled_date"] >= referral).all()
    ended = t["episodes"]["end_date"].notna()
    assert (t["episodes"].loc[ended, "end_date"] <= extract).all()
    open_ = t["episodes"]["end_reason"].eq("still_open")
    assert t["episodes"].loc[open_, "end_date"].isna().all()


def test_attended_only_fields(small_cohort):
    s = small_cohort.tables["sessions"]
    not_attended = s["status"] != "attended"
    for col in ("duration_min", "alliance_score", "agenda_set_by", "barrier_reported"):
        assert s.loc[not_attended, col].isna().all(), col
    cancelled = s["status"].str.startswith("cancelled")
    assert s.loc[~cancelled, "notice_hours"].isna().all()
    assert s.loc[cancelled, "notice_hours"].notna().all()


def test_scores_within_instrument_ranges(small_cohort):
    m = small_cohort.tables["measures"]
    ranges = {"PHQ-9": 27, "GAD-7": 21, "WSAS": 40}
    for instrument, top in ranges.items():
        scores = m.loc[m["instrument"] == instrument, "score"]
        assert scores.between(0, top).all() and len(scores) > 0


def test_latent_engagement_drives_attendance_alliance_and_contacts(default_cohort):
    t, truth = default_cohort.tables, default_cohort.truth.set_index("episode_id")
    s = t["sessions"]
    per_ep = pd.DataFrame(
        {
            "dna": (s["status"] == "did_not_attend").groupby(s["episode_id"]).mean(),
            "alliance": s.groupby("episode_id")["alliance_score"].mean(),
        }
    )
    per_ep["engagement"] = truth["latent_engagement"].reindex(per_ep.index)
    assert per_ep["engagement"].corr(per_ep["dna"]) < -0.15
    assert per_ep["engagement"].corr(per_ep["alliance"]) > 0.2
    c = t["contacts"]
    client = c[c["direction"] == "client_to_service"].groupby("episode_id").size()
    rate = client.reindex(truth.index, fill_value=0)
    assert truth["latent_engagement"].corr(rate) > 0.05


def test_dropouts_are_less_engaged_and_therapists_differ(default_cohort):
    ep = default_cohort.tables["episodes"].set_index("episode_id")
    truth = default_cohort.truth.set_index("episode_id")
    dropped = ep["end_reason"] == "dropped_out"
    completed = ep["end_reason"] == "completed"
    e = truth["latent_engagement"]
    assert e[dropped].mean() < e[completed].mean() - 0.3
    assert truth.groupby("therapist_id")["therapist_change"].nunique().eq(1).all()
    assert truth["therapist_change"].std() > 0


def test_truth_file_columns_and_planted_effects(small_cohort, small_params):
    for col in (
        "latent_engagement",
        "latent_alliance",
        "oracle_risk_intake",
        "oracle_risk_landmark",
        "poor_outcome_observed",
        "therapist_change",
        "potential_change_phq9",
    ):
        assert col in small_cohort.truth
    planted = small_cohort.summary["planted_effects"]
    assert planted["alliance_on_change"] == small_params.effects.alliance_on_change
    for col in ("oracle_risk_intake", "oracle_risk_landmark"):
        risk = small_cohort.truth[col].dropna()
        assert risk.between(0, 1).all() and len(risk) > 0


def test_stronger_planted_effect_gives_stronger_observed_association():
    # Observed data, not latents: r(mean session alliance, PHQ-9 improvement).
    from pipeline.synthetic.calibration import calibration_statistics

    base = SyntheticParams(n_episodes=3000, oracle_replicates=0)
    r = {}
    for name, size in (("strong", 5.0), ("none", 0.0)):
        effects = base.effects.model_copy(update={"alliance_on_change": size})
        cohort = generate_cohort(base.model_copy(update={"effects": effects}))
        r[name] = calibration_statistics(cohort.tables, cohort.truth)["alliance_outcome_r"]
    assert r["strong"] > r["none"] + 0.1
    assert r["none"] > 0  # alliance still shares the engagement trait with the other levers


@pytest.mark.parametrize("n", [10, 37])
def test_tiny_cohorts_generate(n):
    cohort = generate_cohort(SyntheticParams(n_episodes=n, oracle_replicates=2))
    assert len(cohort.tables["episodes"]) == n
    assert np.isfinite(cohort.truth["latent_engagement"]).all()


def test_chunked_simulation_keeps_episodes_apart(monkeypatch):
    # Large cohorts are simulated in chunks; records must still point at the right episode.
    import pipeline.synthetic.generator as generator

    monkeypatch.setattr(generator, "CHUNK_EPISODES", 97)
    cohort = generator.generate_cohort(SyntheticParams(n_episodes=400, oracle_replicates=0))
    s = cohort.tables["sessions"]
    first = s.sort_values("scheduled_date").groupby("episode_id")["scheduled_date"].first()
    referral = cohort.tables["episodes"].set_index("episode_id")["referral_date"]
    assert (first >= referral.reindex(first.index)).all()
    per_episode = s.groupby("episode_id").size()
    assert per_episode.max() <= 40  # the slot cap: no episode collects another's records
    assert s["session_id"].is_unique
