"""The Load Balancer step against the sandbox's Hetzner API with the real hcloud client.

Each test is self-sufficient (it converges the shared world first), so the file can be split
across xdist workers; tests that need an empty project or a broken scenario start their own world.
"""

from __future__ import annotations

import json

import pytest
from hcloud import APIException
from hcloud.load_balancers import (
    LoadBalancer,
    LoadBalancerAlgorithm,
    LoadBalancerHealthCheck,
    LoadBalancerHealthCheckHttp,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from support import sandboxes
from support.engine_fixtures import DictSecrets, engine_context

from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.config import Config
from keybuzz_tui.engine import hcloudio, lb
from keybuzz_tui.engine.hcloudio import CloudError, explain
from keybuzz_tui.events import ActionProgress, Info, ObjectApplied, TargetHealth, Warning_


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sb = sandboxes.start(tmp_path_factory.mktemp("lbworld"))
    yield sb
    sb.stop()


@pytest.fixture
def factory(tmp_path):
    started = []

    def make(scenario: str = "healthy", **kw):
        sb = sandboxes.start(tmp_path / f"sb{len(started)}", scenario, **kw)
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


def hc(sb):
    client = sb.hcloud_client(poll_interval=0.02)
    client._client._session.trust_env = False
    return client


def converge(ctx, **kw):
    p = lb.plan(ctx, **kw)
    if p.has_changes:
        lb.apply(ctx, p, **kw)
    return p


def changes(p, action=None):
    return [(c.action, c.kind, c.name) for c in p.changes if action is None or c.action == action]


def journal_lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def live_lb(sb):
    found = hc(sb).load_balancers.get_by_name("keybuzz-lb")
    assert found is not None
    return found


# --- first install, idempotence, progress, journal --------------------------------------------------


def test_first_install_plans_creates_converges_and_replans_unchanged(factory, tmp_path):
    sb = factory()
    journal = tmp_path / "journal.jsonl"
    ctx, rec = engine_context(sb, journal)
    p = lb.plan(ctx)
    assert sorted(changes(p, "create")) == sorted([
        ("create", "Certificate", "keybuzz-platform"),
        ("create", "LoadBalancer", "keybuzz-lb"),
        ("create", "LoadBalancerNetwork", "keybuzz-lb/keybuzz-net"),  # comes with the LB's creation
        ("create", "LoadBalancerService", "keybuzz-lb:443"),
        ("create", "LoadBalancerService", "keybuzz-lb:80"),
        ("create", "LoadBalancerTarget", "label_selector:role=worker"),
    ])
    assert not p.warnings
    svc443 = next(c for c in p.changes if c.name == "keybuzz-lb:443").desired
    # the runbook's design: both forward plain HTTP to 31695, no redirect, no proxy protocol,
    # /healthz on 31695 with a null domain
    assert svc443["destination_port"] == 31695 and svc443["proxyprotocol"] is False
    assert svc443["http"] == {"redirect_http": False, "certificates": ["keybuzz-platform"]}
    assert svc443["health_check"]["http"]["domain"] is None and svc443["health_check"]["port"] == 31695

    lb.apply(ctx, p)
    progress = rec.of(ActionProgress)
    commands = {e.command for e in progress}
    assert {"create_certificate", "create_load_balancer", "add_target", "add_service"} <= commands
    assert all(e.status == "success" for e in progress if e.progress == 100)
    # the network came with the LB: attached before any target was added
    order = [e.command for e in progress if e.status == "success"]
    assert order.index("create_load_balancer") < order.index("add_target") < order.index("add_service")

    health = lb.wait_healthy(ctx, timeout=30)
    workers = [f"k3s-worker-0{i}" for i in range(1, 6)]
    assert health == {(port, w): "healthy" for port in (80, 443) for w in workers}
    assert {(e.listen_port, e.target) for e in rec.of(TargetHealth) if e.status == "healthy"} == set(health)

    again = lb.plan(ctx)
    assert not again.has_changes, again.summary()
    assert again.counts()["unchanged"] == len(again.changes)

    live = live_lb(sb)
    assert live.labels["managed-by"] == "keybuzz-tui" and live.labels["keybuzz-tui/profile"] == "production"
    assert [pn.network.id for pn in live.private_net] == [hc(sb).networks.get_by_name("keybuzz-net").id]
    st = lb.status(ctx)
    assert st.exists and st.ipv4 == live.public_net.ipv4.ip
    assert {c.check: c.status for c in st.checks()} == {"lb-exists": "ok", "lb-services": "ok", "lb-targets": "ok", "lb-certificate": "ok"}
    assert lb.addresses(ctx) == [live.public_net.ipv4.ip]

    lines = [x for x in journal_lines(journal) if x["event"] == "change"]
    assert sorted((x["kind"], x["name"]) for x in lines) == sorted((k, n) for _, k, n in changes(p, "create"))
    assert sb.hcloud_token not in journal.read_text()
    assert all(sb.hcloud_token not in json.dumps(e.to_dict()) for e in rec.events)


# --- drift: detected with field diffs, repaired by update, never by recreation --------------------


def test_a_changed_health_check_interval_is_one_service_update_with_its_diff(world, tmp_path):
    ctx, rec = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx)
    live = live_lb(world)
    action = hc(world).load_balancers.update_service(
        live, LoadBalancerService(listen_port=443, health_check=LoadBalancerHealthCheck(interval=20))
    )
    action.wait_until_finished(max_retries=500)
    p = lb.plan(ctx)
    assert changes(p, "update") == [("update", "LoadBalancerService", "keybuzz-lb:443")]
    assert changes(p, "create") == [] and changes(p, "delete") == []
    upd = next(c for c in p.changes if c.action == "update")
    assert upd.lines() == ["~ .health_check.interval: 20 -> 15"]
    lb.apply(ctx, p)
    assert [e for e in rec.of(ObjectApplied)] and rec.of(ObjectApplied)[-1].name == "keybuzz-lb:443"
    assert not lb.plan(ctx).has_changes
    assert {s.listen_port: s.health_check.interval for s in live_lb(world).services} == {80: 15, 443: 15}

    # the same change from keybuzz.yaml updates both services in place (same LB id)
    cfg = Config()
    cfg.load_balancer.health_check.interval = 10
    ctx2, _ = engine_context(world, tmp_path / "j.jsonl", cfg)
    p2 = lb.plan(ctx2)
    assert sorted(changes(p2, "update")) == [("update", "LoadBalancerService", "keybuzz-lb:443"), ("update", "LoadBalancerService", "keybuzz-lb:80")]
    assert all(c.lines() == ["~ .health_check.interval: 15 -> 10"] for c in p2.changes if c.action == "update")
    before = live_lb(world).id
    lb.apply(ctx2, p2)
    assert live_lb(world).id == before
    converge(ctx)  # back to the defaults for the other tests


