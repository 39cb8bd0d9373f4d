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
# # 1. A tour of session records
#
# **What you will learn**
#
# - what a psychological therapy service's export looks like: the six tables of the data
#   contract and how they link;
# - what one client's episode of care looks like over time: appointments kept and missed,
#   questionnaire scores, goals;
# - the shape of attendance in a whole service (how many sessions people get, when they
#   stop coming);
# - why real exports are messy, and what the pipeline's ingest step does with bad rows
#   (it quarantines them with a reason instead of guessing or silently dropping them).
#
# Everything here runs on the **synthetic cohort** bundled with the pipeline: 4,000
# invented episodes of care whose behaviour is calibrated to published figures. No real
# person is in it. Every step below calls the pipeline's own code, the same code that
# `dvc repro` runs.

# %%
import matplotlib.pyplot as plt
import pandas as pd

from pipeline.contract import OPTIONAL_TABLES, REQUIRED_TABLES, column_specs
from pipeline.tutorial import synthetic_study

pd.set_option("display.max_columns", 20)
pd.set_option("display.width", 120)

# Generate the cohort and run ingest → features → outcomes (a few seconds).
study = synthetic_study()
print(f"{len(study.tables['episodes']):,} episodes, extract date {study.extract_date:%Y-%m-%d}")

# %% [markdown]
# ## The data contract
#
# A service exports six tables. Three are required: **episodes** (one course of care:
# referral, therapist, how it ended), **sessions** (one row per scheduled appointment,
# whatever happened to it) and **measures** (questionnaire scores such as the PHQ-9 for
# depression). Three are optional: **goals**, **goal_ratings** and **contacts** (messages
# and calls between appointments). Every table links to an episode through `episode_id`
# (goal ratings through their goal).
#
# The contract says, column by column, what is allowed. Here is the sessions table:

# %%
print("required:", ", ".join(REQUIRED_TABLES), "| optional:", ", ".join(OPTIONAL_TABLES))
pd.DataFrame(
    [
        {
            "column": c.name,
            "kind": c.kind,
            "required": c.required,
            "allowed": ", ".join(c.allowed) if c.allowed else "",
            "range": "" if c.minimum is None else f"{c.minimum:g} to {c.maximum or 'any'}",
            "meaning": c.description,
        }
        for c in column_specs("sessions")
    ]
)

# %% [markdown]
# ## The raw export, as a service sends it
#
# The export is a folder of CSV files. Real exports use local codes ("DNA", "5" for
# attended), put dates in odd formats and contain a few impossible rows. The synthetic
# export imitates that on purpose. Look at the raw `status` column before ingest has
# read it:

# %%
raw_sessions = pd.read_csv(study.export_dir / "sessions.csv", dtype=str, keep_default_na=False)
raw_sessions["status"].value_counts().head(12)

# %% [markdown]
# After ingest, every status is one of the contract's categories (the local codes were
# recoded through `params.yaml → ingest.aliases`):

# %%
sessions = study.tables["sessions"]
sessions["status"].value_counts()

# %% [markdown]
# ## One episode over time
#
# Pick an episode with a fair number of appointments and draw it: each appointment on a
# time line, coloured by what happened, and the PHQ-9 depression score (0–27, higher is
# worse; 10 or more is the usual "caseness" threshold) underneath.

# %%
per_episode = sessions.groupby("episode_id")["status"].agg(
    n="size", dna=lambda s: (s == "did_not_attend").sum(), missed=lambda s: (s != "attended").sum()
)
example = per_episode.query("n >= 9 and dna >= 1 and missed >= 3").index[0]
ep = study.tables["episodes"].set_index("episode_id").loc[example]
ep_sessions = sessions[sessions["episode_id"] == example].sort_values("scheduled_date")
ep_scores = study.tables["measures"].query("episode_id == @example and instrument == 'PHQ-9'")
start = ep_sessions["scheduled_date"].min()

colours = {
    "attended": "#009E73",
    "did_not_attend": "#D55E00",
    "cancelled_by_client": "#E69F00",
    "cancelled_by_service": "#56B4E9",
    "future": "#999999",
}
fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True, height_ratios=[1, 2])
for status, rows in ep_sessions.groupby("status"):
    days = (rows["scheduled_date"] - start).dt.days
    top.scatter(days, [0] * len(days), s=80, color=colours[status], label=status)
