import math

import numpy as np
import pandas as pd
import pytest

from pipeline.instruments import (
    BUILTIN_INSTRUMENTS,
    INSTRUMENTS,
    active_registry,
    at_caseness,
    get_instrument,
    improvement,
    in_registry,
    reliable_change,
    use_registry,
)


def test_jacobson_truax_criterion_from_sd_and_reliability():
    # RC = 1.96 * SD * sqrt(2 * (1 - r)); PHQ-9: SD 5.5, alpha .89 -> 5.06 points.
    assert INSTRUMENTS["PHQ-9"].jacobson_truax_rc == pytest.approx(1.96 * 5.5 * math.sqrt(0.22))
    assert INSTRUMENTS["PHQ-9"].jacobson_truax_rc == pytest.approx(5.056, abs=0.001)
    assert INSTRUMENTS["GAD-7"].jacobson_truax_rc == pytest.approx(4.137, abs=0.001)
    # Without a reference SD the criterion cannot be computed and is not invented.
    assert INSTRUMENTS["BDI-II"].jacobson_truax_rc is None


def test_registry_matches_contract_table():
    expected = {  # range, caseness, reliable change points (data contract)
        "PHQ-9": (0, 27, 10, 6),
        "GAD-7": (0, 21, 8, 4),
        "BDI-II": (0, 63, 14, 9),
        "CORE-10": (0, 40, 11, 6),
        "WSAS": (0, 40, 10, 8),
        "ORS": (0, 40, 25, 5),
    }
    for name, (lo, hi, case, rc) in expected.items():
        inst = INSTRUMENTS[name]
        assert (inst.minimum, inst.maximum, inst.caseness, inst.reliable_change) == (
            lo,
            hi,
            case,
            rc,
        )
    assert not INSTRUMENTS["ORS"].higher_is_worse


def test_caseness_at_cutoff_and_for_higher_is_better():
    assert list(at_caseness("PHQ-9", [9, 10, 11, np.nan])) == [False, True, True, False]
    # ORS: below 25 is clinical.
    assert list(at_caseness("ORS", [24.9, 25, 30])) == [True, False, False]


def test_reliable_change_worked_examples():
    # PHQ-9 (6 points): 18 -> 12 is exactly reliable; 18 -> 13 is not; 10 -> 16 deteriorated.
    out = reliable_change("PHQ-9", [18, 18, 10, 12], [12, 13, 16, np.nan])
    assert list(out[:3]) == [1, 0, -1]
    assert np.isnan(out[3])
    # ORS is higher-is-better with a 5-point criterion: 20 -> 26 improved, 30 -> 24 worse.
    assert list(reliable_change("ORS", [20, 30, 20], [26, 24, 23])) == [1, -1, 0]
    assert list(improvement("ORS", [20], [26])) == [6]


def test_unknown_instrument_message():
    with pytest.raises(KeyError, match="known instruments: PHQ-9"):
        get_instrument("HADS")


# --- the registry: built-ins plus instruments registered in params.yaml -----------------

HAMD = {
    "minimum": 0,
    "maximum": 52,
    "higher_is_worse": True,
    "caseness": 8,
    "reliability": 0.8,
    "reference_sd": 5.0,
    "source": "test figures",
}


def _params(instruments=None, **sections):
    from pipeline.config import parse_params

    return parse_params(
        {"instruments": {"HAMD-17": HAMD} if instruments is None else instruments, **sections}
    )


