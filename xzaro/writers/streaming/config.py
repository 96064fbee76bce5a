"""acquire-zarr 0.10's configuration documents (schema version 2): stream settings as a dict,
JSON or YAML, both ways.

The document holds ``store_path``, ``overwrite``, ``max_threads``, ``arrays``, ``plates`` and
``s3``; enumerations are lower-case names (``"time"``, ``"blosc-lz4"``, ``"mean"``, ``"none"``).
An unknown key is refused, never ignored. :class:`~.stream.StreamSettings` reads and writes
them (``from_dict``, ``to_dict``, ``from_string``, ``to_json``, ``to_yaml``, ``from_file``,
``to_file``).
"""

from __future__ import annotations

import json
from typing import Any

from xzaro.errors import StreamingError
from xzaro.writers.streaming.settings import (
    Acquisition,
    ArraySettings,
    CompressionCodec,
    CompressionSettings,
    Compressor,
    DataType,
    Dimension,
    DimensionType,
    DownsamplingMethod,
    FieldOfView,
    Plate,
    S3Settings,
    Well,
    ZarrVersion,
    numpy_dtype,
)

#: The schema version written (acquire-zarr 0.10 reads 1 and 2).
SCHEMA_VERSION = 2
_CODECS = {"none": CompressionCodec.NONE, "blosc-lz4": CompressionCodec.BLOSC_LZ4}
_CODECS["blosc-zstd"] = CompressionCodec.BLOSC_ZSTD
_COMPRESSORS = {"none": Compressor.NONE, "blosc1": Compressor.BLOSC1}


def _name(member: Any, table: dict[str, Any]) -> str:
    return next(k for k, v in table.items() if v == member)


def _lookup(value: Any, table: dict[str, Any], what: str) -> Any:
    if value not in table:
        raise StreamingError(f"config: {what} must be one of {list(table)}, got {value!r}")
    return table[value]


def _fields(doc: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    """``doc`` as a dict whose keys are all ``allowed``."""
    if not isinstance(doc, dict):
        raise StreamingError(f"config: {what} must be a mapping, got {type(doc).__name__}")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise StreamingError(f"config: {what} has unknown keys {unknown}")
    return doc


_KINDS = {k.name.lower(): k for k in DimensionType}
_METHODS = {m.name.lower(): m for m in DownsamplingMethod}
_DIMENSION_KEYS = {"name", "type", "array_size_px", "chunk_size_px", "shard_size_chunks"}
_DIMENSION_KEYS |= {"unit", "scale"}
_ARRAY_KEYS = {"output_key", "data_type", "dimensions", "compression", "downsampling_method"}
_ARRAY_KEYS |= {"max_levels", "is_ngff", "storage_dimension_order"}


def dimension_to_dict(d: Dimension) -> dict[str, Any]:
    """One dimension's document."""
    return {
        "name": d.name,
        "type": DimensionType(d.kind).name.lower(),
        "array_size_px": d.array_size_px,
        "chunk_size_px": d.chunk_size_px,
        "shard_size_chunks": d.shard_size_chunks,
        "scale": float(d.scale),
        "unit": d.unit or "",
    }


def dimension_from_dict(doc: Any) -> Dimension:
    """A dimension from its document."""
    doc = _fields(doc, "dimension", _DIMENSION_KEYS)
    return Dimension(
        name=doc.get("name", ""),
        kind=_lookup(doc.get("type", "space"), _KINDS, "dimension type"),
        unit=doc.get("unit") or None,
        scale=float(doc.get("scale", 1.0)),
        array_size_px=int(doc.get("array_size_px", 0)),
        chunk_size_px=int(doc.get("chunk_size_px", 0)),
        shard_size_chunks=int(doc.get("shard_size_chunks", 0)),
    )


def array_to_dict(a: ArraySettings) -> dict[str, Any]:
    """One array's document (``output_key`` left out when empty, as for fields of view)."""
    method = a.downsampling_method
    doc: dict[str, Any] = {}
    if a.output_key:
        doc["output_key"] = a.output_key
    doc["data_type"] = numpy_dtype(a.data_type).name
    doc["dimensions"] = [dimension_to_dict(d) for d in a.dimensions]
    if a.compression is not None:
        c = a.compression
        doc["compression"] = {
            "compressor": _name(Compressor(c.compressor), _COMPRESSORS),
            "codec": _name(CompressionCodec(c.codec), _CODECS),
            "level": c.level,
            "shuffle": c.shuffle,
        }
    doc["downsampling_method"] = "none" if method is None else method.name.lower()
    if a.max_levels:
        doc["max_levels"] = a.max_levels
    if a.storage_dimension_order:
        doc["storage_dimension_order"] = list(a.storage_dimension_order)
    doc["is_ngff"] = bool(a.is_ngff or method is not None)
    return doc


def array_from_dict(doc: Any) -> ArraySettings:
    """An array from its document."""
    doc = _fields(doc, "array", _ARRAY_KEYS)
    compression = None
    if doc.get("compression") is not None:
        c = _fields(doc["compression"], "compression", {"compressor", "codec", "level", "shuffle"})
        compression = CompressionSettings(
            compressor=_lookup(c.get("compressor", "none"), _COMPRESSORS, "compressor"),
            codec=_lookup(c.get("codec", "none"), _CODECS, "codec"),
            level=int(c.get("level", 1)),
            shuffle=int(c.get("shuffle", 0)),
        )
    method = doc.get("downsampling_method", "none")
    return ArraySettings(
        output_key=doc.get("output_key", ""),
        data_type=DataType[numpy_dtype(doc.get("data_type", "uint8")).name.upper()],
        dimensions=[dimension_from_dict(d) for d in doc.get("dimensions", [])],
        compression=compression,
        downsampling_method=None
        if method == "none"
        else _lookup(method, _METHODS, "downsampling_method"),
        max_levels=int(doc.get("max_levels", 0)),
        storage_dimension_order=list(doc.get("storage_dimension_order", [])),
        is_ngff=bool(doc.get("is_ngff", False)),
    )


def plate_to_dict(p: Plate) -> dict[str, Any]:
    """One plate's document."""
    wells = []
    for w in p.wells:
        images = []
        for f in w.images:
            image: dict[str, Any] = {"path": f.path}
            if f.acquisition_id is not None:
                image["acquisition_id"] = f.acquisition_id
            if f.array_settings is not None:
                image["array"] = array_to_dict(f.array_settings)
            images.append(image)
        wells.append({"row_name": w.row_name, "column_name": w.column_name, "images": images})
    acquisitions = []
    for a in p.acquisitions:
        optional = {
            "name": a.name,
            "description": a.description,
            "start_time": a.start_time,
            "end_time": a.end_time,
        }
        acquisitions.append({"id": a.id, **{k: v for k, v in optional.items() if v is not None}})
    return {
        "path": p.path,
        "name": p.name,
        "row_names": list(p.row_names),
        "column_names": list(p.column_names),
        "wells": wells,
        "acquisitions": acquisitions,
    }


def plate_from_dict(doc: Any) -> Plate:
    """A plate from its document."""
    keys = {"path", "name", "row_names", "column_names", "wells", "acquisitions"}
    doc = _fields(doc, "plate", keys)
    wells = []
    for w in doc.get("wells", []):
        w = _fields(w, "well", {"row_name", "column_name", "images"})
        images = []
        for f in w.get("images", []):
            f = _fields(f, "field of view", {"path", "acquisition_id", "array"})
            array = array_from_dict(f["array"]) if "array" in f else None
            if array is not None:
                array.output_key = None
            path, acquisition = f.get("path", ""), f.get("acquisition_id")
            images.append(FieldOfView(path=path, acquisition_id=acquisition, array_settings=array))
        row, column = w.get("row_name", ""), w.get("column_name", "")
        wells.append(Well(row_name=row, column_name=column, images=images))
    acquisition_keys = {"id", "name", "description", "start_time", "end_time"}
    acquisitions = [
        Acquisition(**_fields(a, "acquisition", acquisition_keys))
        for a in doc.get("acquisitions", [])
    ]
    return Plate(
        path=doc.get("path", ""),
        name=doc.get("name", ""),
        row_names=list(doc.get("row_names", [])),
        column_names=list(doc.get("column_names", [])),
        wells=wells,
        acquisitions=acquisitions,
    )


def stream_to_dict(fields: dict[str, Any]) -> dict[str, Any]:
    """The document of a stream's settings given as :class:`~.stream.StreamSettings`' fields."""
    doc: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "store_path": fields["store_path"],
        "overwrite": bool(fields["overwrite"]),
        "max_threads": int(fields["max_threads"]),
        "arrays": [array_to_dict(a) for a in fields["arrays"]],
        "plates": [plate_to_dict(p) for p in fields["hcs_plates"]],
    }
    s3 = fields["s3"]
    if s3 is not None:
        doc["s3"] = {"endpoint": s3.endpoint, "bucket_name": s3.bucket_name}
        if s3.region:
            doc["s3"]["region"] = s3.region
    if ZarrVersion(fields["version"]) is ZarrVersion.V2:
        doc["zarr_version"] = 2  # xzaro's: acquire-zarr writes V3 only
    return doc


