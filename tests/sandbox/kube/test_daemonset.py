"""The DaemonSet controller against the real scheduler and kubelet, on a cluster built in-process.

Exact status counters are asserted at quiescent points: at rest, right after one synchronous
reconcile (before the scheduler and kubelet get a turn), and mid-rollout with the new image
missing from the registry, which freezes a rolling update after exactly maxUnavailable nodes.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from keybuzz_tui.sandbox.addresses import Addresses
from keybuzz_tui.sandbox.clock import Clock
from keybuzz_tui.sandbox.kube.api import MERGE_PATCH, SMP
from keybuzz_tui.sandbox.kube.cluster import KubeCluster
from keybuzz_tui.sandbox.kube.controllers.daemonset import node_should_run, target_node
from keybuzz_tui.sandbox.kube.registry import apps, core
from keybuzz_tui.sandbox.scenarios import load

DS = apps("daemonsets")
CR = apps("controllerrevisions")
PODS = core("pods")
NODES = core("nodes")
EVENTS = core("events")
NS = "default"
SPEED = 40.0
WORKERS = [f"k3s-worker-0{i}" for i in range(1, 6)]
SERVERS = [f"k3s-master-0{i}" for i in range(1, 4)]
AUTO_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
async def cluster():
    c = KubeCluster(load("healthy"), Addresses(net=61), clock=Clock(SPEED))
    c.bootstrap()
    c.start()
    yield c
    await c.stop()


def ds_body(
    name: str = "web",
    *,
    image: str = "nginx:1.27",
    tolerations: list[dict[str, Any]] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: dict[str, Any] | None = None,
    strategy: dict[str, Any] | None = None,
    history: int | None = None,
    min_ready: int | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "web", "image": image}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = affinity
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }
    if annotations:
        body["metadata"]["annotations"] = annotations
    if strategy is not None:
        body["spec"]["updateStrategy"] = strategy
    if history is not None:
        body["spec"]["revisionHistoryLimit"] = history
    if min_ready is not None:
        body["spec"]["minReadySeconds"] = min_ready
    return body


def rolling(max_unavailable: Any = 1, max_surge: Any = 0) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": max_surge}}


def get_ds(c: KubeCluster, name: str = "web") -> dict[str, Any]:
    return c.store.get(DS, NS, name)


def status(c: KubeCluster, name: str = "web") -> dict[str, Any]:
    return get_ds(c, name)["status"]


def pods_of(c: KubeCluster, name: str = "web", *, terminating: bool = True) -> list[dict[str, Any]]:
    uid = get_ds(c, name)["metadata"]["uid"]
    out = []
    for p in c.store.list(PODS, NS):
        refs = p["metadata"].get("ownerReferences") or []
        if any(r.get("uid") == uid and r.get("controller") for r in refs):
            if terminating or not p["metadata"].get("deletionTimestamp"):
                out.append(p)
    return out


def revisions(c: KubeCluster, name: str = "web") -> list[dict[str, Any]]:
    uid = get_ds(c, name)["metadata"]["uid"]
    crs = [r for r in c.store.list(CR, NS) if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])]
    return sorted(crs, key=lambda r: r["revision"])


def events_for(c: KubeCluster, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in c.store.list(EVENTS, NS)
        if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "DaemonSet" and (reason is None or e["reason"] == reason)
    ]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(cd["type"] == "Ready" and cd["status"] == "True" for cd in (pod.get("status") or {}).get("conditions") or [])


async def eventually(pred: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last: Any = None
    while loop.time() < end:
        try:
            last = pred()
        except (KeyError, TypeError, IndexError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def at_rest(c: KubeCluster, desired: int, name: str = "web") -> Callable[[], bool]:
    """Fully rolled out: every counter at `desired`, generation observed, no terminating pod left."""

    def check() -> bool:
        ds = get_ds(c, name)
        s = ds["status"]
        return (
            s.get("observedGeneration") == ds["metadata"]["generation"]
            and s["desiredNumberScheduled"] == desired
            and s["currentNumberScheduled"] == desired
            and s["numberReady"] == desired
            and s.get("updatedNumberScheduled", 0) == desired
            and s.get("numberAvailable", 0) == desired
            and s["numberMisscheduled"] == 0
            and len(pods_of(c, name)) == desired
        )

    return check


async def settled(c: KubeCluster, pred: Callable[[], bool], what: str, hold: float = 0.3) -> None:
    """`pred` becomes true and stays true for `hold` seconds (a quiescent point, not a passing one)."""
    loop = asyncio.get_running_loop()
    await eventually(pred, what)
    end = loop.time() + hold
    while loop.time() < end:
        assert pred(), f"{what} did not hold: {status(c)}"
        await asyncio.sleep(0.02)


def record_statuses(c: KubeCluster, name: str = "web") -> list[dict[str, Any]]:
    """Every status the controller writes from now on, in order."""
    seen: list[dict[str, Any]] = []

    def listener(ev: Any) -> None:
        if ev.rt.key == DS.key and ev.obj["metadata"]["name"] == name and ev.type == "MODIFIED":
            if ev.old is None or ev.old.get("status") != ev.obj.get("status"):
                seen.append(copy.deepcopy(ev.obj["status"]))

    c.store.add_listener(listener)
    return seen


async def create_and_settle(c: KubeCluster, body: dict[str, Any], desired: int) -> dict[str, Any]:
    c.api.create(DS, NS, body)
    await eventually(at_rest(c, desired, body["metadata"]["name"]), f"{body['metadata']['name']} rolled out on {desired} nodes")
    return get_ds(c, body["metadata"]["name"])


def set_image(c: KubeCluster, image: str, name: str = "web") -> dict[str, Any]:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    obj, _ = c.api.patch(DS, NS, name, SMP, patch)
    return obj


def node_of(pod: dict[str, Any]) -> str:
    return pod["spec"].get("nodeName") or target_node(pod)


# --- placement -------------------------------------------------------------------------------


async def test_worker_only_daemonset_runs_one_pod_per_worker(cluster: KubeCluster) -> None:
    c = cluster
    ds = await create_and_settle(c, ds_body(), 5)
    pods = pods_of(c)
    assert sorted(p["spec"]["nodeName"] for p in pods) == WORKERS  # the 3 tainted servers are excluded
    cr = revisions(c)[0]
    hash_ = cr["metadata"]["labels"]["controller-revision-hash"]
    for p in pods:
        m = p["metadata"]
        assert m["generateName"] == "web-" and m["name"].startswith("web-") and len(m["name"]) == len("web-") + 5
        assert m["labels"] == {"app": "web", "controller-revision-hash": hash_, "pod-template-generation": "1"}
        assert m["ownerReferences"] == [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web", "uid": ds["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        ]
        node = p["spec"]["nodeName"]
        assert p["spec"]["affinity"] == {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
                }
            }
        }
        assert p["spec"]["tolerations"] == AUTO_TOLERATIONS
        assert p["status"]["phase"] == "Running" and is_ready(p)
    created = events_for(c, "web", "SuccessfulCreate")
    assert sorted(e["message"] for e in created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    assert all(e["source"] == {"component": "daemonset-controller"} and e["type"] == "Normal" for e in created)


async def test_pods_are_created_unbound_and_pinned_then_bound_by_the_scheduler(cluster: KubeCluster) -> None:
    """One synchronous reconcile: pods exist, pinned by affinity, nodeName empty, and count as current."""
    c = cluster
    c.api.create(DS, NS, ds_body())
    assert status(c) == {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}
    c.manager.run_one(("daemonset", NS, "web"))
    pods = pods_of(c)
    assert len(pods) == 5
    assert all("nodeName" not in p["spec"] for p in pods)
    assert sorted(target_node(p) for p in pods) == WORKERS
    assert status(c) == {
        "currentNumberScheduled": 5,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 5,
        "numberReady": 0,
        "observedGeneration": 1,
        "updatedNumberScheduled": 5,
        "numberUnavailable": 5,
    }
    await eventually(at_rest(c, 5), "rolled out")
    assert all(p["spec"]["nodeName"] == target_node(p) for p in pods_of(c))


async def test_daemonset_tolerating_everything_runs_on_all_eight_nodes(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(tolerations=[{"operator": "Exists"}]), 8)
    assert sorted(p["spec"]["nodeName"] for p in pods_of(c)) == sorted(SERVERS + WORKERS)
    assert pods_of(c)[0]["spec"]["tolerations"] == [{"operator": "Exists"}, *AUTO_TOLERATIONS]


async def test_tolerating_only_noschedule_is_not_enough_for_servers(cluster: KubeCluster) -> None:
    """Servers also carry CriticalAddonsOnly=true:NoExecute; both effects must be tolerated."""
    c = cluster
    tol = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
    await create_and_settle(c, ds_body(tolerations=tol), 5)
    tol.append({"key": "CriticalAddonsOnly", "operator": "Equal", "value": "true", "effect": "NoExecute"})
    await create_and_settle(c, ds_body("all", tolerations=tol), 8)


async def test_host_network_pods_also_tolerate_network_unavailable(cluster: KubeCluster) -> None:
    c = cluster
    body = ds_body()
    body["spec"]["template"]["spec"]["hostNetwork"] = True
    await create_and_settle(c, body, 5)
    assert pods_of(c)[0]["spec"]["tolerations"] == [
        *AUTO_TOLERATIONS,
        {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"},
    ]


async def test_node_selector_and_required_affinity_are_respected(cluster: KubeCluster) -> None:
    c = cluster
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["k3s-worker-05"]}]}]
            }
        }
    }
    await create_and_settle(c, ds_body(node_selector={"keybuzz.io/pool": "workers"}, affinity=affinity), 4)
    pods = pods_of(c)
    assert sorted(p["spec"]["nodeName"] for p in pods) == WORKERS[:4]
    # the user's terms are replaced by the pin, as ReplaceDaemonSetPodNodeNameNodeAffinity does
    terms = pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pods[0]["spec"]["nodeName"]]}]}]
    await create_and_settle(c, ds_body("one", node_selector={"kubernetes.io/hostname": "k3s-master-02"}, tolerations=[{"operator": "Exists"}]), 1)
    assert [p["spec"]["nodeName"] for p in pods_of(c, "one")] == ["k3s-master-02"]


def test_ports_never_make_a_node_ineligible() -> None:
    """Reference 3a: a hostPort conflict leaves the pod Pending but the node still counts as desired."""
    ds = ds_body()
    ds["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 80}]
    node = {"metadata": {"name": "n1", "labels": {}}, "spec": {}}
    assert node_should_run(ds, node) == (True, True)
    node["spec"]["taints"] = [{"key": "x", "effect": "NoSchedule"}]
    assert node_should_run(ds, node) == (False, True)
    node["spec"]["taints"] = [{"key": "x", "effect": "NoExecute"}]
    assert node_should_run(ds, node) == (False, False)
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert node_should_run(ds, node) == (True, True)


async def test_hostport_conflict_leaves_one_pod_pending_and_rollout_stuck(cluster: KubeCluster) -> None:
    c = cluster
    blocker = ds_body("blocker", node_selector={"kubernetes.io/hostname": "k3s-worker-03"})
    blocker["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    await create_and_settle(c, blocker, 1)
    body = ds_body()
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    c.api.create(DS, NS, body)
    stuck = {
        "currentNumberScheduled": 5,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 5,
        "numberReady": 4,
        "observedGeneration": 1,
        "updatedNumberScheduled": 5,
        "numberAvailable": 4,
        "numberUnavailable": 1,
    }
    await settled(c, lambda: status(c) == stuck, "4 of 5 available with one pod Pending")
    pending = [p for p in pods_of(c) if not p["spec"].get("nodeName")]
    assert [target_node(p) for p in pending] == ["k3s-worker-03"]
    why = [e["message"] for e in c.store.list(EVENTS, NS) if e["involvedObject"].get("name") == pending[0]["metadata"]["name"] and e["reason"] == "FailedScheduling"]
    assert why and "1 node(s) didn't have free ports for the requested pod ports" in why[0]


# --- status ----------------------------------------------------------------------------------


async def test_status_at_rest_is_exact_and_omits_zero_optional_counters(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(), 5)
    assert status(c) == {
        "currentNumberScheduled": 5,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 5,
        "numberReady": 5,
        "observedGeneration": 1,
        "updatedNumberScheduled": 5,
        "numberAvailable": 5,
    }


async def test_generation_is_observed_after_the_controller_runs(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(), 5)
    set_image(c, "nginx:1.28")
    ds = get_ds(c)
    assert ds["metadata"]["generation"] == 2 and ds["status"]["observedGeneration"] == 1  # the lag kubectl waits on
    await eventually(lambda: get_ds(c)["status"].get("observedGeneration") == 2, "generation 2 observed")
    # a change outside the template moves generation too, but not the revision
    c.api.patch(DS, NS, "web", MERGE_PATCH, {"spec": {"minReadySeconds": 1}})
    assert get_ds(c)["metadata"]["generation"] == 3
    await eventually(lambda: get_ds(c)["status"].get("observedGeneration") == 3, "generation 3 observed")
    await eventually(at_rest(c, 5), "rolled out")
    assert [r["revision"] for r in revisions(c)] == [1, 2]


async def test_min_ready_seconds_delays_available_but_not_ready(cluster: KubeCluster) -> None:
    c = cluster
    seen = record_statuses(c)
    c.api.create(DS, NS, ds_body(min_ready=80))  # 80 s simulated = 2 s at speed 40
    await eventually(at_rest(c, 5), "available after minReadySeconds", timeout=20)
    assert any(s["numberReady"] == 5 and s.get("numberAvailable", 0) < 5 for s in seen)
    assert all(s.get("numberAvailable", 0) <= s["numberReady"] for s in seen)


# --- rolling update --------------------------------------------------------------------------


@pytest.mark.parametrize(("max_unavailable", "budget"), [(1, 1), (2, 2), ("30%", 2)])
async def test_rolling_update_replaces_at_most_max_unavailable_nodes(cluster: KubeCluster, max_unavailable: Any, budget: int) -> None:
    c = cluster
    await create_and_settle(c, ds_body(strategy=rolling(max_unavailable)), 5)
    seen = record_statuses(c)
    c.kubelet.set_missing_images(["*:broken"])
    set_image(c, "nginx:broken")
    frozen = {
        "currentNumberScheduled": 5,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 5,
        "numberReady": 5 - budget,
        "observedGeneration": 2,
        "updatedNumberScheduled": budget,
        "numberAvailable": 5 - budget,
        "numberUnavailable": budget,
    }
    await settled(c, lambda: status(c) == frozen, f"rollout frozen after {budget} node(s)")
    new_hash = revisions(c)[-1]["metadata"]["labels"]["controller-revision-hash"]
    new_pods = [p for p in pods_of(c) if p["metadata"]["labels"]["controller-revision-hash"] == new_hash]
    assert len(new_pods) == budget and not any(is_ready(p) for p in new_pods)
    waiting = {cs["state"].get("waiting", {}).get("reason") for p in new_pods for cs in p["status"].get("containerStatuses") or []}
    assert waiting <= {"ErrImagePull", "ImagePullBackOff", "ContainerCreating"} and waiting & {"ErrImagePull", "ImagePullBackOff"}
    c.kubelet.set_missing_images([])
    await eventually(at_rest(c, 5), "rollout finished", timeout=20)
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(c)} == {"nginx:broken"}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods_of(c)} == {"2"}
    during = [s for s in seen if s.get("observedGeneration") == 2]
    assert max(s.get("numberUnavailable", 0) for s in during) == budget
    updated = [s.get("updatedNumberScheduled", 0) for s in during]
    assert updated == sorted(updated) and updated[-1] == 5
    deleted = events_for(c, "web", "SuccessfulDelete")
    assert len(deleted) == 5 and all(e["message"].startswith("Deleted pod: web-") for e in deleted)


async def test_rolling_update_with_surge_starts_new_pods_before_removing_old(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(strategy=rolling(0, 1)), 5)
    uid = get_ds(c)["metadata"]["uid"]
    ready: dict[str, set[str]] = {n: set() for n in WORKERS}
    for p in pods_of(c):
        ready[p["spec"]["nodeName"]].add(p["metadata"]["name"])
    gaps: list[str] = []
    most_per_node = [1]

    def watch_pods(ev: Any) -> None:
        p = ev.obj
        if ev.rt.key != PODS.key or not any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or []):
            return
        node, name = node_of(p), p["metadata"]["name"]
        if ev.type != "DELETED" and is_ready(p) and not p["metadata"].get("deletionTimestamp"):
            ready[node].add(name)
        else:
            ready[node].discard(name)
        if not ready[node]:
            gaps.append(node)
        most_per_node[0] = max(most_per_node[0], sum(node_of(q) == node for q in pods_of(c)))

    c.store.add_listener(watch_pods)
    set_image(c, "nginx:1.28")
    await eventually(at_rest(c, 5), "surge rollout finished", timeout=20)
    assert gaps == []  # maxUnavailable 0: every node kept a serving pod throughout
    assert most_per_node[0] == 2  # the surge pod ran next to the old one
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(c)} == {"nginx:1.28"}


async def test_on_delete_strategy_only_replaces_deleted_pods(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(strategy={"type": "OnDelete"}), 5)
    old_names = {p["metadata"]["name"] for p in pods_of(c)}
    set_image(c, "nginx:1.28")
    expected = {
        "currentNumberScheduled": 5,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 5,
        "numberReady": 5,
        "observedGeneration": 2,
        "numberAvailable": 5,
    }
    await settled(c, lambda: status(c) == expected, "template observed, nothing replaced")
    assert {p["metadata"]["name"] for p in pods_of(c)} == old_names
    victim = next(p for p in pods_of(c) if p["spec"]["nodeName"] == "k3s-worker-02")
    c.api.delete(PODS, NS, victim["metadata"]["name"])

    def replaced() -> bool:
        s = status(c)
        return s.get("updatedNumberScheduled") == 1 and s["numberReady"] == 5 and s.get("numberAvailable") == 5 and len(pods_of(c)) == 5

    await settled(c, replaced, "one pod replaced")
    fresh = next(p for p in pods_of(c) if p["spec"]["nodeName"] == "k3s-worker-02")
    assert fresh["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert sum(p["spec"]["containers"][0]["image"] == "nginx:1.27" for p in pods_of(c)) == 4


# --- revisions, history and undo -------------------------------------------------------------


async def test_controller_revision_is_the_template_patch(cluster: KubeCluster) -> None:
    c = cluster
    ds = await create_and_settle(c, ds_body(annotations={"team": "edge"}), 5)
    [cr] = revisions(c)
    hash_ = cr["metadata"]["labels"]["controller-revision-hash"]
    assert 1 <= len(hash_) <= 10 and set(hash_) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert cr["metadata"]["name"] == f"web-{hash_}"
    assert cr["metadata"]["labels"] == {"app": "web", "controller-revision-hash": hash_}
    assert cr["metadata"]["annotations"]["team"] == "edge"
    assert cr["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web", "uid": ds["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    ]
    assert cr["revision"] == 1
    data = cr["data"]
    template = ds["spec"]["template"]
    assert list(data) == ["spec"] and list(data["spec"]) == ["template"]
    t = data["spec"]["template"]
    assert t["$patch"] == "replace"
    assert t["metadata"] == {"creationTimestamp": None, "labels": template["metadata"]["labels"]}
    assert [dict(ct, resources={}) for ct in template["spec"]["containers"]] == [
        {k: v for k, v in ct.items()} for ct in t["spec"]["containers"]
    ]
    # served the way Go's json.Marshal writes it: sorted keys, `$patch` first
    raw = json.dumps(data, separators=(",", ":"))
    assert raw.startswith('{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{')
    assert list(t) == sorted(t)
    assert all(p["metadata"]["labels"]["controller-revision-hash"] == hash_ for p in pods_of(c))


async def test_revisions_renumber_on_undo_and_respect_the_history_limit(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(history=2), 5)
    first = revisions(c)[0]
    for image in ("nginx:1.28", "nginx:1.29"):
        set_image(c, image)
        await eventually(at_rest(c, 5), f"rolled out {image}")
    assert [r["revision"] for r in revisions(c)] == [1, 2, 3]

    # `kubectl rollout undo --to-revision=1`: the revision's data, sent as a strategic merge patch
    c.api.patch(DS, NS, "web", SMP, first["data"])
    await eventually(at_rest(c, 5), "rolled back to revision 1")
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(c)} == {"nginx:1.27"}
    crs = revisions(c)
    assert [(r["metadata"]["name"], r["revision"]) for r in crs][-1] == (first["metadata"]["name"], 4)  # reused, renumbered
    assert [r["revision"] for r in crs] == [2, 3, 4]
    hash_ = first["metadata"]["labels"]["controller-revision-hash"]
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods_of(c)} == {hash_}

    # `kubectl rollout undo` (no revision): the second highest, i.e. 3 (nginx:1.29)
    previous = crs[-2]
    c.api.patch(DS, NS, "web", SMP, previous["data"])
    await eventually(at_rest(c, 5), "rolled back to the previous revision")
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(c)} == {"nginx:1.29"}
    assert [r["revision"] for r in revisions(c)] == [2, 4, 5]

    set_image(c, "nginx:1.30")
    await eventually(at_rest(c, 5), "rolled out nginx:1.30")
    assert [r["revision"] for r in revisions(c)] == [4, 5, 6]  # limit 2 old ones + the current


async def test_template_generation_annotation_or_generation_labels_pods(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(), 5)
    set_image(c, "nginx:1.28")
    await eventually(at_rest(c, 5), "rolled out")
    ds = get_ds(c)
    expected = (ds["metadata"].get("annotations") or {}).get("deprecated.daemonset.template.generation", str(ds["metadata"]["generation"]))
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods_of(c)} == {expected}


# --- node changes ----------------------------------------------------------------------------


async def test_pod_is_removed_when_its_node_stops_matching(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(node_selector={"keybuzz.io/pool": "workers"}), 5)
    seen = record_statuses(c)
    c.api.patch(NODES, None, "k3s-worker-03", MERGE_PATCH, {"metadata": {"labels": {"keybuzz.io/pool": None}}})
    await eventually(at_rest(c, 4), "the pod on worker-03 gone")
    assert "k3s-worker-03" not in {node_of(p) for p in pods_of(c)}
    # while the deleted pod was terminating it was counted as misscheduled
    assert any(s["desiredNumberScheduled"] == 4 and s["numberMisscheduled"] == 1 for s in seen)
    assert events_for(c, "web", "SuccessfulDelete")
    c.api.patch(NODES, None, "k3s-worker-03", MERGE_PATCH, {"metadata": {"labels": {"keybuzz.io/pool": "workers"}}})
    await eventually(at_rest(c, 5), "the pod on worker-03 back")


async def test_taints_noschedule_keeps_the_pod_noexecute_evicts_it(cluster: KubeCluster) -> None:
    c = cluster
    await create_and_settle(c, ds_body(), 5)
    node = c.store.get(NODES, None, "k3s-worker-01")
    c.api.patch(NODES, None, "k3s-worker-01", MERGE_PATCH, {"spec": {"taints": [{"key": "maintenance", "effect": "NoSchedule"}]}})
    kept = {
        "currentNumberScheduled": 4,
        "numberMisscheduled": 1,
        "desiredNumberScheduled": 4,
        "numberReady": 4,
        "observedGeneration": 1,
        "updatedNumberScheduled": 4,
        "numberAvailable": 4,
    }
    await settled(c, lambda: status(c) == kept, "the pod on a NoSchedule node stays, misscheduled")
    assert "k3s-worker-01" in {node_of(p) for p in pods_of(c)}
    c.api.patch(NODES, None, "k3s-worker-01", MERGE_PATCH, {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})
    await eventually(at_rest(c, 4), "the pod on a NoExecute node evicted")
    assert "k3s-worker-01" not in {node_of(p) for p in pods_of(c)}
    c.api.patch(NODES, None, "k3s-worker-01", MERGE_PATCH, {"spec": {"taints": node["spec"].get("taints")}})
    await eventually(at_rest(c, 5), "back on worker-01")


async def test_pods_of_a_recreated_daemonset_are_adopted(cluster: KubeCluster) -> None:
    """`kubectl delete ds --cascade=orphan` then re-create: the new DaemonSet adopts the pods."""
    c = cluster
    await create_and_settle(c, ds_body(), 5)
    names = {p["metadata"]["name"] for p in pods_of(c)}
    c.api.delete(DS, NS, "web", propagation="Orphan")
    await eventually(lambda: c.store.get(DS, NS, "web") is None, "DaemonSet gone")
    await eventually(
        lambda: all(not p["metadata"].get("ownerReferences") for p in c.store.list(PODS, NS) if p["metadata"]["name"] in names),
        "pods orphaned",
    )
    await create_and_settle(c, ds_body(), 5)
    assert {p["metadata"]["name"] for p in pods_of(c)} == names


# --- the real kubectl against a running sandbox ----------------------------------------------

KUBECTL_DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "{image}"}}]
"""


