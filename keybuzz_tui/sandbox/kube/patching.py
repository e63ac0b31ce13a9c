"""The three PATCH flavours the apiserver accepts, over plain JSON dicts.

* `strategic_merge` ports apimachinery `pkg/util/strategicpatch` (server half, `StrategicMergeMapPatch`
  with MergeParallelList + IgnoreUnmatchedNulls, as of apimachinery 0.36), list semantics from
  `schema.py`.
* `merge_patch` is RFC 7386 as github.com/evanphx/json-patch `MergePatch` does it (the library the
  apiserver uses), including its quirks (nulls pruned from new values, a non-object patch becomes
  the document).
* `json_patch` is RFC 6902 through the `jsonpatch` library, with the apiserver's error mapping.

Errors are `PatchError`, an `ApiError` whose code / reason / message are those the apiserver sends
for the same failure (apiserver `endpoints/handlers/patch.go`, `interpretStrategicMergePatchError`,
`responsewriters.ErrorToAPIStatus` for plain Go errors, which become a 500 with no reason).

Ordering inside merge lists follows the Go code exactly (new patch items come before server-only
items unless `$setElementOrder` says otherwise), because kubectl users see that order.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from .errors import ApiError
from .schema import smp_strategy

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "PatchError",
    "create_merge_patch",
    "go_value_string",
    "json_patch",
    "merge_patch",
    "strategic_merge",
    "strategic_merge_with",
]

# (strategy, merge key) for the list at a path of field names; see schema.smp_strategy.
Lookup = Callable[[tuple[str, ...]], tuple[str, str | None]]

DIRECTIVE = "$patch"
DELETE_PREFIX = "$deleteFromPrimitiveList"
SET_ORDER_PREFIX = "$setElementOrder"
RETAIN_KEYS = "$retainKeys"

# apimachinery pkg/util/mergepatch/errors.go
ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ORDER = "invalid patch format of setElementOrder list"
ERR_RETAIN_KEYS_MISMATCH = "patch content doesn't match retainKeys list"
ERR_UNSUPPORTED_SMP = "strategic merge patch format is not supported"

# apimachinery errors.NewGenericServerResponse(422, ...): the server message is dropped.
GENERIC_422 = "the server rejected our request due to an error in our request"
MAX_JSON_PATCH_OPERATIONS = 10000


class PatchError(ApiError):
    """A patch the apiserver would refuse; `code`/`reason`/`message` are what it would answer.

    400 BadRequest: undecodable patch, bad directive format. 422 Invalid: JSON patch op failed,
    result is not an object, list of lists. 413: too many JSON patch ops. 500 (reason ""): the
    strategicpatch errors the apiserver passes through unconverted (missing merge key, unknown
    `$patch` value, mixed element types...).
    """

    def __init__(
        self, message: str, code: int = 422, reason: str = "Invalid", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, reason, message, details)


def _bad_request(message: str) -> PatchError:
    return PatchError(message, 400, "BadRequest")


def _unprocessable() -> PatchError:
    """NewGenericServerResponse(422): generic text, empty details object."""
    return PatchError(GENERIC_422, 422, "Invalid", {})


def _internal(message: str) -> PatchError:
    """A plain Go error from strategicpatch. The real apiserver passes it through ErrorToAPIStatus
    as a 500; the sandbox keeps the raw Go text but answers 400 BadRequest, because the patch is
    the client's mistake and the sandbox promises a 4xx for every bad input (kubectl and the
    client print the message the same way for both codes)."""
    return PatchError(message, 400, "BadRequest")


# --------------------------------------------------------------------------------------------
# Go formatting helpers: error texts embed values printed with %v / %s / reflect.TypeOf.


def _go_type(v: Any) -> str:
    """reflect.TypeOf of a value decoded by the apiserver (ints are int64: PreserveInts)."""
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    return "<nil>"


def go_value_string(v: Any) -> str:
    """fmt's %v for decoded JSON: `map[a:1 b:[x y]]`, `<nil>`, floats without a trailing .0."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "[" + " ".join(go_value_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value_string(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _go_s(v: Any) -> str:
    """fmt's %s: strings as-is, anything else as `%!s(type=value)`."""
    if isinstance(v, str):
        return v
    if v is None:
        return "%!s(<nil>)"
    if isinstance(v, (dict, list)):
        return go_value_string(v)
    return f"%!s({_go_type(v)}={go_value_string(v)})"


