"""Why a pod is not serving, in the operator's words: what `kubectl describe pod` and
`kubectl logs --previous` would show (FailedScheduling text, image pull errors, CrashLoopBackOff
and the crashed container's last log line, node NotReady), with a remediation.

Why its own module: the rollout's progress, the pods check, the hostPort check, the trace's pod
hop and the doctor all need the same diagnosis, and it reads Events and logs only when a pod is
actually broken (so a healthy validation pays no request for it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checks_state import ValidationState, Worker


def pod_is_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


# --- the Hetzner side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodProblem:
    """Why a pod is not serving, in the operator's words, with what to do."""

    reason: str  # CrashLoopBackOff, ImagePullBackOff, Unschedulable, NotReady, Terminating, ...
    detail: str
    remediation: str
    restarts: int = 0


def diagnose_pod(state: ValidationState, pod: dict[str, Any], worker: Worker | None = None) -> PodProblem | None:
    """The reason a pod is not Running and Ready, as `kubectl describe` + `logs --previous` would
    show it, with a remediation. None when it is Ready."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ns, name = meta.get("namespace") or state.config.namespace, meta.get("name", "")
    node = spec.get("nodeName") or ""
    logs_hint = f"`kubectl logs -n {ns} {name} --previous`"
    describe = f"`kubectl describe pod -n {ns} {name}`"
    if meta.get("deletionTimestamp"):
        return PodProblem("Terminating", f"{name} is terminating", "wait for its replacement; if it hangs, check the node's kubelet")
    if pod_is_ready(pod):
        return None
    if worker is not None and worker.ready is False:
        return PodProblem("NodeNotReady", f"node {worker.name} is NotReady ({worker.condition})",
                          f"bring {worker.name} back (kubelet: `systemctl status k3s-agent` on the node) or drain and replace it")
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            msg = c.get("message") or ""
            for ev in reversed(state.events_for("Pod", name)):
                if ev.get("reason") == "FailedScheduling":
                    msg = ev.get("message") or msg
                    break
            rem = ("a hostPort is taken on that node by another pod: free it or choose another port (`keybuzz-tui ports`)"
                   if "free ports" in msg else f"see {describe}; check node taints, selectors and capacity")
            return PodProblem("Unschedulable", f"{name} cannot be scheduled: {msg}", rem)
    statuses = status.get("containerStatuses") or []
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        restarts = int(cs.get("restartCount") or 0)
        reason = waiting.get("reason") or ""
        if not reason and (cs.get("state") or {}).get("terminated"):
            reason = "Terminated"
        last = ((cs.get("lastState") or {}).get("terminated")) or ((cs.get("state") or {}).get("terminated")) or {}
        crashed_before = bool(restarts and last and not cs.get("ready"))  # between two attempts of a crash loop
        if reason in ("CrashLoopBackOff", "RunContainerError", "Terminated", "Error") or crashed_before:
            reason = reason if reason in ("CrashLoopBackOff", "RunContainerError", "Error", "Terminated") else "CrashLoopBackOff"
            code = last.get("exitCode")
            line = state.last_log_line(pod, str(cs.get("name", "")), restarts)
            what = f"{name} is {reason or 'crashing'} (restarts {restarts}" + (f", last exit code {code}" if code is not None else "") + ")"
            if line:
                what += f": {line}"
            low = line.lower()
            if "address already in use" in low or "bind" in low and "in use" in low:
                declared = [str(p.get("containerPort")) for c in spec.get("containers") or [] if c.get("name") == cs.get("name")
                            for p in c.get("ports") or []]
                port = _port_in(line) or (declared[0] if declared else "")
                rem = (f"port {port or '?'} is already held on {node or 'the node'} by something Kubernetes does not see (a host process): "
                       f"find it with `ss -ltnp 'sport = :{port or '<port>'}'` on {node or 'the node'} and stop it, or choose another port "
                       f"(`keybuzz-tui ports`); then delete the pod (`kubectl delete pod -n {ns} {name}`). Log: {logs_hint}")
            else:
                rem = f"read why it exits: {logs_hint}"
            return PodProblem(reason or "CrashLoopBackOff", what, rem, restarts)
        if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"):
            image = cs.get("image") or ""
            return PodProblem(reason, f"{name} cannot pull {image}: {waiting.get('message') or reason}",
                              f"check that {image} exists in the registry (tag pushed?) and that the nodes can pull it (imagePullSecrets); see {describe}")
        if reason in ("CreateContainerConfigError", "CreateContainerError"):
            return PodProblem(reason, f"{name}: {waiting.get('message') or reason}",
                              "a Secret or ConfigMap it references is missing: re-run `keybuzz-tui apply` (it recreates them from the keyring)")
        if reason in ("ContainerCreating", "PodInitializing"):
            return PodProblem(reason, f"{name} is starting ({reason})", f"wait a little; if it stays there see {describe}")
    phase = status.get("phase") or "Unknown"
    if phase == "Pending":
        return PodProblem("Pending", f"{name} is Pending", f"see {describe}")
    if phase in ("Failed", "Succeeded"):
        return PodProblem(phase, f"{name} has {phase.lower()} ({status.get('reason') or ''})".replace(" ()", ""), f"see {describe}")
    probe = ""
    for ev in reversed(state.events_for("Pod", name)):
        if ev.get("reason") == "Unhealthy":
            probe = ev.get("message") or ""
            break
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    return PodProblem("NotReady", f"{name} is Running but not Ready" + (f": {probe}" if probe else " (its readiness probe fails)"),
                      f"check the app's health endpoint and its log (`kubectl logs -n {ns} {name}`); see {describe}", restarts)


def _port_in(line: str) -> str:
    m = re.search(r"(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]*\]|\*|localhost):(\d{1,5})\b", line) or re.search(r"\bport (\d{1,5})\b", line)
    return m.group(1) if m else ""
