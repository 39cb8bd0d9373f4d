"""Rules that span columns or tables (declared in ``pipeline.contract.TABLE_RULES``).

Applied in dependency order — episodes, then the tables that point at episodes, then goal
ratings — so that a row pointing at a quarantined parent is itself quarantined
(``orphan_*``), and nothing downstream refers to a row that is not in the analysis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contract import FUTURE_DATED, SCHEDULED_BEFORE_REFERRAL_DAYS
from pipeline.ingest.parse import PROBLEM_COLUMNS
from pipeline.instruments import active_registry
from pipeline.keys import is_in

TABLE_ORDER = ("episodes", "sessions", "measures", "goals", "goal_ratings", "contacts")


def _flag(mask, df: pd.DataFrame, column: str, rule: str, raw: pd.DataFrame) -> pd.DataFrame:
    rows = np.flatnonzero(np.asarray(mask, dtype=bool))
    values = raw[column].iloc[rows].astype(str).to_numpy() if column in raw else ""
    return pd.DataFrame({"row": rows, "column": column, "rule": rule, "value": values})


def table_rule_problems(
    table: str,
    typed: pd.DataFrame,
    raw: pd.DataFrame,
    accepted: dict[str, pd.DataFrame],
    extract: pd.Timestamp,
) -> pd.DataFrame:
    """Problems from cross-column and cross-table rules for ``table``.

    ``accepted`` holds the already-accepted rows of the parent tables.
    """
    found = []
    if table == "episodes" and "end_date" in typed:
        before = (typed["end_date"] < typed["referral_date"]).fillna(False)
        found.append(_flag(before, typed, "end_date", "end_before_referral", raw))
    if table in ("sessions", "measures", "goals", "contacts"):
        known = is_in(typed["episode_id"], accepted["episodes"]["episode_id"])
        found.append(
            _flag(~known & typed["episode_id"].notna(), typed, "episode_id", "orphan_episode", raw)
        )
    if table == "goal_ratings":
        known = (
            is_in(typed["goal_id"], accepted["goals"]["goal_id"])
            if "goals" in accepted
            else pd.Series(False, index=typed.index)
        )
        found.append(_flag(~known & typed["goal_id"].notna(), typed, "goal_id", "orphan_goal", raw))
    if table == "sessions":
        found += _session_problems(typed, raw, accepted["episodes"])
    if table == "measures":
        found += _score_problems(typed, raw)
    for column in FUTURE_DATED.get(table, ()):
        if column in typed:
            after = (typed[column] > extract).fillna(False)
            found.append(_flag(after, typed, column, "future_date", raw))
    found = [f for f in found if len(f)]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=PROBLEM_COLUMNS)


def _session_problems(
    typed: pd.DataFrame, raw: pd.DataFrame, episodes: pd.DataFrame
) -> list[pd.DataFrame]:
    """Appointments long before the referral, and a duration on one not attended."""
    lookup = episodes.set_index("episode_id")["referral_date"]
    referral = pd.Series(lookup.reindex(typed["episode_id"]).to_numpy(), index=typed.index)
    early = typed["scheduled_date"] < referral - pd.Timedelta(days=SCHEDULED_BEFORE_REFERRAL_DAYS)
    found = [_flag(early.fillna(False), typed, "scheduled_date", "scheduled_before_referral", raw)]
    if "duration_min" in typed:
        not_attended = typed["status"].ne("attended") & typed["status"].notna()
        with_duration = not_attended & typed["duration_min"].notna()
        found.append(_flag(with_duration, typed, "duration_min", "duration_not_attended", raw))
    return found


def _score_problems(typed: pd.DataFrame, raw: pd.DataFrame) -> list[pd.DataFrame]:
    """Scores outside the instrument's range, and fractions of an integer-sum instrument,
    for the instruments of the active registry (built-ins and those params register)."""
    registry = active_registry()
    # Each distinct instrument looked up once (a few names over millions of rows); an
    # unregistered one has no range (NaN) and no integer rule.
    codes, names = pd.factorize(typed["instrument"])
    known = [registry.get(str(n)) for n in names]

    def per_row(values: list[float]) -> pd.Series:
        table = np.append(np.asarray(values, float), np.nan)  # code -1: missing
        return pd.Series(table[codes], index=typed.index)

    lo = per_row([np.nan if k is None else k.minimum for k in known])
    hi = per_row([np.nan if k is None else k.maximum for k in known])
    score = pd.to_numeric(typed["score"], errors="coerce")
    outside = ((score < lo) | (score > hi)).fillna(False)
    whole = per_row([float(k is not None and k.integer_scores) for k in known]) == 1.0
    fraction = whole & (score != score.round()).fillna(False)
    return [
        _flag(outside, typed, "score", "score_out_of_range", raw),
        _flag(fraction, typed, "score", "fractional_score", raw),
    ]
