"""Where keybuzz-tui keeps its files (platformdirs), per cluster profile."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "keybuzz-tui"


def state_dir(profile: str) -> Path:
    """Journal and reports of one profile. KEYBUZZ_STATE_DIR overrides (tests, CI, containers)."""
    base = os.environ.get("KEYBUZZ_STATE_DIR")
    root = Path(base) if base else Path(platformdirs.user_state_dir(APP))
    return root / profile


def config_path() -> Path:
    """The default keybuzz.yaml: ./keybuzz.yaml if present, else the user config dir's."""
    local = Path("keybuzz.yaml")
    if local.exists():
        return local
    return Path(platformdirs.user_config_dir(APP)) / "keybuzz.yaml"


def journal_path(profile: str) -> Path:
    return state_dir(profile) / "journal.jsonl"
