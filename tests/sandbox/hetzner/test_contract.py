"""Contract: a broad sample of sandbox replies validates against cloud.spec.json + the overlay.

Every reply hcloud (and a few raw requests) receive during a full wizard-like run is recorded and
checked against the response schema of the matching operation and status; the overlay
(tests/support/hetzner_overlay.py) documents where the sandbox follows hcloud 2.27 instead of
the spec, and makes the keys hcloud indexes directly required.
"""

from __future__ import annotations

import json
from urllib.parse import urlparse

import hcloud
import pytest
import requests
from hcloud.certificates import Certificate
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerService,
    LoadBalancerServiceHttp,
    LoadBalancerTarget,
    LoadBalancerTargetIP,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import Network
from hcloud.servers import Server
from hcloud.zones import ZoneRecord
from support import hetzner_contract as contract
from support.hetzner_flows import NODEPORT, WORKERS, health_check, upload_cert
from support.hetzner_world import HetznerWorld

pytestmark = pytest.mark.skipif(not contract.SPEC_PATH.exists(), reason=f"{contract.SPEC_PATH} not available")


class Recorder:
    def __init__(self) -> None:
        self.replies: list[contract.Recorded] = []

    def hook(self, resp: requests.Response, *args: object, **kwargs: object) -> None:
        path = urlparse(resp.url).path
        assert path.startswith("/v1")
        body = json.loads(resp.content) if resp.content else None
        self.replies.append(contract.Recorded(resp.request.method or "GET", path[3:], resp.status_code, body))

    def attach(self, session: requests.Session) -> None:
        session.hooks["response"].append(self.hook)


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
