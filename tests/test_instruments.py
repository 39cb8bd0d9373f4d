import math

import numpy as np
import pytest

from pipeline.instruments import (
    INSTRUMENTS,
    at_caseness,
    get_instrument,
    improvement,
    reliable_change,
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
