"""Calibration constants of the synthetic cohort, each traced to the literature notes.

``docs/literature.md`` holds the published figures (section numbers below, "lit. §N").
Constants without a published anchor are marked "design choice" and were tuned so that the
default cohort meets the targets listed in ``docs/calibration.md``; the calibration test
fails if a change to any constant moves the cohort off a target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratorConstants:
    # --- case mix (design choice; routine-care-like shares) -----------------------------
    age_band_probs: tuple[float, ...] = (0.03, 0.17, 0.25, 0.19, 0.16, 0.12, 0.08)
    gender_probs: tuple[float, ...] = (0.64, 0.33, 0.01, 0.005, 0.015)
    problem_probs: tuple[float, ...] = (0.30, 0.28, 0.24, 0.08, 0.05, 0.05)
    treatments: tuple[str, ...] = ("CBT", "guided_self_help", "counselling", "IPT")
    treatment_probs: tuple[float, ...] = (0.45, 0.30, 0.15, 0.10)
    planned_sessions: tuple[int, ...] = (12, 6, 8, 12)
    homework_assign_prob: tuple[float, ...] = (0.85, 0.9, 0.2, 0.45)
    session_minutes: tuple[int, ...] = (55, 30, 50, 50)
    modality_probs: tuple[float, ...] = (0.45, 0.25, 0.25, 0.05)

    # --- waiting and scheduling (design choice; lit. §7b: ~90% seen within 6 weeks) -----
    wait_days_shape: float = 2.0
    wait_days_scale: float = 10.0

    # Next appointment: weekly to fortnightly after attendance, rebooked sooner after a miss
    # (design choice; completers average almost seven sessions over about three months).
    gap_attended_days: tuple[int, int] = (7, 16)
    gap_missed_days: tuple[int, int] = (4, 10)

    # --- baseline severity (lit. §7b/§9: PHQ-9 15.4 (5.5), GAD-7 14.0 (4.5)) -----------
    phq_mean: float = 15.4
    phq_sd: float = 5.3
    gad_mean: float = 13.6
    gad_sd: float = 4.4
    phq_gad_corr: float = 0.65  # design choice: PHQ-9 and GAD-7 correlate strongly
    severity_on_engagement: float = -0.10  # more severe → slightly less engaged (lit. §4)

    # --- latent engagement structure (design choice) -----------------------------------
    trait_share: float = 0.6  # share of engagement variance stable across a client's episodes
    component_loading: float = 0.5  # corr of alliance/homework/goal propensities with E
    young_engagement_shift: float = -0.3  # younger clients engage less, drop out more (lit. §4)

    # --- symptom change (lit. §9: decelerating, ≈6 PHQ-9 points over a course) ----------
    # Recalibrated (issue 17) so that prediction from the early window is as hard as
    # published models find (lit. §10: AUC ≈ .60–.75): less of the change is fixed by the
    # traits, more comes late and unannounced (late gains), and clients differ in pace.
    change_mean: float = 6.0
    change_severity_slope: float = 0.35  # higher intake → more room to improve
    change_residual_sd: float = 1.0
    gad_change_ratio: float = 0.85
    gad_change_residual_corr: float = 0.85
    response_min: float = 0.0
    response_max: float = 0.92
    response_midpoint: float = 5.0
    response_scale: float = 2.5
    # Late change: sudden gains or losses after the landmark (a depression class that changed
    # little until session 6, then improved; lit. §9), independent of everything before.
    late_change_mean: float = -2.0  # before late gains: on average 0.5 × 14 − 2 = +5 points
    late_change_sd: float = 5.0
    late_structural_weight: float = 0.8
    change_intake_weight: float = 0.4  # 1: change ∝ intake; 0.4 keeps intake-only AUC ≈ .7
    # Late gains (design choice): with this probability a course improves by this many more
    # points after the landmark, independently of everything before it — a late-improving
    # trajectory class (lit. §9) that no early-window model can foresee, which keeps
    # prediction from early data as modest as published models find (lit. §10).
    late_gain_prob: float = 0.5
    late_gain_points: float = 14.0
    late_change_rate: float = 0.35  # share of the remaining late change realised per session
    change_tau_sessions: float = 5.0  # 1 − exp(−k/τ): most change early (lit. §9)
    # Clients differ in how fast change comes (early vs gradual responders, lit. §9): τ is
    # log-normal around change_tau_sessions with this SD on the log scale.
    change_tau_log_sd: float = 0.6
    phq_noise_sd: float = 2.8  # SD 5.5 × sqrt(1 − .74): 2-week test–retest (lit. §8b)
    gad_noise_sd: float = 2.4
    noise_ar: float = 0.4
    noise_phq_gad_corr: float = 0.6  # one questionnaire pack, one day: shared noise

    # --- attendance (lit. §6: ~9–12% of sessions missed, 25–40% of first appointments) --
    dna_logit: float = -4.2
    dna_first_shift: float = 3.2
    dna_engagement: float = 0.55
    therapist_attendance_sd: float = 0.3  # therapists differ in non-attendance (lit. §6)
    cancel_client_logit: float = -3.0
    cancel_service_logit: float = -3.4
    barrier_logit: float = -2.1
    barrier_engagement: float = 0.5
    barrier_next_miss_shift: float = 0.7
    barrier_probs: tuple[float, ...] = (0.32, 0.2, 0.1, 0.22, 0.1, 0.06)
    late_notice_engagement: float = 0.35

    # --- alliance (SRS 0–40; lit. §8b: ≤36 flags risk) ----------------------------------
    alliance_logit: float = 2.0
    alliance_loading: float = 0.55
    alliance_session_sd: float = 0.45
    therapist_alliance_sd: float = 0.25

    # --- questionnaires missing more often among the disengaged (DESIGN) ----------------
    measure_logit: float = 2.3
    measure_engagement: float = 0.9
    baseline_measure_prob: float = 0.97

    # --- endings: good-enough level (lit. §5); of finished courses ≈54% end by agreement,
    # ≈33% unilaterally (NHS TT national, lit. §12); dropout ≈30% in routine care (lit. §4)
    gel_end_hazard: float = 0.45
    gel_gain_points: float = 5.0
    # Share of good-enough endings where the client, improved, just stops coming (one
    # no-show, then discharged as a dropout) instead of agreeing an ending. Tuned so finished
    # courses match the national split (lit. §12); without it ≈76% ended by agreement.
    gel_unilateral_share: float = 0.35
    agreed_end_hazard: float = 0.01
    referred_on_hazard: float = 0.004
    stepped_up_hazard: float = 0.06
    moved_away_hazard: float = 0.003
    other_end_hazard: float = 0.003
    quit_logit: float = -3.7
    quit_engagement: float = 0.8
    quit_young: float = 0.35
    quit_no_improvement: float = 0.6
    quit_after_dna: float = 1.1
    quit_declined_share: float = 0.35
    quit_second_dna_prob: float = 0.0  # was .15: one no-show per dropout keeps DNA ≈12%
    dropout_discharge_days: int = 14
    max_slots: int = 40

    # --- goals and homework (lit. §2, §3) -----------------------------------------------
    goal_count_probs: tuple[float, ...] = (0.35, 0.4, 0.25)
    goal_ownership_loading: float = 1.5
    homework_loading: float = 1.0
    goal_rating_prob: float = 0.85

    # --- contacts between sessions (design choice) --------------------------------------
    client_contacts_per_week: float = 0.25
    contacts_engagement: float = 0.5
    outreach_per_week: float = 0.1
    respond_logit: float = 0.4
    respond_engagement: float = 0.9


CONSTANTS = GeneratorConstants()
