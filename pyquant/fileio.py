"""File input/output every command shares: atomic writes, output-path checks, strict JSON, safe arrays.

- :func:`atomic_write` writes a file through a temporary sibling and a rename (no half-written output);
- :func:`check_output_path` refuses, before any work, an output that cannot be written (missing or
  read-only directory, over-long name) or that resolves (after symlinks and hard links) to one of the
  inputs, to a file of an input directory, or onto a directory holding an input;
- :func:`dumps_strict_json` / :func:`loads_json` / :func:`load_json`: strict JSON (no NaN/Infinity;
  a non-finite float is written as ``null``, which the documents define as "infinite SNR"); a
  malformed, non-strict or too deeply nested file is an :class:`InputError` naming the file;
- :func:`load_npy` / :func:`load_npz`: ``.npy`` / ``.npz`` readers that check each array header
  (dtype, declared size against a bound) before allocating, refuse object arrays and ``.npz``
  members that are not ``.npy`` arrays, and turn every failure into one :class:`InputError` line.

The array size bound is ``max_bytes`` when given, else the ``PYQUANT_MAX_ALLOC`` environment
variable (bytes), else :data:`DEFAULT_MAX_BYTES`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np

from pyquant.errors import InputError

DEFAULT_MAX_BYTES = 1 << 30          # 1 GiB per array file
MAX_JSON_DEPTH = 64
# a temporary sibling is ``.<name>.<8 random>.tmp`` (+ ``.old`` for a directory swap)
_TMP_OVERHEAD = len(".") + len(".") + 8 + len(".tmp") + len(".old")


# --------------------------------------------------------------------------- writing


def atomic_write(path: str | os.PathLike, data: bytes | str, what: str = "output") -> None:
    """Write ``data`` (``str`` as UTF-8) to a temp file next to ``path`` and rename it over ``path``.

    On any failure nothing is left behind and an :class:`InputError` names ``path``."""
    p = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.absolute().parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
        tmp = None
    except OSError as e:
        raise InputError(f"{_short_path(p)}: cannot write {what}: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _short_path(p: Path, limit: int = 120) -> str:
    s = str(p)
    return s if len(s) <= limit else f"{s[:limit // 2]}...{s[-limit // 2:]}"


def _name_max(d: Path) -> int:
    while not d.is_dir() and d != d.parent:
        d = d.parent
    try:
        return int(os.pathconf(d, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _check_names(p: Path, what: str) -> None:
    """Over-long path components (and the temporary sibling's name) fail as one line."""
    limit = _name_max(p.absolute().parent)
    for part in p.absolute().parts[1:]:
        n = len(os.fsencode(part))
        extra = _TMP_OVERHEAD if part == p.name else 0
        if n + extra > limit:
            raise InputError(f"{_short_path(p)}: cannot write {what}: file name too long ({n} bytes; "
                             f"at most {limit - extra})")
    if len(os.fsencode(str(p.absolute()))) >= 4096:
        raise InputError(f"{_short_path(p)}: cannot write {what}: path too long")


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _resolve(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):         # a symlink loop, a name too long: compare as written
        return p.absolute()


def _conflict(out: Path, inp: Path, directory: bool, input_dir: bool) -> str | None:
    """Why writing ``out`` would overwrite input ``inp`` (both resolved), or None."""
    if _same(out, inp):
        return "it is an input"
    if input_dir and out.parent == inp:
        return f"it is inside the input directory {inp}"
    if directory and out in inp.parents:
        return f"it holds the input {inp}"
    return None


def check_input_paths(*paths: str | os.PathLike | None) -> None:
    """Refuse (one line) input names the file system cannot even look up (too long)."""
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        limit = _name_max(p.absolute().parent)
        if any(len(os.fsencode(part)) > limit for part in p.parts) or len(os.fsencode(str(p))) >= 4096:
            raise InputError(f"{_short_path(p)}: cannot read: file name too long")


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                      what: str = "output", directory: bool = False,
                      input_dirs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Fail early (:class:`InputError`) when ``path`` cannot or must not be written.

    ``directory``: the output is a directory replaced as a whole (its parent may be created);
    otherwise a file whose directory must exist and be writable. ``inputs`` (files) and
    ``input_dirs`` (directories, e.g. a model directory) are what the command reads: the output
    may not resolve (after symlinks, or as a hard link) to one of them or to a file of an input
    directory, nor (a directory output) contain an input. Over-long input names are refused too.
    """
    inputs, input_dirs = [i for i in inputs if i is not None], [i for i in input_dirs if i is not None]
    check_input_paths(*inputs, *input_dirs)
    p = Path(path)
    _check_names(p, what)
    out = _resolve(p)
    for i, is_dir in [(i, False) for i in inputs] + [(i, True) for i in input_dirs]:
        why = _conflict(out, _resolve(Path(i)), directory, is_dir)
        if why:
            raise InputError(f"{_short_path(p)}: refusing to write {what}: {why}")
    if directory:
        if p.exists() and not p.is_dir():
            raise InputError(f"{_short_path(p)}: cannot write {what}: it exists and is not a directory")
        return p
    parent = p.absolute().parent
    if not parent.is_dir():
        raise InputError(f"{_short_path(p)}: cannot write {what}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{_short_path(p)}: cannot write {what}: directory {parent} is not writable")
    if p.is_dir():
        raise InputError(f"{_short_path(p)}: cannot write {what}: it is a directory")
    return p


# --------------------------------------------------------------------------- JSON


def _plain(o):
    """JSON-ready copy: non-finite floats -> None, numpy scalars/arrays -> Python, keys -> str."""
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return _plain(o.tolist())
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    return o


def dumps_strict_json(obj, indent: int | None = 1) -> str:
    """Strict JSON text (``allow_nan=False``) ending in a newline; NaN/Inf floats become ``null``."""
    return json.dumps(_plain(obj), indent=indent, allow_nan=False) + "\n"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid strict JSON")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:40]} is out of the float range")
    return v


def _depth(doc) -> int:
    """Nesting depth of a parsed document (iterative: safe for any depth)."""
    best, stack = 0, [(doc, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            best = max(best, d)
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return best


def loads_json(data: bytes | str, where: str | os.PathLike, max_depth: int = MAX_JSON_DEPTH):
    """Parse strict JSON (no NaN/Infinity, nesting at most ``max_depth``); InputError naming ``where``."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not valid JSON: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON: {e}") from None
    except ValueError as e:
        raise InputError(f"{where}: not valid JSON: {e}") from None
    except RecursionError:
        raise InputError(f"{where}: not valid JSON: nested too deeply") from None
    if _depth(doc) > max_depth:
        raise InputError(f"{where}: not valid JSON: nested deeper than {max_depth} levels")
    return doc


