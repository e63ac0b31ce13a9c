"""The Textual shell: the wizard's steps, navigation, help, the command palette, notifications,
and the world the engine talks to (a real cluster, or the sandbox in demo mode).

The first screen paints before anything slow happens: kubernetes, hcloud, keyring and the sandbox
(aiohttp) are imported in a thread worker started once Welcome has painted; Welcome shows
"connecting…" until `Platform.detect()` returns. Quitting while something is being applied asks
first: let it finish, or stop it at a safe point (the journal says what the next run resumes from).

This is the only module of keybuzz_tui/ that imports Textual (with keybuzz_tui.screens).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.worker import WorkerState

from . import assets as _assets
from .cancel import CancelToken
from .redact import REDACTOR, safe_error
from .screens.bridge import EngineBridge, EngineEvent, RunFinished
from .screens.widgets import STEP_IDS, STEPS, PlaceholderStepScreen, bindings_of, step_by_id

if TYPE_CHECKING:
    from .config import Config
    from .events import Event

# The app's stylesheet, next to keybuzz_tui.assets' __init__ (what importlib.resources.files()
# returns for this file-system package, in a wheel and in an editable install alike), without
# importing importlib.resources and zipfile before the first paint.
APP_CSS = str(Path(_assets.__file__).with_name("app.tcss"))

# Worker groups that change the platform: quitting while one runs asks first.
APPLY_GROUPS = frozenset({"apply", "rollout", "lb", "lb-apply", "dns", "dns-apply", "firewall-apply", "repair", "demo-switch"})
APPLYING_STEPS = frozenset({"rollout", "lb", "dns"})


# --- the demo's scenario switcher --------------------------------------------------------------
# One implementation for the wizard (palette, the board's `s`) and for the board alone (StepHost,
# BoardApp): the switch's words, the sandbox calls, and the notification that says what to expect.


class DemoSwitch(NamedTuple):
    """One way to break (or repair) the demo world: what it is called, what the operator should
    expect to see, and (for a breaking switch) the id of the switch that repairs it."""

    title: str
    explain: str
    restores: str = ""

    @property
    def breaking(self) -> bool:
        return bool(self.restores)


DEMO_PORT_NODE, DEMO_UFW_NODE, DEMO_STOP_NODE, DEMO_IMAGE_NODE = "k3s-worker-03", "k3s-worker-02", "k3s-worker-04", "k3s-worker-05"

DEMO_SWITCHES: dict[str, DemoSwitch] = {
    "overlay-block": DemoSwitch(
        "Overlay blocked",
        "Hetzner's network now drops Flannel's VXLAN (UDP 8472) between nodes: ClusterIP Services and "
        "CoreDNS time out across nodes, ingress answers 504 for a backend on another node. "
        "hostNetwork pods reached on node IPs keep answering.",
        "overlay-restore",
    ),
    "port-take": DemoSwitch(
        f"Port 8080 taken on {DEMO_PORT_NODE}",
        f"An old nginx now listens on 8080 on {DEMO_PORT_NODE} and the API pod there is restarted: it cannot "
        "bind its hostPort and goes to CrashLoopBackOff (\"Address already in use\"). The port probe finds it.",
        "port-free",
    ),
    # "stop a worker's ingress" (issue 5): what the outside sees of a worker whose ingress stopped,
    # made the way production saw it: a UFW rule on that worker drops the ingress NodePort
    "ufw-drop": DemoSwitch(
        f"Stop {DEMO_UFW_NODE}'s ingress (UFW drops NodePort 31695)",
        f"{DEMO_UFW_NODE}'s ingress no longer answers from outside: UFW there now drops the ingress NodePort "
        "31695. The Load Balancer's health check to it times out and the target turns unhealthy; the other "
        "workers keep serving.",
        "ufw-allow",
    ),
    "images-fail": DemoSwitch(
        f"Image pulls fail (keybuzz-front on {DEMO_IMAGE_NODE} restarted)",
        f"The registry no longer has ghcr.io/keybuzz/*, and the keybuzz-front pod on {DEMO_IMAGE_NODE} is "
        "restarted: it goes ErrImagePull, then ImagePullBackOff.",
        "images-restore",
    ),
    "worker-stop": DemoSwitch(
        f"{DEMO_STOP_NODE} stopped (kubelet NotReady)",
        f"{DEMO_STOP_NODE}'s kubelet stopped posting status: the node turns NotReady and its pods stop being Ready.",
        "worker-start",
    ),
    "overlay-restore": DemoSwitch("Overlay restored", "VXLAN traffic between nodes flows again."),
    "port-free": DemoSwitch(f"Port 8080 freed on {DEMO_PORT_NODE}", f"The stray nginx on {DEMO_PORT_NODE} is gone; the API pod binds 8080 at its next restart."),
    "ufw-allow": DemoSwitch(f"Start {DEMO_UFW_NODE}'s ingress again (UFW allows 31695)", f"The ingress NodePort answers on {DEMO_UFW_NODE} again (ufw allow 31695/tcp)."),
    "images-restore": DemoSwitch("Image pulls work", "The registry serves the KeyBuzz images again; pods in ImagePullBackOff pull them at their next retry."),
    "worker-start": DemoSwitch(f"{DEMO_STOP_NODE} started", f"{DEMO_STOP_NODE}'s kubelet posts status again; the node returns to Ready."),
}


def apply_demo_switch(sb: Any, action: str, config: Config | None = None) -> DemoSwitch:
    """Runs in a thread: the sandbox calls that break (or repair) the world. A switch whose effect
    only shows when a pod starts (a taken port, a missing image) restarts that pod, so the board
    turns red now, not at the next restart."""
    switch = DEMO_SWITCHES.get(action)
    if switch is None:
        raise ValueError(f"unknown demo switch {action!r}; known: {', '.join(DEMO_SWITCHES)}")
    if config is None:
        from .config import Config

        config = Config()
    cfg = config
    dp = sb.dataplane
    if action in ("overlay-block", "overlay-restore"):
        sb.call(dp.set_overlay, action == "overlay-restore")
    elif action == "port-take":
        sb.call(dp.add_host_process, DEMO_PORT_NODE, 8080, "nginx: master process /usr/sbin/nginx -g daemon off;")
        _restart_pod(sb, "keybuzz-api", DEMO_PORT_NODE, cfg.namespace)
    elif action == "port-free":
        sb.call(dp.remove_host_process, DEMO_PORT_NODE, 8080)
    elif action in ("ufw-drop", "ufw-allow"):
        sb.call(dp.set_firewall, DEMO_UFW_NODE, cfg.ingress.http_node_port, action == "ufw-drop")
    elif action == "images-fail":
        sb.call(sb.cluster.kubelet.set_missing_images, ["ghcr.io/keybuzz/*"])
        _restart_pod(sb, "keybuzz-front", DEMO_IMAGE_NODE, cfg.namespace)
    elif action == "images-restore":
        sb.call(sb.cluster.kubelet.set_missing_images, [])
    elif action in ("worker-stop", "worker-start"):
        sb.call(sb.cluster.manager.controllers["node-lifecycle"].set_ready, DEMO_STOP_NODE, action == "worker-start")
    return switch


def demo_active_breaks(sb: Any, config: Config | None = None) -> frozenset[str]:
    """Blocking (a thread): the breaking switches whose break is in the sandbox world now, read
    from the world itself (so a scenario that starts broken, e.g. vxlan-blocked or
    lb-target-unhealthy, shows its break as active too)."""
    if config is None:
        from .config import Config

        config = Config()
    port = config.ingress.http_node_port

    def read() -> frozenset[str]:
        dp, cluster = sb.dataplane, sb.cluster
        out: set[str] = set()
        if not dp.overlay_ok:
            out.add("overlay-block")
        held = dp.ports.get(DEMO_PORT_NODE, 8080)
        if held is not None and held.holder.owner.startswith("host process"):
            out.add("port-take")
        if port in dp.denied.get(DEMO_UFW_NODE, set()):
            out.add("ufw-drop")
        if list(cluster.kubelet.missing_images):
            out.add("images-fail")
        if DEMO_STOP_NODE in cluster.manager.controllers["node-lifecycle"].not_ready:
            out.add("worker-stop")
        return frozenset(out)

    return sb.call(read)  # type: ignore[no-any-return]


def demo_switch_entries(active: Iterable[str] | None) -> list[tuple[str, str, str]]:
    """The switcher's entries, one per break, marked: (switch id, label, what it does). An
    active break is offered as its repair ("● active · …"), an inactive one as the break; the
    palette and the board's switcher show the same list."""
    on = frozenset(active or ())
    out: list[tuple[str, str, str]] = []
    for action, switch in DEMO_SWITCHES.items():
        if not switch.breaking:
            continue
        if action in on:
            repair = DEMO_SWITCHES[switch.restores]
            out.append((switch.restores, f"● active: {switch.title} · choose to repair ({repair.title})", repair.explain))
        else:
            out.append((action, f"○ {switch.title}", switch.explain))
    return out


