"""The whole feature table in pandas vs the same definitions in DuckDB SQL (issue 21).

    python benchmarks/bench_features_duckdb.py              # ~10,000,000 sessions (~1.8M episodes)
    python benchmarks/bench_features_duckdb.py 1000000      # another number of session rows
    python benchmarks/bench_features_duckdb.py --interim data/interim   # an ingested folder

Builds typed interim tables by replicating a 200,000-episode synthetic cohort with suffixed
ids (``bench_features.build_interim``), or uses an ingested folder, then times in a fresh
process each: the pandas feature build as the ``features`` stage runs it (reading
of the columns it needs, ``engagement_features``, ``write_parquet``) and DuckDB computing
every column of the same table in SQL from the same Parquet files and writing it to Parquet.
Both sides get the threads the stage may use (``stage_threads``: pyarrow's pool for pandas,
``SET threads`` for DuckDB). Every column is then checked on every episode: counts, flags,
dates and integer-valued day counts exactly, other floats to ``FLOAT_TOLERANCE``, missing
values in the same places. Writes benchmarks/results/<name>.json and .md.

The SQL is written from docs/features.md, not generated from the pandas code; only the
constants (window length, cutoffs, the index's components) are taken from the package so
that the two sides cannot drift apart on a number. It expects all six tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _measure import machine, measure, save
from bench_features import EXTRACT, build_interim

from pipeline.config import FeaturesParams, Params
from pipeline.contract import LATE_CANCELLATION_HOURS
from pipeline.engine.cpus import stage_threads
from pipeline.features.communication import REPLY_DAYS
from pipeline.features.goals import HOMEWORK_SCORE
from pipeline.features.index import INDEX_COMPONENTS, MIN_COMPONENTS
from pipeline.instruments import get_instrument

FLOAT_TOLERANCE = 1e-9
"""Largest absolute difference allowed in a non-integer floating feature."""
INTEGER_VALUED = (
    "days_to_first_attended",
    "gap_max_days",
    "n_goals",
    "days_to_first_goal",
    "n_barriers",
    "modality_changes",
)
"""Float columns (missing values) that hold whole numbers: compared exactly."""

FEATURES_SQL = """
CREATE MACRO days_between(a, b) AS
  CAST(floor((epoch_us(b) - epoch_us(a)) / 86400000000.0) AS BIGINT);

-- The landmark window: from the first scheduled appointment, {days} days.
CREATE TEMP TABLE win AS
WITH ep AS (
  SELECT episode_id, file_row_number AS pos
  FROM read_parquet('{episodes}', file_row_number = true)
),
first_session AS (
  SELECT episode_id, min(scheduled_date) AS ws FROM read_parquet('{sessions}') GROUP BY ALL
)
SELECT ep.pos, ep.episode_id, f.ws AS window_start, f.ws + INTERVAL {days} DAY AS window_end,
       f.ws IS NOT NULL AS has_sessions,
       coalesce(f.ws + INTERVAL {days} DAY <= TIMESTAMP '{extract}', false) AS window_complete
FROM ep LEFT JOIN first_session f USING (episode_id);

