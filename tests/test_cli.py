"""`engage run` executes every analysis stage on any contract folder, outside DVC."""

import json

from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def test_run_writes_the_repository_layout(small_export, tmp_path):
    folder, _ = small_export
    params = tmp_path / "params.yaml"
    params.write_text('ingest:\n  extract_date: "2025-03-31"\n')
    result = runner.invoke(
        app, ["run", "--input", str(folder), "--out", str(tmp_path / "o"), "--params", str(params)]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "o" / "data"
    for path in (
        "interim/episodes.parquet",
        "interim/ingest_report.json",
        "processed/features.parquet",
        "processed/outcomes.parquet",
    ):
        assert (out / path).exists(), path
    reports = tmp_path / "o" / "reports"
    assert (reports / "tables/models/poor_outcome.csv").exists()
    assert (reports / "model_cards/models/poor-outcome-index-adjusted.json").exists()
    report = json.loads((out / "interim/ingest_report.json").read_text())
    assert report["totals"]["rows_quarantined"] > 0


def test_stage_before_its_inputs_is_a_clear_error(tmp_path):
    for stage in ("features", "models"):
        result = runner.invoke(app, [stage, "--out", str(tmp_path), "--params", "/none.yaml"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert "run the earlier stages first" in " ".join(result.output.split())


def test_check_disclosure_fails_on_a_leaky_folder_and_passes_a_safe_one(tmp_path):
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "metrics.json").write_text(
        json.dumps({"n_poor_outcome_defined": 300, "rate_poor_outcome": 0.343}), encoding="utf-8"
    )
    result = runner.invoke(app, ["check-disclosure", str(leaky)])
    assert result.exit_code == 1 and "2 cells recovered (ratio: 2)" in result.output  # n and k
    (leaky / "metrics.json").write_text(
        json.dumps({"n_poor_outcome_defined": 300, "rate_poor_outcome": 0.35}), encoding="utf-8"
    )
    result = runner.invoke(app, ["check-disclosure", str(leaky)])
    assert result.exit_code == 0 and "No count could be recovered" in result.output
    missing = runner.invoke(app, ["check-disclosure", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "is not a folder" in missing.output


def test_check_disclosure_refuses_a_worklist_copied_into_reports(tmp_path):
    from pipeline import catalog

    reports = tmp_path / "reports"
    (reports / "tables" / "prediction").mkdir(parents=True)
    worklist = tmp_path / "data/results/worklist" / catalog.WORKLIST_FILE
    worklist.parent.mkdir(parents=True)
    worklist.write_text(
        f"{catalog.WORKLIST_MARKER} (episode ids) - for the service's own use only.\n"
        "# Not for sharing.\nepisode_id,early_signs,predicted_risk\nep0001,none,0.41\n",
        encoding="utf-8",
    )
    clean = runner.invoke(app, ["check-disclosure", str(reports)])
    assert clean.exit_code == 0, clean.output
    (reports / "tables" / "prediction" / "worklist.csv").write_bytes(worklist.read_bytes())
    result = runner.invoke(app, ["check-disclosure", str(reports)])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "tables/prediction/worklist.csv: a worklist" in text
    assert "must never be shared" in text
    # Without its header, an episode_id column gives it away as well, in any folder.
    (reports / "tables" / "prediction" / "worklist.csv").unlink()
    (reports / "plots").mkdir()
    (reports / "plots" / "scores.csv").write_text("episode_id,risk\nep0001,0.4\n")
    result = runner.invoke(app, ["check-disclosure", str(reports)])
    assert result.exit_code == 1 and "plots/scores.csv: per-episode rows" in result.output
