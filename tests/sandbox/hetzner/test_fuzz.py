"""Hypothesis fuzz: random bodies and queries never produce a 500, and every error is the JSON shape."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.hetzner_flows import create_lb, upload_cert
from support.hetzner_world import HetznerWorld

from keybuzz_tui.sandbox.hetzner.seeds import HetznerSettings

# HETZNER_FUZZ_EXAMPLES raises the budget for a bug hunt; the example database stays off so runs
# leave nothing behind in the checkout.
FUZZ = settings(
    max_examples=int(os.environ.get("HETZNER_FUZZ_EXAMPLES", "120")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "http",
            "https",
            "tcp",
            "server",
            "ip",
            "label_selector",
            "A",
            "in",
            "out",
            "/healthz",
            "role=k3s-worker",
            "127.0.0.1",
            "0.0.0.0/0",
            "80",
            "30000-32767",
            "lb11",
            "fsn1",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def mostly(good: st.SearchStrategy[Any], junk: st.SearchStrategy[Any] = scalars) -> st.SearchStrategy[Any]:
    """Plausible values six times out of seven, so fuzzing reaches the semantic checks too."""
    return st.one_of(good, good, good, good, good, good, junk)


ports = mostly(
    st.integers(min_value=1, max_value=65535), st.one_of(st.integers(min_value=-5, max_value=70000), scalars)
)
bools = mostly(st.booleans())
health_checks = st.fixed_dictionaries(
    {"protocol": mostly(st.sampled_from(["tcp", "http"])), "port": ports},
    optional={
        "interval": mostly(st.integers(min_value=3, max_value=60), ports),
        "timeout": mostly(st.integers(min_value=1, max_value=60), ports),
        "retries": mostly(st.integers(min_value=1, max_value=5), ports),
        "http": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "domain": mostly(st.sampled_from([None, "platform.keybuzz.io"])),
                    "path": mostly(st.sampled_from(["/healthz", "/", "healthz"])),
                    "response": mostly(st.text(max_size=5)),
                    "tls": bools,
                    "status_codes": mostly(
                        st.lists(mostly(st.sampled_from(["2??", "200", "3??", "5xx"])), max_size=25)
                    ),
                },
            )
        ),
    },
)
CERT_IDS = st.sampled_from([1, 1, 2, 999])  # the fuzz world uploads certificates 1 and 2
services = st.fixed_dictionaries(
    {
        "protocol": mostly(st.sampled_from(["tcp", "http", "https"])),
        "listen_port": ports,
        "destination_port": ports,
    },
    optional={
        "proxyprotocol": bools,
        "http": mostly(
            st.fixed_dictionaries(
                {},
                optional={
                    "cookie_name": mostly(st.text(min_size=1, max_size=5)),
                    "cookie_lifetime": mostly(st.integers(min_value=30, max_value=86400), ports),
                    "timeout_idle": mostly(st.integers(min_value=30, max_value=300), ports),
                    "sticky_sessions": bools,
                    "redirect_http": bools,
                    "certificates": mostly(st.lists(mostly(CERT_IDS), max_size=3)),
                },
            )
        ),
        "health_check": mostly(health_checks),
    },
)
targets = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["server", "label_selector", "ip"]))},
    optional={
        "server": mostly(st.fixed_dictionaries({"id": mostly(st.sampled_from([110, 111, 100, 999]), ports)})),
        "label_selector": mostly(
            st.fixed_dictionaries(
                {
                    "selector": mostly(
                        st.sampled_from(
                            ["role=k3s-worker", "a in (b", "!x", "k notin (a,b)", "=", ",,", "role"]
                        )
                    )
                }
            )
        ),
        "ip": mostly(
            st.fixed_dictionaries({"ip": mostly(st.sampled_from(["127.0.99.1", "127.0.20.110", "x"]))})
        ),
        "use_private_ip": bools,
    },
)
labels = mostly(
    st.dictionaries(
        st.sampled_from(["app", "env", "a/b", "Bad Key", "hetzner.cloud/x"]),
        st.sampled_from(["keybuzz", "", "x y", "-bad"]),
        max_size=3,
    ),
    json_values,
)
lb_bodies = st.fixed_dictionaries(
    {
        "name": mostly(st.text(alphabet="abcdef-0123", min_size=1, max_size=10), st.text(max_size=10)),
        "load_balancer_type": mostly(
            st.sampled_from(["lb11", "lb11", "lb21", 1, "2"]), st.sampled_from(["nope", 9])
        ),
        "location": mostly(st.sampled_from(["fsn1", "nbg1", 1]), st.sampled_from(["x", None])),
    },
    optional={
        "network_zone": st.one_of(
            st.none(), st.none(), st.none(), st.sampled_from(["eu-central", "us-east", "x"])
        ),
        "network": mostly(st.sampled_from([1, 2])),
        "labels": labels,
        "public_interface": bools,
        "algorithm": mostly(
            st.fixed_dictionaries({"type": mostly(st.sampled_from(["round_robin", "least_connections"]))})
        ),
        "services": mostly(st.lists(services, max_size=3)),
        "targets": mostly(st.lists(targets, max_size=3)),
        "public_net": mostly(st.just({}), json_values),
    },
)
rules = st.fixed_dictionaries(
    {},
    optional={
        "direction": st.one_of(st.sampled_from(["in", "out"]), scalars),
        "protocol": st.one_of(st.sampled_from(["tcp", "udp", "icmp", "gre"]), scalars),
        "port": st.one_of(st.sampled_from(["80", "1-2", "70000", "5-1", "any"]), scalars),
        "source_ips": st.one_of(
            scalars,
            st.lists(st.one_of(st.sampled_from(["0.0.0.0/0", "::/0", "1.2.3.4"]), scalars), max_size=3),
        ),
        "destination_ips": st.one_of(scalars, st.lists(scalars, max_size=2)),
        "description": scalars,
    },
)
records = st.lists(
    st.one_of(scalars, st.fixed_dictionaries({}, optional={"value": scalars, "comment": scalars})), max_size=3
)


@pytest.fixture(scope="module")
def fuzz_world() -> Iterator[tuple[HetznerWorld, int, requests.Session]]:
    world = HetznerWorld(settings=HetznerSettings(rate_limit_per_hour=10**9, action_duration=0.0)).start()
    client = world.client()
    lb = create_lb(client)
    upload_cert(client, "fuzz-1")
    upload_cert(client, "fuzz-2")
    session = requests.Session()
    session.trust_env = False
    session.headers.update(world.headers())
    yield world, lb.id, session
    session.close()
    world.stop()


def check(resp: requests.Response) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    if resp.status_code >= 400:
        err = resp.json()["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str)
        assert err["details"] is None or isinstance(err["details"], dict)
    assert "X-Correlation-Id" in resp.headers and "RateLimit-Remaining" in resp.headers


@FUZZ
@given(body=st.one_of(lb_bodies, json_values))
def test_create_load_balancer(fuzz_world: Any, body: Any) -> None:
    world, _, s = fuzz_world
    check(s.post(world.url("/load_balancers"), json=body))


@FUZZ
@given(
    body=st.one_of(services, json_values),
    command=st.sampled_from(["add_service", "update_service", "delete_service"]),
)
def test_service_actions(fuzz_world: Any, body: Any, command: str) -> None:
    world, lb_id, s = fuzz_world
    check(s.post(world.url(f"/load_balancers/{lb_id}/actions/{command}"), json=body))


@FUZZ
@given(
    body=st.one_of(targets, json_values),
    command=st.sampled_from(
        [
            "add_target",
            "remove_target",
            "attach_to_network",
            "detach_from_network",
            "change_type",
            "change_algorithm",
            "change_protection",
            "change_dns_ptr",
            "disable_public_interface",
            "enable_public_interface",
        ]
    ),
)
def test_other_lb_actions(fuzz_world: Any, body: Any, command: str) -> None:
    world, lb_id, s = fuzz_world
    check(s.post(world.url(f"/load_balancers/{lb_id}/actions/{command}"), json=body))
    check(s.put(world.url(f"/load_balancers/{lb_id}"), json=body))


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "name": scalars,
                "type": st.one_of(st.sampled_from(["uploaded", "managed"]), scalars),
                "certificate": scalars,
                "private_key": scalars,
                "domain_names": st.one_of(
                    scalars,
                    st.lists(
                        st.one_of(st.sampled_from(["a.keybuzz.io", "*.x", "-bad"]), scalars), max_size=3
                    ),
                ),
                "labels": json_values,
            },
        ),
    )
)
def test_certificates(fuzz_world: Any, body: Any) -> None:
    world, _, s = fuzz_world
    check(s.post(world.url("/certificates"), json=body))


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.sampled_from(["platform", "@", "Bad", "x.", "*.w"]), scalars),
                "type": st.one_of(st.sampled_from(["A", "AAAA", "CNAME", "TXT", "SOA"]), scalars),
                "ttl": ports,
                "records": st.one_of(scalars, records),
                "labels": json_values,
                "change": scalars,
            },
        ),
    ),
    command=st.sampled_from(
        ["set_records", "add_records", "remove_records", "update_records", "change_ttl", "change_protection"]
    ),
    rr=st.sampled_from(["platform/A", "@/SOA", "new/CNAME", "x/TXT", "y/BOGUS"]),
)
def test_dns(fuzz_world: Any, body: Any, command: str, rr: str) -> None:
    world, _, s = fuzz_world
    check(s.post(world.url("/zones/keybuzz.io/rrsets"), json=body))
    check(s.post(world.url(f"/zones/keybuzz.io/rrsets/{rr}/actions/{command}"), json=body))
    check(s.post(world.url("/zones/keybuzz.io/actions/change_ttl"), json=body))


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "name": scalars,
                "labels": json_values,
                "rules": st.one_of(scalars, st.lists(rules, max_size=3)),
                "apply_to": st.one_of(scalars, st.lists(targets, max_size=2)),
                "remove_from": st.one_of(scalars, st.lists(targets, max_size=2)),
            },
        ),
    )
)
def test_firewalls(fuzz_world: Any, body: Any) -> None:
    world, _, s = fuzz_world
    resp = s.post(world.url("/firewalls"), json=body)
    check(resp)
    fw_id = resp.json()["firewall"]["id"] if resp.status_code == 201 else 999
    for command in ("set_rules", "apply_to_resources", "remove_from_resources"):
        check(s.post(world.url(f"/firewalls/{fw_id}/actions/{command}"), json=body))


@FUZZ
@given(
    raw=st.binary(max_size=60),
    path=st.sampled_from(
        ["/load_balancers", "/certificates", "/firewalls", "/zones", "/zones/keybuzz.io/rrsets"]
    ),
)
def test_raw_bytes(fuzz_world: Any, raw: bytes, path: str) -> None:
    world, _, s = fuzz_world
    check(s.post(world.url(path), data=raw))


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["page", "per_page", "sort", "name", "label_selector", "status", "type", "id", "mode"]
        ),
        st.one_of(st.text(max_size=12), st.lists(st.text(max_size=8), max_size=3)),
        max_size=4,
    ),
    path=st.sampled_from(
        [
            "/servers",
            "/load_balancers",
            "/certificates",
            "/zones",
            "/firewalls",
            "/networks",
            "/zones/keybuzz.io/rrsets",
            "/load_balancers/actions",
            "/actions",
            "/locations",
            "/load_balancer_types",
        ]
    ),
)
def test_list_queries(fuzz_world: Any, params: dict[str, Any], path: str) -> None:
    world, _, s = fuzz_world
    check(s.get(world.url(path), params=params))


ROUTES = [
    "/load_balancers/{i}",
    "/load_balancers/{i}/metrics",
    "/load_balancers/{i}/actions",
    "/certificates/{i}",
    "/certificates/{i}/actions/retry",
    "/firewalls/{i}",
    "/zones/{z}",
    "/zones/{z}/actions/change_protection",
    "/zones/{z}/rrsets/{n}/{t}",
    "/zones/{z}/actions",
    "/zones/{z}/rrsets/{n}/{t}/actions/change_protection",
    "/servers/{i}",
    "/networks/{i}",
    "/actions/{i}",
    "/zones",
    "/load_balancers/{i}/actions/{i}",
]


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    i=st.sampled_from(["1", "2", "110", "999", "0", "abc"]),
    z=st.sampled_from(["keybuzz.io", "1", "nope", "KEYBUZZ.IO."]),
    n=st.sampled_from(["@", "platform", "x", "*"]),
    t=st.sampled_from(["A", "SOA", "NS", "BOGUS"]),
    body=json_values,
    params=st.dictionaries(
        st.sampled_from(["type", "start", "end", "step", "status", "sort"]),
        st.sampled_from(["", "bandwidth", "2026-01-01T00:00:00Z", "x", "1", "-1", "id:desc"]),
        max_size=3,
    ),
)
def test_any_route_any_method(
    fuzz_world: Any,
    route: str,
    method: str,
    i: str,
    z: str,
    n: str,
    t: str,
    body: Any,
    params: dict[str, str],
) -> None:
    world, _, s = fuzz_world
    path = route.format(i=i, z=z, n=n, t=t)
    check(s.request(method, world.url(path), json=body, params=params))
