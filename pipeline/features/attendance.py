"""Attendance in the landmark window.

Rates use the appointments the client could attend as denominator: service cancellations
are not the client's doing and are excluded from it. A *missed* appointment is a no-show or
a cancellation by the client; service cancellations neither extend nor break a run of
missed appointments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contract import LATE_CANCELLATION_HOURS
from pipeline.features.window import in_date_order, in_window, per_episode, rows_where

ATTENDANCE_COLUMNS = (
    "n_scheduled",
    "n_attended",
    "n_dna",
    "attendance_rate",
    "dna_rate",
    "late_cancel_rate",
    "n_cancel_client",
    "n_cancel_service",
    "first_attended",
    "max_consecutive_missed",
    "days_to_first_attended",
    "gap_mean_days",
    "gap_max_days",
    "gap_sd_days",
)


def attendance_features(sessions: pd.DataFrame, window: pd.DataFrame) -> pd.DataFrame:
    """One row per episode of ``window``; vectorised group-bys only."""
    s = in_date_order(  # ties keep the export's order
        in_window(sessions, window, "scheduled_date", ["status", "notice_hours"]),
        "episode_id",
        "scheduled_date",
    )
    status = s["status"]
    attended = status.eq("attended")
    dna = status.eq("did_not_attend")
    cc = status.eq("cancelled_by_client")
    cs = status.eq("cancelled_by_service")
    # Late = a client cancellation with recorded notice under 24 h (unknown notice is not
    # counted as late); the rate is missing when the export has no notice column at all.
    late = (
        cc & (s["notice_hours"] < LATE_CANCELLATION_HOURS).fillna(False)
        if "notice_hours" in s
        else cc & False
    )
    g = s.groupby("episode_id", sort=False)
    kinds = {"att": attended, "dna": dna, "cc": cc, "cs": cs, "late": late}
    flags = pd.DataFrame({"episode_id": s["episode_id"], **kinds})
    sums = flags.groupby("episode_id", sort=False).sum()
    client_possible = (g.size() - sums["cs"]).replace(0, np.nan)
    att = rows_where(s, attended, ["episode_id", "scheduled_date"])
    days_first = (
        att.groupby("episode_id", sort=False)["scheduled_date"].min() - g["window_start"].first()
    ).dt.days
    gaps = att.groupby("episode_id", sort=False)["scheduled_date"].diff().dt.days
    gap = gaps.groupby(att["episode_id"], sort=False)
    client = rows_where(s, ~cs, ["episode_id", "status"])  # those the client could attend

    out = per_episode(
        window,
        {
            "n_scheduled": g.size(),
            "n_attended": sums["att"],
            "n_dna": sums["dna"],
            "attendance_rate": sums["att"] / client_possible,
            "dna_rate": sums["dna"] / client_possible,
            "late_cancel_rate": sums["late"] / client_possible,
            "n_cancel_client": sums["cc"],
            "n_cancel_service": sums["cs"],
            # The first appointment the client could attend (a service cancellation is not
            # the client's doing).
            "first_attended": client.groupby("episode_id", sort=False)["status"]
            .first()
            .eq("attended"),
            "max_consecutive_missed": longest_missed_run(client),
            "days_to_first_attended": days_first,
            "gap_mean_days": gap.mean(),
            "gap_max_days": gap.max(),
            "gap_sd_days": gap.std(),
        },
    )
    return _typed(out, window, "notice_hours" in sessions)


COUNT_COLUMNS = (
    "n_scheduled",
    "n_attended",
    "n_dna",
    "n_cancel_client",
    "n_cancel_service",
    "max_consecutive_missed",
)
"""Attendance counts: 0 for an episode with sessions but none of the kind, missing for an
episode without sessions in the window."""


def longest_missed_run(client: pd.DataFrame) -> pd.Series:
    """Per episode, the longest run of missed appointments (no-show or client
    cancellation) among the sessions the client could attend, in date order.

    A run is numbered by the attended appointments before it; (episode, run) is packed
    into one integer key, a single-key group-by instead of a two-key one."""
    attended = client["status"].eq("attended")
    episode, ids = pd.factorize(client["episode_id"])
    breaks = attended.astype(int).groupby(episode, sort=False).cumsum().to_numpy()
    stride = int(breaks.max()) + 1 if len(breaks) else 1
    run = (episode * stride + breaks)[~attended.to_numpy()]
    runs = pd.Series(run).groupby(run).size()
    return runs.groupby(ids[runs.index.to_numpy() // stride]).max()


def _typed(out: pd.DataFrame, window: pd.DataFrame, has_notice: bool) -> pd.DataFrame:
    """Counts as nullable integers (missing without sessions), the first-attended flag as
    a nullable boolean, and no late-cancellation rate when notice is not recorded."""
    has = window["has_sessions"].to_numpy()
    for col in COUNT_COLUMNS:
        out[col] = out[col].fillna(0).where(has).astype("Int64")
    out["first_attended"] = out["first_attended"].astype("boolean")
    if not has_notice:
        out["late_cancel_rate"] = np.nan
    return out