def test_manual_changes_are_detected_and_repaired(world, tmp_path):
    journal = tmp_path / "j.jsonl"
    ctx, _ = engine_context(world, journal)
    converge(ctx)
    client = hc(world)
    live = live_lb(world)
    client.load_balancers.delete_service(live, LoadBalancerService(listen_port=80)).wait_until_finished(max_retries=500)
    sel = LoadBalancerTarget(type="label_selector", label_selector=LoadBalancerTargetLabelSelector(selector="role=worker"))
    client.load_balancers.remove_target(live, sel).wait_until_finished(max_retries=500)
    # someone "helpfully" set the health check's Host and the PROXY protocol on 443 by hand
    payload = {"listen_port": 443, "proxyprotocol": True, "health_check": {"http": {"domain": "platform.keybuzz.io"}}}
    resp = client.request(method="POST", url=f"/load_balancers/{live.id}/actions/update_service", json=payload)
    client.actions.get_by_id(resp["action"]["id"]).wait_until_finished(max_retries=500)

    p = lb.plan(ctx)
    assert sorted(changes(p)) == sorted([
        ("unchanged", "Certificate", "keybuzz-platform"),
        ("unchanged", "LoadBalancer", "keybuzz-lb"),
        ("unchanged", "LoadBalancerNetwork", "keybuzz-lb/keybuzz-net"),
        ("create", "LoadBalancerTarget", "label_selector:role=worker"),
        ("create", "LoadBalancerService", "keybuzz-lb:80"),
        ("update", "LoadBalancerService", "keybuzz-lb:443"),
    ])
    upd = next(c for c in p.changes if c.action == "update")
    assert sorted(upd.lines()) == ["- .health_check.http.domain: platform.keybuzz.io", "~ .proxyprotocol: True -> False"]
    assert "domain reset to null" in upd.note and "proxyprotocol off" in upd.note
    lb.apply(ctx, p)
    assert not lb.plan(ctx).has_changes
    fixed = live_lb(world)
    assert fixed.id == live.id
    s443 = next(s for s in fixed.services if s.listen_port == 443)
    assert s443.health_check.http.domain is None and s443.proxyprotocol is False
    logged = {(x["kind"], x["name"], x["action"]) for x in journal_lines(journal) if x["event"] == "change"}
    assert {("LoadBalancerService", "keybuzz-lb:80", "create"), ("LoadBalancerService", "keybuzz-lb:443", "update"),
            ("LoadBalancerTarget", "label_selector:role=worker", "create")} <= logged
    assert lb.wait_healthy(ctx, timeout=30) and set(lb.wait_healthy(ctx, timeout=30).values()) == {"healthy"}


