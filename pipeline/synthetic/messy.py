"""Export-style rendering of the clean cohort, with the messy rows real exports contain.

Two kinds of mess, both recorded in a manifest so tests can check that ingest handles them:

* **added bad rows** (``messy_row_share`` of each table): duplicate ids, orphan foreign
  keys, unknown categories, out-of-range values, unparseable or impossible dates, future
  appointments, duration on a non-attended session. Ingest must quarantine each with the
  rule named in the manifest; the clean rows are untouched, so accepted output equals the
  clean cohort.
* **aliased values** (``alias_row_share`` of some columns): real-world codes and spellings
  (NHS Data Dictionary attendance codes, ``DNA``, capitalised labels, ``1``/``0`` booleans)
  that ingest must map back to the contract value given in the manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.contract import SCHEMAS, column_specs

# Real-world spellings of contract values, written into the export (accepted by ingest).
STATUS_ALIASES = {
    "attended": ("5", "6", "Attended", " attended", "ATTENDED"),
    "did_not_attend": ("3", "7", "DNA", "dna", "Did not attend"),
    "cancelled_by_client": ("2", "Cancelled by client"),
    "cancelled_by_service": ("4", "Cancelled by service"),
}
BOOLEAN_ALIASES = {True: ("1", "TRUE", "True", "yes"), False: ("0", "FALSE", "False", "no")}


def _date_columns(table: str) -> list[str]:
    return [c.name for c in column_specs(table) if c.kind == "date"]


def to_export(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Render a typed contract table the way a service export looks (ISO date strings)."""
    out = df.copy()
    for col in _date_columns(table):
        if col in out:
            out[col] = out[col].dt.strftime("%Y-%m-%d").where(out[col].notna(), None)
    for col in out.columns:
        if str(out[col].dtype) == "boolean":
            out[col] = out[col].map({True: "true", False: "false"}, na_action="ignore")
    return out


