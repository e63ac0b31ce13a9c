"""What travels on the simulated wire: HTTP requests and responses as plain values, and the ways a
connection can fail.

Apps, the ingress proxy and the overlay all speak these values, so one request can be served
in-process (a pod on the overlay, which is never dialled) or over a real loopback socket (a
hostNetwork pod) by the same code. Each failure knows how the different clients word it: Go's
net/http (kubelet probes), nginx's error log (ingress-nginx) and busybox (probe containers),
because the doctor and the operator read those words, not ours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

# nginx words some statuses differently from the RFC (ngx_http_header_filter_module.c)
NGINX_REASONS = {
    302: "Moved Temporarily",
    308: "Permanent Redirect",
    405: "Not Allowed",
    413: "Request Entity Too Large",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def reason(status: int, *, nginx: bool = False) -> str:
    if nginx and status in NGINX_REASONS:
        return NGINX_REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass
class HttpRequest:
    method: str = "GET"
    target: str = "/"  # path and query, as on the request line
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    body: bytes = b""
    scheme: str = "http"
    remote: str = ""  # the peer address the server sees
    version: str = "1.1"

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0] or "/"

    @property
    def host(self) -> str:
        """The Host header without its port, lower-cased (how nginx picks a server block)."""
        h = self.headers.get("Host", "").strip().lower()
        if h.startswith("["):
            return h.split("]", 1)[0] + "]"
        return h.rsplit(":", 1)[0] if h.count(":") == 1 else h

    @property
    def line(self) -> str:
        return f"{self.method} {self.target} HTTP/{self.version}"


@dataclass
class HttpResponse:
    status: int
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    body: bytes = b""
    reason: str | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def json_response(status: int, data: Any, **headers: str) -> HttpResponse:
    h = CIMultiDict({"Content-Type": "application/json"})
    h.update(headers)
    return HttpResponse(status, h, (json.dumps(data, indent=None, separators=(",", ":")) + "\n").encode())


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8", **headers: str) -> HttpResponse:
    h = CIMultiDict({"Content-Type": content_type})
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    return HttpResponse(status, h, text.encode())


def nginx_page(status: int, server: str = "nginx", **headers: str) -> HttpResponse:
    """nginx's built-in error page, byte for byte (CRLF line ends, server tokens in the footer)."""
    title = f"{status} {reason(status, nginx=True)}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>{server}</center>\r\n</body>\r\n</html>\r\n"
    )
    h = CIMultiDict({"Content-Type": "text/html", "Server": server})
    for k, v in headers.items():
        h[k.replace("_", "-")] = v
    return HttpResponse(status, h, body.encode(), reason(status, nginx=True))


# --- failures --------------------------------------------------------------------------------

# kind -> (Go net error tail, nginx error-log text, errno text busybox prints)
_WORDS = {
    "refused": ("connect: connection refused", "connect() failed (111: Connection refused) while connecting to upstream", "Connection refused"),
    "timeout": ("i/o timeout", "upstream timed out (110: Operation timed out) while connecting to upstream", "Connection timed out"),
    "unreachable": ("connect: no route to host", "connect() failed (113: No route to host) while connecting to upstream", "No route to host"),
    "read-timeout": ("i/o timeout", "upstream timed out (110: Operation timed out) while reading response header from upstream", "Connection timed out"),
    "reset": ("read: connection reset by peer", "upstream prematurely closed connection while reading response header from upstream", "Connection reset by peer"),
}


class DialError(Exception):
    """A connection (or the response on it) that did not happen, and why."""

    def __init__(self, kind: str, ip: str, port: int) -> None:
        if kind not in _WORDS:
            raise ValueError(kind)
        self.kind, self.ip, self.port = kind, ip, port
        super().__init__(f"{kind} {ip}:{port}")

    @property
    def timed_out(self) -> bool:
        return self.kind in ("timeout", "read-timeout")

    def go(self) -> str:
        """How Go's dialer says it (kubelet tcpSocket probes, Go clients)."""
        return f"dial tcp {self.ip}:{self.port}: {_WORDS[self.kind][0]}"

    def go_http(self, url: str) -> str:
        """How the kubelet's HTTP prober says it."""
        if self.timed_out:
            return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        if self.kind == "reset":
            return f'Get "{url}": EOF'
        return f'Get "{url}": {self.go()}'

    def nginx(self) -> str:
        return _WORDS[self.kind][1]

    def errno_text(self) -> str:
        return _WORDS[self.kind][2]


# --- aiohttp adapters --------------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


async def read_request(request: web.BaseRequest, *, max_body: int = 1 << 20) -> HttpRequest:
    """An aiohttp request as a plain value (the body read up to max_body)."""
    body = b""
    if request.can_read_body:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > max_body:
                raise BodyTooLarge()
            chunks.append(chunk)
        body = b"".join(chunks)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return HttpRequest(
        method=request.method,
        target=request.raw_path,
        headers=CIMultiDict(request.headers),
        body=body,
        scheme="https" if request.transport is not None and request.transport.get_extra_info("sslcontext") else "http",
        remote=peer[0] if isinstance(peer, tuple) else "",
        version=f"{request.version.major}.{request.version.minor}",
    )


def to_web(resp: HttpResponse) -> web.Response:
    """aiohttp drops the body of HEAD answers itself, so every handler can answer HEAD like GET."""
    out = web.Response(status=resp.status, reason=resp.reason or reason(resp.status), body=resp.body)
    for k, v in resp.headers.items():
        if k.lower() not in HOP_BY_HOP and k.lower() != "date":
            out.headers.add(k, v)
    return out
