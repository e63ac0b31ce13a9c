"""Sending an HTTP request (or opening a TCP connection) from a node to an address, by the rules
of `topology.reach()`: the underlay for real over loopback, the overlay in-process.

`request()` is `overlay_request`: what ingress-nginx, kube-proxy's ClusterIPs and the kubelet's
probes use. A blocked overlay is not an error that comes back at once: the SYN just disappears,
so the caller waits for its own connect timeout (on the sandbox clock) and then sees a timeout,
which is exactly how the production outage looked from ingress-nginx (504 after 5 s per try).

`request_sync()` gives the same answer without waiting and without sockets, for synchronous
callers on the loop (the kubelet's exec hook) that cannot await; it must never be used where a
real socket exists and could disagree, except as a fallback.
"""

from __future__ import annotations

import asyncio
import errno
from typing import TYPE_CHECKING

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from . import apps
from .sockets import check_dialable
from .wire import HOP_BY_HOP, DialError, HttpRequest, HttpResponse

if TYPE_CHECKING:
    from .plane import DataPlane
    from .topology import Reach

MIN_REAL_TIMEOUT = 0.5  # real seconds: a loaded CI box must not turn a fast answer into a timeout
UNREACHABLE_SECONDS = 3.0  # ARP gives up after ~3 s on a bridge with no such neighbour


class Network:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def real_timeout(self, seconds: float) -> float:
        return max(self.plane.clock.scaled(seconds), MIN_REAL_TIMEOUT)

    def _is_real(self, ip: str) -> bool:
        return self.plane.live and ip in self.plane.topology.node_by_ip

    # --- async: what the running world uses ----------------------------------------------------

    async def request(
        self,
        from_node: str | None,
        ip: str,
        port: int,
        req: HttpRequest,
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> HttpResponse:
        """overlay_request: the response, or DialError (refused, timeout, read-timeout...).

        Timeouts are in simulated seconds. Node IPs are dialled for real; pod and cluster IPs are
        served in-process when the overlay allows the path and hang until connect_timeout when not.
        """
        ct = connect_timeout if connect_timeout is not None else (timeout if timeout is not None else 60.0)
        rt = read_timeout if read_timeout is not None else (timeout if timeout is not None else 60.0)
        if self._is_real(ip):
            return await self._http(from_node, ip, port, req, ct, rt)
        r = self.plane.topology.reach(from_node, ip, port)
        await self._fail(r, ct)
        assert r.target is not None
        if self._is_real(r.ip):
            return await self._http(from_node, r.ip, r.port, req, ct, rt)
        t = r.target
        if t.is_ingress:
            return await self.plane.ingress.handle(t, _with_scheme(req, "https" if t.tls else "http"))
        resp = apps.respond(t, req)
        if resp is None:
            await self.plane.clock.sleep(rt)
            raise DialError("read-timeout", r.ip, r.port)
        return resp

    async def connect(self, from_node: str | None, ip: str, port: int, *, timeout: float = 1.0) -> None:
        """A TCP connect (tcpSocket probes, `nc -z`): returns, or raises DialError."""
        if self._is_real(ip):
            await self._tcp(from_node, ip, port, timeout)
            return
        r = self.plane.topology.reach(from_node, ip, port)
        await self._fail(r, timeout)
        if self._is_real(r.ip):
            await self._tcp(from_node, r.ip, r.port, timeout)

    async def _fail(self, r: Reach, connect_timeout: float) -> None:
        if r.kind == "timeout":
            await self.plane.clock.sleep(connect_timeout)
            raise DialError("timeout", r.ip, r.port)
        if r.kind == "unreachable":
            await self.plane.clock.sleep(min(connect_timeout, UNREACHABLE_SECONDS))
            raise DialError("timeout" if connect_timeout < UNREACHABLE_SECONDS else "unreachable", r.ip, r.port)
        if r.kind == "refused":
            raise DialError("refused", r.ip, r.port)

    def _session(self, from_node: str | None) -> aiohttp.ClientSession:
        src = self.plane.topology.node_ips.get(from_node or "", "")
        s = self._sessions.get(src)
        if s is None or s.closed:
            connector = aiohttp.TCPConnector(force_close=True, limit=0, local_addr=(src, 0) if src else None)
            s = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
            self._sessions[src] = s
        return s

    async def _http(self, from_node: str | None, ip: str, port: int, req: HttpRequest, ct: float, rt: float) -> HttpResponse:
        check_dialable(ip)
        headers = CIMultiDict((k, v) for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.real_timeout(ct), sock_read=self.real_timeout(rt))
        url = URL(f"http://{ip}:{port}{req.target if req.target.startswith('/') else '/' + req.target}", encoded=True)
        try:
            async with self._session(from_node).request(
                req.method, url, headers=headers, data=req.body or None, timeout=timeout, allow_redirects=False
            ) as r:
                body = await r.read()
                return HttpResponse(r.status, CIMultiDict(r.headers), body, r.reason)
        except aiohttp.ConnectionTimeoutError:
            raise DialError("timeout", ip, port) from None
        except aiohttp.SocketTimeoutError:
            raise DialError("read-timeout", ip, port) from None
        except aiohttp.ClientConnectorError as e:
            code = getattr(e.os_error, "errno", None)
            raise DialError("unreachable" if code in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "refused", ip, port) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError, aiohttp.ClientResponseError):
            raise DialError("reset", ip, port) from None
        except TimeoutError:
            raise DialError("timeout", ip, port) from None

    async def _tcp(self, from_node: str | None, ip: str, port: int, timeout: float) -> None:
        check_dialable(ip)
        src = self.plane.topology.node_ips.get(from_node or "")
        try:
            _r, w = await asyncio.wait_for(asyncio.open_connection(ip, port, local_addr=(src, 0) if src else None), self.real_timeout(timeout))
        except TimeoutError:
            raise DialError("timeout", ip, port) from None
        except ConnectionRefusedError:
            raise DialError("refused", ip, port) from None
        except OSError as e:
            raise DialError("unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "refused", ip, port) from None
        w.close()

    async def close(self) -> None:
        for s in self._sessions.values():
            await s.close()
        self._sessions.clear()

    # --- sync: the same answer, computed (exec hook, probe fallback) -------------------------

    def request_sync(self, from_node: str | None, ip: str, port: int, req: HttpRequest) -> HttpResponse:
        r = self.plane.topology.reach(from_node, ip, port)
        if r.kind != "serve" or r.target is None:
            raise DialError("unreachable" if r.kind == "unreachable" else r.kind, r.ip, r.port)
        t = r.target
        if t.is_ingress:
            return self.plane.ingress.handle_sync(t, _with_scheme(req, "https" if t.tls else "http"))
        resp = apps.respond(t, req)
        if resp is None:
            raise DialError("read-timeout", r.ip, r.port)
        return resp

    def connect_sync(self, from_node: str | None, ip: str, port: int) -> Reach:
        r = self.plane.topology.reach(from_node, ip, port)
        if r.kind != "serve":
            raise DialError("unreachable" if r.kind == "unreachable" else r.kind, r.ip, r.port)
        return r


def _with_scheme(req: HttpRequest, scheme: str) -> HttpRequest:
    if req.scheme == scheme:
        return req
    return HttpRequest(req.method, req.target, req.headers, req.body, scheme, req.remote, req.version)
