"""TFLite importer: a ``.tflite`` flatbuffer -> :class:`pyquant.graph.Graph` (float semantics).

Owns three steps:

1. Reading and validating the flatbuffer (:func:`read_tflite`): file identifier ``TFL3``, every vector
   and buffer inside the file, tensor/buffer indices in range, buffer sizes that match the tensor
   shapes. Anything wrong is ONE-line :class:`InputError` naming the file, never a traceback.
2. Dequantizing constants: int8/uint8/int16/int32 weights and biases become float64 with their
   per-tensor or per-channel scales and zero points; NaN/Inf constants are rejected.
3. Translating operators with :data:`HANDLERS` (one function per operator family). QUANTIZE and
   DEQUANTIZE are identities in float (tensor aliases); fused activations NONE/RELU/RELU6 become the
   ``act`` attribute, the others a separate op. Operators that only compute a RESHAPE's shape operand
   (SHAPE, STRIDED_SLICE, PACK, ...) are dead once RESHAPE takes its static output shape, and are dropped.

The TFLite layout is NHWC, which is the graph's internal layout, so no weight or tensor is permuted
except the depthwise filter ``[1, KH, KW, C*mult]`` -> OHWI ``[C*mult, KH, KW, 1]``.
:func:`import_tflite_info` also returns :class:`TfliteInfo` (input/output quantization of int8
models and the TFLite tensor index behind every graph tensor).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pyquant.errors import InputError
from pyquant.graph import Graph, Op, Tensor
from pyquant.importers import graph_passes

_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16,
           9: np.int8, 10: np.float64, 12: np.uint64, 15: np.uint32, 16: np.uint16}
_DTYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
                7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
                13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16"}
_ACTS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit"}
_QTYPES = ("int8", "uint8", "int16", "int32")


# ---------------------------------------------------------------------------------------- reading
@dataclass
class TflTensor:
    """One TFLite tensor: raw constant ``data`` (None for activations) and quantization."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    qdim: int = 0


@dataclass
class TflOp:
    """One TFLite operator; ``name`` is its first output tensor's name (TFLite ops have no name)."""

    index: int
    type: str
    name: str
    inputs: list[int]
    outputs: list[int]
    options: object | None = None


@dataclass
class TflModel:
    path: str
    tensors: list[TflTensor]
    ops: list[TflOp]
    inputs: list[int]
    outputs: list[int]
    description: str = ""


def _op_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _options(op, code: str):
    """The operator's builtin options object (typed), or None."""
    import tflite

    t = op.BuiltinOptions()
    if t is None:
        return None
    names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if isinstance(v, int)}
    cls = getattr(tflite, names.get(op.BuiltinOptionsType(), ""), None)
    if cls is None:
        return None
    o = cls()
    o.Init(t.Bytes, t.Pos)
    return _Opts(o)


class _Opts:
    """Builtin options read eagerly (inside the validated reading step); ``o.Padding()`` as in tflite."""

    def __init__(self, o):
        for k in dir(type(o)):
            f = getattr(type(o), k)
            if k[:1].isupper() and callable(f) and not k.startswith(("GetRootAs", "Init")) \
                    and f.__code__.co_argcount == 1:
                v = getattr(o, k)()
                setattr(self, k, lambda v=v: v)


def _text(raw: bytes | None, default: str) -> str:
    """A name from the file, printable and bounded (it ends up in one-line error messages)."""
    s = (raw or b"").decode("utf-8", "replace")
    s = "".join(c if c.isprintable() else "?" for c in s)[:200]
    return s or default


def _vector_end(tab, field_off: int, elem: int) -> int:
    o = tab.Offset(field_off)
    if not o:
        return 0
    return tab.Vector(o) + tab.VectorLen(o) * elem


def _buffer_bytes(model, buf: bytes, idx: int, where: str) -> bytes | None:
    b = model.Buffers(idx)
    if b is None:
        return None
    if b.Offset() > 1:                                     # large-model layout: data outside the flatbuffer
        off, size = int(b.Offset()), int(b.Size())
        if off + size > len(buf):
            raise InputError(f"{where}: buffer {idx} ends at byte {off + size}, past the end of the "
                             f"{len(buf)}-byte file (truncated?)")
        return bytes(buf[off:off + size])
    end = _vector_end(b._tab, 4, 1)
    if end > len(buf):
        raise InputError(f"{where}: buffer {idx} ends at byte {end}, past the end of the {len(buf)}-byte "
                         f"file (truncated?)")
    if b.DataLength() == 0:
        return None
    o = b._tab.Offset(4)
    start = b._tab.Vector(o)
    return bytes(buf[start:start + b.DataLength()])


