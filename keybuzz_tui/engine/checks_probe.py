"""Network probes for validation: one HTTP GET, one HTTPS GET with certificate checks, one DNS
question. Each has its own timeout and returns what it saw as plain data, never an exception.

Why hand-rolled on http.client / ssl / dnspython rather than a client library: the checks need
control a browser-like client hides - dial an exact IP while sending another Host (a NodePort with
the Host header, the LB's IP with SNI = the public name), see nginx's own 502/504 pages instead of
retries, tell a refused connection from a silent drop (a firewall) from a reset, and never consult
the OS resolver for public names (the sandbox's loopback world, and a check that must report what
a given DNS server answers, not what some cache thinks).
"""

from __future__ import annotations

import datetime as dt
import errno
import http.client
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "keybuzz-tui-validate"
BODY_LIMIT = 4096
IDENTITY_HEADERS = ("Server", "X-KeyBuzz-Pod", "X-KeyBuzz-Node", "Location", "Content-Type", "X-Powered-By")


@dataclass(frozen=True)
class HttpProbe:
    """The result of one GET: an HTTP status, or an error kind (refused, timeout, reset,
    unreachable, tls) with the text behind it."""

    ip: str
    port: int
    path: str
    host: str | None = None
    scheme: str = "http"
    status: int | None = None
    reason: str = ""
    error: str | None = None
    error_text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    elapsed: float = 0.0
    timeout: float = 0.0
    tls: dict[str, Any] = field(default_factory=dict)
    provisional: bool = False  # the continuous mode's fast lane saw it; the full check is confirming it

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def target(self) -> str:
        return f"{self.ip}:{self.port}{self.path}" + (f" (Host: {self.host})" if self.host else "")

    @property
    def nginx_error_page(self) -> bool:
        """nginx's own answer (its default 404, or a 502/503/504 for a dead upstream): no app
        identity and nginx's page layout."""
        return (
            self.status is not None
            and self.headers.get("Server", "").startswith("nginx")
            and f"<title>{self.status} " in self.body
            and "<center>nginx" in self.body
        )

    def served_by(self) -> dict[str, str]:
        """Which app, pod and node answered, when the answer says so (KeyBuzz's X-KeyBuzz-*
        headers or the API's JSON identity); empty when it does not."""
        out: dict[str, str] = {}
        pod = self.headers.get("X-KeyBuzz-Pod", "")
        if pod:
            out["pod"] = pod
        if self.headers.get("X-KeyBuzz-Node"):
            out["node"] = self.headers["X-KeyBuzz-Node"]
        if self.body.startswith("{"):
            try:
                data = json.loads(self.body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                for k in ("app", "pod", "node"):
                    if isinstance(data.get(k), str) and data[k]:
                        out.setdefault(k, data[k])
        return out

    def is_app(self, app: str) -> bool | None:
        """True/False when the answer identifies its app, None when it cannot be told."""
        who = self.served_by()
        if "app" in who:
            return who["app"] == app
        if "pod" in who:
            return who["pod"].startswith(app + "-")
        return None

    def describe(self) -> str:
        """One line for a detail: '200 OK in 3 ms', 'connection refused', ..."""
        if self.status is not None:
            ms = f"{self.elapsed * 1000:.0f} ms"
            server = self.headers.get("Server", "")
            who = self.served_by()
            by = f" from {who['pod']}" if "pod" in who else (f" from {who['app']}" if "app" in who else "")
            srv = f", Server: {server}" if server and not by and not server.startswith("Python/") else ""
            return f"{self.status} {self.reason}{by} in {ms}{srv}".replace("  ", " ")
        said = ERROR_WORDS.get(self.error or "", "{text}").format(t=self.timeout, text=self.error_text, port=self.port)
        return said + (", confirming with the full check…" if self.provisional else "")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"url": f"{self.scheme}://{self.ip}:{self.port}{self.path}", "host": self.host}
        if self.status is not None:
            d.update(status=self.status, reason=self.reason, served_by=self.served_by() or None, server=self.headers.get("Server"))
        else:
            d.update(error=self.error, error_text=self.error_text)
        d["elapsed_ms"] = round(self.elapsed * 1000, 1)
        if self.provisional:
            d["provisional"] = True
        if self.tls:
            d["tls"] = self.tls
        return {k: v for k, v in d.items() if v is not None}


