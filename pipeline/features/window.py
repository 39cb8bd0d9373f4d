"""The landmark window: where every engagement feature is measured.

It starts at an episode's first scheduled appointment (whatever happened to it) and lasts
``window_days``. Features use only records dated inside it — ``window_start <= date <
window_end`` — so nothing that happens after the landmark (recovery, dropping out) can leak
into a predictor. Windows not complete by the extract date are flagged and must not be
modelled.
"""

from __future__ import annotations

import pandas as pd


def build_window(
    episodes: pd.DataFrame, sessions: pd.DataFrame, window_days: int, extract_date: pd.Timestamp
) -> pd.DataFrame:
    """One row per episode: window_start, window_end, window_complete, has_sessions.

    Episodes without any scheduled appointment have no window (start and end missing).
    Never mutates its inputs.
    """
    first = sessions.groupby("episode_id", sort=False)["scheduled_date"].min()
    out = pd.DataFrame({"episode_id": episodes["episode_id"].to_numpy()})
    out["window_start"] = pd.Series(
        first.astype("datetime64[s]").reindex(out["episode_id"]).to_numpy(), index=out.index
    )
    out["window_end"] = out["window_start"] + pd.Timedelta(days=window_days)
    out["has_sessions"] = out["window_start"].notna()
    out["window_complete"] = (out["window_end"] <= pd.Timestamp(extract_date)).fillna(False)
    return out


def in_window(records: pd.DataFrame, window: pd.DataFrame, date_column: str) -> pd.DataFrame:
    """The rows of ``records`` dated inside their episode's window (with window columns)."""
    merged = records.merge(
        window[["episode_id", "window_start", "window_end"]], on="episode_id", how="inner"
    )
    inside = (merged[date_column] >= merged["window_start"]) & (
        merged[date_column] < merged["window_end"]
    )
    return merged[inside.fillna(False)].reset_index(drop=True)


def per_episode(window: pd.DataFrame, values: dict[str, pd.Series]) -> pd.DataFrame:
    """Align per-episode series to the window's episodes (one row each, in its order)."""
    out = pd.DataFrame({"episode_id": window["episode_id"].to_numpy()})
    for name, series in values.items():
        out[name] = out["episode_id"].map(series)
    return out
