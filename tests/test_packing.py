"""pack/unpack: hand-computed byte vectors per width, hypothesis round trips, errors.

The known-answer bytes below were worked out by hand from docs/FORMAT.md section 3 (weight i
of a group in bits [i*b, (i+1)*b) of the little-endian group value, two's complement), not by
running the code; the derivations are in the comments and in docs/FORMAT.md section 6.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyquant
from pyquant.packing import group_size, pack, row_bytes, unpack

KNOWN = [
    # INT8: one code per byte, two's complement: 1 -> 01, -1 -> ff, 127 -> 7f, -127 -> 81
    (8, [[1, -1, 127, -127]], "01ff7f81"),
    # INT4 row [1, -2, 7]: group0 = 1 | (-2 & 0xf = 0xe) << 4 = 0xe1; group1 = 7 | pad 0 << 4 = 0x07
    (4, [[1, -2, 7]], "e107"),
    # INT4 two rows of K=1 each start on a byte: [[-7], [3]] -> (0x9), (0x3)
    (4, [[-7], [3]], "0903"),
    # INT2 row [1, -1, 0, 1, -1]: 01 | 11<<2 | 00<<4 | 01<<6 = 0b01001101 = 0x4d; then 11 = 0x03
    (2, [[1, -1, 0, 1, -1]], "4d03"),
    # INT2 [-1, -1, -1, -1] = 0xff; [0, 1, 0, 0] = 0b00000100 = 0x04
    (2, [[-1, -1, -1, -1], [0, 1, 0, 0]], "ff04"),
    # INT6 [1, -1, 31, -31]: 1 | 63<<6 | 31<<12 | 33<<18 = 0x85ffc1 -> little-endian c1 ff 85
    # then [5] padded: 5 -> 05 00 00
    (6, [[1, -1, 31, -31, 5]], "c1ff85050000"),
    # INT6 second row [0, 0, 0, 0, -2]: 000000; then -2 = 0b111110 = 0x3e -> 3e 00 00
    (6, [[0, 0, 0, 0, -2]], "0000003e0000"),
    # INT6 [-1, 0, 0, 0] = 0x00003f -> 3f 00 00; [0, 0, 0, -1] = 63<<18 = 0xfc0000 -> 00 00 fc
    (6, [[-1, 0, 0, 0], [0, 0, 0, -1]], "3f00000000fc"),
]


@pytest.mark.parametrize("bits,codes,hexbytes", KNOWN)
def test_known_answer_bytes(bits, codes, hexbytes):
    c = np.array(codes, dtype=np.int64)
    assert pack(c, bits).hex() == hexbytes
    np.testing.assert_array_equal(unpack(bytes.fromhex(hexbytes), bits, c.shape), c)


def test_top_level_api_and_geometry():
    assert pyquant.pack is pack and pyquant.unpack is unpack
    assert [group_size(b) for b in (2, 4, 6, 8)] == [(4, 1), (2, 1), (4, 3), (1, 1)]
    # independent formula: bytes = ceil(K * b / 8) rounded up to whole groups
    for k in range(0, 40):
        assert row_bytes(k, 8) == k
        assert row_bytes(k, 4) == (k + 1) // 2
        assert row_bytes(k, 2) == (k + 3) // 4
        assert row_bytes(k, 6) == 3 * ((k + 3) // 4)


def test_one_d_is_one_row_and_higher_rank_flattens():
    c = np.array([1, 0, -1, 1, 1], dtype=np.int8)
    assert pack(c, 2) == pack(c.reshape(1, 5), 2)
    c3 = np.arange(-3, 3, dtype=np.int8).reshape(2, 3, 1)
    assert pack(c3, 4) == pack(c3.reshape(2, 3), 4)
    assert unpack(pack(c3, 4), 4, c3.shape).shape == (2, 3, 1)


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
def test_out_of_range_and_bad_input_raise(bits):
    qm = (1 << (bits - 1)) - 1
    for bad in (qm + 1, -qm - 1):
        with pytest.raises(ValueError, match=f"out of range for INT{bits}"):
            pack(np.array([[0, bad]]), bits)
    with pytest.raises(ValueError, match="integer"):
        pack(np.array([[0.5]]), bits)
    with pytest.raises(ValueError, match="needs"):
        unpack(b"\x00" * (row_bytes(5, bits) + 1), bits, (1, 5))


def test_unsupported_width():
    for b in (0, 1, 3, 5, 7, 16):
        with pytest.raises(ValueError, match="unsupported bit width"):
            pack(np.zeros((1, 4), np.int8), b)
        with pytest.raises(ValueError, match="unsupported bit width"):
            unpack(b"\x00", b, (1, 1))


def _reference_pack(codes: np.ndarray, bits: int) -> bytes:
    """Independent bit-by-bit packer written from the FORMAT.md text (slow, for small arrays)."""
    per, nb = {2: (4, 1), 4: (2, 1), 6: (4, 3), 8: (1, 1)}[bits]
    out = bytearray()
    for row in codes.reshape(codes.shape[0], -1) if codes.ndim > 1 else codes.reshape(1, -1):
        vals = [int(v) for v in row]
        while len(vals) % per:
            vals.append(0)
        for g in range(0, len(vals), per):
            acc = 0
            for i, v in enumerate(vals[g:g + per]):
                acc |= (v % (1 << bits)) << (i * bits)
            out += acc.to_bytes(nb, "little")
    return bytes(out)


@st.composite
def _codes(draw):
    bits = draw(st.sampled_from([2, 4, 6, 8]))
    qm = (1 << (bits - 1)) - 1
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=9))
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64]))
    arr = draw(hnp.arrays(dtype, shape, elements=st.integers(-qm, qm)))
    return bits, arr


@settings(max_examples=200, deadline=None)
@given(_codes())
def test_roundtrip_and_layout_property(bc):
    bits, arr = bc
    data = pack(arr, bits)
    rows = arr.shape[0] if arr.ndim > 1 else 1
    cols = arr.size // rows
    assert len(data) == rows * row_bytes(cols, bits)
    assert data == _reference_pack(arr, bits)
    back = unpack(data, bits, arr.shape)
    assert back.dtype == np.int8 and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([2, 4, 6, 8]), st.integers(1, 6), st.integers(1, 37), st.data())
def test_odd_row_lengths_rows_start_on_byte_boundary(bits, rows, cols, data):
    qm = (1 << (bits - 1)) - 1
    arr = np.array(data.draw(st.lists(st.integers(-qm, qm), min_size=rows * cols, max_size=rows * cols)),
                   dtype=np.int8).reshape(rows, cols)
    blob = pack(arr, bits)
    rb = row_bytes(cols, bits)
    for r in range(rows):       # each row packs on its own: the padding never leaks across rows
        assert blob[r * rb:(r + 1) * rb] == pack(arr[r:r + 1], bits)
