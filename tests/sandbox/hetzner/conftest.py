"""Fixtures for the Hetzner sandbox tests: a running world and hcloud clients against it."""

from __future__ import annotations

from collections.abc import Iterator

import hcloud
import pytest
import requests
from support.hetzner_world import HetznerWorld


@pytest.fixture
def world() -> Iterator[HetznerWorld]:
    w = HetznerWorld().start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def client(world: HetznerWorld) -> hcloud.Client:
    return world.client()


@pytest.fixture
def http(world: HetznerWorld) -> Iterator[requests.Session]:
    """A raw HTTP session with the read-write token (for what hcloud cannot send)."""
    s = requests.Session()
    s.trust_env = False
    s.headers.update(world.headers())
    yield s
    s.close()
