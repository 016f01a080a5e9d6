"""Float and bit-exact integer inference of executable models.

- :func:`infer_float` runs an :class:`~pyquant.executable.ExecModel` in float64 (the
  reference the integer pipeline is measured against).
- :func:`infer_int` runs quantized layers (a model directory written by ``pyquant convert``,
  or in-memory :class:`~pyquant.layerfiles.LayerRecord` lists) exactly as the firmware and
  the accelerator do (docs/FORMAT.md section 4): every matrix product goes through
  :func:`pyquant.intmath.layer_int`; conv layers are lowered with :func:`im2col_hwc` (HWC
  input, zero padding, column order ``(c, ky, kx)``); pooling is done on int8 by
  :func:`pool_int`. Activations are int8 HWC, one sample per row (``[N, H·W·C]``).

A batch of ``B`` samples runs a dense layer as one call with ``N = B`` and a conv layer as one
call with ``N = B·out_h·out_w`` (samples concatenated, sample-major). Because every output row
of ``layer_int`` depends on its own input row only, that equals ``B`` per-sample calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyquant.errors import InputError
from pyquant.executable import ExecModel
from pyquant.intmath import layer_int

# --------------------------------------------------------------------------- shared helpers


def to_hwc(x: np.ndarray, chw: tuple[int, int, int], where: str = "input") -> np.ndarray:
    """Float model input ``[N, C·H·W]`` (ONNX CHW order) or ``[N, C, H, W]`` -> ``[N, H, W, C]``.

    A single sample (``[C·H·W]`` or ``[C, H, W]``) is accepted as a batch of one. Raises
    :class:`InputError` when the per-sample element count does not match.
    """
    c, h, w = chw
    a = np.asarray(x)
    per = c * h * w
    if a.ndim == 0 or a.size == 0:
        raise InputError(f"{where}: empty input")
    if a.ndim in (1, 3) and a.size == per:
        a = a.reshape(1, per)
    if a.ndim < 2 or int(np.prod(a.shape[1:])) != per:
        raise InputError(f"{where}: shape {tuple(a.shape)} does not match the model input "
                         f"(per sample {per} values: [N, {per}] or [N, {c}, {h}, {w}])")
    return a.reshape(a.shape[0], c, h, w).transpose(0, 2, 3, 1)


def quantize_input(x: np.ndarray, in_scale: float, chw: tuple[int, int, int],
                   where: str = "input") -> np.ndarray:
    """Model input quantization (docs/FORMAT.md section 4): HWC, ``clip(rint(x/s), -127, 127)``.

    Returns int8 ``[N, H·W·C]``.
    """
    a = to_hwc(x, chw, where).astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{where}: contains NaN or Inf")
    if not in_scale > 0:
        raise InputError(f"{where}: model has no valid input scale (not executable?)")
    q = np.clip(np.rint(a / float(in_scale)), -127, 127).astype(np.int8)
    return q.reshape(q.shape[0], -1)


def im2col_hwc(x: np.ndarray, g: dict) -> np.ndarray:
    """``x[N, H, W, C]`` -> ``[N, out_h·out_w, C·kh·kw]``.

    Row ``n = oy·out_w + ox``; column ``k = (c·kh + ky)·kw + kx``; input pixel
    ``(oy·stride_h + ky − pad_top, ox·stride_w + kx − pad_left)``, zero outside the image.
    Keeps the input dtype (exact for int8).
    """
    n, h, w, c = x.shape
    kh, kw, sh, sw = g["kh"], g["kw"], g["stride_h"], g["stride_w"]
    oh, ow = g["out_h"], g["out_w"]
    xp = np.zeros((n, h + g["pad_top"] + g["pad_bottom"], w + g["pad_left"] + g["pad_right"], c), x.dtype)
    xp[:, g["pad_top"]:g["pad_top"] + h, g["pad_left"]:g["pad_left"] + w, :] = x
    cols = np.empty((n, oh, ow, c, kh, kw), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            cols[..., ky, kx] = xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n, oh * ow, c * kh * kw)


def _windows(y: np.ndarray, k: int, s: int) -> np.ndarray:
    """``y[N, H, W, C]`` -> ``[N, OH, OW, C, k·k]`` pooling windows (no padding)."""
    n, h, w, c = y.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.empty((n, oh, ow, c, k * k), dtype=y.dtype)
    for ky in range(k):
        for kx in range(k):
            out[..., ky * k + kx] = y[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s, :]
    return out


def pool_int(y: np.ndarray, kind: str, k: int, s: int) -> np.ndarray:
    """int8 pooling (docs/FORMAT.md section 4): exact max, or the rounded average
    ``(sum ≥ 0) ? (sum + n/2) / n : −((−sum + n/2) / n)`` (truncating division, n = k·k)."""
    if kind == "none":
        return y
    win = _windows(y, k, s)
    if kind == "max":
        return win.max(axis=-1).astype(np.int8)
    if kind == "avg":
        tot = win.astype(np.int64).sum(axis=-1)
        n = k * k
        pos = (tot + n // 2) // n
        neg = -((-tot + n // 2) // n)
        return np.where(tot >= 0, pos, neg).astype(np.int8)
    raise ValueError(f"unknown pool {kind!r}")


def call_input(ly, a: np.ndarray) -> np.ndarray:
    """The accelerator call's ``X[N·P, K]`` for executable layer ``ly`` from the activations
    ``a[N, in_size]`` (HWC per sample): im2col for conv (``P = out_h·out_w``), as is for dense."""
    n = a.shape[0]
    if ly.kind == "conv":
        g = ly.geom
        xm = im2col_hwc(a.reshape(n, g["in_h"], g["in_w"], g["in_c"]), g)
        return xm.reshape(-1, xm.shape[-1])
    return a.reshape(n, -1)


def call_output(ly, y: np.ndarray, n: int) -> np.ndarray:
    """The next layer's activations ``[n, out_size]`` from the call's ``Y[n·P, M]``: the conv
    layer's pooling (HWC), nothing for dense."""
    if ly.kind == "conv":
        g = ly.geom
        y = pool_int(y.reshape(n, g["out_h"], g["out_w"], -1), ly.pool, ly.pool_k, ly.pool_stride)
    return y.reshape(n, -1)


