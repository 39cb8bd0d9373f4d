"""Episode-level covariates and latent traits of the synthetic cohort (one row per episode)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.config import SyntheticEffects, SyntheticParams
from pipeline.contract import AGE_BANDS, GENDERS, MODALITIES, PRESENTING_PROBLEMS
from pipeline.synthetic.constants import GeneratorConstants


def make_ids(prefix: str, n: int, width: int = 4) -> np.ndarray:
    """Pseudonymous tokens ``<prefix><zero-padded number>``, e.g. ``th0001``."""
    width = max(width, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def response_share(index: np.ndarray, consts: GeneratorConstants) -> np.ndarray:
    """Share of the intake score lost over a full course, from the response index.

    A steep logistic of the index (in PHQ-9-point units) separates non-responders (share
    near ``response_min``, negative = deterioration) from responders (near
    ``response_max``), reproducing the distinct trajectory classes of routine care
    (lit. §9: no change / gradual / fast improvement) and the right-skewed end scores
    behind national recovery rates (lit. §7b).
    """
    lo, hi = consts.response_min, consts.response_max
    return lo + (hi - lo) * expit((index - consts.response_midpoint) / consts.response_scale)


def draw_therapists(
    params: SyntheticParams, consts: GeneratorConstants, rng: np.random.Generator
) -> pd.DataFrame:
    """Therapists with their random effects on change, attendance and alliance."""
    n_ther = max(3, -(-params.n_episodes // params.caseload_per_therapist))
    n_sites = max(1, -(-n_ther // params.therapists_per_site))
    return pd.DataFrame(
        {
            "therapist_id": make_ids("th", n_ther),
            "site_id": make_ids("site", n_sites, 2)[np.arange(n_ther) % n_sites],
            "therapist_change": rng.normal(0, params.effects.therapist_sd_change, n_ther),
            "therapist_attendance": rng.normal(0, consts.therapist_attendance_sd, n_ther),
            "therapist_alliance": rng.normal(0, consts.therapist_alliance_sd, n_ther),
        }
    )


def _client_of_episode(
    n_episodes: int, repeat_share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Client index per episode and the episode's order within its client (0 = first)."""
    n_repeat = round(n_episodes * repeat_share / (1 + repeat_share))
    n_clients = n_episodes - n_repeat
    repeaters = rng.choice(n_clients, size=n_repeat, replace=False)
    client = np.concatenate([np.arange(n_clients), repeaters])
    order = np.concatenate([np.zeros(n_clients, int), np.ones(n_repeat, int)])
    shuffle = rng.permutation(n_episodes)
    return client[shuffle], order[shuffle]


@dataclass(frozen=True)
class _Clients:
    """Which client each episode belongs to, and its order within the client (0 = first)."""

    client: np.ndarray
    order: np.ndarray
    n_clients: int


