"""The Hetzner Load Balancer data plane: real listeners, health checks and forwarding on loopback.

Driven like production: the real hcloud client configures the LB through the sandbox Hetzner API;
fake ingress targets answer on the workers' NodePort; HTTP(S) clients talk to the LB's address.
The clock runs at speed 25 (a 15 s health-check interval is 0.6 s).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hcloud
import pytest
from hcloud.certificates import Certificate
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    BoundLoadBalancer,
    LoadBalancerAlgorithm,
    LoadBalancerHealthCheck,
    LoadBalancerHealthCheckHttp,
    LoadBalancerService,
    LoadBalancerServiceHttp,
    LoadBalancerTarget,
    LoadBalancerTargetIP,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import Network
from hcloud.servers import Server
from support.hetzner_world import shared_ca
from support.lb_world import (
    NODEPORT,
    TCP_PORT,
    TLS_PORT,
    WORKER_IDS,
    WORKERS,
    LbWorld,
    http_request,
    iter_nested_health,
    raw_exchange,
    wait_until,
)

from keybuzz_tui.sandbox.clock import Clock
from keybuzz_tui.sandbox.hetzner.views import HealthCheckView
from keybuzz_tui.sandbox.lbplane import (
    DEFAULT_PRIVILEGED_OFFSET,
    HealthRecord,
    PortPolicy,
    ProbeResult,
    status_matches,
)
from keybuzz_tui.sandbox.lbplane.certs import name_matches
from keybuzz_tui.sandbox.lbplane.health import CheckSpec, HealthChecker
from keybuzz_tui.sandbox.lbplane.tcp_proxy import proxy_v1_header

pytestmark = pytest.mark.timeout(120)

HOST = "platform.keybuzz.io"
API_HOST = "platform-api.keybuzz.io"


# ---- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def world() -> Iterator[LbWorld]:
    w = LbWorld(speed=25.0).start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def client(world: LbWorld) -> Iterator[hcloud.Client]:
    c = world.client()
    yield c
    for lb in c.load_balancers.get_all():
        lb.delete().action.wait_until_finished()
    for cert in c.certificates.get_all():
        cert.delete()
    world.restore_targets()
    world.call(world.plane.reconcile)


def tls_client() -> ssl.SSLContext:
    return shared_ca().client_context()


def health_check(
    protocol: str = "http",
    port: int = NODEPORT,
    *,
    interval: int = 15,
    timeout: int = 10,
    retries: int = 3,
    path: str = "/healthz",
    domain: str | None = None,
    response: str | None = None,
    status_codes: list[str] | None = None,
    tls: bool | None = None,
) -> LoadBalancerHealthCheck:
    http = None
    if protocol == "http":
        http = LoadBalancerHealthCheckHttp(
            domain=domain,
            path=path,
            response=response,
            status_codes=status_codes or ["2??", "3??"],
            tls=bool(tls),
        )
    return LoadBalancerHealthCheck(
        protocol=protocol, port=port, interval=interval, timeout=timeout, retries=retries, http=http
    )


def upload_cert(client: hcloud.Client, *names: str, name: str = "keybuzz-cert") -> Any:
    issued = shared_ca().issue(*(names or (HOST, API_HOST)))
    return client.certificates.create(name=name, certificate=issued.chain_pem, private_key=issued.key_pem)


def http_service(port: int = 80, **kw: Any) -> LoadBalancerService:
    return LoadBalancerService(
        protocol="http",
        listen_port=port,
        destination_port=kw.pop("destination_port", NODEPORT),
        proxyprotocol=False,
        health_check=kw.pop("health_check", None) or health_check(),
        http=LoadBalancerServiceHttp(**kw) if kw else None,
    )


def https_service(cert_ids: list[int], port: int = 443, **kw: Any) -> LoadBalancerService:
    return LoadBalancerService(
        protocol="https",
        listen_port=port,
        destination_port=kw.pop("destination_port", NODEPORT),
        proxyprotocol=False,
        health_check=kw.pop("health_check", None) or health_check(),
        http=LoadBalancerServiceHttp(certificates=[Certificate(id=i) for i in cert_ids], **kw),
    )


def workers_target() -> LoadBalancerTarget:
    return LoadBalancerTarget(
        type="label_selector",
        use_private_ip=True,
        label_selector=LoadBalancerTargetLabelSelector(selector=WORKERS),
    )


def create_lb(
    client: hcloud.Client,
    services: list[LoadBalancerService],
    *,
    name: str = "keybuzz-lb",
    targets: list[LoadBalancerTarget] | None = None,
    algorithm: str = "round_robin",
    network: bool = True,
) -> BoundLoadBalancer:
    """The runbook's order: create (with the network), add services, then targets."""
    resp = client.load_balancers.create(
        name=name,
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        network=Network(id=1) if network else None,
        algorithm=LoadBalancerAlgorithm(type=algorithm),
        labels={"app": "keybuzz"},
    )
    resp.action.wait_until_finished()
    lb = client.load_balancers.get_by_id(resp.load_balancer.id)
    for svc in services:
        lb.add_service(svc).wait_until_finished()
    for t in targets if targets is not None else [workers_target()]:
        lb.add_target(t).wait_until_finished()
    return client.load_balancers.get_by_id(lb.id)


