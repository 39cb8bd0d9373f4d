"""Typed run parameters, loaded once from ``params.yaml``.

Every section is a frozen pydantic model with ``extra="forbid"``: a misspelt or unknown
key fails at load time with the path of the offending key, instead of being silently
ignored (the usual failure of raw-dict params).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from pipeline.instruments import Instrument, InstrumentRegistry


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PathsParams(_Section):
    """Artefact locations, relative to the project root (or to ``--out`` for ``engage run``)."""

    raw_dir: str = "data/raw/synthetic"
    truth_dir: str = "data/raw/synthetic_truth"
    input_dir: str = "data/raw/synthetic"
    interim_dir: str = "data/interim"
    processed_dir: str = "data/processed"
    results_dir: str = "data/results"
    """Exact model tables and cards (for the analyst; never shared: reports/ has the
    disclosure-controlled copies)."""
    reports_dir: str = "reports"
    logs_dir: str = "data/logs"


class SyntheticEffects(_Section):
    """Planted effects of the synthetic cohort (the ground truth the models should recover).

    Units: PHQ-9 points of full-course symptom change per SD of a latent trait, unless noted.
    """

    alliance_on_change: float = 2.2
    homework_on_change: float = 1.7
    goals_on_change: float = 2.0
    engagement_on_change: float = 0.6
    alliance_within_effect: Annotated[float, Field(ge=0)] = 0.15
    """PHQ-9 points lower at a session per SRS point of that session's alliance above the
    client's own expected level (a within-client effect)."""
    therapist_sd_change: Annotated[float, Field(ge=0)] = 1.5


class SyntheticParams(_Section):
    seed: int = 20261127
    n_episodes: Annotated[int, Field(ge=10)] = 4000
    extract_date: dt.date = dt.date(2025, 3, 31)
    referral_span_days: Annotated[int, Field(ge=60)] = 730
    repeat_client_share: Annotated[float, Field(ge=0, le=0.5)] = 0.08
    caseload_per_therapist: Annotated[int, Field(ge=5)] = 60
    therapists_per_site: Annotated[int, Field(ge=1)] = 8
    messy_row_share: Annotated[float, Field(ge=0, le=0.2)] = 0.004
    alias_row_share: Annotated[float, Field(ge=0, le=0.5)] = 0.01
    oracle_replicates: Annotated[int, Field(ge=0)] = 48
    landmark_days: Annotated[int, Field(ge=1)] = 42
    """Days from the first appointment to the landmark. Part of each client's change happens
    only after it (late change, unknowable in the window); the landmark oracle conditions on
    the state there. Keep equal to the features' window length."""
    file_format: str = Field(default="csv", pattern="^(csv|parquet)$")
    layout: Literal["contract", "nhstt"] = "contract"
    """Write the export as the contract's tables, or as the NHS Talking Therapies Data Set
    tables (IDS101Referral, IDS201CareContact, …; docs/layouts.md)."""
    effects: SyntheticEffects = SyntheticEffects()


DEFAULT_ALIASES: dict[str, dict[str, str]] = {
    # NHS Data Dictionary "attended or did not attend" codes and common spellings.
    "status": {
        "5": "attended",
        "6": "attended",
        "7": "did_not_attend",
        "3": "did_not_attend",
        "2": "cancelled_by_client",
        "4": "cancelled_by_service",
        "0": "future",
        "dna": "did_not_attend",
        "did_not_attend": "did_not_attend",
        "no_show": "did_not_attend",
        "attended_on_time": "attended",
        "arrived_late_but_seen": "attended",
        "cancelled_by_patient": "cancelled_by_client",
        "cancelled_by_provider": "cancelled_by_service",
        "arrived_late_not_seen": "did_not_attend",
    },
    "boolean": {
        "true": "true",
        "false": "false",
        "1": "true",
        "0": "false",
        "yes": "true",
        "no": "false",
        "y": "true",
        "n": "false",
        "t": "true",
        "f": "false",
    },
}


