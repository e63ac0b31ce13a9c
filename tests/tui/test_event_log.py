"""The steps' event logs follow the newest line, and leave an operator who scrolled up alone."""

from __future__ import annotations

from keybuzz_tui.screens.widgets import EventLog
from textual.app import App, ComposeResult


class LogApp(App[None]):
    CSS = "EventLog { height: 6; }"

    def __init__(self, early: int = 0) -> None:
        super().__init__()
        self.early = early

    def compose(self) -> ComposeResult:
        log = EventLog(id="log", max_lines=500)
        for i in range(self.early):  # written before the log knows its size (deferred by RichLog)
            log.write(f"early {i}")
        yield log


def at_bottom(log: EventLog) -> bool:
    return log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y


async def test_follows_the_newest_line_including_lines_written_before_it_was_sized():
    app = LogApp(early=20)
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(EventLog)
        await pilot.pause()
        assert at_bottom(log), (log.scroll_y, log.max_scroll_y)
        for i in range(15):
            log.write(f"line {i}")
            await pilot.pause()
        assert at_bottom(log), (log.scroll_y, log.max_scroll_y)
        assert len(log.lines) == 35


async def test_an_operator_reading_an_earlier_line_is_not_pulled_back_then_end_follows_again():
    app = LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(EventLog)
        for i in range(30):
            log.write(f"line {i}")
        await pilot.pause()
        assert at_bottom(log)
        log.focus()
        await pilot.press("home")
        await pilot.pause()
        assert log.scroll_y == 0
        for i in range(10):
            log.write(f"more {i}")
            await pilot.pause()
        assert log.scroll_y == 0, "a new event must not scroll away what the operator is reading"
        await pilot.press("end")
        await pilot.pause()
        log.write("after end")
        await pilot.pause()
        await pilot.pause()
        assert at_bottom(log), (log.scroll_y, log.max_scroll_y)
