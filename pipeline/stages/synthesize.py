"""Stage ``synthesize``: write the bundled synthetic cohort and its ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import __version__, catalog
from pipeline.config import Params, SyntheticParams
from pipeline.ingest.manifest import MANIFEST_NAME, SYNTHETIC, ExportManifest
from pipeline.io import atomic_directory, write_csv, write_json, write_parquet, write_table
from pipeline.layouts.export import BUILT_IN
from pipeline.layouts.mapping import load_mapping
from pipeline.layouts.nhstt_writer import to_nhstt
from pipeline.stages.common import stage, stage_main
from pipeline.synthetic.calibration import calibration_statistics, check_calibration
from pipeline.synthetic.generator import generate_cohort
from pipeline.synthetic.messy import make_export

MESSY_STREAM = 0x6D657373  # separate random stream for export mess, derived from the seed


def calibration_metrics(calibration: pd.DataFrame) -> dict:
    """DVC metrics: each calibration statistic of the cohort and whether all targets are met."""
    values = {
        str(s): round(float(v), 4)
        for s, v in zip(calibration["statistic"], calibration["cohort"], strict=True)
    }
    return {"synthetic_calibration": values, "all_targets_met": bool(calibration["met"].all())}


def export_manifest(sp: SyntheticParams) -> dict:
    """The manifest written beside the synthetic export: what it is and its extract date."""
    return ExportManifest(
        source=SYNTHETIC,
        extract_date=sp.extract_date,
        layout=sp.layout,
        description="The bundled synthetic cohort (calibrated to published figures).",
        generator={
            "name": "pipeline.synthetic",
            "version": __version__,
            "seed": sp.seed,
            "n_episodes": sp.n_episodes,
        },
    ).model_dump(mode="json")


def run(params: Params, root: str | Path = ".", *, show_progress: bool = False) -> dict:
    sp = params.synthetic
    with stage("synthesize", params, root, show_progress=show_progress) as s:
        paths, summary = s.paths, s.summary
        cohort = generate_cohort(sp)
        calibration = check_calibration(
            calibration_statistics(cohort.tables, cohort.truth, sp.landmark_days)
        )
        rng = np.random.default_rng([sp.seed, MESSY_STREAM])
        export, manifest = make_export(
            cohort.tables, sp.extract_date, sp.messy_row_share, sp.alias_row_share, rng
        )
        written = export
        if sp.layout == "nhstt":
            written = to_nhstt(export, load_mapping(BUILT_IN["nhstt"]))
        with atomic_directory(paths["raw_dir"]) as raw_dir:
            for table, df in written.items():
                write_table(df, raw_dir / f"{table}.{sp.file_format}", sp.file_format)
            write_json(export_manifest(sp), raw_dir / MANIFEST_NAME)
        with atomic_directory(paths["truth_dir"]) as truth_dir:
            write_parquet(cohort.truth, truth_dir / catalog.TRUTH_EPISODES.name)
            write_csv(manifest, truth_dir / catalog.MESSY_ROWS.name)
            write_csv(calibration, truth_dir / catalog.CALIBRATION.name)
            write_json(
                {
                    **cohort.summary,
                    "calibration": calibration.set_index("statistic")["cohort"].to_dict(),
                    "calibration_all_met": bool(calibration["met"].all()),
                },
                truth_dir / catalog.TRUTH_SUMMARY.name,
            )
        write_json(
            calibration_metrics(calibration), catalog.SYNTHETIC_CALIBRATION.path(paths)
        )
        summary["rows_written"] = {t: len(df) for t, df in written.items()}
        summary["layout"] = sp.layout
        summary["messy_rows"] = int((manifest["kind"] != "alias").sum())
        summary["aliased_values"] = int((manifest["kind"] == "alias").sum())
        missed = calibration.loc[~calibration["met"], "statistic"].tolist()
        if missed:
            summary["warnings"].append(f"calibration targets not met: {', '.join(missed)}")
        summary["outputs"] = {k: str(paths[k]) for k in ("raw_dir", "truth_dir")}
    return s.summary


def describe(summary: dict) -> str:
    """What the stage says when it is done (``python -m``, ``engage``)."""
    out = summary["outputs"]
    return f"Synthetic cohort written to {out['raw_dir']}; ground truth in {out['truth_dir']}"


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
