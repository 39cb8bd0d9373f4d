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
from pipeline.instruments import get_instrument
from pipeline.synthetic.constants import GeneratorConstants

ATTENDED, DNA, CANCEL_CLIENT, CANCEL_SERVICE = 0, 1, 2, 3
END_CODE = {name: i for i, name in enumerate(END_REASONS)}
OPEN = -1
PHQ9 = get_instrument("PHQ-9")
GAD7 = get_instrument("GAD-7")
PHQ_RC = PHQ9.reliable_change  # NHS TT reliable change for PHQ-9, used for the oracle outcome
SRS_MAX = 40.0  # session alliance on the SRS scale, 0–40


@dataclass
class CourseResult:
    sessions: pd.DataFrame | None
    """One row per scheduled appointment (episode_index, slot, day, status, …)."""
    summary: pd.DataFrame
    """One row per episode: end day, end reason, attended count, first/last PHQ-9, …"""
    landmark_state: dict[str, np.ndarray]
    """Every episode's state at its landmark."""


def _trajectory(k: np.ndarray, tau: np.ndarray) -> np.ndarray:
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


@dataclass(frozen=True)
class CourseModel:
    """What drives every course: the generator constants and the planted effects."""

    consts: GeneratorConstants
    effects: SyntheticEffects


@dataclass(frozen=True)
class _Pass:
    """One run of the slot loop: the model, the extract day (days since epoch), and whether
    session records are collected (False: summaries only, fewer random draws)."""

    model: CourseModel
    extract: int
    collect: bool


@dataclass(frozen=True)
class _Inputs:
    """Per-episode arrays the slot loop reads (never written)."""

    E: np.ndarray
    A: np.ndarray
    H: np.ndarray
    phq0: np.ndarray
    gad0: np.ndarray
    d_phq: np.ndarray
    d_gad: np.ndarray
    late_phq: np.ndarray
    late_gad: np.ndarray
    tau: np.ndarray
    planned: np.ndarray
    young: np.ndarray
    u_att: np.ndarray
    expected_alliance_logit: np.ndarray
    expected_alliance: np.ndarray
    p_measure: np.ndarray
    hw_assign: np.ndarray
    minutes: np.ndarray
    episode_index: np.ndarray


def _inputs(ep: pd.DataFrame, c: GeneratorConstants) -> _Inputs:
    """Read the episode frame once: latent traits, intake, change and therapist effects."""
    E = ep["latent_engagement"].to_numpy()
    A = ep["latent_alliance"].to_numpy()
    treat = ep["treatment_code"].to_numpy()
    expected_alliance_logit = (
        c.alliance_logit + c.alliance_loading * A + ep["therapist_alliance"].to_numpy()
    )
    return _Inputs(
        E=E,
        A=A,
        H=ep["latent_homework"].to_numpy(),
        phq0=ep["phq9_true_intake"].to_numpy(),
        gad0=ep["gad7_true_intake"].to_numpy(),
        d_phq=ep["potential_change_phq9"].to_numpy(),
        d_gad=ep["potential_change_gad7"].to_numpy(),
        late_phq=ep["late_change_phq9"].to_numpy(),
        late_gad=ep["late_change_gad7"].to_numpy(),
        tau=ep["change_tau_sessions"].to_numpy(),
        planned=ep["planned_sessions"].to_numpy(),
        young=ep["young"].to_numpy(),
        u_att=ep["therapist_attendance"].to_numpy(),
        expected_alliance_logit=expected_alliance_logit,
        expected_alliance=SRS_MAX * expit(expected_alliance_logit),
        p_measure=expit(c.measure_logit + c.measure_engagement * E),
        hw_assign=np.asarray(c.homework_assign_prob)[treat],
        minutes=np.asarray(c.session_minutes)[treat],
        episode_index=ep["episode_index"].to_numpy(),
    )


