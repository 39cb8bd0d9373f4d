"""Contract checks recover exactly the planted mess, and accept exactly the clean rows."""

from pipeline.ingest.check import check_dataset
from pipeline.ingest.read import read_dataset


def test_problems_match_the_messy_row_manifest(small_export, ingest_params):
    folder, manifest = small_export
    checked = check_dataset(read_dataset(folder), ingest_params)
    for table, result in checked.items():
        expected = manifest[(manifest["table"] == table) & (manifest["kind"] != "alias")]
        found = set(zip(result.problems["line"], result.problems["rule"], strict=True))
        assert set(zip(expected["line"], expected["expected"], strict=True)) == found, table


def test_accepted_rows_equal_the_clean_cohort(small_export, small_cohort, ingest_params):
    folder, _ = small_export
    checked = check_dataset(read_dataset(folder), ingest_params)
    for table, clean in small_cohort.tables.items():
        accepted = checked[table].accepted
        assert list(accepted.columns) == list(clean.columns)
        for col in clean.columns:
            assert accepted[col].astype(str).tolist() == clean[col].astype(str).tolist(), (
                table,
                col,
            )
        assert checked[table].n_read == checked[table].n_accepted + (
            checked[table].n_read - checked[table].n_accepted
        )
