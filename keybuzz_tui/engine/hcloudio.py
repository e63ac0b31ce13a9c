"""The Hetzner Cloud I/O the Hetzner steps share (lb.py, dns.py, firewall.py), next to kubeio.py.

The hcloud client with a rate-limit observer (hcloud itself ignores the RateLimit-* headers, but a
429 must say when the budget refills), every failure translated into a CloudError that says what
failed, why and what to do, one call wrapper (cancel-aware; `locked` waits for the running action
and retries, which hcloud does not), the action waiter, and the journal line of an applied change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ..cancel import Cancelled
from ..events import ActionProgress, Info, ObjectApplied, StepFinished
from ..redact import REDACTOR, safe_error
from .context import Context
from .plan import Change

DEFAULT_ACTION_TIMEOUT = 300.0  # seconds; managed certificates can take minutes to issue
LOCKED_RETRIES = 3
# The step a lock wait and wait_action report under when none is given: these helpers began in the
# Load Balancer step, and the events of a lock wait still carry its name whichever step waits.
DEFAULT_STEP = "load_balancer"

# --- errors the operator can act on ---------------------------------------------------------


class CloudError(Exception):
    """A Hetzner call failed: what failed and why (message), and what to do (remediation).

    Messages never carry the token (the client's token is registered with the redactor)."""

    def __init__(self, message: str, remediation: str = "", code: str = "") -> None:
        self.message = REDACTOR.redact(message)
        self.remediation = REDACTOR.redact(remediation)
        self.code = code
        text = self.message + (f"\n  what to do: {self.remediation}" if self.remediation else "")
        super().__init__(text)


_REMEDIATION = {
    "unauthorized": (
        "the Hetzner API rejected the token (401 unauthorized)",
        "the token is wrong, revoked or from another project: create a Read & Write API token in the Hetzner "
        "Console (your project > Security > API tokens) and store it again (keybuzz-tui credentials, or HCLOUD_TOKEN)",
    ),
    "token_readonly": (
        "the Hetzner API token is a read-only token (401 token_readonly): it can read the project but not change it",
        "nothing was changed; create an API token with Read & Write permission in the Hetzner Console "
        "(your project > Security > API tokens), store it (keybuzz-tui credentials, or HCLOUD_TOKEN), and apply again",
    ),
    "forbidden": ("the token is not allowed to do this (403 forbidden)", "use a Read & Write token of the project that owns these resources"),
    "resource_limit_exceeded": (
        "a limit of the project or of the Load Balancer type is reached (403 resource_limit_exceeded)",
        "ask Hetzner to raise the project limit (Console > Limits), or choose a bigger load_balancer.type (lb21, lb31)",
    ),
    "locked": (
        "the resource is locked: another action on it is still running (423 locked)",
        "wait until the running action finishes (keybuzz-tui already waited and retried), then apply again",
    ),
    "protected": ("the resource is protected against deletion (423 protected)", "remove the delete protection in the Hetzner Console if the change is really wanted"),
    "uniqueness_error": (
        "the name is already used by another resource of the project (409 uniqueness_error)",
        "another resource not managed by keybuzz-tui has this name: rename or delete it, or choose another name in keybuzz.yaml",
    ),
    "source_port_already_used": (
        "a listen port is taken twice (source_port_already_used): an https service with redirect_http also takes port 80",
        "keep redirect_http false on the 443 service and let the ingress redirect to https (the runbook's setup), "
        "or drop the port-80 service; then plan and apply again",
    ),
    "load_balancer_not_attached_to_network": (
        "the Load Balancer is not attached to the private network, which use_private_ip targets need",
        "check load_balancer.network in keybuzz.yaml; apply attaches the LB to the network before adding targets, so run plan and apply again",
    ),
    "load_balancer_already_attached": ("the Load Balancer is already attached to a network", "run plan again: it shows the network change to make"),
    "target_already_defined": ("this target is already on the Load Balancer", "run plan again: someone changed the targets meanwhile"),
    "resolve_cloud_private_targets_error": (
        "a target server is not attached to the Load Balancer's network",
        "attach the worker servers to load_balancer.network, or set use_private_ip: false (then open NodePort 31695 in the firewall)",
    ),
    "resolve_cloud_public_targets_error": ("a target server has no public IPv4", "use use_private_ip: true (targets over the private network)"),
    "load_balancer_public_interface_disabled": ("the Load Balancer's public interface is disabled", "enable it in the Hetzner Console, or use private IP targets"),
    "invalid_load_balancer_type": ("the Load Balancer type is too small for its services, targets or certificates", "choose a bigger load_balancer.type"),
    "no_subnet_available": ("the network has no subnet for the Load Balancer in its network zone", "add a subnet in the LB's network zone to the network"),
    "ip_not_available": ("the requested private IP is not available in the network", "let Hetzner pick the LB's private IP"),
    "incorrect_zone_mode": ("the DNS zone is a secondary zone: its records cannot be changed through the API", "use dns.mode: manual and change the records at the primary"),
    "resource_in_use": ("the resource is still in use", "detach it first (for a certificate: from every Load Balancer service)"),
    "not_found": ("a resource was not found (404 not_found)", "run plan again: the project changed meanwhile"),
    "maintenance": ("the Hetzner API is in maintenance (403 maintenance)", "wait a few minutes and apply again"),
    "unavailable": ("the Hetzner API is temporarily unavailable (503)", "wait a minute and apply again; a re-run resumes where it stopped"),
    "server_error": ("the Hetzner API had an internal error (500)", "apply again; if it persists check https://status.hetzner.com"),
    "timeout": ("the Hetzner API timed out (504)", "apply again; a re-run resumes where it stopped"),
    "bad_gateway": ("the Hetzner API answered 502 bad gateway", "apply again in a minute"),
    "conflict": ("the resource changed during the request (409 conflict)", "apply again"),
}


def rate_limit_state(client: Any) -> dict[str, str]:
    """The last RateLimit-* headers the API sent (hcloud itself ignores them)."""
    try:
        return dict(getattr(client._client._session, "_keybuzz_rate", {}) or {})
    except AttributeError:
        return {}


def _watch_rate_limit(client: Any) -> None:
    """Keep the RateLimit-* headers of every reply, so a 429 can say when the budget refills."""
    try:
        session = client._client._session
    except AttributeError:
        return
    if getattr(session, "_keybuzz_rate", None) is not None:
        return
    state: dict[str, str] = {}

    def hook(response: Any, *args: Any, **kwargs: Any) -> None:
        headers = getattr(response, "headers", {}) or {}
        for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
            if name in headers:
                state[name] = str(headers[name])

    session.hooks.setdefault("response", []).append(hook)
    session._keybuzz_rate = state


def rate_limit_message(client: Any) -> str:
    """`rate limited: RateLimit-Reset at 2026-05-01T10:00:00Z (in 87 s); 0 of 3600 requests left`."""
    rl = rate_limit_state(client)
    reset = rl.get("RateLimit-Reset", "")
    text = "rate limited"
    if reset.isdigit():
        at = datetime.fromtimestamp(int(reset), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text += f": RateLimit-Reset at {at} (in {max(0, int(reset) - int(time.time()))} s)"
    else:
        text += ": RateLimit-Reset unknown (the API sent no RateLimit headers)"
    if rl.get("RateLimit-Limit"):
        text += f"; {rl.get('RateLimit-Remaining', '?')} of {rl['RateLimit-Limit']} requests per hour left"
    return text


def hcloud_client(ctx: Context) -> Any:
    """ctx.hcloud() with the rate-limit observer, or a clear error when no token is known."""
    client = ctx.hcloud()
    if client is None:
        raise CloudError(
            "no Hetzner Cloud API token is configured",
            "store one in the keyring (keybuzz-tui credentials) or set HCLOUD_TOKEN for automation",
            "no_token",
        )
    _watch_rate_limit(client)
    return client


def explain(exc: BaseException, doing: str, client: Any = None) -> CloudError:
    """Any failure of a Hetzner call as a CloudError saying what failed, why, and what to do."""
    if isinstance(exc, CloudError):
        return exc
    from hcloud import APIException

    if isinstance(exc, APIException):
        code = str(exc.code)
        message = REDACTOR.redact(str(exc.message))
        if code == "rate_limit_exceeded":
            return CloudError(
                f"{doing}: {rate_limit_message(client)} (429 rate_limit_exceeded; hcloud already retried with backoff)",
                "wait until the reset time and run apply again: it resumes where it stopped; "
                "other tools polling the same project share the budget (3600 requests per hour by default)",
                code,
            )
        what, todo = _REMEDIATION.get(code, (f"the Hetzner API answered {code}", "read the message, fix the cause, and apply again"))
        fields = ""
        if code == "invalid_input" and isinstance(exc.details, dict):
            parts = [f"{f.get('name')}: {'; '.join(f.get('messages') or [])}" for f in exc.details.get("fields") or [] if isinstance(f, dict)]
            fields = f" [{', '.join(parts)}]" if parts else ""
            what, todo = "the request was refused as invalid input (422)", "check the named fields in keybuzz.yaml"
        return CloudError(f"{doing}: {what}: {message}{fields}", todo, code)
    import requests

    endpoint = ""
    if client is not None:
        endpoint = getattr(getattr(client, "_client", None), "_endpoint", "") or ""
    if isinstance(exc, requests.exceptions.Timeout):
        return CloudError(f"{doing}: no answer from the Hetzner API {endpoint} in time", "check the network, then apply again", "timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return CloudError(
            f"{doing}: cannot reach the Hetzner API {endpoint}: {safe_error(exc)}",
            "check the network connection, proxy settings and HCLOUD_ENDPOINT, then apply again",
            "unreachable",
        )
    return CloudError(f"{doing}: {type(exc).__name__}: {safe_error(exc)}", "apply again; report a bug if it persists", "error")


def call(ctx: Context, client: Any, doing: str, fn: Callable[[], Any], *, lb_id: int | None = None) -> Any:
    """One API call: cancel-aware, errors translated; `locked` waits for the running action and
    retries (hcloud does not retry 423 itself)."""
    from hcloud import APIException

    for attempt in range(LOCKED_RETRIES + 1):
        ctx.cancel.check()
        try:
            return fn()
        except APIException as exc:
            if exc.code == "locked" and attempt < LOCKED_RETRIES:
                _wait_unlocked(ctx, client, lb_id, doing)
                continue
            raise explain(exc, doing, client) from None
        except Cancelled:
            raise
        except Exception as exc:  # requests errors, unexpected replies
            raise explain(exc, doing, client) from None
    raise CloudError(f"{doing}: still locked after {LOCKED_RETRIES} retries", _REMEDIATION["locked"][1], "locked")


def poll_interval(client: Any, n: int) -> float:
    """Seconds to wait before poll `n`, from the client's own poll_interval function (1 s when unknown)."""
    try:
        return float(client._client._poll_interval_func(n))
    except (AttributeError, TypeError, ValueError):
        return 1.0


def _wait_unlocked(ctx: Context, client: Any, lb_id: int | None, doing: str) -> None:
    running: list[Any] = []
    if lb_id is not None:
        from hcloud.load_balancers import LoadBalancer

        try:
            running = list(client.load_balancers.get_actions(LoadBalancer(id=lb_id), status=["running"]))
        except Exception:
            running = []
    ctx.emit(Info(step=DEFAULT_STEP, message=f"{doing}: the resource is locked by a running action; waiting for it, then retrying"))
    for action in running:
        try:
            wait_action(ctx, client, action, what=f"running {action.command}", step=DEFAULT_STEP, timeout=DEFAULT_ACTION_TIMEOUT, ignore_error=True)
        except CloudError:
            pass
    if not running and ctx.cancel.wait(poll_interval(client, 1)):
        raise Cancelled(ctx.cancel.reason)


def wait_action(
    ctx: Context, client: Any, action: Any, *, what: str, step: str = DEFAULT_STEP, timeout: float = DEFAULT_ACTION_TIMEOUT, ignore_error: bool = False
) -> None:
    """Poll GET /actions/{id} at the client's poll interval, emitting ActionProgress, until the
    action succeeds (return), fails (CloudError with the action's error), or `timeout` passes."""
    action_id = action if isinstance(action, int) else action.id
    command = getattr(action, "command", "") or "action"
    deadline = time.monotonic() + timeout
    last: tuple[int, str] | None = None
    n = 0
    while True:
        current = call(ctx, client, f"{what}: reading action {action_id}", lambda: client.actions.get_by_id(action_id))
        command = current.command or command
        progress = int(current.progress or 0)
        if (progress, current.status) != last:
            err = ""
            if current.status == "error" and current.error:
                err = f"{current.error.get('message', '')} ({current.error.get('code', '')})"
            ctx.emit(ActionProgress(step=step, command=command, resource=what, progress=progress if current.status == "running" else 100, status=current.status, error=err))
            last = (progress, current.status)
        if current.status == "success":
            return
        if current.status == "error":
            if ignore_error:
                return
            error = current.error or {}
            raise CloudError(
                f"{what}: the Hetzner action {command} failed: {error.get('message', 'no message')} ({error.get('code', 'error')})",
                "fix the cause named above and apply again; the next plan shows what is still missing",
                str(error.get("code", "action_failed")),
            )
        if time.monotonic() >= deadline:
            raise CloudError(
                f"{what}: the Hetzner action {command} ({action_id}) is still running after {timeout:.0f} s",
                "it may still finish: run plan again in a few minutes; nothing is rolled back",
                "action_timeout",
            )
        n += 1
        if ctx.cancel.wait(min(poll_interval(client, n), max(0.0, deadline - time.monotonic()))):
            raise Cancelled(ctx.cancel.reason)


def journal_change(ctx: Context, change: Change, **extra: Any) -> None:
    """One journal line per applied change (no secret ever reaches `desired`)."""
    ctx.journal.write(
        "change",
        layer=change.layer,
        action=change.action,
        kind=change.kind,
        name=change.name,
        diff=change.lines(),
        note=change.note,
        **extra,
    )


def applied(ctx: Context, step: str, change: Change, **extra: Any) -> None:
    """An applied change: its journal line, then the ObjectApplied event."""
    journal_change(ctx, change, **extra)
    ctx.emit(ObjectApplied(step=step, action=change.action, kind=change.kind, name=change.name, detail=change.note))


@contextmanager
def finishing_on_failure(ctx: Context, step: str) -> Iterator[None]:
    """Around a step's apply: a CloudError or a cancel finishes the step as failed (with the error's
    message, or "cancelled") before it propagates, so the progress view never hangs on a running step."""
    try:
        yield
    except CloudError as e:
        ctx.emit(StepFinished(step=step, status="fail", summary=e.message))
        raise
    except Cancelled:
        ctx.emit(StepFinished(step=step, status="fail", summary="cancelled"))
        raise
