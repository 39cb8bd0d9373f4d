"""An export folder, whatever its layout: the contract tables it yields and the files read.

``open_export`` detects the layout from the file names (or takes it from params) and
returns an object ingest reads contract tables from, one at a time:

- ``ContractExport``: ``<table>.csv`` / ``<table>.parquet`` files (docs/data-contract.md);
- ``MappedExport``: any other layout through a declared mapping (``pipeline.layouts.mapping``)
  — the NHS Talking Therapies Data Set (``nhstt.yaml``, built in) or a user's YAML file.

Either way a row keeps its source file and line, so quarantine and reconciliation read the
same for every layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import IngestParams
from pipeline.contract import OPTIONAL_TABLES, REQUIRED_TABLES, column_specs
from pipeline.ingest.accept import IdentifierError, identifier_findings, identifier_refusal
from pipeline.ingest.read import (
    InputError,
    RawTable,
    check_file,
    check_headers,
    files_present,
    find_tables,
    label,
    read_header,
    read_raw,
    read_table,
)
from pipeline.layouts.mapping import (
    ColumnRule,
    Mapping,
    MappingError,
    TablePart,
    aggregate_lookup,
    alternatives,
    cut_bands,
    join_first,
    load_mapping,
    map_values,
)

LAYOUTS_DIR = Path(__file__).resolve().parent
BUILT_IN = {"nhstt": LAYOUTS_DIR / "nhstt.yaml"}
"""Layouts shipped with the package, by name (``ingest.layout``, ``--layout``)."""
TABLE_SUFFIXES = (".csv", ".parquet")


class ContractExport:
    """A folder of contract tables."""

    layout = "contract"
    mapping_name: str | None = None

    def __init__(self, folder: Path):
        self.folder = folder
        self.tables = find_tables(folder)
        self.files = dict(self.tables)

    def check(self) -> None:
        check_headers(self.tables)

    def read(self, table: str) -> RawTable:
        return read_table(table, self.tables[table])

    def columns_absent(self) -> dict[str, list[str]]:
        return {
            t: [c.name for c in column_specs(t) if c.name not in set(read_header(p))]
            for t, p in self.tables.items()
        }

    def source_report(self) -> dict:
        return {}


def _names(columns) -> str:
    """Column names of a source file for a message, each masked unless harmless."""
    return ", ".join(label(c) for c in sorted(columns))


def _stem_matches(path: Path, name: str) -> bool:
    stem = path.stem.lower()
    return path.suffix.lower() in TABLE_SUFFIXES and stem.endswith(name.lower())


def match_sources(folder: Path, mapping: Mapping) -> dict[str, Path]:
    """Source name → its file in ``folder`` (case-insensitive; a prefix is allowed)."""
    files = sorted(folder.iterdir())
    found: dict[str, Path] = {}
    for name, spec in mapping.sources.items():
        hits = [p for p in files if _stem_matches(p, spec.file)]
        if len(hits) > 1:
            raise InputError(
                f"{folder}: {len(hits)} files could be the {spec.file} table "
                f"({', '.join(label(p.name) for p in hits)}); keep exactly one."
            )
        if hits:
            check_file(hits[0], folder)
            if label(hits[0].name) != hits[0].name:
                raise IdentifierError(
                    f"{folder}: the file read as the {spec.file} table has a name that may "
                    f"hold an identifier ({label(hits[0].name)}); rename it, e.g. "
                    f"{spec.file}.csv. Nothing was written."
                )
            found[name] = hits[0]
    missing = [s.file for n, s in mapping.sources.items() if s.required and n not in found]
    if missing:
        raise InputError(
            f"{folder}: the {mapping.name} layout needs the table(s) {', '.join(missing)} "
            "(a file whose name ends with it, .csv or .parquet; case does not matter). "
            f"Files present: {files_present(folder)}."
        )
    return found


@dataclass
class _Usage:
    """Which rows of a source table something used (reconciliation of lookup tables)."""

    used: dict[str, np.ndarray] = field(default_factory=dict)

    def mark(self, source: str, rows: np.ndarray) -> None:
        self.used[source] = self.used.get(source, np.zeros(len(rows), dtype=bool)) | rows


class MappedExport:
    """An export in another layout, read through a declared mapping."""

    def __init__(self, folder: Path, mapping: Mapping, layout: str, mapping_name: str | None):
        self.folder = folder
        self.mapping = mapping
        self.layout = layout
        self.mapping_name = mapping_name
        self.sources = match_sources(folder, mapping)
        self.files = dict(self.sources)
        self.tables = {
            table: next(self.sources[p.from_] for p in parts if p.from_ in self.sources)
            for table, parts in mapping.tables.items()
            if any(p.from_ in self.sources for p in parts)
        }
        for table in REQUIRED_TABLES:
            if table not in self.tables:
                files = " or ".join(mapping.sources[p.from_].file for p in mapping.tables[table])
                raise InputError(
                    f"{folder}: no table to read {table} from: the {mapping.name} layout needs "
                    f"{files} (a file whose name ends with it, .csv or .parquet)."
                )
        self._raw: dict[str, RawTable] = {}
        self._usage = _Usage()
        self._bases: set[str] = set()
        self._absent: dict[str, list[str]] = {}

    # -- whole-input checks ------------------------------------------------------------

    def check(self) -> None:
        """Every source table read and scanned for identifiers (all columns, lookup tables
        too) and every mapped column present, before any contract table is built."""
        findings = []
        for name in self.sources:
            findings += identifier_findings(self._source(name))
        if findings:
            raise identifier_refusal(findings)
        for table, parts in self.mapping.tables.items():
            for part in parts:
                if part.from_ in self.sources:
                    self._resolve_columns(table, part)

    def _source(self, name: str) -> RawTable:
        if name not in self._raw:
            raw = read_raw(self.sources[name])
            raw.all_columns = raw.data
            self._raw[name] = raw
        return self._raw[name]

    def _columns_of(self, source: str) -> set[str]:
        return set(map(str, self._source(source).data.columns))

    def _resolve_columns(self, table: str, part: TablePart) -> dict[str, ColumnRule]:
        """The rules of ``part`` whose source columns exist, each with the one column it
        reads; a missing required source column (or any, under ``absent_columns: error``)
        stops the run naming the file, column and mapping key."""
        specs = {s.name: s for s in column_specs(table)}
        present: dict[str, set[str]] = {part.from_: self._columns_of(part.from_)}
        for join in part.join:
            if join.source in self.sources:
                present[join.source] = self._columns_of(join.source)
        where = f"of the {self.mapping.name} mapping"
        for j, join in enumerate(part.join):
            if join.source not in self.sources:
                continue
            for side, columns, owner in (
                ("left", join.key.keys(), None),
                ("right", join.key.values(), join.source),
            ):
                for column in columns:
                    prefix, dot, rest = column.partition(".")
                    src, col = (
                        (prefix, rest) if side == "left" and dot else (owner or part.from_, column)
                    )
                    if src in present and col not in present[src]:
                        raise MappingError(
                            f"{self.sources[src].name}: join key column {col} not found "
                            f"(tables.{table}.join[{j}].key {where}); its columns are "
                            f"{_names(present[src])}."
                        )
        resolved: dict[str, ColumnRule] = {}
        absent = self._absent.setdefault(table, [])
        for target, rule in part.columns.items():
            rule = ColumnRule(column=rule) if isinstance(rule, str) else rule
            owner = rule.from_ or part.from_
            found = None
            for column in alternatives(rule.column):
                prefix, dot, rest = column.partition(".")
                if rule.from_ is None and dot and prefix in present:
                    if rest in present[prefix]:
                        found = column
                        break
                elif owner in self.sources and column in self._columns_of(owner):
                    found = column
                    break
            if (
                rule.default_if_empty is not None
                and rule.default_if_empty not in present[part.from_]
            ):
                raise MappingError(
                    f"{self.sources[part.from_].name}: column {rule.default_if_empty} not found "
                    f"(tables.{table}.columns.{target}.default_if_empty {where})."
                )
            if rule.key is not None and owner in self.sources:
                for left, right in rule.key.items():
                    for src, col in ((part.from_, left), (owner, right)):
                        if col not in self._columns_of(src):
                            raise MappingError(
                                f"{self.sources[src].name}: look-up key column {col} not found "
                                f"(tables.{table}.columns.{target}.key {where}); its columns "
                                f"are {_names(self._columns_of(src))}."
                            )
            if found is not None:
                resolved[target] = rule.model_copy(update={"column": found})
                continue
            names = alternatives(rule.column)
            if rule.from_ is None and "." in names[0]:  # a joined table's column
                owner, _, _ = names[0].partition(".")
                names = tuple(n.partition(".")[2] for n in names)
            if specs[target].required or (
                self.mapping.absent_columns == "error" and owner in self.sources
            ):
                if owner not in self.sources:
                    where = f"the {owner} table is not in the export"
                else:
                    where = (
                        f"{self.sources[owner].name}: column {' or '.join(names)} not found; its "
                        f"columns are {_names(self._columns_of(owner))}"
                    )
                raise MappingError(
                    f"{where} (mapped to {table}.{target} by tables.{table}.columns.{target} "
                    f"of the {self.mapping.name} mapping)."
                )
            if target not in absent:
                absent.append(target)
        return resolved

    # -- contract tables -----------------------------------------------------------------

    def read(self, table: str) -> RawTable:
        """The contract table ``table``: every part's rows, with their source file and line."""
        parts = [p for p in self.mapping.tables[table] if p.from_ in self.sources]
        built = [self._build(table, p) for p in parts]
        data = pd.concat([b[0] for b in built], ignore_index=True)
        lines = pd.concat([b[1] for b in built], ignore_index=True)
        files = pd.concat([b[2] for b in built], ignore_index=True).astype("string")
        raws = [self._source(p.from_) for p in parts]
        malformed = pd.concat(
            [r.malformed.assign(file=r.path.name) for r in raws], ignore_index=True
        )
        used = {  # a column read for any contract table is not dropped
            c
            for all_parts in self.mapping.tables.values()
            for p in all_parts
            for c in self._read_columns(p)
        }
        extra = sorted(
            f"{r.path.name}:{c}"
            for p, r in zip(parts, raws, strict=True)
            for c in r.data.columns
            if (p.from_, str(c)) not in used
        )
        out = RawTable(
            table,
            self.sources[parts[0].from_],
            data,
            lines,
            extra,
            malformed=malformed,
            empty_lines=[n for r in raws for n in r.empty_lines],
            line_numbers_exact=all(r.line_numbers_exact for r in raws),
        )
        out.files = files
        return out

    def _read_columns(self, part: TablePart) -> set[tuple[str, str]]:
        """(source, column) pairs a part reads (the others are reported as dropped)."""
        out = set()
        for rule in part.columns.values():
            rule = ColumnRule(column=rule) if isinstance(rule, str) else rule
            for column in alternatives(rule.column):
                prefix, dot, rest = column.partition(".")
                out.add((prefix, rest) if dot and rule.from_ is None else (part.from_, column))
            for left in rule.key or {}:
                out.add((part.from_, left))
        for join in part.join:
            out |= {(part.from_, left) for left in join.key}
        return out

    def _build(self, table: str, part: TablePart) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
        self._bases.add(part.from_)
        raw = self._source(part.from_)
        frame = raw.data
        for join in part.join:
            if join.source not in self.sources:
                continue
            other = self._source(join.source).data
            frame, used = join_first(frame, other, join.key, join.source)
            self._usage.mark(join.source, used)
        where = f"tables.{table}.columns"
        columns: dict[str, pd.Series] = {}
        for target, rule in self._resolve_columns(table, part).items():
            assert isinstance(rule.column, str)
            if rule.from_ is not None:
                other = self._source(rule.from_).data
                values, used = aggregate_lookup(
                    frame, other, rule.key or {}, rule.column, rule.pick
                )
                self._usage.mark(rule.from_, used)
            else:
                values = frame[rule.column]
            if rule.values is not None:
                values = map_values(values, rule, f"{where}.{target}")
            elif rule.bands is not None:
                values = cut_bands(values, rule.bands)
            if rule.default is not None:
                empty = values.isna()
                if rule.default_if_empty is not None:
                    empty &= frame[rule.default_if_empty].isna()
                values = values.astype("string").mask(empty, rule.default)
            columns[target] = values.reset_index(drop=True)
        data = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
        files = pd.Series(raw.path.name, index=data.index, dtype="string")
        return data, raw.lines.reset_index(drop=True), files

    # -- what the report says -------------------------------------------------------------

    def columns_absent(self) -> dict[str, list[str]]:
        """Per contract table read: the contract columns this export did not supply."""
        out = {}
        for table, parts in self.mapping.tables.items():
            if table not in self.tables:
                continue
            mapped = {c for p in parts if p.from_ in self.sources for c in p.columns}
            out[table] = [
                c.name
                for c in column_specs(table)
                if c.name not in mapped or c.name in self._absent.get(table, [])
            ]
        return out

    def source_report(self) -> dict:
        """Reconciliation of the source tables read only to look values up (not rows of a
        contract table): rows read = rows used + rows not used."""
        out = {}
        for name, path in self.sources.items():
            if name in self._bases:
                continue
            raw = self._source(name)
            used = self._usage.used.get(name, np.zeros(len(raw.data), dtype=bool))
            out[path.name] = {
                "role": "lookup",
                "rows_read": raw.n_read,
                "rows_used": int(used.sum()),
                "rows_not_used": int((~used).sum()) + len(raw.malformed),
                "malformed_lines": len(raw.malformed),
            }
        return out


