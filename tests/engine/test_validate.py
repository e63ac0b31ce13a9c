"""Validation against the sandbox, with the real clients: the runbook's checks, the per-worker
trace of the request path, continuous mode driven by watches, and the reports.

KeyBuzz is installed by hand (tests/support/engine_fixtures.py), not by the engine's own steps,
so these tests pin down what `validate` says about a world, whatever built it.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import random
import secrets
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from kubernetes import client
from support import engine_fixtures as ef
from support import sandboxes

from keybuzz_tui.config import Config
from keybuzz_tui.engine import report as reportmod
from keybuzz_tui.engine import validate as V
from keybuzz_tui.engine.checks_base import CheckRecord
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.events import CheckResult, HopResult, Recorder
from keybuzz_tui.redact import REDACTOR
from keybuzz_tui.sandbox.runtime import Sandbox, free_net

API_HOST, FRONT_HOST = ef.API["host"], ef.FRONT["host"]
HTTP_TIMEOUT = 3.0


def make_ctx(sb, sink=None) -> Context:
    return Context(Config(), Endpoints.from_sandbox(sb.state_dir), sink=sink or Recorder())


def start_world(tmp_path_factory, scenario: str, name: str):
    """Like support.sandboxes.start, with a random first net: several test runs on one machine
    (other worktrees, other sessions) then rarely race for the same loopback network."""
    net = free_net(random.SystemRandom().randint(2, 250))
    return Sandbox(tmp_path_factory.mktemp(name), scenario, net=net, speed=sandboxes.TEST_SPEED).start()


def ready_pods(sb, ns: str = "keybuzz") -> list:
    api = sb.kube_client()
    try:
        return [p for p in client.CoreV1Api(api).list_namespaced_pod(ns).items if ef.pod_ready(p) and not p.metadata.deletion_timestamp]
    finally:
        api.close()


def statuses(rep: V.ValidationReport) -> dict[str, str]:
    return {r.check: r.status for r in rep.results}


# --- the healthy world ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    sb = start_world(tmp_path_factory, "healthy", "healthy")
    try:
        inst = ef.install_keybuzz_directly(sb)
        yield sb, inst
    finally:
        sb.stop()


def test_all_green_on_a_healthy_install(healthy):
    sb, inst = healthy
    rec = Recorder()
    ctx = make_ctx(sb, rec)
    before = sb.kube_server.stats.requests
    rep = V.validate(ctx, http_timeout=HTTP_TIMEOUT)
    after = sb.kube_server.stats.requests
    bad = {r.check: r.detail for r in rep.results if r.status != "ok"}
    assert not bad, bad
    expected = {"k8s.api", "k8s.nodes", "k8s.daemonsets", "k8s.pods-ready", "k8s.services", "k8s.endpoints", "k8s.ingress",
                "k8s.ingress-controller", "node.hostport", "node.nodeport", "ingress.routing", "lb.services", "lb.targets-healthy",
                "lb.certificate", "dns.authoritative", "dns.resolver", "https.platform", "https.platform-api"}
    assert set(statuses(rep)) == expected
    assert rep.status == "ok" and rep.ok and not rep.cancelled
    # the runbook's own words, in the details
    assert "10/10 pods Running and Ready" in rep.result("k8s.pods-ready").detail
    assert "keybuzz-api NodePort 8080->30080" in rep.result("k8s.services").detail
    assert "5 endpoints = the workers' IPs:8080" in rep.result("k8s.endpoints").detail
    https = rep.result("https.platform-api")
    assert "200 OK from keybuzz-api-" in https.detail and https.evidence["tls"]["verified"] is True
    assert inst.lb_ipv4 in rep.result("dns.resolver").detail
    # every worker traced for both hosts, nothing broken
    assert set(rep.traces) == {API_HOST, FRONT_HOST}
    for host, rows in rep.traces.items():
        assert sorted(rows) == list(ef.WORKERS)
        for node, hops in rows.items():
            assert [h.hop for h in hops] == list(V.HOPS)
            assert V.first_broken(hops) is None, (host, node, [(h.hop, h.status, h.detail) for h in hops])
    # events: one result per check, one per matrix cell
    finished = [e for e in rec.of(CheckResult) if e.status != "running"]
    assert {e.check for e in finished} == expected
    assert len(rec.of(HopResult)) == 2 * 5 * len(V.HOPS)
    # API requests: counted on the client, and the server agrees
    assert rep.api_requests == after - before
    assert rep.api_requests <= 12


def test_trace_alone_names_every_hop_and_emits_cells(healthy):
    sb, _ = healthy
    rec = Recorder()
    ctx = make_ctx(sb, rec)
    rows = V.trace(ctx, FRONT_HOST)
    assert sorted(rows) == list(ef.WORKERS)
    hops = rows["k3s-worker-02"]
    assert [h.status for h in hops] == ["ok"] * 6
    assert "the load balancer" in hops[0].detail and "healthy" in hops[1].detail
    assert hops[5].detail.startswith("3000 on k3s-worker-02: 200")
    cells = rec.of(HopResult)
    assert len(cells) == 5 * 6 and {c.host for c in cells} == {FRONT_HOST}
    with pytest.raises(ValueError, match="not one of the configured hosts"):
        V.trace(ctx, "example.org")


def test_only_skip_and_unknown_ids(healthy):
    sb, _ = healthy
    rep = V.validate(make_ctx(sb), only={"k8s.pods-ready", "dns"}, skip={"dns.resolver"}, http_timeout=HTTP_TIMEOUT)
    assert statuses(rep) == {"k8s.pods-ready": "ok", "dns.authoritative": "ok", "dns.resolver": "skip"}
    assert "on request" in rep.result("dns.resolver").detail
    assert rep.traces == {}  # --only without `trace`: no matrix
    with pytest.raises(ValueError, match="unknown check"):
        V.validate(make_ctx(sb), only={"k8s.podz"})


def green_report(sb, attempts: int = 3) -> V.ValidationReport:
    """A green report of the healthy world, for tests about what is done with one (rendering):
    on a loaded 2-core machine one probe in a hundred may miss its timeout, which is the probes'
    business (test_all_green_on_a_healthy_install), not the renderers'."""
    bad: dict[str, str] = {}
    for _ in range(attempts):
        rep = V.validate(make_ctx(sb), http_timeout=HTTP_TIMEOUT)
        bad = {r.check: r.detail for r in rep.results if r.status != "ok"}
        if not bad:
            return rep
    raise AssertionError(f"no green report in {attempts} validations of the healthy world; the last: {bad}")


