"""The L7 frontends: http/https services (reverse proxy) and the redirect_http listener.

aiohttp's low-level server parses the client side (garbage gets its 400, oversized headers their
431/400, and a client that sends nothing or stalls mid-headers is closed after the idle timeout);
an aiohttp client session forwards to the chosen target:

- the request line, headers and body pass through (streamed both ways); hop-by-hop headers
  (Connection and what it lists, Keep-Alive, TE, Transfer-Encoding, Upgrade, Proxy-*) are not
  forwarded; `Host` is kept as the client sent it;
- `X-Forwarded-For` gets the client's address appended, `X-Forwarded-Proto` (http|https) and
  `X-Forwarded-Port` (the service's listen port, i.e. what the client sees in production, not the
  sandbox's bound port) are set, replacing anything the client sent;
- `http.timeout_idle` ("idle timeout for the client and server side") bounds both: an idle client
  connection is closed, a target that sends nothing for that long gets a 504, a client that stops
  sending its body gets a 408 (all clock-scaled);
- a target that refuses the connection is skipped for the next healthy one (nothing was sent
  yet); when none is left, or none was healthy: 503 with HAProxy's page, as Hetzner's LB answers.

Each forward opens a fresh connection to the target (no upstream keep-alive), so a target that
went away never surfaces as a stale pooled connection.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from ..hetzner.views import TargetView
from .balancer import ServiceRuntime
from .loopback import refusal
from .routing import CONNECT_TIMEOUT, Routing

log = logging.getLogger("keybuzz.sandbox.lb")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"})

# HAProxy's built-in error pages (Hetzner's LB answers with these).
ERROR_PAGES = {
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}


def error_page(status: int) -> web.Response:
    title, text = ERROR_PAGES[status]
    body = f"<html><body><h1>{status} {title}</h1>\n{text}\n</body></html>\n"
    resp = web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )
    resp.force_close()
    return resp


def upstream_headers(request: web.BaseRequest, scheme: str, listen_port: int) -> CIMultiDict[str]:
    listed = {
        token.strip().lower()
        for value in request.headers.getall("Connection", [])
        for token in value.split(",")
    }
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        low = name.lower()
        if low in HOP_BY_HOP or low in listed or low in FORWARDED:
            continue
        out.add(name, value)
    peer = request.remote or ""
    prior = ", ".join(request.headers.getall("X-Forwarded-For", []))
    out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    out["X-Forwarded-Proto"] = scheme
    out["X-Forwarded-Port"] = str(listen_port)
    return out


def request_target(request: web.BaseRequest) -> str:
    raw = request.raw_path
    if raw.startswith("/"):
        return raw
    try:  # absolute-form ("GET http://host/x") or "*": forward the path part
        return request.rel_url.raw_path_qs or "/"
    except Exception:
        return "/"


class _ConnectFailed(Exception):
    pass


class _UpstreamTimeout(Exception):
    pass


class _BadUpstream(Exception):
    pass


class _ClientStalled(Exception):
    pass


@dataclass
class _BodyState:
    started: bool = False
    stalled: bool = False


async def _stream_body(request: web.BaseRequest, idle: float, state: _BodyState):  # type: ignore[no-untyped-def]
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await request.content.readany()
        except TimeoutError:
            state.stalled = True
            raise
        if not chunk:
            return
        state.started = True
        yield chunk


class HttpFrontend:
    """One http/https service's request handler (`scheme` is what the client spoke to the LB)."""

    def __init__(self, routing: Routing, lb_id: int, listen_port: int, scheme: str) -> None:
        self.routing = routing
        self.lb_id = lb_id
        self.listen_port = listen_port
        self.scheme = scheme

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:  # a bug must cost one request, not the listener
            log.exception("load balancer %s port %s: proxy error", self.lb_id, self.listen_port)
            return error_page(502)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        svc = self.routing.service(self.lb_id, self.listen_port)
        if svc is None or svc.view.protocol not in ("http", "https"):
            return error_page(503)
        if request.headers.get("Expect", "").lower() == "100-continue" and request.body_exists:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        is_healthy = self.routing.healthy_predicate(self.lb_id, self.listen_port)
        headers = upstream_headers(request, self.scheme, self.listen_port)
        sticky: TargetView | None = None
        if svc.view.sticky_sessions:
            token = request.cookies.get(svc.view.cookie_name)
            if token:
                sticky = svc.by_token(token, svc.healthy(is_healthy))
        tried: set[tuple[str, object]] = set()
        body = _BodyState()
        while True:
            target = sticky if sticky is not None and not tried else svc.pick(is_healthy, tried)
            if target is None:
                return error_page(503)
            tried.add(target.health_key)
            if refusal(target.address, f"{self.lb_id} forward") is not None:
                continue
            cookie = None
            if svc.view.sticky_sessions and target is not sticky:
                token = svc.lb.sticky_token(target.health_key)
                cookie = f"{svc.view.cookie_name}={token}; Path=/; Max-Age={svc.view.cookie_lifetime}"
            svc.lb.active[target.health_key] += 1
            try:
                return await self._forward(request, svc, target, headers, body, cookie)
            except _ConnectFailed:
                if body.started:
                    return error_page(502)
                continue
            except _ClientStalled:
                return error_page(408)
            except _UpstreamTimeout:
                return error_page(504)
            except _BadUpstream:
                return error_page(502)
            finally:
                svc.lb.active[target.health_key] -= 1
                if svc.lb.active[target.health_key] <= 0:
                    del svc.lb.active[target.health_key]

    async def _forward(
        self,
        request: web.BaseRequest,
        svc: ServiceRuntime,
        target: TargetView,
        headers: CIMultiDict[str],
        body: _BodyState,
        cookie: str | None,
    ) -> web.StreamResponse:
        clock = self.routing.clock
        idle = max(0.05, clock.scaled(svc.view.timeout_idle))
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None,
            sock_connect=max(0.05, min(idle, clock.scaled(CONNECT_TIMEOUT))),
            sock_read=idle,
        )
        url = URL(
            f"http://{target.address}:{svc.view.destination_port}{request_target(request)}", encoded=True
        )
        data = _stream_body(request, idle, body) if request.body_exists else None
        try:
            up = await self.routing.upstream.request(
                request.method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _ConnectFailed(str(exc)) from exc
        except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
            raise (_ClientStalled() if body.stalled else _UpstreamTimeout()) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise (_ClientStalled() if body.stalled else _BadUpstream()) from exc
        try:
            resp = web.StreamResponse(status=up.status, reason=up.reason)
            te = up.headers.get("Transfer-Encoding", "")
            for name, value in up.headers.items():
                low = name.lower()
                if low in HOP_BY_HOP or low == "content-length":
                    continue
                resp.headers.add(name, value)
            length = up.headers.get("Content-Length")
            if length is not None and not te and length.isdigit():
                resp.content_length = int(length)
            if cookie is not None:
                resp.headers.add("Set-Cookie", cookie)
            await resp.prepare(request)
            try:
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # the status line is out: the only honest signal left is to cut the connection
                if not isinstance(exc, ConnectionError) or request.transport is not None:
                    log.info(
                        "load balancer %s: target %s broke off a response: %r",
                        self.lb_id,
                        target.address,
                        exc,
                    )
                if request.transport is not None:
                    request.transport.abort()
                return resp
            await resp.write_eof()
            return resp
        finally:
            up.close()  # never pooled: each forward has its own connection


class RedirectFrontend:
    """Port 80 of an https service with redirect_http: 301 to the same host and path over https."""

    def __init__(self, routing: Routing, lb_id: int, https_port: int) -> None:
        self.routing = routing
        self.lb_id = lb_id
        self.https_port = https_port

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        svc = self.routing.service(self.lb_id, self.https_port)
        if svc is None or not svc.view.redirect_http:
            return error_page(503)
        host = request.headers.get("Host", "")
        if not host:
            sock = request.transport.get_extra_info("sockname") if request.transport else None
            host = sock[0] if sock else "localhost"
        if host.startswith("["):
            host = host[: host.find("]") + 1] if "]" in host else host
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        netloc = host if self.https_port == 443 else f"{host}:{self.https_port}"
        resp = web.Response(status=301, headers={"Location": f"https://{netloc}{request_target(request)}"})
        return resp