ERROR_WORDS = {
    "refused": "connection refused (nothing listens on port {port})",
    "timeout": "no answer within {t:.1f}s (the packets are dropped: a firewall?)",
    "read-timeout": "connected, but no HTTP answer within {t:.1f}s",
    "reset": "the connection was closed without an answer (dropped or reset)",
    "unreachable": "no route to the address ({text})",
    "tls": "TLS failed: {text}",
    "error": "{text}",
}


def _classify(exc: BaseException, connected: bool) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls", exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls", exc.reason or str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ("read-timeout" if connected else "timeout"), "timed out"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.BadStatusLine)):
        return "reset", "closed without a response"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return "unreachable", exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return "error", exc.strerror or str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


def _request(conn: http.client.HTTPConnection, path: str, host: str) -> tuple[int, str, dict[str, str], str]:
    conn.request("GET", path, headers={"Host": host, "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"})
    resp = conn.getresponse()
    body = resp.read(BODY_LIMIT)
    headers = {k: resp.getheader(k) or "" for k in IDENTITY_HEADERS if resp.getheader(k) is not None}
    return resp.status, resp.reason, headers, body.decode("utf-8", errors="replace")


def http_get(ip: str, port: int, path: str = "/", *, host: str | None = None, timeout: float = 5.0) -> HttpProbe:
    """GET http://ip:port/path with `Host: host` (default ip:port); never raises."""
    started = time.monotonic()
    connected = False
    sock = None
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
        connected = True
        conn = http.client.HTTPConnection(ip, port, timeout=timeout)
        conn.sock = sock
        status, reason, headers, body = _request(conn, path, host or f"{ip}:{port}")
        return HttpProbe(ip, port, path, host, "http", status, reason, None, "", headers, body, time.monotonic() - started, timeout)
    except BaseException as e:  # noqa: BLE001 - every failure is a finding, never a crash
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        kind, text = _classify(e, connected)
        return HttpProbe(ip, port, path, host, "http", None, "", kind, text, {}, "", time.monotonic() - started, timeout)
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


# --- the fast lane's probe ------------------------------------------------------------------------


@dataclass(frozen=True)
class QuickAnswer:
    """What one fast-lane probe saw: `kind` is "answer" (an HTTP status line came back), "open"
    (a TCP connection was accepted: a connect-only probe), or an error kind of HttpProbe's
    (refused, timeout, read-timeout, reset, unreachable, error)."""

    kind: str
    status: int | None = None
    elapsed: float = 0.0
    timeout: float = 0.0

    @property
    def klass(self) -> str:
        return answer_class(self.kind if self.kind != "answer" else None, self.status)


def answer_class(error: str | None, status: int | None) -> str:
    """What a probe result means for a hop, coarse enough that a full probe and a fast probe of
    the same port compare: "http 200", "http 503", "dropped" (no answer: timeout, closed without
    an answer), "refused", "unreachable", "open" (connect-only), "error"."""
    if status is not None:
        return f"http {status}"
    if error in ("timeout", "read-timeout", "reset"):
        return "dropped"
    return error or "error"


def probe_class(p: HttpProbe) -> str:
    return answer_class(p.error, p.status)


