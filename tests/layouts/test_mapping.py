"""The mapping engine: hand-computed recodes, bands, lookups and joins; a bad mapping file
fails naming its key and writes nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import Params
from pipeline.layouts.mapping import (
    ColumnRule,
    MappingError,
    aggregate_lookup,
    cut_bands,
    join_first,
    load_mapping,
    map_values,
    parse_mapping,
)
from pipeline.stages import ingest as ingest_stage


def test_value_map_compares_codes_as_integers_and_keeps_or_stops_on_the_rest():
    rule = ColumnRule(column="c", values={"1": "in_person", "02": "phone"}, unmapped="keep")
    got = map_values(pd.Series(["01", "2", " 1 ", "7", None, "2.0"]), rule, "k")
    assert got.tolist() == ["in_person", "phone", "in_person", "7", pd.NA, "phone"]
    missing = map_values(pd.Series(["7"]), rule.model_copy(update={"unmapped": "missing"}), "k")
    assert missing.isna().all()
    with pytest.raises(MappingError, match=r"tables\.x\.columns\.y\.values: 1 value\(s\) of c"):
        map_values(
            pd.Series(["1", "7"]),
            rule.model_copy(update={"unmapped": "error"}),
            "tables.x.columns.y",
        )


def test_prefix_map_takes_the_longest_prefix():
    rule = ColumnRule(
        column="c",
        match="prefix",
        unmapped="missing",
        values={"F41": "anxiety", "F41.2": "mixed_anxiety_depression", "F32": "depression"},
    )
    got = map_values(pd.Series(["F41.2", "F41.1", "F329", "Z00"]), rule, "k")
    assert got.tolist() == ["mixed_anxiety_depression", "anxiety", "depression", pd.NA]


def test_bands_cut_numbers_and_keep_text():
    bands = {16.0: "16-17", 18.0: "18-24", 65.0: "65+"}
    got = cut_bands(pd.Series(["15", "16", "17.9", "18", "64", "65", "90", "old", None]), bands)
    assert got.tolist() == [pd.NA, "16-17", "16-17", "18-24", "18-24", "65+", "65+", "old", pd.NA]


def test_lookup_most_frequent_ties_go_to_the_first_in_the_file():
    keys = pd.DataFrame({"P": ["a", "b", "c", "z"]})
    other = pd.DataFrame(
        {"P": ["a", "a", "a", "b", "b", "c", "q"], "T": ["t2", "t1", "t1", "t3", "t4", None, "t9"]}
    )
    got, used = aggregate_lookup(keys, other, {"P": "P"}, "T", "most_frequent")
    assert got.tolist() == ["t1", "t3", pd.NA, pd.NA]
    assert used.tolist() == [True, True, True, True, True, True, False]
    first, _ = aggregate_lookup(keys, other, {"P": "P"}, "T", "first")
    assert first.tolist() == ["t2", "t3", pd.NA, pd.NA]


def test_join_takes_the_first_matching_row_and_leaves_orphans_missing():
    left = pd.DataFrame({"A": ["x1", "x2", "x9"]})
    other = pd.DataFrame({"A": ["x2", "x1", "x2"], "D": ["d2", "d1", "d2b"]})
    got, used = join_first(left, other, {"A": "A"}, "o")
    assert got["o.D"].tolist() == ["d1", "d2", pd.NA]
    assert used.tolist() == [True, True, False]


MINIMAL = {
    "name": "mine",
    "sources": {"visits": {"file": "visits"}, "people": {"file": "people"}},
    "tables": {
        "episodes": {
            "from": "people",
            "columns": {"episode_id": "pid", "client_id": "pid", "referral_date": "start"},
        },
        "sessions": {
            "from": "visits",
            "columns": {
                "session_id": "vid",
                "episode_id": "pid",
                "scheduled_date": "day",
                "status": {
                    "column": "outcome",
                    "values": {"seen": "attended", "dna": "did_not_attend"},
                },
            },
        },
        "measures": {
            "from": "visits",
            "columns": {
                "episode_id": "pid",
                "measure_date": "day",
                "instrument": {"column": "tool", "values": {"ORS": "ORS"}},
                "score": "ors",
            },
        },
    },
}


def _with(path: list, value) -> dict:
    import copy

    out = copy.deepcopy(MINIMAL)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((["tables", "clients"], {"from": "people", "columns": {}}), "tables.clients: not a table"),
        (
            (["tables", "sessions", "columns", "mood"], "m"),
            "tables.sessions.columns.mood: 'mood' is not a column",
        ),
        (
            (["tables", "sessions", "from"], "appointments"),
            "tables.sessions.from: unknown source table 'appointments'",
        ),
        (
            (["tables", "sessions", "columns", "status", "values", "seen"], "came"),
            "tables.sessions.columns.status: 'came' is not an allowed value",
        ),
        (
            (["tables", "measures", "columns"], {"episode_id": "pid"}),
            "required column 'measure_date' is not mapped",
        ),
    ],
)
def test_a_bad_mapping_names_the_key(change, message):
    with pytest.raises(MappingError) as err:
        parse_mapping(_with(*change), "mine.yaml")
    assert message in str(err.value)


def _export(folder, outcomes=("seen", "dna")):
    folder.mkdir()
    (folder / "people.csv").write_text("pid,start\np1,2024-01-01\np2,2024-01-05\n")
    rows = [f"v{i},p1,2024-01-{10 + i},{o},ORS,{20 + i}" for i, o in enumerate(outcomes)]
    (folder / "visits.csv").write_text("vid,pid,day,outcome,tool,ors\n" + "\n".join(rows) + "\n")
    return folder


def _run(tmp_path, mapping: dict, outcomes=("seen", "dna")):
    import yaml

    folder = _export(tmp_path / "export", outcomes)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mapping))
    params = Params(ingest={"mapping": str(path)})
    return ingest_stage.run(params, tmp_path / "out", folder), tmp_path / "out"


def test_a_user_mapping_ingests_with_source_lines(tmp_path):
    summary, out = _run(tmp_path, MINIMAL, ("seen", "dna", "seen"))
    assert summary["totals"]["rows_quarantined"] == 0
    sessions = pd.read_parquet(out / "data/interim/sessions.parquet")
    assert sessions["status"].tolist() == ["attended", "did_not_attend", "attended"]
    report = pd.read_json(out / "data/interim/ingest_report.json", typ="series")
    assert report["export"]["layout"] == "mapping" and report["export"]["mapping"] == "mine.yaml"


def test_an_unmapped_value_stops_the_run_naming_the_key_and_writes_nothing(tmp_path):
    with pytest.raises(MappingError) as err:
        _run(tmp_path, MINIMAL, ("seen", "cancelled"))
    assert "tables.sessions.columns.status.values" in str(err.value)
    assert "'cancelled'" in str(err.value)
    assert not (tmp_path / "out" / "data" / "interim").exists()


def test_an_unknown_source_column_stops_the_run_naming_it(tmp_path):
    bad = _with(["tables", "sessions", "columns", "duration_min"], "minutes")
    with pytest.raises(MappingError) as err:
        _run(tmp_path, bad)
    assert "visits.csv: column minutes not found; its columns are day, ors" in str(err.value)
    assert "tables.sessions.columns.duration_min" in str(err.value)
    assert not (tmp_path / "out" / "data" / "interim").exists()


def test_the_example_mappings_in_docs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    examples = [
        p for p in sorted((root / "docs").glob("mappings/*.yaml")) if "params" not in p.name
    ]
    assert examples, "docs/mappings/ should hold the worked example"
    for path in examples:
        load_mapping(path)


def test_the_pcoms_worked_example_runs_end_to_end(tmp_path):
    """docs/layouts.md's commands, as a new user runs them: a handful of clients, so the
    models say they cannot be fitted, and nothing crashes."""
    from pathlib import Path

    from typer.testing import CliRunner

    from pipeline.cli import app

    docs = Path(__file__).resolve().parents[2] / "docs" / "mappings"
    common = ["--input", str(docs / "pcoms_example"), "--mapping", str(docs / "pcoms.yaml")]
    runner = CliRunner()
    ors = runner.invoke(
        app,
        ["run", *common, "--params", str(docs / "pcoms_params.yaml"), "--out", str(tmp_path / "a")],
    )
    assert ors.exit_code == 0, ors.output
    clinician = (tmp_path / "a/reports/clinician.html").read_text()
    technical = (tmp_path / "a/reports/technical.html").read_text()
    assert "synthetic" not in (clinician + technical).lower()
    assert "This export does not record" in clinician
    # with the default primary instrument (PHQ-9), which this export does not have: said so
    phq = runner.invoke(
        app, ["run", *common, "--params", "/none.yaml", "--out", str(tmp_path / "b")]
    )
    assert phq.exit_code == 0, phq.output
    assert "no PHQ-9 score in this export" in " ".join(phq.output.split())
    assert "set outcomes.primary_instrument to one it has (ORS)" in " ".join(phq.output.split())


def test_a_misspelt_column_of_a_joined_table_names_that_table(tmp_path):
    bad = _with(["tables", "sessions", "join"], [{"source": "people", "key": {"pid": "pid"}}])
    bad["tables"]["sessions"]["columns"]["duration_min"] = "people.stat"
    with pytest.raises(MappingError) as err:
        _run(tmp_path, bad)
    assert "people.csv: column stat not found; its columns are pid, start" in str(err.value)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"column": "start", "default": "2024-01-01", "default_if_empty": "Nope"},
            "people.csv: column Nope not found "
            "(tables.episodes.columns.referral_date.default_if_empty",
        ),
        (
            {"column": "day", "from": "visits", "key": {"pidX": "pid"}, "pick": "first"},
            "people.csv: look-up key column pidX not found "
            "(tables.episodes.columns.referral_date.key",
        ),
    ],
)
def test_a_missing_default_or_lookup_key_column_is_named(tmp_path, rule, message):
    bad = _with(["tables", "episodes", "columns", "referral_date"], rule)
    with pytest.raises(MappingError) as err:
        _run(tmp_path, bad)
    assert message in str(err.value)


def test_synthesize_in_another_layout_needs_its_own_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["synthesize", "--layout", "nhstt", "--params", "/none"])
    assert result.exit_code == 1 and "needs --out DIR" in " ".join(result.output.split())
    assert not (tmp_path / "data").exists()
