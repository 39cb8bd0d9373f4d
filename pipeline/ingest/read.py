"""Find and read the tables of an input folder, as text, remembering source line numbers.

Everything here concerns the *whole input*: a missing required table or column, an
unreadable file, a file that is not UTF-8. Such problems raise ``InputError`` with a
message a data manager can act on, and nothing is written.
"""

from __future__ import annotations

import csv
import os
import re
import stat
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract import (
    MAX_COLUMNS,
    MAX_FIELD_CHARS,
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    column_specs,
)


class InputError(Exception):
    """A problem with the input as a whole: the run stops and writes nothing."""


_SNIFF_BYTES = 1 << 16


def check_file(path: Path, folder: Path | None = None) -> None:
    """Refuse, before opening it, anything that is not a plain file of the export: a folder,
    a named pipe, a socket or a device (reading them hangs or makes no sense), and a
    symbolic link that leads out of the export folder."""
    where = f"{label(path.name)}"
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise InputError(f"{where}: cannot be read ({exc.strerror}).") from None
    if stat.S_ISLNK(st.st_mode):
        home = (folder if folder is not None else path.parent).resolve()
        target = path.resolve()
        if not target.is_relative_to(home):
            raise InputError(
                f"{where}: a symbolic link to a file outside the export folder; copy the "
                "file itself into the export folder."
            )
        try:
            st = os.stat(path)
        except OSError as exc:
            raise InputError(f"{where}: a broken symbolic link ({exc.strerror}).") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{where}: a folder, not a table file.")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{where}: not a regular file (a named pipe, socket or device); export the table "
            "to a file."
        )


def label(text: object) -> str:
    """``text`` (a file or column name taken from the input) as it may be shown in a
    message: unchanged when it reads as a harmless name, masked otherwise."""
    from pipeline.ingest.identifiers import safe_label  # the scan lives there

    return safe_label(str(text))


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
    """Source line numbers are physical lines of the file (always true since records are
    counted independently of the parser; kept in the report for continuity)."""
    records: int | None = None
    """Data records in the file counted independently of the parser (physical lines when no
    quoted value spans lines, else the csv module's records); None for Parquet."""
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
        present = [p for p in candidates if os.path.lexists(p)]
        for p in present:
            check_file(p, folder)
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
            f"Files present: {files_present(folder)}."
        )
    return found


def files_present(folder: Path) -> str:
    """The folder's file names for a message, each masked unless it reads as harmless."""
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(label(n) for n in names[:30])
    more = f" and {len(names) - 30} more" if len(names) > 30 else ""
    return (shown + more) or "none"


_EXTRA = "\x00extra field"  # sentinel column name no header can carry
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields?, saw (\d+)")


def sniff_text(path: Path) -> None:
    """Refuse a CSV file that is not UTF-8 text before parsing it: UTF-16 or UTF-32 (with
    or without a byte-order mark) and other binary files hold NUL bytes, which UTF-8 text
    never does; without this check UTF-16 reads as columns named ``e p i s o d e _ i d``."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    boms = {
        b"\xff\xfe\x00\x00": "UTF-32",
        b"\x00\x00\xfe\xff": "UTF-32",
        b"\xff\xfe": "UTF-16",
        b"\xfe\xff": "UTF-16",
    }
    kind = next((k for bom, k in boms.items() if head.startswith(bom)), None)
    if kind is None and b"\x00" in head:
        nul = head.count(b"\x00") / max(len(head), 1)
        kind = "UTF-32" if nul > 0.6 else "UTF-16" if nul > 0.3 else "a binary file"
    if kind is not None:
        raise InputError(
            f"{label(path.name)}: not UTF-8 text (it looks like {kind}). Re-save the export "
            "as UTF-8 CSV."
        )


def _count_lines(path: Path) -> int:
    """Physical lines of a file (a last line without a line break counts), read in blocks."""
    n, last = 0, b"\n"
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _header_checked(path: Path, names: list[str]) -> list[str]:
    if len(names) > MAX_COLUMNS:
        raise InputError(
            f"{label(path.name)}: the header has {len(names):,} columns, more than the "
            f"{MAX_COLUMNS:,} an export may have; check that the file is the table it should be."
        )
    if not names or not any(names):
        raise InputError(f"{label(path.name)}: the file is empty; a header row is required.")
    counts = Counter(names)
    dupes = sorted(h for h, n in counts.items() if n > 1)
    if dupes:
        raise InputError(
            f"{label(path.name)}: column name(s) repeated in the header: "
            f"{', '.join(label(d) for d in dupes)}."
        )
    if "" in counts:
        raise InputError(f"{label(path.name)}: a column in the header row has no name.")
    return names


def _check_field_lengths(path: Path, df: pd.DataFrame, lines: pd.Series) -> None:
    for column in df.columns:
        lengths = df[column].str.len()
        if len(lengths) and lengths.max() > MAX_FIELD_CHARS:
            row = int(np.argmax(lengths.fillna(0).to_numpy()))
            raise InputError(
                f"{label(path.name)}, line {int(lines.iloc[row])}, column {label(column)}: a "
                f"value of {int(lengths.iloc[row]):,} characters, more than the "
                f"{MAX_FIELD_CHARS:,} a cell may hold (codes, dates and numbers are short; "
                "free text is not analysed and must not be exported)."
            )


def _records(path: Path) -> list[tuple[int, int, list[str]]]:
    """Every record of a CSV file as (first physical line, last physical line, fields), by
    the csv module: the slow, exact reading used when a quoted value spans lines."""
    out = []
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            start = 1
            for fields in reader:
                out.append((start, reader.line_num, fields))
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise InputError(f"{label(path.name)}: not UTF-8 text (byte {exc.start}).") from None
    except csv.Error as exc:
        raise InputError(
            f"{label(path.name)}: not a readable CSV file ({_csv_error(exc)})."
        ) from None
    return out


def _csv_error(exc: Exception) -> str:
    """The csv module's error in the project's words (its field limit is 131,072)."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a value longer than the {MAX_FIELD_CHARS:,} characters a cell may hold"
    return text


