"""Turn a table read as text into the typed contract table, flagging rows that break a rule.

Parsing is vectorised per column. Values that cannot be parsed, unknown categories,
out-of-range values, missing required values and duplicate ids are reported as
``problems`` (one row per offending cell: row position, column, rule, value); the pandera
schema of the contract is what decides allowed values and ranges, so the contract is
declared only once.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pipeline.contract import ColumnSpec, column_specs, table_schema
from pipeline.ingest.read import distinct_values
from pipeline.keys import is_text

PROBLEM_COLUMNS = ["row", "column", "rule", "value"]
FUTURE = "future"
MAX_ABS_NUMBER = 1e12

# pandera check name → the rule name used in reports and the quarantine.
_CHECK_RULES = {
    "isin": "unknown_category",
    "greater_than_or_equal_to": "out_of_range",
    "less_than_or_equal_to": "out_of_range",
    "in_range": "out_of_range",
    "not_nullable": "missing_required",
    "field_uniqueness": "duplicate_id",
}


_SEPARATORS = r"[\s\-_]+"


def normalise_label(values: pd.Series) -> pd.Series:
    """Trim, lower-case, and turn runs of spaces, hyphens or underscores into one underscore."""
    return values.str.strip().str.lower().str.replace(_SEPARATORS, "_", regex=True)


def _normalise_one(value: str) -> str:
    return re.sub(_SEPARATORS, "_", str(value).strip().lower())


def _problems(mask: np.ndarray, column: str, rule: str, values: pd.Series) -> pd.DataFrame:
    rows = np.flatnonzero(mask)
    return pd.DataFrame(
        {
            "row": rows,
            "column": column,
            "rule": rule,
            "value": values.iloc[rows].astype(str).to_numpy(),
        }
    )


def _broadcast(mapped: pd.Series, codes: np.ndarray) -> pd.Series:
    """Per-distinct-value results back to one per row; missing rows stay missing."""
    out = pd.Series(mapped).take(np.maximum(codes, 0)).reset_index(drop=True)
    missing = codes < 0
    return out.where(pd.Series(~missing)) if missing.any() else out


def _via_uniques(values: pd.Series, fn) -> pd.Series:
    """Apply ``fn`` to the distinct values only, then broadcast back (dates, codes and labels
    repeat millions of times in a national export; parsing each once is what makes it fast).
    Missing values stay missing."""
    codes, distinct = distinct_values(values)
    mapped = fn(distinct)
    if len(mapped) == 0:
        return fn(values.iloc[:0]).reindex(range(len(values)))
    return _broadcast(mapped, codes)


def _clean(text: pd.Series, markers: tuple[str, ...]) -> tuple[pd.Series, np.ndarray]:
    """Trimmed text, missing where blank or a missing-value marker; and which were markers."""
    stripped = text.str.strip()
    is_marker = stripped.isin(set(markers)).to_numpy(dtype=bool)
    return stripped.where((stripped != "") & ~is_marker), is_marker


def clean_text(values: pd.Series, markers: tuple[str, ...]) -> tuple[pd.Series, int]:
    """Trim text cells; blank cells and missing-value markers ("NA", "null", …) become
    missing. Returns the cleaned column and how many markers were turned into missing.
    Row by row (Arrow kernels): what identifiers and free text need, being nearly all
    distinct; coded columns go through ``_typed_from_distinct`` instead."""
    if not is_text(values):
        return values.reset_index(drop=True), 0
    cleaned, is_marker = _clean(values.astype("str").reset_index(drop=True), markers)
    return cleaned.astype("str"), int(is_marker.sum())


def _parse_column(raw: pd.Series, spec: ColumnSpec, aliases: dict[str, dict[str, str]]):
    """Return (typed values, problem frames) for one column."""
    problems: list[pd.DataFrame] = []
    if spec.kind == "date":
        if isinstance(raw.dtype, pd.DatetimeTZDtype):
            raw = raw.dt.tz_localize(None)  # local calendar date, as written
        if pd.api.types.is_datetime64_any_dtype(raw):
            return raw.dt.normalize().astype("datetime64[s]"), problems  # the date, no time
        text = raw.astype("str")
        parsed = _via_uniques(
            text, lambda u: pd.to_datetime(u.str.strip(), format="%Y-%m-%d", errors="coerce")
        )
        bad = (text.notna() & parsed.isna()).to_numpy()
        problems.append(_problems(bad, spec.name, "unparseable_date", raw))
        return parsed.astype("datetime64[s]"), problems
    if spec.kind in ("number", "integer"):
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            num = raw.astype("float64")
        else:  # text, or a wrong type (dates, booleans) that cannot be a number
            text = (
                raw.astype("str")
                if is_text(raw)
                else pd.Series(pd.NA, index=raw.index, dtype="str")
            )
            num = _via_uniques(
                text, lambda u: pd.Series(pd.to_numeric(u, errors="coerce"), dtype="float64")
            )
        num = num.astype("float64")
        bad = raw.notna().to_numpy() & num.isna().to_numpy()
        problems.append(_problems(bad, spec.name, "not_a_number", raw))
        # Beyond any contract range, and beyond what an integer column can hold.
        huge = (num.abs() > MAX_ABS_NUMBER).fillna(False).to_numpy()
        problems.append(_problems(huge, spec.name, "out_of_range", raw))
        num = num.where(~huge)
        if spec.kind == "integer":
            frac = (num.notna() & (num != np.floor(num))).to_numpy()
            problems.append(_problems(frac, spec.name, "not_an_integer", raw))
            num = num.where(~frac)
            integers = pd.array(num.round().to_numpy(dtype="float64"), dtype="Int64")  # type: ignore[call-overload]  # pandas-stubs: float array to Int64
            return integers, problems
        return num, problems
    if spec.kind == "boolean":
        if str(raw.dtype) in ("bool", "boolean"):
            return raw.astype("boolean"), problems
        codes = {**aliases.get("boolean", {}), **aliases.get(spec.name, {})}
        mapping = {_normalise_one(k): v for k, v in codes.items()}
        text = raw.astype("str")
        mapped = _via_uniques(text, lambda u: normalise_label(u).map(mapping))
        bad = (text.notna() & mapped.isna()).to_numpy()
        problems.append(_problems(bad, spec.name, "not_a_boolean", raw))
        out = mapped.map({"true": True, "false": False})
        return pd.Series(pd.array(out.to_numpy(), dtype="boolean")), problems
    text = raw.astype("str").reset_index(drop=True)
    if spec.kind == "category":
        # Spelling variants of a contract value ("Did not attend", "PHQ9 ") map to it;
        # the alias map adds codes ("5", "DNA"); anything else stays as written.
        lookup = {_normalise_one(v): v for v in spec.allowed or ()}
        lookup |= {_normalise_one(k): v for k, v in aliases.get(spec.name, {}).items()}

        def canonical(u: pd.Series) -> pd.Series:
            return normalise_label(u).map(lookup).fillna(u)

        return _via_uniques(text, canonical).astype("str"), problems
    return text, problems


def markers_for(
    spec: ColumnSpec, aliases: dict[str, dict[str, str]], missing_markers: tuple[str, ...]
) -> tuple[str, ...]:
    """The missing-value markers that apply to one column: a marker that spells an allowed
    value of the column ("None" for homework "none") is that value, not a missing cell."""
    meaningful = set(spec.allowed or ()) | set(aliases.get(spec.name, {}))
    if spec.kind == "boolean":
        meaningful |= set(aliases.get("boolean", {}))
    meaningful = {_normalise_one(v) for v in meaningful}
    return tuple(m for m in missing_markers if _normalise_one(m) not in meaningful)


Distinct = Callable[[str], tuple[np.ndarray, pd.Series]]
"""A column's ``distinct_values`` by name (``RawTable.distinct``: computed once per table)."""


