"""Build the report context from the pipeline's outputs: every number passes disclosure
control here, every sentence is generated from the numbers, and nothing claims causation.

Pure functions: the stage entry (``pipeline/stages/report.py``) reads files and renders.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from pipeline import catalog
from pipeline.config import DisclosureParams, Params
from pipeline.disclosure import (
    Cell,
    count,
    published_counts,
    rate,
    safe_curve,
    suppress_table,
)
from pipeline.features.index import INDEX_COMPONENTS
from pipeline.models.declared import primary_row
from pipeline.report import figures

LEVERS = {  # feature → (panel title, higher means more engaged)
    "attendance_rate": ("Attendance", True),
    "alliance_mean": ("Alliance (SRS)", True),
    "goal_owned_share": ("Own goals", True),
    "homework_completion_rate": ("Homework done", True),
}
FLAG_LABELS = {
    "flag_missed_first_appointment": "Missed the first appointment",
    "flag_two_plus_no_shows": "Two or more no-shows",
    "flag_alliance_below_cutoff": "Low alliance rating",
    "flag_no_client_goal": "No goal of their own",
    "flag_homework_under_half": "Under half of homework done",
}
GROUP_LABELS = {"0": "no early signs", "1": "one early sign", "2+": "two or more early signs"}
SIGN_WORDS = {  # the early signs as the clinician report lists them
    "flag_missed_first_appointment": "missed the first appointment",
    "flag_two_plus_no_shows": "two or more no-shows",
    "flag_alliance_below_cutoff": "a low alliance rating",
    "flag_no_client_goal": "no goal of the client's own",
    "flag_homework_under_half": "under half of agreed homework done",
}
LEVER_WORDS = {  # lever feature → words in the figure's caption
    "attendance_rate": "attendance",
    "alliance_mean": "alliance",
    "goal_owned_share": "goal ownership",
    "homework_completion_rate": "homework completion",
}


# --- what the export of this run does not record ------------------------------------------


@dataclass(frozen=True)
class Record:
    """Something an export may lack: a contract table (``column`` None) or one of its
    optional columns, in plain words, and the features (and model terms) that need it."""

    table: str
    column: str | None
    words: str
    features: tuple[str, ...] = ()


RECORDS = (
    Record(
        "sessions",
        "alliance_score",
        "session alliance ratings",
        (
            "alliance_score",
            "alliance_mean",
            "alliance_min",
            "alliance_slope_per_week",
            "alliance_low_share",
            "flag_alliance_below_cutoff",
        ),
    ),
    Record("sessions", "agenda_set_by", "who set the agenda", ("agenda_client_share",)),
    Record(
        "sessions",
        "homework_completed",
        "homework",
        ("homework_completion_rate", "flag_homework_under_half"),
    ),
    Record("sessions", "homework_assigned", "homework set at each session"),
    Record(
        "goals",
        None,
        "goals",
        ("n_goals", "goal_owned_share", "days_to_first_goal", "flag_no_client_goal"),
    ),
    Record("goal_ratings", None, "goal progress ratings", ("goal_rating_gain",)),
    Record(
        "contacts",
        None,
        "between-session contacts",
        ("client_contacts_per_week", "outreach_response_rate"),
    ),
    Record(
        "contacts",
        "responded",
        "replies to the service's messages",
        ("outreach_response_rate",),
    ),
    Record(
        "sessions",
        "barrier_reported",
        "obstacles raised at sessions",
        ("n_barriers", "barrier_share"),
    ),
    Record(
        "sessions",
        "notice_hours",
        "notice given for cancellations",
        ("notice_cancel_share",),
    ),
    Record("sessions", "modality", "how sessions were held", ("modality_changes",)),
)
COMPOSITES = {  # built from several features: what goes into each
    "flags_group": tuple(SIGN_WORDS),
    "flags_count": tuple(SIGN_WORDS),
    "disengagement_index": tuple(INDEX_COMPONENTS),
}


def export_info(ingest_report: dict) -> dict:
    """What the ingest report of this run says about its input. An ingest report without
    ``export`` (written before it was recorded) is a service export in the contract
    layout: nothing is called synthetic unless the input said so."""
    export = ingest_report.get("export") or {}
    manifest = export.get("manifest") or None
    synthetic = export.get("source") == "synthetic" or (
        isinstance(manifest, dict) and manifest.get("source") == "synthetic"
    )
    return {
        "synthetic": synthetic,
        "layout": export.get("layout") or "contract",
        "mapping": export.get("mapping") or None,
        "manifest": manifest,
        "extract_date": ingest_report.get("extract_date"),
        "extract_date_source": ingest_report.get("extract_date_source") or "not recorded",
        "input_files": sorted((ingest_report.get("input_files") or {}).items()),
        "rekeyed": ingest_report.get("rekeyed"),
    }


LAYOUT_WORDS = {
    "contract": "the pipeline's data contract",
    "nhstt": "the NHS Talking Therapies data set, IDS tables",
    "mapping": "a user-defined mapping",
}


def layout_text(info: dict) -> str:
    words = LAYOUT_WORDS.get(info["layout"], str(info["layout"]))
    text = f"{info['layout']} ({words})"
    if info["mapping"]:
        text += f", mapping file {info['mapping']}"
    return text


def absent_records(ingest_report: dict) -> list[Record]:
    """The records this run's export does not carry, from its ingest report
    (``optional_tables_absent`` and ``columns_absent``), in declaration order. A column of
    a table that is absent altogether is covered by the table."""
    tables = set(ingest_report.get("optional_tables_absent") or [])
    columns = {
        (table, column)
        for table, names in (ingest_report.get("columns_absent") or {}).items()
        if table not in tables
        for column in names or []
    }
    out = [
        r
        for r in RECORDS
        if (r.column is None and r.table in tables) or (r.table, r.column) in columns
    ]
    known = {(r.table, r.column) for r in RECORDS}
    out += [  # any other contract column the export did not supply, by its name
        Record(table, column, column.replace("_", " "))
        for table, column in sorted(columns)
        if (table, column) not in known
    ]
    return out


def absent_words(records: list[Record], affecting_findings: bool = True) -> list[str]:
    """Plain words for ``records``, each once; only those that some finding needs unless
    ``affecting_findings`` is false."""
    words = [r.words for r in records if r.features or not affecting_findings]
    return list(dict.fromkeys(words))


def absent_features(records: list[Record]) -> set[str]:
    return {f for r in records for f in r.features}


def _terms(formula: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula or ""))


def card_absence(card: dict, records: list[Record]) -> dict:
    """What a model card's model could not use because this export does not record it:
    ``not_in_export`` (a term of the model needs it) and ``built_without`` (a composite
    term, the early-signs count or the disengagement index, was built without it)."""
    terms = _terms(card.get("formula", ""))

    def uses(feature: str) -> bool:
        return any(t == feature or t.startswith(feature + "_") for t in terms)

    direct = [r.words for r in records if any(uses(f) for f in r.features)]
    missing = absent_features(records)
    composite = [
        r.words
        for r in records
        if any(
            c in terms and set(parts) & set(r.features) & missing for c, parts in COMPOSITES.items()
        )
    ]
    return {
        "not_in_export": list(dict.fromkeys(direct)),
        "built_without": [w for w in dict.fromkeys(composite) if w not in direct],
    }


def join_words(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


def pct(cell: Cell, digits: int = 0) -> str:
    return cell.text(f"{{:.{digits}%}}")


def _row(table: pd.DataFrame, model: str, term: str, min_n: int) -> pd.Series | None:
    rows = table[(table["model"] == model) & (table["term"] == term)]
    if rows.empty:
        return None
    r = rows.iloc[0]
    if r.get("status", "fitted") != "fitted" or r["n_analysed"] < min_n:
        return None
    if r.get("level_min", np.inf) < min_n:  # a level with too few events or non-events
        return None
    return r


def rate_with_ci(events: int, n: int, params: Params) -> dict:
    cell = rate(events, n, params.disclosure)
    if not cell.shown:
        return {"cell": cell, "ci_low": None, "ci_high": None}
    low, high = proportion_confint(*published_counts(events, n, params.disclosure), method="wilson")
    return {"cell": cell, "ci_low": float(low), "ci_high": float(high)}


def rates_by(frame: pd.DataFrame, by: pd.Series, outcome: str, params: Params) -> list[dict]:
    out = []
    for label, g in frame.groupby(by, sort=False, observed=True):
        y = g[outcome].dropna()
        r = rate_with_ci(int(y.sum()), len(y), params)
        out.append({"label": str(label), "n": count(len(y), params.disclosure), **r})
    return out


def lever_rates(
    frame: pd.DataFrame, params: Params, skip: set[str] | frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Share with a poor outcome by thirds (low / middle / high) of each lever: aggregate
    rates with Wilson 95% intervals, withheld where they rest on too few people. Levers in
    ``skip`` (not in this export) are left out."""
    pop = frame[frame["poor_outcome"].notna()]
    rows = []
    for feature, (panel, _) in LEVERS.items():
        if (
            feature in skip
            or feature not in pop
            or pop[feature].notna().sum() < 3 * params.disclosure.threshold
        ):
            continue
        thirds = pd.qcut(pop[feature].rank(method="first"), 3, labels=["low", "middle", "high"])
        for r in rates_by(pop, thirds, "poor_outcome", params):
            rows.append(
                {
                    "panel": panel,
                    "label": r["label"],
                    "n": r["n"].value,
                    "rate": r["cell"].value,
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                }
            )
    order = {"low": 0, "middle": 1, "high": 2}
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_order"] = out["label"].map(order)
    return out.sort_values(["panel", "_order"]).drop(columns="_order").reset_index(drop=True)


