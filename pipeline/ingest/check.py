"""Check a whole dataset against the contract: typed tables, accepted rows, problems."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.config import IngestParams
from pipeline.contract import column_specs
from pipeline.ingest.parse import parse_table
from pipeline.ingest.read import InputError, RawTable
from pipeline.ingest.rules import table_rule_problems


@dataclass
class CheckedTable:
    name: str
    raw: RawTable
    typed: pd.DataFrame
    """Every parsed row (problem cells may be missing)."""
    problems: pd.DataFrame
    """One row per broken rule: row, column, rule, value, line."""
    accepted_mask: np.ndarray
    markers: dict[str, int] = field(default_factory=dict)
    """Per column: missing-value markers ("NA", "null", …) read as missing."""
    extract: pd.Timestamp | None = None
    """Extract date in force for this table's rules (None before sessions are seen)."""

    @functools.cached_property
    def accepted(self) -> pd.DataFrame:
        """The rows that passed every rule (computed once: callers must not mutate it)."""
        return self.typed[self.accepted_mask].reset_index(drop=True)

    @property
    def n_read(self) -> int:
        """Rows read: parsed rows plus malformed lines (empty lines are not rows)."""
        return self.raw.n_read

    @property
    def n_accepted(self) -> int:
        return int(self.accepted_mask.sum())

    @property
    def n_quarantined(self) -> int:
        return int((~self.accepted_mask).sum()) + len(self.raw.malformed)

    def rows_by_rule(self) -> dict[str, int]:
        """Quarantined rows per rule (a row breaking two rules counts under both)."""
        counts = self.problems.drop_duplicates(["row", "rule"])["rule"].value_counts()
        out = {str(k): int(v) for k, v in counts.sort_index().items()}
        if len(self.raw.malformed):
            out["malformed_row"] = len(self.raw.malformed)
        return out

    def values_recoded(self) -> dict[str, int]:
        """Per category/boolean column: accepted values whose spelling was mapped.

        Compared on every row and counted over the accepted ones (selecting the accepted
        rows of the raw table first copied every column of a national export)."""
        out = {}
        raw = self.raw.data
        for spec in column_specs(self.name):
            if spec.kind not in ("category", "boolean") or spec.name not in raw:
                continue
            before = raw[spec.name]
            if not (pd.api.types.is_object_dtype(before) or pd.api.types.is_string_dtype(before)):
                continue
            before = before.astype("string").reset_index(drop=True)
            after = self.typed[spec.name].astype("string").str.lower()
            changed = before.notna() & (before != after)
            if spec.kind == "boolean":
                changed &= ~before.isin(["true", "false"])
            n = int((changed.fillna(False).to_numpy(dtype=bool) & self.accepted_mask).sum())
            if n:
                out[spec.name] = n
        return out


def check_table(
    table: str,
    raw: RawTable,
    params: IngestParams,
    parents: dict[str, pd.DataFrame],
    extract: pd.Timestamp | None,
) -> CheckedTable:
    """Column rules, then table and cross-table rules against the accepted ``parents``.

    ``extract`` None means: infer it from sessions (the latest appointment that passed the
    column rules and is not coded as a future booking).
    """
    typed, problems, markers, bad = column_checked(table, raw, params)
    if extract is None and table == "sessions":
        dates = typed["scheduled_date"][~bad].dropna().value_counts()
        extract = infer_extract_date(dates, raw.path.name).date
    # Cross-table rules see only rows that passed the column rules.
    candidate = typed.copy()
    candidate[bad] = pd.NA
    rule_problems = table_rule_problems(
        table, candidate, raw.data, parents, extract if extract is not None else pd.Timestamp.max
    )
    rule_problems = rule_problems[~bad[rule_problems["row"].to_numpy(dtype=int)]]
    problems = pd.concat(
        [p for p in (problems, rule_problems) if len(p)] or [problems], ignore_index=True
    )
    problems["line"] = raw.lines.to_numpy()[problems["row"].to_numpy(dtype=int)]
    bad[problems["row"].to_numpy(dtype=int)] = True
    return CheckedTable(table, raw, typed, problems, ~bad, markers, extract)


def column_checked(
    table: str, raw: RawTable, params: IngestParams
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int], np.ndarray]:
    """Column rules only: typed table, problems, markers read as missing, and which rows
    broke a column rule."""
    typed, problems, markers = parse_table(
        table, raw.data, params.aliases, tuple(params.missing_markers), raw.distinct
    )
    raw.forget_distinct()  # the identifier scan and the parser are done with them
    bad = np.zeros(len(typed), dtype=bool)
    bad[problems["row"].to_numpy(dtype=int)] = True
    return typed, problems, markers, bad


def appointment_dates(raw: RawTable, params: IngestParams) -> pd.Series:
    """Valid appointment dates of a sessions table and how many appointments fall on each
    (index: date, sorted): what ``infer_extract_date`` reads. Future bookings (coded as
    such) and rows that break a column rule are left out."""
    typed, _, _, bad = column_checked("sessions", raw, params)
    dates = typed["scheduled_date"][~bad].dropna()
    return dates.value_counts().sort_index()


OUTLIER_GAP_DAYS = 90
"""An inferred extract date ignores appointments dated more than this many days after the
latest date that at least ``outlier_support`` appointments reach (typing errors such as a
session in 2205): they are quarantined as dated after the extract, and the report lists them."""


def outlier_support(n: int) -> int:
    """Appointments that must reach a date for it to be more than an isolated outlier:
    three, or 0.1% of the appointments if more."""
    return max(3, math.ceil(0.001 * n))


@dataclass(frozen=True)
class InferredExtract:
    date: pd.Timestamp
    ignored: tuple[pd.Timestamp, ...] = ()
    """Isolated far-future dates the inference left out (their rows are quarantined)."""
    ignored_rows: int = 0


def infer_extract_date(counts: pd.Series, file: str) -> InferredExtract:
    """The latest valid appointment date, ignoring isolated far-future outliers; or a clear
    error when there is none. ``counts``: appointments per date (``appointment_dates``;
    summed over buckets by the Dask engine)."""
    counts = counts.groupby(level=0).sum().sort_index() if len(counts) else counts
    if not len(counts):
        raise InputError(
            f"{file}: no valid appointment date to infer the extract date from; give it "
            "with --extract-date YYYY-MM-DD, or as extract_date in the export's export.json."
        )
    n = int(counts.sum())
    k = outlier_support(n)
    if n <= k:
        return InferredExtract(pd.Timestamp(counts.index[-1]))
    reach = counts[::-1].cumsum()[::-1]  # appointments on or after each date
    bulk_end = pd.Timestamp(counts.index[reach.to_numpy() >= k][-1])
    far = counts.index > bulk_end + pd.Timedelta(days=OUTLIER_GAP_DAYS)
    kept = counts[~far]
    return InferredExtract(
        pd.Timestamp(kept.index[-1]),
        tuple(pd.Timestamp(d) for d in counts.index[far]),
        int(counts[far].sum()),
    )


PARENT_KEYS = {"episodes": ["episode_id", "referral_date"], "goals": ["goal_id"]}


def parent_keys(checked: CheckedTable) -> pd.DataFrame | None:
    """What child tables need from an accepted parent (ids, referral dates); else None."""
    cols = PARENT_KEYS.get(checked.name)
    return checked.accepted[cols] if cols else None


def configured_extract(params: IngestParams) -> pd.Timestamp | None:
    return pd.Timestamp(params.extract_date) if params.extract_date else None
