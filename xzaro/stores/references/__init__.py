"""Reference stores: read-only stores whose keys point into other files (Kerchunk, VirtualiZarr).

* :mod:`~xzaro.stores.references.kerchunk`: :class:`ReferenceStore`, over a Kerchunk JSON file
  (templates and ``gen`` entries: :mod:`~xzaro.stores.references.templates`);
* :mod:`~xzaro.stores.references.parquet`: :class:`ParquetReferenceStore`, over the Parquet
  layout (:mod:`~xzaro.stores.references.parquet_layout`,
  :mod:`~xzaro.stores.references.records`); :mod:`~xzaro.stores.references.write` writes both
  formats;
* :mod:`~xzaro.stores.references.base`: what both stores share; target files are resolved by
  :mod:`~xzaro.stores.references.targets` against the allow-list
  (:mod:`~xzaro.stores.references.allowlist`) and read by
  :mod:`~xzaro.stores.references.fetch`; documents are read bounded
  (:mod:`~xzaro.stores.references.documents`).
"""

from __future__ import annotations

from xzaro.stores.references.kerchunk import ReferenceStore
from xzaro.stores.references.parquet import ParquetReferenceStore
from xzaro.stores.references.write import write_references

__all__ = ["ParquetReferenceStore", "ReferenceStore", "write_references"]
