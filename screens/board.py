"""Step 8, the live validation board: does the platform answer, and if not, where does it break?

- the named checks, grouped by layer (Kubernetes, workers, ingress, load balancer, DNS, HTTPS),
  each with its status and detail;
- the worker × hop matrix (DNS, LB, NodePort, ingress, Service, pod): on each worker the FIRST
  broken hop is highlighted, the hops after it are greyed "not reached";
- the detail pane: the selected check's (or hop's) detail and remediation;
- export (`e`): the report as Markdown and JSON (the engine's report module), written to files;
- in demo mode, the scenario switcher (`s`) breaks the world on purpose and repairs it.

The board stays open and keeps updating from the engine's continuous validation (watches for
what lives in Kubernetes, an interval for network probes, a fast lane of port probes that turns a
network change within a second, provisionally) running in one thread worker. The first run's
verdicts arrive as engine events; from then on each refresh's report is applied whole, checks and
matrix in one `app.batch_update()` (the engine publishes them together, from the same
observations, so the two never disagree on screen), and only the cells whose value changed are
updated. The header says how old the last refresh is, how many Kubernetes API requests a refresh
cost and (wide) the fast lane's probes. `f` sends a failure where it can be repaired
(engine/checks_fix): a wizard step, the Doctor, or the commands to run on a node.

`BoardApp` opens the board alone (what `keybuzz-tui validate --board` needs when it does not go
through the wizard shell).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keybuzz_tui.screens.board_widgets import (
    Clock,
    StepHost,
    Tones,
    ago,
    plain,
    status_text,
    step_back,
    when_world_ready,
)
from keybuzz_tui.screens.bridge import EngineEvent
from keybuzz_tui.screens.widgets import StepScreen
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, OptionList, Static
from textual.widgets.option_list import Option

from keybuzz_tui import events as ev
from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.redact import REDACTOR, safe_error

LAYERS = ("kubernetes", "node", "ingress", "loadbalancer", "dns", "https")
LAYER_TITLES = {
    "kubernetes": "Kubernetes",
    "node": "Workers (hostPort, NodePort)",
    "ingress": "Ingress",
    "loadbalancer": "Load balancer",
    "dns": "DNS",
    "https": "HTTPS",
}
LAYER_ALIASES = {"hetzner": "loadbalancer", "lb": "loadbalancer", "load_balancer": "loadbalancer", "nodes": "node", "k8s": "kubernetes", "http": "https", "tls": "https"}
HOPS = ("dns", "lb", "nodeport", "ingress", "service", "pod")
HOP_TITLES = {"dns": "DNS", "lb": "LB", "nodeport": "NodePort", "ingress": "Ingress", "service": "Service", "pod": "Pod"}
HOP_ALIASES = {"loadbalancer": "lb", "load balancer": "lb", "load_balancer": "lb", "node_port": "nodeport", "hostport": "pod", "app": "pod", "svc": "service"}
FIRST_LABEL = ("✗ BREAK", "✗ breaks here")  # (80 columns, a large terminal)
UNREACHED_LABEL = ("· —", "· not reached")
RANK = {"fail": 4, "warn": 3, "pending": 2, "running": 2, "skip": 1, "ok": 0, "info": 0}
# the check that judges the observation behind each hop (for `f` on a matrix cell)
HOP_CHECK = {"dns": "dns.resolver", "lb": "lb.targets-healthy", "nodeport": "node.nodeport", "ingress": "ingress.routing",
             "service": "ingress.routing", "pod": "node.hostport"}
PLACE_TITLES = {"review": "Review", "rollout": "Rollout", "ports": "Ports", "lb": "Load balancer", "dns": "DNS", "credentials": "Credentials"}


def layer_of(name: str) -> str:
    n = (name or "").lower()
    return LAYER_ALIASES.get(n, n)


def hop_of(name: str) -> str:
    n = (name or "").lower()
    return HOP_ALIASES.get(n, n)


@dataclass
class HopCell:
    """One worker's view of one hop: the reports per host, summed up to the worst."""

    hosts: dict[str, ev.HopResult] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return max((h.status for h in self.hosts.values()), key=lambda s: RANK.get(s, 0), default="pending")


