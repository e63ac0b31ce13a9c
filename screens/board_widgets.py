"""Pieces shared by the install-progress screens (rollout, load balancer, DNS) and the board.

- Status styling that reads in monochrome (a symbol and a word in every cell) and follows the
  light and dark themes (colours taken from the theme's `text-*` variables).
- `MarkdownConfirm`: a yes/no modal whose body is Markdown (revision tables, record lists).
- `StepHost`: a small App that hosts one step screen with the engine bridge; it is what
  `keybuzz-tui validate --board` runs (BoardApp) and what the screens' tests drive.
- Navigation helpers that use the wizard shell's methods when it has them.

Only screens import this module; the engine never does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keybuzz_tui.screens.bridge import EngineBridge
from keybuzz_tui.screens.widgets import Tones  # re-exported: the progress screens import it from here
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Label, Markdown

if TYPE_CHECKING:
    from keybuzz_tui.sandbox.runtime import Sandbox

Clock = Callable[[], float]

SYMBOL = {
    "ok": "✓",
    "fail": "✗",
    "warn": "!",
    "pending": "…",
    "running": "◐",
    "skip": "–",
    "info": "·",
    "unknown": "?",
    "unreached": "·",
}
WORD = {"ok": "ok", "fail": "fail", "warn": "warn", "pending": "pending", "running": "running", "skip": "skipped", "info": "info", "unknown": "unknown"}


# --- styling -----------------------------------------------------------------------------------


def status_text(app: Any, status: str, label: str | None = None, *, symbol: str | None = None) -> Text:
    """`✓ ok`, `✗ CrashLoopBackOff`...: a symbol and a word, coloured by the theme."""
    sym = SYMBOL.get(status, "?") if symbol is None else symbol
    word = WORD.get(status, status) if label is None else label
    style = Tones.of(app).get(status, Style())
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{sym} {word}".strip(), style=style)  # a span, so text appended later keeps its own style
    return out


def when_world_ready(screen: Any, fn: Callable[[], None], *, on_error: Callable[[], None] | None = None,
                     endpoints_default: Any = None) -> None:
    """Run `fn` now if the wizard shell has connected to the platform, else once it has: the
    screen's `state` says "waiting" meanwhile (and `_render_head` shows it). `on_error` runs if
    the connection fails instead. A host without `endpoints` counts as connected only when
    `endpoints_default` is not None (the board alone has no wizard shell)."""
    app: Any = screen.app
    if getattr(app, "world", "ready") == "ready" and getattr(app, "endpoints", endpoints_default) is not None:
        fn()
        return
    screen.state = "waiting"
    screen._render_head()

    def changed(value: str) -> None:
        if value == "ready" and screen.state == "waiting":
            screen.state = "idle"
            fn()
        elif value == "error" and on_error is not None:
            on_error()

    screen.watch(app, "world", changed, init=False)


def plain(text: Any, style: str | Style = "") -> Text:
    """A cell that is never parsed as markup (pod names, messages, hostnames)."""
    return Text(str(text), style=style, no_wrap=True, overflow="ellipsis")


def elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "just now"
    if seconds < 90:
        return f"{int(seconds)}s ago"
    return f"{int(seconds // 60)}m ago"


# --- modals ------------------------------------------------------------------------------------


class MarkdownConfirm(ModalScreen[bool]):
    """A yes/no question with a body (Markdown) that says exactly what will happen."""

    DEFAULT_CSS = """
    MarkdownConfirm { align: center middle; }
    MarkdownConfirm > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    MarkdownConfirm #confirm-title { text-style: bold; width: 1fr; padding: 0 0 1 0; }
    MarkdownConfirm VerticalScroll { height: auto; max-height: 70vh; }
    MarkdownConfirm Markdown { margin: 0; padding: 0; }
    MarkdownConfirm Horizontal { height: auto; align-horizontal: right; padding-top: 1; }
    MarkdownConfirm Button { margin-left: 2; }
    MarkdownConfirm #confirm-keys { width: 1fr; height: 3; content-align: left middle; color: $text-muted; }
    """
    HELP_TITLE = "Question"
    HELP = """\
