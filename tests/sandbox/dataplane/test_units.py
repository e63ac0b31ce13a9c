"""Pure pieces of the data plane: routing rules, nginx pages, failure wording, busybox parsing."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from keybuzz_tui.sandbox.dataplane import apps, clusterdns, ingress, probes, toolbox, wire
from keybuzz_tui.sandbox.dataplane.sockets import check_dialable


@pytest.mark.parametrize(
    ("ptype", "rule", "path", "ok"),
    [
        ("Prefix", "/", "/anything", True),
        ("Prefix", "/api", "/api", True),
        ("Prefix", "/api", "/api/v1", True),
        ("Prefix", "/api", "/apiv1", False),
        ("Prefix", "/api/", "/api", True),
        ("Exact", "/api", "/api/", False),
        ("Exact", "/api", "/api", True),
        ("ImplementationSpecific", "/api", "/apiv1", True),
    ],
)
def test_path_matching(ptype, rule, path, ok):
    assert ingress.path_matches(ptype, rule, path) is ok


def test_best_path_prefers_exact_then_longest_prefix():
    b = ingress.Backend("ns", "svc", 80)
    rules = [ingress.PathRule("/", "Prefix", b, {}), ingress.PathRule("/api", "Prefix", ingress.Backend("ns", "api", 80), {}), ingress.PathRule("/api/x", "Exact", ingress.Backend("ns", "x", 80), {})]
    assert ingress._best(rules, "/api/x").backend.service == "x"
    assert ingress._best(rules, "/api/y").backend.service == "api"
    assert ingress._best(rules, "/other").backend.service == "svc"


@pytest.mark.parametrize(("rule", "host", "ok"), [("*.keybuzz.io", "a.keybuzz.io", True), ("*.keybuzz.io", "a.b.keybuzz.io", False), ("*.keybuzz.io", "keybuzz.io", False), ("x.io", "x.io", True)])
def test_host_matching(rule, host, ok):
    assert ingress.host_matches(rule, host) is ok


def test_nginx_pages_and_reasons():
    p = wire.nginx_page(504)
    assert p.reason == "Gateway Time-out" and p.headers["Server"] == "nginx"
    assert p.body.startswith(b"<html>\r\n<head><title>504 Gateway Time-out</title></head>")
    assert wire.reason(503, nginx=True) == "Service Temporarily Unavailable" and wire.reason(503) == "Service Unavailable"


def test_failure_wording():
    e = wire.DialError("refused", "127.0.10.112", 8080)
    assert e.go_http("http://127.0.10.112:8080/healthz") == 'Get "http://127.0.10.112:8080/healthz": dial tcp 127.0.10.112:8080: connect: connection refused'
    t = wire.DialError("timeout", "10.42.11.4", 8080)
    assert t.nginx() == "upstream timed out (110: Operation timed out) while connecting to upstream"
    assert t.go_http("u") == 'Get "u": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'


def test_request_host_strips_the_port():
    r = wire.HttpRequest(headers=CIMultiDict({"Host": "Platform.KeyBuzz.io:31695"}))
    assert r.host == "platform.keybuzz.io"


def test_app_answers_follow_the_image():
    t = apps.AppTarget("keybuzz-api", "keybuzz-api", "ghcr.io/keybuzz/keybuzz-api:2.0-broken", "kb", "api-1", "w1", "127.0.10.110", 8080, http_status=500, healthz_status=500)
    assert apps.respond(t, wire.HttpRequest(target="/healthz")).status == 500
    silent = apps.for_host_process("w1", "127.0.10.110", 8080, "python3 -m http.server", "silent")
    assert apps.respond(silent, wire.HttpRequest()) is None
    old = apps.for_host_process("w1", "127.0.10.110", 8080, "nginx: master process", "404")
    assert apps.respond(old, wire.HttpRequest()).headers["Server"] == "nginx/1.18.0 (Ubuntu)"


def test_listen_ports_include_the_undeclared_ones():
    from keybuzz_tui.sandbox import images

    beh = images.behaviour("registry.k8s.io/ingress-nginx/controller:v1.12.1")
    ports = apps.listen_ports(beh, {"ports": [{"name": "http", "containerPort": 80}]})
    assert ports[80] == "http" and 10254 in ports
    assert apps.listen_ports(images.behaviour("busybox"), {}) == {}


def test_probe_specs():
    c = {"ports": [{"name": "http", "containerPort": 8080}]}
    s = probes.spec_for("10.42.1.2", c, {"httpGet": {"path": "healthz", "port": "http"}, "timeoutSeconds": 3})
    assert (s.kind, s.host, s.port, s.path, s.timeout, s.url) == ("http", "10.42.1.2", 8080, "/healthz", 3.0, "http://10.42.1.2:8080/healthz")
    assert probes.spec_for("ip", c, {"exec": {"command": ["true"]}}) is None
    assert probes.spec_for("ip", c, {"tcpSocket": {"port": "nope"}}) is None


def test_shell_splitting_like_sh():
    argv = toolbox.shell_words("nslookup a; wget -qO- http://b && nc -z c 80 || echo down")
    assert toolbox.split_commands(argv) == [("", ["nslookup", "a"]), (";", ["wget", "-qO-", "http://b"]), ("&&", ["nc", "-z", "c", "80"]), ("||", ["echo", "down"])]


def test_dns_search_order():
    rc = clusterdns.ResolvConf(("10.43.0.10",), ("kb.svc.cluster.local", "svc.cluster.local", "cluster.local"), 5, True)
    assert clusterdns.candidates("api", rc)[0] == "api.kb.svc.cluster.local"
    assert clusterdns.candidates("api.kb.svc.cluster.local.", rc) == ["api.kb.svc.cluster.local"]


def test_never_dials_outside_loopback():
    check_dialable("127.3.10.110")
    for ip in ("10.42.1.2", "10.0.0.110", "8.8.8.8"):
        with pytest.raises(PermissionError):
            check_dialable(ip)
