"""Stage ``prediction``: how well the landmark window predicts poor outcome.

Tables to ``reports/tables/prediction/``, model cards to ``reports/model_cards/prediction/``,
the headline figures to ``data/processed/prediction_headline.json`` (collected into
``reports/metrics.json`` by the metrics stage) and the out-of-fold predictions (per episode,
so not for sharing) to ``data/processed/predictions.parquet``.
"""

from __future__ import annotations

from pathlib import Path

from threadpoolctl import threadpool_limits

from pipeline import catalog
from pipeline.config import Params
from pipeline.engine.cpus import openmp_threads
from pipeline.io import write_json, write_parquet
from pipeline.models.prediction import Workers, fitted_rows, prediction_results
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import describe_results, load_analysis_frame, write_results


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    with stage("prediction", params, root, show_progress=show_progress) as s:
        paths, summary = s.paths, s.summary
        frame, features, outcomes = load_analysis_frame(paths, params)
        rows = fitted_rows(len(frame), params.prediction)
        summary["openmp_threads"] = openmp_threads(rows, summary["threads"])
        # the cross-validations side by side, sharing the CPUs
        workers = Workers(summary["threads"], summary["openmp_threads"])
        with threadpool_limits(limits=summary["openmp_threads"], user_api="openmp"):
            results, predictions, headline = prediction_results(
                frame,
                set(features.columns),
                set(outcomes.columns),
                params.models,
                params.prediction,
                workers,
            )
        summary |= write_results(results, paths, "prediction", params)
        if predictions is not None:
            write_parquet(predictions, catalog.PREDICTIONS.path(paths))
        write_json(headline, catalog.PREDICTION_HEADLINE.path(paths))
        summary["headline"] = headline
    return s.summary


def describe(summary: dict) -> str:
    """The model-stage line, then the headline AUC gain."""
    h = summary["headline"]
    if not h:
        return describe_results(summary)
    return describe_results(summary) + (
        f"\nAUC baseline {h['auc_baseline']:.3f}, with early engagement "
        f"{h['auc_engagement']:.3f} (gain {h['auc_gain']:.3f}, 95% CI "
        f"{h['auc_gain_ci_low']:.3f} to {h['auc_gain_ci_high']:.3f})"
    )


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
