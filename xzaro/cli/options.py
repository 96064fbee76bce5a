"""Parsing option values: ``--isel dim=a:b``, ``--chunks dim=n``, ``--compressor``, JSON.

Each parser is an ``argparse`` type: a bad value is a usage error (exit status 2) naming the
option and what was expected.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


class UsageError(ValueError):
    """A command line that parses but cannot be run (an unknown dimension, a bad suffix, ...):
    printed as one line, exit status 2."""


def json_object(text: str) -> dict:
    """``--storage-options``: ``text`` parsed as a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object like {{"anon": true}}: {text!r}')
    return value


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {text!r} is not an integer") from None


def _split(text: str, form: str) -> tuple[str, str]:
    dim, sep, value = text.partition("=")
    if not sep or not dim or not value:
        raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}")
    return dim, value


def isel_item(text: str) -> tuple[str, int | slice]:
    """``--isel``: ``dim=i`` (one index, negative from the end) or ``dim=a:b[:step]``."""
    dim, value = _split(text, "DIM=INDEX or DIM=START:STOP[:STEP]")
    if ":" not in value:
        return dim, _integer(value, f"--isel {dim}")
    parts = value.split(":")
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"expected DIM=START:STOP[:STEP], got {text!r}")
    bounds = [_integer(p, f"--isel {dim}") if p else None for p in parts]
    if len(bounds) == 3 and bounds[2] is not None and bounds[2] <= 0:
        raise argparse.ArgumentTypeError(f"--isel {dim}: the step must be positive, got {text!r}")
    return dim, slice(*bounds)


def size_item(text: str) -> tuple[str, int]:
    """``--chunks``/``--shards``: ``dim=n``, a positive size or ``-1`` for the whole dimension."""
    dim, value = _split(text, "DIM=SIZE")
    size = _integer(value, dim)
    if size < 1 and size != -1:
        raise argparse.ArgumentTypeError(f"{dim}: the size must be positive or -1, got {size}")
    return dim, size


def compressor(text: str) -> Any:
    """``--compressor``: ``CNAME[:LEVEL[:SHUFFLE]]`` (Blosc) or ``none``."""
    if text.lower() == "none":
        return None
    from xzaro.writers import BloscCompressionParams

    parts = text.split(":")
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"expected CNAME[:LEVEL[:SHUFFLE]], got {text!r}")
    level = _integer(parts[1], "level") if len(parts) > 1 else 5
    shuffle = parts[2] if len(parts) > 2 else "shuffle"
    try:
        return BloscCompressionParams(parts[0], level, shuffle)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def as_dict(items: list[tuple[str, Any]] | None, option: str) -> dict[str, Any]:
    """The ``(dim, value)`` pairs of a repeated option as a mapping; a dimension given twice is
    a :class:`UsageError`."""
    out: dict[str, Any] = {}
    for dim, value in items or []:
        if dim in out:
            raise UsageError(f"{option}: dimension {dim!r} is given twice")
        out[dim] = value
    return out


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--storage-options JSON``."""
    parser.add_argument(
        "--storage-options",
        type=json_object,
        default=None,
        metavar="JSON",
        help='fsspec options as a JSON object, e.g. {"anon": true}',
    )
