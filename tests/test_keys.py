"""Id lookups: Arrow's hash lookup gives exactly pandas' get_indexer positions."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.keys import positions


def test_hand_computed_positions_with_absent_and_missing_values():
    keys = pd.Series(["E2", "E1", "E3"], dtype="str")
    values = pd.Series(["E1", "E9", None, "E3", "E1"], dtype="str")
    assert positions(keys, values).tolist() == [1, -1, -1, 2, 1]


@given(
    keys=st.lists(st.text(min_size=1, max_size=4), unique=True, max_size=30),
    extra=st.lists(st.text(max_size=4), max_size=30),
    dtype=st.sampled_from(["str", "object", "string"]),
)
def test_positions_equal_get_indexer(keys, extra, dtype):
    values = pd.Series(keys[::2] + extra, dtype=dtype)
    k = pd.Series(keys, dtype="str")
    np.testing.assert_array_equal(positions(k, values), pd.Index(k).get_indexer(values))


def test_numbers_fall_back_to_pandas():
    assert positions(pd.Series([10, 20]), pd.Series([20, 30, 10])).tolist() == [1, -1, 0]


def test_duplicate_keys_are_refused_like_get_indexer():
    with pytest.raises(ValueError, match="not unique"):
        positions(pd.Series(["a", "a", "b"], dtype="str"), pd.Series(["a"], dtype="str"))


def test_object_ids_that_are_not_strings_are_not_coerced():
    keys = pd.Series(["1", "2"], dtype="str")
    assert positions(keys, pd.Series([1, 2], dtype=object)).tolist() == [-1, -1]
