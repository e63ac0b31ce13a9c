"""The sandbox world as a running thing: one event loop thread, every server, the files clients
need (kubeconfig, ca.pem, hcloud.env, sandbox.json), and a way to reach in (`call`).

`with Sandbox(state_dir) as sb:` is what tests and the demo use; `keybuzz-tui sandbox` runs the
same object until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import errno
import json
import logging
import os
import secrets
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .. import __version__
from .addresses import Addresses
from .clock import Clock
from .kube import openapi
from .kube.auth import Authorizer, User, rule_from_dict
from .kube.cluster import KubeCluster
from .kube.server import Faults, KubeServer
from .scenarios import Scenario, load
from .tls import SandboxCA

log = logging.getLogger("keybuzz.sandbox")
T = TypeVar("T")

CLUSTER_NAME = "keybuzz-sandbox"


def _forget_route_handlers() -> None:
    """Drop aiohttp's memo of route handlers with their middlewares.

    aiohttp keeps each (handler, apps) pair it has served in a module-level lru_cache of 1024
    entries. Our handlers are bound methods of the world, so a stopped world (every test, every
    scenario switch of the demo) stayed in memory until 1024 newer pairs pushed it out. Clearing
    it costs the worlds still running one rebuild per route on their next request. The memo is
    aiohttp's private name: if a release renames it, nothing breaks here (only the leak returns,
    and tests/sandbox/test_world_memory.py says so).
    """
    from aiohttp import web_app

    clear = getattr(getattr(web_app, "_cached_build_middleware", None), "cache_clear", None)
    if callable(clear):
        clear()


class SandboxError(RuntimeError):
    pass


def _version_info(sc: Scenario) -> dict[str, Any]:
    v = sc.k8s_version.lstrip("v")
    major, minor = v.split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": sc.k8s_version,
        "gitCommit": "8d0ee1ee3d1d53bcc1d1bd0a8a2d6a1a2b0f6e2f",
        "gitTreeState": "clean",
        "buildDate": "2025-02-13T00:00:00Z",
        "goVersion": "go1.22.12",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


_RESERVATIONS: dict[int, socket.socket] = {}
_IN_USE: set[int] = set()  # nets a Sandbox of this process runs on


def _reserve(net: int) -> bool:
    """Hold 127.NET.255.254:65000 for as long as this process uses the net: a cross-process
    mutex, so two sandboxes (two test runs, a demo and a test) never pick the same addresses."""
    if net in _RESERVATIONS:
        return False
    s = socket.socket()
    try:
        s.bind((f"127.{net}.255.254", 65000))
        s.listen(1)
    except OSError:
        s.close()
        return False
    _RESERVATIONS[net] = s
    return True


def release_net(net: int) -> None:
    s = _RESERVATIONS.pop(net, None)
    if s is not None:
        s.close()


def free_net(start: int = 1) -> int:
    """A loopback /16 no other sandbox holds, reserved until release_net (Sandbox.stop does it)."""
    for net in list(range(start, 255)) + list(range(1, start)):
        if not _reserve(net):
            continue
        with socket.socket() as s:
            try:
                s.bind((f"127.{net}.10.100", 6443))
            except OSError:
                release_net(net)
                continue
        return net
    raise SandboxError("no free loopback network for a sandbox (127.1-254.x.x all taken)")


class Sandbox:
    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        scenario: str | Scenario = "healthy",
        *,
        workers: int | None = None,
        servers: int | None = None,
        net: int | None = 0,
        speed: float | None = None,
        api_port: int = 6443,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load(scenario, workers=workers, servers=servers)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="keybuzz-sandbox-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        self.net = free_net() if net is None else net
        if self.net in _IN_USE or (self.net not in _RESERVATIONS and not _reserve(self.net)):
            raise SandboxError(
                f"loopback network 127.{self.net}.x.x is in use by another sandbox; stop it or pick another with --net"
            )
        _IN_USE.add(self.net)
        self.addresses = Addresses(self.net, self.scenario.servers, self.scenario.workers)
        self.clock = Clock(speed if speed is not None else self.scenario.timing.speed)
        self.ca = SandboxCA()
        self.admin_token = secrets.token_urlsafe(32)
        self.api_port = api_port
        self.cluster: KubeCluster | None = None
        self.kube_server: KubeServer | None = None
        self.kube_url = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._stopping: list[Callable[[], Any]] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.extras: dict[str, Any] = {}
        self.dataplane: Any = None  # keybuzz_tui.sandbox.dataplane.DataPlane, set in _astart
        self.hetzner: Any = None  # keybuzz_tui.sandbox.hetzner.HetznerState
        self.lb_plane: Any = None
        self.dns: Any = None
        self.hcloud_token = ""
        self.hcloud_endpoint = ""

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> Sandbox:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{self.net}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self.stop()
            raise SandboxError(str(self._error)) from self._error
        self._write_files()
        if self.scenario.install:  # the Hetzner side of a KeyBuzz installed earlier (scenario outage)
            from .preinstall import preinstall

            try:
                preinstall(self)
            except BaseException:
                self.stop()
                raise
        return self

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._astart())
        except BaseException as e:  # reported to start()
            self._error = e
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._astop())
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._astop())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _astart(self) -> None:
        sc = self.scenario
        # the generated OpenAPI documents take ~0.5 s to build once: not on the serving loop
        await asyncio.get_running_loop().run_in_executor(None, openapi.document_paths)
        cluster = KubeCluster(sc, self.addresses, self.clock)
        self.cluster = cluster
        # the data plane must be the kubelet's host network before bootstrap starts any pod
        from .dataplane import start_dataplane

        self.dataplane = await start_dataplane(self)
        self._stopping.append(self.dataplane.stop)
        cluster.bootstrap()
        cluster.start()
        users = [User("system:admin", self.admin_token, ("system:masters", "system:authenticated"))]
        for u in sc.users:
            users.append(
                User(
                    str(u["name"]),
                    str(u.get("token") or secrets.token_urlsafe(24)),
                    tuple(u.get("groups") or ("system:authenticated",)),
                    tuple(rule_from_dict(r) for r in u.get("rules") or []),
                )
            )
        self.users = users
        faults = Faults(**{k: v for k, v in sc.faults.items() if k in Faults.__dataclass_fields__ and k != "rand"})
        host = self.addresses.api_host
        server = KubeServer(
            cluster.api,
            Authorizer(users),
            _version_info(sc),
            server_address=f"{host}:{self.api_port}",
            logs=cluster.kubelet,
            faults=faults,
        )
        self.kube_server = server
        ctx = self.ca.server_context(host, "localhost", "127.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
        port = await self._serve(server.app(), host, self.api_port, ctx)
        self.kube_url = f"https://{host}:{port}"
        self._stopping.append(server.shutdown)
        await self._start_cloud()

    async def _start_cloud(self) -> None:
        """The Hetzner half: API, Load Balancer data plane, authoritative DNS."""
        from . import cloud
        from .dns import DNSServer
        from .hetzner import HetznerState, build_app
        from .lbplane import LoadBalancerPlane

        seeds = cloud.seeds(self.scenario, self.addresses)
        state = HetznerState(
            self.clock, self.ca, servers=seeds.servers, network=seeds.network, zones=seeds.zones,
            settings=seeds.settings, public_ip_pool=cloud.lb_ip_pool(self.addresses),
        )
        self.hetzner = state
        self.hcloud_token = seeds.token
        self._stopping.append(state.shutdown)
        port = await self._serve(build_app(state), self.addresses.hetzner_host, 0, None)
        self.hcloud_endpoint = f"http://{self.addresses.hetzner_host}:{port}/v1"
        self.extras["hetzner"] = cloud.info(seeds, self.hcloud_endpoint)

        def publish(plane: LoadBalancerPlane) -> None:
            self.extras["load_balancers"] = plane.snapshot()
            if self._ready.is_set():
                self._write_info()

        plane = LoadBalancerPlane(state, self.clock, on_change=publish)
        await plane.start()
        self.lb_plane = plane
        self.extras["load_balancers"] = plane.snapshot()
        self._stopping.append(plane.stop)

        dns_server = None
        for dns_port in (53, 10053, 0):
            candidate = DNSServer(state.dns_snapshot, self.addresses.dns_host, dns_port)
            try:
                await candidate.start()
            except OSError:
                continue
            dns_server = candidate
            break
        if dns_server is None:
            raise SandboxError(f"cannot serve DNS on {self.addresses.dns_host}")
        self.dns = dns_server
        self._stopping.append(dns_server.stop)
        host, dport = dns_server.address
        self.extras["dns"] = {"server": host, "port": dport, "zones": [z.name for z in seeds.zones]}

    async def _serve(self, app: web.Application, host: str, port: int, ssl_ctx: ssl.SSLContext | None) -> int:
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        try:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx, reuse_address=True)
            await site.start()
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EACCES) or port == 0:
                raise
            site = web.TCPSite(runner, host, 0, ssl_context=ssl_ctx, reuse_address=True)
            await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def _astop(self) -> None:
        for fn in reversed(self._stopping):
            with contextlib.suppress(Exception):
                res = fn()
                if asyncio.iscoroutine(res):
                    await res
        self._stopping.clear()
        for r in reversed(self._runners):
            with contextlib.suppress(Exception):
                await r.cleanup()
        self._runners.clear()
        if self.cluster is not None:
            await self.cluster.stop()
        _forget_route_handlers()

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=15)
        self._thread = None
        if self.net in _IN_USE:
            _IN_USE.discard(self.net)
            release_net(self.net)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- reaching in -------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0, **kwargs: Any) -> T:
        """Run fn on the sandbox loop (awaiting it if it is a coroutine function) and return its result."""
        if self.loop is None:
            raise SandboxError("the sandbox is not running")

        async def runner() -> T:
            res = fn(*args, **kwargs)
            if asyncio.iscoroutine(res):
                res = await res
            return res  # type: ignore[no-any-return]

        fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        return fut.result(timeout)

    # --- files for clients -------------------------------------------------------------------

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "ca.pem"

    @property
    def info_path(self) -> Path:
        return self.state_dir / "sandbox.json"

    def kubeconfig(self) -> dict[str, Any]:
        ca_b64 = base64.b64encode(self.ca.cert_pem.encode()).decode()
        users = [{"name": "keybuzz-admin", "user": {"token": self.admin_token}}]
        contexts = [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": "keybuzz-admin", "namespace": "default"}}]
        for u in self.users[1:]:
            users.append({"name": u.name, "user": {"token": u.token}})
            contexts.append({"name": f"{CLUSTER_NAME}-{u.name}", "context": {"cluster": CLUSTER_NAME, "user": u.name, "namespace": "default"}})
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": self.kube_url, "certificate-authority-data": ca_b64}}],
            "users": users,
            "contexts": contexts,
            "current-context": CLUSTER_NAME,
        }

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "version": __version__,
            "scenario": self.scenario.name,
            "net": self.net,
            "speed": self.clock.speed,
            "kubernetes": {"url": self.kube_url, "version": self.scenario.k8s_version, "kubeconfig": str(self.kubeconfig_path), "context": CLUSTER_NAME},
            "ca": str(self.ca_path),
            "nodes": [
                {"name": n.name, "role": n.role, "internal_ip": n.private_ip, "public_ip": n.public_ip}
                for n in self.addresses.nodes()[:200]
            ],
            "node_count": len(self.addresses.nodes()),
            "pod_cidr": "10.42.0.0/16 (simulated overlay, never dialled)",
            "service_cidr": "10.43.0.0/16 (simulated, never dialled)",
        }
        info.update(self.extras)
        return info

    @property
    def hcloud_env_path(self) -> Path:
        return self.state_dir / "hcloud.env"

    def _write_info(self) -> None:
        """sandbox.json is rewritten when LBs come and go: atomically, so readers never see half."""
        tmp = self.info_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.info(), indent=2) + "\n")
        os.replace(tmp, self.info_path)

    def _write_files(self) -> None:
        self.ca_path.write_text(self.ca.cert_pem)
        kc = self.kubeconfig_path
        kc.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        os.chmod(kc, 0o600)
        env = self.hcloud_env_path
        env.write_text(
            "# the sandbox's Hetzner Cloud API; load with: set -a; . ./hcloud.env; set +a\n"
            f"HCLOUD_TOKEN={self.hcloud_token}\n"
            f"HCLOUD_ENDPOINT={self.hcloud_endpoint}\n"
        )
        os.chmod(env, 0o600)
        self._write_info()

    # --- conveniences for tests ----------------------------------------------------------------

    def hcloud_client(self, *, token: str | None = None, poll_interval: float = 0.05) -> Any:
        """The official hcloud client for this sandbox's Hetzner API."""
        from hcloud import Client

        return Client(token or self.hcloud_token, api_endpoint=self.hcloud_endpoint, poll_interval=poll_interval, timeout=10)

    def replace_worker(self, old: str, new: Any = None, *, timeout: float = 30.0) -> Any:
        """Scenario switch: worker `old` replaced by a new server with a new IP (k3s-worker-06 at
        the next worker address by default): gone from Kubernetes and Hetzner, the new node joined
        with role=worker, the data plane serving its address (see replace.py). Returns its NodeAddr."""
        from .replace import replace_worker

        node = self.call(replace_worker, self, old, new, timeout=timeout)
        self._write_info()
        return node

    def resolver(self) -> Any:
        """A dnspython resolver that asks only the sandbox's authoritative DNS server."""
        from .dns import resolver_for

        return resolver_for(self.dns.address)

    def kube_client(self, user: str | None = None) -> Any:
        """An official kubernetes ApiClient for this sandbox (admin unless `user` is given)."""
        from kubernetes import client, config

        ctx = CLUSTER_NAME if user is None else f"{CLUSTER_NAME}-{user}"
        return config.new_client_from_config(config_file=str(self.kubeconfig_path), context=ctx, persist_config=False) or client.ApiClient()

