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
from xzaro.writers.coarsen import COARSENINGS
from xzaro.writers.layout import array_meta
from xzaro.writers.ome import multiscales_entry, ome_axis
from xzaro.writers.streaming.properties import Dimension, DimensionKind, StorageProperties

#: What each pyramid method does, for the ``metadata`` of the ``multiscales`` entry.
METHOD_DESCRIPTIONS = {
    "mean": "The mean of each 2x2 (2x2x2 with z) block; integers rounded half to even.",
    "decimate": "The first (top left) cell of each 2x2 (2x2x2 with z) block.",
    "min": "The minimum of each 2x2 (2x2x2 with z) block.",
    "max": "The maximum of each 2x2 (2x2x2 with z) block.",
}


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
        """Array shapes (append extent 0) of every level (see :meth:`pyramid`)."""
        return [shape for shape, _ in self.pyramid()]

    def pyramid(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """Every level's array shape (append extent 0) and the axes halved from the level
        below (none for level 0); one level without ``enable_multiscale``, at most
        ``max_levels`` above level 0.

        ``"xzaro"`` conventions halve every coarsened axis until a level fits in one chunk
        along y and x; ``"acquire-zarr"`` ones halve each coarsened axis only while it is
        larger than a chunk, and go on while y and x both are, or another coarsened axis is.
        """
        dims = self.dims
        shape = tuple(d.array_size_px for d in dims)
        levels: list[tuple[tuple[int, ...], tuple[int, ...]]] = [(shape, ())]
        p = self.properties
        if not p.enable_multiscale:
            return levels
        chunk = [d.chunk_size_px for d in dims]
        coarsened = self.coarsened_axes
        while not p.max_levels or len(levels) <= p.max_levels:
            big = [shape[i] > chunk[i] for i in range(len(shape))]
            if p.conventions == "acquire-zarr":
                others = any(big[i] for i in coarsened[:-2])
                if not (big[-2] and big[-1]) and not others:
                    break
                axes = tuple(i for i in coarsened if big[i])
            else:
                if not (big[-2] or big[-1]):
                    break
                axes = coarsened
            shape = tuple(-(-n // 2) if i in axes else n for i, n in enumerate(shape))
            levels.append((shape, axes))
        return levels

    def level_path(self, level: int) -> str:
        """Where level ``level`` is stored below the stream's root: ``"0"``, ``"1"``, …, or the
        root itself for a plain (non-NGFF) array."""
        return str(level) if self.properties.ngff else ""

    def level_meta(
        self, level: int, shape: tuple[int, ...], extent: int, dtype: np.dtype
    ) -> ZaroMeta:
        """The metadata of level ``level`` (of ``shape``) holding ``extent`` appended steps."""
        p = self.properties
        dims = self.dims
        keep = p.conventions == "acquire-zarr"
        chunks = tuple(
            d.chunk_size_px if i == 0 or keep else max(1, min(d.chunk_size_px, n))
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
        …, with each dimension's ``unit`` and ``scale`` (for y and x, times the pixel size in
        micrometers when given) and the pyramid's method as its ``type`` (and, for the
        ``"acquire-zarr"`` conventions, described in ``metadata`` as acquire-zarr does)."""
        p = self.properties
        dims = self.dims
        n = len(dims)
        axes: list[dict[str, Any]] = []
        scale = [float(d.scale) for d in dims]
        for i, d in enumerate(dims):
            kind = DimensionKind(d.kind)
            unit = d.unit
            if i >= n - 2 and p.pixel_scale_um is not None:
                unit = unit or "micrometer"
                scale[i] *= float(p.pixel_scale_um[0 if i == n - 1 else 1])
            other = kind is DimensionKind.OTHER and p.conventions != "acquire-zarr"
            axes.append(ome_axis(d.name, None if other else kind.value, unit))
        coarsened = self.coarsened_axes
        method = p.downsampling_method if n_levels > 1 else None
        entry = multiscales_entry(
            name="",
            axes=axes,
            paths=[str(level) for level in range(n_levels)],
            scale=scale,
            coarsened=[i in coarsened for i in range(n)],
            method=method,
            half_cell_shift=False,
            zarr_format=self.zarr_format,
        )
        factors = [1.0] * n
        for dataset, (_, halved) in zip(entry["datasets"], self.pyramid()):
            factors = [f * 2 if i in halved else f for i, f in enumerate(factors)]
            dataset["coordinateTransformations"][0]["scale"] = [
                b * f for b, f in zip(scale, factors)
            ]
        if method is not None and p.conventions == "acquire-zarr":  # acquire-zarr describes it
            entry["metadata"] = {
                "method": f"xzaro.writers.coarsen.{COARSENINGS[method].kernel.__name__}",
                "description": METHOD_DESCRIPTIONS[method],
            }
        return [entry]
