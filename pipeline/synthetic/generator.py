"""The bundled synthetic cohort: six contract tables plus the ground truth behind them.

``generate_cohort`` is a pure function of the params (seed included): the same params give
the same tables, byte for byte once written. Randomness flows from one
``numpy.random.SeedSequence`` spawned into independent streams per purpose and per chunk,
so the output does not depend on the machine or on how many episodes are simulated at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline import __version__
from pipeline.config import SyntheticParams
from pipeline.instruments import get_instrument
from pipeline.synthetic.constants import CONSTANTS, GeneratorConstants
from pipeline.synthetic.courses import (
    ATTENDED,
    END_CODE,
    PHQ_RC,
    CourseModel,
    continue_courses,
    poor_outcome_complete,
    poor_outcome_observed,
    simulate_courses,
    tile_state,
)
from pipeline.synthetic.latents import draw_episodes, draw_response, draw_therapists, make_ids
from pipeline.synthetic.tables import (
    CohortFrames,
    build_contacts,
    build_episodes,
    build_goals,
    build_measures,
    build_sessions,
)

CHUNK_EPISODES = 250_000  # fixed, so output never depends on the machine


@dataclass
class Cohort:
    tables: dict[str, pd.DataFrame]
    """Clean, typed contract tables (before any messy rows are injected)."""
    truth: pd.DataFrame
    """One row per episode: latent traits, planted effects' inputs, oracle risk."""
    summary: dict
    """Generator version, params, planted effects and population-level truths."""


ORACLE_CHUNK = 20_000  # episodes per Monte Carlo batch (bounds memory: × replicates rows)


