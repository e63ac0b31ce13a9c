"""The sandbox's certificate authority: one CA that signs the API servers and the LB certificates.

trustme does the X.509 work; this wrapper only decides which names each certificate carries and
hands out PEM text and ssl contexts. Clients trust the sandbox by trusting DIR/ca.pem, exactly as
they would trust a private CA in production.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trustme


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: str
    key_pem: str
    chain_pem: str  # leaf + CA, what an HTTPS server presents


class SandboxCA:
    def __init__(self, organization: str = "keybuzz-sandbox") -> None:
        self._ca = trustme.CA(organization_name=organization, organization_unit_name="sandbox CA")

    @property
    def cert_pem(self) -> str:
        return self._ca.cert_pem.bytes().decode()

    def issue(self, *names: str, common_name: str | None = None, days: int | None = None) -> IssuedCert:
        """Names may be DNS names or IP addresses; trustme puts each in the right SAN type.

        days: validity from now (a managed LB certificate is 90 days, like Let's Encrypt's);
        None keeps trustme's far-future expiry for the sandbox's own servers.
        """
        kw = {}
        if days is not None:
            import datetime

            now = datetime.datetime.now(datetime.UTC)
            kw = {"not_before": now - datetime.timedelta(minutes=5), "not_after": now + datetime.timedelta(days=days)}
        leaf = self._ca.issue_cert(*names, common_name=common_name or names[0], **kw)
        cert = leaf.cert_chain_pems[0].bytes().decode()
        key = leaf.private_key_pem.bytes().decode()
        chain = "".join(p.bytes().decode() for p in leaf.cert_chain_pems)
        return IssuedCert(cert_pem=cert, key_pem=key, chain_pem=chain + self.cert_pem)

    def server_context(self, *names: str) -> ssl.SSLContext:
        leaf = self._ca.issue_cert(*names)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        return ctx

    def context_for(self, cert: IssuedCert) -> ssl.SSLContext:
        """A server context for a certificate issued earlier (or uploaded by a user)."""
        import os
        import tempfile

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as d:
            cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            with open(cp, "w") as f:
                f.write(cert.chain_pem)
            with open(kp, "w") as f:
                f.write(cert.key_pem)
            ctx.load_cert_chain(cp, kp)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx
