"""A worklist of open episodes at risk of a poor outcome, for the service's own use.

The engagement logistic model of ``pipeline/models/prediction.py`` (the same sklearn
``Pipeline``, the same predictors) is fitted on the episodes that have **ended** with a
defined poor outcome, and applied to the episodes **still open** at the extract date that
have passed the landmark (in treatment at the end of the window). No open episode's outcome
columns are read: the model sees only window features and baseline covariates, and an open
episode is never in its training rows.

Each predicted risk is put beside its calibration band: the equal-count band of
out-of-fold risk (grouped by therapist, ``prediction.calibration_bins`` bands) on the
ended episodes (above ``prediction.max_episodes`` of them, on a random sample of whole
clusters of that size, said in the card's training summary), with the share of them that
had a poor outcome and its Wilson 95% interval.

The worklist holds pseudonymous episode ids: it is written under ``paths.results_dir``,
never under ``reports/`` (``engage check-disclosure`` refuses it there). The model is saved
with joblib and a JSON card (``save_model`` / ``load_model``: the file's sha256 and the
scikit-learn version are checked on loading), so a later extract can be scored without
refitting. Everything else here is a pure function of frames.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]  # ships no type information
import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline
from statsmodels.stats.proportion import proportion_confint

from pipeline import catalog
from pipeline.config import FeaturesParams, ModelsParams, PredictionParams
from pipeline.io import file_digest, write_json
from pipeline.models.analysis import sample_clusters
from pipeline.models.prediction import (
    GROUP,
    OUTCOME,
    SERIAL,
    Workers,
    _as_model_input,
    calibration_curve,
    checked_columns,
    cross_validated,
    engagement_model,
)
from pipeline.models.tidy import ModelError

SIGNS = {
    "flag_missed_first_appointment": "missed the first appointment",
    "flag_two_plus_no_shows": "two or more no-shows",
    "flag_alliance_below_cutoff": "low alliance (at or below the cut-off)",
    "flag_no_client_goal": "no goal of the client's own",
    "flag_homework_under_half": "under half the homework done",
}
"""The five early signs (``models.flags``) in words, in the order they are listed."""

COLUMNS = (
    "episode_id",
    "early_signs",
    "n_signs",
    "signs_assessed",
    "predicted_risk",
    "band",
    "band_observed",
    "band_ci_low",
    "band_ci_high",
    "in_words",
)
"""The worklist's columns: one row per open episode past the landmark."""


class WorklistError(ModelError):
    """A foreseeable reason the worklist cannot be made (said as an actionable message)."""


@dataclass
class WorklistModel:
    """The fitted Pipeline, its predictors in order, the calibration bands and the
    training summary (what the saved card carries)."""

    pipeline: Pipeline
    numeric: list[str]
    categorical: list[str]
    bands: pd.DataFrame
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]


# --- populations --------------------------------------------------------------------------


def training_rows(frame: pd.DataFrame) -> pd.Series:
    """Ended episodes with a defined poor outcome: what the model learns from."""
    return frame["ended"].astype(bool) & frame[OUTCOME].notna()


def open_past_landmark(frame: pd.DataFrame) -> pd.Series:
    """Episodes still open at the extract date that were in treatment at the landmark."""
    return ~frame["ended"].astype(bool) & frame["in_treatment_at_landmark"].astype(bool)


# --- calibration bands --------------------------------------------------------------------


def calibration_bands(y: np.ndarray, risk: np.ndarray, bins: int) -> pd.DataFrame:
    """The bands of ``calibration_curve`` (equal-count bins of ``risk``) as ranges of risk:
    ``lower`` is the band's smallest risk (0 for the first), ``upper`` the next band's
    lower (1 for the last); with n, events, the observed share of poor outcome and its
    Wilson 95% interval."""
    curve = calibration_curve(y, risk, bins)
    order = pd.qcut(pd.Series(risk).rank(method="first"), bins, labels=False) + 1
    lower = pd.Series(risk).groupby(order.to_numpy()).min().reindex(curve["bin"]).to_numpy().copy()
    lower[0] = 0.0
    low, high = proportion_confint(curve["events"], curve["n"], alpha=0.05, method="wilson")
    return pd.DataFrame(
        {
            "band": curve["bin"].astype(int),
            "lower": lower,
            "upper": [*lower[1:], 1.0],
            "n": curve["n"].astype(int),
            "events": curve["events"].astype(int),
            "observed": curve["observed"],
            "ci_low": np.asarray(low, dtype=float),
            "ci_high": np.asarray(high, dtype=float),
        }
    )


