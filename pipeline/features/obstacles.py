"""Realistic obstacles in the landmark window: barriers raised, how appointments were
missed, changes of modality."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contract import LATE_CANCELLATION_HOURS
from pipeline.features.window import in_date_order, in_window, per_episode, rows_where

OBSTACLE_COLUMNS = ("n_barriers", "barrier_share", "notice_cancel_share", "modality_changes")


def obstacle_features(sessions: pd.DataFrame, window: pd.DataFrame) -> pd.DataFrame:
    """One row per episode of ``window``.

    ``notice_cancel_share``: of the appointments the client missed, the share cancelled
    with at least 24 hours' notice (planning around an obstacle) rather than no-shows.
    """
    s = in_date_order(  # ties keep the export's order
        in_window(
            sessions,
            window,
            "scheduled_date",
            ["status", "notice_hours", "barrier_reported", "modality"],
        ),
        "episode_id",
        "scheduled_date",
    )
    values: dict[str, pd.Series] = {}
    if "barrier_reported" in s:
        known = rows_where(s, s["barrier_reported"].notna(), ["episode_id", "barrier_reported"])
        raised = known["barrier_reported"].ne("none").groupby(known["episode_id"], sort=False)
        values |= {"n_barriers": raised.sum(), "barrier_share": raised.mean()}
    missed = rows_where(
        s,
        s["status"].isin(["did_not_attend", "cancelled_by_client"]),
        ["episode_id", "status", "notice_hours"],
    )
    if "notice_hours" in missed:
        with_notice = missed["status"].eq("cancelled_by_client") & (
            missed["notice_hours"] >= LATE_CANCELLATION_HOURS
        ).fillna(False)
        values["notice_cancel_share"] = with_notice.groupby(missed["episode_id"]).mean()
    if "modality" in s:
        known = rows_where(s, s["modality"].notna(), ["episode_id", "modality"])
        changed = known["modality"].ne(
            known.groupby("episode_id")["modality"].shift()
        ) & known.groupby("episode_id").cumcount().gt(0)
        values["modality_changes"] = changed.groupby(known["episode_id"]).sum()
    out = per_episode(window, values)
    for col in OBSTACLE_COLUMNS:
        if col not in out:
            out[col] = np.nan
    return out[["episode_id", *OBSTACLE_COLUMNS]]
