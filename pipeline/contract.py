"""The input data contract: the one declaration of the six input tables.

Each table is a pandera ``DataFrameModel`` describing the *typed* table (after reading and
parsing). Column-level rules (types, allowed values, ranges, uniqueness) live on the
fields; rules that span columns or tables are declared in ``TABLE_RULES`` and enforced by
ingest. ``docs/data-contract.md`` is generated from this module (``engage docs``)
and a test keeps the two in agreement.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.instruments import BUILTIN_INSTRUMENTS, active_registry

END_REASONS = (
    "completed",
    "dropped_out",
    "referred_on",
    "declined",
    "moved_away",
    "still_open",
    "other",
)
AGE_BANDS = ("16-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("female", "male", "non_binary", "other", "not_stated")
PRESENTING_PROBLEMS = ("depression", "anxiety", "mixed_anxiety_depression", "ptsd", "ocd", "other")
SESSION_STATUSES = ("attended", "did_not_attend", "cancelled_by_client", "cancelled_by_service")
MODALITIES = ("in_person", "video", "phone", "text")
AGENDA_SETTERS = ("client", "shared", "clinician")
HOMEWORK_COMPLETION = ("none", "partial", "full")
BARRIERS = ("none", "work", "caregiving", "transport", "health", "financial", "other")
GOAL_SETTERS = ("client", "collaborative", "clinician")
CONTACT_DIRECTIONS = ("client_to_service", "service_to_client")
CONTACT_CHANNELS = ("message", "phone", "email", "letter", "app")
INSTRUMENT_NAMES = tuple(BUILTIN_INSTRUMENTS)
"""The built-in instruments, as the pandera model declares them; the allowed values in
force are those of the active registry (``instrument_names``), which adds the ones a
service registers in params.yaml."""

LATE_CANCELLATION_HOURS = 24
MAX_COLUMNS = 1_000
"""Widest header read: an export of the contract has a few dozen columns; a wider one is
refused at once, before anything else is read."""
MAX_FIELD_CHARS = 10_000
"""Longest cell read: codes, dates and numbers are short; a longer cell is refused."""


@dataclass(frozen=True)
class TextRule:
    """What the text of a contract column may look like. A value that breaks it is not a
    code but possibly a name or free text, so the run stops (the value is never shown):
    the contract carries codes, never prose (``pipeline.ingest.identifiers``)."""

    name: str
    description: str
    max_length: int
    max_words: int
    pattern: str | None
    """RE2/Python pattern the whole (trimmed) value must match; None: any short label."""


TOKEN = TextRule(
    "token",
    "a pseudonymous token: no spaces, quotes, commas or angle brackets, at most 64 characters",
    64,
    1,
    r"[^\s,;\"'<>]+",
)
LABEL = TextRule(
    "label",
    "a code or short label: at most 60 characters and 6 words, no sentence punctuation, "
    "nothing that reads as a person's name (an honorific such as Dr or Mrs before a "
    "capitalised word, or two capitalised words neither of which is a service word)",
    60,
    6,
    None,
)
TEXT_RULES = {
    "id": TOKEN,
    "string": LABEL,
    "category": LABEL,
    "boolean": LABEL,
    "date": LABEL,
    "number": LABEL,
    "integer": LABEL,
}
"""The text rule of each kind of contract column (read before the column is parsed)."""
SCHEDULED_BEFORE_REFERRAL_DAYS = 30


class _Table(pa.DataFrameModel):
    """What every input table shares: extra columns are allowed (dropped and listed by
    ingest) and nothing is coerced here (ingest parses each column itself)."""

    class Config:
        strict = False
        coerce = False


class Episodes(_Table):
    """One row per episode of care (a referral that was offered treatment)."""

    episode_id: Series[str] = pa.Field(unique=True, description="Unique pseudonymous token.")
    client_id: Series[str] = pa.Field(
        description="Pseudonymous token; a client may have several episodes."
    )
    therapist_id: Series[str] | None = pa.Field(
        nullable=True, description="Pseudonymous token of the main clinician."
    )
    site_id: Series[str] | None = pa.Field(nullable=True, description="Service or clinic code.")
    referral_date: Series[pd.Timestamp] = pa.Field(
        description="May be date-shifted per client; only intervals are analysed."
    )
    end_date: Series[pd.Timestamp] | None = pa.Field(
        nullable=True, description="Missing = still open at extract."
    )
    end_reason: Series[str] | None = pa.Field(
        isin=END_REASONS,
        nullable=True,
        description="`dropped_out` = client ended without agreement.",
    )
    age_band: Series[str] | None = pa.Field(isin=AGE_BANDS, nullable=True)
    gender: Series[str] | None = pa.Field(isin=GENDERS, nullable=True)
    presenting_problem: Series[str] | None = pa.Field(isin=PRESENTING_PROBLEMS, nullable=True)
    treatment: Series[str] | None = pa.Field(
        nullable=True, description="e.g. `CBT`, `counselling`, `IPT`, `guided_self_help`."
    )
    planned_sessions: Series[pd.Int64Dtype] | None = pa.Field(ge=1, le=100, nullable=True)


class Sessions(_Table):
    """One row per scheduled appointment, whatever happened to it."""

    session_id: Series[str] = pa.Field(unique=True)
    episode_id: Series[str] = pa.Field(description="Must exist in episodes.")
    scheduled_date: Series[pd.Timestamp] = pa.Field(
        description="Not before referral_date − 30 days; not after the extract date."
    )
    status: Series[str] = pa.Field(isin=SESSION_STATUSES, description="`did_not_attend` = no-show.")
    notice_hours: Series[float] | None = pa.Field(
        ge=0,
        nullable=True,
        description="For cancellations: hours of notice given; < 24 is a late cancellation.",
    )
    modality: Series[str] | None = pa.Field(isin=MODALITIES, nullable=True)
    duration_min: Series[pd.Int64Dtype] | None = pa.Field(
        ge=1, le=240, nullable=True, description="Attended sessions only."
    )
    agenda_set_by: Series[str] | None = pa.Field(
        isin=AGENDA_SETTERS, nullable=True, description="Who set the session agenda."
    )
    homework_assigned: Series[pd.BooleanDtype] | None = pa.Field(
        nullable=True, description="Homework agreed at this session."
    )
    homework_completed: Series[str] | None = pa.Field(
        isin=HOMEWORK_COMPLETION,
        nullable=True,
        description="For homework agreed at the previous session.",
    )
    alliance_score: Series[float] | None = pa.Field(
        ge=0,
        le=40,
        nullable=True,
        description="Session alliance rating (default scale: Session Rating Scale, 0–40).",
    )
    barrier_reported: Series[str] | None = pa.Field(
        isin=BARRIERS, nullable=True, description="Obstacle the client raised."
    )


class Measures(_Table):
    """One row per completed outcome questionnaire."""

    episode_id: Series[str] = pa.Field(description="Must exist in episodes.")
    measure_date: Series[pd.Timestamp]
    session_id: Series[str] | None = pa.Field(
        nullable=True, description="The session it was completed at, if any."
    )
    instrument: Series[str] = pa.Field(
        isin=INSTRUMENT_NAMES, description="A key of the instrument registry."
    )
    score: Series[float] = pa.Field(description="Total score within the instrument's range.")


class Goals(_Table):
    """One row per therapy goal."""

    goal_id: Series[str] = pa.Field(unique=True)
    episode_id: Series[str] = pa.Field(description="Must exist in episodes.")
    set_date: Series[pd.Timestamp]
    set_by: Series[str] = pa.Field(isin=GOAL_SETTERS)
    achieved: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)


class GoalRatings(_Table):
    """Repeated progress ratings of a goal (Goal-Based Outcomes style, 0–10)."""

    goal_id: Series[str] = pa.Field(description="Must exist in goals.")
    rating_date: Series[pd.Timestamp]
    rating: Series[float] = pa.Field(ge=0, le=10)


class Contacts(_Table):
    """Communication between sessions."""

    episode_id: Series[str] = pa.Field(description="Must exist in episodes.")
    contact_date: Series[pd.Timestamp]
    direction: Series[str] = pa.Field(isin=CONTACT_DIRECTIONS)
    channel: Series[str] | None = pa.Field(isin=CONTACT_CHANNELS, nullable=True)
    responded: Series[pd.BooleanDtype] | None = pa.Field(
        nullable=True,
        description="For `service_to_client`: did the client reply within 7 days.",
    )


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "episodes": Episodes,
    "sessions": Sessions,
    "measures": Measures,
    "goals": Goals,
    "goal_ratings": GoalRatings,
    "contacts": Contacts,
}
REQUIRED_TABLES = ("episodes", "sessions", "measures")
OPTIONAL_TABLES = ("goals", "goal_ratings", "contacts")


@dataclass(frozen=True)
class ColumnSpec:
    """A flattened view of one contract column (what readers and docs need)."""

    table: str
    name: str
    kind: str  # "id", "string", "category", "date", "number", "integer", "boolean"
    required: bool
    nullable: bool
    unique: bool
    allowed: tuple[str, ...] | None
    minimum: float | None
    maximum: float | None
    description: str


def _kind(column: pa.Column, allowed) -> str:
    dtype = str(column.dtype)
    if "datetime" in dtype:
        return "date"
    if dtype == "boolean":
        return "boolean"
    if dtype == "Int64":
        return "integer"
    if "float" in dtype:
        return "number"
    if allowed is not None:
        return "category"
    return "id" if column.name.endswith("_id") else "string"


def instrument_names() -> tuple[str, ...]:
    """The values ``measures.instrument`` may take: the active instrument registry's names
    (the built-ins outside a stage; ``pipeline.instruments.use_registry``)."""
    return tuple(active_registry())


def column_specs(table: str) -> list[ColumnSpec]:
    """The contract columns of ``table`` in declaration order (``measures.instrument``
    allowing the active registry's instruments)."""
    specs = list(_column_specs(table))
    if table == "measures":
        names = instrument_names()
        specs = [
            dataclasses.replace(s, allowed=names) if s.name == "instrument" else s for s in specs
        ]
    return specs


def table_schema(table: str) -> pa.DataFrameSchema:
    """The pandera schema of ``table`` as it is enforced now: the declared model, with
    ``measures.instrument`` checked against the active registry (``instrument_names``)."""
    schema = SCHEMAS[table].to_schema()
    if table != "measures":
        return schema
    return schema.update_column("instrument", checks=[pa.Check.isin(instrument_names())])


@functools.cache
def _column_specs(table: str) -> tuple[ColumnSpec, ...]:
    # Building a pandera schema takes tens of milliseconds; ingest asks for each table's
    # specs many times. The specs are frozen dataclasses, so sharing them is safe.
    schema = SCHEMAS[table].to_schema()
    specs = []
    for name, col in schema.columns.items():
        allowed = minimum = maximum = None
        for check in col.checks:
            stats = check.statistics
            if "allowed_values" in stats:
                allowed = tuple(stats["allowed_values"])
            if "min_value" in stats:
                minimum = stats["min_value"]
            if "max_value" in stats:
                maximum = stats["max_value"]
        specs.append(
            ColumnSpec(
                table=table,
                name=name,
                kind=_kind(col, allowed),
                required=col.required,
                nullable=col.nullable,
                unique=col.unique,
                allowed=allowed,
                minimum=minimum,
                maximum=maximum,
                description=col.description or "",
            )
        )
    return tuple(specs)


FUTURE_DATED = {
    "episodes": ("referral_date",),
    "sessions": ("scheduled_date",),
    "measures": ("measure_date",),
    "goals": ("set_date",),
    "goal_ratings": ("rating_date",),
    "contacts": ("contact_date",),
}
"""Dates that cannot lie after the extract date (rule ``future_date``), per table."""


@dataclass(frozen=True)
class TableRule:
    """A rule that spans columns or tables; ingest quarantines rows that break it."""

    name: str
    table: str
    description: str


TABLE_RULES: tuple[TableRule, ...] = (
    TableRule("orphan_episode", "sessions", "episode_id must exist in (accepted) episodes."),
    TableRule("orphan_episode", "measures", "episode_id must exist in (accepted) episodes."),
    TableRule("orphan_episode", "goals", "episode_id must exist in (accepted) episodes."),
    TableRule("orphan_episode", "contacts", "episode_id must exist in (accepted) episodes."),
    TableRule("orphan_goal", "goal_ratings", "goal_id must exist in (accepted) goals."),
    TableRule("end_before_referral", "episodes", "end_date must not be before referral_date."),
    TableRule(
        "scheduled_before_referral",
        "sessions",
        f"scheduled_date must not be more than {SCHEDULED_BEFORE_REFERRAL_DAYS} days before "
        "the episode's referral_date.",
    ),
    *(
        TableRule("future_date", table, f"{column} must not be after the extract date.")
        for table, columns in FUTURE_DATED.items()
        for column in columns
    ),
    TableRule(
        "duration_not_attended",
        "sessions",
        "duration_min is recorded for attended sessions only.",
    ),
    TableRule(
        "score_out_of_range",
        "measures",
        "score must lie within the instrument's range (see the instrument registry).",
    ),
    TableRule(
        "fractional_score",
        "measures",
        "score must be a whole number for instruments whose total is a sum of item scores "
        "(all but visual-analogue scales such as ORS).",
    ),
)
