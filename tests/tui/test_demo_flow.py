"""The whole demo flow, as a newcomer walks it: Welcome -> Install -> Credentials (saved to the
demo's keyring) -> Ports (all free) -> Review (the plan) -> Apply -> Rollout (every pod Ready) ->
Load balancer (every target healthy) -> DNS (answers = the LB's address) -> the validation board,
all green; then the scenario switcher breaks k3s-worker-02's NodePort and repairs it.

Keyboard only (the keys the footer shows), waiting on the screens' own state with deadlines.
"""

from __future__ import annotations

import time

from keybuzz_tui.screens.board import FIRST_LABEL, HOPS, UNREACHED_LABEL
from keybuzz_tui.screens.widgets import STEP_IDS, ConfirmModal, StepIndicator
from textual.widgets import DataTable

from keybuzz_tui.credentials import SandboxKeyring

WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]
APPS = ("keybuzz-api", "keybuzz-front")
STORED = {"hcloud-token", "app/keybuzz-api/DATABASE_URL", "app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY", "app/keybuzz-front/SESSION_SECRET"}


async def on_step(app, pilot, waits, step: str, timeout: float = 20) -> object:
    await waits.until(pilot, lambda: app.current_step == step and getattr(app.screen, "STEP", "") == step, timeout, f"the {step} step")
    return app.screen


def matrix_row(scr, node: str) -> list[str]:
    return [c.plain for c in scr.query_one("#board-matrix", DataTable).get_row(node)][1:]


def green(scr) -> bool:
    return (
        scr.rounds >= 1
        and bool(scr.checks)
        and all(c.status == "ok" for c in scr.checks.values())
        and sorted(scr.worker_nodes) == WORKERS
        and all(matrix_row(scr, w) == ["✓ ok"] * len(HOPS) for w in WORKERS)
    )


def not_green(scr) -> dict[str, str]:
    return {c.check: c.detail for c in scr.checks.values() if c.status != "ok"}


