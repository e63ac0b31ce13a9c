"""The overlay: which Flannel backend carries pod traffic between the nodes, and a real test of it
with short-lived probe pods, as an operator would do it by hand with busybox.

The production outage was a blocked overlay (Hetzner dropped Flannel's VXLAN packets, UDP 8472):
pods on different nodes could not talk, ClusterIP Services whose endpoint sat on another node and
CoreDNS timed out, while every pod showed Ready. The probe reproduces exactly those three paths:

- overlay.pod-to-pod: a server pod (nginx:1.27, on the overlay: not hostNetwork) on worker B and a
  client pod on worker A running `wget -T 3 -qO- http://<server pod IP>/`;
- overlay.clusterip: from A, `nc -z -w 3 <kube-dns ClusterIP> 53` (read from the Service), where A
  is a worker that does not host CoreDNS itself, so kube-proxy must send it across the overlay;
- overlay.coredns: from A, `nslookup kubernetes.default.svc.cluster.local <kube-dns ClusterIP>`.

The three commands run in one busybox pod, each between markers, so one pod gives three verbatim
outputs; the output lines are the evidence.

The probe pods:
- live in kube-system, not the platform namespace: kube-system always exists (the doctor must not
  create the platform's namespace, and must work before an install), and pods there never show up
  in the platform namespace's pod counts, which the validation and the live board read;
- are labelled app.kubernetes.io/managed-by=keybuzz-tui, keybuzz.io/probe=doctor and a run id,
  pinned with nodeName (no scheduler involved), restartPolicy Never, activeDeadlineSeconds, no
  service account token, grace period 0, tiny requests;
- are deleted whatever happens: by name and by a label sweep of the run in a finally, and again by
  the doctor run itself when it ends (so a cancel, a timeout of the check or a crash of the probe
  thread cannot leave one behind); a create in flight finishes before the cleanup starts, and no
  create starts after it. Finished leftovers of earlier, interrupted runs are swept at the start.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import Info, Warning_
from ..redact import safe_error
from . import kubeio
from .checks_base import CheckOutcome, fail, join_names, ok, skip, warn
from .checks_state import kube_get
from .context import Context
from .doctor_state import STEP, DoctorState
from .ports import TRANSIENT, retry_transient

PROBE_NAMESPACE = "kube-system"
PROBE_LABELS = {"app.kubernetes.io/managed-by": "keybuzz-tui", "keybuzz.io/probe": "doctor"}
PROBE_SELECTOR = ",".join(f"{k}={v}" for k, v in PROBE_LABELS.items())
RUN_LABEL = "keybuzz.io/probe-run"
CLIENT_IMAGE = "busybox:1.36"
SERVER_IMAGE = "nginx:1.27"
TEST_TIMEOUT = 3  # seconds each busybox command waits (wget -T, nc -w)
PROBE_TIMEOUT = 60.0  # seconds for the whole probe (both pods started and finished)
CLEANUP_WAIT = 10.0  # seconds to wait for the deleted pods to be gone
WATCH_WINDOW = 2  # seconds per watch request: bounds how long a cancel or the deadline waits
BEGIN, END = "KEYBUZZ-DOCTOR-BEGIN", "KEYBUZZ-DOCTOR-END"
TESTS = ("pod-to-pod", "clusterip", "coredns")
DNS_NAME = "kubernetes.default.svc.cluster.local"

# what each Flannel backend needs to pass between the nodes
BACKEND_PORTS = {
    "vxlan": ("VXLAN", "UDP 8472"),
    "wireguard-native": ("WireGuard", "UDP 51820 (IPv4) / 51821 (IPv6)"),
    "wireguard": ("WireGuard", "UDP 51820"),
    "ipsec": ("IPsec", "UDP 500 and 4500, ESP"),
    "host-gw": ("host-gw (plain routing)", "direct IP routing between the nodes (one L2 segment; Hetzner private networks are routed)"),
    "udp": ("UDP encapsulation", "UDP 8285"),
}


def backend_words(backend: str) -> tuple[str, str]:
    return BACKEND_PORTS.get(backend, (backend or "the overlay", "the overlay's packets"))


# --- results -----------------------------------------------------------------------------------


@dataclass
class ProbeTest:
    name: str  # pod-to-pod | clusterip | coredns
    command: str
    node: str
    target: str  # what it dials, in words
    result: str = "not-run"  # ok | timeout | refused | error | not-run
    output: list[str] = field(default_factory=list)
    why_not_run: str = ""

    @property
    def quoted(self) -> str:
        """The command's output as evidence: its lines joined, verbatim."""
        return " / ".join(ln for ln in self.output if ln.strip()) or "(no output)"

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.name, "node": self.node, "command": self.command, "target": self.target, "result": self.result,
                "output": list(self.output), **({"not_run": self.why_not_run} if self.why_not_run else {})}