def test_registered_instrument_joins_the_builtins():
    from pipeline.config import instrument_registry

    registry = instrument_registry(_params())
    assert list(registry)[:6] == list(BUILTIN_INSTRUMENTS)
    hamd = registry["HAMD-17"]
    assert (hamd.minimum, hamd.maximum, hamd.caseness, hamd.higher_is_worse) == (0, 52, 8, True)
    # reliable_change null: Jacobson–Truax, 1.96 · 5 · sqrt(2 · 0.2) = 6.198
    assert hamd.reliable_change == pytest.approx(6.1980, abs=1e-4)
    assert "Jacobson–Truax" in hamd.reliable_change_source
    assert "test figures" in hamd.psychometrics_source
    given = instrument_registry(_params({"X": {**HAMD, "reliable_change": 5}}))["X"]
    assert given.reliable_change == 5
    # no instruments registered: just the built-ins
    assert instrument_registry(_params({})) == BUILTIN_INSTRUMENTS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"maximum": 0}, "maximum \\(0\\) must be greater than minimum \\(0\\)"),
        ({"reliability": 1.0}, "less than 1"),
        ({"reliability": 0}, "greater than 0"),
        ({"caseness": 60}, "caseness \\(60\\) must lie within 0–52"),
        ({"reliable_change": 0}, "greater than 0"),
        ({"reliable_change": 53}, "more than the whole range"),
        ({"reference_sd": None}, "give both, or reliable_change in points"),
        ({"functional_mean": 4}, "give functional_mean and functional_sd together"),
        (
            {"dysfunctional_mean": 60, "dysfunctional_sd": 5},
            "dysfunctional_mean \\(60\\) must lie within",
        ),
        (
            {
                "dysfunctional_mean": 4,
                "dysfunctional_sd": 5,
                "functional_mean": 20,
                "functional_sd": 5,
            },
            "must lie above functional_mean",
        ),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_registered_instrument_is_validated(change, message):
    from pipeline.config import ParamsError

    with pytest.raises(ParamsError, match=f"instruments.HAMD-17.*{message}"):
        _params({"HAMD-17": {**HAMD, **change}})


def test_higher_is_better_norms_run_the_other_way():
    from pipeline.config import ParamsError

    ors_like = {**HAMD, "higher_is_worse": False, "dysfunctional_mean": 20, "dysfunctional_sd": 5}
    with pytest.raises(ParamsError, match="must lie below functional_mean"):
        _params({"X": {**ors_like, "functional_mean": 10, "functional_sd": 5}})
    assert _params({"X": {**ors_like, "functional_mean": 30, "functional_sd": 5}})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("PHQ-9", "is built in"),
        ("phq 9", "column prefix phq9_ of PHQ-9"),
        ("Primary", "column prefix primary_"),
        ("HAMD, 17 items. Rated by the clinician", "use a short code"),
    ],
)
def test_registered_names_must_be_new_and_distinct(name, message):
    from pipeline.config import ParamsError

    with pytest.raises(ParamsError, match=message):
        _params({name: HAMD})
    with pytest.raises(ParamsError, match="column prefix hamd17_"):
        _params({"HAMD-17": HAMD, "HAMD 17": HAMD})


def test_primary_instrument_may_be_a_registered_one_only_when_registered():
    from pipeline.config import ParamsError, parse_params

    assert (
        _params(outcomes={"primary_instrument": "HAMD-17"}).outcomes.primary_instrument == "HAMD-17"
    )
    # the registration does not outlive the params that made it
    with pytest.raises(
        ParamsError, match=r"unknown instrument 'HAMD-17'.*instruments: in params\.yaml"
    ):
        parse_params({"outcomes": {"primary_instrument": "HAMD-17"}})


def test_use_registry_is_scoped_and_restored():
    from pipeline.config import instrument_registry

    registry = instrument_registry(_params())
    assert "HAMD-17" not in INSTRUMENTS
    with use_registry(registry):
        assert active_registry() is registry
        assert "HAMD-17" in INSTRUMENTS
        assert get_instrument("HAMD-17").maximum == 52
        assert list(at_caseness("HAMD-17", [7, 8])) == [False, True]
        assert list(reliable_change("HAMD-17", [20, 20], [13, 14])) == [1, 0]  # 6.2 points
    assert active_registry() is BUILTIN_INSTRUMENTS
    with pytest.raises(RuntimeError), use_registry(registry):
        raise RuntimeError("a failing stage")
    assert "HAMD-17" not in INSTRUMENTS  # restored on an error too
    with pytest.raises(KeyError, match="register others under instruments"):
        get_instrument("HAMD-17")


def test_explicit_registry_and_instrument_objects_work_without_activation():
    from pipeline.config import instrument_registry

    registry = instrument_registry(_params())
    hamd = get_instrument("HAMD-17", registry)
    assert get_instrument(hamd) is hamd
    assert list(improvement(hamd, [20], [14])) == [6]
    # a Dask task carries the registry with it
    assert in_registry(registry, lambda: get_instrument("HAMD-17").caseness) == 8
    assert "HAMD-17" not in INSTRUMENTS