class IngestParams(_Section):
    """How ingest reads an export. ``aliases`` maps column (or ``boolean``) → raw → contract
    value, applied after trimming, lower-casing and turning spaces/hyphens into underscores.
    The status value ``future`` marks an appointment in the future (NHS code 0); such rows
    are quarantined like any appointment dated after the extract date."""

    extract_date: dt.date | None = None
    """Extract date for this run only. ``None`` (the default, and what params.yaml holds):
    the export's own manifest (``export.json``), else the latest valid appointment date in
    the export (said so). A date set here applies to whatever export the run reads, so set
    it with the input (``engage run --extract-date``, ``dvc exp run -S``), not for good."""
    future_dated_max_share: Annotated[float, Field(ge=0, le=1)] = 0.02
    """Stop (writing nothing) when the extract date would quarantine more than this share
    of appointments as future-dated: the date most likely belongs to another export.
    ``engage ingest/run --accept-future-dated`` (or 1.0 here) proceeds anyway."""
    layout: Literal["auto", "contract", "nhstt"] = "auto"
    """How the export's tables are laid out: ``auto`` detects it from the file names;
    ``contract`` (docs/data-contract.md) or ``nhstt`` (the NHS Talking Therapies Data Set
    v2.x tables, docs/layouts.md). Ignored when ``mapping`` is set."""
    mapping: str | None = None
    """A YAML mapping file for any other system's export (docs/layouts.md): its tables and
    columns renamed, values mapped and joined onto the contract."""
    aliases: dict[str, dict[str, str]] = Field(default_factory=lambda: DEFAULT_ALIASES)
    """Extra codes per column; merged over the built-in map (NHS attendance codes etc.)."""
    missing_markers: tuple[str, ...] = ("NA", "N/A", "n/a", "NULL", "null", "None", "#N/A")
    """Cell values read as missing (after trimming), in any column."""
    rekey: bool = False
    """Replace every id with an HMAC-SHA256 token keyed by the environment variable below."""
    rekey_key_env: str = "ENGAGE_REKEY_KEY"

    @field_validator("aliases", mode="after")
    @classmethod
    def _merge_with_defaults(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        """User codes extend the built-in map; columns and targets must exist in the contract."""
        from pipeline.contract import SCHEMAS, column_specs

        allowed: dict[str, tuple[str, ...]] = {"boolean": ("true", "false")}
        for table in SCHEMAS:
            for spec in column_specs(table):
                if spec.kind == "category":
                    extra = ("future",) if spec.name == "status" else ()
                    allowed[spec.name] = (*(spec.allowed or ()), *extra)
                elif spec.kind == "boolean":
                    allowed[spec.name] = ("true", "false")
        merged = {col: dict(codes) for col, codes in DEFAULT_ALIASES.items()}
        for col, codes in value.items():
            if col not in allowed:
                raise ValueError(
                    f"aliases: '{col}' is not a category or boolean column of "
                    f"the contract (known: {', '.join(sorted(allowed))})"
                )
            for code, target in codes.items():
                if str(target) not in allowed[col]:
                    raise ValueError(
                        f"aliases.{col}: '{code}' maps to '{target}', which is "
                        f"not an allowed value ({', '.join(allowed[col])})"
                    )
            merged.setdefault(col, {}).update({str(k): str(v) for k, v in codes.items()})
        return merged


class InstrumentParams(_Section):
    """One outcome measure a service registers under ``instruments:`` (the key is its name,
    as written in the export's ``instrument`` column): range, direction, caseness,
    reliable change and, for the clinical-significance cut-offs, population norms
    (docs/clinical-significance.md). Built-in instruments cannot be redefined."""

    minimum: float
    maximum: float
    higher_is_worse: bool
    """True for symptom scales (PHQ-9, HAMD, CORE-OM); False when higher is better (ORS)."""
    caseness: float
    """Clinical cut-off: at or above it is clinical when higher is worse, strictly below it
    when higher is better."""
    reliable_change: Annotated[float, Field(gt=0)] | None = None
    """Points of change counted as reliable (the points rule); null: the Jacobson–Truax
    criterion 1.96 · reference_sd · sqrt(2 · (1 − reliability))."""
    reliability: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Reliability (internal consistency or test–retest), strictly between 0 and 1."""
    reference_sd: Annotated[float, Field(gt=0)] | None = None
    """SD of the scores in a reference (normally intake) population."""
    dysfunctional_mean: float | None = None
    dysfunctional_sd: Annotated[float, Field(gt=0)] | None = None
    functional_mean: float | None = None
    functional_sd: Annotated[float, Field(gt=0)] | None = None
    integer_scores: bool = True
    """The total is a sum of whole item scores (a fractional score is quarantined)."""
    source: str = ""
    """Where the figures come from (a reference), shown in the report."""

    @model_validator(mode="after")
    def _consistent(self) -> InstrumentParams:
        lo, hi = self.minimum, self.maximum
        if not hi > lo:
            raise ValueError(f"maximum ({hi:g}) must be greater than minimum ({lo:g})")
        if not lo <= self.caseness <= hi:
            raise ValueError(f"caseness ({self.caseness:g}) must lie within {lo:g}–{hi:g}")
        if self.reliable_change is not None and self.reliable_change > hi - lo:
            raise ValueError(
                f"reliable_change ({self.reliable_change:g}) is more than the whole range "
                f"({hi - lo:g} points)"
            )
        if self.reliable_change is None and (self.reliability is None or self.reference_sd is None):
            raise ValueError(
                "reliable_change is null, so it is computed by Jacobson–Truax from "
                "reliability and reference_sd: give both, or reliable_change in points"
            )
        for kind in ("dysfunctional", "functional"):
            mean, sd = getattr(self, f"{kind}_mean"), getattr(self, f"{kind}_sd")
            if (mean is None) != (sd is None):
                raise ValueError(f"give {kind}_mean and {kind}_sd together (or neither)")
            if mean is not None and not lo <= mean <= hi:
                raise ValueError(f"{kind}_mean ({mean:g}) must lie within {lo:g}–{hi:g}")
        d, f = self.dysfunctional_mean, self.functional_mean
        if d is not None and f is not None:
            worse = d > f if self.higher_is_worse else d < f
            if not worse:
                side = "above" if self.higher_is_worse else "below"
                raise ValueError(
                    f"dysfunctional_mean ({d:g}) must lie {side} functional_mean ({f:g}) "
                    f"when higher_is_worse is {str(self.higher_is_worse).lower()}"
                )
        return self

    def to_instrument(self, name: str) -> Instrument:
        """The registry entry for ``name``."""
        from pipeline.instruments import Instrument, jacobson_truax_criterion

        where = f"params.yaml ({self.source})" if self.source else "params.yaml"
        rc, rc_source = self.reliable_change, where
        if rc is None:
            assert self.reference_sd is not None and self.reliability is not None  # validated
            rc = jacobson_truax_criterion(self.reference_sd, self.reliability)
            rc_source = f"Jacobson–Truax from reliability and reference SD, {where}"
        return Instrument(
            name,
            self.minimum,
            self.maximum,
            self.higher_is_worse,
            self.caseness,
            rc,
            rc_source,
            reference_sd=self.reference_sd,
            reliability=self.reliability,
            psychometrics_source=where,
            integer_scores=self.integer_scores,
            dysfunctional_mean=self.dysfunctional_mean,
            dysfunctional_sd=self.dysfunctional_sd,
            functional_mean=self.functional_mean,
            functional_sd=self.functional_sd,
            norms_source=where
            if self.dysfunctional_mean is not None or self.functional_mean is not None
            else "",
        )


_RESERVED_PREFIXES = ("primary", "nhs")
"""Outcome-table column prefixes that are not instruments (``primary_*``, ``nhs_*``)."""
_INSTRUMENT_NAME = r"[A-Za-z0-9][A-Za-z0-9 ._+/()-]{0,39}"


def _check_registered(value: dict[str, InstrumentParams]) -> dict[str, InstrumentParams]:
    """Names a service registers: new (not built in), short codes, and each with its own
    outcome-column prefix (PHQ-9 → ``phq9_``; docs/outcomes.md)."""
    import re

    from pipeline.instruments import BUILTIN_INSTRUMENTS

    taken = {_prefix(n): n for n in BUILTIN_INSTRUMENTS}
    taken |= {p: f"the {p}_ columns" for p in _RESERVED_PREFIXES}
    for name in value:
        if name in BUILTIN_INSTRUMENTS:
            raise ValueError(
                f"{name!r} is built in (docs/data-contract.md); register a variant under "
                "another name"
            )
        if not re.fullmatch(_INSTRUMENT_NAME, name):
            raise ValueError(
                f"instrument name {name!r}: use a short code (letters, digits, spaces and "
                "- . _ + / ( ), at most 40 characters, starting with a letter or digit)"
            )
        p = _prefix(name)
        if p in taken:
            raise ValueError(
                f"instrument {name!r} would have the column prefix {p}_ of {taken[p]}; "
                "choose a name that differs in its letters or digits"
            )
        taken[p] = repr(name)
    return value


def _prefix(name: str) -> str:
    """The outcome-column prefix of an instrument name (``pipeline.outcomes.prefix``)."""
    import re

    return re.sub(r"[^a-z0-9]", "", name.lower())


def instrument_registry(params: Params) -> InstrumentRegistry:
    """The built-in instruments plus those ``params`` registers (``instruments:``), for
    ``pipeline.instruments.use_registry`` (the stage runner activates it)."""
    from pipeline.instruments import BUILTIN_INSTRUMENTS

    return BUILTIN_INSTRUMENTS.with_instruments(
        spec.to_instrument(name) for name, spec in params.instruments.items()
    )


_REGISTERING: ContextVar[tuple[str, ...]] = ContextVar("instruments_registering", default=())
"""Names registered by the Params being validated (set by ``Params`` while it validates)."""


def _check_instrument(value: str) -> str:
    """A built-in instrument, one of the active registry, or one the same params register."""
    from pipeline.instruments import active_registry

    known = [*active_registry(), *(n for n in _REGISTERING.get() if n not in active_registry())]
    if value not in known:
        raise ValueError(
            f"unknown instrument {value!r}; known: {', '.join(known)} (register others "
            "under instruments: in params.yaml)"
        )
    return value


class FeaturesParams(_Section):
    window_days: Annotated[int, Field(ge=7, le=365)] = 42
    """Landmark window length from the first scheduled appointment (days)."""
    alliance_cutoff: float = 36.0
    """Alliance at or below this is low (Session Rating Scale ≤ 36 flags risk; lit. §8b)."""


class OutcomesParams(_Section):
    primary_instrument: str = "PHQ-9"
    poor_outcome: Literal["not_reliably_improved", "reliable_deterioration", "not_recovered"] = (
        "not_reliably_improved"
    )
    """Default: not reliably improved (reliable deterioration included), among episodes with
    two or more scores on the primary instrument."""
    population: Literal["caseness", "all"] = "caseness"
    """Who the improvement and recovery outcomes are defined for: clients at caseness on the
    primary instrument at baseline (``caseness``, the NHS Talking Therapies convention: a
    client who starts below it cannot improve reliably and would be scored "poor" by
    construction), or every client with a baseline (``all``, a sensitivity analysis only).
    Reliable deterioration is defined for every client either way. Clients below caseness
    are described separately in the technical report."""
    baseline_before_days: Annotated[int, Field(ge=0)] = 30
    baseline_after_days: Annotated[int, Field(ge=0)] = 14
    clinical_significance_methods: tuple[Literal["JT", "GLN", "HLL", "EN", "NK", "HA"], ...] = (
        "JT",
        "GLN",
        "HLL",
        "EN",
        "NK",
        "HA",
    )
    """Reliable-change methods (``pipeline.clinical_significance``) whose combined
    classification the technical report shows beside the points rule (for PHQ-9 and GAD-7
    the NHS Talking Therapies rules): Jacobson–Truax, Gulliksen–Lord–Novick,
    Hsu–Linn–Lord, Edwards–Nunnally, Nunnally–Kotsch, Hageman–Arrindell."""

    _known_instrument = field_validator("primary_instrument")(_check_instrument)


class ModelsParams(_Section):
    """The outcome models: which features form each block, what is adjusted for, clustering."""

    cluster: str = "therapist_id"
    """Episodes column for cluster-robust errors; where it is missing, ``fallback_cluster``."""
    fallback_cluster: str = "site_id"
    min_clusters: Annotated[int, Field(ge=2)] = 20
    """Fewer clusters than this: small-sample corrected cluster-robust errors (CR2 for
    linear and logistic, CR1 for Cox) with a t(G − 1) reference, said on the model card."""
    case_mix: tuple[str, ...] = ("age_band", "gender", "presenting_problem", "treatment")
    """Episodes columns adjusted for (with baseline severity); absent columns are skipped."""
    min_level_count: Annotated[int, Field(ge=1)] = 30
    """Case-mix categories with fewer episodes are pooled into one "other (pooled)" level."""
    min_level_events: Annotated[int, Field(ge=1)] = 5
    """In a model of a binary outcome or an event (logistic, Cox), a case-mix category with
    fewer events, or fewer non-events, among the model's rows is pooled too; a pooled level
    still that sparse joins the most common category (else it separates the outcome and
    the whole adjusted model is not estimable). Said on the card."""
    blocks: dict[str, tuple[str, ...]] = {
        "attendance": ("dna_rate", "late_cancel_rate", "days_to_first_attended"),
        "communication": ("alliance_mean", "client_contacts_per_week", "agenda_client_share"),
        "goals": ("goal_owned_share", "homework_completion_rate"),
        "obstacles": ("barrier_share",),
        "index": ("disengagement_index",),
    }
    """Feature block → engagement features modelled together (continuous: odds ratio per SD)."""

    @field_validator("blocks")
    @classmethod
    def _distinct_features(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for block, columns in value.items():
            twice = sorted({c for c in columns if columns.count(c) > 1})
            if twice:
                raise ValueError(f"block '{block}' lists {', '.join(twice)} more than once")
        return value

    flags: tuple[str, ...] = (
        "flag_missed_first_appointment",
        "flag_two_plus_no_shows",
        "flag_alliance_below_cutoff",
        "flag_no_client_goal",
        "flag_homework_under_half",
    )
    """Disengagement flags, each modelled on its own (present vs absent)."""
    therapist_level: bool = True
    """Also fit the trajectory model with therapist as a third level (documented if it fails)."""
    therapist_level_max_episodes: Annotated[int, Field(ge=100)] | None = 10000
    """Above this many episodes the three-level trajectory model (statsmodels; its cost grows
    with the cohort) is fitted on a random sample of whole clusters (therapists' caseloads)
    of about this size; null fits every episode. The two-level models always use every
    episode (the exact fit takes seconds at national scale)."""
    trajectory_sample_seed: int = 20261127
    dropout_periods_days: tuple[int, ...] = (28, 84)
    """Cut points (days after the landmark) of the period-specific dropout hazard ratios
    (``dropout_by_period``: the index model within days 0–28, 28–84 and 84+), which describe
    the association over time where proportional hazards fail; empty: not fitted."""
    at_risk_weeks: tuple[int, ...] = (0, 4, 8, 12, 16, 20, 26)
    """Weeks after the landmark at which numbers at risk are tabulated."""
    dose_max_sessions: Annotated[int, Field(ge=2)] = 20
    """Dose–response: episodes with more sessions are pooled in the last bar."""


OUTCOME_MODELS = {"final_score": "ancova", "poor_outcome": "logistic", "dropout": "cox"}
"""The model each declared outcome is analysed with: the final score by linear regression
on the baseline (ANCOVA), the landmark poor outcome by logistic regression, dropout from
the landmark by a Cox model (all adjusted for case mix, errors clustered by therapist)."""


class DeclaredAnalysis(_Section):
    """One analysis named before the results are seen: an outcome and an exposure (a block
    of ``models.blocks``, a flag of ``models.flags``, or ``flags group``), always the
    adjusted model. ``model`` and ``population`` repeat what the outcome implies, so the
    declaration reads in full in params.yaml; they are checked, never chosen."""

    outcome: Literal["final_score", "poor_outcome", "dropout"]
    exposure: str
    model: Literal["ancova", "logistic", "cox"] | None = None
    """ancova (final_score), logistic (poor_outcome), cox (dropout); null: implied."""
    population: Literal["caseness", "all", "landmark"] | None = None
    """caseness / all (= ``outcomes.population``) for the score outcomes, landmark (every
    episode in treatment at the landmark) for dropout; null: implied."""

    @model_validator(mode="after")
    def _model_matches(self) -> DeclaredAnalysis:
        implied = OUTCOME_MODELS[self.outcome]
        if self.model is not None and self.model != implied:
            raise ValueError(f"outcome {self.outcome} is analysed by {implied}, not {self.model}")
        if self.outcome == "dropout" and self.population not in (None, "landmark"):
            raise ValueError(
                "dropout is analysed in the landmark population (population: landmark)"
            )
        if self.outcome != "dropout" and self.population == "landmark":
            raise ValueError(f"{self.outcome}: population is outcomes.population (caseness or all)")
        return self

    @property
    def label(self) -> str:
        return f"{self.outcome}: {self.exposure}"


class AnalysisParams(_Section):
    """The analysis plan: one primary analysis tested at ``alpha``; a family of secondary
    analyses tested together with a multiplicity correction; every other model in the
    report is exploratory (estimates and intervals, no claim of a test)."""

    primary: DeclaredAnalysis = DeclaredAnalysis(
        outcome="final_score", exposure="index", model="ancova", population="caseness"
    )
    secondary: tuple[DeclaredAnalysis, ...] = (
        DeclaredAnalysis(outcome="poor_outcome", exposure="index"),
        DeclaredAnalysis(outcome="dropout", exposure="index"),
        DeclaredAnalysis(outcome="final_score", exposure="attendance"),
        DeclaredAnalysis(outcome="final_score", exposure="communication"),
        DeclaredAnalysis(outcome="final_score", exposure="goals"),
        DeclaredAnalysis(outcome="final_score", exposure="obstacles"),
    )
    multiplicity: Literal["holm", "bonferroni"] = "holm"
    """How the secondary family's p-values are adjusted (every exposure term of every
    secondary analysis is one test of the family)."""
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05

    @model_validator(mode="after")
    def _distinct(self) -> AnalysisParams:
        labels = [a.label for a in (self.primary, *self.secondary)]
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise ValueError(f"declared more than once: {', '.join(repeated)}")
        return self


class PredictionParams(_Section):
    """Predictive validity: learners, grouped cross-validation, bootstrap, feature blocks."""

    seed: int = 20261127
    max_episodes: Annotated[int, Field(ge=100)] | None = 30000
    """Above this many episodes, predictive validity is estimated on a random sample of
    whole clusters of about this size (same seed); null uses every episode."""
    folds: Annotated[int, Field(ge=2)] = 5
    repeats: Annotated[int, Field(ge=1)] = 3
    bootstrap: Annotated[int, Field(ge=50)] = 500
    """Cluster-bootstrap replicates (therapists resampled) for the metric intervals."""
    logistic_c: Annotated[float, Field(gt=0)] = 1.0
    """Inverse L2 penalty of the logistic regression (on standardised predictors)."""
    boosting_max_iter: Annotated[int, Field(ge=10)] = 200
    boosting_learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    boosting_max_leaf_nodes: Annotated[int, Field(ge=2)] = 15
    boosting_min_samples_leaf: Annotated[int, Field(ge=1)] = 40
    permutation_repeats: Annotated[int, Field(ge=1)] = 3
    calibration_bins: Annotated[int, Field(ge=2)] = 10
    plausible_auc_max: float = 0.80
    """A cross-validated AUC above this from early-window data is flagged as likely leakage."""
    temporal_train_share: Annotated[float, Field(gt=0, lt=1)] = 0.67
    """Temporal validation: the share of the episodes with a defined outcome, earliest
    referrals first, that trains the model; the later referrals test it (split on the
    referral date at this quantile, every training referral before every test referral)."""
    baseline: tuple[str, ...] = ("primary_baseline",)
    """Baseline predictors besides case mix (``models.case_mix``)."""
    blocks: dict[str, tuple[str, ...]] = {
        "attendance": (
            "attendance_rate",
            "dna_rate",
            "late_cancel_rate",
            "first_attended",
            "max_consecutive_missed",
            "days_to_first_attended",
            "gap_mean_days",
            "gap_max_days",
        ),
        "communication": (
            "alliance_mean",
            "alliance_min",
            "alliance_slope_per_week",
            "alliance_low_share",
            "client_contacts_per_week",
            "outreach_response_rate",
            "agenda_client_share",
        ),
        "goals": (
            "n_goals",
            "goal_owned_share",
            "days_to_first_goal",
            "homework_completion_rate",
            "goal_rating_gain",
        ),
        "obstacles": ("n_barriers", "barrier_share", "notice_cancel_share", "modality_changes"),
        "small wins": ("early_change_primary",),
    }
    """Feature block → landmark-window features (permutation importance is by block)."""


class MissingDataParams(_Section):
    """Sensitivity of the main effect to missing final scores."""

    imputations: Annotated[int, Field(ge=2)] = 20
    seed: int = 20261127
    max_episodes: Annotated[int, Field(ge=100)] | None = 30000
    """Above this many episodes, the sensitivity analysis runs on a random sample of whole
    clusters of about this size (same seed); null uses every episode."""
    auxiliaries: tuple[str, ...] = (
        "attendance_rate",
        "alliance_mean",
        "homework_completion_rate",
        "goal_owned_share",
        "early_change_primary",
        "n_attended",
        "dropout",
        "sessions_attended_total",
        "weeks_in_treatment",
    )
    """Variables that inform the imputation besides the analysis model's: window features and
    how the course went on (dropout, sessions, weeks). Post-landmark variables are legitimate
    here — they predict the missing score and its missingness but are not predictors in the
    analysis model — and make missing-at-random more plausible."""
    delta_grid: tuple[float, ...] = (-8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8)
    """Shifts (instrument points; positive = worse) added to imputed final scores."""


class DisclosureParams(_Section):
    """Statistical disclosure control of everything meant for people (reports, metrics)."""

    threshold: Annotated[int, Field(ge=2)] = 8
    """Counts of 1 to threshold − 1 are suppressed; estimates resting on fewer are withheld."""
    rounding_base: Annotated[int, Field(ge=1)] = 5
    """Other counts are rounded to the nearest multiple of this."""
    label_max_chars: Annotated[int, Field(ge=8)] = 80
    """Labels from the input (sites, treatments, categories) are shared cut to this length,
    after the character whitelist (``pipeline.disclosure.safe_label``)."""
    curve_step_weeks: Annotated[int, Field(ge=1)] = 2
    """Survival and incidence curves are shared only at every this many weeks (never per
    event time), each point at a precision the rounding of its number at risk cannot undo."""


class ReportParams(_Section):
    """What the clinician report states: where its dropout finding is read and how clients
    are grouped by predicted risk. Its other wording comes from the settings it describes
    (the landmark window, the calibration bins)."""

    dropout_horizon_weeks: Annotated[int, Field(ge=1)] = 12
    """The key finding on dropout reads the cumulative incidence this many weeks after the
    landmark (a week of the shared curve, ``disclosure.curve_step_weeks``)."""
    risk_groups: Annotated[int, Field(ge=2, le=10)] = 5
    """Clients are put in this many equal groups of predicted risk (5: fifths) for "of 100
    in the highest and lowest group"."""


class DaskParams(_Section):
    """The ``dask`` engine (``engine: dask``; docs/scaling.md): where it runs and how the
    data are split. None of these changes an output, only where and how fast it is made."""

    scheduler_address: str | None = None
    """None = start a local cluster with the settings below; otherwise the address of a
    running scheduler to connect to, e.g. ``tcp://10.0.0.5:8786`` (dask-jobqueue,
    Kubernetes, ``dask scheduler``). Its workers must run this package's version."""
    connect_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30
    """Seconds to wait for the scheduler to answer, and for its first worker to join."""
    n_workers: Annotated[int, Field(ge=1)] | None = None
    """Local cluster: worker processes (None = one per core, as Dask chooses)."""
    threads_per_worker: Annotated[int, Field(ge=1)] = 1
    """Local cluster: threads per worker (the per-bucket work is pandas, mostly holding the
    GIL, so single-threaded worker processes are the sensible default)."""
    processes: bool = True
    """Local cluster: workers in separate processes (False = threads of this process)."""
    memory_limit: str = "auto"
    """Local cluster: memory per worker, ``auto`` (the machine's memory shared evenly) or a
    size such as ``4GiB``; a worker past it spills to disk, then is restarted."""
    partitions: Annotated[int, Field(ge=1, le=100_000)] | None = None
    """Episode buckets the data are split into; None = one per ``episodes_per_partition``
    episodes. A partitioned export (engage partition) keeps its own."""
    episodes_per_partition: Annotated[int, Field(ge=1)] = 20_000
    """Bucket size when ``partitions`` is None (every table's rows of those episodes)."""

    @field_validator("scheduler_address")
    @classmethod
    def _looks_like_an_address(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError(
                f"{value!r} is not a scheduler address; write it as tcp://host:port "
                "(e.g. tcp://10.0.0.5:8786), or null to start a local cluster"
            )
        return value

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if value == "auto":
            return value
        from dask.utils import parse_bytes

        try:
            parse_bytes(value)
        except (ValueError, TypeError):
            raise ValueError(
                f"{value!r} is not a memory size; use auto or a size such as 4GiB or 500MB"
            ) from None
        return value


class Params(_Section):
    engine: Literal["pandas", "dask"] = "pandas"
    """How ingest and features run: ``pandas`` in one process, or ``dask`` split into
    episode buckets on a Dask cluster (``dask:``). Both write the same outputs."""
    threads: Annotated[int, Field(ge=1)] | None = None
    """Threads per stage for the compiled thread pools (OpenMP: gradient boosting) and the
    local Dask cluster's workers; None = the CPUs this process may use (affinity and cgroup
    quota, ``pipeline/engine/cpus.py``), never ``os.cpu_count()`` on a shared machine."""
    paths: PathsParams = PathsParams()
    synthetic: SyntheticParams = SyntheticParams()
    ingest: IngestParams = IngestParams()
    features: FeaturesParams = FeaturesParams()
    outcomes: OutcomesParams = OutcomesParams()
    models: ModelsParams = ModelsParams()
    analysis: AnalysisParams = AnalysisParams()
    prediction: PredictionParams = PredictionParams()
    missing_data: MissingDataParams = MissingDataParams()
    disclosure: DisclosureParams = DisclosureParams()
    report: ReportParams = ReportParams()
    dask: DaskParams = DaskParams()
    instruments: Annotated[dict[str, InstrumentParams], AfterValidator(_check_registered)] = {}
    """Outcome measures a service adds to the built-in ones (docs/clinical-significance.md)."""

    @model_validator(mode="wrap")
    @classmethod
    def _registered_instruments_known(cls, data: Any, handler: ModelWrapValidatorHandler) -> Any:
        """While these params validate, the instruments they register count as known
        (``outcomes.primary_instrument`` may name one); reset afterwards."""
        raw = data.get("instruments") if isinstance(data, Mapping) else None
        token = _REGISTERING.set(tuple(raw) if isinstance(raw, Mapping) else ())
        try:
            return handler(data)
        finally:
            _REGISTERING.reset(token)

    @model_validator(mode="after")
    def _declared_analyses_exist(self) -> Params:
        """Each declared analysis names an exposure the models fit, in the population the
        outcome is defined for; the primary rests on one term."""
        known = {*self.models.blocks, *self.models.flags, "flags group"}
        for a in (self.analysis.primary, *self.analysis.secondary):
            if a.exposure not in known:
                raise ValueError(
                    f"analysis: {a.label}: exposure {a.exposure!r} is not a block of "
                    f"models.blocks, a flag of models.flags or 'flags group' "
                    f"(known: {', '.join(sorted(known))})"
                )
            if a.outcome != "dropout" and a.population not in (None, self.outcomes.population):
                raise ValueError(
                    f"analysis: {a.label}: population {a.population} differs from "
                    f"outcomes.population ({self.outcomes.population})"
                )
            if a.outcome == "dropout" and a.exposure not in ("index", "flags group"):
                raise ValueError(
                    f"analysis: {a.label}: dropout is modelled for the index and the flags "
                    "group only"
                )
        primary = self.analysis.primary
        terms = self.models.blocks.get(primary.exposure, (primary.exposure,))
        if primary.exposure == "flags group" or len(terms) != 1:
            raise ValueError(
                f"analysis.primary: exposure {primary.exposure!r} has {len(terms)} terms; the "
                "primary analysis must rest on one (a one-feature block or a flag)"
            )
        return self


class ParamsError(ValueError):
    """params.yaml could not be read or does not match the typed schema."""


def parse_params(raw: dict | None) -> Params:
    """Build the typed params from a parsed mapping; raise ParamsError naming bad keys."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {where}: {err['msg']}")
        raise ParamsError("params.yaml is not valid:\n" + "\n".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (the only place the pipeline reads it)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found; run from the project root or pass --params.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path} cannot be read as UTF-8 text ({exc}).") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path} must hold a mapping of sections (paths:, synthetic:, …).")
    return parse_params(raw)
