"""``engage validate``: run every ingest check on a dataset folder without writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.config import IngestParams
from pipeline.ingest.accept import ignored_outliers, ingest_tables
from pipeline.ingest.manifest import (
    choose_extract_date,
    read_manifest,
    refuse_many_future_dated,
)
from pipeline.layouts.export import open_export


@dataclass
class ValidationReport:
    folder: Path
    counts: dict[str, dict] = field(default_factory=dict)
    quarantine: dict[str, pd.DataFrame] = field(default_factory=dict)
    absent_optional: list[str] = field(default_factory=list)
    layout: str = "contract"
    extract_source: str = ""

    def summary(self) -> pd.DataFrame:
        """One row per table: file, rows read, accepted, quarantined, columns dropped."""
        return pd.DataFrame(
            [
                {
                    "table": t,
                    "file": c["file"],
                    "rows_read": c["rows_read"],
                    "rows_accepted": c["rows_accepted"],
                    "rows_quarantined": c["rows_quarantined"],
                    "columns_dropped": ", ".join(c["columns_dropped"]),
                }
                for t, c in self.counts.items()
            ]
        )

    def problems_by_rule(self, examples: int = 3) -> pd.DataFrame:
        """One row per (table, rule): rows that break it and a few example line numbers."""
        rows = []
        for table, held in self.quarantine.items():
            if held.empty:
                continue
            exploded = held.assign(rule=held["rules"].str.split(";")).explode("rule")
            for rule, grp in exploded.groupby("rule", sort=True):
                lines = sorted(grp["source_line"].astype(int).unique())
                rows.append(
                    {
                        "table": table,
                        "rule": rule,
                        "rows": len(grp),
                        "example_lines": ", ".join(map(str, lines[:examples])),
                    }
                )
        return pd.DataFrame(rows, columns=["table", "rule", "rows", "example_lines"])

    def hints(self, share: float = 0.5) -> list[str]:
        """Rules that reject most of a table: usually a format problem, not bad rows."""
        out = []
        for table, held in self.quarantine.items():
            n = self.counts[table]["rows_read"]
            if not n or held.empty:
                continue
            exploded = held.assign(rule=held["rules"].str.split(";")).explode("rule")
            for rule, rows in exploded["rule"].value_counts().items():
                if rows / n >= share:
                    out.append(
                        f"{rows} of {n} rows of {table} break {rule}: check the "
                        "export's format for that column (e.g. dates YYYY-MM-DD)."
                    )
        return out


def validate_dataset(folder: str | Path, params: IngestParams) -> ValidationReport:
    """Raise ``InputError`` on a whole-input problem; otherwise report row-level problems.
    Reads any layout (``pipeline.layouts.export``); the extract date is chosen as ingest
    chooses it."""
    export = open_export(folder, params)
    choice = choose_extract_date(params.extract_date, read_manifest(folder))
    params = params.model_copy(update={"extract_date": choice.date})
    files = export.tables
    report = ValidationReport(Path(folder), layout=export.layout, extract_source=choice.source)
    for result in ingest_tables(export, params):
        report.counts[result.name] = result.counts
        report.quarantine[result.name] = result.quarantine[["source_line", "rules"]]
        if result.name == "sessions":  # ingest would stop here: so does validate
            refuse_many_future_dated(
                result.counts, result.extract_date, choice, params, ignored_outliers(result)
            )
        if result.extract_date is not None:
            when = result.extract_date.date().isoformat()
            report.extract_source = f"{when} ({choice.source})"
    report.absent_optional = [t for t in ("goals", "goal_ratings", "contacts") if t not in files]
    return report
