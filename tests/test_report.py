"""pyquant report: one self-contained HTML page that headless Chromium renders."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pyquant.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


def _chromium() -> str | None:
    for c in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(c)
        if p:
            return p
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    t = tmp_path_factory.mktemp("report")
    d = t / "cnn"
    assert main(["convert", str(EX / "digits_cnn.onnx"), "--calib", str(EX / "digits_calib.npy"),
                 "--target", "accuracy-drop=0.01", "-o", str(d), "-q"]) == 0
    assert main(["report", str(d), "-o", str(t / "report.html"), "-q"]) == 0
    return t / "report.html", d


def test_report_is_self_contained(report):
    html_path, d = report
    text = html_path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # nothing is loaded from elsewhere: no scripts, links, remote URLs; every src is a data: URI
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text.lower())
    srcs = re.findall(r"src='([^']*)'", text) + re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        png = base64.b64decode(s.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # the content: per-layer SNR per width, chosen widths, memory, trade-off
    for needle in ("SNR@8", "SNR@2", "conv1", "conv2", "fc", "saved vs all-INT8", "bits per weight",
                   "Accuracy / bits trade-off", "all-INT4", "accuracy-drop=0.01"):
        assert needle in text, needle
    import json
    info = json.loads((d / "model.json").read_text())
    chosen = [ly["bits"] for ly in info["layers"]]
    assert text.count("class='chosen'") == len(chosen)


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report, tmp_path):
    html_path, _ = report
    exe = _chromium()
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1800"]
    dom = subprocess.run(flags + ["--dump-dom", html_path.as_uri()], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "pyquant report" in dom.stdout and dom.stdout.count("<img") == 2 and "<table" in dom.stdout
    shot = tmp_path / "shot.png"
    r = subprocess.run(flags + [f"--screenshot={shot}", html_path.as_uri()], capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    import matplotlib.image as mpimg
    img = mpimg.imread(str(shot))
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    # the page is not blank: a good share of non-white pixels, and colour (the plots)
    rgb = img[..., :3]
    nonwhite = np.mean(rgb.min(axis=-1) < 0.9)
    colourful = np.mean((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.3)
    assert nonwhite > 0.02 and colourful > 0.001


def test_report_errors(tmp_path, capsys):
    rc = main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "nope" in err and len(err.splitlines()) == 1 and not (tmp_path / "r.html").exists()
    # an analysis-only directory still gets a report (no trade-off curve)
    assert main(["convert", str(EX / "digits_mlp.onnx"), "-o", str(tmp_path / "plain"), "-q"]) == 0
    assert main(["report", str(tmp_path / "plain"), "-o", str(tmp_path / "p.html"), "-q"]) == 0
    assert "Not available" in (tmp_path / "p.html").read_text()


def test_report_with_evaluate_json(tmp_path, capsys):
    """``report --eval EVAL.json``: the trade-off table shows exactly the evaluate plans and
    uniform widths with their accuracies; a file that is not an evaluate document is an error."""
    import json

    d, ev = tmp_path / "mlp", tmp_path / "eval.json"
    assert main(["convert", str(EX / "digits_mlp.onnx"), "-o", str(d), "-q"]) == 0      # analysis only
    assert main(["evaluate", str(EX / "digits_mlp.onnx"), "--json", str(ev), "-q"]) == 0
    assert main(["report", str(d), "-o", str(tmp_path / "r.html"), "--eval", str(ev), "-q"]) == 0
    text = (tmp_path / "r.html").read_text()
    doc = json.loads(ev.read_text())
    assert "Not available" not in text and text.count("<img") == 2
    assert f"float accuracy {100 * doc['float_accuracy']:.2f} %" in text
    for p in doc["plans"] + doc["uniform"]:
        row = re.search(rf"<td class='l'>{re.escape(p['name'])}</td>.*?</tr>", text)
        assert row and f"{100 * p['integer_accuracy']:.2f} %" in row.group(0), p["name"]
    (tmp_path / "bad.json").write_text('{"plans": 3}')
    rc = main(["report", str(d), "-o", str(tmp_path / "r2.html"), "--eval", str(tmp_path / "bad.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "bad.json" in err and len(err.splitlines()) == 1 and not (tmp_path / "r2.html").exists()
