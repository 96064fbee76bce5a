"""The ``transpose`` codec (array->array): permute a chunk's axes.

V3 ``{"name": "transpose", "configuration": {"order": [1, 0]}}``; V3 only (a V2 array's
``order: "F"`` becomes this codec when it is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.codecs.base import ArrayArrayCodec, ChunkSpec
from xzaro.errors import MetadataError


@dataclass(frozen=True)
class TransposeCodec(ArrayArrayCodec):
    """Permute the chunk's axes: ``order`` is the permutation applied on encode."""

    order: tuple[int, ...]
    name = "transpose"
    v2_member = "order"

    def __post_init__(self) -> None:
        order = self.order
        if isinstance(order, str):  # early drafts allowed "C" / "F"
            raise MetadataError(
                f"transpose order must be a permutation list, got {order!r}", field="codecs"
            )
        object.__setattr__(self, "order", tuple(int(i) for i in order))
        if sorted(self.order) != list(range(len(self.order))):
            raise MetadataError(
                f"transpose order {list(self.order)} is not a permutation", field="codecs"
            )

    def configuration(self) -> dict[str, Any]:
        return {"order": list(self.order)}

    def resolve(self, spec: ChunkSpec) -> ChunkSpec:
        if spec.shape is None:
            return spec
        if len(spec.shape) != len(self.order):
            raise MetadataError(
                f"transpose order {list(self.order)} does not match {len(spec.shape)} dimensions",
                field="codecs",
            )
        return ChunkSpec(tuple(spec.shape[i] for i in self.order), spec.dtype, spec.fill_value)

    def decode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        return arr.transpose(np.argsort(self.order))

    def encode_array(self, arr: np.ndarray, spec: ChunkSpec) -> np.ndarray:
        return arr.transpose(self.order)
