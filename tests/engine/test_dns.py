"""The DNS step: rrsets through the sandbox's Hetzner zones API, answers checked with dnspython
against the sandbox's authoritative server (never the OS resolver)."""

from __future__ import annotations

import json
import socket

import pytest
from support import sandboxes
from support.engine_fixtures import engine_context, set_dns_a

from keybuzz_tui.config import App, Config
from keybuzz_tui.engine import dns, lb
from keybuzz_tui.engine.dns import DNSAnswer
from keybuzz_tui.events import ActionProgress, CheckResult, Info


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    sb = sandboxes.start(tmp_path_factory.mktemp("dnsworld"))
    ctx, _ = engine_context(sb, None)
    p = lb.plan(ctx)
    lb.apply(ctx, p)
    yield sb
    sb.stop()


def lb_ips(sb):
    ctx, _ = engine_context(sb, None)
    ips = lb.addresses(ctx)
    assert ips
    return ips


def converge(ctx, ips):
    p = dns.plan(ctx, ips)
    if p.has_changes:
        dns.apply(ctx, p)
    return p


def summary(p):
    return sorted((c.action, c.kind, c.name) for c in p.changes)


def test_records_are_created_waited_for_and_answered(world, tmp_path):
    ips = lb_ips(world)
    journal = tmp_path / "j.jsonl"
    ctx, rec = engine_context(world, journal)
    converge(ctx, ips)  # whatever an earlier test left, then check from a known state
    answers = dns.check(ctx, ips)
    assert {(a.host, a.type, a.verdict) for a in answers} == {
        ("platform.keybuzz.io", "A", "ok"), ("platform-api.keybuzz.io", "A", "ok")}
    assert all(a.authoritative == ips and a.resolver == ips for a in answers)
    assert [e.status for e in rec.of(CheckResult)] == ["ok", "ok"]
    # the sandbox's own resolver (dnspython, pointed at its server) agrees
    r = world.resolver()
    assert [x.to_text() for x in r.resolve("platform.keybuzz.io", "A")] == ips
    again = dns.plan(ctx, ips)
    assert not again.has_changes and summary(again) == [
        ("unchanged", "A", "platform-api.keybuzz.io"), ("unchanged", "A", "platform.keybuzz.io")]


def test_a_fresh_zone_gets_both_records_with_actions_and_journal(tmp_path):
    sb = sandboxes.start(tmp_path / "sb")
    try:
        journal = tmp_path / "j.jsonl"
        ctx, rec = engine_context(sb, journal)
        ips = ["127.0.20.7"]
        p = dns.plan(ctx, ips)
        assert summary(p) == [("create", "A", "platform-api.keybuzz.io"), ("create", "A", "platform.keybuzz.io")]
        created = next(c for c in p.changes if c.name == "platform.keybuzz.io")
        assert created.desired == {"zone": "keybuzz.io", "name": "platform", "type": "A", "ttl": 300, "records": ips}
        assert dns.check(ctx, ips)[0].verdict == "missing"
        dns.apply(ctx, p)
        assert {e.command for e in rec.of(ActionProgress) if e.status == "success"} == {"create_rrset"}
        assert [a.verdict for a in dns.check(ctx, ips)] == ["ok", "ok"]
        lines = [json.loads(x) for x in journal.read_text().splitlines()]
        assert sorted((x["kind"], x["name"]) for x in lines if x["event"] == "change") == [
            ("A", "platform-api.keybuzz.io"), ("A", "platform.keybuzz.io")]
        assert sb.hcloud_token not in journal.read_text()
        rr = sb.hcloud_client().zones.get_rrset(sb.hcloud_client().zones.get("keybuzz.io"), "platform", "A")
        assert rr.ttl == 300 and rr.labels == {"managed-by": "keybuzz-tui"}
    finally:
        sb.stop()


