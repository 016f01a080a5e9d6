"""Dense bit packing of weight codes (the layout every consumer of a layer file relies on).

Layout (docs/FORMAT.md): rows are axis 0 of the code array (a 1-D array is one row; higher
ranks are flattened to [rows, -1]). Every row is padded with code 0 to a whole number of
groups so each row starts on a byte boundary. A group holds ``per`` weights in ``nbytes``
bytes: INT2 4 in 1, INT4 2 in 1, INT6 4 in 3, INT8 1 in 1. Inside a group, weight ``i``
occupies bits ``[i*b, (i+1)*b)`` of the group read as a little-endian integer, in two's
complement.
"""

from __future__ import annotations

import numpy as np

# bits -> (weights per group, bytes per group)
_GROUPS: dict[int, tuple[int, int]] = {2: (4, 1), 4: (2, 1), 6: (4, 3), 8: (1, 1)}


def group_size(bits: int) -> tuple[int, int]:
    """Return ``(weights_per_group, bytes_per_group)`` for a supported width."""
    try:
        return _GROUPS[int(bits)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"unsupported bit width {bits!r}: expected one of 2, 4, 6, 8") from None


def row_bytes(cols: int, bits: int) -> int:
    """Bytes one packed row of ``cols`` codes occupies (padded to whole groups)."""
    per, nb = group_size(bits)
    return -(-int(cols) // per) * nb


def _as_rows(codes: np.ndarray) -> np.ndarray:
    a = np.asarray(codes)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    elif a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    return a


def _pad_cols(a: np.ndarray, per: int) -> np.ndarray:
    rows, cols = a.shape
    ngroups = -(-cols // per)
    if ngroups * per == cols:
        return a
    padded = np.zeros((rows, ngroups * per), dtype=a.dtype)
    padded[:, :cols] = a
    return padded


def pack(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer ``codes`` of width ``bits`` into bytes.

    Guarantees: the output has ``rows * row_bytes(cols, bits)`` bytes; ``unpack`` of it with
    the same shape returns the codes exactly. Raises ``ValueError`` for an unsupported width,
    a non-integer array, or any code outside the narrow symmetric range
    ``[-(2**(bits-1)-1), 2**(bits-1)-1]``. Vectorised uint8 arithmetic, no Python loop over
    elements.
    """
    per, nb = group_size(bits)
    a = _as_rows(codes)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"codes must be an integer array, got dtype {a.dtype}")
    qm = (1 << (bits - 1)) - 1
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < -qm or hi > qm:
            raise ValueError(f"code out of range for INT{bits}: [{lo}, {hi}] not within [{-qm}, {qm}]")
    if a.size == 0:
        return bytes(a.shape[0] * row_bytes(a.shape[1], bits))
    u = np.ascontiguousarray(_pad_cols(np.asarray(a, dtype=np.int8), per)).view(np.uint8)
    if bits == 8:
        return u.tobytes()
    # INT4/INT2: read a group's codes (one byte each, two's complement) as one little-endian
    # word, keep the low b bits of each byte and fold them down into the low byte in place.
    if bits == 4:
        x = u.reshape(-1).view("<u2") & np.uint16(0x0F0F)
        x |= x >> np.uint16(4)
        return x.astype(np.uint8).tobytes()
    if bits == 2:
        x = u.reshape(-1).view("<u4") & np.uint32(0x03030303)
        x |= x >> np.uint32(6)
        x |= x >> np.uint32(12)
        return x.astype(np.uint8).tobytes()
    # INT6: 4 codes (a, b, c, d) -> 3 bytes of the 24-bit little-endian value a | b<<6 | c<<12 | d<<18
    u = u & np.uint8(0x3F)
    w0, w1, w2, w3 = u[:, 0::4], u[:, 1::4], u[:, 2::4], u[:, 3::4]
    out = np.empty((u.shape[0], w0.shape[1], 3), dtype=np.uint8)
    out[..., 0] = w0 | (w1 << 6)
    out[..., 1] = (w1 >> 2) | (w2 << 4)
    out[..., 2] = (w2 >> 4) | (w3 << 2)
    return out.tobytes()


def _sx(v: np.ndarray, bits: int) -> np.ndarray:
    """Sign-extend the low ``bits`` of uint8 ``v`` to int8 (shift up, arithmetic shift down)."""
    return (v << np.uint8(8 - bits)).view(np.int8) >> np.int8(8 - bits)


def unpack(data: bytes | bytearray | memoryview | np.ndarray, bits: int, shape) -> np.ndarray:
    """Inverse of :func:`pack`: return int8 codes of ``shape`` from packed ``data``.

    Raises ``ValueError`` when ``len(data)`` is not exactly what ``shape`` needs.
    """
    per, nb = group_size(bits)
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    if len(shape) == 0:
        rows, cols = 1, 1
    elif len(shape) == 1:
        rows, cols = 1, shape[0]
    else:
        rows, cols = shape[0], int(np.prod(shape[1:]))
    ngroups = -(-cols // per)
    need = rows * ngroups * nb
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != need:
        raise ValueError(f"packed INT{bits} data for shape {shape} needs {need} bytes, got {buf.size}")
    b = buf.reshape(rows, ngroups, nb)
    out = np.empty((rows, ngroups, per), dtype=np.int8)
    if bits == 8:
        out[...] = b.view(np.int8)
    elif bits == 4:
        x = b[..., 0]
        out[..., 0] = _sx(x, 4)
        out[..., 1] = x.view(np.int8) >> np.int8(4)
    elif bits == 2:
        x = b[..., 0]
        out[..., 0] = _sx(x, 2)
        out[..., 1] = _sx(x >> np.uint8(2), 2)
        out[..., 2] = _sx(x >> np.uint8(4), 2)
        out[..., 3] = x.view(np.int8) >> np.int8(6)
    else:
        b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
        out[..., 0] = _sx(b0, 6)
        out[..., 1] = _sx((b0 >> np.uint8(6)) | (b1 << np.uint8(2)), 6)
        out[..., 2] = _sx((b1 >> np.uint8(4)) | (b2 << np.uint8(4)), 6)
        out[..., 3] = b2.view(np.int8) >> np.int8(2)
    res = out.reshape(rows, ngroups * per)
    if ngroups * per != cols:
        res = res[:, :cols]
    return np.ascontiguousarray(res).reshape(shape)
