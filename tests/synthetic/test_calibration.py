"""The default cohort meets every published target, and the committed docs say so."""

from pathlib import Path

from pipeline.config import Params
from pipeline.docs import render_calibration_markdown
from pipeline.synthetic.calibration import TARGETS, calibration_statistics, check_calibration
from pipeline.synthetic.constants import CONSTANTS

ROOT = Path(__file__).resolve().parents[2]


def test_default_cohort_meets_every_calibration_target(default_cohort):
    table = check_calibration(calibration_statistics(default_cohort.tables, default_cohort.truth))
    missed = table.loc[~table["met"], ["statistic", "low", "high", "cohort"]]
    assert missed.empty, f"calibration targets missed:\n{missed.to_string()}"
    assert len(table) == len(TARGETS)


def test_committed_calibration_page_is_computed_from_the_default_cohort(default_cohort):
    table = check_calibration(calibration_statistics(default_cohort.tables, default_cohort.truth))
    expected = render_calibration_markdown(table, Params().synthetic, default_cohort.summary)
    committed = (ROOT / "docs" / "calibration.md").read_text(encoding="utf-8")
    assert committed == expected, "docs/calibration.md is stale: run `engage docs`"


def test_landmark_oracle_bounds_what_window_data_can_do(default_cohort):
    # The landmark oracle conditions on more than any window-based model can see.
    stats = calibration_statistics(default_cohort.tables, default_cohort.truth)
    summary = default_cohort.summary
    assert summary["oracle_auc_landmark"] > stats["early_change_auc"]
    assert summary["oracle_auc_landmark"] > stats["intake_only_auc"]
    assert summary["oracle_auc_landmark"] > summary["oracle_auc_intake"]
    assert summary["oracle_auc_landmark"] < 0.99


def test_late_change_is_unknowable_in_the_window(default_cohort):
    # The oracle's premise: the independent part of late change is unrelated to every trait.
    truth = default_cohort.truth
    c = CONSTANTS
    late_part = truth["late_change_phq9"] - c.late_structural_weight * (
        truth["response_index_structural"] - c.change_mean
    )
    for col in ("latent_engagement", "latent_alliance", "phq9_true_intake"):
        assert abs(late_part.corr(truth[col])) < 0.05, col
