"""What every engine step receives: the answers, where the platform is, the credentials, and the
channels back to the operator (events, cancellation, journal).

Clients are built lazily: importing kubernetes and hcloud costs a noticeable fraction of a second,
and the TUI must paint its first screen before that. Every client carries a timeout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..cancel import Cancelled, CancelToken
from ..config import Config
from ..events import Event, EventSink, null_sink
from ..journal import Journal
from ..redact import REDACTOR

FIELD_MANAGER = "keybuzz-tui"
PLATFORM_LABELS = {"app.kubernetes.io/part-of": "keybuzz", "app.kubernetes.io/managed-by": "keybuzz-tui"}


class SecretSource(Protocol):
    """Where secrets come from: the OS keyring, explicit environment variables, or the demo's
    in-sandbox keyring. Implemented in keybuzz_tui.credentials."""

    def hcloud_token(self) -> str | None: ...

    def app_secret(self, app: str, key: str) -> str | None: ...

    def get(self, name: str) -> str | None: ...


class NoSecrets:
    def hcloud_token(self) -> str | None:
        return None

    def app_secret(self, app: str, key: str) -> str | None:
        return None

    def get(self, name: str) -> str | None:
        return None


@dataclass
class Endpoints:
    """How to reach the platform. Production: the kubeconfig context and api.hetzner.cloud.
    `--sandbox DIR`: everything read from the sandbox's state directory."""

    kubeconfig: str | None = None  # a file, or several separated by os.pathsep (KUBECONFIG), merged as kubectl does
    context: str | None = None
    hcloud_endpoint: str | None = None  # None: the official API
    hcloud_token_env: str | None = None  # a token given explicitly (HCLOUD_TOKEN, --sandbox's hcloud.env)
    dns_server: tuple[str, int] | None = None  # authoritative server to ask; None: the zone's NS
    resolver: tuple[str, int] | None = None  # "the system resolver" to compare with; None: the OS's
    ca_file: str | None = None  # an extra CA trusted for https checks (the sandbox CA)
    sandbox_dir: Path | None = None
    lb_port_map: dict[str, dict[int, int]] = field(default_factory=dict)  # sandbox: LB ip -> {80: 20080}

    @classmethod
    def from_sandbox(cls, state_dir: str | os.PathLike[str]) -> Endpoints:
        d = Path(state_dir)
        info = json.loads((d / "sandbox.json").read_text())
        env: dict[str, str] = {}
        for line in (d / "hcloud.env").read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                env[k.strip()] = v.strip()
        dns = info.get("dns") or {}
        server = (dns["server"], int(dns["port"])) if dns.get("server") else None
        lb_map: dict[str, dict[int, int]] = {}
        for lb in (info.get("load_balancers") or {}).get("load_balancers", []):
            ports = {int(k): int(v) for k, v in (lb.get("ports") or {}).items()}
            for ip in [lb.get("public_ipv4"), *(lb.get("private_ips") or [])]:
                if ip:
                    lb_map[ip] = ports
        return cls(
            kubeconfig=str(d / "kubeconfig"),
            context=(info.get("kubernetes") or {}).get("context"),
            hcloud_endpoint=env.get("HCLOUD_ENDPOINT"),
            hcloud_token_env=env.get("HCLOUD_TOKEN"),
            dns_server=server,
            resolver=server,
            ca_file=str(d / "ca.pem"),
            sandbox_dir=d,
            lb_port_map=lb_map,
        )

    def refresh_lb_ports(self) -> None:
        """The sandbox rewrites sandbox.json when LBs come and go (port offsets when not root)."""
        if self.sandbox_dir is not None:
            self.lb_port_map = Endpoints.from_sandbox(self.sandbox_dir).lb_port_map


