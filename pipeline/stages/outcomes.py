"""Stage ``outcomes``: the per-episode outcome table (NHS Talking Therapies definitions)."""

from __future__ import annotations

from pathlib import Path

from pipeline import catalog
from pipeline.config import Params, load_params
from pipeline.features.window import build_window
from pipeline.io import read_interim, write_json, write_parquet
from pipeline.outcomes import dropout_rule_agreement, outcome_table
from pipeline.stages.common import resolve, stage_timer


def run(params: Params, root: str | Path = ".") -> dict:
    paths = resolve(params.paths, root)
    summary: dict = {"stage": "outcomes"}
    with stage_timer(summary):
        # Outcomes need appointments and scores only (goals and contacts are never read).
        tables, _, extract = read_interim(
            paths["interim_dir"], ("episodes", "sessions", "measures")
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
    write_json(summary, catalog.stage_log("outcomes").path(paths))
    return summary


def main() -> None:
    s = run(load_params())
    print(f"Outcomes for {s['episodes']} episodes → {s['outputs']['outcomes']}")


if __name__ == "__main__":
    main()
