"""The kubelet's readiness probes, run against what really listens.

The kubelet asks synchronously, from inside a reconcile on the very loop that serves the sockets,
so a blocking HTTP GET would deadlock. The prober therefore works one step ahead: when a
hostNetwork container binds its ports (and after every answer) it starts the real probe over the
real socket in the background, and the kubelet's next question is answered with that result.
Only when no real result is ready yet (a race at start) is the answer computed from the same
listener table and app handlers the socket is served by. Overlay pods are never dialled: their
probe is served in-process, from the pod's own node (the kubelet is local, so a blocked VXLAN
never fails a probe - which is why the outage showed every pod Ready).

Failure texts are the kubelet's, e.g. `Get "http://127.0.10.112:8080/healthz": dial tcp
127.0.10.112:8080: connect: connection refused` or `HTTP probe failed with statuscode: 500`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from .wire import DialError, HttpRequest

if TYPE_CHECKING:
    from .plane import DataPlane


@dataclass(frozen=True)
class ProbeSpec:
    kind: str  # "http" | "tcp"
    host: str
    port: int
    path: str = "/"
    scheme: str = "http"
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 1.0

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def _resolve_port(container: dict[str, Any], port: Any) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    return None


def spec_for(pod_ip: str, container: dict[str, Any], probe: dict[str, Any]) -> ProbeSpec | None:
    """None for probes the data plane has no opinion on (exec, grpc, a port name that is not declared)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if "httpGet" in probe:
        g = probe["httpGet"] or {}
        port = _resolve_port(container, g.get("port"))
        if port is None:
            return None
        path = str(g.get("path") or "/")
        headers = tuple((str(h.get("name")), str(h.get("value"))) for h in g.get("httpHeaders") or [])
        return ProbeSpec("http", str(g.get("host") or pod_ip), port, path if path.startswith("/") else "/" + path, str(g.get("scheme") or "HTTP").lower(), headers, timeout)
    if "tcpSocket" in probe:
        t = probe["tcpSocket"] or {}
        port = _resolve_port(container, t.get("port"))
        if port is None:
            return None
        return ProbeSpec("tcp", str(t.get("host") or pod_ip), port, timeout=timeout)
    return None


class Prober:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.last_error = ""
        minor = plane.cluster.scenario.k8s_version.lstrip("v").split(".")[:2]
        self.user_agent = f"kube-probe/{'.'.join(minor)}"
        self._gen: dict[tuple[str, str], int] = {}
        self._results: dict[tuple[str, str], tuple[int, bool, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the kubelet's question ----------------------------------------------------------------

    def probe(self, pod: dict[str, Any], pod_ip: str, container: dict[str, Any], probe: dict[str, Any]) -> bool | None:
        spec = spec_for(pod_ip, container, probe)
        if spec is None:
            return None
        node = (pod.get("spec") or {}).get("nodeName")
        key = (pod["metadata"].get("uid", ""), str(container.get("name", "")))
        gen = self._gen.get(key, 0)
        got = self._results.pop(key, None)
        if got is not None and got[0] == gen:
            ok, err = got[1], got[2]
        else:
            ok, err = self.model(node, spec)
        if self._real_capable(spec):
            self._start(key, node, spec)
        if not ok:
            self.last_error = err
        return ok

    def _real_capable(self, spec: ProbeSpec) -> bool:
        return self.plane.live and spec.host in self.plane.topology.node_by_ip

    # --- one step ahead ------------------------------------------------------------------------

    def container_started(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        """A hostNetwork container bound its ports: forget old results, probe it for real now."""
        key = (pod["metadata"].get("uid", ""), str(container.get("name", "")))
        self._gen[key] = self._gen.get(key, 0) + 1
        self._results.pop(key, None)
        probe = container.get("readinessProbe")
        node = (pod.get("spec") or {}).get("nodeName")
        ip = self.plane.topology.node_ips.get(node or "", "")
        spec = spec_for(ip, container, probe) if probe and ip else None
        if spec is not None and self._real_capable(spec):
            self._start(key, node, spec)

    def container_stopped(self, uid: str, container: str) -> None:
        key = (uid, container)
        self._gen[key] = self._gen.get(key, 0) + 1
        self._results.pop(key, None)

    def _start(self, key: tuple[str, str], node: str | None, spec: ProbeSpec) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        gen = self._gen.get(key, 0)

        async def run() -> None:
            ok, err = await self.real(node, spec)
            if self._gen.get(key, 0) == gen:
                self._results[key] = (gen, ok, err)

        task = loop.create_task(run(), name=f"probe {spec.url}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the two ways to ask -------------------------------------------------------------------

    def _request(self, spec: ProbeSpec) -> HttpRequest:
        h = CIMultiDict({"Host": f"{spec.host}:{spec.port}", "User-Agent": self.user_agent, "Accept": "*/*", "Connection": "close"})
        for k, v in spec.headers:
            h[k] = v
        return HttpRequest("GET", spec.path, h, scheme=spec.scheme)

    async def real(self, node: str | None, spec: ProbeSpec) -> tuple[bool, str]:
        net = self.plane.network
        try:
            if spec.kind == "tcp":
                await net.connect(node, spec.host, spec.port, timeout=spec.timeout)
                return True, ""
            resp = await net.request(node, spec.host, spec.port, self._request(spec), timeout=spec.timeout)
        except DialError as e:
            return False, e.go() if spec.kind == "tcp" else e.go_http(spec.url)
        except Exception as e:  # never let a probe take the loop down
            return False, f'Get "{spec.url}": {e}'
        return self._verdict(resp.status)

    def model(self, node: str | None, spec: ProbeSpec) -> tuple[bool, str]:
        net = self.plane.network
        try:
            if spec.kind == "tcp":
                net.connect_sync(node, spec.host, spec.port)
                return True, ""
            resp = net.request_sync(node, spec.host, spec.port, self._request(spec))
        except DialError as e:
            return False, e.go() if spec.kind == "tcp" else e.go_http(spec.url)
        return self._verdict(resp.status)

    @staticmethod
    def _verdict(status: int) -> tuple[bool, str]:
        if 200 <= status < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {status}"

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
