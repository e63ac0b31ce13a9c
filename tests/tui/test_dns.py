"""Step 7, DNS: records planned and applied (mode hetzner) or shown for manual entry in zone-file
syntax, then the answers of the authoritative server and the resolver compared with the LB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from keybuzz_tui.screens.board_widgets import StepHost
from keybuzz_tui.screens.dns import DnsScreen
from support import sandboxes
from textual.widgets import DataTable, TextArea

from keybuzz_tui.config import Config
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.engine.platform import Platform

HOSTS = ["platform-api.keybuzz.io", "platform.keybuzz.io"]


class Secrets:
    def hcloud_token(self) -> str | None:
        return None

    def app_secret(self, app: str, key: str) -> str | None:
        return f"test-{app}-{key}-not-a-real-secret"

    def get(self, name: str) -> str | None:
        return None


@pytest.fixture
def world(tmp_path: Path):
    """make(mode, lb=True) -> (sandbox, config, endpoints, lb ips): Kubernetes and the LB installed."""
    started: list[Any] = []

    def make(mode: str = "hetzner", *, lb: bool = True) -> tuple[Any, Config, Endpoints, list[str]]:
        sb = sandboxes.start(tmp_path / f"sb-{len(started)}", "healthy")
        started.append(sb)
        cfg = Config()
        cfg.dns.mode = mode
        ep = Endpoints.from_sandbox(sb.state_dir)
        ctx = Context(cfg, ep, Secrets())
        ips: list[str] = []
        try:
            p = Platform(ctx)
            if lb:
                p.apply_lb(p.plan_lb())
                ips = p.lb_ips()
        finally:
            ctx.close()
        return sb, cfg, ep, ips

    yield make
    for sb in started:
        sb.stop()


def dns_host(cfg: Config, ep: Endpoints, tmp_path: Path, **kw: Any) -> StepHost:
    kw.setdefault("recheck_every", 0.5)
    kw.setdefault("recheck_rounds", 4)
    return StepHost(cfg, ep, Secrets(), screen=lambda: DnsScreen(**kw), journal_path=tmp_path / "journal.jsonl")


def answers(scr: DnsScreen) -> dict[str, list[str]]:
    table = scr.query_one("#dns-answers", DataTable)
    return {str(k.value): [c.plain for c in table.get_row(k)] for k in table.rows}


async def test_manual_mode_shows_zone_file_lines_to_copy(world, waits, tmp_path):
    sb, cfg, ep, ips = world("manual")
    ip = ips[0]
    app = dns_host(cfg, ep, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.plan is not None, 30, "the plan")
        await pilot.pause()
        zone = scr.query_one("#dns-zone", TextArea)
        assert zone.display and not scr.query_one("#dns-plan", DataTable).display
        lines = zone.text.splitlines()
        assert lines[0] == "$ORIGIN keybuzz.io."
        assert f"platform  300 IN A {ip}" in lines and f"platform-api  300 IN A {ip}" in lines
        assert not scr.check_action("apply", ())  # nothing is changed for the operator
        await pilot.press("y")
        assert app.clipboard == "\n".join(lines) + "\n"
        # nothing created them: the answers say so, with what to do
        await waits.until(pilot, lambda: len(answers(scr)) == 2, 30, "the answers")
        rows = answers(scr)
        assert {r[3] for r in rows.values()} == {"✗ missing"}
        assert "set platform" in str(scr.query_one("#dns-detail").render()) or "at the DNS provider" in str(scr.query_one("#dns-detail").render())


async def test_hetzner_mode_applies_then_answers_match(world, waits, tmp_path):
    sb, cfg, ep, ips = world("hetzner")
    ip = ips[0]
    app = dns_host(cfg, ep, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.status == "planned", 30, "the plan")
        plan = scr.query_one("#dns-plan", DataTable)
        rows = [" ".join(c.plain for c in plan.get_row(k)) for k in plan.rows]
        assert len(rows) == 2 and all("+ create" in r and ip in r for r in rows), rows
        await pilot.press("a")
        await waits.until(pilot, lambda: scr.status in ("done", "attention", "failed"), 60, "apply and check")
        assert scr.status == "done", scr.log_lines
        rows2 = answers(scr)
        assert set(rows2) == {f"{h} A" for h in HOSTS}
        for r in rows2.values():
            assert r[1] == f"✓ {ip}" and r[2] == f"✓ {ip}" and r[3] == "✓ ok"
        assert scr.check_action("next", ()) is True
        # planning again: nothing left to change
        await pilot.press("p")
        await waits.until(pilot, lambda: scr.status in ("done", "planned") and not scr.plan.has_changes, 30, "the second plan")


async def test_without_a_load_balancer_dns_waits_for_it(world, waits, tmp_path):
    sb, cfg, ep, _ = world("hetzner", lb=False)
    app = dns_host(cfg, ep, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await waits.until(pilot, lambda: scr.plan is not None or scr.status == "failed", 30, "the plan")
        await pilot.pause()
        assert "apply the load balancer" in str(scr.query_one("#dns-state").render()).lower()
        assert not scr.check_action("apply", ())
