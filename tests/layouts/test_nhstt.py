"""The NHS Talking Therapies layout: the same cohort written as contract tables and as the
data set's IDS tables gives the same accepted sessions, attendance features and outcomes
for everything the data set carries, and quarantines the same planted bad rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Params
from pipeline.features.attendance import ATTENDANCE_COLUMNS
from pipeline.ingest.identifiers import suspicious_column_name
from pipeline.ingest.read import InputError
from pipeline.io import write_table
from pipeline.layouts.export import BUILT_IN, detect_layout
from pipeline.layouts.mapping import load_mapping
from pipeline.layouts.nhstt_writer import to_nhstt
from pipeline.stages import features, ingest, outcomes
from pipeline.synthetic.messy import make_export

NHSTT_SESSION_COLUMNS = [
    "session_id",
    "episode_id",
    "scheduled_date",
    "status",
    "modality",
    "duration_min",
]
NOT_IN_NHSTT = {"late_cancel_rate"}  # needs notice_hours, which the data set lacks


@pytest.fixture(scope="module")
def both_layouts(small_cohort, small_params, tmp_path_factory):
    """(contract root, nhstt root, messy manifest) after ingest, features and outcomes."""
    export, manifest = make_export(
        small_cohort.tables, small_params.extract_date, 0.01, 0.02, np.random.default_rng(11)
    )
    base = tmp_path_factory.mktemp("layouts")
    roots = {}
    for layout, tables in (
        ("contract", export),
        ("nhstt", to_nhstt(export, load_mapping(BUILT_IN["nhstt"]))),
    ):
        folder = base / f"export_{layout}"
        folder.mkdir()
        # the NHS tables with an SDE-style prefix and mixed case: still detected
        for name, df in tables.items():
            stem = name if layout == "contract" else f"sde_{name.lower()}"
            write_table(df, folder / f"{stem}.csv", "csv")
        params = Params(ingest={"extract_date": small_params.extract_date})
        root = base / f"run_{layout}"
        ingest.run(params, root, folder)
        features.run(params, root)
        outcomes.run(params, root)
        roots[layout] = root
    return roots["contract"], roots["nhstt"], manifest, export


def _read(root, path):
    return pd.read_parquet(root / "data" / path)


def _contract_only_mess(manifest: pd.DataFrame, export: dict) -> set[str]:
    """Episodes touched by rows planted in fields the data set lacks (an out-of-range
    planned-sessions count; an attended session with an out-of-range alliance rating):
    quarantined in the contract layout only, so these episodes rightly differ."""
    planned = manifest.loc[manifest["kind"] == "planned_sessions_out_of_range", "key"]
    alliance = manifest.loc[manifest["kind"] == "alliance_out_of_range", "key"]
    sessions = export["sessions"]
    touched = sessions.loc[sessions["session_id"].isin(alliance), "episode_id"]
    return set(planned) | set(touched)


def _comparable(df: pd.DataFrame, skip: set[str]) -> pd.DataFrame:
    return df[~df["episode_id"].isin(skip)].sort_values("episode_id").reset_index(drop=True)


def test_the_layout_is_detected_from_the_file_names(both_layouts):
    contract, nhstt, *_ = both_layouts
    assert detect_layout(contract.parent / "export_contract") == "contract"
    assert detect_layout(nhstt.parent / "export_nhstt") == "nhstt"


def test_same_accepted_sessions(both_layouts):
    contract, nhstt, manifest, _ = both_layouts
    a = _read(contract, "interim/sessions.parquet")[NHSTT_SESSION_COLUMNS]
    b = _read(nhstt, "interim/sessions.parquet")[NHSTT_SESSION_COLUMNS]
    # rows planted with an out-of-range alliance rating break a rule only the contract
    # layout can check (the data set has no alliance field): accepted there, and only there
    alliance = manifest.loc[manifest["kind"] == "alliance_out_of_range", "key"]
    assert len(alliance) and set(b["session_id"]) - set(a["session_id"]) == set(alliance)
    b = b[~b["session_id"].isin(alliance)]
    a, b = (x.sort_values("session_id").reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_same_attendance_features(both_layouts):
    contract, nhstt, manifest, export = both_layouts
    skip = _contract_only_mess(manifest, export)
    cols = ["episode_id", *[c for c in ATTENDANCE_COLUMNS if c not in NOT_IN_NHSTT]]
    a = _comparable(_read(contract, "processed/features.parquet")[cols], skip)
    b = _comparable(_read(nhstt, "processed/features.parquet")[cols], skip)
    assert len(a) > 550
    pd.testing.assert_frame_equal(a, b)
    assert _read(nhstt, "processed/features.parquet")["late_cancel_rate"].isna().all()


def test_blocks_the_data_set_does_not_carry_are_missing_not_zero(both_layouts):
    _, nhstt, *_ = both_layouts
    f = _read(nhstt, "processed/features.parquet")
    for col in (
        "alliance_mean",
        "agenda_client_share",
        "homework_completion_rate",
        "goal_owned_share",
        "client_contacts_per_week",
        "barrier_share",
    ):
        assert f[col].isna().all(), col
    report = pd.read_json(nhstt / "data/interim/ingest_report.json", typ="series")
    assert "alliance_score" in report["columns_absent"]["sessions"]
    assert set(report["optional_tables_absent"]) == {"goals", "goal_ratings", "contacts"}


def test_same_outcomes_for_the_instruments_the_data_set_carries(both_layouts):
    contract, nhstt, manifest, export = both_layouts
    skip = _contract_only_mess(manifest, export)
    a = _comparable(_read(contract, "processed/outcomes.parquet"), skip)
    b = _comparable(_read(nhstt, "processed/outcomes.parquet"), skip)
    cols = [c for c in a.columns if "wsas" not in c.lower()]
    assert "poor_outcome" in cols and "dropout" in cols and "primary_baseline" in cols
    assert a["poor_outcome"].notna().sum() > 100
    pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False)


def _rules(root, table):
    held = _read(root, f"interim/quarantine/{table}.parquet")
    return held


def test_same_planted_bad_rows_are_quarantined(both_layouts):
    contract, nhstt, manifest, _ = both_layouts
    for table, key in (("episodes", "episode_id"), ("sessions", "session_id")):
        carried = manifest[(manifest["table"] == table) & (manifest["kind"] != "alias")]
        # planted in columns the data set has no field for: accepted in the NHS layout
        skip = {"planned_sessions_out_of_range", "alliance_out_of_range"}
        a = _rules(contract, table)
        b = _rules(nhstt, table)
        a_keys = a.loc[~a[key].isin(carried.loc[carried["kind"].isin(skip), "key"]), key]
        assert sorted(a_keys.astype(str)) == sorted(b[key].astype(str)), table
        assert sorted(a.loc[a[key].isin(b[key]), "rules"]) == sorted(b["rules"]), table
    a, b = _rules(contract, "measures"), _rules(nhstt, "measures")
    a = a[a["instrument"].str.strip() != "WSAS"]  # WSAS totals are not in the data set
    assert a["rules"].value_counts().to_dict() == b["rules"].value_counts().to_dict()
    assert len(b) > 0
    assert set(b["source_file"]) == {"sde_ids607codedscoreassessmentact.csv"}


def test_reconciliation_per_source_table(both_layouts):
    _, nhstt, *_ = both_layouts
    report = pd.read_json(nhstt / "data/interim/ingest_report.json", typ="series")
    for table in ("episodes", "sessions", "measures"):
        counts = report["tables"][table]
        for source, c in counts["sources"].items():
            assert c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"], source
        assert sum(c["rows_read"] for c in counts["sources"].values()) == counts["rows_read"]
    lookups = report["source_tables"]
    activity = lookups["sde_ids202careactivity.csv"]
    assert activity["rows_read"] == activity["rows_used"] + activity["rows_not_used"]
    assert activity["rows_not_used"] > 0  # care activities of orphan contacts


def test_identifier_columns_of_the_data_set_are_refused(both_layouts, tmp_path):
    for name in ("NHSNumber", "PersonBirthDate", "Postcode", "LocalPatientId"):
        assert suspicious_column_name(name), name
    _, nhstt, *_ = both_layouts
    folder = tmp_path / "with_mpi"
    folder.mkdir()
    for path in (nhstt.parent / "export_nhstt").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    mpi = folder / "sde_ids001mpi.csv"
    df = pd.read_csv(mpi, dtype=str)
    df["LocalPatientId"] = "LP" + df.index.astype(str)
    df.to_csv(mpi, index=False)
    with pytest.raises(InputError, match=r"LocalPatientId.*direct identifier"):
        ingest.run(Params(), tmp_path / "out", folder)
    assert not (tmp_path / "out" / "data" / "interim").exists()


def test_a_missing_required_nhs_table_is_named(tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "IDS101Referral.csv").write_text("PathwayID,Person_ID\n")
    with pytest.raises(InputError, match="IDS201CareContact"):
        ingest.run(Params(), tmp_path / "out", folder)


def test_detection_ignores_case_prefix_and_format(tmp_path):
    for name in ("NHSE_IDS101REFERRAL.parquet", "nhse_ids201carecontact.PARQUET", "x.txt"):
        (tmp_path / name).write_bytes(b"")
    assert detect_layout(tmp_path) == "nhstt"
    (tmp_path / "episodes.csv").write_text("episode_id\n")
    with pytest.raises(InputError, match="both contract tables and nhstt tables"):
        detect_layout(tmp_path)


def test_an_nhs_export_read_as_the_contract_layout_says_what_is_missing(both_layouts):
    _, nhstt, *_ = both_layouts
    with pytest.raises(InputError, match=r"required table file\(s\) missing: episodes\.csv"):
        ingest.run(
            Params(ingest={"layout": "contract"}), nhstt / "again", nhstt.parent / "export_nhstt"
        )


def _copy_export(both_layouts, target):
    _, nhstt, *_ = both_layouts
    target.mkdir()
    for path in (nhstt.parent / "export_nhstt").iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_numeric_codes_in_parquet_read_as_the_same_codes(both_layouts, tmp_path):
    """An SDE extract in Parquet holds codes as numbers (floats where a column has gaps):
    5.0 is attended, as "5" and "05" are."""
    _, nhstt, *_ = both_layouts
    folder = tmp_path / "parquet"
    folder.mkdir()
    for path in (nhstt.parent / "export_nhstt").glob("*.csv"):
        df = pd.read_csv(path, dtype=str)
        for col in ("AttendOrDNACode", "EndCode", "CodedAssToolType", "ConsMechanism"):
            if col in df:
                df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        df.to_parquet(folder / f"{path.stem}.parquet", index=False)
    params = Params(ingest={"extract_date": "2025-03-31"})
    ingest.run(params, tmp_path / "p", folder)
    a = _read(nhstt, "interim/sessions.parquet")
    b = _read(tmp_path / "p", "interim/sessions.parquet")
    # the same sessions with the same statuses (planted text codes, missing once made
    # numbers, are quarantined as missing_required instead of unknown_category)
    assert set(b["session_id"]) == set(a["session_id"])
    pd.testing.assert_series_equal(
        a.set_index("session_id")["status"].sort_index(),
        b.set_index("session_id")["status"].sort_index(),
    )


def test_optional_score_table_absent_and_header_only_tables(both_layouts, tmp_path):
    folder = _copy_export(both_layouts, tmp_path / "no607")
    (folder / "sde_ids607codedscoreassessmentact.csv").unlink()
    # measures then come from IDS606 alone, which in this cohort has only its header
    with pytest.raises(InputError, match=r"ids606.*header but no rows"):
        ingest.run(Params(ingest={"extract_date": "2025-03-31"}), tmp_path / "o1", folder)
    (folder / "sde_ids606codedscoreassessmentrefer.csv").unlink()
    with pytest.raises(InputError, match="IDS607CodedScoreAssessmentAct or IDS606"):
        ingest.run(Params(), tmp_path / "o2", folder)
    header_only = _copy_export(both_layouts, tmp_path / "empty202")
    path = header_only / "sde_ids202careactivity.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    # no care activity: no score can be dated, so none is usable, and the run says why
    with pytest.raises(InputError, match=r"none of its .* meets the contract.*measure_date"):
        ingest.run(Params(ingest={"extract_date": "2025-03-31"}), tmp_path / "o3", header_only)


def test_a_missing_join_key_names_file_column_and_key(both_layouts, tmp_path):
    folder = _copy_export(both_layouts, tmp_path / "nokey")
    path = folder / "sde_ids202careactivity.csv"
    df = pd.read_csv(path, dtype=str).drop(columns="CareContactId")
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"join key column CareContactId not found"):
        ingest.run(Params(), tmp_path / "o", folder)
    assert not (tmp_path / "o").exists()
