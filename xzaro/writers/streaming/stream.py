"""acquire-zarr 0.10's stream over xzaro's streaming device: several arrays and HCS plates in
one store, each array written by its own :class:`~.device.ZarrV3` (or ``ZarrV2``).

A script written for acquire-zarr runs by importing these names from :mod:`xzaro.acquire`:
``ZarrStream(StreamSettings(store_path=..., arrays=[ArraySettings(...)]))``, ``append(data,
key=...)``, ``write_custom_metadata(...)``, ``close()``. Groups above the arrays (the root,
intermediate groups, plates and wells) are written once when the stream opens; each array's
metadata is rewritten by its device as rows are stored, and with the true extent at
:meth:`ZarrStream.close`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from xzaro.errors import StreamingError
from xzaro.meta import GroupMeta
from xzaro.paths import check_group_path, join
from xzaro.stores import Store, open_store
from xzaro.writers.store_array import delete_below, write_metadata
from xzaro.writers.streaming.config import dump_text, load_text, stream_from_dict, stream_to_dict
from xzaro.writers.streaming.device import Zarr, ZarrV2, ZarrV3
from xzaro.writers.streaming.hcs import field_arrays, plate_attributes, well_attributes, well_path
from xzaro.writers.streaming.properties import StorageProperties, validate_properties
from xzaro.writers.streaming.settings import (
    METHOD_NAMES,
    ArraySettings,
    Plate,
    S3Settings,
    ZarrVersion,
    blosc_params,
    device_dimensions,
    numpy_dtype,
)


@dataclass(kw_only=True)
class StreamSettings:
    """Where and what to stream.

    Parameters
    ----------
    store_path
        A local path, or the key prefix in the bucket of ``s3``.
    s3
        :class:`~.settings.S3Settings`, or ``None`` for the local file system.
    version
        :class:`~.settings.ZarrVersion` (``V3``; ``V2`` writes chunked arrays, no plates).
    max_threads
        Accepted for acquire-zarr's scripts (0: automatic); xzaro's writer sizes its own
        bounded pools.
    overwrite
        Replace what the store path holds; without it, a store path holding data is refused.
    arrays
        :class:`~.settings.ArraySettings` of the arrays outside plates.
    hcs_plates
        :class:`~.settings.Plate` list; each field of view is one more array.
    """

    store_path: str = ""
    s3: S3Settings | None = None
    version: ZarrVersion = ZarrVersion.V3
    max_threads: int = 0
    overwrite: bool = False
    arrays: list[ArraySettings] = field(default_factory=list)
    hcs_plates: list[Plate] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The settings as acquire-zarr's configuration document (schema version 2)."""
        return stream_to_dict({f.name: getattr(self, f.name) for f in fields(self)})

    @staticmethod
    def from_dict(data: dict) -> StreamSettings:
        """Settings from acquire-zarr's configuration document."""
        return StreamSettings(**stream_from_dict(data))

    def to_json(self) -> str:
        """The configuration document as JSON."""
        return dump_text(self.to_dict(), yaml_text=False)

    def to_yaml(self) -> str:
        """The configuration document as YAML (needs PyYAML)."""
        return dump_text(self.to_dict(), yaml_text=True)

    @staticmethod
    def from_string(text: str) -> StreamSettings:
        """Settings from a JSON or YAML configuration document."""
        return StreamSettings.from_dict(load_text(text))

    @staticmethod
    def from_file(path: str) -> StreamSettings:
        """Settings from a JSON or YAML configuration file."""
        with open(path, encoding="utf-8") as f:
            return StreamSettings.from_string(f.read())

    def to_file(self, path: str) -> None:
        """Write the configuration document: JSON for a ``.json`` path, else YAML."""
        text = dump_text(self.to_dict(), yaml_text=not str(path).endswith(".json"))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def get_array_keys(self) -> list[str]:
        """The key of every array: ``output_key`` of each array, then each plate's fields."""
        return [key for key, _, _ in planned_arrays(self)]

    def get_maximum_memory_usage(self) -> int:
        """Bytes the frame buffers of every array may use at most."""
        total = 0
        for _, array, ngff in planned_arrays(self):
            device = configured_device(self, array, ngff, root_url(self)[0])
            total += device.get_meta().buffer_bytes
        return total


def zarr_format_of(settings: StreamSettings) -> int:
    """The Zarr format of :attr:`StreamSettings.version`."""
    return 3 if ZarrVersion(settings.version) is ZarrVersion.V3 else 2