def _json_kind(v: Any) -> str:
    """The JSON type name encoding/json puts in `cannot unmarshal X into ...`."""
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "string"


def _go_json(v: Any) -> str:
    """encoding/json output: compact, HTML characters escaped."""
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _gokey(v: Any) -> tuple[str, str]:
    """Hashable identity with Go interface equality (int64(1) != float64(1) != true)."""
    return (_go_type(v), json.dumps(v, sort_keys=True))


def _err_bad_arg_type(expected: str, actual: Any) -> PatchError:
    return _internal(f"expected a {expected}, but received a {_go_type(actual)}")


def _err_no_merge_key(m: dict[str, Any], key: str) -> PatchError:
    return _internal(f"map: {go_value_string(m)} does not contain declared merge key: {key}")


def _err_bad_patch_type(t: Any, m: dict[str, Any]) -> PatchError:
    return _internal(f"unknown patch type: {_go_s(t)} in map: {go_value_string(m)}")


def _not_an_object(result: Any) -> PatchError:
    """The patched document is not an object: decoding it into the typed object fails (422)."""
    text = _go_json(result)
    cause = (
        "couldn't get version/kind; json parse error: json: cannot unmarshal "
        f"{_json_kind(result)} into Go value of type struct {{ APIVersion string "
        '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
    )
    detail = f"Invalid value: {json.dumps(text)}: {cause}"
    return PatchError(
        f' "" is invalid: patch: {detail}',
        422,
        "Invalid",
        {"causes": [{"reason": "FieldValueInvalid", "message": detail, "field": "patch"}]},
    )


# --------------------------------------------------------------------------------------------
# Strategic merge patch


def strategic_merge(kind: str, original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a strategic merge patch to an object of `kind`; inputs are never mutated."""
    return strategic_merge_with(lambda path: smp_strategy(kind, path), original, patch)


def strategic_merge_with(lookup: Lookup, original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """`strategic_merge` with an explicit list-semantics lookup (tests use upstream's fixtures)."""
    if patch is None:  # JSON null decodes into a nil map: nothing to merge
        return copy.deepcopy(original)
    if not isinstance(patch, dict):
        raise _bad_request(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type map[string]interface {{}}"
        )
    if not isinstance(original, dict):
        raise _bad_request(ERR_BAD_JSON_DOC)
    return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), (), lookup)


def _base_strategy(strategy: str) -> str:
    """`merge,retainKeys` -> `merge`: retainKeys only matters when a client builds a patch."""
    parts = [p for p in strategy.split(",") if p and p != "retainKeys"]
    return parts[0] if parts else ""


def _list_meta(lookup: Lookup, path: tuple[str, ...]) -> tuple[str, str]:
    strategy, key = lookup(path)
    return _base_strategy(strategy or ""), key or ""


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...], lookup: Lookup
) -> dict[str, Any]:
    """mergeMap: directives first, then $retainKeys, $setElementOrder, then key by key."""
    if DIRECTIVE in patch:
        return _map_directive(patch[DIRECTIVE], patch)
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, path, lookup)
    for key, patch_value in list(patch.items()):
        _merge_key(original, key, patch_value, path, lookup)
    return original


