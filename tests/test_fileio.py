"""pyquant.fileio: atomic writes, output-path checks, strict JSON and the bounded npy/npz readers,
checked against numpy's own ``np.save``/``np.load`` and Python's ``json`` as references."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

from pyquant.errors import InputError
from pyquant.fileio import (atomic_write, check_output_path, dumps_strict_json, iter_npz_arrays, load_json,
                            load_npy, load_npz, loads_json, read_array_file)


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    p = tmp_path / "f.txt"
    atomic_write(p, "héllo")
    assert p.read_bytes() == "héllo".encode()
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["f.txt"]
    with pytest.raises(InputError, match="cannot write"):
        atomic_write(tmp_path / "missing" / "g", b"x")


def test_check_output_path_refuses_inputs(tmp_path):
    inp = tmp_path / "m.onnx"
    inp.write_bytes(b"model")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "model.json").write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(inp)
    hard = tmp_path / "hard"
    os.link(inp, hard)
    for out in (inp, link, hard, tmp_path / "." / "m.onnx"):
        with pytest.raises(InputError, match="is an input"):
            check_output_path(out, [inp])
    with pytest.raises(InputError, match="input directory"):
        check_output_path(d / "model.json", input_dirs=[d])
    with pytest.raises(InputError, match="input directory"):
        check_output_path(d / "new.html", input_dirs=[d])
    with pytest.raises(InputError, match="holds the input"):
        check_output_path(tmp_path, [inp], directory=True)
    # allowed: a sibling, a file below an input directory's sub-directory, a file input's directory
    assert check_output_path(tmp_path / "out.json", [inp], input_dirs=[d]) == tmp_path / "out.json"
    (d / "sub").mkdir()
    check_output_path(d / "sub" / "x", input_dirs=[d])
    check_output_path(tmp_path / "o", [inp, None], directory=True, input_dirs=[None])


def test_check_output_path_names_and_directories(tmp_path):
    with pytest.raises(InputError, match="file name too long"):
        check_output_path(tmp_path / ("a" * 300))
    with pytest.raises(InputError, match="file name too long"):
        check_output_path(tmp_path / ("a" * 250))               # no room for the temporary name
    check_output_path(tmp_path / ("a" * 200))
    with pytest.raises(InputError, match="file name too long"):
        check_output_path(tmp_path / "o", [tmp_path / ("b" * 300)])
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "no" / "x")
    with pytest.raises(InputError, match="is a directory"):
        check_output_path(tmp_path)
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="not a directory"):
        check_output_path(tmp_path / "f", directory=True)


def test_dumps_strict_json():
    doc = {"a": float("inf"), "b": [float("nan"), -float("inf"), 1.5], "c": np.float32(0.25), "d": np.int64(7),
           "e": (1, 2), 3: np.bool_(True), "f": np.arange(3)}
    text = dumps_strict_json(doc)
    assert text.endswith("\n")
    assert json.loads(text) == {"a": None, "b": [None, None, 1.5], "c": 0.25, "d": 7, "e": [1, 2], "3": True,
                                "f": [0, 1, 2]}
    assert "NaN" not in text and "Infinity" not in text


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "[1e400]", "{", "[1,]", "\xff",
                                  "[" * 65 + "]" * 65, "[" * 100000 + "]" * 100000, '{"a":' * 70 + "1" + "}" * 70])
def test_loads_json_rejects(text, tmp_path):
    data = text.encode("latin-1") if text == "\xff" else text.encode()
    with pytest.raises(InputError, match="x.json: not valid JSON"):
        loads_json(data, "x.json")
    p = tmp_path / "x.json"
    p.write_bytes(data)
    with pytest.raises(InputError, match="x.json"):
        load_json(p)


def test_loads_json_accepts_what_json_accepts():
    for text in ['{"a": [1, 2.5, null, true, "x[{"]}', "[" * 64 + "]" * 64, '"\\"["', "3", "1e308"]:
        assert loads_json(text, "x") == json.loads(text)
    assert loads_json("[[1]]", "x", max_depth=2) == [[1]]
    with pytest.raises(InputError):
        loads_json("[[[1]]]", "x", max_depth=2)
    with pytest.raises(InputError, match="file not found"):
        load_json("/nonexistent/x.json")


@pytest.mark.parametrize("arr", [np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(
    np.random.default_rng(0).standard_normal((5, 3))), np.array([1, -2, 3], np.int8), np.zeros((0, 4)),
    np.array(3.5), np.ones((2, 2), ">f8")])
def test_load_npy_and_npz_match_numpy(tmp_path, arr):
    p = tmp_path / "a.npy"
    np.save(p, arr)
    got = load_npy(p)
    ref = np.load(p, allow_pickle=False)
    assert got.dtype == ref.dtype and got.shape == ref.shape and np.array_equal(got, ref)
    for save in (np.savez, np.savez_compressed):
        z = tmp_path / "a.npz"
        save(z, X=arr, y=np.arange(3))
        d = load_npz(z)
        with np.load(z) as r:
            assert list(d) == list(r.files)
            for k in r.files:
                assert np.array_equal(d[k], r[k]) and d[k].dtype == r[k].dtype
        assert list(load_npz(z, ["y", "nope"])) == ["y"]
        assert np.array_equal(read_array_file(z, "X"), arr)
    assert np.array_equal(read_array_file(p), arr)


def _npy(shape, descr="<f4", data=b"") -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": False, "shape": shape})
    return b.getvalue() + data


def test_load_npy_checks_the_header_before_reading(tmp_path):
    p = tmp_path / "h.npy"
    p.write_bytes(_npy((10 ** 10,)))
    with pytest.raises(InputError, match="40000000000 bytes, more than the limit"):
        load_npy(p)
    p.write_bytes(_npy((4, 4), data=bytes(16)))                  # declares 64 bytes, holds 16
    with pytest.raises(InputError, match="truncated"):
        load_npy(p)
    p.write_bytes(_npy((2,), descr="|O", data=bytes(16)))
    with pytest.raises(InputError, match="dtype object"):
        load_npy(p)
    p.write_bytes(b"not an npy file at all")
    with pytest.raises(InputError, match="not a valid .npy"):
        load_npy(p)
    p.write_bytes(_npy((4,), data=bytes(16)))
    assert load_npy(p, max_bytes=16).shape == (4,)
    with pytest.raises(InputError, match="limit of 15 bytes"):
        load_npy(p, max_bytes=15)


def test_allocation_bound_from_the_environment(tmp_path, monkeypatch):
    p = tmp_path / "a.npy"
    np.save(p, np.zeros(8, np.float64))
    monkeypatch.setenv("PYQUANT_MAX_ALLOC", "63")
    with pytest.raises(InputError, match="PYQUANT_MAX_ALLOC"):
        load_npy(p)
    monkeypatch.setenv("PYQUANT_MAX_ALLOC", "64")
    assert load_npy(p).size == 8
    monkeypatch.setenv("PYQUANT_MAX_ALLOC", "lots")
    with pytest.raises(InputError, match="PYQUANT_MAX_ALLOC"):
        load_npy(p)


def test_load_npz_refusals(tmp_path):
    z = tmp_path / "z.npz"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("a.npy", _npy((2,), data=bytes(8)))
        f.writestr("readme.txt", b"hi")
    with pytest.raises(InputError, match="member 'readme.txt' is not a .npy array"):
        load_npz(z)
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("a.npy", _npy((3, 10 ** 9)))
    with pytest.raises(InputError, match="array 'a': declares shape"):
        load_npz(z)
    with zipfile.ZipFile(z, "w") as f:
        for k in ("a", "b"):
            f.writestr(f"{k}.npy", _npy((4,), data=bytes(16)))
    assert len(load_npz(z, max_bytes=32)) == 2
    with pytest.raises(InputError, match="array 'b'"):                # the bound covers the total
        load_npz(z, max_bytes=31)
    assert [k for k, _ in iter_npz_arrays(z, max_bytes=16)] == ["a", "b"]   # per array when streaming
    z.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(InputError, match="not a valid .npz"):
        load_npz(z)
    with pytest.raises(InputError, match="file not found"):
        load_npz(tmp_path / "nope.npz")