def _read_tensor(model, sg, buf: bytes, i: int, where: str) -> TflTensor:
    t = sg.Tensors(i)
    if _vector_end(t._tab, 4, 4) > len(buf):
        raise InputError(f"{where}: tensor {i} shape lies past the end of the file (truncated?)")
    name = _text(t.Name(), f"tensor{i}")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    dtype = _DTYPE_NAMES.get(t.Type(), f"type{t.Type()}")
    tt = TflTensor(i, name, shape, dtype)
    if not 0 <= t.Buffer() < max(model.BuffersLength(), 1):
        raise InputError(f"{where}: tensor {name!r} refers to buffer {t.Buffer()}, the model has "
                         f"{model.BuffersLength()}")
    raw = _buffer_bytes(model, buf, t.Buffer(), where) if model.BuffersLength() else None
    if raw is not None:
        np_t = _DTYPES.get(t.Type())
        if np_t is None:
            raise InputError(f"{where}: constant tensor {name!r} has unsupported type {dtype}")
        need = int(np.prod(shape, dtype=np.int64)) * np.dtype(np_t).itemsize
        if len(raw) != need:
            raise InputError(f"{where}: constant tensor {name!r} of shape {list(shape)} {dtype} needs {need} "
                             f"bytes, its buffer holds {len(raw)}")
        tt.data = np.frombuffer(raw, dtype=np.dtype(np_t).newbyteorder("<")).reshape(shape)
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        with np.errstate(invalid="ignore"):
            tt.scale = q.ScaleAsNumpy().astype(np.float64)
        if not np.all(np.isfinite(tt.scale) & (tt.scale >= 0)):
            raise InputError(f"{where}: tensor {name!r} has a quantization scale that is negative, NaN or "
                             f"infinite")
        zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(1, np.int64)
        tt.zero_point = np.asarray(zp, np.int64)
        tt.qdim = int(q.QuantizedDimension())
        n = len(tt.scale)
        if len(tt.zero_point) not in (1, n) or (n > 1 and not (0 <= tt.qdim < len(shape)
                                                                and shape[tt.qdim] == n)):
            raise InputError(f"{where}: tensor {name!r} of shape {list(shape)} has {n} scales and "
                             f"{len(tt.zero_point)} zero points on axis {tt.qdim}")
    return tt


def _read_op(model, sg, names: dict[int, str], tensors: list[TflTensor], j: int, where: str) -> TflOp:
    op = sg.Operators(j)
    for fo in (6, 8):                                     # inputs, outputs vectors
        if _vector_end(op._tab, fo, 4) > len(model._tab.Bytes):
            raise InputError(f"{where}: operator {j} lies past the end of the file (truncated?)")
    if not 0 <= op.OpcodeIndex() < model.OperatorCodesLength():
        raise InputError(f"{where}: operator {j} uses opcode {op.OpcodeIndex()}, the model has "
                         f"{model.OperatorCodesLength()}")
    oc = model.OperatorCodes(op.OpcodeIndex())
    code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
    kind = names.get(code, f"BUILTIN_{code}")
    if kind == "CUSTOM":
        kind = "CUSTOM:" + _text(oc.CustomCode(), "?")
    ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
    outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
    for v in ins + outs:
        if v >= len(tensors) or v < -1:
            raise InputError(f"{where}: operator {j} ({kind}) refers to tensor {v}, the model has "
                             f"{len(tensors)}")
    if not outs or outs[0] < 0:
        raise InputError(f"{where}: operator {j} ({kind}) has no output")
    return TflOp(j, kind, tensors[outs[0]].name, ins, outs, _options(op, kind))