@dataclass
class OverlayResult:
    backend: str = ""
    client_node: str = ""
    server_node: str = ""
    server_pod: str = ""
    server_ip: str = ""
    client_pod: str = ""
    dns_ip: str = ""
    dns_endpoints: list[tuple[str, str]] = field(default_factory=list)  # (pod IP, node)
    tests: dict[str, ProbeTest] = field(default_factory=dict)
    problem: str = ""  # the probe could not run at all
    remediation: str = ""
    server_problem: str = ""
    pods: list[str] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)  # problems deleting the pods
    run_id: str = ""

    def evidence(self, test: str | None = None) -> dict[str, Any]:
        ev: dict[str, Any] = {"namespace": PROBE_NAMESPACE, "run": self.run_id, "client_node": self.client_node,
                              "server_node": self.server_node, "server_pod": self.server_pod, "server_ip": self.server_ip,
                              "client_pod": self.client_pod, "kube_dns": self.dns_ip,
                              "coredns_endpoints": [f"{ip} on {node}" for ip, node in self.dns_endpoints]}
        if self.problem:
            ev["problem"] = self.problem
        if self.server_problem:
            ev["server_problem"] = self.server_problem
        if test is not None and test in self.tests:
            ev.update(self.tests[test].to_dict())
        return ev


def classify(lines: list[str], ended_ok: bool | None) -> str:
    """ok | timeout | refused | error | not-run, from busybox's own words."""
    text = "\n".join(lines).lower()
    if ended_ok is None:
        return "not-run"
    if ended_ok:
        return "ok"
    if "timed out" in text or "no servers could be reached" in text and "refused" not in text:
        return "timeout"
    if "refused" in text:
        return "refused"
    if "server returned error" in text:
        return "ok"  # an HTTP error page: the packets got there and back
    return "error"


def parse_output(text: str) -> dict[str, tuple[list[str], bool | None]]:
    """test -> (its output lines, True/False from the end marker; None when it never ended)."""
    out: dict[str, tuple[list[str], bool | None]] = {}
    current: str | None = None
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        m = re.match(rf"^{BEGIN} (\S+)$", line.strip())
        if m:
            current, lines = m.group(1), []
            out[current] = ([], None)
            continue
        m = re.match(rf"^{END} (\S+) (ok|failed)$", line.strip())
        if m and m.group(1) == current:
            out[current] = (lines, m.group(2) == "ok")
            current = None
            continue
        if current is not None:
            lines.append(line)
            out[current] = (lines, None)
    return {k: ([ln for ln in v[0] if ln.strip()], v[1]) for k, v in out.items()}


def _script(tests: list[ProbeTest]) -> str:
    parts = []
    for t in tests:
        parts.append(f"echo {BEGIN} {t.name}; {t.command} && echo {END} {t.name} ok || echo {END} {t.name} failed")
    return "; ".join(parts)


# --- the pods ------------------------------------------------------------------------------------


def _pod_state(pod: dict[str, Any]) -> tuple[str, str]:
    from .portprobe import pod_state as state  # "(phase, why)": a pod stuck on its image counts as done

    if pod.get("_deleted"):
        return "Deleted", "the probe pod was deleted by someone else"
    return state(pod)


