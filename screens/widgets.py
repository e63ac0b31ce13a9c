"""Shared pieces of the wizard: the step list, the step indicator, the base step screen, help and
confirmation modals, status badges.

Every step screen (including the ones other modules add later) gets the same frame: a header, the
step indicator, its body, and a footer with its bindings; F1 opens a HelpScreen built from the
screen's HELP text and its live bindings. Nothing here imports the engine's clients: the first
screen must paint before kubernetes or hcloud are imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Markdown, Static

if TYPE_CHECKING:
    from keybuzz_tui.app import KeybuzzApp


# --- the steps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One wizard step: its id (used by goto and the command palette), its title, and where its
    screen class lives (module stems tried in order inside keybuzz_tui.screens, class name)."""

    id: str
    title: str
    short: str
    modules: tuple[str, ...]
    class_name: str


STEPS: tuple[Step, ...] = (
    Step("welcome", "Welcome", "Welcome", ("welcome",), "WelcomeScreen"),
    Step("credentials", "Credentials", "Creds", ("credentials",), "CredentialsScreen"),
    Step("ports", "Ports", "Ports", ("ports",), "PortsScreen"),
    Step("review", "Review", "Review", ("review",), "ReviewScreen"),
    Step("rollout", "Rollout", "Rollout", ("rollout",), "RolloutScreen"),
    Step("lb", "Load balancer", "LB", ("lb", "loadbalancer", "load_balancer"), "LoadBalancerScreen"),
    Step("dns", "DNS", "DNS", ("dns",), "DnsScreen"),
    Step("validation", "Validation", "Validate", ("board", "validation"), "BoardScreen"),
)
STEP_IDS: tuple[str, ...] = tuple(s.id for s in STEPS)


def step_by_id(step_id: str) -> Step:
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(step_id)


# --- the step indicator ----------------------------------------------------------------------


class StepIndicator(Static):
    """Welcome › Credentials › … with the current step highlighted and done steps ticked.

    It renders the full titles when they fit, and a compact form (numbers, the current step
    named) on a narrow terminal, so it always holds on one line at 80 columns.
    """

    DEFAULT_CSS = """
    StepIndicator { height: 1; width: 1fr; padding: 0 1; background: $panel; }
    """

    def __init__(self, current: str = "welcome", done: Iterable[str] = (), **kw: Any) -> None:
        super().__init__("", **kw)
        self.current = current
        self.done: frozenset[str] = frozenset(done)

    def on_mount(self) -> None:
        app = self.app
        if hasattr(app, "done_steps"):
            self.watch(app, "done_steps", self._done_changed, init=True)

    def _done_changed(self, done: frozenset[str]) -> None:
        self.done = frozenset(done)
        self.refresh()

    def set_state(self, current: str, done: Iterable[str]) -> None:
        self.current = current
        self.done = frozenset(done)
        self.refresh()

    def on_resize(self, event: Resize) -> None:
        self.refresh()

    def render(self) -> Text:
        width = max(self.size.width - 2, 20)
        full = self._line(compact=False)
        return full if full.cell_len <= width else self._line(compact=True)

    def _line(self, compact: bool) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, s in enumerate(STEPS):
            if i:
                out.append(" › " if not compact else " ", style="dim")
            done = s.id in self.done
            mark = "✓" if done else ""
            if s.id == self.current:
                label = f"{i + 1} {s.title}" if compact else s.title
                out.append(f"▶ {label}{(' ' + mark) if mark else ''}", style="bold reverse")
            elif compact:
                out.append(f"{i + 1}{mark}", style="green" if done else "dim")
            else:
                out.append(f"{s.title}{(' ' + mark) if mark else ''}", style="green" if done else "")
        return out


# --- status badges ---------------------------------------------------------------------------

STATUS_SYMBOL = {
    "ok": "✓", "valid": "✓", "fail": "✗", "wrong": "✗", "error": "✗", "conflict": "✗", "invalid": "✗",
    "warn": "!", "read-only": "!", "unreachable": "!", "pending": "…", "running": "…", "info": "·",
    "unknown": "?", "skip": "-",
}
STATUS_CLASS = {
    "ok": "ok", "valid": "ok", "fail": "fail", "wrong": "fail", "error": "fail", "conflict": "fail",
    "invalid": "fail", "warn": "warn", "read-only": "warn", "unreachable": "warn", "pending": "pending",
    "running": "pending", "info": "info", "unknown": "pending", "skip": "pending",
}


class StatusBadge(Static):
    """A status word with a symbol, colored by CSS class (-ok, -warn, -fail, -pending, -info), so
    it reads the same in the light and dark themes and without color (the symbol says it too)."""

    DEFAULT_CSS = """
    StatusBadge { width: auto; height: auto; padding: 0 1; }
    StatusBadge.-ok { color: $text-success; background: $success-muted; }
    StatusBadge.-warn { color: $text-warning; background: $warning-muted; }
    StatusBadge.-fail { color: $text-error; background: $error-muted; }
    StatusBadge.-pending { color: $text-muted; }
    StatusBadge.-info { color: $text-primary; }
    """

    def __init__(self, status: str = "pending", text: str = "", **kw: Any) -> None:
        super().__init__("", **kw)
        self.set_status(status, text)

    def set_status(self, status: str, text: str = "") -> None:
        self.status = status
        for cls in ("ok", "warn", "fail", "pending", "info"):
            self.remove_class(f"-{cls}")
        self.add_class(f"-{STATUS_CLASS.get(status, 'info')}")
        sym = STATUS_SYMBOL.get(status, "·")
        self.update(Text(f"{sym} {text or status}"))


