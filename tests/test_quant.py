"""Quantisation metrics and the width choice against independent pure-Python formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyquant import analysis
from pyquant.analysis import Criteria, WeightItem, analyze_layer, analyze_weights, parse_bits
from pyquant.errors import InputError
from pyquant.quant import in_range, qmax, quantize, scale_maxabs, snr_db

QM = {8: 127, 6: 31, 4: 7, 2: 1}


def ref_metrics(rows: list[list[float]], bits: int, per_channel: bool, scale=None):
    """DESIGN.md formulas written out element by element (Python's round() is half-to-even)."""
    qm = QM[bits]
    if scale is None:
        if per_channel:
            scale = [max(abs(v) for v in r) / qm or 1.0 for r in rows]
        else:
            m = max(abs(v) for r in rows for v in r) / qm
            scale = [m or 1.0] * len(rows)
    sig = err = 0.0
    inr = n = 0
    codes = []
    for r, s in zip(rows, scale):
        cr = []
        for v in r:
            t = round(v / s)
            inr += -qm <= t <= qm
            q = max(-qm, min(qm, t))
            cr.append(q)
            sig += v * v
            err += (v - s * q) ** 2
            n += 1
        codes.append(cr)
    snr = math.inf if err == 0 else 10 * math.log10(sig / err)
    return scale, codes, snr, inr / n


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_reference(per_channel, seed, monkeypatch):
    monkeypatch.setattr(analysis, "_CHUNK", 7)     # exercise the chunked passes on a small tensor
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((5, 9)) * rng.uniform(0.1, 3, size=(5, 1))
    w[2, 3] = 4.0       # an outlier
    rows = w.tolist()
    rec = analyze_layer(WeightItem("l", "t", "Gemm", "dense", w, w.shape),
                        Criteria(granularity="channel" if per_channel else "tensor", snr_min=-1e9))
    for c in rec.candidates:
        b = c["bits"]
        s, codes, snr, inr = ref_metrics(rows, b, per_channel)
        assert c["snr_db"] == pytest.approx(snr, rel=1e-12)
        assert c["in_range"] == inr == 1.0
        # the quant.py functions agree too
        sc = scale_maxabs(w, b, per_channel)
        np.testing.assert_allclose(sc, s if per_channel else s[:1], rtol=0, atol=0)
        q = quantize(w, sc, b)
        np.testing.assert_array_equal(q, np.array(codes))
        assert snr_db(w, sc, q) == pytest.approx(snr, rel=1e-12)
    assert rec.bits == 2 and rec.status == "ok"
    np.testing.assert_array_equal(rec.codes, np.array(ref_metrics(rows, 2, per_channel)[1]))


def test_round_half_to_even_and_clipping_in_range():
    w = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.49])
    np.testing.assert_array_equal(quantize(w, 1.0, 8), [0, 2, 2, 0, -2, -2, 3])
    # scale 1 at INT2: rint = [0, 2, 2, 0, -2, -2, 3]; inside [-1, 1] only the two zeros
    assert in_range(w, 1.0, 2) == pytest.approx(2 / 7)
    np.testing.assert_array_equal(quantize(w, 1.0, 2), [0, 1, 1, 0, -1, -1, 1])
    _, _, snr, inr = ref_metrics([w.tolist()], 2, False, scale=[1.0])
    assert inr == pytest.approx(2 / 7)
    assert snr_db(w, 1.0, quantize(w, 1.0, 2)) == pytest.approx(snr, rel=1e-12)
    assert [qmax(b) for b in (8, 6, 4, 2)] == [127, 31, 7, 1]


def test_all_zero_and_ternary_are_exact_at_int2():
    z = np.zeros((3, 4))
    rec = analyze_layer(WeightItem("z", "z", "npz", "dense", z, z.shape), Criteria())
    assert rec.bits == 2 and rec.status == "ok" and rec.scale.tolist() == [1.0]
    assert all(c["snr_db"] is None and c["pass"] for c in rec.candidates)
    t = np.array([[0.3, -0.3, 0.0], [0.0, 0.3, 0.3]])
    rec = analyze_layer(WeightItem("t", "t", "npz", "dense", t, t.shape), Criteria())
    assert rec.bits == 2 and rec.codes.tolist() == [[1, -1, 0], [0, 1, 1]]
    # a zero row per channel gets scale 1
    zc = np.array([[0.0, 0.0], [1.0, -0.5]])
    rec = analyze_layer(WeightItem("zc", "zc", "npz", "dense", zc, zc.shape), Criteria(granularity="channel"))
    assert rec.scale[0] == 1.0 and rec.scale[1] == pytest.approx(1.0 / QM[rec.bits])


