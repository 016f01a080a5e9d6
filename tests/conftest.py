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
def silero_vad_onnx() -> Path:
    cache = _cache_dir()
    target = cache / f"silero_vad-{SILERO_VERSION}.onnx"
    with open(cache / ".silero.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not target.exists():
                wheel = cache / f"silero_vad-{SILERO_VERSION}-py3-none-any.whl"
                if not wheel.exists():
                    r = subprocess.run(
                        [sys.executable, "-m", "pip", "download", f"silero-vad=={SILERO_VERSION}", "--no-deps",
                         "--only-binary=:all:", "-d", str(cache), "-q"],
                        capture_output=True, text=True, timeout=300)
                    if r.returncode != 0 or not wheel.exists():
                        pytest.skip(f"cannot download silero-vad=={SILERO_VERSION} from the package index: "
                                    f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                with zipfile.ZipFile(wheel) as z:
                    data = z.read(SILERO_MEMBER)
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
