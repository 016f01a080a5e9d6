"""Per-layer precision analysis: candidates at each width, the choice, the summary.

For every layer (a canonical float weight ``W[M, K]``, docs/FORMAT.md section 2) and every
width ``b`` in the criteria this computes, in float64 and exactly as docs/FORMAT.md section 1
defines them: the scale (``maxabs``: ``max|w|/qmax``; ``mse``: the clip minimising the
quantisation MSE, section 1.1), ``snr_db`` and ``in_range`` of the codes
``clip(rint(w/s), -qmax, qmax)``. The chosen width is the lowest one passing both thresholds;
if none passes, INT8 with status ``fallback``.

Layers are processed one at a time (:func:`iter_analyze`), each tensor in row chunks, so
memory stays bounded by one layer's weights plus fixed-size temporaries.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from pyquant.errors import InputError
from pyquant.layerfiles import LayerRecord
from pyquant.packing import row_bytes
from pyquant.quant import QMAX

ALL_BITS = (2, 4, 6, 8)
SCALE_METHODS = ("maxabs", "mse")
GRANULARITIES = ("tensor", "channel")
_CHUNK = 1 << 18          # elements per chunk in the metric passes (2 MB of float64)
_MSE_GRID = np.linspace(0.05, 1.0, 96)   # clip = alpha * max|w|, alpha = 1 is maxabs


class WeightItem(NamedTuple):
    """One layer's weight as extracted from a model: canonical float ``w`` is ``[M, K]``."""

    name: str
    tensor: str
    op: str
    kind: str
    w: np.ndarray
    shape: tuple[int, ...]


