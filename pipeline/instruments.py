"""Registry of outcome measures: range, direction, caseness and reliable change.

Reliable change follows Jacobson & Truax (1991): RC = 1.96 · SD · sqrt(2 · (1 − r)).
Where a reference SD and reliability are published we compute that criterion and keep it
visible next to the service convention actually used for classification (NHS Talking
Therapies uses 6 points for PHQ-9 and 4 for GAD-7). See docs/methods.md, "Instruments".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Instrument:
    name: str
    minimum: float
    maximum: float
    higher_is_worse: bool
    caseness: float
    """Clinical cut-off. At or above it is 'at caseness' when higher is worse; strictly below
    it is clinical when higher is better (ORS)."""
    reliable_change: float
    """Points of change counted as reliable: the convention used for classification."""
    reliable_change_source: str
    reference_sd: float | None = None
    reliability: float | None = None
    psychometrics_source: str = ""
    integer_scores: bool = True
    """The total is a sum of integer item scores, so a fractional total is an error (rule
    ``fractional_score``); False for visual-analogue scales such as ORS (cm, one decimal)."""

    @property
    def jacobson_truax_rc(self) -> float | None:
        """1.96 · SD · sqrt(2 · (1 − r)) from the reference SD and reliability, if both known."""
        if self.reference_sd is None or self.reliability is None:
            return None
        return 1.96 * self.reference_sd * math.sqrt(2.0 * (1.0 - self.reliability))


# Sources are the rows of the project's literature notes (docs/literature.md).
INSTRUMENTS: dict[str, Instrument] = {
    inst.name: inst
    for inst in (
        Instrument(
            "PHQ-9",
            0,
            27,
            True,
            10,
            6,
            "NHS Talking Therapies convention (secondary source; lit. §7a)",
            reference_sd=5.5,
            reliability=0.89,
            psychometrics_source="SD: NHS TT 2022-23 intake; alpha: Kroenke 2001 (lit. §8b)",
        ),
        Instrument(
            "GAD-7",
            0,
            21,
            True,
            8,
            4,
            "NHS Talking Therapies convention (secondary source; lit. §7a)",
            reference_sd=4.5,
            reliability=0.89,
            psychometrics_source="SD: NHS TT 2022-23 intake; alpha: secondary (lit. §8b)",
        ),
        Instrument(
            "BDI-II",
            0,
            63,
            True,
            14,
            9,
            "approximate, from SD and reliability (lit. §8b; reference SD not read)",
            reliability=0.92,
            psychometrics_source="alpha .92 outpatients (lit. §8b)",
        ),
        Instrument(
            "CORE-10",
            0,
            40,
            True,
            11,
            6,
            "Barkham et al. 2013, RCI at 90% CI (lit. §8b)",
            reliability=0.90,
            psychometrics_source="alpha .90, Barkham et al. 2013 (lit. §8b)",
        ),
        Instrument("WSAS", 0, 40, True, 10, 8, "approximate (data contract table)"),
        Instrument(
            "ORS",
            0,
            40,
            False,
            25,
            5,
            "commonly cited, not verified (lit. §8b)",
            reliability=0.91,
            psychometrics_source="alpha .91, Moggia et al. 2018 (lit. §8b)",
            integer_scores=False,
        ),
    )
}


def get_instrument(name: str) -> Instrument:
    try:
        return INSTRUMENTS[name]
    except KeyError:
        known = ", ".join(INSTRUMENTS)
        raise KeyError(f"Unknown instrument {name!r}; known instruments: {known}") from None


def at_caseness(instrument: str, scores: pd.Series | np.ndarray) -> np.ndarray:
    """Boolean array: score is in the clinical range. Missing scores give False."""
    inst = get_instrument(instrument)
    values = np.asarray(scores, dtype=float)
    with np.errstate(invalid="ignore"):
        if inst.higher_is_worse:
            return values >= inst.caseness
        return values < inst.caseness


def improvement(instrument: str, baseline, final) -> np.ndarray:
    """Change oriented so that positive = better, whatever the instrument's direction."""
    inst = get_instrument(instrument)
    diff = np.asarray(baseline, dtype=float) - np.asarray(final, dtype=float)
    return diff if inst.higher_is_worse else -diff


def reliable_change(instrument: str, baseline, final) -> np.ndarray:
    """+1 reliable improvement, −1 reliable deterioration, 0 no reliable change, NaN missing.

    A change of exactly the criterion counts as reliable (NHS TT: 'a decrease of 6 or more').
    """
    inst = get_instrument(instrument)
    imp = improvement(instrument, baseline, final)
    out = np.where(
        imp >= inst.reliable_change, 1.0, np.where(imp <= -inst.reliable_change, -1.0, 0.0)
    )
    return np.where(np.isnan(imp), np.nan, out)
