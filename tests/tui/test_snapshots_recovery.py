"""Snapshots of the Doctor (the outage's diagnosis) and of Recovery (the outage's destructive repair
plan, opened from the Doctor's cause) at 80x24 and 160x48, inside the wizard shell.

Deterministic by design: the screens are built with autostart=False and shown a fixed report (the
texts the engine produced for the sandbox's outage scenario, with fixed addresses): no worker
runs, no clock is read, no notification is shown. Every SVG was reviewed before it was accepted.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.rendering import steady

from keybuzz_tui.app import KeybuzzApp
from keybuzz_tui.config import Config
from keybuzz_tui.engine import doctor
from keybuzz_tui.engine.checks_base import CheckRecord
from keybuzz_tui.engine.doctor_diagnosis import Cause, Diagnosis
from keybuzz_tui.engine.plan import Change, FieldDiff, Plan
from keybuzz_tui.engine.recovery import DriftReport, repair_plan

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]

P2P = ('`wget -T 3 -qO- http://10.42.11.3/` from k3s-worker-01 to the nginx:1.27 pod on k3s-worker-02 (10.42.11.3) on another node: '
       '"wget: download timed out": pods on different nodes cannot reach each other over the overlay')
CIP = ('`nc -z -w 3 10.43.0.10 53` from k3s-worker-01: "nc: timed out": kube-proxy sends the ClusterIP to CoreDNS (10.42.0.2 on '
       'k3s-master-01), across the overlay, and nothing comes back')
DNS = ('`nslookup kubernetes.default.svc.cluster.local 10.43.0.10` from k3s-worker-01: ";; connection timed out; no servers could be '
       'reached": CoreDNS cannot be reached from k3s-worker-01: pods there have no cluster DNS')
TOPO = ("classic topology (Deployments behind ClusterIP Services): keybuzz-api: Deployment (1 replica) behind a ClusterIP Service, "
        "pods on the overlay (10.42.10.2 on k3s-worker-01); keybuzz-front: Deployment (1 replica) behind a ClusterIP Service, pods on "
        "the overlay (10.42.11.2 on k3s-worker-02)")
PATH = ("2/10 paths (host x worker) work end to end. First broken hop: platform-api.keybuzz.io via k3s-worker-02, k3s-worker-03, "
        "k3s-worker-04 and k3s-worker-05: Service hop: 504 Gateway Time-out")
OVERLAY_FIX = ("the overlay between the nodes drops the packets (VXLAN, UDP 8472): allow it between all nodes (UFW: `ufw allow from "
               "10.0.0.0/16 to any port 8472 proto udp` on every node for VXLAN); or run KeyBuzz in the hostNetwork topology, which "
               "does not use the overlay (`keybuzz-tui repair`)")
RESULTS: dict[str, tuple[str, str]] = {
    "k8s.api": ("ok", "https://127.0.10.100:6443 answers (Kubernetes v1.31.6+k3s1); 8 nodes, namespace keybuzz: 0 DaemonSets, 2 pods"),
    "k8s.permissions": ("ok", "all 36 verbs the wizard needs are allowed (SelfSubjectAccessReview)"),
    "k8s.nodes": ("ok", "5/5 workers Ready (k3s-worker-01 … k3s-worker-05), 5 expected"),
    "k8s.nodeport-range": ("ok", "NodePort range 30000-32767: the chosen NodePorts 30080, 30000, 31695, 32720 are inside it"),
    "k8s.collisions": ("warn", "Deployment keybuzz/keybuzz-api (the classic topology) has pods the hostNetwork Service would also select"),
    "overlay.backend": ("ok", "Flannel backend vxlan on 8/8 nodes: UDP 8472 must pass between every pair of nodes"),
    "overlay.pod-to-pod": ("fail", P2P),
    "overlay.clusterip": ("fail", CIP),
    "overlay.coredns": ("fail", DNS),
    "hetzner.token": ("ok", "the token can read and write this project (8 servers; network keybuzz-net)"),
    "hetzner.lb": ("ok", "keybuzz-lb (127.0.20.1): http 80->31695, https 443->31695; 5/5 workers healthy on 80 and 443"),
    "hetzner.targets": ("ok", "keybuzz-lb targets the 5 workers of the cluster (label selector role=worker): k3s-worker-01 … k3s-worker-05"),
    "hetzner.firewall": ("ok", "NodePorts pass the Hetzner firewalls; the LB reaches the workers on their private IPs"),
    "hetzner.quotas": ("ok", "lb11: 2/5 services, 5/25 targets, 1/10 certificates"),
    "dns.records": ("ok", "platform-api.keybuzz.io A 127.0.20.1; platform.keybuzz.io A 127.0.20.1 (authoritative and resolver)"),
    "platform.topology": ("fail", TOPO),
    "platform.objects": ("ok", "10 objects in namespace keybuzz match keybuzz.yaml and the keyring"),
    "platform.interrupted": ("ok", "no apply or repair stopped halfway: the last one went to its end"),
    "platform.lock": ("ok", "free: no wizard is changing the platform (no holder on Lease keybuzz/keybuzz-tui-lock)"),
    "platform.request-path": ("fail", PATH),
    "https.platform-api": ("fail", "https://platform-api.keybuzz.io answers 504 Gateway Time-out"),
    "https.platform": ("fail", "https://platform.keybuzz.io answers 504 Gateway Time-out"),
}
EXPLANATION = ("Cause: the overlay network is broken and KeyBuzz still runs in the classic topology (Deployments behind ClusterIP "
               "Services): ingress-nginx cannot reach the pods on other nodes → 504 Gateway Time-out. Fix: move the apps to "
               "hostNetwork DaemonSets (keybuzz-tui repair).")


def outage_cause() -> Cause:
    return Cause(
        "overlay-classic", "critical",
        "The overlay is broken and KeyBuzz runs in the classic topology: 504 Gateway Time-out", EXPLANATION,
        "move the apps to hostNetwork DaemonSets: `keybuzz-tui repair`", "keybuzz-tui repair",
        ["In plain words: the overlay network between nodes is broken (VXLAN, UDP 8472, appears blocked: pod-to-pod across nodes and "
         "ClusterIP Services time out, CoreDNS cannot be reached).",
         f"overlay.pod-to-pod: {P2P}", f"overlay.clusterip: {CIP}", f"overlay.coredns: {DNS}", f"platform.topology: {TOPO}",
         f"platform.request-path: {PATH}"],
        ["overlay.pod-to-pod", "overlay.clusterip", "overlay.coredns", "platform.topology", "platform.request-path"], "repair", ("kubernetes",))


def outage_report() -> doctor.DoctorReport:
    cfg = Config()
    records = []
    for c in doctor.catalogue(cfg):
        status, detail = RESULTS[c["id"]]
        evidence: dict[str, Any] = {}
        remediation = OVERLAY_FIX if c["layer"] == "overlay" and status == "fail" else ""
        if c["id"] == "overlay.pod-to-pod":
            evidence = {"command": "wget -T 3 -qO- http://10.42.11.3/", "output": ["wget: download timed out"], "result": "timeout",
                        "client_node": "k3s-worker-01", "server_node": "k3s-worker-02", "server_ip": "10.42.11.3"}
        records.append(CheckRecord(c["id"], c["layer"], c["title"], status, detail, remediation, evidence))  # type: ignore[arg-type]
    diag = Diagnosis([outage_cause()], overlay="broken", topology="classic", platform_depends_on_overlay=True)
    return doctor.DoctorReport(records, diag, probes=True, duration=1.3)


def outage_drift() -> DriftReport:
    rep = DriftReport()
    ns = "keybuzz"
    k = [
        Change("kubernetes", "update", "Secret", "keybuzz-api-credentials", ns,
               [FieldDiff(".data.DATABASE_URL", "(secret, masked)", "(changed, masked)")],
               note="values differ from the keyring's: the keyring's are written (the keyring is the source of the credentials)"),
        Change("kubernetes", "create", "Secret", "keybuzz-front-credentials", ns, [FieldDiff(".data", None, {"SESSION_SECRET": "(secret, masked)"})]),
        Change("kubernetes", "create", "ConfigMap", "keybuzz-api-nginx", ns, [FieldDiff(".kind", None, "ConfigMap")]),
        Change("kubernetes", "update", "Service", "keybuzz-api", ns, [FieldDiff(".spec.type", "ClusterIP", "NodePort"),
                                                                      FieldDiff(".spec.ports[name=http].nodePort", None, 30080)]),
        Change("kubernetes", "update", "Service", "keybuzz-front", ns, [FieldDiff(".spec.type", "ClusterIP", "NodePort")]),
        Change("kubernetes", "create", "DaemonSet", "keybuzz-api", ns, [FieldDiff(".kind", None, "DaemonSet")]),
        Change("kubernetes", "create", "DaemonSet", "keybuzz-front", ns, [FieldDiff(".kind", None, "DaemonSet")]),
        Change("kubernetes", "update", "Ingress", "keybuzz", ns, [FieldDiff(".metadata.labels.app.kubernetes.io/managed-by", None, "keybuzz-tui")]),
        Change("kubernetes", "unchanged", "Namespace", "keybuzz"),
    ]
    rep.take(Plan(changes=k))
    extra = [
        Change("kubernetes", "delete", "Deployment", name, ns, [],
               note=f"deletes Deployment keybuzz/{name} and its 1 pod: the classic install; traffic moves to the hostNetwork DaemonSet {name}",
               destructive=True)
        for name in ("keybuzz-api", "keybuzz-front")
    ]
    rep.take(Plan(changes=extra))
    rep.take(Plan(changes=[Change("hetzner", "unchanged", "LoadBalancer", "keybuzz-lb"), Change("dns", "unchanged", "A", "platform.keybuzz.io")]))
    rep.topology = "classic"
    rep.checked = ["kubernetes", "hetzner", "dns"]
    return rep


def wizard() -> KeybuzzApp:
    app = KeybuzzApp(Config(), None, connect=False)
    app.done_steps = frozenset({"welcome"})
    return app


async def settle(app: KeybuzzApp, pilot: Any) -> None:
    app.clear_notifications()
    await steady(app, pilot)


@pytest.mark.parametrize("size", SIZES)
def test_doctor_outage(snap_compare, size):
    from keybuzz_tui.screens.doctor import DoctorScreen

    app = wizard()

    async def run_before(pilot: Any) -> None:
        scr = DoctorScreen(autostart=False)
        await app.push_screen(scr)
        await pilot.pause()
        scr.show_report(outage_report())
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_recovery_destructive_plan(snap_compare, size):
    from keybuzz_tui.screens.recovery import RecoveryScreen

    app = wizard()

    async def run_before(pilot: Any) -> None:
        scr = RecoveryScreen(cause=outage_cause(), autostart=False)
        await app.push_screen(scr)
        await pilot.pause()
        report = outage_drift()
        scr.show_drift(report, repair_plan(None, report))  # type: ignore[arg-type]
        await pilot.pause()
        # the cursor on the first destruction: what it deletes, in the detail pane
        from textual.widgets import DataTable

        table = scr.query_one("#plan-table", DataTable)
        key = next(k for k, (kind, obj) in scr._plan_rows.items() if kind == "change" and obj.destructive)
        table.move_cursor(row=table.get_row_index(key), animate=False)
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