def test_a_target_with_the_wrong_use_private_ip_is_removed_and_added_again(world, tmp_path):
    ctx, _ = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx)
    client = hc(world)
    live = live_lb(world)
    sel = LoadBalancerTargetLabelSelector(selector="role=worker")
    client.load_balancers.remove_target(live, LoadBalancerTarget(type="label_selector", label_selector=sel)).wait_until_finished(max_retries=500)
    client.load_balancers.add_target(live, LoadBalancerTarget(type="label_selector", label_selector=sel, use_private_ip=False)).wait_until_finished(max_retries=500)
    p = lb.plan(ctx)
    upd = [c for c in p.changes if c.action == "update"]
    assert [(c.kind, c.lines()) for c in upd] == [("LoadBalancerTarget", ["~ .use_private_ip: False -> True"])]
    assert "removed and added again" in upd[0].note
    lb.apply(ctx, p)
    assert [t.use_private_ip for t in live_lb(world).targets] == [True]


def test_server_targets_are_keyed_by_server_id(world, tmp_path):
    ctx, _ = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx)
    p = lb.plan(ctx, target_mode="servers")
    assert sorted(n for a, k, n in changes(p, "create") if k == "LoadBalancerTarget") == [f"server:k3s-worker-0{i}" for i in range(1, 6)]
    assert changes(p, "delete") == [("delete", "LoadBalancerTarget", "label_selector:role=worker")]
    lb.apply(ctx, p, target_mode="servers")
    assert not lb.plan(ctx, target_mode="servers").has_changes
    assert sorted(t.type for t in live_lb(world).targets) == ["server"] * 5
    converge(ctx)  # back to the label selector
    assert [t.type for t in live_lb(world).targets] == ["label_selector"]


def test_a_service_dropped_from_keybuzz_yaml_is_deleted_by_listen_port(world, tmp_path):
    ctx, _ = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx)
    cfg = Config()
    cfg.load_balancer.services = [s for s in cfg.load_balancer.services if s.listen_port == 443]
    ctx2, _ = engine_context(world, tmp_path / "j.jsonl", cfg)
    p = lb.plan(ctx2)
    assert changes(p, "delete") == [("delete", "LoadBalancerService", "keybuzz-lb:80")]
    assert changes(p, "create") == [] and changes(p, "update") == []
    lb.apply(ctx2, p)
    assert [s.listen_port for s in live_lb(world).services] == [443]
    converge(ctx)
    assert sorted(s.listen_port for s in live_lb(world).services) == [80, 443]


def test_known_traps_are_warned_about_in_the_plan(world):
    from keybuzz_tui.config import LBService

    cfg = Config()
    cfg.load_balancer.services = [LBService("https", 443, 32720, redirect_http=True)]
    cfg.load_balancer.health_check.port = 32720
    cfg.load_balancer.use_private_ip = False
    converge(engine_context(world, None)[0])
    ctx, rec = engine_context(world, None, cfg)
    p = lb.plan(ctx)
    text = "\n".join(p.warnings)
    assert "plain HTTP request was sent to HTTPS port" in text
    assert "redirect_http: the LB then takes port 80" in text
    assert "the health check asks port 32720" in text
    assert "targets use public IPs" in text
    assert [e.message for e in rec.of(Warning_)] == p.warnings
    upd = next(c for c in p.changes if c.name == "keybuzz-lb:443")
    assert "~ .destination_port: 31695 -> 32720" in upd.lines() and "~ .http.redirect_http: False -> True" in upd.lines()


