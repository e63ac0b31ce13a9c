"""The optional, explicit port probe: what really listens on each node, host processes included.

Why: the scheduler and the API only know ports that pods declare. An old nginx left on a worker
holding 8080 is invisible to both, and the runbook's hostNetwork API pod then crash-loops there
with "address already in use" after the rollout. A short-lived pod per node, on the node's
network, lists the listening sockets so the conflict is found before anything is changed.

The probe pod (one per node, deleted afterwards whatever happens):
- image busybox:1.36, `netstat -ltnp` (busybox has netstat, not ss; `ss -ltnp` is the fallback
  for images that only have iproute2), hostNetwork so it sees the node's sockets and hostPID so
  `-p` can name host processes (without it they show as "-");
- pinned with nodeName (no scheduler involved: it also works on a node whose ports are full),
  tolerating exactly that node's taints, restartPolicy Never, activeDeadlineSeconds, tiny
  requests, no service account token, terminationGracePeriodSeconds 0;
- labelled app.kubernetes.io/managed-by=keybuzz-tui, keybuzz.io/probe=ports (+ a run id);
- in kube-system: it always exists, so probing never creates our namespace before the operator
  confirmed a plan, and it is the namespace clusters exempt from Pod Security "baseline", which
  forbids hostNetwork/hostPID pods everywhere else.
Cleanup is a try/finally: delete each pod we created (grace 0) and a label-selector
deletecollection sweep, also on error, timeout and cancel.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import urllib3

from ..events import Info, Warning_
from ..redact import safe_error
from . import kubeio
from .context import Context
from .ports import STEP, TRANSIENT, NodeInfo, PortInventory, TakenPort, _extract_node, retry_transient

PROBE_IMAGE = "busybox:1.36"
PROBE_NAMESPACE = "kube-system"
PROBE_LABELS = {"app.kubernetes.io/managed-by": "keybuzz-tui", "keybuzz.io/probe": "ports"}
PROBE_SELECTOR = ",".join(f"{k}={v}" for k, v in PROBE_LABELS.items())
RUN_LABEL = "keybuzz.io/probe-run"
NODE_ANNOTATION = "keybuzz.io/probe-node"
PROBE_COMMAND = ["sh", "-c", "netstat -ltnp 2>/dev/null || ss -ltnp"]
WATCH_WINDOW = 2  # seconds per watch request: bounds how long a cancel can wait for an event
_STUCK = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError")


class ProbeError(Exception):
    """The probe could not run at all (forbidden, unreachable); the message says what to do."""


@dataclass(frozen=True)
class Listener:
    node: str
    ip: str
    port: int
    protocol: str = "TCP"
    process: str = ""  # "" when the socket's process is not visible
    pid: int | None = None


@dataclass
class ProbeResult:
    listeners: dict[str, list[Listener]] = field(default_factory=dict)  # nodes probed successfully
    failures: dict[str, str] = field(default_factory=dict)  # node -> why it could not be probed
    requests: int = 0

    def count(self) -> None:
        self.requests += 1


def _create(ctx: Context, path: str, pod: dict[str, Any]) -> dict[str, Any]:
    """POST the pod; an AlreadyExists after a retried POST means our first attempt landed."""
    try:
        return kubeio.request(ctx, "POST", path, body=pod)  # type: ignore[no-any-return]
    except kubeio.KubeError as e:
        if e.status == 409 and e.reason == "AlreadyExists":
            return {}
        raise


# --- public API ----------------------------------------------------------------------------------


def probe_nodes(ctx: Context, nodes: Sequence[str | NodeInfo] | None = None, ports: Collection[int] | None = None,
                *, timeout: float = 60.0, namespace: str = PROBE_NAMESPACE, image: str = PROBE_IMAGE) -> dict[str, list[Listener]]:
    """node -> listeners (only those on `ports` when given). Nodes that could not be probed are
    absent, and a Warning_ says why. nodes=None: the worker nodes (see worker_nodes)."""
    return run_probe(ctx, nodes, ports, timeout=timeout, namespace=namespace, image=image).listeners


def worker_nodes(ctx: Context) -> list[NodeInfo]:
    """The nodes our DaemonSets run on by default: no NoSchedule/NoExecute taint (one LIST)."""
    inv = PortInventory(nodes=_list_nodes(ctx))
    names = set(inv.default_targets())
    return [n for n in inv.nodes if n.name in names]


def merge(inventory: PortInventory, results: dict[str, list[Listener]] | ProbeResult) -> list[TakenPort]:
    """Add what the probe found to the inventory; returns the new host-process holders."""
    if isinstance(results, ProbeResult):
        return inventory.add_probe(results.listeners, results.failures)
    return inventory.add_probe(results)


def run_probe(ctx: Context, nodes: Sequence[str | NodeInfo] | None, ports: Collection[int] | None = None, *,
              timeout: float = 60.0, namespace: str = PROBE_NAMESPACE, image: str = PROBE_IMAGE) -> ProbeResult:
    """Create one probe pod per node, wait for them (watch, bounded by `timeout`), read their
    logs, parse the listeners; always delete the pods. Raises ProbeError when the probe cannot
    run at all, Cancelled when ctx.cancel fires (after cleaning up)."""
    result = ProbeResult()
    infos = _node_infos(ctx, nodes, result)
    if not infos:
        return result
    run_id = secrets.token_hex(4)
    deadline = time.monotonic() + timeout
    created: dict[str, str] = {}  # pod name -> node
    path = kubeio.resource_path("v1", "pods", namespace)
    ctx.emit(Info(step=STEP, message=(
        f"Probing listening ports on {len(infos)} node(s) with short-lived hostNetwork pods ({image}) in {namespace}")))
    try:
        first_rv = ""
        for i, n in enumerate(infos):
            if not n.ready:
                result.failures[n.name] = f"not probed: node {n.name} is NotReady (its kubelet would never start the probe)"
                continue
            ctx.cancel.check()
            pod = probe_pod(n, run_id, i, namespace=namespace, image=image, timeout=timeout)
            name = pod["metadata"]["name"]
            created[name] = n.name  # before the call: a lost answer still gets its pod deleted
            try:
                obj = retry_transient(ctx, functools.partial(_create, ctx, path, pod), on_attempt=result.count)
            except kubeio.KubeError as e:
                created.pop(name)  # refused: nothing to delete
                raise _probe_error(e, namespace) from None
            except kubeio.Unreachable as e:
                raise ProbeError(f"cannot create the port probe pod: {e}") from None
            ctx.journal.write("port-probe-created", kind="Pod", namespace=namespace, name=name, node=n.name)
            first_rv = first_rv or (obj.get("metadata") or {}).get("resourceVersion", "")
        states = _wait(ctx, path, run_id, created, first_rv, deadline, result)
        for pod_name, node in created.items():
            phase, why = states.get(pod_name, ("Pending", ""))
            if phase != "Succeeded":
                detail = why or f"still {phase} after {timeout:.0f}s"
                tail = _log(ctx, path, pod_name, result, tail=3) if phase == "Failed" else ""
                result.failures[node] = f"probe pod {namespace}/{pod_name} {phase.lower()}: {detail}" + (f" ({tail})" if tail else "")
                continue
            ctx.cancel.check()
            try:
                text = _log(ctx, path, pod_name, result)
            except (kubeio.KubeError, kubeio.Unreachable) as e:
                result.failures[node] = f"the log of probe pod {namespace}/{pod_name} could not be read: {safe_error(e)}"
                continue
            listeners = parse_listeners(node, text)
            if ports is not None:
                wanted = set(ports)
                listeners = [ln for ln in listeners if ln.port in wanted]
            result.listeners[node] = listeners
            ctx.emit(Info(step=STEP, message=f"Probe on {node}: {len(listeners)} listening socket(s)"))
    finally:
        result.requests += _cleanup(ctx, path, namespace, created)
    for node, why in result.failures.items():
        ctx.emit(Warning_(step=STEP, message=f"Port probe on {node} gave no answer: {why}", remediation=(
            "Ports held by host processes on that node are unknown; check them there with `ss -ltnp`, "
            "or fix the node and run the probe again.")))
    return result


# --- the pod ---------------------------------------------------------------------------------------


def probe_pod(node: NodeInfo, run_id: str, index: int, *, namespace: str = PROBE_NAMESPACE,
              image: str = PROBE_IMAGE, timeout: float = 60.0) -> dict[str, Any]:
    tolerations = []
    for t in node.taints:
        tol: dict[str, Any] = {"key": t.get("key", ""), "effect": t.get("effect", "")}
        if t.get("value"):
            tol.update(operator="Equal", value=t["value"])
        else:
            tol["operator"] = "Exists"
        tolerations.append(tol)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"keybuzz-port-probe-{run_id}-{index}",
            "namespace": namespace,
            "labels": {**PROBE_LABELS, RUN_LABEL: run_id},
            "annotations": {NODE_ANNOTATION: node.name},
        },
        "spec": {
            "nodeName": node.name,
            "hostNetwork": True,
            "hostPID": True,
            "dnsPolicy": "Default",
            "restartPolicy": "Never",
            "activeDeadlineSeconds": max(30, int(timeout) + 30),
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": tolerations,
            "containers": [{
                "name": "probe",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": list(PROBE_COMMAND),
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
            }],
        },
    }


# --- waiting -------------------------------------------------------------------------------------


def pod_state(pod: dict[str, Any]) -> tuple[str, str]:
    """(phase, why) where a Pending pod stuck on an image or config error counts as done."""
    st = pod.get("status") or {}
    phase = st.get("phase") or "Pending"
    for cs in st.get("containerStatuses") or ():
        w = (cs.get("state") or {}).get("waiting") or {}
        if w.get("reason") in _STUCK:
            return "Stuck", f"{w['reason']}: {w.get('message', '')}".strip(": ")
        t = (cs.get("state") or {}).get("terminated") or {}
        if t and phase == "Failed":
            return phase, f"exit code {t.get('exitCode')} ({t.get('reason', 'Error')})"
    if phase == "Failed":
        return phase, st.get("message") or st.get("reason") or "failed"
    return phase, ""


def _wait(ctx: Context, path: str, run_id: str, created: dict[str, str], rv: str, deadline: float,
          result: ProbeResult) -> dict[str, tuple[str, str]]:
    """Watch our probe pods until each has finished (or is stuck), the deadline, or a cancel."""
    states: dict[str, tuple[str, str]] = {}
    pending = set(created)
    selector = f"{PROBE_SELECTOR},{RUN_LABEL}={run_id}"
    while pending:
        ctx.cancel.check()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if not rv:
            rv = _relist(ctx, path, selector, states, pending, result)
            continue
        window = max(1, min(WATCH_WINDOW, int(remaining + 0.999)))
        try:
            resp = kubeio.request(
                ctx, "GET", path, stream=True, timeout=(ctx.request_timeout, window + 5),
                query={"watch": True, "resourceVersion": rv, "timeoutSeconds": window,
                       "allowWatchBookmarks": True, "labelSelector": selector},
            )
        except kubeio.KubeError as e:
            result.requests += 1
            if e.status == 410:
                rv = ""
                continue
            if e.status in TRANSIENT:
                if ctx.cancel.wait(0.2):
                    ctx.cancel.check()
                continue
            raise ProbeError(f"cannot watch the probe pods: {e.message}") from None
        except kubeio.Unreachable as e:
            raise ProbeError(f"cannot watch the probe pods: {e}") from None
        result.requests += 1
        rv = _consume(ctx, resp, rv, states, pending)
    return states


def _consume(ctx: Context, resp: Any, rv: str, states: dict[str, tuple[str, str]], pending: set[str]) -> str:
    """Read one watch response; stop early (closing the connection, never returning a half-read
    stream to the pool) when everything is done or the operator cancels."""
    buf = b""
    try:
        for chunk in resp.response.stream(4096, decode_content=True):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                ev = json.loads(line)
                obj = ev.get("object") or {}
                if ev.get("type") == "ERROR":
                    return "" if obj.get("code") == 410 else rv
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if ev.get("type") == "BOOKMARK":
                    continue
                name = (obj.get("metadata") or {}).get("name", "")
                if name not in pending and name not in states:
                    continue
                if ev.get("type") == "DELETED":
                    states[name] = ("Deleted", "the probe pod was deleted by someone else")
                    pending.discard(name)
                    continue
                phase, why = pod_state(obj)
                states[name] = (phase, why)
                if phase in ("Succeeded", "Failed", "Stuck"):
                    pending.discard(name)
            if not pending or ctx.cancel.cancelled:
                return rv
    except (urllib3.exceptions.HTTPError, OSError, ValueError):
        return rv  # a dropped or garbled stream: the caller watches again from the last version
    finally:
        resp.response.close()
        resp.response.release_conn()
    return rv


def _relist(ctx: Context, path: str, selector: str, states: dict[str, tuple[str, str]], pending: set[str],
            result: ProbeResult) -> str:
    try:
        data = retry_transient(ctx, functools.partial(kubeio.get, ctx, path, labelSelector=selector), on_attempt=result.count)
    except kubeio.KubeError as e:
        raise ProbeError(f"cannot list the probe pods: {e.message}") from None
    except kubeio.Unreachable as e:
        raise ProbeError(f"cannot list the probe pods: {e}") from None
    for pod in data.get("items") or ():
        name = pod["metadata"]["name"]
        if name in pending:
            phase, why = pod_state(pod)
            states[name] = (phase, why)
            if phase in ("Succeeded", "Failed", "Stuck"):
                pending.discard(name)
    return str((data.get("metadata") or {}).get("resourceVersion") or "")


def _log(ctx: Context, path: str, pod_name: str, result: ProbeResult, tail: int | None = None) -> str:
    """The probe container's output (text/plain, so read raw rather than as JSON). Raises when
    it cannot be read, except for the short tail quoted in a failure message."""
    query: dict[str, Any] = {"container": "probe"}
    if tail:
        query["tailLines"] = tail

    def read() -> bytes:
        resp = kubeio.request(ctx, "GET", f"{path}/{pod_name}/log", query=query, stream=True)
        return resp.read() or b""

    try:
        data = retry_transient(ctx, read, on_attempt=result.count)
    except (kubeio.KubeError, kubeio.Unreachable) as e:
        if tail:
            return f"log not readable: {safe_error(e)}"
        raise
    text = data.decode("utf-8", errors="replace")
    return " | ".join(text.strip().splitlines()) if tail else text


def _cleanup(ctx: Context, path: str, namespace: str, created: dict[str, str]) -> int:
    """Delete every probe pod: ours by name (grace 0: a probe has nothing to flush), then a
    label-selector sweep that also catches a pod whose create answer was lost, or leftovers of an
    interrupted earlier run. Runs on the way out of errors and cancels, so it never checks the
    cancel token; each call has the client's timeout."""
    problems: list[str] = []
    opts = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Background"}
    counter = ProbeResult()
    for name in created:
        try:
            retry_transient(ctx, functools.partial(kubeio.request, ctx, "DELETE", f"{path}/{name}", body=opts),
                            on_attempt=counter.count, cancellable=False)
        except kubeio.KubeError as e:
            if e.status != 404:
                problems.append(f"{name}: {e.message}")
        except kubeio.Unreachable as e:
            problems.append(f"{name}: {e}")
    try:
        retry_transient(ctx, functools.partial(kubeio.request, ctx, "DELETE", path, body=opts,
                                               query={"labelSelector": PROBE_SELECTOR, "gracePeriodSeconds": 0}),
                        on_attempt=counter.count, cancellable=False)
    except (kubeio.KubeError, kubeio.Unreachable) as e:
        if created or not isinstance(e, kubeio.KubeError) or e.status != 403:
            problems.append(f"sweep: {safe_error(e)}")
    n = counter.requests
    if created:
        ctx.journal.write("port-probe-deleted", kind="Pod", namespace=namespace, names=sorted(created), problems=problems)
    if problems:
        ctx.emit(Warning_(step=STEP, message="Some port probe pods could not be deleted: " + "; ".join(problems), remediation=(
            f"Delete them by hand: `kubectl -n {namespace} delete pod -l {PROBE_SELECTOR} --grace-period=0`")))
    return n


