"""Rule 1 of the house: the engine never imports Textual; only the app shell and screens do."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "keybuzz_tui"
UI_SHELL = {"app.py"}


def engine_modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.relative_to(PKG).as_posix() not in UI_SHELL)


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
            if node.module.startswith("keybuzz_tui.screens") or node.module == "keybuzz_tui.app":
                roots.add("keybuzz_tui-ui")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_no_engine_module_imports_textual_or_the_ui():
    ui = {"textual", "rich", "keybuzz_tui-ui"}
    offenders = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & ui) for p in engine_modules() if imported_roots(p) & ui}
    assert offenders == {}, f"engine modules importing UI code: {offenders}"


def test_the_static_check_would_catch_an_offender(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from textual.app import App\n    return App\n")
    assert "textual" in imported_roots(bad)


def test_importing_every_engine_module_loads_no_textual():
    names = []
    for p in engine_modules():
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual',) or m.startswith('keybuzz_tui.screens'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr
