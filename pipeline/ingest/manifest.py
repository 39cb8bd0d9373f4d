"""The export manifest (``export.json``) and where a run's extract date comes from.

The extract date is a property of an export, not of the project. It is taken, in order:

1. from a date given for this run (``engage ingest/run --extract-date``, or
   ``ingest.extract_date`` in the params of this run);
2. from the export's own manifest, ``export.json`` beside its tables (the synthetic
   cohort always writes one; a service may write one for its export);
3. otherwise it is inferred: the latest valid appointment date in the export (said so in
   the ingest report and on the console).

A manifest also says what the export is: ``source: synthetic`` marks the bundled
generator's output, and only then does a report call its data synthetic.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.config import IngestParams
from pipeline.ingest.read import InputError, check_file

MANIFEST_NAME = "export.json"
SYNTHETIC = "synthetic"

GIVEN = "given for this run"
FROM_MANIFEST = f"export manifest ({MANIFEST_NAME})"
INFERRED = "inferred from the latest appointment"


class ExportManifest(BaseModel):
    """What an export says about itself. Every key is optional; unknown keys are errors
    (a misspelt ``extract_date`` must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = "export"
    """``synthetic`` for the bundled generator's output; anything else is a real export
    (e.g. the service's name)."""
    extract_date: dt.date | None = None
    """The date the records were extracted: appointments after it are quarantined."""
    layout: str | None = None
    """The layout the tables are written in (``contract``, ``nhstt``); informational."""
    description: str | None = None
    generator: dict[str, object] | None = None
    """For generated exports: the generator, its version, seed and size."""

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC


def read_manifest(folder: str | Path) -> ExportManifest | None:
    """The manifest of the export in ``folder``, or None when it has none."""
    path = Path(folder) / MANIFEST_NAME
    if not os.path.lexists(path):
        return None
    check_file(path, Path(folder))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{MANIFEST_NAME}: not readable JSON ({type(exc).__name__}); fix or remove it."
        ) from None
    if not isinstance(raw, dict):
        raise InputError(f"{MANIFEST_NAME}: must hold an object such as {{\"extract_date\": …}}.")
    try:
        return ExportManifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(
            f"{MANIFEST_NAME}: {problems} (known keys: {', '.join(ExportManifest.model_fields)};"
            " dates are YYYY-MM-DD)."
        ) from None


@dataclass(frozen=True)
class ExtractDate:
    """The extract date chosen for a run (None: to be inferred) and where it came from."""

    date: dt.date | None
    source: str


def choose_extract_date(given: dt.date | None, manifest: ExportManifest | None) -> ExtractDate:
    """A date given for this run, else the manifest's, else None (inferred by ingest)."""
    if given is not None:
        return ExtractDate(given, GIVEN)
    if manifest is not None and manifest.extract_date is not None:
        return ExtractDate(manifest.extract_date, FROM_MANIFEST)
    return ExtractDate(None, INFERRED)


def export_description(manifest: ExportManifest | None, layout: str, mapping: str | None) -> dict:
    """The ``export`` block of the ingest report: what was read, as the export says."""
    return {
        "source": SYNTHETIC if manifest is not None and manifest.synthetic else "export",
        "layout": layout,
        "mapping": mapping,
        "manifest": manifest.model_dump(mode="json") if manifest is not None else None,
    }


def refuse_many_future_dated(
    counts: dict,
    extract: pd.Timestamp | None,
    choice: ExtractDate,
    params: IngestParams,
    ignored: dict | None = None,
) -> None:
    """Stop when the extract date would drop more than ``future_dated_max_share`` of the
    appointments as future-dated: it most likely belongs to another export. Isolated
    outliers an inferred date left out (``ignored``) are not counted against it."""
    future = counts["quarantined_by_rule"].get("future_date", 0)
    future -= (ignored or {}).get("appointments", 0)
    read = counts["rows_read"]
    if not read or future / read <= params.future_dated_max_share:
        return
    when = extract.date().isoformat() if extract is not None else "?"
    raise InputError(
        f"the extract date {when} ({choice.source}) would quarantine {future} of {read} "
        f"appointments ({future / read:.0%}) as dated after it, more than the "
        f"{params.future_dated_max_share:.0%} allowed (ingest.future_dated_max_share). If the "
        "date is wrong, give this export's own (--extract-date YYYY-MM-DD, or extract_date "
        "in its export.json); if the export really holds that many future bookings, run "
        "again with --accept-future-dated. Nothing was written."
    )
