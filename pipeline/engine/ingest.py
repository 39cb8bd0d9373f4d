"""Ingest on a Dask cluster: every episode bucket through the pandas ingest, then combined.

Per bucket (a task on a worker), tables parents first, exactly as the pandas engine does:
``process_table`` (identifier guard, column and cross-table rules, quarantine,
reconciliation, re-keying). Buckets are by episode, so the cross-table rules (orphans,
appointments before referral) and duplicate ids see every row they need inside the bucket
(``pipeline.engine.partition``).

Once, globally (on the client):

- the extract date, when it is inferred (the latest valid appointment of *all* buckets,
  found by a first pass over the sessions buckets) — before any bucket is checked;
- the report's counts, summed over buckets; a required table with no usable row anywhere
  stops the run (a single bucket may rightly have none);
- identifier findings, merged over buckets into the one message the pandas engine gives;
- the order of rows: each table's accepted rows and quarantine are put back in the
  export's line order, so the written tables equal the pandas engine's.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import IngestParams
from pipeline.contract import REQUIRED_TABLES
from pipeline.engine.cluster import gather
from pipeline.engine.partition import Layout, read_bucket
from pipeline.ingest.accept import (
    MALFORMED_COLUMN,
    IdentifierError,
    TableResult,
    identifier_findings,
    identifier_refusal,
    nothing_accepted_message,
    process_table,
)
from pipeline.ingest.check import (
    InferredExtract,
    appointment_dates,
    configured_extract,
    infer_extract_date,
)
from pipeline.ingest.identifiers import KINDS, IdentifierFinding
from pipeline.ingest.quarantine import ReconciliationError
from pipeline.ingest.read import InputError
from pipeline.instruments import active_registry, in_registry

UNIQUE_IDS = {"episodes": "episode_id", "sessions": "session_id", "goals": "goal_id"}


@dataclass
class BucketTable:
    """One table's result in one bucket."""

    accepted: pd.DataFrame
    lines: np.ndarray
    """Source line of each accepted row (puts the buckets back in the export's order)."""
    quarantine: pd.DataFrame
    counts: dict
    problem_summary: pd.DataFrame | None


@dataclass
class IdentifierStop:
    """A bucket stopped at ``table``: identifier-like columns or values were found."""

    table: str
    findings: list[IdentifierFinding]


def dates_in_bucket(layout: Layout, bucket: int, params: IngestParams) -> pd.Series:
    """Task: appointments per valid date in one bucket's sessions."""
    return appointment_dates(read_bucket(layout, bucket, ["sessions"])["sessions"], params)


def ingest_bucket(
    layout: Layout,
    bucket: int,
    params: IngestParams,
    extract: pd.Timestamp,
    rekey_key: bytes | None,
) -> dict[str, BucketTable] | IdentifierStop:
    """Task: one bucket through the pandas ingest, one table in memory at a time."""
    parents: dict[str, pd.DataFrame] = {}
    out: dict[str, BucketTable] = {}
    for table in layout.tables:
        raw = read_bucket(layout, bucket, [table])[table]
        try:
            result = process_table(raw, params, parents, extract, rekey_key, require_rows=False)
        except IdentifierError:
            return IdentifierStop(table, identifier_findings(raw, params))
        lines = raw.lines.to_numpy(dtype="int64")
        lines = lines[~np.isin(lines, result.quarantine["source_line"].to_numpy())]
        if len(lines) != len(result.accepted):
            raise ReconciliationError(
                f"{table}, bucket {bucket}: {len(lines)} accepted lines for "
                f"{len(result.accepted)} accepted rows"
            )
        out[table] = BucketTable(
            result.accepted, lines, result.quarantine, result.counts, result.problem_summary
        )
    return out


def _pick(result: dict[str, BucketTable], table: str) -> BucketTable:
    return result[table]


def _stop(result: dict[str, BucketTable] | IdentifierStop) -> IdentifierStop | None:
    return result if isinstance(result, IdentifierStop) else None


def merge_counts(counts: list[dict]) -> dict:
    """One table's report counts from its buckets' counts: numbers summed (per key for
    mappings such as rows per rule), flags all-true, the rest identical in every bucket."""
    out: dict = {}
    for key, first in counts[0].items():
        values = [c[key] for c in counts]
        if isinstance(first, bool):
            out[key] = all(values)
        elif isinstance(first, int):
            out[key] = sum(values)
        elif isinstance(first, dict):
            merged: dict = {}
            for value in values:
                for k, n in value.items():
                    merged[k] = merged.get(k, 0) + n
            out[key] = dict(sorted(merged.items()))
        elif any(v != first for v in values):
            raise ReconciliationError(f"buckets disagree on {key}: {values[:3]}")
        else:
            out[key] = first
    return out


