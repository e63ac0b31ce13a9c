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
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Static

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


class EventLog(RichLog):
    """A step's event log: wraps, plain text, and follows the newest line.

    It is anchored (Textual keeps an anchored widget at its bottom at every layout) instead of
    relying on RichLog's auto_scroll: that scroll runs after the next refresh with the height known
    then, and on a busy machine it could land one layout early and stay there, so the operator did
    not see the latest event; and it pulled an operator who had scrolled up to read an earlier
    event back to the bottom at every new line. Scrolling up releases the anchor; scrolling back to
    the bottom (End) takes it again.
    """

    def __init__(self, *, id: str, max_lines: int) -> None:
        # min_width: RichLog wraps at 78 columns by default even in a narrower pane (lines cut)
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=max_lines, min_width=20, auto_scroll=False)

    def on_mount(self) -> None:
        self.anchor()


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


# Textual's own keys that are worth reading in a help: moving between panes, the palette. Every
# other binding Textual's widgets bring (cursor and scroll keys, Page Left/Right, Scroll End,
# "Copy selected text"...) is left out of the F1 listing: they are the widgets' plumbing.
_TEXTUAL_KEPT = {
    "app.focus_next": "Move to the next pane, table or field",
    "app.focus_previous": "Move to the previous pane, table or field",
    "command_palette": "Command palette: go to a step, the Doctor, Recovery, theme, report, journal",
}


def _from_textual(node: Any, binding: Binding) -> bool:
    """Whether `binding` comes from a class of Textual itself (not from keybuzz-tui's code)."""
    for cls in type(node).__mro__:
        for raw in cls.__dict__.get("BINDINGS", ()):
            key, action = (raw.key, raw.action) if isinstance(raw, Binding) else (raw[0], raw[1])
            if action == binding.action and binding.key in (k.strip() for k in key.split(",")):
                return cls.__module__.split(".")[0] == "textual"
    return False


def _enabled(app: Any, node: Any, action: str) -> bool:
    """The action's check_action, as the footer asks it: False hides the key."""
    try:
        return app._check_action_state(action, node) is not False  # the footer's own test
    except Exception:
        return True


def bindings_of(screen: Screen[Any]) -> list[tuple[str, str]]:
    """(key, what it does) for every key that works on `screen` now: its focused widget's, its
    own and the app's (in the footer's order: the first binding of a key wins), without the
    system bindings and Textual's widget plumbing (see _TEXTUAL_KEPT)."""
    app = screen.app
    try:
        # every binding of the chain the footer reads (focused widget -> screen -> app), so a
        # screen key shadowed by a Textual widget's (Enter on a table) is still listed
        pairs = [(node, b) for node, bmap in screen._modal_binding_chain for _key, b in bmap]
    except Exception:  # what the footer shows
        pairs = [(a.node, a.binding) for a in screen.active_bindings.values()]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node, b in pairs:
        if b.system:
            continue
        desc = b.tooltip or b.description
        # Textual's (the palette's binding is added at run time: no class declares it)
        if b.action == "command_palette" or _from_textual(node, b):
            if b.action not in _TEXTUAL_KEPT:
                continue
            desc = _TEXTUAL_KEPT[b.action]
        if not desc or not _enabled(app, node, b.action):
            continue
        display = app.get_key_display(b)
        if display in seen:
            continue
        seen.add(display)
        out.append((display, desc))
    return sorted(out, key=lambda kv: kv[0].lower())


# --- the base step screen --------------------------------------------------------------------

# The shell's step keys (KeybuzzApp.BINDINGS), and the word a step's own key for the same move uses.
_SHELL_NAV = (("ctrl+b", "app.prev_step", "Back", "Go back to the previous step"), ("ctrl+n", "app.next_step", "Next", "Go to the next step"))


def _hidden_shell_duplicates(own: list[Any]) -> list[Binding]:
    """For a step that shows its own Back / Next key: the shell's ctrl+b / ctrl+n again, bound on
    the screen with show=False, so the footer lists the move once (the screen's binding for a key
    wins over the app's in the footer) and the keys keep working."""
    keys = {k.strip() for b in own if isinstance(b, Binding) for k in b.key.split(",")}
    shown = {b.description for b in own if isinstance(b, Binding) and b.show}
    return [
        Binding(key, action, word, show=False, tooltip=tip)
        for key, action, word, tip in _SHELL_NAV
        if word in shown and key not in keys
    ]


class StepScreen(Screen[None]):
    """The frame every wizard step shares. Subclasses set STEP, HELP and compose_body().

    Width >= 120 adds the CSS class -wide so stylesheets can use a large terminal's space.
    Workers started by the screen are cancelled (their CancelTokens too) when it goes away.

    The footer: F1 Help and ^q Quit come first (the base class's bindings are merged first), so
    they stay visible at 80 columns however many keys a step has. A step with its own visible
    Back (esc) or Next (n) hides the shell's ^b / ^n from the footer (they keep working): one
    entry per action. See __init_subclass__.
    """

    STEP: ClassVar[str] = ""
    HELP: ClassVar[str | None] = None
    WIDE = 120
    # compact footer: Textual gives the docked palette key a right margin (no padding), and the
    # margin's cell shows whatever key did not fit beneath it ("^p paletteB"): the key reaches the
    # right edge instead, its last cell blank as in the normal footer
    DEFAULT_CSS = """
    Footer.-compact FooterKey.-command-palette.-compact { margin-right: 0; padding-right: 1; }
    """
    BINDINGS: ClassVar[list[Any]] = [
        Binding("f1", "app.help", "Help", id="step.help", tooltip="Help for this screen: what it does and its keys"),
        # the app's ctrl+q is a priority binding: it still handles the key; this one only puts
        # "^q Quit" at the start of the footer
        Binding("ctrl+q", "app.quit", "Quit", id="step.quit", tooltip="Leave (asks first while something is being applied); answers are saved"),
    ]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        own = list(cls.__dict__.get("BINDINGS", []))
        if own:
            cls.BINDINGS = own + _hidden_shell_duplicates(own)
        super().__init_subclass__(**kwargs)

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
        self._fit_footer(event.size.width)

    COMPACT_FOOTER = 100
    """Below this width the footer drops its padding (one space between keys), so a step's own
    keys still fit at 80 columns after F1 Help and ^q Quit."""

    def _fit_footer(self, width: int) -> None:
        for footer in self.query(Footer):
            footer.compact = width < self.COMPACT_FOOTER

    def on_mount(self) -> None:
        self._painted_theme = self.app.theme
        self.app.theme_changed_signal.subscribe(self, self._theme_signal)

    def on_screen_resume(self) -> None:
        self.set_class(self.size.width >= self.WIDE, "-wide")
        self._fit_footer(self.size.width)
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
