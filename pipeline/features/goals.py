"""Clear goals and ownership, homework, and small wins in the landmark window."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.window import (
    by_position,
    in_date_order,
    in_window,
    per_episode,
    rows_where,
)
from pipeline.keys import positions

GOAL_COLUMNS = (
    "n_goals",
    "goal_owned_share",
    "days_to_first_goal",
    "homework_completion_rate",
    "goal_rating_gain",
)
SMALL_WIN_COLUMNS = ("early_change_primary",)
HOMEWORK_SCORE = {"none": 0.0, "partial": 0.5, "full": 1.0}


def goal_features(
    sessions: pd.DataFrame,
    goals: pd.DataFrame | None,
    ratings: pd.DataFrame | None,
    window: pd.DataFrame,
) -> pd.DataFrame:
    """One row per episode of ``window``. Goal columns are missing when the goals table is
    absent; an episode with a window but no goal set in it has ``n_goals`` 0."""
    s = in_window(sessions, window, "scheduled_date", ["homework_completed"])
    values: dict[str, pd.Series] = {}
    if "homework_completed" in s:
        hw = s["homework_completed"].map(HOMEWORK_SCORE).astype(float)
        values["homework_completion_rate"] = hw.groupby(s["episode_id"], sort=False).mean()
    out = per_episode(window, values)
    has = window["has_sessions"].to_numpy()
    if goals is not None:
        g = in_window(goals, window, "set_date")
        by = g.groupby("episode_id", sort=False)
        out["n_goals"] = pd.Series(np.nan_to_num(by_position(window, by.size()))).where(has)
        owned = g["set_by"].isin(["client", "collaborative"]).groupby(g["episode_id"]).mean()
        out["goal_owned_share"] = by_position(window, owned)
        first = (by["set_date"].min() - by["window_start"].first()).dt.days
        out["days_to_first_goal"] = by_position(window, first)
        if ratings is not None:
            out["goal_rating_gain"] = by_position(window, _rating_gain(g, ratings))
    for col in GOAL_COLUMNS:
        if col not in out:
            out[col] = np.nan
    return out[["episode_id", *GOAL_COLUMNS]]


def _rating_gain(g: pd.DataFrame, ratings: pd.DataFrame) -> pd.Series:
    """Per episode position, the mean over the goals of ``g`` (``in_window`` rows) of the
    last minus the first of their ratings in the window (goals rated twice or more)."""
    # Each rating's goal by position in ``g`` (one hash lookup of the ids, then integers
    # only); only the ratings of those goals dated in the window are copied.
    goal = positions(g["goal_id"], ratings["goal_id"])
    rows = np.flatnonzero(goal >= 0)
    dates = ratings["rating_date"].to_numpy()[rows]
    of = goal[rows]
    inside = (dates >= g["window_start"].to_numpy()[of]) & (dates < g["window_end"].to_numpy()[of])
    rows = rows[inside]
    r = pd.DataFrame(
        {
            "rating_date": dates[inside],
            "rating": ratings["rating"].to_numpy()[rows],
            "goal": of[inside],
        }
    )
    r = in_date_order(r, "goal", "rating_date")
    rg = r.groupby("goal", sort=False)
    gain = (rg["rating"].last() - rg["rating"].first()).where(rg.size() >= 2)
    per_goal = pd.DataFrame(
        {"gain": gain.to_numpy(), "episode_id": g["episode_id"].to_numpy()[gain.index.to_numpy()]}
    ).dropna()
    return per_goal.groupby("episode_id")["gain"].mean()


def small_wins(
    measures: pd.DataFrame, window: pd.DataFrame, instrument: str, higher_is_worse: bool
) -> pd.DataFrame:
    """Early symptom change on the primary instrument: first minus last score in the window,
    oriented so that positive = better. An early-response marker, not an engagement
    behaviour."""
    primary = measures["instrument"] == instrument
    m = in_window(
        rows_where(measures, primary, ["episode_id", "measure_date", "score"]),
        window,
        "measure_date",
    )
    m = in_date_order(m, "episode_id", "measure_date")
    g = m.groupby("episode_id", sort=False)["score"]
    change = (g.first() - g.last()).where(g.size() >= 2)
    out = per_episode(window, {"early_change_primary": change if higher_is_worse else -change})
    return out
