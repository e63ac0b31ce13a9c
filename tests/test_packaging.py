"""The card's layout ships as one package: keybuzz_tui, with screens/ and assets/ inside it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_in_the_tree_is_declared_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for prefix, folder in dirs.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            name = ".".join([prefix, *rel.parts]) if rel.parts else prefix
            # a sub-folder with its own package-dir mapping is found under that mapping
            if any(name != p and name.startswith(p + ".") and dirs[p] != folder for p in dirs):
                continue
            found.add(name)
    assert found <= declared, f"packages missing from pyproject: {sorted(found - declared)}"


def test_screens_and_assets_are_installed_inside_the_package_only():
    code = (
        "import importlib.util, keybuzz_tui.screens, keybuzz_tui.assets\n"
        "assert importlib.util.find_spec('screens') is None\n"
        "assert importlib.util.find_spec('assets') is None\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr


def test_assets_are_readable_through_importlib_resources():
    names = {p.name for p in files("keybuzz_tui.assets.scenarios").iterdir()}
    assert "healthy.yaml" in names


def test_version_and_help_from_the_installed_entry_point():
    exe = Path(sys.executable).with_name("keybuzz-tui")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    import keybuzz_tui

    assert keybuzz_tui.__version__ in out
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "sandbox" in help_text and "usage:" in help_text