@dataclass(frozen=True)
class _Slot:
    """The appointments of one pass of the loop: who is seen, and what happened."""

    idx: np.ndarray
    """Positions of the episodes with an appointment at this slot."""
    e: np.ndarray
    """Their latent engagement."""
    quitting: np.ndarray
    status: np.ndarray
    att: np.ndarray
    """Attended (aligned with ``idx``)."""
    ia: np.ndarray
    """Positions of the episodes that attended."""


@dataclass(frozen=True)
class _Scores:
    """What an attended session yields for the clinician (aligned with ``ia``)."""

    alliance: np.ndarray
    phq: np.ndarray
    gad: np.ndarray
    measured: np.ndarray


@dataclass(frozen=True)
class _Content:
    """Homework, agenda and barrier records of attended sessions (aligned with ``ia``)."""

    hw_given: np.ndarray
    hw_done: np.ndarray
    agenda: np.ndarray
    barrier: np.ndarray


def _due(
    state: dict[str, np.ndarray], c: GeneratorConstants, extract: int, stop_day: np.ndarray | float
) -> np.ndarray:
    """Episodes with an appointment now; those whose next one is after the extract stop
    (still open at extract: nothing more is recorded)."""
    active, day = state["active"], state["day"]
    idx = np.flatnonzero(active & (state["n_sched"] < c.max_slots) & (day < stop_day))
    future = day[idx] > extract
    active[idx[future]] = False
    return idx[~future]


