"""Step 3, Ports: every port the install needs, who already holds it, and a free alternative.

One scan (a handful of LISTs, engine/ports.py) builds the inventory; every edit is re-checked
against that inventory, with no API call (`ports.check` is pure). `r` rescans; `p` runs the
optional node probe (short-lived hostNetwork pods, after a warning) that finds host processes
Kubernetes cannot see. Accepted edits change the answers (keybuzz.yaml on save).

Editing re-checks as you type: each change of the port field restarts a short timer (DEBOUNCE);
when it fires, the value is judged in a thread worker (the config checks and `ports.check`), so
typing never waits for it. One judgement at a time: a change that arrives while one is running
is judged when it returns (only the latest value). Enter (or the Re-check button) judges at once.
"""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar

from keybuzz_tui.screens.widgets import ConfirmModal, StepScreen, status_text, tone
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, Static

from keybuzz_tui.redact import safe_error

KIND_LABEL = {"hostPort": "hostPort", "nodePort": "NodePort", "ingressNodePort": "ingress NodePort", "lbListen": "LB listen"}
STATUS_LABEL = {"ok": ("ok", "free"), "info": ("ok", "expected"), "conflict": ("conflict", "taken"), "invalid": ("invalid", "invalid")}
# the holder (free text, often long) comes last, so the short columns are never pushed off-screen
COLUMNS = (("What", "what"), ("Port", "port"), ("Kind", "kind"), ("Status", "status"), ("Suggestion", "suggestion"), ("Holder", "holder"))
_PATH = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")


def what_of(c: Any) -> str:
    if c.kind == "ingressNodePort":
        return f"ingress {c.name.rsplit('-', 1)[-1]}"
    if c.kind == "lbListen":
        tail = c.title.split(": ", 1)[-1]
        return f"LB {tail.split()[0]}" if tail else "LB"
    return c.app


def row_cells(c: Any, app: Any = None) -> dict[str, Any]:
    st, word = STATUS_LABEL.get(c.status, ("info", c.status))
    holder = ", ".join(c.holders) if c.holders and c.status in ("conflict", "invalid") else ("—" if not c.holders else ", ".join(c.holders))
    sugg = ", ".join(str(p) for p in c.suggestions)
    return {
        "what": what_of(c),
        "port": Text(str(c.port), justify="right"),
        "kind": KIND_LABEL.get(c.kind, c.kind),
        "status": status_text(st, word, app),
        "holder": Text(holder, style=tone(app, "fail") if c.failed else "dim"),
        "suggestion": sugg,
    }


def get_field(cfg: Any, path: str) -> Any:
    obj = cfg
    for name, idx in _PATH.findall(path):
        obj = getattr(obj, name)
        if idx:
            obj = obj[int(idx)]
    return obj


def set_field(cfg: Any, path: str, value: Any) -> None:
    """Set a keybuzz.yaml field by its path ("apps[0].node_port", "ingress.http_node_port")."""
    parts = _PATH.findall(path)
    obj = cfg
    for name, idx in parts[:-1]:
        obj = getattr(obj, name)
        if idx:
            obj = obj[int(idx)]
    name, idx = parts[-1]
    if idx:
        getattr(obj, name)[int(idx)] = value
    else:
        setattr(obj, name, value)