async def test_demo_flow_from_welcome_to_an_all_green_board_then_break_and_repair(demo_app, waits):
    ring = SandboxKeyring()
    app = demo_app(credential_backend=ring)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.ready(app, pilot, 60)
        assert app.current_step == "welcome" and not app.detected.installed

        # --- Welcome -> Credentials: the demo fills in the token and DATABASE_URL (masked) -----
        await pilot.press("i")
        creds = await on_step(app, pilot, waits, "credentials")
        await waits.until(pilot, lambda: getattr(creds, "token_result", None) is not None, 20, "the token check")
        assert creds.token_result.status == "valid"
        assert ring._store == {}  # nothing stored before Save
        await pilot.press("ctrl+s")
        await waits.until(pilot, lambda: creds.stored_names, 20, "the save")
        assert {name for (_svc, name) in ring._store} == STORED
        assert app.demo_token not in waits.text(app)
        await waits.until(pilot, lambda: "credentials" in app.done_steps, 10, "the credentials step ticked")

        # --- Ports: every port free (or held by ingress-nginx as expected) -----------------------
        await pilot.press("ctrl+n")
        ports = await on_step(app, pilot, waits, "ports")
        await waits.until(pilot, lambda: ports.checks and not ports.scanning, 30, "the port scan")
        assert len(ports.checks) == 8 and not [c for c in ports.checks if c.failed]
        assert {c.status for c in ports.checks} <= {"ok", "info"}
        assert "ports" in app.done_steps
        await waits.shows(app, pilot, "no conflict")

        # --- Review: the plan, then Apply (confirmed) ----------------------------------------------
        await pilot.press("ctrl+n")
        review = await on_step(app, pilot, waits, "review")
        await waits.until(pilot, lambda: review.full is not None and not review.planning, 30, "the plan")
        counts = review.full.plan.counts()
        assert review.problems() == [] and not review.full.errors
        # 10 Kubernetes objects; certificate, LB, its network attachment, target, 2 services
        assert counts["create"] == 16 and counts["unchanged"] == 0 and counts["update"] == counts["delete"] == 0, counts
        assert sum(1 for c in review.full.plan.changes if c.layer == "kubernetes" and c.action == "create") == 10
        await waits.shows(app, pilot, "ready to apply")
        await pilot.press("a")
        await waits.until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "the confirmation")
        await pilot.press("enter")  # the highlighted choice is Apply

        # --- Rollout: both DaemonSets, one Ready pod per worker ----------------------------------
        rollout = await on_step(app, pilot, waits, "rollout")
        await waits.until(pilot, lambda: rollout.state.status in ("done", "failed", "timeout", "error"), 120, "the rollout")
        assert rollout.state.status == "done", rollout.log_lines[-5:]
        assert rollout.state.pods == {(w, a): ("ok", "Ready") for w in WORKERS for a in APPS}
        grid = rollout.query_one("#rollout-grid", DataTable)
        for w in WORKERS:
            assert [c.plain for c in grid.get_row(w)][1:] == ["✓ Ready", "✓ Ready"]
        await waits.shows(app, pilot, "Rolled out")
        await pilot.press("n")

        # --- Load balancer: apply, then every target healthy on 80 and 443 -----------------------
        lb = await on_step(app, pilot, waits, "lb")
        await waits.until(pilot, lambda: lb.status == "planned", 30, "the LB plan")
        await pilot.press("a")
        await waits.until(pilot, lambda: lb.status in ("done", "failed", "cancelled"), 120, "the LB to converge")
        assert lb.status == "done", lb.log_lines[-5:]
        assert lb.targets == {(w, port): "healthy" for w in WORKERS for port in (80, 443)}
        await waits.shows(app, pilot, "Every target is healthy")
        await pilot.press("n")

        # --- DNS: apply, then both names answer the LB's address ---------------------------------
        dns = await on_step(app, pilot, waits, "dns")
        await waits.until(pilot, lambda: dns.status == "planned", 30, "the DNS plan")
        assert len(dns.ips) == 1
        lb_ip = dns.ips[0]
        await pilot.press("a")
        await waits.until(pilot, lambda: dns.status in ("done", "attention", "failed"), 60, "the DNS answers")
        assert dns.status == "done", dns.log_lines[-5:]
        assert {k: (a.authoritative, a.resolver) for k, a in dns.answers.items()} == {
            "platform.keybuzz.io A": ([lb_ip], [lb_ip]),
            "platform-api.keybuzz.io A": ([lb_ip], [lb_ip]),
        }
        await pilot.press("n")

        # --- the validation board: all green, every step ticked ------------------------------------
        board = await on_step(app, pilot, waits, "validation")
        try:
            await waits.until(pilot, lambda: green(board), 90, "an all-green board")
        except AssertionError:
            raise AssertionError(not_green(board)) from None
        await waits.until(pilot, lambda: "validation" in app.done_steps, 10, "the validation step ticked")
        assert set(app.done_steps) == set(STEP_IDS)
        indicator = board.query_one(StepIndicator).render().plain
        assert indicator.count("✓") == len(STEP_IDS), indicator
        await waits.shows(app, pilot, "All checks pass")

        # --- break k3s-worker-02's NodePort, then repair it ----------------------------------------
        t0 = time.monotonic()
        app.demo_switch("ufw-drop")
        await waits.until(pilot, lambda: board.first_broken("k3s-worker-02") == "nodeport", 30, "k3s-worker-02's NodePort hop to turn red")
        took = time.monotonic() - t0
        row = matrix_row(board, "k3s-worker-02")
        assert row[0] == "✓ ok" and row[2] in FIRST_LABEL and all(c in UNREACHED_LABEL for c in row[3:]), row
        # the LB cell says what the LB's check says at the same moment: healthy until the LB's own
        # health check has failed its retries, then `! warn` (out of rotation: a consequence)
        lb_check = board.checks["lb.targets-healthy|"]
        assert row[1] == ("✓ ok" if lb_check.status == "ok" else "! warn"), (row, lb_check.status, lb_check.detail)
        for w in WORKERS:
            if w != "k3s-worker-02":
                assert matrix_row(board, w) == ["✓ ok"] * len(HOPS), w
        assert "validation" not in app.done_steps  # the tick follows the board
        assert took < 30
        # settled: the LB has taken k3s-worker-02 out of rotation, as it should; the NodePort stays
        # the first broken hop there, and the other workers' LB cells never turn
        await waits.until(pilot, lambda: board.checks["lb.targets-healthy|"].status == "fail", 60, "the LB's health check to fail its retries")
        row = matrix_row(board, "k3s-worker-02")
        assert row[:2] == ["✓ ok", "! warn"] and row[2] in FIRST_LABEL and all(c in UNREACHED_LABEL for c in row[3:]), row
        assert "k3s-worker-02" in board.checks["lb.targets-healthy|"].detail
        for w in WORKERS:
            if w != "k3s-worker-02":
                assert matrix_row(board, w) == ["✓ ok"] * len(HOPS), w

        app.demo_switch("ufw-allow")
        try:
            await waits.until(pilot, lambda: green(board), 60, "the board green again")
        except AssertionError:
            raise AssertionError(not_green(board)) from None
        assert board.first_broken("k3s-worker-02") is None


