"""The remediation of a failed headless rollout names `keybuzz-tui rollback APP` for each app that
has an earlier revision, with the options that point it at the same platform (pure functions; the
end-to-end run is in test_cli_headless.py)."""

from __future__ import annotations

import argparse

from keybuzz_tui.apply_flow import rollback_advice, target_flags
from keybuzz_tui.engine.rollout import Revision


def rev(n: int, image: str) -> Revision:
    return Revision(revision=n, name=f"keybuzz-api-{n}", images=(image,), change_cause="", created="", current=False, config_hash="", diff=())


def test_names_the_command_per_app_and_says_when_there_is_nothing_to_roll_back_to():
    flags = target_flags(argparse.Namespace(config="/srv/k b/keybuzz.yaml", context=None, sandbox="/tmp/sb"))
    assert flags == " --config '/srv/k b/keybuzz.yaml' --sandbox /tmp/sb"
    text = rollback_advice({"keybuzz-api": rev(1, "ghcr.io/keybuzz/api:1.4.1"), "keybuzz-front": None}, flags)
    assert text.startswith("fix the cause above, then run apply again (it resumes)")
    assert "`keybuzz-tui rollback keybuzz-api --config '/srv/k b/keybuzz.yaml' --sandbox /tmp/sb` (to revision 1: ghcr.io/keybuzz/api:1.4.1)" in text
    assert "keybuzz-front: nothing to roll back to, this was the first rollout" in text
    assert "wizard" not in text
    first = rollback_advice({"keybuzz-api": None, "keybuzz-front": None})
    assert "go back" not in first and "keybuzz-api, keybuzz-front: nothing to roll back to" in first
