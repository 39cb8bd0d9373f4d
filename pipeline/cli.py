"""``engage``: the command-line interface (one command per stage, plus validate and run)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.config import ParamsError, load_params
from pipeline.ingest.read import InputError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Engagement → outcomes research pipeline."
)
# Markup off: messages carry text from the input (column and file names), which must be
# printed as written, never read as console markup (a column named "[/]" is just a name).
console = Console(markup=False, highlight=False, soft_wrap=True)  # paths stay whole
err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def _styled(tag: str, style: str, text: object = "") -> Text:
    """A styled tag ("Error:", "PASS") followed by plain text."""
    return Text.assemble((tag, style), str(text))


ParamsOption = Annotated[Path, typer.Option("--params", help="Path to params.yaml.")]


def _params(path: Path):
    try:
        return load_params(path)
    except ParamsError as exc:
        err.print(_styled("Error: ", "red", exc))
        raise typer.Exit(2) from None


def _params_or_default(path: Path):
    """params.yaml if present (e.g. inside the repository), else the built-in defaults."""
    from pipeline.config import Params

    return _params(path) if path.exists() else Params()


def _frame_table(df, title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for col in df.columns:
        table.add_column(str(col))
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    return table


@app.command()
def synthesize(
    params: ParamsOption = Path("params.yaml"),
    layout: Annotated[
        str | None,
        typer.Option("--layout", help="contract (default) or nhstt: the NHS TT data set tables."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output root (default: the project folder of --params)."),
    ] = None,
) -> None:
    """Generate the bundled synthetic cohort (tables, ground truth, calibration)."""
    from pipeline.stages import synthesize as stage

    p = _params_or_default(params)
    if layout is not None:
        if layout not in ("contract", "nhstt"):
            _fail(f"--layout must be contract or nhstt (not {layout!r}).")
        if layout != p.synthetic.layout and out is None:
            _fail(
                f"--layout {layout} needs --out DIR: written to the project folder it would "
                "replace the bundled cohort that dvc repro uses."
            )
        p = p.model_copy(update={"synthetic": p.synthetic.model_copy(update={"layout": layout})})
    summary = stage.run(p, out if out is not None else params.parent)
    console.print(f"Synthetic cohort: {summary['outputs']['raw_dir']}")
    console.print(f"Ground truth and calibration: {summary['outputs']['truth_dir']}")
    for warning in summary["warnings"]:
        err.print(_styled("Warning: ", "yellow", warning))


def _fail(message: str) -> None:
    err.print(_styled("Error: ", "red", message))
    raise typer.Exit(1)


ExtractDateOption = Annotated[
    dt.datetime | None,
    typer.Option(
        "--extract-date",
        formats=["%Y-%m-%d"],
        help="The export's extract date (YYYY-MM-DD). Default: its export.json, else its "
        "latest appointment.",
    ),
]
AcceptFutureOption = Annotated[
    bool,
    typer.Option(
        "--accept-future-dated",
        help="Go on even if the extract date quarantines many appointments as future-dated.",
    ),
]
LayoutOption = Annotated[
    str | None,
    typer.Option(
        "--layout",
        help="contract or nhstt (NHS Talking Therapies data set); default: detected.",
    ),
]
MappingOption = Annotated[
    Path | None,
    typer.Option("--mapping", help="YAML mapping for another system's export (docs/layouts.md)."),
]


def _ingest_overrides(
    params: Path,
    extract_date: dt.datetime | None,
    accept_future: bool,
    layout: str | None,
    mapping: Path | None,
):
    """The params for this run, with the ingest options given on the command line."""
    p = _params_or_default(params)
    update: dict = {}
    if extract_date is not None:
        update["extract_date"] = extract_date.date()
    if accept_future:
        update["future_dated_max_share"] = 1.0
    if mapping is not None:
        update["mapping"] = str(mapping)
    if layout is not None:
        if layout not in ("auto", "contract", "nhstt"):
            _fail(f"--layout must be auto, contract or nhstt (not {layout!r}).")
        update["layout"] = layout
    return p.model_copy(update={"ingest": p.ingest.model_copy(update=update)})


@app.command()
def ingest(
    input_dir: Annotated[Path, typer.Argument(help="Folder holding the export's tables.")],
    out: Annotated[
        Path, typer.Option("--out", help="Output root (data/interim/... inside).")
    ] = Path("."),
    params: ParamsOption = Path("params.yaml"),
    extract_date: ExtractDateOption = None,
    accept_future_dated: AcceptFutureOption = False,
    layout: LayoutOption = None,
    mapping: MappingOption = None,
) -> None:
    """Validate an export, quarantine bad rows and write typed tables under OUT/data/interim."""
    p = _ingest_overrides(params, extract_date, accept_future_dated, layout, mapping)
    summary = _run_stage("ingest", p, out, input_dir)
    _report_ingest(summary)


def _report_ingest(summary: dict) -> None:
    t = summary["totals"]
    console.print(
        f"Ingested {t['rows_read']} rows ({summary['layout']} layout): {t['rows_accepted']} "
        f"accepted, {t['rows_quarantined']} quarantined."
    )
    console.print(f"Extract date {summary['extract_date']} ({summary['extract_date_source']}).")
    console.print(f"Tables, quarantine and ingest_report.json: {summary['outputs']['interim_dir']}")


def _run_stage(name: str, params, out: Path, *inputs: Path) -> dict:
    """Run one analysis stage (``params``: a path to params.yaml, or params already read);
    a foreseeable failure becomes a message and exit code 1."""
    from pipeline.stages.registry import ANALYSIS_STAGES

    if isinstance(params, Path):
        params = _params_or_default(params)
    try:
        summary = ANALYSIS_STAGES[name](params, out, *inputs)
        for warning in summary.get("warnings", []):
            err.print(_styled(f"Warning ({name}): ", "yellow", warning))
        return summary
    except FileNotFoundError as exc:
        _fail(
            f"stage {name}: {exc.filename} not found: run the earlier stages first "
            "(engage ingest …)."
        )
    except (InputError, OSError) as exc:
        _fail(f"stage {name}: {exc}")
    return {}


@app.command()
def partition(
    export: Annotated[Path, typer.Argument(help="Folder holding the export's tables.")],
    out: Annotated[Path, typer.Argument(help="New folder for the partitioned export.")],
    partitions: Annotated[
        int | None, typer.Option("--partitions", help="Number of episode buckets.")
    ] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Split an export into episode buckets for the dask engine (docs/scaling.md).

    PARAMS (if the file exists) gives dask.partitions, dask.episodes_per_partition and
    the ingest settings; without it the built-in sizes are used."""
    from pipeline.engine.partition import write_partitioned

    p = _params(params) if params.exists() else None
    if partitions is not None and partitions < 1:
        err.print(_styled("Error: ", "red", "--partitions must be at least 1."))
        raise typer.Exit(2)
    try:
        manifest = write_partitioned(
            export,
            out,
            partitions if partitions else (p.dask.partitions if p else None),
            p.dask.episodes_per_partition if p else 20_000,
            p.ingest if p is not None else None,
        )
    except (InputError, OSError) as exc:
        _fail(str(exc))
    rows = sum(t["rows"] for t in manifest["tables"].values())
    console.print(
        f"Partitioned {rows} rows of {len(manifest['tables'])} tables into "
        f"{manifest['partitions']} episode buckets → {out}"
    )


