"""The attacker (pipeline/disclosure_audit.py) on whole runs: nothing comes back from what
the pipeline shares, on the small cohort and on a 300-episode cohort with a tiny site and
a hostile label (the unit tests with leaky tables are in tests/test_disclosure_audit.py)."""

import json
from pathlib import Path

import numpy as np
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


# ACRO (the SACRO output checker) on the same cohort, run once outside this environment
# (acro 1.0.2 needs pandas <= 2.3.3; this project is on pandas 3): every cell whose count
# ACRO's threshold check fails, from benchmarks/acro_crosscheck.py. ACRO suppresses such a
# cell; the project must not show it either — suppressed if it is a published count, its
# share withheld if it is the complement of one.
ACRO = json.loads((Path(__file__).parent / "data/acro_small_cohort.json").read_text("utf-8"))
COLUMNS = {  # shared file → (its count column, the share beside it)
    "tables/models/dose_response_observed.csv": ("improved", "share_improved"),
    "tables/prediction/prediction_calibration.csv": ("events", "observed"),
}


def test_every_cell_acro_fails_is_hidden_in_the_shared_tables(reported):
    root, params, _ = reported
    assert ACRO["threshold"] == params.disclosure.threshold
    cells = ACRO["cells_acro_fails"]
    assert cells and {c["file"] for c in cells} == set(COLUMNS)
    shown = []
    for cell in cells:
        table = pd.read_csv(root / "reports" / cell["file"], dtype=str, keep_default_na=False)
        row = table[np.logical_and.reduce([table[k] == str(v) for k, v in cell["key"].items()])]
        assert len(row) == 1, cell
        count, share = COLUMNS[cell["file"]]
        hidden = (
            row[count].iloc[0] == f"<{params.disclosure.threshold}"
            if cell["cell"] == "count"
            else row[share].iloc[0] == "withheld"
        )
        if not hidden:
            shown.append(cell)
    assert not shown, shown