def test_a_stale_record_is_detected_and_fixed(world, tmp_path):
    ips = lb_ips(world)
    ctx, rec = engine_context(world, tmp_path / "j.jsonl")
    converge(ctx, ips)
    old = "127.0.20.99"
    set_dns_a(world, "platform.keybuzz.io", old)
    answers = {a.host: a for a in dns.check(ctx, ips)}
    stale = answers["platform.keybuzz.io"]
    assert stale.verdict == "stale" and stale.status == "fail"
    assert f"points at {old}" in stale.detail and "stale record" in stale.detail and ips[0] in stale.detail
    assert "keybuzz-tui apply" in stale.remediation
    assert answers["platform-api.keybuzz.io"].verdict == "ok"
    p = dns.plan(ctx, ips)
    upd = [c for c in p.changes if c.action == "update"]
    assert [(c.name, c.lines()) for c in upd] == [("platform.keybuzz.io", [f"~ .records: {[old]!r} -> {ips!r}"])]
    assert f"stale: points at {old}" in upd[0].note
    seen = len(rec.events)
    dns.apply(ctx, p)
    fixed = [e for e in rec.events[seen:] if isinstance(e, ActionProgress) and e.status == "success"]
    assert {e.command for e in fixed} == {"set_rrset_records"}
    assert [a.verdict for a in dns.check(ctx, ips)] == ["ok", "ok"]


def test_a_ttl_change_is_an_update_of_the_rrset(world, tmp_path):
    ips = lb_ips(world)
    ctx, _ = engine_context(world, None)
    converge(ctx, ips)
    cfg = Config()
    cfg.dns.ttl = 600
    ctx2, rec = engine_context(world, None, cfg)
    p = dns.plan(ctx2, ips)
    assert [(c.name, c.lines()) for c in p.changes if c.action == "update"] == [
        ("platform-api.keybuzz.io", ["~ .ttl: 300 -> 600"]), ("platform.keybuzz.io", ["~ .ttl: 300 -> 600"])]
    dns.apply(ctx2, p)
    assert {e.command for e in rec.of(ActionProgress) if e.status == "success"} == {"change_rrset_ttl"}
    assert not dns.plan(ctx2, ips).has_changes
    converge(ctx, ips)


def test_aaaa_records_follow_the_lb_ipv6_and_leave_with_it(world, tmp_path):
    v4 = lb_ips(world)
    ctx, _ = engine_context(world, None)
    converge(ctx, v4)
    with_v6 = v4 + ["2001:db8:1::1"]
    p = dns.plan(ctx, with_v6)
    assert [(c.kind, c.name) for c in p.changes if c.action == "create"] == [
        ("AAAA", "platform-api.keybuzz.io"), ("AAAA", "platform.keybuzz.io")]
    dns.apply(ctx, p)
    answers = dns.check(ctx, with_v6)
    assert {(a.type, a.verdict) for a in answers} == {("A", "ok"), ("AAAA", "ok")}
    # the LB lost its IPv6 (or dns.ipv6 turned off): our AAAA records go, IPv6 clients would go elsewhere
    back = dns.plan(ctx, v4)
    assert [(c.action, c.kind) for c in back.changes if c.action == "delete"] == [("delete", "AAAA"), ("delete", "AAAA")]
    dns.apply(ctx, back)
    assert not dns.plan(ctx, v4).has_changes
    off = Config()
    off.dns.ipv6 = False
    assert [r.type for r in dns.desired_records(off, with_v6)] == ["A", "A"]


def test_manual_mode_prints_the_exact_records_and_changes_nothing(world):
    ips = ["203.0.113.10"]
    cfg = Config()
    cfg.dns.mode = "manual"
    ctx, rec = engine_context(world, None, cfg)
    ctx.endpoints.hcloud_token_env = None  # manual mode needs no Hetzner token at all
    ctx._hcloud = None
    p = dns.plan(ctx, ips)
    assert summary(p) == [("manual", "A", "platform-api.keybuzz.io"), ("manual", "A", "platform.keybuzz.io")]
    assert not p.has_changes
    front = next(c for c in p.changes if c.name == "platform.keybuzz.io")
    assert front.desired["zone_lines"] == ["platform  300 IN A 203.0.113.10"]
    assert "platform  300 IN A 203.0.113.10" in front.note
    assert dns.zone_file(cfg, ips) == [
        "$ORIGIN keybuzz.io.", "platform-api  300 IN A 203.0.113.10", "platform  300 IN A 203.0.113.10"]
    dns.apply(ctx, p)
    assert any("platform  300 IN A 203.0.113.10" in e.message for e in rec.of(Info))


def test_a_zone_not_at_hetzner_falls_back_to_manual_records(world):
    cfg = Config()
    cfg.dns.zone = "keybuzz.dev"
    cfg.apps = [App(name="keybuzz-front", image="ghcr.io/keybuzz/front:1.4.2", port=3000, node_port=30000, host="keybuzz.dev")]
    ctx, _ = engine_context(world, None, cfg)
    p = dns.plan(ctx, ["203.0.113.10"])
    assert summary(p) == [("manual", "A", "keybuzz.dev")]
    assert p.changes[0].desired["zone_lines"] == ["@  300 IN A 203.0.113.10"]
    assert any("not a DNS zone of this Hetzner project" in w for w in p.warnings)


