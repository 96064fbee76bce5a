"""The chunk grid of an array as a whole, and the shards and inner chunks of a sharded one.

A :class:`ChunkGrid` is bound to an array's shape and holds one
:class:`~xzaro.chunk_grid.dimensions.DimensionGrid` per dimension. Its ``name`` is the
``chunk_grid`` it is written as: ``regular`` (the Zarr V3 core; also a V2 array's ``chunks``)
or ``rectilinear`` (zarr-extensions). :class:`ShardGrid` places the inner chunks of a sharded
array (a regular grid over the whole array) in its shards (regular or rectilinear).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from xzaro.chunk_grid.dimensions import DimensionGrid, RegularDimension
from xzaro.chunk_grid.parse import RECTILINEAR, REGULAR, parse_chunk_grid
from xzaro.errors import brief
from xzaro.indexing import Box, ChunkPiece

#: :meth:`ChunkGrid.whole_offsets`' term for a dimension whose piece is not a whole chunk: low
#: enough to keep the piece's sum negative whatever the other dimensions add.
_CUT = -(1 << 62)


class ChunkGrid:
    """The chunk grid of an array: one :class:`DimensionGrid` per dimension.

    Parameters
    ----------
    dimensions
        The grid of each dimension, bound to the array's extent along it.
    name
        The ``chunk_grid`` name the grid is written with: ``"regular"`` or ``"rectilinear"``.
    """

    __slots__ = ("_grid_shape", "_last_pieces", "dimensions", "name")

    def __init__(self, dimensions: Sequence[DimensionGrid], name: str = REGULAR) -> None:
        self.dimensions = tuple(dimensions)
        self.name = name
        self._grid_shape = tuple(d.nchunks for d in self.dimensions)
        # the last box's pieces per dimension: one read asks for them up to three times
        self._last_pieces: tuple[Box | None, list[list[Any]]] = (None, [])

    @classmethod
    def regular(cls, shape: Sequence[int], chunk_shape: Sequence[int]) -> ChunkGrid:
        """The regular grid of ``chunk_shape`` chunks over an array of ``shape``."""
        return cls(tuple(RegularDimension(c, n) for c, n in zip(chunk_shape, shape)))

    @classmethod
    def from_json(cls, doc: Any, shape: tuple[int, ...]) -> ChunkGrid:
        """Parse a V3 ``chunk_grid`` member (object, or the bare name) for an array of ``shape``.

        Raises
        ------
        MetadataError
            Naming the field (``chunk_grid``, ``chunk_grid.chunk_shape``,
            ``chunk_grid.chunk_shapes`` ...) for a malformed grid.
        UnsupportedError
            For a grid name xzaro does not know.
        """
        name, dimensions = parse_chunk_grid(doc, shape)
        return cls(dimensions, name)

    def to_json(self) -> dict[str, Any]:
        """The V3 ``chunk_grid`` member."""
        if self.name == REGULAR:
            return {"name": REGULAR, "configuration": {"chunk_shape": list(self.chunk_shape)}}
        return {
            "name": RECTILINEAR,
            "configuration": {
                "kind": "inline",
                "chunk_shapes": [d.to_json() for d in self.dimensions],
            },
        }

    # ------------------------------------------------------------------ the grid as a whole
    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.dimensions)

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(d.extent for d in self.dimensions)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Chunks along each dimension (those holding elements of the array)."""
        return self._grid_shape

    @property
    def nchunks(self) -> int:
        """Chunks in the grid."""
        count = 1
        for d in self.dimensions:
            count *= d.nchunks
        return count

    @property
    def is_regular(self) -> bool:
        """Whether every dimension has chunks of one size (whatever the grid's name)."""
        return all(d.is_regular for d in self.dimensions)

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        """The chunk shape of a regular grid; of a rectilinear one, the largest edge length
        along each dimension (a shape every chunk fits in: use the grid for where chunks lie)."""
        return tuple(max(d.edge_lengths()) for d in self.dimensions)

    # ------------------------------------------------------------------ one chunk
    def check_chunk(self, chunk: Sequence[int]) -> tuple[int, ...]:
        """``chunk`` as a tuple of ints, if it is a chunk of the grid.

        Raises
        ------
        IndexError
            Naming the grid's shape, for an index outside it.
        """
        index = tuple(int(i) for i in chunk)
        grid = self.grid_shape
        if len(index) != self.ndim or not all(0 <= i < g for i, g in zip(index, grid)):
            raise IndexError(
                f"chunk index {index} is outside the chunk grid {grid} "
                f"of an array of shape {self.shape}"
            )
        return index

    def chunk_region(self, chunk: Sequence[int]) -> tuple[slice, ...]:
        """The elements of the array ``chunk`` holds (clipped at the array's edge)."""
        region = []
        for d, k in zip(self.dimensions, chunk):
            start = d.chunk_start(k)
            region.append(slice(start, start + d.data_size(k)))
        return tuple(region)

    def chunk_box(self, chunk: Sequence[int]) -> Box:
        """:meth:`chunk_region` as a :class:`~xzaro.indexing.Box`."""
        region = self.chunk_region(chunk)
        return Box(tuple(s.start for s in region), tuple(s.stop for s in region), (1,) * self.ndim)

    def stored_shape(self, chunk: Sequence[int]) -> tuple[int, ...]:
        """The shape of ``chunk`` as stored (the codecs' shape: its edge lengths)."""
        return tuple(d.chunk_size(k) for d, k in zip(self.dimensions, chunk))

    def linear_index(self, chunk: Sequence[int]) -> int:
        """The position of ``chunk`` in C order over the grid."""
        position = 0
        for k, n in zip(chunk, self.grid_shape):
            position = position * n + k
        return position

    def chunk_at(self, position: int) -> tuple[int, ...]:
        """The chunk at ``position`` in C order over the grid (:meth:`linear_index` undone)."""
        index: list[int] = []
        for n in reversed(self.grid_shape):
            position, k = divmod(position, n)
            index.append(k)
        return tuple(reversed(index))

    # ------------------------------------------------------------------ many chunks
    def _pieces_per_dimension(self, box: Box) -> list[list[Any]]:
        last = self._last_pieces  # one tuple, read once: threads may replace it meanwhile
        if last[0] is box:
            return last[1]
        points = box.points or (None,) * self.ndim
        per_dim = [
            d.point_pieces(p) if p is not None else d.slice_pieces(a, b, s)
            for d, a, b, s, p in zip(self.dimensions, box.start, box.stop, box.step, points)
        ]
        self._last_pieces = (box, per_dim)
        return per_dim

    def touched(self, box: Box) -> list[list[int]]:
        """Per dimension, the chunks the box touches along it."""
        return [[piece[0] for piece in pieces] for pieces in self._pieces_per_dimension(box)]

    def pieces(self, box: Box) -> Iterator[ChunkPiece]:
        """Every chunk the box touches, with its local and output selections."""
        per_dim = self._pieces_per_dimension(box)
        if not per_dim:
            yield ChunkPiece((), (), (), True)
            return
        # per dimension its chunks' indices, local selections, output slices and fullness;
        # four products in lockstep build each piece's tuples without regrouping them
        columns = [tuple(zip(*d)) for d in per_dim]
        if any(not c for c in columns):
            return
        products = (itertools.product(*(c[i] for c in columns)) for i in range(4))
        make = ChunkPiece._make
        for index, local, out, full in zip(*products):
            yield make((index, local, out, False not in full))

    def whole_offsets(self, box: Box, strides: Sequence[int]) -> Iterator[int]:
        """For each piece of :meth:`pieces`, in its order, where the piece is a whole chunk
        (selected in full, with no edge cut off by the array's end), the offset of its first
        element in an output of the box's shape with these byte ``strides``; elsewhere a
        negative number. A regular grid's only."""
        columns = []
        for pieces, size, stride in zip(self._pieces_per_dimension(box), self.chunk_shape, strides):
            columns.append(
                [
                    out.start * stride if full and out.stop - out.start == size else _CUT
                    for _, _, out, full in pieces
                ]
            )
        return map(sum, itertools.product(*columns))

    def chunks_in(self, region: Sequence[slice]) -> Iterator[tuple[int, ...]]:
        """The chunks holding any element of ``region`` (step-1 slices), in C order."""
        ranges = [d.chunks_in(s.start, s.stop) for d, s in zip(self.dimensions, region)]
        return itertools.product(*ranges)

    def chunk_sizes(self) -> tuple[tuple[int, ...], ...]:
        """The elements inside the array of every chunk, per dimension (Dask's ``chunks``)."""
        return tuple(d.chunk_sizes() for d in self.dimensions)

    def compact_sizes(self) -> tuple[int | tuple[int, ...], ...]:
        """Per dimension one chunk size where the chunks are of one size (but the last, which
        may be smaller), else every chunk's size inside the array: xarray's ``chunks`` encoding
        of a rectilinear grid."""
        compact: list[int | tuple[int, ...]] = []
        for d in self.dimensions:
            size = d.uniform_size()
            # Dask refuses an empty tuple
            compact.append(size if size is not None else d.chunk_sizes() or (0,))
        return tuple(compact)

    def describe(self) -> str:
        """The chunk shape of a regular grid; of a rectilinear one, each dimension's edge
        lengths as written (runs as ``[size, count]``), shortened for messages and logs."""
        if self.is_regular:
            return str(self.chunk_shape)
        return "(" + ", ".join(brief(d.to_json()) for d in self.dimensions) + ")"

    def with_shape(self, shape: Sequence[int]) -> ChunkGrid:
        """The same chunk edges over an array of ``shape``.

        Raises
        ------
        MetadataError
            If a rectilinear dimension's edges do not reach its new extent.
        """
        return ChunkGrid(tuple(d.with_extent(n) for d, n in zip(self.dimensions, shape)), self.name)

    def grown_to(self, shape: Sequence[int]) -> ChunkGrid:
        """The grid of an array grown to ``shape`` (an append): a rectilinear dimension whose
        edges end before its new extent declares more chunks of its last edge length."""
        return ChunkGrid(tuple(d.grown_to(n) for d, n in zip(self.dimensions, shape)), self.name)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ChunkGrid)
            and other.name == self.name
            and other.dimensions == self.dimensions
        )

    def __hash__(self) -> int:
        return hash((self.name, self.dimensions))

    def __repr__(self) -> str:
        return f"ChunkGrid({self.name}, {list(self.dimensions)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChunkGrid, (self.dimensions, self.name))


class ShardGrid:
    """The shards of a sharded array and the inner chunks inside them.

    The inner chunks form a regular grid over the whole array: every shard (of a regular or a
    rectilinear grid) is a whole number of inner chunks along each dimension, so each shard
    starts at an inner chunk's edge.

    Parameters
    ----------
    shards
        The grid of shards (the array's storage grid).
    chunk_shape
        The inner chunk shape (the sharding codec's ``chunk_shape``).
    """

    __slots__ = ("_per_shard", "chunk_shape", "shards")

    def __init__(self, shards: ChunkGrid, chunk_shape: tuple[int, ...]) -> None:
        self.shards = shards
        self.chunk_shape = tuple(chunk_shape)
        # inner chunks per shard along each dimension, when every shard has the same
        self._per_shard: tuple[int, ...] | None = None
        if shards.is_regular:
            self._per_shard = tuple(
                d.chunk_size(0) // c for d, c in zip(shards.dimensions, self.chunk_shape)
            )

    def shard_of(self, chunk: tuple[int, ...]) -> tuple[int, ...]:
        """The shard holding inner chunk ``chunk``."""
        if self._per_shard is not None:
            return tuple(i // n for i, n in zip(chunk, self._per_shard))
        return tuple(
            d.index_to_chunk(i * c)
            for i, c, d in zip(chunk, self.chunk_shape, self.shards.dimensions)
        )

    def shard_shape(self, shard: tuple[int, ...]) -> tuple[int, ...]:
        """The stored shape of ``shard`` (the codecs' shape, also past the array's edge)."""
        return self.shards.stored_shape(shard)

    def position(self, chunk: tuple[int, ...], shard: tuple[int, ...]) -> int:
        """Where inner chunk ``chunk`` of ``shard`` stands in the shard's index (C order)."""
        position = 0
        if self._per_shard is not None:
            for i, n in zip(chunk, self._per_shard):
                position = position * n + i % n
            return position
        for i, c, d, s in zip(chunk, self.chunk_shape, self.shards.dimensions, shard):
            position = position * (d.chunk_size(s) // c) + i - d.chunk_start(s) // c
        return position

    def chunks_inside(self, shard: tuple[int, ...]) -> int:
        """How many inner chunks of ``shard`` hold elements of the array."""
        count = 1
        for s, c, d in zip(shard, self.chunk_shape, self.shards.dimensions):
            first = d.chunk_start(s) // c
            count *= max(0, min(d.chunk_size(s) // c, -(-d.extent // c) - first))
        return count
