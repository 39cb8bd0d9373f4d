"""The report stage on a cohort built to contain small groups: disclosure scan of every
output meant for people, determinism, and narrative generated from the numbers."""

import json
import re

import pandas as pd

from pipeline.config import Params
from pipeline.io import read_interim
from pipeline.stages import report

THRESHOLD = Params().disclosure.threshold


def _ids(root) -> set[str]:
    tables, _, _ = read_interim(root / "data/interim")
    ids = set()
    for table in tables.values():
        for column in table.columns:
            if column.endswith("_id"):
                ids |= set(table[column].dropna().astype(str))
    return ids


def _people_outputs(root):
    reports = root / "reports"
    return [p for p in reports.rglob("*") if p.is_file()]


def test_no_output_for_people_holds_an_input_id(reported):
    root, _, _ = reported
    ids = _ids(root)
    assert len(ids) > 1000
    token = re.compile(r"[A-Za-z0-9_\-]+")
    for path in _people_outputs(root):
        words = set(token.findall(path.read_text(encoding="utf-8", errors="ignore")))
        leaked = words & ids
        assert not leaked, (path, sorted(leaked)[:5])


def _count_ok(value: str) -> bool:
    value = value.replace(",", "").strip()
    if value in {"", "—", f"<{THRESHOLD}", f"< {THRESHOLD}"}:
        return True
    return value.isdigit() and (int(value) == 0 or int(value) >= THRESHOLD) and int(value) % 5 == 0


def test_every_count_in_every_output_is_suppressed_or_rounded(reported):
    root, _, _ = reported
    from pipeline.catalog import TABLES

    count_columns = {c for t in TABLES for c in t.counts}

    checked = 0
    for path in _people_outputs(root):
        if path.suffix == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            for column in table.columns:
                if column in count_columns or column.startswith(("n_analysed_", "n_input_")):
                    assert all(_count_ok(v) for v in table[column]), (path, column)
                    checked += len(table)
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            for key in ("n_input", "n_analysed", "n_groups", "events"):
                if key in data and data[key] is not None:
                    assert _count_ok(str(data[key])), (path, key)
                    checked += 1
            for key, value in data.items() if isinstance(data, dict) else []:
                if key.startswith("n_") and isinstance(value, int | float):
                    assert _count_ok(str(int(value))), (path, key)
        elif path.suffix == ".html":
            html = path.read_text(encoding="utf-8")
            for cell in re.findall(r'<(?:td|span) class="(?:num|n)">([^<%]*?)</', html):
                if re.fullmatch(r"[\d,]+", cell.strip()):
                    assert _count_ok(cell), (path.name, cell)
                    checked += 1
    assert checked > 100


def test_small_groups_exist_in_the_cohort_and_are_suppressed(reported):
    root, _, _ = reported
    # The small cohort's numbers at risk fall below the threshold late in follow-up.
    exact = pd.read_csv(root / "data/results/models/tables/dropout_at_risk.csv")
    assert ((exact["n_at_risk"] > 0) & (exact["n_at_risk"] < THRESHOLD)).any()
    shared = pd.read_csv(root / "reports/tables/models/dropout_at_risk.csv", dtype=str)
    assert (shared["n_at_risk"] == f"<{THRESHOLD}").any()


