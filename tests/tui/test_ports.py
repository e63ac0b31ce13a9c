"""Ports: conflicts name their holder and a free port; edits re-check at once without API
calls; invalid values are refused with the reason."""

from __future__ import annotations

from keybuzz_tui.screens.widgets import ConfirmModal
from textual.widgets import DataTable, Input

from keybuzz_tui.engine import kubeio


async def _ports(app, pilot, waits):
    await waits.ready(app, pilot)
    app.goto("ports")
    await pilot.pause()
    await waits.settle(app, pilot)
    await waits.until(pilot, lambda: app.screen.checks, 10, "the scan")
    return app.screen


def _row(scr, field):
    table = scr.query_one("#ports-table", DataTable)
    return {key: str(getattr(v, "plain", v)) for key, v in zip([c.key.value for c in table.columns.values()], table.get_row(field), strict=False)}


async def test_nodeport_conflict_names_the_service_and_suggests_a_port(demo_app, waits):
    app = demo_app("nodeport-taken")
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        row = _row(scr, "apps[0].node_port")
        assert row["what"] == "keybuzz-api" and row["port"] == "30080" and row["kind"] == "NodePort"
        assert row["status"] == "✗ taken"
        assert "Service monitoring/grafana" in row["holder"]
        assert row["suggestion"].startswith("30081")
        # the other rows are fine; ingress' NodePorts are held by ingress-nginx as expected
        assert _row(scr, "apps[0].port")["status"] == "✓ free"
        assert _row(scr, "ingress.http_node_port")["status"] == "✓ expected"
        assert _row(scr, "load_balancer.services[0].listen_port")["kind"] == "LB listen"
        await waits.shows(app, pilot, "1 port problem")
        # the conflict row is selected first, its detail says what to do, the input has the fix
        assert scr.query_one("#port-input", Input).value == "30081"
        assert "kubectl -n monitoring edit svc grafana" in str(scr.query_one("#port-text").content)
        assert "ports" not in app.done_steps


async def test_editing_to_a_free_port_turns_green_without_api_calls(demo_app, waits, monkeypatch):
    app = demo_app("nodeport-taken")
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        calls: list[str] = []
        real = kubeio.request
        monkeypatch.setattr(kubeio, "request", lambda ctx, method, path, **kw: calls.append(path) or real(ctx, method, path, **kw))
        inp = scr.query_one("#port-input", Input)
        inp.focus()
        inp.value = ""
        await pilot.press(*"30081", "enter")
        await pilot.pause()
        assert app.config.apps[0].node_port == 30081
        row = _row(scr, "apps[0].node_port")
        assert row["status"] == "✓ free" and row["port"] == "30081" and row["holder"] == "—"
        assert calls == []  # re-checked against the last scan only
        await waits.shows(app, pilot, "no conflict")
        assert "ports" in app.done_steps


async def test_invalid_values_are_refused_with_the_reason(demo_app, waits):
    app = demo_app("nodeport-taken")
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        cases = {
            "99999": "not a valid port: allowed 1-65535",
            "20000": "30000-32767",
            "30000": "keybuzz-front",  # our own Front already uses it
            "abc": "not a whole number",
            "": "enter a port number",
        }
        for raw, reason in cases.items():
            assert scr.edit(raw) is False
            shown = str(scr.query_one("#edit-error").content)
            assert "refused" in shown and reason in shown, (raw, shown)
            assert app.config.apps[0].node_port == 30080
        # the integer input does not even accept letters
        inp = scr.query_one("#port-input", Input)
        inp.focus()
        inp.value = ""
        await pilot.press(*"8o8O")
        assert inp.value == "88"


async def test_host_port_taken_by_a_host_process_is_found_by_the_probe(demo_app, waits):
    app = demo_app("port-taken")
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        assert _row(scr, "apps[0].port")["status"] == "✓ free"  # Kubernetes cannot see the process
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert "short-lived pod" in app.screen.body_text
        await pilot.click("#choice-probe")
        await pilot.pause()
        await waits.settle(app, pilot, timeout=60)
        await waits.until(pilot, lambda: scr.inventory is not None and scr.inventory.probed, 60, "the probe")
        row = _row(scr, "apps[0].port")
        assert row["status"] == "✗ taken" and "nginx" in row["holder"] and "k3s-worker-03" in row["holder"]