def _merge_key(
    original: dict[str, Any], key: str, patch_value: Any, path: tuple[str, ...], lookup: Lookup
) -> None:
    """One key of mergeMap's main loop (with the 0.36 removeDirectives/null handling)."""
    is_delete_list = False
    if key.startswith(DELETE_PREFIX):
        key = _extract_key(key, DELETE_PREFIX)
        is_delete_list = True
    if patch_value is None:
        original.pop(key, None)
        return
    if key not in original or _kind_of(original[key]) != _kind_of(patch_value):
        if not is_delete_list:
            _set_settled(original, key, patch_value)
        return
    current = original[key]
    if isinstance(current, dict):
        original[key] = _merge_map(current, patch_value, path + (key,), lookup)
    elif isinstance(current, list):
        original[key] = _merge_slice_handler(current, patch_value, path + (key,), lookup, is_delete_list)
    else:
        _set_settled(original, key, patch_value)


def _kind_of(v: Any) -> str:
    """reflect.TypeOf equality as mergeMap uses it: different Go types mean replace."""
    return _go_type(v)


def _set_settled(target: dict[str, Any], key: str, value: Any) -> None:
    """Store a patch value that is not merged: nulls dropped, `$patch` maps removed."""
    settled, keep = _remove_directives(_decode_like(value))
    if keep:
        target[key] = settled
    else:
        target.pop(key, None)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """removeDirectives: a map carrying `$patch` is dropped from its parent."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            nv, keep = _remove_directives(v)
            if keep:
                out[k] = nv
        return out, True
    if isinstance(value, list):
        items = []
        for v in value:
            nv, keep = _remove_directives(v)
            if keep:
                items.append(nv)
        return items, True
    return value, True


def _decode_like(value: Any) -> Any:
    """What decoding into the typed object does to raw patch content: null fields vanish and the
    `$...` keys (no Kubernetes field starts with `$`) are dropped as unknown fields."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None or (k.startswith("$") and k != DIRECTIVE):
                continue
            out[k] = _decode_like(v)
        return out
    if isinstance(value, list):
        return [_decode_like(v) for v in value]
    return value


