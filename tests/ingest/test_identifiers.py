"""Direct identifiers are refused, nothing is written, and the value is never echoed."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.accept import IdentifierError
from pipeline.ingest.identifiers import mask, nhs_number_valid, suspicious_column_name
from pipeline.stages import ingest as stage

SECRET_VALUES = {
    "e-mail address": "jo.bloggs@example.org",
    "phone number": "07700 900123",
    "international phone": "+44 7700 900123",
    "NHS number": "943 476 5919",  # a valid modulus-11 test number
    "NHS number unspaced": "9434765919",
    "US social security number": "123-45-6789",
}


def _with_value(value):
    def edit(df):
        df = df.copy()
        df["therapist_id"] = df["therapist_id"].astype(object)
        df.loc[1, "therapist_id"] = value
        return df

    return edit


@pytest.mark.parametrize("label", list(SECRET_VALUES))
def test_identifier_values_are_refused_masked_and_nothing_written(
    make_dataset, params, tmp_path, label
):
    value = SECRET_VALUES[label]
    folder = make_dataset(episodes=_with_value(value))
    with pytest.raises(IdentifierError) as info:
        stage.run(params, tmp_path / "out", folder)
    message = str(info.value)
    assert "episodes.csv" in message and "therapist_id" in message and "line(s) 3" in message
    assert value not in message
    assert value.replace(" ", "") not in message
    assert not (tmp_path / "out" / "data" / "interim").exists()


@pytest.mark.parametrize(
    "column",
    [
        "client_name",
        "Email",
        "PostCode",
        "DateOfBirth",
        "nhs_number",
        "session_notes",
        "home_address",
        "MRN",
    ],
)
def test_identifier_column_names_are_refused(make_dataset, params, tmp_path, column):
    folder = make_dataset(sessions=lambda df: df.assign(**{column: "x"}))
    with pytest.raises(IdentifierError, match=column):
        stage.run(params, tmp_path / "out", folder)
    assert not (tmp_path / "out" / "data" / "interim").exists()


def test_identifier_in_an_extra_free_text_column_is_found(make_dataset, params, tmp_path):
    folder = make_dataset(
        sessions=lambda df: df.assign(remark=["", "ring her on 07700 900123 tomorrow", ""])
    )
    with pytest.raises(IdentifierError, match="remark"):
        stage.run(params, tmp_path / "out", folder)


def test_numeric_nhs_number_in_parquet_is_found(make_dataset, params, tmp_path):
    folder = make_dataset()
    eps = pd.read_csv(folder / "episodes.csv", dtype=str)
    eps["site_id"] = pd.array([9434765919, 1], dtype="Int64")
    (folder / "episodes.csv").unlink()
    eps.to_parquet(folder / "episodes.parquet")
    with pytest.raises(IdentifierError, match="NHS number"):
        stage.run(params, tmp_path / "out", folder)


def test_no_false_alarm_on_the_synthetic_export(small_export, ingest_params, tmp_path):
    from pipeline.config import Params

    folder, _ = small_export
    summary = stage.run(Params(ingest=ingest_params.model_dump()), tmp_path, folder)
    assert summary["totals"]["rows_read"] > 0


def test_nhs_modulus_11():
    digits = np.array([list("9434765919"), list("9434765910"), list("4010232137")], dtype=int)
    assert list(nhs_number_valid(digits)) == [True, False, True]


def test_mask_and_names():
    assert mask("07700900123") == "0**********"
    assert not suspicious_column_name("notice_hours")
    assert not suspicious_column_name("presenting_problem")
    assert suspicious_column_name("Client Name")


# --- what the guard must not flag, and how it reads disguised values -------------------

from pipeline.contract import LABEL, TOKEN  # noqa: E402
from pipeline.ingest.check import infer_extract_date  # noqa: E402
from pipeline.ingest.identifiers import (  # noqa: E402
    find_identifiers,
    reads_as_name_or_prose,
    safe_label,
    scan_values,
)


def _kinds(value: str) -> set[str]:
    values = pd.Series([value], dtype="str")
    return {k for k, _, _ in scan_values(values, pd.Series([2]))}


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-10 12:30:00",  # a timestamp: 14 digits, not a phone or NHS number
        "2024-01-10T09:15:00+01:00",
        "0.6666666666",  # a long decimal, not 06666 666666
        "36.666666666666664",
        "ep000001",
        "se0012345",
        "20240110",
        "1234567",
        "CBT",
        "guided_self_help",
    ],
)
def test_ordinary_values_are_not_identifiers(value):
    assert _kinds(value) == set()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("07700.900.123", "a phone number"),
        ("+44.7700.900.123", "a phone number"),
        ("0044 7700 900123", "a phone number"),
        ("+44 (0)7700 900123", "a phone number"),
        ("tel:07700900123", "a phone number"),
        ("943.476.5919", "an NHS number"),
        ("NHS9434765919", "an NHS number"),
        ("９４３ ４７６ ５９１９", "an NHS number"),  # full-width digits: NFKC first
        ("9434765919.0", "an NHS number"),  # a float column's NHS number
        ("john.smith@exämple.com", "an e-mail address"),
        ("john.smith＠example.com", "an e-mail address"),
        ("SW1A 1AA", "a UK postcode"),
        ("sw1a1aa", "a UK postcode"),
    ],
)
def test_disguised_identifiers_are_read_as_a_person_would(value, kind):
    assert kind in _kinds(value)


def test_nhs_lookalike_that_fails_modulus_11_is_not_an_nhs_number():
    assert "an NHS number" not in _kinds("943 476 5910")


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("John Smith", True),
        ("Dr Jane Roe", True),
        ("Mrs Smith", True),
        ("CBT - client Mary Jones says partner hits her, lives 12 Acacia Ave", True),
        ("Guided Self Help", False),
        ("Counselling for Depression", False),
        ("Behavioural Activation", False),
        ("CBT", False),
        ("did not attend", False),
        ("x?", False),
    ],
)
def test_names_and_prose_in_labels(text, flagged):
    assert reads_as_name_or_prose(text, LABEL) is flagged


def test_ids_must_be_tokens():
    frame = pd.DataFrame({"therapist_id": ["th01", "Dr Jane Roe", "th02"]}, dtype="str")
    specs = {"therapist_id": next(s for s in _specs("episodes") if s.name == "therapist_id")}
    found = find_identifiers("episodes.csv", frame, pd.Series([2, 3, 4]), specs=specs)
    assert [(f.kind, f.lines) for f in found] == [
        ("free text or a name where the contract expects a code", (3,))
    ]
    assert "Jane" not in found[0].message() and TOKEN.max_length == 64


def _specs(table):
    from pipeline.contract import column_specs

    return column_specs(table)


@pytest.mark.parametrize(
    "name",
    ["nhsnumber", "dateofbirth", "emailaddress", "clientname", "DoB", "Sur-Name", "PostCode"],
)
def test_run_together_identifier_column_names(name):
    assert suspicious_column_name(name)


@pytest.mark.parametrize(
    "name", ["notice_hours", "homework_completed", "presenting_problem", "agenda_set_by"]
)
def test_contract_column_names_are_not_identifiers(name):
    assert not suspicious_column_name(name)


def test_a_header_that_is_an_identifier_is_masked_in_the_message():
    frame = pd.DataFrame({"jo.bloggs@example.com": ["x"]}, dtype="str")
    found = find_identifiers("sessions.csv", frame, pd.Series([2]))
    assert found[0].kind == "a column name that is itself an identifier"
    assert "bloggs" not in found[0].message() and "column 1 of the header" in found[0].message()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("referral_date", True),
        ("IDS101Referral.csv", True),
        ("Patient Name: John Smith", False),
        ("Smith_John_9434765919.csv", False),
        ("[/]", False),
    ],
)
def test_safe_label(text, shown):
    assert (safe_label(text) == text) is shown


def test_inferred_extract_date_ignores_isolated_far_future_outliers():
    dates = pd.to_datetime(["2025-03-01", "2025-03-20", "2025-03-31", "2205-01-01"])
    got = infer_extract_date(pd.Series([40, 30, 20, 1], index=dates), "sessions.csv")
    assert got.date == pd.Timestamp("2025-03-31")
    assert got.ignored == (pd.Timestamp("2205-01-01"),) and got.ignored_rows == 1


def test_inferred_extract_date_keeps_a_supported_latest_date():
    # the latest date is reached by three appointments: not an outlier, however far
    dates = pd.to_datetime(["2025-03-01", "2026-01-01"])
    got = infer_extract_date(pd.Series([100, 3], index=dates), "sessions.csv")
    assert got.date == pd.Timestamp("2026-01-01") and got.ignored == ()


def test_tiny_exports_infer_the_latest_date():
    dates = pd.to_datetime(["2024-01-10", "2024-06-10"])
    assert infer_extract_date(pd.Series([1, 1], index=dates), "s.csv").date == dates[-1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789 -.()/@+abcAZsw", min_size=0, max_size=24)
        | st.sampled_from([*SECRET_VALUES.values(), "SW1A 1AA", "sw1a1aa", "(555) 123-4567"]),
        min_size=1,
        max_size=30,
    )
)
def test_one_pass_prefilter_never_misses_what_a_single_pattern_finds(texts):
    """The scan runs every value pattern as one alternation first and each pattern only on
    what passes: any value a single pattern (or the digits prefilter) matches passes."""
    import pyarrow as pa

    from pipeline.ingest import identifiers as ids

    arr = pa.array(texts)
    combined = ids._regex_hits(arr, ids._ANY_VALUE_PATTERN)
    for pattern in (*ids.VALUE_PATTERNS.values(), ids._DIGITS_PREFILTER):
        assert not (ids._regex_hits(arr, pattern) & ~combined).any(), pattern