def test_registry_refuses_a_name_twice_and_pickles():
    import pickle

    with pytest.raises(ValueError, match="registered twice"):
        BUILTIN_INSTRUMENTS.with_instruments([BUILTIN_INSTRUMENTS["PHQ-9"]])
    assert pickle.loads(pickle.dumps(BUILTIN_INSTRUMENTS)) == BUILTIN_INSTRUMENTS


def test_builtin_norms_only_where_published():
    # lit. §7b: intake of NHS TT caseness completers (secondary); no functional norms listed
    phq, gad = BUILTIN_INSTRUMENTS["PHQ-9"], BUILTIN_INSTRUMENTS["GAD-7"]
    assert (phq.dysfunctional_mean, phq.dysfunctional_sd) == (15.4, 5.5)
    assert (gad.dysfunctional_mean, gad.dysfunctional_sd) == (14.0, 4.5)
    for inst in BUILTIN_INSTRUMENTS.values():
        assert inst.functional_mean is None and inst.functional_sd is None
        if inst.name not in ("PHQ-9", "GAD-7"):
            assert inst.dysfunctional_mean is None
    # the NHS TT points rules stay the classification default
    assert (phq.reliable_change, gad.reliable_change) == (6, 4)


def test_contract_and_ingest_accept_a_registered_instrument(make_dataset):
    from pipeline.config import Params, instrument_registry
    from pipeline.contract import column_specs, instrument_names
    from pipeline.ingest.accept import ingest_dataset
    from pipeline.ingest.read import InputError, read_dataset

    params = Params(ingest={"extract_date": "2024-06-30"}, instruments={"HAMD-17": HAMD})
    measures = {
        "measures": lambda df: df.assign(
            instrument=["HAMD-17", "hamd 17", "HAMD-17"], score=["30", "53", "12.5"]
        )
    }
    folder = make_dataset(**measures)
    with use_registry(instrument_registry(params)):
        assert "HAMD-17" in instrument_names()
        spec = next(s for s in column_specs("measures") if s.name == "instrument")
        assert "HAMD-17" in (spec.allowed or ())
        result = ingest_dataset(read_dataset(folder), params.ingest)
    held = result.quarantine["measures"].set_index("source_line")["rules"]
    # line 2 is accepted; 53 is above the registered maximum; 12.5 is not a whole score
    assert result.report["tables"]["measures"]["rows_accepted"] == 1
    assert held.to_dict() == {3: "score_out_of_range", 4: "fractional_score"}
    assert list(result.tables["measures"]["instrument"]) == ["HAMD-17"]
    # outside the registry the same rows are an unknown instrument: none is accepted, and
    # the required measures table stops the run with a message naming the rule
    with pytest.raises(InputError, match="unknown_category in column instrument"):
        ingest_dataset(read_dataset(folder), params.ingest)
    assert "HAMD-17" not in instrument_names()


def test_stages_run_with_the_params_registry(make_dataset, tmp_path):
    """ingest → features → outcomes on an export whose measures are a registered
    instrument, the primary one: the stage runner activates the registry for each stage."""
    from pipeline.config import Params
    from pipeline.stages import features, ingest, outcomes

    params = Params(
        ingest={"extract_date": "2024-06-30"},
        instruments={"HAMD-17": HAMD},
        outcomes={"primary_instrument": "HAMD-17"},
    )
    measures = {"measures": lambda df: df.assign(instrument="HAMD-17", score=["24", "14", "20"])}
    root = tmp_path / "run"
    ingest.run(params, root, make_dataset(**measures))
    features.run(params, root)
    outcomes.run(params, root)
    table = pd.read_parquet(root / "data/processed/outcomes.parquet").set_index("episode_id")
    # e1: 24 → 14, 10 points ≥ 6.2: reliable improvement, from caseness (≥ 8) to caseness
    assert table.loc["e1", "hamd17_reliable_change"] == 1
    assert table.loc["e1", "primary_change"] == 10
    assert bool(table.loc["e1", "primary_case_start"]) and not table.loc["e1", "primary_recovered"]
    assert "HAMD-17" not in INSTRUMENTS