def _insert(
    df: pd.DataFrame, extra: pd.DataFrame, at_end: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Insert ``extra`` rows: those flagged ``at_end`` are appended (so a duplicate id always
    follows the original it repeats), the others go to random positions.

    Returns the combined frame, each extra row's final 0-based position, and each original
    row's final position.
    """
    n, k = len(df), len(extra)
    n_mid = int((~at_end).sum())
    mid_pos = np.sort(rng.choice(n + n_mid, size=n_mid, replace=False))
    is_extra = np.zeros(n + n_mid, dtype=bool)
    is_extra[mid_pos] = True
    order = np.empty(n + k, dtype=np.int64)
    mid_ids = np.flatnonzero(~at_end)
    order[: n + n_mid][~is_extra] = np.arange(n)
    order[: n + n_mid][is_extra] = n + mid_ids
    order[n + n_mid :] = n + np.flatnonzero(at_end)
    combined = pd.concat([df, extra], ignore_index=True).iloc[order].reset_index(drop=True)
    final = np.empty(n + k, dtype=np.int64)
    final[order] = np.arange(n + k)
    return combined, final[n:], final[:n]


def _bad_rows(
    table: str,
    df: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    extract: pd.Timestamp,
    n: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` bad rows for ``table``, cycling through its kinds (vectorised per kind).

    Returns the rows and a frame with each row's kind and expected quarantine rule.
    """
    kinds = BAD_ROW_KINDS[table]
    which = np.arange(n) % len(kinds)
    parts: list[pd.DataFrame] = []
    meta: list[pd.DataFrame] = []
    for k, (kind, rule, changes) in enumerate(kinds):
        number = np.flatnonzero(which == k)  # running number of each bad row: unique new ids
        if number.size == 0:
            continue
        base = df.iloc[rng.integers(0, len(df), number.size)].reset_index(drop=True)
        for column, value in changes.items():
            base[column] = value(base, number, tables, extract, rng) if callable(value) else value
        base.index = number
        parts.append(base)
        meta.append(pd.DataFrame({"kind": kind, "expected": rule}, index=number))
    bad = pd.concat(parts).sort_index()
    return bad.reset_index(drop=True), pd.concat(meta).sort_index().reset_index(drop=True)


def _new(prefix: str):
    """Fresh ids that cannot collide with generated ones (``<prefix>x00001``)."""
    return lambda base, number, *_: np.char.add(
        f"{prefix}x", np.char.zfill((number + 1).astype(str), 5)
    )


def _still_open_episode(base, number, tables, extract, rng):
    ep = tables["episodes"]
    pool = ep.loc[ep["end_reason"] == "still_open", "episode_id"].to_numpy()
    pool = pool if pool.size else ep["episode_id"].to_numpy()
    return pool[rng.integers(0, pool.size, number.size)]


def _days_after_extract(base, number, tables, extract, rng):
    days = pd.to_timedelta(rng.integers(3, 30, number.size), unit="D")
    return (extract + days).strftime("%Y-%m-%d").to_numpy()


def _before_referral(base, *_):
    dates = pd.to_datetime(base["referral_date"]) - pd.Timedelta(days=40)
    return dates.dt.strftime("%Y-%m-%d").to_numpy()


BadRowKind = tuple[str, str, dict[str, Any]]
"""(kind, expected quarantine rule, {column: value or ``value(base, number, tables, extract,
rng)``})."""

BAD_ROW_KINDS: dict[str, list[BadRowKind]] = {
    "episodes": [
        ("duplicate_episode_id", "duplicate_id", {"end_reason": "other"}),
        (
            "unknown_gender",
            "unknown_category",
            {"episode_id": _new("ep"), "client_id": _new("cl"), "gender": "x?"},
        ),
        (
            "end_before_referral",
            "end_before_referral",
            {
                "episode_id": _new("ep"),
                "client_id": _new("cl"),
                "end_reason": "completed",
                "end_date": _before_referral,
            },
        ),
        (
            "planned_sessions_out_of_range",
            "out_of_range",
            {"episode_id": _new("ep"), "client_id": _new("cl"), "planned_sessions": 250},
        ),
    ],
    "sessions": [
        ("duplicate_session_id", "duplicate_id", {"status": "cancelled_by_service"}),
        ("orphan_session", "orphan_episode", {"session_id": _new("se"), "episode_id": _new("ep")}),
        (
            "unparseable_date",
            "unparseable_date",
            {"session_id": _new("se"), "scheduled_date": "2024-02-30"},
        ),
        (
            "future_appointment",
            "future_date",
            {
                "session_id": _new("se"),
                "episode_id": _still_open_episode,
                "status": "0",
                "duration_min": None,
                "alliance_score": None,
                "scheduled_date": _days_after_extract,
            },
        ),
        ("unknown_status", "unknown_category", {"session_id": _new("se"), "status": "rescheduled"}),
        (
            "duration_on_dna",
            "duration_not_attended",
            {
                "session_id": _new("se"),
                "status": "did_not_attend",
                "duration_min": 50,
                "alliance_score": None,
            },
        ),
        (
            "alliance_out_of_range",
            "out_of_range",
            {
                "session_id": _new("se"),
                "status": "attended",
                "alliance_score": 57.0,
                "duration_min": 50,
            },
        ),
    ],
    "measures": [
        ("phq9_out_of_range", "score_out_of_range", {"instrument": "PHQ-9", "score": 31.0}),
        ("unknown_instrument", "unknown_category", {"instrument": "HADS"}),
        ("orphan_measure", "orphan_episode", {"episode_id": _new("ep")}),
    ],
    "goals": [
        ("duplicate_goal_id", "duplicate_id", {"set_by": "clinician"}),
        ("unknown_set_by", "unknown_category", {"goal_id": _new("gl"), "set_by": "therapist"}),
        ("orphan_goal", "orphan_episode", {"goal_id": _new("gl"), "episode_id": _new("ep")}),
    ],
    "goal_ratings": [
        ("rating_out_of_range", "out_of_range", {"rating": 12.0}),
        ("orphan_rating", "orphan_goal", {"goal_id": _new("gl")}),
    ],
    "contacts": [
        ("unknown_direction", "unknown_category", {"direction": "inbound"}),
        ("orphan_contact", "orphan_episode", {"episode_id": _new("ep")}),
    ],
}


def _alias_values(col: str, canonical: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real-world spelling for each canonical value (vectorised per value)."""
    out = canonical.astype(object).copy()
    if col == "status":
        choices = STATUS_ALIASES
    elif col in ("homework_assigned", "responded"):
        choices = {"true": BOOLEAN_ALIASES[True], "false": BOOLEAN_ALIASES[False]}
    else:  # "dropped_out" -> "Dropped out"
        return np.char.capitalize(np.char.replace(canonical.astype(str), "_", " ")).astype(object)
    for value, options in choices.items():
        hit = np.flatnonzero(canonical == value)
        out[hit] = np.asarray(options, dtype=object)[rng.integers(0, len(options), hit.size)]
    return out


def _apply_aliases(
    df: pd.DataFrame, table: str, share: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Replace a share of values with real-world spellings (in place); return what changed."""
    found = []
    targets = {
        "sessions": ["status", "homework_assigned"],
        "episodes": ["end_reason", "gender"],
        "contacts": ["responded"],
    }.get(table, [])
    for col in targets:
        present = np.flatnonzero(df[col].notna().to_numpy())
        if present.size == 0 or share == 0:
            continue
        k = min(present.size, max(1, round(share * present.size)))
        rows = np.sort(rng.choice(present, size=k, replace=False))
        canonical = df[col].to_numpy()[rows].astype(str)
        alias = _alias_values(col, canonical, rng)
        df.loc[rows, col] = alias
        found.append(
            pd.DataFrame({"row": rows, "column": col, "canonical": canonical, "value": alias})
        )
    columns = ["row", "column", "canonical", "value"]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=columns)


def make_export(
    tables: dict[str, pd.DataFrame],
    extract_date,
    messy_share: float,
    alias_share: float,
    rng: np.random.Generator,
):
    """Export-style tables with messy rows, and the manifest of every change made.

    Returns ``(export_tables, manifest)``; ``manifest`` has one row per added or aliased
    row: table, CSV line number (header = line 1), key, kind, and the expected quarantine
    rule (added rows) or contract value (aliases).
    """
    extract = pd.Timestamp(extract_date)
    export, manifest = {}, []
    for table, clean in tables.items():
        key_col = next(iter(SCHEMAS[table].to_schema().columns))
        df = to_export(clean, table)
        aliased = _apply_aliases(df, table, alias_share, rng)
        final_of_original = np.arange(len(df))
        n_bad = int(np.ceil(messy_share * len(df))) if messy_share > 0 else 0
        if n_bad:
            bad, meta = _bad_rows(table, df, tables, extract, n_bad, rng)
            at_end = meta["kind"].str.startswith("duplicate_").to_numpy()
            bad = bad.astype(df.dtypes.to_dict(), errors="ignore")
            df, positions, final_of_original = _insert(df, bad, at_end, rng)
            manifest.append(
                pd.DataFrame(
                    {
                        "table": table,
                        "line": positions + 2,
                        "key": df[key_col].to_numpy()[positions].astype(str),
                        "kind": meta["kind"].to_numpy(),
                        "expected": meta["expected"].to_numpy(),
                        "column": None,
                        "value": None,
                    }
                )
            )
        if len(aliased):
            pos = final_of_original[aliased["row"].to_numpy(dtype=int)]
            manifest.append(
                pd.DataFrame(
                    {
                        "table": table,
                        "line": pos + 2,
                        "key": df[key_col].to_numpy()[pos].astype(str),
                        "kind": "alias",
                        "expected": aliased["canonical"].to_numpy(),
                        "column": aliased["column"].to_numpy(),
                        "value": aliased["value"].to_numpy(),
                    }
                )
            )
        export[table] = df
    columns = ["table", "line", "key", "kind", "expected", "column", "value"]
    out = pd.concat(manifest, ignore_index=True) if manifest else pd.DataFrame(columns=columns)
    out = out[columns].sort_values(["table", "line"], kind="stable")
    return export, out.reset_index(drop=True)
