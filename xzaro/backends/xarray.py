"""The xarray engine ``"zaro"``: ``xr.open_dataset(url, engine="zaro")`` and friends.

A thin entrypoint builds a :class:`ZaroDataStore` over xzaro's metadata and arrays and hands it
to xarray's own CF decoding (``StoreBackendEntrypoint``), so scale/offset packing, ``_FillValue``,
times and coordinates behave as with ``engine="zarr"``. Variables are lazily indexed
:class:`ZaroBackendArray` objects; each ``__getitem__`` is one batched fetch of every stored
object the region covers, decoded in parallel.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from types import FrameType
from typing import Any

import numpy as np
import xarray
from xarray.backends.common import AbstractDataStore, BackendArray, BackendEntrypoint
from xarray.backends.store import StoreBackendEntrypoint
from xarray.core import indexing
from xarray.core.utils import is_remote_uri
from xarray.core.variable import Variable

from xzaro.array import ZaroArray
from xzaro.backends.cf import decode_fill_attribute
from xzaro.backends.ome import OMENode
from xzaro.backends.ome_nodes import ome_node, ome_tree
from xzaro.backends.read_unit import (
    ReadUnit,
    SharedBlockSizes,
    check_read_unit,
    read_unit_shape,
)
from xzaro.codecs import (
    ARRAY_ARRAY,
    ARRAY_BYTES,
    BYTES_BYTES,
    Codec,
    V3CodecLike,
    v2_codec_json,
)
from xzaro.errors import MetadataError, NameMismatchError, NodeNotFoundError
from xzaro.hierarchy import NodeIndex, ZaroGroup, open_index
from xzaro.log import info, verbose_call
from xzaro.meta import GroupMeta, ZaroMeta
from xzaro.read_ahead import check_read_ahead, pays_off
from xzaro.stores import FsspecStore, LocalStore
from xzaro.stores.registry import glob

#: URL schemes only xzaro understands (``guess_can_open`` claims these and nothing else).
XZARO_SCHEMES = ("reference+json://", "reference+parquet://", "virtualizarr://")


class ZaroBackendArray(BackendArray):
    """A lazily indexed Zarr array for xarray: outer indexing, thread-safe, small to pickle."""

    def __init__(self, array: ZaroArray) -> None:
        self.zaro_array = array
        self.shape = array.shape
        self.dtype = array.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        return np.asarray(self.zaro_array.oindex[key])

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return await asyncio.to_thread(self.__getitem__, key)


def _dimension_names(meta: ZaroMeta, url: str, path: str) -> tuple[str, ...]:
    if meta.dimension_names is not None:
        if any(d is None for d in meta.dimension_names):
            raise MetadataError(
                f"dimension_names {list(meta.dimension_names)} has unnamed dimensions, which "
                "xarray needs named",
                url=url,
                key=path,
                field="dimension_names",
            )
        return tuple(str(d) for d in meta.dimension_names)
    if meta.ndim == 0:
        return ()
    dimrefs = (meta.raw.get("_NCZARR_ARRAY") or {}).get("dimrefs")  # NCZarr stores
    if isinstance(dimrefs, list) and len(dimrefs) == meta.ndim:
        return tuple(str(d).rsplit("/", 1)[-1] for d in dimrefs)
    field = "dimension_names" if meta.zarr_format == 3 else "_ARRAY_DIMENSIONS"
    raise NameMismatchError(
        f"the array has no {field}, which is required for xarray to determine variable dimensions",
        url=url,
        key=path,
        field=field,
    )


def _numcodecs_object(entry: dict) -> Any:
    """A V2 ``filters``/``compressor`` entry as the numcodecs object zarr-python gives."""
    import numcodecs

    try:
        return numcodecs.get_codec(dict(entry))
    except (ValueError, KeyError, TypeError):  # numcodecs cannot build it: its JSON, which
        return dict(entry)  # to_zarr takes too


def _canonical_json(doc: Mapping) -> Any:
    try:
        doc = json.loads(json.dumps(doc))
    except (TypeError, ValueError):
        return doc
    if isinstance(doc, dict) and not doc.get("configuration"):
        doc.pop("configuration", None)
    return doc


class CodecJSON(dict):
    """A V3 codec's JSON (``{"name": ..., "configuration": {...}}``) as ``engine="zaro"`` puts it
    in ``encoding``.

    A plain ``dict`` to ``to_zarr`` and ``to_store``, and equal to a zarr-python codec object
    with the same JSON (``engine="zarr"`` gives those objects; xzaro does not import zarr).
    """

    @classmethod
    def of(cls, codec: Codec) -> CodecJSON:
        """The JSON of an xzaro codec."""
        return cls(codec.to_json())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, V3CodecLike) and not isinstance(other, Mapping):
            other = other.to_dict()
        if not isinstance(other, Mapping):
            return NotImplemented
        return bool(_canonical_json(self) == _canonical_json(other))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None


def codec_encoding_of(meta: ZaroMeta) -> dict[str, Any]:
    """``compressors``, ``filters`` (and, for V3, ``serializer``) as ``engine="zarr"`` gives them.

    V2: the stored ``filters`` and ``compressor`` as numcodecs objects, exactly as zarr-python
    (a string array's ``vlen-utf8`` is a filter there too). V3: each codec's V3 JSON as a
    :class:`CodecJSON` (the form of zarr-python's ``codec.to_dict()``, which ``to_zarr``
    accepts and which compares equal to zarr-python's codec object), split as zarr-python
    splits the chain (a sharded array's inner chain). Either goes back into ``to_zarr`` (for
    the same format, as with ``engine="zarr"``) or ``to_store`` (for either format).
    """
    if meta.zarr_format == 2:
        if meta.raw:
            filters, compressor = meta.raw.get("filters"), meta.raw.get("compressor")
        else:
            filters, compressor = v2_codec_json(meta.codecs)
        return {
            "compressors": () if compressor is None else (_numcodecs_object(compressor),),
            "filters": tuple(_numcodecs_object(f) for f in filters or ()),
        }
    sharding = meta.sharding
    chain = sharding.codecs if sharding is not None else meta.codecs
    kinds = [c.kind for c in chain]
    return {
        "compressors": tuple(CodecJSON.of(c) for c, k in zip(chain, kinds) if k == BYTES_BYTES),
        "filters": tuple(CodecJSON.of(c) for c, k in zip(chain, kinds) if k == ARRAY_ARRAY),
        "serializer": next(CodecJSON.of(c) for c, k in zip(chain, kinds) if k == ARRAY_BYTES),
    }


def warn_if_not_consolidated(index: NodeIndex) -> None:
    """Warn as ``engine="zarr"`` does when ``consolidated=None`` found no consolidated metadata
    in a store on a file system or object store (reference stores hold all their metadata in
    one document anyway); call it once the node to open was found."""
    if index.consolidated is not None or not isinstance(index.store, (FsspecStore, LocalStore)):
        return
    warnings.warn(
        f"Failed to open Zarr store with consolidated metadata at {index.store.url!r}, but "
        "successfully read with non-consolidated metadata. This is typically much slower for "
        "opening a dataset. To silence this warning, consider:\n"
        "1. Consolidating metadata in this existing store (zarr.consolidate_metadata(), or "
        "writing it with ds.zaro.to_store(..., consolidated=True)).\n"
        "2. Explicitly setting consolidated=False, to avoid trying to read consolidated "
        "metadata, or\n"
        "3. Explicitly setting consolidated=True, to raise an error in this case instead of "
        "falling back to try reading non-consolidated metadata.",
        RuntimeWarning,
        stacklevel=_user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first caller outside xzaro and xarray (the user's code)."""
    packages = (
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
        os.path.dirname(os.path.abspath(xarray.__file__)) + os.sep,
    )
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(packages):
        frame, level = frame.f_back, level + 1
    return level


def open_mfdataset(paths: str | os.PathLike | Sequence[Any], **kwargs: Any) -> Any:
    """``xr.open_mfdataset(paths, engine="zaro", **kwargs)``, remote glob patterns included.

    xarray expands a glob pattern of remote stores (``"s3://bucket/run-*.zarr"``) only for its
    own zarr engine and refuses it for any other; here it is expanded with fsspec (with the
    ``storage_options`` given for the stores, as a keyword or in ``backend_kwargs``) and the
    matching stores, sorted, are opened. Local patterns, lists and every keyword are
    ``xr.open_mfdataset``'s own.

    Raises
    ------
    NodeNotFoundError
        No store matches a remote pattern.
    StoreError
        The pattern's file system cannot be listed.
    """
    engine = kwargs.pop("engine", "zaro")
    if engine != "zaro":
        raise ValueError(f"xzaro.open_mfdataset opens stores with engine='zaro', got {engine!r}")
    if isinstance(paths, str) and is_remote_uri(paths):
        options = kwargs.get("storage_options")
        if options is None:
            options = (kwargs.get("backend_kwargs") or {}).get("storage_options")
        pattern, paths = paths, glob(paths, options)
        if not paths:
            raise NodeNotFoundError("no store matches the pattern", url=pattern)
    return xarray.open_mfdataset(paths, engine="zaro", **kwargs)


class ZaroDataStore(AbstractDataStore):
    """The variables and attributes of one group, as xarray's store interface wants them."""

    def __init__(
        self,
        index: NodeIndex,
        group: str = "",
        *,
        use_zarr_fill_value_as_mask: bool | None = None,
        keep_variables: Iterable[str] | None = None,
        read_unit: ReadUnit = None,
        read_ahead: bool | None = None,
    ) -> None:
        self.index = index
        self.group = group.strip("/")
        meta = index.get(self.group)
        if not isinstance(meta, GroupMeta):
            raise NodeNotFoundError(
                "this node is an array, not a group", url=index.store.url, key=self.group
            )
        self.group_meta = meta
        if use_zarr_fill_value_as_mask is None:
            use_zarr_fill_value_as_mask = meta.zarr_format == 2
        self.use_zarr_fill_value_as_mask = use_zarr_fill_value_as_mask
        self.keep_variables = None if keep_variables is None else list(keep_variables)
        check_read_unit(read_unit)
        self.read_unit = read_unit
        self.block_sizes = SharedBlockSizes()
        check_read_ahead(read_ahead)
        self.read_ahead = read_ahead

    def _path(self, name: str) -> str:
        return f"{self.group}/{name}" if self.group else name

    def _arrays(self) -> dict[str, ZaroMeta]:
        if self.keep_variables is None:
            children = self.index.children(self.group)
            return {k: v for k, v in children.items() if isinstance(v, ZaroMeta)}
        return self._kept_arrays(self.keep_variables)

    def _kept_arrays(self, names: list[str]) -> dict[str, ZaroMeta]:
        """The kept variables and the coordinates they need, reading no other metadata."""
        found: dict[str, ZaroMeta] = {}
        todo = list(dict.fromkeys(names))
        required = set(todo)
        while todo:
            name = todo.pop(0)
            if name in found:
                continue
            try:
                meta = self.index.get(self._path(name))
            except NodeNotFoundError:
                if name in required:
                    raise
                continue
            if not isinstance(meta, ZaroMeta):
                continue
            found[name] = meta
            dims = meta.dimension_names or ()
            coords = str(meta.attributes.get("coordinates", "")).split()
            todo.extend(d for d in [*dims, *coords] if d and d not in found)
        return found

    def get_variables(self) -> dict[str, Variable]:
        arrays = self._arrays()
        if isinstance(self.read_unit, Mapping):
            known = {str(d) for meta in arrays.values() for d in (meta.dimension_names or ())}
            unknown = sorted(set(self.read_unit) - known)
            if unknown:
                raise ValueError(
                    f"read_unit names dimensions {unknown} that no variable has; "
                    f"the dimensions are {sorted(known)}"
                )
        variables = {name: self._variable(name, meta) for name, meta in arrays.items()}
        self._dimension_sizes(variables)  # xarray's own refusal is a bare ValueError
        return variables

    def _variable(self, name: str, meta: ZaroMeta) -> Variable:
        path = self._path(name)
        array = ZaroArray(self.index.store, meta, path, verbose=self.index.verbose)
        if self.read_ahead or (self.read_ahead is None and pays_off(array.store, meta)):
            array.enable_read_ahead()
        dims = _dimension_names(meta, self.index.store.url, path)
        attrs = {k: v for k, v in meta.attributes.items() if not k.lower().startswith("_nc")}
        unit = self.block_sizes.preferred(read_unit_shape(meta, self.read_unit, dims), meta.shape)
        encoding: dict[str, Any] = {
            "chunks": array.chunks,
            "preferred_chunks": dict(zip(dims, unit)),
            "shards": array.shards,
            "dtype": meta.dtype,
            "zarr_format": meta.zarr_format,
            "codecs": meta.describe_codecs(),
            "fill_value": meta.fill_value,
            **codec_encoding_of(meta),
        }
        if self.use_zarr_fill_value_as_mask:
            if meta.fill_value is not None:
                attrs["_FillValue"] = meta.fill_value
        elif "_FillValue" in attrs:
            attrs["_FillValue"] = decode_fill_attribute(attrs["_FillValue"], meta.dtype)
        data = indexing.LazilyIndexedArray(ZaroBackendArray(array))
        return Variable(dims, data, attrs, encoding)

    def get_attrs(self) -> dict[str, Any]:
        return {
            k: v for k, v in self.group_meta.attributes.items() if not k.lower().startswith("_nc")
        }

    def get_dimensions(self) -> dict[str, int]:
        return self._dimension_sizes(self.get_variables())

    def _dimension_sizes(self, variables: Mapping[str, Variable]) -> dict[str, int]:
        """Each dimension's size; a dimension two arrays give different sizes is refused."""
        dims: dict[str, int] = {}
        for name, var in variables.items():
            for dim, size in zip(var.dims, var.shape):
                if dims.setdefault(str(dim), size) != size:
                    raise MetadataError(
                        f"dimension {dim!r} has size {dims[str(dim)]} and {size} (in {name!r})",
                        url=self.index.store.url,
                        key=self._path(name),
                        field="shape",
                    )
        return dims

    def get_encoding(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Nothing to close: stores hold no open handles between reads."""


class OMENodeStore(ZaroDataStore):
    """A node that an OME multiscale image shapes (see :mod:`xzaro.backends.ome`): a level (an
    array node, or a level group) with the OME axes as dimensions and physical coordinates, or
    a group holding level arrays that are nodes of their own, which it does not show."""

    def __init__(self, index: NodeIndex, node: OMENode, **kwargs: Any) -> None:
        super().__init__(index, node.group, **kwargs)
        self.node = node

    def _path(self, name: str) -> str:
        level = self.node.levels.get(name)
        return level.array_path if level is not None else super()._path(name)

    def _arrays(self) -> dict[str, ZaroMeta]:
        levels, keep = self.node.levels, self.keep_variables
        if self.node.is_array:
            unknown = [k for k in keep or () if k not in levels and k not in self.node.coordinates]
            if unknown:
                raise NodeNotFoundError(
                    f"no variable {unknown[0]!r} in this level (it holds {list(levels)})",
                    url=self.index.store.url,
                    key=self.node.path,
                )
            stored: dict[str, ZaroMeta] = {}
        else:
            stored = super()._arrays()
        arrays = {
            name: levels[name].meta if name in levels else meta
            for name, meta in stored.items()
            if name not in self.node.hidden
        }
        for name, level in levels.items():
            if keep is None or name in keep:
                arrays.setdefault(name, level.meta)
        return arrays

    def get_variables(self) -> dict[str, Variable]:
        variables = super().get_variables()
        used = {d for v in variables.values() for d in v.dims}
        for dim, (values, attrs) in self.node.coordinates.items():
            if dim in used and dim not in variables:  # a stored coordinate wins
                variables[dim] = Variable((dim,), values, dict(attrs))
        return variables

    def get_attrs(self) -> dict[str, Any]:
        return {} if self.node.is_array else super().get_attrs()


def group_store(index: NodeIndex, group: str = "", **kwargs: Any) -> ZaroDataStore:
    """The store of the node at ``group``: shaped by the OME multiscale image above or at it
    when there is one (a level array such as ``"image/0"`` opens as its level), else the plain
    group. ``kwargs`` are :class:`ZaroDataStore`'s."""
    node = ome_node(index, group)
    if node is not None:
        return OMENodeStore(index, node, **kwargs)
    return ZaroDataStore(index, group, **kwargs)


class ZaroBackendEntrypoint(BackendEntrypoint):
    """xarray's ``engine="zaro"``: Zarr V2 and V3 read by xzaro."""

    description = "Open Zarr V2 and V3 stores with xzaro (fast batched reads, no zarr-python)"
    url = "https://github.com/xzaro/xzaro"
    supports_groups = True
    open_dataset_parameters = (
        "filename_or_obj",
        "mask_and_scale",
        "decode_times",
        "concat_characters",
        "decode_coords",
        "drop_variables",
        "use_cftime",
        "decode_timedelta",
        "group",
        "consolidated",
        "storage_options",
        "zarr_format",
        "use_zarr_fill_value_as_mask",
        "verbose",
        "keep_variables",
        "read_unit",
        "read_ahead",
        "allow_unsafe_codecs",
    )

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Claim only the URL schemes no other engine reads (never plain ``*.zarr`` paths)."""
        if isinstance(filename_or_obj, os.PathLike):
            return False
        return isinstance(filename_or_obj, str) and filename_or_obj.startswith(XZARO_SCHEMES)

    @verbose_call
    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        mask_and_scale: bool = True,
        decode_times: Any = True,
        concat_characters: bool = True,
        decode_coords: Any = True,
        drop_variables: str | Iterable[str] | None = None,
        use_cftime: bool | None = None,
        decode_timedelta: Any = None,
        group: str | None = None,
        consolidated: bool | None = None,
        storage_options: dict | None = None,
        zarr_format: int | None = None,
        use_zarr_fill_value_as_mask: bool | None = None,
        verbose: bool = False,
        keep_variables: Iterable[str] | None = None,
        read_unit: ReadUnit = None,
        read_ahead: bool | None = None,
        allow_unsafe_codecs: bool = False,
    ) -> Any:
        """Open one group of a Zarr store as an ``xarray.Dataset``."""
        index = open_index(
            filename_or_obj,
            storage_options,
            consolidated,
            zarr_format,
            verbose,
            allow_unsafe_codecs,
        )
        store = group_store(
            index,
            group or "",
            use_zarr_fill_value_as_mask=use_zarr_fill_value_as_mask,
            keep_variables=keep_variables,
            read_unit=read_unit,
            read_ahead=read_ahead,
        )
        if consolidated is None:
            warn_if_not_consolidated(index)
        info("xarray engine zaro: %s group %r (%s)", index.store.url, group or "/", index.source)
        return StoreBackendEntrypoint().open_dataset(
            store,
            mask_and_scale=mask_and_scale,
            decode_times=decode_times,
            concat_characters=concat_characters,
            decode_coords=decode_coords,
            drop_variables=drop_variables,
            use_cftime=use_cftime,
            decode_timedelta=decode_timedelta,
        )

    @verbose_call
    def open_groups_as_dict(
        self,
        filename_or_obj: Any,
        *,
        group: str | None = None,
        consolidated: bool | None = None,
        storage_options: dict | None = None,
        zarr_format: int | None = None,
        use_zarr_fill_value_as_mask: bool | None = None,
        verbose: bool = False,
        read_unit: ReadUnit = None,
        read_ahead: bool | None = None,
        allow_unsafe_codecs: bool = False,
        **decoders: Any,
    ) -> dict[str, Any]:
        """Every group at and below ``group`` as a dataset, keyed by path (``"/"``, ``"/a"``).

        An OME multiscale image gives one node per level (see :mod:`xzaro.backends.ome`): level
        arrays in the image group become nodes of their own, named by their path. ``group`` may
        name a level array. ``decoders`` are :meth:`open_dataset`'s CF options
        (``mask_and_scale``, …).
        """
        index = open_index(
            filename_or_obj,
            storage_options,
            consolidated,
            zarr_format,
            verbose,
            allow_unsafe_codecs,
        )
        root_path = (group or "").strip("/")
        root = index.get(root_path)
        if consolidated is None:
            warn_if_not_consolidated(index)
        groups = [root_path] if isinstance(root, GroupMeta) else []
        if isinstance(root, GroupMeta):
            for sub, child in ZaroGroup(index, root, root_path).walk():
                if isinstance(child, ZaroGroup):
                    groups.append(f"{root_path}/{sub}" if root_path else sub)
        nodes = ome_tree(index, root_path, groups[1:])
        if not groups and root_path not in nodes:
            raise NodeNotFoundError(
                "this node is an array, not a group", url=index.store.url, key=root_path or "/"
            )
        paths = [root_path] if not groups else []
        for path in groups:  # each group, then the level arrays it holds as nodes of their own
            paths.append(path)
            paths.extend(p for p, n in nodes.items() if n.is_array and n.group == path)
        decode = StoreBackendEntrypoint()
        out: dict[str, Any] = {}
        for path in paths:
            options: dict[str, Any] = {
                "use_zarr_fill_value_as_mask": use_zarr_fill_value_as_mask,
                "read_unit": read_unit,
                "read_ahead": read_ahead,
            }
            node = nodes.get(path)
            store = (
                OMENodeStore(index, node, **options)
                if node is not None
                else ZaroDataStore(index, path, **options)
            )
            out["/" + path[len(root_path) :].strip("/")] = decode.open_dataset(store, **decoders)
        return out

    def open_datatree(self, filename_or_obj: Any, **kwargs: Any) -> Any:
        """The group tree at and below ``group`` as an ``xarray.DataTree``; keywords as
        :meth:`open_groups_as_dict`."""
        from xarray.core.datatree import DataTree

        groups = self.open_groups_as_dict(filename_or_obj, **kwargs)
        try:
            return DataTree.from_dict(groups)
        except ValueError as err:  # xarray's: a child not aligned with its parent
            url = filename_or_obj if isinstance(filename_or_obj, str) else None
            raise MetadataError(f"the groups do not form an xarray tree: {err}", url=url) from err
