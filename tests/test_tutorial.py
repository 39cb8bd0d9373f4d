"""The notebooks' entry point runs the real stages and reads back what they wrote."""

from pathlib import Path

import pandas as pd

from pipeline.config import load_params
from pipeline.tutorial import project_params, study_params, synthetic_study

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_are_found_from_a_subfolder():
    assert project_params(ROOT / "notebooks") == load_params(ROOT / "params.yaml")


def test_study_params_keep_paths_inside_the_study_and_apply_overrides():
    p = study_params(load_params(ROOT / "params.yaml"), n_episodes=321, seed=5)
    assert p.synthetic.n_episodes == 321 and p.synthetic.seed == 5
    assert all(not Path(v).is_absolute() for v in p.paths.model_dump().values())
    assert p.paths.input_dir == p.paths.raw_dir  # ingest reads the generated export
    assert p.ingest.extract_date is None  # the generated export's manifest carries it


def test_synthetic_study_matches_the_stage_outputs(tmp_path):
    study = synthetic_study(tmp_path, n_episodes=300, oracle_replicates=2)
    assert study.workspace is None and study.root == tmp_path
    assert len(study.tables["episodes"]) == 300 == len(study.features) == len(study.frame)
    on_disk = pd.read_parquet(tmp_path / "data/processed/features.parquet")
    pd.testing.assert_frame_equal(study.features, on_disk)
    held = sum(len(q) for q in study.quarantine.values())
    assert held == study.ingest_report["totals"]["rows_quarantined"] > 0
    assert (study.export_dir / "sessions.csv").exists()
    assert set(study.truth["episode_id"]) == set(study.tables["episodes"]["episode_id"])
    assert study.extract_date == pd.Timestamp(study.params.synthetic.extract_date)
    assert study.ingest_report["extract_date_source"] == "export manifest (export.json)"


def test_a_study_without_a_folder_cleans_up_after_itself():
    study = synthetic_study(n_episodes=200, oracle_replicates=0)
    root = study.root
    assert (root / "data/processed/outcomes.parquet").exists()
    study.workspace.cleanup()
    assert not root.exists()
