"""``xzaro info``: the tree of groups and arrays in a store, with chunking, codecs, what is
stored (objects, bytes, compression ratio), attributes and OME multiscale images."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from xzaro.cli.options import add_storage_options
from xzaro.cli.stored import StoredObjects, stored_objects
from xzaro.cli.text import human_bytes

if TYPE_CHECKING:
    from xzaro.array import ZaroArray
    from xzaro.chunk_grid import ChunkGrid
    from xzaro.hierarchy import ZaroGroup

ATTRIBUTE_WIDTH = 200


def add_command(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``info`` to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "info",
        parents=parents,
        help="show the tree of groups and arrays in a store",
        description="Show the tree of groups and arrays in a store: dtype, shape, chunks, "
        "shards, codecs, fill value, size in memory, and what is stored (objects written of "
        "those the chunk grid has, bytes, compression ratio). OME-Zarr images are summarized "
        "(axes and levels). A store whose root is an array shows it under its own name. "
        "Stored bytes are known for local stores only.",
    )
    p.add_argument("url", help="store URL or local path")
    p.add_argument("--path", default="", help="node path inside the store")
    p.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    p.add_argument("--attrs", action="store_true", help="show attribute values, not only counts")
    p.add_argument(
        "--no-scan",
        action="store_true",
        help="do not list the stored objects (faster on large remote stores)",
    )
    add_storage_options(p)
    p.set_defaults(func=cmd_info)


def fill_text(array: ZaroArray) -> Any:
    """The array's fill value as its metadata writes it (JSON), else its ``repr``."""
    from xzaro.dtypes import fill_value_to_json

    m = array.meta
    value = fill_value_to_json(m.fill_value, m.dtype, zarr_format=m.zarr_format)
    return value if isinstance(value, (int, float, str, bool, list, type(None))) else repr(value)


def grid_sizes(shape: tuple[int, ...], grid: ChunkGrid) -> list[Any]:
    """The chunk (or shard) shape; of a rectilinear grid, each dimension's edge lengths as the
    ``chunk_grid`` member writes them."""
    return list(shape) if grid.is_regular else [d.to_json() for d in grid.dimensions]


def describe_array(name: str, array: ZaroArray, stored: StoredObjects | None) -> dict:
    """The facts ``xzaro info`` shows for one array."""
    m = array.meta
    node = {
        "path": name,
        "node_type": "array",
        "zarr_format": m.zarr_format,
        "dtype": str(m.dtype),
        "shape": list(m.shape),
        "chunks": grid_sizes(m.chunk_shape, m.chunk_grid),
        "shards": grid_sizes(m.shard_shape, m.storage_grid) if m.shard_shape else None,
        "dimension_names": list(m.dimension_names) if m.dimension_names else None,
        "codecs": m.describe_codecs(),
        "fill_value": fill_text(array),
        "order": m.order,
        "nbytes": m.nbytes,
        "size": human_bytes(m.nbytes),
        "attributes": len(m.attributes),
        "attrs": m.attributes,
        "grid_objects": m.storage_grid.nchunks,
    }
    if stored is not None:
        node["stored_objects"] = stored.count
        node["stored_bytes"] = stored.nbytes
        node["ratio"] = round(m.nbytes / stored.nbytes, 2) if stored.nbytes else None
    return node


def describe_group(name: str, group: ZaroGroup) -> dict:
    """The facts ``xzaro info`` shows for one group, its OME images included."""
    from xzaro.backends.ome import read_multiscales
    from xzaro.errors import ZaroError

    node: dict[str, Any] = {
        "path": name,
        "node_type": "group",
        "zarr_format": group.meta.zarr_format,
        "attributes": len(group.attrs),
        "attrs": group.attrs,
    }
    try:
        images = read_multiscales(group.index, group.path, group.meta)
    except ZaroError as e:  # shown with the group, so the rest of the tree is still seen
        node["multiscales_error"] = " ".join(str(e).split())
        return node
    if images:
        node["multiscales"] = [
            {
                "name": image.name,
                "version": image.version,
                "axes": [{"name": a.name, "type": a.type, "unit": a.unit} for a in image.axes],
                "levels": [
                    {"path": lv.array_path, "shape": list(lv.meta.shape), "scale": list(lv.scale)}
                    for lv in image.levels
                ],
            }
            for image in images
        ]
    return node