def read_tflite(path: str | Path) -> TflModel:
    """Parse and validate a ``.tflite`` file (subgraph 0); :class:`InputError` on any defect."""
    import tflite

    where = str(path)
    try:
        buf = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{where}: cannot read the TFLite file ({e.strerror or e})") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise InputError(f"{where}: not a TFLite flatbuffer (file identifier {bytes(buf[4:8])!r}, "
                         f"expected b'TFL3')")
    try:
        model = tflite.Model.GetRootAs(buf, 0)
        if model.SubgraphsLength() < 1:
            raise InputError(f"{where}: the model has no subgraph")
        sg = model.Subgraphs(0)
        tensors = [_read_tensor(model, sg, buf, i, where) for i in range(sg.TensorsLength())]
        names = _op_names()
        ops = [_read_op(model, sg, names, tensors, j, where) for j in range(sg.OperatorsLength())]
        ins = [int(v) for v in sg.InputsAsNumpy()] if sg.InputsLength() else []
        outs = [int(v) for v in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
        desc = model.Description()
    except InputError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, OverflowError, AttributeError) as e:
        raise InputError(f"{where}: truncated or corrupt TFLite flatbuffer "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'out of bounds'})") from None
    for v in ins + outs:
        if not 0 <= v < len(tensors):
            raise InputError(f"{where}: graph input/output refers to tensor {v}, the model has {len(tensors)}")
    return TflModel(where, tensors, ops, ins, outs, _text(desc, ""))


# ------------------------------------------------------------------------------------ translation
class Unsupported(Exception):
    """Raised by a handler for an operator (or attribute combination) the importer cannot express."""


@dataclass
class TfliteInfo:
    """Import facts that the Graph IR has no field for.

    ``input_quant`` / ``output_quant``: ``{"scale", "zero_point", "dtype"}`` of the model's int8/uint8
    input and outputs (None for float edges); the tensor *behind* a QUANTIZE/DEQUANTIZE edge op counts.
    ``tensor_index``: graph tensor name -> TFLite tensor index; ``quant``: graph tensor name ->
    ``(scale, zero_point, dtype)`` of every quantized TFLite activation tensor. A float tensor that a
    QUANTIZE turns into int8 maps to that int8 twin in both (what an int8 runtime actually holds).
    """

    input_quant: dict | None = None
    output_quant: list = field(default_factory=list)
    tensor_index: dict = field(default_factory=dict)
    quant: dict = field(default_factory=dict)


def dequantize(t: TflTensor) -> np.ndarray:
    """Float64 value of a constant (per-tensor or per-channel along ``qdim``)."""
    v = np.asarray(t.data)
    if t.dtype in ("float32", "float16", "float64"):
        return v.astype(np.float64)
    if t.scale is None or not len(t.scale):
        return v.astype(np.float64)
    s, z = t.scale, t.zero_point
    if len(s) > 1:
        shp = [1] * v.ndim
        shp[t.qdim] = len(s)
        s = s.reshape(shp)
        z = (z if len(z) == len(t.scale) else np.broadcast_to(z[:1], t.scale.shape)).reshape(shp)
    else:
        z = z[:1]
    return (v.astype(np.float64) - z) * s