top.set_yticks([])
top.legend(ncol=4, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
top.axvline(study.params.features.window_days, color="grey", linestyle=":")
days = (ep_scores["measure_date"] - start).dt.days
bottom.plot(days, ep_scores["score"], marker="o", color="#0072B2")
bottom.axhline(10, color="grey", linestyle="--", linewidth=1)
bottom.set_ylim(0, 27)
bottom.set_ylabel("PHQ-9 score (0–27)")
bottom.set_xlabel("days since first scheduled appointment")
fig.suptitle(f"Episode {example}: {ep['presenting_problem']}, ended '{ep['end_reason']}'", y=1.04)
plt.show()

# %% [markdown]
# The dotted line marks the **landmark**: the end of the first
# `params.features.window_days` = 42 days. Engagement is only ever measured from what
# happened before it (notebook 2 explains why).

# %% [markdown]
# ## Attendance across the service
#
# How many appointments does an episode have, and how are they kept? The first
# appointment is special: missing it is one of the strongest early warning signs in the
# literature.

# %%
n_sessions = sessions.groupby("episode_id").size()
position = sessions.sort_values("scheduled_date").groupby("episode_id").cumcount() + 1
kept = (
    sessions.assign(position=position.clip(upper=12), kept=sessions["status"] == "attended")
    .query("status != 'future'")
    .groupby("position")["kept"]
    .mean()
)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.hist(n_sessions, bins=range(1, n_sessions.max() + 2), color="#0072B2", edgecolor="white")
left.set_xlabel("appointments scheduled per episode")
left.set_ylabel("episodes")
right.plot(kept.index, 100 * kept.to_numpy(), marker="o", color="#009E73")
right.set_xlabel("appointment number (12 = 12th or later)")
right.set_ylabel("% of appointments attended")
right.set_ylim(0, 100)
fig.tight_layout()
plt.show()

# %% [markdown]
# And how did episodes end? NHS Talking Therapies counts a course as **finished** with
# two or more attended treatment sessions; an episode that ends without the planned
# course being completed, on the client's side, is **dropout**.

# %%
study.tables["episodes"]["end_reason"].value_counts(dropna=False)

# %% [markdown]
# ## What ingest quarantined, and why
#
# Ingest checks every row against the contract. A row that breaks a rule is not fixed by
# guessing and not silently dropped: it is moved, untouched, to a **quarantine** table with
# the rule it broke, the column, and its line number in the source file, so the service
# can correct its export. The report reconciles: rows read = rows accepted + rows
# quarantined, for every table.

# %%
report = pd.DataFrame(study.ingest_report["tables"]).T[
    ["rows_read", "rows_accepted", "rows_quarantined", "reconciled"]
]
assert (report["rows_read"] == report["rows_accepted"] + report["rows_quarantined"]).all()
report

# %%
reasons = pd.concat(
    {
        table: q.assign(rule=q["rules"].str.split(";")).explode("rule")["rule"].value_counts()
        for table, q in study.quarantine.items()
    },
    names=["table", "rule"],
).rename("rows")
reasons.to_frame()

# %% [markdown]
# Because the data are synthetic, we know exactly which rows the generator broke on
# purpose. Every one of them should be in quarantine, and nothing else (a check the test
# suite also makes):

# %%
planted = study.messy_rows.query("kind != 'alias'")
held = sum(len(q) for q in study.quarantine.values())
print(f"rows broken on purpose: {len(planted)}; rows quarantined: {held}")
by_table = planted.groupby("table").size()
assert by_table.to_dict() == {t: len(q) for t, q in study.quarantine.items() if len(q)}
planted.groupby(["table", "kind"]).size().rename("rows").to_frame()

# %% [markdown]
# One quarantined session row in full: the original values, the rule, the column and
# where it came from.

# %%
study.quarantine["sessions"].iloc[0]

# %% [markdown]
# ## Exercises
#
# 1. Find an episode whose client missed the **first** appointment. How many of their
#    later appointments did they attend? Compare with clients who came to the first one.
# 2. The first appointment is missed far more often than later ones, and after that the
#    curve is flat. Does that mean people who reach appointment 10 are as engaged as
#    everyone was at appointment 2, or that the less engaged have already left? (Hint:
#    compare the curve for episodes with at least 10 appointments against all episodes.)
# 3. Open `study.export_dir / "sessions.csv"` in a text editor, change one `status` to
#    `walked_out`, and run `engage validate` on the folder (from a terminal:
#    `engage validate <folder>`). What does the message tell the service to do?
# 4. `params.yaml → ingest.aliases` maps local codes to contract categories. Copy
#    `study.export_dir` somewhere, replace some `attended` statuses with a code of your
#    own, add that code to `study.params.ingest.aliases` (via `model_copy`), then run
#    `pipeline.stages.ingest.run(params, root, input_dir=<your copy>)` and read the result
#    back with `pipeline.tutorial.load_study(root, params)`. (Calling `synthetic_study()`
#    again would regenerate the export and overwrite your edit.) Where does the recoding
#    show up in the ingest report?
# 5. Why does the pipeline quarantine a session whose `duration_min` is recorded for a
#    missed appointment, rather than setting the duration to missing?
