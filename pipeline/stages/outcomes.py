"""Stage ``outcomes``: the per-episode outcome table (NHS Talking Therapies definitions)."""

from __future__ import annotations

from pathlib import Path

from pipeline import catalog
from pipeline.config import Params
from pipeline.features.window import build_window
from pipeline.io import read_interim, write_parquet
from pipeline.outcomes import READ_COLUMNS, dropout_rule_agreement, outcome_table
from pipeline.stages.common import stage, stage_main


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    with stage("outcomes", params, root, show_progress=show_progress) as s:
        paths, summary = s.paths, s.summary
        # Outcomes need appointments and scores only (goals and contacts are never read).
        # ... and of those, only the columns the outcome rules read.
        tables, _, extract = read_interim(
            paths["interim_dir"], ("episodes", "sessions", "measures"), READ_COLUMNS
        )
        window = build_window(
            tables["episodes"], tables["sessions"], params.features.window_days, extract
        )
        outcomes = outcome_table(tables, window, params.outcomes, extract)
        primary = params.outcomes.primary_instrument
        found = sorted(tables["measures"]["instrument"].dropna().unique().tolist())
        if primary not in found:
            summary["warnings"].append(
                f"no {primary} score in this export, so no poor outcome can be defined; "
                f"set outcomes.primary_instrument to one it has ({', '.join(found) or 'none'})"
            )
        write_parquet(outcomes, catalog.OUTCOMES.path(paths))
        summary |= {
            "episodes": len(outcomes),
            "poor_outcome_defined": int(outcomes["poor_outcome"].notna().sum()),
            "dropout_rule_agreement": dropout_rule_agreement(tables),
            "outputs": {"outcomes": str(catalog.OUTCOMES.path(paths))},
        }
    return s.summary


def describe(summary: dict) -> str:
    """What the stage says when it is done (``python -m``, ``engage``)."""
    return f"Outcomes for {summary['episodes']} episodes → {summary['outputs']['outcomes']}"


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
