"""The error catalogue as clients see it: codes, statuses, details, headers."""

from __future__ import annotations

import time

import hcloud
import pytest
import requests
from hcloud import APIException
from hcloud.certificates import Certificate
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerHealthCheck,
    LoadBalancerHealthCheckHttp,
    LoadBalancerService,
    LoadBalancerServiceHttp,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.servers import Server
from support.hetzner_flows import NODEPORT, WORKERS, create_lb, health_check, upload_cert
from support.hetzner_world import HetznerWorld

from keybuzz_tui.sandbox.hetzner.seeds import HetznerSettings


def api_error(fn, *args, **kwargs) -> APIException:
    with pytest.raises(APIException) as e:
        fn(*args, **kwargs)
    return e.value


def https_service(cert_id: int, redirect: bool = False) -> LoadBalancerService:
    return LoadBalancerService(
        protocol="https",
        listen_port=443,
        destination_port=NODEPORT,
        proxyprotocol=False,
        http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert_id)], redirect_http=redirect),
        health_check=health_check(),
    )


def http_service(port: int = 80) -> LoadBalancerService:
    return LoadBalancerService(
        protocol="http",
        listen_port=port,
        destination_port=NODEPORT,
        proxyprotocol=False,
        health_check=health_check(),
    )


def test_wrong_token_is_401_unauthorized(world: HetznerWorld) -> None:
    err = api_error(world.client("wrong-token").servers.get_all)
    assert err.code == "unauthorized"
    assert err.correlation_id
    r = requests.get(world.url("/servers"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["X-Correlation-Id"] and r.headers["RateLimit-Limit"] == "3600"


def test_read_only_token_reads_but_cannot_write(world: HetznerWorld) -> None:
    ro = world.client(world.settings.read_only_token)
    assert len(ro.servers.get_all()) == 8
    err = api_error(
        ro.load_balancers.create,
        name="x",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
    )
    assert err.code == "token_readonly"
    r = requests.post(
        world.url("/load_balancers"), json={}, headers=world.headers(world.settings.read_only_token)
    )
    assert r.status_code == 401  # the spec's catalogue: 401 token_readonly


def test_rate_limit_429_with_headers_and_hcloud_gives_up() -> None:
    world = HetznerWorld(settings=HetznerSettings(rate_limit_per_hour=3)).start()
    try:
        s = requests.Session()
        s.trust_env = False
        s.headers.update(world.headers())
        remaining = [s.get(world.url("/locations")).headers["RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        r = s.get(world.url("/locations"))
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert r.headers["RateLimit-Limit"] == "3" and r.headers["RateLimit-Remaining"] == "0"
        assert int(r.headers["RateLimit-Reset"]) > time.time()
        client = world.client()
        calls = []
        client._client._retry_interval_func = lambda n: calls.append(n) or 0.0
        err = api_error(client.locations.get_all)
        assert err.code == "rate_limit_exceeded"
        assert calls == [0, 1, 2, 3, 4]  # hcloud retried 5 times
    finally:
        world.stop()


def test_rate_limit_recovers_and_hcloud_retry_succeeds() -> None:
    world = HetznerWorld(
        settings=HetznerSettings(rate_limit_per_hour=1, rate_limit_refill_per_second=20)
    ).start()
    try:
        client = world.client()
        client._client._retry_interval_func = lambda n: 0.06
        for _ in range(3):
            assert len(client.locations.get_all()) >= 3
    finally:
        world.stop()


def test_locked_while_an_action_runs() -> None:
    world = HetznerWorld(settings=HetznerSettings(action_duration=20.0), speed=10.0).start()  # 2 s
    try:
        client = world.client()
        lb = client.load_balancers.create(
            name="l", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1")
        ).load_balancer
        err = api_error(lb.add_service, http_service())
        assert err.code == "locked"
        err = api_error(lb.delete)
        assert err.code == "locked"
        r = requests.post(
            world.url(f"/load_balancers/{lb.id}/actions/add_service"), json={}, headers=world.headers()
        )
        assert r.status_code == 423
    finally:
        world.stop()


def test_source_port_already_used_both_ways(client: hcloud.Client) -> None:
    cert = upload_cert(client)
    lb = create_lb(client)
    lb.add_service(http_service(80)).wait_until_finished()
    err = api_error(lb.add_service, https_service(cert.id, redirect=True))
    assert err.code == "source_port_already_used"
    assert "port 80" in err.message
    err = api_error(lb.add_service, http_service(80))
    assert err.code == "source_port_already_used"

    lb2 = create_lb(client, name="lb2")
    lb2.add_service(https_service(cert.id, redirect=True)).wait_until_finished()
    err = api_error(lb2.add_service, http_service(80))
    assert err.code == "source_port_already_used"
    assert "redirect_http" in err.message
    # raw statuses: 412 on add_service, 422 on update_service (as the spec lists them)
    session, base, headers = client._client._session, client._client._endpoint, client._client._headers
    resp = session.post(
        f"{base}/load_balancers/{lb2.id}/actions/add_service",
        json={"protocol": "http", "listen_port": 80, "destination_port": 80},
        headers=headers,
    )
    assert resp.status_code == 412
    # on the first LB (http:80), an https:443 without redirect is fine; turning redirect on is not
    lb.add_service(https_service(cert.id)).wait_until_finished()
    resp = session.post(
        f"{base}/load_balancers/{lb.id}/actions/update_service",
        json={"listen_port": 443, "http": {"redirect_http": True}},
        headers=headers,
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "source_port_already_used"


def test_https_needs_a_certificate(client: hcloud.Client) -> None:
    lb = create_lb(client)
    svc = LoadBalancerService(
        protocol="https", listen_port=443, destination_port=NODEPORT, health_check=health_check()
    )
    err = api_error(lb.add_service, svc)
    assert err.code == "invalid_input"
    assert err.details["fields"] == [
        {"name": "http.certificates", "messages": ["at least one certificate is required for protocol https"]}
    ]


def test_use_private_ip_needs_a_network(client: hcloud.Client) -> None:
    lb = create_lb(client, network=False)
    target = LoadBalancerTarget(
        type="label_selector",
        use_private_ip=True,
        label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
    )
    err = api_error(lb.add_target, target)
    assert err.code == "load_balancer_not_attached_to_network"
    err = api_error(
        client.load_balancers.create,
        name="n",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        targets=[target],
    )
    assert err.code == "load_balancer_not_attached_to_network"


def test_target_already_defined_and_limits(client: hcloud.Client) -> None:
    lb = create_lb(client)
    t = LoadBalancerTarget(type="server", server=Server(id=110), use_private_ip=True)
    lb.add_target(t).wait_until_finished()
    assert api_error(lb.add_target, t).code == "target_already_defined"
    err = api_error(lb.add_target, LoadBalancerTarget(type="server", server=Server(id=999)))
    assert err.code == "invalid_input" and err.details["fields"][0]["name"] == "server.id"
    from hcloud.load_balancers import LoadBalancerTargetIP

    err = api_error(lb.add_target, LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip="127.0.20.110")))
    assert err.code == "ip_not_owned"
    for port in (81, 82, 83, 84, 85):
        lb.add_service(
            LoadBalancerService(protocol="tcp", listen_port=port, destination_port=port)
        ).wait_until_finished()
    err = api_error(lb.add_service, LoadBalancerService(protocol="tcp", listen_port=86, destination_port=86))
    assert err.code == "resource_limit_exceeded"  # lb11: 5 services


def test_lb11_takes_at_most_25_targets(client: hcloud.Client) -> None:
    """lb11's max_targets (25) counts every server a label selector resolves to; the 26th target
    is refused with resource_limit_exceeded (403), a bigger type takes it, and the smaller type
    can then no longer be chosen."""
    from hcloud.load_balancers import LoadBalancerTargetIP

    lb = create_lb(client)
    assert lb.load_balancer_type.max_targets == 25
    workers = LoadBalancerTarget(
        type="label_selector", use_private_ip=True, label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS)
    )
    lb.add_target(workers).wait_until_finished()  # 5 servers
    for i in range(1, 21):
        lb.add_target(LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip=f"127.0.99.{i}"))).wait_until_finished()
    err = api_error(lb.add_target, LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip="127.0.99.21")))
    assert err.code == "resource_limit_exceeded"
    assert err.details == {"limits": [{"name": "max_targets"}]}
    assert err.message == "load balancer type lb11 allows at most 25 targets"
    servers = LoadBalancerTarget(
        type="label_selector",
        use_private_ip=True,
        label_selector=LoadBalancerTargetLabelSelector(selector="cluster=keybuzz,role=k3s-server"),
    )
    assert api_error(lb.add_target, servers).code == "resource_limit_exceeded"  # one target, 3 servers
    session, base, headers = client._client._session, client._client._endpoint, client._client._headers
    resp = session.post(
        f"{base}/load_balancers/{lb.id}/actions/add_target",
        json={"type": "ip", "ip": {"ip": "127.0.99.21"}},
        headers=headers,
    )
    assert resp.status_code == 403
    assert len(client.load_balancers.get_by_id(lb.id).targets) == 21  # 1 selector + 20 IPs

    lb.change_type(LoadBalancerType(name="lb21")).wait_until_finished()
    lb.add_target(servers).wait_until_finished()  # lb21: 75
    err = api_error(lb.change_type, LoadBalancerType(name="lb11"))
    assert err.code == "invalid_load_balancer_type"


