"""``pyquant convert``: layer files, model.json, model.meta.bin (parsed here independently at the
docs/FORMAT.md offsets), atomic replacement, executable constants, read_model_dir."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pyquant.analysis import Criteria
from pyquant.cli import main
from pyquant.convert import ConvertOptions, convert_model
from pyquant.errors import InputError
from pyquant.intmath import quantize_multiplier
from pyquant.layerfiles import LayerRecord, read_model_dir, write_model_dir
from pyquant.packing import unpack

QM = {8: 127, 6: 31, 4: 7, 2: 1}


def u16(b, o):
    return int.from_bytes(b[o:o + 2], "little")


def u32(b, o):
    return int.from_bytes(b[o:o + 4], "little")


def f32(b, o):
    return float(np.frombuffer(b[o:o + 4], "<f4")[0])


def test_convert_files_json_and_meta(small_onnx, tmp_path):
    out = tmp_path / "out"
    assert main(["convert", str(small_onnx), "-o", str(out), "-q", "--snr-min", "30"]) == 0
    doc = json.loads((out / "model.json").read_text())
    assert doc["version"] == 1 and doc["info"]["criteria"]["snr_min"] == 30.0
    m = onnx.load(small_onnx)
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    canon = {"conv1": inits["conv.w"].reshape(4, -1), "fc1": inits["fc1.w"], "fc2": inits["fc2.w"]}
    assert [e["name"] for e in doc["layers"]] == ["conv1", "fc1", "fc2"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.json", "model.meta.bin", "layer_00_conv1.bin", "layer_01_fc1.bin", "layer_02_fc2.bin"])
    for e in doc["layers"]:
        w = canon[e["name"]]
        assert (e["rows"], e["cols"]) == w.shape and e["file"] == f"layer_{e['index']:02d}_{e['name']}.bin"
        data = (out / e["file"]).read_bytes()
        assert e["bytes"] == len(data) and e["crc32"] == zlib.crc32(data)
        b = e["bits"]
        s = np.abs(w).max() / QM[b]
        assert e["scale"] == pytest.approx(s, rel=1e-15) and e["status"] in ("ok", "fallback")
        np.testing.assert_array_equal(unpack(data, b, w.shape), np.clip(np.rint(w / s), -QM[b], QM[b]))
    assert doc["layers"][0]["shape"] == [4, 1, 3, 3] and doc["layers"][0]["op"] == "Conv"

    meta = (out / "model.meta.bin").read_bytes()
    assert meta[0:4] == b"PQMB" and u16(meta, 4) == 1 and u16(meta, 6) == 64 and u16(meta, 8) == 128
    n = u16(meta, 10)
    assert n == 3 and u32(meta, 12) == len(meta) == 64 + 128 * 3 + 4
    assert u32(meta, 16) == 64 + 128 * 3 and u32(meta, 20) == 0          # no executable params
    assert u16(meta, 30) & 1 == 0 and u32(meta, 40) == sum(e["bytes"] for e in doc["layers"])
    assert u32(meta, len(meta) - 4) == zlib.crc32(meta[:-4])
    assert doc["meta_crc32"] == zlib.crc32(meta)
    for i, e in enumerate(doc["layers"]):
        r = meta[64 + 128 * i: 64 + 128 * (i + 1)]
        assert r[0:32].rstrip(b"\0").decode() == e["name"]
        assert r[32] == (2 if e["name"] == "conv1" else 1) and r[33] == e["bits"]
        assert r[34] == (4 if e["status"] == "fallback" else 0)
        assert (u32(r, 36), u32(r, 40), u32(r, 44), u32(r, 48)) == (e["rows"], e["cols"], e["bytes"], e["crc32"])
        assert f32(r, 88) == pytest.approx(e["scale"], rel=1e-7)
        if e["name"] == "fc1":   # dense: 1x1 geometry with in_c = K
            assert [u16(r, 56 + 2 * k) for k in range(13)] == [1, 1, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1]
        if e["name"] == "conv1":
            assert (u16(r, 62), u16(r, 64)) == (3, 3)

    info, layers = read_model_dir(out)
    assert [x.name for x in layers] == ["conv1", "fc1", "fc2"]
    for x, e in zip(layers, doc["layers"]):
        assert x.bits == e["bits"] and x.codes.shape == (e["rows"], e["cols"])


def test_convert_model_api_replaces_previous_output_and_extra_hook(small_onnx, small_npz, tmp_path):
    out = tmp_path / "m"
    recs = convert_model(small_onnx, out, ConvertOptions(criteria=Criteria(snr_min=10)))
    assert [r.name for r in recs] == ["conv1", "fc1", "fc2"]
    _, back = read_model_dir(out)
    for a, b in zip(recs, back):
        np.testing.assert_array_equal(a.codes, b.codes)
    opts = ConvertOptions(bits_override={"dense": 6}, info={"note": "x"},
                          extra=lambda d: (d / "golden").mkdir())
    recs = convert_model(small_npz, out, opts)
    doc, back = read_model_dir(out)
    assert [r.name for r in back] == ["dense", "conv", "zero", "ternary"] and back[0].bits == 6
    assert doc["info"]["note"] == "x" and (out / "golden").is_dir()
    assert not (out / "layer_00_conv1.bin").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"m", "small.onnx", "small.npz"}   # no temp dirs left


def test_failed_convert_leaves_directory_untouched(small_onnx, tmp_path):
    out = tmp_path / "keep"
    convert_model(small_onnx, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "nan.npz"
    np.savez(bad, a=np.ones((3, 3)), b=np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(InputError, match="nan.npz.*'b'.*NaN"):
        convert_model(bad, out)
    with pytest.raises(RuntimeError):
        convert_model(small_onnx, out, ConvertOptions(extra=lambda d: (_ for _ in ()).throw(RuntimeError("x"))))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "nan.npz", "small.onnx"]   # no temp dirs
    other = tmp_path / "notmodel"
    other.mkdir()
    (other / "precious.txt").write_text("x")
    with pytest.raises(InputError, match="notmodel.*not empty"):
        convert_model(small_onnx, other)
    assert (other / "precious.txt").read_text() == "x"


def test_executable_layers_params_blob(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(-7, 8, size=(3, 10)).astype(np.int8)
    mult, shift = quantize_multiplier(np.array([0.01, 0.002, 0.3]))
    bias = np.array([-5, 70000, 2**31 - 1], np.int32)
    geom = dict(in_h=4, in_w=4, in_c=1, kh=3, kw=3, stride_h=1, stride_w=1, pad_top=1, pad_left=1,
                pad_bottom=1, pad_right=1, out_h=4, out_w=4)
    conv = LayerRecord("c", "c.w", "Conv", "conv", (3, 1, 3, 3), codes[:, :9].copy(), 4, "ok", np.array([0.1]),
                       executable=True, relu=True, pool="max", pool_k=2, pool_stride=2, geom=geom,
                       bias_int=bias, mult=mult, shift=shift, in_scale=0.5, out_scale=0.25)
    dense = LayerRecord("d", "d.w", "Gemm", "dense", (2, 12), rng.integers(-1, 2, size=(2, 12)).astype(np.int8),
                        2, "fallback", np.array([0.2, 0.3]), executable=True, bias_int=np.array([1, -1]),
                        mult=np.array([16384, 20000]), shift=np.array([20, 47]), in_scale=0.25, out_scale=1.0)
    out = tmp_path / "exe"
    info = {"source": "t", "executable": True, "input": {"h": 4, "w": 4, "c": 1, "scale": 0.5, "layout": "HWC"},
            "out_size": 2}
    write_model_dir(out, [conv, dense], info)
    meta = (out / "model.meta.bin").read_bytes()
    po = u32(meta, 16)
    assert po == 64 + 256 and u32(meta, 20) == 8 * 5 and u16(meta, 30) & 1
    assert (u16(meta, 24), u16(meta, 26), u16(meta, 28), f32(meta, 32), u32(meta, 36)) == (4, 4, 1, 0.5, 2)
    r0, r1 = meta[64:192], meta[192:320]
    assert r0[34] == 1 | 8 and r0[35] == 1 and u32(r0, 52) == po and (u16(r0, 82), u16(r0, 84)) == (2, 2)
    assert [u16(r0, 56 + 2 * k) for k in range(13)] == list(geom.values())
    assert r1[34] == 2 | 4 | 8 and u32(r1, 52) == po + 3 * 8 and f32(r1, 88) == 0.0
    assert (f32(r0, 92), f32(r0, 96)) == (0.5, 0.25)
    for i in range(3):
        row = meta[po + 8 * i: po + 8 * i + 8]
        assert int.from_bytes(row[0:4], "little", signed=True) == bias[i]
        assert u16(row, 4) == mult[i] and row[6] == shift[i] and row[7] == 0
    doc, back = read_model_dir(out)
    assert back[0].executable and back[0].relu and back[0].pool == "max" and back[0].geom == geom
    np.testing.assert_array_equal(back[0].bias_int, bias)
    np.testing.assert_array_equal(back[1].shift, [20, 47])
    np.testing.assert_array_equal(back[1].scale, [0.2, 0.3])
    assert doc["layers"][1]["granularity"] == "channel" and doc["info"]["input"]["layout"] == "HWC"
    bad = LayerRecord("x", "x", "Gemm", "dense", (1, 2), np.zeros((1, 2), np.int8), 8, "ok", np.array([1.0]),
                      executable=True, bias_int=np.zeros(1), mult=np.array([40000]), shift=np.array([3]))
    with pytest.raises(InputError, match="mult"):
        write_model_dir(tmp_path / "bad", [bad], info)
    assert not (tmp_path / "bad").exists()


def test_convert_silero(silero_vad_onnx, tmp_path):
    out = tmp_path / "sv"
    assert main(["convert", str(silero_vad_onnx), "-o", str(out), "-q"]) == 0
    doc, layers = read_model_dir(out)
    assert len(layers) == 16 and sum(x.codes.size for x in layers) == 542464
    assert len(list(Path(out).glob("layer_*.bin"))) == 16


def test_convert_streams_with_bounded_memory(tmp_path):
    """The CLI path (keep_codes=False) writes the same directory while holding about one layer:
    12 layers of 1M weights peak below two float64 layers (the codes alone would be 12 MB)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    p = tmp_path / "big.npz"
    np.savez(p, **{f"l{i}": rng.standard_normal((1000, 1000)).astype(np.float32) * (i + 1) for i in range(12)})
    ref = convert_model(p, tmp_path / "ref")
    tracemalloc.start()
    try:
        recs = convert_model(p, tmp_path / "out", ConvertOptions(keep_codes=False))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 8_000_000, f"peak {peak / 1e6:.1f} MB: convert does not stream"
    assert [r.codes.shape for r in recs] == [(1000, 0)] * 12 and [r.bits for r in recs] == [r.bits for r in ref]
    for f in sorted(x.name for x in (tmp_path / "ref").iterdir()):
        a, b = (tmp_path / "ref" / f).read_bytes(), (tmp_path / "out" / f).read_bytes()
        assert a == b or f == "model.json", f
    ja, jb = (json.loads((tmp_path / d / "model.json").read_text()) for d in ("ref", "out"))
    assert ja["layers"] == jb["layers"] and ja["info"]["summary"] == jb["info"]["summary"]
