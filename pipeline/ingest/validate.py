"""``engage validate``: check a dataset folder against the contract without writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.config import IngestParams
from pipeline.ingest.check import CheckedTable, check_dataset
from pipeline.ingest.read import read_dataset


@dataclass
class ValidationReport:
    folder: Path
    tables: dict[str, CheckedTable] = field(default_factory=dict)
    absent_optional: list[str] = field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """One row per table: file, rows read, accepted, rows with problems."""
        return pd.DataFrame(
            [
                {
                    "table": t,
                    "file": c.raw.path.name,
                    "rows_read": c.n_read,
                    "rows_accepted": c.n_accepted,
                    "rows_with_problems": c.n_read - c.n_accepted,
                    "columns_dropped": ", ".join(c.raw.extra_columns),
                }
                for t, c in self.tables.items()
            ]
        )

    def problems_by_rule(self, examples: int = 3) -> pd.DataFrame:
        """One row per (table, column, rule): count and a few example line numbers."""
        rows = []
        for t, c in self.tables.items():
            if c.problems.empty:
                continue
            for (col, rule), grp in c.problems.groupby(["column", "rule"], sort=True):
                lines = sorted(grp["line"].astype(int).unique())
                rows.append(
                    {
                        "table": t,
                        "column": col,
                        "rule": rule,
                        "rows": len(grp),
                        "example_lines": ", ".join(map(str, lines[:examples])),
                    }
                )
        return pd.DataFrame(rows, columns=["table", "column", "rule", "rows", "example_lines"])


def validate_dataset(folder: str | Path, params: IngestParams) -> ValidationReport:
    """Raise ``InputError`` on a whole-input problem; otherwise report row-level problems."""
    raw = read_dataset(folder)
    report = ValidationReport(Path(folder), check_dataset(raw, params))
    report.absent_optional = [t for t in ("goals", "goal_ratings", "contacts") if t not in raw]
    return report