def same_pads(size: int, k: int, stride: int, dil: int = 1) -> tuple[int, int]:
    """TFLite SAME padding (ComputePaddingHeightWidth): extra padding goes after."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (k - 1) * dil + 1 - size, 0)
    return total // 2, total - total // 2


class _Ctx:
    """Translation state: tensor name mapping, aliases, emitted tensors and ops."""

    def __init__(self, m: TflModel):
        self.m = m
        self.path = m.path
        self.alias: dict[int, int] = {}
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.info = TfliteInfo()
        seen: dict[str, int] = {}
        for t in m.tensors:
            seen[t.name] = seen.get(t.name, 0) + 1
        self.gname = {t.index: (t.name if seen[t.name] == 1 else f"{t.name}#{t.index}") for t in m.tensors}
        self.cur: TflOp | None = None

    # ---- tensors
    def resolve(self, i: int) -> int:
        while i in self.alias:
            i = self.alias[i]
        return i

    def t(self, i: int) -> TflTensor:
        return self.m.tensors[self.resolve(i)]

    def is_const(self, i: int) -> bool:
        return self.t(i).data is not None

    def act(self, i: int) -> str:
        """Graph name of activation tensor ``i`` (declared on first use)."""
        t = self.t(i)
        name = self.gname[t.index]
        if name not in self.tensors:
            if t.shape and t.shape[0] not in (1, -1):
                raise Unsupported(f"tensor {t.name!r} has batch dimension {t.shape[0]}")
            self.tensors[name] = Tensor(name, tuple(int(d) for d in t.shape[1:]))
            self.info.tensor_index.setdefault(name, t.index)
            self.note_quant(name, t)
        return name

    def note_quant(self, name: str, t: TflTensor) -> None:
        if name not in self.info.quant and t.scale is not None and t.dtype in _QTYPES and len(t.scale) == 1:
            self.info.quant[name] = (float(t.scale[0]), int(t.zero_point[0]), t.dtype)
            self.info.tensor_index[name] = t.index

    def value(self, i: int, what: str) -> np.ndarray:
        """Dequantized float64 value of constant operand ``i`` (Unsupported when it is computed)."""
        if not self.is_const(i):
            raise Unsupported(f"non-constant {what}")
        return dequantize(self.t(i))

    def raw(self, i: int) -> np.ndarray:
        t = self.t(i)
        if t.data is None:
            raise Unsupported(f"operand {t.name!r} must be a constant")
        return np.asarray(t.data)

    def const(self, i: int, value: np.ndarray | None = None, suffix: str = "") -> str:
        """Declare constant ``i`` (dequantized, or ``value`` if given) and return its graph name."""
        t = self.t(i)
        v = dequantize(t) if value is None else np.asarray(value, np.float64)
        if not np.all(np.isfinite(v)):
            raise InputError(f"{self.path}: {self.cur.type} (node {self.cur.name}): constant tensor "
                             f"{t.name!r} contains NaN or Inf")
        name = self.gname[t.index] + suffix
        if name not in self.tensors:
            self.tensors[name] = Tensor(name, tuple(v.shape), v)
        return name

    def new_const(self, base: str, value) -> str:
        v = np.asarray(value, np.float64)
        name = self.fresh(base)
        self.tensors[name] = Tensor(name, tuple(v.shape), v)
        return name

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.tensors:
            k += 1
            name = f"{base}:{k}"
        return name

    def tmp(self, base: str, shape) -> str:
        name = self.fresh(base)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape))
        return name

    # ---- ops
    def emit(self, kind: str, inputs: list[str], output: str, **attrs) -> str:
        op = self.cur
        self.ops.append(Op(kind, op.name, list(inputs), [output], dict(attrs), op.type))
        return output

    def emit_act(self, kind: str, inputs: list[str], out_i: int, fused: int, **attrs) -> None:
        """Emit ``kind`` with fused activation ``fused``: as ``act`` when ``kind`` has one and it is
        none/relu/relu6, otherwise as a separate elementwise op after it."""
        act = _ACTS.get(int(fused))
        if act is None or act in ("tanh", "sign_bit"):     # the TFLite kernels silently skip these two
            raise Unsupported(f"fused activation {(act or str(fused)).upper()}")
        out = self.act(out_i)
        if kind in ("conv2d", "dense", "add", "sub", "mul") and act in ("none", "relu", "relu6"):
            self.emit(kind, inputs, out, act=act, **attrs)
            return
        if act == "none":
            self.emit(kind, inputs, out, **attrs)
            return
        mid = self.emit(kind, inputs, self.tmp(out + ":pre_act", self.tensors[out].shape), **attrs)
        if act == "relu":
            self.emit("relu", [mid], out)
        else:
            lo, hi = {"relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}[act]
            self.emit("clip", [mid], out, lo=lo, hi=hi)


_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "ADD": 2, "SUB": 2, "MUL": 2,
               "MEAN": 2, "PAD": 2, "PADV2": 2, "CONCATENATION": 1}


class Malformed(Exception):
    """An operator whose fields contradict the schema (corrupt file); reported as an InputError."""


def _opt(op: TflOp, what: str, *fields: str):
    """The op's options, checked to carry ``fields`` (a corrupt options type lacks them)."""
    if op.options is None:
        raise Unsupported(f"missing {what} options")
    if any(not hasattr(op.options, f) for f in fields):
        raise Malformed(f"its options are not {what} options")
    return op.options


def _positive(**vals) -> None:
    for k, v in vals.items():
        if int(v) < 1:
            raise Malformed(f"{k} is {v}")


def _in(op: TflOp, k: int) -> int:
    return op.inputs[k] if len(op.inputs) > k else -1


