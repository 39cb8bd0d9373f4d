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
from scipy.stats import chi2
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
from pipeline.instruments import get_instrument
from pipeline.models.declared import primary_row
from pipeline.report import figures, technical, wording

FLAG_LABELS = {
    "flag_missed_first_appointment": "Missed the first appointment",
    "flag_two_plus_no_shows": "Two or more no-shows",
    "flag_alliance_below_cutoff": "Low alliance rating",
    "flag_no_client_goal": "No goal of their own",
    "flag_homework_under_half": "Under half of homework done",
}
GROUP_LABELS = {"0": "no early signs", "1": "one early sign", "2+": "two or more early signs"}
SHORT_GROUPS = {
    "no early signs": "none",
    "one early sign": "one",
    "two or more early signs": "two or more",
}
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


def tie_bins(values: pd.Series, k: int = 3) -> pd.Series:
    """Bins of about equal size that never split a value: a value held by at least 1/k of
    the rows is a bin of its own (59% of clients attending everything are one group, not
    cut by row order), and the runs of values between such values are cut into quantile
    bins on their distinct values. Returns the bin number (0 = lowest) per row, NaN where
    the value is missing."""
    values = values.round(9)  # 36.175 and 36.175000000000004 are one value
    counts = values.dropna().value_counts().sort_index()
    n = int(counts.sum())

    def split(run: list) -> list[list]:
        """Cut a run of distinct values into quantile bins, never inside a value."""
        size = int(counts[run].sum())
        m = max(1, min(len(run), round(k * size / n)))
        out: list[list] = [[]]
        done = 0
        for value in run:
            target = size * len(out) / m
            c = int(counts[value])
            if len(out) < m and out[-1] and abs(done + c - target) > abs(done - target):
                out.append([])  # closer to the target without this value: cut before it
            out[-1].append(value)
            done += c
            if len(out) < m and done >= target:
                out.append([])
        return [b for b in out if b]

    bins: list[list] = []
    run: list = []
    for value, c in counts.items():
        if c >= n / k:  # a value this common is a bin of its own
            bins += split(run) if run else []
            bins.append([value])
            run = []
        else:
            run.append(value)
    bins += split(run) if run else []
    number = {value: i for i, group in enumerate(bins) for value in group}
    return values.map(number)


def _share_range(low: float, high: float) -> str:
    a, b = round(100 * low), round(100 * high)
    return f"{a}%" if a == b else f"{a}–{b}%"


def _points_range(low: float, high: float) -> str:
    return f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f}–{high:.1f}"


LEVERS = {  # feature → (panel title, how a range of its values reads)
    "attendance_rate": ("Attendance", _share_range),
    "alliance_mean": ("Alliance (SRS points)", _points_range),
    "goal_owned_share": ("Goals of their own", _share_range),
    "homework_completion_rate": ("Homework done", _share_range),
}