def pool_float(y: np.ndarray, kind: str, k: int, s: int) -> np.ndarray:
    """Float max/average pooling (no padding)."""
    if kind == "none":
        return y
    win = _windows(y, k, s)
    return win.max(axis=-1) if kind == "max" else win.mean(axis=-1)


# --------------------------------------------------------------------------- float


def infer_float(model: ExecModel | str | os.PathLike, x: np.ndarray, return_intermediates: bool = False):
    """Float64 inference of ``model`` (an ExecModel, or a ``.onnx``/``.npz`` path) on ``x``
    (``[N, C·H·W]`` or ``[N, C, H, W]``).

    Returns the last layer's output ``[N, M]``; with ``return_intermediates`` also a list with,
    per layer, ``{"name", "y": [N, P, M] (after ReLU, before pooling), "out": [N, H·W·C]}``.
    Equal (to float rounding) to running the ONNX graph.
    """
    if isinstance(model, (str, os.PathLike)):
        from pyquant.executable import load_executable

        model = load_executable(model)
    a = to_hwc(x, model.input_chw).astype(np.float64)
    inter = []
    for ly in model.layers:
        n = a.shape[0]
        if ly.kind == "conv":
            cols = im2col_hwc(a, ly.geom)                     # [N, P, K]
            y = cols @ ly.w.T + ly.b
        else:
            if ly.flatten_chw is not None:                    # HWC map -> ONNX CHW flatten
                a = a.transpose(0, 3, 1, 2)
            y = a.reshape(n, 1, -1) @ ly.w.T + ly.b
        if ly.relu:
            y = np.maximum(y, 0.0)
        if ly.kind == "conv":
            g = ly.geom
            a = pool_float(y.reshape(n, g["out_h"], g["out_w"], ly.rows), ly.pool, ly.pool_k, ly.pool_stride)
        else:
            a = y.reshape(n, 1, 1, ly.rows)
        if return_intermediates:
            inter.append({"name": ly.name, "y": y, "out": a.reshape(n, -1)})
    out = a.reshape(a.shape[0], -1)
    return (out, inter) if return_intermediates else out