def _probe_error(e: kubeio.KubeError, namespace: str) -> ProbeError:
    if e.status == 403:
        return ProbeError(
            f"the port probe needs to create pods in {namespace}: {e.message}. Grant 'create', 'get', 'list', 'watch' "
            f"and 'delete'/'deletecollection' on pods and 'get' on pods/log in {namespace}, or run without the probe "
            "(host processes then stay invisible until the rollout).")
    return ProbeError(f"cannot create the port probe pod ({e.status} {e.reason}): {e.message}")


def _list_nodes(ctx: Context) -> list[NodeInfo]:
    try:
        data = retry_transient(ctx, functools.partial(kubeio.get, ctx, "/api/v1/nodes"))
    except kubeio.KubeError as e:
        raise ProbeError(f"cannot list nodes for the port probe: {e.message}") from None
    except kubeio.Unreachable as e:
        raise ProbeError(f"cannot list nodes for the port probe: {e}") from None
    return [_extract_node(o) for o in data.get("items") or ()]


def _node_infos(ctx: Context, nodes: Sequence[str | NodeInfo] | None, result: ProbeResult) -> list[NodeInfo]:
    if nodes is not None and all(isinstance(n, NodeInfo) for n in nodes):
        return list(nodes)  # type: ignore[arg-type]
    known = {n.name: n for n in _list_nodes(ctx)}
    result.requests += 1
    if nodes is None:
        return worker_nodes_from(list(known.values()))
    out = []
    for n in nodes:
        name = n.name if isinstance(n, NodeInfo) else n
        if name in known:
            out.append(known[name])
        else:
            result.failures[name] = f"not probed: no node named {name}"
    return out


