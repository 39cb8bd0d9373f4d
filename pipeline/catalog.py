"""The results catalog: every stage, artefact, model id and shared table, declared once.

Producers and consumers both read these declarations, so a rename happens in one place:

- :data:`STAGES` is the stage order (``dvc.yaml``, ``engage run`` and the teaching
  notebooks are checked against or built from it);
- the :class:`Artefact` constants are the files one stage writes and another reads,
  relative to a folder of ``params.paths``;
- :func:`model_id` builds every effect model's name, for the fitter that writes it and for
  the metrics and report that look it up;
- :data:`TABLES` lists every result table a model stage may write: which stage writes
  it, which of its columns count people (disclosure control, ``pipeline/disclosure.py``,
  refuses a table that is not declared here), and the technical report's section that
  shows it;
- :data:`EFFECT_METRICS` names the headline effects of ``reports/metrics.json`` and the
  model and term each is read from.

Adding a model is one entry here (its tables, and a metric if it has a headline number)
plus its fit function; ``tests/test_catalog.py`` checks that every entry reaches the
metrics, the report and ``docs/models.md``.

This module imports nothing from the package: every layer may read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# --- stages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: ``python -m pipeline.stages.<name>`` (a DVC stage of that name)."""

    name: str
    analysis: bool = True
    """Part of ``engage run`` on an export (``synthesize`` only makes the bundled cohort)."""

    @property
    def module(self) -> str:
        return f"pipeline.stages.{self.name}"


STAGES: tuple[Stage, ...] = (
    Stage("synthesize", analysis=False),
    Stage("ingest"),
    Stage("features"),
    Stage("outcomes"),
    Stage("models"),
    Stage("prediction"),
    Stage("worklist"),
    Stage("missing_data"),
    Stage("metrics"),
    Stage("report"),
)
"""Every stage in the order it runs (each reads only what earlier stages wrote)."""

ANALYSIS_STAGES: tuple[str, ...] = tuple(s.name for s in STAGES if s.analysis)
UPSTREAM_STAGES: tuple[str, ...] = ("synthesize", "ingest", "features", "outcomes")
"""The stages before any model: what the teaching notebooks run on a synthetic cohort."""
MODEL_STAGES: tuple[str, ...] = ("models", "prediction", "missing_data")
"""The stages that write result tables and model cards (``data/results/<stage>/``)."""


# --- artefacts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Artefact:
    """A file one stage writes and others read: ``name`` inside the ``params.paths`` folder
    called ``folder`` (e.g. ``processed_dir``)."""

    folder: str
    name: str

    def path(self, paths: Mapping[str, Path]) -> Path:
        """Where it is, given resolved paths (``pipeline.stages.common.resolve``)."""
        return Path(paths[self.folder]) / self.name


INGEST_REPORT = Artefact("interim_dir", "ingest_report.json")
FEATURES = Artefact("processed_dir", "features.parquet")
OUTCOMES = Artefact("processed_dir", "outcomes.parquet")
PREDICTIONS = Artefact("processed_dir", "predictions.parquet")
PREDICTION_HEADLINE = Artefact("processed_dir", "prediction_headline.json")
METRICS = Artefact("reports_dir", "metrics.json")
METRIC_RATE_DENOMINATORS = {"rate_poor_outcome": "n_poor_outcome_defined"}
"""The ``metrics.json`` rates whose denominator is itself a metric (the other rates are
among subsets that are not published, e.g. finished courses with the measure defined)."""
SYNTHETIC_CALIBRATION = Artefact("reports_dir", "synthetic_calibration.json")
CLINICIAN_REPORT = Artefact("reports_dir", "clinician.html")
TECHNICAL_REPORT = Artefact("reports_dir", "technical.html")
PLOTS = Artefact("reports_dir", "plots")
TRUTH_EPISODES = Artefact("truth_dir", "truth_episodes.parquet")
TRUTH_SUMMARY = Artefact("truth_dir", "truth.json")
MESSY_ROWS = Artefact("truth_dir", "messy_rows.csv")
CALIBRATION = Artefact("truth_dir", "calibration.csv")
WORKLIST_DIR = Artefact("results_dir", "worklist")
"""The worklist of open episodes at risk, its summary and the saved model with its card:
pseudonymous identifiers, for the service's own use, never under ``reports_dir``."""
WORKLIST_SCORED_DIR = Artefact("results_dir", "worklist_scored")
"""A later extract scored with a saved model (``engage score --model``)."""
WORKLIST_FILE = "worklist.csv"
WORKLIST_SUMMARY = "worklist_summary.json"
WORKLIST_MODEL = "model.joblib"
WORKLIST_MODEL_CARD = "model_card.json"
WORKLIST_MARKER = "# WORKLIST: pseudonymous identifiers"
"""The first line of every worklist file: what ``engage check-disclosure`` refuses to find
among the shared outputs (with any ``episode_id`` or ``client_id`` column)."""


