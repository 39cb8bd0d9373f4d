"""The narrative is generated from the numbers: change the numbers, the sentences change."""

import pandas as pd

from pipeline.config import DisclosureParams
from pipeline.disclosure import rate
from pipeline.report.build import summary_sentences

D = DisclosureParams()


def _ctx(poor2: int, poor0: int, or2: float, inc2: float) -> dict:
    return {
        "poor_by_group": {
            "2+": {"cell": rate(poor2, 200, D)},
            "0": {"cell": rate(poor0, 200, D)},
        },
        "or_flags_2plus": pd.Series({"estimate": or2, "ci_low": or2 / 2, "ci_high": or2 * 2}),
        "or_missed_first": pd.Series({"estimate": 1.1, "ci_low": 0.8, "ci_high": 1.5}),
        "incidence_12w": {"2+": inc2, "0": 0.05},
        "prediction": {
            "auc_baseline": 0.61,
            "auc_engagement": 0.68,
            "auc_gain_ci_low": 0.02,
            "auc_gain_ci_high": 0.11,
        },
        "missing": None,
    }


def test_sentences_follow_the_numbers():
    a = " ".join(summary_sentences(_ctx(120, 40, 4.2, 0.31)))
    b = " ".join(summary_sentences(_ctx(90, 60, 1.7, 0.12)))
    assert "60% of clients with two or more" in a and "20% of clients with none" in a
    assert "45% of clients with two or more" in b and "30% of clients with none" in b
    assert "4.2 times" in a and "1.7 times" in b
    assert "31%" in a and "12%" in b
    assert "not clearly more or less likely" in a  # the missed-first interval includes 1
    assert a != b


def test_a_withheld_rate_is_not_narrated():
    ctx = _ctx(3, 40, 4.2, 0.31)  # 3 of 200: a suppressible count, so the rate is withheld
    text = " ".join(summary_sentences(ctx))
    assert "of clients with two or more early signs of disengagement finished" not in text
