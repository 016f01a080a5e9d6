"""Golden vectors: files agree with each other, with the model directory and with layer_int."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pyquant.cli import main
from pyquant.infer import im2col_hwc, infer_int, quantize_input
from pyquant.intmath import layer_int
from pyquant.layerfiles import read_model_dir

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("golden") / "cnn"
    assert main(["convert", str(EX / "digits_cnn.onnx"), "--calib", str(EX / "digits_calib.npy"),
                 "--target", "accuracy-drop=0.01", "-o", str(d), "-q"]) == 0
    return d


def _hex(path: Path) -> list[int]:
    return [int(line, 16) for line in path.read_text().split()]


def test_golden_files_are_consistent(cnn_dir, tmp_path):
    vec = tmp_path / "vec"
    assert main(["golden", str(cnn_dir), "--input", str(EX / "digits_calib.npy"), "-n", "3", "-o", str(vec),
                 "-q"]) == 0
    man = json.loads((vec / "manifest.json").read_text())
    doc, layers = read_model_dir(cnn_dir)
    x_float = np.load(EX / "digits_calib.npy")[:3]
    x8 = quantize_input(x_float, doc["info"]["input"]["scale"], (1, 8, 8))
    assert man["samples"] == 3 and len(man["calls"]) == len(layers) == 3
    assert np.array_equal(np.load(vec / man["input"]["npy"]), x8)
    act = x8
    for call, ly in zip(man["calls"], layers):
        assert (call["M"], call["K"], call["bits"], call["relu"]) == (ly.rows, ly.cols, ly.bits, ly.relu)
        x = np.load(vec / call["x"]["npy"])
        y = np.load(vec / call["y"]["npy"])
        assert x.shape == (call["N"], call["K"]) and y.shape == (call["N"], call["M"])
        # X is the im2col of the previous activation (conv) or the activation itself (dense)
        if ly.kind == "conv":
            g = ly.geom
            exp_x = im2col_hwc(act.reshape(3, g["in_h"], g["in_w"], g["in_c"]), g).reshape(-1, ly.cols)
            assert call["N"] == 3 * g["out_h"] * g["out_w"]
        else:
            exp_x = act.reshape(3, -1)
        assert np.array_equal(x, exp_x)
        # Y is exactly one layer_int call
        assert np.array_equal(y, layer_int(x, ly.codes, ly.bias_int, ly.mult, ly.shift, ly.relu))
        # .bin / .hex / .w32.hex hold the same bytes
        for key in ("x", "y"):
            raw = (vec / call[key]["bin"]).read_bytes()
            assert raw == np.load(vec / call[key]["npy"]).astype(np.int8).tobytes()
            assert bytes(_hex(vec / call[key]["hex"])) == raw
            words = _hex(vec / call[key]["w32"])
            assert b"".join(w.to_bytes(4, "little") for w in words)[:len(raw)] == raw
            assert len(words) == -(-len(raw) // 4)
        # wgt stream = 8 bytes of constants per row + the layer's .bin
        wgt = (vec / call["wgt"]["bin"]).read_bytes()
        entry = doc["layers"][call["index"]]
        assert wgt[8 * ly.rows:] == (cnn_dir / entry["file"]).read_bytes()
        rec = np.frombuffer(wgt[:8 * ly.rows], dtype=np.dtype([("b", "<i4"), ("m", "<u2"), ("s", "u1"), ("z", "u1")]))
        assert list(rec["b"]) == entry["bias"] and list(rec["m"]) == entry["mult"] and list(rec["s"]) == entry["shift"]
        assert not rec["z"].any()
        act = np.load(vec / call["out"]["npy"])
    out = np.load(vec / man["output"]["npy"])
    assert np.array_equal(out, act) and np.array_equal(out, infer_int(cnn_dir, x8))


def test_golden_int8_input_and_errors(cnn_dir, tmp_path, capsys):
    rng = np.random.default_rng(0)
    x8 = rng.integers(-128, 128, (2, 64)).astype(np.int8)
    np.save(tmp_path / "x8.npy", x8)
    assert main(["golden", str(cnn_dir), "--input", str(tmp_path / "x8.npy"), "-o", str(tmp_path / "v"), "-q"]) == 0
    assert np.array_equal(np.load(tmp_path / "v" / "output.npy"), infer_int(cnn_dir, x8))
    # wrong input shape
    np.save(tmp_path / "bad.npy", np.zeros((2, 63), np.float32))
    rc = main(["golden", str(cnn_dir), "--input", str(tmp_path / "bad.npy"), "-o", str(tmp_path / "v2")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "bad.npy" in err and len(err.splitlines()) == 1 and not (tmp_path / "v2").exists()
    # an analysis-only directory is not executable
    assert main(["convert", str(EX / "digits_mlp.onnx"), "-o", str(tmp_path / "plain"), "-q"]) == 0
    rc = main(["golden", str(tmp_path / "plain"), "--input", str(EX / "digits_calib.npy"), "-o", str(tmp_path / "v3")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not executable" in err and len(err.splitlines()) == 1


def test_mismatched_metadata_is_rejected(cnn_dir, tmp_path, capsys):
    import shutil

    d = tmp_path / "tampered"
    shutil.copytree(cnn_dir, d)
    doc = json.loads((d / "model.json").read_text())
    doc["layers"][1]["mult"][0] += 1                     # model.json no longer matches model.meta.bin
    (d / "model.json").write_text(json.dumps(doc))
    rc = main(["golden", str(d), "--input", str(EX / "digits_calib.npy"), "-o", str(tmp_path / "v")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "model" in err
    assert not (tmp_path / "v").exists()


def test_json_geometry_differing_from_meta_bin_is_rejected(cnn_dir, tmp_path, capsys):
    """The firmware reads model.meta.bin, infer_int model.json: they must describe the same run."""
    import shutil
    import zlib

    d = tmp_path / "geom"
    shutil.copytree(cnn_dir, d)
    doc = json.loads((d / "model.json").read_text())
    doc["layers"][0]["pool"] = "avg"                      # meta.bin still says max
    (d / "model.json").write_text(json.dumps(doc))
    x8 = np.zeros((1, 64), np.int8)
    from pyquant.errors import InputError
    with pytest.raises(InputError, match="model.meta.bin.*conv1"):
        infer_int(d, x8)
    doc["layers"][0]["pool"] = "max"
    doc["layers"][0]["geom"]["pad_top"] = 0
    (d / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="differ from model.json"):
        infer_int(d, x8)
    assert zlib.crc32((d / "model.meta.bin").read_bytes()) == doc["meta_crc32"]


def test_golden_accepts_an_npz_split(cnn_dir, tmp_path, capsys):
    """``--input digits_test.npz`` uses its X (the labelled splits the examples ship)."""
    assert main(["golden", str(cnn_dir), "--input", str(EX / "digits_test.npz"), "-n", "2", "-o",
                 str(tmp_path / "v"), "-q"]) == 0
    doc, _ = read_model_dir(cnn_dir)
    x8 = quantize_input(np.load(EX / "digits_test.npz")["X"][:2], doc["info"]["input"]["scale"], (1, 8, 8))
    assert np.array_equal(np.load(tmp_path / "v" / "input.npy"), x8)
    assert np.array_equal(np.load(tmp_path / "v" / "output.npy"), infer_int(cnn_dir, x8))
    np.savez(tmp_path / "noX.npz", y=np.zeros(3))
    assert main(["golden", str(cnn_dir), "--input", str(tmp_path / "noX.npz"), "-o", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert "noX.npz" in err and "'X'" in err and len(err.splitlines()) == 1 and not (tmp_path / "w").exists()


def test_accumulator_overflow_is_a_clear_error(cnn_dir, tmp_path, capsys):
    """A model directory whose bias lets the int32 accumulator overflow (consistent metadata, so
    only execution can tell) fails with one line naming the directory and the layer."""
    import shutil
    import struct
    import zlib

    from pyquant.layerfiles import read_meta

    d = tmp_path / "ovf"
    shutil.copytree(cnn_dir, d)
    doc = json.loads((d / "model.json").read_text())
    e = doc["layers"][2]
    e["bias"] = [2**31 - 1] * e["rows"]              # any row with a positive X·W overflows
    meta = bytearray((d / "model.meta.bin").read_bytes())
    hdr, recs, _ = read_meta(d / "model.meta.bin")
    for r in range(e["rows"]):
        struct.pack_into("<i", meta, recs[2]["params_offset"] + 8 * r, 2**31 - 1)
    struct.pack_into("<I", meta, len(meta) - 4, zlib.crc32(bytes(meta[:-4])))
    (d / "model.meta.bin").write_bytes(bytes(meta))
    doc["meta_crc32"] = zlib.crc32(bytes(meta))
    (d / "model.json").write_text(json.dumps(doc))
    rc = main(["golden", str(d), "--input", str(EX / "digits_calib.npy"), "-n", "8", "-o", str(tmp_path / "v")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "ovf" in err and "'fc'" in err and "int32" in err
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("arr,flag", [(np.zeros((0, 64), np.int8), "--int8"), (np.zeros((0, 64), np.float32), None),
                                      (np.ones((2, 64), np.complex64), None), (np.ones((2, 64), bool), None)])
def test_golden_rejects_empty_complex_or_bool_inputs(cnn_dir, tmp_path, capsys, arr, flag):
    np.save(tmp_path / "x.npy", arr)
    argv = ["golden", str(cnn_dir), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "v")]
    rc = main(argv + ([flag] if flag else []))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "x.npy" in err and len(err.splitlines()) == 1 and not (tmp_path / "v").exists()
