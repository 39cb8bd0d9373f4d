# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Disengagement and outcomes
#
# **What you will learn**
#
# - how much early disengagement raises the odds of a poor outcome, estimated with
#   logistic regression, with errors that respect clients being nested in therapists;
# - how to describe dropout over time when finishing treatment also ends follow-up
#   (competing risks), and a Cox model of dropout from the landmark;
# - how symptom trajectories separate *within-client* from *between-client* effects;
# - what a dose–response curve can and cannot tell you (the good-enough level);
# - how well early engagement **predicts** poor outcome, and whether the predicted risks
#   are calibrated;
# - whether the answer survives the missing final scores (multiple imputation and a
#   tipping-point analysis).
#
# Everything is fitted by the pipeline's own functions on the synthetic cohort, whose
# hidden truth lets us check the answers. These are **associations**: engagement is not
# randomised, and notebook 5 shows on real data how easily an exposure can be shaped by
# the outcome itself.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.models.analysis import (
    dose_response_tables,
    dropout_models,
    poor_outcome_models,
    trajectory_frame,
    trajectory_models,
)
from pipeline.models.missing import effect_with_outcome, sensitivity
from pipeline.models.prediction import prediction_results
from pipeline.tutorial import synthetic_study

pd.set_option("display.max_columns", 20)
pd.set_option("display.width", 120)

study = synthetic_study()
params, frame = study.params, study.frame
population = frame[frame["in_treatment_at_landmark"]]
print(
    f"{len(frame):,} episodes; {len(population):,} still in treatment at the landmark; "
    f"{int(population['poor_outcome'].notna().sum()):,} of them with a final score"
)

# %% [markdown]
# ## Who is analysed
#
# Outcomes are only studied for clients still in treatment at the landmark (six weeks):
# someone who left in week two cannot have an early-engagement profile in the same sense,
# and their "outcome" would be measured before the exposure was complete. The **poor
# outcome** is the NHS Talking Therapies definition set in `params.yaml`
# (`not_reliably_improved`: the PHQ-9 did not fall by more than its reliable change index).

# %%
population["poor_outcome"].value_counts(dropna=False).rename("poor outcome")

# %% [markdown]
# ## 1. Poor outcome: logistic regression
#
# `poor_outcome_models` fits one model per exposure (each feature block, the
# disengagement index, each flag, and the number of flags), each unadjusted and adjusted
# for baseline severity and case mix, on the same rows. Continuous exposures are per SD,
# so the odds ratios are comparable. Standard errors are **cluster-robust by therapist**:
# clients of the same therapist are not independent, and ignoring that makes intervals too
# narrow.

# %%
poor = poor_outcome_models(frame, params.models)
side = poor.tables["poor_outcome_side_by_side"]
side[side["block"].isin(["index", "flags group"])][
    [
        "block",
        "term",
        "estimate_unadjusted",
        "estimate_adjusted",
        "ci_low_adjusted",
        "ci_high_adjusted",
        "n_analysed_adjusted",
    ]
].round(3)

# %% [markdown]
# Every model comes with a **model card**: formula, method, rows in and rows analysed,
# convergence, the cluster count, and every warning the fit raised. A model that cannot be
# fitted (separation, a constant column, too few events) gets a card that says why,
# instead of crashing the pipeline.

# %%
card = next(c for c in poor.cards if c.model == "poor_outcome: index (adjusted)")
{
    k: v
    for k, v in card.as_dict().items()
    if k
    in (
        "model",
        "formula",
        "method",
        "n_input",
        "n_analysed",
        "n_groups",
        "status",
        "notes",
        "warnings",
    )
}

