"""The Doctor: why is the platform down, in plain words, and what to do about it.

What the operator sees (keybuzz_tui.engine.doctor does the work):

- the diagnosis on top: the ranked causes, each with its fix first and in full (the cause's
  remediation), then one action: *Repair…* opens the Recovery screen preloaded with the cause's
  repair steps, *Credentials* goes to the Credentials step, *What to do* shows the fix; then the
  command that re-checks it, the cause in plain words and the evidence lines it rests on;
- every named check, grouped by layer (Kubernetes, the overlay, Hetzner, DNS, the platform), drawn
  from `doctor.catalogue` before the run and filled in live from the engine's CheckResult events;
- the selected check's detail pane: what it measured, verbatim (the probe pod's command and
  output, the HTTP answer...), and its remediation;
- a skip toggle per check (`s`): the skip set is passed to the run and the report says those were
  skipped on purpose, as kubeadm's preflight does; probe pods on/off (`p`);
- run / rerun (`r`), cancel (`c` or esc while running: the engine deletes its probe pods before
  it returns, nothing is left behind), export the report as Markdown and JSON (`e`).

Also here: the ways in. `open_doctor(app)` (command palette, the board's `d`) and `DoctorOffer`,
the button Welcome shows when KeyBuzz is installed and a quick validation fails.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from keybuzz_tui.screens.board_widgets import Tones, plain, status_text, when_world_ready
from keybuzz_tui.screens.bridge import EngineEvent
from keybuzz_tui.screens.widgets import StepScreen
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Markdown, Static

from keybuzz_tui import events as ev
from keybuzz_tui.redact import REDACTOR, safe_error

LAYERS = ("kubernetes", "overlay", "hetzner", "dns", "platform")
LAYER_TITLES = {
    "kubernetes": "Kubernetes",
    "overlay": "The overlay network (Flannel)",
    "hetzner": "Hetzner Cloud",
    "dns": "DNS",
    "platform": "The platform",
}
PROBE_CHECKS = ("overlay.pod-to-pod", "overlay.clusterip", "overlay.coredns")
SEVERITY_TONE = {"critical": "fail", "major": "fail", "minor": "warn", "info": "info"}
ACTION_LABEL = {
    "repair": "Repair… (Recovery)",
    "credentials": "Fix credentials (Credentials step)",
    "manual": "What to do",
    "none": "What to do",
}
STATUS_WORD = {"ok": "ok", "warn": "warn", "fail": "fail", "skip": "skipped", "running": "running", "pending": "not run"}
# evidence keys shown first, in this order (the rest follow alphabetically)
EVIDENCE_FIRST = ("command", "output", "result", "client_node", "server_node", "server_pod", "server_ip", "kube_dns")
QUICK_HTTP_TIMEOUT = 5.0


# --- the ways in ------------------------------------------------------------------------------


def close_flow(app: Any) -> None:
    """Close the Doctor and Recovery screens (and any modal above them): back to the wizard."""
    while len(app.screen_stack) > 1 and (isinstance(app.screen, ModalScreen) or getattr(app.screen, "RECOVERY_FLOW", False)):
        app.pop_screen()


def leave_for_step(app: Any, which: str) -> None:
    """ctrl+n / ctrl+b from the flow: close it and move the wizard to its next or previous step
    (`which`: "next" or "prev", the app's action_next_step / action_prev_step)."""
    fn = getattr(app, f"action_{which}_step", None)
    if callable(fn):
        close_flow(app)
        fn()


def _bring_back(app: Any, cls: type) -> bool:
    """An instance of `cls` lower in the stack: pop back to it (it keeps its state)."""
    if isinstance(app.screen, cls):
        return True
    if not any(isinstance(s, cls) for s in app.screen_stack):
        return False
    while not isinstance(app.screen, cls):
        app.pop_screen()
    return True


def open_doctor(app: Any, **kw: Any) -> None:
    """The Doctor on top of whatever the operator was looking at (the palette, the board's `d`,
    Welcome's offer). An open Doctor is brought back, with its report."""
    while isinstance(app.screen, ModalScreen) and len(app.screen_stack) > 1:
        app.pop_screen()
    if _bring_back(app, DoctorScreen):
        return
    app.push_screen(DoctorScreen(**kw))


def go_step(app: Any, step: str) -> bool:
    """Leave the Doctor/Recovery flow for a wizard step (False when hosted without the wizard)."""
    goto = getattr(app, "goto", None)
    if not callable(goto):
        return False
    close_flow(app)
    goto(step)
    return True


def open_board(app: Any) -> None:
    """The live validation board: the wizard's step 8, or a board pushed when hosted alone."""
    if go_step(app, "validation"):
        return
    from keybuzz_tui.screens.board import BoardScreen

    close_flow(app)
    if not isinstance(app.screen, BoardScreen):
        app.push_screen(BoardScreen())


# --- the model ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One named check on the screen: what the catalogue says, then what the run found."""

    id: str
    layer: str
    title: str
    status: str = "pending"  # pending (not run) | running | ok | warn | fail | skip
    detail: str = ""
    remediation: str = ""
    evidence: dict[str, Any] | None = None


def evidence_lines(evidence: dict[str, Any] | None) -> list[str]:
    """The raw material of a check, verbatim: the command and its output first, then the rest."""
    if not evidence:
        return []
    out: list[str] = []
    keys = [k for k in EVIDENCE_FIRST if k in evidence] + sorted(k for k in evidence if k not in EVIDENCE_FIRST)
    for k in keys:
        v = evidence[k]
        if v in (None, "", [], {}) or k == "skipped_on_request":
            continue
        if k == "command":
            out.append(f"$ {v}")
        elif k == "output":
            out += [f"  {line}" for line in (v if isinstance(v, list) else str(v).splitlines())]
        elif isinstance(v, (str, int, float, bool)):
            out.append(f"{k}: {v}")
        else:
            text = json.dumps(v, default=str, ensure_ascii=False)
            out.append(f"{k}: {text if len(text) <= 400 else text[:399] + '…'}")
    return [REDACTOR.redact(line) for line in out]


# --- the diagnosis --------------------------------------------------------------------------------


def cause_only(c: Any) -> str:
    """The cause's explanation without its "Fix: …" tail when the fix is shown on its own line."""
    text = str(c.explanation or "")
    if c.fix and " Fix: " in text:
        text = text.split(" Fix: ", 1)[0]
    return text


def then_line(c: Any) -> str:
    """The command after the fix: the doctor's re-check ("then re-check: …"), or a command the
    fix does not already name ("then run: …")."""
    cmd = str(c.next_command or "").strip()
    if not cmd:
        return ""
    if cmd.startswith("keybuzz-tui doctor"):
        return f"then re-check: {cmd}"
    return "" if cmd in str(c.fix or "") else f"then run: {cmd}"


class CauseView(Vertical):
    """One ranked cause: title and explanation, its action, the evidence lines it rests on."""

    def __init__(self, index: int, cause: Any) -> None:
        super().__init__(classes="cause")
        self.index = index
        self.cause = cause

    def compose(self) -> ComposeResult:
        c = self.cause
        tones = Tones.of(self.app)
        head = Text()
        tone = SEVERITY_TONE.get(c.severity, "info")
        head.append(f"{self.index + 1}. {'✗' if tone == 'fail' else '!' if tone == 'warn' else '·'} {c.severity}", style=tones.get(tone, Style()))
        head.append(f"  {REDACTOR.redact(c.title)}", style="bold")
        yield Static(head, classes="cause-text")
        # the fix first, in full and prominent; then the action; the re-check command second
        fix = REDACTOR.redact(c.fix or "")
        if fix:
            line = Text()
            line.append("Fix: ", style=tones.get("warn", Style()) + Style(bold=True))
            line.append(fix, style="bold")
            yield Static(line, classes="cause-fix")
        with Horizontal(classes="cause-actions"):
            variant = "warning" if c.action == "repair" else "primary" if c.action == "credentials" else "default"
            yield Button(ACTION_LABEL.get(c.action, "What to do"), id=f"cause-{self.index}", classes="cause-action", variant=variant, compact=True)
            then = then_line(c)
            if then:
                yield Static(Text(f"  {then}", style="dim", no_wrap=True, overflow="ellipsis"), classes="cause-next")
        yield Static(Text(REDACTOR.redact(cause_only(c))), classes="cause-text")
        lines = [REDACTOR.redact(e) for e in (c.evidence or []) if e]
        if lines:
            # the first line (the plain-words summary) in full, the others one line each: the
            # whole of each is in its check's evidence pane and in the exported report
            yield Static(Text(" › " + lines[0]), classes="cause-plain")
        if len(lines) > 1:
            yield Static(Text("\n".join(" › " + line for line in lines[1:]), style="dim"), classes="cause-evidence")


class FixModal(ModalScreen[None]):
    """A cause's remediation, for the causes keybuzz-tui does not repair by itself."""

    BINDINGS: ClassVar[list[Any]] = [Binding("escape,q", "dismiss", "Close", tooltip="Close and go back to the Doctor")]
    DEFAULT_CSS = """
    FixModal { align: center middle; }
    FixModal > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%; border: thick $warning; background: $surface; padding: 0 1; }
    FixModal #fix-title { text-style: bold; padding-bottom: 1; }
    FixModal VerticalScroll { height: auto; max-height: 70vh; }
    FixModal Markdown { margin: 0; padding: 0; }
    FixModal Button { width: 100%; margin-top: 1; }
    """

    def __init__(self, cause: Any) -> None:
        super().__init__()
        self.cause = cause

    def compose(self) -> ComposeResult:
        c = self.cause
        body = [f"**What to do:** {REDACTOR.redact(c.fix)}"] if c.fix else []
        if c.next_command:
            then = "Then re-check" if c.next_command.startswith("keybuzz-tui doctor") else "Then run"
            body += ["", f"**{then}:** `{c.next_command}`"]
        body += ["", f"**Why:** {REDACTOR.redact(cause_only(c))}"]
        lines = [e for e in c.evidence or [] if e]
        if lines:
            body += ["", "**Evidence:**", "", "```", *(REDACTOR.redact(e) for e in lines), "```"]
        with Vertical():
            yield Static(Text(REDACTOR.redact(c.title)), id="fix-title")
            with VerticalScroll():
                yield Markdown("\n".join(body), id="fix-body")
            yield Button("Close (Esc)", id="fix-close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#fix-close", Button).focus()

    @on(Button.Pressed, "#fix-close")
    def _close(self) -> None:
        self.dismiss(None)


# --- the screen ---------------------------------------------------------------------------------


class DoctorScreen(StepScreen):
    """Named checks by layer, the ranked diagnosis, and a way to repair each cause."""

    CSS_PATH = "doctor.tcss"
    TITLE = "KeyBuzz doctor"
    RECOVERY_FLOW = True
    HELP = """\
## Doctor · why is the platform down?

The doctor runs named checks across five layers and says **why** the platform is down, in plain
words, with the evidence and what to do.

- **Diagnosis** (top): the causes, most serious first. Each starts with its **Fix** (what to do),
  then one action: **Repair…** opens the Recovery screen with the repair steps of that cause;
  **Credentials** goes to the Credentials step; **What to do** shows the fix to apply by hand.
  Beside it, the command that re-checks the cause once it is fixed (*then re-check: …*); below,
  the cause in plain words and the evidence lines it rests on (verbatim). `a` acts on the first
  cause; `tab` reaches the others.
- **Checks** by layer: Kubernetes (API, permissions, nodes, NodePort range, collisions), the
  overlay (Flannel backend; pod-to-pod, ClusterIP and CoreDNS tested from short-lived probe pods
  on two workers), Hetzner (token, Load Balancer, firewall, quotas), DNS, the platform
  (topology, the request path per worker, HTTPS). Select one to read its evidence and remediation.
- **Skip** a check on purpose with `s` (as kubeadm's preflight checks): the next run leaves it out
  and the report says it was skipped deliberately. `p` turns the probe pods off (the three overlay
  tests are then not run).
- `r` runs the doctor again; `c` (or esc while it runs) cancels it: the doctor deletes its probe
  pods before it stops, nothing is left behind. `e` exports the report (Markdown and JSON, no
  secrets). `esc` goes back.
"""
    BINDINGS: ClassVar[list[Any]] = [
        Binding("r", "run", "Run", id="doctor.run", tooltip="Run the doctor (again) with the skip set and the probe setting shown"),
        Binding("c", "cancel", "Cancel", id="doctor.cancel", tooltip="Stop the run; the doctor deletes its probe pods first"),
        Binding("s", "toggle_skip", "Skip", id="doctor.skip", tooltip="Skip the selected check on purpose in the next run (again: include it)"),
        Binding("p", "toggle_probes", "Probes", id="doctor.probes", tooltip="Probe pods on/off (off: the overlay is not tested)"),
        Binding("a", "act", "Cause 1", id="doctor.act", tooltip="The first cause's action: repair, credentials, or what to do"),
        Binding("e", "export", "Export", id="doctor.export", tooltip="Write the report as Markdown and JSON (no secrets)"),
        Binding("escape", "back", "Back", id="doctor.back", tooltip="Cancel a running doctor; otherwise go back"),
        Binding("ctrl+n", "wizard_step('next')", "Next", show=False),
        Binding("ctrl+b", "wizard_step('prev')", "Back", show=False),
    ]

    class Finished(Message):
        def __init__(self, report: Any) -> None:
            super().__init__()
            self.report = report

    class Failed(Message):
        def __init__(self, error: str, remediation: str = "") -> None:
            super().__init__()
            self.error, self.remediation = error, remediation

    class Exported(Message):
        def __init__(self, paths: list[Path], error: str = "") -> None:
            super().__init__()
            self.paths, self.error = paths, error

    def __init__(
        self,
        *,
        autostart: bool = True,
        skip: tuple[str, ...] | set[str] | frozenset[str] = (),
        probes: bool = True,
        export_dir: Path | None = None,
        clock: Any = None,
        name: str | None = "Doctor",
    ) -> None:
        super().__init__(name=name)
        self.autostart = autostart
        self.skip: set[str] = set(skip)
        self.probes = probes
        self.export_dir = export_dir
        self.clock = clock or time.monotonic
        self.rows: dict[str, Row] = {}
        self.report: Any = None
        self.state = "idle"  # idle | waiting | running | cancelling | done | cancelled | error
        self.error = ""
        self.started: float | None = None
        self.runs = 0
        self._cells: dict[tuple[str, str], str] = {}
        self._selected: str | None = None
        self._user_moved = False

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⎈")
        yield Static("", id="doctor-head")
        with Vertical(id="diagnosis") as diag:
            diag.border_title = "Diagnosis"
            with VerticalScroll(id="causes"):
                yield Static(Text("The diagnosis comes when the checks are done.", style="italic"), id="diagnosis-placeholder")
                yield Vertical(id="cause-list")
        with Vertical(id="doctor-main"):
            checks: DataTable[Any] = DataTable(id="doctor-checks", cursor_type="row", show_header=False)
            checks.border_title = "Checks by layer"
            yield checks
            with VerticalScroll(id="doctor-detail-pane") as pane:
                pane.border_title = "Evidence"
                yield Static("Select a check to read what it measured, verbatim, and what to do.", id="doctor-detail")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.set_class(self.app.size.width >= self.WIDE, "-wide")
        try:
            from keybuzz_tui.engine import doctor

            cat = doctor.catalogue(getattr(self.app, "config", None))
        except Exception as e:  # a broken config: say so, the run will say more
            cat = []
            self.error = safe_error(e)
        for c in cat:
            self.rows[c["id"]] = Row(c["id"], c["layer"], c["title"])
        self._build_table()
        self._render_head()
        if self.autostart:
            self._when_ready(self.action_run)

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        if self.is_mounted:
            self.call_after_refresh(self._build_table)

    def repaint_theme(self) -> None:
        self._build_table()
        self._render_head()
        if self.report is not None:
            self.call_later(self._render_diagnosis)
        if self._selected:
            self._show_check(self._selected)

    def _when_ready(self, fn: Any) -> None:
        when_world_ready(self, fn)

    # --- the checks table ------------------------------------------------------------------------

    def _widths(self, table: DataTable[Any]) -> tuple[int, int]:
        width = table.size.width or (self.app.size.width * (3 if self.has_class("-wide") else 5) // 5)
        width = max(60, width - 4)
        check_w = 22
        return check_w, max(12, width - 2 - 10 - check_w - 6)

    def _build_table(self) -> None:
        """(Re)build the table from the rows (after a resize or a theme change)."""
        table = self.query_one("#doctor-checks", DataTable)
        cursor = table.cursor_row
        check_w, detail_w = self._widths(table)
        with self.app.batch_update():
            table.clear(columns=True)
            self._cells.clear()
            table.add_column("", key="skip", width=2)
            table.add_column("Status", key="status", width=10)
            table.add_column("Check", key="check", width=check_w)
            table.add_column("Detail", key="detail", width=detail_w)
            layers = list(LAYERS) + sorted({r.layer for r in self.rows.values()} - set(LAYERS))
            for layer in layers:
                rows = [r for r in self.rows.values() if r.layer == layer]
                if not rows:
                    continue
                table.add_row(Text(""), Text(""), Text(f"── {LAYER_TITLES.get(layer, layer)}", style="bold"), Text(""), key=f"layer:{layer}")
                for r in rows:
                    cells = self._row_cells(r)
                    table.add_row(*cells.values(), key=r.id)
                    for col, value in cells.items():
                        self._cells[(r.id, col)] = value.markup if isinstance(value, Text) else str(value)
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1), animate=False)

    def _row_cells(self, r: Row) -> dict[str, Text]:
        skipped = r.id in self.skip or (not self.probes and r.id in PROBE_CHECKS)
        mark = Text("⊘" if skipped else "", style=Tones.of(self.app)["warn"])
        if r.status == "pending":
            status = status_text(self.app, "pending", "waiting" if self.state == "running" else "not run")
            if r.id in self.skip:
                detail = Text("skipped on purpose in the next run: " + r.title, style="italic")
            elif skipped:
                detail = Text("probe pods off (p): not tested in the next run", style="italic")
            else:
                detail = Text(r.title, style="dim")
        else:
            word = STATUS_WORD.get(r.status, r.status)
            status = status_text(self.app, r.status, word)
            detail = plain(REDACTOR.redact(r.detail or r.title).replace("\n", " "))
        return {"skip": mark, "status": status, "check": plain(r.id), "detail": detail}

    def _update_row(self, r: Row) -> None:
        table = self.query_one("#doctor-checks", DataTable)
        if r.id not in table.rows:
            return
        changed = []
        for col, value in self._row_cells(r).items():
            key = value.markup if isinstance(value, Text) else str(value)
            if self._cells.get((r.id, col)) != key:
                self._cells[(r.id, col)] = key
                changed.append((col, value))
        if changed:
            with self.app.batch_update():
                for col, value in changed:
                    table.update_cell(r.id, col, value)

    # --- running -----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state in ("running", "cancelling")

    def action_run(self) -> None:
        if self.running:
            self.notify("The doctor is already running (c cancels it).", title="Doctor")
            return
        app: Any = self.app
        if getattr(app, "endpoints", None) is None:
            self.notify("Not connected to the platform yet.", title="Doctor", severity="warning")
            return
        self.state = "running"
        self.error = ""
        self.runs += 1
        self.started = self.clock()
        self.report = None
        for r in self.rows.values():
            r.status, r.detail, r.remediation, r.evidence = "pending", "", "", None
        self._build_table()
        self._render_diagnosis_placeholder("Running the checks… the diagnosis comes when they are done.")
        self._render_head()
        self.refresh_bindings()
        self._run(app.bridge, frozenset(self.skip), self.probes)

    @work(thread=True, exclusive=True, exit_on_error=False, group="doctor", description="run the doctor")
    def _run(self, bridge: Any, skip: frozenset[str], probes: bool) -> None:
        try:
            with bridge.run(self, name="doctor") as ctx:
                report = bridge.platform(ctx).doctor(skip=set(skip), probes=probes)
            self.post_message(self.Finished(report))
        except Exception as e:
            self.post_message(self.Failed(safe_error(e), str(getattr(e, "remediation", "") or "")))

    def on_engine_event(self, message: EngineEvent) -> None:
        self.apply_event(message.event)

    def apply_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.CheckResult) and e.step == "doctor":
            r = self.rows.get(e.check)
            if r is None:
                r = self.rows[e.check] = Row(e.check, e.layer, e.title)
                self._build_table()
            r.status = e.status if e.status in STATUS_WORD else "pending"
            r.detail, r.remediation = e.detail, e.remediation
            self._update_row(r)
            self._render_head()
            if self._selected == r.id:
                self._show_check(r.id)
            elif not self._user_moved and r.status == "fail" and not any(x.status == "fail" for x in self.rows.values() if x is not r):
                self._select(r.id)

    @on(Finished)
    def _finished(self, msg: Finished) -> None:
        self.show_report(msg.report)
        rep = msg.report
        if rep.cancelled:
            probe = rep.probe or {}
            pods = probe.get("pods") or []
            clean = probe.get("cleanup")
            where = f" in {probe.get('namespace', 'kube-system')}" if pods else ""
            what = (f"its {len(pods)} probe pod(s){where} were deleted" if clean == "ok" else
                    f"probe pod cleanup reported: {clean}" if pods else "no probe pod had been created")
            self.notify(f"Doctor cancelled after {len([r for r in rep.results if r.status != 'skip'])} check(s); {what}. "
                        "Nothing is left behind; r runs it again.", title="Doctor", severity="warning", markup=False, timeout=10)
        else:
            self.notify(REDACTOR.redact(rep.summary()), title="Doctor", severity="error" if rep.failed else "information", markup=False)

    @on(Failed)
    def _failed(self, msg: Failed) -> None:
        self.state = "error"
        self.error = msg.error
        self._render_head()
        self.refresh_bindings()
        text = Text(f"✗ The doctor could not run: {msg.error}", style="bold")
        if msg.remediation:
            text.append(f"\n→ {msg.remediation}")
        self._render_diagnosis_placeholder(text)
        self.notify(msg.error + (f"\n→ {msg.remediation}" if msg.remediation else ""), title="Doctor", severity="error", markup=False)

    def show_report(self, report: Any) -> None:
        """Show a DoctorReport: every row from the report (the truth), then the diagnosis."""
        self.report = report
        self.state = "cancelled" if report.cancelled else "done"
        for rec in report.results:
            r = self.rows.get(rec.check)
            if r is None:
                r = self.rows[rec.check] = Row(rec.check, rec.layer, rec.title)
            r.status, r.detail, r.remediation, r.evidence = rec.status, rec.detail, rec.remediation, dict(rec.evidence or {})
        self._build_table()
        self._render_head()
        self.refresh_bindings()
        self.call_later(self._render_diagnosis)
        if self._selected and not self._user_moved:
            self._selected = None
        if not self._user_moved:
            bad = [r.id for r in self.rows.values() if r.status == "fail"] or [r.id for r in self.rows.values() if r.status == "warn"]
            if bad:
                self._select(bad[0])
        elif self._selected:
            self._show_check(self._selected)

    # --- cancel / back -----------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if not self.running:
            return
        if self.state == "cancelling":
            return
        self.state = "cancelling"
        self._render_head()
        bridge = getattr(self.app, "bridge", None)
        if bridge is not None:
            bridge.cancel_owner(self, "the operator cancelled the doctor")
        self.notify("Stopping: the doctor deletes its probe pods before it returns; nothing is left behind.", title="Doctor", markup=False)

    def action_back(self) -> None:
        if self.running:
            self.action_cancel()
            return
        app: Any = self.app
        if len(app.screen_stack) > 1 and app.screen is self:
            app.pop_screen()

    def action_wizard_step(self, which: str) -> None:
        if self.running:
            self.notify("The doctor is running: c cancels it first.", title="Doctor", severity="warning")
            return
        leave_for_step(self.app, which)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot act now are hidden (False) or greyed (None)."""
        if action == "cancel":
            return self.running
        if action == "run":
            return None if self.running else True
        if action == "export":
            return True if self.report is not None else None
        if action == "act":
            return bool(self.report is not None and self.report.diagnosis.causes)
        return True

    # --- skip and probes -------------------------------------------------------------------------

    def action_toggle_skip(self) -> None:
        table = self.query_one("#doctor-checks", DataTable)
        if not table.row_count:
            return
        key = str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        if key.startswith("layer:"):
            layer = key.split(":", 1)[1]
            ids = [r.id for r in self.rows.values() if r.layer == layer]
            on = not all(i in self.skip for i in ids)
            for i in ids:
                (self.skip.add if on else self.skip.discard)(i)
            changed = ids
        else:
            self.set_skip(key, key not in self.skip)
            changed = [key]
        for i in changed:
            self._update_row(self.rows[i])
        self._render_head()
        words = "skipped on purpose" if any(i in self.skip for i in changed) else "included again"
        self.notify(f"{', '.join(changed)}: {words} in the next run (r runs it).", title="Doctor", markup=False)

    def set_skip(self, check: str, skipped: bool = True) -> None:
        """Skip (or include again) a check by name in the next run."""
        if skipped:
            self.skip.add(check)
        else:
            self.skip.discard(check)
        r = self.rows.get(check)
        if r is not None:
            self._update_row(r)
            if self._selected == check:
                self._show_check(check)
        self._render_head()

    def action_toggle_probes(self) -> None:
        self.probes = not self.probes
        for i in PROBE_CHECKS:
            if i in self.rows:
                self._update_row(self.rows[i])
        self._render_head()
        self.notify(
            "Probe pods on: the next run tests the overlay from two workers (the pods are deleted afterwards)." if self.probes
            else "Probe pods off: the next run creates no pod; the overlay is not tested.", title="Doctor",
        )

    # --- selection and the detail pane -----------------------------------------------------------

    def on_key(self, event: Any) -> None:
        if event.key in ("up", "down", "pageup", "pagedown", "home", "end", "enter"):
            self._user_moved = True

    def on_click(self, event: Any) -> None:
        self._user_moved = True

    def _select(self, check: str) -> None:
        table = self.query_one("#doctor-checks", DataTable)
        self._selected = check
        self._show_check(check)
        if check in table.rows:
            row = table.get_row_index(check)
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)

    @on(DataTable.RowHighlighted, "#doctor-checks")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        if self._user_moved and not key.startswith("layer:"):
            self._selected = key
            self._show_check(key)

    @on(DataTable.RowSelected, "#doctor-checks")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self._user_moved = True
        key = str(event.row_key.value)
        if not key.startswith("layer:"):
            self._selected = key
            self._show_check(key)

    def detail_text(self, check: str) -> Text:
        """The detail pane for one check: status, what it measured, its evidence, what to do."""
        r = self.rows[check]
        tones = Tones.of(self.app)
        out = status_text(self.app, r.status, STATUS_WORD.get(r.status, r.status))
        out.append(f"  {r.title}", style="bold")
        out.append(f"\n{r.id} · {LAYER_TITLES.get(r.layer, r.layer)}", style="dim")
        if r.id in self.skip:
            out.append("\n⊘ skipped on purpose in the next run (s includes it again)", style=tones["warn"])
        if r.detail:
            out.append("\n" + REDACTOR.redact(r.detail))
        elif r.status == "pending":
            out.append("\nnot run yet", style="dim")
        lines = evidence_lines(r.evidence)
        if lines:
            out.append("\nEvidence (verbatim):", style="bold")
            for line in lines:
                out.append("\n" + line)
        if r.remediation and r.status in ("fail", "warn"):
            out.append("\nWhat to do: ", style=tones["warn"] + Style(bold=True))
            out.append(REDACTOR.redact(r.remediation))
        return out

    def _show_check(self, check: str) -> None:
        if check in self.rows:
            self.query_one("#doctor-detail", Static).update(self.detail_text(check))

    # --- the diagnosis -----------------------------------------------------------------------------

    def _render_diagnosis_placeholder(self, text: str | Text) -> None:
        """No causes to show (yet): a sentence instead of the list."""
        self.query_one("#cause-list", Vertical).remove_children()
        holder = self.query_one("#diagnosis-placeholder", Static)
        holder.update(text if isinstance(text, Text) else Text(text, style="italic"))
        holder.display = True
        self.query_one("#diagnosis", Vertical).border_subtitle = ""

    async def _render_diagnosis(self) -> None:
        rep = self.report
        if rep is None:
            return
        causes = list(rep.diagnosis.causes)
        if not causes:
            tone = "warn" if rep.cancelled else "ok"
            words = "Cancelled before the end: no diagnosis (r runs the doctor again)." if rep.cancelled else rep.diagnosis.summary
            self._render_diagnosis_placeholder(status_text(self.app, tone, REDACTOR.redact(words)))
            return
        self.query_one("#diagnosis-placeholder", Static).display = False
        box = self.query_one("#cause-list", Vertical)
        await box.remove_children()
        await box.mount_all([CauseView(i, c) for i, c in enumerate(causes)])
        d = rep.diagnosis
        sub = f"{len(causes)} cause{'s' if len(causes) != 1 else ''}"
        if d.overlay and d.overlay != "unknown":
            sub += f" · overlay {d.overlay}"
        if d.topology:
            sub += f" · topology {d.topology}"
        self.query_one("#diagnosis", Vertical).border_subtitle = sub

    @on(Button.Pressed, ".cause-action")
    def _cause_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.act((event.button.id or "cause-0").removeprefix("cause-"))

    def action_act(self) -> None:
        self.act("0")

    def act(self, index: str | int) -> None:
        """Do what the cause at `index` says: repair, credentials, or show the fix."""
        rep = self.report
        if rep is None or not rep.diagnosis.causes:
            return
        i = int(index)
        if not 0 <= i < len(rep.diagnosis.causes):
            return
        cause = rep.diagnosis.causes[i]
        if cause.action == "repair":
            from keybuzz_tui.screens.recovery import open_recovery

            open_recovery(self.app, cause=cause)
        elif cause.action == "credentials":
            if not go_step(self.app, "credentials"):
                self.app.push_screen(FixModal(cause))
        else:
            self.app.push_screen(FixModal(cause))

    # --- export ------------------------------------------------------------------------------------

    def action_export(self) -> None:
        if self.report is None:
            return
        target = self.export_dir or self._default_export_dir()
        self._export(self.report, target)

    def _default_export_dir(self) -> Path:
        jp = getattr(self.app, "journal_path", None)
        return Path(jp).parent if jp else Path.cwd()

    @work(thread=True, exclusive=True, exit_on_error=False, group="doctor-export", description="export the doctor's report")
    def _export(self, report: Any, target: Path) -> None:
        try:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target.mkdir(parents=True, exist_ok=True)
            md, js = target / f"keybuzz-doctor-{stamp}.md", target / f"keybuzz-doctor-{stamp}.json"
            md.write_text(REDACTOR.redact(report.to_markdown()))
            js.write_text(REDACTOR.redact(report.to_json()) + "\n")
            self.post_message(self.Exported([md, js]))
        except Exception as e:
            self.post_message(self.Exported([], safe_error(e)))

    @on(Exported)
    def _exported(self, msg: Exported) -> None:
        if msg.error:
            self.notify(f"cannot write the report: {msg.error}", title="Export", severity="error", markup=False)
            return
        self.exported = msg.paths
        self.notify("\n".join(str(p) for p in msg.paths), title="Doctor report written", timeout=12, markup=False)

    # --- the head line -----------------------------------------------------------------------------

    def _render_head(self) -> None:
        if not self.query("#doctor-head"):
            return
        rows = list(self.rows.values())
        done = [r for r in rows if r.status not in ("pending", "running")]
        if self.state == "waiting":
            head = status_text(self.app, "running", "Connecting to the platform…")
        elif self.state == "running":
            head = status_text(self.app, "running", f"Running: {len(done)}/{len(rows)} checks done")
        elif self.state == "cancelling":
            head = status_text(self.app, "running", "Cancelling: deleting the probe pods…")
        elif self.state == "error":
            head = status_text(self.app, "fail", f"Could not run: {self.error}")
        elif self.report is not None:
            c = self.report.counts()
            tone = "warn" if self.report.cancelled else "fail" if c["fail"] else "warn" if c["warn"] else "ok"
            words = [f"{c['fail']} failing"] if c["fail"] else []
            words += [f"{c['warn']} warning{'s' if c['warn'] != 1 else ''}"] if c["warn"] else []
            words += [f"{c['ok']} ok"] + ([f"{c['skip']} skipped"] if c["skip"] else [])
            lead = "Cancelled: " if self.report.cancelled else ""
            head = status_text(self.app, tone, lead + ", ".join(words))
            head.append(f" · {self.report.duration:.1f} s", style="")
        else:
            head = status_text(self.app, "pending", f"{len(rows)} checks, not run yet (r runs them)")
        head.append(" · probe pods " + ("on" if self.probes else "off (p)"), style="")
        if self.skip:
            head.append(f" · {len(self.skip)} skipped on purpose", style=Tones.of(self.app)["warn"])
        self.query_one("#doctor-head", Static).update(head)


# --- Welcome's offer ------------------------------------------------------------------------------


class DoctorOffer(Button):
    """Welcome's way into the Doctor: once detection finds KeyBuzz installed, a quick validation
    runs in a thread worker; when checks fail, this button appears and a notification suggests the
    Doctor. Mounted by Welcome next to *Re-validate / repair*."""

    class Checked(Message):
        def __init__(self, failing: list[str], total: int, error: str = "", *, seq: int = 0) -> None:
            super().__init__()
            self.failing, self.total, self.error, self.seq = failing, total, error, seq

    def __init__(self) -> None:
        super().__init__("Doctor…", id="doctor-offer", variant="warning", classes="hidden")
        self.failing: list[str] = []
        self.checked_for: Any = None
        self.checks = 0  # quick validations started; only the latest one's answer counts

    def on_mount(self) -> None:
        self.watch(self.app, "detected", self._detected, init=True)

    def _detected(self, d: Any) -> None:
        if d is None:
            return  # detection is running again: keep the last answer until it says otherwise
        if getattr(d, "error", "") or not getattr(d, "installed", False):
            self.add_class("hidden")
            return
        if self.checked_for is d:
            return
        self.checked_for = d
        bridge = getattr(self.app, "bridge", None)
        if bridge is not None:
            self.checks += 1
            seq = self.checks
            self.run_worker(lambda: self._quick_validate(bridge, seq), thread=True, exclusive=True, group="doctor-offer",
                            exit_on_error=False, description="quick validation (is the platform up?)")

    def _quick_validate(self, bridge: Any, seq: int) -> None:
        try:
            from keybuzz_tui.engine import validate

            with bridge.run(self, name="quick-validate") as ctx:
                rep = validate.validate(ctx, skip={"trace"}, http_timeout=QUICK_HTTP_TIMEOUT)
            if rep.cancelled:
                return
            failing = [r.check for r in rep.results if r.status == "fail"]
            self.post_message(self.Checked(failing, len(rep.results), seq=seq))
        except Exception as e:
            self.post_message(self.Checked([], 0, safe_error(e), seq=seq))

    def on_doctor_offer_checked(self, msg: Checked) -> None:
        msg.stop()
        if msg.seq != self.checks:
            return  # a newer detection started another check
        if msg.error:
            return  # the validation could not run: Welcome already says what is wrong with the platform
        if not msg.failing:
            self.add_class("hidden")
            return
        self.failing = msg.failing
        n = len(msg.failing)
        self.label = f"Doctor: why {n} check{'s' if n != 1 else ''} fail"
        self.remove_class("hidden")
        shown = ", ".join(msg.failing[:4]) + (f" and {n - 4} more" if n > 4 else "")
        self.app.notify(
            f"KeyBuzz is installed but {n} of {msg.total} checks fail ({shown}). The Doctor finds the cause and "
            "offers the repair: press the Doctor button, or ctrl+p → Doctor.",
            title="The platform is not healthy", severity="warning", timeout=15, markup=False,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        open_doctor(self.app)