class PortsScreen(StepScreen):
    STEP = "ports"
    CSS_PATH = "ports.tcss"
    HELP = """\
**Ports**: every port the install needs, checked against what the cluster already uses.

- **hostPort**: the API (8080) and Front (3000) listen on the node itself (hostNetwork), so the
  port must be free on every worker: other pods' hostPorts, hostNetwork workloads, K3s' own
  ports, ingress-nginx, NodePorts (kube-proxy holds them on every node), and, with the probe,
  host processes Kubernetes cannot see.
- **NodePort**: cluster-wide; must be inside the cluster's NodePort range and not allocated to
  another Service.
- **ingress NodePort**: ingress-nginx's http/https NodePorts (31695/32720), expected to be held by
  the ingress-nginx Service.
- **LB listen**: the Hetzner Load Balancer's listen ports (80/443).

Select a row (↑↓) to read who holds the port and what to do; Enter (or *e*) edits it. Type a new
port: it is re-checked as you type against the last scan (no new API call), the row and the
summary follow; Enter re-checks at once. Invalid values are refused with the reason as you type.
*r* rescans the cluster; *p* runs the optional probe, which starts one short-lived hostNetwork pod
per worker (labelled, removed afterwards) to see what really listens.

Keys: ↑↓ select a row, Enter / *e* edit its port, *r* rescan, *p* probe the workers, *tab* moves
between the table and the port field.
"""
    BINDINGS: ClassVar[list[Any]] = [
        Binding("r", "rescan", "Rescan", id="ports.rescan", tooltip="Scan the cluster again (a handful of API calls)"),
        Binding("p", "probe", "Probe nodes", id="ports.probe", tooltip="Find host processes with short-lived probe pods (asks first)"),
        Binding("e", "edit", "Edit port", id="ports.edit", tooltip="Edit the selected port (also: Enter on a row)"),
    ]

    class Scanned(Message):
        def __init__(self, inventory: Any, checks: list[Any], error: str, probed: bool) -> None:
            super().__init__()
            self.inventory = inventory
            self.checks = checks
            self.error = error
            self.probed = probed

    def __init__(self) -> None:
        super().__init__()
        self.checks: list[Any] = []
        self.inventory: Any = None
        self._selected: str | None = None  # the field of the selected row
        self._cells: dict[str, dict[str, str]] = {}
        self.scanning = False
        # live re-check while typing: the debounce timer, the judgement in flight, the latest value
        self._debounce: Any = None
        self._judging: Any = None  # the judgement's worker while it runs
        self._pending: tuple[str, str] | None = None  # (field, raw) typed while a judgement ran
        self.judged = 0  # judgements run (for tests: typing fast runs few of them)

    def compose_body(self) -> ComposeResult:
        yield Static(Text("scanning the cluster's ports…", style="italic"), id="ports-summary")
        table: DataTable[Any] = DataTable(id="ports-table", cursor_type="row", zebra_stripes=True)
        yield table
        with Vertical(id="port-detail", classes="panel") as p:
            p.border_title = "Selected port"
            yield Static("", id="port-text")
            with Horizontal(id="edit-row"):
                yield Label("New port:", id="edit-label")
                yield Input(placeholder="1-65535", type="integer", max_length=5, id="port-input")
                yield Button("Re-check", id="port-apply")
            yield Static("", id="edit-error")

    def on_mount(self) -> None:
        table = self.query_one("#ports-table", DataTable)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        self.watch(self.app, "world", self._world_changed, init=True)

    def _world_changed(self, world: str) -> None:
        if world == "ready" and self.inventory is None and not self.scanning:
            if self.kb.port_inventory is not None:
                self._show(self.kb.port_inventory, self.kb.port_checks)
            else:
                self.action_rescan()

    # --- scanning ------------------------------------------------------------------------------

    def action_rescan(self, probe: bool = False) -> None:
        if self.kb.endpoints is None:
            self.notify("Not connected yet.", severity="warning")
            return
        self.scanning = True
        what = "probing the workers (short-lived pods) and scanning…" if probe else "scanning the cluster's ports…"
        self.query_one("#ports-summary", Static).update(Text(what, style="italic"))
        self._scan(probe)

    def action_probe(self) -> None:
        body = (
            "The probe starts one short-lived pod per worker with hostNetwork, labelled "
            "app.kubernetes.io/part-of=keybuzz, that lists what really listens on the node (host "
            "processes Kubernetes cannot see, like an old nginx on 8080). The pods are removed "
            "afterwards, also if you cancel. It needs permission to create pods in the namespace."
        )

        def answered(choice: str | None) -> None:
            if choice == "probe":
                self.action_rescan(probe=True)

        self.app.push_screen(ConfirmModal("Probe the workers?", body, [("probe", "Start the probe", "warning"), ("cancel", "Cancel", "default")]), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ports-scan", description="scan the cluster's ports")
    def _scan(self, probe: bool) -> None:
        from keybuzz_tui.engine import ports

        try:
            with self.kb.bridge.run(self, name="ports-scan") as ctx:
                inv = ports.scan(ctx, probe=probe)
                checks = ports.check(ctx.config, inv)
                ports.emit_checks(ctx, checks)
        except Exception as e:
            self.post_message(self.Scanned(None, [], safe_error(e), probe))
            return
        self.post_message(self.Scanned(inv, checks, "", probe))

    @on(Scanned)
    def _scanned(self, msg: Scanned) -> None:
        self.scanning = False
        if msg.error:
            self.query_one("#ports-summary", Static).update(Text(f"✗ the scan failed: {msg.error}\n→ fix the cause, then press r to rescan", style=tone(self.app, "fail")))
            return
        self.kb.port_inventory, self.kb.port_checks = msg.inventory, msg.checks
        self._show(msg.inventory, msg.checks)

    # --- showing -------------------------------------------------------------------------------

    def _show(self, inv: Any, checks: list[Any]) -> None:
        self.inventory = inv
        table = self.query_one("#ports-table", DataTable)
        with self.app.batch_update():
            table.clear()
            self._cells.clear()
            for c in checks:
                cells = row_cells(c, self.app)
                table.add_row(*(cells[k] for _, k in COLUMNS), key=c.field)
                self._cells[c.field] = {k: _plain(v) for k, v in cells.items()}
        self.checks = list(checks)
        self._summary()
        if checks:
            first_bad = next((i for i, c in enumerate(checks) if c.failed), 0)
            table.move_cursor(row=first_bad)
            self._select(checks[first_bad].field)

    def _summary(self) -> None:
        inv, checks = self.inventory, self.checks
        bad = [c for c in checks if c.failed]
        lo, hi = inv.nodeport_range
        head = Text()
        if bad:
            head.append(f"✗ {len(bad)} port problem{'s' if len(bad) > 1 else ''}", style=tone(self.app, "fail"))
            head.append(": select the red row, read who holds it, type a free port")
        else:
            head.append(f"✓ {len(checks)} ports checked, no conflict", style=tone(self.app, "ok"))
        probed = " · probed" if inv.probed else ""
        head.append(f"\nNodePort range {lo}-{hi} · {inv.requests} API requests{probed}", style="dim")
        self.query_one("#ports-summary", Static).update(head)
        self.kb.mark_done(self.STEP, not bad)

    def repaint_theme(self) -> None:
        """The table's status and holder cells and the summary, in the new theme's colours."""
        if self.inventory is not None:
            selected = self._selected
            cursor = self.query_one("#ports-table", DataTable).cursor_row
            self._show(self.inventory, self.checks)
            self.query_one("#ports-table", DataTable).move_cursor(row=cursor)
            if selected:
                self._select(selected)

    def recheck(self, new: list[Any] | None = None) -> list[str]:
        """Judge the current answers against the last scan (no API call), or show `new` (the
        checks a worker computed for them); update changed cells only. Returns the fields whose
        row changed. The port field keeps what the operator typed."""
        from keybuzz_tui.engine import ports

        if self.inventory is None:
            return []
        if new is None:
            new = ports.check(self.kb.config, self.inventory)
        table = self.query_one("#ports-table", DataTable)
        changed: list[str] = []
        with self.app.batch_update():
            for c in new:
                cells = row_cells(c, self.app)
                old = self._cells.get(c.field, {})
                touched = False
                for key, value in cells.items():
                    plain = _plain(value)
                    if old.get(key) != plain:
                        table.update_cell(c.field, key, value, update_width=True)
                        touched = True
                self._cells[c.field] = {k: _plain(v) for k, v in cells.items()}
                if touched:
                    changed.append(c.field)
        self.checks = new
        self.kb.port_checks = new
        self._summary()
        if self._selected:
            self._show_detail(self._selected)
        return changed

    def check_for(self, field: str) -> Any:
        return next((c for c in self.checks if c.field == field), None)

    def _select(self, field: str) -> None:
        """A row is selected: its detail, and its port (or the suggested one) in the field."""
        self._selected = field
        c = self._show_detail(field)
        if c is None:
            return
        inp = self.query_one("#port-input", Input)
        with inp.prevent(Input.Changed):  # showing a row's port (or its suggestion) is not an edit
            inp.value = str(c.suggestions[0]) if c.failed and c.suggestions else str(c.port)
        self._cancel_live()
        self.query_one("#edit-error", Static).update("")

    def _show_detail(self, field: str) -> Any:
        c = self.check_for(field)
        if c is None:
            return None
        text = Text()
        text.append(c.title, style="bold")
        if c.remediation and c.failed:
            # what to do first: on a small terminal the panel shows its first lines only
            text.append(f"\n→ {c.remediation}", style="bold")
        text.append(f"\n{c.detail}")
        if c.remediation and not c.failed:
            text.append(f"\n→ {c.remediation}", style="bold")
        text.append(f"\nrule: {c.rule} · keybuzz.yaml: {c.field}", style="dim")
        self.query_one("#port-text", Static).update(text)
        return c

    @on(DataTable.RowHighlighted, "#ports-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value:
            self._select(str(event.row_key.value))

    @on(DataTable.RowSelected, "#ports-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def action_edit(self) -> None:
        inp = self.query_one("#port-input", Input)
        inp.focus()
        inp.action_end()

    # --- editing -------------------------------------------------------------------------------

    @on(Input.Submitted, "#port-input")
    @on(Button.Pressed, "#port-apply")
    def _submit(self) -> None:
        self._cancel_live()
        self.edit(self.query_one("#port-input", Input).value)

    # --- re-check as you type ------------------------------------------------------------------

    DEBOUNCE = 0.25
    """Seconds of quiet typing before the value is judged."""

    class Judged(Message):
        """A typed value judged in the worker: `reason` refuses it; else `checks` are the answers
        with it (judged against the last scan)."""

        def __init__(self, field: str, raw: str, reason: str, checks: list[Any] | None) -> None:
            super().__init__()
            self.field, self.raw, self.reason, self.checks = field, raw, reason, checks

    @on(Input.Changed, "#port-input")
    def _typed(self, event: Input.Changed) -> None:
        if self._selected is None or self.inventory is None:
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(self.DEBOUNCE, self._judge_latest, name="ports-debounce")

    def _cancel_live(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self._pending = None

    def _judge_latest(self) -> None:
        """The timer fired: judge what the field holds now (or after the judgement in flight)."""
        self._debounce = None
        field = self._selected
        if field is None or self.inventory is None:
            return
        raw = self.query_one("#port-input", Input).value
        if self._judging is not None and not self._judging.is_finished:
            self._pending = (field, raw)  # judged when the one in flight returns: never two at once
            return
        self.judged += 1
        self._judging = self._judge(field, raw, copy.deepcopy(self.kb.config), self.inventory)

    @work(thread=True, exit_on_error=False, group="ports-judge", description="re-check a typed port")
    def _judge(self, field: str, raw: str, config: Any, inventory: Any) -> None:
        from keybuzz_tui.engine import ports

        try:
            reason = self.refusal(field, raw, config=config, inventory=inventory)
            checks = None
            if not reason:
                set_field(config, field, int(raw.strip()))
                checks = ports.check(config, inventory)
        except Exception as e:  # never a traceback on screen: the reason is the error
            reason, checks = f"cannot check this value: {safe_error(e)}", None
        self.post_message(self.Judged(field, raw, reason, checks))

    @on(Judged)
    def _judged(self, msg: Judged) -> None:
        self._judging = None
        pending, self._pending = self._pending, None
        if msg.field == self._selected and msg.raw == self.query_one("#port-input", Input).value:
            self._take(msg)
        if pending is not None and pending[0] == self._selected and self._debounce is None:
            self._judge_latest()  # what was typed meanwhile (only the latest value)

    def _take(self, msg: Judged) -> None:
        """Show a judged value: refused with its reason, or taken into the answers (the table
        and the summary follow, from the checks the worker computed)."""
        if msg.reason or msg.checks is None:
            self._refused(msg.reason)
            return
        value = int(msg.raw.strip())
        before = get_field(self.kb.config, msg.field)
        set_field(self.kb.config, msg.field, value)
        self.recheck(msg.checks)
        self._report_edit(msg.field, before, value)

    def edit(self, raw: str) -> bool:
        """Try a new port for the selected row now (Enter): refuse it with the reason, or take
        it and re-check everything against the last scan."""
        field = self._selected
        if field is None or self.inventory is None:
            return False
        reason = self.refusal(field, raw)
        if reason:
            self._refused(reason)
            return False
        value = int(raw.strip())
        before = get_field(self.kb.config, field)
        set_field(self.kb.config, field, value)
        self.recheck()
        self._report_edit(field, before, value)
        return True

    def _refused(self, reason: str) -> None:
        self.query_one("#edit-error", Static).update(Text(f"✗ refused: {reason}", style=tone(self.app, "fail")))

    def _report_edit(self, field: str, before: Any, value: int) -> None:
        err = self.query_one("#edit-error", Static)
        what = f"{field}: {before} → {value}" if before != value else f"{field}: {value}"
        c = self.check_for(field)
        if c is not None and c.failed:
            err.update(Text(f"{what}, but it is {c.status}: {c.detail}", style=tone(self.app, "warn", bold=False)))
        else:
            err.update(Text(f"✓ {what} (saved to keybuzz.yaml when you leave, or ctrl+s on Review)", style=tone(self.app, "ok", bold=False)))

    def refusal(self, field: str, raw: str, *, config: Any = None, inventory: Any = None) -> str:
        """Why `raw` cannot be used for `field` (empty when it can). Pure: the worker passes its
        own copy of the answers and the inventory (the screen's by default)."""
        from keybuzz_tui import config as config_mod
        from keybuzz_tui.engine import ports

        config = self.kb.config if config is None else config
        inventory = self.inventory if inventory is None else inventory
        raw = (raw or "").strip()
        if not raw:
            return "enter a port number"
        try:
            value = int(raw)
        except ValueError:
            return f"{raw!r} is not a whole number"
        if not 1 <= value <= 65535:
            return f"{value} is not a valid port: allowed 1-65535"
        trial = copy.deepcopy(config)
        set_field(trial, field, value)
        problems = [msg for path, msg in config_mod.check(trial) if path == field or path.startswith(field + ".")]
        if problems:
            return problems[0]
        judged = next((c for c in ports.check(trial, inventory) if c.field == field), None)
        if judged is not None and judged.status == "invalid":
            return judged.detail or judged.rule
        return ""


def _plain(v: Any) -> str:
    if isinstance(v, Text):
        return f"{v.plain}|{v.style}"
    return str(v)
