"""Ingest as a pure function: raw tables in, accepted tables + quarantine + report out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from pipeline.config import IngestParams
from pipeline.contract import (
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    SCHEMAS,
    ColumnSpec,
    column_specs,
)
from pipeline.ingest.check import (
    InferredExtract,
    appointment_dates,
    check_table,
    configured_extract,
    infer_extract_date,
    parent_keys,
)
from pipeline.ingest.identifiers import IdentifierFinding, find_identifiers, known_spellings
from pipeline.ingest.manifest import GIVEN, INFERRED
from pipeline.ingest.quarantine import quarantine_frame, reconcile
from pipeline.ingest.read import InputError, RawTable
from pipeline.ingest.rekey import rekey_frame
from pipeline.ingest.rules import TABLE_ORDER


class IdentifierError(InputError):
    """The input contains (or names) direct identifiers; nothing is written."""


MALFORMED_COLUMN = "(malformed line)"
"""How identifier findings in the raw text of malformed lines name their column."""


@dataclass
class IngestResult:
    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    report: dict


def identifier_findings(
    raw: RawTable, params: IngestParams | None = None
) -> list[IdentifierFinding]:
    """Every identifier-like column or value of one table: every column (contract or not)
    and the raw text of malformed lines, which would otherwise reach the quarantine unread.
    A contract table's own columns must also hold codes (``contract.TEXT_RULES``): the
    spellings ``params`` map (aliases, missing-value markers) count as codes."""
    frame = raw.all_columns if raw.all_columns is not None else raw.data
    specs = {s.name: s for s in column_specs(raw.name)} if raw.name in SCHEMAS else {}
    findings = find_identifiers(
        raw.path.name, frame, raw.lines, raw.distinct, specs, _known_values(specs, params)
    )
    if len(raw.malformed):
        findings += [
            dataclasses.replace(f, position=None)  # not a column of the header
            for f in find_identifiers(
                raw.path.name,
                pd.DataFrame({MALFORMED_COLUMN: raw.malformed["text"].astype("str")}),
                raw.malformed["line"].reset_index(drop=True),
            )
        ]
    return findings


def _known_values(specs: dict[str, ColumnSpec], params: IngestParams | None) -> dict[str, set[str]]:
    """Per contract column, the spellings it accepts: never read as free text."""
    aliases = params.aliases if params is not None else {}
    markers = list(params.missing_markers) if params is not None else []
    out = {}
    for name, spec in specs.items():
        values = [*(spec.allowed or ()), *aliases.get(name, {}), *markers]
        if spec.kind == "boolean":
            values += [*aliases.get("boolean", {}), "true", "false"]
        out[name] = known_spellings(values)
    return out


def identifier_refusal(findings: list[IdentifierFinding]) -> IdentifierError:
    """The error that stops a run on identifier findings (values masked)."""
    lines = "\n".join(f"  - {f.message()}" for f in findings)
    return IdentifierError(
        "The input appears to contain direct identifiers, which must be removed before "
        f"analysis (nothing was written):\n{lines}\nRemove or pseudonymise these columns "
        "or values in the export, then run again."
    )


def refuse_identifiers(raw: RawTable, params: IngestParams | None = None) -> None:
    """Raise IdentifierError listing every identifier-like column or value (masked)."""
    findings = identifier_findings(raw, params)
    if findings:
        raise identifier_refusal(findings)


def _id_columns(table: str) -> list[str]:
    return [c.name for c in column_specs(table) if c.kind == "id"]


@dataclass
class TableResult:
    name: str
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict
    extract_date: pd.Timestamp | None = None
    """The extract date in force once this table was processed (known from sessions on)."""
    problem_summary: pd.DataFrame | None = None
    """Only when a required table accepted nothing and the caller asked not to stop
    (``require_rows=False``): rows and first line per (rule, column)."""
    inferred: InferredExtract | None = None
    """For sessions, when the extract date was inferred: the date and the outliers ignored."""


def process_table(
    raw: RawTable,
    params: IngestParams,
    parents: dict[str, pd.DataFrame],
    extract: pd.Timestamp | None,
    rekey_key: bytes | None,
    require_rows: bool = True,
) -> TableResult:
    """Identifier guard, checks, quarantine and reconciliation for one table.

    A required table with no acceptable row stops the run, unless ``require_rows`` is False
    (one bucket of a partitioned export may rightly have none; the Dask engine checks the
    whole table, with ``problem_summary``)."""
    refuse_identifiers(raw, params)
    result = check_table(raw.name, raw, params, parents, extract)
    held = quarantine_frame(result)
    counts = reconcile(result, held)
    accepted = result.accepted
    summary = None
    if raw.name in REQUIRED_TABLES and accepted.empty:
        if require_rows:
            raise InputError(_nothing_accepted(result))
        summary = problem_summary(result.problems)
    keys = parent_keys(result)
    if keys is not None:
        parents[raw.name] = keys
    if rekey_key is not None:
        accepted = rekey_frame(accepted, _id_columns(raw.name), rekey_key)
        held = rekey_frame(held, _id_columns(raw.name), rekey_key)
        held["raw_text"] = pd.Series(pd.NA, index=held.index, dtype="string")  # holds ids
    counts |= {
        "file": raw.path.name,
        "quarantined_by_rule": result.rows_by_rule(),
        "values_recoded": result.values_recoded(),
        "values_read_as_missing": result.markers,
        "columns_dropped": sorted(raw.extra_columns),
        "empty_lines_skipped": len(raw.empty_lines),
        "line_numbers_exact": raw.line_numbers_exact,
    }
    return TableResult(raw.name, accepted, held, counts, result.extract, summary)


def problem_summary(problems: pd.DataFrame) -> pd.DataFrame:
    """Rows quarantined and the first line, per (rule, column)."""
    return (
        problems.drop_duplicates(["row", "rule"])
        .groupby(["rule", "column"])
        .agg(rows=("row", "size"), line=("line", "min"))
    )


def _nothing_accepted(result) -> str:
    """Why no row of a required table could be used, with the most common rules."""
    return nothing_accepted_message(
        result.raw.path.name, result.n_read, problem_summary(result.problems)
    )


def nothing_accepted_message(name: str, n_read: int, summary: pd.DataFrame) -> str:
    """The message for a required table none of whose ``n_read`` rows is usable."""
    if n_read == 0:
        return f"{name}: the file has a header but no rows; a required table cannot be empty."
    top = summary.sort_values("rows", ascending=False).head(3)
    keys: list[tuple[str, str]] = list(top.index)  # (rule, column) pairs
    reasons = "; ".join(
        f"{rows} row(s) broke {rule} in column {col} (e.g. line {line})"
        for (rule, col), rows, line in zip(keys, top["rows"], top["line"], strict=True)
    )
    hint = " Dates must be written YYYY-MM-DD." if "unparseable_date" in reasons else ""
    return (
        f"{name}: none of its {n_read} row(s) meets the contract, so there is "
        f"nothing to analyse: {reasons or 'malformed lines'}.{hint}"
    )


class _ReadExport:
    """Tables already read, as an ``Export`` (headers were checked when they were read)."""

    def __init__(self, raw: dict[str, RawTable]):
        self.raw = raw
        self.tables = {t: r.path for t, r in raw.items()}
        self.files = dict(self.tables)

    def check(self) -> None:
        return None

    def read(self, table: str) -> RawTable:
        return self.raw[table]


class Export(Protocol):
    """An export of any layout (``pipeline.layouts.export``): the contract tables it yields
    (table → its main file), every file it reads, and a reader per contract table."""

    tables: dict[str, Path]
    files: dict[str, Path]

    def check(self) -> None: ...

    def read(self, table: str) -> RawTable: ...


def ingest_tables(
    export: Export, params: IngestParams, rekey_key: bytes | None = None
) -> Iterator[TableResult]:
    """Stream the tables parents first: one table's rows in memory at a time.

    Whole-input checks (headers of every file; for a mapped layout every source table and
    mapped column) run before any table is processed, so a missing column stops the run at
    once. Only the keys children need (episode ids and referral dates, goal ids) are
    carried from one table to the next.
    """
    extract, inferred, early = _begin(export, params)
    yield from _results(export, params, TABLE_ORDER, {}, extract, inferred, early, rekey_key)


CHILD_GROUPS = (("sessions",), ("measures",), ("goals", "goal_ratings"), ("contacts",))
"""The tables after the episodes, in groups that need nothing of each other: each needs
only the episodes' keys (goal ratings also the goals', so they come with the goals). The
largest first."""


def ingest_in_groups(
    export: Export, params: IngestParams, rekey_key: bytes | None = None
) -> tuple[Iterator[TableResult], dict[str, Callable[[], Iterator[TableResult]]]]:
    """What ``ingest_tables`` streams, as the episodes' result and then ``CHILD_GROUPS``,
    each group a function streaming its tables' results, to be called once the episodes'
    result has been consumed (their keys are what the groups check against); the groups
    may then run side by side, each with one table in memory at a time. The results are
    those of ``ingest_tables``."""
    extract, inferred, early = _begin(export, params)
    parents: dict[str, pd.DataFrame] = {}
    first = _results(export, params, ("episodes",), parents, extract, inferred, early, rekey_key)

    def group(tables: tuple[str, ...]) -> Callable[[], Iterator[TableResult]]:
        def results() -> Iterator[TableResult]:
            if "episodes" not in parents:
                raise RuntimeError("ingest_in_groups: a group ran before the episodes")
            yield from _results(
                export, params, tables, dict(parents), extract, inferred, early, rekey_key
            )

        return results

    return first, {tables[0]: group(tables) for tables in CHILD_GROUPS}


def _begin(
    export: Export, params: IngestParams
) -> tuple[pd.Timestamp | None, InferredExtract | None, dict[str, RawTable]]:
    """The whole-input checks, then the extract date: given, or inferred from the sessions
    (read for it, and kept for their turn)."""
    export.check()
    extract = configured_extract(params)
    early: dict[str, RawTable] = {}
    inferred = None
    if extract is None and "sessions" in export.tables:
        # Every table's dates are checked against the extract date, episodes first: when
        # it is to be inferred, it is inferred from the sessions before anything else.
        early["sessions"] = export.read("sessions")
        refuse_identifiers(early["sessions"], params)
        inferred = infer_extract_date(
            appointment_dates(early["sessions"], params), early["sessions"].path.name
        )
        extract = inferred.date
    return extract, inferred, early


def _results(
    export: Export,
    params: IngestParams,
    tables: tuple[str, ...],
    parents: dict[str, pd.DataFrame],
    extract: pd.Timestamp | None,
    inferred: InferredExtract | None,
    early: dict[str, RawTable],
    rekey_key: bytes | None,
) -> Iterator[TableResult]:
    """Each of ``tables`` the export has, in order, processed against ``parents`` (which
    gains each table's keys for the next)."""
    for table in tables:
        if table not in export.tables:
            continue
        raw = early.pop(table) if table in early else export.read(table)
        result = process_table(raw, params, parents, extract, rekey_key)
        if table == "sessions" and inferred is not None:
            result.inferred = inferred
        extract = result.extract_date or extract
        yield result


def ignored_outliers(result: TableResult) -> dict | None:
    """For sessions whose extract date was inferred past isolated far-future outliers: the
    outlying dates, how many appointments and their source lines (all quarantined as
    ``future_date``). None when nothing was ignored."""
    inferred = result.inferred
    if result.name != "sessions" or inferred is None or not inferred.ignored:
        return None
    held = result.quarantine
    dates = pd.to_datetime(held["scheduled_date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    lines = held["source_line"][dates.isin(list(inferred.ignored))].astype(int).tolist()
    return {
        "rule": "isolated far-future appointments left out of the inferred extract date",
        "appointments": inferred.ignored_rows,
        "dates": [d.date().isoformat() for d in inferred.ignored],
        "source_lines": lines,
    }


def build_report(
    counts: list[dict],
    files: dict[str, Path],
    extract: pd.Timestamp,
    extract_source: str,
    rekeyed: bool,
    ignored: dict | None = None,
) -> dict:
    """The ingest report from each table's counts (dicts with a "name" key); ``files``:
    the contract tables present; ``ignored``: ``ignored_outliers`` of the sessions."""
    per_table = {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in counts}
    return {
        "tables": per_table,
        "optional_tables_absent": [t for t in OPTIONAL_TABLES if t not in files],
        "extract_date": extract.date().isoformat(),
        "extract_date_source": extract_source,
        "extract_date_ignored": ignored,
        "rekeyed": rekeyed,
        "totals": {
            key: sum(t[key] for t in per_table.values())
            for key in ("rows_read", "rows_accepted", "rows_quarantined")
        },
    }


def ingest_dataset(
    raw: dict[str, RawTable], params: IngestParams, rekey_key: bytes | None = None
) -> IngestResult:
    """Eager form for tables already read (tests, notebooks); never mutates ``raw``."""
    results = list(ingest_tables(_ReadExport(raw), params, rekey_key))
    extract = next((r.extract_date for r in reversed(results) if r.extract_date), None)
    if extract is None:  # the episodes table is required, so some table set one
        raise InputError("ingest: no table gave an extract date")
    files = {t: r.path for t, r in raw.items()}
    report = build_report(
        [r.counts | {"name": r.name} for r in results],
        files,
        extract,
        GIVEN if params.extract_date else INFERRED,
        rekey_key is not None,
        next((i for i in map(ignored_outliers, results) if i), None),
    )
    return IngestResult(
        {r.name: r.accepted for r in results}, {r.name: r.quarantine for r in results}, report
    )
