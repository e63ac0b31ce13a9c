"""Step 4, Review: the full plan against the live state, before anything changes.

Kubernetes objects and Hetzner resources (load balancer, certificate, targets, DNS records,
firewall) as create / update / unchanged / manual, with a readable field diff of the selected item.
Errors the plan already knows (a NodePort allocated to another Service, missing permissions, a
read-only token, a missing secret) are shown on top with what to do. Nothing is applied here:
*Apply* (after a confirmation) moves to the Rollout step with exactly this plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from keybuzz_tui.screens.widgets import ConfirmModal, StepScreen, tone
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Static

from keybuzz_tui.redact import REDACTOR, safe_error

# action -> (symbol, tone): the tone's colour comes from the current theme (widgets.tone)
ACTION_STYLE = {"create": ("+", "ok"), "update": ("~", "warn"), "unchanged": ("=", "pending"), "delete": ("-", "fail"), "manual": ("?", "running")}
LINE_TONE = {"+": "ok", "-": "fail", "~": "warn"}
LAYER_LABEL = {"kubernetes": "Kubernetes", "hetzner": "Hetzner", "dns": "DNS", "firewall": "Firewall"}


def _bold(style: Style | str) -> Style:
    return Style(bold=True) + (style if isinstance(style, Style) else Style.parse(style) if style else Style())


def diff_text(change: Any, app: Any = None) -> Text:
    """The readable diff of one change: + added, - removed, ~ changed (old -> new)."""
    out = Text()
    sym, name = ACTION_STYLE.get(change.action, ("·", "info"))
    out.append(f"{sym} {change.action} {change.ref}\n", style=_bold(tone(app, name)))
    if change.note:
        out.append(f"{change.note}\n", style="italic")
    if change.destructive:
        out.append("destructive: this removes or replaces something that exists\n", style=_bold(tone(app, "fail")))
    lines = change.lines()
    if change.action == "create" and isinstance(change.desired, dict) and change.desired:
        import yaml

        body = yaml.safe_dump(change.desired, sort_keys=False, default_flow_style=False, width=100)
        lines = [f"+ {ln}" for ln in body.rstrip().splitlines()]
    if not lines:
        out.append("no field changes" if change.action == "unchanged" else "(no field diff)", style="dim")
    for line in lines:
        line = REDACTOR.redact(line)
        out.append(line + "\n", style=tone(app, LINE_TONE[line[:1]], bold=False) if line[:1] in LINE_TONE else "")
    return out


class ReviewScreen(StepScreen):
    STEP = "review"
    CSS_PATH = "review.tcss"
    HELP = """\
**Review**: what the install would change, computed against the live cluster and Hetzner
project. Nothing has changed yet.

- The table lists every Kubernetes object and Hetzner resource: **+ create**, **~ update**,
  **= unchanged**, **? manual** (something keybuzz-tui will not do by itself). Select one to see its
  field diff on the right (or below on a small terminal): `+` added, `-` removed, `~` changed.
- **Errors** found while planning (a NodePort already allocated to another Service, missing
  permissions, a read-only Hetzner token, a missing secret) are shown on top in red with what to
  do. Fix them (often in the Ports or Credentials step) and press *r* to plan again.
- *ctrl+s* saves the answers to keybuzz.yaml (never secrets): `keybuzz-tui apply --config
  keybuzz.yaml` replays this install without a terminal.
- *e* exports the Kubernetes manifests as YAML next to keybuzz.yaml, Secret values masked.
- *Apply* asks for confirmation, then moves to the Rollout step, which applies this plan and
  watches every worker.