def test_reports_render_json_junit_markdown(healthy):
    sb, _ = healthy
    rep = green_report(sb)
    data = json.loads(reportmod.to_json(rep))
    assert data["status"] == "ok" and len(data["checks"]) == len(rep.results)
    assert data["first_broken"][API_HOST]["k3s-worker-01"] is None
    assert data["api_requests"] == rep.api_requests
    root = ET.fromstring(reportmod.to_junit(rep))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    cases = suites["keybuzz.checks"].findall("testcase")
    assert len(cases) == len(rep.results) and {c.get("name") for c in cases} == set(statuses(rep))
    assert suites["keybuzz.checks"].get("failures") == "0"
    assert len(suites["keybuzz.trace"].findall("testcase")) == 10
    md = reportmod.to_markdown(rep)
    assert md.startswith("# KeyBuzz validation: OK")
    assert "| Worker | DNS | LB | NodePort | Ingress | Service | Pod | First broken |" in md
    assert "## Kubernetes" in md and "## Hetzner Load Balancer" in md and "`k8s.pods-ready`" in md


def test_reports_are_redacted():
    canary = "canary-" + secrets.token_hex(12)
    REDACTOR.add(canary)
    rec = CheckRecord("k8s.api", "kubernetes", "Kubernetes API reachable", "fail", f"token {canary} refused",
                      f"rotate {canary}", {"token": canary})
    rep = V.ValidationReport([rec], {API_HOST: {"k3s-worker-01": [V.Hop("dns", "fail", f"saw {canary}")]}})
    for text in (reportmod.to_json(rep), reportmod.to_junit(rep), reportmod.to_markdown(rep)):
        assert canary not in text
        assert "••••••" in text
    ET.fromstring(reportmod.to_junit(rep))