def tree_nodes(
    url: str, path: str, storage_options: dict | None, *, scan: bool = True
) -> list[dict]:
    """Every node at or below ``path``, described (see :func:`describe_array`)."""
    from xzaro.array import ZaroArray
    from xzaro.errors import ZaroError
    from xzaro.hierarchy import open_array, open_group

    try:
        root: ZaroGroup | ZaroArray = open_group(url, path, storage_options=storage_options)
    except ZaroError:
        root = open_array(url, path, storage_options=storage_options)
    nodes = [("", root)] if isinstance(root, ZaroArray) else [("", root), *root.walk()]
    arrays = [node.path for _, node in nodes if isinstance(node, ZaroArray)]
    stored = scan_store(root.store, arrays, path) if scan else None
    if isinstance(root, ZaroArray):
        name = path.strip("/") or url.rstrip("/").rsplit("/", 1)[-1] or "/"
        return [describe_array(name, root, stored.get(root.path) if stored else None)]
    top = describe_group(path or "/", root)
    top["metadata"] = root.index.source
    described = [top]
    for name, node in nodes[1:]:
        full = f"{path.strip('/')}/{name}" if path.strip("/") else name
        if isinstance(node, ZaroArray):
            described.append(describe_array(full, node, stored.get(node.path) if stored else None))
        else:
            described.append(describe_group(full, node))
    return described


def scan_store(store: Any, arrays: list[str], path: str) -> dict[str, StoredObjects] | None:
    """:func:`stored_objects`, or ``None`` for a store that cannot list its keys."""
    from xzaro.errors import ZaroError

    try:
        return stored_objects(store, arrays, path)
    except (ZaroError, NotImplementedError, OSError):
        return None


def print_tree(nodes: list[dict], *, attrs: bool = False) -> None:
    """Print ``nodes`` as an indented tree."""

    def depth(node: dict) -> int:
        return 0 if node["path"] == "/" else node["path"].count("/") + 1

    top = depth(nodes[0]) if nodes else 0
    for node in nodes:
        pad = "  " * (depth(node) - top)
        name = node["path"].rsplit("/", 1)[-1]
        if node["node_type"] == "group":
            extra = f", {node['metadata']}" if "metadata" in node else ""
            print(
                f"{pad}{name}/  (group, V{node['zarr_format']}{extra}, {node['attributes']} attrs)"
            )
            for image in node.get("multiscales", []):
                print_image(pad + "    ", image)
            if "multiscales_error" in node:
                print(f"{pad}    OME metadata is wrong: {node['multiscales_error']}")
        else:
            print_array(pad, name, node)
        if attrs:
            for key, value in node["attrs"].items():
                print(f"{pad}    @{key} = {attribute_text(value)}")


def print_array(pad: str, name: str, node: dict) -> None:
    """The lines of one array."""
    dims = node["dimension_names"]
    dims_text = f" dims=({', '.join(map(str, dims))})" if dims else ""
    shards = f" shards={tuple(node['shards'])}" if node["shards"] else ""
    print(
        f"{pad}{name}  {node['dtype']} {tuple(node['shape'])} "
        f"chunks={tuple(node['chunks'])}{shards}{dims_text}"
    )
    print(
        f"{pad}    codecs: {node['codecs']}  fill={node['fill_value']}  "
        f"size={node['size']}  V{node['zarr_format']}  {node['attributes']} attrs"
    )
    if "stored_objects" in node:
        kind = "shards" if node["shards"] else "chunks"
        line = f"{pad}    stored: {node['stored_objects']} of {node['grid_objects']} {kind}"
        if node["stored_bytes"] is not None:
            line += f", {human_bytes(node['stored_bytes'])}"
            ratio = node["ratio"]
            line += f", compression ratio {ratio:.2f}" if ratio else ""
        print(line)


def print_image(pad: str, image: dict) -> None:
    """The lines of one OME multiscale image."""
    axes = ", ".join(
        a["name"] + (f" ({a['type']}" + (f", {a['unit']}" if a["unit"] else "") + ")")
        if a["type"]
        else a["name"]
        for a in image["axes"]
    )
    title = f"OME-NGFF {image['version'] or '?'} image" + (
        f" {image['name']!r}" if image["name"] else ""
    )
    print(f"{pad}{title}: {len(image['levels'])} levels; axes: {axes}")
    for i, level in enumerate(image["levels"]):
        scale = ", ".join(f"{s:g}" for s in level["scale"])
        print(f"{pad}  level {i}: {level['path']} {tuple(level['shape'])} scale=({scale})")


def attribute_text(value: Any) -> str:
    """An attribute value as JSON on one line, cut at :data:`ATTRIBUTE_WIDTH` characters."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= ATTRIBUTE_WIDTH else text[: ATTRIBUTE_WIDTH - 3] + "..."


def cmd_info(args: argparse.Namespace) -> int:
    """Run ``xzaro info`` with parsed arguments; returns the exit status."""
    nodes = tree_nodes(args.url, args.path, args.storage_options, scan=not args.no_scan)
    if args.json:
        if not args.attrs:
            for node in nodes:
                node.pop("attrs")
        print(json.dumps(nodes, indent=2, default=repr))
    else:
        print_tree(nodes, attrs=args.attrs)
    return 0
