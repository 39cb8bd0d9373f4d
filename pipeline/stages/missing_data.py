"""Stage ``missing_data``: is the main effect an artefact of missing final scores?

Tables to ``reports/tables/missing_data/``, model cards to ``reports/model_cards/missing_data/``.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import catalog
from pipeline.config import Params
from pipeline.engine.tasks import run_tasks
from pipeline.models.missing import sensitivity
from pipeline.models.tidy import ModelError, Results, failed_card
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import describe_results as describe
from pipeline.stages.results import load_analysis_frame, write_results


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    with stage("missing_data", params, root, show_progress=show_progress) as s:
        frame, _, _ = load_analysis_frame(s.paths, params)
        try:
            results = sensitivity(
                frame,
                params.models,
                params.missing_data,
                params.outcomes,
                # the pooled fits of each delta side by side, one forked worker per CPU
                lambda tasks: run_tasks(tasks, s.summary["threads"]),
            )
        except ModelError as exc:
            card = failed_card(catalog.MISSING_DATA, "", "", len(frame), str(exc))
            results = Results(cards=[card])
        s.summary |= write_results(results, s.paths, "missing_data", params)
    return s.summary


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
