"""What a container image "does" in the sandbox: its start-up log, the ports it listens on, and
how it answers HTTP.

A real cluster runs real images; the sandbox runs this catalogue. The kubelet uses it to decide
whether a container starts, crashes ("Address already in use") or never pulls; the data plane uses
it to answer requests on the pod's ports. Unknown images behave like a generic HTTP service on
their declared container ports, so a wizard can deploy anything and still see it answer.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

REGISTRY_DEFAULT = "docker.io"


def normalize(image: str) -> str:
    """docker.io/library/nginx:latest style reference, as containerd reports it."""
    ref = image
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        ref = f"{REGISTRY_DEFAULT}/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"{REGISTRY_DEFAULT}/{ref}"
    return ref


@dataclass(frozen=True)
class Behaviour:
    kind: str  # "nginx", "keybuzz-api", "keybuzz-front", "ingress-nginx", "coredns", "generic", "probe"
    app_name: str
    startup: tuple[str, ...] = ()
    bind_error: str = "bind() to 0.0.0.0:{port} failed (98: Address already in use)"
    http_status: int = 200  # what it answers on "/" (a broken build answers 500)
    healthz_status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


def behaviour(image: str, container: dict[str, Any] | None = None) -> Behaviour:
    ref = normalize(image)
    name = ref.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    tag = ref.rsplit(":", 1)[-1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    broken = tag.endswith("-broken") or tag.endswith("-500")
    if "keybuzz" in ref and "api" in name:
        return Behaviour(
            "keybuzz-api",
            "keybuzz-api",
            (
                "{ts} INFO  keybuzz-api {tag} starting (node={node}, pod={pod})",
                "{ts} INFO  config loaded from /etc/keybuzz/api.env",
                "{ts} INFO  listening on 0.0.0.0:{port}",
            ),
            bind_error="{ts} FATAL listen tcp 0.0.0.0:{port}: bind: address already in use",
            http_status=500 if broken else 200,
            healthz_status=500 if broken else 200,
        )
    if "keybuzz" in ref and "front" in name:
        return Behaviour(
            "keybuzz-front",
            "keybuzz-front",
            ("> keybuzz-front@{tag} start", "> next start -p {port}", "  ▲ Ready on http://0.0.0.0:{port}"),
            bind_error="Error: listen EADDRINUSE: address already in use 0.0.0.0:{port}",
            http_status=500 if broken else 200,
            healthz_status=500 if broken else 200,
        )
    if "ingress-nginx" in ref:
        return Behaviour(
            "ingress-nginx",
            "ingress-nginx",
            (
                "-------------------------------------------------------------------------------",
                "NGINX Ingress controller",
                "  Release:       v1.12.1",
                "-------------------------------------------------------------------------------",
                'I1101 09:12:01.000000       7 main.go:205] "Creating API client" host="https://10.43.0.1:443"',
                'I1101 09:12:03.000000       7 nginx.go:317] "Starting NGINX Ingress controller"',
            ),
        )
    if "coredns" in ref:
        return Behaviour("coredns", "coredns", (".:53", "CoreDNS-1.12.0", "linux/amd64, go1.23.3, 51e11f1"))
    if name in ("nginx", "nginx-unprivileged") or name.startswith("nginx"):
        return Behaviour(
            "nginx",
            "nginx",
            (
                "/docker-entrypoint.sh: Configuration complete; ready for start up",
                "{ts} [notice] 1#1: using the \"epoll\" event method",
                "{ts} [notice] 1#1: nginx/1.27.3",
                "{ts} [notice] 1#1: start worker processes",
            ),
            bind_error="{ts} [emerg] 1#1: bind() to 0.0.0.0:{port} failed (98: Address already in use)\n"
            "nginx: [emerg] bind() to 0.0.0.0:{port} failed (98: Address already in use)",
            http_status=500 if broken else 200,
        )
    if "keybuzz-probe" in ref or name in ("busybox", "alpine", "netshoot"):
        return Behaviour("probe", name)
    return Behaviour("generic", name, ("{ts} starting {image}",), http_status=500 if broken else 200)


def image_id(image: str) -> str:
    """A stable repo digest for an image reference, as `status.containerStatuses[].imageID` shows."""
    import hashlib

    ref = normalize(image)
    repo = ref.rsplit(":", 1)[0] if "@" not in ref else ref.split("@", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"


def is_missing(image: str, patterns: tuple[str, ...] | list[str]) -> bool:
    ref = normalize(image)
    return any(fnmatch.fnmatch(image, p) or fnmatch.fnmatch(ref, p) for p in patterns)


def pull_error(image: str, reason: str) -> str:
    """containerd's message for a failed pull, as the kubelet reports it."""
    ref = normalize(image)
    if reason == "unauthorized":
        return (
            f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
            "failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized"
        )
    return f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found'


def listen_ports(container: dict[str, Any]) -> list[tuple[int, str]]:
    """(port, protocol) the container listens on: its declared containerPorts."""
    return [
        (int(p["containerPort"]), p.get("protocol", "TCP"))
        for p in container.get("ports") or []
        if isinstance(p.get("containerPort"), int)
    ]
