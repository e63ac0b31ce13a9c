"""Step 1, Credentials: the Hetzner API token and the apps' secrets, in the OS keyring.

Where secrets live (DESIGN rule 4): the OS keyring through python `keyring` (Secret Service on
Linux, macOS Keychain, Windows Credential Locker), under the service name `keybuzz-tui:<profile>`:

    hcloud-token              the Hetzner Cloud API token (Read & Write)
    app/<app>/<KEY>           one key of an app's Kubernetes Secret (entered, or generated)
    certificate-key           the private key of an uploaded LB certificate (PEM)

Environment variables are the explicit alternative for automation, and win when set:
HCLOUD_TOKEN, KEYBUZZ_SECRET_<APP>_<KEY> (app upper-cased, '-' -> '_'), KEYBUZZ_CERTIFICATE_KEY.

There is no plaintext fallback, ever: when no usable keyring exists, KeyringUnavailable says what
is wrong and how to fix it (or to use the environment variables). keyrings.alt's file backends
are refused by name. Every value read, written or generated is registered with the redaction
registry at once, so no writer can print it.

`check_hcloud_token` tells apart a valid token, a wrong one (401 unauthorized), a read-only one
(401 token_readonly on a write that cannot change anything, see `_write_probe`), an unreachable
endpoint and an exhausted rate limit (429).
"""

from __future__ import annotations

import os
import re
import secrets as _secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import chainer, fail, null

from .config import DNS_LABEL, Config
from .redact import REDACTOR, safe_error

if TYPE_CHECKING:
    from .cancel import CancelToken
    from .engine.context import Context, Endpoints
    from .journal import Journal

T = TypeVar("T")

HCLOUD_TOKEN = "hcloud-token"
CERTIFICATE_KEY = "certificate-key"
HCLOUD_API = "https://api.hetzner.cloud/v1"
SERVICE_PREFIX = "keybuzz-tui"
KEYRING_TIMEOUT = 15.0  # a Secret Service waiting for an unlock prompt nobody answers must not hang us
_APP_NAME = re.compile(r"^app/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([A-Za-z_][A-Za-z0-9_]*)$")

Source = Literal["keyring", "env", "missing"]


# --- errors ----------------------------------------------------------------------------------


class CredentialError(Exception):
    """A credentials problem the operator must fix (the CLI exits 4). The text is redacted."""

    def __init__(self, message: str) -> None:
        super().__init__(REDACTOR.redact(message))


class KeyringUnavailable(CredentialError):
    """No usable OS keyring: what is wrong, and how to fix it (or to use environment variables)."""

    def __init__(self, reason: str, *, backend: str = "") -> None:
        self.reason = REDACTOR.redact(reason)
        self.backend = backend
        self.remediation = remediation_text()
        super().__init__(f"no usable OS keyring: {self.reason}\n{self.remediation}")


def remediation_text(platform: str | None = None) -> str:
    platform = platform or sys.platform
    env = (
        "Headless servers and CI: set the secrets as environment variables instead, explicitly:\n"
        "  HCLOUD_TOKEN=<token> and KEYBUZZ_SECRET_<APP>_<KEY>=<value> for each app secret\n"
        "  (e.g. KEYBUZZ_SECRET_KEYBUZZ_API_JWT_SECRET); keybuzz-tui never stores secrets in a plaintext file."
    )
    if platform == "darwin":
        how = (
            "macOS: keybuzz-tui uses the login Keychain. Unlock it (`security unlock-keychain`),\n"
            "and note that over SSH the Keychain is often not reachable: run from a desktop session."
        )
    elif platform.startswith("win"):
        how = (
            "Windows: keybuzz-tui uses the Windows Credential Locker; it is available in an interactive\n"
            "user session (not in some service accounts or containers)."
        )
    else:
        how = (
            "Linux: keybuzz-tui needs a Secret Service (GNOME Keyring or KWallet) on the D-Bus session bus:\n"
            "  sudo apt install gnome-keyring dbus-user-session   (or: dnf install gnome-keyring)\n"
            "  then log in to a desktop session (the 'login' keyring unlocks with it; Seahorse unlocks a locked one),\n"
            "  or in a terminal-only session: `dbus-run-session -- bash`, and in that shell\n"
            "  eval \"$(gnome-keyring-daemon --unlock --components=secrets)\"   (type the keyring password, then Ctrl-D)"
        )
    return f"{how}\n{env}"


