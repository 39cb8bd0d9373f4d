"""Optional re-keying: replace every id with a keyed hash (HMAC-SHA256).

The key comes from an environment variable named in params (never from params or files in
the repository), so downstream files never carry the source system's ids and nobody without
the key can link them back. The same id gets the same token in every table (the column's
id family is part of the message), so joins still work.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np
import pandas as pd

from pipeline.ingest.read import InputError

TOKEN_HEX_CHARS = 20  # 80 bits: collisions negligible even at 10^8 ids (checked anyway)


def key_from_environment(variable: str) -> bytes:
    value = os.environ.get(variable, "")
    if len(value) < 16:
        raise InputError(
            f"Re-keying is switched on (ingest.rekey: true) but the environment variable "
            f"{variable} is {'not set' if not value else 'shorter than 16 characters'}. Set it "
            f"to a long secret (for example `export {variable}=$(openssl rand -hex 32)`); keep "
            "it out of the repository and params.yaml."
        )
    return value.encode("utf-8")


def rekey_column(values: pd.Series, column: str, key: bytes) -> pd.Series:
    """Tokens for each value (hashed once per distinct value, not per row). Text is trimmed
    first, as ingest trims accepted ids, so a quarantined row's padded id (``' e1 '``) gets
    the token of its accepted ``e1`` and can still be linked to its episode."""
    if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        values = values.astype("string").str.strip().replace("", pd.NA)  # type: ignore[call-overload]  # pandas-stubs: NA as a replacement
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    prefix = f"{column}:".encode()  # a column name is the same in every table that holds it
    tokens = np.array(
        [
            hmac.new(key, prefix + str(u).encode("utf-8"), hashlib.sha256).hexdigest()[
                :TOKEN_HEX_CHARS
            ]
            for u in uniques
        ],
        dtype=object,
    )
    if len(set(tokens)) != len(tokens):
        raise InputError(f"Re-keying produced a collision in {column}; use a different key.")
    picked = tokens[np.maximum(codes, 0)] if len(tokens) else None
    out = np.where(codes >= 0, picked, None)  # type: ignore[arg-type]  # numpy stubs: object arrays
    return pd.Series(out, index=values.index, dtype="string")


def rekey_frame(df: pd.DataFrame, id_columns: list[str], key: bytes) -> pd.DataFrame:
    """A copy of ``df`` with every listed id column re-keyed."""
    out = df.copy()
    for column in id_columns:
        if column in out:
            out[column] = rekey_column(out[column], column, key)
    return out
