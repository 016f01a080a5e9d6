"""``pyquant analyze``: table, summary, strict JSON, plot, options (cli.main and a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyquant.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _strict_json(path: Path) -> dict:
    def bad(x):
        raise AssertionError(f"non-standard JSON constant {x}")
    return json.loads(path.read_text(), parse_constant=bad)


def _ref_snr(w: np.ndarray, bits: int) -> float:
    qm = {8: 127, 6: 31, 4: 7, 2: 1}[bits]
    s = np.abs(w).max() / qm
    q = np.clip(np.rint(w / s), -qm, qm)
    return 10 * np.log10((w ** 2).sum() / ((w - s * q) ** 2).sum())


def test_analyze_npz_json_table_plot(small_npz, tmp_path, capsys):
    js, png = tmp_path / "a.json", tmp_path / "a.png"
    assert main(["analyze", str(small_npz), "--json", str(js), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for word in ("dense", "conv", "zero", "ternary", "SNR@8", "SNR@2", "status", "bytes packed",
                 "smaller", "fell back"):
        assert word in out
    doc = _strict_json(js)
    assert doc["criteria"] == {"snr_min": 40.0, "in_range_min": 0.99, "bits": [2, 4, 6, 8],
                               "granularity": "tensor", "scale": "maxabs"}
    L = {r["name"]: r for r in doc["layers"]}
    assert list(L) == ["dense", "conv", "zero", "ternary"]
    d = np.load(small_npz)
    for name in L:
        r = L[name]
        assert r["tensor"] == name and r["op"] == "npz" and r["shape"] == list(d[name].shape)
        assert r["params"] == d[name].size
        assert [c["bits"] for c in r["candidates"]] == [2, 4, 6, 8]
        assert set(r["candidates"][0]) >= {"bits", "snr_db", "in_range", "pass"}
    w = d["dense"].astype(np.float64).reshape(8, -1)
    for c in L["dense"]["candidates"]:
        assert c["snr_db"] == pytest.approx(_ref_snr(w, c["bits"]), rel=1e-9)
    assert L["conv"]["kind"] == "conv" and L["conv"]["rows"] == 3 and L["conv"]["cols"] == 18
    # all-zero and ternary tensors: exact at INT2, SNR null (infinite)
    for n in ("zero", "ternary"):
        assert L[n]["bits"] == 2 and L[n]["status"] == "ok"
        assert L[n]["candidates"][0]["snr_db"] is None and L[n]["candidates"][0]["pass"] is True
    assert L["zero"]["bytes"] == 4 * 1                     # 4 rows x ceil(4/4) bytes
    s = doc["summary"]
    assert s["layers"] == 4 and s["params"] == 40 + 54 + 16 + 6
    assert s["bytes"] == sum(r["bytes"] for r in doc["layers"])
    assert s["fp32_bytes"] == 4 * s["params"] and s["int8_bytes"] == s["params"]
    assert s["fallback_layers"] == sum(r["status"] == "fallback" for r in doc["layers"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_analyze_options_change_the_choice(small_onnx, tmp_path):
    js = tmp_path / "a.json"
    assert main(["analyze", str(small_onnx), "-q", "--json", str(js), "--snr-min", "0",
                 "--bits", "8,4"]) == 0
    doc = _strict_json(js)
    assert [r["name"] for r in doc["layers"]] == ["conv1", "fc1", "fc2"]
    assert all(r["bits"] == 4 and [c["bits"] for c in r["candidates"]] == [4, 8] for r in doc["layers"])
    assert main(["analyze", str(small_onnx), "-q", "--json", str(js), "--snr-min", "1000"]) == 0
    doc = _strict_json(js)
    assert all(r["bits"] == 8 and r["status"] == "fallback" for r in doc["layers"])
    assert doc["summary"]["fallback_layers"] == 3
    assert main(["analyze", str(small_onnx), "-q", "--json", str(js), "--granularity", "channel",
                 "--scale", "mse", "--in-range-min", "0.5"]) == 0
    doc = _strict_json(js)
    assert doc["criteria"]["granularity"] == "channel" and doc["criteria"]["scale"] == "mse"
    assert all(r["granularity"] == "channel" and r["scale"] is None for r in doc["layers"])


def test_analyze_subprocess_entry_point(small_onnx, tmp_path):
    js = tmp_path / "sub.json"
    r = subprocess.run([sys.executable, "-m", "pyquant", "analyze", str(small_onnx), "--json", str(js)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fc1" in r.stdout and "conv1" in r.stdout
    assert _strict_json(js)["layers"][1]["shape"] == [16, 144]


def test_analyze_silero(silero_vad_onnx, tmp_path):
    js = tmp_path / "s.json"
    assert main(["analyze", str(silero_vad_onnx), "-q", "--json", str(js)]) == 0
    doc = _strict_json(js)
    assert doc["summary"]["layers"] == 16 and doc["summary"]["params"] == 542464
    assert {r["op"] for r in doc["layers"]} == {"Conv", "LSTM"}


def test_analyze_target_reports_the_searched_plan(tmp_path, capsys):
    """``analyze --target``: the table/JSON widths are the accuracy-aware plan (the same one
    ``evaluate`` finds), not the SNR gate's, and the totals follow those widths."""
    from pyquant.pipeline import evaluate_model
    from pyquant.packing import row_bytes

    ex = ROOT / "examples" / "digits_mlp.onnx"
    js = tmp_path / "t.json"
    assert main(["analyze", str(ex), "--json", str(js), "--target", "accuracy-drop=0.01"]) == 0
    out = capsys.readouterr().out
    assert "accuracy-aware plan accuracy-drop=0.01" in out and "budget met" in out
    doc = _strict_json(js)
    bits = {r["name"]: r["bits"] for r in doc["layers"]}
    assert bits == doc["plan"]["bits"] == evaluate_model(ex)["plans"][1]["bits"]
    assert min(bits.values()) < 8 and all(r["status"] == "ok" for r in doc["layers"])
    assert doc["summary"]["bytes"] == doc["plan"]["weight_bytes"] == sum(
        r["rows"] * row_bytes(r["cols"], r["bits"]) for r in doc["layers"])
    assert doc["plan"]["search"]["budget_met_heldout"] and doc["summary"]["avg_bits"] < 8


def test_every_subcommand_help_is_complete(capsys):
    """``pyquant CMD --help`` exits 0, shows plain text (no reST markup), documents every option
    and ends with usage examples."""
    from pyquant.cli import COMMANDS, build_parser

    parser = build_parser()
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "``" not in text and "examples:" in text and f"pyquant {cmd}" in text.split("examples:")[1], cmd
        sp = parser._subparsers._group_actions[0].choices[cmd]
        undocumented = [a.option_strings or [a.dest] for a in sp._actions if not a.help]
        assert not undocumented, (cmd, undocumented)