def health_by_server(client: hcloud.Client, lb_id: int) -> dict[tuple[int, int], Any]:
    lb = client.load_balancers.get_by_id(lb_id)
    return {(sid, port): h for sid, port, h in iter_nested_health(lb)}


def wait_health(
    client: hcloud.Client, lb_id: int, want: dict[int, str], ports: tuple[int, ...], timeout: float = 15.0
) -> dict[tuple[int, int], Any]:
    """Until each server id in `want` has that status on every listed port (through the API)."""

    def check() -> dict[tuple[int, int], Any] | None:
        health = health_by_server(client, lb_id)
        ok = all(
            health.get((sid, p)) is not None and health[(sid, p)].status == st
            for sid, st in want.items()
            for p in ports
        )
        return health if ok else None

    return wait_until(check, timeout, 0.05, f"health {want} on {ports}")  # type: ignore[no-any-return]


def lb_addresses(lb: BoundLoadBalancer) -> tuple[str, str]:
    return lb.public_net.ipv4.ip, lb.private_net[0].ip


def nodes_hit(ip: str, port: int, n: int, **kw: Any) -> Counter[str]:
    return Counter(http_request(ip, port, **kw).json()["node"] for _ in range(n))


ALL_HEALTHY = {sid: "healthy" for sid in WORKER_IDS}