def _conv(ctx: _Ctx, op: TflOp) -> None:
    """CONV_2D, DEPTHWISE_CONV_2D: SAME/VALID pads as TFLite computes them, dilation, depth multiplier."""
    dw_fields = ("DepthMultiplier",) if op.type == "DEPTHWISE_CONV_2D" else ()
    o = _opt(op, "convolution", "Padding", "StrideH", "StrideW", "DilationHFactor", "FusedActivationFunction",
             *dw_fields)
    x = ctx.act(op.inputs[0])
    xs = ctx.tensors[x].shape
    if len(xs) != 3:
        raise Unsupported(f"input of rank {len(xs) + 1}")
    w = ctx.value(op.inputs[1], "filter")
    if w.ndim != 4:
        raise Unsupported(f"filter of shape {list(w.shape)}")
    cin = xs[2]
    if op.type == "DEPTHWISE_CONV_2D":
        _positive(channels=cin)
        mult = int(o.DepthMultiplier()) or w.shape[3] // cin
        if w.shape[0] != 1 or w.shape[3] != cin * mult:
            raise Unsupported(f"depthwise filter {list(w.shape)} for {cin} channels x {mult}")
        w, groups = w.transpose(3, 1, 2, 0), cin
    else:
        if not w.shape[3] or cin % w.shape[3]:
            raise Unsupported(f"filter {list(w.shape)} for {cin} input channels")
        groups = cin // w.shape[3]
    m, kh, kw = w.shape[:3]
    sh, sw = int(o.StrideH()), int(o.StrideW())
    dh, dw = int(o.DilationHFactor()) or 1, int(o.DilationWFactor()) or 1
    _positive(stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw)
    if o.Padding() == 0:
        (t, b), (l_, r) = same_pads(xs[0], kh, sh, dh), same_pads(xs[1], kw, sw, dw)
    else:
        t = l_ = b = r = 0
    bi = _in(op, 2)
    bias = ctx.value(bi, "bias") if bi >= 0 else np.zeros(m)
    if bias.shape != (m,):
        raise Unsupported(f"bias of shape {list(bias.shape)} for {m} output channels")
    wn = ctx.const(op.inputs[1], w, suffix=":ohwi" if op.type == "DEPTHWISE_CONV_2D" else "")
    bn = ctx.const(bi, bias) if bi >= 0 else ctx.new_const(op.name + ":bias", bias)
    ctx.emit_act("conv2d", [x, wn, bn], op.outputs[0], o.FusedActivationFunction(), stride=(sh, sw),
                 pads=(t, l_, b, r), dilation=(dh, dw), groups=groups)


def _dense(ctx: _Ctx, op: TflOp) -> None:
    """FULLY_CONNECTED: weights [M, K]; the input is flattened (row-major NHWC) to K when needed."""
    o = _opt(op, "fully-connected", "WeightsFormat", "FusedActivationFunction")
    if int(o.WeightsFormat()) != 0:
        raise Unsupported("shuffled weights format")
    w = ctx.value(op.inputs[1], "weights")
    if w.ndim != 2:
        raise Unsupported(f"weights of shape {list(w.shape)}")
    m, k = w.shape
    x = ctx.act(op.inputs[0])
    xs = ctx.tensors[x].shape
    if int(np.prod(xs)) != k:
        raise Unsupported(f"input {list(xs)} is not one row of {k} features")
    if xs != (k,):
        x = ctx.emit("reshape", [x], ctx.tmp(x + ":flat", (k,)), shape=(k,))
    bi = _in(op, 2)
    bias = ctx.value(bi, "bias") if bi >= 0 else np.zeros(m)
    wn = ctx.const(op.inputs[1], w)
    bn = ctx.const(bi, bias) if bi >= 0 else ctx.new_const(op.name + ":bias", bias)
    out_shape = ctx.m.tensors[op.outputs[0]].shape[1:]
    if tuple(out_shape) == (m,):
        ctx.emit_act("dense", [x, wn, bn], op.outputs[0], o.FusedActivationFunction())
        return
    if int(np.prod(out_shape)) != m:
        raise Unsupported(f"output shape {list(out_shape)}")
    out = ctx.act(op.outputs[0])
    act = _ACTS.get(int(o.FusedActivationFunction()), "?")
    if act not in ("none", "relu", "relu6"):
        raise Unsupported(f"fused activation {act} with keep_num_dims")
    mid = ctx.emit("dense", [x, wn, bn], ctx.tmp(out + ":rows", (m,)), act=act)
    ctx.emit("reshape", [mid], out, shape=tuple(out_shape))


def _binary(ctx: _Ctx, op: TflOp) -> None:
    """ADD, SUB, MUL with a constant or activation second operand (numpy broadcasting, NHWC)."""
    kind = op.type.lower()
    rank = len(ctx.m.tensors[op.outputs[0]].shape)
    names = []
    for i in op.inputs[:2]:
        if ctx.is_const(i):
            v = dequantize(ctx.t(i))
            if v.ndim == rank and v.ndim and v.shape[0] == 1:
                v = v.reshape(v.shape[1:])
            names.append(ctx.const(i, v))
        else:
            names.append(ctx.act(i))
    if all(ctx.tensors[n].is_const for n in names):
        raise Unsupported("two constant operands")
    fused = _opt(op, "arithmetic", "FusedActivationFunction").FusedActivationFunction() \
        if op.options is not None else 0
    ctx.emit_act(kind, names, op.outputs[0], fused)


