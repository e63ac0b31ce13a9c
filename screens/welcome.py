"""Step 1, Welcome: what the tool will do, where it is pointed, and whether KeyBuzz is already
there (then the way in is re-validate / repair, not install). In demo mode, the scenario picker.

The screen paints with "connecting…" and nothing slow: the app connects (and imports the
kubernetes client, hcloud and the sandbox) in a worker after this first paint, then fills in the
detection when `Platform.detect()` returns.
"""

from __future__ import annotations

from typing import Any, ClassVar

from keybuzz_tui.screens.widgets import StatusBadge, StepScreen, tone
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

WHAT_IT_DOES = (
    "1. Store the Hetzner token and the apps' secrets in the OS keyring.",
    "2. Check every port the install needs; name whoever holds one.",
    "3. Run API (8080) and Front (3000) as hostNetwork DaemonSets per worker.",
    "4. Create the Hetzner LB (80/443 → NodePort 31695) and DNS records.",
    "5. Validate DNS → LB → NodePort → ingress → pod on every worker.",
)

# demo mode: the secrets go to the sandbox's own keyring, never the OS keyring (issue 5)
DEMO_STORE_LINE = "1. Store the Hetzner token and app secrets in the sandbox's own keyring."
DEMO_KEYRING = "demo: the sandbox's own, in memory (not your OS keyring)"

HETZNER_STATUS = {"valid": "ok", "read-only": "warn", "wrong": "fail", "no token": "pending", "unreachable": "warn", "error": "fail"}


