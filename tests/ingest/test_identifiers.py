"""Direct identifiers are refused, nothing is written, and the value is never echoed."""

import numpy as np
import pandas as pd
import pytest

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
