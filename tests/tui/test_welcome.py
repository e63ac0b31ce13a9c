"""Welcome: what the tool does, what it detected, install vs re-validate, the demo's scenarios."""

from __future__ import annotations

import yaml
from textual.widgets import Button, OptionList

from keybuzz_tui.app import KeybuzzApp
from keybuzz_tui.credentials import SandboxKeyring
from keybuzz_tui.sandbox import scenarios


async def test_healthy_demo_shows_the_platform_and_offers_install(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await waits.ready(app, pilot)
        await waits.shows(app, pilot, "What keybuzz-tui will do", "keybuzz-sandbox", "v1.31.6+k3s1", "8 nodes, 5 workers", "no token yet",
                          "not installed in namespace keybuzz")
        assert app.screen.query_one("#revalidate", Button).has_class("hidden")
        assert app.screen.focused is app.screen.query_one("#install", Button)
        await pilot.press("i")
        await pilot.pause()
        assert app.current_step == "credentials" and "welcome" in app.done_steps


async def test_connecting_state_before_detection(tmp_path, waits):
    app = KeybuzzApp(None, tmp_path / "k.yaml", demo=True, connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await waits.shows(app, pilot, "connecting… starting the sandbox world (scenario healthy)")


async def test_installed_platform_offers_revalidate_and_repair(demo_app, waits):
    app = demo_app("outage")  # KeyBuzz installed the classic way, the day of the outage
    async with app.run_test(size=(100, 40)) as pilot:
        await waits.ready(app, pilot)
        assert app.detected.installed and app.detected.topology == "classic"
        reval = app.screen.query_one("#revalidate", Button)
        assert not reval.has_class("hidden") and reval.variant == "primary"
        await waits.shows(app, pilot, "Deployments behind ClusterIP")
        await pilot.click("#revalidate")
        await pilot.pause()
        assert app.current_step == "validation"


async def test_scenario_picker_lists_all_and_switching_restarts_the_world(demo_app, waits):
    app = demo_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await waits.ready(app, pilot)
        ol = app.screen.query_one("#scenario-list", OptionList)
        names = [ol.get_option_at_index(i).id for i in range(ol.option_count)]
        assert names == scenarios.available()
        desc = str(app.screen.query_one("#scenario-desc").content)
        assert "production cluster as the runbook found it" in desc
        first = app.sandbox
        ol.focus()
        ol.highlighted = names.index("nodeport-taken")
        await pilot.pause()
        await pilot.pause()
        assert "monitoring already holds NodePort 30080" in str(app.screen.query_one("#scenario-desc").content)
        await pilot.press("enter")
        await waits.until(pilot, lambda: app.sandbox is not None and app.sandbox is not first and app.detected is not None, 60, "the new world")
        assert app.scenario == "nodeport-taken" and app.sandbox.scenario.name == "nodeport-taken"
        assert first._thread is None  # the old world was stopped
        assert "nodeport-taken" in app.sub_title


async def test_unreachable_cluster_is_explained(tmp_path, waits):
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
    }))
    from keybuzz_tui.config import Config

    cfg = Config()
    cfg.cluster.kubeconfig = str(kc)
    cfg.cluster.request_timeout = 3
    app = KeybuzzApp(cfg, tmp_path / "keybuzz.yaml", credential_backend=SandboxKeyring(), credential_env={})
    async with app.run_test(size=(100, 40)) as pilot:
        await waits.ready(app, pilot)
        assert app.detected.error
        text = await waits.shows(app, pilot, "refused the connection", "pick another context", "cluster unreachable")
        # outside demo mode nothing speaks of the sandbox's keyring
        assert "sandbox" not in text and "in the OS keyring" in text


async def test_demo_welcome_says_credentials_go_to_the_sandboxs_own_keyring(demo_app, waits):
    """Before Credentials: the demo's secrets go to a keyring inside the sandbox, not the OS one,
    said at 80x24 in the plan and in what was detected."""
    app = demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.ready(app, pilot)
        text = await waits.shows(app, pilot, "1. Store the Hetzner token and app secrets in the sandbox's own keyring.",
                                 "Keyring      demo: the sandbox's own, in memory (not your OS keyring)")
        assert "OS keyring." not in text.split("This platform")[0]


async def test_the_wizard_reads_kubeconfigs_list_as_the_cli_does(tmp_path, waits, monkeypatch):
    """KUBECONFIG with several files (a missing one, then one that defines the context): the
    wizard merges them as kubectl and the CLI do, before keybuzz.yaml's default file."""
    import os

    from support import sandboxes

    from keybuzz_tui.config import Config

    sb = sandboxes.start(tmp_path / "sb", "healthy")
    try:
        monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing.yaml"), str(sb.kubeconfig_path)]))
        cfg = Config()
        cfg.cluster.kubeconfig = str(tmp_path / "not-this-one.yaml")
        app = KeybuzzApp(cfg, tmp_path / "keybuzz.yaml", credential_backend=SandboxKeyring(), credential_env={})
        async with app.run_test(size=(100, 40)) as pilot:
            await waits.ready(app, pilot)
            assert not app.detected.error, app.detected.error
            assert app.detected.server == sb.kube_url  # the second file's current context
            assert app.detected.context == "keybuzz-sandbox (current context)"
            await waits.shows(app, pilot, "keybuzz-sandbox (current context)")
    finally:
        sb.stop()