async def test_rescan_asks_the_cluster_again(demo_app, waits, monkeypatch):
    app = demo_app()
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        calls: list[str] = []
        real = kubeio.request
        monkeypatch.setattr(kubeio, "request", lambda ctx, method, path, **kw: calls.append(path) or real(ctx, method, path, **kw))
        scr.query_one("#ports-table").focus()
        await pilot.press("r")
        await waits.settle(app, pilot)
        assert "/api/v1/services" in calls


async def _clear_and_type(pilot, inp, text: str, *, gap: float = 0.0) -> None:
    inp.focus()
    await pilot.press("end", *["backspace"] * len(inp.value))
    for ch in text:
        await pilot.press(ch)
        if gap:
            await pilot.pause(gap)


async def test_typing_rechecks_the_port_as_you_type(demo_app, waits, monkeypatch):
    """No Enter: the row, the summary and the answers follow the typed value after a short pause;
    invalid values are refused with the reason as they are typed; no API call."""
    app = demo_app("nodeport-taken")
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        inp = scr.query_one("#port-input", Input)
        # selecting the conflict row fills in the suggestion, which is not an edit: nothing is taken
        assert inp.value == "30081"
        await pilot.pause(scr.DEBOUNCE * 3)
        assert app.config.apps[0].node_port == 30080 and scr.judged == 0
        calls: list[str] = []
        real = kubeio.request
        monkeypatch.setattr(kubeio, "request", lambda ctx, method, path, **kw: calls.append(path) or real(ctx, method, path, **kw))

        await _clear_and_type(pilot, inp, "30082")
        await waits.until(pilot, lambda: app.config.apps[0].node_port == 30082, 5, "the typed port to be taken")
        await waits.until(pilot, lambda: _row(scr, "apps[0].node_port")["status"] == "✓ free", 5, "the row to turn green")
        assert _row(scr, "apps[0].node_port")["port"] == "30082"
        await waits.shows(app, pilot, "no conflict")
        assert "ports" in app.done_steps
        assert "✓ apps[0].node_port: 30080 → 30082" in str(scr.query_one("#edit-error").content)
        assert inp.value == "30082"  # the field keeps what was typed
        assert scr.judged <= 2, scr.judged  # debounced: not one judgement per keystroke

        # an invalid value is refused with the reason, as it is typed
        await _clear_and_type(pilot, inp, "99999")
        await waits.until(pilot, lambda: "refused" in str(scr.query_one("#edit-error").content), 5, "the refusal")
        assert "not a valid port: allowed 1-65535" in str(scr.query_one("#edit-error").content)
        await _clear_and_type(pilot, inp, "30000")  # our own Front's NodePort
        await waits.until(pilot, lambda: "keybuzz-front" in str(scr.query_one("#edit-error").content), 5, "the refusal")
        assert app.config.apps[0].node_port == 30082  # refused values never reach the answers
        # a conflicting (but valid) value is taken and shown red, with its holder
        await _clear_and_type(pilot, inp, "30080")
        await waits.until(pilot, lambda: _row(scr, "apps[0].node_port")["status"] == "✗ taken", 5, "the conflict again")
        assert "Service monitoring/grafana" in _row(scr, "apps[0].node_port")["holder"] and inp.value == "30080"
        assert calls == []  # judged against the last scan only


async def test_one_judgement_at_a_time_while_typing(demo_app, waits):
    """A slow judgement in flight: what is typed meanwhile waits for it, and only the latest value
    is judged next (never one thread per keystroke, never two at once); the UI keeps taking keys."""
    import threading
    import time as _time

    app = demo_app("nodeport-taken")
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await _ports(app, pilot, waits)
        scr.DEBOUNCE = 0.02
        real = scr.refusal
        lock = threading.Lock()
        running, most, judged_values = [0], [0], []

        def slow(field, raw, **kw):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            judged_values.append(raw)
            _time.sleep(0.4)
            try:
                return real(field, raw, **kw)
            finally:
                with lock:
                    running[0] -= 1

        scr.refusal = slow
        inp = scr.query_one("#port-input", Input)
        await _clear_and_type(pilot, inp, "30083", gap=0.1)
        assert inp.value == "30083"  # every key was taken while judgements ran
        await waits.until(pilot, lambda: app.config.apps[0].node_port == 30083, 10, "the last value to be taken")
        await waits.settle(app, pilot)
        assert most[0] == 1, most
        assert judged_values[-1] == "30083" and len(judged_values) < 6, judged_values  # 6 changes (clear + 5 keys)
