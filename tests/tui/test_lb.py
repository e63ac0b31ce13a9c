"""Step 6, Load balancer: the plan, the Hetzner actions with their progress, target health per
service converging live, the certificate, and the diagnosis of an unhealthy target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from keybuzz_tui.screens.board_widgets import StepHost
from keybuzz_tui.screens.loadbalancer import LoadBalancerScreen
from support import sandboxes
from textual.widgets import DataTable

from keybuzz_tui.config import Config
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.engine.platform import Platform

WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]


class Secrets:
    def hcloud_token(self) -> str | None:
        return None

    def app_secret(self, app: str, key: str) -> str | None:
        return f"test-{app}-{key}-not-a-real-secret"

    def get(self, name: str) -> str | None:
        return None


@pytest.fixture
def world(tmp_path: Path):
    """make(scenario) -> (sandbox, config, endpoints) with the Kubernetes side installed."""
    started: list[Any] = []

    def make(scenario: str = "healthy") -> tuple[Any, Config, Endpoints]:
        sb = sandboxes.start(tmp_path / f"sb-{len(started)}", scenario)
        started.append(sb)
        cfg = Config()
        ep = Endpoints.from_sandbox(sb.state_dir)
        ctx = Context(cfg, ep, Secrets())
        try:
            p = Platform(ctx)
            p.apply_kubernetes(p.plan_kubernetes())
            p.rollout(60)
        finally:
            ctx.close()
        return sb, cfg, ep

    yield make
    for sb in started:
        sb.stop()


def lb_host(cfg: Config, ep: Endpoints, tmp_path: Path, **kw: Any) -> StepHost:
    kw.setdefault("health_timeout", 60)
    return StepHost(cfg, ep, Secrets(), screen=lambda: LoadBalancerScreen(**kw), journal_path=tmp_path / "journal.jsonl")


def text_of(scr: Any, selector: str, row: str, col: str) -> str:
    return scr.query_one(selector, DataTable).get_cell(row, col).plain


async def test_plan_then_apply_then_targets_converge(world, waits, tmp_path):
    sb, cfg, ep = world("healthy")
    app = lb_host(cfg, ep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.status == "planned", 30, "the plan")
        await pilot.pause()
        plan = scr.query_one("#lb-plan", DataTable)
        rows = [" ".join(c.plain for c in plan.get_row(k)) for k in plan.rows]
        assert any("+ create" in r and "LoadBalancer keybuzz-lb" in r for r in rows), rows
        assert any("LoadBalancerService keybuzz-lb:443" in r for r in rows), rows
        assert scr.check_action("apply", ()) is True and scr.check_action("next", ()) is None
        await pilot.press("a")
        await waits.until(pilot, lambda: scr.status in ("done", "failed"), 90, "the apply and the health watch")
        assert scr.status == "done", scr.log_lines
        for w in WORKERS:
            for port in ("80", "443"):
                assert text_of(scr, "#lb-targets", w, port) == "✓ healthy"
        actions = scr.query_one("#lb-actions", DataTable)
        assert actions.row_count >= 2
        assert all(actions.get_cell(k, "status").plain == "✓ done" for k in actions.rows)
        assert "100%" in actions.get_cell(next(iter(actions.rows)), "progress").plain
        cert = str(scr.query_one("#lb-cert").render())
        assert "keybuzz-platform" in cert and "issued" in cert
        assert scr.check_action("next", ()) is True
    journal = (tmp_path / "journal.jsonl").read_text()
    assert "LoadBalancer" in journal


async def test_unhealthy_target_shows_k3s_worker_02_red(world, waits, tmp_path):
    """k3s-worker-02 red with the reason, the warning with the fix. The Detail column takes the
    room the other columns leave at every size: the reason reads whole on a 100-column terminal
    (it was cut to the width of the column's first, empty value), and a narrower pane cuts it
    with an ellipsis instead of making the table scroll sideways."""
    sb, cfg, ep = world("lb-target-unhealthy")
    app = lb_host(cfg, ep, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.status == "planned", 30, "the plan")
        await pilot.press("a")
        await waits.until(pilot, lambda: scr.targets.get(("k3s-worker-02", 80)) == "unhealthy", 60, "k3s-worker-02 unhealthy")
        await waits.until(pilot, lambda: all(scr.targets.get((w, 80)) == "healthy" for w in WORKERS if w != "k3s-worker-02"), 30, "the others healthy")
        await pilot.pause()
        assert text_of(scr, "#lb-targets", "k3s-worker-02", "80") == "✗ unhealthy"
        assert text_of(scr, "#lb-targets", "k3s-worker-01", "80") == "✓ healthy"
        assert text_of(scr, "#lb-targets", "k3s-worker-02", "detail") != ""
        # the engine's warning says what to check, and the state line counts the bad target
        await waits.until(pilot, lambda: any("k3s-worker-02" in line and "unhealthy" in line for line in scr.log_lines), 10, "the warning")
        assert any("ufw" in line.lower() for line in scr.log_lines)
        assert "unhealthy" in str(scr.query_one("#lb-state").render())
        table = scr.query_one("#lb-targets", DataTable)
        detail = scr.target_detail["k3s-worker-02"]
        await waits.until(pilot, lambda: detail in waits.text(app), 10, f"{detail!r} whole on screen")
        for size in ((80, 24), (160, 40), (60, 30)):
            await pilot.resize_terminal(*size)
            await waits.steady(app, pilot)
            assert table.virtual_size.width <= table.scrollable_content_region.width, (size, table.virtual_size, table.scrollable_content_region)
            assert text_of(scr, "#lb-targets", "k3s-worker-02", "detail") == detail, size  # the cell keeps it whole; the screen cuts it
        await pilot.press("c")  # stop watching: the health never converges here
        await waits.until(pilot, lambda: scr.status == "cancelled", 15, "the cancel")


async def test_read_only_token_is_refused_with_the_reason(world, waits, tmp_path):
    sb, cfg, ep = world("hetzner-readonly-token")
    app = lb_host(cfg, ep, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.status in ("planned", "failed"), 30, "the plan")
        await pilot.press("a")
        await waits.until(pilot, lambda: scr.status == "failed", 30, "the refusal")
        text = "\n".join(scr.log_lines).lower()
        assert "read" in text and "token" in text, text
        assert scr.check_action("apply", ()) is True  # the operator can fix the token and retry


async def test_selecting_a_plan_row_logs_its_whole_diff(world, waits, tmp_path):
    sb, cfg, ep = world("healthy")
    app = lb_host(cfg, ep, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.status == "planned", 30, "the plan")
        await pilot.pause()
        table = scr.query_one("#lb-plan", DataTable)
        table.focus()
        await pilot.press("down", "enter")
        # the selected change, whole, in the event log (whichever row the cursor is on)
        refs = [f"{c.action} {c.kind} {c.name}" for c in scr.changes]
        await waits.until(pilot, lambda: any(line.startswith("· ") and any(r in line for r in refs) for line in scr.log_lines), 10, "the change in the log")

