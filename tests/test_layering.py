"""Layering of the package, checked on the source (AST, no imports executed):

- ``pyquant/commands/*`` (parse arguments, call the library, print) never import each other;
- the library (every other module of ``pyquant/`` but the dispatcher ``pyquant/cli.py``) never
  imports ``pyquant.commands``;
- the commands reach ``pyquant/host/*`` only through the library, never by importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pyquant"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved, plus
    string constants naming a ``pyquant`` module (``importlib.import_module("pyquant....")``)."""
    mod = _module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]   # from pkg import module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(f"{root.name}."):
            out.append((node.lineno, node.value))
    return out


def _within(name: str, pkg: str) -> bool:
    return name == pkg or name.startswith(pkg + ".")


def violations(root: Path) -> list[str]:
    """Every import breaking the rules of the module doc, as ``file:line: message``."""
    top = root.name
    commands, host = f"{top}.commands", f"{top}.host"
    bad = []
    for path in sorted(root.rglob("*.py")):
        mod = _module_name(path, root)
        rel = path.relative_to(root.parent)
        seen = set()
        for line, name in _imports(path, root):
            if line in seen:
                continue
            if _within(mod, commands) and mod != commands:
                if _within(name, commands) and name != commands:
                    bad.append(f"{rel}:{line}: command {mod} imports command {name}")
                elif _within(name, host):
                    bad.append(f"{rel}:{line}: command {mod} imports {name} (use the library)")
            elif mod != f"{top}.cli" and _within(name, commands):
                bad.append(f"{rel}:{line}: library module {mod} imports {name}")
            if bad and bad[-1].startswith(f"{rel}:{line}:"):
                seen.add(line)          # one message per import statement
    return bad


def test_pyquant_layering():
    assert violations(PKG) == []


def test_the_check_finds_each_kind_of_violation(tmp_path):
    """The checker itself, on a small package breaking each rule once (and a clean one)."""
    root = tmp_path / "pkg"
    (root / "commands").mkdir(parents=True)
    (root / "host").mkdir()
    for f in ("__init__.py", "commands/__init__.py", "host/__init__.py", "host/link.py", "lib.py", "cli.py"):
        (root / f).write_text("")
    (root / "cli.py").write_text("import importlib\nimportlib.import_module('pkg.commands.a')\n")
    (root / "commands" / "a.py").write_text("from pkg.lib import x\nfrom pkg.fileio import atomic_write\n")
    assert violations(root) == []
    (root / "commands" / "b.py").write_text("from . import a\nfrom .a import run\nimport pkg.commands.a\n"
                                            "from pkg.host.link import Link\n")
    (root / "lib.py").write_text("def f():\n    from pkg.commands import a\n")
    (root / "host" / "link.py").write_text("import importlib\nm = importlib.import_module('pkg.commands.b')\n")
    got = violations(root)
    assert sum("command pkg.commands.b imports command pkg.commands.a" in v for v in got) == 3, got
    assert any("imports pkg.host.link" in v for v in got), got
    assert any(v.startswith("pkg/lib.py:2: library module pkg.lib imports pkg.commands") for v in got), got
    assert any(v.startswith("pkg/host/link.py:2:") for v in got), got
