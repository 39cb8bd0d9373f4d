"""Features and outcomes on the synthetic cohort: planted directions, documented columns."""

import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def processed(processed_run):
    root, summary = processed_run
    f = pd.read_parquet(root / "data/processed/features.parquet")
    o = pd.read_parquet(root / "data/processed/outcomes.parquet")
    return f, o, summary


def test_features_follow_the_planted_engagement(processed, small_cohort):
    f, _, _ = processed
    truth = small_cohort.truth.set_index("episode_id")
    f = f.set_index("episode_id")
    e = truth["latent_engagement"].reindex(f.index)
    assert f["attendance_rate"].corr(e) > 0.2
    assert f["alliance_mean"].corr(e) > 0.2
    assert f["disengagement_index"].corr(e) < -0.4
    assert f["flags_count"].astype(float).corr(e) < -0.3


def test_outcomes_agree_with_the_generator(processed, small_cohort):
    _, o, summary = processed
    truth = small_cohort.truth.set_index("episode_id")["poor_outcome_observed"]
    both = o.set_index("episode_id")["poor_outcome"].dropna()
    both = both[truth.reindex(both.index).notna()]
    assert (both == truth.reindex(both.index)).mean() > 0.95
    assert summary["dropout_rule_agreement"]["kappa"] > 0.7


def _documented(page: str) -> set[str]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z0-9_]+)`", text, flags=re.M))


def test_every_column_is_documented(processed):
    f, o, _ = processed
    features_doc, outcomes_doc = _documented("features.md"), _documented("outcomes.md")
    assert set(f.columns) == features_doc  # and nothing documented has gone missing
    for column in o.columns:  # per-instrument columns are documented once, as primary_*
        m = re.match(r"^(phq9|gad7|wsas|bdiii|core10|ors)_(.*)$", column)
        assert (f"primary_{m.group(2)}" if m else column) in outcomes_doc, column


def test_the_columns_the_stage_reads_are_all_the_features_need(processed_run):
    """The features stage reads only FEATURE_INPUTS; from the full tables the features are
    the same (a feature that started using another column would fail here)."""
    from pipeline.config import Params
    from pipeline.features.build import FEATURE_INPUTS, engagement_features
    from pipeline.io import read_interim

    root, _ = processed_run
    full, _, extract = read_interim(root / "data" / "interim")
    p = Params()
    pruned, _, _ = read_interim(root / "data" / "interim", columns=FEATURE_INPUTS)
    expected = engagement_features(full, p.features, "PHQ-9", extract)
    pd.testing.assert_frame_equal(
        engagement_features(pruned, p.features, "PHQ-9", extract), expected
    )
    assert len(pruned["episodes"].columns) < len(full["episodes"].columns)  # it does prune
    assert set(FEATURE_INPUTS) == set(full)
    for table, columns in FEATURE_INPUTS.items():
        assert set(columns) <= set(full[table].columns), table
