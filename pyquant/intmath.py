"""The integer layer arithmetic: the single source of truth for every implementation.

One accelerator call computes, for a weight-code matrix ``W[M, K]`` (int, |w| <= qmax),
activations ``X[N, K]`` (int8, any value in [-128, 127]) and per-row constants
``bias[M]`` (int32), ``mult[M]`` (0 <= mult <= 32767), ``shift[M]`` (1 <= shift <= 47)::

    acc[n, m] = bias[m] + sum_k X[n, k] * W[m, k]                 (exact; fits int32)
    t         = (acc * mult[m] + 2**(shift[m] - 1)) >> shift[m]   (int64, arithmetic shift
                                                                    = floor: round half up)
    t         = max(t, 0)                       if relu
    Y[n, m]   = min(max(t, -128), 127)                            (saturate to int8)

Output ``Y`` is ``[N, M]`` int8 (column/sample-major, so it is the next dense layer's X).
See docs/FORMAT.md "Integer arithmetic".
"""

from __future__ import annotations

import math

import numpy as np

MULT_MAX = 32767
SHIFT_MIN, SHIFT_MAX = 1, 47


def quantize_multiplier(real: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Represent positive real multiplier(s) as ``mult * 2**-shift``.

    Guarantees ``0 <= mult <= 32767`` and ``1 <= shift <= 47``; for reals in
    ``[2**-33, 16383.5]`` the mantissa is normalised to ``[16384, 32767]`` (15 significant bits),
    with ``mult = rint(real * 2**shift)`` (so the relative error is at most ``2**-15``). Tiny reals give ``mult`` 0 (the output is 0);
    reals too large to represent raise ``ValueError``.
    """
    r = np.atleast_1d(np.asarray(real, dtype=np.float64))
    if np.any(~np.isfinite(r)) or np.any(r < 0):
        raise ValueError("requantisation multiplier must be finite and >= 0")
    mult = np.zeros(r.shape, dtype=np.int64)
    shift = np.full(r.shape, SHIFT_MAX, dtype=np.int64)
    for i, x in enumerate(r):
        if x == 0.0:
            continue
        e = math.floor(math.log2(x))            # x in [2**e, 2**(e+1))
        sh = min(max(14 - e, SHIFT_MIN), SHIFT_MAX)  # x * 2**sh in [2**14, 2**15) when unclamped
        m = int(np.rint(x * 2.0 ** sh))
        if m > MULT_MAX and sh > SHIFT_MIN:      # rounding reached 2**15: one bit less
            sh -= 1
            m = int(np.rint(x * 2.0 ** sh))
        if m > MULT_MAX:
            raise ValueError(f"requantisation multiplier {x} too large to represent")
        mult[i], shift[i] = m, sh
    return mult, shift


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, relu: bool) -> np.ndarray:
    """Apply the fixed-point requantisation to int32 accumulators ``acc[..., M]``."""
    a = np.asarray(acc, dtype=np.int64)
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    t = (a * m + (np.int64(1) << (s - 1))) >> s
    if relu:
        t = np.maximum(t, 0)
    return np.clip(t, -128, 127).astype(np.int8)


def layer_int(x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
              relu: bool) -> np.ndarray:
    """One accelerator call: ``Y[N, M]`` int8 from ``X[N, K]`` int8 and codes ``W[M, K]``.

    Raises ``ValueError`` on inconsistent shapes or out-of-contract constants.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if w.ndim != 2 or x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"shape mismatch: X {x.shape} vs W {w.shape} (need X[N,K], W[M,K])")
    M = w.shape[0]
    bias = np.asarray(bias, dtype=np.int64).reshape(-1)
    mult = np.asarray(mult, dtype=np.int64).reshape(-1)
    shift = np.asarray(shift, dtype=np.int64).reshape(-1)
    if not (bias.size == mult.size == shift.size == M):
        raise ValueError(f"per-row constants must have {M} entries")
    if np.any((mult < 0) | (mult > MULT_MAX)) or np.any((shift < SHIFT_MIN) | (shift > SHIFT_MAX)):
        raise ValueError("mult must be in [0, 32767] and shift in [1, 47]")
    if np.any((bias < -(2**31)) | (bias >= 2**31)):
        raise ValueError("bias must fit int32")
    acc = x.astype(np.int64) @ w.astype(np.int64).T + bias[None, :]
    if np.any((acc < -(2**31)) | (acc >= 2**31)):
        raise ValueError("accumulator exceeds int32: reduce K or bias")
    return requantize(acc, mult[None, :], shift[None, :], relu)
