"""An attacker for the shared outputs: tries to recover counts that disclosure control hides.

It reads what a reader of ``reports/`` has (the shared result tables and plot data; the
catalog's declaration of which columns count people is public, in the docs) and, by
interval arithmetic over every count the rounding allows, looks for a count that can be
pinned to one value although it was published suppressed (``<8``) or rounded:

- **ratio**: a share in a row beside its rounded counts (or joined to them from another
  file), read as numerator / denominator at the precision it is printed;
- **survival step**: consecutive points of a survival or incidence curve with the number
  at risk, read as events = at risk × (1 − S(t) / S(t−));
- **sum**: a table's ``all`` row against its groups (totals minus parts);
- **difference**: a model card's population less its analysed rows against the rows its
  notes say were dropped;

over the shared tables and plot data (CSV), ``metrics.json`` and the model cards (JSON:
a rate against its published denominator), and every table of the HTML reports
(percentages against count columns, groups against a total row). A withheld share
beside two counts bounds nothing the counts do not, and a suppressed cell is the range 1
to threshold − 1 in every attack, so bounded-but-withheld cells are covered by the same
interval arithmetic.

A share that is exactly what the *published* (rounded) counts give carries nothing
beyond them (the publication rule, ``docs/methods.md`` §7); the attacker then assumes
nothing more. Recovering a zero is not a disclosure (zeros are published as zeros).

Pure functions over frames of text cells, and :func:`audit` over a folder.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from pipeline import catalog
from pipeline.disclosure import SHARES

SHARE_COLUMNS = ("observed", "share_improved", "share_missing", "rate")
"""Columns holding a proportion of people (other decimals, e.g. odds ratios, are not);
curves are attacked step by step instead (``CURVE_VALUES``)."""
CURVE_VALUES = ("survival", "incidence_dropout", "incidence")
AT_RISK = "n_at_risk"
JOINS = {  # plot data → (the shared table holding its counts, key columns plot → table)
    "dose_response": ("dose_response_observed", {"sessions": "sessions"}),
    "calibration": ("prediction_calibration", {"model": "model", "bin": "bin"}),
}
MAX_SPAN = 2_000
"""A count range wider than this is left alone (no narrowing is possible at that width)."""


@dataclass(frozen=True)
class Range:
    """The integers a published count may be: ``lo`` to ``hi`` inclusive."""

    lo: int
    hi: int

    @property
    def exact(self) -> bool:
        return self.lo == self.hi

    def __and__(self, other: Range) -> Range:
        return Range(max(self.lo, other.lo), min(self.hi, other.hi))


@dataclass(frozen=True)
class Recovery:
    """A count the attacker pinned to one value."""

    kind: str  # "ratio", "survival step", "sum"
    file: str
    row: int
    column: str
    published: str
    value: int

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.file} row {self.row} {self.column} published "
            f"{self.published!r} is exactly {self.value}"
        )


def count_range(text: str, threshold: int, base: int) -> Range | None:
    """What a published count cell allows: ``<8`` is 1 to 7, ``0`` is 0, a rounded ``R`` is
    R − base/2 … R + base/2 (and at least the threshold). None for an empty cell."""
    text = str(text).strip().replace(",", "")
    if text in ("", "nan", "withheld", "—"):
        return None
    if text.startswith("<"):
        return Range(1, threshold - 1)
    value = float(text)
    if value == 0:
        return Range(0, 0)
    half = base // 2
    return Range(max(threshold, int(value) - half), int(value) + half)


def decimal_range(text: str) -> tuple[float, float] | None:
    """The interval a printed decimal stands for (``0.2613`` is 0.26125 … 0.26135, ``46%``
    is 0.455 … 0.465); None for an empty or withheld cell."""
    text = str(text).strip()
    if text in ("", "nan", "withheld", "—") or text.startswith("<"):
        return None
    percent = text.endswith("%")
    body = text.rstrip("%")
    try:
        value = float(body)
    except ValueError:
        return None
    mantissa = body.lower().split("e")[0]
    exponent = int(body.lower().split("e")[1]) if "e" in body.lower() else 0
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half = 0.5 * 10.0 ** (exponent - decimals)
    scale = 0.01 if percent else 1.0
    return ((value - half) * scale, (value + half) * scale)


def cell_range(cells: dict, column: str) -> tuple[float, float] | None:
    """A printed decimal's interval; where the row states its ``precision`` (shared
    curves), that precision rather than the digits printed."""
    bounds = decimal_range(cells[column])
    precision = decimal_range(cells.get("precision", ""))
    if bounds is None or precision is None:
        return bounds
    q = float(cells["precision"])
    middle = (bounds[0] + bounds[1]) / 2
    return (middle - q / 2, middle + q / 2)


def _within(ratio: float, bounds: tuple[float, float]) -> bool:
    lo, hi = bounds
    return lo - 1e-12 <= ratio <= hi + 1e-12


def _hidden(r: Range) -> bool:
    return not r.exact


def ratio_solutions(
    share: tuple[float, float], num: Range | None, den: Range
) -> tuple[set[int], set[int]]:
    """Every (numerator, denominator) the ranges allow whose ratio prints as the share:
    the feasible numerators and denominators."""
    ks: set[int] = set()
    ns: set[int] = set()
    lo, hi = share
    for n in range(max(den.lo, 1), den.hi + 1):
        k_lo, k_hi = math.ceil(lo * n - 1e-9), math.floor(hi * n + 1e-9)
        if num is not None:
            k_lo, k_hi = max(k_lo, num.lo), min(k_hi, num.hi)
        for k in range(max(k_lo, 0), min(k_hi, n) + 1):
            ks.add(k)
            ns.add(n)
    return ks, ns


def _published_value(text: str) -> float | None:
    try:
        return float(str(text).replace(",", ""))
    except ValueError:
        return None


def _from_published(
    share: tuple[float, float], num_text: str | None, den_text: str, base: int
) -> bool:
    """The share is what the published counts themselves give (it adds nothing): their
    ratio, or, when its numerator is not published, some multiple of ``base`` over the
    published denominator."""
    n = _published_value(den_text)
    if n is None or n <= 0:
        return False
    if num_text is not None:
        k = _published_value(num_text)
        return k is not None and _within(k / n, share)
    return any(_within(m * base / n, share) for m in range(int(n // base) + 1))


def _pairs(share: str, counts: list[str]) -> list[tuple[str | None, str]]:
    """The (numerator, denominator) count columns a share may be read against: its declared
    pair (``pipeline.disclosure.SHARES``, public in the docs) and its denominator alone;
    for an undeclared share every column as denominator, alone or with another as
    numerator. A joined partner's columns carry the suffix ``_table``."""

    def column(name: str) -> str | None:
        return next((c for c in (name, f"{name}_table") if c in counts), None)

    if share in SHARES:
        num, den = (column(c) for c in SHARES[share])
        return [] if den is None else [(None, den)] + ([(num, den)] if num else [])
    return [(k, d) for d in counts for k in [None, *counts] if k != d]


