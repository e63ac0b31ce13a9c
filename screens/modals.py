"""The wizard's modals: F1 help and a question with explicit choices.

Kept out of widgets.py (which the first screen needs) so that they, and Markdown, DataTable and
markdown-it behind the help, are loaded only when the operator opens one. widgets.py re-exports
both names.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class HelpScreen(ModalScreen[None]):
    """F1: the screen's HELP text and the keys that work on it right now."""

    HELP_TITLE = "Help"
    HELP = "This is the help. **Esc**, **F1** or **q** closes it."

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
        # imported here: Markdown (markdown-it, pygments) and DataTable are not needed for the
        # first paint, only when the operator asks for help
        from textual.widgets import DataTable, Markdown

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


CHOICE_KEYS = "Enter: the highlighted choice · Tab or ← →: another choice · Esc: cancel"
CHOICE_HELP = """\
**A question before something changes.** Read what each choice does, then:

- **Enter** picks the highlighted choice (the first one is highlighted when the question opens);
- **Tab** / **Shift+Tab** or **←** / **→** move between the choices, or click one;
- **Esc** closes the question without choosing: nothing changes.
"""


class ConfirmModal(ModalScreen[str]):
    """A question with explicit choices; dismisses with the chosen id ("cancel" on Escape)."""

    HELP_TITLE = "Question"
    HELP = CHOICE_HELP
    BINDINGS: ClassVar[list[Any]] = [
        Binding("escape", "choose('cancel')", "Cancel", tooltip="Close without choosing"),
        Binding("f1", "app.help", "Help", tooltip="How to answer this question"),
        Binding("left", "app.focus_previous", "Previous choice", show=False, tooltip="Highlight the previous choice"),
        Binding("right", "app.focus_next", "Next choice", show=False, tooltip="Highlight the next choice"),
    ]
    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical { width: 80%; max-width: 90; height: auto; max-height: 90%; border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmModal #confirm-title { text-style: bold; }
    ConfirmModal #confirm-body { margin: 1 0; height: auto; }
    ConfirmModal Horizontal { height: auto; }
    ConfirmModal Button { margin-right: 1; }
    ConfirmModal #confirm-keys { color: $text-muted; margin-top: 1; }
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
            yield Static(CHOICE_KEYS, id="confirm-keys")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        bid = event.button.id or ""
        self.dismiss(bid.removeprefix("choice-"))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


