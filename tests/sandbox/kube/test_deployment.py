"""Deployment -> ReplicaSet -> Pods against the real scheduler and kubelet, on an in-process cluster.

Rollouts are frozen at exact, quiescent counts by making the new image unpullable, then released.
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
from keybuzz_tui.sandbox.kube.api import JSON_PATCH, MERGE_PATCH, SMP
from keybuzz_tui.sandbox.kube.cluster import KubeCluster
from keybuzz_tui.sandbox.kube.controllers.deployment import equal_ignore_hash
from keybuzz_tui.sandbox.kube.controllers.replicaset import compute_hash
from keybuzz_tui.sandbox.kube.registry import apps, core
from keybuzz_tui.sandbox.scenarios import load

DEPLOY = apps("deployments")
RS = apps("replicasets")
PODS = core("pods")
EVENTS = core("events")
NAMESPACES = core("namespaces")
NS = "default"
SPEED = 40.0
SAFE = set("bcdfghjklmnpqrstvwxz2456789")


@pytest.fixture
async def cluster():
    c = KubeCluster(load("healthy"), Addresses(net=62), clock=Clock(SPEED))
    c.bootstrap()
    c.start()
    yield c
    await c.stop()


def deploy_body(
    name: str = "api",
    *,
    replicas: int | None = 3,
    image: str = "nginx:1.27",
    strategy: dict[str, Any] | None = None,
    deadline: int | None = None,
    history: int | None = None,
    ns: str = NS,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    if strategy is not None:
        spec["strategy"] = strategy
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    if history is not None:
        spec["revisionHistoryLimit"] = history
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}, "spec": spec}


def get_d(c: KubeCluster, name: str = "api", ns: str = NS) -> dict[str, Any]:
    return c.store.get(DEPLOY, ns, name)


def owned(c: KubeCluster, rt: Any, owner: dict[str, Any], *, terminating: bool = False) -> list[dict[str, Any]]:
    uid = owner["metadata"]["uid"]
    ns = owner["metadata"]["namespace"]
    out = []
    for o in c.store.list(rt, ns):
        if any(r.get("uid") == uid and r.get("controller") for r in o["metadata"].get("ownerReferences") or []):
            if terminating or not o["metadata"].get("deletionTimestamp"):
                out.append(o)
    return out


def rss_of(c: KubeCluster, name: str = "api") -> dict[str, dict[str, Any]]:
    """ReplicaSets of a Deployment by revision number."""
    return {int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): rs for rs in owned(c, RS, get_d(c, name))}


def pods_of_rs(c: KubeCluster, rs: dict[str, Any], *, terminating: bool = False) -> list[dict[str, Any]]:
    fresh = c.store.get(RS, rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs
    return owned(c, PODS, fresh, terminating=terminating)


def events(c: KubeCluster, kind: str, name: str, reason: str | None = None, ns: str = NS) -> list[str]:
    out = []
    for e in sorted(c.store.list(EVENTS, ns), key=lambda e: (e["firstTimestamp"], e["metadata"]["resourceVersion"].zfill(12))):
        io = e["involvedObject"]
        if io.get("kind") == kind and io.get("name") == name and (reason is None or e["reason"] == reason):
            out.append(e["message"])
    return out


def is_ready(pod: dict[str, Any]) -> bool:
    return any(cd["type"] == "Ready" and cd["status"] == "True" for cd in (pod.get("status") or {}).get("conditions") or [])


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(x for x in status.get("conditions") or [] if x["type"] == ctype)


def counters(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in ("conditions", "collisionCount")}


async def eventually(pred: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last: Any = None
    while loop.time() < end:
        try:
            last = pred()
        except (KeyError, TypeError, IndexError, StopIteration) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


async def settled(pred: Callable[[], bool], what: str, hold: float = 0.3) -> None:
    loop = asyncio.get_running_loop()
    await eventually(pred, what)
    end = loop.time() + hold
    while loop.time() < end:
        assert pred(), f"{what} did not hold"
        await asyncio.sleep(0.02)


def rolled_out(c: KubeCluster, name: str = "api", ns: str = NS) -> Callable[[], bool]:
    """What `kubectl rollout status deployment` waits for, plus no old pod left anywhere."""

    def check() -> bool:
        d = get_d(c, name, ns)
        s = d["status"]
        want = d["spec"].get("replicas", 1)
        pods = [p for rs in owned(c, RS, d) for p in owned(c, PODS, rs, terminating=True)]
        return (
            s.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and s.get("updatedReplicas", 0) == want
            and s.get("replicas", 0) == want
            and s.get("availableReplicas", 0) == want
            and cond(s, "Progressing")["reason"] == "NewReplicaSetAvailable"
            and len(pods) == want
            and all(is_ready(p) for p in pods)
        )

    return check


def set_image(c: KubeCluster, image: str, name: str = "api") -> None:
    c.api.patch(DEPLOY, NS, name, SMP, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})


async def create(c: KubeCluster, body: dict[str, Any]) -> dict[str, Any]:
    c.api.create(DEPLOY, body["metadata"]["namespace"], body)
    await eventually(rolled_out(c, body["metadata"]["name"], body["metadata"]["namespace"]), f"{body['metadata']['name']} rolled out")
    return get_d(c, body["metadata"]["name"], body["metadata"]["namespace"])


# --- creation and naming ---------------------------------------------------------------------


async def test_deployment_creates_a_hash_named_replicaset_and_its_pods(cluster: KubeCluster) -> None:
    c = cluster
    d = await create(c, deploy_body())
    [rs] = owned(c, RS, d)
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert set(hash_) <= SAFE and 1 <= len(hash_) <= 10
    assert rs["metadata"]["name"] == f"api-{hash_}"
    assert rs["metadata"]["labels"] == {"app": "api", "pod-template-hash": hash_}
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
        "deployment.kubernetes.io/revision": "1",
    }
    assert rs["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    ]
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "api", "pod-template-hash": hash_}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "api", "pod-template-hash": hash_}
    assert rs["spec"]["replicas"] == 3
    pods = pods_of_rs(c, rs)
    assert len(pods) == 3
    for p in pods:
        assert p["metadata"]["generateName"] == f"api-{hash_}-"
        assert p["metadata"]["labels"] == {"app": "api", "pod-template-hash": hash_}
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" and p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
        assert p["status"]["phase"] == "Running"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert events(c, "Deployment", "api", "ScalingReplicaSet") == [f"Scaled up replica set api-{hash_} from 0 to 3"]
    assert sorted(events(c, "ReplicaSet", rs["metadata"]["name"], "SuccessfulCreate")) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)
    src = {e["source"]["component"] for e in c.store.list(EVENTS, NS) if e["reason"] in ("ScalingReplicaSet", "SuccessfulCreate")}
    assert src == {"deployment-controller", "replicaset-controller"}


async def test_hash_depends_on_the_template_only(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(NAMESPACES, None, {"metadata": {"name": "other"}})
    a = await create(c, deploy_body())
    b = await create(c, deploy_body(ns="other"))
    [ra], [rb] = owned(c, RS, a), owned(c, RS, b)
    assert ra["metadata"]["name"] == rb["metadata"]["name"]
    template = copy.deepcopy(a["spec"]["template"])
    assert ra["metadata"]["labels"]["pod-template-hash"] == compute_hash(template, None)
    assert compute_hash(template, 1) != compute_hash(template, None)
    template["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert compute_hash(template, None) != compute_hash(a["spec"]["template"], None)


def test_equal_ignore_hash_ignores_the_hash_label_and_go_rendering() -> None:
    a = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    b = {"metadata": {"labels": {"app": "x", "pod-template-hash": "5d9b9b7c6f"}, "creationTimestamp": None}, "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}}
    assert equal_ignore_hash(a, b)
    b["spec"]["containers"][0]["image"] = "j"
    assert not equal_ignore_hash(a, b)


# --- status ----------------------------------------------------------------------------------


async def test_status_and_conditions_at_rest(cluster: KubeCluster) -> None:
    c = cluster
    d = await create(c, deploy_body())
    s = d["status"]
    assert counters(s) == {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    [rs] = owned(c, RS, d)
    assert [(x["type"], x["status"], x["reason"], x["message"]) for x in s["conditions"]] == [
        ("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        ("Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'),
    ]
    for x in s["conditions"]:
        assert set(x) == {"type", "status", "lastUpdateTime", "lastTransitionTime", "reason", "message"}
    assert rs["status"] == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 1}


async def test_first_reconcile_reports_a_new_replicaset_without_availability(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(DEPLOY, NS, deploy_body())
    c.manager.run_one(("deployment", NS, "api"))
    d = get_d(c)
    [rs] = owned(c, RS, d)
    s = d["status"]
    assert counters(s) == {"observedGeneration": 1, "unavailableReplicas": 3}
    assert [(x["type"], x["status"], x["reason"], x["message"]) for x in s["conditions"]] == [
        ("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs["metadata"]["name"]}"'),
        ("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
    ]
    await eventually(rolled_out(c), "rolled out")


async def test_world_coredns_is_a_settled_deployment(cluster: KubeCluster) -> None:
    c = cluster
    d = get_d(c, "coredns", "kube-system")
    assert rolled_out(c, "coredns", "kube-system")()
    [rs] = owned(c, RS, d)
    assert rs["metadata"]["name"] == f"coredns-{rs['metadata']['labels']['pod-template-hash']}"
    assert [p["metadata"]["labels"]["k8s-app"] for p in pods_of_rs(c, rs)] == ["kube-dns"]


# --- scaling ---------------------------------------------------------------------------------


async def test_scaling_up_and_down(cluster: KubeCluster) -> None:
    c = cluster
    d = await create(c, deploy_body())
    [rs] = owned(c, RS, d)
    name = rs["metadata"]["name"]
    c.api.patch(DEPLOY, NS, "api", MERGE_PATCH, {"spec": {"replicas": 5}})
    assert get_d(c)["metadata"]["generation"] == 2 and get_d(c)["status"]["observedGeneration"] == 1
    await eventually(rolled_out(c), "scaled to 5")
    assert counters(get_d(c)["status"]) == {"observedGeneration": 2, "replicas": 5, "updatedReplicas": 5, "readyReplicas": 5, "availableReplicas": 5}
    c.api.patch(DEPLOY, NS, "api", MERGE_PATCH, {"spec": {"replicas": 1}})
    await eventually(rolled_out(c), "scaled to 1")
    rs = c.store.get(RS, NS, name)
    assert rs["spec"]["replicas"] == 1
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "2"
    assert events(c, "Deployment", "api", "ScalingReplicaSet") == [
        f"Scaled up replica set {name} from 0 to 3",
        f"Scaled up replica set {name} from 3 to 5",
        f"Scaled down replica set {name} from 5 to 1",
    ]
    assert len(events(c, "ReplicaSet", name, "SuccessfulDelete")) == 4
    assert [r for r in rss_of(c)] == [1]  # scaling is not a new revision
    c.api.patch(DEPLOY, NS, "api", MERGE_PATCH, {"spec": {"replicas": 0}})
    await eventually(lambda: not pods_of_rs(c, rs, terminating=True) and get_d(c)["status"].get("replicas", 0) == 0, "scaled to 0")
    assert counters(get_d(c)["status"]) == {"observedGeneration": 4}


async def test_replicaset_replaces_a_deleted_pod(cluster: KubeCluster) -> None:
    c = cluster
    d = await create(c, deploy_body())
    [rs] = owned(c, RS, d)
    victim = pods_of_rs(c, rs)[0]["metadata"]["name"]
    c.api.delete(PODS, NS, victim)
    await eventually(lambda: victim not in {p["metadata"]["name"] for p in pods_of_rs(c, rs, terminating=True)} and rolled_out(c)(), "replaced")
    assert len(pods_of_rs(c, rs)) == 3


async def test_standalone_replicaset(cluster: KubeCluster) -> None:
    c = cluster
    body = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "solo", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "solo"}},
            "template": {"metadata": {"labels": {"app": "solo", "extra": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
        },
    }
    c.api.create(RS, NS, body)
    want = {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 1}
    await settled(lambda: c.store.get(RS, NS, "solo")["status"] == want, "standalone RS ready")
    assert all(p["metadata"]["generateName"] == "solo-" for p in owned(c, PODS, c.store.get(RS, NS, "solo")))


# --- rollouts --------------------------------------------------------------------------------


async def test_rolling_update_is_bounded_by_surge_and_unavailability(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=4))
    old = rss_of(c)[1]
    c.kubelet.set_missing_images(["*:broken"])
    set_image(c, "nginx:broken")

    def frozen() -> bool:
        rss = rss_of(c)
        return (
            set(rss) == {1, 2}
            and rss[1]["spec"]["replicas"] == 3
            and rss[2]["spec"]["replicas"] == 2
            and counters(get_d(c)["status"])
            == {"observedGeneration": 2, "replicas": 5, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 2}
        )

    await settled(frozen, "rollout frozen at 3 old + 2 new")
    new = rss_of(c)[2]
    s = get_d(c)["status"]
    assert (cond(s, "Available")["status"], cond(s, "Available")["reason"]) == ("True", "MinimumReplicasAvailable")
    assert (cond(s, "Progressing")["reason"], cond(s, "Progressing")["message"]) == ("ReplicaSetUpdated", f'ReplicaSet "{new["metadata"]["name"]}" is progressing.')
    assert get_d(c)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    c.kubelet.set_missing_images([])
    await eventually(rolled_out(c), "rollout finished", timeout=20)
    rss = rss_of(c)
    assert rss[1]["metadata"]["name"] == old["metadata"]["name"] and rss[1]["spec"]["replicas"] == 0  # kept for undo
    assert rss[2]["spec"]["replicas"] == 4
    msg = cond(get_d(c)["status"], "Progressing")["message"]
    assert msg == f'ReplicaSet "{rss[2]["metadata"]["name"]}" has successfully progressed.'
    scaling = events(c, "Deployment", "api", "ScalingReplicaSet")
    assert scaling[1:3] == [
        f"Scaled up replica set {rss[2]['metadata']['name']} from 0 to 1",
        f"Scaled down replica set {old['metadata']['name']} from 4 to 3",
    ]
    assert f"Scaled down replica set {old['metadata']['name']} from 1 to 0" in scaling


async def test_scaling_mid_rollout_is_proportional(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=4))
    c.kubelet.set_missing_images(["*:broken"])
    set_image(c, "nginx:broken")
    await settled(lambda: (rss_of(c)[1]["spec"]["replicas"], rss_of(c)[2]["spec"]["replicas"]) == (3, 2), "frozen at 3 + 2")
    c.api.patch(DEPLOY, NS, "api", MERGE_PATCH, {"spec": {"replicas": 8}})
    # allowed 8 + 2 surge = 10; both RSs were sized for max 5: 3 -> 6 and 2 -> 4
    await settled(lambda: (rss_of(c)[1]["spec"]["replicas"], rss_of(c)[2]["spec"]["replicas"]) == (6, 4), "proportionally scaled")


async def test_recreate_removes_every_old_pod_before_creating_new_ones(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=2, strategy={"type": "Recreate"}))
    old = rss_of(c)[1]
    old_uid = old["metadata"]["uid"]
    overlap: list[str] = []

    def watch(ev: Any) -> None:
        if ev.rt.key != PODS.key or ev.type != "ADDED":
            return
        ref = ev.obj["metadata"]["ownerReferences"][0]
        if ref["uid"] != old_uid and any(
            r.get("uid") == old_uid for p in c.store.list(PODS, NS) for r in p["metadata"].get("ownerReferences") or []
        ):
            overlap.append(ev.obj["metadata"]["name"])

    c.store.add_listener(watch)
    set_image(c, "nginx:1.28")
    await eventually(rolled_out(c), "recreated", timeout=20)
    assert overlap == []
    new = rss_of(c)[2]
    scaling = events(c, "Deployment", "api", "ScalingReplicaSet")
    assert scaling[-2:] == [f"Scaled down replica set {old['metadata']['name']} from 2 to 0", f"Scaled up replica set {new['metadata']['name']} from 0 to 2"]


async def test_progress_deadline_exceeded(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=2, deadline=40))  # 40 s simulated = 1 s
    c.kubelet.set_missing_images(["*:broken"])
    set_image(c, "nginx:broken")
    await eventually(lambda: cond(get_d(c)["status"], "Progressing")["reason"] == "ProgressDeadlineExceeded", "deadline exceeded", timeout=20)
    p = cond(get_d(c)["status"], "Progressing")
    new = rss_of(c)[2]
    assert (p["status"], p["message"]) == ("False", f'ReplicaSet "{new["metadata"]["name"]}" has timed out progressing.')


async def test_pause_and_resume(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=2))
    c.api.patch(DEPLOY, NS, "api", MERGE_PATCH, {"spec": {"paused": True}})
    await eventually(lambda: cond(get_d(c)["status"], "Progressing")["reason"] == "DeploymentPaused", "paused")
    p = cond(get_d(c)["status"], "Progressing")
    assert (p["status"], p["message"]) == ("Unknown", "Deployment is paused")
    set_image(c, "nginx:1.28")
    await settled(lambda: get_d(c)["status"]["observedGeneration"] == 3 and list(rss_of(c)) == [1], "no rollout while paused")
    c.api.patch(DEPLOY, NS, "api", MERGE_PATCH, {"spec": {"paused": False}})
    await eventually(rolled_out(c), "resumed and rolled out", timeout=20)
    assert sorted(rss_of(c)) == [1, 2]


# --- history and undo ------------------------------------------------------------------------


def undo_patch(c: KubeCluster, rs: dict[str, Any]) -> list[dict[str, Any]]:
    """What `kubectl rollout undo deployment` sends (DeploymentRollbacker): a JSON patch.

    The template is Go-rendered (creationTimestamp null, resources {}), hash label removed; the
    annotations are the RS's minus the deployment-controller ones, plus the Deployment's own.
    """
    skip = {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
    template = copy.deepcopy(rs["spec"]["template"])
    template["metadata"]["labels"].pop("pod-template-hash")
    template["metadata"]["creationTimestamp"] = None
    for ct in template["spec"]["containers"]:
        ct.setdefault("resources", {})
    d = get_d(c)
    ann = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k in skip}
    ann.update({k: v for k, v in (rs["metadata"].get("annotations") or {}).items() if k not in skip})
    return [{"op": "replace", "path": "/spec/template", "value": template}, {"op": "replace", "path": "/metadata/annotations", "value": ann}]


async def test_undo_reuses_the_old_replicaset_with_the_next_revision(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=2))
    set_image(c, "nginx:1.28")
    await eventually(rolled_out(c), "rolled out 1.28", timeout=20)
    first = rss_of(c)[1]
    c.api.patch(DEPLOY, NS, "api", JSON_PATCH, undo_patch(c, first))
    await eventually(lambda: rolled_out(c)() and set(rss_of(c)) == {2, 3}, "rolled back", timeout=20)
    rss = rss_of(c)
    assert rss[3]["metadata"]["name"] == first["metadata"]["name"]
    assert rss[3]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert get_d(c)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert {p["spec"]["containers"][0]["image"] for p in pods_of_rs(c, rss[3])} == {"nginx:1.27"}
    assert rss[2]["spec"]["replicas"] == 0
    assert len(owned(c, RS, get_d(c))) == 2


async def test_revision_history_limit_deletes_the_oldest_empty_replicasets(cluster: KubeCluster) -> None:
    c = cluster
    await create(c, deploy_body(replicas=1, history=1))
    for image in ("nginx:1.28", "nginx:1.29", "nginx:1.30"):
        set_image(c, image)
        await eventually(rolled_out(c), f"rolled out {image}", timeout=20)
    await eventually(lambda: sorted(rss_of(c)) == [3, 4], "history trimmed to one old ReplicaSet")


# --- the real kubectl against a running sandbox ----------------------------------------------


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


def _rolled_out(out: str, name: str) -> None:
    lines = out.strip().splitlines()
    assert lines[-1] == f'deployment "{name}" successfully rolled out'
    allowed = re.compile(
        rf'^Waiting for deployment "{name}" rollout to finish: '
        r"(\d+ out of \d+ new replicas have been updated|\d+ old replicas are pending termination|\d+ of \d+ updated replicas are available)\.\.\.$"
        r"|^Waiting for deployment spec update to be observed\.\.\.$"
    )
    assert all(allowed.match(ln) for ln in lines[:-1]), lines


@pytest.mark.kubectl
def test_kubectl_deployment_rollout_scale_history_and_undo(kubectl) -> None:
    ns = "deploy-rollout"
    kubectl("create", "namespace", ns)
    kubectl("create", "deployment", "api", "-n", ns, "--image=nginx:1.27", "--replicas=3")
    _rolled_out(kubectl("rollout", "status", "deployment/api", "-n", ns, "--timeout=60s").stdout, "api")
    row = kubectl("get", "deploy", "api", "-n", ns, "--no-headers").stdout.split()
    assert row[:4] == ["api", "3/3", "3", "3"]
    kubectl("set", "image", "deployment/api", "-n", ns, "nginx=nginx:1.28")
    _rolled_out(kubectl("rollout", "status", "deployment/api", "-n", ns, "--timeout=60s").stdout, "api")
    hist = [ln.split() for ln in kubectl("rollout", "history", "deployment/api", "-n", ns).stdout.splitlines()[1:] if ln.strip()]
    assert hist == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]
    rev1 = kubectl("rollout", "history", "deployment/api", "-n", ns, "--revision=1").stdout
    assert "deployment.apps/api with revision #1" in rev1 and "nginx:1.27" in rev1

    assert kubectl("rollout", "undo", "deployment/api", "-n", ns).stdout.strip() == "deployment.apps/api rolled back"
    _rolled_out(kubectl("rollout", "status", "deployment/api", "-n", ns, "--timeout=60s").stdout, "api")
    assert kubectl("get", "deploy", "api", "-n", ns, "-o", "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}").stdout == "3"
    skipped = kubectl("rollout", "undo", "deployment/api", "-n", ns, "--to-revision=3").stdout.strip()
    assert skipped == "deployment.apps/api skipped rollback (current template already matches revision 3)"
    rs = kubectl("get", "rs", "-n", ns, "--no-headers", "-o", "custom-columns=NAME:.metadata.name,DESIRED:.spec.replicas,IMAGE:.spec.template.spec.containers[0].image").stdout
    rows = sorted(ln.split() for ln in rs.strip().splitlines())
    assert sorted((r[1], r[2]) for r in rows) == [("0", "nginx:1.28"), ("3", "nginx:1.27")]
    assert all(re.fullmatch(r"api-[bcdfghjklmnpqrstvwxz2456789]{1,10}", r[0]) for r in rows)

    kubectl("scale", "deployment/api", "-n", ns, "--replicas=5")
    _rolled_out(kubectl("rollout", "status", "deployment/api", "-n", ns, "--timeout=60s").stdout, "api")
    d = json.loads(kubectl("get", "deploy", "api", "-n", ns, "-o", "json").stdout)
    assert {k: d["status"].get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == dict.fromkeys(
        ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"), 5
    )
    events = kubectl("get", "events", "-n", ns, "--field-selector", "reason=ScalingReplicaSet", "-o", "json").stdout
    assert any(e["source"]["component"] == "deployment-controller" for e in json.loads(events)["items"])
