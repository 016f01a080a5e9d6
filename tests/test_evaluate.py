"""Model-level evaluation: digits accuracy per plan, the accuracy-aware budget, file round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyquant.calibrate import PlanBuilder
from pyquant.cli import main
from pyquant.pipeline import evaluate_model
from pyquant.executable import load_executable
from pyquant.infer import infer_float, infer_int, quantize_input
from pyquant.layerfiles import read_model_dir
from pyquant.search import Target, parse_target

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
PLAN_KEYS = {"name", "integer_accuracy", "output_snr_db", "avg_bits", "weight_bytes", "budget", "bits"}


def test_evaluate_cli_as_is(tmp_path):
    """`pyquant evaluate examples/digits_mlp.onnx --json out.json` works with no other option."""
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "pyquant", "evaluate", "examples/digits_mlp.onnx", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())          # strict JSON
    assert isinstance(doc["float_accuracy"], float) and 0.9 < doc["float_accuracy"] <= 1
    names = [p["name"] for p in doc["plans"]]
    assert names[0] == "snr"
    for p in doc["plans"]:
        assert PLAN_KEYS <= set(p)
        assert set(p["bits"]) == {"fc1", "fc2", "fc3"} and all(b in (2, 4, 6, 8) for b in p["bits"].values())
    snr = doc["plans"][0]
    assert snr["budget"] is None
    acc = [p for p in doc["plans"] if p["budget"] == 0.01]
    assert acc, "an accuracy-aware plan with budget 0.01"
    assert "float accuracy" in r.stdout


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_digits_plans(name):
    doc = evaluate_model(EX / f"{name}.onnx")
    x = np.load(EX / "digits_test.npz")
    model = load_executable(EX / f"{name}.onnx")
    fa = float(np.mean(infer_float(model, x["X"]).argmax(1) == x["y"]))
    assert doc["float_accuracy"] == pytest.approx(fa)
    snr, acc = doc["plans"][0], doc["plans"][1]
    assert snr["name"] == "snr" and acc["budget"] == 0.01
    # integer accuracy within 1 point of float under the snr plan
    assert abs(snr["integer_accuracy"] - fa) <= 0.01
    # the accuracy-aware plan meets its budget on the held-out split and uses fewer bits
    assert acc["search"]["budget_met_heldout"]
    assert acc["search"]["heldout"]["drop"] <= 0.01
    assert acc["avg_bits"] < snr["avg_bits"] and acc["weight_bytes"] < snr["weight_bytes"]
    # avg_bits / weight_bytes agree with the widths
    ly = {fl.name: fl for fl in model.layers}
    from pyquant.packing import row_bytes
    assert acc["weight_bytes"] == sum(ly[n].rows * row_bytes(ly[n].cols, b) for n, b in acc["bits"].items())


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_convert_target_meets_budget_from_files(name, tmp_path):
    """Independent check: convert --target, then run the written files on the held-out split."""
    d = tmp_path / "m"
    assert main(["convert", str(EX / f"{name}.onnx"), "--calib", str(EX / "digits_calib.npy"),
                 "--target", "accuracy-drop=0.01", "-o", str(d), "-q"]) == 0
    doc, layers = read_model_dir(d)
    h = np.load(EX / "digits_heldout.npz")
    model = load_executable(EX / f"{name}.onnx")
    fa = np.mean(infer_float(model, h["X"]).argmax(1) == h["y"])
    y = infer_int(d, quantize_input(h["X"], doc["info"]["input"]["scale"], model.input_chw))
    ia = np.mean(y.argmax(1) == h["y"])
    assert fa - ia <= 0.01 + 1e-12
    avg = sum(ly.bits * ly.rows * ly.cols for ly in layers) / sum(ly.rows * ly.cols for ly in layers)
    assert avg < 8.0


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_convert_then_infer_from_dir_equals_in_memory(name, tmp_path):
    d = tmp_path / "m"
    assert main(["convert", str(EX / f"{name}.onnx"), "--calib", str(EX / "digits_calib.npy"), "-o", str(d),
                 "-q"]) == 0
    model = load_executable(EX / f"{name}.onnx")
    pb = PlanBuilder(model, np.load(EX / "digits_calib.npy").astype(np.float64))
    mem = pb.build(pb.snr_bits())
    x = np.load(EX / "digits_test.npz")["X"]
    x8 = quantize_input(x, pb.scales.input, model.input_chw)
    a, ia = infer_int(d, x8, return_intermediates=True)
    b, ib = infer_int(mem, x8, return_intermediates=True)
    assert np.array_equal(a, b)
    for u, v in zip(ia, ib):
        assert np.array_equal(u["y"], v["y"])
    doc, layers = read_model_dir(d)
    assert doc["info"]["executable"] and doc["info"]["input"]["scale"] == pytest.approx(pb.scales.input)


def test_objective_cycles_and_output_snr_target():
    doc = evaluate_model(EX / "digits_cnn.onnx", targets=[parse_target("output-snr=20")], objective="cycles")
    p = doc["plans"][1]
    assert p["objective"] == "cycles" and p["budget"] == 20
    assert p["search"]["budget_met_heldout"] and p["search"]["heldout"]["output_snr_db"] >= 20
    assert p["cycles_per_sample"] <= doc["plans"][0]["cycles_per_sample"]
    assert p["weight_bytes"] < doc["plans"][0]["weight_bytes"]          # bytes break the ties


def test_cycles_objective_prefers_int2_on_the_mac_heavy_layer(monkeypatch):
    """With --objective cycles only INT2 saves cycles (MACS_PER_DSP); the search takes it where MACs are."""
    import types

    import pyquant.search as S

    conv = types.SimpleNamespace(rows=8, cols=9, kind="conv", geom={"out_h": 8, "out_w": 8})   # 4608 MACs
    fc = types.SimpleNamespace(rows=10, cols=64, kind="dense")                                 # 640 MACs
    builder = types.SimpleNamespace(crit=types.SimpleNamespace(bits=(2, 4, 6, 8)),
                                    model=types.SimpleNamespace(layers=[conv, fc]), names=["conv", "fc"])

    def fake_measure(b, bits, split, labels):        # any single INT2 layer passes, two do not
        bad = bits.count(2) > 1
        return {"drop": 0.5 if bad else 0.0, "disagreement": 0.0, "output_snr_db": 50.0}

    monkeypatch.setattr(S, "measure", fake_measure)
    rc = S.search(builder, Target(accuracy_drop=0.01), "cal", "hold", objective="cycles")
    assert rc.bits[0] == 2 and rc.bits[1] != 2
    assert S.cycles(builder, rc.bits) == 4608 / 4 + 640 / 2


def test_bad_input(tmp_path, capsys):
    def run(*argv):
        rc = main(list(argv))
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1, err
        return err

    assert "accuracy-drop" in run("evaluate", str(EX / "digits_mlp.onnx"), "--target", "accuracy-drop=2")
    assert "unknown budget" in run("evaluate", str(EX / "digits_mlp.onnx"), "--target", "speed=3")
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 10)), y=np.zeros(3, int))
    assert "d.npz" in run("evaluate", str(EX / "digits_mlp.onnx"), "--data", str(tmp_path / "d.npz"))
    np.savez(tmp_path / "nolab.npz", X=np.zeros((3, 64)))
    assert "labels" in run("evaluate", str(EX / "digits_mlp.onnx"), "--data", str(tmp_path / "nolab.npz"))
    np.save(tmp_path / "c.npy", np.zeros((4, 8, 8)))             # [N, 8, 8]: 64 values, fits the CNN
    assert "d.npz" in run("evaluate", str(EX / "digits_cnn.onnx"), "--calib", str(tmp_path / "c.npy"),
                          "--holdout", str(tmp_path / "d.npz"))
    np.save(tmp_path / "c7.npy", np.zeros((4, 7)))
    assert "c7.npy" in run("evaluate", str(EX / "digits_cnn.onnx"), "--calib", str(tmp_path / "c7.npy"))
    assert Target(accuracy_drop=0.01).label == "accuracy-drop=0.01"


def test_search_backs_off_when_heldout_misses(monkeypatch):
    """Moves accepted on calibration data are undone (last first) until the held-out split passes."""
    import types

    import pyquant.search as S

    layers = [types.SimpleNamespace(rows=8, cols=16, kind="dense"), types.SimpleNamespace(rows=4, cols=8, kind="dense")]
    builder = types.SimpleNamespace(crit=types.SimpleNamespace(bits=(2, 4, 6, 8)), model=types.SimpleNamespace(
        layers=layers), names=["a", "b"])
    calls = []

    def fake_measure(b, bits, split, labels):
        calls.append((tuple(bits), split))
        if split == "cal":                    # calibration: everything passes
            return {"drop": 0.0, "disagreement": 0.0, "output_snr_db": 50.0}
        drop = 0.0 if sum(bits) >= 14 else 0.05   # held-out: needs at least 14 total bits
        return {"drop": drop, "disagreement": drop, "output_snr_db": 50.0}

    monkeypatch.setattr(S, "measure", fake_measure)
    r = S.search(builder, Target(accuracy_drop=0.01), "cal", "hold")
    assert r.steps[-1]["bits"] == [2, 2]           # the calibration-only greedy went all the way down
    assert r.met and sum(r.bits) >= 14 and r.backed_off >= 1
    assert r.heldout["drop"] <= 0.01
    # the first move taken is the biggest saving per sensitivity: layer a (128 weights) straight to INT2
    assert r.steps[1]["bits"] == [2, 8]
    assert r.bits == [8, 8] and r.backed_off == 2


def test_npz_model_with_data_digits_equals_the_onnx_original(tmp_path):
    """The npz form of the digits MLP, evaluated with only ``--data digits`` (no metadata, so the
    shipped calibration / held-out splits are used), gives the ONNX model's numbers."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(EX / "digits_mlp.onnx"))
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    np.savez(tmp_path / "mlp.npz", **{k: w[k] for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                                          "fc3.weight", "fc3.bias")})
    out = tmp_path / "e.json"
    assert main(["evaluate", str(tmp_path / "mlp.npz"), "--data", "digits", "--json", str(out), "-q"]) == 0
    got = json.loads(out.read_text())
    ref = evaluate_model(EX / "digits_mlp.onnx")
    assert got["float_accuracy"] == ref["float_accuracy"]
    assert [list(p["bits"].values()) for p in got["plans"]] == [list(p["bits"].values()) for p in ref["plans"]]
    assert [p["integer_accuracy"] for p in got["plans"]] == [p["integer_accuracy"] for p in ref["plans"]]


