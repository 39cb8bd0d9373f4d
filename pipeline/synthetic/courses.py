"""Session-by-session simulation of courses of treatment.

Vectorised over episodes: the only Python loop runs over appointment *slots* (at most
``max_slots``), never over clients. At each slot every active episode either attends,
misses (no-show) or cancels; attended sessions yield alliance, homework, agenda, barrier and
questionnaire records; the course then ends by good-enough-level agreement, reaching the
planned dose, referral on, moving away, or the client quietly stopping (dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.config import SyntheticEffects
from pipeline.contract import BARRIERS, END_REASONS, MODALITIES
from pipeline.synthetic.constants import GeneratorConstants

ATTENDED, DNA, CANCEL_CLIENT, CANCEL_SERVICE = 0, 1, 2, 3
END_CODE = {name: i for i, name in enumerate(END_REASONS)}
OPEN = -1
PHQ_RC = 6.0  # NHS TT reliable change for PHQ-9, used for the oracle outcome


@dataclass
class CourseResult:
    sessions: pd.DataFrame | None
    """One row per scheduled appointment (episode_index, slot, day, status, …)."""
    summary: pd.DataFrame
    """One row per episode: end day, end reason, attended count, first/last PHQ-9, …"""
    landmark_state: dict[str, np.ndarray] | None = None
    """Every episode's state at its landmark (when requested)."""


def _trajectory(k: np.ndarray, tau: float) -> np.ndarray:
    """Share of the full-course change achieved after k attended sessions."""
    return 1.0 - np.exp(-k / tau)


STATE = (
    "day",
    "landmark_day",
    "late_p",
    "late_g",
    "active",
    "end_code",
    "end_day",
    "n_att",
    "n_sched",
    "consec_miss",
    "quit_left",
    "barrier_prev",
    "hw_prev",
    "last_day",
    "ar_p",
    "ar_g",
    "phq_first",
    "phq_last",
    "phq_seen",
    "phq_seen_first",
    "n_phq",
    "modality",
    "ended_at_session",
)