# --- names and environment variables -----------------------------------------------------------


def service_name(profile: str) -> str:
    return f"{SERVICE_PREFIX}:{profile}"


def app_secret_name(app: str, key: str) -> str:
    return f"app/{app}/{key}"


def parse_name(name: str) -> tuple[str, str, str]:
    """('hcloud-token'|'certificate-key'|'app', app, key); ValueError for anything else."""
    if name in (HCLOUD_TOKEN, CERTIFICATE_KEY):
        return name, "", ""
    m = _APP_NAME.match(name or "")
    if m:
        return "app", m.group(1), m.group(3)
    raise ValueError(
        f"unknown credential name {name!r}: expected hcloud-token, certificate-key or app/<app>/<KEY> "
        "(e.g. app/keybuzz-api/JWT_SECRET)"
    )


def env_var(name: str) -> str:
    """The environment variable that overrides credential `name`."""
    kind, app, key = parse_name(name)
    if kind == HCLOUD_TOKEN:
        return "HCLOUD_TOKEN"
    if kind == CERTIFICATE_KEY:
        return "KEYBUZZ_CERTIFICATE_KEY"
    return f"KEYBUZZ_SECRET_{app.upper().replace('-', '_')}_{key.upper()}"


def mask(name: str, value: str | None) -> str:
    """A preview that proves which value is stored without showing it: hc_…a1b2 for a long token
    (3 + 4 characters of 60 or more), only the length for the rest."""
    if not value:
        return "—"
    if name == HCLOUD_TOKEN and len(value) >= 32:
        return f"{value[:3]}…{value[-4:]}"
    return f"•••• ({len(value)} chars)"