def test_managed_certificate_domains_outside_a_hetzner_zone_are_warned_about(world):
    cfg = Config()
    cfg.load_balancer.certificate.domains = ["platform.example.org"]
    converge(engine_context(world, None)[0])
    ctx, _ = engine_context(world, None, cfg)
    p = lb.plan(ctx)
    assert any("outside dns.zone keybuzz.io: platform.example.org" in w for w in p.warnings)
    cert = next(c for c in p.changes if c.kind == "Certificate")
    # certificates cannot change in place: a new name, the old certificate left alone
    assert cert.action == "create" and cert.name.startswith("keybuzz-platform-") and "left untouched" in cert.note
    cfg2 = Config()
    cfg2.dns.zone = "keybuzz.dev"
    cfg2.load_balancer.certificate.domains = ["platform.keybuzz.dev"]
    ctx2, _ = engine_context(world, None, cfg2)
    assert any("not a Hetzner DNS zone of this project" in w for w in lb.plan(ctx2).warnings)


def test_a_plan_made_before_someone_changed_the_lb_is_refused(world, tmp_path):
    ctx, _ = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx)
    cfg = Config()
    cfg.load_balancer.algorithm = "least_connections"
    ctx2, _ = engine_context(world, tmp_path / "j.jsonl", cfg)
    p = lb.plan(ctx2)
    assert [c.lines() for c in p.changes if c.action == "update"] == [["~ .algorithm.type: round_robin -> least_connections"]]
    live = live_lb(world)
    hc(world).load_balancers.delete_service(live, LoadBalancerService(listen_port=80)).wait_until_finished(max_retries=500)
    with pytest.raises(CloudError) as e:
        lb.apply(ctx2, p)
    assert e.value.code == "stale_plan" and "run plan again" in str(e.value)
    assert live_lb(world).algorithm.type == "round_robin"
    converge(ctx)


def test_a_locked_lb_waits_for_the_running_action_then_retries(world, tmp_path):
    ctx, rec = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx)
    cfg = Config()
    cfg.load_balancer.health_check.retries = 2
    ctx2, rec2 = engine_context(world, tmp_path / "j.jsonl", cfg)
    p = lb.plan(ctx2)
    assert len(changes(p, "update")) == 2
    world.call(lambda: setattr(world.hetzner.actions, "duration", 20.0))  # 0.8 s at speed 25
    try:
        live = live_lb(world)
        # someone else's action holds the lock while we apply
        hc(world).load_balancers.change_algorithm(live, LoadBalancerAlgorithm(type="round_robin"))
        lb.apply(ctx2, p)
    finally:
        world.call(lambda: setattr(world.hetzner.actions, "duration", (1.0, 3.0)))
    assert any("locked" in e.message for e in rec2.of(Info))
    assert {s.health_check.retries for s in live_lb(world).services} == {2}
    converge(ctx)


def test_cancel_stops_between_calls(factory, tmp_path):
    sb = factory()
    ctx, rec = engine_context(sb, tmp_path / "j.jsonl")
    p = lb.plan(ctx)

    def cancel_on_first_progress(event):
        if isinstance(event, ActionProgress):
            ctx.cancel.cancel("operator pressed Ctrl-C")

    rec._forward = cancel_on_first_progress
    with pytest.raises(Cancelled):
        lb.apply(ctx, p)
    assert hc(sb).load_balancers.get_by_name("keybuzz-lb") is None  # stopped after the certificate


def test_location_change_is_a_confirmed_destructive_recreate(factory, tmp_path):
    sb = factory()
    ctx, _ = engine_context(sb, tmp_path / "j.jsonl")
    converge(ctx)
    old = live_lb(sb)
    cfg = Config()
    cfg.load_balancer.location = "nbg1"
    ctx2, _ = engine_context(sb, tmp_path / "j.jsonl", cfg)
    p = lb.plan(ctx2)
    delete = [c for c in p.changes if c.action == "delete"]
    assert [(c.kind, c.destructive) for c in delete] == [("LoadBalancer", True)]
    assert "new IPs" in delete[0].note and "DNS records must follow" in delete[0].note
    assert ("create", "LoadBalancer", "keybuzz-lb") in changes(p)
    with pytest.raises(CloudError) as e:
        lb.apply(ctx2, p)
    assert e.value.code == "destructive"
    assert live_lb(sb).id == old.id
    lb.apply(ctx2, p, allow_destructive=True)
    new = live_lb(sb)
    assert new.id != old.id and new.location.name == "nbg1"
    assert not lb.plan(ctx2).has_changes


