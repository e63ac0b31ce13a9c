"""Fixtures for tests that drive a running sandbox with the real clients."""

from __future__ import annotations

import pytest
from support import sandboxes


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    sb = sandboxes.start(tmp_path_factory.mktemp("sandbox"))
    yield sb
    sb.stop()


@pytest.fixture
def sandbox_factory(tmp_path):
    started = []

    def make(scenario: str = "healthy", **kw):
        sb = sandboxes.start(tmp_path / f"sb{len(started)}", scenario, **kw)
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()