@app.command()
def features(
    out: Annotated[Path, typer.Option("--out", help="Root holding data/interim.")] = Path("."),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Engagement features in the landmark window → OUT/data/processed/features.parquet."""
    summary = _run_stage("features", params, out)
    console.print(f"Features for {summary['episodes']} episodes: {summary['outputs']['features']}")


@app.command()
def outcomes(
    out: Annotated[Path, typer.Option("--out", help="Root holding data/interim.")] = Path("."),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """The outcome table → OUT/data/processed/outcomes.parquet."""
    summary = _run_stage("outcomes", params, out)
    console.print(f"Outcomes for {summary['episodes']} episodes: {summary['outputs']['outcomes']}")


def _report_models(summary: dict) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in summary["status"].items())
    console.print(f"{summary['models']} models ({counts}): {summary['outputs']['tables']}")
    for model, why in summary["not_fitted"].items():
        console.print(Text("  ") + _styled(str(model), "yellow", f": {'; '.join(why)}"))


@app.command()
def models(
    out: Annotated[Path, typer.Option("--out", help="Root holding data/processed.")] = Path("."),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Effect models, dropout curves, trajectories, dose–response → OUT/reports/tables/models/."""
    _report_models(_run_stage("models", params, out))


@app.command()
def prediction(
    out: Annotated[Path, typer.Option("--out", help="Root holding data/processed.")] = Path("."),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """How well the landmark window predicts poor outcome → OUT/reports/tables/prediction/."""
    summary = _run_stage("prediction", params, out)
    _report_models(summary)
    h = summary["headline"]
    if h:
        console.print(
            f"AUC {h['auc_baseline']:.3f} (baseline) → {h['auc_engagement']:.3f} (with early "
            f"engagement); gain {h['auc_gain']:.3f} ({h['auc_gain_ci_low']:.3f} to "
            f"{h['auc_gain_ci_high']:.3f})"
        )


def _report_worklist(summary: dict) -> None:
    if summary.get("not_made"):
        _fail(f"worklist not made: {summary['not_made']}")
    t = summary["training"]
    console.print(
        f"{summary['scored']} open episode(s) past the landmark scored with the model fitted "
        f"on {t['n']} ended episodes ({t['events']} poor outcomes)."
    )
    console.print(
        f"Worklist: {summary['outputs']['worklist']} (pseudonymous ids: for the service's own "
        "use only, not for sharing; never copy it into reports/)."
    )


@app.command()
def score(
    out: Annotated[
        Path, typer.Option("--out", help="Root holding data/interim and data/processed.")
    ] = Path("."),
    params: ParamsOption = Path("params.yaml"),
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A saved model (data/results/worklist/model.joblib, its model_card.json "
            "beside it): score OUT's extract with it, without refitting.",
        ),
    ] = None,
) -> None:
    """The worklist of open episodes past the landmark at risk of a poor outcome, for the
    service's own use (docs/worklist.md). Default: fit on the ended episodes and score the
    open ones (the worklist stage) → OUT/data/results/worklist/. With --model: score a
    later extract with a saved model → OUT/data/results/worklist_scored/."""
    if model is None:
        _report_worklist(_run_stage("worklist", params, out))
        return
    from pipeline.models.worklist import WorklistError
    from pipeline.stages.worklist import score_saved

    try:
        summary = score_saved(_params_or_default(params), out, model)
    except WorklistError as exc:
        _fail(str(exc))
    except FileNotFoundError as exc:
        _fail(
            f"score: {exc.filename} not found: ingest the extract and build its features and "
            "outcomes first (engage ingest …, engage features, engage outcomes)."
        )
    for warning in summary.get("warnings", []):
        err.print(_styled("Warning (score): ", "yellow", warning))
    _report_worklist(summary)


@app.command("missing-data")
def missing_data(
    out: Annotated[Path, typer.Option("--out", help="Root holding data/processed.")] = Path("."),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """The main effect under complete cases, LOCF, MI and delta adjustment."""
    _report_models(_run_stage("missing_data", params, out))


@app.command()
def metrics(
    out: Annotated[Path, typer.Option("--out", help="Root holding reports/.")] = Path("."),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Collect the run's headline numbers → OUT/reports/metrics.json."""
    summary = _run_stage("metrics", params, out)
    console.print(f"{summary['metrics']} metrics: {summary['outputs']['metrics']}")


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Root holding reports/ and data/.")] = Path(
        "."
    ),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Clinician and technical HTML reports and plot data → OUT/reports/."""
    summary = _run_stage("report", params, out)
    console.print(f"Reports: {summary['outputs']['clinician']}, {summary['outputs']['technical']}")


@app.command()
def run(
    input_dir: Annotated[Path, typer.Option("--input", help="Folder of the export's tables.")],
    out: Annotated[Path, typer.Option("--out", help="Output root for every stage's outputs.")],
    params: ParamsOption = Path("params.yaml"),
    extract_date: ExtractDateOption = None,
    accept_future_dated: AcceptFutureOption = False,
    layout: LayoutOption = None,
    mapping: MappingOption = None,
) -> None:
    """Run every analysis stage on INPUT outside DVC, writing the repository's layout under OUT."""
    from pipeline.stages.registry import ANALYSIS_STAGES

    p = _ingest_overrides(params, extract_date, accept_future_dated, layout, mapping)
    for name in ANALYSIS_STAGES:
        console.print(_styled(name, "bold", " …"))
        summary = _run_stage(name, p, out, *([input_dir] if name == "ingest" else []))
        if name == "ingest":
            _report_ingest(summary)
    console.print(f"All stages done; outputs under {out}/")


@app.command()
def validate(
    input_dir: Annotated[Path, typer.Argument(help="Folder holding <table>.csv/.parquet files.")],
    params: ParamsOption = Path("params.yaml"),
    strict: Annotated[bool, typer.Option(help="Exit non-zero on row-level problems too.")] = False,
    extract_date: ExtractDateOption = None,
    accept_future_dated: AcceptFutureOption = False,
    layout: LayoutOption = None,
    mapping: MappingOption = None,
) -> None:
    """Check a dataset folder against the input data contract; writes nothing."""
    from pipeline.config import instrument_registry
    from pipeline.instruments import use_registry
    from pipeline.layouts.validate import validate_dataset

    p = _ingest_overrides(params, extract_date, accept_future_dated, layout, mapping)
    try:
        with use_registry(instrument_registry(p)):  # and the instruments params register
            report = validate_dataset(input_dir, p.ingest)
    except (InputError, OSError) as exc:
        err.print(_styled("FAIL ", "red", f"{input_dir}: {exc}"))
        raise typer.Exit(1) from None
    console.print(_frame_table(report.summary(), f"Contract check of {input_dir}"))
    console.print(f"Layout: {report.layout}. Extract date: {report.extract_source}.")
    for table in report.absent_optional:
        console.print(
            f"Optional table {table} not supplied: its features will be reported as "
            "'not in this export' (never as zero)."
        )
    problems = report.problems_by_rule()
    if problems.empty:
        console.print(_styled("PASS", "green", ": every row meets the contract."))
        return
    console.print(_frame_table(problems, "Rows that break a rule (ingest will quarantine them)"))
    for hint in report.hints():
        console.print(_styled("Note: ", "yellow", hint))
    n = int(problems["rows"].sum())
    console.print(
        _styled(
            "PASS", "green", f" (whole-input rules met); {n} row-level problem(s) listed above."
        )
    )
    if strict:
        raise typer.Exit(1)


@app.command("check-disclosure")
def check_disclosure(
    reports: Annotated[
        Path, typer.Argument(help="The folder of shared outputs (default: reports).")
    ] = Path("reports"),
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Attack the shared outputs as a reader holding every file would: report any count
    that the rounding or suppression was meant to hide but can be pinned down. Exits 1
    if one can (docs/methods.md, section 7)."""
    from pipeline.disclosure_audit import audit, refused_files, summarise

    if not reports.is_dir():
        _fail(f"{reports} is not a folder: give the folder of shared outputs (reports/)")
    refused = refused_files(reports)
    if refused:
        for line in refused:
            err.print(_styled("Refused: ", "red", line))
        _fail(
            f"{len(refused)} file(s) under {reports} hold per-episode rows with pseudonymous "
            "ids: these are for the service's own use and must never be shared; move them "
            "out of the shared outputs (the worklist belongs in data/results/worklist/)."
        )
    d = _params_or_default(params).disclosure
    found = audit(reports, d.threshold, d.rounding_base)
    if not found:
        console.print(
            f"No count could be recovered from {reports} (threshold {d.threshold}, "
            f"rounding to {d.rounding_base})."
        )
        return
    table = Table(title=f"Counts recovered from {reports}")
    for column in ("attack", "file", "row", "column", "published", "exact"):
        table.add_column(column)
    for r in found[:50]:
        table.add_row(r.kind, r.file, str(r.row), r.column, r.published, str(r.value))
    err.print(table)
    by_kind = summarise(found)
    counts = ", ".join(f"{kind}: {n}" for kind, n in by_kind.items())
    err.print(f"{sum(by_kind.values())} cells recovered ({counts}); the first 50 are shown.")
    raise typer.Exit(1)


@app.command()
def docs(
    out_dir: Annotated[Path, typer.Option(help="Folder for the generated pages.")] = Path("docs"),
) -> None:
    """Regenerate docs/data-contract.md and docs/calibration.md from the code."""
    from pipeline.config import Params
    from pipeline.docs import (
        engagement_model_auc,
        model_calibration,
        render_calibration_markdown,
        render_contract_markdown,
    )
    from pipeline.io import write_text
    from pipeline.synthetic.calibration import calibration_statistics, check_calibration
    from pipeline.synthetic.generator import generate_cohort

    write_text(render_contract_markdown(), out_dir / "data-contract.md")
    params = Params()
    sp = params.synthetic
    cohort = generate_cohort(sp)
    calibration = check_calibration(
        calibration_statistics(cohort.tables, cohort.truth, sp.landmark_days)
    )
    write_text(
        render_calibration_markdown(
            calibration,
            sp,
            cohort.summary,
            model_calibration(engagement_model_auc(cohort.tables, params)),
        ),
        out_dir / "calibration.md",
    )
    console.print(f"Wrote {out_dir / 'data-contract.md'} and {out_dir / 'calibration.md'}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