def test_an_lb_found_by_name_is_adopted_not_recreated(factory, tmp_path):
    from hcloud.load_balancer_types import LoadBalancerType
    from hcloud.locations import Location

    sb = factory()
    client = hc(sb)
    made = client.load_balancers.create(name="keybuzz-lb", load_balancer_type=LoadBalancerType(name="lb11"),
                                        location=Location(name="fsn1"), labels={"team": "ops"})
    made.action.wait_until_finished(max_retries=500)
    ctx, rec = engine_context(sb, tmp_path / "j.jsonl")
    p = lb.plan(ctx)
    lbc = next(c for c in p.changes if c.kind == "LoadBalancer")
    assert lbc.action == "update" and "found by name" in lbc.note
    assert "+ .labels.managed-by: keybuzz-tui" in lbc.lines()
    assert ("create", "LoadBalancerNetwork", "keybuzz-lb/keybuzz-net") in changes(p)
    lb.apply(ctx, p)
    applied = [e.kind for e in rec.of(ObjectApplied)]
    assert applied.index("LoadBalancerNetwork") < applied.index("LoadBalancer") < applied.index("LoadBalancerTarget")
    live = live_lb(sb)
    assert live.id == made.load_balancer.id and live.labels["team"] == "ops"  # labels merged, never dropped
    assert live.private_net
    # renamed in keybuzz.yaml: found by its labels and renamed in place
    cfg = Config()
    cfg.load_balancer.name = "keybuzz-edge"
    ctx2, _ = engine_context(sb, tmp_path / "j.jsonl", cfg)
    p2 = lb.plan(ctx2)
    assert [c.lines() for c in p2.changes if c.kind == "LoadBalancer"] == [["~ .name: keybuzz-lb -> keybuzz-edge"]]
    lb.apply(ctx2, p2)
    assert client.load_balancers.get_by_id(live.id).name == "keybuzz-edge"


# --- scenarios -----------------------------------------------------------------------------------------


def test_lb_target_unhealthy_names_the_worker_and_its_detail(factory, tmp_path):
    sb = factory("lb-target-unhealthy")
    cfg = Config()
    # checks of 0.8 s real time (20 s / speed 25): a busy test machine must not fail healthy workers
    cfg.load_balancer.health_check.interval = cfg.load_balancer.health_check.timeout = 20
    ctx, rec = engine_context(sb, tmp_path / "j.jsonl", cfg)
    converge(ctx)
    health = lb.wait_healthy(ctx, timeout=30, until="settled")
    bad = {k: v for k, v in health.items() if v != "healthy"}
    assert bad == {(80, "k3s-worker-02"): "unhealthy", (443, "k3s-worker-02"): "unhealthy"}, lb.status(ctx).targets
    assert sum(1 for v in health.values() if v == "healthy") == 8
    warnings = [e for e in rec.of(Warning_) if "k3s-worker-02" in e.message]
    assert warnings and "timeout" in warnings[0].message and "ufw" in warnings[0].remediation
    unhealthy = [e for e in rec.of(TargetHealth) if e.status == "unhealthy"]
    assert {e.target for e in unhealthy} == {"k3s-worker-02"}
    targets = {c.check: c for c in lb.status(ctx).checks()}["lb-targets"]
    assert targets.status == "fail" and "k3s-worker-02" in targets.detail and "timeout" in targets.detail


def test_a_read_only_token_plans_but_apply_changes_nothing(factory, tmp_path):
    sb = factory("hetzner-readonly-token")
    journal = tmp_path / "j.jsonl"
    ctx, rec = engine_context(sb, journal)
    p = lb.plan(ctx)
    assert len(changes(p, "create")) == 6  # certificate, LB, its network, target, 2 services
    with pytest.raises(CloudError) as e:
        lb.apply(ctx, p)
    assert e.value.code == "token_readonly"
    assert "read-only token" in e.value.message and "Read & Write" in e.value.remediation
    assert "nothing was changed" in e.value.remediation
    assert sb.hcloud_token not in str(e.value)
    client = hc(sb)
    assert client.load_balancers.get_all() == [] and client.certificates.get_all() == []
    assert [x for x in journal_lines(journal) if x["event"] == "change"] == []
    assert not rec.of(ObjectApplied)


