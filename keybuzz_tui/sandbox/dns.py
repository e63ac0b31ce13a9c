"""The sandbox's authoritative DNS server: the Hetzner zones, served over UDP and TCP on loopback.

Why it exists: the last step of the KeyBuzz runbook is "point platform.keybuzz.io and
platform-api.keybuzz.io at the load balancer", and the validation engine must be able to check
that with a real DNS query, the way an operator would with `dig`. So the sandbox answers real
DNS queries, on a loopback address, from the zones held by the sandbox's Hetzner API.

How it is built:

* Zone data is read through a ``snapshot`` callable on **every query** (dnsdata.ZoneData), so a
  record changed through the Hetzner API is visible on the very next query; there is no zone
  transfer, reload or serial to wait for. Parsed zones are cached for as long as the snapshot
  compares equal, so an unchanged world costs a tuple comparison per query.
* All wire parsing and rendering is dnspython's (``dns.message.from_wire``, ``make_response``,
  ``to_wire(max_size=..., prefer_truncation=True)``, ``dns.rrset.from_text_list``); this module
  holds only the authoritative lookup logic (RFC 1034 4.3.2, RFC 2308, RFC 4592, RFC 6604).
* Everything runs on the sandbox's single asyncio loop (docs/architecture.md): the UDP protocol
  answers inline, each TCP connection is one task. Nothing here blocks, and every handler
  catches its own errors so a bad packet can never take the loop down.

Behaviour worth knowing (what a test or the validation engine can rely on):

* Authoritative answers carry AA; REFUSED (names outside every zone, classes other than IN,
  zone transfers) and referrals do not.
* Negative answers (NXDOMAIN and NODATA, including empty non-terminals) carry the zone's SOA in
  the authority section with TTL ``min(SOA TTL, SOA MINIMUM)`` (RFC 2308 section 3). A zone with
  no SOA rrset in its data gets a synthesized one (``hydrogen.ns.hetzner.com. dns.hetzner.com.
  1 86400 10800 3600000 <zone ttl>``, Hetzner's defaults) so negative answers stay well formed.
* CNAMEs are chased inside the same zone (at most ``MAX_CNAME_CHAIN`` links, loops stop); the
  rcode reflects the last name looked up (RFC 6604), so a CNAME to a missing in-zone name is
  NXDOMAIN with the CNAME in the answer. Targets in other zones are left to the client.
* ``ANY`` returns every rrset at the name (the classic behaviour, not RFC 8482's minimal
  answer): the sandbox is small, trusted, loopback-only, and the full answer is more useful to
  an operator inspecting it. Large ANY answers are truncated over UDP like any other.
* NS rrsets below the apex are delegations: queries at or below them get a referral (no AA, NS
  in authority, in-zone glue in additional). Wildcards (``*``) are synthesized per RFC 4592.
* UDP answers larger than 512 bytes (no EDNS) or than the client's EDNS payload (capped at
  ``udp_payload``, default 1232) are truncated with TC set, so clients retry over TCP; records
  that only fill the additional section are dropped without TC (RFC 2181 section 9).
* EDNS: version 0 is echoed with our payload size and the DO bit copied (RFC 3225); version > 0
  gets BADVERS (RFC 6891). TSIG-signed queries get NOTAUTH (no keys exist here).
* Malformed messages whose header and question still parse get FORMERR; anything less is dropped
  silently, as are messages with QR set (never answer an answer).
* An rrset whose presentation text dnspython cannot parse is skipped (logged once per snapshot
  change) instead of failing the zone; a snapshot callable that raises yields SERVFAIL.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.ttl

from keybuzz_tui.sandbox.dnsdata import ZoneData

__all__ = [
    "DEFAULT_UDP_PAYLOAD",
    "MAX_CNAME_CHAIN",
    "DNSServer",
    "resolver_for",
]

log = logging.getLogger(__name__)

#: Our advertised EDNS payload and UDP ceiling: the DNS Flag Day 2020 value, which never fragments.
DEFAULT_UDP_PAYLOAD = 1232
#: The UDP limit for clients that do not speak EDNS (RFC 1035 section 4.2.1).
CLASSIC_UDP_LIMIT = 512
#: How many CNAME links one answer may follow before we stop and let the client continue.
MAX_CNAME_CHAIN = 16
#: RFC 7766 recommends an idle timeout "on the order of seconds" for DNS over TCP.
DEFAULT_TCP_IDLE_TIMEOUT = 10.0
#: Beyond this many open TCP connections new ones are closed at once, so a client that hoards
#: connections cannot exhaust the loop's file descriptors.
DEFAULT_MAX_TCP_CLIENTS = 256

_IN = dns.rdataclass.IN
_A = dns.rdatatype.A
_AAAA = dns.rdatatype.AAAA
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_ANY = dns.rdatatype.ANY
_DS = dns.rdatatype.DS
#: Answer types whose targets get their in-zone addresses in the additional section (RFC 1035 3.3).
_ADDITIONAL_TARGET_TYPES = {dns.rdatatype.NS, dns.rdatatype.MX, dns.rdatatype.SRV}
_ZONE_TRANSFER_TYPES = {dns.rdatatype.AXFR, dns.rdatatype.IXFR}
#: Types that may only appear as pseudo-records, never in a question.
_NOT_QUESTION_TYPES = {dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY}
_WILDCARD = dns.name.Name([b"*"])


# --------------------------------------------------------------------------------------------
# Zone index: ZoneData (presentation text) -> dnspython rrsets keyed by absolute owner name.
# --------------------------------------------------------------------------------------------


@dataclass
class _Zone:
    """One zone, parsed. Name keys compare case-insensitively (dns.name.Name hashing)."""

    origin: dns.name.Name
    soa: dns.rrset.RRset
    nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = field(default_factory=dict)
    # Every name that exists: owners plus their ancestors up to the origin (empty non-terminals).
    names: set[dns.name.Name] = field(default_factory=set)
    # Delegation points: names strictly below the origin that own an NS rrset.
    cuts: set[dns.name.Name] = field(default_factory=set)

    def negative_soa(self) -> dns.rrset.RRset:
        """The SOA for the authority section of a negative answer, TTL per RFC 2308 section 3."""
        ttl = min(self.soa.ttl, self.soa[0].minimum)
        return dns.rrset.from_rdata_list(self.origin, ttl, list(self.soa))

    def cut_above(self, name: dns.name.Name) -> dns.name.Name | None:
        """The highest delegation point at or above ``name``, if any (it ends our authority)."""
        if not self.cuts:
            return None
        for depth in range(len(self.origin) + 1, len(name) + 1):
            ancestor = name.split(depth)[1]
            if ancestor in self.cuts:
                return ancestor
        return None

    def closest_encloser(self, name: dns.name.Name) -> dns.name.Name:
        """The deepest existing ancestor of a name that does not exist (RFC 4592 section 3.3.1)."""
        candidate = name
        while candidate != self.origin:
            candidate = candidate.parent()
            if candidate in self.names:
                return candidate
        return self.origin


@dataclass
class _Index:
    zones: dict[dns.name.Name, _Zone]

    def find_zone(self, qname: dns.name.Name) -> _Zone | None:
        """The zone with the longest origin that contains ``qname`` (most specific zone wins)."""
        for depth in range(len(qname), 0, -1):
            zone = self.zones.get(qname.split(depth)[1])
            if zone is not None:
                return zone
        return None


def _owner_name(text: str, origin: dns.name.Name) -> dns.name.Name:
    """Turn a Hetzner-style relative owner ("@", "platform", "*.wild") into an absolute name."""
    text = text.strip()
    if text in ("", "@"):
        return origin
    owner = dns.name.from_text(text, origin=origin)
    if not owner.is_subdomain(origin):
        raise ValueError(f"owner {text!r} is outside the zone {origin}")
    return owner


def _synthesized_soa(origin: dns.name.Name, ttl: int) -> dns.rrset.RRset:
    """Hetzner's default SOA shape, so negative answers work for zones whose data has no SOA."""
    return dns.rrset.from_text_list(
        origin,
        ttl,
        _IN,
        _SOA,
        [f"hydrogen.ns.hetzner.com. dns.hetzner.com. 1 86400 10800 3600000 {ttl}"],
        origin=origin,
        relativize=False,
    )


