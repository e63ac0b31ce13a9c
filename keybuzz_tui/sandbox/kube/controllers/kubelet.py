"""The kubelets of every node: pull images, start containers, probe readiness, crash, restart.

Each bound pod gets an in-memory run record (what containerd would know) and its API status is
derived from it, with the real waiting reasons (ContainerCreating, ErrImagePull, ImagePullBackOff,
CrashLoopBackOff), lastState, restartCount, conditions and events. Transitions are timed with the
scenario's delays; reconcile is re-armed for the next transition, so nothing polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ... import images
from ...hostnet import SimHostNetwork
from ..errors import ApiError, bad_request
from ..registry import core
from ..store import Event

PODS = core("pods")
NODES = core("nodes")
MAX_BACKOFF = 300.0


@dataclass
class Container:
    name: str
    image: str
    init: bool = False
    state: str = "creating"  # creating | pulling | pull-failed | starting | running | exited | backoff
    until: float = 0.0  # loop time of the next transition
    restarts: int = 0
    pull_failures: int = 0
    started_at: str | None = None
    ready: bool = False
    ready_at: float | None = None
    last_terminated: dict[str, Any] | None = None
    terminated: dict[str, Any] | None = None
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    logs: list[tuple[str, str]] = field(default_factory=list)
    prev_logs: list[tuple[str, str]] | None = None
    followers: list[asyncio.Queue[tuple[str, str] | None]] = field(default_factory=list)
    image_id: str = ""
    container_id: str = ""
    exit_code: int | None = None


@dataclass
class PodRun:
    uid: str
    node: str
    ip: str
    started: str
    containers: dict[str, Container]
    deleting_since: float | None = None


class Kubelet:
    name = "kubelet"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.t = cluster.scenario.timing
        self.runs: dict[tuple[str, str], PodRun] = {}
        self.missing_images: list[str] = list(cluster.scenario.missing_images)
        self.pull_reason = cluster.scenario.pull_error
        self._ips: dict[str, set[int]] = {}
        if getattr(cluster, "host_network", None) is None:
            hn = SimHostNetwork()
            for n in cluster.addresses.nodes():
                hn.add_node(n.name, n.private_ip, n.role)
            for hp in cluster.scenario.host_processes:
                hn.add_host_process(hp.node, hp.port, hp.command)
            cluster.host_network = hn
        # hook for probe containers (`ss -ltn`, `wget`, `nslookup`): set by the network simulation
        self.exec_hook: Any = None

    # --- events ------------------------------------------------------------------------------

    def keys_for(self, ev: Event):
        if ev.rt.key == PODS.key:
            m = ev.obj["metadata"]
            if (ev.obj.get("spec") or {}).get("nodeName") or ev.type == "DELETED":
                yield m["namespace"], m["name"]

    # --- helpers -----------------------------------------------------------------------------

    def _loop_time(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return 0.0

    def _after(self, seconds: float) -> float:
        return self._loop_time() + self.c.clock.scaled(seconds)

    def node_ready(self, node: str) -> bool:
        nl = self.c.manager.controllers.get("node-lifecycle")
        return nl.is_ready(node) if nl is not None else True

    def _node_ip(self, node: str) -> str:
        obj = self.api.store.get(NODES, None, node)
        for a in ((obj or {}).get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                return a["address"]
        return "127.0.0.1"

    def _pod_ip(self, node: str, host_network: bool) -> str:
        if host_network:
            return self._node_ip(node)
        obj = self.api.store.get(NODES, None, node)
        cidr = ((obj or {}).get("spec") or {}).get("podCIDR") or "10.42.99.0/24"
        net = ipaddress.ip_network(cidr)
        used = self._ips.setdefault(cidr, set())
        for i in range(2, net.num_addresses - 1):
            if i not in used:
                used.add(i)
                return str(net.network_address + i)
        return str(net.network_address + 2)

    def _free_ip(self, node: str, ip: str) -> None:
        obj = self.api.store.get(NODES, None, node)
        cidr = ((obj or {}).get("spec") or {}).get("podCIDR")
        if not cidr:
            return
        net, addr = ipaddress.ip_network(cidr), ipaddress.ip_address(ip)
        if addr in net:
            self._ips.get(cidr, set()).discard(int(addr) - int(net.network_address))

    def _log(self, ct: Container, line: str) -> None:
        entry = (self.c.clock.stamp_micro().replace("Z", "000Z"), line)
        ct.logs.append(entry)
        if len(ct.logs) > 5000:
            del ct.logs[:1000]
        for q in ct.followers:
            q.put_nowait(entry)

    def set_missing_images(self, patterns: list[str]) -> None:
        """Scenario switch: the registry loses (or regains) images."""
        self.missing_images = list(patterns)
        for (ns, name) in list(self.runs):
            self.c.manager.enqueue(self.name, ns, name)

    # --- reconcile ---------------------------------------------------------------------------

    def reconcile(self, ns: str | None, name: str) -> float | None:
        key = (ns or "", name)
        pod = self.api.store.get(PODS, ns, name)
        run = self.runs.get(key)
        if pod is None:
            if run is not None:
                self._teardown(key, run)
            return None
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return None
        if run is not None and run.uid != pod["metadata"]["uid"]:
            self._teardown(key, run)
            run = None
        if not self.node_ready(node):
            return None  # the kubelet there is down: nothing moves until it comes back
        if pod["metadata"].get("deletionTimestamp"):
            return self._terminate(key, pod, run)
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and run is None:
            return None
        if run is None:
            run = self._admit(key, pod, node)
        self._sync_images(pod, run)
        now = self._loop_time()
        next_at: float | None = None
        for ct in run.containers.values():
            if ct.init:
                continue
            nxt = self._advance(pod, run, ct, now)
            if nxt is not None:
                next_at = nxt if next_at is None else min(next_at, nxt)
        self._publish(pod, run)
        if next_at is None:
            return None
        return max(0.0, (next_at - self._loop_time())) * self.c.clock.speed + 0.001

    def _admit(self, key: tuple[str, str], pod: dict[str, Any], node: str) -> PodRun:
        spec = pod.get("spec") or {}
        ip = self._pod_ip(node, bool(spec.get("hostNetwork")))
        containers = {
            c["name"]: Container(c["name"], c.get("image", ""), until=self._after(self.t.schedule_seconds))
            for c in spec.get("containers") or []
        }
        run = PodRun(pod["metadata"]["uid"], node, ip, self.api.now(), containers)
        self.runs[key] = run
        if self.api.bootstrapping:
            for ct in containers.values():
                self._start(pod, run, ct, instant=True)
        return run

    def _sync_images(self, pod: dict[str, Any], run: PodRun) -> None:
        """An image changed in the spec (kubectl set image): the container is killed and recreated."""
        for c in (pod.get("spec") or {}).get("containers") or []:
            ct = run.containers.get(c["name"])
            if ct is not None and ct.image != c.get("image"):
                self._stop_container(pod, run, ct, reason="Killing", message=f"Container {ct.name} definition changed, will be restarted")
                ct.image = c.get("image", "")
                ct.state, ct.until, ct.ready, ct.pull_failures = "creating", self._after(0.1), False, 0
                ct.waiting = ("ContainerCreating", "")

    def _advance(self, pod: dict[str, Any], run: PodRun, ct: Container, now: float) -> float | None:
        """Move one container through every transition whose time has come; return the next one."""
        for _ in range(10):
            if ct.state in ("creating", "backoff-pull") and now >= ct.until:
                ct.state, ct.until = "pulling", self._after(self.t.pull_seconds)
                self._event(pod, run, "Normal", "Pulling", f'Pulling image "{ct.image}"', ct)
                continue
            if ct.state == "pulling" and now >= ct.until:
                if images.is_missing(ct.image, self.missing_images):
                    ct.pull_failures += 1
                    msg = images.pull_error(ct.image, self.pull_reason)
                    ct.state, ct.waiting = "pull-failed", ("ErrImagePull", msg)
                    ct.until = self._after(min(MAX_BACKOFF, 5.0))
                    self._event(pod, run, "Warning", "Failed", f'Failed to pull image "{ct.image}": {msg}', ct)
                    self._event(pod, run, "Warning", "Failed", "Error: ErrImagePull", ct)
                    continue
                ct.image_id = images.image_id(ct.image)
                self._event(pod, run, "Normal", "Pulled", f'Successfully pulled image "{ct.image}" in {self.t.pull_seconds:.3f}s ({self.t.pull_seconds:.3f}s including waiting). Image size: 48213571 bytes.', ct)
                ct.state, ct.until = "starting", self._after(self.t.start_seconds)
                continue
            if ct.state == "pull-failed" and now >= ct.until:
                backoff = min(MAX_BACKOFF, 10.0 * 2 ** (ct.pull_failures - 1))
                ct.state, ct.waiting = "backoff-pull", ("ImagePullBackOff", f'Back-off pulling image "{ct.image}": ErrImagePull: {images.pull_error(ct.image, self.pull_reason)}')
                ct.until = self._after(backoff)
                self._event(pod, run, "Normal", "BackOff", f'Back-off pulling image "{ct.image}"', ct)
                self._event(pod, run, "Warning", "Failed", "Error: ImagePullBackOff", ct)
                return ct.until
            if ct.state == "starting" and now >= ct.until:
                self._start(pod, run, ct)
                continue
            if ct.state == "running" and ct.exit_code is not None and now >= ct.until:
                self._exit(pod, run, ct)
                continue
            if ct.state == "running" and not ct.ready and ct.ready_at is not None and now >= ct.ready_at:
                ct.ready = self._probe(pod, run, ct)
                if not ct.ready:
                    ct.ready_at = self._after(self._probe_period(pod, ct))
                continue
            if ct.state == "backoff" and now >= ct.until:
                ct.state, ct.until = "starting", self._after(0.2)
                continue
            break
        if ct.state in ("creating", "pulling", "pull-failed", "backoff-pull", "starting", "backoff"):
            return ct.until
        if ct.state == "running" and ct.exit_code is not None:
            return ct.until
        if ct.state == "running" and not ct.ready and ct.ready_at is not None:
            return ct.ready_at
        return None

    def _spec_of(self, pod: dict[str, Any], ct: Container) -> dict[str, Any]:
        for c in (pod.get("spec") or {}).get("containers") or []:
            if c["name"] == ct.name:
                return c
        return {}

    def _probe_period(self, pod: dict[str, Any], ct: Container) -> float:
        probe = self._spec_of(pod, ct).get("readinessProbe") or {}
        return float(probe.get("periodSeconds", 10))

    def _probe(self, pod: dict[str, Any], run: PodRun, ct: Container) -> bool:
        probe = self._spec_of(pod, ct).get("readinessProbe")
        if not probe:
            return True
        checker = getattr(self.c.host_network, "probe", None)
        if checker is None:
            return True
        ok = checker(pod, run.ip, self._spec_of(pod, ct), probe)
        if ok is False:
            self._event(pod, run, "Warning", "Unhealthy", f"Readiness probe failed: {getattr(self.c.host_network, 'last_probe_error', 'probe failed')}", ct)
        return ok is not False

    def _start(self, pod: dict[str, Any], run: PodRun, ct: Container, *, instant: bool = False) -> None:
        spec = pod.get("spec") or {}
        cspec = self._spec_of(pod, ct)
        beh = images.behaviour(ct.image, cspec)
        ct.container_id = "containerd://" + hashlib.sha256(f"{run.uid}/{ct.name}/{ct.restarts}".encode()).hexdigest()
        ct.image_id = ct.image_id or images.image_id(ct.image)
        ct.started_at = self.api.now()
        ct.state, ct.waiting, ct.terminated, ct.exit_code = "running", None, None, None
        ct.logs = []
        owner = f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']} container {ct.name}"
        fmt = {"ts": self.api.now(), "tag": ct.image.rsplit(":", 1)[-1], "node": run.node, "pod": pod["metadata"]["name"], "image": ct.image, "port": ""}
        if not instant:
            self._event(pod, run, "Normal", "Created", f"Created container: {ct.name}", ct)
            self._event(pod, run, "Normal", "Started", f"Started container {ct.name}", ct)
        if spec.get("hostNetwork"):
            for port, proto in images.listen_ports(cspec):
                holder = self.c.host_network.bind(run.node, run.ip, port, proto, owner, beh.app_name, pod)
                if holder is not None:
                    fmt["port"] = str(port)
                    for line in beh.bind_error.format(**fmt).split("\n"):
                        self._log(ct, line)
                    ct.exit_code, ct.until = 1, self._after(0.3)
                    self.c.host_network.release(owner)
                    return
        for port, _proto in images.listen_ports(cspec)[:1] or [(0, "TCP")]:
            fmt["port"] = str(port)
        for line in beh.startup:
            self._log(ct, line.format(**fmt))
        if beh.kind == "probe":
            code, lines = self._exec(pod, run, cspec)
            for line in lines:
                self._log(ct, line)
            ct.exit_code, ct.until = code, self._after(0.2)
            return
        probe = cspec.get("readinessProbe") or {}
        ct.ready_at = self._loop_time() if instant else self._after(max(self.t.ready_seconds, float(probe.get("initialDelaySeconds", 0))))
        if instant:
            ct.ready, ct.ready_at = True, None

    def _exec(self, pod: dict[str, Any], run: PodRun, cspec: dict[str, Any]) -> tuple[int, list[str]]:
        argv = list(cspec.get("command") or []) + list(cspec.get("args") or [])
        if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c":
            argv = shlex.split(argv[2])
        if self.exec_hook is not None:
            out = self.exec_hook(pod, run, argv)
            if out is not None:
                return out
        if argv[:1] in (["ss"], ["netstat"]):
            lines = ["State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process"]
            for ip, port, proto, h in self.c.host_network.listening(run.node):
                if proto == "TCP":
                    lines.append(f'LISTEN 0      511    {ip}:{port} 0.0.0.0:* users:(("{h.command.split()[0].rstrip(":")}",pid={h.pid},fd=6))')
            return 0, lines
        if not argv or argv[:1] in (["sleep"], ["true"]):
            return 0, []
        return 127, [f"sh: {argv[0]}: not found"]

    def _exit(self, pod: dict[str, Any], run: PodRun, ct: Container) -> None:
        code = ct.exit_code or 0
        term = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": ct.started_at,
            "finishedAt": self.api.now(),
            "containerID": ct.container_id,
        }
        ct.ready, ct.ready_at = False, None
        self.c.host_network.release(f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']} container {ct.name}")
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            ct.state, ct.terminated, ct.exit_code = "exited", term, code
            return
        ct.last_terminated = term
        ct.prev_logs = list(ct.logs)
        ct.restarts += 1
        backoff = min(MAX_BACKOFF, self.t.crash_backoff_seconds * 2 ** (ct.restarts - 1))
        ct.state, ct.until, ct.exit_code = "backoff", self._after(backoff), None
        uid = pod["metadata"]["uid"]
        ct.waiting = (
            "CrashLoopBackOff",
            f"back-off {int(backoff)}s restarting failed container={ct.name} pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
        )
        self._event(pod, run, "Warning", "BackOff", f"Back-off restarting failed container {ct.name} in pod {pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})", ct)

    def _stop_container(self, pod: dict[str, Any], run: PodRun, ct: Container, *, reason: str, message: str) -> None:
        self.c.host_network.release(f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']} container {ct.name}")
        if ct.state == "running":
            self._event(pod, run, "Normal", reason, message, ct)
        for q in ct.followers:
            q.put_nowait(None)
        ct.followers.clear()

    def _terminate(self, key: tuple[str, str], pod: dict[str, Any], run: PodRun | None) -> float | None:
        if run is None:
            self.api.finish_delete(PODS, key[0], key[1])
            return None
        if run.deleting_since is None:
            run.deleting_since = self._loop_time()
            for ct in run.containers.values():
                self._stop_container(pod, run, ct, reason="Killing", message=f"Stopping container {ct.name}")
                ct.ready = False
            self._publish(pod, run)
            grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
            return min(grace, self.t.terminate_seconds) if grace else 0.0
        self._teardown(key, run)
        self.api.finish_delete(PODS, key[0], key[1])
        return None

    def _teardown(self, key: tuple[str, str], run: PodRun) -> None:
        for ct in run.containers.values():
            self.c.host_network.release(f"pod {key[0]}/{key[1]} container {ct.name}")
            for q in ct.followers:
                q.put_nowait(None)
        self._free_ip(run.node, run.ip)
        self.runs.pop(key, None)

    def _event(self, pod: dict[str, Any], run: PodRun, etype: str, reason: str, message: str, ct: Container) -> None:
        self.c.recorder.record(pod, etype, reason, message, component="kubelet", host=run.node, field_path=f"spec.containers{{{ct.name}}}")

    # --- status ------------------------------------------------------------------------------

    def _publish(self, pod: dict[str, Any], run: PodRun) -> None:
        cur = self.api.store.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if cur is None:
            return
        old = cur.get("status") or {}
        now = self.api.now()
        statuses = []
        for c in (cur.get("spec") or {}).get("containers") or []:
            ct = run.containers.get(c["name"])
            if ct is None:
                continue
            st: dict[str, Any] = {
                "name": ct.name,
                "image": ct.image,
                "imageID": ct.image_id,
                "ready": ct.ready,
                "restartCount": ct.restarts,
                "started": ct.state == "running",
                "state": {},
                "lastState": {"terminated": ct.last_terminated} if ct.last_terminated else {},
            }
            if ct.container_id and ct.state in ("running", "exited", "backoff"):
                st["containerID"] = ct.container_id
            if ct.state == "running":
                st["state"] = {"running": {"startedAt": ct.started_at}}
            elif ct.state == "exited" and ct.terminated:
                st["state"] = {"terminated": ct.terminated}
            elif ct.waiting:
                w: dict[str, Any] = {"reason": ct.waiting[0]}
                if ct.waiting[1]:
                    w["message"] = ct.waiting[1]
                st["state"] = {"waiting": w}
            statuses.append(st)
        all_ready = bool(statuses) and all(s["ready"] for s in statuses) and run.deleting_since is None
        exited = [ct for ct in run.containers.values() if ct.state == "exited"]
        if exited and len(exited) == len(run.containers):
            phase = "Succeeded" if all((ct.terminated or {}).get("exitCode") == 0 for ct in exited) else "Failed"
        elif any(ct.state in ("running", "backoff", "exited") or ct.restarts for ct in run.containers.values()):
            phase = "Running"
        else:
            phase = "Pending"
        old_conds = {c["type"]: c for c in old.get("conditions") or []}

        def cond(ctype: str, ok: bool, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
            prev = old_conds.get(ctype)
            status = "True" if ok else "False"
            c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status else now}
            if not ok and reason:
                c["reason"], c["message"] = reason, message
            return c

        unready = [s["name"] for s in statuses if not s["ready"]]
        why = ("PodCompleted", "") if phase in ("Succeeded", "Failed") else ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
        conditions = [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", True),
            cond("Ready", all_ready, *why),
            cond("ContainersReady", all_ready, *why),
            old_conds.get("PodScheduled") or cond("PodScheduled", True),
        ]
        for c in conditions:
            if c["type"] in ("Ready", "ContainersReady") and why[0] == "PodCompleted" and not all_ready:
                c["message"] = ""
                c.pop("message")
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self._node_ip(run.node),
            "hostIPs": [{"ip": self._node_ip(run.node)}],
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": run.started,
            "containerStatuses": statuses,
            "qosClass": old.get("qosClass", "BestEffort"),
        }
        if status != old:
            self.api.write_status(PODS, cur, status)

    # --- logs (the server's LogBook) ---------------------------------------------------------

    def read(self, pod: dict[str, Any], container: str, *, previous: bool = False) -> list[tuple[str, str]]:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        run = self.runs.get(key)
        ct = run.containers.get(container) if run else None
        if ct is None:
            raise bad_request(f'container "{container}" in pod "{key[1]}" is waiting to start: ContainerCreating')
        if previous:
            if ct.prev_logs is None:
                raise bad_request(f'previous terminated container "{container}" in pod "{key[1]}" not found')
            return list(ct.prev_logs)
        if ct.state in ("creating", "pulling", "starting") and not ct.logs:
            raise bad_request(f'container "{container}" in pod "{key[1]}" is waiting to start: ContainerCreating')
        if ct.state in ("pull-failed", "backoff-pull"):
            raise bad_request(f'container "{container}" in pod "{key[1]}" is waiting to start: trying and failing to pull image')
        if ct.state == "backoff" and ct.prev_logs is not None and not ct.logs:
            return list(ct.prev_logs)
        return list(ct.logs)

    async def follow(self, pod: dict[str, Any], container: str) -> AsyncIterator[tuple[str, str]]:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        run = self.runs.get(key)
        ct = run.containers.get(container) if run else None
        if ct is None or ct.state != "running":
            return
        q: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        ct.followers.append(q)
        try:
            while True:
                item = await q.get()
                if item is None:
                    return
                yield item
        finally:
            if q in ct.followers:
                ct.followers.remove(q)


def controllers(cluster: Any) -> list[Any]:
    return [Kubelet(cluster)]


__all__ = ["Kubelet", "ApiError"]
