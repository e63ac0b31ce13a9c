"""TLS termination material: one SSLContext per certificate, chosen per connection by SNI.

A listener's SSLContext is created once and never carries a certificate itself: its
`sni_callback` swaps in the context of the certificate that matches the client's server name
(exact, or a `*.` wildcard covering one label), or the service's first certificate when there is
no SNI or no match (what HAProxy, behind Hetzner's LB, does with its default certificate). The
callback reads the service's *current* certificate list, so assigning another certificate or a
managed certificate finishing its issuance takes effect without rebinding the port. A service with
no usable certificate (a managed one still pending) fails the handshake.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..tls import IssuedCert


@dataclass(frozen=True)
class LoadedCert:
    cert_id: int
    names: tuple[str, ...]
    context: ssl.SSLContext


def name_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


def select(certs: list[LoadedCert], server_name: str | None) -> LoadedCert | None:
    if not certs:
        return None
    if server_name:
        for c in certs:
            if any(name_matches(n, server_name) for n in c.names):
                return c
    return certs[0]


def _names(chain_pem: str) -> tuple[str, ...]:
    leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = list(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(names)


def _context(material: IssuedCert) -> ssl.SSLContext:
    """ssl can only load a key pair from files: write them to a private temp dir and load."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="keybuzz-lb-") as d:
        cp, kp = os.path.join(d, "chain.pem"), os.path.join(d, "key.pem")
        fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(material.key_pem)
        with open(cp, "w") as f:
            f.write(material.chain_pem)
        ctx.load_cert_chain(cp, kp)
    return ctx


class CertificateStore:
    """Parsed certificates, cached by (id, PEM) so a renewed certificate is reloaded."""

    def __init__(self, material: Callable[[int], IssuedCert | None]) -> None:
        self._material = material
        self._cache: dict[int, tuple[str, LoadedCert | None]] = {}

    def get(self, cert_id: int) -> LoadedCert | None:
        material = self._material(cert_id)
        if material is None:
            self._cache.pop(cert_id, None)
            return None
        cached = self._cache.get(cert_id)
        if cached is not None and cached[0] == material.chain_pem:
            return cached[1]
        try:
            loaded: LoadedCert | None = LoadedCert(cert_id, _names(material.chain_pem), _context(material))
        except (ValueError, ssl.SSLError, OSError):
            loaded = None  # unusable material: the handshake fails, as with no certificate
        self._cache[cert_id] = (material.chain_pem, loaded)
        return loaded

    def resolve(self, cert_ids: Iterable[int]) -> list[LoadedCert]:
        return [c for c in (self.get(i) for i in cert_ids) if c is not None]

    def prune(self, live: set[int]) -> None:
        for cert_id in list(self._cache):
            if cert_id not in live:
                del self._cache[cert_id]


def listener_context(current: Callable[[], list[LoadedCert]]) -> ssl.SSLContext:
    """The context an https listener is created with; certificates are picked per handshake."""
    base = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    base.set_alpn_protocols(["http/1.1"])

    def on_sni(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        chosen = select(current(), server_name)
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sslobj.context = chosen.context
        return None

    base.sni_callback = on_sni  # type: ignore[assignment]
    return base
