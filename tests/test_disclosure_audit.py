"""The attacker (pipeline/disclosure_audit.py): it must find what the old outputs leaked,
and find nothing in what disclosure control now publishes.

The leaky tables below are what the pipeline shared before shares were computed from the
published counts and curves were published at fixed weeks: a share of exact counts at 4
significant digits beside counts rounded to 5, and a Kaplan–Meier curve per event time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DisclosureParams
from pipeline.disclosure import SIGNIFICANT, count, safe_result_table
from pipeline.disclosure_audit import (
    Range,
    count_range,
    decimal_range,
    ratio_attack,
    ratio_solutions,
    sum_attack,
    survival_step_attack,
)

D = DisclosureParams()  # threshold 8, base 5
T, B = D.threshold, D.rounding_base


def _old_share_table(exact: pd.DataFrame) -> pd.DataFrame:
    """missing_by_group as it used to be shared: counts rounded, the share of exact counts."""
    return pd.DataFrame(
        {
            "group": exact["group"],
            "episodes": [f"{count(n, D).value:.0f}" for n in exact["episodes"]],
            "missing_final_score": [f"{count(k, D).value:.0f}" for k in exact["missing"]],
            "share_missing": [
                SIGNIFICANT % (k / n)
                for k, n in zip(exact["missing"], exact["episodes"], strict=True)
            ],
        }
    )


EXACT = pd.DataFrame(
    {"group": ["0", "1", "2+"], "episodes": [462, 946, 1156], "missing": [72, 155, 272]}
)


def test_ranges_by_hand():
    assert count_range("<8", T, B) == Range(1, 7)
    assert count_range("460", T, B) == Range(458, 462)
    assert count_range("10", T, B) == Range(8, 12)  # never below the threshold
    assert count_range("0", T, B) == Range(0, 0) and count_range("withheld", T, B) is None
    lo, hi = decimal_range("0.1558")
    assert lo == pytest.approx(0.15575) and hi == pytest.approx(0.15585)
    assert decimal_range("46%") == pytest.approx((0.455, 0.465))
    # 72 / 462 = 0.155844: within 458..462 and 68..72 only 72/462 prints as 0.1558
    ks, ns = ratio_solutions(decimal_range("0.1558"), Range(68, 72), Range(458, 462))
    assert ks == {72} and ns == {462}


def test_the_old_shares_give_the_exact_counts_back():
    leaky = _old_share_table(EXACT)
    found = list(ratio_attack(leaky, ["episodes", "missing_final_score"], "t", T, B))
    recovered = {(r.row, r.column, r.value) for r in found}
    # group 0 was published as 460 and 70: the attacker reads 462 and 72, as the exact table has
    assert (0, "episodes", 462) in recovered and (0, "missing_final_score", 72) in recovered
    truth = {"episodes": EXACT["episodes"], "missing_final_score": EXACT["missing"]}
    truth["share_missing × episodes"] = EXACT["missing"]  # the numerator, from the share alone
    for r in found:  # every recovery is right: the attacker is not guessing
        assert truth[r.column][r.row] == r.value


def test_shares_from_the_published_counts_give_nothing_back():
    table = pd.DataFrame(
        {
            "group": EXACT["group"],
            "episodes": EXACT["episodes"],
            "missing_final_score": EXACT["missing"],
            "share_missing": EXACT["missing"] / EXACT["episodes"],
        }
    )
    shared = safe_result_table(table, D, "missing_by_group")
    assert shared.loc[0, "share_missing"] == SIGNIFICANT % (70 / 460)
    assert not list(ratio_attack(shared, ["episodes", "missing_final_score"], "t", T, B))


def _km(n: int, seed: int) -> pd.DataFrame:
    """A Kaplan–Meier curve per event time (one dropout a day, some censored)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    time = rng.integers(1, 200, n).astype(float)
    event = (rng.random(n) < 0.4).astype(float)
    sf = sm.SurvfuncRight(time, event)
    return pd.DataFrame(
        {
            "group": "0",
            "time": sf.surv_times,
            "survival": sf.surv_prob,
            "ci_low": sf.surv_prob * 0.9,
            "ci_high": np.minimum(sf.surv_prob * 1.1, 1),
            "n_at_risk": sf.n_risk,
            "n_events": sf.n_events,
        }
    )


def _old_km_table(km: pd.DataFrame) -> pd.DataFrame:
    """dropout_km as it used to be shared: every event time, 4 digits, counts rounded."""
    out = km.copy().astype(object)
    for c in ("survival", "ci_low", "ci_high", "time"):
        out[c] = [SIGNIFICANT % v for v in km[c]]
    for c in ("n_at_risk", "n_events"):
        out[c] = [count(v, D).text("{:.0f}").replace(" ", "") for v in km[c]]
    return out


def test_the_old_survival_curve_gives_suppressed_events_back():
    km = _km(400, 1)
    found = list(survival_step_attack(_old_km_table(km), "km", T, B))
    assert len(found) > 20  # most single events recovered from the steps
    for r in found:
        assert km.loc[r.row, "n_events"] == r.value  # and each one is right


def test_the_shared_curve_gives_no_event_back():
    km = _km(400, 1)
    shared = safe_result_table(km, D, "dropout_km")
    assert set(shared.columns) >= {"week", "survival", "precision", "n_at_risk"}
    assert "time" not in shared and "n_events" not in shared  # no per-event-time row
    assert not list(survival_step_attack(shared, "km", T, B))
    # the curve stops before fewer than the threshold remain at risk
    assert (pd.to_numeric(shared["n_at_risk"]) >= T).all()


