"""Recovery: what differs from keybuzz.yaml, and the repair that makes it true again, safely.

What the operator sees (keybuzz_tui.engine.recovery does the work):

- **Drift**: per Kubernetes object and per Hetzner resource (LB, services, targets, DNS records,
  firewall): missing, changed (with the field diff; Secrets by key name only), extra (what the
  repair would delete: destructive), pending, blocked;
- **Repair plan**, step by step (kubernetes → rollout → switch → cleanup → load balancer → DNS →
  firewall), destructive changes highlighted; the steps of the Doctor's cause (when opened from
  the Doctor) are marked ◆;
- the runs that stopped halfway ("the apply of … stopped after …; N changes remain") with
  *Resume*, and the platform lock: who holds it, on which host, since when; *Take over…* only for
  a stale lock, after its own confirmation;
- **Rollback**: an app's DaemonSet revisions with what each changes, and a rollback after a
  confirmation.

Repair is the wizard's plan / confirm / apply flow: a confirmation with the steps, and when the
plan destroys something a SECOND confirmation listing exactly what (an explicit second button,
never the default). Progress per step comes from the engine's events; `c` stops at the next safe
point (what was applied stays applied, the journal records it, the next repair finishes it). The
end is a validation that should be all green, with the live board one key away.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from keybuzz_tui.screens.board_widgets import MarkdownConfirm, Tones, plain, status_text, when_world_ready
from keybuzz_tui.screens.bridge import EngineEvent
from keybuzz_tui.screens.doctor import _bring_back, go_step, leave_for_step, open_board, open_doctor
from keybuzz_tui.screens.widgets import ConfirmModal, StepScreen
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from keybuzz_tui import events as ev
from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.redact import REDACTOR, safe_error

ORDER = ("kubernetes", "rollout", "switch", "cleanup", "load_balancer", "dns", "firewall")
STEP_LABEL = {"kubernetes": "Kubernetes", "rollout": "Rollout", "switch": "Switch", "cleanup": "Cleanup",
              "load_balancer": "Load balancer", "dns": "DNS", "firewall": "Firewall"}
# a Doctor cause's repair steps (Cause.steps) as the plan's steps
CAUSE_STEPS = {"kubernetes": ("kubernetes", "rollout", "switch", "cleanup"), "lb": ("load_balancer",),
               "load_balancer": ("load_balancer",), "dns": ("dns",), "firewall": ("firewall",)}
DRIFT_STATE = {  # state -> (tone, label)
    "missing": ("running", "+ missing"),
    "changed": ("warn", "~ changed"),
    "extra": ("fail", "- extra"),
    "pending": ("pending", "… pending"),
    "blocked": ("warn", "? blocked"),
}
ACTION = {"create": ("running", "+ create"), "update": ("warn", "~ update"), "delete": ("fail", "- delete"),
          "unchanged": ("pending", "= unchanged"), "manual": ("warn", "? manual")}
LAYER_LABEL = {"kubernetes": "Kubernetes", "hetzner": "Hetzner", "dns": "DNS", "firewall": "Firewall"}
VALIDATE_SETTLE = 30.0  # seconds a fresh repair gets for health checks and caches to settle
VALIDATE_RETRY = 2.0
_HOLDER = re.compile(r"^(?P<user>[^@\s]*)@(?P<host>\S+) pid (?P<pid>\d+)$")


def open_recovery(app: Any, *, cause: Any = None, **kw: Any) -> None:
    """The Recovery screen on top of the current one (an open one is brought back, preloaded with
    `cause` when given: a Doctor cause whose repair steps are marked in the plan)."""
    while isinstance(app.screen, ModalScreen) and len(app.screen_stack) > 1:
        app.pop_screen()
    if _bring_back(app, RecoveryScreen):
        if cause is not None:
            app.screen.preload(cause)
        return
    app.push_screen(RecoveryScreen(cause=cause, **kw))


def lock_words(info: Any, now: Any = None) -> str:
    """"held by alice on laptop (pid 4242) since 03:12:05 UTC, renewed 14 s ago"."""
    from datetime import UTC, datetime

    m = _HOLDER.match(getattr(info, "holder", "") or "")
    who = f"{m['user'] or 'someone'} on {m['host']} (pid {m['pid']})" if m else (info.holder or "another wizard")
    out = f"held by {who}"
    if info.acquired is not None:
        out += f" since {info.acquired:%Y-%m-%d %H:%M:%S} UTC"
    if info.renewed is not None:
        secs = int(((now or datetime.now(UTC)) - info.renewed).total_seconds())
        out += f", renewed {secs} s ago" if secs < 120 else f", last renewed {secs // 60} min ago"
    return REDACTOR.redact(out)


@dataclass
class Progress:
    status: str = "pending"
    text: str = ""


# --- the second confirmation ------------------------------------------------------------------------


class DestroyConfirm(ModalScreen[bool]):
    """Destructive changes are asked a second time, listing exactly what goes. Escape, Enter on the
    focused button and `n` all keep them; only the explicit red button deletes."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "answer(False)", "Keep them", id="destroy.no", tooltip="Nothing is changed"),
        Binding("n", "answer(False)", "Keep them", show=False),
    ]
    DEFAULT_CSS = """
    DestroyConfirm { align: center middle; }
    DestroyConfirm > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%; border: thick $error; background: $surface; padding: 0 1; }
    DestroyConfirm #destroy-title { text-style: bold; color: $text-error; padding-bottom: 1; }
    DestroyConfirm VerticalScroll { height: auto; max-height: 100%; }
    DestroyConfirm #destroy-list { height: auto; }
    DestroyConfirm Horizontal { dock: bottom; height: auto; align-horizontal: right; padding-top: 1; }
    DestroyConfirm Button { margin-left: 2; }
    """

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        n = len(self.lines)
        body = Text()
        body.append(f"Confirm a second time: the repair's cleanup step DELETES {n} object{'s' if n != 1 else ''}. "
                    "They go last, once the new pods serve; keybuzz-tui cannot bring them back.\n")
        for line in self.lines:
            body.append(f"\n  ✗ {REDACTOR.redact(line)}")
        with Vertical():
            yield Static(f"This repair destroys {n} object{'s' if n != 1 else ''}", id="destroy-title")
            with Horizontal():
                yield Button("Keep them (nothing changes)", id="destroy-no", variant="default")
                yield Button(f"Delete {'these ' + str(n) + ' objects' if n != 1 else 'it'} and repair", id="destroy-yes", variant="error")
            with VerticalScroll():
                yield Static(body, id="destroy-list")

    def on_mount(self) -> None:
        self.query_one("#destroy-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "destroy-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PlanConfirm(MarkdownConfirm):
    """The repair's (and the rollback's) first confirmation: the wizard's Markdown yes/no, with its
    buttons docked at the bottom so they stay on screen at 80x24 however long the plan is."""

    DEFAULT_CSS = """
    PlanConfirm > Vertical { height: auto; max-height: 90%; }
    PlanConfirm #confirm-scroll { height: auto; max-height: 100%; }
    PlanConfirm #confirm-buttons { dock: bottom; height: auto; }
    """

    def compose(self) -> ComposeResult:
        from textual.widgets import Label, Markdown

        with Vertical():
            yield Label(self._title, id="confirm-title", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self._no, id="no", variant="default")
                yield Button(self._yes, id="yes", variant="warning")
            with VerticalScroll(id="confirm-scroll"):
                yield Markdown(self._body, id="confirm-body")


# --- the screen -------------------------------------------------------------------------------------


class RecoveryScreen(StepScreen):
    """Drift, the repair plan and its progress, interrupted runs, the lock, rollback."""

    CSS_PATH = "recovery.tcss"
    TITLE = "KeyBuzz recovery"
    RECOVERY_FLOW = True
    HELP = """\
## Recovery · repair the platform safely

keybuzz.yaml and the keyring say what the platform should be; this screen compares that with the
live cluster and Hetzner project, and repairs the difference with the same plan / confirm / apply
flow as the install.

- **Drift** (`1`): every object that differs: `+ missing` (will be created), `~ changed` (the field
  diff; Secrets by key name only, never a value), `- extra` (the repair deletes it: destructive,
  e.g. the classic Deployments once the hostNetwork DaemonSets serve), `… pending` (follows another
  change), `? blocked` (cannot be repaired automatically: says why). Hetzner resources too.
- **Repair plan** (`2`): the steps in the order that never makes a live platform worse:
  kubernetes → rollout (wait for the DaemonSets on every worker) → switch (Services and Ingress move
  to the new pods) → cleanup (the destructive deletions, last) → load balancer → DNS → firewall.
  Steps marked ◆ fix the Doctor's cause. During a repair each step shows its progress.
- **Repair…** (`a`) asks once; when the plan destroys something it asks a **second** time and
  lists exactly what is deleted (the red button; Esc or Enter keeps them and changes nothing).
- `c` stops a running repair at the next safe point: what was applied stays applied and is in the
  journal; the next repair (**Resume**, `u`) finishes it. A run that stopped halfway (a crash, a
  Ctrl-C, a lost connection) is listed with what remains.
- The **platform lock**: one wizard at a time changes a platform. When another holds it you see
  who, on which host and since when; a **stale** lock (its run crashed) can be taken over (`t`)
  after a confirmation; the takeover is journaled.
- **Rollback** (`3`): pick an app, read its DaemonSet revisions and what each changes, roll back
  (`z`) after a confirmation.
- At the end a validation runs; `b` opens the live validation board. `r` compares again.
- `esc` goes back (it asks first while a repair runs).
"""
    BINDINGS: ClassVar[list[Any]] = [
        Binding("a", "repair", "Repair…", id="recovery.repair", tooltip="Repair the drift: plan, confirm (twice when destructive), apply, validate"),
        Binding("r", "compare", "Compare", id="recovery.compare", tooltip="Compare keybuzz.yaml and the keyring with the live platform again"),
        Binding("c", "cancel", "Cancel", id="recovery.cancel", tooltip="Stop the repair at the next safe point; the next repair finishes it"),
        Binding("u", "resume", "Resume", id="recovery.resume", tooltip="Finish the run that stopped halfway (the repair plans only what remains)"),
        Binding("t", "take_over", "Take over…", id="recovery.takeover", tooltip="Take over a stale platform lock (asks first; journaled)"),
        Binding("z", "rollback", "Roll back…", id="recovery.rollback", tooltip="Roll the selected app back to the selected revision (asks first)"),
        Binding("b", "board", "Board", id="recovery.board", tooltip="Open the live validation board"),
        Binding("1", "tab('tab-drift')", "Drift", show=False, tooltip="Show the drift"),
        Binding("2", "tab('tab-plan')", "Plan", show=False, tooltip="Show the repair plan"),
        Binding("3", "tab('tab-rollback')", "Rollback", show=False, tooltip="Show the rollback tab"),
        Binding("escape", "back", "Back", id="recovery.back", tooltip="Go back (asks first while a repair runs)"),
        Binding("ctrl+n", "wizard_step('next')", "Next", show=False),
        Binding("ctrl+b", "wizard_step('prev')", "Back", show=False),
    ]

    # --- messages from the workers ------------------------------------------------------------

    class Drifted(Message):
        def __init__(self, report: Any, plan: Any, lock: Any, lock_error: str = "", after_repair: bool = False) -> None:
            super().__init__()
            self.report, self.plan, self.lock, self.lock_error, self.after_repair = report, plan, lock, lock_error, after_repair

    class Failed(Message):
        def __init__(self, what: str, error: str, remediation: str = "") -> None:
            super().__init__()
            self.what, self.error, self.remediation = what, error, remediation

    class LockBlocked(Message):
        def __init__(self, info: Any, what: str) -> None:
            super().__init__()
            self.info, self.what = info, what

    class Refused(Message):
        def __init__(self, message: str, remediation: str) -> None:
            super().__init__()
            self.message, self.remediation = message, remediation

    class Repaired(Message):
        def __init__(self, result: Any) -> None:
            super().__init__()
            self.result = result

    class Validated(Message):
        def __init__(self, report: Any, final: bool) -> None:
            super().__init__()
            self.report, self.final = report, final

    class RevisionsLoaded(Message):
        def __init__(self, app_name: str, revisions: list[Any], error: str = "") -> None:
            super().__init__()
            self.app_name, self.revisions, self.error = app_name, revisions, error

    class RolledBack(Message):
        def __init__(self, result: Any, error: str = "", remediation: str = "") -> None:
            super().__init__()
            self.result, self.error, self.remediation = result, error, remediation

    def __init__(self, *, cause: Any = None, autostart: bool = True, name: str | None = "Recovery") -> None:
        super().__init__(name=name)
        self.cause = cause
        self.autostart = autostart
        self.state = "idle"  # idle | waiting | comparing | ready | repairing | cancelling | validating | done | failed | error
        self.report: Any = None
        self.plan: Any = None
        self.shown_plan: Any = None
        self.lock: Any = None
        self.lock_error = ""
        self.take_over = False
        self.result: Any = None
        self.validation: Any = None
        self.error = ""
        self.steps: dict[str, Progress] = {}
        self.changes: dict[str, Progress] = {}
        self.revisions: list[Any] = []
        self.rb_app: str | None = None
        self.rb_revision: int | None = None
        self.rb_busy = False
        self.compares = 0
        self._plan_rows: dict[str, tuple[str, Any]] = {}  # row key -> ("step", RepairStep) | ("change", Change)
        self._drift_rows: dict[str, Any] = {}
        self._rollout: dict[str, str] = {}
        self._allow_destructive = False

    # --- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⎈")
        yield Static("", id="recovery-head")
        yield Static("", id="recovery-cause", classes="hidden")
        with Horizontal(id="lock-banner", classes="banner hidden"):
            yield Static("", id="lock-text")
            yield Button("Take over…", id="takeover", variant="warning", compact=True, classes="hidden")
        with Horizontal(id="interrupted-box", classes="banner hidden"):
            yield Static("", id="interrupted-text")
            yield Button("Resume…", id="resume", variant="primary", compact=True)
        with Horizontal(id="problems-box", classes="banner hidden"):
            yield Static("", id="problems-text")
            yield Button("Credentials step", id="to-credentials", variant="primary", compact=True, classes="hidden")
        with TabbedContent(id="recovery-tabs", initial="tab-plan" if self.cause is not None else "tab-drift"):
            with TabPane("Drift", id="tab-drift"), Horizontal(id="drift-main", classes="split"):
                yield DataTable(id="drift-table", cursor_type="row")
                with VerticalScroll(id="drift-pane", classes="side"):
                    yield Static("", id="drift-diff")
            with TabPane("Repair plan", id="tab-plan"), Horizontal(id="plan-main", classes="split"):
                yield DataTable(id="plan-table", cursor_type="row")
                with VerticalScroll(id="plan-pane", classes="side"):
                    yield Static("", id="plan-detail")
            with TabPane("Rollback", id="tab-rollback"), Horizontal(id="rb-main", classes="split"):
                with Vertical(id="rb-left"):
                    yield OptionList(id="rb-apps")
                    yield DataTable(id="rb-table", cursor_type="row")
                with Vertical(id="rb-right", classes="side"):
                    with VerticalScroll(id="rb-pane"):
                        yield Static("Pick an app to read its revisions.", id="rb-diff")
                    yield Button("Roll back…", id="rb-go", variant="warning", compact=True, disabled=True)
        yield Static("", id="recovery-result", classes="hidden")
        with Horizontal(id="recovery-buttons", classes="buttons"):
            yield Button("Repair…", id="repair", variant="warning", compact=True)
            yield Button("Compare again", id="compare", compact=True)
            yield Button("Open the board", id="board", compact=True)
            yield Button("Doctor", id="doctor", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.set_class(self.app.size.width >= self.WIDE, "-wide")
        for table_id in ("#drift-table", "#plan-table", "#rb-table"):
            self.query_one(table_id, DataTable).zebra_stripes = False
        apps = [a.name for a in getattr(getattr(self.app, "config", None), "apps", [])]
        ol = self.query_one("#rb-apps", OptionList)
        for name in apps:
            ol.add_option(Option(name, id=name))
        if self.cause is not None:
            self.preload(self.cause)
        self._render_head()
        self._fill_drift()
        self._fill_plan(None)
        if self.autostart:
            self._when_ready(self.action_compare)

    def preload(self, cause: Any) -> None:
        """Opened from the Doctor: say which cause this repair fixes and mark its steps."""
        self.cause = cause
        box = self.query_one("#recovery-cause", Static)
        steps = self.cause_steps()
        text = Text()
        text.append("From the Doctor: ", style="bold")
        text.append(REDACTOR.redact(cause.title))
        if steps:
            text.append(f". ◆ marks its step{'s' if len(steps) > 1 else ''} in the plan ({', '.join(STEP_LABEL.get(s, s) for s in steps)}); "
                        "Repair… applies the whole plan.", style="")
        box.update(text)
        box.remove_class("hidden")
        if self.is_mounted:
            self.query_one("#recovery-tabs", TabbedContent).active = "tab-plan"
            if self.shown_plan is not None:
                self._fill_plan(self.shown_plan)

    def cause_steps(self) -> tuple[str, ...]:
        if self.cause is None:
            return ()
        out: list[str] = []
        for s in getattr(self.cause, "steps", ()) or ():
            for name in CAUSE_STEPS.get(s, (s,)):
                if name not in out:
                    out.append(name)
        return tuple(n for n in ORDER if n in out)

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        if self.is_mounted:
            self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        self._fill_drift()
        self._fill_plan(self.shown_plan)
        self._fill_revisions()

    def repaint_theme(self) -> None:
        self._relayout()
        self._render_head()
        self._render_banners()
        self._render_result()

    def _when_ready(self, fn: Any) -> None:
        when_world_ready(self, fn)

    def _table_width(self, table: DataTable[Any]) -> int:
        width = table.size.width or (self.app.size.width * 3 // 5 if self.has_class("-wide") else self.app.size.width)
        return max(56, width - 4)

    @property
    def busy(self) -> bool:
        return self.state in ("repairing", "cancelling", "validating") or self.rb_busy

    # --- comparing --------------------------------------------------------------------------------

    def action_compare(self) -> None:
        if self.busy:
            self.notify("A repair or rollback is running.", title="Recovery", severity="warning")
            return
        app: Any = self.app
        if getattr(app, "endpoints", None) is None:
            self.notify("Not connected to the platform yet.", title="Recovery", severity="warning")
            return
        self.state = "comparing"
        self.error = ""
        self._render_head()
        self.refresh_bindings()
        self._compare(app.bridge)

    @work(thread=True, exclusive=True, exit_on_error=False, group="recovery-drift", description="compare keybuzz.yaml with the platform")
    def _compare(self, bridge: Any) -> None:
        self._drift_now(bridge)

    def _drift_now(self, bridge: Any, after_repair: bool = False) -> None:
        """(In a thread) the drift, its repair plan and the lock, posted as one message."""
        from keybuzz_tui.engine import recovery

        try:
            with bridge.run(self, name="drift") as ctx:
                report = recovery.drift(ctx)
                plan = recovery.repair_plan(ctx, report)
                lock, lock_error = None, ""
                try:
                    lock = recovery.lock_status(ctx)
                except Exception as e:  # the lock is information here; the repair asks again
                    lock_error = safe_error(e)
            self.post_message(self.Drifted(report, plan, lock, lock_error, after_repair))
        except Cancelled:
            self.post_message(self.Failed("compare", "cancelled"))
        except Exception as e:
            self.post_message(self.Failed("compare", safe_error(e), str(getattr(e, "remediation", "") or "")))

    @on(Drifted)
    def _drifted(self, msg: Drifted) -> None:
        self.show_drift(msg.report, msg.plan, msg.lock, msg.lock_error, keep_plan_view=msg.after_repair)
        if msg.after_repair and self.state in ("repairing", "cancelling", "validating"):
            return
        if self.state not in ("done", "failed"):
            self.state = "ready"
        self._render_head()
        self.refresh_bindings()

    def show_drift(self, report: Any, plan: Any, lock: Any = None, lock_error: str = "", *, keep_plan_view: bool = False) -> None:
        """Show a DriftReport with its RepairPlan and the lock (None: nobody holds it)."""
        self.report, self.plan, self.lock, self.lock_error = report, plan, lock, lock_error
        self.compares += 1
        if self.state in ("idle", "waiting", "comparing"):
            self.state = "ready"
        self._fill_drift()
        if not keep_plan_view or self.shown_plan is None:
            self._fill_plan(plan)
        self._render_banners()
        self._render_head()
        self.refresh_bindings()

    # --- the drift tab ----------------------------------------------------------------------------

    def _fill_drift(self) -> None:
        table = self.query_one("#drift-table", DataTable)
        cursor = table.cursor_row
        width = self._table_width(table)
        obj_w = max(20, width - 12 - 11 - 4)
        with self.app.batch_update():
            table.clear(columns=True)
            self._drift_rows.clear()
            table.add_column("State", key="state", width=12)
            table.add_column("Layer", key="layer", width=11)
            table.add_column("Object", key="ref", width=obj_w)
            items = list(self.report.items) if self.report is not None else []
            for i, d in enumerate(items):
                tone, label = DRIFT_STATE.get(d.state, ("info", d.state))
                ref = Text(REDACTOR.redact(d.ref), no_wrap=True, overflow="ellipsis")
                if d.destructive:
                    ref = Text(no_wrap=True, overflow="ellipsis")
                    ref.append("DESTRUCTIVE ", style=Tones.of(self.app)["fail"])
                    ref.append(REDACTOR.redact(d.ref))
                key = f"d{i}"
                self._drift_rows[key] = d
                table.add_row(status_text(self.app, tone, label, symbol=""), plain(LAYER_LABEL.get(d.layer, d.layer)), ref, key=key)
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1), animate=False)
            self._show_drift_item(str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value))
        else:
            pane = self.query_one("#drift-diff", Static)
            if self.report is None:
                pane.update(Text("Comparing keybuzz.yaml and the keyring with the live platform…" if self.state == "comparing" else "", style="italic"))
            elif self.report.problems and not self.report.items:
                pane.update(Text("Nothing could be compared: see the red box above.", style="italic"))
            else:
                pane.update(status_text(self.app, "ok", f"No drift: the platform matches keybuzz.yaml ({len(self.report.in_sync)} objects in sync)."))

    @on(DataTable.RowHighlighted, "#drift-table")
    def _drift_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_drift_item(str(event.row_key.value))

    def _show_drift_item(self, key: str) -> None:
        d = self._drift_rows.get(key)
        if d is None:
            return
        tones = Tones.of(self.app)
        tone, label = DRIFT_STATE.get(d.state, ("info", d.state))
        out = status_text(self.app, tone, label, symbol="")
        out.append(f"  {REDACTOR.redact(d.ref)}", style="bold")
        out.append(f"  ({LAYER_LABEL.get(d.layer, d.layer)})", style="dim")
        if d.destructive:
            out.append("\nDESTRUCTIVE: the repair deletes this", style=tones["fail"])
        if d.note:
            out.append("\n" + REDACTOR.redact(d.note), style="italic")
        if d.diff or not d.destructive:
            out.append_text(diff_lines(self.app, d.lines()))
        self.query_one("#drift-diff", Static).update(out)

    # --- the plan tab -----------------------------------------------------------------------------

    def _fill_plan(self, plan: Any) -> None:
        self.shown_plan = plan
        table = self.query_one("#plan-table", DataTable)
        cursor = table.cursor_row
        width = self._table_width(table)
        status_w = 18 if width >= 90 else 14
        obj_w = max(18, width - 3 - 13 - status_w - 6)
        marked = set(self.cause_steps())
        tones = Tones.of(self.app)
        with self.app.batch_update():
            table.clear(columns=True)
            self._plan_rows.clear()
            table.add_column("", key="n", width=3)
            table.add_column("Step", key="what", width=13)
            table.add_column("Object", key="ref", width=obj_w)
            table.add_column("Status", key="status", width=status_w)
            if plan is not None:
                for n, step in enumerate(plan.steps, 1):
                    todo = [c for c in step.changes if c.action != "unchanged"]
                    key = f"step:{step.name}"
                    self._plan_rows[key] = ("step", step)
                    mark = "◆" if step.name in marked else ""
                    title = Text(REDACTOR.redact(step.title), style="bold", no_wrap=True, overflow="ellipsis")
                    if not todo and step.name != "rollout":
                        title.stylize("dim")
                    table.add_row(Text(f"{mark}{n}", style="bold"), Text(STEP_LABEL.get(step.name, step.name), style="bold"), title,
                                  self._step_cell(step), key=key)
                    for i, c in enumerate(todo):
                        ckey = f"c:{step.name}:{i}"
                        self._plan_rows[ckey] = ("change", c)
                        tone, word = ACTION.get(c.action, ("info", c.action))
                        ref = Text(no_wrap=True, overflow="ellipsis")
                        if c.destructive:
                            ref.append("DESTROYS ", style=tones["fail"])
                        ref.append(REDACTOR.redact(c.ref))
                        table.add_row(Text(""), status_text(self.app, tone, word, symbol=""), ref, self._change_cell(c), key=ckey)
        sub = ""
        if plan is not None:
            sub = REDACTOR.redact(plan.summary())
            if plan.destructive:
                sub += f" · {len(plan.destructive)} destructive"
        table.border_subtitle = sub
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1), animate=False)
            self._show_plan_row(str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value))
        else:
            self.query_one("#plan-detail", Static).update(Text("The plan comes with the drift." if plan is None else "", style="italic"))

    def _step_cell(self, step: Any) -> Text:
        p = self.steps.get(step.name)
        if p is not None:
            return status_text(self.app, p.status, p.text or p.status)
        todo = [c for c in step.changes if c.action != "unchanged"]
        if step.name == "rollout":
            return status_text(self.app, "pending", "waits for pods")
        if not todo:
            return status_text(self.app, "skip", "nothing to do", symbol="")
        return status_text(self.app, "pending", f"{len(todo)} change{'s' if len(todo) != 1 else ''}", symbol="·")

    def _change_cell(self, c: Any) -> Text:
        p = self.changes.get(c.ref)
        if p is not None:
            return status_text(self.app, p.status, p.text)
        return status_text(self.app, "pending", "to do", symbol="·")

    @on(DataTable.RowHighlighted, "#plan-table")
    def _plan_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_plan_row(str(event.row_key.value))

    def _show_plan_row(self, key: str) -> None:
        row = self._plan_rows.get(key)
        if row is None:
            return
        kind, obj = row
        tones = Tones.of(self.app)
        out = Text()
        if kind == "step":
            out.append(f"{STEP_LABEL.get(obj.name, obj.name)}: {REDACTOR.redact(obj.title)}", style="bold")
            if obj.name in self.cause_steps():
                out.append("\n◆ fixes the Doctor's cause", style=tones["warn"])
            todo = [c for c in obj.changes if c.action != "unchanged"]
            kept = len(obj.changes) - len(todo)
            out.append(f"\n{len(todo)} change(s)" + (f", {kept} unchanged" if kept else ""), style="dim")
            p = self.steps.get(obj.name)
            if p is not None and p.text:
                out.append("\n")
                out.append_text(status_text(self.app, p.status, p.text))
        else:
            c = obj
            tone, word = ACTION.get(c.action, ("info", c.action))
            out.append_text(status_text(self.app, tone, word, symbol=""))
            out.append(f"  {REDACTOR.redact(c.ref)}", style="bold")
            done = self.changes.get(c.ref)
            if done is not None:
                out.append("  ")
                out.append_text(status_text(self.app, done.status, done.text))
            if c.destructive:
                out.append("\nDESTRUCTIVE: " + REDACTOR.redact(c.note or f"{c.action} {c.ref}"), style=tones["fail"])
            elif c.note:
                out.append("\n" + REDACTOR.redact(c.note), style="italic")
            if c.diff or c.action != "delete":
                out.append_text(diff_lines(self.app, c.lines()))
        self.query_one("#plan-detail", Static).update(out)

    # --- banners ----------------------------------------------------------------------------------

    def _render_banners(self) -> None:
        tones = Tones.of(self.app)
        # the lock
        banner = self.query_one("#lock-banner", Horizontal)
        takeover = self.query_one("#takeover", Button)
        info = self.lock
        if info is not None:
            stale = bool(info.stale)
            t = Text()
            t.append("Platform lock ", style="bold")
            t.append(lock_words(info))
            if stale:
                t.append(" — stale: its run probably crashed; it can be taken over (t)", style=tones["warn"])
            else:
                t.append(" — another wizard is changing this platform: Repair and Rollback wait until it is released", style=tones["fail"])
            self.query_one("#lock-text", Static).update(t)
            banner.set_class(not stale, "-held")
            banner.set_class(stale, "-stale")
            banner.remove_class("hidden")
            takeover.set_class(not stale, "hidden")
        elif self.lock_error:
            self.query_one("#lock-text", Static).update(Text(f"The platform lock could not be read: {self.lock_error}", style="italic"))
            banner.remove_class("hidden")
            takeover.add_class("hidden")
        else:
            banner.add_class("hidden")
        # runs that stopped halfway
        box = self.query_one("#interrupted-box", Horizontal)
        runs = list(getattr(self.report, "interrupted", []) or []) if self.report is not None else []
        if runs:
            t = Text()
            for i, r in enumerate(runs):
                if i:
                    t.append("\n")
                t.append("Stopped halfway: " if not r.still_running else "Running elsewhere: ", style="bold")
                t.append(REDACTOR.redact(r.describe()))
            self.query_one("#interrupted-text", Static).update(t)
            self.query_one("#resume", Button).set_class(all(r.still_running for r in runs), "hidden")
            box.remove_class("hidden")
        else:
            box.add_class("hidden")
        # layers that could not be compared
        pbox = self.query_one("#problems-box", Horizontal)
        problems = list(getattr(self.report, "problems", []) or []) if self.report is not None else []
        if problems:
            t = Text()
            for i, p in enumerate(problems):
                if i:
                    t.append("\n")
                t.append(f"✗ {p.layer} not compared: ", style="bold")
                t.append(REDACTOR.redact(p.message))
                if p.remediation:
                    t.append(f"\n  → {REDACTOR.redact(p.remediation)}")
            self.query_one("#problems-text", Static).update(t)
            self.query_one("#to-credentials", Button).set_class(not any(p.kind == "credentials" for p in problems), "hidden")
            pbox.remove_class("hidden")
        else:
            pbox.add_class("hidden")

    def _render_head(self) -> None:
        if not self.query("#recovery-head"):
            return
        st = self.state
        if st == "waiting":
            head = status_text(self.app, "running", "Connecting to the platform…")
        elif st == "comparing":
            head = status_text(self.app, "running", "Comparing keybuzz.yaml and the keyring with the live platform…")
        elif st == "repairing":
            running = next((STEP_LABEL.get(n, n) for n in ORDER if (p := self.steps.get(n)) and p.status == "running"), "")
            head = status_text(self.app, "running", "Repairing" + (f": {running}" if running else "…"))
            head.append(" · c stops at the next safe point", style="")
        elif st == "cancelling":
            head = status_text(self.app, "running", "Stopping at the next safe point…")
        elif st == "validating":
            head = status_text(self.app, "running", "Repaired; validating the platform…")
        elif st == "error":
            head = status_text(self.app, "fail", f"Cannot compare: {self.error}")
        elif self.report is None:
            head = status_text(self.app, "pending", "Not compared yet (r compares)")
        else:
            r = self.report
            tone = "fail" if r.problems else "warn" if r.items else "ok"
            head = status_text(self.app, tone, "Drift: " + REDACTOR.redact(r.summary()))
            if r.topology:
                head.append(f" · topology {r.topology}", style="")
        if self.lock is not None:
            head.append(" · lock " + ("stale" if self.lock.stale else "held"), style=Tones.of(self.app)["warn" if self.lock.stale else "fail"])
        self.query_one("#recovery-head", Static).update(head)

    # --- repair -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot act now are hidden (False) or greyed (None)."""
        if action == "cancel":
            return self.state == "repairing"
        if action == "take_over":
            return self.lock is not None and bool(self.lock.stale) and not self.busy
        if action == "resume":
            return bool(getattr(self.report, "interrupted", None)) and not self.busy
        if action == "rollback":
            return bool(self.rb_app and self.rb_revision is not None and not self.busy)
        if action in ("repair", "compare"):
            return None if self.busy else True
        return True

    @on(Button.Pressed, "#repair")
    def _repair_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_repair()

    @on(Button.Pressed, "#resume")
    def action_resume(self) -> None:
        self.action_repair(resume=True)

    def action_repair(self, resume: bool = False) -> None:
        """Plan → confirm (twice when destructive) → repair → validate."""
        if self.busy:
            self.notify("A repair or rollback is already running.", title="Recovery", severity="warning")
            return
        plan = self.plan
        if plan is None:
            self.notify("The drift is not computed yet (r compares).", title="Recovery", severity="warning")
            return
        if self.lock is not None and not self.lock.stale and not self.take_over:
            self.notify(f"Refused: the platform lock is {lock_words(self.lock)}. Another wizard is changing this platform: "
                        "wait until it finishes (or ask its holder), then compare again (r).",
                        title="Repair refused", severity="error", markup=False, timeout=12)
            return
        if plan.problems or plan.blocked:
            self.notify("Refused: " + ("some layers could not be compared (see the red box); fix that first, then compare again."
                                       if plan.problems else "the server would refuse some objects; see the plan."),
                        title="Repair refused", severity="error", markup=False, timeout=10)
            return
        if self.shown_plan is not plan:
            self.steps.clear()
            self.changes.clear()
            self._fill_plan(plan)
        self.query_one("#recovery-tabs", TabbedContent).active = "tab-plan"
        title = ("Resume: " if resume else "Repair: ") + REDACTOR.redact(plan.summary()) + "?"
        self.app.push_screen(PlanConfirm(title, self._plan_markdown(plan, resume), yes="Continue" if plan.destructive else "Repair"),
                             lambda yes: self._confirmed(plan, bool(yes)))

    def _plan_markdown(self, plan: Any, resume: bool) -> str:
        lines = []
        if resume:
            lines += ["The run that stopped halfway is finished by planning against the live state: the plan holds only what remains.", ""]
        lines += ["The repair runs these steps in this order, journaled, holding the platform lock:", ""]
        for n, s in enumerate(plan.steps, 1):
            todo = [c for c in s.changes if c.action != "unchanged"]
            what = "" if s.name == "rollout" else f": {len(todo)} change(s)" if todo else ": nothing to do"
            lines.append(f"{n}. **{STEP_LABEL.get(s.name, s.name)}** — {REDACTOR.redact(s.title)}{what}")
        if plan.needs_generation:
            lines += ["", f"Missing generated secrets are generated into the keyring first: {', '.join(plan.needs_generation)}."]
        if plan.destructive:
            lines += ["", f"**Destructive:** {len(plan.destructive)} object(s) are deleted in the cleanup step, last, once the new "
                      "pods serve. You confirm them separately next, with the exact list."]
        if plan.warnings:
            lines += ["", *(f"- {REDACTOR.redact(w)}" for w in plan.warnings)]
        lines += ["", "`c` stops the repair at the next safe point: what was applied stays applied (the journal records it) "
                  "and the next repair finishes it. A validation runs at the end."]
        return "\n".join(lines)

    def _confirmed(self, plan: Any, yes: bool) -> None:
        if not yes:
            self.notify("Nothing was changed.", title="Repair")
            return
        if plan.destructive:
            self.app.push_screen(DestroyConfirm(plan.destructive_lines()), lambda ok: self._destroy_answered(plan, bool(ok)))
            return
        self.start_repair(plan, allow_destructive=False)

    def _destroy_answered(self, plan: Any, ok: bool) -> None:
        if not ok:
            self.notify("Nothing was changed: the destructive changes were declined. To keep those objects, remove them "
                        "from the platform by hand or change keybuzz.yaml, then compare again.",
                        title="Repair not started", severity="warning", markup=False, timeout=10)
            return
        self.start_repair(plan, allow_destructive=True)

    def start_repair(self, plan: Any, *, allow_destructive: bool) -> None:
        self.state = "repairing"
        self.result = None
        self.validation = None
        self.steps.clear()
        self.changes.clear()
        self._rollout.clear()
        for s in plan.steps:
            todo = [c for c in s.changes if c.action != "unchanged"]
            self.steps[s.name] = Progress("pending", "waiting") if todo or s.name == "rollout" else Progress("skip", "nothing to do")
        self._fill_plan(plan)
        self._render_result()
        self._render_head()
        self.refresh_bindings()
        self._allow_destructive = allow_destructive
        self._repair(self.app.bridge, plan, allow_destructive, self.take_over)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="repair", description="repair the platform")
    def _repair(self, bridge: Any, plan: Any, allow_destructive: bool, take_over: bool) -> None:
        from keybuzz_tui.engine import recovery
        from keybuzz_tui.engine.lock import LockHeld

        try:
            with bridge.run(self, name="repair", applying=True) as ctx:
                try:
                    result = recovery.repair(ctx, plan, allow_destructive=allow_destructive, take_over=take_over)
                except LockHeld as e:
                    self.post_message(self.LockBlocked(e.info, "repair"))
                    return
                except recovery.RepairRefused as e:
                    self.post_message(self.Refused(str(e), e.remediation))
                    return
            self.post_message(self.Repaired(result))
            if result.ok:
                self._validate_now(bridge, bool(result.changed or result.deleted))
        except Cancelled:
            self.post_message(self.Failed("repair", "cancelled"))
        except Exception as e:
            self.post_message(self.Failed("repair", safe_error(e), str(getattr(e, "remediation", "") or "")))
        self._drift_now(bridge, after_repair=True)

    def _validate_now(self, bridge: Any, changed: bool) -> None:
        """(In a thread) validate; right after changes, give health checks and caches time to settle."""
        from keybuzz_tui.engine import validate

        with bridge.run(self, name="validate") as ctx:
            deadline = time.monotonic() + (VALIDATE_SETTLE if changed else 0.0)
            while True:
                rep = validate.validate(ctx)
                failing = [r for r in rep.results if r.status == "fail"]
                if not failing or rep.cancelled or time.monotonic() >= deadline:
                    break
                self.post_message(self.Validated(rep, final=False))
                if ctx.cancel.wait(VALIDATE_RETRY):
                    break
        self.post_message(self.Validated(rep, final=True))

    def on_engine_event(self, message: EngineEvent) -> None:
        if self.state in ("repairing", "cancelling"):
            self.apply_event(message.event)

    def apply_event(self, e: ev.Event) -> None:
        """Progress per step from the repair's events (only the cells that change)."""
        step = e.step
        if isinstance(e, ev.StepStarted) and step in ORDER:
            self._set_step(step, "running", "running")
        elif isinstance(e, ev.StepFinished) and step in ORDER:
            self._set_step(step, e.status if e.status in ("ok", "warn", "fail", "skip") else "info", REDACTOR.redact(e.summary or e.status))
        elif isinstance(e, ev.RolloutProgress):
            self._rollout[e.app] = f"{e.ready}/{e.desired}"
            self._set_step("rollout", "running", ", ".join(f"{a.removeprefix('keybuzz-')} {v}" for a, v in sorted(self._rollout.items())))
        elif isinstance(e, ev.ActionProgress) and step == "load_balancer":
            self._set_step("load_balancer", "running", f"{e.command} {e.progress}%")
        elif isinstance(e, ev.ObjectApplied):
            ref = f"{e.kind} {e.namespace}/{e.name}" if e.namespace else f"{e.kind} {e.name}"
            if e.action == "unchanged":
                return
            self._set_change(ref, "ok", "deleted" if e.action == "delete" else "applied")
            owner = next((s.name for s in (self.shown_plan.steps if self.shown_plan else []) if any(c.ref == ref for c in s.changes)), None)
            if owner and self.steps.get(owner, Progress()).status in ("pending",):
                self._set_step(owner, "running", "running")

    def _set_step(self, name: str, status: str, text: str) -> None:
        p = self.steps.get(name)
        if p is not None and (p.status, p.text) == (status, text):
            return
        self.steps[name] = Progress(status, text)
        table = self.query_one("#plan-table", DataTable)
        key = f"step:{name}"
        if key in table.rows:
            with self.app.batch_update():
                table.update_cell(key, "status", status_text(self.app, status, text))
            self._refresh_plan_detail(key)
        self._render_head()

    def _set_change(self, ref: str, status: str, text: str) -> None:
        p = self.changes.get(ref)
        if p is not None and (p.status, p.text) == (status, text):
            return
        self.changes[ref] = Progress(status, text)
        table = self.query_one("#plan-table", DataTable)
        with self.app.batch_update():
            for key, (kind, obj) in self._plan_rows.items():
                if kind == "change" and obj.ref == ref and key in table.rows:
                    table.update_cell(key, "status", status_text(self.app, status, text))
                    self._refresh_plan_detail(key)

    def _refresh_plan_detail(self, key: str) -> None:
        """The detail pane follows the progress of the row it shows."""
        table = self.query_one("#plan-table", DataTable)
        if table.row_count and str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value) == key:
            self._show_plan_row(key)

    @on(Repaired)
    def _repaired(self, msg: Repaired) -> None:
        res = msg.result
        self.result = res
        for o in res.steps:
            status = o.status if o.status in ("ok", "warn", "fail", "skip") else "info"
            self._set_step(o.name, status, REDACTOR.redact(o.summary or o.status))
        for name, p in list(self.steps.items()):
            if p.status in ("pending", "running"):
                self._set_step(name, "skip", "not reached")
        if res.status == "ok":
            self.state = "validating"
            self.take_over = False
        elif res.status == "cancelled":
            self.state = "failed"
            self.notify("The repair stopped at a safe point. What was applied stays applied and is in the journal; the runs "
                        "list below shows what remains, and the next repair (Resume) finishes it.",
                        title="Repair stopped", severity="warning", markup=False, timeout=12)
        else:
            self.state = "failed"
            self.notify(REDACTOR.redact(res.message + (f"\n→ {res.remediation}" if res.remediation else "")),
                        title="Repair failed", severity="error", markup=False, timeout=15)
        self._render_result()
        self._render_head()
        self.refresh_bindings()

    @on(Validated)
    def _validated(self, msg: Validated) -> None:
        self.validation = msg.report
        if msg.final:
            self.state = "done"
            failing = [r.check for r in msg.report.results if r.status == "fail"]
            if failing:
                self.notify(f"{len(failing)} check(s) fail after the repair: {', '.join(failing)}. The board (b) shows where.",
                            title="Validation", severity="error", markup=False, timeout=12)
            else:
                self.notify("Every check is green. b opens the live validation board.", title="Repaired", markup=False)
        self._render_result()
        self._render_head()
        self.refresh_bindings()

    @on(LockBlocked)
    def _lock_blocked(self, msg: LockBlocked) -> None:
        self.lock = msg.info
        if msg.what == "repair":
            self.state = "ready"
        self._render_banners()
        self._render_head()
        self.refresh_bindings()
        if msg.what == "repair":
            for p in self.steps.values():
                p.status, p.text = "pending", "not started"
            self._fill_plan(self.shown_plan)
        what = "repair" if msg.what == "repair" else "rollback"
        if msg.info.stale and not self.take_over:
            self._ask_take_over(lambda: self._retry_after_takeover(msg.what))
            return
        self.notify(f"Refused: the platform lock is {lock_words(msg.info)}. Another wizard is changing this platform: wait until "
                    f"it finishes (or ask its holder), then try again. Nothing was changed by this {what}.",
                    title=f"{what.capitalize()} refused", severity="error", markup=False, timeout=12)

    def _retry_after_takeover(self, what: str) -> None:
        if what == "repair" and self.plan is not None:
            self.start_repair(self.plan, allow_destructive=self._allow_destructive)
        elif what == "rollback" and self.rb_app and self.rb_revision is not None:
            self._start_rollback(self.rb_app, self.rb_revision)

    @on(Refused)
    def _refused(self, msg: Refused) -> None:
        self.state = "ready"
        self.steps.clear()
        self._fill_plan(self.shown_plan)
        self._render_head()
        self.refresh_bindings()
        self.notify(REDACTOR.redact(msg.message + (f"\n→ {msg.remediation}" if msg.remediation else "")),
                    title="Repair refused: nothing was changed", severity="error", markup=False, timeout=15)

    @on(Failed)
    def _failed(self, msg: Failed) -> None:
        if msg.what == "compare":
            if msg.error == "cancelled":
                return
            self.state = "error"
            self.error = msg.error
        else:
            self.state = "failed"
            self.result = None
            self.error = msg.error
        self._render_result(msg.error, msg.remediation)
        self._render_head()
        self.refresh_bindings()
        self.notify(msg.error + (f"\n→ {msg.remediation}" if msg.remediation else ""), title="Recovery", severity="error", markup=False)

    def _render_result(self, error: str = "", remediation: str = "") -> None:
        box = self.query_one("#recovery-result", Static)
        for cls in ("ok-box", "error-box", "warn-box"):
            box.remove_class(cls)
        res, val = self.result, self.validation
        t = Text()
        cls = ""
        if error and res is None:
            t.append(f"✗ {error}", style="bold")
            if remediation:
                t.append(f"\n→ {remediation}")
            cls = "error-box"
        elif res is not None and res.status == "cancelled":
            t.append("Stopped at a safe point. ", style="bold")
            t.append("What was applied stays applied and is in the journal; the next repair (Resume) finishes it.")
            cls = "warn-box"
        elif res is not None and res.status != "ok":
            t.append(f"✗ Repair failed: {REDACTOR.redact(res.message)}", style="bold")
            if res.remediation:
                t.append(f"\n→ {REDACTOR.redact(res.remediation)}")
            cls = "error-box"
        elif res is not None:
            done = f"Repaired: {len(res.changed)} change(s), {len(res.deleted)} deletion(s)."
            if val is None:
                t.append(f"✓ {done} ", style="bold")
                t.append("Validating…")
                cls = "ok-box"
            else:
                failing = [r.check for r in val.results if r.status == "fail"]
                if not failing and self.state == "done":
                    t.append(f"✓ {done} Validation: every check green ({len(val.results)}/{len(val.results)}). ", style="bold")
                    t.append("b opens the live board.")
                    cls = "ok-box"
                elif not failing:
                    t.append(f"✓ {done} ", style="bold")
                    t.append("Validating…")
                    cls = "ok-box"
                else:
                    word = "fail" if self.state == "done" else "still settling"
                    t.append(f"! {done} Validation: {len(failing)} check(s) {word}: {', '.join(failing)}. ", style="bold")
                    t.append("b opens the board (where it breaks); the Doctor says why." if self.state == "done" else "Checking again…")
                    cls = "error-box" if self.state == "done" else "warn-box"
        if not cls:
            box.add_class("hidden")
            return
        box.update(t)
        box.add_class(cls)
        box.remove_class("hidden")

    @property
    def green(self) -> bool:
        """The repair ended on a validation with every check ok."""
        return self.state == "done" and self.validation is not None and all(r.status == "ok" for r in self.validation.results)

    # --- cancel, lock takeover, navigation ----------------------------------------------------------

    def action_cancel(self) -> None:
        if self.state != "repairing":
            return
        self.state = "cancelling"
        self._render_head()
        self.refresh_bindings()
        bridge = getattr(self.app, "bridge", None)
        if bridge is not None:
            bridge.cancel_owner(self, "the operator cancelled the repair")
        self.notify("Stopping at the next safe point (between two API calls). What was applied stays applied and is in the "
                    "journal; the next repair finishes it.", title="Repair", markup=False, timeout=10)

    @on(Button.Pressed, "#takeover")
    def action_take_over(self) -> None:
        if self.lock is None or not self.lock.stale or self.busy:
            return
        self._ask_take_over(lambda: self.action_repair())

    def _ask_take_over(self, then: Any) -> None:
        info = self.lock
        body = (f"The platform lock is {lock_words(info)}: it looks stale (its holder stopped renewing it; its run probably "
                "crashed).\n\nTaking it over lets this wizard change the platform; the takeover is written to the journal. "
                "Only do it if you are sure nobody else is changing this platform right now.")

        def answered(choice: str | None) -> None:
            if choice == "take":
                self.take_over = True
                self.notify("The stale lock will be taken over by the next repair or rollback (journaled).", title="Lock", markup=False)
                then()

        self.app.push_screen(ConfirmModal("Take over a stale platform lock?", body,
                                          [("cancel", "Leave it", "default"), ("take", "Take it over", "warning")]), answered)

    @on(Button.Pressed, "#compare")
    def _compare_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_compare()

    @on(Button.Pressed, "#board")
    def action_board(self) -> None:
        if self.busy:
            self.notify("A repair is running: wait for it, or c stops it first.", title="Recovery", severity="warning")
            return
        open_board(self.app)

    @on(Button.Pressed, "#doctor")
    def _doctor_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if self.busy:
            self.notify("A repair is running: wait for it, or c stops it first.", title="Recovery", severity="warning")
            return
        open_doctor(self.app)

    @on(Button.Pressed, "#to-credentials")
    def _to_credentials(self, event: Button.Pressed) -> None:
        event.stop()
        if not go_step(self.app, "credentials"):
            self.notify("Store the missing secrets (keybuzz-tui credentials set NAME), then compare again.", title="Credentials")

    def action_tab(self, tab: str) -> None:
        self.query_one("#recovery-tabs", TabbedContent).active = tab

    def action_back(self) -> None:
        app: Any = self.app
        if self.busy:
            def answered(choice: str | None) -> None:
                if choice == "stop":
                    self.action_cancel()

            app.push_screen(ConfirmModal(
                "A repair is running",
                "Leaving now would stop it. Stop it at the next safe point (what was applied stays applied; the next repair "
                "finishes it), or stay and let it finish?",
                [("stay", "Stay", "primary"), ("stop", "Stop at a safe point", "warning")]), answered)
            return
        if len(app.screen_stack) > 1 and app.screen is self:
            app.pop_screen()

    def action_wizard_step(self, which: str) -> None:
        if self.busy:
            self.notify("A repair is running: wait for it, or c stops it first.", title="Recovery", severity="warning")
            return
        leave_for_step(self.app, which)

    # --- rollback ---------------------------------------------------------------------------------

    @on(TabbedContent.TabActivated, "#recovery-tabs")
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-rollback" and self.rb_app is None:
            ol = self.query_one("#rb-apps", OptionList)
            if ol.option_count:
                ol.highlighted = 0
                ol.focus()

    @on(OptionList.OptionHighlighted, "#rb-apps")
    def _app_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        name = event.option.id or ""
        if name and name != self.rb_app:
            self.load_revisions(name)

    def load_revisions(self, app_name: str) -> None:
        self.rb_app = app_name
        self.rb_revision = None
        self.revisions = []
        self._fill_revisions()
        self.query_one("#rb-diff", Static).update(Text(f"Reading {app_name}'s revisions…", style="italic"))
        if getattr(self.app, "endpoints", None) is not None:
            self._load_revisions(self.app.bridge, app_name)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollback-list", description="read the DaemonSet's revisions")
    def _load_revisions(self, bridge: Any, app_name: str) -> None:
        from keybuzz_tui.engine import recovery

        try:
            with bridge.run(self, name="revisions") as ctx:
                revs = recovery.revisions(ctx, app_name)
            self.post_message(self.RevisionsLoaded(app_name, revs))
        except Exception as e:
            rem = str(getattr(e, "remediation", "") or "")
            self.post_message(self.RevisionsLoaded(app_name, [], safe_error(e) + (f" → {rem}" if rem else "")))

    @on(RevisionsLoaded)
    def _revisions_loaded(self, msg: RevisionsLoaded) -> None:
        if msg.app_name != self.rb_app:
            return
        self.revisions = list(msg.revisions)
        self._fill_revisions()
        if msg.error:
            self.query_one("#rb-diff", Static).update(Text(f"✗ {REDACTOR.redact(msg.error)}", style="bold"))
            return
        older = [r for r in self.revisions if not r.current]
        if older:
            self._select_revision(older[-1].revision)
        elif self.revisions:
            self._select_revision(self.revisions[-1].revision)

    def _fill_revisions(self) -> None:
        table = self.query_one("#rb-table", DataTable)
        width = self._table_width(table) - (0 if self.has_class("-wide") else 0)
        img_w = max(16, width - 5 - 20 - 10 - 6)
        with self.app.batch_update():
            table.clear(columns=True)
            table.add_column("Rev", key="rev", width=5)
            table.add_column("Images", key="images", width=img_w)
            table.add_column("Created", key="created", width=20)
            table.add_column("", key="current", width=10)
            for r in reversed(self.revisions):
                table.add_row(plain(str(r.revision)), plain(", ".join(r.images)), plain(r.created.replace("T", " ").rstrip("Z")),
                              status_text(self.app, "ok", "running") if r.current else Text(""), key=str(r.revision))
        table.border_title = f"{self.rb_app}: {len(self.revisions)} revision(s)" if self.rb_app else "Revisions"

    def _select_revision(self, revision: int) -> None:
        table = self.query_one("#rb-table", DataTable)
        key = str(revision)
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)
        self._show_revision(revision)

    @on(DataTable.RowHighlighted, "#rb-table")
    def _revision_highlighted(self, event: DataTable.RowHighlighted) -> None:
        try:
            self._show_revision(int(str(event.row_key.value)))
        except ValueError:
            pass

    def _show_revision(self, revision: int) -> None:
        r = next((x for x in self.revisions if x.revision == revision), None)
        if r is None:
            return
        self.rb_revision = revision
        button = self.query_one("#rb-go", Button)
        out = Text()
        out.append(f"{self.rb_app} revision {r.revision}", style="bold")
        out.append(f"  {', '.join(r.images)}")
        if r.change_cause:
            out.append(f"\nchange cause: {REDACTOR.redact(r.change_cause)}", style="italic")
        if r.created:
            out.append(f"\ncreated {r.created}", style="dim")
        if r.current:
            out.append("\nThis is the running revision: nothing to roll back to.", style="dim")
            button.disabled = True
            button.label = "Roll back…"
        else:
            out.append("\nRolling back to it changes:", style="bold")
            out.append_text(diff_lines(self.app, r.lines()))
            button.disabled = self.busy
            button.label = f"Roll back to revision {r.revision}…"
        self.query_one("#rb-diff", Static).update(out)
        self.refresh_bindings()

    @on(Button.Pressed, "#rb-go")
    def action_rollback(self) -> None:
        if self.busy or not self.rb_app or self.rb_revision is None:
            return
        r = next((x for x in self.revisions if x.revision == self.rb_revision), None)
        if r is None or r.current:
            return
        if self.lock is not None and not self.lock.stale and not self.take_over:
            self.notify(f"Refused: the platform lock is {lock_words(self.lock)}. Wait until it is released.",
                        title="Rollback refused", severity="error", markup=False, timeout=12)
            return
        diff = "\n".join(REDACTOR.redact(line) for line in r.lines()[:30]) or "(no template difference)"
        body = (f"The DaemonSet **{self.rb_app}** goes back to revision {r.revision} ({', '.join(r.images)}), as `kubectl rollout "
                f"undo` does, and the rollout is watched. What changes:\n\n```\n{diff}\n```\n\n"
                "keybuzz.yaml is not changed: the next comparison shows the difference, so you decide whether to pin the old "
                "image there or repair forward again. The rollback holds the platform lock and is journaled.")
        app_name, rev = self.rb_app, r.revision
        self.app.push_screen(PlanConfirm(f"Roll {app_name} back to revision {rev}?", body, yes="Roll back"),
                             lambda yes: self._start_rollback(app_name, rev) if yes else None)

    def _start_rollback(self, app_name: str, revision: int) -> None:
        self.rb_busy = True
        self.query_one("#rb-go", Button).disabled = True
        self.query_one("#rb-diff", Static).update(Text(f"Rolling {app_name} back to revision {revision}… (the rollout is watched)", style="italic"))
        self.refresh_bindings()
        self._rollback(self.app.bridge, app_name, revision, self.take_over)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollback", description="roll an app back")
    def _rollback(self, bridge: Any, app_name: str, revision: int, take_over: bool) -> None:
        from keybuzz_tui.engine import recovery
        from keybuzz_tui.engine.lock import LockHeld

        try:
            with bridge.run(self, name="rollback", applying=True) as ctx:
                try:
                    res = recovery.rollback(ctx, app_name, revision, take_over=take_over)
                except LockHeld as e:
                    self.post_message(self.RolledBack(None, "locked"))
                    self.post_message(self.LockBlocked(e.info, "rollback"))
                    return
            self.post_message(self.RolledBack(res))
        except Exception as e:
            self.post_message(self.RolledBack(None, safe_error(e), str(getattr(e, "remediation", "") or "")))

    @on(RolledBack)
    def _rolled_back(self, msg: RolledBack) -> None:
        self.rb_busy = False
        self.refresh_bindings()
        if msg.error == "locked":
            if self.rb_revision is not None:
                self._show_revision(self.rb_revision)
            return
        if msg.error:
            self.notify(msg.error + (f"\n→ {msg.remediation}" if msg.remediation else ""), title="Rollback failed", severity="error", markup=False)
        else:
            res = msg.result
            self.take_over = False
            ok = res.ok
            text = REDACTOR.redact(res.message or f"{res.app} rolled back to revision {res.to_revision}")
            if not ok and res.rollout is not None:
                text += f" — the rollout did not complete: {REDACTOR.redact(res.rollout.summary)}"
            self.notify(text + " keybuzz.yaml is unchanged: compare again (r) to see the difference.", title="Rollback",
                        severity="information" if ok else "error", markup=False, timeout=10)
        if self.rb_app:
            self.load_revisions(self.rb_app)


def diff_lines(app: Any, lines: list[str]) -> Text:
    """A field diff, one line each: + added, - removed, ~ changed (the theme's success, error and
    warning colours; the sign says it without colour)."""
    tones = Tones.of(app)
    out = Text()
    for line in lines:
        line = REDACTOR.redact(line)
        style = {"+": tones["ok"], "-": tones["fail"], "~": tones["warn"]}.get(line[:1], Style())
        out.append("\n" + line, style=style)
    if not lines:
        out.append("\n(no field diff)", style="dim")
    return out


__all__ = ["DestroyConfirm", "RecoveryScreen", "diff_lines", "lock_words", "open_recovery"]
