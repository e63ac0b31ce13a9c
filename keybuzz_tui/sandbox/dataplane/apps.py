"""What a listening container (or host process) answers over HTTP.

`images.behaviour` says what an image is; this module says what it serves on which port, so a
probe, a NodePort hit, the ingress and a `wget` in a debug pod all see the same answer whether
the pod is a hostNetwork one behind a real socket or an overlay pod served in-process. Answers
carry the pod's identity (pod, node, image) because the operator's first question in an outage
is "which replica answered me?".
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .. import images
from .wire import HttpRequest, HttpResponse, json_response, nginx_page, text_response

# Ports an image listens on without declaring them (upstream defaults): the kubelet probes some of
# them (ingress-nginx /healthz on 10254, CoreDNS /ready on 8181), so they must answer.
IMPLICIT_PORTS: dict[str, tuple[int, ...]] = {
    "ingress-nginx": (80, 443, 8443, 10254, 8181),
    "coredns": (53, 8080, 8181, 9153),
}
# What an image listens on when its manifest declares no containerPort at all.
DEFAULT_PORTS: dict[str, tuple[int, ...]] = {
    "keybuzz-api": (8080,),
    "keybuzz-front": (3000,),
    "nginx": (80,),
}
NOT_HTTP = {("coredns", 53)}
INGRESS_HTTP_PORTS = (80,)
INGRESS_HTTPS_PORTS = (443,)
OLD_NGINX = "nginx/1.18.0 (Ubuntu)"


@dataclass(frozen=True)
class AppTarget:
    """One listener: who is behind ip:port and how it answers."""

    kind: str  # a Behaviour kind, or "host-process" / "daemon" (a K3s port, not HTTP)
    app: str
    image: str
    namespace: str
    pod: str
    node: str
    pod_ip: str
    port: int
    host_network: bool = False
    http_status: int = 200
    healthz_status: int = 200
    answers: str = ""  # host processes: an HTTP status, or "silent"
    container: str = ""
    port_name: str = ""

    @property
    def is_ingress(self) -> bool:
        return self.kind == "ingress-nginx" and (self.port in INGRESS_HTTP_PORTS + INGRESS_HTTPS_PORTS or self.port_name in ("http", "https"))

    @property
    def tls(self) -> bool:
        return self.is_ingress and (self.port in INGRESS_HTTPS_PORTS or self.port_name == "https")

    @property
    def is_http(self) -> bool:
        return self.kind != "daemon" and (self.kind, self.port) not in NOT_HTTP and self.answers != "silent"

    @property
    def tag(self) -> str:
        last = self.image.rsplit("/", 1)[-1]
        return last.rsplit(":", 1)[1] if ":" in last else "latest"


def listen_ports(beh: images.Behaviour, container: dict[str, Any]) -> dict[int, str]:
    """port -> port name, for every TCP port the container's image listens on."""
    declared = {
        int(p["containerPort"]): str(p.get("name") or "")
        for p in container.get("ports") or []
        if isinstance(p.get("containerPort"), int) and p.get("protocol", "TCP") == "TCP"
    }
    out = dict(declared)
    for port in IMPLICIT_PORTS.get(beh.kind, ()):
        out.setdefault(port, "")
    if not container.get("ports"):
        for port in DEFAULT_PORTS.get(beh.kind, ()):
            out.setdefault(port, "")
    if beh.kind == "probe":
        return {}
    return out


def for_container(pod: dict[str, Any], node: str, ip: str, container: dict[str, Any], image: str, port: int) -> AppTarget | None:
    """The target a container offers on `port`, or None when its image does not listen there."""
    beh = images.behaviour(image, container)
    ports = listen_ports(beh, container)
    if port not in ports:
        return None
    meta = pod.get("metadata") or {}
    return AppTarget(
        kind=beh.kind,
        app=beh.app_name,
        image=image,
        namespace=meta.get("namespace", ""),
        pod=meta.get("name", ""),
        node=node,
        pod_ip=ip,
        port=port,
        host_network=bool((pod.get("spec") or {}).get("hostNetwork")),
        http_status=beh.http_status,
        healthz_status=beh.healthz_status,
        container=str(container.get("name", "")),
        port_name=ports[port],
    )


def for_host_process(node: str, ip: str, port: int, command: str, answers: str) -> AppTarget:
    name = command.split()[0].rstrip(":") if command else "process"
    return AppTarget(kind="host-process", app=name, image="", namespace="", pod="", node=node, pod_ip=ip, port=port, answers=answers, container=command)


def daemon(node: str, ip: str, port: int, command: str) -> AppTarget:
    """A K3s or system port: it accepts TCP connections but is not simulated beyond that."""
    return AppTarget(kind="daemon", app=command, image="", namespace="", pod="", node=node, pod_ip=ip, port=port)


# --- answers -----------------------------------------------------------------------------------


def respond(t: AppTarget, req: HttpRequest) -> HttpResponse | None:
    """The app's answer; None when it never answers (a silent process, a non-HTTP port)."""
    if not t.is_http:
        return None
    handler = _HANDLERS.get(t.kind, _generic)
    return handler(t, req)


