"""Features at national scale, with DuckDB as the "how fast can this be" reference.

    python benchmarks/bench_features.py            # ~10,000,000 sessions (~1.8M episodes)
    python benchmarks/bench_features.py 2000000    # another number of session rows

Builds typed interim tables by replicating a 200,000-episode synthetic cohort with suffixed
ids, then times, each in a fresh process: all engagement features (pandas, reading Parquet
included), the attendance block alone (pandas), and DuckDB running the same attendance
definitions in SQL on the same sessions Parquet file. The DuckDB counts are checked against
pandas. Writes benchmarks/results/features.json.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure, replicate, save

from pipeline.config import Params, SyntheticParams
from pipeline.features.attendance import ATTENDANCE_COLUMNS
from pipeline.synthetic.generator import generate_cohort

BASE_EPISODES = 200_000
EXTRACT = pd.Timestamp("2025-03-31")
WINDOW_DAYS = 42

ATTENDANCE_SQL = """
WITH s AS (SELECT * FROM read_parquet('{path}')),
w AS (SELECT episode_id, min(scheduled_date) AS ws FROM s GROUP BY episode_id),
x AS (
  SELECT s.*, w.ws FROM s JOIN w USING (episode_id)
  WHERE s.scheduled_date < w.ws + INTERVAL {days} DAY
),
att AS (
  SELECT episode_id, scheduled_date,
         date_diff('day', lag(scheduled_date) OVER (PARTITION BY episode_id
                   ORDER BY scheduled_date, session_id), scheduled_date) AS gap
  FROM x WHERE status = 'attended'
),
client AS (
  SELECT episode_id, status <> 'attended' AS missed,
         sum(CASE WHEN status = 'attended' THEN 1 ELSE 0 END) OVER (
           PARTITION BY episode_id ORDER BY scheduled_date, session_id) AS run_id
  FROM x WHERE status <> 'cancelled_by_service'
),
runs AS (
  SELECT episode_id, max(n) AS max_consecutive_missed FROM (
    SELECT episode_id, run_id, count(*) AS n FROM client WHERE missed
    GROUP BY episode_id, run_id) GROUP BY episode_id
),
counts AS (
  SELECT episode_id, count(*) AS n_scheduled,
         count(*) FILTER (WHERE status = 'attended') AS n_attended,
         count(*) FILTER (WHERE status = 'did_not_attend') AS n_dna,
         count(*) FILTER (WHERE status = 'cancelled_by_client') AS n_cancel_client,
         count(*) FILTER (WHERE status = 'cancelled_by_service') AS n_cancel_service,
         count(*) FILTER (WHERE status = 'cancelled_by_client' AND notice_hours < 24) AS n_late,
         arg_min(status, scheduled_date) = 'attended' AS first_attended,
         min(scheduled_date) FILTER (WHERE status = 'attended') AS first_att,
         min(ws) AS ws
  FROM x GROUP BY episode_id
),
gaps AS (
  SELECT episode_id, avg(gap) AS gap_mean_days, max(gap) AS gap_max_days,
         stddev_samp(gap) AS gap_sd_days
  FROM att WHERE gap IS NOT NULL GROUP BY episode_id
)
SELECT c.episode_id, n_scheduled, n_attended, n_dna, n_cancel_client, n_cancel_service,
       n_attended / nullif(n_scheduled - n_cancel_service, 0) AS attendance_rate,
       n_dna / nullif(n_scheduled - n_cancel_service, 0) AS dna_rate,
       n_late / nullif(n_scheduled - n_cancel_service, 0) AS late_cancel_rate,
       first_attended, coalesce(r.max_consecutive_missed, 0) AS max_consecutive_missed,
       date_diff('day', ws, first_att) AS days_to_first_attended,
       gap_mean_days, gap_max_days, gap_sd_days
FROM counts c LEFT JOIN runs r USING (episode_id) LEFT JOIN gaps g USING (episode_id)
"""


def build_interim(target_sessions: int, folder: Path) -> dict[str, int]:
    cohort = generate_cohort(SyntheticParams(n_episodes=BASE_EPISODES, oracle_replicates=0))
    copies = math.ceil(target_sessions / len(cohort.tables["sessions"]))
    rows = {}
    for table, df in cohort.tables.items():
        big = replicate(df, table, copies)
        rows[table] = len(big)
        big.to_parquet(folder / f"{table}.parquet", index=False)
    return rows


def pandas_all(folder: Path):
    def run() -> dict:
        from pipeline.features.build import engagement_features

        tables = {p.stem: pd.read_parquet(p) for p in folder.glob("*.parquet")}
        f = engagement_features(tables, Params().features, "PHQ-9", EXTRACT)
        return {"episodes": len(f)}

    return run


def pandas_attendance(folder: Path):
    def run() -> dict:
        from pipeline.features.attendance import attendance_features
        from pipeline.features.window import build_window

        # Only the columns the block uses (DuckDB prunes columns the same way).
        sessions = pd.read_parquet(
            folder / "sessions.parquet",
            columns=["episode_id", "scheduled_date", "status", "notice_hours"],
        )
        episodes = pd.DataFrame({"episode_id": sessions["episode_id"].unique()})
        window = build_window(episodes, sessions, WINDOW_DAYS, EXTRACT)
        f = attendance_features(sessions, window)
        f.to_parquet(folder / "attendance_pandas.parquet", index=False)
        return {"episodes": len(f)}

    return run


def duckdb_attendance(folder: Path):
    def run() -> dict:
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads TO 2")
        out = con.execute(
            ATTENDANCE_SQL.format(path=folder / "sessions.parquet", days=WINDOW_DAYS)
        ).df()
        out.to_parquet(folder / "attendance_duckdb.parquet", index=False)
        return {"episodes": len(out)}

    return run


def check_agreement(folder: Path) -> dict:
    a = pd.read_parquet(folder / "attendance_pandas.parquet").set_index("episode_id")
    b = pd.read_parquet(folder / "attendance_duckdb.parquet").set_index("episode_id")
    b = b.reindex(a.index)
    # Counts must match exactly; rates and gap statistics to floating-point precision.
    result = {}
    for c in ATTENDANCE_COLUMNS:
        if c not in b or c == "first_attended":
            continue
        x, y = a[c].astype(float), b[c].astype(float)
        result[c] = bool((((x - y).abs() < 1e-9) | (x.isna() & y.isna())).all())
    return result


def main() -> None:
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(tmp)
        # Built in its own process, so the measured steps inherit none of its memory.
        rows = measure(lambda: {"rows": build_interim(target, folder)})["rows"]
        print("tables:", rows, flush=True)
        results = []
        for label, fn in (
            ("all features, pandas", pandas_all(folder)),
            ("attendance block, pandas", pandas_attendance(folder)),
            ("attendance block, DuckDB", duckdb_attendance(folder)),
        ):
            m = measure(fn)
            results.append(
                {"what": label, "session_rows": rows["sessions"], "episodes": rows["episodes"], **m}
            )
            print(results[-1], flush=True)
        pandas_t, duck_t = results[1]["seconds"], results[2]["seconds"]
        pandas_m, duck_m = results[1]["peak_rss_mb"], results[2]["peak_rss_mb"]
        summary = {
            "what": "attendance: pandas / DuckDB",
            "time_ratio": round(pandas_t / duck_t, 2),
            "memory_ratio": round(pandas_m / duck_m, 2),
            "agreement": check_agreement(folder),
        }
        print(summary, flush=True)
        results.append(summary)
    print("wrote", save("features", results))


if __name__ == "__main__":
    main()
