"""The outcome table: one row per episode, NHS Talking Therapies definitions.

Definitions (docs/outcomes.md):
- **baseline**: the first score dated from ``baseline_before_days`` before to
  ``baseline_after_days`` after the first attended session; **last**: the last score of the
  episode; both need two different measurements (n ≥ 2) to define change.
- **reliable change**: improvement (oriented so positive = better) of at least the
  instrument's criterion (+1), a worsening of at least it (−1), else 0.
- **caseness**, **recovery** (case at start, not at end), **reliable recovery** (recovery and
  reliable improvement); the paired NHS definitions combine PHQ-9 with GAD-7: caseness on
  either, recovery = below both cut-offs at the end, reliable improvement on either without
  reliable deterioration on either.
- **finished a course of treatment**: ≥ 2 attended sessions in the episode.
- **dropout**: end_reason ``dropped_out``; when end_reason is missing, inferred from the
  appointment pattern (the episode ended after a no-show, or after two missed appointments
  in a row); ``dropout_source`` says which.
- **final score** (the continuous outcome): the primary instrument's last score, for the
  episodes the landmark poor outcome is defined for (``outcome_population``, in treatment at
  the landmark, last score after it); the models adjust it for the baseline (ANCOVA).
- **time to dropout**: days from the end of the landmark window to the end of the episode
  for dropouts; other endings are censored at their end date, open episodes at the extract.
- ``sessions_attended_total`` and ``weeks_in_treatment`` are descriptive only: they are
  consequences of the outcome as much as causes, and are never predictors.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pipeline.config import OutcomesParams
from pipeline.instruments import active_registry, at_caseness, improvement, reliable_change
from pipeline.keys import positions

PAIRED = ("PHQ-9", "GAD-7")
NHS_COLUMNS = (
    "nhs_case_start",
    "nhs_reliable_improvement",
    "nhs_reliable_deterioration",
    "nhs_recovery",
    "nhs_reliable_recovery",
)


def prefix(instrument: str) -> str:
    """Column prefix for an instrument: PHQ-9 → phq9."""
    return re.sub(r"[^a-z0-9]", "", instrument.lower())


def first_attended_dates(sessions: pd.DataFrame) -> pd.Series:
    """Each episode's first attended appointment (index: episode): the baseline anchor."""
    attended = sessions["status"] == "attended"
    return (
        sessions.loc[attended, "scheduled_date"].groupby(sessions.loc[attended, "episode_id"]).min()
    )


def score_summary(
    measures: pd.DataFrame, first_att: pd.Series, instrument: str, params: OutcomesParams
) -> pd.DataFrame:
    """Per episode: baseline, last score and number of scores of one instrument (no row for
    an episode without one; no rows at all when the export has none of it). ``first_att``:
    ``first_attended_dates`` of the sessions, computed once for every instrument."""
    m = measures[measures["instrument"] == instrument]
    if m.empty:
        dates = pd.Series(dtype="datetime64[s]")
        return pd.DataFrame(
            {
                "baseline": pd.Series(dtype=float),
                "baseline_date": dates,
                "last": pd.Series(dtype=float),
                "last_date": dates,
                "n": pd.Series(dtype=int),
            },
            index=pd.Index([], name="episode_id"),
        )
    m = m.assign(_order=np.arange(len(m))).sort_values(
        ["episode_id", "measure_date", "_order"], kind="stable"
    )
    anchor = pd.Series(first_att.reindex(m["episode_id"]).to_numpy(), index=m.index)
    lo = anchor - pd.Timedelta(days=params.baseline_before_days)
    hi = anchor + pd.Timedelta(days=params.baseline_after_days)
    in_base = (m["measure_date"] >= lo) & (m["measure_date"] <= hi)
    based = m[in_base.fillna(False)].groupby("episode_id")
    g = m.groupby("episode_id")
    out = pd.DataFrame(
        {
            "baseline": based["score"].first(),
            "baseline_date": based["measure_date"].first(),
            "last": g["score"].last(),
            "last_date": g["measure_date"].last(),
        }
    )
    # n counts the baseline and the scores after it: the last score must be a later one.
    after = m["measure_date"] > m["episode_id"].map(out["baseline_date"])
    out["n"] = (1 + after.groupby(m["episode_id"]).sum()).where(out["baseline"].notna(), 0)
    out.loc[out["last_date"] <= out["baseline_date"], "last"] = np.nan
    return out


