"""The guard itself: traffic outside loopback is refused and recorded, loopback passes."""

from __future__ import annotations

import socket

import pytest
from support import netguard

pytestmark = pytest.mark.netguard_selftest


def test_connect_outside_loopback_is_refused_and_recorded():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(netguard.ForbiddenNetworkAccess):
            s.connect(("10.0.0.110", 8080))
    finally:
        s.close()
    assert netguard.GUARD.take() == ["socket.connect to ('10.0.0.110', 8080)"]


def test_udp_sendto_outside_loopback_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(netguard.ForbiddenNetworkAccess):
            s.sendto(b"x", ("8.8.8.8", 53))
    finally:
        s.close()
    assert len(netguard.GUARD.take()) == 1


def test_name_lookup_of_a_public_name_is_refused():
    with pytest.raises(netguard.ForbiddenNetworkAccess):
        socket.getaddrinfo("platform.keybuzz.io", 443)
    assert netguard.GUARD.take() == ["getaddrinfo('platform.keybuzz.io')"]


def test_ipv6_outside_loopback_is_refused():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        with pytest.raises(netguard.ForbiddenNetworkAccess):
            s.connect(("2001:db8::1", 443, 0, 0))
    finally:
        s.close()
    netguard.GUARD.take()


def test_loopback_is_allowed_anywhere_in_127_slash_8_and_ipv6():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.3.10.110", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname(), timeout=2)
    c.close()
    srv.close()
    socket.getaddrinfo("localhost", 80)
    assert netguard.is_loopback_host("::1")
    assert netguard.GUARD.take() == []


def test_a_thread_breaking_the_rule_is_still_recorded():
    import threading

    def leak():
        try:
            socket.create_connection(("192.0.2.10", 80), timeout=0.1)
        except OSError:
            pass

    t = threading.Thread(target=leak)
    t.start()
    t.join()
    # create_connection resolves first, so the guard stops it at the lookup, before any packet
    assert netguard.GUARD.take() == ["getaddrinfo('192.0.2.10')"]


def test_listening_on_the_wildcard_or_a_public_address_is_refused():
    for host in ("", "0.0.0.0", "10.0.0.110"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            with pytest.raises(netguard.ForbiddenNetworkAccess):
                s.bind((host, 0))
        finally:
            s.close()
    assert len(netguard.GUARD.take()) == 3


def test_a_child_process_is_guarded_and_reports_to_the_log(tmp_path):
    """Every Python process a test starts inherits the guard (sitecustomize on PYTHONPATH) and its
    violations reach the fixture through the log file, even when the child swallowed the error."""
    import os
    import subprocess
    import sys

    log = netguard.ChildLog(tmp_path / "children.log")
    env = {**os.environ, netguard.LOG_ENV: str(log.path)}
    script = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('203.0.113.7', 80), timeout=0.1)\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close(); print('loopback ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ForbiddenNetworkAccess", "loopback", "ok"]
    seen = log.take()
    assert len(seen) == 1 and "getaddrinfo('203.0.113.7')" in seen[0], seen
    assert log.take() == []  # read incrementally


def test_child_env_guards_a_process_started_with_a_clean_environment(tmp_path):
    import subprocess
    import sys

    env = netguard.child_env({"PATH": "/usr/bin:/bin"})
    r = subprocess.run([sys.executable, "-c", "import sys; print('keybuzz_netguard' in sys.modules)"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.stdout.strip() == "True", r.stderr
