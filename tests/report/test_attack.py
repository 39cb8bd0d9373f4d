"""The attacker (pipeline/disclosure_audit.py) on whole runs: nothing comes back from what
the pipeline shares, on the small cohort and on a 300-episode cohort with a tiny site and
a hostile label (the unit tests with leaky tables are in tests/test_disclosure_audit.py)."""

import pandas as pd

from pipeline.disclosure_audit import audit

from .conftest import HOSTILE_LABEL


def _audit(root, params):
    d = params.disclosure
    return audit(root / "reports", d.threshold, d.rounding_base)


def test_the_small_cohorts_shared_outputs_give_nothing_back(reported):
    root, params, _ = reported
    found = _audit(root, params)
    assert not found, "\n".join(map(str, found[:20]))


def test_a_small_cohort_with_a_tiny_site_gives_nothing_back(reported_small_hostile):
    root, params = reported_small_hostile
    found = _audit(root, params)
    assert not found, "\n".join(map(str, found[:20]))


def test_a_hostile_label_is_published_only_whitelisted_and_unscrubbed(reported_small_hostile):
    root, _ = reported_small_hostile
    shared = [p for p in (root / "reports").rglob("*") if p.suffix in (".csv", ".json")]
    assert shared
    texts = {p: p.read_text(encoding="utf-8") for p in shared}
    ingested = pd.read_parquet(root / "data/interim/episodes.parquet", columns=["treatment"])
    assert (ingested["treatment"] == HOSTILE_LABEL).sum() >= 30  # the input did carry it
    assert not [p for p, t in texts.items() if "<script" in t or "alert(<" in t]
    # the label reached the model tables and cards, whitelisted, with its digit intact
    assert any("treatment_web _script_alert(1)_/script_" in t for t in texts.values())