-- Sessions in the window, numbered in date order (ties: the export's order).
CREATE TEMP TABLE sw AS
SELECT w.pos, s.scheduled_date AS d, w.window_start AS ws, w.window_end AS we, s.status,
       s.notice_hours, s.alliance_score, s.agenda_set_by, s.homework_completed,
       s.barrier_reported, s.modality,
       row_number() OVER (PARTITION BY w.pos ORDER BY s.scheduled_date, s.file_row_number)
         AS seq
FROM read_parquet('{sessions}', file_row_number = true) s JOIN win w USING (episode_id)
WHERE s.scheduled_date >= w.window_start AND s.scheduled_date < w.window_end;

CREATE TEMP TABLE features AS
WITH per_session AS (
  SELECT pos, count(*) AS n_scheduled,
         count_if(status = 'attended') AS n_attended,
         count_if(status = 'did_not_attend') AS n_dna,
         count_if(status = 'cancelled_by_client') AS n_cancel_client,
         count_if(status = 'cancelled_by_service') AS n_cancel_service,
         count_if(status = 'cancelled_by_client' AND notice_hours < {late_hours}) AS n_late,
         days_between(min(ws), min(d) FILTER (WHERE status = 'attended'))
           AS days_to_first_attended,
         -- open communication: attended sessions with a rating / an agenda answer
         favg(alliance_score) FILTER (WHERE status = 'attended') AS alliance_mean,
         min(alliance_score) FILTER (WHERE status = 'attended') AS alliance_min,
         avg(CAST(coalesce(alliance_score <= {cutoff}, false) AS DOUBLE))
           FILTER (WHERE status = 'attended' AND alliance_score IS NOT NULL)
           AS alliance_low_share,
         -- least-squares slope over weeks from sums, as in the pandas definition
         count(*) FILTER (WHERE {rated}) AS sl_n,
         fsum(days_between(ws, d) / 7.0) FILTER (WHERE {rated}) AS sl_sx,
         fsum(alliance_score) FILTER (WHERE {rated}) AS sl_sy,
         fsum(days_between(ws, d) / 7.0 * alliance_score) FILTER (WHERE {rated}) AS sl_sxy,
         fsum((days_between(ws, d) / 7.0) * (days_between(ws, d) / 7.0)) FILTER (WHERE {rated})
           AS sl_sxx,
         avg(CAST(coalesce(agenda_set_by IN ('client', 'shared'), false) AS DOUBLE))
           FILTER (WHERE status = 'attended' AND agenda_set_by IS NOT NULL)
           AS agenda_client_share,
         -- goals block: homework over every session in the window
         avg(CASE homework_completed {homework} END) AS homework_completion_rate,
         -- obstacles
         CASE WHEN count(barrier_reported) > 0 THEN count_if(barrier_reported <> 'none') END
           AS n_barriers,
         avg(CAST(coalesce(barrier_reported <> 'none', false) AS DOUBLE))
           FILTER (WHERE barrier_reported IS NOT NULL) AS barrier_share,
         avg(CAST(coalesce(status = 'cancelled_by_client' AND notice_hours >= {late_hours},
                           false) AS DOUBLE))
           FILTER (WHERE status IN ('did_not_attend', 'cancelled_by_client'))
           AS notice_cancel_share
  FROM sw GROUP BY pos
),
gaps AS (
  SELECT pos, avg(gap) AS gap_mean_days, max(gap) AS gap_max_days,
         stddev_samp(gap) AS gap_sd_days
  FROM (
    SELECT pos, days_between(lag(d) OVER (PARTITION BY pos ORDER BY seq), d) AS gap
    FROM sw WHERE status = 'attended'
  ) WHERE gap IS NOT NULL GROUP BY pos
),
client AS (  -- the appointments the client could attend (service cancellations aside)
  SELECT pos, seq, status, status IS DISTINCT FROM 'attended' AS missed,
         sum(CASE WHEN status = 'attended' THEN 1 ELSE 0 END) OVER (
           PARTITION BY pos ORDER BY seq ROWS UNBOUNDED PRECEDING) AS run_id
  FROM sw WHERE status IS DISTINCT FROM 'cancelled_by_service'
),
first_client AS (
  SELECT pos,
         coalesce(arg_min(status, seq) FILTER (WHERE status IS NOT NULL) = 'attended', false)
           AS first_attended
  FROM client GROUP BY pos
),
runs AS (
  SELECT pos, max(n) AS longest_run FROM (
    SELECT pos, run_id, count(*) AS n FROM client WHERE missed GROUP BY pos, run_id
  ) GROUP BY pos
),
modality AS (
  SELECT pos, count_if(coalesce(modality <> previous, false)) AS modality_changes
  FROM (
    SELECT pos, modality, lag(modality) OVER (PARTITION BY pos ORDER BY seq) AS previous
    FROM sw WHERE modality IS NOT NULL
  ) GROUP BY pos
),
contacts AS (
  SELECT w.pos,
         count_if(c.direction = 'client_to_service') AS n_client_contacts,
         avg(CAST(c.responded AS DOUBLE)) FILTER (
           WHERE c.direction = 'service_to_client' AND c.responded IS NOT NULL
             AND c.contact_date < w.window_end - INTERVAL {reply_days} DAY
         ) AS outreach_response_rate
  FROM read_parquet('{contacts}') c JOIN win w USING (episode_id)
  WHERE c.contact_date >= w.window_start AND c.contact_date < w.window_end
  GROUP BY w.pos
),
goals_in AS (
  SELECT w.pos, g.goal_id, g.set_date, g.set_by, w.window_start, w.window_end
  FROM read_parquet('{goals}') g JOIN win w USING (episode_id)
  WHERE g.set_date >= w.window_start AND g.set_date < w.window_end
),
goals AS (
  SELECT pos, count(*) AS n_goals,
         avg(CAST(coalesce(set_by IN ('client', 'collaborative'), false) AS DOUBLE))
           AS goal_owned_share,
         days_between(min(window_start), min(set_date)) AS days_to_first_goal
  FROM goals_in GROUP BY pos
),
goal_gain AS (  -- last minus first rating in the window of each goal set in it
  SELECT pos, avg(gain) AS goal_rating_gain FROM (
    SELECT g.pos, g.goal_id,
           CASE WHEN count(*) >= 2 THEN
             arg_max(r.rating, {{'d': r.rating_date, 'r': r.file_row_number}})
               FILTER (WHERE r.rating IS NOT NULL)
             - arg_min(r.rating, {{'d': r.rating_date, 'r': r.file_row_number}})
               FILTER (WHERE r.rating IS NOT NULL)
           END AS gain
    FROM read_parquet('{goal_ratings}', file_row_number = true) r
      JOIN goals_in g USING (goal_id)
    WHERE r.rating_date >= g.window_start AND r.rating_date < g.window_end
    GROUP BY g.pos, g.goal_id
  ) WHERE gain IS NOT NULL GROUP BY pos
),
small_wins AS (  -- first minus last primary score, positive = better
  SELECT w.pos,
         CASE WHEN count(*) >= 2 THEN {orientation} * (
           arg_min(m.score, {{'d': m.measure_date, 'r': m.file_row_number}})
             FILTER (WHERE m.score IS NOT NULL)
           - arg_max(m.score, {{'d': m.measure_date, 'r': m.file_row_number}})
             FILTER (WHERE m.score IS NOT NULL))
         END AS early_change_primary
  FROM read_parquet('{measures}', file_row_number = true) m JOIN win w USING (episode_id)
  WHERE m.instrument = '{instrument}'
    AND m.measure_date >= w.window_start AND m.measure_date < w.window_end
  GROUP BY w.pos
)
SELECT w.pos, w.episode_id, w.window_start, w.window_end, w.has_sessions, w.window_complete,
       CASE WHEN w.has_sessions THEN coalesce(p.n_scheduled, 0) END AS n_scheduled,
       CASE WHEN w.has_sessions THEN coalesce(p.n_attended, 0) END AS n_attended,
       CASE WHEN w.has_sessions THEN coalesce(p.n_dna, 0) END AS n_dna,
       p.n_attended / nullif(p.n_scheduled - p.n_cancel_service, 0) AS attendance_rate,
       p.n_dna / nullif(p.n_scheduled - p.n_cancel_service, 0) AS dna_rate,
       p.n_late / nullif(p.n_scheduled - p.n_cancel_service, 0) AS late_cancel_rate,
       CASE WHEN w.has_sessions THEN coalesce(p.n_cancel_client, 0) END AS n_cancel_client,
       CASE WHEN w.has_sessions THEN coalesce(p.n_cancel_service, 0) END AS n_cancel_service,
       fc.first_attended,
       CASE WHEN w.has_sessions THEN coalesce(r.longest_run, 0) END AS max_consecutive_missed,
       p.days_to_first_attended, gp.gap_mean_days, gp.gap_max_days, gp.gap_sd_days,
       p.alliance_mean, p.alliance_min,
       CASE WHEN p.sl_n >= 2 AND p.sl_n * p.sl_sxx - p.sl_sx * p.sl_sx > 1e-12 THEN
         (p.sl_n * p.sl_sxy - p.sl_sx * p.sl_sy) / (p.sl_n * p.sl_sxx - p.sl_sx * p.sl_sx)
       END AS alliance_slope_per_week,
       p.alliance_low_share,
       CASE WHEN w.has_sessions THEN coalesce(c.n_client_contacts, 0) / ({days} / 7.0) END
         AS client_contacts_per_week,
       CASE WHEN w.has_sessions THEN c.outreach_response_rate END AS outreach_response_rate,
       p.agenda_client_share,
       CASE WHEN w.has_sessions THEN coalesce(g.n_goals, 0) END AS n_goals,
       g.goal_owned_share, g.days_to_first_goal, p.homework_completion_rate,
       gg.goal_rating_gain,
       p.n_barriers, p.barrier_share, p.notice_cancel_share, m.modality_changes,
       sm.early_change_primary
FROM win w
  LEFT JOIN per_session p USING (pos) LEFT JOIN gaps gp USING (pos)
  LEFT JOIN first_client fc USING (pos) LEFT JOIN runs r USING (pos)
  LEFT JOIN modality m USING (pos) LEFT JOIN contacts c USING (pos)
  LEFT JOIN goals g USING (pos) LEFT JOIN goal_gain gg USING (pos)
  LEFT JOIN small_wins sm USING (pos);

-- Flags (missing when their data are not available) and the disengagement index.
COPY (
  WITH flagged AS (
    SELECT *,
           NOT first_attended AS flag_missed_first_appointment,
           n_dna >= 2 AS flag_two_plus_no_shows,
           alliance_mean <= {cutoff} AS flag_alliance_below_cutoff,
           CASE WHEN n_goals IS NOT NULL THEN
             coalesce(n_goals, 0) = 0 OR coalesce(goal_owned_share, 0) = 0
           END AS flag_no_client_goal,
           homework_completion_rate < 0.5 AS flag_homework_under_half
    FROM features
  ),
  reference AS (SELECT {reference} FROM features WHERE window_complete),
  z AS (SELECT flagged.*, {zscores} FROM flagged, reference)
  SELECT * EXCLUDE (pos, {z_names}),
         {flags_count} AS flags_count,
         {flags_assessed} AS flags_assessed,
         CASE WHEN {z_count} >= {min_components} THEN ({z_sum}) / ({z_count}) END
           AS disengagement_index
  FROM z ORDER BY pos
) TO '{out}' (FORMAT parquet);
"""

FLAGS = (
    "flag_missed_first_appointment",
    "flag_two_plus_no_shows",
    "flag_alliance_below_cutoff",
    "flag_no_client_goal",
    "flag_homework_under_half",
)


def features_sql(
    files: dict[str, Path], params: FeaturesParams, instrument: str, extract: pd.Timestamp, out
) -> str:
    """The SQL script: the window, every block, the flags and the index, written to ``out``."""
    homework = " ".join(f"WHEN '{k}' THEN {v!r}::DOUBLE" for k, v in HOMEWORK_SCORE.items())
    components = list(INDEX_COMPONENTS)
    z_names = [f"z_{c}" for c in components]
    return FEATURES_SQL.format(
        **{t: p for t, p in files.items()},
        days=params.window_days,
        extract=extract.strftime("%Y-%m-%d %H:%M:%S"),
        cutoff=float(params.alliance_cutoff),
        late_hours=LATE_CANCELLATION_HOURS,
        rated="status = 'attended' AND alliance_score IS NOT NULL",
        reply_days=REPLY_DAYS,
        homework=homework,
        instrument=instrument,
        orientation=1 if get_instrument(instrument).higher_is_worse else -1,
        # a component whose reference SD is 0 or missing is left out, as in pandas
        reference=", ".join(
            f"avg({c}) AS mean_{c}, stddev_samp({c}) AS sd_{c}" for c in components
        ),
        zscores=", ".join(
            f"CASE WHEN sd_{c} > 0 THEN {sign} * ({c} - mean_{c}) / sd_{c} END AS z_{c}"
            for c, sign in INDEX_COMPONENTS.items()
        ),
        z_names=", ".join(z_names),
        z_sum=" + ".join(f"coalesce({z}, 0)" for z in z_names),
        z_count=" + ".join(f"CAST({z} IS NOT NULL AS INTEGER)" for z in z_names),
        min_components=MIN_COMPONENTS,
        flags_count=" + ".join(f"coalesce(CAST({f} AS INTEGER), 0)" for f in FLAGS),
        flags_assessed=" + ".join(f"CAST({f} IS NOT NULL AS INTEGER)" for f in FLAGS),
        out=out,
    )


def cpu_seconds() -> float:
    """CPU time of this process so far and of the worker processes it forked and waited
    for (user + system; a forked child starts at zero)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime, 2)


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (``/proc/stat``; 0 elsewhere)."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    fields = [int(v) for v in stat.read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def machine_load() -> dict:
    """How busy the machine is before a step (other work on it slows the steps down)."""
    load: dict = {"loadavg_1m": round(os.getloadavg()[0], 2)}
    pressure = Path("/proc/pressure/cpu")
    if pressure.exists():
        some = pressure.read_text().split("\n")[0].split()
        load["cpu_pressure_avg10"] = float(some[1].split("=")[1])
    return load


