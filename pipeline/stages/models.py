"""Stage ``models``: effect models, dropout curves, trajectories and dose–response.

Writes one tidy CSV per analysis to ``reports/tables/models/`` and one JSON model card per
model to ``reports/model_cards/models/`` (both replaced whole, so no stale table or card
survives a rerun).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.clinical_significance import side_by_side
from pipeline.config import Params
from pipeline.models.analysis import ANALYSES, fit_all
from pipeline.models.declared import declared_analyses
from pipeline.models.tidy import Results
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import describe_results as describe
from pipeline.stages.results import load_inputs, write_results


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    steps = len(ANALYSES)
    with stage("models", params, root, steps=steps, show_progress=show_progress) as s:
        tables, _, features, outcomes = load_inputs(s.paths, ("episodes", "sessions", "measures"))
        results = fit_all(
            tables,
            features,
            outcomes,
            params.models,
            params.outcomes.primary_instrument,
            s.step,
            params.analysis,
        )
        plan = declared_analyses(results.tables, params.analysis, params.models)
        results.extend(Results({"declared_analyses": plan}))
        # the points rules (NHS TT for PHQ-9, GAD-7) beside Jacobson–Truax and its variants
        counts, settings = side_by_side(
            outcomes, params.outcomes.population, params.outcomes.clinical_significance_methods
        )
        results.extend(
            Results(
                {
                    "clinical_significance": counts,
                    "clinical_significance_settings": settings,
                }
            )
        )
        s.summary |= write_results(results, s.paths, "models", params)
    return s.summary


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
