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
# # 2. Engagement features and the landmark window
#
# **What you will learn**
#
# - how the pipeline turns appointment records into engagement features in four blocks
#   (attendance, open communication, goal ownership, obstacles), checked by hand on one
#   episode;
# - what the **landmark window** is: engagement is measured only from what happened in the
#   first six weeks of care, and outcomes only after it;
# - what goes wrong without it: a demonstration that "whole-episode attendance" predicts
#   poor outcome impressively well, for the bad reason that it is partly *caused* by the
#   outcome (leakage), and how the pipeline prevents it.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.features.attendance import attendance_features
from pipeline.features.build import engagement_features
from pipeline.features.index import disengagement_flags
from pipeline.features.window import build_window
from pipeline.models.analysis import analysis_frame
from pipeline.models.prediction import check_no_leakage, predictive_validity
from pipeline.models.tidy import ModelError
from pipeline.tutorial import synthetic_study

pd.set_option("display.max_columns", 20)
pd.set_option("display.width", 120)

study = synthetic_study()
params = study.params
tables, extract = study.tables, study.extract_date
window_days = params.features.window_days
print(f"window: the first {window_days} days from the first scheduled appointment")

# %% [markdown]
# ## The window
#
# Every episode's window starts at its first scheduled appointment (whatever happened to
# it) and ends `window_days` later. Records dated on or after `window_end` are invisible
# to every feature. A window that had not ended by the extract date is **incomplete**: the
# client's engagement is not yet fully observed, so the models leave that episode out.

# %%
window = build_window(tables["episodes"], tables["sessions"], window_days, extract)
print(window["window_complete"].value_counts().rename("window complete"))
window.head()

# %% [markdown]
# ## One episode, computed by hand and by the package
#
# Take one episode, list its appointments inside the window, and count by hand. Then ask
# the package. The two must agree.

# %%
sessions = tables["sessions"]
wanted = study.features.query("window_complete and n_dna >= 1 and n_cancel_client >= 1")
example = wanted["episode_id"].iloc[0]
w = window.set_index("episode_id").loc[example]
mine = sessions[
    (sessions["episode_id"] == example)
    & (sessions["scheduled_date"] >= w["window_start"])
    & (sessions["scheduled_date"] < w["window_end"])
].sort_values("scheduled_date")
mine[["scheduled_date", "status", "notice_hours", "alliance_score", "homework_completed"]]

# %%
could_attend = (mine["status"] != "cancelled_by_service").sum()
by_hand = {
    "n_scheduled": len(mine),
    "n_attended": (mine["status"] == "attended").sum(),
    "n_dna": (mine["status"] == "did_not_attend").sum(),
    "attendance_rate": (mine["status"] == "attended").sum() / could_attend,
    "dna_rate": (mine["status"] == "did_not_attend").sum() / could_attend,
    "alliance_mean": mine.loc[mine["status"] == "attended", "alliance_score"].mean(),
}
package = study.features.set_index("episode_id").loc[example, list(by_hand)]
check = pd.DataFrame({"by hand": pd.Series(by_hand, dtype=float), "package": package.astype(float)})
assert (check["by hand"] - check["package"]).abs().max() < 1e-9, check
check

# %% [markdown]
# ## The four blocks
#
# `engagement_features` (what the `features` stage runs) computes every block from the
# window-restricted records and joins them, one row per episode. Here is one episode's
# row, block by block:

# %%
blocks = params.prediction.blocks
row = study.features.set_index("episode_id").loc[example]
pd.concat({block: row[list(cols)] for block, cols in blocks.items()}).rename("value").to_frame()

# %% [markdown]
# Five **disengagement flags** turn the features into early warning signs a clinician
# can check (missed first appointment, two or more no-shows, low alliance, no goal of the
# client's own, homework under half done), and the **disengagement index** averages the
# standardised features into one number (higher = less engaged). A flag that cannot be
# assessed (e.g. the service does not record homework) is missing, not zero.

# %%
flags = disengagement_flags(study.features, params.features.alliance_cutoff)
print(flags.filter(like="flag_").mean().round(3).rename("share of episodes flagged"))
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(study.features["disengagement_index"].dropna(), bins=40, color="#0072B2")
ax.set_xlabel("disengagement index (SD units; higher = less engaged)")
ax.set_ylabel("episodes")
plt.show()

# %% [markdown]
# ## What goes wrong without a landmark: a leak you can measure
#
# Suppose we skip the window and describe attendance over the **whole episode**: how many
# sessions were attended, the attendance rate, the gaps between sessions and so on, from
# first appointment to last.
# It feels like the same information, only more of it. It is not. Someone who stops
# improving, or who recovers early, changes how they attend *after* that happens: the
# outcome shapes the exposure. A model fed whole-episode attendance is partly reading the
# answer.
#
# The package can compute exactly the same attendance block over any window, so we build
# the leaky version by making the window longer than any episode:

# %%
whole = build_window(tables["episodes"], sessions, 3650, extract)
whole_episode = attendance_features(sessions, whole)
attendance_columns = [*blocks["attendance"], "n_attended", "n_scheduled"]
leaky_features = study.features.drop(columns=attendance_columns).merge(
    whole_episode[["episode_id", *attendance_columns]], on="episode_id"
)
leaky_frame = analysis_frame(leaky_features, study.outcomes, tables["episodes"], params.models)

# %% [markdown]
# Now predict poor outcome (not reliably improved) from baseline severity, case mix and
# the attendance block, first with the window version and then with the whole-episode
# version. Both use the pipeline's own cross-validation: folds grouped by therapist,
# imputation and scaling fitted inside the training folds. (Fewer repeats and bootstrap
# replicates than the pipeline uses, to keep the notebook quick.)
#
# The synthetic cohort also knows each client's **oracle risk** at the landmark: the
# probability of a poor outcome computed from the generator's own hidden truth about
# the client. No honest model of landmark data can beat it.

