"""Time and peak memory of generating (and writing) the synthetic cohort at scale.

    python benchmarks/bench_synthesize.py            # 10k, 100k, 1M episodes
    python benchmarks/bench_synthesize.py 50000      # one size

Writes benchmarks/results/synthesize.json. Not part of the test suite.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, save

from pipeline.config import parse_params
from pipeline.stages import synthesize


def generate_only(n: int):
    from pipeline.synthetic.generator import generate_cohort

    def run() -> dict:
        cohort = generate_cohort(
            parse_params({"synthetic": {"n_episodes": n, "oracle_replicates": 0}}).synthetic
        )
        return {
            "sessions": len(cohort.tables["sessions"]),
            "measures": len(cohort.tables["measures"]),
        }

    return run


def stage(n: int, fmt: str):
    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            summary = synthesize.run(
                parse_params(
                    {"synthetic": {"n_episodes": n, "oracle_replicates": 0, "file_format": fmt}}
                ),
                tmp,
            )
            size = sum(p.stat().st_size for p in Path(tmp, "data/raw/synthetic").iterdir())
        return {"rows": summary["rows_written"], "export_mb": round(size / 1024**2, 1)}

    return run


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    rows = []
    for n in sizes:
        for label, fn in (
            ("generate (in memory)", generate_only(n)),
            ("synthesize stage, parquet", stage(n, "parquet")),
            ("synthesize stage, csv", stage(n, "csv")),
        ):
            result = {"episodes": n, "what": label, **measure(fn)}
            print(result, flush=True)
            rows.append(result)
    print("wrote", save("synthesize", rows))


if __name__ == "__main__":
    main()
