"""An attacker for the shared outputs: tries to recover counts that disclosure control hides.

It reads what a reader of ``reports/`` has (the shared result tables and plot data; the
catalog's declaration of which columns count people is public, in the docs) and, by
interval arithmetic over every count the rounding allows, looks for a count that can be
pinned to one value although it was published suppressed (``<8``) or rounded:

- **ratio**: a share in a row beside its rounded counts (or joined to them from another
  file), read as numerator / denominator at the precision it is printed;
- **survival step**: consecutive points of a survival or incidence curve with the number
  at risk, read as events = at risk × (1 − S(t) / S(t−));
- **sum**: a table's ``all`` row against its groups (totals minus parts).

A share that is exactly what the *published* (rounded) counts give carries nothing
beyond them (the publication rule, ``docs/methods.md`` §7); the attacker then assumes
nothing more. Recovering a zero is not a disclosure (zeros are published as zeros).

Pure functions over frames of text cells, and :func:`audit` over a folder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


def _from_published(share: tuple[float, float], num_text: str, den_text: str) -> bool:
    """The share is what the published counts themselves give (it adds nothing)."""
    k, n = _published_value(num_text), _published_value(den_text)
    return k is not None and n is not None and n > 0 and _within(k / n, share)


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
    table: pd.DataFrame, counts: list[str], file: str, threshold: int, base: int
) -> Iterator[Recovery]:
    """Each share against the count columns of its row it may be a ratio of
    (:func:`_pairs`). A share equal to the ratio of the published counts of one of those
    pairs is what the publication rule gives (``docs/methods.md`` §7): it says nothing
    beyond the counts and is not read further."""
    shares = [c for c in table.columns if c.startswith(SHARE_COLUMNS)]
    for i, row in enumerate(table.itertuples(index=False)):
        cells = dict(zip(table.columns, row, strict=True))
        ranges = {c: count_range(cells[c], threshold, base) for c in counts}
        for s in shares:
            bounds = cell_range(cells, s)
            if bounds is None:
                continue
            pairs = _pairs(s, counts)
            if any(k and _from_published(bounds, cells[k], cells[d]) for k, d in pairs):
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
    """Events between consecutive curve points: at risk × (1 − S(t)/S(t−)), where S is the
    survival (or one minus the incidence), over every at-risk count the rounding allows."""
    value = next((c for c in CURVE_VALUES if c in table), None)
    if value is None or AT_RISK not in table:
        return
    groups = table.groupby("group", sort=False) if "group" in table else [(None, table)]
    for _, g in groups:
        previous: tuple[float, float] | None = (1.0, 1.0)
        for i, row in zip(g.index, g.itertuples(index=False), strict=True):
            cells = dict(zip(g.columns, row, strict=True))
            bounds = cell_range(cells, value)
            at_risk = count_range(cells[AT_RISK], threshold, base)
            if bounds is None or at_risk is None or previous is None:
                previous = None
                continue
            s = bounds if value == "survival" else (1 - bounds[1], 1 - bounds[0])
            if previous[0] <= 0:
                break
            ratio = (s[0] / previous[1], min(1.0, s[1] / previous[0]))
            events: set[int] = set()
            for n in range(at_risk.lo, at_risk.hi + 1):
                lo = math.ceil(n * (1 - ratio[1]) - 1e-9)
                hi = math.floor(n * (1 - ratio[0]) + 1e-9)
                events.update(range(max(lo, 0), hi + 1))
            if len(events) == 1 and (e := events.pop()) > 0:
                yield Recovery("survival step", file, int(i), "events", str(cells[value]), e)
            previous = s


def sum_attack(
    table: pd.DataFrame, counts: list[str], file: str, threshold: int, base: int
) -> Iterator[Recovery]:
    """Totals minus parts: in a table with groups and an ``all`` (or ``Total``) row, each
    group's count lies within the total's range less every other group's range."""
    key = next((c for c in ("group", "label") if c in table), None)
    if key is None:
        return
    labels = table[key].astype(str)
    totals = table[labels.isin(["all", "Total"])]
    parts = table[~labels.isin(["all", "Total"])]
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
    return found


def summarise(found: list[Recovery]) -> dict[str, int]:
    """Recoveries by kind of attack (distinct file, row and column)."""
    unique = {(r.kind, r.file, r.row, r.column) for r in found}
    out: dict[str, int] = {}
    for kind, *_ in sorted(unique):
        out[kind] = out.get(kind, 0) + 1
    return out