def quick_probe(ip: str, port: int, path: str | None = "/", *, host: str | None = None, timeout: float = 0.4) -> QuickAnswer:
    """The fast lane's probe, cheap enough to repeat several times a second: connect, send one
    GET and read only the status line (`path=None`: connect only). A firewall that drops the SYN
    is a connect timeout; one that swallows the connection after the handshake (or a hung
    server) is a read timeout. Never raises; no API request."""
    started = time.monotonic()
    connected = False
    sock = None
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
        connected = True
        if path is None:
            return QuickAnswer("open", None, time.monotonic() - started, timeout)
        sock.settimeout(max(0.05, timeout - (time.monotonic() - started)))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or f'{ip}:{port}'}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head and len(head) < 256:
            chunk = sock.recv(256)
            if not chunk:
                break
            head += chunk
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
            return QuickAnswer("answer", int(parts[1]), time.monotonic() - started, timeout)
        return QuickAnswer("reset", None, time.monotonic() - started, timeout)
    except BaseException as e:  # noqa: BLE001 - every failure is a finding, never a crash
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        kind, _ = _classify(e, connected)
        return QuickAnswer(kind, None, time.monotonic() - started, timeout)
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def quick_probes(targets: list[tuple[str, int, str | None, str | None]], *, timeout: float = 0.4) -> list[QuickAnswer]:
    """quick_probe for many (ip, port, path, host) at once, on one thread: non-blocking sockets
    and one selector, every probe within `timeout` of the start. The fast lane's round: a few
    dozen probes several times a second must not cost a thread each (nor the GIL the UI needs)."""
    import selectors

    started = time.monotonic()
    deadline = started + timeout
    out: list[QuickAnswer | None] = [None] * len(targets)
    sel = selectors.DefaultSelector()
    socks: dict[int, socket.socket] = {}
    state: dict[int, dict[str, Any]] = {}

    def finish(i: int, kind: str, status: int | None = None) -> None:
        if out[i] is None:
            out[i] = QuickAnswer(kind, status, time.monotonic() - started, timeout)
        sock = socks.pop(i, None)
        if sock is not None:
            try:
                sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            try:
                sock.close()
            except OSError:
                pass

    for i, (ip, port, path, host) in enumerate(targets):
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            out[i] = QuickAnswer(_classify(e, False)[0], None, 0.0, timeout)
            continue
        sock.setblocking(False)
        socks[i] = sock
        request = None if path is None else (
            f"GET {path} HTTP/1.1\r\nHost: {host or f'{ip}:{port}'}\r\nUser-Agent: {USER_AGENT}\r\nConnection: close\r\n\r\n").encode()
        state[i] = {"request": request, "connected": False, "head": b""}
        err = sock.connect_ex((ip, port))
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            finish(i, _classify(OSError(err, os.strerror(err)) if err != errno.ECONNREFUSED else ConnectionRefusedError(), False)[0])
            continue
        sel.register(sock, selectors.EVENT_WRITE, i)
    try:
        while socks:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _events in sel.select(left):
                i = key.data
                sock = socks.get(i)
                if sock is None:
                    continue
                st = state[i]
                if not st["connected"]:
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        exc: OSError = ConnectionRefusedError() if err == errno.ECONNREFUSED else OSError(err, os.strerror(err))
                        finish(i, _classify(exc, False)[0])
                        continue
                    st["connected"] = True
                    if st["request"] is None:
                        finish(i, "open")
                        continue
                    try:
                        sock.sendall(st["request"])
                    except OSError as e:
                        finish(i, _classify(e, True)[0])
                        continue
                    sel.modify(sock, selectors.EVENT_READ, i)
                    continue
                try:
                    chunk = sock.recv(256)
                except BlockingIOError:
                    continue
                except OSError as e:
                    finish(i, _classify(e, True)[0])
                    continue
                if not chunk:
                    finish(i, "reset")
                    continue
                st["head"] += chunk
                if b"\r\n" in st["head"] or len(st["head"]) >= 256:
                    parts = st["head"].split(b"\r\n", 1)[0].split()
                    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
                        finish(i, "answer", int(parts[1]))
                    else:
                        finish(i, "reset")
        for i in list(socks):
            finish(i, "read-timeout" if state[i]["connected"] else "timeout")
    finally:
        for i in list(socks):
            finish(i, "error")
        sel.close()
    return [a if a is not None else QuickAnswer("error", None, 0.0, timeout) for a in out]