def _concat(ctx: _Ctx, op: TflOp) -> None:
    """CONCATENATION along a non-batch axis (no fused activation: litert ignores it, so it is refused)."""
    o = _opt(op, "concatenation", "Axis", "FusedActivationFunction")
    rank = len(ctx.m.tensors[op.outputs[0]].shape)
    ax = int(o.Axis()) % rank
    if ax == 0:
        raise Unsupported("concatenation along the batch axis")
    if o.FusedActivationFunction():                   # the TFLite kernel ignores it: ambiguous model
        raise Unsupported(f"fused activation {_ACTS.get(o.FusedActivationFunction(), '?').upper()} "
                          f"(the TFLite kernel does not apply it)")
    if any(ctx.is_const(i) for i in op.inputs):
        raise Unsupported("constant input")
    ins = [ctx.act(i) for i in op.inputs]
    ctx.emit("concat", ins, ctx.act(op.outputs[0]), axis=ax - 1)


def _pool(ctx: _Ctx, op: TflOp) -> None:
    """AVERAGE_POOL_2D (padding never counted, as TFLite) and MAX_POOL_2D."""
    o = _opt(op, "pooling", "Padding", "FilterHeight", "FilterWidth", "StrideH", "StrideW",
             "FusedActivationFunction")
    x = ctx.act(op.inputs[0])
    xs = ctx.tensors[x].shape
    if len(xs) != 3:
        raise Unsupported(f"input of rank {len(xs) + 1}")
    kh, kw, sh, sw = int(o.FilterHeight()), int(o.FilterWidth()), int(o.StrideH()), int(o.StrideW())
    _positive(filter_h=kh, filter_w=kw, stride_h=sh, stride_w=sw)
    if o.Padding() == 0:
        (t, b), (l_, r) = same_pads(xs[0], kh, sh), same_pads(xs[1], kw, sw)
    else:
        t = l_ = b = r = 0
    kind = "avgpool" if op.type == "AVERAGE_POOL_2D" else "maxpool"
    extra = {"count_include_pad": False} if kind == "avgpool" else {}
    ctx.emit_act(kind, [x], op.outputs[0], o.FusedActivationFunction(), kernel=(kh, kw), stride=(sh, sw),
                 pads=(t, l_, b, r), **extra)


def _mean(ctx: _Ctx, op: TflOp) -> None:
    """MEAN over H and W of an NHWC tensor (global average pooling)."""
    x = ctx.act(op.inputs[0])
    axes = sorted({int(a) % 4 for a in np.atleast_1d(ctx.raw(op.inputs[1]))})
    if len(ctx.tensors[x].shape) != 3 or axes != [1, 2]:
        raise Unsupported(f"mean over axes {axes} (only H,W of NHWC)")
    keep = bool(_opt(op, "reducer", "KeepDims").KeepDims()) if op.options is not None else False
    ctx.emit("global_avgpool", [x], ctx.act(op.outputs[0]), keepdims=keep)


def _reshape(ctx: _Ctx, op: TflOp) -> None:
    """RESHAPE, SQUEEZE, EXPAND_DIMS: the static output shape (the shape operand is ignored)."""
    x = ctx.act(op.inputs[0])
    shape = ctx.m.tensors[op.outputs[0]].shape
    if not shape or shape[0] != 1 or ctx.m.tensors[ctx.resolve(op.inputs[0])].shape[:1] not in ((1,), (-1,)):
        raise Unsupported(f"reshape that moves the batch dimension (to {list(shape)})")
    ctx.emit("reshape", [x], ctx.act(op.outputs[0]), shape=tuple(int(d) for d in shape[1:]))


def _pad(ctx: _Ctx, op: TflOp) -> None:
    """PAD / PADV2 of H and W (constant value; a quantized zero point pads 0.0)."""
    x = ctx.act(op.inputs[0])
    p = ctx.raw(op.inputs[1]).astype(np.int64)
    if len(ctx.tensors[x].shape) != 3 or p.shape != (4, 2) or p[0].any() or p[3].any() or (p < 0).any():
        raise Unsupported(f"paddings {p.tolist()} (only H,W of NHWC)")
    value = 0.0
    if op.type == "PADV2" and _in(op, 2) >= 0:
        value = float(ctx.value(op.inputs[2], "pad value").reshape(-1)[0])
    ctx.emit("pad", [x], ctx.act(op.outputs[0]), pads=(int(p[1, 0]), int(p[2, 0]), int(p[1, 1]), int(p[2, 1])),
             value=value)


