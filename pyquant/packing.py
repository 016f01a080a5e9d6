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


def pack(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer ``codes`` of width ``bits`` into bytes.

    Guarantees: the output has ``rows * row_bytes(cols, bits)`` bytes; ``unpack`` of it with
    the same shape returns the codes exactly. Raises ``ValueError`` for an unsupported width,
    a non-integer array, or any code outside the narrow symmetric range
    ``[-(2**(bits-1)-1), 2**(bits-1)-1]``.
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
    rows, cols = a.shape
    ngroups = -(-cols // per)
    padded = np.zeros((rows, ngroups * per), dtype=np.int64)
    padded[:, :cols] = a
    u = (padded & ((1 << bits) - 1)).astype(np.uint32).reshape(rows, ngroups, per)
    shifts = (np.arange(per, dtype=np.uint32) * bits)
    g = np.bitwise_or.reduce(u << shifts, axis=2) if per > 1 else u[..., 0]
    out = np.empty((rows, ngroups, nb), dtype=np.uint8)
    for j in range(nb):
        out[..., j] = (g >> np.uint32(8 * j)) & np.uint32(0xFF)
    return out.tobytes()


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
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if buf.size != need:
        raise ValueError(f"packed INT{bits} data for shape {shape} needs {need} bytes, got {buf.size}")
    b = buf.reshape(rows, ngroups, nb).astype(np.uint32)
    g = np.zeros((rows, ngroups), dtype=np.uint32)
    for j in range(nb):
        g |= b[..., j] << np.uint32(8 * j)
    shifts = np.arange(per, dtype=np.uint32) * bits
    u = (g[..., None] >> shifts) & np.uint32((1 << bits) - 1)
    s = u.astype(np.int16)
    s = np.where(s >= (1 << (bits - 1)), s - (1 << bits), s)
    out = s.reshape(rows, ngroups * per)[:, :cols].astype(np.int8)
    return out.reshape(shape)
