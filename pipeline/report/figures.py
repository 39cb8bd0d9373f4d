"""Figures for the reports: aggregate only, one style, colour-blind-safe, inline SVG.

Every function takes data that has already passed disclosure control (no point rests on fewer
people than the threshold) and returns an SVG string with a text alternative. No figure
plots an individual client. SVG output is made deterministic (fixed hash salt, no date).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442"]
GROUP_COLOURS = {"0": PALETTE[0], "1": PALETTE[1], "2+": PALETTE[2]}
STYLE: dict[RcKeyType, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "engagement-report",
    "svg.fonttype": "none",  # text stays text: searchable, accessible, small
}


@dataclass(frozen=True)
class Figure:
    svg: str
    alt: str
    """Text alternative: what the figure shows, in words (every number it draws)."""
    caption: str | None = None
    """A shorter visible caption, where the text alternative lists many numbers (it is
    then the figure's accessible name)."""


def _svg(fig: MplFigure) -> str:
    """The figure as SVG. Drawn with the object-oriented API (no pyplot): ``savefig`` picks
    the SVG canvas itself, so no backend is chosen and nothing global is touched."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def forest(rows: pd.DataFrame, title: str, xlabel: str, alt: str) -> Figure:
    """Ratios with 95% intervals on a log axis; ``rows``: label, estimate, ci_low, ci_high
    (withheld rows already removed)."""
    with matplotlib.rc_context(STYLE):
        fig = MplFigure(figsize=(3.6, 0.42 * len(rows) + 1.2))
        ax = fig.subplots()
        y = np.arange(len(rows))[::-1]
        ax.errorbar(
            rows["estimate"],
            y,
            xerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
            fmt="o",
            color=PALETTE[0],
            ecolor=PALETTE[0],
            capsize=3,
        )
        ax.axvline(1, color="0.3", linewidth=1)
        ax.set_xscale("log")
        low = min(float(rows["ci_low"].min()), 0.9)
        high = max(float(rows["ci_high"].max()), 1.1)
        ticks = [t for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32) if low / 1.5 <= t <= high * 1.5]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks(y, rows["label"])
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
        ax.grid(axis="y", visible=False)
        return Figure(_svg(fig), alt)


def incidence_curves(
    curves: pd.DataFrame, title: str, alt: str, xlabel: str, labels: dict[str, str]
) -> Figure:
    """Cumulative incidence of dropout by flags group with 95% bands; ``curves``: group,
    week, incidence, ci_low, ci_high at fixed weeks (as shared: cut where fewer than the
    threshold remain at risk). Points are joined by lines: only the fixed weeks are known."""
    with matplotlib.rc_context(STYLE):
        fig = MplFigure(figsize=(4.8, 3.2))
        ax = fig.subplots()
        for group, g in curves.groupby("group", sort=True):
            colour = GROUP_COLOURS.get(str(group), PALETTE[3])
            ax.plot(
                g["week"],
                100 * g["incidence"],
                marker="o",
                markersize=3,
                color=colour,
                label=labels.get(str(group), str(group)),
            )
            ax.fill_between(
                g["week"],
                100 * g["ci_low"],
                100 * g["ci_high"],
                color=colour,
                alpha=0.2,
                linewidth=0,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Dropped out (%)")
        ax.set_ylim(bottom=0)
        ax.legend(title="Early disengagement", frameon=False)
        ax.set_title(title, loc="left")
        return Figure(_svg(fig), alt)


def rate_bars(
    rates: pd.DataFrame,
    title: str,
    ylabel: str,
    alt: str,
    width: float = 2.3,
    caption: str | None = None,
) -> Figure:
    """Percentages with 95% intervals by category, in panels; ``rates``: panel, label,
    rate, ci_low, ci_high and n (the number of people, as shared), withheld rates removed.
    Each bar is labelled with its category and its number of people."""
    panels = list(dict.fromkeys(rates["panel"]))
    columns = min(len(panels), 2)
    lines = -(-len(panels) // columns)
    with matplotlib.rc_context(STYLE):
        fig = MplFigure(figsize=(width * columns + 0.6, 2.6 * lines + 0.4), layout="constrained")
        axes = fig.subplots(lines, columns, sharey=True, squeeze=False)
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax, panel in zip(axes.flat, panels, strict=False):
            d = rates[rates["panel"] == panel]
            x = np.arange(len(d))
            ax.bar(x, 100 * d["rate"], color=PALETTE[: len(d)], width=0.7)
            ax.errorbar(
                x,
                100 * d["rate"],
                yerr=[100 * (d["rate"] - d["ci_low"]), 100 * (d["ci_high"] - d["rate"])],
                fmt="none",
                ecolor="0.2",
                capsize=3,
            )
            ax.set_xticks(x, [f"{lab}\nn={n}" for lab, n in zip(d["label"], d["n"], strict=True)])
            ax.set_title(panel, fontsize=10)
            ax.grid(axis="x", visible=False)
            ax.set_ylim(0, 100)
        for row in axes:
            row[0].set_ylabel(ylabel)
        fig.suptitle(title, x=0.02, ha="left", fontsize=11)
        return Figure(_svg(fig), alt, caption)


def dose_response(observed: pd.DataFrame, curve: pd.DataFrame | None, alt: str) -> Figure:
    """Share reliably improved by sessions attended: observed shares with Wilson 95%
    intervals (``observed``: sessions, share_improved, ci_low, ci_high, n as shared;
    withheld rows removed), the number of people under each, and the fitted curve only
    when it fits (``curve`` None otherwise)."""
    with matplotlib.rc_context(STYLE):
        fig = MplFigure(figsize=(5.2, 3.2))
        ax = fig.subplots()
        x = observed["sessions"].to_numpy(float)
        y = 100 * observed["share_improved"]
        ax.errorbar(
            x,
            y,
            yerr=[y - 100 * observed["ci_low"], 100 * observed["ci_high"] - y],
            fmt="o",
            color=PALETTE[2],
            ecolor=PALETTE[2],
            capsize=2,
            label="observed share (95% interval)",
        )
        if curve is not None:
            ax.plot(
                curve["sessions"],
                100 * curve["share_improved"],
                color=PALETTE[0],
                label="fitted curve",
            )
        ax.set_xticks(x, [f"{s:g}" for s in x])
        for xi, n in zip(x, observed["n"], strict=True):
            ax.annotate(
                str(n), (xi, 0), xytext=(0, 3), textcoords="offset points",
                ha="center", va="bottom", fontsize=10, color="0.35", rotation=90,
            )  # fmt: skip
        ax.set_xlabel("Sessions attended (number of clients at the foot of each)")
        ax.set_ylabel("Reliably improved (%)")
        ax.set_ylim(0, 100)
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)
        ax.set_title("Improvement by number of sessions (descriptive)", loc="left")
        return Figure(_svg(fig), alt)


def calibration(bins: pd.DataFrame, alt: str) -> Figure:
    """Observed vs predicted risk by bin of predicted risk (bins resting on too few people
    removed), with the line of perfect calibration."""
    with matplotlib.rc_context(STYLE):
        fig = MplFigure(figsize=(4.0, 3.8))
        ax = fig.subplots()
        ax.plot(
            [0, 100],
            [0, 100],
            color="0.5",
            linestyle="--",
            linewidth=1,
            label="perfect calibration",
        )
        for i, (model, g) in enumerate(bins.groupby("model", sort=False)):
            ax.plot(
                100 * g["mean_predicted"],
                100 * g["observed"],
                marker="o",
                color=PALETTE[i],
                label=model,
            )
        ax.set_xlabel("Predicted risk of poor outcome (%)")
        ax.set_ylabel("Observed (%)")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.legend(frameon=False)
        ax.set_title("Calibration", loc="left")
        return Figure(_svg(fig), alt)