def interim_extract(folder: Path) -> pd.Timestamp:
    """The extract date of an ingested folder, or the replicated cohort's."""
    report = folder / "ingest_report.json"
    if report.exists():
        return pd.Timestamp(json.loads(report.read_text())["extract_date"])
    return EXTRACT


def pandas_features(folder: Path, out: Path, threads: int):
    """The ``features`` stage body of the pandas engine (its blocks side by side on forked
    workers, as the stage runs them)."""

    def run() -> dict:
        import pyarrow as pa

        from pipeline.engine.tasks import run_tasks
        from pipeline.features.build import FEATURE_INPUTS, engagement_features
        from pipeline.io import INTERIM_TABLES, write_parquet

        pa.set_cpu_count(threads)
        columns = FEATURE_INPUTS
        tables = {
            t: pd.read_parquet(folder / f"{t}.parquet", columns=list(columns[t]))
            for t in INTERIM_TABLES
            if t in columns
        }
        params = Params()
        f = engagement_features(
            tables,
            params.features,
            params.outcomes.primary_instrument,
            interim_extract(folder),
            lambda blocks: run_tasks(blocks, threads),
        )
        write_parquet(f, out)
        return {"episodes": len(f), "threads": threads, "cpu_seconds": cpu_seconds()}

    return run


