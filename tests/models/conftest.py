"""Rows stored beside their R references (tests/data/inference), shared by the mixed-model
tests."""

from pathlib import Path

import pandas as pd
import pytest

INFERENCE = Path(__file__).resolve().parents[1] / "data" / "inference"


@pytest.fixture(scope="session")
def stored_btheb() -> pd.DataFrame:
    """Beat the Blues in long form, factor levels in R's order."""
    d = pd.read_csv(INFERENCE / "btheb.csv")
    for column, levels in {
        "treatment": ["TAU", "BtheB"],
        "drug": ["No", "Yes"],
        "length": ["<6m", ">6m"],
    }.items():
        d[column] = pd.Categorical(d[column], levels)
    return d


@pytest.fixture(scope="session")
def stored_trajectory() -> pd.DataFrame:
    """The trajectory models' rows of a 600-episode synthetic cohort."""
    d = pd.read_csv(INFERENCE / "trajectory.csv")
    return d.rename(columns={"episode": "episode_id", "cluster": "therapist"})
