"""Statistical disclosure control: the one module every table and figure for people passes.

Rules (``params.yaml → disclosure``; NHS Digital's secondary-care convention by default):

- a count of 1 to ``threshold − 1`` people is **suppressed** (shown "< threshold"); zero is
  shown; every other count is **rounded** to the nearest ``rounding_base``;
- a rate, mean or model estimate resting on fewer than ``threshold`` people is **withheld**,
  and so is a rate whose numerator or complement is a suppressible count (it would reveal it);
- **secondary suppression**: in a table with totals, a row or column with exactly one
  suppressed cell has its next smallest cell suppressed too, so that no suppressed count can
  be recovered by subtraction;
- "suppressed" (``< 8``) is always distinct from "missing" (``—``);
- a **share** published beside its counts is computed from the published (rounded)
  counts, so it says nothing the counts do not (NHS Digital's convention for its
  publications); a share computed from exact counts, read with the rounded counts, gives
  the exact counts back (``pipeline/disclosure_audit.py`` shows how);
- a **survival or incidence curve** is shared only at fixed weeks, never per event time,
  only while its real number at risk is at least the threshold, and each point to the
  nearest multiple of a quantum of at least ``rounding_base / at risk`` (its ``precision``
  column), so the step between two points cannot be read back as a number of events.

Values are kept as :class:`Cell` objects until rendering, so a template cannot print an
unprotected number by accident.
"""

from __future__ import annotations

import math
import re
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
    or complement is a suppressible count. Computed from the published (rounded) counts, so
    that, read beside them, it cannot give the exact counts back (:func:`published_counts`)."""
    if denominator is None or not np.isfinite(denominator) or denominator == 0:
        return Cell(None, "missing", params.threshold)
    t = params.threshold
    if denominator < t or _is_small(numerator, t) or _is_small(denominator - numerator, t):
        return Cell(None, "withheld", t)
    k, n = published_counts(numerator, denominator, params)
    return Cell(k / n, "shown", t)


def published_counts(
    numerator: float, denominator: float, params: DisclosureParams
) -> tuple[float, float]:
    """The numerator and denominator of a shown proportion as their published counts would
    give them, each rounded to the base. Any statistic of the two (a share, a Wilson
    interval) computed from these says nothing the published counts do not."""
    base = params.rounding_base
    n = float(base * math.floor(denominator / base + 0.5))
    k = float(base * math.floor(numerator / base + 0.5))
    return k, n


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


# --- curves: fixed weeks, a precision the rounding cannot undo -----------------------------

QUANTA = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
"""The precisions a curve point may be shown at (as a proportion)."""
CURVES = {"dropout_km": "survival", "dropout_cumulative_incidence": "incidence_dropout"}
"""Shared curve tables and the column each one's curve is in."""


def quantum(per_event: float, params: DisclosureParams) -> float | None:
    """The finest precision at which a curve whose step per event is ``1 / per_event``
    hides the number of events between two points: one step of the precision spans at
    least ``rounding_base`` events (the ambiguity the rounding of counts already allows).
    None when no precision up to 0.1 does."""
    if not np.isfinite(per_event) or per_event <= 0:
        return None
    return next((q for q in QUANTA if q * per_event >= params.rounding_base), None)


def _to_quantum(value: float, q: float, how=round) -> float:
    """``value`` on the grid of multiples of ``q`` (``how``: round, or math.floor /
    math.ceil to widen an interval outwards)."""
    return round(how(round(value / q, 9)) * q, 6)


def safe_curve(curve: pd.DataFrame, value: str, params: DisclosureParams) -> pd.DataFrame:
    """A per-event-time curve (``group``, ``time`` in days, ``value``, ``ci_low``,
    ``ci_high``, ``n_at_risk``; for a cumulative incidence, ``survival_any``, the
    probability of no ending of any kind) as shared: one point every ``curve_step_weeks``
    weeks per group, stopping at the first week where fewer than the threshold remain at
    risk (or no event time follows, so the number is not known).

    Each point is rounded to a ``precision`` (:func:`quantum`) fine enough to read and
    coarse enough that the change between two points cannot be turned back into a number
    of events: one event moves a Kaplan–Meier curve by S(t−)/n(t), and a cumulative
    incidence by S_any(t−)/n(t), so the precision must span ``rounding_base`` such steps.
    The interval is widened outwards to the same grid. ``n_at_risk`` stays exact here:
    round it with :func:`count` when publishing."""
    step = 7 * params.curve_step_weeks
    start = 1.0 if value == "survival" else 0.0
    rows = []
    groups = curve.groupby("group", sort=True) if "group" in curve else [("all", curve)]
    for group, g in groups:
        points = _weekly_points(g.sort_values("time"), value, step, start, params.threshold)
        # One event moves the curve more as time goes on (S/n grows with censoring), so a
        # point's precision must also hide the events up to the next point.
        per_event = [p["per_event"] for p in points]
        for i, p in enumerate(points):
            q = quantum(min(per_event[i : i + 2]), params)
            if q is None:
                break
            lo, hi = p["ci_low"], p["ci_high"]
            rows.append(
                {
                    "group": group,
                    "week": i * params.curve_step_weeks,
                    value: _to_quantum(p["value"], q),
                    "ci_low": _to_quantum(lo, q, math.floor) if np.isfinite(lo) else np.nan,
                    "ci_high": _to_quantum(hi, q, math.ceil) if np.isfinite(hi) else np.nan,
                    "precision": q,
                    "n_at_risk": p["n_at_risk"],
                }
            )
    return pd.DataFrame(
        rows, columns=["group", "week", value, "ci_low", "ci_high", "precision", "n_at_risk"]
    )