def instrument_outcomes(summary: pd.DataFrame, instrument: str) -> pd.DataFrame:
    """Change, reliable change, caseness and recovery for one instrument (index: episode)."""
    base = summary["baseline"]
    last = summary["last"].where((summary["n"] >= 2) & base.notna())
    rc = pd.Series(reliable_change(instrument, base, last), index=summary.index)
    case_start = pd.Series(at_caseness(instrument, base), index=summary.index).where(base.notna())
    case_end = pd.Series(at_caseness(instrument, last), index=summary.index).where(last.notna())
    recovered = case_start.astype("boolean") & ~case_end.astype("boolean")
    return pd.DataFrame(
        {
            "baseline": base,
            "last": last,
            "n": summary["n"],
            "change": improvement(instrument, base, last),
            "reliable_change": rc,
            "case_start": case_start.astype("boolean"),
            "case_end": case_end.astype("boolean"),
            "recovered": recovered.where(case_start.astype("boolean").fillna(False)),
            "reliable_recovery": (recovered & rc.eq(1)).where(
                case_start.astype("boolean").fillna(False) & rc.notna()
            ),
        }
    )


def outcome_population(primary: pd.DataFrame, definition: str, population: str) -> pd.Series:
    """Whether each episode belongs to the population its poor outcome is defined for: a
    baseline on the primary instrument and, for the improvement and recovery definitions
    under ``population == "caseness"`` (and for recovery always), that baseline at caseness.
    Reliable deterioration can happen from any starting score, so it needs a baseline only.
    ``primary`` holds one instrument's ``instrument_outcomes`` columns."""
    has_baseline = primary["baseline"].notna()
    at_case = primary["case_start"].fillna(False).astype(bool)
    if definition == "not_recovered" or (
        definition == "not_reliably_improved" and population == "caseness"
    ):
        return has_baseline & at_case
    return has_baseline


def poor_outcome_rule(primary: pd.DataFrame, definition: str, population: str) -> pd.Series:
    """The binary poor outcome (1 poor, 0 not, missing when undefined) from one instrument's
    ``instrument_outcomes`` columns; ``definition`` is ``outcomes.poor_outcome`` and
    ``population`` ``outcomes.population`` (``outcome_population``): an episode outside the
    population has no poor outcome, however its scores moved (a client who starts at
    PHQ-9 3 cannot improve by 6 points, so is never scored "poor" for it)."""
    rc = primary["reliable_change"]
    eligible = (primary["n"].fillna(0) >= 2) & outcome_population(primary, definition, population)
    if definition == "not_reliably_improved":
        poor = rc.ne(1)
    elif definition == "reliable_deterioration":
        poor = rc.eq(-1)
    else:  # not_recovered, among those at caseness at the start
        poor = ~primary["recovered"].fillna(True).astype(bool)
    return poor.astype(float).where(eligible & rc.notna())


def paired_nhs(phq: pd.DataFrame, gad: pd.DataFrame) -> pd.DataFrame:
    """NHS Talking Therapies paired definitions (PHQ-9 with GAD-7)."""
    both = phq["change"].notna() & gad["change"].notna()
    det = (phq["reliable_change"] == -1) | (gad["reliable_change"] == -1)
    imp = ((phq["reliable_change"] == 1) | (gad["reliable_change"] == 1)) & ~det
    case_start = phq["case_start"].fillna(False) | gad["case_start"].fillna(False)
    case_end = phq["case_end"].fillna(False) | gad["case_end"].fillna(False)
    recovered = case_start & ~case_end
    return pd.DataFrame(
        {
            "nhs_case_start": case_start.where(both),
            "nhs_reliable_improvement": imp.where(both),
            "nhs_reliable_deterioration": det.where(both),
            "nhs_recovery": recovered.where(both & case_start),
            "nhs_reliable_recovery": (recovered & imp).where(both & case_start),
        }
    ).astype("boolean")


def inferred_dropout(sessions: pd.DataFrame, episodes: pd.DataFrame) -> pd.Series:
    """Dropout read from the appointment pattern: the episode has ended and its last
    appointment was a no-show, or its last two were missed (no-show or client
    cancellation). Used only where end_reason is missing."""
    s = sessions[sessions["status"] != "cancelled_by_service"]
    s = s.assign(_order=np.arange(len(s))).sort_values(
        ["episode_id", "scheduled_date", "_order"], kind="stable"
    )
    missed = s["status"].isin(["did_not_attend", "cancelled_by_client"])
    previous = missed.groupby(s["episode_id"]).shift(fill_value=False).astype(bool)
    last = ~s["episode_id"].duplicated(keep="last")
    tail = pd.DataFrame(
        {"dna": s["status"].eq("did_not_attend"), "two": missed & previous}, index=s.index
    )[last.to_numpy()]
    rule = pd.Series((tail["dna"] | tail["two"]).to_numpy(), index=s.loc[last, "episode_id"])
    ep = episodes.set_index("episode_id")
    ended = ep["end_date"].notna() if "end_date" in ep else pd.Series(False, index=ep.index)
    return rule.reindex(ended.index, fill_value=False) & ended


