"""Review: the full plan with readable diffs, plan errors up front, answers saved, manifests
exported with Secret values masked, Apply only after a confirmation."""

from __future__ import annotations

from keybuzz_tui.screens.widgets import ConfirmModal
from textual.widgets import DataTable

from keybuzz_tui.credentials import SandboxKeyring


async def _store_credentials(app, pilot, waits):
    await waits.ready(app, pilot)
    app.goto("credentials")
    await pilot.pause()
    await waits.settle(app, pilot)
    await pilot.press("ctrl+s")
    await waits.settle(app, pilot)
    await waits.until(pilot, lambda: app.screen.stored_names, 10, "credentials stored")


async def _review(app, pilot, waits):
    app.goto("review")
    await pilot.pause()
    await waits.settle(app, pilot, timeout=40)
    await waits.until(pilot, lambda: app.screen.full is not None, 20, "the plan")
    await pilot.pause()
    return app.screen


async def test_plan_is_shown_with_a_diff(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _store_credentials(app, pilot, waits)
        scr = await _review(app, pilot, waits)
        table = scr.query_one("#plan-table", DataTable)
        refs = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        for ref in ("Namespace keybuzz", "DaemonSet keybuzz/keybuzz-api", "Service keybuzz/keybuzz-front", "LoadBalancer keybuzz-lb"):
            assert ref in refs, refs
        await waits.shows(app, pilot, "ready to apply", "to create")
        # the first row is selected: its diff is readable YAML, + lines
        diff = str(scr.query_one("#plan-diff").content)
        assert "+ create Namespace keybuzz" in diff and "+ kind: Namespace" in diff
        # moving the cursor shows another object's diff
        table.focus()
        row = refs.index("DaemonSet keybuzz/keybuzz-api")
        table.move_cursor(row=row)
        await pilot.pause()
        diff = str(scr.query_one("#plan-diff").content)
        assert "hostNetwork: true" in diff and "containerPort: 8080" in diff


async def test_nodeport_taken_is_surfaced_with_remediation(demo_app, waits):
    app = demo_app("nodeport-taken")
    async with app.run_test(size=(160, 48)) as pilot:
        await _store_credentials(app, pilot, waits)
        scr = await _review(app, pilot, waits)
        box = scr.query_one("#plan-errors")
        assert not box.has_class("hidden") and box.has_class("error-box")
        errors = str(box.content)
        assert "provided port is already allocated" in errors
        assert "Service monitoring/grafana" in errors and "30081" in errors
        await waits.shows(app, pilot, "block the apply")
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal) and app.current_step == "review"


async def test_export_masks_secrets_and_save_writes_no_secret(demo_app, waits, tmp_path):
    ring = SandboxKeyring()
    app = demo_app(credential_backend=ring)
    async with app.run_test(size=(160, 48)) as pilot:
        await _store_credentials(app, pilot, waits)
        scr = await _review(app, pilot, waits)
        secrets = [v for v in ring._store.values()]
        assert len(secrets) == 5
        scr.query_one("#plan-table").focus()
        await pilot.press("e")
        await waits.settle(app, pilot)
        await waits.until(pilot, lambda: scr.export_path is not None, 10, "the export")
        text = scr.export_path.read_text()
        assert "kind: Secret" in text and "kind: DaemonSet" in text
        assert "masked" in text
        for value in secrets:
            assert value not in text
        await pilot.press("ctrl+s")
        await pilot.pause()
        answers = (tmp_path / "keybuzz.yaml").read_text()
        assert "node_port: 30080" in answers
        for value in secrets:
            assert value not in answers
        # nor in anything the screen shows
        shown = waits.text(app) + app.export_screenshot()
        for value in secrets:
            assert value[:12] not in shown


async def test_apply_asks_then_moves_to_the_rollout(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _store_credentials(app, pilot, waits)
        scr = await _review(app, pilot, waits)
        scr.query_one("#plan-table").focus()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert "Kubernetes change(s)" in app.screen.body_text
        await pilot.click("#choice-cancel")
        await pilot.pause()
        assert app.current_step == "review"
        await pilot.press("a")
        await pilot.pause()
        await pilot.click("#choice-apply")
        await pilot.pause()
        assert app.current_step == "rollout" and "review" in app.done_steps
        assert getattr(app.screen, "STEP", "") == "rollout"
