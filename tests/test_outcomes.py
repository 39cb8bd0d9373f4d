"""Outcome rules on worked examples (NHS Talking Therapies definitions)."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import OutcomesParams
from pipeline.features.window import build_window
from pipeline.outcomes import dropout_rule_agreement, inferred_dropout, outcome_table

EXTRACT = pd.Timestamp("2024-12-31")


def _dates(df, *cols):
    for c in cols:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[s]")
    return df


def _tables():
    episodes = _dates(
        pd.DataFrame(
            {
                "episode_id": ["imp", "det", "rec", "few", "drop", "ors"],
                "referral_date": ["2024-01-01"] * 6,
                "end_date": [
                    "2024-05-01",
                    "2024-05-01",
                    "2024-05-01",
                    "2024-05-01",
                    "2024-03-20",
                    None,
                ],
                "end_reason": ["completed", "completed", "completed", "completed", None, None],
            }
        ),
        "referral_date",
        "end_date",
    )
    sessions = []
    for ep in episodes["episode_id"]:
        for week, status in enumerate(["attended", "attended", "attended", "attended"]):
            sessions.append(
                (
                    ep,
                    f"{ep}{week}",
                    pd.Timestamp("2024-01-10") + pd.Timedelta(weeks=2 * week),
                    status,
                )
            )
    sessions.append(("drop", "drop9", pd.Timestamp("2024-03-10"), "did_not_attend"))
    sessions = pd.DataFrame(
        sessions, columns=["episode_id", "session_id", "scheduled_date", "status"]
    )
    sessions = sessions[~((sessions["episode_id"] == "few") & (sessions["session_id"] != "few0"))]
    measures = _dates(
        pd.DataFrame(
            [
                # reliable improvement, not recovered (still ≥ 10 at the end)
                ("imp", "2024-01-10", "PHQ-9", 20),
                ("imp", "2024-03-01", "PHQ-9", 14),
                # reliable deterioration: 8 -> 14
                ("det", "2024-01-10", "PHQ-9", 8),
                ("det", "2024-03-01", "PHQ-9", 14),
                # reliable recovery: 15 -> 9
                ("rec", "2024-01-10", "PHQ-9", 15),
                ("rec", "2024-03-01", "PHQ-9", 9),
                # one score only: no change can be measured
                ("few", "2024-01-10", "PHQ-9", 15),
                # baseline more than 14 days after the first attended session is not a baseline
                ("drop", "2024-02-20", "PHQ-9", 20),
                ("drop", "2024-03-01", "PHQ-9", 12),
                # ORS: higher is better; 20 -> 26 is a reliable improvement and a recovery (< 25)
                ("ors", "2024-01-10", "ORS", 20),
                ("ors", "2024-03-01", "ORS", 26),
            ],
            columns=["episode_id", "measure_date", "instrument", "score"],
        ),
        "measure_date",
    )
    return {"episodes": episodes, "sessions": sessions, "measures": measures}


@pytest.fixture
def table():
    t = _tables()
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    return outcome_table(t, window, OutcomesParams(), EXTRACT).set_index("episode_id")


def test_reliable_change_recovery_and_poor_outcome(table):
    assert table.loc["imp", "primary_reliable_change"] == 1
    assert not table.loc["imp", "primary_recovered"]
    assert table.loc["imp", "poor_outcome"] == 0
    assert table.loc["det", "primary_reliable_change"] == -1
    # det starts at PHQ-9 8, below caseness: outside the outcome's population (NHS TT)
    assert not table.loc["det", "outcome_population"]
    assert np.isnan(table.loc["det", "poor_outcome"])
    assert pd.isna(table.loc["det", "primary_recovered"])  # not at caseness at the start
    assert table.loc["rec", "primary_reliable_recovery"]
    assert table.loc["rec", "primary_change"] == 6
    assert np.isnan(table.loc["few", "poor_outcome"])  # fewer than two scores


def test_baseline_window_around_the_first_attended_session(table):
    # drop's first score is 41 days after its first attended session: no baseline.
    assert np.isnan(table.loc["drop", "phq9_baseline"])
    assert np.isnan(table.loc["drop", "poor_outcome"])


def test_higher_is_better_instrument(table):
    assert table.loc["ors", "ors_change"] == 6
    assert table.loc["ors", "ors_reliable_change"] == 1
    assert table.loc["ors", "ors_recovered"]


def test_finished_course_dropout_and_time_to_dropout(table):
    assert table.loc["imp", "finished_course"] and not table.loc["few", "finished_course"]
    assert table.loc["drop", "dropout"] and table.loc["drop", "dropout_source"] == "inferred"
    assert not table.loc["imp", "dropout"] and table.loc["imp", "dropout_source"] == "recorded"
    # drop: window 2024-01-10 .. 2024-02-21; ended 2024-03-20 -> 28 days after the landmark
    assert table.loc["drop", "dropout_time_days"] == 28
    assert table.loc["drop", "dropout_event"]
    assert table.loc["ors", "dropout_time_days"] == (EXTRACT - pd.Timestamp("2024-02-21")).days
    assert not table.loc["ors", "dropout_event"]  # still open: censored at the extract


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("reliable_deterioration", {"imp": 0.0, "det": 1.0, "rec": 0.0}),
        ("not_recovered", {"imp": 1.0, "rec": 0.0}),
    ],
)
def test_poor_outcome_definition_is_a_param(definition, expected):
    t = _tables()
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    out = outcome_table(t, window, OutcomesParams(poor_outcome=definition), EXTRACT)
    got = out.set_index("episode_id")["poor_outcome"].dropna().to_dict()
    assert got == expected


def test_deterioration_counts_as_poor_when_every_client_is_scored():
    """population: all (a sensitivity analysis) scores det, who starts below caseness."""
    t = _tables()
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    out = outcome_table(t, window, OutcomesParams(population="all"), EXTRACT)
    got = out.set_index("episode_id")["poor_outcome"].dropna().to_dict()
    assert got == {"imp": 0.0, "det": 1.0, "rec": 0.0}


@pytest.mark.parametrize("start", [0, 3, 5, 9])
@pytest.mark.parametrize("definition", ["not_reliably_improved", "not_recovered"])
def test_a_client_below_caseness_is_never_in_the_poor_outcome_population(start, definition):
    """Whatever happens next (improvement, no change, deterioration), a client who starts
    below PHQ-9 10 has no improvement or recovery outcome to be poor on."""
    t = _tables()
    m = t["measures"]
    for end in (0, start, 27):
        m.loc[(m["episode_id"] == "imp") & (m["instrument"] == "PHQ-9"), "score"] = [start, end]
        window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
        params = OutcomesParams(poor_outcome=definition)
        out = outcome_table(t, window, params, EXTRACT).set_index("episode_id")
        assert not out.loc["imp", "outcome_population"]
        assert np.isnan(out.loc["imp", "poor_outcome_episode"])
        assert np.isnan(out.loc["imp", "poor_outcome"])


def test_dropout_rule_and_its_agreement():
    t = _tables()
    inferred = inferred_dropout(t["sessions"], t["episodes"])
    assert inferred.to_dict() == {
        "imp": False,
        "det": False,
        "rec": False,
        "few": False,
        "drop": True,
        "ors": False,
    }
    agreement = dropout_rule_agreement(t)
    assert agreement["n"] == 4 and agreement["true_negative"] == 4


def test_paired_nhs_definitions():
    t = _tables()
    gad = pd.DataFrame(
        [
            ("imp", "2024-01-10", "GAD-7", 12),
            ("imp", "2024-03-01", "GAD-7", 10),  # no RC
            ("det", "2024-01-10", "GAD-7", 6),
            ("det", "2024-03-01", "GAD-7", 6),
            ("rec", "2024-01-10", "GAD-7", 12),
            ("rec", "2024-03-01", "GAD-7", 7),  # improved
        ],
        columns=["episode_id", "measure_date", "instrument", "score"],
    )
    t["measures"] = pd.concat([t["measures"], _dates(gad, "measure_date")], ignore_index=True)
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    out = outcome_table(t, window, OutcomesParams(), EXTRACT).set_index("episode_id")
    assert out.loc["imp", "nhs_reliable_improvement"]  # PHQ-9 improved, GAD-7 stable
    assert not out.loc["imp", "nhs_recovery"]  # PHQ-9 still ≥ 10 at the end
    assert out.loc["det", "nhs_reliable_deterioration"]
    assert not out.loc["det", "nhs_reliable_improvement"]
    assert out.loc["rec", "nhs_reliable_recovery"]  # below both cut-offs, reliably improved
    assert pd.isna(out.loc["few", "nhs_reliable_improvement"])


def test_no_gad7_means_paired_definitions_are_missing(table):
    assert table["nhs_reliable_improvement"].isna().all()


def test_baseline_is_never_also_the_last_score():
    t = _tables()
    t["measures"] = _dates(
        pd.DataFrame(
            [("imp", "2023-11-01", "PHQ-9", 20), ("imp", "2024-01-10", "PHQ-9", 18)],
            columns=["episode_id", "measure_date", "instrument", "score"],
        ),
        "measure_date",
    )
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    out = outcome_table(t, window, OutcomesParams(), EXTRACT).set_index("episode_id")
    assert out.loc["imp", "primary_baseline"] == 18 and np.isnan(out.loc["imp", "primary_last"])
    assert np.isnan(out.loc["imp", "poor_outcome_episode"])


def test_landmark_outcome_needs_a_score_after_the_landmark_and_a_complete_window():
    t = _tables()
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    out = outcome_table(t, window, OutcomesParams(), EXTRACT).set_index("episode_id")
    assert out.loc["imp", "poor_outcome"] == 0  # last score 03-01, after the 02-21 landmark
    t2 = _tables()
    t2["measures"].loc[
        t2["measures"]["episode_id"].eq("imp") & t2["measures"]["score"].eq(14), "measure_date"
    ] = pd.Timestamp("2024-02-01")
    out2 = outcome_table(t2, window, OutcomesParams(), EXTRACT).set_index("episode_id")
    assert np.isnan(out2.loc["imp", "poor_outcome"])  # measured inside the window
    assert out2.loc["imp", "poor_outcome_episode"] == 0
    early = pd.Timestamp("2024-02-01")  # extract before the landmark: window incomplete
    out3 = outcome_table(
        t, build_window(t["episodes"], t["sessions"], 42, early), OutcomesParams(), early
    ).set_index("episode_id")
    assert not out3["in_treatment_at_landmark"].any()
    assert out3["dropout_time_days"].isna().all()


def test_end_date_column_may_be_absent():
    t = _tables()
    t["episodes"] = t["episodes"].drop(columns=["end_date"])
    window = build_window(t["episodes"], t["sessions"], 42, EXTRACT)
    out = outcome_table(t, window, OutcomesParams(), EXTRACT).set_index("episode_id")
    assert not out["dropout_event"].fillna(False).astype(bool).any()  # nothing has ended