class BoardScreen(StepScreen):
    """The live validation board."""

    CSS_PATH = "board.tcss"
    TITLE = "Validation"
    STEP = "validation"
    HELP = """\
## Step 8 · Validation board

Every named check of the runbook, run continuously: what lives in Kubernetes is followed with
watches, network probes (NodePorts, ingress, the LB, DNS, HTTPS) are repeated on an interval.

- **Checks**, grouped by layer: `✓ ok`, `! warn`, `✗ fail`, `– skipped` (a check whose
  prerequisite failed says which). Select one (arrows, Enter) to read its detail and what to do.
- **Request path per worker**: DNS → LB → NodePort 31695 → ingress → Service → pod, traced from
  each worker from the checks' own observations (the matrix and the checks always agree). The
  first broken hop on a worker is highlighted `✗`; the hops after it are greyed `·` (not
  reached). An LB cell `! warn` before a broken NodePort: the LB took that worker out of rotation,
  as it should; the NodePort is the cause. Move the cursor onto a cell to read its evidence.
- A fast lane re-probes the workers' ports a few times a second (no API request): a port that
  stops (or starts) answering shows within a second, marked "confirming…" until the full check
  has confirmed it.
- The header says how old the last refresh is, how many Kubernetes API requests a refresh costs
  and (on a wide terminal) the fast lane's probes.

Keys: `e` export the report (Markdown and JSON), `r` refresh now, `f` fix the selected check (or
hop): the wizard step that repairs it, the Doctor, or the exact commands to run on a node (a host
firewall is outside the wizard's reach), `d` open the Doctor (why it fails, and the repair), `s`
(demo mode) break or repair the sandbox world on purpose, `tab` switch between the checks and the
matrix, `esc` back.
"""

    BINDINGS = [
        Binding("enter", "details", "Details", id="board.details", show=False, tooltip="Show the selected check's detail and remediation"),
        Binding("e", "export", "Export", id="board.export", tooltip="Write the report as Markdown and JSON files"),
        Binding("r", "refresh", "Refresh", id="board.refresh", tooltip="Run every check again now"),
        Binding("f", "fix", "Fix", id="board.fix", tooltip="Repair the selected check: the wizard step, the Doctor, or the commands to run on a node"),
        Binding("d", "doctor", "Doctor", id="board.doctor", tooltip="Open the Doctor: why checks fail, in plain words, and the repair"),
        Binding("s", "scenarios", "Demo", id="board.scenarios", tooltip="Demo: break (or repair) the sandbox world on purpose"),
        Binding("escape", "back", "Back", id="board.back", tooltip="Back to the previous step (the board keeps its state)"),
    ]

    class Updated(Message):
        """Cells of the board changed (for observers: tests, the latency benchmark)."""

        def __init__(self, cells: tuple[tuple[str, str, str], ...]) -> None:
            self.cells = cells  # (table, row key, column key)
            super().__init__()

    class Round(Message):
        """One refresh of the continuous validation finished (its ValidationReport)."""

        def __init__(self, report: Any) -> None:
            self.report = report
            super().__init__()

    class Stopped(Message):
        def __init__(self, error: str = "", remediation: str = "") -> None:
            self.error, self.remediation = error, remediation
            super().__init__()

    class Exported(Message):
        def __init__(self, paths: list[Path], error: str = "") -> None:
            self.paths, self.error = paths, error
            super().__init__()

    def __init__(
        self,
        *,
        autostart: bool = True,
        interval: float | None = None,
        http_timeout: float | None = None,
        clock: Clock | None = None,
        export_dir: Path | None = None,
        workers: list[str] | None = None,
        fast_interval: float | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.autostart = autostart
        self.interval = interval
        self.fast_interval = fast_interval  # None: the demo's 0.3 s, a real cluster's 0.5 s; 0: off
        self.http_timeout = http_timeout
        self.clock = clock or time.monotonic
        self.export_dir = export_dir
        self.checks: dict[str, ev.CheckResult] = {}
        self.hops: dict[tuple[str, str], HopCell] = {}
        self.worker_nodes: list[str] = sorted(workers or [])
        self.last_update: float | None = None
        self.requests: int | None = None
        self.rounds = 0
        self.report: Any = None  # the last ValidationReport (what export writes)
        self.records: dict[str, Any] = {}  # check id -> the last CheckRecord (its evidence: where `f` fixes it)
        self.fast_lane: dict[str, Any] = {}  # the engine's fast network probes: their budget (header)
        self.state = "idle"  # idle | waiting | live | stopped
        self.error = ""
        self._order: list[str] = []  # check keys in display order (without layer headers)
        self._seq: dict[str, int] = {}
        self._cells: dict[tuple[str, str, str], str] = {}
        self._changed: list[tuple[str, str, str]] = []
        self._selected: tuple[str, str] | None = None  # ("check", key) | ("hop", "node|hop")
        self._user_moved = False  # until the operator moves a cursor, the detail follows the first failure
        self._bindings_ready = False
        self._wide_labels = False
        self._titles: list[int] | None = None  # the registry's check titles' lengths (column width)

    # --- layout ------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        yield Static("", id="board-head")
        with Vertical(id="board-main"):
            with Vertical(id="board-path"):
                matrix: DataTable[Any] = DataTable(id="board-matrix", cursor_type="cell")
                matrix.border_title = "Request path per worker"
                yield matrix
            with Vertical(id="board-list"):
                checks: DataTable[Any] = DataTable(id="board-checks", cursor_type="row", zebra_stripes=False, show_header=False)
                checks.border_title = "Checks by layer"
                yield checks
            detail = Static("Select a check (arrows, Enter) to read its detail and remediation.", id="board-detail")
            detail.border_title = "Detail"
            yield detail

    def on_mount(self) -> None:
        checks = self.query_one("#board-checks", DataTable)
        self._check_columns(checks)
        self.watch(checks, "virtual_size", self._failure_in_view, init=False)
        self._wide_labels = self.app.size.width >= self.WIDE
        matrix = self.query_one("#board-matrix", DataTable)
        matrix.border_subtitle = self._legend()
        self._matrix_columns(matrix)
        for w in self.worker_nodes:
            self._add_worker(w)
        self._render_head()
        self.set_interval(1.0, self._render_head, name="board-age")
        if self.autostart:
            self._when_ready(self.start)

    def _check_columns(self, checks: DataTable[Any]) -> None:
        """Status, check and detail columns sized to the table (nothing scrolls sideways). The
        check's title is the key text: as wide as the longest title, leaving the detail (also in
        the detail pane) at least 20 columns."""
        width = max(60, (checks.size.width or self.app.size.width) - 4)
        title_w = max(24, min(self._longest_title(), width - 9 - 6 - 20))
        checks.add_column("Status", key="status", width=9)
        checks.add_column("Check", key="title", width=title_w)
        checks.add_column("Detail", key="detail", width=max(12, width - 9 - title_w - 6))

    def _longest_title(self) -> int:
        titles = [len((c.title or c.check) + (f" [{c.node}]" if c.node else "")) for c in self.checks.values()]
        if self._titles is None:
            try:
                from keybuzz_tui.engine.checks_registry import build_checks

                self._titles = [len(c.title) for c in build_checks(self.app.config)]  # type: ignore[attr-defined]
            except Exception:
                self._titles = []
        return max([*titles, *self._titles, 24])

    def _matrix_columns(self, matrix: DataTable[Any]) -> None:
        width = 13 if self._wide_labels else 8
        matrix.add_column("Worker", key="node", width=14)
        for h in HOPS:
            matrix.add_column(HOP_TITLES[h], key=h, width=width)

    def _legend(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        app = self.app if self.is_attached else None
        tones = Tones.of(app) if app is not None else {}
        t.append(" ✗ first broken hop ", style=tones.get("first", "reverse"))
        t.append(" · not reached ", style="italic")
        return t

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        self.call_after_refresh(self._resize_checks)
        wide = event.size.width >= self.WIDE
        if wide != self._wide_labels and self.is_mounted:
            self._wide_labels = wide
            matrix = self.query_one("#board-matrix", DataTable)
            matrix.clear(columns=True)
            self._matrix_columns(matrix)
            for k in [k for k in self._cells if k[0] == "matrix"]:
                del self._cells[k]
            rows = list(self.worker_nodes)
            self.worker_nodes = []
            for w in rows:
                self._add_worker(w)
            for w in rows:
                self._render_worker(w)

    def repaint_theme(self) -> None:
        """Cells carry the theme's colours: paint them again in the new theme."""
        self.query_one("#board-matrix", DataTable).border_subtitle = self._legend()
        for k in [k for k in self._cells if k[0] == "matrix"]:
            del self._cells[k]
        for w in self.worker_nodes:
            self._render_worker(w)
        self._resize_checks()
        self._render_head()
        if self._selected and self._selected[0] == "check":
            self._show_check(self._selected[1])

    def _resize_checks(self) -> None:
        """Re-lay the checks table for the new width (a rebuild from the kept results)."""
        checks = self.query_one("#board-checks", DataTable)
        cursor = checks.cursor_row
        checks.clear(columns=True)
        self._check_columns(checks)
        for k in [k for k in self._cells if k[0] == "checks"]:
            del self._cells[k]
        if self.checks:
            self._insert_check(checks, next(iter(self.checks)), "", force=True)
            checks.move_cursor(row=min(cursor, max(0, checks.row_count - 1)))

    # --- the engine ----------------------------------------------------------------------------

    def _when_ready(self, fn: Callable[[], None]) -> None:
        """Start once the wizard shell has connected to the platform (board-only start)."""

        def failed() -> None:
            self.state = "stopped"
            self.error = str(getattr(self.app, "world_error", "") or "cannot connect to the platform")
            self._render_head()

        when_world_ready(self, fn, on_error=failed, endpoints_default=True)

    def start(self) -> None:
        if self.state == "live":
            return
        self.state = "live"
        self.error = ""
        self._render_head()
        # network probes and Hetzner reads repeat on this interval (Kubernetes changes come from
        # watches at once): brisk on the demo world, gentler on a real project's API budget
        demo = bool(getattr(self.app, "demo", False))
        interval = self.interval if self.interval is not None else (2.0 if demo else 10.0)
        # a dropped port is only known when its probe gives up: on the demo's loopback world every
        # answer comes in milliseconds, so a short timeout shows a break within a few seconds; a
        # real cluster keeps the engine's own (up to 10 s)
        http_timeout = self.http_timeout if self.http_timeout is not None else (3.0 if demo else None)
        # the fast lane (cheap port probes, no API request) turns the matrix within a second of a
        # network change; the full refresh it starts confirms it
        fast = self.fast_interval if self.fast_interval is not None else (0.3 if demo else 0.5)
        self._run(self.app.bridge, interval, http_timeout, fast)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="board", description="continuous validation")
    def _run(self, bridge: Any, interval: float, http_timeout: float | None = None, fast_interval: float | None = None) -> None:
        try:
            from keybuzz_tui.engine import validate as vmod

            with bridge.run(self, name="board") as ctx:
                vmod.watch(ctx, interval, lambda report: self.post_message(self.Round(report)), http_timeout=http_timeout,
                           fast_interval=fast_interval or None)
            self.post_message(self.Stopped())
        except Cancelled:
            self.post_message(self.Stopped())
        except Exception as e:
            self.post_message(self.Stopped(safe_error(e), str(getattr(e, "remediation", "") or "")))

    @on(Round)
    def _round(self, msg: Round) -> None:
        """A refresh finished: its report is the truth (events may have been coalesced)."""
        rep = msg.report
        self.report = rep
        self.rounds += 1
        self.records = {r.check: r for r in getattr(rep, "results", [])}
        if getattr(rep, "trigger", "") != "fast":  # a fast-lane refresh makes no API request: keep the refreshes' cost
            self.requests = int(getattr(rep, "api_requests", 0) or 0)
        self.fast_lane = dict(getattr(rep, "fast_lane", {}) or {})
        events: list[ev.Event] = [
            ev.CheckResult(step="validate", check=r.check, layer=r.layer, status=r.status, title=r.title, detail=r.detail, remediation=r.remediation)
            for r in getattr(rep, "results", [])
        ]
        for host, rows in (getattr(rep, "traces", {}) or {}).items():
            for node, hops in rows.items():
                events += [ev.HopResult(step="validate", node=node, host=host, hop=h.hop, status=h.status, detail=h.detail) for h in hops]
        self.apply_events(events)
        self.last_update = self.clock()
        self._render_head()
        self.refresh_bindings()

    def _mark_step(self) -> None:
        """The step indicator ticks Validation while every check passes (and not otherwise)."""
        mark = getattr(self.app, "mark_done", None)
        if callable(mark) and self.checks:
            mark(self.STEP, all(c.status in ("ok", "skip") for c in self.checks.values()))

    @on(Stopped)
    def _stopped(self, msg: Stopped) -> None:
        if self.state != "live":
            return
        self.state = "stopped"
        self.error = msg.error
        if msg.error:
            self.notify(msg.error + (f"\n→ {msg.remediation}" if msg.remediation else ""), title="Validation stopped", severity="error", markup=False)
        self._render_head()
        self.refresh_bindings()

    def action_refresh(self) -> None:
        """Run every check again now: restart the continuous validation (one full round first)."""
        if self.state == "waiting":
            return
        self.app.bridge.cancel_owner(self, "refresh requested")  # type: ignore[attr-defined]
        self.state = "idle"
        self.start()

    # --- events -> cells -----------------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        """Verdicts as they come, until the first report; from then on each refresh's report is
        applied whole (checks and matrix in one batch: they never disagree on screen)."""
        if self.rounds and isinstance(message.event, (ev.CheckResult, ev.HopResult)):
            return
        self.apply_events([message.event])

    def apply_events(self, events: list[ev.Event]) -> None:
        """Turn engine events into cell updates (only cells whose value changed), in one batch."""
        with self.app.batch_update():
            for e in events:
                if isinstance(e, ev.CheckResult):
                    self._on_check(e)
                elif isinstance(e, ev.HopResult):
                    self._on_hop(e)
        if not self._user_moved:
            self._auto_detail()
        if self.checks and not self._bindings_ready:
            self._bindings_ready = True
            self.refresh_bindings()
        self._mark_step()
        if self._changed:
            cells, self._changed = tuple(self._changed), []
            self.last_update = self.clock()
            self._render_head()
            self.post_message(self.Updated(cells))

    def _set(self, table: DataTable[Any], name: str, row: str, col: str, value: Text) -> None:
        key = (name, row, col)
        sig = f"{value.plain}\x00{value.style}\x00{[(s.start, s.end, str(s.style)) for s in value.spans]}"
        if self._cells.get(key) == sig:
            return
        self._cells[key] = sig
        table.update_cell(row, col, value)
        self._changed.append(key)

    def _on_check(self, e: ev.CheckResult) -> None:
        layer = layer_of(e.layer)
        key = f"{e.check}|{e.node or ''}"
        if e.status in ("pending", "running") and key in self.checks:
            return  # running again: keep showing the last verdict until the new one arrives
        self.checks[key] = e
        table = self.query_one("#board-checks", DataTable)
        if key not in self._seq:
            self._seq[key] = len(self._seq)
            self._insert_check(table, key, layer)
        title = e.title or e.check
        if e.node:
            title = f"{title} [{e.node}]"
        self._set(table, "checks", key, "status", status_text(self.app, e.status if e.status in RANK else "unknown", _word(e.status)))
        self._set(table, "checks", key, "title", plain(title))
        self._set(table, "checks", key, "detail", plain(e.detail, "dim" if e.status == "ok" else ""))
        self._render_layer(table, layer)
        if self._selected == ("check", key):
            self._show_check(key)

    def _insert_check(self, table: DataTable[Any], key: str, layer: str, *, force: bool = False) -> None:
        """Add a check row under its layer; rebuild the (small) table when it does not go last."""
        layers = [lay for lay in LAYERS if lay in {layer_of(c.layer) for c in self.checks.values()}]
        layers += sorted({layer_of(c.layer) for c in self.checks.values()} - set(LAYERS))
        order: list[str] = []
        for lay in layers:
            order.append(f"layer:{lay}")
            order += sorted((k for k, c in self.checks.items() if layer_of(c.layer) == lay), key=lambda k: self._seq[k])
        current = [str(r.value) for r in table.rows]
        if order[: len(current)] == current and not force:
            for k in order[len(current):]:
                self._add_check_row(table, k)
            return
        cursor = table.cursor_row
        selected = str(table.coordinate_to_cell_key((cursor, 0)).row_key.value) if table.row_count and cursor < table.row_count else None
        table.clear()
        for k in [k for k in self._cells if k[0] == "checks"]:
            del self._cells[k]
        for k in order:
            self._add_check_row(table, k)
            if not k.startswith("layer:"):
                c = self.checks[k]
                self._set(table, "checks", k, "status", status_text(self.app, c.status if c.status in RANK else "unknown", _word(c.status)))
                self._set(table, "checks", k, "title", plain((c.title or c.check) + (f" [{c.node}]" if c.node else "")))
                self._set(table, "checks", k, "detail", plain(c.detail, "dim" if c.status == "ok" else ""))
        for lay in layers:
            self._render_layer(table, lay)
        if selected in order:
            table.move_cursor(row=order.index(selected))

    def _add_check_row(self, table: DataTable[Any], key: str) -> None:
        if key.startswith("layer:"):
            lay = key.split(":", 1)[1]
            table.add_row(Text(""), Text(LAYER_TITLES.get(lay, lay.title()), style="bold"), Text(""), key=key)
        else:
            table.add_row(Text(""), Text(""), Text(""), key=key)

    def _render_layer(self, table: DataTable[Any], layer: str) -> None:
        mine = [c for c in self.checks.values() if layer_of(c.layer) == layer]
        if not mine or f"layer:{layer}" not in {str(r.value) for r in table.rows}:
            return
        worst = max((c.status for c in mine), key=lambda s: RANK.get(s, 0))
        ok = sum(1 for c in mine if c.status == "ok")
        label = f"{ok}/{len(mine)}"
        tone = worst if worst in ("fail", "warn") else ("ok" if ok == len(mine) else "pending")
        self._set(table, "checks", f"layer:{layer}", "status", status_text(self.app, tone, label))
        bad = [c for c in mine if c.status in ("fail", "warn")]
        summary = f"{len(bad)} need attention" if bad else "all ok" if ok == len(mine) else ""
        self._set(table, "checks", f"layer:{layer}", "detail", Text(summary, style="bold" if bad else "dim"))

    def _add_worker(self, node: str) -> None:
        matrix = self.query_one("#board-matrix", DataTable)
        if node in self.worker_nodes:
            return
        self.worker_nodes.append(node)
        ordered = sorted(self.worker_nodes)
        blank = [status_text(self.app, "pending", "…", symbol="") for _ in HOPS]
        if ordered[-1] == node:
            matrix.add_row(plain(node), *blank, key=node)
        else:
            self.worker_nodes = ordered
            matrix.clear()
            for k in [k for k in self._cells if k[0] == "matrix"]:
                del self._cells[k]
            for w in ordered:
                matrix.add_row(plain(w), *blank, key=w)
            for w in ordered:
                self._render_worker(w)

    def _on_hop(self, e: ev.HopResult) -> None:
        hop = hop_of(e.hop)
        if hop not in HOPS or not e.node:
            return
        if e.node not in self.worker_nodes:
            self._add_worker(e.node)
        cell = self.hops.setdefault((e.node, hop), HopCell())
        if e.status in ("pending", "running") and e.host in cell.hosts:
            return
        cell.hosts[e.host] = e
        self._render_worker(e.node)
        if self._selected == ("hop", f"{e.node}|{hop}"):
            self._show_hop(e.node, hop)

    def first_broken(self, node: str) -> str | None:
        for hop in HOPS:
            cell = self.hops.get((node, hop))
            if cell is not None and cell.status == "fail":
                return hop
        return None

    def _render_worker(self, node: str) -> None:
        """Recompute one worker's row: statuses, the first broken hop, the hops not reached."""
        matrix = self.query_one("#board-matrix", DataTable)
        first = self.first_broken(node)
        reached = True
        wide = self._wide_labels
        for hop in HOPS:
            cell = self.hops.get((node, hop))
            status = cell.status if cell is not None else "pending"
            if not reached:
                value = Text(UNREACHED_LABEL[wide], style=Tones.of(self.app)["unreached"], no_wrap=True)
            elif hop == first:
                value = Text(FIRST_LABEL[wide], style=Tones.of(self.app)["first"], no_wrap=True)
                reached = False
            elif status == "fail":
                value = status_text(self.app, "fail", "fail")
            else:
                value = status_text(self.app, status if status in RANK else "unknown", _word(status))
            self._set(matrix, "matrix", node, hop, value)

    # --- selection and detail ------------------------------------------------------------------

    def on_key(self, event: Any) -> None:
        if event.key in ("up", "down", "left", "right", "enter", "pageup", "pagedown", "home", "end", "tab", "shift+tab"):
            self._user_moved = True

    def on_click(self, event: Any) -> None:
        self._user_moved = True

    def _auto_detail(self) -> None:
        """Nothing chosen yet: show the first failing check (in board order), or say all is well."""
        table = self.query_one("#board-checks", DataTable)
        order = [str(r.value) for r in table.rows]
        bad = [k for k in order if k in self.checks and self.checks[k].status == "fail"]
        bad = bad or [k for k in order if k in self.checks and self.checks[k].status == "warn"]
        if bad:
            self._selected = ("check", bad[0])
            self._show_check(bad[0])
            row = order.index(bad[0])
            if table.cursor_row != row and not table.has_focus:
                # the failing check in view, even at 80x24 (never under the operator's own cursor)
                table.move_cursor(row=row, animate=False)
        elif self.checks and all(c.status in ("ok", "skip") for c in self.checks.values()):
            self._selected = None
            self.query_one("#board-detail", Static).update(
                status_text(self.app, "ok", f"All {len(self.checks)} checks pass. Select a check or a hop to read its evidence.")
            )

    def _failure_in_view(self, _size: Any) -> None:
        """Scroll the followed failure into view again once the table knows its height.

        DataTable scrolls a moved cursor after the next refresh, but computes its height on idle;
        on a busy machine the scroll came first, was clamped to the old height, and the first
        failure stayed below the fold at 80x24."""
        table = self.query_one("#board-checks", DataTable)
        if not self._user_moved and self._selected is not None and table.row_count:
            table.move_cursor(row=table.cursor_row, animate=False)

    @on(DataTable.RowHighlighted, "#board-checks")
    def _check_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self._user_moved:
            return
        key = str(event.row_key.value)
        if not key.startswith("layer:"):
            self._selected = ("check", key)
            self._show_check(key)

    @on(DataTable.RowSelected, "#board-checks")
    def _check_selected(self, event: DataTable.RowSelected) -> None:
        self._user_moved = True
        key = str(event.row_key.value)
        if not key.startswith("layer:"):
            self._selected = ("check", key)
            self._show_check(key)

    @on(DataTable.CellHighlighted, "#board-matrix")
    def _hop_highlighted(self, event: DataTable.CellHighlighted) -> None:
        if not self._user_moved:
            return
        node, col = str(event.cell_key.row_key.value), str(event.cell_key.column_key.value)
        if col in HOPS:
            self._selected = ("hop", f"{node}|{col}")
            self._show_hop(node, col)

    def action_details(self) -> None:
        table = self.query_one("#board-checks", DataTable)
        if table.row_count:
            key = str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
            if not key.startswith("layer:"):
                self._selected = ("check", key)
                self._show_check(key)

    def _show_check(self, key: str) -> None:
        c = self.checks.get(key)
        if c is None:
            return
        tones = Tones.of(self.app)
        out = status_text(self.app, c.status if c.status in RANK else "unknown", _word(c.status))
        out.append(f"  {c.title or c.check}", style="bold")
        if self._wide_labels:
            out.append(f"  ({c.check}{', ' + c.node if c.node else ''}, {LAYER_TITLES.get(layer_of(c.layer), c.layer)})", style="dim")
        if c.detail:
            out.append("\n" + c.detail)
        if c.remediation and c.status != "ok":
            out.append("\nWhat to do: ", style=tones["warn"] + Style(bold=True))
            out.append(c.remediation)
        self.query_one("#board-detail", Static).update(out)

    def _show_hop(self, node: str, hop: str) -> None:
        cell = self.hops.get((node, hop))
        out = Text()
        out.append(f"{HOP_TITLES[hop]} hop from {node}", style="bold")
        first = self.first_broken(node)
        if first is not None and HOPS.index(hop) > HOPS.index(first):
            out.append(f"\nnot reached: the request already breaks at {HOP_TITLES[first]} on this worker", style="dim")
        if cell is None or not cell.hosts:
            out.append("\nno result yet", style="dim")
        else:
            for host, h in sorted(cell.hosts.items()):
                out.append("\n")
                out.append_text(status_text(self.app, h.status if h.status in RANK else "unknown", _word(h.status)))
                out.append(f" {host}: {h.detail}" if h.detail else f" {host}")
        self.query_one("#board-detail", Static).update(out)

    # --- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app: Any = self.app
        if action == "scenarios":
            return bool(getattr(app, "demo", False)) and callable(getattr(app, "demo_switch", None))
        if action == "fix":
            return True  # a wizard step, the Doctor or the commands: there is always a place (action_fix says which)
        if action == "export":
            return True if self.checks else None
        return True

    def action_back(self) -> None:
        step_back(self)

    def action_doctor(self) -> None:
        """Issue 6: the Doctor on top of the board (the board keeps running underneath)."""
        from keybuzz_tui.screens.doctor import open_doctor

        open_doctor(self.app)

    def fix_target(self) -> Any:
        """Where `f` repairs: the selected check, or the selected matrix cell's check on that
        worker (its first broken hop when the cell itself is fine), else the first failing check
        on the board; None when everything passes. A checks_fix.Fix."""
        from keybuzz_tui.engine.checks_base import CheckRecord
        from keybuzz_tui.engine.checks_fix import fix_for

        def record(cid: str) -> Any:
            rec = self.records.get(cid)
            if rec is not None:
                return rec
            c = next((c for c in self.checks.values() if c.check == cid), None)
            return CheckRecord(c.check, c.layer, c.title, c.status, c.detail, c.remediation) if c is not None else None  # type: ignore[arg-type]

        config = getattr(self.app, "config", None)
        sel = self._selected
        if sel is not None and sel[0] == "check" and sel[1] in self.checks:
            rec = record(self.checks[sel[1]].check)
            if rec is not None and rec.status not in ("ok", "skip"):
                return fix_for(rec, config=config)
        if sel is not None and sel[0] == "hop":
            node, _, hop = sel[1].partition("|")
            cell = self.hops.get((node, hop))
            if cell is None or cell.status in ("ok", "skip", "pending"):
                hop = self.first_broken(node) or hop
            rec = record(HOP_CHECK.get(hop, ""))
            if rec is not None and rec.status not in ("ok", "skip"):
                return fix_for(rec, node=node, config=config)
        table = self.query_one("#board-checks", DataTable)
        order = [str(r.value) for r in table.rows if str(r.value) in self.checks]
        for status in ("fail", "warn"):
            for key in order:
                if self.checks[key].status == status:
                    rec = record(self.checks[key].check)
                    if rec is not None:
                        return fix_for(rec, config=config)
        return None

    def action_fix(self) -> None:
        """Repair the selected check where it can be repaired (engine/checks_fix decides from the
        check's evidence): the wizard step that can (Kubernetes objects: Review; pods: Rollout; a
        port held on a node: Ports; the LB; DNS), the Doctor (a NotReady node, the overlay,
        ingress-nginx, the Hetzner network), or the exact commands to run on a node (UFW)."""
        fix = self.fix_target()
        if fix is None:
            self.notify("Nothing to fix: every check passes.", title="Fix")
            return
        app: Any = self.app
        if fix.place == "commands":

            def chosen(answer: str | None) -> None:
                if answer == "doctor":
                    self.action_doctor()

            app.push_screen(FixCommands(fix, self._title_of(fix.check)), chosen)
            return
        if fix.place == "doctor":
            self.notify(f"Opening the Doctor: {fix.why}.", title="Fix", markup=False)
            self.action_doctor()
            return
        title = PLACE_TITLES.get(fix.place, fix.place)
        goto = getattr(app, "goto", None)
        if not callable(goto):
            self.notify(f"{fix.why}: the wizard's {title} step does it (run `keybuzz-tui`); `d` opens the Doctor here.",
                        title="Fix", severity="warning", markup=False)
            return
        self.notify(f"Opening the {title} step: {fix.why}. The board keeps running.", title="Fix", markup=False)
        goto(fix.place)

    def _title_of(self, check: str) -> str:
        c = next((c for c in self.checks.values() if c.check == check), None)
        return (c.title or c.check) if c is not None else check

    def action_scenarios(self) -> None:
        app: Any = self.app
        if not getattr(app, "demo", False):
            self.notify("The scenario switcher works in demo mode only (keybuzz-tui --demo).", severity="warning")
            return

        def chosen(action: str | None) -> None:
            if action:
                app.demo_switch(action)

        app.push_screen(ScenarioSwitcher(getattr(app, "demo_active", frozenset())), chosen)

    def action_export(self) -> None:
        if not self.checks:
            return
        target = self.export_dir or self._default_export_dir()
        self._export(self.app.bridge, self.report, target)  # type: ignore[attr-defined]

    def _default_export_dir(self) -> Path:
        app: Any = self.app
        jp = getattr(app, "journal_path", None)
        if jp:
            return Path(jp).parent
        return Path.cwd()

    @work(thread=True, exclusive=True, exit_on_error=False, group="board-export", description="export the report")
    def _export(self, bridge: Any, report: Any, target: Path) -> None:
        """Write the report the board shows (the last refresh); without one yet, validate once."""
        try:
            from keybuzz_tui.engine import report as rmod

            if report is None:
                with bridge.run(None, name="report") as ctx:
                    report = bridge.platform(ctx).validate()
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target.mkdir(parents=True, exist_ok=True)
            md, js = target / f"keybuzz-report-{stamp}.md", target / f"keybuzz-report-{stamp}.json"
            md.write_text(REDACTOR.redact(rmod.to_markdown(report)))
            js.write_text(REDACTOR.redact(rmod.to_json(report)))
            self.post_message(self.Exported([md, js]))
        except Exception as e:
            self.post_message(self.Exported([], safe_error(e)))

    @on(Exported)
    def _exported(self, msg: Exported) -> None:
        if msg.error:
            self.notify(f"cannot write the report: {msg.error}", title="Export", severity="error", markup=False)
            return
        self.notify("\n".join(str(p) for p in msg.paths), title="Report written", timeout=12, markup=False)

    # --- rendering -----------------------------------------------------------------------------

    def _render_head(self) -> None:
        if not self.is_mounted:
            return
        counts = {s: 0 for s in ("ok", "warn", "fail", "skip", "pending")}
        for c in self.checks.values():
            counts[c.status if c.status in counts else "pending"] += 1
        if self.state == "waiting":
            head = status_text(self.app, "running", "Connecting to the platform…")
        elif not self.checks:
            head = status_text(self.app, "running" if self.state == "live" else "pending", "Running the checks…" if self.state == "live" else "Not started")
        else:
            tone = "fail" if counts["fail"] else "warn" if counts["warn"] else "ok"
            word = "All checks pass" if tone == "ok" else f"{counts['fail']} failing" if counts["fail"] else f"{counts['warn']} warning(s)"
            head = status_text(self.app, tone, word)
            head.append(f"  ✓{counts['ok']} !{counts['warn']} ✗{counts['fail']}" + (f" –{counts['skip']}" if counts["skip"] else ""))
        if self.last_update is not None:
            head.append(f" · updated {ago(self.clock() - self.last_update)}", style="")
        if self.requests is not None:
            head.append(f" · {self.requests} API req/refresh", style="")
        fast = self.fast_lane
        if fast.get("targets") and self._wide_labels:
            head.append(f" · fast lane: {fast['targets']} probes/{fast.get('interval', 0):g}s, {fast.get('api_requests', 0)} API req", style="")
        if self.state == "live":
            head.append(" · live", style=Tones.of(self.app)["ok"])
        elif self.state == "stopped":
            head.append(" · stopped" + (f": {self.error}" if self.error else "") + " (r restarts)", style=Tones.of(self.app)["fail"])
        self.query_one("#board-head", Static).update(head)


def _word(status: str) -> str:
    return {"ok": "ok", "fail": "fail", "warn": "warn", "skip": "skipped", "pending": "…", "running": "…", "info": "info"}.get(status, status)


# --- the demo's scenario switcher -----------------------------------------------------------------


class ScenarioSwitcher(ModalScreen[str | None]):
    """Demo mode: break the sandbox world on purpose (or repair it) and watch the board react."""

    DEFAULT_CSS = """
    ScenarioSwitcher { align: center middle; }
    ScenarioSwitcher > Vertical { width: 90%; max-width: 90; height: auto; max-height: 90%; border: thick $warning; background: $surface; padding: 0 1; }
    ScenarioSwitcher #switch-title { text-style: bold; padding-bottom: 1; }
    ScenarioSwitcher OptionList { height: auto; max-height: 14; }
    ScenarioSwitcher #switch-what { height: auto; padding-top: 1; color: $text-muted; }
    """
    HELP_TITLE = "Demo: scenario switcher"
    HELP = """\
**Break the demo world on purpose**, then watch the board find it and read its diagnosis.

- **○** entries break something production has seen (a blocked overlay, a taken port, a
  firewall drop on one worker's ingress, a failing registry, a stopped worker); each says what to
  expect.
- **●** marks a break that is active now: choosing it repairs it.
- **↑ ↓** to choose, **Enter** applies, **Esc** closes without changing anything.

Everything happens inside the sandbox world of `keybuzz-tui --demo`; nothing leaves this machine.
"""
    BINDINGS = [
        Binding("escape", "dismiss_none", "Close", id="switch.close", tooltip="Close without changing anything"),
        Binding("f1", "app.help", "Help", tooltip="What the switches do"),
    ]

    def __init__(self, active: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        from keybuzz_tui.app import demo_switch_entries

        # the same list as the command palette's: one entry per break, an active one offered as its repair
        self.entries = {action: explain for action, _, explain in demo_switch_entries(self.active)}
        opts = [Option(Text(label), id=action) for action, label, _ in demo_switch_entries(self.active)]
        with Vertical():
            yield Label("Demo: break the world on purpose, then watch the board (Enter applies, Esc closes)", id="switch-title")
            yield OptionList(*opts, id="switch-list")
            yield Static("", id="switch-what")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.query_one("#switch-what", Static).update(Text(self.entries.get(event.option.id or "", "")))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


# --- `f` on a fault outside the wizard's reach -----------------------------------------------------


class FixCommands(ModalScreen[str | None]):
    """What to run, and where, for a fault no wizard step can repair (a node's own firewall):
    the exact commands; `d` opens the Doctor instead."""

    DEFAULT_CSS = """
    FixCommands { align: center middle; }
    FixCommands > Vertical { width: 90%; max-width: 100; height: auto; max-height: 90%; border: thick $warning; background: $surface; padding: 0 1; }
    FixCommands #fixcmd-title { text-style: bold; padding-bottom: 1; }
    FixCommands VerticalScroll { height: auto; max-height: 70vh; }
    FixCommands Markdown { margin: 0; padding: 0; }
    FixCommands Horizontal { height: 1; align-horizontal: right; }
    FixCommands Button { margin-left: 2; }
    """
    HELP_TITLE = "Fix: commands to run on a node"
    HELP = """\
**This fault is outside keybuzz-tui's reach**: no wizard step can change a node's own firewall.

- The commands say what to run, and on which node (ssh to it, as root).
- The board keeps running underneath: once the port answers, the fast lane shows it within a
  second and the full check confirms it.
- **d** opens the Doctor (the ranked causes, the Hetzner firewall), **Esc** closes.
"""
    BINDINGS = [
        Binding("escape", "close", "Close", id="fixcmd.close", tooltip="Back to the board"),
        Binding("d", "doctor", "Doctor", id="fixcmd.doctor", tooltip="Open the Doctor instead"),
        Binding("f1", "app.help", "Help", show=False, tooltip="What this is"),
    ]

    def __init__(self, fix: Any, title: str) -> None:
        super().__init__()
        self.fix = fix
        self.check_title = title

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal, VerticalScroll
        from textual.widgets import Button, Markdown

        fix = self.fix
        where = ", ".join(fix.nodes) if fix.nodes else "the node"
        body = [REDACTOR.redact(fix.why[:1].upper() + fix.why[1:]) + ".", "", f"**Run on {where}** (ssh, as root):", "", "```sh",
                *(REDACTOR.redact(c) for c in fix.commands), "```", "",
                "The server's Hetzner firewall must let the port in too: the Doctor (`d`) checks it. The board keeps running "
                "and shows the port answering within a second."]
        with Vertical():
            yield Label(f"Fix: {self.check_title}", id="fixcmd-title", markup=False)
            with VerticalScroll():
                yield Markdown("\n".join(body), id="fixcmd-body")
            with Horizontal():
                yield Button("Open the Doctor (d)", id="fixcmd-doctor", variant="default", compact=True)
                yield Button("Close (Esc)", id="fixcmd-close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#fixcmd-close").focus()

    def on_button_pressed(self, event: Any) -> None:
        self.dismiss("doctor" if event.button.id == "fixcmd-doctor" else None)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_doctor(self) -> None:
        self.dismiss("doctor")


# --- the board alone --------------------------------------------------------------------------------


class BoardApp(StepHost):
    """`keybuzz-tui validate --board`: the board and nothing else, on the given platform.

    BoardApp(config, endpoints, secrets, journal_path=..., sandbox=None).run()
    """

    TITLE = "KeyBuzz validation board"

    def __init__(self, config: Any, endpoints: Any, secrets: Any = None, *, journal_path: Path | None = None, sandbox: Any = None, interval: float | None = None) -> None:
        super().__init__(config, endpoints, secrets, screen=lambda: BoardScreen(interval=interval), journal_path=journal_path, sandbox=sandbox)