def _valid_ttl(ttl: int) -> bool:
    return isinstance(ttl, int) and 0 <= ttl <= dns.ttl.MAX_TTL


def _build_zone(data: ZoneData) -> _Zone | None:
    """Parse one zone; bad rrsets are skipped with a warning so one typo cannot hide the zone."""
    text = data.name.strip().rstrip(".")
    if not text:  # "" would become the root zone and swallow every query
        log.warning("dns: skipping a zone with an empty name")
        return None
    try:
        origin = dns.name.from_text(text + ".")
    except (dns.exception.DNSException, ValueError) as exc:  # includes IDNA/Unicode errors
        log.warning("dns: skipping zone %r: bad name (%s)", data.name, exc)
        return None
    if not _valid_ttl(data.ttl):
        log.warning("dns: skipping zone %s: bad default TTL %r", origin, data.ttl)
        return None
    nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
    for rrs in data.rrsets:
        try:
            owner = _owner_name(rrs.name, origin)
            rdtype = dns.rdatatype.from_text(rrs.type.strip())
            if dns.rdatatype.is_metatype(rdtype):
                raise ValueError(f"{rrs.type} is not a record type")
            ttl = data.ttl if rrs.ttl is None else rrs.ttl
            if not _valid_ttl(ttl):
                raise ValueError(f"bad TTL {ttl!r}")
            # relativize=False: names inside rdata ("platform", "@") become absolute in the zone.
            rrset = dns.rrset.from_text_list(
                owner, ttl, _IN, rdtype, list(rrs.records), origin=origin, relativize=False
            )
        except Exception as exc:  # noqa: BLE001 - one bad rrset from the API must not hide the zone
            log.warning(
                "dns: zone %s: skipping rrset %r %r %r: %s", origin, rrs.name, rrs.type, rrs.records, exc
            )
            continue
        if len(rrset) == 0:
            continue
        node = nodes.setdefault(owner, {})
        existing = node.get(rdtype)
        if existing is None:
            node[rdtype] = rrset
        else:
            existing.union_update(rrset)  # duplicate (name, type) entries: serve their union
    apex = nodes.setdefault(origin, {})
    soa = apex.get(_SOA)
    if soa is None:
        soa = _synthesized_soa(origin, data.ttl)
    elif len(soa) > 1:
        log.warning("dns: zone %s has %d SOA records; serving the first", origin, len(soa))
        soa = dns.rrset.from_rdata_list(origin, soa.ttl, [soa[0]])
    apex[_SOA] = soa
    zone = _Zone(origin=origin, soa=soa, nodes=nodes)
    for owner, types in nodes.items():
        if owner != origin and _NS in types:
            zone.cuts.add(owner)
        name = owner
        while True:
            zone.names.add(name)
            if name == origin:
                break
            name = name.parent()
    return zone


