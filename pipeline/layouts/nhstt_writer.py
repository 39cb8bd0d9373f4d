"""Write a contract-layout export in the NHS Talking Therapies Data Set layout.

The inverse of ``nhstt.yaml``, taken from that one declaration: each contract value is
written as the first code the mapping lists for it, so reading the result back through the
mapping gives the same contract values. Used by ``engage synthesize --layout nhstt`` so that
the synthetic cohort, its messy rows included, can be read in both layouts and the results
compared. Values the mapping cannot express (a bad category planted as mess) are written as
they are, so they are quarantined in both layouts.

What the data set does not carry is not written: session alliance, agenda, homework,
barriers, notice of cancellation, planned sessions, treatment, goals, goal ratings and
between-session contacts; WSAS totals (the data set records WSAS item by item); an episode's
gender is the client's (IDS001MPI holds one row per person: their first episode's).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import DEFAULT_ALIASES
from pipeline.ingest.parse import normalise_label
from pipeline.layouts.mapping import ColumnRule, Mapping

END_CODE_FOR = {"other": "96", "moved_away": "96"}
"""Contract endings the data set has no code of their own for: written as 96, not known
(seen and taken on), which reads back as ``other``."""
AGE_OF_BAND = {
    "16-17": 16,
    "18-24": 21,
    "25-34": 30,
    "35-44": 40,
    "45-54": 50,
    "55-64": 60,
    "65+": 70,
}
"""A representative age in each band (the data set records age, not band)."""


def _rule(mapping: Mapping, table: str, column: str, part: int = 0) -> ColumnRule:
    rule = mapping.tables[table][part].columns[column]
    assert isinstance(rule, ColumnRule)
    return rule


def _reverse(rule: ColumnRule) -> dict[str, str]:
    """Contract value → the first code the mapping lists for it."""
    out: dict[str, str] = {}
    for code, value in (rule.values or {}).items():
        if value is not None and value not in out:
            out[value] = code
    return out


def _encode(values: pd.Series, codes: dict[str, str], aliases: dict[str, str]) -> pd.Series:
    """Each value as its code when it is (a spelling of) a contract value; else as it is."""
    label = normalise_label(values.astype("string"))
    canonical = label.map(lambda v: aliases.get(v, v) if isinstance(v, str) else v)
    coded = canonical.map(lambda v: codes.get(v) if isinstance(v, str) else None)
    return coded.where(coded.notna(), values).astype("string")


def _first_of(values: pd.Series, by: pd.Series) -> pd.Series:
    return values.groupby(by, sort=False).first()


def to_nhstt(export: dict[str, pd.DataFrame], mapping: Mapping) -> dict[str, pd.DataFrame]:
    """The NHS TT tables (text, as an SDE extract would be written) of a contract export."""
    ep = export["episodes"].astype("string")
    ss = export["sessions"].astype("string")
    me = export["measures"].astype("string")
    end_codes = _reverse(_rule(mapping, "episodes", "end_reason")) | END_CODE_FOR
    end_reason = _encode(ep["end_reason"], end_codes, {})
    end_reason = end_reason.mask(ep["end_reason"].str.strip().eq("still_open"), pd.NA)
    band = ep["age_band"].str.strip()
    age = band.map(lambda b: AGE_OF_BAND.get(b, b) if isinstance(b, str) else b)
    referrals = pd.DataFrame(
        {
            "PathwayID": ep["episode_id"],
            "Person_ID": ep["client_id"],
            "ReferralRequestReceivedDate": ep["referral_date"],
            "ServDischDate": ep["end_date"],
            "EndCode": end_reason,
            "Age_ReferralRequest_ReceivedDate": age.astype("string"),
        }
    )
    site = _first_of(ep["site_id"], ep["episode_id"])
    therapist = _first_of(ep["therapist_id"], ep["episode_id"])
    contacts = pd.DataFrame(
        {
            "CareContactId": ss["session_id"],
            "PathwayID": ss["episode_id"],
            "CareContDate": ss["scheduled_date"],
            "AttendOrDNACode": _encode(
                ss["status"],
                _reverse(_rule(mapping, "sessions", "status")),
                DEFAULT_ALIASES["status"],
            ),
            "AppType": "02",
            "ClinContDurOfCareCont": ss["duration_min"],
            "ConsMechanism": _encode(
                ss["modality"], _reverse(_rule(mapping, "sessions", "modality")), {}
            ).map(lambda c: c.zfill(2) if isinstance(c, str) and c.isdigit() else c),
            "SiteIDOfTreat": ss["episode_id"].map(site).astype("string"),
        }
    )
    activities = pd.DataFrame(
        {
            "CareActId": "CA" + pd.Series(np.arange(1, len(ss) + 1), dtype="string").str.zfill(8),
            "CareContactId": ss["session_id"],
            "PathwayID": ss["episode_id"],
            "CarePersLocalId": ss["episode_id"].map(therapist).astype("string"),
        }
    )
    instruments = _reverse(_rule(mapping, "measures", "instrument"))
    writable = ~me["instrument"].str.strip().isin(["WSAS"]).fillna(False)
    me = me[writable.to_numpy()].reset_index(drop=True)
    tool = me["instrument"].map(
        lambda v: instruments.get(v.strip(), v) if isinstance(v, str) else v
    )
    first_contact = ~contacts["CareContactId"].duplicated(keep="first")
    act_of = pd.Series(
        activities["CareActId"][first_contact].to_numpy(),
        index=contacts["CareContactId"][first_contact].to_numpy(),
    )
    date_of = pd.Series(
        contacts["CareContDate"][first_contact].to_numpy(),
        index=contacts["CareContactId"][first_contact].to_numpy(),
    )
    act = me["session_id"].map(act_of)
    at_activity = act.notna() & me["measure_date"].eq(me["session_id"].map(date_of)).fillna(False)
    act_scores = pd.DataFrame(
        {
            "CareActId": act[at_activity],
            "PathwayID": me["episode_id"][at_activity],
            "CodedAssToolType": tool[at_activity].astype("string"),
            "PersScore": me["score"][at_activity],
        }
    )
    ref_scores = pd.DataFrame(
        {
            "PathwayID": me["episode_id"][~at_activity],
            "AssToolCompDate": me["measure_date"][~at_activity],
            "CodedAssToolType": tool[~at_activity].astype("string"),
            "PersScore": me["score"][~at_activity],
        }
    )
    gender = _encode(ep["gender"], _reverse(_rule(mapping, "episodes", "gender")), {})
    first_episode = ~ep["client_id"].duplicated(keep="first") & ep["client_id"].notna()
    persons = pd.DataFrame(
        {"Person_ID": ep["client_id"][first_episode], "GenderIdentity": gender[first_episode]}
    )
    problem = _encode(
        ep["presenting_problem"], _reverse(_rule(mapping, "episodes", "presenting_problem")), {}
    )
    complaints = pd.DataFrame({"PathwayID": ep["episode_id"], "PresComp": problem}).dropna()
    tables = {
        "IDS101Referral": referrals,
        "IDS201CareContact": contacts,
        "IDS202CareActivity": activities,
        "IDS607CodedScoreAssessmentAct": act_scores,
        "IDS606CodedScoreAssessmentRefer": ref_scores,
        "IDS001MPI": persons,
        "IDS603PresentingComplaints": complaints,
    }
    return {name: df.reset_index(drop=True) for name, df in tables.items()}