# ---- the runbook's load balancer ------------------------------------------------------------------
def test_runbook_lb_serves_http_and_https_through_healthy_targets(
    world: LbWorld, client: hcloud.Client
) -> None:
    cert = upload_cert(client)
    lb = create_lb(client, [http_service(80), https_service([cert.id], 443)])
    public, private = lb_addresses(lb)
    assert public.startswith(world.public_prefix + ".") and private.startswith(world.prefix + ".")

    # every worker starts unknown and turns healthy: visible through hcloud, as the wizard sees it
    first = health_by_server(client, lb.id)
    assert {h.status for h in first.values()} <= {"unknown", "healthy"}
    wait_health(client, lb.id, ALL_HEALTHY, (80, 443))

    ports = world.ports(lb.id)
    assert set(ports) == {80, 443}
    assert all(p in (lp, lp + DEFAULT_PRIVILEGED_OFFSET) for lp, p in ports.items())

    # http: the Host header is kept, X-Forwarded-* added, round robin over the five workers
    r = http_request(public, ports[80], "/some/path?q=1", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status == 200
    echo = r.json()
    assert echo["host"] == HOST and echo["path"] == "/some/path?q=1"
    assert echo["proto"] == "http" and echo["port"] == "80"
    xff = [p.strip() for p in echo["xff"].split(",")]
    assert xff[0] == "203.0.113.9" and xff[1].startswith("127.")
    assert r.headers["X-Target"] == echo["node"]
    assert "app=1" in r.headers["Set-Cookie"]
    hits = nodes_hit(public, ports[80], 10)
    assert set(hits) == {f"k3s-worker-{i}" for i in range(1, 6)} and set(hits.values()) == {2}

    # https: TLS terminated with the uploaded certificate (verified against the sandbox CA),
    # plain HTTP to the same NodePort
    r = http_request(public, ports[443], "/", tls=tls_client())
    assert r.status == 200
    assert r.json()["proto"] == "https" and r.json()["port"] == "443" and r.json()["host"] == HOST
    r = http_request(public, ports[443], "/", host=API_HOST, tls=tls_client())
    assert r.json()["host"] == API_HOST

    # the LB's private IP answers the same services
    assert http_request(private, ports[80]).status == 200
    assert http_request(private, ports[443], tls=tls_client()).status == 200

    # the health checks asked for /healthz with the target IP as Host (domain is null)
    t = world.targets[112]
    checks = [s for s in t.seen if s.path == "/healthz"]
    assert checks and checks[0].headers["Host"] == f"{t.ip}:{NODEPORT}"

    # one worker's ingress goes away: until the checks notice, a refused connection is retried
    # on the next healthy target (nothing was sent yet), so clients see no error
    world.stop_target(112)
    assert {http_request(public, ports[80]).status for _ in range(10)} == {200}
    # then it is unhealthy after `retries` failed checks, with the reason
    health = wait_health(client, lb.id, {112: "unhealthy"}, (80, 443))
    assert "refused" in (health[(112, 80)].detail or "")
    assert health[(110, 80)].status == "healthy"
    hits = nodes_hit(public, ports[80], 12) + nodes_hit(public, ports[443], 8, tls=tls_client())
    assert "k3s-worker-3" not in hits and len(hits) == 4

    # all of them: 503 with the LB's own page
    for sid in WORKER_IDS:
        world.stop_target(sid)
    wait_health(client, lb.id, {sid: "unhealthy" for sid in WORKER_IDS}, (80, 443))
    r = http_request(public, ports[80])
    assert r.status == 503
    assert b"<h1>503 Service Unavailable</h1>" in r.body and b"No server is available" in r.body
    assert http_request(public, ports[443], tls=tls_client()).status == 503

    # back: an unhealthy target needs `retries` successes before it takes traffic again
    world.start_target(113)
    wait_health(client, lb.id, {113: "healthy"}, (80,))
    assert set(nodes_hit(public, ports[80], 4)) == {"k3s-worker-4"}


def test_redirect_http_answers_301_on_port_80(world: LbWorld, client: hcloud.Client) -> None:
    cert = upload_cert(client)
    lb = create_lb(client, [https_service([cert.id], 443, redirect_http=True)])
    public, private = lb_addresses(lb)
    ports = world.ports(lb.id)
    assert set(ports) == {80, 443}
    for ip in (public, private):
        r = http_request(ip, ports[80], "/login?next=%2Fhome")
        assert r.status == 301
        assert r.headers["Location"] == f"https://{HOST}/login?next=%2Fhome"
    r = http_request(public, ports[80], "/", host=f"{API_HOST}:80")
    assert r.headers["Location"] == f"https://{API_HOST}/"
    wait_health(client, lb.id, ALL_HEALTHY, (443,))
    assert http_request(public, ports[443], tls=tls_client()).json()["proto"] == "https"
    # turning the redirect off closes port 80
    lb.update_service(
        LoadBalancerService(listen_port=443, http=LoadBalancerServiceHttp(redirect_http=False))
    ).wait_until_finished()
    world.call(world.plane.reconcile)
    assert set(world.ports(lb.id)) == {443}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((public, ports[80]), timeout=2).close()


def test_https_sni_picks_the_matching_certificate(world: LbWorld, client: hcloud.Client) -> None:
    keybuzz = upload_cert(client, HOST, API_HOST, name="keybuzz")
    other = upload_cert(client, "*.example.org", name="other")
    lb = create_lb(client, [https_service([keybuzz.id, other.id], 443)])
    public, _ = lb_addresses(lb)
    port = world.ports(lb.id)[443]
    wait_health(client, lb.id, ALL_HEALTHY, (443,))

    def served_names(sni: str | None) -> list[str]:
        ctx = tls_client()
        ctx.check_hostname = False
        with socket.create_connection((public, port), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as s:
                cert = s.getpeercert()
                assert s.selected_alpn_protocol() in (None, "http/1.1")
        return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]

    assert served_names(HOST) == [HOST, API_HOST]
    assert served_names("shop.example.org") == ["*.example.org"]
    assert served_names("unknown.test") == [HOST, API_HOST]  # default: the first certificate
    assert served_names(None) == [HOST, API_HOST]
    r = http_request(public, port, host="shop.example.org", tls=tls_client())
    assert r.status == 200 and r.json()["host"] == "shop.example.org"
    # a hostname that no certificate covers fails verification on the client, as in production
    with pytest.raises(ssl.SSLCertVerificationError):
        http_request(public, port, host="unknown.test", tls=tls_client())


def test_managed_certificate_is_served_once_issued(world: LbWorld, client: hcloud.Client) -> None:
    resp = client.certificates.create_managed(name="managed", domain_names=[HOST])
    resp.action.wait_until_finished()
    lb = create_lb(client, [https_service([resp.certificate.id], 443)])
    public, _ = lb_addresses(lb)
    wait_health(client, lb.id, ALL_HEALTHY, (443,))
    r = http_request(public, world.ports(lb.id)[443], tls=tls_client())
    assert r.status == 200 and r.json()["proto"] == "https"


def test_tcp_service_pipes_bytes_with_proxy_protocol(world: LbWorld, client: hcloud.Client) -> None:
    tcp = LoadBalancerService(
        protocol="tcp",
        listen_port=5000,
        destination_port=TCP_PORT,
        proxyprotocol=True,
        health_check=health_check("tcp", TCP_PORT),
    )
    lb = create_lb(client, [tcp])
    public, private = lb_addresses(lb)
    assert world.ports(lb.id) == {5000: 5000}
    wait_health(client, lb.id, ALL_HEALTHY, (5000,))
    out = raw_exchange(public, 5000, b"hello")
    node, _, rest = out.partition(b":")
    assert node.startswith(b"k3s-worker-") and rest.endswith(b"hello")
    (line,) = [line for t in world.targets.values() for line in t.tcp_first_lines]
    proto, fam, src, dst, sport, dport = line.decode().split(" ")
    assert (proto, fam, dst, dport) == ("PROXY", "TCP4", public, "5000")
    assert src.startswith("127.") and sport.isdigit()
    assert raw_exchange(private, 5000, b"x").endswith(b"x")

    # turning proxyprotocol off (update_service) takes effect on the next connection
    lb.update_service(LoadBalancerService(listen_port=5000, proxyprotocol=False)).wait_until_finished()
    out = raw_exchange(public, 5000, b"plain")
    assert out.split(b":", 1)[1] == b"plain"

    # no healthy target: the connection is closed, nothing is forwarded
    for sid in WORKER_IDS:
        world.stop_target(sid)
    wait_health(client, lb.id, {sid: "unhealthy" for sid in WORKER_IDS}, (5000,))
    started = time.monotonic()
    assert raw_exchange(public, 5000, b"anyone?") == b""
    assert time.monotonic() - started < 1.0


def test_sticky_sessions_keep_a_client_on_one_target(world: LbWorld, client: hcloud.Client) -> None:
    lb = create_lb(
        client, [http_service(80, sticky_sessions=True, cookie_name="KBSTICKY", cookie_lifetime=300)]
    )
    public, _ = lb_addresses(lb)
    port = world.ports(lb.id)[80]
    wait_health(client, lb.id, ALL_HEALTHY, (80,))
    first = http_request(public, port)
    cookies = first.headers.get_all("Set-Cookie")
    sticky = next(c for c in cookies if c.startswith("KBSTICKY="))
    assert "Max-Age=300" in sticky and "app=1" in " ".join(cookies)
    token = sticky.split(";", 1)[0]
    node = first.json()["node"]
    for _ in range(6):
        r = http_request(public, port, headers={"Cookie": token})
        assert r.json()["node"] == node
        assert not any(c.startswith("KBSTICKY=") for c in r.headers.get_all("Set-Cookie") or [])
    # a forged or stale cookie is ignored (and replaced)
    r = http_request(public, port, headers={"Cookie": "KBSTICKY=forged"})
    assert any(c.startswith("KBSTICKY=") for c in r.headers.get_all("Set-Cookie"))
    # the sticky target going unhealthy moves the client, with a new cookie
    sid = next(s for s, t in world.targets.items() if t.name == node)
    world.stop_target(sid)
    wait_health(client, lb.id, {sid: "unhealthy"}, (80,))
    r = http_request(public, port, headers={"Cookie": token})
    assert r.status == 200 and r.json()["node"] != node
    assert any(c.startswith("KBSTICKY=") for c in r.headers.get_all("Set-Cookie"))


def test_least_connections_avoids_busy_targets(world: LbWorld, client: hcloud.Client) -> None:
    lb = create_lb(client, [http_service(80, timeout_idle=300)], algorithm="least_connections")
    public, _ = lb_addresses(lb)
    port = world.ports(lb.id)[80]
    wait_health(client, lb.id, ALL_HEALTHY, (80,))
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(http_request, public, port, "/slow?s=4") for _ in range(3)]
        deadline = time.monotonic() + 3.0  # until the three slow requests are in (a loaded machine takes its time)
        while True:
            busy = {t.name for t in world.targets.values() if any(s.path.startswith("/slow") for s in t.seen)}
            if len(busy) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(busy) == 3, busy
        quick = nodes_hit(public, port, 6)
        assert not set(quick) & busy and len(quick) == 2
        assert all(f.result().status == 200 for f in slow)


def test_http_bodies_streams_and_head(world: LbWorld, client: hcloud.Client) -> None:
    lb = create_lb(client, [http_service(80)])
    public, _ = lb_addresses(lb)
    port = world.ports(lb.id)[80]
    wait_health(client, lb.id, ALL_HEALTHY, (80,))
    body = bytes(range(256)) * 4096  # 1 MiB
    r = http_request(
        public,
        port,
        "/upload",
        method="POST",
        body=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status == 200 and r.json()["body_len"] == len(body) and r.json()["method"] == "POST"
    r = http_request(public, port, "/broken")
    assert r.status == 502 and b"502 Bad Gateway" in r.body
    r = http_request(public, port, "/stream")
    assert r.status == 200 and r.body == b"".join(f"chunk{i};".encode() for i in range(5))
    r = http_request(public, port, "/head", method="HEAD")
    assert r.status == 200 and r.body == b"" and int(r.headers["Content-Length"]) > 0
    r = http_request(
        public,
        port,
        "/x",
        headers={"Connection": "keep-alive, X-Secret", "X-Secret": "hop", "Keep-Alive": "timeout=5"},
    )
    assert r.status == 200
    seen = next(s for t in world.targets.values() for s in t.seen if s.path == "/x")
    assert "X-Secret" not in seen.headers and "Keep-Alive" not in seen.headers
    # HTTP/1.0 without Host still reaches a target
    out = raw_exchange(public, port, b"GET /old HTTP/1.0\r\n\r\n", half_close=False)
    assert out.startswith(b"HTTP/1.0 200") or out.startswith(b"HTTP/1.1 200")


# ---- robustness ----------------------------------------------------------------------------------
def test_garbage_slow_and_vanishing_clients_never_break_the_lb(world: LbWorld, client: hcloud.Client) -> None:
    cert = upload_cert(client)
    tcp = LoadBalancerService(
        protocol="tcp",
        listen_port=6000,
        destination_port=TCP_PORT,
        proxyprotocol=False,
        health_check=health_check("tcp", TCP_PORT),
    )
    lb = create_lb(
        client, [http_service(80, timeout_idle=30), https_service([cert.id], 443, timeout_idle=30), tcp]
    )
    public, _ = lb_addresses(lb)
    ports = world.ports(lb.id)
    wait_health(client, lb.id, ALL_HEALTHY, (80, 443, 6000))
    idle = 30 / world.speed

    # garbage on the HTTP port: a 400, then the connection is closed
    out = raw_exchange(public, ports[80], b"\x16\x03\x01\x00\xff garbage \x00\r\n\r\n", half_close=False)
    assert out.startswith(b"HTTP/1.") and out.split(b" ")[1] == b"400"
    out = raw_exchange(public, ports[80], b"NOT HTTP AT ALL\r\n\r\n", half_close=False)
    assert out.split(b" ")[1] == b"400"
    out = raw_exchange(
        public, ports[80], b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", half_close=False
    )
    assert out.split(b" ")[1] == b"400"
    # plain HTTP (not TLS) on the HTTPS port: the handshake fails, the connection is closed
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 8):
        assert not raw_exchange(public, ports[443], junk, half_close=False).startswith(b"HTTP")
    # connect-and-leave, many times, on every port
    for _ in range(30):
        for p in ports.values():
            socket.create_connection((public, p), timeout=2).close()
    # a client that leaves in the middle of a forward
    with socket.create_connection((public, ports[80]), timeout=2) as s:
        s.sendall(b"GET /slow?s=0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
    # slowloris: half a request line, then nothing; closed after the idle timeout
    started = time.monotonic()
    with socket.create_connection((public, ports[80]), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: plat")
        assert s.recv(100) == b""
    assert idle * 0.8 <= time.monotonic() - started < idle + 3
    # a TLS client that never finishes its handshake is dropped as well
    started = time.monotonic()
    with socket.create_connection((public, ports[443]), timeout=10) as s:
        s.sendall(b"\x16\x03\x01")
        assert s.recv(100) == b""
    assert time.monotonic() - started < idle + 3

    # still serving, on every port
    assert http_request(public, ports[80]).status == 200
    assert http_request(public, ports[443], tls=tls_client()).status == 200
    assert raw_exchange(public, ports[6000], b"ok").endswith(b"ok")


def test_idle_timeout_closes_idle_clients_and_cuts_silent_targets(
    world: LbWorld, client: hcloud.Client
) -> None:
    lb = create_lb(client, [http_service(80, timeout_idle=30)])
    public, _ = lb_addresses(lb)
    port = world.ports(lb.id)[80]
    wait_health(client, lb.id, ALL_HEALTHY, (80,))
    idle = 30 / world.speed  # 1.2 s

    # keep-alive: two requests on one connection, then silence closes it
    import http.client

    conn = http.client.HTTPConnection(public, port, timeout=10)
    for _ in range(2):
        conn.request("GET", "/", headers={"Host": HOST})
        assert conn.getresponse().read()
    started = time.monotonic()
    assert conn.sock is not None
    assert conn.sock.recv(10) == b""
    assert idle * 0.8 <= time.monotonic() - started < idle + 3
    conn.close()

    # a target that says nothing for longer than timeout_idle: 504 from the LB
    started = time.monotonic()
    r = http_request(public, port, f"/slow?s={idle * 3}", timeout=10)
    assert r.status == 504 and b"504 Gateway Time-out" in r.body
    assert time.monotonic() - started < idle * 2.5
    # a target that answers within it is fine
    assert http_request(public, port, f"/slow?s={idle / 3}").status == 200


def test_services_come_and_go_and_the_public_interface_switches(
    world: LbWorld, client: hcloud.Client
) -> None:
    lb = create_lb(client, [http_service(80)])
    public, private = lb_addresses(lb)
    p80 = world.ports(lb.id)[80]
    wait_health(client, lb.id, ALL_HEALTHY, (80,))
    changes = world.changes

    # a new port: listening by the time the action is done, health checked from unknown
    lb.add_service(http_service(8080)).wait_until_finished()
    assert world.ports(lb.id) == {80: p80, 8080: 8080}
    assert world.changes > changes
    wait_health(client, lb.id, ALL_HEALTHY, (8080,))
    assert http_request(public, 8080).json()["port"] == "8080"

    # the protocol changes under a live port: rebound as tcp, bytes piped to the echo port
    lb.update_service(
        LoadBalancerService(
            listen_port=8080,
            protocol="tcp",
            destination_port=TCP_PORT,
            health_check=health_check("tcp", TCP_PORT),
        )
    ).wait_until_finished()
    wait_health(client, lb.id, ALL_HEALTHY, (8080,))
    assert raw_exchange(public, 8080, b"ping").endswith(b":ping")

    # delete: the port is closed, connections refused, the health entries go away
    lb.delete_service(LoadBalancerService(listen_port=8080)).wait_until_finished()
    world.call(world.plane.reconcile)
    assert world.ports(lb.id) == {80: p80}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((public, 8080), timeout=2).close()
    assert {port for (_, port) in health_by_server(client, lb.id)} == {80}
    assert world.call(world.plane.target_health, lb.id, 8080) == {}

    # public interface disabled: only the private IP answers
    lb.disable_public_interface().wait_until_finished()
    world.call(world.plane.reconcile)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((public, p80), timeout=2).close()
    assert http_request(private, p80).status == 200
    snap = world.call(world.plane.snapshot)
    entry = next(e for e in snap["load_balancers"] if e["id"] == lb.id)
    assert entry["public_ipv4"] is None and {x["address"] for x in entry["listeners"]} == {private}
    lb.enable_public_interface().wait_until_finished()
    world.call(world.plane.reconcile)
    assert http_request(public, p80).status == 200
    assert world.ports(lb.id) == {80: p80}  # re-opened on the port it had

    # deleting the LB closes everything
    lb.delete().action.wait_until_finished()
    world.call(world.plane.reconcile)
    assert world.ports(lb.id) == {}
    for ip in (public, private):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((ip, p80), timeout=2).close()


def test_label_changes_move_label_selector_targets(world: LbWorld, client: hcloud.Client) -> None:
    lb = create_lb(client, [http_service(80)])
    public, _ = lb_addresses(lb)
    port = world.ports(lb.id)[80]
    wait_health(client, lb.id, ALL_HEALTHY, (80,))
    server = client.servers.get_by_id(114)
    labels = dict(server.labels)
    server.update(labels={**labels, "role": "drained"})
    try:
        world.call(world.plane.reconcile)
        assert ("server", 114) not in world.call(world.plane.target_health, lb.id, 80)
        assert "k3s-worker-5" not in nodes_hit(public, port, 12)
    finally:
        server.update(labels=labels)
    world.call(world.plane.reconcile)
    wait_health(client, lb.id, {114: "healthy"}, (80,))
    assert "k3s-worker-5" in nodes_hit(public, port, 10)


# ---- health checks ---------------------------------------------------------------------------------
def test_health_check_variants_and_what_the_api_shows(world: LbWorld, client: hcloud.Client) -> None:
    services = [
        http_service(
            80, health_check=health_check(interval=5, timeout=4, retries=2, domain=HOST, status_codes=["200"])
        ),
        http_service(81, health_check=health_check(interval=5, timeout=4, retries=2, response="ok")),
        http_service(
            82, health_check=health_check(port=TLS_PORT, interval=5, timeout=4, retries=2, tls=True)
        ),
        http_service(83, health_check=health_check("tcp", TCP_PORT, interval=5, timeout=4, retries=2)),
    ]
    lb = create_lb(client, services)
    wait_health(client, lb.id, ALL_HEALTHY, (80, 81, 82, 83))
    t110, t111 = world.targets[110], world.targets[111]
    assert {s.headers.get("Host") for s in t110.seen if s.path == "/healthz"} >= {
        HOST,
        f"{t110.ip}:{TLS_PORT}",
    }

    # /healthz answers 204 on 110: fine for 2??-style codes... except port 80 wants exactly 200
    t110.healthz_status = 204
    health = wait_health(client, lb.id, {110: "unhealthy"}, (80,))
    assert health[(110, 80)].http_status_code == 204
    assert "204 does not match 200" in health[(110, 80)].detail
    assert health[(110, 83)].status == "healthy"

    # /healthz answers "nope" on 111: the body check of port 81 fails
    t111.healthz_body = "nope"
    health = wait_health(client, lb.id, {111: "unhealthy"}, (81,))
    assert "does not contain 'ok'" in health[(111, 81)].detail and health[(111, 81)].http_status_code == 200
    assert health[(111, 80)].status == "healthy"

    # 500 on /healthz everywhere on 112: every http check fails, the tcp check still passes
    world.targets[112].healthz_status = 500
    health = wait_health(client, lb.id, {112: "unhealthy"}, (80, 81, 82))
    assert health[(112, 82)].http_status_code == 500 and health[(112, 83)].status == "healthy"

    # a target that accepts but does not answer within the timeout (4 s -> 0.16 s, floored at 1.5 s)
    world.targets[113].healthz_delay = 2.5  # above the plane's 1.5 s real-time floor on timeouts
    health = wait_health(client, lb.id, {113: "unhealthy"}, (81,))
    assert health[(113, 81)].detail == "timeout: no HTTP response within 4 s"
    assert health[(113, 81)].http_status_code is None

    # recovery takes `retries` (2) successes
    t110.healthz_status = 200
    wait_health(client, lb.id, {110: "healthy"}, (80,))


def test_ip_targets_outside_loopback_are_never_dialled(world: LbWorld, client: hcloud.Client) -> None:
    from support.lb_world import FakeTarget

    outside = LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip="10.0.0.5"))
    external_ip = f"127.{world.net}.40.1"
    external = FakeTarget("external", external_ip)
    world.call(external.start)
    try:
        inside = LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip=external_ip))
        lb = create_lb(
            client,
            [http_service(80, health_check=health_check(interval=5, timeout=4, retries=1))],
            targets=[outside, inside],
        )
        public, _ = lb_addresses(lb)

        def statuses() -> dict[str, Any] | None:
            got = {t.ip.ip: t.health_status[0] for t in client.load_balancers.get_by_id(lb.id).targets}
            return (
                got
                if got["10.0.0.5"].status == "unhealthy" and got[external_ip].status == "healthy"
                else None
            )

        got = wait_until(statuses, 10, what="ip target health")
        assert "only dials 127.0.0.0/8" in got["10.0.0.5"].detail
        assert set(nodes_hit(public, world.ports(lb.id)[80], 4)) == {"external"}
    finally:
        world.call(external.stop)


def test_server_targets_on_public_ips_and_unreachable_private_ones(
    world: LbWorld, client: hcloud.Client
) -> None:
    # server targets without use_private_ip dial the server's public IP: nothing listens there
    targets = [LoadBalancerTarget(type="server", server=Server(id=110), use_private_ip=False)]
    targets.append(LoadBalancerTarget(type="server", server=Server(id=111), use_private_ip=True))
    lb = create_lb(
        client,
        [http_service(80, health_check=health_check(interval=5, timeout=4, retries=1))],
        targets=targets,
    )
    health = wait_health(client, lb.id, {110: "unhealthy", 111: "healthy"}, (80,))
    assert "refused" in health[(110, 80)].detail
    view = world.call(world.state.load_balancer, lb.id)
    assert {t.server_id: t.address for t in view.targets} == {
        110: f"{world.public_prefix}.110",
        111: f"{world.prefix}.111",
    }


def test_a_failed_managed_certificate_fails_the_tls_handshake(world: LbWorld, client: hcloud.Client) -> None:
    from hcloud.actions import ActionFailedException

    world.call(world.state.set_managed_certificate_failure, True)
    try:
        resp = client.certificates.create_managed(name="broken", domain_names=[HOST])
        with pytest.raises(ActionFailedException):
            resp.action.wait_until_finished()
    finally:
        world.call(world.state.set_managed_certificate_failure, False)
    lb = create_lb(client, [http_service(80), https_service([resp.certificate.id], 443)])
    public, _ = lb_addresses(lb)
    ports = world.ports(lb.id)
    wait_health(client, lb.id, ALL_HEALTHY, (443,))
    with pytest.raises(ssl.SSLError):
        http_request(public, ports[443], tls=tls_client())
    assert http_request(public, ports[80]).status == 200

    # a working certificate added to the service: served at once, no rebind
    good = upload_cert(client, name="good")
    lb.update_service(
        LoadBalancerService(
            listen_port=443, http=LoadBalancerServiceHttp(certificates=[Certificate(id=good.id)])
        )
    ).wait_until_finished()
    assert http_request(public, ports[443], tls=tls_client()).status == 200
    assert world.ports(lb.id) == ports


# ---- ports, start and stop ---------------------------------------------------------------------------
def test_port_offset_snapshot_and_stop() -> None:
    w = LbWorld(speed=25.0, port_offset=DEFAULT_PRIVILEGED_OFFSET).start()
    try:
        client = w.client()
        # something else already holds 8443 on the LB's future address: ephemeral fallback
        squatter = socket.socket()
        squatter.bind((f"{w.public_prefix}.1", 8443))
        squatter.listen()
        try:
            cert = upload_cert(client)
            lb = create_lb(
                client, [http_service(80), https_service([cert.id], 443), https_service([cert.id], 8443)]
            )
            public, private = lb_addresses(lb)
            assert public == f"{w.public_prefix}.1"
            ports = w.ports(lb.id)
            assert ports[80] == 20080 and ports[443] == 20443
            assert ports[8443] not in (8443, 0)
            wait_health(client, lb.id, ALL_HEALTHY, (80, 443, 8443))
            assert http_request(public, ports[8443], tls=tls_client()).json()["port"] == "8443"

            snap = w.call(w.plane.snapshot)
            assert snap["privileged_port_offset"] == DEFAULT_PRIVILEGED_OFFSET
            (entry,) = snap["load_balancers"]
            assert entry["ports"] == {"80": 20080, "443": 20443, "8443": ports[8443]}
            assert {
                (x["address"], x["listen_port"], x["port"], x["protocol"]) for x in entry["listeners"]
            } == {
                (ip, lp, p, proto)
                for ip in (public, private)
                for lp, p, proto in ((80, 20080, "http"), (443, 20443, "https"), (8443, ports[8443], "https"))
            }
            assert w.changes >= 1
            import json

            json.dumps(snap)
        finally:
            squatter.close()

        # stop: every listener closed, a health-checked target keeps its last status in the API
        w.call(w.plane.stop)
        for p in ports.values():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((public, p), timeout=2).close()
        assert w.ports(lb.id) == {}
        # start again: the same LB is served again (ports recomputed: 8443 is free now)
        w.call(w.plane.start)
        again = w.ports(lb.id)
        assert again[80] == 20080 and again[8443] == 8443
        wait_health(client, lb.id, ALL_HEALTHY, (80,))
        assert http_request(public, again[80]).status == 200
    finally:
        w.stop()


# ---- pure logic --------------------------------------------------------------------------------------
def test_status_code_patterns() -> None:
    assert status_matches(200, ["2??", "3??"]) and status_matches(302, ["2??", "3??"])
    assert not status_matches(404, ["2??", "3??"]) and not status_matches(500, ["2??"])
    assert status_matches(204, ["20?"]) and not status_matches(210, ["20?"])
    assert status_matches(200, ["200"]) and not status_matches(204, ["200"])
    assert status_matches(200, []) and not status_matches(404, [])  # empty: the API default


def test_sni_name_matching() -> None:
    assert name_matches("platform.keybuzz.io", "PLATFORM.keybuzz.io.")
    assert name_matches("*.keybuzz.io", "platform.keybuzz.io")
    assert not name_matches("*.keybuzz.io", "keybuzz.io")
    assert not name_matches("*.keybuzz.io", "a.b.keybuzz.io")
    assert not name_matches("platform.keybuzz.io", "platform-api.keybuzz.io")


def test_port_policy() -> None:
    auto = PortPolicy(None)
    assert auto.candidates(80) == [80, 20080, 0] and auto.describe() is None
    auto.note_bound(80, 80)
    assert auto.describe() == 0
    auto.note_privileged_denied()
    assert auto.candidates(443) == [20443, 0] and auto.describe() == DEFAULT_PRIVILEGED_OFFSET
    assert auto.candidates(8080) == [8080, 0]
    assert auto.candidates(80, previous=31001) == [31001, 20080, 0]
    fixed = PortPolicy(10000)
    assert fixed.candidates(80) == [10080, 0] and fixed.candidates(5432) == [5432, 0]
    assert PortPolicy(0).candidates(443) == [443, 0]
    # the offset range stays clear of NodePorts and the K3s ports
    assert all(not (30000 <= p + DEFAULT_PRIVILEGED_OFFSET <= 32767) for p in range(1, 1024))
    assert all(
        p + DEFAULT_PRIVILEGED_OFFSET not in (2379, 2380, 6443, 8080, 3000, 10250) for p in range(1, 1024)
    )
    with pytest.raises(ValueError):
        PortPolicy(65000)