def _keybuzz_topology(sb: Any, config: Config) -> str:
    """Blocking: hostnetwork (our DaemonSets), classic (our Deployments) or "" (not installed)."""
    from kubernetes import client

    names = {a.name for a in config.apps}
    api = client.AppsV1Api(sb.kube_client())
    try:
        ds = api.list_namespaced_daemon_set(config.namespace, _request_timeout=10).items
        if any(d.metadata.name in names for d in ds):
            return "hostnetwork"
        deps = api.list_namespaced_deployment(config.namespace, _request_timeout=10).items
        return "classic" if any(d.metadata.name in names for d in deps) else ""
    finally:
        api.api_client.close()


def overlay_blocked_on_hostnetwork(doctor_link: bool) -> str:
    """The notification for "block the overlay" while the apps run in the hostNetwork topology:
    the board staying green is the point, and the Doctor is where the overlay's verdict is."""
    from textual.markup import escape

    text = escape(
        "Overlay blocked (UDP 8472 dropped between nodes). The board stays green on purpose: KeyBuzz runs in the "
        "hostNetwork topology, which does not use the overlay (the LB and ingress reach the apps on the nodes' own IPs). "
        "The Doctor tests the overlay itself with probe pods and shows its verdict: press d on the board, or ctrl+p → Doctor."
    )
    return text + ("\n[@click=app.doctor]▶ Open the Doctor[/]" if doctor_link else "")


def _restart_pod(sb: Any, app: str, node: str, namespace: str) -> None:
    """Delete the app's pod on `node` (its DaemonSet recreates it, which pulls the image and binds
    the port again). Nothing to do when KeyBuzz is not installed yet."""
    from kubernetes import client

    api = client.CoreV1Api(sb.kube_client())
    try:
        pods = api.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}", _request_timeout=10).items
        for p in pods:
            if (p.metadata.name or "").startswith(app + "-"):
                api.delete_namespaced_pod(p.metadata.name, namespace, grace_period_seconds=0, _request_timeout=10)
    finally:
        api.api_client.close()