def band_of(risk: np.ndarray, bands: pd.DataFrame) -> np.ndarray:
    """The row of ``bands`` each risk falls in (lower ≤ risk < upper; 1 in the last)."""
    return np.clip(np.searchsorted(bands["lower"].to_numpy(), risk, side="right") - 1, 0, None)


# --- fitting and scoring ------------------------------------------------------------------


def fit_worklist_model(
    frame: pd.DataFrame,
    features_columns: set[str],
    outcome_columns: set[str],
    models: ModelsParams,
    params: PredictionParams,
    workers: Workers = SERIAL,
) -> WorklistModel:
    """The engagement logistic model fitted on the ended episodes with a defined outcome
    (``training_rows``), with calibration bands from its grouped out-of-fold risks (the
    folds side by side on ``workers``, with the same results)."""
    data = frame[training_rows(frame)].reset_index(drop=True)
    if data.empty or data[OUTCOME].nunique() < 2:
        raise WorklistError(
            "worklist: no ended episode with a defined poor outcome of each kind to learn from"
        )
    if data[GROUP].nunique() < params.folds:
        raise WorklistError(
            f"worklist: {data[GROUP].nunique()} therapist(s) among the ended episodes for "
            f"{params.folds} grouped folds; lower prediction.folds or pool sites"
        )
    baseline, categorical, blocks = checked_columns(
        data, features_columns, outcome_columns, models, params
    )
    numeric = [*baseline, *(c for cols in blocks.values() for c in cols)]
    x = _as_model_input(data, numeric, categorical)
    y = data[OUTCOME].to_numpy(int)
    pipe = engagement_model(params, numeric, categorical)
    # The bands' out-of-fold risks: above prediction.max_episodes, from a random sample of
    # whole clusters (as the prediction stage's validation), since repeated grouped CV on
    # every ended episode of a national extract costs minutes and the bands' shares are
    # already precise at that size. The model itself is fitted on every training row.
    cv, sampled = sample_clusters(data, params.max_episodes, params.seed, "prediction.max_episodes")
    cv_y = cv[OUTCOME].to_numpy(int)
    oof, repeats, _ = cross_validated(
        _as_model_input(cv, numeric, categorical),
        cv_y,
        cv[GROUP].to_numpy(),
        pipe,
        params,
        workers=workers,
    )
    fitted = pipe.fit(x, y)
    training = {
        "n": len(data),
        "events": int(y.sum()),
        "therapists": int(data[GROUP].nunique()),
        "out_of_fold_auc_per_repeat": [round(float(a), 4) for a in repeats],
        **({"calibration_sample": sampled} if sampled else {}),
    }
    return WorklistModel(
        fitted,
        numeric,
        categorical,
        calibration_bands(cv_y, oof, params.calibration_bins),
        training,
    )


def check_features(model: WorklistModel, frame: pd.DataFrame) -> None:
    """Refuse data without every predictor the model was fitted on."""
    missing = [c for c in model.features if c not in frame]
    if missing:
        raise WorklistError(
            f"worklist: the data lack the model's feature(s) {', '.join(missing)}: build the "
            "features with the settings the model was fitted with (its model card), or refit "
            "it on these data with `engage score` (without --model)"
        )


def signs_in_words(frame: pd.DataFrame) -> pd.DataFrame:
    """The early signs present, in words ("missed the first appointment; two or more
    no-shows"; "none" when none is), how many are present and how many could be assessed."""
    flags = [c for c in SIGNS if c in frame]
    present = frame[flags].astype(float).fillna(0).astype(bool)
    # Each row's signs as a bit pattern, then the words of each of the 2^k patterns.
    pattern = present.to_numpy(int) @ (1 << np.arange(len(flags)))
    phrases = [
        "; ".join(SIGNS[c] for i, c in enumerate(flags) if code >> i & 1) or "none"
        for code in range(1 << len(flags))
    ]
    words = np.asarray(phrases, dtype=object)[pattern]
    return pd.DataFrame(
        {
            "early_signs": pd.Series(words, index=frame.index, dtype=object),
            "n_signs": present.sum(axis=1).astype(int),
            "signs_assessed": frame[flags].notna().sum(axis=1).astype(int),
        },
        index=frame.index,
    )


