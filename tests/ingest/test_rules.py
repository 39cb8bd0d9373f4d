"""One crafted failing input per rule: the rule, the line, and reconciliation."""

import pandas as pd
import pytest

from pipeline.ingest.accept import ingest_dataset
from pipeline.ingest.read import read_dataset


def _set(row, column, value):
    def edit(df):
        df = df.copy()
        df.loc[row, column] = value
        return df

    return edit


def _append(**values):
    def edit(df):
        return pd.concat([df, pd.DataFrame([values])], ignore_index=True)

    return edit


CASES = [
    # (table, edit, expected rule, expected CSV line of the bad row)
    ("sessions", _set(1, "status", "rescheduled"), "unknown_category", 3),
    ("episodes", _set(0, "planned_sessions", "150"), "out_of_range", 2),
    ("episodes", _set(0, "planned_sessions", "6.5"), "not_an_integer", 2),
    ("sessions", _set(0, "alliance_score", "high"), "not_a_number", 2),
    ("sessions", _set(0, "homework_assigned", "maybe"), "not_a_boolean", 2),
    ("sessions", _set(2, "scheduled_date", "2024-02-30"), "unparseable_date", 4),
    ("sessions", _set(2, "scheduled_date", "10/02/2024"), "unparseable_date", 4),
    ("sessions", _set(0, "status", ""), "missing_required", 2),
    ("sessions", _set(2, "session_id", "s1"), "duplicate_id", 4),
    ("sessions", _set(2, "scheduled_date", "2024-07-15"), "future_date", 4),
    ("sessions", _set(2, "status", "0"), "future_date", 4),
    ("sessions", _set(0, "scheduled_date", "2023-11-01"), "scheduled_before_referral", 2),
    ("sessions", _set(1, "duration_min", "50"), "duration_not_attended", 3),
    ("sessions", _set(2, "episode_id", "e9"), "orphan_episode", 4),
    ("episodes", _set(0, "end_date", "2023-12-01"), "end_before_referral", 2),
    ("measures", _set(0, "score", "28"), "score_out_of_range", 2),
    ("measures", _set(2, "score", "-1"), "score_out_of_range", 4),
    ("measures", _set(1, "instrument", "HADS"), "unknown_category", 3),
    ("goals", _set(0, "set_by", "therapist"), "unknown_category", 2),
    ("goal_ratings", _set(1, "rating", "11"), "out_of_range", 3),
    ("goal_ratings", _set(1, "goal_id", "g7"), "orphan_goal", 3),
    (
        "sessions",
        _append(
            session_id="s4",
            episode_id="e2",
            scheduled_date="2024-02-17",
            status="attended",
            duration_min="500",
        ),
        "out_of_range",
        5,
    ),
]


