"""The StatefulSet controller (OrderedReady and Parallel) against the real scheduler and kubelet."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from keybuzz_tui.sandbox.addresses import Addresses
from keybuzz_tui.sandbox.clock import Clock
from keybuzz_tui.sandbox.kube.api import MERGE_PATCH, SMP
from keybuzz_tui.sandbox.kube.cluster import KubeCluster
from keybuzz_tui.sandbox.kube.registry import apps, core
from keybuzz_tui.sandbox.scenarios import load

STS = apps("statefulsets")
CR = apps("controllerrevisions")
PODS = core("pods")
EVENTS = core("events")
NS = "default"
SPEED = 40.0


@pytest.fixture
async def cluster():
    c = KubeCluster(load("healthy"), Addresses(net=63), clock=Clock(SPEED))
    c.bootstrap()
    c.start()
    yield c
    await c.stop()


def sts_body(name: str = "web", *, replicas: int = 3, image: str = "nginx:1.27", policy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]},
        },
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    }
    if policy:
        spec["podManagementPolicy"] = policy
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def get_sts(c: KubeCluster, name: str = "web") -> dict[str, Any]:
    return c.store.get(STS, NS, name)


def pods(c: KubeCluster, name: str = "web") -> dict[str, dict[str, Any]]:
    uid = get_sts(c, name)["metadata"]["uid"]
    return {
        p["metadata"]["name"]: p
        for p in c.store.list(PODS, NS)
        if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
    }


def revisions(c: KubeCluster, name: str = "web") -> list[dict[str, Any]]:
    uid = get_sts(c, name)["metadata"]["uid"]
    crs = [r for r in c.store.list(CR, NS) if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])]
    return sorted(crs, key=lambda r: r["revision"])


def is_ready(pod: dict[str, Any]) -> bool:
    return any(cd["type"] == "Ready" and cd["status"] == "True" for cd in (pod.get("status") or {}).get("conditions") or [])


def messages(c: KubeCluster, reason: str) -> list[str]:
    evs = [e for e in c.store.list(EVENTS, NS) if e["involvedObject"].get("kind") == "StatefulSet" and e["reason"] == reason]
    return [e["message"] for e in sorted(evs, key=lambda e: int(e["metadata"]["resourceVersion"]))]


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


def at_rest(c: KubeCluster, n: int, name: str = "web") -> Callable[[], bool]:
    def check() -> bool:
        sts = get_sts(c, name)
        s = sts["status"]
        ps = pods(c, name)
        return (
            s.get("observedGeneration") == sts["metadata"]["generation"]
            and s["replicas"] == n
            and s.get("readyReplicas", 0) == n
            and s.get("updatedReplicas", 0) == n
            and s.get("currentRevision") == s.get("updateRevision")
            and len(ps) == n
            and all(is_ready(p) and not p["metadata"].get("deletionTimestamp") for p in ps.values())
        )

    return check


def creation_order(c: KubeCluster) -> list[tuple[str, set[str]]]:
    """(pod created, pods Running and Ready at that moment), in order."""
    seen: list[tuple[str, set[str]]] = []

    def listener(ev: Any) -> None:
        if ev.rt.key == PODS.key and ev.type == "ADDED" and ev.obj["metadata"]["name"].startswith("web-"):
            ready = {p["metadata"]["name"] for p in c.store.list(PODS, NS) if is_ready(p) and p["status"].get("phase") == "Running"}
            seen.append((ev.obj["metadata"]["name"], ready))

    c.store.add_listener(listener)
    return seen


async def test_ordered_ready_creates_pods_one_at_a_time_in_order(cluster: KubeCluster) -> None:
    c = cluster
    order = creation_order(c)
    c.api.create(STS, NS, sts_body())
    await eventually(at_rest(c, 3), "3 replicas ready")
    assert [name for name, _ in order] == ["web-0", "web-1", "web-2"]
    assert {"web-0"} <= order[1][1] and {"web-0", "web-1"} <= order[2][1]
    assert messages(c, "SuccessfulCreate") == [f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]
    ev = next(e for e in c.store.list(EVENTS, NS) if e["reason"] == "SuccessfulCreate" and e["involvedObject"].get("kind") == "StatefulSet")
    assert ev["source"] == {"component": "statefulset-controller"}


async def test_pod_identity_revision_and_status(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(STS, NS, sts_body())
    await eventually(at_rest(c, 3), "3 replicas ready")
    sts = get_sts(c)
    [cr] = revisions(c)
    hash_ = cr["metadata"]["labels"]["controller-revision-hash"]
    rev = f"web-{hash_}"
    assert cr["metadata"]["name"] == rev and cr["revision"] == 1
    assert cr["metadata"]["labels"] == {"app": "web", "controller-revision-hash": hash_}
    assert cr["data"]["spec"]["template"]["$patch"] == "replace"
    assert cr["metadata"]["ownerReferences"][0] == {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": sts["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True
    }
    assert sts["status"] == {
        "observedGeneration": 1,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": rev,
        "updateRevision": rev,
        "collisionCount": 0,
        "availableReplicas": 3,
    }
    for i in range(3):
        p = pods(c)[f"web-{i}"]
        assert p["metadata"]["labels"] == {
            "app": "web",
            "controller-revision-hash": rev,
            "statefulset.kubernetes.io/pod-name": f"web-{i}",
            "apps.kubernetes.io/pod-index": str(i),
        }
        assert p["spec"]["hostname"] == f"web-{i}" and p["spec"]["subdomain"] == "web"
        assert {"name": "data", "persistentVolumeClaim": {"claimName": f"data-web-{i}"}} in p["spec"]["volumes"]
        assert [pt["containerPort"] for pt in p["spec"]["containers"][0]["ports"]] == [8080]  # what the port scan reads


async def test_rolling_update_replaces_pods_from_the_highest_ordinal(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(STS, NS, sts_body())
    await eventually(at_rest(c, 3), "3 replicas ready")
    old_rev = get_sts(c)["status"]["currentRevision"]
    c.api.patch(STS, NS, "web", SMP, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}})
    await eventually(lambda: at_rest(c, 3)() and get_sts(c)["status"]["currentRevision"] != old_rev, "rolled", timeout=20)
    assert messages(c, "SuccessfulDelete") == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1, 0)]
    s = get_sts(c)["status"]
    assert s["updateRevision"] == s["currentRevision"] == revisions(c)[-1]["metadata"]["name"]
    assert [r["revision"] for r in revisions(c)] == [1, 2]
    assert {p["spec"]["containers"][0]["image"] for p in pods(c).values()} == {"nginx:1.28"}
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods(c).values()} == {s["updateRevision"]}


async def test_scale_down_removes_the_highest_ordinals_first(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(STS, NS, sts_body())
    await eventually(at_rest(c, 3), "3 replicas ready")
    c.api.patch(STS, NS, "web", MERGE_PATCH, {"spec": {"replicas": 1}})
    await eventually(at_rest(c, 1), "scaled to 1")
    assert list(pods(c)) == ["web-0"]
    assert messages(c, "SuccessfulDelete") == ["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful"]


async def test_parallel_policy_creates_every_pod_at_once(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(STS, NS, sts_body(policy="Parallel"))
    c.manager.run_one(("statefulset", NS, "web"))
    assert sorted(pods(c)) == ["web-0", "web-1", "web-2"]
    assert get_sts(c)["status"]["replicas"] == 3
    await eventually(at_rest(c, 3), "3 replicas ready")


async def test_generation_lags_until_observed(cluster: KubeCluster) -> None:
    c = cluster
    c.api.create(STS, NS, sts_body(replicas=1))
    await eventually(at_rest(c, 1), "1 replica ready")
    c.api.patch(STS, NS, "web", MERGE_PATCH, {"spec": {"replicas": 2}})
    assert get_sts(c)["metadata"]["generation"] == 2 and get_sts(c)["status"]["observedGeneration"] == 1
    await eventually(at_rest(c, 2), "2 replicas ready")


# --- the real kubectl against a running sandbox ----------------------------------------------


@pytest.mark.kubectl
def test_kubectl_statefulset_rollout_status_and_get(sandbox, tmp_path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed on this machine")

    def kubectl(*args: str, input: str | None = None) -> str:
        cmd = ["kubectl", f"--kubeconfig={sandbox.kubeconfig_path}", f"--cache-dir={tmp_path}", "--request-timeout=20s", *args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, f"kubectl {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
        return r.stdout

    manifest = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "nginx:1.27", ports: [{containerPort: 5432}]}]
"""
    kubectl("apply", "-f", "-", input=manifest)
    out = kubectl("rollout", "status", "sts/db", "--timeout=60s").strip().splitlines()
    assert out[-1] == "partitioned roll out complete: 2 new pods have been updated..."
    assert all(ln.startswith("Waiting for") for ln in out[:-1])
    assert kubectl("get", "sts", "db", "--no-headers").split()[:2] == ["db", "2/2"]
    assert kubectl("get", "pods", "-l", "app=db", "-o", "name").split() == ["pod/db-0", "pod/db-1"]
