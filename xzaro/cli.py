"""The ``xzaro`` command: ``info``, ``demo`` and ``refs``.

Only the standard library is imported at module level, so that building the parser and printing
``--help`` stays cheap; each sub-command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import numpy as np

    from xzaro.array import ZaroArray
    from xzaro.chunk_grid import ChunkGrid

DESCRIPTION = "Read, write and inspect Zarr V2 and V3 stores with xzaro."
EPILOG = "Run 'xzaro COMMAND --help' for the options of one command."
DEBUG_HELP = "show the full traceback of an error"


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _fill_text(array: ZaroArray) -> Any:
    from xzaro.dtypes import fill_value_to_json

    m = array.meta
    value = fill_value_to_json(m.fill_value, m.dtype, zarr_format=m.zarr_format)
    return value if isinstance(value, (int, float, str, bool, list, type(None))) else repr(value)


def _grid_sizes(shape: tuple[int, ...], grid: ChunkGrid) -> list[Any]:
    """The chunk (or shard) shape; of a rectilinear grid, each dimension's edge lengths as the
    ``chunk_grid`` member writes them."""
    return list(shape) if grid.is_regular else [d.to_json() for d in grid.dimensions]


def describe_array(name: str, array: ZaroArray) -> dict:
    """The facts ``xzaro info`` shows for one array."""
    m = array.meta
    return {
        "path": name,
        "node_type": "array",
        "zarr_format": m.zarr_format,
        "dtype": str(m.dtype),
        "shape": list(m.shape),
        "chunks": _grid_sizes(m.chunk_shape, m.chunk_grid),
        "shards": _grid_sizes(m.shard_shape, m.storage_grid) if m.shard_shape else None,
        "dimension_names": list(m.dimension_names) if m.dimension_names else None,
        "codecs": m.describe_codecs(),
        "fill_value": _fill_text(array),
        "order": m.order,
        "nbytes": m.nbytes,
        "size": human_bytes(m.nbytes),
        "attributes": len(m.attributes),
    }


def _tree(url: str, path: str, storage_options: dict | None) -> list[dict]:
    from xzaro.array import ZaroArray
    from xzaro.errors import ZaroError
    from xzaro.hierarchy import ZaroGroup, open_array, open_group

    try:
        root: ZaroGroup | ZaroArray = open_group(url, path, storage_options=storage_options)
    except ZaroError:
        root = open_array(url, path, storage_options=storage_options)
    if isinstance(root, ZaroArray):
        return [describe_array(path or "/", root)]
    nodes = [
        {
            "path": path or "/",
            "node_type": "group",
            "zarr_format": root.meta.zarr_format,
            "metadata": root.index.source,
            "attributes": len(root.attrs),
        }
    ]
    for name, node in root.walk():
        full = f"{path.strip('/')}/{name}" if path.strip("/") else name
        if isinstance(node, ZaroArray):
            nodes.append(describe_array(full, node))
        else:
            nodes.append(
                {
                    "path": full,
                    "node_type": "group",
                    "zarr_format": node.meta.zarr_format,
                    "attributes": len(node.attrs),
                }
            )
    return nodes


def _print_tree(nodes: list[dict]) -> None:
    for node in nodes:
        depth = 0 if node["path"] == "/" else node["path"].count("/") + 1
        pad = "  " * depth
        name = node["path"].rsplit("/", 1)[-1]
        if node["node_type"] == "group":
            extra = f", {node['metadata']}" if "metadata" in node else ""
            print(
                f"{pad}{name}/  (group, V{node['zarr_format']}{extra}, {node['attributes']} attrs)"
            )
            continue
        dims = (
            f" dims=({', '.join(map(str, node['dimension_names']))})"
            if node["dimension_names"]
            else ""
        )
        shards = f" shards={tuple(node['shards'])}" if node["shards"] else ""
        print(
            f"{pad}{name}  {node['dtype']} {tuple(node['shape'])} "
            f"chunks={tuple(node['chunks'])}{shards}{dims}"
        )
        print(
            f"{pad}    codecs: {node['codecs']}  fill={node['fill_value']}  "
            f"size={node['size']}  V{node['zarr_format']}  {node['attributes']} attrs"
        )


def cmd_info(args: argparse.Namespace) -> int:
    """Run ``xzaro info`` with parsed arguments; returns the exit status."""
    nodes = _tree(args.url, args.path, args.storage_options)
    if args.json:
        print(json.dumps(nodes, indent=2))
    else:
        _print_tree(nodes)
    return 0


def sample_field(shape: tuple[int, int, int] = (24, 181, 360)) -> np.ndarray:
    """A smooth temperature-like field (time, lat, lon) with a little noise, in kelvin."""
    import numpy as np

    t, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    lat = np.deg2rad(90 - y)
    field = 288 - 30 * np.sin(lat) ** 2 + 5 * np.sin(2 * np.pi * (x / 360 + t / 24))
    noise = np.random.default_rng(0).normal(0, 0.3, shape)
    return np.round(field + noise, 2).astype(np.float32)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``xzaro demo``: the stores go to ``--out``, or to a temporary directory removed after."""
    if args.out:
        status = _demo(Path(args.out), verbose=args.verbose)
        if status == 0:
            print(f"\nTry: xzaro info {Path(args.out) / 'demo_v3.zarr'}")
        return status
    with tempfile.TemporaryDirectory(prefix="xzaro-demo-") as tmp:
        status = _demo(Path(tmp), verbose=args.verbose)
    print("\nThe demo stores were removed; keep them with: xzaro demo --out DIR")
    return status