def integer_episode_keys(
    tables: dict[str, pd.DataFrame], window: pd.DataFrame | None = None
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
    """``tables`` (and ``window``) with ``episode_id`` replaced by the episode's position in
    ``tables['episodes']``; rows of an episode not there are dropped (ingest quarantines
    them already). Every later group-by and lookup then hashes integers instead of tens of
    millions of id strings; the caller maps positions back to ids at the end."""
    ids = tables["episodes"]["episode_id"]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        pos = positions(ids, frame["episode_id"])
        known = pos >= 0
        out = frame.assign(episode_id=pos)
        return out if known.all() else out[known]

    keyed_tables = {name: keyed(t) for name, t in tables.items() if name != "episodes"}
    keyed_tables["episodes"] = tables["episodes"].assign(episode_id=np.arange(len(ids)))
    return keyed_tables, (None if window is None else keyed(window))


# The columns the outcome rules read: the row selections and key changes below then copy
# these, not every column of tens of millions of rows (half the stage at national scale).
READ_COLUMNS = {
    "sessions": ("episode_id", "scheduled_date", "status"),
    "measures": ("episode_id", "instrument", "measure_date", "score"),
}


def _columns_read(
    tables: dict[str, pd.DataFrame], names: tuple[str, ...] = ("episodes", "sessions", "measures")
) -> dict[str, pd.DataFrame]:
    """``tables[name]`` for each of ``names``, cut to the columns in ``READ_COLUMNS`` (all
    of them for a table not listed there)."""
    return {
        name: tables[name][list(READ_COLUMNS[name])] if name in READ_COLUMNS else tables[name]
        for name in names
    }


def outcome_table(
    tables: dict[str, pd.DataFrame],
    window: pd.DataFrame,
    params: OutcomesParams,
    extract_date: pd.Timestamp,
) -> pd.DataFrame:
    """One row per episode of ``tables['episodes']``, in its order (never mutates
    ``tables``)."""
    keyed, keyed_window = integer_episode_keys(_columns_read(tables), window)
    assert keyed_window is not None  # a window was given, so it comes back keyed
    out = _outcome_table(keyed, keyed_window, params, extract_date)
    out["episode_id"] = tables["episodes"]["episode_id"].to_numpy()[out["episode_id"].to_numpy()]
    return out


def _outcome_table(
    tables: dict[str, pd.DataFrame],
    window: pd.DataFrame,
    params: OutcomesParams,
    extract_date: pd.Timestamp,
) -> pd.DataFrame:
    """The outcome table on integer episode keys: scores, course, dropout, landmark."""
    episodes, sessions, measures = tables["episodes"], tables["sessions"], tables["measures"]
    out = pd.DataFrame({"episode_id": episodes["episode_id"].to_numpy()}).set_index("episode_id")
    out, summaries = _score_outcomes(out, measures, sessions, params)
    out = _course(out, sessions, episodes)
    w = window.set_index("episode_id").reindex(out.index)
    out = _landmark(out, episodes.set_index("episode_id"), w, extract_date)
    summary = summaries.get(params.primary_instrument)
    if summary is None:
        summary = score_summary(
            measures, first_attended_dates(sessions), params.primary_instrument, params
        )
    last_date = summary["last_date"].reindex(out.index)
    out["primary_last_after_landmark"] = (last_date >= w["window_end"]).where(
        last_date.notna() & w["window_end"].notna()
    )
    primary = out[[c for c in out.columns if c.startswith("primary_")]].rename(
        columns=lambda c: c.removeprefix("primary_")
    )
    out["outcome_population"] = outcome_population(
        primary, params.poor_outcome, params.population
    ).to_numpy()
    out["poor_outcome_episode"] = poor_outcome_rule(primary, params.poor_outcome, params.population)
    # The landmark analysis: in treatment at the landmark, outcome measured after it.
    after = out["primary_last_after_landmark"].fillna(False).astype(bool)
    landmark = out["in_treatment_at_landmark"] & after
    out["poor_outcome"] = out["poor_outcome_episode"].where(landmark)
    # The continuous outcome on the same people: the last score (after the landmark) of an
    # episode with two or more scores in the outcome's population; modelled with its
    # baseline as a covariate (ANCOVA), so no threshold decides who did poorly.
    scored = out["primary_n"].fillna(0).ge(2) & out["outcome_population"] & landmark
    out["final_score"] = out["primary_last"].where(scored)
    return out.reset_index()


def _score_outcomes(
    out: pd.DataFrame, measures: pd.DataFrame, sessions: pd.DataFrame, params: OutcomesParams
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per-instrument outcomes (``<prefix>_*``), the paired NHS outcomes and the primary
    instrument's (``primary_*``); also each instrument's score summary."""
    per_instrument, summaries = {}, {}
    present = set(measures["instrument"].dropna().unique().tolist())  # not row by row
    first_att = first_attended_dates(sessions)
    for instrument in sorted(present & set(active_registry())):  # and params-registered
        summaries[instrument] = score_summary(measures, first_att, instrument, params)
        res = instrument_outcomes(summaries[instrument], instrument).reindex(out.index)
        per_instrument[instrument] = res
        out = out.join(res.add_prefix(f"{prefix(instrument)}_"))
    if all(p in per_instrument for p in PAIRED):
        out = out.join(paired_nhs(*(per_instrument[p] for p in PAIRED)))
    else:  # not available in this dataset: missing, not false
        for col in NHS_COLUMNS:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="boolean")
    primary = per_instrument.get(params.primary_instrument)
    if primary is None:
        primary = instrument_outcomes(
            pd.DataFrame({"baseline": np.nan, "last": np.nan, "n": 0}, index=out.index),
            params.primary_instrument,
        )
    return out.join(primary.add_prefix("primary_")), summaries


def _course(out: pd.DataFrame, sessions: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """Sessions attended, weeks in treatment, a finished course, and dropout (recorded end
    reason, else inferred from the sessions)."""
    attended = sessions[sessions["status"] == "attended"]
    n_att = attended.groupby("episode_id").size().reindex(out.index, fill_value=0)
    span = attended.groupby("episode_id")["scheduled_date"].agg(["min", "max"])
    out["sessions_attended_total"] = n_att
    out["weeks_in_treatment"] = ((span["max"] - span["min"]).dt.days / 7.0).reindex(out.index)
    out["finished_course"] = n_att >= 2
    ep = episodes.set_index("episode_id")
    recorded = ep["end_reason"] if "end_reason" in ep else pd.Series(pd.NA, index=ep.index)
    inferred = inferred_dropout(sessions, episodes).reindex(out.index, fill_value=False)
    has_reason = recorded.notna().reindex(out.index, fill_value=False)
    out["dropout"] = np.where(
        has_reason, recorded.reindex(out.index).eq("dropped_out"), inferred
    ).astype(bool)
    out["dropout_source"] = np.where(has_reason, "recorded", "inferred")
    return out


def _landmark(
    out: pd.DataFrame, ep: pd.DataFrame, w: pd.DataFrame, extract_date: pd.Timestamp
) -> pd.DataFrame:
    """Whether each episode is in treatment at the landmark, and its dropout time and event
    from the landmark (followed to its end, or to the extract date while open)."""
    if "end_date" in ep:
        end = ep["end_date"].reindex(out.index)
    else:  # optional in the contract: every episode counts as open
        end = pd.Series(pd.NaT, index=out.index, dtype="datetime64[s]")
    follow_end = end.fillna(pd.Timestamp(extract_date))
    out["window_complete"] = w["window_complete"].fillna(False).astype(bool)
    out["in_treatment_at_landmark"] = (
        out["window_complete"] & (end.isna() | (end >= w["window_end"]))
    ).to_numpy()
    out["dropout_time_days"] = (follow_end - w["window_end"]).dt.days.where(
        out["in_treatment_at_landmark"]
    )
    out["dropout_event"] = (out["dropout"] & end.notna()).where(out["in_treatment_at_landmark"])
    return out


def dropout_rule_agreement(tables: dict[str, pd.DataFrame]) -> dict:
    """How well the inference rule reproduces recorded end reasons, on ended episodes
    that have one (counts, sensitivity, specificity, Cohen's kappa)."""
    tables, _ = integer_episode_keys(_columns_read(tables, ("episodes", "sessions")))
    ep = tables["episodes"].set_index("episode_id")
    if "end_reason" not in ep or "end_date" not in ep:
        return {"n": 0}
    known = ep["end_date"].notna() & ep["end_reason"].notna()
    recorded = ep.loc[known, "end_reason"].eq("dropped_out")
    inferred = inferred_dropout(tables["sessions"], tables["episodes"]).reindex(recorded.index)
    tp = int((recorded & inferred).sum())
    tn = int((~recorded & ~inferred).sum())
    fp = int((~recorded & inferred).sum())
    fn = int((recorded & ~inferred).sum())
    n = tp + tn + fp + fn
    if n == 0:
        return {"n": 0}
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (n * n)
    kappa = (observed - expected) / (1 - expected) if expected < 1 else float("nan")
    return {
        "n": n,
        "true_positive": tp,
        "true_negative": tn,
        "false_positive": fp,
        "false_negative": fn,
        "sensitivity": tp / (tp + fn) if tp + fn else None,
        "specificity": tn / (tn + fp) if tn + fp else None,
        "kappa": round(kappa, 4),
    }
