"""Fixtures for the wizard's Pilot and snapshot tests: the app in demo mode on a sandbox world
started for the test (fast clock, its own loopback network), and deadline-bound waits.

Why a sandbox_factory: the app would start its own sandbox (speed 2, a free network); tests want
the suite's conventions (tests/support/sandboxes.py: speed 25, a per-xdist-worker network), and a
state directory under tmp_path that the test can inspect.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import sandboxes
from support.rendering import steady
from textual.worker import WorkerCancelled

from keybuzz_tui.app import KeybuzzApp


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals, reports and demo answers of the app go under tmp_path, never the user's dirs;
    the operator's own secrets in the environment never reach a test."""
    monkeypatch.setenv("KEYBUZZ_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    monkeypatch.delenv("HCLOUD_ENDPOINT", raising=False)


@pytest.fixture
def no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic snapshots: the Input cursor never blinks."""
    from textual.widgets._input import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def demo_app(tmp_path: Path) -> Callable[..., KeybuzzApp]:
    """make(scenario="healthy", **kw) -> a KeybuzzApp in demo mode whose sandboxes start under
    tmp_path with the test conventions; every sandbox it started is stopped at teardown."""
    started: list[Any] = []

    def factory(scenario: str) -> Any:
        sb = sandboxes.start(tmp_path / f"sandbox-{len(started)}-{scenario}", scenario)
        started.append(sb)
        return sb

    def make(scenario: str = "healthy", **kw: Any) -> KeybuzzApp:
        kw.setdefault("sandbox_factory", factory)
        return KeybuzzApp(None, tmp_path / "keybuzz.yaml", demo=True, scenario=scenario, **kw)

    yield make
    for sb in started:
        sb.stop()


async def wait_until(pilot: Any, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Pause the pilot until predicate() is truthy, or fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def settle(app: KeybuzzApp, pilot: Any, timeout: float = 20.0) -> None:
    """Wait for every worker (engine calls) to finish, then for the messages they posted."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            # a newer check replaced it (exclusive workers): wait for that one on the next turn
            await pilot.pause(0.05)
            continue
        await pilot.pause(0.05)
        if not any(w.is_running for w in app.workers):
            await pilot.pause(0.05)
            await pilot.pause()
            return
    raise AssertionError("workers did not finish in time")


async def shows(app: KeybuzzApp, pilot: Any, *needles: str, timeout: float = 10.0) -> str:
    """The screen's text once it shows every needle. A widget's new content reaches the
    compositor a frame or more after the state a test waited for (a blank footer was read once
    on a loaded machine): read what the operator sees when it is drawn, or fail after `timeout`."""
    def drawn() -> str:
        text = screen_text(app)
        return text if all(n in text for n in needles) else ""

    return await wait_until(pilot, drawn, timeout, f"the screen to show {needles!r}")


async def ready(app: KeybuzzApp, pilot: Any, timeout: float = 20.0) -> None:
    """The world is connected and detection returned."""
    await wait_until(pilot, lambda: app.detected is not None or app.world == "error", timeout, "detection")
    assert app.world == "ready", app.world_error
    await pilot.pause()
    await pilot.pause()


@pytest.fixture
def waits() -> Any:
    class W:
        until = staticmethod(wait_until)
        settle = staticmethod(settle)
        steady = staticmethod(steady)
        ready = staticmethod(ready)
        text = staticmethod(screen_text)
        shows = staticmethod(shows)

    return W


def screen_text(app: KeybuzzApp) -> str:
    """What the active screen shows, as plain text (what an operator would read)."""
    import io

    from rich.console import Console

    width, _height = app.size
    update = app.screen._compositor.render_update(full=True)
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(update)
    return console.export_text()


@pytest.fixture
def outage(tmp_path: Path):
    """The outage world (classic install behind a blocked overlay), its pods up: for the Doctor
    and Recovery screens."""
    from support import engine_fixtures as ef

    sb = sandboxes.start(tmp_path / "sb", "outage")
    try:
        ef.wait_pods_ready(sb, 2)
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def healthy(tmp_path: Path):
    """A fresh healthy world, nothing installed."""
    sb = sandboxes.start(tmp_path / "sb", "healthy")
    try:
        yield sb
    finally:
        sb.stop()
