"""Starting sandbox worlds in tests: a free loopback network each, fast clocks, clean teardown."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keybuzz_tui.sandbox.runtime import Sandbox, free_net

TEST_SPEED = 25.0


def _start_net() -> int:
    """Spread parallel runs (xdist workers, several test runs on one machine) over the nets."""
    import random

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    try:
        idx = int(worker.removeprefix("gw"))
    except ValueError:
        idx = 0
    return 1 + (idx * 61 + random.randrange(250)) % 250


def start(state_dir: Path, scenario: str = "healthy", **kw: Any) -> Sandbox:
    kw.setdefault("speed", TEST_SPEED)
    return Sandbox(state_dir, scenario, net=free_net(_start_net()), **kw).start()


def raw(sb: Sandbox, method: str, path: str, *, body: bytes | str | None = None, headers: dict[str, str] | None = None, token: str | None = None, timeout: float = 10.0, preload: bool = True):
    """A raw HTTPS request to the sandbox's Kubernetes API (for what typed clients cannot send)."""
    import urllib3

    http = urllib3.PoolManager(ca_certs=str(sb.ca_path))
    h = {"Authorization": f"Bearer {token or sb.admin_token}", "Accept": "application/json"}
    h.update(headers or {})
    return http.request(method, sb.kube_url + path, body=body, headers=h, timeout=timeout, preload_content=preload, retries=False)