def run_demo_switch(app: App[Any], sb: Any, action: str, config: Config | None = None) -> bool:
    """Blocking (a thread worker's body): apply the switch, then notify what the operator should
    expect (a warning for a breaking switch), and tell the app which breaks are active now
    (`app.demo_active`). Used by the wizard and by the board alone."""
    switch = DEMO_SWITCHES.get(action)
    title = switch.title if switch is not None else action
    try:
        apply_demo_switch(sb, action, config)
    except Exception as e:
        app.notify(f"{title}: failed: {safe_error(e)}", title="Demo", severity="error", markup=False)
        return False
    assert switch is not None
    cfg = config if config is not None else getattr(app, "config", None)
    topology = ""
    if action == "overlay-block" and cfg is not None:
        with contextlib.suppress(Exception):
            topology = _keybuzz_topology(sb, cfg)
    if topology == "hostnetwork":
        link = callable(getattr(app, "action_doctor", None))
        app.notify(overlay_blocked_on_hostnetwork(link), title=f"Demo: {title}", severity="warning", timeout=20, markup=True)
    else:
        app.notify(switch.explain, title=f"Demo: {title}", severity="warning" if switch.breaking else "information", timeout=10, markup=False)
    refresh_demo_active(app, sb, cfg)
    return True


def refresh_demo_active(app: App[Any], sb: Any, config: Config | None = None) -> None:
    """Blocking (a thread): read which breaks are active and hand them to the app's UI thread."""
    try:
        active = demo_active_breaks(sb, config)
    except Exception:
        return
    with contextlib.suppress(Exception):
        app.call_from_thread(setattr, app, "demo_active", active)


# --- messages from the world worker ------------------------------------------------------------


class WorldReady(Message):
    """The engine's endpoints and the credential store are ready (detection follows)."""

    def __init__(self, generation: int, endpoints: Any, secrets: Any, sandbox: Any, demo_token: str, keyring_error: str, keyring_description: str) -> None:
        super().__init__()
        self.generation = generation
        self.endpoints = endpoints
        self.secrets = secrets
        self.sandbox = sandbox
        self.demo_token = demo_token
        self.keyring_error = keyring_error
        self.keyring_description = keyring_description


class WorldFailed(Message):
    def __init__(self, generation: int, error: str) -> None:
        super().__init__()
        self.generation = generation
        self.error = error


class DetectDone(Message):
    def __init__(self, generation: int, detected: Any) -> None:
        super().__init__()
        self.generation = generation
        self.detected = detected


# --- the app -----------------------------------------------------------------------------------


