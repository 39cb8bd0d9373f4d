"""Split an export into episode buckets: the partitioned layout the Dask engine reads.

Every row of every table goes to the bucket of its episode (a stable hash of the episode id
modulo the number of buckets), so each bucket can be ingested and featurised on its own
with the pandas functions, and the buckets' results put together give exactly what the
whole export gives:

- ``episodes``, ``sessions``, ``measures``, ``goals``, ``contacts``: by ``episode_id``;
- ``goal_ratings`` (no episode column): by ``goal_id``, to the bucket of that goal;
- ``session_id`` and ``goal_id`` must be unique across the export, and the first row with an
  id is kept while later ones are quarantined (``duplicate_id``): every row sharing an id
  goes to the bucket of the *first* such row, so the rule sees all of them. (An accepted
  row is always a first occurrence, hence in its own episode's bucket.)

Ids are hashed as ingest reads them (trimmed; missing-value markers missing), so spellings
that ingest treats as the same id share a bucket; missing ids go to bucket 0. Rows keep the
export's order inside a bucket and carry their source line (``LINE_COLUMN``), which puts the
combined outputs back in the export's order and keeps quarantine provenance exact. Lines
with too many fields (malformed) and the line numbers of empty lines go with bucket 0.

Layout: ``<out>/_layout.json`` (manifest) and ``<out>/<table>/part-00000.parquet`` …, one
file per bucket for every table (empty buckets included), plus
``<out>/<table>/_malformed.parquet`` when the table has malformed lines. Values are kept as
read (text for a CSV export), so the layout holds exactly what the export held.

Convert an export with ``engage partition EXPORT OUT``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.config import IngestParams
from pipeline.contract import column_specs
from pipeline.engine.buckets import bucket_of, first_bucket_per_key, n_partitions, split_frame
from pipeline.ingest.manifest import MANIFEST_NAME
from pipeline.ingest.parse import parse_column
from pipeline.ingest.read import InputError, RawTable, check_headers, find_tables, read_table
from pipeline.ingest.rules import TABLE_ORDER
from pipeline.io import atomic_directory, file_digest, read_json, write_json, write_parquet

LAYOUT_FILE = "_layout.json"
LAYOUT_FORMAT = "engage-partitioned-export"
LAYOUT_VERSION = 1
LINE_COLUMN = "_engage_source_line"
"""Source line of each row in the export (CSV: header = line 1; Parquet: row number + 1)."""
MALFORMED_FILE = "_malformed.parquet"


def _unique_id(table: str) -> str | None:
    """The contract's unique id of a child table (session_id, goal_id), if any."""
    ids = [s.name for s in column_specs(table) if s.unique and s.name != "episode_id"]
    return ids[0] if ids else None


def assign_buckets(
    table: str,
    data: pd.DataFrame,
    partitions: int,
    params: IngestParams,
    goal_buckets: pd.Series | None = None,
) -> tuple[np.ndarray, pd.Series | None]:
    """Bucket of each row of one table (contract columns as read), and for ``goals`` the
    bucket of each goal id (what ``goal_ratings`` follow; pass it back as ``goal_buckets``)."""

    def typed(column: str) -> pd.Series:
        return parse_column(table, data, column, params.aliases, tuple(params.missing_markers))

    if table == "goal_ratings":
        goal = typed("goal_id")
        known = goal_buckets if goal_buckets is not None else pd.Series(dtype="int64")
        mapped = known.reindex(goal.to_numpy()).to_numpy(dtype=float)
        fallback = bucket_of(goal, partitions)  # a goal not in goals: quarantined anyway
        return np.where(np.isnan(mapped), fallback, mapped).astype(np.int64), None
    buckets = bucket_of(typed("episode_id"), partitions)
    unique = _unique_id(table)
    if unique is None:
        return buckets, None
    ids = typed(unique)
    buckets = first_bucket_per_key(ids, buckets)
    if table != "goals":
        return buckets, None
    present = ids.notna().to_numpy()
    by_goal = pd.Series(buckets[present], index=ids[present].to_numpy())
    return buckets, by_goal[~by_goal.index.duplicated(keep="first")]


def _frame(raw: RawTable) -> pd.DataFrame:
    """Every column as read (contract or not): what the layout keeps."""
    return raw.all_columns if raw.all_columns is not None else raw.data


def _raw_pieces(
    raw: RawTable, partitions: int, params: IngestParams, goal_buckets: pd.Series | None
) -> tuple[list[pd.DataFrame], pd.Series | None]:
    frame = _frame(raw)
    if LINE_COLUMN in frame.columns:
        raise InputError(
            f"{raw.path.name}: the column name {LINE_COLUMN} is reserved for the "
            "partitioned layout; rename that column in the export."
        )
    buckets, goals = assign_buckets(raw.name, raw.data, partitions, params, goal_buckets)
    frame = frame.assign(**{LINE_COLUMN: raw.lines.to_numpy(dtype="int64")})
    return split_frame(frame, buckets, partitions), goals


def _check_destination(export: Path, out: Path) -> None:
    export, target = export.resolve(), out.resolve()
    if target == export or target in export.parents or export in target.parents:
        raise InputError(
            f"{out}: write the partitioned export to a folder outside the export {export} "
            "(and not one that contains it)."
        )
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_partitioned(out))):
        raise InputError(
            f"{out} exists and is not a partitioned export; choose a new folder (an existing "
            "partitioned export there would be replaced)."
        )