async def back_one(app, pilot, waits, screen, to: str) -> object:
    """Esc on `screen` goes back exactly one step, to the same `to` screen it came from."""
    assert app.screen is screen
    await pilot.press("escape")
    return await on_step(app, pilot, waits, to, 10)


async def test_escape_goes_back_one_step_on_every_engine_step(demo_app, waits):
    """The full demo wizard walked forward; on Rollout, the load balancer, DNS and the board, Esc
    goes back one step (on Rollout while it runs, the first Esc only cancels the watch). The
    screens keep their state, so `n` walks forward again."""
    app = demo_app(credential_backend=SandboxKeyring())
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.ready(app, pilot, 60)
        await pilot.press("i")
        creds = await on_step(app, pilot, waits, "credentials")
        await waits.until(pilot, lambda: getattr(creds, "token_result", None) is not None, 20, "the token check")
        await pilot.press("ctrl+s")
        await waits.until(pilot, lambda: creds.stored_names, 20, "the save")
        await pilot.press("ctrl+n")
        ports = await on_step(app, pilot, waits, "ports")
        await waits.until(pilot, lambda: ports.checks and not ports.scanning, 30, "the port scan")
        await pilot.press("ctrl+n")
        review = await on_step(app, pilot, waits, "review")
        await waits.until(pilot, lambda: review.full is not None and not review.planning, 30, "the plan")
        # the registry fails (the demo's switch), so the rollout keeps running until told otherwise
        app.demo_switch("images-fail")
        await waits.settle(app, pilot)
        await pilot.press("a")
        await waits.until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "the confirmation")
        await pilot.press("enter")

        # --- Rollout: the first Esc while it runs cancels the watch and stays ----------------------
        rollout = await on_step(app, pilot, waits, "rollout")
        await waits.until(pilot, lambda: rollout.state.status == "watching", 60, "the watch")
        await waits.until(pilot, lambda: any(st == "fail" for st, _ in rollout.state.pods.values()), 60, "a pull failure")
        await pilot.press("escape")
        await waits.until(pilot, lambda: rollout.state.status == "cancelled", 20, "cancelled by esc")
        assert app.screen is rollout and app.current_step == "rollout"  # the first esc only cancels
        app.demo_switch("images-restore")
        await waits.settle(app, pilot)
        await pilot.press("w")  # watch again, to the end
        await waits.until(pilot, lambda: rollout.state.status in ("done", "failed", "timeout", "error"), 120, "the rollout")
        assert rollout.state.status == "done", rollout.log_lines[-5:]
        # idle: Esc goes back to Review (which kept its plan); forward again to the same Rollout
        assert await back_one(app, pilot, waits, rollout, "review") is review
        await pilot.press("ctrl+n")
        assert await on_step(app, pilot, waits, "rollout") is rollout and rollout.state.status == "done"
        await pilot.press("n")

        # --- Load balancer -------------------------------------------------------------------------
        lb = await on_step(app, pilot, waits, "lb")
        await waits.until(pilot, lambda: lb.status == "planned", 30, "the LB plan")
        await pilot.press("a")
        await waits.until(pilot, lambda: lb.status in ("done", "failed", "cancelled"), 120, "the LB to converge")
        assert lb.status == "done", lb.log_lines[-5:]
        assert await back_one(app, pilot, waits, lb, "rollout") is rollout
        await pilot.press("n")
        assert await on_step(app, pilot, waits, "lb") is lb
        await pilot.press("n")

        # --- DNS -----------------------------------------------------------------------------------
        dns = await on_step(app, pilot, waits, "dns")
        await waits.until(pilot, lambda: dns.status == "planned", 30, "the DNS plan")
        await pilot.press("a")
        await waits.until(pilot, lambda: dns.status in ("done", "attention", "failed"), 60, "the DNS answers")
        assert dns.status == "done", dns.log_lines[-5:]
        assert await back_one(app, pilot, waits, dns, "lb") is lb
        await pilot.press("n")
        assert await on_step(app, pilot, waits, "dns") is dns
        await pilot.press("n")

        # --- the board -----------------------------------------------------------------------------
        board = await on_step(app, pilot, waits, "validation")
        await waits.until(pilot, lambda: board.rounds >= 1, 60, "the board's first round")
        assert await back_one(app, pilot, waits, board, "dns") is dns
        await pilot.press("n")
        assert await on_step(app, pilot, waits, "validation") is board
