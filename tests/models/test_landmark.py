"""Landmark selection, by hand, and the UIS exposures known at the landmark."""

import numpy as np
import pandas as pd
import pytest

from pipeline.models.landmark import landmark
from pipeline.models.replication import uis_at_landmark
from pipeline.models.tidy import ModelError


def test_keeps_only_people_still_at_risk_and_resets_the_clock():
    d = pd.DataFrame({"id": [1, 2, 3, 4], "t": [10.0, 30.0, 31.0, 100.0], "e": [1, 0, 1, 1]})
    out = landmark(d, "t", 30)
    # 1 had the event before, 2 was censored exactly at the landmark: neither is at risk after.
    assert out["id"].tolist() == [3, 4]
    assert out["time_from_landmark"].tolist() == [1.0, 70.0]
    assert out["e"].tolist() == [1, 1]
    assert "time_from_landmark" not in d  # input untouched


def test_landmark_zero_keeps_everyone_with_positive_time():
    d = pd.DataFrame({"t": [0.0, 5.0]})
    assert landmark(d, "t", 0)["time_from_landmark"].tolist() == [5.0]


@pytest.mark.parametrize(
    ("at", "column", "times", "message"),
    [
        (-1, "t", [1.0, 2.0], "must be >= 0"),
        (5, "nope", [1.0, 2.0], "not in the data"),
        (500, "t", [1.0, 2.0], "no one"),
        (1, "t", [1.0, None, 3.0], "1 row\\(s\\) have no 't'"),
    ],
)
def test_bad_landmarks_fail_clearly(at, column, times, message):
    with pytest.raises(ModelError, match=message):
        landmark(pd.DataFrame({"t": times}), column, at)


def test_uis_exposures_use_only_what_is_known_at_the_landmark():
    d = pd.DataFrame(
        {
            "TIME": [50.0, 120.0, 400.0, 200.0],
            "CENSOR": [1, 1, 0, 1],
            "LEN.T": [40.0, 100.0, 170.0, 60.0],
            "planned_days": [90.0, 180.0, 180.0, 90.0],
        }
    )
    d.loc[len(d)] = [150.0, 1, 90.0, 90.0]  # left on day 90 itself
    out = uis_at_landmark(d, 90)
    assert out["TIME"].tolist() == [120.0, 400.0, 200.0, 150.0]  # relapsed on day 50: out
    # Days in treatment up to day 90 only, over the planned stay.
    np.testing.assert_allclose(out["frac_at_landmark"], [90 / 180, 90 / 180, 60 / 90, 1.0])
    np.testing.assert_allclose(out["months_at_landmark"], [3.0, 3.0, 2.0, 3.0])
    # Still in treatment *after* the landmark; leaving on day 90 is not.
    assert out["in_treatment_at_landmark"].tolist() == [1.0, 1.0, 0.0, 0.0]
    np.testing.assert_allclose(out["time_from_landmark"], [30.0, 310.0, 110.0, 60.0])
    # What happens after day 90 (a longer stay) cannot change the exposure.
    longer = uis_at_landmark(d.assign(**{"LEN.T": [40.0, 179.0, 179.0, 60.0, 90.0]}), 90)
    pd.testing.assert_series_equal(longer["frac_at_landmark"], out["frac_at_landmark"])


def test_term_row_returns_one_term_and_names_the_terms_when_absent():
    from types import SimpleNamespace

    from pipeline.models.tidy import term_row

    fit = SimpleNamespace(
        coefficients=pd.DataFrame({"term": ["a", "b"], "estimate": [1.5, 0.5]}),
        card=SimpleNamespace(model="m"),
    )
    assert term_row(fit, "b")["estimate"] == 0.5
    with pytest.raises(ModelError, match="'c' is not a term of 'm' \\(terms: a, b\\)"):
        term_row(fit, "c")