def root_url(settings: StreamSettings) -> tuple[str, dict[str, Any]]:
    """The store's URL and fsspec options (a local path, or ``s3://bucket/store_path``)."""
    if settings.s3 is None:
        if not settings.store_path:
            raise StreamingError("store_path must not be empty")
        return settings.store_path, {}
    s3 = settings.s3
    if not s3.bucket_name:
        raise StreamingError("s3: bucket_name must not be empty")
    client: dict[str, Any] = {}
    if s3.endpoint:
        client["endpoint_url"] = s3.endpoint
    if s3.region:
        client["region_name"] = s3.region
    url = "s3://" + join(s3.bucket_name, settings.store_path)
    return url, {"client_kwargs": client} if client else {}


def planned_arrays(settings: StreamSettings) -> list[tuple[str, ArraySettings, bool]]:
    """``(key, settings, OME-NGFF)`` of every array of the stream, checked.

    Raises
    ------
    StreamingError
        No array, a key twice, a key inside another array, or plates with Zarr V2.
    """
    if not isinstance(settings.max_threads, int) or settings.max_threads < 0:
        raise StreamingError(f"max_threads must be an integer >= 0, got {settings.max_threads!r}")
    planned = []
    for array in settings.arrays:
        ngff = bool(array.is_ngff or array.downsampling_method is not None)
        planned.append((check_group_path(array.output_key or ""), array, ngff))
    if settings.hcs_plates and ZarrVersion(settings.version) is not ZarrVersion.V3:
        raise StreamingError("hcs_plates need version=ZarrVersion.V3 (OME-NGFF 0.5)")
    for plate in settings.hcs_plates:
        planned += [(check_group_path(k), a, True) for k, a in field_arrays(plate)]
    if not planned:
        raise StreamingError("a stream needs at least one array (arrays or hcs_plates)")
    keys = [key for key, _, _ in planned]
    for key in keys:
        if keys.count(key) > 1:
            raise StreamingError(f"output_key {key!r} is given to more than one array")
        inside = [k for k in keys if k != key and (not key or k.startswith(key + "/"))]
        if inside:
            raise StreamingError(f"array {key!r} would hold the arrays {inside}")
    return planned


def array_properties(
    settings: StreamSettings, array: ArraySettings, ngff: bool, uri: str
) -> StorageProperties:
    """The device properties of one array stored at ``uri``."""
    method = array.downsampling_method
    if not isinstance(array.max_levels, int) or array.max_levels < 0:
        raise StreamingError(f"max_levels must be an integer >= 0, got {array.max_levels!r}")
    return StorageProperties(
        uri=uri,
        acquisition_dimensions=device_dimensions(array, zarr_format_of(settings)),
        enable_multiscale=method is not None,
        compression=blosc_params(array.compression),
        overwrite=True,  # the stream clears (or refuses) the whole store path first
        storage_options=root_url(settings)[1],
        downsampling_method=METHOD_NAMES[method] if method is not None else "mean",
        max_levels=array.max_levels,
        ngff=ngff,
        conventions="acquire-zarr",
    )


def configured_device(settings: StreamSettings, array: ArraySettings, ngff: bool, uri: str) -> Zarr:
    """A device set up (not started) for one array stored at ``uri``."""
    device = (ZarrV3 if zarr_format_of(settings) == 3 else ZarrV2)()
    props = array_properties(settings, array, ngff, uri)
    device.set(props)
    dims = props.acquisition_dimensions
    device.reserve_image_shape(
        (dims[1].array_size_px, dims[0].array_size_px), numpy_dtype(array.data_type)
    )
    return device


@dataclass
class _ArrayStream:
    """One array of an open stream: its device, frame shape and bound (0: none) in frames."""

    device: Zarr
    frame: tuple[int, int]
    dtype: np.dtype
    max_frames: int


