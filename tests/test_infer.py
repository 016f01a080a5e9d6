"""infer_int / layer_int against an independent slow implementation (plain Python ints, loops).

The slow reference follows docs/FORMAT.md section 4 literally: it never builds an im2col
matrix (it indexes the HWC input per output pixel and kernel tap, with the ONNX [M, C, kh, kw]
weight), computes accumulators with Python integers, requantises with Python's floor shift,
pools with explicit windows, and chains layers itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyquant.infer import im2col_hwc, infer_int, pool_int
from pyquant.intmath import layer_int, quantize_multiplier
from pyquant.layerfiles import LayerRecord
from pyquant.quant import QMAX

# ----------------------------------------------------------------------------- slow reference


def slow_requant(acc: int, mult: int, shift: int, relu: bool) -> int:
    t = (acc * mult + (1 << (shift - 1))) >> shift
    if relu and t < 0:
        t = 0
    return max(-128, min(127, t))


def slow_dense(x: list[list[int]], w: list[list[int]], bias, mult, shift, relu) -> list[list[int]]:
    out = []
    for row in x:
        o = []
        for m in range(len(w)):
            acc = int(bias[m])
            for k in range(len(row)):
                acc += int(row[k]) * int(w[m][k])
            assert -(2**31) <= acc < 2**31
            o.append(slow_requant(acc, int(mult[m]), int(shift[m]), relu))
        out.append(o)
    return out


def slow_conv(img, w4, bias, mult, shift, relu, g):
    """img[H][W][C] python ints; w4[M][C][kh][kw]; returns [out_h][out_w][M]."""
    out = []
    for oy in range(g["out_h"]):
        r = []
        for ox in range(g["out_w"]):
            px = []
            for m in range(len(w4)):
                acc = int(bias[m])
                for c in range(g["in_c"]):
                    for ky in range(g["kh"]):
                        for kx in range(g["kw"]):
                            iy = oy * g["stride_h"] + ky - g["pad_top"]
                            ix = ox * g["stride_w"] + kx - g["pad_left"]
                            if 0 <= iy < g["in_h"] and 0 <= ix < g["in_w"]:
                                acc += int(img[iy][ix][c]) * int(w4[m][c][ky][kx])
                px.append(slow_requant(acc, int(mult[m]), int(shift[m]), relu))
            r.append(px)
        out.append(r)
    return out


def slow_pool(fm, kind, k, s):
    h, w, c = len(fm), len(fm[0]), len(fm[0][0])
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = []
    for oy in range(oh):
        r = []
        for ox in range(ow):
            px = []
            for ch in range(c):
                vals = [fm[oy * s + dy][ox * s + dx][ch] for dy in range(k) for dx in range(k)]
                if kind == "max":
                    px.append(max(vals))
                else:
                    tot, n = sum(vals), k * k
                    px.append((tot + n // 2) // n if tot >= 0 else -((-tot + n // 2) // n))
            r.append(px)
        out.append(r)
    return out


def slow_model(layers, x_rows):
    """Chain the slow layers over samples ``x_rows`` (int8 HWC rows) -> list of output rows."""
    outs = []
    for row in x_rows:
        a = [int(v) for v in row]
        for ly in layers:
            if ly.kind == "dense":
                a = slow_dense([a], ly.codes.tolist(), ly.bias_int, ly.mult, ly.shift, ly.relu)[0]
            else:
                g = ly.geom
                img = [[[a[(y * g["in_w"] + x) * g["in_c"] + c] for c in range(g["in_c"])]
                        for x in range(g["in_w"])] for y in range(g["in_h"])]
                w4 = ly.codes.reshape(ly.codes.shape[0], g["in_c"], g["kh"], g["kw"]).tolist()
                fm = slow_conv(img, w4, ly.bias_int, ly.mult, ly.shift, ly.relu, g)
                if ly.pool != "none":
                    fm = slow_pool(fm, ly.pool, ly.pool_k, ly.pool_stride)
                a = [v for r in fm for px in r for v in px]
        outs.append(a)
    return outs


# ----------------------------------------------------------------------------- helpers


def rand_consts(rng, m, shift_lo=8, shift_hi=20):
    bias = rng.integers(-5000, 5000, m)
    mult = rng.integers(0, 32768, m)
    shift = rng.integers(shift_lo, shift_hi, m)
    return bias, mult, shift


def dense_rec(rng, m, k, bits, relu):
    qm = QMAX[bits]
    codes = rng.integers(-qm, qm + 1, (m, k)).astype(np.int8)
    b, mu, sh = rand_consts(rng, m)
    return LayerRecord(name=f"d{m}x{k}", tensor="t", op="Gemm", kind="dense", shape=(m, k), codes=codes,
                       bits=bits, status="ok", scale=np.ones(1), executable=True, relu=relu,
                       bias_int=b.astype(np.int32), mult=mu, shift=sh)


def conv_rec(rng, in_hwc, m, kh, kw, stride, pads, bits, relu, pool="none", pk=0, ps=0):
    h, w, c = in_hwc
    pt, pl, pb, pr = pads
    oh = (h + pt + pb - kh) // stride[0] + 1
    ow = (w + pl + pr - kw) // stride[1] + 1
    g = dict(in_h=h, in_w=w, in_c=c, kh=kh, kw=kw, stride_h=stride[0], stride_w=stride[1], pad_top=pt,
             pad_left=pl, pad_bottom=pb, pad_right=pr, out_h=oh, out_w=ow)
    qm = QMAX[bits]
    codes = rng.integers(-qm, qm + 1, (m, c * kh * kw)).astype(np.int8)
    b, mu, sh = rand_consts(rng, m)
    rec = LayerRecord(name=f"c{m}", tensor="t", op="Conv", kind="conv", shape=(m, c, kh, kw), codes=codes,
                      bits=bits, status="ok", scale=np.ones(1), executable=True, relu=relu, pool=pool,
                      pool_k=pk, pool_stride=ps, geom=g, bias_int=b.astype(np.int32), mult=mu, shift=sh)
    if pool != "none":
        oh, ow = (oh - pk) // ps + 1, (ow - pk) // ps + 1
    return rec, (oh, ow, m)


# ----------------------------------------------------------------------------- layer_int


@pytest.mark.parametrize("bits", [8, 6, 4, 2])
@pytest.mark.parametrize("relu", [False, True])
def test_layer_int_random_matches_slow(bits, relu):
    rng = np.random.default_rng(1000 + bits + 7 * relu)
    for _ in range(6):
        n, m, k = rng.integers(1, 6), rng.integers(1, 9), rng.integers(1, 40)
        x = rng.integers(-128, 128, (n, k)).astype(np.int8)
        rec = dense_rec(rng, m, k, bits, relu)
        got = layer_int(x, rec.codes, rec.bias_int, rec.mult, rec.shift, relu)
        exp = slow_dense(x.tolist(), rec.codes.tolist(), rec.bias_int, rec.mult, rec.shift, relu)
        assert got.dtype == np.int8 and got.tolist() == exp


@pytest.mark.parametrize("bits", [8, 6, 4, 2])
def test_layer_int_worst_cases(bits):
    """±127 / -128 activations, ±qmax weights, K = 1024, bias extremes, saturation both ways."""
    qm = QMAX[bits]
    k = 1024
    worst = k * 128 * qm
    cases = []
    for xv in (127, -127, -128):
        for wv in (qm, -qm):
            cases.append((xv, wv))
    bmax = 2**31 - 1 - worst
    for xv, wv in cases:
        x = np.full((2, k), xv, np.int8)
        x[1, ::2] = -xv if xv != -128 else 127          # a mixed-sign row too
        w = np.full((4, k), wv, np.int8)
        bias = np.array([0, bmax, -bmax, 1], dtype=np.int64)
        for mult, shift in ((32767, 47), (32767, 1), (1, 1), (16384, 24), (0, 5), (12345, 30)):
            ms = np.full(4, mult)
            sh = np.full(4, shift)
            for relu in (False, True):
                got = layer_int(x, w, bias, ms, sh, relu)
                exp = slow_dense(x.tolist(), w.tolist(), bias, ms, sh, relu)
                assert got.tolist() == exp, (xv, wv, mult, shift, relu)
    # both saturations are actually reached
    x = np.full((1, k), 127, np.int8)
    w = np.stack([np.full(k, qm), np.full(k, -qm)]).astype(np.int8)
    y = layer_int(x, w, np.zeros(2), np.full(2, 32767), np.full(2, 1), False)
    assert y.tolist() == [[127, -128]]
    assert layer_int(x, w, np.zeros(2), np.full(2, 32767), np.full(2, 1), True).tolist() == [[127, 0]]


def test_layer_int_rounding_half_up():
    """(acc·mult + 2^(shift-1)) >> shift rounds halves towards +infinity (also for negatives)."""
    x = np.array([[1]], np.int8)
    for acc, exp in ((3, 2), (-3, -1), (5, 3), (-5, -2), (1, 1), (-1, 0)):
        w = np.array([[acc]], np.int8)
        assert layer_int(x, w, [0], [1], [1], False)[0, 0] == exp == slow_requant(acc, 1, 1, False)


def test_layer_int_rejects_out_of_contract():
    x = np.zeros((1, 3), np.int8)
    w = np.zeros((2, 3), np.int8)
    with pytest.raises(ValueError):
        layer_int(x, w, [0, 0], [32768, 1], [5, 5], False)
    with pytest.raises(ValueError):
        layer_int(x, w, [0, 0], [1, 1], [0, 5], False)
    with pytest.raises(ValueError):
        layer_int(x, w, [2**31, 0], [1, 1], [5, 5], False)
    with pytest.raises(ValueError):
        layer_int(np.zeros((1, 4), np.int8), w, [0, 0], [1, 1], [5, 5], False)


def test_quantize_multiplier_contract():
    rng = np.random.default_rng(5)
    reals = np.concatenate([10.0 ** rng.uniform(-9, 4, 200), [2.0**-33, 1.0, 0.5, 16383.5]])
    m, s = quantize_multiplier(reals)
    assert np.all((m >= 16384) & (m <= 32767)) and np.all((s >= 1) & (s <= 47))
    assert np.all(np.abs(m * 2.0 ** -s.astype(float) - reals) <= 2.0 ** -s.astype(float) * 0.5 + 1e-300)


# ----------------------------------------------------------------------------- im2col, pooling, models


def test_im2col_matches_direct_indexing():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 5, 6, 3)).astype(np.int8)
    g = dict(in_h=5, in_w=6, in_c=3, kh=3, kw=2, stride_h=2, stride_w=1, pad_top=1, pad_left=0, pad_bottom=2,
             pad_right=1, out_h=(5 + 3 - 3) // 2 + 1, out_w=(6 + 1 - 2) // 1 + 1)
    cols = im2col_hwc(x, g)
    for n in range(2):
        for oy in range(g["out_h"]):
            for ox in range(g["out_w"]):
                for c in range(3):
                    for ky in range(3):
                        for kx in range(2):
                            iy, ix = oy * 2 + ky - 1, ox + kx
                            v = x[n, iy, ix, c] if 0 <= iy < 5 and 0 <= ix < 6 else 0
                            assert cols[n, oy * g["out_w"] + ox, (c * 3 + ky) * 2 + kx] == v


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_int_matches_slow(kind):
    rng = np.random.default_rng(11)
    for k, s in ((2, 2), (3, 1), (3, 2)):
        y = rng.integers(-128, 128, (2, 7, 6, 3)).astype(np.int8)
        y[0, :3, :3, 0] = -128                          # extremes and exact halves
        y[1, :2, :2, 1] = [[1, 0], [0, 1]]
        got = pool_int(y, kind, k, s)
        for n in range(2):
            assert got[n].tolist() == slow_pool(y[n].tolist(), kind, k, s)


def _random_model(rng, bits_choice):
    """conv(pad, stride) + maxpool -> conv + avgpool -> dense -> dense, random widths."""
    l1, s1 = conv_rec(rng, (7, 6, 2), 4, 3, 3, (1, 1), (1, 1, 1, 1), rng.choice(bits_choice), True, "max", 2, 2)
    l2, s2 = conv_rec(rng, s1, 5, 2, 2, (1, 1), (0, 1, 1, 0), rng.choice(bits_choice), True, "avg", 2, 1)
    k = s2[0] * s2[1] * s2[2]
    l3 = dense_rec(rng, 6, k, rng.choice(bits_choice), True)
    l4 = dense_rec(rng, 3, 6, rng.choice(bits_choice), False)
    return [l1, l2, l3, l4], (7, 6, 2)


def test_infer_int_random_models_match_slow():
    rng = np.random.default_rng(77)
    for trial in range(4):
        layers, (h, w, c) = _random_model(rng, [8, 6, 4, 2])
        x = rng.integers(-128, 128, (3, h * w * c)).astype(np.int8)
        got, inter = infer_int(layers, x, return_intermediates=True)
        assert got.tolist() == slow_model(layers, x.tolist())
        assert [it["name"] for it in inter] == [ly.name for ly in layers]
        # the intermediates chain and each call is exactly layer_int
        for i, it in enumerate(inter):
            ly = layers[i]
            assert np.array_equal(it["y"], layer_int(it["x"], ly.codes, ly.bias_int, ly.mult, ly.shift, ly.relu))
            if i:
                assert np.array_equal(it["act_in"], inter[i - 1]["act_out"])
        assert np.array_equal(inter[-1]["act_out"], got)
        # one batch == per-sample calls
        for n in range(3):
            assert np.array_equal(infer_int(layers, x[n:n + 1]), got[n:n + 1])


def test_infer_int_rejects_bad_input():
    from pyquant.errors import InputError

    rng = np.random.default_rng(1)
    layers, (h, w, c) = _random_model(rng, [8])
    with pytest.raises(InputError, match="does not match"):
        infer_int(layers, np.zeros((1, h * w * c + 1), np.int8))
    with pytest.raises(InputError, match="int8"):
        infer_int(layers, np.full((1, h * w * c), 300))
    layers[2].executable = False
    with pytest.raises(InputError, match="not executable"):
        infer_int(layers, np.zeros((1, h * w * c), np.int8))
    layers[2].executable = True
    layers[3].codes = layers[3].codes[:, :5]
    with pytest.raises(InputError, match="previous"):
        infer_int(layers, np.zeros((1, h * w * c), np.int8))


def test_top_level_api_on_written_model_directories(tmp_path):
    """``pyquant.infer_int(model_dir, x_int8)`` (the public API) reads a directory written by the
    layer-file writer and equals the slow reference on every width, conv + pooling included."""
    import pyquant
    from pqmodels import make_cnn, make_mlp, random_input
    from pyquant.layerfiles import read_model_dir

    assert pyquant.infer_int is infer_int and callable(pyquant.infer_float)
    for d in (make_mlp(tmp_path / "mlp", bits=(6, 4, 2)), make_cnn(tmp_path / "cnn")):
        x = random_input(d, 3)
        _, layers = read_model_dir(d)
        y, inter = pyquant.infer_int(d, x, return_intermediates=True)
        assert y.dtype == np.int8 and y.tolist() == slow_model(layers, x.tolist())
        assert len(inter) == len(layers) and np.array_equal(inter[-1]["act_out"], y)
