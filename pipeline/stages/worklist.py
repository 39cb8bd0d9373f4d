"""Stage ``worklist``: open episodes past the landmark, scored for risk of a poor outcome.

Writes ``data/results/worklist/`` (``paths.results_dir``; never ``reports/``): the worklist
(``worklist.csv``, pseudonymous episode ids, a comment header saying it is for the
service's own use and not for sharing), ``worklist_summary.json`` (counts only), and the
fitted model (``model.joblib``) with its card (``model_card.json``). ``score_saved`` scores
a later extract with a saved model instead (``engage score --model``), into
``data/results/worklist_scored/``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import catalog
from pipeline.config import Params
from pipeline.engine.cpus import openmp_threads
from pipeline.io import atomic_directory, write_json, write_text
from pipeline.models.analysis import analysis_frame
from pipeline.models.prediction import Workers, fitted_rows
from pipeline.models.tidy import ModelError
from pipeline.models.worklist import (
    check_feature_params,
    fit_worklist_model,
    header_lines,
    load_model,
    model_card,
    save_model,
    score_open,
    summary_counts,
    worklist_text,
)
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import load_inputs


def _frame(paths: dict[str, Path], params: Params) -> tuple[pd.DataFrame, str, set, set]:
    """The analysis frame, the extract date (ingest report) and the feature and outcome
    columns (for the leakage guard)."""
    tables, report, features, outcomes = load_inputs(paths)
    frame = analysis_frame(features, outcomes, tables["episodes"], params.models)
    return frame, str(report["extract_date"]), set(features.columns), set(outcomes.columns)


def _write(
    folder: Path, table: pd.DataFrame, frame: pd.DataFrame, extract_date: str, card: dict
) -> dict:
    """The worklist file and its counts-only summary into ``folder``; returns the summary."""
    write_text(
        worklist_text(table, header_lines(extract_date, card)), folder / catalog.WORKLIST_FILE
    )
    summary = {"extract_date": extract_date, **summary_counts(table, frame, card)}
    write_json(summary, folder / catalog.WORKLIST_SUMMARY)
    return summary


def _fold_workers(episodes: int, params: Params, threads: int) -> Workers:
    """The calibration folds side by side on worker processes when they are worth starting,
    by the rule that sizes OpenMP pools (``openmp_threads``): the folds of a logistic model
    on a few thousand rows (the default cohort) take less than a second, starting the
    workers about two."""
    return Workers(openmp_threads(fitted_rows(episodes, params.prediction), threads))


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    with stage("worklist", params, root, show_progress=show_progress) as s:
        frame, extract_date, features, outcomes = _frame(s.paths, params)
        out = catalog.WORKLIST_DIR.path(s.paths)
        with atomic_directory(out) as folder:
            try:
                model = fit_worklist_model(
                    frame,
                    features,
                    outcomes,
                    params.models,
                    params.prediction,
                    _fold_workers(len(frame), params, s.summary["threads"]),
                )
            except ModelError as exc:  # said in the summary; the other stages go on
                s.summary["warnings"].append(f"worklist not made: {exc}")
                write_json(
                    {"extract_date": extract_date, "not_made": str(exc)},
                    folder / catalog.WORKLIST_SUMMARY,
                )
                s.summary |= {"scored": 0, "not_made": str(exc), "outputs": {"worklist": str(out)}}
                return s.summary
            card = save_model(
                model,
                folder,
                model_card(model, extract_date, params.models, params.prediction, params.features),
            )
            table = score_open(model, frame)
            counts = _write(folder, table, frame, extract_date, card)
        _note_empty(s.summary, counts)
        s.summary |= {
            "scored": counts["open_past_landmark_scored"],
            "training": card["training"],
            "outputs": {"worklist": str(out / catalog.WORKLIST_FILE), "model": str(out)},
        }
    return s.summary


def score_saved(params: Params, root: str | Path, model_path: Path) -> dict:
    """Score the processed data under ``root`` (a later extract) with the saved model at
    ``model_path``, without refitting; raises ``WorklistError`` for a missing, changed or
    incompatible model or data without its features."""
    model, card = load_model(model_path)
    check_feature_params(card, params.features)
    with stage("worklist_scored", params, root) as s:
        frame, extract_date, _, _ = _frame(s.paths, params)
        table = score_open(model, frame)
        out = catalog.WORKLIST_SCORED_DIR.path(s.paths)
        with atomic_directory(out) as folder:
            counts = _write(folder, table, frame, extract_date, card)
        _note_empty(s.summary, counts)
        s.summary |= {
            "scored": counts["open_past_landmark_scored"],
            "training": card["training"],
            "outputs": {"worklist": str(out / catalog.WORKLIST_FILE)},
        }
    return s.summary


def _note_empty(summary: dict, counts: dict) -> None:
    if counts["open_past_landmark_scored"] == 0:
        summary["warnings"].append(
            f"no episode was open at the extract date {counts['extract_date']} and past the "
            "landmark: the worklist is empty"
        )


def describe(summary: dict) -> str:
    if summary.get("not_made"):
        return f"worklist not made: {summary['not_made']}"
    return (
        f"{summary['scored']} open episodes past the landmark scored (model fitted on "
        f"{summary['training']['n']} ended episodes) → {summary['outputs']['worklist']} "
        "(pseudonymous ids: for the service's own use, not for sharing)"
    )


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
