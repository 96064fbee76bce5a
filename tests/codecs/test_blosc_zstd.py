"""Small Blosc frames of zstd blocks decoded with the thread's own zstd context
(``xzaro.codecs.blosc_zstd``), against c-blosc decoding the same frames: numcodecs' frames,
frames built here with the layouts other writers produce (several blocks, a shorter last block,
blocks split into one stream per byte of the type, streams stored as they are), and mutations
of all of them. The decoder must give c-blosc's bytes or decline; it never accepts a frame
c-blosc refuses."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numcodecs import blosc as numcodecs_blosc

from xzaro.codecs import BloscCodec, ZstdCodec
from xzaro.codecs.batch_decode import available as batch_available
from xzaro.codecs.batch_decode import decode_frames
from xzaro.codecs.blosc_zstd import OWN_DECODE_BYTES, decode_zstd_frame
from xzaro.errors import DecodeError

_SHUFFLE, _DONT_SPLIT, _ZSTD = 0x01, 0x10, 4 << 5


def _c_blosc(frame: bytes) -> bytes | None:
    """c-blosc's decoding of ``frame`` (``None`` where it refuses it)."""
    try:
        return bytes(numcodecs_blosc.decompress(frame))
    except Exception:
        return None


def _ours(frame: bytes) -> bytes | None:
    nbytes = struct.unpack_from("<I", frame, 4)[0] if len(frame) >= 16 else 0
    dest = np.full(max(nbytes, 1), 0xEE, np.uint8)[:nbytes]
    return bytes(dest) if decode_zstd_frame(memoryview(frame), dest) else None


def _shuffle(block: bytes, typesize: int) -> bytes:
    elements = len(block) // typesize
    whole = elements * typesize
    head = np.frombuffer(block[:whole], np.uint8).reshape(elements, typesize).T.tobytes()
    return head + block[whole:]


def _frame(
    data: bytes, typesize: int, blocksize: int, *, shuffle: bool, split: bool, raw_every: int = 0
) -> bytes:
    """A Blosc 1 frame of zstd blocks laid out as c-blosc lays them out; every
    ``raw_every``-th stream stored as it is."""
    compressor = zstandard.ZstdCompressor(level=3)
    nblocks = -(-len(data) // blocksize)
    body, starts, count = b"", [], 0
    for b in range(nblocks):
        block = data[b * blocksize : (b + 1) * blocksize]
        if shuffle and typesize > 1:
            block = _shuffle(block, typesize)
        whole_block = len(block) == blocksize
        streams = typesize if split and whole_block and blocksize // typesize >= 128 else 1
        part = len(block) // streams
        starts.append(16 + 4 * nblocks + len(body))
        for s in range(streams):
            piece = block[s * part : (s + 1) * part]
            count += 1
            packed = compressor.compress(piece)
            if len(packed) >= part or (raw_every and count % raw_every == 0):
                packed = piece  # as c-blosc stores a stream that does not compress
            body += struct.pack("<i", len(packed)) + packed
    flags = _ZSTD | (_SHUFFLE if shuffle else 0) | (0 if split else _DONT_SPLIT)
    cbytes = 16 + 4 * nblocks + len(body)
    header = struct.pack("<BBBBIII", 2, 1, flags, typesize, len(data), blocksize, cbytes)
    return header + struct.pack(f"<{nblocks}i", *starts) + body


def _data(n: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.integers(-3, 4, n)) % 251).astype(np.uint8).tobytes()


@pytest.mark.parametrize("typesize", [1, 2, 4, 8, 16, 24])
@pytest.mark.parametrize("shuffle", [0, 1])
@pytest.mark.parametrize("n", [1, 100, 1024, 4099, OWN_DECODE_BYTES])
def test_numcodecs_frames_decode_as_c_blosc_decodes_them(typesize: int, shuffle: int, n: int):
    data = np.frombuffer(_data(n * typesize)[: n * typesize], np.uint8)
    if data.nbytes > OWN_DECODE_BYTES:
        data = data[:OWN_DECODE_BYTES]
    frame = bytes(numcodecs_blosc.compress(data, b"zstd", 3, shuffle, 0, typesize))
    got = _ours(frame)
    if frame[2] & 0x02:  # c-blosc found it did not compress and stored a copy: declined
        assert got is None
    else:
        assert got == _c_blosc(frame) == data.tobytes()


