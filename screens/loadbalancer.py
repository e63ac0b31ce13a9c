"""Step 6, Load balancer: plan the Hetzner Load Balancer, apply it action by action, then watch
every target's health per service converge.

What the operator sees:
- the plan (Platform.plan_lb()): certificate, the LB, its network attachment, targets, services,
  as create / update / unchanged with what changes;
- after `a` (apply): each Hetzner action with its progress (ActionProgress events);
- the targets × services table (TargetHealth events): healthy ✓ / unhealthy ✗ / unknown …;
- the certificate's issuance (managed: pending, completed, or failed with the error).

Apply, then the health watch, run in one thread worker; cancel stops at the next safe point
(a Hetzner action already sent keeps running at Hetzner; the next plan shows what is left).
"""

from __future__ import annotations

from typing import Any

from keybuzz_tui.screens.board_widgets import (
    MarkdownConfirm,
    Tones,
    change_lines,
    fill_plan_table,
    plain,
    status_text,
    step_back,
    step_next,
    text_bar,
)
from keybuzz_tui.screens.bridge import EngineEvent
from keybuzz_tui.screens.widgets import EventLog, StepScreen
from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, RichLog, Static

from keybuzz_tui import events as ev
from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.redact import safe_error

HEALTH = {"healthy": ("ok", "healthy"), "unhealthy": ("fail", "unhealthy"), "unknown": ("pending", "unknown")}
ISSUANCE = {"completed": ("ok", "issued"), "pending": ("running", "issuance pending"), "failed": ("fail", "issuance failed")}


def _error_parts(e: BaseException) -> tuple[str, str]:
    """(what failed, what to do) from the engine's errors (CloudError, PlanError, KubeError...)."""
    message = str(getattr(e, "message", "") or safe_error(e))
    return safe_error(Exception(message.split("\n  what to do:")[0])), str(getattr(e, "remediation", "") or "")


