"""The Doctor screen against sandbox worlds, with the real clients: the outage (the overlay checks
fail with the probe pods' wget / nc / nslookup output as evidence, the diagnosis recommends the
hostNetwork topology, its Repair action opens Recovery with the classic Deployments extra and
destructive), a check skipped by name on purpose, a cancel that leaves no probe pod, the export, and
the ways in: Welcome's offer after a failing quick validation, the command palette, the board's `d`,
and a credentials cause that leads to the Credentials step.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from keybuzz_tui.screens.board_widgets import StepHost
from keybuzz_tui.screens.doctor import DoctorOffer, DoctorScreen, FixModal
from keybuzz_tui.screens.recovery import RecoveryScreen
from kubernetes import client
from support import engine_fixtures as ef
from textual.notifications import Notify
from textual.widgets import Button, DataTable, Static

from keybuzz_tui.config import Config
from keybuzz_tui.engine import doctor
from keybuzz_tui.engine.checks_base import CheckRecord
from keybuzz_tui.engine.context import Endpoints
from keybuzz_tui.engine.doctor_diagnosis import Cause, Diagnosis
from keybuzz_tui.engine.doctor_overlay import PROBE_NAMESPACE, PROBE_SELECTOR
from keybuzz_tui.journal import Journal

pytestmark = pytest.mark.timeout(240)


def host(sb: Any, tmp_path: Path, screen: Any) -> StepHost:
    return StepHost(Config(), Endpoints.from_sandbox(sb.state_dir), ef.app_secrets(), screen=screen,
                    journal_path=tmp_path / "journal.jsonl", sandbox=sb)


def collect(notes: list[Any]) -> Any:
    return lambda m: notes.append(m.notification) if isinstance(m, Notify) else None


def probe_pods(sb: Any) -> list[str]:
    api = sb.kube_client()
    try:
        return [p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(PROBE_NAMESPACE, label_selector=PROBE_SELECTOR).items]
    finally:
        api.close()


def row(scr: DoctorScreen, check: str) -> list[str]:
    return [c.plain for c in scr.query_one("#doctor-checks", DataTable).get_row(check)]


def detail(scr: DoctorScreen, check: str) -> str:
    scr._select(check)
    return str(scr.query_one("#doctor-detail", Static).render())


@pytest.fixture
def held_probe(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(created, release): the doctor's worker is held right after its first probe pod is
    created (journaled) until `release`, so a test acts while the probe pods are out."""
    created, release = threading.Event(), threading.Event()
    write = Journal.write

    def holding_write(self: Journal, event: str, **fields: Any) -> None:
        write(self, event, **fields)
        if event == "doctor-probe-created" and not created.is_set():
            created.set()
            release.wait(30)

    monkeypatch.setattr(Journal, "write", holding_write)
    return created, release


async def finished(scr: DoctorScreen, pilot: Any, waits: Any, runs: int = 1) -> Any:
    await waits.until(pilot, lambda: scr.runs >= runs and scr.report is not None and not scr.running, 90, "the doctor's report")
    await pilot.pause()
    await pilot.pause()
    return scr.report


# --- the outage ----------------------------------------------------------------------------------


async def test_outage_overlay_evidence_diagnosis_and_repair_action(outage, tmp_path, waits):
    app = host(outage, tmp_path, lambda: DoctorScreen(export_dir=tmp_path / "reports"))
    seen: list[str] = []

    def hook(m: Any) -> None:
        if type(m).__name__ == "EngineEvent" and type(m.event).__name__ == "CheckResult" and m.event.status == "running":
            seen.append(m.event.check)

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        scr = app.screen
        # the rows are drawn from the catalogue before the run
        assert set(scr.rows) == set(doctor.check_ids(Config()))
        rep = await finished(scr, pilot, waits)
        assert seen, "the rows were filled live from CheckResult events"
        # the overlay checks fail, with the probe pods' output verbatim
        for check in doctor.PROBE_CHECKS:
            assert row(scr, check)[1] == "✗ fail", row(scr, check)
        p2p = detail(scr, "overlay.pod-to-pod")
        assert "$ wget -T 3 -qO- http://10.42." in p2p and "  wget: download timed out" in p2p
        assert "UDP 8472" in p2p and "hostNetwork" in p2p  # the remediation
        assert "$ nc -z -w 3 10.43.0.10 53" in detail(scr, "overlay.clusterip") and "nc: timed out" in detail(scr, "overlay.clusterip")
        dns = detail(scr, "overlay.coredns")
        assert "$ nslookup kubernetes.default.svc.cluster.local 10.43.0.10" in dns and ";; connection timed out; no servers could be reached" in dns
        for check in ("k8s.api", "k8s.nodes"):  # (each scenario's full verdict is pinned by tests/engine/test_doctor.py)
            assert row(scr, check)[1] == "✓ ok", (check, row(scr, check))
        assert row(scr, "platform.topology")[1] == "✗ fail"
        # the diagnosis: one cause, in plain words, recommending hostNetwork, with its evidence
        (cause,) = rep.diagnosis.causes
        assert cause.id == "overlay-classic" and cause.action == "repair"
        shown = "\n".join(str(w.render()) for w in scr.query("#cause-list Static"))
        assert "The overlay is broken and KeyBuzz runs in the classic topology: 504 Gateway Time-out" in shown
        # the fix first (the cause's remediation, in full), then the plain-words cause
        assert f"\nFix: {cause.fix}\n" in shown and "move the apps to hostNetwork DaemonSets" in cause.fix
        assert shown.index("Fix: ") < shown.index("Cause: the overlay network is broken")
        assert "In plain words: the overlay network between nodes is broken (VXLAN, UDP 8472" in shown
        assert "wget: download timed out" in shown and "nc: timed out" in shown
        assert str(scr.query_one("#cause-0", Button).label) == "Repair… (Recovery)"
        assert "overlay broken · topology classic" in str(scr.query_one("#diagnosis").border_subtitle)
        assert probe_pods(outage) == []
        # export: Markdown and JSON
        await pilot.press("e")
        await waits.until(pilot, lambda: getattr(scr, "exported", None), 10, "the export")
        md, js = scr.exported
        assert "wget: download timed out" in md.read_text() and json.loads(js.read_text())["kind"] == "doctor"
        # the cause's action: Recovery, preloaded with its steps, the classic Deployments extra and destructive
        await pilot.click("#cause-0")
        await waits.until(pilot, lambda: isinstance(app.screen, RecoveryScreen), 5, "the Recovery screen")
        rec = app.screen
        assert rec.cause is cause and rec.cause_steps() == ("kubernetes", "rollout", "switch", "cleanup")
        assert "From the Doctor: The overlay is broken" in str(rec.query_one("#recovery-cause").render())
        await waits.until(pilot, lambda: rec.report is not None, 60, "the drift")
        await pilot.pause()
        extra = {d.ref: d for d in rec.report.of("extra")}
        for name in ("keybuzz-api", "keybuzz-front"):
            assert extra[f"Deployment keybuzz/{name}"].destructive
        table = rec.query_one("#plan-table", DataTable)
        rows = {table.get_row(k)[2].plain: table.get_row(k)[0].plain for k in table.rows}
        assert "DESTROYS Deployment keybuzz/keybuzz-api" in rows and rows["Delete what keybuzz.yaml does not want (destructive)"] == "◆4"
        # back to the Doctor, which kept its report
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is scr and scr.report is rep


# --- skip, probes, cancel ----------------------------------------------------------------------------


async def test_a_check_skipped_by_name_is_reported_as_skipped_on_purpose(healthy, tmp_path, waits):
    app = host(healthy, tmp_path, lambda: DoctorScreen(autostart=False))
    async with app.run_test(size=(80, 24)) as pilot:
        scr = app.screen
        await pilot.pause()
        assert "not run yet" in str(scr.query_one("#doctor-head").render())
        scr._select("overlay.pod-to-pod")
        await pilot.press("s")
        assert scr.skip == {"overlay.pod-to-pod"}
        assert row(scr, "overlay.pod-to-pod")[0] == "⊘" and "skipped on purpose in the next run" in row(scr, "overlay.pod-to-pod")[3]
        assert "1 skipped on purpose" in str(scr.query_one("#doctor-head").render())
        await pilot.press("r")
        rep = await finished(scr, pilot, waits)
        assert rep.skipped_on_request == ["overlay.pod-to-pod"]
        r = rep.result("overlay.pod-to-pod")
        assert r.status == "skip" and r.evidence["skipped_on_request"] is True
        assert row(scr, "overlay.pod-to-pod")[1] == "– skipped"
        assert row(scr, "overlay.pod-to-pod")[3].startswith("skipped on purpose (--skip overlay.pod-to-pod)")
        assert "skipped on purpose (--skip overlay.pod-to-pod): not checked" in detail(scr, "overlay.pod-to-pod")
        assert rep.result("overlay.clusterip").status == "ok"  # the others still ran, with their probe
        # s again includes it in the next run
        scr._select("overlay.pod-to-pod")
        await pilot.press("s")
        assert scr.skip == set()
        # probe pods off: the next run creates none, and says so
        await pilot.press("p")
        assert "probe pods off" in str(scr.query_one("#doctor-head").render())
        await pilot.press("r")
        rep = await finished(scr, pilot, waits, runs=2)
        assert not rep.probes and "pods" not in rep.probe
        assert all(rep.result(c).status == "skip" for c in doctor.PROBE_CHECKS)
    assert probe_pods(healthy) == []


async def test_cancel_leaves_no_probe_pod(healthy, tmp_path, waits, held_probe):
    # the operator's cancel lands mid-probe however fast or slow the machine is
    created, release = held_probe
    notes: list[Any] = []
    app = host(healthy, tmp_path, lambda: DoctorScreen())
    async with app.run_test(size=(80, 24), message_hook=collect(notes)) as pilot:
        scr = app.screen
        try:
            await waits.until(pilot, created.is_set, 30, "a probe pod")
            assert probe_pods(healthy) and scr.running
            await pilot.press("c")
            assert scr.state in ("cancelling", "cancelled")  # the run returns at once; its cleanup runs first
            await waits.until(pilot, lambda: any("deletes its probe pods" in n.message for n in notes), 10, "the cancel notice")
        finally:
            release.set()
        rep = await finished(scr, pilot, waits)
        assert rep.cancelled and rep.probe["pods"] and rep.probe["cleanup"] == "ok"
        assert probe_pods(healthy) == []
        # the held probe thread, released, ends without creating a pod after the cleanup
        await waits.until(pilot, lambda: not any(t.name.startswith("keybuzz-validate") and t.is_alive() for t in threading.enumerate()),
                          30, "the doctor's check threads to end")
        assert probe_pods(healthy) == []
        said = await waits.until(pilot, lambda: [n.message for n in notes if n.title == "Doctor" and "cancelled" in n.message], 10, "the cancel report")
        assert "probe pod(s) in kube-system were deleted" in said[-1] and "Nothing is left behind" in said[-1]
        assert "Cancelled" in str(scr.query_one("#doctor-head").render())
    events = [json.loads(line)["event"] for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert events.count("doctor-probe-created") == events.count("doctor-probe-deleted") >= 1


# --- the ways in ---------------------------------------------------------------------------------------


async def test_welcome_offers_the_doctor_when_the_quick_validation_fails(demo_app, waits):
    notes: list[Any] = []
    app = demo_app("outage")
    async with app.run_test(size=(120, 36), message_hook=collect(notes)) as pilot:
        await waits.ready(app, pilot, 60)
        offer = app.screen.query_one(DoctorOffer)
        await waits.until(pilot, lambda: not offer.has_class("hidden"), 60, "the Doctor offer")
        assert offer.failing and "https.platform" in offer.failing
        assert str(offer.label).startswith("Doctor: why ") and str(offer.label).endswith(" checks fail")
        # the offer's notice reaches the app after the offer shows (the app dispatches it on its next turn)
        said = await waits.until(pilot, lambda: [n for n in notes if n.title == "The platform is not healthy"], 10, "the notice")
        assert "The Doctor finds the cause" in said[0].message
        assert not app.screen.query_one("#revalidate").has_class("hidden")  # the re-validate path stays
        await waits.until(pilot, lambda: "Doctor: why" in waits.text(app), 10, "the offer on screen, next to the re-validate path")
        await pilot.click("#doctor-offer")
        await pilot.pause()
        assert isinstance(app.screen, DoctorScreen)
        scr = app.screen
        rep = await finished(scr, pilot, waits)
        assert rep.diagnosis.causes[0].id == "overlay-classic"
        # esc goes back to Welcome; the palette's command brings the same Doctor back
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DoctorScreen)
        app.action_doctor()
        await pilot.pause()
        assert isinstance(app.screen, DoctorScreen)
        await waits.settle(app, pilot, 60)


