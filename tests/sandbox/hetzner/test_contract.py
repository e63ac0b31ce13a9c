"""Contract: a broad sample of sandbox replies validates against cloud.spec.json + the overlay.

Every reply hcloud (and a few raw requests) receive during a full wizard-like run is recorded and
checked against the response schema of the matching operation and status; the overlay
(tests/support/hetzner_overlay.py) documents where the sandbox follows hcloud 2.27 instead of
the spec, and makes the keys hcloud indexes directly required. Error replies are also held to the
spec's error catalogue (status and code, the documented `details` shapes, RateLimit-* on 429,
Allow on 405): see tests/support/hetzner_contract.py.
"""

from __future__ import annotations

import hcloud
import pytest
import requests
from hcloud.certificates import Certificate
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerAlgorithm,
    LoadBalancerService,
    LoadBalancerServiceHttp,
    LoadBalancerTarget,
    LoadBalancerTargetIP,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import Network
from hcloud.servers import Server
from hcloud.zones import ZoneRecord, ZoneRRSet
from support import hetzner_contract as contract
from support.hetzner_flows import NODEPORT, WORKERS, create_lb, health_check, upload_cert
from support.hetzner_world import HetznerWorld

from keybuzz_tui.sandbox.hetzner.seeds import HetznerSettings

pytestmark = pytest.mark.skipif(not contract.SPEC_PATH.exists(), reason=f"{contract.SPEC_PATH} not available")


Recorder = contract.Recorder


