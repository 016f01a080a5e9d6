"""Executable (sequential) float models imported from ONNX or npz.

An :class:`ExecModel` is a chain of matrix-product layers (dense or conv), each with an
optional fused ReLU and an optional pooling, in execution order. It is what the integer
pipeline quantizes (:mod:`pyquant.calibrate`) and what :func:`pyquant.infer.infer_float` runs.

ONNX models are imported as a :class:`pyquant.graph.Graph` (:mod:`pyquant.importers.onnx_graph`:
bias adds and BatchNormalization folded, ReLU fused, Identity/Dropout/Cast dropped, Flatten/Reshape
resolved, dynamic-batch reshape targets evaluated) and lowered by :func:`graph_to_exec`, which
accepts a single chain of ``conv2d`` (group 1, dilation 1; any stride and padding) / ``dense``
layers, each with an optional ReLU and an optional pooling (square kernel, equal strides, no
padding) after a conv, a flatten between the conv part and the dense part, and a dense layer at the
end. Anything else (graph ops the integer pipeline cannot run yet) raises ONE
:class:`~pyquant.errors.InputError` listing every such op.

The npz form (MLPs only): one ``[out, in]`` array per layer in file order, keyed by name (the
layer name is the key, as in ``pyquant.onnx_io``); a key ``<name>.weight`` may come with a
``<name>.bias``. Every layer but the last gets a ReLU.

Weights are kept in the canonical layout of docs/FORMAT.md section 2 (``[M, K]``, conv columns
in ``(c, ky, kx)`` order). A dense layer fed by a flattened conv feature map keeps ONNX's
CHW column order here and records ``flatten_chw``; the integer pipeline permutes its columns
to HWC (docs/FORMAT.md section 4, "Flatten").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from pyquant.errors import InputError
from pyquant.graph import Graph, Op


@dataclass
class FloatLayer:
    """One matrix-product layer of an executable model (float64 weights)."""

    name: str
    tensor: str
    op: str                      # ONNX op type of the layer (Gemm, MatMul, Conv)
    kind: str                    # "dense" | "conv"
    w: np.ndarray                # canonical [M, K]
    b: np.ndarray                # [M]
    shape: tuple[int, ...]       # original weight shape (canonical orientation)
    relu: bool = False
    pool: str = "none"           # none | max | avg
    pool_k: int = 0
    pool_stride: int = 0
    geom: dict | None = None     # conv geometry (docs/FORMAT.md section 5 field names)
    flatten_chw: tuple[int, int, int] | None = None   # dense fed by a flattened C,H,W map
    folded: list[str] = field(default_factory=list)   # names of BN nodes folded into it

    @property
    def rows(self) -> int:
        return int(self.w.shape[0])

    @property
    def cols(self) -> int:
        return int(self.w.shape[1])

    def out_hwc(self) -> tuple[int, int, int]:
        """Output activation shape (H, W, C) after pooling (dense: (1, 1, M))."""
        if self.kind == "dense":
            return (1, 1, self.rows)
        g = self.geom or {}
        h, w = g["out_h"], g["out_w"]
        if self.pool != "none":
            h = (h - self.pool_k) // self.pool_stride + 1
            w = (w - self.pool_k) // self.pool_stride + 1
        return (h, w, self.rows)


@dataclass
class ExecModel:
    """A sequential executable model. ``input_chw`` is (C, H, W); an MLP input is (K, 1, 1)."""

    layers: list[FloatLayer]
    input_chw: tuple[int, int, int]
    source: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        c, h, w = self.input_chw
        return c * h * w

    @property
    def output_size(self) -> int:
        h, w, c = self.layers[-1].out_hwc()
        return h * w * c

    @property
    def is_conv_input(self) -> bool:
        return self.layers[0].kind == "conv"


def _f64(a: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{where}: weight has non-float dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{where}: weight contains NaN or Inf")
    return a


def _conv_geom(g: Graph, op: Op) -> dict:
    h, w, c = g.shape(op.inputs[0])
    m, kh, kw, _ = g.shape(op.inputs[1])
    oh, ow, _ = g.shape(op.outputs[0])
    (sh, sw), (pt, pl, pb, pr) = op.attrs["stride"], op.attrs["pads"]
    return {"in_h": h, "in_w": w, "in_c": c, "kh": kh, "kw": kw, "stride_h": int(sh), "stride_w": int(sw),
            "pad_top": int(pt), "pad_left": int(pl), "pad_bottom": int(pb), "pad_right": int(pr),
            "out_h": oh, "out_w": ow}


class _Lowering:
    """State of :func:`graph_to_exec`'s walk along the chain; ``problems`` collects every op the
    integer pipeline cannot run, as ``(source op type, op name, reason)``."""

    def __init__(self, g: Graph):
        self.g = g
        self.layers: list[FloatLayer] = []
        self.problems: list[tuple[str, str, str]] = []
        self.pending_flatten: tuple[int, int, int] | None = None
        self.last_was_pool = False

    def bad(self, op: Op, reason: str = "") -> None:
        self.problems.append((op.source or op.kind, op.name, reason))

    def layer(self, op: Op) -> None:
        g, a = self.g, op.attrs
        act = a.get("act", "none")
        if act not in ("none", "relu"):
            return self.bad(op, f"fused activation {act}")
        w, b = g.const(op.inputs[1]), g.const(op.inputs[2])
        if op.kind == "conv2d":
            if int(a.get("groups", 1)) != 1:
                return self.bad(op, f"group={a['groups']} (grouped/depthwise convs: graph and analysis only)")
            if tuple(a.get("dilation", (1, 1))) != (1, 1):
                return self.bad(op, f"dilations {list(a['dilation'])}")
            ly = FloatLayer(name=op.name, tensor=a.get("weight_name", op.inputs[1]), op=op.source or "Conv",
                            kind="conv", w=w.transpose(0, 3, 1, 2).reshape(w.shape[0], -1), b=b.copy(),
                            shape=tuple(a.get("weight_shape", w.transpose(0, 3, 1, 2).shape)),
                            geom=_conv_geom(g, op))
        else:
            chw = a.get("flatten_chw")
            if chw is not None:                     # HWC columns back to the ONNX CHW order
                c, h, wd = chw
                w = w.reshape(w.shape[0], h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
            ly = FloatLayer(name=op.name, tensor=a.get("weight_name", op.inputs[1]), op=op.source or "Gemm",
                            kind="dense", w=w.copy(), b=b.copy(), shape=tuple(w.shape),
                            flatten_chw=self.pending_flatten)
            self.pending_flatten = None
        ly.relu = act == "relu"
        ly.folded = list(a.get("folded", []))
        self.layers.append(ly)
        self.last_was_pool = False

    def step(self, op: Op) -> None:
        g, last = self.g, (self.layers[-1] if self.layers else None)
        if op.kind in ("conv2d", "dense"):
            self.layer(op)
        elif op.kind == "relu":
            if last is None or last.relu or last.pool == "avg":
                self.bad(op, "does not follow a layer (or follows an AveragePool)")
            else:
                last.relu = True
        elif op.kind in ("maxpool", "avgpool"):
            (kh, kw), (sh, sw) = op.attrs["kernel"], op.attrs["stride"]
            if last is None or last.kind != "conv" or last.pool != "none" or self.last_was_pool:
                self.bad(op, "must follow a conv layer (one pool per layer)")
            elif kh != kw or sh != sw or any(op.attrs["pads"]):
                self.bad(op, "only square kernels, equal strides, no padding (auto_pad NOTSET/VALID) and no "
                         "extra ceil_mode rows are supported")
            else:
                last.pool, last.pool_k, last.pool_stride = ("max" if op.kind == "maxpool" else "avg"), kh, sh
                self.last_was_pool = True
        elif op.kind == "reshape" and len(g.shape(op.outputs[0])) == 1:
            src = g.shape(op.inputs[0])
            if len(src) == 3:
                self.pending_flatten = (src[2], src[0], src[1])
        else:
            self.bad(op)


def graph_to_exec(graph: Graph) -> ExecModel:
    """Lower an imported :class:`~pyquant.graph.Graph` to the :class:`ExecModel` chain the integer
    pipeline runs (conv group 1 / dense + ReLU + pooling, flatten, dense at the end); otherwise ONE
    :class:`InputError` listing every op it cannot run yet."""
    where = graph.source_path or graph.name
    ins = graph.shape(graph.inputs[0])
    if len(ins) not in (1, 3):
        raise InputError(f"{where}: input of shape {ins}: executable models take [N, K] or [N, C, H, W]")
    lw = _Lowering(graph)
    cur = graph.inputs[0]
    for op in graph.ops:
        acts = [i for i in op.inputs if not graph.tensors[i].is_const]
        if acts != [cur]:
            lw.bad(op, "not on a single chain (branches and joins: graph only)")
        else:
            lw.step(op)
        cur = op.outputs[0]
    if lw.problems:
        types = ", ".join(sorted({t for t, _, _ in lw.problems}))
        nodes = "; ".join(f"{t} {n!r}" + (f": {r}" if r else "") for t, n, r in lw.problems)
        raise InputError(f"{where}: not executable by the integer pipeline: operator(s) {types} ({nodes})")
    if graph.outputs != [cur]:
        raise InputError(f"{where}: graph has {len(graph.outputs)} outputs; an executable model needs exactly 1")
    if not lw.layers:
        raise InputError(f"{where}: no Gemm/MatMul/Conv layer found")
    if lw.pending_flatten is not None or len(graph.shape(cur)) != 1:
        raise InputError(f"{where}: the model must end with a dense layer (output {graph.shape(cur)})")
    for ly in lw.layers:
        if not np.all(np.isfinite(ly.w)) or not np.all(np.isfinite(ly.b)):
            raise InputError(f"{where}: layer {ly.name!r} has non-finite weights after folding")
    in_chw = (ins[0], 1, 1) if len(ins) == 1 else (ins[2], ins[0], ins[1])
    return ExecModel(layers=lw.layers, input_chw=in_chw, source=where, metadata=dict(graph.metadata))


def load_onnx_exec(path: str | os.PathLike, input_shape: Sequence[int] | None = None) -> ExecModel:
    """Import an ONNX model (:func:`pyquant.importers.onnx_graph.import_onnx`) and lower it."""
    from pyquant.importers.onnx_graph import import_onnx

    return graph_to_exec(import_onnx(path, input_shape))


def load_npz(path: str | os.PathLike) -> ExecModel:
    """Import an MLP from npz: ``<name>.weight`` [out, in] (+ ``<name>.bias``) in file order."""
    p = Path(path)
    try:
        z = np.load(str(p), allow_pickle=False)
        keys = list(z.keys())
        arrays = {k: z[k] for k in keys}
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{p}: not a readable npz ({type(e).__name__})") from None
    names = [k[:-len(".weight")] for k in keys if k.endswith(".weight")]
    if not names:
        names = [k for k in keys if not k.endswith(".bias")]
    layers = []
    for nm in names:
        wk = f"{nm}.weight" if f"{nm}.weight" in arrays else nm
        w = _f64(arrays[wk], f"{p}: {wk}")
        if w.ndim != 2:
            raise InputError(f"{p}: {wk} has shape {w.shape}; the npz form executes dense layers only")
        b = arrays.get(f"{nm}.bias")
        b = np.zeros(w.shape[0]) if b is None else _f64(b, f"{p}: {nm}.bias").reshape(-1)
        if b.size != w.shape[0]:
            raise InputError(f"{p}: {nm}.bias has {b.size} entries, weight has {w.shape[0]} rows")
        if layers and layers[-1].rows != w.shape[1]:
            raise InputError(f"{p}: {wk} takes {w.shape[1]} inputs but the previous layer gives {layers[-1].rows}")
        layers.append(FloatLayer(name=wk, tensor=wk, op="Gemm", kind="dense", w=w, b=b,
                                 shape=tuple(w.shape), relu=True))
    if not layers:
        raise InputError(f"{p}: no weights found")
    layers[-1].relu = False
    return ExecModel(layers=layers, input_chw=(layers[0].cols, 1, 1), source=str(p))


def load_executable(path: str | os.PathLike, input_shape: Sequence[int] | None = None) -> ExecModel:
    """Load ``.onnx`` or ``.npz`` as an executable model (see module doc); ``input_shape`` pins
    dynamic ONNX input dimensions (full shape, batch entry ignored)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    suf = p.suffix.lower()
    if suf == ".onnx":
        return load_onnx_exec(p, input_shape)
    if suf == ".npz":
        return load_npz(p)
    raise InputError(f"{p}: unsupported model type {suf or '(none)'} (expected .onnx or .npz)")


def data_file(model: ExecModel, key: str) -> Path | None:
    """The data file named by the model's ``pyquant.data.<key>`` metadata (relative to the model)."""
    v = model.metadata.get(f"pyquant.data.{key}")
    if not v or not model.source:
        return None
    f = Path(model.source).parent / v
    return f if f.exists() else None


def weight_items(model: ExecModel) -> list[tuple]:
    """``(name, tensor, op, kind, w[M,K], shape)`` items for :func:`pyquant.analysis.analyze_weights`."""
    return [(ly.name, ly.tensor, ly.op, ly.kind, ly.w, ly.shape) for ly in model.layers]


def macs_per_sample(model: ExecModel) -> list[int]:
    """Multiply-accumulates of each layer for one input sample."""
    out = []
    for ly in model.layers:
        n = 1 if ly.kind == "dense" else ly.geom["out_h"] * ly.geom["out_w"]
        out.append(n * ly.rows * ly.cols)
    return out


__all__ = ["FloatLayer", "ExecModel", "graph_to_exec", "load_onnx_exec", "load_npz", "load_executable", "data_file",
           "weight_items", "macs_per_sample"]
