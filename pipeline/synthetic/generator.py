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
from pipeline.synthetic.constants import CONSTANTS, GeneratorConstants
from pipeline.synthetic.courses import ATTENDED, poor_outcome_observed, simulate_courses
from pipeline.synthetic.latents import draw_episodes, draw_response, draw_therapists, make_ids
from pipeline.synthetic.tables import (
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


def _simulate_in_chunks(ep, consts, effects, extract, seq: np.random.SeedSequence, collect):
    n_chunks = max(1, -(-len(ep) // CHUNK_EPISODES))
    seeds = seq.spawn(n_chunks)
    sessions, summaries = [], []
    for i in range(n_chunks):
        part = ep.iloc[i * CHUNK_EPISODES : (i + 1) * CHUNK_EPISODES]
        res = simulate_courses(
            part, consts, effects, extract, np.random.default_rng(seeds[i]), collect=collect
        )
        summaries.append(res.summary)
        if res.sessions is not None:
            sessions.append(res.sessions)
    sess = pd.concat(sessions, ignore_index=True) if sessions else None
    return sess, pd.concat(summaries, ignore_index=True)


def oracle_poor_risk(
    ep: pd.DataFrame,
    consts: GeneratorConstants,
    params: SyntheticParams,
    seq: np.random.SeedSequence,
) -> np.ndarray:
    """Monte Carlo P(poor outcome | structural traits, ≥ 2 PHQ-9 scores) per episode.

    The course is re-simulated ``oracle_replicates`` times from the same structural traits
    (engagement, alliance, homework and goal propensities, severity, therapist) with a fresh
    idiosyncratic response and fresh process noise; the risk is the share of replicates,
    among those with two or more scores, that end without reliable improvement. No model of
    intake and early-window data can beat it on average, so a pipeline model that does is
    leaking information from after the window.
    """
    reps = params.oracle_replicates
    if reps == 0:
        return np.full(len(ep), np.nan)
    s_response, s_course = seq.spawn(2)
    tiled = ep.iloc[np.tile(np.arange(len(ep)), reps)].reset_index(drop=True)
    tiled = draw_response(tiled, consts, np.random.default_rng(s_response))
    tiled["episode_index"] = np.arange(len(tiled))
    extract = np.datetime64(params.extract_date, "D")
    _, summ = _simulate_in_chunks(tiled, consts, params.effects, extract, s_course, collect=False)
    poor = poor_outcome_observed(summ).to_numpy().reshape(reps, len(ep))
    eligible = np.isfinite(poor).sum(axis=0)
    risk = np.nansum(poor, axis=0) / np.maximum(eligible, 1)
    return np.where(eligible > 0, risk, np.nan)


def generate_cohort(params: SyntheticParams, consts: GeneratorConstants = CONSTANTS) -> Cohort:
    """Generate the full cohort (pure: no I/O, no global random state)."""
    root = np.random.SeedSequence(params.seed)
    s_ther, s_ep, s_course, s_goals, s_contacts, s_wsas, s_oracle = root.spawn(7)
    therapists = draw_therapists(params, consts, np.random.default_rng(s_ther))
    ep = draw_episodes(params, consts, therapists, np.random.default_rng(s_ep))
    extract = np.datetime64(params.extract_date, "D")
    sess, summary = _simulate_in_chunks(ep, consts, params.effects, extract, s_course, True)

    n = len(ep)
    ids = {"episode": make_ids("ep", n, 6), "client": make_ids("cl", n, 6)}
    episodes = build_episodes(ep, summary, therapists, ids, consts)
    sessions = build_sessions(sess, ids)

    # WSAS at the first attended session and at the last one of an ended course.
    rng_w = np.random.default_rng(s_wsas)
    attended = sess["status"].to_numpy() == ATTENDED
    ep_idx = sess["episode_index"].to_numpy()
    last_row = pd.Series(np.flatnonzero(attended)).groupby(ep_idx[attended]).max()
    ended = episodes["end_reason"].to_numpy()[last_row.index] != "still_open"
    last_attended = np.zeros(len(sess), dtype=bool)
    last_attended[last_row.to_numpy()[ended]] = True
    wsas = np.clip(np.round(1.1 * sess["phq"].to_numpy() + rng_w.normal(3, 4, len(sess))), 0, 40)
    measures = build_measures(sess, sessions, last_attended, wsas)
    goals, ratings = build_goals(
        ep, sess, sessions, episodes, consts, np.random.default_rng(s_goals)
    )
    contacts = build_contacts(
        ep, sess, sessions, episodes, extract, consts, np.random.default_rng(s_contacts)
    )
    tables = {
        "episodes": episodes,
        "sessions": sessions,
        "measures": measures,
        "goals": goals,
        "goal_ratings": ratings,
        "contacts": contacts,
    }

    oracle = oracle_poor_risk(ep, consts, params, s_oracle)
    truth = pd.DataFrame(
        {
            "episode_id": ids["episode"],
            "therapist_id": episodes["therapist_id"],
            **{
                col: ep[col].to_numpy()
                for col in (
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
                    "potential_change_gad7",
                    "therapist_change",
                    "therapist_attendance",
                    "therapist_alliance",
                )
            },
            "oracle_poor_risk": oracle,
            "poor_outcome_observed": poor_outcome_observed(summary).to_numpy(),
        }
    )
    return Cohort(tables=tables, truth=truth, summary=_truth_summary(params, truth))


def _truth_summary(params: SyntheticParams, truth: pd.DataFrame) -> dict:
    eligible = truth["poor_outcome_observed"].notna() & truth["oracle_poor_risk"].notna()
    y = truth.loc[eligible, "poor_outcome_observed"].astype(int)
    oracle_auc = None
    if eligible.any() and y.nunique() == 2:
        oracle_auc = float(roc_auc_score(y, truth.loc[eligible, "oracle_poor_risk"]))
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
            "not reliably improved on PHQ-9 (first minus last score < 6) among episodes "
            "with at least two PHQ-9 scores"
        ),
        "oracle_auc_poor_outcome": oracle_auc,
        "oracle_n": int(eligible.sum()),
    }
