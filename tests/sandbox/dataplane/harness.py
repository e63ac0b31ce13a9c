"""Starting sandboxes with the data plane, and the manifests the tests install.

Until runtime.py wires the data plane itself, `start()` attaches it by wrapping
KubeCluster.bootstrap for the duration of Sandbox.start() (this harness only); once the runtime
wires it, the wrapper sees a DataPlane already in place and does nothing.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, utils
from support import sandboxes

from keybuzz_tui.sandbox.dataplane import DataPlane
from keybuzz_tui.sandbox.kube.cluster import KubeCluster
from keybuzz_tui.sandbox.runtime import Sandbox, free_net
from keybuzz_tui.sandbox.scenarios import load

API_IMAGE = "ghcr.io/keybuzz/keybuzz-api:1.4.2"
FRONT_IMAGE = "ghcr.io/keybuzz/keybuzz-front:1.4.2"
WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]
SERVERS = [f"k3s-master-0{i}" for i in range(1, 4)]


def start(state_dir: Path, scenario: str = "healthy", *, dataplane: dict[str, Any] | None = None, **kw: Any) -> Sandbox:
    kw.setdefault("speed", sandboxes.TEST_SPEED)
    sc = load(scenario, workers=kw.pop("workers", None), servers=kw.pop("servers", None))
    if dataplane:
        sc = dataclasses.replace(sc, dataplane={**sc.dataplane, **dataplane})
    sb = Sandbox(state_dir, sc, net=free_net(sandboxes._start_net()), **kw)
    orig = KubeCluster.bootstrap

    def bootstrap(cluster: KubeCluster) -> None:
        if cluster is sb.cluster and not isinstance(cluster.host_network, DataPlane):
            dp = DataPlane(cluster, ca=sb.ca, extras=sb.extras).attach()
            sb.dataplane = dp  # type: ignore[attr-defined]
            sb._stopping.append(dp.stop)
        orig(cluster)

    KubeCluster.bootstrap = bootstrap  # type: ignore[method-assign]
    try:
        sb.start()
    finally:
        KubeCluster.bootstrap = orig  # type: ignore[method-assign]
    if getattr(sb, "dataplane", None) is None:
        sb.dataplane = sb.cluster.host_network  # type: ignore[attr-defined, union-attr]
    return sb


def node_ip(sb: Sandbox, node: str) -> str:
    return sb.addresses.host_lookup()[node]


def wait_for(pred, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


HTTP = urllib3.PoolManager(retries=False)


def get(ip: str, port: int, path: str = "/", host: str | None = None, timeout: float = 5.0, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    h = dict(headers or {})
    if host:
        h["Host"] = host
    return HTTP.request("GET", f"http://{ip}:{port}{path}", headers=h, timeout=timeout, retries=False, redirect=False)


def create(sb: Sandbox, objs: list[dict[str, Any]]) -> None:
    api = sb.kube_client()
    try:
        for o in objs:
            utils.create_from_dict(api, o, namespace=o.get("metadata", {}).get("namespace"))
    finally:
        api.close()


def pods(sb: Sandbox, ns: str, selector: str = "") -> list[Any]:
    api = sb.kube_client()
    try:
        return client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=selector).items
    finally:
        api.close()


def ready(p: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])


def wait_ready(sb: Sandbox, ns: str, selector: str, count: int, timeout: float = 20.0) -> list[Any]:
    return wait_for(lambda: (lambda ps: ps if len(ps) == count and all(ready(p) for p in ps) else None)(pods(sb, ns, selector)), timeout, 0.1, f"{count} ready pods {selector}")


# --- manifests ---------------------------------------------------------------------------------


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def hostnet_daemonset(name: str, image: str, port: int, ns: str = "keybuzz", probe: bool = True) -> dict[str, Any]:
    labels = {"app": name}
    c: dict[str, Any] = {"name": name.split("-")[-1], "image": image, "ports": [{"name": "http", "containerPort": port, "hostPort": port}]}
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 5, "timeoutSeconds": 2}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet", "nodeSelector": {"keybuzz.io/pool": "workers"}, "containers": [c]},
            },
        },
    }


def deployment(name: str, image: str, port: int, node: str, ns: str = "keybuzz", replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [{"name": name.split("-")[-1], "image": image, "ports": [{"name": "http", "containerPort": port}], "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}],
                },
            },
        },
    }


def service(name: str, port: int, ns: str = "keybuzz", *, nodeport: int | None = None, local: bool = False, selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": selector or {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}
    if nodeport is not None:
        spec["type"] = "NodePort"
        spec["ports"][0]["nodePort"] = nodeport
        spec["externalTrafficPolicy"] = "Local" if local else "Cluster"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ingress(name: str, rules: dict[str, tuple[str, int]], ns: str = "keybuzz", annotations: dict[str, str] | None = None, tls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ingressClassName": "nginx",
        "rules": [
            {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": port}}}}]}}
            for host, (svc, port) in rules.items()
        ],
    }
    if tls:
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}}, "spec": spec}


def keybuzz_hostnetwork(ns: str = "keybuzz", api_image: str = API_IMAGE, front_image: str = FRONT_IMAGE) -> list[dict[str, Any]]:
    """The runbook's fix: hostNetwork DaemonSets, NodePort Services, one Ingress for both hosts."""
    return [
        namespace(ns),
        hostnet_daemonset("keybuzz-api", api_image, 8080, ns),
        hostnet_daemonset("keybuzz-front", front_image, 3000, ns),
        service("keybuzz-api", 8080, ns, nodeport=30080),
        service("keybuzz-front", 3000, ns, nodeport=30000),
        ingress("keybuzz", {"platform.keybuzz.io": ("keybuzz-front", 3000), "platform-api.keybuzz.io": ("keybuzz-api", 8080)}, ns),
    ]


def keybuzz_clusterip(node: str, ns: str = "keybuzz-old", api_port: int = 8080, connect_timeout: str = "5") -> list[dict[str, Any]]:
    """The install that broke in production: Deployments on the overlay behind ClusterIP Services."""
    ann = {"nginx.ingress.kubernetes.io/proxy-connect-timeout": connect_timeout}
    return [
        namespace(ns),
        deployment("keybuzz-api", API_IMAGE, api_port, node, ns),
        deployment("keybuzz-front", FRONT_IMAGE, 3000, node, ns),
        service("keybuzz-api", api_port, ns),
        service("keybuzz-front", 3000, ns),
        ingress("keybuzz", {"old.keybuzz.io": ("keybuzz-front", 3000), "old-api.keybuzz.io": ("keybuzz-api", api_port)}, ns, annotations=ann),
    ]


def run_debug_pod(sb: Sandbox, name: str, node: str, script: str, ns: str = "default", image: str = "busybox:1.36", **spec: Any) -> tuple[str, str]:
    """A one-shot busybox pod pinned to a node (what a doctor runs); returns (log, phase)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "restartPolicy": "Never", "containers": [{"name": "sh", "image": image, "command": ["sh", "-c", script]}], **spec},
    }
    create(sb, [pod])
    api = sb.kube_client()
    try:
        core = client.CoreV1Api(api)
        phase = wait_for(lambda: (lambda p: p if p in ("Succeeded", "Failed") else None)(core.read_namespaced_pod(name, ns).status.phase), what=f"pod {name} to finish")
        return core.read_namespaced_pod_log(name, ns), phase
    finally:
        api.close()


def port_free(ip: str, port: int) -> bool:
    """Nothing listens on ip:port (TIME_WAIT leftovers of earlier tests do not count)."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
            s.listen(1)
        except OSError:
            return False
    return True
