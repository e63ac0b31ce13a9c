"""Step 1, Credentials: the keyring store, environment precedence, generation and rotation, the
no-keyring message, the Hetzner token check against the sandbox, the CLI, and the canary rule:
a secret stored in the keyring never shows up in any output, file, event, journal or exception.

Tests marked `keyring` use the REAL Secret Service (gnome-keyring in the private D-Bus session
that scripts/with-keyring starts); they skip, saying why, when it is not there.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import string
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.backends import chainer, fail, null
from support import sandboxes
from support.cli_support import secret_service_or_skip

from keybuzz_tui import config as cfgmod
from keybuzz_tui.cancel import Cancelled, CancelToken
from keybuzz_tui.credentials import (
    CERTIFICATE_KEY,
    HCLOUD_TOKEN,
    CredentialError,
    CredentialStore,
    KeyringUnavailable,
    SandboxKeyring,
    check_hcloud_token,
    env_var,
    generate_secret,
    keyring_description,
    mask,
    parse_name,
    remediation_text,
    service_name,
)
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.events import CheckResult, Info, Recorder
from keybuzz_tui.journal import Journal
from keybuzz_tui.redact import REDACTOR, safe_error

URLSAFE = set(string.ascii_letters + string.digits + "-_")
GENERATED = {
    "app/keybuzz-api/JWT_SECRET": 64,
    "app/keybuzz-api/API_ENCRYPTION_KEY": 32,
    "app/keybuzz-front/SESSION_SECRET": 48,
}


def _profile() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def profile() -> str:
    return _profile()


@pytest.fixture
def ring() -> SandboxKeyring:
    return SandboxKeyring()


@pytest.fixture
def store(profile, ring) -> CredentialStore:
    return CredentialStore(profile, backend=ring, env={})




@pytest.fixture
def real_ring(profile):
    backend = secret_service_or_skip()
    yield backend
    for name in ["hcloud-token", "certificate-key", *GENERATED, "app/keybuzz-api/DATABASE_URL"]:
        try:
            backend.delete_password(service_name(profile), name)
        except keyring.errors.PasswordDeleteError:
            pass


# --- names, env vars, masks ---------------------------------------------------------------------


def test_names_and_environment_variables():
    assert parse_name("hcloud-token") == ("hcloud-token", "", "")
    assert parse_name("app/keybuzz-api/JWT_SECRET") == ("app", "keybuzz-api", "JWT_SECRET")
    assert env_var("hcloud-token") == "HCLOUD_TOKEN"
    assert env_var("app/keybuzz-api/JWT_SECRET") == "KEYBUZZ_SECRET_KEYBUZZ_API_JWT_SECRET"
    assert env_var("app/keybuzz-front/session_key") == "KEYBUZZ_SECRET_KEYBUZZ_FRONT_SESSION_KEY"
    assert env_var(CERTIFICATE_KEY) == "KEYBUZZ_CERTIFICATE_KEY"
    assert service_name("production") == "keybuzz-tui:production"
    for bad in ("", "token", "app/Keybuzz/X", "app/keybuzz-api/", "app/keybuzz-api/1X", "app/a/b/c"):
        with pytest.raises(ValueError, match="unknown credential name"):
            parse_name(bad)


def test_masked_previews_never_show_the_value():
    token = "hc_" + "x" * 57 + "a1b2"
    assert mask(HCLOUD_TOKEN, token) == "hc_…a1b2"
    assert mask(HCLOUD_TOKEN, "short-token") == "•••• (11 chars)"
    assert mask("app/keybuzz-api/JWT_SECRET", "s" * 64) == "•••• (64 chars)"
    assert mask("app/keybuzz-api/JWT_SECRET", None) == "—"


def test_profile_must_be_a_dns_label(ring):
    with pytest.raises(ValueError, match="DNS label"):
        CredentialStore("Prod Cluster", backend=ring)


# --- the sandbox keyring ------------------------------------------------------------------------


def test_sandbox_keyring_is_never_chosen_automatically_and_has_a_human_name():
    assert SandboxKeyring.priority < 0
    assert not isinstance(keyring.get_keyring(), SandboxKeyring)
    assert not any(isinstance(b, SandboxKeyring) for b in chainer.ChainerBackend.backends)
    assert keyring_description(SandboxKeyring()) == "sandbox keyring (demo only, in memory)"
    a, b = SandboxKeyring(), SandboxKeyring()
    a.set_password("s", "u", "value-1")
    assert b.get_password("s", "u") is None  # each instance is its own world...
    assert SandboxKeyring.shared() is SandboxKeyring.shared()  # ...unless the process-wide one is used


def test_sandbox_keyring_seeded_from_a_sandbox_state_dir(tmp_path):
    (tmp_path / "hcloud.env").write_text("HCLOUD_TOKEN=hc_seeded_token_value_123456\nHCLOUD_ENDPOINT=http://127.0.0.1:1/v1\n")
    ring = SandboxKeyring.for_sandbox(tmp_path, "demo")
    store = CredentialStore("demo", backend=ring, env={})
    assert store.hcloud_token() == "hc_seeded_token_value_123456"
    assert REDACTOR.known("hc_seeded_token_value_123456")


# --- the store ----------------------------------------------------------------------------------


def test_set_get_delete_under_the_profile_service_and_redacted_at_once(store, ring, profile):
    value = "hc_" + uuid.uuid4().hex + uuid.uuid4().hex
    store.set(HCLOUD_TOKEN, value + "\n")  # a pasted newline is not part of a token
    assert ring.get_password(f"keybuzz-tui:{profile}", "hcloud-token") == value
    assert REDACTOR.known(value) and REDACTOR.redact(f"token={value}") == "token=••••••"
    store.set("app/keybuzz-api/DATABASE_URL", "postgres://u:pw-" + uuid.uuid4().hex + "@db/keybuzz")
    assert ring.get_password(f"keybuzz-tui:{profile}", "app/keybuzz-api/DATABASE_URL").startswith("postgres://")
    assert store.hcloud_token() == value
    assert store.app_secret("keybuzz-api", "DATABASE_URL").startswith("postgres://")
    assert store.get("app/keybuzz-front/SESSION_SECRET") is None
    assert store.delete(HCLOUD_TOKEN) is True
    assert store.delete(HCLOUD_TOKEN) is False
    assert store.hcloud_token() is None
    with pytest.raises(CredentialError, match="empty"):
        store.set(HCLOUD_TOKEN, "  \n")
    assert "hc_" not in repr(store)


def test_values_read_from_the_keyring_are_registered(ring, profile):
    value = "read-back-" + uuid.uuid4().hex
    ring.set_password(service_name(profile), "app/keybuzz-api/JWT_SECRET", value)  # stored by an earlier run
    assert not REDACTOR.known(value)
    assert CredentialStore(profile, backend=ring, env={}).app_secret("keybuzz-api", "JWT_SECRET") == value
    assert REDACTOR.known(value)


def test_environment_variables_take_precedence_and_status_says_so(ring, profile):
    cfg = cfgmod.Config()
    env_token = "hc_env_" + uuid.uuid4().hex * 2
    ring_token = "hc_ring_" + uuid.uuid4().hex * 2
    ring.set_password(service_name(profile), HCLOUD_TOKEN, ring_token)
    env = {"HCLOUD_TOKEN": env_token, "KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL": "postgres://env-" + uuid.uuid4().hex}
    store = CredentialStore(profile, backend=ring, env=env)
    assert store.hcloud_token() == env_token
    assert store.lookup(HCLOUD_TOKEN) == (env_token, "env")
    assert REDACTOR.known(env_token)
    rows = {r.name: r for r in store.status(cfg)}
    assert rows[HCLOUD_TOKEN].source == "env"
    assert rows[HCLOUD_TOKEN].preview == f"hc_…{env_token[-4:]}"
    assert rows["app/keybuzz-api/DATABASE_URL"].source == "env"
    assert rows["app/keybuzz-api/JWT_SECRET"] == ("app/keybuzz-api/JWT_SECRET", "missing", "—")
    assert list(rows) == ["hcloud-token", "app/keybuzz-api/DATABASE_URL", *GENERATED]
    # allow_env=False: only the keyring counts (the wizard's "ignore the environment" switch)
    strict = CredentialStore(profile, backend=ring, env=env, allow_env=False)
    assert strict.hcloud_token() == ring_token
    assert strict.status(cfg)[0].source == "keyring"
    # an empty variable is not a value
    assert CredentialStore(profile, backend=ring, env={"HCLOUD_TOKEN": ""}).lookup(HCLOUD_TOKEN)[1] == "keyring"


def test_status_lists_the_certificate_key_of_an_uploaded_certificate(store):
    cfg = cfgmod.Config()
    cfg.load_balancer.certificate.type = "uploaded"
    cfg.load_balancer.certificate.cert_file = "chain.pem"
    assert store.status(cfg)[-1].name == CERTIFICATE_KEY
    pem = "-----BEGIN PRIVATE KEY-----\nMIIE" + uuid.uuid4().hex + "\n-----END PRIVATE KEY-----\n"
    store.set(CERTIFICATE_KEY, pem)
    assert store.certificate_key() == pem  # kept byte for byte (a PEM's final newline included)


def test_ensure_app_secrets_generates_missing_ones_with_the_configured_length(store):
    cfg = cfgmod.Config()
    entered = "postgres://keybuzz:pw@db/keybuzz-" + uuid.uuid4().hex
    store.set("app/keybuzz-api/DATABASE_URL", entered)
    generated = store.ensure_app_secrets(cfg)
    assert generated == list(GENERATED)
    for name, length in GENERATED.items():
        value = store.get(name)
        assert len(value) == length and set(value) <= URLSAFE
        assert REDACTOR.known(value)
    before = {n: store.get(n) for n in GENERATED}
    assert store.ensure_app_secrets(cfg) == []  # a second run generates nothing
    assert {n: store.get(n) for n in GENERATED} == before
    assert store.get("app/keybuzz-api/DATABASE_URL") == entered  # never touched
    assert store.missing(cfg) == ["hcloud-token"]


def test_rotation_regenerates_only_what_is_asked(store):
    cfg = cfgmod.Config()
    store.ensure_app_secrets(cfg)
    before = {n: store.get(n) for n in GENERATED}
    assert store.ensure_app_secrets(cfg, rotate={"app/keybuzz-api/JWT_SECRET"}) == ["app/keybuzz-api/JWT_SECRET"]
    after = {n: store.get(n) for n in GENERATED}
    assert after["app/keybuzz-api/JWT_SECRET"] != before["app/keybuzz-api/JWT_SECRET"]
    assert len(after["app/keybuzz-api/JWT_SECRET"]) == 64
    assert {k: v for k, v in after.items() if k != "app/keybuzz-api/JWT_SECRET"} == {
        k: v for k, v in before.items() if k != "app/keybuzz-api/JWT_SECRET"
    }
    with pytest.raises(CredentialError, match="entered, not generated"):
        store.ensure_app_secrets(cfg, rotate={"app/keybuzz-api/DATABASE_URL"})
    with pytest.raises(CredentialError, match="not a secret of keybuzz.yaml"):
        store.ensure_app_secrets(cfg, rotate={"app/keybuzz-api/NOPE"})


def test_environment_provided_secrets_are_neither_generated_nor_rotated(ring, profile):
    cfg = cfgmod.Config()
    env = {"KEYBUZZ_SECRET_KEYBUZZ_FRONT_SESSION_SECRET": "from-env-" + uuid.uuid4().hex}
    store = CredentialStore(profile, backend=ring, env=env)
    assert "app/keybuzz-front/SESSION_SECRET" not in store.ensure_app_secrets(cfg)
    assert ring.get_password(service_name(profile), "app/keybuzz-front/SESSION_SECRET") is None
    with pytest.raises(CredentialError, match="KEYBUZZ_SECRET_KEYBUZZ_FRONT_SESSION_SECRET"):
        store.ensure_app_secrets(cfg, rotate={"app/keybuzz-front/SESSION_SECRET"})


@pytest.mark.parametrize("length", [16, 17, 31, 32, 33, 48, 64, 255, 256])
def test_generated_secret_lengths_and_alphabets(length):
    a, b = generate_secret(length), generate_secret(length)
    assert len(a) == length and set(a) <= URLSAFE and a != b
    h = generate_secret(length, alphabet="hex")
    assert len(h) == length and set(h) <= set("0123456789abcdef")
    assert REDACTOR.known(a) and REDACTOR.known(h)


def test_custom_secret_lengths_from_the_answers(store):
    cfg = cfgmod.loads(
        "apps:\n- name: api\n  image: ghcr.io/k/api:1\n  port: 8080\n  node_port: 30080\n"
        "  host: platform-api.keybuzz.io\n  secrets:\n  - {key: A, generate: true, length: 16}\n"
        "  - {key: B, generate: true, length: 256}\n"
    )
    assert store.ensure_app_secrets(cfg) == ["app/api/A", "app/api/B"]
    assert len(store.get("app/api/A")) == 16 and len(store.get("app/api/B")) == 256


# --- no usable keyring --------------------------------------------------------------------------


def test_no_keyring_backend_raises_a_message_saying_what_and_how(profile):
    store = CredentialStore(profile, backend=fail.Keyring(), env={})
    with pytest.raises(KeyringUnavailable) as exc:
        store.hcloud_token()
    text = str(exc.value)
    assert "no usable OS keyring" in text and "fail.Keyring" in text
    assert "gnome-keyring" in text and "D-Bus" in text  # how to get one (this is Linux)
    assert "HCLOUD_TOKEN" in text and "KEYBUZZ_SECRET_" in text  # or the explicit alternative
    assert "plaintext" in text  # and that there is no silent fallback
    assert exc.value.remediation and exc.value.reason
    with pytest.raises(KeyringUnavailable):
        store.set(HCLOUD_TOKEN, "hc_would_be_lost_" + uuid.uuid4().hex)
    assert store.available is False
    assert store.backend_description().startswith("unavailable")
    # status still answers: every row the environment does not cover is missing
    assert {r.source for r in store.status(cfgmod.Config())} == {"missing"}


def test_remediation_mentions_macos_keychain_and_windows_credential_locker():
    assert "Keychain" in remediation_text("darwin")
    assert "Credential Locker" in remediation_text("win32")
    assert "HCLOUD_TOKEN" in remediation_text("darwin") and "HCLOUD_TOKEN" in remediation_text("win32")


def test_environment_variables_work_without_any_keyring(profile):
    token = "hc_ci_" + uuid.uuid4().hex * 2
    env = {"HCLOUD_TOKEN": token, "KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL": "postgres://ci"}
    store = CredentialStore(profile, backend=fail.Keyring(), env=env)
    assert store.hcloud_token() == token
    rows = {r.name: r.source for r in store.status(cfgmod.Config())}
    assert rows["hcloud-token"] == "env" and rows["app/keybuzz-api/DATABASE_URL"] == "env"
    assert rows["app/keybuzz-api/JWT_SECRET"] == "missing"


def test_null_and_empty_chain_backends_are_refused(profile, monkeypatch):
    with pytest.raises(KeyringUnavailable, match="discards"):
        CredentialStore(profile, backend=null.Keyring(), env={}).hcloud_token()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    with pytest.raises(KeyringUnavailable, match="no viable backend"):
        CredentialStore(profile, backend=chainer.ChainerBackend(), env={}).hcloud_token()


class _FakePlaintext(keyring.backend.KeyringBackend):
    """Stands for keyrings.alt.file.PlaintextKeyring (not installed here)."""

    priority = -20  # never chosen by keyring itself

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        raise AssertionError("a plaintext backend must never be written to")


_FakePlaintext.__module__ = "keyrings.alt.file"
_FakePlaintext.__name__ = _FakePlaintext.__qualname__ = "PlaintextKeyring"


def test_keyrings_alt_plaintext_backends_are_refused_explicitly(profile, monkeypatch):
    store = CredentialStore(profile, backend=_FakePlaintext(), env={})
    with pytest.raises(KeyringUnavailable) as exc:
        store.set(HCLOUD_TOKEN, "hc_never_in_a_file_" + uuid.uuid4().hex)
    assert "keyrings.alt.file.PlaintextKeyring" in str(exc.value) and "refuses" in str(exc.value)
    assert "refused" in keyring_description(_FakePlaintext())
    # a chain of a real keyring and a plaintext one uses the real one only
    sandbox = SandboxKeyring()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [_FakePlaintext()])
    with pytest.raises(KeyringUnavailable, match="file-based"):
        CredentialStore(profile, backend=chainer.ChainerBackend(), env={}).hcloud_token()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [sandbox, _FakePlaintext()])
    CredentialStore(profile, backend=chainer.ChainerBackend(), env={}).set(HCLOUD_TOKEN, "hc_chained_" + uuid.uuid4().hex)
    assert sandbox.get_password(service_name(profile), HCLOUD_TOKEN).startswith("hc_chained_")


class _Failing(keyring.backend.KeyringBackend):
    priority = -20
    error: BaseException = keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def get_password(self, service, username):
        raise self.error

    def set_password(self, service, username, password):
        raise self.error


def test_a_locked_secret_service_is_reported_as_unavailable(profile):
    with pytest.raises(KeyringUnavailable, match="locked"):
        CredentialStore(profile, backend=_Failing(), env={}).hcloud_token()


def test_a_dead_dbus_daemon_is_reported_as_unavailable(profile):
    from secretstorage.exceptions import SecretServiceNotAvailableException

    backend = _Failing()
    backend.error = SecretServiceNotAvailableException("Cannot connect to the session bus")
    with pytest.raises(KeyringUnavailable, match="SecretServiceNotAvailableException"):
        CredentialStore(profile, backend=backend, env={}).hcloud_token()


def test_a_keyring_waiting_for_a_prompt_does_not_hang_us(profile):
    release = threading.Event()

    class Hanging(_Failing):
        def get_password(self, service, username):
            release.wait(10)

    store = CredentialStore(profile, backend=Hanging(), env={}, timeout=0.3)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyringUnavailable, match="did not answer within 0.3 s"):
            store.hcloud_token()
    finally:
        release.set()
    assert time.monotonic() - t0 < 3


def test_keyring_descriptions():
    from keyring.backends import SecretService, Windows, macOS

    assert keyring_description(fail.Keyring()).startswith("none")
    assert "Secret Service" in keyring_description(object.__new__(SecretService.Keyring))
    assert keyring_description(object.__new__(macOS.Keyring)) == "macOS Keychain"
    assert keyring_description(object.__new__(Windows.WinVaultKeyring)) == "Windows Credential Locker"


# --- the real Secret Service (gnome-keyring in a private D-Bus session) ---------------------------


@pytest.mark.keyring
def test_real_secret_service_round_trip_and_read_back_on_a_later_run(real_ring, profile):
    token = "hc_real_" + uuid.uuid4().hex * 2
    store = CredentialStore(profile, backend=real_ring, env={})
    assert store.available
    assert store.backend_description().startswith("Secret Service")
    store.set(HCLOUD_TOKEN, token)
    # a later run: a new process would build a new store on the same keyring
    later = CredentialStore(profile, backend=keyring.backends.SecretService.Keyring(), env={})
    assert later.hcloud_token() == token
    assert real_ring.get_password(f"keybuzz-tui:{profile}", "hcloud-token") == token
    # profiles do not see each other's secrets
    assert CredentialStore(_profile(), backend=real_ring, env={}).hcloud_token() is None
    assert later.delete(HCLOUD_TOKEN) and later.hcloud_token() is None


@pytest.mark.keyring
def test_real_secret_service_generation_and_rotation(real_ring, profile):
    cfg = cfgmod.Config()
    store = CredentialStore(profile, backend=real_ring, env={})
    assert store.ensure_app_secrets(cfg) == list(GENERATED)
    first = {n: store.get(n) for n in GENERATED}
    assert {n: len(v) for n, v in first.items()} == GENERATED
    assert store.ensure_app_secrets(cfg) == []
    store.ensure_app_secrets(cfg, rotate={"app/keybuzz-front/SESSION_SECRET"})
    again = CredentialStore(profile, backend=real_ring, env={})
    assert again.get("app/keybuzz-front/SESSION_SECRET") != first["app/keybuzz-front/SESSION_SECRET"]
    assert again.get("app/keybuzz-api/JWT_SECRET") == first["app/keybuzz-api/JWT_SECRET"]


@pytest.mark.keyring
def test_the_default_keyring_of_the_test_session_is_the_secret_service():
    secret_service_or_skip()
    store = CredentialStore(_profile())  # what the CLI builds: keyring's own choice
    assert "Secret Service" in store.backend_description()


# --- the Hetzner token check against the sandbox ----------------------------------------------------


@pytest.fixture(scope="module")
def ro_world(tmp_path_factory):
    """hcloud.env holds a read-only token; the read-write one is in the sandbox's settings."""
    sb = sandboxes.start(tmp_path_factory.mktemp("ro"), "hetzner-readonly-token")
    yield sb
    sb.stop()


