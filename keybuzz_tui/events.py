"""Progress as a stream of typed events: what the engine tells whoever is watching.

The engine emits these from worker threads through an EventSink; the TUI turns them into widget
updates (as Textual messages), the CLI into readable lines or JSON lines. Nothing polls engine
internals. Every field is plain data and already redacted by the sink wrapper, so any writer can
print any event.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Status = Literal["ok", "warn", "fail", "skip", "pending", "running", "info"]


@dataclass(frozen=True)
class Event:
    """Base: every event knows when it happened and which step it belongs to."""

    step: str = ""
    ts: float = field(default_factory=time.time, compare=False)

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["type"] = self.type
        return d


@dataclass(frozen=True)
class StepStarted(Event):
    title: str = ""


@dataclass(frozen=True)
class StepFinished(Event):
    status: Status = "ok"
    summary: str = ""


@dataclass(frozen=True)
class Info(Event):
    message: str = ""


@dataclass(frozen=True)
class Warning_(Event):
    """A problem the operator should know about, with what to do about it."""

    message: str = ""
    remediation: str = ""


@dataclass(frozen=True)
class ObjectPlanned(Event):
    action: str = ""  # create | update | unchanged | delete
    kind: str = ""
    name: str = ""
    namespace: str | None = None
    diff: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectApplied(Event):
    action: str = ""
    kind: str = ""
    name: str = ""
    namespace: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class RolloutProgress(Event):
    """Counters of one DaemonSet, as `kubectl rollout status` reads them."""

    app: str = ""
    desired: int = 0
    current: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    message: str = ""


@dataclass(frozen=True)
class PodProgress(Event):
    """One pod of one app on one node changed state; reason/message say why it is not progressing."""

    app: str = ""
    node: str = ""
    pod: str = ""
    phase: str = ""  # Pending | ContainerCreating | Running | Ready | CrashLoopBackOff | ...
    ready: bool = False
    reason: str = ""
    message: str = ""
    restarts: int = 0


@dataclass(frozen=True)
class KubeEvent(Event):
    """A Kubernetes Event relevant to the rollout (FailedScheduling, BackOff, Pulled...)."""

    kind: str = ""
    name: str = ""
    reason: str = ""
    message: str = ""
    type_: str = "Normal"
    count: int = 1


@dataclass(frozen=True)
class ActionProgress(Event):
    """A Hetzner action: create_load_balancer, add_service... with its progress in percent."""

    command: str = ""
    resource: str = ""
    progress: int = 0
    status: str = "running"  # running | success | error
    error: str = ""


@dataclass(frozen=True)
class TargetHealth(Event):
    lb: str = ""
    listen_port: int = 0
    target: str = ""
    status: str = "unknown"  # healthy | unhealthy | unknown
    detail: str = ""  # why a target is unhealthy ("timeout: no HTTP response within 10 s")


@dataclass(frozen=True)
class CheckResult(Event):
    """A named validation check (or doctor check) with evidence and remediation."""

    check: str = ""
    layer: str = ""
    status: Status = "pending"
    title: str = ""
    detail: str = ""
    remediation: str = ""
    node: str | None = None
    duration: float = 0.0


@dataclass(frozen=True)
class HopResult(Event):
    """One hop of the request path traced from one worker (DNS, LB, NodePort, ingress, Service, pod)."""

    node: str = ""
    host: str = ""
    hop: str = ""
    status: Status = "pending"
    detail: str = ""


class EventSink(Protocol):
    def __call__(self, event: Event) -> None: ...


def null_sink(event: Event) -> None:
    """For callers that do not watch progress."""


class Recorder:
    """A sink that keeps every event (tests, reports) and forwards to another sink."""

    def __init__(self, forward: Callable[[Event], None] | None = None) -> None:
        self.events: list[Event] = []
        self._forward = forward
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
        if self._forward is not None:
            self._forward(event)

    def of(self, kind: type[Event]) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]