def duckdb_features(folder: Path, out: Path, threads: int):
    def run() -> dict:
        import duckdb

        params = Params()
        files = {
            t: folder / f"{t}.parquet"
            for t in ("episodes", "sessions", "measures", "goals", "goal_ratings", "contacts")
        }
        con = duckdb.connect()
        con.execute(f"SET threads TO {threads}")
        con.execute(
            features_sql(
                files,
                params.features,
                params.outcomes.primary_instrument,
                interim_extract(folder),
                out,
            )
        )
        return {
            "episodes": con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0],
            "threads": threads,
            "duckdb": duckdb.__version__,
            "cpu_seconds": cpu_seconds(),
        }

    return run


def threshold_ties(a: pd.DataFrame, cutoff: float) -> dict[str, np.ndarray]:
    """Per flag read off a float against a cutoff, the episodes whose float is within
    ``FLOAT_TOLERANCE`` of it: there the flag is decided by the last bit of a sum, which
    depends on the order of summation (pandas 3.1 sums sorted groups with numpy's
    ``add.reduceat``, others with Kahan's method; DuckDB with its own), not on the data."""
    limits = {"flag_alliance_below_cutoff": ("alliance_mean", cutoff)}
    limits["flag_homework_under_half"] = ("homework_completion_rate", 0.5)
    return {
        flag: (a[column].astype(float) - limit).abs().le(FLOAT_TOLERANCE).to_numpy()
        for flag, (column, limit) in limits.items()
    }


