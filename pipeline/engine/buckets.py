"""Episode buckets: how many, which bucket a key falls in, and splitting rows by bucket.

Pure functions with no dependency on ingest or features (both engines' stages use them).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def n_partitions(n_episodes: int, partitions: int | None, episodes_per_partition: int) -> int:
    """``partitions`` if given, else one bucket per ``episodes_per_partition`` episodes."""
    if partitions is not None:
        return partitions
    return max(1, math.ceil(n_episodes / episodes_per_partition))


def bucket_of(keys: pd.Series, partitions: int) -> np.ndarray:
    """The bucket of each key: a stable 64-bit hash of its text (the same in every process
    and run; not Python's salted ``hash``) modulo ``partitions``; missing keys → bucket 0."""
    out = np.zeros(len(keys), dtype=np.int64)
    known = keys.notna().to_numpy()
    if known.any():
        text = pd.Series(keys[known].astype(str).to_numpy(dtype=object))
        hashed = pd.util.hash_pandas_object(text, index=False).to_numpy()
        out[known] = (hashed % np.uint64(partitions)).astype(np.int64)
    return out


def first_bucket_per_key(keys: pd.Series, buckets: np.ndarray) -> np.ndarray:
    """Rows sharing a (non-missing) key all take the bucket of the first of them."""
    first = pd.Series(buckets).groupby(keys.to_numpy(), sort=False, dropna=True).transform("first")
    return np.where(first.notna().to_numpy(), first.to_numpy(dtype=float), buckets).astype(np.int64)


def split_frame(df: pd.DataFrame, buckets: np.ndarray, partitions: int) -> list[pd.DataFrame]:
    """``df``'s rows per bucket, each in ``df``'s order (index reset)."""
    order = np.argsort(buckets, kind="stable")
    bounds = np.cumsum(np.bincount(buckets, minlength=partitions))[:-1]
    return [df.iloc[rows].reset_index(drop=True) for rows in np.split(order, bounds)]