async def test_palette_commands_and_the_boards_d(demo_app, waits):
    app = demo_app("healthy")
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.ready(app, pilot, 60)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Doctor" in titles and "Recovery" in titles
        app.goto("validation")
        await pilot.pause()
        board = app.screen
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DoctorScreen)
        # ctrl+b leaves the Doctor for the wizard's previous step (the Doctor is closed first)
        await waits.until(pilot, lambda: not app.screen.running, 90, "the doctor run")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is board
        recovery = next(c for c in app.get_system_commands(app.screen) if c.title == "Recovery")
        recovery.callback()
        await pilot.pause()
        assert isinstance(app.screen, RecoveryScreen)
        await waits.until(pilot, lambda: app.screen.compares >= 1, 120, "the drift")
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert app.current_step == "dns" and not isinstance(app.screen, RecoveryScreen)


def _report(cause: Cause) -> Any:
    rec = CheckRecord("k8s.permissions", "kubernetes", "Permissions the wizard needs (SelfSubjectAccessReview)", "fail",
                      "create daemonsets.apps in keybuzz is not allowed", "use the K3s admin kubeconfig")
    return doctor.DoctorReport([rec], Diagnosis([cause]), duration=0.5)


async def test_a_credentials_cause_leads_to_the_credentials_step_and_a_manual_one_shows_the_fix(tmp_path, waits):
    from keybuzz_tui.app import KeybuzzApp

    app = KeybuzzApp(Config(), None, connect=False)
    creds = Cause("kube-permissions", "major", "The kubeconfig user lacks 1 permission(s) the wizard needs",
                  "Cause: this kubeconfig user may not create daemonsets.apps. Fix: use a context bound to cluster-admin.",
                  "use the K3s admin kubeconfig, or grant the verbs listed", "kubectl auth can-i --list -n keybuzz",
                  ["k8s.permissions: create daemonsets.apps in keybuzz is not allowed"], ["k8s.permissions"], "credentials")
    manual = Cause("node-notready", "major", "Worker k3s-worker-04 is NotReady", "Cause: its kubelet stopped. Fix: bring it back.",
                   "on k3s-worker-04: `systemctl status k3s-agent`", "kubectl describe node k3s-worker-04",
                   ["k8s.nodes: 4/5 workers Ready"], ["k8s.nodes"], "manual")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        scr = DoctorScreen(autostart=False)
        await app.push_screen(scr)
        scr.show_report(_report(manual))
        await pilot.pause()
        await pilot.pause()
        assert str(scr.query_one("#cause-0", Button).label) == "What to do"
        # F1: the screen's help and its keys; the light theme repaints the report
        await pilot.press("f1")
        await pilot.pause()
        from keybuzz_tui.screens.modals import HelpScreen

        assert isinstance(app.screen, HelpScreen) and app.screen.help_title == "Doctor"
        assert ("s", "Skip the selected check on purpose in the next run (again: include it)") in app.screen.help_bindings
        await pilot.press("escape")
        app.action_toggle_theme()
        await pilot.pause()
        await pilot.pause()
        assert scr.query("#cause-list CauseView") and "k3s-worker-04 is NotReady" in "\n".join(str(w.render()) for w in scr.query("#cause-list Static"))
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, FixModal)
        body = app.screen.query_one("#fix-body").source
        assert "systemctl status k3s-agent" in body and "kubectl describe node k3s-worker-04" in body
        await pilot.press("escape")
        await pilot.pause()
        scr.show_report(_report(creds))
        await pilot.pause()
        await pilot.pause()
        assert str(scr.query_one("#cause-0", Button).label) == "Fix credentials (Credentials step)"
        await pilot.click("#cause-0")
        await pilot.pause()
        assert app.current_step == "credentials" and type(app.screen).__name__ == "CredentialsScreen"
        assert scr not in app.screen_stack


