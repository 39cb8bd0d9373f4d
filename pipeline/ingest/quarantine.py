"""Quarantine tables and the reconciliation of every row read."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.ingest.check import CheckedTable

QUARANTINE_META = ["source_file", "source_line", "rules", "columns"]


class ReconciliationError(AssertionError):
    """Rows read ≠ rows accepted + rows quarantined: a bug, never a data problem."""


def _joined(problems: pd.DataFrame, column: str) -> pd.Series:
    """Per problem row: the distinct values of ``column``, sorted, joined with ';'.

    Each row's set of values is summed as a bit mask and each distinct mask is spelled
    once (a national export quarantines tens of thousands of rows; joining strings row by
    row in Python took seconds)."""
    distinct = problems[["row", column]].drop_duplicates()
    codes, labels = pd.factorize(distinct[column].astype(str), sort=True)
    if len(labels) > 62:  # more distinct values than bits in an int64: spell row by row
        ordered = distinct.sort_values(["row", column])
        return ordered.groupby("row")[column].agg(";".join)
    bits = pd.Series(np.left_shift(np.int64(1), codes.astype(np.int64)), index=distinct["row"])
    masks = bits.groupby(level=0).sum()
    spelled = {
        m: ";".join(str(label) for j, label in enumerate(labels) if (m >> j) & 1)
        for m in np.unique(masks.to_numpy()).tolist()
    }
    return masks.map(spelled)


def quarantine_frame(checked: CheckedTable) -> pd.DataFrame:
    """One row per quarantined source row: its original values, where it came from, and
    every rule it broke (``;``-separated, sorted). Malformed lines keep their raw text."""
    raw = checked.raw
    value_cols = [str(c) for c in raw.data.columns]
    probs = checked.problems
    rows = np.unique(probs["row"].to_numpy(dtype=int))
    original = raw.data.iloc[rows].astype("string").reset_index(drop=True)
    meta = pd.DataFrame(
        {
            "source_file": raw.path.name if raw.files is None else raw.files.to_numpy()[rows],
            "source_line": raw.lines.to_numpy()[rows].astype("int64"),
            "rules": _joined(probs, "rule").reindex(rows).to_numpy(),
            "columns": _joined(probs, "column").reindex(rows).to_numpy(),
        }
    )
    frames = [pd.concat([original, meta], axis=1)]
    if len(raw.malformed):
        frames.append(
            pd.DataFrame(
                {
                    **{
                        c: pd.Series(pd.NA, index=range(len(raw.malformed)), dtype="string")
                        for c in value_cols
                    },
                    "source_file": raw.malformed["file"].to_numpy()
                    if "file" in raw.malformed
                    else raw.path.name,
                    "source_line": raw.malformed["line"].to_numpy().astype("int64"),
                    "rules": "malformed_row",
                    "columns": "",
                    "raw_text": raw.malformed["text"].to_numpy(),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    if "raw_text" not in out:
        out["raw_text"] = pd.Series(pd.NA, index=out.index, dtype="string")
    out = out.sort_values("source_line", kind="stable").reset_index(drop=True)
    for col in [*value_cols, "rules", "columns", "raw_text", "source_file"]:
        out[col] = out[col].astype("string")
    return out


def reconcile(checked: CheckedTable, quarantine: pd.DataFrame) -> dict:
    """Counts for the report; raise ReconciliationError if any row is unaccounted for."""
    read, accepted, held = checked.n_read, checked.n_accepted, len(quarantine)
    if read != accepted + held or held != checked.n_quarantined:
        raise ReconciliationError(
            f"{checked.name}: rows read {read} ≠ accepted {accepted} + quarantined {held}"
        )
    records = checked.raw.records
    if records is not None and records != read + len(checked.raw.empty_lines):
        # Counted from the file itself, not from the parser's rows: a record the parser
        # dropped or merged can never pass as reconciled.
        raise ReconciliationError(
            f"{checked.name}: the file holds {records} records but {read} rows were read "
            f"and {len(checked.raw.empty_lines)} empty lines skipped"
        )
    counts: dict[str, object] = {
        "rows_read": read,
        "rows_accepted": accepted,
        "rows_quarantined": held,
        "reconciled": True,
    }
    if checked.raw.files is not None:
        counts["sources"] = by_source(checked, quarantine)
    return counts


def by_source(checked: CheckedTable, quarantine: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Rows read, accepted and quarantined per source file, for a table gathered from
    several (each reconciles on its own)."""
    raw = checked.raw
    files = raw.files
    assert files is not None
    malformed = raw.malformed["file"] if "file" in raw.malformed else pd.Series(dtype="string")
    read = pd.concat([files, malformed.astype("string")]).value_counts()
    accepted = files[checked.accepted_mask].value_counts()
    held = quarantine["source_file"].value_counts()
    out = {}
    for name in sorted(read.index):
        n, a, q = int(read[name]), int(accepted.get(name, 0)), int(held.get(name, 0))
        if n != a + q:
            raise ReconciliationError(
                f"{checked.name} from {name}: rows read {n} ≠ accepted {a} + quarantined {q}"
            )
        out[str(name)] = {"rows_read": n, "rows_accepted": a, "rows_quarantined": q}
    return out
