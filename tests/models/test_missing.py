"""Missing final scores: Rubin's rules by hand, the tipping point, and MI against the truth."""

import functools

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Params, SyntheticParams
from pipeline.features.build import engagement_features
from pipeline.features.window import build_window
from pipeline.models import analysis
from pipeline.models.missing import (
    effect_with_outcome,
    rubin,
    sensitivity,
    tipping_point,
)
from pipeline.outcomes import outcome_table
from pipeline.synthetic.generator import generate_cohort


def test_rubins_rules_by_hand():
    # m = 3: estimates 1, 2, 3 (mean 2, B = 1); variances .5, .5, .5 (W = .5)
    # T = .5 + (1 + 1/3)·1 = 11/6; r = (4/3)/.5 = 8/3; df = 2·(1 + 3/8)² = 3.78125
    pooled = rubin(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]))
    assert pooled.estimate == pytest.approx(2.0)
    assert pooled.se == pytest.approx(np.sqrt(11 / 6))
    assert pooled.df == pytest.approx(3.78125)
    t = 2.8410  # t_{0.975, 3.78125}
    assert pooled.ci_low == pytest.approx(2 - t * np.sqrt(11 / 6), abs=2e-3)
    fmi = (8 / 3 + 2 / (3.78125 + 3)) / (8 / 3 + 1)
    assert pooled.fraction_missing_information == pytest.approx(fmi)
    # No between-imputation variance: the complete-data answer, normal reference.
    same = rubin(np.array([1.0, 1.0]), np.array([0.25, 0.25]))
    assert same.se == pytest.approx(0.5) and same.ci_high == pytest.approx(1 + 1.959964 * 0.5)
    with pytest.raises(ValueError):
        rubin(np.array([1.0]), np.array([1.0]))


def _table(rows):
    cols = ["analysis", "delta", "estimate", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols)


def test_tipping_point_is_the_delta_nearest_zero_that_changes_the_conclusion():
    t = _table(
        [
            ("complete cases", 0, 2.0, 1.5, 2.6),
            ("multiple imputation", 0, 1.9, 1.4, 2.5),
            ("multiple imputation, delta-adjusted", -2, 1.5, 1.1, 2.0),
            ("multiple imputation, delta-adjusted", -4, 1.2, 0.9, 1.6),
            ("multiple imputation, delta-adjusted", -6, 1.0, 0.7, 1.3),
            ("multiple imputation, delta-adjusted", 2, 2.2, 1.6, 3.0),
        ]
    )
    tip = tipping_point(t).set_index("direction")
    assert tip.loc["negative", "tipping_delta"] == -4
    assert tip.loc["negative", "estimate_at_tipping"] == 1.2
    assert pd.isna(tip.loc["positive", "tipping_delta"]) and tip.loc["positive", "grid_limit"] == 2


P = Params(missing_data={"imputations": 10})


@functools.cache
def _frame_with_truth(seed: int) -> pd.DataFrame:
    sp = SyntheticParams(seed=seed, n_episodes=4000, oracle_replicates=0)
    cohort, extract = generate_cohort(sp), pd.Timestamp(sp.extract_date)
    t = cohort.tables
    f = engagement_features(t, P.features, "PHQ-9", extract)
    o = outcome_table(
        t, build_window(t["episodes"], t["sessions"], 42, extract), P.outcomes, extract
    )
    frame = analysis.analysis_frame(f, o, t["episodes"], P.models)
    return frame.merge(cohort.truth[["episode_id", "poor_outcome_complete"]], on="episode_id")


@pytest.fixture(scope="module")
def errors():
    """|estimate − complete-data estimate| of the main OR for CC, LOCF and MI at 3 seeds."""
    out = []
    for seed in (1, 2, 3):
        frame = _frame_with_truth(seed)
        s = sensitivity(frame, P.models, P.missing_data, P.outcomes)
        table = s.tables["missing_data_sensitivity"]
        est = table[table["delta"] == 0].set_index("analysis")["estimate"]
        # Complete data: every questionnaire completed (generator truth), same population,
        # same unit (per SD of the index among complete cases).
        full = effect_with_outcome(frame, "poor_outcome_complete", P.models)
        out.append({k: abs(v - full) for k, v in est.items()} | {"full": full})
    return pd.DataFrame(out)


def test_every_analysis_recovers_the_complete_data_effect_within_a_fifth(errors):
    """Each analysis lands within 20% of the complete-data odds ratio at every seed.

    It was 10% before the cohort was made as hard to predict as real data (issue 17): half
    the improvement now comes after the landmark, so a client who leaves soon after it both
    lacks a final score and missed the late gains, and complete cases and MI (linear in its
    auxiliaries) came out 8–12% and 12–16% below the complete-data OR at seeds 1–3 (methods
    §5.7). A bound a real analysis should expect, not a claim of unbiasedness."""
    print(errors.round(3))
    assert (errors["full"] > 1).all()
    relative = errors.drop(columns="full").div(errors["full"], axis=0)
    assert (relative < 0.20).all().all(), relative.round(3)


def test_effect_with_outcome_reproduces_the_complete_case_row():
    """With the observed outcome it is the complete-case analysis, to the last digit."""
    frame = _frame_with_truth(1)
    s = sensitivity(
        frame,
        P.models,
        P.missing_data.model_copy(update={"imputations": 2}),
        P.outcomes,
    )
    table = s.tables["missing_data_sensitivity"].set_index("analysis")
    assert effect_with_outcome(frame, "poor_outcome", P.models) == pytest.approx(
        table.loc["complete cases", "estimate"], rel=1e-12
    )


def test_pooled_fits_side_by_side_give_exactly_the_serial_results():
    # every delta's pooled fits and the counts of who is missing on two forked workers:
    # the same tables and cards (warnings included, each once, in order) as in order
    from pipeline.engine.tasks import run_tasks

    frame = _frame_with_truth(1)
    params = P.missing_data.model_copy(update={"imputations": 3})
    serial = sensitivity(frame, P.models, params, P.outcomes)
    parallel = sensitivity(
        frame, P.models, params, P.outcomes, lambda tasks: run_tasks(tasks, workers=2)
    )
    assert serial.tables.keys() == parallel.tables.keys()
    for name, table in serial.tables.items():
        pd.testing.assert_frame_equal(parallel.tables[name], table, check_exact=True)
    assert [c.as_dict() for c in parallel.cards] == [c.as_dict() for c in serial.cards]
