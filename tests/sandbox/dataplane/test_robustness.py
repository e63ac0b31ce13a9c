"""Clients that misbehave never break the sandbox loop, and stop() leaves no socket behind."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import urllib3
from sandbox.dataplane import harness as h


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    # a short idle timeout (10 sandbox s) so the idle test is quick; vxlan-blocked for a slow route
    sb = h.start(tmp_path_factory.mktemp("dp-robust"), "vxlan-blocked", dataplane={"idle_seconds": 10})
    h.create(sb, h.keybuzz_hostnetwork())
    h.create(sb, h.keybuzz_clusterip("k3s-worker-01", "keybuzz-old", connect_timeout="60"))
    h.wait_ready(sb, "keybuzz", "app=keybuzz-api", 5)
    h.wait_ready(sb, "keybuzz-old", "app=keybuzz-api", 1)
    yield sb
    sb.stop()


def _alive(sb) -> None:
    ip = h.node_ip(sb, "k3s-worker-02")
    assert h.get(ip, 31695, "/healthz").status == 200
    assert h.get(ip, 8080, "/healthz").status == 200
    assert sb.call(lambda: 42) == 42
    assert not sb.cluster.manager.errors


def _recv_all(s: socket.socket, limit: float = 3.0) -> bytes:
    s.settimeout(limit)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


@pytest.mark.parametrize("port", [31695, 8080, 30080])
def test_garbage_gets_400_or_a_close(sb, port):
    ip = h.node_ip(sb, "k3s-worker-02")
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), b"GET / HTTP/9.9\r\n\r\n", b"HELLO\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
        with socket.create_connection((ip, port), timeout=3) as s:
            s.sendall(junk)
            data = _recv_all(s)
        assert data == b"" or data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.0 4")
    _alive(sb)


def test_tls_port_with_plain_text_or_garbage(sb):
    ip = h.node_ip(sb, "k3s-worker-02")
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 4096):
        with socket.create_connection((ip, 32720), timeout=3) as s:
            s.sendall(junk)
            data = _recv_all(s)
            assert data == b"" or data[:1] == b"\x15"  # closed, or a TLS alert: either way nothing hangs
    ctx = ssl.create_default_context(cafile=str(sb.ca_path))
    ctx.check_hostname = False
    with socket.create_connection((ip, 32720), timeout=3) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert _recv_all(tls).startswith(b"HTTP/1.1 200")
    _alive(sb)


@pytest.mark.parametrize("port", [31695, 8080])
def test_idle_clients_are_closed(sb, port):
    ip = h.node_ip(sb, "k3s-worker-03")
    with socket.create_connection((ip, port), timeout=5) as s:
        t0 = time.monotonic()
        assert _recv_all(s, limit=5.0) == b""  # closed by the server, without a word
        assert time.monotonic() - t0 < 4.0
    # a keep-alive connection that goes quiet after one request is closed too
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = _recv_all(s, limit=5.0)
        assert data.startswith(b"HTTP/1.1 200")
    _alive(sb)


def test_half_closed_and_vanishing_clients(sb):
    ip = h.node_ip(sb, "k3s-worker-04")
    # half-close after the request: the answer still comes
    with socket.create_connection((ip, 30080), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        assert _recv_all(s).startswith(b"HTTP/1.1 200")
    # vanish (RST) in the middle of a request, of a slow upstream (60 s connect timeout) and of a pipe
    for port, req in ((31695, b"GET / HTTP/1.1\r\nHost: old-api.keybuzz.io\r\n\r\n"), (31695, b"GET / HTTP/1.1\r\nHost: platform.ke"), (30080, b"GET / HTTP/1.1\r\n")):
        s = socket.create_connection((ip, port), timeout=5)
        s.sendall(req)
        time.sleep(0.05)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    _alive(sb)


def test_many_concurrent_clients(sb):
    ips = [h.node_ip(sb, w) for w in h.WORKERS]
    results: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        # correctness under concurrency, not latency: a loaded CI machine may be slow to answer 60 at once
        r = h.get(ips[i % 5], (31695, 30080, 8080)[i % 3], "/healthz", host="platform-api.keybuzz.io" if i % 3 == 0 else None, timeout=30)
        with lock:
            results.append(r.status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 60


def test_stop_closes_every_socket(tmp_path):
    sb = h.start(tmp_path / "stopme")
    h.create(sb, h.keybuzz_hostnetwork())
    h.wait_ready(sb, "keybuzz", "app=keybuzz-api", 5)
    ip = h.node_ip(sb, "k3s-worker-01")
    held = socket.create_connection((ip, 31695), timeout=3)  # an idle client during stop
    listeners = [(b.listener.ip, b.listener.port) for b in sb.dataplane.ports.all() if b.listener is not None]
    nodeports = list(sb.dataplane.kube_proxy.listeners)
    assert len(listeners) >= 10 and len(nodeports) == 8 * 4
    sb.stop()
    assert _recv_all(held, limit=3.0) == b""
    held.close()
    for addr in listeners + [(h.node_ip(sb, n), p) for n, p in nodeports]:
        assert h.port_free(*addr), addr
    with pytest.raises(urllib3.exceptions.NewConnectionError):
        h.get(ip, 31695, "/healthz", timeout=1)
