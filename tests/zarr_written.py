"""Small stores written by zarr-python, for tests that damage them as an attacker would.

Each function writes a store with zarr-python (imported when called) and returns where it is;
:data:`VALUES` is what the one-chunk stores hold and :data:`SECRET` what a file placed outside a
store holds (it must never show up in a read).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: What the file placed outside a store holds; it must never show up in a read.
SECRET = b"SECRET!!"
VALUES = np.arange(8, dtype="u1")


def zarr_v2_store(root: Path, *, consolidated: bool = True) -> Path:
    """A V2 group with one uncompressed uint8 array ``v`` of 8 values (one chunk)."""
    import zarr

    group = zarr.open_group(root, mode="w", zarr_format=2)
    array = group.create_array(
        "v", shape=(8,), chunks=(8,), dtype="u1", compressors=None, fill_value=0
    )
    array[:] = VALUES
    array.attrs["_ARRAY_DIMENSIONS"] = ["x"]
    if consolidated:
        zarr.consolidate_metadata(root)
    return root


def zarr_v3_store(root: Path, *, consolidated: bool = True) -> Path:
    """A V3 group with one uncompressed uint8 array ``v`` of 8 values (one chunk)."""
    import zarr

    group = zarr.open_group(root, mode="w", zarr_format=3)
    array = group.create_array(
        "v",
        shape=(8,),
        chunks=(8,),
        dtype="u1",
        compressors=None,
        fill_value=0,
        dimension_names=["x"],
    )
    array[:] = VALUES
    if consolidated:
        zarr.consolidate_metadata(root)
    return root


def sharded_store(root: Path, columns: int = 64) -> tuple[Path, np.ndarray]:
    """A V3 array ``v`` of 4 uncompressed shards (4 inner chunks each), written by zarr; each
    shard holds ``columns`` KiB of values."""
    import zarr

    data = np.arange(4 * 1024 * columns, dtype="<i4").reshape(4 * 1024, columns)
    group = zarr.open_group(root, mode="w", zarr_format=3)
    array = group.create_array(
        "v",
        shape=data.shape,
        chunks=(256, columns),
        shards=(1024, columns),
        dtype="<i4",
        compressors=None,
    )
    array[:] = data
    return root, data
