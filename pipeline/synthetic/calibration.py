"""Calibration of the synthetic cohort against published figures.

``calibration_statistics`` computes, from the contract tables (and the ground truth where a
latent is needed), every statistic in ``TARGETS``; ``check_calibration`` compares them with
the target ranges. The synthesize stage writes the result next to the data and
``docs/calibration.md`` is rendered from it, so the documented "default cohort" column is
always computed, never typed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pipeline.instruments import at_caseness, get_instrument, improvement, reliable_change


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    literature: str
    published: str
    low: float
    high: float


TARGETS: tuple[Target, ...] = (
    Target(
        "first_appointment_dna_rate",
        "First scheduled appointment not attended (no-show)",
        "lit. §6 (Davis et al. 2020; IAPT non-attendance study)",
        "≈25–40%",
        0.25,
        0.40,
    ),
    Target(
        "session_dna_rate",
        "Share of all scheduled appointments missed (no-show)",
        "lit. §6 (Davis et al. 2020: 12%; Binnie & Boden 2016: 8.9%)",
        "≈9–12%",
        0.08,
        0.13,
    ),
    Target(
        "dropout_rate",
        "All ended episodes, any number of sessions attended (early stoppers included): "
        "share with end_reason dropped_out",
        "lit. §4 (routine care ≈30%, reviews 15.9–46.8%; trials 19.7%); lit. §12 "
        "(NHS TT finished courses: 33.2%)",
        "≈30–47%",
        0.30,
        0.45,
    ),
    Target(
        "finished_completed_share",
        "Ended finished courses (≥ 2 attended sessions): share with end_reason completed "
        "(mutually agreed completion)",
        "lit. §12 (NHS TT Jan 2021–Mar 2026: 53.9% of 3,504,945)",
        "53.9%",
        0.45,
        0.65,
    ),
    Target(
        "finished_dropout_share",
        "Ended finished courses (≥ 2 attended sessions): share with end_reason dropped_out "
        "(unilateral termination)",
        "lit. §12 (NHS TT Jan 2021–Mar 2026: 30.9% + 2.3%)",
        "33.2%",
        0.25,
        0.40,
    ),
    Target(
        "phq9_intake_mean",
        "Mean first PHQ-9, finished courses at caseness",
        "lit. §7b/§9 (NHS TT 2022-23: 15.4)",
        "15.4",
        14.4,
        16.4,
    ),
    Target(
        "phq9_intake_sd",
        "SD of first PHQ-9, finished courses at caseness",
        "lit. §7b/§9 (NHS TT 2022-23: 5.5)",
        "5.5",
        4.6,
        6.2,
    ),
    Target(
        "gad7_intake_mean",
        "Mean first GAD-7, finished courses at caseness",
        "lit. §7b (NHS TT 2022-23: 14.0)",
        "14.0",
        12.5,
        15.0,
    ),
    Target(
        "phq9_gad7_intake_corr",
        "Correlation of first PHQ-9 and first GAD-7, episodes with two or more of each",
        "design choice (measures of related constructs)",
        "strongly positive",
        0.45,
        0.80,
    ),
    Target(
        "phq9_end_mean_caseness_finished",
        "Mean last PHQ-9, finished courses at caseness",
        "lit. §7b/§9 (15.4 → 9.4)",
        "9.4",
        8.4,
        10.6,
    ),
    Target(
        "intake_only_auc",
        "AUC for the default poor outcome from first PHQ-9 and GAD-7 (logistic regression)",
        "lit. §10 (intake-only models ≈ .60–.65)",
        "≈.60–.65",
        0.55,
        0.72,
    ),
    Target(
        "early_change_auc",
        "AUC for the default poor outcome from first PHQ-9 and its change by the landmark "
        "(day 42; logistic; episodes with a later score)",
        "lit. §10 (with early change ≈ .68–.73); lit. §9 (≈40% of outcome variance by session 3)",
        "≈.68–.80",
        0.62,
        0.84,
    ),
    Target(
        "oracle_auc_landmark",
        "AUC of the landmark oracle (P(poor | everything true at day 42), by Monte Carlo) for "
        "the default poor outcome, on the engagement model's population: in treatment at the "
        "landmark, at caseness at the first PHQ-9, a PHQ-9 after the landmark",
        "lit. §10 (early-data models ≈ .68–.73; above ≈ .8 a warning sign); design rule: the "
        "best any early-window model could do sits a little above what published models reach",
        "≲ .85",
        0.72,
        0.85,
    ),
    Target(
        "reliable_improvement_rate",
        "Reliable improvement, finished courses (PHQ-9/GAD-7 paired, NHS TT rule)",
        "lit. §7b (63.7%–69.1%)",
        "≈64–69%",
        0.60,
        0.70,
    ),
    Target(
        "reliable_deterioration_rate",
        "Reliable deterioration, finished courses (either measure)",
        "lit. §7b (Gyani et al. 2013: 6.6%)",
        "≈5–7%",
        0.05,
        0.08,
    ),
    Target(
        "reliable_recovery_rate",
        "Reliable recovery, finished courses at caseness",
        "lit. §7a/§7b (40.3%–48.4%)",
        "≈40–48%",
        0.38,
        0.55,
    ),
    Target(
        "alliance_outcome_r",
        "r(mean session alliance, PHQ-9 improvement), finished courses",
        "lit. §1 (Flückiger et al. 2018: r = .278)",
        ".28",
        0.20,
        0.36,
    ),
    Target(
        "homework_outcome_r",
        "r(homework completion rate, PHQ-9 improvement), finished courses",
        "lit. §2 (Kazantzis 2000: .22; Mausbach 2010: .26)",
        ".22–.26",
        0.15,
        0.33,
    ),
    Target(
        "goal_consensus_outcome_r",
        "r(share of goals client-set or collaborative, PHQ-9 improvement), finished courses",
        "lit. §3 (Tryon et al. 2018: r = .24)",
        ".24",
        0.16,
        0.32,
    ),
    Target(
        "good_enough_level_gap",
        "Reliable improvement rate among planned endings after 2–5 "
        "sessions minus after 9+ sessions (positive = improvers end sooner)",
        "lit. §5 (Barkham et al. 2006: 88% at 1 session → 62% at 12)",
        "> 0",
        0.05,
        0.60,
    ),
    Target(
        "therapist_icc_improvement",
        "Share of PHQ-9 improvement variance between therapists (ICC(1)), finished courses",
        "lit. §6 (therapists differ); design choice",
        "small, > 0",
        0.005,
        0.12,
    ),
    Target(
        "missing_measure_ratio",
        "Share of attended sessions without a PHQ-9, least vs most "
        "engaged third (latent engagement)",
        "design rule: missing more among the disengaged (docs/methods.md)",
        "> 1",
        1.5,
        10.0,
    ),
)


ENGAGEMENT_MODEL_AUC = Target(
    "engagement_model_auc",
    "Cross-validated AUC of the pipeline's own engagement model (logistic, window features "
    "and case mix; `prediction_metrics`) for the default poor outcome",
    "lit. §10 (with early change ≈ .68–.73; published range ≈ .60–.75)",
    "≈.60–.75",
    0.68,
    0.78,
)
"""Measured by the models layer, not here (the generator may not import it): the docs page
and ``tests/models/test_prediction.py`` check it on the default cohort."""


def _first_last(measures: pd.DataFrame, instrument: str) -> pd.DataFrame:
    m = measures[measures["instrument"] == instrument].sort_values(
        ["episode_id", "measure_date"], kind="stable"
    )
    g = m.groupby("episode_id", sort=True)["score"]
    return pd.DataFrame({"first": g.first(), "last": g.last(), "n": g.size()})


def _icc1(values: pd.Series, groups: pd.Series) -> float:
    """One-way random-effects ICC(1) from the ANOVA mean squares (unbalanced groups)."""
    df = pd.DataFrame({"y": values, "g": groups}).dropna()
    k = df.groupby("g")["y"].size()
    n, a = len(df), len(k)
    grand = df["y"].mean()
    means = df.groupby("g")["y"].mean()
    ssb = float((k * (means - grand) ** 2).sum())
    ssw = float(((df["y"] - df["g"].map(means)) ** 2).sum())
    msb, msw = ssb / (a - 1), ssw / (n - a)
    k0 = (n - (k**2).sum() / n) / (a - 1)
    return float((msb - msw) / (msb + (k0 - 1) * msw))


PHQ9_RC = get_instrument("PHQ-9").reliable_change


@dataclass(frozen=True)
class _Courses:
    """Episodes, their sessions in date order and who finished a course."""

    ep: pd.DataFrame
    """Episodes indexed by episode_id."""
    ses: pd.DataFrame
    attended: pd.Series
    """Per session row: attended."""
    n_att: pd.Series
    """Attended sessions per episode."""
    ended: pd.Series
    finished: pd.Series
    """Ended, with ≥ 2 attended sessions."""
    paired: pd.DataFrame
    """First/last PHQ-9 and GAD-7 per episode with two or more of each."""


def _courses(tables: dict[str, pd.DataFrame]) -> _Courses:
    """Sessions per episode, finished courses, and paired first/last PHQ-9 and GAD-7."""
    ep = tables["episodes"].set_index("episode_id")
    ses = tables["sessions"].sort_values(["episode_id", "scheduled_date"], kind="stable")
    meas = tables["measures"]
    attended = ses["status"] == "attended"
    n_att = attended.groupby(ses["episode_id"]).sum().reindex(ep.index, fill_value=0)
    ended = ep["end_reason"].ne("still_open")
    phq, gad = _first_last(meas, "PHQ-9"), _first_last(meas, "GAD-7")
    paired = phq.join(gad, how="inner", suffixes=("_phq", "_gad"))  # type: ignore[call-arg]  # pandas 3 has it; the stubs not yet
    paired = paired[(paired["n_phq"] >= 2) & (paired["n_gad"] >= 2)]
    return _Courses(
        ep=ep,
        ses=ses,
        attended=attended,
        n_att=n_att,
        ended=ended,
        finished=ended & (n_att >= 2),
        paired=paired,
    )


def _either_at_caseness(paired: pd.DataFrame, when: str) -> np.ndarray:
    """At caseness on PHQ-9 or GAD-7 at the ``first`` or ``last`` score (NHS TT)."""
    return at_caseness("PHQ-9", paired[f"{when}_phq"]) | at_caseness("GAD-7", paired[f"{when}_gad"])


def _reliable_change_rates(c: _Courses) -> dict[str, float]:
    """Reliable improvement, deterioration and recovery of finished courses (PHQ-9/GAD-7
    paired, NHS TT rule)."""
    fin = c.paired[c.paired.index.isin(c.ep.index[c.finished])]
    rc_phq = reliable_change("PHQ-9", fin["first_phq"], fin["last_phq"])
    rc_gad = reliable_change("GAD-7", fin["first_gad"], fin["last_gad"])
    deteriorated = (rc_phq == -1) | (rc_gad == -1)
    improved = ((rc_phq == 1) | (rc_gad == 1)) & ~deteriorated
    case_start = _either_at_caseness(fin, "first")
    recovered = case_start & ~_either_at_caseness(fin, "last")
    return {
        "reliable_improvement_rate": float(improved.mean()),
        "reliable_deterioration_rate": float(deteriorated.mean()),
        "reliable_recovery_rate": float((recovered & improved)[case_start].mean()),
    }


def _process_outcome(c: _Courses, tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Correlations of alliance, homework and goal consensus with PHQ-9 improvement, and
    the therapist ICC of improvement, over finished courses."""
    phq = _first_last(tables["measures"], "PHQ-9")
    phq_fin = phq[phq.index.isin(c.ep.index[c.finished]) & (phq["n"] >= 2)]
    gain = pd.Series(improvement("PHQ-9", phq_fin["first"], phq_fin["last"]), index=phq_fin.index)
    att_ses = c.ses[c.attended]
    alliance = att_ses.groupby("episode_id")["alliance_score"].mean()
    hw_score = att_ses["homework_completed"].map({"none": 0.0, "partial": 0.5, "full": 1.0})
    homework = hw_score.groupby(att_ses["episode_id"]).mean()
    goals = tables["goals"]
    owned = goals["set_by"].isin(["client", "collaborative"]).groupby(goals["episode_id"]).mean()
    return {
        "alliance_outcome_r": float(gain.corr(alliance.reindex(gain.index))),
        "homework_outcome_r": float(gain.corr(homework.reindex(gain.index))),
        "goal_consensus_outcome_r": float(gain.corr(owned.reindex(gain.index))),
        "therapist_icc_improvement": _icc1(gain, c.ep["therapist_id"].reindex(gain.index)),
    }


