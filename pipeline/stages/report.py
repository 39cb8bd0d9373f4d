"""Stage ``report``: the clinician and technical HTML reports and the DVC plot data.

Everything written here has passed disclosure control (``pipeline/disclosure.py``).
The HTML is self-contained (inline CSS and SVG, no scripts, no network requests).

What the reports say about the data (where it came from, whether it is synthetic, its
files, extract date and what it does not record) comes from the ingest report of the run
being reported, never from ``params.paths``: ``engage run --input`` passes its input as an
argument. The code version is asked of the package's own folder, not of the output root.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import pandas as pd

import pipeline
from pipeline import __version__, catalog
from pipeline.config import Params
from pipeline.disclosure_audit import refused_files
from pipeline.io import atomic_directory, read_json, write_csv, write_text
from pipeline.models.analysis import analysis_frame
from pipeline.report.build import (
    build_context,
    compact_json,
    layout_text,
    plot_data,
)
from pipeline.report.render import render
from pipeline.stages.common import stage, stage_main
from pipeline.stages.results import load_inputs, read_results

LIBRARIES = ("pandas", "numpy", "statsmodels", "scikit-learn", "matplotlib", "pandera", "dvc")


PACKAGE_DIR = Path(pipeline.__file__).resolve().parent


def code_version(package_dir: Path = PACKAGE_DIR) -> str:
    """The version of the code that ran: the commit of the git checkout holding the
    package (with ``dirty`` when a tracked file there has uncommitted changes), otherwise
    the package version. Asked where the code lives, whatever the output root."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=package_dir,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", "__init__.py")  # the package is tracked here
        commit = git("rev-parse", "HEAD")
        # tracked files changed; untracked ones (outputs, an export copied in) are not code
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return f"package version {__version__} (not a git checkout)"
    return f"git commit {commit}" + (" (dirty: uncommitted changes)" if dirty else "")


def provenance(ctx: dict) -> list[tuple[str, str]]:
    """Where the reported run's data and code came from (the input files and their SHA-256
    are listed apart, from ``ctx["export"]["input_files"]``)."""
    info = ctx["export"]
    rows = [
        ("input", "synthetic cohort" if info["synthetic"] else "service export"),
        ("input layout", layout_text(info)),
        (
            "extract date",
            f"{info['extract_date'] or 'not recorded'} ({info['extract_date_source']})",
        ),
    ]
    if info["manifest"]:
        rows.append(("export manifest", compact_json(info["manifest"])))
    if info["rekeyed"] is not None:
        rows.append(("identifiers re-keyed", "yes" if info["rekeyed"] else "no"))
    return [
        *rows,
        ("code version", code_version()),
        ("package version", __version__),
        ("python", platform.python_version()),
        *[(f"library {lib}", importlib.metadata.version(lib)) for lib in LIBRARIES],
        ("generated", ctx["generated"]),
    ]


def refuse_unshareable(reports_dir: Path) -> None:
    """Stop before reporting when ``reports/`` holds what must never be shared (a worklist,
    a fitted model, per-episode rows): the reports would sit beside it in the folder that
    is handed on. Exits with the list and what to do, not a traceback."""
    found = refused_files(reports_dir)
    if found:
        raise SystemExit(
            f"report: {reports_dir} holds files that must never be shared: "
            + "; ".join(found)
            + ". Move them out (a worklist belongs in data/results/worklist/) and run again."
        )


def run(
    params: Params,
    root: str | Path = ".",
    generated: str | None = None,
    *,
    show_progress: bool = False,
) -> dict:
    with stage("report", params, root, show_progress=show_progress) as s:
        paths, summary = s.paths, s.summary
        refuse_unshareable(paths["reports_dir"])
        interim, ingest_report, features, outcomes = load_inputs(paths)
        frame = analysis_frame(features, outcomes, interim["episodes"], params.models)
        tables = read_results(paths, *catalog.MODEL_STAGES)
        metrics = read_json(catalog.METRICS.path(paths))
        cards = [
            read_json(p)
            for stage_name in catalog.MODEL_STAGES
            for p in sorted(
                catalog.exact_results(stage_name).path(paths).glob("model_cards/*.json")
            )
        ]
        predictions_path = catalog.PREDICTIONS.path(paths)
        ctx = build_context(
            frame,
            tables,
            metrics | {"n_sessions": ingest_report["tables"]["sessions"]["rows_accepted"]},
            ingest_report,
            params,
            pd.read_parquet(predictions_path) if predictions_path.exists() else None,
        )
        ctx["generated"] = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        clinician, technical = render(ctx, params, tables, cards, metrics, provenance(ctx))
        write_text(clinician, catalog.CLINICIAN_REPORT.path(paths))
        write_text(technical, catalog.TECHNICAL_REPORT.path(paths))
        with atomic_directory(catalog.PLOTS.path(paths)) as folder:
            for name, data in plot_data(ctx).items():
                write_csv(data, folder / f"{name}.csv", float_format="%.3g")
        summary["outputs"] = {
            "clinician": str(catalog.CLINICIAN_REPORT.path(paths)),
            "technical": str(catalog.TECHNICAL_REPORT.path(paths)),
            "plots": str(catalog.PLOTS.path(paths)),
        }
        summary["summary_sentences"] = ctx["summary"]
    return s.summary


def describe(summary: dict) -> str:
    """What the stage says when it is done (``python -m``, ``engage``)."""
    return f"Reports → {summary['outputs']['clinician']}, {summary['outputs']['technical']}"


def main() -> None:
    stage_main(run, describe)


if __name__ == "__main__":
    main()