def score_open(model: WorklistModel, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per open episode past the landmark (``COLUMNS``), highest risk first. Only
    the model's predictors, the flags and the episode id are read."""
    check_features(model, frame)
    rows = frame[open_past_landmark(frame)].reset_index(drop=True)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    risk = model.pipeline.predict_proba(_as_model_input(rows, model.numeric, model.categorical))[
        :, 1
    ]
    band = model.bands.iloc[band_of(risk, model.bands)].reset_index(drop=True)
    out = pd.concat(
        [rows[["episode_id"]], signs_in_words(rows).reset_index(drop=True)], axis=1
    ).assign(
        predicted_risk=risk,
        band=[f"{lo:.0%}–{hi:.0%}" for lo, hi in zip(band["lower"], band["upper"], strict=True)],
        band_observed=band["observed"],
        band_ci_low=band["ci_low"],
        band_ci_high=band["ci_high"],
    )
    out["in_words"] = [  # the band's observed share first: raw risks are too extreme on
        # later referrals (temporal calibration slope below 1)
        f"of ended clients with risks like this, {o:.0%} ({lo:.0%}–{hi:.0%}) had a poor "
        f"outcome (model's raw risk {p:.0%})"
        for p, o, lo, hi in zip(
            risk, band["observed"], band["ci_low"], band["ci_high"], strict=True
        )
    ]
    out = out.sort_values(["predicted_risk", "episode_id"], ascending=[False, True])
    return out[list(COLUMNS)].reset_index(drop=True)


# --- the file: header lines, then the table -----------------------------------------------


def header_lines(extract_date: str, card: dict) -> list[str]:
    """The comment lines every worklist file opens with (``catalog.WORKLIST_MARKER``
    first): what it holds, who may see it, the extract date and the model's training."""
    t = card["training"]
    return [
        catalog.WORKLIST_MARKER + " (episode ids) - for the service's own use only.",
        "# Not for sharing: never put it in reports/ or send it outside the service.",
        f"# Open episodes past the landmark at the extract date {extract_date}, highest "
        "predicted risk of a poor outcome first.",
        f"# Model: engagement logistic regression fitted on {t['n']} ended episodes "
        f"({t['events']} with a poor outcome, {t['therapists']} therapists) of the extract "
        f"dated {card['training_extract_date']}; model sha256 {card['sha256'][:12]}.",
        "# A risk is a prompt for a conversation, not a decision. Read the band's observed "
        "share (out-of-fold, ended episodes) before the raw risk: on later referrals the raw "
        "risks were too extreme (temporal validation, technical report).",
        "# Open episodes are the longer-running ones; the model was validated on episodes "
        "that ended, so its figures may hold less well for them.",
    ]


def worklist_text(table: pd.DataFrame, header: list[str]) -> str:
    """The worklist as CSV text: the comment header, then the table (4-digit risks)."""
    body = table.to_csv(index=False, lineterminator="\n", float_format="%.4f")
    return "\n".join(header) + "\n" + body


def read_worklist(path: Path) -> pd.DataFrame:
    """A worklist file back as a frame (its comment lines skipped)."""
    return pd.read_csv(path, comment="#")


# --- the saved model ----------------------------------------------------------------------

SHAPING_PARAMS = {
    "prediction": (
        "baseline",
        "blocks",
        "logistic_c",
        "folds",
        "repeats",
        "seed",
        "calibration_bins",
    ),
    "models": ("case_mix", "min_level_count", "cluster", "fallback_cluster", "flags"),
}
"""The params that shaped the saved model (with every ``features`` param)."""


def model_card(
    model: WorklistModel,
    extract_date: str,
    models: ModelsParams,
    params: PredictionParams,
    features: FeaturesParams,
) -> dict[str, Any]:
    """What the saved model is: its features in order, the library versions, the training
    counts and extract date, the params that shaped it and the bands (``save_model`` adds
    the file's sha256)."""
    return {
        "model": "worklist: engagement (logistic)",
        "features_numeric": model.numeric,
        "features_categorical": model.categorical,
        "versions": {
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "joblib": joblib.__version__,
            "python": platform.python_version(),
        },
        "training": model.training,
        "training_population": "ended episodes in treatment at the landmark with a defined "
        "poor outcome",
        "training_extract_date": extract_date,
        "params": {
            **{
                section: {k: values.model_dump(mode="json")[k] for k in SHAPING_PARAMS[section]}
                for section, values in (("prediction", params), ("models", models))
            },
            "features": features.model_dump(mode="json"),
        },
        "calibration_bands": json.loads(model.bands.to_json(orient="records")),
    }


def save_model(model: WorklistModel, folder: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.joblib`` and its card (``card`` with the file's sha256) to ``folder``;
    return the card written."""
    path = Path(folder) / catalog.WORKLIST_MODEL
    joblib.dump(model.pipeline, path)
    card = {**card, "sha256": file_digest(path)}
    write_json(card, Path(folder) / catalog.WORKLIST_MODEL_CARD)
    return card


def load_model(path: Path) -> tuple[WorklistModel, dict[str, Any]]:
    """A saved model and its card, refused (``WorklistError``) if either file is missing,
    the model file is not the one the card describes (sha256), or it was saved with another
    scikit-learn version."""
    path = Path(path)
    card_path = path.with_name(catalog.WORKLIST_MODEL_CARD)
    refit = "refit it on the current data with `engage score` (without --model)"
    if not path.is_file():
        raise WorklistError(f"worklist: no saved model at {path}; {refit}")
    if not card_path.is_file():
        raise WorklistError(
            f"worklist: the model card {card_path.name} is not beside {path}; {refit}"
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        expected, saved = card["sha256"], card["versions"]["sklearn"]
    except (ValueError, KeyError, TypeError):
        raise WorklistError(f"worklist: {card_path} is not a model card; {refit}") from None
    if file_digest(path) != expected:
        raise WorklistError(
            f"worklist: {path} does not match its model card (sha256 differs): the file was "
            f"changed or replaced after it was saved; do not use it: {refit}"
        )
    if saved != sklearn.__version__:
        raise WorklistError(
            f"worklist: the model was saved with scikit-learn {saved}, this environment has "
            f"{sklearn.__version__}; a pickled model is not portable across versions: {refit}"
        )
    pipeline = joblib.load(path)
    bands = pd.DataFrame(card["calibration_bands"])
    model = WorklistModel(
        pipeline,
        list(card["features_numeric"]),
        list(card["features_categorical"]),
        bands,
        card["training"],
    )
    return model, card


def check_feature_params(card: dict[str, Any], features: FeaturesParams) -> None:
    """Refuse to score features built with other settings than the saved model's (a model
    trained on a 42-day window would silently score 28-day features)."""
    saved = card.get("params", {}).get("features", {})
    now = features.model_dump(mode="json")
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        raise WorklistError(
            "worklist: the saved model was fitted on features built with "
            + ", ".join(f"features.{k}: {saved.get(k)}" for k in differ)
            + "; this run has "
            + ", ".join(f"{now.get(k)}" for k in differ)
            + ". Set them back, or refit with `engage score` (without --model)"
        )


def summary_counts(table: pd.DataFrame, frame: pd.DataFrame, card: dict) -> dict[str, Any]:
    """The worklist's summary: counts only (no identifier)."""
    n_signs = table["n_signs"].astype(int) if len(table) else pd.Series(dtype=int)
    return {
        "open_past_landmark_scored": len(table),
        "episodes": len(frame),
        "open_episodes": int((~frame["ended"].astype(bool)).sum()),
        "open_before_landmark": int(
            ((~frame["ended"].astype(bool)) & ~open_past_landmark(frame)).sum()
        ),
        "by_number_of_signs": {
            str(k): int(v) for k, v in n_signs.value_counts().sort_index().items()
        },
        "training_n": card["training"]["n"],
        "training_events": card["training"]["events"],
        "training_extract_date": card["training_extract_date"],
        "model_sha256": card["sha256"],
    }