def test_dns_pointing_at_a_wrong_ip_fails_with_both_ips(healthy):
    sb, inst = healthy
    wrong = inst.lb_ipv4.rsplit(".", 1)[0] + ".99"
    ef.set_dns_a(sb, FRONT_HOST, wrong)
    try:
        rep = V.validate(make_ctx(sb), only={"dns", "https", "trace"}, http_timeout=HTTP_TIMEOUT)
    finally:
        ef.set_dns_a(sb, FRONT_HOST, inst.lb_ipv4)
    for cid in ("dns.authoritative", "dns.resolver"):
        r = rep.result(cid)
        assert r.status == "fail", r.detail
        assert wrong in r.detail and inst.lb_ipv4 in r.detail and FRONT_HOST in r.detail
        assert "platform 300 IN A " + inst.lb_ipv4 in r.remediation
    assert API_HOST not in rep.result("dns.resolver").detail  # the other name is right
    assert rep.result("https.platform").status == "skip" and wrong in rep.result("https.platform").detail
    assert rep.result("https.platform-api").status == "ok"
    assert {V.first_broken(h).hop for h in rep.traces[FRONT_HOST].values()} == {"dns"}
    assert all(V.first_broken(h) is None for h in rep.traces[API_HOST].values())


def test_cancel_stops_a_validation_within_a_second_or_two(healthy, monkeypatch):
    """Every worker's NodePort silently drops packets for a long time (as a firewall does); a cancel
    must still end the validation at once with a partial report."""
    from keybuzz_tui.sandbox.dataplane import kubeproxy

    sb, _ = healthy
    monkeypatch.setattr(kubeproxy, "DROP_HOLD", 3000.0)  # dropped connections hang ~2 min (real)
    for w in ef.WORKERS:
        sb.call(sb.dataplane.set_firewall, w, ef.INGRESS_NODEPORT, True)
    rec = Recorder()
    ctx = make_ctx(sb, rec)
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("rep", V.validate(ctx, http_timeout=30)))
    try:
        t.start()
        ef.wait_for(lambda: any(e.check == "node.nodeport" and e.status == "running" for e in rec.of(CheckResult)), 10,
                    what="node.nodeport to be probing")
        time.sleep(0.3)
        t0 = time.monotonic()
        ctx.cancel.cancel()
        t.join(5)
        took = time.monotonic() - t0
    finally:
        for w in ef.WORKERS:
            sb.call(sb.dataplane.set_firewall, w, ef.INGRESS_NODEPORT, False)
    assert not t.is_alive() and took < 2.0, took
    rep = out["rep"]
    assert rep.cancelled and rep.result("node.nodeport").status == "skip"
    assert "cancelled" in rep.result("node.nodeport").detail


def test_untrusted_chain_fails_the_https_checks(healthy):
    """Without the sandbox CA the LB's certificate does not verify: the https checks say so, with
    the certificate the LB presented and what to do."""
    sb, _ = healthy
    ctx = make_ctx(sb)
    ctx.endpoints.ca_file = None
    rep = V.validate(ctx, only={"https"}, http_timeout=HTTP_TIMEOUT)
    for cid in ("https.platform", "https.platform-api"):
        r = rep.result(cid)
        assert r.status == "fail" and "the certificate is not valid" in r.detail, r.detail
        assert "self-signed certificate in certificate chain" in r.detail
        assert "SAN platform.keybuzz.io and platform-api.keybuzz.io) by keybuzz-sandbox" in r.detail  # what was presented
        assert "chain" in r.remediation
        assert r.evidence["tls"]["verified"] is False


def test_unreachable_api_skips_the_kubernetes_checks_and_still_traces(healthy, tmp_path):
    """The API down (wrong address): k8s.api fails with what to check, the checks that need it are
    skipped saying why, and the trace still has a row per worker (from Hetzner's servers)."""
    import socket

    import yaml

    sb, _ = healthy
    with socket.socket() as s:  # a port nobody listens on
        s.bind((sb.addresses.api_host, 0))
        dead = s.getsockname()[1]
    kc = yaml.safe_load(sb.kubeconfig_path.read_text())
    kc["clusters"][0]["cluster"]["server"] = f"https://{sb.addresses.api_host}:{dead}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    ep = Endpoints.from_sandbox(sb.state_dir)
    ep.kubeconfig = str(path)
    ctx = Context(Config(cluster=dataclasses.replace(Config().cluster, request_timeout=2.0)), ep)
    rep = V.validate(ctx, http_timeout=HTTP_TIMEOUT)
    api = rep.result("k8s.api")
    assert api.status == "fail" and "cannot be reached" in api.detail and "6443" in api.remediation
    for cid in ("k8s.nodes", "k8s.pods-ready", "k8s.services", "node.hostport"):
        r = rep.result(cid)
        assert r.status == "skip" and r.detail.startswith("skipped: k8s.api failed"), (cid, r.detail)
    assert rep.result("lb.targets-healthy").status == "ok"  # the cloud side does not need the API
    assert sorted(rep.traces[API_HOST]) == list(ef.WORKERS)
    assert rep.traces[API_HOST]["k3s-worker-01"][2].status == "ok"  # the NodePort still answers


