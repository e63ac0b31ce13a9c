"""DNS zones/rrsets (and what the authoritative DNS serves), firewalls and their application."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import hcloud
import pytest
from hcloud import APIException
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.servers import Server
from hcloud.zones import ZoneRecord, ZoneRRSet
from support.hetzner_world import HetznerWorld

from keybuzz_tui.sandbox.dns import resolver_for
from keybuzz_tui.sandbox.hetzner.seeds import HETZNER_NAMESERVERS, HetznerSettings


def served(world: HetznerWorld, name: str, rtype: str = "A") -> tuple[str, ...] | None:
    for zone in world.call(world.state.dns_snapshot):
        for rr in zone.rrsets:
            if rr.name == name and rr.type == rtype:
                return rr.records
    return None


def test_zone_rrsets_create_set_records_change_ttl(world: HetznerWorld, client: hcloud.Client) -> None:
    zone = client.zones.get("keybuzz.io")
    assert zone.name == "keybuzz.io" and zone.mode == "primary"
    assert client.zones.get(str(zone.id)).name == "keybuzz.io"
    apex = {(r.name, r.type) for r in client.zones.get_rrset_all(zone)}
    assert {("@", "SOA"), ("@", "NS")} <= apex

    resp = client.zones.create_rrset(
        zone, name="platform", type="A", ttl=300, records=[ZoneRecord("127.0.30.1", comment="keybuzz LB")]
    )
    assert resp.rrset.id == "platform/A"
    resp.action.wait_until_finished()
    assert served(world, "platform") == ("127.0.30.1",)

    rrset = client.zones.get_rrset(zone, "platform", "A")
    client.zones.set_rrset_records(rrset, [ZoneRecord("127.0.30.2")]).wait_until_finished()
    client.zones.change_rrset_ttl(rrset, 120).wait_until_finished()
    got = client.zones.get_rrset(zone, "platform", "A")
    assert [r.value for r in got.records] == ["127.0.30.2"] and got.ttl == 120
    assert served(world, "platform") == ("127.0.30.2",)

    client.zones.add_rrset_records(
        ZoneRRSet(name="platform-api", type="A", zone=zone), [ZoneRecord("127.0.30.2")]
    ).wait_until_finished()
    assert served(world, "platform-api") == ("127.0.30.2",)
    client.zones.change_ttl(zone, 600).wait_until_finished()
    assert client.zones.get("keybuzz.io").ttl == 600
    assert world.call(world.state.dns_snapshot)[0].ttl == 600

    with pytest.raises(APIException) as e:
        client.zones.get_rrset(zone, "nope", "A")
    assert e.value.code == "not_found"
    with pytest.raises(APIException) as e:
        client.zones.create_rrset(zone, name="platform", type="A", records=[ZoneRecord("127.0.30.9")])
    assert e.value.code == "uniqueness_error"
    with pytest.raises(APIException) as e:
        client.zones.create_rrset(zone, name="bad", type="A", records=[ZoneRecord("not-an-ip")])
    assert e.value.code == "invalid_input"

    client.zones.delete_rrset(got).action.wait_until_finished()
    assert served(world, "platform") is None
    soa = client.zones.get_rrset(zone, "@", "SOA").records[0].value.split()
    assert int(soa[2]) > 2000000000  # the serial moved with every change


def test_dns_serves_a_change_only_when_its_action_succeeds() -> None:
    world = HetznerWorld(settings=HetznerSettings(action_duration=6.0), speed=4.0).start()  # 1.5 s
    try:
        client = world.client()
        zone = client.zones.get("keybuzz.io")
        resp = client.zones.create_rrset(zone, name="platform", type="A", records=[ZoneRecord("127.0.30.1")])
        assert client.zones.get("keybuzz.io").status == "updating"
        assert served(world, "platform") is None  # the API shows it, the nameservers do not yet
        resp.action.wait_until_finished()
        assert served(world, "platform") == ("127.0.30.1",)
        assert client.zones.get("keybuzz.io").status == "ok"
    finally:
        world.stop()


def addresses(res: dns.resolver.Resolver, name: str) -> list[str]:
    return sorted(r.address for r in res.resolve(name, "A"))


def test_a_created_zone_is_served_by_the_dns_server(world: HetznerWorld, client: hcloud.Client) -> None:
    host, port = world.start_dns()
    res = resolver_for((host, port))
    before = dns.query.udp(dns.message.make_query("www.newzone.example.", "A"), host, port=port, timeout=2)
    assert before.rcode() == dns.rcode.REFUSED  # not a zone of this server (yet)

    created = client.zones.create(
        name="newzone.example",
        mode="primary",
        ttl=900,
        rrsets=[
            ZoneRRSet(name="www", type="A", ttl=300, records=[ZoneRecord("127.0.40.1"), ZoneRecord("127.0.40.2")]),
            ZoneRRSet(name="@", type="TXT", records=[ZoneRecord('"v=spf1 -all"')]),
            ZoneRRSet(name="app", type="CNAME", records=[ZoneRecord("www")]),
        ],
    )
    assert created.zone.name == "newzone.example"
    created.action.wait_until_finished()

    www = res.resolve("www.newzone.example", "A")
    assert sorted(r.address for r in www) == ["127.0.40.1", "127.0.40.2"] and www.rrset.ttl == 300
    assert www.response.flags & dns.flags.AA
    txt = res.resolve("newzone.example", "TXT")
    assert [b"".join(r.strings) for r in txt] == [b"v=spf1 -all"] and txt.rrset.ttl == 900  # the zone's TTL
    app = res.resolve("app.newzone.example", "A")
    assert app.canonical_name.to_text() == "www.newzone.example." and sorted(r.address for r in app) == ["127.0.40.1", "127.0.40.2"]
    ns = res.resolve("newzone.example", "NS")
    assert sorted(r.target.to_text() for r in ns) == sorted(f"{n}." for n in HETZNER_NAMESERVERS)
    assert res.resolve("newzone.example", "SOA")[0].mname.to_text() == f"{HETZNER_NAMESERVERS[0]}."
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("nope.newzone.example", "A")
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("www.newzone.example", "AAAA")

    zone = client.zones.get("newzone.example")
    client.zones.create_rrset(zone, name="api", type="A", records=[ZoneRecord("127.0.40.3")]).action.wait_until_finished()
    assert addresses(res, "api.newzone.example") == ["127.0.40.3"]
    assert addresses(res, "www.newzone.example") == ["127.0.40.1", "127.0.40.2"]  # the zone's others stay


def test_remove_records_takes_the_record_out_of_dns_answers(world: HetznerWorld, client: hcloud.Client) -> None:
    res = resolver_for(world.start_dns())
    zone = client.zones.get("keybuzz.io")
    client.zones.create_rrset(
        zone, name="platform", type="A", ttl=60, records=[ZoneRecord("127.0.30.1"), ZoneRecord("127.0.30.2")]
    ).action.wait_until_finished()
    assert addresses(res, "platform.keybuzz.io") == ["127.0.30.1", "127.0.30.2"]

    rrset = client.zones.get_rrset(zone, "platform", "A")
    client.zones.remove_rrset_records(rrset, [ZoneRecord("127.0.30.1")]).wait_until_finished()
    assert addresses(res, "platform.keybuzz.io") == ["127.0.30.2"]
    assert [r.value for r in client.zones.get_rrset(zone, "platform", "A").records] == ["127.0.30.2"]

    # the last record: the rrset goes away with it (the spec's "for convenience"), so does the name
    client.zones.remove_rrset_records(rrset, [ZoneRecord("127.0.30.2")]).wait_until_finished()
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("platform.keybuzz.io", "A")
    with pytest.raises(APIException) as e:
        client.zones.get_rrset(zone, "platform", "A")
    assert e.value.code == "not_found"


def test_firewall_set_rules_apply_and_remove(world: HetznerWorld, client: hcloud.Client) -> None:
    resp = client.firewalls.create(name="keybuzz-nodeports", labels={"app": "keybuzz"})
    fw = resp.firewall
    rules = [
        FirewallRule(
            direction="in",
            protocol="tcp",
            port="30000-32767",
            source_ips=["0.0.0.0/0", "::/0"],
            description="NodePorts",
        ),
        FirewallRule(direction="in", protocol="icmp", source_ips=["0.0.0.0/0"]),
    ]
    actions = fw.set_rules(rules)
    assert [a.command for a in actions] == ["set_firewall_rules"]
    for a in actions:
        a.wait_until_finished()
    got = client.firewalls.get_by_id(fw.id)
    assert [(r.protocol, r.port, r.description) for r in got.rules] == [
        ("tcp", "30000-32767", "NodePorts"),
        ("icmp", None, None),
    ]

    actions = fw.apply_to_resources(
        [
            FirewallResource(
                type="label_selector",
                label_selector=FirewallResourceLabelSelector(selector="role=k3s-worker"),
            ),
            FirewallResource(type="server", server=Server(id=100)),
        ]
    )
    assert {a.command for a in actions} == {"apply_firewall"}
    raw = client.request("GET", "/servers/110")["server"]["public_net"]["firewalls"]
    assert raw == [{"id": fw.id, "status": "pending"}]
    for a in actions:
        a.wait_until_finished()
    raw = client.request("GET", "/servers/110")["server"]["public_net"]["firewalls"]
    assert raw == [{"id": fw.id, "status": "applied"}]
    rules_seen = world.call(world.state.effective_firewall_rules, 110)
    assert [r.port for r in rules_seen] == ["30000-32767", None]

    got = client.firewalls.get_by_name("keybuzz-nodeports")
    sel = next(a for a in got.applied_to if a.type == "label_selector")
    assert [r.server.id for r in sel.applied_to_resources] == [110, 111, 112, 113, 114]

    with pytest.raises(APIException) as e:
        fw.remove_from_resources([FirewallResource(type="server", server=Server(id=110))])
    assert e.value.code == "firewall_managed_by_label_selector"
    with pytest.raises(APIException) as e:
        fw.apply_to_resources([FirewallResource(type="server", server=Server(id=100))])
    assert e.value.code == "firewall_already_applied"
    with pytest.raises(APIException) as e:
        fw.delete()
    assert e.value.code == "resource_in_use"
    for a in fw.remove_from_resources(
        [
            FirewallResource(type="server", server=Server(id=100)),
            FirewallResource(
                type="label_selector",
                label_selector=FirewallResourceLabelSelector(selector="role=k3s-worker"),
            ),
        ]
    ):
        a.wait_until_finished()
    assert world.call(world.state.effective_firewall_rules, 110) == ()
    assert fw.delete() is True
    assert client.firewalls.get_all() == []


def test_firewall_rule_validation(client: hcloud.Client) -> None:
    fw = client.firewalls.create(name="fw").firewall
    with pytest.raises(APIException) as e:
        fw.set_rules([FirewallRule(direction="in", protocol="tcp", source_ips=["0.0.0.0/0"])])
    assert e.value.code == "invalid_input"
    assert e.value.details["fields"][0]["name"] == "rules[0].port"
    with pytest.raises(APIException) as e:
        fw.set_rules([FirewallRule(direction="in", protocol="tcp", port="80", source_ips=["10.0.0.1"])])
    assert e.value.details["fields"][0]["name"] == "rules[0].source_ips"


def test_action_list_by_ids_and_resource(world: HetznerWorld, client: hcloud.Client) -> None:
    zone = client.zones.get("keybuzz.io")
    a1 = client.zones.create_rrset(zone, name="a", type="A", records=[ZoneRecord("127.0.0.5")]).action
    a2 = client.zones.create_rrset(zone, name="b", type="TXT", records=[ZoneRecord('"hello"')]).action
    a1.wait_until_finished()
    a2.wait_until_finished()
    got = client.request("GET", "/actions", params={"id": [a1.id, a2.id]})["actions"]
    assert [a["id"] for a in got] == [a1.id, a2.id]
    assert [a.id for a in zone.get_actions()] == [a1.id, a2.id]
    assert client.zones.actions.get_by_id(a1.id).status == "success"
