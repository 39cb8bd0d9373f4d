"""Hostile inputs through the CLI (cases in hostile_cases.py), and a property test of the
identifier scan on disguised identifiers and run-together identifier column names."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.ingest.identifiers import find_identifiers


def _load_cases():
    name = "hostile_cases"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


hc = _load_cases()
CASES = hc.all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case, tmp_path):
    runner = hc.run_subprocess if case.isolate else hc.run_in_process
    outcome = hc.execute(case, tmp_path / case.name, runner, timeout=60)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.ok, "\n".join(
        [*outcome.problems, "--- ingest output ---", outcome.ingest.output[-3000:]]
    )


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


# --- property: disguised identifiers are found and never echoed ---------------------------

SEPARATORS = (" ", ".", "-", "/", "", "\u00a0")


def _full_width(text: str) -> str:
    return "".join(chr(0xFF10 + int(c)) if c.isascii() and c.isdigit() else c for c in text)


def _nhs_digits(first9: list[int]) -> str | None:
    check = 11 - sum(d * w for d, w in zip(first9, range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return None if check == 10 else "".join(map(str, [*first9, check]))


@st.composite
def nhs_numbers(draw) -> tuple[str, str]:
    digits = draw(
        st.lists(st.integers(0, 9), min_size=9, max_size=9)
        .map(_nhs_digits)
        .filter(lambda d: d is not None)
    )
    groups = [digits[:3], digits[3:6], digits[6:]]
    text = groups[0] + draw(st.sampled_from(SEPARATORS)) + groups[1]
    text += draw(st.sampled_from(SEPARATORS)) + groups[2]
    if draw(st.booleans()):
        text = draw(st.sampled_from(["NHS", "nhs", "NHS ", "Nhs:"])) + text
    return text, digits


@st.composite
def uk_mobiles(draw) -> tuple[str, str]:
    tail = f"{draw(st.integers(0, 999)):03d}"
    national = "07700900" + tail
    groups = ["7700", "900", tail]
    prefix = draw(st.sampled_from(["0", "+44", "0044"]))
    sep = [draw(st.sampled_from(SEPARATORS)) for _ in range(3)]
    if prefix == "0":
        text = "0" + groups[0] + sep[1] + groups[1] + sep[2] + groups[2]
    else:
        text = prefix + sep[0] + groups[0] + sep[1] + groups[1] + sep[2] + groups[2]
    if draw(st.booleans()):
        text = draw(st.sampled_from(["tel:", "TEL:", "Tel:"])) + text
    return text, national


def _cased(draw, text: str) -> str:
    mode = draw(st.sampled_from(["keep", "lower", "upper", "random"]))
    if mode == "lower":
        return text.lower()
    if mode == "upper":
        return text.upper()
    if mode == "random":
        flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))
    return text


@st.composite
def emails(draw) -> tuple[str, str]:
    local = draw(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8})?", fullmatch=True))
    domain = draw(st.sampled_from(["example.com", "exämple.com", "nhs.net", "mail.example.org"]))
    at = draw(st.sampled_from(["@", "＠"]))
    text = local + at + domain
    return text, local + "@" + domain


@st.composite
def postcodes(draw) -> tuple[str, str]:
    text = "SW1A" + draw(st.sampled_from([" ", "", "\u00a0"])) + "1AA"
    return text, "SW1A 1AA"


@st.composite
def disguised_values(draw) -> tuple[str, str, str]:
    """(cell text, the identifier as written, its plain form)."""
    ident, plain = draw(st.one_of(nhs_numbers(), uk_mobiles(), emails(), postcodes()))
    ident = _cased(draw, ident)
    if draw(st.booleans()):
        ident = _full_width(ident)
    text = draw(st.sampled_from(["", "ref ", "Ref: "])) + ident
    text += draw(st.sampled_from(["", " x", " ok"]))
    return text, ident, plain


NAME_PARTS = (
    ("nhs", "number"),
    ("date", "of", "birth"),
    ("email", "address"),
    ("client", "name"),
    ("post", "code"),
    ("sur", "name"),
)


@st.composite
def identifier_column_names(draw) -> str:
    parts = draw(st.sampled_from(NAME_PARTS))
    style = draw(st.sampled_from(["", "_", "-", " ", "camel"]))
    if style == "camel":
        return parts[0].lower() + "".join(p.capitalize() for p in parts[1:])
    return _cased(draw, style.join(parts))


def _messages(frame: pd.DataFrame) -> tuple[list, list[str]]:
    found = find_identifiers("sessions.csv", frame, pd.Series([2]))
    return found, [f.message() for f in found]


@settings(max_examples=150, deadline=None)
@given(value=disguised_values(), name=identifier_column_names())
@example(value=("+44.7700900000", "+44.7700900000", "07700900000"), name="nhsNumber")
@example(value=("100.0000001", "100.0000001", "1000000001"), name="nhsNumber")  # one dot
def test_disguised_identifiers_are_found_and_never_echoed(value, name):
    text, ident, plain = value
    found, messages = _messages(pd.DataFrame({"misc": [text]}, dtype="str"))
    assert found, f"no finding for {text!r}"
    for message in messages:
        for secret in {text.strip(), ident, plain}:
            assert secret not in message, message

    found, _ = _messages(pd.DataFrame({name: ["x"]}, dtype="str"))
    assert found, f"column name {name!r} not flagged"


def test_the_harness_catches_leaks_crashes_and_wrong_exits(tmp_path):
    """A fake CLI that echoes the planted value (wrapped over two lines), crashes and
    exits 0 must fail every expectation it breaks."""
    case = next(c for c in CASES if c.name == "episodes_treatment_name")

    def leaky(args, env, timeout):
        return hc.Run(0, "Traceback (most recent call last):\n  John\nSmith\n", 0.0)

    problems = hc.execute(case, tmp_path / "w", leaky).problems
    text = "\n".join(problems)
    assert "ingest exit 0, expected 1" in text and "validate exit 0" in text
    assert "Traceback" in text and "echoes 'John Smith'" in text
    assert "does not mention 'identifier'" in text
