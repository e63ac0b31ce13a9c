"""ingress-nginx, as its controller pods would run it: an L7 proxy configured from Ingress objects.

Routing follows ingress-nginx (one nginx server block per host, exact host before wildcard before
the default server "_", Exact paths before the longest Prefix, ImplementationSpecific as a plain
nginx prefix) and so do the answers the operator will meet: `/healthz` on the default server for
the Hetzner LB's health check, the 404 page for unknown hosts, 503 when a Service has no ready
endpoint, 502 when every endpoint refuses, 504 when they time out (a blocked overlay), 308 to
HTTPS for hosts with TLS. Upstreams are the Service's endpoints, not its ClusterIP: node IPs
(hostNetwork pods) are dialled for real, pod IPs go through the overlay rules.

The timeouts are ingress-nginx's defaults (proxy-connect-timeout 5 s, proxy-read-timeout 60 s,
3 tries), overridable by the ConfigMap and per Ingress by annotations, on the sandbox clock.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import CIMultiDict

from ..kube.registry import BY_KEY, core
from ..tls import IssuedCert
from .apps import AppTarget
from .topology import Endpoint
from .wire import (
    BodyTooLarge,
    DialError,
    HttpRequest,
    HttpResponse,
    nginx_page,
    read_request,
    text_response,
    to_web,
)

if TYPE_CHECKING:
    import ssl

    from .plane import DataPlane

INGRESSES = BY_KEY["networking.k8s.io/ingresses"]
CLASSES = BY_KEY["networking.k8s.io/ingressclasses"]
CONFIGMAPS = core("configmaps")
SECRETS = core("secrets")
CONTROLLER = "k8s.io/ingress-nginx"
ANN = "nginx.ingress.kubernetes.io/"
DEFAULT_UPSTREAM = "upstream-default-backend"
CONFIGMAP = "ingress-nginx-controller"
HSTS = "max-age=31536000; includeSubDomains"


@dataclass(frozen=True)
class Backend:
    namespace: str
    service: str
    port: int | str


@dataclass(frozen=True)
class PathRule:
    path: str
    path_type: str
    backend: Backend
    ingress: dict[str, Any] = field(compare=False, hash=False)


@dataclass
class Route:
    server: str  # the server block: a host, or "_"
    upstream: str
    response: HttpResponse | None = None  # answered by nginx itself
    backend: Backend | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    tries: int = 3
    ingress: str = ""


def _int(v: Any, default: float) -> float:
    try:
        return float(int(str(v).strip().rstrip("s")))
    except (TypeError, ValueError):
        return default


def _truthy(v: Any, default: bool) -> bool:
    if v is None:
        return default
    return str(v).strip().lower() in ("true", "1", "yes", "on")


def host_matches(rule_host: str, host: str) -> bool:
    if rule_host.startswith("*."):
        suffix = rule_host[1:]
        return host.endswith(suffix) and "." not in host[: -len(suffix)] and len(host) > len(suffix)
    return rule_host == host


def path_matches(path_type: str, rule: str, path: str) -> bool:
    if path_type == "Exact":
        return path == rule
    if path_type == "Prefix":
        base = rule.rstrip("/")
        return base == "" or path == base or path.startswith(base + "/")
    return path.startswith(rule)  # ImplementationSpecific: an nginx prefix location


class IngressProxy:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.store = plane.cluster.store
        self._rr: dict[str, int] = {}
        self._default_tls: ssl.SSLContext | None = None
        self._tls_cache: dict[tuple[str, str], tuple[str, ssl.SSLContext | None]] = {}
        self._conn = 0

    # --- configuration from the API ----------------------------------------------------------

    def config(self, namespace: str = "ingress-nginx") -> dict[str, str]:
        cm = self.store.get(CONFIGMAPS, namespace, CONFIGMAP) or self.store.get(CONFIGMAPS, "ingress-nginx", CONFIGMAP)
        return dict((cm or {}).get("data") or {})

    def classes(self) -> tuple[set[str], bool]:
        names, default = set(), False
        for ic in self.store.list(CLASSES):
            if (ic.get("spec") or {}).get("controller") == CONTROLLER:
                names.add(ic["metadata"]["name"])
                if (ic["metadata"].get("annotations") or {}).get("ingressclass.kubernetes.io/is-default-class") == "true":
                    default = True
        return names, default

    def ingresses(self) -> list[dict[str, Any]]:
        """Ingresses this controller serves, oldest first (the oldest wins a host/path conflict)."""
        names, default = self.classes()
        out = []
        for ing in self.store.list(INGRESSES):
            meta = ing["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            cls = (ing.get("spec") or {}).get("ingressClassName") or (meta.get("annotations") or {}).get("kubernetes.io/ingress.class")
            if (cls and cls in names) or (not cls and default):
                out.append(ing)
        return sorted(out, key=lambda i: (i["metadata"].get("creationTimestamp", ""), i["metadata"]["namespace"], i["metadata"]["name"]))

    def tls_hosts(self, ingresses: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
        """host -> (namespace, secretName) of the first Ingress that lists it under spec.tls."""
        out: dict[str, tuple[str, str | None]] = {}
        for ing in ingresses:
            for t in (ing.get("spec") or {}).get("tls") or []:
                for h in t.get("hosts") or []:
                    out.setdefault(str(h).lower(), (ing["metadata"]["namespace"], t.get("secretName")))
        return out

    # --- routing ---------------------------------------------------------------------------

    def route(self, req: HttpRequest, server_port: int = 80) -> Route:
        cfg = self.config()
        ingresses = self.ingresses()
        host = req.host
        rule_hosts = [str(r.get("host") or "").lower() for ing in ingresses for r in (ing.get("spec") or {}).get("rules") or []]
        server = host if host in rule_hosts else next((h for h in rule_hosts if h.startswith("*.") and host_matches(h, host)), "_")
        use_fwd = _truthy(cfg.get("use-forwarded-headers"), False)
        scheme = req.headers.get("X-Forwarded-Proto", req.scheme).split(",")[0].strip().lower() if use_fwd else req.scheme
        if server == "_" and (req.path == "/healthz" or req.path.startswith("/healthz/")):
            return Route("_", DEFAULT_UPSTREAM, text_response(200, "", "text/html", Server="nginx"))
        rules: list[PathRule] = []
        default_backend: tuple[Backend, dict[str, Any]] | None = None
        for ing in ingresses:
            spec, ns = ing.get("spec") or {}, ing["metadata"]["namespace"]
            for r in spec.get("rules") or []:
                if str(r.get("host") or "").lower() != (server if server != "_" else ""):
                    continue
                for p in (r.get("http") or {}).get("paths") or []:
                    b = _backend(ns, p.get("backend") or {})
                    if b is not None:
                        rules.append(PathRule(str(p.get("path") or "/"), str(p.get("pathType") or "ImplementationSpecific"), b, ing))
            db = _backend(ns, spec.get("defaultBackend") or {})
            if db is not None and default_backend is None:
                hosts = {str(r.get("host") or "").lower() for r in spec.get("rules") or []}
                if (server == "_" and not spec.get("rules")) or (server != "_" and server in hosts):
                    default_backend = (db, ing)
        chosen = _best(rules, req.path)
        if chosen is not None:
            backend, ing = chosen.backend, chosen.ingress
        elif default_backend is not None:
            backend, ing = default_backend
        else:
            return Route(server, DEFAULT_UPSTREAM, nginx_page(404))
        ann = (ing["metadata"].get("annotations") or {})
        tls = self.tls_hosts(ingresses)
        redirect = (_truthy(ann.get(ANN + "ssl-redirect"), _truthy(cfg.get("ssl-redirect"), True)) and host in tls) or _truthy(ann.get(ANN + "force-ssl-redirect"), False)
        if redirect and scheme == "http" and not req.path.startswith("/.well-known/acme-challenge/"):
            return Route(server, DEFAULT_UPSTREAM, nginx_page(308, Location=f"https://{req.headers.get('Host', host).split(':')[0]}{req.target}"))
        upstream = f"{backend.namespace}-{backend.service}-{backend.port}"
        route = Route(
            server,
            upstream,
            backend=backend,
            connect_timeout=_int(ann.get(ANN + "proxy-connect-timeout"), _int(cfg.get("proxy-connect-timeout"), 5.0)),
            read_timeout=_int(ann.get(ANN + "proxy-read-timeout"), _int(cfg.get("proxy-read-timeout"), 60.0)),
            tries=int(_int(ann.get(ANN + "proxy-next-upstream-tries"), _int(cfg.get("proxy-next-upstream-tries"), 3))),
            ingress=f"{ing['metadata']['namespace']}/{ing['metadata']['name']}",
        )
        sp = self.plane.topology.service_port(backend.namespace, backend.service, backend.port)
        if sp is not None:
            route.endpoints = self.plane.topology.ready_endpoints(backend.namespace, backend.service, str(sp.get("name") or ""))
        if not route.endpoints:
            route.response = nginx_page(503)
        return route

    def _order(self, route: Route) -> list[Endpoint]:
        """Round robin (ingress-nginx's default balancer), then the next ones for retries."""
        eps = route.endpoints
        i = self._rr.get(route.upstream, 0) % len(eps)
        self._rr[route.upstream] = i + 1
        tries = route.tries if route.tries > 0 else len(eps)
        return (eps[i:] + eps[:i])[: max(1, min(tries, len(eps)))]

    def upstream_request(self, t: AppTarget, req: HttpRequest, request_id: str) -> HttpRequest:
        """The request as nginx passes it on: original Host, the X-Forwarded-* set, a request id."""
        cfg = self.config()
        use_fwd = _truthy(cfg.get("use-forwarded-headers"), False)
        h = CIMultiDict((k, v) for k, v in req.headers.items() if k.lower() not in ("connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding", "content-length"))
        xff_in = req.headers.get("X-Forwarded-For") if use_fwd else None
        proto = req.headers.get("X-Forwarded-Proto", req.scheme) if use_fwd else req.scheme
        h["X-Request-ID"] = request_id
        h["X-Real-IP"] = xff_in.split(",")[0].strip() if xff_in else req.remote
        h["X-Forwarded-For"] = f"{xff_in}, {req.remote}" if xff_in else req.remote
        h["X-Forwarded-Host"] = (req.headers.get("X-Forwarded-Host") if use_fwd else None) or req.headers.get("Host", "")
        h["X-Forwarded-Port"] = (req.headers.get("X-Forwarded-Port") if use_fwd else None) or str(t.port)
        h["X-Forwarded-Proto"] = proto
        h["X-Forwarded-Scheme"] = proto
        h["X-Scheme"] = proto
        if "Host" not in h:
            h["Host"] = req.host or "_"
        return HttpRequest(req.method, req.target, h, req.body, "http", req.remote, "1.1")

    def _finish(self, route: Route, resp: HttpResponse, scheme: str, host: str) -> HttpResponse:
        headers = CIMultiDict((k, v) for k, v in resp.headers.items() if k.lower() not in ("server", "connection", "keep-alive", "transfer-encoding", "date"))
        headers["Server"] = "nginx"
        if scheme == "https" and host in self.tls_hosts(self.ingresses()):
            headers["Strict-Transport-Security"] = HSTS
        return HttpResponse(resp.status, headers, resp.body, resp.reason)

    # --- serving -----------------------------------------------------------------------------

    async def serve(self, t: AppTarget, request: web.BaseRequest) -> web.StreamResponse:
        """aiohttp handler of a controller pod's port 80/443 (behind a NodePort or hostNetwork)."""
        try:
            req = await read_request(request)
        except BodyTooLarge:
            return to_web(nginx_page(413))
        return to_web(await self.handle(t, req))

    async def handle(self, t: AppTarget, req: HttpRequest) -> HttpResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        route = self.route(req, t.port)
        rid = req.headers.get("X-Request-ID") or uuid.uuid4().hex
        tried: list[str] = []
        statuses: list[str] = []
        length = "-"
        if route.response is not None:
            resp = route.response
        else:
            up = self.upstream_request(t, req, rid)
            last: DialError | None = None
            got: HttpResponse | None = None
            for ep in self._order(route):
                tried.append(f"{ep.ip}:{ep.port}")
                try:
                    got = await self.plane.network.request(t.node, ep.ip, ep.port, up, connect_timeout=route.connect_timeout, read_timeout=route.read_timeout)
                except DialError as e:
                    last = e
                    statuses.append("504" if e.timed_out else "502")
                    self._error_log(t, req, route, ep, e)
                    continue
                statuses.append(str(got.status))
                length = str(len(got.body))
                break
            if got is not None:
                resp = self._finish(route, got, req.scheme, req.host)
            else:
                resp = nginx_page(504 if last is not None and last.timed_out else 502)
                length = "0"
        took = (loop.time() - started) * self.plane.clock.speed
        self._access_log(t, req, route, resp, took, ", ".join(tried) or "-", length, ", ".join(statuses) or "-", rid)
        return resp

    def handle_sync(self, t: AppTarget, req: HttpRequest) -> HttpResponse:
        """The same decision without waiting (exec hook): timeouts are reported, not waited for."""
        route = self.route(req, t.port)
        if route.response is not None:
            return route.response
        up = self.upstream_request(t, req, req.headers.get("X-Request-ID") or uuid.uuid4().hex)
        last: DialError | None = None
        for ep in self._order(route):
            try:
                return self._finish(route, self.plane.network.request_sync(t.node, ep.ip, ep.port, up), req.scheme, req.host)
            except DialError as e:
                last = e
        return nginx_page(504 if last is not None and last.timed_out else 502)

    # --- logs (kubectl logs on the controller pod) --------------------------------------------

    def _access_log(self, t: AppTarget, req: HttpRequest, route: Route, resp: HttpResponse, took: float, addr: str, length: str, ustatus: str, rid: str) -> None:
        """ingress-nginx's default log-format-upstream, one line per request."""
        ts = self.plane.clock.now().strftime("%d/%b/%Y:%H:%M:%S +0000")
        ua = req.headers.get("User-Agent", "-")
        ref = req.headers.get("Referer", "-")
        line = (
            f'{req.remote} - - [{ts}] "{req.line}" {resp.status} {len(resp.body)} "{ref}" "{ua}" '
            f"{len(req.body) + 80} {took:.3f} [{route.upstream}] [] {addr} {length} {took:.3f} {ustatus} {rid}"
        )
        self.plane.pod_log(t.namespace, t.pod, t.container, line)

    def _error_log(self, t: AppTarget, req: HttpRequest, route: Route, ep: Endpoint, e: DialError) -> None:
        self._conn += 1
        ts = self.plane.clock.now().strftime("%Y/%m/%d %H:%M:%S")
        line = (
            f'{ts} [error] 31#31: *{self._conn} {e.nginx()}, client: {req.remote}, server: {route.server}, '
            f'request: "{req.line}", upstream: "http://{ep.ip}:{ep.port}{req.target}", host: "{req.headers.get("Host", "")}"'
        )
        self.plane.pod_log(t.namespace, t.pod, t.container, line)

    # --- TLS (port 443) --------------------------------------------------------------------------

    def tls_context(self) -> ssl.SSLContext:
        """The fake default certificate, switched per SNI name to the Ingress's TLS Secret."""
        if self._default_tls is None:
            ca = self.plane.ca
            cert = ca.issue("ingress.local", common_name="Kubernetes Ingress Controller Fake Certificate")
            ctx = ca.context_for(cert)
            ctx.sni_callback = self._sni
            self._default_tls = ctx
        return self._default_tls

    def _sni(self, sslobj: Any, server_name: str | None, _ctx: Any) -> None:
        if not server_name:
            return None
        host = server_name.lower()
        tls = self.tls_hosts(self.ingresses())
        entry = tls.get(host) or next((v for h, v in tls.items() if h.startswith("*.") and host_matches(h, host)), None)
        if entry is None or not entry[1]:
            return None
        ctx = self._secret_context(entry[0], entry[1])
        if ctx is not None:
            sslobj.context = ctx
        return None

    def _secret_context(self, namespace: str, name: str) -> ssl.SSLContext | None:
        sec = self.store.get(SECRETS, namespace, name)
        if sec is None:
            return None
        rv = sec["metadata"].get("resourceVersion", "")
        cached = self._tls_cache.get((namespace, name))
        if cached is not None and cached[0] == rv:
            return cached[1]
        ctx = None
        try:
            data = sec.get("data") or {}
            crt = base64.b64decode(data.get("tls.crt", "")).decode()
            key = base64.b64decode(data.get("tls.key", "")).decode()
            ctx = self.plane.ca.context_for(IssuedCert(crt, key, crt))
        except Exception as e:  # ingress-nginx logs it and serves the fake certificate
            self.plane.log(f"Error loading TLS secret {namespace}/{name}: {e}; using the default certificate")
        self._tls_cache[(namespace, name)] = (rv, ctx)
        return ctx


def _backend(namespace: str, b: dict[str, Any]) -> Backend | None:
    svc = b.get("service") or {}
    if not svc.get("name"):
        return None
    port = svc.get("port") or {}
    p: int | str = port["number"] if port.get("number") else str(port.get("name") or "")
    if p == "":
        return None
    return Backend(namespace, str(svc["name"]), p)


def _best(rules: list[PathRule], path: str) -> PathRule | None:
    exact = [r for r in rules if r.path_type == "Exact" and r.path == path]
    if exact:
        return exact[0]
    matching = [r for r in rules if r.path_type != "Exact" and path_matches(r.path_type, r.path, path)]
    if not matching:
        return None
    return max(matching, key=lambda r: len(r.path.rstrip("/")) if r.path_type == "Prefix" else len(r.path))
