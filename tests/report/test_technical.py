"""The technical report's reviewable parts: labelled metrics, the flow of cases, what each
model rests on and the checklist."""

import pandas as pd

from pipeline.config import Params
from pipeline.report.technical import case_flow, checklist, metric_rows, model_basis


def test_metrics_are_labelled_with_their_interval_at_a_sensible_precision():
    rows = {
        r["key"]: r
        for r in metric_rows(
            {
                "primary_estimate": 2.198921,
                "primary_ci_low": 1.834102,
                "primary_ci_high": 2.563739,
                "primary_p_value": 3.322e-32,
                "auc_engagement": 0.77402,
                "auc_engagement_ci_low": 0.755697,
                "auc_engagement_ci_high": 0.79259,
                "hr_index_days_84_plus": 0.705445,
                "rate_dropout": 0.361,
                "n_episodes": 4000,
                "tipping_delta_negative": None,
                "or_index_mi": None,
                "something_new": 0.123456,
            }
        )
    }
    assert rows["primary_estimate"]["value"] == "2.20 (1.83 to 2.56)"
    assert rows["primary_p_value"]["value"] == "3.3e-32"
    assert rows["auc_engagement"]["value"] == "0.774 (0.756 to 0.793)"
    assert rows["hr_index_days_84_plus"]["label"].endswith("from day 84")
    assert rows["rate_dropout"]["value"] == "36.1%" and rows["n_episodes"]["value"] == "4,000"
    assert rows["tipping_delta_negative"]["value"] == "none within the grid"
    assert rows["or_index_mi"]["value"] == "not estimated"
    assert rows["something_new"]["label"] == "Something new"
    assert "primary_ci_low" not in rows  # joined to its value, not a row of its own


def test_the_flow_of_cases_adds_up_as_printed():
    frame = pd.DataFrame(
        {
            "in_treatment_at_landmark": [True] * 83 + [False] * 40,
            "primary_case_start": [True] * 61 + [False] * 12 + [None] * 10 + [True] * 40,
            "poor_outcome": [1.0] * 20 + [0.0] * 31 + [None] * 72,
        }
    )
    report = {"totals": {"rows_read": 1003, "rows_quarantined": 12}}
    flow = case_flow(frame, report, Params())
    shown = [int(s["n"].replace(",", "")) for s in flow]
    assert shown == [1005, 990, 125, 85, 60, 50]  # each count rounded once, to 5
    for before, step, after in zip(shown, flow[1:], shown[1:], strict=False):
        if step["excluded"] is not None:
            assert int(step["excluded"].replace(",", "")) == before - after
    assert flow[2]["excluded"] is None  # records to episodes: a new unit, not an exclusion


def test_events_per_coefficient_come_from_the_shared_rounded_events():
    cards = [
        {"model": "m", "status": "fitted", "n_analysed": "1690", "events": "540",
         "parameters": 18, "reference_levels": {"treatment": "CBT"},
         "units": {"alliance_mean": 2.96863}},
        {"model": "not fitted", "status": "not fitted", "parameters": 3},
    ]  # fmt: skip
    (row,) = model_basis(cards)
    assert row["epv"] == "30" and row["n"] == "1,690"
    assert row["reference"] == "treatment = CBT" and row["units"] == "alliance_mean: 2.97"


def test_every_checklist_item_points_somewhere_or_says_why_not():
    for item in checklist():
        assert item["where"] or item["note"], item