def provisional_probe(ip: str, port: int, path: str, host: str | None, seen: QuickAnswer) -> HttpProbe:
    """A fast-lane observation standing in for a full probe of ip:port until the full check has
    confirmed it: an error (no answer, refused...) in HttpProbe's words, marked provisional."""
    kind = seen.kind if seen.kind not in ("answer", "open") else "error"
    text = {"refused": "connection refused", "timeout": "timed out", "read-timeout": "timed out",
            "reset": "closed without a response"}.get(kind, kind)
    return HttpProbe(ip, port, path, host, "http", None, "", kind, text, {}, "", seen.elapsed, seen.timeout, {}, True)


# --- HTTPS with certificate checks -------------------------------------------------------------


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store plus the extra CA (the sandbox's, or a private one)."""
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def _cert_facts_from_dict(cert: dict[str, Any]) -> dict[str, Any]:
    def names(key: str) -> str:
        attrs = {k: v for rdn in cert.get(key, ()) for k, v in rdn}
        return str(attrs.get("commonName") or attrs.get("organizationName") or "")

    not_after = cert.get("notAfter")
    expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC) if not_after else None
    return {
        "subject": names("subject"),
        "issuer": names("issuer"),
        "san": [v for k, v in cert.get("subjectAltName", ()) if k in ("DNS", "IP Address")],
        "not_after": expires.isoformat() if expires else None,
        "days_left": round((expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400, 1) if expires else None,
    }


def _cert_facts_from_der(der: bytes) -> dict[str, Any]:
    """Facts about a certificate that did not verify (so ssl gives no dict): parsed with
    cryptography when it is installed (it comes with trustme), else only the fingerprint."""
    import hashlib

    out: dict[str, Any] = {"sha256": hashlib.sha256(der).hexdigest()}
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - cryptography ships with trustme
        return out
    try:
        c = x509.load_der_x509_certificate(der)
    except ValueError:
        return out

    def cn(name: Any) -> str:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME) or name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(attrs[0].value) if attrs else name.rfc4514_string()

    try:
        san = [str(v) for v in c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        san = []
    expires = c.not_valid_after_utc
    out.update(
        subject=cn(c.subject), issuer=cn(c.issuer), san=san, not_after=expires.isoformat(),
        days_left=round((expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400, 1),
    )
    return out


def https_get(ip: str, port: int, host: str, path: str = "/", *, ca_file: str | None = None, timeout: float = 5.0) -> HttpProbe:
    """GET https://host/path, connecting to ip:port, SNI and Host = host, verifying the chain
    (system CAs + ca_file), the expiry and the hostname. The certificate's facts are in `.tls`
    whether or not it verified."""
    started = time.monotonic()
    connected = False
    raw = None
    tls_facts: dict[str, Any] = {}
    try:
        raw = socket.create_connection((ip, port), timeout=timeout)
        connected = True
        try:
            sock = tls_context(ca_file).wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as e:
            tls_facts = {"verified": False, "error": e.verify_message or str(e), **_peek_certificate(ip, port, host, timeout)}
            return HttpProbe(ip, port, path, host, "https", None, "", "tls", e.verify_message or str(e), {}, "", time.monotonic() - started, timeout, tls_facts)
        raw = sock
        tls_facts = {"verified": True, "version": sock.version(), **_cert_facts_from_dict(sock.getpeercert() or {})}
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        status, reason, headers, body = _request(conn, path, host)
        return HttpProbe(ip, port, path, host, "https", status, reason, None, "", headers, body, time.monotonic() - started, timeout, tls_facts)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        kind, text = _classify(e, connected)
        return HttpProbe(ip, port, path, host, "https", None, "", kind, text, {}, "", time.monotonic() - started, timeout, tls_facts)
    finally:
        if raw is not None:
            try:
                raw.close()
            except OSError:
                pass


def _peek_certificate(ip: str, port: int, host: str, timeout: float) -> dict[str, Any]:
    """A second handshake without verification, only to show the operator which certificate the
    server presents (subject, SANs, issuer, expiry) when it failed verification."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            der = s.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return {}
    return _cert_facts_from_der(der) if der else {}


# --- DNS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsAnswer:
    """What one server answered for name/type: the addresses, the TTL, whether the answer was
    authoritative, or the error (NXDOMAIN, no answer, timeout, refused...)."""

    server: str
    name: str
    rdtype: str
    addresses: tuple[str, ...] = ()
    ttl: int | None = None
    authoritative: bool | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.error:
            return f"{self.error} (asked {self.server})"
        return ", ".join(self.addresses) if self.addresses else f"no {self.rdtype} record (asked {self.server})"

    def to_dict(self) -> dict[str, Any]:
        d = {"server": self.server, "name": self.name, "type": self.rdtype, "addresses": list(self.addresses), "ttl": self.ttl,
             "authoritative": self.authoritative, "error": self.error}
        return {k: v for k, v in d.items() if v is not None}


def ask_server(server: tuple[str, int], name: str, rdtype: str = "A", *, timeout: float = 3.0) -> DnsAnswer:
    """Ask one DNS server directly (UDP, TCP when truncated), as `dig @server name type` does.
    Used for the authoritative server: the answer must carry the AA flag."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    label = f"{server[0]}:{server[1]}" if server[1] != 53 else server[0]
    q = dns.message.make_query(name, rdtype)
    try:
        resp = dns.query.udp(q, server[0], port=server[1], timeout=timeout)
        if resp.flags & dns.flags.TC:
            resp = dns.query.tcp(q, server[0], port=server[1], timeout=timeout)
    except dns.exception.Timeout:
        return DnsAnswer(label, name, rdtype, error=f"no answer within {timeout:.1f}s")
    except (OSError, dns.exception.DNSException) as e:
        return DnsAnswer(label, name, rdtype, error=f"query failed: {e}")
    aa = bool(resp.flags & dns.flags.AA)
    rcode = resp.rcode()
    if rcode != dns.rcode.NOERROR:
        return DnsAnswer(label, name, rdtype, authoritative=aa, error=dns.rcode.to_text(rcode))
    want = dns.rdatatype.from_text(rdtype)
    addrs: list[str] = []
    ttl = None
    for rrset in resp.answer:
        if rrset.rdtype == want:
            addrs += [r.to_text() for r in rrset]
            ttl = rrset.ttl
    return DnsAnswer(label, name, rdtype, tuple(sorted(addrs)), ttl, aa)


def ask_resolver(resolver: tuple[str, int] | None, name: str, rdtype: str = "A", *, timeout: float = 3.0) -> DnsAnswer:
    """Resolve through a recursive resolver: the given one, or the OS's (production only: the
    test suite always passes one)."""
    import dns.exception
    import dns.resolver

    if resolver is not None:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [resolver[0]]
        r.port = resolver[1]
        label = f"{resolver[0]}:{resolver[1]}" if resolver[1] != 53 else resolver[0]
    else:
        r = dns.resolver.Resolver()
        label = "system resolver (" + ", ".join(str(n) for n in r.nameservers[:2]) + ")"
    r.cache = None
    r.timeout = timeout
    r.lifetime = timeout * 2
    try:
        ans = r.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return DnsAnswer(label, name, rdtype, error="NXDOMAIN (no such name)")
    except dns.resolver.LifetimeTimeout:
        return DnsAnswer(label, name, rdtype, error=f"no answer within {timeout * 2:.1f}s")
    except dns.resolver.NoNameservers as e:
        return DnsAnswer(label, name, rdtype, error=f"no server could answer ({e.kwargs.get('errors', '') or 'SERVFAIL'})")
    except (OSError, dns.exception.DNSException) as e:
        return DnsAnswer(label, name, rdtype, error=f"resolution failed: {e}")
    if ans.rrset is None:
        return DnsAnswer(label, name, rdtype, ())
    return DnsAnswer(label, name, rdtype, tuple(sorted(r.to_text() for r in ans.rrset)), ans.rrset.ttl)


def parse_hostport(text: str, default_port: int = 53) -> tuple[str, int] | None:
    """'1.2.3.4', '1.2.3.4:5353', '[::1]:53' -> (host, port); '' -> None."""
    text = (text or "").strip()
    if not text:
        return None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port
