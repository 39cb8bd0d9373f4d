"""Hostile inputs for ``engage ingest`` / ``engage validate``: plain data plus small builders.

Shared by ``tests/ingest/test_hostile.py`` (in-process, fast) and ``benchmarks/hostile.py``
(every case through the real CLI in a subprocess). Load this file by path (the test suite
uses ``--import-mode=importlib`` and ``tests`` is not a package): ``load_cases_module()``.

A case builds one export folder from the tiny ``BASE`` export of ``tests/conftest.py``,
states what the CLI must do (exit code, words in the message, nothing written, rows
accounted) and which strings were planted: those must never appear in stdout/stderr, in an
exception's text, or in any file written under OUT (parquet decoded to text too).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXTRACT_DATE = "2024-06-30"
NO_PARAMS = "/nonexistent.yaml"  # a params path that does not exist: built-in defaults
REKEY_KEY = "0123456789abcdef0123456789abcdef"  # 32 characters
CRASH_MARKERS = ("Traceback", "MarkupError")


def _load_base() -> dict[str, pd.DataFrame]:
    spec = importlib.util.spec_from_file_location("_hostile_conftest", REPO / "tests/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BASE


BASE = _load_base()


def base() -> dict[str, pd.DataFrame]:
    """Fresh copies of the tiny export's tables."""
    return {table: df.copy() for table, df in BASE.items()}


# --- builders -----------------------------------------------------------------------------

Builder = Callable[[Path], None]
"""Writes one export into a folder (which exists and is empty). The folder's parent is the
case's own work folder: a builder may put a params file there."""


def write_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    for table, df in tables.items():
        df.to_csv(folder / f"{table}.csv", index=False)