class Context:
    def __init__(
        self,
        config: Config,
        endpoints: Endpoints | None = None,
        secrets: SecretSource | None = None,
        *,
        sink: EventSink = null_sink,
        cancel: CancelToken | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.config = config
        self.endpoints = endpoints or Endpoints(kubeconfig=config.cluster.kubeconfig, context=config.cluster.context or None)
        self.secrets: SecretSource = secrets or NoSecrets()
        self._sink = sink
        self.cancel = cancel or CancelToken()
        self.journal = journal or Journal(None)
        self._kube: Any = None
        self._hcloud: Any = None

    # --- events ------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Every event leaves the engine redacted, whatever the sink does with it."""
        if REDACTOR.known(json.dumps(event.to_dict(), default=str)):
            event = type(event)(**REDACTOR.redact_obj({k: v for k, v in event.__dict__.items()}))
        self._sink(event)

    # --- clients -----------------------------------------------------------------------------

    @property
    def request_timeout(self) -> float:
        return self.config.cluster.request_timeout

    def kube(self) -> Any:
        """An official kubernetes ApiClient for the configured context (built once)."""
        if self._kube is None:
            self._kube = kube_client(self.endpoints.kubeconfig or self.config.cluster.kubeconfig, self.endpoints.context or None)
        return self._kube

    def hcloud(self, token: str | None = None) -> Any:
        """The official hcloud client, or None when no token is known."""
        if token is None and self._hcloud is not None:
            return self._hcloud
        tok = token or self.endpoints.hcloud_token_env or self.secrets.hcloud_token()
        if not tok:
            return None
        REDACTOR.add(tok)
        from hcloud import Client

        kw: dict[str, Any] = {"timeout": self.request_timeout, "application_name": "keybuzz-tui"}
        if self.endpoints.hcloud_endpoint:
            kw["api_endpoint"] = self.endpoints.hcloud_endpoint
        client = Client(tok, poll_interval=0.5, **kw)
        _cancellable_backoff(client, self.cancel)
        if token is None:
            self._hcloud = client
        return client

    def close(self) -> None:
        if self._kube is not None:
            try:
                self._kube.close()
            except Exception:
                pass
            self._kube = None


def _cancellable_backoff(client: Any, cancel: CancelToken) -> None:
    """hcloud retries a 429, a 502/503/504 or a timeout up to five times, sleeping 1, 2, 4, 8 and
    16 s (jittered) with time.sleep, which no Ctrl-C at a safe point can shorten. Its backoff
    function is wrapped so that the wait happens on the cancel token: a cancel ends it at once
    (Cancelled, like any other safe point) and hcloud's own sleep is then 0."""
    inner = getattr(getattr(client, "_client", None), "_retry_interval_func", None)
    if not callable(inner):  # another hcloud release: keep its own behaviour
        return

    def interval(retries: int) -> float:
        if cancel.wait(float(inner(retries))):
            raise Cancelled(cancel.reason)
        return 0.0

    client._client._retry_interval_func = interval


def kubeconfig_path(config: Config) -> str:
    """Which kubeconfig file(s) to use: KUBECONFIG when it is set (its whole list, merged by
    merged_kubeconfig), else keybuzz.yaml's cluster.kubeconfig (default ~/.kube/config), as
    kubectl prefers KUBECONFIG to its default file. The CLI and the wizard both ask here."""
    return os.environ.get("KUBECONFIG", "").strip(os.pathsep) or config.cluster.kubeconfig


def merged_kubeconfig(kubeconfig: str) -> Any:
    """One kubeconfig file, or several separated by os.pathsep (KUBECONFIG's list), merged the way
    kubectl merges them: files that do not exist are skipped, the first file that defines a
    cluster, context or user by a name wins for that name, and current-context comes from the
    first file that sets one. Returns the kubernetes library's KubeConfigMerger (its `config` is
    what KubeConfigLoader takes; relative certificate paths stay relative to their own file).

    The library's merger already keeps the first definition of each name, but lets every later
    file overwrite current-context; kubectl keeps the first one, and so do we."""
    from kubernetes.config.kube_config import ConfigException, KubeConfigMerger

    paths = [os.path.expanduser(p) for p in str(kubeconfig or "").split(os.pathsep) if p.strip()]
    merger = KubeConfigMerger(os.pathsep.join(paths))
    if merger.config is None:
        raise ConfigException(f"no kubeconfig file found (looked for {', '.join(paths) or 'nothing: the path is empty'})")
    current = next((c.get("current-context") for c in (merger.config_files.get(p) or {} for p in merger.paths)
                    if c.get("current-context")), None)
    if current:
        merger.config.value["current-context"] = current
    return merger


def kube_client(kubeconfig: str, context: str | None = None) -> Any:
    """An official kubernetes ApiClient for `context` (default: the merged current-context) of
    the kubeconfig file(s) (see merged_kubeconfig)."""
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config.kube_config import KubeConfigLoader

    merger = merged_kubeconfig(kubeconfig)
    configuration = type.__call__(Configuration)  # not the process-wide default
    KubeConfigLoader(config_dict=merger.config, config_base_path=None, active_context=context).load_and_set(configuration)
    return ApiClient(configuration=configuration)
