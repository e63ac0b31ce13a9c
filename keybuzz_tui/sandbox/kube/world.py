"""The cluster as K3s leaves it: nodes, kube-system and the ingress-nginx the runbook relies on.

Objects are created through KubeApi like any client would, while the API is in bootstrap mode
(timestamps back-dated, no events), so the world starts looking weeks old and already settled.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from ..addresses import Addresses, NodeAddr
from ..scenarios import Scenario
from .api import KubeApi
from .registry import BY_KEY, ResourceType, core

K3S_CONTAINERD = "containerd://1.7.23-k3s2"
OS_IMAGE = "Ubuntu 22.04.5 LTS"
KERNEL = "5.15.0-126-generic"
INGRESS_IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.12.1"
COREDNS_IMAGE = "rancher/mirrored-coredns-coredns:1.12.0"
INGRESS_HTTP_NODEPORT = 31695
INGRESS_HTTPS_NODEPORT = 32720


def _rt_for(obj: dict[str, Any]) -> ResourceType:
    api_version, kind = obj["apiVersion"], obj["kind"]
    group = api_version.split("/")[0] if "/" in api_version else "core"
    for rt in BY_KEY.values():
        if rt.kind == kind and (rt.group or "core") == group:
            return rt
    raise ValueError(f"the sandbox does not serve {api_version} {kind}")


def node_object(n: NodeAddr, sc: Scenario, addrs: Addresses) -> dict[str, Any]:
    version = sc.k8s_version
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "k3s",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
        "topology.kubernetes.io/region": "eu-central",
        "topology.kubernetes.io/zone": "fsn1",
    }
    taints: list[dict[str, Any]] = []
    if n.role == "server":
        labels.update(
            {
                "node-role.kubernetes.io/control-plane": "true",
                "node-role.kubernetes.io/etcd": "true",
                "node-role.kubernetes.io/master": "true",
            }
        )
        taints = [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoExecute"},
        ]
    else:
        labels["keybuzz.io/pool"] = "workers"
    seed = hashlib.sha256(n.name.encode()).hexdigest()
    annotations = {
        "alpha.kubernetes.io/provided-node-ip": n.private_ip,
        "flannel.alpha.coreos.com/backend-data": json.dumps({"VNI": 1, "VtepMAC": ":".join(seed[i : i + 2] for i in range(0, 12, 2))}, separators=(",", ":")),
        "flannel.alpha.coreos.com/backend-type": sc.flannel_backend,
        "flannel.alpha.coreos.com/kube-subnet-manager": "true",
        "flannel.alpha.coreos.com/public-ip": n.private_ip,
        "k3s.io/hostname": n.name,
        "k3s.io/internal-ip": n.private_ip,
        "k3s.io/node-args": json.dumps(["server" if n.role == "server" else "agent", "--node-ip", n.private_ip, "--flannel-iface", "enp7s0"], separators=(",", ":")),
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    # one /24 per node out of the cluster CIDR (10.42.0.0/16 by default; wider for huge clusters)
    idx = (n.index - 1) + (0 if n.role == "server" else 10)
    cidr = f"10.{42 + idx // 256}.{idx % 256}.0/24"
    spec: dict[str, Any] = {
        "podCIDR": cidr,
        "podCIDRs": [cidr],
        "providerID": f"k3s://{n.name}",
    }
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": n.name, "labels": labels, "annotations": annotations, "finalizers": []},
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": n.private_ip},
                {"type": "Hostname", "address": n.name},
            ],
            "allocatable": {"cpu": "4", "ephemeral-storage": "152372608216", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "7935556Ki", "pods": "110"},
            "capacity": {"cpu": "4", "ephemeral-storage": "156631048Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": "7935556Ki", "pods": "110"},
            "conditions": [],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.UUID(seed[:32])),
                "containerRuntimeVersion": K3S_CONTAINERD,
                "kernelVersion": KERNEL,
                "kubeProxyVersion": version,
                "kubeletVersion": version,
                "machineID": seed[32:64],
                "operatingSystem": "linux",
                "osImage": OS_IMAGE,
                "systemUUID": str(uuid.UUID(seed[16:48])),
            },
        },
    }


def _coredns() -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {
                "Corefile": ".:53 {\n    errors\n    health\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n      pods insecure\n      fallthrough in-addr.arpa ip6.arpa\n    }\n    hosts /etc/coredns/NodeHosts {\n      ttl 60\n      reload 15s\n      fallthrough\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf\n    cache 30\n    loop\n    reload\n    loadbalance\n    import /etc/coredns/custom/*.override\n}\nimport /etc/coredns/custom/*.server\n",
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "coredns",
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                            {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
                        ],
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                    {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}},
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}},
                            }
                        ],
                        "dnsPolicy": "Default",
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}, "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
            "spec": {
                "selector": labels,
                "clusterIP": "10.43.0.10",
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": "kube-system"}},
    ]


def _k3s_addons() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, image, app in (
        ("local-path-provisioner", "rancher/local-path-provisioner:v0.0.30", "local-path-provisioner"),
        ("metrics-server", "rancher/mirrored-metrics-server:v0.7.2", "metrics-server"),
    ):
        labels = {"k8s-app": app} if app == "metrics-server" else {"app": app}
        out.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "kube-system"}})
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "serviceAccountName": name,
                            "priorityClassName": "system-node-critical",
                            "tolerations": [
                                {"key": "CriticalAddonsOnly", "operator": "Exists"},
                                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                            ],
                            "containers": [{"name": name, "image": image}],
                        },
                    },
                },
            }
        )
    out.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server", "namespace": "kube-system", "labels": {"kubernetes.io/cluster-service": "true", "kubernetes.io/name": "Metrics-server"}},
            "spec": {"selector": {"k8s-app": "metrics-server"}, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}]},
        }
    )
    return out


def _ingress_nginx() -> list[dict[str, Any]]:
    ns = "ingress-nginx"
    labels = {
        "app.kubernetes.io/component": "controller",
        "app.kubernetes.io/instance": "ingress-nginx",
        "app.kubernetes.io/name": "ingress-nginx",
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ingress-nginx", "namespace": ns, "labels": labels}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ingress-nginx-controller", "namespace": ns, "labels": labels},
            "data": {"allow-snippet-annotations": "false", "use-forwarded-headers": "true"},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "nginx", "labels": labels, "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
            "spec": {"controller": "k8s.io/ingress-nginx"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "ingress-nginx-controller", "namespace": ns, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        # as the runbook's port table has it: the controller binds 80/443 on each
                        # worker (hostPort = containerPort), behind NodePorts 31695/32720
                        "hostNetwork": True,
                        "serviceAccountName": "ingress-nginx",
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "terminationGracePeriodSeconds": 300,
                        "containers": [
                            {
                                "name": "controller",
                                "image": INGRESS_IMAGE,
                                "args": [
                                    "/nginx-ingress-controller",
                                    "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
                                    "--election-id=ingress-nginx-leader",
                                    "--controller-class=k8s.io/ingress-nginx",
                                    "--ingress-class=nginx",
                                    "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
                                ],
                                "env": [
                                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                ],
                                "ports": [
                                    {"name": "http", "containerPort": 80, "protocol": "TCP"},
                                    {"name": "https", "containerPort": 443, "protocol": "TCP"},
                                    {"name": "webhook", "containerPort": 8443, "protocol": "TCP"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"}, "periodSeconds": 10},
                                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"}, "periodSeconds": 10},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ingress-nginx-controller", "namespace": ns, "labels": labels},
            "spec": {
                "type": "NodePort",
                "externalTrafficPolicy": "Local",
                "selector": labels,
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "nodePort": INGRESS_HTTP_NODEPORT},
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "nodePort": INGRESS_HTTPS_NODEPORT},
                ],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ingress-nginx-controller-admission", "namespace": ns, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "https-webhook", "port": 443, "targetPort": "webhook"}]},
        },
    ]


def base_objects(sc: Scenario, addrs: Addresses) -> list[dict[str, Any]]:
    """Everything but the nodes, in creation order."""
    objs: list[dict[str, Any]] = []
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}})
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        }
    )
    servers = [n for n in addrs.nodes() if n.role == "server"]
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": s.private_ip} for s in servers], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}],
        }
    )
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "ingress-nginx"):
        if ns != "ingress-nginx":
            objs.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}})
    objs += _coredns()
    objs += _k3s_addons()
    ingress = _ingress_nginx()
    objs += ingress[:1] + [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "ingress-nginx"}}] + ingress[1:]
    return objs


def create_all(api: KubeApi, objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        rt = _rt_for(obj)
        ns = obj.get("metadata", {}).get("namespace") if rt.namespaced else None
        if rt.namespaced and ns is None:
            ns = "default"
        api.create(rt, ns, obj)


def install_nodes(api: KubeApi, sc: Scenario, addrs: Addresses) -> None:
    nodes = core("nodes")
    for n in addrs.nodes():
        api.create(nodes, None, node_object(n, sc, addrs))
