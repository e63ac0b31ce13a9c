"""Certificates: uploaded (parsed), managed (pending -> completed / failed -> retry)."""

from __future__ import annotations

import hashlib

import hcloud
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hcloud import APIException
from hcloud.actions import ActionFailedException
from hcloud.certificates import Certificate
from hcloud.load_balancers import LoadBalancerService, LoadBalancerServiceHttp
from support.hetzner_flows import create_lb, health_check, upload_cert
from support.hetzner_world import HetznerWorld, shared_ca

from keybuzz_tui.sandbox.hetzner.seeds import HetznerSettings


def test_uploaded_certificate_is_parsed(client: hcloud.Client) -> None:
    issued = shared_ca().issue("platform.keybuzz.io", "*.keybuzz.io")
    cert = client.certificates.create(
        name="up", certificate=issued.chain_pem, private_key=issued.key_pem, labels={"app": "keybuzz"}
    )
    assert cert.type == "uploaded"
    assert cert.domain_names == ["platform.keybuzz.io", "*.keybuzz.io"]
    leaf = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    expected = ":".join(f"{b:02x}" for b in hashlib.sha256(leaf.public_bytes(Encoding.DER)).digest())
    assert cert.fingerprint == expected
    assert cert.not_valid_after > cert.not_valid_before
    assert cert.status is None
    assert client.certificates.get_by_name("up").id == cert.id
    assert [c.id for c in client.certificates.get_all(label_selector="app=keybuzz")] == [cert.id]
    cert.update(name="up2")
    assert client.certificates.get_by_id(cert.id).name == "up2"
    assert cert.delete() is True


def test_uploaded_certificate_rejects_bad_pem_and_mismatched_key(client: hcloud.Client) -> None:
    a = shared_ca().issue("a.keybuzz.io")
    b = shared_ca().issue("b.keybuzz.io")
    with pytest.raises(APIException) as e:
        client.certificates.create(name="bad", certificate="not a pem", private_key=a.key_pem)
    assert e.value.code == "invalid_input"
    assert e.value.details["fields"][0]["name"] == "certificate"
    with pytest.raises(APIException) as e:
        client.certificates.create(name="bad", certificate=a.cert_pem, private_key=b.key_pem)
    assert e.value.code == "invalid_input"
    assert e.value.details["fields"] == [
        {"name": "private_key", "messages": ["does not match the certificate"]}
    ]


def test_managed_certificate_pending_then_completed(world: HetznerWorld, client: hcloud.Client) -> None:
    resp = client.certificates.create_managed(name="managed", domain_names=["platform.keybuzz.io"])
    assert resp.certificate.status.issuance == "pending"
    assert resp.certificate.certificate is None and resp.certificate.fingerprint is None
    assert resp.action.command == "create_certificate"
    assert world.call(world.state.certificate_material, resp.certificate.id) is None
    resp.action.wait_until_finished()
    cert = client.certificates.get_by_id(resp.certificate.id)
    assert cert.status.issuance == "completed" and cert.status.renewal == "scheduled"
    assert cert.certificate.startswith("-----BEGIN CERTIFICATE-----")
    leaf = x509.load_pem_x509_certificate(cert.certificate.encode())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["platform.keybuzz.io"]
    material = world.call(world.state.certificate_material, cert.id)
    assert material is not None and "PRIVATE KEY" in material.key_pem


def test_managed_certificate_fails_per_settings_then_retry() -> None:
    world = HetznerWorld(
        settings=HetznerSettings(managed_certificate_failure="caa_record_does_not_allow_ca")
    ).start()
    try:
        client = world.client()
        resp = client.certificates.create_managed(name="m", domain_names=["platform.keybuzz.io"])
        with pytest.raises(ActionFailedException) as e:
            resp.action.wait_until_finished()
        assert e.value.action.error["code"] == "caa_record_does_not_allow_ca"
        cert = client.certificates.get_by_id(resp.certificate.id)
        assert cert.status.issuance == "failed"
        assert cert.status.error.code == "caa_record_does_not_allow_ca"
        world.call(world.state.set_managed_certificate_failure, False)
        action = cert.retry_issuance()
        assert action.command == "issue_certificate"
        action.wait_until_finished()
        assert client.certificates.get_by_id(cert.id).status.issuance == "completed"
        with pytest.raises(APIException) as e2:
            cert.retry_issuance()
        assert e2.value.code == "unsupported_error"
    finally:
        world.stop()


def test_managed_certificate_for_a_domain_without_zone_fails(client: hcloud.Client) -> None:
    resp = client.certificates.create_managed(name="m2", domain_names=["www.example.org"])
    with pytest.raises(ActionFailedException):
        resp.action.wait_until_finished()
    cert = client.certificates.get_by_id(resp.certificate.id)
    assert cert.status.error.code == "dns_zone_not_found"


def test_certificate_in_use_cannot_be_deleted(client: hcloud.Client) -> None:
    cert = upload_cert(client)
    lb = create_lb(client)
    lb.add_service(
        LoadBalancerService(
            protocol="https",
            listen_port=443,
            destination_port=31695,
            http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert.id)]),
            health_check=health_check(),
        )
    ).wait_until_finished()
    with pytest.raises(APIException) as e:
        cert.delete()
    assert e.value.code == "resource_in_use"