def _ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and bool(st.get("podIP")) and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def _tolerations(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for t in ((node or {}).get("spec") or {}).get("taints") or []:
        tol: dict[str, Any] = {"key": t.get("key", ""), "effect": t.get("effect", "")}
        if t.get("value"):
            tol.update(operator="Equal", value=t["value"])
        else:
            tol["operator"] = "Exists"
        out.append(tol)
    return out


def probe_pod(name: str, node: str, run_id: str, role: str, image: str, *, command: list[str] | None = None,
              port: int | None = None, deadline: int, tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": role,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
    }
    if command:
        container["command"] = command
    if port:
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": PROBE_NAMESPACE, "labels": {**PROBE_LABELS, RUN_LABEL: run_id, "keybuzz.io/probe-role": role}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": tolerations or [],
            "containers": [container],
        },
    }


class OverlayProbe:
    """One doctor run's overlay probe: `run(state)` once, `cleanup()` any number of times, from any
    thread (the doctor run calls it on its way out, whatever happened to the probe's thread)."""

    def __init__(self, ctx: Context, *, timeout: float = PROBE_TIMEOUT, client_image: str = CLIENT_IMAGE,
                 server_image: str = SERVER_IMAGE, tests: tuple[str, ...] = TESTS) -> None:
        self.ctx = ctx
        self.tests = tuple(t for t in TESTS if t in tests)  # the others are skipped on purpose: not run
        self.timeout = timeout
        self.client_image = client_image
        self.server_image = server_image
        self.run_id = secrets.token_hex(4)
        self.created: dict[str, str] = {}  # pod name -> node (registered before the POST)
        self.all_pods: list[str] = []
        self.cleanup_problems: list[str] = []
        self._lock = threading.RLock()  # held around every create and by the cleanup
        self._cleaning = threading.Lock()  # one cleanup at a time: a second caller waits for the first to finish
        self._closed = False
        self._dirty = False

    @property
    def path(self) -> str:
        return kubeio.resource_path("v1", "pods", PROBE_NAMESPACE)

    @property
    def selector(self) -> str:
        return f"{PROBE_SELECTOR},{RUN_LABEL}={self.run_id}"

    def _check(self) -> None:
        if self._closed:
            raise Cancelled("the doctor run is over: its probe pods were cleaned up")
        self.ctx.cancel.check()

    # --- run --------------------------------------------------------------------------------------

    def run(self, state: DoctorState) -> OverlayResult:
        ctx = self.ctx
        res = OverlayResult(run_id=self.run_id)
        res.backend = flannel_backends(state)[0]
        try:
            self._sweep_stale()
            self._plan(state, res)
            if res.problem:
                return res
            deadline = time.monotonic() + self.timeout
            ctx.emit(Info(step=STEP, message=(
                f"Overlay probe: {self.server_image} server pod on {res.server_node or '-'}, {self.client_image} client pod on "
                f"{res.client_node} (namespace {PROBE_NAMESPACE}, run {self.run_id}; deleted afterwards)")))
            if res.server_node:
                self._start_server(state, res, deadline)
            self._run_client(state, res, deadline)
        except Cancelled:
            raise
        except kubeio.KubeError as e:
            res.problem, res.remediation = self._api_problem(e)
        except kubeio.Unreachable as e:
            res.problem, res.remediation = f"the Kubernetes API went away during the probe: {safe_error(e)}", "see k8s.api"
        finally:
            res.cleanup = self.cleanup()
            res.pods = list(self.all_pods)
        return res

    def _api_problem(self, e: kubeio.KubeError) -> tuple[str, str]:
        if e.status == 403 and "PodSecurity" in e.message:
            return (f"Pod Security admission refuses the probe pods in {PROBE_NAMESPACE}: {e.message}",
                    f"label {PROBE_NAMESPACE} pod-security.kubernetes.io/enforce=privileged (K3s' default), or run "
                    "`keybuzz-tui doctor --no-probes`")
        if e.status == 403:
            return (f"the kubeconfig user may not run probe pods in {PROBE_NAMESPACE}: {e.message}",
                    f"grant create/get/list/watch/delete on pods and get on pods/log in {PROBE_NAMESPACE} (see k8s.permissions), "
                    "or run `keybuzz-tui doctor --no-probes`")
        return f"the probe pods could not be managed: {e.status} {e.reason}: {e.message}", "retry; see k8s.api"

    def _plan(self, state: DoctorState, res: OverlayResult) -> None:
        """Choose the nodes and write the tests down (nothing created yet)."""
        ready = [w for w in state.workers() if w.ready]
        svc, eps = state.kube_dns()
        dns_ip = str(((svc or {}).get("spec") or {}).get("clusterIP") or "")
        if dns_ip in ("None", ""):
            dns_ip = ""
        res.dns_ip = dns_ip
        for sub in (eps or {}).get("subsets") or []:
            for a in sub.get("addresses") or []:
                res.dns_endpoints.append((str(a.get("ip", "")), str(a.get("nodeName") or "?")))
        if not ready:
            res.problem = "no Ready worker to run a probe pod on"
            res.remediation = "see k8s.nodes"
            return
        dns_nodes = {n for _, n in res.dns_endpoints}
        client = next((w for w in ready if w.name not in dns_nodes), ready[0])
        server = next((w for w in ready if w.name != client.name), None)
        res.client_node = client.name
        res.server_node = server.name if server else ""
        if "pod-to-pod" not in self.tests:
            server = None
            res.server_node = ""
        url_ip = "<server pod IP>"
        res.tests["pod-to-pod"] = ProbeTest("pod-to-pod", f"wget -T {TEST_TIMEOUT} -qO- http://{url_ip}/", client.name,
                                            f"the {self.server_image} pod on {res.server_node}" if server else "",
                                            why_not_run="" if server else "needs two Ready workers")
        if dns_ip:
            where = join_names([f"{ip} on {node}" for ip, node in res.dns_endpoints]) or "no endpoint"
            res.tests["clusterip"] = ProbeTest("clusterip", f"nc -z -w {TEST_TIMEOUT} {dns_ip} 53", client.name,
                                               f"the kube-dns ClusterIP {dns_ip} (CoreDNS: {where})")
            res.tests["coredns"] = ProbeTest("coredns", f"nslookup {DNS_NAME} {dns_ip}", client.name, f"CoreDNS through {dns_ip}")
        else:
            for name in ("clusterip", "coredns"):
                res.tests[name] = ProbeTest(name, "", client.name, "", why_not_run="no Service kube-system/kube-dns (CoreDNS)")
        for name, t in res.tests.items():
            if name not in self.tests:
                t.why_not_run = "skipped on purpose"

    def _node(self, state: DoctorState, name: str) -> dict[str, Any] | None:
        try:
            return state.kube().nodes.get(name)
        except (kubeio.KubeError, kubeio.Unreachable):
            return None

    def _create(self, pod: dict[str, Any]) -> dict[str, Any]:
        name = pod["metadata"]["name"]
        with self._lock:
            self._check()
            self.created[name] = pod["spec"]["nodeName"]  # before the call: a lost answer still gets deleted
            self.all_pods.append(name)
            self._dirty = True

            def post() -> dict[str, Any]:
                try:
                    return kubeio.request(self.ctx, "POST", self.path, body=pod)  # type: ignore[no-any-return]
                except kubeio.KubeError as e:
                    if e.status == 409 and e.reason == "AlreadyExists":
                        return {}
                    raise

            try:
                obj = retry_transient(self.ctx, post)
            except kubeio.KubeError:
                self.created.pop(name, None)
                raise
        self.ctx.journal.write("doctor-probe-created", kind="Pod", namespace=PROBE_NAMESPACE, name=name, node=pod["spec"]["nodeName"])
        return obj

    def _start_server(self, state: DoctorState, res: OverlayResult, deadline: float) -> None:
        name = f"keybuzz-doctor-{self.run_id}-server"
        pod = probe_pod(name, res.server_node, self.run_id, "server", self.server_image, port=80,
                        deadline=int(self.timeout) + 60, tolerations=_tolerations(self._node(state, res.server_node)))
        self._create(pod)
        res.server_pod = name
        # the server must serve before the client dials it; give the client the rest of the time
        server_deadline = min(deadline, time.monotonic() + self.timeout * 0.6)
        pods = self._wait([name], lambda p: _ready(p) or _pod_state(p)[0] in ("Succeeded", "Failed", "Stuck", "Deleted"), server_deadline)
        p = pods.get(name) or {}
        if _ready(p):
            res.server_ip = str((p.get("status") or {}).get("podIP"))
            t = res.tests["pod-to-pod"]
            t.command = t.command.replace("<server pod IP>", res.server_ip)
            t.target += f" ({res.server_ip})"
            return
        phase, why = _pod_state(p) if p else ("Pending", "")
        res.server_problem = (f"the server pod {PROBE_NAMESPACE}/{name} ({self.server_image}) on {res.server_node} did not become Ready: "
                              f"{phase}{': ' + why if why else ''}" + ("" if why else f" after {self.timeout * 0.6:.0f}s"))
        res.tests["pod-to-pod"].why_not_run = res.server_problem

    def _run_client(self, state: DoctorState, res: OverlayResult, deadline: float) -> None:
        runnable = [t for t in res.tests.values() if not t.why_not_run and t.name in self.tests]
        if not runnable:
            return
        name = f"keybuzz-doctor-{self.run_id}-client"
        script = _script(runnable)
        pod = probe_pod(name, res.client_node, self.run_id, "client", self.client_image, command=["sh", "-c", script],
                        deadline=int(self.timeout) + 30, tolerations=_tolerations(self._node(state, res.client_node)))
        self._create(pod)
        res.client_pod = name
        pods = self._wait([name], lambda p: _pod_state(p)[0] in ("Succeeded", "Failed", "Stuck", "Deleted"), deadline)
        p = pods.get(name) or {}
        phase, why = _pod_state(p) if p else ("Pending", "")
        text = ""
        if phase in ("Succeeded", "Failed"):
            try:
                text = self._log(name)
            except (kubeio.KubeError, kubeio.Unreachable) as e:
                why = f"its log could not be read: {safe_error(e)}"
        found = parse_output(text)
        for t in runnable:
            lines, ended = found.get(t.name, ([], None))
            t.output = lines[:20]
            t.result = classify(lines, ended)
            if t.result == "not-run":
                t.why_not_run = (f"the client pod {PROBE_NAMESPACE}/{name} ({self.client_image}) on {res.client_node} "
                                 f"did not run it: {phase}{': ' + why if why else ''}" + ("" if why or phase != "Pending" else f" after {self.timeout:.0f}s"))

    def _log(self, name: str) -> str:
        def read() -> bytes:
            resp = kubeio.request(self.ctx, "GET", f"{self.path}/{name}/log", query={"container": "client"}, stream=True)
            try:
                return resp.read() or b""
            finally:
                try:
                    resp.response.release_conn()
                except Exception:  # noqa: BLE001
                    pass

        data: bytes = retry_transient(self.ctx, read)
        return data.decode("utf-8", errors="replace")

    def _wait(self, names: list[str], done: Any, deadline: float) -> dict[str, dict[str, Any]]:
        """Watch this run's pods until done(pod) for every name, the deadline, a cancel or the end
        of the doctor run (then Cancelled)."""
        latest: dict[str, dict[str, Any]] = {}
        rv = ""
        while True:
            self._check()
            if not rv:
                data = kube_get(self.ctx, self.path, labelSelector=self.selector)
                for p in data.get("items") or []:
                    latest[p["metadata"]["name"]] = p
                rv = str((data.get("metadata") or {}).get("resourceVersion") or "")
            if all(n in latest and done(latest[n]) for n in names):
                return latest
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return latest
            window = max(1, min(WATCH_WINDOW, int(remaining + 0.999)))
            try:
                for ev in kubeio.watch(self.ctx, self.path, resource_version=rv, timeout_seconds=window, labelSelector=self.selector):
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        rv = ""
                        break
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if ev.get("type") == "BOOKMARK":
                        continue
                    name = (obj.get("metadata") or {}).get("name", "")
                    latest[name] = {**obj, "_deleted": True} if ev.get("type") == "DELETED" else obj
                    if all(n in latest and done(latest[n]) for n in names) or self._closed:
                        break
            except kubeio.KubeError as e:
                if e.status == 410:
                    rv = ""
                elif e.status not in TRANSIENT:
                    raise
                elif self.ctx.cancel.wait(0.2):
                    self.ctx.cancel.check()
            except (ValueError, OSError):
                rv = ""  # a dropped or garbled stream: list again

    # --- cleanup ----------------------------------------------------------------------------------

    def _sweep_stale(self) -> None:
        """Delete finished doctor probe pods of earlier runs (an interrupted run's leftovers whose
        deadline expired); running ones may belong to another operator's doctor: left alone."""
        try:
            data = kube_get(self.ctx, self.path, labelSelector=PROBE_SELECTOR)
        except (kubeio.KubeError, kubeio.Unreachable):
            return
        stale = [p["metadata"]["name"] for p in data.get("items") or []
                 if (p.get("metadata") or {}).get("labels", {}).get(RUN_LABEL) != self.run_id
                 and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
        for name in stale:
            self._delete(name, [])
        if stale:
            self.ctx.journal.write("doctor-probe-swept", kind="Pod", namespace=PROBE_NAMESPACE, names=stale)
            self.ctx.emit(Info(step=STEP, message=f"Deleted {len(stale)} finished probe pod(s) left by an earlier doctor run: {', '.join(stale)}"))

    def _delete(self, name: str, problems: list[str]) -> None:
        opts = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Background"}
        try:
            retry_transient(self.ctx, functools.partial(kubeio.request, self.ctx, "DELETE", f"{self.path}/{name}", body=opts), cancellable=False)
        except kubeio.KubeError as e:
            if e.status != 404:
                problems.append(f"{name}: {e.status} {e.message}")
        except kubeio.Unreachable as e:
            problems.append(f"{name}: {safe_error(e)}")

    def cleanup(self) -> list[str]:
        """Delete every pod of this run and make sure they are gone. Never checks the cancel token
        (it runs on the way out of a cancel), never raises; returns the problems (empty: clean).
        After it, no probe pod of this run can be created any more; a concurrent caller (the probe
        thread and the doctor run both clean up) returns only when the pods are gone."""
        with self._cleaning:
            with self._lock:  # waits for a create in flight
                self._closed = True
                if not self._dirty:
                    return list(self.cleanup_problems)
                self._dirty = False
                names = list(self.created)
            problems: list[str] = []
            for name in names:
                self._delete(name, problems)
            opts = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Background"}
            try:
                retry_transient(self.ctx, functools.partial(kubeio.request, self.ctx, "DELETE", self.path, body=opts,
                                                            query={"labelSelector": self.selector, "gracePeriodSeconds": 0}),
                                cancellable=False)
            except (kubeio.KubeError, kubeio.Unreachable) as e:
                problems.append(f"sweep -l {self.selector}: {safe_error(e)}")
            left = self._remaining()
            if left:
                problems.append(f"still present after {CLEANUP_WAIT:.0f}s: {', '.join(left)}")
            with self._lock:
                for name in names:
                    if name not in left:
                        self.created.pop(name, None)
            self.ctx.journal.write("doctor-probe-deleted", kind="Pod", namespace=PROBE_NAMESPACE, names=sorted(names), problems=problems)
            if problems:
                self.ctx.emit(Warning_(step=STEP, message="Some doctor probe pods could not be deleted: " + "; ".join(problems), remediation=(
                    f"delete them by hand: `kubectl -n {PROBE_NAMESPACE} delete pod -l {self.selector} --grace-period=0 --force`")))
            self.cleanup_problems = problems
            return list(problems)

    def _remaining(self) -> list[str]:
        end = time.monotonic() + CLEANUP_WAIT
        left: list[str] = []
        while True:
            try:
                data = kubeio.get(self.ctx, self.path, labelSelector=self.selector)
            except (kubeio.KubeError, kubeio.Unreachable) as e:
                return [f"(cannot list: {safe_error(e)})"]
            left = sorted(p["metadata"]["name"] for p in data.get("items") or [])
            if not left or time.monotonic() >= end:
                return left
            time.sleep(0.05)  # bounded by CLEANUP_WAIT; deliberately not cancellable (we are cleaning up)


# --- overlay.backend -----------------------------------------------------------------------------

BACKEND_ANNOTATION = "flannel.alpha.coreos.com/backend-type"


def flannel_backends(state: DoctorState) -> tuple[str, dict[str, list[str]]]:
    """(the backend most nodes use, backend -> nodes) from the nodes' Flannel annotations."""
    by: dict[str, list[str]] = {}
    for name, node in sorted(state.kube().nodes.items()):
        b = ((node.get("metadata") or {}).get("annotations") or {}).get(BACKEND_ANNOTATION, "")
        by.setdefault(b, []).append(name)
    main = max((b for b in by if b), key=lambda b: len(by[b]), default="")
    return main, by


def check_backend(ctx: Context, state: DoctorState) -> CheckOutcome:
    main, by = flannel_backends(state)
    ev = {"annotation": BACKEND_ANNOTATION, "nodes": {b or "(none)": n for b, n in by.items()}}
    if not main:
        return warn(f"no node carries {BACKEND_ANNOTATION}: the CNI is not Flannel (or K3s runs with --flannel-backend=none), "
                    "so the doctor cannot tell which packets must pass between the nodes",
                    "check the CNI's own documentation for the ports it needs between the nodes", ev)
    name, port = backend_words(main)
    nodes = by[main]
    head = f"Flannel backend {main} on {len(nodes)}/{sum(len(v) for v in by.values())} nodes ({BACKEND_ANNOTATION})"
    need = f"{name} carries pod-to-pod traffic between the nodes: {port} must pass between every pair of nodes"
    if main == "vxlan":
        need += " (allow it in UFW on every node; Hetzner must not drop it on the private network)"
    others = {b: n for b, n in by.items() if b != main}
    ev["needs"] = port
    ev["backend"] = main
    if others:
        odd = "; ".join(f"{b or 'no annotation'}: {join_names(n)}" for b, n in others.items())
        return warn(f"{head}; {need}. Other nodes differ ({odd}): pods on them cannot reach the others over the overlay",
                    "all nodes must run the same --flannel-backend (/etc/rancher/k3s/config.yaml)", ev)
    return ok(f"{head}; {need}", ev)


# --- overlay.pod-to-pod, overlay.clusterip, overlay.coredns ----------------------------------------


def _not_probed(state: DoctorState) -> CheckOutcome | None:
    if not state.probes_enabled or state.probe is None:
        return skip("not run on purpose (--no-probes): the doctor created no pod, so the overlay was not tested",
                    "run `keybuzz-tui doctor` without --no-probes to test the overlay", {"skipped_on_request": True, "reason": "--no-probes"})
    return None


def _overlay_fix(res: OverlayResult) -> str:
    name, port = backend_words(res.backend)
    return (f"the overlay between the nodes drops the packets ({name}, {port}): allow it between all nodes (UFW: "
            f"`ufw allow from 10.0.0.0/16 to any port 8472 proto udp` on every node for VXLAN) and check that the network carries it; "
            "or run KeyBuzz in the hostNetwork topology, which does not use the overlay (`keybuzz-tui repair`)")


def _judge(state: DoctorState, test: str) -> CheckOutcome:
    early = _not_probed(state)
    if early is not None:
        return early
    res: OverlayResult = state.overlay()
    if res.problem:
        return warn(f"the overlay was not tested: {res.problem}", res.remediation, res.evidence(test))
    t = res.tests.get(test)
    if t is None:
        return skip("not planned", "", res.evidence())
    ev = res.evidence(test)
    if t.why_not_run:
        return warn(f"not tested: {t.why_not_run}", _not_run_fix(t, res), ev)
    said = f"`{t.command}` from {t.node}"
    if test == "pod-to-pod":
        if t.result == "ok":
            first = next((ln for ln in t.output if "<title>" in ln.lower()), t.output[0] if t.output else "")
            return ok(f"{said} to {t.target} answered" + (f" ({first.strip()[:80]})" if first else ""), ev)
        if t.result == "timeout":
            return fail(f"{said} to {t.target} on another node: \"{t.quoted}\": pods on different nodes cannot reach each other "
                        "over the overlay", _overlay_fix(res), ev)
        if t.result == "refused":
            return warn(f"{said} to {t.target}: \"{t.quoted}\": the packets arrive (the overlay works) but nothing listens",
                        f"the probe's {SERVER_IMAGE} pod does not serve port 80: rerun the doctor", ev)
        return warn(f"{said} to {t.target}: \"{t.quoted}\"", "rerun the doctor; if it persists check the probe pods' events", ev)
    if test == "clusterip":
        if t.result == "ok":
            return ok(f"{said}: port 53 open through {t.target}", ev)
        if t.result == "timeout":
            remote = [f"{ip} on {node}" for ip, node in res.dns_endpoints if node != t.node]
            return fail(f"{said}: \"{t.quoted}\": kube-proxy sends the ClusterIP to CoreDNS"
                        + (f" ({join_names(remote)})" if remote else "") + ", across the overlay, and nothing comes back",
                        _overlay_fix(res), ev)
        if t.result == "refused":
            return fail(f"{said}: \"{t.quoted}\": the kube-dns Service has no ready endpoint (CoreDNS is down)",
                        "check CoreDNS: `kubectl -n kube-system get pods -l k8s-app=kube-dns -o wide` and its logs", ev)
        return fail(f"{said}: \"{t.quoted}\"", "check kube-proxy and the kube-dns Service", ev)
    # coredns
    if t.result == "ok":
        addr = next((ln.split(":", 1)[1].strip() for ln in t.output if ln.startswith("Address:") and ":53" not in ln), "")
        return ok(f"{said}: {DNS_NAME} resolves" + (f" to {addr}" if addr else "") + " (CoreDNS answers across the overlay)", ev)
    if t.result == "timeout":
        return fail(f"{said}: \"{t.quoted}\": CoreDNS cannot be reached from {t.node}: pods there have no cluster DNS",
                    _overlay_fix(res), ev)
    return fail(f"{said}: \"{t.quoted}\": CoreDNS answers but cannot resolve {DNS_NAME}",
                "check the CoreDNS Corefile (`kubectl -n kube-system get configmap coredns -o yaml`) and its logs", ev)


def _not_run_fix(t: ProbeTest, res: OverlayResult) -> str:
    text = t.why_not_run
    if "ErrImagePull" in text or "ImagePullBackOff" in text:
        return ("the node cannot pull the probe image: check the registry access of the nodes (or mirror busybox/nginx), "
                "or run with --no-probes")
    if "two Ready workers" in text:
        return "see k8s.nodes: the pod-to-pod test needs two Ready workers"
    if "kube-dns" in text:
        return "K3s runs CoreDNS as the Service kube-system/kube-dns unless started with --disable coredns"
    return "rerun the doctor; check the probe pods' events: `kubectl -n kube-system get events`"


def check_pod_to_pod(ctx: Context, state: DoctorState) -> CheckOutcome:
    return _judge(state, "pod-to-pod")


def check_clusterip(ctx: Context, state: DoctorState) -> CheckOutcome:
    return _judge(state, "clusterip")


def check_coredns(ctx: Context, state: DoctorState) -> CheckOutcome:
    return _judge(state, "coredns")

