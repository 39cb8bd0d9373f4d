"""Stage ``features``: engagement features in the landmark window, one row per episode."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.features.build import engagement_features
from pipeline.io import read_interim, write_json, write_parquet
from pipeline.stages.common import resolve, stage_timer


def run(params: Params, root: str | Path = ".") -> dict:
    paths = resolve(params.paths, root)
    summary: dict = {"stage": "features"}
    with stage_timer(summary):
        tables, report, extract = read_interim(paths["interim_dir"])
        features = engagement_features(
            tables, params.features, params.outcomes.primary_instrument, extract
        )
        write_parquet(features, paths["processed_dir"] / "features.parquet")
        summary |= {
            "episodes": len(features),
            "with_window": int(features["has_sessions"].sum()),
            "window_complete": int(features["window_complete"].sum()),
            "optional_tables_absent": report["optional_tables_absent"],
            "outputs": {"features": str(paths["processed_dir"] / "features.parquet")},
        }
    write_json(summary, paths["logs_dir"] / "features.json")
    return summary


def main() -> None:
    s = run(load_params())
    print(
        f"Features for {s['episodes']} episodes ({s['window_complete']} with a complete "
        f"window) → {s['outputs']['features']}"
    )


if __name__ == "__main__":
    main()
