"""ONNX weight extraction: one small graph per storage pattern, plus the real silero-vad model.

Expected canonical matrices are computed here with numpy from the stored arrays and the ONNX
operator semantics; Gemm/MatMul orientation is additionally checked against onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyquant.errors import InputError
from pyquant.onnx_io import iter_onnx, iter_weights

RNG = np.random.default_rng(1234)


def _save(tmp_path, nodes, inputs, outputs, inits=(), name="m.onnx", opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    p = tmp_path / name
    onnx.save(m, p)
    return p


def _vi(name, shape, dt=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dt, shape)


def _layers(p):
    return {it.name: it for it in iter_weights(p)}


def _ort(p, feeds):
    ort = pytest.importorskip("onnxruntime")
    s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def test_gemm_initializer_transB_both_orientations(tmp_path):
    w1 = RNG.standard_normal((5, 3)).astype(np.float32)      # transB=1: stored [N, K]
    w0 = RNG.standard_normal((5, 4)).astype(np.float32)      # transB=0: stored [K, N]
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1", transB=1),
             helper.make_node("Gemm", ["h", "w0"], ["y"], name="fc2")]
    p = _save(tmp_path, nodes, [_vi("x", [2, 3])], [_vi("y", [2, 4])],
              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w0, "w0")])
    L = _layers(p)
    assert list(L) == ["fc1", "fc2"]
    assert L["fc1"].tensor == "w1" and L["fc1"].op == "Gemm" and L["fc1"].kind == "dense"
    np.testing.assert_array_equal(L["fc1"].w, w1)
    np.testing.assert_array_equal(L["fc2"].w, w0.T)                  # canonical [out=4, in=5]
    assert L["fc2"].shape == (5, 4)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    ref = (x @ L["fc1"].w.T.astype(np.float64)) @ L["fc2"].w.T.astype(np.float64)
    np.testing.assert_allclose(_ort(p, {"x": x}), ref, rtol=1e-4, atol=1e-5)


def test_matmul_constant_operand_and_non_constant(tmp_path):
    wb = RNG.standard_normal((6, 3)).astype(np.float32)      # x[.,6] @ wb[6,3]
    wa = RNG.standard_normal((2, 4)).astype(np.float32)      # wa[2,4] @ z[4,?]
    nodes = [helper.make_node("MatMul", ["x", "wb"], ["y"], name="mm_b"),
             helper.make_node("MatMul", ["wa", "z"], ["u"], name="mm_a"),
             helper.make_node("MatMul", ["x", "v"], ["t"], name="mm_dyn")]   # no constant operand
    p = _save(tmp_path, nodes, [_vi("x", [1, 6]), _vi("z", [4, 2]), _vi("v", [6, 2])],
              [_vi("y", [1, 3]), _vi("u", [2, 2]), _vi("t", [1, 2])],
              [numpy_helper.from_array(wb, "wb"), numpy_helper.from_array(wa, "wa")])
    L = _layers(p)
    assert set(L) == {"mm_b", "mm_a"}
    np.testing.assert_array_equal(L["mm_b"].w, wb.T)
    np.testing.assert_array_equal(L["mm_a"].w, wa)
    x = RNG.standard_normal((1, 6)).astype(np.float32)
    out = _ort(p, {"x": x, "z": np.zeros((4, 2), np.float32), "v": np.zeros((6, 2), np.float32)})
    np.testing.assert_allclose(out, x @ L["mm_b"].w.T, rtol=1e-5, atol=1e-6)


def test_constant_node_and_identity_cast_reshape_transpose_chains(tmp_path):
    wc = RNG.standard_normal((3, 4)).astype(np.float32)
    wi = RNG.standard_normal((4, 5)).astype(np.float32)
    wf16 = RNG.standard_normal((5, 2)).astype(np.float16)
    flat = RNG.standard_normal(12).astype(np.float32)
    wt = RNG.standard_normal((2, 6)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["c0"], value=numpy_helper.from_array(wc, "wc_value")),
        helper.make_node("MatMul", ["x", "c0"], ["h0"], name="from_constant"),
        helper.make_node("Identity", ["wi"], ["wi1"]), helper.make_node("Identity", ["wi1"], ["wi2"]),
        helper.make_node("MatMul", ["h0", "wi2"], ["h1"], name="via_identity"),
        helper.make_node("Cast", ["w16"], ["w32"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["h1", "w32"], ["h2"], name="via_cast_fp16"),
        helper.make_node("Constant", [], ["shp"], value=numpy_helper.from_array(np.array([2, 6], np.int64), "s")),
        helper.make_node("Reshape", ["flat", "shp"], ["wr"]),
        helper.make_node("Unsqueeze", ["wr", "ax"], ["wr3"]),
        helper.make_node("Squeeze", ["wr3", "ax"], ["wr2"]),
        helper.make_node("MatMul", ["h2", "wr2"], ["h3"], name="via_reshape_squeeze"),
        helper.make_node("Transpose", ["wt"], ["wtt"], perm=[1, 0]),
        helper.make_node("Gemm", ["h3", "wtt"], ["y"], name="via_transpose", transB=0),
    ]
    inits = [numpy_helper.from_array(wi, "wi"), numpy_helper.from_array(wf16, "w16"),
             numpy_helper.from_array(flat, "flat"), numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(wt, "wt")]
    p = _save(tmp_path, nodes, [_vi("x", [1, 3])], [_vi("y", [1, 2])], inits)
    L = _layers(p)
    assert list(L) == ["from_constant", "via_identity", "via_cast_fp16", "via_reshape_squeeze", "via_transpose"]
    np.testing.assert_array_equal(L["from_constant"].w, wc.T)
    np.testing.assert_array_equal(L["via_identity"].w, wi.T)
    assert L["via_identity"].tensor == "wi"
    np.testing.assert_array_equal(L["via_cast_fp16"].w, wf16.astype(np.float32).T)
    assert L["via_cast_fp16"].tensor == "w16"
    np.testing.assert_array_equal(L["via_reshape_squeeze"].w, flat.reshape(2, 6).T)
    # Gemm transB=0 on Transpose(wt): B = wt.T [6, 2] -> canonical [2, 6] = wt
    np.testing.assert_array_equal(L["via_transpose"].w, wt)
    x = RNG.standard_normal((1, 3)).astype(np.float32)
    ref = x.astype(np.float64)
    for n in L:
        ref = ref @ L[n].w.T.astype(np.float64)
    np.testing.assert_allclose(_ort(p, {"x": x}), ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, "bfloat16"])
def test_storage_dtypes(tmp_path, dtype):
    w = RNG.standard_normal((4, 3))
    if dtype == "bfloat16":
        import ml_dtypes
        stored = w.astype(ml_dtypes.bfloat16)
        t = helper.make_tensor("w", TensorProto.BFLOAT16, [4, 3],
                               stored.view(np.uint16).tobytes(), raw=True)
        expect = stored.astype(np.float32)
        dt = TensorProto.BFLOAT16
    else:
        stored = w.astype(dtype)
        t = numpy_helper.from_array(stored, "w")
        expect = stored
        dt = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.DOUBLE
    n = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    p = _save(tmp_path, [n], [_vi("x", [1, 4], dt)], [_vi("y", [1, 3], dt)], [t])
    (it,) = iter_weights(p)
    np.testing.assert_array_equal(np.asarray(it.w, dtype=np.float64), np.asarray(expect, np.float64).T)


def test_conv_im2col_order_and_conv_transpose_axis_swap(tmp_path):
    wc = RNG.standard_normal((4, 3, 2, 5)).astype(np.float32)        # [O, I, kh, kw]
    wt = RNG.standard_normal((4, 3, 2, 2)).astype(np.float32)        # ConvTranspose [I=4, O=3, kh, kw]
    wg = RNG.standard_normal((4, 1, 3, 3)).astype(np.float32)        # ConvTranspose group 2: [I=4, O/g=1]
    nodes = [helper.make_node("Conv", ["x", "wc"], ["h"], name="conv"),
             helper.make_node("ConvTranspose", ["h", "wt"], ["y"], name="deconv"),
             helper.make_node("ConvTranspose", ["h", "wg"], ["y2"], name="deconv_g", group=2)]
    p = _save(tmp_path, nodes, [_vi("x", [1, 3, 8, 8])], [_vi("y", None), _vi("y2", None)],
              [numpy_helper.from_array(wc, "wc"), numpy_helper.from_array(wt, "wt"),
               numpy_helper.from_array(wg, "wg")])
    L = _layers(p)
    c = L["conv"].w
    assert c.shape == (4, 3 * 2 * 5) and L["conv"].kind == "conv" and L["conv"].shape == (4, 3, 2, 5)
    for o, ci, ky, kx in [(0, 0, 0, 0), (3, 2, 1, 4), (1, 1, 0, 3), (2, 0, 1, 2)]:
        assert c[o, (ci * 2 + ky) * 5 + kx] == wc[o, ci, ky, kx]     # FORMAT.md section 2 order
    d = L["deconv"].w
    assert d.shape == (3, 4 * 4) and L["deconv"].kind == "other"
    for o, ci, ky, kx in [(0, 0, 0, 0), (2, 3, 1, 1), (1, 2, 0, 1)]:
        assert d[o, (ci * 2 + ky) * 2 + kx] == wt[ci, o, ky, kx]
    g = L["deconv_g"].w                                                # out channels g*O/g = 2
    assert g.shape == (2, 2 * 9)
    # group 0: inputs 0,1 -> output 0; group 1: inputs 2,3 -> output 1
    np.testing.assert_array_equal(g[0], wg[0:2, 0].reshape(-1))
    np.testing.assert_array_equal(g[1], wg[2:4, 0].reshape(-1))


@pytest.mark.parametrize("op,gates", [("LSTM", 4), ("GRU", 3)])
def test_rnn_w_and_r(tmp_path, op, gates):
    H, IN, D = 5, 3, 2
    W = RNG.standard_normal((D, gates * H, IN)).astype(np.float32)
    R = RNG.standard_normal((D, gates * H, H)).astype(np.float32)
    n = helper.make_node(op, ["x", "W", "R"], ["y"], name="rnn", hidden_size=H, direction="bidirectional")
    p = _save(tmp_path, [n], [_vi("x", [2, 1, IN])], [_vi("y", None)],
              [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R")])
    L = _layers(p)
    assert list(L) == ["rnn.W", "rnn.R"]
    np.testing.assert_array_equal(L["rnn.W"].w, W.reshape(D * gates * H, IN))
    np.testing.assert_array_equal(L["rnn.R"].w, R.reshape(D * gates * H, H))
    assert L["rnn.W"].shape == (D, gates * H, IN) and L["rnn.R"].op == op


def test_if_loop_scan_subgraphs_outer_scope_and_nested(tmp_path):
    w_outer = RNG.standard_normal((3, 3)).astype(np.float32)
    w_then = RNG.standard_normal((3, 2)).astype(np.float32)
    w_loop = RNG.standard_normal((3, 4)).astype(np.float32)
    w_nested = RNG.standard_normal((3, 5)).astype(np.float32)
    w_scan = RNG.standard_normal((3, 6)).astype(np.float32)
    # then: uses an outer-scope initializer through Identity, and its own Constant node
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["w_outer"], ["wo_id"]),
         helper.make_node("MatMul", ["x", "wo_id"], ["t1"], name="then_outer"),
         helper.make_node("Constant", [], ["wt"], value=numpy_helper.from_array(w_then, "wt_v")),
         helper.make_node("MatMul", ["t1", "wt"], ["t_out"], name="then_local")],
        "then", [], [_vi("t_out", None)])
    nested_then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w_nested"], ["n_out"], name="nested")], "nt", [], [_vi("n_out", None)])
    nested_else = helper.make_graph([helper.make_node("Identity", ["x"], ["e2"])], "ne", [], [_vi("e2", None)])
    else_g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["e_out"], name="inner_if", then_branch=nested_then,
                          else_branch=nested_else)], "else", [], [_vi("e_out", None)])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("MatMul", ["x", "w_loop"], ["scan_out"], name="loop_mm")],
        "body", [_vi("iter", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL)],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("scan_out", None)])
    scan_body = helper.make_graph(
        [helper.make_node("MatMul", ["s_in", "w_scan"], ["s_out"], name="scan_mm")],
        "scan_body", [_vi("s_in", [1, 3])], [_vi("s_out", [1, 6])])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="top_if", then_branch=then_g, else_branch=else_g),
             helper.make_node("Loop", ["trip", "cond"], ["loop_out"], name="loop", body=body),
             helper.make_node("Scan", ["xs"], ["scan_y"], name="scan", body=scan_body, num_scan_inputs=1)]
    inits = [numpy_helper.from_array(w, n) for w, n in
             [(w_outer, "w_outer"), (w_loop, "w_loop"), (w_nested, "w_nested"), (w_scan, "w_scan")]]
    p = _save(tmp_path, nodes, [_vi("x", [1, 3]), _vi("cond", [], TensorProto.BOOL),
                                _vi("trip", [], TensorProto.INT64), _vi("xs", [2, 1, 3])],
              [_vi("y", None), _vi("loop_out", None), _vi("scan_y", None)], inits)
    L = _layers(p)
    # subgraphs are visited in attribute order (make_node sorts: else_branch before then_branch)
    assert list(L) == ["nested", "then_outer", "then_local", "loop_mm", "scan_mm"]
    np.testing.assert_array_equal(L["then_outer"].w, w_outer.T)
    assert L["then_outer"].tensor == "w_outer"
    np.testing.assert_array_equal(L["then_local"].w, w_then.T)
    np.testing.assert_array_equal(L["nested"].w, w_nested.T)
    np.testing.assert_array_equal(L["loop_mm"].w, w_loop.T)
    np.testing.assert_array_equal(L["scan_mm"].w, w_scan.T)


def test_slice_concat_gather_dequantize_and_shared_weight(tmp_path):
    H = 2
    base = RNG.standard_normal((4 * H, 3)).astype(np.float32)   # gates i f g o (PyTorch)
    q = RNG.integers(-127, 128, size=(3, 4)).astype(np.int8)
    sc = np.array([0.5, 0.25, 0.125, 2.0], np.float32)
    i64 = lambda a, n: numpy_helper.from_array(np.array(a, np.int64), n)  # noqa: E731
    nodes = [
        helper.make_node("Slice", ["base", "s0", "e0", "ax0"], ["p_if"]),
        helper.make_node("Slice", ["base", "s1", "e1", "ax0"], ["p_g"]),
        helper.make_node("Slice", ["base", "s2", "e2", "ax0"], ["p_o"]),
        helper.make_node("Concat", ["p_o", "p_if", "p_g"], ["reord"], axis=0),
        helper.make_node("MatMul", ["x", "reordT"], ["h"], name="sliced"),
        helper.make_node("Transpose", ["reord"], ["reordT"]),
        helper.make_node("Gather", ["base", "idx"], ["rows"], axis=0),
        helper.make_node("Gemm", ["x", "rows"], ["h2"], name="gathered", transB=1),
        helper.make_node("DequantizeLinear", ["q", "qs", "qz"], ["dq"], axis=1),
        helper.make_node("MatMul", ["x", "dq"], ["h3"], name="dequant"),
        helper.make_node("MatMul", ["x", "dq"], ["h4"], name="dequant_again"),   # same weight, same use
    ]
    inits = [numpy_helper.from_array(base, "base"), i64([0], "s0"), i64([2 * H], "e0"), i64([2 * H], "s1"),
             i64([3 * H], "e1"), i64([3 * H], "s2"), i64([4 * H], "e2"), i64([0], "ax0"), i64([1, 5], "idx"),
             numpy_helper.from_array(q, "q"), numpy_helper.from_array(sc, "qs"),
             numpy_helper.from_array(np.zeros(4, np.int8), "qz")]
    p = _save(tmp_path, nodes, [_vi("x", [1, 3])], [_vi("h", None), _vi("h2", None), _vi("h3", None),
                                                    _vi("h4", None)], inits)
    L = _layers(p)
    assert list(L) == ["sliced", "gathered", "dequant"]          # the shared dequantised weight once
    np.testing.assert_array_equal(L["sliced"].w, np.concatenate([base[3 * H:], base[:2 * H], base[2 * H:3 * H]]))
    assert L["sliced"].tensor == "base"
    np.testing.assert_array_equal(L["gathered"].w, base[[1, 5]])
    np.testing.assert_allclose(L["dequant"].w, (q.astype(np.float32) * sc).T)


def test_no_weights_and_unsupported_dtype(tmp_path):
    p = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1, 3])], [_vi("y", [1, 3])])
    assert list(iter_weights(p)) == []
    wi = np.arange(6, dtype=np.int32).reshape(3, 2)
    p2 = _save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="imm")],
               [_vi("x", [1, 3], TensorProto.INT32)], [_vi("y", [1, 2], TensorProto.INT32)],
               [numpy_helper.from_array(wi, "w")], name="int.onnx")
    with pytest.raises(InputError, match=r"int\.onnx.*'w'.*unsupported dtype int32"):
        list(iter_weights(p2))


# ---------------------------------------------------------------- silero-vad (real export)

SILERO_SHAPES = {   # per sample-rate branch: layer suffix -> (stored shape 16 kHz, stored shape 8 kHz)
    "/stft/Conv": ((258, 1, 256), (130, 1, 128)),
    "/encoder/0/reparam_conv/Conv": ((128, 129, 3), (128, 65, 3)),
    "/encoder/1/reparam_conv/Conv": ((64, 128, 3), (64, 128, 3)),
    "/encoder/2/reparam_conv/Conv": ((64, 64, 3), (64, 64, 3)),
    "/encoder/3/reparam_conv/Conv": ((128, 64, 3), (128, 64, 3)),
    "/decoder/rnn/LSTM.W": ((1, 512, 128), (1, 512, 128)),
    "/decoder/rnn/LSTM.R": ((1, 512, 128), (1, 512, 128)),
    "/decoder/decoder/2/Conv": ((1, 128, 1), (1, 128, 1)),
}


def _find_constant(graph, name):
    for n in graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                r = _find_constant(a.g, name)
                if r is not None:
                    return r
    return None


def test_silero_vad_layers(silero_vad_onnx):
    m = onnx.load(silero_vad_onnx)
    # facts about this export that make it a real test: no initializers at all, every weight is
    # a Constant node inside the two branches of the top-level If (16 kHz / 8 kHz), and the
    # LSTMs sit in nested If subgraphs and take W/R through Slice/Concat/Unsqueeze chains.
    assert len(m.graph.initializer) == 0 and [n.op_type for n in m.graph.node].count("If") == 1
    items = list(iter_onnx(silero_vad_onnx, m))
    names = [it.name for it in items]
    assert len(items) == 16 and len(set(names)) == 16
    assert sum(it.op == "Conv" for it in items) == 12 and sum(it.op == "LSTM" for it in items) == 4
    by = {it.name: it for it in items}
    for suffix, (s16, s8) in SILERO_SHAPES.items():
        for branch, shp in (("If_0_then_branch__Inline_0_", s16), ("If_0_else_branch__Inline_0_", s8)):
            it = by[f"{branch}_{suffix}"]
            assert it.shape == shp
            assert it.w.shape == (int(np.prod(shp[:-1])) if it.op == "LSTM" else shp[0],
                                  shp[-1] if it.op == "LSTM" else int(np.prod(shp[1:])))
    assert sum(it.w.size for it in items) == 542464
    # the LSTM input weight is PyTorch's weight_ih with gates reordered i,f,g,o -> i,o,f,g(c)
    pre = "If_0_then_branch__Inline_0__"
    w_ih = _find_constant(m.graph, pre + "decoder.rnn.weight_ih")
    w_hh = _find_constant(m.graph, pre + "decoder.rnn.weight_hh")
    H = 128
    order = np.r_[0:H, 3 * H:4 * H, H:2 * H, 2 * H:3 * H]
    np.testing.assert_array_equal(by[pre + "/decoder/rnn/LSTM.W"].w, w_ih[order])
    np.testing.assert_array_equal(by[pre + "/decoder/rnn/LSTM.R"].w, w_hh[order])
    assert by[pre + "/decoder/rnn/LSTM.W"].tensor == pre + "decoder.rnn.weight_ih"
    enc = by[pre + "/encoder/0/reparam_conv/Conv"]
    stored = _find_constant(m.graph, pre + "encoder.0.reparam_conv.weight")
    np.testing.assert_array_equal(enc.w, stored.reshape(128, -1))


@pytest.mark.parametrize("fname,n_layers,ops", [
    ("silero_vad_16k_op15.onnx", 8, {"Conv": 6, "LSTM": 2}),      # If subgraphs, Slice/Concat chains
    ("silero_vad_half.onnx", 8, {"Conv": 6, "LSTM": 2}),
    ("silero_vad_16k_sequence.onnx", 8, {"Conv": 6, "LSTM": 2}),  # older export, onnx:: names
    ("silero_vad_openvino_16k.onnx", 8, {"Conv": 6, "LSTM": 2}),  # all weights in Constant nodes
    ("silero_vad_op18_ifless.onnx", 16, {"Conv": 12, "Gemm": 4}),  # dynamo export: LSTM cell as Gemm
])
def test_silero_vad_other_exports(silero_vad_dir, fname, n_layers, ops):
    items = list(iter_weights(silero_vad_dir / fname))
    assert len(items) == n_layers
    assert {op: sum(it.op == op for it in items) for op in ops} == ops
    shapes = sorted(it.w.shape for it in items if it.op != "Conv")
    assert shapes == [(512, 128)] * len(shapes)
    assert all(np.isfinite(it.w).all() for it in items)


def test_split_outputs(tmp_path):
    base = RNG.standard_normal((10, 3)).astype(np.float32)
    nodes = [helper.make_node("Split", ["base"], ["s0", "s1", "s2", "s3"], axis=0, num_outputs=4),
             helper.make_node("Transpose", ["s3"], ["s3t"]),
             helper.make_node("MatMul", ["x", "s3t"], ["y"], name="last_part"),
             helper.make_node("Split", ["base", "sizes"], ["p0", "p1"], axis=0),
             helper.make_node("Gemm", ["x", "p1"], ["z"], name="explicit_sizes", transB=1)]
    p = _save(tmp_path, nodes, [_vi("x", [1, 3])], [_vi("y", None), _vi("z", None)],
              [numpy_helper.from_array(base, "base"),
               numpy_helper.from_array(np.array([4, 6], np.int64), "sizes")], opset=18)
    L = _layers(p)
    np.testing.assert_array_equal(L["last_part"].w, base[9:10])      # ONNX: chunks 3, 3, 3, 1
    np.testing.assert_array_equal(L["explicit_sizes"].w, base[4:])


def test_model_local_function_is_inlined(tmp_path):
    """torch dynamo exports wrap modules in model-local functions: weights arrive as arguments."""
    w = RNG.standard_normal((3, 4)).astype(np.float32)
    fn = helper.make_function("local", "Linear", ["inp", "weight"], ["out"],
                              [helper.make_node("Transpose", ["weight"], ["wt"]),
                               helper.make_node("MatMul", ["inp", "wt"], ["out"], name="fn_mm")],
                              opset_imports=[helper.make_opsetid("", 17)])
    g = helper.make_graph([helper.make_node("Linear", ["x", "W"], ["y"], name="lin", domain="local")], "g",
                          [_vi("x", [1, 4])], [_vi("y", [1, 3])], [numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, functions=[fn], opset_imports=[helper.make_opsetid("", 17),
                                                            helper.make_opsetid("local", 1)])
    m.ir_version = 8
    p = tmp_path / "fn.onnx"
    onnx.save(m, p)
    (it,) = iter_weights(p)
    np.testing.assert_array_equal(it.w, w)          # MatMul(x, W^T): canonical [out, in] = W
    assert it.tensor == "W" and it.op == "MatMul"
    x = RNG.standard_normal((1, 4)).astype(np.float32)
    np.testing.assert_allclose(_ort(p, {"x": x}), x @ it.w.T, rtol=1e-5, atol=1e-6)


def test_external_data_is_read_tensor_by_tensor(tmp_path, capsys):
    """Weights stored as external data (how models > 2 GB are saved) are found, read correctly,
    and never all kept in the loaded graph; a missing data file is a one-line error naming it."""
    from pyquant.cli import main
    from pyquant.onnx_io import load_onnx

    ws = [RNG.standard_normal((8, 6)).astype(np.float32), RNG.standard_normal((6, 5)).astype(np.float16),
          RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["h"], name="mm0"),
             helper.make_node("MatMul", ["h", "w1c"], ["h1"], name="mm1"),
             helper.make_node("Cast", ["w1"], ["w1c"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["img", "w2"], ["c"], name="conv")]
    g = helper.make_graph(nodes, "g", [_vi("x", [1, 8]), _vi("img", [1, 2, 5, 5])], [_vi("h1", None), _vi("c", None)],
                          [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(ws)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "ext.onnx"
    onnx.save(m, p, save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
              size_threshold=0)
    assert (tmp_path / "ext.data").stat().st_size >= sum(w.nbytes for w in ws) and p.stat().st_size < 1000
    loaded = load_onnx(p)
    items = list(iter_onnx(p, loaded))
    assert [it.name for it in items] == ["mm0", "mm1", "conv"]
    np.testing.assert_array_equal(items[0].w, ws[0].T)
    np.testing.assert_array_equal(items[1].w, ws[1].astype(np.float32).T)
    np.testing.assert_array_equal(items[2].w, ws[2].reshape(4, -1))
    assert not any(t.HasField("raw_data") for t in loaded.graph.initializer)   # nothing retained
    assert main(["analyze", str(p), "-q"]) == 0
    (tmp_path / "ext.data").unlink()
    assert main(["analyze", str(p), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ext.onnx" in err and "'w0'" in err and "cannot be read" in err


@pytest.mark.parametrize("opset", [17, 18])
def test_weight_normalisation_and_other_constant_ops_are_folded(tmp_path, opset):
    """Weights computed from constants by ops outside the numpy folder (weight normalisation's
    ReduceL2 / Sqrt / Pow) are still layers; a random-valued 'weight' is not constant."""
    v = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    gain = RNG.uniform(0.5, 2, (4, 1, 1, 1)).astype(np.float32)
    v2 = RNG.standard_normal((6, 5)).astype(np.float32)
    i64 = lambda a, n: numpy_helper.from_array(np.array(a, np.int64), n)  # noqa: E731
    red = ({"axes": [1, 2, 3]}, []) if opset < 18 else ({}, ["axes"])      # ReduceL2: attribute -> input
    nodes = [
        helper.make_node("ReduceL2", ["v"] + red[1], ["norm"], keepdims=1, **red[0]),
        helper.make_node("Div", ["v", "norm"], ["dir"]),
        helper.make_node("Mul", ["g", "dir"], ["w"]),
        helper.make_node("Conv", ["img", "w"], ["c"], name="wn_conv"),
        helper.make_node("Pow", ["v2", "two"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axes0"], ["ss"], keepdims=1),
        helper.make_node("Sqrt", ["ss"], ["n2"]),
        helper.make_node("Div", ["v2", "n2"], ["w2"]),
        helper.make_node("MatMul", ["x", "w2"], ["h"], name="wn_mm"),
        helper.make_node("RandomNormal", [], ["rn"], shape=[5, 2], seed=1.0),
        helper.make_node("MatMul", ["h", "rn"], ["y"], name="random_mm"),
    ]
    inits = [numpy_helper.from_array(v, "v"), numpy_helper.from_array(gain, "g"),
             numpy_helper.from_array(v2, "v2"), numpy_helper.from_array(np.float32(2.0), "two"),
             i64([0], "axes0")] + ([i64([1, 2, 3], "axes")] if opset >= 18 else [])
    p = _save(tmp_path, nodes, [_vi("img", [1, 3, 6, 6]), _vi("x", [1, 6])], [_vi("c", None), _vi("y", None)],
              inits, opset=opset)
    L = _layers(p)
    assert list(L) == ["wn_conv", "wn_mm"]                      # the random weight is not a layer
    exp = gain * v / np.sqrt((v.astype(np.float64) ** 2).sum(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(L["wn_conv"].w, exp.reshape(4, -1), rtol=1e-5)
    assert (L["wn_conv"].tensor, L["wn_mm"].tensor) == ("w", "w2")      # several roots: the op input
    exp2 = v2 / np.sqrt((v2.astype(np.float64) ** 2).sum(axis=0, keepdims=True))
    np.testing.assert_allclose(L["wn_mm"].w, exp2.T, rtol=1e-5)
    img = RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)
    x = RNG.standard_normal((1, 6)).astype(np.float32)
    ort = pytest.importorskip("onnxruntime")
    c = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(["c"], {"img": img, "x": x})[0]
    ref = np.einsum("kc,pc->kp", L["wn_conv"].w, np.lib.stride_tricks.sliding_window_view(
        img[0], (3, 3), axis=(1, 2)).transpose(1, 2, 0, 3, 4).reshape(16, -1)).reshape(4, 4, 4)
    np.testing.assert_allclose(c[0], ref, rtol=1e-4, atol=1e-4)