def test_a_wrong_token_and_no_token_are_told_apart(factory, tmp_path):
    sb = factory()
    ctx, _ = engine_context(sb, None, token="hc_wrong-token-value-123456")
    with pytest.raises(CloudError) as e:
        lb.plan(ctx)
    assert e.value.code == "unauthorized" and "rejected the token" in e.value.message
    assert "hc_wrong-token-value-123456" not in str(e.value)
    ctx2, _ = engine_context(sb, None, token="")
    ctx2.endpoints.hcloud_token_env = None
    ctx2._hcloud = None
    with pytest.raises(CloudError) as e2:
        lb.plan(ctx2)
    assert e2.value.code == "no_token" and "HCLOUD_TOKEN" in e2.value.remediation


def test_rate_limiting_is_reported_with_the_reset_time(factory, tmp_path):
    sb = factory("hetzner-rate-limit")
    ctx, _ = engine_context(sb, None)
    with pytest.raises(CloudError) as e:
        for _ in range(40):  # 40 requests per hour: a few plans spend the budget
            lb.plan(ctx)
    assert e.value.code == "rate_limit_exceeded"
    text = str(e.value)
    assert "rate limited: RateLimit-Reset at " in text and "of 40 requests per hour left" in text
    assert "resumes where it stopped" in e.value.remediation


