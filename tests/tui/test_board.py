"""Step 8, the live validation board: all green on a fully installed world; demo switches turn
the right cells red within seconds; the failing check's remediation one Enter away; the report
exported to Markdown and JSON; the board alone (BoardApp)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from keybuzz_tui.screens.board import (
    FIRST_LABEL,
    HOPS,
    UNREACHED_LABEL,
    BoardApp,
    BoardScreen,
    FixCommands,
    ScenarioSwitcher,
)
from keybuzz_tui.screens.board_widgets import StepHost
from support import sandboxes
from textual.widgets import DataTable, OptionList

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


def install(sb: Any, cfg: Config) -> Endpoints:
    """The whole runbook through the engine: Kubernetes, rollout, LB (healthy), DNS."""
    ep = Endpoints.from_sandbox(sb.state_dir)
    ctx = Context(cfg, ep, Secrets())
    try:
        p = Platform(ctx)
        p.apply_kubernetes(p.plan_kubernetes())
        assert p.rollout(60).ok
        p.apply_lb(p.plan_lb())
        p.wait_lb_healthy(60)
        p.apply_dns(p.plan_dns())
    finally:
        ctx.close()
    ep.refresh_lb_ports()
    return ep


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):
    """One fully installed healthy world for the module; tests that break it repair it."""
    sb = sandboxes.start(tmp_path_factory.mktemp("board") / "sb", "healthy")
    cfg = Config()
    try:
        ep = install(sb, cfg)
        yield sb, cfg, ep
    finally:
        sb.stop()


def board_host(world: tuple[Any, Config, Endpoints], tmp_path: Path, **kw: Any) -> StepHost:
    sb, cfg, ep = world
    kw.setdefault("interval", 2.0)
    return StepHost(cfg, ep, Secrets(), screen=lambda: BoardScreen(**kw), journal_path=tmp_path / "journal.jsonl", sandbox=sb)


def matrix_row(scr: BoardScreen, node: str) -> list[str]:
    return [c.plain for c in scr.query_one("#board-matrix", DataTable).get_row(node)][1:]


def failing(scr: BoardScreen) -> set[str]:
    return {c.check for c in scr.checks.values() if c.status == "fail"}


async def first_round(scr: BoardScreen, pilot: Any, waits: Any) -> None:
    await waits.until(pilot, lambda: scr.rounds >= 1 and len(scr.worker_nodes) == 5, 60, "the first full validation")
    await pilot.pause()


async def all_green(scr: BoardScreen, pilot: Any, waits: Any, timeout: float = 40) -> None:
    """Every check ok (a probe that timed out on a loaded machine gets its next refresh)."""
    def green() -> bool:
        return bool(scr.checks) and all(c.status == "ok" for c in scr.checks.values())

    try:
        await waits.until(pilot, green, timeout, "every check ok")
    except AssertionError:
        raise AssertionError({c.check: c.detail for c in scr.checks.values() if c.status != "ok"}) from None


async def test_all_green_on_a_fully_installed_world(installed, waits, tmp_path):
    app = board_host(installed, tmp_path)
    updates: list[BoardScreen.Updated] = []
    async with app.run_test(size=(120, 36), message_hook=lambda m: updates.append(m) if isinstance(m, BoardScreen.Updated) else None) as pilot:
        scr = app.screen
        await first_round(scr, pilot, waits)
        await all_green(scr, pilot, waits)
        # refreshes that find nothing new touch no status and no matrix cell: only the cells whose
        # text changed are updated (an https probe's detail carries its timing, so it may change)
        seen, rounds = len(updates), scr.rounds
        await waits.until(pilot, lambda: scr.rounds >= rounds + 2, 30, "two more refreshes")
        touched = {c for u in updates[seen:] for c in u.cells}
        assert all(table == "checks" and col == "detail" for table, _, col in touched), touched
        assert {c.status for c in scr.checks.values()} == {"ok"}
        for w in WORKERS:
            assert matrix_row(scr, w) == ["✓ ok"] * len(HOPS)
            assert scr.first_broken(w) is None
        head = str(scr.query_one("#board-head").render())
        assert "All checks pass" in head and "API req/refresh" in head and "live" in head
        layers = [str(k.value) for k in scr.query_one("#board-checks", DataTable).rows if str(k.value).startswith("layer:")]
        assert layers == ["layer:kubernetes", "layer:node", "layer:ingress", "layer:loadbalancer", "layer:dns", "layer:https"]
        assert scr.requests is not None and scr.requests > 0


async def test_ufw_drop_turns_k3s_worker_02_red_and_explains_it(installed, waits, tmp_path):
    app = board_host(installed, tmp_path, interval=1.0)
    updates: list[BoardScreen.Updated] = []
    async with app.run_test(size=(120, 36), message_hook=lambda m: updates.append(m) if isinstance(m, BoardScreen.Updated) else None) as pilot:
        scr = app.screen
        await first_round(scr, pilot, waits)
        await all_green(scr, pilot, waits)
        try:
            t0 = time.monotonic()
            app.demo_switch("ufw-drop")
            await waits.until(pilot, lambda: scr.first_broken("k3s-worker-02") == "nodeport", 15, "the NodePort hop of k3s-worker-02 to break")
            took = time.monotonic() - t0
            row = matrix_row(scr, "k3s-worker-02")
            assert row[0] == "✓ ok"  # DNS still answers
            # the LB cell says what the LB check says: healthy until its health check has taken the
            # worker out of rotation (then `! warn`: a consequence, the NodePort is the cause)
            lb_ok = scr.checks["lb.targets-healthy|"].status == "ok"
            assert row[1] == ("✓ ok" if lb_ok else "! warn"), (row, scr.checks["lb.targets-healthy|"].detail)
            assert row[2] in FIRST_LABEL  # the first broken hop, highlighted
            assert all(c in UNREACHED_LABEL for c in row[3:])  # greyed: not reached
            for w in WORKERS:
                if w != "k3s-worker-02":
                    assert matrix_row(scr, w) == ["✓ ok"] * len(HOPS), w
            assert any(("matrix", "k3s-worker-02", "nodeport") in u.cells for u in updates)
            # only changed cells are updated: a refresh with nothing new sends no update
            await waits.until(pilot, lambda: "node.nodeport" in failing(scr), 10, "the NodePort check to fail")
            # select the failing check: its detail and remediation in the pane
            table = scr.query_one("#board-checks", DataTable)
            table.focus()
            keys = [str(k.value) for k in table.rows]
            target = keys.index("node.nodeport|")
            table.move_cursor(row=0)
            await pilot.press(*["down"] * target)
            await pilot.press("enter")
            await pilot.pause()
            detail = str(scr.query_one("#board-detail").render())
            assert "k3s-worker-02" in detail and "What to do" in detail and "ufw allow 31695/tcp" in detail
            assert took < 10, took
            # `f`: a node's firewall is outside the wizard's reach: the exact commands, on that node
            await pilot.press("f")
            await waits.until(pilot, lambda: isinstance(app.screen, FixCommands), 5, "the fix commands")
            text = app.screen.query_one("#fixcmd-body").source
            assert "k3s-worker-02" in text and "sudo ufw allow from 10.0.0.0/16 to any port 31695 proto tcp" in text
            await pilot.press("escape")
            await waits.until(pilot, lambda: app.screen is scr, 5, "back on the board")
        finally:
            app.demo_switch("ufw-allow")
            await waits.until(pilot, lambda: scr.first_broken("k3s-worker-02") is None, 30, "the path of k3s-worker-02 to work again")
            await all_green(scr, pilot, waits)
        assert matrix_row(scr, "k3s-worker-02") == ["✓ ok"] * len(HOPS)


async def test_scenario_switcher_stops_a_worker_and_repairs_it(installed, waits, tmp_path):
    app = board_host(installed, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await first_round(scr, pilot, waits)
        assert scr.check_action("scenarios", ()) is True
        await pilot.press("s")
        await waits.until(pilot, lambda: isinstance(app.screen, ScenarioSwitcher), 5, "the switcher")
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert {"overlay-block", "port-take", "ufw-drop", "images-fail", "worker-stop"} <= set(ids)
        options.highlighted = ids.index("worker-stop")
        await pilot.press("enter")
        await waits.until(pilot, lambda: app.screen is scr, 5, "the switcher to close")
        try:
            await waits.until(pilot, lambda: "k8s.nodes" in failing(scr), 20, "Workers Ready to fail")
            nodes = next(c for c in scr.checks.values() if c.check == "k8s.nodes")
            assert "k3s-worker-04" in nodes.detail
        finally:
            await waits.until(pilot, lambda: "worker-stop" in app.demo_active, 10, "the app to know the break is active")
            await pilot.press("s")
            await waits.until(pilot, lambda: isinstance(app.screen, ScenarioSwitcher), 5, "the switcher")
            options = app.screen.query_one(OptionList)
            # the stopped worker is marked active and offered as its repair
            entries = {options.get_option_at_index(i).id: str(options.get_option_at_index(i).prompt) for i in range(options.option_count)}
            assert "worker-stop" not in entries and entries["worker-start"].startswith("● active: ")
            options.highlighted = list(entries).index("worker-start")
            await pilot.press("enter")
            await waits.until(pilot, lambda: "k8s.nodes" not in failing(scr), 30, "the worker back")


async def test_export_writes_markdown_and_json(installed, waits, tmp_path):
    from textual.notifications import Notify

    notes: list[Notify] = []
    app = board_host(installed, tmp_path, export_dir=tmp_path / "reports")
    async with app.run_test(size=(80, 24), message_hook=lambda m: notes.append(m) if isinstance(m, Notify) else None) as pilot:
        scr = app.screen
        await first_round(scr, pilot, waits)
        await pilot.press("e")
        await waits.until(pilot, lambda: any(n.notification.title == "Report written" for n in notes), 30, "the export")
        note = next(n.notification for n in notes if n.notification.title == "Report written")
    md = sorted((tmp_path / "reports").glob("keybuzz-report-*.md"))
    js = sorted((tmp_path / "reports").glob("keybuzz-report-*.json"))
    assert len(md) == 1 and len(js) == 1
    assert str(md[0]) in note.message and str(js[0]) in note.message  # the notification says where
    data = json.loads(js[0].read_text())
    assert data["checks"] and data["status"] == "ok"
    assert "k8s.pods-ready" in md[0].read_text() or "Pods" in md[0].read_text()


async def test_board_app_opens_the_board_alone(installed, waits, tmp_path):
    sb, cfg, ep = installed
    app = BoardApp(cfg, ep, Secrets(), journal_path=tmp_path / "journal.jsonl", interval=2.0)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        assert isinstance(scr, BoardScreen)
        await first_round(scr, pilot, waits)
        await all_green(scr, pilot, waits)
        assert scr.check_action("scenarios", ()) is False  # not a demo: no switcher
        # the light theme: cells are painted again with the theme's own success colour
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.pause()
        cell = scr.query_one("#board-matrix", DataTable).get_cell("k3s-worker-01", "dns")
        want = app.get_css_variables()["text-success"][:7].lower()
        assert cell.plain == "✓ ok" and str(cell.spans[0].style.color.triplet.hex).lower() == want
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"


async def test_outage_classic_install_breaks_at_the_service_hop(tmp_path, waits):
    """Production's outage: KeyBuzz installed the classic way while VXLAN is blocked. The board
    names the Service hop (ClusterIP over the dead overlay) as the first break."""
    sb = sandboxes.start(tmp_path / "outage", "outage")
    try:
        cfg = Config()
        ep = Endpoints.from_sandbox(sb.state_dir)
        app = StepHost(cfg, ep, Secrets(), screen=lambda: BoardScreen(interval=2.0), journal_path=tmp_path / "j.jsonl", sandbox=sb)
        async with app.run_test(size=(120, 36)) as pilot:
            scr = app.screen
            await waits.until(pilot, lambda: scr.rounds >= 1, 60, "the first validation")
            await pilot.pause()
            breaks = {w: scr.first_broken(w) for w in scr.worker_nodes}
            assert "service" in breaks.values(), breaks
            assert failing(scr), "the outage must fail checks"
    finally:
        sb.stop()


async def test_wizard_board_only_mode_waits_for_the_world_then_validates(installed, waits, tmp_path):
    """`keybuzz-tui validate --board --sandbox DIR`: the shell opens the board first; the board
    starts validating once the shell has connected (the first paint never waits for it)."""
    from keybuzz_tui.app import KeybuzzApp

    sb, cfg, ep = installed
    app = KeybuzzApp(cfg, None, board_only=True, endpoints=ep)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        assert isinstance(scr, BoardScreen)
        await waits.until(pilot, lambda: app.world == "ready", 30, "the world")
        await first_round(scr, pilot, waits)
        await all_green(scr, pilot, waits)
        assert scr.check_action("scenarios", ()) is False


def board_disagreement(scr: BoardScreen) -> list[str]:
    """What the board shows at this moment in the matrix that its checks contradict (or the
    reverse), for the two hops the checks observe per worker: the NodePort (node.nodeport) and the
    LB (lb.targets-healthy). Empty when they agree or the matrix is not filled in yet."""
    checks = {c.check: c for c in scr.checks.values()}
    nodeport, targets = checks.get("node.nodeport"), checks.get("lb.targets-healthy")
    workers = list(scr.worker_nodes)
    cells = {(w, h): scr.hops.get((w, h)) for w in workers for h in HOPS}
    if nodeport is None or targets is None or not workers or any(c is None or not c.hosts for c in cells.values()):
        return []
    shown = {w: matrix_row(scr, w) for w in workers}
    out: list[str] = []
    broken = [w for w in workers if cells[(w, "nodeport")].status == "fail"]  # type: ignore[union-attr]
    if (nodeport.status == "fail") != bool(broken):
        out.append(f"node.nodeport {nodeport.status} ({nodeport.detail[:90]}) but NodePort cells {shown}")
    lb_bad = [w for w in workers if cells[(w, "lb")].status in ("fail", "warn")]  # type: ignore[union-attr]
    if (targets.status in ("fail", "warn")) != bool(lb_bad) or any(w not in targets.detail for w in lb_bad):
        out.append(f"lb.targets-healthy {targets.status} ({targets.detail[:90]}) but LB cells {shown}")
    return out


async def test_matrix_and_checks_never_disagree_on_screen_through_a_ufw_drop(installed, waits, tmp_path):
    """Sampled at every board message (what the operator can see between two of them): the
    NodePort cells fail exactly when node.nodeport does, the LB cells turn exactly when
    lb.targets-healthy does and only on the workers it names. Through the drop (the fast lane's
    provisional verdict, the full check), the LB taking k3s-worker-02 out of rotation (its LB cell
    `! warn`, the NodePort the first broken hop) and the repair."""
    from keybuzz_tui.screens.bridge import EngineEvent

    app = board_host(installed, tmp_path, interval=1.0)
    problems: list[tuple[float, list[str]]] = []
    samples = [0]
    scr_ref: list[BoardScreen] = []

    def hook(m: Any) -> None:
        if scr_ref and isinstance(m, (BoardScreen.Updated, BoardScreen.Round, EngineEvent)):
            samples[0] += 1
            p = board_disagreement(scr_ref[0])
            if p:
                problems.append((time.monotonic(), p))

    async with app.run_test(size=(120, 36), message_hook=hook) as pilot:
        scr = app.screen
        scr_ref.append(scr)
        await first_round(scr, pilot, waits)
        await all_green(scr, pilot, waits)
        try:
            app.demo_switch("ufw-drop")
            await waits.until(pilot, lambda: scr.first_broken("k3s-worker-02") == "nodeport", 15, "the NodePort hop of k3s-worker-02 to break")
            await waits.until(pilot, lambda: matrix_row(scr, "k3s-worker-02")[1] == "! warn", 40, "the LB to take k3s-worker-02 out of rotation")
            row = matrix_row(scr, "k3s-worker-02")
            assert row[0] == "✓ ok" and row[2] in FIRST_LABEL and all(c in UNREACHED_LABEL for c in row[3:]), row
            assert scr.checks["lb.targets-healthy|"].status == "fail" and "k3s-worker-02" in scr.checks["lb.targets-healthy|"].detail
            for w in WORKERS:
                if w != "k3s-worker-02":
                    assert matrix_row(scr, w) == ["✓ ok"] * len(HOPS), w
        finally:
            app.demo_switch("ufw-allow")
            await waits.until(pilot, lambda: scr.first_broken("k3s-worker-02") is None, 30, "the path of k3s-worker-02 to work again")
            await all_green(scr, pilot, waits)
    assert samples[0] > 20
    assert not problems, problems[:5]


class WizardLike(StepHost):
    """A host with the wizard's `goto` (recorded) for the board's `f`."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.went: list[str] = []

    def goto(self, step_id: str) -> None:
        self.went.append(step_id)


