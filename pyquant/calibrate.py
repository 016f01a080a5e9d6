"""Activation calibration and the integer constants of every layer.

Given an executable float model (:mod:`pyquant.executable`), quantized weights (LayerRecords
from :mod:`pyquant.analysis`) and calibration inputs, this fills in what the integer pipeline
(docs/FORMAT.md section 4) needs:

- **Activation scales** (per tensor, symmetric int8): the model input scale is
  ``max|x_calib| / 127``; each layer's output scale is ``max|y| / 127`` over the calibration
  set, ``y`` being the float layer output after ReLU and before pooling (pooling keeps the
  scale: max/average of values within the range). A layer whose calibration output is all
  zero gets scale 1. A layer's input scale is the previous layer's output scale.
- **Bias**: ``bias_int[m] = rint(b[m] / (in_scale · w_scale[m]))`` (int32). The accumulator
  must hold ``|bias| + K·128·qmax`` in int32; a row whose bias would not fit (a float bias huge
  compared with a tiny per-channel weight scale) gets the smallest weight scale that fits and
  is re-quantized with it (``scale``/``scales`` in model.json show the scale actually used).
- **Requantisation**: ``(mult[m], shift[m]) = quantize_multiplier(in_scale · w_scale[m] /
  out_scale)`` (15-bit mantissa, round half up in the shift: docs/FORMAT.md section 4).
- **Flatten**: a dense layer fed by a flattened conv feature map gets its code columns permuted
  from ONNX's CHW order to the HWC order the integer activations use, so Flatten is a no-op.

Everything is deterministic; the same inputs give byte-identical model directories.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyquant.errors import InputError
from pyquant.executable import ExecModel, weight_items
from pyquant.fileio import load_npy, load_npz
from pyquant.infer import infer_float, to_hwc
from pyquant.intmath import quantize_multiplier
from pyquant.layerfiles import LayerRecord


@dataclass
class ActScales:
    """Per-tensor activation scales: the model input and each layer's output."""

    input: float
    outputs: list[float]
    samples: int = 0
    method: str = "maxabs"


def load_data_file(path: str | os.PathLike, model: ExecModel, labels: bool = False):
    """Load ``.npy`` (inputs) or ``.npz`` (``X`` [+ ``y``]) and check it fits ``model``'s input.

    Returns float64 ``X[N, ...]`` (and int ``y`` or ``None`` when ``labels``). Raises
    :class:`InputError` naming the file when it is missing, unreadable, empty, non-finite or
    of the wrong per-sample shape.
    """
    p = Path(path)
    y = None
    if p.suffix.lower() == ".npz":
        z = load_npz(p, ["X", "y"])
        if "X" not in z:
            raise InputError(f"{p}: npz data needs an array 'X' (and 'y' for labels)")
        x, y = z["X"], z.get("y")
    else:
        x = load_npy(p)
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number) or x.ndim < 1 \
            or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{p}: expected a real numeric array [N, ...], got {getattr(x, 'dtype', type(x))} "
                         f"{getattr(x, 'shape', '')}")
    if x.shape[0] == 0:
        raise InputError(f"{p}: holds no samples")
    c, h, w = model.input_chw
    per = c * h * w
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != per:
        raise InputError(f"{p}: data shape {tuple(x.shape)} does not match the model input "
                         f"(expected [N, {per}] or [N, {c}, {h}, {w}])")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{p}: data contains NaN or Inf")
    if y is not None:
        y = y.reshape(-1)
        if y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"{p}: labels 'y' must be {x.shape[0]} integers")
    return (x, y) if labels else x


def activation_scales(model: ExecModel, x_calib: np.ndarray) -> ActScales:
    """Max-abs activation scales of the model input and every layer output (see module doc)."""
    a = to_hwc(x_calib, model.input_chw, "calibration data")
    m = float(np.max(np.abs(a)))
    s_in = m / 127.0 if m > 0 else 1.0
    _, inter = infer_float(model, x_calib, return_intermediates=True)
    outs = []
    for it in inter:
        mx = float(np.max(np.abs(it["y"])))
        outs.append(mx / 127.0 if mx > 0 else 1.0)
    return ActScales(s_in, outs, samples=int(a.shape[0]))


