"""Fixtures for the report tests: the small cohort through every model stage and the report."""

import pytest

from pipeline.config import Params
from pipeline.stages import metrics, missing_data, models, prediction, report

FAST = {
    "prediction": {"repeats": 1, "bootstrap": 50, "permutation_repeats": 1},
    "missing_data": {"imputations": 5, "burn_in": 2},
}


def _run_all(root, params: Params, generated="2026-01-01 00:00 UTC"):
    for stage in (models, prediction, missing_data, metrics):
        stage.run(params, root)
    return report.run(params, root, generated=generated)


@pytest.fixture(scope="session")
def reported(processed_run):
    root, _ = processed_run
    params = Params(**FAST)
    summary = _run_all(root, params)
    return root, params, summary
