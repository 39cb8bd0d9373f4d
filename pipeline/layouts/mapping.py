"""Declared mappings from another system's tables onto the contract.

A mapping (YAML, docs/layouts.md) names the export's *source* tables and, for each contract
table, where each contract column comes from: a source column as it is, through a value
map (codes → contract values), through numeric bands (age → age band), from a row of
another table joined on a key, or aggregated from another table (the most frequent
clinician of a referral). The NHS Talking Therapies Data Set layout is one such mapping
shipped with the package (``nhstt.yaml``); a service writes its own for any other system.

Mapping only renames, recodes and joins: every row keeps its source file and line, so the
contract's rules then quarantine what does not fit exactly as they do for a contract export
(an unknown code kept as it is fails the contract's category rule; an orphan's missing key
fails the required-value rule), and every source table is reconciled.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.contract import REQUIRED_TABLES, SCHEMAS, ColumnSpec, column_specs
from pipeline.ingest.read import InputError


class MappingError(InputError):
    """A mapping file that cannot be used as written (names the offending key)."""


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _code_key(value: object) -> str:
    """A code as compared: trimmed text; an integer written with leading zeros or as a
    float (``01``, ``1.0``) is the integer's digits, so CSV text and Parquet numbers agree."""
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+(\.0+)?", text):
        return str(int(float(text))) if "." in text else str(int(text))
    return text


class ColumnRule(_Rule):
    """Where one contract column comes from (the long form; a bare string is ``column``)."""

    column: str | tuple[str, ...]
    """The source column; ``<join>.<column>`` for a column of a joined table. A list names
    alternatives, the first one the file has is used (a field renamed between versions of
    a data set)."""
    values: dict[str, str | None] | None = None
    """Source code → contract value (null: missing). Codes are compared as trimmed text;
    integers with leading zeros match (``01`` = ``1``)."""
    match: Literal["exact", "prefix"] = "exact"
    """``prefix``: a code maps by the longest listed prefix (ICD-10 ``F32.1`` by ``F32``)."""
    unmapped: Literal["keep", "missing", "error"] = "error"
    """A source value the map does not list: ``keep`` it as it is (the contract's rules then
    quarantine the row with its line), read it as ``missing``, or stop (``error``)."""
    bands: dict[float, str] | None = None
    """Lower bound → label, for a number cut into bands (age 18 to 24 → ``18-24``). Below
    the lowest bound is missing; a value that is not a number is kept (and quarantined)."""
    from_: str | None = Field(default=None, alias="from")
    """Take the value from another source table (a lookup), matched on ``key``."""
    key: dict[str, str] | None = None
    """Lookup key: this table's column → the other table's column."""
    pick: Literal["first", "most_frequent"] = "first"
    """With ``from``: several matching rows give the first value (file order) or the most
    frequent (ties: the one first in the file)."""
    default: str | None = None
    """The value where the result is missing after mapping, on rows where the source
    column ``default_if_empty`` is empty too (an NHS referral with neither an end code nor
    a discharge date is still open); on every such row when that is not set."""
    default_if_empty: str | None = None

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_codes(cls, value: object) -> object:
        if isinstance(value, dict):
            return {_code_key(k): (None if v is None else str(v)) for k, v in value.items()}
        return value


class Join(_Rule):
    """A many-to-one join: each row gains the columns of the first row of ``source`` whose
    ``key`` matches (named ``<source>.<column>``). (Not ``on``: YAML reads that as true.)"""

    source: str
    key: Annotated[dict[str, str], Field(min_length=1)]
    """This table's column (or an earlier join's ``<source>.<column>``) → ``source``'s."""


class TablePart(_Rule):
    """Contract rows from one source table (a contract table may gather several)."""

    from_: str = Field(alias="from")
    join: tuple[Join, ...] = ()
    columns: dict[str, str | ColumnRule]


class SourceSpec(_Rule):
    file: str
    """The table's file name without extension, matched case-insensitively; a prefix is
    allowed (``sde_IDS101Referral.parquet`` is ``IDS101Referral``)."""
    required: bool = True


class Mapping(_Rule):
    name: str
    description: str = ""
    absent_columns: Literal["error", "skip"] = "error"
    """A mapped source column not in its file: ``error`` stops the run (the default, for a
    mapping written for one export); ``skip`` leaves an optional contract column absent
    (for a published layout whose optional fields a given extract may lack). A required
    contract column's source missing always stops the run."""
    sources: dict[str, SourceSpec]
    tables: dict[str, tuple[TablePart, ...]]

    @field_validator("tables", mode="before")
    @classmethod
    def _one_part_or_many(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: (v if isinstance(v, list) else [v]) for k, v in value.items()}
        return value


def _allowed(spec: ColumnSpec) -> tuple[str, ...] | None:
    if spec.kind == "category":
        allowed = spec.allowed or ()
        return (*allowed, "future") if spec.name == "status" else spec.allowed
    if spec.kind == "boolean":
        return ("true", "false")
    return None


def alternatives(column: str | tuple[str, ...]) -> tuple[str, ...]:
    return (column,) if isinstance(column, str) else tuple(column)