class KeybuzzApp(App[int]):
    """The wizard. `config_path` is where the answers are saved when leaving."""

    TITLE = "KeyBuzz installer"
    CSS_PATH: ClassVar[Any] = [APP_CSS]
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[Any]] = [
        Binding("f1", "help", "Help", id="app.help", tooltip="Help for this screen: what it does and its keys"),
        Binding("ctrl+n", "next_step", "Next", id="app.next", tooltip="Go to the next step"),
        Binding("ctrl+b", "prev_step", "Back", id="app.back", tooltip="Go back to the previous step"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Leave (asks first while something is being applied); answers are saved"),
    ]

    done_steps: var[frozenset[str]] = var(frozenset())
    """Steps the operator completed (ticks in the step indicator)."""
    world: var[str] = var("connecting")
    """connecting | ready | error: whether the engine can talk to the platform yet."""
    detected: var[Any] = var(None)
    """keybuzz_tui.engine.platform.Detected once detection returned."""
    current_step: var[str] = var("welcome")
    demo_active: var[frozenset[str]] = var(frozenset())
    """Demo: the breaking switches whose break is in the sandbox world now (read from it)."""

    def __init__(
        self,
        config: Config | None = None,
        config_path: str | os.PathLike[str] | None = None,
        *,
        context: str | None = None,
        demo: bool = False,
        scenario: str = "healthy",
        board_only: bool = False,
        speed: float = 2.0,
        credential_backend: Any = None,
        sandbox_factory: Callable[[str], Any] | None = None,
        credential_env: Any = None,
        endpoints: Any = None,
        connect: bool = True,
    ) -> None:
        super().__init__()
        self._config: Config | None = config  # built on first use: the first paint does not need it
        self.config_path = Path(config_path).expanduser() if config_path else None
        self.kube_context = context
        if context:
            self.config.cluster.context = context
        self.demo = demo
        self.scenario = scenario
        self.board_only = board_only
        self.speed = speed
        self._credential_backend = credential_backend
        self._sandbox_factory = sandbox_factory
        self._credential_env = credential_env
        self._given_endpoints = endpoints
        self._connect_on_paint = connect
        self.bridge = EngineBridge(self)
        self.endpoints: Any = None
        self.secrets: Any = None  # the CredentialStore, once the world worker built it
        self.sandbox: Any = None
        self.demo_token = ""
        self.keyring_error = ""
        self.keyring_description = ""
        self.world_error = ""
        self._generation = 0
        self._step_screens: dict[str, Screen[Any]] = {}
        self._adopted: list[tuple[CancelToken, Any]] = []
        self._quit_when_idle = False
        self._leaving = False
        self.save_error = ""
        self.first_paint_at: float | None = None
        self.first_paint_modules: frozenset[str] | None = None
        self.started_at = time.perf_counter()
        # what the steps learned, shared between screens
        self.port_inventory: Any = None
        self.port_checks: list[Any] = []
        self.full_plan: Any = None
        self.last_report: Any = None
        self.sub_title = f"demo · scenario {scenario}" if demo else (f"context {context}" if context else "")

    @property
    def config(self) -> Config:
        """The answers (keybuzz.yaml). The defaults are built on first use: importing the config
        model (and PyYAML) waits until after the first paint."""
        if self._config is None:
            from .config import Config

            self._config = Config()
        return self._config

    @config.setter
    def config(self, value: Config) -> None:
        self._config = value

    # --- start ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.goto("validation" if self.board_only else "welcome")

    def first_painted(self) -> None:
        """Called by the first step screen after its first refresh: only now start the slow work."""
        if self.first_paint_at is not None:
            return
        self.first_paint_at = time.perf_counter()
        self.first_paint_modules = frozenset(sys.modules)
        if self._connect_on_paint:
            _ = self.config  # built here, on the UI thread, before a worker reads it
            self.connect_world()

    def connect_world(self, scenario: str | None = None) -> None:
        """(Re)connect: start the sandbox world in demo mode, build endpoints and the credential
        store, then detect. A scenario switch restarts the sandbox world with `scenario`."""
        if scenario is not None:
            self.scenario = scenario
            self.sub_title = f"demo · scenario {scenario}"
        self._generation += 1
        self.world = "connecting"
        self.detected = None
        self.demo_active = frozenset()
        self.world_error = ""
        self._reset_learned()
        self._connect(self._generation, self.scenario)

    @work(thread=True, exclusive=True, exit_on_error=False, group="world", description="connect to the platform")
    def _connect(self, generation: int, scenario: str) -> None:
        try:
            from .engine.context import Endpoints

            old, sandbox, demo_token = self.sandbox, None, ""
            if self.demo:
                if old is not None:
                    self.sandbox = None
                    old.stop()
                sandbox = self._start_sandbox(scenario)
                endpoints = Endpoints.from_sandbox(sandbox.state_dir)
                demo_token = endpoints.hcloud_token_env or ""
                REDACTOR.add(demo_token)
                if not self.board_only:
                    # the wizard walks the operator through storing the token, as a real install
                    # would; the board alone (`validate --board --demo`) has no Credentials step
                    # and reads the Load Balancer with the sandbox's token directly
                    endpoints.hcloud_token_env = None
            elif self._given_endpoints is not None:
                endpoints = self._given_endpoints
            else:
                from keybuzz_tui.engine.context import kubeconfig_path

                endpoints = Endpoints(
                    kubeconfig=kubeconfig_path(self.config),  # KUBECONFIG's list first, as the CLI
                    context=self.kube_context or self.config.cluster.context or None,
                    hcloud_endpoint=os.environ.get("HCLOUD_ENDPOINT") or None,
                    hcloud_token_env=os.environ.get("HCLOUD_TOKEN") or None,
                )
            secrets, kr_error, kr_desc = self._make_store(sandbox)
            self.post_message(WorldReady(generation, endpoints, secrets, sandbox, demo_token, kr_error, kr_desc))
        except Exception as e:
            self.post_message(WorldFailed(generation, safe_error(e)))

    def _start_sandbox(self, scenario: str) -> Any:
        if self._sandbox_factory is not None:
            return self._sandbox_factory(scenario)
        from .sandbox.runtime import Sandbox, free_net

        # state_dir=None: the sandbox makes (and removes on stop) its own temporary directory
        return Sandbox(None, scenario, net=free_net(), speed=self.speed).start()

    def _make_store(self, sandbox: Any) -> tuple[Any, str, str]:
        """(secret source, keyring problem, backend description). The store is built in this
        worker because importing keyring and asking D-Bus for a Secret Service takes time."""
        from . import credentials as cr

        if sandbox is not None:
            # demo: an in-memory keyring inside the sandbox world, empty until the operator saves;
            # the operator's own HCLOUD_TOKEN / KEYBUZZ_SECRET_* never leak into the demo
            backend = self._credential_backend if self._credential_backend is not None else cr.SandboxKeyring()
            store = cr.CredentialStore(self.config.profile, backend=backend, env={}, allow_env=False)
            return store, "", "demo: secrets go to a keyring that lives inside the sandbox, in memory"
        from .journal import Journal
        from .paths import journal_path

        # credential changes made in the wizard are journaled like the CLI's (never a value)
        kw: dict[str, Any] = {"journal": Journal(journal_path(self.config.profile))}
        if self._credential_backend is not None:
            kw["backend"] = self._credential_backend
        if self._credential_env is not None:
            kw["env"] = self._credential_env
        store = cr.CredentialStore(self.config.profile, **kw)
        try:
            store.verify()
        except cr.KeyringUnavailable as e:
            return store, str(e), store.backend_description()
        return store, "", store.backend_description()

    @on(WorldReady)
    def _world_ready(self, msg: WorldReady) -> None:
        if msg.generation != self._generation:
            if msg.sandbox is not None and msg.sandbox is not self.sandbox:
                msg.sandbox.stop()
            return
        self.endpoints = msg.endpoints
        self.secrets = msg.secrets
        self.sandbox = msg.sandbox
        self.demo_token = msg.demo_token
        self.keyring_error = msg.keyring_error
        self.keyring_description = msg.keyring_description
        self.world = "ready"
        self.refresh_detect()
        if self.sandbox is not None:
            self._read_demo_active(self.sandbox)

    @work(thread=True, exit_on_error=False, group="demo-state", description="read the demo world's breaks")
    def _read_demo_active(self, sb: Any) -> None:
        refresh_demo_active(self, sb, self.config)

    @on(WorldFailed)
    def _world_failed(self, msg: WorldFailed) -> None:
        if msg.generation != self._generation:
            return
        self.world_error = msg.error
        self.world = "error"
        self.notify(msg.error, title="Cannot start", severity="error", timeout=10)

    def refresh_detect(self) -> None:
        """Detect again (after a credential or context change)."""
        if self.endpoints is not None:
            self._detect(self._generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="detect", description="detect the platform")
    def _detect(self, generation: int) -> None:
        try:
            with self.bridge.run(self, name="detect") as ctx:
                detected = self.bridge.platform(ctx).detect()
        except Exception as e:
            from .engine.platform import Detected

            detected = Detected(error=safe_error(e))
        self.post_message(DetectDone(generation, detected))

    @on(DetectDone)
    def _detect_done(self, msg: DetectDone) -> None:
        if msg.generation == self._generation:
            self.detected = msg.detected

    def set_kube_context(self, name: str) -> None:
        """The Credentials screen's context picker: later runs use `name`, and detection reruns."""
        self.kube_context = name or None
        self.config.cluster.context = name
        if self.endpoints is not None:
            self.endpoints.context = name or None
        if not self.demo:
            self.sub_title = f"context {name}" if name else ""
        self._reset_learned()
        self.detected = None
        self.refresh_detect()

    def _reset_learned(self) -> None:
        self.port_inventory, self.port_checks, self.full_plan = None, [], None
        self.done_steps = frozenset(s for s in self.done_steps if s == "welcome")
        # screens after Welcome are rebuilt for the new world
        for sid in list(self._step_screens):
            if sid in ("welcome",) or self._step_screens[sid] in self.screen_stack:
                continue
            scr = self._step_screens.pop(sid)
            self.uninstall_screen(scr)
            if scr.is_attached:
                scr.remove()

    # --- the engine for screens ------------------------------------------------------------------

    def new_platform(self, *, sink: Callable[[Event], None], cancel: CancelToken) -> Any:
        """For screens that bring their own sink and token (EngineStep): a Platform on this world."""
        from .engine.context import Context
        from .engine.platform import Platform
        from .journal import Journal

        if self.endpoints is None:
            raise RuntimeError("the platform is not connected yet")

        def both(event: Event) -> None:
            sink(event)

        self._adopted = [(t, s) for t, s in self._adopted if not t.cancelled]
        self._adopted.append((cancel, self.screen))
        ctx = Context(self.config, self.endpoints, self.secrets, sink=both, cancel=cancel, journal=Journal(self.journal_path))
        return Platform(ctx)

    @property
    def journal_path(self) -> Path:
        if self.sandbox is not None:
            return Path(self.sandbox.state_dir) / "journal.jsonl"
        from .paths import journal_path

        return journal_path(self.config.profile)

    def on_engine_event(self, msg: EngineEvent) -> None:
        """Every engine event bubbles here: warnings become notifications."""
        from .events import Warning_

        ev = msg.event
        if msg.run == "plan":
            return  # the Review step shows its plan's warnings in its own box
        if isinstance(ev, Warning_):
            text = ev.message + (f"\n→ {ev.remediation}" if ev.remediation else "")
            self.notify(text, title=ev.step or "warning", severity="warning", timeout=8, markup=False)

    @on(RunFinished)
    def _run_finished(self, msg: RunFinished) -> None:
        self._maybe_leave_when_idle()

    def on_worker_state_changed(self, event: Any) -> None:
        self._maybe_leave_when_idle()

    def _maybe_leave_when_idle(self) -> None:
        if self._quit_when_idle and not self.applying_work():
            self._quit_when_idle = False
            self.notify("The apply finished; leaving.", title="Quit")
            self.call_later(self._leave)

    # --- steps -----------------------------------------------------------------------------------

    def screen_class(self, step_id: str) -> type[Screen[Any]] | None:
        step = step_by_id(step_id)
        for stem in step.modules:
            try:
                mod = import_module(f"keybuzz_tui.screens.{stem}")
            except ModuleNotFoundError as e:
                if e.name and e.name.endswith(f"screens.{stem}"):
                    continue
                raise
            cls = getattr(mod, step.class_name, None)
            if isinstance(cls, type) and issubclass(cls, Screen):
                return cls
            for obj in vars(mod).values():
                if isinstance(obj, type) and issubclass(obj, Screen) and obj.__module__ == mod.__name__ and getattr(obj, "STEP", None) == step_id:
                    return obj
        return None

    def step_kwargs(self, step_id: str, cls: type[Screen[Any]]) -> dict[str, Any]:
        """What a step's screen gets at construction (only the arguments its __init__ accepts)."""
        offer: dict[str, Any] = {}
        if step_id == "rollout" and self.full_plan is not None:
            from .engine.plan import Plan

            offer["plan"] = Plan(changes=self.full_plan.plan.of("kubernetes"))
        try:
            params = inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            return {}
        return {k: v for k, v in offer.items() if k in params}

    def step_screen(self, step_id: str, *, fresh: bool = False) -> Screen[Any]:
        scr = self._step_screens.get(step_id)
        if scr is not None and fresh and scr not in self.screen_stack:
            self._step_screens.pop(step_id)
            self.uninstall_screen(scr)
            if scr.is_attached:
                scr.remove()
            scr = None
        if scr is None:
            cls = self.screen_class(step_id)
            scr = cls(**self.step_kwargs(step_id, cls)) if cls is not None else PlaceholderStepScreen(step_id)
            self._step_screens[step_id] = scr
            self.install_screen(scr, name=f"step-{step_id}")
        return scr

    def goto(self, step_id: str, *, fresh: bool = False) -> None:
        """Show a step. Step screens keep their state while the operator moves back and forth."""
        if step_id not in STEP_IDS:
            raise KeyError(step_id)
        scr = self.step_screen(step_id, fresh=fresh)
        self.current_step = step_id
        if self.screen is scr:
            return
        # close modals (help, palette) first, then replace the current step
        while isinstance(self.screen, ModalScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        top = self.screen
        if top in self._step_screens.values():
            self.switch_screen(scr)
        else:
            self.push_screen(scr)
        if self.first_paint_at is None:
            scr.call_after_refresh(self.first_painted)

    def mark_done(self, step_id: str, done: bool = True) -> None:
        self.done_steps = (self.done_steps | {step_id}) if done else (self.done_steps - {step_id})

    def _index(self) -> int:
        return STEP_IDS.index(self.current_step) if self.current_step in STEP_IDS else 0

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No ^b Back on the first step, no ^n Next on the last one: the footer shows only moves
        that go somewhere."""
        if action == "prev_step" and self.current_step == STEP_IDS[0]:
            return False
        if action == "next_step" and self.current_step == STEP_IDS[-1]:
            return False
        return True

    def watch_current_step(self, step: str) -> None:
        self.refresh_bindings()

    def action_next_step(self) -> None:
        i = self._index()
        if i + 1 < len(STEP_IDS):
            self.goto(STEP_IDS[i + 1])

    def action_prev_step(self) -> None:
        i = self._index()
        if i > 0:
            self.goto(STEP_IDS[i - 1])

    # the EngineStep contract of the rollout / LB / DNS / board screens
    def step_done(self, screen: Any, result: Any = None) -> None:
        sid = getattr(screen, "STEP", "") or self.current_step
        self.mark_done(sid)
        i = STEP_IDS.index(sid) if sid in STEP_IDS else self._index()
        if i + 1 < len(STEP_IDS):
            self.goto(STEP_IDS[i + 1])

    def step_back(self, screen: Any = None) -> None:
        self.action_prev_step()

    # --- help, palette, theme, report --------------------------------------------------------------

    def action_help(self) -> None:
        from .screens.modals import HelpScreen

        scr = self.screen
        if isinstance(scr, HelpScreen):
            return
        title = step_by_id(self.current_step).title if scr in self._step_screens.values() else (getattr(scr, "HELP_TITLE", None) or scr.name or type(scr).__name__)
        help_text = getattr(scr, "HELP", None) or "No help for this screen yet."
        self.push_screen(HelpScreen(title, help_text, bindings_of(scr)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for step in STEPS:
            yield SystemCommand(f"Go to step: {step.title}", f"Show the {step.title} step", lambda s=step.id: self.goto(s))
        # --- issue 6: the Doctor and Recovery screens (keybuzz_tui/screens/doctor.py, recovery.py) ---
        yield SystemCommand("Doctor", "Find why the platform is down: named checks, the diagnosis, the repair", self.action_doctor)
        yield SystemCommand("Recovery", "Drift from keybuzz.yaml, repair, resume an interrupted run, rollback", self.action_recovery)
        # --- end issue 6 ---
        yield SystemCommand("Toggle light/dark theme", "Switch between the light and dark themes", self.action_toggle_theme)
        yield SystemCommand("Export report", "Write what this session found (Markdown and JSON, no secrets)", self.action_export_report)
        yield SystemCommand("Show journal path", "Where every applied change is recorded", self.action_show_journal)
        yield SystemCommand("Save answers", "Write the answers to keybuzz.yaml now (never secrets)", self.action_save_answers)
        if self.demo:
            # one entry per break, marked: ○ not active (choose: break it), ● active (choose: repair it)
            for action, label, explain in demo_switch_entries(self.demo_active):
                breaking = DEMO_SWITCHES[action].breaking
                help_text = f"Break the sandbox world on purpose: {explain}" if breaking else f"Active now; repair it: {explain}"
                yield SystemCommand(f"Demo: {label}", help_text, lambda a=action: self.demo_switch(a))
        yield from super().get_system_commands(screen)

    # --- issue 6: the Doctor and Recovery screens ---
    def action_doctor(self) -> None:
        from .screens.doctor import open_doctor

        open_doctor(self)

    def action_recovery(self) -> None:
        from .screens.recovery import open_recovery

        open_recovery(self)

    # --- end issue 6 ---

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_show_journal(self) -> None:
        path = self.journal_path
        note = "" if path.exists() else " (nothing applied yet)"
        if self.sandbox is not None:
            note += " — demo: discarded with the sandbox on exit"
        self.notify(f"{path}{note}", title="Journal", markup=False, timeout=10)

    def action_save_answers(self) -> None:
        path = self.save_answers()
        if path is not None:
            self.notify(f"Answers saved to {path} (secrets stay in the keyring)", title="Saved", markup=False)
        else:
            self.notify(self.save_error or "no answers file configured", title="Not saved", severity="error", markup=False)

    def save_answers(self) -> Path | None:
        """keybuzz.yaml: everything but secrets (the Config holds no secret values)."""
        if self.config_path is None:
            self.save_error = "no answers file configured"
            return None
        from . import config as config_mod

        try:
            config_mod.save(self.config, self.config_path)
        except OSError as e:
            self.save_error = f"cannot save {self.config_path}: {e.strerror or e}"
            return None
        self.save_error = ""
        return self.config_path

    def report_data(self) -> dict[str, Any]:
        """What this session found, redacted: detection, ports, plan, checks."""
        from dataclasses import asdict, is_dataclass

        def plain(x: Any) -> Any:
            if is_dataclass(x) and not isinstance(x, type):
                return asdict(x)
            return x if isinstance(x, (str, int, float, bool, type(None), list, dict)) else str(x)

        checks = {}
        for e in self.bridge.recorded:
            if type(e).__name__ == "CheckResult":
                checks[(getattr(e, "check", ""), getattr(e, "node", None))] = e.to_dict()
        plan = self.full_plan
        data = {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": f"demo ({self.scenario})" if self.demo else "real",
            "context": getattr(self.endpoints, "context", None) or self.kube_context or "",
            "detected": plain(self.detected) if self.detected is not None else None,
            "steps_done": sorted(self.done_steps),
            "ports": [plain(c) for c in self.port_checks],
            "plan": {
                "summary": plan.plan.summary(),
                "errors": list(plan.errors),
                "changes": [{"layer": c.layer, "action": c.action, "ref": c.ref, "diff": c.lines()} for c in plan.plan.changes],
            } if plan is not None else None,
            "checks": list(checks.values()),
            "journal": str(self.journal_path),
        }
        return REDACTOR.redact_obj(json.loads(json.dumps(data, default=str)))  # type: ignore[no-any-return]

    def action_export_report(self) -> None:
        data = self.report_data()
        base = self.journal_path.parent
        try:
            base.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            md, js = base / f"report-{stamp}.md", base / f"report-{stamp}.json"
            js.write_text(json.dumps(data, indent=2) + "\n")
            md.write_text(REDACTOR.redact(_report_markdown(data)))
        except OSError as e:
            self.notify(f"cannot write the report: {e.strerror or e}", title="Export report", severity="error", markup=False)
            return
        self.notify(f"{md}\n{js}", title="Report exported", markup=False, timeout=10)

    # --- demo --------------------------------------------------------------------------------------

    def switch_scenario(self, name: str) -> None:
        """Welcome's scenario picker: restart the sandbox world with `name`."""
        if not self.demo:
            return
        self.connect_world(name)

    def demo_switch(self, action: str) -> None:
        """Break (or repair) the sandbox world on purpose; a notification says what was broken."""
        if action not in DEMO_SWITCHES:
            self.notify(f"unknown demo switch {action!r}", severity="error", markup=False)
            return
        if not self.demo or self.sandbox is None:
            self.notify("The scenario switcher works in demo mode only (keybuzz-tui --demo).", severity="warning")
            return
        self._demo_switch(self.sandbox, action)

    @work(thread=True, exit_on_error=False, group="demo-switch", description="change the sandbox world")
    def _demo_switch(self, sb: Any, action: str) -> None:
        run_demo_switch(self, sb, action, self.config)

    # --- leaving -----------------------------------------------------------------------------------

    def applying_work(self) -> list[str]:
        """What is changing the platform right now (descriptions), for the quit question."""
        out = [f"{r.name}" for r in self.bridge.applying]
        for w in self.workers:
            if w.state in (WorkerState.PENDING, WorkerState.RUNNING) and w.group in APPLY_GROUPS:
                out.append(w.description or w.name or w.group)
        return out

    async def action_quit(self) -> None:
        if self._leaving:
            return
        busy = self.applying_work()
        if not busy:
            await self._leave()
            return
        from .screens.modals import ConfirmModal

        what = ", ".join(dict.fromkeys(busy))
        body = (
            f"Still running: {what}.\n\n"
            "• Let it finish: keybuzz-tui quits by itself when the apply is done.\n"
            "• Stop safely: the apply stops at the next safe point (between two API calls, within "
            f"{int(self.config.cluster.request_timeout)} s); what was applied stays applied and is "
            f"recorded in the journal ({self.journal_path}); running keybuzz-tui again resumes from there.\n"
            "• Stay: go back to the wizard."
        )
        self.push_screen(
            ConfirmModal("Something is being applied", body, [("finish", "Let it finish, then quit", "primary"), ("stop", "Stop safely and quit", "warning"), ("cancel", "Stay", "default")]),
            self._quit_choice,
        )

    def _quit_choice(self, choice: str | None) -> None:
        if choice == "finish":
            self._quit_when_idle = True
            self.notify("keybuzz-tui will quit when the apply is done.", title="Quit")
        elif choice == "stop":
            self.run_worker(self._stop_and_leave(), exclusive=True, group="leaving", exit_on_error=False)

    async def _stop_and_leave(self) -> None:
        import asyncio

        self._leaving = True
        reason = "the operator quit; stopped at a safe point"
        self.bridge.cancel_all(reason, applying_only=True)
        for token, _owner in self._adopted:
            token.cancel(reason)
        for scr in self._step_screens.values():
            if getattr(scr, "STEP", "") in APPLYING_STEPS and hasattr(scr, "cancel_all"):
                with contextlib.suppress(Exception):
                    scr.cancel_all(reason)  # type: ignore[attr-defined]
        self.notify("Stopping the apply at the next safe point…", title="Quit")
        deadline = time.monotonic() + self.config.cluster.request_timeout + 5
        while self.applying_work() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        still = self.applying_work()
        await self._leave(self.resume_message(stopped=not still))

    def resume_message(self, *, stopped: bool = True) -> str:
        """What the next run resumes from, read back from the journal."""
        from .journal import Journal

        path = self.journal_path
        last = ""
        with contextlib.suppress(Exception):
            for e in reversed(Journal(path).last_run()):
                what = " ".join(str(e.get(k)) for k in ("action", "kind", "namespace", "name", "resource") if e.get(k))
                if what:
                    last = f"{e.get('event', '')} {what}".strip()
                    break
        head = "The apply was stopped at a safe point." if stopped else "The apply did not stop in time; it was interrupted."
        tail = f" Last change recorded: {last}." if last else " No change was recorded yet."
        demo = " (demo: the sandbox world is discarded on exit)" if self.sandbox is not None else ""
        return f"{head}{tail} The journal is {path}{demo}; run keybuzz-tui again to resume from there."

    async def _leave(self, message: str | None = None) -> None:
        self._leaving = True
        self.save_answers()
        self.exit(0, message=message)

    def on_unmount(self) -> None:
        self.bridge.cancel_all("keybuzz-tui is closing")
        for token, _owner in self._adopted:
            token.cancel("keybuzz-tui is closing")
        if not self._leaving:
            self.save_answers()
        self.stop_world()

    def stop_world(self) -> None:
        sb, self.sandbox = self.sandbox, None
        if sb is not None:
            with contextlib.suppress(Exception):
                sb.stop()


def _report_markdown(data: dict[str, Any]) -> str:
    lines = ["# KeyBuzz session report", "", f"- generated: {data['generated']}", f"- mode: {data['mode']}", f"- context: {data['context']}", f"- journal: {data['journal']}", ""]
    d = data.get("detected") or {}
    if d:
        lines += ["## Platform", ""] + [f"- {k}: {v}" for k, v in d.items() if v not in ("", None)] + [""]
    if data.get("ports"):
        lines += ["## Ports", "", "| what | port | status | holder | suggestion |", "|---|---|---|---|---|"]
        for p in data["ports"]:
            p = p if isinstance(p, dict) else {"what": str(p)}
            lines.append(f"| {p.get('what', '')} | {p.get('port', '')} | {p.get('status', '')} | {p.get('holder', '') or ''} | {p.get('suggestion', '') or ''} |")
        lines.append("")
    plan = data.get("plan")
    if plan:
        lines += ["## Plan", "", f"{plan['summary']}", ""]
        for e in plan["errors"]:
            lines.append(f"- **error**: {e}")
        for c in plan["changes"]:
            lines.append(f"- {c['action']} {c['layer']} {c['ref']}")
        lines.append("")
    if data.get("checks"):
        lines += ["## Checks", ""]
        for c in data["checks"]:
            lines.append(f"- {c.get('status')} {c.get('check')} {c.get('node') or ''}: {c.get('detail', '')}")
    return "\n".join(lines) + "\n"


# --- launching -------------------------------------------------------------------------------


def default_config_path(demo: bool) -> Path:
    """Demo answers never overwrite a real keybuzz.yaml: they go to the demo profile's folder."""
    from . import paths

    return paths.state_dir("demo") / "keybuzz.yaml" if demo else paths.config_path()


def run_wizard(
    config_path: str | os.PathLike[str] | None,
    context: str | None,
    *,
    demo: bool,
    scenario: str = "healthy",
    board_only: bool = False,
    sandbox: str | os.PathLike[str] | None = None,
) -> int:
    """`keybuzz-tui [--config FILE] [--context NAME] [--demo [--scenario NAME]]`: the wizard.

    Returns the process exit code: 0 after a normal exit, 2 for a config or usage error.
    """
    from . import config as config_mod
    from .config import Config, ConfigError

    path = Path(config_path).expanduser() if config_path else default_config_path(demo)
    try:
        cfg = config_mod.load(path) if path.exists() else Config()
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 2
    if demo:
        from .sandbox import scenarios

        if scenario not in scenarios.available() and not Path(scenario).suffix:
            print(f"keybuzz-tui: unknown scenario {scenario!r}; available: {', '.join(scenarios.available())}", file=sys.stderr)
            return 2
    endpoints = None
    if sandbox is not None and not demo:
        # an external sandbox (`keybuzz-tui sandbox --state-dir DIR`): its files say where everything is
        from .engine.context import Endpoints

        endpoints = Endpoints.from_sandbox(sandbox)
        if context:
            endpoints.context = context
    app = KeybuzzApp(cfg, path, context=context, demo=demo, scenario=scenario, board_only=board_only, endpoints=endpoints)
    try:
        app.run()
    finally:
        app.stop_world()
    if app.save_error:
        print(f"keybuzz-tui: {app.save_error}", file=sys.stderr)
    return app.return_code or 0
