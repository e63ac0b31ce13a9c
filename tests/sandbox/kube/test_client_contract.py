"""The official kubernetes client (typed and dynamic, strict 37.x models) against the sandbox."""

from __future__ import annotations

import json
import time

import pytest
import urllib3
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException
from support import sandboxes

SB: list = []


def wait_for(pred, timeout=20.0, interval=0.05, what="condition"):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


@pytest.fixture(scope="module")
def api(sandbox):
    SB[:] = [sandbox]
    c = sandbox.kube_client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


def status_body(e: ApiException) -> dict:
    return json.loads(e.body)


# --- the default world ----------------------------------------------------------------------


def test_version_is_k3s_like(api):
    v = client.VersionApi(api).get_code()
    assert v.git_version.endswith("+k3s1") and v.git_version.startswith("v1.3")
    assert v.major == "1"


def test_nodes_look_like_production(core):
    nodes = core.list_node().items
    names = sorted(n.metadata.name for n in nodes)
    assert names == [f"k3s-master-0{i}" for i in (1, 2, 3)] + [f"k3s-worker-0{i}" for i in range(1, 6)]
    by = {n.metadata.name: n for n in nodes}
    w3 = by["k3s-worker-03"]
    ip = next(a.address for a in w3.status.addresses if a.type == "InternalIP")
    assert ip.startswith("127.") and ip.endswith(".10.112")
    assert w3.metadata.annotations["flannel.alpha.coreos.com/backend-type"] == "vxlan"
    m1 = by["k3s-master-01"]
    assert m1.metadata.labels["node-role.kubernetes.io/control-plane"] == "true"
    assert {t.effect for t in m1.spec.taints} == {"NoSchedule", "NoExecute"}
    ready = {n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready") for n in nodes}
    assert set(ready.values()) == {"True"}


def test_system_workloads_are_running(core, apps):
    dns = core.read_namespaced_service("kube-dns", "kube-system")
    assert dns.spec.cluster_ip == "10.43.0.10"
    coredns = apps.read_namespaced_deployment("coredns", "kube-system")
    assert coredns.status.ready_replicas == 1
    ds = apps.read_namespaced_daemon_set("ingress-nginx-controller", "ingress-nginx")
    assert (ds.status.desired_number_scheduled, ds.status.number_ready) == (5, 5)
    svc = core.read_namespaced_service("ingress-nginx-controller", "ingress-nginx")
    assert svc.spec.type == "NodePort"
    assert sorted((p.port, p.node_port) for p in svc.spec.ports) == [(80, 31695), (443, 32720)]
    pods = core.list_namespaced_pod("ingress-nginx").items
    assert len(pods) == 5 and all(p.status.phase == "Running" for p in pods)
    assert {p.spec.node_name for p in pods} == {f"k3s-worker-0{i}" for i in range(1, 6)}


def test_every_served_kind_parses_with_the_strict_models(api, core, apps):
    net = client.NetworkingV1Api(api)
    disc = client.DiscoveryV1Api(api)
    coord = client.CoordinationV1Api(api)
    for fn in (
        core.list_namespace, core.list_node, core.list_pod_for_all_namespaces, core.list_service_for_all_namespaces,
        core.list_endpoints_for_all_namespaces, core.list_secret_for_all_namespaces, core.list_config_map_for_all_namespaces,
        core.list_event_for_all_namespaces, core.list_service_account_for_all_namespaces,
        apps.list_daemon_set_for_all_namespaces, apps.list_deployment_for_all_namespaces, apps.list_replica_set_for_all_namespaces,
        apps.list_stateful_set_for_all_namespaces, apps.list_controller_revision_for_all_namespaces,
        disc.list_endpoint_slice_for_all_namespaces, net.list_ingress_for_all_namespaces, net.list_ingress_class,
        coord.list_lease_for_all_namespaces,
    ):
        result = fn()
        assert result.items is not None, fn.__name__


def test_endpoints_and_slices_follow_ready_pods(core, api):
    ep = core.read_namespaced_endpoints("kube-dns", "kube-system")
    assert ep.subsets and ep.subsets[0].addresses[0].ip.startswith("10.42.")
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice("kube-system", label_selector="kubernetes.io/service-name=kube-dns").items
    assert len(slices) == 1 and slices[0].address_type == "IPv4"
    assert slices[0].endpoints[0].conditions.ready is True


# --- verbs ----------------------------------------------------------------------------------


def test_create_get_replace_conflict_and_delete(core):
    ns = "contract-crud"
    core.create_namespace({"metadata": {"name": ns}})
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "c1", "labels": {"a": "1"}}, "data": {"k": "v"}})
    assert cm.metadata.resource_version and cm.metadata.uid
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "c1"}})
    assert e.value.status == 409 and status_body(e.value)["reason"] == "AlreadyExists"
    assert status_body(e.value)["message"] == 'configmaps "c1" already exists'
    stale = cm.metadata.resource_version
    cm.data = {"k": "v2"}
    updated = core.replace_namespaced_config_map("c1", ns, cm)
    assert updated.data == {"k": "v2"}
    cm.metadata.resource_version = stale
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c1", ns, cm)
    assert e.value.status == 409
    assert "the object has been modified; please apply your changes to the latest version" in status_body(e.value)["message"]
    st = core.delete_namespaced_config_map("c1", ns)  # the 37.x client returns deletes as plain dicts
    assert st["kind"] == "Status" and st["status"] == "Success" and st["details"]["name"] == "c1"
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("c1", ns)
    assert e.value.status == 404 and status_body(e.value)["message"] == 'configmaps "c1" not found'