def _weekly_points(
    g: pd.DataFrame, value: str, step: int, start: float, threshold: int
) -> list[dict]:
    """One group's curve at days 0, step, 2·step … (value and interval at the last event
    time on or before the day; number at risk at the first one after it), while at least
    ``threshold`` remain at risk; ``per_event``: the people one event's step stands for."""
    times = g["time"].to_numpy(float)
    points: list[dict] = []
    while True:
        day = len(points) * step
        later = np.flatnonzero(times >= day)
        if not len(later):
            break
        at_risk = float(g["n_at_risk"].iloc[later[0]])
        if at_risk < threshold:
            break
        upto = g[times <= day]
        if len(upto):
            row = upto.iloc[-1]
            v, lo, hi, remaining = row[value], row["ci_low"], row["ci_high"], _remaining(row, value)
        else:
            v, lo, hi, remaining = start, start, start, 1.0
        per_event = at_risk / max(remaining, 1e-9)
        points.append(
            {"value": v, "ci_low": lo, "ci_high": hi, "n_at_risk": at_risk, "per_event": per_event}
        )
    return points


def _remaining(point: pd.Series, value: str) -> float:
    """The share still at risk of the curve's event at a point (what one event's step is
    scaled by): the survival itself, or for an incidence the probability of no ending of
    any kind (1 when the table does not give it: the coarsest, safe, assumption)."""
    if value == "survival":
        return float(point[value])
    any_ending = point.get("survival_any", 1.0)
    return float(any_ending) if np.isfinite(any_ending) else 1.0


def share_of_published(numerator: float, denominator: float, params: DisclosureParams) -> float:
    """A share computed from the published (rounded) counts (:func:`published_counts`);
    NaN when the denominator is missing or rounds to zero. Whether it may be shown at all
    is :func:`rate`'s decision."""
    if not np.isfinite(denominator):
        return float("nan")
    k, n = published_counts(numerator, denominator, params)
    return k / n if n else float("nan")


# --- researcher tables and model cards written to reports/ -----------------------------

BASIS_COLUMNS = ("n_analysed", "n_at_risk", "episodes", "n")
"""The count a row's estimates rest on, in order of preference."""
SHARES = {
    "observed": ("events", "n"),
    "share_improved": ("improved", "episodes"),
    "share_deteriorated": ("deteriorated", "episodes"),
    "share_missing": ("missing_final_score", "episodes"),
    "share_clients": ("clients", "clients_classified"),
}
"""Proportions published in result tables: (numerator, denominator) count columns. A share
is withheld when its numerator or complement is a suppressible count."""
ESTIMATE_COLUMNS = ("estimate", "ci_low", "ci_high", "p_value")
SPARSE_STATUS = "withheld: too few events or non-events at this level among the analysed"
"""The status of a term withheld by :func:`sparse_terms` in a shared table."""