def compare(pandas_file: Path, duckdb_file: Path, cutoff: float) -> dict:
    """Per column: equal on every episode (and the largest difference of a float column).
    A flag (and the flag count) may differ only where its float is at the cutoff to within
    the tolerance; such episodes are counted, never hidden."""
    a = pd.read_parquet(pandas_file)
    b = pd.read_parquet(duckdb_file)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return {
            "all_equal": False,
            "same_columns": list(a.columns) == list(b.columns),
            "rows": [len(a), len(b)],
            "missing_in_duckdb": sorted(set(a) - set(b)),
            "extra_in_duckdb": sorted(set(b) - set(a)),
        }
    ties = threshold_ties(a, cutoff)
    ties["flags_count"] = np.logical_or.reduce(list(ties.values()))
    result: dict = {"same_rows_in_order": bool((a["episode_id"] == b["episode_id"]).all())}
    columns: dict = {}
    for c in a.columns:
        x, y = a[c], b[c]
        missing = x.isna().to_numpy()
        same_missing = bool((missing == y.isna().to_numpy()).all())
        present = ~missing
        if pd.api.types.is_float_dtype(x) and c not in INTEGER_VALUED:
            xv, yv = x.to_numpy(float)[present], y.to_numpy(float)[present]
            diff = float(np.max(np.abs(xv - yv))) if present.any() else 0.0
            columns[c] = {"equal": same_missing and diff <= FLOAT_TOLERANCE, "max_abs_diff": diff}
        else:
            if pd.api.types.is_datetime64_any_dtype(x):
                xv, yv = x.astype("datetime64[s]"), y.astype("datetime64[s]")
            elif pd.api.types.is_string_dtype(x):
                xv, yv = x.astype(str), y.astype(str)
            else:
                xv, yv = x.astype(float), y.astype(float)
            differs = present & (xv.to_numpy() != yv.to_numpy())
            at_tie = ties.get(c, np.zeros(len(a), dtype=bool))
            columns[c] = {"equal": same_missing and not (differs & ~at_tie).any()}
            if c in ties:
                columns[c] |= {
                    "episodes_at_cutoff": int(at_tie.sum()),
                    "differ_at_cutoff": int((differs & at_tie).sum()),
                }
        columns[c]["missing"] = int(missing.sum())
    result["columns"] = columns
    result["all_equal"] = result["same_rows_in_order"] and all(v["equal"] for v in columns.values())
    return result