def ratio_attack(
    table: pd.DataFrame,
    counts: list[str],
    file: str,
    threshold: int,
    base: int,
    shares: list[str] | None = None,
) -> Iterator[Recovery]:
    """Each share against the count columns of its row it may be a ratio of
    (:func:`_pairs`). A share equal to the ratio of the published counts of one of those
    pairs is what the publication rule gives (``docs/methods.md`` §7): it says nothing
    beyond the counts and is not read further."""
    named = (
        shares if shares is not None else [c for c in table.columns if c.startswith(SHARE_COLUMNS)]
    )
    for i, row in enumerate(table.itertuples(index=False)):
        cells = dict(zip(table.columns, row, strict=True))
        ranges = {c: count_range(cells[c], threshold, base) for c in counts}
        for s in named:
            bounds = cell_range(cells, s)
            if bounds is None:
                continue
            pairs = _pairs(s, counts)
            if any(
                _from_published(bounds, cells[k] if k else None, cells[d], base) for k, d in pairs
            ):
                continue
            for k_col, d in pairs:
                den, num = ranges[d], (ranges[k_col] if k_col else None)
                if den is None or den.hi - den.lo > MAX_SPAN or den.hi == 0:
                    continue
                if k_col is not None and (num is None or num.lo > den.hi):
                    continue
                ks, ns = ratio_solutions(bounds, num, den)
                if len(ns) == 1 and _hidden(den) and (n := ns.pop()) > 0:
                    yield Recovery("ratio", file, i, d, str(cells[d]), n)
                hidden_k = num is None or _hidden(num)
                if len(ks) == 1 and (k := ks.pop()) > 0 and hidden_k:
                    yield Recovery("ratio", file, i, k_col or f"{s} × {d}", str(cells[s]), k)


