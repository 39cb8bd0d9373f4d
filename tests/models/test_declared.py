"""The analysis plan: Holm's and Bonferroni's adjustments by hand, the primary first, the
secondary family adjusted together, and an analysis that could not be fitted."""

import numpy as np
import pandas as pd
import pytest

from pipeline import catalog
from pipeline.config import AnalysisParams, DeclaredAnalysis, ModelsParams
from pipeline.models.declared import bonferroni, declared_analyses, holm, primary_row

M = ModelsParams()


def test_holm_by_hand():
    # sorted: .005 (×4 = .02), .01 (×3 = .03), .03 (×2 = .06), .04 (×1 = .04 → max .06)
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    # missing p-values are outside the family: m = 2
    np.testing.assert_allclose(holm(np.array([0.02, np.nan, 0.04])), [0.04, np.nan, 0.04])
    assert holm(np.array([0.6, 0.7])).max() == 1.0  # capped


def test_bonferroni_by_hand():
    np.testing.assert_allclose(bonferroni(np.array([0.01, 0.2, np.nan])), [0.02, 0.4, np.nan])


def _row(outcome, block, term, estimate, p):
    return {
        "model": catalog.model_id(outcome, block, True),
        "term": term,
        "estimate": estimate,
        "ci_low": estimate - 1,
        "ci_high": estimate + 1,
        "p_value": p,
        "n_analysed": 500,
        "scale": "difference in points",
        "status": "fitted",
        "level_min": np.nan,
    }


def _tables():
    final = pd.DataFrame(
        [
            _row("final_score", "index", "disengagement_index", 2.5, 0.001),
            _row("final_score", "index", "primary_baseline", 0.6, 1e-9),  # not a test
            _row("final_score", "attendance", "dna_rate", 0.7, 0.004),
            _row("final_score", "attendance", "late_cancel_rate", 0.5, 0.02),
            _row("final_score", "attendance", "days_to_first_attended", 0.2, 0.3),
        ]
    )
    poor = pd.DataFrame([_row("poor_outcome", "index", "disengagement_index", 2.6, 0.01)])
    return {"final_score": final, "poor_outcome": poor}


def test_primary_first_and_the_secondary_family_adjusted_together():
    plan = AnalysisParams(
        secondary=(
            DeclaredAnalysis(outcome="poor_outcome", exposure="index"),
            DeclaredAnalysis(outcome="final_score", exposure="attendance"),
            DeclaredAnalysis(outcome="dropout", exposure="index"),  # not fitted
        )
    )
    t = declared_analyses(_tables(), plan, M)
    assert t["role"].tolist() == ["primary"] + ["secondary"] * 5
    first = primary_row(t)
    assert first["term"] == "disengagement_index" and first["estimate"] == 2.5
    assert first["p_family"] == 0.001  # the one primary test: not adjusted
    sec = t[(t["role"] == "secondary") & (t["status"] == "fitted")].set_index("term")
    # family of 4 tests: .004 ×4 = .016, .01 ×3 = .03, .02 ×2 = .04, .3 ×1 → .3
    assert sec["p_family"].tolist() == pytest.approx([0.03, 0.016, 0.04, 0.3])
    assert sec.loc["days_to_first_attended", "verdict"] == "not below alpha"
    assert (sec["multiplicity"] == "holm").all()
    missing = t[t["analysis"] == "dropout: index"].iloc[0]
    assert missing["status"] == "not fitted" and missing["verdict"] == "not fitted"
    assert "primary_baseline" not in set(t["term"])  # the covariate is not a test


def test_an_unfitted_primary_has_no_primary_row():
    tables = {"final_score": _tables()["final_score"].iloc[2:]}
    t = declared_analyses(tables, AnalysisParams(secondary=()), M)
    assert primary_row(t) is None
    assert t.iloc[0]["status"] == "not fitted"
