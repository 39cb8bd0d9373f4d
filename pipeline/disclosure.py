"""Statistical disclosure control: the one module every table and figure for people passes.

Rules (``params.yaml → disclosure``; NHS Digital's secondary-care convention by default):

- a count of 1 to ``threshold − 1`` people is **suppressed** (shown "< threshold"); zero is
  shown; every other count is **rounded** to the nearest ``rounding_base``;
- a rate, mean or model estimate resting on fewer than ``threshold`` people is **withheld**,
  and so is a rate whose numerator or complement is a suppressible count (it would reveal it);
- **secondary suppression**: in a table with totals, a row or column with exactly one
  suppressed cell has its next smallest cell suppressed too, so that no suppressed count can
  be recovered by subtraction;
- "suppressed" (``< 8``) is always distinct from "missing" (``—``).

Values are kept as :class:`Cell` objects until rendering, so a template cannot print an
unprotected number by accident.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.config import DisclosureParams

MISSING_MARK = "—"


@dataclass(frozen=True)
class Cell:
    """A value ready to show: ``value`` is None when suppressed, withheld or missing."""

    value: float | None
    state: str  # "shown", "suppressed", "withheld", "missing"
    threshold: int = 8

    @property
    def shown(self) -> bool:
        return self.state == "shown"

    def text(self, fmt: str = "{:,.0f}") -> str:
        if self.state == "shown":
            return fmt.format(self.value)
        if self.state == "missing":
            return MISSING_MARK
        if self.state == "withheld":  # an estimate resting on too few people
            return "withheld"
        return f"< {self.threshold}"  # a suppressed count

    def __str__(self) -> str:
        return self.text()


def _is_small(n: float, threshold: int) -> bool:
    return 0 < n < threshold


def count(n: float | int | None, params: DisclosureParams) -> Cell:
    """A count of people: suppressed if 1 to threshold − 1, else rounded to the base."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return Cell(None, "missing", params.threshold)
    if _is_small(n, params.threshold):
        return Cell(None, "suppressed", params.threshold)
    base = params.rounding_base
    return Cell(float(base * math.floor(n / base + 0.5)), "shown", params.threshold)


def rate(numerator: float, denominator: float, params: DisclosureParams) -> Cell:
    """A proportion: withheld if it rests on fewer than threshold people, or if its numerator
    or complement is a suppressible count. Computed from the exact counts."""
    if denominator is None or not np.isfinite(denominator) or denominator == 0:
        return Cell(None, "missing", params.threshold)
    t = params.threshold
    if denominator < t or _is_small(numerator, t) or _is_small(denominator - numerator, t):
        return Cell(None, "withheld", t)
    return Cell(float(numerator / denominator), "shown", t)


def estimate(value: float, n: float, params: DisclosureParams) -> Cell:
    """A mean or model estimate resting on ``n`` people."""
    if value is None or not np.isfinite(value):
        return Cell(None, "missing", params.threshold)
    if n < params.threshold:
        return Cell(None, "withheld", params.threshold)
    return Cell(float(value), "shown", params.threshold)


def suppress_table(counts: pd.DataFrame, params: DisclosureParams) -> pd.DataFrame:
    """Primary and secondary suppression of a table of exact counts (rows × columns), then
    rounding. Row and column totals are computed from the exact counts and rounded, and the
    returned frame (of :class:`Cell`) carries them as a ``Total`` row and column.

    Secondary suppression: while some row or column (totals included as published values)
    has exactly one suppressed cell, the smallest other non-zero cell in it is suppressed.
    """
    exact = counts.astype(float)
    hidden = (exact > 0) & (exact < params.threshold)
    changed = True
    while changed:
        changed = False
        for axis in (0, 1):
            lines = exact.T if axis == 0 else exact  # axis 0: columns; axis 1: rows
            mask = hidden.T if axis == 0 else hidden
            for label in lines.index:
                row_hidden = mask.loc[label]
                if row_hidden.sum() == 1:
                    candidates = lines.loc[label][~row_hidden & (lines.loc[label] > 0)]
                    if candidates.empty:
                        continue
                    smallest = candidates.idxmin()
                    if axis == 0:
                        hidden.loc[smallest, label] = True
                    else:
                        hidden.loc[label, smallest] = True
                    changed = True
    out = exact.apply(lambda col: col.map(lambda n: count(n, params)))
    for r in exact.index:
        for c in exact.columns:
            if hidden.loc[r, c]:
                out.loc[r, c] = Cell(None, "suppressed", params.threshold)
    out["Total"] = [count(v, params) for v in exact.sum(axis=1)]
    total_row = [count(v, params) for v in exact.sum(axis=0)] + [
        count(exact.to_numpy().sum(), params)
    ]
    out.loc["Total"] = total_row
    return out


def safe_frame(
    data: pd.DataFrame,
    counts: list[str],
    estimates: dict[str, str],
    params: DisclosureParams,
) -> pd.DataFrame:
    """A plot-data or summary table made safe column by column: ``counts`` are
    suppressed/rounded; each ``estimates`` column is withheld where the count column it
    rests on (``estimates[column]``) is below the threshold. Returns plain values (suppressed
    or withheld cells as missing) plus a ``<count>_flag`` column saying which."""
    out = data.copy()
    for column, basis in estimates.items():
        small = data[basis] < params.threshold
        out[column] = data[column].where(~small)
    for column in counts:
        cells = [count(v, params) for v in data[column]]
        out[column] = [c.value for c in cells]
        out[f"{column}_flag"] = [c.state for c in cells]
    return out


