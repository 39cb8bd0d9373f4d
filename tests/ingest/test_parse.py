"""Coded columns are parsed once per distinct value: the same result as row by row."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Params
from pipeline.contract import column_specs
from pipeline.ingest.parse import _parse_column, _typed_column, clean_text, markers_for

ALIASES = Params().ingest.aliases
MARKERS = tuple(Params().ingest.missing_markers)
SPECS = {s.name: s for s in column_specs("sessions")}
CELLS = {
    "scheduled_date": ["2024-01-05", " 2024-01-05", "2024-13-01", "05/01/2024", "", "NA"],
    "status": ["attended", "Attended ", "DNA", "5", "did not attend", "unknown", "null", " "],
    "notice_hours": ["12", " 12.5", "1e3", "twelve", "1e13", "N/A", ""],
    "duration_min": ["50", "50.0", "50.5", " 45 ", "x", "NULL"],
    "homework_assigned": ["yes", "Y", "true", "FALSE", "0", "maybe", "", "NA"],
}


@settings(max_examples=60, deadline=None)
@given(
    column=st.sampled_from(sorted(CELLS)),
    picks=st.lists(st.integers(0, 7), min_size=1, max_size=40),
    gaps=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_per_distinct_value_parse_equals_the_row_by_row_parse(column, picks, gaps):
    options = CELLS[column]
    cells = [
        None if gap else options[i % len(options)] for i, gap in zip(picks, gaps, strict=False)
    ]
    raw = pd.Series(cells, dtype="str")
    spec = SPECS[column]
    values, problems, markers = _typed_column(raw, spec, ALIASES, MARKERS)
    # Reference: every row cleaned, then parsed (what the parser did before).
    cleaned, ref_markers = clean_text(raw, markers_for(spec, ALIASES, MARKERS))
    ref_values, ref_problems = _parse_column(cleaned, spec, ALIASES)
    pd.testing.assert_series_equal(
        pd.Series(values).reset_index(drop=True),
        pd.Series(ref_values).reset_index(drop=True),
        check_names=False,
    )
    got = pd.concat([p for p in problems if len(p)] or [pd.DataFrame()], ignore_index=True)
    ref = pd.concat([p for p in ref_problems if len(p)] or [pd.DataFrame()], ignore_index=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), ref.reset_index(drop=True))
    assert markers == ref_markers
