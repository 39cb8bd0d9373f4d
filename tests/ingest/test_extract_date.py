"""The extract date belongs to the export: given for the run, else its manifest, else its
latest appointment — never the synthetic cohort's, and the same from any folder."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Params, load_params
from pipeline.ingest.manifest import (
    FROM_MANIFEST,
    GIVEN,
    INFERRED,
    ExportManifest,
    choose_extract_date,
    read_manifest,
)
from pipeline.ingest.read import InputError
from pipeline.stages import ingest

ROOT = Path(__file__).resolve().parents[2]
DATE_COLUMNS = (
    "referral_date",
    "end_date",
    "scheduled_date",
    "measure_date",
    "set_date",
    "rating_date",
    "contact_date",
)
runner = CliRunner()


def test_precedence_given_then_manifest_then_inferred():
    manifest = ExportManifest(extract_date=dt.date(2024, 6, 30))
    given = dt.date(2024, 1, 1)
    assert choose_extract_date(given, manifest).date == given
    assert choose_extract_date(given, manifest).source == GIVEN
    assert choose_extract_date(None, manifest).source == FROM_MANIFEST
    assert choose_extract_date(None, ExportManifest()).source == INFERRED
    assert choose_extract_date(None, None).date is None


def test_a_bad_manifest_names_the_key(tmp_path):
    (tmp_path / "export.json").write_text('{"extract_dat": "2024-01-01"}')
    with pytest.raises(InputError, match="extract_dat"):
        read_manifest(tmp_path)
    (tmp_path / "export.json").write_text('{"extract_date": "31/03/2024"}')
    with pytest.raises(InputError, match="extract_date"):
        read_manifest(tmp_path)
    (tmp_path / "export.json").write_text("{not json")
    with pytest.raises(InputError, match="not readable JSON"):
        read_manifest(tmp_path)


def test_the_project_params_are_the_defaults():
    """Running from the project folder (params.yaml) or elsewhere (built-in defaults) must
    read an export the same way, so the two may not differ."""
    assert load_params(ROOT / "params.yaml") == Params()


def _shifted_copy(folder: Path, target: Path, days: int) -> Path:
    target.mkdir()
    for path in folder.glob("*.csv"):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in DATE_COLUMNS:
            if col in df:
                parsed = pd.to_datetime(df[col], format="%Y-%m-%d", errors="coerce")
                shifted = (parsed + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%d")
                df[col] = shifted.where(parsed.notna(), df[col])
        df.to_csv(target / path.name, index=False)
    return target


def _cli_ingest(folder: Path, out: Path, *extra: str):
    return runner.invoke(app, ["ingest", str(folder), "--out", str(out), *extra])


def _held(out: Path, table: str) -> pd.DataFrame:
    q = pd.read_parquet(out / f"data/interim/quarantine/{table}.parquet")
    return q[["source_line", "rules"]].reset_index(drop=True)


def test_a_later_export_run_from_the_project_folder_keeps_its_own_date(
    small_export, small_params, tmp_path, monkeypatch
):
    """The review's case: every date one year on; run from the project folder (whose
    params.yaml once carried the synthetic cohort's date) nothing extra is future-dated."""
    folder, _ = small_export
    original = tmp_path / "original"
    shutil.copytree(folder, original)
    (original / "export.json").write_text(
        json.dumps({"source": "synthetic", "extract_date": str(small_params.extract_date)})
    )
    later = _shifted_copy(folder, tmp_path / "later", 365)
    monkeypatch.chdir(ROOT)
    for src, out in ((original, tmp_path / "a"), (later, tmp_path / "b")):
        result = _cli_ingest(src, out)
        assert result.exit_code == 0, result.output
    for table in ("episodes", "sessions", "measures", "goals", "goal_ratings", "contacts"):
        pd.testing.assert_frame_equal(_held(tmp_path / "a", table), _held(tmp_path / "b", table))
    report = json.loads((tmp_path / "b/data/interim/ingest_report.json").read_text())
    assert report["extract_date_source"] == INFERRED
    assert report["extract_date"] > str(small_params.extract_date)
    assert report["export"]["source"] == "export"
    assert "inferred" in result.output


def test_same_outputs_from_any_folder(small_export, tmp_path, monkeypatch):
    folder, _ = small_export
    outs = []
    for cwd in (ROOT, tmp_path):
        monkeypatch.chdir(cwd)
        out = tmp_path / f"from_{len(outs)}"
        assert _cli_ingest(folder, out).exit_code == 0
        outs.append(out / "data/interim")
    for parquet in sorted(outs[0].rglob("*.parquet")):
        twin = outs[1] / parquet.relative_to(outs[0])
        assert parquet.read_bytes() == twin.read_bytes(), parquet.name
    reports = [json.loads((o / "ingest_report.json").read_text()) for o in outs]
    assert reports[0] == reports[1]


def test_a_wrong_extract_date_stops_with_what_it_would_drop(small_export, tmp_path):
    folder, _ = small_export
    stale = tmp_path / "stale"
    shutil.copytree(folder, stale)
    (stale / "export.json").write_text('{"extract_date": "2024-06-30"}')
    result = _cli_ingest(stale, tmp_path / "out")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "2024-06-30 (export manifest (export.json))" in text
    assert "would quarantine" in text and "--accept-future-dated" in text
    assert not (tmp_path / "out").exists()  # nothing written, not even an empty folder
    # validate says so too, rather than passing an export that ingest will refuse
    checked = runner.invoke(app, ["validate", str(stale)])
    assert checked.exit_code == 1 and "would quarantine" in " ".join(checked.output.split())
    # the same stop for a date given on the command line, naming it so
    given = _cli_ingest(folder, tmp_path / "out2", "--extract-date", "2024-06-30")
    assert given.exit_code == 1 and "given for this run" in " ".join(given.output.split())
    # an explicit override proceeds and quarantines them
    ok = _cli_ingest(stale, tmp_path / "out", "--accept-future-dated")
    assert ok.exit_code == 0, ok.output
    report = json.loads((tmp_path / "out/data/interim/ingest_report.json").read_text())
    future = report["tables"]["sessions"]["quarantined_by_rule"]["future_date"]
    assert future / report["tables"]["sessions"]["rows_read"] > 0.02


def test_the_synthetic_manifest_gives_the_cohorts_date(tmp_path):
    from pipeline.stages import synthesize

    params = Params(synthetic={"n_episodes": 60, "oracle_replicates": 0})
    synthesize.run(params, tmp_path)
    manifest = read_manifest(tmp_path / "data/raw/synthetic")
    assert manifest is not None and manifest.synthetic
    assert manifest.extract_date == params.synthetic.extract_date
    summary = ingest.run(params, tmp_path)
    assert summary["extract_date"] == str(params.synthetic.extract_date)
    assert summary["extract_date_source"] == FROM_MANIFEST
