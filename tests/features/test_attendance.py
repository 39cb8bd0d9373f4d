"""Attendance block: a hand-computed example, checkable by eye."""

import numpy as np
import pandas as pd
import pytest

from pipeline.features.attendance import attendance_features
from pipeline.features.window import build_window


def _sessions(rows):
    df = pd.DataFrame(rows, columns=["episode_id", "scheduled_date", "status", "notice_hours"])
    df["scheduled_date"] = pd.to_datetime(df["scheduled_date"]).astype("datetime64[s]")
    df["session_id"] = [f"s{i}" for i in range(len(df))]
    return df


SESSIONS = _sessions(
    [
        ("A", "2024-01-01", "did_not_attend", None),
        ("A", "2024-01-08", "attended", None),
        ("A", "2024-01-15", "cancelled_by_client", 10.0),  # late cancellation
        ("A", "2024-01-22", "did_not_attend", None),
        ("A", "2024-01-25", "cancelled_by_service", 72.0),
        ("A", "2024-01-29", "attended", None),
        ("A", "2024-02-05", "attended", None),
        ("A", "2024-02-20", "did_not_attend", None),  # after the 42-day window: ignored
        ("B", "2024-03-01", "attended", None),
    ]
)
EPISODES = pd.DataFrame({"episode_id": ["A", "B", "C"]})


@pytest.fixture
def features():
    window = build_window(EPISODES, SESSIONS, 42, pd.Timestamp("2024-12-31"))
    return attendance_features(SESSIONS, window).set_index("episode_id")


def test_window(features):
    window = build_window(EPISODES, SESSIONS, 42, pd.Timestamp("2024-02-01"))
    assert str(window.loc[0, "window_end"].date()) == "2024-02-12"
    assert list(window["window_complete"]) == [False, False, False]
    assert list(window["has_sessions"]) == [True, True, False]


def test_counts_and_rates(features):
    a = features.loc["A"]
    assert (a.n_scheduled, a.n_attended, a.n_cancel_client, a.n_cancel_service) == (7, 3, 1, 1)
    # Denominator: the 6 appointments the client could attend (service cancellation out).
    assert a.attendance_rate == pytest.approx(3 / 6)
    assert a.dna_rate == pytest.approx(2 / 6)
    assert a.late_cancel_rate == pytest.approx(1 / 6)
    assert not a.first_attended


def test_runs_and_gaps(features):
    a = features.loc["A"]
    assert a.max_consecutive_missed == 2  # client cancellation then no-show
    assert a.days_to_first_attended == 7
    assert a.gap_mean_days == pytest.approx(14.0)  # 21 and 7 days between attended sessions
    assert a.gap_max_days == 21
    assert a.gap_sd_days == pytest.approx(np.std([21, 7], ddof=1))


def test_single_attended_session_and_no_sessions(features):
    b, c = features.loc["B"], features.loc["C"]
    assert (b.n_scheduled, b.attendance_rate, b.max_consecutive_missed) == (1, 1.0, 0)
    assert b.first_attended and b.days_to_first_attended == 0
    assert np.isnan(b.gap_mean_days)
    assert pd.isna(c.n_scheduled) and pd.isna(c.attendance_rate)  # no window: not zero