**A question before something changes.** The text says exactly what will happen.

- **y** answers yes (the orange button), **n** or **Esc** answers no: nothing changes;
- **Tab** / **←** / **→** move between the buttons, **Enter** presses the highlighted one
  (*Cancel* is highlighted when the question opens).
"""
    BINDINGS = [
        Binding("escape", "answer(False)", "No", id="confirm.no", tooltip="Answer no: nothing changes"),
        Binding("f1", "app.help", "Help", show=False, tooltip="How to answer this question"),
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Answer yes"),
        Binding("n", "answer(False)", "No", show=False, tooltip="Answer no: nothing changes"),
        Binding("left", "app.focus_previous", "Previous button", show=False),
        Binding("right", "app.focus_next", "Next button", show=False),
    ]

    def __init__(self, title: str, body: str, *, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__()
        self._title, self._body, self._yes, self._no = title, body, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="confirm-title", markup=False)
            with VerticalScroll():
                yield Markdown(self._body, id="confirm-body")
            with Horizontal():
                yield Label("y: yes · n / Esc: no · Enter: the highlighted button", classes="muted", id="confirm-keys")
                yield Button(self._no, id="no", variant="default")
                yield Button(self._yes, id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


# --- navigation (the wizard shell's methods when it has them) -----------------------------------


def step_next(screen: Screen[Any], result: Any = None) -> None:
    """This step is done: let the wizard go to the next one (or close the screen when hosted alone)."""
    app: Any = screen.app
    for name in ("step_done", "action_next_step", "next_step"):
        fn = getattr(app, name, None)
        if callable(fn):
            fn(screen, result) if name == "step_done" else fn()
            return
    if len(app.screen_stack) > 1 and app.screen is screen:
        screen.dismiss(result)


def step_back(screen: Screen[Any]) -> None:
    """Go back one step: the wizard's own `step_back(screen)` / `action_prev_step()`, else (a
    screen hosted alone, pushed over another) close this screen.

    Never Textual's `App.action_back`: it is a coroutine (pop the screen), so calling it without
    awaiting does nothing at all (the Esc-does-nothing bug of the wizard's engine steps)."""
    app: Any = screen.app
    fn = getattr(app, "step_back", None)
    if callable(fn) and not inspect.iscoroutinefunction(fn):
        fn(screen)
        return
    fn = getattr(app, "action_prev_step", None)
    if callable(fn) and not inspect.iscoroutinefunction(fn):
        fn()
        return
    if len(app.screen_stack) > 2 and app.screen is screen:
        app.pop_screen()


# --- a host for one step ---------------------------------------------------------------------------


class StepHost(App[None]):
    """One step screen on its own, with the same engine plumbing as the wizard (an EngineBridge
    over config, endpoints and secrets). `BoardApp` is this with the board; tests use it to drive
    a step screen against a sandbox without the rest of the wizard."""

    BINDINGS = [
        Binding("f1", "help", "Help", id="host.help", tooltip="What this screen shows and the keys that work here"),
        Binding("ctrl+q", "quit", "Quit", id="host.quit", priority=True, tooltip="Leave (running work is cancelled at its next safe point)"),
    ]
    done_steps: reactive[frozenset[str]] = reactive(frozenset())
    demo_active: reactive[frozenset[str]] = reactive(frozenset())
    """Demo: the breaking switches whose break is in the sandbox world now."""

    def __init__(
        self,
        config: Any,
        endpoints: Any,
        secrets: Any = None,
        *,
        screen: Callable[[], Screen[Any]],
        journal_path: Path | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        super().__init__()
        from keybuzz_tui.engine.context import NoSecrets

        self.config = config
        self.endpoints = endpoints
        self.secrets = secrets or NoSecrets()
        self.journal_path = journal_path
        self.sandbox = sandbox
        self.demo = sandbox is not None
        self.bridge = EngineBridge(self)
        self._make_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self._make_screen())
        if self.sandbox is not None:
            self._read_demo_active(self.sandbox)

    @work(thread=True, exit_on_error=False, group="demo-state", description="read the demo world's breaks")
    def _read_demo_active(self, sb: Sandbox) -> None:
        from keybuzz_tui.app import refresh_demo_active

        refresh_demo_active(self, sb, self.config)

    def action_help(self) -> None:
        from keybuzz_tui.screens.widgets import HelpScreen, bindings_of

        screen = self.screen
        if isinstance(screen, HelpScreen):
            return
        title = getattr(screen, "HELP_TITLE", None) or str(screen.TITLE or type(screen).__name__)
        self.push_screen(HelpScreen(title, getattr(screen, "HELP", None) or "", bindings_of(screen)))

    def demo_switch(self, action: str) -> None:
        """Break (or repair) the sandbox world, in a thread worker; a notification says what
        (the wizard's own implementation: keybuzz_tui.app.run_demo_switch)."""
        if self.sandbox is None:
            self.notify("The scenario switcher works in demo mode only.", severity="warning")
            return
        self._demo_switch(self.sandbox, action)

    @work(thread=True, exit_on_error=False, group="demo-switch", description="change the sandbox world")
    def _demo_switch(self, sb: Sandbox, action: str) -> None:
        from keybuzz_tui.app import run_demo_switch

        run_demo_switch(self, sb, action, self.config)

    async def action_quit(self) -> None:
        self.bridge.cancel_all("the app is closing")
        self.exit()


# --- plans ---------------------------------------------------------------------------------------

ACTION_STATUS = {"create": ("running", "+ create"), "update": ("warn", "~ update"), "delete": ("fail", "- delete"), "unchanged": ("pending", "= unchanged"), "manual": ("warn", "? manual")}


def fill_plan_table(app: Any, table: Any, changes: list[Any]) -> None:
    """A plan as rows: action (symbol + word), resource, what changes (the diff, or the note).

    Column widths follow the table's width so nothing scrolls sideways at 80 columns; the full
    diff of a row is one Enter away (the screens log it)."""
    width = max(60, (table.size.width or table.app.size.width) - 4)
    # the resource is the key text: as wide as its longest name, leaving "What changes" 20 columns
    longest = max((len(f"{c.kind} {c.name}") for c in changes), default=18)
    res_w = max(18, min(longest, width - 11 - 6 - 20))
    what_w = max(12, width - 11 - res_w - 6)
    table.clear(columns=True)
    table.add_column("Action", key="action", width=11)
    table.add_column("Resource", key="resource", width=res_w)
    table.add_column("What changes", key="what", width=what_w)
    for i, c in enumerate(changes):
        tone, word = ACTION_STATUS.get(c.action, ("info", c.action))
        what = "; ".join(c.lines()[:3]) if c.diff else (c.note or "")
        if c.diff and len(c.diff) > 3:
            what += f" (+{len(c.diff) - 3} more)"
        if c.destructive:
            what = f"DESTRUCTIVE: {what}"
        action = Text(word, style=Tones.of(app).get(tone, Style()), no_wrap=True)
        table.add_row(action, plain(f"{c.kind} {c.name}"), plain(what), key=str(i))


def change_lines(c: Any) -> list[str]:
    """Everything about one planned change, for the log when the operator selects its row."""
    out = [f"{c.action} {c.kind} {c.name}" + (f" ({c.note})" if c.note else "")]
    out += [f"    {line}" for line in c.lines()]
    return out


def text_bar(progress: int, width: int = 14) -> str:
    """A progress bar that reads without colour: ████████░░░░░░  57%."""
    progress = max(0, min(100, int(progress)))
    filled = round(width * progress / 100)
    return "█" * filled + "░" * (width - filled) + f" {progress:3d}%"
