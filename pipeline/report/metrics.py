"""The run's headline numbers under stable names (``reports/metrics.json``), so that
``dvc metrics diff`` compares two runs or experiments. Pure: built from the analysis frame
and the model stages' tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.config import DisclosureParams
from pipeline.disclosure import rate


def _rate(values: pd.Series, params: DisclosureParams) -> float | None:
    """A disclosure-controlled proportion (None if withheld or undefined), 3 decimals."""
    v = values.dropna().astype(float)
    cell = rate(float(v.sum()), float(len(v)), params)
    return round(cell.value, 3) if cell.shown and cell.value is not None else None


def cohort_metrics(frame: pd.DataFrame, params: DisclosureParams) -> dict:
    """Counts and NHS Talking Therapies rates. Improvement, deterioration and recovery rates
    are among finished courses (≥ 2 attended sessions) where the measure is defined (paired
    PHQ-9/GAD-7 if present, else the primary instrument); dropout among ended episodes with
    at least one attended session."""
    finished = frame[frame["finished_course"].astype(bool)]
    paired = frame["nhs_reliable_improvement"].notna().any()
    col = {
        "improvement": "nhs_reliable_improvement" if paired else "primary_reliable_change",
        "recovery": "nhs_reliable_recovery" if paired else "primary_reliable_recovery",
        "deterioration": "nhs_reliable_deterioration" if paired else "primary_reliable_change",
    }
    improvement = finished[col["improvement"]]
    deterioration = finished[col["deterioration"]]
    if not paired:
        improvement = improvement.eq(1).where(improvement.notna())
        deterioration = deterioration.eq(-1).where(deterioration.notna())
    started = frame[frame["ended"] & (frame["sessions_attended_total"] >= 1)]
    return {
        "n_episodes": len(frame),
        "n_finished_course": len(finished),
        "n_in_treatment_at_landmark": int(frame["in_treatment_at_landmark"].sum()),
        "n_poor_outcome_defined": int(frame["poor_outcome"].notna().sum()),
        "rate_reliable_improvement": _rate(improvement, params),
        "rate_reliable_recovery": _rate(finished[col["recovery"]], params),
        "rate_reliable_deterioration": _rate(deterioration, params),
        "rate_dropout": _rate(started["dropout"], params),
        "rate_poor_outcome": _rate(frame["poor_outcome"], params),
    }


def _effect(
    tables: dict[str, pd.DataFrame], metric: catalog.EffectMetric, params: DisclosureParams
) -> dict:
    """The estimate and interval of ``metric``; nothing when its model was not fitted (a
    model that could not be fitted writes a card but no row) or when its term's level has
    too few events or non-events among the analysed (``disclosure.sparse_terms``)."""
    table = tables.get(metric.table)
    if table is None:
        return {}
    rows = table[(table["model"] == metric.model) & (table["term"] == metric.term)]
    if rows.empty or ("status" in rows and rows["status"].iloc[0] != "fitted"):
        return {}
    r = rows.iloc[0]
    if r.get("level_min", np.inf) < params.threshold:
        return {}
    name = metric.name
    return {name: r["estimate"], f"{name}_ci_low": r["ci_low"], f"{name}_ci_high": r["ci_high"]}


def effect_metrics(tables: dict[str, pd.DataFrame], params: DisclosureParams) -> dict:
    """Key effects (``catalog.EFFECT_METRICS``: adjusted OR and HR per SD of the
    disengagement index, OR for two or more flags, the within-client alliance effect), and
    the missing-data sensitivity."""
    out: dict = {}
    for metric in catalog.EFFECT_METRICS:
        out |= _effect(tables, metric, params)
    if catalog.MI_METRICS_TABLE in tables:
        s = tables[catalog.MI_METRICS_TABLE]
        mi = s[(s["analysis"] == "multiple imputation") & (s["delta"] == 0)]
        if len(mi):
            r = mi.iloc[0]
            out |= {"or_index_mi": r["estimate"], "or_index_mi_ci_low": r["ci_low"]}
            out["or_index_mi_ci_high"] = r["ci_high"]
    if catalog.TIPPING_METRICS_TABLE in tables:
        t = tables[catalog.TIPPING_METRICS_TABLE].set_index("direction")["tipping_delta"]
        for side in ("negative", "positive"):
            value = t.get(side)
            out[f"tipping_delta_{side}"] = None if pd.isna(value) else float(value)
    return {
        k: (float(v) if isinstance(v, int | float | np.floating) else v) for k, v in out.items()
    }
