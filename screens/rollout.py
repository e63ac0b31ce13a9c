"""Step 5, Rollout: apply the Kubernetes objects, then watch both DaemonSets converge.

What the operator sees:
- one progress bar per DaemonSet (available / desired, with updated and ready counts), from
  RolloutProgress events;
- a worker-by-app grid: each pod's state as it changes (Pending, ContainerCreating, Running,
  Ready ✓, CrashLoopBackOff ✗, ImagePullBackOff ✗, node NotReady ✗), from PodProgress events;
- the event log: Kubernetes Events with their reasons, warnings with their remediation, and the
  last log line of a crashing container;
- the elapsed time against the timeout.

Cancel (esc / c) stops watching at the next safe point: what was applied stays applied and the
journal says so. When the rollout fails or times out, `r` offers a rollback to the previous
ControllerRevision after a confirmation that lists the revisions and what changes.

All engine work runs in one thread worker (apply, then watch); events arrive as EngineEvent
messages; nothing polls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from keybuzz_tui.screens.board_widgets import (
    Clock,
    MarkdownConfirm,
    Tones,
    elapsed,
    plain,
    status_text,
    step_back,
    step_next,
)
from keybuzz_tui.screens.bridge import EngineEvent
from keybuzz_tui.screens.widgets import EventLog, StepScreen
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, ProgressBar, RichLog, Static

from keybuzz_tui import events as ev
from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.redact import safe_error

FINAL = ("done", "degraded", "failed", "timeout", "cancelled", "error")
ROLLBACK_OK = ("failed", "timeout", "cancelled", "error", "degraded")
FAILING = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
    "FailedScheduling",
    "Unschedulable",
    "Error",
    "OOMKilled",
    "Failed",
}


def pod_state(e: ev.PodProgress) -> tuple[str, str]:
    """(status, label) of one pod for the grid: the label names the Kubernetes state."""
    phase, reason = e.phase or "", e.reason or ""
    if e.ready or phase == "Ready":
        return "ok", "Ready"
    if reason in ("NodeNotReady", "NodeLost", "NodeUnreachable") or phase == "NodeNotReady":
        return "fail", "node NotReady"
    if phase == "Missing":
        return "pending", "no pod yet"
    word = reason if reason in FAILING else phase
    if word in FAILING:
        return "fail", f"{word} ({e.restarts})" if e.restarts and word == "CrashLoopBackOff" else word
    if phase == "Running":
        return "running", "Running, not Ready" if reason == "NotReady" else "Running"
    if phase in ("ContainerCreating", "PodInitializing") or reason == "ContainerCreating":
        return "pending", "ContainerCreating"
    if phase in ("Pending", "Scheduled", ""):
        return "pending", reason or "Pending"
    if phase in ("Terminating", "Succeeded"):
        return "pending", phase
    return "unknown", phase or reason


@dataclass
class RolloutState:
    """Everything the screen shows, so a snapshot can be rendered from a fixed state."""

    status: str = "idle"  # idle | planning | applying | watching | done | failed | timeout | cancelled | error | rolling-back
    started: float | None = None
    finished: float | None = None
    summary: str = ""
    progress: dict[str, ev.RolloutProgress] = field(default_factory=dict)
    pods: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (node, app) -> (status, label)


class RolloutScreen(StepScreen):
    """Apply the Kubernetes objects and watch the DaemonSets roll out, worker by worker."""

    CSS_PATH = "rollout.tcss"
    TITLE = "Rollout"
    STEP = "rollout"
    HELP = """\
## Step 5 · Rollout

The wizard applies the Kubernetes objects (namespace, Secrets, ConfigMaps, the two hostNetwork
DaemonSets, the NodePort Services and the Ingress) with server-side apply, then watches the
DaemonSets until every worker runs a Ready pod of each app.

- **Bars**: available / desired pods per DaemonSet (updated and ready counts beside them).
- **Grid**: one row per worker, one column per app. `✓ Ready` is done; `◐ Running` waits for its
  readiness probe; `…` is still being created; `✗` names what is wrong (CrashLoopBackOff with its
  restart count, ImagePullBackOff, node NotReady, FailedScheduling).
