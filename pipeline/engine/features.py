"""Engagement features on a Dask cluster: per episode bucket, then the cohort-wide index.

1. Split (a task per Parquet row group of each ingested table): rows to the bucket of their
   episode (``goal_ratings`` to the bucket of their goal's episode, from a first pass over
   ``goals``), keeping the table's order.
2. Per bucket (a task): ``episode_features`` on that bucket's rows of every table, the same
   function the pandas engine runs on the whole cohort. Every feature of an episode depends
   only on its own records, so its row is the same either way.
3. Once, on the client: the buckets' rows back in the episodes table's order, then the
   disengagement index (``with_cohort_index``), which standardises against the whole
   cohort's complete windows and so needs every episode at once (one row per episode:
   small).
"""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.config import FeaturesParams
from pipeline.engine.buckets import bucket_of, split_frame
from pipeline.engine.cluster import gather
from pipeline.features.build import episode_features, with_cohort_index
from pipeline.instruments import active_registry, in_registry

POSITION = "_engage_position"
"""An episode's row number in the ingested episodes table (restores its order)."""


def row_groups(path: Path) -> list[tuple[int | None, int]]:
    """(row group, offset of its first row) for each row group of a Parquet file; a file
    without any is read whole (group None), so every table gives its typed columns."""
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    offsets: list[int] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    offsets = offsets if sizes else []
    groups: list[tuple[int | None, int]] = [
        (i, int(o)) for i, o in zip(range(len(sizes)), offsets, strict=True)
    ]
    return groups or [(None, 0)]


def read_row_group(path: Path, group: int | None, columns: list[str] | None = None) -> pd.DataFrame:
    """One row group (None: the whole file), typed as ``pandas.read_parquet`` types it."""
    if group is None:
        return pd.read_parquet(path, columns=columns)
    return pq.ParquetFile(path).read_row_group(group, columns=columns).to_pandas()


def goal_buckets(path: Path, group: int | None, partitions: int) -> pd.Series:
    """Task: bucket of each goal (its episode's) in one row group of the goals table."""
    goals = read_row_group(path, group, ["goal_id", "episode_id"])
    return pd.Series(bucket_of(goals["episode_id"], partitions), index=goals["goal_id"].to_numpy())


def split_group(
    path: Path,
    group: int | None,
    offset: int,
    table: str,
    partitions: int,
    goals: list[pd.Series] | None = None,
) -> list[pd.DataFrame]:
    """Task: one row group of an ingested table, split into the buckets of its episodes."""
    df = read_row_group(path, group)
    if table == "episodes":
        df[POSITION] = np.arange(offset, offset + len(df), dtype="int64")
    if table == "goal_ratings":
        by_goal = pd.concat(goals) if goals else pd.Series(dtype="int64")
        mapped = by_goal.reindex(df["goal_id"].to_numpy()).to_numpy(dtype=float)
        fallback = bucket_of(df["goal_id"], partitions)
        buckets = np.where(np.isnan(mapped), fallback, mapped).astype(np.int64)
    else:
        buckets = bucket_of(df["episode_id"], partitions)
    return split_frame(df, buckets, partitions)


def features_bucket(
    pieces: dict[str, list[pd.DataFrame]],
    params: FeaturesParams,
    primary_instrument: str,
    extract: pd.Timestamp,
) -> pd.DataFrame | None:
    """Task: every per-episode feature of one bucket (None if it has no episode), with each
    episode's position in the episodes table."""
    tables = {t: pd.concat(p, ignore_index=True) for t, p in pieces.items()}
    episodes = tables["episodes"]
    if episodes.empty:
        return None
    tables["episodes"] = episodes.drop(columns=POSITION)
    out = episode_features(tables, params, primary_instrument, extract)
    out[POSITION] = episodes[POSITION].to_numpy()
    return out


def features_partitioned(
    client,
    interim: dict[str, Path],
    partitions: int,
    params: FeaturesParams,
    primary_instrument: str,
    extract: pd.Timestamp,
) -> pd.DataFrame:
    """The features table the pandas engine makes from the ingested tables in ``interim``
    (table → Parquet file), computed on the cluster in ``partitions`` episode buckets."""
    goals = None
    if "goals" in interim and "goal_ratings" in interim:
        goals = [
            client.submit(goal_buckets, interim["goals"], group, partitions, pure=False)
            for group, _ in row_groups(interim["goals"])
        ]
    splits: dict[str, list] = {}
    for table, path in interim.items():
        splits[table] = [
            client.submit(split_group, path, group, offset, table, partitions, goals, pure=False)
            for group, offset in row_groups(path)
        ]
    buckets = []
    registry = active_registry()  # the primary instrument may be one params register
    for b in range(partitions):
        pieces = {
            t: [client.submit(operator.getitem, s, b) for s in futures]
            for t, futures in splits.items()
        }
        buckets.append(
            client.submit(
                in_registry,
                registry,
                features_bucket,
                pieces,
                params,
                primary_instrument,
                extract,
                pure=False,
            )
        )
    try:
        rows = [r for r in gather(client, buckets) if r is not None]
    finally:
        client.cancel(buckets)
    if not rows:
        raise ValueError("the ingested episodes table has no rows; run ingest again.")
    out = rows[0] if len(rows) == 1 else pd.concat(rows, ignore_index=True)
    order = np.argsort(out[POSITION].to_numpy(), kind="stable")
    out = out.iloc[order].drop(columns=POSITION).reset_index(drop=True)
    return with_cohort_index(out)