@pytest.mark.parametrize("typesize", [1, 2, 4, 8, 17])
@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(("n", "blocksize"), [(4096, 1024), (5000, 1024), (700, 700)])
def test_built_frames_decode_as_c_blosc_decodes_them(
    typesize: int, split: bool, shuffle: bool, n: int, blocksize: int
) -> None:
    data = _data(n, seed=typesize)
    for raw_every in (0, 3):
        frame = _frame(data, typesize, blocksize, shuffle=shuffle, split=split, raw_every=raw_every)
        expected = _c_blosc(frame)
        assert expected == data, "c-blosc reads the built frame as written"
        assert _ours(frame) == expected


def test_frames_it_does_not_take_are_declined() -> None:
    data = np.frombuffer(_data(4096), np.uint8)
    lz4 = bytes(numcodecs_blosc.compress(data, b"lz4", 5, 1, 0, 4))
    bitshuffled = bytes(numcodecs_blosc.compress(data, b"zstd", 3, 2, 0, 4))
    incompressible = np.random.default_rng(1).integers(0, 256, 4096).astype(np.uint8)
    copied = bytes(numcodecs_blosc.compress(incompressible, b"zstd", 3, 1, 0, 4))
    assert copied[2] & 0x02, "a frame c-blosc stored as a copy"
    large = np.frombuffer(_data(OWN_DECODE_BYTES + 4), np.uint8)
    larger = bytes(numcodecs_blosc.compress(large, b"zstd", 3, 1, 0, 4))
    for frame in (lz4, bitshuffled, copied, larger):
        assert _ours(frame) is None
        assert _c_blosc(frame) is not None  # c-blosc decodes them instead
    # and the codec gives c-blosc's bytes for each
    for frame, source in ((lz4, data), (bitshuffled, data), (copied, incompressible)):
        got = BloscCodec("zstd", 3, "shuffle", typesize=4).decode_bytes(frame, 4096)
        assert bytes(got) == source.tobytes()


def _cases() -> list[bytes]:
    data = _data(3000, seed=5)
    frames = [
        _frame(data, 4, 1024, shuffle=True, split=True, raw_every=2),
        _frame(data, 2, 512, shuffle=True, split=False),
        bytes(numcodecs_blosc.compress(np.frombuffer(data, np.uint8), b"zstd", 1, 1, 0, 4)),
    ]
    return frames


@settings(max_examples=400, deadline=None)
@given(
    case=st.integers(0, 2),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 10**6),
)
@example(case=1, edits=[(2, 0x98)], cut=0)  # flag 0x08, which c-blosc 1 refuses
def test_mutated_frames_decode_as_c_blosc_or_are_declined(
    case: int, edits: list[tuple[int, int]], cut: int
) -> None:
    frame = bytearray(_cases()[case])
    for where, value in edits:
        frame[where % len(frame)] = value
    mutated = bytes(frame[: max(16, len(frame) - cut % 64)])
    nbytes = struct.unpack_from("<I", mutated, 4)[0]
    if nbytes > OWN_DECODE_BYTES:
        assert _ours(mutated) is None
        return
    ours = _ours(mutated)
    if ours is not None:
        assert ours == _c_blosc(mutated)


def test_a_corrupt_frame_is_a_decode_error_from_the_codec() -> None:
    frame = bytearray(_frame(_data(2048), 4, 1024, shuffle=True, split=False))
    frame[40:48] = b"\xff" * 8  # inside the first block's zstd stream
    with pytest.raises(DecodeError, match="blosc"):
        BloscCodec("zstd", 3, "shuffle", typesize=4).decode_bytes(bytes(frame), 2048)


# --- many frames in one call (xzaro.codecs.batch_decode) ---------------------------------------


def _packed(frames: list[bytes], gap: int = 3) -> tuple[bytes, np.ndarray]:
    """The frames one after the other with ``gap`` stray bytes between, and their entries."""
    data, entries = b"", []
    for frame in frames:
        data += b"\x00" * gap
        entries.append((len(data), len(frame)))
        data += frame
    return data, np.array(entries, dtype=np.uint64)


def _batch(codec: object, frames: list[bytes], size: int) -> np.ndarray | None:
    data, entries = _packed(frames)
    out = np.full((len(frames), size), 0xEE, np.uint8)
    return out if decode_frames(codec, memoryview(data), entries, size, out) else None


ZSTD = ZstdCodec(level=3)
BLOSC = BloscCodec("zstd", 3, "shuffle", typesize=4)


