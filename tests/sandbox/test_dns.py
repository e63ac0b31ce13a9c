"""Contract tests for the sandbox's authoritative DNS server (keybuzz_tui/sandbox/dns.py).

The server runs on its own event loop in a background thread, exactly like the sandbox runs it,
and is queried over real loopback sockets with dnspython (dns.query.udp/tcp and a Resolver from
resolver_for). Most tests use a non-default loopback address (127.9.53.1) to prove nothing
assumes 127.0.0.1; one test covers 127.0.0.1 itself. Fuzz tests drive `respond()` directly (fast)
and the real sockets (the server must keep serving).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.update
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keybuzz_tui.sandbox.dns import DEFAULT_UDP_PAYLOAD, DNSServer, resolver_for
from keybuzz_tui.sandbox.dnsdata import RRSetData, ZoneData

HOST = "127.9.53.1"
T = TypeVar("T")

BIG_TXT = tuple(f'"{i:03d}-' + "x" * 60 + '"' for i in range(40))  # ~2.9 kB: over any UDP limit
MEDIUM_TXT = tuple(f'"{i:03d}-' + "y" * 60 + '"' for i in range(10))  # ~750 B: over 512, under 1232

KEYBUZZ = ZoneData(
    "keybuzz.io",
    3600,
    (
        RRSetData(
            "@",
            "SOA",
            3600,
            ("hydrogen.ns.hetzner.com. dns.hetzner.com. 2024010101 86400 10800 3600000 300",),
        ),
        RRSetData("@", "NS", None, ("ns1.keybuzz.io.", "helium.ns.hetzner.de.")),
        RRSetData("ns1", "A", None, ("127.0.53.1",)),
        RRSetData("@", "MX", 600, ("10 mail",)),
        RRSetData("mail", "A", None, ("127.0.20.25",)),
        RRSetData("@", "CAA", None, ('0 issue "letsencrypt.org"',)),
        RRSetData("@", "TXT", None, ('"v=spf1 -all"',)),
        RRSetData("platform", "A", 300, ("127.0.20.1",)),
        RRSetData("platform", "AAAA", 300, ("fd00::20:1",)),
        RRSetData("platform-api", "A", None, ("127.0.20.1",)),
        RRSetData("www", "CNAME", 120, ("platform",)),
        RRSetData("alias2", "CNAME", None, ("www.keybuzz.io.",)),
        RRSetData("dangling", "CNAME", None, ("missing",)),
        RRSetData("outside", "CNAME", None, ("target.example.net.",)),
        RRSetData("loop1", "CNAME", None, ("loop2",)),
        RRSetData("loop2", "CNAME", None, ("loop1",)),
        RRSetData("b.a", "A", None, ("127.0.20.2",)),
        RRSetData("*.wild", "A", None, ("127.0.20.9",)),
        RRSetData("delegated", "NS", None, ("ns1.delegated.keybuzz.io.",)),
        RRSetData("ns1.delegated", "A", None, ("127.0.53.2",)),
        RRSetData("big", "TXT", None, BIG_TXT),
        RRSetData("medium", "TXT", None, MEDIUM_TXT),
        RRSetData("broken", "A", None, ("not-an-address",)),
    ),
)
SUB = ZoneData("sub.keybuzz.io", 60, (RRSetData("host", "A", None, ("127.0.30.1",)),))
OTHER = ZoneData("example.test", 900, (RRSetData("@", "A", None, ("127.0.40.1",)),))


# --------------------------------------------------------------------------------------------
# Harness: one event loop in a background thread, as in the sandbox.
# --------------------------------------------------------------------------------------------


class LoopThread:
    """Runs an asyncio loop forever on a daemon thread; tests submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, ctx: self.errors.append(ctx))
        self.thread = threading.Thread(target=self.loop.run_forever, name="dns-test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class World:
    """The zones the snapshot callable returns; tests swap `zones` to simulate API changes."""

    def __init__(self) -> None:
        self.zones: list[ZoneData] = [KEYBUZZ, SUB, OTHER]
        self.fail = False

    def snapshot(self) -> list[ZoneData]:
        if self.fail:
            raise RuntimeError("hetzner state is broken")
        return self.zones


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def world() -> World:
    return World()


def start_server(loop_thread: LoopThread, world: World, host: str = HOST, **kw: Any) -> DNSServer:
    server = DNSServer(world.snapshot, host, 0, **kw)
    loop_thread.run(server.start())
    return server


@pytest.fixture
def server(loop_thread: LoopThread, world: World) -> Iterator[DNSServer]:
    srv = start_server(loop_thread, world)
    yield srv
    loop_thread.run(srv.stop())
    assert not loop_thread.errors, loop_thread.errors  # nothing escaped into the loop


def udp(server: DNSServer, name: str, rdtype: str | int = "A", **kw: Any) -> dns.message.Message:
    host, port = server.address
    return dns.query.udp(dns.message.make_query(name, rdtype, **kw), host, port=port, timeout=2)


def tcp(server: DNSServer, name: str, rdtype: str | int = "A", **kw: Any) -> dns.message.Message:
    host, port = server.address
    return dns.query.tcp(dns.message.make_query(name, rdtype, **kw), host, port=port, timeout=2)


def send_udp(server: DNSServer, query: dns.message.Message) -> dns.message.Message:
    host, port = server.address
    return dns.query.udp(query, host, port=port, timeout=2)


def texts(rrset: dns.rrset.RRset) -> set[str]:
    return {r.to_text() for r in rrset}


def section_types(section: Sequence[dns.rrset.RRset]) -> list[str]:
    return [dns.rdatatype.to_text(r.rdtype) for r in section]


def assert_negative_soa(response: dns.message.Message, zone: str, ttl: int) -> None:
    assert len(response.authority) == 1
    soa = response.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.name == dns.name.from_text(zone)
    assert soa.ttl == ttl


def tc(response: dns.message.Message) -> bool:
    return bool(response.flags & dns.flags.TC)


def aa(response: dns.message.Message) -> bool:
    return bool(response.flags & dns.flags.AA)


# --------------------------------------------------------------------------------------------
# Positive answers
# --------------------------------------------------------------------------------------------


def test_a_record_is_authoritative_with_its_ttl(server: DNSServer) -> None:
    r = udp(server, "platform.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert aa(r)
    assert not r.flags & dns.flags.RA  # authoritative only, never recursive
    assert len(r.answer) == 1
    assert texts(r.answer[0]) == {"127.0.20.1"}
    assert r.answer[0].ttl == 300


def test_rrset_without_ttl_uses_the_zone_default(server: DNSServer) -> None:
    r = udp(server, "platform-api.keybuzz.io", "A")
    assert r.answer[0].ttl == 3600


def test_aaaa_txt_caa_soa(server: DNSServer) -> None:
    assert texts(udp(server, "platform.keybuzz.io", "AAAA").answer[0]) == {"fd00::20:1"}
    assert texts(udp(server, "keybuzz.io", "TXT").answer[0]) == {'"v=spf1 -all"'}
    assert texts(udp(server, "keybuzz.io", "CAA").answer[0]) == {'0 issue "letsencrypt.org"'}
    soa = udp(server, "keybuzz.io", "SOA").answer[0]
    assert soa.ttl == 3600  # a positive SOA answer keeps its own TTL
    assert soa[0].serial == 2024010101


def test_mx_and_ns_answers_carry_in_zone_addresses_in_additional(server: DNSServer) -> None:
    mx = udp(server, "keybuzz.io", "MX")
    assert texts(mx.answer[0]) == {"10 mail.keybuzz.io."}
    assert mx.answer[0].ttl == 600
    assert [(str(r.name), texts(r)) for r in mx.additional] == [("mail.keybuzz.io.", {"127.0.20.25"})]
    ns = udp(server, "keybuzz.io", "NS")
    assert texts(ns.answer[0]) == {"ns1.keybuzz.io.", "helium.ns.hetzner.de."}
    assert [str(r.name) for r in ns.additional] == ["ns1.keybuzz.io."]  # out-of-zone NS: no glue


def test_same_answers_over_tcp(server: DNSServer) -> None:
    r = tcp(server, "platform.keybuzz.io", "A")
    assert aa(r)
    assert texts(r.answer[0]) == {"127.0.20.1"}


def test_resolver_helper_queries_only_this_server(server: DNSServer) -> None:
    resolver = resolver_for(server.address)
    assert [getattr(ns, "address", ns) for ns in resolver.nameservers] == [HOST]
    assert resolver.port == server.address[1]
    assert resolver.cache is None and resolver.search == []
    answer = resolver.resolve("platform.keybuzz.io", "A")
    assert [r.address for r in answer] == ["127.0.20.1"]
    assert answer.rrset is not None and answer.rrset.ttl == 300


def test_server_on_127_0_0_1(loop_thread: LoopThread, world: World) -> None:
    srv = start_server(loop_thread, world, host="127.0.0.1")
    try:
        assert srv.address[0] == "127.0.0.1" and srv.address[1] > 0
        assert texts(udp(srv, "platform.keybuzz.io").answer[0]) == {"127.0.20.1"}
        assert texts(tcp(srv, "platform.keybuzz.io").answer[0]) == {"127.0.20.1"}
        assert [r.address for r in resolver_for(srv.address).resolve("example.test", "A")] == ["127.0.40.1"]
    finally:
        loop_thread.run(srv.stop())


# --------------------------------------------------------------------------------------------
# CNAME
# --------------------------------------------------------------------------------------------


def test_cname_is_chased_inside_the_zone(server: DNSServer) -> None:
    r = udp(server, "www.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NOERROR and aa(r)
    assert section_types(r.answer) == ["CNAME", "A"]
    assert str(r.answer[0].name) == "www.keybuzz.io." and r.answer[0].ttl == 120
    assert texts(r.answer[0]) == {"platform.keybuzz.io."}  # relative target made absolute
    assert str(r.answer[1].name) == "platform.keybuzz.io." and texts(r.answer[1]) == {"127.0.20.1"}


def test_cname_chain_of_two_and_resolver_follows_it(server: DNSServer) -> None:
    r = udp(server, "alias2.keybuzz.io", "A")
    assert section_types(r.answer) == ["CNAME", "CNAME", "A"]
    answer = resolver_for(server.address).resolve("alias2.keybuzz.io", "A")
    assert str(answer.canonical_name) == "platform.keybuzz.io."
    assert [a.address for a in answer] == ["127.0.20.1"]


def test_cname_query_is_not_chased(server: DNSServer) -> None:
    r = udp(server, "www.keybuzz.io", "CNAME")
    assert section_types(r.answer) == ["CNAME"]


def test_cname_to_missing_in_zone_name_is_nxdomain_with_the_cname(server: DNSServer) -> None:
    r = udp(server, "dangling.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN  # RFC 6604: the rcode of the last name looked up
    assert section_types(r.answer) == ["CNAME"]
    assert_negative_soa(r, "keybuzz.io", 300)


def test_cname_out_of_zone_is_left_to_the_client(server: DNSServer) -> None:
    r = udp(server, "outside.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert section_types(r.answer) == ["CNAME"]
    assert r.authority == []


def test_cname_loop_terminates(server: DNSServer) -> None:
    r = udp(server, "loop1.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert section_types(r.answer) == ["CNAME", "CNAME"]


def test_cname_target_with_other_types_is_nodata_with_chain(server: DNSServer) -> None:
    r = udp(server, "www.keybuzz.io", "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert section_types(r.answer) == ["CNAME"]
    assert_negative_soa(r, "keybuzz.io", 300)


# --------------------------------------------------------------------------------------------
# Negative answers, REFUSED, zones
# --------------------------------------------------------------------------------------------


def test_nxdomain_has_the_soa_with_the_negative_ttl(server: DNSServer) -> None:
    r = udp(server, "nope.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and aa(r)
    assert r.answer == []
    assert_negative_soa(r, "keybuzz.io", 300)  # min(SOA TTL 3600, MINIMUM 300), RFC 2308
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver_for(server.address).resolve("nope.keybuzz.io", "A")


def test_nodata_when_the_name_has_other_types(server: DNSServer) -> None:
    r = udp(server, "platform.keybuzz.io", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and aa(r)
    assert r.answer == []
    assert_negative_soa(r, "keybuzz.io", 300)
    with pytest.raises(dns.resolver.NoAnswer):
        resolver_for(server.address).resolve("platform.keybuzz.io", "TXT")


def test_empty_non_terminal_is_nodata_not_nxdomain(server: DNSServer) -> None:
    r = udp(server, "a.keybuzz.io", "A")  # b.a.keybuzz.io exists
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []
    assert_negative_soa(r, "keybuzz.io", 300)
    assert texts(udp(server, "b.a.keybuzz.io", "A").answer[0]) == {"127.0.20.2"}


def test_names_outside_every_zone_are_refused(server: DNSServer) -> None:
    r = udp(server, "example.com", "A")
    assert r.rcode() == dns.rcode.REFUSED
    assert not aa(r)
    assert r.answer == [] and r.authority == []
    with pytest.raises(dns.resolver.NoNameservers):
        resolver_for(server.address).resolve("www.example.com", "A")


def test_other_classes_and_zone_transfers_are_refused(server: DNSServer) -> None:
    assert udp(server, "keybuzz.io", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED
    assert tcp(server, "keybuzz.io", "AXFR").rcode() == dns.rcode.REFUSED


def test_longest_suffix_zone_wins(server: DNSServer) -> None:
    r = udp(server, "host.sub.keybuzz.io", "A")
    assert texts(r.answer[0]) == {"127.0.30.1"} and r.answer[0].ttl == 60
    missing = udp(server, "missing.sub.keybuzz.io", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    # sub.keybuzz.io has no SOA in its data: a synthesized one, MINIMUM = zone TTL.
    assert_negative_soa(missing, "sub.keybuzz.io", 60)
    assert texts(udp(server, "example.test", "A").answer[0]) == {"127.0.40.1"}


def test_delegation_gets_a_referral_with_glue(server: DNSServer) -> None:
    for name in ("delegated.keybuzz.io", "deep.host.delegated.keybuzz.io"):
        r = udp(server, name, "A")
        assert r.rcode() == dns.rcode.NOERROR
        assert not aa(r)  # a referral is not an authoritative answer
        assert r.answer == []
        assert section_types(r.authority) == ["NS"]
        assert str(r.authority[0].name) == "delegated.keybuzz.io."
        assert [(str(g.name), texts(g)) for g in r.additional] == [
            ("ns1.delegated.keybuzz.io.", {"127.0.53.2"})
        ]


def test_wildcard_is_synthesized_for_missing_names_only(server: DNSServer) -> None:
    r = udp(server, "anything.wild.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NOERROR and aa(r)
    assert str(r.answer[0].name) == "anything.wild.keybuzz.io."
    assert texts(r.answer[0]) == {"127.0.20.9"}
    assert texts(udp(server, "x.y.wild.keybuzz.io", "A").answer[0]) == {"127.0.20.9"}
    nodata = udp(server, "anything.wild.keybuzz.io", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    ent = udp(server, "wild.keybuzz.io", "A")  # exists (as the wildcard's parent): no synthesis
    assert ent.rcode() == dns.rcode.NOERROR and ent.answer == []


def test_any_returns_every_rrset_at_the_name(server: DNSServer) -> None:
    r = tcp(server, "keybuzz.io", "ANY")
    assert r.rcode() == dns.rcode.NOERROR and aa(r)
    assert sorted(section_types(r.answer)) == sorted(["SOA", "NS", "MX", "CAA", "TXT"])
    platform = udp(server, "platform.keybuzz.io", "ANY")
    assert sorted(section_types(platform.answer)) == ["A", "AAAA"]
    assert udp(server, "nope.keybuzz.io", "ANY").rcode() == dns.rcode.NXDOMAIN


def test_query_case_is_preserved_and_matching_is_case_insensitive(server: DNSServer) -> None:
    r = udp(server, "PlAtFoRm.KeyBuzz.IO", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.question[0].name.to_text() == "PlAtFoRm.KeyBuzz.IO."
    assert r.answer[0].name.to_text() == "PlAtFoRm.KeyBuzz.IO."
    assert texts(r.answer[0]) == {"127.0.20.1"}
    chased = udp(server, "WWW.KEYBUZZ.IO", "A")
    assert chased.answer[0].name.to_text() == "WWW.KEYBUZZ.IO."
    assert section_types(chased.answer) == ["CNAME", "A"]


# --------------------------------------------------------------------------------------------
# Live data
# --------------------------------------------------------------------------------------------


def test_snapshot_changes_are_visible_on_the_next_query(server: DNSServer, world: World) -> None:
    assert texts(udp(server, "platform.keybuzz.io").answer[0]) == {"127.0.20.1"}
    changed = ZoneData(
        "keybuzz.io",
        3600,
        tuple(r for r in KEYBUZZ.rrsets if not (r.name == "platform" and r.type == "A"))
        + (
            RRSetData("platform", "A", 30, ("127.0.20.77", "127.0.20.78")),
            RRSetData("new", "A", None, ("127.0.20.5",)),
        ),
    )
    world.zones = [changed, SUB, OTHER]
    r = udp(server, "platform.keybuzz.io")
    assert texts(r.answer[0]) == {"127.0.20.77", "127.0.20.78"} and r.answer[0].ttl == 30
    assert texts(udp(server, "new.keybuzz.io").answer[0]) == {"127.0.20.5"}
    world.zones = [SUB]  # the zone is deleted
    assert udp(server, "platform.keybuzz.io").rcode() == dns.rcode.REFUSED


def test_unparseable_rrset_is_skipped_not_fatal(server: DNSServer) -> None:
    r = udp(server, "broken.keybuzz.io", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN  # the broken rrset is not served...
    assert udp(server, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR  # ...the rest is


def test_bad_zones_are_skipped_not_fatal(server: DNSServer, world: World) -> None:
    world.zones = [
        ZoneData("", 3600, (RRSetData("@", "A", None, ("127.0.0.66",)),)),  # not the root zone
        ZoneData("bad..name", 3600),
        ZoneData("negative-ttl.test", -5),
        ZoneData(
            "ttl.test", 60, (RRSetData("x", "A", -1, ("127.0.0.1",)), RRSetData("y", "NOPE", None, ("1",)))
        ),
        KEYBUZZ,
    ]
    assert udp(server, "example.com").rcode() == dns.rcode.REFUSED
    assert udp(server, "x.ttl.test").rcode() == dns.rcode.NXDOMAIN
    assert udp(server, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR


def test_failing_snapshot_is_servfail_and_recovers(server: DNSServer, world: World) -> None:
    world.fail = True
    assert udp(server, "platform.keybuzz.io").rcode() == dns.rcode.SERVFAIL
    world.fail = False
    assert udp(server, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR


# --------------------------------------------------------------------------------------------
# Truncation and EDNS
# --------------------------------------------------------------------------------------------


def test_big_answer_is_truncated_over_udp_and_complete_over_tcp(server: DNSServer) -> None:
    r = udp(server, "big.keybuzz.io", "TXT")
    assert tc(r)
    assert len(r.to_wire()) <= 512
    assert r.answer == []  # the one rrset does not fit at all
    full = tcp(server, "big.keybuzz.io", "TXT")
    assert not tc(full)
    assert len(full.answer[0]) == len(BIG_TXT)
    assert server.stats["truncated"] >= 1


def test_edns_payload_is_honoured_but_capped(server: DNSServer) -> None:
    assert tc(udp(server, "medium.keybuzz.io", "TXT"))  # > 512 without EDNS
    r = udp(server, "medium.keybuzz.io", "TXT", use_edns=0, payload=1232)
    assert not tc(r) and len(r.answer[0]) == len(MEDIUM_TXT)
    # A client offering 4096 still gets at most our 1232 over UDP.
    big = udp(server, "big.keybuzz.io", "TXT", use_edns=0, payload=4096)
    assert tc(big) and len(big.to_wire()) <= DEFAULT_UDP_PAYLOAD
    # A payload below 512 is treated as 512.
    assert not tc(udp(server, "platform.keybuzz.io", "A", use_edns=0, payload=100))


def test_resolver_retries_truncated_answers_over_tcp(server: DNSServer) -> None:
    answer = resolver_for(server.address).resolve("big.keybuzz.io", "TXT")
    assert len(answer) == len(BIG_TXT)
    assert server.stats["tcp_messages"] >= 1


def test_edns_is_echoed_with_our_payload_and_the_do_bit(server: DNSServer) -> None:
    r = udp(server, "platform.keybuzz.io", use_edns=0, payload=4096, want_dnssec=True)
    assert r.edns == 0
    assert r.payload == DEFAULT_UDP_PAYLOAD
    assert r.ednsflags & dns.flags.DO
    plain = udp(server, "platform.keybuzz.io")
    assert plain.edns == -1  # no OPT in, no OPT out


def test_unknown_edns_version_is_badvers(server: DNSServer) -> None:
    r = udp(server, "platform.keybuzz.io", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS
    assert r.edns == 0
    assert r.answer == []


# --------------------------------------------------------------------------------------------
# Malformed and unusual messages
# --------------------------------------------------------------------------------------------


def test_other_opcodes_are_notimp(server: DNSServer) -> None:
    q = dns.message.make_query("keybuzz.io", "SOA")
    q.set_opcode(dns.opcode.STATUS)
    assert send_udp(server, q).rcode() == dns.rcode.NOTIMP
    update = dns.update.UpdateMessage("keybuzz.io")
    update.add("platform", 60, "A", "127.0.0.9")
    r = send_udp(server, update)
    assert r.rcode() == dns.rcode.NOTIMP
    assert texts(udp(server, "platform.keybuzz.io").answer[0]) == {"127.0.20.1"}  # nothing changed


def test_two_questions_is_formerr(server: DNSServer) -> None:
    q = dns.message.make_query("platform.keybuzz.io", "A")
    q.question.append(
        dns.rrset.RRset(dns.name.from_text("www.keybuzz.io"), dns.rdataclass.IN, dns.rdatatype.A)
    )
    host, port = server.address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(q.to_wire(), (host, port))
        r = dns.message.from_wire(sock.recv(65535), question_only=True)
    assert r.id == q.id
    assert r.rcode() == dns.rcode.FORMERR


def test_malformed_but_parseable_header_gets_formerr(server: DNSServer) -> None:
    q = dns.message.make_query("platform.keybuzz.io", "A")
    wire = q.to_wire() + b"\x00\x01junk"  # trailing junk after the message
    reply = server.respond(wire)
    assert reply is not None
    r = dns.message.from_wire(reply)
    assert r.id == q.id and r.rcode() == dns.rcode.FORMERR
    assert r.question[0].name == q.question[0].name
    opt_query = dns.message.make_query("platform.keybuzz.io", "OPT")
    assert dns.message.from_wire(server.respond(opt_query.to_wire()) or b"").rcode() == dns.rcode.FORMERR


def test_unparseable_garbage_and_responses_are_dropped(server: DNSServer) -> None:
    assert server.respond(b"") is None
    assert server.respond(b"\x12\x34\x01") is None  # shorter than a header
    assert server.respond(b"\x12\x34\x01\x00\x00\x05" + b"\x00" * 6) is None  # 5 questions, none there
    response = dns.message.make_response(dns.message.make_query("platform.keybuzz.io", "A"))
    assert server.respond(response.to_wire()) is None  # QR set: never answer an answer
    host, port = server.address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(b"\xff" * 7, (host, port))
        with pytest.raises(TimeoutError):
            sock.recv(65535)
    assert udp(server, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR


def test_tsig_signed_query_is_notauth(server: DNSServer) -> None:
    q = dns.message.make_query("platform.keybuzz.io", "A")
    q.use_tsig({dns.name.from_text("k."): b"secret-key-bytes"}, keyname="k.")
    reply = server.respond(q.to_wire())
    assert reply is not None
    assert dns.message.from_wire(reply, keyring=False).rcode() == dns.rcode.NOTAUTH


# --------------------------------------------------------------------------------------------
# TCP robustness
# --------------------------------------------------------------------------------------------


def connect(server: DNSServer) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=2)
    return sock


def read_frame(sock: socket.socket) -> dns.message.Message:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    length = int.from_bytes(exactly(2), "big")
    return dns.message.from_wire(exactly(length))


def test_pipelined_tcp_queries_are_answered_in_order(server: DNSServer) -> None:
    queries = [
        dns.message.make_query(n, "A") for n in ("platform.keybuzz.io", "nope.keybuzz.io", "example.com")
    ]
    with connect(server) as sock:
        sock.sendall(b"".join(q.to_wire(prepend_length=True) for q in queries))
        replies = [read_frame(sock) for _ in queries]
    assert [r.id for r in replies] == [q.id for q in queries]
    assert [r.rcode() for r in replies] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED]


def test_truncated_tcp_frames_do_not_hurt_the_server(server: DNSServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"\x00\x64" + b"\x00" * 10)  # announces 100 bytes, sends 10, hangs up
    with connect(server) as sock:
        sock.sendall(b"\x00")  # half a length prefix
    with connect(server) as sock:
        sock.sendall(b"\x00\x05garba")  # a whole frame of garbage: the server hangs up
        assert sock.recv(10) == b""
    assert tcp(server, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR


def test_idle_tcp_connections_are_closed(loop_thread: LoopThread, world: World) -> None:
    srv = start_server(loop_thread, world, tcp_idle_timeout=0.3)
    try:
        with connect(srv) as idle, connect(srv) as partial:
            partial.sendall(b"\x00\x40\x00")  # starts a frame and stalls
            started = time.monotonic()
            assert idle.recv(10) == b""
            assert partial.recv(10) == b""
            assert time.monotonic() - started < 2
        assert srv.stats["tcp_idle_closed"] >= 2
        assert tcp(srv, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR
    finally:
        loop_thread.run(srv.stop())


def test_tcp_connection_cap(loop_thread: LoopThread, world: World) -> None:
    srv = start_server(loop_thread, world, max_tcp_clients=2)
    try:
        with connect(srv) as one, connect(srv) as two:
            one.sendall(dns.message.make_query("platform.keybuzz.io", "A").to_wire(prepend_length=True))
            two.sendall(dns.message.make_query("platform.keybuzz.io", "A").to_wire(prepend_length=True))
            read_frame(one), read_frame(two)  # both are registered now
            with connect(srv) as three:
                assert three.recv(10) == b""  # over the cap: closed at once
            assert udp(srv, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR  # UDP unaffected
        deadline = time.monotonic() + 2
        while True:  # the two closed connections are released by the loop shortly after
            try:
                assert tcp(srv, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR
                break
            except (EOFError, ConnectionError, dns.exception.DNSException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert srv.stats["tcp_refused"] >= 1
    finally:
        loop_thread.run(srv.stop())


def test_many_concurrent_clients(server: DNSServer) -> None:
    names = ["platform.keybuzz.io", "www.keybuzz.io", "nope.keybuzz.io", "big.keybuzz.io"]

    def one(i: int) -> int:
        name = names[i % len(names)]
        rdtype = "TXT" if name.startswith("big") else "A"
        ask: Callable[..., dns.message.Message] = tcp if i % 3 == 0 else udp
        return ask(server, name, rdtype).rcode()

    with ThreadPoolExecutor(max_workers=32) as pool:
        rcodes = list(pool.map(one, range(400)))
    assert rcodes.count(dns.rcode.NXDOMAIN) == 100
    assert set(rcodes) == {dns.rcode.NOERROR, dns.rcode.NXDOMAIN}


# --------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------


def test_lifecycle(loop_thread: LoopThread, world: World) -> None:
    srv = DNSServer(world.snapshot, HOST, 0)
    with pytest.raises(RuntimeError):
        _ = srv.address
    loop_thread.run(srv.start())
    host, port = srv.address
    assert host == HOST and port > 0 and srv.running
    with pytest.raises(RuntimeError):
        loop_thread.run(srv.start())
    with connect(srv) as held, connect(srv) as fresh:
        held.sendall(dns.message.make_query("platform.keybuzz.io", "A").to_wire(prepend_length=True))
        assert read_frame(held).rcode() == dns.rcode.NOERROR
        loop_thread.run(srv.stop())  # must close the connections it is still serving
        assert held.recv(10) == b""
        try:  # `fresh` may not even have been accepted by the loop yet: closed or reset
            assert fresh.recv(10) == b""
        except ConnectionResetError:
            pass
    loop_thread.run(srv.stop())  # idempotent
    assert not srv.running
    again = DNSServer(world.snapshot, HOST, port)  # the port is free again, UDP and TCP
    loop_thread.run(again.start())
    try:
        assert again.address == (HOST, port)
        assert udp(again, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR
        assert tcp(again, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR
        clash = DNSServer(world.snapshot, HOST, port)
        with pytest.raises(OSError) as info:
            loop_thread.run(clash.start())
        assert info.value.errno == errno.EADDRINUSE
        assert not clash.running
    finally:
        loop_thread.run(again.stop())


def test_async_context_manager(loop_thread: LoopThread, world: World) -> None:
    async def scenario() -> tuple[str, int]:
        async with DNSServer(world.snapshot, HOST, 0) as srv:
            return srv.address

    host, port = loop_thread.run(scenario())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        with pytest.raises(ConnectionRefusedError):
            sock.connect((host, port))


# --------------------------------------------------------------------------------------------
# Fuzzing
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(loop_thread: LoopThread) -> Iterator[DNSServer]:
    world = World()
    srv = start_server(loop_thread, world)
    yield srv
    loop_thread.run(srv.stop())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_respond_never_raises(data: bytes) -> None:
    srv = DNSServer(World().snapshot, HOST, 0)  # respond() works without sockets
    reply = srv.respond(data)
    if reply is not None:
        r = dns.message.from_wire(reply, question_only=True)
        assert r.flags & dns.flags.QR
        assert r.id == int.from_bytes(data[:2], "big")


_VALID = dns.message.make_query("platform.keybuzz.io", "A", use_edns=0).to_wire()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_mutated_queries(mutations: list[tuple[int, int]]) -> None:
    wire = bytearray(_VALID)
    for pos, value in mutations:
        wire[pos] = value
    srv = DNSServer(World().snapshot, HOST, 0)
    reply = srv.respond(bytes(wire))
    if reply is not None:
        assert dns.message.from_wire(reply, question_only=True).id == int.from_bytes(wire[:2], "big")


_LABELS = st.sampled_from(
    ["platform", "www", "a", "b", "wild", "*", "x", "delegated", "sub", "host", "PLATFORM", "loop1"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_LABELS, max_size=4),
    st.sampled_from(["keybuzz.io", "sub.keybuzz.io", "example.test", "io", "example.com"]),
    st.sampled_from(["A", "AAAA", "CNAME", "TXT", "NS", "SOA", "MX", "CAA", "ANY", "DS", "SRV"]),
)
def test_fuzz_lookup_invariants(labels: list[str], zone: str, rdtype: str) -> None:
    srv = DNSServer(World().snapshot, HOST, 0)
    qname = dns.name.from_text(".".join([*labels, zone]))
    q = dns.message.make_query(qname, rdtype)
    reply = srv.respond(q.to_wire())
    assert reply is not None
    r = dns.message.from_wire(reply)
    in_zone = any(qname.is_subdomain(dns.name.from_text(z)) for z in ("keybuzz.io", "example.test"))
    if not in_zone:
        assert r.rcode() == dns.rcode.REFUSED
        return
    assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    if r.rcode() == dns.rcode.NXDOMAIN or (not r.answer and aa(r)):
        assert [s.rdtype for s in r.authority] == [dns.rdatatype.SOA]
    if r.answer:
        assert r.answer[0].name.to_text() == qname.to_text()  # spelled as asked
    for rrset in r.answer:
        assert rrset.ttl >= 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_fuzz_over_real_sockets(fuzz_server: DNSServer, datagrams: list[bytes]) -> None:
    host, port = fuzz_server.address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for data in datagrams:
            sock.sendto(data, (host, port))
    with socket.create_connection((host, port), timeout=2) as stream:
        try:
            stream.sendall(b"".join(len(d).to_bytes(2, "big") + d for d in datagrams))
        except ConnectionError:
            pass  # the server may hang up on the first garbage frame: that is its right
    assert udp(fuzz_server, "platform.keybuzz.io").rcode() == dns.rcode.NOERROR
