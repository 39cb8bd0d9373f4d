"""Find and read the tables of an input folder, as text, remembering source line numbers.

Everything here concerns the *whole input*: a missing required table or column, an
unreadable file, a file that is not UTF-8. Such problems raise ``InputError`` with a
message a data manager can act on, and nothing is written.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract import OPTIONAL_TABLES, REQUIRED_TABLES, column_specs


class InputError(Exception):
    """A problem with the input as a whole: the run stops and writes nothing."""


@dataclass
class RawTable:
    name: str
    path: Path
    data: pd.DataFrame
    """Contract columns as read (text for CSV; native types for Parquet)."""
    lines: pd.Series
    """Source line number of each row (CSV: header = line 1; Parquet: row number + 1)."""
    extra_columns: list[str]
    all_columns: pd.DataFrame | None = None
    """Every column as read, contract or not (for the identifier scan only)."""
    malformed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"line": pd.Series(dtype=int), "text": ""})
    )
    """CSV lines with more fields than the header: line number and raw text."""
    empty_lines: list[int] = field(default_factory=list)
    """Lines with no value at all (skipped; listed in the ingest report)."""
    line_numbers_exact: bool = True
    """False when a quoted value spans lines, which shifts later line numbers."""
    files: pd.Series | None = None
    """Source file of each row, when the rows come from several files (a mapped layout
    gathering one contract table from two source tables); None: all from ``path``."""
    _distinct: dict[str, tuple[np.ndarray, pd.Series]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def n_read(self) -> int:
        return len(self.data) + len(self.malformed)

    def distinct(self, column: str) -> tuple[np.ndarray, pd.Series]:
        """``distinct_values`` of a column as read, computed once: the identifier scan and
        the parser both work on distinct values, and factorising a column of a national
        export takes a good part of a second."""
        if column not in self._distinct:
            source = self.all_columns if self.all_columns is not None else self.data
            self._distinct[column] = distinct_values(source[column])
        return self._distinct[column]

    def forget_distinct(self) -> None:
        """Release the cached distinct values (a code per row and column) once parsed."""
        self._distinct.clear()


def distinct_values(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's code (-1 for missing) and the distinct values, in ``values``' dtype."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = (
        pd.Series(uniques, dtype=values.dtype)
        if len(uniques)
        else pd.Series([], dtype=values.dtype)
    )
    return codes, distinct


def find_tables(folder: str | Path) -> dict[str, Path]:
    """Map table name → file for every contract table present in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"Input folder {folder} does not exist or is not a folder.")
    found: dict[str, Path] = {}
    for table in REQUIRED_TABLES + OPTIONAL_TABLES:
        candidates = [folder / f"{table}.{ext}" for ext in ("csv", "parquet")]
        present = [p for p in candidates if p.exists()]
        if len(present) > 1:
            raise InputError(
                f"{folder}: both {table}.csv and {table}.parquet exist; keep exactly one."
            )
        if present:
            found[table] = present[0]
    missing = [t for t in REQUIRED_TABLES if t not in found]
    if missing:
        names = ", ".join(f"{t}.csv (or {t}.parquet)" for t in missing)
        raise InputError(
            f"{folder}: required table file(s) missing: {names}. "
            f"Files present: {', '.join(sorted(p.name for p in folder.iterdir())) or 'none'}."
        )
    return found


_EXTRA = "\x00extra field"  # sentinel column name no header can carry
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields?, saw (\d+)")


def _lines_text(path: Path, wanted: set[int]) -> dict[int, str]:
    """The raw text of the requested (1-based) physical lines."""
    out: dict[int, str] = {}
    with path.open("r", encoding="utf-8", newline="") as fh:
        for number, text in enumerate(fh, start=1):
            if number in wanted:
                out[number] = text.rstrip("\r\n")
                if len(out) == len(wanted):
                    break
    return out


