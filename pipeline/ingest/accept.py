"""Ingest as a pure function: raw tables in, accepted tables + quarantine + report out."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.config import IngestParams
from pipeline.contract import OPTIONAL_TABLES, column_specs
from pipeline.ingest.check import check_dataset
from pipeline.ingest.identifiers import find_identifiers
from pipeline.ingest.quarantine import quarantine_frame, reconcile
from pipeline.ingest.read import InputError, RawTable
from pipeline.ingest.rekey import rekey_frame
from pipeline.ingest.rules import extract_date_of


class IdentifierError(InputError):
    """The input contains (or names) direct identifiers; nothing is written."""


@dataclass
class IngestResult:
    tables: dict[str, pd.DataFrame]
    quarantine: dict[str, pd.DataFrame]
    report: dict


def refuse_identifiers(raw: dict[str, RawTable]) -> None:
    """Raise IdentifierError listing every identifier-like column or value (masked)."""
    findings = []
    for table in raw.values():
        frame = table.all_columns if table.all_columns is not None else table.data
        findings += find_identifiers(table.path.name, frame, table.lines)
    if findings:
        lines = "\n".join(f"  - {f.message()}" for f in findings)
        raise IdentifierError(
            "The input appears to contain direct identifiers, which must be removed before "
            f"analysis (nothing was written):\n{lines}\nRemove or pseudonymise these columns "
            "or values in the export, then run again."
        )


def _id_columns(table: str) -> list[str]:
    return [c.name for c in column_specs(table) if c.kind == "id"]


def ingest_dataset(
    raw: dict[str, RawTable], params: IngestParams, rekey_key: bytes | None = None
) -> IngestResult:
    """Validate, quarantine and reconcile every table; never mutates ``raw``."""
    refuse_identifiers(raw)
    checked = check_dataset(raw, params)
    tables, quarantine, per_table = {}, {}, {}
    for name, result in checked.items():
        held = quarantine_frame(result)
        counts = reconcile(result, held)
        accepted = result.accepted
        if rekey_key is not None:
            accepted = rekey_frame(accepted, _id_columns(name), rekey_key)
            held = rekey_frame(held, _id_columns(name), rekey_key)
        tables[name], quarantine[name] = accepted, held
        per_table[name] = {
            "file": result.raw.path.name,
            **counts,
            "quarantined_by_rule": result.rows_by_rule(),
            "values_recoded": result.values_recoded(),
            "columns_dropped": sorted(result.raw.extra_columns),
            "empty_lines_skipped": len(result.raw.empty_lines),
            "line_numbers_exact": result.raw.line_numbers_exact,
        }
    extract = extract_date_of(tables["sessions"], params.extract_date)
    report = {
        "tables": per_table,
        "optional_tables_absent": [t for t in OPTIONAL_TABLES if t not in raw],
        "extract_date": extract.date().isoformat(),
        "extract_date_source": "params" if params.extract_date else "latest appointment",
        "rekeyed": rekey_key is not None,
        "totals": {
            "rows_read": sum(t["rows_read"] for t in per_table.values()),
            "rows_accepted": sum(t["rows_accepted"] for t in per_table.values()),
            "rows_quarantined": sum(t["rows_quarantined"] for t in per_table.values()),
        },
    }
    return IngestResult(tables, quarantine, report)
