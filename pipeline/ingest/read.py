"""Find and read the tables of an input folder, as text, remembering source line numbers.

Everything here concerns the *whole input*: a missing required table or column, an
unreadable file, a file that is not UTF-8. Such problems raise ``InputError`` with a
message a data manager can act on, and nothing is written.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
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


def _read_csv(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name}: not UTF-8 text (byte {exc.start} of the file). Re-save the export "
            "as UTF-8 CSV."
        ) from None
    except OSError as exc:
        raise InputError(f"{path.name}: cannot be read ({exc.strerror}).") from None
    if not header:
        raise InputError(f"{path.name}: the file is empty; a header row is required.")
    names = [h.strip() for h in header]
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        raise InputError(f"{path.name}: column name(s) repeated in the header: {', '.join(dupes)}.")
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
            skip_blank_lines=False,
            on_bad_lines="error",
            engine="c",
        )
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text (byte {exc.start}).") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path.name}: not a readable CSV file ({exc}).") from None
    df.columns = names
    lines = pd.Series(df.index.to_numpy() + 2, index=df.index)
    blank = df.isna().all(axis=1)
    return df[~blank].reset_index(drop=True), lines[~blank].reset_index(drop=True)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    try:
        df = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"{path.name}: not a readable Parquet file ({exc}).") from None
    return df, pd.Series(df.index.to_numpy() + 1, index=df.index)


def read_table(table: str, path: Path) -> RawTable:
    """Read one table; raise InputError if a required contract column is missing."""
    df, lines = _read_csv(path) if path.suffix == ".csv" else _read_parquet(path)
    specs = column_specs(table)
    missing = [c.name for c in specs if c.required and c.name not in df.columns]
    if missing:
        raise InputError(
            f"{path.name}: required column(s) missing: {', '.join(missing)}. "
            f"Columns found: {', '.join(map(str, df.columns))}."
        )
    contract = [c.name for c in specs if c.name in df.columns]
    extra = [str(c) for c in df.columns if c not in contract]
    return RawTable(table, path, df[contract], lines, extra)


def read_dataset(folder: str | Path) -> dict[str, RawTable]:
    """Read every contract table present in ``folder`` (required ones must exist)."""
    return {t: read_table(t, p) for t, p in find_tables(folder).items()}