def quietly(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except hcloud.HCloudException:
        pass


def run_everything(world: HetznerWorld, client: hcloud.Client, raw: requests.Session, rec: Recorder) -> None:
    client.locations.get_all()
    client.load_balancer_types.get_all()
    client.load_balancer_types.get_by_id(1)
    client.locations.get_by_id(1)
    client.server_types.get_all()
    client.servers.get_all(label_selector=WORKERS)
    client.servers.get_by_id(110)
    client.networks.get_all()
    client.networks.get_by_id(1)

    cert = upload_cert(client)
    managed = client.certificates.create_managed(name="managed", domain_names=["platform.keybuzz.io"])
    client.certificates.get_by_id(managed.certificate.id)  # pending
    managed.action.wait_until_finished()
    client.certificates.get_all()
    failing = client.certificates.create_managed(name="managed-bad", domain_names=["x.example.org"])
    quietly(failing.action.wait_until_finished)
    client.certificates.get_by_id(failing.certificate.id)  # failed, with status.error

    resp = client.load_balancers.create(
        name="keybuzz-lb",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        network=Network(id=1),
    )
    resp.action.wait_until_finished()
    lb = resp.load_balancer
    for svc in (
        LoadBalancerService(
            protocol="http",
            listen_port=80,
            destination_port=NODEPORT,
            proxyprotocol=False,
            health_check=health_check(),
        ),
        LoadBalancerService(
            protocol="https",
            listen_port=443,
            destination_port=NODEPORT,
            proxyprotocol=False,
            http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert.id)]),
            health_check=health_check(),
        ),
        LoadBalancerService(protocol="tcp", listen_port=2222, destination_port=22),
    ):
        lb.add_service(svc).wait_until_finished()
    lb.add_target(
        LoadBalancerTarget(
            type="label_selector",
            use_private_ip=True,
            label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
        )
    ).wait_until_finished()
    lb.add_target(
        LoadBalancerTarget(type="server", server=Server(id=100), use_private_ip=True)
    ).wait_until_finished()
    lb.add_target(
        LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip="127.0.99.1"))
    ).wait_until_finished()
    world.call(
        lambda: world.state.set_target_health(
            lb.id, 80, ("server", 110), "unhealthy", detail="unexpected_http_status", http_status_code=502
        )
    )
    client.load_balancers.get_by_id(lb.id)
    client.load_balancers.get_all()
    lb.get_actions()
    client.load_balancers.actions.get_all()
    raw.get(
        world.url(f"/load_balancers/{lb.id}/metrics"),
        params={"type": "open_connections", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:05:00Z"},
    )
    quietly(lb.add_service, LoadBalancerService(protocol="http", listen_port=80, destination_port=1))  # 412
    quietly(
        lb.add_target, LoadBalancerTarget(type="server", server=Server(id=100), use_private_ip=True)
    )  # 422
    lb.update(labels={"app": "keybuzz"})

    zone = client.zones.get("keybuzz.io")
    client.zones.get_all()
    r = client.zones.create_rrset(zone, name="platform", type="A", records=[ZoneRecord("127.0.30.1")])
    r.action.wait_until_finished()
    rrset = client.zones.get_rrset(zone, "platform", "A")
    client.zones.set_rrset_records(rrset, [ZoneRecord("127.0.30.2", comment="lb")]).wait_until_finished()
    client.zones.update_rrset_records(
        rrset, [ZoneRecord("127.0.30.2", comment="the LB")]
    ).wait_until_finished()
    client.zones.change_rrset_ttl(rrset, 300).wait_until_finished()
    client.zones.change_ttl(zone, 900).wait_until_finished()
    client.zones.get_rrset_all(zone)
    client.zones.update_rrset(rrset, labels={"a": "b"})
    client.zones.delete_rrset(rrset).action.wait_until_finished()
    zone.get_actions()

    fw = client.firewalls.create(
        name="fw", rules=[FirewallRule(direction="in", protocol="tcp", port="80", source_ips=["0.0.0.0/0"])]
    ).firewall
    for a in fw.set_rules(
        [FirewallRule(direction="in", protocol="tcp", port="30000-32767", source_ips=["0.0.0.0/0", "::/0"])]
    ):
        a.wait_until_finished()
    for a in fw.apply_to_resources(
        [
            FirewallResource(
                type="label_selector", label_selector=FirewallResourceLabelSelector("role=k3s-worker")
            )
        ]
    ):
        a.wait_until_finished()
    client.firewalls.get_all()
    client.servers.get_by_id(111)

    # errors of every family
    bad = world.client("bad-token")
    rec.attach(bad._client._session)
    quietly(bad.servers.get_all)
    quietly(client.load_balancers.get_by_id, 99999)
    raw.post(world.url("/load_balancers"), data=b"{oops")
    raw.get(world.url("/no/such/route/here"))  # not in the spec either: filtered below
    raw.post(world.url("/load_balancers"), json={"name": "", "load_balancer_type": 5})
    raw.get(world.url("/actions"), params={"id": [1, 2]})

    for lb_ in client.load_balancers.get_all():
        lb_.delete().action.wait_until_finished()
    for c in client.certificates.get_all():
        c.delete()


def test_replies_match_the_spec_plus_overlay(world: HetznerWorld) -> None:
    rec = Recorder()
    client = world.client()
    rec.attach(client._client._session)
    raw = requests.Session()
    raw.trust_env = False
    raw.headers.update(world.headers())
    rec.attach(raw)
    run_everything(world, client, raw, rec)

    checked = [r for r in rec.replies if contract.match_template(r.path) is not None]
    problems = [p for r in checked for p in contract.validate(r)]
    assert not problems, "\n".join(problems[:40])
    seen = {(r.method, contract.match_template(r.path), r.status) for r in checked}
    assert len(seen) >= 45, sorted(map(str, seen))
    statuses = {s for _, _, s in seen}
    assert {200, 201, 204, 400, 401, 404, 412, 422} <= statuses, statuses


def problems_of(rec: Recorder) -> list[str]:
    checked = [r for r in rec.replies if contract.match_template(r.path) is not None]
    return [p for r in checked for p in contract.validate(r)]


ACTION = 201
LB_ACTIONS = "/load_balancers/{id}/actions/"
RRSET_ACTIONS = "/zones/{id_or_name}/rrsets/{rr_name}/{rr_type}/actions/"


def test_lb_network_firewall_and_zone_operations_match_the_spec(world: HetznerWorld) -> None:
    """The operations the first run does not reach, each checked against its own 201 schema."""
    rec = Recorder()
    client = world.client()
    rec.attach(client._client._session)

    lb = create_lb(client, name="ops-lb", network=False)
    lb.attach_to_network(Network(id=1)).wait_until_finished()
    lb.change_algorithm(LoadBalancerAlgorithm(type="least_connections")).wait_until_finished()
    lb.change_type(LoadBalancerType(name="lb21")).wait_until_finished()
    lb.add_service(LoadBalancerService(protocol="tcp", listen_port=2222, destination_port=22)).wait_until_finished()
    lb.delete_service(LoadBalancerService(listen_port=2222)).wait_until_finished()
    target = LoadBalancerTarget(type="server", server=Server(id=110), use_private_ip=True)
    lb.add_target(target).wait_until_finished()
    lb.disable_public_interface().wait_until_finished()
    assert client.load_balancers.get_by_id(lb.id).public_net.enabled is False
    lb.enable_public_interface().wait_until_finished()
    lb.remove_target(target).wait_until_finished()
    lb.detach_from_network(Network(id=1)).wait_until_finished()
    got = client.load_balancers.get_by_id(lb.id)
    assert got.algorithm.type == "least_connections" and got.load_balancer_type.name == "lb21"
    assert (got.services, got.targets, got.private_net) == ([], [], [])
    assert got.public_net.enabled is True

    fw = client.firewalls.create(name="ops-fw").firewall
    for a in fw.apply_to_resources([FirewallResource(type="server", server=Server(id=110))]):
        a.wait_until_finished()
    for a in fw.remove_from_resources([FirewallResource(type="server", server=Server(id=110))]):
        a.wait_until_finished()
    assert client.firewalls.get_by_id(fw.id).applied_to == []

    created = client.zones.create(
        name="example-ops.io",
        mode="primary",
        ttl=600,
        rrsets=[ZoneRRSet(name="www", type="A", records=[ZoneRecord("127.0.40.1")])],
    )
    created.action.wait_until_finished()
    zone = created.zone
    www = ZoneRRSet(name="www", type="A", zone=zone)
    client.zones.add_rrset_records(www, [ZoneRecord("127.0.40.2")], ttl=120).wait_until_finished()
    client.zones.remove_rrset_records(www, [ZoneRecord("127.0.40.1")]).wait_until_finished()
    assert [r.value for r in client.zones.get_rrset(zone, "www", "A").records] == ["127.0.40.2"]

    problems = problems_of(rec)
    assert not problems, "\n".join(problems[:40])
    wanted = {("POST", LB_ACTIONS + cmd, ACTION) for cmd in (
        "attach_to_network", "detach_from_network", "change_algorithm", "change_type", "delete_service",
        "remove_target", "enable_public_interface", "disable_public_interface",
    )} | {
        ("POST", "/firewalls/{id}/actions/remove_from_resources", ACTION),
        ("POST", RRSET_ACTIONS + "add_records", ACTION),
        ("POST", RRSET_ACTIONS + "remove_records", ACTION),
        ("POST", "/zones", 201),
    }
    assert wanted <= rec.seen(), sorted(map(str, wanted - rec.seen()))


def test_error_replies_match_the_catalogue(world: HetznerWorld) -> None:
    """403, 405, 409, 423 and 429 (and 401 token_readonly) as the catalogue documents them:
    status and code, the details shape of the code, and the headers the spec promises."""
    rec = Recorder()
    client = world.client()
    rec.attach(client._client._session)
    raw = requests.Session()
    raw.trust_env = False
    raw.headers.update(world.headers())
    rec.attach(raw)
    ro = world.client(world.settings.read_only_token)
    rec.attach(ro._client._session)

    quietly(ro.load_balancers.create, name="ro", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1"))
    lb = create_lb(client)
    quietly(client.load_balancers.create, name=lb.name, load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1"))
    for port in range(81, 86):
        lb.add_service(LoadBalancerService(protocol="tcp", listen_port=port, destination_port=port)).wait_until_finished()
    quietly(lb.add_service, LoadBalancerService(protocol="tcp", listen_port=86, destination_port=86))  # 6th on lb11
    raw.patch(world.url("/load_balancers"), json={})
    raw.delete(world.url(f"/load_balancers/{lb.id}/actions/add_service"))
    unknown_server = {"type": "server", "server": {"id": 999}}
    raw.post(world.url("/firewalls"), json={"name": "fw-x", "apply_to": [unknown_server]})
    fw = client.firewalls.create(name="fw-y").firewall
    raw.post(world.url(f"/firewalls/{fw.id}/actions/apply_to_resources"), json={"apply_to": [unknown_server]})
    raw.post(world.url(f"/firewalls/{fw.id}/actions/remove_from_resources"), json={"remove_from": [unknown_server]})

    locked_world = HetznerWorld(settings=HetznerSettings(action_duration=20.0), speed=10.0).start()  # 2 s actions
    try:
        slow = locked_world.client()
        rec.attach(slow._client._session)
        slow_lb = slow.load_balancers.create(name="l", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1")).load_balancer
        quietly(slow_lb.add_service, LoadBalancerService(protocol="tcp", listen_port=81, destination_port=81))
        quietly(slow_lb.delete)
    finally:
        locked_world.stop()

    limited_world = HetznerWorld(settings=HetznerSettings(rate_limit_per_hour=2)).start()
    try:
        limited = limited_world.client()
        rec.attach(limited._client._session)
        for _ in range(3):
            quietly(limited.locations.get_all)
    finally:
        limited_world.stop()

    problems = problems_of(rec)
    assert not problems, "\n".join(problems[:40])
    codes = {(r.status, r.body["error"]["code"]) for r in rec.replies if r.status >= 400}
    assert {
        (401, "token_readonly"),
        (403, "resource_limit_exceeded"),
        (405, "method_not_allowed"),
        (409, "uniqueness_error"),
        (423, "locked"),
        (429, "rate_limit_exceeded"),
        (422, "firewall_resource_not_found"),  # POST /firewalls' table
        (404, "firewall_resource_not_found"),  # apply_to_resources' and remove_from_resources' tables
    } <= codes, codes
    assert sum(1 for r in rec.replies if r.status == 405) == 2


def _error(status: int, code: str, details: object = None, **headers: str) -> contract.Recorded:
    hdrs = {"ratelimit-limit": "3600", "ratelimit-remaining": "3599", "ratelimit-reset": "9999999999"}
    hdrs.update({k.replace("_", "-").lower(): v for k, v in headers.items()})
    body = {"error": {"code": code, "message": "m", "details": details}}
    return contract.Recorded("POST", "/load_balancers", status, body, hdrs)


@pytest.mark.parametrize(
    ("rec", "fragment"),
    [
        (_error(403, "token_readonly"), "not documented with status 403"),
        (_error(422, "locked"), "not documented with status 422"),
        (_error(409, "uniqueness_error"), "details of uniqueness_error"),
        (_error(409, "uniqueness_error", {"fields": []}), "details of uniqueness_error"),
        (_error(403, "resource_limit_exceeded", {"fields": [{"name": "max_targets"}]}), "details of resource_limit_exceeded"),
        (_error(422, "invalid_input", {"fields": [{"name": "name"}]}), "details of invalid_input"),
        (_error(429, "rate_limit_exceeded", ratelimit_remaining="5"), "RateLimit-Remaining is 5"),
        (_error(429, "rate_limit_exceeded", ratelimit_reset="1000"), "in the past"),
        (contract.Recorded("POST", "/load_balancers", 429, {"error": {"code": "rate_limit_exceeded", "message": "m", "details": None}}, {}), "ratelimit-limit missing"),
        (contract.Recorded("PATCH", "/load_balancers", 405, {"error": {"code": "method_not_allowed", "message": "m", "details": None}}, {"allow": "GET"}), "Allow"),
        (_error(412, "source_port_already_used"), None),  # in POST /load_balancers' own table
        (_error(403, "resource_limit_exceeded", {"limits": [{"name": "max_targets"}]}), None),
    ],
)
def test_the_error_checks_would_catch_a_wrong_reply(rec: contract.Recorded, fragment: str | None) -> None:
    problems = contract.validate(rec)
    if fragment is None:
        assert problems == []
    else:
        assert any(fragment in p for p in problems), problems


def test_overlay_catches_what_would_crash_hcloud() -> None:
    """The tightened schema rejects an http service without redirect_http (2.7 item 3)."""
    schema = contract.response_schema("get", "/load_balancers/{id}", "200")
    lb = {
        "load_balancer": {
            "id": 1,
            "name": "x",
            "public_net": {
                "enabled": True,
                "ipv4": {"ip": None, "dns_ptr": None},
                "ipv6": {"ip": None, "dns_ptr": None},
            },
            "private_net": [],
            "location": {
                "id": 1,
                "name": "fsn1",
                "description": "d",
                "country": "DE",
                "city": "F",
                "latitude": 1.0,
                "longitude": 1.0,
                "network_zone": "eu-central",
            },
            "load_balancer_type": {
                "id": 1,
                "name": "lb11",
                "description": "LB11",
                "max_connections": 1,
                "max_services": 5,
                "max_targets": 25,
                "max_assigned_certificates": 10,
                "deprecated": None,
                "prices": [],
            },
            "protection": {"delete": False},
            "labels": {},
            "created": "2026-01-01T00:00:00Z",
            "services": [
                {
                    "protocol": "http",
                    "listen_port": 80,
                    "destination_port": 80,
                    "proxyprotocol": False,
                    "health_check": {
                        "protocol": "tcp",
                        "port": 80,
                        "interval": 15,
                        "timeout": 10,
                        "retries": 3,
                    },
                    "http": {
                        "cookie_name": "c",
                        "cookie_lifetime": 300,
                        "timeout_idle": 50,
                        "sticky_sessions": False,
                    },
                }
            ],
            "targets": [],
            "algorithm": {"type": "round_robin"},
            "outgoing_traffic": None,
            "ingoing_traffic": None,
            "included_traffic": 1,
        }
    }
    assert list(OAS30(schema).iter_errors(lb))
    lb["load_balancer"]["services"][0]["http"].update(redirect_http=False, certificates=[])
    assert not list(OAS30(schema).iter_errors(lb))


def OAS30(schema):
    from openapi_schema_validator import OAS30Validator

    return OAS30Validator(schema)
