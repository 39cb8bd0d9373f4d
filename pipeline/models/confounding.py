"""How far the declared findings could be confounding: each declared analysis again with
early symptom change adjusted for, and E-values.

Early symptom change (primary score at the landmark minus baseline) can drive both
engagement and outcome: clients who improve early come more readily, and are those who
end well. If the engagement estimates shrink much when it is adjusted for, part of what
they show is early improvement. (Early change may also lie on the path from engagement to
outcome, so the adjusted estimate is a bound, not the "true" effect.)

The E-value (VanderWeele & Ding, *Ann Intern Med* 2017;167:268) is the minimum strength of
association, as a risk ratio, that an unmeasured confounder would need with both exposure
and outcome to explain the estimate away; for the interval, the limit nearer the null
(1 when the interval includes it). Odds and hazard ratios of a common outcome (> 15%) are
first approximated as risk ratios (√OR; (1 − 0.5^√HR)/(1 − 0.5^√(1/HR))), a difference in
points as a standardised difference d = estimate / SD of the outcome, RR ≈ exp(0.91·d)
(interval exp(0.91·d ± 1.78·SE_d)), as in the paper's appendix.

Pure: functions of the analysis frame and the params.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.config import AnalysisParams, ModelsParams
from pipeline.models import analysis

EARLY_CHANGE = "early_change_primary"
COMMON_OUTCOME = 0.15
Z = 1.959964

SENSITIVITY_COLUMNS = [
    "role",
    "outcome",
    "exposure",
    "term",
    "scale",
    "estimate",
    "ci_low",
    "ci_high",
    "estimate_early_change",
    "ci_low_early_change",
    "ci_high_early_change",
    "change_share",
    "e_value",
    "e_value_ci",
    "e_value_early_change",
    "e_value_ci_early_change",
    "n_analysed",
]


def e_value(rr: float) -> float:
    """E-value of a risk ratio: RR + √(RR·(RR − 1)), with RR < 1 inverted first."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = max(rr, 1 / rr)
    return float(rr + np.sqrt(rr * (rr - 1)))


def as_risk_ratio(ratio: float, scale: str, common: bool) -> float:
    """An odds or hazard ratio approximated as a risk ratio (unchanged for a rare
    outcome)."""
    if not common:
        return ratio
    if scale == "odds ratio":
        return float(np.sqrt(ratio))
    if scale == "hazard ratio":
        return float((1 - 0.5 ** np.sqrt(ratio)) / (1 - 0.5 ** np.sqrt(1 / ratio)))
    raise ValueError(f"no risk-ratio approximation for {scale!r}")


def e_values(
    estimate: float, ci_low: float, ci_high: float, scale: str, common: bool, sd: float
) -> tuple[float, float]:
    """(E-value of the estimate, E-value of its interval's limit nearer the null)."""
    if scale == "difference in points":
        if not sd > 0:
            return float("nan"), float("nan")
        se_d = (ci_high - ci_low) / (2 * Z) / sd
        d = estimate / sd
        rr, lo, hi = (float(np.exp(0.91 * d + k * 1.78 * se_d)) for k in (0, -1, 1))
    else:
        rr, lo, hi = (as_risk_ratio(v, scale, common) for v in (estimate, ci_low, ci_high))
    if not all(np.isfinite([rr, lo, hi])):
        return float("nan"), float("nan")
    if lo <= 1 <= hi:
        return e_value(rr), 1.0
    return e_value(rr), e_value(lo if rr > 1 else hi)


BATTERIES = {
    "final_score": analysis.final_score_models,
    "poor_outcome": analysis.poor_outcome_models,
    "dropout": analysis.dropout_models,
}
KINDS = {
    "final_score": catalog.FINAL_SCORE,
    "poor_outcome": catalog.POOR_OUTCOME,
    "dropout": catalog.DROPOUT,
}
OUTCOME_COLUMN = {"final_score": "final_score", "poor_outcome": "poor_outcome"}


