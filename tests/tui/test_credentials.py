"""Credentials: masked inputs, the live token check, the context picker, nothing stored before
Save, and a clear explanation when no keyring exists."""

from __future__ import annotations

import uuid

import keyring
import pytest
from keyring.backends import fail
from support import sandboxes
from support.requirements import unavailable
from textual.widgets import Button, Input, Select

from keybuzz_tui.app import KeybuzzApp
from keybuzz_tui.credentials import CredentialStore, SandboxKeyring
from keybuzz_tui.engine.context import Endpoints


async def _creds(app, pilot, waits):
    await waits.ready(app, pilot)
    app.goto("credentials")
    await pilot.pause()
    await waits.settle(app, pilot)
    await waits.until(pilot, lambda: getattr(app.screen, "token_result", None) is not None, 10, "the token check")
    return app.screen


async def test_token_is_masked_until_revealed(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _creds(app, pilot, waits)
        token = app.demo_token
        assert token and scr.query_one("#token", Input).value == token
        svg = app.export_screenshot()
        assert token not in svg and token[:12] not in svg
        assert token not in waits.text(app)
        await pilot.click("#reveal-token")
        await pilot.pause()
        await waits.shows(app, pilot, token[:20])  # shown only because the operator asked
        await pilot.click("#reveal-token")
        await pilot.pause()
        assert token[:12] not in waits.text(app)
        # generated secrets are shown masked too
        scr.action_generate_all()
        await pilot.pause()
        gen = scr.query_one("#secret-1", Input).value
        assert len(gen) == 64 and gen not in waits.text(app) and gen[:10] not in app.export_screenshot()
        assert "generated, not saved yet: •••• (64 chars)" in waits.text(app) or "generated, not saved yet" in str(scr.query_one("#status-1").content)


async def test_valid_and_wrong_tokens(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _creds(app, pilot, waits)
        assert scr.token_result.status == "valid"
        assert scr.query_one("#token-status").status == "ok"
        inp = scr.query_one("#token", Input)
        inp.value = "hc_this-is-not-the-right-token-0000000000000000000000000000"
        await pilot.press("ctrl+t")
        await waits.settle(app, pilot)
        await waits.until(pilot, lambda: scr.token_result.status == "wrong", 10, "the wrong verdict")
        assert scr.query_one("#token-status").status == "fail"
        await waits.shows(app, pilot, "401 unauthorized", "Read & Write")


async def test_read_only_token_is_told_apart(demo_app, waits):
    app = demo_app("hetzner-readonly-token")
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _creds(app, pilot, waits)
        assert scr.token_result.status == "read-only"
        assert scr.query_one("#token-status").status == "warn"
        await waits.shows(app, pilot, "token_readonly")


async def test_nothing_is_stored_before_save(demo_app, waits):
    ring = SandboxKeyring()
    app = demo_app(credential_backend=ring)
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _creds(app, pilot, waits)
        scr.action_generate_all()
        scr.query_one("#secret-0", Input).value = "postgres://u:p@db:5432/k"
        await pilot.pause(0.3)
        await waits.settle(app, pilot)
        assert ring._store == {}  # typed, generated, checked: still nothing stored
        await pilot.press("ctrl+s")
        await waits.settle(app, pilot)
        await waits.until(pilot, lambda: scr.stored_names, 10, "the save")
        names = {n for (_svc, n) in ring._store}
        assert names == {"hcloud-token", "app/keybuzz-api/DATABASE_URL", "app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY", "app/keybuzz-front/SESSION_SECRET"}
        # the inputs forget the values; the status shows masked previews
        assert scr.query_one("#secret-0", Input).value == "" and scr.query_one("#token", Input).value == ""
        assert "stored in the keyring: •••• (24 chars)" in str(scr.query_one("#status-0").content)
        assert "credentials" in app.done_steps


async def test_context_picker_lists_the_sandbox_contexts(demo_app, waits):
    app = demo_app("restricted-rbac")
    async with app.run_test(size=(100, 40)) as pilot:
        scr = await _creds(app, pilot, waits)
        sel = scr.query_one("#context", Select)
        values = [v for _label, v in sel._options if isinstance(v, str)]
        assert values == ["keybuzz-sandbox", "keybuzz-sandbox-keybuzz-viewer"]
        assert sel.value == "keybuzz-sandbox"
        sel.value = "keybuzz-sandbox-keybuzz-viewer"
        await pilot.pause()
        await waits.settle(app, pilot)
        assert app.endpoints.context == "keybuzz-sandbox-keybuzz-viewer"
        assert app.config.cluster.context == "keybuzz-sandbox-keybuzz-viewer"
        await waits.until(pilot, lambda: app.detected is not None, 10, "detection again")


async def test_no_keyring_is_explained_and_nothing_is_saved(tmp_path, waits):
    # real mode against a sandbox's endpoints, with python keyring's "no backend" answer
    sb = sandboxes.start(tmp_path / "sb", "healthy")
    try:
        endpoints = Endpoints.from_sandbox(sb.state_dir)
        app = KeybuzzApp(None, tmp_path / "real.yaml", credential_backend=fail.Keyring(), credential_env={}, endpoints=endpoints)
        async with app.run_test(size=(100, 50)) as pilot:
            await waits.ready(app, pilot)
            app.goto("credentials")
            await pilot.pause()
            await waits.settle(app, pilot)
            assert app.keyring_error
            text = str(app.screen.query_one("#keyring-text").content)
            assert "No usable OS keyring" in text and "KEYBUZZ_SECRET_" in text and "HCLOUD_TOKEN" in text
            assert "gnome-keyring" in text  # how to get one
            assert app.screen.query_one("#keyring-text").has_class("error-box")
            app.screen.query_one("#token", Input).value = "hc_x" * 10
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen.stored_names == []
    finally:
        sb.stop()


@pytest.mark.keyring
async def test_real_keyring_gets_the_secrets_only_on_save(tmp_path, demo_app, waits):
    try:
        backend = keyring.get_keyring()
        CredentialStore("probe", backend=backend, env={}).verify()
    except Exception as e:  # noqa: BLE001 - the reason is the skip message
        unavailable(f"no real OS keyring here: {e}")
    profile = "tui-test-" + uuid.uuid4().hex[:8]
    sb = sandboxes.start(tmp_path / "sb", "healthy")
    demo_token = sb.hcloud_token
    if True:
        endpoints = Endpoints.from_sandbox(sb.state_dir)
        endpoints.hcloud_token_env = None
        from keybuzz_tui.config import Config

        cfg = Config(profile=profile)
        app = KeybuzzApp(cfg, tmp_path / "real.yaml", credential_env={}, endpoints=endpoints)
        store = CredentialStore(profile, env={})
        try:
            async with app.run_test(size=(100, 50)) as pilot:
                await waits.ready(app, pilot)
                app.goto("credentials")
                await pilot.pause()
                await waits.settle(app, pilot)
                scr = app.screen
                scr.query_one("#token", Input).value = demo_token
                scr.query_one("#secret-0", Input).value = "postgres://u:p@db:5432/real"
                await pilot.pause(0.8)
                await waits.settle(app, pilot)
                assert store.get("hcloud-token") is None and store.get("app/keybuzz-api/DATABASE_URL") is None
                await pilot.click("#save")
                await waits.settle(app, pilot)
                await waits.until(pilot, lambda: scr.stored_names, 10, "the save")
                assert store.get("hcloud-token") == demo_token
                assert store.get("app/keybuzz-api/DATABASE_URL") == "postgres://u:p@db:5432/real"
                assert len(store.get("app/keybuzz-api/JWT_SECRET") or "") == 64
        finally:
            for name in CredentialStore.names(cfg):
                try:
                    store.delete(name)
                except Exception:
                    pass
            sb.stop()


def test_reveal_buttons_exist_per_field():
    # one Reveal per secret field plus the token: the operator must press it, per field
    from keybuzz_tui.screens.credentials import fields_for

    from keybuzz_tui.config import Config

    fields = fields_for(Config())
    assert [f.name for f in fields] == ["app/keybuzz-api/DATABASE_URL", "app/keybuzz-api/JWT_SECRET", "app/keybuzz-api/API_ENCRYPTION_KEY", "app/keybuzz-front/SESSION_SECRET"]
    assert Button  # imported for the UI tests above


def test_the_context_picker_reads_kubeconfigs_list(tmp_path):
    """The picker offers every context of KUBECONFIG's files, merged as kubectl merges them (the
    first file that sets current-context wins); unreadable files leave it empty, not broken."""
    import os

    import yaml
    from keybuzz_tui.screens.credentials import read_contexts

    def kubeconfig(name: str, ctx: str, current: str | None) -> str:
        doc = {"apiVersion": "v1", "kind": "Config",
               "clusters": [{"name": f"c-{ctx}", "cluster": {"server": "https://127.0.0.1:1"}}],
               "users": [{"name": f"u-{ctx}", "user": {"token": "t"}}],
               "contexts": [{"name": ctx, "context": {"cluster": f"c-{ctx}", "user": f"u-{ctx}"}}]}
        if current:
            doc["current-context"] = current
        (tmp_path / name).write_text(yaml.safe_dump(doc))
        return str(tmp_path / name)

    a, b = kubeconfig("a", "one", None), kubeconfig("b", "two", "two")
    assert read_contexts(os.pathsep.join([str(tmp_path / "missing"), a, b])) == (["one", "two"], "two")
    assert read_contexts(a) == (["one"], "")
    assert read_contexts(str(tmp_path / "missing")) == ([], "")
    (tmp_path / "bad").write_text("contexts: [unclosed")
    assert read_contexts(str(tmp_path / "bad")) == ([], "")