@dataclass
class Criteria:
    """Selection options shared by ``analyze`` and ``convert``."""

    snr_min: float = 40.0
    in_range_min: float = 0.99
    bits: tuple[int, ...] = ALL_BITS
    granularity: str = "tensor"
    scale: str = "maxabs"

    def __post_init__(self) -> None:
        self.bits = tuple(sorted({int(b) for b in self.bits}))
        if not self.bits or any(b not in QMAX for b in self.bits):
            raise InputError(f"--bits: invalid widths {self.bits}: choose from 8,6,4,2")
        if self.granularity not in GRANULARITIES:
            raise InputError(f"--granularity must be tensor or channel, got {self.granularity!r}")
        if self.scale not in SCALE_METHODS:
            raise InputError(f"--scale must be one of {', '.join(SCALE_METHODS)}, got {self.scale!r}")
        if not math.isfinite(self.snr_min):
            raise InputError("--snr-min must be a finite number")
        if not (0.0 <= self.in_range_min <= 1.0):
            raise InputError(f"--in-range-min must be within [0, 1], got {self.in_range_min}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["bits"] = list(self.bits)
        return d


def parse_bits(text: str) -> tuple[int, ...]:
    """Parse ``"8,6,4,2"``; raise :class:`InputError` for anything else."""
    try:
        vals = [int(t) for t in str(text).replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise InputError(f"--bits: {text!r} is not a comma-separated list of 8,6,4,2") from None
    bad = [v for v in vals if v not in QMAX]
    if not vals or bad:
        raise InputError(f"--bits: invalid width(s) {bad or text!r}: choose from 8,6,4,2")
    return tuple(sorted(set(vals)))


@dataclass
class Candidate:
    bits: int
    scale: np.ndarray
    snr_db: float
    in_range: float
    passed: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"bits": self.bits, "snr_db": self.snr_db if math.isfinite(self.snr_db) else None,
             "in_range": self.in_range, "pass": self.passed}
        if self.scale.size == 1:
            d["scale"] = float(self.scale[0])
        return d


def _rows_view(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        w = w.reshape(w.shape[0] if w.ndim else 1, -1)
    return w


def check_weight(w: np.ndarray, where: str) -> None:
    """Raise :class:`InputError` for empty, 1-element, non-float or non-finite weights."""
    if not (np.issubdtype(w.dtype, np.floating)):
        raise InputError(f"{where}: unsupported dtype {w.dtype} (expected a floating-point weight)")
    if w.size == 0:
        raise InputError(f"{where}: empty tensor {tuple(w.shape)}")
    if w.size == 1:
        raise InputError(f"{where}: 1-element tensor is not a weight matrix")
    # chunked finiteness check (no full-size boolean temporary)
    flat = w.reshape(-1)
    for i in range(0, flat.size, _CHUNK):
        if not np.isfinite(flat[i:i + _CHUNK]).all():
            raise InputError(f"{where}: contains NaN or Inf")


def _maxabs_rows(w: np.ndarray, per_channel: bool) -> np.ndarray:
    m = np.empty(w.shape[0]) if per_channel else np.zeros(1)
    step = max(1, _CHUNK // max(1, w.shape[1]))
    for r in range(0, w.shape[0], step):
        blk = np.abs(w[r:r + step]).max(axis=1) if w.shape[1] else np.zeros(min(step, w.shape[0] - r))
        if per_channel:
            m[r:r + step] = blk
        else:
            m[0] = max(m[0], float(blk.max()))
    return m.astype(np.float64)


def _mse_scales(w: np.ndarray, maxabs: np.ndarray, bits_list: tuple[int, ...], per_channel: bool) -> dict:
    """Clip search: for each width, the scale ``alpha*max|w|/qmax`` (alpha on a 96-point grid
    in [0.05, 1]) minimising the quantisation MSE, estimated from a histogram of |w|
    (2048 bins per tensor, 128 per channel). Returns {bits: scale[rows or 1]}."""
    nb = 128 if per_channel else 2048
    rows = w.shape[0] if per_channel else 1
    hist = np.zeros((rows, nb))
    safe = np.where(maxabs > 0, maxabs, 1.0)
    step = max(1, _CHUNK // max(1, w.shape[1]))
    for r in range(0, w.shape[0], step):
        blk = np.abs(w[r:r + step]).astype(np.float64)
        if per_channel:
            idx = np.minimum((blk / safe[r:r + step, None] * nb).astype(np.int64), nb - 1)
            idx += (np.arange(r, r + blk.shape[0]) * nb)[:, None]
            flat = hist.reshape(-1)
            flat += np.bincount(idx.reshape(-1), minlength=rows * nb)
        else:
            idx = np.minimum((blk.reshape(-1) / safe[0] * nb).astype(np.int64), nb - 1)
            hist[0] += np.bincount(idx, minlength=nb)
    centres = (np.arange(nb) + 0.5) / nb          # in units of max|w|
    out = {}
    for b in bits_list:
        qm = QMAX[b]
        st = _MSE_GRID / qm                          # [A] step in units of max|w|
        q = np.minimum(np.rint(centres[None, :] / st[:, None]), qm)   # [A, nb]
        e = (centres[None, :] - q * st[:, None]) ** 2                 # [A, nb]
        tot = hist @ e.T                                              # [rows, A]
        best = _MSE_GRID[np.argmin(tot, axis=1)]
        s = best * maxabs / qm
        out[b] = np.where(s > 0, s, 1.0)
    return out


def _sum_squares(w: np.ndarray) -> float:
    step = max(1, _CHUNK // max(1, w.shape[1]))
    tot = 0.0
    for r in range(0, w.shape[0], step):
        blk = w[r:r + step].astype(np.float64)
        tot += float(np.einsum("ij,ij->", blk, blk))
    return tot


def _metrics(w: np.ndarray, scale: np.ndarray, bits: int, sig: float) -> tuple[float, float]:
    """Exact float64 ``(snr_db, in_range)`` of ``clip(rint(w/s))`` for scale [1] or [rows]."""
    qm = float(QMAX[bits])
    err = 0.0
    inr = 0
    step = max(1, _CHUNK // max(1, w.shape[1]))
    per = scale.size > 1
    for r in range(0, w.shape[0], step):
        blk = w[r:r + step].astype(np.float64)
        s = scale[r:r + step, None] if per else scale[0]
        x = blk / s
        np.rint(x, out=x)
        inr += x.size - int(np.count_nonzero(x > qm)) - int(np.count_nonzero(x < -qm))
        np.clip(x, -qm, qm, out=x)
        x *= s
        np.subtract(blk, x, out=x)
        err += float(np.einsum("ij,ij->", x, x))
    n = w.size
    if err == 0.0:
        snr = math.inf
    elif sig == 0.0:
        snr = -math.inf
    else:
        snr = 10.0 * math.log10(sig / err)
    return snr, inr / n


def _codes(w: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    qm = float(QMAX[bits])
    out = np.empty(w.shape, dtype=np.int8)
    step = max(1, _CHUNK // max(1, w.shape[1]))
    per = scale.size > 1
    for r in range(0, w.shape[0], step):
        s = scale[r:r + step, None] if per else scale[0]
        x = w[r:r + step].astype(np.float64) / s
        np.rint(x, out=x)
        np.clip(x, -qm, qm, out=x)
        out[r:r + step] = x
    return out


def analyze_layer(item: WeightItem, crit: Criteria, force_bits: int | None = None,
                  keep_codes: bool = True, where: str = "") -> LayerRecord:
    """Analyse one canonical weight; return its :class:`LayerRecord`.

    ``force_bits`` overrides the choice (status ``ok``; the candidates still report the
    metrics). With ``keep_codes=False`` the record's ``codes`` is an empty ``[M, 0]`` array
    (analysis only: no codes are materialised).
    """
    w = _rows_view(item.w)
    check_weight(w, f"{where}{': ' if where else ''}tensor {item.tensor!r}")
    w = np.ascontiguousarray(w)          # original float dtype; chunks are widened to float64
    per_channel = crit.granularity == "channel"
    maxabs = _maxabs_rows(w, per_channel)
    widths = tuple(sorted(set(crit.bits) | ({force_bits} if force_bits else set()) | {8}))
    if crit.scale == "mse":
        scales = _mse_scales(w, maxabs, widths, per_channel)
    else:
        scales = {}
    sig = _sum_squares(w)
    cands: dict[int, Candidate] = {}
    for b in widths:
        s_max = np.where(maxabs > 0, maxabs / QMAX[b], 1.0)
        snr, inr = _metrics(w, s_max, b, sig)
        c = Candidate(b, s_max, snr, inr)
        if b in scales:
            s2 = scales[b]
            snr2, inr2 = _metrics(w, s2, b, sig)
            if snr2 > snr:   # keep the MSE clip only when it really reduces the error
                c = Candidate(b, s2, snr2, inr2)
        c.passed = bool(c.snr_db >= crit.snr_min and c.in_range >= crit.in_range_min)
        cands[b] = c
    status = "ok"
    if force_bits is not None:
        if force_bits not in QMAX:
            raise InputError(f"layer {item.name!r}: forced width {force_bits} is not one of 8,6,4,2")
        bits = int(force_bits)
    else:
        passing = [b for b in crit.bits if cands[b].passed]
        if passing:
            bits = passing[0]
        else:
            bits, status = 8, "fallback"
    chosen = cands[bits]
    codes = _codes(w, chosen.scale, bits) if keep_codes else np.zeros((w.shape[0], 0), np.int8)
    return LayerRecord(name=item.name, tensor=item.tensor, op=item.op, kind=item.kind,
                       shape=tuple(int(x) for x in item.shape), codes=codes, bits=bits, status=status,
                       scale=np.asarray(chosen.scale, dtype=np.float64).reshape(-1),
                       candidates=[cands[b].as_dict() for b in crit.bits])


def _as_item(t) -> WeightItem:
    return t if isinstance(t, WeightItem) else WeightItem(*t)


def iter_analyze(items: Iterable, crit: Criteria, bits_override: dict[str, int] | None = None,
                 keep_codes: bool = True, where: str = "") -> Iterator[LayerRecord]:
    """Stream :func:`analyze_layer` over ``items`` (WeightItem or 6-tuples), one at a time."""
    ov = bits_override or {}
    for t in items:
        it = _as_item(t)
        yield analyze_layer(it, crit, ov.get(it.name), keep_codes=keep_codes, where=where)


def analyze_weights(items: Iterable, crit: Criteria | None = None,
                    bits_override: dict[str, int] | None = None) -> list[LayerRecord]:
    """Turn ``(name, tensor, op, kind, w[M,K] float, original shape)`` items into LayerRecords.

    Each record carries int8 codes at the chosen width (or at ``bits_override[name]``), the
    scale(s) and the candidates. Raises :class:`InputError` for non-finite/empty weights.
    """
    return list(iter_analyze(items, crit or Criteria(), bits_override))


def layer_row(rec: LayerRecord) -> dict:
    """The analysis JSON entry for one layer (docs/FORMAT.md section 7 subset)."""
    rows = int(rec.codes.shape[0])
    cols = int(np.prod(rec.shape)) // max(rows, 1) if rec.codes.shape[1] == 0 else int(rec.codes.shape[1])
    params = rows * cols
    s = rec.scale.reshape(-1)
    return {
        "name": rec.name, "tensor": rec.tensor, "op": rec.op, "kind": rec.kind,
        "shape": list(rec.shape), "rows": rows, "cols": cols, "params": params,
        "bits": rec.bits, "status": rec.status, "bytes": rows * row_bytes(cols, rec.bits),
        "granularity": "channel" if s.size > 1 else "tensor",
        "scale": float(s[0]) if s.size == 1 else None,
        "candidates": rec.candidates,
    }


def summarize(rows: list[dict]) -> dict:
    """Model totals: bytes vs FP32 and all-INT8, average bits, fallbacks, layers per width."""
    params = sum(r["params"] for r in rows)
    packed = sum(r["bytes"] for r in rows)
    int8 = sum(r["rows"] * row_bytes(r["cols"], 8) for r in rows)
    fp32 = 4 * params
    per_width = {str(b): sum(1 for r in rows if r["bits"] == b) for b in ALL_BITS}
    return {
        "layers": len(rows), "params": params, "bytes": packed, "fp32_bytes": fp32, "int8_bytes": int8,
        "ratio_vs_fp32": (fp32 / packed) if packed else None,
        "ratio_vs_int8": (int8 / packed) if packed else None,
        "saving_vs_int8": (1 - packed / int8) if int8 else None,
        "avg_bits": (sum(r["bits"] * r["params"] for r in rows) / params) if params else None,
        "bits_per_weight_packed": (8 * packed / params) if params else None,
        "fallback_layers": sum(1 for r in rows if r["status"] == "fallback"),
        "layers_per_width": per_width,
    }