# --------------------------------------------------------------------------- integer


def load_int_model(model) -> tuple[dict, list]:
    """Normalise ``model`` to ``(info, layers)``: a model directory path, a ``(doc, layers)``
    tuple from :func:`pyquant.layerfiles.read_model_dir`, or a list of executable layers."""
    if isinstance(model, (str, os.PathLike)):
        from pyquant.layerfiles import read_model_dir

        doc, layers = read_model_dir(model)
        info = dict(doc.get("info") or {})
        info["_where"] = str(Path(model))
        _check_meta_execution(Path(model), doc, layers)
        return info, layers
    if isinstance(model, tuple) and len(model) == 2:
        doc, layers = model
        info = dict(doc.get("info", doc) or {})
        return info, list(layers)
    return {}, list(model)


def _check_meta_execution(d: Path, doc: dict, layers: list) -> None:
    """The execution fields the firmware reads from model.meta.bin must equal model.json's."""
    from pyquant.layerfiles import GEOM_KEYS, POOL_CODES, read_meta

    mp = d / doc.get("meta_file", "model.meta.bin")
    hdr, recs, _ = read_meta(mp)
    inp = (doc.get("info") or {}).get("input") or {}
    if doc.get("info", {}).get("executable"):
        if (hdr["in_h"], hdr["in_w"], hdr["in_c"]) != (inp.get("h"), inp.get("w"), inp.get("c")) or \
                not np.isclose(hdr["input_scale"], np.float32(inp.get("scale", 0.0)), rtol=1e-6, atol=0):
            raise InputError(f"{mp}: input geometry/scale differ from model.json")
    for ly, r in zip(layers, recs):
        if not ly.executable:
            continue
        g = ly.geom or {"in_h": 1, "in_w": 1, "in_c": ly.cols, "kh": 1, "kw": 1, "stride_h": 1, "stride_w": 1,
                        "pad_top": 0, "pad_left": 0, "pad_bottom": 0, "pad_right": 0, "out_h": 1, "out_w": 1}
        same = all(int(g.get(k, -1)) == r[k] for k in GEOM_KEYS) and bool(r["flags"] & 1) == bool(ly.relu) \
            and r["pool"] == POOL_CODES.get(ly.pool, -1) and r["pool_k"] == ly.pool_k \
            and r["pool_stride"] == ly.pool_stride and r["op"] == {"dense": 1, "conv": 2}.get(ly.kind, 3)
        if not same:
            raise InputError(f"{mp}: layer {ly.name!r} execution fields (geometry, relu, pool, op) differ "
                             "from model.json")


def input_geometry(layers: list) -> tuple[int, int, int]:
    """``(H, W, C)`` of the first layer's input."""
    l0 = layers[0]
    if l0.kind == "conv":
        g = l0.geom
        return int(g["in_h"]), int(g["in_w"]), int(g["in_c"])
    return 1, 1, int(l0.codes.shape[1])