def test_patch_flavours(core):
    ns = "contract-patch"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}})
    core.patch_namespaced_config_map("p", ns, {"data": {"b": None, "c": "3"}})  # strategic merge
    got = core.read_namespaced_config_map("p", ns)
    assert got.data == {"a": "1", "c": "3"}
    core.patch_namespaced_config_map("p", ns, [{"op": "replace", "path": "/data/a", "value": "9"}])  # JSON patch
    assert core.read_namespaced_config_map("p", ns).data["a"] == "9"
    r = sandboxes.raw(
        SB[0], "PATCH", f"/api/v1/namespaces/{ns}/configmaps/p",
        headers={"Content-Type": "application/merge-patch+json"}, body=json.dumps({"metadata": {"labels": {"x": "y"}}}),
    )
    assert r.status == 200
    assert core.read_namespaced_config_map("p", ns).metadata.labels == {"x": "y"}


def test_server_side_apply_conflict_and_force(apps, core):
    ns = "contract-ssa"
    core.create_namespace({"metadata": {"name": ns}})
    ds = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "api", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "nginx:1.27"}]}},
        },
    }
    created = apps.patch_namespaced_daemon_set("api", ns, ds, field_manager="keybuzz-tui", _content_type="application/apply-patch+yaml")
    assert created.metadata.managed_fields[0].manager == "keybuzz-tui"
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_daemon_set("api", ns, ds, field_manager="someone-else", _content_type="application/apply-patch+yaml")
    assert e.value.status == 409
    # an Apply owner is printed without "using <apiVersion>" (apiserver managedfields printManager)
    assert status_body(e.value)["message"] == (
        'Apply failed with 1 conflict: conflict with "keybuzz-tui": .spec.template.spec.containers[name="api"].image'
    )
    assert status_body(e.value)["details"]["causes"][0]["reason"] == "FieldManagerConflict"
    forced = apps.patch_namespaced_daemon_set("api", ns, ds, field_manager="someone-else", force=True, _content_type="application/apply-patch+yaml")
    assert forced.spec.template.spec.containers[0].image == "nginx:1.28"
    assert forced.metadata.generation == 2


