"""The worklist stage and ``engage score`` on the small cohort: outputs under
data/results/worklist (never reports/), the saved model scores the same list, and the
foreseeable mistakes are messages, not tracebacks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import catalog
from pipeline.cli import app
from pipeline.config import Params
from pipeline.models.worklist import read_worklist
from pipeline.stages import worklist as worklist_stage

P = Params(prediction={"repeats": 1, "bootstrap": 50, "permutation_repeats": 1})
runner = CliRunner()


@pytest.fixture(scope="module")
def worklist_run(processed_run):
    root, _ = processed_run
    return root, worklist_stage.run(P, root)


def test_the_stage_writes_the_worklist_outside_reports(worklist_run):
    root, summary = worklist_run
    folder = root / "data/results/worklist"
    names = {p.name for p in folder.iterdir()}
    assert names == {
        catalog.WORKLIST_FILE,
        catalog.WORKLIST_SUMMARY,
        catalog.WORKLIST_MODEL,
        catalog.WORKLIST_MODEL_CARD,
    }
    text = (folder / catalog.WORKLIST_FILE).read_text()
    assert text.startswith(catalog.WORKLIST_MARKER)
    table = read_worklist(folder / catalog.WORKLIST_FILE)
    counts = json.loads((folder / catalog.WORKLIST_SUMMARY).read_text())
    assert len(table) == summary["scored"] == counts["open_past_landmark_scored"] > 0
    assert "episode_id" not in json.dumps(counts)  # counts only
    outcomes = pd.read_parquet(root / "data/processed/outcomes.parquet").set_index("episode_id")
    episodes = pd.read_parquet(root / "data/interim/episodes.parquet").set_index("episode_id")
    assert episodes.loc[table["episode_id"], "end_date"].isna().all()
    assert outcomes.loc[table["episode_id"], "in_treatment_at_landmark"].all()
    reports = root / "reports"
    assert not reports.exists() or not [
        p for p in reports.rglob("*") if p.is_file() and "worklist" in p.name
    ]


def test_engage_score_with_the_saved_model_scores_the_same_list(worklist_run):
    root, _ = worklist_run
    model = root / "data/results/worklist" / catalog.WORKLIST_MODEL
    result = runner.invoke(app, ["score", "--out", str(root), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "not for sharing" in result.output
    fitted = read_worklist(root / "data/results/worklist" / catalog.WORKLIST_FILE)
    scored = read_worklist(root / "data/results/worklist_scored" / catalog.WORKLIST_FILE)
    pd.testing.assert_frame_equal(scored, fitted)


def test_engage_score_mistakes_are_messages(worklist_run, tmp_path):
    root, _ = worklist_run
    model = root / "data/results/worklist" / catalog.WORKLIST_MODEL
    copy = tmp_path / catalog.WORKLIST_MODEL
    copy.write_bytes(model.read_bytes() + b"x")
    (tmp_path / catalog.WORKLIST_MODEL_CARD).write_bytes(
        model.with_name(catalog.WORKLIST_MODEL_CARD).read_bytes()
    )
    for path, expected in ((copy, "sha256 differs"), (tmp_path / "none.joblib", "no saved")):
        result = runner.invoke(app, ["score", "--out", str(root), "--model", str(path)])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert expected in " ".join(result.output.split())
    empty = runner.invoke(app, ["score", "--out", str(tmp_path), "--model", str(model)])
    assert empty.exit_code == 1 and "ingest the extract" in " ".join(empty.output.split())