def test_invalid_health_check_values(client: hcloud.Client) -> None:
    lb = create_lb(client)
    svc = LoadBalancerService(
        protocol="http",
        listen_port=80,
        destination_port=NODEPORT,
        health_check=LoadBalancerHealthCheck(
            protocol="http",
            port=70000,
            interval=1,
            timeout=99,
            retries=9,
            http=LoadBalancerHealthCheckHttp(path="healthz", status_codes=["2xx"]),
        ),
    )
    err = api_error(lb.add_service, svc)
    assert err.code == "invalid_input"
    names = [f["name"] for f in err.details["fields"]]
    assert names == [
        "health_check.port",
        "health_check.interval",
        "health_check.timeout",
        "health_check.retries",
        "health_check.http.path",
        "health_check.http.status_codes",
    ]
    assert err.details["fields"][1]["messages"] == ["must be between 3 and 60"]


def test_uniqueness_protection_not_found(client: hcloud.Client) -> None:
    lb = create_lb(client)
    err = api_error(
        client.load_balancers.create,
        name="keybuzz-lb",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
    )
    assert err.code == "uniqueness_error" and err.details == {"fields": [{"name": "name"}]}
    lb.change_protection(delete=True).wait_until_finished()
    assert api_error(lb.delete).code == "protected"
    assert api_error(client.load_balancers.get_by_id, 424242).code == "not_found"
    assert api_error(client.certificates.get_by_id, 424242).code == "not_found"
    assert api_error(client.zones.get, "nope.example").code == "not_found"