def _typed_from_distinct(
    codes: np.ndarray,
    distinct: pd.Series,
    spec: ColumnSpec,
    aliases: dict[str, dict[str, str]],
    markers: tuple[str, ...],
):
    """A coded text column (dates, numbers, categories, booleans) cleaned and parsed once
    per distinct value, then broadcast to the rows: (values, problem frames, markers)."""
    cleaned, is_marker = _clean(distinct.astype("str").reset_index(drop=True), markers)
    per_value = np.bincount(codes[codes >= 0], minlength=len(distinct))
    typed, found = _parse_column(cleaned.astype("str"), spec, aliases)
    rows = []
    for p in found:
        if len(p) == 0:
            continue
        hit = np.flatnonzero(np.isin(codes, p["row"].to_numpy()))
        value = pd.Series(p["value"].to_numpy(), index=p["row"].to_numpy())
        rows.append(
            pd.DataFrame(
                {
                    "row": hit,
                    "column": p["column"].iloc[0],
                    "rule": p["rule"].iloc[0],
                    "value": value.reindex(codes[hit]).to_numpy(),
                }
            )
        )
    return _broadcast(pd.Series(typed), codes), rows, int(per_value[is_marker].sum())


def _typed_column(
    raw: pd.Series,
    spec: ColumnSpec,
    aliases: dict[str, dict[str, str]],
    missing_markers: tuple[str, ...],
    distinct: Distinct | None = None,
):
    """One column cleaned (markers read as missing) and parsed: (values, problem frames,
    markers read as missing)."""
    column_markers = markers_for(spec, aliases, missing_markers)
    if is_text(raw) and spec.kind not in ("id", "string"):
        codes, values = distinct(spec.name) if distinct else distinct_values(raw)
        if len(values):
            return _typed_from_distinct(codes, values, spec, aliases, column_markers)
    cleaned, n_markers = clean_text(raw, column_markers)
    values, found = _parse_column(cleaned, spec, aliases)
    return values, found, n_markers


