"""The runbook's topology on a healthy world, checked over real sockets from the test thread:
hostNetwork DaemonSets on node_ip:port, NodePorts on every node, ingress-nginx on 31695/32720."""

from __future__ import annotations

import base64
import json
import socket
import ssl

import pytest
import urllib3
from kubernetes import client
from sandbox.dataplane import harness as h

NS = "keybuzz"


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    sb = h.start(tmp_path_factory.mktemp("dp-healthy"))
    h.create(sb, h.keybuzz_hostnetwork())
    h.create(sb, [h.service("keybuzz-api-local", 8080, NS, nodeport=30081, local=True, selector={"app": "keybuzz-api"})])
    h.wait_ready(sb, NS, "app=keybuzz-api", 5)
    h.wait_ready(sb, NS, "app=keybuzz-front", 5)
    yield sb
    sb.stop()


def test_hostnetwork_daemonsets_answer_on_every_worker(sb):
    for w in h.WORKERS:
        ip = h.node_ip(sb, w)
        api = h.get(ip, 8080, "/")
        body = json.loads(api.data)
        assert api.status == 200 and api.headers["Content-Type"] == "application/json"
        assert (body["app"], body["node"], body["podIP"], body["hostNetwork"]) == ("keybuzz-api", w, ip, True)
        assert body["image"] == h.API_IMAGE and body["pod"].startswith("keybuzz-api-")
        assert h.get(ip, 8080, "/healthz").status == 200
        front = h.get(ip, 3000, "/")
        assert front.status == 200 and b"<title>KeyBuzz" in front.data and w.encode() in front.data
    # the servers are tainted: nothing listens on 8080 there
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        h.get(h.node_ip(sb, "k3s-master-01"), 8080, "/", timeout=2)


def test_ss_on_a_worker_lists_the_real_listeners(sb):
    rows = sb.call(sb.dataplane.listening, "k3s-worker-02")
    ports = {port: holder.owner for _ip, port, _proto, holder in rows}
    assert ports[8080].startswith("pod keybuzz/keybuzz-api-") and ports[3000].startswith("pod keybuzz/keybuzz-front-")
    assert ports[10250] == "host process k3s agent"
    # the kernel agrees: the port is really taken
    with socket.socket() as s, pytest.raises(OSError):
        s.bind((h.node_ip(sb, "k3s-worker-02"), 8080))


def test_nodeport_forwards_on_every_node_to_hostnetwork_pods(sb):
    for n in h.SERVERS + h.WORKERS:
        r = h.get(h.node_ip(sb, n), 30080, "/")
        assert r.status == 200 and json.loads(r.data)["node"] in h.WORKERS
        r = h.get(h.node_ip(sb, n), 30000, "/healthz")
        assert r.status == 200


def test_local_policy_answers_only_where_a_local_endpoint_exists(sb):
    for w in h.WORKERS:
        assert json.loads(h.get(h.node_ip(sb, w), 30081, "/").data)["node"] == w
    # k3s-master-01 has no keybuzz-api pod: iptables DROPs, the client only sees silence
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError)):
        h.get(h.node_ip(sb, "k3s-master-01"), 30081, "/", timeout=0.6)
    # same for ingress-nginx (externalTrafficPolicy Local, controller pods on workers only)
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError)):
        h.get(h.node_ip(sb, "k3s-master-01"), 31695, "/healthz", timeout=0.6)


def test_ingress_routes_by_host(sb):
    ip = h.node_ip(sb, "k3s-worker-03")
    front = h.get(ip, 31695, "/", host="platform.keybuzz.io")
    assert front.status == 200 and b"<title>KeyBuzz" in front.data and front.headers["Server"] == "nginx"
    api = h.get(ip, 31695, "/api/v1/status", host="platform-api.keybuzz.io", headers={"User-Agent": "kb-test"})
    body = json.loads(api.data)
    assert api.status == 200 and body["app"] == "keybuzz-api" and body["node"] in h.WORKERS
    fwd = body["request"]["forwarded"]
    assert body["request"]["host"] == "platform-api.keybuzz.io"  # the original Host is passed on
    assert fwd["X-Forwarded-Host"] == "platform-api.keybuzz.io" and fwd["X-Forwarded-Proto"] == "http"
    assert fwd["X-Forwarded-For"] == "127.0.0.1" and len(fwd["X-Request-ID"]) == 32
    # the controller logged it like ingress-nginx (kubectl logs)
    pod = next(p for p in h.pods(sb, "ingress-nginx") if p.spec.node_name == "k3s-worker-03")
    api_client = sb.kube_client()
    log = client.CoreV1Api(api_client).read_namespaced_pod_log(pod.metadata.name, "ingress-nginx")
    api_client.close()
    assert '"GET /api/v1/status HTTP/1.1" 200' in log and "[keybuzz-keybuzz-api-8080]" in log and '"kb-test"' in log