async def test_fix_sends_each_failure_where_it_can_be_fixed(installed, tmp_path, monkeypatch):
    """`f` on a failing check (or a matrix cell): Kubernetes objects to Review, pods to Rollout, a
    port held on a node to Ports, the LB and DNS to their steps, a NotReady node to the Doctor,
    a node's firewall (UFW) to the exact commands on that node (with the Doctor one key away)."""
    from keybuzz_tui.screens import doctor as doctor_screen

    from keybuzz_tui.engine.checks_base import CheckRecord
    from keybuzz_tui.engine.checks_registry import build_checks
    from keybuzz_tui.engine.checks_run import ValidationReport
    from keybuzz_tui.engine.trace import Hop

    sb, cfg, ep = installed
    doctors: list[Any] = []
    monkeypatch.setattr(doctor_screen, "open_doctor", lambda app, **kw: doctors.append(app))
    app = WizardLike(cfg, ep, Secrets(), screen=lambda: BoardScreen(autostart=False), journal_path=tmp_path / "j.jsonl")
    ufw = {"status": "fail", "fix": "host-firewall", "node": "k3s-worker-02", "port": 31695}
    failures: dict[str, dict[str, Any]] = {
        "k8s.ingress": {},
        "node.nodeport": {"k3s-worker-02": {"ingress 31695": ufw}},
        "k8s.pods-ready": {"apps": {"keybuzz-api": {"workers": {"k3s-worker-03": {"status": "fail", "fix": "port-in-use"}}}}},
    }

    def report(failing: dict[str, dict[str, Any]]) -> ValidationReport:
        recs = [CheckRecord(c.id, c.layer, c.title, "fail" if c.id in failing else "ok", "detail", "what to do", failing.get(c.id, {}))  # type: ignore[arg-type]
                for c in build_checks(cfg)]
        rows = {w: [Hop(h, "fail" if (w, h) == ("k3s-worker-02", "nodeport") else "ok", "seen") for h in HOPS] for w in WORKERS}
        return ValidationReport(recs, {"platform-api.keybuzz.io": rows})

    async with app.run_test(size=(120, 36)) as pilot:
        scr = app.screen
        assert isinstance(scr, BoardScreen)
        scr.post_message(BoardScreen.Round(report(failures)))
        await pilot.pause()
        await pilot.pause()
        table = scr.query_one("#board-checks", DataTable)
        keys = [str(k.value) for k in table.rows]

        async def fix_on(key: str) -> None:
            table.focus()
            table.move_cursor(row=keys.index(key))
            await pilot.press("enter")
            await pilot.press("f")
            await pilot.pause()

        await fix_on("k8s.ingress|")
        await fix_on("k8s.pods-ready|")
        assert app.went == ["review", "ports"]
        await fix_on("node.nodeport|")
        assert isinstance(app.screen, FixCommands)
        body = app.screen.query_one("#fixcmd-body").source
        assert "Run on k3s-worker-02" in body and "sudo ufw allow from 10.0.0.0/16 to any port 31695 proto tcp" in body
        await pilot.press("d")  # the Doctor instead
        await pilot.pause()
        assert app.screen is scr and len(doctors) == 1
        # a matrix cell: the hop's check, on that worker
        matrix = scr.query_one("#board-matrix", DataTable)
        matrix.focus()
        matrix.move_cursor(row=sorted(scr.worker_nodes).index("k3s-worker-02"), column=1 + HOPS.index("nodeport"))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FixCommands)
        await pilot.press("escape")
        await pilot.pause()
        # the other places: the load balancer, DNS, a NotReady node (the Doctor), the pods (Rollout)
        for failing, where in (({"lb.services": {}}, "lb"), ({"dns.resolver": {}}, "dns"), ({"k8s.nodes": {}}, "doctor"),
                               ({"k8s.pods-ready": {}}, "rollout")):
            scr.post_message(BoardScreen.Round(report(failing)))
            await pilot.pause()
            await pilot.pause()
            scr._selected, scr._user_moved = None, False  # nothing chosen: the first failing check
            went, docs = len(app.went), len(doctors)
            await pilot.press("f")
            await pilot.pause()
            if where == "doctor":
                assert len(doctors) == docs + 1 and len(app.went) == went, failing
            else:
                assert app.went[went:] == [where], (failing, app.went)
        # nothing failing: nothing to fix
        scr.post_message(BoardScreen.Round(report({})))
        await pilot.pause()
        await pilot.pause()
        went, docs = len(app.went), len(doctors)
        await pilot.press("f")
        await pilot.pause()
        assert len(app.went) == went and len(doctors) == docs and app.screen is scr
