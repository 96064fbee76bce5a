"""The ``transpose`` codec: axis permutations, its JSON, the V2 ``order`` it is."""

from __future__ import annotations

import codec_checks as check
import numpy as np
import pytest
from helpers import values

from xzaro.codecs import BytesCodec, TransposeCodec, v2_codec_json
from xzaro.errors import MetadataError


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_round_trip(order: tuple[int, ...]) -> None:
    data = values("<i4", (2, 3, 4), "transpose")
    encoded = check.round_trip([TransposeCodec(order), BytesCodec()], data)
    assert encoded == np.ascontiguousarray(data.transpose(order)).tobytes()


def test_json_and_v2_member() -> None:
    codec = TransposeCodec((1, 0))
    check.v3_json(codec)
    check.no_v2_form(codec)
    assert v2_codec_json((codec, BytesCodec())) == (None, None)  # V2's order: "F"


def test_bounded_decode() -> None:
    chain = [TransposeCodec((1, 0)), BytesCodec()]
    check.bounded_decode(chain, np.zeros((3, 4), "<i4"), np.zeros((4, 4), "<i4"))


def test_config_errors() -> None:
    check.config_errors(
        "transpose",
        [
            ({"order": [0, 0]}, "not a permutation"),
            ({"order": "F"}, "permutation list"),
            ({"order": [1, 0], "axes": 2}, "axes"),
        ],
    )


def test_order_of_another_dimensionality_is_refused() -> None:
    with pytest.raises(MetadataError, match="does not match 3 dimensions"):
        check.pipeline([TransposeCodec((1, 0)), BytesCodec()], np.zeros((2, 2, 2)))
