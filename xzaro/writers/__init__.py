"""Writing Zarr V2 and V3 stores through the same codec and store layers the reader uses."""

from __future__ import annotations

from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.store_array import write_array, write_group, write_metadata
from xzaro.writers.writer import AlignmentError, ChunkWriter, ShardWriter, Writer, writer_for

__all__ = [
    "AlignmentError",
    "BloscCompressionParams",
    "ChunkWriter",
    "ShardWriter",
    "Writer",
    "write_array",
    "write_group",
    "write_metadata",
    "writer_for",
]