def lever_rates(
    frame: pd.DataFrame, params: Params, skip: set[str] | frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Share with a poor outcome by low / middle / high level of each lever, in bins that
    keep equal values together (:func:`tie_bins`), labelled with the range of values each
    holds: aggregate rates with Wilson 95% intervals and the number of clients, withheld
    where they rest on too few people. Levers in ``skip`` (not in this export) are left
    out."""
    pop = frame[frame["poor_outcome"].notna()]
    rows = []
    for feature, (panel, label) in LEVERS.items():
        if (
            feature in skip
            or feature not in pop
            or pop[feature].notna().sum() < 3 * params.disclosure.threshold
        ):
            continue
        number = tie_bins(pop[feature], 3)
        names = {
            int(b): label(float(g.min()), float(g.max())) for b, g in pop[feature].groupby(number)
        }
        for b in sorted(names):
            g = pop[number == b]
            y = g["poor_outcome"].dropna()
            r = rate_with_ci(int(y.sum()), len(y), params)
            rows.append(
                {
                    "panel": panel,
                    "label": names[b],
                    "n": count(len(y), params.disclosure).text(),
                    "rate": r["cell"].value,
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                }
            )
    return pd.DataFrame(rows, columns=["panel", "label", "n", "rate", "ci_low", "ci_high"])


def incidence_for_plot(ci: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Cumulative incidence by group as shared (:func:`pipeline.disclosure.safe_curve`): at
    fixed weeks only, each point at a precision its number at risk supports, and stopping
    where fewer than the threshold remain at risk."""
    curves = safe_curve(ci, "incidence_dropout", params.disclosure)
    curves["group"] = curves["group"].astype(str)
    return curves.rename(columns={"incidence_dropout": "incidence"}).drop(columns="n_at_risk")


def incidence_at(curves: pd.DataFrame, week: float) -> dict[str, dict]:
    """Each group's shared cumulative incidence (with its interval) at ``week``: the last
    shared point at or before it, for groups whose curve reaches it."""
    out = {}
    for group, g in curves.groupby("group"):
        g = g[g["week"] <= week]
        if len(g) and curves[curves["group"] == group]["week"].max() >= week:
            last = g.iloc[-1]
            out[str(group)] = {k: float(last[k]) for k in ("incidence", "ci_low", "ci_high")}
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


def quarantine_by_table(ingest_report: dict, params: Params) -> list[dict]:
    """Records set aside per table (the rules are in the technical report), with the same
    secondary suppression as the table by rule."""
    totals = {
        table: sum(t.get("quarantined_by_rule", {}).values())
        for table, t in ingest_report["tables"].items()
    }
    totals = {t: n for t, n in totals.items() if n}
    if not totals:
        return []
    safe = suppress_table(pd.DataFrame({"rows": totals}), params.disclosure)
    return [{"table": t, "rows": safe.loc[t, "rows"]} for t in totals]


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


def _ci_pct(r: dict) -> str:
    """``46% (43–49%)`` from a rate with its Wilson interval."""
    text = pct(r["cell"])
    if r.get("ci_low") is None:
        return text
    return f"{text} ({100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f}%)"


def _shown(r: dict | None) -> bool:
    return r is not None and r["cell"].shown and r.get("ci_low") is not None


SIGN_WHO = {  # early sign → the clients who showed it, in words
    "flag_missed_first_appointment": "who missed their first appointment",
    "flag_two_plus_no_shows": "with two or more no-shows",
    "flag_alliance_below_cutoff": "with a low alliance rating",
    "flag_no_client_goal": "with no goal of their own",
    "flag_homework_under_half": "who did under half of agreed homework",
}
SIGN_ACTIONS = {  # early sign → where services have acted on it (never a claim of effect)
    "flag_missed_first_appointment": "appointment reminders, and a call to clients who miss "
    "their first appointment",
    "flag_two_plus_no_shows": "a review call after a second missed appointment",
    "flag_alliance_below_cutoff": "talking the session rating through with the client, as "
    "in feedback-informed care (PCOMS)",
    "flag_no_client_goal": "agreeing at least one goal in the client's own words early on",
    "flag_homework_under_half": "checking whether between-session tasks fit the client's week",
}


def _finding_primary(ctx: dict) -> dict | None:
    """The declared primary analysis, in the instrument's points and with the index's SD
    said in words."""
    p = ctx.get("primary")
    if not (p and _finite(p["estimate"], p["ci_low"], p["ci_high"])):
        return None
    name = ctx["instrument_name"]
    unit = ctx.get("index_unit")
    who = exposure_words(p["exposure"], p["term"])
    if p["exposure"] == "index" and unit:
        who = (
            "a disengagement index one standard deviation higher (the least engaged "
            f"{unit} of clients are at least that far above the average)"
        )
    interval = f"95% CI {p['ci_low']:.1f} to {p['ci_high']:.1f}"
    if p["outcome"] == "final_score":
        direction = _by_interval(p["ci_low"], p["ci_high"], 0, "higher", "lower", "")
        size = f"about {abs(p['estimate']):.1f} points {direction} ({interval})"
        if not direction:
            size = f"not clearly higher or lower ({p['estimate']:+.1f} points, {interval})"
        change = ctx.get("reliable_change")
        scale = (
            f" For scale: a reliable change on the {name} is {change:g} points." if change else ""
        )
        text = (
            f"Main question, set before the analysis: clients with {who} ended treatment "
            f"with a final {name} score {size}, allowing for their starting score and case "
            f"mix ({p['n']} clients).{scale}"
        )
    else:
        what = OUTCOME_WORDS[p["outcome"]].format(instrument=name)
        text = (
            f"Main question, set before the analysis: clients with {who} had {what} about "
            f"{p['estimate']:.1f} times as high ({interval}), allowing for their starting "
            f"score and case mix ({p['n']} clients)."
        )
    return {"text": text, "action": None}


def _finding_poor_by_group(ctx: dict) -> dict | None:
    g = ctx["poor_by_group"]
    if not (_shown(g.get("2+")) and _shown(g.get("0"))):
        return None
    w = ctx["window"]
    return {
        "text": f"{_ci_pct(g['2+'])} of clients with two or more early signs of "
        f"disengagement in {w.first} finished without reliable improvement, against "
        f"{_ci_pct(g['0'])} of clients with none ({ctx['population_poor']}).",
        "action": "the early signs are all recorded by the end of "
        f"{w.first}, while there is still time to act on them.",
    }


def strongest_sign(ctx: dict) -> str:
    """The early sign to lead with: the one with the largest adjusted odds ratio whose
    interval is above 1 and whose shares can be shown; missing the first appointment when
    none is clearly associated (it is the sign services most often act on)."""
    rates = ctx.get("sign_rates") or {}
    clear = [
        r for r in ctx.get("flag_rows") or []
        if r["ci_low"] > 1 and all(_shown(rates.get(r["flag"], {}).get(k)) for k in ("yes", "no"))
    ]  # fmt: skip
    if clear:
        return str(max(clear, key=lambda r: r["estimate"])["flag"])
    return "flag_missed_first_appointment"


def _finding_sign(ctx: dict) -> dict | None:
    flag = strongest_sign(ctx)
    m = (ctx.get("sign_rates") or {}).get(flag) or {}
    if not (_shown(m.get("yes")) and _shown(m.get("no"))):
        return None
    r = next((x for x in ctx.get("flag_rows") or [] if x["flag"] == flag), None)
    adjusted = ""
    if r is not None and _finite(r["estimate"], r["ci_low"], r["ci_high"]):
        how = _by_interval(r["ci_low"], r["ci_high"], 1, "higher", "lower", "not clearly different")
        adjusted = (
            f" Allowing for starting severity and case mix, their odds were {how} (odds "
            f"ratio {r['estimate']:.1f}, 95% CI {r['ci_low']:.1f} to {r['ci_high']:.1f})."
        )
    clear = m["yes"]["ci_low"] > m["no"]["ci_high"] or (r is not None and r["ci_low"] > 1)
    lead = (
        "The early sign most strongly associated with a poor outcome here: "
        if r is not None and r["ci_low"] > 1
        else ""
    )
    body = (
        f"of clients {SIGN_WHO[flag]}, {_ci_pct(m['yes'])} finished without reliable "
        f"improvement, against {_ci_pct(m['no'])} of the others "
        f"({ctx['population_poor']}).{adjusted}"
    )
    return {
        "text": lead + body if lead else body[0].upper() + body[1:],
        "action": SIGN_ACTIONS[flag] + ", where services have acted." if clear else None,
    }


def _finding_dropout(ctx: dict) -> dict | None:
    inc = ctx["incidence_horizon"]
    if not ("2+" in inc and "0" in inc):
        return None
    a, b = inc["2+"], inc["0"]
    if not _finite(a["incidence"], b["incidence"], a["ci_low"], b["ci_high"]):
        return None

    def text(r: dict) -> str:
        return f"{r['incidence']:.0%} ({100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f}%)"

    apart = a["ci_low"] > b["ci_high"] or a["ci_high"] < b["ci_low"]
    verdict = "" if apart else " — not clearly different, as the intervals overlap"
    return {
        "text": f"By {ctx['window'].after(ctx['horizon_weeks'])}, {text(a)} of clients with "
        f"two or more early signs had dropped out, against {text(b)} of those with none"
        f"{verdict} ({ctx['population_dropout']}).",
        "action": "a review call when a client shows two or more early signs, such as a "
        "second missed appointment, where services have acted."
        if a["ci_low"] > b["ci_high"]  # only where the data show more dropout
        else None,
    }


def _finding_prediction(ctx: dict) -> dict | None:
    o = ctx.get("of_100")
    if not o:
        return None
    part = wording.part(o["groups"])
    return {
        "text": f"Of 100 clients whom the model placed in the highest {part} of risk "
        f"{ctx['window'].at}, about {o['high']['per_100']} ({o['high']['ci_low']}–"
        f"{o['high']['ci_high']}) went on to finish without reliable improvement; of 100 in "
        f"the lowest {part}, about {o['low']['per_100']} ({o['low']['ci_low']}–"
        f"{o['low']['ci_high']}) ({ctx['population_poor']}; risks predicted by models that "
        "had not seen the client).",
        "action": "a list of clients now in treatment ranked by this risk, with the early "
        "signs each shows, kept by the service for its own use (never in a shared report).",
    }


FINDINGS: tuple[Callable[[dict], dict | None], ...] = (  # in the order the reports list them
    _finding_primary,
    _finding_poor_by_group,
    _finding_sign,
    _finding_dropout,
    _finding_prediction,
)


def key_findings(ctx: dict) -> list[dict]:
    """The clinician page's findings (at most five): a plain sentence with its interval,
    and where a service could look; each built from the numbers it states, and left out
    when they are missing (a block not in this export, a model not fitted), never narrated
    as zero or "nan"."""
    return [f for f in (finding(ctx) for finding in FINDINGS) if f is not None]


def summary_sentences(ctx: dict) -> list[str]:
    """The key findings as sentences."""
    return [f["text"] for f in key_findings(ctx)]


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


def population_section(frame: pd.DataFrame, params: Params) -> dict:
    """Who each statement counts, named on the page with its size: every episode; those
    still in treatment at the landmark (dropout); those of them at caseness with a later
    score (poor outcome, final score); finished courses (the NHS rates). Also the words
    that put per-SD estimates in real units."""
    d = params.disclosure
    window = wording.Window(params.features.window_days)
    name = params.outcomes.primary_instrument
    landmark = frame[frame["in_treatment_at_landmark"].astype(bool)]
    poor = frame[frame["poor_outcome"].notna()]
    finished = frame[frame["finished_course"].astype(bool)]
    caseness = "at or above the clinical cut-off at the start, " * (
        params.outcomes.population == "caseness"
    )
    groups = [
        ("all", "Episodes of care (referrals offered treatment)", len(frame)),
        ("landmark", f"Dropout group: still in treatment {window.at}", len(landmark)),
        (
            "poor",
            f"Outcome group: of those, {caseness}with a later {name} score",
            len(poor),
        ),
        ("finished", "Finished a course (2+ sessions; NHS rates)", len(finished)),
    ]
    index = poor["disengagement_index"].dropna() if "disengagement_index" in poor else None
    unit = None
    if index is not None and len(index) > 1 and index.std() > 0:
        unit = f"{(index > index.mean() + index.std()).mean():.0%}"
    return {
        "window": window,
        "populations": [(label, count(n, d).text()) for _, label, n in groups],
        # named once in full ("who is counted"), then by the group's name and size
        "population_poor": f"outcome group, {count(len(poor), d).text()} clients",
        "population_dropout": f"dropout group, {count(len(landmark), d).text()} clients",
        "population_words": {
            "outcome": f"clients {caseness}still in treatment {window.at} with a later "
            f"{name} score",
            "dropout": f"all clients still in treatment {window.at}",
        },
        "caseness_words": caseness,
        "index_unit": unit,
        "reliable_change": float(get_instrument(name).reliable_change),
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
    rows = [  # the populations themselves are listed in "who is counted"
        ("Appointments scheduled", count(metrics.get("n_sessions", np.nan), d).text()),
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
        ("Reliable improvement (finished courses; PHQ-9 and GAD-7)", "nhs_reliable_improvement"),
        (
            "Reliable recovery (finished courses at caseness; PHQ-9 and GAD-7)",
            "nhs_reliable_recovery",
        ),
        (
            "Reliable deterioration (finished courses; PHQ-9 and GAD-7)",
            "nhs_reliable_deterioration",
        ),
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
    flag_rows = []
    for flag, label in FLAG_LABELS.items():
        r = _row(po, catalog.model_id(poor, flag, True), flag, t)
        if r is not None and flag not in missing_features and _estimate(r):
            flag_rows.append(
                {"flag": flag, "label": label, **r[["estimate", "ci_low", "ci_high"]].to_dict()}
            )
    sign_rates = {}
    for flag in FLAG_LABELS:
        if flag in pop and flag not in missing_features:
            answer = pop[flag].map({1.0: "yes", 0.0: "no"})
            sign_rates[flag] = {
                r["label"]: r for r in rates_by(pop, answer, "poor_outcome", params)
            }
    return {
        "sign_rates": sign_rates,
        "poor_by_group": by_group,
        "poor_by_group_rows": [
            {**by_group[k], "label": GROUP_LABELS.get(k, k)}
            for k in ("0", "1", "2+")
            if k in by_group
        ],
        "flag_rows": flag_rows,
    }


LEVER_TERMS = {  # lever → (model term, what one SD more of it means in words)
    "Open communication": ("alliance_mean", "a higher alliance rating"),
    "Clear goals": ("goal_owned_share", "more goals of their own"),
    "Small wins": ("homework_completion_rate", "more homework done"),
    "Realistic obstacles": ("barrier_share", "more sessions with an obstacle raised"),
}


SD_UNITS = {  # per-SD term → one SD in the feature's own units, in words
    "alliance_mean": lambda sd: f"{sd:.1f} points on the Session Rating Scale",
    "goal_owned_share": lambda sd: f"{100 * sd:.0f} percentage points of goals",
    "homework_completion_rate": lambda sd: f"{100 * sd:.0f} percentage points of homework",
    "barrier_share": lambda sd: f"{100 * sd:.0f} percentage points of sessions",
    "attendance_rate": lambda sd: f"{100 * sd:.0f} percentage points of appointments",
}


def sd_words(term: str, sd: float | None) -> str:
    """``one standard deviation, about 4.1 points on the Session Rating Scale``."""
    if sd is None or not _finite(sd) or term not in SD_UNITS:
        return "one standard deviation"
    return f"one standard deviation, about {SD_UNITS[term](sd)}"


def lever_text(
    lever: str,
    side: pd.DataFrame,
    records: list[Record],
    d: DisclosureParams,
    sd: float | None = None,
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
    if rows is None or rows.empty or rows.iloc[0]["n_analysed_adjusted"] < d.threshold:
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
    partners = [
        t.replace("_", " ") for t in side.loc[side["block"] == r["block"], "term"] if t != term
    ]
    also = f"; also allowing for {join_words(partners)}" if partners else ""
    n = count(float(r["n_analysed_adjusted"]), d).text()
    return {
        "lever": lever,
        "text": f"Clients with {words} ({sd_words(term, sd)} more) had {direction} "
        f"of a poor outcome: odds ratio {r['estimate_adjusted']:.2f} (95% CI "
        f"{r['ci_low_adjusted']:.2f} to {r['ci_high_adjusted']:.2f}; {n} clients{also}).",
        "absent": False,
    }


def levers_section(
    frame: pd.DataFrame, tables: dict[str, pd.DataFrame], params: Params, records: list[Record]
) -> dict:
    """Poor outcome by low / middle / high level of each lever, and the adjusted finding
    about each lever, per SD said in the lever's own units."""
    side = tables.get("poor_outcome_side_by_side", pd.DataFrame())
    pop = frame[frame["poor_outcome"].notna()]
    texts = [
        lever_text(
            lever,
            side,
            records,
            params.disclosure,
            float(pop[term].std()) if term in pop else None,
        )
        for lever, (term, _) in LEVER_TERMS.items()
    ]
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
    """Dropout curves, the incidence at the report's horizon (``report.dropout_horizon_weeks``
    after the landmark) and the numbers at risk."""
    ci = tables.get("dropout_cumulative_incidence")
    curves = incidence_for_plot(ci, params) if ci is not None else None
    horizon = params.report.dropout_horizon_weeks
    return {
        "incidence_curves": curves,
        "horizon_weeks": horizon,
        "incidence_horizon": incidence_at(curves, horizon) if curves is not None else {},
        "at_risk": at_risk_table(tables.get("dropout_at_risk"), params.disclosure),
    }


def _values(cells: list[Cell]) -> list[float]:
    """The values of rate cells (NaN where not shown)."""
    return [float("nan") if c.value is None else c.value for c in cells]


RISK_MODEL = "engagement (logistic)"  # the model the report's risk groups are read from


def risk_groups(
    predictions: pd.DataFrame | None, frame: pd.DataFrame, groups: int, model: str = RISK_MODEL
) -> pd.DataFrame | None:
    """Clients in ``groups`` equal groups of out-of-fold predicted risk (1 = lowest), with
    the number in each and how many had a poor outcome: exact counts (disclosure control is
    applied where they are shown). Ties in predicted risk are split by row order, as in the
    calibration table; None without predictions."""
    if predictions is None or model not in predictions:
        return None
    d = predictions[["episode_id", model]].merge(
        frame[["episode_id", "poor_outcome"]], on="episode_id", validate="one_to_one"
    )
    d = d.dropna()
    if len(d) < groups:
        return None
    group = pd.qcut(d[model].rank(method="first"), groups, labels=False) + 1
    return (
        d.assign(group=group.to_numpy())
        .groupby("group")
        .agg(n=("poor_outcome", "size"), events=("poor_outcome", "sum"))
        .astype(int)
        .reset_index()
    )


def of_100(groups: pd.DataFrame | None, params: Params) -> dict | None:
    """ "Of 100 in the highest and lowest group of predicted risk, about …", each with its
    Wilson 95% interval; None when either group rests on too few people."""
    if groups is None or len(groups) < 2:
        return None
    out: dict = {"groups": params.report.risk_groups}
    for key, row in (("low", groups.iloc[0]), ("high", groups.iloc[-1])):
        r = rate_with_ci(int(row["events"]), int(row["n"]), params)
        if not r["cell"].shown:
            return None
        out[key] = {
            "per_100": round(100 * float(r["cell"].value)),
            "ci_low": round(100 * r["ci_low"]),
            "ci_high": round(100 * r["ci_high"]),
            "n": count(int(row["n"]), params.disclosure).text(),
        }
    return out


def prediction_section(
    tables: dict[str, pd.DataFrame],
    metrics: dict,
    params: Params,
    groups: pd.DataFrame | None = None,
) -> dict:
    """Prediction metrics, the calibration bins that may be shown and the "of 100 clients"
    wording, read from the equal groups of predicted risk (``risk_groups``)."""
    d = params.disclosure
    out: dict = {
        "prediction": {k: metrics[k] for k in metrics if k.startswith(("auc", "brier", "calib"))},
        "calibration": None,
        "of_100": of_100(groups, params),
    }
    cal = tables.get("prediction_calibration")
    if cal is not None:
        cells = [rate(e, n, d) for e, n in zip(cal["events"], cal["n"], strict=True)]
        cal = cal.assign(observed=_values(cells))[[c.shown for c in cells]]
        out["calibration"] = cal
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


def curve_fit(observed: pd.DataFrame, curve: pd.DataFrame | None) -> dict | None:
    """How well the fitted dose–response curve matches the observed shares: Pearson's χ²
    over the numbers of sessions (exact counts), with k − 2 degrees of freedom for the
    curve's two parameters. None without a curve covering the observed sessions."""
    if curve is None or not len(curve):
        return None
    fitted = observed[["sessions", "episodes", "improved"]].merge(
        curve[["sessions", "share_improved"]].rename(columns={"share_improved": "fit"}),
        on="sessions",
    )
    if len(fitted) < 3:
        return None
    n, k, p = fitted["episodes"], fitted["improved"], fitted["fit"]
    chisq = float((((k - n * p) ** 2) / (n * p * (1 - p))).sum())
    df = len(fitted) - 2
    return {"chisq": chisq, "df": df, "p": float(chi2.sf(chisq, df))}


def dose_section(tables: dict[str, pd.DataFrame], params: Params) -> dict:
    """Dose-response: observed shares with Wilson intervals and their numbers of people
    (those on too few withheld), and the fitted curve, drawn only where it fits (Pearson
    χ² p ≥ 0.05) and only over the sessions observed; nothing when the table is absent."""
    obs = tables.get("dose_response_observed")
    if obs is None:
        return {}
    d = params.disclosure
    rates = [
        rate_with_ci(int(k), int(n), params)
        for k, n in zip(obs["improved"], obs["episodes"], strict=True)
    ]
    shown = [r["cell"].shown for r in rates]
    fit = curve_fit(obs, tables.get("dose_response_curve"))
    curve = tables.get("dose_response_curve")
    out = obs.assign(
        share_improved=[r["cell"].value for r in rates],
        ci_low=[r["ci_low"] for r in rates],
        ci_high=[r["ci_high"] for r in rates],
        n=[count(int(n), d).text() for n in obs["episodes"]],
    )[shown][["sessions", "share_improved", "ci_low", "ci_high", "n"]].reset_index(drop=True)
    if curve is not None and len(out):
        curve = curve[curve["sessions"].between(out["sessions"].min(), out["sessions"].max())]
    return {
        "dose_observed": out,
        "dose_fit": fit,
        "dose_curve": curve if fit is not None and fit["p"] >= 0.05 else None,
    }


def ingest_section(ingest_report: dict, params: Params) -> dict:
    """Records read and set aside by ingest."""
    d = params.disclosure
    return {
        "quarantine": quarantine_table(ingest_report, params),
        "quarantine_tables": quarantine_by_table(ingest_report, params),
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
    predictions: pd.DataFrame | None = None,
) -> dict:
    """Everything both reports show, disclosure-controlled, section by section;
    ``predictions``: the out-of-fold predicted risks (for the groups of predicted risk)."""
    d = params.disclosure
    po = tables.get("poor_outcome", pd.DataFrame(columns=["model", "term"]))
    records = absent_records(ingest_report)
    ctx: dict = {"threshold": d.threshold, "rounding_base": d.rounding_base}
    ctx["instrument_name"] = params.outcomes.primary_instrument
    ctx["calibration_bins"] = params.prediction.calibration_bins
    ctx |= primary_section(tables, params)
    ctx |= data_section(ingest_report, records)
    ctx |= population_section(frame, params)
    ctx |= glance_section(frame, metrics, params)
    ctx |= poor_outcome_section(frame, po, params, absent_features(records))
    ctx |= levers_section(frame, tables, params, records)
    ctx |= dropout_section(tables, params)
    groups = risk_groups(predictions, frame, params.report.risk_groups)
    ctx |= prediction_section(tables, metrics, params, groups)
    ctx |= missing_section(tables, params)
    ctx |= dose_section(tables, params)
    ctx |= ingest_section(ingest_report, params)
    ctx |= shown_section(ctx)
    ctx["flow"] = technical.case_flow(frame, ingest_report, params)
    ctx["findings"] = key_findings(ctx)
    ctx["summary"] = [f["text"] for f in ctx["findings"]]
    return ctx


# --- figures -----------------------------------------------------------------------------


def _signs_figure(ctx: dict) -> figures.Figure | None:
    rows = [
        {"panel": "", "label": SHORT_GROUPS.get(r["label"], r["label"]), "n": r["n"].text(),
         "rate": r["cell"].value,
         "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
        for r in ctx["poor_by_group_rows"]
        if _shown(r)
    ]  # fmt: skip
    if len(rows) < 2:
        return None
    w = ctx["window"]
    return figures.rate_bars(
        pd.DataFrame(rows),
        f"Finished without reliable improvement,\nby early signs in {w.first}",
        "Poor outcome (%)",
        "Bar chart: the share of clients who finished without reliable improvement, by the "
        f"number of early signs of disengagement in {w.first}: "
        + "; ".join(
            f"{r['label']} {_ci_pct(r)}, {r['n'].text()} clients"
            for r in ctx["poor_by_group_rows"]
            if _shown(r)
        )
        + f". Clients counted: {ctx['population_poor']}.",
        width=3.6,
        caption="Bars: the share who finished without reliable improvement, with 95% "
        f"intervals and the number of clients. Clients counted: {ctx['population_poor']}.",
    )


def _levers_figure(ctx: dict) -> figures.Figure | None:
    lr = ctx["lever_rates"].dropna(subset=["rate"]) if len(ctx["lever_rates"]) else None
    if lr is None or not len(lr):
        return None
    absent = ctx.get("levers_absent") or []
    shown = set(lr["panel"])
    words = [LEVER_WORDS[f] for f, (panel, _) in LEVERS.items() if panel in shown]
    return figures.rate_bars(
        lr,
        "Finished without reliable improvement, by early engagement",
        "Poor outcome (%)",
        "Bar charts: the share of clients who finished without reliable improvement, by "
        f"level of {join_words(words)} in {ctx['window'].first} (up to three groups each); "
        "clients with "
        "the same value are never split between groups, so a value most clients share "
        "(such as attending every appointment) is a group of its own"
        + (f" ({join_words(absent)}: not in this export)" if absent else "")
        + ". "
        + "; ".join(
            f"{p} {lab}: {r:.0%} of {n}"
            for p, lab, r, n in zip(lr["panel"], lr["label"], lr["rate"], lr["n"], strict=True)
        ),
        caption="Bars: the share who finished without reliable improvement, with 95% "
        "intervals, by the range of each measure shown under the bar and its number of "
        "clients. Clients with the same value are never split between groups, so a value "
        "most clients share (attending every appointment, for example) is a group of its own."
        + (f" Not in this export: {join_words(absent)}." if absent else ""),
    )


def _flags_figure(ctx: dict) -> figures.Figure | None:
    if not ctx["flag_rows"]:
        return None
    rows = pd.DataFrame(ctx["flag_rows"])
    signs_absent = ctx.get("signs_absent") or []
    return figures.forest(
        rows,
        "Early signs of disengagement\nand poor outcome (adjusted)",
        "Odds ratio of finishing without\nreliable improvement (log scale)",
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
    w = ctx["window"]
    inc = {g: v for g, v in ctx["incidence_horizon"].items() if _finite(v["incidence"])}
    return figures.incidence_curves(
        curves,
        f"Dropout after {w.first},\nby early signs of disengagement",
        "Curves of the cumulative percentage who dropped out, by number of early signs "
        "(none, one, two or more), with 95% bands."
        + (
            f" By {w.after(ctx['horizon_weeks'])}: "
            + ", ".join(f"{GROUP_LABELS.get(g, g)} {v['incidence']:.0%}" for g, v in inc.items())
            + "."
            if inc
            else ""
        ),
        f"Weeks after {w.first}",
        GROUP_LABELS,
    )


def _calibration_figure(ctx: dict) -> figures.Figure | None:
    cal = ctx.get("calibration")
    if cal is None or not len(cal):
        return None
    bins = ctx["calibration_bins"]
    return figures.calibration(
        cal[cal["model"].str.contains("logistic")],
        f"Observed against predicted risk of poor outcome in {wording.parts(bins)} of "
        "predicted risk, for the model with and without early engagement; points near the "
        "diagonal are well calibrated.",
    )


def _dose_figure(ctx: dict) -> figures.Figure | None:
    obs = ctx.get("dose_observed")
    if obs is None or not len(obs):
        return None
    fit = ctx.get("dose_fit")
    if fit is None:
        line = "No fitted curve."
    elif ctx.get("dose_curve") is not None:
        line = (
            f"Line: fitted curve (probit on log sessions), which fits the observed shares "
            f"(Pearson χ² {fit['chisq']:.1f} on {fit['df']} df, p = {fit['p']:.2g}; the test "
            "ignores clustering by therapist, so it is lenient about fit)."
        )
    else:
        line = (
            "The fitted curve (probit on log sessions) is not drawn: it does not fit the "
            f"observed shares (Pearson χ² {fit['chisq']:.1f} on {fit['df']} df, "
            f"p = {fit['p']:.2g})."
        )
    top = obs.loc[obs["share_improved"].idxmax()]
    return figures.dose_response(
        obs,
        ctx.get("dose_curve"),
        "Points: share reliably improved (finished courses) by number of sessions attended, "
        "with 95% "
        f"intervals and the number of clients. {line} Highest observed share "
        f"{top['share_improved']:.0%} at {int(top['sessions'])} sessions "
        f"({top['n']} clients).",
    )


FIGURES: dict[str, Callable[[dict], figures.Figure | None]] = {
    "signs": _signs_figure,
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
        out["dose_response"] = ctx["dose_observed"][
            ["sessions", "share_improved", "ci_low", "ci_high"]
        ]
    return out