def stage_log(stage: str) -> Artefact:
    """The JSON summary a stage writes of its run (times, counts, warnings)."""
    return Artefact("logs_dir", f"{stage}.json")


def exact_results(stage: str) -> Artefact:
    """A model stage's exact tables and cards (for the analyst, not for sharing)."""
    return Artefact("results_dir", stage)


def shared_tables(stage: str) -> Artefact:
    """A model stage's disclosure-controlled tables."""
    return Artefact("reports_dir", f"tables/{stage}")


def shared_cards(stage: str) -> Artefact:
    """A model stage's disclosure-controlled model cards."""
    return Artefact("reports_dir", f"model_cards/{stage}")


# --- model ids ----------------------------------------------------------------------------

FINAL_SCORE = "final_score"
POOR_OUTCOME = "poor_outcome"
DROPOUT = "dropout"
DROPOUT_BY_PERIOD = "dropout by period"
TRAJECTORY = "trajectory"
DOSE_RESPONSE = "dose-response"
PREDICTION = "prediction"
MISSING_DATA = "missing data"


def model_id(analysis: str, variant: str | None = None, adjusted: bool | None = None) -> str:
    """The name of one model, used by the fitter, its card's file name, the metrics and the
    report: ``model_id("poor_outcome", "index", True)`` is ``"poor_outcome: index
    (adjusted)"``; ``model_id("dose-response")`` is the analysis alone."""
    if variant is None:
        return analysis
    name = f"{analysis}: {variant}"
    if adjusted is not None:
        name += " (adjusted)" if adjusted else " (unadjusted)"
    return name


TRAJECTORY_CLIENT = model_id(TRAJECTORY, "client intercept and slope")
TRAJECTORY_THERAPIST = model_id(TRAJECTORY, "clients within therapists")
TRAJECTORY_LOG_TIME = model_id(TRAJECTORY, "client, log time")
TRAJECTORY_LAGGED = model_id(TRAJECTORY, "lagged alliance")
MULTIPLE_IMPUTATION = model_id(MISSING_DATA, "multiple imputation")


# --- result tables ------------------------------------------------------------------------

DECLARED_SECTION = "Declared analyses: the primary and the secondary family"
SECTIONS: tuple[str, ...] = (
    DECLARED_SECTION,
    "Final score: linear models on the baseline (ANCOVA)",
    "Who the outcomes are defined for: baseline severity",
    "Clinical significance: the NHS rules beside Jacobson–Truax and its variants",
    "Poor outcome: logistic models",
    "Dropout: Cox models and curves",
    "Symptom trajectories",
    "Dose–response (descriptive)",
    "Predictive validity",
    "Missing final scores: sensitivity",
    "Confounding by early change: the declared analyses adjusted for it, and E-values",
)
"""The technical report's model sections, in order."""


@dataclass(frozen=True)
class Table:
    """A result table a model stage writes (``<name>.csv``).

    ``counts`` are its columns that count people (each also as ``_adjusted`` and
    ``_unadjusted`` variants): they are rounded or suppressed before sharing, and the
    table's estimates are withheld where the count they rest on is small. A table with no
    per-row count of people declares ``counts=()`` (count-free). ``section`` is where the
    technical report shows it (None: not shown, only shared as a file).
    """

    name: str
    stage: str
    counts: tuple[str, ...]
    section: str | None


