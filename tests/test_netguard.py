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