def _init_state(
    ep: pd.DataFrame,
    consts: GeneratorConstants,
    extract: int,
    landmark_days: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Every episode before its first appointment (one array per state variable)."""
    n, c = len(ep), consts
    day = ep["first_day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return {
        "day": day,
        "landmark_day": day + landmark_days,
        "late_p": np.zeros(n),  # late change realised so far (PHQ-9, GAD-7 points)
        "late_g": np.zeros(n),
        "active": day <= extract,
        "end_code": np.full(n, END_CODE["still_open"], dtype=np.int64),
        "end_day": np.full(n, OPEN, dtype=np.int64),
        "n_att": np.zeros(n, dtype=np.int64),
        "n_sched": np.zeros(n, dtype=np.int64),
        "consec_miss": np.zeros(n, dtype=np.int64),
        "quit_left": np.zeros(n, dtype=np.int64),  # forced no-shows left before discharge
        "barrier_prev": np.zeros(n, dtype=bool),
        "hw_prev": np.zeros(n, dtype=bool),
        "last_day": np.full(n, OPEN, dtype=np.int64),
        "ar_p": rng.standard_normal(n) * c.phq_noise_sd,
        "ar_g": rng.standard_normal(n) * c.gad_noise_sd,
        "phq_first": np.full(n, np.nan),
        "phq_last": np.full(n, np.nan),
        "phq_seen": np.full(n, np.nan),  # latest score the clinician saw (recorded or not)
        "phq_seen_first": np.full(n, np.nan),
        "n_phq": np.zeros(n, dtype=np.int64),
        "modality": ep["modality_main"].to_numpy().copy(),
        "ended_at_session": np.zeros(n, dtype=bool),  # ended by agreement at a session
    }


def tile_state(state: dict[str, np.ndarray], reps: int) -> dict[str, np.ndarray]:
    """``reps`` independent copies of every episode's state (for Monte Carlo continuation)."""
    return {k: np.tile(v, reps) for k, v in state.items()}


def _advance(
    ep: pd.DataFrame,
    state: dict[str, np.ndarray],
    consts: GeneratorConstants,
    effects: SyntheticEffects,
    extract: int,
    rng: np.random.Generator,
    collect: bool,
    stop_day: np.ndarray | float,
) -> list[dict[str, np.ndarray]]:
    """Run appointments until every episode has ended, reached the slot cap, the extract
    date, or its ``stop_day``. Updates ``state`` in place; returns the session records.

    Vectorised over episodes: each pass of the loop handles one appointment of every
    episode that is still running.
    """
    c = consts
    E = ep["latent_engagement"].to_numpy()
    A = ep["latent_alliance"].to_numpy()
    H = ep["latent_homework"].to_numpy()
    phq0 = ep["phq9_true_intake"].to_numpy()
    gad0 = ep["gad7_true_intake"].to_numpy()
    d_phq = ep["potential_change_phq9"].to_numpy()
    d_gad = ep["potential_change_gad7"].to_numpy()
    late_phq = ep["late_change_phq9"].to_numpy()
    late_gad = ep["late_change_gad7"].to_numpy()
    planned = ep["planned_sessions"].to_numpy()
    young = ep["young"].to_numpy()
    treat = ep["treatment_code"].to_numpy()
    u_att = ep["therapist_attendance"].to_numpy()
    expected_alliance_logit = (
        c.alliance_logit + c.alliance_loading * A + ep["therapist_alliance"].to_numpy()
    )
    expected_alliance = 40.0 * expit(expected_alliance_logit)
    p_measure = expit(c.measure_logit + c.measure_engagement * E)
    hw_assign = np.asarray(c.homework_assign_prob)[treat]
    minutes = np.asarray(c.session_minutes)[treat]
    episode_index = ep["episode_index"].to_numpy()
    (
        day,
        landmark_day,
        late_p,
        late_g,
        active,
        end_code,
        end_day,
        n_att,
        n_sched,
        consec_miss,
        quit_left,
        barrier_prev,
        hw_prev,
        last_day,
        ar_p,
        ar_g,
        phq_first,
        phq_last,
        phq_seen,
        phq_seen_first,
        n_phq,
        modality,
        ended_at_session,
    ) = (state[k] for k in STATE)
    records: list[dict[str, np.ndarray]] = []
    while True:
        idx = np.flatnonzero(active & (n_sched < c.max_slots) & (day < stop_day))
        future = day[idx] > extract
        active[idx[future]] = False  # still open at extract: nothing more is recorded
        idx = idx[~future]
        m = idx.size
        if m == 0:
            break
        e = E[idx]
        k_done = n_att[idx]
        true_change = d_phq[idx] * _trajectory(k_done, c.change_tau_sessions)

        # --- the client may quietly stop (dropout): the next appointment is a no-show (two with
        # probability quit_second_dna_prob), then discharge
        not_improving = (k_done >= 2) & (true_change < 2.0)
        quit_logit = (
            c.quit_logit
            - c.quit_engagement * e
            + c.quit_young * young[idx]
            + c.quit_no_improvement * not_improving
            + c.quit_after_dna * (consec_miss[idx] > 0)
        )
        starts_quitting = (quit_left[idx] == 0) & (rng.random(m) < expit(quit_logit))
        extra = rng.random(starts_quitting.sum()) < c.quit_second_dna_prob
        quit_left[idx[starts_quitting]] = 1 + extra
        quitting = quit_left[idx] > 0

        # --- what happens to this appointment
        first = n_sched[idx] == 0
        miss_shift = c.barrier_next_miss_shift * barrier_prev[idx]
        p_dna = expit(
            c.dna_logit + c.dna_first_shift * first - c.dna_engagement * e + u_att[idx] + miss_shift
        )
        p_cc = expit(c.cancel_client_logit - 0.3 * e + miss_shift) * ~first
        p_cs = expit(np.full(m, c.cancel_service_logit))
        u = rng.random(m)
        status = np.where(
            u < p_dna,
            DNA,
            np.where(
                u < p_dna + p_cc,
                CANCEL_CLIENT,
                np.where(u < p_dna + p_cc + p_cs, CANCEL_SERVICE, ATTENDED),
            ),
        )
        status = np.where(quitting, DNA, status)
        att = status == ATTENDED
        ia = idx[att]

        # --- attended: questionnaires, alliance, homework, agenda, barriers
        k_now = n_att[ia]  # sessions completed before this one
        share = _trajectory(k_now, c.change_tau_sessions)
        session_noise = rng.standard_normal(ia.size) * c.alliance_session_sd
        alliance = 40.0 * expit(expected_alliance_logit[ia] + session_noise)
        alliance_dev = alliance - expected_alliance[ia]
        rho = c.noise_ar
        z_p, z_own = rng.standard_normal((2, ia.size))
        z_g = c.noise_phq_gad_corr * z_p + np.sqrt(1 - c.noise_phq_gad_corr**2) * z_own
        ar_p[ia] = rho * ar_p[ia] + np.sqrt(1 - rho**2) * c.phq_noise_sd * z_p
        ar_g[ia] = rho * ar_g[ia] + np.sqrt(1 - rho**2) * c.gad_noise_sd * z_g
        within = effects.alliance_within_effect * alliance_dev
        # Late change moves in only at sessions after the landmark.
        late = day[ia] >= landmark_day[ia]
        rate = c.late_change_rate * late
        late_p[ia] += rate * (late_phq[ia] - late_p[ia])
        late_g[ia] += rate * (late_gad[ia] - late_g[ia])
        phq = np.clip(
            np.round(phq0[ia] - d_phq[ia] * share - late_p[ia] + ar_p[ia] - within), 0, 27
        )
        gad = np.clip(
            np.round(gad0[ia] - d_gad[ia] * share - late_g[ia] + ar_g[ia] - 0.8 * within), 0, 21
        )
        phq_seen[ia] = phq
        phq_seen_first[ia] = np.where(k_now == 0, phq, phq_seen_first[ia])
        p_meas = np.where(k_now == 0, c.baseline_measure_prob, p_measure[ia])
        measured = rng.random(ia.size) < p_meas
        im = ia[measured]
        phq_first[im] = np.where(np.isnan(phq_first[im]), phq[measured], phq_first[im])
        phq_last[im] = phq[measured]
        n_phq[im] += 1

        if collect:
            hw_given = rng.random(ia.size) < hw_assign[ia]
            hw_latent = c.homework_loading * H[ia] + rng.standard_normal(ia.size)
            hw_done = np.where(hw_latent > 0.3, 2, np.where(hw_latent > -0.8, 1, 0))
            hw_done = np.where(hw_prev[ia], hw_done, -1)
            hw_prev[ia] = hw_given
            agenda_latent = 0.8 * A[ia] + rng.standard_normal(ia.size)
            agenda = np.where(agenda_latent > 1.2, 0, np.where(agenda_latent > -0.5, 1, 2))
            has_barrier = rng.random(ia.size) < expit(
                c.barrier_logit - c.barrier_engagement * E[ia]
            )
            barrier_kind = 1 + rng.choice(len(BARRIERS) - 1, ia.size, p=c.barrier_probs)
            barrier = np.where(has_barrier, barrier_kind, 0)
        else:
            has_barrier = rng.random(ia.size) < expit(
                c.barrier_logit - c.barrier_engagement * E[ia]
            )
        barrier_prev[idx] = False
        barrier_prev[ia] = has_barrier

        if collect:
            switch = rng.random(m) < 0.08
            modality[idx[switch]] = rng.integers(0, len(MODALITIES), switch.sum())
            cancelled = (status == CANCEL_CLIENT) | (status == CANCEL_SERVICE)
            notice = np.where(
                status == CANCEL_CLIENT,
                rng.lognormal(np.log(30) + c.late_notice_engagement * e, 1.0),
                rng.lognormal(np.log(72), 0.7),
            )
            rec = {
                "episode_index": episode_index[idx],
                "slot": n_sched[idx].copy(),
                "day": day[idx].copy(),
                "status": status,
                "notice_hours": np.where(cancelled, np.round(notice, 1), np.nan),
                "modality": modality[idx].copy(),
                "duration_min": np.where(att, 0, -1),
                "alliance": np.full(m, np.nan),
                "agenda": np.full(m, -1),
                "hw_assigned": np.full(m, -1),
                "hw_completed": np.full(m, -1),
                "barrier": np.full(m, -1),
                "phq": np.full(m, np.nan),
                "gad": np.full(m, np.nan),
                "sessions_before": n_att[idx].copy(),
            }
            rec["duration_min"][att] = minutes[ia] + rng.integers(-5, 6, ia.size)
            rec["alliance"][att] = np.where(
                measured | (rng.random(ia.size) < 0.5), np.round(alliance, 1), np.nan
            )
            rec["agenda"][att] = agenda
            rec["hw_assigned"][att] = hw_given
            rec["hw_completed"][att] = hw_done
            rec["barrier"][att] = barrier
            rec["phq"][att] = np.where(measured, phq, np.nan)
            rec["gad"][att] = np.where(measured, gad, np.nan)
            records.append(rec)

        # --- bookkeeping and endings
        n_att[ia] += 1
        n_sched[idx] += 1
        last_day[idx] = day[idx]
        consec_miss[idx] = np.where(att, 0, consec_miss[idx] + (status == DNA))
        quit_left[idx] = np.where(quitting, quit_left[idx] - 1, quit_left[idx])

        ended_quit = quitting & (quit_left[idx] == 0)
        declined = ended_quit & (n_att[idx] == 0) & (rng.random(m) < c.quit_declined_share)
        code = np.where(
            ended_quit, np.where(declined, END_CODE["declined"], END_CODE["dropped_out"]), OPEN
        )

        k = n_att[ia]
        # Good-enough level: endings follow the scores the clinician sees (lit. §5).
        seen_gain = phq_seen_first[ia] - phq_seen[ia]
        good_enough = (phq_seen[ia] < 10) & (seen_gain >= c.gel_gain_points) & (k >= 2)
        p_complete = np.where(
            k >= planned[ia],
            1.0,
            np.where(good_enough, c.gel_end_hazard, c.agreed_end_hazard * (k >= 2)),
        )
        stuck = (k >= 6) & (seen_gain < 3)
        p_refer = np.where(stuck, c.stepped_up_hazard, c.referred_on_hazard)
        u_end = rng.random(ia.size)
        att_code = np.select(
            [
                u_end < p_complete,
                u_end < p_complete + p_refer,
                u_end < p_complete + p_refer + c.moved_away_hazard,
                u_end < p_complete + p_refer + c.moved_away_hazard + c.other_end_hazard,
            ],
            [
                END_CODE["completed"],
                END_CODE["referred_on"],
                END_CODE["moved_away"],
                END_CODE["other"],
            ],
            OPEN,
        )
        # Some clients who have improved enough stop coming instead of agreeing an ending
        # (unilateral termination after improvement): the next appointment is a no-show and
        # the episode is discharged as a dropout (lit. §12: 33% of finished courses end
        # unilaterally in NHS TT). Reuses u_end: a fixed share of good-enough endings.
        gel_stop = (
            good_enough & (k < planned[ia]) & (u_end < c.gel_end_hazard * c.gel_unilateral_share)
        )
        att_code[gel_stop] = OPEN
        quit_left[ia[gel_stop]] = 1
        code[att] = np.where(quitting[att], code[att], att_code)
        ended_at_session[ia] = att_code != OPEN
        ending = code != OPEN
        ie = idx[ending]
        end_code[ie] = code[ending]
        lag = np.where(code[ending] == END_CODE["dropped_out"], c.dropout_discharge_days, 0)
        end_day[ie] = day[ie] + lag
        active[ie] = False

        # --- next appointment: weekly after attendance, rebooked sooner after a miss
        gap = np.where(
            att,
            rng.integers(c.gap_attended_days[0], c.gap_attended_days[1] + 1, m),
            rng.integers(c.gap_missed_days[0], c.gap_missed_days[1] + 1, m),
        )
        day[idx] = day[idx] + gap

    return records


def _finish(ep: pd.DataFrame, state: dict[str, np.ndarray], extract: int) -> pd.DataFrame:
    """Close the books: courses at the slot cap end by agreement; endings after the extract
    are not yet known (still open). Returns one summary row per episode."""
    active, last_day = state["active"], state["last_day"]
    end_code, end_day = state["end_code"].copy(), state["end_day"].copy()
    capped = active & (last_day != OPEN)
    end_code[capped] = END_CODE["completed"]
    end_day[capped] = last_day[capped]
    late = end_day > extract
    end_code[late] = END_CODE["still_open"]
    end_day[late] = OPEN
    return pd.DataFrame(
        {
            "episode_index": ep["episode_index"].to_numpy(),
            "end_code": end_code,
            "end_day": end_day,
            "n_attended": state["n_att"],
            "phq9_first": state["phq_first"],
            "phq9_last": state["phq_last"],
            "n_phq9": state["n_phq"],
            "phq9_first_complete": state["phq_seen_first"],
            "phq9_last_complete": state["phq_seen"],
            "ended_at_session": state["ended_at_session"] & (end_code != END_CODE["still_open"]),
        }
    )


def simulate_courses(
    ep: pd.DataFrame,
    consts: GeneratorConstants,
    effects: SyntheticEffects,
    extract_day: np.datetime64,
    rng: np.random.Generator,
    collect: bool = True,
    landmark_days: int = 42,
) -> CourseResult:
    """Simulate every episode in ``ep`` (output of ``draw_episodes``); never mutates ``ep``.

    The course runs in two phases — up to each episode's landmark (first scheduled
    appointment + ``landmark_days``), then to the end — and the state at the landmark is
    returned too, so that the landmark oracle can continue it many times.
    """
    extract = extract_day.astype("datetime64[D]").astype(np.int64)
    state = _init_state(ep, consts, extract, landmark_days, rng)
    records = _advance(ep, state, consts, effects, extract, rng, collect, state["landmark_day"])
    landmark_state = {k: v.copy() for k, v in state.items()}
    records += _advance(ep, state, consts, effects, extract, rng, collect, np.inf)
    summary = _finish(ep, state, extract)
    sessions = None
    if collect and records:
        sessions = pd.DataFrame(
            {key: np.concatenate([r[key] for r in records]) for key in records[0]}
        )
        sessions = sessions[sessions["day"] <= extract]
        sessions = sessions.sort_values(["episode_index", "slot"], kind="stable", ignore_index=True)
    return CourseResult(sessions=sessions, summary=summary, landmark_state=landmark_state)


def continue_courses(
    ep: pd.DataFrame,
    state: dict[str, np.ndarray],
    consts: GeneratorConstants,
    effects: SyntheticEffects,
    extract_day: np.datetime64,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Continue courses from a saved state (copied, not mutated) to the end; summary only."""
    extract = extract_day.astype("datetime64[D]").astype(np.int64)
    state = {k: v.copy() for k, v in state.items()}
    _advance(ep, state, consts, effects, extract, rng, False, np.inf)
    return _finish(ep, state, extract)


def poor_outcome_complete(summary: pd.DataFrame) -> pd.Series:
    """Poor outcome had every questionnaire been completed: not reliably improved from the
    first to the last attended session's PHQ-9 (recorded or not), among ≥ 2 attended."""
    poor = (summary["phq9_first_complete"] - summary["phq9_last_complete"]) < PHQ_RC
    return poor.astype(float).where(summary["n_attended"] >= 2)


def poor_outcome_observed(summary: pd.DataFrame) -> pd.Series:
    """Default poor outcome: not reliably improved on PHQ-9 (first vs last), among ≥ 2 scores."""
    eligible = summary["n_phq9"] >= 2
    poor = (summary["phq9_first"] - summary["phq9_last"]) < PHQ_RC
    return poor.astype(float).where(eligible)
