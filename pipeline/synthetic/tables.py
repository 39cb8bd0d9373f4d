"""Turn simulated courses into the six contract tables (typed, clean)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.contract import (
    AGENDA_SETTERS,
    BARRIERS,
    CONTACT_CHANNELS,
    END_REASONS,
    GOAL_SETTERS,
    HOMEWORK_COMPLETION,
    MODALITIES,
    SESSION_STATUSES,
)
from pipeline.instruments import get_instrument
from pipeline.synthetic.constants import GeneratorConstants
from pipeline.synthetic.courses import ATTENDED, DNA, OPEN
from pipeline.synthetic.latents import make_ids


def _days(values: np.ndarray) -> pd.Series:
    """int days since epoch (OPEN = missing) → datetime64[s] Series."""
    values = np.asarray(values)
    out = values.astype("datetime64[D]").astype("datetime64[s]")
    out = np.where(values == OPEN, np.datetime64("NaT"), out)
    return pd.Series(out.astype("datetime64[s]"))


def _pick(labels: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """Integer codes → labels; negative codes → missing."""
    arr = np.asarray(codes)
    codes = np.where(arr < 0, -1, arr).astype(np.int64)
    cat = pd.Categorical.from_codes(codes, categories=pd.Index(labels))
    return pd.Series(cat).astype("str").where(arr >= 0)


def _nullable_bool(values: np.ndarray, missing: np.ndarray) -> pd.arrays.BooleanArray:
    """Nullable booleans: ``values``, missing where ``missing`` (False stored underneath, as
    ``pd.array`` does)."""
    return pd.arrays.BooleanArray(values & ~missing, missing)


def _nullable_int(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    """Nullable Int64: ``values``, missing where ``missing`` (1 stored underneath, as
    ``pd.array`` does)."""
    return pd.arrays.IntegerArray(np.where(missing, 1, values).astype(np.int64), missing)


def _bool(codes: np.ndarray) -> pd.Series:
    """Integer codes → nullable booleans: 1 → True, 0 → False, negative → missing."""
    arr = np.asarray(codes)
    return pd.Series(_nullable_bool(arr == 1, arr < 0))


def build_episodes(
    ep: pd.DataFrame,
    summary: pd.DataFrame,
    therapists: pd.DataFrame,
    ids: dict[str, np.ndarray],
    consts: GeneratorConstants,
) -> pd.DataFrame:
    ther = therapists.iloc[ep["therapist_index"].to_numpy()]
    return pd.DataFrame(
        {
            "episode_id": ids["episode"],
            "client_id": ids["client"][ep["client_index"].to_numpy()],
            "therapist_id": ther["therapist_id"].to_numpy(),
            "site_id": ther["site_id"].to_numpy(),
            "referral_date": pd.Series(ep["referral_day"].to_numpy().astype("datetime64[s]")),
            "end_date": _days(summary["end_day"].to_numpy()),
            "end_reason": _pick(END_REASONS, summary["end_code"].to_numpy()),
            "age_band": ep["age_band"].to_numpy(),
            "gender": ep["gender"].to_numpy(),
            "presenting_problem": ep["presenting_problem"].to_numpy(),
            "treatment": np.asarray(consts.treatments)[ep["treatment_code"].to_numpy()],
            "planned_sessions": pd.array(ep["planned_sessions"].to_numpy(), dtype="Int64"),
        }
    )


def build_sessions(sess: pd.DataFrame, ids: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(sess)
    duration = sess["duration_min"].to_numpy()
    return pd.DataFrame(
        {
            "session_id": make_ids("se", n, 6),
            "episode_id": ids["episode"][sess["episode_index"].to_numpy()],
            "scheduled_date": _days(sess["day"].to_numpy()),
            "status": _pick(SESSION_STATUSES, sess["status"].to_numpy()),
            "notice_hours": sess["notice_hours"].to_numpy(),
            "modality": _pick(MODALITIES, sess["modality"].to_numpy()),
            "duration_min": _nullable_int(duration, duration < 0),
            "agenda_set_by": _pick(AGENDA_SETTERS, sess["agenda"].to_numpy()),
            "homework_assigned": _bool(sess["hw_assigned"].to_numpy()),
            "homework_completed": _pick(HOMEWORK_COMPLETION, sess["hw_completed"].to_numpy()),
            "alliance_score": sess["alliance"].to_numpy(),
            "barrier_reported": _pick(BARRIERS, sess["barrier"].to_numpy()),
        }
    )


def build_measures(
    sess: pd.DataFrame, sessions: pd.DataFrame, last_attended: np.ndarray, wsas: np.ndarray
) -> pd.DataFrame:
    """PHQ-9 and GAD-7 at measured attended sessions; WSAS at the first and last session."""
    frames = []
    for instrument, column in (("PHQ-9", "phq"), ("GAD-7", "gad")):
        has = sess[column].notna().to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "order": np.flatnonzero(has) * 3 + (0 if column == "phq" else 1),
                    "episode_id": sessions["episode_id"].to_numpy()[has],
                    "measure_date": sessions["scheduled_date"].to_numpy()[has],
                    "session_id": sessions["session_id"].to_numpy()[has],
                    "instrument": instrument,
                    "score": sess[column].to_numpy()[has],
                }
            )
        )
    first_att = (sess["status"].to_numpy() == ATTENDED) & (sess["sessions_before"].to_numpy() == 0)
    has_w = (first_att | last_attended) & sess["phq"].notna().to_numpy()
    frames.append(
        pd.DataFrame(
            {
                "order": np.flatnonzero(has_w) * 3 + 2,
                "episode_id": sessions["episode_id"].to_numpy()[has_w],
                "measure_date": sessions["scheduled_date"].to_numpy()[has_w],
                "session_id": sessions["session_id"].to_numpy()[has_w],
                "instrument": "WSAS",
                "score": wsas[has_w],
            }
        )
    )
    out = pd.concat(frames, ignore_index=True).sort_values("order", kind="stable")
    return out.drop(columns="order").reset_index(drop=True)


@dataclass(frozen=True)
class CohortFrames:
    """The simulated cohort the goal and contact tables are drawn from."""

    ep: pd.DataFrame
    """Episode covariates and latent traits (``draw_episodes``)."""
    sess: pd.DataFrame
    """Simulated appointment records (``simulate_courses``), one row per session."""
    sessions: pd.DataFrame
    """The contract sessions table, row for row with ``sess``."""
    episodes: pd.DataFrame
    """The contract episodes table, row for row with ``ep``."""


PHQ9_RC = get_instrument("PHQ-9").reliable_change


def _goal_setting_rows(sess: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """Session row at which each episode's goals are set, indexed by episode: the first
    attended session, or (30%) the second."""
    att = sess[sess["status"] == ATTENDED]
    att_pos = att.index.to_numpy()
    first_rows = att_pos[att["sessions_before"].to_numpy() == 0]
    second_rows = att_pos[att["sessions_before"].to_numpy() == 1]
    ep_first = sess["episode_index"].to_numpy()[first_rows]
    set_row = pd.Series(first_rows, index=ep_first)
    later = rng.random(len(second_rows)) < 0.3
    set_row.loc[sess["episode_index"].to_numpy()[second_rows][later]] = second_rows[later]
    return set_row


@dataclass(frozen=True)
class _Goals:
    """Drawn goals: one entry per goal."""

    table: pd.DataFrame
    ids: np.ndarray
    episode: np.ndarray
    """Episode position of each goal."""
    set_row: np.ndarray
    """Session row at which each goal was set."""


def _draw_goals(sim: CohortFrames, consts: GeneratorConstants, rng: np.random.Generator) -> _Goals:
    """Goals set at the first (sometimes second) attended session: who set them (more often
    the client when goal ownership is high) and whether achieved (known once ended)."""
    ep, sessions = sim.ep, sim.sessions
    set_row = _goal_setting_rows(sim.sess, rng)
    n_goals = 1 + rng.choice(3, len(set_row), p=consts.goal_count_probs)
    goal_ep = np.repeat(set_row.index.to_numpy(), n_goals)
    goal_row = np.repeat(set_row.to_numpy(), n_goals)
    own = ep["latent_goal_ownership"].to_numpy()[goal_ep]
    z = consts.goal_ownership_loading * own + rng.standard_normal(goal_ep.size)
    set_by = np.where(z > 0.6, 0, np.where(z > -0.9, 1, 2))
    goal_ids = make_ids("gl", goal_ep.size, 6)
    # Achieved is known once the episode has ended; more likely after more improvement
    # (potential PHQ-9 change in units of the reliable-change criterion).
    end_reason = sim.episodes["end_reason"].to_numpy()[goal_ep]
    gain = (ep["potential_change_phq9"].to_numpy() / PHQ9_RC)[goal_ep]
    achieved = rng.random(goal_ep.size) < expit(-0.6 + 0.9 * gain + 0.3 * own)
    known = (end_reason != "still_open") & ~(
        (end_reason == "dropped_out") & (rng.random(goal_ep.size) < 0.5)
    )
    table = pd.DataFrame(
        {
            "goal_id": goal_ids,
            "episode_id": sessions["episode_id"].to_numpy()[goal_row],
            "set_date": sessions["scheduled_date"].to_numpy()[goal_row],
            "set_by": np.asarray(GOAL_SETTERS)[set_by],
            "achieved": _nullable_bool(achieved, ~known),
        }
    )
    return _Goals(table=table, ids=goal_ids, episode=goal_ep, set_row=goal_row)


def _rate_goals(
    sim: CohortFrames, goals: _Goals, consts: GeneratorConstants, rng: np.random.Generator
) -> pd.DataFrame:
    """Ratings at attended sessions from the setting session on (Goal-Based Outcomes, 0–10),
    rising with the episode's potential change."""
    sess, ep = sim.sess, sim.ep
    att_pos = sess.index.to_numpy()[sess["status"].to_numpy() == ATTENDED]
    att_ep = sess["episode_index"].to_numpy()[att_pos]
    g = pd.DataFrame(
        {
            "goal": np.arange(goals.episode.size),
            "ep": goals.episode,
            "set_row": goals.set_row,
            "start": rng.uniform(1, 4, goals.episode.size),
        }
    )
    a = pd.DataFrame({"ep": att_ep, "row": att_pos})
    pairs = a.merge(g, on="ep", how="inner")
    pairs = pairs[pairs["row"] >= pairs["set_row"]]
    keep = rng.random(len(pairs)) < consts.goal_rating_prob
    pairs = pairs[keep]
    ep_idx = pairs["ep"].to_numpy()
    row = pairs["row"].to_numpy()
    k = sess["sessions_before"].to_numpy()[row]
    progress = (ep["potential_change_phq9"].to_numpy()[ep_idx] / 10.0) * (1 - np.exp(-k / 3.5))
    rating = np.clip(
        np.round(pairs["start"].to_numpy() + 6.0 * progress + rng.normal(0, 1.0, len(pairs))), 0, 10
    )
    return (
        pd.DataFrame(
            {
                "goal_id": goals.ids[pairs["goal"].to_numpy()],
                "rating_date": sim.sessions["scheduled_date"].to_numpy()[row],
                "rating": rating,
                "_order": pairs["goal"].to_numpy() * 1_000 + k,
            }
        )
        .sort_values("_order", kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def build_goals(
    sim: CohortFrames, consts: GeneratorConstants, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Goals set at the first (sometimes second) attended session, and their ratings."""
    goals = _draw_goals(sim, consts, rng)
    return goals.table, _rate_goals(sim, goals, consts, rng)


def build_contacts(
    sim: CohortFrames,
    extract_day: np.datetime64,
    consts: GeneratorConstants,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Client-initiated contacts and service outreach between sessions."""
    c, ep, sess, episodes = consts, sim.ep, sim.sess, sim.episodes
    E = ep["latent_engagement"].to_numpy()
    first = ep["first_day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    extract = extract_day.astype("datetime64[D]").astype(np.int64)
    end = episodes["end_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    end = np.where(episodes["end_date"].isna().to_numpy(), extract, end)
    weeks = np.clip((end - first) / 7.0, 0, None)
    started = first <= extract

    n_client = rng.poisson(c.client_contacts_per_week * np.exp(c.contacts_engagement * E) * weeks)
    n_client = np.where(started, n_client, 0)
    ce = np.repeat(np.arange(len(ep)), n_client)
    client_day = first[ce] + np.floor(rng.random(ce.size) * np.maximum(end[ce] - first[ce], 1))

    n_remind = np.where(started, rng.poisson(c.outreach_per_week * weeks), 0)
    re_ = np.repeat(np.arange(len(ep)), n_remind)
    remind_day = first[re_] + np.floor(rng.random(re_.size) * np.maximum(end[re_] - first[re_], 1))
    missed = sess["status"].to_numpy() == DNA
    me = sess["episode_index"].to_numpy()[missed]
    miss_day = sess["day"].to_numpy()[missed] + 1
    out_ep = np.concatenate([re_, me])
    out_day = np.concatenate([remind_day, miss_day])
    responded = rng.random(out_ep.size) < expit(c.respond_logit + c.respond_engagement * E[out_ep])

    n_ch = len(CONTACT_CHANNELS)
    frame = pd.DataFrame(
        {
            "ep": np.concatenate([ce, out_ep]),
            "day": np.concatenate([client_day, out_day]).astype(np.int64),
            "direction": np.concatenate([np.zeros(ce.size, int), np.ones(out_ep.size, int)]),
            "channel": np.concatenate(
                [
                    rng.choice(n_ch, ce.size, p=(0.4, 0.3, 0.15, 0.0, 0.15)),
                    rng.choice(n_ch, out_ep.size, p=(0.35, 0.35, 0.1, 0.2, 0.0)),
                ]
            ),
            "responded": np.concatenate([np.full(ce.size, -1), responded.astype(int)]),
        }
    )
    frame = frame[frame["day"] <= extract].sort_values(["ep", "day", "direction"], kind="stable")
    return pd.DataFrame(
        {
            "episode_id": episodes["episode_id"].to_numpy()[frame["ep"].to_numpy()],
            "contact_date": _days(frame["day"].to_numpy()),
            "direction": np.asarray(("client_to_service", "service_to_client"))[frame["direction"]],
            "channel": np.asarray(CONTACT_CHANNELS)[frame["channel"].to_numpy()],
            "responded": _bool(frame["responded"].to_numpy()),
        }
    ).reset_index(drop=True)
