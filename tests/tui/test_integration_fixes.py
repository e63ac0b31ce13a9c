"""Regressions of the wizard's integration issues: a Hide click that was lost (the secret stayed
on screen), secrets left revealed when leaving the step, colours that kept the old theme after a
theme switch, the two demo-switch implementations (one left the board green), help on modals."""

from __future__ import annotations

from typing import Any

import pytest
from keybuzz_tui.screens.board_widgets import Tones
from keybuzz_tui.screens.widgets import ConfirmModal, HelpScreen
from support import netguard, sandboxes
from textual.widgets import Button, DataTable, Input

from keybuzz_tui import events as ev
from keybuzz_tui.app import DEMO_SWITCHES, KeybuzzApp, apply_demo_switch
from keybuzz_tui.config import Config
from keybuzz_tui.engine.plan import Change, Plan

WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]


async def _credentials(app: KeybuzzApp, pilot: Any, waits: Any) -> Any:
    await waits.ready(app, pilot)
    app.goto("credentials")
    await pilot.pause()
    await waits.settle(app, pilot)
    await waits.until(pilot, lambda: getattr(app.screen, "token_result", None) is not None, 20, "the token check")
    return app.screen


async def test_reveal_then_hide_at_once_hides_the_token(demo_app, waits):
    """Textual's Button ignores a click during its 0.2 s press animation: the Hide click right
    after Reveal was lost and the token stayed on screen. The reveal toggle takes every click."""
    app = demo_app()
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _credentials(app, pilot, waits)
        token = app.demo_token
        for _ in range(3):  # Reveal, Hide, Reveal... with no pause in between
            await pilot.click("#reveal-token")
            await pilot.click("#reveal-token")
            await pilot.pause()
            assert scr.query_one("#token", Input).password is True
            assert str(scr.query_one("#reveal-token", Button).label) == "Reveal"
            assert token[:12] not in waits.text(app)
        await pilot.click("#reveal-token")
        await pilot.pause()
        await waits.shows(app, pilot, token[:20])  # shown, because the operator asked


async def test_leaving_the_step_masks_what_was_revealed(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _credentials(app, pilot, waits)
        token = app.demo_token
        await pilot.click("#reveal-token")
        await pilot.click("#reveal-1")
        await pilot.pause()
        await waits.shows(app, pilot, token[:20])
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("ctrl+b")
        await waits.until(pilot, lambda: app.screen is scr, 10, "the credentials step again")
        await pilot.pause()
        assert all(i.password for i in scr.query(Input) if i.id == "token" or (i.id or "").startswith("secret-"))
        assert token[:12] not in waits.text(app)
        assert {str(b.label) for b in scr.query(".reveal").results(Button)} == {"Reveal"}


def _colours(text: Any) -> set[str]:
    """The foreground colours a rich Text carries (its base style and its spans)."""
    out = set()
    for style in [text.style, *(s.style for s in text.spans)]:
        if hasattr(style, "color") and style.color is not None:
            out.add(style.color.name)
    return out


def _wizard(done: tuple[str, ...]) -> KeybuzzApp:
    app = KeybuzzApp(Config(), None, connect=False)
    app.done_steps = frozenset(done)
    return app


@pytest.mark.parametrize("start, switch", [("textual-dark", "textual-light"), ("textual-light", "textual-dark")])
async def test_progress_screens_repaint_on_a_theme_switch(start, switch):
    from keybuzz_tui.screens.dns import DnsScreen
    from keybuzz_tui.screens.loadbalancer import LoadBalancerScreen
    from keybuzz_tui.screens.rollout import RolloutScreen

    app = _wizard(("welcome", "credentials", "ports", "review"))
    async with app.run_test(size=(120, 40)) as pilot:
        app.theme = start
        await pilot.pause()
        rollout = RolloutScreen(autostart=False, timeout=300)
        await app.push_screen(rollout)
        await pilot.pause()
        rollout.state.started, rollout.state.status = 0.0, "watching"
        for w in WORKERS:
            rollout.apply_event(ev.PodProgress(step="rollout", app="keybuzz-api", node=w, pod=f"p-{w}", phase="Running", ready=True))
        rollout.apply_event(ev.Warning_(step="rollout", message="something to read"))
        await pilot.pause()
        lb = LoadBalancerScreen(autostart=False)
        await app.push_screen(lb)
        await pilot.pause()
        for w in WORKERS:
            lb.apply_event(ev.TargetHealth(step="load_balancer", lb="keybuzz-lb", listen_port=80, target=w, status="healthy"))
        plan = Plan()
        plan.add(Change("dns", "create", "A", "platform.keybuzz.io", note="platform 300 IN A 127.0.20.1"))  # type: ignore[arg-type]
        dns = DnsScreen(autostart=False)
        await app.push_screen(dns)
        await pilot.pause()
        dns._plan_ready(DnsScreen.PlanReady(plan, ["127.0.20.1"], []))
        await pilot.pause()

        old, old_info = Tones.of(app)["ok"].color.name, Tones.of(app)["info"].color.name
        assert old in _colours(rollout.query_one("#rollout-grid", DataTable).get_cell("k3s-worker-01", "keybuzz-api"))
        assert old_info in _colours(dns.query_one("#dns-state").content)
        app.theme = switch
        await pilot.pause()
        new, new_info = Tones.of(app)["ok"].color.name, Tones.of(app)["info"].color.name
        assert new != old and new_info != old_info
        # the screen on top repaints at once, the ones below when they are shown again
        assert _colours(dns.query_one("#dns-state").content) == {new_info}
        app.pop_screen()
        await pilot.pause()
        assert new in _colours(lb.query_one("#lb-targets", DataTable).get_cell("k3s-worker-03", "80"))
        app.pop_screen()
        await pilot.pause()
        grid = rollout.query_one("#rollout-grid", DataTable)
        for w in WORKERS:
            cell = grid.get_cell(w, "keybuzz-api")
            assert new in _colours(cell) and old not in _colours(cell), (w, cell)
        # the event log is written again in the new theme's colours
        warn = Tones.of(app)["warn"].color.name
        log_colours = {seg.style.color.name for strip in rollout.query_one("#rollout-log").lines for seg in strip if seg.style and seg.style.color}
        assert warn in log_colours, log_colours


def test_one_demo_switch_table_for_the_palette_and_the_board():
    from keybuzz_tui.screens import board, board_widgets

    assert not hasattr(board_widgets, "DEMO_SWITCHES") and not hasattr(board_widgets, "run_demo_switch")
    assert not hasattr(board, "DEMO_SWITCHES")
    breaking = {k for k, d in DEMO_SWITCHES.items() if d.breaking}
    assert breaking == {"overlay-block", "port-take", "ufw-drop", "images-fail", "worker-stop"}
    assert {DEMO_SWITCHES[k].restores for k in breaking} == set(DEMO_SWITCHES) - breaking


async def test_the_board_switcher_lists_the_apps_switches():
    from keybuzz_tui.screens.board import ScenarioSwitcher
    from textual.widgets import OptionList

    app = _wizard(())
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(ScenarioSwitcher())
        await pilot.pause()
        ol = app.screen.query_one(OptionList)
        ids = [ol.get_option_at_index(i).id for i in range(ol.option_count)]
        labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        # one entry per break, none active: each offered as the break
        assert set(ids) == {k for k, d in DEMO_SWITCHES.items() if d.breaking}
        assert all(label.startswith("○ ") for label in labels)
        await app.pop_screen()
        # an active break is marked and offered as its repair, with what the repair does
        active = next(k for k, d in DEMO_SWITCHES.items() if d.breaking)
        await app.push_screen(ScenarioSwitcher(frozenset({active})))
        await pilot.pause()
        ol = app.screen.query_one(OptionList)
        entries = {ol.get_option_at_index(i).id: str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)}
        repair = DEMO_SWITCHES[active].restores
        assert active not in entries and entries[repair].startswith("● active: ")
        ol.highlighted = list(entries).index(repair)
        await pilot.pause()
        assert DEMO_SWITCHES[repair].explain[:30] in str(app.screen.query_one("#switch-what").render())
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and "Break the demo world" in app.screen.help_text


