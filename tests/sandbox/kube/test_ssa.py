"""Server-side apply and managedFields (keybuzz_tui.sandbox.kube.ssa).

The expected FieldsV1 documents, conflict texts and ownership moves are those of
structured-merge-diff + the apiserver field manager (what `kubectl get -o yaml
--show-managed-fields` and `kubectl apply --server-side` show against a real cluster).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keybuzz_tui.sandbox.kube.errors import ApiError
from keybuzz_tui.sandbox.kube.patching import strategic_merge
from keybuzz_tui.sandbox.kube.ssa import (
    LAST_APPLIED_ANNOTATION,
    ApplyConflict,
    ApplyError,
    ConflictOwner,
    apply,
    decode_fields_v1,
    encode_fields_v1,
    field_set,
    format_path,
    manager_from_user_agent,
    record_update,
)

T0, T1, T2 = "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z", "2025-01-01T00:02:00Z"
AV = "apps/v1"


def ds_config(image: str = "api:1", **pod_spec: Any) -> dict[str, Any]:
    """The manifest a user would `kubectl apply --server-side`."""
    return {
        "apiVersion": AV,
        "kind": "DaemonSet",
        "metadata": {"name": "api", "namespace": "kb", "labels": {"app": "api"}},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {"name": "api", "image": image, "ports": [{"containerPort": 8080, "hostPort": 8080}]}
                    ],
                    **pod_spec,
                },
            },
        },
    }


def entries(obj: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(e["manager"], e["operation"], e.get("time")) for e in obj["metadata"]["managedFields"]]


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    return next(
        e for e in obj["metadata"]["managedFields"] if e["manager"] == manager and e["operation"] == operation
    )


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> set[str]:
    return {format_path(p) for p in decode_fields_v1(entry(obj, manager, operation)["fieldsV1"])}


def without_times(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for e in out["metadata"].get("managedFields", []):
        e.pop("time", None)
    return out


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]["containers"][0]


def set_image(live: dict[str, Any], image: str, manager: str, now: str) -> dict[str, Any]:
    """`kubectl set image`: a strategic merge patch recorded as an Update."""
    patched = strategic_merge(
        "DaemonSet", live, {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image}]}}}}
    )
    return record_update("DaemonSet", AV, live, patched, manager, now)


# ---------------------------------------------------------------------------------------------
# FieldsV1 as the apiserver writes it


def test_apply_create_records_exact_fields_v1() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"api"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {
                                        'k:{"containerPort":8080,"protocol":"TCP"}': {
                                            ".": {},
                                            "f:containerPort": {},
                                            "f:hostPort": {},
                                        }
                                    },
                                }
                            }
                        },
                    },
                },
            },
        }
    ]
    # the JSON text keeps the apiserver's key order ("." first, then f:, k:)
    text = json.dumps(obj["metadata"]["managedFields"][0]["fieldsV1"], separators=(",", ":"))
    assert text.startswith('{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:selector":{},"f:template"')
    assert (
        obj["spec"]["template"]["spec"]["containers"] == ds_config()["spec"]["template"]["spec"]["containers"]
    )


def test_update_on_create_owns_everything_with_dots_where_go_puts_them() -> None:
    new = ds_config()
    new["metadata"].update({"uid": "u-1", "resourceVersion": "7", "creationTimestamp": T0, "generation": 1})
    new["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    new["spec"]["revisionHistoryLimit"] = 10
    new["status"] = {"numberReady": 0}
    obj = record_update("DaemonSet", AV, None, new, "kubectl-create", T0)
    fields = entry(obj, "kubectl-create", "Update")["fieldsV1"]
    assert fields == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:revisionHistoryLimit": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"api"}': {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                ".": {},
                                'k:{"containerPort":8080,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                    "f:hostPort": {},
                                },
                            },
                            "f:resources": {},
                        }
                    }
                },
            },
            "f:updateStrategy": {"f:rollingUpdate": {".": {}, "f:maxUnavailable": {}}, "f:type": {}},
        },
    }


def test_fields_v1_round_trip_and_path_formatting() -> None:
    fields = {
        "f:metadata": {
            "f:finalizers": {".": {}, 'v:"foregroundDeletion"': {}},
            "f:ownerReferences": {'k:{"uid":"u1"}': {}},
        },
        "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}},
    }
    paths = decode_fields_v1(fields)
    assert encode_fields_v1(paths) == fields
    assert {format_path(p) for p in paths} == {
        ".metadata.finalizers",
        '.metadata.finalizers[="foregroundDeletion"]',
        '.metadata.ownerReferences[uid="u1"]',
        '.spec.ports[port=80,protocol="TCP"]',
        '.spec.ports[port=80,protocol="TCP"].port',
    }


def test_key_values_sort_numerically_in_fields_v1() -> None:
    cfg = ds_config()
    container(cfg)["ports"] = [{"containerPort": 10}, {"containerPort": 9}]
    obj = apply("DaemonSet", AV, None, cfg, "kubectl", False, T0)
    ports = entry(obj, "kubectl")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"api"}'
    ]["f:ports"]
    assert list(ports) == [
        'k:{"containerPort":9,"protocol":"TCP"}',
        'k:{"containerPort":10,"protocol":"TCP"}',
    ]


# ---------------------------------------------------------------------------------------------
# Conflicts, force, shared ownership


def test_conflict_with_an_update_manager_has_the_exact_apiserver_text() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    obj = set_image(obj, "api:2", "kubectl-set", T1)
    with pytest.raises(ApplyConflict) as info:
        apply("DaemonSet", AV, obj, ds_config("api:3"), "kubectl", False, T2)
    err = info.value
    assert isinstance(err, ApiError) and (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-set" using apps/v1: '
        '.spec.template.spec.containers[name="api"].image'
    )
    assert err.conflicts == [("kubectl-set", "apps/v1", '.spec.template.spec.containers[name="api"].image')]
    assert err.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-set" using apps/v1',
                "field": '.spec.template.spec.containers[name="api"].image',
            }
        ]
    }


def test_multiple_conflicts_are_grouped_by_manager() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "alpha", False, T0)
    with pytest.raises(ApplyConflict) as info:
        apply("DaemonSet", AV, obj, ds_config("api:2", hostNetwork=False) | {}, "beta", False, T1)
    assert info.value.message == (
        'Apply failed with 1 conflict: conflict with "alpha": .spec.template.spec.containers[name="api"].image'
    )
    other = copy.deepcopy(obj)
    other = record_update(
        "DaemonSet", AV, obj, {**other, "spec": {**other["spec"], "minReadySeconds": 5}}, "ctl", T1
    )
    cfg = ds_config("api:2")
    cfg["spec"]["minReadySeconds"] = 10
    cfg["metadata"]["labels"]["app"] = "other"
    with pytest.raises(ApplyConflict) as info:
        apply("DaemonSet", AV, other, cfg, "beta", False, T2)
    assert info.value.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "alpha":\n'
        "- .metadata.labels.app\n"
        '- .spec.template.spec.containers[name="api"].image\n'
        'conflicts with "ctl" using apps/v1:\n'
        "- .spec.minReadySeconds"
    )


def test_conflict_owner_printing() -> None:
    assert (
        ConflictOwner("kubelet", "Update", "v1", "status").describe()
        == '"kubelet" with subresource "status" using v1'
    )
    assert ConflictOwner("helm", "Apply", "apps/v1").describe() == '"helm"'
    err = ApplyConflict([("kubectl", "apps/v1", ".spec.replicas")])
    assert (
        err.message == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )


def test_force_moves_ownership_to_the_applier() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    obj = set_image(obj, "api:2", "kubectl-set", T1)
    assert '.spec.template.spec.containers[name="api"].image' in owned(obj, "kubectl-set", "Update")
    assert '.spec.template.spec.containers[name="api"].image' not in owned(obj, "kubectl")
    forced = apply("DaemonSet", AV, obj, ds_config("api:3"), "kubectl", True, T2)
    assert container(forced)["image"] == "api:3"
    assert '.spec.template.spec.containers[name="api"].image' in owned(forced, "kubectl")
    # kubectl-set owned nothing else: its entry is gone
    assert [m for m, _, _ in entries(forced)] == ["kubectl"]


def test_same_value_from_two_appliers_is_shared_without_conflict() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "alpha", False, T0)
    obj = apply("DaemonSet", AV, obj, ds_config(), "beta", False, T1)
    image = '.spec.template.spec.containers[name="api"].image'
    assert image in owned(obj, "alpha") and image in owned(obj, "beta")
    # the object did not change, so beta's entry has no time (managedFieldsUpdater on a no-op)
    assert entries(obj) == [("beta", "Apply", None), ("alpha", "Apply", T0)]


def test_field_dropped_by_its_only_owner_is_removed() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(hostNetwork=True), "kubectl", False, T0)
    assert obj["spec"]["template"]["spec"]["hostNetwork"] is True
    obj = apply("DaemonSet", AV, obj, ds_config(), "kubectl", False, T1)
    assert "hostNetwork" not in obj["spec"]["template"]["spec"]
    assert ".spec.template.spec.hostNetwork" not in owned(obj, "kubectl")
    assert entries(obj) == [("kubectl", "Apply", T1)]


def test_field_also_owned_by_another_applier_is_kept() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(hostNetwork=True), "alpha", False, T0)
    obj = apply("DaemonSet", AV, obj, ds_config(hostNetwork=True), "beta", False, T1)
    obj = apply("DaemonSet", AV, obj, ds_config(), "alpha", False, T2)
    assert obj["spec"]["template"]["spec"]["hostNetwork"] is True
    assert ".spec.template.spec.hostNetwork" in owned(obj, "beta")
    assert ".spec.template.spec.hostNetwork" not in owned(obj, "alpha")
    obj = apply("DaemonSet", AV, obj, ds_config(), "beta", False, T2)
    assert "hostNetwork" not in obj["spec"]["template"]["spec"]


def test_field_also_owned_by_an_update_manager_is_kept() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    obj = set_image(obj, "api:2", "kubectl-set", T1)
    cfg = ds_config()
    del container(cfg)["image"]
    obj = apply("DaemonSet", AV, obj, cfg, "kubectl", False, T2)
    assert container(obj)["image"] == "api:2"


def test_unowned_siblings_survive_pruning() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(hostNetwork=True), "kubectl", False, T0)
    obj["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"  # defaulted: nobody owns it
    obj = apply("DaemonSet", AV, obj, ds_config(), "kubectl", False, T1)
    assert obj["spec"]["template"]["spec"] == {
        "containers": ds_config()["spec"]["template"]["spec"]["containers"],
        "dnsPolicy": "ClusterFirst",
    }


def test_removing_a_port_from_the_applied_config_removes_it() -> None:
    cfg = ds_config()
    container(cfg)["ports"].append({"containerPort": 9090, "hostPort": 9090})
    obj = apply("DaemonSet", AV, None, cfg, "kubectl", False, T0)
    obj = apply("DaemonSet", AV, obj, ds_config(), "kubectl", False, T1)
    assert container(obj)["ports"] == [{"containerPort": 8080, "hostPort": 8080}]


def test_associative_list_key_uses_the_default_protocol() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    # the live object gets defaulted (protocol: TCP) and someone changes hostPort via an update
    live = copy.deepcopy(obj)
    container(live)["ports"][0]["protocol"] = "TCP"
    changed = copy.deepcopy(live)
    container(changed)["ports"][0]["hostPort"] = 8081
    live = record_update("DaemonSet", AV, live, changed, "kubectl-edit", T1)
    port_path = '.spec.template.spec.containers[name="api"].ports[containerPort=8080,protocol="TCP"]'
    assert owned(live, "kubectl-edit", "Update") == {port_path + ".hostPort"}
    with pytest.raises(ApplyConflict) as info:
        apply("DaemonSet", AV, live, ds_config(), "kubectl", False, T2)
    assert info.value.conflicts == [("kubectl-edit", "apps/v1", port_path + ".hostPort")]
    # an explicit protocol: TCP names the same item: no duplicate port appears
    cfg = ds_config()
    container(cfg)["ports"][0]["protocol"] = "TCP"
    forced = apply("DaemonSet", AV, live, cfg, "kubectl", True, T2)
    assert container(forced)["ports"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]


def test_apply_merges_lists_with_other_owners_items() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    cfg = {
        "apiVersion": AV,
        "kind": "DaemonSet",
        "metadata": {"name": "api"},
        "spec": {"template": {"spec": {"containers": [{"name": "mesh", "image": "m:1"}]}}},
    }
    obj = apply("DaemonSet", AV, obj, cfg, "injector", False, T1)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["api", "mesh"]
    assert owned(obj, "injector") == {
        '.spec.template.spec.containers[name="mesh"]',
        '.spec.template.spec.containers[name="mesh"].name',
        '.spec.template.spec.containers[name="mesh"].image',
    }


# ---------------------------------------------------------------------------------------------
# Update bookkeeping


def test_update_takes_changed_fields_from_other_managers() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    obj = set_image(obj, "api:2", "kubectl-set", T1)
    image = '.spec.template.spec.containers[name="api"].image'
    assert owned(obj, "kubectl-set", "Update") == {image}
    assert image not in owned(obj, "kubectl")
    assert entries(obj) == [("kubectl", "Apply", T0), ("kubectl-set", "Update", T1)]
    again = set_image(obj, "api:2", "kubectl-set", T2)  # no change: time stays
    assert entries(again) == entries(obj)


def test_status_is_owned_through_the_subresource_only() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    with_status = copy.deepcopy(obj)
    with_status["status"] = {"numberReady": 3, "desiredNumberScheduled": 3}
    main = record_update("DaemonSet", AV, obj, with_status, "someone", T1)
    assert [m for m, _, _ in entries(main)] == ["kubectl"]
    sub = record_update("DaemonSet", AV, obj, with_status, "k3s", T1, subresource="status")
    e = entry(sub, "k3s", "Update")
    assert e["subresource"] == "status"
    assert list(e) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"]
    assert e["fieldsV1"] == {"f:status": {"f:desiredNumberScheduled": {}, "f:numberReady": {}}}


def test_apply_ignores_status_for_the_main_resource() -> None:
    live = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    live["status"] = {"numberReady": 1}
    cfg = ds_config()
    cfg["status"] = {"numberReady": 99}
    obj = apply("DaemonSet", AV, live, cfg, "kubectl", False, T1)
    assert obj["status"] == {"numberReady": 1}
    assert not any(p.startswith(".status") for p in owned(obj, "kubectl"))


def test_updates_of_untracked_objects_stay_untracked_but_apply_records_before_first_apply() -> None:
    seeded = ds_config()  # put in the store directly, no managedFields
    updated = record_update(
        "DaemonSet", AV, seeded, {**seeded, "spec": {**seeded["spec"], "minReadySeconds": 3}}, "x", T1
    )
    assert "managedFields" not in updated["metadata"]
    with pytest.raises(ApplyConflict) as info:
        apply("DaemonSet", AV, seeded, ds_config("api:2"), "kubectl", False, T1)
    assert info.value.message.startswith(
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1:'
    )
    obj = apply("DaemonSet", AV, seeded, ds_config(), "kubectl", False, T1)
    assert [m for m, _, _ in entries(obj)] == ["kubectl", "before-first-apply"]


def test_request_managed_fields_win_and_reset_list_clears() -> None:
    obj = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    reset = copy.deepcopy(obj)
    reset["metadata"]["managedFields"] = [{}]
    assert "managedFields" not in record_update("DaemonSet", AV, obj, reset, "x", T1)["metadata"]


def test_entries_sort_apply_first_then_by_time() -> None:
    obj = record_update("DaemonSet", AV, None, ds_config(), "creator", T2)
    obj = apply(
        "DaemonSet",
        AV,
        obj,
        {**ds_config(), "spec": {**ds_config()["spec"], "minReadySeconds": 1}},
        "late",
        True,
        T1,
    )
    assert [(m, op) for m, op, _ in entries(obj)] == [("late", "Apply"), ("creator", "Update")]


# ---------------------------------------------------------------------------------------------
# Client-side apply -> server-side apply upgrade (lastAppliedManager / lastAppliedUpdater)


def test_kubectl_upgrade_from_client_side_apply() -> None:
    manifest = ds_config()
    created = copy.deepcopy(manifest)
    created["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: json.dumps(manifest)}
    live = record_update("DaemonSet", AV, None, created, "kubectl-client-side-apply", T0)
    # same manager name "kubectl", changed image whose live value still equals last-applied: allowed
    obj = apply("DaemonSet", AV, live, ds_config("api:2"), "kubectl", False, T1)
    assert container(obj)["image"] == "api:2"
    annotation = obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
    assert annotation.endswith("}\n")
    assert json.loads(annotation) == ds_config("api:2")
    # another manager name gets the conflict
    with pytest.raises(ApplyConflict):
        apply("DaemonSet", AV, live, ds_config("api:2"), "helm", False, T1)


# ---------------------------------------------------------------------------------------------
# Refused configs


@pytest.mark.parametrize(
    ("mutate", "code", "message"),
    [
        (lambda c: c.pop("apiVersion"), 400, "invalid object type: /, Kind=DaemonSet"),
        (lambda c: c.pop("kind"), 400, "invalid object type: apps/v1, Kind="),
        (
            lambda c: c.update(apiVersion="apps/v1beta2"),
            400,
            "invalid object type: apps/v1beta2, Kind=DaemonSet",
        ),
        (lambda c: c["metadata"].update(managedFields=[]), 400, "metadata.managedFields must be nil"),
        (
            lambda c: c["metadata"].update(name="other"),
            400,
            "the name of the object (other) does not match the name on the URL (api)",
        ),
        (
            lambda c: c["metadata"].update(namespace="elsewhere"),
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        ),
        (
            lambda c: c["spec"]["template"]["spec"]["containers"].append({"image": "x"}),
            500,
            (
                "failed to create typed patch object (kb/api; apps/v1, Kind=DaemonSet): "
                ".spec.template.spec.containers: element 1: associative list with keys has an element that "
                'omits key field "name" (and doesn\'t have default value)'
            ),
        ),
        (
            lambda c: c["spec"]["template"]["spec"]["containers"].append({"name": "api"}),
            500,
            (
                "failed to create typed patch object (kb/api; apps/v1, Kind=DaemonSet): "
                '.spec.template.spec.containers: duplicate entries for key [name="api"]'
            ),
        ),
    ],
)
def test_refused_apply_configs(mutate: Any, code: int, message: str) -> None:
    cfg = ds_config()
    mutate(cfg)
    with pytest.raises(ApplyError) as info:
        apply("DaemonSet", AV, None, cfg, "kubectl", False, T0, name="api", namespace="kb")
    assert (info.value.code, info.value.message) == (code, message)
    assert info.value.reason == ("BadRequest" if code == 400 else "")


def test_name_defaults_to_the_live_object_and_namespace_is_filled() -> None:
    live = apply("DaemonSet", AV, None, ds_config(), "kubectl", False, T0)
    cfg = ds_config()
    del cfg["metadata"]["namespace"]
    obj = apply("DaemonSet", AV, live, cfg, "kubectl", False, T1, namespace="kb")
    assert obj["metadata"]["namespace"] == "kb"
    cfg["metadata"]["name"] = "renamed"
    with pytest.raises(ApplyError, match=r"does not match the name on the URL \(api\)"):
        apply("DaemonSet", AV, live, cfg, "kubectl", False, T1)


def test_manager_from_user_agent() -> None:
    assert manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd") == "kubectl"
    assert manager_from_user_agent("OpenAPI-Generator/37.0.2/python") == "OpenAPI-Generator"
    assert manager_from_user_agent("x" * 300) == "x" * 128


# ---------------------------------------------------------------------------------------------
# Properties

NAMES = st.sampled_from(["api", "side", "log"])
PORTS = st.lists(
    st.fixed_dictionaries(
        {"containerPort": st.sampled_from([80, 443, 8080, 9090])},
        optional={"hostPort": st.sampled_from([80, 8080])},
    ),
    min_size=1,  # an empty list is unowned by SSA; Go's typed round trip would drop it anyway
    max_size=3,
    unique_by=lambda p: p["containerPort"],
)
CONTAINERS = st.dictionaries(
    NAMES,
    st.fixed_dictionaries(
        {"image": st.sampled_from(["a:1", "a:2"])},
        optional={"ports": PORTS, "args": st.lists(st.sampled_from(["-v", "-q"]), min_size=1, max_size=2)},
    ),
    min_size=1,
    max_size=3,
).map(lambda d: [{"name": n, **c} for n, c in d.items()])
LABELS = st.dictionaries(st.sampled_from(["app", "tier", "team"]), st.sampled_from(["a", "b"]), max_size=3)


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    cfg = ds_config()
    cfg["metadata"]["labels"] = draw(LABELS) or {"app": "api"}
    cfg["spec"]["template"]["spec"] = {"containers": draw(CONTAINERS)}
    if draw(st.booleans()):
        cfg["spec"]["template"]["spec"]["hostNetwork"] = draw(st.booleans())
    if draw(st.booleans()):
        cfg["spec"]["minReadySeconds"] = draw(st.integers(0, 3))
    return cfg


def _subset(cfg: dict[str, Any], data: Any) -> dict[str, Any]:
    """Drop some optional parts of a config (never emptying a map or the container list)."""
    out = copy.deepcopy(cfg)
    spec = out["spec"]
    for key in ("minReadySeconds",):
        if key in spec and data.draw(st.booleans()):
            del spec[key]
    pod = spec["template"]["spec"]
    if "hostNetwork" in pod and data.draw(st.booleans()):
        del pod["hostNetwork"]
    keep = data.draw(
        st.lists(st.booleans(), min_size=len(pod["containers"]), max_size=len(pod["containers"]))
    )
    kept = [c for c, k in zip(pod["containers"], keep, strict=True) if k] or pod["containers"][:1]
    for c in kept:
        for key in ("ports", "args"):
            if key in c and data.draw(st.booleans()):
                del c[key]
    pod["containers"] = kept
    return out


@settings(max_examples=150, deadline=None)
@given(configs())
def test_reapplying_the_same_config_is_a_no_op(cfg: dict[str, Any]) -> None:
    first = apply("DaemonSet", AV, None, cfg, "kubectl", False, T0)
    again = apply("DaemonSet", AV, first, cfg, "kubectl", False, T1)
    assert again == first


@settings(max_examples=150, deadline=None)
@given(configs(), st.data())
def test_applying_a_smaller_config_equals_applying_it_fresh(cfg: dict[str, Any], data: Any) -> None:
    smaller = _subset(cfg, data)
    shrunk = apply(
        "DaemonSet",
        AV,
        apply("DaemonSet", AV, None, cfg, "kubectl", False, T0),
        smaller,
        "kubectl",
        False,
        T1,
    )
    fresh = apply("DaemonSet", AV, None, smaller, "kubectl", False, T1)
    assert without_times(shrunk) == without_times(fresh)


@settings(max_examples=150, deadline=None)
@given(configs())
def test_the_applier_owns_exactly_its_config(cfg: dict[str, Any]) -> None:
    obj = apply("DaemonSet", AV, None, cfg, "kubectl", False, T0)
    stripped = {".apiVersion", ".kind", ".metadata.name", ".metadata.namespace"}
    assert owned(obj, "kubectl") == {format_path(p) for p in field_set("DaemonSet", cfg)} - stripped


PATH_ELEMENTS = st.one_of(
    st.sampled_from(["spec", "metadata", "labels", "containers", "a.b", "x:y"]).map(lambda n: ("f", n)),
    st.sampled_from(["api", "side", 'q"t']).map(lambda n: ("k", (("name", json.dumps(n)),))),
    st.integers(1, 12).map(lambda p: ("k", (("containerPort", str(p)), ("protocol", '"TCP"')))),
    st.sampled_from(["foregroundDeletion", "kubernetes"]).map(lambda v: ("v", json.dumps(v))),
)


@given(st.sets(st.lists(PATH_ELEMENTS, min_size=1, max_size=4).map(tuple), max_size=12))
def test_fields_v1_encoding_round_trips(paths: set) -> None:
    assert decode_fields_v1(encode_fields_v1(paths)) == paths
    assert decode_fields_v1(json.loads(json.dumps(encode_fields_v1(paths)))) == paths
