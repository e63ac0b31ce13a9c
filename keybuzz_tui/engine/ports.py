"""Ports and conflicts (issue 4, step 2): which ports are already taken on the cluster, by whom
and on which nodes, and whether the ports keybuzz.yaml chooses can be used.

Why this exists: the runbook's apps run with `hostNetwork: true`, so a port taken on a worker
does not fail the apply, it fails later and elsewhere: the scheduler refuses the node (another
pod's hostPort), the container crashes with "address already in use" (a hostNetwork workload,
K3s itself, ingress-nginx, or a host process Kubernetes cannot see), or the Service is rejected
("provided port is already allocated"). Finding all of that before the rollout, naming who holds
the port and offering free alternatives, turns a 3 a.m. CrashLoopBackOff into a question in the
plan.

How, with as few API calls as possible (reference/kubernetes.md sections 3b-3d and 4):
- one LIST each of nodes, Services, pods, DaemonSets, Deployments and StatefulSets, all
  namespaces, read as raw JSON through kubeio (never the typed models), paged by PAGE items so a
  20,000-pod cluster costs a handful of requests and bounded memory, run concurrently;
- the NodePort range from the K3s `k3s.io/node-args` annotation when a server shows
  `--service-node-port-range`, else one server-side dry-run create of a NodePort Service with an
  out-of-range port, whose 422 says "The range of valid ports is A-B" (nothing is created);
- static tables for K3s' own ports and ingress-nginx's hostNetwork ports;
- the Hetzner Load Balancer's listen ports (`load_balancers.get_by_name`) when a token is known;
- optionally (portprobe.py) what really listens on each worker, host processes included.

A healthy default world costs exactly 7 Kubernetes requests (6 LISTs + 1 dry-run), plus one
more per extra page of PAGE items of a kind.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from ..cancel import Cancelled
from ..config import Config
from ..events import CheckResult, Info, StepFinished, StepStarted, Warning_
from ..redact import safe_error
from . import kubeio
from .context import PLATFORM_LABELS, Context

STEP = "ports"
PAGE = 5000  # items per LIST page: few requests on huge clusters, bounded memory per page
DEFAULT_NODEPORT_RANGE = (30000, 32767)
EPHEMERAL = (32768, 60999)  # Linux net.ipv4.ip_local_port_range default: outgoing connections' ports
PART_OF = "app.kubernetes.io/part-of"

Space = Literal["node", "nodeport", "lb"]
Category = Literal["k3s", "ingress", "workload", "service", "host-process", "lb"]
CheckStatus = Literal["ok", "conflict", "invalid", "info"]

# --- what K3s itself listens on (reference/kubernetes.md section 4; k3s-io/docs requirements.md)

K3S_SERVER_PORTS: tuple[tuple[int, str, str], ...] = (
    (6443, "TCP", "K3s supervisor and kube-apiserver"),
    (6444, "TCP", "K3s kube-apiserver (local)"),
    (2379, "TCP", "K3s embedded etcd (client)"),
    (2380, "TCP", "K3s embedded etcd (peer)"),
    (2381, "TCP", "K3s etcd metrics"),
    (2382, "TCP", "K3s etcd legacy HTTP"),
    (10257, "TCP", "K3s kube-controller-manager"),
    (10258, "TCP", "K3s cloud-controller-manager"),
    (10259, "TCP", "K3s kube-scheduler"),
)
K3S_NODE_PORTS: tuple[tuple[int, str, str], ...] = (
    (10250, "TCP", "K3s kubelet"),
    (10248, "TCP", "K3s kubelet health"),
    (10249, "TCP", "K3s kube-proxy metrics"),
    (10256, "TCP", "K3s kube-proxy health"),
    (10010, "TCP", "K3s containerd CRI streaming"),
    (8472, "UDP", "K3s Flannel VXLAN"),
    (51820, "UDP", "K3s Flannel WireGuard (IPv4)"),
    (51821, "UDP", "K3s Flannel WireGuard (IPv6)"),
    (5001, "TCP", "K3s embedded registry (Spegel)"),
)
# agents run the supervisor client load balancer on --lb-server-port (6444), and the embedded
# registry (when enabled) answers on 6443 between all nodes
K3S_AGENT_PORTS: tuple[tuple[int, str, str], ...] = (
    (6444, "TCP", "K3s agent load balancer (local)"),
    (6443, "TCP", "K3s embedded registry (Spegel) / supervisor"),
)

# --- ingress-nginx's own listeners when it runs with hostNetwork (pkg/flags/flags.go defaults)
INGRESS_FLAGS: tuple[tuple[str, int, str], ...] = (
    ("--http-port", 80, "http"),
    ("--https-port", 443, "https"),
    ("--default-server-port", 8181, "default server"),
    ("--healthz-port", 10254, "healthz and metrics"),
    ("--status-port", 10246, "status (lua)"),
    ("--stream-port", 10247, "stream"),
    ("--profiler-port", 10245, "profiler"),
)
INGRESS_WEBHOOK_PORT = 8443  # chart default: --validating-webhook=:8443
INGRESS_PASSTHROUGH_PORT = 442

# the DaemonSet controller adds these tolerations to every daemon pod (daemon/util)
DS_DEFAULT_TOLERATED = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/network-unavailable",
    }
)


class PortScanError(Exception):
    """The scan could not gather what it needs; the message says what, why and what to do."""


# --- the inventory -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    name: str
    role: str  # "server" (K3s server / control plane) | "agent"
    ip: str = ""
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    taints: tuple[dict[str, Any], ...] = field(default=(), hash=False, compare=False)
    ready: bool = True
    node_args: tuple[str, ...] = field(default=(), hash=False, compare=False)


@dataclass(frozen=True)
class TakenPort:
    """One port held by one holder, and where.

    space: "node" (a node's host network: hostPorts, hostNetwork containers, K3s, host
    processes), "nodeport" (the cluster-wide NodePort allocator; kube-proxy takes the port on
    every node), "lb" (the Hetzner Load Balancer's listen ports). nodes=None means every node.
    """

    port: int
    protocol: str
    space: Space
    holder: str  # who, readable: "Service monitoring/grafana (NodePort)", "K3s kubelet"...
    category: Category
    nodes: frozenset[str] | None = None
    namespace: str = ""
    name: str = ""
    kind: str = ""  # Service | Pod | DaemonSet | Deployment | StatefulSet | ...
    ours: bool = False  # our own previous install: never a conflict (re-runs converge)
    detail: str = ""  # "port http", "healthz and metrics (--healthz-port)", "pod x on node y"
    process: str = ""  # host processes: the process name
    pid: int | None = None

    def where(self) -> str:
        if self.nodes is None:
            return "every node"
        return _nodes_text(sorted(self.nodes))


@dataclass
class PortInventory:
    nodes: list[NodeInfo] = field(default_factory=list)
    taken: list[TakenPort] = field(default_factory=list)
    nodeport_range: tuple[int, int] = DEFAULT_NODEPORT_RANGE
    nodeport_range_source: str = "default"
    lb_name: str = ""
    lb_found: bool | None = None  # None: not inspected (no token, or the API failed)
    lb_note: str = ""
    ingress_service_found: bool = False
    ingress_nodeports: dict[str, int] = field(default_factory=dict)  # port name -> nodePort
    ingress_host_network: bool | None = None
    requests: int = 0  # Kubernetes API requests this scan made
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (what could not be read and why, what to do)
    probed: dict[str, str] = field(default_factory=dict)  # node -> "ok" | why the probe failed
    _index: dict[int, list[TakenPort]] | None = field(default=None, repr=False, compare=False)

    # --- lookups ---

    def add(self, tp: TakenPort) -> None:
        self.taken.append(tp)
        if self._index is not None:
            self._index.setdefault(tp.port, []).append(tp)

    def at(self, port: int) -> list[TakenPort]:
        if self._index is None:
            idx: dict[int, list[TakenPort]] = {}
            for tp in self.taken:
                idx.setdefault(tp.port, []).append(tp)
            self._index = idx
        return self._index.get(port, [])

    def node(self, name: str) -> NodeInfo | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    @property
    def servers(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.role == "server"]

    def default_targets(self) -> list[str]:
        """Where a DaemonSet with no nodeSelector and no tolerations runs: nodes without a
        NoSchedule/NoExecute taint (the workers, in the runbook's cluster)."""
        out = [n.name for n in self.nodes if not _blocking_taints(n, [], daemon=True)]
        return out or [n.name for n in self.nodes if n.role != "server"]

    @property
    def static_band(self) -> tuple[int, int]:
        """The allocator's static band (KEP-3668, `calculateRangeOffset`): auto-allocation avoids
        it while the upper band has room, so explicitly chosen NodePorts belong there."""
        lo, hi = self.nodeport_range
        size = hi - lo + 1
        return lo, lo + min(max(16, size // 32), 128) - 1

    def host_holders(self, port: int, protocol: str = "TCP") -> list[TakenPort]:
        """Everything that makes `port` unusable for a hostNetwork listener: node-space holders of
        the same protocol, and NodePorts (kube-proxy takes them on every node)."""
        return [t for t in self.at(port) if t.space in ("node", "nodeport") and t.protocol == protocol]

    def add_probe(self, results: dict[str, list[Any]], failures: dict[str, str] | None = None) -> list[TakenPort]:
        """Merge what the probe found listening: listeners no known holder explains become
        "host process <name> (pid N) found by the probe on <node>"."""
        added: list[TakenPort] = []
        for node, listeners in results.items():
            self.probed[node] = "ok"
            for ln in listeners:
                proto = getattr(ln, "protocol", "TCP")
                explained = [
                    t for t in self.at(ln.port)
                    if t.space == "node" and t.protocol == proto and (t.nodes is None or node in t.nodes)
                ]
                if explained:
                    continue
                proc = ln.process or "unknown process"
                pid = f" (pid {ln.pid})" if ln.pid else ""
                tp = TakenPort(
                    ln.port, proto, "node",
                    f"host process {proc}{pid} found by the probe on {node}", "host-process",
                    frozenset({node}), kind="process", detail=f"listening on {ln.ip}:{ln.port}",
                    process=ln.process, pid=ln.pid,
                )
                self.add(tp)
                added.append(tp)
        for node, why in (failures or {}).items():
            self.probed[node] = why
        return added


# --- the checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortCheck:
    """One port the install needs, judged against the inventory and the rules."""

    name: str  # stable id, kubeadm-style: "hostPort/keybuzz-api", "nodePort/ingress-http"
    kind: str  # hostPort | nodePort | ingressNodePort | lbListen
    app: str  # keybuzz-api | ingress-nginx | load-balancer
    port: int
    status: CheckStatus
    field: str  # where it is chosen in keybuzz.yaml
    title: str
    detail: str = ""
    remediation: str = ""
    rule: str = ""  # the rule broken (or, when ok, the rule checked)
    holders: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()  # nodes affected (empty: cluster-wide / not node-bound)
    suggestions: tuple[int, ...] = ()
    protocol: str = "TCP"

    @property
    def failed(self) -> bool:
        return self.status in ("conflict", "invalid")


@dataclass
class PortReport:
    inventory: PortInventory
    checks: list[PortCheck]

    @property
    def problems(self) -> list[PortCheck]:
        return [c for c in self.checks if c.failed]


# --- scan ----------------------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def inc(self) -> None:
        with self._lock:
            self.n += 1


_RESOURCES: dict[str, tuple[str, str, str]] = {
    # key: (path, group for RBAC text, plural)
    "nodes": ("/api/v1/nodes", "", "nodes"),
    "services": ("/api/v1/services", "", "services"),
    "pods": ("/api/v1/pods", "", "pods"),
    "daemonsets": ("/apis/apps/v1/daemonsets", "apps", "daemonsets"),
    "deployments": ("/apis/apps/v1/deployments", "apps", "deployments"),
    "statefulsets": ("/apis/apps/v1/statefulsets", "apps", "statefulsets"),
}


def scan(ctx: Context, *, probe: bool = False, probe_nodes: Sequence[str] | None = None,
         probe_timeout: float = 60.0, page: int = PAGE) -> PortInventory:
    """Every port already taken on the cluster, who holds it and where.

    Raises PortScanError (a clear operator message) when a LIST is refused or the API cannot be
    reached; Cancelled when ctx.cancel fires. With probe=True, a short-lived hostNetwork pod per
    target node (portprobe.py) adds the listeners Kubernetes cannot see.
    """
    started = time.perf_counter()
    cfg = ctx.config
    counter = _Counter()
    ctx.cancel.check()
    ctx.kube()  # build the client once, before the threads share it
    inv = PortInventory(lb_name=cfg.load_balancer.name)
    ours = _OurNames(cfg)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="ports-scan") as pool:
        futs: dict[str, Future[Any]] = {
            "nodes": pool.submit(_list, ctx, "nodes", _extract_node, page, counter),
            "services": pool.submit(_list, ctx, "services", _extract_service, page, counter),
            "pods": pool.submit(
                _list, ctx, "pods", _extract_pod, page, counter,
                fieldSelector="status.phase!=Succeeded,status.phase!=Failed",
            ),
            "daemonsets": pool.submit(_list, ctx, "daemonsets", _workload_extractor("DaemonSet"), page, counter),
            "deployments": pool.submit(_list, ctx, "deployments", _workload_extractor("Deployment"), page, counter),
            "statefulsets": pool.submit(_list, ctx, "statefulsets", _workload_extractor("StatefulSet"), page, counter),
        }
        lb_fut = pool.submit(_load_balancer, ctx)
        range_fut = pool.submit(_nodeport_range_after, ctx, futs["nodes"], counter)
        results: dict[str, Any] = {}
        errors: list[BaseException] = []
        for key, fut in futs.items():
            try:
                results[key] = fut.result()
            except BaseException as e:  # noqa: BLE001 - collected, the first is re-raised below
                errors.append(e)
        try:
            rng = range_fut.result()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            rng = None
        lb = lb_fut.result()
    for e in errors:
        if isinstance(e, Cancelled):
            raise e
    if errors:
        first = errors[0]
        if isinstance(first, PortScanError):
            raise first
        raise PortScanError(f"the port scan failed: {safe_error(first)}") from None

    inv.requests = counter.n
    nodes: list[NodeInfo] = results["nodes"]
    inv.nodes = nodes
    if rng is not None:
        inv.nodeport_range, inv.nodeport_range_source, note = rng
        if note:
            inv.notes.append((note, (
                "Check --service-node-port-range in the K3s servers' configuration (/etc/rancher/k3s/config.yaml), "
                "or allow 'create' on services in namespace default so the dry-run can read it; the NodePort "
                f"checks assume {inv.nodeport_range[0]}-{inv.nodeport_range[1]}.")))
    inv.counts = {k: len(v) for k, v in results.items() if k != "nodes"}
    inv.counts["nodes"] = len(nodes)
    _build(inv, cfg, ours, results)
    found, entries, note = lb
    inv.lb_found = found
    inv.lb_note = note
    for tp in entries:
        inv.add(tp)
    if found is None and note:
        inv.notes.append((note, "Give keybuzz-tui the Hetzner API token (keyring or HCLOUD_TOKEN) to check the Load "
                                "Balancer's existing listen ports; the checks go on without them."))
    ctx.emit(Info(step=STEP, message=(
        f"Port scan: {len(nodes)} nodes, {inv.counts['services']} Services with NodePorts, "
        f"{inv.counts['pods']} pods and {inv.counts['daemonsets'] + inv.counts['deployments'] + inv.counts['statefulsets']} "
        f"workload templates with host ports, in {inv.requests} API requests"
    )))
    ctx.emit(Info(step=STEP, message=f"NodePort range {inv.nodeport_range[0]}-{inv.nodeport_range[1]} ({inv.nodeport_range_source})"))
    if probe:
        from . import portprobe

        targets = list(probe_nodes) if probe_nodes is not None else inv.default_targets()
        infos = [inv.node(n) or n for n in targets]
        try:
            res = portprobe.run_probe(ctx, infos, None, timeout=probe_timeout)
        except portprobe.ProbeError as e:
            inv.notes.append((f"port probe not run: {e}", "Host processes holding our ports stay invisible until the "
                              "rollout; check the workers with `ss -ltnp`, or run the probe with a context allowed to."))
            inv.add_probe({}, {n: f"not probed: {e}" for n in targets})
        else:
            inv.add_probe(res.listeners, res.failures)
            inv.requests += res.requests
    inv.seconds = time.perf_counter() - started
    return inv


class _OurNames:
    """Our own previous install: in the configured namespace, labelled part-of=keybuzz or named
    like one of our apps. Such holders are never conflicts: a re-run converges onto them."""

    def __init__(self, cfg: Config) -> None:
        self.namespace = cfg.namespace
        self.names = {a.name for a in cfg.apps}

    def __call__(self, namespace: str, name: str, labels: dict[str, str] | None) -> bool:
        if namespace != self.namespace:
            return False
        return (labels or {}).get(PART_OF) == PLATFORM_LABELS[PART_OF] or name in self.names


TRANSIENT = (429, 500, 502, 503, 504)  # an overloaded or electing control plane: worth a retry


def retry_transient(ctx: Context, call: Callable[[], Any], *, attempts: int = 5, on_attempt: Callable[[], None] | None = None,
                    cancellable: bool = True) -> Any:
    """`call()` again after 429/5xx answers (idempotent calls only), backing off 0.2 s doubling
    to 2 s; the last error is raised. `on_attempt` counts every request sent. Clean-up code passes
    cancellable=False so a cancel never interrupts it."""
    delay = 0.2
    for i in range(attempts):
        try:
            res = call()
        except kubeio.KubeError as e:
            if on_attempt:
                on_attempt()
            if e.status not in TRANSIENT or i == attempts - 1:
                raise
        else:
            if on_attempt:
                on_attempt()
            return res
        if cancellable:
            if ctx.cancel.wait(delay):
                ctx.cancel.check()
        else:
            time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def _list(ctx: Context, key: str, extract: Callable[[dict[str, Any]], Any], page: int,
          counter: _Counter, **query: Any) -> list[Any]:
    """One paged LIST, extracted page by page so only the compact records stay in memory.
    Transient errors are retried; an expired continue token (410) restarts the list once."""
    path, group, plural = _RESOURCES[key]
    out: list[Any] = []
    cont: str | None = None
    restarted = False
    while True:
        ctx.cancel.check()
        q: dict[str, Any] = dict(query)
        if page:
            q["limit"] = page
        if cont:
            q["continue"] = cont
        try:
            data = retry_transient(ctx, functools.partial(kubeio.get, ctx, path, **q), on_attempt=counter.inc)
        except kubeio.KubeError as e:
            if e.status == 410 and cont and not restarted:
                out, cont, restarted = [], None, True
                continue
            raise _list_error(e, group, plural) from None
        except kubeio.Unreachable as e:
            raise PortScanError(f"cannot list {plural} for the port scan: {e}. Check the kubeconfig context and that the API server is up.") from None
        for item in data.get("items") or ():
            rec = extract(item)
            if rec is not None:
                out.append(rec)
        cont = (data.get("metadata") or {}).get("continue")
        if not cont:
            return out


def _list_error(e: kubeio.KubeError, group: str, plural: str) -> PortScanError:
    res = f"{plural}.{group}" if group else plural
    if e.status == 403:
        return PortScanError(
            f"cannot list {res} in all namespaces: {e.message}. The port scan needs the 'list' "
            f"permission on {plural} (API group {group or 'core'!r}) cluster-wide, like nodes, services "
            "and pods (core) and daemonsets, deployments and statefulsets (apps). Grant it with a "
            f"ClusterRole rule (apiGroups: [\"{group}\"], resources: [\"{plural}\"], verbs: [\"list\"]) "
            "bound to this user, or use a kubeconfig context that has it."
        )
    if e.status == 401:
        return PortScanError(f"the API server rejected the credentials while listing {res}: {e.message}. Refresh the kubeconfig token.")
    return PortScanError(f"listing {res} for the port scan failed ({e.status} {e.reason}): {e.message}")


# --- extraction: keep only what holds ports --------------------------------------------------------


def _extract_node(obj: dict[str, Any]) -> NodeInfo:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    ann = meta.get("annotations") or {}
    server = any(k in labels for k in ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"))
    args: tuple[str, ...] = ()
    raw = ann.get("k3s.io/node-args")
    if raw:
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, list):
                args = tuple(str(a) for a in parsed)
        except ValueError:
            pass
        if args[:1] == ("server",):
            server = True
    ip = ""
    status = obj.get("status") or {}
    for a in status.get("addresses") or ():
        if a.get("type") == "InternalIP":
            ip = a.get("address", "")
            break
    ready = True
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready":
            ready = c.get("status") == "True"
    return NodeInfo(meta.get("name", ""), "server" if server else "agent", ip, dict(labels),
                    tuple((obj.get("spec") or {}).get("taints") or ()), ready, args)


@dataclass
class _Svc:
    namespace: str
    name: str
    labels: dict[str, str]
    ports: list[tuple[int, str, str]]  # (nodePort, protocol, what)


def _extract_service(obj: dict[str, Any]) -> _Svc | None:
    spec = obj.get("spec") or {}
    ports = []
    for p in spec.get("ports") or ():
        np = p.get("nodePort")
        if isinstance(np, int) and np > 0:
            ports.append((np, p.get("protocol") or "TCP", f"port {p.get('name') or p.get('port')}"))
    hc = spec.get("healthCheckNodePort")
    if isinstance(hc, int) and hc > 0:
        ports.append((hc, "TCP", "healthCheckNodePort"))
    if not ports:
        return None
    meta = obj.get("metadata") or {}
    return _Svc(meta.get("namespace", ""), meta.get("name", ""), meta.get("labels") or {}, ports)


@dataclass
class _PodRec:
    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    owner: tuple[str, str] | None  # (kind, name) of the controller, ReplicaSet resolved to Deployment
    ports: list[tuple[int, str, str, str]]  # (port, protocol, how, container)
    ingress: bool


def _host_ports(spec: dict[str, Any]) -> list[tuple[int, str, str, str]]:
    """(port, protocol, "hostPort"|"hostNetwork", container) a pod spec takes on its node.

    A hostNetwork pod binds every containerPort on the node (templates may leave hostPort at 0;
    pods have it defaulted to containerPort). Sidecars (init containers with restartPolicy
    Always) keep running, so their ports count too.
    """
    hn = spec.get("hostNetwork") is True
    out = []
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            cp = p.get("containerPort") or 0
            port = (hp or cp) if hn else hp
            if isinstance(port, int) and 0 < port < 65536:
                out.append((port, p.get("protocol") or "TCP", "hostNetwork" if hn else "hostPort", c.get("name", "")))
    return out


def _is_ingress_nginx(labels: dict[str, str], spec: dict[str, Any]) -> bool:
    if labels.get("app.kubernetes.io/name") == "ingress-nginx":
        return True
    return any("ingress-nginx/controller" in (c.get("image") or "") for c in spec.get("containers") or ())


def _owner(meta: dict[str, Any]) -> tuple[str, str] | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            kind, name = ref.get("kind", ""), ref.get("name", "")
            if kind == "ReplicaSet":
                h = (meta.get("labels") or {}).get("pod-template-hash")
                if h and name.endswith("-" + h):
                    return "Deployment", name[: -len(h) - 1]
            return kind, name
    return None


def _extract_pod(obj: dict[str, Any]) -> _PodRec | None:
    spec = obj.get("spec") or {}
    node = spec.get("nodeName")
    if not node:
        return None  # not bound: holds nothing yet
    ports = _host_ports(spec)
    if not ports:
        return None
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return _PodRec(meta.get("namespace", ""), meta.get("name", ""), node, labels, _owner(meta), ports,
                   spec.get("hostNetwork") is True and _is_ingress_nginx(labels, spec))


@dataclass
class _Workload:
    kind: str
    namespace: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]  # the pod template's spec
    ports: list[tuple[int, str, str, str]]
    ingress: bool


def _workload_extractor(kind: str) -> Callable[[dict[str, Any]], _Workload | None]:
    """LIST items carry no `kind` (the list does): the extractor is told which kind it reads."""

    def extract(obj: dict[str, Any]) -> _Workload | None:
        return _extract_workload(kind, obj)

    return extract


def _extract_workload(kind: str, obj: dict[str, Any]) -> _Workload | None:
    tspec = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    ports = _host_ports(tspec)
    if not ports:
        return None
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    ingress = tspec.get("hostNetwork") is True and _is_ingress_nginx(labels, tspec)
    keep = {k: tspec[k] for k in ("nodeSelector", "tolerations", "affinity", "nodeName", "hostNetwork", "containers") if k in tspec}
    return _Workload(kind, meta.get("namespace", ""), meta.get("name", ""), labels, keep, ports, ingress)


# --- node placement ------------------------------------------------------------------------------


def _tolerates(tols: Iterable[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tols:
        eff = t.get("effect") or ""
        if eff and eff != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        key = t.get("key") or ""
        if not key:
            if op == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _blocking_taints(node: NodeInfo, tols: list[dict[str, Any]], *, daemon: bool) -> list[dict[str, Any]]:
    return [
        t for t in node.taints
        if t.get("effect") in ("NoSchedule", "NoExecute")
        and not (daemon and t.get("key") in DS_DEFAULT_TOLERATED)
        and not _tolerates(tols, t)
    ]


def _expr_matches(values: dict[str, str], e: dict[str, Any]) -> bool:
    key, op, vals = e.get("key", ""), e.get("operator", ""), e.get("values") or []
    have = key in values
    v = values.get(key)
    if op == "In":
        return have and v in vals
    if op == "NotIn":
        return not have or v not in vals
    if op == "Exists":
        return have
    if op == "DoesNotExist":
        return not have
    if op in ("Gt", "Lt") and have and vals:
        try:
            a, b = int(v or ""), int(vals[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _term_matches(node: NodeInfo, term: dict[str, Any]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches no node
    return all(_expr_matches(node.labels, e) for e in exprs) and all(
        _expr_matches({"metadata.name": node.name}, f) for f in fields
    )


def eligible_nodes(nodes: Sequence[NodeInfo], spec: dict[str, Any], *, daemon: bool) -> frozenset[str]:
    """The nodes a pod template can run on: nodeSelector, required node affinity, taints."""
    if spec.get("nodeName"):
        return frozenset({spec["nodeName"]})
    sel = spec.get("nodeSelector") or {}
    tols = spec.get("tolerations") or []
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")) or []
    out = set()
    for n in nodes:
        if any(n.labels.get(k) != v for k, v in sel.items()):
            continue
        if terms and not any(_term_matches(n, t) for t in terms):
            continue
        if _blocking_taints(n, tols, daemon=daemon):
            continue
        out.add(n.name)
    return frozenset(out)


# --- building the inventory ------------------------------------------------------------------------


class _Acc:
    __slots__ = ("category", "namespace", "name", "kind", "ours", "nodes", "details", "every")

    def __init__(self, category: Category, namespace: str, name: str, kind: str, ours: bool) -> None:
        self.category, self.namespace, self.name, self.kind, self.ours = category, namespace, name, kind, ours
        self.nodes: set[str] = set()
        self.every = False
        self.details: list[str] = []


def _build(inv: PortInventory, cfg: Config, ours: _OurNames, results: dict[str, Any]) -> None:
    nodes: list[NodeInfo] = inv.nodes
    acc: dict[tuple[Space, int, str, str], _Acc] = {}

    def put(space: Space, port: int, proto: str, holder: str, category: Category, *, namespace: str = "",
            name: str = "", kind: str = "", is_ours: bool = False, node_set: Iterable[str] | None = None,
            detail: str = "") -> None:
        key = (space, port, proto, holder)
        a = acc.get(key)
        if a is None:
            a = acc[key] = _Acc(category, namespace, name, kind, is_ours)
        if node_set is None:
            a.every = True
        else:
            a.nodes.update(node_set)
        if detail and detail not in a.details and len(a.details) < 4:
            a.details.append(detail)

    # K3s itself
    server_names = [n.name for n in nodes if n.role == "server"]
    agent_names = [n.name for n in nodes if n.role != "server"]
    for port, proto, who in K3S_NODE_PORTS:
        put("node", port, proto, who, "k3s", node_set=None)
    if server_names:
        for port, proto, who in K3S_SERVER_PORTS:
            put("node", port, proto, who, "k3s", node_set=server_names)
    if agent_names:
        for port, proto, who in K3S_AGENT_PORTS:
            put("node", port, proto, who, "k3s", node_set=agent_names)

    # Services: NodePorts are cluster-wide
    ing_ns, ing_svc = cfg.ingress.namespace, cfg.ingress.service
    for s in results["services"]:
        holder = f"Service {s.namespace}/{s.name} (NodePort)"
        mine = ours(s.namespace, s.name, s.labels)
        for np, proto, what in s.ports:
            put("nodeport", np, proto, holder, "service", namespace=s.namespace, name=s.name, kind="Service",
                is_ours=mine, node_set=None, detail=what)
            if s.namespace == ing_ns and s.name == ing_svc and what.startswith("port "):
                inv.ingress_nodeports[what[5:]] = np
        if s.namespace == ing_ns and s.name == ing_svc:
            inv.ingress_service_found = True

    # workloads: templates say where they may run, pods where they run now
    templates: dict[tuple[str, str, str], _Workload] = {}
    for key in ("daemonsets", "deployments", "statefulsets"):
        for w in results[key]:
            templates[(w.kind, w.namespace, w.name)] = w
    placed: dict[tuple[str, str, str], set[str]] = {}
    for p in results["pods"]:
        if p.owner and p.owner[0] in ("DaemonSet", "Deployment", "StatefulSet"):
            kind, oname = p.owner
            placed.setdefault((kind, p.namespace, oname), set()).add(p.node)
            holder_kind, holder_name = kind, oname
        elif p.owner:
            holder_kind, holder_name = p.owner
        else:
            holder_kind, holder_name = "Pod", p.name
        mine = ours(p.namespace, holder_name, p.labels)
        for port, proto, how, _ct in p.ports:
            put("node", port, proto, f"{holder_kind} {p.namespace}/{holder_name} ({how})",
                "ingress" if p.ingress else "workload", namespace=p.namespace, name=holder_name, kind=holder_kind,
                is_ours=mine, node_set=(p.node,),
                detail="" if (holder_kind, p.namespace, holder_name) in templates else f"pod {p.name} on {p.node}")
    for (kind, ns, name), w in templates.items():
        daemon = kind == "DaemonSet"
        mine = ours(ns, name, w.labels)
        now = placed.get((kind, ns, name))
        if daemon:
            where: set[str] | frozenset[str] = eligible_nodes(nodes, w.spec, daemon=True) | (now or set())
            detail = f"runs on every eligible node ({len(where)})"
        elif now:
            where = now
            detail = f"{len(now)} node(s) now; may be rescheduled onto other eligible nodes"
        else:
            where = eligible_nodes(nodes, w.spec, daemon=False)
            detail = f"no pod placed yet: may run on any of {len(where)} eligible node(s)"
        how = "hostNetwork" if w.spec.get("hostNetwork") else "hostPort"
        holder = f"{kind} {ns}/{name} ({how})"
        cat: Category = "ingress" if w.ingress else "workload"
        for port, proto, _how, _ct in w.ports:
            put("node", port, proto, holder, cat, namespace=ns, name=name, kind=kind, is_ours=mine,
                node_set=where, detail=detail)
        if w.ingress:
            inv.ingress_host_network = True
            declared = {(p, pr) for p, pr, _h, _c in w.ports}
            for port, what in _ingress_extra_ports(w.spec):
                if (port, "TCP") not in declared:
                    put("node", port, "TCP", holder, "ingress", namespace=ns, name=name, kind=kind, is_ours=mine,
                        node_set=where, detail=what)
    if inv.ingress_host_network is None and any(w.kind in ("DaemonSet", "Deployment") for w in templates.values()):
        inv.ingress_host_network = False

    for (space, port, proto, holder), a in acc.items():
        inv.taken.append(TakenPort(
            port, proto, space, holder, a.category, None if a.every else frozenset(a.nodes),
            a.namespace, a.name, a.kind, a.ours, "; ".join(a.details),
        ))
    inv._index = None


def _ingress_extra_ports(spec: dict[str, Any]) -> list[tuple[int, str]]:
    """The ports the controller binds without declaring them: flag defaults, or the values given."""
    args: list[str] = []
    for c in spec.get("containers") or ():
        args += [str(a) for a in (c.get("args") or []) + (c.get("command") or [])]
    given: dict[str, str] = {}
    for i, a in enumerate(args):
        if a.startswith("--"):
            k, eq, v = a.partition("=")
            if eq:
                given[k] = v
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                given[k] = args[i + 1]
            else:
                given[k] = "true"
    out: list[tuple[int, str]] = []
    for flag, default, what in INGRESS_FLAGS:
        port = _int(given.get(flag), default)
        out.append((port, f"{what} ({flag})"))
    hook = given.get("--validating-webhook")
    out.append((_int(hook.rsplit(":", 1)[-1] if hook else None, INGRESS_WEBHOOK_PORT), "admission webhook (--validating-webhook)"))
    if given.get("--enable-ssl-passthrough") not in (None, "false"):
        out.append((_int(given.get("--ssl-passthrough-proxy-port"), INGRESS_PASSTHROUGH_PORT), "ssl-passthrough proxy"))
    return out


def _int(v: str | None, default: int) -> int:
    try:
        return int(v) if v not in (None, "") else default  # type: ignore[arg-type]
    except ValueError:
        return default


# --- NodePort range --------------------------------------------------------------------------------

_RANGE_RE = re.compile(r"range of valid ports is (\d+)-(\d+)")
_FLAG_RANGE_RE = re.compile(r"service-node-port-range[= ](\d+)[-:](\d+)")


def _range_from_args(nodes: Sequence[NodeInfo]) -> tuple[tuple[int, int], str] | None:
    for n in nodes:
        if not n.node_args:
            continue
        args = list(n.node_args)
        for i, a in enumerate(args):
            text = a
            if a in ("--service-node-port-range",) and i + 1 < len(args):
                text = f"service-node-port-range={args[i + 1]}"
            elif a in ("--kube-apiserver-arg",) and i + 1 < len(args):
                text = args[i + 1]
            m = _FLAG_RANGE_RE.search(text)
            if m:
                return (int(m.group(1)), int(m.group(2))), f"k3s.io/node-args of {n.name}"
    return None


def _nodeport_range_after(ctx: Context, nodes_fut: Future[Any], counter: _Counter) -> tuple[tuple[int, int], str, str]:
    try:
        nodes = nodes_fut.result()
    except BaseException:  # noqa: BLE001 - the nodes LIST reports its own error
        nodes = []
    return nodeport_range(ctx, nodes, counter)


def nodeport_range(ctx: Context, nodes: Sequence[NodeInfo], counter: _Counter | None = None) -> tuple[tuple[int, int], str, str]:
    """(range, where it came from, note). From the K3s server's node-args when visible; else a
    server-side dry-run create of a NodePort Service with nodePort 1, whose 422 names the range
    (nothing is created or allocated); else the Kubernetes default, saying why."""
    found = _range_from_args(nodes)
    if found is not None:
        return found[0], found[1], ""
    ctx.cancel.check()
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"generateName": "keybuzz-tui-nodeport-range-", "labels": dict(PLATFORM_LABELS)},
        "spec": {"type": "NodePort", "ports": [{"port": 1, "protocol": "TCP", "nodePort": 1}]},
    }
    why = ""
    try:
        retry_transient(
            ctx, lambda: kubeio.request(ctx, "POST", "/api/v1/namespaces/default/services", query={"dryRun": "All"}, body=body),
            on_attempt=counter.inc if counter else None,
        )
        why = "the dry-run accepted nodePort 1, so the range is unusual"
    except kubeio.KubeError as e:
        m = _RANGE_RE.search(e.message)
        if m:
            return (int(m.group(1)), int(m.group(2))), "server-side dry-run of a NodePort Service (\"The range of valid ports is ...\")", ""
        why = f"the dry-run probe was refused ({e.status} {e.reason}: {e.message})"
    except kubeio.Unreachable as e:
        why = f"the dry-run probe failed: {e}"
    lo, hi = DEFAULT_NODEPORT_RANGE
    return DEFAULT_NODEPORT_RANGE, f"assumed Kubernetes default {lo}-{hi}", (
        f"NodePort range not read: no --service-node-port-range in k3s.io/node-args and {why}; "
        f"assuming {lo}-{hi}. Check `--service-node-port-range` in the K3s servers' config."
    )


# --- the Hetzner Load Balancer ---------------------------------------------------------------------


def _load_balancer(ctx: Context) -> tuple[bool | None, list[TakenPort], str]:
    name = ctx.config.load_balancer.name
    try:
        client = ctx.hcloud()
    except Exception as e:  # noqa: BLE001 - a broken keyring must not stop the port scan
        return None, [], f"Load Balancer {name} not inspected: {safe_error(e)}"
    if client is None:
        return None, [], f"Load Balancer {name} not inspected: no Hetzner API token"
    try:
        lb = client.load_balancers.get_by_name(name)
    except Exception as e:  # noqa: BLE001 - hcloud raises APIException and requests' errors
        return None, [], f"Load Balancer {name} not inspected: {safe_error(e)}"
    if lb is None:
        return False, [], f"Load Balancer {name} does not exist yet"
    out = []
    for s in lb.services or ():
        redirect = bool(getattr(getattr(s, "http", None), "redirect_http", False))
        detail = f"{s.protocol} {s.listen_port} -> {s.destination_port}" + (" (redirect_http)" if redirect else "")
        out.append(TakenPort(int(s.listen_port), "TCP", "lb", f"Load Balancer {name} service {s.listen_port}", "lb",
                             None, name=name, kind="LoadBalancer", ours=True, detail=detail))
        if redirect and int(s.listen_port) != 80:
            out.append(TakenPort(80, "TCP", "lb", f"Load Balancer {name} service {s.listen_port} (redirect_http)", "lb",
                                 None, name=name, kind="LoadBalancer", ours=True, detail="redirect_http takes port 80"))
    return True, out, ""


# --- check -----------------------------------------------------------------------------------------


def check(config: Config, inventory: PortInventory, *, target_nodes: Sequence[str] | None = None) -> list[PortCheck]:
    """One PortCheck per port the install needs. Pure: no I/O, never raises on odd input."""
    targets = frozenset(target_nodes if target_nodes is not None else inventory.default_targets())
    own = _OwnPorts(config)
    out: list[PortCheck] = []
    for i in range(len(config.apps)):
        out.append(_check_host_port(config, inventory, targets, own, i))
        out.append(_check_node_port(config, inventory, own, i))
    ing = config.ingress
    for label, port, pname, fld in (
        ("http", ing.http_node_port, "http", "ingress.http_node_port"),
        ("https", ing.https_node_port, "https", "ingress.https_node_port"),
    ):
        out.append(_check_ingress_node_port(config, inventory, own, label, port, pname, fld))
    for j in range(len(config.load_balancer.services)):
        out.append(_check_lb_port(config, inventory, j))
    return out


class _OwnPorts:
    """Every port keybuzz.yaml chooses, with where it is chosen: the duplicate rules."""

    def __init__(self, cfg: Config) -> None:
        self.host: list[tuple[int, str, str]] = []  # (port, who, field)
        self.nodeports: list[tuple[int, str, str]] = []
        for i, a in enumerate(cfg.apps):
            self.host.append((a.port, a.name, f"apps[{i}].port"))
            if a.node_port:
                self.nodeports.append((a.node_port, a.name, f"apps[{i}].node_port"))
        self.nodeports.append((cfg.ingress.http_node_port, "ingress http", "ingress.http_node_port"))
        self.nodeports.append((cfg.ingress.https_node_port, "ingress https", "ingress.https_node_port"))

    def all_ports(self) -> set[int]:
        return {p for p, _w, _f in self.host} | {p for p, _w, _f in self.nodeports}

    def others(self, port: int, field: str) -> list[tuple[int, str, str]]:
        return [e for e in self.host + self.nodeports if e[0] == port and e[2] != field]


def _valid_port(p: Any) -> bool:
    return isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535


def _nodes_text(nodes: Sequence[str], limit: int = 6) -> str:
    nodes = list(nodes)
    if not nodes:
        return "no node"
    if len(nodes) <= limit:
        return ", ".join(nodes)
    return f"{', '.join(nodes[:3])} and {len(nodes) - 3} more ({len(nodes)} nodes)"


def _eg(sugg: Sequence[int]) -> str:
    if not sugg:
        return ""
    return "e.g. " + (str(sugg[0]) if len(sugg) == 1 else f"{', '.join(str(s) for s in sugg[:-1])} or {sugg[-1]}")


_RULES: dict[str, str] = {
    "k3s": "K3s reserved port",
    "ingress": "ingress-nginx reserved port (hostNetwork)",
    "workload": "port already taken on the node by another workload",
    "service": "NodePort of a Service: kube-proxy takes it on every node",
    "host-process": "port held by a host process Kubernetes cannot see",
    "lb": "listen port of the Load Balancer",
}


def _holder_advice(t: TakenPort, port: int, nodes: Sequence[str], fld: str, sugg: Sequence[int]) -> str:
    other = f"choose another port ({fld} in keybuzz.yaml), {_eg(sugg)}" if sugg else f"choose another port ({fld} in keybuzz.yaml)"
    where = _nodes_text(nodes)
    if t.category == "host-process":
        proc = t.process or "the process"
        pid = f", pid {t.pid}" if t.pid else ""
        return (f"{port} is held on {where} by a host process ({proc}{pid}) that Kubernetes cannot see: stop it "
                f"(`systemctl disable --now {proc}` on that worker) or {other}")
    if t.category == "k3s":
        return f"{port} is K3s' own port ({t.holder}) on {where}: never reuse it; {other}"
    if t.category == "ingress":
        return f"{port} is bound by ingress-nginx ({t.holder}) on {where}: {other}"
    if t.category == "service":
        return (f"{port} is NodePort of {t.holder}; kube-proxy takes it on every node: {other}, or move that Service "
                f"(`kubectl -n {t.namespace} edit svc {t.name}`)")
    if t.category == "workload":
        return (f"{port} is taken on {where} by {t.holder}; the scheduler would not place our pods there "
                f"(\"didn't have free ports\") or they would fail to bind: {other}, or move that workload")
    return f"{port} is used by {t.holder}: {other}"


def _check_host_port(cfg: Config, inv: PortInventory, targets: frozenset[str], own: _OwnPorts, i: int) -> PortCheck:
    app = cfg.apps[i]
    port, fld = app.port, f"apps[{i}].port"
    name = f"hostPort/{app.name}"
    title = f"{app.name}: hostPort {port} (hostNetwork, containerPort = hostPort) on {len(targets)} node(s)"
    base = dict(name=name, kind="hostPort", app=app.name, port=port if isinstance(port, int) else 0, field=fld, title=title)
    if not _valid_port(port):
        sugg = _host_suggestions(inv, _clamp(port, 1024, 65535), targets, own, fld)
        return PortCheck(**base, status="invalid", rule="a port is 1-65535",
                         detail=f"{fld} = {port!r} is not a port number (1-65535)",
                         remediation=f"set {fld} to a free port, {_eg(sugg)}", suggestions=tuple(sugg))
    problems: list[str] = []
    dups = own.others(port, fld)
    if dups:
        problems.append("no duplicates among our own ports: " + ", ".join(f"{f} ({w}) also uses {port}" for _p, w, f in dups))
    in_range = inv.nodeport_range[0] <= port <= inv.nodeport_range[1]
    mine, foreign = [], []
    affected: set[str] = set()
    for t in inv.host_holders(port):
        hit = targets if t.nodes is None else (t.nodes & targets)
        if not hit:
            continue
        if t.ours:
            mine.append(t)
        else:
            foreign.append(t)
            affected |= hit
    if foreign or problems:
        sugg = _host_suggestions(inv, port, targets, own, fld)
    else:
        sugg = []
    nodes = tuple(sorted(affected))
    holders = tuple(t.holder for t in foreign) + tuple(f"{t.holder} [our previous install]" for t in mine)
    if foreign:
        t0 = foreign[0]
        rules = sorted({_RULES[t.category] for t in foreign})
        per = "; ".join(
            t.holder if t.category == "host-process"
            else f"{t.holder} on {_nodes_text(sorted(targets if t.nodes is None else t.nodes & targets))}"
            for t in foreign
        )
        detail = f"{app.name} needs {port}/TCP on every target node, but it is taken: {per}"
        if problems:
            detail += "; " + "; ".join(problems)
        advice = _holder_advice(t0, port, sorted(targets if t0.nodes is None else t0.nodes & targets), fld, sugg)
        return PortCheck(**base, status="conflict", rule="; ".join(rules), detail=detail, remediation=advice,
                         holders=holders, nodes=nodes, suggestions=tuple(sugg))
    if problems:
        return PortCheck(**base, status="invalid", rule="no duplicates among our own ports", detail="; ".join(problems),
                         remediation=f"give each app its own port: set {fld}, {_eg(sugg)}", holders=holders,
                         suggestions=tuple(sugg))
    notes = []
    status: CheckStatus = "ok"
    if mine:
        notes.append(f"held by our previous install ({', '.join(t.holder for t in mine)}): a re-run converges")
        if any(t.name != app.name for t in mine):
            status = "info"
            notes.append("another of our apps holds it now; its pods move when this plan is applied")
    if in_range:
        status = "info"
        notes.append(f"{port} is inside the NodePort range {inv.nodeport_range[0]}-{inv.nodeport_range[1]}: a Service "
                     "could be given the same NodePort later and kube-proxy would take its traffic")
    if port < 1024:
        status = "info"
        notes.append(f"binding {port} (< 1024) needs root or NET_BIND_SERVICE in the container")
    probed = [n for n in targets if inv.probed.get(n) == "ok"]
    seen = f"; probed free on {len(probed)} node(s)" if probed else ""
    unprobed = sorted(n for n in targets if n in inv.probed and inv.probed[n] != "ok")
    if unprobed:
        status = "info"
        notes.append(f"the probe gave no answer on {_nodes_text(unprobed)}: a host process there would be unseen")
    detail = f"{port}/TCP is free on {_nodes_text(sorted(targets))}{seen}" + ("; " + "; ".join(notes) if notes else "")
    return PortCheck(**base, status=status, rule="hostNetwork: hostPort == containerPort, free on every target node",
                     detail=detail, holders=holders)


def _check_node_port(cfg: Config, inv: PortInventory, own: _OwnPorts, i: int) -> PortCheck:
    app = cfg.apps[i]
    port, fld = app.node_port, f"apps[{i}].node_port"
    lo, hi = inv.nodeport_range
    name = f"nodePort/{app.name}"
    title = f"{app.name}: NodePort {port} (Service {cfg.namespace}/{app.name})"
    base = dict(name=name, kind="nodePort", app=app.name, port=port if isinstance(port, int) else 0, field=fld, title=title)
    if port == 0:
        return PortCheck(**base, status="info", rule="NodePort inside the cluster range",
                         detail=f"no NodePort chosen: the cluster allocates one from {lo}-{hi}")
    return _judge_node_port(inv, own, port, fld, base, expected=None)


def _judge_node_port(inv: PortInventory, own: _OwnPorts, port: Any, fld: str, base: dict[str, Any],
                     expected: tuple[str, str, str] | None) -> PortCheck:
    lo, hi = inv.nodeport_range
    src = inv.nodeport_range_source
    range_rule = f"NodePort inside the cluster range {lo}-{hi} ({src})"
    if not _valid_port(port) or not lo <= port <= hi:
        sugg = _nodeport_suggestions(inv, _clamp(port, lo, hi), own, fld)
        return PortCheck(**base, status="invalid", rule=range_rule,
                         detail=f"{fld} = {port!r} is outside the cluster's NodePort range {lo}-{hi} ({src}); the API "
                                f"server would answer \"provided port is not in the valid range\"",
                         remediation=f"set {fld} to a port in {lo}-{hi}, {_eg(sugg)}", suggestions=tuple(sugg))
    problems = []
    dups = [d for d in own.others(port, fld)]
    if dups:
        problems.append("no duplicates among our own ports: " + ", ".join(f"{f} ({w}) also uses {port}" for _p, w, f in dups))
    mine, foreign, exp = [], [], []
    affected: set[str] = set()
    for t in inv.at(port):
        if t.space == "lb":
            continue
        if expected is not None and t.space == "nodeport" and (t.namespace, t.name) == expected[:2]:
            exp.append(t)
        elif t.ours:
            mine.append(t)
        else:
            foreign.append(t)
            if t.space == "node" and t.nodes is not None:
                affected |= t.nodes
    holders = tuple(t.holder for t in exp + foreign) + tuple(f"{t.holder} [our previous install]" for t in mine)
    if foreign:
        sugg = _nodeport_suggestions(inv, port, own, fld)
        t0 = next((t for t in foreign if t.space == "nodeport"), foreign[0])
        if t0.space == "nodeport":
            detail = (f"NodePort {port} is already allocated to {t0.holder} ({t0.detail}); the API server would answer "
                      "\"provided port is already allocated\" (the allocator is cluster-wide, every namespace)")
            remediation = (f"NodePort {port} belongs to {t0.holder}: set {fld} in keybuzz.yaml to a free NodePort, "
                           f"{_eg(sugg)}, or move that Service (`kubectl -n {t0.namespace} edit svc {t0.name}`)")
            rule = "NodePort already allocated (cluster-wide)"
        else:
            detail = f"NodePort {port} is also bound on the host of {_nodes_text(sorted(affected)) if affected else 'every node'} by {t0.holder}"
            remediation = _holder_advice(t0, port, sorted(affected), fld, sugg)
            rule = _RULES[t0.category]
        others = [t for t in foreign if t is not t0]
        if others:
            detail += "; also held by " + ", ".join(t.holder for t in others)
        if problems:
            detail += "; " + "; ".join(problems)
        return PortCheck(**base, status="conflict", rule=rule, detail=detail, remediation=remediation,
                         holders=holders, nodes=tuple(sorted(affected)), suggestions=tuple(sugg))
    if problems:
        sugg = _nodeport_suggestions(inv, port, own, fld)
        return PortCheck(**base, status="invalid", rule="no duplicates among our own ports", detail="; ".join(problems),
                         remediation=f"give each its own NodePort: set {fld}, {_eg(sugg)}", holders=holders,
                         suggestions=tuple(sugg))
    if expected is not None:
        if exp:
            return PortCheck(**base, status="info", rule="expected holder",
                             detail=f"NodePort {port} is held by {exp[0].holder} ({exp[0].detail}) as expected",
                             holders=holders)
        found = inv.ingress_service_found
        pname = expected[2]
        actual = inv.ingress_nodeports.get(pname)
        sugg = (actual,) if actual else ()
        svc = f"Service {expected[0]}/{expected[1]}"
        if found:
            detail = f"NodePort {port} should belong to {svc} (port {pname}), but that Service has " + (
                f"NodePort {actual} for {pname}" if actual else f"no NodePort for {pname}")
        else:
            detail = f"NodePort {port} should belong to {svc} (port {pname}), but no such Service exists"
        remediation = (f"set {fld} in keybuzz.yaml to {actual} (what ingress-nginx has)" if actual else
                       f"install ingress-nginx with NodePort {port} for {pname} (Helm: controller.service.nodePorts.{pname}={port}) "
                       "as the runbook has it, or point ingress.namespace/ingress.service at the right Service")
        return PortCheck(**base, status="invalid", rule="expected holder (ingress-nginx)", detail=detail,
                         remediation=remediation, holders=holders, suggestions=sugg)
    band_lo, band_hi = inv.static_band
    notes = []
    if mine:
        notes.append(f"held by our previous install ({', '.join(t.holder for t in mine)}): a re-run converges")
    if band_lo <= port <= band_hi:
        notes.append(f"in the static band {band_lo}-{band_hi} that automatic allocation avoids")
    else:
        notes.append(f"outside the static band {band_lo}-{band_hi}: an automatically allocated NodePort could take it first")
    return PortCheck(**base, status="ok", rule=range_rule, detail=f"NodePort {port} is free ({'; '.join(notes)})",
                     holders=holders)


def _check_ingress_node_port(cfg: Config, inv: PortInventory, own: _OwnPorts, label: str, port: int, pname: str, fld: str) -> PortCheck:
    ing = cfg.ingress
    base = dict(name=f"nodePort/ingress-{label}", kind="ingressNodePort", app="ingress-nginx",
                port=port if isinstance(port, int) else 0, field=fld,
                title=f"ingress-nginx {label} NodePort {port} (Service {ing.namespace}/{ing.service})")
    return _judge_node_port(inv, own, port, fld, base, expected=(ing.namespace, ing.service, pname))


def _check_lb_port(cfg: Config, inv: PortInventory, j: int) -> PortCheck:
    lbc = cfg.load_balancer
    svc = lbc.services[j]
    port, fld = svc.listen_port, f"load_balancer.services[{j}].listen_port"
    base = dict(name=f"lbListen/{port}", kind="lbListen", app="load-balancer", port=port if isinstance(port, int) else 0,
                field=fld, title=f"Load Balancer {lbc.name}: {svc.protocol} {port} -> {svc.destination_port}")
    used = {s.listen_port for k, s in enumerate(lbc.services) if k != j}
    if not _valid_port(port):
        sugg = _lb_suggestions(_clamp(port, 1, 65535), used)
        return PortCheck(**base, status="invalid", rule="a port is 1-65535", detail=f"{fld} = {port!r} is not a port number",
                         remediation=f"set {fld}, {_eg(sugg)}", suggestions=tuple(sugg))
    dups = [k for k, s in enumerate(lbc.services) if k != j and s.listen_port == port]
    if dups:
        sugg = _lb_suggestions(port, used)
        return PortCheck(**base, status="invalid", rule="no duplicates among our own ports",
                         detail=f"load_balancer.services[{dups[0]}] also listens on {port}",
                         remediation=f"give each Load Balancer service its own listen port: set {fld}, {_eg(sugg)}",
                         suggestions=tuple(sugg))
    if port == 80 and any(s.redirect_http for k, s in enumerate(lbc.services) if k != j):
        sugg = _lb_suggestions(port, used | {80})
        return PortCheck(**base, status="invalid", rule="redirect_http takes port 80 (source_port_already_used)",
                         detail="an https service with redirect_http=true already listens on 80; Hetzner answers source_port_already_used",
                         remediation="either drop this port-80 service and keep redirect_http on 443, or set redirect_http: false "
                                     "(reference/hetzner.md section 4)", suggestions=tuple(sugg))
    notes = []
    status: CheckStatus = "ok"
    if inv.lb_found is None:
        notes.append(inv.lb_note or "the Load Balancer was not inspected")
    elif inv.lb_found is False:
        notes.append(f"{lbc.name} does not exist yet; it will be created listening on {port}")
    else:
        have = [t for t in inv.at(port) if t.space == "lb"]
        if have:
            want = f"{svc.protocol} {port} -> {svc.destination_port}"
            if any(t.detail.startswith(want) for t in have):
                notes.append(f"{lbc.name} already listens on {port} ({have[0].detail}): unchanged")
            else:
                status = "info"
                notes.append(f"{lbc.name} listens on {port} as {have[0].detail}; the Load Balancer step updates it to {want}")
        else:
            notes.append(f"{lbc.name} exists; the service on {port} will be added")
    http_np = cfg.ingress.http_node_port
    if svc.destination_port != http_np:
        status = "info"
        notes.append(f"it forwards to {svc.destination_port}, not to ingress-nginx's HTTP NodePort {http_np} as the runbook does")
    holders = tuple(t.holder for t in inv.at(port) if t.space == "lb")
    return PortCheck(**base, status=status, rule="listen ports unique on the Load Balancer", detail="; ".join(notes), holders=holders)


# --- suggestions ---------------------------------------------------------------------------------


def _clamp(p: Any, lo: int, hi: int) -> int:
    if not isinstance(p, int) or isinstance(p, bool):
        return lo
    return max(lo, min(hi, p))


def _outward(p: int, lo: int, hi: int) -> Iterator[int]:
    """p+1, p-1, p+2, p-2 ... within [lo, hi]: nearest first, the higher one first on a tie."""
    for d in range(1, hi - lo + 2):
        if p + d <= hi:
            yield p + d
        if p - d >= lo:
            yield p - d
        if p + d > hi and p - d < lo:
            return


def _host_suggestions(inv: PortInventory, port: int, targets: frozenset[str], own: _OwnPorts, fld: str, n: int = 3) -> list[int]:
    """Nearest ports free on every target node: no holder (K3s, ingress, workloads, host
    processes, NodePorts), none of our own choices, outside the NodePort range and the
    ephemeral range (where outgoing connections take their local ports)."""
    lo, hi = (1024, 65535) if port >= 1024 else (1, 1023)
    np_lo, np_hi = inv.nodeport_range
    mine = {p for p, _w, f in own.host + own.nodeports if f != fld}
    out: list[int] = []
    for c in _outward(port, lo, hi):
        if c in mine or np_lo <= c <= np_hi or (EPHEMERAL[0] <= c <= EPHEMERAL[1] and not EPHEMERAL[0] <= port <= EPHEMERAL[1]):
            continue
        if any(not t.ours and (t.nodes is None or t.nodes & targets) for t in inv.host_holders(c)):
            continue
        out.append(c)
        if len(out) >= n:
            break
    return out


def _nodeport_suggestions(inv: PortInventory, port: int, own: _OwnPorts, fld: str, n: int = 3) -> list[int]:
    """Nearest free NodePorts inside the range. When the chosen port is in the allocator's
    static band, stay in it: that band is where explicit choices belong, since automatic
    allocation avoids it while the upper band has room (so a later Service will not grab it)."""
    lo, hi = inv.nodeport_range
    band_lo, band_hi = inv.static_band
    mine = {p for p, _w, f in own.host + own.nodeports if f != fld}
    prefer_band = band_lo <= port <= band_hi
    first: list[int] = []
    rest: list[int] = []
    for c in _outward(port, lo, hi):
        if c in mine or any(not t.ours and t.space != "lb" for t in inv.at(c)):
            continue
        if prefer_band and not band_lo <= c <= band_hi:
            if len(rest) < n:
                rest.append(c)
        else:
            first.append(c)
        if len(first) >= n:
            break
    return (first + rest)[:n]


def _lb_suggestions(port: int, used: set[int], n: int = 3) -> list[int]:
    out = []
    for c in _outward(port, 1, 65535):
        if c not in used:
            out.append(c)
            if len(out) >= n:
                break
    return out


# --- events --------------------------------------------------------------------------------------

_EVENT_STATUS = {"ok": "ok", "info": "info", "conflict": "fail", "invalid": "fail"}


def emit_checks(ctx: Context, checks: Sequence[PortCheck], *, step: str = STEP) -> None:
    """CheckResult per port; a Warning_ with its remediation for each conflict or invalid choice."""
    for c in checks:
        ctx.emit(CheckResult(
            step=step, check=c.name, layer="ports", status=_EVENT_STATUS[c.status],  # type: ignore[arg-type]
            title=c.title, detail=c.detail, remediation=c.remediation,
            node=c.nodes[0] if len(c.nodes) == 1 else None,
        ))
        if c.failed:
            ctx.emit(Warning_(step=step, message=f"{c.title}: {c.detail}", remediation=c.remediation))


def run(ctx: Context, *, probe: bool = False, probe_timeout: float = 60.0,
        target_nodes: Sequence[str] | None = None) -> PortReport:
    """The whole step as the wizard and the CLI run it: scan (and probe), check, report events."""
    ctx.emit(StepStarted(step=STEP, title="Ports and conflicts"))
    try:
        inv = scan(ctx, probe=probe, probe_nodes=target_nodes, probe_timeout=probe_timeout)
    except PortScanError as e:
        ctx.emit(StepFinished(step=STEP, status="fail", summary=str(e)))
        raise
    except Cancelled:
        ctx.emit(StepFinished(step=STEP, status="skip", summary="cancelled"))
        raise
    for note, todo in inv.notes:
        ctx.emit(Warning_(step=STEP, message=note, remediation=todo))
    checks = check(ctx.config, inv, target_nodes=target_nodes)
    emit_checks(ctx, checks)
    bad = [c for c in checks if c.failed]
    ctx.emit(StepFinished(
        step=STEP, status="fail" if bad else "ok",
        summary=(f"{len(bad)} port problem(s): " + ", ".join(f"{c.name} {c.port} ({c.status})" for c in bad)) if bad
        else f"{len(checks)} ports checked, no conflict ({inv.requests} API requests, {inv.seconds:.2f}s)",
    ))
    return PortReport(inv, checks)