# --- researcher tables and model cards written to reports/ -----------------------------

BASIS_COLUMNS = ("n_analysed", "n_at_risk", "episodes", "n")
"""The count a row's estimates rest on, in order of preference."""
SHARES = {
    "observed": ("events", "n"),
    "share_improved": ("improved", "episodes"),
    "share_missing": ("missing_final_score", "episodes"),
}
"""Proportions published in result tables: (numerator, denominator) count columns. A share
is withheld when its numerator or complement is a suppressible count."""
SIGNIFICANT = "%.4g"
"""Shared result tables carry 4 significant digits: enough to read, too few to recover an
exact count from a fraction."""


def _count_columns(columns: Iterable[str], declared: tuple[str, ...]) -> list[str]:
    return [c for c in columns if _strip_suffix(c) in declared]


def _strip_suffix(column: str) -> str:
    for suffix in ("_adjusted", "_unadjusted"):
        if column.endswith(suffix):
            return column.removesuffix(suffix)
    return column


def _count_text(n, params: DisclosureParams) -> str:
    cell = count(n, params)
    if cell.state == "missing":
        return ""
    return cell.text("{:.0f}").replace(",", "") if cell.shown else f"<{params.threshold}"


def safe_result_table(
    table: pd.DataFrame, params: DisclosureParams, name: str | None = None
) -> pd.DataFrame:
    """A result table made shareable.

    - Each row's estimates are withheld (the text ``withheld``, distinct from an empty cell,
      not available) when the count they rest on is below the threshold; suffixed columns
      (``estimate_adjusted``) rest on their own suffixed count.
    - Shares are withheld when their numerator or complement is a suppressible count.
    - Count columns become rounded counts or ``<8`` (suppressed).
    - Intercepts are dropped: with an odds ratio they give back a 2 × 2 table.
    - Which columns count people is declared with the table in ``pipeline/catalog.py``
      (``TABLES``): an undeclared table is refused, and so is a declared one whose count
      columns are all absent (the declaration no longer describes it).
    """
    out = table.copy()
    if out.empty:  # no model could be fitted: no row, nothing to protect
        return out
    if "term" in out:
        out = out[~out["term"].isin(["const", "Intercept"])]
    try:
        declared = catalog.table(name).counts
    except KeyError as exc:
        raise ValueError(f"disclosure: {exc.args[0]}") from None
    counts = _count_columns(out.columns, declared)
    if declared and not counts:
        raise ValueError(
            f"disclosure: table {name!r} has none of its declared count columns "
            f"({', '.join(declared)}); update its entry in pipeline/catalog.py"
        )
    t = params.threshold
    withheld = pd.DataFrame(False, index=out.index, columns=out.columns)
    for suffix in ("", "_adjusted", "_unadjusted"):
        basis = next((c + suffix for c in BASIS_COLUMNS if c + suffix in out), None)
        if basis is None:
            continue
        small = pd.to_numeric(out[basis], errors="coerce") < t
        for c in out.columns:
            if c in counts or c == "time" or not pd.api.types.is_float_dtype(out[c]):
                continue
            if suffix and not c.endswith(suffix):
                continue
            if not suffix and c.endswith(("_adjusted", "_unadjusted")):
                continue
            withheld[c] |= small
    for share, (num, den) in SHARES.items():
        if share in out and num in out and den in out:
            k, n = out[num].astype(float), out[den].astype(float)
            withheld[share] |= ((k > 0) & (k < t)) | ((n - k > 0) & (n - k < t)) | (n < t)
    values = out.astype(object)
    for c in out.columns:
        if c not in counts and pd.api.types.is_float_dtype(out[c]):
            values[c] = [("" if pd.isna(v) else SIGNIFICANT % v) for v in out[c]]
        values.loc[withheld[c], c] = "withheld"
    for c in counts:
        values[c] = [_count_text(v, params) for v in out[c]]
    return values


_INTEGER = __import__("re").compile(r"(?<![\w.,+\-])(\d+)(?![\w,]|\.\d)")


def scrub_text(text: str, params: DisclosureParams) -> str:
    """Every whole number in free text (a note such as "3 row(s) dropped") shown as a
    disclosure-controlled count; decimals, scientific notation and parts of names are left
    alone (over-protecting a number that is not a count is the safe error)."""
    return _INTEGER.sub(lambda m: _count_text(int(m.group(1)), params), text)


def safe_card(card: dict, params: DisclosureParams) -> dict:
    """A model card for sharing: counts rounded or suppressed, notes and warnings scrubbed."""
    out = dict(card)
    for key in ("n_input", "n_analysed", "n_groups"):
        if out.get(key) is not None:
            out[key] = _count_text(out[key], params)
    for key in ("notes", "warnings"):
        out[key] = [scrub_text(t, params) for t in out.get(key, [])]
    return out