def test_a_group_is_recovered_from_the_total_less_the_other_groups():
    # exact 3 + 40 + 57 = 100: published <8, 40, 55 and a total of 100 → 3 is 1..7 and
    # 100±2 − (38..42) − (53..57) = 1..9: not pinned; with exact, unrounded others it is.
    table = pd.DataFrame({"group": ["a", "b", "c", "all"], "n": ["<8", "40", "57", "100"]})
    found = list(sum_attack(table, ["n"], "t", T, 1))  # base 1: counts are exact
    assert [(r.row, r.value) for r in found] == [(0, 3)]
    rounded = pd.DataFrame({"group": ["a", "b", "c", "all"], "n": ["<8", "40", "55", "100"]})
    assert not list(sum_attack(rounded, ["n"], "t", T, B))


def test_rows_dropped_are_recovered_from_a_card_that_rounds_only_two_of_three_counts():
    from pipeline.disclosure_audit import difference_attack

    # 2565 input, 2535 analysed, exactly 30 dropped: published unrounded, the note pins it
    exact = {"n_input": "2565", "n_analysed": "2535", "rows dropped (notes)": "<8"}
    assert not list(difference_attack(exact, "card", T, B))  # 30 is not 1..7: nothing fits
    leaky = {"n_input": "103", "n_analysed": "100", "rows dropped (notes)": "<8"}
    found = list(difference_attack(leaky, "card", T, 1))  # base 1: the counts are exact
    assert [(r.column, r.value) for r in found] == [("rows dropped (notes)", 3)]
    rounded = {"n_input": "105", "n_analysed": "100", "rows dropped (notes)": "<8"}
    assert not list(difference_attack(rounded, "card", T, B))


def test_html_tables_are_read_and_attacked_like_the_csvs(tmp_path):
    from pipeline.disclosure_audit import audit, html_tables

    page = """<table><tr><th>Group</th><th>Clients</th><th>Share</th></tr>
    <tr><td>no signs</td><td>460</td><td>15.58% (12–19%)</td></tr>
    <tr><td>all</td><td>1,155</td><td>20%</td></tr></table>"""
    (table,) = html_tables(page)
    assert table.loc[0].tolist() == ["no signs", "460", "15.58%"]
    assert table.loc[1, "Clients"] == "1,155"
    (tmp_path / "clinician.html").write_text(page, encoding="utf-8")
    # 15.58% of 458..462 clients is a whole number only for 462 (72 people)
    found = audit(tmp_path, T, B)
    assert {(r.column, r.value) for r in found} >= {("Clients", 462)}
    (tmp_path / "clinician.html").write_text(page.replace("15.58%", "15%"), encoding="utf-8")
    assert not audit(tmp_path, T, B)  # a whole percentage of 460 pins nothing


def test_metrics_rates_are_attacked_against_the_metrics_counts(tmp_path):
    import json

    from pipeline.disclosure_audit import audit

    # 103 of 300 → 0.343 from exact counts: only 103/300 prints so within 298..302
    leaky = {"n_poor_outcome_defined": 300, "rate_poor_outcome": round(103 / 300, 3)}
    (tmp_path / "metrics.json").write_text(json.dumps(leaky), encoding="utf-8")
    assert {(r.column, r.value) for r in audit(tmp_path, T, B)} >= {
        ("rate_poor_outcome × n_poor_outcome_defined", 103)
    }
    safe = {"n_poor_outcome_defined": 300, "rate_poor_outcome": round(105 / 300, 3)}
    (tmp_path / "metrics.json").write_text(json.dumps(safe), encoding="utf-8")
    assert not audit(tmp_path, T, B)  # the rate of the published counts (105 of 300)


def test_per_episode_files_under_the_shared_outputs_are_refused(tmp_path):
    from pipeline import catalog
    from pipeline.disclosure_audit import refused_files

    (tmp_path / "tables").mkdir()
    pd.DataFrame({"model": ["a"], "n_analysed": [40]}).to_csv(tmp_path / "tables/ok.csv")
    assert refused_files(tmp_path) == []
    pd.DataFrame({"client_id": ["c1"], "risk": [0.2]}).to_parquet(tmp_path / "tables/x.parquet")
    (tmp_path / "list.txt").write_text(f"{catalog.WORKLIST_MARKER}\nepisode,risk\n")
    found = refused_files(tmp_path)
    assert found == [
        "list.txt: a worklist (pseudonymous episode ids, service use only)",
        "tables/x.parquet: per-episode rows (column client_id)",
    ]


def test_a_model_file_or_a_worklist_inside_another_file_is_refused_and_stops_the_report(
    tmp_path,
):
    from pipeline import catalog
    from pipeline.disclosure_audit import refused_files
    from pipeline.stages.report import refuse_unshareable

    (tmp_path / "model.joblib").write_bytes(b"\x80\x04")
    (tmp_path / "notes.md").write_text(f"pasted:\n{catalog.WORKLIST_MARKER} (episode ids)\n")
    assert refused_files(tmp_path) == [
        "model.joblib: a fitted model (its coefficients rest on single clients)",
        "notes.md: holds a worklist (pseudonymous episode ids)",
    ]
    with pytest.raises(SystemExit, match=r"must never be shared: model\.joblib"):
        refuse_unshareable(tmp_path)
    refuse_unshareable(tmp_path / "empty")  # nothing there: no complaint
