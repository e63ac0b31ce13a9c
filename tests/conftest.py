"""Suite-wide fixtures: the loopback-only network guard runs around every test, in this process and
in every Python process a test starts (see support/netguard.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from support import netguard

netguard.install()
_children = netguard.guard_children(Path(tempfile.mkdtemp(prefix="keybuzz-netguard-")) / f"children-{os.getpid()}.log")


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest):
    netguard.GUARD.take()
    _children.take()
    yield
    violations = netguard.GUARD.take() + [f"in a child process: {v}" for v in _children.take()]
    if violations and not request.node.get_closest_marker("netguard_selftest"):
        pytest.fail("network rule broken (only 127.0.0.0/8 and ::1 are allowed):\n  " + "\n  ".join(violations))
