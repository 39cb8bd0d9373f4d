"""The partitioned layout: every row in its episode's bucket, nothing lost, deterministic."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from pipeline.config import IngestParams, Params
from pipeline.engine.buckets import bucket_of, n_partitions
from pipeline.engine.partition import (
    LAYOUT_FILE,
    read_bucket,
    read_layout,
    write_partitioned,
)
from pipeline.ingest.parse import parse_column
from pipeline.ingest.read import InputError, read_dataset
from pipeline.stages import ingest


def _ids(raw, column):
    p = IngestParams()
    return parse_column(raw.name, raw.data, column, p.aliases, tuple(p.missing_markers))


def _buckets(layout):
    """table → every bucket's rows (RawTable per bucket)."""
    return {
        t: [read_bucket(layout, b, [t])[t] for b in range(layout.partitions)] for t in layout.tables
    }


def test_every_row_lands_in_its_episodes_bucket_and_none_is_lost(small_export, tmp_path):
    folder, _ = small_export
    k = 4
    write_partitioned(folder, tmp_path / "p", partitions=k)
    layout = read_layout(tmp_path / "p")
    export = read_dataset(folder)
    parts = _buckets(layout)
    home = {}  # episode → bucket, from the episodes table
    for b, raw in enumerate(parts["episodes"]):
        home |= dict.fromkeys(_ids(raw, "episode_id").dropna(), b)
    assert len(set(home.values())) == k
    goal_home = {}
    for table, buckets in parts.items():
        # Nothing lost or added: the same rows, lines and values as the export.
        lines = np.concatenate([raw.lines.to_numpy() for raw in buckets])
        assert sorted(lines) == export[table].lines.tolist()
        together = pd.concat([raw.all_columns.assign(_l=raw.lines) for raw in buckets])
        together = together.sort_values("_l").drop(columns="_l").reset_index(drop=True)
        pd.testing.assert_frame_equal(together, export[table].all_columns)
        for b, raw in enumerate(buckets):
            if table == "goal_ratings":
                goals = _ids(raw, "goal_id")
                placed = goals.map(goal_home).dropna()
            else:
                episodes = _ids(raw, "episode_id")
                placed = episodes.map(home).dropna()
                if table in ("sessions", "goals"):  # later duplicates follow the first row
                    key = _ids(raw, "session_id" if table == "sessions" else "goal_id")
                    placed = placed[~key.duplicated(keep="first")[placed.index]]
                if table == "goals":
                    goal_home |= dict(zip(_ids(raw, "goal_id"), [b] * len(raw.data), strict=True))
            assert (placed == b).all(), f"{table}: rows outside their episode's bucket {b}"
            assert len(placed) > 0


def test_partitioning_is_deterministic(small_export, tmp_path):
    folder, _ = small_export

    def digests(root):
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    write_partitioned(folder, tmp_path / "a", partitions=3)
    write_partitioned(folder, tmp_path / "b", partitions=3)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert len(digests(tmp_path / "a")) == 1 + 6 * 3  # manifest + a file per table and bucket


def test_duplicated_ids_share_the_bucket_of_their_first_row(awkward_export, tmp_path, partitions):
    folder, (first, _) = awkward_export
    write_partitioned(folder, tmp_path / "p", partitions=partitions)
    layout = read_layout(tmp_path / "p")
    [home] = set(bucket_of(pd.Series([first]), partitions))
    for table, key, value in (("sessions", "session_id", "sdup"), ("goals", "goal_id", "g1")):
        for b in range(partitions):
            raw = read_bucket(layout, b, [table])[table]
            n = int((raw.data[key] == value).sum())
            assert n == (2 if b == home else 0), (table, b)
    ratings = read_bucket(layout, home, ["goal_ratings"])["goal_ratings"]
    assert (ratings.data["goal_id"] == "g1").sum() == 2
    # The malformed and empty lines of the export go with bucket 0.
    zero = read_bucket(layout, 0, ["sessions"])["sessions"]
    assert len(zero.malformed) == 1 and len(zero.empty_lines) == 1