def _physical_text(path: Path, spans: dict[int, tuple[int, int]]) -> dict[int, str]:
    """The raw text of each record ``key → (first line, last line)``, line breaks kept
    between the physical lines of one record."""
    wanted: dict[int, list[int]] = {}
    for key, (first, last) in spans.items():
        for number in range(first, last + 1):
            wanted.setdefault(number, []).append(key)
    parts: dict[int, list[str]] = {k: [] for k in spans}
    if not wanted:
        return {}
    stop = max(wanted)
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        for number, text in enumerate(fh, start=1):
            for key in wanted.get(number, ()):
                parts[key].append(text)
            if number >= stop:
                break
    return {k: "".join(v).rstrip("\r\n") for k, v in parts.items()}


def _csv_exact(path: Path, names: list[str]) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Rows, their first physical line, and malformed records (line and raw text), read
    with the csv module (quoted values spanning lines)."""
    records = _records(path)[1:]  # the first record is the header
    width = len(names)
    kept = [(first, f) for first, _, f in records if len(f) <= width]
    bad = {i: (first, last) for i, (first, last, f) in enumerate(records) if len(f) > width}
    rows = [f + [""] * (width - len(f)) if f else [""] * width for _, f in kept]
    df = pd.DataFrame(rows, columns=names, dtype="str") if rows else pd.DataFrame(
        {n: pd.Series(dtype="str") for n in names}
    )
    df = df.where(df != "")
    texts = _physical_text(path, bad)
    malformed = pd.DataFrame(
        {
            "line": pd.Series([first for first, _ in bad.values()], dtype=int),
            "text": [texts.get(i, "") for i in bad],
        }
    )
    return df, pd.Series([first for first, _ in kept], dtype=int), malformed


def _read_csv(path: Path) -> RawTable:
    names = _header_checked(path, read_header(path))
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
            raise InputError(f"{label(path.name)}: not UTF-8 text (byte {exc.start}).") from None
        except (pd.errors.ParserError, ValueError, csv.Error) as exc:
            raise InputError(f"{label(path.name)}: not a readable CSV file ({exc}).") from None
    # pandas numbers the records it skips (header = 1), not the physical lines.
    skipped = {int(m.group(1)) for w in caught for m in _BAD_LINE.finditer(str(w.message))}
    physical = _count_lines(path)
    if physical == 1 + len(df) + len(skipped):
        # Every record is one physical line: record numbers are line numbers.
        records = physical - 1
        candidates = np.arange(2, 2 + len(df) + len(skipped))
        kept_lines = np.setdiff1d(candidates, np.asarray(sorted(skipped), dtype=int))
        all_lines = pd.Series(kept_lines[: len(df)])
        extra = df[_EXTRA].notna().to_numpy()  # exactly one field too many
        bad = sorted(skipped | set(all_lines[extra].tolist()))
        df = df[~extra].drop(columns=_EXTRA).reset_index(drop=True)
        all_lines = all_lines[~extra].reset_index(drop=True)
        texts = _physical_text(path, {b: (b, b) for b in bad}) if bad else {}
        malformed = pd.DataFrame(
            {"line": pd.Series(bad, dtype=int), "text": [texts.get(b, "") for b in bad]}
        )
    else:
        # A quoted value spans lines (or line breaks are not \n): read again, exactly.
        del df
        df, all_lines, malformed = _csv_exact(path, names)
        records = len(df) + len(malformed)
    _check_field_lengths(path, df, all_lines)
    empty = df.isna().all(axis=1).to_numpy()
    kept = df[~empty].reset_index(drop=True)
    return RawTable(
        path.stem,
        path,
        kept,
        all_lines[~empty].reset_index(drop=True),
        [],
        malformed=malformed,
        empty_lines=all_lines[empty].tolist(),
        records=records,
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
    _header_checked(path, read_header(path))
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"{label(path.name)}: not a readable Parquet file ({exc}).") from None
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
    """Column names of a table file, without reading its body (the file is checked first:
    a plain file of the export, and for CSV UTF-8 text)."""
    check_file(path)
    if path.suffix.lower() == ".parquet":
        try:
            return [str(n) for n in pq.read_schema(path).names]
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(
                f"{label(path.name)}: not a readable Parquet file ({exc})."
            ) from None
    sniff_text(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label(path.name)}: not UTF-8 text (byte {exc.start} of the file). Re-save the "
            "export as UTF-8 CSV."
        ) from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"{label(path.name)}: cannot be read ({_csv_error(exc)}).") from None
    if header is not None and len(header) > MAX_COLUMNS:
        _header_checked(path, header)
    return [h.strip() for h in header or []]


def _require_columns(table: str, path: Path, columns: list[str]) -> None:
    missing = [c.name for c in column_specs(table) if c.required and c.name not in columns]
    if missing:
        shown = ", ".join(label(c) for c in columns[:40])
        more = f" and {len(columns) - 40} more" if len(columns) > 40 else ""
        raise InputError(
            f"{label(path.name)}: required column(s) missing: {', '.join(missing)}. "
            f"Columns found: {shown + more or 'none'}."
        )


def check_headers(files: dict[str, Path]) -> None:
    """Every required column present in every file (cheap: headers only)."""
    for table, path in files.items():
        _require_columns(table, path, read_header(path))


def read_raw(path: Path) -> RawTable:
    """Every column of one table file as read (CSV as text, Parquet in its own types)."""
    check_file(path)
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