def _writes(sb) -> tuple[int, int, int, int]:
    h = sb.hetzner
    return len(h.actions.actions), len(h.lbs), len(h.certificates), len(h.firewalls)


def test_check_tells_a_valid_token(ro_world):
    before = _writes(ro_world)
    res = check_hcloud_token(ro_world.hcloud_endpoint, ro_world.hetzner.settings.token)
    assert res.status == "valid" and res.ok, res
    assert "read and write" in res.message
    assert "8 servers" in res.project_hint and "keybuzz-net" in res.project_hint
    assert res.requests == 3
    assert _writes(ro_world) == before  # the write probe changed nothing


def test_check_tells_a_read_only_token(ro_world):
    ep = Endpoints.from_sandbox(ro_world.state_dir)
    assert ep.hcloud_token_env == ro_world.hetzner.settings.read_only_token
    before = _writes(ro_world)
    res = check_hcloud_token(ep)  # the token of hcloud.env
    assert res.status == "read-only", res
    assert "token_readonly" in res.message and "Read & Write" in res.remediation
    assert res.project_hint.startswith("8 servers")  # it can read: the hint is still there
    assert _writes(ro_world) == before


def test_check_tells_a_wrong_token(ro_world):
    res = check_hcloud_token(ro_world.hcloud_endpoint, "hc_wrong_" + uuid.uuid4().hex)
    assert res.status == "wrong", res
    assert "401 unauthorized" in res.message and "credentials set hcloud-token" in res.remediation
    assert res.requests == 1  # stops at the first refusal