def test_an_unreachable_authoritative_server_is_an_error_with_its_reason(world):
    ips = lb_ips(world)
    ctx, _ = engine_context(world, None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        silent = s.getsockname()  # bound, never answers: a timeout, not a refusal
        ctx.endpoints.dns_server = silent
        answers = dns.check(ctx, ips, timeout=0.2)
    assert {a.verdict for a in answers} == {"error"}
    assert all("no answer from the zone's authoritative server" in a.detail and "Timeout" in a.detail for a in answers)


def test_an_old_cached_answer_at_the_resolver_is_called_propagating():
    a = DNSAnswer("platform.keybuzz.io", "A", ["198.51.100.1"])
    dns._judge(a, ["198.51.100.1"], "", ["198.51.100.7"], "", "10.0.0.2:53", Config())
    assert a.verdict == "propagating" and a.status == "warn" and "198.51.100.7" in a.detail
    b = DNSAnswer("platform.keybuzz.io", "A", ["198.51.100.1"])
    dns._judge(b, [], "", [], "", "the system resolver", Config())
    assert b.verdict == "missing" and b.status == "fail"


def test_without_a_known_server_the_zones_nameservers_are_resolved_through_the_resolver(world):
    # production path: no Endpoints.dns_server, so the nameservers Hetzner assigned to the zone
    # are looked up - here through the sandbox resolver, which does not serve hetzner.com
    ips = lb_ips(world)
    ctx, _ = engine_context(world, None)
    ctx.endpoints.dns_server = None
    assert ctx.endpoints.resolver is not None  # never the OS resolver in tests
    assert dns.authoritative_servers(ctx, timeout=0.5) == []
    answers = dns.check(ctx, ips, timeout=0.5)
    assert {a.verdict for a in answers} == {"error"}
    assert all("no authoritative server known" in a.detail for a in answers)
    cfg = Config()
    cfg.dns.resolver = "{}:{}".format(*world.dns.address)
    ctx2, _ = engine_context(world, None, cfg)
    ctx2.endpoints.resolver = None  # dns.resolver from keybuzz.yaml is used instead
    assert dns._system_resolver(ctx2)[0] == tuple(world.dns.address)


def test_the_nameservers_hetzner_assigned_to_the_zone_are_found_through_the_resolver(world):
    """The production path once the names resolve: the nameservers Hetzner assigned to the zone
    (the zone's NS records for the validation board) are looked up through the resolver, and
    their addresses (port 53) become the servers asked. The sandbox resolver is made to serve
    hetzner.com for the test; nothing listens on those addresses, so the answer is an error that
    names the server, never a silent fallback."""
    from hcloud.zones import ZoneRecord

    from keybuzz_tui.engine.checks_state import ValidationState

    hc = world.hcloud_client(poll_interval=0.02)
    hc._client._session.trust_env = False
    zone = None
    try:
        zone = hc.zones.create(name="hetzner.com", mode="primary", ttl=300, rrsets=[]).zone
        for name, ip in (("hydrogen.ns", "127.77.0.1"), ("oxygen.ns", "127.77.0.2")):
            hc.zones.create_rrset(zone, name=name, type="A", records=[ZoneRecord(value=ip)]).action.wait_until_finished(max_retries=2000)
        ctx, _ = engine_context(world, None)
        ctx.endpoints.dns_server = None
        assert dns.authoritative_servers(ctx, timeout=0.5) == [("127.77.0.1", 53), ("127.77.0.2", 53)]
        answers = dns.check(ctx, lb_ips(world), timeout=0.3)
        assert {a.verdict for a in answers} == {"error"}
        assert all("127.77.0.1:53" in a.detail and "127.77.0.2:53" in a.detail for a in answers), [a.detail for a in answers]  # each server tried
        state = ValidationState(ctx, http_timeout=1.0)
        try:
            server, how = state.authoritative_server()
            assert server == ("127.77.0.1", 53) and how == "hydrogen.ns.hetzner.com (NS of keybuzz.io)", (server, how)
        finally:
            state.close()
    finally:
        if zone is not None:
            hc.zones.delete(zone)
        hc._client._session.close()
