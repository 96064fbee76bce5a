"""Virtual datasets: Kerchunk references to the chunks of NetCDF4/HDF5 files, made and combined.

:func:`scan` reads files with kerchunk (:mod:`xzaro.virtual.scan`); several files are joined
along one dimension by :func:`combine_references` (:mod:`xzaro.virtual.combine`, with the
inputs taken apart in :mod:`xzaro.virtual.inputs` and the concatenation coordinate checked in
:mod:`xzaro.virtual.coordinates`); :func:`write_references` writes JSON or Parquet
(:mod:`xzaro.stores.references.write`), which the reference stores read. ``xzaro refs`` is
:mod:`xzaro.virtual.cli`.
"""

from __future__ import annotations

from xzaro.stores.references.write import DEFAULT_RECORD_SIZE, write_references
from xzaro.virtual.combine import combine_references, concat_extent
from xzaro.virtual.coordinates import Extent
from xzaro.virtual.scan import DEFAULT_INLINE_THRESHOLD, scan

__all__ = [
    "DEFAULT_INLINE_THRESHOLD",
    "DEFAULT_RECORD_SIZE",
    "Extent",
    "combine_references",
    "concat_extent",
    "scan",
    "write_references",
]