def _read_csv(path: Path) -> RawTable:
    names = read_header(path)
    if not names or not any(names):
        raise InputError(f"{path.name}: the file is empty; a header row is required.")
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        raise InputError(f"{path.name}: column name(s) repeated in the header: {', '.join(dupes)}.")
    if "" in names:
        raise InputError(f"{path.name}: a column in the header row has no name.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8-sig",
                skip_blank_lines=False,
                on_bad_lines="warn",
                engine="c",
                header=None,
                skiprows=1,
                names=[*names, _EXTRA],  # a sentinel column catches one field too many
                index_col=False,  # never infer an index from a row with one field too many
            )
        except UnicodeDecodeError as exc:
            raise InputError(f"{path.name}: not UTF-8 text (byte {exc.start}).") from None
        except (pd.errors.ParserError, ValueError, csv.Error) as exc:
            raise InputError(f"{path.name}: not a readable CSV file ({exc}).") from None
    bad = {int(m.group(1)) for w in caught for m in _BAD_LINE.finditer(str(w.message))}
    # Physical lines of the parsed rows: data lines from 2 on, minus the skipped ones.
    candidates = np.arange(2, 2 + len(df) + len(bad))
    all_lines = pd.Series(np.setdiff1d(candidates, np.asarray(sorted(bad), dtype=int))[: len(df)])
    extra = df[_EXTRA].notna().to_numpy()  # exactly one field too many
    bad = sorted(bad | set(all_lines[extra].tolist()))
    df = df[~extra].drop(columns=_EXTRA).reset_index(drop=True)
    all_lines = all_lines[~extra].reset_index(drop=True)
    texts = _lines_text(path, set(bad)) if bad else {}
    malformed = pd.DataFrame(
        {"line": pd.Series(bad, dtype=int), "text": [texts.get(b, "") for b in bad]}
    )
    lines = all_lines
    exact = (
        not df.apply(lambda col: col.str.contains("\n", regex=False).any()).any()
        if len(df)
        else True
    )
    empty = df.isna().all(axis=1).to_numpy()
    kept = df[~empty].reset_index(drop=True)
    return RawTable(
        path.stem,
        path,
        kept,
        lines[~empty].reset_index(drop=True),
        [],
        malformed=malformed,
        empty_lines=lines[empty].tolist(),
        line_numbers_exact=bool(exact),
    )


# Nullable pandas types, so an integer column with gaps stays integer (ids, NHS codes).
_PARQUET_TYPES = {
    pa.int8(): pd.Int64Dtype(),
    pa.int16(): pd.Int64Dtype(),
    pa.int32(): pd.Int64Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.Int64Dtype(),
    pa.uint16(): pd.Int64Dtype(),
    pa.uint32(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _read_parquet(path: Path) -> RawTable:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path.name}: not a readable Parquet file ({exc}).") from None
    # Nested values (lists, structs, maps) are not plain cells: keep them as text.
    for i, fld in enumerate(table.schema):
        if pa.types.is_nested(fld.type) or pa.types.is_dictionary(fld.type):
            table = table.set_column(
                i,
                fld.name,
                pa.array(
                    [None if v is None else str(v) for v in table.column(i).to_pylist()],
                    type=pa.string(),
                ),
            )
    df = table.to_pandas(types_mapper=_PARQUET_TYPES.get)
    df.columns = [str(c) for c in df.columns]
    return RawTable(path.stem, path, df, pd.Series(np.arange(len(df)) + 1), [])


def read_header(path: Path) -> list[str]:
    """Column names of a table file, without reading its body."""
    if path.suffix == ".parquet":
        try:
            return [str(n) for n in pq.read_schema(path).names]
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(f"{path.name}: not a readable Parquet file ({exc}).") from None
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name}: not UTF-8 text (byte {exc.start} of the file). Re-save the export "
            "as UTF-8 CSV."
        ) from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"{path.name}: cannot be read ({exc}).") from None
    return [h.strip() for h in header or []]


def _require_columns(table: str, path: Path, columns: list[str]) -> None:
    missing = [c.name for c in column_specs(table) if c.required and c.name not in columns]
    if missing:
        raise InputError(
            f"{path.name}: required column(s) missing: {', '.join(missing)}. "
            f"Columns found: {', '.join(map(str, columns)) or 'none'}."
        )


def check_headers(files: dict[str, Path]) -> None:
    """Every required column present in every file (cheap: headers only)."""
    for table, path in files.items():
        _require_columns(table, path, read_header(path))


def read_raw(path: Path) -> RawTable:
    """Every column of one table file as read (CSV as text, Parquet in its own types)."""
    return _read_csv(path) if path.suffix.lower() == ".csv" else _read_parquet(path)


def read_table(table: str, path: Path) -> RawTable:
    """Read one table; raise InputError if a required contract column is missing."""
    raw = read_raw(path)
    df = raw.data
    _require_columns(table, path, [str(c) for c in df.columns])
    specs = column_specs(table)
    contract = [c.name for c in specs if c.name in df.columns]
    raw.name = table
    raw.extra_columns = [str(c) for c in df.columns if c not in contract]
    raw.all_columns = df
    raw.data = df[contract]
    return raw


def read_dataset(folder: str | Path) -> dict[str, RawTable]:
    """Read every contract table present in ``folder`` (required ones must exist)."""
    files = find_tables(folder)
    check_headers(files)
    return {t: read_table(t, p) for t, p in files.items()}
