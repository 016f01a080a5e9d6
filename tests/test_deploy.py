"""pyquant-deploy end to end against the real firmware (host build, C reference accelerator) on a
pty, through the fault link, and against scripted misbehaving boards for the error paths.

The expected outputs always come from pyquant.infer.infer_int (built on intmath.layer_int), an
implementation independent of the firmware and of the C reference model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fakeboard import FakeBoard
from pqmodels import make_cnn, make_mlp, random_input
from pyquant.infer import infer_int
from scripts import deploy
from scripts.faultlink import FaultConfig
from scripts.vboard import VBoard

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, mk in [("mlp", lambda p: make_mlp(p, seed=3, bits=(8, 6, 2))),
                     ("mlp4", lambda p: make_mlp(p, seed=4, dims=(40, 24, 10), bits=(4, 4))),
                     ("cnn", lambda p: make_cnn(p, seed=5)),
                     # 300 rows x 160 INT8 columns: more rows than MAX_ROWS and more bytes than
                     # WMEM_BYTES, so the firmware must tile it over rows
                     ("big", lambda p: make_mlp(p, seed=6, dims=(160, 300, 10), bits=(8, 8)))]:
        mdir = mk(d / name)
        x = random_input(mdir, 12, seed=7)
        xp = d / f"{name}_x.npy"
        np.save(xp, x)
        out[name] = (mdir, xp)
    return out


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.deploy", "--no-progress", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pyquant-deploy: error: ")
    return lines[0]


@pytest.mark.parametrize("name", ["mlp", "mlp4", "cnn", "big"])
def test_deploy_cref_exact(models, tmp_path: Path, name: str) -> None:
    mdir, xp = models[name]
    outp, js = tmp_path / "y.npy", tmp_path / "r.json"
    with VBoard("cref") as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--output", str(outp),
                    "--json", str(js))
    assert r.returncode == 0, r.stderr
    assert "PASS: outputs match the golden vectors" in r.stdout
    expect = infer_int(mdir, np.load(xp))
    assert np.array_equal(np.load(outp), expect)
    doc = json.loads(js.read_text())
    n_layers = len(json.loads((mdir / "model.json").read_text())["layers"])
    assert doc["match"] is True and len(doc["layer_cycles"]) == n_layers
    assert all(c > 0 for c in doc["layer_cycles"]) and doc["total_cycles"] == sum(doc["layer_cycles"])
    assert doc["hello"]["accel"] == "C reference"


def test_float_input_is_quantized_like_pyquant(models, tmp_path: Path) -> None:
    mdir, _ = models["cnn"]
    xf = np.random.default_rng(0).uniform(0, 1, size=(5, 1, 8, 8)).astype(np.float32)  # NCHW floats
    np.save(tmp_path / "xf.npy", xf)
    model = deploy.load_model(mdir)
    from pyquant.infer import quantize_input
    assert np.array_equal(deploy.quantize_input(xf, model, "x"), quantize_input(xf, 0.02, (1, 8, 8)))
    with VBoard("cref") as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(tmp_path / "xf.npy"))
    assert r.returncode == 0 and "PASS" in r.stdout, r.stderr


def test_wrong_result_is_reported_as_failure(models, tmp_path: Path) -> None:
    mdir, xp = models["mlp"]
    bad = infer_int(mdir, np.load(xp)).copy()
    bad[3, 2] ^= 1
    np.save(tmp_path / "bad.npy", bad)
    with VBoard("cref") as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--expected", str(tmp_path / "bad.npy"))
    assert r.returncode == 1
    assert "PASS" not in r.stdout and "differ from the golden vectors in 1 of 12 samples" in r.stderr


# ---- faults --------------------------------------------------------------------------------

def _check_faulty_run(r: subprocess.CompletedProcess, mdir: Path, xp: Path, outp: Path) -> None:
    """Either exact outputs reported as PASS, or a one-line error and no PASS: never a wrong success."""
    if r.returncode == 0:
        assert "PASS" in r.stdout
        assert np.array_equal(np.load(outp), infer_int(mdir, np.load(xp)))
    else:
        assert r.returncode == 2 and "PASS" not in r.stdout
        one_line_error(r)


@pytest.mark.parametrize("seed", [1, 2])
def test_one_percent_byte_errors(models, tmp_path: Path, seed: int) -> None:
    mdir, xp = models["mlp"]
    outp = tmp_path / "y.npy"
    with VBoard("cref", FaultConfig(rate=0.01, seed=seed)) as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--output", str(outp),
                    "--timeout", "0.2", "--json", str(tmp_path / "r.json"))
        stats = vb.link.stats
    assert stats.h2b.dropped + stats.h2b.flipped + stats.h2b.duplicated > 20  # faults really happened
    _check_faulty_run(r, mdir, xp, outp)
    if r.returncode == 0:
        assert json.loads((tmp_path / "r.json").read_text())["link"]["retries"] > 0


@pytest.mark.parametrize("kind", ["drop", "flip", "dup"])
def test_single_fault_kind(models, tmp_path: Path, kind: str) -> None:
    mdir, xp = models["cnn"]
    outp = tmp_path / "y.npy"
    with VBoard("cref", FaultConfig(rate=0.01, kinds=(kind,), seed=11)) as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--output", str(outp),
                    "--timeout", "0.2")
        assert getattr(vb.link.stats.h2b, {"drop": "dropped", "flip": "flipped", "dup": "duplicated"}[kind]) > 0
    _check_faulty_run(r, mdir, xp, outp)


def test_stall_is_waited_out(models, tmp_path: Path) -> None:
    mdir, xp = models["mlp"]
    with VBoard("cref", FaultConfig(stall_after=3000, stall_secs=1.5)) as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--timeout", "0.3", "--chunk", "1024")
        assert vb.link.stats.stalled
    assert r.returncode == 0 and "PASS" in r.stdout, r.stderr


def test_disconnect_then_resume(models, tmp_path: Path) -> None:
    mdir, xp = models["big"]
    total = deploy.load_model(mdir).total_bytes
    with VBoard("cref", FaultConfig(disconnect_after=total // 2)) as vb:
        r1 = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--chunk", "1024")
        assert vb.link.stats.disconnected
        assert r1.returncode == 2 and "disconnected" in one_line_error(r1)
        # reconnect straight to the board: the partial upload is resumed, not restarted
        js = tmp_path / "r.json"
        r2 = run_cli("--port", vb.board_path, "--model", str(mdir), "--input", str(xp), "--json", str(js))
    assert r2.returncode == 0 and "PASS" in r2.stdout, r2.stderr
    doc = json.loads(js.read_text())
    assert 0 < doc["resumed_from"] < total and doc["upload_payload"] == total - doc["resumed_from"]
    assert "resum" in r2.stdout + r2.stderr


@pytest.mark.parametrize("window", ["0", "300", str(deploy.WINDOW)])
def test_window_sizes_give_exact_outputs(models, tmp_path: Path, window: str) -> None:
    """Stop-and-wait (0), a window smaller than one frame, and the default window (frames in
    flight: tests/test_pqproto.py checks the window itself) all end with exact outputs."""
    mdir, xp = models["big"]
    js = tmp_path / "r.json"
    with VBoard("cref") as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--window", window,
                    "--fresh", "--json", str(js), "--output", str(tmp_path / "y.npy"))
    assert r.returncode == 0 and "PASS" in r.stdout, r.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), infer_int(mdir, np.load(xp)))
    assert json.loads(js.read_text())["upload_payload"] == deploy.load_model(mdir).total_bytes


def test_windowed_upload_falls_back_after_a_mid_upload_fault(models, tmp_path: Path) -> None:
    """Clean bytes first (HELLO, the meta and the first chunks go windowed), then byte flips: the
    windowed upload stops at the first NAK, STATUS tells what the board holds, and the rest
    goes stop-and-wait from there; the outputs are still exact."""
    mdir, xp = models["big"]
    outp = tmp_path / "y.npy"
    with VBoard("cref", FaultConfig(rate=0.003, kinds=("flip",), direction="h2b", skip_first=9000,
                                    seed=4)) as vb:
        # a generous margin: a slow machine must not turn the start into a timeout (the
        # windowed part would then end before its first answer, another path)
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--output", str(outp),
                    "--timeout", "1.0")
        assert vb.link.stats.h2b.flipped > 0
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    assert "continuing stop-and-wait from the board's STATUS" in r.stdout
    assert "resuming a partial upload" in r.stdout  # what the windowed part delivered is kept
    assert np.array_equal(np.load(outp), infer_int(mdir, np.load(xp)))


def test_fresh_redeploy_of_another_model(models) -> None:
    (m1, x1), (m2, x2) = models["mlp"], models["cnn"]
    with VBoard("cref") as vb:
        for m, x in [(m1, x1), (m2, x2), (m1, x1)]:
            r = run_cli("--port", vb.path, "--model", str(m), "--input", str(x))
            assert r.returncode == 0 and "PASS" in r.stdout, r.stderr


# ---- error paths ---------------------------------------------------------------------------

def test_no_device(models) -> None:
    mdir, xp = models["mlp"]
    r = run_cli("--port", "/dev/ttyUSB_nonexistent", "--model", str(mdir), "--input", str(xp))
    assert r.returncode == 2 and "no device at /dev/ttyUSB_nonexistent" in one_line_error(r)


@pytest.mark.parametrize("mode,needle", [
    ("garbage", "wrong device"),
    ("badmagic", "wrong device"),
    ("silent", "timeout: no answer to HELLO"),
    ("mute", "timeout: no answer to STATUS"),
    ("v2", "version mismatch"),
    ("evers", "version mismatch"),
    ("nak", "NAK storm"),
])
def test_board_errors(models, mode: str, needle: str) -> None:
    mdir, xp = models["mlp"]
    with FakeBoard(mode) as fb:
        r = run_cli("--port", fb.path, "--model", str(mdir), "--input", str(xp), "--timeout", "0.1",
                    "--retries", "3")
    assert r.returncode == 2
    assert needle in one_line_error(r)


def test_nak_storm_mid_upload(models) -> None:
    """A link so noisy that even the smallest frames never get through ends with a NAK-storm
    or timeout error, not a hang and not a success."""
    mdir, xp = models["mlp"]
    with VBoard("cref", FaultConfig(rate=0.3, kinds=("flip",), direction="h2b", skip_first=200, seed=1)) as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(xp), "--timeout", "0.1", "--retries", "3",
                    timeout=120)
    assert r.returncode == 2
    msg = one_line_error(r)
    assert "NAK storm" in msg or "timeout" in msg


def test_bad_model_and_input(models, tmp_path: Path) -> None:
    mdir, xp = models["mlp"]
    r = run_cli("--port", "/dev/null", "--model", str(tmp_path / "nope"), "--input", str(xp))
    assert r.returncode == 2 and "nope" in one_line_error(r)
    np.save(tmp_path / "x.npy", np.zeros((2, 7), np.int8))
    r = run_cli("--port", "/dev/null", "--model", str(mdir), "--input", str(tmp_path / "x.npy"))
    assert r.returncode == 2 and "x.npy" in one_line_error(r) and "does not fit" in r.stderr
    bad = tmp_path / "bad"
    os.system(f"cp -r {mdir} {bad}")
    lay = sorted(bad.glob("layer_01_*.bin"))[0]
    lay.write_bytes(lay.read_bytes()[:-1] + bytes([lay.read_bytes()[-1] ^ 0x40]))
    r = run_cli("--port", "/dev/null", "--model", str(bad), "--input", str(xp))
    assert r.returncode == 2 and lay.name in one_line_error(r)


def test_make_deploy_requires_port() -> None:
    # -o: never (re)run the venv setup from a test, even if pyproject.toml is newer than the stamp
    r = subprocess.run(["make", "-s", "-o", str(ROOT / ".venv" / ".stamp"), "deploy", "MODEL=x", "INPUT=y"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "PORT= is required" in r.stderr


def test_too_many_samples_for_the_board(models, tmp_path: Path) -> None:
    mdir, _ = models["cnn"]  # first feature map 8x8x8 = 512 B per sample; act_max 256 KiB
    np.save(tmp_path / "x.npy", random_input(mdir, 600, seed=2))
    with VBoard("cref") as vb:
        r = run_cli("--port", vb.path, "--model", str(mdir), "--input", str(tmp_path / "x.npy"))
    assert r.returncode == 2 and "at most 512 samples" in one_line_error(r)


def test_progress_bar_shows_bytes_rate_and_eta(models) -> None:
    """Without --no-progress the upload bar (stderr) ends with the full byte count, a rate and
    an ETA; stdout still carries the PASS line."""
    import re

    mdir, xp = models["mlp"]
    total = deploy.load_model(mdir).total_bytes + np.load(xp).size
    with VBoard("cref") as vb:
        r = subprocess.run([sys.executable, "-m", "scripts.deploy", "--port", vb.path, "--model", str(mdir),
                            "--input", str(xp)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                           env={**os.environ, "COLUMNS": "120"})
    assert r.returncode == 0 and "PASS" in r.stdout, r.stderr
    m = re.search(r"([\d.]+)/([\d.]+) (k?B) +[\d.]+ [kM]?B/s ETA \d+:\d\d:\d\d", r.stderr)
    assert m, r.stderr
    scale = 1000 if m.group(3) == "kB" else 1
    assert m.group(1) == m.group(2) and abs(float(m.group(2)) * scale - total) <= 0.05 * scale
