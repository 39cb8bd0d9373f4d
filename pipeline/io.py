"""All file input and output: called only from stage entries and the CLI.

Writes are atomic: data go to a temporary file in the destination folder, which is then
renamed over the target, so an interrupted run never leaves a half-written artefact.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import catalog


@functools.cache
def process_umask() -> int:
    """The process's file-creation mask, read without changing it (``os.umask`` can only
    be read by setting it, which races with threads writing files at the same moment)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # No /proc (macOS, Windows): the mode a new file receives shows the mask.
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o666))
        return 0o666 & ~probe.stat().st_mode & 0o777


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks (provenance of the input)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~process_umask())  # mkstemp creates 0600; use normal permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; on success it replaces ``target``.

    If the body raises, the staging folder is removed and ``target`` is left as it was, so
    a failed stage never leaves partial outputs behind.
    """
    target = Path(target)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    done = False
    try:
        yield staging
        staging.chmod(0o777 & ~process_umask())
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old)
        else:
            os.replace(staging, target)
        done = True
    finally:
        if staging.exists():
            shutil.rmtree(staging)
        if not done:  # nor the folders made for it, when nothing else went into them
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _write_with(target: str | Path, writer: Callable[[Path], object]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def write_json(obj: Any, target: str | Path, *, sort_keys: bool = True) -> Path:
    """Deterministic JSON (sorted keys, fixed indentation, trailing newline); with
    ``sort_keys=False`` the caller's key order, which must itself be deterministic."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False, default=_json_default)
    return _write_with(target, lambda p: p.write_text(text + "\n", encoding="utf-8"))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Cannot serialise {type(value).__name__} to JSON")


def write_text(text: str, target: str | Path) -> Path:
    return _write_with(target, lambda p: p.write_text(text, encoding="utf-8"))


def write_parquet(df: pd.DataFrame, target: str | Path) -> Path:
    """Parquet with zstd compression; deterministic for the same frame and library versions."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    return _write_with(target, lambda p: pq.write_table(table, p, compression="zstd"))


def write_csv(df: pd.DataFrame, target: str | Path, float_format: str | None = None) -> Path:
    """UTF-8 CSV with a header row, ISO dates, empty cell = missing, minimal quoting;
    ``float_format`` (e.g. ``"%.10g"``) rounds floats so that last-bit differences between
    machines' maths libraries do not change the file."""
    return _write_with(
        target,
        lambda p: df.to_csv(
            p,
            index=False,
            lineterminator="\n",
            date_format="%Y-%m-%d",
            float_format=float_format,
        ),
    )


def write_table(df: pd.DataFrame, target: str | Path, file_format: str) -> Path:
    if file_format == "csv":
        return write_csv(df, target)
    if file_format == "parquet":
        return write_parquet(df, target)
    raise ValueError(f"Unknown file format {file_format!r}; use 'csv' or 'parquet'.")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


INTERIM_TABLES = ("episodes", "sessions", "measures", "goals", "goal_ratings", "contacts")


def read_interim(
    folder: str | Path,
    tables: tuple[str, ...] = INTERIM_TABLES,
    columns: dict[str, tuple[str, ...]] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict, pd.Timestamp]:
    """The accepted tables written by ingest (those of ``tables`` that exist: optional ones
    may be absent), its report and the extract date it used. ``columns`` limits a table to
    the listed columns it has (at national scale an unused id column is millions of
    strings)."""
    folder = Path(folder)
    columns = columns or {}

    def read(table: str) -> pd.DataFrame:
        path = folder / f"{table}.parquet"
        if table not in columns:
            return pd.read_parquet(path)
        present = set(pq.read_schema(path).names)
        return pd.read_parquet(path, columns=[c for c in columns[table] if c in present])

    found = {t: read(t) for t in tables if (folder / f"{t}.parquet").exists()}
    report = read_json(folder / catalog.INGEST_REPORT.name)
    return found, report, pd.Timestamp(report["extract_date"])
