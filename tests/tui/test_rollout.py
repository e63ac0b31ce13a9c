"""Step 5, Rollout: apply then watch, against sandbox scenarios (healthy, port-taken,
image-pull-failure), cancel, and rollback to the previous ControllerRevision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from keybuzz_tui.screens.board_widgets import MarkdownConfirm, StepHost
from keybuzz_tui.screens.rollout import RolloutScreen, pod_state
from support import sandboxes

from keybuzz_tui import events as ev
from keybuzz_tui.config import Config
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.engine.platform import Platform

WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]
APPS = ["keybuzz-api", "keybuzz-front"]


class Secrets:
    """The apps' secrets for a test world (never real values)."""

    def hcloud_token(self) -> str | None:
        return None

    def app_secret(self, app: str, key: str) -> str | None:
        return f"test-{app}-{key}-not-a-real-secret"

    def get(self, name: str) -> str | None:
        return None


@pytest.fixture
def world(tmp_path: Path):
    """make(scenario) -> (sandbox, config, endpoints); every sandbox is stopped at teardown."""
    started: list[Any] = []

    def make(scenario: str = "healthy", *, timeout: float = 60) -> tuple[Any, Config, Endpoints]:
        sb = sandboxes.start(tmp_path / f"sb-{len(started)}", scenario)
        started.append(sb)
        cfg = Config()
        cfg.rollout.timeout = int(timeout)
        return sb, cfg, Endpoints.from_sandbox(sb.state_dir)

    yield make
    for sb in started:
        sb.stop()


def host(cfg: Config, ep: Endpoints, tmp_path: Path, **kw: Any) -> StepHost:
    kw.setdefault("autostart", True)
    return StepHost(cfg, ep, Secrets(), screen=lambda: RolloutScreen(**kw), journal_path=tmp_path / "journal.jsonl")


def cell(screen: RolloutScreen, node: str, app: str) -> str:
    from textual.widgets import DataTable

    return screen.query_one("#rollout-grid", DataTable).get_cell(node, app).plain


def log_text(screen: RolloutScreen) -> str:
    return "\n".join(screen.log_lines)


FINAL = ("done", "degraded", "failed", "timeout", "cancelled", "error")


async def test_healthy_rollout_reaches_all_green(world, waits, tmp_path):
    sb, cfg, ep = world("healthy")
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        assert isinstance(scr, RolloutScreen)
        await waits.until(pilot, lambda: scr.state.status in FINAL, 60, "the rollout to finish")
        await pilot.pause()
        assert scr.state.status == "done", log_text(scr)
        assert {cell(scr, n, a) for n in WORKERS for a in APPS} == {"✓ Ready"}
        for a in APPS:
            p = scr.state.progress[a]
            assert p.desired == p.available == p.updated == 5
        assert "Rolled out" in str(scr.query_one("#rollout-status").render())
        assert scr.check_action("next", ()) is True and scr.check_action("rollback", ()) is None
        assert "Rolled out: every worker runs a Ready pod" in log_text(scr)


async def test_port_taken_shows_crashloop_and_the_log_line(world, waits, tmp_path):
    sb, cfg, ep = world("port-taken", timeout=12)
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: "CrashLoopBackOff" in cell(scr, "k3s-worker-03", "keybuzz-api") if "k3s-worker-03" in scr._rows else False, 40, "CrashLoopBackOff on k3s-worker-03")
        await waits.until(pilot, lambda: "address already in use" in log_text(scr).lower(), 30, "the container's last log line in the event log")
        assert cell(scr, "k3s-worker-03", "keybuzz-api").startswith("✗ CrashLoopBackOff")
        assert cell(scr, "k3s-worker-01", "keybuzz-api") in ("✓ Ready", "◐ Running", "… ContainerCreating", "◐ Running, not Ready")
        await waits.until(pilot, lambda: scr.state.status in FINAL, 40, "the timeout")
        assert scr.state.status == "timeout"
        text = log_text(scr)
        assert "k3s-worker-03 keybuzz-api CrashLoopBackOff" in text
        # the engine's remediation names the cause: something outside Kubernetes holds 8080
        assert "8080" in text and "ss -ltnp" in text
        assert scr.check_action("rollback", ()) is True and scr.check_action("next", ()) is None


async def test_image_pull_failure_is_shown_per_pod(world, waits, tmp_path):
    sb, cfg, ep = world("image-pull-failure", timeout=8)
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.state.status in FINAL, 40, "the timeout")
        cells = {cell(scr, n, a) for n in WORKERS for a in APPS}
        assert cells <= {"✗ ErrImagePull", "✗ ImagePullBackOff"}, cells
        assert "not found" in log_text(scr) or "pull" in log_text(scr).lower()
        assert scr.state.status == "timeout"


async def test_cancel_leaves_the_rollout_as_is_and_journals_it(world, waits, tmp_path):
    sb, cfg, ep = world("image-pull-failure", timeout=300)
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.state.status == "watching" and scr.state.pods, 30, "the watch to start")
        await pilot.press("c")
        await waits.until(pilot, lambda: scr.state.status == "cancelled", 10, "the cancel to be honoured")
        assert "Cancelled: the rollout was left as it is" in log_text(scr)
        assert scr.check_action("watch_again", ()) is True
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert any(e["event"] == "rollout-cancelled" for e in journal), journal
    # nothing was undone: the DaemonSets are still there
    ctx = Context(cfg, ep, Secrets())
    try:
        from keybuzz_tui.engine import kubeio

        names = {d["metadata"]["name"] for d in kubeio.get(ctx, "/apis/apps/v1/namespaces/keybuzz/daemonsets")["items"]}
        assert set(APPS) <= names
    finally:
        ctx.close()


