"""Weight quantization math (DESIGN contract; docs/FORMAT.md "Codes and metrics").

All computations are float64. Codes are symmetric, zero-point 0, narrow range:
``b`` bits hold ``[-(2**(b-1)-1), 2**(b-1)-1]``.
"""

from __future__ import annotations

import math

import numpy as np

QMAX: dict[int, int] = {8: 127, 6: 31, 4: 7, 2: 1}


def qmax(bits: int) -> int:
    """Largest code magnitude for ``bits`` (narrow symmetric range)."""
    if bits not in QMAX:
        raise ValueError(f"unsupported bit width {bits!r}: expected one of 2, 4, 6, 8")
    return QMAX[bits]


def _channel_view(w: np.ndarray, per_channel: bool) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if per_channel:
        return w.reshape(w.shape[0], -1) if w.ndim >= 1 and w.size else w.reshape(1, -1)
    return w.reshape(1, -1)


def scale_maxabs(w: np.ndarray, bits: int, per_channel: bool = False) -> np.ndarray:
    """``s = max|w| / qmax`` per tensor (shape ``[1]``) or per output channel (``[rows]``).

    An all-zero tensor/channel gets scale 1.0 (any scale is exact for zeros).
    """
    v = _channel_view(w, per_channel)
    m = np.max(np.abs(v), axis=1) if v.size else np.zeros(v.shape[0])
    s = m / qmax(bits)
    return np.where(s > 0, s, 1.0)


def _broadcast_scale(scale: np.ndarray | float, ndim: int) -> np.ndarray:
    """A per-tensor scale as a float64 scalar, a per-channel one shaped ``[rows, 1, ...]``
    to broadcast along axis 0 of an ``ndim``-dimensional weight."""
    s = np.asarray(scale, dtype=np.float64)
    return s.reshape((-1,) + (1,) * (ndim - 1)) if s.size > 1 else s.reshape(())


def quantize(w: np.ndarray, scale: np.ndarray | float, bits: int) -> np.ndarray:
    """``q = clip(rint(w / s), -qmax, qmax)`` in float64 (round half to even), as int8.

    ``scale`` is a scalar, shape ``[1]`` (per tensor) or ``[rows]`` (per channel, axis 0).
    """
    w = np.asarray(w, dtype=np.float64)
    s = _broadcast_scale(scale, w.ndim)
    qm = qmax(bits)
    return np.clip(np.rint(w / s), -qm, qm).astype(np.int8)


def snr_db(w: np.ndarray, scale: np.ndarray | float, q: np.ndarray) -> float:
    """``10*log10(sum w^2 / sum (w - s*q)^2)``; ``math.inf`` when the error is exactly 0."""
    w = np.asarray(w, dtype=np.float64)
    s = _broadcast_scale(scale, w.ndim)
    err = float(np.sum((w - s * q.astype(np.float64)) ** 2))
    sig = float(np.sum(w * w))
    if err == 0.0:
        return math.inf
    if sig == 0.0:
        return -math.inf
    return 10.0 * math.log10(sig / err)


def in_range(w: np.ndarray, scale: np.ndarray | float, bits: int) -> float:
    """Fraction of weights whose ``rint(w/s)`` lies inside ``[-qmax, qmax]`` (not clipped)."""
    w = np.asarray(w, dtype=np.float64)
    if w.size == 0:
        return 1.0
    s = _broadcast_scale(scale, w.ndim)
    r = np.rint(w / s)
    qm = qmax(bits)
    return float(np.count_nonzero(np.abs(r) <= qm)) / w.size
