"""Shared fixtures: small synthetic cohorts generated once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import Params, SyntheticParams
from pipeline.io import write_table
from pipeline.synthetic.generator import generate_cohort
from pipeline.synthetic.messy import make_export

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
def ingest_params():
    return Params(ingest={"extract_date": SMALL.extract_date}).ingest


@pytest.fixture(scope="session")
def small_params() -> SyntheticParams:
    return SMALL
