"""Provenance from the actual run: what the reports say about the data comes from the ingest
report of the run being reported (never from ``params.paths``), the code version from the
package's own folder (whatever the output root), and blocks the export does not record
are said to be not in this export, never shown as zero."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import pipeline
from pipeline import __version__
from pipeline.config import Params
from pipeline.report.build import absent_records, export_info
from pipeline.stages import report

from .conftest import FAST, NOT_IN_NHSTT, TABLES_NOT_IN_NHSTT

GENERATED = "2026-01-01 00:00 UTC"
SERVICE_EXPORT = {"source": "export", "layout": "contract", "mapping": None, "manifest": None}
SYNTHETIC_EXPORT = {
    "source": "synthetic",
    "layout": "contract",
    "mapping": None,
    "manifest": {
        "source": "synthetic",
        "extract_date": "2025-03-31",
        "generator": {"name": "pipeline.synthetic", "seed": 20261127},
    },
}
NOT_RECORDED = (
    "session alliance ratings",
    "who set the agenda",
    "homework",
    "goals",
    "between-session contacts",
)


def _copy_run(source: Path, target: Path) -> None:
    """The inputs of the report stage, copied to another output root."""
    for sub in ("data/interim", "data/processed", "data/results"):
        shutil.copytree(source / sub, target / sub)
    (target / "reports").mkdir(parents=True)
    shutil.copy(source / "reports/metrics.json", target / "reports/metrics.json")


@pytest.fixture
def rerun(reported, tmp_path):
    """Report the small run again from a copy in a temporary output root (outside the
    repository), with its ingest report edited: ``edit(dict) -> dict``."""
    source, _, _ = reported

    def build(edit, params: Params | None = None, name: str = "run"):
        root = tmp_path / name
        _copy_run(source, root)
        path = root / "data/interim/ingest_report.json"
        ingest_report = edit(json.loads(path.read_text(encoding="utf-8")))
        path.write_text(json.dumps(ingest_report), encoding="utf-8")
        report.run(params or Params(**FAST), root, generated=GENERATED)
        clinician, technical = (
            (root / f"reports/{name}.html").read_text(encoding="utf-8")
            for name in ("clinician", "technical")
        )
        return clinician, technical, ingest_report

    return build


def _text(html: str) -> str:
    """What a reader sees: the page without its style and figures' drawing code."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"<svg.*?</svg>", "", html, flags=re.S)


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


# --- (a) a service's export is never called synthetic; its files, hashes and date are shown


def test_a_service_export_is_never_called_synthetic_and_its_input_is_listed(rerun):
    # Params() point paths.input_dir at the synthetic cohort's folder, as in the project
    # folder: what the report says must not depend on them.
    def service(r):
        return r | {"export": SERVICE_EXPORT, "extract_date_source": "given for this run"}

    clinician, technical, ingest_report = rerun(service)
    assert "synthetic" not in clinician.lower()
    assert "synthetic" not in technical.lower()
    assert "the service&#39;s export (extract date" in clinician
    assert len(ingest_report["input_files"]) >= 3
    for name, digest in ingest_report["input_files"].items():
        assert re.search(rf"<td>{re.escape(name)}</td><td><code>{digest}</code>", technical)
    assert f"{ingest_report['extract_date']} (given for this run)" in technical
    assert "contract (the pipeline" in technical  # the layout


def test_an_ingest_report_without_export_is_a_service_export(rerun):
    clinician, technical, _ = rerun(lambda r: {k: v for k, v in r.items() if k != "export"})
    assert "synthetic" not in clinician.lower() and "synthetic" not in technical.lower()


def test_the_layout_and_mapping_file_come_from_the_ingest_report(rerun):
    mapped = SERVICE_EXPORT | {"layout": "mapping", "mapping": "pcoms_fit.yaml"}
    _, technical, _ = rerun(lambda r: r | {"export": mapped})
    assert "mapping (a user-defined mapping), mapping file pcoms_fit.yaml" in technical