def test_search_retries_failed_moves_after_the_plan_changed(monkeypatch):
    """Layers interact: a width that failed next to a wide neighbour is tried again once the
    neighbour has been lowered (the digits CNN reaches all-INT6 this way)."""
    import types

    import pyquant.search as S

    layers = [types.SimpleNamespace(rows=16, cols=16, kind="dense"), types.SimpleNamespace(rows=4, cols=8, kind="dense")]
    builder = types.SimpleNamespace(crit=types.SimpleNamespace(bits=(6, 8)), model=types.SimpleNamespace(
        layers=layers), names=["a", "b"])
    # a (256 weights) saves the most and is tried first: alone at INT6 it fails; b passes exactly
    # at the budget (sensitivity 1, so it ranks after a); with b lowered, a passes too.
    drops = {(8, 8): 0.0, (6, 8): 0.05, (8, 6): 0.01, (6, 6): 0.01}
    tried = []

    def fake_measure(b, bits, split, labels):
        tried.append(tuple(bits))
        d = drops[tuple(bits)]
        return {"drop": d, "disagreement": d, "output_snr_db": 50.0}

    monkeypatch.setattr(S, "measure", fake_measure)
    r = S.search(builder, Target(accuracy_drop=0.01), "cal", "hold")
    assert tried[3:5] == [(6, 8), (8, 6)]              # after 2 sensitivities + the start: a first, fails
    assert [st["bits"] for st in r.steps] == [[8, 8], [8, 6], [6, 6]] and r.bits == [6, 6] and r.met
    drops[(6, 6)] = 0.05                               # no interaction: stays where the first pass ended
    r = S.search(builder, Target(accuracy_drop=0.01), "cal", "hold")
    assert r.bits == [8, 6]
