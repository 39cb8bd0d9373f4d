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

import jinja2
import pandas as pd
import yaml

import pipeline
from pipeline import __version__, catalog
from pipeline.catalog import SECTIONS, section_tables
from pipeline.config import Params, load_params
from pipeline.disclosure import safe_card, safe_result_table
from pipeline.instruments import INSTRUMENTS, get_instrument
from pipeline.io import atomic_directory, read_json, write_csv, write_json, write_text
from pipeline.models.analysis import analysis_frame
from pipeline.report.build import (
    build_context,
    card_absence,
    compact_json,
    layout_text,
    make_figures,
    pct,
    plot_data,
)
from pipeline.stages.common import resolve, stage_timer
from pipeline.stages.results import load_inputs, read_results

TEMPLATES = Path(__file__).resolve().parents[1] / "report" / "templates"
LIBRARIES = ("pandas", "numpy", "statsmodels", "scikit-learn", "matplotlib", "pandera", "dvc")


PACKAGE_DIR = Path(pipeline.__file__).resolve().parent
UNUSED_PARAMS = {  # settings that do not describe this run: the input is named by its files
    "synthetic": None,
    "paths": ("raw_dir", "truth_dir", "input_dir"),
}


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


def params_used(params: Params) -> str:
    """The parameters as YAML, without those that do not describe this run (the synthetic
    generator's settings and the configured input folders)."""
    data = params.model_dump(mode="json")
    for section, keys in UNUSED_PARAMS.items():
        if keys is None:
            data.pop(section, None)
        else:
            for key in keys:
                data.get(section, {}).pop(key, None)
    return yaml.safe_dump(data, sort_keys=False)


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


def _card(card: dict, params: Params, records: list) -> dict:
    return safe_card(card, params.disclosure) | card_absence(card, records)


def _html_table(name: str, table: pd.DataFrame, params: Params) -> str:
    safe = safe_result_table(table, params.disclosure, name)
    return safe.to_html(index=False, na_rep="", border=0)


def render(
    ctx: dict, params: Params, tables: dict, cards: list[dict], metrics: dict, provenance: list
) -> tuple[str, str]:
    """The clinician and technical HTML."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    css = (TEMPLATES / "base.css").read_text(encoding="utf-8")
    # a figure with nothing to draw (too few people, a block not in this export) is None
    figures = dict.fromkeys(("calibration", "dose", "dropout", "flags", "levers")) | make_figures(
        ctx
    )
    tip = ctx["missing"]["tipping"] if ctx["missing"] else None
    tipping_text = None
    if tip is not None and tip["conclusion_holds_at_delta_0"].all():
        if tip["tipping_delta"].isna().all():
            limits = tip.set_index("direction")["grid_limit"]
            tipping_text = (
                f"the conclusion held even if their scores had been up to "
                f"{abs(limits.get('negative', 0)):g} points better or "
                f"{abs(limits.get('positive', 0)):g} points worse than estimated"
            )
        else:
            nearest = tip.dropna(subset=["tipping_delta"])["tipping_delta"]
            d = nearest.iloc[int(nearest.abs().argmin())]
            side = "better" if d < 0 else "worse"
            tipping_text = (
                f"the conclusion would change if their scores had been {abs(d):g} points "
                f"{side} than estimated"
            )
    common = {
        "css": css,
        "figures": figures,
        "generated": ctx["generated"],
        "threshold": ctx["threshold"],
        "rounding_base": ctx["rounding_base"],
        "pct": pct,
    }
    clinician = env.get_template("clinician.html.j2").render(
        **common,
        **{k: v for k, v in ctx.items() if k not in common},
        tipping_text=tipping_text,
        plausible_auc_max=params.prediction.plausible_auc_max,
    )
    model_sections = [
        (
            title,
            [(n, _html_table(n, tables[n], params)) for n in section_tables(title) if n in tables],
        )
        for title in SECTIONS
    ]
    technical = env.get_template("technical.html.j2").render(
        **common,
        metrics=sorted(metrics.items()),
        model_sections=model_sections,
        cards=[_card(c, params, ctx["absent_records"]) for c in cards],
        window_days=params.features.window_days,
        poor_outcome=params.outcomes.poor_outcome,
        instrument=get_instrument(params.outcomes.primary_instrument),
        alliance_cutoff=params.features.alliance_cutoff,
        alliance_absent="session alliance ratings" in ctx["not_recorded"],
        instruments=[get_instrument(n) for n in INSTRUMENTS],
        quarantine=ctx["quarantine"],
        quarantine_total=ctx["quarantine_total"],
        rows_read=ctx["rows_read"],
        provenance=provenance,
        input_files=ctx["export"]["input_files"],
        not_recorded=ctx["not_recorded"],
        not_recorded_all=ctx["not_recorded_all"],
        params_yaml=params_used(params),
    )
    return clinician, technical


def run(params: Params, root: str | Path = ".", generated: str | None = None) -> dict:
    root = Path(root)
    paths = resolve(params.paths, root)
    summary: dict = {"stage": "report"}
    with stage_timer(summary):
        interim, ingest_report, features, outcomes = load_inputs(paths)
        frame = analysis_frame(features, outcomes, interim["episodes"], params.models)
        tables = read_results(paths, *catalog.MODEL_STAGES)
        metrics = read_json(catalog.METRICS.path(paths))
        cards = [
            read_json(p)
            for stage in catalog.MODEL_STAGES
            for p in sorted(catalog.exact_results(stage).path(paths).glob("model_cards/*.json"))
        ]
        ctx = build_context(
            frame,
            tables,
            metrics | {"n_sessions": ingest_report["tables"]["sessions"]["rows_accepted"]},
            ingest_report,
            params,
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
    write_json(summary, catalog.stage_log("report").path(paths))
    return summary


def main() -> None:
    s = run(load_params())
    print(f"Reports → {s['outputs']['clinician']}, {s['outputs']['technical']}")


if __name__ == "__main__":
    main()
