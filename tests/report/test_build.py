"""The narrative is generated from the numbers and the params: change the numbers, the
sentences change; change the landmark window, the words change."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from pipeline.config import DisclosureParams, Params
from pipeline.disclosure import rate, share_of_published
from pipeline.report import wording
from pipeline.report.build import (
    curve_fit,
    dose_section,
    key_findings,
    of_100,
    risk_groups,
    summary_sentences,
    tie_bins,
)

D = DisclosureParams()


def _r(events: int, n: int) -> dict:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(events, n, method="wilson")
    return {"cell": rate(events, n, D), "ci_low": low, "ci_high": high}


def _ctx(poor2: int, poor0: int, inc2: float, days: int = 42) -> dict:
    return {
        "window": wording.Window(days),
        "instrument_name": "PHQ-9",
        "primary": None,
        "poor_by_group": {"2+": _r(poor2, 200), "0": _r(poor0, 200)},
        "sign_rates": {"flag_missed_first_appointment": {"yes": _r(90, 200), "no": _r(40, 200)}},
        "flag_rows": [
            {
                "flag": "flag_missed_first_appointment",
                "label": "Missed the first appointment",
                "estimate": 1.1,
                "ci_low": 0.8,
                "ci_high": 1.5,
            }
        ],
        "incidence_horizon": {
            "2+": {"incidence": inc2, "ci_low": inc2 - 0.03, "ci_high": inc2 + 0.03},
            "0": {"incidence": 0.05, "ci_low": 0.03, "ci_high": 0.08},
        },
        "horizon_weeks": 12,
        "population_poor": "outcome group, 400 clients",
        "population_dropout": "dropout group, 900 clients",
        "of_100": None,
    }


def test_sentences_follow_the_numbers_with_their_intervals():
    a = " ".join(summary_sentences(_ctx(120, 40, 0.31)))
    b = " ".join(summary_sentences(_ctx(90, 60, 0.12)))
    assert "60% (53–67%) of clients with two or more" in a and "20% (15–26%) of clients" in a
    assert "45% (38–52%) of clients with two or more" in b and "30% (24–37%) of clients" in b
    assert "31% (28–34%)" in a and "12% (9–15%)" in b
    assert "outcome group, 400 clients" in a  # the population is named
    assert a != b


def test_an_action_is_offered_only_where_the_data_show_the_association():
    found = key_findings(_ctx(120, 40, 0.31))
    missed = next(f["action"] for f in found if "who missed their first appointment," in f["text"])
    assert missed and "reminders" in missed  # 45% (38–52%) vs 20% (15–26%): apart
    ctx = _ctx(120, 40, 0.31)
    ctx["sign_rates"] = {"flag_missed_first_appointment": {"yes": _r(45, 200), "no": _r(40, 200)}}
    unclear = [f for f in key_findings(ctx) if "who missed their first appointment," in f["text"]]
    assert unclear[0]["action"] is None  # overlapping intervals, OR interval includes 1
    dropout = next(f for f in found if f["text"].startswith("By twelve"))
    assert "review call" in dropout["action"]  # 31% (28–34%) against 5% (3–8%)
    close = _ctx(120, 40, 0.07)  # 7% (4–10%) against 5% (3–8%): no action
    assert next(f for f in key_findings(close) if f["text"].startswith("By"))["action"] is None


def test_the_key_finding_leads_with_the_sign_most_clearly_associated():
    ctx = _ctx(120, 40, 0.31)
    ctx["sign_rates"]["flag_no_client_goal"] = {"yes": _r(100, 200), "no": _r(50, 200)}
    ctx["flag_rows"].append(
        {"flag": "flag_no_client_goal", "label": "No goal of their own",
         "estimate": 2.4, "ci_low": 1.6, "ci_high": 3.5}
    )  # fmt: skip
    found = next(f for f in key_findings(ctx) if "early sign most strongly" in f["text"])
    assert "of clients with no goal of their own, 50% (43–57%)" in found["text"]
    assert "in the client's own words" in found["action"]
    # none clearly associated: missing the first appointment, said as not clearly different
    plain = _ctx(120, 40, 0.31)
    text = " ".join(summary_sentences(plain))
    assert "Of clients who missed their first appointment, 45% (38–52%)" in text
    assert "odds were not clearly different" in text


def test_a_withheld_rate_is_not_narrated():
    ctx = _ctx(3, 40, 0.31)  # 3 of 200: a suppressible count, so the rate is withheld
    text = " ".join(summary_sentences(ctx))
    assert "of clients with two or more early signs of disengagement" not in text


def test_the_landmark_window_sets_the_words():
    six = " ".join(summary_sentences(_ctx(120, 40, 0.31, days=42)))
    four = " ".join(summary_sentences(_ctx(120, 40, 0.31, days=28)))
    assert "the first six weeks" in six and "week 18 from the first appointment" in six
    assert "the first four weeks" in four and "week 16 from the first appointment" in four
    assert "six weeks" not in four
    assert wording.duration(45) == "45 days" and wording.duration(7) == "one week"
    assert wording.parts(10) == "tenths" and wording.parts(7) == "7 equal groups"


def test_risk_groups_are_exact_fifths_of_predicted_risk():
    """The "of 100 in the lowest fifth" number is the lowest fifth's own share, not an
    average of the calibration bins that happened to be shown."""
    rng = np.random.default_rng(3)
    n = 1000
    risk = rng.uniform(size=n)
    poor = (rng.uniform(size=n) < risk).astype(float)
    ids = [f"e{i}" for i in range(n)]
    predictions = pd.DataFrame({"episode_id": ids, "engagement (logistic)": risk})
    frame = pd.DataFrame({"episode_id": ids, "poor_outcome": poor})
    groups = risk_groups(predictions, frame, 5)
    order = np.argsort(risk)
    lowest, highest = poor[order[:200]], poor[order[-200:]]
    assert groups["n"].tolist() == [200] * 5
    assert groups["events"].iloc[0] == lowest.sum() and groups["events"].iloc[-1] == highest.sum()
    said = of_100(groups, Params())
    # shared as the share of the published (rounded) counts, the disclosure rule
    assert said["low"]["per_100"] == round(100 * share_of_published(lowest.sum(), 200, D))
    assert said["high"]["per_100"] == round(100 * share_of_published(highest.sum(), 200, D))
    assert abs(said["low"]["per_100"] - 100 * lowest.mean()) <= 100 * 2.5 / 200 + 0.5
    assert said["low"]["ci_low"] <= said["low"]["per_100"] <= said["low"]["ci_high"]


def test_tie_bins_never_split_a_value():
    values = pd.Series([1.0] * 59 + list(np.linspace(0, 0.98, 41)))
    bins = tie_bins(values)
    assert values.groupby(bins).nunique().loc[bins[0]] == 1  # 1.0 alone
    for _, g in values.groupby(bins):  # no value in two bins
        assert not set(g) & set(values[~values.index.isin(g.index)])
    even = pd.Series(np.arange(300, dtype=float))
    assert tie_bins(even).value_counts().tolist() == [100, 100, 100]
    assert tie_bins(pd.Series([np.nan, 1.0, 2.0])).isna().iloc[0]


def test_the_dose_curve_is_drawn_only_where_it_fits():
    sessions = np.arange(2, 12)
    n = np.full(len(sessions), 200)
    p_fit = np.linspace(0.3, 0.7, len(sessions))
    curve = pd.DataFrame({"sessions": sessions.astype(float), "share_improved": p_fit,
                          "ci_low": p_fit - 0.05, "ci_high": p_fit + 0.05})  # fmt: skip
    good = pd.DataFrame({"sessions": sessions, "episodes": n, "improved": np.round(n * p_fit)})
    bad = good.assign(improved=np.round(n * p_fit[::-1]))  # falls where the curve rises
    stat = ((bad["improved"] - n * p_fit) ** 2 / (n * p_fit * (1 - p_fit))).sum()
    fit = curve_fit(bad, curve)
    assert fit["chisq"] == pytest.approx(stat) and fit["df"] == len(sessions) - 2
    assert fit["p"] == pytest.approx(chi2.sf(stat, len(sessions) - 2))
    params = Params()
    tables = {"dose_response_observed": bad, "dose_response_curve": curve}
    assert dose_section(tables, params)["dose_curve"] is None
    tables["dose_response_observed"] = good
    shown = dose_section(tables, params)
    assert shown["dose_curve"] is not None and shown["dose_fit"]["p"] > 0.05
    assert {"ci_low", "ci_high", "n"} <= set(shown["dose_observed"].columns)