def _softmax(ctx: _Ctx, op: TflOp) -> None:
    """SOFTMAX over the last axis; beta != 1 becomes a MUL by beta before it."""
    x = ctx.act(op.inputs[0])
    beta = float(_opt(op, "softmax", "Beta").Beta()) if op.options is not None else 1.0
    if beta != 1.0:
        x = ctx.emit("mul", [x, ctx.new_const(op.name + ":beta", beta)],
                     ctx.tmp(x + ":beta", ctx.tensors[x].shape), act="none")
    ctx.emit("softmax", [x], ctx.act(op.outputs[0]), axis=len(ctx.tensors[x].shape) - 1)


def _activation(ctx: _Ctx, op: TflOp) -> None:
    """RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LOGISTIC, HARD_SWISH, TANH, LEAKY_RELU."""
    x, out = ctx.act(op.inputs[0]), ctx.act(op.outputs[0])
    t = op.type
    if t == "RELU":
        ctx.emit("relu", [x], out)
    elif t in ("RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"):
        lo, hi = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0), "RELU_0_TO_1": (0.0, 1.0)}[t]
        ctx.emit("clip", [x], out, lo=lo, hi=hi)
    elif t == "LEAKY_RELU":
        ctx.emit("leaky_relu", [x], out, alpha=float(_opt(op, "leaky relu", "Alpha").Alpha()))
    else:
        ctx.emit({"LOGISTIC": "sigmoid", "HARD_SWISH": "hardswish", "TANH": "tanh"}[t], [x], out)


def _quant(ctx: _Ctx, op: TflOp) -> None:
    """QUANTIZE, DEQUANTIZE: identity in float (the output tensor becomes an alias of the input)."""
    src = ctx.resolve(op.inputs[0])
    if src == op.outputs[0]:
        raise Malformed("its output is its own input")
    ctx.alias[op.outputs[0]] = src
    if ctx.m.tensors[src].data is None:                 # the float tensor's quantized twin, for TfliteInfo
        ctx.note_quant(ctx.gname[src], ctx.m.tensors[op.outputs[0]])


HANDLERS: dict[str, Callable[[_Ctx, TflOp], None]] = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "FULLY_CONNECTED": _dense,
    "ADD": _binary, "SUB": _binary, "MUL": _binary, "CONCATENATION": _concat,
    "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool, "MEAN": _mean,
    "RESHAPE": _reshape, "SQUEEZE": _reshape, "EXPAND_DIMS": _reshape, "PAD": _pad, "PADV2": _pad,
    "SOFTMAX": _softmax, "RELU": _activation, "RELU6": _activation, "RELU_N1_TO_1": _activation,
    "RELU_0_TO_1": _activation, "LOGISTIC": _activation, "HARD_SWISH": _activation, "TANH": _activation,
    "LEAKY_RELU": _activation, "QUANTIZE": _quant, "DEQUANTIZE": _quant,
}
_SHAPE_ONLY = {"RESHAPE": 1, "SQUEEZE": 1, "EXPAND_DIMS": 1}   # data inputs; the rest only give a shape


def _live_ops(m: TflModel) -> list[TflOp]:
    """Ops that contribute data to a graph output (a RESHAPE's shape operand does not)."""
    need = set(m.outputs)
    live = []
    for op in reversed(m.ops):
        if any(o in need for o in op.outputs):
            live.append(op)
            ins = op.inputs[:_SHAPE_ONLY[op.type]] if op.type in _SHAPE_ONLY else op.inputs
            need.update(i for i in ins if i >= 0)
    return live[::-1]


def _unsupported_error(path: str, bad: dict[str, list[str]]) -> InputError:
    parts = [f"{k} ({', '.join(v)})" for k, v in bad.items()]
    return InputError(f"{path}: unsupported operators: {', '.join(parts)}")


def _edge_quant(t: TflTensor) -> dict | None:
    if t.scale is None or t.dtype not in _QTYPES or len(t.scale) != 1:
        return None
    return {"scale": float(t.scale[0]), "zero_point": int(t.zero_point[0]), "dtype": t.dtype}