def check_executable(layers: list, where: str = "model") -> None:
    """Raise :class:`InputError` unless ``layers`` form a consistent executable chain."""
    if not layers:
        raise InputError(f"{where}: has no layers")
    prev = None
    for ly in layers:
        if not ly.executable or ly.kind not in ("dense", "conv"):
            raise InputError(f"{where}: layer {ly.name!r} is not executable (convert with --calib)")
        m, k = ly.codes.shape
        if ly.kind == "conv":
            g = ly.geom or {}
            try:
                if g["in_c"] * g["kh"] * g["kw"] != k:
                    raise InputError(f"{where}: layer {ly.name!r}: geometry in_c·kh·kw = "
                                     f"{g['in_c'] * g['kh'] * g['kw']} but K = {k}")
                hwc = (g["in_h"], g["in_w"], g["in_c"])
            except KeyError as e:
                raise InputError(f"{where}: layer {ly.name!r}: geometry lacks {e}") from None
            size = hwc[0] * hwc[1] * hwc[2]
        else:
            size = k
        if prev is not None and prev != size:
            raise InputError(f"{where}: layer {ly.name!r} takes {size} values per sample but the previous "
                             f"layer gives {prev}")
        if ly.kind == "conv":
            g = ly.geom
            oh, ow = g["out_h"], g["out_w"]
            if ly.pool != "none":
                oh = (oh - ly.pool_k) // ly.pool_stride + 1
                ow = (ow - ly.pool_k) // ly.pool_stride + 1
            prev = oh * ow * m
        else:
            prev = m


def infer_int(model, x_int8: np.ndarray, return_intermediates: bool = False):
    """Bit-exact integer inference: int8 ``x[N, H·W·C]`` (or ``[N, H, W, C]``) -> int8 ``[N, M_last]``.

    ``model`` is a model directory (``pyquant convert`` output), ``(model_json, layers)`` or a
    list of executable LayerRecords. With ``return_intermediates`` also returns one dict per
    layer: ``name``, ``kind``, ``act_in`` ``[N, in_size]`` (the layer's input activation, HWC),
    ``x`` ``[N·P, K]`` and ``y`` ``[N·P, M]`` (the accelerator call's operands and result,
    ``P = out_h·out_w`` for conv, 1 for dense) and ``act_out`` ``[N, out_size]`` (after pooling).
    Raises :class:`InputError` for non-executable layers or mismatched input shapes.
    """
    info, layers = load_int_model(model)
    where = info.get("_where", "model")
    check_executable(layers, where)
    h, w, c = input_geometry(layers)
    a = np.asarray(x_int8)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.size == 0 or int(np.prod(a.shape[1:])) != h * w * c:
        raise InputError(f"{where}: integer input shape {tuple(a.shape)} does not match the first layer "
                         f"(per sample {h}x{w}x{c} = {h * w * c} values)")
    if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < -128 or a.max() > 127)):
        raise InputError(f"{where}: integer input must be int8 values in [-128, 127]")
    a = a.astype(np.int8).reshape(a.shape[0], -1)
    n = a.shape[0]
    inter = []
    for ly in layers:
        xm = call_input(ly, a)
        try:
            y = layer_int(xm, ly.codes, ly.bias_int, ly.mult, ly.shift, bool(ly.relu))
        except ValueError as e:      # e.g. a bias that lets the int32 accumulator overflow
            raise InputError(f"{where}: layer {ly.name!r}: {e}") from None
        out = call_output(ly, y, n)
        if return_intermediates:
            inter.append({"name": ly.name, "kind": ly.kind, "act_in": a, "x": xm, "y": y, "act_out": out})
        a = out
    return (a, inter) if return_intermediates else a


def infer_quantized(model, x: np.ndarray, return_int: bool = False):
    """Float in, float out through the integer pipeline: quantize ``x`` with the model's input
    scale (HWC), :func:`infer_int`, then dequantize with the last layer's ``out_scale``."""
    info, layers = load_int_model(model)
    check_executable(layers, info.get("_where", "model"))
    chw = input_chw(info, layers)
    q = quantize_input(x, in_scale_of(info, layers), chw)
    y = infer_int((info, layers), q)
    f = y.astype(np.float64) * float(layers[-1].out_scale)
    return (f, y) if return_int else f


def in_scale_of(info: dict, layers: list) -> float:
    """The model input scale (``info.input.scale``, else the first layer's ``in_scale``)."""
    s = (info.get("input") or {}).get("scale") or 0.0
    return float(s) if s else float(layers[0].in_scale)


def input_chw(info: dict, layers: list) -> tuple[int, int, int]:
    """The float model input as (C, H, W) (ONNX order), from the first layer's geometry."""
    h, w, c = input_geometry(layers)
    return (c, h, w)
