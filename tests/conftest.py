"""Shared fixtures for the pyquant tests.

``silero_vad_onnx``: the real ``silero_vad.onnx`` from the PyPI wheel ``silero-vad`` (MIT),
downloaded once with ``pip download`` into ``~/.cache/pyquant`` (or ``$PYQUANT_CACHE``) under a
file lock, so concurrent pytest-xdist workers share one download. Skips with the reason when
the package index cannot be reached.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SILERO_VERSION = "6.2.3"        # pinned for the facts asserted in tests/test_onnx_import.py
SILERO_MEMBER = "silero_vad/data/silero_vad.onnx"


def _cache_dir() -> Path:
    d = Path(os.environ.get("PYQUANT_CACHE", Path.home() / ".cache" / "pyquant"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def silero_vad_dir() -> Path:
    """Directory holding every ``.onnx`` of the silero-vad wheel (6 exports of the same model)."""
    cache = _cache_dir()
    target = cache / f"silero_vad-{SILERO_VERSION}"
    with open(cache / ".silero.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (target / "silero_vad.onnx").exists():
                wheel = cache / f"silero_vad-{SILERO_VERSION}-py3-none-any.whl"
                if not wheel.exists():
                    r = subprocess.run(
                        [sys.executable, "-m", "pip", "download", f"silero-vad=={SILERO_VERSION}", "--no-deps",
                         "--only-binary=:all:", "--retries", "1", "--timeout", "20", "-d", str(cache), "-q"],
                        capture_output=True, text=True, timeout=300)
                    if r.returncode != 0 or not wheel.exists():
                        pytest.skip(f"cannot download silero-vad=={SILERO_VERSION} from the package index: "
                                    f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                target.mkdir(exist_ok=True)
                with zipfile.ZipFile(wheel) as z:
                    members = [m for m in z.namelist() if m.startswith("silero_vad/data/") and m.endswith(".onnx")]
                    for m in sorted(members, key=lambda m: m.endswith("/silero_vad.onnx")):   # marker last
                        tmp = target / (Path(m).name + ".tmp")
                        tmp.write_bytes(z.read(m))
                        os.replace(tmp, target / Path(m).name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


@pytest.fixture(scope="session")
def silero_vad_onnx(silero_vad_dir) -> Path:
    """The main ``silero_vad.onnx`` (If subgraphs for 16 kHz / 8 kHz, Constant-node weights)."""
    return silero_vad_dir / SILERO_MEMBER.rsplit("/", 1)[1]


def build_small_onnx(path: Path, seed: int = 0, zero_layer: bool = False) -> Path:
    """A small Conv + Relu + Flatten + Gemm + Relu + Gemm model (weights in initializers)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    wc = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    w1 = rng.standard_normal((16, 4 * 6 * 6)).astype(np.float32)
    w2 = (np.zeros((10, 16)) if zero_layer else rng.standard_normal((10, 16))).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], name="conv1"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "fc1.w"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("Gemm", ["hr", "fc2.w"], ["y"], name="fc2", transB=1)]
    g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                          [numpy_helper.from_array(wc, "conv.w"),
                           numpy_helper.from_array(np.zeros(4, np.float32), "conv.b"),
                           numpy_helper.from_array(w1, "fc1.w"), numpy_helper.from_array(w2, "fc2.w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.fixture
def small_onnx(tmp_path) -> Path:
    return build_small_onnx(tmp_path / "small.onnx")


@pytest.fixture
def small_npz(tmp_path) -> Path:
    import numpy as np

    rng = np.random.default_rng(1)
    p = tmp_path / "small.npz"
    np.savez(p, dense=rng.standard_normal((8, 5)).astype(np.float32),
             conv=rng.standard_normal((3, 2, 3, 3)), zero=np.zeros((4, 4), np.float32),
             ternary=np.array([[0.5, -0.5, 0.0], [0.5, 0.5, -0.5]], np.float16))
    return p