def test_scheduler_orders_skips_times_out_and_contains_errors():
    """The scheduler alone, with made-up checks: prerequisites, ordering, a timeout, a crash."""
    order: list[str] = []

    def make(cid: str, status: str = "ok", sleep: float = 0.0, boom: bool = False):
        def run(ctx, state):
            order.append(cid)
            if sleep:
                ctx.cancel.wait(sleep)
            if boom:
                raise RuntimeError("kaboom")
            return V.CheckOutcome(status, f"{cid} {status}")

        return run

    checks = [
        V.Check("a", "kubernetes", "A", make("a", "fail")),
        V.Check("b", "kubernetes", "B", make("b"), requires=("a",)),
        V.Check("c", "kubernetes", "C", make("c"), after=("a",)),
        V.Check("slow", "node", "Slow", make("slow", sleep=5), timeout=0.3),
        V.Check("crash", "node", "Crash", make("crash", boom=True)),
        V.Check("d", "node", "D", make("d"), requires=("slow",)),
    ]
    ctx = Context(Config())
    state = V.ValidationState(ctx)
    try:
        t0 = time.monotonic()
        done, cancelled = V.run_checks(ctx, checks, state)
        took = time.monotonic() - t0
    finally:
        state.close()
        ctx.cancel.cancel()
    assert not cancelled and took < 2
    assert done["b"].status == "skip" and done["b"].detail.startswith("skipped: a failed")
    assert order.index("c") > order.index("a") and "b" not in order
    assert done["slow"].status == "fail" and "did not finish within" in done["slow"].detail
    assert done["d"].status == "skip"
    assert done["crash"].status == "fail" and "kaboom" in done["crash"].detail and "bug" in done["crash"].remediation


# --- continuous mode -------------------------------------------------------------------------------


def test_watch_reruns_kube_checks_on_a_watch_event_and_counts_requests(healthy):
    sb, _ = healthy
    ctx = make_ctx(sb)
    reports: queue.Queue[V.ValidationReport] = queue.Queue()
    t = threading.Thread(target=V.watch, args=(ctx, 1.5, reports.put), kwargs={"http_timeout": HTTP_TIMEOUT}, daemon=True)
    seen: list[V.ValidationReport] = []

    def next_report(pred, timeout: float, what: str) -> V.ValidationReport:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                r = reports.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(r)
            if pred(r):
                return r
        raise AssertionError(f"no {what} within {timeout}s; got {[(r.trigger, r.refresh) for r in seen]}")

    t.start()
    try:
        first = next_report(lambda r: True, 20, "first report")
        assert first.trigger == "full" and first.refresh == 0 and first.status == "ok"
        assert 0 < first.api_requests <= 12 and set(first.traces) == {API_HOST, FRONT_HOST}
        victim = first.result("k8s.pods-ready").evidence["apps"]["keybuzz-api"]["workers"]["k3s-worker-03"]["pod"]
        api = sb.kube_client()
        try:
            client.CoreV1Api(api).delete_namespaced_pod(victim, "keybuzz")
        finally:
            api.close()

        def replaced(r: V.ValidationReport) -> bool:
            pods = r.result("k8s.pods-ready").evidence.get("apps", {}).get("keybuzz-api", {}).get("workers", {})
            return r.trigger == "kube" and pods.get("k3s-worker-03", {}).get("pod") not in (None, victim)

        next_report(replaced, 15, "watch-driven refresh showing the replacement pod")
        kube_ids = {c.id for c in V.build_checks(ctx.config) if c.source == "kube"}
        kube = [r for r in seen if r.trigger == "kube"]
        assert all(set(r.rerun) == kube_ids for r in kube)
        assert all(r.api_requests <= 2 for r in kube), [r.api_requests for r in kube]  # no LIST: the watch cache
        net = next_report(lambda r: r.trigger == "net", 10, "timed refresh")
        assert 1 <= net.api_requests <= 6 and set(net.rerun) == {c.id for c in V.build_checks(ctx.config)}
        assert net.watch_requests >= 5 and net.api_requests_total >= first.api_requests + net.api_requests
        assert [r.refresh for r in seen] == list(range(len(seen)))
    finally:
        t0 = time.monotonic()
        ctx.cancel.cancel()
        t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 2.5
    ef.wait_pods_ready(sb, 10)


