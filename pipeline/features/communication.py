"""Open communication in the landmark window: alliance, contacts, shared agendas.

Where an optional table or column is absent, its features are missing ("not available in
this dataset"), never zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.window import by_position, in_window, per_episode, rows_where

REPLY_DAYS = 7  # the contract: "did the client reply within 7 days"
COMMUNICATION_COLUMNS = (
    "alliance_mean",
    "alliance_min",
    "alliance_slope_per_week",
    "alliance_low_share",
    "client_contacts_per_week",
    "outreach_response_rate",
    "agenda_client_share",
)


def _slope_per_week(days: pd.Series, values: pd.Series, episode: pd.Series) -> pd.Series:
    """OLS slope of ``values`` on time (per week), per episode, from group sums (vectorised).
    Needs two ratings on different days."""
    df = pd.DataFrame({"e": episode, "x": days / 7.0, "y": values}).dropna()
    df["xy"], df["xx"] = df["x"] * df["y"], df["x"] * df["x"]
    g = df.groupby("e", sort=False)
    n = g.size()
    sx, sy, sxy, sxx = g["x"].sum(), g["y"].sum(), g["xy"].sum(), g["xx"].sum()
    denom = n * sxx - sx * sx
    return ((n * sxy - sx * sy) / denom.where(denom > 1e-12)).where(n >= 2)


def _attended_values(s: pd.DataFrame, alliance_cutoff: float) -> dict[str, pd.Series]:
    """Alliance and agenda features from the attended sessions among ``s`` (``in_window``
    rows), per episode position."""
    att = rows_where(
        s,
        s["status"].eq("attended"),
        ["episode_id", "scheduled_date", "window_start", "alliance_score", "agenda_set_by"],
    )
    values: dict[str, pd.Series] = {}
    if "alliance_score" in att:
        rated = rows_where(
            att,
            att["alliance_score"].notna(),
            ["episode_id", "scheduled_date", "window_start", "alliance_score"],
        )
        g = rated.groupby("episode_id", sort=False)["alliance_score"]
        days = (rated["scheduled_date"] - rated["window_start"]).dt.days
        values |= {
            "alliance_mean": g.mean(),
            "alliance_min": g.min(),
            "alliance_slope_per_week": _slope_per_week(
                days, rated["alliance_score"], rated["episode_id"]
            ),
            "alliance_low_share": (rated["alliance_score"] <= alliance_cutoff)
            .groupby(rated["episode_id"], sort=False)
            .mean(),
        }
    if "agenda_set_by" in att:
        known = rows_where(att, att["agenda_set_by"].notna(), ["episode_id", "agenda_set_by"])
        values["agenda_client_share"] = (
            known["agenda_set_by"]
            .isin(["client", "shared"])
            .groupby(known["episode_id"], sort=False)
            .mean()
        )
    return values


def _contact_values(
    contacts: pd.DataFrame, window: pd.DataFrame, window_days: int
) -> dict[str, np.ndarray]:
    """Client contacts per week and the outreach response rate, aligned to ``window``."""
    c = in_window(contacts, window, "contact_date")
    to_service = rows_where(c, c["direction"].eq("client_to_service"), ["episode_id"])
    client = to_service.groupby("episode_id").size()
    values = {
        "client_contacts_per_week": np.nan_to_num(by_position(window, client)) / (window_days / 7.0)
    }
    if "responded" in c:
        # A reply counts within 7 days: only outreach whose reply period closes inside
        # the window, or the feature would see behaviour after the landmark.
        settled = c["contact_date"] < c["window_end"] - pd.Timedelta(days=REPLY_DAYS)
        outreach = rows_where(
            c,
            c["direction"].eq("service_to_client") & c["responded"].notna() & settled,
            ["episode_id", "responded"],
        )
        rate = outreach["responded"].astype(float).groupby(outreach["episode_id"]).mean()
        values["outreach_response_rate"] = by_position(window, rate)
    return values


def communication_features(
    sessions: pd.DataFrame,
    contacts: pd.DataFrame | None,
    window: pd.DataFrame,
    window_days: int,
    alliance_cutoff: float,
) -> pd.DataFrame:
    """One row per episode of ``window``."""
    s = in_window(sessions, window, "scheduled_date", ["status", "alliance_score", "agenda_set_by"])
    out = per_episode(window, _attended_values(s, alliance_cutoff))
    if contacts is not None:
        for name, values in _contact_values(contacts, window, window_days).items():
            out[name] = values
    for col in COMMUNICATION_COLUMNS:  # absent table or column: missing, not zero
        if col not in out:
            out[col] = np.nan
    out.loc[~window["has_sessions"].to_numpy(), list(COMMUNICATION_COLUMNS)] = np.nan
    return out[["episode_id", *COMMUNICATION_COLUMNS]]
