"""The Recovery screen against sandbox worlds, with the real clients: the outage's drift (the classic
Deployments extra and destructive), a repair confirmed twice that ends on a green validation, a
declined second confirmation that changes nothing, the platform lock (held: shown with its holder
and the repair refused; stale: offered for takeover), an apply that stopped halfway (Resume), and
a rollback to the previous image.

The screen is hosted by StepHost (the engine bridge over the sandbox's endpoints, the keyring's
secrets as a dict), as the board's tests do; the wizard shell's entry points are tested in
test_doctor_screen.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from keybuzz_tui.screens.board_widgets import MarkdownConfirm, StepHost
from keybuzz_tui.screens.recovery import DestroyConfirm, RecoveryScreen
from keybuzz_tui.screens.widgets import ConfirmModal
from support import engine_fixtures as ef
from textual.notifications import Notify
from textual.widgets import Button, DataTable, Static

from keybuzz_tui.config import Config
from keybuzz_tui.engine import kubeio, recovery
from keybuzz_tui.engine.context import Endpoints
from keybuzz_tui.engine.lock import LEASE_NAME, PlatformLock
from keybuzz_tui.engine.platform import Platform
from keybuzz_tui.journal import Journal

pytestmark = pytest.mark.timeout(240)

NS = "keybuzz"
DEPLOYMENTS = ("Deployment keybuzz/keybuzz-api", "Deployment keybuzz/keybuzz-front")


# --- helpers -------------------------------------------------------------------------------------


def host(sb: Any, tmp_path: Path, screen: Any, cfg: Config | None = None) -> StepHost:
    return StepHost(cfg or Config(), Endpoints.from_sandbox(sb.state_dir), ef.app_secrets(), screen=screen,
                    journal_path=tmp_path / "journal.jsonl", sandbox=sb)


def engine(sb: Any, tmp_path: Path) -> Any:
    ctx, _ = ef.engine_context(sb, tmp_path / "engine-journal.jsonl", Config(), secrets=ef.app_secrets())
    return ctx


def journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def text(scr: Any, selector: str) -> str:
    return str(scr.query_one(selector, Static).render())


def collect(notes: list[Any]) -> Any:
    """A message hook that keeps the notifications (title, message, severity)."""
    return lambda m: notes.append(m.notification) if isinstance(m, Notify) else None


async def compared(scr: RecoveryScreen, pilot: Any, waits: Any, n: int = 1) -> None:
    await waits.until(pilot, lambda: scr.compares >= n and scr.state not in ("comparing", "waiting"), 60, "the drift")
    await pilot.pause()


def plan_refs(scr: RecoveryScreen) -> dict[str, str]:
    """The plan table as the operator reads it: row object -> action cell."""
    table = scr.query_one("#plan-table", DataTable)
    out = {}
    for key in table.rows:
        row = table.get_row(key)
        out[row[2].plain] = row[1].plain
    return out


# --- the outage ----------------------------------------------------------------------------------


async def test_outage_repair_confirmed_twice_ends_on_a_green_validation(outage, tmp_path, waits):
    notes: list[Any] = []
    app = host(outage, tmp_path, lambda: RecoveryScreen())
    async with app.run_test(size=(120, 40), message_hook=collect(notes)) as pilot:
        scr = app.screen
        await compared(scr, pilot, waits)
        # the drift: the classic Deployments are extra and destructive, the DaemonSets missing
        states = {d.ref: (d.state, d.destructive) for d in scr.report.items}
        for ref in DEPLOYMENTS:
            assert states[ref] == ("extra", True)
        assert states["DaemonSet keybuzz/keybuzz-api"] == ("missing", False)
        drift_rows = [[c.plain for c in scr.query_one("#drift-table", DataTable).get_row(k)] for k in scr.query_one("#drift-table", DataTable).rows]
        assert ["- extra", "Kubernetes", "DESTRUCTIVE Deployment keybuzz/keybuzz-api"] in drift_rows
        assert "topology classic" in text(scr, "#recovery-head")
        # the plan by steps, the deletions highlighted in the cleanup step
        await pilot.press("2")
        refs = plan_refs(scr)
        assert refs["DESTROYS Deployment keybuzz/keybuzz-api"] == "- delete"
        assert [s.name for s in scr.plan.steps] == ["kubernetes", "rollout", "switch", "cleanup", "load_balancer", "dns", "firewall"]

        # first confirmation: the steps; second: exactly what is destroyed
        await pilot.press("a")
        await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the repair confirmation")
        await pilot.press("y")
        await waits.until(pilot, lambda: isinstance(app.screen, DestroyConfirm), 5, "the second confirmation")
        listed = str(app.screen.query_one("#destroy-list", Static).render())
        assert "deletes Deployment keybuzz/keybuzz-api and its 1 pod" in listed and "keybuzz-front" in listed
        assert app.screen.focused is app.screen.query_one("#destroy-no", Button)  # Enter would keep them
        await pilot.click("#destroy-yes")
        await waits.until(pilot, lambda: scr.state == "repairing" or scr.result is not None, 5, "the repair to start")
        await waits.until(pilot, lambda: scr.state in ("done", "failed", "error"), 180, "the repair and its validation")
        await pilot.pause()
        assert scr.result is not None and scr.result.ok, (scr.result and scr.result.message, scr.error)
        assert scr.result.deleted == list(DEPLOYMENTS)
        # progress per step came from the engine's events
        assert scr.steps["kubernetes"].status == "ok" and scr.steps["cleanup"].status == "ok", scr.steps
        assert scr.steps["rollout"].status == "ok"
        assert scr.changes["DaemonSet keybuzz/keybuzz-api"].text == "applied"
        assert scr.changes["Deployment keybuzz/keybuzz-api"].text == "deleted"
        # the end: every check green, the board one key away
        assert scr.green, {r.check: r.detail for r in scr.validation.results if r.status != "ok"}
        result = text(scr, "#recovery-result")
        assert "every check green" in result and "b opens the live board" in result
        await waits.until(pilot, lambda: scr.report is not None and not scr.report.items, 30, "the drift after the repair")
        assert "the platform matches keybuzz.yaml" in text(scr, "#recovery-head")
        # b: the live validation board
        await pilot.press("b")
        await pilot.pause()
        from keybuzz_tui.screens.board import BoardScreen

        assert isinstance(app.screen, BoardScreen)
    runs = [e for e in journal(tmp_path / "journal.jsonl") if e["event"] == "run-finished"]
    assert runs and runs[-1]["status"] == "ok"


async def test_declining_the_second_confirmation_changes_nothing(outage, tmp_path, waits):
    notes: list[Any] = []
    app = host(outage, tmp_path, lambda: RecoveryScreen())
    async with app.run_test(size=(80, 24), message_hook=collect(notes)) as pilot:
        scr = app.screen
        await compared(scr, pilot, waits)
        before = scr.report.counts()
        await pilot.press("a")
        await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the repair confirmation")
        await pilot.press("y")
        await waits.until(pilot, lambda: isinstance(app.screen, DestroyConfirm), 5, "the second confirmation")
        await pilot.press("enter")  # the focused button keeps them
        await waits.until(pilot, lambda: app.screen is scr, 5, "back on the screen")
        await pilot.pause()
        assert scr.state == "ready" and scr.result is None
        await waits.until(pilot, lambda: any("destructive changes were declined" in n.message for n in notes), 10, "the declined notice")
        # and with escape too
        await pilot.press("a", "y")
        await waits.until(pilot, lambda: isinstance(app.screen, DestroyConfirm), 5, "the second confirmation")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is scr and scr.result is None
    assert not [e for e in journal(tmp_path / "journal.jsonl") if e["event"] == "run-started"]
    ctx = engine(outage, tmp_path)
    try:
        again = recovery.drift(ctx)
        assert again.counts() == before
        for ref in DEPLOYMENTS:
            assert kubeio.get_or_none(ctx, kubeio.resource_path("apps/v1", "deployments", NS, ref.rsplit("/", 1)[1])) is not None
    finally:
        ctx.close()


# --- the platform lock ---------------------------------------------------------------------------


async def test_a_held_lock_is_shown_with_its_holder_and_the_repair_is_refused(healthy, tmp_path, waits):
    ctx = engine(healthy, tmp_path)
    other = PlatformLock(ctx)
    other.me = "alice@laptop pid 4242"
    other.acquire()
    notes: list[Any] = []
    try:
        app = host(healthy, tmp_path, lambda: RecoveryScreen())
        async with app.run_test(size=(120, 36), message_hook=collect(notes)) as pilot:
            scr = app.screen
            await compared(scr, pilot, waits)
            banner = text(scr, "#lock-text")
            assert "held by alice on laptop (pid 4242) since" in banner and "renewed" in banner
            assert "another wizard is changing this platform" in banner
            assert scr.query_one("#takeover", Button).has_class("hidden")  # a live lock is never offered
            assert "lock held" in text(scr, "#recovery-head")
            await pilot.press("t")  # not offered: nothing happens
            await pilot.press("a")
            await pilot.pause()
            assert app.screen is scr, "no confirmation: the repair is refused at once"
            refused = await waits.until(pilot, lambda: [n for n in notes if n.title == "Repair refused"], 10, "the refusal")
            assert "alice on laptop (pid 4242)" in refused[-1].message
            # the lock taken after the comparison: the engine refuses it too, and says who holds it
            scr.lock = None
            await pilot.press("a")
            await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the repair confirmation")
            await pilot.press("y")
            await waits.until(pilot, lambda: len([n for n in notes if n.title == "Repair refused"]) >= 2, 30, "the engine's refusal")
            assert "alice on laptop (pid 4242)" in [n for n in notes if n.title == "Repair refused"][-1].message
            assert scr.lock is not None and scr.lock.holder == "alice@laptop pid 4242"
            assert scr.state == "ready" and scr.result is None
        assert not [e for e in journal(tmp_path / "journal.jsonl") if e["event"] == "run-started"]
    finally:
        other.release()
        ctx.close()


async def test_a_stale_lock_offers_a_takeover_with_its_own_confirmation(healthy, tmp_path, waits):
    ctx = engine(healthy, tmp_path)
    old = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease = {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": "kube-system"},
        "spec": {"holderIdentity": "bob@crashed-laptop pid 99", "acquireTime": old, "renewTime": old, "leaseDurationSeconds": 120},
    }
    kubeio.request(ctx, "POST", kubeio.resource_path("coordination.k8s.io/v1", "leases", "kube-system"), body=lease)
    try:
        app = host(healthy, tmp_path, lambda: RecoveryScreen())
        async with app.run_test(size=(120, 36)) as pilot:
            scr = app.screen
            await compared(scr, pilot, waits)
            banner = text(scr, "#lock-text")
            assert "held by bob on crashed-laptop (pid 99)" in banner and "last renewed 10 min ago" in banner
            assert "stale" in banner
            assert not scr.query_one("#takeover", Button).has_class("hidden")
            # its own confirmation first; "Leave it" changes nothing
            await pilot.press("t")
            await waits.until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "the takeover confirmation")
            assert "bob on crashed-laptop" in str(app.screen.query_one("#confirm-body", Static).render())
            await pilot.click("#choice-cancel")
            await pilot.pause()
            assert app.screen is scr and not scr.take_over
            # taking it over leads to the repair's own confirmation; declining that changes nothing
            await pilot.press("t")
            await waits.until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "the takeover confirmation")
            await pilot.click("#choice-take")
            await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the repair confirmation")
            assert scr.take_over
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is scr and scr.result is None
            lease_now = kubeio.get(ctx, kubeio.resource_path("coordination.k8s.io/v1", "leases", "kube-system", LEASE_NAME))
            assert lease_now["spec"]["holderIdentity"] == "bob@crashed-laptop pid 99"  # nothing was taken yet
            assert not [e for e in journal(tmp_path / "journal.jsonl") if e["event"] in ("run-started", "lock-taken-over")]
            # the repair, accepted this time: it takes the lock over (journaled) and installs what is missing
            await pilot.press("a")
            await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the repair confirmation")
            await pilot.press("y")
            await waits.until(pilot, lambda: scr.state in ("done", "failed", "error"), 180, "the repair and its validation")
            assert scr.result is not None and scr.result.ok, scr.result and scr.result.message
            assert scr.green, {r.check: r.detail for r in scr.validation.results if r.status != "ok"}
        taken = [e for e in journal(tmp_path / "journal.jsonl") if e["event"] == "lock-taken-over"]
        assert taken and taken[0]["previous"] == "bob@crashed-laptop pid 99"
    finally:
        ctx.close()


async def test_a_cancelled_repair_stops_at_a_safe_point_and_resume_finishes_it(outage, tmp_path, waits, monkeypatch):
    from keybuzz_tui.engine import rollout

    kubelet = outage.cluster.manager.controllers["kubelet"]
    outage.call(kubelet.set_missing_images, ["ghcr.io/keybuzz/*"])  # the new pods cannot start: the rollout waits
    monkeypatch.setattr(rollout, "STUCK_GRACE", 600.0)  # ... and does not give up on them before the cancel, however slow the machine
    notes: list[Any] = []
    app = host(outage, tmp_path, lambda: RecoveryScreen())
    async with app.run_test(size=(120, 36), message_hook=collect(notes)) as pilot:
        scr = app.screen
        await compared(scr, pilot, waits)
        await pilot.press("a", "y")
        await waits.until(pilot, lambda: isinstance(app.screen, DestroyConfirm), 5, "the second confirmation")
        await pilot.click("#destroy-yes")
        await waits.until(pilot, lambda: scr.steps.get("rollout") is not None and scr.steps["rollout"].status == "running", 60, "the rollout")
        await pilot.press("c")
        # "cancelling" until the repair reaches its next safe point; on a fast cancel it may already be there
        assert scr.state in ("cancelling", "failed"), scr.state
        await waits.until(pilot, lambda: any("next safe point" in n.message and "the next repair finishes it" in n.message for n in notes), 10, "the cancel notice")
        await waits.until(pilot, lambda: scr.result is not None, 60, "the repair to stop")
        assert scr.result.status == "cancelled" and scr.result.deleted == []  # the classic install still serves
        assert "the next repair (Resume) finishes it" in text(scr, "#recovery-result")
        await waits.until(pilot, lambda: scr.report is not None and scr.report.interrupted, 30, "the stopped run")
        (run,) = scr.report.interrupted
        assert run.command == "repair" and run.how == "interrupted"
        assert "the repair of" in text(scr, "#interrupted-text")
        # the images come back: Resume finishes the repair
        outage.call(kubelet.set_missing_images, [])
        await pilot.press("u")
        await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the resume confirmation")
        await pilot.press("y")
        await waits.until(pilot, lambda: isinstance(app.screen, DestroyConfirm), 5, "the second confirmation")
        await pilot.click("#destroy-yes")
        await waits.until(pilot, lambda: scr.state in ("done", "failed", "error") and scr.result is not None and scr.result.status != "cancelled",
                          180, "the resumed repair")
        assert scr.result.ok and scr.result.deleted == list(DEPLOYMENTS), scr.result.message
        assert scr.green, {r.check: r.detail for r in scr.validation.results if r.status != "ok"}
        await waits.until(pilot, lambda: scr.report is not None and not scr.report.interrupted and not scr.report.items, 30, "no drift left")


# --- resume --------------------------------------------------------------------------------------


async def test_an_interrupted_apply_is_shown_with_resume(healthy, tmp_path, waits):
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.start_run("apply", summary="15 to create")
    for kind, name in (("Namespace", None), ("Secret", "keybuzz-api-credentials"), ("DaemonSet", "keybuzz-api")):
        j.write("object-applied", action="create", kind=kind, name=name or "keybuzz", namespace=NS if name else None)
    # no run-finished: the process died
    app = host(healthy, tmp_path, lambda: RecoveryScreen())
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await compared(scr, pilot, waits)
        (run,) = scr.report.interrupted
        assert run.command == "apply" and run.last == "DaemonSet keybuzz/keybuzz-api"
        shown = text(scr, "#interrupted-text")
        assert "Stopped halfway: the apply of" in shown and "stopped after DaemonSet keybuzz/keybuzz-api" in shown
        assert f"{run.remaining} changes remain" in shown and "killed, crashed or disconnected" in shown
        assert not scr.query_one("#interrupted-box").has_class("hidden")
        resume = scr.query_one("#resume", Button)
        assert not resume.has_class("hidden") and "Resume" in str(resume.label)
        # Resume is the repair of what remains, with the same confirmation
        await pilot.press("u")
        await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the resume confirmation")
        assert str(app.screen.query_one("#confirm-title").render()).startswith("Resume: ")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is scr and scr.result is None


# --- rollback ------------------------------------------------------------------------------------


async def test_rollback_lists_revisions_and_restores_the_previous_image(healthy, tmp_path, waits):
    ctx = engine(healthy, tmp_path)
    try:
        p = Platform(ctx)
        p.apply_kubernetes(p.plan_kubernetes())
        assert p.rollout(60).ok
        path = kubeio.resource_path("apps/v1", "daemonsets", NS, "keybuzz-api")
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "keybuzz-api", "image": "ghcr.io/keybuzz/api:1.4.1-hotfix"}]}}}}
        kubeio.request(ctx, "PATCH", path, query={"fieldManager": "kubectl-set"}, body=patch, content_type="application/strategic-merge-patch+json")
        ef.wait_for(lambda: len(recovery.revisions(ctx, "keybuzz-api")) == 2, 20, what="the second revision")

        app = host(healthy, tmp_path, lambda: RecoveryScreen())
        async with app.run_test(size=(160, 48)) as pilot:
            scr = app.screen
            await compared(scr, pilot, waits)
            await pilot.press("3")
            await waits.until(pilot, lambda: scr.rb_app == "keybuzz-api" and len(scr.revisions) == 2, 20, "the revisions")
            await pilot.pause()
            table = scr.query_one("#rb-table", DataTable)
            rows = [[c.plain for c in table.get_row(k)] for k in table.rows]
            assert rows[0][1] == "ghcr.io/keybuzz/api:1.4.1-hotfix" and rows[0][3].endswith("running")
            assert rows[1][1] == "ghcr.io/keybuzz/api:1.4.2"
            # the previous revision is selected, with what rolling back to it changes
            older = next(r for r in scr.revisions if not r.current)
            assert scr.rb_revision == older.revision
            diff = text(scr, "#rb-diff")
            assert "1.4.1-hotfix -> ghcr.io/keybuzz/api:1.4.2" in diff
            assert str(scr.query_one("#rb-go", Button).label) == f"Roll back to revision {older.revision}…"
            await pilot.press("z")
            await waits.until(pilot, lambda: isinstance(app.screen, MarkdownConfirm), 5, "the rollback confirmation")
            assert "1.4.1-hotfix -> ghcr.io/keybuzz/api:1.4.2" in str(app.screen.query_one("#confirm-body").source)
            await pilot.press("y")
            await waits.until(pilot, lambda: scr.rb_busy, 5, "the rollback to start")
            await waits.until(pilot, lambda: not scr.rb_busy, 90, "the rollback")
            await waits.until(pilot, lambda: len(scr.revisions) >= 2 and any(r.current and "ghcr.io/keybuzz/api:1.4.2" in r.images for r in scr.revisions),
                              20, "the revisions again")
        live = kubeio.get(ctx, path)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/keybuzz/api:1.4.2"
        runs = [e for e in journal(tmp_path / "journal.jsonl") if e["event"] in ("run-started", "run-finished")]
        assert runs[-2]["command"] == "rollback" and runs[-1]["status"] == "ok"
    finally:
        ctx.close()
