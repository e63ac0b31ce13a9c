"""Waiting for a Textual screen to be drawn for good before a snapshot is taken."""

from __future__ import annotations

import time
from typing import Any


async def steady(app: Any, pilot: Any, quiet: int = 3, timeout: float = 15.0) -> None:
    """Wait until the rendered screen stops changing: `quiet` consecutive identical renders,
    each taken after the screen processed its messages and its animations ended.

    Why: a RichLog's scroll to its last line and a board's scroll to the first failing group run
    after a refresh. Two pauses were enough on an idle machine, not on a loaded 2-core CI runner,
    where a snapshot caught the log one refresh before its scroll (seen in CI, reproduced with
    busy loops beside `pytest -n 4`)."""
    end = time.monotonic() + timeout
    last, same = None, 0
    while time.monotonic() < end:
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.02)
        await pilot.pause()
        shot = app.export_screenshot()
        same = same + 1 if shot == last else 0
        if same >= quiet - 1:
            return
        last = shot
    raise AssertionError(f"the screen was still changing after {timeout}s")
