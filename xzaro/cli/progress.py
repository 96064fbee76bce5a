"""The progress bar of ``xzaro bench``: ``tqdm`` on stderr, shown only when stderr is a
terminal. (``xzaro convert`` shows the writers' own bar: ``to_store(progress="auto")``.)"""

from __future__ import annotations

import sys
from typing import Any, TextIO


def wanted(stream: TextIO | None = None) -> bool:
    """Whether to show a bar: ``stream`` (stderr) is a terminal and tqdm is installed."""
    stream = sys.stderr if stream is None else stream
    import importlib.util

    return stream.isatty() and importlib.util.find_spec("tqdm") is not None


def counter_bar(total: int, description: str, stream: TextIO | None = None) -> Any:
    """A ``tqdm`` bar of ``total`` steps on ``stream`` (stderr); ``update()`` advances it."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, file=stream or sys.stderr, leave=False)