def _identity(t: AppTarget, req: HttpRequest) -> dict[str, Any]:
    fwd = {k: req.headers[k] for k in ("X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "X-Request-ID") if k in req.headers}
    return {
        "app": t.app,
        "version": t.tag,
        "pod": t.pod,
        "namespace": t.namespace,
        "node": t.node,
        "podIP": t.pod_ip,
        "hostNetwork": t.host_network,
        "image": t.image,
        "request": {"method": req.method, "host": req.headers.get("Host", ""), "path": req.target, "remote": req.remote, "forwarded": fwd},
    }


def _keybuzz_api(t: AppTarget, req: HttpRequest) -> HttpResponse:
    path = req.path
    if path in ("/healthz", "/health", "/readyz", "/livez"):
        if t.healthz_status == 200:
            return json_response(200, {"status": "ok"})
        return json_response(t.healthz_status, {"status": "error", "checks": {"database": "connection refused"}})
    if t.http_status != 200:
        return json_response(t.http_status, {"detail": "Internal Server Error"})
    if path == "/" or path == "/version" or path.startswith("/api") or path.startswith("/v1"):
        return json_response(200, _identity(t, req), **{"X-KeyBuzz-Pod": t.pod, "X-KeyBuzz-Node": t.node})
    return json_response(404, {"detail": "Not Found"})


def _keybuzz_front(t: AppTarget, req: HttpRequest) -> HttpResponse:
    if req.path in ("/healthz", "/api/health"):
        return text_response(t.healthz_status, "ok" if t.healthz_status == 200 else "error", X_Powered_By="Next.js")
    if t.http_status != 200:
        return text_response(t.http_status, "<!DOCTYPE html><html><head><title>500: Internal Server Error</title></head><body><h1>500</h1><p>Internal Server Error.</p></body></html>", "text/html; charset=utf-8", X_Powered_By="Next.js")
    e = html.escape
    page = (
        '<!DOCTYPE html><html lang="fr"><head><meta charSet="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        "<title>KeyBuzz — Plateforme</title>"
        f'<meta name="keybuzz:pod" content="{e(t.pod)}"/><meta name="keybuzz:node" content="{e(t.node)}"/>'
        f'<meta name="keybuzz:image" content="{e(t.image)}"/></head>'
        '<body><div id="__next"><main><h1>KeyBuzz</h1>'
        f"<p>Servi par {e(t.pod)} sur {e(t.node)} ({e(t.image)})</p>"
        "</main></div></body></html>"
    )
    return text_response(200, page, "text/html; charset=utf-8", X_Powered_By="Next.js", X_KeyBuzz_Pod=t.pod, X_KeyBuzz_Node=t.node)


WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""


def _nginx(t: AppTarget, req: HttpRequest) -> HttpResponse:
    server = f"nginx/{t.tag.split('-')[0]}" if t.tag[:1].isdigit() else "nginx/1.27.3"
    if t.http_status != 200:
        return nginx_page(t.http_status, server)
    if req.path in ("/", "/index.html"):
        return text_response(200, WELCOME, "text/html", Server=server)
    return nginx_page(404, server)


def _host_process(t: AppTarget, req: HttpRequest) -> HttpResponse:
    """A process the scenario left on the node (an old nginx from a manual test, by default)."""
    try:
        status = int(t.answers)
    except ValueError:
        status = 404
    if status == 200:
        return text_response(200, WELCOME, "text/html", Server=OLD_NGINX)
    return nginx_page(status, OLD_NGINX)


def _ingress_aux(t: AppTarget, req: HttpRequest) -> HttpResponse:
    """ingress-nginx's side ports: 10254 health/metrics, 8181 the default backend."""
    if t.port == 10254:
        if req.path == "/healthz":
            return text_response(200, "ok")
        if req.path == "/metrics":
            metric = "nginx_ingress_controller_config_last_reload_successful"
            labels = f'controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="{t.pod}"'
            body = f"# HELP {metric} Whether the last configuration reload attempt was successful\n# TYPE {metric} gauge\n{metric}{{{labels}}} 1\n"
            return text_response(200, body, "text/plain; version=0.0.4")
        return text_response(404, "404 page not found\n")
    return nginx_page(404)


def _coredns(t: AppTarget, req: HttpRequest) -> HttpResponse:
    if t.port == 8080 and req.path == "/health":
        return text_response(200, "OK")
    if t.port == 8181 and req.path == "/ready":
        return text_response(200, "OK")
    if t.port == 9153 and req.path == "/metrics":
        return text_response(200, '# HELP coredns_build_info A metric with a constant \'1\' value labeled by version, revision, and goversion from which CoreDNS was built.\n# TYPE coredns_build_info gauge\ncoredns_build_info{goversion="go1.23.3",revision="51e11f1",version="1.12.0"} 1\n', "text/plain; version=0.0.4")
    return text_response(404, "404 page not found\n")


def _generic(t: AppTarget, req: HttpRequest) -> HttpResponse:
    if req.path in ("/healthz", "/health"):
        return text_response(t.healthz_status, "ok\n" if t.healthz_status == 200 else "unhealthy\n")
    if t.http_status != 200:
        return text_response(t.http_status, "Internal Server Error\n")
    return text_response(200, f"{t.image} on {t.pod} ({t.node}) port {t.port}\n")


_HANDLERS = {
    "keybuzz-api": _keybuzz_api,
    "keybuzz-front": _keybuzz_front,
    "nginx": _nginx,
    "host-process": _host_process,
    "ingress-nginx": _ingress_aux,
    "coredns": _coredns,
    "generic": _generic,
}
