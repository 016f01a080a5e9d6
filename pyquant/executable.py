"""Executable (sequential) float models imported from ONNX or npz.

An :class:`ExecModel` is a chain of matrix-product layers (dense or conv), each with an
optional fused ReLU and an optional pooling, in execution order. It is what the integer
pipeline quantizes (:mod:`pyquant.calibrate`) and what :func:`pyquant.infer.infer_float` runs.

Supported ONNX operators (a single chain from the graph input to the graph output):

- ``Gemm`` (``transA = 0``; ``alpha``/``beta``/``transB`` honoured), ``MatMul`` with a constant
  ``[K, N]`` operand; a following ``Add`` of a constant per-channel bias (``[M]``/``[1, M]``, or
  ``[1, C, 1, 1]`` after a Conv) or scalar is folded into the layer's bias;
- ``Conv`` (2-D, ``group = 1``, ``dilations = 1``, any stride and explicit padding,
  ``auto_pad`` NOTSET/VALID/SAME_UPPER/SAME_LOWER);
- ``BatchNormalization`` directly after a Conv/Gemm/MatMul: folded into it
  (``a = gamma / sqrt(var + eps)``; ``W' = a·W`` per output row, ``b' = a·(b − mean) + beta``);
- ``Relu`` (fused into the preceding layer; also allowed after a MaxPool, which commutes with it);
- ``MaxPool`` / ``AveragePool`` with a square kernel, no padding, ``ceil_mode = 0``
  (``count_include_pad`` is irrelevant without padding), after a conv layer;
- ``Flatten`` / ``Reshape`` to ``[N, -1]`` between the conv part and the dense part (the target may
  be computed from the activation's ``Shape`` for a dynamic batch, as PyTorch exports
  ``x.view(x.size(0), -1)``: it is evaluated for two batch sizes and must flatten);
- ``Identity``, ``Dropout`` (inference: no-ops).

Anything else raises :class:`~pyquant.errors.InputError` listing every unsupported operator.

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

import numpy as np

from pyquant.errors import InputError


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


def _attr(node, name: str, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _constants(graph, path: Path, opsets: dict[str, int]) -> dict[str, np.ndarray]:
    """Every constant tensor of the graph (a node whose outputs are all here only computes
    constants: see :func:`_is_const_node`).

    Initializers and ``Constant`` nodes, plus the outputs of any node whose inputs are all
    constant (``Identity``/``Cast``/``Transpose``/``Reshape``/arithmetic/... on weights), folded
    exactly as :mod:`pyquant.onnx_io` folds weights, so the executable import accepts the same
    weight storage patterns as the analysis.
    """
    from onnx import numpy_helper

    from pyquant.onnx_io import _Folder, _Scope

    consts: dict[str, np.ndarray] = {}
    for t in graph.initializer:
        try:
            consts[t.name] = numpy_helper.to_array(t, base_dir=str(path.parent))
        except Exception as e:  # noqa: BLE001 - bad raw_data, missing external file
            raise InputError(f"{path}: tensor {t.name!r} cannot be read ({type(e).__name__})") from None
    folder, scope = _Folder(path, opsets), _Scope(graph, None)
    for n in graph.node:
        outs = [o for o in n.output if o]
        if not outs or any(a.type in (5, 10) for a in n.attribute):
            continue
        vals = [folder.resolve(o, scope) for o in outs]
        if all(v is not None for v in vals):
            consts.update({o: np.asarray(v[0]) for o, v in zip(outs, vals)})
    return consts


def _is_const_node(n, consts: dict) -> bool:
    """True when ``n`` only computes constants (all its outputs were folded)."""
    outs = [o for o in n.output if o]
    return bool(outs) and all(o in consts for o in outs)


_SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Identity", "Mul", "Div",
              "Add", "Sub", "ReduceProd", "Constant"}


def _shape_subgraphs(graph, consts: dict) -> dict[str, list]:
    """Dynamic-batch reshape targets: ``{reshape shape-input name: [nodes in graph order]}`` for
    every non-constant Reshape shape computed only from ``Shape`` of activations and constants
    (e.g. PyTorch's ``x.view(x.size(0), -1)``: Shape -> Gather -> Unsqueeze -> Concat)."""
    producer = {o: (i, n) for i, n in enumerate(graph.node) for o in n.output if o}
    out: dict[str, list] = {}
    for n in graph.node:
        if n.op_type != "Reshape" or len(n.input) < 2 or not n.input[1] or n.input[1] in consts:
            continue
        found: dict[int, object] = {}
        stack, ok = [n.input[1]], True
        while stack and ok:
            name = stack.pop()
            if name in consts:
                continue
            pi = producer.get(name)
            if pi is None or pi[1].op_type not in _SHAPE_OPS:
                ok = False
                break
            i, node = pi
            if i in found:
                continue
            found[i] = node
            if node.op_type != "Shape":
                stack.extend(x for x in node.input if x)
        if ok and any(node.op_type == "Shape" for node in found.values()):
            out[n.input[1]] = [found[i] for i in sorted(found)]
    return out


def _eval_shape(nodes: list, consts: dict, act: str, nchw: tuple, opsets: dict) -> np.ndarray:
    """Evaluate a shape subgraph with every ``Shape(act)`` replaced by the concrete ``nchw``."""
    from onnx.reference import ReferenceEvaluator

    env: dict = {}
    for node in nodes:
        if node.op_type == "Shape":
            if node.input[0] != act:
                raise ValueError("Shape of another tensor")
            full = np.array(nchw, dtype=np.int64)
            env[node.output[0]] = full[_attr(node, "start", 0):_attr(node, "end", len(full))]
            continue
        feeds = {x: env[x] if x in env else consts[x] for x in node.input if x}
        kw = {"opsets": {"": opsets[""]}} if "" in opsets else {}
        res = ReferenceEvaluator(node, **kw).run(None, feeds)
        env.update({o: np.asarray(r) for o, r in zip(node.output, res) if o})
    return env[nodes[-1].output[0]] if nodes else np.zeros(0)


def _f64(a: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{where}: weight has non-float dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{where}: weight contains NaN or Inf")
    return a


def _conv_geom(node, w: np.ndarray, in_chw: tuple[int, int, int], where: str) -> dict:
    c, h, wd = in_chw
    kh, kw = int(w.shape[2]), int(w.shape[3])
    if int(w.shape[1]) != c:
        raise InputError(f"{where}: Conv {node.name!r} expects {w.shape[1]} input channels, gets {c}")
    st = list(_attr(node, "strides", [1, 1]))
    if len(st) != 2 or min(st) < 1:
        raise InputError(f"{where}: Conv {node.name!r} has strides {st}; need two values >= 1")
    dil = list(_attr(node, "dilations", [1, 1]))
    if any(d != 1 for d in dil):
        raise InputError(f"{where}: Conv {node.name!r} has dilations {dil}; only 1 is supported")
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", ""):
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = []
        for size, k, s in ((h, kh, st[0]), (wd, kw, st[1])):
            out = -(-size // s)
            tot = max(0, (out - 1) * s + k - size)
            small, big = tot // 2, tot - tot // 2
            pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
        pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
    pt, pl, pb, pr = (int(p) for p in pads)
    oh = (h + pt + pb - kh) // st[0] + 1
    ow = (wd + pl + pr - kw) // st[1] + 1
    if oh < 1 or ow < 1:
        raise InputError(f"{where}: Conv {node.name!r} output would be empty")
    return {"in_h": h, "in_w": wd, "in_c": c, "kh": kh, "kw": kw, "stride_h": int(st[0]),
            "stride_w": int(st[1]), "pad_top": pt, "pad_left": pl, "pad_bottom": pb, "pad_right": pr,
            "out_h": oh, "out_w": ow}


def _input_chw(graph, consts: dict) -> tuple[str, tuple[int, ...] | None]:
    ins = [i for i in graph.input if i.name not in consts]
    if len(ins) != 1:
        raise InputError(f"graph has {len(ins)} non-constant inputs; an executable model needs exactly 1")
    dims = []
    for d in ins[0].type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else None)
    return ins[0].name, tuple(dims) if dims else None


def load_onnx(path: str | os.PathLike) -> ExecModel:
    """Import a sequential ONNX model; raise :class:`InputError` listing unsupported operators."""
    import onnx

    p = Path(path)
    try:
        model = onnx.load(str(p))
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except Exception as e:  # noqa: BLE001 - any protobuf/parse failure is bad input
        raise InputError(f"{p}: not a readable ONNX model ({type(e).__name__})") from None
    g = model.graph
    where = str(p)
    opsets = {o.domain if o.domain != "ai.onnx" else "": int(o.version) for o in model.opset_import}
    consts = _constants(g, p, opsets)
    shape_graphs = _shape_subgraphs(g, consts)
    shape_outs = {o for nodes in shape_graphs.values() for x in nodes for o in x.output}

    def aux(n) -> bool:             # computes constants or a dynamic reshape target only
        return _is_const_node(n, consts) or bool(n.output) and all(o in shape_outs for o in n.output if o)

    meta = {e.key: e.value for e in model.metadata_props}
    supported = {"Gemm", "MatMul", "Add", "Conv", "BatchNormalization", "Relu", "MaxPool",
                 "AveragePool", "Flatten", "Reshape", "Identity", "Dropout", "Constant", "Cast"}
    bad = sorted({n.op_type for n in g.node if n.op_type not in supported and not aux(n)})
    if bad:
        raise InputError(f"{where}: not executable: unsupported operator(s) {', '.join(bad)} "
                         "(supported: Gemm, MatMul, Conv (each + Add bias), BatchNormalization, Relu, MaxPool, "
                         "AveragePool, Flatten, Reshape)")
    in_name, dims = _input_chw(g, consts)
    if dims is None or len(dims) not in (2, 4) or any(d is None for d in dims[1:]):
        raise InputError(f"{where}: input {in_name!r} needs a static shape [N, K] or [N, C, H, W], got {dims}")
    in_chw = (int(dims[1]), 1, 1) if len(dims) == 2 else (int(dims[1]), int(dims[2]), int(dims[3]))

    consumers: dict[str, list] = {}
    for n in g.node:
        if aux(n):
            continue
        for i in n.input:
            if i and i not in consts:
                consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}
    if len(outputs) != 1:
        raise InputError(f"{where}: graph has {len(outputs)} outputs; an executable model needs exactly 1")

    layers: list[FloatLayer] = []
    cur = in_name
    shape_chw = in_chw          # current activation as (C, H, W) (dense: (K, 1, 1))
    flat = len(dims) == 2       # activation is [N, K]
    pending_flatten: tuple[int, int, int] | None = None
    last_was_pool = False
    used: set[str] = set()
    node_index = {id(n): i for i, n in enumerate(g.node)}
    while cur not in outputs:
        nxt = consumers.get(cur, [])
        if len(nxt) != 1:
            raise InputError(f"{where}: tensor {cur!r} feeds {len(nxt)} nodes; only a single chain is executable")
        n = nxt[0]
        used.add(id(n))
        op = n.op_type
        nm = n.name or f"{n.op_type}_{node_index[id(n)] + 1}"   # as pyquant.onnx_io names layers
        cin = [i for i in n.input if i and i not in consts and i not in shape_graphs]
        if cin != [cur]:
            raise InputError(f"{where}: node {nm!r} ({op}) has several non-constant inputs; not sequential")
        last = layers[-1] if layers else None
        if op in ("Gemm", "MatMul"):
            if op == "Gemm":
                if _attr(n, "transA", 0):
                    raise InputError(f"{where}: Gemm {nm!r} with transA=1 is not supported")
                b_name = n.input[1]
                if b_name not in consts:
                    raise InputError(f"{where}: Gemm {nm!r} has a non-constant weight")
                bm = _f64(consts[b_name], f"{where}: {b_name}")
                if bm.ndim != 2:
                    raise InputError(f"{where}: Gemm {nm!r} weight {b_name!r} has shape {bm.shape}; need 2-D")
                w = (bm if _attr(n, "transB", 0) else bm.T) * float(_attr(n, "alpha", 1.0))
                bias = np.zeros(w.shape[0])
                if len(n.input) > 2 and n.input[2]:
                    c = _f64(consts[n.input[2]], f"{where}: {n.input[2]}") * float(_attr(n, "beta", 1.0))
                    bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy()
            else:
                b_name = n.input[1]
                if b_name not in consts or consts[b_name].ndim != 2:
                    raise InputError(f"{where}: MatMul {nm!r} needs a constant 2-D [K, N] operand")
                w = _f64(consts[b_name], f"{where}: {b_name}").T.copy()
                bias = np.zeros(w.shape[0])
            k = shape_chw[0] * shape_chw[1] * shape_chw[2]
            if not flat and pending_flatten is None:
                raise InputError(f"{where}: {op} {nm!r} applied to a 4-D feature map without Flatten")
            if w.shape[1] != k:
                raise InputError(f"{where}: {op} {nm!r} weight has {w.shape[1]} inputs, activation has {k}")
            layers.append(FloatLayer(name=nm, tensor=b_name, op=op, kind="dense", w=w, b=bias,
                                     shape=tuple(w.shape), flatten_chw=pending_flatten))
            pending_flatten = None
            shape_chw = (w.shape[0], 1, 1)
            flat = True
            last_was_pool = False
        elif op == "Conv":
            if flat:
                raise InputError(f"{where}: Conv {nm!r} applied to a flat activation")
            if int(_attr(n, "group", 1)) != 1:
                raise InputError(f"{where}: Conv {nm!r} has group={_attr(n, 'group')}; only group=1 is "
                                 "executable (grouped/depthwise convs: analysis only)")
            wt = _f64(consts.get(n.input[1]), f"{where}: {n.input[1]}") if n.input[1] in consts else None
            if wt is None or wt.ndim != 4:
                raise InputError(f"{where}: Conv {nm!r} needs a constant 4-D weight (2-D conv only)")
            geom = _conv_geom(n, wt, shape_chw, where)
            bias = np.zeros(wt.shape[0])
            if len(n.input) > 2 and n.input[2]:
                bias = _f64(consts[n.input[2]], f"{where}: {n.input[2]}").reshape(-1)
            layers.append(FloatLayer(name=nm, tensor=n.input[1], op="Conv", kind="conv",
                                     w=wt.reshape(wt.shape[0], -1).copy(), b=bias.copy(),
                                     shape=tuple(int(s) for s in wt.shape), geom=geom))
            shape_chw = (int(wt.shape[0]), geom["out_h"], geom["out_w"])
            last_was_pool = False
        elif op == "Add":
            c = [consts[i] for i in n.input if i in consts]
            ok = False
            if last is not None and len(c) == 1 and not last.relu and last.pool == "none":
                shp = tuple(np.shape(c[0]))
                m = last.rows
                per_ch = {(m,), (1, m)} if last.kind == "dense" else {(m, 1, 1), (1, m, 1, 1)}
                ok = shp in per_ch or int(np.size(c[0])) == 1          # per output channel, or a scalar
            if not ok:
                raise InputError(f"{where}: Add {nm!r} is not a bias add directly after a Gemm/MatMul/Conv "
                                 "(a constant of shape [M] or [1, M]; [1, C, 1, 1] after a Conv)")
            last.b = last.b + _f64(c[0], f"{where}: {nm}").reshape(-1)
        elif op == "BatchNormalization":
            if last is None or last.relu or last.pool != "none" or last_was_pool:
                raise InputError(f"{where}: BatchNormalization {nm!r} must directly follow a Conv/Gemm")
            if len(n.input) < 5 or any(i not in consts for i in n.input[1:5]):
                raise InputError(f"{where}: BatchNormalization {nm!r} needs constant scale, bias, mean, var")
            gam, bet, mean, var = (_f64(consts[i], f"{where}: {i}").reshape(-1) for i in n.input[1:5])
            eps = float(_attr(n, "epsilon", 1e-5))
            if any(v.size != last.rows for v in (gam, bet, mean, var)) or np.any(var + eps <= 0):
                raise InputError(f"{where}: BatchNormalization {nm!r} parameters must have {last.rows} entries "
                                 "and var + epsilon > 0")
            a = gam / np.sqrt(var + eps)
            last.w = last.w * a[:, None]
            last.b = a * (last.b - mean) + bet
            last.folded.append(nm)
        elif op == "Relu":
            if last is None or last.relu or (last.pool == "avg"):
                raise InputError(f"{where}: Relu {nm!r} does not follow a layer (or follows an AveragePool)")
            last.relu = True
        elif op in ("MaxPool", "AveragePool"):
            if last is None or last.kind != "conv" or last.pool != "none":
                raise InputError(f"{where}: {op} {nm!r} must follow a conv layer (one pool per layer)")
            k = list(_attr(n, "kernel_shape", []))
            s = list(_attr(n, "strides", [1, 1]))          # ONNX: strides default to 1, not the kernel
            if min(k + s, default=0) < 1:
                raise InputError(f"{where}: {op} {nm!r}: kernel {k} and strides {s} must be >= 1")
            pads = list(_attr(n, "pads", [0, 0, 0, 0]))
            auto = _attr(n, "auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else str(auto)
            if len(k) != 2 or k[0] != k[1] or len(s) != 2 or s[0] != s[1] or any(pads) \
                    or auto not in ("NOTSET", "VALID", "") \
                    or _attr(n, "ceil_mode", 0) or any(d != 1 for d in _attr(n, "dilations", [1, 1])):
                raise InputError(f"{where}: {op} {nm!r}: only square kernels, equal strides, no padding "
                                 "(auto_pad NOTSET/VALID), ceil_mode=0 are supported")
            last.pool = "max" if op == "MaxPool" else "avg"
            last.pool_k, last.pool_stride = int(k[0]), int(s[0])
            c, h, w_ = shape_chw
            oh, ow = (h - k[0]) // s[0] + 1, (w_ - k[0]) // s[0] + 1
            if oh < 1 or ow < 1:
                raise InputError(f"{where}: {op} {nm!r} output would be empty")
            shape_chw = (c, oh, ow)
            last_was_pool = True
        elif op in ("Flatten", "Reshape"):
            if op == "Reshape":
                tgt = consts.get(n.input[1]) if len(n.input) > 1 else None
                k = shape_chw[0] * shape_chw[1] * shape_chw[2]
                if tgt is None and n.input[1] in shape_graphs:      # dynamic batch: check N = 3 and 7
                    try:
                        ok = all(np.empty((b,) + tuple(shape_chw)).reshape(
                            [int(v) for v in _eval_shape(shape_graphs[n.input[1]], consts, cur,
                                                         (b,) + tuple(shape_chw), opsets)]).shape == (b, k)
                                 for b in (3, 7))
                    except Exception:  # noqa: BLE001 - any failure: not a flatten
                        ok = False
                    tgt = np.array([-1, k]) if ok else np.zeros(0)
                if tgt is None or tgt.size != 2 or int(tgt.reshape(-1)[1]) not in (-1, k):
                    raise InputError(f"{where}: Reshape {nm!r} must reshape to [N, -1]")
            elif int(_attr(n, "axis", 1)) != 1:
                raise InputError(f"{where}: Flatten {nm!r} must use axis=1")
            if not flat:
                pending_flatten = shape_chw
                flat = True
                shape_chw = (shape_chw[0] * shape_chw[1] * shape_chw[2], 1, 1)
        elif op in ("Identity", "Dropout", "Cast"):
            pass
        else:  # pragma: no cover - filtered above
            raise InputError(f"{where}: unsupported operator {op}")
        cur = n.output[0]
    if not layers:
        raise InputError(f"{where}: no Gemm/MatMul/Conv layer found")
    if pending_flatten is not None or not flat:
        raise InputError(f"{where}: the model must end with a dense layer (output {shape_chw})")
    extra = [n.op_type for n in g.node if id(n) not in used and not aux(n)]
    if extra:
        raise InputError(f"{where}: nodes off the main chain ({', '.join(sorted(set(extra)))}); "
                         "only a single sequential chain is executable")
    for ly in layers:
        if not np.all(np.isfinite(ly.w)) or not np.all(np.isfinite(ly.b)):
            raise InputError(f"{where}: layer {ly.name!r} has non-finite weights after folding")
    return ExecModel(layers=layers, input_chw=in_chw, source=str(p), metadata=meta)


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


def load_executable(path: str | os.PathLike) -> ExecModel:
    """Load ``.onnx`` or ``.npz`` as an executable model (see module doc)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    suf = p.suffix.lower()
    if suf == ".onnx":
        return load_onnx(p)
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


__all__ = ["FloatLayer", "ExecModel", "load_onnx", "load_npz", "load_executable", "data_file",
           "weight_items", "macs_per_sample"]
