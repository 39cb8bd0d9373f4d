"""Descriptive models: dropout curves by disengagement group and the dose–response curve.

Both describe; neither estimates an effect. Dose–response in particular mixes cause and
consequence: clients who improve stop sooner (the good-enough level), so a flat or falling
curve does not mean that more sessions do not help.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from pipeline.models.tidy import ModelError


def kaplan_meier(data: pd.DataFrame, time: str, event: str, group: str) -> pd.DataFrame:
    """Kaplan–Meier survival (staying in treatment) per group with pointwise 95% bands
    (log-log transform) and the numbers at risk. One row per group and event time."""
    rows = []
    d = data.dropna(subset=[time, event, group])
    if d.empty:
        raise ModelError("kaplan_meier: no row has time, event and group")
    for label, g in d.groupby(group, sort=True):
        sf = sm.SurvfuncRight(g[time].to_numpy(float), g[event].to_numpy(float))
        s, se = sf.surv_prob, sf.surv_prob_se
        with np.errstate(divide="ignore", invalid="ignore"):
            # log(−log S) scale keeps the band inside (0, 1).
            lls = np.log(-np.log(s))
            half = 1.959964 * se / (s * np.abs(np.log(s)))
            low, high = np.exp(-np.exp(lls + half)), np.exp(-np.exp(lls - half))
        rows.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": sf.surv_times,
                    "survival": s,
                    "ci_low": np.where(np.isfinite(low), low, np.nan),
                    "ci_high": np.where(np.isfinite(high), high, np.nan),
                    "n_at_risk": sf.n_risk,
                    "n_events": sf.n_events,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def dose_response(
    sessions_attended: pd.Series, improved: pd.Series, max_sessions: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Share reliably improved by sessions attended, and a probit curve on log sessions in the
    style of Howard et al. (1986). Returns (observed table, fitted curve)."""
    d = pd.DataFrame({"n": sessions_attended, "y": improved}).dropna()
    d = d[d["n"] >= 1]
    if d["y"].nunique() < 2 or d["n"].nunique() < 2:
        raise ModelError(
            "dose_response: needs improved and not-improved episodes across at "
            "least two numbers of sessions"
        )
    d["n_capped"] = d["n"].clip(upper=max_sessions)
    observed = (
        d.groupby("n_capped")["y"]
        .agg(["mean", "size", "sum"])
        .reset_index()
        .rename(
            columns={
                "n_capped": "sessions",
                "mean": "share_improved",
                "size": "episodes",
                "sum": "improved",
            }
        )
    )
    x = sm.add_constant(np.log(d["n"].to_numpy(float)))
    fit = sm.GLM(
        d["y"].to_numpy(float), x, family=sm.families.Binomial(sm.families.links.Probit())
    ).fit()
    # The curve spans the observed numbers of sessions only (no extrapolation either side).
    grid = np.arange(int(d["n"].min()), min(max_sessions, int(d["n"].max())) + 1, dtype=float)
    pred = fit.get_prediction(sm.add_constant(np.log(grid))).summary_frame()
    curve = pd.DataFrame(
        {
            "sessions": grid,
            "share_improved": pred["mean"].to_numpy(),
            "ci_low": pred["mean_ci_lower"].to_numpy(),
            "ci_high": pred["mean_ci_upper"].to_numpy(),
        }
    )
    return observed, curve