async def test_a_cause_shows_its_fix_first_and_the_recheck_second(waits):
    """The cause's remediation is the first thing under its title, in full; the doctor command that
    re-checks it comes second, labelled as such; the explanation no longer repeats the fix. At
    80x24 the fix is on screen without scrolling."""
    from keybuzz_tui.app import KeybuzzApp

    app = KeybuzzApp(Config(), None, connect=False)
    cause = Cause("lb-target-unhealthy", "major", "Load Balancer target k3s-worker-02 is unhealthy",
                  "Cause: the LB's health check to k3s-worker-02:31695 times out. Fix: allow 31695 on k3s-worker-02.",
                  "on k3s-worker-02: `sudo ufw allow 31695/tcp`; check ingress-nginx there",
                  "keybuzz-tui doctor --only hetzner.lb,platform.request-path",
                  ["hetzner.lb: k3s-worker-02 unhealthy on 80 and 443"], ["hetzner.lb"], "manual")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        scr = DoctorScreen(autostart=False)
        await app.push_screen(scr)
        scr.show_report(_report(cause))
        await pilot.pause()
        await pilot.pause()
        view = scr.query_one("#cause-list CauseView")
        parts = [str(w.render()) for w in view.query(Static)]
        fix = next(i for i, t in enumerate(parts) if t.startswith("Fix: "))
        assert parts[fix] == "Fix: on k3s-worker-02: `sudo ufw allow 31695/tcp`; check ingress-nginx there"
        then = next(i for i, t in enumerate(parts) if "then re-check: keybuzz-tui doctor --only hetzner.lb" in t)
        why = next(i for i, t in enumerate(parts) if t.startswith("Cause: "))
        assert fix < then < why, parts
        assert "Fix:" not in parts[why] and not any(t.strip().startswith("next:") for t in parts)
        await waits.shows(app, pilot, "sudo ufw allow 31695/tcp")  # visible at 80x24
        # What to do: the fix first, then the re-check, then why
        await pilot.press("a")
        await pilot.pause()
        body = app.screen.query_one("#fix-body").source
        assert body.index("**What to do:**") < body.index("**Then re-check:**") < body.index("**Why:**"), body


async def test_ctrl_n_leaves_the_flow_for_the_next_wizard_step_but_not_while_the_doctor_runs(demo_app, waits, held_probe):
    """The wizard's ctrl+n / ctrl+b work from the Doctor and Recovery too: the flow closes and
    the wizard moves on; while the doctor runs (probe pods out) it refuses and says how to stop."""
    created, release = held_probe
    notes: list[Any] = []
    app = demo_app()
    async with app.run_test(size=(120, 36), message_hook=collect(notes)) as pilot:
        await waits.ready(app, pilot)
        await pilot.press("ctrl+n")
        await waits.until(pilot, lambda: app.current_step == "credentials", 10, "the credentials step")
        app.action_doctor()
        await pilot.pause()
        scr = app.screen
        assert isinstance(scr, DoctorScreen)
        try:
            await waits.until(pilot, created.is_set, 30, "a probe pod")
            await pilot.press("ctrl+n")
            await waits.until(pilot, lambda: any("c cancels it first" in n.message for n in notes), 10, "the refusal")
            assert app.screen is scr and app.current_step == "credentials"
        finally:
            release.set()
        await finished(scr, pilot, waits)
        await pilot.press("ctrl+n")
        await waits.until(pilot, lambda: app.current_step == "ports", 10, "the next step")
        assert not isinstance(app.screen, DoctorScreen) and getattr(app.screen, "STEP", None) == "ports"
        app.push_screen(RecoveryScreen())
        await waits.until(pilot, lambda: isinstance(app.screen, RecoveryScreen), 10, "Recovery")
        await pilot.press("ctrl+b")
        await waits.until(pilot, lambda: app.current_step == "credentials", 10, "the previous step")
        assert not isinstance(app.screen, RecoveryScreen)
