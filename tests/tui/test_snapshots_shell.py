"""Snapshots of the first four steps in demo mode, at 80x24 and 160x48.

Deterministic by design: no clock in the header, no spinner (a "connecting…" text instead), the
Input cursor does not blink (fixture no_blink), notifications are cleared before the capture,
and the one value that depends on the test run (the loopback network the sandbox was given,
visible in the API server address on Welcome) is normalised to the default network 127.0.10.x.
Every SVG was reviewed before it was accepted.
"""

from __future__ import annotations

import dataclasses

import pytest

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


async def _finish(app, pilot, waits):
    await waits.settle(app, pilot)
    app.clear_notifications()
    await waits.steady(app, pilot)


@pytest.mark.parametrize("size", SIZES)
def test_welcome(snap_compare, demo_app, no_blink, waits, size):
    app = demo_app("healthy")

    async def run_before(pilot):
        await waits.ready(app, pilot)
        app.detected = dataclasses.replace(app.detected, server="https://127.0.10.100:6443")
        await _finish(app, pilot, waits)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_credentials(snap_compare, demo_app, no_blink, waits, size):
    app = demo_app("healthy")

    async def run_before(pilot):
        await waits.ready(app, pilot)
        app.goto("credentials")
        await pilot.pause()
        await waits.settle(app, pilot)
        await waits.until(pilot, lambda: getattr(app.screen, "token_result", None) is not None, 10, "the token check")
        await _finish(app, pilot, waits)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_ports_conflict(snap_compare, demo_app, no_blink, waits, size):
    app = demo_app("nodeport-taken")

    async def run_before(pilot):
        await waits.ready(app, pilot)
        app.goto("ports")
        await pilot.pause()
        await waits.settle(app, pilot)
        await waits.until(pilot, lambda: app.screen.checks, 10, "the scan")
        await _finish(app, pilot, waits)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_review(snap_compare, demo_app, no_blink, waits, size):
    app = demo_app("healthy")

    async def run_before(pilot):
        await waits.ready(app, pilot)
        app.goto("credentials")
        await pilot.pause()
        await waits.settle(app, pilot)
        await pilot.press("ctrl+s")
        await waits.settle(app, pilot)
        await waits.until(pilot, lambda: app.screen.stored_names, 10, "credentials stored")
        app.goto("review")
        await pilot.pause()
        await waits.settle(app, pilot, timeout=40)
        await waits.until(pilot, lambda: app.screen.full is not None, 20, "the plan")
        await _finish(app, pilot, waits)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("step", ["welcome", "credentials", "ports"])
def test_light_theme(snap_compare, demo_app, no_blink, waits, step):
    """The first steps in the light theme at 80x24: every status, mask and key still reads."""
    app = demo_app("nodeport-taken" if step == "ports" else "healthy")

    async def run_before(pilot):
        await waits.ready(app, pilot)
        app.theme = "textual-light"
        app.detected = dataclasses.replace(app.detected, server="https://127.0.10.100:6443")
        if step != "welcome":
            app.goto(step)
            await pilot.pause()
            await waits.settle(app, pilot)
        if step == "credentials":
            await waits.until(pilot, lambda: getattr(app.screen, "token_result", None) is not None, 10, "the token check")
        if step == "ports":
            await waits.until(pilot, lambda: app.screen.checks, 10, "the scan")
        await _finish(app, pilot, waits)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
