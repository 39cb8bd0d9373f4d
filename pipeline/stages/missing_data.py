"""Stage ``missing_data``: is the main effect an artefact of missing final scores?

Tables to ``reports/tables/missing_data/``, model cards to ``reports/model_cards/missing_data/``.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import catalog
from pipeline.config import Params, load_params
from pipeline.io import write_json
from pipeline.models.missing import sensitivity
from pipeline.models.tidy import ModelError, Results, failed_card
from pipeline.stages.common import resolve, stage_timer
from pipeline.stages.results import load_analysis_frame, print_summary, write_results


def run(params: Params, root: str | Path = ".") -> dict:
    paths = resolve(params.paths, root)
    summary: dict = {"stage": "missing_data"}
    with stage_timer(summary):
        frame, _, _ = load_analysis_frame(paths, params)
        try:
            results = sensitivity(
                frame,
                params.models,
                params.missing_data,
                params.outcomes.primary_instrument,
                params.outcomes.poor_outcome,
            )
        except ModelError as exc:
            card = failed_card(catalog.MISSING_DATA, "", "", len(frame), str(exc))
            results = Results(cards=[card])
        summary |= write_results(results, paths, "missing_data", params)
    write_json(summary, catalog.stage_log("missing_data").path(paths))
    return summary


def main() -> None:
    s = run(load_params())
    print_summary(s)


if __name__ == "__main__":
    main()
