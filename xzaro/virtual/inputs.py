"""Single-file reference documents taken apart for combining: metadata, chunks, coordinates.

Each input's references are split into the metadata and the chunk references of each array
(:class:`ReferenceInput`); the coordinates the combination depends on are read from the target
files and decoded with the ``zaro`` engine, exactly as they will decode from the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xzaro.errors import MetadataError, UnsupportedError, ZaroError
from xzaro.stores.memory import MemoryStore
from xzaro.stores.references.allowlist import url_protocols
from xzaro.stores.references.fetch import TargetFetcher
from xzaro.stores.references.kerchunk import parse_references, reference_value
from xzaro.stores.references.parquet_layout import META_NAMES, chunk_grids, locate_chunk
from xzaro.stores.references.targets import TargetResolver

#: Attributes that change what a variable's stored numbers mean: files whose variables differ
#: in one of these cannot share one set of metadata.
_ENCODING_ATTRS = (
    "_ARRAY_DIMENSIONS",
    "units",
    "calendar",
    "scale_factor",
    "add_offset",
    "_FillValue",
    "missing_value",
    "_Unsigned",
    "dtype",
)


@dataclass
class ReferenceInput:
    """One file's references, split into metadata and chunk references per array."""

    name: str
    refs: dict[str, Any]
    zarrays: dict[str, dict[str, Any]]  # array path -> .zarray
    zattrs: dict[str, dict[str, Any]]  # array path -> .zattrs
    chunks: dict[str, dict[tuple[int, ...], Any]]  # array path -> chunk index -> reference
    groups: dict[str, Any]  # group metadata keys -> values
    decoded: Any = None  # the decoded dimension coordinates (xarray.Dataset)
    raw: Any = None  # the same, as stored (xarray.Dataset)

    def coordinate(self, dim: str) -> np.ndarray:
        """The decoded values of the coordinate ``dim`` (after :func:`load_coordinates`)."""
        return np.asarray(self.decoded[dim].values)


def _json(key: str, value: Any, url: str) -> dict[str, Any]:
    raw = reference_value(key, value, url)
    if not isinstance(raw, bytes):
        raise MetadataError("metadata must be stored inline in the references", url=url, key=key)
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise MetadataError(f"invalid JSON: {exc}", url=url, key=key) from exc
    if not isinstance(doc, dict):
        raise MetadataError("metadata must be a JSON object", url=url, key=key)
    return doc


def split_references(doc: Mapping[str, Any], name: str) -> ReferenceInput:
    """One file's reference document (Zarr V2, as kerchunk writes it) taken apart; ``name``
    is what messages call it.

    Raises
    ------
    UnsupportedError
        The references are Zarr V3.
    MetadataError
        A metadata document is not inline JSON, or a key is neither metadata nor a chunk.
    """
    refs = parse_references(dict(doc), name)
    if any(key.rpartition("/")[2] == "zarr.json" for key in refs):
        raise UnsupportedError(
            "only Zarr V2 references (as kerchunk writes them) can be combined", url=name
        )
    metadata = {k: v for k, v in refs.items() if k.rpartition("/")[2] in META_NAMES}
    grids = chunk_grids({k: v for k, v in metadata.items() if k.endswith(".zarray")}, name)
    zarrays = {path: _json(f"{path}/.zarray", refs[f"{path}/.zarray"], name) for path in grids}
    zattrs = {
        path: _json(f"{path}/.zattrs", refs[f"{path}/.zattrs"], name)
        if f"{path}/.zattrs" in refs
        else {}
        for path in grids
    }
    groups = {
        k: v
        for k, v in metadata.items()
        if k.rpartition("/")[0] not in grids and k.rpartition("/")[2] in (".zgroup", ".zattrs")
    }
    chunks: dict[str, dict[tuple[int, ...], Any]] = {path: {} for path in grids}
    for key, value in refs.items():
        if key in metadata:
            continue
        found = locate_chunk(grids, key)
        if found is None:
            raise MetadataError("neither metadata nor a chunk of an array", url=name, key=key)
        path, linear = found
        chunks[path][grids[path].grid.chunk_at(linear)] = value
    return ReferenceInput(name, refs, zarrays, zattrs, chunks, groups)


def array_dims(item: ReferenceInput, path: str) -> list[str]:
    """The dimension names (``_ARRAY_DIMENSIONS``) of the array at ``path``; a
    :class:`~xzaro.errors.MetadataError` if it has none for its shape."""
    dims = item.zattrs[path].get("_ARRAY_DIMENSIONS")
    if not isinstance(dims, list) or len(dims) != len(item.zarrays[path]["shape"]):
        raise MetadataError(
            "the array has no dimension names (_ARRAY_DIMENSIONS) for its shape",
            url=item.name,
            key=f"{path}/.zattrs",
            field="_ARRAY_DIMENSIONS",
        )
    return dims


def encoding(item: ReferenceInput, path: str) -> dict[str, Any]:
    """What decides how the array at ``path`` decodes: its encoding attributes, dtype and
    fill value (equal encodings mean the stored values mean the same)."""
    attrs = {k: item.zattrs[path][k] for k in _ENCODING_ATTRS if k in item.zattrs[path]}
    zarray = item.zarrays[path]
    return {**attrs, "<dtype>": zarray.get("dtype"), "<fill_value>": zarray.get("fill_value")}


def load_coordinates(
    items: Sequence[ReferenceInput], paths: Sequence[str], resolver: TargetResolver
) -> None:
    """Read the arrays ``paths`` of every input into ``item.decoded`` / ``item.raw``.

    The chunks are fetched in one batch, then each input is opened with the ``zaro`` engine
    from memory, so that the values decode exactly as they will from the combined references.
    """
    import xarray as xr

    stores: list[dict[str, bytes]] = []
    requests: list[tuple[str, str, int, int | None]] = []
    whole: list[int] = []
    where: list[tuple[int, str]] = []
    for n, item in enumerate(items):
        data: dict[str, bytes] = {".zgroup": b'{"zarr_format": 2}'}
        for path in paths:
            for key in (f"{path}/.zarray", f"{path}/.zattrs"):
                if key in item.refs:
                    data[key] = json.dumps(_json(key, item.refs[key], item.name)).encode()
            prefix = f"{path}/"
            for key, value in item.refs.items():
                if not key.startswith(prefix) or key in data:
                    continue
                ref = reference_value(key, value, item.name)
                if isinstance(ref, bytes):
                    data[key] = ref
                else:
                    if ref[2] is None:
                        whole.append(len(requests))
                    requests.append((key, *ref))
                    where.append((n, key))
        stores.append(data)
    fetcher = TargetFetcher(resolver, resolver.reference_url)
    for (n, key), value in zip(where, fetcher.fetch(requests, may_be_short=whole)):
        stores[n][key] = bytes(value)
    for item, data in zip(items, stores):
        store = MemoryStore(data)
        try:
            source: Any = store  # xarray's annotations do not name store objects
            item.decoded = xr.open_dataset(source, engine="zaro", consolidated=False).load()
            item.raw = xr.open_dataset(
                source, engine="zaro", consolidated=False, decode_cf=False
            ).load()
        except (ValueError, TypeError, OverflowError) as exc:
            if isinstance(exc, ZaroError):
                raise
            raise MetadataError(
                f"cannot decode the coordinates {list(paths)}: {exc}", url=item.name
            ) from exc


def target_protocols(refs: Mapping[str, Any]) -> set[str]:
    """The protocols of the files the references point to."""
    found: set[str] = set()
    for value in refs.values():
        if isinstance(value, list) and value and isinstance(value[0], str):
            found.update(url_protocols(value[0]))
    return found
