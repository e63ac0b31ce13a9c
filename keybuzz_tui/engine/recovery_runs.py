"""Runs that stopped before their end, the platform lock as recovery sees it, and rollback.

Resume needs two sources. The journal says which apply or repair started and never finished (a
crash, a kill, a lost terminal: no `run-finished` line), or finished "interrupted" (Ctrl-C) or
"failed" (the API went away), and what it had changed up to then. The live state says what is
left: the drift computed now. Nothing else is needed to continue: a plan against the live state
contains only what remains, so the next run simply repairs the drift.

A run older than the last apply or repair that completed is not reported: that later run went
over everything again. A run whose holder still has the platform lock is reported as running,
not interrupted (two terminals on one platform).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from ..events import Info
from ..journal import Journal
from ..redact import REDACTOR, safe_error
from . import rollout
from .context import Context
from .lock import LockInfo, PlatformLock, holder_alive, lock_namespace

RESUMABLE = ("apply", "repair")
COMPLETED = ("ok", "validation-failed")  # the run made every change it planned


@dataclass
class InterruptedRun:
    """An apply or repair that stopped before its end, and where."""

    run: str
    command: str
    started: str  # the journal's timestamp, UTC ("2026-11-26T03:12:05Z")
    host: str = ""
    user: str = ""
    how: str = "crashed"  # crashed (no end line: killed, lost) | interrupted (Ctrl-C, cancel) | failed
    reason: str = ""
    done: list[str] = field(default_factory=list)  # what it changed, in order
    stopped_at: str = ""  # the object it was applying when it stopped, when the journal knows
    remaining: int | None = None  # changes left according to the live state (None: not computed)
    still_running: bool = False  # its holder still holds the platform lock
    holder: str = ""
    lock_left: bool = False  # it died holding the platform lock (not stale yet)

    @property
    def last(self) -> str:
        return self.done[-1] if self.done else ""

    @property
    def when(self) -> str:
        ts = self.started
        return ts.replace("T", " ")[:16] if "T" in ts else ts

    def describe(self) -> str:
        """"the apply of 2026-11-26 03:12 stopped after DaemonSet keybuzz/keybuzz-api; 4 changes
        remain (no end in the journal: killed, crashed or disconnected; on vm)"."""
        head = f"the {self.command} of {self.when}"
        where = f"on {self.host}" if self.host else ""
        if self.still_running:
            return REDACTOR.redact(f"{head} is still running: {self.holder} holds the platform lock")
        text = f"{head} stopped after {self.last}" if self.last else f"{head} stopped before changing anything"
        if self.stopped_at and self.stopped_at != self.last:
            text += f", while applying {self.stopped_at}"
        if self.remaining is not None:
            text += "; nothing remains: the platform matches keybuzz.yaml" if self.remaining == 0 else (
                f"; {self.remaining} change{'s' if self.remaining != 1 else ''} remain{'' if self.remaining != 1 else 's'}")
        if self.how == "interrupted":
            why = "interrupted" + (f": {self.reason}" if self.reason else "")
        elif self.how == "failed":
            why = "failed" + (f": {self.reason}" if self.reason else "")
        else:
            why = "no end in the journal: killed, crashed or disconnected"
        text += f" ({why}{'; ' + where if where else ''})"
        if self.lock_left:
            text += f"; its platform lock ({self.holder}) is left behind: it goes stale 2 minutes after its last renewal"
        return REDACTOR.redact(text)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["description"] = self.describe()
        return d  # type: ignore[no-any-return]


