"""Build small model.meta.bin files + layer blobs from a spec (docs/FORMAT.md section 5).

Written from the format description, independently of pyquant's writer, for seeds and tests.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from pyquant.packing import pack


@dataclass
class Layer:
    """One executable layer: dense (conv=None) or conv with geometry (h, w, c, kh, kw, stride, pad)."""

    rows: int
    cols: int
    bits: int = 8
    relu: bool = True
    conv: tuple[int, int, int, int, int, int, int] | None = None
    pool: int = 0          # 0 none, 1 max, 2 avg
    pool_k: int = 0
    pool_s: int = 0


def build(layers: list[Layer], in_hwc: tuple[int, int, int], seed: int = 0) -> tuple[bytes, list[bytes]]:
    """Return ``(meta, blobs)`` with random codes and constants; guarantees a file the
    firmware must accept (consistent chain, sizes, CRCs)."""
    rng = np.random.default_rng(seed)
    n = len(layers)
    params_off = 64 + 128 * n
    rows_total = sum(L.rows for L in layers)
    size = params_off + 8 * rows_total + 4
    recs, params, blobs = b"", b"", []
    p = params_off
    out_size = 0
    for i, L in enumerate(layers):
        q = (1 << (L.bits - 1)) - 1
        codes = rng.integers(-q, q + 1, size=(L.rows, L.cols))
        blob = pack(codes, L.bits)
        blobs.append(blob)
        spread = max(1, int(np.sqrt(L.cols) * q * 43))   # ~std of the accumulator
        sh = 14 + int(np.ceil(np.log2(spread))) - 5        # outputs spread over int8, not saturated
        for _ in range(L.rows):
            params += struct.pack("<iHBB", int(rng.integers(-spread // 2, spread // 2 + 1)),
                                  int(rng.integers(16384, 32768)), int(min(47, max(1, sh + rng.integers(0, 2)))), 0)
        if L.conv:
            h, w, c, kh, kw, s, pad = L.conv
            oh, ow = (h + 2 * pad - kh) // s + 1, (w + 2 * pad - kw) // s + 1
            geo = (h, w, c, kh, kw, s, s, pad, pad, pad, pad, oh, ow)
        else:
            oh = ow = 1
            geo = (1, 1, L.cols, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1)
        ph = (oh - L.pool_k) // L.pool_s + 1 if L.pool else oh
        pw = (ow - L.pool_k) // L.pool_s + 1 if L.pool else ow
        out_size = ph * pw * L.rows
        rec = struct.pack("<32sBBBBIIIII", f"l{i}".encode(), 2 if L.conv else 1, L.bits,
                          (1 if L.relu else 0) | 8, L.pool, L.rows, L.cols, len(blob), zlib.crc32(blob), p)
        rec += struct.pack("<13H", *geo) + struct.pack("<HHH", L.pool_k if L.pool else 0,
                                                       L.pool_s if L.pool else 0, 0)
        rec += struct.pack("<fff", 0.0, 1.0, 1.0) + bytes(28)
        assert len(rec) == 128
        recs += rec
        p += 8 * L.rows
    hdr = struct.pack("<4sHHHHIIIHHHHfII", b"PQMB", 1, 64, 128, n, size, params_off, 8 * rows_total,
                      in_hwc[0], in_hwc[1], in_hwc[2], 1, 1.0, out_size, sum(len(b) for b in blobs))
    hdr += bytes(64 - len(hdr))
    body = hdr + recs + params
    return body + struct.pack("<I", zlib.crc32(body)), blobs