# --- broken worlds -------------------------------------------------------------------------------


def test_port_taken_names_worker_03_and_the_crashloop(tmp_path_factory):
    sb = start_world(tmp_path_factory, "port-taken", "port-taken")
    try:
        inst = ef.install_keybuzz_directly(sb, wait_ready=False)
        ef.wait_for(lambda: len(ready_pods(sb)) == 9, 30, 0.1, "9 Ready pods")

        def crashlooping() -> bool:
            api = sb.kube_client()
            try:
                pods = client.CoreV1Api(api).list_namespaced_pod("keybuzz").items
            finally:
                api.close()
            p = next(p for p in pods if p.spec.node_name == "k3s-worker-03" and p.metadata.name.startswith("keybuzz-api"))
            cs = (p.status.container_statuses or [None])[0]
            return bool(cs and cs.restart_count >= 1 and cs.last_state and cs.last_state.terminated)

        ef.wait_for(crashlooping, 30, 0.1, "the API pod on k3s-worker-03 to crash")
        ef.wait_lb_settled(sb, inst.lb_id)
        rep = V.validate(make_ctx(sb), http_timeout=HTTP_TIMEOUT)
    finally:
        sb.stop()
    pods = rep.result("k8s.pods-ready")
    assert pods.status == "fail"
    assert "9/10" in pods.detail and "k3s-worker-03" in pods.detail and "address already in use" in pods.detail, pods.detail
    assert "k3s-worker-01" not in pods.detail, pods.detail
    assert "ss -ltnp 'sport = :8080'" in pods.remediation and "--previous" in pods.remediation
    hp = rep.result("node.hostport")
    assert hp.status == "fail" and "8080 on k3s-worker-03" in hp.detail, hp.detail
    assert "nginx/1.18.0" in hp.detail and "CrashLoopBackOff" in hp.detail and "kubectl logs -n keybuzz keybuzz-api-" in hp.remediation, hp
    assert hp.evidence["k3s-worker-03"]["keybuzz-api"]["status"] == "fail"
    assert hp.evidence["k3s-worker-03"]["keybuzz-front"]["status"] == "ok"
    assert rep.result("ingress.routing").status == "ok"  # the Service sends around the broken pod
    api_rows = rep.traces[API_HOST]
    assert {n: (fb.hop if (fb := V.first_broken(h)) else None) for n, h in api_rows.items()} == {
        "k3s-worker-01": None, "k3s-worker-02": None, "k3s-worker-03": "pod", "k3s-worker-04": None, "k3s-worker-05": None}
    assert all(V.first_broken(h) is None for h in rep.traces[FRONT_HOST].values())
    svc = api_rows["k3s-worker-03"][4]
    assert svc.hop == "service" and svc.status == "ok" and "not Ready" in svc.detail


