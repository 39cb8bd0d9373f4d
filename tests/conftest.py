"""Shared fixtures: small synthetic cohorts generated once per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Params, SyntheticParams
from pipeline.io import write_table
from pipeline.synthetic.generator import generate_cohort
from pipeline.synthetic.messy import make_export

ROOT_DIR = Path(__file__).resolve().parents[1]

# --- test categories (pyproject.toml: markers), given here in one place -----------------
# `make test-fast` runs what is none of them. A test is marked by the fixtures it uses (a
# Dask cluster, a browser page, a whole-pipeline run) or, for the few that are slow on their
# own, by name.

MARKS_BY_FIXTURE = {
    "dask": {"dask_address"},
    "browser": {"page"},
    "slow": {
        "reported",
        "reported_absent",
        "reported_small_hostile",
        "default_cohort",
        "processed_run",
        "within_estimates",  # tests/models/test_ground_truth.py: models on bigger cohorts
        "pseudo_truth",
        "default_frame",
    },
}
MARKS_BY_NAME: dict[str, set[str]] = {
    "notebook": {"tests/test_notebooks.py::test_executes_top_to_bottom"},
    "slow": {
        "tests/ingest/test_property.py",  # hypothesis: hundreds of generated exports
        "tests/test_cli.py::test_run_writes_the_repository_layout",  # every stage
        "tests/features/test_leakage.py::test_records_after_the_window_never_change_a_feature",
        "tests/ingest/test_hostile.py::test_hostile_case[wide_header_100k]",
        "tests/ingest/test_hostile.py::test_hostile_case[named_pipe]",
        "tests/models/test_effects.py::test_cox_monotone_likelihood_is_not_reported_as_a_fit",
        "tests/models/test_missing.py::test_every_analysis_recovers_the_complete_data_effect_within_a_fifth",
        "tests/models/test_effects.py::test_proportional_hazards_check_flags_a_changing_hazard_ratio",
        "tests/layouts/test_mapping.py::test_the_pcoms_worked_example_runs_end_to_end",
        "tests/ingest/test_extract_date.py::test_same_outputs_from_any_folder",
        "tests/ingest/test_extract_date.py::test_a_later_export_run_from_the_project_folder_keeps_its_own_date",
    },
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        ids = {item.nodeid, item.nodeid.split("[")[0], item.nodeid.split("::")[0]}
        for mark, fixtures in MARKS_BY_FIXTURE.items():
            if used & fixtures:
                item.add_marker(mark)
        for mark, names in MARKS_BY_NAME.items():
            if ids & names:
                item.add_marker(mark)
    known = {n.split("::")[0] for names in MARKS_BY_NAME.values() for n in names}
    missing = {f for f in known if not (ROOT_DIR / f).exists()}
    if missing:  # a renamed test file would silently lose its mark
        raise pytest.UsageError(f"tests/conftest.py MARKS_BY_NAME names missing files: {missing}")


SMALL = SyntheticParams(
    n_episodes=600, oracle_replicates=8, messy_row_share=0.01, alias_row_share=0.02
)


@pytest.fixture(scope="session")
def small_cohort():
    return generate_cohort(SMALL)


@pytest.fixture(scope="session")
def default_cohort():
    """The cohort `dvc repro` builds by default (params.yaml defaults)."""
    return generate_cohort(Params().synthetic)


@pytest.fixture(scope="session")
def small_export(small_cohort, tmp_path_factory):
    """The small cohort written as a CSV export folder, with its messy-row manifest."""
    export, manifest = make_export(
        small_cohort.tables,
        SMALL.extract_date,
        SMALL.messy_row_share,
        SMALL.alias_row_share,
        np.random.default_rng(5),
    )
    folder = tmp_path_factory.mktemp("export")
    for table, df in export.items():
        write_table(df, folder / f"{table}.csv", "csv")
    return folder, manifest


@pytest.fixture(scope="session")
def processed_run(small_export, ingest_params, tmp_path_factory):
    """The small export through ingest, features and outcomes: (root, outcomes summary)."""
    from pipeline.stages import features, ingest, outcomes

    folder, _ = small_export
    root = tmp_path_factory.mktemp("run")
    p = Params(ingest=ingest_params.model_dump())
    ingest.run(p, root, folder)
    features.run(p, root)
    return root, outcomes.run(p, root)


@pytest.fixture(scope="session")
def ingest_params():
    return Params(ingest={"extract_date": SMALL.extract_date}).ingest


@pytest.fixture(scope="session")
def small_params() -> SyntheticParams:
    return SMALL


# --- a tiny valid export that tests can break one cell at a time ---

BASE = {
    "episodes": pd.DataFrame(
        {
            "episode_id": ["e1", "e2"],
            "client_id": ["c1", "c2"],
            "therapist_id": ["t1", "t1"],
            "referral_date": ["2024-01-01", "2024-02-01"],
            "end_date": ["2024-03-01", ""],
            "end_reason": ["completed", "still_open"],
            "planned_sessions": ["8", "6"],
        }
    ),
    "sessions": pd.DataFrame(
        {
            "session_id": ["s1", "s2", "s3"],
            "episode_id": ["e1", "e1", "e2"],
            "scheduled_date": ["2024-01-10", "2024-01-17", "2024-02-10"],
            "status": ["attended", "did_not_attend", "attended"],
            "duration_min": ["50", "", "45"],
            "alliance_score": ["36.5", "", "38"],
            "homework_assigned": ["true", "", "false"],
        }
    ),
    "measures": pd.DataFrame(
        {
            "episode_id": ["e1", "e1", "e2"],
            "measure_date": ["2024-01-10", "2024-01-17", "2024-02-10"],
            "instrument": ["PHQ-9", "PHQ-9", "GAD-7"],
            "score": ["18", "11", "12"],
        }
    ),
    "goals": pd.DataFrame(
        {
            "goal_id": ["g1"],
            "episode_id": ["e1"],
            "set_date": ["2024-01-10"],
            "set_by": ["client"],
            "achieved": ["true"],
        }
    ),
    "goal_ratings": pd.DataFrame(
        {
            "goal_id": ["g1", "g1"],
            "rating_date": ["2024-01-10", "2024-01-17"],
            "rating": ["3", "5"],
        }
    ),
}


@pytest.fixture
def make_dataset(tmp_path):
    """Write the base export with per-table edits: a callable table -> DataFrame -> DataFrame."""

    def build(name="export", **edits):
        folder = tmp_path / name
        folder.mkdir()
        for table, df in BASE.items():
            out = df.copy()
            if table in edits:
                edit = edits[table]
                out = edit(out) if callable(edit) else edit
            if out is not None:
                out.to_csv(folder / f"{table}.csv", index=False)
        return folder

    return build


@pytest.fixture
def params():
    return Params(ingest={"extract_date": "2024-06-30"})