def detect_layout(folder: Path) -> str:
    """``contract`` or a built-in layout's name, from the table files' names."""
    if not folder.is_dir():
        raise InputError(f"Input folder {folder} does not exist or is not a folder.")
    stems = {p.stem.lower() for p in folder.iterdir() if p.suffix.lower() in TABLE_SUFFIXES}
    contract = bool(stems & {t.lower() for t in REQUIRED_TABLES + OPTIONAL_TABLES})
    found = [
        name
        for name, path in BUILT_IN.items()
        if any(
            stem.endswith(s.file.lower())
            for s in load_mapping(path).sources.values()
            if s.required
            for stem in stems
        )
    ]
    if contract and found:
        raise InputError(
            f"{folder} holds both contract tables and {found[0]} tables; set the layout "
            f"(--layout contract or --layout {found[0]}, or ingest.layout)."
        )
    return found[0] if found else "contract"


def open_export(folder: str | Path, params: IngestParams) -> ContractExport | MappedExport:
    """The export in ``folder``, read as ``params`` say (layout, or a mapping file)."""
    folder = Path(folder)
    if params.mapping is not None:
        path = Path(params.mapping)
        if not folder.is_dir():
            raise InputError(f"Input folder {folder} does not exist or is not a folder.")
        return MappedExport(folder, load_mapping(path), "mapping", path.name)
    layout = detect_layout(folder) if params.layout == "auto" else params.layout
    if layout == "contract":
        return ContractExport(folder)
    if not folder.is_dir():
        raise InputError(f"Input folder {folder} does not exist or is not a folder.")
    return MappedExport(folder, load_mapping(BUILT_IN[layout]), layout, None)


__all__ = ["ContractExport", "IdentifierError", "MappedExport", "detect_layout", "open_export"]
