"""Certificates: uploaded (parsed with `cryptography`) and managed (issued by the sandbox CA).

Uploaded: the PEM chain and key are checked (parseable, key matches the leaf) and domain_names,
fingerprint (SHA-256, colon-separated) and validity dates come from the leaf; `action` is null.
Managed: the certificate exists at once with `status.issuance: pending`, `certificate: null`;
the `create_certificate` action runs for `managed_certificate_duration` (clock-scaled), then the
issuance is `completed` (a certificate from the sandbox CA for every domain) or `failed` with
`status.error` and the action's error: when `managed_certificate_failure` is set, or when a domain
is not in one of the project's DNS zones (`dns_zone_not_found`: only Hetzner-DNS domains can be
validated, as the spec says). POST .../actions/retry restarts a failed issuance
(`issue_certificate`); on a certificate that is not failed it answers 422 `unsupported_error`.
Deleting a certificate still used by a Load Balancer service answers 422 `resource_in_use`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ..clock import rfc3339
from ..tls import IssuedCert
from .actions import Action, Outcome
from .errors import FieldErrors, HetznerError, not_found, uniqueness_error, unprocessable
from .labels import check_labels
from .model import Certificate
from .validation import DOMAIN_RE, NAME_RE, read_str, read_str_list

if TYPE_CHECKING:
    from .state import HetznerState

DEFAULT_FAILURE_CODE = "ca_dns_validation_failed"
FAILURE_MESSAGES = {
    "ca_dns_validation_failed": "Certificate Authority: DNS validation failed",
    "dns_zone_not_found": "DNS zone not found",
    "caa_record_does_not_allow_ca": "CAA record does not allow certificate authority",
    "could_not_verify_domain_delegated_to_zone": "Could not verify domain delegated to zone",
}


def get(st: HetznerState, cert_id: int) -> Certificate:
    c = st.certificates.get(cert_id)
    if c is None:
        raise not_found("certificate", cert_id)
    return c


def _parse_uploaded(pem: str, key_pem: str, errors: FieldErrors) -> dict[str, Any] | None:
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, TypeError):
        errors.add("certificate", "is not a valid PEM encoded certificate")
        chain = []
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # all mean "not a usable key"
        errors.add("private_key", "is not a valid unencrypted PEM encoded private key")
        key = None
    if not chain or key is None:
        return None
    leaf = chain[0]
    spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        errors.add("private_key", "does not match the certificate")
        return None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    before = getattr(leaf, "not_valid_before_utc", None) or leaf.not_valid_before
    after = getattr(leaf, "not_valid_after_utc", None) or leaf.not_valid_after
    return {
        "domain_names": list(names),
        "fingerprint": ":".join(f"{b:02x}" for b in leaf.fingerprint(hashes.SHA256())),
        "not_valid_before": rfc3339(before),
        "not_valid_after": rfc3339(after),
        "leaf_pem": leaf.public_bytes(serialization.Encoding.PEM).decode(),
    }


def create(st: HetznerState, body: dict[str, Any]) -> tuple[Certificate, Action | None]:
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", required=True, min_len=1, max_len=128, pattern=NAME_RE)
    ctype = read_str(body, "type", errors, "type", choices=("uploaded", "managed"), default="uploaded")
    labels: dict[str, str] = {}
    if body.get("labels") is not None:
        labels = check_labels(body["labels"], errors) or {}
    parsed = None
    domains: list[str] = []
    if ctype == "uploaded":
        pem = read_str(body, "certificate", errors, "certificate", required=True, min_len=1)
        key = read_str(body, "private_key", errors, "private_key", required=True, min_len=1)
        if isinstance(pem, str) and isinstance(key, str):
            parsed = _parse_uploaded(pem, key, errors)
    elif ctype == "managed":
        domains = (
            read_str_list(body, "domain_names", errors, "domain_names", required=True, max_items=100) or []
        )
        if not domains and "domain_names" in body and isinstance(body.get("domain_names"), list):
            errors.add("domain_names", "at least one domain name is required")
        for d in domains:
            if not DOMAIN_RE.match(d):
                errors.add("domain_names", f"'{d}' is not a valid domain name")
        domains = list(dict.fromkeys(d.lower() for d in domains))
    errors.raise_if_any()
    if any(c.name == name for c in st.certificates.values()):
        raise uniqueness_error("name", f"certificate name '{name}' is already used")

    cert = Certificate(
        id=st.next_id("certificate"),
        name=name,
        type=ctype,
        labels=labels,
        created=st.clock.stamp(),
        domain_names=domains,
    )
    action = None
    if parsed is not None:
        cert.domain_names = parsed["domain_names"]
        cert.certificate = body["certificate"]
        cert.fingerprint = parsed["fingerprint"]
        cert.not_valid_before = parsed["not_valid_before"]
        cert.not_valid_after = parsed["not_valid_after"]
        cert.material = IssuedCert(
            cert_pem=parsed["leaf_pem"], key_pem=body["private_key"], chain_pem=body["certificate"]
        )
        st.certificates[cert.id] = cert
    else:
        cert.issuance, cert.renewal = "pending", "unavailable"
        st.certificates[cert.id] = cert
        action = _start_issuance(st, cert, "create_certificate")
    st.emit("created", "certificate", cert.id)
    return cert, action


def _start_issuance(st: HetznerState, cert: Certificate, command: str) -> Action:
    def decide() -> Outcome:
        return _complete_issuance(st, cert.id)

    return st.actions.start(
        command, [(cert.id, "certificate")], duration=st.settings.managed_certificate_duration, decide=decide
    )


def _zone_for(st: HetznerState, domain: str) -> bool:
    bare = domain.removeprefix("*.")
    return any(bare == z.name or bare.endswith("." + z.name) for z in st.zones.values())


def _complete_issuance(st: HetznerState, cert_id: int) -> Outcome:
    cert = st.certificates.get(cert_id)
    if cert is None:
        return ("not_found", "certificate was deleted during issuance")
    failure = st.managed_certificate_failure
    code: str | None = None
    if failure:
        code = failure if isinstance(failure, str) else DEFAULT_FAILURE_CODE
    elif not all(_zone_for(st, d) for d in cert.domain_names):
        code = "dns_zone_not_found"
    if code is not None:
        message = FAILURE_MESSAGES.get(code, code.replace("_", " "))
        cert.issuance = "failed"
        cert.error = {"code": code, "message": message}
        return (code, message)
    issued = st.ca.issue(*cert.domain_names, days=90)  # Let's Encrypt's lifetime
    leaf = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    before = getattr(leaf, "not_valid_before_utc", None) or leaf.not_valid_before
    after = getattr(leaf, "not_valid_after_utc", None) or leaf.not_valid_after
    cert.material = issued
    cert.certificate = issued.chain_pem
    cert.fingerprint = ":".join(f"{b:02x}" for b in leaf.fingerprint(hashes.SHA256()))
    cert.not_valid_before = rfc3339(before)
    cert.not_valid_after = rfc3339(after)
    cert.issuance, cert.renewal, cert.error = "completed", "scheduled", None
    return None


def retry(st: HetznerState, cert_id: int) -> Action:
    cert = get(st, cert_id)
    if cert.type != "managed" or cert.issuance != "failed":
        raise unprocessable(
            "unsupported_error", "retry is only possible for managed certificates whose issuance failed"
        )
    cert.issuance, cert.error = "pending", None
    action = _start_issuance(st, cert, "issue_certificate")
    st.emit("updated", "certificate", cert.id)
    return action


def update(st: HetznerState, cert_id: int, body: dict[str, Any]) -> Certificate:
    cert = get(st, cert_id)
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", min_len=1, max_len=128, pattern=NAME_RE)
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else None
    errors.raise_if_any()
    if name is not None and name != cert.name and any(c.name == name for c in st.certificates.values()):
        raise uniqueness_error("name", f"certificate name '{name}' is already used")
    if name is not None:
        cert.name = name
    if labels is not None:
        cert.labels = labels
    st.emit("updated", "certificate", cert.id)
    return cert


def delete(st: HetznerState, cert_id: int) -> None:
    cert = get(st, cert_id)
    users = st.certificate_users(cert.id)
    if users:
        raise HetznerError(
            422,
            "resource_in_use",
            f"certificate {cert.id} is still used by load balancer(s) {', '.join(map(str, users))}",
        )
    del st.certificates[cert.id]
    st.emit("deleted", "certificate", cert.id)