def test_health_transitions_follow_retries() -> None:
    ok, bad = ProbeResult(True), ProbeResult(False, "connection refused")
    r = HealthRecord()
    r.observe(ok, 3)
    assert r.status == "healthy"  # unknown -> healthy on the first success
    r.observe(bad, 3)
    r.observe(bad, 3)
    assert r.status == "healthy"  # 2 failures < retries
    r.observe(bad, 3)
    assert r.status == "unhealthy" and r.detail == "connection refused"
    r.observe(ok, 3)
    r.observe(ok, 3)
    assert r.status == "unhealthy"  # needs `retries` successes to come back
    r.observe(bad, 3)
    r.observe(ok, 3)
    r.observe(ok, 3)
    assert r.status == "unhealthy"
    r.observe(ok, 3)
    assert r.status == "healthy" and r.detail is None and r.http_status_code is None
    fresh = HealthRecord()
    fresh.observe(bad, 2)
    assert fresh.status == "unknown"
    fresh.observe(ProbeResult(False, "HTTP status 500 does not match 2??", 500), 2)
    assert fresh.status == "unhealthy" and fresh.http_status_code == 500


def test_proxy_protocol_v1_header() -> None:
    assert (
        proxy_v1_header(("127.0.0.1", 51000), ("127.1.20.1", 5000))
        == b"PROXY TCP4 127.0.0.1 127.1.20.1 51000 5000\r\n"
    )


async def test_checker_refuses_non_loopback_and_missing_addresses() -> None:
    import aiohttp

    hc = HealthCheckView("http", NODEPORT, 15, 10, 3, http_path="/healthz")
    async with aiohttp.ClientSession() as session:
        for address, unreachable, expected in (
            ("10.0.0.5", None, "refused to dial 10.0.0.5"),
            ("localhost", None, "refused to dial localhost"),
            (None, "server 113 has no private IP in the load balancer's network", "no private IP"),
        ):
            checker = HealthChecker(
                (1, 80, ("ip", "x")),
                CheckSpec(hc, address, unreachable),
                HealthRecord(),
                Clock(25),
                session,
                lambda k, r: None,
            )
            result = await checker.probe()
            assert not result.ok and expected in (result.detail or "")
