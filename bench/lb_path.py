"""What the Load Balancer path costs, compared with hitting the pod directly, in one run.

Path A, "lb": the LB's public IPv4 port 80 with `Host: platform-api.keybuzz.io` -> the LB forwards
to a healthy worker's NodePort 31695 -> kube-proxy (externalTrafficPolicy Local) -> that worker's
ingress-nginx -> the keybuzz-api endpoint (a hostNetwork pod, dialled on node_ip:8080).
Path B, "direct" (the baseline): the hostNetwork pod's hostPort, node_ip:8080, round robin over
the five workers as the LB does.

Both paths are configured the production way (hcloud for the LB - through the sandbox's own
pre-install, the kubernetes client for the runbook's DaemonSet, NodePort Service and Ingress),
then driven by the same concurrent client: a pool of threads sharing keep-alive urllib3 pools.
The paths are measured alternately (direct, lb, direct, lb) so drift (CPU frequency, a noisy
neighbour) hits both; the report gives requests per second, p50 and p99 latency per path, and the
lb/direct ratios, plus the serial (one client thread) p50 of each path. Every hop is in this process on one event loop, and the client threads share the
GIL with it: the numbers describe the sandbox, not production, and are meant to catch a
regression in the sandbox's data plane (an LB hop that suddenly costs 10x), not to size servers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3

from keybuzz_tui.sandbox.runtime import Sandbox, free_net
from keybuzz_tui.sandbox.scenarios import load

HOST = "platform-api.keybuzz.io"
PATH = "/version"
WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]

# the LB, created at start by the sandbox's pre-install through hcloud (as in the outage scenario)
INSTALL = {
    "load_balancer": {
        "name": "bench-lb",
        "type": "lb11",
        "location": "fsn1",
        "network": "keybuzz-net",
        "services": [{"protocol": "http", "listen_port": 80, "destination_port": 31695}],
        "health_check": {"protocol": "http", "port": 31695, "path": "/healthz", "interval": 15, "timeout": 10, "retries": 3},
        "targets": [{"label_selector": "role=worker", "use_private_ip": True}],
    }
}


def _runbook_api() -> list[dict[str, Any]]:
    """The runbook's API half: hostNetwork DaemonSet on 8080, NodePort 30080, the Ingress."""
    labels = {"app": "keybuzz-api"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keybuzz"}},
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "keybuzz-api", "namespace": "keybuzz", "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "hostNetwork": True,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "nodeSelector": {"keybuzz.io/pool": "workers"},
                        "containers": [
                            {
                                "name": "api",
                                "image": "ghcr.io/keybuzz/api:1.4.2",
                                "ports": [{"name": "http", "containerPort": 8080, "hostPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "keybuzz-api", "namespace": "keybuzz"},
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": [{"name": "http", "port": 8080, "targetPort": 8080, "nodePort": 30080}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "keybuzz", "namespace": "keybuzz"},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": HOST,
                        "http": {
                            "paths": [
                                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "keybuzz-api", "port": {"number": 8080}}}}
                            ]
                        },
                    }
                ],
            },
        },
    ]


def _wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise RuntimeError(f"bench set-up: timed out waiting for {what}")


def _deploy(sb: Sandbox) -> None:
    from kubernetes import client, utils

    api = sb.kube_client()
    try:
        for obj in _runbook_api():
            utils.create_from_dict(api, obj, namespace=obj["metadata"].get("namespace"))
        apps = client.AppsV1Api(api)

        def ready() -> bool:
            st = apps.read_namespaced_daemon_set("keybuzz-api", "keybuzz").status
            return bool(st.number_ready == len(WORKERS) == st.desired_number_scheduled)

        _wait(ready, 60, "the keybuzz-api DaemonSet")
    finally:
        api.close()