- **Event log**: Kubernetes events with their reasons, warnings with what to do, and the last log
  line of a container that keeps crashing (for example `Address already in use`: a host process
  already holds the app's port on that worker).

The apply starts by itself when you arrive from Review's confirmation; otherwise `a` plans and
applies here.

Keys: `a` apply, `c` / `esc` cancel watching (what was applied stays applied; the journal records
it and a re-run resumes; `esc` goes back when nothing runs), `w` watch again after fixing a cause,
`r` roll back to the previous revision when the rollout failed or timed out (a confirmation lists
the revisions and what changes), `n` continue to the load balancer once everything is Ready.
"""

    BINDINGS = [
        Binding("a", "start", "Apply", id="rollout.apply", tooltip="Plan (if needed), apply the Kubernetes objects and watch the rollout"),
        Binding("escape", "cancel_or_back", "Back", id="rollout.escape", tooltip="Cancel the watch (nothing is undone), or go back when idle"),
        Binding("c", "cancel", "Cancel", id="rollout.cancel", show=False, tooltip="Stop watching at the next safe point; the rollout is left as it is"),
        Binding("r", "rollback", "Roll back", id="rollout.rollback", tooltip="Roll the failed DaemonSets back to their previous ControllerRevision"),
        Binding("w", "watch_again", "Watch", id="rollout.watch", tooltip="Watch the rollout again (after fixing a cause)"),
        Binding("n", "next", "Next", id="rollout.next", tooltip="Continue to the Hetzner load balancer"),
    ]

    class Phase(Message):
        def __init__(self, status: str) -> None:
            self.status = status
            super().__init__()

    class Finished(Message):
        """The worker ended: `status` done | failed | timeout | cancelled | error."""

        def __init__(self, status: str, summary: str, result: Any = None) -> None:
            self.status, self.summary, self.result = status, summary, result
            super().__init__()

    class HistoryLoaded(Message):
        def __init__(self, histories: dict[str, list[Any]], error: str = "") -> None:
            self.histories, self.error = histories, error
            super().__init__()

    def __init__(
        self,
        plan: Any = None,
        *,
        timeout: float | None = None,
        autostart: bool | None = None,
        apply: bool = True,
        clock: Clock | None = None,
        apps: list[str] | None = None,
        name: str | None = None,
    ) -> None:
        """plan: the Kubernetes plan the operator confirmed on Review (None: planned again here).
        autostart: apply at once (None: only when the wizard says Review was confirmed; else the
        operator presses `a`). autostart=False and a fixed clock let snapshots feed events."""
        super().__init__(name=name)
        self.plan = plan
        self.autostart = autostart
        self.apply_first = apply
        self.clock = clock or time.time
        self.state = RolloutState()
        self._apps = apps
        self._timeout = timeout
        self._rows: list[str] = []
        self._seen_pod_msgs: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._last_rollout_msg: dict[str, str] = {}
        self.log_lines: list[str] = []  # what the event log shows, unwrapped
        self._log_entries: list[tuple[str, str, str, str]] = []  # (stamp, symbol, text, tone): repainted on a theme switch

    # --- layout ----------------------------------------------------------------------------

    def _config(self) -> Any:
        cfg = getattr(self.app, "config", None)
        if cfg is None:
            from keybuzz_tui.config import Config

            cfg = Config()
        return cfg

    @property
    def apps(self) -> list[str]:
        if self._apps is None:
            self._apps = [a.name for a in self._config().apps]
        return self._apps

    @property
    def timeout(self) -> float:
        if self._timeout is None:
            self._timeout = float(self._config().rollout.timeout)
        return self._timeout

    def compose_body(self) -> ComposeResult:
        yield Static("Rollout: apply the objects, then watch every worker", id="rollout-title", classes="step-title")
        with Vertical(id="rollout-bars"):
            for app in self.apps:
                with Horizontal(classes="bar-row", id=f"bar-{app}"):
                    yield Label(app, classes="bar-name", markup=False)
                    yield ProgressBar(total=100, show_eta=False, show_percentage=False, classes="bar", id=f"pb-{app}")
                    yield Label("waiting", classes="bar-counts", id=f"counts-{app}", markup=False)
        yield Static("", id="rollout-status")
        grid: DataTable[Any] = DataTable(id="rollout-grid", cursor_type="none", zebra_stripes=False)
        grid.border_title = "Pods: worker × app"
        yield grid
        log = EventLog(id="rollout-log", max_lines=2000)
        log.border_title = "Events"
        yield log

    def on_mount(self) -> None:
        grid = self.query_one("#rollout-grid", DataTable)
        grid.add_column("Worker", key="node", width=16)
        for app in self.apps:
            grid.add_column(app, key=app)
        self._render_status()
        self.set_interval(1.0, self._render_status, name="rollout-elapsed")
        confirmed = "review" in (getattr(self.app, "done_steps", None) or ())
        if self.autostart or (self.autostart is None and confirmed):
            self.start()
        elif self.autostart is None:
            self._log("·", "Nothing applied yet: confirm the plan on the Review step (ctrl+b), or press a to plan and apply it here.", "info")

    # --- actions ---------------------------------------------------------------------------

    def start(self, *, apply: bool | None = None) -> None:
        """Apply (unless told not to) then watch, in one thread worker."""
        applying = self.apply_first if apply is None else apply
        self.state.status = "applying" if applying else "watching"
        self.state.started, self.state.finished, self.state.summary = self.clock(), None, ""
        what = "Applying the Kubernetes objects, then watching" if applying else "Watching"
        self._log("·", f"{what} the rollout (timeout {elapsed(self.timeout)})", "info")
        self._render_status()
        self.refresh_bindings()
        self._run(self.app.bridge, self.plan, applying, self.timeout)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollout", description="apply and watch the rollout")
    def _run(self, bridge: Any, plan: Any, apply: bool, timeout: float) -> None:
        try:
            with bridge.run(self, name="rollout", applying=True) as ctx:
                platform = bridge.platform(ctx)
                try:
                    if apply:
                        if plan is None:
                            self.post_message(self.Phase("planning"))
                            plan = platform.plan_kubernetes()
                        ctx.cancel.check()
                        self.post_message(self.Phase("applying"))
                        platform.apply_kubernetes(plan)
                    ctx.cancel.check()
                    self.post_message(self.Phase("watching"))
                    result = platform.rollout(timeout)
                    if getattr(result, "status", "") == "cancelled" or ctx.cancel.cancelled:
                        raise Cancelled(ctx.cancel.reason or "cancelled by the operator")
                except Cancelled as e:
                    ctx.journal.write("rollout-cancelled", reason=str(e), note="the operator stopped watching; the rollout was left as it is and a re-run resumes")
                    raise
            status, summary = _outcome(result)
            self.post_message(self.Finished(status, summary, result))
        except Cancelled as e:
            self.post_message(self.Finished("cancelled", str(e) or "cancelled by the operator"))
        except Exception as e:  # the engine says what failed; never a traceback on screen
            self.post_message(self.Finished("error", safe_error(e)))

    def action_start(self) -> None:
        if self.state.status == "idle":
            self.start()

    def action_cancel(self) -> None:
        if self.running:
            self.app.bridge.cancel_owner(self, "cancelled by the operator")  # type: ignore[attr-defined]
            self._log("!", "Cancelling at the next safe point… (nothing applied is undone)", "warn")

    def action_cancel_or_back(self) -> None:
        if self.running:
            self.action_cancel()
        else:
            step_back(self)

    def action_watch_again(self) -> None:
        if not self.running:
            self.start(apply=False)

    def action_next(self) -> None:
        if self.state.status in ("done", "degraded"):
            step_next(self, {"status": self.state.status, "summary": self.state.summary})

    def action_rollback(self) -> None:
        if self.running or self.state.status not in ROLLBACK_OK:
            return
        self._log("·", "Reading the DaemonSets' revision history…", "info")
        self._load_history(self.app.bridge, self._failed_apps())  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return self.state.status == "idle"
        if action == "cancel":
            return True if self.running else None
        if action == "next":
            return True if self.state.status in ("done", "degraded") else None
        if action == "rollback":
            return True if self.state.status in ROLLBACK_OK else None
        if action == "watch_again":
            return None if self.running else True
        return True

    @property
    def running(self) -> bool:
        return self.state.status in ("planning", "applying", "watching", "rolling-back")

    def _failed_apps(self) -> list[str]:
        bad = [a for a, p in self.state.progress.items() if p.desired and (p.available < p.desired or p.updated < p.desired)]
        bad += [a for (node, a), (s, _) in self.state.pods.items() if s == "fail" and a not in bad]
        return bad or list(self.apps)

    # --- rollback ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollout-history", description="read revision history")
    def _load_history(self, bridge: Any, apps: list[str]) -> None:
        out: dict[str, list[Any]] = {}
        try:
            from keybuzz_tui.engine import rollout as rmod

            with bridge.run(self, name="rollout-history") as ctx:
                for app in apps:
                    ctx.cancel.check()
                    out[app] = list(rmod.history(ctx, app))
            self.post_message(self.HistoryLoaded(out))
        except Exception as e:
            self.post_message(self.HistoryLoaded(out, safe_error(e)))

    @on(HistoryLoaded)
    def _history_loaded(self, msg: HistoryLoaded) -> None:
        if msg.error:
            self._log("✗", f"Cannot read the revision history: {msg.error}", "fail")
            self.notify(msg.error, title="Rollback unavailable", severity="error")
            return
        targets = {app: _previous(revs) for app, revs in msg.histories.items()}
        targets = {a: r for a, r in targets.items() if r is not None}
        if not targets:
            text = "No previous revision to roll back to: this is the first rollout of these DaemonSets. Fix the cause shown in the event log and press w to watch again, or go back and change the plan."
            self._log("!", text, "warn")
            self.notify(text, title="Nothing to roll back to", severity="warning", timeout=8)
            return
        body = rollback_markdown(msg.histories, targets)

        def answered(yes: bool | None) -> None:
            if yes:
                self._rollback({a: _rev_number(r) for a, r in targets.items()})
            else:
                self._log("·", "Rollback not done.", "info")

        self.app.push_screen(MarkdownConfirm("Roll back to the previous revision?", body, yes="Roll back"), answered)

    def _rollback(self, revisions: dict[str, int]) -> None:
        self.state.status = "rolling-back"
        self.state.started, self.state.finished = self.clock(), None
        self._log("·", "Rolling back: " + ", ".join(f"{a} to revision {r}" for a, r in revisions.items()), "info")
        self.refresh_bindings()
        self._render_status()
        self._do_rollback(self.app.bridge, revisions, self.timeout)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollout", description="roll back and watch")
    def _do_rollback(self, bridge: Any, revisions: dict[str, int], timeout: float) -> None:
        try:
            from keybuzz_tui.engine import rollout as rmod

            with bridge.run(self, name="rollback", applying=True) as ctx:
                try:
                    for app, rev in revisions.items():
                        ctx.cancel.check()
                        rmod.rollback(ctx, app, rev, watch=False)
                    result = bridge.platform(ctx).rollout(timeout)
                    if getattr(result, "status", "") == "cancelled" or ctx.cancel.cancelled:
                        raise Cancelled(ctx.cancel.reason or "cancelled by the operator")
                except Cancelled as e:
                    ctx.journal.write("rollout-cancelled", reason=str(e), note="stopped while rolling back; the DaemonSets were left as they are")
                    raise
            status, summary = _outcome(result)
            self.post_message(self.Finished(status, summary, result))
        except Cancelled as e:
            self.post_message(self.Finished("cancelled", str(e)))
        except Exception as e:
            self.post_message(self.Finished("error", f"rollback failed: {safe_error(e)}"))

    # --- engine events -------------------------------------------------------------------------

    @on(Phase)
    def _phase(self, msg: Phase) -> None:
        if self.state.status in FINAL:
            return
        if msg.status == "watching" and self.state.status == "rolling-back":
            return
        self.state.status = msg.status
        self._render_status()

    @on(Finished)
    def _finished(self, msg: Finished) -> None:
        self.state.status, self.state.summary, self.state.finished = msg.status, msg.summary, self.clock()
        tone = {"done": "ok", "cancelled": "warn", "degraded": "warn"}.get(msg.status, "fail")
        sym = {"ok": "✓", "warn": "!", "fail": "✗"}[tone]
        text = {
            "done": "Rolled out: every worker runs a Ready pod of each app" + (f" — {msg.summary}" if msg.summary and "rolled out" not in msg.summary else ""),
            "degraded": f"Rolled out on the reachable workers only: {msg.summary}",
            "failed": f"The rollout did not complete: {msg.summary}".strip(),
            "timeout": f"Timed out after {elapsed(self.timeout)}: {msg.summary}".strip(),
            "cancelled": "Cancelled: the rollout was left as it is (nothing was undone); the journal records it and a re-run resumes.",
            "error": f"Stopped: {msg.summary}",
        }.get(msg.status, msg.summary)
        self._log(sym, text, tone)
        stuck = getattr(msg.result, "stuck", None)
        if callable(stuck):
            for app, node in stuck():
                if getattr(node, "remediation", ""):
                    self._log("→", f"{node.node} {app}: {node.remediation}", "info")
        if msg.status in ("failed", "timeout", "error", "degraded"):
            self._log("→", "Fix the cause named above and press w to watch again, or r to roll back to the previous revision.", "info")
        self.notify(text, title="Rollout", severity={"ok": "information", "warn": "warning", "fail": "error"}[tone], timeout=6, markup=False)
        self._render_status()
        self.refresh_bindings()

    def on_engine_event(self, message: EngineEvent) -> None:
        self.apply_event(message.event)

    def apply_event(self, e: ev.Event) -> None:
        """Turn one engine event into widget updates (also used by snapshot tests)."""
        if isinstance(e, ev.RolloutProgress):
            self._on_progress(e)
        elif isinstance(e, ev.PodProgress):
            self._on_pod(e)
        elif isinstance(e, ev.KubeEvent):
            tone = "warn" if e.type_ == "Warning" else "pending"
            count = f" (×{e.count})" if e.count and e.count > 1 else ""
            self._log("!" if tone == "warn" else "·", f"{e.type_} {e.reason} {e.kind}/{e.name}: {e.message}{count}", tone, e.ts)
        elif isinstance(e, ev.Warning_):
            self._log("!", e.message + (f"\n    → {e.remediation}" if e.remediation else ""), "warn", e.ts)
        elif isinstance(e, ev.ObjectApplied):
            ns = f"{e.namespace}/" if e.namespace else ""
            sym = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}.get(e.action, "·")
            self._log(sym, f"{e.action} {e.kind} {ns}{e.name} {e.detail}".rstrip(), "info" if e.action != "unchanged" else "pending", e.ts)
        elif isinstance(e, ev.Info):
            self._log("·", e.message, "info", e.ts)
        elif isinstance(e, ev.StepFinished) and e.summary and e.step != "rollout":
            self._log(*_finish_line(e), e.ts)  # the rollout's own verdict is logged by _finished

    def _on_progress(self, e: ev.RolloutProgress) -> None:
        if e.app not in self.apps:
            return
        self.state.progress[e.app] = e
        bar = self.query_one(f"#pb-{e.app}", ProgressBar)
        bar.update(total=max(e.desired, 1), progress=e.available)
        self._show_counts(e)
        if e.message and self._last_rollout_msg.get(e.app) != e.message:
            self._last_rollout_msg[e.app] = e.message
            self._log("·", f"{e.app}: {e.message}", "pending", e.ts)

    def _show_counts(self, e: ev.RolloutProgress) -> None:
        counts = f"{e.available}/{e.desired} available · {e.updated} updated · {e.ready} ready"
        done = e.desired and e.available >= e.desired and e.updated >= e.desired
        self.query_one(f"#counts-{e.app}", Label).update(Text(counts, style=Tones.of(self.app)["ok"] if done else ""))

    def _on_pod(self, e: ev.PodProgress) -> None:
        if not e.node or e.app not in self.apps:
            return
        status, label = pod_state(e)
        key = (e.node, e.app)
        grid = self.query_one("#rollout-grid", DataTable)
        if e.node not in self._rows:
            self._add_worker(grid, e.node)
        if self.state.pods.get(key) != (status, label):
            self.state.pods[key] = (status, label)
            grid.update_cell(e.node, e.app, status_text(self.app, status, label), update_width=True)
        # the log: only changes of state, with the reason and message of a pod not progressing
        logged = (status, e.reason, str(e.restarts))
        if e.message.startswith("running again"):
            return  # the container restarted and will crash again: its next verdict is logged
        if self._seen_pod_msgs.get(key) != logged:
            self._seen_pod_msgs[key] = logged
            if status == "fail":
                why = f": {e.message}" if e.message else ""
                self._log("✗", f"{e.node} {e.app} {label}{why}", "fail", e.ts)
            # Ready pods are in the grid; the log keeps the reasons (what is not progressing)

    def _add_worker(self, grid: DataTable[Any], node: str) -> None:
        self._rows.append(node)
        ordered = sorted(self._rows)
        if ordered[-1] == node:
            grid.add_row(plain(node), *[status_text(self.app, "pending", "—", symbol="") for _ in self.apps], key=node)
            return
        # a worker that sorts before one already shown: rebuild once (rare: the first events)
        self._rows = ordered
        cursor = grid.cursor_row
        grid.clear()
        for n in ordered:
            cells = []
            for app in self.apps:
                st = self.state.pods.get((n, app))
                cells.append(status_text(self.app, st[0], st[1]) if st else status_text(self.app, "pending", "—", symbol=""))
            grid.add_row(plain(n), *cells, key=n)
        grid.move_cursor(row=min(cursor, len(ordered) - 1))

    # --- rendering ---------------------------------------------------------------------------

    def _log(self, symbol: str, text: str, tone: str, ts: float | None = None) -> None:
        base = self.state.started
        stamp = f"+{elapsed((ts if ts is not None else self.clock()) - base)} " if base is not None else ""
        self._log_entries.append((stamp, symbol, text, tone))
        del self._log_entries[:-2000]
        line = self._log_line(stamp, symbol, text, tone)
        self.log_lines.append(line.plain)
        self.query_one("#rollout-log", RichLog).write(line)

    def _log_line(self, stamp: str, symbol: str, text: str, tone: str) -> Text:
        line = Text()
        line.append(stamp, style="dim")
        line.append(f"{symbol} {text}", style=Tones.of(self.app).get(tone, ""))
        return line

    def repaint_theme(self) -> None:
        """The grid's cells, the counts, the status line and the log carry the theme's colours."""
        grid = self.query_one("#rollout-grid", DataTable)
        with self.app.batch_update():
            for node in self._rows:
                for app in self.apps:
                    st = self.state.pods.get((node, app))
                    cell = status_text(self.app, st[0], st[1]) if st else status_text(self.app, "pending", "—", symbol="")
                    grid.update_cell(node, app, cell)
            for e in self.state.progress.values():
                self._show_counts(e)
            self._render_status()
            log = self.query_one("#rollout-log", RichLog)
            log.clear()
            for entry in self._log_entries:
                log.write(self._log_line(*entry))

    def _render_status(self) -> None:
        st = self.state
        now = st.finished if st.finished is not None else self.clock()
        took = elapsed(now - st.started) if st.started is not None else "00:00"
        label = {
            "idle": ("pending", "Not started"),
            "planning": ("running", "Planning"),
            "applying": ("running", "Applying objects"),
            "watching": ("running", "Watching the rollout"),
            "rolling-back": ("running", "Rolling back"),
            "done": ("ok", "Rolled out"),
            "degraded": ("warn", "Rolled out on reachable workers only"),
            "failed": ("fail", "Failed"),
            "timeout": ("fail", "Timed out"),
            "cancelled": ("warn", "Cancelled"),
            "error": ("fail", "Stopped on an error"),
        }[st.status]
        text = status_text(self.app, label[0], label[1])
        text.append(f"   elapsed {took} / timeout {elapsed(self.timeout)}", style="")
        ready = sum(1 for s, _ in st.pods.values() if s == "ok")
        if st.pods:
            text.append(f"   pods Ready {ready}/{len(st.pods)}", style="")
        if self.is_mounted:
            self.query_one("#rollout-status", Static).update(text)


def _outcome(result: Any) -> tuple[str, str]:
    """done | degraded | failed | timeout, and a one-line summary, from the engine's RolloutResult."""
    if result is None:
        return "failed", ""
    if isinstance(result, bool):
        return ("done" if result else "failed"), ""
    summary = str(getattr(result, "message", "") or "")
    status = str(getattr(result, "status", "") or "")
    if status == "timeout":
        return "timeout", summary
    if status == "degraded":
        return "degraded", summary
    return ("done" if getattr(result, "ok", status == "complete") else "failed"), summary


def _finish_line(e: ev.StepFinished) -> tuple[str, str, str]:
    tone = {"ok": "ok", "fail": "fail", "warn": "warn"}.get(e.status, "info")
    return {"ok": "✓", "fail": "✗", "warn": "!"}.get(tone, "·"), f"{e.step}: {e.summary}", tone


# --- revision history ----------------------------------------------------------------------------


def _rev_number(rev: Any) -> int:
    if isinstance(rev, dict):
        return int(rev.get("revision", 0))
    return int(getattr(rev, "revision", 0) or 0)


def _field(rev: Any, *names: str) -> Any:
    for n in names:
        v = rev.get(n) if isinstance(rev, dict) else getattr(rev, n, None)
        if v not in (None, "", [], ()):
            return v
    return None


def _previous(revisions: list[Any]) -> Any:
    """The revision to roll back to: the newest one older than the current one."""
    if len(revisions) < 2:
        return None
    ordered = sorted(revisions, key=_rev_number)
    current = next((r for r in ordered if _field(r, "current")), ordered[-1])
    older = [r for r in ordered if _rev_number(r) < _rev_number(current)]
    return older[-1] if older else None


def rollback_markdown(histories: dict[str, list[Any]], targets: dict[str, Any]) -> str:
    """The confirmation text: per DaemonSet, its revisions and what the rollback changes."""
    out: list[str] = []
    for app, revs in histories.items():
        target = targets.get(app)
        out.append(f"### {app}")
        if target is None:
            out.append("No older revision: left as it is.\n")
            continue
        ordered = sorted(revs, key=_rev_number)
        current = next((r for r in ordered if _field(r, "current")), ordered[-1])
        out.append("| Revision | Created | Image | |")
        out.append("|---|---|---|---|")
        for r in reversed(ordered):
            images = _field(r, "images", "image") or ""
            if isinstance(images, (list, tuple)):
                images = ", ".join(str(i) for i in images)
            mark = "current" if r is current else ("**roll back to this**" if r is target else "")
            out.append(f"| {_rev_number(r)} | {_field(r, 'created', 'age', 'creation_timestamp') or ''} | `{images}` | {mark} |")
        changes = _what_changes(current, target)
        out.append("")
        out.append(f"Rolling back to revision {_rev_number(target)} changes:")
        out.append("")
        out.extend(f"- `{c}`" for c in changes) if changes else out.append("- (no difference in the pod template)")
        out.append("")
    out.append("The DaemonSets then roll the workers one at a time (maxUnavailable); the wizard watches it here.")
    return "\n".join(out)


def _what_changes(current: Any, target: Any) -> list[str]:
    diff = _field(target, "diff", "changes")
    if diff:
        return [d.render() if hasattr(d, "render") else str(d) for d in diff]
    cur_t, tgt_t = _field(current, "template"), _field(target, "template")
    if isinstance(cur_t, dict) and isinstance(tgt_t, dict):
        from keybuzz_tui.engine.plan import diff_objects

        return [d.render() for d in diff_objects(cur_t, tgt_t)]
    ci, ti = _field(current, "images", "image"), _field(target, "images", "image")
    if ci != ti:
        return [f"~ image: {ci} -> {ti}"]
    return []
