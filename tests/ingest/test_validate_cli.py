"""`engage validate`: passes on the synthetic export, fails clearly on broken input."""

import shutil

import pandas as pd
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, ["validate", *map(str, args), "--params", "/nonexistent.yaml"])


def test_passes_on_generated_export_and_summarises_row_problems(small_export):
    folder, _ = small_export
    result = _invoke(folder)
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "orphan_episode" in result.output and "duplicate_id" in result.output


def test_strict_mode_fails_on_row_problems(small_export):
    folder, _ = small_export
    result = runner.invoke(app, ["validate", str(folder), "--strict", "--params", "/x.yaml"])
    assert result.exit_code == 1


def test_missing_required_column_names_file_and_column(small_export, tmp_path):
    folder, _ = small_export
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    sessions = pd.read_csv(broken / "sessions.csv", dtype=str)
    sessions.drop(columns="status").to_csv(broken / "sessions.csv", index=False)
    result = _invoke(broken)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "FAIL" in text and "sessions.csv" in text and "status" in text
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash


def test_missing_required_table_is_named(small_export, tmp_path):
    folder, _ = small_export
    broken = tmp_path / "no_measures"
    shutil.copytree(folder, broken)
    (broken / "measures.csv").unlink()
    result = _invoke(broken)
    assert result.exit_code == 1
    assert "measures.csv" in " ".join(result.output.split())


def test_not_utf8_is_refused_with_an_actionable_message(small_export, tmp_path):
    folder, _ = small_export
    broken = tmp_path / "latin1"
    shutil.copytree(folder, broken)
    raw = (broken / "episodes.csv").read_bytes()
    (broken / "episodes.csv").write_bytes(raw + "\nep\xe9,cl,,,2024-01-01\n".encode("latin-1"))
    result = _invoke(broken)
    assert result.exit_code == 1
    assert "UTF-8" in " ".join(result.output.split())


def test_missing_folder(tmp_path):
    result = _invoke(tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in " ".join(result.output.split())