def _paths_ingress(name: str, host: str, paths: list[tuple[str, str, str, int]]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": ptype, "backend": {"service": {"name": svc, "port": {"number": port}}}}
                for path, ptype, svc, port in paths
            ]}}],
        },
    }


def _answered_by(r) -> str:
    """keybuzz-api answers JSON naming itself, keybuzz-front a KeyBuzz page, nginx its 404 page."""
    if r.status == 404 and b"<center>nginx</center>" in r.data:
        return "nginx-404"
    assert r.status == 200, (r.status, r.data[:200])
    if r.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(r.data)["app"]
    assert b"<title>KeyBuzz" in r.data
    return "keybuzz-front"


def test_ingress_routes_by_path_to_two_services_on_one_host(sb):
    """One host, two Services: Prefix matches whole path elements, Exact the path alone (query
    string aside), the longest match wins; requests go through the NodePort with a Host header."""
    h.create(sb, [
        _paths_ingress("paths", "paths.keybuzz.io", [
            ("/", "Prefix", "keybuzz-front", 3000),
            ("/api", "Prefix", "keybuzz-api", 8080),
            ("/version", "Exact", "keybuzz-api", 8080),
        ]),
        _paths_ingress("exact-only", "exact.keybuzz.io", [("/v1/ping", "Exact", "keybuzz-api", 8080)]),
    ])
    ip = h.node_ip(sb, "k3s-worker-02")

    def via(host: str, path: str) -> str:
        return _answered_by(h.get(ip, 31695, path, host=host))

    h.wait_for(lambda: via("paths.keybuzz.io", "/api") == "keybuzz-api", what="the paths Ingress to sync")
    routes = {
        "/": "keybuzz-front",
        "/dashboard/settings": "keybuzz-front",
        "/api": "keybuzz-api",
        "/api/": "keybuzz-api",
        "/api/v1/status": "keybuzz-api",
        "/api?verbose=1": "keybuzz-api",
        "/apiary": "keybuzz-front",  # Prefix /api is not a string prefix of /apiary
        "/version": "keybuzz-api",
        "/version?x=1": "keybuzz-api",
        "/version/": "keybuzz-front",  # Exact: not even a trailing slash
        "/version/x": "keybuzz-front",
        "/versions": "keybuzz-front",
    }
    assert {path: via("paths.keybuzz.io", path) for path in routes} == routes
    # a host with one Exact path and no "/": everything else is nginx's own 404
    assert {path: via("exact.keybuzz.io", path) for path in ("/v1/ping", "/v1/ping/", "/v1", "/")} == {
        "/v1/ping": "keybuzz-api", "/v1/ping/": "nginx-404", "/v1": "nginx-404", "/": "nginx-404",
    }
    # the backend sees the request as sent: no rewrite, the original Host
    body = json.loads(h.get(ip, 31695, "/api/v1/status?x=1", host="paths.keybuzz.io").data)
    assert body["request"]["path"] == "/api/v1/status?x=1" and body["request"]["host"] == "paths.keybuzz.io"
    # and every worker routes alike (the same Ingress objects drive each controller pod)
    for w in h.WORKERS:
        assert _answered_by(h.get(h.node_ip(sb, w), 31695, "/api/x", host="paths.keybuzz.io")) == "keybuzz-api"
        assert _answered_by(h.get(h.node_ip(sb, w), 31695, "/apiary", host="paths.keybuzz.io")) == "keybuzz-front"


def test_ingress_round_robins_over_hostnetwork_endpoints(sb):
    ip = h.node_ip(sb, "k3s-worker-01")
    nodes = {json.loads(h.get(ip, 31695, "/", host="platform-api.keybuzz.io").data)["node"] for _ in range(10)}
    assert nodes == set(h.WORKERS)  # ingress-nginx talks to the endpoints, not through the ClusterIP