def test_reports_are_self_contained_and_ordered(reported):
    root, _, _ = reported
    html = (root / "reports/clinician.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched
    order = [html.index(h) for h in ("Key findings", "Who is counted", "at a glance",
                                      "Dropping out", "Can we tell", "Four aspects", "Limitations",
                                      "Data quality")]  # fmt: skip
    assert order == sorted(order)
    assert html.count("<svg") >= 3 and html.count("<figcaption>") == html.count("<svg")
    # Headings and findings describe associations; causal verbs appear only in the caveat.
    headings = " ".join(re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", html)).lower()
    findings = html[html.index('<ol class="key">') : html.index("</ol>")].lower()
    for word in ("cause", "leads to", "results in", "improves outcome", "effect of"):
        assert word not in headings and word not in findings, word


def test_same_inputs_same_html_apart_from_the_time_stamp(reported):
    root, params, _ = reported
    first = (root / "reports/clinician.html").read_text(encoding="utf-8")
    tech = (root / "reports/technical.html").read_text(encoding="utf-8")
    report.run(params, root, generated="2030-12-31 23:59 UTC")
    again = (root / "reports/clinician.html").read_text(encoding="utf-8")
    assert again.replace("2030-12-31 23:59 UTC", "2026-01-01 00:00 UTC") == first
    tech2 = (root / "reports/technical.html").read_text(encoding="utf-8")
    assert tech2.replace("2030-12-31 23:59 UTC", "2026-01-01 00:00 UTC") == tech


def test_the_declared_primary_analysis_leads_metrics_and_both_reports(reported):
    """params.yaml's analysis.primary is the first key of metrics.json, the first key
    finding of the clinician report and the first section of the technical report, with
    the estimate of its model's table; the secondary family is Holm-adjusted."""
    root, params, _ = reported
    plan = params.analysis
    metrics = json.loads((root / "reports/metrics.json").read_text(encoding="utf-8"))
    assert next(iter(metrics)) == "primary_analysis"
    assert metrics["primary_analysis"] == plan.primary.label
    exact = pd.read_csv(root / "data/results/models/tables/declared_analyses.csv")
    first = exact.iloc[0]
    assert first["role"] == "primary" and first["analysis"] == plan.primary.label
    assert metrics["primary_estimate"] == round(first["estimate"], 6)
    assert metrics["primary_ci_low"] < metrics["primary_estimate"] < metrics["primary_ci_high"]
    secondary = exact[exact["role"] == "secondary"]
    assert (secondary["p_family"] >= secondary["p_value"] - 1e-15).all()
    assert metrics["secondary_tests"] == len(secondary)

    clinician = (root / "reports/clinician.html").read_text(encoding="utf-8")
    findings = re.findall(r"<li>(.*?)</li>", clinician[clinician.index('<ol class="key">') :])
    assert findings[0].startswith("Main question, set before the analysis")
    assert f"{abs(first['estimate']):.1f} points" in findings[0]

    technical = (root / "reports/technical.html").read_text(encoding="utf-8")
    h2 = re.findall(r"<h2[^>]*>(.*?)</h2>", technical)
    assert h2[0] == "Analysis plan and the primary result"
    assert technical.index("Analysis plan") < technical.index("Headline metrics")
    assert "Holm" in technical[: technical.index("Headline metrics")]


def test_clients_below_caseness_are_reported_apart_not_scored_poor(reported):
    root, _, _ = reported
    outcomes = pd.read_parquet(root / "data/processed/outcomes.parquet")
    below = outcomes["primary_case_start"].astype("boolean").eq(False).fillna(False)
    assert below.any()
    assert outcomes.loc[below, "poor_outcome"].isna().all()
    assert outcomes.loc[below, "final_score"].isna().all()
    table = pd.read_csv(root / "data/results/models/tables/baseline_severity.csv")
    assert table["baseline"].tolist() == ["at caseness", "below caseness"]
    assert table.set_index("baseline").loc["below caseness", "in_outcome_population"] == False  # noqa: E712
    technical = (root / "reports/technical.html").read_text(encoding="utf-8")
    assert "baseline_severity" in technical


def test_the_technical_report_shows_the_nhs_rules_beside_jacobson_truax(reported):
    root, _, _ = reported
    exact = pd.read_csv(root / "data/results/models/tables/clinical_significance.csv")
    phq = exact[exact["instrument"] == "PHQ-9"]
    assert {"points", "JT", "GLN", "HLL", "EN", "NK", "HA"} <= set(phq["method"])
    # the points rule's counts are the outcome table's, among those who finished a course
    # at caseness at baseline
    outcomes = pd.read_parquet(root / "data/processed/outcomes.parquet")
    pop = (
        outcomes["finished_course"].astype(bool)
        & outcomes["phq9_last"].notna()
        & outcomes["phq9_case_start"].astype("boolean").fillna(False).astype(bool)
    )
    points = phq[phq["method"] == "points"].set_index("category")["clients"]
    assert points.sum() == pop.sum()
    assert points["reliable_recovery"] == outcomes.loc[pop, "phq9_reliable_recovery"].sum()
    # JT's criterion is 5.06 points: on whole scores the same reliable improvements
    jt = phq[phq["method"] == "JT"].set_index("category")["clients"]
    assert (
        jt["recovered"] + jt["improved"]
        == points.drop(["no_reliable_change", "reliable_deterioration"]).sum()
    )
    technical = (root / "reports/technical.html").read_text(encoding="utf-8")
    assert "Clinical significance: the NHS rules beside Jacobson" in technical
    assert "clinical_significance_settings" in technical
    shared = pd.read_csv(root / "reports/tables/models/clinical_significance.csv")
    assert len(shared) == len(exact)  # shared, with counts rounded or suppressed