def test_a_cancel_ends_hclouds_429_backoff_at_once(factory, monkeypatch):
    """hcloud sleeps between its retries of a 429; a cancel (Ctrl-C, the wizard's Cancel) must not
    wait that sleep out. Each backoff is made 30 s here: only a cancel-aware wait ends in time."""
    import threading
    import time

    import hcloud._client

    monkeypatch.setattr(hcloud._client, "exponential_backoff_function", lambda **kw: (lambda retries: 30.0))
    sb = factory("hetzner-rate-limit")
    ctx, _ = engine_context(sb, None)
    ctx._hcloud = None  # the fixture's client has no backoff; build the real one (30 s, patched above)
    outcome: list[BaseException | None] = []

    def spend() -> None:
        try:
            while True:  # 40 requests per hour: a few plans spend the budget, then hcloud backs off
                lb.plan(ctx)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)

    t = threading.Thread(target=spend, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while hcloudio.rate_limit_state(ctx.hcloud()).get("RateLimit-Remaining") != "0":
        assert time.monotonic() < deadline and t.is_alive(), ("the rate limit was never reached", outcome)
        time.sleep(0.05)
    time.sleep(0.5)  # inside hcloud's backoff now
    started = time.monotonic()
    ctx.cancel.cancel("operator pressed Ctrl-C")
    t.join(10)
    assert not t.is_alive(), "the 30 s backoff was waited out"
    assert time.monotonic() - started < 10
    assert outcome and isinstance(outcome[0], Cancelled), outcome


def test_a_failed_managed_certificate_is_surfaced_with_its_error(factory, tmp_path):
    sb = factory("managed-certificate-failure")
    ctx, rec = engine_context(sb, tmp_path / "j.jsonl")
    p = lb.plan(ctx)
    with pytest.raises(CloudError) as e:
        lb.apply(ctx, p)
    assert "could not be issued" in e.value.message
    assert "DNS validation failed (ca_dns_validation_failed)" in e.value.message
    assert "CAA" in e.value.remediation
    assert any(x.status == "error" and "ca_dns_validation_failed" in x.error for x in rec.of(ActionProgress))
    again = lb.plan(ctx)
    cert = next(c for c in again.changes if c.kind == "Certificate")
    assert cert.action == "update" and "issuance failed: Certificate Authority: DNS validation failed" in cert.note
    assert any("failed to issue" in w for w in again.warnings)
    # once the CA is happy again, apply retries the issuance and carries on
    sb.call(sb.hetzner.set_managed_certificate_failure, False)
    lb.apply(ctx, again)
    assert {c.check: c.status for c in lb.status(ctx).checks()}["lb-certificate"] == "ok"


def test_an_uploaded_certificate_comes_from_the_file_and_the_keyring(factory, tmp_path):
    sb = factory()
    issued = sb.ca.issue("platform.keybuzz.io", "platform-api.keybuzz.io")
    pem = tmp_path / "chain.pem"
    pem.write_text(issued.chain_pem)
    cfg = Config()
    cfg.load_balancer.certificate.type = "uploaded"
    cfg.load_balancer.certificate.cert_file = str(pem)
    journal = tmp_path / "j.jsonl"
    ctx, rec = engine_context(sb, journal, cfg, secrets=DictSecrets({"certificate-key": issued.key_pem}))
    p = lb.plan(ctx)
    cert = next(c for c in p.changes if c.kind == "Certificate")
    assert cert.action == "create" and cert.desired["type"] == "uploaded"
    lb.apply(ctx, p)
    live = hc(sb).certificates.get_by_name("keybuzz-platform")
    assert live.type == "uploaded" and live.fingerprint == lb.pem_fingerprint(issued.chain_pem)
    assert not lb.plan(ctx).has_changes  # reused by name and fingerprint
    key_line = issued.key_pem.splitlines()[1]
    assert key_line not in journal.read_text()
    assert all(key_line not in json.dumps(e.to_dict()) for e in rec.events)
    # no key in the keyring: apply says where it must come from, before uploading anything
    sb2 = factory()
    ctx2, _ = engine_context(sb2, None, cfg)
    p2 = lb.plan(ctx2)
    assert any("certificate-key" in w for w in p2.warnings)
    with pytest.raises(CloudError) as e:
        lb.apply(ctx2, p2)
    assert e.value.code == "no_key"


def test_hetzner_errors_become_operator_messages():
    port = explain(APIException("source_port_already_used", "port 80 is busy, redirect_http is enabled on another service", None), "adding service 80")
    assert "redirect_http" in port.message and "redirect_http false" in port.remediation
    net = explain(APIException("load_balancer_not_attached_to_network", "not attached", None), "adding target")
    assert "private network" in net.message and "load_balancer.network" in net.remediation
    uniq = explain(APIException("uniqueness_error", "name is already used", None), "creating Load Balancer keybuzz-lb")
    assert "already used" in uniq.message and "rename" in uniq.remediation
    locked = explain(APIException("locked", "load balancer 1 is locked", None), "updating")
    assert "locked" in locked.message and locked.code == "locked"
    bad = explain(APIException("invalid_input", "invalid input", {"fields": [{"name": "health_check.interval", "messages": ["must be <= 60"]}]}), "x")
    assert "health_check.interval: must be <= 60" in bad.message


def test_wait_action_times_out_with_a_clear_message(world, tmp_path):
    ctx, rec = engine_context(world, None)
    converge(ctx)
    world.call(lambda: setattr(world.hetzner.actions, "duration", 500.0))
    try:
        client = ctx.hcloud()
        action = client.load_balancers.change_algorithm(LoadBalancer(id=live_lb(world).id), LoadBalancerAlgorithm(type="round_robin"))
        with pytest.raises(CloudError) as e:
            hcloudio.wait_action(ctx, client, action, what="changing the algorithm", timeout=0.3)
        assert e.value.code == "action_timeout" and "still running after" in e.value.message
        assert [x.status for x in rec.of(ActionProgress)][-1] == "running"
    finally:
        world.call(lambda: setattr(world.hetzner.actions, "duration", (1.0, 3.0)))
        _finish_all(world)


def _finish_all(sb):
    """Finish running sandbox actions now (a test made them long on purpose)."""

    def finish():
        for a in list(sb.hetzner.actions.actions.values()):
            if a.status == "running":
                if a.handle is not None:
                    a.handle.cancel()
                sb.hetzner.actions._finish(a)

    sb.call(finish)


def test_a_live_service_read_back_equals_what_we_ask_for():
    class _Ctx:
        config = Config()

    svc = LoadBalancerService(
        protocol="http", listen_port=80, destination_port=31695, proxyprotocol=False,
        health_check=LoadBalancerHealthCheck(protocol="http", port=31695, interval=15, timeout=10, retries=3,
                                             http=LoadBalancerHealthCheckHttp(domain=None, path="/healthz", response="",
                                                                              status_codes=["2??", "3??"], tls=False)),
    )
    assert lb.live_service(svc, {}) == lb.desired_service(_Ctx(), "http", 31695, False, None)  # type: ignore[arg-type]
