"""Suite-wide fixtures: the loopback-only network guard runs around every test, in this process and
in every Python process a test starts (see support/netguard.py)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

if "keybuzz_netguard" in sys.modules:  # this pytest was itself started by a guarded test: one guard
    sys.modules["support.netguard"] = sys.modules["keybuzz_netguard"]
from support import netguard  # noqa: E402

netguard.install()


@pytest.fixture(scope="session")
def _children() -> netguard.ChildLog:
    # set up in the process that runs the tests (an xdist worker, not the controller that starts
    # the workers): its children inherit the guard, the workers themselves keep this module's
    return netguard.guard_children(Path(tempfile.mkdtemp(prefix="keybuzz-netguard-")) / "children.log")


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest, _children: netguard.ChildLog):
    netguard.GUARD.take()
    _children.take()
    yield
    violations = netguard.GUARD.take() + [f"in a child process: {v}" for v in _children.take()]
    if violations and not request.node.get_closest_marker("netguard_selftest"):
        pytest.fail("network rule broken (only 127.0.0.0/8 and ::1 are allowed):\n  " + "\n  ".join(violations))


@pytest.fixture(autouse=True)
def _no_outside_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's KUBECONFIG (a real cluster) never reaches a test: tests that want one set it."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