def _build_index(zones: Sequence[ZoneData]) -> _Index:
    index = _Index(zones={})
    for data in zones:
        zone = _build_zone(data)
        if zone is None:
            continue
        if zone.origin in index.zones:
            log.warning("dns: zone %s appears twice in the snapshot; serving the first", zone.origin)
            continue
        index.zones[zone.origin] = zone
    return index


# --------------------------------------------------------------------------------------------
# Lookup: RFC 1034 4.3.2 for one authoritative zone.
# --------------------------------------------------------------------------------------------


@dataclass
class _Result:
    rcode: int = dns.rcode.NOERROR
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)


def _owned_by(rrset: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset:
    """A copy owned by ``name`` as the client spelled it (case preservation, wildcard synthesis)."""
    return dns.rrset.from_rdata_list(name, rrset.ttl, list(rrset))


def _add_target_addresses(zone: _Zone, rrset: dns.rrset.RRset, result: _Result) -> None:
    """Additional-section processing for NS/MX/SRV: the in-zone A/AAAA of each target."""
    if rrset.rdtype not in _ADDITIONAL_TARGET_TYPES:
        return
    present = {(r.name, r.rdtype) for r in result.answer + result.additional}
    for rdata in rrset:
        target = getattr(rdata, "target", None) or getattr(rdata, "exchange", None)
        if target is None:
            continue
        node = zone.nodes.get(target)
        if not node:
            continue
        for rdtype in (_A, _AAAA):
            addr = node.get(rdtype)
            if addr is not None and (target, rdtype) not in present:
                result.additional.append(addr)
                present.add((target, rdtype))


def _lookup(zone: _Zone, qname: dns.name.Name, qtype: int) -> _Result:
    result = _Result()
    seen: set[dns.name.Name] = {qname}
    name = qname
    for _ in range(MAX_CNAME_CHAIN + 1):
        cut = zone.cut_above(name)
        if cut is not None and not (cut == name and qtype == _DS):
            if result.answer:
                # A CNAME led into delegated space: hand back the chain, the client follows it.
                return result
            ns = zone.nodes[cut][_NS]
            result.authoritative = False
            result.authority.append(ns)
            _add_target_addresses(zone, ns, result)
            return result

        node = zone.nodes.get(name)
        if node is None and name not in zone.names:
            node = zone.nodes.get(_WILDCARD.concatenate(zone.closest_encloser(name)))
            if node is None:
                result.rcode = dns.rcode.NXDOMAIN
                result.authority.append(zone.negative_soa())
                return result
        if not node:  # an empty non-terminal: the name exists, with no data of its own
            result.authority.append(zone.negative_soa())
            return result

        if qtype == _ANY:
            for rdtype in sorted(node):
                result.answer.append(_owned_by(node[rdtype], name))
            return result
        wanted = node.get(qtype)
        if wanted is not None:
            result.answer.append(_owned_by(wanted, name))
            _add_target_addresses(zone, wanted, result)
            return result
        cname = node.get(_CNAME)
        if cname is None:
            result.authority.append(zone.negative_soa())
            return result
        result.answer.append(_owned_by(cname, name))
        target: dns.name.Name = cname[0].target
        if target in seen or not target.is_subdomain(zone.origin):
            return result  # a loop, or another zone's business: the client resolves it
        seen.add(target)
        name = target
    return result  # chain too long: what we have is still correct, just incomplete


# --------------------------------------------------------------------------------------------
# The server.
# --------------------------------------------------------------------------------------------


class _UDPProtocol(asyncio.DatagramProtocol):
    """Answers each datagram inline; an exception here would only be logged by asyncio, but we
    catch everything anyway so one poisoned packet is a log line, not a silent dead socket."""

    def __init__(self, server: DNSServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport: cast only.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            self._server.stats["udp_messages"] += 1
            reply = self._server.respond(data, over_tcp=False)
            if reply is not None and self.transport is not None:
                self.transport.sendto(reply, addr)
        except Exception:
            log.exception("dns: unexpected error answering a UDP message from %s", addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that gave up: nothing to do but note it.
        log.debug("dns: UDP error: %s", exc)


class DNSServer:
    """An authoritative DNS server for the sandbox's Hetzner zones, on one loopback address.

    ``snapshot`` is called on every query and must return the current zones; it runs on the
    server's event loop, so it may read loop-owned state directly. UDP and TCP share one port;
    ``port=0`` picks a free ephemeral port (the same one for both), read it from ``address``.
    """

    def __init__(
        self,
        snapshot: Callable[[], Sequence[ZoneData]],
        host: str,
        port: int = 53,
        *,
        udp_payload: int = DEFAULT_UDP_PAYLOAD,
        tcp_idle_timeout: float = DEFAULT_TCP_IDLE_TIMEOUT,
        max_tcp_clients: int = DEFAULT_MAX_TCP_CLIENTS,
    ) -> None:
        self._snapshot = snapshot
        self._host = host
        self._port = port
        self._udp_payload = max(CLASSIC_UDP_LIMIT, min(udp_payload, 65535))
        self._tcp_idle_timeout = tcp_idle_timeout
        self._max_tcp_clients = max_tcp_clients
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self._tcp_tasks: set[asyncio.Task[object]] = set()
        self._address: tuple[str, int] | None = None
        self._starting = False  # start() awaits between its binds: refuse a concurrent second call
        self._cache_key: tuple[ZoneData, ...] | None = None
        self._cache_index: _Index | None = None
        #: Counters for tests and the demo's diagnostics (messages, drops, FORMERR, TC, ...).
        self.stats: collections.Counter[str] = collections.Counter()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; valid once ``start()`` has returned."""
        if self._address is None:
            raise RuntimeError("DNSServer.address is only known after start()")
        return self._address

    @property
    def running(self) -> bool:
        return self._udp_transport is not None

    async def start(self) -> None:
        """Bind UDP then TCP on the same port. Bind errors (EACCES on 53, EADDRINUSE) propagate
        unchanged so the caller can fall back to another port; nothing stays half-open."""
        if self._udp_transport is not None or self._starting:
            raise RuntimeError("DNSServer is already running")
        self._starting = True
        try:
            await self._bind()
        finally:
            self._starting = False

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        # With port 0 the kernel picks the UDP port; that port may be taken for TCP, so retry.
        attempts = 32 if self._port == 0 else 1
        for attempt in range(attempts):
            udp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), local_addr=(self._host, self._port)
            )
            sockname = udp_transport.get_extra_info("sockname")
            port = int(sockname[1])
            try:
                tcp_server = await asyncio.start_server(
                    self._serve_tcp, host=self._host, port=port, reuse_address=True
                )
            except OSError as exc:
                udp_transport.close()
                if self._port == 0 and exc.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                    continue
                raise
            except BaseException:
                udp_transport.close()
                raise
            self._udp_transport = udp_transport
            self._tcp_server = tcp_server
            self._address = (self._host, port)
            log.info("dns: serving on %s port %d (udp+tcp)", self._host, port)
            return

    async def stop(self) -> None:
        """Close both listeners and every open TCP connection. Safe to call twice."""
        udp, self._udp_transport = self._udp_transport, None
        tcp, self._tcp_server = self._tcp_server, None
        if udp is not None:
            udp.close()
        if tcp is not None:
            tcp.close()
        for writer in list(self._tcp_writers):
            writer.close()
        tasks = [t for t in self._tcp_tasks if not t.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if tcp is not None:
            try:
                await asyncio.wait_for(tcp.wait_closed(), timeout=2.0)
            except TimeoutError:
                log.warning("dns: TCP listener did not close within 2s")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- TCP --------------------------------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766 framing: 2-byte length + message, pipelined queries answered in order.

        The connection ends on EOF, on the idle timeout (waiting for a frame or for the client
        to read our answer), on a frame we cannot parse at all (the framing is then suspect),
        or when the server stops."""
        task = asyncio.current_task()
        if self._tcp_server is None:
            writer.close()  # accepted just before stop(): the handler starts after it, so hang up
            return
        if len(self._tcp_writers) >= self._max_tcp_clients:
            self.stats["tcp_refused"] += 1
            writer.close()
            return
        self.stats["tcp_connections"] += 1
        self._tcp_writers.add(writer)
        if task is not None:
            self._tcp_tasks.add(task)
        try:
            while True:
                try:
                    prefix = await asyncio.wait_for(reader.readexactly(2), self._tcp_idle_timeout)
                    wire = await asyncio.wait_for(
                        reader.readexactly(int.from_bytes(prefix, "big")), self._tcp_idle_timeout
                    )
                except TimeoutError:
                    self.stats["tcp_idle_closed"] += 1
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # EOF (clean or mid-frame) or reset: nothing to answer
                self.stats["tcp_messages"] += 1
                reply = self.respond(wire, over_tcp=True)
                if reply is None:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                try:
                    await asyncio.wait_for(writer.drain(), self._tcp_idle_timeout)
                except TimeoutError:
                    self.stats["tcp_idle_closed"] += 1
                    break
                except ConnectionError:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dns: unexpected error on a TCP connection")
        finally:
            self._tcp_writers.discard(writer)
            if task is not None:
                self._tcp_tasks.discard(task)
            writer.close()

    # -- one message --------------------------------------------------------------------------

    def respond(self, wire: bytes, *, over_tcp: bool = False) -> bytes | None:
        """Answer one DNS message (without the TCP length prefix); None means send nothing.

        Public so tests and fuzzers can drive the whole query path without sockets; the UDP and
        TCP handlers are thin wrappers around it. Never raises."""
        try:
            return self._respond(wire, over_tcp)
        except Exception:
            log.exception("dns: unexpected error answering a message")
            return None

    def _respond(self, wire: bytes, over_tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire, keyring=False)
        except Exception:  # noqa: BLE001 - garbage may trip any error inside dnspython's parser
            return self._formerr_or_drop(wire)
        if query.flags & dns.flags.QR:
            self.stats["dropped"] += 1
            return None  # never answer a response: that is how reflection loops start
        limit = self._size_limit(query, over_tcp)
        try:
            response = self._answer(query)
        except Exception:
            log.exception("dns: failed to answer %s", query.question)
            self.stats["servfail"] += 1
            response = self._skeleton(query)
            response.set_rcode(dns.rcode.SERVFAIL)
        try:
            out = response.to_wire(max_size=limit, prefer_truncation=True)
        except Exception:
            log.exception("dns: failed to render the answer to %s", query.question)
            self.stats["servfail"] += 1
            response = self._skeleton(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            out = response.to_wire(max_size=limit, prefer_truncation=True)
        if int.from_bytes(out[2:4], "big") & dns.flags.TC:
            self.stats["truncated"] += 1
        return out

    def _formerr_or_drop(self, wire: bytes) -> bytes | None:
        """FORMERR if the header and question parse (we know whom and what to answer), else drop."""
        try:
            query = dns.message.from_wire(wire, keyring=False, question_only=True)
        except Exception:  # noqa: BLE001 - not even a header and question: drop it
            self.stats["dropped"] += 1
            return None
        if query.flags & dns.flags.QR:
            self.stats["dropped"] += 1
            return None
        response = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            self.stats["notimp"] += 1
        else:
            response.set_rcode(dns.rcode.FORMERR)
            self.stats["formerr"] += 1
        try:
            return response.to_wire(max_size=CLASSIC_UDP_LIMIT, prefer_truncation=True)
        except Exception:  # noqa: BLE001 - e.g. an unrenderable question echoed back: drop it
            self.stats["dropped"] += 1
            return None

    def _size_limit(self, query: dns.message.Message, over_tcp: bool) -> int:
        if over_tcp:
            return 65535
        if query.edns >= 0:
            return max(CLASSIC_UDP_LIMIT, min(query.payload, self._udp_payload))
        return CLASSIC_UDP_LIMIT

    def _skeleton(self, query: dns.message.Message) -> dns.message.Message:
        """make_response plus the DO bit, which RFC 3225 says must be copied into the response."""
        response = dns.message.make_response(query, our_payload=self._udp_payload)
        if query.edns >= 0 and response.edns >= 0:
            response.ednsflags |= query.ednsflags & dns.flags.DO
        return response

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = self._skeleton(query)
        if query.opcode() != dns.opcode.QUERY:
            self.stats["notimp"] += 1
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if query.edns > 0:
            response.set_rcode(dns.rcode.BADVERS)
            return response
        if query.had_tsig:
            response.set_rcode(dns.rcode.NOTAUTH)  # we hold no TSIG keys
            return response
        if len(query.question) != 1:
            self.stats["formerr"] += 1
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        if qtype in _NOT_QUESTION_TYPES:
            self.stats["formerr"] += 1
            response.set_rcode(dns.rcode.FORMERR)
            return response
        if question.rdclass != _IN or qtype in _ZONE_TRANSFER_TYPES:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if dns.rdatatype.is_metatype(qtype) and qtype != _ANY:
            self.stats["notimp"] += 1
            response.set_rcode(dns.rcode.NOTIMP)  # MAILA, MAILB and friends
            return response

        zone = self._index().find_zone(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        result = _lookup(zone, qname, qtype)
        if result.authoritative:
            response.flags |= dns.flags.AA
        response.set_rcode(result.rcode)
        response.answer = result.answer
        response.authority = result.authority
        response.additional = result.additional
        return response

    def _index(self) -> _Index:
        """Parsed zones for the current snapshot, reparsed only when the snapshot changes."""
        key = tuple(self._snapshot())
        if self._cache_index is None or key != self._cache_key:
            self._cache_index = _build_index(key)
            self._cache_key = key
        return self._cache_index


def resolver_for(
    address: tuple[str, int], *, timeout: float = 2.0, lifetime: float = 5.0
) -> dns.resolver.Resolver:
    """A dnspython Resolver that asks only the sandbox server at ``address``.

    Built with ``configure=False`` so /etc/resolv.conf is never read (and no public resolver is
    ever contacted); no search list, no cache (the sandbox changes under it), EDNS payload 1232,
    short timeouts because loopback answers in microseconds or not at all."""
    host, port = address
    resolver = dns.resolver.Resolver(configure=False)
    resolver.port = port
    resolver.nameservers = [host]
    resolver.domain = dns.name.root
    resolver.search = []
    resolver.use_search_by_default = False
    resolver.cache = None
    resolver.retry_servfail = False
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    resolver.use_edns(0, 0, DEFAULT_UDP_PAYLOAD)
    return resolver