# --- (b) the synthetic cohort is still said to be synthetic, whatever params.paths say


def test_the_synthetic_cohort_is_still_called_synthetic(rerun):
    params = Params(**FAST, paths={"input_dir": "somewhere/else"})
    clinician, technical, _ = rerun(lambda r: r | {"export": SYNTHETIC_EXPORT}, params)
    assert "from the bundled synthetic cohort" in clinician
    assert "These figures come from the bundled <strong>synthetic</strong>" in clinician
    assert "<td>input</td><td><code>synthetic cohort</code>" in technical
    assert "20261127" in technical  # the manifest's generator, from the ingest report


def test_export_info_reads_only_the_ingest_report():
    assert not export_info({})["synthetic"]
    assert export_info({})["layout"] == "contract"
    assert not export_info({"export": SERVICE_EXPORT})["synthetic"]
    assert export_info({"export": SYNTHETIC_EXPORT})["synthetic"]
    manifest_only = SERVICE_EXPORT | {"manifest": {"source": "synthetic"}}
    assert export_info({"export": manifest_only})["synthetic"]


# --- (c) the code version comes from where the code lives


def test_the_code_version_is_the_packages_commit_outside_the_repository(rerun, tmp_path):
    package = Path(pipeline.__file__).resolve().parent
    try:
        before = _git(package, "rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the package is not in a git checkout here")
    with pytest.raises(subprocess.CalledProcessError):
        _git(tmp_path, "rev-parse", "HEAD")  # the output root is not in any checkout
    _, technical, _ = rerun(lambda r: r)
    after = _git(package, "rev-parse", "HEAD")  # the other engineer may commit meanwhile
    shown = re.search(r"<td>code version</td><td><code>git commit ([0-9a-f]{40})", technical)
    assert shown and shown.group(1) in {before, after}
    assert "not a git checkout" not in technical


def test_code_version_commit_dirty_flag_and_package_version(tmp_path):
    package = tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    git = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    _git(package.parent, "init", "-q")
    _git(package.parent, "add", ".")
    _git(package.parent, *git, "commit", "-q", "-m", "one")
    commit = _git(package, "rev-parse", "HEAD")
    assert report.code_version(package) == f"git commit {commit}"
    (package / "outputs.csv").write_text("a\n")  # untracked: not a change to the code
    assert report.code_version(package) == f"git commit {commit}"
    (package / "__init__.py").write_text("x = 2\n")
    assert report.code_version(package) == f"git commit {commit} (dirty: uncommitted changes)"
    elsewhere = tmp_path / "installed" / "pkg"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text("x = 1\n")
    assert report.code_version(elsewhere) == f"package version {__version__} (not a git checkout)"


# --- (d) blocks the export does not record are said to be not in this export


def _absent(r):
    return r | {
        "export": SERVICE_EXPORT | {"layout": "nhstt"},
        "optional_tables_absent": list(TABLES_NOT_IN_NHSTT),
        "columns_absent": NOT_IN_NHSTT | {"episodes": [], "measures": []},
    }


def _says_not_recorded(clinician: str) -> None:
    top = re.search(r'<p class="absent"><strong>This export does not record:</strong>(.*?)</p>',
                    clinician, flags=re.S)  # fmt: skip
    assert top, "no list of what this export does not record"
    for words in NOT_RECORDED:
        assert words in top.group(1), words
    assert "findings about them are not available" in top.group(1)
    # before the findings, and each lever without data says so instead of a number
    assert clinician.index('class="absent"') < clinician.index('<ol class="key">')
    for lever in ("Open communication", "Clear goals", "Small wins"):
        line = re.search(rf"<strong>{lever}\.</strong>([^<]*)</li>", clinician)
        assert line and line.group(1).strip().startswith("Not in this export"), lever
    assert "Not in this export, so not counted: a low alliance rating" in clinician