def generate_secret(length: int, *, alphabet: Literal["urlsafe", "hex"] = "urlsafe") -> str:
    """`length` characters from `secrets`: token_urlsafe (A-Z a-z 0-9 - _, 6 bits each) or token_hex."""
    if length < 1:
        raise ValueError("length must be positive")
    if alphabet == "hex":
        value = _secrets.token_hex((length + 1) // 2)[:length]
    else:
        value = _secrets.token_urlsafe(length)[:length]  # token_urlsafe(n) is ceil(4n/3) characters
    REDACTOR.add(value)
    return value


# --- the sandbox keyring ----------------------------------------------------------------------


class SandboxKeyring(keyring.backend.KeyringBackend):
    """The demo mode's keyring, living inside the sandbox: in memory, gone with the process.

    Its priority is negative, so `keyring` never picks it on its own (nor chains it): it is only
    used when passed explicitly (`CredentialStore(profile, backend=SandboxKeyring())`).
    """

    priority = -10  # type: ignore[assignment]
    name = "sandbox keyring (demo only, in memory)"  # type: ignore[assignment]
    _shared: SandboxKeyring | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__()
        self._store: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> SandboxKeyring:
        """One per process: the demo's screens and engine steps see the same secrets."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @classmethod
    def for_sandbox(cls, state_dir: str | os.PathLike[str], profile: str = "production") -> SandboxKeyring:
        """A fresh sandbox keyring holding the sandbox's Hetzner token (from DIR/hcloud.env)."""
        ring = cls()
        for line in (Path(state_dir) / "hcloud.env").read_text().splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() == "HCLOUD_TOKEN" and v.strip():
                REDACTOR.add(v.strip())
                ring.set_password(service_name(profile), HCLOUD_TOKEN, v.strip())
        return ring

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self._store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            if self._store.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError("No such password!")

    def __repr__(self) -> str:
        return f"<SandboxKeyring {len(self._store)} item(s)>"


# --- describing and vetting backends -------------------------------------------------------------


def _is_refused(backend: Any) -> bool:
    """keyrings.alt's backends keep secrets in files (plaintext, or encrypted with a password prompt
    that a TUI cannot answer): not an OS keyring, refused by name."""
    mod = type(backend).__module__
    cls = type(backend).__name__.lower()
    return mod.startswith("keyrings.alt") or "plaintext" in cls


def _secret_service_daemon() -> str:
    """Which program owns org.freedesktop.secrets on the session bus (best effort, 2 s)."""
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        conn = open_dbus_connection(bus="SESSION")
        try:
            bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
            msg = new_method_call(bus, "GetConnectionUnixProcessID", "s", ("org.freedesktop.secrets",))
            pid = conn.send_and_get_reply(msg, timeout=2).body[0]
        finally:
            conn.close()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except Exception:
        return ""
    if comm.startswith("gnome-keyring"):
        return "GNOME Keyring"
    if comm.startswith(("kwalletd", "ksecretd")):
        return "KWallet"
    if comm.lower().startswith("keepassxc"):
        return "KeePassXC"
    return comm


def keyring_description(backend: Any) -> str:
    """What the credentials screen shows: where the secrets are kept."""
    if backend is None:
        return "none"
    if isinstance(backend, SandboxKeyring):
        return SandboxKeyring.name
    mod = type(backend).__module__
    cls = type(backend).__name__
    if isinstance(backend, fail.Keyring):
        return "none (no usable keyring backend)"
    if isinstance(backend, null.Keyring):
        return "null keyring (discards everything: refused)"
    if isinstance(backend, chainer.ChainerBackend):
        inner = [keyring_description(b) for b in type(backend).backends]
        return "chain of " + ", ".join(inner) if inner else "none (an empty keyring chain)"
    if _is_refused(backend):
        return f"{mod}.{cls} (stores secrets in a file: refused)"
    if mod == "keyring.backends.SecretService":
        daemon = _secret_service_daemon()
        return f"Secret Service ({daemon}) via D-Bus" if daemon else "Secret Service via D-Bus"
    if mod == "keyring.backends.libsecret":
        return "Secret Service via libsecret"
    if mod == "keyring.backends.kwallet":
        return "KWallet via D-Bus"
    if mod.startswith("keyring.backends.macOS"):
        return "macOS Keychain"
    if mod == "keyring.backends.Windows":
        return "Windows Credential Locker"
    return str(getattr(backend, "name", "") or f"{mod}.{cls}")


def _vet(backend: Any) -> Any:
    """The backend to use, or KeyringUnavailable. Never a plaintext or discarding one."""
    if isinstance(backend, SandboxKeyring):
        return backend
    if isinstance(backend, fail.Keyring):
        raise KeyringUnavailable("python keyring found no backend (keyring.backends.fail.Keyring)", backend="fail")
    if isinstance(backend, null.Keyring):
        raise KeyringUnavailable("the configured keyring is the null backend, which discards every secret", backend="null")
    if isinstance(backend, chainer.ChainerBackend):
        usable = [b for b in type(backend).backends if not _is_refused(b)]
        if not usable:
            refused = [type(b).__module__ + "." + type(b).__name__ for b in type(backend).backends]
            why = "only file-based backends are installed (" + ", ".join(refused) + "), which keybuzz-tui refuses" if refused else "no viable backend to chain"
            raise KeyringUnavailable(why, backend="chainer")
        return _vet(usable[0])  # the one the chain would write to
    if _is_refused(backend):
        raise KeyringUnavailable(
            f"the configured backend {type(backend).__module__}.{type(backend).__name__} keeps secrets in a file, "
            "which keybuzz-tui refuses (uninstall keyrings.alt or set PYTHON_KEYRING_BACKEND to an OS keyring)",
            backend=type(backend).__name__,
        )
    try:
        type(backend).priority  # noqa: B018 - raises RuntimeError with the reason when not viable
    except Exception as e:
        raise KeyringUnavailable(f"{keyring_description(backend)}: {safe_error(e)}", backend=type(backend).__name__) from None
    return backend


def _bounded(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run a keyring call in a helper thread and give up after `timeout` seconds: a Secret Service
    waiting for an unlock prompt nobody can answer would otherwise hang the wizard forever."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed back to the caller's thread
            box["error"] = e

    t = threading.Thread(target=work, name="keybuzz-keyring", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise KeyringUnavailable(
            f"{what} did not answer within {timeout:g} s (it may be waiting for an unlock prompt that nobody can answer)"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# --- the store ---------------------------------------------------------------------------------


class CredentialStatus(NamedTuple):
    name: str
    source: Source  # keyring | env | missing
    preview: str  # masked: hc_…a1b2 or •••• (64 chars); — when missing


class CredentialStore:
    """The SecretSource of the engine (keybuzz_tui.engine.context) and the credentials manager.

    No I/O happens at construction, so the headless CLI can always build one: the keyring is
    looked up on first use, and only when the environment does not already provide the value.
    """

    def __init__(
        self,
        profile: str,
        *,
        backend: keyring.backend.KeyringBackend | None = None,
        env: Mapping[str, str] | None = None,
        allow_env: bool = True,
        timeout: float = KEYRING_TIMEOUT,
        journal: Journal | None = None,
    ) -> None:
        if not DNS_LABEL.match(profile or ""):
            raise ValueError(f"profile {profile!r} must be a DNS label")
        self.profile = profile
        self.service = service_name(profile)
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.allow_env = allow_env
        self.timeout = timeout
        self._given = backend
        self._backend: Any = None
        self._problem: KeyringUnavailable | None = None
        self._description: str | None = None
        self._lock = threading.Lock()
        self.journal = journal  # the platform's journal: every change of a credential gets a line (never its value)

    # --- the backend ---------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        """The vetted backend; raises KeyringUnavailable (and remembers why)."""
        with self._lock:
            if self._backend is not None:
                return self._backend
            if self._problem is not None:
                raise self._problem
            try:
                given = self._given
                if isinstance(given, SandboxKeyring):
                    self._backend = given
                else:  # asking D-Bus whether a Secret Service runs is I/O too: bounded as well
                    chosen = given if given is not None else _bounded(keyring.get_keyring, self.timeout, "choosing a keyring backend")
                    what = f"{type(chosen).__module__}.{type(chosen).__name__}"
                    self._backend = _bounded(lambda: _vet(chosen), self.timeout, what)
            except KeyringUnavailable as e:
                self._problem = e
                raise
            except Exception as e:  # a broken keyringrc, a backend failing to initialise
                self._problem = KeyringUnavailable(f"cannot initialise python keyring: {safe_error(e)}")
                raise self._problem from None
            return self._backend

    def backend_description(self) -> str:
        """keyring_description() of the backend in use (asked once: it may query D-Bus)."""
        try:
            backend = self.backend
        except KeyringUnavailable as e:
            return f"unavailable: {e.reason}"
        if self._description is None:
            self._description = keyring_description(backend)
        return self._description

    @property
    def available(self) -> bool:
        try:
            self.verify()
        except KeyringUnavailable:
            return False
        return True

    def verify(self) -> None:
        """Prove the keyring answers (a read of an entry that does not exist): a locked
        collection or a dead daemon shows up here, not in the middle of an apply."""
        self._call(lambda b: b.get_password(self.service, "keybuzz-tui-probe"))

    def _call(self, fn: Callable[[Any], T]) -> T:
        backend = self.backend
        if isinstance(backend, SandboxKeyring):
            return fn(backend)
        try:
            return _bounded(lambda: fn(backend), self.timeout, self.backend_description())
        except KeyringUnavailable:
            raise
        except BaseException as e:
            raise self._translate(e) from None

    def _translate(self, e: BaseException) -> BaseException:
        desc = self.backend_description()
        if isinstance(e, CredentialError):
            return e
        if isinstance(e, keyring.errors.KeyringLocked):
            return KeyringUnavailable(f"{desc} is locked and could not be unlocked ({safe_error(e)})")
        if isinstance(e, (keyring.errors.NoKeyringError, keyring.errors.InitError)):
            return KeyringUnavailable(f"{desc}: {safe_error(e)}")
        if isinstance(e, keyring.errors.PasswordSetError):
            return CredentialError(f"{desc} refused to store the secret: {safe_error(e)}")
        name = type(e).__module__.split(".")[0]
        if name in ("secretstorage", "jeepney", "dbus") or isinstance(e, (OSError, RuntimeError, keyring.errors.KeyringError)):
            return KeyringUnavailable(f"{desc}: {type(e).__name__}: {safe_error(e)}")
        return e

    # --- reading -------------------------------------------------------------------------------

    def _env_value(self, name: str) -> str | None:
        if not self.allow_env:
            return None
        value = self.env.get(env_var(name))
        if value:
            REDACTOR.add(value)
            return value
        return None

    def _keyring_value(self, name: str) -> str | None:
        value = self._call(lambda b: b.get_password(self.service, name))
        if value:
            REDACTOR.add(value)
            return value
        return None

    def lookup(self, name: str) -> tuple[str | None, Source]:
        """(value, where it came from); the environment wins when set."""
        parse_name(name)
        value = self._env_value(name)
        if value is not None:
            return value, "env"
        value = self._keyring_value(name)
        return (value, "keyring") if value is not None else (None, "missing")

    def get(self, name: str) -> str | None:
        return self.lookup(name)[0]

    def hcloud_token(self) -> str | None:
        return self.get(HCLOUD_TOKEN)

    def app_secret(self, app: str, key: str) -> str | None:
        return self.get(app_secret_name(app, key))

    def certificate_key(self) -> str | None:
        return self.get(CERTIFICATE_KEY)

    # --- writing -------------------------------------------------------------------------------

    def set(self, name: str, value: str, *, source: str = "entered") -> None:
        """Store `value` under `name`; `source` says where it came from for the journal (entered,
        stdin, prompt, wizard...): the journal gets the name, the action and the source, never the value."""
        parse_name(name)
        if not isinstance(value, str) or not value.strip():
            raise CredentialError(f"refusing to store an empty value for {name}")
        if name != CERTIFICATE_KEY:
            value = value.strip()
        REDACTOR.add(value)
        self._call(lambda b: b.set_password(self.service, name, value))
        self._journal(name, "set", source)

    def delete(self, name: str) -> bool:
        """Remove `name` from the keyring; False if it was not there. (The environment is not ours.)"""
        parse_name(name)

        def drop(b: Any) -> bool:
            try:
                b.delete_password(self.service, name)
            except keyring.errors.PasswordDeleteError:
                return False
            return True

        done = self._call(drop)
        if done:
            self._journal(name, "forget", "keyring")
        return done

    def _journal(self, name: str, action: str, source: str, **fields: Any) -> None:
        """One journal line per credential change: which key, what happened, where the value came
        from, and where it is kept. Never the value (and the journal redacts every line anyway)."""
        if self.journal is not None:
            self.journal.write("credential", name=name, action=action, source=source, store=f"keyring ({self.service})", **fields)

    # --- the answers' view -----------------------------------------------------------------------

    @staticmethod
    def names(config: Config) -> list[str]:
        """Every credential the answers need, in the order the wizard asks for them."""
        out = [HCLOUD_TOKEN]
        for a in config.apps:
            out.extend(app_secret_name(a.name, s.key) for s in a.secrets)
        if config.load_balancer.certificate.type == "uploaded":
            out.append(CERTIFICATE_KEY)
        return out

    def status(self, config: Config) -> list[CredentialStatus]:
        """One row per credential: where it comes from and a masked preview. When the keyring is
        unavailable, the rows the environment does not cover say `missing` (and
        `backend_description()` says why)."""
        rows = []
        for name in self.names(config):
            try:
                value, source = self.lookup(name)
            except KeyringUnavailable:
                value, source = None, "missing"
            rows.append(CredentialStatus(name, source, mask(name, value)))
        return rows

    def ensure_app_secrets(self, config: Config, *, rotate: Iterable[str] = ()) -> list[str]:
        """Generate every missing `generate: true` secret (and those named in `rotate`) into the
        keyring; entered secrets are never touched. Returns the names generated."""
        wanted = set(rotate)
        known: dict[str, Any] = {}
        for a in config.apps:
            for s in a.secrets:
                known[app_secret_name(a.name, s.key)] = s
        for name in sorted(wanted):
            parse_name(name)
            spec = known.get(name)
            if spec is None:
                raise CredentialError(f"{name} is not a secret of keybuzz.yaml; known: {', '.join(known) or 'none'}")
            if not spec.generate:
                raise CredentialError(f"{name} is entered, not generated (generate: false): set a new value with `keybuzz-tui credentials set {name}`")
            if self._env_value(name) is not None:
                raise CredentialError(f"{name} comes from the environment ({env_var(name)}), which wins over the keyring: rotate it there")
        generated = []
        for name, spec in known.items():
            if not spec.generate:
                continue
            if name not in wanted:
                if self._env_value(name) is not None or self._keyring_value(name) is not None:
                    continue
            value = generate_secret(spec.length)
            self._call(lambda b, n=name, v=value: b.set_password(self.service, n, v))
            generated.append(name)
            self._journal(name, "rotate" if name in wanted else "generate", "generated", length=spec.length)
        return generated

    def missing(self, config: Config) -> list[str]:
        """Entered secrets with no value anywhere (generated ones appear on the next apply)."""
        gen = {app_secret_name(a.name, s.key) for a in config.apps for s in a.secrets if s.generate}
        return [r.name for r in self.status(config) if r.source == "missing" and r.name not in gen]

    def __repr__(self) -> str:  # never a value
        return f"<CredentialStore {self.service}>"


# --- the Hetzner token check -------------------------------------------------------------------

TokenStatus = Literal["valid", "read-only", "wrong", "unreachable", "rate-limited", "missing"]


@dataclass(frozen=True)
class TokenCheck:
    status: TokenStatus
    message: str
    project_hint: str = ""
    remediation: str = ""
    endpoint: str = ""
    requests: int = 0
    rate_limit_remaining: int | None = None
    rate_limit_reset: int | None = None  # unix time

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    def to_event(self, step: str = "credentials") -> Any:
        from .events import CheckResult

        status = "ok" if self.ok else ("warn" if self.status == "rate-limited" else "fail")
        return CheckResult(
            step=step, check="hcloud-token", layer="credentials", status=status,  # type: ignore[arg-type]
            title="Hetzner API token", detail=f"{self.status}: {self.message}", remediation=self.remediation,
        )


# Why the write probe cannot change anything: it asks to change the algorithm of Load Balancer 0.
# Hetzner ids are positive integers, so no resource 0 exists in any project: a Read & Write token
# gets 404 not_found, and even if some resource matched, the body names an algorithm that does not
# exist (422 invalid_input). Either refusal means the token may write. A Read-only token is refused
# before any of that, by the authentication layer, with 401 token_readonly.
_WRITE_PROBE = ("POST", "/load_balancers/0/actions/change_algorithm", {"type": "keybuzz-tui-probe-not-an-algorithm"})
_WRITE_REFUSALS_OF_A_WRITER = {"not_found", "invalid_input", "json_error", "method_not_allowed", 404, 400, 405, 422}
_UNAVAILABLE = {"maintenance", "unavailable", "server_error", "timeout", "bad_gateway"}


def _unpack_target(
    target: Any, token: str | None, endpoint: str | None, timeout: float | None, cancel: Any
) -> tuple[Any, str | None, str | None, float, Any]:
    from .engine.context import Context, Endpoints

    client = None
    if isinstance(target, Context):
        endpoint = endpoint or target.endpoints.hcloud_endpoint
        timeout = timeout or target.request_timeout
        cancel = cancel or target.cancel
        if token is None:
            token = target.endpoints.hcloud_token_env or target.secrets.hcloud_token()
    elif isinstance(target, Endpoints):
        endpoint = endpoint or target.hcloud_endpoint
        if token is None:
            token = target.hcloud_token_env
    elif isinstance(target, str):
        endpoint = endpoint or target
    elif target is not None and hasattr(target, "_client"):  # an hcloud.Client
        client = target
    return client, token, endpoint, float(timeout or 10.0), cancel


def check_hcloud_token(
    target: Context | Endpoints | Any | None = None,
    token: str | None = None,
    *,
    endpoint: str | None = None,
    timeout: float | None = None,
    cancel: CancelToken | None = None,
) -> TokenCheck:
    """Check a Hetzner Cloud token against the API: two reads (servers, networks: the project hint)
    and one write probe that cannot change anything. `target` is a Context, an Endpoints, an
    hcloud.Client or an endpoint URL; the official API when none says otherwise. No retries here:
    a check answers at once (hcloud would otherwise back off for up to a minute on 429)."""
    client, token, endpoint, timeout_s, cancel = _unpack_target(target, token, endpoint, timeout, cancel)
    if client is None:
        if not token:
            return TokenCheck(
                "missing", "no Hetzner API token is configured",
                remediation="store one with `keybuzz-tui credentials set hcloud-token`, or set HCLOUD_TOKEN",
                endpoint=endpoint or HCLOUD_API,
            )
        REDACTOR.add(token)
        from hcloud import Client

        client = Client(token, api_endpoint=endpoint or HCLOUD_API, timeout=timeout_s, application_name="keybuzz-tui")
        own = True
    else:
        own = False
        endpoint = getattr(client._client, "_endpoint", endpoint)
    return _run_check(client, endpoint or HCLOUD_API, timeout_s, cancel, own)


def _run_check(client: Any, endpoint: str, timeout_s: float, cancel: Any, own: bool) -> TokenCheck:
    from hcloud import APIException

    base = client._client
    saved_retries = getattr(base, "_retry_max_retries", None)
    seen: dict[str, Any] = {"requests": 0}

    def hook(response: Any, *args: Any, **kwargs: Any) -> None:
        seen["requests"] += 1
        for h, k in (("RateLimit-Remaining", "remaining"), ("RateLimit-Reset", "reset")):
            v = response.headers.get(h)
            if v and v.isdigit():
                seen[k] = int(v)

    session = getattr(base, "_session", None)
    if session is not None:
        session.hooks.setdefault("response", []).append(hook)
    if saved_retries is not None:
        base._retry_max_retries = 0

    def result(status: TokenStatus, message: str, remediation: str = "", hint: str = "") -> TokenCheck:
        if status == "rate-limited" and seen.get("reset"):
            wait = max(0, int(seen["reset"] - time.time()))
            message += f"; the budget refills gradually and is full again in about {wait // 60} min {wait % 60} s"
        return TokenCheck(
            status, REDACTOR.redact(message), REDACTOR.redact(hint), REDACTOR.redact(remediation), endpoint,
            seen["requests"], seen.get("remaining"), seen.get("reset"),
        )

    try:
        hint = ""
        try:
            if cancel is not None:
                cancel.check()
            servers = client.servers.get_list(page=1, per_page=50)
            if cancel is not None:
                cancel.check()
            networks = client.networks.get_list(page=1, per_page=50)
            hint = _project_hint(servers, networks)
            if cancel is not None:
                cancel.check()
            method, path, body = _WRITE_PROBE
            try:
                client.request(method, path, json=body, timeout=timeout_s)
            except APIException as e:
                if e.code == "token_readonly":
                    return result(
                        "read-only",
                        "the token can read this project but not change it (401 token_readonly): it was created with Read permission",
                        "create a token with Read & Write permission (Hetzner Console > the project > Security > API tokens), "
                        "then `keybuzz-tui credentials set hcloud-token`",
                        hint,
                    )
                if e.code not in _WRITE_REFUSALS_OF_A_WRITER:
                    raise
        except APIException as e:
            return _classify(e, endpoint, result, hint)
        msg = "the token can read and write this project"
        if hint.startswith("no servers"):
            msg += "; but the project has no servers: is it the right project?"
        return result("valid", msg, hint=hint)
    except Exception as e:  # transport: requests' ConnectionError, Timeout, SSLError...
        from .cancel import Cancelled

        if isinstance(e, Cancelled):
            raise
        return _transport(e, endpoint, timeout_s, result)
    finally:
        if session is not None:
            try:
                session.hooks["response"].remove(hook)
            except ValueError:
                pass
        if saved_retries is not None:
            base._retry_max_retries = saved_retries
        if own and session is not None:
            session.close()


def _project_hint(servers: Any, networks: Any) -> str:
    names = sorted(s.name for s in servers.servers)
    total = getattr(getattr(servers.meta, "pagination", None), "total_entries", None) if servers.meta else None
    total = total or len(names)
    nets = [n.name for n in networks.networks]
    if not total:
        head = "no servers"
    else:
        shown = ", ".join(names[:4]) + (", …" if total > 4 else "")
        head = f"{total} server{'s' if total != 1 else ''} ({shown})"
    return head + (f"; network{'s' if len(nets) != 1 else ''} {', '.join(nets)}" if nets else "; no private network")


def _classify(e: Any, endpoint: str, result: Callable[..., TokenCheck], hint: str) -> TokenCheck:
    code = e.code
    text = safe_error(e)
    if code == "unauthorized":
        return result(
            "wrong", f"Hetzner refused the token (401 unauthorized): it is mistyped, revoked or expired ({text})",
            "create a token in the Hetzner Console (the project > Security > API tokens, Read & Write) "
            "and store it with `keybuzz-tui credentials set hcloud-token`",
        )
    if code == "token_readonly":  # on a read: cannot happen, but say what it means
        return result("read-only", f"the token is read-only ({text})", "use a Read & Write token", hint)
    if code == "forbidden":
        return result("wrong", f"the token is not allowed to use this project (403 forbidden: {text})",
                      "check the project in the Hetzner Console (is it locked?) and the token's permissions")
    if code in ("rate_limit_exceeded", 429):
        return result(
            "rate-limited", f"the project's API request budget is spent (429 rate_limit_exceeded: {text})",
            "wait for it to refill (the RateLimit-Reset time), and stop other tools polling this project", hint,
        )
    if code in _UNAVAILABLE or (isinstance(code, int) and code >= 500):
        return result("unreachable", f"the Hetzner API at {endpoint} answered but is unavailable ({text})",
                      "retry later; see https://status.hetzner.com")
    return result("unreachable", f"{endpoint} does not answer like the Hetzner Cloud API ({text})",
                  "check HCLOUD_ENDPOINT / the endpoint (it ends with /v1)")


def _transport(e: Exception, endpoint: str, timeout_s: float, result: Callable[..., TokenCheck]) -> TokenCheck:
    import requests

    if isinstance(e, requests.exceptions.Timeout):
        msg = f"no answer from {endpoint} within {timeout_s:g} s"
    elif isinstance(e, requests.exceptions.SSLError):
        msg = f"TLS error talking to {endpoint}: {type(e).__name__}"
    elif isinstance(e, requests.exceptions.ConnectionError):
        reason = "connection refused" if "refused" in str(e).lower() else (
            "name does not resolve" if "resolve" in str(e).lower() or "name or service" in str(e).lower() else "cannot connect")
        msg = f"cannot reach {endpoint}: {reason}"
    else:
        msg = f"cannot talk to {endpoint}: {type(e).__name__}: {safe_error(e)}"
    return result("unreachable", msg, "check the network, a proxy or firewall, and HCLOUD_ENDPOINT if you set one")