def test_malformed_json_unknown_route_wrong_method(world: HetznerWorld, http: requests.Session) -> None:
    r = http.post(
        world.url("/load_balancers"), data=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_error"
    r = http.post(world.url("/load_balancers"), data=b"[1, 2]")
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_error"
    r = http.post(world.url("/load_balancers"), data=b'{"name": NaN}')
    assert r.status_code == 400
    r = http.get(world.url("/no_such_thing"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.get(world.url("/load_balancers/abc"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.patch(world.url("/load_balancers"), json={})
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = http.get(world.url("/load_balancers/1/actions/add_service"))
    assert r.status_code == 405
    r = http.get(world.url("/actions"))
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"][0]["name"] == "id"
    r = http.get(world.url("/servers"), params={"page": "x"})
    assert r.status_code == 422
    r = http.get(world.url("/servers"), params={"label_selector": "role in (a"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    for resp in (r,):
        assert resp.headers["Content-Type"].startswith("application/json")
        assert set(resp.json()["error"]) == {"code", "message", "details"}


def test_injected_failures_for_flaky_api(world: HetznerWorld, client: hcloud.Client) -> None:
    world.call(world.state.inject_failures, 2, 409, "conflict", "the resource has changed")
    assert len(client.servers.get_all()) == 8  # hcloud retries `conflict`
    world.call(world.state.inject_failures, 1, 503, "unavailable")
    assert api_error(client.servers.get_all).code == "unavailable"  # and not `unavailable`