def _strip_unknown(value: Any) -> Any:
    """Raw values the Go code stores as-is lose their `$` keys and nulls at decode time."""
    if isinstance(value, dict):
        return {k: _strip_unknown(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_unknown(v) for v in value]
    return value


def _map_directive(directive: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """handleDirectiveInMergeMap: `replace` keeps the patch as the value, `delete` empties it."""
    if directive == "replace" and isinstance(directive, str):
        rest = {k: v for k, v in patch.items() if k != DIRECTIVE}
        return _strip_unknown(rest)
    if directive == "delete" and isinstance(directive, str):
        return {}
    raise _err_bad_patch_type(directive, patch)


def _extract_key(s: str, prefix: str) -> str:
    parts = s.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        if prefix == DELETE_PREFIX:
            raise _bad_request(ERR_BAD_PRIMITIVE_LIST)
        raise _bad_request(ERR_BAD_SET_ORDER)
    return parts[1]


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """$retainKeys: every patched key must be listed; unlisted keys leave the original."""
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _bad_request(ERR_BAD_RETAIN_KEYS)
    keep = {_gokey(v) for v in retain}
    for k, v in patch.items():
        if v is None or k.startswith((DELETE_PREFIX, SET_ORDER_PREFIX)):
            continue
        if _gokey(k) not in keep:
            raise _bad_request(ERR_BAD_RETAIN_KEYS)
    for k in list(original):
        if _gokey(k) not in keep:
            del original[k]


def _merge_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...], lookup: Lookup
) -> None:
    """mergePatchIntoOriginal: merge each list named by a $setElementOrder, then order it."""
    for key in [k for k in patch if k.startswith(SET_ORDER_PREFIX)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _err_bad_arg_type("[]interface {}", order)
        okey = _extract_key(key, SET_ORDER_PREFIX)
        found_o, found_p = okey in original, okey in patch
        o_list, p_list = original.get(okey), patch.get(okey)
        if found_o and not isinstance(o_list, list):
            raise _err_bad_arg_type("[]interface {}", o_list)
        if found_p and not isinstance(p_list, list):
            raise _err_bad_arg_type("[]interface {}", p_list)
        o_list = o_list if found_o else []
        p_list = p_list if found_p else []
        strategy, merge_key = _list_meta(lookup, path + (okey,))
        _validate_set_order(p_list, order, merge_key)
        if found_o and not found_p:
            merged = o_list
        elif found_p and not found_o:
            merged, _ = _remove_directives(_decode_like(p_list))
        elif found_o and found_p:
            merged = _merge_slice_handler(o_list, p_list, path + (okey,), lookup, False, strategy, merge_key)
        else:
            continue
        if merge_key:
            patch_items, server_only = _partition_maps(merged, order, merge_key)
        else:
            patch_items, server_only = _partition_primitives(merged, order)
        kind = _slice_element_kind(o_list, p_list)
        original[okey] = _normalize_element_order(patch_items, server_only, order, o_list, merge_key, kind)
        patch.pop(okey, None)


def _validate_set_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """validatePatchWithSetOrderList: patch items must appear in $setElementOrder's order."""
    if not order or not patch_list:
        return
    non_delete = _extract_to_delete(patch_list)[0] if merge_key else patch_list
    pi = si = 0
    while pi < len(non_delete) and si < len(order):
        item = non_delete[pi]
        if isinstance(item, dict) and DIRECTIVE in item:
            pi += 1
            continue
        if _merge_key_value_equal(item, order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(non_delete) and si >= len(order):
        raise _internal(
            f"the order in patch list:\n{go_value_string(patch_list)}\n doesn't match "
            f"{SET_ORDER_PREFIX} list:\n{go_value_string(order)}"
        )


def _merge_key_value_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _gokey(left) == _gokey(right)
    if not isinstance(left, dict):
        raise _err_bad_arg_type("map[string]interface {}", left)
    if not isinstance(right, dict):
        raise _err_bad_arg_type("map[string]interface {}", right)
    if merge_key not in left:
        raise _err_no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _err_no_merge_key(right, merge_key)
    return _gokey(left[merge_key]) == _gokey(right[merge_key])


def _merge_slice_handler(
    original: list[Any],
    patch: Any,
    path: tuple[str, ...],
    lookup: Lookup,
    is_delete_list: bool,
    strategy: str | None = None,
    merge_key: str | None = None,
) -> list[Any]:
    """mergeSliceHandler: merge-strategy lists merge, everything else is replaced."""
    if strategy is None or merge_key is None:
        strategy, merge_key = _list_meta(lookup, path)
    if not isinstance(patch, list):
        raise _err_bad_arg_type("[]interface {}", patch)
    if strategy == "merge":
        return _merge_slice(original, patch, merge_key, is_delete_list, path, lookup)
    return _strip_unknown(patch)


def _merge_slice(
    original: list[Any],
    patch: list[Any],
    merge_key: str,
    is_delete_list: bool,
    path: tuple[str, ...],
    lookup: Lookup,
) -> list[Any]:
    """mergeSlice: union of scalars or key-wise merge of maps, then the Go ordering rules."""
    if not original and not patch:
        return original
    kind = _slice_element_kind(original, patch)
    if kind != "map":
        if is_delete_list:
            return _delete_from_slice(original, patch)
        merged = _dedupe_scalars(original + patch)
    else:
        if not merge_key:
            raise _internal("cannot merge lists without merge key for type struct")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_without_special(original, patch, merge_key, path, lookup)
    if merge_key:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    else:
        patch_items, server_only = _partition_primitives(merged, patch)
    return _normalize_element_order(patch_items, server_only, patch, original, merge_key, kind)


def _slice_element_kind(*lists: list[Any]) -> str:
    """sliceElementType: one Go type for every element, and never a list of lists."""
    prev: str | None = None
    for lst in lists:
        for v in lst:
            current = "map" if isinstance(v, dict) else "slice" if isinstance(v, list) else _go_type(v)
            if prev is None:
                prev = current
                if prev == "slice":
                    raise _unprocessable()
            elif prev != current:
                raise _internal(
                    "list element types are not identical: " + go_value_string([list(x) for x in lists])
                )
    if prev is None:
        raise _internal("no elements in any of the given slices")
    return prev


def _merge_special_elements(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """mergeSliceWithSpecialElements: `$patch: delete` items delete, `$patch: replace` replaces."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete" and isinstance(directive, str):
            if merge_key not in item:
                raise _err_no_merge_key(item, merge_key)
            original = _delete_matching(original, merge_key, item[merge_key])
        elif directive == "replace" and isinstance(directive, str):
            replace = True
        elif directive == "merge" and isinstance(directive, str):
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _err_bad_patch_type(directive, item)
    if replace:
        return _strip_unknown(plain), []
    return original, plain


def _find_map(items: list[Any], key: str, value: Any) -> int | None:
    """findMapInSliceBasedOnKeyValue: index of the first map whose key equals value."""
    want = _gokey(value)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _internal(f"value for key {i} is not a map.")
        if key in item and _gokey(item[key]) == want:
            return i
    return None


def _delete_matching(original: list[Any], key: str, value: Any) -> list[Any]:
    out = list(original)
    while (i := _find_map(out, key, value)) is not None:
        del out[i]
    return out


def _merge_without_special(
    original: list[Any], patch: list[Any], merge_key: str, path: tuple[str, ...], lookup: Lookup
) -> list[Any]:
    """mergeSliceWithoutSpecialElements: merge by key, append the rest (later items may merge
    into items appended earlier, as in Go)."""
    merged = list(original)
    for item in patch:
        if merge_key not in item:
            raise _err_no_merge_key(item, merge_key)
        i = _find_map(merged, merge_key, item[merge_key])
        if i is None:
            merged.append(_strip_unknown(item))
        else:
            merged[i] = _merge_map(merged[i], item, path, lookup)
    return merged


def _delete_from_slice(current: list[Any], to_delete: list[Any]) -> list[Any]:
    gone = {_gokey(v) for v in to_delete}
    return [v for v in current if _gokey(v) not in gone]


def _dedupe_scalars(items: list[Any]) -> list[Any]:
    seen: set[tuple[str, str]] = set()
    out = []
    for v in items:
        k = _gokey(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _partition_primitives(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    present = {_gokey(v) for v in by}
    ins = [v for v in items if _gokey(v) in present]
    outs = [v for v in items if _gokey(v) not in present]
    return ins, outs


def _partition_maps(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    ins: list[Any] = []
    outs: list[Any] = []
    for v in items:
        if not isinstance(v, dict):
            raise _err_bad_arg_type("map[string]interface {}", v)
        if merge_key not in v:
            raise _err_no_merge_key(v, merge_key)
        (ins if _find_map(by, merge_key, v[merge_key]) is not None else outs).append(v)
    return ins, outs


def _extract_to_delete(items: list[Any]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    delete: list[Any] = []
    for v in items:
        if not isinstance(v, dict):
            raise _err_bad_arg_type("map[string]interface {}", v)
        (delete if v.get(DIRECTIVE) == "delete" else keep).append(v)
    return keep, delete


def _index(items: list[Any], value: Any, merge_key: str, kind: str) -> int:
    """index(): position by merge-key value (maps) or by value (scalars), -1 when absent."""

    def val(item: Any) -> Any:
        if kind == "map":
            return item.get(merge_key) if isinstance(item, dict) else None
        return item

    want = _gokey(val(value))
    for i, item in enumerate(items):
        if _gokey(val(item)) == want:
            return i
    return -1


def _go_insertion_sort(items: list[Any], less: Callable[[Any, Any], bool]) -> list[Any]:
    """sort.SliceStable's insertion sort, kept literal because Go's comparator here is not a strict
    ordering when an item is missing from the order list."""
    out = list(items)
    for i in range(1, len(out)):
        j = i
        while j > 0 and less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out


def _normalize_slice_order(to_sort: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    to_delete: list[Any] = []
    if kind == "map":
        for lst in (to_sort, order):
            for item in lst:
                if not isinstance(item, dict):
                    raise _err_bad_arg_type("map[string]interface {}", item)
                if merge_key not in item:
                    raise _err_no_merge_key(item, merge_key)
        to_sort, to_delete = _extract_to_delete(to_sort)

    def less(a: Any, b: Any) -> bool:
        ia = _index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True

    return _go_insertion_sort(to_sort, less) + to_delete


def _normalize_element_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    """normalizeElementOrder: sort each side by its order, then interleave by the live order."""
    patch_items = _normalize_slice_order(patch_items, patch_order, merge_key, kind)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted_slice(server_only, patch_items, server_order, merge_key, kind)


def _merge_sorted_slice(
    left: list[Any], right: list[Any], server_order: list[Any], merge_key: str, kind: str
) -> list[Any]:
    """mergeSortedSlice: a server-only item goes first only if the live list put it before the
    patch item; patch items unknown to the live list win the tie (so new items lead)."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, kind)
            ri = _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


# --------------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386, evanphx/json-patch MergePatch)


def merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch the way the apiserver's json-patch library does."""
    if isinstance(patch, dict):
        doc = copy.deepcopy(original)
        _merge_docs(doc, copy.deepcopy(patch))
        return doc
    if isinstance(patch, list):  # the patch becomes the document, which is not an object
        raise _not_an_object(_prune_nulls(copy.deepcopy(patch)))
    raise _bad_request("Invalid JSON Patch")  # null, string, number: errBadJSONPatch


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            doc.pop(k, None)
        elif k not in doc or doc[k] is None:
            doc[k] = _prune_nulls(v)
        elif isinstance(doc[k], dict):
            if isinstance(v, dict):
                _merge_docs(doc[k], v)
            else:
                doc[k] = v  # an object replaced by a non-object: taken raw
        else:
            doc[k] = _prune_nulls(v)


def _prune_nulls(v: Any) -> Any:
    """pruneNulls: null members vanish from objects, recursively; null array items stay."""
    if isinstance(v, dict):
        return {k: _prune_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune_nulls(x) if x is not None else None for x in v]
    return v


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The RFC 7386 patch turning `original` into `modified` (jsonmergepatch.CreateMergePatch)."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return copy.deepcopy(modified)
    patch: dict[str, Any] = {}
    for k in original:
        if k not in modified:
            patch[k] = None
    for k, v in modified.items():
        if k not in original:
            patch[k] = copy.deepcopy(v)
        elif isinstance(original[k], dict) and isinstance(v, dict):
            sub = create_merge_patch(original[k], v)
            if sub:
                patch[k] = sub
        elif not _json_equal(original[k], v):
            patch[k] = copy.deepcopy(v)
    return patch


def _json_equal(a: Any, b: Any) -> bool:
    """reflect.DeepEqual on decoded JSON: same Go types and same content."""
    return _gokey(a) == _gokey(b)


# --------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)


def json_patch(original: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations; failures map to the apiserver's 400 / 413 / 422 answers."""
    if ops is None:  # JSON null decodes into an empty patch
        return copy.deepcopy(original)
    if not isinstance(ops, list):
        raise _bad_request(f"json: cannot unmarshal {_json_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise _bad_request(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
            413,
            "RequestEntityTooLarge",
        )
    if any(op is None for op in ops):  # a null op decodes to an empty map: "Unexpected kind"
        raise _unprocessable()
    try:
        result = jsonpatch.JsonPatch(copy.deepcopy(ops)).apply(copy.deepcopy(original))
    except (
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        raise _unprocessable() from exc
    if not isinstance(result, dict):
        raise _not_an_object(result)
    return result