# %%
quick = params.prediction.model_copy(update={"repeats": 1, "bootstrap": 100})
baseline = list(params.prediction.baseline)
case_mix = [c for c in params.models.case_mix if c in study.frame]


def auc_of(frame: pd.DataFrame) -> pd.DataFrame:
    result = predictive_validity(
        frame, baseline, case_mix, {"attendance": attendance_columns}, quick
    )
    return result.metrics.query("metric == 'auc'").set_index("model")[
        ["estimate", "ci_low", "ci_high"]
    ]


honest = auc_of(study.frame)
leaky = auc_of(leaky_frame)
scored = study.frame.dropna(subset=["poor_outcome"]).merge(study.truth, on="episode_id")
oracle = roc_auc_score(scored["poor_outcome"].astype(int), scored["oracle_risk_landmark"])
comparison = pd.DataFrame(
    {
        "baseline only": honest.loc["baseline (logistic)", "estimate"],
        "+ attendance in the window": honest.loc["engagement (logistic)", "estimate"],
        "+ whole-episode attendance (leaky)": leaky.loc["engagement (logistic)", "estimate"],
        "oracle (hidden truth at the landmark)": oracle,
    },
    index=["AUC"],
).T.round(3)
comparison

# %%
fig, ax = plt.subplots(figsize=(7, 2.8))
colours = ["#999999", "#009E73", "#D55E00", "#000000"]
ax.barh(comparison.index[::-1], comparison["AUC"][::-1], color=colours[::-1])
ax.set_xlim(0.5, 1.0)
ax.set_xlabel("cross-validated AUC for poor outcome")
plt.show()
gain = {
    "window": comparison.loc["+ attendance in the window", "AUC"]
    - comparison.loc["baseline only", "AUC"],
    "whole episode": comparison.loc["+ whole-episode attendance (leaky)", "AUC"]
    - comparison.loc["baseline only", "AUC"],
}
print({k: round(v, 3) for k, v in gain.items()})
assert gain["whole episode"] > gain["window"] + 0.02

# %% [markdown]
# The whole-episode model looks several times "better" than the honest one: attendance in
# the window adds almost nothing over baseline severity here, while whole-episode
# attendance adds a lot. That extra accuracy is not usable and not real:
#
# - it cannot be used, because at week six nobody knows how many sessions a client will
#   end up attending;
# - it is not evidence that attending more *causes* better outcomes either, because people
#   who are not improving leave, and people who recover early stop coming: the outcome
#   shapes the exposure (reverse causation; notebook 5 shows it on real data, together
#   with its cousin, immortal time).
#
# The oracle shows how much is knowable at the landmark. Attendance alone gets little of
# it; the full set of window features (all four blocks, notebook 3) gets much closer.
#
# ## The fix, and how the pipeline enforces it
#
# 1. Every feature is computed from records dated **inside the window** only (a test in
#    `tests/features/test_leakage.py` edits everything after the window and checks that no
#    feature moves).
# 2. Outcomes are measured **after** the landmark, and only for clients still in
#    treatment at it.
# 3. The prediction code refuses any predictor that comes from the outcome table
#    (total sessions attended, weeks in treatment, final score), naming it:

# %%
try:
    check_no_leakage(
        ["attendance_rate", "sessions_attended_total"],
        allowed=set(study.features.columns),
        outcome_columns=set(study.outcomes.columns),
    )
except ModelError as refused:
    print(refused)

# %% [markdown]
# 4. A cross-validated AUC above `prediction.plausible_auc_max` (0.80) puts a leakage
#    warning on the model card: published early-engagement models reach about 0.60–0.75.
#    Notice that this alarm would **not** have caught the leak above (the leaky model
#    stays under 0.80), and the honest full model of notebook 3 (about 0.77 on this
#    cohort, calibrated to be as hard to predict as real data) stays under it too. An AUC
#    threshold is a weak test for leakage: a small leak passes it. The real defences are
#    1–3: build features so that they cannot see the future, and refuse columns that do.
#
# Re-running the features with a different window changes what "early" means. The
# pipeline computes it from `params.yaml`, so `dvc exp run -S features.window_days=28`
# re-runs everything downstream; here we call the same function directly:

# %%
four_weeks = engagement_features(
    tables, params.features.model_copy(update={"window_days": 28}), "PHQ-9", extract
)
pd.DataFrame(
    {
        "6-week window": study.features[["n_attended", "attendance_rate"]].mean(),
        "4-week window": four_weeks[["n_attended", "attendance_rate"]].mean(),
    }
).round(2)

# %% [markdown]
# ## Exercises
#
# 1. Repeat the leak demonstration with `sessions_attended_total` from the outcome table
#    as the only engagement predictor (`predictive_validity` does not run the guard; the
#    pipeline's `prediction_results` does). How much does the AUC rise over baseline, and
#    does it cross `plausible_auc_max`?
# 2. Build the study with a 28-day and with an 84-day window
#    (`synthetic_study(params=p)` where `p` has `features.window_days` and
#    `synthetic.landmark_days` changed, so that outcomes and the landmark follow), and
#    re-run the honest prediction. What do you gain by waiting longer, and what do you
#    lose? (Think about who is still in treatment at the landmark, and how late a
#    warning is useful to a clinician.)
# 3. Pick an episode with an **incomplete** window. Why would including it bias the
#    attendance rate, and in which direction?
# 4. The disengagement index needs at least two available z-scores. Find an episode
#    where it is missing and say why.
# 5. Which attendance feature carries most of the leak? Try the whole-episode version of
#    one feature at a time.
