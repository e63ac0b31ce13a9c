"""Health checks: one task per (load balancer, service listen port, target), as a Hetzner LB runs them.

Status transitions (the API spec's text for `retries`: "Unsuccessful retries needed until a
target is considered unhealthy; an unhealthy target needs the same number of successful retries
to become healthy again"):

- every target starts `unknown`;
- unknown -> healthy after the first successful check (a new target takes traffic quickly; this
  is also why production sees brief 5xx when a node joins before its backend is really ready,
  CCM #109);
- unknown/healthy -> unhealthy after `retries` consecutive failed checks;
- unhealthy -> healthy after `retries` consecutive successful checks.

The first check runs as soon as the target appears, then one every `interval` seconds (measured
start to start; a check that runs longer than the interval delays the next one). Each check is
bounded by `timeout`. Both go through the sandbox clock (divided by its speed).

What a check does:
- tcp: a TCP connect to address:port;
- http: `GET <path>` with `Host: <domain>`, or `Host: <ip>:<port>` when domain is null (the spec
  says no Host header is sent then; a bare HTTP/1.1 request without Host is invalid, and for
  ingress-nginx's default server `_` both mean "no vhost matched", which is what matters);
  passes when the status matches one of `status_codes` (digits, `?` = any digit) and, when
  `response` is set, the body contains it (first 64 KiB);
- http with `tls` (or protocol `https`): the same over TLS, without certificate verification
  (a Hetzner LB does not verify its targets' certificates), SNI = domain when set.

Results are reported with `HetznerState.set_target_health` (detail and http_status_code for
unhealthy targets), so `GET /load_balancers/{id}` shows them; the data plane forwards only to
targets that are `healthy` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..clock import Clock
from ..hetzner.views import HealthCheckView
from .loopback import refusal

MIN_REAL_TIMEOUT = 1.5  # seconds of wall-clock time

log = logging.getLogger("keybuzz.sandbox.lb")

HealthKey = tuple[str, object]
CheckKey = tuple[int, int, HealthKey]  # (lb id, listen port, health key)
BODY_LIMIT = 64 * 1024
USER_AGENT = "keybuzz-sandbox-lb-healthcheck"


def status_matches(code: int, patterns: tuple[str, ...] | list[str]) -> bool:
    """Hetzner status code patterns: three characters, digits or `?` (any digit)."""
    text = f"{code:03d}"
    for pattern in patterns or ("2??", "3??"):
        if len(pattern) == 3 and all(p == "?" or p == c for p, c in zip(pattern, text)):
            return True
    return False


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str | None = None
    http_status_code: int | None = None


@dataclass(frozen=True)
class CheckSpec:
    """Everything a checker needs; a change in any of it restarts the checker (status kept)."""

    check: HealthCheckView
    address: str | None
    unreachable: str | None  # why there is no address to dial (address None)


@dataclass
class HealthRecord:
    status: str = "unknown"
    fails: int = 0
    successes: int = 0
    detail: str | None = None
    http_status_code: int | None = None

    def observe(self, result: ProbeResult, retries: int) -> None:
        retries = max(1, retries)
        if result.ok:
            self.fails = 0
            self.successes += 1
            if self.status == "unknown" or (self.status == "unhealthy" and self.successes >= retries):
                self.status = "healthy"
            if self.status == "healthy":
                self.detail = self.http_status_code = None
        else:
            self.successes = 0
            self.fails += 1
            self.detail, self.http_status_code = result.detail, result.http_status_code
            if self.status != "unhealthy" and self.fails >= retries:
                self.status = "unhealthy"

    def reset_counters(self) -> None:
        self.fails = self.successes = 0


def _connect_error_detail(exc: BaseException) -> str:
    os_err = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(os_err, ConnectionRefusedError) or getattr(os_err, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(os_err, ssl.SSLError) or isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS handshake failed: {exc}"
    text = getattr(os_err, "strerror", None) or str(exc) or type(exc).__name__
    return f"connection failed: {text}"


async def probe_tcp(address: str, port: int, timeout: float, configured: int) -> ProbeResult:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return ProbeResult(False, f"timeout: no TCP connection within {configured} s")
    except OSError as exc:
        return ProbeResult(False, _connect_error_detail(exc))
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return ProbeResult(True)


async def probe_http(
    session: aiohttp.ClientSession, address: str, check: HealthCheckView, timeout: float
) -> ProbeResult:
    tls = check.http_tls or check.protocol == "https"
    scheme = "https" if tls else "http"
    url = f"{scheme}://{address}:{check.port}{check.http_path or '/'}"
    host = check.http_domain or f"{address}:{check.port}"
    kwargs: dict[str, Any] = {}
    if tls:
        kwargs["ssl"] = False  # no verification, like a Hetzner LB
        if check.http_domain:
            kwargs["server_hostname"] = check.http_domain
    try:
        async with asyncio.timeout(timeout):
            async with session.get(url, headers={"Host": host}, allow_redirects=False, **kwargs) as resp:
                code = resp.status
                if not status_matches(code, check.http_status_codes):
                    wanted = ", ".join(check.http_status_codes)
                    return ProbeResult(False, f"HTTP status {code} does not match {wanted}", code)
                if check.http_response:
                    body = b""
                    while len(body) < BODY_LIMIT:
                        chunk = await resp.content.read(BODY_LIMIT - len(body))
                        if not chunk:
                            break
                        body += chunk
                    if check.http_response.encode() not in body:
                        return ProbeResult(
                            False, f"response body does not contain {check.http_response!r}", code
                        )
                return ProbeResult(True)
    except TimeoutError:
        return ProbeResult(False, f"timeout: no HTTP response within {check.timeout} s")
    except aiohttp.ClientConnectorError as exc:
        return ProbeResult(False, _connect_error_detail(exc))
    except aiohttp.ServerDisconnectedError:
        return ProbeResult(False, "connection closed before an HTTP response")
    except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
        return ProbeResult(False, f"invalid HTTP response: {type(exc).__name__}: {exc}")


class HealthChecker:
    """One periodic check. The record outlives the checker (a config change restarts the task)."""

    def __init__(
        self,
        key: CheckKey,
        spec: CheckSpec,
        record: HealthRecord,
        clock: Clock,
        session: aiohttp.ClientSession,
        report: Callable[[CheckKey, HealthRecord], None],
    ) -> None:
        self.key = key
        self.spec = spec
        self.record = record
        self._clock = clock
        self._session = session
        self._report = report
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        lb_id, port, (kind, ident) = self.key
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"lb-health-{lb_id}-{port}-{kind}-{ident}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def probe(self) -> ProbeResult:
        spec = self.spec
        check = spec.check
        if spec.address is None:
            return ProbeResult(False, spec.unreachable or "target has no address to dial")
        refused = refusal(spec.address, f"health check of {self.key[2][0]} {self.key[2][1]}")
        if refused:
            return ProbeResult(False, refused)
        # a fast clock must not make a health check's timeout shorter than a loaded machine needs
        # to answer over loopback: below ~1 s real time, targets flap for no reason
        timeout = max(self._clock.scaled(check.timeout), min(float(check.timeout), MIN_REAL_TIMEOUT))
        if check.protocol == "tcp":
            return await probe_tcp(spec.address, check.port, timeout, check.timeout)
        return await probe_http(self._session, spec.address, check, timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                result = await self.probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not stop the checks of other targets
                log.exception("health check %s failed unexpectedly", self.key)
                result = ProbeResult(False, f"health check error: {type(exc).__name__}")
            self.record.observe(result, self.spec.check.retries)
            self._report(self.key, self.record)
            delay = started + self._clock.scaled(self.spec.check.interval) - loop.time()
            await asyncio.sleep(max(0.0, delay))
