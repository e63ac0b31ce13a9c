"""The cluster's data plane: real sockets on the node addresses, the overlay in-process.

`DataPlane` is the kubelet's host network (same methods as `hostnet.SimHostNetwork`), so binding
a hostNetwork container's port binds node_ip:port for real and a port held by anything else -
a scenario's forgotten nginx, another container, any process on the machine - fails with the
kernel's EADDRINUSE and crashes the container. It also runs kube-proxy's NodePorts, the
ingress-nginx proxy inside the controller pods, the overlay's rules (`overlay_request`,
`set_overlay`), the kubelet's readiness probes and the debug-pod toolbox.

Nothing is ever dialled outside 127.0.0.0/8: real sockets exist only on node addresses; pod and
cluster IPs (10.42/16, 10.43/16) are served in-process and never reach a socket call.

Above `max_nodes` (the scale scenario) no per-node socket is opened: the data plane keeps only
its bookkeeping, and says so in sandbox.json ("dataplane": "disabled (1000 nodes)").
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from functools import partial
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .. import images
from ..hostnet import Holder
from ..kube.registry import core
from ..kube.store import Event
from ..tls import SandboxCA
from . import apps
from .apps import AppTarget
from .ingress import IngressProxy
from .kubeproxy import KubeProxy
from .network import Network
from .ports import Binding, PortTable
from .probes import Prober
from .sockets import Blackhole, IdleGuard, Listener
from .toolbox import Toolbox
from .topology import Topology
from .wire import BodyTooLarge, HttpRequest, HttpResponse, nginx_page, read_request, to_web

log = logging.getLogger("keybuzz.sandbox.dataplane")

SERVICES = core("services")
PODS = core("pods")
MAX_NODES = 50
IDLE_SECONDS = 60.0  # nginx client_header_timeout / keepalive: sandbox seconds
MIN_IDLE_REAL = 0.5  # real seconds: never close a connection faster than a loaded box can use it


class _ClientNoise(logging.Filter):
    """aiohttp logs every malformed client request (garbage on a NodePort, a request line over
    8190 bytes) at ERROR with a traceback, which `keybuzz-tui sandbox` printed on its terminal.
    A server facing clients sees garbage routinely: that becomes one DEBUG line. An exception
    raised by our own handlers (a sandbox bug) is not the client's doing and stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno > logging.DEBUG and isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {exc!r}"
            record.args, record.exc_info = None, None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


client_log = logging.getLogger("keybuzz.sandbox.dataplane.clients")
client_log.addFilter(_ClientNoise())


