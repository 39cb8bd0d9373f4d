"""Communication, goals, obstacles, flags and index: hand-computed examples."""

import numpy as np
import pandas as pd
import pytest

from pipeline.features.communication import communication_features
from pipeline.features.goals import goal_features, small_wins
from pipeline.features.index import disengagement_flags, disengagement_index
from pipeline.features.obstacles import obstacle_features
from pipeline.features.window import build_window


def _dates(df, *cols):
    for c in cols:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[s]")
    return df


SESSIONS = _dates(
    pd.DataFrame(
        {
            "session_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
            "episode_id": ["A", "A", "A", "A", "A", "B"],
            "scheduled_date": [
                "2024-01-01",
                "2024-01-08",
                "2024-01-15",
                "2024-01-22",
                "2024-03-01",
                "2024-02-01",
            ],
            "status": [
                "attended",
                "attended",
                "did_not_attend",
                "attended",
                "attended",
                "cancelled_by_client",
            ],
            "notice_hours": [None, None, None, None, None, 48.0],
            "alliance_score": [30.0, 34.0, None, 38.0, 10.0, None],  # s5 is after the window
            "agenda_set_by": ["clinician", "shared", None, "client", "client", None],
            "homework_completed": [None, "full", None, "partial", "none", None],
            "barrier_reported": ["none", "work", None, "none", "health", None],
            "modality": ["video", "video", "phone", "in_person", "video", "phone"],
        }
    ),
    "scheduled_date",
)
CONTACTS = _dates(
    pd.DataFrame(
        {
            "episode_id": ["A", "A", "A", "A", "B"],
            "contact_date": ["2024-01-03", "2024-01-16", "2024-01-20", "2024-03-05", "2024-02-02"],
            "direction": [
                "client_to_service",
                "service_to_client",
                "service_to_client",
                "client_to_service",
                "service_to_client",
            ],
            "responded": [None, True, False, None, None],
        }
    ),
    "contact_date",
)
GOALS = _dates(
    pd.DataFrame(
        {
            "goal_id": ["g1", "g2", "g3"],
            "episode_id": ["A", "A", "B"],
            "set_date": ["2024-01-08", "2024-01-08", "2024-03-30"],  # g3 after B's window
            "set_by": ["client", "clinician", "client"],
        }
    ),
    "set_date",
)
RATINGS = _dates(
    pd.DataFrame(
        {
            "goal_id": ["g1", "g1", "g1", "g2"],
            "rating_date": ["2024-01-08", "2024-01-22", "2024-03-01", "2024-01-08"],
            "rating": [2.0, 5.0, 9.0, 4.0],
        }
    ),
    "rating_date",
)
MEASURES = _dates(
    pd.DataFrame(
        {
            "episode_id": ["A", "A", "A", "A"],
            "measure_date": ["2024-01-01", "2024-01-08", "2024-01-22", "2024-03-01"],
            "instrument": ["PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9"],
            "score": [18.0, 16.0, 13.0, 5.0],
        }
    ),
    "measure_date",
)
EPISODES = pd.DataFrame({"episode_id": ["A", "B"]})
WINDOW = build_window(EPISODES, SESSIONS, 42, pd.Timestamp("2024-12-31"))


def test_communication():
    f = communication_features(SESSIONS, CONTACTS, WINDOW, 42, 36).set_index("episode_id")
    a = f.loc["A"]
    assert a.alliance_mean == pytest.approx(34.0)  # 30, 34, 38 (the 10 is after the window)
    assert a.alliance_min == 30
    # weeks 0, 1, 3 with 30, 34, 38: slope = 12 / (42 / 9) = 18 / 7 points per week
    assert a.alliance_slope_per_week == pytest.approx(18 / 7)
    assert a.alliance_low_share == pytest.approx(2 / 3)
    assert a.agenda_client_share == pytest.approx(2 / 3)
    assert a.client_contacts_per_week == pytest.approx(1 / 6)  # 1 contact in 6 weeks
    assert a.outreach_response_rate == pytest.approx(0.5)
    b = f.loc["B"]
    assert np.isnan(b.alliance_mean) and b.client_contacts_per_week == 0
    assert np.isnan(b.outreach_response_rate)  # outreach with unknown reply


def test_communication_without_contacts_table_is_missing_not_zero():
    f = communication_features(SESSIONS, None, WINDOW, 42, 36)
    assert f["client_contacts_per_week"].isna().all()
    assert f["outreach_response_rate"].isna().all()


def test_goals_homework_and_small_wins():
    f = goal_features(SESSIONS, GOALS, RATINGS, WINDOW).set_index("episode_id")
    a = f.loc["A"]
    assert a.n_goals == 2 and a.goal_owned_share == pytest.approx(0.5)
    assert a.days_to_first_goal == 7
    assert a.homework_completion_rate == pytest.approx(0.75)  # full, partial
    assert a.goal_rating_gain == pytest.approx(3.0)  # g1: 2 -> 5 in window; g2 one rating
    assert f.loc["B", "n_goals"] == 0  # has a window, no goal set in it
    wins = small_wins(MEASURES, WINDOW, "PHQ-9", True).set_index("episode_id")
    assert wins.loc["A", "early_change_primary"] == pytest.approx(5.0)  # 18 -> 13
    assert np.isnan(wins.loc["B", "early_change_primary"])