def survival_step_attack(
    table: pd.DataFrame, file: str, threshold: int, base: int
) -> Iterator[Recovery]:
    """Events between consecutive curve points, over every count the rounding allows.

    Kaplan–Meier: events = n × (1 − S(t)/S(t−)), with n the number at risk at the event
    time when rows are event times (``time``), or anything between the numbers at risk at
    the two points when rows are fixed weeks (``week``). Cumulative incidence (competing
    endings): events = ΔF × n / S_any, where the probability of no ending of any kind
    S_any is not shared but lies between n/N (N at risk at the start) and 1, so n / S_any
    lies between n and N."""
    value = next((c for c in CURVE_VALUES if c in table), None)
    if value is None or AT_RISK not in table:
        return
    survival = value == "survival"
    groups = table.groupby("group", sort=False) if "group" in table else [(None, table)]
    for _, g in groups:
        previous = (1.0, 1.0) if survival else (0.0, 0.0)
        before: Range | None = None  # at risk at the previous point
        start: Range | None = None  # at risk at the first point
        for i, row in zip(g.index, g.itertuples(index=False), strict=True):
            cells = dict(zip(g.columns, row, strict=True))
            bounds = cell_range(cells, value)
            at_risk = count_range(cells[AT_RISK], threshold, base)
            if bounds is None or at_risk is None:
                break
            start = start or at_risk
            if survival:
                if previous[0] <= 0:
                    break
                ratio = (bounds[0] / previous[1], min(1.0, bounds[1] / previous[0]))
                share = (1 - ratio[1], 1 - ratio[0])
                upper = at_risk.hi if "time" in g or before is None else max(before.hi, at_risk.hi)
                people = Range(at_risk.lo, upper)
            else:
                share = (max(0.0, bounds[0] - previous[1]), max(0.0, bounds[1] - previous[0]))
                people = Range(at_risk.lo, max(start.hi, at_risk.hi))
            pinned = _events(share, people, whole=survival and "time" in g)
            if pinned is not None and pinned > 0:
                yield Recovery("survival step", file, int(i), "events", str(cells[value]), pinned)
            previous, before = bounds, at_risk


def _events(share: tuple[float, float], people: Range, whole: bool) -> int | None:
    """The number of events if ``share`` of ``people`` allows only one; None otherwise.
    ``whole``: the multiplier is a whole number of people (a Kaplan–Meier step at one
    event time); otherwise any real number in the range (n / S_any, or a number at risk
    that changed within the interval)."""
    lo_share, hi_share = share
    if not whole or people.hi - people.lo > MAX_SPAN:
        lo = math.ceil(people.lo * lo_share - 1e-9)
        hi = math.floor(people.hi * hi_share + 1e-9)
        return lo if lo == hi else None
    events: set[int] = set()
    for n in range(people.lo, people.hi + 1):
        lo = math.ceil(n * lo_share - 1e-9)
        hi = math.floor(n * hi_share + 1e-9)
        events.update(range(max(lo, 0), hi + 1))
        if len(events) > 1:
            return None
    return events.pop() if len(events) == 1 else None


def sum_attack(
    table: pd.DataFrame, counts: list[str], file: str, threshold: int, base: int
) -> Iterator[Recovery]:
    """Totals minus parts: in a table with groups and an ``all`` (or ``Total``) row, each
    group's count lies within the total's range less every other group's range."""
    key = next((c for c in ("group", "label") if c in table), None)
    if key is None:
        return
    labels = table[key].astype(str).str.lower()
    is_total = labels.isin(["all", "total"]) | labels.str.startswith(("all ", "total "))
    totals, parts = table[is_total], table[~is_total]
    if len(totals) != 1 or len(parts) < 2:
        return
    for c in counts:
        total = count_range(totals.iloc[0][c], threshold, base)
        maybe = [count_range(v, threshold, base) for v in parts[c]]
        if total is None or any(r is None for r in maybe):
            continue
        ranges = [r for r in maybe if r is not None]
        for j, (i, r) in enumerate(zip(parts.index, ranges, strict=True)):
            others = [x for m, x in enumerate(ranges) if m != j]
            lo = total.lo - sum(x.hi for x in others)
            hi = total.hi - sum(x.lo for x in others)
            pinned = r & Range(lo, hi)
            if pinned.exact and _hidden(r) and pinned.lo > 0:
                yield Recovery("sum", file, int(i), c, str(parts.loc[i, c]), pinned.lo)