def _edge_tensor(m: TflModel, idx: int, kind: str, output: bool) -> TflTensor:
    """The quantized tensor next to a float graph edge (behind a QUANTIZE / before a DEQUANTIZE)."""
    for op in m.ops:
        if output and op.type == kind and idx in op.outputs:
            return m.tensors[op.inputs[0]]
        if not output and op.type == kind and idx in op.inputs:
            return m.tensors[op.outputs[0]]
    return m.tensors[idx]


def _layout(shape: tuple) -> str:
    return "NHWC" if len(shape) == 3 else "NC" if len(shape) == 1 else f"N+{len(shape)}D"


def _metadata(m: TflModel, info: TfliteInfo) -> dict[str, str]:
    """``Graph.metadata`` strings: the int8 edge quantization of the model (when quantized)."""
    md = {"source_format": "tflite"}
    if m.description:
        md["description"] = m.description
    for key, q in [("input_quant", info.input_quant)] + [(f"output_quant.{k}", q)
                                                         for k, q in enumerate(info.output_quant)]:
        if q is not None:
            md[key] = f"{q['dtype']} scale={q['scale']!r} zero_point={q['zero_point']}"
    return md


def import_tflite_info(path: str | Path, optimize: bool = True) -> tuple[Graph, TfliteInfo]:
    """Import ``path``; return the graph and the :class:`TfliteInfo` facts. ``optimize`` runs the
    shared exact clean-up passes (:func:`pyquant.importers.graph_passes.optimize`); without it the
    graph has one op group per TFLite operator (what the op-by-op tests compare)."""
    m = read_tflite(path)
    where = m.path
    if len(m.inputs) != 1:
        names = ", ".join(m.tensors[i].name for i in m.inputs) or "none"
        raise InputError(f"{where}: the model has {len(m.inputs)} graph inputs ({names}); exactly one is "
                         f"supported")
    live = _live_ops(m)
    bad: dict[str, list[str]] = {}
    for op in live:
        if op.type not in HANDLERS:
            bad.setdefault(op.type, []).append(f"node {op.name}")
    if bad:
        raise _unsupported_error(where, bad)
    ctx = _Ctx(m)
    for op in live:
        ctx.cur = op
        try:
            if len(op.inputs) < _MIN_INPUTS.get(op.type, 1) or min(op.inputs[:1] or [-1]) < 0:
                raise Malformed(f"{len(op.inputs)} inputs")
            HANDLERS[op.type](ctx, op)
        except Malformed as e:
            raise InputError(f"{where}: {op.type} (node {op.name}): malformed operator: {e}") from None
        except Unsupported as e:
            bad.setdefault(op.type, []).append(f"node {op.name}: {e}")
        except KeyError as e:               # an input produced by an op that already failed
            if not bad:
                raise InputError(f"{where}: {op.type} (node {op.name}): malformed operator: "
                                 f"tensor {e} is never produced") from None
    if bad:
        raise _unsupported_error(where, bad)
    inp = ctx.gname[m.inputs[0]]
    ctx.cur = TflOp(-1, "INPUT", m.tensors[m.inputs[0]].name, [], [m.inputs[0]])
    try:
        inp = ctx.act(m.inputs[0])
        outs = [ctx.act(i) for i in m.outputs]
    except Unsupported as e:
        raise InputError(f"{where}: graph input/output: {e}") from None
    if m.tensors[m.inputs[0]].data is not None:
        raise InputError(f"{where}: the graph input {inp!r} is a constant")
    if len(set(outs)) != len(outs) or inp in outs:
        raise InputError(f"{where}: graph outputs alias each other or the input")
    ctx.info.input_quant = _edge_quant(_edge_tensor(m, m.inputs[0], "QUANTIZE", False))
    ctx.info.output_quant = [_edge_quant(_edge_tensor(m, i, "DEQUANTIZE", True)) for i in m.outputs]
    g = Graph(Path(where).stem, ctx.tensors, ctx.ops, [inp], outs, _layout(ctx.tensors[inp].shape),
              [_layout(ctx.tensors[o].shape) for o in outs], where, _metadata(m, ctx.info))
    if optimize:
        g = graph_passes.optimize(g)
    g.validate()
    return g, ctx.info


def import_tflite(path: str | Path, optimize: bool = True) -> Graph:
    """``.tflite`` -> :class:`Graph` (float semantics, NHWC kept; int8 constants dequantized)."""
    return import_tflite_info(path, optimize)[0]


__all__ = ["import_tflite", "import_tflite_info", "read_tflite", "TfliteInfo", "HANDLERS", "dequantize",
           "same_pads", "Unsupported"]
