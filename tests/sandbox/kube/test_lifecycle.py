"""What a client watching the cluster sees, in order: a pod's life from Pending to Ready, and a
foreground deletion that removes the dependents before their owner."""

from __future__ import annotations

import json

from kubernetes import client, watch
from support import sandboxes


def stage(pod: client.V1Pod) -> str:
    """The stage kubectl's STATUS column and an operator would name."""
    st = pod.status
    if st.phase == "Pending":
        waiting = [c.state.waiting.reason for c in st.container_statuses or [] if c.state and c.state.waiting]
        return "ContainerCreating" if "ContainerCreating" in waiting else "Pending"
    if st.phase == "Running":
        ready = any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])
        return "Ready" if ready else "Running"
    return str(st.phase)


def test_a_pods_lifecycle_is_watched_in_order(sandbox):
    api = sandbox.kube_client()
    core = client.CoreV1Api(api)
    ns = "lifecycle"
    core.create_namespace({"metadata": {"name": ns}})
    rv = core.list_namespaced_pod(ns).metadata.resource_version
    core.create_namespaced_pod(ns, {
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
    })
    seen: list[tuple[str, client.V1Pod]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=30):
        seen.append((ev["type"], ev["object"]))
        if stage(ev["object"]) == "Ready":
            w.stop()
    api.close()

    stages = [stage(p) for _, p in seen]
    order = [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]
    assert order == ["Pending", "ContainerCreating", "Running", "Ready"], stages
    assert [t for t, _ in seen] == ["ADDED"] + ["MODIFIED"] * (len(seen) - 1)
    rvs = [int(p.metadata.resource_version) for _, p in seen]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    first, last = seen[0][1], seen[-1][1]
    assert first.spec.node_name is None and first.status.conditions is None  # not scheduled yet
    creating = next(p for _, p in seen if stage(p) == "ContainerCreating")
    assert creating.spec.node_name and creating.status.container_statuses[0].ready is False
    assert any(c.type == "PodScheduled" and c.status == "True" for c in creating.status.conditions)
    running = next(p for _, p in seen if stage(p) == "Running")
    assert running.status.container_statuses[0].state.running.started_at is not None
    assert running.status.pod_ip and running.status.container_statuses[0].ready is False
    cs = last.status.container_statuses[0]
    assert cs.ready is True and cs.started is True and cs.restart_count == 0


def _daemonset(ns: str, name: str) -> dict:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {"keybuzz.io/pool": "workers"}, "containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def test_foreground_deletion_removes_the_dependents_before_the_owner(sandbox):
    api = sandbox.kube_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns, name = "foreground", "web"
    core.create_namespace({"metadata": {"name": ns}})
    ds = apps.create_namespaced_daemon_set(ns, _daemonset(ns, name))
    pods = []
    for _ev in watch.Watch().stream(core.list_namespaced_pod, ns, timeout_seconds=30):
        pods = [p for p in core.list_namespaced_pod(ns).items if p.metadata.owner_references]
        if len(pods) == 5:
            break
    assert len(pods) == 5 and all(p.metadata.owner_references[0].uid == ds.metadata.uid for p in pods)
    assert all(p.metadata.owner_references[0].block_owner_deletion for p in pods)
    revisions = apps.list_namespaced_controller_revision(ns).items
    assert len(revisions) == 1 and revisions[0].metadata.owner_references[0].uid == ds.metadata.uid
    rv = apps.list_namespaced_daemon_set(ns).metadata.resource_version

    r = sandboxes.raw(
        sandbox, "DELETE", f"/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
        body=json.dumps({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}),
        headers={"Content-Type": "application/json"},
    )
    assert r.status in (200, 202)
    body = json.loads(r.data)
    # the owner stays, marked: deletionTimestamp and the foregroundDeletion finalizer
    assert body["kind"] == "DaemonSet" and body["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in body["metadata"]["finalizers"]

    owner_events = []
    for ev in watch.Watch().stream(apps.list_namespaced_daemon_set, ns, resource_version=rv, timeout_seconds=30):
        owner_events.append((ev["type"], int(ev["object"].metadata.resource_version), ev["object"]))
        if ev["type"] == "DELETED":
            break
    assert owner_events[-1][0] == "DELETED", [e[:2] for e in owner_events]
    owner_gone = owner_events[-1][1]
    marked = [rv_ for t, rv_, o in owner_events if t == "MODIFIED" and o.metadata.deletion_timestamp and "foregroundDeletion" in (o.metadata.finalizers or [])]
    assert marked, [e[:2] for e in owner_events]

    pod_deleted: dict[str, int] = {}
    pod_marked: dict[str, int] = {}
    for ev in watch.Watch().stream(core.list_namespaced_pod, ns, resource_version=rv, timeout_seconds=2):
        obj = ev["object"]
        if ev["type"] == "DELETED":
            pod_deleted[obj.metadata.name] = int(obj.metadata.resource_version)
        elif obj.metadata.deletion_timestamp:
            pod_marked.setdefault(obj.metadata.name, int(obj.metadata.resource_version))
    names = {p.metadata.name for p in pods}
    assert set(pod_deleted) == names and set(pod_marked) == names
    # dependents are deleted after the owner was marked, and all are gone before the owner goes
    assert min(marked) < min(pod_marked.values())
    assert max(pod_deleted.values()) < owner_gone
    assert apps.list_namespaced_controller_revision(ns).items == []
    api.close()