def markdown(rows: list[dict], summary: dict, mach: dict) -> str:
    p, d = rows
    agreement = summary["agreement"]
    columns = agreement.get("columns", {})
    load = ", ".join(
        f"{r['what'].split(', ')[1]} {m['seconds']} s with {m['other_cpu_seconds']} s"
        for r in rows
        for m in r["runs"]
    )
    lines = [
        "# The whole feature table: pandas vs DuckDB (issue 21)",
        "",
        f"Machine: {mach['cpus']} CPUs, {mach['memory_gb']} GB RAM, Python {mach['python']}, "
        f"{mach['platform']}. Both sides get {p['threads']} threads, what the features stage "
        f"may use (DuckDB {d['duckdb']}: `SET threads TO {d['threads']}`; pandas: pyarrow's "
        "pool, the rest of pandas is single-threaded).",
        "",
        f"{summary['session_rows']:,} session rows, {summary['episodes']:,} episodes. Each side "
        "runs in a fresh process, reads the interim Parquet files and writes the feature table "
        "to Parquet; peak = peak resident memory of that process. Target (issue 21): pandas "
        f"≤ 2× DuckDB in time and in memory. {len(p['runs'])} run(s) of each side, "
        "alternating: the fastest run's time, the largest peak.",
        "",
        "| | seconds | CPU seconds | peak MB |",
        "|---|---|---|---|",
        f"| pandas (`engagement_features`) | {p['seconds']} | {p['cpu_seconds']} "
        f"| {p['peak_rss_mb']:,.0f}"
        + (
            f" (largest worker {p['peak_rss_worker_mb']:,.0f})"
            if p.get("peak_rss_worker_mb")
            else ""
        )
        + " |",
        f"| DuckDB (SQL) | {d['seconds']} | {d['cpu_seconds']} | {d['peak_rss_mb']:,.0f} |",
        f"| **pandas / DuckDB** | **{summary['time_ratio']}** | "
        f"{round(p['cpu_seconds'] / d['cpu_seconds'], 2)} | **{summary['memory_ratio']}** |",
        "",
        f"All {len(columns)} columns equal on every episode: "
        f"**{'yes' if agreement.get('all_equal') else 'NO'}** (counts, flags, dates and "
        f"whole-day columns exactly; other floats to {FLOAT_TOLERANCE:g}; missing values in "
        "the same places).",
    ]
    diffs = {c: v["max_abs_diff"] for c, v in columns.items() if "max_abs_diff" in v}
    if diffs:
        worst = max(diffs, key=lambda c: diffs[c])
        lines.append(f"Largest float difference: {diffs[worst]:.2e} (`{worst}`).")
    for c, v in columns.items():
        if v.get("differ_at_cutoff"):
            lines.append(
                f"`{c}`: {v['differ_at_cutoff']} of the {v['episodes_at_cutoff']:,} episodes "
                "whose value is on the flag's cutoff (to within the tolerance) differ: there "
                "the last bit of a sum decides the comparison, and it depends on the order of "
                "summation."
            )
    unequal = [c for c, v in columns.items() if not v["equal"]]
    if unequal:
        lines.append(f"Not equal: {', '.join(unequal)}.")
    lines += [
        "",
        f"Other processes' CPU time while each run ran (0 = the machine to itself): {load}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sessions", nargs="?", type=int, default=10_000_000)
    parser.add_argument("--interim", type=Path, help="an ingested folder instead of a replica")
    parser.add_argument("--name", default=None, help="results file name (default by size)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each side, alternating (fastest kept)"
    )
    args = parser.parse_args()
    threads = stage_threads(Params().threads)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        work = Path(tmp)
        if args.interim:
            folder = args.interim.resolve()
            rows = {
                t: len(pd.read_parquet(folder / f"{t}.parquet", columns=[]))
                for t in ("episodes", "sessions")
            }
        else:
            folder = work
            # Built in its own process, so the measured steps inherit none of its memory.
            rows = measure(lambda: {"rows": build_interim(args.sessions, folder)})["rows"]
        print("tables:", rows, f"threads: {threads}", flush=True)
        outs = {side: work / f"features_{side}.parquet" for side in ("pandas", "duckdb")}
        sides = {
            "pandas": ("all features, pandas", pandas_features(folder, outs["pandas"], threads)),
            "duckdb": ("all features, DuckDB", duckdb_features(folder, outs["duckdb"], threads)),
        }
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for _ in range(args.repeat):
            for side, (label, fn) in sides.items():
                load, busy = machine_load(), busy_cpu_seconds()
                m = measure(fn)
                if m.get("seconds") is None:
                    raise SystemExit(f"{label} failed: {m}")
                # CPU time other processes took while the step ran (another job on the
                # machine slows DuckDB's two threads more than single-threaded pandas).
                others = busy_cpu_seconds() - busy - m["cpu_seconds"]
                runs[side].append(
                    m | {"load_before": load, "other_cpu_seconds": round(max(others, 0.0), 1)}
                )
                print(label, runs[side][-1], flush=True)
        results = [
            {
                "what": label,
                "session_rows": rows["sessions"],
                "episodes": rows["episodes"],
                # the fastest run's time; the largest peak of any run
                **min(runs[side], key=lambda m: m["seconds"]),
                # with forked workers, the larger of the process's peak and a worker's
                "peak_rss_mb": max(
                    max(m["peak_rss_mb"], m.get("peak_rss_worker_mb", 0)) for m in runs[side]
                ),
                "runs": runs[side],
            }
            for side, (label, _) in sides.items()
        ]
        p, d = results
        summary = {
            "what": "all features: pandas / DuckDB",
            "session_rows": rows["sessions"],
            "episodes": rows["episodes"],
            "threads": threads,
            "time_ratio": round(p["seconds"] / d["seconds"], 2),
            "memory_ratio": round(p["peak_rss_mb"] / d["peak_rss_mb"], 2),
            "targets": {"time_ratio_max": 2.0, "memory_ratio_max": 2.0},
            "agreement": compare(outs["pandas"], outs["duckdb"], Params().features.alliance_cutoff),
        }
        print({k: v for k, v in summary.items() if k != "agreement"}, flush=True)
        print("all columns equal:", summary["agreement"].get("all_equal"), flush=True)
    if args.name:
        name = args.name
    elif args.interim:
        name = "features_duckdb_interim"
    else:
        name = (
            "features_duckdb" if args.sessions == 10_000_000 else f"features_duckdb_{args.sessions}"
        )
    path = save(name, [*results, summary])
    path.with_suffix(".md").write_text(markdown(results, summary, machine()))
    print("wrote", path, path.with_suffix(".md"))
    if not summary["agreement"].get("all_equal"):
        print(json.dumps(summary["agreement"], indent=1))


if __name__ == "__main__":
    main()