def _demo(out: Path, *, verbose: bool) -> int:
    """Write the demo field as a V2 and a V3 store under ``out``, read it back and show it."""
    import numpy as np

    from xzaro.chunk_keys import ChunkKeyEncoding
    from xzaro.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
    from xzaro.hierarchy import open_array
    from xzaro.meta import GroupMeta, ZaroMeta
    from xzaro.stores import open_store
    from xzaro.writers import write_array, write_group

    data = sample_field()
    dims = ("time", "lat", "lon")
    print(f"xzaro demo: a {data.shape} float32 field ({human_bytes(data.nbytes)}) -> {out}")
    stores = {
        "demo_v2.zarr": ZaroMeta(
            2,
            data.shape,
            np.dtype("<f4"),
            (6, 91, 180),
            (BytesCodec("little"), BloscCodec("lz4", 5, "shuffle")),
            np.float32(np.nan),
            ChunkKeyEncoding("v2", "."),
            "C",
            None,
            dims,
            {"units": "K", "long_name": "air temperature"},
        ),
        "demo_v3.zarr": ZaroMeta(
            3,
            data.shape,
            np.dtype("float32"),
            (6, 91, 90),
            (
                ShardingCodec(
                    (6, 91, 90), (BytesCodec(), ZstdCodec(3)), (BytesCodec(), Crc32cCodec())
                ),
            ),
            np.float32(np.nan),
            ChunkKeyEncoding("default", "/"),
            "C",
            (12, 182, 180),
            dims,
            {"units": "K", "long_name": "air temperature"},
        ),
    }
    for name, meta in stores.items():
        store = open_store(str(out / name), mode="w")
        t0 = time.perf_counter()
        write_group(store, "", GroupMeta(meta.zarr_format, {"title": "xzaro demo"}))
        n = write_array(store, "air", meta, data)
        t1 = time.perf_counter()
        arr = open_array(str(out / name), "air", verbose=verbose)
        full = arr[...]
        t2 = time.perf_counter()
        region = arr.read_region((3, 40, 100), (5, 50, None))
        ok = np.array_equal(full, data) and np.array_equal(region, data[3:8, 40:90, 100:])
        print(
            f"\n{name}: wrote {n} objects in {t1 - t0:.2f}s; read back in {t2 - t1:.3f}s; "
            f"values {'identical' if ok else 'DIFFER'}"
        )
        _print_tree(_tree(str(out / name), "", None))
        if not ok:
            return 1
    return 0


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``xzaro: error: MESSAGE`` and exit with status 2."""
        self.exit(2, f"xzaro: error: {message} (see '{self.prog} --help')\n")


class _VersionAction(argparse.Action):
    """``--version``: print ``xzaro VERSION`` and exit; the version is looked up only then."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        print(f"xzaro {version()}")
        parser.exit(0)


def version() -> str:
    """The installed version of xzaro (its distribution metadata, else ``xzaro.__version__``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("xzaro")
    except PackageNotFoundError:
        import xzaro

        return getattr(xzaro, "__version__", "unknown")


def json_object(text: str) -> dict:
    """An ``argparse`` type: ``text`` parsed as a JSON object (``--storage-options``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object like {{"anon": true}}: {text!r}')
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``xzaro`` command and its sub-commands."""
    parser = _Parser(prog="xzaro", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _Parser(add_help=False)
    # SUPPRESS: a --debug before the command is not reset by the sub-command's default
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)

    p_info = sub.add_parser(
        "info",
        parents=[common],
        help="show the tree of groups and arrays in a store",
        description="Show the tree of groups and arrays in a store, with their chunking, "
        "codecs and sizes.",
    )
    p_info.add_argument("url", help="store URL or local path")
    p_info.add_argument("--path", default="", help="node path inside the store")
    p_info.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    p_info.add_argument(
        "--storage-options",
        type=json_object,
        default=None,
        metavar="JSON",
        help="fsspec options as a JSON object",
    )
    p_info.set_defaults(func=cmd_info)

    p_demo = sub.add_parser(
        "demo",
        parents=[common],
        help="write a small sample store and read it back",
        description="Write a sample field as a V2 and a V3 store, read it back and show what "
        "was written. Without --out the stores go to a temporary directory that is removed.",
    )
    p_demo.add_argument("--out", default=None, help="directory to keep the sample stores in")
    p_demo.add_argument("-v", "--verbose", action="store_true", help="show xzaro's log")
    p_demo.set_defaults(func=cmd_demo)

    from xzaro.virtual.cli import add_refs_command

    p_refs = add_refs_command(sub)
    p_refs.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def error_line(exc: BaseException) -> str:
    """The one line ``xzaro`` prints for an error: a ``ZaroError`` names its URL, key and field
    itself; anything else is prefixed with its type."""
    from xzaro.errors import ZaroError

    if isinstance(exc, ZaroError):
        text = str(exc)
    elif isinstance(exc, json.JSONDecodeError):
        text = f"not valid JSON: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return "xzaro: error: " + " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xzaro`` command; returns the exit status (0, 1 for a failure while
    running, 2 for a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("xzaro: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(error_line(e), file=sys.stderr)
        return 2 if isinstance(e, json.JSONDecodeError) else 1


if __name__ == "__main__":
    sys.exit(main())