@pytest.mark.skipif(not batch_available(), reason="needs zstandard's C backend")
@pytest.mark.parametrize("typesize", [1, 2, 4, 8, 16, 32])  # 32: unshuffled in one transpose
@pytest.mark.parametrize("shuffle", [0, 1])
def test_many_blosc_frames_decode_in_one_call_as_c_blosc_decodes_them(typesize: int, shuffle: int):
    chunks = [np.frombuffer(_data(1024, seed), np.uint8) for seed in range(40)]
    frames = [bytes(numcodecs_blosc.compress(c, b"zstd", 3, shuffle, 0, typesize)) for c in chunks]
    frames = [f for f in frames if not f[2] & 0x02]  # copies are decoded one by one
    got = _batch(BLOSC, frames, 1024)
    assert got is not None
    for row, frame in zip(got, frames):
        assert row.tobytes() == _c_blosc(frame)
    # padding after a frame (z5 leaves some) changes nothing
    padded = _batch(BLOSC, [f + b"\x00" * 5 for f in frames], 1024)
    assert padded is not None and (padded == got).all()


@pytest.mark.skipif(not batch_available(), reason="needs zstandard's C backend")
def test_many_zstd_frames_decode_in_one_call() -> None:
    chunks = [_data(2048, seed) for seed in range(30)]
    frames = [zstandard.ZstdCompressor(level=1).compress(c) for c in chunks]
    got = _batch(ZSTD, frames, 2048)
    assert got is not None
    assert [row.tobytes() for row in got] == chunks
    assert _batch(ZSTD, frames, 2047) is None  # each frame is held to its size
    assert _batch(ZSTD, [*frames[:-1], frames[-1][:-3]], 2048) is None  # a cut frame


@pytest.mark.skipif(not batch_available(), reason="needs zstandard's C backend")
def test_frames_of_other_layouts_are_left_to_one_by_one() -> None:
    data = np.frombuffer(_data(1024), np.uint8)
    plain = bytes(numcodecs_blosc.compress(data, b"zstd", 3, 1, 0, 4))
    cases = {
        "lz4": bytes(numcodecs_blosc.compress(data, b"lz4", 5, 1, 0, 4)),
        "bitshuffle": bytes(numcodecs_blosc.compress(data, b"zstd", 3, 2, 0, 4)),
        "other typesize": bytes(numcodecs_blosc.compress(data, b"zstd", 3, 1, 0, 2)),
        "split": _frame(data.tobytes(), 4, 1024, shuffle=True, split=True),
        "raw stream": _frame(data.tobytes(), 4, 1024, shuffle=True, split=False, raw_every=1),
        "two blocks": _frame(data.tobytes(), 4, 512, shuffle=True, split=False),
        "cut": plain[:-5],
        "typesize 0, split": plain[:2] + bytes([plain[2] & ~0x10, 0]) + plain[4:],
        "claims more than stored": plain[:12] + struct.pack("<I", len(plain) + 10) + plain[16:],
        "short": plain[:20],
    }
    for name, odd in cases.items():
        assert _batch(BLOSC, [plain, odd, plain], 1024) is None, name
        assert _batch(BLOSC, [odd, plain], 1024) is None, name  # its header read first
    assert _batch(BLOSC, [plain, plain], 1024) is not None
    data_, entries = _packed([plain, plain])
    out = np.empty((2, 1024), np.uint8)
    entries[1, 1] += 10  # the last frame said to reach past the data
    assert not decode_frames(BLOSC, memoryview(data_), entries, 1024, out)


@pytest.mark.skipif(not batch_available(), reason="needs zstandard's C backend")
@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=3)
)
@example(edits=[(8, 0x99), (9, 0x99), (10, 0x99), (11, 0x99)])  # flag 0x08 in every frame
def test_mutated_frames_in_one_call_decode_as_c_blosc_or_are_declined(
    edits: list[tuple[int, int]],
) -> None:
    chunks = [np.frombuffer(_data(1024, seed), np.uint8) for seed in range(4)]
    frames = [bytearray(numcodecs_blosc.compress(c, b"zstd", 3, 1, 0, 4)) for c in chunks]
    for where, value in edits:
        frame = frames[where % len(frames)]
        frame[(where // len(frames)) % len(frame)] = value
    got = _batch(BLOSC, [bytes(f) for f in frames], 1024)
    if got is not None:
        for row, frame in zip(got, frames):
            assert row.tobytes() == _c_blosc(bytes(frame))