def load_json(path: str | os.PathLike, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = 256 << 20):
    """Read and parse a strict JSON file (see :func:`loads_json`); InputError naming the file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a JSON file") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise InputError(f"{p}: JSON file larger than {max_bytes} bytes")
    return loads_json(data, p, max_depth)


# --------------------------------------------------------------------------- arrays


def max_array_bytes(max_bytes: int | None = None) -> int:
    """The array size bound: ``max_bytes``, else ``$PYQUANT_MAX_ALLOC``, else DEFAULT_MAX_BYTES."""
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get("PYQUANT_MAX_ALLOC")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise InputError(f"PYQUANT_MAX_ALLOC={env!r} is not a number of bytes") from None
    return DEFAULT_MAX_BYTES


def _read_header(f: IO[bytes], where: str, limit: int) -> tuple[tuple, np.dtype, int]:
    """Check an ``.npy`` header (magic, dtype, declared size); return ``(shape, dtype, nbytes)``."""
    fmt = np.lib.format
    try:
        major, minor = fmt.read_magic(f)
        if (major, minor) == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(f)
        else:
            shape, _, dtype = fmt.read_array_header_2_0(f)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, zlib.error, zipfile.BadZipFile) as e:
        raise InputError(f"{where}: not a valid .npy array ({_first_line(e)})") from None
    if dtype.hasobject:
        raise InputError(f"{where}: unsupported dtype object (pickled arrays are not read)")
    count = 1
    for s in shape:
        count *= int(s)
    nbytes = count * dtype.itemsize
    if nbytes > limit:
        raise InputError(f"{where}: declares shape {tuple(shape)} {dtype} = {nbytes} bytes, more than the "
                         f"limit of {limit} bytes (set PYQUANT_MAX_ALLOC to raise it)")
    return tuple(int(s) for s in shape), dtype, nbytes


def _read_array(f: IO[bytes], where: str, limit: int, size: int | None) -> np.ndarray:
    start = f.tell()
    shape, dtype, nbytes = _read_header(f, where, limit)
    if size is not None and size - f.tell() < nbytes:
        raise InputError(f"{where}: truncated: header declares {nbytes} data bytes, file holds "
                         f"{size - f.tell()}")
    f.seek(start)
    try:
        return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:
        raise InputError(f"{where}: corrupt or truncated array ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:160]


def load_npy(path: str | os.PathLike, max_bytes: int | None = None) -> np.ndarray:
    """Read one ``.npy`` array, its header checked before the data is allocated (see module doc)."""
    p = Path(path)
    limit = max_array_bytes(max_bytes)
    try:
        with open(p, "rb") as f:
            return _read_array(f, str(p), limit, os.fstat(f.fileno()).st_size)
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a .npy file") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror or e}") from None


def iter_npz_arrays(path: str | os.PathLike, names: Iterable[str] | None = None,
                    max_bytes: int | None = None, total: bool = False) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, array)`` for the members of an ``.npz`` in file order, one at a time.

    Only ``names`` when given. Every member must be an ``.npy`` array; each header is checked
    before its data is read. The size bound applies to each array, or with ``total`` to all of
    them together. Every failure is an :class:`InputError` naming the file (and the array)."""
    p = Path(path)
    limit = max_array_bytes(max_bytes)
    want = None if names is None else set(names)
    try:
        with zipfile.ZipFile(p) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise InputError(f"{p}: member {info.filename!r} is not a .npy array")
                key = info.filename[:-len(".npy")]
                if want is not None and key not in want:
                    continue
                with z.open(info) as f:                      # ZipExtFile can seek back
                    a = _read_array(f, f"{p}: array {key!r}", limit, info.file_size)
                if total:
                    limit -= a.nbytes
                yield key, a
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a .npz file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, EOFError,
            zlib.error, OSError) as e:
        raise InputError(f"{p}: not a valid .npz archive ({_first_line(e)})") from None


def load_npz(path: str | os.PathLike, names: Iterable[str] | None = None,
             max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """All arrays (or ``names``; absent ones are skipped) of an ``.npz`` as ``{name: array}``,
    checked as :func:`iter_npz_arrays` does, the bound applying to their total size."""
    return dict(iter_npz_arrays(path, names, max_bytes, total=True))

def is_npz(path: str | os.PathLike) -> bool:
    """True when ``path`` is (named or starts like) a zip archive, i.e. an ``.npz``."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        return True
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def read_array_file(path: str | os.PathLike, key: str = "X", what: str = "input",
                    max_bytes: int | None = None) -> np.ndarray:
    """One array from a ``.npy``, or array ``key`` of an ``.npz`` (InputError when absent)."""
    p = Path(path)
    if not is_npz(p):
        return load_npy(p, max_bytes)
    arrays = load_npz(p, [key], max_bytes)
    if key not in arrays:
        raise InputError(f"{p}: .npz {what} needs an array {key!r}")
    return arrays[key]