# %%
flags = poor.tables["poor_outcome"]
flags = flags[flags["term"].str.startswith("flag_") & flags["adjusted"]]
flags = flags[flags["model"].str.contains(r"flag_\w+ \(adjusted\)")]
fig, ax = plt.subplots(figsize=(7, 3))
y = np.arange(len(flags))
ax.errorbar(
    flags["estimate"],
    y,
    xerr=[flags["estimate"] - flags["ci_low"], flags["ci_high"] - flags["estimate"]],
    fmt="o",
    color="#0072B2",
    capsize=3,
)
ax.axvline(1, color="grey", linestyle="--")
ax.set_yticks(y, flags["term"].str.removeprefix("flag_").str.replace("_", " "))
ax.set_xscale("log")
ax.set_xticks([0.5, 1, 2, 4], ["0.5", "1", "2", "4"])
ax.minorticks_off()
ax.set_xlabel("adjusted odds ratio of poor outcome (95% CI, log scale)")
plt.show()

# %% [markdown]
# ## 2. Dropout after the landmark
#
# From the landmark on, two things end treatment: **dropping out**, and **finishing**
# (or another planned ending). Finishing is a *competing event*: someone who finished can no
# longer drop out. The naive "1 − Kaplan–Meier" curve treats finishers as if they might
# still drop out later and so overstates dropout; the Aalen–Johansen **cumulative
# incidence** does not.

# %%
dropout = dropout_models(frame, params.models)
incidence = dropout.tables["dropout_cumulative_incidence"]
km = dropout.tables["dropout_km"]
fig, ax = plt.subplots(figsize=(7, 3.5))
colours = {"0": "#009E73", "1": "#E69F00", "2+": "#D55E00"}
for group, rows in incidence.groupby("group"):
    ax.step(
        rows["time"] / 7,
        100 * rows["incidence_dropout"],
        where="post",
        color=colours[str(group)],
        label=f"{group} flags: cumulative incidence",
    )
    k = km[km["group"] == group]
    ax.step(
        k["time"] / 7,
        100 * (1 - k["survival"]),
        where="post",
        linestyle=":",
        color=colours[str(group)],
        label=f"{group} flags: 1 − Kaplan–Meier",
    )
ax.set_xlim(0, 20)
ax.set_xlabel("weeks after the landmark")
ax.set_ylabel("% dropped out")
ax.legend(fontsize=7, ncol=2)
plt.show()

# %%
dropout.tables["dropout_side_by_side"][
    ["block", "term", "estimate_adjusted", "ci_low_adjusted", "ci_high_adjusted"]
].round(3)

# %% [markdown]
# The Cox model gives cause-specific hazard ratios (finishing censors): how much faster
# disengaged clients drop out *while still in treatment*. That is not the same as an
# effect on the cumulative incidence plotted above, which also depends on how fast each
# group finishes; a Fine–Gray (subdistribution) model answers that second question. The
# card also reports a proportional-hazards check for every term.
#
# ## 3. Symptom trajectories: within and between clients
#
# Session-by-session PHQ-9 scores are modelled with a random intercept and slope per
# client. The session's alliance rating is split into the client's average
# (**between**: do clients with better alliances do better?) and the session's departure
# from it (**within**: is a client better in weeks when their alliance is better than
# usual?). Only the within effect is protected from stable differences between clients;
# it is still open to things that change week to week (a good week lifts both the mood and
# the alliance rating: same-session reverse causation). The lagged-alliance model (the
# previous session's alliance predicting this session's score) is fitted beside it.
# The generator planted a within-client effect of −0.15 PHQ-9 points per alliance point.

# %%
long = trajectory_frame(
    study.tables["sessions"],
    study.tables["measures"],
    study.tables["episodes"],
    params.outcomes.primary_instrument,
    params.models,
)
two_level = params.models.model_copy(update={"therapist_level": False})
trajectories = trajectory_models(long, two_level)
table = trajectories.tables["trajectory"]
fixed = table[table["model"] == catalog.TRAJECTORY_CLIENT].set_index("term")
lagged = table[table["model"] == catalog.TRAJECTORY_LAGGED].set_index("term")
planted = -study.params.synthetic.effects.alliance_within_effect
within = fixed.loc["alliance_score_within"]
print(
    f"within-client alliance effect {within['estimate']:.3f} "
    f"(95% CI {within['ci_low']:.3f} to {within['ci_high']:.3f}); planted {planted}"
)
assert within["ci_low"] <= planted <= within["ci_high"]
lag = lagged.loc["alliance_lag_within"]
print(
    f"previous session's alliance: {lag['estimate']:.3f} "
    f"(95% CI {lag['ci_low']:.3f} to {lag['ci_high']:.3f})"
)
fixed[["estimate", "ci_low", "ci_high"]].round(3)

