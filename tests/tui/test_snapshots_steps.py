"""Snapshots of steps 5-8 (rollout, load balancer, DNS, the validation board) at 80x24 and 160x48,
inside the real wizard shell (header, step indicator, app stylesheet).

Deterministic by design: the screens are built with autostart=False and a fixed clock, and fed a
fixed story of engine events (the same events the engine emits: the port-taken rollout, the
lb-target-unhealthy load balancer, a manual DNS zone, the board after `ufw deny 31695` on
k3s-worker-02); no worker runs, no spinner turns, the elapsed time and "updated Ns ago" come from
the fixed clock, and no notification is shown. Every SVG was reviewed before it was accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.rendering import steady

from keybuzz_tui import events as ev
from keybuzz_tui.app import KeybuzzApp
from keybuzz_tui.config import Config
from keybuzz_tui.engine.plan import Change, Plan

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
T0 = 1_764_000_000.0  # a fixed wall clock
WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]
APPS = ("keybuzz-api", "keybuzz-front")
LB_IP = "127.0.20.1"


def wizard(done: tuple[str, ...]) -> KeybuzzApp:
    """The wizard shell, not connected to any world (nothing runs), with `done` steps ticked."""
    app = KeybuzzApp(Config(), None, connect=False)
    app.done_steps = frozenset(done)
    return app


async def show(app: KeybuzzApp, pilot: Any, step: str, screen: Any) -> Any:
    app.current_step = step
    await app.push_screen(screen)
    await pilot.pause()
    return screen


async def settle(app: KeybuzzApp, pilot: Any) -> None:
    app.clear_notifications()
    await steady(app, pilot)


# --- 5. rollout: port-taken, k3s-worker-03 in CrashLoopBackOff ------------------------------------


def rollout_story() -> list[ev.Event]:
    out: list[ev.Event] = [
        ev.ObjectApplied(step="kubernetes", action="create", kind=k, name=n, namespace=ns, ts=T0 + 1)
        for k, n, ns in [
            ("Namespace", "keybuzz", None),
            ("Secret", "keybuzz-api-credentials", "keybuzz"),
            ("DaemonSet", "keybuzz-api", "keybuzz"),
            ("DaemonSet", "keybuzz-front", "keybuzz"),
        ]
    ]
    for n in WORKERS:
        out.append(ev.PodProgress(step="rollout", app="keybuzz-front", node=n, pod=f"keybuzz-front-{n[-2:]}", phase="Running", ready=True, ts=T0 + 9))
        if n == "k3s-worker-03":
            out.append(ev.PodProgress(
                step="rollout", app="keybuzz-api", node=n, pod="keybuzz-api-x7k2p", phase="Running", reason="CrashLoopBackOff", restarts=4,
                message="exit code 1 (Error), restarted 4 time(s); last log line: FATAL listen tcp 0.0.0.0:8080: bind: address already in use",
                ts=T0 + 31,
            ))
        elif n == "k3s-worker-05":
            out.append(ev.PodProgress(step="rollout", app="keybuzz-api", node=n, pod="keybuzz-api-q9d4m", phase="Running", reason="NotReady",
                                      message="running, waiting for the readiness probe to pass", ts=T0 + 12))
        else:
            out.append(ev.PodProgress(step="rollout", app="keybuzz-api", node=n, pod=f"keybuzz-api-{n[-2:]}", phase="Running", ready=True, ts=T0 + 8))
    out += [
        ev.RolloutProgress(step="rollout", app="keybuzz-api", desired=5, current=5, updated=5, ready=3, available=3, ts=T0 + 32),
        ev.RolloutProgress(step="rollout", app="keybuzz-front", desired=5, current=5, updated=5, ready=5, available=5, ts=T0 + 10),
        ev.KubeEvent(step="rollout", kind="Pod", name="keybuzz-api-x7k2p", reason="BackOff", type_="Warning", count=4,
                     message="Back-off restarting failed container keybuzz-api in pod keybuzz-api-x7k2p", ts=T0 + 33),
    ]
    return out


@pytest.mark.parametrize("size", SIZES)
def test_rollout_port_taken(snap_compare, size):
    from keybuzz_tui.screens.rollout import RolloutScreen

    app = wizard(("welcome", "credentials", "ports", "review"))

    async def run_before(pilot: Any) -> None:
        scr = await show(app, pilot, "rollout", RolloutScreen(autostart=False, clock=lambda: T0 + 65, timeout=300))
        scr.state.started, scr.state.status = T0, "watching"
        for e in rollout_story():
            scr.apply_event(e)
        scr._render_status()
        scr.refresh_bindings()
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


# --- 6. load balancer: lb-target-unhealthy, k3s-worker-02 red -------------------------------------


def lb_plan() -> Plan:
    p = Plan()
    for action, kind, name, note in [
        ("create", "Certificate", "keybuzz-platform", "managed certificate for the https service"),
        ("create", "LoadBalancer", "keybuzz-lb", "lb11 in fsn1, attached to keybuzz-net"),
        ("create", "LoadBalancerNetwork", "keybuzz-lb/keybuzz-net", "attached when the LB is created"),
        ("create", "LoadBalancerTarget", "label_selector:role=worker", ""),
        ("create", "LoadBalancerService", "keybuzz-lb:80", "http 80 -> 31695"),
        ("create", "LoadBalancerService", "keybuzz-lb:443", "https 443 -> 31695"),
    ]:
        p.add(Change("hetzner", action, kind, name, note=note))  # type: ignore[arg-type]
    return p


@pytest.mark.parametrize("size", SIZES)
def test_load_balancer_unhealthy_target(snap_compare, size):
    from keybuzz_tui.screens.loadbalancer import LoadBalancerScreen

    app = wizard(("welcome", "credentials", "ports", "review", "rollout"))

    async def run_before(pilot: Any) -> None:
        scr = await show(app, pilot, "lb", LoadBalancerScreen(autostart=False))
        scr._plan_ready(LoadBalancerScreen.PlanReady(lb_plan()))
        scr.status = "watching"
        scr.add_class("-applied")
        for what, cmd, pct, st in [
            ("issuing certificate keybuzz-platform", "create_certificate", 100, "success"),
            ("creating Load Balancer keybuzz-lb", "create_load_balancer", 100, "success"),
            ("adding target label_selector role=worker", "add_target", 100, "success"),
            ("adding service 443", "add_service", 60, "running"),
        ]:
            scr.apply_event(ev.ActionProgress(step="load_balancer", command=cmd, resource=what, progress=pct, status=st))
        for port in (80, 443):
            for w in WORKERS:
                scr.apply_event(ev.TargetHealth(step="load_balancer", lb="keybuzz-lb", listen_port=port, target=w,
                                                status="unhealthy" if w == "k3s-worker-02" else "healthy"))
        scr.apply_event(ev.Warning_(step="load_balancer", message="keybuzz-lb: target k3s-worker-02 is unhealthy on service 80",
                                    remediation="on k3s-worker-02, check that ingress-nginx answers /healthz on NodePort 31695 and that no UFW rule drops it"))
        scr._render_state()
        scr.refresh_bindings()
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


# --- 7. DNS: manual mode, the records to create, nothing answers yet ------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_dns_manual(snap_compare, size):
    from keybuzz_tui.screens.dns import DnsScreen

    from keybuzz_tui.engine.dns import DNSAnswer

    cfg = Config()
    cfg.dns.mode = "manual"
    app = KeybuzzApp(cfg, None, connect=False)
    app.done_steps = frozenset(("welcome", "credentials", "ports", "review", "rollout", "lb"))
    lines = ["$ORIGIN keybuzz.io.", f"platform-api  300 IN A {LB_IP}", f"platform  300 IN A {LB_IP}"]

    async def run_before(pilot: Any) -> None:
        scr = await show(app, pilot, "dns", DnsScreen(autostart=False))
        plan = Plan()
        for host, name in (("platform-api.keybuzz.io", "platform-api"), ("platform.keybuzz.io", "platform")):
            plan.add(Change("dns", "manual", "A", host, desired={"zone_lines": [f"{name}  300 IN A {LB_IP}"]}, note="dns.mode is manual"))
        scr.plan, scr.ips, scr.zone_lines, scr.status = plan, [LB_IP], lines, "planned"
        scr._show_plan()
        answers = []
        for host in ("platform-api.keybuzz.io", "platform.keybuzz.io"):
            rel = host.split(".")[0]
            answers.append(DNSAnswer(host, "A", [LB_IP], [], [], "fail", "missing",
                                     f"the authoritative server has no A record for {host}; expected {LB_IP}",
                                     f"run keybuzz-tui apply (dns step), or set {rel} A to {LB_IP} at the DNS provider"))
        scr._answers(DnsScreen.Answers(answers, final=True))
        scr.refresh_bindings()
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


# --- 8. the board after `ufw deny 31695` on k3s-worker-02 -----------------------------------------


def board_story() -> list[ev.Event]:
    from keybuzz_tui.engine.validate import build_checks

    failing = {
        "node.nodeport": ("31695 does not answer on k3s-worker-02 (the connection was closed without an answer)",
                          "a firewall drops 31695/tcp on k3s-worker-02: run `sudo ufw status numbered` and `sudo ufw allow 31695/tcp`"),
        "ingress.routing": ("8/10 route probes answer: platform-api.keybuzz.io and platform.keybuzz.io via k3s-worker-02 time out",
                            "fix the NodePort on k3s-worker-02 first"),
    }
    out: list[ev.Event] = []
    for c in build_checks(Config()):
        detail, fix = failing.get(c.id, ("as expected", ""))
        out.append(ev.CheckResult(step="validate", check=c.id, layer=c.layer, status="fail" if c.id in failing else "ok",
                                  title=c.title, detail=detail, remediation=fix))
    hops = ("dns", "lb", "nodeport", "ingress", "service", "pod")
    for w in WORKERS:
        for host in ("platform-api.keybuzz.io", "platform.keybuzz.io"):
            for h in hops:
                if w == "k3s-worker-02" and h == "nodeport":
                    status, detail = "fail", f"{w}:31695 does not answer (dropped)"
                elif w == "k3s-worker-02" and hops.index(h) > 2:
                    status, detail = "skip", "not reached"
                else:
                    status, detail = "ok", "answers"
                out.append(ev.HopResult(step="validate", node=w, host=host, hop=h, status=status, detail=detail))  # type: ignore[arg-type]
    return out


def _board(app: KeybuzzApp, size: tuple[int, int], theme: str | None = None):
    from keybuzz_tui.screens.board import BoardScreen

    now = [T0 + 3]

    async def run_before(pilot: Any) -> None:
        if theme:
            app.theme = theme
        scr = await show(app, pilot, "validation", BoardScreen(autostart=False, clock=lambda: now[0]))
        scr.state = "live"
        scr.apply_events(board_story())
        scr.last_update, scr.requests, scr.rounds = T0, 4, 3
        scr._render_head()
        await settle(app, pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_board_ufw_drop(snap_compare, size):
    app = wizard(("welcome", "credentials", "ports", "review", "rollout", "lb", "dns"))
    assert snap_compare(app, terminal_size=size, run_before=_board(app, size))


def test_board_light_theme(snap_compare):
    """The same board in the light theme: every status still reads (symbols + theme colours)."""
    app = wizard(("welcome", "credentials", "ports", "review", "rollout", "lb", "dns"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_board(app, (80, 24), theme="textual-light"))