def _exposure_set(exposure: str, params: ModelsParams) -> dict[str, list[str]]:
    if exposure in params.blocks:
        return {exposure: list(params.blocks[exposure])}
    if exposure == "flags group":
        return {exposure: [analysis.FLAGS_GROUP]}
    return {exposure: [exposure]}


def _scale_facts(frame: pd.DataFrame, outcome: str) -> tuple[bool, float]:
    """(is the outcome common, SD of the outcome) among the rows it is defined for."""
    if outcome == "dropout":
        rows = frame[frame["in_treatment_at_landmark"] & frame["dropout_time_days"].notna()]
        return bool(rows["dropout_event"].astype(float).mean() > COMMON_OUTCOME), float("nan")
    values = frame[OUTCOME_COLUMN[outcome]].dropna().astype(float)
    return bool(values.mean() > COMMON_OUTCOME), float(values.std())


def early_change_sensitivity(
    frame: pd.DataFrame, params: ModelsParams, plan: AnalysisParams
) -> pd.DataFrame:
    """Each declared analysis (primary, then secondary) fitted twice on the same rows —
    the episodes with early change known — as declared and with early change added to
    the adjustment: one row per exposure term with both estimates, the share of the
    estimate (on the model's scale: log ratio or points) that adjustment removes, and
    E-values of both."""
    if EARLY_CHANGE not in frame or frame[EARLY_CHANGE].notna().sum() == 0:
        return pd.DataFrame(columns=SENSITIVITY_COLUMNS)
    rows_known = frame[frame[EARLY_CHANGE].notna()]
    declared = [("primary", plan.primary), *(("secondary", a) for a in plan.secondary)]
    out = []
    for role, a in declared:
        sets = _exposure_set(a.exposure, params)
        fit = BATTERIES[a.outcome]
        kind = KINDS[a.outcome]
        model = catalog.model_id(kind, a.exposure, True)
        # Only the adjusted models are compared, so the unadjusted ones are not fitted.
        declared_fit = fit(rows_known, params, sets, adjusted_only=True)
        early_fit = fit(rows_known, params, sets, (EARLY_CHANGE,), adjusted_only=True)
        as_declared = declared_fit.tables.get(kind, pd.DataFrame())
        with_early = early_fit.tables.get(kind, pd.DataFrame())
        if as_declared.empty or with_early.empty:
            continue
        base = as_declared[as_declared["model"] == model].set_index("term")
        early = with_early[with_early["model"] == model].set_index("term")
        common, sd = _scale_facts(rows_known, a.outcome)
        exposure_terms = [t for t in base.index if any(t.startswith(c) for c in sets[a.exposure])]
        for term in exposure_terms:
            b, e = base.loc[term], early.loc[term] if term in early.index else None
            if e is None:
                continue
            scale = str(b["scale"])
            log = (lambda v: float(np.log(v))) if scale != "difference in points" else float
            shift = 1 - log(e["estimate"]) / log(b["estimate"]) if log(b["estimate"]) else np.nan
            ev, ev_ci = e_values(b["estimate"], b["ci_low"], b["ci_high"], scale, common, sd)
            eve, eve_ci = e_values(e["estimate"], e["ci_low"], e["ci_high"], scale, common, sd)
            out.append(
                {
                    "role": role,
                    "outcome": a.outcome,
                    "exposure": a.exposure,
                    "term": term,
                    "scale": scale,
                    "estimate": b["estimate"],
                    "ci_low": b["ci_low"],
                    "ci_high": b["ci_high"],
                    "estimate_early_change": e["estimate"],
                    "ci_low_early_change": e["ci_low"],
                    "ci_high_early_change": e["ci_high"],
                    "change_share": shift,
                    "e_value": ev,
                    "e_value_ci": ev_ci,
                    "e_value_early_change": eve,
                    "e_value_ci_early_change": eve_ci,
                    "n_analysed": int(e["n_analysed"]),
                }
            )
    return pd.DataFrame(out, columns=SENSITIVITY_COLUMNS)