# %% [markdown]
# ## 4. Dose–response, and why it is only descriptive
#
# The classic dose–response curve (Howard et al., 1986) plots the share of clients
# improved against the number of sessions they attended. It is tempting to read it as
# "more sessions, more improvement". But in routine care clients and therapists stop when
# the client feels **good enough** (Barkham et al.): those who improve quickly leave after
# few sessions, and those who are not improving may stay longer, or leave. The number of
# sessions is partly a *consequence* of improvement, so the curve mixes cause and effect.

# %%
dose = dose_response_tables(frame, params.models)
observed, curve = dose.tables["dose_response_observed"], dose.tables["dose_response_curve"]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(
    observed["sessions"],
    100 * observed["share_improved"],
    color="#56B4E9",
    label="observed share reliably improved",
)
ax.plot(
    curve["sessions"],
    100 * curve["share_improved"],
    color="#0072B2",
    label="probit on log sessions",
)
ax.fill_between(
    curve["sessions"], 100 * curve["ci_low"], 100 * curve["ci_high"], color="#0072B2", alpha=0.2
)
ax.set_xlabel("sessions attended (last bar: that many or more)")
ax.set_ylabel("% reliably improved")
ax.legend()
plt.show()
print(dose.cards[0].notes[0])

# %% [markdown]
# ## 5. Prediction: does early engagement help predict a poor outcome?
#
# Association is not prediction. Here two models are compared by cross-validation with
# folds **grouped by therapist** (no therapist's clients in both the training and the
# test fold): baseline severity and case mix only, and the same plus every engagement
# block. Intervals come from resampling whole therapists. The pipeline uses 3 repeats and
# 500 bootstrap replicates; this notebook uses fewer to stay quick.

# %%
quick = params.prediction.model_copy(update={"repeats": 1, "bootstrap": 100})
prediction, _, headline = prediction_results(
    frame, set(study.features.columns), set(study.outcomes.columns), params.models, quick
)
prediction.tables["prediction_gain"].round(3)

# %% [markdown]
# **Calibration** asks whether a predicted 30% risk comes true about 30% of the time.
# Points on the diagonal are well calibrated; the calibration slope (1 is ideal) is below
# 1 when predictions are too extreme.

# %%
calibration = prediction.tables["prediction_calibration"]
fig, ax = plt.subplots(figsize=(4.5, 4.5))
for model, colour in (("baseline (logistic)", "#999999"), ("engagement (logistic)", "#0072B2")):
    rows = calibration[calibration["model"] == model]
    ax.plot(rows["mean_predicted"], rows["observed"], marker="o", color=colour, label=model)
ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
ax.set_xlabel("predicted risk (tenths of the cohort)")
ax.set_ylabel("observed share with a poor outcome")
ax.legend(fontsize=8)
plt.show()
print(
    f"calibration slope {headline['calibration_slope_engagement']:.2f}; "
    f"Brier score {headline['brier_engagement']:.3f}"
)

# %%
print(f"cross-validated AUC with engagement: {headline['auc_engagement']:.3f}")

