"""Ingest recovers exactly the planted mess, and accepts exactly the clean rows."""

from pipeline.ingest.accept import ingest_dataset
from pipeline.ingest.read import read_dataset


def test_quarantine_matches_the_messy_row_manifest(small_export, ingest_params):
    folder, manifest = small_export
    result = ingest_dataset(read_dataset(folder), ingest_params)
    for table, held in result.quarantine.items():
        expected = manifest[(manifest["table"] == table) & (manifest["kind"] != "alias")]
        found = set(zip(held["source_line"], held["rules"], strict=True))
        assert set(zip(expected["line"], expected["expected"], strict=True)) == found, table


def test_accepted_rows_equal_the_clean_cohort(small_export, small_cohort, ingest_params):
    folder, _ = small_export
    result = ingest_dataset(read_dataset(folder), ingest_params)
    for table, clean in small_cohort.tables.items():
        accepted = result.tables[table]
        assert list(accepted.columns) == list(clean.columns)
        for col in clean.columns:
            assert accepted[col].astype(str).tolist() == clean[col].astype(str).tolist(), (
                table,
                col,
            )


def test_aliases_are_counted_as_recoded(small_export, ingest_params):
    folder, manifest = small_export
    result = ingest_dataset(read_dataset(folder), ingest_params)
    aliases = manifest[manifest["kind"] == "alias"]
    for (table, column), grp in aliases.groupby(["table", "column"]):
        recoded = result.report["tables"][table]["values_recoded"].get(column, 0)
        assert recoded == len(grp), (table, column)
