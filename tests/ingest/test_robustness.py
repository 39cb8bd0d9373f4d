"""Foreseeable mistakes in real exports: a clear message or a sensible reading, never a crash."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Params, ParamsError, load_params, parse_params
from pipeline.ingest.accept import IdentifierError, ingest_dataset
from pipeline.ingest.read import InputError, read_dataset
from pipeline.stages import ingest as stage

runner = CliRunner()


def _ingest(folder, params):
    return ingest_dataset(read_dataset(folder), params.ingest)


def test_uk_format_dates_stop_with_a_clear_message(make_dataset, tmp_path):
    folder = make_dataset(episodes=lambda df: df.assign(referral_date=["01/01/2024", "01/02/2024"]))
    result = runner.invoke(
        app, ["ingest", str(folder), "--out", str(tmp_path / "o"), "--params", "/none.yaml"]
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "episodes.csv" in text and "unparseable_date" in text and "YYYY-MM-DD" in text
    assert isinstance(result.exception, SystemExit)
    assert not (tmp_path / "o" / "data" / "interim").exists()


def test_header_only_required_table_is_a_clear_error(make_dataset, params):
    folder = make_dataset(episodes=lambda df: df.iloc[:0])
    with pytest.raises(InputError, match="header but no rows"):
        _ingest(folder, params)


def test_malformed_line_with_an_email_is_refused_not_quarantined(make_dataset, params):
    folder = make_dataset()
    path = folder / "sessions.csv"
    path.write_text(path.read_text() + "s9,e1,2024-01-12,attended,50,36,true,jo@example.org\n")
    with pytest.raises(IdentifierError, match="malformed line") as info:
        _ingest(folder, params)
    assert "jo@example.org" not in str(info.value)


def test_integer_ids_with_gaps_in_parquet_keep_their_meaning(make_dataset, params):
    folder = make_dataset()
    sessions = pd.read_csv(folder / "sessions.csv", dtype=str)
    (folder / "sessions.csv").unlink()
    table = pa.table(
        {
            "session_id": pa.array([1, 2, 3], pa.int64()),
            "episode_id": sessions["episode_id"],
            "scheduled_date": sessions["scheduled_date"],
            "status": pa.array([5, 3, None], pa.int64()),  # NHS codes as integers, one missing
            "duration_min": pa.array([50, None, 45], pa.int64()),
            "homework_assigned": pa.array([1, None, 0], pa.int64()),
        }
    )
    pq.write_table(table, folder / "sessions.parquet")
    result = _ingest(folder, params)
    accepted = result.tables["sessions"]
    assert list(accepted["session_id"]) == ["1", "2"]
    assert list(accepted["status"]) == ["attended", "did_not_attend"]
    assert list(accepted["homework_assigned"].astype(object)) == [True, pd.NA]
    assert result.quarantine["sessions"]["rules"].tolist() == ["missing_required"]


def test_whole_number_nhs_number_in_a_float_column_is_found(make_dataset, params):
    folder = make_dataset()
    eps = pd.read_csv(folder / "episodes.csv", dtype=str)
    (folder / "episodes.csv").unlink()
    eps["site_id"] = [9434765919.0, float("nan")]
    eps.to_parquet(folder / "episodes.parquet")
    with pytest.raises(IdentifierError, match="NHS number"):
        _ingest(folder, params)


def test_timezone_aware_dates_and_wrong_types_do_not_crash(make_dataset, params):
    folder = make_dataset()
    eps = pd.read_csv(folder / "episodes.csv", dtype=str)
    (folder / "episodes.csv").unlink()
    eps["referral_date"] = pd.to_datetime(eps["referral_date"]).dt.tz_localize("Europe/London")
    eps.to_parquet(folder / "episodes.parquet")
    ratings = pd.read_csv(folder / "goal_ratings.csv", dtype=str)
    (folder / "goal_ratings.csv").unlink()
    ratings["rating"] = pd.to_datetime(["2024-01-01", "2024-01-02"])  # a date, not a rating
    ratings.to_parquet(folder / "goal_ratings.parquet")
    result = _ingest(folder, params)
    assert list(result.tables["episodes"]["referral_date"].dt.strftime("%Y-%m-%d")) == [
        "2024-01-01",
        "2024-02-01",
    ]
    held = result.quarantine["goal_ratings"]
    assert set(held["rules"]) == {"not_a_number"}
    assert result.report["tables"]["goal_ratings"]["rows_read"] == 2


def test_missing_value_markers_are_read_as_missing(make_dataset, params):
    folder = make_dataset(
        episodes=lambda df: df.assign(end_reason=["completed", "NA"], end_date=["2024-03-01", " "])
    )
    result = _ingest(folder, params)
    assert result.quarantine["episodes"].empty
    assert result.report["tables"]["episodes"]["values_read_as_missing"] == {"end_reason": 1}
    assert result.tables["episodes"]["end_reason"].isna().sum() == 1


def test_byte_order_mark_and_quoted_header(make_dataset, params):
    folder = make_dataset()
    path = folder / "episodes.csv"
    lines = path.read_text().splitlines()
    header = ",".join(f'"{h}"' for h in lines[0].split(","))
    path.write_bytes(("\ufeff" + "\n".join([header, *lines[1:]]) + "\n").encode("utf-8"))
    result = _ingest(folder, params)
    assert len(result.tables["episodes"]) == 2


def test_extract_date_inferred_from_valid_appointments_only(make_dataset):
    p = Params()  # ingest.extract_date: None
    folder = make_dataset(
        sessions=lambda df: pd.concat(
            [
                df,
                pd.DataFrame(
                    {
                        "session_id": ["s8", "s9"],
                        "episode_id": ["e2", "e2"],
                        "scheduled_date": ["2099-01-01", "2098-13-01"],
                        "status": ["0", "attended"],
                    }
                ),
            ],
            ignore_index=True,
        )
    )
    result = _ingest(folder, p)
    assert result.report["extract_date"] == "2024-02-10"
    assert result.report["extract_date_source"] == "inferred from the latest appointment"


def test_no_valid_appointment_date_asks_for_the_extract_date(make_dataset):
    folder = make_dataset(sessions=lambda df: df.assign(scheduled_date=["", "x", ""]))
    with pytest.raises(InputError, match=r"--extract-date YYYY-MM-DD, or as extract_date"):
        _ingest(folder, Params())


def test_out_pointing_at_a_file_is_a_clean_error(make_dataset, tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    result = runner.invoke(
        app, ["ingest", str(make_dataset()), "--out", str(target), "--params", "/none.yaml"]
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)


def test_params_problems_are_reported_not_raised(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_bytes(b"synthetic:\n  seed: \xff\n")
    with pytest.raises(ParamsError, match="UTF-8"):
        load_params(bad)
    with pytest.raises(ParamsError):
        load_params(tmp_path)  # a folder
    result = runner.invoke(app, ["validate", str(tmp_path), "--params", str(bad)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        ({"stauts": {"x": "attended"}}, "not a category or boolean column"),
        ({"status": {"seen": "atended"}}, "not an allowed value"),
    ],
)
def test_alias_typos_fail_at_load(aliases, message):
    with pytest.raises(ParamsError, match=message):
        parse_params({"ingest": {"aliases": aliases}})


def test_rekeyed_quarantine_holds_no_raw_text(make_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("ENGAGE_REKEY_KEY", "a-long-test-secret-of-32-characters!")
    folder = make_dataset()
    path = folder / "sessions.csv"
    path.write_text(path.read_text() + "s9,e1,2024-01-12,attended,50,36,true,extra\n")
    stage.run(Params(ingest={"extract_date": "2024-06-30", "rekey": True}), tmp_path, folder)
    held = pd.read_parquet(tmp_path / "data/interim/quarantine/sessions.parquet")
    assert held["rules"].tolist() == ["malformed_row"]
    assert held["raw_text"].isna().all()


def test_unicode_next_to_digits_neither_crashes_nor_hides_an_nhs_number():
    from pipeline.ingest.identifiers import scan_values

    lines = pd.Series([2, 3, 4])
    found = scan_values(pd.Series(["Ω9434765919", "١٢٣٤٥٦٧٨٩٠ 9434765919", "ok"]), lines)
    kinds = {kind: list(hit) for kind, hit, _ in found}
    # A non-ASCII letter does not make the digits part of a word: both are refused (privacy
    # first), and neither crashes.
    assert kinds.get("an NHS number") == [2, 3]


def test_none_is_a_category_value_where_the_contract_allows_it(make_dataset, params):
    folder = make_dataset(sessions=lambda df: df.assign(homework_completed=["None", "", "full"]))
    result = _ingest(folder, params)
    assert list(result.tables["sessions"]["homework_completed"].fillna("<missing>")) == [
        "none",
        "<missing>",
        "full",
    ]
    assert "homework_completed" not in result.report["tables"]["sessions"]["values_read_as_missing"]


def test_one_extra_field_on_the_first_data_line_is_malformed(make_dataset, params):
    folder = make_dataset()
    path = folder / "sessions.csv"
    lines = path.read_text().splitlines()
    lines[1] += ",stray"
    path.write_text("\n".join(lines) + "\n")
    result = _ingest(folder, params)
    held = result.quarantine["sessions"]
    assert held["source_line"].tolist() == [2] and held["rules"].tolist() == ["malformed_row"]
    assert len(result.tables["sessions"]) == 2


def test_dates_with_a_time_of_day_are_calendar_dates(make_dataset):
    folder = make_dataset()
    sessions = pd.read_csv(folder / "sessions.csv", dtype=str)
    (folder / "sessions.csv").unlink()
    sessions["scheduled_date"] = pd.to_datetime(sessions["scheduled_date"]) + pd.Timedelta(
        hours=23, minutes=30
    )
    sessions.to_parquet(folder / "sessions.parquet")
    result = _ingest(folder, Params(ingest={"extract_date": "2024-02-10"}))
    assert result.quarantine["sessions"].empty  # 2024-02-10 23:30 is not after 2024-02-10
    assert (result.tables["sessions"]["scheduled_date"].dt.hour == 0).all()


def test_is_in_matches_pandas_isin_and_never_matches_missing():
    from pipeline.ingest.rules import is_in

    values = pd.Series(["a", "b", None, "c", "a"], dtype="str", index=[9, 8, 7, 6, 5])
    keys = pd.Series(["a", "c", None, "zz"], dtype="str")
    got = is_in(values, keys)
    assert got.tolist() == [True, False, False, True, True]
    assert got.index.tolist() == [9, 8, 7, 6, 5]
    expected = values.astype(object).isin(["a", "c", "zz"]) & values.notna()
    assert got.tolist() == expected.tolist()
    assert not is_in(values, keys.iloc[:0]).any()
