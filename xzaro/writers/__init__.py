"""Writing Zarr V2 and V3 stores through the same codec and store layers the reader uses."""

from __future__ import annotations

from xzaro.writers.store_array import write_array, write_group

__all__ = ["write_array", "write_group"]