def edited(**edits: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Builder:
    """The base export with per-table edits (an edit returning None drops the table)."""

    def build(folder: Path) -> None:
        tables = base()
        for table, edit in edits.items():
            tables[table] = edit(tables[table])
        write_tables(folder, {t: df for t, df in tables.items() if df is not None})

    return build


def planted_in(table: str, column: str, value: str, row: int = 1) -> Builder:
    """The base export with a column ``column`` (``misc``: neutral values ``ok``, or a
    contract column) holding ``value`` in one row."""

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if column not in df.columns:
            df[column] = "ok"
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
        return df

    return edited(**{table: edit})


def extra_column(name: str, value: str = "x1", table: str = "sessions") -> Builder:
    return edited(**{table: lambda df: df.assign(**{name: value})})


def add_rows(table: str, rows: list[dict[str, str]]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    del table

    def edit(df: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([df, pd.DataFrame(rows)], ignore_index=True).fillna("")

    return edit


def headerless_sessions_with_email(email: str) -> Builder:
    def build(folder: Path) -> None:
        tables = base()
        write_tables(folder, {t: df for t, df in tables.items() if t != "sessions"})
        lines = tables["sessions"].to_csv(index=False, header=False).splitlines()
        lines[0] += f",{email}"
        (folder / "sessions.csv").write_text("\n".join(lines) + "\n")

    return build


def missing_sessions_with_named_file(name: str) -> Builder:
    def build(folder: Path) -> None:
        tables = base()
        write_tables(folder, {t: df for t, df in tables.items() if t != "sessions"})
        tables["sessions"].to_csv(folder / name, index=False)

    return build


def sessions_replaced(make: Callable[[Path], None]) -> Builder:
    """The base export whose sessions.csv is made by ``make(path)`` (a link, a pipe, bytes)."""

    def build(folder: Path) -> None:
        tables = base()
        write_tables(folder, {t: df for t, df in tables.items() if t != "sessions"})
        make(folder / "sessions.csv")

    return build


def _symlink_passwd(path: Path) -> None:
    path.symlink_to("/etc/passwd")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _encoded(encoding: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(BASE["sessions"].to_csv(index=False).encode(encoding))

    return make


WIDE_COLUMNS = 100_000


def _wide(path: Path) -> None:
    df = BASE["sessions"]
    header = ",".join([*df.columns, *(f"x{i}" for i in range(WIDE_COLUMNS))])
    pad = "," * WIDE_COLUMNS
    rows = [",".join(map(str, r)) + pad for r in df.itertuples(index=False)]
    path.write_text("\n".join([header, *rows]) + "\n")


MULTILINE_SESSIONS = (
    "session_id,episode_id,scheduled_date,status,modality\n"
    's1,e1,2024-01-10,attended,"video\n'
    'call"\n'
    "s2,e2,2024-01-10,attended,video\n"
    "s3,e1,2024-01-17,attended,video,{extra}\n"
)


def multiline(extra: str) -> Builder:
    def build(folder: Path) -> None:
        tables = base()
        write_tables(folder, {"episodes": tables["episodes"], "measures": tables["measures"]})
        (folder / "sessions.csv").write_text(MULTILINE_SESSIONS.format(extra=extra))

    return build


def with_params(text: str, inner: Builder) -> Builder:
    """``inner``, plus a params.yaml next to (not inside) the export folder."""

    def build(folder: Path) -> None:
        inner(folder)
        (folder.parent / "params.yaml").write_text(text)

    return build


# --- checks on what a run wrote -----------------------------------------------------------

Check = Callable[[Path, dict], list[str]]
"""(OUT/data/interim, ingest_report.json as a dict) -> problems found (empty: fine)."""


def _quarantine(interim: Path, table: str) -> pd.DataFrame:
    path = interim / "quarantine" / f"{table}.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def _rules_at(held: pd.DataFrame, line: int) -> list[str]:
    if held.empty or "source_line" not in held:
        return []
    rows = held[held["source_line"].astype("Int64") == line]
    return [str(r) for r in rows["rules"]] if "rules" in rows else []


def quarantined_with(table: str, line: int, rule: str) -> Check:
    def check(interim: Path, report: dict) -> list[str]:
        got = _rules_at(_quarantine(interim, table), line)
        if not any(rule in r for r in got):
            return [f"{table} line {line}: expected rule {rule} in quarantine, got {got}"]
        return []

    return check


def all_of(*checks: Check) -> Check:
    def check(interim: Path, report: dict) -> list[str]:
        return [p for c in checks for p in c(interim, report)]

    return check


def check_multiline(interim: Path, report: dict) -> list[str]:
    problems = []
    held = _quarantine(interim, "sessions")
    accepted = pd.read_parquet(interim / "sessions.parquet")
    lines = held["source_line"].astype("Int64").tolist() if not held.empty else []
    s1 = held[held.get("session_id", pd.Series(dtype=str)).astype(str) == "s1"]
    if s1.empty or s1["source_line"].astype(int).tolist() != [2]:
        problems.append(f"s1 (unknown modality) not quarantined at source_line 2: lines {lines}")
    at5 = held[held["source_line"].astype("Int64") == 5] if not held.empty else held
    raw = at5["raw_text"].tolist() if "raw_text" in at5 else []
    if raw != ["s3,e1,2024-01-17,attended,video,extra"]:
        problems.append(f"malformed row at source_line 5: raw_text {raw!r}")
    if "s2" not in set(accepted["session_id"].astype(str)):
        problems.append("s2 not accepted")
    if not held.empty and "s2" in set(held["session_id"].astype(str)):
        problems.append("s2 in quarantine")
    t = report.get("tables", {}).get("sessions", {})
    n = (t.get("rows_read"), t.get("rows_accepted"), t.get("rows_quarantined"))
    if n[0] != 3 or None in n or n[1] + n[2] != 3:
        problems.append(f"sessions rows read/accepted/quarantined {n}, expected 3 = a + q")
    return problems


def _ints(value: object) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ints(v)]
    return []


def _keys_with(obj: object, word: str) -> list[tuple[str, object]]:
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if word in str(k):
                found.append((str(k), v))
            found += _keys_with(v, word)
    elif isinstance(obj, list):
        for v in obj:
            found += _keys_with(v, word)
    return found


def check_inferred_date(interim: Path, report: dict) -> list[str]:
    problems = []
    if report.get("extract_date") != "2024-02-10":
        problems.append(f"extract_date {report.get('extract_date')!r}, expected 2024-02-10")
    problems += quarantined_with("sessions", 5, "future_date")(interim, report)
    ignored = _keys_with(report, "ignored")
    if not any(5 in _ints(v) for _, v in ignored):
        problems.append(f"no key containing 'ignored' lists source line 5: {ignored}")
    return problems


def check_rekeyed(interim: Path, report: dict) -> list[str]:
    problems = []
    accepted = pd.read_parquet(interim / "sessions.parquet")["episode_id"].astype(str)
    counts = accepted.value_counts()
    e1_token = counts.index[0] if len(counts) and counts.iloc[0] == 2 else None
    held = _quarantine(interim, "sessions")
    row = held[held["source_line"].astype("Int64") == 5] if not held.empty else held
    got = row["episode_id"].astype(str).tolist() if "episode_id" in row else []
    if e1_token is None or got != [e1_token]:
        problems.append(f"quarantined ' e1 ' has token {got}, e1's accepted token {e1_token}")
    for path in sorted(interim.rglob("*.parquet")):
        df = pd.read_parquet(path)
        for col in df.columns:
            if (df[col].astype(str).str.strip() == "e1").any():
                problems.append(f"{path.name}: column {col} holds the raw id e1")
    for path in sorted(interim.parent.rglob("*.json")):
        if _json_strings_equal(json.loads(path.read_text()), "e1"):
            problems.append(f"{path.name} holds the raw id e1")
    return problems


def _json_strings_equal(obj: object, text: str) -> bool:
    if isinstance(obj, str):
        return obj.strip() == text
    if isinstance(obj, dict):
        return any(_json_strings_equal(v, text) or str(k) == text for k, v in obj.items())
    if isinstance(obj, list):
        return any(_json_strings_equal(v, text) for v in obj)
    return False


# --- the cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    build: Builder
    exit_code: int
    planted: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    """Words the ingest output must contain (case-insensitive)."""
    extract_date: str | None = EXTRACT_DATE
    params: bool = False
    """Pass the params.yaml the builder wrote next to the export (else built-in defaults)."""
    env: dict[str, str] = field(default_factory=dict)
    isolate: bool = False
    """Run in a subprocess even in the test suite (the case could hang)."""
    max_seconds: float | None = None
    validate_exit: int | None = None
    nothing_written: bool = False
    deterministic: bool = False
    check: Check | None = None
    needs: str | None = None
    """A path that must exist for the case to make sense (else skipped)."""
    timed: bool = False
    """Record the wall time of the run (reported by the benchmark)."""

    def skip_reason(self) -> str | None:
        if self.needs and not Path(self.needs).exists():
            return f"{self.needs} absent"
        if self.isolate and self.name == "named_pipe" and not hasattr(os, "mkfifo"):
            return "no os.mkfifo"
        return None

    def expected(self) -> str:
        parts = [f"exit {self.exit_code}"]
        if self.mentions:
            parts.append("mentions " + "/".join(self.mentions))
        if self.nothing_written:
            parts.append("OUT not created")
        if self.validate_exit is not None:
            parts.append(f"validate exit {self.validate_exit}")
        if self.planted:
            parts.append("planted not echoed")
        if self.max_seconds:
            parts.append(f"< {self.max_seconds:g} s")
        if self.check is not None:
            parts.append(self.check.__name__.replace("_", " "))
        if self.deterministic:
            parts.append("deterministic")
        if self.exit_code == 0:
            parts.append("tables reconcile")
        return "; ".join(parts)


def _planted(value: str) -> tuple[str, ...]:
    """A planted value and the spellings it could be echoed in (NFKC, its digits alone)."""
    out = [value, unicodedata.normalize("NFKC", value)]
    digits = re.sub(r"\D", "", out[1])
    if len(digits) >= 9:
        out.append(digits)
    return tuple(dict.fromkeys(out))


def refused(name: str, build: Builder, planted: Sequence[str] = ()) -> Case:
    return Case(
        name,
        "refused",
        build,
        1,
        planted=tuple(p for v in planted for p in _planted(v)),
        mentions=("identifier",),
        validate_exit=1,
        nothing_written=True,
    )


PHONES = ("07700.900.123", "+44.7700.900.123", "0044 7700 900123", "+44 7700 900123")
NHS_NUMBERS = ("943.476.5919", "NHS9434765919", "９４３ ４７６ ５９１９", "943 476 5919")
EMAILS = ("john.smith@exämple.com", "john.smith＠example.com")
POSTCODES = ("SW1A 1AA", "SW1A1AA")
PROSE = "CBT - client Mary Jones says partner hits her, lives 12 Acacia Ave"
NAME_COLUMNS = ("nhsnumber", "dateofbirth", "emailaddress", "clientname", "DoB")


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for kind, values in (
        ("phone", PHONES),
        ("nhs", NHS_NUMBERS),
        ("email", EMAILS),
        ("postcode", POSTCODES),
    ):
        for i, value in enumerate(values, start=1):
            # names never hold the value: the work folder's path appears in messages
            cases.append(
                refused(f"value_{kind}_{i}", planted_in("sessions", "misc", value), [value])
            )
    for name, column, value, planted in (
        ("treatment_name", "treatment", "John Smith", ["John Smith"]),
        ("treatment_prose", "treatment", PROSE, [PROSE, "Mary Jones", "Acacia", "partner hits"]),
        ("therapist_name", "therapist_id", "Dr Jane Roe", ["Jane Roe"]),
        ("site_name", "site_id", "Mrs Smith", ["Mrs Smith"]),
    ):
        cases.append(refused(f"episodes_{name}", planted_in("episodes", column, value), planted))
    for column in NAME_COLUMNS:
        cases.append(refused(f"column_{column}", extra_column(column)))
    cases.append(
        refused(
            "column_patient_name_john_smith",
            extra_column("Patient Name: John Smith"),
            ["John Smith"],
        )
    )
    cases.append(
        refused(
            "column_is_an_email",
            extra_column("jo.bloggs@example.com"),
            ["jo.bloggs@example.com", "bloggs"],
        )
    )

    # not echoed
    cases += [
        Case(
            "headerless_sessions_email",
            "not_echoed",
            headerless_sessions_with_email("who@example.com"),
            1,
            planted=("who@example.com",),
        ),
        Case(
            "missing_sessions_named_file",
            "not_echoed",
            missing_sessions_with_named_file("Smith_John_9434765919.csv"),
            1,
            planted=("9434765919", "Smith_John"),
        ),
        Case(
            "sessions_symlink_passwd",
            "not_echoed",
            sessions_replaced(_symlink_passwd),
            1,
            planted=("root:", "/bin/"),
            needs="/etc/passwd",
        ),
    ]

    # no crash, no hang
    cases += [
        Case("column_markup_close", "no_crash", extra_column("[/]", "ok"), 0),
        Case("column_notes_markup", "no_crash", extra_column("notes[/]", "ok"), 1),
        Case(
            "named_pipe",
            "no_crash",
            sessions_replaced(_fifo),
            1,
            isolate=True,
            max_seconds=30,
        ),
        Case(
            "wide_header_100k",
            "no_crash",
            sessions_replaced(_wide),
            1,
            mentions=("column",),
            isolate=True,
            max_seconds=30,
            timed=True,
        ),
        Case(
            "field_1m_chars",
            "no_crash",
            planted_in("sessions", "misc", "a" * 1_000_000),
            1,
            planted=("a" * 200,),
            max_seconds=30,
        ),
        Case(
            "utf16le_no_bom",
            "no_crash",
            sessions_replaced(_encoded("utf-16-le")),
            1,
            mentions=("UTF-8",),
        ),
        Case(
            "utf32le_no_bom",
            "no_crash",
            sessions_replaced(_encoded("utf-32-le")),
            1,
            mentions=("UTF-8",),
        ),
    ]

    # rows accounted
    cases += [
        Case(
            "multiline_email",
            "rows",
            multiline("who@example.com"),
            1,
            planted=("who@example.com",),
        ),
        Case(
            "multiline_extra",
            "rows",
            multiline("extra"),
            0,
            check=check_multiline,
            deterministic=True,
        ),
        Case(
            "inferred_date_typo_2205",
            "rows",
            edited(
                sessions=add_rows(
                    "sessions",
                    [
                        {
                            "session_id": "s4",
                            "episode_id": "e2",
                            "scheduled_date": "2205-01-01",
                            "status": "attended",
                        }
                    ],
                )
            ),
            0,
            extract_date=None,
            check=check_inferred_date,
        ),
        Case(
            "future_measure_and_referral",
            "rows",
            edited(
                measures=add_rows(
                    "measures",
                    [
                        {
                            "episode_id": "e2",
                            "measure_date": "2030-06-01",
                            "instrument": "GAD-7",
                            "score": "10",
                        }
                    ],
                ),
                episodes=add_rows(
                    "episodes",
                    [
                        {
                            "episode_id": "e3",
                            "client_id": "c3",
                            "therapist_id": "t1",
                            "referral_date": "2031-01-01",
                            "end_date": "",
                            "end_reason": "still_open",
                            "planned_sessions": "6",
                        }
                    ],
                ),
            ),
            0,
            check=all_of(
                quarantined_with("measures", 5, "future_date"),
                quarantined_with("episodes", 4, "future_date"),
            ),
        ),
        Case(
            "fractional_phq9",
            "rows",
            planted_in("measures", "score", "13.5", row=0),
            0,
            check=quarantined_with("measures", 2, "fractional_score"),
            deterministic=True,
        ),
        Case(
            "rekey_padded_id",
            "rows",
            with_params(
                "ingest:\n  rekey: true\n",
                edited(
                    sessions=add_rows(
                        "sessions",
                        [
                            {
                                "session_id": "s4",
                                "episode_id": " e1 ",
                                "scheduled_date": "2024-01-20",
                                "status": "bogus",
                            }
                        ],
                    )
                ),
            ),
            0,
            params=True,
            env={"ENGAGE_REKEY_KEY": REKEY_KEY},
            check=check_rekeyed,
        ),
    ]
    return cases


# --- running a case -----------------------------------------------------------------------


@dataclass
class Run:
    exit_code: int | None  # None: timed out
    output: str
    seconds: float


def engage_command() -> list[str]:
    exe = REPO / ".venv/bin/engage"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("engage")
    return [found] if found else [sys.executable, "-m", "pipeline.cli"]


def run_subprocess(args: list[str], env: dict[str, str], timeout: float = 60) -> Run:
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **env}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [*engage_command(), *args],
            capture_output=True,
            timeout=timeout,
            env=full_env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        text = _decode(exc.stdout) + _decode(exc.stderr)
        return Run(None, text + f"\n[timed out after {timeout:g} s]", time.perf_counter() - start)
    return Run(
        done.returncode, _decode(done.stdout) + _decode(done.stderr), time.perf_counter() - start
    )


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", errors="replace")


def run_in_process(args: list[str], env: dict[str, str], timeout: float = 60) -> Run:
    """The CLI through typer's CliRunner (no timeout: only for cases that cannot hang)."""
    del timeout
    from typer.testing import CliRunner

    from pipeline.cli import app

    start = time.perf_counter()
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200", **env})
    text = result.output
    try:
        if result.stderr and result.stderr not in text:
            text += result.stderr
    except ValueError:  # stderr not captured separately (older Click)
        pass
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        text += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    elif exc is not None:
        text += str(exc)
    return Run(result.exit_code, text, time.perf_counter() - start)


Runner = Callable[[list[str], dict[str, str], float], Run]


def _flat(text: str) -> str:
    return " ".join(text.split())


def leaks(text: str, planted: Sequence[str]) -> list[str]:
    """The planted strings found in a text (also across a console line wrap)."""
    flat = _flat(text)
    return [p for p in planted if p in text or _flat(p) in flat]


def written_text(out: Path) -> dict[str, str]:
    """Every file written under OUT as text (parquet decoded to its cells), by path."""
    texts: dict[str, str] = {}
    if not out.exists():
        return texts
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = str(path.relative_to(out))
        text = rel + "\n" + path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".parquet":
            try:
                df = pd.read_parquet(path)
                text += "\n" + " ".join(map(str, df.columns)) + "\n"
                text += "\n".join(df[c].astype(str).str.cat(sep="\n") for c in df.columns)
            except Exception as exc:  # an unreadable parquet is itself worth a look
                text += f"\n<unreadable parquet: {exc}>"
        texts[rel] = text
    return texts


@dataclass
class Outcome:
    case: Case
    problems: list[str]
    ingest: Run | None = None
    validate: Run | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def observed(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        parts = []
        if self.ingest is not None:
            code = "timeout" if self.ingest.exit_code is None else self.ingest.exit_code
            parts.append(f"exit {code} ({self.ingest.seconds:.1f} s)")
        if self.validate is not None:
            code = "timeout" if self.validate.exit_code is None else self.validate.exit_code
            parts.append(f"validate exit {code}")
        return "; ".join(parts + self.problems)


def ingest_args(case: Case, export: Path, out: Path) -> list[str]:
    params = str(export.parent / "params.yaml") if case.params else NO_PARAMS
    args = ["ingest", str(export), "--out", str(out), "--params", params]
    if case.extract_date:
        args += ["--extract-date", case.extract_date]
    return args


def validate_args(case: Case, export: Path) -> list[str]:
    params = str(export.parent / "params.yaml") if case.params else NO_PARAMS
    args = ["validate", str(export), "--params", params]
    if case.extract_date:
        args += ["--extract-date", case.extract_date]
    return args


def _parquet_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def reconcile(interim: Path, report: dict) -> list[str]:
    problems = []
    for table, t in report.get("tables", {}).items():
        read, acc, held = t.get("rows_read"), t.get("rows_accepted"), t.get("rows_quarantined")
        if None in (read, acc, held) or read != acc + held:
            problems.append(f"{table}: rows_read {read} != accepted {acc} + quarantined {held}")
            continue
        accepted = interim / f"{table}.parquet"
        if accepted.exists() and len(pd.read_parquet(accepted)) != acc:
            problems.append(f"{table}.parquet rows != rows_accepted {acc}")
        q = interim / "quarantine" / f"{table}.parquet"
        n_q = len(pd.read_parquet(q)) if q.exists() else 0
        if n_q != held:
            problems.append(f"quarantine/{table}.parquet has {n_q} rows, report says {held}")
    return problems


def execute(case: Case, work: Path, runner: Runner, timeout: float = 60) -> Outcome:
    """Build the case in ``work`` (an empty folder), run ingest and validate, evaluate."""
    reason = case.skip_reason()
    if reason:
        return Outcome(case, [], skipped=reason)
    export = work / "export"
    export.mkdir(parents=True)
    case.build(export)
    out = work / "out"
    problems: list[str] = []

    ingest = runner(ingest_args(case, export, out), case.env, timeout)
    validate = runner(validate_args(case, export), case.env, timeout)
    outcome = Outcome(case, problems, ingest, validate)

    if ingest.exit_code is None:
        problems.append("ingest timed out")
    elif ingest.exit_code != case.exit_code:
        problems.append(f"ingest exit {ingest.exit_code}, expected {case.exit_code}")
    if validate.exit_code is None:
        problems.append("validate timed out")
    elif case.validate_exit is not None and validate.exit_code != case.validate_exit:
        problems.append(f"validate exit {validate.exit_code}, expected {case.validate_exit}")
    for label, run in (("ingest", ingest), ("validate", validate)):
        run.output = run.output.replace(str(work), "<work>")  # our own path, not the input's
        for marker in CRASH_MARKERS:
            if marker in run.output:
                problems.append(f"{label} output has {marker}")
        for p in leaks(run.output, case.planted):
            problems.append(f"{label} output echoes {p[:40]!r}")
    flat = _flat(ingest.output).lower()
    for word in case.mentions:
        if _flat(word).lower() not in flat:
            problems.append(f"ingest output does not mention {word!r}")
    if case.max_seconds is not None and ingest.seconds > case.max_seconds:
        problems.append(f"ingest took {ingest.seconds:.1f} s > {case.max_seconds:g} s")
    for rel, text in written_text(out).items():
        for p in leaks(text, case.planted):
            problems.append(f"{rel} holds {p[:40]!r}")
    if case.nothing_written and out.exists():
        problems.append("OUT was created")

    if ingest.exit_code == 0 == case.exit_code:
        interim = out / "data" / "interim"
        report_path = interim / "ingest_report.json"
        if not report_path.exists():
            problems.append("no ingest_report.json")
            return outcome
        report = json.loads(report_path.read_text())
        problems += reconcile(interim, report)
        if case.check is not None:
            try:
                problems += case.check(interim, report)
            except Exception as exc:
                problems.append(f"check failed: {type(exc).__name__}: {exc}")
        if case.deterministic:
            again = work / "out2"
            second = runner(ingest_args(case, export, again), case.env, timeout)
            if second.exit_code != 0:
                problems.append(f"second ingest exit {second.exit_code}")
            elif _parquet_bytes(out) != _parquet_bytes(again):
                a, b = _parquet_bytes(out), _parquet_bytes(again)
                differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
                problems.append(f"not deterministic: {differ}")
    return outcome