SIGNIFICANT = "%.4g"
"""Shared result tables carry 4 significant digits. Shares are computed from the published
counts (``SHARES``) and curves shared at fixed weeks (``CURVES``): 4 digits of a share of
exact counts would give the counts back."""


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
    if name in CURVES:
        out = safe_curve(out, CURVES[name], params)
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
    for suffix in ("", "_adjusted", "_unadjusted"):
        level = f"level_min{suffix}"
        if level not in out:
            continue
        sparse = pd.to_numeric(out[level], errors="coerce") < t
        for c in (e + suffix for e in ESTIMATE_COLUMNS):
            if c in out:
                withheld[c] |= sparse
        if f"status{suffix}" in out:
            out[f"status{suffix}"] = out[f"status{suffix}"].where(~sparse, SPARSE_STATUS)
    for share, (num, den) in SHARES.items():
        if share in out and num in out and den in out:
            k, n = out[num].astype(float), out[den].astype(float)
            withheld[share] |= ((k > 0) & (k < t)) | ((n - k > 0) & (n - k < t)) | (n < t)
            out[share] = [share_of_published(a, b, params) for a, b in zip(k, n, strict=True)]
    out = out.drop(columns=[c for c in out.columns if c.startswith("level_min")])
    withheld = withheld[out.columns]
    for c in out.columns:
        if c not in counts and not pd.api.types.is_numeric_dtype(out[c]):
            out[c] = [safe_label(v, params) if isinstance(v, str) else v for v in out[c]]
    values = out.astype(object)
    for c in out.columns:
        if c not in counts and pd.api.types.is_float_dtype(out[c]):
            values[c] = [("" if pd.isna(v) else SIGNIFICANT % v) for v in out[c]]
        values.loc[withheld[c], c] = "withheld"
    for c in counts:
        values[c] = [_count_text(v, params) for v in out[c]]
    return values


_INTEGER = re.compile(r"(?<![\w.,+\-])(\d+)(?![\w,]|\.\d)")
_QUOTED = re.compile(r"`([^`]*)`")
_DATE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")  # a calendar date is not a count
LABEL_CHARACTERS = frozenset(" _.,:;()/&'+-%#?!")
"""Besides letters and digits, the characters a shared label may keep: no markup (``<``,
``>``, quotes, braces), no control characters."""
FORMULA_START = ("=", "+", "-", "@")
"""A spreadsheet reads a cell starting with one of these as a formula."""


def safe_label(text: str, params: DisclosureParams) -> str:
    """A label from the input (a site, treatment or category name, a model term built from
    one) as it may be shared: characters outside the whitelist (letters, digits,
    ``LABEL_CHARACTERS``) become ``_``, a leading ``= + - @`` is prefixed with ``'`` so a
    spreadsheet does not run it, and the label is cut to ``label_max_chars``. Its digits
    are never rewritten (a label is not a count)."""
    clean = "".join(c if c.isalnum() or c in LABEL_CHARACTERS else "_" for c in str(text))
    if clean.startswith(FORMULA_START):
        clean = "'" + clean
    limit = params.label_max_chars
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def scrub_text(text: str, params: DisclosureParams) -> str:
    """Every whole number in free text (a note such as "3 row(s) dropped") shown as a
    disclosure-controlled count; decimals, scientific notation and parts of names are left
    alone (over-protecting a number that is not a count is the safe error). A label quoted
    in backticks (`` `treatment_x` ``) is passed through :func:`safe_label` instead: the
    scrubber never rewrites a label's digits."""
    parts = _QUOTED.split(text)  # odd positions: the quoted labels
    return "".join(
        safe_label(part, params) if i % 2 else _scrub_counts(part, params)
        for i, part in enumerate(parts)
    )


def _scrub_counts(text: str, params: DisclosureParams) -> str:
    """Whole numbers as shared counts; ISO dates (``2024-06-28``) left whole (a split or
    extract date once came out as "2025-06-28")."""
    parts = _DATE.split(text)  # odd positions: the dates
    return "".join(
        part if i % 2 else _INTEGER.sub(lambda m: _count_text(int(m.group(1)), params), part)
        for i, part in enumerate(parts)
    )


def sparse_terms(level_counts: dict, params: DisclosureParams) -> list[str]:
    """The 0/1 terms of a model whose level 1 has fewer than the threshold of events or of
    non-events among the rows that model analysed: their estimates are withheld (an odds
    or hazard ratio for a handful of people describes those people)."""
    return sorted(t for t, pair in level_counts.items() if min(pair) < params.threshold)


def safe_card(card: dict, params: DisclosureParams) -> dict:
    """A model card for sharing: counts rounded or suppressed, notes and warnings scrubbed,
    the exact counts per level dropped and a note naming the terms withheld for them."""
    out = dict(card)
    sparse = sparse_terms(out.pop("level_counts", None) or {}, params)
    for key in ("n_input", "n_analysed", "n_groups", "events"):
        if out.get(key) is not None:
            out[key] = _count_text(out[key], params)
    out["reference_levels"] = {
        k: safe_label(v, params) for k, v in (out.get("reference_levels") or {}).items()
    }
    for key in ("notes", "warnings"):
        out[key] = [scrub_text(t, params) for t in out.get(key, [])]
    out["ph_test"] = [
        dict(row, term=safe_label(row["term"], params)) for row in out.get("ph_test", [])
    ]
    if sparse:
        names = ", ".join(safe_label(t, params) for t in sparse)
        out["notes"].append(
            f"estimates withheld for {names}: fewer than the disclosure threshold "
            "of events or of non-events at that level among the rows this model analysed"
        )
    return out
