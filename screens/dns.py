"""Step 7, DNS: the A (and AAAA) records of both hostnames, pointing at the Load Balancer.

- mode `hetzner`: the plan (create / update / unchanged with the old and new values), applied with
  `a`, each zone action waited for;
- mode `manual` (or a zone the project does not hold): the exact records in zone-file syntax, to
  copy (`y`) into the DNS provider's console;
- then, in both modes, what the zone's authoritative server and the resolver answer for each
  name, compared with the LB's addresses (dns.check), re-checked until they agree.
"""

from __future__ import annotations

from typing import Any

from keybuzz_tui.screens.board_widgets import (
    Tones,
    change_lines,
    fill_plan_table,
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
from textual.message import Message
from textual.widgets import DataTable, RichLog, Static, TextArea

from keybuzz_tui import events as ev
from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.redact import safe_error

VERDICT = {
    "ok": ("ok", "ok"),
    "propagating": ("warn", "propagating"),
    "missing": ("fail", "missing"),
    "stale": ("fail", "stale"),
    "error": ("fail", "no answer"),
}


def _error_parts(e: BaseException) -> tuple[str, str]:
    message = str(getattr(e, "message", "") or safe_error(e))
    return safe_error(Exception(message.split("\n  what to do:")[0])), str(getattr(e, "remediation", "") or "")


class DnsScreen(StepScreen):
    """Plan and apply (or show for manual entry) the DNS records, then check the answers."""

    CSS_PATH = "dns.tcss"
    TITLE = "DNS"
    STEP = "dns"
    HELP = """\
## Step 7 · DNS

Both hostnames must resolve to the Load Balancer's public addresses (A, and AAAA when the LB
has IPv6 and `dns.ipv6` is on).

- **mode hetzner**: the zone is a Hetzner DNS zone of the project. The plan shows each record
  as `+ create`, `~ update` (old → new values) or `= unchanged`; `a` applies it.
- **mode manual** (or a zone Hetzner does not hold): nothing is changed for you. The records
  are shown in zone-file syntax: `y` copies them; create them at your DNS provider, then `v`.
- **Answers**: what the zone's authoritative server and the resolver answer, compared with the
  LB's addresses: `✓` matches, `✗` a stale or missing record, `! propagating` (the resolver still
  caches the old answer until its TTL runs out: nothing to change, just wait). The wizard asks
  again every few seconds until they agree; select a row to read its detail and what to do.

Keys: `a` apply (hetzner mode), `y` copy the zone-file lines, `v` verify again, `p` plan again,
`esc` cancel / back, `n` continue to the validation board.
"""

    BINDINGS = [
        Binding("a", "apply", "Apply", id="dns.apply", tooltip="Create or update the records in the Hetzner zone"),
        Binding("y", "copy", "Copy", id="dns.copy", tooltip="Copy the records in zone-file syntax to the clipboard"),
        Binding("v", "verify", "Verify", id="dns.verify", tooltip="Ask the authoritative server and the resolver again"),
        Binding("p", "plan", "Replan", id="dns.plan", show=False, tooltip="Compute the DNS plan again"),
        Binding("escape", "cancel_or_back", "Back", id="dns.escape", tooltip="Stop at the next safe point, or go back when idle"),
        Binding("n", "next", "Next", id="dns.next", tooltip="Continue to the validation board"),
    ]

    class PlanReady(Message):
        def __init__(self, plan: Any, ips: list[str], zone_lines: list[str], error: str = "", remediation: str = "") -> None:
            self.plan, self.ips, self.zone_lines, self.error, self.remediation = plan, ips, zone_lines, error, remediation
            super().__init__()

    class Answers(Message):
        def __init__(self, answers: list[Any], final: bool) -> None:
            self.answers, self.final = answers, final
            super().__init__()

    class Applied(Message):
        """The records were applied: the answers check follows."""

    class Failed(Message):
        def __init__(self, error: str, remediation: str = "", cancelled: bool = False) -> None:
            self.error, self.remediation, self.cancelled = error, remediation, cancelled
            super().__init__()

    def __init__(self, *, autostart: bool = True, recheck_every: float = 3.0, recheck_rounds: int = 40, name: str | None = None) -> None:
        super().__init__(name=name)
        self.autostart = autostart
        self.recheck_every = recheck_every
        self.recheck_rounds = recheck_rounds
        self.plan: Any = None
        self.ips: list[str] = []
        self.zone_lines: list[str] = []
        self.status = "idle"  # idle | planning | planned | applying | checking | done | attention | failed
        self.answers: dict[str, Any] = {}
        self._cells: dict[tuple[str, str], str] = {}
        self.log_lines: list[str] = []  # what the event log shows, unwrapped
        self._log_entries: list[tuple[str, str, str]] = []  # (symbol, text, tone): repainted on a theme switch
        self._detail_answer: Any = None
        self._state_detail = ""

    def _config(self) -> Any:
        cfg = getattr(self.app, "config", None)
        if cfg is None:
            from keybuzz_tui.config import Config

            cfg = Config()
        return cfg

    @property
    def manual(self) -> bool:
        if self.plan is not None and self.plan.changes:
            return all(c.action == "manual" for c in self.plan.changes)
        return self._config().dns.mode == "manual"

    # --- layout ------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        cfg = self._config().dns
        yield Static(Text(f"DNS: zone {cfg.zone} · mode {cfg.mode} · TTL {cfg.ttl}s", no_wrap=True, overflow="ellipsis"), id="dns-title", classes="step-title")
        yield Static("", id="dns-state")
        plan: DataTable[Any] = DataTable(id="dns-plan", cursor_type="row", zebra_stripes=True)
        plan.border_title = "Records to create or update"
        yield plan
        lines = TextArea("", id="dns-zone", read_only=True, show_line_numbers=False, soft_wrap=False)
        lines.cursor_blink = False
        lines.border_title = "Create these records at your DNS provider (y copies them)"
        yield lines
        answers: DataTable[Any] = DataTable(id="dns-answers", cursor_type="row")
        answers.border_title = "What DNS answers"
        yield answers
        yield Static("", id="dns-detail")
        log = EventLog(id="dns-log", max_lines=300)
        yield log

    def on_mount(self) -> None:
        table = self.query_one("#dns-answers", DataTable)
        table.add_column("Record", key="record", width=25)
        table.add_column("Authoritative", key="auth", width=15)
        table.add_column("Resolver", key="resolver", width=15)
        table.add_column("Verdict", key="verdict", width=13)
        self.query_one("#dns-zone", TextArea).display = False
        self._render_state()
        if self.autostart:
            self.action_plan()

    # --- actions -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Changing or planning; the answers check is only reading and never blocks Next."""
        return self.status in ("planning", "applying")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            if self.plan is not None and self.manual:
                return False  # manual mode: nothing is ever changed for the operator
            ok = self.plan is not None and not self.running and self.plan.has_changes
            return True if ok else None
        if action == "copy":
            return True if self.zone_lines else None
        if action in ("verify", "plan"):
            return None if self.running or self.status == "checking" or (action == "verify" and not self.ips) else True
        if action == "next":
            return None if self.running or self.plan is None else True
        return True

    def action_plan(self) -> None:
        if self.running or self.status == "checking":
            return
        self.status = "planning"
        self._render_state()
        self.refresh_bindings()
        self._plan_worker(self.app.bridge)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="dns-plan", description="plan the DNS records")
    def _plan_worker(self, bridge: Any) -> None:
        from keybuzz_tui.engine import dns as dnsmod

        try:
            with bridge.run(self, name="dns-plan") as ctx:
                ips = bridge.platform(ctx).lb_ips()
                plan = dnsmod.plan(ctx, ips)
                lines = dnsmod.zone_file(ctx.config, ips) if ips else []
            self.post_message(self.PlanReady(plan, ips, lines))
        except Cancelled:
            self.post_message(self.PlanReady(None, [], [], "planning cancelled"))
        except Exception as e:
            self.post_message(self.PlanReady(None, [], [], *_error_parts(e)))

    @on(PlanReady)
    def _plan_ready(self, msg: PlanReady) -> None:
        if msg.plan is None:
            self.status = "failed"
            self._log("✗", f"Cannot plan DNS: {msg.error}", "fail")
            if msg.remediation:
                self._log("→", msg.remediation, "info")
            self._render_state(msg.error)
            self.refresh_bindings()
            return
        self.plan, self.ips, self.zone_lines = msg.plan, msg.ips, msg.zone_lines
        self.status = "planned"
        for w in msg.plan.warnings:
            self._log("!", w, "warn")
        self._show_plan()
        self._render_state()
        self.refresh_bindings()
        if self.ips and (self.manual or not self.plan.has_changes):
            self._start_check()  # nothing to apply: show what DNS answers now

    def _show_plan(self) -> None:
        zone = self.query_one("#dns-zone", TextArea)
        table = self.query_one("#dns-plan", DataTable)
        manual = self.manual
        zone.display = bool(self.zone_lines) and manual
        table.display = not manual
        if manual:
            zone.load_text("\n".join(self.zone_lines))
        else:
            fill_plan_table(self.app, table, [c for c in self.plan.changes if c.layer == "dns"] or list(self.plan.changes))

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        if self.plan is not None and not self.manual:
            self.call_after_refresh(self._show_plan)

    @on(DataTable.RowSelected, "#dns-plan")
    def _plan_row(self, event: DataTable.RowSelected) -> None:
        changes = [c for c in self.plan.changes if c.layer == "dns"] or list(self.plan.changes)
        i = int(str(event.row_key.value))
        if 0 <= i < len(changes):
            for line in change_lines(changes[i]):
                self._log("·", line, "info")

    @on(DataTable.RowHighlighted, "#dns-answers")
    def _answer_row(self, event: DataTable.RowHighlighted) -> None:
        a = self.answers.get(str(event.row_key.value))
        if a is not None:
            self._show_detail(a)

    def action_apply(self) -> None:
        if self.running or self.plan is None or self.manual or not self.plan.has_changes:
            return
        self.status = "applying"
        self._log("·", f"Applying: {self.plan.summary()}", "info")
        self._render_state()
        self.refresh_bindings()
        self._apply_worker(self.app.bridge, self.plan, self.ips)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="dns-apply", description="apply the DNS records")
    def _apply_worker(self, bridge: Any, plan: Any, ips: list[str]) -> None:
        try:
            with bridge.run(self, name="dns", applying=True) as ctx:
                bridge.platform(ctx).apply_dns(plan)
            self.post_message(self.Applied())
        except Cancelled as e:
            self.post_message(self.Failed(str(e), cancelled=True))
        except Exception as e:
            self.post_message(self.Failed(*_error_parts(e)))

    @on(Applied)
    def _applied(self, msg: Applied) -> None:
        self._log("✓", "Records applied; asking DNS what it answers now…", "ok")
        self.status = "planned"
        self._start_check()

    @on(Failed)
    def _failed(self, msg: Failed) -> None:
        self.status = "failed" if not msg.cancelled else "attention"
        if msg.cancelled:
            self._log("!", "Stopped by the operator.", "warn")
        else:
            self._log("✗", msg.error, "fail")
            if msg.remediation:
                self._log("→", msg.remediation, "info")
            self.notify(msg.error, title="DNS", severity="error", markup=False)
        self._render_state(msg.error)
        self.refresh_bindings()

    def action_verify(self) -> None:
        if not self.running and self.status != "checking" and self.ips:
            self._start_check()

    def _start_check(self) -> None:
        self.status = "checking"
        self._render_state()
        self.refresh_bindings()
        self._check_worker(self.app.bridge, self.ips, self.recheck_every, self.recheck_rounds)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="dns-check", description="ask DNS")
    def _check_worker(self, bridge: Any, ips: list[str], every: float, rounds: int) -> None:
        from keybuzz_tui.engine import dns as dnsmod

        try:
            with bridge.run(self, name="dns-check") as ctx:
                for i in range(max(1, rounds)):
                    answers = dnsmod.check(ctx, ips)
                    settled = all(a.status == "ok" for a in answers) or i == rounds - 1
                    self.post_message(self.Answers(answers, settled))
                    if settled or ctx.cancel.wait(every):
                        return
        except Cancelled:
            self.post_message(self.Answers([], True))
        except Exception as e:
            self.post_message(self.Failed(*_error_parts(e)))

    @on(Answers)
    def _answers(self, msg: Answers) -> None:
        table = self.query_one("#dns-answers", DataTable)
        with self.app.batch_update():
            for a in msg.answers:
                key = f"{a.host} {a.type}"
                self.answers[key] = a
                cells = self._answer_cells(key, a)
                if key not in {str(k.value) for k in table.rows}:
                    table.add_row(*cells.values(), key=key)
                    self._cells.update({(key, c): repr(v) for c, v in cells.items()})
                    continue
                for col, value in cells.items():
                    if self._cells.get((key, col)) != repr(value):
                        self._cells[(key, col)] = repr(value)
                        table.update_cell(key, col, value)
        bad = [a for a in msg.answers if a.status != "ok"]
        if msg.answers:
            self._show_detail(bad[0] if bad else msg.answers[0])
        if msg.final:
            self.status = "done" if msg.answers and not bad else "attention"
            if msg.answers and not bad:
                self._log("✓", "Both names answer the Load Balancer's addresses, at the zone and at the resolver.", "ok")
            self.refresh_bindings()
        self._render_state()

    def _answer_cells(self, key: str, a: Any) -> dict[str, Text]:
        return {
            "record": plain(key),
            "auth": self._values(a.authoritative, a.expected),
            "resolver": self._values(a.resolver, a.expected),
            "verdict": status_text(self.app, *VERDICT.get(a.verdict, ("unknown", a.verdict or a.status))),
        }

    def repaint_theme(self) -> None:
        """The plan, the answers, the detail, the state line and the log, in the new theme's colours."""
        with self.app.batch_update():
            if self.plan is not None:
                self._show_plan()
            table = self.query_one("#dns-answers", DataTable)
            rows = {str(k.value) for k in table.rows}
            for key, a in self.answers.items():
                if key not in rows:
                    continue
                for col, value in self._answer_cells(key, a).items():
                    self._cells[(key, col)] = repr(value)
                    table.update_cell(key, col, value)
            if self._detail_answer is not None:
                self._show_detail(self._detail_answer)
            self._render_state(self._state_detail)
            log = self.query_one("#dns-log", RichLog)
            log.clear()
            for symbol, text, tone in self._log_entries:
                log.write(Text(f"{symbol} {text}", style=Tones.of(self.app).get(tone, "")))

    def _values(self, got: list[str], expected: list[str]) -> Text:
        if not got:
            return status_text(self.app, "fail", "none")
        ok = sorted(got) == sorted(expected)
        return status_text(self.app, "ok" if ok else "fail", ", ".join(got))

    def action_copy(self) -> None:
        if not self.zone_lines:
            return
        text = "\n".join(self.zone_lines) + "\n"
        self.app.copy_to_clipboard(text)
        self.notify(f"{len(self.zone_lines) - 1} record(s) copied in zone-file syntax", title="DNS")

    def action_cancel_or_back(self) -> None:
        if self.running or self.status == "checking":
            self.app.bridge.cancel_owner(self, "cancelled by the operator")  # type: ignore[attr-defined]
            self._log("!", "Stopping at the next safe point…", "warn")
        else:
            step_back(self)

    def action_next(self) -> None:
        if not self.running and self.plan is not None:
            step_next(self, {"status": self.status})

    # --- engine events -----------------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        if isinstance(e, ev.ObjectApplied):
            self._log("+" if e.action == "create" else "~", f"{e.action} {e.kind} {e.name}", "info")
        elif isinstance(e, ev.ActionProgress) and e.status != "running":
            self._log("✓" if e.status == "success" else "✗", f"{e.resource}: {e.status}" + (f" ({e.error})" if e.error else ""), "ok" if e.status == "success" else "fail")
        elif isinstance(e, ev.Warning_):
            self._log("!", e.message + (f"\n    → {e.remediation}" if e.remediation else ""), "warn")
        elif isinstance(e, ev.Info) and e.step == "dns":
            self._log("·", e.message, "info")

    # --- rendering -----------------------------------------------------------------------------

    def _show_detail(self, a: Any) -> None:
        self._detail_answer = a
        tone = VERDICT.get(a.verdict, ("unknown", ""))[0]
        text = Text()
        text.append(f"{a.host} {a.type}: ", style="bold")
        text.append(a.detail or a.verdict, style=Tones.of(self.app).get(tone, ""))
        if a.remediation and a.status != "ok":
            text.append(f"\n→ {a.remediation}")
        self.query_one("#dns-detail", Static).update(text)

    def _log(self, symbol: str, text: str, tone: str) -> None:
        self._log_entries.append((symbol, text, tone))
        del self._log_entries[:-300]
        self.log_lines.append(f"{symbol} {text}")
        self.query_one("#dns-log", RichLog).write(Text(f"{symbol} {text}", style=Tones.of(self.app).get(tone, "")))

    def _render_state(self, detail: str = "") -> None:
        self._state_detail = detail
        ips = ", ".join(self.ips) or "unknown yet"
        n_bad = sum(1 for a in self.answers.values() if a.status != "ok")
        tone, text = {
            "idle": ("pending", "Not planned yet"),
            "planning": ("running", "Reading the Load Balancer's addresses and the zone…"),
            "planned": ("info", self._planned_words()),
            "applying": ("running", "Applying the records…"),
            "checking": ("running", "Asking the authoritative server and the resolver…"),
            "done": ("ok", "DNS answers the Load Balancer's addresses. Press n for the validation board."),
            "attention": ("warn", f"{n_bad} answer(s) do not match yet: read the detail below; v asks again."),
            "failed": ("fail", detail or "Failed."),
        }[self.status]
        self.query_one("#dns-state", Static).update(status_text(self.app, tone, text))
        cfg = self._config().dns
        title = f"DNS: zone {cfg.zone} · mode {cfg.mode} · TTL {cfg.ttl}s · Load Balancer {ips}"
        self.query_one("#dns-title", Static).update(Text(title, no_wrap=True, overflow="ellipsis"))

    def _planned_words(self) -> str:
        if self.plan is None:
            return ""
        if not self.ips:
            return "The Load Balancer has no public address yet: apply the load balancer step first."
        if self.manual:
            return "Manual mode: create these records at your DNS provider, then v to verify."
        if self.plan.has_changes:
            return f"Plan: {self.plan.summary()}. Press a to apply."
        return "The records are already right."
