"""Headline metrics of the dropout analysis over time, by hand."""

import numpy as np
import pandas as pd

from pipeline import catalog
from pipeline.config import DisclosureParams
from pipeline.report.metrics import dropout_over_time

D = DisclosureParams()
MAIN = next(m for m in catalog.EFFECT_METRICS if m.name == "hr_index")


def _period(start, end, estimate, events, status="fitted"):
    return {
        "model": f"dropout by period: {start}",
        "term": MAIN.term,
        "estimate": estimate,
        "ci_low": estimate - 0.1,
        "ci_high": estimate + 0.1,
        "status": status,
        "start_days": start,
        "end_days": end,
        "n_events": events,
    }


def test_dropout_over_time_names_each_period_and_drops_the_sparse_or_failed():
    tables = {
        "dropout_proportional_hazards": pd.DataFrame(
            [
                {"model": MAIN.model, "term": MAIN.term, "p": 3e-7},
                {"model": MAIN.model, "term": "GLOBAL", "p": 1e-9},
            ]
        ),
        "dropout_by_period": pd.DataFrame(
            [
                _period(0, 28, 1.34, 408),
                _period(28, 84, 0.92, 432),
                _period(84, 120, 0.77, D.threshold - 1),  # too few events to share
                _period(120, np.nan, 0.6, 100),
                _period(200, np.nan, 0.5, 100, status="not fitted"),
            ]
        ),
    }
    out = dropout_over_time(tables, D)
    assert out["hr_index_ph_p"] == 3e-7
    assert out["hr_index_days_0_28"] == 1.34 and out["hr_index_days_28_84_ci_high"] == 1.02
    assert out["hr_index_days_120_plus"] == 0.6
    assert not any(k.startswith(("hr_index_days_84", "hr_index_days_200")) for k in out)
    assert dropout_over_time({}, D) == {}
