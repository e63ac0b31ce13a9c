"""The `scale` scenario's bulk: thousands of namespaces' worth of pods, services and workloads.

They are written straight into the store at bootstrap with their final status (Running pods bound
to nodes, allocated NodePorts), without going through the controllers: a benchmark world must
start in seconds and stay quiet, and what it measures is how the API serves large lists, not how
the simulated kubelets would start 20,000 containers.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from .api import KubeApi
from .registry import apps, core

IMAGES = ["nginx:1.27", "redis:7.4", "postgres:16", "ghcr.io/acme/billing:3.2.1", "ghcr.io/acme/search:1.9.0", "busybox:1.36"]


def populate(api: KubeApi, nodes: list[tuple[str, str]], *, namespaces: int, pods: int, services: int, seed: int = 1234) -> dict[str, int]:
    rnd = random.Random(seed)
    store = api.store
    stamp = api.now()
    ns_names = [f"team-{i:03d}" for i in range(namespaces)]
    for ns in ns_names:
        api.create(core("namespaces"), None, {"metadata": {"name": ns, "labels": {"tier": rnd.choice(["prod", "staging", "dev"])}}})
    apps_per_ns = max(1, pods // max(1, namespaces) // 20)
    counts = {"pods": 0, "services": 0, "nodeport_services": 0, "hostport_pods": 0, "deployments": 0, "daemonsets": 0}
    app_names: dict[str, list[str]] = {ns: [f"app-{j:03d}" for j in range(apps_per_ns)] for ns in ns_names}

    def meta(ns: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "namespace": ns, "uid": str(uuid.UUID(int=rnd.getrandbits(128))), "creationTimestamp": stamp, "labels": labels}

    # workloads: Deployments (with their pod templates) and a few DaemonSets
    for ns in ns_names:
        for app in app_names[ns]:
            host_port = rnd.random() < 0.03
            ports = [{"containerPort": 8000 + rnd.randrange(100), "protocol": "TCP"}]
            if host_port:
                ports[0]["hostPort"] = 9000 + rnd.randrange(500)
            tmpl = {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": rnd.choice(IMAGES), "ports": ports}]}}
            store.put(apps("deployments"), {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta(ns, app, {"app": app}), "generation": 1},
                "spec": {"replicas": 20, "selector": {"matchLabels": {"app": app}}, "template": tmpl},
                "status": {"observedGeneration": 1, "replicas": 20, "readyReplicas": 20, "availableReplicas": 20, "updatedReplicas": 20},
            }, quiet=True)
            counts["deployments"] += 1
    for i in range(20):
        ns = ns_names[i % len(ns_names)]
        name = f"agent-{i:02d}"
        store.put(apps("daemonsets"), {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {**meta(ns, name, {"app": name}), "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "hostNetwork": i % 4 == 0,
                "containers": [{"name": name, "image": "ghcr.io/acme/agent:2.0", "ports": [{"containerPort": 9100 + i, "protocol": "TCP"}]}]}}},
            "status": {"currentNumberScheduled": len(nodes), "desiredNumberScheduled": len(nodes), "numberMisscheduled": 0, "numberReady": len(nodes), "observedGeneration": 1},
        }, quiet=True)
        counts["daemonsets"] += 1
    # pods, spread over the nodes
    for i in range(pods):
        ns = ns_names[i % len(ns_names)]
        app = app_names[ns][(i // len(ns_names)) % len(app_names[ns])]
        node, node_ip = nodes[rnd.randrange(len(nodes))]
        name = f"{app}-{rnd.getrandbits(40):010x}"
        ports = [{"containerPort": 8080, "protocol": "TCP"}]
        if rnd.random() < 0.02:
            ports[0]["hostPort"] = 9000 + rnd.randrange(500)
            counts["hostport_pods"] += 1
        ip = f"10.{42 + (i >> 16) % 10}.{(i >> 8) & 255}.{i & 255}"
        store.put(core("pods"), {
            "apiVersion": "v1", "kind": "Pod", "metadata": {**meta(ns, name, {"app": app}), "generation": 1},
            "spec": {"nodeName": node, "containers": [{"name": app, "image": rnd.choice(IMAGES), "ports": ports}], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler"},
            "status": {
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": node_ip, "startTime": stamp, "qosClass": "BestEffort",
                "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp} for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                "containerStatuses": [{"name": app, "image": "nginx:1.27", "imageID": "", "ready": True, "restartCount": 0, "started": True, "state": {"running": {"startedAt": stamp}}}],
            },
        }, quiet=True)
        counts["pods"] += 1
    for i in range(services):
        ns = ns_names[i % len(ns_names)]
        app = app_names[ns][i % len(app_names[ns])]
        name = f"svc-{i:05d}"
        owner = f"{ns}/{name}"
        port = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
        spec: dict[str, Any] = {"selector": {"app": app}, "ports": [port], "type": "ClusterIP", "sessionAffinity": "None"}
        if i % 10 == 0:
            spec["type"] = "NodePort"
            spec["externalTrafficPolicy"] = "Cluster"
            port["nodePort"] = api.nodeports.allocate_next(owner)
            counts["nodeport_services"] += 1
        spec["clusterIP"] = api.cluster_ips.allocate_next(owner)
        spec["clusterIPs"] = [spec["clusterIP"]]
        store.put(core("services"), {"apiVersion": "v1", "kind": "Service", "metadata": meta(ns, name, {"app": app}), "spec": spec, "status": {"loadBalancer": {}}}, quiet=True)
        counts["services"] += 1
    return counts
