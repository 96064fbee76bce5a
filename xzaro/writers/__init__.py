"""Writing Zarr V2 and V3 stores through the same codec and store layers the reader uses.

The wing, from the bottom up:

- ``writer`` (``Writer``, ``ChunkWriter``, ``ShardWriter``): blocks into encoded stored objects;
  ``tiles``: blocks held chunk by chunk; ``direct``: uncompressed frames straight into local files.
- ``compression`` (``BloscCompressionParams``), ``codec_spec``, ``encoding``: which codecs and
  chunks each variable is written with; ``layout``: from them to the array's ``ZaroMeta``.
- ``store_array``: metadata documents, groups and consolidated metadata; ``journal``: appends
  that finish when run again; ``region``: where data lands in stored arrays; ``blocks`` and
  ``compute``: the Dask tasks of a write and where they run; ``cf``: xarray's CF encoding.
- ``options`` (``WriteOptions``): the keywords of a write; ``variables``: each variable planned;
  ``dataset``: ``to_store`` of one dataset; ``tree``: of a ``DataTree``.
- ``coarsen``: the pyramid kernels (one per method); ``pyramid``: the pyramid's plan
  (``Multiscale``, levels, chunks); ``ome``: the OME-NGFF ``multiscales`` metadata, built once
  for every writer; ``multiscale``: writing a pyramid.
- ``accessor``: the ``.zaro`` accessors; ``streaming``: the streaming device (``xzaro.streaming``).
"""

from __future__ import annotations

from xzaro.errors import AlignmentError
from xzaro.writers.compression import BloscCompressionParams
from xzaro.writers.options import WriteOptions
from xzaro.writers.store_array import write_array, write_group, write_metadata
from xzaro.writers.writer import ChunkWriter, ShardWriter, Writer, writer_for

__all__ = [
    "AlignmentError",
    "BloscCompressionParams",
    "ChunkWriter",
    "ShardWriter",
    "WriteOptions",
    "Writer",
    "write_array",
    "write_group",
    "write_metadata",
    "writer_for",
]
