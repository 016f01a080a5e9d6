"""Calibration: activation scales, int32 bias, mult/shift, the HWC flatten permutation, bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pyquant.calibrate import PlanBuilder, activation_scales, hwc_permutation, load_data_file
from pyquant.cli import main
from pyquant.errors import InputError
from pyquant.executable import load_executable
from pyquant.infer import infer_float, infer_int, infer_quantized, quantize_input
from pyquant.intmath import layer_int

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


def test_activation_scales_match_onnxruntime_intermediates(tmp_path):
    x = np.load(EX / "digits_calib.npy")
    m = onnx.load(str(EX / "digits_mlp.onnx"))
    for name in ("relu1_out", "relu2_out"):
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    p = tmp_path / "mlp_inter.onnx"
    onnx.save(m, str(p))
    outs = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
        ["relu1_out", "relu2_out", "logits"], {"input": x})
    s = activation_scales(load_executable(EX / "digits_mlp.onnx"), x)
    assert s.input == pytest.approx(np.abs(x).max() / 127)
    for got, o in zip(s.outputs, outs):
        assert got == pytest.approx(np.abs(o).max() / 127, rel=1e-5)


def test_constants_follow_the_formulas():
    x = np.load(EX / "digits_calib.npy")
    model = load_executable(EX / "digits_cnn.onnx")
    pb = PlanBuilder(model, x)
    layers = pb.build([8, 6, 4])
    s_in = pb.scales.input
    for fl, ly, s_out in zip(model.layers, layers, pb.scales.outputs):
        ws = np.broadcast_to(np.asarray(ly.scale, dtype=float).reshape(-1), (fl.rows,))
        assert ly.in_scale == pytest.approx(s_in) and ly.out_scale == pytest.approx(s_out)
        assert np.array_equal(ly.bias_int, np.rint(fl.b / (s_in * ws)).astype(np.int64))
        real = s_in * ws / s_out
        eff = ly.mult * 2.0 ** (-ly.shift.astype(float))
        assert np.all(np.abs(eff - real) <= real * 2.0**-14)
        assert ly.executable and ly.relu == fl.relu and ly.pool == fl.pool
        s_in = s_out
    # conv weights keep the canonical order; the dense layer after Flatten is permuted to HWC
    codes_fc = pb.record(2, 4).codes
    assert np.array_equal(layers[2].codes, codes_fc[:, hwc_permutation((16, 2, 2))])
    assert np.array_equal(layers[0].codes, pb.record(0, 8).codes)


def test_flatten_permutation_is_equivalent_to_chw_flatten():
    """Dense on HWC activations with permuted columns == dense on CHW-flattened activations."""
    rng = np.random.default_rng(4)
    c, h, w = 3, 2, 4
    fm_hwc = rng.integers(-128, 128, (5, h, w, c)).astype(np.int8)
    codes = rng.integers(-7, 8, (6, c * h * w)).astype(np.int8)
    b, m, s = rng.integers(-100, 100, 6), rng.integers(16384, 32768, 6), rng.integers(10, 14, 6)
    chw_flat = fm_hwc.transpose(0, 3, 1, 2).reshape(5, -1)
    ref = layer_int(chw_flat, codes, b, m, s, False)
    got = layer_int(fm_hwc.reshape(5, -1), codes[:, hwc_permutation((c, h, w))], b, m, s, False)
    assert np.array_equal(ref, got)


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_integer_pipeline_tracks_float(name):
    x = np.load(EX / "digits_calib.npy")
    model = load_executable(EX / f"{name}.onnx")
    pb = PlanBuilder(model, x)
    layers = pb.build([8] * 3)
    f = infer_float(model, x)
    q = infer_quantized(({"input": {"scale": pb.scales.input}}, layers), x)
    snr = 10 * np.log10((f**2).sum() / ((f - q) ** 2).sum())
    assert snr > 30
    # the float path through quantize_input + infer_int is the same thing
    y = infer_int(layers, quantize_input(x, pb.scales.input, model.input_chw))
    assert np.array_equal(q, y * layers[-1].out_scale)


def test_calibration_data_errors(tmp_path, capsys):
    model = load_executable(EX / "digits_cnn.onnx")
    np.save(tmp_path / "wrong.npy", np.zeros((10, 65), np.float32))
    with pytest.raises(InputError, match=r"wrong\.npy.*does not match the model input"):
        load_data_file(tmp_path / "wrong.npy", model)
    bad = np.zeros((4, 64))
    bad[1, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(InputError, match="NaN"):
        load_data_file(tmp_path / "nan.npy", model)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="junk.npy"):
        load_data_file(tmp_path / "junk.npy", model)
    np.save(tmp_path / "empty.npy", np.zeros((0, 64)))
    with pytest.raises(InputError, match="no samples"):
        load_data_file(tmp_path / "empty.npy", model)
    for f in ("wrong.npy", "nan.npy", "missing.npy"):
        rc = main(["convert", str(EX / "digits_cnn.onnx"), "--calib", str(tmp_path / f), "-o", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and f in err
        assert not (tmp_path / "o").exists()


def test_convert_is_deterministic(tmp_path):
    for d in ("a", "b"):
        assert main(["convert", str(EX / "digits_cnn.onnx"), "--calib", str(EX / "digits_calib.npy"),
                     "-o", str(tmp_path / d), "-q"]) == 0
    for f in sorted(p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_tiny_row_with_large_bias_gets_a_coarser_scale(tmp_path):
    """Per-channel: a row of tiny weights with a large bias would overflow int32; it is rescaled."""
    from pyquant.analysis import Criteria

    rng = np.random.default_rng(9)
    w1 = rng.normal(size=(6, 10))
    w1[2] *= 1e-9                                   # dead neuron: tiny weights ...
    b1 = rng.normal(size=6)
    b1[2] = 3.0                                      # ... but a large bias
    w2 = rng.normal(size=(3, 6))
    np.savez(tmp_path / "m.npz", **{"a.weight": w1, "a.bias": b1, "b.weight": w2})
    model = load_executable(tmp_path / "m.npz")
    x = rng.normal(size=(64, 10))
    pb = PlanBuilder(model, x, Criteria(granularity="channel"))
    layers = pb.build([8, 8])
    assert np.all(np.abs(layers[0].bias_int.astype(np.int64)) + 10 * 128 * 127 < 2**31)
    assert layers[0].scale[2] > pb.record(0, 8).scale[2]      # rescaled row
    assert np.array_equal(layers[0].scale[[0, 1, 3, 4, 5]], pb.record(0, 8).scale[[0, 1, 3, 4, 5]])
    f = infer_float(model, x)
    q = infer_quantized(({"input": {"scale": pb.scales.input}}, layers), x)
    assert 10 * np.log10((f**2).sum() / ((f - q) ** 2).sum()) > 25


def test_single_calibration_sample_without_holdout_names_the_file(tmp_path, capsys):
    np.save(tmp_path / "one.npy", np.load(EX / "digits_calib.npy")[:1])
    np.savez(tmp_path / "m.npz", **{"a.weight": np.ones((3, 64)), "b.weight": np.ones((2, 3))})
    rc = main(["convert", str(tmp_path / "m.npz"), "--calib", str(tmp_path / "one.npy"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "one.npy" in err and "--holdout" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_complex_calibration_data_is_rejected(tmp_path):
    model = load_executable(EX / "digits_mlp.onnx")
    np.save(tmp_path / "cx.npy", np.ones((4, 64), np.complex64))
    with pytest.raises(InputError, match=r"cx\.npy.*real numeric"):
        load_data_file(tmp_path / "cx.npy", model)