def status_text(status: str, text: str = "") -> Text:
    """A status for a DataTable cell: symbol + word, styled by status (theme-neutral colors)."""
    style = {"ok": "green", "fail": "red", "warn": "yellow", "pending": "dim", "info": ""}[STATUS_CLASS.get(status, "info")]
    return Text(f"{STATUS_SYMBOL.get(status, '·')} {text or status}", style=style)


# --- modals ----------------------------------------------------------------------------------


class HelpScreen(ModalScreen[None]):
    """F1: the screen's HELP text and the keys that work on it right now."""

    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape,f1,q", "dismiss", "Close help", tooltip="Close this help and go back to the screen"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; max-width: 110; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen #help-title { text-style: bold; padding: 0 0 1 0; }
    HelpScreen Markdown { height: auto; margin: 0; padding: 0; }
    HelpScreen DataTable { height: auto; max-height: 16; margin-top: 1; }
    HelpScreen #help-close { dock: bottom; width: 100%; }
    """

    def __init__(self, title: str, help_text: str, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.help_title = title
        self.help_text = help_text
        self.help_bindings = bindings

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Help: {self.help_title}", id="help-title")
            with VerticalScroll(id="help-body"):
                yield Markdown(self.help_text or "No help for this screen yet.", id="help-text")
                table: DataTable[str] = DataTable(id="help-keys", show_cursor=False, zebra_stripes=True)
                table.add_columns("Key", "What it does")
                for key, desc in self.help_bindings:
                    table.add_row(key, desc)
                yield table
            yield Button("Close (Esc)", id="help-close", variant="primary")

    @on(Button.Pressed, "#help-close")
    def _close(self) -> None:
        self.dismiss(None)


def bindings_of(screen: Screen[Any]) -> list[tuple[str, str]]:
    """(key, description) for every binding active on `screen`, its focused widget and the app."""
    app = screen.app
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        b = active.binding
        desc = b.tooltip or b.description
        if not desc or b.system:
            continue
        display = app.get_key_display(b)
        if (display, desc) in seen:
            continue
        seen.add(display)
        out.append((display, desc))
    return sorted(out, key=lambda kv: kv[0].lower())


class ConfirmModal(ModalScreen[str]):
    """A question with explicit choices; dismisses with the chosen id ("cancel" on Escape)."""

    BINDINGS: ClassVar[list[Any]] = [Binding("escape", "choose('cancel')", "Cancel", tooltip="Close without choosing")]
    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%; border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmModal #confirm-title { text-style: bold; }
    ConfirmModal #confirm-body { margin: 1 0; height: auto; }
    ConfirmModal Horizontal { height: auto; }
    ConfirmModal Button { margin-right: 1; }
    """

    def __init__(self, title: str, body: str, choices: list[tuple[str, str, str]]) -> None:
        """choices: (id, label, variant) — variant is a Button variant (primary, warning, error, default)."""
        super().__init__()
        self.title_text = title
        self.body_text = body
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, id="confirm-title")
            yield Static(self.body_text, id="confirm-body")
            with Horizontal():
                for cid, label, variant in self.choices:
                    yield Button(label, id=f"choice-{cid}", variant=variant)  # type: ignore[arg-type]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        bid = event.button.id or ""
        self.dismiss(bid.removeprefix("choice-"))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


# --- the base step screen --------------------------------------------------------------------


class StepScreen(Screen[None]):
    """The frame every wizard step shares. Subclasses set STEP, HELP and compose_body().

    Width >= 120 adds the CSS class -wide so stylesheets can use a large terminal's space.
    Workers started by the screen are cancelled (their CancelTokens too) when it goes away.
    """

    STEP: ClassVar[str] = ""
    HELP: ClassVar[str | None] = None
    WIDE = 120

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="⎈")
        yield StepIndicator(self.STEP, id="steps")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def kb(self) -> KeybuzzApp:
        return self.app  # type: ignore[return-value]

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= self.WIDE, "-wide")

    def on_screen_resume(self) -> None:
        self.set_class(self.size.width >= self.WIDE, "-wide")
        try:
            self.query_one(StepIndicator).set_state(self.STEP, getattr(self.app, "done_steps", ()))
        except Exception:
            pass

    def on_unmount(self) -> None:
        bridge = getattr(self.app, "bridge", None)
        if bridge is not None:
            bridge.cancel_owner(self, "the screen was closed")


class PlaceholderStepScreen(StepScreen):
    """Shown for a step whose screen module is not installed yet (keeps navigation whole)."""

    HELP = "This step's screen is not available in this build. Use **ctrl+b** to go back."

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step_id = step

    @property
    def STEP(self) -> str:  # type: ignore[override]
        return self.step_id

    def compose_body(self) -> ComposeResult:
        title = step_by_id(self.step_id).title
        yield Static(f"{title}: this step is not available in this build.", id="placeholder")