# %% [markdown]
# That is far above what published early-engagement models reach on real services (about
# 0.60–0.75): the synthetic cohort is cleaner than reality, and the model card says so
# with a leakage warning. On real data, treat an AUC that high as a reason to look for
# leakage (notebook 2) before celebrating.
#
# ## 6. Missing final scores: does the answer survive?
#
# Disengaged clients are the likeliest to have no final questionnaire. That alone does not
# bias the complete-case logistic regression: if whether a score is missing depends only
# on variables in the model (the index, baseline, case mix), complete cases still estimate
# the odds ratio correctly. It is biased when missingness depends on the outcome itself
# beyond them, for example clients who are not improving stop filling in questionnaires,
# and observed data cannot rule that out. The pipeline therefore re-estimates the main
# effect (odds ratio per SD of the disengagement index) by last observation carried
# forward, by multiple imputation (chained equations with auxiliary variables that
# predict both the score and its missingness, predictive mean matching, pooled by Rubin's
# rules), and by **delta adjustment**: every imputed final score is made δ points worse (or
# better) than MAR predicts, to see how far from "missing at random" the truth would have
# to be to overturn the conclusion (the **tipping point**). This notebook uses 5
# imputations to stay quick; the pipeline uses `missing_data.imputations` = 20.

# %%
missing = sensitivity(
    frame,
    params.models,
    params.missing_data.model_copy(update={"imputations": 5}),
    params.outcomes,
)
missing.tables["missing_by_group"]

# %%
table = missing.tables["missing_data_sensitivity"]
main = table[table["delta"] == 0][["analysis", "estimate", "ci_low", "ci_high", "n_analysed"]]
with_truth = frame.merge(study.truth[["episode_id", "poor_outcome_complete"]], on="episode_id")
truth_or = effect_with_outcome(with_truth, "poor_outcome_complete", params.models)
print(f"complete-data odds ratio (every questionnaire filled in; generator truth): {truth_or:.2f}")
main.round(3)

# %% [markdown]
# Because the data are synthetic we know the answer every method is aiming at: the same
# model fitted as if every client had filled in a final questionnaire at their last
# attended session (the generator's `poor_outcome_complete`). Here multiple imputation
# barely moves the complete-case estimate, and it is not guaranteed to move it the right
# way on any one cohort. LOCF lands on the target almost exactly, by construction: the
# target is defined at the last attended session, which is precisely the score LOCF
# carries forward. On real data there is no such guarantee, and LOCF's interval is too
# narrow because it treats guesses as data.
#
# The delta adjustment then asks how robust the conclusion is if the missing clients
# did systematically worse (or better) than the observed ones with the same profile:

# %%
delta = table[table["analysis"].str.contains("delta")]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(delta["delta"], delta["estimate"], marker="o", color="#0072B2")
ax.fill_between(delta["delta"], delta["ci_low"], delta["ci_high"], color="#0072B2", alpha=0.2)
ax.axhline(1, color="grey", linestyle="--")
ax.set_xlabel("δ: imputed final PHQ-9 shifted by (points; positive = worse)")
ax.set_ylabel("odds ratio per SD of index")
plt.show()
missing.tables["missing_data_tipping_point"]

# %% [markdown]
# ## Exercises
#
# 1. Refit the adjusted index model without the clustering: take the card's formula,
#    standardise the predictors (`pipeline.models.effects.standardise`) and call
#    `fit_logistic(rows, "poor_outcome", predictors, cluster=None)`. How much narrower
#    are the intervals than the cluster-robust ones, and why is that wrong?
# 2. Change the outcome definition to `reliable_deterioration`
#    (`synthetic_study(params=...)` with `outcomes.poor_outcome` changed). Which flags
#    still matter? Why might the flags predict deterioration less well?
# 3. In the dropout plot, how far apart are 1 − Kaplan–Meier and the cumulative incidence
#    at 12 weeks for each group? Why is the gap largest where most people finish?
# 4. Refit the trajectory model with the raw `alliance_score` instead of the within and
#    between parts: `fit_trajectory(long, "score ~ weeks + alliance_score", "episode_id",
#    "~weeks")` (from `pipeline.models.trajectories`). Which of the two does the single
#    coefficient resemble, and why?
# 5. Generate a cohort with a different seed (`synthetic_study(seed=7)`). Does the
#    within-client interval still cover −0.15? Over many seeds, how often should it?
# 6. How large would δ have to be to change the conclusion? Extend
#    `missing_data.delta_grid` until it tips, and say whether a shift that large is
#    plausible on the PHQ-9 (0–27).
