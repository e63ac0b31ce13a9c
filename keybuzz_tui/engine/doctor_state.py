"""What one doctor run knows: the validation's shared state (checks_state.ValidationState: the
Kubernetes snapshot, the Hetzner snapshot, DNS answers and HTTP probes, gathered once and shared)
plus the doctor's own facts, each gathered once too: the port scan, the Hetzner token check, the
Load Balancer's status, the permission review, the overlay probe, the recovery engine's drift (per
layer) and the platform lock.

Why a subclass and not a second state: the doctor's checks reuse the validation's checks and the
trace as they are (they take a ValidationState), so the doctor and `validate` describe the same
world the same way, and a fact both need (the worker list, the LB) is read once per run.

Engine helpers that emit their own events (ports.scan, firewall.check, dns.check) are called
through `quiet(ctx)`: the doctor reports their findings as its own named checks, so their step
events would only be noise on the Doctor screen. `doctor_ctx(ctx)` relabels the CheckResult and
HopResult events the shared scheduler and the trace emit (step "validate") as step "doctor".
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ..events import CheckResult, Event, HopResult, Recorder
from .checks_state import ValidationState
from .context import Context

STEP = "doctor"
DEFAULT_EXPECTED_WORKERS = 5  # the runbook's cluster: 5 workers (10.0.0.110-114)


def quiet(ctx: Context, recorder: Recorder | None = None) -> Context:
    """ctx with its events kept out of the operator's stream (recorded when `recorder` is given).
    Shares the clients, the cancel token and the journal; build the clients first (prime)."""
    q = copy.copy(ctx)
    q._sink = recorder if recorder is not None else (lambda e: None)  # a sibling view of the same context
    return q


def doctor_ctx(ctx: Context) -> Context:
    """ctx whose events from the shared validation machinery (step "validate") carry step "doctor"."""
    d = copy.copy(ctx)

    def sink(e: Event) -> None:
        if e.step == "validate" or (isinstance(e, (CheckResult, HopResult)) and not e.step):
            e = dataclasses.replace(e, step=STEP)
        ctx.emit(e)

    d._sink = sink
    return d


def prime(ctx: Context) -> None:
    """Build the Kubernetes and Hetzner clients once, before views of the context are copied, so
    every view shares them (and the API request counter). Failures are left to the checks."""
    try:
        ctx.kube()
    except Exception:  # noqa: BLE001 - k8s.api says why
        pass
    try:
        ctx.hcloud()
    except Exception:  # noqa: BLE001 - hetzner.token says why
        pass


class DoctorState(ValidationState):
    """ValidationState plus the doctor's facts. `probes`: whether the overlay probe may create
    pods; `expected_workers`: how many workers the platform should have."""

    def __init__(
        self,
        ctx: Context,
        *,
        http_timeout: float | None = None,
        probes: bool = True,
        expected_workers: int = DEFAULT_EXPECTED_WORKERS,
        probe: Any = None,
        counter: Any = None,
        scope: Any = None,
    ) -> None:
        super().__init__(ctx, http_timeout=http_timeout, counter=counter, scope=scope)
        self.probes_enabled = probes
        self.expected_workers = expected_workers
        self.probe = probe  # doctor_overlay.OverlayProbe (None when probes are off)
        self.traces: dict[str, Any] = {}  # host -> worker -> hops, filled by platform.request-path

    # --- facts gathered once --------------------------------------------------------------------

    def port_inventory(self) -> Any:
        """ports.scan (no probe pods): who holds which port, the NodePort range and its source."""
        from . import ports

        return self.once(("doctor", "ports"), lambda: ports.scan(quiet(self.ctx)))

    def token_check(self) -> Any:
        """credentials.check_hcloud_token's verdict (a keyring that cannot be read is "missing")."""
        from ..credentials import TokenCheck, check_hcloud_token
        from ..redact import safe_error

        def check() -> Any:
            ctx = self.ctx
            try:
                token = ctx.endpoints.hcloud_token_env or ctx.secrets.hcloud_token()
            except Exception as e:  # noqa: BLE001 - CredentialError (no usable keyring) and the like
                first, _, rest = safe_error(e).partition("\n")
                return TokenCheck("missing", f"the Hetzner API token could not be read: {first}",
                                  remediation=rest.strip() or "fix the keyring (see `keybuzz-tui credentials status`) or set HCLOUD_TOKEN for this run")
            return check_hcloud_token(ctx, token, cancel=ctx.cancel)

        return self.once(("doctor", "token"), check)

    def lb_status(self) -> Any:
        """lb.status (raises hcloudio.CloudError: no token, API errors)."""
        from . import lb

        return self.once(("doctor", "lb-status"), lambda: lb.status(quiet(self.ctx)))

    def lb_addresses(self) -> list[str]:
        """The LB's public IPs ([] when there is no LB or it cannot be read)."""
        try:
            return list(self.lb_status().ips)
        except Exception:  # noqa: BLE001 - hetzner.lb reports the error
            return []

    def overlay(self) -> Any:
        """The overlay probe's result (doctor_overlay.OverlayResult), run once for the three
        overlay checks."""
        if self.probe is None:
            raise RuntimeError("the overlay probe is off")
        return self.once(("doctor", "overlay"), lambda: self.probe.run(self))

    def drift(self, layer: str) -> Any:
        """recovery.drift for one layer ("kubernetes", or "hetzner": the LB, DNS and the firewall),
        computed once (read-only: server-side dry runs and GETs, the keyring read, nothing written).
        A layer that cannot be compared is a LayerProblem in the report, not an exception."""
        from .recovery import drift

        return self.once(("doctor", "drift", layer), lambda: drift(quiet(self.ctx), with_interrupted=False, layers={layer}))

    def lock(self) -> tuple[Any, str]:
        """(lock.LockInfo or None, the namespace of the platform lock's Lease), read once.
        Raises kubeio.KubeError / Unreachable when the Lease cannot be read."""
        from .lock import PlatformLock, lock_namespace

        def read() -> tuple[Any, str]:
            lk = PlatformLock(self.ctx, namespace=lock_namespace(self.ctx))
            info = lk.current()
            return info, str(lk.namespace or "")

        return self.once(("doctor", "lock"), read)

    def kube_dns(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(Service, Endpoints) of kube-system/kube-dns (None when absent)."""
        from . import kubeio
        from .checks_state import kube_get_or_none

        def load() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
            svc = kube_get_or_none(self.ctx, kubeio.resource_path("v1", "services", "kube-system", "kube-dns"))
            eps = kube_get_or_none(self.ctx, kubeio.resource_path("v1", "endpoints", "kube-system", "kube-dns"))
            return svc, eps

        return self.once(("doctor", "kube-dns"), load)