async def test_f1_on_a_question_explains_its_keys():
    app = _wizard(())
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(ConfirmModal("Apply?", "what happens", [("apply", "Apply", "warning"), ("cancel", "Not yet", "default")]))
        await pilot.pause()
        assert "Esc: cancel" in str(app.screen.query_one("#confirm-keys").render())
        await pilot.press("right")
        assert app.screen.focused is app.screen.query_one("#choice-cancel")
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.screen.help_title == "Question"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    from support import engine_fixtures as ef

    sb = sandboxes.start(tmp_path_factory.mktemp("switch") / "sb", "healthy")
    try:
        ef.install_keybuzz_directly(sb)
        yield sb
    finally:
        sb.stop()


def test_images_fail_restarts_a_pod_so_the_break_shows_now(installed):
    """A missing image only hurts a pod that (re)starts: the switch restarts keybuzz-front on
    k3s-worker-05, which then cannot pull its image."""
    from kubernetes import client
    from support import engine_fixtures as ef

    sb = installed
    api = client.CoreV1Api(sb.kube_client())

    def front_on_05() -> list[Any]:
        pods = api.list_namespaced_pod("keybuzz", field_selector="spec.nodeName=k3s-worker-05").items
        return [p for p in pods if p.metadata.name.startswith("keybuzz-front-") and not p.metadata.deletion_timestamp]

    try:
        before = {p.metadata.name for p in front_on_05()}
        assert before
        apply_demo_switch(sb, "images-fail")

        def pull_failing() -> bool:
            for p in front_on_05():
                if p.metadata.name in before:
                    continue
                for cs in (p.status.container_statuses or []):
                    if cs.state and cs.state.waiting and cs.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                        return True
            return False

        ef.wait_for(pull_failing, 20, what="the restarted keybuzz-front pod to fail pulling its image")
    finally:
        apply_demo_switch(sb, "images-restore")
        api.api_client.close()
    ef.wait_pods_ready(sb, 10, timeout=60)


def test_first_paint_imports_nothing_it_does_not_show(tmp_path):
    """The first screen paints from keybuzz_tui's own shell modules: the config model and PyYAML,
    the engine's events, Markdown (markdown-it, pygments), DataTable and the modals wait until
    after the first paint (issue 5's time-to-first-paint goal)."""
    import json
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import json, sys
        from keybuzz_tui.app import KeybuzzApp

        class FirstPaint(KeybuzzApp):
            def first_painted(self):
                super().first_painted()
                print(json.dumps(sorted(self.first_paint_modules)), flush=True)
                self.exit()

        FirstPaint(None, None, demo=True, connect=False).run(headless=True, size=(80, 24))
        """
    )
    env = netguard.child_env({"KEYBUZZ_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"})
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    mods = set(json.loads(r.stdout.strip().splitlines()[-1]))
    late = {"yaml", "markdown_it", "pygments", "keybuzz_tui.config", "keybuzz_tui.events", "keybuzz_tui.screens.modals",
            "textual.widgets._markdown", "textual.widgets._data_table", "kubernetes", "hcloud", "keyring", "aiohttp"}
    assert {m for m in mods if m in late or m.split(".")[0] in late} == set()
    assert "keybuzz_tui.screens.welcome" in mods