def incidence_for_plot(ci: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Cumulative incidence by group as shared (:func:`pipeline.disclosure.safe_curve`): at
    fixed weeks only, each point at a precision its number at risk supports, and stopping
    where fewer than the threshold remain at risk."""
    curves = safe_curve(ci, "incidence_dropout", params.disclosure)
    curves["group"] = curves["group"].astype(str)
    return curves.rename(columns={"incidence_dropout": "incidence"}).drop(columns="n_at_risk")


def incidence_at(curves: pd.DataFrame, week: float) -> dict[str, float]:
    out = {}
    for group, g in curves.groupby("group"):
        g = g[g["week"] <= week]
        if len(g) and curves[curves["group"] == group]["week"].max() >= week:
            out[str(group)] = float(g["incidence"].iloc[-1])
    return out


def quarantine_table(ingest_report: dict, params: Params) -> list[dict]:
    """Records set aside by table and rule. The table is published with its total, so it
    goes through secondary suppression: a lone small count cannot be recovered by
    subtraction."""
    rows = [
        (table, rule, n)
        for table, t in ingest_report["tables"].items()
        for rule, n in sorted(t.get("quarantined_by_rule", {}).items())
    ]
    if not rows:
        return []
    exact = pd.DataFrame({"rows": [n for *_, n in rows]}, index=[f"{t}|{r}" for t, r, _ in rows])
    safe = suppress_table(exact, params.disclosure)
    return [
        {"table": t, "rule": r.replace("_", " "), "rows": safe.loc[f"{t}|{r}", "rows"]}
        for t, r, _ in rows
    ]


def missing_rows(miss: pd.DataFrame, params: Params) -> list[dict]:
    """Missing final scores by flags group with the total row, secondary-suppressed."""
    groups = miss[miss["group"] != "all"].set_index("group")
    exact = pd.DataFrame(
        {
            "missing": groups["missing_final_score"],
            "present": groups["episodes"] - groups["missing_final_score"],
        }
    )
    safe = suppress_table(exact, params.disclosure)
    out = []
    for group in [*groups.index, "Total"]:
        row = safe.loc[group]
        source = miss.set_index("group").loc["all" if group == "Total" else group].to_dict()
        share = rate(
            float(source["missing_final_score"]), float(source["episodes"]), params.disclosure
        )
        hidden = not (row["missing"].shown and row["present"].shown)
        out.append(
            {
                "label": "all" if group == "Total" else GROUP_LABELS.get(str(group), str(group)),
                "episodes": row["Total"].text(),
                "missing": row["missing"].text(),
                "share": "withheld" if hidden and share.shown else pct(share),
            }
        )
    return out


def _by_interval(low: float, high: float, null: float, above: str, below: str, neither: str):
    """Wording that follows a 95% interval: above or below the null value, or neither."""
    if low > null:
        return above
    if high < null:
        return below
    return neither


def _finite(*values) -> bool:
    """Every value is a finite number (a sentence is never built on a missing one)."""
    try:
        return all(v is not None and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _estimate(r) -> bool:
    return r is not None and _finite(r["estimate"], r["ci_low"], r["ci_high"])


OUTCOME_WORDS = {  # declared outcome → (what is compared, how the estimate reads)
    "final_score": "a final {instrument} score",
    "poor_outcome": "their odds of finishing without reliable improvement",
    "dropout": "their rate of dropping out after the landmark",
}


def exposure_words(exposure: str, term: str) -> str:
    """The declared exposure in words: what one unit (one SD, or the flag) means."""
    if exposure == "index":
        return "a disengagement index one standard deviation higher (less engaged early on)"
    if term in FLAG_LABELS:
        return f"the early sign '{FLAG_LABELS[term]}'"
    return f"one standard deviation more {term.replace('_', ' ')}"


def primary_section(tables: dict[str, pd.DataFrame], params: Params) -> dict:
    """The declared primary analysis (``analysis.primary``) as both reports lead with it,
    and the analysis plan in words; ``primary`` is None when it was not fitted or its
    estimate rests on too few people."""
    plan = params.analysis
    declared = tables.get(catalog.DECLARED_TABLE)
    row = None if declared is None else primary_row(declared)
    t = params.disclosure.threshold
    if row is not None and pd.notna(row.get("level_min")) and row["level_min"] < t:
        row = None
    n = None if row is None else count(float(row["n_analysed"]), params.disclosure)
    if n is not None and not n.shown:
        row = None
    secondary = declared[declared["role"] == "secondary"] if declared is not None else None
    return {
        "primary": None
        if row is None
        else {
            "analysis": plan.primary.label,
            "outcome": plan.primary.outcome,
            "exposure": plan.primary.exposure,
            "term": str(row["term"]),
            "estimate": float(row["estimate"]),
            "ci_low": float(row["ci_low"]),
            "ci_high": float(row["ci_high"]),
            "p_value": float(row["p_value"]),
            "verdict": str(row["verdict"]),
            "n": n.text() if n is not None else "",
        },
        "plan": {
            "primary": plan.primary.label,
            "model": plan.primary.model or "",
            "population": params.outcomes.population,
            "secondary": [a.label for a in plan.secondary],
            "multiplicity": plan.multiplicity,
            "alpha": plan.alpha,
            "secondary_below_alpha": None
            if secondary is None
            else int((secondary["verdict"] == "below alpha").sum()),
            "secondary_tests": 0 if secondary is None else len(secondary),
        },
    }


def _sentence_primary(ctx: dict) -> str | None:
    """The declared primary analysis, first among the key findings."""
    p = ctx.get("primary")
    if not (p and _finite(p["estimate"], p["ci_low"], p["ci_high"])):
        return None
    who = exposure_words(p["exposure"], p["term"])
    what = OUTCOME_WORDS[p["outcome"]].format(instrument=ctx["instrument_name"])
    start = "Main question, set before the analysis: clients with " + who
    interval = f"(95% CI {p['ci_low']:.1f} to {p['ci_high']:.1f})"
    if p["outcome"] == "final_score":
        direction = _by_interval(p["ci_low"], p["ci_high"], 0, "higher", "lower", "")
        size = f"about {abs(p['estimate']):.1f} points {direction}"
        if not direction:
            size = f"not clearly higher or lower ({p['estimate']:+.1f} points)"
        return (
            f"{start} ended treatment with a final {ctx['instrument_name']} score {size} "
            f"{interval}, allowing for their starting score and case mix."
        )
    return (
        f"{start} had {what} about {p['estimate']:.1f} times as high (95% CI "
        f"{p['ci_low']:.1f} to {p['ci_high']:.1f}), allowing for their starting score and "
        "case mix."
    )


def _sentence_poor_by_group(ctx: dict) -> str | None:
    g = ctx["poor_by_group"]
    if not (g.get("2+") and g.get("0") and g["2+"]["cell"].shown and g["0"]["cell"].shown):
        return None
    return (
        f"{pct(g['2+']['cell'])} of clients with two or more early signs of disengagement "
        f"finished without reliable improvement, compared with {pct(g['0']['cell'])} of "
        "clients with none."
    )


def _sentence_or_flags(ctx: dict) -> str | None:
    r = ctx["or_flags_2plus"]
    if not _estimate(r):
        return None
    return (
        "Allowing for how severe their symptoms were at the start and for case mix, their "
        f"odds of a poor outcome were about {r['estimate']:.1f} times "
        f"as high (95% CI {r['ci_low']:.1f} to "
        f"{r['ci_high']:.1f})."
    )


def _sentence_missed_first(ctx: dict) -> str | None:
    r = ctx["or_missed_first"]
    if not _estimate(r):
        return None
    how = _by_interval(
        r["ci_low"],
        r["ci_high"],
        1,
        "more likely",
        "less likely",
        "not clearly more or less likely",
    )
    return (
        f"Clients who missed their first appointment were {how} to finish without "
        f"reliable improvement: odds about {r['estimate']:.1f} times as high (95% CI "
        f"{r['ci_low']:.1f} to {r['ci_high']:.1f})."
    )


def _sentence_dropout(ctx: dict) -> str | None:
    inc = ctx["incidence_12w"]
    if not ("2+" in inc and "0" in inc and _finite(inc["2+"], inc["0"])):
        return None
    return (
        f"Twelve weeks after the first six weeks, about {inc['2+']:.0%} of clients with two "
        f"or more early signs had dropped out, compared with {inc['0']:.0%} of those with "
        "none."
    )


def _sentence_prediction(ctx: dict) -> str | None:
    p = ctx["prediction"]
    keys = ("auc_baseline", "auc_engagement", "auc_gain_ci_low", "auc_gain_ci_high")
    if not (p and _finite(*(p.get(k) for k in keys))):
        return None
    verb = _by_interval(
        p["auc_gain_ci_low"],
        p["auc_gain_ci_high"],
        0,
        "improved",
        "worsened",
        "did not clearly change",
    )
    return (
        f"Adding early engagement {verb} the prediction of who would not improve: the AUC "
        f"went from {p['auc_baseline']:.2f} (starting severity and case mix alone) to "
        f"{p['auc_engagement']:.2f} (95% CI for the change {p['auc_gain_ci_low']:.2f} to "
        f"{p['auc_gain_ci_high']:.2f})."
    )


def _sentence_missing(ctx: dict) -> str | None:
    m = ctx["missing"]
    if not (m and m["share_missing"].shown and _finite(m["mi"]["estimate"], m["cc"]["estimate"])):
        return None
    ratio = m["mi"]["estimate"] / m["cc"]["estimate"]
    similar = "a similar" if 0.8 <= ratio <= 1.25 else "a different"
    return (
        f"{pct(m['share_missing'])} of clients had no final score. Estimating what their "
        f"scores might have been (multiple imputation) gave {similar} association (odds "
        f"ratio {m['mi']['estimate']:.1f} per SD of the disengagement index, against "
        f"{m['cc']['estimate']:.1f} without them)."
    )


SENTENCES: tuple[Callable[[dict], str | None], ...] = (  # in the order the reports list them
    _sentence_primary,
    _sentence_poor_by_group,
    _sentence_or_flags,
    _sentence_missed_first,
    _sentence_dropout,
    _sentence_prediction,
    _sentence_missing,
)


def summary_sentences(ctx: dict) -> list[str]:
    """The plain-language key findings, each built from the numbers it states; a finding
    whose numbers are missing (a block not in this export, a model not fitted) is left
    out, never narrated as zero or "nan"."""
    return [s for s in (sentence(ctx) for sentence in SENTENCES) if s is not None]


# --- the context, section by section: each builder returns its part of the context ------


def data_section(ingest_report: dict, records: list[Record]) -> dict:
    """The input of this run and what it does not record (from its ingest report only)."""
    info = export_info(ingest_report)
    missing_features = absent_features(records)
    when = info["extract_date"]
    if when and "inferred" in info["extract_date_source"]:
        when = f"{when}, inferred from its latest appointment"
    source = ("the bundled synthetic cohort" if info["synthetic"] else "the service's export") + (
        f" (extract date {when})" if when else ""
    )
    return {
        "export": info,
        "synthetic": info["synthetic"],
        "source": source,
        "absent_records": records,
        "not_recorded": absent_words(records),
        "not_recorded_all": [
            {"table": r.table, "column": r.column or "(whole table)", "words": r.words}
            for r in records
        ],
        "signs_counted": [w for f, w in SIGN_WORDS.items() if f not in missing_features],
        "signs_absent": [w for f, w in SIGN_WORDS.items() if f in missing_features],
    }


def _finished_rate(finished: pd.DataFrame, col: str, d: DisclosureParams) -> Cell:
    """The share of finished courses where ``col`` holds."""
    v = finished[col].dropna()
    hits = int((v == True).sum()) if v.dtype != bool else int(v.sum())  # noqa: E712
    return rate(hits, len(v), d)


def glance_section(frame: pd.DataFrame, metrics: dict, params: Params) -> dict:
    """The cohort at a glance: counts of episodes and appointments, NHS rates."""
    d = params.disclosure
    finished = frame[frame["finished_course"].astype(bool)]
    started = frame[frame["ended"] & (frame["sessions_attended_total"] >= 1)]
    rows = [
        ("Episodes of care (referrals offered treatment)", count(len(frame), d).text()),
        ("Appointments scheduled", count(metrics.get("n_sessions", np.nan), d).text()),
        ("Finished a course of treatment (2+ sessions)", count(len(finished), d).text()),
        (
            "Still in treatment six weeks after the first appointment",
            count(int(frame["in_treatment_at_landmark"].sum()), d).text(),
        ),
        (
            "Dropped out (of ended episodes with a session)",
            pct(rate(int(started["dropout"].sum()), len(started), d)),
        ),
    ]
    landmark = frame[frame["in_treatment_at_landmark"].astype(bool)]
    below = landmark["primary_case_start"].astype("boolean").eq(False).fillna(False)
    rows.append(
        (
            f"Started below the {params.outcomes.primary_instrument} clinical cut-off "
            "(no poor outcome counted; technical report)",
            count(int(below.sum()), d).text(),
        )
    )
    for label, col in (
        ("Reliable improvement (finished courses)", "nhs_reliable_improvement"),
        ("Reliable recovery (finished courses at caseness)", "nhs_reliable_recovery"),
        ("Reliable deterioration (finished courses)", "nhs_reliable_deterioration"),
    ):
        rows.append((label, pct(_finished_rate(finished, col, d))))
    return {"glance": rows}


def poor_outcome_section(
    frame: pd.DataFrame, po: pd.DataFrame, params: Params, missing_features: set[str]
) -> dict:
    """Poor outcome by flags group, and the adjusted odds ratios of the early signs."""
    t = params.disclosure.threshold
    pop = frame[frame["poor_outcome"].notna()]
    by_group = {r["label"]: r for r in rates_by(pop, pop["flags_group"], "poor_outcome", params)}
    poor = catalog.POOR_OUTCOME
    first = "flag_missed_first_appointment"
    flag_rows = []
    for flag, label in FLAG_LABELS.items():
        r = _row(po, catalog.model_id(poor, flag, True), flag, t)
        if r is not None and flag not in missing_features and _estimate(r):
            flag_rows.append({"label": label, **r[["estimate", "ci_low", "ci_high"]].to_dict()})
    return {
        "poor_by_group": by_group,
        "poor_by_group_rows": [
            {**by_group[k], "label": GROUP_LABELS.get(k, k)}
            for k in ("0", "1", "2+")
            if k in by_group
        ],
        "or_flags_2plus": _row(
            po, catalog.model_id(poor, "flags group", True), "flags_group_2+", t
        ),
        "or_missed_first": _row(po, catalog.model_id(poor, first, True), first, t),
        "flag_rows": flag_rows,
    }


LEVER_TERMS = {  # lever → (model term, what one SD more of it means in words)
    "Open communication": ("alliance_mean", "a higher alliance rating"),
    "Clear goals": ("goal_owned_share", "more goals of their own"),
    "Small wins": ("homework_completion_rate", "more homework done"),
    "Realistic obstacles": ("barrier_share", "more sessions with an obstacle raised"),
}


def lever_text(
    lever: str, side: pd.DataFrame, records: list[Record], threshold: int
) -> dict | None:
    """The finding about one lever from the side-by-side table of adjusted odds ratios;
    a lever this export does not record is said to be absent; None when there is no
    finding (too few analysed, no finite estimate)."""
    term, words = LEVER_TERMS[lever]
    lacking = [r.words for r in records if term in r.features]
    if lacking:
        return {
            "lever": lever,
            "text": f"Not in this export: it does not record {join_words(lacking)}, "
            "so there is no finding about this lever.",
            "absent": True,
        }
    rows = side[side["term"] == term] if len(side) else side
    if rows is None or rows.empty or rows.iloc[0]["n_analysed_adjusted"] < threshold:
        return None
    r = rows.iloc[0]
    if not _finite(r["estimate_adjusted"], r["ci_low_adjusted"], r["ci_high_adjusted"]):
        return None
    direction = _by_interval(
        r["ci_low_adjusted"],
        r["ci_high_adjusted"],
        1,
        "higher odds",
        "lower odds",
        "no clear difference in the odds",
    )
    return {
        "lever": lever,
        "text": f"Clients with {words} (one standard deviation more) had {direction} "
        f"of a poor outcome: odds ratio {r['estimate_adjusted']:.2f} (95% CI "
        f"{r['ci_low_adjusted']:.2f} to {r['ci_high_adjusted']:.2f}).",
        "absent": False,
    }


def levers_section(
    frame: pd.DataFrame, tables: dict[str, pd.DataFrame], params: Params, records: list[Record]
) -> dict:
    """Poor outcome by thirds of each lever, and the adjusted finding about each lever."""
    side = tables.get("poor_outcome_side_by_side", pd.DataFrame())
    texts = [lever_text(lever, side, records, params.disclosure.threshold) for lever in LEVER_TERMS]
    return {
        "lever_rates": lever_rates(frame, params, absent_features(records)),
        "levers": [text for text in texts if text is not None],
        "levers_absent": [LEVER_WORDS[f] for f in LEVERS if any(f in r.features for r in records)],
    }


def at_risk_table(at_risk: pd.DataFrame | None, d: DisclosureParams) -> dict | None:
    """Numbers at risk by group and week, as rounded counts."""
    if at_risk is None:
        return None
    wide = at_risk.pivot(index="group", columns="week", values="n_at_risk").fillna(0)
    return {
        "weeks": list(wide.columns),
        "rows": [
            (GROUP_LABELS.get(str(g), str(g)), [count(v, d).text() for v in wide.loc[g]])
            for g in wide.index
        ],
    }


def dropout_section(tables: dict[str, pd.DataFrame], params: Params) -> dict:
    """Dropout curves, the incidence at 12 weeks and the numbers at risk."""
    ci = tables.get("dropout_cumulative_incidence")
    curves = incidence_for_plot(ci, params) if ci is not None else None
    return {
        "incidence_curves": curves,
        "incidence_12w": incidence_at(curves, 12) if curves is not None else {},
        "at_risk": at_risk_table(tables.get("dropout_at_risk"), params.disclosure),
    }


def _values(cells: list[Cell]) -> list[float]:
    """The values of rate cells (NaN where not shown)."""
    return [float("nan") if c.value is None else c.value for c in cells]


def prediction_section(tables: dict[str, pd.DataFrame], metrics: dict, params: Params) -> dict:
    """Prediction metrics, the calibration bins that may be shown and, when those bins
    support it, the "of 100 clients" wording."""
    d = params.disclosure
    out: dict = {
        "prediction": {k: metrics[k] for k in metrics if k.startswith(("auc", "brier", "calib"))},
        "calibration": None,
        "of_100": None,  # set only when the calibration bins support it
    }
    cal = tables.get("prediction_calibration")
    if cal is not None:
        cells = [rate(e, n, d) for e, n in zip(cal["events"], cal["n"], strict=True)]
        cal = cal.assign(observed=_values(cells))[[c.shown for c in cells]]
        out["calibration"] = cal
        top = cal[cal["model"] == "engagement (logistic)"].sort_values("bin")
        if len(top) >= 4:
            out["of_100"] = {
                "high": round(100 * float(top.tail(2)["observed"].mean())),
                "low": round(100 * float(top.head(2)["observed"].mean())),
            }
    return out


def missing_section(tables: dict[str, pd.DataFrame], params: Params) -> dict:
    """Missing final scores: their share, the sensitivity analyses and the tipping point."""
    sens = tables.get("missing_data_sensitivity")
    miss = tables.get("missing_by_group")
    if sens is None or miss is None:
        return {"missing": None}
    allrow = miss[miss["group"] == "all"].iloc[0]
    mi = sens[(sens["analysis"] == "multiple imputation") & (sens["delta"] == 0)]
    share = rate(int(allrow["missing_final_score"]), int(allrow["episodes"]), params.disclosure)
    return {
        "missing": {
            "share_missing": share,
            "cc": sens[sens["analysis"] == "complete cases"].iloc[0],
            "mi": mi.iloc[0],
            "locf": sens[sens["analysis"] == "last observation carried forward"].iloc[0],
            "by_group": missing_rows(miss, params),
            "tipping": tables.get("missing_data_tipping_point"),
        }
    }


def dose_section(tables: dict[str, pd.DataFrame], params: Params) -> dict:
    """Dose-response: observed bars (those on too few episodes withheld) and the curve;
    nothing when the table is absent."""
    obs = tables.get("dose_response_observed")
    if obs is None:
        return {}
    d = params.disclosure
    cells = [rate(k, n, d) for k, n in zip(obs["improved"], obs["episodes"], strict=True)]
    obs = obs.assign(share_improved=_values(cells))[[c.shown for c in cells]]
    return {"dose_observed": obs, "dose_curve": tables.get("dose_response_curve")}


def ingest_section(ingest_report: dict, params: Params) -> dict:
    """Records read and set aside by ingest."""
    d = params.disclosure
    return {
        "quarantine": quarantine_table(ingest_report, params),
        "quarantine_total": count(ingest_report["totals"]["rows_quarantined"], d).text(),
        "rows_read": count(ingest_report["totals"]["rows_read"], d).text(),
    }


def shown_section(ctx: dict) -> dict:
    """Whether the AUC and the missing-data comparison have the numbers to be shown."""
    p = ctx["prediction"]
    m = ctx["missing"]
    return {
        "auc_shown": _finite(p.get("auc_baseline"), p.get("auc_engagement")),
        "missing_shown": m is not None
        and _finite(
            m["mi"]["estimate"], m["mi"]["ci_low"], m["mi"]["ci_high"], m["cc"]["estimate"]
        ),
    }


def build_context(
    frame: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    metrics: dict,
    ingest_report: dict,
    params: Params,
) -> dict:
    """Everything both reports show, disclosure-controlled, section by section."""
    d = params.disclosure
    po = tables.get("poor_outcome", pd.DataFrame(columns=["model", "term"]))
    records = absent_records(ingest_report)
    ctx: dict = {"threshold": d.threshold, "rounding_base": d.rounding_base}
    ctx["instrument_name"] = params.outcomes.primary_instrument
    ctx |= primary_section(tables, params)
    ctx |= data_section(ingest_report, records)
    ctx |= glance_section(frame, metrics, params)
    ctx |= poor_outcome_section(frame, po, params, absent_features(records))
    ctx |= levers_section(frame, tables, params, records)
    ctx |= dropout_section(tables, params)
    ctx |= prediction_section(tables, metrics, params)
    ctx |= missing_section(tables, params)
    ctx |= dose_section(tables, params)
    ctx |= ingest_section(ingest_report, params)
    ctx |= shown_section(ctx)
    ctx["summary"] = summary_sentences(ctx)
    return ctx


# --- figures -----------------------------------------------------------------------------


def _levers_figure(ctx: dict) -> figures.Figure | None:
    lr = ctx["lever_rates"].dropna(subset=["rate"]) if len(ctx["lever_rates"]) else None
    if lr is None or not len(lr):
        return None
    absent = ctx.get("levers_absent") or []
    shown = set(lr["panel"])
    words = [LEVER_WORDS[f] for f, (panel, _) in LEVERS.items() if panel in shown]
    return figures.rate_bars(
        lr,
        "Finished without reliable improvement, by early engagement (thirds)",
        "Poor outcome (%)",
        "Bar charts: the share of clients who finished without reliable improvement, for "
        f"the lowest, middle and highest third of {join_words(words)} in the first six "
        "weeks"
        + (f" ({join_words(absent)}: not in this export)" if absent else "")
        + ". "
        + "; ".join(
            f"{p} {lab}: {r:.0%}"
            for p, lab, r in zip(lr["panel"], lr["label"], lr["rate"], strict=True)
        ),
    )


def _flags_figure(ctx: dict) -> figures.Figure | None:
    if not ctx["flag_rows"]:
        return None
    rows = pd.DataFrame(ctx["flag_rows"])
    signs_absent = ctx.get("signs_absent") or []
    return figures.forest(
        rows,
        "Early signs of disengagement and poor outcome (adjusted)",
        "Odds ratio of finishing without reliable improvement (log scale)",
        "Odds ratios with 95% intervals: "
        + "; ".join(f"{r['label']} {r['estimate']:.1f}" for _, r in rows.iterrows())
        + (
            f". Not in this export, so not shown: {'; '.join(signs_absent)}" if signs_absent else ""
        ),
    )


def _dropout_figure(ctx: dict) -> figures.Figure | None:
    curves = ctx["incidence_curves"]
    if curves is None or not len(curves):
        return None
    inc = {g: v for g, v in ctx["incidence_12w"].items() if _finite(v)}
    return figures.incidence_curves(
        curves,
        "Dropout after the first six weeks, by early signs of disengagement",
        "Curves of the cumulative percentage who dropped out, by number of early signs "
        "(0, 1, 2 or more), with 95% bands."
        + (
            " At 12 weeks: " + ", ".join(f"{g} signs {v:.0%}" for g, v in inc.items())
            if inc
            else ""
        ),
    )


def _calibration_figure(ctx: dict) -> figures.Figure | None:
    cal = ctx.get("calibration")
    if cal is None or not len(cal):
        return None
    return figures.calibration(
        cal[cal["model"].str.contains("logistic")],
        "Observed against predicted risk of poor outcome in tenths of predicted risk, for "
        "the model with and without early engagement; points near the diagonal are well "
        "calibrated.",
    )


def _dose_figure(ctx: dict) -> figures.Figure | None:
    obs = ctx.get("dose_observed")
    if obs is None or not len(obs):
        return None
    return figures.dose_response(
        obs,
        ctx["dose_curve"],
        "Bars: share reliably improved by number of sessions attended; line: fitted curve. "
        f"Highest observed share {obs['share_improved'].max():.0%} at "
        f"{int(obs.loc[obs['share_improved'].idxmax(), 'sessions'])} sessions.",
    )


FIGURES: dict[str, Callable[[dict], figures.Figure | None]] = {
    "levers": _levers_figure,
    "flags": _flags_figure,
    "dropout": _dropout_figure,
    "calibration": _calibration_figure,
    "dose": _dose_figure,
}


def make_figures(ctx: dict) -> dict[str, figures.Figure]:
    """All figures of the reports from the (already disclosure-controlled) context; a
    figure with nothing to draw is left out."""
    drawn = {name: draw(ctx) for name, draw in FIGURES.items()}
    return {name: fig for name, fig in drawn.items() if fig is not None}


def plot_data(ctx: dict) -> dict[str, pd.DataFrame]:
    """Disclosure-controlled plot data for DVC plots (``dvc plots diff``)."""
    out = {}
    if len(ctx["lever_rates"]):
        out["poor_outcome_by_lever"] = ctx["lever_rates"][
            ["panel", "label", "rate", "ci_low", "ci_high"]
        ]
    if ctx["incidence_curves"] is not None:
        out["dropout_incidence"] = ctx["incidence_curves"]
    if ctx.get("calibration") is not None:
        out["calibration"] = ctx["calibration"][["model", "bin", "mean_predicted", "observed"]]
    if ctx.get("dose_observed") is not None:
        out["dose_response"] = ctx["dose_observed"][["sessions", "share_improved"]]
    return out
