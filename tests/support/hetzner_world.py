"""A sandbox Hetzner API on a background thread, for tests that drive it with the sync hcloud client.

The state and the aiohttp app live on their own asyncio loop (as in the real sandbox); tests talk
to 127.0.0.1:<ephemeral> over HTTP, and use `world.call(fn, *args)` to run code on that loop
(hooks like set_target_health, or reading the state without racing it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from typing import Any

import hcloud
from aiohttp import web

from keybuzz_tui.sandbox.clock import Clock
from keybuzz_tui.sandbox.hetzner.api import build_app
from keybuzz_tui.sandbox.hetzner.seeds import (
    HetznerSettings,
    NetworkSeed,
    ServerSeed,
    ZoneSeed,
    keybuzz_seeds,
)
from keybuzz_tui.sandbox.hetzner.state import HetznerState
from keybuzz_tui.sandbox.tls import SandboxCA

_CA: SandboxCA | None = None


def shared_ca() -> SandboxCA:
    """One CA per test session: creating one costs a key generation."""
    global _CA
    if _CA is None:
        _CA = SandboxCA()
    return _CA


def public_pool(prefix: str = "127.0.30") -> Iterator[str]:
    for i in range(1, 255):
        yield f"{prefix}.{i}"


class HetznerWorld:
    def __init__(
        self,
        *,
        settings: HetznerSettings | None = None,
        speed: float = 50.0,
        servers: list[ServerSeed] | None = None,
        network: NetworkSeed | None = None,
        zones: list[ZoneSeed] | None = None,
    ) -> None:
        d_servers, d_network, d_zones = keybuzz_seeds()
        self.settings = settings or HetznerSettings()
        self._seeds = (
            servers if servers is not None else d_servers,
            network or d_network,
            zones if zones is not None else d_zones,
        )
        self.speed = speed
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hetzner-sandbox", daemon=True)
        self._runner: web.AppRunner | None = None
        self.state: HetznerState
        self.port = 0
        self.events: list[tuple[str, str, int]] = []
        self.dns: Any = None  # keybuzz_tui.sandbox.dns.DNSServer, once start_dns() ran

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> HetznerWorld:
        self._thread.start()
        self.call(self._start)
        return self

    async def _start(self) -> None:
        servers, network, zones = self._seeds
        self.state = HetznerState(
            Clock(self.speed),
            shared_ca(),
            servers=servers,
            network=network,
            zones=zones,
            settings=self.settings,
            public_ip_pool=public_pool(),
        )
        self.state.subscribe(lambda e, t, i: self.events.append((e, t, i)))
        self._runner = web.AppRunner(build_app(self.state), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        async def _stop() -> None:
            if self.dns is not None:
                await self.dns.stop()
            self.state.shutdown()
            if self._runner is not None:
                await self._runner.cleanup()

        try:
            self.call(_stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()

    def start_dns(self, host: str = "127.0.0.1") -> tuple[str, int]:
        """Serve the world's published zones with the sandbox's authoritative DNS server (as the
        runtime does) on host and a free port; returns its (host, port)."""
        from keybuzz_tui.sandbox.dns import DNSServer

        if self.dns is None:
            server = DNSServer(self.state.dns_snapshot, host, 0)
            self.call(server.start)
            self.dns = server
        return self.dns.address

    # ---- helpers ---------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        """Run fn(*args) (sync or async) on the sandbox loop and return its result."""

        async def runner() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        fut: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        return fut.result(timeout)

    def client(self, token: str | None = None, **kwargs: Any) -> hcloud.Client:
        kwargs.setdefault("poll_interval", 0.01)
        kwargs.setdefault("poll_max_retries", 2000)
        kwargs.setdefault("timeout", 10)
        client = hcloud.Client(token or self.settings.token, api_endpoint=self.endpoint, **kwargs)
        client._client._session.trust_env = False  # never route loopback through a proxy
        client._client._retry_interval_func = lambda retries: 0.0
        return client

    def url(self, path: str) -> str:
        return self.endpoint + path

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.settings.token}"}
