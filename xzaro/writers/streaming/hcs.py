"""HCS plates in a stream: where each field of view's array goes, and the OME-NGFF 0.5
``plate`` and ``well`` metadata of the groups above them (as acquire-zarr 0.10 writes it)."""

from __future__ import annotations

from typing import Any

from xzaro.errors import StreamingError
from xzaro.paths import join
from xzaro.writers.streaming.settings import ArraySettings, Plate, Well

#: The OME-NGFF version of plate and well metadata.
HCS_VERSION = "0.5"


def well_path(plate: Plate, well: Well) -> str:
    """The well's group below the store path: ``plate/row/column``."""
    return join(plate.path, well.row_name, well.column_name)


def field_arrays(plate: Plate) -> list[tuple[str, ArraySettings]]:
    """``(key, settings)`` of every field of view of ``plate``, its key ``plate/row/column/path``.

    Raises
    ------
    StreamingError
        For a well outside the plate's rows and columns, a field without array settings or
        with an ``output_key`` of its own, or empty names.
    """
    if not plate.path:
        raise StreamingError(f"plate {plate.name!r}: path must not be empty")
    out = []
    for well in plate.wells:
        if well.row_name not in plate.row_names or well.column_name not in plate.column_names:
            raise StreamingError(
                f"plate {plate.path!r}: well {well.row_name}/{well.column_name} is not in rows "
                f"{plate.row_names} and columns {plate.column_names}"
            )
        for fov in well.images:
            where = f"{well_path(plate, well)}/{fov.path}"
            if not fov.path or fov.array_settings is None:
                raise StreamingError(f"field of view {where!r}: needs a path and array_settings")
            if fov.array_settings.output_key:
                raise StreamingError(
                    f"field of view {where!r}: array_settings.output_key must be None"
                )
            out.append((join(well_path(plate, well), fov.path), fov.array_settings))
    return out


def plate_attributes(plate: Plate) -> dict[str, Any]:
    """The plate group's attributes: ``ome`` → ``plate`` (rows, columns, wells with their
    indices, acquisitions, the largest number of fields in a well)."""
    field_count = max((len(w.images) for w in plate.wells), default=0)
    acquisitions = []
    for acq in plate.acquisitions:
        entry: dict[str, Any] = {"id": acq.id}
        optional = {
            "name": acq.name,
            "description": acq.description,
            "starttime": acq.start_time,
            "endtime": acq.end_time,
        }
        entry.update({k: v for k, v in optional.items() if v is not None})
        entry["maximumfieldcount"] = field_count
        acquisitions.append(entry)
    wells = [
        {
            "path": f"{w.row_name}/{w.column_name}",
            "rowIndex": plate.row_names.index(w.row_name),
            "columnIndex": plate.column_names.index(w.column_name),
        }
        for w in plate.wells
    ]
    body: dict[str, Any] = {
        "version": HCS_VERSION,
        "name": plate.name,
        "rows": [{"name": r} for r in plate.row_names],
        "columns": [{"name": c} for c in plate.column_names],
        "wells": wells,
        "field_count": field_count,
    }
    if acquisitions:
        body["acquisitions"] = acquisitions
    return {"ome": {"version": HCS_VERSION, "plate": body}}


def well_attributes(well: Well) -> dict[str, Any]:
    """The well group's attributes: ``ome`` → ``well`` → ``images`` (path, acquisition)."""
    images = []
    for fov in well.images:
        image: dict[str, Any] = {"path": fov.path}
        if fov.acquisition_id is not None:
            image["acquisition"] = fov.acquisition_id
        images.append(image)
    return {"ome": {"version": HCS_VERSION, "well": {"version": HCS_VERSION, "images": images}}}