def write_partitioned(
    export_dir: str | Path,
    out_dir: str | Path,
    partitions: int | None = None,
    episodes_per_partition: int = 20_000,
    params: IngestParams | None = None,
) -> dict:
    """Write the export in ``export_dir`` as the partitioned layout in ``out_dir`` (replaced
    atomically) and return its manifest.

    Reads one table at a time with the ingest reader, so whole-input problems (a missing
    table or column, a file that is not UTF-8) stop here with the same messages. The number
    of buckets is ``partitions``, else one per ``episodes_per_partition`` episodes. ``params``
    (default: built-in) only decides how ids are read, as ingest reads them.
    """
    params = params or IngestParams()
    export, out = Path(export_dir), Path(out_dir)
    files = find_tables(export)
    check_headers(files)
    _check_destination(export, out)
    manifest: dict = {
        "format": LAYOUT_FORMAT,
        "version": LAYOUT_VERSION,
        "package_version": __version__,
        "partitions": None,
        "partitioned_by": "episode_id (goal_ratings: goal_id → goals.episode_id)",
        "tables": {},
    }
    with atomic_directory(out) as staging:
        goal_buckets = None
        for table in TABLE_ORDER:
            if table not in files:
                continue
            raw = read_table(table, files[table])
            if manifest["partitions"] is None:  # episodes come first
                manifest["partitions"] = n_partitions(
                    len(raw.data), partitions, episodes_per_partition
                )
            k = manifest["partitions"]
            pieces, goals = _raw_pieces(raw, k, params, goal_buckets)
            goal_buckets = goals if goals is not None else goal_buckets
            for bucket, piece in enumerate(pieces):
                write_parquet(piece, staging / table / _part_name(bucket))
            if len(raw.malformed):
                write_parquet(raw.malformed, staging / table / MALFORMED_FILE)
            manifest["tables"][table] = {
                "file": raw.path.name,
                "sha256": file_digest(files[table]),
                "columns": [str(c) for c in _frame(raw).columns],
                "rows": len(raw.data),
                "malformed_lines": len(raw.malformed),
                "empty_lines": [int(x) for x in raw.empty_lines],
                "line_numbers_exact": bool(raw.line_numbers_exact),
            }
            del raw, pieces
        write_json(manifest, staging / LAYOUT_FILE)
        if (export / MANIFEST_NAME).is_file():  # the export's own: its extract date, source
            shutil.copyfile(export / MANIFEST_NAME, staging / MANIFEST_NAME)
    return manifest


def _part_name(bucket: int) -> str:
    return f"part-{bucket:05d}.parquet"


def is_partitioned(folder: str | Path) -> bool:
    """Whether ``folder`` holds a partitioned layout (rather than a flat export)."""
    return (Path(folder) / LAYOUT_FILE).is_file()


@dataclass(frozen=True)
class Layout:
    """A partitioned export on disk: where it is and its manifest."""

    path: Path
    manifest: dict

    @property
    def partitions(self) -> int:
        return int(self.manifest["partitions"])

    @property
    def tables(self) -> list[str]:
        return [t for t in TABLE_ORDER if t in self.manifest["tables"]]

    @property
    def files(self) -> dict[str, Path]:
        """Table → the export file it came from (by name: provenance and messages)."""
        return {t: Path(self.manifest["tables"][t]["file"]) for t in self.tables}

    @property
    def digests(self) -> dict[str, str]:
        """sha256 of each export file the layout was made from."""
        return {m["file"]: m["sha256"] for m in self.manifest["tables"].values()}

    def part(self, table: str, bucket: int) -> Path:
        return self.path / table / _part_name(bucket)


def read_layout(folder: str | Path) -> Layout:
    """The layout in ``folder``; InputError if it is not one this version can read."""
    folder = Path(folder)
    try:
        manifest = read_json(folder / LAYOUT_FILE)
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: not a readable partitioned export ({exc}).") from None
    if manifest.get("format") != LAYOUT_FORMAT or manifest.get("version") != LAYOUT_VERSION:
        raise InputError(
            f"{folder}: {LAYOUT_FILE} is not a version-{LAYOUT_VERSION} {LAYOUT_FORMAT}; "
            "convert the export again with engage partition."
        )
    layout = Layout(folder, manifest)
    missing = [
        str(layout.part(t, b).relative_to(folder))
        for t in layout.tables
        for b in range(layout.partitions)
        if not layout.part(t, b).is_file()
    ]
    if missing:
        raise InputError(
            f"{folder}: partitioned export incomplete, missing {', '.join(missing[:5])}"
            f"{' …' if len(missing) > 5 else ''}; convert the export again."
        )
    return layout


def read_bucket(layout: Layout, bucket: int, tables: list[str] | None = None) -> dict:
    """One bucket's tables as the ingest reader would have read those rows (RawTable), with
    their source lines; bucket 0 also carries the malformed and empty lines."""
    out = {}
    for table in tables or layout.tables:
        meta = layout.manifest["tables"][table]
        df = pd.read_parquet(layout.part(table, bucket))
        lines = pd.Series(df.pop(LINE_COLUMN).to_numpy(dtype="int64"))
        contract = [c.name for c in column_specs(table) if c.name in df.columns]
        raw = RawTable(
            table,
            Path(meta["file"]),
            df[contract],
            lines,
            [str(c) for c in df.columns if c not in contract],
            all_columns=df,
            line_numbers_exact=bool(meta["line_numbers_exact"]),
        )
        if bucket == 0:
            raw.empty_lines = list(meta["empty_lines"])
            if meta["malformed_lines"]:
                malformed = pd.read_parquet(layout.path / table / MALFORMED_FILE)
                malformed["line"] = malformed["line"].to_numpy(dtype="int64")
                raw.malformed = malformed
        out[table] = raw
    return out