Keys: `a` apply (asks first), `r` plan again, `ctrl+s` save the answers, `e` export the manifests,
↑↓ select a change (its diff follows), `tab` moves between the plan and the buttons.
"""
    BINDINGS: ClassVar[list[Any]] = [
        Binding("a", "apply", "Apply…", id="review.apply", tooltip="Apply this plan (asks first), then watch the rollout"),
        # short words: with F1 Help, ^q Quit, ^n Next and ^b Back they fit 80 columns (the
        # tooltips and F1 say the rest)
        Binding("ctrl+s", "save", "Save", id="review.save", tooltip="Save the answers to keybuzz.yaml (no secrets)"),
        Binding("e", "export", "Export", id="review.export", tooltip="Export the manifests as YAML (Secret values masked)"),
        Binding("r", "replan", "Replan", id="review.replan", tooltip="Compute the plan again against the live state"),
    ]

    class Planned(Message):
        def __init__(self, full: Any, remediations: list[str]) -> None:
            super().__init__()
            self.full = full
            self.remediations = remediations

    class Exported(Message):
        def __init__(self, path: str, error: str) -> None:
            super().__init__()
            self.path = path
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.full: Any = None
        self.planning = False
        self.export_path: Path | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(Text("computing the plan against the live state…", style="italic"), id="plan-summary")
        yield Static("", id="plan-errors", classes="error-box hidden")
        with Horizontal(id="review-main"):
            table: DataTable[Any] = DataTable(id="plan-table", cursor_type="row", zebra_stripes=True)
            yield table
            with VerticalScroll(id="diff-pane", classes="panel") as p:
                p.border_title = "Diff"
                yield Static("", id="plan-diff")
        with Horizontal(classes="buttons", id="review-buttons"):
            yield Button("Apply…", id="apply", variant="primary")
            yield Button("Save answers", id="save")
            yield Button("Export YAML", id="export")

    def on_mount(self) -> None:
        table = self.query_one("#plan-table", DataTable)
        table.add_column("", key="action", width=2)
        table.add_column("Layer", key="layer")
        table.add_column("Object", key="ref")
        self.watch(self.app, "world", self._world_changed, init=True)

    def _world_changed(self, world: str) -> None:
        if world == "ready" and self.full is None and not self.planning:
            self.action_replan()

    # --- planning ------------------------------------------------------------------------------

    def action_replan(self) -> None:
        if self.kb.endpoints is None:
            return
        self.planning = True
        self.query_one("#plan-summary", Static).update(Text("computing the plan against the live state…", style="italic"))
        self._plan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="review-plan", description="compute the plan")
    def _plan(self) -> None:
        """Each layer is planned on its own, so one failing layer does not hide the others."""
        from keybuzz_tui.engine.platform import FullPlan

        fp = FullPlan()
        remediations: list[str] = []
        try:
            with self.kb.bridge.run(self, name="plan") as ctx:
                platform = self.kb.bridge.platform(ctx)
                steps: list[tuple[str, Any]] = [
                    ("ports", lambda: fp.port_checks.extend(platform.scan_ports())),
                    ("kubernetes", lambda: fp.plan.extend(platform.plan_kubernetes())),
                    ("load balancer", lambda: fp.plan.extend(platform.plan_lb())),
                    ("dns", lambda: fp.plan.extend(platform.plan_dns())),
                ]
                if ctx.config.firewall.mode != "off":
                    steps.append(("firewall", lambda: fp.plan.extend(platform.plan_firewall())))
                for name, fn in steps:
                    ctx.cancel.check()
                    try:
                        fn()
                    except Exception as e:
                        from keybuzz_tui.cancel import Cancelled

                        if isinstance(e, Cancelled):
                            raise
                        fp.errors.append(f"{name}: {safe_error(e)}")
                        remediations.append(REDACTOR.redact(str(getattr(e, "remediation", "") or "")))
        except Exception as e:
            fp.errors.append(f"plan: {safe_error(e)}")
            remediations.append("")
        self.post_message(self.Planned(fp, remediations))

    @on(Planned)
    def _planned(self, msg: Planned) -> None:
        self.planning = False
        self.full = msg.full
        self.kb.full_plan = msg.full
        self._show(msg.full, msg.remediations)

    def problems(self) -> list[tuple[str, str]]:
        """(problem, what to do) for everything that blocks an apply."""
        fp = self.full
        if fp is None:
            return []
        out = [(e, r) for e, r in zip(fp.errors, self._remediations, strict=False)]
        for c in fp.conflicts:
            out.append((f"ports: {c.title}: {c.detail}", c.remediation))
        for c in fp.port_checks:
            if getattr(c, "status", "") == "invalid":
                out.append((f"ports: {c.title}: {c.detail}", c.remediation))
        return [(p, "" if r and r.strip() in p else r) for p, r in out]

    def notes(self) -> list[str]:
        """Plan warnings: worth reading, not blocking (e.g. DNS waits for the LB's address)."""
        return list(self.full.plan.warnings) if self.full is not None else []

    def _show(self, fp: Any, remediations: list[str]) -> None:
        self._remediations = remediations
        counts = fp.plan.counts()
        summary = Text()
        parts = [f"{counts[k]} to {k}" for k in ("create", "update", "delete") if counts[k]]
        parts.append(f"{counts['unchanged']} unchanged")
        if counts["manual"]:
            parts.append(f"{counts['manual']} manual")
        problems = self.problems()
        if problems:
            summary.append(f"✗ {len(problems)} problem{'s' if len(problems) > 1 else ''} block the apply · ", style=tone(self.app, "fail"))
        else:
            summary.append("✓ ready to apply · ", style=tone(self.app, "ok"))
        summary.append(", ".join(parts))
        summary.append("  (nothing has changed yet)", style="dim")
        self.query_one("#plan-summary", Static).update(summary)
        box = self.query_one("#plan-errors", Static)
        notes = self.notes()
        if problems or notes:
            t = Text()
            for p, r in problems:
                if t:
                    t.append("\n")
                t.append(f"✗ {REDACTOR.redact(p)}", style="bold")
                if r:
                    t.append(f"\n  → {REDACTOR.redact(r)}")
            for n in notes:
                if t:
                    t.append("\n")
                t.append(f"! {REDACTOR.redact(n)}", style="italic")
            box.update(t)
            box.set_class(not problems, "warn-box")
            box.set_class(bool(problems), "error-box")
            box.remove_class("hidden")
        else:
            box.add_class("hidden")
        table = self.query_one("#plan-table", DataTable)
        with self.app.batch_update():
            table.clear()
            for i, c in enumerate(fp.plan.changes):
                sym, name = ACTION_STYLE.get(c.action, ("·", "info"))
                style = tone(self.app, name)
                table.add_row(Text(sym, style=_bold(style)), LAYER_LABEL.get(c.layer, c.layer), Text(c.ref, style=style if c.action == "unchanged" else ""), key=str(i))
        if fp.plan.changes:
            table.move_cursor(row=0)
            self._show_diff(0)
        else:
            self.query_one("#plan-diff", Static).update(Text("no changes planned", style="dim"))
        self.kb.mark_done(self.STEP, False)

    def repaint_theme(self) -> None:
        """The summary, the plan's symbols and the diff carry the theme's colours."""
        if self.full is None:
            return
        table = self.query_one("#plan-table", DataTable)
        cursor = table.cursor_row
        done = self.STEP in self.kb.done_steps
        self._show(self.full, getattr(self, "_remediations", []))
        self.kb.mark_done(self.STEP, done)
        if 0 <= cursor < table.row_count:
            table.move_cursor(row=cursor)
            self._show_diff(cursor)

    def _show_diff(self, index: int) -> None:
        fp = self.full
        if fp is None or not 0 <= index < len(fp.plan.changes):
            return
        self.query_one("#plan-diff", Static).update(diff_text(fp.plan.changes[index], self.app))

    @on(DataTable.RowHighlighted, "#plan-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self._show_diff(int(event.row_key.value))

    # --- actions -------------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self.kb.action_save_answers()

    @on(Button.Pressed, "#export")
    def action_export(self) -> None:
        if self.kb.endpoints is None:
            return
        base = self.kb.config_path.parent if self.kb.config_path is not None else Path.cwd()
        self._export(base / "keybuzz-manifests.yaml")

    @work(thread=True, exclusive=True, exit_on_error=False, group="review-export", description="export the manifests")
    def _export(self, path: Path) -> None:
        from keybuzz_tui.engine import render

        try:
            text = render.export(self.kb.config, self.kb.secrets, reveal=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(REDACTOR.redact(text))
        except Exception as e:
            self.post_message(self.Exported(str(path), safe_error(e)))
            return
        self.post_message(self.Exported(str(path), ""))

    @on(Exported)
    def _exported(self, msg: Exported) -> None:
        if msg.error:
            self.notify(f"cannot export the manifests: {msg.error}", title="Export", severity="error", markup=False)
            return
        self.export_path = Path(msg.path)
        self.notify(f"{msg.path} (Secret values masked)", title="Manifests exported", markup=False)

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        fp = self.full
        if fp is None:
            self.notify("The plan is not computed yet.", severity="warning")
            return
        problems = self.problems()
        if problems:
            self.notify(f"{len(problems)} problem(s) block the apply: fix them (see the red box), then press r.", title="Not applied", severity="error")
            return
        k8s = [c for c in fp.plan.changes if c.layer == "kubernetes" and c.action != "unchanged"]
        rest = [c for c in fp.plan.changes if c.layer != "kubernetes" and c.action != "unchanged"]
        body = (
            f"The Rollout step applies {len(k8s)} Kubernetes change(s) with server-side apply and watches "
            f"every worker. The {len(rest)} Hetzner/DNS change(s) are applied in the Load balancer and DNS steps, "
            "each after its own plan. Every change is recorded in the journal; an interrupted apply resumes "
            "on the next run."
        )

        def answered(choice: str | None) -> None:
            if choice == "apply":
                self.kb.full_plan = fp
                self.kb.mark_done(self.STEP)
                self.kb.save_answers()
                self.kb.goto("rollout", fresh=True)

        self.app.push_screen(ConfirmModal(f"Apply the plan? ({fp.plan.summary()})", body, [("apply", "Apply", "warning"), ("cancel", "Not yet", "default")]), answered)
