"""The synthesize stage writes the cohort, truth and calibration; same seed, same bytes."""

import hashlib

from pipeline.config import parse_params
from pipeline.stages import synthesize


def _hashes(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "logs" not in p.parts
    }


def _params(seed, file_format="csv"):
    return parse_params(
        {
            "synthetic": {
                "seed": seed,
                "n_episodes": 300,
                "oracle_replicates": 4,
                "file_format": file_format,
            }
        }
    )


def test_writes_every_table_truth_and_calibration(tmp_path):
    summary = synthesize.run(_params(1), tmp_path)
    raw = tmp_path / "data/raw/synthetic"
    for table in ("episodes", "sessions", "measures", "goals", "goal_ratings", "contacts"):
        assert (raw / f"{table}.csv").stat().st_size > 0
    truth = tmp_path / "data/raw/synthetic_truth"
    for name in ("truth_episodes.parquet", "truth.json", "messy_rows.csv", "calibration.csv"):
        assert (truth / name).exists()
    assert (tmp_path / "reports/synthetic_calibration.json").exists()
    assert summary["rows_written"]["episodes"] >= 300
    assert not list(tmp_path.rglob("*.tmp")), "atomic writes leave no temporary files"


def test_same_seed_same_bytes_different_seed_different_bytes(tmp_path):
    synthesize.run(_params(7), tmp_path / "a")
    synthesize.run(_params(7), tmp_path / "b")
    synthesize.run(_params(8), tmp_path / "c")
    a, b, c = (_hashes(tmp_path / x / "data") for x in "abc")
    assert a == b
    assert a["raw/synthetic/sessions.csv"] != c["raw/synthetic/sessions.csv"]


def test_parquet_output_is_deterministic_too(tmp_path):
    synthesize.run(_params(3, "parquet"), tmp_path / "a")
    synthesize.run(_params(3, "parquet"), tmp_path / "b")
    assert _hashes(tmp_path / "a" / "data") == _hashes(tmp_path / "b" / "data")
    assert (tmp_path / "a/data/raw/synthetic/sessions.parquet").exists()
