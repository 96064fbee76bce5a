"""Where a stream's frames go: every level's array (shape, chunks, shards, metadata), the rows
frames are buffered in, and the OME-NGFF description of the levels.

Dimensions are given from fastest (x, then y) to slowest (the append dimension, size 0); the
stored arrays have them in reverse order, e.g. ``x, y, z, c, t`` is stored as ``(t, c, z, y, x)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.meta import ZaroMeta
from xzaro.writers.layout import array_meta
from xzaro.writers.ome import multiscales_entry, ome_axis
from xzaro.writers.streaming.properties import Dimension, DimensionKind, StorageProperties


@dataclass(frozen=True)
class StreamGeometry:
    """The arrays a device with these properties writes.

    Attributes
    ----------
    properties
        The stream's (checked) properties.
    zarr_format
        2 (chunked arrays) or 3 (sharded arrays).
    """

    properties: StorageProperties
    zarr_format: int

    @property
    def dims(self) -> list[Dimension]:
        """The dimensions in array order, slowest first."""
        return list(reversed(self.properties.acquisition_dimensions))

    @property
    def row_extent(self) -> int:
        """Append-dimension extent of one buffered row (a chunk, or a shard for V3)."""
        d = self.properties.acquisition_dimensions[-1]
        shard = max(1, d.shard_size_chunks) if self.zarr_format == 3 else 1
        return d.chunk_size_px * shard

    @property
    def coarsened_axes(self) -> tuple[int, ...]:
        """Array axes halved per level: x, y and non-x/y dimensions of kind space."""
        dims = self.dims
        n = len(dims)
        return tuple(
            i
            for i, d in enumerate(dims)
            if i >= n - 2 or (i > 0 and DimensionKind(d.kind) is DimensionKind.SPACE)
        )

    def level_shapes(self) -> list[tuple[int, ...]]:
        """Array shapes (append extent 0) of every level: halved until a level fits in one
        chunk along y and x (one level without ``enable_multiscale``)."""
        dims = self.dims
        shape = tuple(d.array_size_px for d in dims)
        shapes = [shape]
        if not self.properties.enable_multiscale:
            return shapes
        axes = self.coarsened_axes
        cy, cx = dims[-2].chunk_size_px, dims[-1].chunk_size_px
        while shape[-2] > cy or shape[-1] > cx:
            shape = tuple(-(-n // 2) if i in axes else n for i, n in enumerate(shape))
            shapes.append(shape)
        return shapes

    def level_meta(
        self, level: int, shape: tuple[int, ...], extent: int, dtype: np.dtype
    ) -> ZaroMeta:
        """The metadata of level ``level`` (of ``shape``) holding ``extent`` appended steps."""
        p = self.properties
        dims = self.dims
        chunks = tuple(
            d.chunk_size_px if i == 0 else max(1, min(d.chunk_size_px, n))
            for i, (d, n) in enumerate(zip(dims, shape))
        )
        shards = None
        if self.zarr_format == 3:
            shards = tuple(
                c * min(max(1, d.shard_size_chunks), max(1, -(-n // c)) if i else 1 << 62)
                for i, (d, c, n) in enumerate(zip(dims, chunks, shape))
            )
        attrs: dict[str, Any] = {}
        if level == 0 and p.external_metadata_json:
            attrs["external_metadata"] = json.loads(p.external_metadata_json)
        return array_meta(
            shape=(extent, *shape[1:]),
            dtype=dtype,
            dims=tuple(d.name for d in dims),
            chunk_shape=chunks,
            shard_shape=shards,
            zarr_format=self.zarr_format,
            compressor=p.compression,
            fill_value=0,
            attributes=attrs,
        )

    def multiscales(self, n_levels: int) -> list[dict[str, Any]]:
        """The root's ``multiscales``: one unnamed image whose levels are arrays ``0``, ``1``,
        …, with the pixel size (micrometers) as the scale of y and x."""
        p = self.properties
        dims = self.dims
        n = len(dims)
        axes: list[dict[str, Any]] = []
        scale = [1.0] * n
        for i, d in enumerate(dims):
            kind = DimensionKind(d.kind)
            unit = None
            if i >= n - 2 and p.pixel_scale_um is not None:
                unit = "micrometer"
                scale[i] = float(p.pixel_scale_um[0 if i == n - 1 else 1])
            axes.append(ome_axis(d.name, None if kind is DimensionKind.OTHER else kind.value, unit))
        coarsened = self.coarsened_axes
        entry = multiscales_entry(
            name="",
            axes=axes,
            paths=[str(level) for level in range(n_levels)],
            scale=scale,
            coarsened=[i in coarsened for i in range(n)],
            method="mean" if n_levels > 1 else None,
            half_cell_shift=False,
            zarr_format=self.zarr_format,
        )
        return [entry]
