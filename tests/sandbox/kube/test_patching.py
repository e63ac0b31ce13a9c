"""Patch engine: strategic merge patch, JSON merge patch, JSON patch (keybuzz_tui.sandbox.kube.patching).

Expected results come from apimachinery's strategicpatch semantics (ordering included: kubectl users
see it), upstream's own test fixtures (MergeItem schema), and the requests kubectl 1.32 sends for
apply / set image / label / edit / rollout undo.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keybuzz_tui.sandbox.kube.errors import ApiError
from keybuzz_tui.sandbox.kube.patching import (
    GENERIC_422,
    PatchError,
    create_merge_patch,
    go_value_string,
    json_patch,
    merge_patch,
    strategic_merge,
    strategic_merge_with,
)


def ds(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A DaemonSet whose pod template holds `containers`."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "api", "namespace": "kb", "labels": {"app": "api"}},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": containers, **spec},
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def tpl_patch(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [i["name"] for i in items]


# ---------------------------------------------------------------------------------------------
# Maps


def test_maps_merge_recursively_and_null_deletes() -> None:
    obj = ds([{"name": "api", "image": "a:1"}])
    out = strategic_merge(
        "DaemonSet", obj, {"metadata": {"labels": {"tier": "web", "app": None}, "annotations": {"x": "y"}}}
    )
    assert out["metadata"]["labels"] == {"tier": "web"}
    assert out["metadata"]["annotations"] == {"x": "y"}
    assert out["spec"] == obj["spec"]


def test_null_for_absent_key_is_ignored_and_nulls_inside_new_values_vanish() -> None:
    out = strategic_merge(
        "ConfigMap", {"data": {"a": "1"}}, {"missing": None, "binaryData": {"k": None, "j": "eA=="}}
    )
    assert out == {"data": {"a": "1"}, "binaryData": {"j": "eA=="}}


def test_inputs_are_not_mutated() -> None:
    obj = ds([{"name": "api", "image": "a:1"}])
    patch = tpl_patch({"containers": [{"name": "api", "image": "a:2"}, {"name": "new", "image": "n"}]})
    before_obj, before_patch = copy.deepcopy(obj), copy.deepcopy(patch)
    strategic_merge("DaemonSet", obj, patch)
    assert obj == before_obj and patch == before_patch


def test_map_level_replace_and_delete_directives() -> None:
    obj = ds([{"name": "api", "image": "a:1"}])
    out = strategic_merge("DaemonSet", obj, {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert out["metadata"]["labels"] == {"only": "this"}
    out = strategic_merge("DaemonSet", obj, {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}
    out = strategic_merge(
        "ConfigMap", {"data": {"a": "1"}, "x": 1}, {"$patch": "replace", "data": {"b": "2"}}
    )
    assert out == {"data": {"b": "2"}}


def test_directive_map_for_absent_key_is_not_stored() -> None:
    out = strategic_merge("ConfigMap", {"data": {"a": "1"}}, {"metadata": {"labels": {"$patch": "delete"}}})
    assert out == {"data": {"a": "1"}, "metadata": {}}


# ---------------------------------------------------------------------------------------------
# Lists


def test_set_image_merges_container_by_name() -> None:
    # kubectl set image sends exactly this strategic merge patch
    obj = ds(
        [
            {"name": "api", "image": "a:1", "ports": [{"containerPort": 8080}]},
            {"name": "side", "image": "s:1"},
        ]
    )
    out = strategic_merge("DaemonSet", obj, tpl_patch({"containers": [{"name": "api", "image": "a:2"}]}))
    assert pod_spec(out)["containers"] == [
        {"name": "api", "image": "a:2", "ports": [{"containerPort": 8080}]},
        {"name": "side", "image": "s:1"},
    ]


def test_new_list_items_come_before_server_only_items_without_set_element_order() -> None:
    obj = ds([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    out = strategic_merge("DaemonSet", obj, tpl_patch({"containers": [{"name": "c", "image": "c"}]}))
    assert names(pod_spec(out)["containers"]) == ["c", "a", "b"]


def test_patch_order_wins_for_items_it_names() -> None:
    obj = ds([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    out = strategic_merge(
        "DaemonSet", obj, tpl_patch({"containers": [{"name": "c", "image": "c"}, {"name": "a"}]})
    )
    assert names(pod_spec(out)["containers"]) == ["b", "c", "a"]


def test_delete_directive_in_merge_list_removes_item() -> None:
    obj = ds([{"name": "a"}, {"name": "b"}])
    out = strategic_merge("DaemonSet", obj, tpl_patch({"containers": [{"name": "a", "$patch": "delete"}]}))
    assert names(pod_spec(out)["containers"]) == ["b"]


def test_replace_directive_in_merge_list_replaces_whole_list() -> None:
    obj = ds([{"name": "a", "image": "a"}, {"name": "b"}])
    out = strategic_merge(
        "DaemonSet", obj, tpl_patch({"containers": [{"$patch": "replace"}, {"name": "z", "image": "z"}]})
    )
    assert pod_spec(out)["containers"] == [{"name": "z", "image": "z"}]


def test_removing_a_container_port_through_smp() -> None:
    # ports merge on containerPort: a delete directive removes that port (every protocol of it)
    obj = ds(
        [
            {
                "name": "api",
                "ports": [
                    {"containerPort": 8080, "protocol": "TCP"},
                    {"containerPort": 8081, "protocol": "TCP"},
                    {"containerPort": 8081, "protocol": "UDP"},
                ],
            }
        ]
    )
    patch = tpl_patch(
        {"containers": [{"name": "api", "ports": [{"containerPort": 8081, "$patch": "delete"}]}]}
    )
    out = strategic_merge("DaemonSet", obj, patch)
    assert pod_spec(out)["containers"][0]["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


def test_lists_without_merge_strategy_are_replaced() -> None:
    obj = ds(
        [{"name": "api", "args": ["a", "b"]}],
        tolerations=[{"key": "x", "operator": "Exists"}],
    )
    patch = tpl_patch(
        {"tolerations": [{"key": "y", "operator": "Exists"}], "containers": [{"name": "api", "args": ["c"]}]}
    )
    out = strategic_merge("DaemonSet", obj, patch)
    assert pod_spec(out)["tolerations"] == [{"key": "y", "operator": "Exists"}]
    assert pod_spec(out)["containers"][0]["args"] == ["c"]


def test_primitive_merge_list_unions_and_delete_from_primitive_list() -> None:
    obj = {"metadata": {"name": "n", "finalizers": ["a", "b"]}}
    out = strategic_merge("ConfigMap", obj, {"metadata": {"finalizers": ["b", "c"]}})
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    out = strategic_merge("ConfigMap", obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]


def test_delete_from_primitive_list_on_absent_list_is_a_no_op() -> None:
    out = strategic_merge(
        "ConfigMap", {"metadata": {"name": "n"}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    )
    assert out == {"metadata": {"name": "n"}}


def test_env_merges_by_name_inside_a_container() -> None:
    obj = ds([{"name": "api", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}])
    patch = tpl_patch({"containers": [{"name": "api", "env": [{"name": "B", "value": "3"}]}]})
    assert pod_spec(strategic_merge("DaemonSet", obj, patch))["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
    ]


# ---------------------------------------------------------------------------------------------
# What kubectl sends


def test_rollout_undo_daemonset_replaces_the_template() -> None:
    # kubectl rollout undo daemonset applies ControllerRevision.data as a strategic merge patch
    live = ds(
        [{"name": "api", "image": "a:2", "ports": [{"containerPort": 9090, "hostPort": 9090}]}],
        hostNetwork=True,
        dnsPolicy="ClusterFirstWithHostNet",
    )
    live["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
    }
    revision_data = {
        "spec": {
            "template": {
                "$patch": "replace",
                "metadata": {"creationTimestamp": None, "labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {"name": "api", "image": "a:1", "ports": [{"containerPort": 8080, "hostPort": 8080}]}
                    ],
                    "hostNetwork": True,
                },
            }
        }
    }
    out = strategic_merge("DaemonSet", live, revision_data)
    assert out["spec"]["template"] == {
        "metadata": {"labels": {"app": "api"}},
        "spec": {
            "containers": [
                {"name": "api", "image": "a:1", "ports": [{"containerPort": 8080, "hostPort": 8080}]}
            ],
            "hostNetwork": True,
        },
    }
    assert out["spec"]["updateStrategy"] == live["spec"]["updateStrategy"]
    assert out["spec"]["selector"] == live["spec"]["selector"]


def test_client_side_apply_three_way_patch_with_set_element_order() -> None:
    # last-applied had [a, b]; the new manifest is [b, a, c] with a new image for a; the live
    # object also has a container injected by someone else ("mesh")
    live = ds([{"name": "a", "image": "a:1"}, {"name": "mesh", "image": "m"}, {"name": "b", "image": "b:1"}])
    patch = tpl_patch(
        {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
            "containers": [{"name": "a", "image": "a:2"}, {"name": "c", "image": "c:1"}],
        }
    )
    out = strategic_merge("DaemonSet", live, patch)
    # $setElementOrder fixes b, a, c; "mesh" keeps its place relative to b in the live list
    # (mergeSortedSlice takes a server-only item first when the live list had it first)
    assert pod_spec(out)["containers"] == [
        {"name": "mesh", "image": "m"},
        {"name": "b", "image": "b:1"},
        {"name": "a", "image": "a:2"},
        {"name": "c", "image": "c:1"},
    ]


def test_client_side_apply_removes_a_port_with_set_element_order_and_delete() -> None:
    live = ds(
        [
            {
                "name": "api",
                "ports": [
                    {"containerPort": 8080, "protocol": "TCP"},
                    {"containerPort": 9090, "protocol": "TCP"},
                ],
            }
        ]
    )
    patch = tpl_patch(
        {
            "$setElementOrder/containers": [{"name": "api"}],
            "containers": [
                {
                    "name": "api",
                    "$setElementOrder/ports": [{"containerPort": 8080}],
                    "ports": [{"containerPort": 9090, "$patch": "delete"}],
                }
            ],
        }
    )
    out = strategic_merge("DaemonSet", live, patch)
    assert pod_spec(out)["containers"][0]["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


def test_client_side_apply_retain_keys_switches_a_volume_source() -> None:
    live = ds(
        [{"name": "api"}],
        volumes=[
            {"name": "data", "hostPath": {"path": "/srv", "type": ""}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ],
    )
    patch = tpl_patch(
        {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
            "volumes": [
                {"$retainKeys": ["emptyDir", "name"], "emptyDir": {}, "hostPath": None, "name": "data"}
            ],
        }
    )
    out = strategic_merge("DaemonSet", live, patch)
    assert pod_spec(out)["volumes"] == [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c"}},
    ]


def test_retain_keys_clears_fields_even_without_explicit_nulls() -> None:
    live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    out = strategic_merge(
        "Deployment", live, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_kubectl_rollout_restart_patch_adds_template_annotation() -> None:
    live = ds([{"name": "api", "image": "a:1"}])
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-02-03T04:05:06Z"}}
            }
        }
    }
    out = strategic_merge("DaemonSet", live, patch)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "api"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-02-03T04:05:06Z"},
    }


def test_kubectl_edit_style_two_way_patch() -> None:
    live = ds([{"name": "api", "image": "a:1", "env": [{"name": "A", "value": "1"}]}])
    patch = tpl_patch(
        {
            "$setElementOrder/containers": [{"name": "api"}],
            "containers": [
                {
                    "name": "api",
                    "$setElementOrder/env": [{"name": "B"}],
                    "env": [{"name": "B", "value": "2"}, {"name": "A", "$patch": "delete"}],
                }
            ],
        }
    )
    out = strategic_merge("DaemonSet", live, patch)
    assert pod_spec(out)["containers"] == [
        {"name": "api", "image": "a:1", "env": [{"name": "B", "value": "2"}]}
    ]


def test_kubectl_label_and_scale_use_merge_patch() -> None:
    live = ds([{"name": "api"}])
    out = merge_patch(live, {"metadata": {"labels": {"env": "prod", "app": None}}})
    assert out["metadata"]["labels"] == {"env": "prod"}
    out = merge_patch({"spec": {"replicas": 1}}, {"spec": {"replicas": 3}})
    assert out == {"spec": {"replicas": 3}}


# ---------------------------------------------------------------------------------------------
# Upstream fixtures (apimachinery strategicpatch/patch_test.go, MergeItem schema)


def merge_item_lookup(path: tuple[str, ...]) -> tuple[str, str | None]:
    return {
        "mergingList": ("merge", "name"),
        "mergingIntList": ("merge", None),
        "retainKeysMergingList": ("merge,retainKeys", "name"),
    }.get(path[-1] if path else "", ("replace", None))


UPSTREAM_CASES = [
    ("unique scalars", {"mergingIntList": [1, 2]}, {"mergingIntList": [2, 3]}, {"mergingIntList": [1, 2, 3]}),
    (
        "delete map from nested map",
        {"simpleMap": {"key1": 1}},
        {"simpleMap": {"$patch": "delete"}},
        {"simpleMap": {}},
    ),
    (
        "delete all items",
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {"mergingList": [{"$patch": "replace"}]},
        {"mergingList": []},
    ),
    ("merge empty lists", {"mergingList": []}, {"mergingList": []}, {"mergingList": []}),
    (
        "add key and delete all keys",
        {"name": 1, "value": 1},
        {"other": "a", "$patch": "replace"},
        {"other": "a"},
    ),
    (
        "delete all duplicates",
        {"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]},
        {"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]},
        {"mergingList": [{"name": 2, "value": "a"}]},
    ),
    (
        "retainKeys list can delete a field",
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
        {"retainKeysMergingList": [{"name": "foo", "value": None}]},
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]},
    ),
    (
        "preserve the order from the patch",
        {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]},
        {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]},
        {
            "mergingList": [
                {"name": 3, "value": "c"},
                {"name": 1, "value": "a"},
                {"name": 2, "value": "b", "other": "x"},
            ]
        },
    ),
    (
        "preserve the order from the patch 2",
        {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]},
        {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
        {"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
    ),
    (
        "int list order",
        {"mergingIntList": [1, 2, 3]},
        {"mergingIntList": [3, 1]},
        {"mergingIntList": [2, 3, 1]},
    ),
    (
        "setElementOrder names an item the list lacks",
        {"mergingList": [{"name": 1}, {"name": 3}]},
        {
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
        },
        {"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
    ),
    (
        "setElementOrder on an int list",
        {"mergingIntList": [1, 3]},
        {"$setElementOrder/mergingIntList": [3, 2, 1]},
        {"mergingIntList": [3, 1]},
    ),
    (
        "three-way: delete items in list of scalars",
        {"mergingIntList": [1, 2, 3, 4]},
        {"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2, 4]},
    ),
    (
        "three-way: merge lists of maps",
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
        {
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
        },
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]
        },
    ),
    (
        "retainKeys map adds an item in nested merging int list",
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3]}},
        {
            "retainKeysMap": {
                "$setElementOrder/mergingIntList": [1, 2, 4],
                "$retainKeys": ["mergingIntList", "name"],
                "mergingIntList": [4],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 4, 3]}},
    ),
    (
        "retainKeys map deletes nested non-merging list",
        {"retainKeysMap": {"name": "foo", "nonMergingList": [{"name": "a"}]}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar", "nonMergingList": None}},
        {"retainKeysMap": {"name": "foo", "value": "bar"}},
    ),
    (
        "retainKeys list of maps clears a field",
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]},
        {
            "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}],
        },
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]},
    ),
    (
        "retainKeys map deletes an item in nested merging list",
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}},
        {
            "retainKeysMap": {
                "$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}],
                "mergingList": [{"name": "b", "$patch": "delete"}],
            }
        },
        {"retainKeysMap": {"name": "foo", "mergingList": [{"name": "a"}, {"name": "x"}]}},
    ),
]


@pytest.mark.parametrize(
    ("desc", "original", "patch", "expected"), UPSTREAM_CASES, ids=[c[0] for c in UPSTREAM_CASES]
)
def test_upstream_strategic_merge_cases(desc: str, original: dict, patch: dict, expected: dict) -> None:
    assert strategic_merge_with(merge_item_lookup, original, patch) == expected


# ---------------------------------------------------------------------------------------------
# Errors: codes and texts as the apiserver sends them


def raises(fn: Any, *args: Any) -> PatchError:
    with pytest.raises(PatchError) as info:
        fn(*args)
    assert isinstance(info.value, ApiError)
    return info.value


def test_missing_merge_key_is_a_400_with_go_map_text() -> None:
    err = raises(
        strategic_merge, "DaemonSet", ds([{"name": "api"}]), tpl_patch({"containers": [{"image": "x:1"}]})
    )
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == "map: map[image:x:1] does not contain declared merge key: name"


def test_unknown_patch_directive() -> None:
    err = raises(strategic_merge, "ConfigMap", {"data": {}}, {"data": {"$patch": "nope"}})
    assert err.code == 400
    assert err.message == "unknown patch type: nope in map: map[$patch:nope]"
    err = raises(
        strategic_merge, "DaemonSet", ds([{"name": "a"}]), tpl_patch({"containers": [{"$patch": "merge"}]})
    )
    assert err.message == "merging lists cannot yet be specified in the patch"


def test_set_element_order_mismatch() -> None:
    err = raises(
        strategic_merge_with,
        merge_item_lookup,
        {"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
        },
    )
    assert err.code == 400
    assert err.message == (
        "the order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match "
        "$setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]"
    )


def test_directive_format_errors_are_bad_requests() -> None:
    err = raises(
        strategic_merge,
        "Deployment",
        {"spec": {"strategy": {}}},
        {"spec": {"strategy": {"$retainKeys": "type"}}},
    )
    assert (err.code, err.reason, err.message) == (400, "BadRequest", "invalid patch format of retainKeys")
    err = raises(
        strategic_merge,
        "Deployment",
        {"spec": {"strategy": {}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "x": 1}}},
    )
    assert err.message == "invalid patch format of retainKeys"
    err = raises(strategic_merge, "ConfigMap", {}, {"$deleteFromPrimitiveListX": ["a"]})
    assert (err.code, err.message) == (400, "invalid patch format of primitive list")
    err = raises(strategic_merge, "ConfigMap", {}, {"$setElementOrderX": []})
    assert (err.code, err.message) == (400, "invalid patch format of setElementOrder list")


def test_non_object_smp_body_is_a_bad_request() -> None:
    err = raises(strategic_merge, "ConfigMap", {}, [{"op": "add"}])
    assert (err.code, err.message) == (
        400,
        "json: cannot unmarshal array into Go value of type map[string]interface {}",
    )
    assert strategic_merge("ConfigMap", {"a": 1}, None) == {"a": 1}


def test_list_of_lists_and_mixed_element_types() -> None:
    err = raises(
        strategic_merge, "ConfigMap", {"metadata": {"finalizers": []}}, {"metadata": {"finalizers": [["x"]]}}
    )
    assert (err.code, err.reason, err.message, err.details) == (422, "Invalid", GENERIC_422, {})
    obj = {"metadata": {"finalizers": ["a"]}}
    err = raises(strategic_merge, "ConfigMap", obj, {"metadata": {"finalizers": [1]}})
    assert err.code == 400
    assert err.message == "list element types are not identical: [[a] [1]]"


# ---------------------------------------------------------------------------------------------
# JSON merge patch


RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_examples(original: dict, patch: dict, expected: dict) -> None:
    assert merge_patch(original, patch) == expected


def test_merge_patch_error_mapping() -> None:
    err = raises(merge_patch, {"a": 1}, None)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", "Invalid JSON Patch")
    err = raises(merge_patch, {"a": 1}, "text")
    assert err.code == 400
    err = raises(merge_patch, {"a": 1}, [1, 2])
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message.startswith(
        ' "" is invalid: patch: Invalid value: "[1,2]": couldn\'t get version/kind;'
    )
    assert err.details["causes"][0]["field"] == "patch"


# ---------------------------------------------------------------------------------------------
# JSON patch


def test_json_patch_operations() -> None:
    obj = ds([{"name": "api", "image": "a:1"}])
    ops = [
        {"op": "test", "path": "/metadata/name", "value": "api"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "a:2"},
        {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
        {"op": "remove", "path": "/spec/updateStrategy/rollingUpdate"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "side"}},
        {"op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copy"},
        {"op": "move", "from": "/metadata/labels/copy", "path": "/metadata/labels/moved"},
    ]
    out = json_patch(obj, ops)
    assert names(pod_spec(out)["containers"]) == ["api", "side"]
    assert pod_spec(out)["containers"][0]["image"] == "a:2"
    assert out["metadata"]["labels"] == {"app": "api", "tier": "web", "moved": "api"}
    assert out["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert obj["metadata"]["labels"] == {"app": "api"}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/metadata/name", "value": "other"}],
        [{"op": "remove", "path": "/metadata/nothing"}],
        [{"op": "replace", "path": "/spec/nothing/deeper", "value": 1}],
        [{"op": "frobnicate", "path": "/x"}],
        [None],
    ],
)
def test_failing_json_patch_is_422_with_the_generic_text(ops: list[Any]) -> None:
    err = raises(json_patch, {"metadata": {"name": "api"}, "spec": {}}, ops)
    assert (err.code, err.reason, err.message, err.details) == (422, "Invalid", GENERIC_422, {})
    assert err.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid",
        "code": 422,
        "details": {},
    }


def test_json_patch_decode_errors_and_limits() -> None:
    err = raises(json_patch, {}, {"op": "add"})
    assert (err.code, err.message) == (
        400,
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
    )
    err = raises(json_patch, {}, ["add"])
    assert (err.code, err.message) == (
        400,
        "json: cannot unmarshal string into Go value of type jsonpatch.Operation",
    )
    err = raises(json_patch, {}, [{"op": "test", "path": "/a", "value": 1}] * 10001)
    assert (err.code, err.reason) == (413, "RequestEntityTooLarge")
    assert (
        err.message
        == "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    )
    assert json_patch({"a": 1}, None) == {"a": 1}


def test_json_patch_that_replaces_the_root_with_a_non_object() -> None:
    err = raises(json_patch, {"a": 1}, [{"op": "replace", "path": "", "value": "x"}])
    assert err.code == 422
    assert "cannot unmarshal string into Go value" in err.message


def test_go_value_string() -> None:
    assert (
        go_value_string({"b": [1, "x"], "a": None, "c": 2.0, "d": True}) == "map[a:<nil> b:[1 x] c:2 d:true]"
    )


# ---------------------------------------------------------------------------------------------
# Properties

KEYS = st.sampled_from(["a", "b", "c", "d", "e"])
SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text("xyz", max_size=3)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=5)


def _no_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _no_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_no_nulls(x) for x in v if x is not None]
    return v


@given(OBJECTS, OBJECTS.map(_no_nulls))
def test_merge_patch_round_trips_create_merge_patch(a: dict, b: dict) -> None:
    assert merge_patch(a, create_merge_patch(a, b)) == b


@given(OBJECTS)
def test_empty_patches_are_identity(a: dict) -> None:
    assert strategic_merge("ConfigMap", a, {}) == a
    assert strategic_merge("DaemonSet", a, {}) == a
    assert merge_patch(a, {}) == a
    assert json_patch(a, []) == a


LIST_FREE = st.recursive(SCALARS, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=10)


@given(st.dictionaries(KEYS, LIST_FREE, max_size=5), st.dictionaries(KEYS, LIST_FREE, max_size=5))
def test_smp_without_lists_or_directives_is_json_merge_patch(a: dict, p: dict) -> None:
    assert strategic_merge("ConfigMap", a, p) == merge_patch(a, p)


CONTAINER_NAMES = st.sampled_from(["api", "side", "init", "log", "mesh"])
CONTAINER = st.fixed_dictionaries(
    {"image": st.sampled_from(["a:1", "a:2", "b:1"])},
    optional={
        "env": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["A", "B", "C"]), "value": st.sampled_from(["1", "2"])}
            ),
            max_size=3,
            unique_by=lambda e: e["name"],
        ),
        "args": st.lists(st.sampled_from(["-v", "-q", "--x"]), max_size=2),
    },
)
CONTAINERS = st.dictionaries(CONTAINER_NAMES, CONTAINER, max_size=4).map(
    lambda d: [{"name": n, **c} for n, c in d.items()]
)


@settings(max_examples=200)
@given(CONTAINERS, CONTAINERS)
def test_smp_container_merge_properties(live_containers: list, patch_containers: list) -> None:
    live = ds(live_containers)
    patch = tpl_patch({"containers": patch_containers})
    once = strategic_merge("DaemonSet", live, patch)
    # idempotent
    assert strategic_merge("DaemonSet", once, patch) == once
    result = {c["name"]: c for c in pod_spec(once)["containers"]}
    # union of names, no duplicates, patch items keep the patch's relative order
    assert sorted(result) == sorted({c["name"] for c in live_containers + patch_containers})
    assert len(result) == len(pod_spec(once)["containers"])
    order = [n for n in names(pod_spec(once)["containers"]) if n in {c["name"] for c in patch_containers}]
    assert order == names(patch_containers)
    # patch values win, untouched live values stay
    for c in patch_containers:
        assert result[c["name"]]["image"] == c["image"]
        if "args" in c:
            assert result[c["name"]]["args"] == c["args"]
    for c in live_containers:
        if c["name"] not in {p["name"] for p in patch_containers}:
            assert result[c["name"]] == c
