"""Early-change sensitivity and E-values: hand-worked values from VanderWeele & Ding
(2017) and the invariants of the refit."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import AnalysisParams, DeclaredAnalysis, Params
from pipeline.models import confounding
from pipeline.models.confounding import as_risk_ratio, e_value, e_values

P = Params()


def test_e_values_of_the_papers_worked_example():
    # VanderWeele & Ding 2017: RR 3.9 (95% CI 1.8 to 8.7) → E-values 7.26 and 3.0.
    assert e_value(3.9) == pytest.approx(3.9 + np.sqrt(3.9 * 2.9))
    assert round(e_value(3.9), 2) == 7.26 and e_value(1.8) == pytest.approx(3.0)
    assert e_value(1 / 3.9) == pytest.approx(e_value(3.9))  # protective: inverted
    assert e_value(1.0) == 1.0
    est, ci = e_values(3.9, 1.8, 8.7, "odds ratio", False, np.nan)  # rare: OR ≈ RR
    assert (round(est, 2), ci) == (7.26, pytest.approx(3.0))


def test_common_outcome_ratios_become_risk_ratios_first():
    assert as_risk_ratio(4.0, "odds ratio", True) == 2.0
    hr = (1 - 0.5 ** np.sqrt(2)) / (1 - 0.5 ** np.sqrt(0.5))
    assert as_risk_ratio(2.0, "hazard ratio", True) == pytest.approx(hr)  # ≈ 1.61
    assert as_risk_ratio(2.0, "hazard ratio", False) == 2.0
    with pytest.raises(ValueError, match="no risk-ratio"):
        as_risk_ratio(2.0, "difference in points", True)


def test_an_interval_through_the_null_has_e_value_one_and_points_use_d():
    assert e_values(1.3, 0.9, 1.8, "odds ratio", True, np.nan)[1] == 1.0
    # 2 points with SD 5: d = 0.4, RR = exp(0.91 · 0.4); SE 0.5 points → SE_d 0.1.
    est, ci = e_values(2.0, 2 - 1.959964 * 0.5, 2 + 1.959964 * 0.5, "difference in points", True, 5)
    assert est == pytest.approx(e_value(np.exp(0.364)))
    assert ci == pytest.approx(e_value(np.exp(0.364 - 1.78 * 0.1)))


def _frame(seed=0, n=3000, confounded=True):
    """An analysis-frame-like table: early change drives both the index and the final
    score (confounded) or only the final score."""
    rng = np.random.default_rng(seed)
    early = rng.normal(size=n)
    index = rng.normal(size=n) + (0.8 * early if confounded else 0)
    baseline = rng.normal(15, 5, n)
    final = 8 + 0.5 * baseline + 0.5 * index + 2.0 * early + rng.normal(0, 3, n)
    return pd.DataFrame(
        {
            "final_score": final,
            "primary_baseline": baseline,
            "disengagement_index": index,
            "early_change_primary": np.where(rng.random(n) < 0.1, np.nan, early),
            "cluster": rng.integers(0, 40, n).astype(str),
        }
    )


PLAN = AnalysisParams(
    primary=DeclaredAnalysis(outcome="final_score", exposure="index"), secondary=()
)


def test_adjusting_for_a_confounding_early_change_moves_the_estimate_toward_truth():
    models = P.models.model_copy(update={"case_mix": ()})
    frame = _frame()
    table = confounding.early_change_sensitivity(frame, models, PLAN)
    row = table.set_index("term").loc["disengagement_index"]
    assert (
        row["role"] == "primary"
        and row["n_analysed"] == frame["early_change_primary"].notna().sum()
    )
    sd = frame.loc[frame["early_change_primary"].notna(), "disengagement_index"].std()
    # 0.5 points per unit of the index is the truth; per SD of the index:
    assert row["ci_low_early_change"] < 0.5 * sd < row["ci_high_early_change"]
    assert row["estimate"] > row["ci_high_early_change"]  # confounded: too large before
    assert 0 < row["change_share"] < 1
    assert row["e_value"] > row["e_value_early_change"] > 1
    unconfounded = confounding.early_change_sensitivity(_frame(confounded=False), models, PLAN)
    assert abs(unconfounded["change_share"].iloc[0]) < 0.1


def test_no_early_change_recorded_gives_an_empty_table_with_the_columns():
    frame = _frame().drop(columns="early_change_primary")
    table = confounding.early_change_sensitivity(frame, P.models, PLAN)
    assert table.empty and list(table.columns) == confounding.SENSITIVITY_COLUMNS
