"""Bad input gets a clear xzaro error naming URL, key and field; only a missing chunk is fill."""

from __future__ import annotations

import json
import logging
import struct
import zlib

import numpy as np
import pytest

import xzaro
from xzaro.errors import ChecksumError, DecodeError, MetadataError


def write_v2(root, *, compressor, chunks, data_dtype="<i4", shape=(4, 4), chunk=(2, 2)):
    root.mkdir(parents=True, exist_ok=True)
    (root / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": list(shape),
                "chunks": list(chunk),
                "dtype": data_dtype,
                "compressor": compressor,
                "fill_value": -1,
                "order": "C",
                "filters": None,
            }
        )
    )
    for key, blob in chunks.items():
        (root / key).write_bytes(blob)


def v3_sharded(root, shard_blob, *, index_codecs=("bytes", "crc32c")):
    root.mkdir(parents=True, exist_ok=True)
    (root / "zarr.json").write_text(
        json.dumps(
            {
                "zarr_format": 3,
                "node_type": "array",
                "shape": [4, 4],
                "data_type": "int32",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 4]}},
                "chunk_key_encoding": {"name": "default"},
                "fill_value": 7,
                "codecs": [
                    {
                        "name": "sharding_indexed",
                        "configuration": {
                            "chunk_shape": [2, 2],
                            "codecs": [{"name": "bytes"}],
                            "index_codecs": list(index_codecs),
                        },
                    }
                ],
            }
        )
    )
    if shard_blob is not None:
        (root / "c").mkdir(exist_ok=True)
        (root / "c" / "0").mkdir(exist_ok=True)
        (root / "c" / "0" / "0").write_bytes(shard_blob)


def shard_bytes(chunks):
    """A shard of 4 inner (2, 2) int32 chunks; ``None`` entries are empty."""
    import crc32c

    body, index = b"", []
    for c in chunks:
        if c is None:
            index.append((2**64 - 1, 2**64 - 1))
            continue
        blob = np.asarray(c, dtype="<i4").tobytes()
        index.append((len(body), len(blob)))
        body += blob
    raw = b"".join(struct.pack("<QQ", *p) for p in index)
    return body + raw + struct.pack("<I", crc32c.crc32c(raw))


def test_missing_chunk_reads_as_fill(tmp_path):
    good = np.arange(4, dtype="<i4").tobytes()
    write_v2(tmp_path / "a", compressor=None, chunks={"0.0": good})
    a = xzaro.open_array(str(tmp_path / "a"))
    out = a[...]
    assert out[:2, :2].tolist() == [[0, 1], [2, 3]]
    assert (out[2:, :] == -1).all() and (out[:, 2:] == -1).all()


def test_truncated_uncompressed_chunk_is_an_error_not_a_reshape(tmp_path):
    write_v2(tmp_path / "a", compressor=None, chunks={"0.0": b"\x00" * 12})
    with pytest.raises(DecodeError, match="expected 16") as e:
        xzaro.open_array(str(tmp_path / "a"))[...]
    assert e.value.key == "0.0" and str(tmp_path / "a") in e.value.url


def test_corrupt_compressed_chunk(tmp_path):
    write_v2(tmp_path / "a", compressor={"id": "zlib", "level": 1}, chunks={"1.1": b"garbage!"})
    with pytest.raises(DecodeError) as e:
        xzaro.open_array(str(tmp_path / "a"))[2:, 2:]
    assert e.value.key == "1.1"


def test_decompression_bomb_is_refused(tmp_path):
    bomb = zlib.compress(b"\x00" * (64 * 2**20))
    write_v2(tmp_path / "a", compressor={"id": "zlib", "level": 1}, chunks={"0.0": bomb})
    with pytest.raises(DecodeError, match="more than the expected 16 bytes"):
        xzaro.open_array(str(tmp_path / "a"))[0, 0]


def test_blosc_frame_with_wrong_size_is_refused(tmp_path):
    from numcodecs import Blosc

    blob = Blosc().encode(np.arange(8, dtype="<i4"))  # 32 bytes, chunk holds 16
    write_v2(tmp_path / "a", compressor={"id": "blosc"}, chunks={"0.0": blob})
    with pytest.raises(DecodeError, match="expected 16"):
        xzaro.open_array(str(tmp_path / "a"))[...]


def test_gzip_declared_zlib_stream_is_read_and_logged(tmp_path, caplog):
    data = np.arange(4, dtype="<i4")
    write_v2(tmp_path / "a", compressor={"id": "gzip"}, chunks={"0.0": zlib.compress(data)})
    with caplog.at_level(logging.INFO, logger="xzaro"):
        out = xzaro.open_array(str(tmp_path / "a"))[:2, :2]
    assert out.ravel().tolist() == [0, 1, 2, 3]
    assert any("zlib stream" in r.getMessage() for r in caplog.records)


def test_sharded_reads_missing_inner_chunks_and_shards_as_fill(tmp_path):
    v3_sharded(tmp_path / "s", shard_bytes([[[1, 2], [3, 4]], None, None, [[5, 6], [7, 8]]]))
    a = xzaro.open_array(str(tmp_path / "s"))
    expected = np.full((4, 4), 7)
    expected[:2, :2] = [[1, 2], [3, 4]]
    expected[2:, 2:] = [[5, 6], [7, 8]]
    np.testing.assert_array_equal(a[...], expected)
    np.testing.assert_array_equal(a[3, 3], 8)  # partial read through the index
    v3_sharded(tmp_path / "empty", None)
    assert (xzaro.open_array(str(tmp_path / "empty"))[...] == 7).all()


def test_shard_index_checksum_mismatch(tmp_path):
    blob = bytearray(shard_bytes([[[1, 2], [3, 4]]] * 4))
    blob[-5] ^= 0xFF
    v3_sharded(tmp_path / "s", bytes(blob))
    a = xzaro.open_array(str(tmp_path / "s"))
    with pytest.raises(ChecksumError) as e:
        a[...]
    assert e.value.key == "c/0/0"
    with pytest.raises(ChecksumError):
        a[0, 0]


def test_shard_index_pointing_outside_the_shard(tmp_path):
    import crc32c

    raw = struct.pack("<QQ", 1000, 16) + struct.pack("<QQ", 2**64 - 1, 2**64 - 1) * 3
    v3_sharded(tmp_path / "s", raw + struct.pack("<I", crc32c.crc32c(raw)))
    a = xzaro.open_array(str(tmp_path / "s"))
    with pytest.raises(DecodeError, match=r"outside|shorter"):
        a[...]
    with pytest.raises(DecodeError, match=r"outside|shorter"):
        a[0, 0]


def test_invalid_metadata_json_names_the_key(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".zarray").write_text("{ nope")
    with pytest.raises(MetadataError, match="invalid JSON") as e:
        xzaro.open_array(str(tmp_path / "a"))
    assert e.value.key == ".zarray"


@pytest.mark.parametrize("selection", [(4, 0), (0, -5), (slice(None), 9), (0, 0, 0)])
def test_out_of_range_selection_names_the_shape(tmp_path, selection):
    write_v2(tmp_path / "a", compressor=None, chunks={})
    with pytest.raises(IndexError, match=r"\(4, 4\)"):
        xzaro.open_array(str(tmp_path / "a"))[selection]


def test_out_of_range_region(tmp_path):
    write_v2(tmp_path / "a", compressor=None, chunks={})
    a = xzaro.open_array(str(tmp_path / "a"))
    with pytest.raises(IndexError, match=r"\(4, 4\)"):
        a.read_region((3, 0), (2, None))
    with pytest.raises(IndexError):
        a.read_chunk((2, 0))
