"""Suite-wide fixtures: the loopback-only network guard runs around every test."""

from __future__ import annotations

import pytest
from support import netguard

netguard.install()


@pytest.fixture(autouse=True)
def _loopback_only(request: pytest.FixtureRequest):
    netguard.GUARD.take()
    yield
    violations = netguard.GUARD.take()
    if violations and not request.node.get_closest_marker("netguard_selftest"):
        pytest.fail("network rule broken (only 127.0.0.0/8 and ::1 are allowed):\n  " + "\n  ".join(violations))