async def test_escape_cancels_while_running_then_goes_back(world, waits, tmp_path):
    sb, cfg, ep = world("image-pull-failure", timeout=300)
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.state.status == "watching", 30, "the watch")
        await pilot.press("escape")
        await waits.until(pilot, lambda: scr.state.status == "cancelled", 10, "cancelled by esc")
        assert app.screen is scr  # the first esc only cancels


async def test_rollback_offered_and_working(world, waits, tmp_path):
    sb, cfg, ep = world("healthy", timeout=10)
    # revision 1: the runbook's images, rolled out
    ctx = Context(cfg, ep, Secrets())
    try:
        p = Platform(ctx)
        p.apply_kubernetes(p.plan_kubernetes())
        assert p.rollout(60).ok
    finally:
        ctx.close()
    # revision 2: a release that was never pushed
    sb.call(sb.cluster.kubelet.set_missing_images, ["ghcr.io/keybuzz/api:9.9.9"])
    cfg.app("keybuzz-api").image = "ghcr.io/keybuzz/api:9.9.9"
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.state.status in FINAL, 60, "the failed rollout")
        assert scr.state.status == "timeout"
        assert any(s == "fail" for (_, a), (s, _) in scr.state.pods.items() if a == "keybuzz-api")
        # the short deadline made the failure quick; the rollback's own watch gets a roomy one,
        # because on a loaded 2-core machine five pods may need more than 10 s to turn Ready
        scr._timeout = 120.0
        await pilot.press("r")
        await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 20, "the rollback confirmation")
        body = app.screen._body
        assert "keybuzz-api" in body and "roll back to this" in body
        assert "ghcr.io/keybuzz/api:1.4.2" in body and "9.9.9" in body  # the revisions and what changes
        await pilot.press("y")
        await waits.until(pilot, lambda: app.screen is scr and scr.state.status in FINAL, 60, "the rollback to finish")
        assert "rolled back from revision 2 to 1" in log_text(scr)
        assert cell(scr, "k3s-worker-01", "keybuzz-api") == "✓ Ready"  # the broken pod is replaced
        status = scr.state.status
    lines = (tmp_path / "journal.jsonl").read_text()
    assert '"event": "rollback"' in lines
    ctx = Context(cfg, ep, Secrets())
    try:
        from keybuzz_tui.engine import kubeio

        ds = kubeio.get(ctx, "/apis/apps/v1/namespaces/keybuzz/daemonsets/keybuzz-api")
        assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/keybuzz/api:1.4.2"
        st = ds["status"]
        assert st["updatedNumberScheduled"] == st["numberAvailable"] == st["desiredNumberScheduled"] == 5
    finally:
        ctx.close()
    # the engine counts pods of the restored revision as updated (controller-revision-hash, as
    # util.IsPodUpdated does), so the screen agrees with kubectl's view above
    assert status == "done"


async def test_rollback_declined_changes_nothing(world, waits, tmp_path):
    sb, cfg, ep = world("image-pull-failure", timeout=6)
    app = host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.state.status in FINAL, 40, "the timeout")
        await pilot.press("r")
        # first rollout: there is no previous revision, the screen says so instead of asking
        await waits.until(pilot, lambda: "No previous revision" in log_text(scr), 20, "the explanation")
        assert not isinstance(app.screen, MarkdownConfirm)
        assert scr.state.status == "timeout"


def test_pod_states_read_without_colour():
    def st(**kw: Any) -> tuple[str, str]:
        return pod_state(ev.PodProgress(app="a", node="n", **kw))

    assert st(phase="Running", ready=True) == ("ok", "Ready")
    assert st(phase="Running", reason="NotReady") == ("running", "Running, not Ready")
    assert st(phase="Running", reason="CrashLoopBackOff", restarts=4) == ("fail", "CrashLoopBackOff (4)")
    assert st(phase="ImagePullBackOff", reason="ImagePullBackOff") == ("fail", "ImagePullBackOff")
    assert st(phase="Pending", reason="NodeNotReady") == ("fail", "node NotReady")
    assert st(phase="Missing", reason="NoPod") == ("pending", "no pod yet")
    assert st(phase="ContainerCreating", reason="ContainerCreating") == ("pending", "ContainerCreating")
    assert st(phase="Pending", reason="FailedScheduling") == ("fail", "FailedScheduling")


async def test_nothing_is_applied_without_a_confirmed_plan(world, waits, tmp_path):
    """Reached without Review's confirmation (ctrl+n): the screen waits for an explicit `a`."""
    sb, cfg, ep = world("healthy")
    app = host(cfg, ep, tmp_path, autostart=None)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await pilot.pause(0.3)
        assert scr.state.status == "idle" and "confirm the plan on the Review step" in log_text(scr)
        assert scr.check_action("start", ()) is True
        await pilot.press("a")
        await waits.until(pilot, lambda: scr.state.status in FINAL, 60, "the rollout")
        assert scr.state.status == "done"
