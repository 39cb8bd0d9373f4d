"""Property: whatever the export looks like, ingest either stops with a clear InputError and
writes nothing, or finishes with every data record accounted for — never a traceback, never
a silent loss."""

import csv
import io
import json
import os

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Params
from pipeline.ingest.accept import ingest_dataset
from pipeline.ingest.read import InputError, read_dataset
from pipeline.stages import ingest as stage

EXAMPLES = int(os.environ.get("INGEST_PROPERTY_EXAMPLES", "2000"))

HEADER = [
    "session_id",
    "episode_id",
    "scheduled_date",
    "status",
    "duration_min",
    "alliance_score",
    "homework_assigned",
]
ROWS = [
    ["s1", "e1", "2024-01-10", "attended", "50", "36.5", "true"],
    ["s2", "e1", "2024-01-17", "did_not_attend", "", "", ""],
    ["s3", "e2", "2024-02-10", "attended", "45", "38", "false"],
]
EPISODES = (
    "episode_id,client_id,referral_date,end_reason\n"
    "e1,c1,2024-01-01,completed\ne2,c2,2024-02-01,still_open\n"
)
EPISODE_HEADER = ["episode_id", "client_id", "referral_date", "end_reason", "planned_sessions"]
EPISODE_ROWS = [
    ["e1", "c1", "2024-01-01", "completed", "8"],
    ["e2", "c2", "2024-02-01", "still_open", ""],
]
MEASURES = "episode_id,measure_date,instrument,score\ne1,2024-01-10,PHQ-9,18\n"

cell_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "NaN",
            "null",
            "1e308",
            "-1e308",
            "inf",
            "-0",
            "9" * 30,
            "2024-13-45",
            "0000-00-00",
            "\u00e9\u00e8",
            "\U0001f600",
            "a,b",
            '"',
            '""',
            "x\ny",
            "  attended  ",
            "DNA",
            "5",
            "TRUE",
            "1.5",
        ]
    ),
)


@st.composite
def mutated_sessions(draw):
    rows = [list(r) for r in ROWS]
    header = list(HEADER)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(
                [
                    "cell",
                    "extra_field",
                    "drop_field",
                    "blank",
                    "dup_row",
                    "dup_header",
                    "drop_column",
                    "many_rows",
                ]
            )
        )
        if kind == "cell" and rows:
            r = draw(st.integers(0, len(rows) - 1))
            c = draw(st.integers(0, len(rows[r]) - 1)) if rows[r] else 0
            if rows[r]:
                rows[r][c] = draw(cell_text)
        elif kind == "extra_field" and rows:
            rows[draw(st.integers(0, len(rows) - 1))].append(draw(cell_text))
        elif kind == "drop_field" and rows:
            r = draw(st.integers(0, len(rows) - 1))
            rows[r] = rows[r][:-1]
        elif kind == "blank":
            rows.insert(draw(st.integers(0, len(rows))), [])
        elif kind == "dup_row" and rows:
            rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
        elif kind == "dup_header":
            header.append(draw(st.sampled_from(HEADER)))
        elif kind == "drop_column" and len(header) > 1:
            i = draw(st.integers(0, len(header) - 1))
            header.pop(i)
            rows = [r[:i] + r[i + 1 :] for r in rows]
        elif kind == "many_rows":
            rows += [
                [f"z{i}", "e2", "2024-02-20", "attended", "40", "30", "true"]
                for i in range(draw(st.integers(1, 30)))
            ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        writer.writerow(r)
    return buf.getvalue()


def _expected_records(text: str) -> int:
    """Data records that carry any value (the independent count of what was read)."""
    records = list(csv.reader(io.StringIO(text, newline="")))[1:]
    return sum(1 for r in records if any(cell != "" for cell in r))


def _write_export(folder, sessions: str):
    folder.mkdir(parents=True)
    (folder / "episodes.csv").write_text(EPISODES, encoding="utf-8")
    (folder / "measures.csv").write_text(MEASURES, encoding="utf-8")
    (folder / "sessions.csv").write_text(sessions, encoding="utf-8")


PARAMS = Params(ingest={"extract_date": "2024-06-30"})
SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(sessions=mutated_sessions())
def test_ingest_never_crashes_and_never_loses_a_row(tmp_path_factory, sessions):
    export = tmp_path_factory.mktemp("prop") / "export"
    _write_export(export, sessions)
    try:
        result = ingest_dataset(read_dataset(export), PARAMS.ingest)
    except InputError as exc:
        assert str(exc)  # a message a person can act on
        return
    counts = result.report["tables"]["sessions"]
    assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_quarantined"]
    assert counts["rows_accepted"] == len(result.tables["sessions"])
    if counts["line_numbers_exact"]:
        assert counts["rows_read"] == _expected_records(sessions)


@settings(max_examples=max(EXAMPLES // 10, 20), **SETTINGS)
@given(sessions=mutated_sessions())
def test_stage_writes_everything_or_nothing(tmp_path_factory, sessions):
    root = tmp_path_factory.mktemp("prop")
    _write_export(root / "export", sessions)
    try:
        stage.run(PARAMS, root / "out", root / "export")
    except InputError:
        assert not (root / "out" / "data" / "interim").exists()
        return
    report = json.loads((root / "out/data/interim/ingest_report.json").read_text())
    assert report["tables"]["sessions"]["reconciled"]


@st.composite
def string_frames(draw):
    """An episodes table as all-text Parquet, with random cells replaced."""
    rows = [list(r) for r in EPISODE_ROWS]
    rows += [
        [f"e{i}", f"c{i}", "2024-03-01", "completed", "6"]
        for i in range(3, 3 + draw(st.integers(0, 10)))
    ]
    for _ in range(draw(st.integers(0, 8))):
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.integers(0, len(EPISODE_HEADER) - 1))
        rows[r][c] = draw(cell_text)
    return pd.DataFrame(rows, columns=EPISODE_HEADER)


@settings(max_examples=max(EXAMPLES // 4, 50), **SETTINGS)
@given(episodes=string_frames(), sessions=mutated_sessions())
def test_parquet_exports_and_broken_parents(tmp_path_factory, episodes, sessions):
    export = tmp_path_factory.mktemp("prop") / "export"
    _write_export(export, sessions)
    (export / "episodes.csv").unlink()
    episodes.to_parquet(export / "episodes.parquet", index=False)
    try:
        result = ingest_dataset(read_dataset(export), PARAMS.ingest)
    except InputError as exc:
        assert str(exc)
        return
    for table, counts in result.report["tables"].items():
        assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_quarantined"]
        assert counts["rows_accepted"] == len(result.tables[table])
    assert result.report["tables"]["episodes"]["rows_read"] == len(episodes)