def merge_findings(
    findings: list[IdentifierFinding], columns: list[str]
) -> list[IdentifierFinding]:
    """Several buckets' findings for one table as the whole table's: per column and kind,
    all lines (in order) and the example of the earliest, in the pandas engine's order."""
    kinds = list(KINDS)
    rank = {k: i for i, k in enumerate(kinds)}
    place = {c: i for i, c in enumerate([*columns, MALFORMED_COLUMN])}
    groups: dict[tuple[str, str], list[IdentifierFinding]] = {}
    for f in findings:
        groups.setdefault((f.column, f.kind), []).append(f)
    merged = []
    for (column, kind), group in groups.items():
        first = min(group, key=lambda f: f.lines[:1] or (0,))
        lines = tuple(sorted(x for f in group for x in f.lines))
        merged.append(
            IdentifierFinding(first.file, column, kind, lines, first.masked_example, first.position)
        )
    return sorted(
        merged,
        key=lambda f: (place.get(f.column, len(place)), rank.get(f.kind, len(rank))),
    )


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Row-bind buckets' frames (same columns and types); empty ones add nothing."""
    rows = [f for f in frames if len(f)]
    if len(rows) <= 1:
        return (rows or frames)[0].reset_index(drop=True)
    return pd.concat(rows, ignore_index=True)


def combine_table(
    table: str, parts: list[BucketTable], extract: pd.Timestamp, file: str
) -> TableResult:
    """One table from its buckets: rows back in the export's order, counts summed."""
    counts = merge_counts([p.counts for p in parts])
    if table in REQUIRED_TABLES and counts["rows_accepted"] == 0:
        found = [p.problem_summary for p in parts if p.problem_summary is not None]
        found = [s for s in found if len(s)]
        summary = (
            pd.concat(found).groupby(level=[0, 1]).agg(rows=("rows", "sum"), line=("line", "min"))
            if found
            else pd.DataFrame({"rows": [], "line": []})
        )
        raise InputError(nothing_accepted_message(file, counts["rows_read"], summary))
    accepted = _stack([p.accepted for p in parts])
    order = np.argsort(np.concatenate([p.lines for p in parts]), kind="stable")
    accepted = accepted.iloc[order].reset_index(drop=True)
    quarantine = (
        _stack([p.quarantine for p in parts])
        .sort_values("source_line", kind="stable")
        .reset_index(drop=True)
    )
    key = UNIQUE_IDS.get(table)
    if key is not None and key in accepted and accepted[key].duplicated().any():
        raise InputError(
            f"{file}: the same {key} was accepted in two buckets, so this partitioned export "
            "is not partitioned by episode; convert the export again with "
            "engage partition."
        )
    return TableResult(table, accepted, quarantine, counts, extract)


def _global_extract(
    client, layout: Layout, params: IngestParams
) -> tuple[pd.Timestamp, InferredExtract | None]:
    configured = configured_extract(params)
    if configured is not None:
        return configured, None
    futures = client.map(
        dates_in_bucket,
        [layout] * layout.partitions,
        range(layout.partitions),
        params=params,
        pure=False,  # tasks that read files are never taken from another run's cache
    )
    counts = [c for c in gather(client, futures) if len(c)]
    inferred = infer_extract_date(
        pd.concat(counts) if counts else pd.Series(dtype="int64"), layout.files["sessions"].name
    )
    return inferred.date, inferred


def ingest_partitioned(
    client, layout: Layout, params: IngestParams, rekey_key: bytes | None = None
) -> Generator[TableResult, None, None]:
    """Ingest a partitioned export on the cluster: the pandas engine's ``TableResult``s,
    parents first, one table gathered from the workers at a time."""
    extract, inferred = _global_extract(client, layout, params)
    registry = active_registry()  # workers check scores against the same instruments
    futures = [
        client.submit(
            in_registry, registry, ingest_bucket, layout, b, params, extract, rekey_key, pure=False
        )
        for b in range(layout.partitions)
    ]
    try:
        stops = [s for s in gather(client, [client.submit(_stop, f) for f in futures]) if s]
        for table in layout.tables:  # stops where the pandas engine would, with its message
            findings = [f for s in stops if s.table == table for f in s.findings]
            if findings:
                columns = layout.manifest["tables"][table]["columns"]
                raise identifier_refusal(merge_findings(findings, columns))
            parts = gather(client, [client.submit(_pick, f, table) for f in futures])
            result = combine_table(table, parts, extract, layout.files[table].name)
            if table == "sessions":
                result.inferred = inferred
            yield result
            del parts
    finally:
        client.cancel(futures)
