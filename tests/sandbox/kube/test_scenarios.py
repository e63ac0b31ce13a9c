"""Each failure scenario shows what a real K3s cluster would show, through the real client."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from support import sandboxes

from keybuzz_tui.sandbox import scenarios


def wait_for(pred, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def api_ds(ns: str, image: str = "ghcr.io/keybuzz/api:1.4.2", port: int = 8080, name: str = "keybuzz-api") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "Default",
                    "containers": [{"name": "api", "image": image, "ports": [{"containerPort": port, "name": "http"}]}],
                },
            },
        },
    }


def setup(sb, ns="keybuzz"):
    api = sb.kube_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    return core, apps


def pods_by_node(core, ns, label):
    return {p.spec.node_name: p for p in core.list_namespaced_pod(ns, label_selector=label).items if p.spec.node_name}


def test_port_taken_crashloops_with_address_in_use(sandbox_factory):
    sb = sandbox_factory("port-taken")
    core, apps = setup(sb)
    apps.create_namespaced_daemon_set("keybuzz", api_ds("keybuzz"))

    def crashing():
        p = pods_by_node(core, "keybuzz", "app=keybuzz-api").get("k3s-worker-03")
        st = p and p.status.container_statuses and p.status.container_statuses[0]
        return st if st and st.state.waiting and st.state.waiting.reason == "CrashLoopBackOff" else None

    st = wait_for(crashing, what="CrashLoopBackOff on k3s-worker-03")
    assert st.restart_count >= 1 and st.last_state.terminated.exit_code == 1
    pod = pods_by_node(core, "keybuzz", "app=keybuzz-api")["k3s-worker-03"]
    log = core.read_namespaced_pod_log(pod.metadata.name, "keybuzz", previous=True)
    assert "address already in use" in log
    others = [p for n, p in pods_by_node(core, "keybuzz", "app=keybuzz-api").items() if n != "k3s-worker-03"]
    wait_for(lambda: all(
        (q := core.read_namespaced_pod(p.metadata.name, "keybuzz")).status.container_statuses and q.status.container_statuses[0].ready
        for p in others), what="the other 4 pods ready")
    ds = apps.read_namespaced_daemon_set("keybuzz-api", "keybuzz")
    assert ds.status.desired_number_scheduled == 5 and ds.status.number_ready == 4
    events = core.list_namespaced_event("keybuzz", field_selector=f"involvedObject.name={pod.metadata.name}").items
    assert any(e.reason == "BackOff" and "Back-off restarting failed container" in e.message for e in events)


def test_nodeport_taken_is_refused_with_the_allocator_message(sandbox_factory):
    sb = sandbox_factory("nodeport-taken")
    core, _ = setup(sb)
    svc = {"metadata": {"name": "keybuzz-api"}, "spec": {"type": "NodePort", "selector": {"app": "keybuzz-api"},
           "ports": [{"port": 8080, "targetPort": 8080, "nodePort": 30080}]}}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("keybuzz", svc)
    assert e.value.status == 422
    assert json.loads(e.value.body)["message"] == (
        'Service "keybuzz-api" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated'
    )
    svc["spec"]["ports"][0]["nodePort"] = 40000
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("keybuzz", svc)
    assert "provided port is not in the valid range. The range of valid ports is 30000-32767" in json.loads(e.value.body)["message"]


def test_image_pull_failure_goes_to_image_pull_backoff(sandbox_factory):
    sb = sandbox_factory("image-pull-failure")
    core, apps = setup(sb)
    apps.create_namespaced_daemon_set("keybuzz", api_ds("keybuzz"))

    def reasons():
        out = set()
        for p in pods_by_node(core, "keybuzz", "app=keybuzz-api").values():
            for s in p.status.container_statuses or []:
                if s.state.waiting:
                    out.add(s.state.waiting.reason)
        return out if "ImagePullBackOff" in out else None

    wait_for(reasons, what="ImagePullBackOff")
    pod = next(iter(pods_by_node(core, "keybuzz", "app=keybuzz-api").values()))
    events = core.list_namespaced_event("keybuzz", field_selector=f"involvedObject.name={pod.metadata.name}").items
    msgs = [e.message for e in events if e.reason == "Failed"]
    assert any('failed to pull and unpack image "ghcr.io/keybuzz/api:1.4.2"' in m and "not found" in m for m in msgs)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(pod.metadata.name, "keybuzz")
    assert "trying and failing to pull image" in json.loads(e.value.body)["message"]


def test_node_notready_is_unknown_tainted_and_not_desired(sandbox_factory):
    sb = sandbox_factory("node-notready")
    core, apps = setup(sb)
    node = core.read_node("k3s-worker-04")
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("Unknown", "NodeStatusUnknown")
    assert {(t.key, t.effect) for t in node.spec.taints} >= {("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
    apps.create_namespaced_daemon_set("keybuzz", api_ds("keybuzz"))
    ds = wait_for(lambda: (d := apps.read_namespaced_daemon_set("keybuzz-api", "keybuzz")).status.number_ready == 4 and d, what="4 ready")
    assert ds.status.desired_number_scheduled == 4
    assert "k3s-worker-04" not in pods_by_node(core, "keybuzz", "app=keybuzz-api")


def test_hostport_conflict_between_pods_is_a_failed_scheduling_event(sandbox):
    core, apps = setup(sandbox, "hostport")
    apps.create_namespaced_daemon_set("hostport", api_ds("hostport", port=18090, name="first"))
    wait_for(lambda: apps.read_namespaced_daemon_set("first", "hostport").status.number_ready == 5, what="first ready")
    second = api_ds("hostport", port=18090, name="second")
    second["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = 18090
    apps.create_namespaced_daemon_set("hostport", second)

    def failed():
        evs = core.list_namespaced_event("hostport", field_selector="reason=FailedScheduling").items
        return evs[0] if evs else None

    ev = wait_for(failed, what="FailedScheduling")
    assert ev.type == "Warning" and ev.source.component == "default-scheduler"
    assert ev.message.startswith("0/8 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 7 node(s) didn't satisfy plugin(s) [NodeAffinity].")
    assert "preemption: 0/8 nodes are available: 1 No preemption victims found for incoming pod, 7 Preemption is not helpful for scheduling." in ev.message
    ds = apps.read_namespaced_daemon_set("second", "hostport")
    # numberAvailable is omitempty: zero is absent, as from a real apiserver
    assert ds.status.desired_number_scheduled == 5 and not ds.status.number_available and ds.status.current_number_scheduled == 5


def test_restricted_rbac_gets_real_403s_and_truthful_reviews(sandbox_factory):
    sb = sandbox_factory("restricted-rbac")
    viewer = sb.kube_client(user="keybuzz-viewer")
    core, apps, authz = client.CoreV1Api(viewer), client.AppsV1Api(viewer), client.AuthorizationV1Api(viewer)
    assert len(core.list_node().items) == 8
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_daemon_set("default", api_ds("default"))
    assert e.value.status == 403
    assert json.loads(e.value.body)["message"] == (
        'daemonsets.apps is forbidden: User "keybuzz-viewer" cannot create resource "daemonsets" in API group "apps" in the namespace "default"'
    )
    with pytest.raises(ApiException) as e:
        core.read_namespaced_secret("x", "kube-system")
    assert json.loads(e.value.body)["message"] == (
        'secrets "x" is forbidden: User "keybuzz-viewer" cannot get resource "secrets" in API group "" in the namespace "kube-system"'
    )
    review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {"verb": "create", "group": "apps", "resource": "daemonsets", "namespace": "keybuzz"}}})
    assert review.status.allowed is False
    review = authz.create_self_subject_access_review({"spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}})
    assert review.status.allowed is True


def test_flaky_api_fails_some_requests_and_drops_watches(sandbox_factory):
    sb = sandbox_factory("flaky-api")
    codes = [sandboxes.raw(sb, "GET", "/api/v1/namespaces").status for _ in range(80)]
    assert 200 in codes and {500, 503, 504} & set(codes)
    assert all(c in (200, 500, 503, 504) for c in codes)
    for r in (sandboxes.raw(sb, "GET", "/api/v1/namespaces") for _ in range(10)):
        if r.status >= 500:
            assert json.loads(r.data)["kind"] == "Status"
    started = time.monotonic()
    r = sandboxes.raw(sb, "GET", "/api/v1/namespaces?watch=1&resourceVersion=0", timeout=30)
    assert r.status == 200 and time.monotonic() - started < 10  # closed by the server, not by our timeout


def scenario_file(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_a_non_default_nodeport_range_bounds_allocation_and_explicit_ports(sandbox_factory, tmp_path):
    sb = sandbox_factory(scenario_file(tmp_path, "nodeports", """\
        extends: healthy
        name: custom-nodeports
        cluster:
          nodeport_range: [31000, 32999]
        """))
    core, _ = setup(sb, "np")

    def svc(name, node_port=None):
        port = {"port": 80, "targetPort": 8080}
        if node_port is not None:
            port["nodePort"] = node_port
        return {"metadata": {"name": name}, "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [port]}}

    auto = [core.create_namespaced_service("np", svc(f"auto-{i}")).spec.ports[0].node_port for i in range(30)]
    # automatic allocation stays in the range and above its static band (31000 + min(max(16, 2000/32), 128))
    assert all(31062 <= p <= 32999 for p in auto) and len(set(auto)) == 30
    assert core.create_namespaced_service("np", svc("low", 31000)).spec.ports[0].node_port == 31000
    assert core.create_namespaced_service("np", svc("high", 32999)).spec.ports[0].node_port == 32999
    for bad in (30080, 30999, 33000):
        with pytest.raises(ApiException) as e:
            core.create_namespaced_service("np", svc(f"out-{bad}", bad))
        assert e.value.status == 422
        assert json.loads(e.value.body)["message"] == (
            f'Service "out-{bad}" is invalid: spec.ports[0].nodePort: Invalid value: {bad}: '
            "provided port is not in the valid range. The range of valid ports is 31000-32999"
        )
    # what a client learns the range from without changing anything (a dry run)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("np", svc("probe", 1), dry_run="All")
    assert "The range of valid ports is 31000-32999" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("np", svc("dup", 31000))
    assert json.loads(e.value.body)["message"].endswith("Invalid value: 31000: provided port is already allocated")
    assert core.read_namespaced_service("ingress-nginx-controller", "ingress-nginx").spec.ports[0].node_port == 31695


def test_a_nodeport_range_without_the_ingress_nodeports_is_refused(tmp_path):
    path = scenario_file(tmp_path, "narrow", """\
        extends: healthy
        cluster:
          nodeport_range: [20000, 22767]
        """)
    with pytest.raises(scenarios.ScenarioError, match="nodeport_range 20000-22767 must include the ingress-nginx NodePorts 31695 and 32720"):
        scenarios.load(path)


FLAKY = """\
    extends: flaky-api
    name: flaky-{seed}
    faults:
      error_rate: 0.3
      slow_rate: 0.25
      slow_seconds: 12.5
      seed: {seed}
    """
SLOW = 12.5 / sandboxes.TEST_SPEED  # slow_seconds on the test clock: 0.5 s


def flaky_run(sb, n: int = 10) -> list[tuple[int, str, bool]]:
    """(status, Status reason, slow?) of n identical GETs, one after the other."""
    out = []
    for _ in range(n):
        started = time.monotonic()
        r = sandboxes.raw(sb, "GET", "/api/v1/namespaces/default", timeout=10)
        took = time.monotonic() - started
        body = json.loads(r.data)
        out.append((r.status, body.get("reason", "") if body["kind"] == "Status" else body["kind"], took >= 0.75 * SLOW))
        if took >= 0.75 * SLOW:
            assert took >= SLOW * 0.95  # a slow answer is slow by slow_seconds, not by accident
    return out


def test_flaky_api_is_slow_sometimes_and_replays_exactly_with_the_same_seed(sandbox_factory, tmp_path):
    runs = []
    for i, seed in enumerate((7, 7, 3)):
        sb = sandbox_factory(scenario_file(tmp_path, f"flaky{i}", FLAKY.format(seed=seed)))
        runs.append(flaky_run(sb))
        sb.stop()
    first, again, other = runs
    assert first == again  # same seed, same sequence of failures and slow answers
    assert first != other
    statuses = {s for s, _, _ in first}
    assert 200 in statuses and statuses & {500, 503, 504} and any(slow for _, _, slow in first)
    assert {(s, reason) for s, reason, _ in first + other if s != 200} <= {
        (500, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout"),
    }
    assert {reason for s, reason, _ in first if s == 200} == {"Namespace"}
