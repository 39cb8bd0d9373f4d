"""Check a whole dataset against the contract: typed tables, accepted rows, problems."""

from __future__ import annotations

import functools
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
        extract = infer_extract_date(typed["scheduled_date"][~bad], raw.path.name)
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


def latest_appointment(raw: RawTable, params: IngestParams) -> pd.Timestamp | None:
    """The latest appointment date in a sessions table that passes the column rules (what
    ``infer_extract_date`` takes the extract date from); None if there is none."""
    typed, _, _, bad = column_checked("sessions", raw, params)
    latest = typed["scheduled_date"][~bad].max()
    return None if pd.isna(latest) else pd.Timestamp(latest)


def infer_extract_date(dates: pd.Series, file: str) -> pd.Timestamp:
    """The latest valid appointment date, or a clear error when there is none."""
    latest = dates.max()
    if pd.isna(latest):
        raise InputError(
            f"{file}: no valid appointment date to infer the extract date from; give it "
            "with --extract-date YYYY-MM-DD, or as extract_date in the export's export.json."
        )
    return pd.Timestamp(latest)


PARENT_KEYS = {"episodes": ["episode_id", "referral_date"], "goals": ["goal_id"]}


def parent_keys(checked: CheckedTable) -> pd.DataFrame | None:
    """What child tables need from an accepted parent (ids, referral dates); else None."""
    cols = PARENT_KEYS.get(checked.name)
    return checked.accepted[cols] if cols else None


def configured_extract(params: IngestParams) -> pd.Timestamp | None:
    return pd.Timestamp(params.extract_date) if params.extract_date else None