def test_blocks_the_ingest_report_lists_as_absent_are_not_in_this_export(rerun):
    clinician, technical, _ = rerun(_absent)
    _says_not_recorded(clinician)
    text = _text(clinician)
    # The small cohort does have alliance ratings: the report follows the ingest report
    # and neither plots nor narrates them.
    assert "Alliance (SRS" not in clinician and "Low alliance rating" not in text
    assert "by level of attendance in the first six weeks" in clinician
    assert '<h2 id="absent">Not in this export</h2>' in technical
    assert "<td>sessions</td><td><code>alliance_score</code></td>" in technical
    assert "<td>contacts</td><td><code>(whole table)</code></td>" in technical
    assert "alliance_score" in technical[technical.index('id="dq"') :]


def test_without_absent_blocks_nothing_is_said_to_be_missing(rerun):
    clinician, technical, _ = rerun(lambda r: r | {"export": SERVICE_EXPORT})
    assert "not in this export" not in clinician.lower()
    assert "not in this export" not in technical.lower()
    assert "Alliance (SRS points)" in clinician


def test_an_export_without_those_blocks_reports_them_absent_and_never_as_numbers(
    reported_absent,
):
    root, _, _ = reported_absent
    clinician = (root / "reports/clinician.html").read_text(encoding="utf-8")
    technical = (root / "reports/technical.html").read_text(encoding="utf-8")
    _says_not_recorded(clinician)
    text = _text(clinician)
    assert not re.search(r"\bnan\b", text, flags=re.I), "a missing number was printed"
    assert "Alliance (SRS)" not in clinician  # no panel for a lever without data
    findings = text[text.index('<ol class="key">') : text.index("</ul>")]
    assert findings.count("<li>") >= 2  # what the export supports is still reported
    cards = re.findall(r"<summary><strong>([^<]*)</strong> — ([^<]*)</summary>", technical)
    absent_cards = [m for m, status in cards if status == "not fitted (not in this export)"]
    assert "poor_outcome: communication (adjusted)" in absent_cards
    assert "poor_outcome: flag_alliance_below_cutoff (adjusted)" in absent_cards
    assert "synthetic" not in clinician.lower() and "synthetic" not in technical.lower()


def test_absent_records_come_from_the_ingest_report():
    records = absent_records(
        {
            "optional_tables_absent": ["contacts"],
            "columns_absent": {"sessions": ["alliance_score"], "contacts": ["responded"]},
        }
    )
    assert [(r.table, r.column) for r in records] == [
        ("sessions", "alliance_score"),
        ("contacts", None),  # the table covers its columns
    ]
    assert absent_records({}) == []


def test_an_inferred_extract_date_is_said_so_on_the_clinician_page(rerun):
    def inferred(r):
        return r | {
            "export": SERVICE_EXPORT,
            "extract_date_source": "inferred from the latest appointment",
        }

    clinician, _, ingest_report = rerun(inferred)
    date = ingest_report["extract_date"]
    assert f"(extract date {date}, inferred from its latest appointment)" in clinician


def test_a_four_week_window_reads_four_weeks_throughout(rerun):
    """Every mention of the landmark window, the dropout horizon and the risk groups comes
    from the params (the report once said "six weeks" whatever ``features.window_days``)."""
    params = Params(**FAST, features={"window_days": 28}, report={"risk_groups": 4})
    clinician, technical, _ = rerun(lambda r: r, params, name="four_weeks")
    for html in (clinician, technical):
        text = _text(html) + " ".join(re.findall(r'aria-label="([^"]*)"', html))
        assert "six weeks" not in text and "six-week" not in text and "6 weeks" not in text
    assert "the first four weeks" in _text(clinician)
    assert "week 16 from the first appointment" in _text(clinician)
    assert "28 days (four weeks)" in _text(technical)
    assert "Weeks after the first four weeks" in clinician  # the dropout figure's axis