def _read(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return None


def _declared_counts(name: str, columns: Iterable[str]) -> list[str]:
    try:
        declared = catalog.table(name).counts
    except KeyError:
        return [c for c in columns if c == AT_RISK]
    strip = re.compile(r"_(adjusted|unadjusted)$")
    return [c for c in columns if strip.sub("", c) in declared]


def attack_table(
    table: pd.DataFrame, name: str, file: str, threshold: int, base: int
) -> list[Recovery]:
    """Every attack on one shared table."""
    counts = _declared_counts(name, table.columns)
    return [
        *ratio_attack(table, counts, file, threshold, base),
        *survival_step_attack(table, file, threshold, base),
        *sum_attack(table, counts, file, threshold, base),
    ]


def _joined_plot(plot: pd.DataFrame, name: str, tables: dict[str, pd.DataFrame]):
    """Plot data joined to the shared table that holds its counts (the shares renamed so
    the table's own are attacked separately)."""
    partner, keys = JOINS[name]
    if partner not in tables:
        return None, []
    table = tables[partner]
    left = plot.rename(columns={c: f"{c}" for c in plot.columns})
    right = table.rename(columns={c: f"{c}_table" for c in table.columns if c not in keys.values()})
    merged = left.merge(right, left_on=list(keys), right_on=list(keys.values()), how="inner")
    counts = [f"{c}_table" for c in _declared_counts(partner, table.columns)]
    return merged, counts


def audit(reports_dir: Path, threshold: int, base: int) -> list[Recovery]:
    """Every recovery from the shared tables (``tables/``) and plot data (``plots/``)."""
    tables: dict[str, pd.DataFrame] = {}
    found: list[Recovery] = []
    for path in sorted((reports_dir / "tables").glob("*/*.csv")):
        table = _read(path)
        if table is None or table.empty:
            continue
        tables[path.stem] = table
        file = str(path.relative_to(reports_dir))
        found += attack_table(table, path.stem, file, threshold, base)
    for path in sorted((reports_dir / "plots").glob("*.csv")):
        plot = _read(path)
        if plot is None or plot.empty:
            continue
        file = str(path.relative_to(reports_dir))
        found += list(survival_step_attack(plot, file, threshold, base))
        if path.stem in JOINS:
            merged, counts = _joined_plot(plot, path.stem, tables)
            if merged is not None:
                found += list(ratio_attack(merged, counts, file, threshold, base))
    for path in sorted(reports_dir.rglob("*.json")):
        found += _json_attacks(path, str(path.relative_to(reports_dir)), threshold, base)
    for path in sorted(reports_dir.glob("*.html")):
        found += _html_attacks(path, str(path.relative_to(reports_dir)), threshold, base)
    return found


def _json_attacks(path: Path, file: str, threshold: int, base: int) -> list[Recovery]:
    """A JSON file as a one-row table: each ``metrics.json`` rate against its published
    denominator (``catalog.METRIC_RATE_DENOMINATORS``); a model card's ``n_input`` less
    ``n_analysed`` against the rows its notes say were dropped."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        return []
    found: list[Recovery] = []
    for rate, n in catalog.METRIC_RATE_DENOMINATORS.items():
        if data.get(rate) is not None and data.get(n) is not None:
            row = pd.DataFrame([{n: str(data[n]), rate: str(data[rate])}])
            found += ratio_attack(row, [n], file, threshold, base, [rate])
    dropped = [m for note in data.get("notes", []) if (m := _DROPPED.match(str(note)))]
    if "n_input" in data and "n_analysed" in data and dropped:
        found += difference_attack(
            {
                "n_input": str(data["n_input"]),
                "n_analysed": str(data["n_analysed"]),
                "rows dropped (notes)": dropped[0].group(1),
            },
            file,
            threshold,
            base,
        )
    return found


_DROPPED = re.compile(r"^(<?\d+) row\(s\)")


def difference_attack(
    cells: dict[str, str], file: str, threshold: int, base: int
) -> Iterator[Recovery]:
    """Three published counts with total = part + rest (in that order): each narrowed by
    the other two; one pinned to a single value it was not published as is recovered."""
    total, part, rest = (count_range(v, threshold, base) for v in cells.values())
    if total is None or part is None or rest is None:
        return
    names = list(cells)
    implied = [
        total & Range(part.lo + rest.lo, part.hi + rest.hi),
        part & Range(total.lo - rest.hi, total.hi - rest.lo),
        rest & Range(total.lo - part.hi, total.hi - part.lo),
    ]
    for name, before, after in zip(names, (total, part, rest), implied, strict=True):
        if after.exact and _hidden(before) and after.lo > 0:
            yield Recovery("difference", file, 0, name, cells[name], after.lo)


class _Tables(HTMLParser):
    """The tables of an HTML page as lists of rows of cell text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables:
            if self.tables[-1]:
                self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


_COUNT_CELL = re.compile(r"^(<\s?\d+|\d[\d,]*)$")
_PERCENT_CELL = re.compile(r"^(\d+(?:\.\d+)?%)")


def html_tables(text: str) -> list[pd.DataFrame]:
    """Each table of a page with a header row and rows of the same width: count-like cells
    normalised (``< 8`` → ``<8``, ``1,235`` → ``1235``), a percentage with its interval
    (``18% (14–22%)``) reduced to the percentage."""
    parser = _Tables()
    parser.feed(text)
    out = []
    for rows in parser.tables:
        if len(rows) < 2 or len({len(r) for r in rows}) != 1:
            continue
        body = [
            [
                m.group(1)
                if (m := _PERCENT_CELL.match(c))
                else c.replace(" ", "")
                if _COUNT_CELL.match(c)
                else c
                for c in r
            ]
            for r in rows[1:]
        ]
        header = [h or f"column {j}" for j, h in enumerate(rows[0])]
        out.append(pd.DataFrame(body, columns=pd.Index(header).astype(str)))
    return out


def _html_attacks(path: Path, file: str, threshold: int, base: int) -> list[Recovery]:
    """Every HTML table: columns whose cells are all counts against columns of
    percentages; rows with a group-like first column against their ``Total``/``All`` row."""
    found: list[Recovery] = []
    for j, table in enumerate(html_tables(path.read_text(encoding="utf-8"))):
        name = f"{file} table {j + 1}"
        filled = {c: [v for v in table[c] if v not in ("", "—")] for c in table.columns}
        counts = [c for c, v in filled.items() if v and all(_COUNT_CELL.match(x) for x in v)]
        shares = [c for c, v in filled.items() if v and all(x.endswith("%") for x in v)]
        cells = table.apply(lambda col: col.str.replace(",", "", regex=False))
        if shares and counts:
            found += ratio_attack(cells, counts, name, threshold, base, shares)
        first = cells.columns[0]
        found += sum_attack(cells.rename(columns={first: "group"}), counts, name, threshold, base)
    return found


IDENTIFIER_COLUMNS = ("episode_id", "client_id")
"""Columns no shared table has: a file under ``reports/`` holding one is refused whole."""


MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle", ".skops")


def refused_files(reports_dir: Path) -> list[str]:
    """Files that must never be among the shared outputs, each with the reason: a worklist
    (its first line is ``catalog.WORKLIST_MARKER``, or a JSON, HTML or Markdown file holding
    that marker), a fitted model file, or any CSV or Parquet table with an ``episode_id`` or
    ``client_id`` column (per-episode rows, pseudonymous ids)."""
    found = []
    for path in sorted(p for p in Path(reports_dir).rglob("*") if p.is_file()):
        file = str(path.relative_to(reports_dir))
        suffix = path.suffix.lower()
        if suffix in MODEL_SUFFIXES:
            found.append(f"{file}: a fitted model (its coefficients rest on single clients)")
            continue
        if suffix == ".parquet":
            columns = _parquet_columns(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            marked, columns = _text_header(path, "\t" if suffix == ".tsv" else ",")
            if marked:
                found.append(f"{file}: a worklist (pseudonymous episode ids, service use only)")
                continue
        else:
            if suffix in (".json", ".html", ".md") and catalog.WORKLIST_MARKER in path.read_text(
                encoding="utf-8", errors="replace"
            ):
                found.append(f"{file}: holds a worklist (pseudonymous episode ids)")
            continue
        ids = [c for c in columns if c.strip().lower() in IDENTIFIER_COLUMNS]
        if ids:
            found.append(f"{file}: per-episode rows (column {', '.join(ids)})")
    return found


def _text_header(path: Path, delimiter: str) -> tuple[bool, list[str]]:
    """Whether a text table opens with the worklist marker, and its header row (the first
    line that is not a ``#`` comment)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        first = fh.readline()
        line = first
        while line.startswith("#"):
            line = fh.readline()
    marked = first.startswith(catalog.WORKLIST_MARKER) or "# WORKLIST" in first.upper()
    return marked, next(csv.reader([line], delimiter=delimiter), [])


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # not a readable Parquet file: nothing to read a column from
        return []


def summarise(found: list[Recovery]) -> dict[str, int]:
    """Recoveries by kind of attack (distinct file, row and column)."""
    unique = {(r.kind, r.file, r.row, r.column) for r in found}
    out: dict[str, int] = {}
    for kind, *_ in sorted(unique):
        out[kind] = out.get(kind, 0) + 1
    return out
