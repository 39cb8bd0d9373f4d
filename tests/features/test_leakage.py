"""No leakage: whatever happens after an episode's landmark window cannot change a feature."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import FeaturesParams, SyntheticParams
from pipeline.features.build import engagement_features
from pipeline.features.window import build_window
from pipeline.synthetic.generator import generate_cohort

PARAMS = FeaturesParams()
EXTRACT = pd.Timestamp("2025-03-31")
DATE_COLUMNS = {
    "sessions": "scheduled_date",
    "measures": "measure_date",
    "goals": "set_date",
    "goal_ratings": "rating_date",
    "contacts": "contact_date",
}


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(SyntheticParams(n_episodes=300, oracle_replicates=0)).tables


def _features(tables):
    return engagement_features(tables, PARAMS, "PHQ-9", EXTRACT)


def _after_window(tables, table):
    """Boolean mask of ``table``'s rows dated at or after their episode's window end."""
    df = tables[table]
    window = build_window(tables["episodes"], tables["sessions"], PARAMS.window_days, EXTRACT)
    end = window.set_index("episode_id")["window_end"]
    if table == "goal_ratings":
        episode = df["goal_id"].map(tables["goals"].set_index("goal_id")["episode_id"])
    else:
        episode = df["episode_id"]
    return (df[DATE_COLUMNS[table]] >= episode.map(end)).fillna(False).to_numpy()


def _mutate(tables, table, how, seed):
    rng = np.random.default_rng(seed)
    out = dict(tables)
    df = tables[table].copy()
    after = _after_window(tables, table)
    rows = np.flatnonzero(after)
    if rows.size == 0:
        return out
    pick = rows[rng.random(rows.size) < 0.5]
    if how == "delete":
        df = df.drop(index=df.index[pick])
    elif how == "scramble":  # shuffle every non-key value among the post-window rows
        keys = {"episode_id", "goal_id", "session_id", DATE_COLUMNS[table]}
        for col in df.columns.difference(list(keys)):
            values = df[col].to_numpy().copy()
            values[pick] = values[rng.permutation(pick)]
            df[col] = values
    elif how == "duplicate":  # add copies of post-window rows, later still
        extra = df.iloc[pick].copy()
        extra[DATE_COLUMNS[table]] = extra[DATE_COLUMNS[table]] + pd.Timedelta(days=3)
        for key in ("session_id", "goal_id"):
            if key in extra and table in ("sessions", "goals"):
                extra[key] = extra[key] + "_copy"
        df = pd.concat([df, extra], ignore_index=True)
    out[table] = df.reset_index(drop=True)
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=st.sampled_from(list(DATE_COLUMNS)),
    how=st.sampled_from(["delete", "scramble", "duplicate"]),
    seed=st.integers(0, 10_000),
)
def test_records_after_the_window_never_change_a_feature(cohort, table, how, seed):
    before = _features(cohort)
    after = _features(_mutate(cohort, table, how, seed))
    pd.testing.assert_frame_equal(before, after)


def test_the_check_can_fail(cohort):
    # Changing a record inside the window does change the features (the test has teeth).
    tables = dict(cohort)
    s = tables["sessions"].copy()
    inside = ~_after_window(cohort, "sessions")
    s.loc[inside, "status"] = "did_not_attend"
    tables["sessions"] = s
    assert not _features(tables).equals(_features(cohort))