@pytest.fixture(scope="module")
def kubectl(sandbox, tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed on this machine")
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", f"--kubeconfig={sandbox.kubeconfig_path}", f"--cache-dir={cache}", "--request-timeout=20s", *args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=90)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    return run


def _rollout_lines_ok(out: str, name: str, desired: int) -> None:
    lines = out.strip().splitlines()
    assert lines[-1] == f'daemon set "{name}" successfully rolled out'
    allowed = re.compile(
        rf'^Waiting for daemon set "{name}" rollout to finish: (\d+ out of {desired} new pods have been updated|\d+ of {desired} updated pods are available)\.\.\.$'
        r"|^Waiting for daemon set spec update to be observed\.\.\.$"
    )
    assert all(allowed.match(ln) for ln in lines[:-1]), lines


@pytest.mark.kubectl
def test_kubectl_rollout_status_history_and_undo(kubectl) -> None:
    ns = "ds-rollout"
    kubectl("create", "namespace", ns)
    kubectl("apply", "-f", "-", input=KUBECTL_DS.format(ns=ns, image="nginx:1.27"))
    _rollout_lines_ok(kubectl("rollout", "status", "ds/web", "-n", ns, "--timeout=60s").stdout, "web", 5)
    kubectl("set", "image", "ds/web", "-n", ns, "web=nginx:1.28")
    _rollout_lines_ok(kubectl("rollout", "status", "ds/web", "-n", ns, "--timeout=60s").stdout, "web", 5)

    hist = kubectl("rollout", "history", "ds/web", "-n", ns).stdout.splitlines()
    assert hist[0].strip() == "daemonset.apps/web"
    assert [ln.split() for ln in hist[1:] if ln.strip()] == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]
    rev1 = kubectl("rollout", "history", "ds/web", "-n", ns, "--revision=1").stdout
    assert "daemonset.apps/web with revision #1" in rev1 and "nginx:1.27" in rev1 and "nginx:1.28" not in rev1

    assert kubectl("rollout", "undo", "ds/web", "-n", ns, "--to-revision=1").stdout.strip() == "daemonset.apps/web rolled back"
    _rollout_lines_ok(kubectl("rollout", "status", "ds/web", "-n", ns, "--timeout=60s").stdout, "web", 5)
    image = kubectl("get", "ds", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert image == "nginx:1.27"
    hist = kubectl("rollout", "history", "ds/web", "-n", ns).stdout.split()
    assert hist[-4:] == ["2", "<none>", "3", "<none>"]
    # kubectl compares its own rendering of the template with the revision's data, byte for byte
    skipped = kubectl("rollout", "undo", "ds/web", "-n", ns, "--to-revision=3").stdout.strip()
    assert skipped == "daemonset.apps/web skipped rollback (current template already matches revision 3)"
    missing = kubectl("rollout", "undo", "ds/web", "-n", ns, "--to-revision=9", check=False)
    assert missing.returncode == 1 and "unable to find specified revision 9 in history" in missing.stderr
    # `kubectl rollout undo` with no revision goes back to the previous one (2: nginx:1.28)
    kubectl("rollout", "undo", "ds/web", "-n", ns)
    _rollout_lines_ok(kubectl("rollout", "status", "ds/web", "-n", ns, "--timeout=60s").stdout, "web", 5)
    row = kubectl("get", "ds", "web", "-n", ns, "--no-headers").stdout.split()
    assert row[:6] == ["web", "5", "5", "5", "5", "5"]
    pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "json").stdout)["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.28"} and len(pods) == 5
