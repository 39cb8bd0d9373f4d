"""The run's headline numbers under stable names (``reports/metrics.json``), so that
``dvc metrics diff`` compares two runs or experiments. Pure: built from the analysis frame
and the model stages' tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.config import DisclosureParams
from pipeline.disclosure import count, rate


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


def primary_metrics(tables: dict[str, pd.DataFrame], params: DisclosureParams) -> dict:
    """The declared primary analysis first (``primary_*``: what it is, its estimate,
    interval, p-value and verdict at alpha), then how many of the secondary family's tests
    fall below alpha after the multiplicity correction. Empty when the plan's table is
    absent; the estimate is left out when its model was not fitted or rests on too few."""
    table = tables.get(catalog.DECLARED_TABLE)
    if table is None or table.empty:
        return {}
    first = table[table["role"] == "primary"].iloc[0]
    out: dict = {
        "primary_analysis": str(first["analysis"]),
        "primary_model": f"{first['model_type']}: {first['model']}",
        "primary_term": str(first["term"]),
        "primary_scale": None if pd.isna(first["scale"]) else str(first["scale"]),
    }
    shown = first["status"] == "fitted" and not (first.get("level_min", np.inf) < params.threshold)
    if shown:
        out |= {
            "primary_estimate": first["estimate"],
            "primary_ci_low": first["ci_low"],
            "primary_ci_high": first["ci_high"],
            "primary_p_value": first["p_value"],
            "primary_verdict": str(first["verdict"]),
        }
    n = count(float(first["n_analysed"]), params) if pd.notna(first["n_analysed"]) else None
    out["primary_n_analysed"] = int(n.value) if n is not None and n.shown and n.value else None
    secondary = table[table["role"] == "secondary"]
    out["secondary_tests"] = len(secondary)
    out["secondary_below_alpha"] = int((secondary["verdict"] == "below alpha").sum())
    out["secondary_multiplicity"] = (
        str(secondary["multiplicity"].iloc[0]) if len(secondary) else None
    )
    return {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in out.items()}


def ordered(metrics: dict) -> dict:
    """``metrics.json``'s order: the primary analysis first, then every other key sorted
    (a stable order, so the file is byte-for-byte reproducible)."""
    first = [k for k in metrics if k.startswith("primary_")]
    rest = sorted(k for k in metrics if k not in first)
    return {k: metrics[k] for k in [*first, *rest]}


def dropout_over_time(tables: dict[str, pd.DataFrame], params: DisclosureParams) -> dict:
    """Whether the main dropout hazard ratio is constant over follow-up (``hr_index_ph_p``:
    the Grambsch–Therneau p for the index in the adjusted model) and the period-specific
    ratios (``hr_index_days_<start>_<end>``, ``…_plus`` for the last), the time-robust
    reading when it is not. Periods resting on too few events are left out."""
    out: dict = {}
    ph = tables.get("dropout_proportional_hazards")
    metric = next(m for m in catalog.EFFECT_METRICS if m.name == "hr_index")
    if ph is not None and not ph.empty:
        row = ph[(ph["model"] == metric.model) & (ph["term"] == metric.term)]
        if len(row) and np.isfinite(row["p"].iloc[0]):
            out["hr_index_ph_p"] = float(row["p"].iloc[0])
    periods = tables.get("dropout_by_period")
    if periods is None or periods.empty:
        return out
    for r in periods[periods["term"] == metric.term].to_dict("records"):
        if r["status"] != "fitted" or not float(r["n_events"]) >= params.threshold:
            continue
        end = "plus" if pd.isna(r["end_days"]) else f"{float(r['end_days']):g}"
        name = f"hr_index_days_{float(r['start_days']):g}_{end}"
        out |= {name: r["estimate"], f"{name}_ci_low": r["ci_low"], f"{name}_ci_high": r["ci_high"]}
    return out


def effect_metrics(tables: dict[str, pd.DataFrame], params: DisclosureParams) -> dict:
    """Key effects (``catalog.EFFECT_METRICS``: adjusted OR and HR per SD of the
    disengagement index, OR for two or more flags, the within-client alliance effect), and
    the missing-data sensitivity."""
    out: dict = {}
    for metric in catalog.EFFECT_METRICS:
        out |= _effect(tables, metric, params)
    out |= dropout_over_time(tables, params)
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
