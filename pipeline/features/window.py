"""The landmark window: where every engagement feature is measured.

It starts at an episode's first scheduled appointment (whatever happened to it) and lasts
``window_days``. Features use only records dated inside it — ``window_start <= date <
window_end`` — so nothing that happens after the landmark (recovery, dropping out) can leak
into a predictor. Windows not complete by the extract date are flagged and must not be
modelled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.keys import positions


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


WINDOW_POSITION = "_window_position"
"""Column ``with_window_positions`` adds: the row's episode's position in the window."""


def with_window_positions(records: pd.DataFrame, window: pd.DataFrame) -> pd.DataFrame:
    """``records`` with each row's episode position in ``window`` (-1: no such episode),
    for a table that ``in_window`` will filter more than once (the hash lookup of
    millions of string ids is then done once)."""
    return records.assign(
        **{WINDOW_POSITION: positions(window["episode_id"], records["episode_id"])}
    )


def in_window(
    records: pd.DataFrame, window: pd.DataFrame, date_column: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """The rows of ``records`` dated inside their episode's window, with the window's bounds.

    For speed at national scale the returned ``episode_id`` is the episode's integer
    *position* in ``window`` (one hash lookup here; every later group-by then runs on
    integers). ``per_episode`` and ``by_position`` map results back to the window's rows.
    A table prepared by ``with_window_positions`` (for this ``window``) skips the lookup.
    """
    if WINDOW_POSITION in records:
        pos = records[WINDOW_POSITION].to_numpy()
    else:
        pos = positions(window["episode_id"], records["episode_id"])
    known = pos >= 0
    take = np.where(known, pos, 0)
    start = window["window_start"].to_numpy()[take]
    end = window["window_end"].to_numpy()[take]
    dates = records[date_column].to_numpy()
    with np.errstate(invalid="ignore"):
        inside = known & (dates >= start) & (dates < end)
    wanted = records.columns if columns is None else ["episode_id", date_column, *columns]
    keep = [c for c in dict.fromkeys(wanted) if c in records and c != WINDOW_POSITION]
    out = records.loc[inside, keep].copy()
    out["episode_id"] = pos[inside]
    out["window_start"] = start[inside]
    out["window_end"] = end[inside]
    return out.reset_index(drop=True)


def by_position(window: pd.DataFrame, values: pd.Series) -> np.ndarray:
    """Per-episode values (indexed by window position) as an array aligned to ``window``."""
    return values.reindex(range(len(window))).to_numpy()


def per_episode(window: pd.DataFrame, values: dict[str, pd.Series]) -> pd.DataFrame:
    """One row per episode of ``window`` (in its order) from position-indexed series."""
    out = pd.DataFrame({"episode_id": window["episode_id"].to_numpy()})
    for name, series in values.items():
        out[name] = by_position(window, series)
    return out
