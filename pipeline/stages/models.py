"""Stage ``models``: effect models, dropout curves, trajectories and dose–response.

Writes one tidy CSV per analysis to ``reports/tables/models/`` and one JSON model card per
model to ``reports/model_cards/models/`` (both replaced whole, so no stale table or card
survives a rerun).
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from pipeline import catalog
from pipeline.config import Params, load_params
from pipeline.io import write_json
from pipeline.models.analysis import fit_all
from pipeline.stages.common import resolve, stage_timer
from pipeline.stages.results import load_inputs, print_summary, write_results


def run(params: Params, root: str | Path = ".", show_progress: bool = False) -> dict:
    paths = resolve(params.paths, root)
    summary: dict = {"stage": "models"}
    with stage_timer(summary):
        tables, _, features, outcomes = load_inputs(paths, ("episodes", "sessions", "measures"))
        bar = tqdm(total=4, desc="models", disable=not show_progress, leave=False)

        def step(label: str) -> None:
            bar.set_postfix_str(f"{label} done")
            bar.update(1)

        results = fit_all(
            tables, features, outcomes, params.models, params.outcomes.primary_instrument, step
        )
        bar.close()
        summary |= write_results(results, paths, "models", params)
    write_json(summary, catalog.stage_log("models").path(paths))
    return summary


def main() -> None:
    s = run(load_params(), show_progress=True)
    print_summary(s)


if __name__ == "__main__":
    main()
