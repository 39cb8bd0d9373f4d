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
    # a date is not a count (the year 2024 was once "rounded" to 2025)
    assert scrub_text("split at 2024-06-28: 112 rows", D) == "split at 2024-06-28: 110 rows"


# --- rules against a differencing attack (docs/methods.md §7) ---------------------------


def test_a_shown_rate_is_the_ratio_of_the_published_counts():
    # 72 of 462: published 70 and 460, so the share is 70/460 = 0.1522 (72/462 = 0.1558
    # would give the exact counts back, tests/test_disclosure_audit.py)
    assert rate(72, 462, D).value == 70 / 460
    assert rate(8, 16, D).value == 10 / 15  # 8 and its complement 8: at the threshold


def test_a_curve_is_shared_at_fixed_weeks_at_a_precision_its_at_risk_supports():
    from pipeline.disclosure import quantum, safe_curve

    # one step of the precision must span 5 events (people per event × precision ≥ 5)
    assert quantum(49, D) is None and quantum(50, D) == 0.1
    assert quantum(100, D) == 0.05 and quantum(5000, D) == 0.001
    days = np.arange(1.0, 120.0)  # one event a day, at risk 200 … 82
    curve = pd.DataFrame({"group": "0", "time": days, "survival": 1 - days / 200,
                          "ci_low": 1 - days / 180, "ci_high": 1 - days / 220,
                          "n_at_risk": 200 - days + 1})  # fmt: skip
    shared = safe_curve(curve, "survival", D)
    assert shared["week"].tolist() == list(range(0, 18, 2))  # weeks 0, 2, … while known
    week4 = shared.set_index("week").loc[4]
    # day 28: S = 0.86 at 173 at risk, one event moves S by 0.86/173 (1/201): 0.02 would
    # span 4 events, 0.05 spans 10
    assert week4["precision"] == 0.05 and week4["survival"] == 0.85
    assert (week4["ci_low"], week4["ci_high"]) == (0.8, 0.9)  # widened outwards
    assert week4["n_at_risk"] == 173
    # 15 at risk: no precision up to 0.1 spans 5 events, so nothing is shown
    assert safe_curve(curve.assign(n_at_risk=curve["n_at_risk"] - 185), "survival", D).empty
    # no censoring: S/n stays 1/200, so the curve runs on until fewer than 8 are at risk
    days = np.arange(1.0, 200.0)
    full = pd.DataFrame({"group": "0", "time": days, "survival": 1 - days / 200,
                         "ci_low": 0.0, "ci_high": 1.0, "n_at_risk": 200 - days + 1})  # fmt: skip
    shared = safe_curve(full, "survival", D)
    assert shared["week"].max() == 26 and shared["n_at_risk"].min() == 19  # day 196: 5 left


def test_a_term_with_few_events_at_its_level_is_withheld_with_the_reason_on_the_card():
    from pipeline.disclosure import SPARSE_STATUS, safe_card, safe_result_table

    tidy = pd.DataFrame({"model": "m", "term": ["gender_x", "gender_y", "age"],
                         "estimate": [2.0, 1.5, 1.1], "ci_low": [1.0, 1.1, 1.0],
                         "ci_high": [4.0, 2.0, 1.2], "p_value": [0.04, 0.01, 0.2],
                         "n_analysed": 500, "status": "fitted",
                         "level_min": [4.0, 40.0, np.nan]})  # fmt: skip
    safe = safe_result_table(tidy, D, "poor_outcome")
    assert safe.loc[0, ["estimate", "ci_low", "ci_high", "p_value"]].tolist() == ["withheld"] * 4
    assert safe.loc[0, "status"] == SPARSE_STATUS and safe.loc[1, "status"] == "fitted"
    assert safe.loc[1, "estimate"] == "1.5" and "level_min" not in safe  # exact: not shared
    card = {"model": "m", "n_input": 500, "n_analysed": 500, "notes": [],
            "level_counts": {"gender_x": [4, 9], "gender_y": [40, 60]}}  # fmt: skip
    shared = safe_card(card, D)
    assert "level_counts" not in shared
    assert shared["notes"] == [
        "estimates withheld for gender_x: fewer than the disclosure threshold of events or "
        "of non-events at that level among the rows this model analysed"
    ]


def test_the_fitters_count_events_and_non_events_per_level_among_the_analysed():
    from pipeline.models.tidy import level_outcomes

    x = pd.DataFrame({"const": 1.0, "a": [1, 1, 1, 0, 0.0], "z": [0.5, 1, 2, 3, 4]})
    y = pd.Series([1, 0, 1, 1, 0.0])
    assert level_outcomes(x, y) == {"a": (2, 1)}  # not the constant, not a continuous term


def test_labels_from_the_input_are_whitelisted_and_never_scrubbed_as_counts():
    from pipeline.disclosure import safe_label, safe_result_table, scrub_text

    assert safe_label("<script>alert(1)</script>", D) == "_script_alert(1)_/script_"
    # = and @ are not in the whitelist; + and - are, so a leading one is quoted
    assert safe_label("=HYPERLINK(1)", D) == "_HYPERLINK(1)"
    assert safe_label("@SUM(A1)", D) == "_SUM(A1)" and safe_label("+1", D) == "'+1"
    assert safe_label("CBT 2+", D) == "CBT 2+"
    assert safe_label("a\x00b\tc\"d", D) == "a_b_c_d"
    assert len(safe_label("x" * 500, D)) == D.label_max_chars
    # a quoted label keeps its digits; the rest of the note is scrubbed
    note = "PH check `treatment_<b>3</b>`: 3 row(s)"
    assert scrub_text(note, D) == "PH check treatment__b_3_/b_: <8 row(s)"
    tidy = pd.DataFrame({"model": "m", "term": ["treatment_<i>x</i>", "-cmd"],
                         "estimate": [1.2, 1.3], "n_analysed": [100, 100]})  # fmt: skip
    assert safe_result_table(tidy, D, "poor_outcome")["term"].tolist() == [
        "treatment__i_x_/i_", "'-cmd"
    ]