def test_default_server_healthz_and_unknown_hosts(sb):
    ip = h.node_ip(sb, "k3s-worker-05")
    assert h.get(ip, 31695, "/healthz").status == 200  # the Hetzner LB health check
    assert h.get(ip, 31695, "/healthz", host=f"{ip}:31695").status == 200
    r = h.get(ip, 31695, "/", host="unknown.example.com")
    assert r.status == 404 and r.data == (
        b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
        b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


def test_no_ready_endpoint_gives_503(sb):
    h.create(sb, [h.service("nothing", 80, NS, selector={"app": "nothing"}), h.ingress("nothing", {"empty.keybuzz.io": ("nothing", 80)}, NS)])
    r = h.wait_for(lambda: (lambda r: r if r.status == 503 else None)(h.get(h.node_ip(sb, "k3s-worker-02"), 31695, "/", host="empty.keybuzz.io")), what="503")
    assert r.reason == "Service Temporarily Unavailable" and b"<title>503 Service Temporarily Unavailable</title>" in r.data


def test_refusing_endpoint_gives_502_and_an_error_log(sb):
    ip = h.node_ip(sb, "k3s-worker-04")
    manual = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual", "namespace": NS}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9999}]}},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual", "namespace": NS}, "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "http", "port": 9999}]}]},
        h.ingress("manual", {"manual.keybuzz.io": ("manual", 80)}, NS),
    ]
    h.create(sb, manual)
    r = h.wait_for(lambda: (lambda r: r if r.status != 404 else None)(h.get(ip, 31695, "/", host="manual.keybuzz.io")), what="ingress sync")
    assert r.status == 502 and b"502 Bad Gateway" in r.data
    pod = next(p for p in h.pods(sb, "ingress-nginx") if p.spec.node_name == "k3s-worker-04")
    api_client = sb.kube_client()
    log = client.CoreV1Api(api_client).read_namespaced_pod_log(pod.metadata.name, "ingress-nginx")
    api_client.close()
    assert f'connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: manual.keybuzz.io, request: "GET / HTTP/1.1", upstream: "http://{ip}:9999/"' in log


def test_https_nodeport_serves_the_fake_certificate_then_the_ingress_secret(sb):
    ip = h.node_ip(sb, "k3s-worker-02")
    ctx = ssl.create_default_context(cafile=str(sb.ca_path))
    ctx.check_hostname = False
    with socket.create_connection((ip, 32720), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname="platform-api.keybuzz.io") as tls:
        subject = dict(x[0] for x in tls.getpeercert()["subject"])
        assert subject["commonName"] == "Kubernetes Ingress Controller Fake Certificate"
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: platform-api.keybuzz.io\r\nConnection: close\r\n\r\n")
        data = b"".join(iter(lambda: tls.recv(65536), b""))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["app"] == "keybuzz-api"

    cert = sb.ca.issue("secure.keybuzz.io")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "secure-tls", "namespace": NS},
        "data": {"tls.crt": base64.b64encode(cert.chain_pem.encode()).decode(), "tls.key": base64.b64encode(cert.key_pem.encode()).decode()},
    }
    ing = h.ingress("secure", {"secure.keybuzz.io": ("keybuzz-front", 3000)}, NS, tls=[{"hosts": ["secure.keybuzz.io"], "secretName": "secure-tls"}])
    h.create(sb, [secret, ing])
    strict = ssl.create_default_context(cafile=str(sb.ca_path))  # hostname checked this time
    with socket.create_connection((ip, 32720), timeout=5) as raw, strict.wrap_socket(raw, server_hostname="secure.keybuzz.io") as tls:
        assert dict(x[0] for x in tls.getpeercert()["subject"])["commonName"] == "secure.keybuzz.io"
        tls.sendall(b"GET / HTTP/1.1\r\nHost: secure.keybuzz.io\r\nConnection: close\r\n\r\n")
        data = b"".join(iter(lambda: tls.recv(65536), b""))
    assert data.startswith(b"HTTP/1.1 200") and b"Strict-Transport-Security: max-age=31536000; includeSubDomains" in data
    # plain HTTP to a TLS host is redirected, unless the LB says it terminated TLS (use-forwarded-headers)
    r = h.get(ip, 31695, "/x?y=1", host="secure.keybuzz.io")
    assert r.status == 308 and r.headers["Location"] == "https://secure.keybuzz.io/x?y=1"
    assert h.get(ip, 31695, "/", host="secure.keybuzz.io", headers={"X-Forwarded-Proto": "https"}).status == 200


