"""Bad input: one line on stderr naming the file and the problem, exit code 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyquant.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _fails(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "\n" not in err and err.startswith(f"pyquant {argv[0]}: error: ")
    for n in needles:
        assert n in err, err
    return err


def _mm_model(path: Path, w: np.ndarray) -> Path:
    n = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, path)
    return path


@pytest.fixture
def outs(tmp_path):
    """Output paths that must not exist after a failure."""
    d = {"json": tmp_path / "r.json", "png": tmp_path / "r.png", "dir": tmp_path / "outdir"}
    yield d
    for p in d.values():
        assert not p.exists(), f"{p} was written despite the error"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def _both(capsys, outs, model, *needles):
    _fails(capsys, ["analyze", str(model), "--json", str(outs["json"]), "--plot", str(outs["png"])],
           str(model), *needles)
    _fails(capsys, ["convert", str(model), "-o", str(outs["dir"])], str(model), *needles)


def test_missing_file(capsys, outs, tmp_path):
    _both(capsys, outs, tmp_path / "nope.onnx", "file not found")
    _both(capsys, outs, tmp_path / "nope.npz", "file not found")


def test_unknown_suffix(capsys, outs, tmp_path):
    p = tmp_path / "model.txt"
    p.write_text("x")
    _both(capsys, outs, p, "unsupported model type")


def test_corrupt_and_truncated_onnx(capsys, outs, small_onnx, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8)))
    _both(capsys, outs, junk, "not a valid ONNX model")
    data = small_onnx.read_bytes()
    for frac in (0.5, 0.9):
        cut = tmp_path / f"cut{int(frac * 10)}.onnx"
        cut.write_bytes(data[: int(len(data) * frac)])
        _both(capsys, outs, cut, "not a valid ONNX model")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    _both(capsys, outs, empty, "not a valid ONNX model")


def test_corrupt_and_truncated_npz(capsys, outs, small_npz, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04" + bytes(500))
    _both(capsys, outs, junk, "not a valid .npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(small_npz.read_bytes()[:300])
    _both(capsys, outs, cut, "not a valid .npz")
    # a member whose compressed data is damaged (central directory intact)
    comp = tmp_path / "comp.npz"
    np.savez_compressed(comp, a=np.random.default_rng(0).standard_normal((64, 64)))
    b = bytearray(comp.read_bytes())
    for i in range(120, 400):
        b[i] ^= 0x5A
    comp.write_bytes(bytes(b))
    _both(capsys, outs, comp, "comp.npz")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(capsys, outs, tmp_path, bad):
    w = np.ones((3, 4), np.float32)
    w[1, 2] = bad
    _both(capsys, outs, _mm_model(tmp_path / "nf.onnx", w), "'w'", "NaN or Inf")
    p = tmp_path / "nf.npz"
    np.savez(p, good=np.ones((2, 2)), bad=w)
    _both(capsys, outs, p, "'bad'", "NaN or Inf")


def test_empty_and_one_element_tensors(capsys, outs, tmp_path):
    _both(capsys, outs, _mm_model(tmp_path / "e.onnx", np.zeros((3, 0), np.float32)), "'w'", "empty")
    _both(capsys, outs, _mm_model(tmp_path / "one.onnx", np.ones((1, 1), np.float32)), "'w'", "1-element")
    p = tmp_path / "e.npz"
    np.savez(p, e=np.zeros((0, 4)))
    _both(capsys, outs, p, "'e'", "empty")
    p = tmp_path / "one.npz"
    np.savez(p, one=np.ones((1, 1)))
    _both(capsys, outs, p, "'one'", "1-element")
    p = tmp_path / "vec.npz"
    np.savez(p, v=np.ones(5))
    _both(capsys, outs, p, "'v'", "need >= 2 dims")
    p = tmp_path / "none.npz"
    np.savez(p)
    _both(capsys, outs, p, "holds no arrays")


def test_all_zero_tensor_is_not_an_error(tmp_path, capsys):
    import json
    p = tmp_path / "z.npz"
    np.savez(p, z=np.zeros((5, 7), np.float32))
    assert main(["analyze", str(p), "-q", "--json", str(tmp_path / "z.json")]) == 0
    doc = json.loads((tmp_path / "z.json").read_text())
    (layer,) = doc["layers"]
    assert layer["bits"] == 2 and all(c["snr_db"] is None for c in layer["candidates"])


@pytest.mark.parametrize("arr,dt", [(np.arange(6, dtype=np.int32).reshape(2, 3), "int32"),
                                    (np.ones((2, 2), bool), "bool"),
                                    (np.ones((2, 2), np.complex64), "complex64"),
                                    (np.array([["a", "b"], ["c", "d"]]), "<U1"),
                                    (np.array([[1, None]], dtype=object), "object")])
def test_unsupported_dtypes(capsys, outs, tmp_path, arr, dt):
    p = tmp_path / "d.npz"
    np.savez(p, w=arr)
    _both(capsys, outs, p, "'w'", "unsupported dtype", dt)


def test_unsupported_onnx_dtype(capsys, outs, tmp_path):
    _both(capsys, outs, _mm_model(tmp_path / "i.onnx", np.ones((2, 3), np.int64)), "'w'", "unsupported dtype int64")


@pytest.mark.parametrize("bits", ["8,5", "3", "abc", "", "8,,16"])
def test_invalid_bits(capsys, outs, small_onnx, bits):
    _fails(capsys, ["analyze", str(small_onnx), "--bits", bits, "--json", str(outs["json"])], "--bits")
    _fails(capsys, ["convert", str(small_onnx), "--bits", bits, "-o", str(outs["dir"])], "--bits")


def test_invalid_thresholds(capsys, outs, small_onnx):
    _fails(capsys, ["analyze", str(small_onnx), "--in-range-min", "1.5", "--json", str(outs["json"])],
           "--in-range-min")
    _fails(capsys, ["analyze", str(small_onnx), "--snr-min", "nan", "--json", str(outs["json"])], "--snr-min")


def test_unwritable_output(capsys, small_onnx, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(capsys, ["convert", str(small_onnx), "-o", str(blocker / "sub")], str(blocker / "sub"), "cannot create")
    _fails(capsys, ["convert", str(small_onnx), "-o", str(blocker)], str(blocker), "not a directory")
    assert blocker.read_text() == "x"
    _fails(capsys, ["analyze", str(small_onnx), "--json", str(tmp_path / "no" / "r.json")], "does not exist")
    _fails(capsys, ["analyze", str(small_onnx), "--plot", str(tmp_path)], "is a directory")
    _fails(capsys, ["bin2c", str(blocker), "-o", str(tmp_path / "no" / "x.h")], "does not exist")
    if os.geteuid() != 0:      # root ignores directory permissions
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        _fails(capsys, ["convert", str(small_onnx), "-o", str(ro / "out")], "cannot create")


def test_bin_not_matching_metadata(capsys, small_onnx, tmp_path):
    out = tmp_path / "m"
    assert main(["convert", str(small_onnx), "-o", str(out), "-q"]) == 0
    h = tmp_path / "w.h"
    b = out / "layer_01_fc1.bin"
    orig = b.read_bytes()
    b.write_bytes(bytes([orig[0] ^ 1]) + orig[1:])
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(b), "CRC-32", "does not match")
    b.write_bytes(orig[:-1])
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(b), "size", "does not match")
    b.unlink()
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(b), "file not found")
    b.write_bytes(orig)
    meta = out / "model.meta.bin"
    mb = meta.read_bytes()
    meta.write_bytes(mb[:100] + bytes([mb[100] ^ 0xFF]) + mb[101:])
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(meta), "CRC-32 trailer")
    meta.write_bytes(mb[:-8])
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(meta), "bytes")
    meta.write_bytes(mb)
    js = out / "model.json"
    txt = js.read_text()
    js.write_text(txt.replace('"version": 1', '"version": 7'))
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(js), "unsupported format version 7")
    js.write_text(txt[: len(txt) // 2])
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(h)], str(js), "not valid JSON")
    js.write_text(txt)
    assert not h.exists()
    assert main(["bin2c", "--model", str(out), "-o", str(h)]) == 0 and h.exists()


def test_subprocess_exit_code_and_single_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pyquant", "analyze", str(tmp_path / "missing.onnx")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == f"pyquant analyze: error: {tmp_path / 'missing.onnx'}: file not found"
    assert r.stdout == ""


def test_tensor_data_not_matching_its_dims(capsys, outs, tmp_path):
    t = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    t.raw_data = b"\x00" * 8                                                   # needs 48 bytes
    n = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [t])
    p = tmp_path / "raw.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    _both(capsys, outs, p, "'w'", "cannot be read")


def test_malformed_model_json_entry(capsys, small_onnx, tmp_path):
    import json
    out = tmp_path / "m"
    assert main(["convert", str(small_onnx), "-o", str(out), "-q"]) == 0
    js = out / "model.json"
    doc = json.loads(js.read_text())
    del doc["layers"][1]["crc32"]
    js.write_text(json.dumps(doc))
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(tmp_path / "w.h")], str(js), "layer 1", "malformed")
    doc["layers"] = doc["layers"][:2]
    js.write_text(json.dumps(doc))
    _fails(capsys, ["bin2c", "--model", str(out), "-o", str(tmp_path / "w.h")], "model.meta.bin", "3 layers")
    assert not (tmp_path / "w.h").exists()


@pytest.mark.parametrize("bits,raw", [(2, b"\x02\x00"), (4, b"\x08\x00\x00\x00"), (6, b"\x20\x00\x00" * 2),
                                      (8, b"\x80" + b"\x00" * 7)])
def test_bin_holding_codes_outside_the_narrow_range(capsys, tmp_path, monkeypatch, bits, raw):
    """A layer file whose metadata (size, CRC) is consistent but which holds the one two's
    complement code the narrow range excludes (-2^(b-1)) is rejected, naming the file."""
    import pyquant.layerfiles as lf
    from pyquant.layerfiles import LayerRecord, write_model_dir

    rec = LayerRecord("w", "w", "Gemm", "dense", (2, 4), np.zeros((2, 4), np.int8), bits, "ok", np.array([1.0]))
    monkeypatch.setattr(lf, "pack", lambda codes, b: raw)
    write_model_dir(tmp_path / "m", [rec], {})
    monkeypatch.undo()
    h = tmp_path / "w.h"
    _fails(capsys, ["bin2c", "--model", str(tmp_path / "m"), "-o", str(h)], "layer_00_w.bin",
           f"outside the INT{bits} range")
    assert not h.exists()


@pytest.fixture(scope="module")
def exe_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("exe") / "cnn"
    ex = ROOT / "examples"
    assert main(["convert", str(ex / "digits_cnn.onnx"), "--calib", str(ex / "digits_calib.npy"), "-o", str(d),
                 "-q"]) == 0
    return d


@pytest.mark.parametrize("where,key,value", [
    ("layer", "kind", []), ("layer", "pool", {}), ("layer", "geom", "x"), ("layer", "candidates", None),
    ("layer", "op", None), ("layer", "bias", [1, "a"]), ("layer", "relu", "yes"), ("layer", "scales", None),
    ("info", "input", "x"), ("info", "plan", -1), ("top", "meta_file", None), ("top", "info", "x"),
    ("geom", "kh", "3"),
])
def test_malformed_model_json_types(capsys, exe_dir, tmp_path, where, key, value):
    """Wrongly typed model.json fields: every reader (golden, report, bin2c) fails with one line
    naming model.json, never a traceback."""
    import json
    import shutil

    d = tmp_path / "m"
    shutil.copytree(exe_dir, d)
    doc = json.loads((d / "model.json").read_text())
    target = {"layer": doc["layers"][1], "info": doc["info"], "top": doc, "geom": doc["layers"][0]["geom"]}[where]
    target[key] = value
    (d / "model.json").write_text(json.dumps(doc))
    outs = [tmp_path / "v", tmp_path / "r.html", tmp_path / "w.h"]
    for argv in (["golden", str(d), "--input", str(ROOT / "examples" / "digits_calib.npy"), "-o", str(outs[0])],
                 ["report", str(d), "-o", str(outs[1])], ["bin2c", "--model", str(d), "-o", str(outs[2])]):
        _fails(capsys, argv, "model.json")
    assert not any(p.exists() for p in outs)


@pytest.mark.parametrize("argv", [["analyze", "--snr-min", "abc", "m.onnx"], ["convert", "m.onnx"],
                                  ["analyze", "m.onnx", "--granularity", "row"], ["golden", "d"], [],
                                  ["evaluate", "m.onnx", "--objective", "speed"], ["frobnicate"]])
def test_usage_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and ": error: " in err and "--help" in err, err