def test_lb_target_unhealthy_names_worker_02_and_the_nodeport_hop(tmp_path_factory):
    sb = start_world(tmp_path_factory, "lb-target-unhealthy", "lb-unhealthy")
    try:
        inst = ef.install_keybuzz_directly(sb, wait_ready=False)
        ef.wait_pods_ready(sb, 10)
        health = ef.wait_lb_settled(sb, inst.lb_id, healthy=4)
        assert set(health["k3s-worker-02"].values()) == {"unhealthy"}
        rep = V.validate(make_ctx(sb), http_timeout=HTTP_TIMEOUT)
    finally:
        sb.stop()
    lb = rep.result("lb.targets-healthy")
    assert lb.status == "fail" and "4/5 workers healthy" in lb.detail and "k3s-worker-02 unhealthy on 80 and 443" in lb.detail
    assert "ufw allow 31695/tcp" in lb.remediation
    assert "k3s-worker-0" not in lb.detail.replace("k3s-worker-02", "")
    nodeport = rep.result("node.nodeport")
    assert nodeport.status == "fail" and "31695 does not answer on k3s-worker-02" in nodeport.detail
    for host in (API_HOST, FRONT_HOST):
        rows = rep.traces[host]
        broken = {n: (fb.hop if (fb := V.first_broken(h)) else None) for n, h in rows.items()}
        assert broken == {"k3s-worker-01": None, "k3s-worker-02": "nodeport", "k3s-worker-03": None, "k3s-worker-04": None, "k3s-worker-05": None}
        lb_cell = rows["k3s-worker-02"][1]
        assert lb_cell.status == "warn" and "unhealthy" in lb_cell.detail and "NodePort 31695 does not answer" in lb_cell.detail
    assert rep.result("https.platform").status == "ok"  # the LB serves from the four others


def test_vxlan_blocked_classic_install_gives_504_at_the_service_hop(tmp_path_factory):
    sb = start_world(tmp_path_factory, "vxlan-blocked", "vxlan")
    try:
        inst = ef.install_keybuzz_directly(sb, topology="classic", classic_node="k3s-worker-01")
        assert inst.topology == "classic"
        rep = V.validate(make_ctx(sb), http_timeout=HTTP_TIMEOUT)
    finally:
        sb.stop()
    routing = rep.result("ingress.routing")
    assert routing.status == "fail" and "504 Gateway Time-out" in routing.detail and "2/10" in routing.detail
    assert "VXLAN" in routing.detail and "hostNetwork" in routing.remediation
    assert rep.result("k8s.daemonsets").status == "fail" and "Deployment" in rep.result("k8s.daemonsets").detail
    assert rep.result("k8s.endpoints").status == "fail" and "pod IPs on the overlay" in rep.result("k8s.endpoints").detail
    assert rep.result("k8s.services").status == "fail" and "ClusterIP" in rep.result("k8s.services").detail
    for host in (API_HOST, FRONT_HOST):
        rows = rep.traces[host]
        broken = {n: (fb.hop if (fb := V.first_broken(h)) else None) for n, h in rows.items()}
        assert broken == {"k3s-worker-01": None, **{w: "service" for w in ef.WORKERS[1:]}}, broken
        svc = rows["k3s-worker-03"][4]
        assert "504" in svc.detail and "overlay" in svc.detail and "k3s-worker-01" in svc.detail
        assert rows["k3s-worker-03"][3].status == "ok"  # ingress-nginx did route the host
        assert rows["k3s-worker-03"][5].status == "skip"  # no pod on that worker


def test_node_notready_names_worker_04(tmp_path_factory):
    sb = start_world(tmp_path_factory, "node-notready", "notready")
    try:
        inst = ef.install_keybuzz_directly(sb, wait_ready=False)
        ef.wait_pods_ready(sb, 8)
        ef.wait_lb_settled(sb, inst.lb_id, healthy=4)
        rep = V.validate(make_ctx(sb), http_timeout=HTTP_TIMEOUT)
    finally:
        sb.stop()
    pods = rep.result("k8s.pods-ready")
    assert pods.status == "warn" and "8/8" in pods.detail and "k3s-worker-04 NotReady" in pods.detail
    assert pods.evidence["apps"]["keybuzz-api"]["workers"]["k3s-worker-04"]["status"] == "down"
    nodes = rep.result("k8s.nodes")
    assert nodes.status == "fail" and "k3s-worker-04 is NotReady" in nodes.detail and "Kubelet stopped posting" in nodes.detail
    assert "k3s-agent" in nodes.remediation
    broken = {n: (fb.hop if (fb := V.first_broken(h)) else None) for n, h in rep.traces[API_HOST].items()}
    assert broken["k3s-worker-04"] == "nodeport" and all(v is None for n, v in broken.items() if n != "k3s-worker-04")
    assert "NotReady" in V.first_broken(rep.traces[API_HOST]["k3s-worker-04"]).detail
