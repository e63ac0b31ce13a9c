"""Step 3, second half: watch the DaemonSets roll out per node and explain what is stuck; history
and rollback. Each test runs its own sandbox world (0.7 s to start) because hostPorts are per
node: two installs on the same ports in one world would collide on purpose-free grounds.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from support import sandboxes
from support.engine_fixtures import WORKERS, app_secrets, engine_context, isolated_config, wait_for

from keybuzz_tui.config import Config
from keybuzz_tui.engine import kube, kubeio, render, rollout
from keybuzz_tui.events import KubeEvent, PodProgress, RolloutProgress, StepFinished

APPS = ["keybuzz-api", "keybuzz-front"]


_slots = itertools.count(1)


def _module_world(tmp_path_factory, scenario):
    sb = sandboxes.start(tmp_path_factory.mktemp(scenario), scenario)
    yield sb
    sb.stop()


@pytest.fixture(scope="module")
def healthy_sb(tmp_path_factory):
    yield from _module_world(tmp_path_factory, "healthy")


@pytest.fixture(scope="module")
def pull_sb(tmp_path_factory):
    yield from _module_world(tmp_path_factory, "image-pull-failure")


@pytest.fixture
def world(tmp_path, healthy_sb, pull_sb):
    """start(scenario, config=None) -> (sb, ctx, recorder, config).

    healthy and image-pull-failure share one world per module, each test in a namespace and on
    ports of its own (hostPorts are per node, NodePorts cluster-wide); the other scenarios start a
    world of their own with the runbook's default ports, which is what they break."""
    started = []

    def start(scenario: str = "healthy", config: Config | None = None):
        shared = {"healthy": healthy_sb, "image-pull-failure": pull_sb}.get(scenario)
        if shared is not None:
            slot = next(_slots)
            base = isolated_config(f"kb-roll-{slot}", slot)
            if config is not None:  # keep the caller's changes, in the test's own namespace
                config.namespace = base.namespace
                for mine, theirs in zip(config.apps, base.apps):
                    mine.node_port, mine.host = theirs.node_port, theirs.host
                    if mine.port in (8080, 3000):
                        mine.port = theirs.port
            cfg, sb = config or base, shared
        else:
            sb = sandboxes.start(tmp_path / f"sb{len(started)}", scenario)
            started.append(sb)
            cfg = config or Config()
        ctx, rec = engine_context(sb, tmp_path / f"journal-{cfg.namespace}.jsonl", cfg, secrets=app_secrets())
        return sb, ctx, rec, cfg

    yield start
    for sb in started:
        sb.stop()


def _apply(ctx, cfg) -> None:
    kube.apply(ctx, kube.plan(ctx, render.render(cfg, ctx.secrets, include_secret_values=True)))


def _pods(ctx) -> list[dict]:
    return kubeio.get(ctx, f"/api/v1/namespaces/{ctx.config.namespace}/pods")["items"]


def _ready(pod) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


# --- the healthy rollout --------------------------------------------------------------------


