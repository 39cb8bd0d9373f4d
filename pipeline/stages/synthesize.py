"""Stage ``synthesize``: write the bundled synthetic cohort and its ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params, load_params
from pipeline.io import atomic_directory, write_csv, write_json, write_parquet, write_table
from pipeline.stages.common import resolve, stage_timer
from pipeline.synthetic.calibration import calibration_statistics, check_calibration
from pipeline.synthetic.generator import generate_cohort
from pipeline.synthetic.messy import make_export

MESSY_STREAM = 0x6D657373  # separate random stream for export mess, derived from the seed


def calibration_metrics(calibration: pd.DataFrame) -> dict:
    """DVC metrics: each calibration statistic of the cohort and whether all targets are met."""
    values = {row.statistic: round(float(row.cohort), 4) for row in calibration.itertuples()}
    return {"synthetic_calibration": values, "all_targets_met": bool(calibration["met"].all())}


def run(params: Params, root: str | Path = ".") -> dict:
    paths = resolve(params.paths, root)
    sp = params.synthetic
    summary: dict = {"stage": "synthesize"}
    with stage_timer(summary):
        cohort = generate_cohort(sp)
        calibration = check_calibration(
            calibration_statistics(cohort.tables, cohort.truth, sp.landmark_days)
        )
        rng = np.random.default_rng([sp.seed, MESSY_STREAM])
        export, manifest = make_export(
            cohort.tables, sp.extract_date, sp.messy_row_share, sp.alias_row_share, rng
        )
        with atomic_directory(paths["raw_dir"]) as raw_dir:
            for table, df in export.items():
                write_table(df, raw_dir / f"{table}.{sp.file_format}", sp.file_format)
        with atomic_directory(paths["truth_dir"]) as truth_dir:
            write_parquet(cohort.truth, truth_dir / "truth_episodes.parquet")
            write_csv(manifest, truth_dir / "messy_rows.csv")
            write_csv(calibration, truth_dir / "calibration.csv")
            write_json(
                {
                    **cohort.summary,
                    "calibration": calibration.set_index("statistic")["cohort"].to_dict(),
                    "calibration_all_met": bool(calibration["met"].all()),
                },
                truth_dir / "truth.json",
            )
        write_json(
            calibration_metrics(calibration), paths["reports_dir"] / "synthetic_calibration.json"
        )
        summary["rows_written"] = {t: len(df) for t, df in export.items()}
        summary["messy_rows"] = int((manifest["kind"] != "alias").sum())
        summary["aliased_values"] = int((manifest["kind"] == "alias").sum())
        missed = calibration.loc[~calibration["met"], "statistic"].tolist()
        if missed:
            summary["warnings"].append(f"calibration targets not met: {', '.join(missed)}")
        summary["outputs"] = {k: str(paths[k]) for k in ("raw_dir", "truth_dir")}
    write_json(summary, paths["logs_dir"] / "synthesize.json")
    return summary


def main() -> None:
    summary = run(load_params())
    print(
        f"Synthetic cohort written to {summary['outputs']['raw_dir']}; ground truth in "
        f"{summary['outputs']['truth_dir']}"
    )


if __name__ == "__main__":
    main()
