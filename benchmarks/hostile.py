"""Hostile inputs through the real CLI: every case of tests/ingest/hostile_cases.py.

    python benchmarks/hostile.py [--name hostile] [--jobs 4]

Each case is built in its own temporary folder and run as ``engage ingest`` and
``engage validate`` in fresh subprocesses (timeout 120 s each, wall time measured); the
same expectations as tests/ingest/test_hostile.py are evaluated (exit code, message, nothing
written, planted strings never echoed nor written, rows reconciled, determinism). Writes
benchmarks/results/<name>.md: a table ``case | expected | observed | ok`` and the wall time
of the 100,000-column header case (run alone, after the others, so the figure is not
disturbed by concurrent cases).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import platform
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
CASES_FILE = ROOT / "tests" / "ingest" / "hostile_cases.py"
TIMEOUT = 120.0


def load_cases():
    name = "hostile_cases"
    spec = importlib.util.spec_from_file_location(name, CASES_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def run_case(hc, case):
    with tempfile.TemporaryDirectory(prefix=f"hostile-{case.name}-") as tmp:
        return hc.execute(case, Path(tmp) / "work", hc.run_subprocess, timeout=TIMEOUT)


def render(outcomes, name: str) -> str:
    n_ok = sum(o.ok and not o.skipped for o in outcomes)
    n_skip = sum(bool(o.skipped) for o in outcomes)
    n_fail = sum(not o.ok for o in outcomes)
    lines = [
        f"# Hostile inputs through the CLI ({name})",
        "",
        f"{dt.datetime.now().isoformat(timespec='seconds')}, Python "
        f"{platform.python_version()}, {platform.machine()}. Cases: "
        "tests/ingest/hostile_cases.py; each run as `engage ingest` and `engage validate` "
        f"in a subprocess (timeout {TIMEOUT:g} s).",
        "",
        f"**{n_ok} ok, {n_fail} failing, {n_skip} skipped** of {len(outcomes)} cases.",
        "",
        "| case | expected | observed | ok |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        ok = "skip" if o.skipped else ("yes" if o.ok else "**NO**")
        lines.append(
            f"| {_cell(o.case.group + ': ' + o.case.name)} | {_cell(o.case.expected())} "
            f"| {_cell(o.observed())} | {ok} |"
        )
    timed = [o for o in outcomes if o.case.timed and o.ingest is not None]
    if timed:
        lines += ["", "## Timing", ""]
        for o in timed:
            lines.append(
                f"- {o.case.name}: `engage ingest` took {o.ingest.seconds:.2f} s wall time "
                f"(exit {o.ingest.exit_code}; limit {o.case.max_seconds:g} s), "
                f"`engage validate` {o.validate.seconds:.2f} s."
            )
    return "\n".join(lines) + "\n"


def main(
    name: Annotated[str, typer.Option("--name", help="Results file name (no suffix).")] = "hostile",
    jobs: Annotated[int, typer.Option("--jobs", help="Cases run at the same time.")] = 4,
    only: Annotated[
        str | None, typer.Option("--only", help="Run only cases whose name contains this.")
    ] = None,
) -> None:
    """Run every hostile case through the CLI and write benchmarks/results/<name>.md."""
    hc = load_cases()
    cases = [c for c in hc.all_cases() if only is None or only in c.name]
    untimed = [i for i, c in enumerate(cases) if not c.timed]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = dict(zip(untimed, pool.map(lambda i: run_case(hc, cases[i]), untimed), strict=True))
    for i, case in enumerate(cases):
        if case.timed:  # alone, so its wall time is its own
            done[i] = run_case(hc, case)
    outcomes = [done[i] for i in range(len(cases))]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(render(outcomes, name))
    for o in outcomes:
        status = "skip" if o.skipped else ("ok  " if o.ok else "FAIL")
        typer.echo(f"{status} {o.case.name}: {o.observed()}")
    typer.echo(f"Wrote {path}")


if __name__ == "__main__":
    typer.run(main)