def worker_nodes_from(nodes: list[NodeInfo]) -> list[NodeInfo]:
    names = set(PortInventory(nodes=nodes).default_targets())
    return [n for n in nodes if n.name in names]


# --- parsing `netstat -ltnp` / `ss -ltnp` ---------------------------------------------------------

_SS_PROC = re.compile(r'users:\(\("([^"]+)",pid=(\d+)')
_NETSTAT_PROC = re.compile(r"^(\d+)/(.+)$")


def _split_addr(addr: str) -> tuple[str, int] | None:
    if addr.startswith("[") and "]:" in addr:
        ip, _, port = addr[1:].partition("]:")
    else:
        ip, _, port = addr.rpartition(":")
    if not port.isdigit():
        return None
    ip = ip or "::"
    if ip == "*":
        ip = "0.0.0.0"
    if "%" in ip:
        ip = ip.split("%", 1)[0]
    return ip, int(port)


def parse_listeners(node: str, text: str) -> list[Listener]:
    """Listening sockets from busybox/GNU `netstat -ltnp` or iproute2 `ss -ltnp` output.

    netstat: `tcp 0 0 0.0.0.0:8080 0.0.0.0:* LISTEN 1234/nginx: master`;
    ss:      `LISTEN 0 511 0.0.0.0:8080 0.0.0.0:* users:(("nginx",pid=1234,fd=6))`.
    """
    out: dict[tuple[str, int, str], Listener] = {}
    for raw in text.splitlines():
        tok = raw.split()
        if len(tok) < 4:
            continue
        process, pid = "", None
        if tok[0].lower().startswith(("tcp", "udp")):  # netstat
            proto = "UDP" if tok[0].lower().startswith("udp") else "TCP"
            if proto == "TCP" and "LISTEN" not in tok:
                continue
            local = tok[3]
            after = tok[tok.index("LISTEN") + 1:] if "LISTEN" in tok else tok[5:]
            if after:
                m = _NETSTAT_PROC.match(" ".join(after))
                if m:
                    pid, process = int(m.group(1)), m.group(2).split()[0].rstrip(":")
        elif tok[0] in ("LISTEN", "UNCONN"):  # ss
            proto = "TCP" if tok[0] == "LISTEN" else "UDP"
            local = tok[3]
            m = _SS_PROC.search(raw)
            if m:
                process, pid = m.group(1).rstrip(":"), int(m.group(2))
        else:
            continue
        sp = _split_addr(local)
        if sp is None:
            continue
        ip, port = sp
        key = (ip, port, proto)
        if key not in out or (process and not out[key].process):
            out[key] = Listener(node, ip, port, proto, process, pid)
    # one entry per port and protocol (0.0.0.0 and :: listeners of one daemon are one holder)
    by_port: dict[tuple[int, str], Listener] = {}
    for ln in sorted(out.values(), key=lambda x: (x.port, x.protocol, x.ip)):
        cur = by_port.get((ln.port, ln.protocol))
        if cur is None or (ln.process and not cur.process):
            by_port[(ln.port, ln.protocol)] = ln
    return list(by_port.values())


__all__ = [
    "Listener", "ProbeError", "ProbeResult", "probe_nodes", "run_probe", "merge", "worker_nodes",
    "parse_listeners", "probe_pod", "PROBE_LABELS", "PROBE_SELECTOR", "PROBE_NAMESPACE",
]
