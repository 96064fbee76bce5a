"""Plots of the measured tables in ``benchmarks/README.md``.

The README holds the numbers of the last recorded runs; this script reads them from there (never
from a copy) and draws one PNG per table with matplotlib::

    python benchmarks/plot_results.py --out /tmp/plots   # writes bench-*.png

The documentation site calls :func:`measured_tables` and :func:`render_plots` from its build
hook (``docs/_hooks/site.py``), so the tables and plots on its benchmarks page are the README's.
"""

from __future__ import annotations

import argparse
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).with_name("README.md")


@dataclass(frozen=True)
class Table:
    """One measured table: its column names, its rows (cells as text) and its source text."""

    header: list[str]
    rows: list[list[str]]
    source: str


def _markdown_tables(text: str) -> list[Table]:
    """Every pipe table in ``text`` (a header row, a ``|---|`` rule, then rows)."""
    lines = text.splitlines()
    tables = []
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.fullmatch(r"\|[\s:|-]+\|", lines[i + 1].strip()):
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1

            def cells(line: str) -> list[str]:
                return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]

            tables.append(
                Table(
                    cells(lines[i]),
                    [cells(line) for line in lines[i + 2 : end]],
                    "\n".join(lines[i:end]),
                )
            )
            i = end
        else:
            i += 1
    return tables


def _fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Every fenced block of ``text`` as its info string and its lines."""
    blocks: list[tuple[str, list[str]]] = []
    info: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if info is None:
                info, body = line[3:].strip(), []
            else:
                blocks.append((info, body))
                info = None
        elif info is not None:
            body.append(line)
    return blocks


def _text_tables(text: str) -> list[Table]:
    """Every fixed-width table in a plain fenced block: a header line, a ``---  ---`` rule,
    rows. Columns are cut where the rule's dashes start.
    """
    tables = []
    for info, lines in _fenced_blocks(text):
        if info or len(lines) < 3 or not re.fullmatch(r"[-\s]+", lines[1]):
            continue
        starts = [m.start() for m in re.finditer(r"-+", lines[1])]
        bounds = list(zip(starts, [*starts[1:], None], strict=True))

        rows = [[line[start:stop].strip() for start, stop in bounds] for line in lines]
        tables.append(Table(rows[0], rows[2:], "\n".join(lines)))
    return tables


def measured_tables(text: str | None = None) -> dict[str, Table]:
    """The README's measured tables by name: ``refs``, ``stream`` and ``network``.

    Raises ``LookupError`` naming the table that is missing, so a README edit that breaks a
    table breaks the documentation build instead of dropping a plot.
    """
    if text is None:
        text = README.read_text(encoding="utf-8")
    found: dict[str, Table] = {}
    for table in _text_tables(text):
        if table.header[:3] == ["case", "xzaro s", "kerchunk s"]:
            found["refs"] = table
    for table in _markdown_tables(text):
        if table.header[:3] == ["case", "frames", "codec"] and "ratio" in table.header:
            found["stream"] = table
        elif table.header[:2] == ["reader", "V2: time"]:
            found["network"] = table
    missing = {"refs", "stream", "network"} - found.keys()
    if missing:
        raise LookupError(f"benchmarks/README.md has no measured table for {sorted(missing)}")
    return found


def _seconds(cell: str) -> float:
    """``"4.77 s"``, ``"229 ms"`` or ``"0.565"`` (seconds) as seconds."""
    number, _, unit = cell.replace(",", "").partition(" ")
    scale = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}[unit.strip()]
    return float(number) * scale


def _leading_number(cell: str) -> float:
    """The first number of a cell such as ``"291.3 (2444)"``."""
    match = re.match(r"[\d.,]+", cell)
    if match is None:
        raise ValueError(f"no number in table cell {cell!r}")
    return float(match.group().replace(",", ""))


def _figure(plot: Callable[[object], None], size: tuple[float, float]) -> bytes:
    """Draw with ``plot(axes)`` on a new figure and return it as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, layout="constrained")
    try:
        plot(ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buf.getvalue()


def _grouped_bars(ax, labels, series, ylabel, title, log=False):  # type: ignore[no-untyped-def]
    """Bars of several series side by side per label."""
    import numpy as np

    x = np.arange(len(labels))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)


def _plot_refs(table: Table) -> bytes:
    labels = [row[0] for row in table.rows]
    series = {
        "xzaro": [_seconds(row[1]) for row in table.rows],
        "kerchunk": [_seconds(row[2]) for row in table.rows],
    }
    return _figure(
        lambda ax: _grouped_bars(
            ax, labels, series, "seconds (log scale)", "Reference stores: time", log=True
        ),
        (7, 4.2),
    )


def _plot_stream(table: Table) -> dict[str, bytes]:
    head = table.header
    col = {name: head.index(name) for name in head}
    labels = [
        f"{r[col['case']]} {r[col['codec']]}{' +pyr' if r[col['pyramid']] == 'yes' else ''}"
        for r in table.rows
    ]
    xzaro_fps = col["xzaro fps best / median / worst"]
    their_fps = col["acquire-zarr fps best / median / worst"]
    # the two "peak MB" columns: xzaro's comes first
    peaks = [i for i, name in enumerate(head) if name == "peak MB"]
    fps = {
        "xzaro": [_leading_number(r[xzaro_fps]) for r in table.rows],
        "acquire-zarr": [_leading_number(r[their_fps]) for r in table.rows],
    }
    memory = {
        "xzaro": [float(r[peaks[0]]) for r in table.rows],
        "acquire-zarr": [float(r[peaks[1]]) for r in table.rows],
    }
    xlabel = "case, codec (+pyr: with a multiscale pyramid)"

    def plot(ax) -> None:  # type: ignore[no-untyped-def]
        _grouped_bars(ax, labels, fps, "frames per second (best)", "Streaming uint16 frames")
        ax.set_xlabel(xlabel)

    def plot_memory(ax) -> None:  # type: ignore[no-untyped-def]
        _grouped_bars(ax, labels, memory, "peak MB", "Streaming: peak resident memory")
        ax.set_xlabel(xlabel)

    return {
        "bench-stream-fps.png": _figure(plot, (7.5, 4.2)),
        "bench-stream-memory.png": _figure(plot_memory, (7.5, 4.2)),
    }


def _plot_network(table: Table) -> bytes:
    labels = [row[0] for row in table.rows]
    series = {
        "V2 (4,096 chunks)": [_seconds(row[1]) for row in table.rows],
        "V3 sharded": [_seconds(row[4]) for row in table.rows],
    }
    return _figure(
        lambda ax: _grouped_bars(
            ax, labels, series, "seconds (log scale)", "HTTP, 20 ms per request", log=True
        ),
        (7, 4.2),
    )


def render_plots(tables: dict[str, Table] | None = None) -> dict[str, bytes]:
    """PNG bytes by file name, one plot per measured quantity of :func:`measured_tables`."""
    if tables is None:
        tables = measured_tables()
    return {
        "bench-refs.png": _plot_refs(tables["refs"]),
        **_plot_stream(tables["stream"]),
        "bench-network.png": _plot_network(tables["network"]),
    }


def main(argv: list[str] | None = None) -> None:
    """Write the plots into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmark-plots"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, png in render_plots().items():
        (args.out / name).write_bytes(png)
        print(args.out / name)


if __name__ == "__main__":
    main()