def test_apply_without_field_manager_is_rejected(sandbox):
    r = sandboxes.raw(
        sandbox, "PATCH", "/api/v1/namespaces/default/configmaps/x",
        headers={"Content-Type": "application/apply-patch+yaml"},
        body=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    )
    assert r.status == 422
    assert json.loads(r.data)["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'


def test_dry_run_changes_nothing(core):
    core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("dry", "default")
    assert e.value.status == 404


def test_list_chunking_with_limit_and_continue(core):
    ns = "contract-chunk"
    core.create_namespace({"metadata": {"name": ns}})
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"cm-{i}"}})
    names, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token)
        names += [c.metadata.name for c in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert names == sorted(names) and len(names) == 7 and pages == 3


def test_label_and_field_selectors(core):
    pods = core.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/name in (ingress-nginx),app.kubernetes.io/component=controller").items
    assert len(pods) == 5
    on3 = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=k3s-worker-03").items
    assert on3 and all(p.spec.node_name == "k3s-worker-03" for p in on3)
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map("default", field_selector="data.k=v")
    # kinds without their own conversion use runtime.DefaultMetaV1FieldSelectorConversion's text
    assert e.value.status == 400
    assert status_body(e.value)["message"] == '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'
    with pytest.raises(ApiException) as e:
        core.list_pod_for_all_namespaces(field_selector="spec.image=x")
    assert e.value.status == 400 and "field label not supported: spec.image" in status_body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        core.list_pod_for_all_namespaces(label_selector="app in (")
    assert e.value.status == 400


# --- watch ----------------------------------------------------------------------------------


def test_watch_from_a_resource_version_sees_changes_in_order(core):
    ns = "contract-watch"
    core.create_namespace({"metadata": {"name": ns}})
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "w"}, "data": {"n": "1"}})
    core.patch_namespaced_config_map("w", ns, {"data": {"n": "2"}})
    core.delete_namespaced_config_map("w", ns)
    seen = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            break
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_with_a_compacted_resource_version_gets_410_inside_the_stream(sandbox):
    r = sandboxes.raw(sandbox, "GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1")
    assert r.status == 200
    ev = json.loads(r.data.split(b"\n")[0])
    assert ev["type"] == "ERROR" and ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
    assert ev["object"]["message"].startswith("too old resource version: 1 (")


def test_watch_bookmarks_and_initial_events(api, sandbox):
    http = urllib3.PoolManager(ca_certs=str(sandbox.ca_path))
    url = (
        f"{sandbox.kube_url}/api/v1/namespaces/kube-system/configmaps?watch=1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    r = http.request("GET", url, headers={"Authorization": f"Bearer {sandbox.admin_token}"}, preload_content=True, timeout=10)
    events = [json.loads(x) for x in r.data.splitlines() if x.strip()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "ADDED" and "BOOKMARK" in kinds
    bm = events[kinds.index("BOOKMARK")]["object"]
    assert bm["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


# --- dynamic client -------------------------------------------------------------------------


def test_dynamic_client_discovers_and_applies(api, tmp_path):
    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    ds_api = dyn.resources.get(api_version="apps/v1", kind="DaemonSet")
    assert ds_api.namespaced
    leases = dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "keybuzz-lock", "namespace": "default"}, "spec": {"holderIdentity": "me"}}
    out = leases.server_side_apply(body=body, name="keybuzz-lock", namespace="default", field_manager="keybuzz-tui")
    assert out.spec.holderIdentity == "me"


# --- auth -----------------------------------------------------------------------------------


def test_wrong_token_is_401(sandbox):
    cfg = client.Configuration()
    cfg.host = sandbox.kube_url
    cfg.ssl_ca_cert = str(sandbox.ca_path)
    cfg.api_key = {"authorization": "Bearer wrong"}
    with client.ApiClient(cfg) as bad:
        with pytest.raises(ApiException) as e:
            client.CoreV1Api(bad).list_namespace()
    assert e.value.status == 401 and status_body(e.value)["message"] == "Unauthorized"


def test_self_subject_access_review_for_admin(api):
    authz = client.AuthorizationV1Api(api)
    r = authz.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "create", "group": "apps", "resource": "daemonsets", "namespace": "keybuzz"}}}
    )
    assert r.status.allowed is True


# --- logs -----------------------------------------------------------------------------------


def test_pod_logs(core):
    pod = core.list_namespaced_pod("ingress-nginx").items[0]
    text = core.read_namespaced_pod_log(pod.metadata.name, "ingress-nginx")
    assert "NGINX Ingress controller" in text
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(pod.metadata.name, "ingress-nginx", previous=True)
    assert e.value.status == 400 and "previous terminated container" in status_body(e.value)["message"]