class WelcomeScreen(StepScreen):
    STEP = "welcome"
    CSS_PATH = "welcome.tcss"
    HELP = """\
**Welcome** shows what keybuzz-tui will do and what it found.

- **This platform**: the kubeconfig context and API server in use, the Kubernetes version, how many
  workers there are, whether a Hetzner API token is known (and what it may do), and whether KeyBuzz
  is already installed in the namespace.
- **Install** walks through every step: credentials, ports, review, rollout, load balancer, DNS,
  validation. Nothing changes before the Review step's *Apply*.
- **Re-validate / repair** (offered when KeyBuzz is already installed) goes straight to the
  validation board, which shows the first broken hop on each worker.
- **Doctor** (offered when KeyBuzz is installed and a quick validation finds failing checks; also
  *ctrl+p* → Doctor): finds why the platform is down, in plain words, and offers the repair.
- **Demo** (`keybuzz-tui --demo`): pick a scenario and press Enter; the sandbox world restarts with
  it. Each scenario is a failure production has seen (blocked overlay, taken port...). In demo
  mode the credentials you save go to a keyring inside the sandbox (in memory, gone on exit),
  never to your OS keyring.

While "connecting…" shows, the app loads the Kubernetes client and asks the API server; the rest of
the wizard works once it answers. Use *ctrl+b* / *ctrl+n* to move between steps, *ctrl+p* for the
command palette (go to a step, theme, report, journal), *ctrl+q* to leave.

Keys: *i* install, *v* re-validate / repair (when installed), *d* detect again, *s* the demo's
scenario picker, *tab* moves between the buttons and the picker.
"""
    BINDINGS: ClassVar[list[Any]] = [
        Binding("i", "install", "Install", id="welcome.install", tooltip="Start the guided install (Credentials next)"),
        Binding("v", "revalidate", "Re-validate", id="welcome.revalidate", tooltip="Go to the validation board to re-validate / repair an existing install"),
        Binding("d", "detect", "Detect", id="welcome.detect", tooltip="Ask the cluster and Hetzner again"),
        Binding("s", "scenarios", "Scenarios", id="welcome.scenarios", tooltip="Demo: focus the scenario picker"),
    ]

    def compose_body(self) -> ComposeResult:
        # The first frame is what the tool will do and "connecting…": cheap to lay out. The
        # buttons and the demo's scenario picker are mounted right after it is on screen.
        with VerticalScroll(id="welcome-body"):
            with Vertical(id="welcome-left"):
                lines = (DEMO_STORE_LINE, *WHAT_IT_DOES[1:]) if self.kb.demo else WHAT_IT_DOES
                intro = Static("\n".join(lines), id="intro", classes="panel")
                intro.border_title = "What keybuzz-tui will do"
                yield intro
                with Vertical(id="detected", classes="panel") as det:
                    det.border_title = "This platform"
                    yield Static(self._connecting_text(), id="detect-text")
                    with Horizontal(classes="buttons", id="welcome-buttons"):
                        yield StatusBadge("pending", "connecting…", id="world-badge")

    def on_mount(self) -> None:
        self.watch(self.app, "world", self._world_changed, init=True)
        self.call_after_refresh(self._mount_rest)

    async def _mount_rest(self) -> None:
        """After the first frame: the buttons, and in demo mode the scenario picker."""
        row = self.query_one("#welcome-buttons", Horizontal)
        if not row.is_attached or getattr(self.app, "_exit", False):
            return  # the app is already leaving
        await row.mount(
            Button("Install", id="install", variant="primary"),
            Button("Re-validate / repair", id="revalidate", classes="hidden"),
            before="#world-badge",
        )
        # issue 6: the Doctor, offered when KeyBuzz is installed and a quick validation fails
        from keybuzz_tui.screens.doctor import DoctorOffer

        await self.query_one("#detected", Vertical).mount(DoctorOffer(), after=row)
        if self.kb.demo:
            sc = Vertical(
                OptionList(id="scenario-list"),
                Static("", id="scenario-desc"),
                id="scenarios",
                classes="panel",
            )
            sc.border_title = "Demo scenario (Enter restarts the world)"
            await self.query_one("#welcome-body", VerticalScroll).mount(sc)
            self._fill_scenarios()
        self.query_one("#install", Button).focus()
        self.watch(self.app, "detected", self._detected_changed, init=True)

    # --- demo scenarios ----------------------------------------------------------------------

    def _fill_scenarios(self) -> None:
        from keybuzz_tui.sandbox import scenarios

        ol = self.query_one("#scenario-list", OptionList)
        ol.clear_options()
        current = self.kb.scenario
        names = scenarios.available()
        for name in names:
            mark = "●" if name == current else " "
            ol.add_option(Option(Text(f"{mark} {name}"), id=name))
        if current in names:
            ol.highlighted = names.index(current)
        self._describe(current)

    def _describe(self, name: str | None) -> None:
        if not name:
            return
        from keybuzz_tui.sandbox import scenarios

        try:
            desc = scenarios.load(name).description
        except Exception as e:  # a broken scenario file is shown, not raised
            desc = f"cannot read this scenario: {e}"
        self.query_one("#scenario-desc", Static).update(Text(" ".join(desc.split())))

    @on(OptionList.OptionHighlighted, "#scenario-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._describe(event.option.id)

    @on(OptionList.OptionSelected, "#scenario-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id or ""
        if name == self.kb.scenario and self.kb.world != "error":
            self.notify(f"Scenario {name} is already running.", title="Demo")
            return
        self.notify(f"Restarting the sandbox world with scenario {name}…", title="Demo", markup=False)
        self.kb.switch_scenario(name)
        self._fill_scenarios()

    # --- detection ---------------------------------------------------------------------------

    def _connecting_text(self) -> Text:
        kb = self.kb
        if kb.demo:
            what = f"starting the sandbox world (scenario {kb.scenario}), then asking its API"
        else:
            ctx = kb.kube_context or kb.config.cluster.context or "the current kubeconfig context"
            what = f"loading the Kubernetes client and asking {ctx}"
        return Text(f"connecting… {what}", style="italic")

    def _world_changed(self, world: str) -> None:
        badge = self.query_one("#world-badge", StatusBadge)
        if world == "error":
            badge.set_status("fail", "cannot start")
            self.query_one("#detect-text", Static).update(Text(self.kb.world_error or "cannot start", style="bold"))
        elif world == "connecting":
            badge.set_status("pending", "connecting…")
            self.query_one("#detect-text", Static).update(self._connecting_text())

    def _detected_changed(self, d: Any) -> None:
        if d is None:
            if self.kb.world != "error":
                self._world_changed(self.kb.world)
            self.query_one("#revalidate", Button).add_class("hidden")
            return
        self.query_one("#detect-text", Static).update(self.render_detected(d))
        badge = self.query_one("#world-badge", StatusBadge)
        if d.error:
            badge.set_status("fail", "cluster unreachable")
        elif d.installed:
            badge.set_status("ok", "KeyBuzz is installed")
        else:
            badge.set_status("info", "ready to install")
        reval = self.query_one("#revalidate", Button)
        reval.set_class(not d.installed, "hidden")
        install = self.query_one("#install", Button)
        install.label = "Install anyway" if d.installed else "Install"
        install.variant = "default" if d.installed else "primary"
        reval.variant = "primary" if d.installed else "default"
        if d.installed and self.is_current:
            reval.focus()

    def render_detected(self, d: Any) -> Table:
        rows: list[tuple[str, str, str]] = []
        rows.append(("Context", d.context or "?", ""))
        if d.error:
            rows.append(("Kubernetes", d.error, "fail"))
            rows.append(("Fix", "pick another context (Credentials step, or --context NAME); check the API address and your VPN.", ""))
        else:
            rows.append(("Server", d.server, ""))
            workers = f"{d.nodes} nodes, {d.workers} workers" if d.nodes else "no nodes listed"
            rows.append(("Kubernetes", f"{d.version} · {workers}", ""))
        hz = d.hetzner or "unknown"
        hz_tone = HETZNER_STATUS.get(hz, "info")
        if hz == "no token":
            text = "no token yet: the Credentials step stores one in the keyring"  # which: the Keyring row (demo)
        else:
            text = f"{hz} — {d.hetzner_detail}" if d.hetzner_detail else hz
        rows.append(("Hetzner", text, hz_tone))
        if self.kb.demo:
            rows.append(("Keyring", DEMO_KEYRING, ""))
        if d.load_balancer:
            rows.append(("Load balancer", d.load_balancer, ""))
        if d.installed:
            topo = {"hostnetwork": "hostNetwork DaemonSets (the runbook's fix)", "classic": "Deployments behind ClusterIP (the topology that broke)"}.get(d.topology, d.topology)
            rows.append(("KeyBuzz", f"installed in {self.kb.config.namespace}: {topo}", "ok"))
        elif not d.error:
            rows.append(("KeyBuzz", f"not installed in namespace {self.kb.config.namespace}", ""))
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True, min_width=12)
        table.add_column(overflow="fold")
        for k, v, name in rows:
            table.add_row(k, Text(v, style=tone(self.app, name, bold=False) if name in ("ok", "warn", "fail") else ""))
        return table

    def repaint_theme(self) -> None:
        d = self.kb.detected
        if d is not None:
            self.query_one("#detect-text", Static).update(self.render_detected(d))

    # --- actions -----------------------------------------------------------------------------

    @on(Button.Pressed, "#install")
    def action_install(self) -> None:
        self.kb.mark_done("welcome")
        self.kb.goto("credentials")

    @on(Button.Pressed, "#revalidate")
    def action_revalidate(self) -> None:
        self.kb.mark_done("welcome")
        self.kb.goto("validation")

    def action_detect(self) -> None:
        self.kb.detected = None
        self.kb.refresh_detect()

    def action_scenarios(self) -> None:
        if self.kb.demo:
            for ol in self.query("#scenario-list").results(OptionList):
                ol.focus()
        else:
            self.notify("Scenarios exist in demo mode only (keybuzz-tui --demo).", title="Demo")
