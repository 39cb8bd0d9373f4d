"""Fixtures for the report tests: the small cohort through every model stage and the report."""

import pytest

from pipeline.config import Params
from pipeline.stages import metrics, missing_data, models, prediction, report

FAST = {
    "prediction": {"repeats": 1, "bootstrap": 50, "permutation_repeats": 1},
    "missing_data": {"imputations": 5},
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


# What the NHS Talking Therapies data set does not carry: no session alliance, agenda or
# homework columns, no goals, goal ratings or contacts tables.
NOT_IN_NHSTT = {
    "sessions": ["alliance_score", "agenda_set_by", "homework_assigned", "homework_completed"]
}
TABLES_NOT_IN_NHSTT = ("goals", "goal_ratings", "contacts")


@pytest.fixture(scope="session")
def reported_absent(small_export, ingest_params, tmp_path_factory):
    """The small cohort exported without the blocks the NHS data set lacks, through every
    stage and the report: (root, params, summary)."""
    import pandas as pd

    from pipeline.stages import features, ingest, outcomes

    source, _ = small_export
    folder = tmp_path_factory.mktemp("export_absent")
    for path in sorted(source.glob("*.csv")):
        if path.stem in TABLES_NOT_IN_NHSTT:
            continue
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table = table.drop(columns=NOT_IN_NHSTT.get(path.stem, []), errors="ignore")
        table.to_csv(folder / path.name, index=False)
    root = tmp_path_factory.mktemp("run_absent")
    params = Params(ingest=ingest_params.model_dump(), **FAST)
    ingest.run(params, root, folder)  # its report lists what the export did not supply
    features.run(params, root)
    outcomes.run(params, root)
    summary = _run_all(root, params)
    return root, params, summary


HOSTILE_LABEL = "web <script>alert(1)</script>"  # sorts after CBT: not the reference


@pytest.fixture(scope="session")
def reported_small_hostile(tmp_path_factory):
    """A 300-episode cohort (where small cells are most likely) with one tiny site of 5
    episodes and a treatment label that is markup with a digit in it, through every stage
    and the report: (root, params)."""
    from pipeline.config import SyntheticParams
    from pipeline.io import write_table
    from pipeline.stages import features, ingest, outcomes
    from pipeline.synthetic.generator import generate_cohort

    synthetic = SyntheticParams(n_episodes=300, oracle_replicates=2, messy_row_share=0.0)
    tables = dict(generate_cohort(synthetic).tables)
    episodes = tables["episodes"].copy()
    episodes.loc[episodes.index[:5], "site_id"] = "site_tiny"
    episodes.loc[episodes.index[5:60], "treatment"] = HOSTILE_LABEL
    tables["episodes"] = episodes
    folder = tmp_path_factory.mktemp("export_small_hostile")
    for name, table in tables.items():
        write_table(table, folder / f"{name}.csv", "csv")
    root = tmp_path_factory.mktemp("run_small_hostile")
    params = Params(ingest={"extract_date": synthetic.extract_date}, **FAST)
    ingest.run(params, root, folder)
    features.run(params, root)
    outcomes.run(params, root)
    _run_all(root, params)
    return root, params