def _simulate_in_chunks(
    ep: pd.DataFrame,
    model: CourseModel,
    extract: np.datetime64,
    seq: np.random.SeedSequence,
    collect: bool,
    landmark_days: int,
) -> tuple[pd.DataFrame | None, pd.DataFrame, dict[str, np.ndarray]]:
    """Simulate in fixed-size chunks; also return every episode's state at its landmark."""
    n_chunks = max(1, -(-len(ep) // CHUNK_EPISODES))
    seeds = seq.spawn(n_chunks)
    sessions: list[pd.DataFrame] = []
    summaries: list[pd.DataFrame] = []
    states: list[dict[str, np.ndarray]] = []
    for i in range(n_chunks):
        part = ep.iloc[i * CHUNK_EPISODES : (i + 1) * CHUNK_EPISODES]
        res = simulate_courses(
            part,
            model,
            extract,
            np.random.default_rng(seeds[i]),
            collect=collect,
            landmark_days=landmark_days,
        )
        summaries.append(res.summary)
        states.append(res.landmark_state)
        if res.sessions is not None:
            sessions.append(res.sessions)
    sess = pd.concat(sessions, ignore_index=True) if sessions else None
    landmark = {k: np.concatenate([st[k] for st in states]) for k in states[0]}
    return sess, pd.concat(summaries, ignore_index=True), landmark


def _share_poor(summary: pd.DataFrame, reps: int, n: int) -> np.ndarray:
    """Per episode: share of replicates ending without reliable improvement, among those
    with ≥ 2 PHQ-9 scores (NaN if no replicate had two scores)."""
    poor = poor_outcome_observed(summary).to_numpy().reshape(reps, n)
    eligible = np.isfinite(poor).sum(axis=0)
    risk = np.nansum(poor, axis=0) / np.maximum(eligible, 1)
    return np.where(eligible > 0, risk, np.nan)


def _monte_carlo(ep: pd.DataFrame, reps: int, seq: np.random.SeedSequence, simulate) -> np.ndarray:
    """Share of ``reps`` replicates ending poorly, per episode, in bounded batches.

    ``simulate(tiled, rows, rng_response, rng_course)`` runs the replicated batch (``rows``
    are the batch's positions in ``ep``) and returns the summary.
    """
    if reps == 0:
        return np.full(len(ep), np.nan)
    out = []
    batches = range(0, len(ep), ORACLE_CHUNK)
    for start, batch_seq in zip(batches, seq.spawn(len(batches)), strict=True):
        rows = np.arange(start, min(start + ORACLE_CHUNK, len(ep)))
        tiled = ep.iloc[np.tile(rows, reps)].reset_index(drop=True)
        tiled["episode_index"] = np.arange(len(tiled))
        s_response, s_course = batch_seq.spawn(2)
        summary = simulate(tiled, rows, np.random.default_rng(s_response), s_course)
        out.append(_share_poor(summary, reps, len(rows)))
    return np.concatenate(out)


def oracle_risk_intake(
    ep: pd.DataFrame,
    consts: GeneratorConstants,
    params: SyntheticParams,
    seq: np.random.SeedSequence,
) -> np.ndarray:
    """P(poor | structural traits at intake), by Monte Carlo.

    Each course is re-simulated ``oracle_replicates`` times from the same structural traits
    (engagement, alliance, homework and goal propensities, true severity, therapist) with a
    fresh idiosyncratic response and fresh noise. It is what the latent traits alone say
    about the outcome before treatment starts — not an upper bound for models that also use
    observed scores, which carry measurement noise and the idiosyncratic response.
    """
    extract = np.datetime64(params.extract_date, "D")

    def simulate(tiled, rows, rng_response, s_course):
        tiled = draw_response(tiled, consts, rng_response)
        _, summary, _ = _simulate_in_chunks(
            tiled,
            CourseModel(consts, params.effects),
            extract,
            s_course,
            collect=False,
            landmark_days=params.landmark_days,
        )
        return summary

    return _monte_carlo(ep, params.oracle_replicates, seq, simulate)


def oracle_risk_landmark(
    ep: pd.DataFrame,
    state: dict[str, np.ndarray],
    consts: GeneratorConstants,
    params: SyntheticParams,
    seq: np.random.SeedSequence,
) -> np.ndarray:
    """P(poor | everything true at the landmark), by Monte Carlo.

    The episode's full state at its landmark — latent traits, its own early response, the
    noise and attendance history so far — is continued ``oracle_replicates`` times with fresh
    randomness after the landmark, including a fresh late change (which is independent of
    everything before the landmark). It conditions on more than any dataset can show, so no
    model restricted to records dated before the landmark can beat its AUC except by chance:
    a model that does is using information from after the window (leakage).
    """
    extract = np.datetime64(params.extract_date, "D")
    reps = params.oracle_replicates

    def simulate(tiled, rows, rng_response, s_course):
        redrawn = draw_response(tiled, consts, rng_response)
        tiled = tiled.assign(
            late_change_phq9=redrawn["late_change_phq9"],
            late_change_gad7=redrawn["late_change_gad7"],
        )
        batch_state = tile_state({k: v[rows] for k, v in state.items()}, reps)
        return continue_courses(
            tiled,
            batch_state,
            CourseModel(consts, params.effects),
            extract,
            np.random.default_rng(s_course),
        )

    return _monte_carlo(ep, reps, seq, simulate)


TRUTH_COLUMNS = (
    "latent_engagement",
    "latent_alliance",
    "latent_homework",
    "latent_goal_ownership",
    "phq9_true_intake",
    "gad7_true_intake",
    "response_index_structural",
    "response_index_phq9",
    "response_index_gad7",
    "potential_change_phq9",
    "late_change_phq9",
    "late_change_gad7",
    "potential_change_gad7",
    "change_tau_sessions",
    "therapist_change",
    "therapist_attendance",
    "therapist_alliance",
)
"""Episode-frame columns copied into the ground truth, in this order."""

WSAS = get_instrument("WSAS")


def _wsas(
    sess: pd.DataFrame, summary: pd.DataFrame, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """WSAS at the first attended session and at a planned ending: the session at which the
    course was agreed to end (known at that session, not in hindsight; dropouts get none).

    Returns the flag of each session row that is such a planned last session, and a WSAS
    score for every session row (used where a PHQ-9 was recorded)."""
    attended = sess["status"].to_numpy() == ATTENDED
    ep_idx = sess["episode_index"].to_numpy()
    last_row = pd.Series(np.flatnonzero(attended)).groupby(ep_idx[attended]).max()
    planned_end = summary["ended_at_session"].to_numpy()[last_row.index]
    last_attended = np.zeros(len(sess), dtype=bool)
    last_attended[last_row.to_numpy()[planned_end]] = True
    wsas = np.clip(
        np.round(1.1 * sess["phq"].to_numpy() + rng.normal(3, 4, len(sess))),
        WSAS.minimum,
        WSAS.maximum,
    )
    return last_attended, wsas


@dataclass(frozen=True)
class _Streams:
    """Independent random streams of the cohort, one per purpose (spawned from the seed)."""

    therapists: np.random.SeedSequence
    episodes: np.random.SeedSequence
    courses: np.random.SeedSequence
    goals: np.random.SeedSequence
    contacts: np.random.SeedSequence
    wsas: np.random.SeedSequence
    oracle: np.random.SeedSequence


def _contract_tables(
    sim: CohortFrames,
    sess_summary: pd.DataFrame,
    extract: np.datetime64,
    consts: GeneratorConstants,
    streams: _Streams,
) -> dict[str, pd.DataFrame]:
    """The six contract tables from the simulated episodes and sessions."""
    sess = sim.sess
    last_attended, wsas = _wsas(sess, sess_summary, np.random.default_rng(streams.wsas))
    measures = build_measures(sess, sim.sessions, last_attended, wsas)
    goals, ratings = build_goals(sim, consts, np.random.default_rng(streams.goals))
    contacts = build_contacts(sim, extract, consts, np.random.default_rng(streams.contacts))
    return {
        "episodes": sim.episodes,
        "sessions": sim.sessions,
        "measures": measures,
        "goals": goals,
        "goal_ratings": ratings,
        "contacts": contacts,
    }


def _truth(
    sim: CohortFrames,
    episode_ids: np.ndarray,
    summary: pd.DataFrame,
    risk_intake: np.ndarray,
    risk_landmark: np.ndarray,
    open_at_landmark: np.ndarray,
) -> pd.DataFrame:
    """One row per episode: latent traits, planted effects' inputs, oracle risks, outcomes."""
    return pd.DataFrame(
        {
            "episode_id": episode_ids,
            "therapist_id": sim.episodes["therapist_id"],
            **{col: sim.ep[col].to_numpy() for col in TRUTH_COLUMNS},
            "oracle_risk_intake": risk_intake,
            "oracle_risk_landmark": risk_landmark,
            # Not ended by its landmark, which falls before the extract: the population
            # the engagement model predicts for (in treatment at the landmark).
            "open_at_landmark": open_at_landmark,
            "poor_outcome_observed": poor_outcome_observed(summary).to_numpy(),
            # Had every questionnaire been completed (the missing-data analyses' benchmark).
            "phq9_first_complete": summary["phq9_first_complete"].to_numpy(),
            "phq9_last_complete": summary["phq9_last_complete"].to_numpy(),
            "poor_outcome_complete": poor_outcome_complete(summary).to_numpy(),
        }
    )


def generate_cohort(params: SyntheticParams, consts: GeneratorConstants = CONSTANTS) -> Cohort:
    """Generate the full cohort (pure: no I/O, no global random state)."""
    streams = _Streams(*np.random.SeedSequence(params.seed).spawn(7))
    therapists = draw_therapists(params, consts, np.random.default_rng(streams.therapists))
    ep = draw_episodes(params, consts, therapists, np.random.default_rng(streams.episodes))
    extract = np.datetime64(params.extract_date, "D")
    model = CourseModel(consts, params.effects)
    sess, summary, landmark = _simulate_in_chunks(
        ep, model, extract, streams.courses, True, params.landmark_days
    )
    if sess is None:
        raise ValueError("the cohort has no scheduled appointment")
    n = len(ep)
    ids = {"episode": make_ids("ep", n, 6), "client": make_ids("cl", n, 6)}
    episodes = build_episodes(ep, summary, therapists, ids, consts)
    sim = CohortFrames(ep=ep, sess=sess, sessions=build_sessions(sess, ids), episodes=episodes)
    tables = _contract_tables(sim, summary, extract, consts, streams)

    s_oracle_intake, s_oracle_landmark = streams.oracle.spawn(2)
    risk_intake = oracle_risk_intake(ep, consts, params, s_oracle_intake)
    risk_landmark = oracle_risk_landmark(ep, landmark, consts, params, s_oracle_landmark)
    open_at_landmark = (landmark["end_code"] == END_CODE["still_open"]) & (
        landmark["landmark_day"] <= extract.astype(np.int64)
    )
    truth = _truth(sim, ids["episode"], summary, risk_intake, risk_landmark, open_at_landmark)
    return Cohort(tables=tables, truth=truth, summary=_truth_summary(params, truth))


def _oracle_auc(
    truth: pd.DataFrame, column: str, population: str | None = "open_at_landmark"
) -> tuple[float | None, int]:
    """AUC of an oracle risk for the observed poor outcome, over episodes with the outcome
    (and, by default, in treatment at the landmark, as the engagement model's population)."""
    eligible = truth["poor_outcome_observed"].notna() & truth[column].notna()
    if population is not None:
        eligible &= truth[population].astype(bool)
    y = truth.loc[eligible, "poor_outcome_observed"].astype(int)
    if not eligible.any() or y.nunique() < 2:
        return None, int(eligible.sum())
    return float(roc_auc_score(y, truth.loc[eligible, column])), int(eligible.sum())


def _truth_summary(params: SyntheticParams, truth: pd.DataFrame) -> dict:
    auc_intake, n_oracle = _oracle_auc(truth, "oracle_risk_intake")
    auc_landmark, _ = _oracle_auc(truth, "oracle_risk_landmark")
    auc_landmark_all, n_all = _oracle_auc(truth, "oracle_risk_landmark", population=None)
    return {
        "generator_version": __version__,
        "params": params.model_dump(mode="json"),
        "planted_effects": {
            **params.effects.model_dump(),
            "units": (
                "PHQ-9 points of full-course change per SD of the latent trait; "
                "alliance_within_effect in PHQ-9 points per SRS point of session alliance "
                "above the client's own expected level; therapist_sd_change in PHQ-9 points."
            ),
        },
        "poor_outcome_definition": (
            f"not reliably improved on PHQ-9 (first minus last score < {PHQ_RC:g}) among episodes "
            "with at least two PHQ-9 scores"
        ),
        "oracle_auc_intake": auc_intake,
        "oracle_auc_landmark": auc_landmark,
        "landmark_days": params.landmark_days,
        "oracle_n": n_oracle,
        "oracle_population": (
            "episodes in treatment at the landmark (not ended by it) with two or more PHQ-9 "
            "scores; the calibration target oracle_auc_landmark narrows this to the "
            "engagement model's population (also at caseness, a score after the landmark)"
        ),
        "oracle_auc_landmark_all_scored": auc_landmark_all,
        "oracle_n_all_scored": n_all,
    }
