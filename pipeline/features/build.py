"""All engagement features for every episode: one row per episode, window columns first."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from pipeline.config import FeaturesParams
from pipeline.features.attendance import attendance_features
from pipeline.features.communication import communication_features
from pipeline.features.goals import goal_features, small_wins
from pipeline.features.index import disengagement_flags, disengagement_index
from pipeline.features.obstacles import obstacle_features
from pipeline.features.window import build_window, with_window_positions
from pipeline.instruments import get_instrument
from pipeline.keys import positions

FEATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "episodes": ("episode_id",),
    "sessions": (
        "episode_id",
        "scheduled_date",
        "status",
        "notice_hours",
        "modality",
        "agenda_set_by",
        "homework_completed",
        "alliance_score",
        "barrier_reported",
    ),
    "measures": ("episode_id", "measure_date", "instrument", "score"),
    "goals": ("goal_id", "episode_id", "set_date", "set_by"),
    "goal_ratings": ("goal_id", "rating_date", "rating"),
    "contacts": ("episode_id", "contact_date", "direction", "responded"),
}
"""The interim columns the features read (the stage reads only these; a test checks that
the features are the same as from the full tables)."""

Blocks = dict[str, Callable[[], pd.DataFrame]]
"""The feature blocks to compute, by name: each depends only on the tables and the window."""


def in_order(blocks: Blocks) -> dict[str, pd.DataFrame]:
    """Each block computed here, one after the other."""
    return {name: block() for name, block in blocks.items()}


def engagement_features(
    tables: dict[str, pd.DataFrame],
    params: FeaturesParams,
    primary_instrument: str,
    extract_date: pd.Timestamp,
    execute: Callable[[Blocks], dict[str, pd.DataFrame]] = in_order,
) -> pd.DataFrame:
    """Features from records inside each episode's landmark window only (never mutates
    ``tables``; optional tables may be absent from the mapping). ``execute`` computes the
    blocks (``episode_features``)."""
    return with_cohort_index(
        episode_features(tables, params, primary_instrument, extract_date, execute)
    )


def episode_features(
    tables: dict[str, pd.DataFrame],
    params: FeaturesParams,
    primary_instrument: str,
    extract_date: pd.Timestamp,
    execute: Callable[[Blocks], dict[str, pd.DataFrame]] = in_order,
) -> pd.DataFrame:
    """Every feature but the cohort-wide index: each episode's row depends only on that
    episode's own records, so any split of the tables by episode gives the same rows (what
    the Dask engine runs per bucket). The blocks are independent of each other: ``execute``
    may compute them side by side (the stage forks a worker per CPU,
    ``pipeline/engine/tasks.py``); they are joined in the same order either way."""
    pos = positions(tables["episodes"]["episode_id"], tables["sessions"]["episode_id"])
    window = build_window(
        tables["episodes"], tables["sessions"], params.window_days, extract_date, pos
    )
    # Four blocks filter the sessions: their episodes looked up once (the positions among
    # the episodes are those in ``window``, whose rows are the episodes in order).
    sessions = with_window_positions(tables["sessions"], window, pos)
    blocks: Blocks = {  # the longest first, for workers side by side
        "goals": lambda: goal_features(
            sessions, tables.get("goals"), tables.get("goal_ratings"), window
        ),
        "attendance": lambda: attendance_features(sessions, window),
        "communication": lambda: communication_features(
            sessions, tables.get("contacts"), window, params.window_days, params.alliance_cutoff
        ),
        "small wins": lambda: small_wins(
            tables["measures"],
            window,
            primary_instrument,
            get_instrument(primary_instrument).higher_is_worse,
        ),
        "obstacles": lambda: obstacle_features(sessions, window),
    }
    done = execute(blocks)
    order = ("attendance", "communication", "goals", "obstacles", "small wins")
    out = pd.concat([window, *(aligned(window, done[name]) for name in order)], axis=1)
    flags = disengagement_flags(out, params.alliance_cutoff)
    return pd.concat([out, flags], axis=1)


def aligned(window: pd.DataFrame, block: pd.DataFrame) -> pd.DataFrame:
    """A block's feature columns on ``window``'s rows: what a left merge on ``episode_id``
    gives, by position when the block's rows are the window's episodes in order (as every
    block builds them, ``per_episode``), else by that merge."""
    ids = window["episode_id"]
    if len(block) == len(window) and block["episode_id"].reset_index(drop=True).equals(ids):
        return block.drop(columns="episode_id").set_axis(window.index)
    merged = window[["episode_id"]].merge(block, on="episode_id", how="left", validate="one_to_one")
    return merged.drop(columns="episode_id").set_axis(window.index)


def with_cohort_index(features: pd.DataFrame) -> pd.DataFrame:
    """Add the disengagement index, standardised over the whole cohort's complete windows
    (so it needs every episode's row at once)."""
    return features.assign(
        disengagement_index=disengagement_index(features, features["window_complete"])
    )