def hwc_permutation(chw: tuple[int, int, int]) -> np.ndarray:
    """``p`` with ``new[:, j] = old[:, p[j]]``: CHW-flattened columns -> HWC-flattened columns."""
    c, h, w = chw
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def attach(model: ExecModel, records: list[LayerRecord], scales: ActScales) -> list[LayerRecord]:
    """Return copies of ``records`` made executable: geometry, ReLU/pool, permuted codes,
    ``bias_int``, ``mult``, ``shift``, ``in_scale``, ``out_scale`` (see module doc)."""
    if len(records) != len(model.layers):
        raise InputError(f"{model.source}: {len(records)} quantized layers for {len(model.layers)} model layers")
    out = []
    s_in = scales.input
    for ly, rec, s_out in zip(model.layers, records, scales.outputs):
        r = copy.copy(rec)
        codes = np.asarray(rec.codes, dtype=np.int8)
        if codes.shape != ly.w.shape:
            raise InputError(f"{model.source}: layer {ly.name!r} codes {codes.shape} vs weight {ly.w.shape}")
        scale = np.asarray(rec.scale, dtype=np.float64).reshape(-1).copy()
        ws = np.broadcast_to(scale, (ly.rows,)) if scale.size == 1 else scale
        # The int32 accumulator must hold bias + K·128·qmax. A row whose float bias is huge
        # compared with its weights (tiny per-channel scale) gets a coarser weight scale instead.
        qm = (1 << (int(rec.bits) - 1)) - 1
        room = float(2**31 - 1 - ly.cols * 128 * qm)
        need = np.abs(ly.b) / (s_in * room)                  # smallest weight scale that fits
        low = ws < need
        if np.any(low):
            if room <= 0:
                raise InputError(f"{model.source}: layer {ly.name!r}: K = {ly.cols} overflows int32")
            if scale.size == 1:
                scale = np.array([float(need.max())])
                codes = np.clip(np.rint(ly.w / scale[0]), -qm, qm).astype(np.int8)
            else:
                scale[low] = need[low]
                codes = codes.copy()
                codes[low] = np.clip(np.rint(ly.w[low] / scale[low, None]), -qm, qm).astype(np.int8)
            r.scale = scale
            ws = np.broadcast_to(scale, (ly.rows,)) if scale.size == 1 else scale
        if ly.flatten_chw is not None:
            codes = codes[:, hwc_permutation(ly.flatten_chw)]
        r.codes = np.ascontiguousarray(codes)
        acc_scale = s_in * ws
        b = np.rint(ly.b / acc_scale)
        try:
            mult, shift = quantize_multiplier(acc_scale / s_out)
        except ValueError as e:
            raise InputError(f"{model.source}: layer {ly.name!r}: {e}") from None
        r.bias_int = b.astype(np.int32)
        r.mult, r.shift = mult.astype(np.int64), shift.astype(np.int64)
        r.in_scale, r.out_scale = float(s_in), float(s_out)
        r.relu, r.pool, r.pool_k, r.pool_stride = ly.relu, ly.pool, ly.pool_k, ly.pool_stride
        r.geom = dict(ly.geom) if ly.geom else None
        r.kind = ly.kind
        r.executable = True
        out.append(r)
        s_in = s_out
    return out


def model_info(model: ExecModel, layers: list[LayerRecord], scales: ActScales, **extra) -> dict:
    """The ``info`` dict of an executable model directory (model.json ``info``; meta header)."""
    c, h, w = model.input_chw
    last = layers[-1]
    info = {
        "source": os.path.basename(model.source) if model.source else "",
        "executable": True,
        "input": {"h": h, "w": w, "c": c, "scale": float(scales.input), "layout": "HWC",
                  "onnx_shape": [c, h, w] if model.is_conv_input else [c]},
        "out_size": int(model.output_size),
        "output_scale": float(last.out_scale),
        "calibration": {"method": scales.method, "samples": scales.samples},
    }
    info.update(extra)
    return info


class PlanBuilder:
    """Builds executable layer lists for any per-layer width assignment, caching the quantized
    weights per (layer, width) and the activation scales (computed once)."""

    def __init__(self, model: ExecModel, x_calib: np.ndarray, crit=None):
        from pyquant.analysis import Criteria, analyze_weights

        self.model = model
        self.crit = crit or Criteria()
        self.items = weight_items(model)
        self.scales = activation_scales(model, x_calib)
        self.base = analyze_weights(self.items, self.crit)          # the SNR-gate choice
        self._cache: dict[tuple[int, int], LayerRecord] = {}

    @property
    def names(self) -> list[str]:
        return [ly.name for ly in self.model.layers]

    def snr_bits(self) -> list[int]:
        """Per-layer widths chosen by the per-layer SNR / in-range gate."""
        return [int(r.bits) for r in self.base]

    def record(self, i: int, bits: int) -> LayerRecord:
        """Layer ``i`` quantized at ``bits`` (the gate's own record when it chose ``bits``)."""
        key = (i, int(bits))
        if key not in self._cache:
            if self.base[i].bits == bits:
                self._cache[key] = self.base[i]
            else:
                from pyquant.analysis import analyze_layer, WeightItem

                self._cache[key] = analyze_layer(WeightItem(*self.items[i]), self.crit, force_bits=int(bits))
        return self._cache[key]

    def build(self, bits: list[int]) -> list[LayerRecord]:
        """Executable layers with width ``bits[i]`` for layer ``i``."""
        if len(bits) != len(self.items):
            raise InputError(f"plan has {len(bits)} widths for {len(self.items)} layers")
        return attach(self.model, [self.record(i, b) for i, b in enumerate(bits)], self.scales)

    def info(self, layers: list[LayerRecord], **extra) -> dict:
        return model_info(self.model, layers, self.scales, **extra)
