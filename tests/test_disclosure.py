"""Disclosure control by hand: suppression, rounding, withheld estimates, secondary
suppression, and suppressed never confused with missing."""

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import DisclosureParams
from pipeline.disclosure import count, estimate, rate, safe_frame, suppress_table

D = DisclosureParams()  # threshold 8, base 5


def test_counts_are_suppressed_below_eight_and_otherwise_rounded_to_five():
    assert [count(n, D).text() for n in (0, 1, 7, 8, 12, 13, 1234)] == [
        "0", "< 8", "< 8", "10", "10", "15", "1,235",
    ]  # fmt: skip
    assert count(None, D).text() == "—" and count(float("nan"), D).text() == "—"
    assert count(3, D).state == "suppressed" and count(None, D).state == "missing"


def test_rates_resting_on_few_people_or_revealing_a_small_count_are_withheld():
    assert rate(30, 60, D).value == 0.5
    assert rate(3, 6, D).state == "withheld"  # fewer than 8 people
    assert rate(5, 100, D).state == "withheld"  # the numerator is a suppressible count
    assert rate(95, 100, D).state == "withheld"  # so is its complement
    assert rate(0, 100, D).value == 0.0 and rate(0, 0, D).state == "missing"
    assert estimate(2.5, 7, D).state == "withheld" and estimate(2.5, 8, D).value == 2.5


def test_secondary_suppression_by_hand():
    # Row a has one small cell (3): its row total would reveal it, so the next smallest
    # cell in row a (20) is suppressed too; column x then holds one suppressed cell (3),
    # so its next smallest (40, row b) goes as well; row b then has one, and so on.
    t = pd.DataFrame({"x": [3, 40, 100], "y": [20, 50, 60], "z": [30, 45, 70]}, index=list("abc"))
    out = suppress_table(t, D)
    states = out.map(lambda c: c.state)
    assert states.loc["a", "x"] == "suppressed" and states.loc["a", "y"] == "suppressed"
    body = states.loc[list("abc"), ["x", "y", "z"]]
    # No row or column has exactly one suppressed cell.
    assert ((body == "suppressed").sum(axis=1) != 1).all()
    assert ((body == "suppressed").sum(axis=0) != 1).all()
    # Totals come from the exact counts, rounded: row a = 53 → 55; grand total 418 → 420.
    assert out.loc["a", "Total"].text() == "55" and out.loc["Total", "Total"].text() == "420"


@given(st.lists(st.integers(0, 60), min_size=6, max_size=6))
def test_no_line_of_a_suppressed_table_has_a_single_suppressed_cell(values):
    t = pd.DataFrame(np.array(values).reshape(2, 3), columns=["x", "y", "z"], index=["a", "b"])
    states = suppress_table(t, D).map(lambda c: c.state).loc[["a", "b"], ["x", "y", "z"]]
    hidden = states == "suppressed"
    for axis in (0, 1):
        lines = hidden.sum(axis=axis)
        nonzero = (t > 0).sum(axis=axis)
        # one hidden cell is only allowed when it is the line's only non-zero cell (its
        # total is then itself suppressed as a small count)
        assert ((lines != 1) | (nonzero == 1)).all()
    # every shown count is a multiple of 5 or zero
    cells = suppress_table(t, D).to_numpy().ravel()
    assert all(c.value % 5 == 0 for c in cells if c.shown)


def test_safe_frame_withholds_estimates_on_small_counts_and_flags_why():
    d = pd.DataFrame({"n": [3, 40, 0], "share": [0.33, 0.5, np.nan]})
    safe = safe_frame(d, ["n"], {"share": "n"}, D)
    assert np.isnan(safe.loc[0, "share"]) and safe.loc[1, "share"] == 0.5
    assert safe["n_flag"].tolist() == ["suppressed", "shown", "shown"]
    assert safe.loc[1, "n"] == 40 and np.isnan(safe.loc[0, "n"])


def test_result_tables_withhold_by_their_own_count_and_drop_intercepts():
    from pipeline.disclosure import safe_result_table

    side = pd.DataFrame(
        {
            "term": ["x", "y"],
            "estimate_unadjusted": [2.0, 3.0],
            "n_analysed_unadjusted": [100, 100],
            "estimate_adjusted": [2.5, 3.5],
            "n_analysed_adjusted": [100, 5],
        }
    )
    safe = safe_result_table(side, D, "poor_outcome_side_by_side")
    assert safe.loc[1, "estimate_adjusted"] == "withheld"
    assert safe.loc[1, "estimate_unadjusted"] == "3"
    assert safe.loc[1, "n_analysed_adjusted"] == "<8"
    tidy = pd.DataFrame(
        {"term": ["const", "x"], "estimate": [0.494163, 1.7], "n_analysed": [1373, 1373]}
    )
    assert list(safe_result_table(tidy, D, "poor_outcome")["term"]) == ["x"]


def test_shares_that_reveal_a_small_count_are_withheld_and_rounded():
    from pipeline.disclosure import safe_result_table

    cal = pd.DataFrame({"bin": [1, 2], "n": [211, 210], "events": [1, 105],
                        "observed": [1 / 211, 0.5], "mean_predicted": [0.01, 0.49]})  # fmt: skip
    safe = safe_result_table(cal, D, "prediction_calibration")
    assert safe.loc[0, "observed"] == "withheld" and safe.loc[1, "observed"] == "0.5"
    assert safe.loc[0, "events"] == "<8" and safe.loc[0, "n"] == "210"


def test_a_table_without_counts_must_be_declared():
    import pytest

    from pipeline.disclosure import safe_result_table

    with pytest.raises(ValueError, match=r"not declared in pipeline/catalog\.py"):
        safe_result_table(pd.DataFrame({"estimate": [1.0]}), D, "new_table")
    safe_result_table(pd.DataFrame({"sd": [1.0]}), D, "trajectory_variance")
    # a declared table that lost its count columns no longer matches its declaration
    with pytest.raises(ValueError, match="declared count columns"):
        safe_result_table(pd.DataFrame({"estimate": [1.0]}), D, "poor_outcome")


def test_scrubbing_counts_in_free_text():
    from pipeline.disclosure import scrub_text

    assert scrub_text("3 row(s) dropped", D) == "<8 row(s) dropped"
    assert scrub_text("dropped 4.", D) == "dropped <8."
    assert scrub_text("112 rows; p = 3e-12; r = 0.123", D) == "110 rows; p = 3e-12; r = 0.123"
    assert scrub_text("flags_group_2+ and x1", D) == "flags_group_2+ and x1"
