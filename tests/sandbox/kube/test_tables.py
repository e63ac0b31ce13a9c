"""Server-side printing: the Table cells must be what a real apiserver sends to `kubectl get`.

Expected cells come from kubernetes pkg/printers/internalversion/printers.go (quirks included);
the last test serves the Tables to the real kubectl binary over loopback and reads its output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import kubernetes.client as k8s
import pytest

from keybuzz_tui.sandbox.kube import registry, tables
from keybuzz_tui.sandbox.kube.errors import ApiError

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
KUBECTL_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


def ago(seconds: float, now: datetime = NOW) -> str:
    return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age_s: float = 300, namespace: str | None = "default", **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "creationTimestamp": ago(age_s),
        "resourceVersion": "42",
        "uid": f"uid-{name}",
    }
    if namespace:
        m["namespace"] = namespace
    m.update(extra)
    return m


def rt_for(kind: str) -> registry.ResourceType:
    return next(t for t in registry.all_types() if t.kind == kind)


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    table = tables.to_table(rt_for(kind), [obj], now=NOW)
    return table["rows"][0]["cells"]


def headers(kind: str, wide: bool = False) -> list[str]:
    """Column names as kubectl prints them (upper-cased, priority>0 only with -o wide)."""
    cols = tables.column_definitions(rt_for(kind))
    return [c["name"].upper() for c in cols if wide or c["priority"] == 0]


# --------------------------------------------------------------------------------------------
# AGE formatting (duration.HumanDuration)
# --------------------------------------------------------------------------------------------

S, M, H, D = 1, 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-3, "<invalid>"),
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (59, "59s"),
        (119.9, "119s"),
        (2 * M, "2m"),
        (3 * M + 12, "3m12s"),
        (9 * M + 59, "9m59s"),
        (10 * M + 30, "10m"),
        (179 * M, "179m"),
        (3 * H, "3h"),
        (3 * H + 5 * M, "3h5m"),
        (7 * H + 59 * M + 59, "7h59m"),
        (8 * H + 30 * M, "8h"),
        (47 * H + 59 * M, "47h"),
        (2 * D, "2d"),
        (2 * D + 3 * H, "2d3h"),
        (7 * D + 23 * H, "7d23h"),
        (8 * D, "8d"),
        (729 * D, "729d"),
        (730 * D, "2y"),
        (735 * D, "2y5d"),
        (365 * 8 * D, "8y"),
        (365 * 10 * D + 100 * D, "10y"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert tables.human_duration(timedelta(seconds=seconds)) == expected


def test_missing_timestamps_print_unknown() -> None:
    assert tables.translate_timestamp_since(None, NOW) == "<unknown>"
    assert tables.translate_timestamp_since("", NOW) == "<unknown>"
    assert tables.translate_timestamp_since("2025-06-01T11:59:48.123456Z", NOW) == "11s"


# --------------------------------------------------------------------------------------------
# Namespace, Node
# --------------------------------------------------------------------------------------------


def test_namespace() -> None:
    assert headers("Namespace") == ["NAME", "STATUS", "AGE"]
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta("keybuzz", 2 * D + 3 * H, None),
        "status": {"phase": "Active"},
    }
    assert cells("Namespace", ns) == ["keybuzz", "Active", "2d3h"]
    ns["status"]["phase"] = "Terminating"
    assert cells("Namespace", ns)[1] == "Terminating"


K3S_SERVER_LABELS = {
    "kubernetes.io/hostname": "k3s-server-1",
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/etcd": "true",
    "node-role.kubernetes.io/master": "true",
}


def node(
    name: str, ready: str | None = "True", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": "KubeletReady"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(name, 30 * D, None, labels=labels or {}),
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.100"},
                {"type": "ExternalIP", "address": "203.0.113.10"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.4+k3s1",
                "osImage": "Ubuntu 24.04.1 LTS",
                "kernelVersion": "6.8.0-45-generic",
                "containerRuntimeVersion": "containerd://1.7.23-k3s2",
            },
        },
    }


def test_node_columns() -> None:
    assert headers("Node") == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert headers("Node", wide=True)[5:] == [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]


def test_notready_control_plane_node_with_k3s_roles() -> None:
    n = node("k3s-server-1", ready="Unknown", labels=K3S_SERVER_LABELS)
    assert cells("Node", n) == [
        "k3s-server-1",
        "NotReady",
        "control-plane,etcd,master",
        "30d",
        "v1.32.4+k3s1",
        "10.0.0.100",
        "203.0.113.10",
        "Ubuntu 24.04.1 LTS",
        "6.8.0-45-generic",
        "containerd://1.7.23-k3s2",
    ]
    assert cells("Node", node("w", ready="False"))[1] == "NotReady"


def test_node_status_variants() -> None:
    assert cells("Node", node("w1", unschedulable=True))[1:3] == ["Ready,SchedulingDisabled", "<none>"]
    assert cells("Node", node("w2", ready=None))[1] == "Unknown"
    assert cells("Node", node("w3", ready=None, unschedulable=True))[1] == "Unknown,SchedulingDisabled"
    assert (
        cells("Node", node("w4", labels={"kubernetes.io/role": "worker", "node-role.kubernetes.io/": ""}))[2]
        == "worker"
    )
    bare = node("w5")
    bare["status"] = {}
    assert cells("Node", bare)[1:] == [
        "Unknown",
        "<none>",
        "30d",
        "",
        "<none>",
        "<none>",
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]


# --------------------------------------------------------------------------------------------
# Pod
# --------------------------------------------------------------------------------------------


def pod(
    name: str = "api-x7k2p",
    *,
    phase: str = "Running",
    containers: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    node_name: str | None = "k3s-worker-1",
    pod_ip: str | None = "10.0.0.110",
    age_s: float = 5 * M,
    **status_extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": containers or [{"name": "api", "image": "ghcr.io/keybuzz/api:1.4.2"}]
    }
    if init:
        spec["initContainers"] = init
    if node_name:
        spec["nodeName"] = node_name
    status: dict[str, Any] = {"phase": phase, **status_extra}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, age_s), "spec": spec, "status": status}


def cstatus(
    name: str = "api",
    *,
    ready: bool = False,
    restarts: int = 0,
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "image": "img",
        "imageID": "",
        "state": state or {},
    }
    if last is not None:
        s["lastState"] = last
    s.update(extra)
    return s


RUNNING = {"running": {"startedAt": ago(60)}}
READY_CONDS = [
    {"type": "Initialized", "status": "True"},
    {"type": "Ready", "status": "True"},
    {"type": "PodScheduled", "status": "True"},
]


def test_pod_columns() -> None:
    assert headers("Pod") == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert headers("Pod", wide=True)[5:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]


def test_pod_crashloopbackoff_with_restarts() -> None:
    p = pod(
        statuses=[
            cstatus(
                restarts=3,
                state={
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 40s restarting failed container",
                    }
                },
                last={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(12)}},
            )
        ],
        conditions=[{"type": "Ready", "status": "False"}],
    )
    assert cells("Pod", p) == [
        "api-x7k2p",
        "0/1",
        "CrashLoopBackOff",
        "3 (12s ago)",
        "5m",
        "10.0.0.110",
        "k3s-worker-1",
        "<none>",
        "<none>",
    ]


def test_pod_pending_unscheduled() -> None:
    p = pod(
        "ingress-nginx-controller-9xk2l",
        phase="Pending",
        node_name=None,
        pod_ip=None,
        age_s=3 * M + 12,
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
    )
    assert cells("Pod", p) == [
        "ingress-nginx-controller-9xk2l",
        "0/1",
        "Pending",
        "0",
        "3m12s",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]


@pytest.mark.parametrize(
    "reason", ["ContainerCreating", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"]
)
def test_pod_waiting_reasons(reason: str) -> None:
    p = pod(phase="Pending", statuses=[cstatus(state={"waiting": {"reason": reason}})])
    assert cells("Pod", p)[1:4] == ["0/1", reason, "0"]


def test_pod_running_ready_two_containers() -> None:
    p = pod(
        containers=[{"name": "api", "image": "a"}, {"name": "proxy", "image": "b"}],
        statuses=[
            cstatus("api", ready=True, state=RUNNING),
            cstatus("proxy", ready=True, state=RUNNING, restarts=1),
        ],
        conditions=READY_CONDS,
    )
    # a restart without a recorded termination time prints without "(… ago)"
    assert cells("Pod", p)[1:4] == ["2/2", "Running", "1"]


def test_pod_first_container_state_wins_status() -> None:
    p = pod(
        containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
        statuses=[
            cstatus("a", state={"waiting": {"reason": "ErrImagePull"}}),
            cstatus("b", state={"waiting": {"reason": "CrashLoopBackOff"}}),
        ],
    )
    assert cells("Pod", p)[2] == "ErrImagePull"


def test_pod_restarts_take_latest_termination_across_containers() -> None:
    p = pod(
        containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
        statuses=[
            cstatus(
                "a",
                ready=True,
                state=RUNNING,
                restarts=2,
                last={"terminated": {"exitCode": 1, "finishedAt": ago(3 * H)}},
            ),
            cstatus(
                "b",
                ready=True,
                state=RUNNING,
                restarts=5,
                last={"terminated": {"exitCode": 137, "finishedAt": ago(95)}},
            ),
        ],
        conditions=READY_CONDS,
    )
    assert cells("Pod", p)[1:4] == ["2/2", "Running", "7 (95s ago)"]


def test_pod_init_progress() -> None:
    init = [{"name": "migrate", "image": "m"}, {"name": "wait-db", "image": "w"}]
    first_running = pod(
        phase="Pending",
        init=init,
        init_statuses=[
            cstatus("migrate", state=RUNNING),
            cstatus("wait-db", state={"waiting": {"reason": "PodInitializing"}}),
        ],
        statuses=[cstatus(state={"waiting": {"reason": "PodInitializing"}})],
    )
    assert cells("Pod", first_running)[1:4] == ["0/1", "Init:0/2", "0"]
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    second = pod(
        phase="Pending",
        init=init,
        init_statuses=[cstatus("migrate", state=done), cstatus("wait-db", state=RUNNING)],
        statuses=[cstatus(state={"waiting": {"reason": "PodInitializing"}})],
    )
    assert cells("Pod", second)[2] == "Init:1/2"


def test_pod_init_failures() -> None:
    init = [{"name": "migrate", "image": "m"}]
    crash = pod(
        phase="Pending",
        init=init,
        init_statuses=[
            cstatus(
                "migrate",
                restarts=4,
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                last={"terminated": {"exitCode": 1, "finishedAt": ago(30)}},
            )
        ],
        statuses=[cstatus(state={"waiting": {"reason": "PodInitializing"}})],
    )
    # while initializing, init container restarts count and the main container is not looked at
    assert cells("Pod", crash)[1:4] == ["0/1", "Init:CrashLoopBackOff", "4 (30s ago)"]
    err = pod(
        phase="Pending",
        init=init,
        init_statuses=[cstatus("migrate", state={"terminated": {"exitCode": 2, "reason": "Error"}})],
    )
    assert cells("Pod", err)[2] == "Init:Error"
    bare = pod(
        phase="Pending", init=init, init_statuses=[cstatus("migrate", state={"terminated": {"exitCode": 2}})]
    )
    assert cells("Pod", bare)[2] == "Init:ExitCode:2"
    sig = pod(
        phase="Pending",
        init=init,
        init_statuses=[cstatus("migrate", state={"terminated": {"exitCode": 137, "signal": 9}})],
    )
    assert cells("Pod", sig)[2] == "Init:Signal:9"


def test_pod_sidecar_counts_as_container() -> None:
    init = [{"name": "log-shipper", "image": "l", "restartPolicy": "Always"}]
    p = pod(
        init=init,
        init_statuses=[
            cstatus(
                "log-shipper",
                ready=True,
                started=True,
                state=RUNNING,
                restarts=1,
                last={"terminated": {"exitCode": 1, "finishedAt": ago(40)}},
            )
        ],
        statuses=[cstatus(ready=True, state=RUNNING)],
        conditions=READY_CONDS,
    )
    assert cells("Pod", p)[1:4] == ["2/2", "Running", "1 (40s ago)"]


def test_pod_completed_and_failed_carry_row_conditions() -> None:
    done = pod(
        "job-abc",
        phase="Succeeded",
        statuses=[cstatus(state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
    )
    table = tables.to_table(rt_for("Pod"), [done], now=NOW)
    row = table["rows"][0]
    assert row["cells"][1:4] == ["0/1", "Completed", "0"]
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = pod(
        "job-def",
        phase="Failed",
        statuses=[cstatus(state={"terminated": {"exitCode": 1, "reason": "Error"}})],
    )
    row = tables.to_table(rt_for("Pod"), [failed], now=NOW)["rows"][0]
    assert row["cells"][2] == "Error"
    assert row["conditions"][0]["reason"] == "Failed"
    running = tables.to_table(rt_for("Pod"), [pod()], now=NOW)["rows"][0]
    assert "conditions" not in running


def test_pod_completed_with_a_running_container() -> None:
    p = pod(
        containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}],
        statuses=[
            cstatus("a", state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
            cstatus("b", ready=True, state=RUNNING),
        ],
        conditions=[{"type": "Ready", "status": "False"}],
    )
    assert cells("Pod", p)[1:3] == ["1/2", "NotReady"]
    p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert cells("Pod", p)[2] == "Running"


def test_pod_terminating_unknown_and_evicted() -> None:
    p = pod(statuses=[cstatus(ready=True, state=RUNNING)], conditions=READY_CONDS)
    p["metadata"]["deletionTimestamp"] = ago(5)
    assert cells("Pod", p)[2] == "Terminating"
    p["status"]["reason"] = "NodeLost"
    assert cells("Pod", p)[2] == "Unknown"
    done = pod(
        phase="Succeeded", statuses=[cstatus(state={"terminated": {"exitCode": 0, "reason": "Completed"}})]
    )
    done["metadata"]["deletionTimestamp"] = ago(5)
    assert cells("Pod", done)[2] == "Completed"
    evicted = pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory.")
    assert cells("Pod", evicted)[2] == "Evicted"
    gated = pod(
        phase="Pending",
        node_name=None,
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert cells("Pod", gated)[2] == "SchedulingGated"


def test_pod_wide_columns() -> None:
    p = pod(
        statuses=[cstatus(ready=True, state=RUNNING)],
        conditions=[*READY_CONDS, {"type": "example.com/lb", "status": "True"}],
        nominatedNodeName="k3s-worker-2",
    )
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
    assert cells("Pod", p)[5:] == ["10.0.0.110", "k3s-worker-1", "k3s-worker-2", "1/2"]
    only_ips = pod(pod_ip=None)
    only_ips["status"]["podIPs"] = [{"ip": "10.42.3.7"}, {"ip": "fd00::7"}]
    assert cells("Pod", only_ips)[5] == "10.42.3.7"


# --------------------------------------------------------------------------------------------
# Service, Endpoints, EndpointSlice
# --------------------------------------------------------------------------------------------


def service(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, 12 * D),
        "spec": spec,
        "status": status or {"loadBalancer": {}},
    }


def test_service_columns() -> None:
    assert headers("Service") == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert headers("Service", wide=True)[6:] == ["SELECTOR"]


def test_nodeport_service() -> None:
    svc = service(
        "ingress-nginx-controller",
        {
            "type": "NodePort",
            "clusterIP": "10.43.12.34",
            "clusterIPs": ["10.43.12.34"],
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": 31695},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "nodePort": 32720},
            ],
            "selector": {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "controller",
            },
        },
    )
    assert cells("Service", svc) == [
        "ingress-nginx-controller",
        "NodePort",
        "10.43.12.34",
        "<none>",
        "80:31695/TCP,443:32720/TCP",
        "12d",
        "app.kubernetes.io/component=controller,app.kubernetes.io/name=ingress-nginx",
    ]


def test_service_types() -> None:
    headless = service(
        "db",
        {
            "type": "ClusterIP",
            "clusterIP": "None",
            "clusterIPs": ["None"],
            "ports": [{"port": 5432, "protocol": "TCP"}],
            "selector": {"app": "db"},
        },
    )
    assert cells("Service", headless)[1:5] == ["ClusterIP", "None", "<none>", "5432/TCP"]
    pending = service(
        "traefik",
        {
            "type": "LoadBalancer",
            "clusterIP": "10.43.0.20",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}],
        },
    )
    assert cells("Service", pending)[3:] == ["<pending>", "80:30080/TCP", "12d", "<none>"]
    lb = service(
        "traefik",
        {
            "type": "LoadBalancer",
            "clusterIP": "10.43.0.20",
            "externalIPs": ["198.51.100.9"],
            "ports": [{"port": 443, "protocol": "TCP", "nodePort": 30443}],
        },
        {
            "loadBalancer": {
                "ingress": [
                    {"ip": "10.0.0.111"},
                    {"ip": "10.0.0.110"},
                    {"hostname": "lb.example.com"},
                    {"ip": "10.0.0.110"},
                ]
            }
        },
    )
    assert cells("Service", lb)[3] == "10.0.0.110,10.0.0.111,lb.example.com,198.51.100.9"
    ext = service("mail", {"type": "ExternalName", "externalName": "smtp.example.com"})
    assert cells("Service", ext)[1:5] == ["ExternalName", "<none>", "smtp.example.com", "<none>"]
    udp = service(
        "dns",
        {
            "type": "ClusterIP",
            "clusterIP": "10.43.0.10",
            "ports": [
                {"port": 53, "protocol": "UDP"},
                {"port": 53, "protocol": "TCP"},
                {"port": 9153, "protocol": "TCP"},
            ],
        },
    )
    assert cells("Service", udp)[4] == "53/UDP,53/TCP,9153/TCP"


def endpoints(subsets: list[dict[str, Any]] | None) -> dict[str, Any]:
    ep: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("api", 7 * M)}
    if subsets is not None:
        ep["subsets"] = subsets
    return ep


def addrs(*ips: str) -> list[dict[str, str]]:
    return [{"ip": ip} for ip in ips]


def test_endpoints() -> None:
    assert headers("Endpoints") == ["NAME", "ENDPOINTS", "AGE"]
    five = endpoints(
        [
            {
                "addresses": addrs(*(f"10.0.0.11{i}" for i in range(5))),
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        ]
    )
    assert cells("Endpoints", five) == [
        "api",
        "10.0.0.110:8080,10.0.0.111:8080,10.0.0.112:8080 + 2 more...",
        "7m",
    ]
    three = endpoints([{"addresses": addrs("10.42.0.5", "10.42.1.5", "10.42.2.5"), "ports": [{"port": 80}]}])
    assert cells("Endpoints", three)[1] == "10.42.0.5:80,10.42.1.5:80,10.42.2.5:80"
    # one entry per (port, address), port-major; the count multiplies too
    two_ports = endpoints(
        [
            {
                "addresses": addrs("10.42.0.5", "10.42.1.5"),
                "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
            }
        ]
    )
    assert cells("Endpoints", two_ports)[1] == "10.42.0.5:80,10.42.1.5:80,10.42.0.5:443 + 1 more..."
    assert cells("Endpoints", endpoints(None))[1] == "<none>"
    assert cells("Endpoints", endpoints([]))[1] == "<none>"
    not_ready_only = endpoints([{"notReadyAddresses": addrs("10.42.0.5"), "ports": [{"port": 80}]}])
    assert cells("Endpoints", not_ready_only)[1] == ""
    headless = endpoints([{"addresses": addrs("10.42.0.5", "fd00::5")}])
    assert cells("Endpoints", headless)[1] == "10.42.0.5,fd00::5"
    v6 = endpoints([{"addresses": addrs("fd00::5"), "ports": [{"port": 80}]}])
    assert cells("Endpoints", v6)[1] == "[fd00::5]:80"


def slice_(ports: list[dict[str, Any]] | None, eps: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("api-7xk2q", 7 * M, labels={"kubernetes.io/service-name": "api"}),
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": eps,
    }


def test_endpointslice() -> None:
    assert headers("EndpointSlice") == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    eps = [
        {"addresses": [f"10.0.0.11{i}"], "conditions": {"ready": True}, "nodeName": f"k3s-worker-{i}"}
        for i in range(5)
    ]
    es = slice_(
        [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "https", "port": 8443, "protocol": "TCP"},
        ],
        eps,
    )
    assert cells("EndpointSlice", es) == [
        "api-7xk2q",
        "IPv4",
        "8080,8443",
        "10.0.0.110,10.0.0.111,10.0.0.112 + 2 more...",
        "7m",
    ]
    assert cells("EndpointSlice", slice_(None, None))[2:4] == ["<unset>", "<unset>"]
    many = slice_([{"port": 1}, {"name": "metrics"}, {}, {"port": 4}, {"port": 5}], [])
    assert cells("EndpointSlice", many)[2:4] == ["1,metrics,* + 2 more...", "<unset>"]


# --------------------------------------------------------------------------------------------
# Secret, ConfigMap, ServiceAccount, Event
# --------------------------------------------------------------------------------------------


def test_secret_configmap_serviceaccount() -> None:
    assert headers("Secret") == ["NAME", "TYPE", "DATA", "AGE"]
    assert headers("ConfigMap") == ["NAME", "DATA", "AGE"]
    assert headers("ServiceAccount") == ["NAME", "SECRETS", "AGE"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("api-tls", 90 * D),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "eA==", "tls.key": "eA=="},
    }
    assert cells("Secret", secret) == ["api-tls", "kubernetes.io/tls", 2, "90d"]
    empty = {"apiVersion": "v1", "kind": "Secret", "metadata": meta("empty", 1), "type": "Opaque"}
    assert cells("Secret", empty) == ["empty", "Opaque", 0, "1s"]
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("kube-root-ca.crt", 40 * D),
        "data": {"ca.crt": "x"},
        "binaryData": {"blob": "AA=="},
    }
    assert cells("ConfigMap", cm) == ["kube-root-ca.crt", 2, "40d"]
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default", 40 * D)}
    assert cells("ServiceAccount", sa) == ["default", 0, "40d"]
    sa["secrets"] = [{"name": "default-token-abc"}]
    assert cells("ServiceAccount", sa)[1] == 1


def test_event_columns() -> None:
    assert headers("Event") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert headers("Event", wide=True) == [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "SUBOBJECT",
        "SOURCE",
        "MESSAGE",
        "FIRST SEEN",
        "COUNT",
        "NAME",
    ]


def test_event_failed_scheduling() -> None:
    ev = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("api-x7k2p.17f3a2b4c5d6e7f8", 10 * M),
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "api-x7k2p", "apiVersion": "v1"},
        "reason": "FailedScheduling",
        "message": "0/5 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 4 node(s) didn't satisfy plugin(s) [NodeAffinity].\n",
        "source": {"component": "default-scheduler"},
        "firstTimestamp": ago(10 * M),
        "lastTimestamp": ago(45),
        "count": 7,
        "type": "Warning",
    }
    assert cells("Event", ev) == [
        "45s",
        "Warning",
        "FailedScheduling",
        "pod/api-x7k2p",
        "",
        "default-scheduler",
        "0/5 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 4 node(s) didn't satisfy plugin(s) [NodeAffinity].",
        "10m",
        7,
        "api-x7k2p.17f3a2b4c5d6e7f8",
    ]


def test_event_new_api_shapes() -> None:
    kubelet = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("api.1", 2 * M),
        "involvedObject": {"kind": "Pod", "name": "api-x7k2p", "fieldPath": "spec.containers{api}"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container api in pod api-x7k2p_default(uid)",
        "source": {"component": "kubelet", "host": "k3s-worker-1"},
        "type": "Warning",
        "firstTimestamp": ago(2 * M),
        "lastTimestamp": None,
    }
    row = cells("Event", kubelet)
    assert row[:1] + row[4:6] + row[7:9] == ["2m", "spec.containers{api}", "kubelet, k3s-worker-1", "2m", 1]
    series = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("ds.2", 20 * M),
        "involvedObject": {"kind": "DaemonSet", "name": "api"},
        "reason": "SuccessfulCreate",
        "message": "Created pod: api-abcde",
        "type": "Normal",
        "eventTime": "2025-06-01T11:40:00.000000Z",
        "series": {"count": 4, "lastObservedTime": "2025-06-01T11:59:30.123456Z"},
        "reportingComponent": "daemonset-controller",
        "reportingInstance": "",
    }
    row = cells("Event", series)
    assert row == [
        "29s",
        "Normal",
        "SuccessfulCreate",
        "daemonset/api",
        "",
        "daemonset-controller",
        "Created pod: api-abcde",
        "20m",
        4,
        "ds.2",
    ]
    cluster = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("x", 1),
        "involvedObject": {"kind": "Node"},
        "type": "Normal",
    }
    assert cells("Event", cluster)[:4] == ["<unknown>", "Normal", "", "node"]


# --------------------------------------------------------------------------------------------
# apps/v1
# --------------------------------------------------------------------------------------------

TEMPLATE = {
    "metadata": {"labels": {"app": "api"}},
    "spec": {
        "containers": [
            {"name": "api", "image": "ghcr.io/keybuzz/api:1.4.2"},
            {"name": "metrics", "image": "prom/statsd-exporter:v0.26"},
        ],
        "nodeSelector": {"keybuzz.io/role": "worker", "kubernetes.io/os": "linux"},
    },
}


def test_daemonset_five_desired_four_ready() -> None:
    assert headers("DaemonSet") == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]
    assert headers("DaemonSet", wide=True)[8:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("api", 3 * H + 5 * M, generation=2),
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": TEMPLATE,
            "updateStrategy": {"type": "RollingUpdate"},
        },
        "status": {
            "desiredNumberScheduled": 5,
            "currentNumberScheduled": 5,
            "numberReady": 4,
            "updatedNumberScheduled": 5,
            "numberAvailable": 4,
            "numberMisscheduled": 0,
            "numberUnavailable": 1,
            "observedGeneration": 2,
        },
    }
    row = cells("DaemonSet", ds)
    assert row == [
        "api",
        5,
        5,
        4,
        5,
        4,
        "keybuzz.io/role=worker,kubernetes.io/os=linux",
        "3h5m",
        "api,metrics",
        "ghcr.io/keybuzz/api:1.4.2,prom/statsd-exporter:v0.26",
        "app=api",
    ]
    assert all(type(c) is int for c in row[1:6])  # int64 cells, not strings, not bools


def test_daemonset_without_status_or_node_selector() -> None:
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("svclb-traefik", 5),
        "spec": {"selector": {"matchLabels": {"app": "svclb"}}, "template": {"spec": {"containers": []}}},
    }
    assert cells("DaemonSet", ds) == ["svclb-traefik", 0, 0, 0, 0, 0, "<none>", "5s", "", "", "app=svclb"]


def test_deployment() -> None:
    assert headers("Deployment") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert headers("Deployment", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("coredns", 40 * D, "kube-system"),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"k8s-app": "kube-dns"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["b", "a"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "template": {
                "spec": {
                    "containers": [{"name": "coredns", "image": "rancher/mirrored-coredns-coredns:1.11.3"}]
                }
            },
        },
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    }
    assert cells("Deployment", deploy) == [
        "coredns",
        "2/3",
        3,
        2,
        "40d",
        "coredns",
        "rancher/mirrored-coredns-coredns:1.11.3",
        "!canary,k8s-app=kube-dns,tier in (a,b)",
    ]
    deploy["spec"].pop("replicas")
    deploy["spec"]["selector"] = {}
    deploy["status"] = {}
    assert cells("Deployment", deploy)[1:4] + cells("Deployment", deploy)[7:] == ["0/1", 0, 0, ""]
    deploy["spec"]["selector"] = {"matchExpressions": [{"key": "x", "operator": "Bogus"}]}
    assert cells("Deployment", deploy)[7] == "<invalid>"


def test_replicaset_and_statefulset() -> None:
    assert headers("ReplicaSet") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert headers("ReplicaSet", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta("coredns-ccb96694c", 40 * D, "kube-system"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"pod-template-hash": "ccb96694c", "k8s-app": "kube-dns"}},
            "template": {"spec": {"containers": [{"name": "coredns", "image": "c"}]}},
        },
        "status": {"replicas": 1, "readyReplicas": 1},
    }
    assert cells("ReplicaSet", rs) == [
        "coredns-ccb96694c",
        1,
        1,
        1,
        "40d",
        "coredns",
        "c",
        "k8s-app=kube-dns,pod-template-hash=ccb96694c",
    ]
    rs["spec"]["replicas"] = 0
    rs["status"] = {"replicas": 0}
    rs["spec"]["selector"] = {"matchExpressions": [{"key": "x", "operator": "Bogus"}]}
    assert cells("ReplicaSet", rs)[1:4] + cells("ReplicaSet", rs)[7:] == [0, 0, 0, "<error>"]
    assert headers("StatefulSet") == ["NAME", "READY", "AGE"]
    assert headers("StatefulSet", wide=True)[3:] == ["CONTAINERS", "IMAGES"]
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta("postgres", 9 * D),
        "spec": {
            "replicas": 1,
            "selector": {},
            "template": {"spec": {"containers": [{"name": "pg", "image": "postgres:16"}]}},
        },
        "status": {"replicas": 1},
    }
    assert cells("StatefulSet", sts) == ["postgres", "0/1", "9d", "pg", "postgres:16"]


def test_controllerrevision() -> None:
    assert headers("ControllerRevision") == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    cr = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta(
            "api-6d4b7c9f8",
            3 * H,
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "api",
                    "uid": "u",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        ),
        "revision": 3,
        "data": {},
    }
    assert cells("ControllerRevision", cr) == ["api-6d4b7c9f8", "daemonset.apps/api", 3, "3h"]
    cr["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": True}
    ]
    assert cells("ControllerRevision", cr)[1] == "pod/p"
    cr["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "api", "uid": "u"}
    ]
    assert cells("ControllerRevision", cr)[1] == "<none>"


# --------------------------------------------------------------------------------------------
# networking.k8s.io, coordination.k8s.io, default convertor
# --------------------------------------------------------------------------------------------


def test_ingress() -> None:
    assert headers("Ingress") == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta("keybuzz", 6 * D),
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["app.keybuzz.io"], "secretName": "tls"}],
            "rules": [
                {"host": "app.keybuzz.io"},
                {"host": "api.keybuzz.io"},
                {"http": {}},
                {"host": "admin.keybuzz.io"},
                {"host": "www.keybuzz.io"},
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.111"}, {"ip": "10.0.0.110"}]}},
    }
    # formatHosts: three hosts shown, the remainder counts *rules* (5 - 3), as upstream does
    assert cells("Ingress", ing) == [
        "keybuzz",
        "nginx",
        "app.keybuzz.io,api.keybuzz.io,admin.keybuzz.io + 2 more...",
        "10.0.0.110,10.0.0.111",
        "80, 443",
        "6d",
    ]
    plain = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta("x", 5),
        "spec": {"defaultBackend": {}},
        "status": {"loadBalancer": {}},
    }
    assert cells("Ingress", plain) == ["x", "<none>", "*", "", "80", "5s"]


def test_ingressclass_and_lease() -> None:
    assert headers("IngressClass") == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    ic = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": meta("nginx", 6 * D, None),
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }
    assert cells("IngressClass", ic) == ["nginx", "k8s.io/ingress-nginx", "<none>", "6d"]
    ic["spec"]["parameters"] = {
        "apiGroup": "k8s.example.com",
        "kind": "IngressParameters",
        "name": "external-lb",
    }
    assert cells("IngressClass", ic)[2] == "IngressParameters.k8s.example.com/external-lb"
    ic["spec"]["parameters"] = {
        "kind": "ConfigMap",
        "name": "nginx-params",
        "scope": "Namespace",
        "namespace": "ingress",
    }
    assert cells("IngressClass", ic)[2] == "ConfigMap/nginx-params"
    assert headers("Lease") == ["NAME", "HOLDER", "AGE"]
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta("k3s-worker-1", 30 * D, "kube-node-lease"),
        "spec": {"holderIdentity": "k3s-worker-1", "leaseDurationSeconds": 40},
    }
    assert cells("Lease", lease) == ["k3s-worker-1", "k3s-worker-1", "30d"]
    lease["spec"] = {}
    assert cells("Lease", lease)[1] == ""


def test_kind_without_a_printer_gets_the_default_convertor() -> None:
    rt = rt_for("SelfSubjectAccessReview")
    table = tables.to_table(
        rt,
        [
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {"name": "r", "creationTimestamp": "2025-06-01T10:00:00Z"},
            }
        ],
        now=NOW,
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["columnDefinitions"][1]["type"] == "date"
    assert table["rows"][0]["cells"] == ["r", "2025-06-01T10:00:00Z"]


# --------------------------------------------------------------------------------------------
# The Table envelope: metadata, includeObject, shape, client models
# --------------------------------------------------------------------------------------------


def sample(kind: str) -> dict[str, Any]:
    """A minimal object of every kind, enough for the shape checks."""
    rt = rt_for(kind)
    obj: dict[str, Any] = {
        "apiVersion": rt.api_version,
        "kind": kind,
        "metadata": meta(f"{kind.lower()}-1", 60, "default" if rt.namespaced else None, labels={"app": "x"}),
    }
    if kind == "EndpointSlice":
        obj["addressType"] = "IPv4"
    if kind == "Event":
        obj["involvedObject"] = {"kind": "Pod", "name": "p"}
    return obj


PRINTED_KINDS = [t.kind for t in registry.all_types() if t.kind != "SelfSubjectAccessReview"]


def test_every_registered_kind_has_a_printer() -> None:
    assert {(t.group, t.kind) for t in registry.all_types() if "list" in t.verbs} == set(tables.PRINTERS)


@pytest.mark.parametrize("kind", PRINTED_KINDS)
def test_table_shape(kind: str) -> None:
    table = tables.to_table(
        rt_for(kind), [sample(kind), sample(kind)], now=NOW, list_meta={"resourceVersion": "1234"}
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "1234"}
    cols = table["columnDefinitions"]
    for col in cols:
        assert list(col) == ["name", "type", "format", "description", "priority"]
        assert col["type"] in ("string", "integer", "date", "number", "boolean")
        assert col["format"] in ("", "name") and col["priority"] in (0, 1) and col["description"]
    assert [c["format"] for c in cols].count("name") == 1
    assert len(table["rows"]) == 2
    for row in table["rows"]:
        assert len(row["cells"]) == len(cols)
        assert all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in row["cells"])
        assert row["object"]["kind"] == "PartialObjectMetadata"
        k8s.V1ObjectMeta.from_dict(row["object"]["metadata"])
    json.dumps(table)  # plain JSON all the way down


def test_include_object_modes() -> None:
    p = pod(statuses=[cstatus(ready=True, state=RUNNING)], conditions=READY_CONDS)
    rt = rt_for("Pod")
    meta_row = tables.to_table(rt, [p], now=NOW)["rows"][0]["object"]
    assert meta_row == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": p["metadata"],
    }
    assert tables.to_table(rt, [p], now=NOW, include_object="")["rows"][0]["object"] == meta_row
    beta = tables.to_table(rt, [p], now=NOW, table_version="v1beta1")
    assert beta["apiVersion"] == "meta.k8s.io/v1beta1"
    assert beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    full = tables.to_table(rt, [p], now=NOW, include_object="Object")["rows"][0]["object"]
    assert full is p
    assert k8s.V1Pod.from_dict(full).status.container_statuses[0].ready is True
    none = tables.to_table(rt, [p], now=NOW, include_object="None")
    assert none["rows"][0]["object"] is None
    assert '"object": null' in json.dumps(none)
    bare = {"metadata": meta("no-type-meta")}
    assert (
        tables.to_table(rt_for("ConfigMap"), [bare], now=NOW, include_object="Object")["rows"][0]["object"][
            "kind"
        ]
        == "ConfigMap"
    )


def test_bad_include_object_is_the_apiservers_400() -> None:
    with pytest.raises(ApiError) as err:
        tables.to_table(rt_for("Pod"), [], include_object="Everything")
    assert err.value.code == 400
    assert err.value.status()["reason"] == "BadRequest"
    assert err.value.message == (
        'Unable to convert to Table as requested: includeObject: Invalid value: "Everything": '
        "must be 'Metadata', 'Object', 'None', or empty"
    )


def test_table_metadata_and_headers() -> None:
    rt = rt_for("Pod")
    empty = tables.to_table(rt, [], now=NOW, list_meta={"resourceVersion": "77"})
    assert empty["rows"] == [] and empty["metadata"] == {"resourceVersion": "77"}
    page = tables.to_table(
        rt,
        [pod()],
        now=NOW,
        list_meta={"resourceVersion": "77", "continue": "eyJ2IjoxfQ", "remainingItemCount": 12},
    )
    assert page["metadata"] == {"resourceVersion": "77", "continue": "eyJ2IjoxfQ", "remainingItemCount": 12}
    single = tables.to_table(rt, [pod()], now=NOW)
    assert single["metadata"] == {"resourceVersion": "42"}
    watch_event = tables.to_table(rt, [pod()], now=NOW, no_headers=True)
    assert watch_event["columnDefinitions"] is None and len(watch_event["rows"][0]["cells"]) == 9
    a = tables.to_table(rt, [pod()], now=NOW)["columnDefinitions"]
    a[0]["name"] = "mutated"
    assert tables.to_table(rt, [pod()], now=NOW)["columnDefinitions"][0]["name"] == "Name"


def test_age_defaults_to_the_current_time() -> None:
    fresh = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    age = tables.to_table(rt_for("ConfigMap"), [fresh])["rows"][0]["cells"][2]
    assert age in ("0s", "1s", "2s")


def test_the_python_client_has_no_table_model() -> None:
    # kubernetes 37 ships no V1Table; the shape test above checks the Go JSON layout instead.
    assert not hasattr(k8s, "V1Table")


# --------------------------------------------------------------------------------------------
# Accept negotiation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, "v1"),
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json", "v1beta1"),
        ("application/json; as=Table; g=meta.k8s.io; v=v1", "v1"),
        ("application/yaml;as=Table;v=v1;g=meta.k8s.io", "v1"),
        ("*/*;as=Table;v=v1;g=meta.k8s.io", "v1"),
        ("application/json", None),
        ("application/json, */*", None),
        ("application/json,application/json;as=Table;v=v1;g=meta.k8s.io", None),
        ("application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io", "v1"),
        ("application/json;as=Table;v=v1;g=meta.k8s.io;q=0,application/json", None),
        ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json", None),
        ("application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io", "v1"),
        ("application/json;as=Table;v=v1;g=example.com,application/json", None),
        ("application/json;as=Table,application/json", None),
        ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json", None),
        ("application/json;stream=watch", None),
        ("text/html", None),
        ("", None),
        (None, None),
    ],
)
def test_wants_table(accept: str | None, expected: str | None) -> None:
    assert tables.wants_table(accept) == expected


# --------------------------------------------------------------------------------------------
# The real kubectl reads our Tables
# --------------------------------------------------------------------------------------------


class _FakeApiserver(BaseHTTPRequestHandler):
    """Just enough discovery for kubectl, and Tables from tables.to_table for the lists."""

    objects: ClassVar[dict[str, list[dict[str, Any]]]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: dict[str, Any], code: int = 200) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        self.seen.append((path, self.headers.get("Accept", "")))
        discovery = {
            "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.4+k3s1"},
            "/api": {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
                ],
            },
            "/apis": {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": "apps",
                        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
                    }
                ],
            },
        }
        if path in discovery:
            return self._send(discovery[path])
        if path in ("/api/v1", "/apis/apps/v1"):
            group, version = ("", "v1") if path == "/api/v1" else ("apps", "v1")
            resources = [
                {
                    "name": t.plural,
                    "singularName": t.singular,
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": list(t.verbs),
                    "shortNames": list(t.short_names),
                }
                for t in registry.types_in(group, version)
            ]
            return self._send(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": registry.types_in(group, version)[0].group_version,
                    "resources": resources,
                }
            )
        plural = path.rstrip("/").rsplit("/", 1)[-1]
        rt = next((t for t in registry.all_types() if t.plural == plural), None)
        version = tables.wants_table(self.headers.get("Accept"))
        if rt is None or version is None:
            return self._send(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                    "message": "not found",
                },
                404,
            )
        include = "Object" if "includeObject=Object" in query else "Metadata"
        items = self.objects.get(plural, [])
        return self._send(
            tables.to_table(
                rt, items, include_object=include, list_meta={"resourceVersion": "99"}, table_version=version
            )
        )


@pytest.fixture
def fake_apiserver(tmp_path: Any) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    now = datetime.now(UTC)
    crash = pod(
        "api-x7k2p",
        statuses=[
            cstatus(
                restarts=3,
                state={"waiting": {"reason": "CrashLoopBackOff"}},
                last={"terminated": {"exitCode": 1, "finishedAt": ago(12, now)}},
            )
        ],
        conditions=[{"type": "Ready", "status": "False"}],
    )
    crash["metadata"]["creationTimestamp"] = ago(5 * M, now)
    crash["metadata"]["labels"] = {"app": "api"}
    pending = pod("api-pending", phase="Pending", node_name=None, pod_ip=None)
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("api", 10),
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": TEMPLATE},
        "status": {
            "desiredNumberScheduled": 5,
            "currentNumberScheduled": 5,
            "numberReady": 4,
            "updatedNumberScheduled": 5,
            "numberAvailable": 4,
        },
    }
    _FakeApiserver.objects = {
        "pods": [crash, pending],
        "daemonsets": [ds],
        "nodes": [node("k3s-server-1", ready="False", labels=K3S_SERVER_LABELS)],
    }
    _FakeApiserver.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApiserver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: s, cluster: {{server: 'http://127.0.0.1:{server.server_address[1]}'}}}}]\n"
        "users: [{name: u, user: {token: sandbox}}]\n"
        "contexts: [{name: c, context: {cluster: s, user: u, namespace: default}}]\n"
        "current-context: c\n"
    )
    yield str(kubeconfig), _FakeApiserver.seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def kubectl(kubeconfig: str, cache: str, *args: str) -> list[list[str]]:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", cache, "--request-timeout", "10s", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": kubeconfig},
    )
    assert out.returncode == 0, out.stderr
    return [line.split("   ") for line in out.stdout.splitlines()]


def columns_of(lines: list[list[str]]) -> list[list[str]]:
    """Split kubectl's aligned output into cells (cells are separated by 3+ spaces)."""
    return [[c.strip() for c in line if c.strip()] for line in lines]


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_real_kubectl_prints_our_tables(
    fake_apiserver: tuple[str, list[tuple[str, str]]], tmp_path: Any
) -> None:
    kubeconfig, seen = fake_apiserver
    cache = str(tmp_path / "cache")
    pods = columns_of(kubectl(kubeconfig, cache, "get", "pods"))
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1][:3] == ["api-x7k2p", "0/1", "CrashLoopBackOff"]
    assert re.fullmatch(r"3 \(1\ds ago\)", pods[1][3]), pods[1][3]
    assert pods[2][:4] == ["api-pending", "0/1", "Pending", "0"]
    wide = columns_of(kubectl(kubeconfig, cache, "get", "pods", "-o", "wide"))
    assert wide[0][-4:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    assert wide[2][-4:] == ["<none>", "<none>", "<none>", "<none>"]
    labelled = columns_of(kubectl(kubeconfig, cache, "get", "pods", "-A", "--show-labels"))
    assert labelled[0][0] == "NAMESPACE" and labelled[0][-1] == "LABELS"
    assert labelled[1][0] == "default" and labelled[1][-1] == "app=api"
    ds = columns_of(kubectl(kubeconfig, cache, "get", "ds", "-o", "wide"))
    assert ds[0] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert ds[1][:7] == ["api", "5", "5", "4", "5", "4", "keybuzz.io/role=worker,kubernetes.io/os=linux"]
    nodes = columns_of(kubectl(kubeconfig, cache, "get", "nodes"))
    assert nodes[1][:3] == ["k3s-server-1", "NotReady", "control-plane,etcd,master"]
    sorted_pods = columns_of(kubectl(kubeconfig, cache, "get", "pods", "--sort-by=.metadata.name"))
    assert [r[0] for r in sorted_pods[1:]] == ["api-pending", "api-x7k2p"]
    table_requests = [accept for path, accept in seen if path.endswith(("/pods", "/daemonsets", "/nodes"))]
    assert table_requests and all(a == KUBECTL_ACCEPT for a in table_requests)