def test_check_with_a_context_and_with_an_hcloud_client(ro_world, tmp_path):
    rw = ro_world.hetzner.settings.token
    ep = Endpoints.from_sandbox(ro_world.state_dir)
    ep.hcloud_token_env = None  # the token must then come from the keyring
    ring = SandboxKeyring()
    store = CredentialStore("demo", backend=ring, env={})
    store.set(HCLOUD_TOKEN, rw)
    ctx = Context(cfgmod.Config(), ep, store)
    assert check_hcloud_token(ctx).status == "valid"
    assert check_hcloud_token(ctx, "hc_other_" + uuid.uuid4().hex).status == "wrong"
    client = ro_world.hcloud_client(token=rw)
    assert check_hcloud_token(client).status == "valid"
    assert client._client._retry_max_retries == 5  # the caller's client is left as it was
    assert client.servers.get_all()  # and still usable


def test_check_without_a_token_says_where_to_put_one(ro_world):
    res = check_hcloud_token(ro_world.hcloud_endpoint, None)
    assert res.status == "missing" and "credentials set hcloud-token" in res.remediation and res.requests == 0


def test_check_tells_an_unreachable_endpoint_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    t0 = time.monotonic()
    res = check_hcloud_token(f"http://127.0.0.1:{port}/v1", "hc_" + uuid.uuid4().hex, timeout=2)
    assert res.status == "unreachable", res
    assert "connection refused" in res.message
    assert time.monotonic() - t0 < 5  # no retries with back-off