@dataclasses.dataclass
class PathResult:
    name: str
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def _drive(targets: list[tuple[str, int]], requests: int, threads: int) -> tuple[list[float], float, int]:
    """`requests` GETs spread over `threads` threads; each thread walks the targets round robin on
    keep-alive pools (one per target, shared). Returns (latencies in s, wall time, errors)."""
    pools = {t: urllib3.HTTPConnectionPool(t[0], t[1], maxsize=threads, block=True, retries=False, timeout=10.0) for t in targets}
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        for i in counter:  # the shared iterator hands each request number out once
            pool = pools[targets[i % len(targets)]]
            t0 = time.perf_counter()
            try:
                r = pool.request("GET", PATH, headers={"Host": HOST})
                ok = r.status == 200 and r.data.startswith(b"{")
            except urllib3.exceptions.HTTPError:
                ok = False
            mine.append(time.perf_counter() - t0)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors += bad

    started = time.perf_counter()
    ts = [threading.Thread(target=worker, name=f"bench-client-{k}") for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - started
    for p in pools.values():
        p.close()
    return latencies, wall, errors


@contextlib.contextmanager
def gc_pauses(out: list[float], threshold: float = 0.005) -> Any:
    """Record the interpreter's garbage-collection pauses longer than `threshold` (seconds). The
    sandbox shares the process (and its large heap: the kubernetes client, the OpenAPI documents,
    the store) with the client, so a full collection stops every hop at once: that, not the data
    plane, is what the concurrent p99 usually shows, and the report says how much of it there was."""
    started: list[float] = []

    def cb(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            d = time.perf_counter() - started[0]
            if d > threshold:
                out.append(d)

    gc.callbacks.append(cb)
    try:
        yield out
    finally:
        gc.callbacks.remove(cb)


def run(requests: int = 400, rounds: int = 2, threads: int = 8, warmup: int = 50, serial: int = 200) -> dict[str, Any]:
    sc = dataclasses.replace(load("healthy"), install=INSTALL)
    out: dict[str, Any] = {"requests_per_path": requests * rounds, "threads": threads, "rounds": rounds}
    with tempfile.TemporaryDirectory() as d, Sandbox(d, sc, net=free_net(160), speed=25) as sb:
        _deploy(sb)
        lb = sb.extras["install"]
        lb_id, lb_ip = lb["load_balancer_id"], lb["load_balancer_ipv4"]
        _wait(
            lambda: set(sb.call(sb.lb_plane.target_health, lb_id, 80).values()) == {"healthy"}
            and len(sb.call(sb.lb_plane.target_health, lb_id, 80)) == len(WORKERS),
            30,
            "every LB target healthy",
        )
        lb_port = sb.call(sb.lb_plane.effective_ports, lb_id)[80]
        paths = {
            "direct": [(sb.addresses.host_lookup()[w], 8080) for w in WORKERS],
            "lb": [(lb_ip, lb_port)],
        }
        out["lb_address"] = f"{lb_ip}:{lb_port}"
        samples: dict[str, PathResult] = {name: PathResult(name, [], 0.0, 0) for name in paths}
        for targets in paths.values():  # warm-up: connections, caches
            _drive(targets, warmup, threads)
        pauses: list[float] = []
        with gc_pauses(pauses):
            for _ in range(rounds):
                for name, targets in paths.items():
                    lat, wall, errors = _drive(targets, requests, threads)
                    res = samples[name]
                    res.latencies += lat
                    res.seconds += wall
                    res.errors += errors
        out["gc_pauses_over_5ms"] = len(pauses)
        out["gc_pause_max_ms"] = round(1000 * max(pauses, default=0.0), 1)
        for name, res in samples.items():
            out[f"{name}_rps"] = round(res.rps, 1)
            out[f"{name}_p50_ms"] = round(1000 * res.quantile(0.5), 3)
            out[f"{name}_p99_ms"] = round(1000 * res.quantile(0.99), 3)
            out[f"{name}_mean_ms"] = round(1000 * statistics.fmean(res.latencies), 3)
            out[f"{name}_errors"] = res.errors
        # the same with one client thread: the pure cost of the hops, without queueing behind the
        # GIL and the saturated sandbox loop (what the concurrent p99 mostly measures)
        for name, targets in paths.items():
            lat, _, _ = _drive(targets, serial, 1)
            out[f"{name}_serial_p50_ms"] = round(1000 * statistics.median(lat), 3)
        out["ratio_serial_p50_lb_over_direct"] = round(out["lb_serial_p50_ms"] / out["direct_serial_p50_ms"], 2)
        d_, l_ = samples["direct"], samples["lb"]
        out["ratio_rps_lb_over_direct"] = round(l_.rps / d_.rps, 3) if d_.rps else None
        out["ratio_p50_lb_over_direct"] = round(l_.quantile(0.5) / d_.quantile(0.5), 2) if d_.quantile(0.5) else None
        out["ratio_p99_lb_over_direct"] = round(l_.quantile(0.99) / d_.quantile(0.99), 2) if d_.quantile(0.99) else None
    return out


def main() -> None:
    print(json.dumps({"lb_path": run()}, indent=2))


if __name__ == "__main__":
    main()