def test_goals_table_absent():
    f = goal_features(SESSIONS, None, None, WINDOW)
    assert f["n_goals"].isna().all() and f["homework_completion_rate"].notna().any()


def test_obstacles():
    f = obstacle_features(SESSIONS, WINDOW).set_index("episode_id")
    a = f.loc["A"]
    assert a.n_barriers == 1 and a.barrier_share == pytest.approx(1 / 3)
    assert a.notice_cancel_share == 0  # one no-show, no cancellation with notice
    assert a.modality_changes == 2  # video, video, phone, in_person
    assert f.loc["B", "notice_cancel_share"] == 1.0  # cancelled with 48 h notice


def test_flags_and_index():
    f = pd.DataFrame(
        {
            "first_attended": pd.array([False, True, pd.NA], dtype="boolean"),
            "n_dna": [2, 0, np.nan],
            "alliance_mean": [30.0, 38.0, np.nan],
            "n_goals": [0, 2, np.nan],
            "goal_owned_share": [np.nan, 1.0, np.nan],
            "homework_completion_rate": [0.2, 0.9, np.nan],
            "dna_rate": [0.5, 0.0, np.nan],
            "late_cancel_rate": [0.1, 0.0, np.nan],
            "attendance_rate": [0.4, 1.0, np.nan],
            "client_contacts_per_week": [0.0, 1.0, np.nan],
        }
    )
    flags = disengagement_flags(f, 36)
    assert list(flags["flags_count"]) == [5, 0, 0]
    assert list(flags["flags_assessed"]) == [5, 5, 0]
    assert pd.isna(flags.loc[2, "flag_missed_first_appointment"])  # unknown, not False
    index = disengagement_index(f, pd.Series([True, True, False]))
    assert index[0] > 0 > index[1] and np.isnan(index[2])
    # Hand-computed: each of the 7 components has z = ±0.7071 for the two reference episodes.
    assert index[0] == pytest.approx(0.7071, abs=1e-4)


def test_outreach_whose_reply_period_ends_after_the_window_is_not_counted():
    contacts = _dates(
        pd.DataFrame(
            {
                "episode_id": ["A", "A"],
                "contact_date": ["2024-01-10", "2024-02-08"],  # end 02-12
                "direction": ["service_to_client", "service_to_client"],
                "responded": [True, False],
            }
        ),
        "contact_date",
    )
    f = communication_features(SESSIONS, contacts, WINDOW, 42, 36).set_index("episode_id")
    assert f.loc["A", "outreach_response_rate"] == 1.0  # the 02-08 reply was due after 02-12


def test_missing_columns_and_tables_give_missing_values_not_zero():
    from pipeline.features.attendance import attendance_features

    bare = SESSIONS[["session_id", "episode_id", "scheduled_date", "status"]]
    f = attendance_features(bare, WINDOW)
    assert f["late_cancel_rate"].isna().all()
    assert f["n_scheduled"].notna().all()
    assert obstacle_features(bare, WINDOW)["n_barriers"].isna().all()


def test_first_appointment_cancelled_by_the_service_is_not_a_missed_first_appointment():
    from pipeline.features.attendance import attendance_features

    s = _dates(
        pd.DataFrame(
            {
                "session_id": ["x1", "x2"],
                "episode_id": ["C", "C"],
                "scheduled_date": ["2024-01-01", "2024-01-05"],
                "status": ["cancelled_by_service", "attended"],
            }
        ),
        "scheduled_date",
    )
    w = build_window(pd.DataFrame({"episode_id": ["C"]}), s, 42, pd.Timestamp("2024-12-31"))
    assert bool(attendance_features(s, w)["first_attended"].iloc[0])


def test_empty_tables_do_not_crash():
    from pipeline.config import FeaturesParams
    from pipeline.features.build import engagement_features

    empty = {"episodes": EPISODES, "sessions": SESSIONS.iloc[:0], "measures": MEASURES.iloc[:0]}
    f = engagement_features(empty, FeaturesParams(), "PHQ-9", pd.Timestamp("2024-12-31"))
    assert len(f) == 2 and not f["has_sessions"].any()


def test_goal_ratings_with_a_stray_episode_column_and_goals_before_the_window():
    ratings = RATINGS.assign(episode_id="A")
    goals = pd.concat(
        [
            GOALS,
            _dates(
                pd.DataFrame(
                    {
                        "goal_id": ["g0"],
                        "episode_id": ["A"],
                        "set_date": ["2023-12-01"],
                        "set_by": ["client"],
                    }
                ),
                "set_date",
            ),
        ],
        ignore_index=True,
    )
    ratings = pd.concat(
        [
            ratings,
            _dates(
                pd.DataFrame(
                    {
                        "goal_id": ["g0", "g0"],
                        "rating_date": ["2024-01-02", "2024-01-20"],
                        "rating": [0.0, 10.0],
                        "episode_id": ["A", "A"],
                    }
                ),
                "rating_date",
            ),
        ],
        ignore_index=True,
    )
    f = goal_features(SESSIONS, goals, ratings, WINDOW).set_index("episode_id")
    assert f.loc["A", "goal_rating_gain"] == pytest.approx(3.0)  # g0 was set before the window