@pytest.mark.parametrize("snr_min", [5.0, 20.0, 30.0, 45.0, 80.0])
def test_choice_rule_lowest_passing_width_else_int8_fallback(snr_min):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((16, 40))
    rows = w.tolist()
    ref = {b: ref_metrics(rows, b, False)[2] for b in (2, 4, 6, 8)}
    passing = [b for b in (2, 4, 6, 8) if ref[b] >= snr_min]
    rec = analyze_layer(WeightItem("l", "t", "Gemm", "dense", w, w.shape), Criteria(snr_min=snr_min))
    assert rec.bits == (passing[0] if passing else 8)
    assert rec.status == ("ok" if passing else "fallback")
    assert [c["pass"] for c in rec.candidates] == [ref[b] >= snr_min for b in (2, 4, 6, 8)]
    # restricted candidate list: --bits 8,4
    rec = analyze_layer(WeightItem("l", "t", "Gemm", "dense", w, w.shape), Criteria(snr_min=snr_min, bits=(8, 4)))
    p2 = [b for b in (4, 8) if ref[b] >= snr_min]
    assert rec.bits == (p2[0] if p2 else 8) and [c["bits"] for c in rec.candidates] == [4, 8]


def test_in_range_threshold_and_mse_calibration():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((32, 64))
    w[0, 0] = 12.0                                     # heavy outlier: MSE clips it
    item = WeightItem("l", "t", "Gemm", "dense", w, w.shape)
    mx = analyze_layer(item, Criteria(snr_min=-100))
    ms = analyze_layer(item, Criteria(snr_min=-100, scale="mse"))
    for a, b in zip(mx.candidates, ms.candidates):
        assert b["snr_db"] >= a["snr_db"]             # never worse than maxabs
        s, _, snr, inr = ref_metrics(w.tolist(), a["bits"], False, scale=[b["scale"]] * 32)
        assert b["snr_db"] == pytest.approx(snr, rel=1e-12) and b["in_range"] == pytest.approx(inr)
    assert ms.candidates[0]["snr_db"] > mx.candidates[0]["snr_db"] + 3     # INT2 much better clipped
    assert ms.candidates[0]["in_range"] < 0.99
    # with the default in_range >= 0.99 the clipped INT2 candidate fails even at a low SNR gate
    low = analyze_layer(item, Criteria(snr_min=-100, scale="mse"))
    assert low.candidates[0]["pass"] is False and low.bits > 2
    loose = analyze_layer(item, Criteria(snr_min=-100, scale="mse", in_range_min=0.0))
    assert loose.bits == 2


def test_bits_override_and_analyze_weights():
    rng = np.random.default_rng(5)
    items = [("a", "ta", "Gemm", "dense", rng.standard_normal((4, 6)), (4, 6)),
             ("b", "tb", "Conv", "conv", rng.standard_normal((2, 12)), (2, 3, 2, 2))]
    recs = analyze_weights(items, Criteria(), bits_override={"b": 4})
    assert [r.name for r in recs] == ["a", "b"]
    assert recs[1].bits == 4 and recs[1].status == "ok" and np.abs(recs[1].codes).max() <= 7
    assert recs[1].scale[0] == pytest.approx(np.abs(items[1][4]).max() / 7)
    assert recs[0].codes.dtype == np.int8 and recs[0].codes.shape == (4, 6)


def test_invalid_criteria():
    with pytest.raises(InputError, match="--bits"):
        parse_bits("8,5")
    with pytest.raises(InputError, match="--bits"):
        parse_bits("eight")
    with pytest.raises(InputError, match="--bits"):
        parse_bits("")
    assert parse_bits("2, 8,4") == (2, 4, 8)
    with pytest.raises(InputError):
        Criteria(bits=(3,))
    with pytest.raises(InputError):
        Criteria(in_range_min=1.5)
    with pytest.raises(InputError):
        Criteria(scale="percentile")


def test_analysis_streams_with_bounded_memory(tmp_path):
    """Analysing 8 layers of 1M weights keeps at most about one layer in memory at a time."""
    import tracemalloc

    from pyquant.analysis import iter_analyze, layer_row
    from pyquant.onnx_io import iter_weights

    rng = np.random.default_rng(0)
    p = tmp_path / "big.npz"
    np.savez(p, **{f"l{i}": rng.standard_normal((1000, 1000)).astype(np.float32) for i in range(8)})
    tracemalloc.start()
    try:
        rows = [layer_row(r) for r in iter_analyze(iter_weights(p), Criteria(), keep_codes=False)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(rows) == 8 and sum(r["params"] for r in rows) == 8_000_000
    one_layer_f64 = 8 * 1_000_000
    assert peak < 2 * one_layer_f64, f"peak {peak / 1e6:.1f} MB: layers are not streamed"