def _episode_days(
    params: SyntheticParams, consts: GeneratorConstants, clients: _Clients, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Referral and first-appointment dates. First episodes fall anywhere in the span; a
    client's second episode ≥ 180 days later; then a gamma-distributed wait."""
    n = clients.client.size
    span = params.referral_span_days
    extract = np.datetime64(params.extract_date, "D")
    start = extract - np.timedelta64(span, "D")
    first_offset = rng.integers(0, span - 14, clients.n_clients)
    offset = first_offset[clients.client] + clients.order * rng.integers(180, 420, n)
    offset = np.minimum(offset, span - 7)
    referral = start + offset.astype("timedelta64[D]")
    wait = np.ceil(rng.gamma(consts.wait_days_shape, consts.wait_days_scale, n)).astype(int)
    return referral, referral + wait.astype("timedelta64[D]")


def _case_mix(
    consts: GeneratorConstants, clients: _Clients, n_therapists: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Age band, gender (kept by a client across episodes), problem, treatment, planned
    sessions and therapist of every episode (as codes)."""
    client, n = clients.client, clients.client.size
    gender_client = rng.choice(len(GENDERS), clients.n_clients, p=consts.gender_probs)
    age_client = rng.choice(len(AGE_BANDS), clients.n_clients, p=consts.age_band_probs)
    problem = rng.choice(len(PRESENTING_PROBLEMS), n, p=consts.problem_probs)
    treatment = rng.choice(len(consts.treatments), n, p=consts.treatment_probs)
    planned = np.asarray(consts.planned_sessions)[treatment] + rng.integers(-2, 3, n)
    return {
        "age": age_client[client],
        "gender": gender_client[client],
        "young": age_client[client] <= 1,
        "problem": problem,
        "treatment": treatment,
        "planned": np.clip(planned, 4, 20),
        "therapist": rng.integers(0, n_therapists, n),
    }


def _intake_severity(
    consts: GeneratorConstants, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlated PHQ-9 / GAD-7 true scores at intake (lit. §7b, §9).

    Returns the PHQ-9 standard score ``z1`` (it also shifts engagement), PHQ-9 and GAD-7."""
    z1, z2 = rng.standard_normal((2, n))
    phq0 = consts.phq_mean + consts.phq_sd * z1
    r = consts.phq_gad_corr
    gad0 = consts.gad_mean + consts.gad_sd * (r * z1 + np.sqrt(1 - r * r) * z2)
    return z1, phq0, gad0


def _latent_traits(
    consts: GeneratorConstants,
    clients: _Clients,
    young: np.ndarray,
    z1: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Latent engagement E (SD 1): stable client trait + episode part + case mix; alliance,
    homework and goal-ownership propensities each load on E."""
    n = clients.client.size
    trait = rng.standard_normal(clients.n_clients)[clients.client]
    e_raw = np.sqrt(consts.trait_share) * trait + np.sqrt(1 - consts.trait_share) * (
        rng.standard_normal(n)
    )
    engagement = e_raw + consts.young_engagement_shift * young + consts.severity_on_engagement * z1
    engagement = (engagement - engagement.mean()) / engagement.std()
    lam = consts.component_loading

    def component() -> np.ndarray:
        return lam * engagement + np.sqrt(1 - lam * lam) * rng.standard_normal(n)

    alliance, homework, goals = component(), component(), component()
    return {"engagement": engagement, "alliance": alliance, "homework": homework, "goals": goals}


def _structural_index(
    consts: GeneratorConstants,
    eff: SyntheticEffects,
    phq0: np.ndarray,
    latent: dict[str, np.ndarray],
    therapist_change: np.ndarray,
) -> np.ndarray:
    """Structural response index: full-course change expected from intake, the planted
    effects of the latent traits, and the therapist."""
    return (
        consts.change_mean
        + consts.change_severity_slope * (phq0 - consts.phq_mean)
        + eff.alliance_on_change * latent["alliance"]
        + eff.homework_on_change * latent["homework"]
        + eff.goals_on_change * latent["goals"]
        + eff.engagement_on_change * latent["engagement"]
        + therapist_change
    )


def draw_episodes(
    params: SyntheticParams,
    consts: GeneratorConstants,
    therapists: pd.DataFrame,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Covariates, dates and latent traits for every episode (vectorised, no loops)."""
    n = params.n_episodes
    client, order = _client_of_episode(n, params.repeat_client_share, rng)
    clients = _Clients(client=client, order=order, n_clients=int(client.max() + 1))
    referral, first_day = _episode_days(params, consts, clients, rng)
    mix = _case_mix(consts, clients, len(therapists), rng)
    z1, phq0, gad0 = _intake_severity(consts, n, rng)
    latent = _latent_traits(consts, clients, mix["young"], z1, rng)
    ther = therapists.iloc[mix["therapist"]]
    therapist_change = ther["therapist_change"].to_numpy()
    frame = pd.DataFrame(
        {
            "episode_index": np.arange(n),
            "client_index": client,
            "therapist_index": mix["therapist"],
            "referral_day": referral,
            "first_day": first_day,
            "age_band": np.asarray(AGE_BANDS)[mix["age"]],
            "gender": np.asarray(GENDERS)[mix["gender"]],
            "presenting_problem": np.asarray(PRESENTING_PROBLEMS)[mix["problem"]],
            "treatment_code": mix["treatment"],
            "planned_sessions": mix["planned"],
            "young": mix["young"],
            "modality_main": rng.choice(len(MODALITIES), n, p=consts.modality_probs),
            "latent_engagement": latent["engagement"],
            "latent_alliance": latent["alliance"],
            "latent_homework": latent["homework"],
            "latent_goal_ownership": latent["goals"],
            "phq9_true_intake": phq0,
            "gad7_true_intake": gad0,
            "response_index_structural": _structural_index(
                consts, params.effects, phq0, latent, therapist_change
            ),
            "therapist_change": therapist_change,
            "therapist_attendance": ther["therapist_attendance"].to_numpy(),
            "therapist_alliance": ther["therapist_alliance"].to_numpy(),
        }
    )
    return draw_response(frame, consts, rng)


def draw_response(
    ep: pd.DataFrame, consts: GeneratorConstants, rng: np.random.Generator
) -> pd.DataFrame:
    """Add the idiosyncratic part of each episode's response and its full-course change,
    plus the late change that unfolds only after the landmark (with its sudden gains) and
    how fast the client's change comes (``change_tau_sessions``, sessions).

    Returns a new frame (never mutates ``ep``). The oracles re-draw these parts.
    """
    n = len(ep)
    structural = ep["response_index_structural"].to_numpy()
    eps = rng.standard_normal((2, n))
    rc = consts.gad_change_residual_corr
    index_phq = structural + consts.change_residual_sd * eps[0]
    index_gad = structural + consts.change_residual_sd * (
        rc * eps[0] + np.sqrt(1 - rc * rc) * eps[1]
    )
    late = rng.standard_normal((2, n))
    late_gad = rc * late[0] + np.sqrt(1 - rc * rc) * late[1]
    sudden_gain = consts.late_gain_points * (rng.random(n) < consts.late_gain_prob)
    tau = consts.change_tau_sessions * np.exp(consts.change_tau_log_sd * rng.standard_normal(n))
    # Late change follows the same traits (engagement matters throughout) plus its own
    # independent part, unknowable before the landmark.
    late_mean = consts.late_change_mean + consts.late_structural_weight * (
        structural - consts.change_mean
    )
    base_phq = consts.phq_mean + consts.change_intake_weight * (
        ep["phq9_true_intake"] - consts.phq_mean
    )
    base_gad = consts.gad_mean + consts.change_intake_weight * (
        ep["gad7_true_intake"] - consts.gad_mean
    )
    return ep.assign(
        late_change_phq9=late_mean + consts.late_change_sd * late[0] + sudden_gain,
        late_change_gad7=consts.gad_change_ratio
        * (late_mean + consts.late_change_sd * late_gad + sudden_gain),
        change_tau_sessions=tau,
        response_index_phq9=index_phq,
        response_index_gad7=index_gad,
        potential_change_phq9=response_share(index_phq, consts) * base_phq,
        potential_change_gad7=response_share(index_gad, consts) * base_gad,
    )