def test_check_tells_an_unreachable_endpoint_that_never_answers():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)  # accepts connections (the kernel does) but never answers a byte
    try:
        port = srv.getsockname()[1]
        t0 = time.monotonic()
        res = check_hcloud_token(f"http://127.0.0.1:{port}/v1", "hc_" + uuid.uuid4().hex, timeout=0.5)
        assert res.status == "unreachable", res
        assert "no answer" in res.message and "0.5 s" in res.message
        assert time.monotonic() - t0 < 4.5  # one timeout, not five retries with back-off (at least 5 s)
    finally:
        srv.close()


def test_check_tells_a_rate_limited_project(tmp_path):
    import requests

    sb = sandboxes.start(tmp_path / "rl", "hetzner-rate-limit")
    try:
        limit = sb.hetzner.settings.rate_limit_per_hour
        headers = {"Authorization": f"Bearer {sb.hcloud_token}"}
        with requests.Session() as http:
            for _ in range(limit + 1):  # another tool spends the budget
                if http.get(sb.hcloud_endpoint + "/servers", headers=headers, timeout=5).status_code == 429:
                    break
        t0 = time.monotonic()
        res = check_hcloud_token(sb.hcloud_endpoint, sb.hcloud_token, timeout=5)

        assert res.status == "rate-limited", res
        assert "429" in res.message and "refills" in res.message
        assert res.rate_limit_remaining == 0 and res.rate_limit_reset and res.rate_limit_reset > time.time()
        assert res.requests == 1  # no hcloud retries with back-off (at least 5 s) in a check
        assert time.monotonic() - t0 < 4.5
        ev = res.to_event()
        assert isinstance(ev, CheckResult) and ev.status == "warn" and ev.check == "hcloud-token"
    finally:
        sb.stop()