def test_healthy_rollout_completes_with_five_ready_pods_per_app_on_the_workers(world):
    sb, ctx, rec, cfg = world()
    _apply(ctx, cfg)
    result = rollout.watch_rollout(ctx, APPS, timeout=30)
    assert result.status == "complete" and result.ok, result.summary
    for app in APPS:
        a = result.apps[app]
        assert (a.desired, a.updated, a.ready, a.available) == (5, 5, 5, 5)
        assert a.message == f'daemon set "{app}" successfully rolled out'
        assert a.expected_nodes == list(WORKERS)
        assert sorted(a.nodes) == list(WORKERS)
        assert all(n.ok and n.phase == "Running" and n.pod.startswith(app) for n in a.nodes.values())
    pods = [p for p in _pods(ctx) if not p["metadata"].get("deletionTimestamp")]
    for app in APPS:
        mine = [p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/name"] == app]
        assert sorted(p["spec"]["nodeName"] for p in mine) == list(WORKERS)
        assert all(p["status"]["phase"] == "Running" and _ready(p) for p in mine)
        assert all(p["status"]["podIP"] == p["status"]["hostIP"] for p in mine)  # hostNetwork
    progress = rec.of(RolloutProgress)
    assert {e.app for e in progress} == set(APPS)
    last = {e.app: e for e in progress}
    assert all((e.desired, e.updated, e.available) == (5, 5, 5) for e in last.values())
    ready_nodes = {(e.app, e.node) for e in rec.of(PodProgress) if e.ready}
    assert ready_nodes == {(a, n) for a in APPS for n in WORKERS}
    assert rec.of(StepFinished)[-1].status == "ok"


def test_history_and_rollback_restore_the_previous_image(world):
    sb, ctx, rec, cfg = world()
    _apply(ctx, cfg)
    assert rollout.watch_rollout(ctx, APPS, timeout=30).ok
    cfg.apps[0].image = "ghcr.io/keybuzz/api:1.4.3"
    _apply(ctx, cfg)
    seen = len(rec.events)
    assert rollout.watch_rollout(ctx, ["keybuzz-api"], timeout=30).ok
    # a rolling update (maxUnavailable 1, maxSurge 0) is seen node by node, not only at the end
    during = rec.events[seen:]
    assert any(isinstance(e, RolloutProgress) and (e.updated < e.desired or e.available < e.desired) for e in during)
    assert len({e.node for e in during if isinstance(e, PodProgress) and not e.ready}) >= 2
    hist = wait_for(lambda: (h := rollout.history(ctx, "keybuzz-api")) and len(h) == 2 and h, 10, what="two revisions")
    old, new = hist
    assert (old.revision, old.images, old.current) == (1, ("ghcr.io/keybuzz/api:1.4.2",), False)
    assert (new.revision, new.images, new.current) == (2, ("ghcr.io/keybuzz/api:1.4.3",), True)
    assert old.lines() == ["~ .spec.template.spec.containers[name=keybuzz-api].image: ghcr.io/keybuzz/api:1.4.3 -> ghcr.io/keybuzz/api:1.4.2"]
    assert new.diff == () and old.config_hash == new.config_hash and old.created

    res = rollout.rollback(ctx, "keybuzz-api", timeout=30)
    assert (res.from_revision, res.to_revision, res.skipped) == (2, 1, False)
    assert res.ok and res.rollout is not None and res.rollout.status == "complete", res.rollout.summary
    live = kubeio.get(ctx, f"/apis/apps/v1/namespaces/{cfg.namespace}/daemonsets/keybuzz-api")
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/keybuzz/api:1.4.2"
    api_pods = [p for p in _pods(ctx) if p["metadata"]["labels"]["app.kubernetes.io/name"] == "keybuzz-api" and not p["metadata"].get("deletionTimestamp")]
    assert len(api_pods) == 5 and {p["spec"]["containers"][0]["image"] for p in api_pods} == {"ghcr.io/keybuzz/api:1.4.2"}
    (entry,) = [e for e in ctx.journal.entries() if e["event"] == "rollback"]
    assert (entry["name"], entry["from_revision"], entry["to_revision"]) == ("keybuzz-api", 2, 1)
    # the controller renumbers the restored template as the newest revision, like kubectl undo
    after = wait_for(lambda: (h := rollout.history(ctx, "keybuzz-api")) and h[-1].revision == 3 and h, 10, what="revision 3")
    assert after[-1].current and after[-1].images == ("ghcr.io/keybuzz/api:1.4.2",)
    again = rollout.rollback(ctx, "keybuzz-api", revision=3, watch=False)
    assert again.skipped
    # keybuzz.yaml still says 1.4.3: the next plan shows exactly that difference
    plan = kube.plan(ctx, render.render(cfg, ctx.secrets, include_secret_values=True))
    assert [c.ref for c in plan.changes if c.action == "update"] == [f"DaemonSet {cfg.namespace}/keybuzz-api"]
    kube.apply(ctx, plan)  # rolling forward again converges: the rollback's patch owns nothing apart
    assert not kube.plan(ctx, render.render(cfg, ctx.secrets, include_secret_values=True)).has_changes


def test_rollback_without_history_is_a_clear_error(world):
    sb, ctx, rec, cfg = world()
    with pytest.raises(rollout.RolloutError) as e:
        rollout.history(ctx, "keybuzz-api")
    assert 'daemonsets.apps "keybuzz-api" not found' in str(e.value)
    _apply(ctx, cfg)
    wait_for(lambda: rollout.history(ctx, "keybuzz-api"), 10, what="first revision")
    with pytest.raises(rollout.RolloutError) as e2:
        rollout.rollback(ctx, "keybuzz-api")
    assert "no previous revision" in str(e2.value)
    with pytest.raises(rollout.RolloutError) as e3:
        rollout.rollback(ctx, "keybuzz-api", revision=7)
    assert "no revision 7" in str(e3.value)


# --- what is stuck, and why -----------------------------------------------------------------


def test_port_taken_names_the_worker_the_crash_loop_and_the_bind_error(world):
    sb, ctx, rec, cfg = world("port-taken")
    _apply(ctx, cfg)
    result = rollout.watch_rollout(ctx, APPS, timeout=3)
    assert result.status == "timeout" and not result.ok
    assert result.apps["keybuzz-front"].status == "complete"
    stuck = result.stuck()
    assert [(app, n.node) for app, n in stuck] == [("keybuzz-api", "k3s-worker-03")]
    node = stuck[0][1]
    assert node.phase == "CrashLoopBackOff" and node.restarts >= 1
    assert "address already in use" in node.last_log.lower()
    assert "0.0.0.0:8080" in node.last_log
    assert "exit code 1" in node.message and node.last_log in node.message
    assert "ss -ltnp 'sport = :8080'" in node.remediation
    assert "keybuzz-api on k3s-worker-03" in result.message
    summary = result.summary
    assert "k3s-worker-03" in summary and "CrashLoopBackOff" in summary
    crash = [e for e in rec.of(PodProgress) if e.node == "k3s-worker-03" and e.app == "keybuzz-api" and e.phase == "CrashLoopBackOff"]
    assert crash and "address already in use" in crash[-1].message.lower()
    assert any(e.reason == "BackOff" and e.type_ == "Warning" and e.name == node.pod for e in rec.of(KubeEvent))
    assert all(n.ok for n in result.apps["keybuzz-api"].nodes.values() if n.node != "k3s-worker-03")


def test_image_pull_failure_reports_the_pull_error(world):
    sb, ctx, rec, cfg = world("image-pull-failure")
    _apply(ctx, cfg)
    result = rollout.watch_rollout(ctx, APPS, timeout=2)
    assert result.status == "timeout" and not result.ok
    for app in APPS:
        nodes = result.apps[app].nodes
        assert sorted(nodes) == list(WORKERS)
        for n in nodes.values():
            assert n.phase in ("ErrImagePull", "ImagePullBackOff"), n
            image = cfg.app(app).image
            assert f'failed to pull and unpack image "{image}"' in n.message and "not found" in n.message
            assert "apps[].image" in n.remediation
    assert any(e.reason == "Failed" and "Failed to pull image" in e.message for e in rec.of(KubeEvent))


def test_node_notready_is_reported_not_a_clean_success(world):
    """kubectl would say "successfully rolled out": desired dropped to 4 with the unreachable taint."""
    sb, ctx, rec, cfg = world("node-notready")
    _apply(ctx, cfg)
    result = rollout.watch_rollout(ctx, APPS, timeout=30)
    assert result.status == "degraded" and not result.ok
    for app in APPS:
        a = result.apps[app]
        assert a.message == f'daemon set "{app}" successfully rolled out'  # what kubectl says
        assert (a.desired, a.available) == (4, 4)
        assert a.expected_nodes == list(WORKERS)
        assert [n.node for n in a.stuck()] == ["k3s-worker-04"]
        w4 = a.nodes["k3s-worker-04"]
        assert w4.reason == "NodeNotReady" and "Kubelet stopped posting node status" in w4.message
        assert "4 desired" in a.note and "5 workers" in a.note
    assert "4/5 workers" in result.message and "k3s-worker-04" in result.message
    assert any(e.node == "k3s-worker-04" and e.reason == "NodeNotReady" for e in rec.of(PodProgress))
    assert rec.of(StepFinished)[-1].status == "warn"


def test_failed_scheduling_text_is_the_reason_for_a_pending_pod(world):
    """ingress-nginx holds hostPort 443 on every worker: the scheduler says so."""
    cfg = Config()
    cfg.apps[0].port = 443
    sb, ctx, rec, cfg = world("healthy", cfg)
    _apply(ctx, cfg)
    result = rollout.watch_rollout(ctx, ["keybuzz-api"], timeout=2)
    assert result.status == "timeout"
    for n in result.apps["keybuzz-api"].nodes.values():
        assert n.phase == "Pending" and n.reason == "FailedScheduling"
        assert "didn't have free ports for the requested pod ports" in n.message
        assert "hostPort 443" in n.remediation
    assert any(e.reason == "FailedScheduling" for e in rec.of(KubeEvent))


# --- timeout, cancel, watch robustness ------------------------------------------------------


def test_the_operator_timeout_is_honoured(world):
    sb, ctx, rec, cfg = world("image-pull-failure")
    _apply(ctx, cfg)
    t0 = time.monotonic()
    result = rollout.watch_rollout(ctx, APPS, timeout=1.5)
    took = time.monotonic() - t0
    assert result.status == "timeout" and 1.4 <= took < 3.0
    assert "rollout not finished after" in result.message and "k3s-worker-01" in result.message
    assert rec.of(StepFinished)[-1].status == "fail"


def test_cancel_is_honoured_within_two_seconds(world):
    sb, ctx, rec, cfg = world("image-pull-failure")
    _apply(ctx, cfg)
    timer = threading.Timer(0.5, ctx.cancel.cancel, args=("operator pressed Escape",))
    t0 = time.monotonic()
    timer.start()
    result = rollout.watch_rollout(ctx, APPS, timeout=60)
    took = time.monotonic() - t0
    timer.cancel()
    assert result.status == "cancelled" and took < 2.5
    assert "operator pressed Escape" in result.message


def test_a_missing_daemonset_is_reported_and_the_watch_picks_it_up_later(world, monkeypatch):
    """The watch streams end (server timeout) and resume from their resourceVersion: objects
    created after several re-watches are still seen."""
    sb, ctx, rec, cfg = world()
    monkeypatch.setattr(rollout, "WATCH_SECONDS", 1)
    calls: dict[str, int] = {}
    real_watch = kubeio.watch

    def counting(c, path, **kw):
        calls[path] = calls.get(path, 0) + 1
        return real_watch(c, path, **kw)

    monkeypatch.setattr(kubeio, "watch", counting)
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("r", rollout.watch_rollout(ctx, APPS, timeout=30)))
    t.start()
    wait_for(lambda: any("not found" in e.message for e in rec.of(RolloutProgress)), 10, what="a not-found progress")
    wait_for(lambda: calls.get(f"/apis/apps/v1/namespaces/{cfg.namespace}/daemonsets", 0) >= 3, 10, what="two re-watches")
    _apply(ctx, cfg)
    t.join(30)
    assert out["r"].status == "complete", out["r"].summary


def test_a_410_gone_relists_and_goes_on(world, monkeypatch):
    sb, ctx, rec, cfg = world()
    _apply(ctx, cfg)
    pods_path = f"/api/v1/namespaces/{cfg.namespace}/pods"
    lists: dict[str, int] = {}
    real_get, real_watch = kubeio.get, kubeio.watch
    expired = {"done": False}

    def get(c, path, **kw):
        lists[path] = lists.get(path, 0) + 1
        return real_get(c, path, **kw)

    def watch(c, path, **kw):
        if path == pods_path and not expired["done"]:
            expired["done"] = True
            return iter([{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 1 (2)"}}])
        return real_watch(c, path, **kw)

    monkeypatch.setattr(kubeio, "get", get)
    monkeypatch.setattr(kubeio, "watch", watch)
    result = rollout.watch_rollout(ctx, APPS, timeout=30)
    assert result.ok, result.summary
    assert lists[pods_path] >= 2


def test_a_deleted_daemonset_ends_the_watch_as_failed(world):
    sb, ctx, rec, cfg = world("image-pull-failure")
    _apply(ctx, cfg)
    out: dict = {}
    t = threading.Thread(target=lambda: out.setdefault("r", rollout.watch_rollout(ctx, ["keybuzz-api"], timeout=30)))
    t.start()
    wait_for(lambda: rec.of(RolloutProgress), 10, what="first progress")
    kubeio.delete(ctx, f"/apis/apps/v1/namespaces/{cfg.namespace}/daemonsets/keybuzz-api")
    t.join(10)
    assert out["r"].status == "failed" and "object has been deleted" in out["r"].message


def test_isolated_installs_share_a_world_on_their_own_ports(healthy_sb):
    """Two namespaces, two port sets, one sandbox: both roll out (the fixtures other tests use)."""
    for slot in (next(_slots), next(_slots)):
        cfg = isolated_config(f"kb-iso-{slot}", slot)
        c, r = engine_context(healthy_sb, None, cfg, secrets=app_secrets())
        _apply(c, cfg)
        res = rollout.watch_rollout(c, APPS, timeout=30)
        assert res.ok, res.summary


def test_a_worker_going_notready_after_the_rollout_is_named_with_its_pod(world):
    """A node whose kubelet stops after the pods started: its pod stays, marked not ready, and
    the DaemonSet stops counting the node; the result names the node, the pod and the reason."""
    sb, ctx, rec, cfg = world("port-taken")  # a world of its own: we stop a kubelet in it
    cfg.apps[0].port, cfg.apps[0].node_port = 18080, 30180  # away from the scenario's host process
    _apply(ctx, cfg)
    assert rollout.watch_rollout(ctx, APPS, timeout=30).ok
    lifecycle = sb.cluster.manager.controllers["node-lifecycle"]
    sb.call(lifecycle.set_ready, "k3s-worker-02", False)
    result = rollout.watch_rollout(ctx, APPS, timeout=30)
    assert result.status == "degraded", result.summary
    for app in APPS:
        (w2,) = result.apps[app].stuck()
        assert w2.node == "k3s-worker-02" and w2.pod.startswith(app) and w2.reason == "NodeNotReady"
        assert "NotReady" in w2.message and "Bring k3s-worker-02 back" in w2.remediation


# --- pure logic: kubectl's words, who should run what ----------------------------------------


def _ds(gen=2, observed=2, desired=5, updated=5, available=5, strategy="RollingUpdate"):
    return {
        "metadata": {"name": "keybuzz-api", "generation": gen},
        "spec": {"updateStrategy": {"type": strategy}},
        "status": {"observedGeneration": observed, "desiredNumberScheduled": desired, "updatedNumberScheduled": updated, "numberAvailable": available},
    }


@pytest.mark.parametrize(
    "ds, done, message",
    [
        (_ds(gen=3, observed=2), False, "Waiting for daemon set spec update to be observed..."),
        (_ds(updated=3), False, 'Waiting for daemon set "keybuzz-api" rollout to finish: 3 out of 5 new pods have been updated...'),
        (_ds(available=4), False, 'Waiting for daemon set "keybuzz-api" rollout to finish: 4 of 5 updated pods are available...'),
        (_ds(), True, 'daemon set "keybuzz-api" successfully rolled out'),
        (_ds(strategy="OnDelete"), False, "rollout status is only available for RollingUpdate strategy type"),
    ],
)
def test_kubectl_status_words(ds, done, message):
    assert rollout.kubectl_status(ds) == (done, message)


def test_should_run_ignores_notready_taints_but_not_the_servers_taints():
    spec = {"hostNetwork": True}
    worker = {"metadata": {"name": "w", "labels": {}}, "spec": {}}
    master = {"metadata": {"name": "m", "labels": {}}, "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}
    down = {"metadata": {"name": "d", "labels": {}}, "spec": {"taints": [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}, {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}}
    assert rollout.should_run(spec, worker) and rollout.should_run(spec, down)
    assert not rollout.should_run(spec, master)
    tolerant = {"hostNetwork": True, "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}
    assert rollout.should_run(tolerant, master)
    assert not rollout.should_run({"nodeSelector": {"pool": "gpu"}}, worker)


def test_a_pending_pod_with_no_event_says_so():
    from keybuzz_tui.engine.context import Context

    board = rollout._Board(Context(Config()), ["keybuzz-api"])
    pod = {"metadata": {"name": "keybuzz-api-x1", "creationTimestamp": "2025-11-20T10:00:00Z"}, "spec": {}, "status": {"phase": "Pending"}}
    node = {"metadata": {"name": "k3s-worker-01"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    n = board._node_state("keybuzz-api", _ds(), "k3s-worker-01", node, [pod], {}, "keybuzz")
    assert (n.phase, n.reason) == ("Pending", "Pending") and "no event says why" in n.message


def test_the_revision_hash_is_not_remembered_before_the_controller_observed_the_rollback(monkeypatch):
    """Right after a rollback the template generation has moved on but the controller may not
    have bumped the restored ControllerRevision yet: what the LIST says then must not be
    remembered, or the restored pods would look outdated until the timeout (seen on loaded CI)."""
    revisions = {"items": [
        {"metadata": {"labels": {"controller-revision-hash": "aaa"}, "ownerReferences": [{"uid": "u1"}]}, "revision": 1},
        {"metadata": {"labels": {"controller-revision-hash": "bbb"}, "ownerReferences": [{"uid": "u1"}]}, "revision": 2},
    ]}
    calls: list[str] = []

    def fake_get(ctx, path, **params):
        calls.append(path)
        return revisions

    monkeypatch.setattr(kubeio, "get", fake_get)
    monkeypatch.setattr(rollout, "_HASH_CACHE", {})

    def ds(generation: int, observed: int, uid: str = "u1") -> dict:
        return {
            "metadata": {"namespace": "keybuzz", "name": "keybuzz-api", "uid": uid, "generation": generation,
                         "annotations": {rollout.TEMPLATE_GENERATION: str(generation)}},
            "spec": {"selector": {"matchLabels": {"app": "keybuzz-api"}}},
            "status": {"observedGeneration": observed},
        }

    # generation 3 (the undo) not observed yet: the newest revision is still the broken one
    assert rollout.current_revision_hash(None, ds(3, 2)) == "bbb"
    # the controller bumps revision 1 to 3 and observes the generation: the restored hash wins
    revisions["items"][0]["revision"] = 3
    assert rollout.current_revision_hash(None, ds(3, 3)) == "aaa"
    n = len(calls)
    assert rollout.current_revision_hash(None, ds(3, 3)) == "aaa" and len(calls) == n  # now remembered
    # the same name and generation for a DaemonSet created again (another uid): read afresh
    revisions["items"] = [{"metadata": {"labels": {"controller-revision-hash": "ccc"}, "ownerReferences": [{"uid": "u2"}]}, "revision": 1}]
    assert rollout.current_revision_hash(None, ds(3, 3, uid="u2")) == "ccc"