def _quitting(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    idx: np.ndarray,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> np.ndarray:
    """The client may quietly stop (dropout): the next appointment is a no-show (two with
    probability quit_second_dna_prob), then discharge. Returns who is quitting."""
    quit_left, m = state["quit_left"], idx.size
    k_done = state["n_att"][idx]
    true_change = inp.d_phq[idx] * _trajectory(k_done, inp.tau[idx])
    not_improving = (k_done >= 2) & (true_change < 2.0)
    quit_logit = (
        c.quit_logit
        - c.quit_engagement * inp.E[idx]
        + c.quit_young * inp.young[idx]
        + c.quit_no_improvement * not_improving
        + c.quit_after_dna * (state["consec_miss"][idx] > 0)
    )
    starts_quitting = (quit_left[idx] == 0) & (rng.random(m) < expit(quit_logit))
    extra = rng.random(starts_quitting.sum()) < c.quit_second_dna_prob
    quit_left[idx[starts_quitting]] = 1 + extra
    return quit_left[idx] > 0


def _slot(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    idx: np.ndarray,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> _Slot:
    """What happens to this appointment: attended, no-show, or cancelled by either side."""
    m, e = idx.size, inp.E[idx]
    quitting = _quitting(inp, state, idx, c, rng)
    first = state["n_sched"][idx] == 0
    miss_shift = c.barrier_next_miss_shift * state["barrier_prev"][idx]
    p_dna = expit(
        c.dna_logit + c.dna_first_shift * first - c.dna_engagement * e + inp.u_att[idx] + miss_shift
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
    return _Slot(idx=idx, e=e, quitting=quitting, status=status, att=att, ia=idx[att])


def _attended_scores(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    ia: np.ndarray,
    model: CourseModel,
    rng: np.random.Generator,
) -> _Scores:
    """Alliance and true-plus-noise PHQ-9/GAD-7 at attended sessions; updates the AR noise,
    the late change realised so far and the scores the clinician has seen."""
    c, s = model.consts, state
    k_now = s["n_att"][ia]  # sessions completed before this one
    share = _trajectory(k_now, inp.tau[ia])
    session_noise = rng.standard_normal(ia.size) * c.alliance_session_sd
    alliance = SRS_MAX * expit(inp.expected_alliance_logit[ia] + session_noise)
    alliance_dev = alliance - inp.expected_alliance[ia]
    rho = c.noise_ar
    z_p, z_own = rng.standard_normal((2, ia.size))
    z_g = c.noise_phq_gad_corr * z_p + np.sqrt(1 - c.noise_phq_gad_corr**2) * z_own
    s["ar_p"][ia] = rho * s["ar_p"][ia] + np.sqrt(1 - rho**2) * c.phq_noise_sd * z_p
    s["ar_g"][ia] = rho * s["ar_g"][ia] + np.sqrt(1 - rho**2) * c.gad_noise_sd * z_g
    within = model.effects.alliance_within_effect * alliance_dev
    # Late change moves in only at sessions after the landmark.
    late = s["day"][ia] >= s["landmark_day"][ia]
    rate = c.late_change_rate * late
    s["late_p"][ia] += rate * (inp.late_phq[ia] - s["late_p"][ia])
    s["late_g"][ia] += rate * (inp.late_gad[ia] - s["late_g"][ia])
    phq = np.clip(
        np.round(inp.phq0[ia] - inp.d_phq[ia] * share - s["late_p"][ia] + s["ar_p"][ia] - within),
        PHQ9.minimum,
        PHQ9.maximum,
    )
    gad = np.clip(
        np.round(
            inp.gad0[ia] - inp.d_gad[ia] * share - s["late_g"][ia] + s["ar_g"][ia] - 0.8 * within
        ),
        GAD7.minimum,
        GAD7.maximum,
    )
    measured = _record_phq(inp, state, ia, phq, c, rng)
    return _Scores(alliance=alliance, phq=phq, gad=gad, measured=measured)


def _record_phq(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    ia: np.ndarray,
    phq: np.ndarray,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> np.ndarray:
    """Keep the PHQ-9 the clinician saw, draw which questionnaires are recorded (missing
    more among the disengaged) and update first/last recorded scores. Returns ``measured``."""
    s = state
    k_now = s["n_att"][ia]
    s["phq_seen"][ia] = phq
    s["phq_seen_first"][ia] = np.where(k_now == 0, phq, s["phq_seen_first"][ia])
    p_meas = np.where(k_now == 0, c.baseline_measure_prob, inp.p_measure[ia])
    measured = rng.random(ia.size) < p_meas
    im = ia[measured]
    phq_first = s["phq_first"]
    phq_first[im] = np.where(np.isnan(phq_first[im]), phq[measured], phq_first[im])
    s["phq_last"][im] = phq[measured]
    s["n_phq"][im] += 1
    return measured


def _barriers(
    inp: _Inputs, ia: np.ndarray, c: GeneratorConstants, rng: np.random.Generator
) -> np.ndarray:
    """Whether a barrier is reported at each attended session (less engaged: more often)."""
    return rng.random(ia.size) < expit(c.barrier_logit - c.barrier_engagement * inp.E[ia])


def _session_content(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    ia: np.ndarray,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> tuple[_Content, np.ndarray]:
    """Homework (completion is recorded only when homework was set last time), agenda and
    barrier of every attended session. Returns the content and who had a barrier."""
    hw_prev = state["hw_prev"]
    hw_given = rng.random(ia.size) < inp.hw_assign[ia]
    hw_latent = c.homework_loading * inp.H[ia] + rng.standard_normal(ia.size)
    hw_done = np.where(hw_latent > 0.3, 2, np.where(hw_latent > -0.8, 1, 0))
    hw_done = np.where(hw_prev[ia], hw_done, -1)
    hw_prev[ia] = hw_given
    agenda_latent = 0.8 * inp.A[ia] + rng.standard_normal(ia.size)
    agenda = np.where(agenda_latent > 1.2, 0, np.where(agenda_latent > -0.5, 1, 2))
    has_barrier = _barriers(inp, ia, c, rng)
    barrier_kind = 1 + rng.choice(len(BARRIERS) - 1, ia.size, p=c.barrier_probs)
    barrier = np.where(has_barrier, barrier_kind, 0)
    content = _Content(hw_given=hw_given, hw_done=hw_done, agenda=agenda, barrier=barrier)
    return content, has_barrier


def _appointment_record(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    slot: _Slot,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """One record per appointment at this slot: modality (switched now and then), status,
    cancellation notice; the attended-only fields are left empty for ``_fill_attended``."""
    idx, att, status, m = slot.idx, slot.att, slot.status, slot.idx.size
    modality = state["modality"]
    switch = rng.random(m) < 0.08
    modality[idx[switch]] = rng.integers(0, len(MODALITIES), switch.sum())
    cancelled = (status == CANCEL_CLIENT) | (status == CANCEL_SERVICE)
    notice = np.where(
        status == CANCEL_CLIENT,
        rng.lognormal(np.log(30) + c.late_notice_engagement * slot.e, 1.0),
        rng.lognormal(np.log(72), 0.7),
    )
    return {
        "episode_index": inp.episode_index[idx],
        "slot": state["n_sched"][idx].copy(),
        "day": state["day"][idx].copy(),
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
        "sessions_before": state["n_att"][idx].copy(),
    }


def _fill_attended(
    rec: dict[str, np.ndarray],
    inp: _Inputs,
    slot: _Slot,
    scores: _Scores,
    content: _Content,
    rng: np.random.Generator,
) -> None:
    """Write the attended sessions' duration, alliance (kept with the questionnaires, else
    half the time), content and recorded scores into ``rec``."""
    att, ia = slot.att, slot.ia
    rec["duration_min"][att] = inp.minutes[ia] + rng.integers(-5, 6, ia.size)
    rec["alliance"][att] = np.where(
        scores.measured | (rng.random(ia.size) < 0.5), np.round(scores.alliance, 1), np.nan
    )
    rec["agenda"][att] = content.agenda
    rec["hw_assigned"][att] = content.hw_given
    rec["hw_completed"][att] = content.hw_done
    rec["barrier"][att] = content.barrier
    rec["phq"][att] = np.where(scores.measured, scores.phq, np.nan)
    rec["gad"][att] = np.where(scores.measured, scores.gad, np.nan)


def _book_keep(state: dict[str, np.ndarray], slot: _Slot) -> None:
    """Count attended and scheduled appointments, consecutive no-shows, forced no-shows left."""
    idx, att, s = slot.idx, slot.att, state
    s["n_att"][slot.ia] += 1
    s["n_sched"][idx] += 1
    s["last_day"][idx] = s["day"][idx]
    s["consec_miss"][idx] = np.where(att, 0, s["consec_miss"][idx] + (slot.status == DNA))
    quit_left = s["quit_left"]
    quit_left[idx] = np.where(slot.quitting, quit_left[idx] - 1, quit_left[idx])


def _quit_endings(
    state: dict[str, np.ndarray], slot: _Slot, c: GeneratorConstants, rng: np.random.Generator
) -> np.ndarray:
    """End code per appointment for clients who quit (declined if never attended), else OPEN."""
    ended_quit = slot.quitting & (state["quit_left"][slot.idx] == 0)
    declined = (
        ended_quit
        & (state["n_att"][slot.idx] == 0)
        & (rng.random(slot.idx.size) < c.quit_declined_share)
    )
    return np.where(
        ended_quit, np.where(declined, END_CODE["declined"], END_CODE["dropped_out"]), OPEN
    )


def _session_endings(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    ia: np.ndarray,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> np.ndarray:
    """End code per attended session (OPEN: the course goes on). Clients who improve enough
    may instead stop coming: they are set up for one no-show, then dropout discharge."""
    k = state["n_att"][ia]
    # Good-enough level: endings follow the scores the clinician sees (lit. §5).
    seen_gain = state["phq_seen_first"][ia] - state["phq_seen"][ia]
    good_enough = (
        (state["phq_seen"][ia] < PHQ9.caseness) & (seen_gain >= c.gel_gain_points) & (k >= 2)
    )
    p_complete = np.where(
        k >= inp.planned[ia],
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
        good_enough & (k < inp.planned[ia]) & (u_end < c.gel_end_hazard * c.gel_unilateral_share)
    )
    att_code[gel_stop] = OPEN
    state["quit_left"][ia[gel_stop]] = 1
    return att_code


def _end_courses(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    slot: _Slot,
    c: GeneratorConstants,
    rng: np.random.Generator,
) -> None:
    """Close the episodes that end at this slot (quit, completed, referred on, …)."""
    idx, att = slot.idx, slot.att
    code = _quit_endings(state, slot, c, rng)
    att_code = _session_endings(inp, state, slot.ia, c, rng)
    code[att] = np.where(slot.quitting[att], code[att], att_code)
    state["ended_at_session"][slot.ia] = att_code != OPEN
    ending = code != OPEN
    ie = idx[ending]
    state["end_code"][ie] = code[ending]
    lag = np.where(code[ending] == END_CODE["dropped_out"], c.dropout_discharge_days, 0)
    state["end_day"][ie] = state["day"][ie] + lag
    state["active"][ie] = False


def _book_next(
    state: dict[str, np.ndarray], slot: _Slot, c: GeneratorConstants, rng: np.random.Generator
) -> None:
    """Next appointment: weekly after attendance, rebooked sooner after a miss."""
    m, day = slot.idx.size, state["day"]
    gap = np.where(
        slot.att,
        rng.integers(c.gap_attended_days[0], c.gap_attended_days[1] + 1, m),
        rng.integers(c.gap_missed_days[0], c.gap_missed_days[1] + 1, m),
    )
    day[slot.idx] = day[slot.idx] + gap


def _remember_barriers(state: dict[str, np.ndarray], slot: _Slot, has_barrier: np.ndarray) -> None:
    """A barrier reported at this session raises the chance of missing the next one."""
    state["barrier_prev"][slot.idx] = False
    state["barrier_prev"][slot.ia] = has_barrier


def _run_slot(
    inp: _Inputs, state: dict[str, np.ndarray], slot: _Slot, run: _Pass, rng: np.random.Generator
) -> dict[str, np.ndarray] | None:
    """Everything that follows one slot's appointments; returns its records if collected."""
    c, ia = run.model.consts, slot.ia
    scores = _attended_scores(inp, state, ia, run.model, rng)
    rec = None
    if run.collect:
        content, has_barrier = _session_content(inp, state, ia, c, rng)
        _remember_barriers(state, slot, has_barrier)
        rec = _appointment_record(inp, state, slot, c, rng)
        _fill_attended(rec, inp, slot, scores, content, rng)
    else:
        _remember_barriers(state, slot, _barriers(inp, ia, c, rng))
    _book_keep(state, slot)
    _end_courses(inp, state, slot, c, rng)
    _book_next(state, slot, c, rng)
    return rec


def _advance(
    inp: _Inputs,
    state: dict[str, np.ndarray],
    run: _Pass,
    rng: np.random.Generator,
    stop_day: np.ndarray | float,
) -> list[dict[str, np.ndarray]]:
    """Run appointments until every episode has ended, reached the slot cap, the extract
    date, or its ``stop_day``. Updates ``state`` in place; returns the session records.

    Vectorised over episodes: each pass of the loop handles one appointment of every
    episode that is still running.
    """
    c = run.model.consts
    records: list[dict[str, np.ndarray]] = []
    while True:
        idx = _due(state, c, run.extract, stop_day)
        if idx.size == 0:
            break
        slot = _slot(inp, state, idx, c, rng)
        rec = _run_slot(inp, state, slot, run, rng)
        if rec is not None:
            records.append(rec)
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
    model: CourseModel,
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
    state = _init_state(ep, model.consts, extract, landmark_days, rng)
    inp, run = _inputs(ep, model.consts), _Pass(model, int(extract), collect)
    records = _advance(inp, state, run, rng, state["landmark_day"])
    landmark_state = {k: v.copy() for k, v in state.items()}
    records += _advance(inp, state, run, rng, np.inf)
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
    model: CourseModel,
    extract_day: np.datetime64,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Continue courses from a saved state (copied, not mutated) to the end; summary only."""
    extract = extract_day.astype("datetime64[D]").astype(np.int64)
    state = {k: v.copy() for k, v in state.items()}
    _advance(_inputs(ep, model.consts), state, _Pass(model, int(extract), False), rng, np.inf)
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
