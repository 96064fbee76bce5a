"""The ``xzaro`` command: one module per sub-command, the parser and ``main`` in :mod:`.app`.

Building the parser and printing ``--help`` import neither xarray nor Dask: each sub-command
imports what it needs when it runs.
"""

from __future__ import annotations

from xzaro.cli.app import build_parser, main
from xzaro.cli.text import human_bytes

__all__ = ["build_parser", "human_bytes", "main"]