def stream_from_dict(doc: Any) -> dict[str, Any]:
    """:class:`~.stream.StreamSettings`' fields from a document.

    Raises
    ------
    StreamingError
        Unknown keys or values, another schema version, or neither arrays nor plates.
    """
    keys = {"version", "store_path", "overwrite", "max_threads", "arrays", "plates", "s3"}
    doc = _fields(doc, "stream settings", keys | {"zarr_version"})
    if doc.get("version", SCHEMA_VERSION) not in (1, 2):
        raise StreamingError(f"config: schema version {doc['version']!r} (1 and 2 are read)")
    if "arrays" not in doc and "plates" not in doc:
        raise StreamingError("config: the settings must define 'arrays' and/or 'plates'")
    s3 = None
    if doc.get("s3") is not None:
        s3 = S3Settings(**_fields(doc["s3"], "s3", {"endpoint", "bucket_name", "region"}))
    return {
        "store_path": doc.get("store_path", ""),
        "overwrite": bool(doc.get("overwrite", False)),
        "max_threads": int(doc.get("max_threads", 0)),
        "arrays": [array_from_dict(a) for a in doc.get("arrays", [])],
        "hcs_plates": [plate_from_dict(p) for p in doc.get("plates", [])],
        "s3": s3,
        "version": ZarrVersion(doc.get("zarr_version", 3)),
    }


def dump_text(doc: dict[str, Any], yaml_text: bool) -> str:
    """A document as YAML (needs PyYAML) or JSON text."""
    if not yaml_text:
        return json.dumps(doc, indent=2)
    return _yaml().safe_dump(doc, sort_keys=False)


def load_text(text: str) -> Any:
    """A document from JSON or YAML text (YAML needs PyYAML)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    yaml = _yaml()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise StreamingError(f"config: not JSON or YAML: {e}") from None


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise StreamingError("YAML settings need PyYAML (pip install pyyaml)") from None
    return yaml