@pytest.mark.parametrize(
    ("table", "edit", "rule", "line"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_rule_quarantines_the_row_with_its_line(make_dataset, params, table, edit, rule, line):
    folder = make_dataset(**{table: edit})
    result = ingest_dataset(read_dataset(folder), params.ingest)
    held = result.quarantine[table]
    hit = held[held["source_line"] == line]
    assert len(hit) == 1, held
    assert rule in hit["rules"].iloc[0].split(";")
    counts = result.report["tables"][table]
    assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_quarantined"]
    assert counts["quarantined_by_rule"][rule] >= 1
    assert hit["source_file"].iloc[0] == f"{table}.csv"


def test_quarantined_episode_takes_its_records_with_it(make_dataset, params):
    folder = make_dataset(episodes=_set(0, "end_reason", "finished??"))
    result = ingest_dataset(read_dataset(folder), params.ingest)
    # e1 is quarantined, so its two sessions and measures become orphans.
    assert set(result.tables["episodes"]["episode_id"]) == {"e2"}
    orphans = result.quarantine["sessions"]
    assert list(orphans["source_line"]) == [2, 3]
    assert (orphans["rules"] == "orphan_episode").all()
    assert set(result.quarantine["goal_ratings"]["rules"]) == {"orphan_goal"}


def test_quarantine_keeps_original_values(make_dataset, params):
    folder = make_dataset(sessions=_set(1, "status", "Rescheduled!"))
    held = ingest_dataset(read_dataset(folder), params.ingest).quarantine["sessions"]
    assert held["status"].iloc[0] == "Rescheduled!"


def test_malformed_and_empty_lines(make_dataset, params):
    folder = make_dataset()
    path = folder / "sessions.csv"
    text = path.read_text().splitlines()
    text.insert(2, "s9,e1,2024-01-12,attended,50,36,true,EXTRA,FIELDS")  # line 3
    text.insert(3, "")  # line 4: blank
    path.write_text("\n".join(text) + "\n")
    result = ingest_dataset(read_dataset(folder), params.ingest)
    held = result.quarantine["sessions"]
    assert list(held["source_line"]) == [3]
    assert held["rules"].iloc[0] == "malformed_row"
    assert "EXTRA" in held["raw_text"].iloc[0]
    counts = result.report["tables"]["sessions"]
    assert (counts["rows_read"], counts["rows_accepted"], counts["rows_quarantined"]) == (4, 3, 1)
    assert counts["empty_lines_skipped"] == 1
    # The rows after the blank line keep their true line numbers.
    assert list(result.tables["sessions"]["session_id"]) == ["s1", "s2", "s3"]


def test_row_breaking_two_rules_is_quarantined_once(make_dataset, params):
    folder = make_dataset(
        sessions=lambda df: df.assign(
            status=["attended", "bogus", "attended"], duration_min=["50", "700", "45"]
        )
    )
    result = ingest_dataset(read_dataset(folder), params.ingest)
    held = result.quarantine["sessions"]
    assert len(held) == 1
    assert held["rules"].iloc[0] == "out_of_range;unknown_category"
    counts = result.report["tables"]["sessions"]
    assert counts["rows_quarantined"] == 1
    assert counts["quarantined_by_rule"] == {"out_of_range": 1, "unknown_category": 1}


def test_extra_columns_are_dropped_and_listed(make_dataset, params):
    folder = make_dataset(sessions=lambda df: df.assign(room="A", clinic_code="X1"))
    result = ingest_dataset(read_dataset(folder), params.ingest)
    assert result.report["tables"]["sessions"]["columns_dropped"] == ["clinic_code", "room"]
    assert "room" not in result.tables["sessions"]


def test_nhs_attendance_codes_and_spellings_are_accepted(make_dataset, params):
    folder = make_dataset(
        sessions=lambda df: df.assign(
            status=["5", "DNA", "Arrived late but seen"], homework_assigned=["Yes", "", "0"]
        )
    )
    result = ingest_dataset(read_dataset(folder), params.ingest)
    assert list(result.tables["sessions"]["status"]) == ["attended", "did_not_attend", "attended"]
    assert list(result.tables["sessions"]["homework_assigned"].astype(object)) == [
        True,
        pd.NA,
        False,
    ]
    assert result.report["tables"]["sessions"]["values_recoded"]["status"] == 3


def test_user_aliases_extend_the_built_in_map(make_dataset):
    from pipeline.config import Params

    p = Params(ingest={"extract_date": "2024-06-30", "aliases": {"status": {"seen": "attended"}}})
    assert p.ingest.aliases["status"]["5"] == "attended"  # built-in kept
    folder = make_dataset(sessions=_set(0, "status", "Seen"))
    result = ingest_dataset(read_dataset(folder), p.ingest)
    assert result.tables["sessions"]["status"].iloc[0] == "attended"


def test_optional_tables_absent_are_reported(make_dataset, params):
    folder = make_dataset(goals=None, goal_ratings=None)
    result = ingest_dataset(read_dataset(folder), params.ingest)
    assert result.report["optional_tables_absent"] == ["goals", "goal_ratings", "contacts"]
