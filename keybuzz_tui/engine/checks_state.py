"""What one validation run knows about the world, gathered once and shared by every check and by
the trace: the Kubernetes objects, the Hetzner Load Balancer, DNS answers and HTTP probes.

Why shared and single-flight: the same facts feed several checks (the worker list feeds six of
them; the probe of node:31695/healthz feeds node.nodeport, the trace's NodePort hop and the LB
hop's explanation). Gathering them once keeps a validation to a handful of Kubernetes API requests
(the issue's benchmark counts them) and guarantees that every check and the worker x hop matrix
describe the same moment. Checks run concurrently, so every cache is filled under a lock by the
first thread that needs it while the others wait for that result.

Kubernetes is read with plain LISTs of the namespace (one request per kind, in parallel) through
kubeio; in continuous mode the watched kinds come from the watch-fed cache instead (checks_watch),
so a refresh costs no LIST at all. Requests are counted on the client side (checks_counter).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..redact import safe_error
from . import kubeio
from .checks_counter import ApiCounter, Scope
from .checks_pods import PodProblem, diagnose_pod, pod_is_ready
from .checks_probe import (
    DnsAnswer,
    HttpProbe,
    QuickAnswer,
    ask_resolver,
    ask_server,
    http_get,
    https_get,
    parse_hostport,
    provisional_probe,
)
from .context import Context

T = TypeVar("T")

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
CONDITION_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")
# kinds kept current by watches in continuous mode; the others are re-listed on the network interval
WATCHED_KINDS = ("nodes", "pods", "daemonsets", "services", "endpoints")
LISTED_KINDS = ("deployments", "ingresses")


# --- the Kubernetes side ----------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    """A node the KeyBuzz DaemonSets belong on (not a control-plane node, no taint keeping pods away)."""

    name: str
    ip: str
    ready: bool | None  # None: unknown (read from Hetzner, the API being unreachable)
    condition: str = ""  # "NodeStatusUnknown: Kubelet stopped posting node status." when not Ready
    unschedulable: bool = False
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class KubeSnapshot:
    """The namespace's objects (and the cluster's nodes) at one moment, as plain dicts by name."""

    namespace: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    daemonsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingress_service: dict[str, Any] | None = None
    ingress_endpoints: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)  # kind -> the LIST's resourceVersion
    errors: dict[str, str] = field(default_factory=dict)  # kind -> why it could not be read
    taken_at: float = field(default_factory=time.time)

    def copy(self) -> KubeSnapshot:
        return KubeSnapshot(
            self.namespace, dict(self.nodes), dict(self.pods), dict(self.daemonsets), dict(self.deployments),
            dict(self.services), dict(self.endpoints), dict(self.ingresses), self.ingress_service, self.ingress_endpoints,
            dict(self.versions), dict(self.errors), time.time(),
        )


def list_paths(ns: str) -> dict[str, str]:
    return {
        "nodes": kubeio.resource_path("v1", "nodes"),
        "pods": kubeio.resource_path("v1", "pods", ns),
        "daemonsets": kubeio.resource_path("apps/v1", "daemonsets", ns),
        "deployments": kubeio.resource_path("apps/v1", "deployments", ns),
        "services": kubeio.resource_path("v1", "services", ns),
        "endpoints": kubeio.resource_path("v1", "endpoints", ns),
        "ingresses": kubeio.resource_path("networking.k8s.io/v1", "ingresses", ns),
    }


def kube_get(ctx: Context, path: str, *, attempts: int = 2, **query: Any) -> dict[str, Any]:
    """A GET with one retry on 429/5xx/unreachable: a validation must not turn one dropped request
    of an overloaded control plane (flaky-api) into a red check."""
    for i in range(attempts):
        ctx.cancel.check()
        try:
            return kubeio.get(ctx, path, **query)
        except kubeio.KubeError as e:
            if i + 1 >= attempts or not (e.status == 429 or e.status >= 500):
                raise
        except kubeio.Unreachable:
            if i + 1 >= attempts:
                raise
        ctx.cancel.wait(0.2)
    raise AssertionError("unreachable")  # pragma: no cover


def kube_get_or_none(ctx: Context, path: str) -> dict[str, Any] | None:
    try:
        return kube_get(ctx, path)
    except kubeio.KubeError as e:
        if e.status == 404:
            return None
        raise


def load_kinds(ctx: Context, snap: KubeSnapshot, kinds: Iterable[str], run: Callable[[list[Callable[[], Any]]], list[Any]]) -> None:
    """LIST the given kinds (and the ingress controller's Service/Endpoints) into snap, in
    parallel through `run`. A kind that cannot be read (403) is recorded in snap.errors; the API
    being unreachable raises kubeio.Unreachable (nothing else can be checked then)."""
    kinds = tuple(kinds)
    paths = list_paths(snap.namespace)
    cfg = ctx.config
    jobs: list[tuple[str, Callable[[], Any]]] = [(k, (lambda p=paths[k]: kube_get(ctx, p))) for k in kinds]
    if "ingresses" in kinds:  # the controller's Service and Endpoints travel with the Ingresses
        svc = kubeio.resource_path("v1", "services", cfg.ingress.namespace, cfg.ingress.service)
        eps = kubeio.resource_path("v1", "endpoints", cfg.ingress.namespace, cfg.ingress.service)
        jobs.append(("ingress_service", lambda: kube_get_or_none(ctx, svc)))
        jobs.append(("ingress_endpoints", lambda: kube_get_or_none(ctx, eps)))
    results = run([_capture(fn) for _, fn in jobs])
    unreachable = None
    for (kind, _), (value, err) in zip(jobs, results):
        if isinstance(err, kubeio.Unreachable):
            unreachable = err
            continue
        if err is not None:
            snap.errors[kind] = _kube_error_text(err, kind, snap.namespace)
            continue
        snap.errors.pop(kind, None)
        if kind in ("ingress_service", "ingress_endpoints"):
            setattr(snap, kind, value)
            continue
        items = (value or {}).get("items") or []
        setattr(snap, kind, {o["metadata"]["name"]: o for o in items})
        snap.versions[kind] = ((value or {}).get("metadata") or {}).get("resourceVersion", "")
    if unreachable is not None:
        raise unreachable
    snap.taken_at = time.time()


def _capture(fn: Callable[[], Any]) -> Callable[[], tuple[Any, BaseException | None]]:
    def run() -> tuple[Any, BaseException | None]:
        try:
            return fn(), None
        except (kubeio.KubeError, kubeio.Unreachable) as e:
            return None, e

    return run


def _kube_error_text(err: BaseException, kind: str, ns: str) -> str:
    if isinstance(err, kubeio.KubeError) and err.status == 403:
        return f"not allowed to list {kind} in {ns}: {err.message}"
    return safe_error(err)


def node_ready(node: dict[str, Any]) -> tuple[bool, str]:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            if c.get("status") == "True":
                return True, ""
            return False, f"{c.get('reason') or 'NotReady'}: {c.get('message') or ''}".rstrip(": ")
    return False, "no Ready condition reported"


def node_ip(node: dict[str, Any]) -> str:
    addrs = (node.get("status") or {}).get("addresses") or []
    for kind in ("InternalIP", "ExternalIP"):
        for a in addrs:
            if a.get("type") == kind and a.get("address"):
                return str(a["address"])
    return ""


def is_worker(node: dict[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(k in labels and labels[k] in ("true", "") for k in CONTROL_PLANE_LABELS):
        return False
    for t in (node.get("spec") or {}).get("taints") or []:
        if t.get("effect") in ("NoSchedule", "NoExecute") and not str(t.get("key", "")).startswith(CONDITION_TAINT_PREFIXES):
            return False
    return True


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def owner_kind(obj: dict[str, Any]) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", ""))
    return ""


@dataclass(frozen=True)
class TargetInfo:
    """One Hetzner server behind the LB: its health per listen port, as the API reports it."""

    server: str
    server_id: int
    ip: str  # the address the LB dials (private when use_private_ip)
    use_private_ip: bool
    health: dict[int, tuple[str, str, int | None]]  # listen port -> (status, detail, http status)
    via: str  # "label_selector role=worker" or "server"


@dataclass
class CloudSnapshot:
    """The Load Balancer and what it refers to, read with the official hcloud client."""

    token: bool = False
    error: str = ""
    remediation: str = ""
    lb: Any = None
    servers: dict[int, Any] = field(default_factory=dict)
    network: Any = None
    certificates: dict[int, Any] = field(default_factory=dict)

    @property
    def lb_ipv4(self) -> str | None:
        pn = getattr(self.lb, "public_net", None)
        if pn is None or getattr(pn, "enabled", True) is False:
            return None
        ip = getattr(getattr(pn, "ipv4", None), "ip", None)
        return str(ip) if ip else None

    @property
    def lb_ipv6(self) -> str | None:
        pn = getattr(self.lb, "public_net", None)
        ip = getattr(getattr(pn, "ipv6", None), "ip", None) if pn is not None else None
        return str(ip).split("/")[0] if ip else None

    def targets(self) -> list[TargetInfo]:
        out: list[TargetInfo] = []
        if self.lb is None:
            return out
        for t in self.lb.targets or []:
            if t.type == "label_selector":
                sel = t.label_selector.selector if t.label_selector else ""
                for sub in t.targets or []:
                    out.append(self._target(sub, f"label_selector {sel}", bool(t.use_private_ip)))
            elif t.type == "server":
                out.append(self._target(t, "server", bool(t.use_private_ip)))
        return out

    def _target(self, t: Any, via: str, private: bool) -> TargetInfo:
        sid = int(t.server.id) if t.server is not None else 0
        srv = self.servers.get(sid)
        name = getattr(srv, "name", None) or str(sid)
        ip = ""
        if srv is not None:
            if private and srv.private_net:
                ip = srv.private_net[0].ip
            elif srv.public_net and srv.public_net.ipv4:
                ip = srv.public_net.ipv4.ip
        health = {
            int(h.listen_port): (str(h.status or "unknown"), str(getattr(h, "detail", None) or ""), getattr(h, "http_status_code", None))
            for h in (t.health_status or [])
        }
        return TargetInfo(name, sid, ip, private, health, via)


# --- the state ----------------------------------------------------------------------------------


class ValidationState:
    """Shared, lazily gathered facts for one validation run (see the module docstring).

    `carry`: a previous state whose caches this one may reuse (continuous mode: a refresh
    triggered by a watch event keeps the last network observations, a timed refresh keeps the
    watch-fed Kubernetes objects).
    """

    def __init__(
        self,
        ctx: Context,
        *,
        http_timeout: float | None = None,
        kube: KubeSnapshot | None = None,
        carry: ValidationState | None = None,
        keep_net: bool = False,
        counter: ApiCounter | None = None,
        scope: Scope | None = None,
        io_workers: int = 16,
    ) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.http_timeout = float(http_timeout if http_timeout is not None else min(ctx.request_timeout, 10.0))
        self.counter = counter or ApiCounter.for_context(ctx)
        self.scope = scope
        self._lock = threading.RLock()
        self._flights: dict[Any, cf.Future[Any]] = {}
        self._io = cf.ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="keybuzz-validate-io")
        self._kube = kube
        self.outcomes: dict[str, Any] = {}  # check id -> CheckRecord, filled by the scheduler
        # (ip, port) -> what the continuous mode's fast lane just saw there, standing in for every
        # HTTP probe of that port until the full check confirms it (see override_probes)
        self.provisional: dict[tuple[str, int], QuickAnswer] = {}
        self.offline = False  # no Kubernetes read beside the snapshot (see reuse_kube_reads)
        # caches that outlive one refresh in continuous mode
        self.logs: dict[tuple[str, str, int], str] = carry.logs if carry is not None else {}
        self.server_version: str = carry.server_version if carry is not None else ""
        if carry is not None and keep_net:
            with carry._lock:
                self._flights.update({k: f for k, f in carry._flights.items() if k[0] in ("http", "https", "dns", "cloud", "auth")})
                self.provisional.update(carry.provisional)
        if ctx.endpoints.sandbox_dir is not None:
            try:
                ctx.endpoints.refresh_lb_ports()
            except (OSError, ValueError):
                pass

    # --- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        self._io.shutdown(wait=False, cancel_futures=True)

    def once(self, key: Any, fn: Callable[[], T]) -> T:
        """fn's result, computed by the first caller for `key`; later and concurrent callers get
        the same result (or exception)."""
        with self._lock:
            fut = self._flights.get(key)
            owner = fut is None
            if owner:
                fut = cf.Future()
                self._flights[key] = fut
        assert fut is not None
        if owner:
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)
        return fut.result()  # type: ignore[no-any-return]

    def peek(self, key: Any) -> Any:
        """The result cached for `key` when it is done (None when never asked or still running)."""
        with self._lock:
            fut = self._flights.get(key)
        if fut is None or not fut.done() or fut.cancelled() or fut.exception() is not None:
            return None
        return fut.result()

    def override_probes(self, seen: dict[tuple[str, int], QuickAnswer], bad: Callable[[QuickAnswer], bool]) -> None:
        """Continuous mode's fast lane saw these ports change: forget every HTTP(S) probe of them
        carried from the last refresh; a port that no longer answers (`bad`) is answered, for
        every path, by that observation marked provisional (no new dial, the full check follows);
        one that answers again is probed afresh when a check asks."""
        with self._lock:
            for key in [k for k in self._flights if k[0] in ("http", "https") and (k[1], k[2]) in seen]:
                del self._flights[key]
            for where, answer in seen.items():
                if bad(answer):
                    self.provisional[where] = answer
                else:
                    self.provisional.pop(where, None)

    def reuse_kube_reads(self, carry: ValidationState) -> None:
        """Take the Kubernetes reads a check may make beside the snapshot (Events, logs, the
        version) from `carry`, and make no new one (a refresh that must not call the API: the
        fast lane's): what was never read reads as nothing."""
        self.offline = True
        with carry._lock:
            kept = {k: f for k, f in carry._flights.items() if k[0] in ("events", "log", "version")}
        with self._lock:
            for k, f in kept.items():
                self._flights.setdefault(k, f)

    def submit(self, fn: Callable[[], T]) -> cf.Future[T]:
        return self._io.submit(self.counter.bind(self.counter.current_scope() or self.scope, fn))

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """fn over items concurrently in the I/O pool (each item's own timeout bounds it), in order."""
        items = list(items)
        if not items:
            return []
        self.ctx.cancel.check()
        futures = [self.submit(lambda it=it: fn(it)) for it in items]
        out = []
        for f in futures:
            while True:
                try:
                    out.append(f.result(timeout=0.25))
                    break
                except cf.TimeoutError:
                    self.ctx.cancel.check()
        return out

    def run_parallel(self, fns: list[Callable[[], Any]]) -> list[Any]:
        """Run a handful of API calls in parallel on their own short-lived threads (never the
        shared I/O pool: a probe waiting for the snapshot must not starve the snapshot's LISTs)."""
        scope = self.counter.current_scope() or self.scope
        ex = cf.ThreadPoolExecutor(max_workers=max(1, len(fns)), thread_name_prefix="keybuzz-validate-list")
        try:
            futures = [ex.submit(self.counter.bind(scope, f)) for f in fns]
            out = []
            for f in futures:
                while True:
                    try:
                        out.append(f.result(timeout=0.25))
                        break
                    except cf.TimeoutError:
                        self.ctx.cancel.check()
            return out
        finally:
            ex.shutdown(wait=False, cancel_futures=True)

    # --- Kubernetes -------------------------------------------------------------------------

    def kube(self) -> KubeSnapshot:
        """The snapshot: given (continuous mode) or LISTed now (raises kubeio.Unreachable)."""
        if self._kube is not None:
            return self._kube

        def load() -> KubeSnapshot:
            snap = KubeSnapshot(self.config.namespace)
            load_kinds(self.ctx, snap, WATCHED_KINDS + LISTED_KINDS, self.run_parallel)
            return snap

        snap = self.once(("kube",), load)
        self._kube = snap
        return snap

    def use_kube(self, snap: KubeSnapshot) -> None:
        """Take this snapshot (continuous mode: LISTed and watch-fed kinds merged) instead of LISTing."""
        self._kube = snap

    def version(self) -> str:
        if not self.server_version:
            data = self.once(("version",), lambda: kube_get(self.ctx, "/version"))
            self.server_version = str(data.get("gitVersion") or "")
        return self.server_version

    def workers(self) -> list[Worker]:
        """The nodes the DaemonSets belong on, by name; from Hetzner's servers when the
        Kubernetes API cannot be read (so the trace still has rows during an API outage)."""
        return self.once(("workers",), self._workers)

    def _workers(self) -> list[Worker]:
        try:
            snap = self.kube()
        except (kubeio.Unreachable, kubeio.KubeError):
            snap = None
        if snap is not None and "nodes" not in snap.errors:
            out = []
            for name, node in sorted(snap.nodes.items()):
                if not is_worker(node):
                    continue
                ready, why = node_ready(node)
                out.append(Worker(name, node_ip(node), ready, why, bool((node.get("spec") or {}).get("unschedulable")),
                                  dict((node.get("metadata") or {}).get("labels") or {})))
            return out
        cloud = self.cloud()
        out = []
        for srv in sorted(cloud.servers.values(), key=lambda s: s.name):
            labels = dict(srv.labels or {})
            if not selector_match(self.config.load_balancer.target_selector, labels):
                continue
            ip = srv.private_net[0].ip if srv.private_net else (srv.public_net.ipv4.ip if srv.public_net and srv.public_net.ipv4 else "")
            out.append(Worker(srv.name, ip, None, "Kubernetes API unreachable: read from Hetzner", False, labels))
        return out

    def app_workers(self, app: str) -> list[Worker]:
        """Workers the app's DaemonSet can run on (its nodeSelector applied)."""
        ds = self.kube().daemonsets.get(app) if self.kube_ok() else None
        sel = ((((ds or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        return [w for w in self.workers() if all(w.labels.get(k) == v for k, v in sel.items())]

    def kube_ok(self) -> bool:
        try:
            self.kube()
            return True
        except (kubeio.Unreachable, kubeio.KubeError):
            return False

    def app_selector(self, app: str) -> dict[str, str]:
        """The labels that select the app's pods: the DaemonSet's (or Deployment's) selector,
        else the Service's."""
        snap = self.kube()
        for coll in (snap.daemonsets, snap.deployments):
            obj = coll.get(app)
            if obj is not None:
                sel = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
                if sel:
                    return dict(sel)
        svc = snap.services.get(app)
        return dict(((svc or {}).get("spec") or {}).get("selector") or {})

    def app_pods(self, app: str) -> list[dict[str, Any]]:
        sel = self.app_selector(app)
        if not sel:
            return []
        return [p for _, p in sorted(self.kube().pods.items()) if labels_match(sel, (p.get("metadata") or {}).get("labels") or {})]

    def pods_on(self, app: str, node: str) -> list[dict[str, Any]]:
        return [p for p in self.app_pods(app) if (p.get("spec") or {}).get("nodeName") == node]

    def events(self) -> list[dict[str, Any]]:
        """The namespace's Events, read once per run and only when a check needs a reason."""

        def load() -> list[dict[str, Any]]:
            if self.offline:
                return []
            try:
                data = kube_get(self.ctx, kubeio.resource_path("v1", "events", self.config.namespace))
            except (kubeio.KubeError, kubeio.Unreachable):
                return []
            items = data.get("items") or []
            return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or "")

        return self.once(("events",), load)

    def events_for(self, kind: str, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if (e.get("involvedObject") or {}).get("kind") == kind and (e.get("involvedObject") or {}).get("name") == name]

    def last_log_line(self, pod: dict[str, Any], container: str, restarts: int) -> str:
        """The last line the crashed container wrote (`kubectl logs --previous`), fetched once
        per pod restart: the log of a CrashLoop is usually the whole diagnosis."""
        meta = pod.get("metadata") or {}
        key = (str(meta.get("uid") or meta.get("name")), container, restarts)
        if key in self.logs:
            return self.logs[key]
        if self.offline:
            return ""

        def fetch() -> str:
            path = kubeio.resource_path("v1", "pods", meta.get("namespace") or self.config.namespace, meta.get("name")) + "/log"
            for previous in (True, False):
                try:
                    resp = kubeio.request(self.ctx, "GET", path, query={"container": container, "previous": previous, "tailLines": 20}, stream=True)
                except (kubeio.KubeError, kubeio.Unreachable):
                    continue
                try:
                    text = resp.read().decode("utf-8", errors="replace")
                finally:
                    try:
                        resp.response.release_conn()
                    except Exception:
                        pass
                lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
                if lines:
                    return lines[-1][:300]
            return ""

        line = self.once(("log",) + key, fetch)
        self.logs[key] = line
        return line

    def pod_problem(self, pod: dict[str, Any], worker: Worker | None = None) -> PodProblem | None:
        """Why this pod does not serve (None when it is Running and Ready)."""
        return diagnose_pod(self, pod, worker)

    # --- Hetzner ------------------------------------------------------------------------------

    def cloud(self) -> CloudSnapshot:
        return self.once(("cloud",), self._load_cloud)

    def _load_cloud(self) -> CloudSnapshot:
        snap = CloudSnapshot()
        try:
            client = self.ctx.hcloud()
        except Exception as e:  # a broken keyring, say
            snap.error = f"cannot build the Hetzner client: {safe_error(e)}"
            return snap
        if client is None:
            snap.error = "no Hetzner API token"
            snap.remediation = "store the token with the wizard (Credentials), or set HCLOUD_TOKEN for this run"
            return snap
        snap.token = True
        lbc = self.config.load_balancer
        try:
            from hcloud import APIException
        except ImportError:  # pragma: no cover
            APIException = Exception  # type: ignore[misc,assignment]  # noqa: N806
        try:
            lb = client.load_balancers.get_by_name(lbc.name)
            if lb is None and lbc.labels:
                sel = ",".join(f"{k}={v}" for k, v in sorted(lbc.labels.items()))
                found = client.load_balancers.get_all(label_selector=sel)
                lb = found[0] if len(found) == 1 else None
            snap.lb = lb
            self.ctx.cancel.check()
            snap.servers = {int(s.id): s for s in client.servers.get_all()}
            if lb is not None:
                if lbc.network:
                    snap.network = client.networks.get_by_name(lbc.network)
                ids = {int(c.id) for s in lb.services or [] if s.http is not None for c in (s.http.certificates or [])}
                for cid in sorted(ids):
                    self.ctx.cancel.check()
                    try:
                        snap.certificates[cid] = client.certificates.get_by_id(cid)
                    except APIException:
                        continue
        except APIException as e:
            code = getattr(e, "code", "")
            snap.error = f"Hetzner API: {code}: {getattr(e, 'message', '') or safe_error(e)}"
            snap.remediation = (
                "the token is not valid for this project: store the right one (wizard > Credentials) or set HCLOUD_TOKEN"
                if code == "unauthorized"
                else "retry in a moment; if it persists check https://status.hetzner.com"
                if code in ("rate_limit_exceeded", "server_error", "timeout", "service_error")
                else ""
            )
        except Exception as e:  # requests' connection errors and the like
            snap.error = f"Hetzner API unreachable: {safe_error(e)}"
            snap.remediation = "check the network path to the Hetzner API (api.hetzner.cloud) or HCLOUD_ENDPOINT"
        return snap

    def lb_targets(self) -> dict[str, TargetInfo]:
        """Targets keyed by the Kubernetes worker they are (by name, else by private IP)."""
        cloud = self.cloud()
        by_ip = {w.ip: w.name for w in self.workers()}
        names = {w.name for w in self.workers()}
        out: dict[str, TargetInfo] = {}
        for t in cloud.targets():
            key = t.server if t.server in names else by_ip.get(t.ip, t.server)
            out[key] = t
        return out

    def lb_ip(self) -> str | None:
        return self.cloud().lb_ipv4

    def lb_port(self, ip: str, listen_port: int) -> int:
        """The port to dial for an LB listen port: the sandbox may bind 80 at 20080 (not root)."""
        return int((self.ctx.endpoints.lb_port_map.get(ip) or {}).get(listen_port, listen_port))

    # --- DNS ---------------------------------------------------------------------------------

    def resolver_address(self) -> tuple[str, int] | None:
        if self.ctx.endpoints.resolver is not None:
            return self.ctx.endpoints.resolver
        return parse_hostport(self.config.dns.resolver)

    def resolver_label(self) -> str:
        r = self.resolver_address()
        return f"{r[0]}:{r[1]}" if r else "the system resolver"

    def authoritative_server(self) -> tuple[tuple[str, int] | None, str]:
        """(address, how it was found): Endpoints.dns_server, else the zone's first NS."""
        if self.ctx.endpoints.dns_server is not None:
            return self.ctx.endpoints.dns_server, "configured"

        def find() -> tuple[tuple[str, int] | None, str]:
            zone = self.config.dns.zone
            ns = ask_resolver(self.resolver_address(), zone, "NS", timeout=self.dns_timeout)
            if not ns.ok or not ns.addresses:
                return None, f"cannot find the name servers of {zone}: {ns.describe()}"
            for name in ns.addresses:
                a = ask_resolver(self.resolver_address(), name.rstrip("."), "A", timeout=self.dns_timeout)
                if a.ok and a.addresses:
                    return (a.addresses[0], 53), f"{name.rstrip('.')} (NS of {zone})"
            return None, f"the name servers of {zone} ({', '.join(ns.addresses)}) have no address"

        return self.once(("auth", "server"), find)

    @property
    def dns_timeout(self) -> float:
        return max(1.0, min(self.http_timeout, 3.0))

    def dns(self, which: str, name: str, rdtype: str = "A") -> DnsAnswer:
        """`which`: "authoritative" or "resolver"."""

        def ask() -> DnsAnswer:
            if which == "authoritative":
                server, how = self.authoritative_server()
                if server is None:
                    return DnsAnswer("?", name, rdtype, error=how)
                return ask_server(server, name, rdtype, timeout=self.dns_timeout)
            return ask_resolver(self.resolver_address(), name, rdtype, timeout=self.dns_timeout)

        return self.once(("dns", which, name, rdtype), ask)

    # --- HTTP --------------------------------------------------------------------------------

    def http(self, ip: str, port: int, path: str = "/", host: str | None = None) -> HttpProbe:
        seen = self.provisional.get((ip, port))
        if seen is not None:
            return self.once(("http", ip, port, path, host), lambda: provisional_probe(ip, port, path, host, seen))
        return self.once(("http", ip, port, path, host), lambda: http_get(ip, port, path, host=host, timeout=self.http_timeout))

    def probes(self) -> dict[tuple[str, int, str, str | None], HttpProbe]:
        """Every HTTP probe this state has made (or was carried), by (ip, port, path, host)."""
        with self._lock:
            keys = [k for k in self._flights if k[0] == "http"]
        out = {}
        for k in keys:
            p = self.peek(k)
            if isinstance(p, HttpProbe):
                out[(k[1], k[2], k[3], k[4])] = p
        return out

    def https(self, ip: str, port: int, host: str, path: str = "/") -> HttpProbe:
        ca = self.ctx.endpoints.ca_file
        return self.once(("https", ip, port, host, path), lambda: https_get(ip, port, host, path, ca_file=ca, timeout=self.http_timeout))


def selector_match(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based Hetzner/Kubernetes label selectors (k=v, k!=v, k) joined by commas."""
    for part in [p.strip() for p in (selector or "").split(",") if p.strip()]:
        if "!=" in part:
            k, v = part.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in part:
            k, v = part.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif part.startswith("!"):
            if part[1:] in labels:
                return False
        elif part not in labels:
            return False
    return True


__all__ = [
    "ApiCounter", "CloudSnapshot", "KubeSnapshot", "PodProblem", "TargetInfo", "ValidationState", "Worker",
    "diagnose_pod", "is_worker", "kube_get", "labels_match", "list_paths", "load_kinds", "node_ip", "node_ready",
    "pod_is_ready", "LISTED_KINDS", "WATCHED_KINDS",
]