class LoadBalancerScreen(StepScreen):
    """Plan, apply and watch the Hetzner Load Balancer."""

    CSS_PATH = "loadbalancer.tcss"
    TITLE = "Load balancer"
    STEP = "lb"
    HELP = """\
## Step 6 · Load balancer

The Hetzner Cloud Load Balancer listens on 80 and 443 (TLS ends on the LB with the certificate)
and forwards both to ingress-nginx's HTTP NodePort (31695) on every worker, checking
`/healthz` on that port.

- **Plan**: what `a` will do at Hetzner: `+ create`, `~ update` (with the fields that change),
  `= unchanged`. Resources are found by label then by name, services keyed by listen port,
  targets by label selector: nothing that can be updated is recreated. A destructive change
  (a location change recreates the LB and changes its IPs) asks for an explicit confirmation.
- **Actions**: each Hetzner action and its progress, as Hetzner reports it.
- **Targets**: every worker's health per service. `✗ unhealthy` means the LB's health check to
  that worker's NodePort fails: check ingress-nginx there and UFW (`sudo ufw status numbered`).
- **Certificate**: a managed certificate is issued by Let's Encrypt through the Hetzner DNS zone;
  it can stay pending for a while; a failure names the cause (CAA, domain outside the zone).

Keys: `a` apply the plan (then watch health), `h` watch health only, `p` plan again,
`c` / `esc` cancel (an action already sent finishes at Hetzner; the next plan shows what is
left), `n` continue to DNS.
"""

    BINDINGS = [
        Binding("a", "apply", "Apply", id="lb.apply", tooltip="Apply the plan at Hetzner, then watch target health"),
        Binding("h", "health", "Health", id="lb.health", show=False, tooltip="Follow the targets' health without changing anything"),
        Binding("p", "plan", "Replan", id="lb.plan", tooltip="Compute the plan again against the live project"),
        Binding("escape", "cancel_or_back", "Back", id="lb.escape", tooltip="Stop at the next safe point, or go back when idle"),
        Binding("c", "cancel", "Cancel", id="lb.cancel", show=False, tooltip="Stop at the next safe point"),
        Binding("n", "next", "Next", id="lb.next", tooltip="Continue to DNS"),
    ]

    class PlanReady(Message):
        def __init__(self, plan: Any, error: str = "", remediation: str = "") -> None:
            self.plan, self.error, self.remediation = plan, error, remediation
            super().__init__()

    class Finished(Message):
        def __init__(self, status: str, summary: str, remediation: str = "", lb_status: Any = None, health: Any = None) -> None:
            self.status, self.summary, self.remediation, self.lb_status, self.health = status, summary, remediation, lb_status, health
            super().__init__()

    def __init__(self, *, autostart: bool = True, health_timeout: float = 300.0, name: str | None = None) -> None:
        super().__init__(name=name)
        self.autostart = autostart
        self.health_timeout = health_timeout
        self.plan: Any = None
        self.status = "idle"  # idle | planning | planned | applying | watching | done | failed | cancelled
        self.targets: dict[tuple[str, int], str] = {}
        self.target_detail: dict[str, str] = {}
        self.cert: tuple[str, str, str] | None = None  # (status, label, detail)
        self._actions: dict[str, tuple[str, int, str]] = {}  # key -> (status, progress, error)
        self._ports: list[int] = []
        self._port_labels: dict[int, str] = {}
        self._target_layout: tuple[Any, ...] = ()  # what the target table was last built for
        self.log_lines: list[str] = []  # what the event log shows, unwrapped
        self._log_entries: list[tuple[str, str, str]] = []  # (symbol, text, tone): repainted on a theme switch
        self._cert_args: tuple[str, str, str, str, str] | None = None
        self._state_detail = ""

    # --- layout ------------------------------------------------------------------------------

    def _config(self) -> Any:
        cfg = getattr(self.app, "config", None)
        if cfg is None:
            from keybuzz_tui.config import Config

            cfg = Config()
        return cfg

    def compose_body(self) -> ComposeResult:
        cfg = self._config().load_balancer
        where = cfg.location or cfg.network_zone
        yield Static(
            Text(f"Load balancer {cfg.name} ({cfg.type}, {where}) → NodePort {cfg.health_check.port} on every worker", no_wrap=True, overflow="ellipsis"),
            id="lb-title",
            classes="step-title",
        )
        yield Static("", id="lb-state")
        with Horizontal(id="lb-main"):
            with Vertical(id="lb-left"):
                plan: DataTable[Any] = DataTable(id="lb-plan", cursor_type="row", zebra_stripes=True)
                plan.border_title = "Plan"
                yield plan
                actions: DataTable[Any] = DataTable(id="lb-actions", cursor_type="none", classes="-empty")
                actions.border_title = "Hetzner actions"
                yield actions
            with Vertical(id="lb-right"):
                targets: DataTable[Any] = DataTable(id="lb-targets", cursor_type="none", classes="-empty")
                targets.border_title = "Target health per service"
                yield targets
                yield Static("", id="lb-cert")
                log = EventLog(id="lb-log", max_lines=500)
                log.border_title = "Events"
                yield log

    def on_mount(self) -> None:
        cfg = self._config().load_balancer
        actions = self.query_one("#lb-actions", DataTable)
        actions.add_column("Hetzner action", key="what", width=40)
        actions.add_column("Progress", key="progress", width=19)
        actions.add_column("Status", key="status", width=10)
        self._ports = [s.listen_port for s in cfg.services]
        self._port_labels = {s.listen_port: f":{s.listen_port} {s.protocol}" for s in cfg.services}
        self._build_targets()
        cert = cfg.certificate
        if cert.type == "none":
            self._set_cert("skip", "no certificate configured", "")
        else:
            self._set_cert("pending", "not checked yet", "")
        self._render_state()
        if self.autostart:
            self.action_plan()

    # --- actions -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.status in ("planning", "applying", "watching")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return True if self.status in ("planned", "failed", "cancelled", "done") and self.plan is not None else None
        if action in ("plan", "health"):
            return None if self.running else True
        if action == "cancel":
            return True if self.running else None
        if action == "next":
            return True if self.status == "done" or (self.targets and not self.running) else None
        return True

    def action_plan(self) -> None:
        if self.running:
            return
        self.status = "planning"
        self._render_state()
        self.refresh_bindings()
        self._plan_worker(self.app.bridge)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="lb-plan", description="plan the load balancer")
    def _plan_worker(self, bridge: Any) -> None:
        try:
            with bridge.run(self, name="lb-plan") as ctx:
                plan = bridge.platform(ctx).plan_lb()
            self.post_message(self.PlanReady(plan))
        except Cancelled:
            self.post_message(self.PlanReady(None, "planning cancelled"))
        except Exception as e:
            self.post_message(self.PlanReady(None, *_error_parts(e)))

    @on(PlanReady)
    def _plan_ready(self, msg: PlanReady) -> None:
        if msg.plan is None:
            self.status = "failed"
            self._log("✗", f"Cannot plan the load balancer: {msg.error}", "fail")
            if msg.remediation:
                self._log("→", msg.remediation, "info")
            self._render_state(f"Cannot plan: {msg.error}")
            self.refresh_bindings()
            return
        self.plan = msg.plan
        self.status = "planned"
        self._fill_plan()
        for w in getattr(msg.plan, "warnings", []) or []:
            self._log("!", w, "warn")
        self._render_state()
        self.refresh_bindings()

    @property
    def changes(self) -> list[Any]:
        if self.plan is None:
            return []
        return [c for c in self.plan.changes if c.layer == "hetzner"] or list(self.plan.changes)

    def _fill_plan(self) -> None:
        fill_plan_table(self.app, self.query_one("#lb-plan", DataTable), self.changes)

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        if self.plan is not None:
            self.call_after_refresh(self._fill_plan)
        self.call_after_refresh(self._build_targets)

    @on(DataTable.RowSelected, "#lb-plan")
    def _plan_row(self, event: DataTable.RowSelected) -> None:
        changes = self.changes
        i = int(str(event.row_key.value))
        if 0 <= i < len(changes):
            for line in change_lines(changes[i]):
                self._log("·", line, "info")

    def action_apply(self) -> None:
        if self.running or self.plan is None:
            return
        destructive = [c for c in self.plan.changes if c.destructive]
        if destructive:
            body = "These changes destroy something at Hetzner:\n\n" + "\n".join(f"- **{c.kind} {c.name}**: {c.note}" for c in destructive)
            body += "\n\nThe rest of the plan is applied as shown."

            def answered(yes: bool | None) -> None:
                if yes:
                    self._start_apply(allow_destructive=True)

            self.app.push_screen(MarkdownConfirm("Apply a destructive change?", body, yes="Apply, destroying"), answered)
            return
        self._start_apply(allow_destructive=False)

    def action_health(self) -> None:
        if not self.running:
            self._start_apply(allow_destructive=False, apply=False)

    def _start_apply(self, *, allow_destructive: bool, apply: bool = True) -> None:
        self.status = "applying" if apply else "watching"
        self.add_class("-applied")
        self._render_state()
        self.refresh_bindings()
        if apply:
            self._log("·", f"Applying: {self.plan.summary()}", "info")
        self._apply_worker(self.app.bridge, self.plan if apply else None, allow_destructive, self.health_timeout)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="lb-apply", description="apply the load balancer and watch its health")
    def _apply_worker(self, bridge: Any, plan: Any, allow_destructive: bool, timeout: float) -> None:
        from keybuzz_tui.engine import lb as lbmod

        try:
            with bridge.run(self, name="lb", applying=plan is not None) as ctx:
                platform = bridge.platform(ctx)
                if plan is not None:
                    if allow_destructive:
                        lbmod.apply(ctx, plan, allow_destructive=True)
                    else:
                        platform.apply_lb(plan)
                    ctx.cancel.check()
                self.post_message(self.Finished("watching", ""))
                health = platform.wait_lb_healthy(timeout)
                ctx.cancel.check()
                status = lbmod.status(ctx)
            bad = [k for k, v in (health or {}).items() if v != "healthy"]
            summary = f"{len(health or {}) - len(bad)}/{len(health or {})} service targets healthy"
            self.post_message(self.Finished("done" if not bad else "unhealthy", summary, lb_status=status, health=health))
        except Cancelled as e:
            self.post_message(self.Finished("cancelled", str(e) or "cancelled by the operator"))
        except Exception as e:
            what, todo = _error_parts(e)
            self.post_message(self.Finished("failed", what, todo))

    @on(Finished)
    def _finished(self, msg: Finished) -> None:
        if msg.status == "watching":
            if self.status == "applying":
                self.status = "watching"
                self._log("·", "Watching target health until every target is healthy…", "info")
                self._render_state()
            return
        if msg.lb_status is not None:
            self._show_lb_status(msg.lb_status)
        if msg.status == "done":
            self.status = "done"
            self._log("✓", f"Load balancer ready: {msg.summary}", "ok")
            self.notify(msg.summary, title="Load balancer ready")
        elif msg.status == "unhealthy":
            self.status = "failed"
            self._log("✗", f"Not every target is healthy: {msg.summary}", "fail")
        elif msg.status == "cancelled":
            self.status = "cancelled"
            self._log("!", "Stopped. Actions already sent finish at Hetzner; plan again (p) to see what is left.", "warn")
        else:
            self.status = "failed"
            self._log("✗", msg.summary, "fail")
            if msg.remediation:
                self._log("→", msg.remediation, "info")
            self.notify(msg.summary, title="Load balancer", severity="error", markup=False)
        self._render_state(msg.summary if msg.status != "done" else "")
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.running:
            self.app.bridge.cancel_owner(self, "cancelled by the operator")  # type: ignore[attr-defined]
            self._log("!", "Stopping at the next safe point…", "warn")

    def action_cancel_or_back(self) -> None:
        if self.running:
            self.action_cancel()
        else:
            step_back(self)

    def action_next(self) -> None:
        if self.status == "done" or (self.targets and not self.running):
            step_next(self, {"status": self.status})

    # --- engine events -----------------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        self.apply_event(message.event)

    def apply_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.ActionProgress):
            self._on_action(e)
        elif isinstance(e, ev.TargetHealth):
            self._on_target(e)
        elif isinstance(e, ev.ObjectApplied):
            sym = {"create": "+", "update": "~", "delete": "-"}.get(e.action, "·")
            self._log(sym, f"{e.action} {e.kind} {e.name}" + (f": {e.detail}" if e.detail else ""), "info")
        elif isinstance(e, ev.Warning_):
            self._log("!", e.message + (f"\n    → {e.remediation}" if e.remediation else ""), "warn")
        elif isinstance(e, ev.Info):
            self._log("·", e.message, "info")

    def _on_action(self, e: ev.ActionProgress) -> None:
        key = f"{e.command}|{e.resource}"
        table = self.query_one("#lb-actions", DataTable)
        tone = {"success": "ok", "error": "fail"}.get(e.status, "running")
        word = {"success": "done", "error": "failed"}.get(e.status, "running")
        state = (e.status, e.progress, e.error)
        if key not in self._actions:
            table.add_row(plain(e.resource or e.command), plain(text_bar(e.progress)), status_text(self.app, tone, word), key=key)
            table.remove_class("-empty")
        elif self._actions[key] != state:
            table.update_cell(key, "progress", plain(text_bar(e.progress)))
            table.update_cell(key, "status", status_text(self.app, tone, word))
        self._actions[key] = state
        if e.status == "error" and e.error:
            self._log("✗", f"{e.command} ({e.resource}) failed: {e.error}", "fail")
        if "certificate" in e.resource or "certificate" in e.command:
            if e.status == "success":
                self._set_cert("ok", "issued", "")
            elif e.status == "error":
                self._set_cert("fail", "issuance failed", e.error)
            else:
                self._set_cert("running", f"issuance pending ({e.progress}%)", "")

    def _on_target(self, e: ev.TargetHealth) -> None:
        table = self.query_one("#lb-targets", DataTable)
        if e.listen_port not in self._ports:
            self._ports.append(e.listen_port)
        key = (e.target, e.listen_port)
        changed = self.targets.get(key) != e.status
        self.targets[key] = e.status
        detail = str(getattr(e, "detail", "") or "")
        if e.status == "unhealthy" and not detail:
            detail = "health check fails"
        if e.status != "unhealthy" and not any(v == "unhealthy" for (t, _), v in self.targets.items() if t == e.target):
            detail = ""
        detail_changed = self.target_detail.get(e.target) != detail
        self.target_detail[e.target] = detail
        if self._build_targets():
            self.call_after_refresh(self._build_targets)  # shown now: its own width (and scrollbar) known after a refresh
        else:
            if changed:  # a new row or port rebuilt the table above
                table.update_cell(e.target, str(e.listen_port), self._health_cell(e.target, e.listen_port))
            if detail_changed:
                table.update_cell(e.target, "detail", self._detail_cell(e.target))
        self._render_state()

    def _health_cell(self, target: str, port: int) -> Text:
        status = self.targets.get((target, port))
        if status is None:
            return status_text(self.app, "pending", "…", symbol="")
        tone, word = HEALTH.get(status, ("unknown", status))
        return status_text(self.app, tone, word)

    def _detail_cell(self, target: str) -> Text:
        detail = self.target_detail.get(target, "")
        return plain(detail, Tones.of(self.app)["fail"] if detail else "")

    def _build_targets(self, force: bool = False) -> bool:
        """(Re)build the target table when its rows, columns or width changed; True if it did.
        Detail takes the width the other columns leave: an auto-sized column keeps the width of the
        first value it held (an empty one), which cut why a target fails to "timeo…"; too wide, the
        table would scroll sideways. The full reason is in the event log."""
        table = self.query_one("#lb-targets", DataTable)
        rows = list(self.target_detail)
        if table.display and table.size.width:
            inner = table.scrollable_content_region.width  # a vertical scrollbar, when there is one, is taken off
        else:
            inner = self.query_one("#lb-right").size.width - 2  # hidden until the first target: its border off
        pad = 2 * table.cell_padding
        target_w = max([len("Target"), *(cell_len(r) for r in rows)])
        port_w = max([len("✗ unhealthy"), *(cell_len(self._port_labels.get(p, f":{p}")) for p in self._ports)])
        detail_w = max(len("Detail"), inner - (target_w + pad) - len(self._ports) * (port_w + pad) - pad)
        layout = (tuple(rows), tuple(self._ports), target_w, port_w, detail_w)
        if layout == self._target_layout and not force:
            return False
        self._target_layout = layout
        with self.app.batch_update():
            table.clear(columns=True)
            table.add_column("Target", key="target", width=target_w)
            for port in self._ports:
                table.add_column(self._port_labels.get(port, f":{port}"), key=str(port), width=port_w)
            table.add_column("Detail", key="detail", width=detail_w)
            for target in rows:
                table.add_row(plain(target), *[self._health_cell(target, p) for p in self._ports], self._detail_cell(target), key=target)
            table.set_class(not rows, "-empty")
        return True

    def _show_lb_status(self, st: Any) -> None:
        certs = list(getattr(st, "certificates", []) or [])
        if certs:
            c = certs[0]
            if c.type == "managed":
                tone, word = ISSUANCE.get(c.issuance or "completed", ("unknown", c.issuance))
                self._set_cert(tone, f"{word}", c.error, name=c.name, kind="managed")
            else:
                self._set_cert("ok", "uploaded" + (f", valid until {c.not_valid_after}" if c.not_valid_after else ""), "", name=c.name, kind=c.type)
        ips = ", ".join(getattr(st, "ips", []) or [])
        if ips:
            self._log("·", f"{st.name} answers on {ips}: DNS must point there (next step)", "info")

    # --- rendering -----------------------------------------------------------------------------

    def _set_cert(self, tone: str, label: str, error: str, *, name: str = "", kind: str = "") -> None:
        cfg = self._config().load_balancer.certificate
        self.cert = (tone, label, error)
        self._cert_args = (tone, label, error, name, kind)
        line = Text(f"Certificate {name or cfg.name} ({kind or cfg.type}): ", no_wrap=False)
        line.append_text(status_text(self.app, tone, label))
        if error:
            line.append(f" — {error}", style=Tones.of(self.app)["fail"])
        if self.is_mounted:
            self.query_one("#lb-cert", Static).update(line)

    def _log(self, symbol: str, text: str, tone: str) -> None:
        self._log_entries.append((symbol, text, tone))
        del self._log_entries[:-500]
        line = Text(f"{symbol} {text}", style=Tones.of(self.app).get(tone, ""))
        self.log_lines.append(line.plain)
        self.query_one("#lb-log", RichLog).write(line)

    def repaint_theme(self) -> None:
        """Every cell, line and log entry that carries the theme's colours, painted again."""
        with self.app.batch_update():
            if self.plan is not None:
                self._fill_plan()
            actions = self.query_one("#lb-actions", DataTable)
            for key, (status, _progress, _error) in self._actions.items():
                tone = {"success": "ok", "error": "fail"}.get(status, "running")
                word = {"success": "done", "error": "failed"}.get(status, "running")
                actions.update_cell(key, "status", status_text(self.app, tone, word))
            self._build_targets(force=True)
            if self._cert_args is not None:
                tone, label, error, name, kind = self._cert_args
                self._set_cert(tone, label, error, name=name, kind=kind)
            self._render_state(self._state_detail)
            log = self.query_one("#lb-log", RichLog)
            log.clear()
            for symbol, text, tone in self._log_entries:
                log.write(Text(f"{symbol} {text}", style=Tones.of(self.app).get(tone, "")))

    def _render_state(self, detail: str = "") -> None:
        self._state_detail = detail
        total = len(self.targets)
        healthy = sum(1 for v in self.targets.values() if v == "healthy")
        unhealthy = sum(1 for v in self.targets.values() if v == "unhealthy")
        counts = self.plan.counts() if self.plan is not None else {}
        plan_words = self.plan.summary() if self.plan is not None else ""
        tone, text = {
            "idle": ("pending", "Not planned yet (p)"),
            "planning": ("running", "Planning against the Hetzner project…"),
            "planned": ("info", f"Plan: {plan_words}. Press a to apply." if self.plan is not None and self.plan.has_changes else "Nothing to change at Hetzner. Press a to check target health."),
            "applying": ("running", f"Applying {sum(counts.get(k, 0) for k in ('create', 'update', 'delete'))} change(s)…"),
            "watching": ("running", "Watching target health…"),
            "done": ("ok", "Every target is healthy. Press n for DNS."),
            "failed": ("fail", detail or "Failed."),
            "cancelled": ("warn", "Stopped by the operator."),
        }[self.status]
        line = status_text(self.app, tone, text)
        if total:
            line.append(f"   targets healthy {healthy}/{total}" + (f", {unhealthy} unhealthy" if unhealthy else ""), style="")
        if self.is_mounted:
            self.query_one("#lb-state", Static).update(line)
