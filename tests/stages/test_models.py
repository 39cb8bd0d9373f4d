"""The models stage: tidy tables and model cards, written whole and reproducibly."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Params
from pipeline.engine.tasks import can_fork
from pipeline.models.analysis import ANALYSES
from pipeline.models.tidy import TIDY_COLUMNS
from pipeline.stages import models as models_stage

EFFECT_TABLES = ("poor_outcome", "dropout", "trajectory")


@pytest.fixture(scope="module")
def run_twice(processed_run):
    """The stage run twice on the same inputs: first its analyses on two worker processes
    (whatever this machine allows), then one after the other in one process."""
    root, _ = processed_run
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pipeline.stages.common.stage_threads", lambda configured: 2)
        first = models_stage.run(Params(), root)
    reports = root / "reports"
    snapshot = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    second = models_stage.run(Params(threads=1), root)
    return reports, snapshot, first, second


def test_every_model_has_a_card_and_the_effect_tables_are_tidy(run_twice):
    reports, _, summary, _ = run_twice
    exact = reports.parent / "data/results/models"
    cards = [json.loads(p.read_text()) for p in (exact / "model_cards").glob("*.json")]
    assert len(cards) == summary["models"] >= 25
    for card in cards:
        assert card["status"] in {"fitted", "not converged", "not fitted"}
        assert card["n_analysed"] <= card["n_input"]
    for name in EFFECT_TABLES:
        table = pd.read_csv(exact / "tables" / f"{name}.csv")
        assert list(table.columns[: len(TIDY_COLUMNS)]) == TIDY_COLUMNS
        assert (table["ci_low"] <= table["estimate"]).all()
        assert (table["estimate"] <= table["ci_high"]).all()
        assert (table["n_analysed"] <= table["n_input"]).all()
    scales = pd.read_csv(reports / "tables/models/poor_outcome.csv")["scale"]
    assert set(scales) == {"odds ratio"}
    assert set(pd.read_csv(reports / "tables/models/dropout.csv")["scale"]) == {"hazard ratio"}


def test_the_trajectory_models_have_client_and_therapist_levels(run_twice):
    reports, *_ = run_twice
    v = pd.read_csv(reports / "tables/models/trajectory_variance.csv")
    three = set(v.loc[v["model"] == "trajectory: clients within therapists", "component"])
    assert {"cluster: intercept", "client intercept", "client slope", "residual"} <= three
    two = v[v["model"] == "trajectory: client intercept and slope"].set_index("component")
    assert -1 <= two.loc["episode_id: corr(intercept, weeks)", "correlation"] <= 1
    t = pd.read_csv(reports / "tables/models/trajectory.csv")
    assert {"alliance_score_within", "alliance_score_between"} <= set(t["term"])


def test_the_same_inputs_give_byte_identical_outputs_on_any_number_of_workers(run_twice):
    reports, snapshot, first, second = run_twice
    if can_fork():
        assert (first["workers"], second["workers"]) == (2, 1)
    assert set(first["task_seconds"]) == set(ANALYSES) | {"clinical significance"}
    again = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert again.keys() == snapshot.keys()
    changed = [str(k) for k in snapshot if snapshot[k] != again[k]]
    assert not changed


def test_disengagement_raises_the_odds_of_poor_outcome_on_the_small_cohort(run_twice):
    reports, *_ = run_twice
    side = pd.read_csv(reports / "tables/models/poor_outcome_side_by_side.csv").set_index("term")
    # a sparse 0/1 flag's row reads "withheld", so the column is read as text
    assert float(side.loc["disengagement_index", "estimate_adjusted"]) > 1


def test_a_misspelt_block_feature_is_a_card_not_a_crash(processed_run, tmp_path):
    root, _ = processed_run
    params = Params(
        paths={"reports_dir": str(tmp_path / "reports")},
        models={"blocks": {"index": ["disengagement_index"], "typo": ["alliance_maen"]}},
        # the plan names blocks that exist (params refuses one that does not)
        analysis={"secondary": [{"outcome": "poor_outcome", "exposure": "typo"}]},
    )
    summary = models_stage.run(params, root)
    assert "poor_outcome: typo (adjusted)" in summary["not_fitted"]
    why = summary["not_fitted"]["poor_outcome: typo (adjusted)"][0]
    assert "alliance_maen" in why


def test_table_columns_are_documented(later_stages):
    reports, _ = later_stages
    page = (Path(__file__).resolve().parents[2] / "docs/models.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)`", page))
    for csv in (reports / "tables").glob("*/*.csv"):
        columns = pd.read_csv(csv, nrows=0).columns
        base = {re.sub(r"_(unadjusted|adjusted)$", "", c) for c in columns}
        assert base <= documented, (csv.name, base - documented)


@pytest.fixture(scope="module")
def later_stages(run_twice, processed_run):
    from pipeline.stages import metrics, missing_data, prediction

    root, _ = processed_run
    p = Params(
        prediction={"repeats": 1, "bootstrap": 50, "permutation_repeats": 1},
        missing_data={"imputations": 5},
    )
    summaries = [stage.run(p, root) for stage in (prediction, missing_data, metrics)]
    return root / "reports", summaries


METRIC_NAMES = (
    "n_episodes",
    "n_finished_course",
    "rate_reliable_improvement",
    "rate_reliable_recovery",
    "rate_reliable_deterioration",
    "rate_dropout",
    "auc_baseline",
    "auc_engagement",
    "auc_gain",
    "brier_engagement",
    "calibration_slope_engagement",
    "or_index",
    "hr_index",
)


def test_prediction_missing_data_and_metrics_outputs(later_stages):
    reports, summaries = later_stages
    assert all(not s["not_fitted"] for s in summaries[:2])
    metrics = json.loads((reports / "metrics.json").read_text())
    for name in METRIC_NAMES:
        assert isinstance(metrics[name], int | float), name
    for name in ("auc_baseline", "auc_engagement", "auc_gain"):
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"]
    assert 0 < metrics["rate_dropout"] < 1 and metrics["n_episodes"] == 600
    for table in ("prediction_metrics", "prediction_gain", "prediction_calibration"):
        assert (reports / "tables/prediction" / f"{table}.csv").exists()
    sens = pd.read_csv(
        reports.parent / "data/results/missing_data/tables/missing_data_sensitivity.csv"
    )
    assert {"complete cases", "last observation carried forward", "multiple imputation"} <= set(
        sens["analysis"]
    )
    main = pd.read_csv(reports.parent / "data/results/models/tables/poor_outcome.csv")
    main = main[(main["model"] == "poor_outcome: index (adjusted)")].set_index("term")
    cc = sens[sens["analysis"] == "complete cases"].iloc[0]
    assert cc["estimate"] == pytest.approx(main.loc["disengagement_index", "estimate"])
