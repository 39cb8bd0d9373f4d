"""Both engines write the same ingest and features outputs on the same export."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from pipeline.engine.buckets import bucket_of
from pipeline.engine.partition import read_layout, write_partitioned
from pipeline.ingest.accept import IdentifierError
from pipeline.ingest.read import InputError
from pipeline.stages import features, ingest


def _digests(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_interim(a, b) -> None:
    """Ingest outputs equal: every table and quarantine exactly, the same report."""
    a, b = a / "data/interim", b / "data/interim"
    assert sorted(_digests(a)) == sorted(_digests(b))
    for name in _digests(a):
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True, obj=name
            )
    report = json.loads((a / "ingest_report.json").read_text())
    assert report == json.loads((b / "ingest_report.json").read_text())
    assert _digests(a) == _digests(b)  # and byte for byte: downstream stages cannot tell


def assert_same_features(a, b) -> None:
    """Features equal: counts, flags and ids exactly; means and rates within tolerance."""
    fa = pd.read_parquet(a / "data/processed/features.parquet")
    fb = pd.read_parquet(b / "data/processed/features.parquet")
    pd.testing.assert_frame_equal(fa, fb, check_exact=False, rtol=1e-9, atol=1e-12)
    assert fa["episode_id"].tolist() == fb["episode_id"].tolist()


@pytest.fixture
def both(engine_params, partitions, dask_address, tmp_path):
    """Run ingest + features with each engine on ``folder``; return the two output roots."""

    def run(folder, **ingest_params):
        roots = {}
        for engine in ("pandas", "dask"):
            params = engine_params(engine, dask_address, partitions, **ingest_params)
            roots[engine] = tmp_path / engine
            ingest.run(params, roots[engine], folder)
            features.run(params, roots[engine])
        return roots["pandas"], roots["dask"]

    return run


def test_the_small_cohort_gives_the_same_outputs(small_export, both, partitions):
    folder, _ = small_export
    pandas_root, dask_root = both(folder, extract_date="2025-03-31")
    assert_same_interim(pandas_root, dask_root)
    assert_same_features(pandas_root, dask_root)
    log = json.loads((dask_root / "data/logs/features.json").read_text())
    assert log["dask"]["partitions"] == partitions and log["dask"]["workers"] == 2


def test_problems_across_buckets_give_the_same_outputs(awkward_export, both, partitions):
    folder, (first, other) = awkward_export
    assert len(set(bucket_of(pd.Series([first, other]), partitions))) == 2  # really across
    pandas_root, dask_root = both(folder)  # the extract date is inferred
    assert_same_interim(pandas_root, dask_root)
    assert_same_features(pandas_root, dask_root)
    report = json.loads((dask_root / "data/interim/ingest_report.json").read_text())
    sessions = report["tables"]["sessions"]
    assert sessions["quarantined_by_rule"]["duplicate_id"] == 1
    assert sessions["quarantined_by_rule"]["malformed_row"] == 1
    assert sessions["empty_lines_skipped"] == 1
    assert report["tables"]["goals"]["quarantined_by_rule"]["duplicate_id"] == 1
    assert report["extract_date_source"] == "inferred from the latest appointment"
    assert not list((dask_root / "data").glob(".ingest-partitioned-*"))  # temporary, removed


def test_a_partitioned_export_gives_the_same_outputs(
    awkward_export, engine_params, dask_address, tmp_path
):
    folder, _ = awkward_export
    layout = tmp_path / "partitioned"
    write_partitioned(folder, layout, partitions=2)
    ingest.run(engine_params("dask", dask_address, None), tmp_path / "from_layout", layout)
    ingest.run(engine_params("pandas"), tmp_path / "from_export", folder)
    assert_same_interim(tmp_path / "from_export", tmp_path / "from_layout")
    assert read_layout(layout).partitions == 2


def test_parquet_export_and_rekeying_give_the_same_outputs(
    awkward_export, both, tmp_path, monkeypatch
):
    folder, _ = awkward_export
    monkeypatch.setenv("ENGAGE_REKEY_KEY", "a-test-key-that-is-long-enough")
    pq_folder = tmp_path / "parquet_export"
    pq_folder.mkdir()
    for name in ("episodes", "measures", "goals", "goal_ratings", "contacts"):
        df = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False, na_values=[""])
        df.to_parquet(pq_folder / f"{name}.parquet")
    sessions = pd.read_csv(folder / "sessions.csv", dtype=str, on_bad_lines="skip")
    sessions.to_parquet(pq_folder / "sessions.parquet")
    pandas_root, dask_root = both(pq_folder, rekey=True)
    assert_same_interim(pandas_root, dask_root)
    assert_same_features(pandas_root, dask_root)


def test_identifiers_are_refused_with_the_same_message(
    awkward_export, engine_params, dask_address, tmp_path
):
    folder, (first, other) = awkward_export  # the values sit in two buckets
    episodes = pd.read_csv(folder / "episodes.csv", dtype=str, keep_default_na=False)
    for episode, value in ((first, "jo@example.org"), (other, "al@example.org")):
        episodes.loc[episodes["episode_id"] == episode, "therapist_id"] = value
    episodes.to_csv(folder / "episodes.csv", index=False)
    messages = []
    for engine in ("pandas", "dask"):
        with pytest.raises(IdentifierError) as info:
            ingest.run(engine_params(engine, dask_address), tmp_path / engine, folder)
        messages.append(str(info.value))
        assert not (tmp_path / engine / "data/interim").exists()
        assert not list((tmp_path / engine).rglob(".ingest-partitioned-*"))
    assert messages[0] == messages[1]
    assert "2 value(s) look like an e-mail address" in messages[1]


def test_a_table_with_no_usable_row_stops_with_the_same_message(
    awkward_export, engine_params, dask_address, tmp_path
):
    folder, _ = awkward_export
    measures = pd.read_csv(folder / "measures.csv", dtype=str)
    measures.assign(instrument="PHQ9000").to_csv(folder / "measures.csv", index=False)
    messages = []
    for engine in ("pandas", "dask"):
        with pytest.raises(InputError, match="none of its 38 row") as info:
            ingest.run(engine_params(engine, dask_address), tmp_path / engine, folder)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
