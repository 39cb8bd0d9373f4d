"""The ingest stage on the synthetic export: typed contract tables, deterministic bytes."""

import hashlib
import json

import pandas as pd

from pipeline.config import Params
from pipeline.contract import SCHEMAS
from pipeline.stages import ingest as stage


def _digests(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_outputs_conform_to_the_contract_and_reconcile(small_export, ingest_params, tmp_path):
    folder, manifest = small_export
    stage.run(Params(ingest=ingest_params.model_dump()), tmp_path, folder)
    interim = tmp_path / "data" / "interim"
    for table, model in SCHEMAS.items():
        df = pd.read_parquet(interim / f"{table}.parquet")
        model.validate(df, lazy=True)
    report = json.loads((interim / "ingest_report.json").read_text())
    for table, counts in report["tables"].items():
        held = pd.read_parquet(interim / "quarantine" / f"{table}.parquet")
        assert counts["rows_quarantined"] == len(held)
        assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_quarantined"]
        expected = manifest[(manifest["table"] == table) & (manifest["kind"] != "alias")]
        assert sorted(held["source_line"]) == sorted(expected["line"])


def test_running_twice_gives_identical_outputs_on_any_number_of_workers(
    small_export, ingest_params, tmp_path, monkeypatch
):
    # first the tables after the episodes in groups on two forked workers (whatever this
    # machine allows), then one table after the other in this process: the same bytes
    folder, _ = small_export
    p = Params(ingest=ingest_params.model_dump())
    with monkeypatch.context() as patch:
        patch.setattr("pipeline.stages.common.stage_threads", lambda configured: 2)
        stage.run(p, tmp_path / "a", folder)
    stage.run(p.model_copy(update={"threads": 1}), tmp_path / "b", folder)
    assert _digests(tmp_path / "a/data/interim") == _digests(tmp_path / "b/data/interim")


def test_parquet_export_gives_the_same_accepted_tables(small_export, ingest_params, tmp_path):
    folder, _ = small_export
    p = Params(ingest=ingest_params.model_dump())
    pq_folder = tmp_path / "parquet_export"
    pq_folder.mkdir()
    for csv in folder.glob("*.csv"):
        pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""]).to_parquet(
            pq_folder / f"{csv.stem}.parquet"
        )
    stage.run(p, tmp_path / "a", folder)
    stage.run(p, tmp_path / "b", pq_folder)
    for table in SCHEMAS:
        a = pd.read_parquet(tmp_path / f"a/data/interim/{table}.parquet")
        b = pd.read_parquet(tmp_path / f"b/data/interim/{table}.parquet")
        pd.testing.assert_frame_equal(a, b)


def test_failed_run_leaves_previous_outputs_untouched(
    small_export, ingest_params, tmp_path, make_dataset
):
    folder, _ = small_export
    p = Params(ingest=ingest_params.model_dump())
    stage.run(p, tmp_path, folder)
    before = _digests(tmp_path / "data/interim")
    broken = make_dataset(measures=lambda df: df.drop(columns="score"))
    try:
        stage.run(p, tmp_path, broken)
    except Exception as exc:
        assert "measures.csv" in str(exc) and "score" in str(exc)
    assert _digests(tmp_path / "data/interim") == before
    assert not list((tmp_path / "data").glob(".interim.staging-*"))
