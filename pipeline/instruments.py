"""Registry of outcome measures: range, direction, caseness, reliable change and norms.

Reliable change follows Jacobson & Truax (1991): RC = 1.96 · SD · sqrt(2 · (1 − r)).
Where a reference SD and reliability are published we compute that criterion and keep it
visible next to the service convention actually used for classification (NHS Talking
Therapies uses 6 points for PHQ-9 and 4 for GAD-7). See docs/methods.md, "Instruments",
and docs/clinical-significance.md.

The built-in instruments are ``BUILTIN_INSTRUMENTS``. A service registers its own in
``params.yaml`` (``instruments:``, typed by ``pipeline.config.InstrumentParams``); the
stage runner then makes the registry of built-ins plus those the *active* one for the
stage's duration (``use_registry``), so the contract, ingest's range rules, the outcome
table and the report see them. The active registry is a context variable: it is set and
restored by a ``with`` block, never left behind (tests cannot leak it into each other).
Every function that looks an instrument up also accepts an ``Instrument`` itself, or an
explicit ``registry``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

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
    dysfunctional_mean: float | None = None
    """Mean of a clinical (dysfunctional) population, for the cut-offs a and c of
    ``pipeline.clinical_significance``; None: not published in docs/literature.md."""
    dysfunctional_sd: float | None = None
    functional_mean: float | None = None
    """Mean of a functional (non-clinical) population, for the cut-offs b and c."""
    functional_sd: float | None = None
    norms_source: str = ""

    @property
    def jacobson_truax_rc(self) -> float | None:
        """1.96 · SD · sqrt(2 · (1 − r)) from the reference SD and reliability, if both known."""
        if self.reference_sd is None or self.reliability is None:
            return None
        return jacobson_truax_criterion(self.reference_sd, self.reliability)


def jacobson_truax_criterion(sd: float, reliability: float, critical: float = 1.96) -> float:
    """Points of change that are reliable by Jacobson & Truax (1991): critical · S_diff,
    S_diff = SD · sqrt(2 · (1 − r)). SD 5.5, r .89: 1.96 · 5.5 · sqrt(0.22) = 5.06."""
    return critical * sd * math.sqrt(2.0 * (1.0 - reliability))


# Sources are the rows of the project's literature notes (docs/literature.md). Norms for
# the cut-offs are given only where a published figure is there: the intake mean and SD of
# clients at caseness (a dysfunctional population; lit. §7b, secondary) for PHQ-9 and
# GAD-7. No functional-population norms are in docs/literature.md for any built-in, so
# functional_mean/sd stay None (cut-offs b and c need them to be registered).
_NHS_INTAKE = "dysfunctional: NHS TT 2022-23 caseness completers at intake (lit. §7b, secondary)"
_BUILTINS = (
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
        dysfunctional_mean=15.4,
        dysfunctional_sd=5.5,
        norms_source=_NHS_INTAKE,
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
        dysfunctional_mean=14.0,
        dysfunctional_sd=4.5,
        norms_source=_NHS_INTAKE,
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


class InstrumentRegistry(Mapping[str, Instrument]):
    """An immutable name → ``Instrument`` mapping, in registration order (built-ins first).

    Build the pipeline's with ``pipeline.config.instrument_registry(params)``; activate it
    with ``use_registry``. Picklable, so it travels to Dask workers (``in_registry``).
    """

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        entries: dict[str, Instrument] = {}
        for inst in instruments:
            if inst.name in entries:
                raise ValueError(f"instrument {inst.name!r} is registered twice")
            entries[inst.name] = inst
        self._entries = entries

    def __getitem__(self, name: str) -> Instrument:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"InstrumentRegistry({', '.join(self._entries)})"

    def with_instruments(self, extra: Iterable[Instrument]) -> InstrumentRegistry:
        """This registry with ``extra`` added after it (a name already here is an error)."""
        return InstrumentRegistry([*self._entries.values(), *extra])


BUILTIN_INSTRUMENTS = InstrumentRegistry(_BUILTINS)
"""PHQ-9, GAD-7, BDI-II, CORE-10, WSAS and ORS: the registry when none is active."""

_ACTIVE: ContextVar[InstrumentRegistry] = ContextVar(
    "active_instrument_registry", default=BUILTIN_INSTRUMENTS
)


def active_registry() -> InstrumentRegistry:
    """The registry in force: the one ``use_registry`` set, else the built-ins."""
    return _ACTIVE.get()


@contextmanager
def use_registry(registry: InstrumentRegistry) -> Iterator[InstrumentRegistry]:
    """Make ``registry`` the active one inside the ``with`` block; the previous one is
    restored on leaving it, also on an error (``contextvars``: per thread and task)."""
    token = _ACTIVE.set(registry)
    try:
        yield registry
    finally:
        _ACTIVE.reset(token)


T = TypeVar("T")


def in_registry(registry: InstrumentRegistry, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with ``registry`` active: what a Dask task runs, since a
    worker process does not inherit the client's context (``client.submit(in_registry,
    active_registry(), fn, ...)``)."""
    with use_registry(registry):
        return fn(*args, **kwargs)


class _ActiveView(Mapping[str, Instrument]):
    """``INSTRUMENTS``: always the active registry (the built-ins outside a stage)."""

    def __getitem__(self, name: str) -> Instrument:
        return active_registry()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(active_registry())

    def __len__(self) -> int:
        return len(active_registry())

    def __repr__(self) -> str:
        return repr(active_registry())


INSTRUMENTS: Mapping[str, Instrument] = _ActiveView()
"""The active registry as a mapping (kept for every existing ``INSTRUMENTS[...]`` call)."""


def get_instrument(
    name: str | Instrument, registry: Mapping[str, Instrument] | None = None
) -> Instrument:
    """The instrument called ``name`` in ``registry`` (default: the active one); an
    ``Instrument`` passed in is returned as it is."""
    if isinstance(name, Instrument):
        return name
    known = active_registry() if registry is None else registry
    try:
        return known[name]
    except KeyError:
        raise KeyError(
            f"Unknown instrument {name!r}; known instruments: {', '.join(known)} "
            "(register others under instruments: in params.yaml)"
        ) from None


def at_caseness(instrument: str | Instrument, scores: pd.Series | np.ndarray) -> np.ndarray:
    """Boolean array: score is in the clinical range. Missing scores give False."""
    inst = get_instrument(instrument)
    values = np.asarray(scores, dtype=float)
    with np.errstate(invalid="ignore"):
        if inst.higher_is_worse:
            return values >= inst.caseness
        return values < inst.caseness


def improvement(instrument: str | Instrument, baseline, final) -> np.ndarray:
    """Change oriented so that positive = better, whatever the instrument's direction."""
    inst = get_instrument(instrument)
    diff = np.asarray(baseline, dtype=float) - np.asarray(final, dtype=float)
    return diff if inst.higher_is_worse else -diff


def reliable_change(instrument: str | Instrument, baseline, final) -> np.ndarray:
    """+1 reliable improvement, −1 reliable deterioration, 0 no reliable change, NaN missing.

    A change of exactly the criterion counts as reliable (NHS TT: 'a decrease of 6 or more').
    """
    inst = get_instrument(instrument)
    imp = improvement(inst, baseline, final)
    out = np.where(
        imp >= inst.reliable_change, 1.0, np.where(imp <= -inst.reliable_change, -1.0, 0.0)
    )
    return np.where(np.isnan(imp), np.nan, out)
