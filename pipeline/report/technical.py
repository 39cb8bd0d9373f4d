"""The technical report's reviewable parts, built from the run's params, shared model cards
and metrics: the headline metrics with labels, the flow of cases, a table of what each model
rests on (events per coefficient, reference levels, the SD behind each per-SD estimate),
the methods in words and a STROBE / TRIPOD checklist pointing to where each item is.

Pure functions; every count here is a shared (rounded or suppressed) count.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from pipeline import catalog
from pipeline.config import Params
from pipeline.disclosure import count
from pipeline.report.wording import Window, duration, parts

# --- headline metrics ---------------------------------------------------------------------

METRIC_LABELS = {  # metrics.json key → (label, format); an interval is joined to its value
    "primary_analysis": ("Primary analysis (declared)", "text"),
    "primary_model": ("Primary model", "text"),
    "primary_term": ("Primary exposure term", "text"),
    "primary_scale": ("Primary estimate scale", "text"),
    "primary_estimate": ("Primary estimate", "2f"),
    "primary_p_value": ("Primary p-value", "p"),
    "primary_verdict": ("Primary verdict", "text"),
    "primary_n_analysed": ("Primary: clients analysed", "count"),
    "alliance_within_effect": (
        "Alliance within client: change in the primary score per SRS point (mixed model)",
        "3f",
    ),
    "auc_baseline": ("AUC, baseline severity and case mix only", "3f"),
    "auc_engagement": ("AUC, with early engagement (logistic)", "3f"),
    "auc_engagement_boosting": ("AUC, with early engagement (boosting)", "3f"),
    "auc_gain": ("AUC gain from early engagement", "3f"),
    "auc_temporal": ("AUC, temporal validation (later referrals)", "3f"),
    "brier_temporal": ("Brier score, temporal validation", "3f"),
    "calibration_intercept_temporal": ("Calibration intercept, temporal validation", "3f"),
    "calibration_slope_temporal": ("Calibration slope, temporal validation", "3f"),
    "temporal_split_date": ("Temporal validation: referrals split at", "text"),
    "average_precision_engagement": ("Average precision, with early engagement", "3f"),
    "brier_engagement": ("Brier score, with early engagement", "3f"),
    "calibration_intercept_engagement": ("Calibration intercept (0 = ideal)", "3f"),
    "calibration_slope_engagement": ("Calibration slope (1 = ideal)", "3f"),
    "hr_index": ("Dropout hazard ratio per SD of the index", "2f"),
    "hr_index_ph_p": ("Proportional-hazards test of that ratio, p", "p"),
    "n_episodes": ("Episodes", "count"),
    "n_finished_course": ("Finished courses", "count"),
    "n_in_treatment_at_landmark": ("In treatment at the landmark", "count"),
    "n_poor_outcome_defined": ("Poor outcome defined", "count"),
    "or_flags_2plus": ("Poor outcome odds ratio, 2+ early signs vs none", "2f"),
    "or_index": ("Poor outcome odds ratio per SD of the index (complete cases)", "2f"),
    "or_index_mi": ("Poor outcome odds ratio per SD of the index (multiple imputation)", "2f"),
    "rate_dropout": ("Dropout (ended episodes with a session)", "pct"),
    "rate_poor_outcome": ("Poor outcome", "pct"),
    "rate_reliable_deterioration": ("Reliable deterioration (finished courses)", "pct"),
    "rate_reliable_improvement": ("Reliable improvement (finished courses)", "pct"),
    "rate_reliable_recovery": ("Reliable recovery (finished courses at caseness)", "pct"),
    "secondary_below_alpha": ("Secondary tests below alpha after adjustment", "count"),
    "secondary_multiplicity": ("Secondary family: multiplicity adjustment", "text"),
    "secondary_tests": ("Secondary tests", "count"),
    "tipping_delta_negative": ("Tipping point, imputed scores better by (points)", "tip"),
    "tipping_delta_positive": ("Tipping point, imputed scores worse by (points)", "tip"),
}
PERIOD = re.compile(r"^hr_index_days_(\d+)_(\d+|plus)$")


def _number(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "none within the grid" if fmt == "tip" else "not estimated"
    if fmt == "text":
        return str(value)
    if fmt == "count":
        return f"{float(value):,.0f}"
    if fmt == "pct":
        return f"{float(value):.1%}"
    if fmt == "p":
        return f"{float(value):.2g}"
    if fmt == "tip":
        return f"{float(value):g}"
    return format(float(value), "." + fmt)


def metric_label(key: str) -> tuple[str, str]:
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    m = PERIOD.match(key)
    if m:
        days = (
            f"from day {m.group(1)}" if m.group(2) == "plus" else f"days {m.group(1)}–{m.group(2)}"
        )
        return (f"Dropout hazard ratio per SD of the index, {days}", "2f")
    return (key.replace("_", " ").capitalize(), "3g")


def metric_rows(metrics: dict) -> list[dict]:
    """Headline metrics as a reader wants them: a label, the value at a sensible precision
    with its 95% interval beside it, and the ``metrics.json`` key (for ``dvc metrics``)."""
    rows = []
    for key, value in metrics.items():
        if key.endswith(("_ci_low", "_ci_high")):
            continue
        label, fmt = metric_label(key)
        text = _number(value, fmt)
        stem = key.removesuffix("_estimate")  # primary_estimate → primary_ci_low
        low = metrics.get(f"{key}_ci_low", metrics.get(f"{stem}_ci_low"))
        high = metrics.get(f"{key}_ci_high", metrics.get(f"{stem}_ci_high"))
        if low is not None and high is not None and text != "not estimated":
            text += f" ({_number(low, fmt)} to {_number(high, fmt)})"
        rows.append({"label": label, "value": text, "key": key})
    return rows


# --- the flow of cases ----------------------------------------------------------------------


def case_flow(frame: pd.DataFrame, ingest_report: dict, params: Params) -> list[dict]:
    """Read → accepted → episodes → in treatment at the landmark → outcome defined (the
    models' analysed counts come from their cards: :func:`analysed_by_model`). Each count
    is rounded once; each exclusion is the difference of the rounded
    counts either side of it, so the boxes add up as printed (nothing is recovered that the
    two rounded counts do not already give)."""
    d = params.disclosure
    window = Window(params.features.window_days)
    totals = ingest_report["totals"]

    def r(n: float) -> int | None:
        cell = count(n, d)
        return int(cell.value) if cell.shown and cell.value is not None else None

    landmark = frame[frame["in_treatment_at_landmark"].astype(bool)]
    below = landmark["primary_case_start"].astype("boolean").eq(False).fillna(False)
    no_baseline = landmark["primary_case_start"].isna()
    steps = [
        ("Records read", totals["rows_read"], None),
        ("Records accepted", totals["rows_read"] - totals["rows_quarantined"],
         "set aside by the input contract (data quality)"),
        ("Episodes of care", len(frame), None),  # a new unit: no exclusion to show
        (f"In treatment at the landmark ({window.length})", len(landmark),
         f"ended, or never attended, within {window.first}"),
    ]  # fmt: skip
    if params.outcomes.population == "caseness":
        steps.append(
            (
                "At caseness at the start",
                int((~below & ~no_baseline).sum()),
                "below the clinical cut-off at the start, or no baseline score",
            )
        )
    steps.append(
        (
            "Poor outcome defined (a later score)",
            int(frame["poor_outcome"].notna().sum()),
            "no score after the landmark",
        )
    )
    out: list[dict] = []
    previous = None
    for label, n, why in steps:
        shown = r(n)
        step = {"label": label, "n": count(n, d).text(), "excluded": None, "why": why}
        if previous is not None and shown is not None and why is not None:
            step["excluded"] = f"{previous - shown:,}"
        out.append(step)
        previous = shown
    return out


def _thousands(text) -> str:
    """A shared count as printed elsewhere: ``1690`` → ``1,690`` (``<8`` unchanged)."""
    return f"{int(text):,}" if str(text).isdigit() else str(text)


def analysed_by_model(cards: list[dict], primary_model: str | None) -> list[tuple[str, str]]:
    """The analysed count (shared) of the models the reports lead with."""
    wanted = [
        ("Primary analysis", primary_model),
        ("Poor outcome, per SD of the index (adjusted)",
         catalog.model_id(catalog.POOR_OUTCOME, "index", True)),
        ("Dropout, per SD of the index (adjusted)",
         catalog.model_id(catalog.DROPOUT, "index", True)),
        ("Prediction (engagement, logistic)", "prediction: engagement (logistic)"),
    ]  # fmt: skip
    by_name = {c["model"]: c for c in cards}
    if primary_model and primary_model not in by_name and ": " in primary_model:
        wanted[0] = (wanted[0][0], primary_model.split(": ", 1)[1])  # "ancova: <model>"
    return [
        (label, _thousands(by_name[name]["n_analysed"]))
        for label, name in wanted
        if name in by_name and by_name[name].get("status") == "fitted"
    ]


# --- what each model rests on ---------------------------------------------------------------


def _events_per(events: str | None, parameters: int | None) -> str:
    try:
        e = float(str(events).replace(",", ""))
    except (TypeError, ValueError):
        return "—"
    return f"{e / parameters:.0f}" if parameters else "—"


def model_basis(cards: list[dict]) -> list[dict]:
    """One row per fitted effect model: rows analysed, events (the rarer outcome for a
    logistic model, dropouts for Cox), coefficients, events per coefficient (from the
    shared, rounded events), the reference level of each categorical term and the SD in
    its own units behind each per-SD term."""
    rows = []
    for c in cards:
        if c.get("status") != "fitted" or not (c.get("parameters") or c.get("units")):
            continue
        refs = "; ".join(f"{k} = {v}" for k, v in (c.get("reference_levels") or {}).items())
        units = "; ".join(f"{k}: {v:.3}" for k, v in (c.get("units") or {}).items())
        rows.append(
            {
                "model": c["model"],
                "n": _thousands(c.get("n_analysed")),
                "events": c.get("events") if c.get("events") is not None else "—",
                "parameters": c.get("parameters") if c.get("parameters") is not None else "—",
                "epv": _events_per(c.get("events"), c.get("parameters")),
                "reference": refs or "—",
                "units": units or "—",
            }
        )
    return rows


# --- methods, generated from the params --------------------------------------------------------


def methods(params: Params, instrument, has_temporal: bool) -> list[tuple[str, str]]:
    """The methods section: each paragraph states what this run did, from its params."""
    m, o, p, md = params.models, params.outcomes, params.prediction, params.missing_data
    a, dc = params.analysis, params.disclosure
    window = Window(params.features.window_days)
    poor = {
        "not_reliably_improved": f"not reliably improved (an improvement of less than "
        f"{instrument.reliable_change:g} points)",
        "reliable_deterioration": f"reliably deteriorated (worse by {instrument.reliable_change:g} "
        "points or more)",
        "not_recovered": "not recovered (not below the clinical cut-off at the end, or not "
        "reliably improved)",
    }[o.poor_outcome]
    case_mix = ", ".join(m.case_mix)
    periods = ", ".join(str(d) for d in m.dropout_periods_days)
    # fmt: off
    paragraphs = [
        ("Design and setting",
         "Retrospective cohort of episodes of care in a routine service export, read against "
         "a declared input contract; rows that break it are set aside and counted (data "
         "quality). Each episode is followed from its first scheduled appointment to its end "
         "or the extract date."),
        ("Landmark",
         f"Engagement is measured in a landmark window of {params.features.window_days} days "
         f"({window.length}) from the first scheduled appointment, using records inside the "
         "window only; outcomes are taken after it. Analyses of outcome and dropout include "
         "episodes still in treatment at the landmark, so nothing that happens after it "
         "defines the exposure (no immortal-time bias)."),
        ("Outcomes",
         f"Primary instrument {instrument.name} (range {instrument.minimum:g}–"
         f"{instrument.maximum:g}, caseness {instrument.caseness:g}, reliable change "
         f"{instrument.reliable_change:g} points; {instrument.reliable_change_source}). The "
         "final score is the last score after the landmark; the baseline the first score "
         f"from {o.baseline_before_days} days before to {o.baseline_after_days} days after "
         f"the first attended session. Poor outcome: {poor}, among clients "
         + ("at caseness at the start" if o.population == "caseness" else "with a baseline")
         + ". Dropout: an unplanned ending, with other endings as a competing event "
         "(cumulative incidence) and censoring at the extract date."),
        ("Exposures",
         "Feature blocks (" + "; ".join(f"{k}: {', '.join(v)}" for k, v in m.blocks.items())
         + "). Continuous features are standardised among each model's analysed rows, so "
         "each estimate is per SD; the SD in the feature's own units is in the table of what "
         "each model rests on. Early signs are 0/1 flags; their count is grouped as 0, 1 and "
         "2 or more (reference: none)."),
        ("Models",
         "Final score: linear regression on the baseline score (ANCOVA). Poor outcome: "
         "logistic regression. Dropout: Cox proportional hazards (Efron ties) from the "
         "landmark, with the Schoenfeld-residual test of proportional hazards, and "
         f"period-specific hazard ratios with delayed entry at days {periods}. Symptom "
         "trajectories: linear mixed models by maximum likelihood (client intercept and "
         "slope, correlated: profiled likelihood as lme4, every episode; clients within "
         "therapists: statsmodels MixedLM"
         + (f", on a random sample of whole caseloads above {m.therapist_level_max_episodes:,} "
            "episodes" if m.therapist_level_max_episodes else "")
         + "). Adjusted models add the baseline score and case mix ("
         f"{case_mix}); categories with fewer than {m.min_level_count} episodes, or fewer "
         f"than {m.min_level_events} events or non-events, are pooled, and the most common "
         "category is the reference. Errors are cluster-robust by "
         f"{m.cluster.replace('_id', '')} (by {m.fallback_cluster.replace('_id', '')} where "
         f"it is not recorded); below {m.min_clusters} clusters, CR2 errors with a t(G − 1) "
         "reference."),
        ("Analysis plan",
         f"Declared before the results: primary {a.primary.label}; secondary family "
         f"({', '.join(x.label for x in a.secondary)}) adjusted by {a.multiplicity.capitalize()}'s "
         f"method at α = {a.alpha}. Every other model is exploratory."),
        ("Prediction",
         f"L2-penalised logistic regression (C = {p.logistic_c:g}) and gradient boosting, "
         f"fitted on training folds only; {p.folds}-fold cross-validation grouped by "
         f"therapist, repeated {p.repeats} times; intervals from {p.bootstrap} cluster-"
         f"bootstrap replicates; calibration in {parts(p.calibration_bins)} of predicted "
         "risk, with the calibration intercept and slope."
         + (" Temporal validation: trained on earlier referrals and tested on later ones, "
            "beside the grouped cross-validation." if has_temporal else "")),
        ("Missing final scores",
         "Complete cases; multiple imputation by chained equations "
         f"({md.imputations} imputations of the final score, auxiliaries "
         f"{', '.join(md.auxiliaries)}), pooled by Rubin's rules; last observation carried "
         "forward; and a delta-adjusted tipping-point analysis over "
         f"{min(md.delta_grid):g} to {max(md.delta_grid):g} points."),
        ("Confounding by early change",
         "The declared analyses are refitted with early change in the primary score "
         "added, and E-values are reported for each estimate."),
        ("Disclosure control",
         f"Counts 1–{dc.threshold - 1} are suppressed and others rounded to the nearest "
         f"{dc.rounding_base}; estimates resting on fewer than {dc.threshold} people are "
         "withheld; shares are those of the published counts; curves are shared every "
         f"{duration(7 * dc.curve_step_weeks)} while {dc.threshold} or more remain at risk."),
    ]
    # fmt: on
    return paragraphs


# --- reporting checklist ----------------------------------------------------------------------

CHECKLIST = (  # (guideline item, what, where in this report: anchor id or None)
    ("STROBE 4–5", "Study design and setting", "methods"),
    ("STROBE 6", "Participants and eligibility", "flow"),
    ("STROBE 7", "Variables: outcomes, exposures, confounders", "methods"),
    ("STROBE 8", "Data sources and measurement (instruments, contract)", "defs"),
    ("STROBE 9", "Bias: confounding by early change, E-values", "confounding"),
    ("STROBE 10", "Study size", "flow"),
    ("STROBE 11", "Quantitative variables: per-SD units", "basis"),
    ("STROBE 12a–b", "Statistical methods, subgroups", "methods"),
    ("STROBE 12c", "Missing data", "missing"),
    (
        "STROBE 12d",
        "Loss to follow-up: censoring at the extract date, competing endings",
        "methods",
    ),
    ("STROBE 12e", "Sensitivity analyses", "missing"),
    ("STROBE 13", "Participants at each stage (flow of cases)", "flow"),
    ("STROBE 14", "Descriptive data", "baseline"),
    ("STROBE 15–16", "Outcome data, main results with intervals", "plan"),
    ("STROBE 17", "Other analyses", "models"),
    ("STROBE 18–21", "Key results, limitations, interpretation, generalisability", None),
    ("STROBE 22", "Funding", None),
    ("TRIPOD 4–6", "Source of data, study dates, participants, outcome", "flow"),
    ("TRIPOD 7a", "Predictors (landmark-window features only)", "methods"),
    ("TRIPOD 8", "Sample size: events", "basis"),
    ("TRIPOD 9", "Missing data", "missing"),
    ("TRIPOD 11", "Risk groups (fifths of predicted risk)", "prediction"),
    ("TRIPOD 13–14", "Participants and events in development and validation", "flow"),
    ("TRIPOD 10", "Model development and validation (grouped, temporal)", "prediction"),
    ("TRIPOD 10d / 16", "Performance: discrimination and calibration", "prediction"),
    ("TRIPOD 15", "Model specification", None),
)
NOT_GENERATED = {
    "STROBE 18–21": "for the authors: the pipeline gives the numbers, not the discussion",
    "STROBE 22": "for the authors",
    "TRIPOD 15": "the fitted model and its card are kept with the service's worklist (not "
    "shared: the coefficients are not aggregate counts)",
}


def checklist() -> list[dict]:
    return [
        {"item": item, "what": what, "where": where, "note": NOT_GENERATED.get(item)}
        for item, what, where in CHECKLIST
    ]