def _good_enough_level_gap(c: _Courses) -> float:
    """Reliable PHQ-9 improvement among planned endings after 2–5 sessions minus 9+."""
    planned_end = c.ep["end_reason"].eq("completed")
    pe = c.paired[c.paired.index.isin(c.ep.index[c.finished & planned_end])]
    pe_improved = pd.Series(
        reliable_change("PHQ-9", pe["first_phq"], pe["last_phq"]) == 1, index=pe.index
    )
    pe_n = c.n_att.reindex(pe.index)
    return float(pe_improved[pe_n.between(2, 5)].mean() - pe_improved[pe_n >= 9].mean())


def _missing_measure_ratio(c: _Courses, measures: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Share of attended sessions without a PHQ-9, least vs most engaged third."""
    t = truth.set_index("episode_id")
    att_ids = c.ses[c.attended][["episode_id", "session_id"]]
    phq_sessions = measures.loc[measures["instrument"] == "PHQ-9", "session_id"]
    has_phq = att_ids["session_id"].isin(phq_sessions)
    missing_share = (~has_phq).groupby(att_ids["episode_id"]).mean()
    tertile = pd.qcut(t["latent_engagement"].reindex(missing_share.index), 3, labels=False)
    by_tertile = missing_share.groupby(tertile).mean()
    return float(by_tertile.iloc[0] / by_tertile.iloc[-1])


def _attendance_and_endings(c: _Courses) -> dict[str, float]:
    """No-show rates, dropout among ended episodes, endings of finished courses."""
    first_status = c.ses.groupby("episode_id")["status"].first()
    dropped = c.ep.loc[c.ended, "end_reason"].eq("dropped_out")
    finished_reason = c.ep.loc[c.finished, "end_reason"]
    return {
        "first_appointment_dna_rate": float((first_status == "did_not_attend").mean()),
        "session_dna_rate": float((c.ses["status"] == "did_not_attend").mean()),
        "dropout_rate": float(dropped.mean()),
        "finished_completed_share": float(finished_reason.eq("completed").mean()),
        "finished_dropout_share": float(finished_reason.eq("dropped_out").mean()),
    }


def _intake_and_end_scores(c: _Courses) -> dict[str, float]:
    """First and last scores of finished courses at caseness; PHQ-9/GAD-7 correlation."""
    case_fin = c.paired[c.paired.index.isin(c.ep.index[c.finished])]
    case_fin = case_fin[_either_at_caseness(case_fin, "first")]
    return {
        "phq9_intake_mean": float(case_fin["first_phq"].mean()),
        "phq9_intake_sd": float(case_fin["first_phq"].std()),
        "gad7_intake_mean": float(case_fin["first_gad"].mean()),
        "phq9_gad7_intake_corr": float(c.paired["first_phq"].corr(c.paired["first_gad"])),
        "phq9_end_mean_caseness_finished": float(case_fin["last_phq"].mean()),
    }


def calibration_statistics(
    tables: dict[str, pd.DataFrame], truth: pd.DataFrame, landmark_days: int = 42
) -> dict:
    """Every statistic named in TARGETS, computed from the (clean) contract tables.

    "Finished courses at caseness" means ≥ 2 attended sessions, an ended episode, two or more
    PHQ-9 and GAD-7 scores, and caseness at the start on either measure (NHS TT).
    """
    c = _courses(tables)
    process = _process_outcome(c, tables)
    return {
        **_attendance_and_endings(c),
        **_intake_and_end_scores(c),
        **_reliable_change_rates(c),
        "alliance_outcome_r": process["alliance_outcome_r"],
        "homework_outcome_r": process["homework_outcome_r"],
        "goal_consensus_outcome_r": process["goal_consensus_outcome_r"],
        "good_enough_level_gap": _good_enough_level_gap(c),
        "therapist_icc_improvement": process["therapist_icc_improvement"],
        "missing_measure_ratio": _missing_measure_ratio(c, tables["measures"], truth),
        **predictability(c.ses, tables["measures"], c.paired, landmark_days),
        "oracle_auc_landmark": _oracle_auc_landmark(c, tables["measures"], truth, landmark_days),
        "n_episodes": len(c.ep),
        "n_finished_course": int(c.finished.sum()),
        "mean_sessions_attended_finished": float(c.n_att[c.finished].mean()),
    }


def _auc_of_logistic(x: pd.DataFrame, y: pd.Series) -> float:
    """In-sample AUC of a logistic regression (a description of the cohort, not a model)."""
    model = LogisticRegression().fit(x.to_numpy(), y.to_numpy())
    return float(roc_auc_score(y, model.predict_proba(x.to_numpy())[:, 1]))


def predictability(
    sessions: pd.DataFrame, measures: pd.DataFrame, paired: pd.DataFrame, window_days: int = 42
) -> dict:
    """How predictable the default poor outcome is from intake scores and early change."""
    phq = measures[measures["instrument"] == "PHQ-9"].sort_values(
        ["episode_id", "measure_date"], kind="stable"
    )
    poor = (paired["first_phq"] - paired["last_phq"]) < PHQ9_RC  # not reliably improved
    intake = _auc_of_logistic(paired[["first_phq", "first_gad"]], poor)
    start = sessions.groupby("episode_id")["scheduled_date"].min()
    cutoff = phq["episode_id"].map(start + pd.Timedelta(days=window_days))
    in_window = phq[phq["measure_date"] < cutoff].groupby("episode_id")["score"]
    after = phq[phq["measure_date"] >= cutoff].groupby("episode_id").size()
    early = pd.DataFrame({"first": in_window.first(), "window_last": in_window.last()})
    early = early[early.index.isin(after.index) & early.index.isin(paired.index)]
    early["change"] = early["first"] - early["window_last"]
    y = poor.reindex(early.index)
    return {
        "intake_only_auc": intake,
        "early_change_auc": _auc_of_logistic(early[["first", "change"]], y),
    }


def _oracle_auc_landmark(
    c: _Courses, measures: pd.DataFrame, truth: pd.DataFrame, window_days: int
) -> float:
    """AUC of the landmark oracle for "not reliably improved" (first vs last PHQ-9) on the
    engagement model's population: in treatment at the landmark (truth), first PHQ-9 at
    caseness, a PHQ-9 dated on or after the landmark. NaN without oracle replicates."""
    t = truth.set_index("episode_id")
    if "open_at_landmark" not in t or t["oracle_risk_landmark"].isna().all():
        return float("nan")
    phq = measures[measures["instrument"] == "PHQ-9"].sort_values(
        ["episode_id", "measure_date"], kind="stable"
    )
    start = c.ses.groupby("episode_id")["scheduled_date"].min()
    after = phq["measure_date"] >= phq["episode_id"].map(start + pd.Timedelta(days=window_days))
    later = phq.loc[after, "episode_id"].unique()
    fl = _first_last(measures, "PHQ-9")
    fl = fl[(fl["n"] >= 2) & at_caseness("PHQ-9", fl["first"]) & fl.index.isin(later)]
    fl = fl[t["open_at_landmark"].reindex(fl.index).fillna(False).astype(bool)]
    risk = t["oracle_risk_landmark"].reindex(fl.index)
    keep = risk.notna()
    poor = (fl["first"] - fl["last"]) < PHQ9_RC
    if poor[keep].nunique() < 2:
        return float("nan")
    return float(roc_auc_score(poor[keep], risk[keep]))


def check_calibration(stats: dict, targets: tuple[Target, ...] = TARGETS) -> pd.DataFrame:
    """One row per target: published value, range used, cohort value, whether it is met
    (a statistic that could not be computed, NaN, is not met)."""
    rows = []
    for t in targets:
        value = stats[t.name]
        rows.append(
            {
                "statistic": t.name,
                "description": t.description,
                "literature": t.literature,
                "published": t.published,
                "low": t.low,
                "high": t.high,
                "cohort": value,
                "met": bool(t.low <= value <= t.high),
            }
        )
    return pd.DataFrame(rows)