def check_mapping(mapping: Mapping) -> list[str]:
    """Every reference in a mapping that does not resolve, as ``key: problem`` lines."""
    problems: list[str] = []
    for table, parts in mapping.tables.items():
        if table not in SCHEMAS:
            problems.append(
                f"tables.{table}: not a table of the contract (known: {', '.join(SCHEMAS)})"
            )
            continue
        specs = {s.name: s for s in column_specs(table)}
        for i, part in enumerate(parts):
            where = f"tables.{table}" + (f"[{i}]" if len(parts) > 1 else "")
            known = set(mapping.sources)
            if part.from_ not in known:
                problems.append(f"{where}.from: unknown source table '{part.from_}'")
            joined = set()
            for j, join in enumerate(part.join):
                if join.source not in known:
                    problems.append(f"{where}.join[{j}].source: unknown source '{join.source}'")
                joined.add(join.source)
            for target, rule in part.columns.items():
                key = f"{where}.columns.{target}"
                if target not in specs:
                    problems.append(
                        f"{key}: '{target}' is not a column of {table} (known: {', '.join(specs)})"
                    )
                    continue
                if isinstance(rule, str):
                    rule = ColumnRule(column=rule)
                problems += _rule_problems(key, rule, specs[target], known, joined)
            for spec in specs.values():
                if spec.required and spec.name not in part.columns:
                    problems.append(f"{where}.columns: required column '{spec.name}' is not mapped")
    for table in REQUIRED_TABLES:
        if table not in mapping.tables:
            problems.append(f"tables: required table '{table}' is not mapped")
    return problems


def _rule_problems(
    key: str, rule: ColumnRule, spec: ColumnSpec, sources: set[str], joined: set[str]
) -> list[str]:
    out = []
    for column in alternatives(rule.column):
        prefix, _, _ = column.partition(".")
        if "." in column and prefix not in joined and rule.from_ is None:
            out.append(f"{key}.column: '{prefix}' is not a join of this table")
    if rule.from_ is not None:
        if rule.from_ not in sources:
            out.append(f"{key}.from: unknown source table '{rule.from_}'")
        if not rule.key:
            out.append(f"{key}.key: a lookup needs the key columns to match on")
    elif rule.key:
        out.append(f"{key}.key: only a lookup (from:) matches on a key")
    allowed = _allowed(spec)
    labels = [*(rule.values or {}).values(), *(rule.bands or {}).values(), rule.default]
    if allowed is not None:
        for label in labels:
            if label is not None and label not in allowed:
                out.append(
                    f"{key}: '{label}' is not an allowed value of {spec.name} "
                    f"({', '.join(allowed)})"
                )
    elif rule.values and spec.kind not in ("text", "id"):
        out.append(f"{key}.values: {spec.name} is a {spec.kind} column, not a coded one")
    if rule.values is not None and rule.bands is not None:
        out.append(f"{key}: use values or bands, not both")
    return out


def parse_mapping(raw: object, label: str) -> Mapping:
    """A validated mapping from parsed YAML; ``MappingError`` names every bad key."""
    if not isinstance(raw, dict):
        raise MappingError(f"mapping {label}: must hold a mapping with sources: and tables:")
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc'] if p not in ('str', 'ColumnRule'))}: {e['msg']}"
            for e in exc.errors()
        ]
        raise MappingError(f"mapping {label} is not valid:\n" + "\n".join(lines)) from None
    problems = check_mapping(mapping)
    if problems:
        raise MappingError(
            f"mapping {label} is not valid:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return mapping


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} not found.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MappingError(f"mapping {path.name}: not readable YAML ({exc}).") from None
    return parse_mapping(raw, path.name)


# -- applying a mapping to one part's rows (pure functions on frames) ---------------------


def codes(values: pd.Series) -> pd.Series:
    """Each value as a code key (``_code_key``), missing stays missing."""
    text = values.astype("string").str.strip()
    digits = text.str.fullmatch(r"[+-]?\d+(\.0+)?").fillna(False)
    if digits.any():
        as_int = pd.to_numeric(text[digits], errors="coerce").astype("Int64").astype("string")
        text = text.mask(digits, as_int)
    return text


def map_values(values: pd.Series, rule: ColumnRule, where: str) -> pd.Series:
    """Recode ``values`` by ``rule.values``; unmapped values as ``rule.unmapped`` says."""
    assert rule.values is not None
    keys = codes(values)
    distinct = pd.Series(keys.dropna().unique(), dtype="string")
    if rule.match == "prefix":
        prefixes = rule.values or {}
        ordered = sorted(prefixes, key=len, reverse=True)

        def by_prefix(code: str) -> object:
            return next((prefixes[p] for p in ordered if code.startswith(p)), _UNMAPPED)

        lookup = {c: by_prefix(c) for c in distinct}
    else:
        lookup = {c: rule.values.get(c, _UNMAPPED) for c in distinct}
    unmapped = [c for c, v in lookup.items() if v is _UNMAPPED]
    if unmapped and rule.unmapped == "error":
        examples = ", ".join(repr(c[:16]) for c in sorted(unmapped)[:3])
        raise MappingError(
            f"{where}.values: {len(unmapped)} value(s) of {rule.column} are not in the map "
            f"(e.g. {examples}); add them, or set unmapped: keep (such rows are then "
            "quarantined) or unmapped: missing."
        )
    for code in unmapped:
        lookup[code] = pd.NA if rule.unmapped == "missing" else _KEEP
    mapped = keys.map(lookup)
    kept = mapped.map(lambda v: v is _KEEP).astype(bool)
    out = mapped.where(~kept, values.astype("string")).astype("string")
    return out.where(out.notna(), pd.NA)