class ZarrStream:
    """Frames streamed into the arrays of :class:`StreamSettings`, open from construction on.

    Raises
    ------
    StreamingError
        Invalid settings, or a store path holding data without ``overwrite``.
    """

    def __init__(self, settings: StreamSettings) -> None:
        self._arrays: dict[str, _ArrayStream] = {}
        planned = planned_arrays(settings)
        url, options = root_url(settings)
        zarr_format = zarr_format_of(settings)
        for _, array, ngff in planned:  # every array checked before the store is touched
            validate_properties(array_properties(settings, array, ngff, url), zarr_format)
            numpy_dtype(array.data_type)
        store = open_store(url, options or None, mode="a")
        if store.list(""):
            if not settings.overwrite:
                raise StreamingError(
                    f"store_path {url!r} already holds data; set overwrite=True to replace it"
                )
            delete_below(store, "")
        _write_groups(store, settings, [key for key, _, _ in planned], zarr_format)
        try:
            for key, array, ngff in planned:
                self._open_array(settings, key, array, ngff, url)
        except BaseException:
            self.close()
            raise

    def _open_array(
        self, settings: StreamSettings, key: str, array: ArraySettings, ngff: bool, url: str
    ) -> None:
        uri = f"{url.rstrip('/')}/{key}" if key else url
        device = configured_device(settings, array, ngff, uri)
        device.start()
        dims = device.get().acquisition_dimensions
        bound = array.dimensions[0].array_size_px
        per_step = int(np.prod([d.array_size_px for d in dims[2:-1]], dtype=np.int64))
        frame = (dims[1].array_size_px, dims[0].array_size_px)
        dtype = numpy_dtype(array.data_type)
        self._arrays[key] = _ArrayStream(device, frame, dtype, bound * per_step)

    def _array(self, key: str | None) -> _ArrayStream:
        if not self.is_active():
            raise StreamingError("the stream is closed: it takes no more frames or metadata")
        if key is None:
            if len(self._arrays) != 1:
                raise StreamingError(f"a key is needed: the arrays are {sorted(self._arrays)}")
            return next(iter(self._arrays.values()))
        found = self._arrays.get(check_group_path(key))
        if found is None:
            raise StreamingError(f"no array {key!r}; the arrays are {sorted(self._arrays)}")
        return found

    def append(self, data: Any, key: str | None = None) -> None:
        """Append whole frames (any shape holding a whole number of ``(y, x)`` frames, in C
        order) to the array ``key`` (may be left out when the stream has one array).

        Raises
        ------
        StreamingError
            A closed stream, an unknown key, another dtype (never cast), part of a frame, or
            more frames than a bounded first dimension holds.
        """
        target = self._array(key)
        frames = np.asarray(data)
        if frames.dtype != target.dtype:
            raise StreamingError(
                f"data has dtype {frames.dtype}, the array {key!r} holds {target.dtype}"
            )
        pixels = target.frame[0] * target.frame[1]
        if frames.size % pixels:
            raise StreamingError(
                f"data of shape {frames.shape} is not a whole number of {target.frame} frames"
            )
        n = frames.size // pixels
        if target.max_frames and target.device.frames_written + n > target.max_frames:
            raise StreamingError(
                f"array {key!r}: {n} more frames would go beyond its first dimension "
                f"({target.max_frames} frames)"
            )
        target.device.append(frames.reshape(n, *target.frame))

    def write_custom_metadata(
        self,
        metadata: str | dict,
        *,
        array_key: str | None = None,
        metadata_key: str | None = None,
    ) -> bool:
        """Add ``metadata`` (a JSON object, as text or a dict) to the attributes of the array's
        node (its OME-NGFF group, or the array itself): merged, or under ``metadata_key``.

        Returns ``True`` once written. ``array_key`` may be left out with one array.

        Raises
        ------
        StreamingError
            A closed stream, an unknown key, text that is no JSON, or a non-object to merge.
        """
        target = self._array(array_key)
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError as e:
                raise StreamingError(f"custom metadata is not valid JSON: {e}") from None
        if metadata_key:
            attrs = {metadata_key: metadata}
        elif isinstance(metadata, dict):
            attrs = metadata
        else:
            raise StreamingError("custom metadata without metadata_key must be a JSON object")
        target.device.update_attributes(attrs)
        return True

    def is_active(self) -> bool:
        """Whether the stream takes frames (until :meth:`close`)."""
        return bool(self._arrays)

    def get_current_memory_usage(self) -> int:
        """Bytes the frame buffers of every array may use (0 once closed)."""
        return sum(a.device.get_meta().buffer_bytes for a in self._arrays.values())

    def close(self) -> None:
        """Write the partial rows and the final metadata of every array (idempotent)."""
        arrays, self._arrays = self._arrays, {}
        error: BaseException | None = None
        for array in arrays.values():
            try:
                array.device.stop()
            except BaseException as e:  # stop the other arrays, then raise the first failure
                error = error or e
        if error is not None:
            raise error

    def __enter__(self) -> ZarrStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if self._arrays:  # an acquisition left open: flushed, as acquire-zarr does
            self.close()


def _write_groups(
    store: Store, settings: StreamSettings, keys: list[str], zarr_format: int
) -> None:
    """The groups above the arrays: the root (unless it is an array), every intermediate
    group, and the plates and wells with their OME-NGFF metadata."""
    attrs: dict[str, dict[str, Any]] = {}
    for plate in settings.hcs_plates:
        attrs[check_group_path(plate.path)] = plate_attributes(plate)
        for well in plate.wells:
            attrs[check_group_path(well_path(plate, well))] = well_attributes(well)
    groups = set(attrs)
    for key in keys:
        parts = key.split("/") if key else []
        groups.update("/".join(parts[:i]) for i in range(len(parts)))
    for path in sorted(groups, key=lambda p: (p.count("/"), p)):
        write_metadata(store, path, GroupMeta(zarr_format, attrs.get(path, {})))