class DataPlane:
    def __init__(self, cluster: Any, *, ca: SandboxCA | None = None, extras: dict[str, Any] | None = None, max_nodes: int | None = None) -> None:
        self.cluster = cluster
        self.clock = cluster.clock
        self._ca = ca
        self.extras = extras if extras is not None else {}
        opts = dict(cluster.scenario.dataplane or {})
        self.max_nodes = int(max_nodes if max_nodes is not None else opts.get("max_nodes", MAX_NODES))
        self.node_count = len(cluster.addresses.nodes())
        self.enabled = self.node_count <= self.max_nodes
        self.overlay_ok = cluster.scenario.overlay != "blocked"
        self.idle_seconds = float(opts.get("idle_seconds", IDLE_SECONDS))
        # a host firewall (UFW) per node: NodePorts it drops, e.g. {"k3s-worker-02": {31695}}
        self.denied: dict[str, set[int]] = {}
        for rule in opts.get("ufw_deny", []) or []:
            self.denied.setdefault(str(rule["node"]), set()).add(int(rule["port"]))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ports = PortTable()
        self.topology = Topology(self)
        self.network = Network(self)
        self.ingress = IngressProxy(self)
        self.kube_proxy = KubeProxy(self)
        self.prober = Prober(self)
        self.toolbox = Toolbox(self)
        self.messages: list[str] = []
        self._servers: dict[tuple[Any, ...], web.Server] = {}
        self._owner_pods: dict[str, tuple[str, str]] = {}  # owner -> (pod uid, container)
        self._transports: set[asyncio.BaseTransport] = set()
        self._attached = False
        self._stopped = False

    # --- wiring --------------------------------------------------------------------------------

    @property
    def ca(self) -> SandboxCA:
        if self._ca is None:
            self._ca = SandboxCA()
        return self._ca

    @property
    def kubelet(self) -> Any:
        return self.cluster.kubelet

    def attach(self) -> DataPlane:
        """Become the cluster's host network and the kubelet's exec hook; must run on the sandbox
        loop, before `cluster.bootstrap()`, so every bind already goes through real sockets."""
        if self._attached:
            return self
        self._attached = True
        self.loop = asyncio.get_running_loop()
        for n in self.cluster.addresses.nodes():
            self.add_node(n.name, n.private_ip, n.role)
        for hp in self.cluster.scenario.host_processes:
            self.add_host_process(hp.node, hp.port, hp.command, answers=hp.answers)
        self.cluster.host_network = self
        self.kubelet.exec_hook = self.toolbox
        self.cluster.store.add_listener(self._on_event)
        self.topology.rebuild_services()
        self.kube_proxy.sync()
        self.extras["dataplane"] = f"enabled ({self.node_count} nodes)" if self.enabled else f"disabled ({self.node_count} nodes)"
        if not self.enabled:
            self.log(f"dataplane: disabled ({self.node_count} nodes > {self.max_nodes}): no per-node listeners")
        return self

    def _on_event(self, ev: Event) -> None:
        if self._stopped:
            return
        try:
            if ev.rt.key == SERVICES.key:
                self.topology.rebuild_services()
                self.kube_proxy.sync()
            elif ev.rt.key == PODS.key:
                self.topology.pods_changed()
                if ev.type == "DELETED":
                    self._drop_servers(ev.obj["metadata"].get("namespace", ""), ev.obj["metadata"]["name"])
        except Exception:  # never break the API write that emitted the event
            log.exception("data plane failed to follow %s %s", ev.type, ev.rt.key)

    def log(self, message: str) -> None:
        self.messages.append(message)
        del self.messages[:-200]
        log.info("%s", message)

    @property
    def live(self) -> bool:
        """Real sockets may be opened (and dialled): enabled, attached to a loop, not stopped."""
        return self.enabled and self.loop is not None and not self._stopped

    def real_seconds(self, sandbox_seconds: float) -> float:
        return max(self.clock.scaled(sandbox_seconds), 0.05)

    def track(self, transport: asyncio.BaseTransport) -> None:
        self._transports.add(transport)
        if len(self._transports) > 256:
            self._transports = {t for t in self._transports if not t.is_closing()}

    def pod_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Append a line to a container's log (`kubectl logs`), e.g. the ingress access log."""
        kubelet = self.kubelet
        append = getattr(kubelet, "append_log", None)
        if append is not None:
            append(namespace, pod, container, line)
            return
        run = kubelet.runs.get((namespace, pod))
        ct = run.containers.get(container) if run is not None else None
        if ct is not None and hasattr(kubelet, "_log"):
            kubelet._log(ct, line)

    # --- the HostNetwork protocol (hostnet.SimHostNetwork's methods) --------------------------

    def add_node(self, node: str, ip: str, role: str) -> None:
        self.ports.add_node(node, ip, role)

    def add_host_process(self, node: str, port: int, command: str, proto: str = "TCP", answers: str = "404") -> Holder:
        """A process Kubernetes cannot see (scenario port-taken): bound for real, answering like
        an old nginx (404), or silent."""
        ip = self.ports.node_ip(node) or ""
        h = Holder(f"host process {command}", self.ports.next_pid(13), command)
        target = apps.for_host_process(node, ip, port, command, answers) if proto == "TCP" else None
        b = Binding(node, "0.0.0.0", port, proto, h, target)
        if proto == "TCP" and self.live and ip and target is not None:
            lst = Listener(self.loop, ip, port, partial(self.protocol_for, target), label=f"{command} on {node}")
            try:
                lst.open()
                b.listener = lst
            except OSError as e:
                self.log(f"host process {command!r} on {node}: cannot bind {ip}:{port}: {e.strerror or e}")
        old = self.ports.get(node, port, proto)
        if old is not None and old.listener is not None:
            old.listener.close()
        self.ports.put(b)
        return h

    def remove_host_process(self, node: str, port: int, proto: str = "TCP") -> None:
        b = self.ports.get(node, port, proto)
        if b is not None and b.holder.owner.startswith("host process"):
            self.ports.remove(node, port, proto)
            if b.listener is not None:
                b.listener.close()

    def bind(self, node: str, ip: str, port: int, proto: str, owner: str, command: str, pod: dict[str, Any] | None) -> Holder | None:
        """Take node:port for `owner` (a hostNetwork container); the current holder if it is taken."""
        cur = self.ports.get(node, port, proto)
        if cur is not None and cur.holder.owner != owner and cur.listener is None:
            return cur.holder  # a K3s daemon, a UDP holder, or a socket we could not bind: the table says so
        if cur is not None and cur.holder.owner == owner:
            return None
        container = _container_of(pod, owner, port)
        image = str((container or {}).get("image", ""))
        node_ip = self.ports.node_ip(node) or ip
        target = apps.for_container(pod, node, node_ip, container, image, port) if pod and container else None
        if target is None and proto == "TCP":
            target = AppTarget("generic", command, image, "", owner, node, node_ip, port, host_network=True)
        holder = Holder(owner, self.ports.next_pid(), command)
        b = Binding(node, "0.0.0.0", port, proto, holder, target if proto == "TCP" else None)
        if proto == "TCP" and self.live and target is not None:
            lst = self._listener(node_ip, port, target)
            try:
                lst.open()
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    return cur.holder if cur is not None else Holder("host process (unknown)", 0, f"unknown process on {node_ip}:{port}")
                if e.errno != errno.EACCES:
                    raise
                self.log(f"{owner}: cannot bind {node_ip}:{port} ({e.strerror}); served in-process only")
            else:
                b.listener = lst
        self.ports.put(b)
        if pod is not None and container is not None and owner not in self._owner_pods:
            # first port of this container instance: its undeclared ports, and a real probe ahead
            self._owner_pods[owner] = (pod["metadata"].get("uid", ""), str(container.get("name", "")))
            self._bind_implicit(node, node_ip, owner, command, pod, container, image)
            if self.loop is not None:
                self.loop.call_soon(self.prober.container_started, pod, container)
        return None

    def _bind_implicit(self, node: str, node_ip: str, owner: str, command: str, pod: dict[str, Any], container: dict[str, Any], image: str) -> None:
        """Ports an image listens on without declaring them (ingress-nginx's 10254): best effort."""
        declared = {p.get("containerPort") for p in container.get("ports") or []}
        for port in apps.listen_ports(images.behaviour(image, container), container):
            if port in declared or self.ports.get(node, port) is not None:
                continue
            t = apps.for_container(pod, node, node_ip, container, image, port)
            if t is None:
                continue
            b = Binding(node, "0.0.0.0", port, "TCP", Holder(owner, self.ports.next_pid(), command), t)
            if self.live:
                lst = self._listener(node_ip, port, t)
                try:
                    lst.open()
                except OSError:
                    continue
                b.listener = lst
            self.ports.put(b)

    def release(self, owner: str) -> None:
        for b in self.ports.release(owner):
            if b.listener is not None:
                b.listener.close()
        uid_ct = self._owner_pods.pop(owner, None)
        if uid_ct is not None:
            self.prober.container_stopped(*uid_ct)

    def listening(self, node: str) -> list[tuple[str, int, str, Holder]]:
        return self.ports.listening(node)

    # --- probes (the kubelet's optional hook) ------------------------------------------------------

    def probe(self, pod: dict[str, Any], pod_ip: str, container: dict[str, Any], probe: dict[str, Any]) -> bool | None:
        return self.prober.probe(pod, pod_ip, container, probe)

    @property
    def last_probe_error(self) -> str:
        return self.prober.last_error

    # --- the overlay -------------------------------------------------------------------------------

    def set_firewall(self, node: str, port: int, deny: bool) -> None:
        """UFW on one node: deny (drop) or allow a NodePort, as `ufw deny 31695/tcp` would."""
        ports = self.denied.setdefault(node, set())
        (ports.add if deny else ports.discard)(int(port))
        self.log(f"ufw on {node}: {'deny' if deny else 'allow'} {port}/tcp")

    def set_overlay(self, ok: bool) -> None:
        """The demo's "block the overlay" switch: VXLAN between nodes works, or is dropped."""
        self.overlay_ok = bool(ok)
        self.log(f"overlay: {'ok' if ok else 'blocked (UDP 8472 dropped between nodes)'}")

    async def overlay_request(
        self,
        from_node: str | None,
        ip: str,
        port: int,
        request: HttpRequest,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> HttpResponse:
        """An HTTP request from a node (or a pod on it) to ip:port, by the cluster's rules; raises
        DialError on refusal or timeout (waited on the sandbox clock)."""
        return await self.network.request(from_node, ip, port, request, timeout=timeout, connect_timeout=connect_timeout, read_timeout=read_timeout)

    # --- servers inside pods -------------------------------------------------------------------

    def _listener(self, ip: str, port: int, t: AppTarget) -> Listener:
        assert self.loop is not None
        ssl_ctx = self.ingress.tls_context() if t.tls else None
        return Listener(self.loop, ip, port, partial(self.protocol_for, t), ssl_ctx=ssl_ctx, label=f"{t.namespace}/{t.pod} {ip}:{port}")

    def protocol_for(self, t: AppTarget) -> asyncio.Protocol:
        """A fresh server-side protocol for one connection to `t`."""
        idle = max(self.clock.scaled(self.idle_seconds), MIN_IDLE_REAL)
        if not t.is_http:
            return Blackhole(idle, self.track)
        return IdleGuard(self._server(t)(), idle, self.track)

    def _server(self, t: AppTarget) -> web.Server:
        key = (t.namespace, t.pod, t.container, t.port, t.image, t.node, t.pod_ip, t.kind, t.answers)
        srv = self._servers.get(key)
        if srv is None:
            handler = partial(self.ingress.serve, t) if t.is_ingress else partial(self._serve_app, t)
            srv = web.Server(
                handler,
                handler_cancellation=True,
                access_log=None,
                logger=client_log,
                keepalive_timeout=max(self.clock.scaled(75.0), MIN_IDLE_REAL),
                max_line_size=8190,
                max_field_size=8190,
            )
            self._servers[key] = srv
        return srv

    async def _serve_app(self, t: AppTarget, request: web.BaseRequest) -> web.StreamResponse:
        try:
            req = await read_request(request)
        except BodyTooLarge:
            return to_web(nginx_page(413))
        resp = apps.respond(t, req)
        if resp is None:  # not an HTTP server after all (protocol_for gives those a Blackhole)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=444)
        return to_web(resp)

    def _drop_servers(self, namespace: str, name: str) -> None:
        """A deleted pod's in-process servers go away, and so do their connections."""
        for key in [k for k in self._servers if (k[0], k[1]) == (namespace, name)]:
            srv = self._servers.pop(key)
            srv.pre_shutdown()

    # --- lifecycle -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Close every listening socket and connection; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.kube_proxy.stop()
        for b in self.ports.all():
            if b.listener is not None:
                b.listener.close()
                b.listener = None
        for tr in list(self._transports):
            with contextlib.suppress(Exception):
                tr.abort()
        self._transports.clear()
        await self.prober.stop()
        servers, self._servers = list(self._servers.values()), {}
        for srv in servers:
            with contextlib.suppress(Exception):
                await srv.shutdown(0.1)
        await self.network.close()
        if self.cluster.host_network is self:
            self.kubelet.exec_hook = None


def _container_of(pod: dict[str, Any] | None, owner: str, port: int) -> dict[str, Any] | None:
    """The container an owner string ("pod ns/name container c") names, else the one declaring port."""
    containers = ((pod or {}).get("spec") or {}).get("containers") or []
    name = owner.rsplit(" container ", 1)[1] if " container " in owner else None
    for c in containers:
        if c.get("name") == name:
            return c
    for c in containers:
        if any(p.get("containerPort") == port for p in c.get("ports") or []):
            return c
    return containers[0] if containers else None


async def start_dataplane(sandbox: Any) -> DataPlane:
    """Build the data plane for a Sandbox whose cluster exists but is not bootstrapped yet."""
    dp = DataPlane(sandbox.cluster, ca=getattr(sandbox, "ca", None), extras=getattr(sandbox, "extras", None))
    dp.attach()
    await asyncio.sleep(0)
    return dp