def _ref(e: dict[str, Any]) -> str:
    kind, name, ns = e.get("kind") or "", e.get("name") or "", e.get("namespace")
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def _group(journal: Journal) -> list[tuple[str, list[dict[str, Any]]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for e in journal.entries():
        runs.setdefault(str(e.get("run", "")), []).append(e)
    return list(runs.items())


def stopped_runs(journal: Journal) -> list[InterruptedRun]:
    """Applies and repairs after the last completed one that did not complete (journal only)."""
    found: list[InterruptedRun] = []
    for run_id, entries in _group(journal):
        start = next((e for e in entries if e.get("event") == "run-started" and e.get("command") in RESUMABLE), None)
        if start is None:
            continue
        end = next((e for e in reversed(entries) if e.get("event") == "run-finished"), None)
        if end is not None and end.get("status") in COMPLETED:
            found.clear()  # a completed run went over everything: older stops are resumed
            continue
        r = InterruptedRun(run_id, str(start.get("command")), str(start.get("ts", "")), str(start.get("host", "")), str(start.get("user", "")))
        if end is not None:
            r.how = "interrupted" if end.get("status") == "interrupted" else "failed"
            r.reason = str(end.get("reason") or end.get("error") or end.get("step") or "")
        for e in entries:
            ev = e.get("event")
            if ev in ("object-applied", "object-deleted", "rollback") or (ev == "change" and e.get("action") != "unchanged"):
                if ev != "object-applied" or e.get("action") != "unchanged":
                    r.done.append(_ref(e))
            elif ev == "object-failed":
                r.stopped_at = _ref(e)
                r.reason = r.reason or str(e.get("error") or "")
            elif ev == "kube-apply-cancelled":
                r.stopped_at = str(e.get("next") or "")
            elif ev == "lock-acquired":
                r.holder = str(e.get("holder") or "")
        found.append(r)
    return found


def lock_status(ctx: Context) -> LockInfo | None:
    """Who holds the platform lock now (None: nobody), for the screens and `recover`."""
    return PlatformLock(ctx, namespace=lock_namespace(ctx)).current()


def interrupted(ctx: Context, *, report: Any = None) -> list[InterruptedRun]:
    """Applies and repairs that stopped before their end (journal), each with where it stopped and
    how many changes remain (the live drift; `report` reuses one already computed)."""
    runs = stopped_runs(ctx.journal)
    if not runs:
        return []
    try:
        holder = lock_status(ctx)
    except Exception:  # the lock is a courtesy here: an unreachable API is reported by the drift
        holder = None
    remaining: int | None = None
    if report is None:
        from .recovery import drift

        try:
            report = drift(ctx, with_interrupted=False)
        except Exception:
            report = None
    if report is not None and not report.problems:
        remaining = len(report.items)  # with a layer that could not be compared, the count would lie
    for r in runs:
        r.remaining = remaining
        if holder is not None and not holder.stale and r.holder and holder.holder == r.holder:
            if holder_alive(r.holder) is False:
                r.lock_left = True  # died with the lock: a crash, not a run in progress
            else:
                r.still_running = True
    return runs


# --- rollback ------------------------------------------------------------------------------------


def revisions(ctx: Context, app: str) -> list[rollout.Revision]:
    """The app's DaemonSet revisions, oldest first, each with what rolling back to it changes
    (rollout.history: ControllerRevisions, images, change-cause, diff from the running template)."""
    return rollout.history(ctx, app)


def rollback(ctx: Context, app: str, revision: int | None = None, *, take_over: bool = False, timeout: float | None = None) -> rollout.RollbackResult:
    """Take the app's DaemonSet back to `revision` (default: the previous one), holding the platform
    lock, journaled as a run of its own; the rollout is watched (rollout.rollback)."""
    ctx.journal.run_id = uuid.uuid4().hex[:12]
    with PlatformLock(ctx, take_over=take_over, namespace=lock_namespace(ctx)):
        ctx.journal.start_run("rollback", app=app, revision=revision)
        try:
            result = rollout.rollback(ctx, app, revision, timeout=timeout)
        except rollout.RolloutError as e:
            ctx.journal.finish_run("failed", error=safe_error(e))
            raise
        except BaseException as e:
            ctx.journal.finish_run("interrupted" if type(e).__name__ == "Cancelled" else "failed", error=safe_error(e))
            raise
        ctx.journal.finish_run("ok" if result.ok else "failed", to_revision=result.to_revision)
        ctx.emit(Info(step="rollback", message=result.message))
        return result
