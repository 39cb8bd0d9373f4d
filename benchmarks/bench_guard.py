"""The identifier guard: false alarms on clean exports, and time to refuse absurd input.

    python benchmarks/bench_guard.py

1. False positives: the default synthetic cohort (params.yaml defaults), written in the
   contract layout and in the NHS Talking Therapies data set layout, goes through the
   guard table by table (every column, every value; the contract's text rules too). Every
   finding on this clean, identifier-free data is a false alarm; the count of flagged
   values and the scan time per layout are reported.
2. Bounded work: the time `engage ingest` takes, in a fresh process, to refuse a sessions
   table whose header carries 100,000 extra column names (about 700 KB).

Writes benchmarks/results/guard.json and guard.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.config import Params
from pipeline.ingest.accept import identifier_findings
from pipeline.layouts.export import open_export
from pipeline.stages import synthesize

RESULTS = Path(__file__).parent / "results"


def false_alarms(folder: Path, params: Params) -> dict:
    """Findings of the guard on every table of an export (all false alarms on clean data)."""
    export = open_export(folder, params.ingest)
    start = time.perf_counter()
    findings, rows = [], 0
    if hasattr(export, "sources"):  # a mapped layout: the source tables, then the contract's
        for name in export.sources:
            raw = export._source(name)
            rows += raw.n_read
            findings += identifier_findings(raw, params.ingest)
    for table in export.tables:
        raw = export.read(table)
        if not hasattr(export, "sources"):
            rows += raw.n_read
        findings += identifier_findings(raw, params.ingest)
    return {
        "rows_scanned": rows,
        "findings": len(findings),
        "values_flagged": sum(len(f.lines) for f in findings),
        "kinds": sorted({f.kind for f in findings}),
        "scan_seconds": round(time.perf_counter() - start, 2),
    }


def wide_header_refusal(folder: Path, source: Path) -> dict:
    export = folder / "wide"
    shutil.copytree(source, export)
    path = export / "sessions.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    extra = ",".join(f"x{i}" for i in range(100_000))
    lines[0] = lines[0].rstrip("\r\n") + "," + extra + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    engage = Path(sys.executable).with_name("engage")
    start = time.perf_counter()
    run = subprocess.run(
        [str(engage), "ingest", str(export), "--out", str(folder / "out"), "--params", "/none"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "header_bytes": len(lines[0].encode()),
        "exit_code": run.returncode,
        "seconds": round(time.perf_counter() - start, 2),
        "message": " ".join(run.stderr.split())[:300],
    }


def main() -> None:
    params = Params()
    out: dict = {"n_episodes": params.synthetic.n_episodes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for layout in ("contract", "nhstt"):
            p = params.model_copy(
                update={"synthetic": params.synthetic.model_copy(update={"layout": layout})}
            )
            summary = synthesize.run(p, root / layout)
            raw = Path(summary["outputs"]["raw_dir"])
            out[layout] = false_alarms(raw, params)
            print(layout, out[layout], flush=True)
        clean = root / "contract" / "data" / "raw" / "synthetic"
        out["wide_header"] = wide_header_refusal(root, clean)
        print("wide header", out["wide_header"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "guard.json").write_text(json.dumps(out, indent=2) + "\n")
    md = [
        "# Identifier guard: false alarms and bounded refusal",
        "",
        f"Default synthetic cohort ({out['n_episodes']} episodes), "
        "`python benchmarks/bench_guard.py`.",
        "",
        "| layout | rows scanned | findings (false alarms) | values flagged | scan time (s) |",
        "|---|---|---|---|---|",
    ]
    for layout in ("contract", "nhstt"):
        r = out[layout]
        md.append(
            f"| {layout} | {r['rows_scanned']:,} | {r['findings']} | {r['values_flagged']} | "
            f"{r['scan_seconds']} |"
        )
    w = out["wide_header"]
    md += [
        "",
        f"A sessions header with 100,000 extra column names ({w['header_bytes']:,} bytes): "
        f"`engage ingest` exit code {w['exit_code']} after {w['seconds']} s (process start "
        f"included): {w['message']}",
        "",
    ]
    (RESULTS / "guard.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
