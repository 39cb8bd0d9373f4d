"""Stage ``models``: effect models, dropout curves, trajectories and dose–response.

Writes one tidy CSV per analysis to ``reports/tables/models/`` and one JSON model card per
model to ``reports/model_cards/models/`` (both replaced whole, so no stale table or card
survives a rerun).

The analyses are independent, so they run side by side on the CPUs the stage may use (one
forked process each, ``pipeline/engine/tasks.py``; ``threads: 1`` runs them one after the
other, with the same results). The stage log's ``task_seconds`` gives each analysis's own
time.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.clinical_significance import side_by_side
from pipeline.config import Params
from pipeline.engine.tasks import run_tasks, worker_count
from pipeline.models.analysis import ANALYSES, analysis_tasks, longest_first
from pipeline.models.declared import declared_analyses
from pipeline.models.tidy import Results
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import describe_results as describe
from pipeline.stages.results import load_inputs, write_results


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    steps = len(ANALYSES) + 1  # and the clinical-significance counts
    with stage("models", params, root, steps=steps, show_progress=show_progress) as s:
        tables, _, features, outcomes = load_inputs(s.paths, ("episodes", "sessions", "measures"))
        tasks = analysis_tasks(
            tables,
            features,
            outcomes,
            params.models,
            params.outcomes.primary_instrument,
            params.analysis,
        )

        def clinical_significance() -> Results:
            # the points rules (NHS TT for PHQ-9, GAD-7) beside Jacobson–Truax and variants
            counts, settings = side_by_side(
                outcomes, params.outcomes.population, params.outcomes.clinical_significance_methods
            )
            return Results(
                {"clinical_significance": counts, "clinical_significance_settings": settings}
            )

        tasks["clinical significance"] = clinical_significance
        seconds: dict[str, float] = {}
        done = run_tasks(
            {label: tasks[label] for label in longest_first(tasks)},
            s.summary["threads"],
            s.step,
            seconds,
        )
        s.summary["workers"] = worker_count(s.summary["threads"], len(tasks))
        s.summary["task_seconds"] = seconds
        results = Results()
        for label in tasks:  # the report's order, whichever finished first
            results.extend(done[label])
        plan = declared_analyses(results.tables, params.analysis, params.models)
        results.extend(Results({"declared_analyses": plan}))
        s.summary |= write_results(results, s.paths, "models", params)
    return s.summary


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
