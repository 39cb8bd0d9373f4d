"""Time, peak memory and throughput of the ingest stage on a national-scale export.

    python benchmarks/bench_ingest.py                 # 10,000,000 session rows
    python benchmarks/bench_ingest.py 2000000         # another size (session rows)

A 200,000-episode synthetic export (with its messy rows) is replicated with suffixed ids
until the sessions table reaches the target, written as Parquet and as CSV, and ingested by
the real stage in a fresh process for each format. Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, replicate, save

from pipeline.config import parse_params
from pipeline.stages import ingest, synthesize

BASE_EPISODES = 200_000


def build_export(target_sessions: int, folder: Path) -> dict[str, int]:
    """Replicate a synthetic export until sessions ≥ target; write Parquet and CSV copies."""
    base = folder / "base"
    params = parse_params(
        {
            "synthetic": {
                "n_episodes": BASE_EPISODES,
                "oracle_replicates": 0,
                "file_format": "parquet",
            },
            "paths": {
                "raw_dir": str(base),
                "truth_dir": str(folder / "truth"),
                "reports_dir": str(folder / "reports"),
                "logs_dir": str(folder / "logs"),
            },
        }
    )
    synthesize.run(params, folder)
    sessions = pd.read_parquet(base / "sessions.parquet")
    copies = math.ceil(target_sessions / len(sessions))
    rows = {}
    for path in sorted(base.glob("*.parquet")):
        table = path.stem
        big = replicate(pd.read_parquet(path), table, copies)
        if table == "sessions":
            big = big.iloc[:target_sessions]
        rows[table] = len(big)
        (folder / "parquet").mkdir(exist_ok=True)
        (folder / "csv").mkdir(exist_ok=True)
        big.to_parquet(folder / "parquet" / f"{table}.parquet", index=False)
        big.to_csv(folder / "csv" / f"{table}.csv", index=False)
    return rows


def run_ingest(folder: Path, fmt: str):
    def run() -> dict:
        params = parse_params({"ingest": {"extract_date": "2025-03-31"}})
        summary = ingest.run(params, folder / f"out_{fmt}", folder / fmt)
        return {"totals": summary["totals"]}

    return run


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(tmp)
        # Built in its own process, so the measured steps inherit none of its memory.
        rows = measure(lambda: {"rows": build_export(target, folder)})["rows"]
        print("export rows:", rows, flush=True)
        results = []
        for fmt in ("parquet", "csv"):
            m = measure(run_ingest(folder, fmt))
            read = m["totals"]["rows_read"]
            results.append(
                {
                    "format": fmt,
                    "session_rows": rows["sessions"],
                    "rows_all_tables": read,
                    "seconds": m["seconds"],
                    "peak_rss_mb": m["peak_rss_mb"],
                    "rows_per_second": round(read / m["seconds"]),
                    "session_rows_per_second": round(rows["sessions"] / m["seconds"]),
                    "rows_quarantined": m["totals"]["rows_quarantined"],
                }
            )
            print(results[-1], flush=True)
    print("wrote", save("ingest", results))


if __name__ == "__main__":
    main()
