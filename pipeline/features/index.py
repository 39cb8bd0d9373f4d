"""Disengagement flags a clinician can read, and a continuous disengagement index.

Flags are missing (not false) when the data behind them are not available. The index is the
mean of the available standardised components, each oriented so that higher = less engaged;
components are standardised over episodes with a complete window, so the index is relative
to this cohort (mean 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# component → +1 if higher means less engaged, −1 if higher means more engaged
INDEX_COMPONENTS = {
    "dna_rate": +1,
    "late_cancel_rate": +1,
    "attendance_rate": -1,
    "alliance_mean": -1,
    "homework_completion_rate": -1,
    "goal_owned_share": -1,
    "client_contacts_per_week": -1,
}
MIN_COMPONENTS = 2


def disengagement_flags(features: pd.DataFrame, alliance_cutoff: float) -> pd.DataFrame:
    """The flags, their count (among flags that could be assessed) and how many could be."""
    f = features

    def flag(condition: pd.Series, available: pd.Series) -> pd.Series:
        return pd.Series(
            pd.array(
                np.where(available.to_numpy(), condition.to_numpy(), None),  # type: ignore[call-overload]  # numpy stubs: a None fill
                dtype="boolean",
            ),
            index=f.index,
        )

    flags = pd.DataFrame(
        {
            "flag_missed_first_appointment": flag(
                ~f["first_attended"].fillna(True).astype(bool), f["first_attended"].notna()
            ),
            "flag_two_plus_no_shows": flag(f["n_dna"].fillna(0) >= 2, f["n_dna"].notna()),
            "flag_alliance_below_cutoff": flag(
                f["alliance_mean"] <= alliance_cutoff, f["alliance_mean"].notna()
            ),
            "flag_no_client_goal": flag(
                (f["n_goals"].fillna(0) == 0) | (f["goal_owned_share"].fillna(0) == 0),
                f["n_goals"].notna(),
            ),
            "flag_homework_under_half": flag(
                f["homework_completion_rate"] < 0.5, f["homework_completion_rate"].notna()
            ),
        }
    )
    flags["flags_count"] = flags.fillna(False).astype(int).sum(axis=1)
    flags["flags_assessed"] = flags.drop(columns="flags_count").notna().sum(axis=1)
    return flags


def disengagement_index(features: pd.DataFrame, reference: pd.Series) -> pd.Series:
    """Mean of oriented z-scores of the available components (≥ 2), else missing.

    ``reference`` marks the episodes whose distribution defines the z-scores.
    """
    zs = []
    for column, sign in INDEX_COMPONENTS.items():
        values = features[column].astype(float)
        ref = values[reference]
        sd = ref.std()
        if not np.isfinite(sd) or sd == 0:
            continue
        zs.append(sign * (values - ref.mean()) / sd)
    if not zs:
        return pd.Series(np.nan, index=features.index)
    z = pd.concat(zs, axis=1)
    return z.mean(axis=1).where(z.notna().sum(axis=1) >= MIN_COMPONENTS)
