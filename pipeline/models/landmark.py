"""Landmark analysis: survival from a fixed time, with exposures known by that time.

An exposure measured over follow-up (how long someone stayed in treatment, how many sessions
they attended) is partly caused by the outcome: a person who relapses, dies or drops out
early cannot go on accumulating exposure. Comparing people on such an exposure from time
zero credits the exposure with the survival time it needed to accrue (immortal-time bias).
The landmark method fixes a time ``at``, keeps only people still under observation and free
of the event at ``at``, measures the exposure with information available by then, and
counts time from ``at`` onwards (Anderson, Cain & Gelber 1983; van Houwelingen 2007).
"""

from __future__ import annotations

import pandas as pd

from pipeline.models.tidy import ModelError


def landmark(data: pd.DataFrame, time: str, at: float, name: str = "time_from_landmark"):
    """Rows whose follow-up ``time`` is beyond ``at`` (event-free and uncensored at ``at``),
    with ``name`` = ``time - at``. Never mutates ``data``.

    A row with ``time == at`` had its event (or censoring) at the landmark itself, so it is
    not at risk afterwards and is dropped.
    """
    if at < 0:
        raise ModelError(f"landmark: the landmark time must be >= 0 (got {at})")
    if time not in data:
        raise ModelError(f"landmark: column {time!r} not in the data")
    t = pd.to_numeric(data[time], errors="raise").astype(float)
    if t.isna().any():
        raise ModelError(
            f"landmark: {int(t.isna().sum())} row(s) have no {time!r}; whether they were "
            "still at risk at the landmark is unknown, so drop or impute them first"
        )
    kept = data[t > at].copy()
    kept[name] = t[t > at] - at
    if kept.empty:
        raise ModelError(f"landmark: no one is still under observation after time {at}")
    return kept
