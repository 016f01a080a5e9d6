"""Issue 13 items 6 and 7 for the ``pyquant`` commands: inputs that used to give a traceback, and
outputs that used to overwrite an input with exit 0. Each case: exit 2, one line on stderr naming
the file, every input byte-for-byte unchanged, no output (or temporary file) left behind."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyquant.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
LONG = "n" * 300                       # longer than any file system's NAME_MAX (255)


def _fails(capsys, argv, *needles, unchanged=()):
    """Run ``pyquant argv``: exit 2, one stderr line containing ``needles``, inputs unchanged."""
    before = {p: _snapshot(p) for p in unchanged}
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "\n" not in err and err.startswith(f"pyquant {argv[0]}: error: "), err
    for n in needles:
        assert str(n) in err, err
    for p, snap in before.items():
        assert _snapshot(p) == snap, f"{p} was modified"
    return err


def _snapshot(p: Path):
    p = Path(p)
    if p.is_dir():
        return {q.name: q.read_bytes() for q in sorted(p.iterdir()) if q.is_file()}
    return p.read_bytes()


def _no_leftovers(d: Path, allowed: set[str]):
    extra = {q.name for q in d.iterdir()} - allowed
    assert not extra, f"left behind: {extra}"


@pytest.fixture(scope="module")
def exe_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("exe") / "cnn"
    assert main(["convert", str(EX / "digits_cnn.onnx"), "--calib", str(EX / "digits_calib.npy"), "-o", str(d),
                 "-q"]) == 0
    return d


@pytest.fixture
def model_copy(exe_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(exe_dir, d)
    return d


# --------------------------------------------------------------------------- item 7: outputs onto inputs


def test_analyze_json_or_plot_onto_the_model(capsys, small_onnx):
    for opt in ("--json", "--plot"):
        _fails(capsys, ["analyze", small_onnx, opt, small_onnx, "-q"], small_onnx, "input",
               unchanged=[small_onnx])


def test_analyze_output_through_a_symlink_or_hard_link(capsys, small_onnx, tmp_path):
    sym = tmp_path / "alias.json"
    sym.symlink_to(small_onnx)
    hard = tmp_path / "hard.json"
    os.link(small_onnx, hard)
    for out in (sym, hard):
        _fails(capsys, ["analyze", small_onnx, "--json", out, "-q"], out, unchanged=[small_onnx])
    assert sym.is_symlink()


def test_report_into_the_model_directory(capsys, model_copy):
    for name in ("model.json", "model.meta.bin", "tradeoff.json", "layer_00_conv1.bin"):
        _fails(capsys, ["report", model_copy, "-o", model_copy / name, "-q"], "input directory",
               unchanged=[model_copy])
    _no_leftovers(model_copy, set(_snapshot(model_copy)))


def test_report_onto_its_eval_file(capsys, model_copy, tmp_path):
    ev = tmp_path / "eval.json"
    ev.write_text(json.dumps({"plans": [], "uniform": []}))
    _fails(capsys, ["report", model_copy, "--eval", ev, "-o", ev, "-q"], ev, unchanged=[ev])


def test_bin2c_onto_its_input(capsys, tmp_path, model_copy):
    f = tmp_path / "blob.bin"
    f.write_bytes(bytes(range(40)))
    _fails(capsys, ["bin2c", f, "-o", f], f, "input", unchanged=[f])
    _fails(capsys, ["bin2c", "--model", model_copy, "-o", model_copy / "layer_02_fc.bin"], "input directory",
           unchanged=[model_copy])


def test_evaluate_json_onto_an_input(capsys, tmp_path):
    m = tmp_path / "mlp.onnx"
    shutil.copy(EX / "digits_mlp.onnx", m)
    _fails(capsys, ["evaluate", m, "--json", m, "-q"], m, unchanged=[m])


def test_convert_output_directory_holding_the_model(capsys, small_onnx, tmp_path):
    """``convert`` replaces DIR as a whole: a DIR that holds the model (or its calibration file) is refused."""
    _fails(capsys, ["convert", small_onnx, "-o", small_onnx.parent, "-q"], "holds the input",
           unchanged=[small_onnx])
    calib = tmp_path / "data" / "calib.npy"
    calib.parent.mkdir()
    shutil.copy(EX / "digits_calib.npy", calib)
    _fails(capsys, ["convert", EX / "digits_cnn.onnx", "--calib", calib, "-o", calib.parent, "-q"],
           "holds the input", unchanged=[calib])


# --------------------------------------------------------------------------- item 6: tracebacks


def _conv_transpose(path: Path, group: int) -> Path:
    w = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    n = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", group=group)
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("group", [0, -2])
def test_conv_transpose_group_zero(capsys, tmp_path, group):
    m = _conv_transpose(tmp_path / "ct.onnx", group)
    _fails(capsys, ["analyze", m, "-q"], m, "'w'", "ConvTranspose", f"group={group}")
    _fails(capsys, ["convert", m, "-o", tmp_path / "out", "-q"], m, f"group={group}")
    assert not (tmp_path / "out").exists()


def test_conv_transpose_valid_group_still_converts(tmp_path):
    assert main(["analyze", str(_conv_transpose(tmp_path / "ct.onnx", 2)), "-q"]) == 0


def test_over_long_output_names(capsys, small_onnx, model_copy, tmp_path):
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"\1\2\3")
    long = tmp_path / f"{LONG}.out"
    cases = [["analyze", small_onnx, "--json", long, "-q"], ["analyze", small_onnx, "--plot", long, "-q"],
             ["convert", small_onnx, "-o", long, "-q"], ["report", model_copy, "-o", long, "-q"],
             ["bin2c", blob, "-o", long], ["golden", model_copy, "--input", EX / "digits_calib.npy", "-o", long,
                                           "-n", "1", "-q"],
             ["evaluate", EX / "digits_mlp.onnx", "--json", long, "-q"]]
    for argv in cases:
        _fails(capsys, argv, "file name too long")
    # a name that fits NAME_MAX but not with the temporary file's prefix and suffix
    near = tmp_path / ("x" * 250)
    _fails(capsys, ["bin2c", blob, "-o", near], "file name too long")
    _no_leftovers(tmp_path, {"b.bin", "m", "small.onnx"})


def test_over_long_input_names(capsys, model_copy, tmp_path):
    long = tmp_path / LONG
    calib = EX / "digits_calib.npy"
    cases = [["analyze", f"{long}.onnx"], ["analyze", f"{long}.npz", "--json", tmp_path / "a.json"],
             ["convert", f"{long}.onnx", "-o", tmp_path / "c"],
             ["convert", EX / "digits_cnn.onnx", "--calib", f"{long}.npy", "-o", tmp_path / "c"],
             ["golden", long, "--input", calib, "-o", tmp_path / "v"],
             ["golden", model_copy, "--input", f"{long}.npz", "-o", tmp_path / "v"],
             ["report", long, "-o", tmp_path / "r.html"], ["report", model_copy, "--eval", long, "-o", tmp_path / "r.html"],
             ["bin2c", long, "-o", tmp_path / "x.h"], ["bin2c", "--model", long, "-o", tmp_path / "x.h"],
             ["evaluate", f"{long}.onnx"], ["evaluate", EX / "digits_mlp.onnx", "--data", f"{long}.npz"]]
    for argv in cases:
        _fails(capsys, argv + ["-q"] * (argv[0] != "bin2c"), "file name too long")
    _no_leftovers(tmp_path, {"m", "small.onnx"})


def _huge_npy_bytes() -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)})
    b.write(bytes(64))
    return b.getvalue()


def _npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for k, v in members.items():
            z.writestr(k, v)
    return path


def test_npy_declaring_1e10_elements(capsys, model_copy, tmp_path):
    """The header is checked before anything is allocated: one line with the declared size."""
    huge = tmp_path / "huge.npy"
    huge.write_bytes(_huge_npy_bytes())
    hz = _npz(tmp_path / "huge.npz", {"X.npy": _huge_npy_bytes()})
    for f in (huge, hz):
        _fails(capsys, ["golden", model_copy, "--input", f, "-o", tmp_path / "v", "-q"], f, "40000000000 bytes")
        _fails(capsys, ["convert", EX / "digits_cnn.onnx", "--calib", f, "-o", tmp_path / "c", "-q"], f,
               "40000000000 bytes")
    _fails(capsys, ["evaluate", EX / "digits_mlp.onnx", "--data", hz, "-q"], hz, "40000000000 bytes")
    model = _npz(tmp_path / "model.npz", {"w.npy": _huge_npy_bytes()})
    _fails(capsys, ["analyze", model, "-q"], model, "'w'", "40000000000 bytes")
    _no_leftovers(tmp_path, {"m", "huge.npy", "huge.npz", "model.npz"})


def test_allocation_bound_is_configurable(monkeypatch, tmp_path, capsys):
    x = np.load(EX / "digits_calib.npy")
    p = tmp_path / "x.npy"
    np.save(p, x[:4])
    monkeypatch.setenv("PYQUANT_MAX_ALLOC", str(x[:4].nbytes - 1))
    argv = ["convert", EX / "digits_cnn.onnx", "--calib", p, "--holdout", p, "-o", tmp_path / "c", "-q"]
    _fails(capsys, argv, p, "PYQUANT_MAX_ALLOC")
    monkeypatch.setenv("PYQUANT_MAX_ALLOC", str(x[:4].nbytes))
    assert main([str(a) for a in argv]) == 0


@pytest.mark.parametrize("member", ["X", "X.txt", "y.npz"])
def test_npz_member_that_is_not_an_npy(capsys, model_copy, tmp_path, member):
    good = io.BytesIO()
    np.save(good, np.zeros((2, 2), np.float32))
    z = _npz(tmp_path / "d.npz", {member: b"hello", "w2.npy": good.getvalue()})
    _fails(capsys, ["analyze", z, "-q"], z, repr(member), "not a .npy array")
    _fails(capsys, ["convert", z, "-o", tmp_path / "c", "-q"], z, "not a .npy array")
    _fails(capsys, ["golden", model_copy, "--input", z, "-o", tmp_path / "v", "-q"], z, "not a .npy array")
    _fails(capsys, ["evaluate", EX / "digits_mlp.onnx", "--data", z, "-q"], z, "not a .npy array")
    assert not (tmp_path / "c").exists() and not (tmp_path / "v").exists()


def test_deeply_nested_model_json(capsys, model_copy, tmp_path):
    (model_copy / "model.json").write_text("[" * 100000 + "]" * 100000)
    for argv in (["golden", model_copy, "--input", EX / "digits_calib.npy", "-o", tmp_path / "v", "-q"],
                 ["report", model_copy, "-o", tmp_path / "r.html", "-q"],
                 ["bin2c", "--model", model_copy, "-o", tmp_path / "w.h"]):
        _fails(capsys, argv, "model.json", "nested", unchanged=[model_copy])
    _no_leftovers(tmp_path, {"m"})


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_in_scale_in_model_json(capsys, model_copy, tmp_path, value):
    """A NaN (or infinite) ``in_scale`` is not strict JSON: golden used to crash writing its manifest."""
    doc = json.loads((model_copy / "model.json").read_text())
    doc["layers"][0]["in_scale"] = 12345.5
    (model_copy / "model.json").write_text(json.dumps(doc).replace("12345.5", value))
    _fails(capsys, ["golden", model_copy, "--input", EX / "digits_calib.npy", "-o", tmp_path / "v", "-n", "2", "-q"],
           "model.json", "not valid JSON")
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("curve", [
    "{", "[1, 2]", '{"points": 3}', '{"points": [1]}', '{"points": [{"name": "a"}]}',
    '{"points": [{"name": "a", "kind": "uniform", "avg_bits": "8", "weight_bytes": 1}]}',
    '{"points": [{"name": "a", "kind": "uniform", "avg_bits": 8, "weight_bytes": 1, "accuracy": "x"}]}',
    '{"points": [], "float_accuracy": "high"}', '{"points": [{"name": "a", "kind": "uniform", "avg_bits": NaN, '
    '"weight_bytes": 1}]}', "[" * 5000 + "]" * 5000,
], ids=lambda c: c if len(c) < 60 else f"nested{len(c)}")
def test_malformed_tradeoff_json(capsys, model_copy, tmp_path, curve):
    (model_copy / "tradeoff.json").write_text(curve)
    _fails(capsys, ["report", model_copy, "-o", tmp_path / "r.html", "-q"], "tradeoff.json")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("doc", ['{"plans": [1]}', '{"uniform": [{"name": "u"}]}', "[]", "NaN",
                                 '{"plans": [{"name": "p", "budget": null, "avg_bits": 8, "weight_bytes": "x", '
                                 '"integer_accuracy": 1, "output_snr_db": null}]}'])
def test_malformed_eval_json(capsys, model_copy, tmp_path, doc):
    ev = tmp_path / "eval.json"
    ev.write_text(doc)
    _fails(capsys, ["report", model_copy, "--eval", ev, "-o", tmp_path / "r.html", "-q"], ev)
    assert not (tmp_path / "r.html").exists()