def test_bucket_count_and_hash():
    assert n_partitions(45_000, None, 20_000) == 3
    assert n_partitions(10, None, 20_000) == 1
    assert n_partitions(45_000, 7, 20_000) == 7
    ids = pd.Series(["e1", None, "e2", "e1"], dtype="str")
    buckets = bucket_of(ids, 5)
    assert buckets[1] == 0 and buckets[0] == buckets[3]
    assert (bucket_of(ids, 5) == buckets).all() and ((buckets >= 0) & (buckets < 5)).all()


def test_destination_that_is_not_a_layout_is_refused(small_export, tmp_path):
    folder, _ = small_export
    with pytest.raises(InputError, match="outside the export"):
        write_partitioned(folder, folder / "partitioned")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.docx").write_text("keep me")
    with pytest.raises(InputError, match="not a partitioned export"):
        write_partitioned(folder, tmp_path / "busy")
    assert (tmp_path / "busy" / "thesis.docx").exists()


def test_the_pandas_engine_names_the_engine_a_layout_needs(small_export, tmp_path):
    folder, _ = small_export
    write_partitioned(folder, tmp_path / "p", partitions=2)
    with pytest.raises(InputError, match="engine: dask"):
        ingest.run(Params(), tmp_path / "out", tmp_path / "p")


def test_a_damaged_layout_is_a_clear_error(small_export, tmp_path):
    folder, _ = small_export
    write_partitioned(folder, tmp_path / "p", partitions=2)
    (tmp_path / "p" / "measures" / "part-00001.parquet").unlink()
    with pytest.raises(InputError, match="incomplete, missing measures/part-00001"):
        read_layout(tmp_path / "p")
    (tmp_path / "p" / LAYOUT_FILE).write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="convert the export again"):
        read_layout(tmp_path / "p")


def test_command_line_conversion_without_params(small_export, tmp_path):
    # The engine has no command line of its own: `engage partition` is the one, and works
    # without a params.yaml (built-in bucket sizes).
    from typer.testing import CliRunner

    from pipeline.cli import app

    folder, _ = small_export
    runner = CliRunner()
    args = ["partition", str(folder), str(tmp_path / "p"), "--partitions", "2"]
    ok = runner.invoke(app, [*args, "--params", str(tmp_path / "none.yaml")])
    assert ok.exit_code == 0 and "into 2 episode buckets" in ok.output
    bad = runner.invoke(app, [*args[:2], str(tmp_path / "q"), "--partitions", "0"])
    assert bad.exit_code == 2 and "at least 1" in bad.output


def test_engage_partition_command(small_export, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    folder, _ = small_export
    runner = CliRunner()
    ok = runner.invoke(app, ["partition", str(folder), str(tmp_path / "p"), "--partitions", "3"])
    assert ok.exit_code == 0 and "into 3 episode buckets" in ok.output
    assert (tmp_path / "p" / "_layout.json").exists()
    missing = runner.invoke(app, ["partition", str(tmp_path / "nowhere"), str(tmp_path / "q")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    assert missing.exception is None or isinstance(missing.exception, SystemExit)


def test_the_export_manifest_travels_with_the_partitioned_export(small_export, tmp_path):
    """Its extract date and source are the export's, whichever layout the dask engine reads."""
    import shutil

    from pipeline.ingest.manifest import read_manifest

    folder, _ = small_export
    flat = tmp_path / "flat"
    shutil.copytree(folder, flat)
    (flat / "export.json").write_text('{"extract_date": "2025-03-31", "source": "synthetic"}')
    write_partitioned(flat, tmp_path / "p", partitions=2)
    manifest = read_manifest(tmp_path / "p")
    assert manifest is not None and manifest.synthetic
    assert str(manifest.extract_date) == "2025-03-31"
