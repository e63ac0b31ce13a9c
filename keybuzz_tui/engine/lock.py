"""One wizard at a time per platform: a Lease in the cluster, with holder, host and time.

Two operators repairing the same platform at once is how outages get worse. The lock is a
coordination.k8s.io Lease in the platform namespace (kube-system before the namespace exists):
created with the holder's identity, renewed while work runs, released at the end. A lock whose
renewTime is older than its duration is stale (a crashed run); taking it over needs an explicit
confirmation, and the takeover is written to the journal.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import kubeio
from .context import Context

LEASE_NAME = "keybuzz-tui-lock"
DURATION = 120  # seconds without renewal before a lock counts as stale
RENEW_EVERY = 30


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(ts, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:  # an offset instead of Z (as the python client serialises a datetime): a live lock must not look stale
        dt = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


_HOLDER = re.compile(r"^(?P<user>[^@\s]*)@(?P<host>\S+) pid (?P<pid>\d+)$")


def holder_alive(holder: str) -> bool | None:
    """Whether the lock's holder process still runs: True/False when it ran on this host (its pid
    is looked up), None when it is another machine's (only the lease's age can tell)."""
    m = _HOLDER.match(holder or "")
    if m is None or m["host"] != socket.gethostname():
        return None
    try:
        os.kill(int(m["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def lock_namespace(ctx: Context) -> str | None:
    """Where the platform lock lives: an install that started before the namespace existed holds
    it in kube-system, and every wizard must then look there too (None: PlatformLock decides)."""
    try:
        if kubeio.get_or_none(ctx, kubeio.resource_path("coordination.k8s.io/v1", "leases", "kube-system", LEASE_NAME)) is not None:
            return "kube-system"
    except kubeio.KubeError:
        pass  # may not read kube-system's leases: the lock's own choice
    return None


def identity() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


@dataclass
class LockInfo:
    holder: str
    acquired: datetime | None
    renewed: datetime | None
    duration: int

    @property
    def stale(self) -> bool:
        """Not renewed within its duration, or held by a process of this host that is gone
        (a killed apply must not block every wizard for two minutes)."""
        if self.renewed is None or holder_alive(self.holder) is False:
            return True
        return _now() - self.renewed > timedelta(seconds=self.duration)

    def describe(self) -> str:
        since = f" since {self.acquired:%Y-%m-%d %H:%M:%S} UTC" if self.acquired else ""
        age = ""
        if self.renewed is not None:
            secs = int((_now() - self.renewed).total_seconds())
            age = f", last renewed {secs}s ago"
        state = " (stale: its run probably crashed)" if self.stale else ""
        return f"{self.holder}{since}{age}{state}"


class LockHeld(Exception):
    def __init__(self, info: LockInfo) -> None:
        self.info = info
        verb = "was held" if info.stale else "is held"
        super().__init__(f"the platform lock {verb} by {info.describe()}")


class PlatformLock:
    """Context manager: `with PlatformLock(ctx): apply...` (take_over=True only after the operator confirmed)."""

    def __init__(self, ctx: Context, *, take_over: bool = False, namespace: str | None = None) -> None:
        self.ctx = ctx
        self.take_over = take_over
        self.namespace = namespace
        self.me = identity()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rv: str | None = None

    def _ns(self) -> str:
        if self.namespace:
            return self.namespace
        existing = lock_namespace(self.ctx)
        if existing:
            return existing
        ns = self.ctx.config.namespace
        return ns if kubeio.get_or_none(self.ctx, f"/api/v1/namespaces/{ns}") is not None else "kube-system"

    def _path(self, name: str | None = LEASE_NAME) -> str:
        return kubeio.resource_path("coordination.k8s.io/v1", "leases", self.namespace or "kube-system", name)

    def current(self) -> LockInfo | None:
        self.namespace = self._ns()
        lease = kubeio.get_or_none(self.ctx, self._path())
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        self._rv = lease["metadata"].get("resourceVersion")
        if not spec.get("holderIdentity"):
            return None
        return LockInfo(spec["holderIdentity"], _parse(spec.get("acquireTime")), _parse(spec.get("renewTime")), int(spec.get("leaseDurationSeconds") or DURATION))

    def acquire(self) -> None:
        info = self.current()
        now = _micro(_now())
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE_NAME, "namespace": self.namespace, "labels": {"app.kubernetes.io/managed-by": "keybuzz-tui"}},
            "spec": {"holderIdentity": self.me, "acquireTime": now, "renewTime": now, "leaseDurationSeconds": DURATION, "leaseTransitions": 0},
        }
        if info is not None and info.holder != self.me:
            if not (info.stale and self.take_over):
                raise LockHeld(info)  # a live lock is never taken over; a stale one only on request
            self.ctx.journal.write("lock-taken-over", previous=info.holder, by=self.me)
        if info is None and self._rv is None:
            try:
                kubeio.request(self.ctx, "POST", self._path(None), body=body)
            except kubeio.KubeError as e:
                if e.status == 409:  # someone else got it between our GET and POST
                    info = self.current()
                    raise LockHeld(info or LockInfo("another wizard", None, None, DURATION)) from None
                raise
        else:
            body["metadata"]["resourceVersion"] = self._rv
            try:
                kubeio.request(self.ctx, "PUT", self._path(), body=body)
            except kubeio.KubeError as e:
                if e.status == 409:
                    info = self.current()
                    raise LockHeld(info or LockInfo("another wizard", None, None, DURATION)) from None
                raise
        self.ctx.journal.write("lock-acquired", holder=self.me, namespace=self.namespace)
        self._thread = threading.Thread(target=self._renew_loop, name="keybuzz-lock-renew", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                lease = kubeio.get(self.ctx, self._path())
                if (lease.get("spec") or {}).get("holderIdentity") != self.me:
                    return  # taken over: the next write of ours will notice
                lease["spec"]["renewTime"] = _micro(_now())
                kubeio.request(self.ctx, "PUT", self._path(), body=lease)
            except Exception:
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            lease = kubeio.get_or_none(self.ctx, self._path())
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.me:
                kubeio.delete(self.ctx, self._path())
                self.ctx.journal.write("lock-released", holder=self.me)
        except Exception:
            pass  # an expired lock is harmless: the next run sees it stale

    def __enter__(self) -> PlatformLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