def parse_column(
    table: str,
    raw: pd.DataFrame,
    column: str,
    aliases: dict[str, dict[str, str]],
    missing_markers: tuple[str, ...] = (),
) -> pd.Series:
    """One column typed exactly as ``parse_table`` types it (trimmed, markers missing),
    without any rule: what the Dask engine hashes to place a row in its episode's bucket."""
    spec = next(s for s in column_specs(table) if s.name == column)
    values, _, _ = _typed_column(raw[column], spec, aliases, missing_markers)
    return pd.Series(values).reset_index(drop=True)


def parse_table(
    table: str,
    raw: pd.DataFrame,
    aliases: dict[str, dict[str, str]],
    missing_markers: tuple[str, ...] = (),
    distinct: Distinct | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Typed contract table (all rows, bad cells as parsed), the problems found, and per
    column how many missing-value markers were read as missing.

    Never mutates ``raw``. Row positions in ``problems`` index ``raw``'s rows.
    ``distinct`` supplies columns' distinct values already computed (``RawTable.distinct``).
    """
    typed, problems, markers = {}, [], {}
    specs = [s for s in column_specs(table) if s.name in raw.columns]
    for spec in specs:
        values, found, n_markers = _typed_column(
            raw[spec.name], spec, aliases, missing_markers, distinct
        )
        if n_markers:
            markers[spec.name] = n_markers
        typed[spec.name] = values
        problems += found
    df = pd.DataFrame(typed)

    # Appointments coded as being in the future (NHS code 0) are future-dated bookings.
    if "status" in df:
        future = (df["status"] == FUTURE).fillna(False).to_numpy()
        problems.append(_problems(future, "status", "future_date", raw["status"]))
        df.loc[future, "status"] = pd.NA
    already = pd.concat(problems, ignore_index=True) if problems else None

    # Duplicate ids: keep the first occurrence, flag the rest.
    for spec in specs:
        if spec.unique:
            dup = df[spec.name].duplicated(keep="first") & df[spec.name].notna()
            problems.append(_problems(dup.to_numpy(), spec.name, "duplicate_id", raw[spec.name]))

    # Categories, ranges and required values: decided by the pandera contract.
    schema = table_schema(table)
    checked = schema.update_columns(
        {name: {"unique": False} for name, col in schema.columns.items() if col.unique}
    )
    # Cells that already failed to parse are missing here; do not report them twice.
    try:
        checked.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        fc = err.failure_cases
        fc = fc[fc["index"].notna() & fc["column"].notna()]
        for (column, check), grp in fc.groupby(["column", "check"], sort=True):
            rule = _CHECK_RULES.get(str(check).split("(")[0], "contract_violation")
            rows = grp["index"].astype(int).to_numpy()
            mask = np.zeros(len(df), dtype=bool)
            mask[rows] = True
            if rule == "missing_required" and already is not None:
                prior = already.loc[already["column"] == column, "row"].to_numpy()
                mask[prior] = False
            problems.append(_problems(mask, str(column), rule, raw[column]))
    found = [p for p in problems if len(p)]
    out = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=PROBLEM_COLUMNS)
    return df, out.sort_values(["row", "column"], kind="stable").reset_index(drop=True), markers
