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
    episodes: pd.DataFrame,
    sessions: pd.DataFrame,
    window_days: int,
    extract_date: pd.Timestamp,
    session_positions: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per episode: window_start, window_end, window_complete, has_sessions.

    Episodes without any scheduled appointment have no window (start and end missing).
    ``session_positions``: each session's episode position in ``episodes`` (-1: none), if
    the caller has it (``positions``); otherwise it is looked up here. Never mutates its
    inputs.
    """
    pos = (
        positions(episodes["episode_id"], sessions["episode_id"])
        if session_positions is None
        else session_positions
    )
    known = pos >= 0
    first = sessions["scheduled_date"][known].groupby(pos[known]).min()
    out = pd.DataFrame({"episode_id": episodes["episode_id"].to_numpy()})
    out["window_start"] = by_position(out, first.astype("datetime64[s]"))
    out["window_end"] = out["window_start"] + pd.Timedelta(days=window_days)
    out["has_sessions"] = out["window_start"].notna()
    out["window_complete"] = (out["window_end"] <= pd.Timestamp(extract_date)).fillna(False)
    return out


WINDOW_POSITION = "_window_position"
"""Column ``with_window_positions`` adds: the row's episode's position in the window."""


def with_window_positions(
    records: pd.DataFrame, window: pd.DataFrame, record_positions: np.ndarray | None = None
) -> pd.DataFrame:
    """``records`` with each row's episode position in ``window`` (-1: no such episode),
    for a table that ``in_window`` will filter more than once (the hash lookup of
    millions of string ids is then done once; or not at all if ``record_positions`` has
    it)."""
    pos = (
        positions(window["episode_id"], records["episode_id"])
        if record_positions is None
        else record_positions
    )
    return records.assign(**{WINDOW_POSITION: pos})


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
    # The id column's strings are replaced by positions, so never filtered.
    out = rows_where(records, inside, [c for c in keep if c != "episode_id"])
    at = keep.index("episode_id") if "episode_id" in keep else len(out.columns)
    out.insert(at, "episode_id", pos[inside])
    out["window_start"] = start[inside]
    out["window_end"] = end[inside]
    return out


def rows_where(
    records: pd.DataFrame, mask: pd.Series | np.ndarray, columns: list[str] | None = None
) -> pd.DataFrame:
    """``records.loc[mask, columns]`` (those of ``columns`` it has; all if None) with a
    fresh RangeIndex, ``mask`` taken by position. Filtered column by column: pandas selects
    rows of Arrow strings by index, several times slower than Arrow's filter (a second for
    ten million appointments)."""
    keep = records.columns if columns is None else [c for c in columns if c in records]
    where = np.asarray(mask, dtype=bool)
    return pd.DataFrame({c: records[c].array[where] for c in keep}, copy=False)


def in_date_order(records: pd.DataFrame, key: str, date_column: str) -> pd.DataFrame:
    """``records`` sorted by ``key`` (integers) then ``date_column``, ties in their order:
    ``sort_values([key, date_column], kind="stable")``, skipped when the rows are in that
    order already (an export sorted by episode and date)."""
    k = records[key].to_numpy()
    d = records[date_column].to_numpy()
    if np.issubdtype(k.dtype, np.integer) and np.issubdtype(d.dtype, np.datetime64):
        dk, dd = np.diff(k), np.diff(d.view(np.int64))  # NaT is the smallest: never "in order"
        if ((dk > 0) | ((dk == 0) & (dd >= 0))).all():
            return records
    return records.sort_values([key, date_column], kind="stable")


def by_position(window: pd.DataFrame, values: pd.Series) -> np.ndarray:
    """Per-episode values (indexed by window position) as an array aligned to ``window``:
    ``values.reindex(range(len(window))).to_numpy()``, missing where an episode has no
    value (integers and flags upcast as reindex does); a take instead of a hash lookup when
    the index is unique positions."""
    n = len(window)
    index = values.index.to_numpy()
    if not (
        len(values)
        and np.issubdtype(index.dtype, np.integer)
        and isinstance(values.array, np.ndarray | pd.arrays.NumpyExtensionArray)
        and index.min() >= 0
        and index.max() < n
    ):
        return values.reindex(range(n)).to_numpy()
    indexer = np.full(n, -1, dtype=np.intp)
    indexer[index] = np.arange(len(index))
    if (indexer >= 0).sum() != len(index):  # duplicate positions: leave it to reindex
        return values.reindex(range(n)).to_numpy()
    return np.asarray(pd.api.extensions.take(values.to_numpy(), indexer, allow_fill=True))


def per_episode(window: pd.DataFrame, values: dict[str, pd.Series]) -> pd.DataFrame:
    """One row per episode of ``window`` (in its order) from position-indexed series."""
    out = window[["episode_id"]].reset_index(drop=True)
    for name, series in values.items():
        out[name] = by_position(window, series)
    return out
