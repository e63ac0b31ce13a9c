"""Shared pieces of the wizard: the step list, the step indicator, the base step screen, status
badges (the help and confirmation modals are in modals.py, re-exported here).

Every step screen (including the ones other modules add later) gets the same frame: a header, the
step indicator, its body, and a footer with its bindings; F1 opens a HelpScreen built from the
screen's HELP text and its live bindings. Nothing here imports the engine's clients: the first
screen must paint before kubernetes or hcloud are imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

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
                out.append(f"{i + 1}{mark}", style=tone(self.app, "ok", bold=False) if done else "dim")
            else:
                out.append(f"{s.title}{(' ' + mark) if mark else ''}", style=tone(self.app, "ok", bold=False) if done else "")
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


# --- theme colours for content -------------------------------------------------------------

_TONE_VAR = {"ok": "text-success", "fail": "text-error", "warn": "text-warning", "running": "text-primary", "info": "text-primary"}


class Tones:
    """Rich styles per status, taken from the app's current theme (light or dark)."""

    _cache: dict[str, dict[str, Style]] = {}

    @classmethod
    def of(cls, app: Any) -> dict[str, Style]:
        name = str(getattr(app, "theme", "") or "")
        found = cls._cache.get(name)
        if found is None:
            try:
                variables = app.get_css_variables()
            except Exception:
                variables = {}
            found = {}
            for status, var in _TONE_VAR.items():
                colour = str(variables.get(var, "")).strip()
                found[status] = Style(color=colour[:7], bold=status in ("ok", "fail")) if colour.startswith("#") else Style(bold=True)
            found["pending"] = Style(dim=True)
            found["skip"] = Style(dim=True)
            found["unreached"] = Style(dim=True, italic=True)
            found["unknown"] = Style(dim=True)
            err = str(variables.get("error", "#B93C5B"))[:7]
            found["first"] = Style(color="#ffffff", bgcolor=err if err.startswith("#") else "red", bold=True)
            cls._cache[name] = found
        return found


def tone(app: Any, name: str, *, bold: bool | None = None) -> Style | str:
    """The style of a tone (ok, warn, fail, info, pending, running, first...) in the app's current
    theme, for content rendered into cells and log lines (CSS classes cannot reach those). Named
    ANSI colours are not used: ANSI yellow on the light theme's background is hard to read."""
    if app is None:
        return {"ok": "green", "fail": "red", "warn": "yellow", "pending": "dim", "info": ""}.get(name, "")
    if name == "info":
        return ""
    style = Tones.of(app).get(name, "")
    return style + Style(bold=bold) if bold is not None and isinstance(style, Style) else style


def status_text(status: str, text: str = "", app: Any = None) -> Text:
    """A status for a DataTable cell: symbol + word, styled by status in the app's theme."""
    return Text(f"{STATUS_SYMBOL.get(status, '·')} {text or status}", style=tone(app, STATUS_CLASS.get(status, "info")))


# --- modals (keybuzz_tui.screens.modals, loaded when first used: not needed to paint) ------------


def __getattr__(name: str) -> Any:
    if name in ("HelpScreen", "ConfirmModal"):
        from keybuzz_tui.screens import modals

        return getattr(modals, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    def on_mount(self) -> None:
        self._painted_theme = self.app.theme
        self.app.theme_changed_signal.subscribe(self, self._theme_signal)

    def on_screen_resume(self) -> None:
        self.set_class(self.size.width >= self.WIDE, "-wide")
        try:
            self.query_one(StepIndicator).set_state(self.STEP, getattr(self.app, "done_steps", ()))
        except Exception:
            pass
        self._check_theme()  # the theme may have changed while another step was shown

    # --- themes ------------------------------------------------------------------------------

    def _theme_signal(self, theme: Any) -> None:
        self._check_theme()

    def _check_theme(self) -> None:
        theme = self.app.theme
        if getattr(self, "_painted_theme", theme) != theme:
            self._painted_theme = theme
            self.repaint_theme()

    def repaint_theme(self) -> None:
        """Paint again what carries the theme's colours in its content (table cells, log lines
        styled with the theme's text-success / text-error...): CSS follows a theme switch by
        itself, content rendered earlier does not. Screens with such content override this."""

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