def test_readiness_probe_of_a_broken_image_fails_for_real(sb):
    ds = h.hostnet_daemonset("broken-api", "ghcr.io/keybuzz/keybuzz-api:1.4.3-broken", 8081)
    h.create(sb, [ds])
    events = client.CoreV1Api(sb.kube_client())

    def unhealthy():
        evs = events.list_namespaced_event(NS).items
        return [e for e in evs if e.reason == "Unhealthy" and e.involved_object.name.startswith("broken-api-")]

    evs = h.wait_for(unhealthy, what="Unhealthy event")
    assert evs[0].message == "Readiness probe failed: HTTP probe failed with statuscode: 500"
    ip = h.node_ip(sb, "k3s-worker-01")
    assert h.get(ip, 8081, "/healthz").status == 500  # what the probe saw, on the real socket
    assert not any(h.ready(p) for p in h.pods(sb, NS, "app=broken-api"))


def test_readiness_probe_on_a_port_nobody_listens_on(sb):
    ds = h.hostnet_daemonset("misprobed", h.API_IMAGE, 8082)
    ds["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 8083
    h.create(sb, [ds])
    events = client.CoreV1Api(sb.kube_client())

    def unhealthy():
        evs = events.list_namespaced_event(NS).items
        return [e for e in evs if e.reason == "Unhealthy" and e.involved_object.name.startswith("misprobed-")]

    ev = h.wait_for(unhealthy, what="Unhealthy event")[0]
    node_ip = h.node_ip(sb, ev.source.host)
    assert ev.message == f'Readiness probe failed: Get "http://{node_ip}:8083/healthz": dial tcp {node_ip}:8083: connect: connection refused'


def test_probe_over_real_sockets_agrees_with_the_model(sb):
    from keybuzz_tui.sandbox.dataplane.probes import ProbeSpec

    prober = sb.dataplane.prober
    ip = h.node_ip(sb, "k3s-worker-02")
    cases = {
        ProbeSpec("http", ip, 8080, "/healthz"): (True, ""),
        ProbeSpec("http", ip, 8084, "/healthz"): (False, f'Get "http://{ip}:8084/healthz": dial tcp {ip}:8084: connect: connection refused'),
        ProbeSpec("tcp", ip, 3000): (True, ""),
        ProbeSpec("tcp", ip, 8084): (False, f"dial tcp {ip}:8084: connect: connection refused"),
    }
    for spec, expected in cases.items():
        assert sb.call(prober.real, "k3s-worker-02", spec) == expected
        assert sb.call(prober.model, "k3s-worker-02", spec) == expected


def test_debug_pod_toolbox_on_a_healthy_overlay(sb):
    w2 = h.node_ip(sb, "k3s-worker-02")
    script = (
        "nslookup keybuzz-api.keybuzz.svc.cluster.local; "
        "wget -T 5 -qO- http://keybuzz-api.keybuzz:8080/healthz && "
        f"nc -zv -w 2 {w2} 30080; nc -z -w 1 {w2} 1; cat /etc/resolv.conf"
    )
    out, phase = h.run_debug_pod(sb, "dbg-healthy", "k3s-worker-02", script)
    svc_ip = client.CoreV1Api(sb.kube_client()).read_namespaced_service("keybuzz-api", NS).spec.cluster_ip
    assert "Name:\tkeybuzz-api.keybuzz.svc.cluster.local" in out and f"Address: {svc_ip}" in out
    assert '{"status":"ok"}' in out
    assert f"{w2} ({w2}:30080) open" in out
    assert f"nc: can't connect to remote host ({w2}): Connection refused" in out
    assert "nameserver 10.43.0.10" in out and "search default.svc.cluster.local svc.cluster.local cluster.local" in out
    assert phase == "Succeeded"


def test_overlay_request_api(sb):
    """The function other parts of the sandbox call: same node served, other node too (overlay ok)."""
    from multidict import CIMultiDict

    from keybuzz_tui.sandbox.dataplane import HttpRequest

    coredns = h.pods(sb, "kube-system", "k8s-app=kube-dns")[0]
    req = HttpRequest("GET", "/ready", CIMultiDict({"Host": "x"}))
    resp = sb.call(lambda: sb.dataplane.overlay_request("k3s-worker-04", coredns.status.pod_ip, 8181, req, timeout=5))
    assert (resp.status, resp.text) == (200, "OK")
