"""The default cohort through every analysis stage: idle, and beside CPU-burning processes.

    python benchmarks/bench_default.py                    # this checkout (~10 min)
    python benchmarks/bench_default.py --before 2f2ba6c   # also an earlier commit, same runs

Runs ``engage run`` (ingest → report, each stage's time recorded in its log) on the
bundled synthetic export (``data/raw/synthetic``: run ``dvc repro synthesize`` first) into a
temporary folder, in a fresh process:

- ``idle``: nothing else running;
- ``under load``: beside one pure-Python busy loop per CPU (load average ≈ 2× the CPUs:
  a shared research server or CI runner), started before the run and stopped after it;
- ``under load, OpenMP spinning``: the same with ``OMP_WAIT_POLICY=ACTIVE``, the OpenMP
  runtime's default that the pipeline now overrides (``pipeline/__init__.py``), to show
  what the override buys.

``--before COMMIT`` runs the idle and under-load cases on that commit too (a git worktree in
a temporary folder, the same environment). Every run is stopped after ``CAP_SECONDS``.
Writes ``benchmarks/results/default_run.json`` and ``default_run.md``: seconds per stage,
the sum of stage times, the wall time, each case's slowdown against its idle run, and the
headline metrics that changed between the two codes' idle runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, save

from pipeline import catalog

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
STAGES = catalog.ANALYSIS_STAGES  # ingest → report, in order
CAP_SECONDS = 600


def _burners(n: int) -> list[subprocess.Popen]:
    code = "while True: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def run_once(code_root: Path, load: bool, spin: bool) -> dict:
    """One ``engage run`` of the code at ``code_root`` on this checkout's synthetic export."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if spin:
        env["OMP_WAIT_POLICY"] = "ACTIVE"
    burners = _burners(os.cpu_count() or 1) if load else []
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pipeline.cli",
                    "run",
                    "--input",
                    str(ROOT / "data/raw/synthetic"),
                    "--out",
                    out,
                    "--params",
                    str(code_root / "params.yaml"),
                ],
                cwd=code_root,  # `python -m` imports the package from here
                env=env,
                capture_output=True,
                text=True,
                timeout=CAP_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return {"wall_seconds": None, "stopped_after_s": CAP_SECONDS}
        finally:
            for b in burners:
                b.kill()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"wall_seconds": None, "error": proc.stderr[-2000:]}
        metrics = json.loads((Path(out) / "reports" / "metrics.json").read_text())
        stages = {}
        for name in STAGES:
            log = Path(out) / "data" / "logs" / f"{name}.json"
            if log.exists():
                stages[name] = json.loads(log.read_text()).get("seconds")
    return {
        "wall_seconds": round(wall, 1),
        "stage_seconds": stages,
        "sum_of_stages": round(sum(v for v in stages.values() if v), 1),
        "metrics": metrics,
    }


def metric_changes(rows: list[dict]) -> list[str]:
    """Headline metrics that differ between this checkout's idle run and the earlier
    commit's: the estimates a speed change must leave alone (up to Monte-Carlo error)."""
    idle = {r["code"]: r.get("metrics") for r in rows if r["case"] == "idle"}
    now = idle.pop("this checkout", None)
    if not now or not idle:
        return []
    ((label, then),) = idle.items()
    if not then:
        return []
    lines = [f"Headline metrics (`reports/metrics.json`) that differ from {label}'s:", ""]
    for key in sorted(set(now) | set(then)):
        a, b = then.get(key), now.get(key)
        if a != b:
            lines.append(f"- `{key}`: {a} → {b}")
    if len(lines) == 2:
        lines.append("- none: every headline metric is identical")
    return ["", *lines]


def _worktree(commit: str, where: Path) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(where), commit],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return where


def main(before: str | None) -> None:
    cases = [("idle", False, False), ("under load", True, False)]
    cases.append(("under load, OpenMP spinning", True, True))
    rows = []
    codes = [("this checkout", ROOT)]
    tmp = None
    if before:
        tmp = Path(tempfile.mkdtemp()) / "before"
        codes.append((f"commit {before}", _worktree(before, tmp)))
    try:
        for label, root in codes:
            for case, load, spin in cases:
                if label != "this checkout" and spin:
                    continue  # before the override the default was already spinning
                result = run_once(root, load, spin)
                rows.append({"code": label, "case": case, **result})
                print(rows[-1], flush=True)
                save("default_run", rows)
    finally:
        if tmp is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp)], cwd=ROOT)
    write_markdown(rows)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def write_markdown(rows: list[dict]) -> None:
    idle = {r["code"]: r.get("sum_of_stages") for r in rows if r["case"] == "idle"}
    head = "| code | case | " + " | ".join(STAGES) + " | sum of stages | wall | slowdown |"
    lines = [
        "# The default cohort through every stage, idle and under load",
        "",
        "`python benchmarks/bench_default.py` — `engage run` on the bundled synthetic export "
        "(4,000 episodes); seconds per stage from each stage's log. Under load: one "
        "busy-loop process per CPU beside the run. Slowdown: sum of stage times against "
        "the same code's idle run.",
        "",
        head,
        "|" + "---|" * (len(STAGES) + 5),
    ]
    for r in rows:
        stages = r.get("stage_seconds") or {}
        total = r.get("sum_of_stages")
        base = idle.get(r["code"])
        slow = f"{total / base:.2f}×" if total and base else "—"
        if r.get("stopped_after_s"):
            slow = f"stopped after {r['stopped_after_s']} s"
        lines.append(
            f"| {r['code']} | {r['case']} | "
            + " | ".join(_fmt(stages.get(s)) for s in STAGES)
            + f" | {_fmt(total)} | {_fmt(r.get('wall_seconds'))} | {slow} |"
        )
    lines += metric_changes(rows)
    m = machine()
    lines += ["", f"Machine: {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}."]
    (RESULTS / "default_run.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[args.index("--before") + 1] if "--before" in args else None)