_UNMAPPED = object()
_KEEP = object()


def cut_bands(values: pd.Series, bands: dict[float, str]) -> pd.Series:
    """Numbers → the label of the band they fall in (below the lowest: missing); text that
    is not a number is kept as it is, so the contract's category rule quarantines it."""
    number = pd.to_numeric(values, errors="coerce")
    bounds = sorted(bands)
    position = np.searchsorted(np.asarray(bounds, dtype=float), number.to_numpy(float), "right")
    labels = np.array([pd.NA, *[bands[b] for b in bounds]], dtype=object)
    out = pd.Series(labels[np.clip(position, 0, len(bounds))], index=values.index, dtype="string")
    out[number.isna()] = pd.NA
    not_number = values.notna() & number.isna()
    return out.mask(not_number, values.astype("string"))


def aggregate_lookup(
    keys: pd.DataFrame, other: pd.DataFrame, on: dict[str, str], column: str, pick: str
) -> tuple[pd.Series, np.ndarray]:
    """Per row of ``keys``: the value of ``other[column]`` among ``other``'s rows whose key
    matches (the first, or the most frequent), and which of ``other``'s rows were used."""
    right = other[list(on.values())].apply(codes)
    right.columns = list(on.keys())
    values = other[column].astype("string").str.strip()
    table = right.assign(_value=values, _order=np.arange(len(other))).dropna()
    table = table[table["_value"] != ""]
    left = keys[list(on.keys())].apply(codes)
    if pick == "most_frequent":
        counted = (
            table.groupby([*on.keys(), "_value"], sort=False)
            .agg(n=("_order", "size"), first=("_order", "min"))
            .reset_index()
            .sort_values(["n", "first"], ascending=[False, True], kind="stable")
        )
        best = counted.drop_duplicates(list(on.keys()), keep="first")
    else:
        best = table.sort_values("_order", kind="stable").drop_duplicates(
            list(on.keys()), keep="first"
        )
    merged = left.merge(best[[*on.keys(), "_value"]], on=list(on.keys()), how="left")
    used_keys = left.dropna().drop_duplicates()
    used = (
        right.assign(_row=np.arange(len(other)))
        .merge(used_keys, on=list(on.keys()), how="inner")["_row"]
        .to_numpy()
    )
    mask = np.zeros(len(other), dtype=bool)
    mask[used] = True
    return pd.Series(merged["_value"].to_numpy(), index=keys.index, dtype="string"), mask


def join_first(
    left: pd.DataFrame, other: pd.DataFrame, on: dict[str, str], prefix: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Each row of ``left`` with the columns of the first row of ``other`` whose key
    matches (``<prefix>.<column>``; missing where none does), and which of ``other``'s rows
    were used."""
    right_keys = other[list(on.values())].apply(codes)
    right_keys.columns = [f"_k{i}" for i in range(len(on))]
    left_keys = left[list(on.keys())].apply(codes)
    left_keys.columns = right_keys.columns
    if other.empty:  # nothing to join: every joined column is missing
        empty = {f"{prefix}.{c}": pd.Series(pd.NA, index=left.index, dtype="string") for c in other}
        return pd.concat([left, pd.DataFrame(empty, index=left.index)], axis=1), np.zeros(0, bool)
    first = ~right_keys.duplicated(keep="first") & right_keys.notna().all(axis=1)
    index = pd.MultiIndex.from_frame(right_keys[first])
    position = index.get_indexer(pd.MultiIndex.from_frame(left_keys))
    rows = np.flatnonzero(first.to_numpy())
    picked = np.where(position >= 0, rows[np.clip(position, 0, None)], -1)
    columns = {}
    for col in other.columns:
        source = other[col].astype("string") if not _native(other[col]) else other[col]
        taken = (
            source.iloc[np.clip(picked, 0, None)].reset_index(drop=True)
            if len(other)
            else (pd.Series(pd.NA, index=range(len(left)), dtype="string"))
        )
        taken = taken.where(pd.Series(picked >= 0), pd.NA) if len(other) else taken
        columns[f"{prefix}.{col}"] = taken.set_axis(left.index)
    used = np.zeros(len(other), dtype=bool)
    used[picked[picked >= 0]] = True
    return pd.concat([left, pd.DataFrame(columns, index=left.index)], axis=1), used


def _native(values: pd.Series) -> bool:
    """Parquet dates and numbers are passed on in their own type."""
    return pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_numeric_dtype(values)