def test_check_honours_cancellation_between_calls(ro_world):
    token = CancelToken()
    token.cancel("operator left")
    with pytest.raises(Cancelled):
        check_hcloud_token(ro_world.hcloud_endpoint, ro_world.hetzner.settings.token, cancel=token)


def test_check_uses_the_official_endpoint_unless_told_otherwise(monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_request(self, method, url, **kw):  # no packet leaves: the first request stops here
        seen["endpoint"], seen["timeout"] = self._endpoint, kw.get("timeout", self._timeout)
        raise Stop

    monkeypatch.setattr("hcloud._client.ClientBase.request", fake_request)
    res = check_hcloud_token(None, "hc_" + uuid.uuid4().hex)
    assert seen["endpoint"] == "https://api.hetzner.cloud/v1"
    assert seen["timeout"] == 10.0  # never without a timeout
    assert res.status == "unreachable"  # what an unexpected error becomes: never a traceback


# --- the CLI --------------------------------------------------------------------------------------


def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HCLOUD_", "KEYBUZZ_SECRET_", "PYTHON_KEYRING"))}
    env.update({"KEYBUZZ_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def _cli(module: str, args: list[str], tmp_path: Path, *, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"keybuzz_tui.{module}", *args],
        input=stdin if stdin is not None else "", capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env=_cli_env(tmp_path, **env),
    )


def test_cli_without_keyring_exits_4_with_the_remediation(tmp_path):
    cfg = tmp_path / "keybuzz.yaml"
    cfg.write_text(cfgmod.dumps(cfgmod.Config(profile=_profile())))
    r = _cli("cli_credentials", ["status", "--config", str(cfg)], tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    assert r.returncode == 4, r.stderr
    assert "no usable OS keyring" in r.stderr and "HCLOUD_TOKEN" in r.stderr
    r = _cli("cli_credentials", ["set", "hcloud-token", "--config", str(cfg)], tmp_path, stdin="hc_x\n",
             PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    assert r.returncode == 4 and "gnome-keyring" in r.stderr and "Traceback" not in r.stderr


def test_cli_refuses_a_secret_on_the_command_line_without_echoing_it(tmp_path):
    secret = "hc_argv_" + uuid.uuid4().hex
    r = _cli("cli_credentials", ["set", "hcloud-token", secret], tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    assert r.returncode == 2
    assert "never put a secret on the command line" in r.stderr
    assert secret not in r.stdout + r.stderr


def test_cli_usage_errors_exit_2(tmp_path):
    assert _cli("cli_credentials", ["set", "nonsense"], tmp_path).returncode == 2
    assert _cli("cli_credentials", ["rotate"], tmp_path).returncode == 2
    assert _cli("cli_credentials", ["forget", "hcloud-token"], tmp_path).returncode == 2  # no --yes, no terminal
    assert _cli("cli_credentials", [], tmp_path).returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("apps: 3\nnamespace: Bad_NS\n")
    r = _cli("cli_credentials", ["status", "--config", str(bad)], tmp_path)
    assert r.returncode == 2 and "bad.yaml:2: namespace:" in r.stderr


def test_cli_check_against_the_sandbox(ro_world, tmp_path):
    r = _cli("cli_credentials", ["check", "--sandbox", str(ro_world.state_dir)], tmp_path)
    assert r.returncode == 4, r.stdout + r.stderr  # hcloud.env holds a read-only token
    assert "read-only" in r.stdout and "Read & Write" in r.stdout
    r = _cli("cli_credentials", ["check", "--json"], tmp_path,
             HCLOUD_TOKEN=ro_world.hetzner.settings.token, HCLOUD_ENDPOINT=ro_world.hcloud_endpoint)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "valid" and doc["token_source"] == "HCLOUD_TOKEN" and doc["endpoint"] == ro_world.hcloud_endpoint
    r = _cli("cli_credentials", ["check"], tmp_path, HCLOUD_TOKEN="hc_wrong_" + uuid.uuid4().hex, HCLOUD_ENDPOINT="http://127.0.0.1:9/v1")
    assert r.returncode == 5 and "unreachable" in r.stdout


@pytest.mark.keyring
def test_cli_set_status_rotate_forget_with_the_real_keyring(real_ring, profile, tmp_path):
    cfg = tmp_path / "keybuzz.yaml"
    cfg.write_text(cfgmod.dumps(cfgmod.Config(profile=profile)))
    token = "hc_cli_" + uuid.uuid4().hex * 2
    r = _cli("cli_credentials", ["set", "hcloud-token", "--config", str(cfg)], tmp_path, stdin=token + "\n")
    assert r.returncode == 0, r.stderr
    assert f"hc_…{token[-4:]}" in r.stdout and "Secret Service" in r.stdout
    assert real_ring.get_password(f"keybuzz-tui:{profile}", "hcloud-token") == token
    r = _cli("cli_credentials", ["set", "app/keybuzz-api/DATABASE_URL", "--config", str(cfg)], tmp_path, stdin="postgres://x\n")
    assert r.returncode == 0, r.stderr
    r = _cli("cli_credentials", ["status", "--config", str(cfg)], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # generated ones come with the next apply
    assert "generated by the next apply" in r.stdout and f"keybuzz-tui:{profile}" in r.stdout
    r = _cli("cli_credentials", ["rotate", "--all", "--config", str(cfg)], tmp_path)
    assert r.returncode == 0 and "next `keybuzz-tui apply`" in r.stdout
    assert len(real_ring.get_password(f"keybuzz-tui:{profile}", "app/keybuzz-api/JWT_SECRET")) == 64
    r = _cli("cli_credentials", ["status", "--json", "--config", str(cfg)], tmp_path, HCLOUD_TOKEN="hc_env_" + uuid.uuid4().hex * 2)
    doc = json.loads(r.stdout)
    assert doc["credentials"][0]["source"] == "env" and doc["missing"] == []
    r = _cli("cli_credentials", ["forget", "--all", "--yes", "--config", str(cfg)], tmp_path)
    assert r.returncode == 0 and "deleted: hcloud-token" in r.stdout
    assert real_ring.get_password(f"keybuzz-tui:{profile}", "hcloud-token") is None


# --- the canary -------------------------------------------------------------------------------------


def _canary() -> str:
    return "hc_CANARY" + uuid.uuid4().hex + uuid.uuid4().hex[:20]


def _forms(secret: str) -> list[str]:
    b64 = base64.b64encode(secret.encode()).decode()
    return [secret, b64, b64.rstrip("=")]


def _assert_nowhere(secret: str, texts: list[str], *roots: Path) -> None:
    files = [f for root in roots for f in Path(root).rglob("*") if f.is_file()]
    assert files
    for form in _forms(secret):
        for i, t in enumerate(texts):
            assert form not in t, f"the canary leaked into output #{i}: {t[:400]}"
        for f in files:
            assert form.encode() not in f.read_bytes(), f"the canary leaked into {f}"


def _canary_flow(store: CredentialStore, canary: str, sb, tmp_path: Path) -> list[str]:
    """Use the canary through status, check, events, the journal, keybuzz.yaml and exceptions."""
    texts: list[str] = []
    cfg = cfgmod.Config(profile=store.profile)
    rows = store.status(cfg)
    texts.append(repr(rows))
    ep = Endpoints.from_sandbox(sb.state_dir)
    ep.hcloud_token_env = None
    rec = Recorder()
    journal = Journal(tmp_path / "state" / "journal.jsonl")
    ctx = Context(cfg, ep, store, sink=rec, journal=journal)
    res = check_hcloud_token(ctx)
    assert res.status == "wrong"  # the canary is not the sandbox's token
    texts.append(repr(res))
    ctx.emit(res.to_event())
    ctx.emit(Info(step="credentials", message=f"token is {store.hcloud_token()}"))  # a careless message
    texts.extend(json.dumps(e.to_dict()) for e in rec.events)
    journal.start_run("apply")
    journal.write("credentials", token=store.hcloud_token(), detail=res.message)
    journal.finish_run("ok")
    cfgmod.save(cfg, tmp_path / "keybuzz.yaml")
    for exc in (
        CredentialError(f"cannot use {canary}"),
        KeyringUnavailable(f"backend said {canary}"),
        RuntimeError(f"boom {canary}"),
    ):
        texts.append(str(exc) if isinstance(exc, CredentialError) else safe_error(exc))
    assert all(isinstance(e, (CheckResult, Info)) for e in rec.events)
    return texts


def test_canary_never_leaks_in_process(tmp_path, ro_world):
    canary = _canary()
    store = CredentialStore(_profile(), backend=SandboxKeyring(), env={})
    store.set(HCLOUD_TOKEN, canary)
    store.set("app/keybuzz-api/DATABASE_URL", "postgres://" + canary)
    texts = _canary_flow(store, canary, ro_world, tmp_path)
    assert any("••••••" in t for t in texts)  # it was there, masked
    assert (tmp_path / "state" / "journal.jsonl").exists() and (tmp_path / "keybuzz.yaml").exists()
    _assert_nowhere(canary, texts, tmp_path, ro_world.state_dir)


def test_canary_from_the_environment_never_leaks_from_the_cli(tmp_path, ro_world):
    canary = _canary()
    cfg = tmp_path / "keybuzz.yaml"
    r0 = _cli("cli_config", ["init", "--config", str(cfg), "--profile", _profile()], tmp_path)
    runs = [r0]
    env = {"HCLOUD_TOKEN": canary, "HCLOUD_ENDPOINT": ro_world.hcloud_endpoint,
           "KEYBUZZ_SECRET_KEYBUZZ_API_DATABASE_URL": "postgres://" + canary,
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    for args in (["status"], ["status", "--json"], ["check"], ["check", "--json"], ["rotate", "--all"]):
        runs.append(_cli("cli_credentials", [*args, "--config", str(cfg)], tmp_path, **env))
    assert runs[3].returncode == 4 and "wrong" in runs[3].stdout
    assert runs[1].returncode == 0 and "from HCLOUD_TOKEN" in runs[1].stdout
    assert runs[5].returncode == 4  # rotating needs the keyring: no silent plaintext fallback
    _assert_nowhere(canary, [r.stdout + r.stderr for r in runs], tmp_path, ro_world.state_dir)


@pytest.mark.keyring
def test_canary_in_the_real_keyring_never_leaks(real_ring, profile, tmp_path, ro_world):
    canary = _canary()
    store = CredentialStore(profile, backend=real_ring, env={})
    store.set(HCLOUD_TOKEN, canary)
    texts = _canary_flow(store, canary, ro_world, tmp_path)
    cfg = tmp_path / "keybuzz.yaml"
    runs = [_cli("cli_config", ["check", "--config", str(cfg)], tmp_path)]
    for args, stdin in (
        (["status"], None), (["status", "--json"], None), (["check"], None), (["check", "--json"], None),
        (["set", "app/keybuzz-api/DATABASE_URL"], "postgres://" + canary + "\n"),
        (["rotate", "app/keybuzz-api/JWT_SECRET"], None), (["set", "hcloud-token", canary], None),
    ):
        runs.append(_cli("cli_credentials", [*args, "--config", str(cfg)], tmp_path, stdin=stdin,
                         HCLOUD_ENDPOINT=ro_world.hcloud_endpoint))
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[3].returncode == 4 and "wrong" in runs[3].stdout  # used through the check
    assert runs[5].returncode == 0, runs[5].stderr
    assert real_ring.get_password(service_name(profile), "app/keybuzz-api/DATABASE_URL") == "postgres://" + canary
    assert runs[7].returncode == 2  # on argv: refused, not echoed
    _assert_nowhere(canary, texts + [r.stdout + r.stderr for r in runs], tmp_path, ro_world.state_dir)
