"""The models recover what the generator planted.

- The within-client alliance effect on PHQ-9 is a parameter of the generator
  (``effects.alliance_within_effect``): the trajectory model, through the pipeline's own
  long-table code path, must recover it, with its 95% interval covering it across seeds.
- The odds ratio of poor outcome and the hazard ratio of dropout per SD of the disengagement
  index are not generator parameters (engagement acts on latent change, and the index is a
  noisy proxy of it). Their estimand is the *pseudo-true* value: the same model fitted to a
  very large cohort from the same generator. Every planted direction must hold, and the
  intervals from default-sized cohorts must cover the pseudo-true value at about the
  nominal rate.
"""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Params, SyntheticParams
from pipeline.features.build import engagement_features
from pipeline.features.window import build_window
from pipeline.models import analysis
from pipeline.models.trajectories import fit_trajectory
from pipeline.outcomes import outcome_table
from pipeline.synthetic.generator import generate_cohort

P = Params()
TRAJECTORY_SEEDS = (1, 2, 3)
COVERAGE_SEEDS = tuple(range(11, 21))
LARGE = 100_000


def _cohort(seed: int, n: int):
    sp = SyntheticParams(seed=seed, n_episodes=n, oracle_replicates=0)
    return generate_cohort(sp), pd.Timestamp(sp.extract_date)


def _frame(seed: int, n: int) -> pd.DataFrame:
    cohort, extract = _cohort(seed, n)
    t = cohort.tables
    features = engagement_features(t, P.features, "PHQ-9", extract)
    window = build_window(t["episodes"], t["sessions"], P.features.window_days, extract)
    outcomes = outcome_table(t, window, P.outcomes, extract)
    return analysis.analysis_frame(features, outcomes, t["episodes"], P.models)


def _index_effects(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Adjusted OR (poor outcome) and HR (dropout) per SD of the disengagement index."""
    po = analysis.poor_outcome_models(frame, P.models).tables["poor_outcome"]
    dr = analysis.dropout_models(frame, P.models).tables["dropout"]
    pick = lambda t: t[(t["block"] == "index") & t["adjusted"]].set_index("term")  # noqa: E731
    return {
        "odds ratio": pick(po).loc["disengagement_index"],
        "hazard ratio": pick(dr).loc["disengagement_index"],
    }


# --- trajectory: the planted within-client effect ---------------------------------------


@pytest.fixture(scope="module")
def within_estimates():
    out = []
    for seed in TRAJECTORY_SEEDS:
        cohort, _ = _cohort(seed, 2000)
        t = cohort.tables
        long = analysis.trajectory_frame(
            t["sessions"], t["measures"], t["episodes"], "PHQ-9", P.models
        )
        fit = fit_trajectory(
            long, analysis.TRAJECTORY_FORMULA, "episode_id", "~weeks", "synthetic trajectory"
        )
        row = fit.coefficients.set_index("term").loc["alliance_score_within"]
        truth = -SyntheticParams().effects.alliance_within_effect
        out.append((truth, row["estimate"], row["ci_low"], row["ci_high"], fit.card.converged))
    return out


def test_direction_and_size_of_the_planted_within_client_effect(within_estimates):
    for truth, est, _, _, converged in within_estimates:
        assert converged
        assert est < 0  # sessions with more alliance than usual: lower PHQ-9
        assert abs(est - truth) < 0.05


def test_within_effect_interval_coverage_across_seeds(within_estimates):
    covered = sum(low <= truth <= high for truth, _, low, high, _ in within_estimates)
    assert covered >= len(TRAJECTORY_SEEDS) - 1  # observed: 3 of 3 at seeds 1, 2, 3


# --- logistic and Cox: planted directions and pseudo-true coverage -----------------------


@pytest.fixture(scope="module")
def default_frame():
    return _frame(20261127, 4000)


def test_every_planted_direction_holds(default_frame):
    side = analysis.poor_outcome_models(default_frame, P.models).tables["poor_outcome_side_by_side"]
    adjusted = side.set_index("term")["estimate_adjusted"]
    # More engagement → more change → fewer poor outcomes (planted on latent change).
    for term in ("alliance_mean", "homework_completion_rate", "goal_owned_share"):
        assert adjusted[term] < 1, term
    for term in ("disengagement_index", "flags_group_2+", "flag_alliance_below_cutoff"):
        assert adjusted[term] > 1, term
    assert adjusted["flags_group_2+"] > adjusted["flags_group_1"] > 1  # a gradient
    hr = _index_effects(default_frame)["hazard ratio"]
    assert hr["ci_low"] > 1  # less engaged → drop out sooner


@pytest.fixture(scope="module")
def pseudo_truth():
    return {k: v["estimate"] for k, v in _index_effects(_frame(99, LARGE)).items()}


def test_intervals_cover_the_pseudo_true_effects(pseudo_truth):
    covered = {k: 0 for k in pseudo_truth}
    for seed in COVERAGE_SEEDS:
        for scale, row in _index_effects(_frame(seed, 4000)).items():
            covered[scale] += bool(row["ci_low"] <= pseudo_truth[scale] <= row["ci_high"])
    # Nominal 95%: at least 8 of 10 (P(≤ 7 | 95%) ≈ 0.01). Observed: see the closing note.
    print("pseudo-true", pseudo_truth, "covered", covered)
    for scale, n in covered.items():
        assert n >= 8, (scale, n, pseudo_truth[scale])
    assert np.isfinite(list(pseudo_truth.values())).all()
