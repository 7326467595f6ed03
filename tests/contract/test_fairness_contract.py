"""The tenant/weight parameters a request carries to the engines' fair queues."""

import pytest

from tts_contract.fairness import DEFAULT_WEIGHT, TENANT_PARAM, WEIGHT_PARAM, WEIGHT_RANGE, Share


def test_share_round_trips_through_request_parameters() -> None:
    share = Share("tenant-a", 3.0)
    assert share.parameters() == {TENANT_PARAM: "tenant-a", WEIGHT_PARAM: 3.0}
    assert Share.from_parameters(share.parameters()) == share


@pytest.mark.parametrize("params, expected", [
    (None, Share("", DEFAULT_WEIGHT)),
    ({}, Share("", DEFAULT_WEIGHT)),
    ({WEIGHT_PARAM: "not a number"}, Share("", DEFAULT_WEIGHT)),
    ({WEIGHT_PARAM: float("nan")}, Share("", DEFAULT_WEIGHT)),
    ({WEIGHT_PARAM: 1e9, TENANT_PARAM: "t"}, Share("t", WEIGHT_RANGE[1])),
    ({WEIGHT_PARAM: 0, TENANT_PARAM: 7}, Share("", WEIGHT_RANGE[0])),
])
def test_malformed_parameters_fall_back_to_defaults(params, expected) -> None:
    assert Share.from_parameters(params) == expected


@pytest.mark.parametrize("weight", [0.0, -1.0, 1000.0, float("inf")])
def test_share_refuses_weights_out_of_range(weight: float) -> None:
    with pytest.raises(ValueError):
        Share("t", weight)
