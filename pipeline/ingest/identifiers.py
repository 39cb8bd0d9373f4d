"""Refuse direct identifiers: by column name, and by what values look like.

Input must already be de-identified. A column whose name suggests a direct identifier, or
any value that looks like an e-mail address, a phone number, an NHS number (10 digits that
pass the modulus-11 check) or a US social security number, stops the run before anything is
written. Messages name the file, column and example line numbers but never echo the value:
it is masked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.read import distinct_values

# Column-name tokens (after splitting on non-letters) that suggest a direct identifier.
IDENTIFIER_NAME_TOKENS = {
    "name",
    "names",
    "firstname",
    "forename",
    "surname",
    "lastname",
    "fullname",
    "email",
    "mail",
    "phone",
    "telephone",
    "mobile",
    "tel",
    "fax",
    "address",
    "street",
    "postcode",
    "postal",
    "zip",
    "zipcode",
    "dob",
    "birth",
    "birthdate",
    "birthday",
    "nhs",
    "ssn",
    "mrn",
    "passport",
    "licence",
    "license",
    "notes",
    "note",
    "freetext",
    "comment",
    "comments",
    "narrative",
}
IDENTIFIER_NAME_PHRASES = (
    "date_of_birth",
    "free_text",
    "social_security",
    "medical_record",
    "hospital_number",
    "e_mail",
    "post_code",
    "zip_code",
    "local_patient",  # NHS data sets' LocalPatientId: the provider's own patient number
)

# RE2 patterns (pyarrow.compute): searched anywhere in a cell.
VALUE_PATTERNS = {
    "an e-mail address": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}",
    "a phone number": (
        r"(^|[^\w])(\+44\s?\(?0?\)?\s?\d{2,4}|\(?0\d{2,4}\)?)[\s\-]?\d{3,4}[\s\-]?\d{3,4}([^\w]|$)"
        r"|(^|[^\w])\+\d{1,3}[\s\-]?\(?\d{1,4}\)?([\s\-]?\d){6,10}([^\w]|$)"
        r"|(^|[^\w])\(\d{3}\)\s?\d{3}[\-\s]\d{4}([^\w]|$)"
    ),
    "a US social security number": r"(^|[^\w])\d{3}-\d{2}-\d{4}([^\w]|$)",
}
NHS_CANDIDATE = r"(?:^|[^0-9A-Za-z_])([0-9]{3})[ \-]?([0-9]{3})[ \-]?([0-9]{4})(?:[^0-9A-Za-z_]|$)"


@dataclass(frozen=True)
class IdentifierFinding:
    file: str
    column: str
    kind: str
    lines: tuple[int, ...]
    masked_example: str

    def message(self) -> str:
        where = ", ".join(map(str, self.lines[:5]))
        more = f" and {len(self.lines) - 5} more" if len(self.lines) > 5 else ""
        return (
            f"{self.file}, column '{self.column}': {len(self.lines)} value(s) look like "
            f"{self.kind} (e.g. {self.masked_example}; line(s) {where}{more})."
        )


def mask(value: str) -> str:
    """Keep the first character and the length; hide the rest."""
    text = str(value)
    return (text[:1] + "*" * (len(text) - 1)) if text else ""


def suspicious_column_name(name: str) -> bool:
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", str(name))  # NHSNumber → NHS_Number
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced)  # dateOfBirth → date_Of_Birth
    norm = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    tokens = set(norm.split("_"))
    return bool(tokens & IDENTIFIER_NAME_TOKENS) or any(p in norm for p in IDENTIFIER_NAME_PHRASES)


def nhs_number_valid(digits: np.ndarray) -> np.ndarray:
    """Modulus-11 check for an (n, 10) array of digits (vectorised)."""
    weights = np.arange(10, 1, -1)
    total = (digits[:, :9] * weights).sum(axis=1)
    check = 11 - total % 11
    check = np.where(check == 11, 0, check)
    return (check != 10) & (check == digits[:, 9])


def _as_text(values: pd.Series) -> pa.Array | None:
    """Cell texts as an Arrow string array. Whole numbers stored as floats (an integer column
    with gaps) are written as integers; other numbers, booleans and dates cannot hold an
    identifier and are skipped."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return None
    if pd.api.types.is_float_dtype(values):
        whole = values[np.isfinite(values) & (values == np.floor(values)) & (values.abs() < 1e15)]
        values = whole.astype("int64").astype("string").reindex(values.index)
    arr = pa.array(values.astype("string"), type=pa.string(), from_pandas=True)
    return arr


def _regex_hits(arr: pa.Array, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(
        zero_copy_only=False
    )


def scan_values(
    values: pd.Series,
    lines: pd.Series,
    factorized: tuple[np.ndarray, pd.Series] | None = None,
) -> list[tuple[str, np.ndarray, str]]:
    """(kind, line numbers, masked example) for every identifier kind found in a column.

    Patterns run once per distinct value (RE2 via pyarrow), then hits map back to rows.
    ``factorized``: the column's ``distinct_values``, if already computed.
    """
    if len(values) == 0:
        return []
    codes, uniques = factorized if factorized is not None else distinct_values(values)
    arr = _as_text(uniques)
    if arr is None or len(arr) == 0:
        return []
    found = []

    def report(kind: str, unique_hits: np.ndarray) -> None:
        rows = np.flatnonzero(np.isin(codes, unique_hits))
        if rows.size == 0:
            return
        found.append((kind, lines.to_numpy()[rows], mask(arr[int(unique_hits[0])].as_py())))

    for kind, pattern in VALUE_PATTERNS.items():
        hit = _regex_hits(arr, pattern)
        if hit.any():
            report(kind, np.flatnonzero(hit))
    candidate = np.flatnonzero(_regex_hits(arr, NHS_CANDIDATE))
    if candidate.size:
        texts = pd.Series(arr.take(pa.array(candidate)).to_pylist(), dtype="string")
        # Same ASCII-only classes as RE2 ([0-9] digits, no Unicode letters as boundaries).
        parts = texts.str.extract(re.compile(NHS_CANDIDATE, re.ASCII)).fillna("")
        joined = parts[0] + parts[1] + parts[2]
        ok = (joined.str.len() == 10).to_numpy()
        candidate, joined = candidate[ok], joined[ok]
        digits = joined.to_numpy(dtype="U10").view("U1").reshape(-1, 10).astype(int)
        valid = nhs_number_valid(digits) if len(digits) else np.zeros(0, dtype=bool)
        if valid.any():
            report("an NHS number", candidate[valid])
    return found


def find_identifiers(
    file: str,
    frame: pd.DataFrame,
    lines: pd.Series,
    distinct: Callable[[str], tuple[np.ndarray, pd.Series]] | None = None,
) -> list[IdentifierFinding]:
    """Every identifier-like column name and value in one table (contract and extra columns).
    ``distinct``: the columns' distinct values by name (``RawTable.distinct``), shared with
    the parser so each column is factorised once."""
    findings = []
    for column in frame.columns:
        if suspicious_column_name(column):
            findings.append(
                IdentifierFinding(
                    file, str(column), "a direct identifier by its name", (), "values not inspected"
                )
            )
            continue
        factorized = distinct(column) if distinct is not None else None
        for kind, hit_lines, example in scan_values(frame[column], lines, factorized):
            findings.append(
                IdentifierFinding(
                    file, str(column), kind, tuple(int(x) for x in hit_lines), example
                )
            )
    return findings
