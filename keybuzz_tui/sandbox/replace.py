"""A worker replaced by a new server with a new IP, the way it happens in production.

A Hetzner server dies (or is rebuilt from a snapshot); the operator deletes it, creates a new one,
joins it to K3s as an agent, and labels it `role=worker`. What the rest of the world then sees:

- Kubernetes: the old Node is gone (its pods deleted, as the pod garbage collector does for pods
  bound to a node that no longer exists), a new Node joins with a new InternalIP; DaemonSets
  (ingress-nginx, KeyBuzz's hostNetwork apps) start their pods on it by themselves.
- Hetzner: the old server is gone (server targets and direct firewall applications pointing at
  it disappear with it), a new server with a new id and private IP carries the labels; label
  selector targets follow the labels, server targets do not.
- The data plane: the new node's address is real (NodePorts and hostPorts bind on it), the old
  one's listeners are closed.

Used through `Sandbox.replace_worker(old)`; everything runs on the sandbox loop.
"""

from __future__ import annotations

from typing import Any

from .addresses import NodeAddr
from .kube.registry import core

NODES = core("nodes")
PODS = core("pods")


def next_worker(sb: Any) -> NodeAddr:
    """The next free worker name and address (k3s-worker-06 at .115 after five workers)."""
    addrs = sb.addresses
    used = set(sb.dataplane.topology.node_ips) if sb.dataplane is not None else set()
    used |= {n["metadata"]["name"] for n in sb.cluster.store.list(NODES)}
    i = addrs.workers + 1
    while addrs.worker_name(i) in used:
        i += 1
    return NodeAddr(addrs.worker_name(i), "worker", i, addrs.worker_ip(i), addrs.public_ip("worker", i))


def replace_worker(sb: Any, old: str, new: NodeAddr | None = None) -> NodeAddr:
    """Replace worker `old` by a new server/node (default: the next free name and address).
    Must run on the sandbox loop (Sandbox.replace_worker does that). Returns the new node."""
    from . import cloud
    from .hetzner.seeds import ServerSeed
    from .kube import world

    cluster, api = sb.cluster, sb.cluster.api
    node_obj = cluster.store.get(NODES, None, old)
    if node_obj is None:
        raise KeyError(f"no node {old}")
    labels = (node_obj.get("metadata") or {}).get("labels") or {}
    if any(k.startswith("node-role.kubernetes.io/") for k in labels):
        raise ValueError(f"{old} is a control-plane node, not a worker")
    server = next((s for s in sb.hetzner.servers.values() if s.name == old), None)
    if server is None:
        raise KeyError(f"no Hetzner server {old}")
    new = new or next_worker(sb)

    # 1. Kubernetes: the pods bound to the old node go (pod GC), then the node itself
    for pod in list(cluster.store.list(PODS)):
        if (pod.get("spec") or {}).get("nodeName") != old:
            continue
        meta = pod["metadata"]
        for _ in range(2):  # a graceful pod is marked first; the second delete removes it
            try:
                _obj, done = api.delete(PODS, meta["namespace"], meta["name"], grace_period=0)
            except Exception:
                break
            if done:
                break
    api.delete(NODES, None, old)

    # 2. the data plane: the old address stops answering, the new one starts
    dp = sb.dataplane
    if dp is not None:
        for b in [b for b in dp.ports.all() if b.node == old]:
            dp.ports.remove(b.node, b.port, b.proto)
            if b.listener is not None:
                b.listener.close()
        topo = dp.topology
        old_ip = topo.node_ips.pop(old, None)
        if old_ip is not None:
            topo.node_by_ip.pop(old_ip, None)
        dp.add_node(new.name, new.private_ip, "worker")
        topo.node_ips[new.name] = new.private_ip
        topo.node_by_ip[new.private_ip] = new.name
        dp.kube_proxy.sync()
        dp.log(f"worker {old} replaced by {new.name} ({new.private_ip})")

    # 3. Hetzner: the old server is deleted, a new one (new id, new IP) carries the labels
    seed = ServerSeed(
        cloud.server_id(new.name), new.name, new.private_ip, new.public_ip, dict(server.labels),
        server_type=server.server_type, location=server.location,
    )
    sb.hetzner.replace_server(server.id, seed)

    # 4. the new node joins the cluster (the node lifecycle marks it Ready, DaemonSets follow)
    api.create(NODES, None, world.node_object(new, cluster.scenario, cluster.addresses))

    # 5. sandbox.json lists the nodes as they are now
    public = {s.name: s.public_ipv4 for s in sb.hetzner.servers.values()}
    nodes = []
    for n in cluster.store.list(NODES):
        meta = n["metadata"]
        role = "server" if any(k.startswith("node-role.kubernetes.io/") for k in meta.get("labels") or {}) else "worker"
        ip = next((a["address"] for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"), "")
        nodes.append({"name": meta["name"], "role": role, "internal_ip": ip, "public_ip": public.get(meta["name"])})
    sb.extras["nodes"] = sorted(nodes, key=lambda n: (n["role"] != "server", n["name"]))[:200]
    sb.extras["node_count"] = len(nodes)
    return new