TABLES: tuple[Table, ...] = (
    Table("declared_analyses", "models", ("n_analysed",), SECTIONS[0]),
    Table("final_score_side_by_side", "models", ("n_analysed", "n_input"), SECTIONS[1]),
    Table("final_score", "models", ("n_analysed", "n_input"), SECTIONS[1]),
    Table(
        "baseline_severity",
        "models",
        ("episodes", "improved", "deteriorated"),
        SECTIONS[2],
    ),
    Table(
        "clinical_significance",
        "models",
        ("clients", "clients_classified"),
        SECTIONS[3],
    ),
    Table("clinical_significance_settings", "models", ("n",), SECTIONS[3]),
    Table("poor_outcome_side_by_side", "models", ("n_analysed", "n_input"), SECTIONS[4]),
    Table("poor_outcome", "models", ("n_analysed", "n_input"), SECTIONS[4]),
    Table("dropout_side_by_side", "models", ("n_analysed", "n_input"), SECTIONS[5]),
    Table("dropout", "models", ("n_analysed", "n_input"), SECTIONS[5]),
    Table("dropout_at_risk", "models", ("n_at_risk",), SECTIONS[5]),
    Table("dropout_by_period", "models", ("n_analysed", "n_input", "n_events"), SECTIONS[5]),
    # test statistics of models whose counts are on their own tables
    Table("dropout_proportional_hazards", "models", (), SECTIONS[5]),
    Table("dropout_km", "models", ("n_at_risk", "n_events"), None),
    Table("dropout_cumulative_incidence", "models", ("n_at_risk",), None),
    Table("trajectory", "models", ("n_analysed", "n_input"), SECTIONS[6]),
    # standard deviations of a model fitted to thousands of scores
    Table("trajectory_variance", "models", (), SECTIONS[6]),
    Table("trajectory_time_shape", "models", ("n_analysed",), SECTIONS[6]),
    Table("dose_response_observed", "models", ("episodes", "improved"), SECTIONS[7]),
    # a fitted curve; its data are in dose_response_observed
    Table("dose_response_curve", "models", (), SECTIONS[7]),
    Table("prediction_gain", "prediction", (), SECTIONS[8]),
    Table("prediction_metrics", "prediction", ("n_analysed",), SECTIONS[8]),
    Table("prediction_importance", "prediction", (), SECTIONS[8]),
    Table("prediction_calibration", "prediction", ("n", "events"), SECTIONS[8]),
    Table(
        "prediction_temporal",
        "prediction",
        ("n_analysed", "n_train", "events_train", "n_test", "events_test"),
        SECTIONS[8],
    ),
    Table("missing_by_group", "missing_data", ("episodes", "missing_final_score"), SECTIONS[9]),
    Table(
        "missing_data_sensitivity",
        "missing_data",
        ("n_analysed", "n_input", "n_imputed"),
        SECTIONS[9],
    ),
    Table("missing_data_tipping_point", "missing_data", (), SECTIONS[9]),
    Table("early_change_sensitivity", "models", ("n_analysed",), SECTIONS[10]),
)
TABLE = {t.name: t for t in TABLES}


def table(name: str | None) -> Table:
    """The declaration of a result table; a clear error for one that is not declared."""
    if name not in TABLE:
        raise KeyError(
            f"result table {name!r} is not declared in pipeline/catalog.py (TABLES): declare "
            "its stage, the columns that count people (or none) and its report section"
        )
    return TABLE[name]


def section_tables(section: str) -> list[str]:
    """The tables the technical report shows in ``section``, in catalog order."""
    return [t.name for t in TABLES if t.section == section]


# --- headline metrics ---------------------------------------------------------------------


@dataclass(frozen=True)
class EffectMetric:
    """A headline effect of ``reports/metrics.json``: the estimate of ``term`` in
    ``model`` (a row of table ``table``), with ``<name>_ci_low`` and ``<name>_ci_high``."""

    name: str
    table: str
    model: str
    term: str


EFFECT_METRICS: tuple[EffectMetric, ...] = (
    EffectMetric(
        "or_index", "poor_outcome", model_id(POOR_OUTCOME, "index", True), "disengagement_index"
    ),
    EffectMetric(
        "or_flags_2plus",
        "poor_outcome",
        model_id(POOR_OUTCOME, "flags group", True),
        "flags_group_2+",
    ),
    EffectMetric("hr_index", "dropout", model_id(DROPOUT, "index", True), "disengagement_index"),
    EffectMetric(
        "alliance_within_effect", "trajectory", TRAJECTORY_CLIENT, "alliance_score_within"
    ),
)

DECLARED_TABLE = "declared_analyses"
"""``primary_*`` and the secondary family's verdicts (``analysis:`` of params.yaml)."""
MI_METRICS_TABLE = "missing_data_sensitivity"
"""``or_index_mi`` and its interval: the pooled multiple-imputation estimate (delta 0)."""
TIPPING_METRICS_TABLE = "missing_data_tipping_point"
"""``tipping_delta_negative`` / ``tipping_delta_positive``."""
METRIC_SOURCES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            DECLARED_TABLE,
            *(m.table for m in EFFECT_METRICS),
            MI_METRICS_TABLE,
            TIPPING_METRICS_TABLE,
        ]
    )
)
"""Every result table that feeds ``reports/metrics.json``."""


def stages_of(tables: tuple[str, ...]) -> tuple[str, ...]:
    """The model stages that write ``tables``, in pipeline order."""
    wanted = {table(name).stage for name in tables}
    return tuple(s for s in MODEL_STAGES if s in wanted)
