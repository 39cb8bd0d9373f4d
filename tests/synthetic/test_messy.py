"""The export mess: every added or aliased row is where the manifest says, as it says."""

import numpy as np
import pandas as pd

from pipeline.synthetic.messy import STATUS_ALIASES, make_export


def test_manifest_points_at_the_rows_it_describes(small_cohort, small_params):
    export, manifest = make_export(
        small_cohort.tables, small_params.extract_date, 0.01, 0.02, np.random.default_rng(3)
    )
    assert set(manifest["kind"]) > {"alias", "duplicate_session_id", "orphan_session"}
    for rec in manifest.itertuples():
        row = export[rec.table].iloc[rec.line - 2]  # header is line 1
        first_col = export[rec.table].columns[0]
        assert str(row[first_col]) == rec.key
        if rec.kind == "alias":
            assert row[rec.column] == rec.value


def test_clean_rows_survive_in_order(small_cohort, small_params):
    export, manifest = make_export(
        small_cohort.tables, small_params.extract_date, 0.01, 0.0, np.random.default_rng(3)
    )
    for table, clean in small_cohort.tables.items():
        added = manifest.loc[(manifest["table"] == table) & (manifest["kind"] != "alias"), "line"]
        keep = np.setdiff1d(np.arange(len(export[table])), added.to_numpy() - 2)
        kept = export[table].iloc[keep].reset_index(drop=True)
        first = clean.columns[0]
        assert kept[first].astype(str).tolist() == clean[first].astype(str).tolist(), table


def test_duplicates_follow_their_original(small_cohort, small_params):
    export, manifest = make_export(
        small_cohort.tables, small_params.extract_date, 0.02, 0.0, np.random.default_rng(4)
    )
    dups = manifest[manifest["kind"].str.startswith("duplicate_")]
    assert len(dups) > 0
    for rec in dups.itertuples():
        ids = export[rec.table].iloc[:, 0].astype(str)
        first_line = int(np.flatnonzero(ids.to_numpy() == rec.key)[0]) + 2
        assert first_line < rec.line


def test_status_aliases_map_to_their_canonical_value(small_cohort, small_params):
    _, manifest = make_export(
        small_cohort.tables, small_params.extract_date, 0.0, 0.05, np.random.default_rng(5)
    )
    status = manifest[(manifest["kind"] == "alias") & (manifest["column"] == "status")]
    assert len(status) > 0
    for rec in status.itertuples():
        assert rec.value in STATUS_ALIASES[rec.expected]


def test_no_mess_when_shares_are_zero(small_cohort, small_params):
    export, manifest = make_export(
        small_cohort.tables, small_params.extract_date, 0.0, 0.0, np.random.default_rng(6)
    )
    assert manifest.empty
    for table, clean in small_cohort.tables.items():
        assert len(export[table]) == len(clean)
        assert not any(
            pd.api.types.is_datetime64_any_dtype(export[table][c]) for c in export[table].columns
        )
