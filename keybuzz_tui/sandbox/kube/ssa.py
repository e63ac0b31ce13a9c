"""Server-side apply and `metadata.managedFields`, as structured-merge-diff + the apiserver do them.

A field set is a Python set of paths; a path is a tuple of path elements:

    ("f", "spec")                                   field          FieldsV1 `f:spec`
    ("k", (("name", '"api"'),))                     list-map item  FieldsV1 `k:{"name":"api"}`
    ("v", '"foregroundDeletion"')                   set item       FieldsV1 `v:"foregroundDeletion"`
    ("i", 0)                                        index          FieldsV1 `i:0`

Key and set values are kept as canonical JSON text so paths hash and compare exactly.

What is reproduced (sigs.k8s.io/structured-merge-diff merge/update.go, typed/{compare,merge,remove,
tofieldset}.go; apiserver pkg/util/managedfields/internal/*):

* Apply: merge the config into the live object (lists merged by key with SMD's ordering), the
  applier owns exactly its config's fields, fields it owned before and no longer applies are pruned
  unless another manager owns them (`prune` / `addBackOwnedItems` / `addBackDanglingItems` with
  `EnsureNamedFieldsAreMembers`), conflicts with other managers unless `force`, forced fields change
  hands, `before-first-apply` for objects that had no managedFields, the kubectl client-side-apply
  upgrade path (`lastAppliedManager` / `lastAppliedUpdater`).
* Update: the manager takes every field it changed (everything on create, compared against the Go
  zero value of the kind, which is why `f:spec` has no `.` but `f:labels` does), other managers lose
  changed and removed fields, no tracking on updates of objects that have no managedFields.
* Exact FieldsV1 JSON, entry order, conflict messages and the `stripMeta` / reset-fields rules.

Not reproduced: the 10-Update-manager cap ("ancient-changes"), conversion between API versions,
unions, and fields that are `null` in an apply configuration (they are ignored).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import registry
from .errors import ApiError
from .schema import KEY_DEFAULTS, POD_SPEC_AT, ListMeta, list_meta

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "ApplyConflict",
    "ApplyError",
    "ConflictOwner",
    "apply",
    "decode_fields_v1",
    "encode_fields_v1",
    "field_set",
    "format_path",
    "manager_from_user_agent",
    "record_update",
]

PE = tuple[str, Any]
Path = tuple[PE, ...]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
FIELD_MANAGER_MAX_LENGTH = 128
_MISSING: Any = object()

# stripMetaManager: never owned by anyone.
_STRIP: frozenset[Path] = frozenset(
    {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)}
    | {
        (("f", "metadata"), ("f", n))
        for n in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    }
)


# --------------------------------------------------------------------------------------------
# Errors


class ApplyError(ApiError):
    """An apply request the apiserver refuses before any merging: 400 for a wrong object type,
    managedFields in the config, a name/namespace mismatch; 500 (reason "") for configs that do not
    fit the schema (`failed to create typed patch object ...`)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(code, "BadRequest" if code == 400 else "", message)


@dataclass(frozen=True)
class ConflictOwner:
    """Who owns a conflicting field, as the apiserver prints it (printManager)."""

    manager: str
    operation: str = "Update"
    api_version: str = ""
    subresource: str = ""

    def describe(self) -> str:
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def identifier(self) -> str:
        """BuildManagerIdentifier's JSON, which is what the apiserver sorts managers by."""
        ident: dict[str, str] = {"manager": self.manager, "operation": self.operation}
        if self.operation == "Update" and self.api_version:
            ident["apiVersion"] = self.api_version
        if self.subresource:
            ident["subresource"] = self.subresource
        return json.dumps(ident, separators=(",", ":"))


class ApplyConflict(ApiError):
    """409 Conflict with the apiserver's text (managedfields/internal/conflict.go).

    `conflicts` holds (manager, apiVersion, field path) tuples; `owners` (same order) says whether
    each owner applied or updated, which changes how it is printed. Without owners every tuple is
    treated as an Update manager (`"m" using v`).
    """

    def __init__(
        self, conflicts: list[tuple[str, str, str]], owners: list[ConflictOwner] | None = None
    ) -> None:
        self.conflicts = list(conflicts)
        self.owners = owners or [ConflictOwner(m, "Update", av) for m, av, _ in conflicts]
        causes = [
            {"reason": "FieldManagerConflict", "message": f"conflict with {o.describe()}", "field": c[2]}
            for o, c in zip(self.owners, self.conflicts, strict=True)
        ]
        super().__init__(409, "Conflict", self._message(), {"causes": causes})

    def _message(self) -> str:
        if len(self.conflicts) == 1:
            return f"Apply failed with 1 conflict: conflict with {self.owners[0].describe()}: {self.conflicts[0][2]}"
        grouped: dict[str, tuple[ConflictOwner, list[str]]] = {}
        for owner, (_, _, path) in zip(self.owners, self.conflicts, strict=True):
            grouped.setdefault(owner.identifier(), (owner, []))[1].append(path)
        lines: list[str] = []
        for ident in sorted(grouped):
            owner, paths = grouped[ident]
            lines.append(f"conflicts with {owner.describe()}:")
            lines.extend(f"- {p}" for p in paths)
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)


class _TypedError(Exception):
    """A config that does not fit the schema (SMD ValidationError)."""


# --------------------------------------------------------------------------------------------
# Values and path elements


def _canon(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eq(a: Any, b: Any) -> bool:
    """value.Equals: ints and floats compare numerically, everything else by type and content."""
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _value_sort_key(text: str) -> tuple[int, Any]:
    """value.Compare: numbers < strings < bools < other < null."""
    v = json.loads(text)
    if _is_number(v):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, bool):
        return (2, v)
    if v is None:
        return (4, 0)
    return (3, text)


def _pe_sort_key(pe: PE) -> tuple[Any, ...]:
    """PathElement.Compare: fields < keys < values < indices."""
    t, v = pe
    if t == "f":
        return (0, v)
    if t == "k":
        return (1, tuple((name, _value_sort_key(val)) for name, val in v))
    if t == "v":
        return (2, _value_sort_key(v))
    return (3, v)


def _to_string(text: str) -> str:
    """value.ToString: strings %q, numbers and bools %v."""
    v = json.loads(text)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v)


def _pe_string(pe: PE) -> str:
    t, v = pe
    if t == "f":
        return "." + v
    if t == "k":
        return "[" + ",".join(f"{name}={_to_string(val)}" for name, val in v) + "]"
    if t == "v":
        return f"[={_to_string(v)}]"
    return f"[{v}]"


def format_path(path: Path) -> str:
    """fieldpath.Path.String(): `.spec.template.spec.containers[name="api"].image`."""
    return "".join(_pe_string(pe) for pe in path)


def _pe_fields_v1(pe: PE) -> str:
    t, v = pe
    if t == "f":
        return "f:" + v
    if t == "k":
        return "k:{" + ",".join(f"{json.dumps(name, ensure_ascii=False)}:{val}" for name, val in v) + "}"
    if t == "v":
        return "v:" + v
    return f"i:{v}"


def _parse_pe(text: str) -> PE:
    prefix, _, rest = text.partition(":")
    if prefix == "f":
        return ("f", rest)
    if prefix == "k":
        fields = json.loads(rest)
        if not isinstance(fields, dict):
            raise ValueError(text)
        return ("k", tuple(sorted((k, _canon(v)) for k, v in fields.items())))
    if prefix == "v":
        return ("v", _canon(json.loads(rest)))
    if prefix == "i":
        return ("i", int(rest))
    raise ValueError(text)


# --------------------------------------------------------------------------------------------
# Field sets: tries, FieldsV1, iteration order


def _trie(paths: set[Path] | frozenset[Path]) -> dict[PE, list[Any]]:
    """{pe: [is_member, children]} so walks can ask "remove this?" / "anything below?"."""
    root: dict[PE, list[Any]] = {}
    for path in paths:
        node = root
        for pe in path[:-1]:
            node = node.setdefault(pe, [False, {}])[1]
        if path:
            node.setdefault(path[-1], [False, {}])[0] = True
    return root


def encode_fields_v1(paths: set[Path] | frozenset[Path]) -> dict[str, Any]:
    """The FieldsV1 object, keys in the order the apiserver writes them."""
    return _emit(_trie(paths), include_self=False)


def _emit(node: dict[PE, list[Any]], include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self and node:
        out["."] = {}
    for pe in sorted(node, key=_pe_sort_key):
        member, children = node[pe]
        out[_pe_fields_v1(pe)] = _emit(children, include_self=member) if children else {}
    return out


def decode_fields_v1(fields: dict[str, Any]) -> set[Path]:
    """FieldsV1 JSON back to a set of paths (ValueError when malformed)."""
    out: set[Path] = set()

    def walk(prefix: Path, node: dict[str, Any]) -> None:
        for key, value in node.items():
            if key == ".":
                if prefix:
                    out.add(prefix)
                continue
            path = prefix + (_parse_pe(key),)
            if isinstance(value, dict) and value:
                walk(path, value)
            else:
                out.add(path)

    if not isinstance(fields, dict):
        raise TypeError("fieldsV1 must be an object")
    walk((), fields)
    return out


def _iterate(paths: set[Path]) -> list[Path]:
    """Set.Iterate order: at each level the members, then the children, each sorted."""
    out: list[Path] = []

    def walk(prefix: Path, node: dict[PE, list[Any]]) -> None:
        keys = sorted(node, key=_pe_sort_key)
        out.extend(prefix + (pe,) for pe in keys if node[pe][0])
        for pe in keys:
            if node[pe][1]:
                walk(prefix + (pe,), node[pe][1])

    walk((), _trie(paths))
    return out


def _ensure_named(paths: set[Path]) -> set[Path]:
    """EnsureNamedFieldsAreMembers: struct fields above an owned path count as owned too."""
    out = set(paths)
    for path in paths:
        for i in range(1, len(path)):
            if path[i - 1][0] == "f":
                out.add(path[:i])
    return out


def _under(path: Path, roots: frozenset[str]) -> bool:
    return bool(path) and path[0][0] == "f" and path[0][1] in roots


def _owned(paths: set[Path], ignored: frozenset[str]) -> set[Path]:
    """Drop what nobody may own: stripMeta paths and the reset (ignored) top-level fields."""
    return {p for p in paths if p not in _STRIP and not _under(p, ignored)}


# --------------------------------------------------------------------------------------------
# Schema facts beyond list types


_WORKLOADS = ("DaemonSet", "Deployment", "ReplicaSet", "StatefulSet")
_ATOMIC_MAP_NAMES = frozenset(
    {
        "labelSelector",
        "namespaceSelector",
        "nodeSelector",
        "involvedObject",
        "related",
        "regarding",
        "targetRef",
        "configMapKeyRef",
        "secretKeyRef",
        "fieldRef",
        "resourceFieldRef",
        "configMapRef",
        "secretRef",
        "ownerReferences",  # OwnerReference is an atomic struct: items are leaves
        "imagePullSecrets",  # LocalObjectReference, likewise
    }
)


def _atomic_map(kind: str, spath: tuple[str, ...]) -> bool:
    """`x-kubernetes-map-type: atomic` maps (LabelSelector, ObjectReference, ...)."""
    if not spath:
        return False
    if spath == ("spec", "selector") and (kind in _WORKLOADS or kind == "Service"):
        return True
    if spath[-2:] == ("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
        return True
    return spath[-1] in _ATOMIC_MAP_NAMES


def _zero_fields(kind: str, spath: tuple[str, ...]) -> dict[str, Any]:
    """Fields the Go zero value of the struct at `spath` always serializes (non-pointer structs,
    non-omitempty lists). Present on both sides of a comparison, they never show up as added,
    which is what keeps `.` off `f:spec` / `f:template` / `f:containers` in real managedFields."""
    if spath == ():
        zero: dict[str, Any] = {"metadata": {}}
        if kind in _WORKLOADS or kind in (
            "Pod",
            "Service",
            "Namespace",
            "Node",
            "Ingress",
            "IngressClass",
            "Lease",
        ):
            zero["spec"] = {}
        if registry_has_status(kind):
            zero["status"] = {}
        if kind == "Event":
            zero.update({"involvedObject": {}, "source": {}})
        if kind == "EndpointSlice":
            zero["endpoints"] = None
        return zero
    pod_spec = POD_SPEC_AT.get(kind)
    if kind in _WORKLOADS and spath == ("spec",):
        zero = {"selector": None, "template": {}}
        if kind in ("DaemonSet", "StatefulSet"):
            zero["updateStrategy"] = {}
        if kind == "Deployment":
            zero["strategy"] = {}
        return zero
    if pod_spec and len(pod_spec) > 1 and spath == pod_spec[:-1]:
        return {"metadata": {}, "spec": {}}
    if pod_spec and spath == pod_spec:
        return {"containers": None}
    if pod_spec and spath in (pod_spec + ("containers",), pod_spec + ("initContainers",)):
        return {"resources": {}}
    if kind in ("Service", "Ingress") and spath == ("status",):
        return {"loadBalancer": {}}
    return {}


def registry_has_status(kind: str, api_version: str | None = None) -> bool:
    """Whether the kind has a status subresource (registry.ResourceType.has_status)."""
    for rt in registry.all_types():
        if rt.kind == kind and (api_version is None or rt.api_version == api_version):
            return rt.has_status
    return False


def _item_pe(kind: str, spath: tuple[str, ...], meta: ListMeta, item: Any, index: int, strict: bool) -> PE:
    """listItemToPathElement: key fields (defaults filled) for maps, the value for sets."""
    if meta.ssa_type == "set":
        return ("v", _canon(item))
    if not isinstance(item, dict):
        if strict:
            raise _TypedError(f"element {index}: associative list with keys may not have non-map elements")
        return ("i", index)
    fields = []
    for key in meta.keys:
        if key in item and item[key] is not None:
            fields.append((key, _canon(item[key])))
        elif key in KEY_DEFAULTS:
            fields.append((key, _canon(KEY_DEFAULTS[key])))
        elif strict:
            raise _TypedError(
                f"element {index}: associative list with keys has an element that omits key field "
                f'"{key}" (and doesn\'t have default value)'
            )
    return ("k", tuple(sorted(fields)))


def _list_items(
    kind: str, spath: tuple[str, ...], meta: ListMeta, items: list[Any]
) -> tuple[list[PE], dict[PE, list[Any]]]:
    """Items by path element, first-seen order; duplicates kept together (AllowDuplicates)."""
    order: list[PE] = []
    by_pe: dict[PE, list[Any]] = {}
    for i, item in enumerate(items):
        pe = _item_pe(kind, spath, meta, item, i, strict=False)
        if pe not in by_pe:
            order.append(pe)
            by_pe[pe] = []
        by_pe[pe].append(item)
    return order, by_pe


# --------------------------------------------------------------------------------------------
# ToFieldSet


def field_set(kind: str, obj: dict[str, Any]) -> set[Path]:
    """Every leaf and list item of `obj` (typed.ToFieldSet), lenient about bad list items."""
    out: set[Path] = set()
    _collect(kind, (), (), obj, out, [], strict=False)
    return out


def _strict_field_set(kind: str, obj: dict[str, Any]) -> set[Path]:
    out: set[Path] = set()
    errors: list[str] = []
    _collect(kind, (), (), obj, out, errors, strict=True)
    if errors:
        raise _TypedError(
            errors[0] if len(errors) == 1 else "\n".join(["errors:"] + [f"  {e}" for e in errors])
        )
    return out


def _collect(
    kind: str,
    fpath: Path,
    spath: tuple[str, ...],
    value: Any,
    out: set[Path],
    errors: list[str],
    strict: bool,
) -> None:
    if isinstance(value, dict):
        if fpath and _atomic_map(kind, spath):
            out.add(fpath)
            return
        for k, v in value.items():
            if v is None and strict:
                continue
            _collect(kind, fpath + (("f", k),), spath + (k,), v, out, errors, strict)
        return
    if isinstance(value, list):
        meta = list_meta(kind, spath)
        if meta.ssa_type == "atomic":
            out.add(fpath)
            return
        seen: set[PE] = set()
        for i, item in enumerate(value):
            try:
                pe = _item_pe(kind, spath, meta, item, i, strict)
            except _TypedError as exc:
                errors.append(f"{format_path(fpath)}: {exc}" if fpath else str(exc))
                continue
            if pe in seen and strict:
                errors.append(f"{format_path(fpath)}: duplicate entries for key {_pe_string(pe)}")
                continue
            seen.add(pe)
            _collect(kind, fpath + (pe,), spath, item, out, errors, strict)
            out.add(fpath + (pe,))
        return
    if fpath:
        out.add(fpath)


# --------------------------------------------------------------------------------------------
# Compare (typed.Compare)


@dataclass
class _Comparison:
    added: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)


def _compare(kind: str, old: Any, new: Any) -> _Comparison:
    c = _Comparison()
    _cmp(c, kind, (), (), old, new)
    return c


def _shape(old: Any, new: Any) -> str:
    sides = [v for v in (old, new) if v is not _MISSING and v is not None]
    if sides and all(isinstance(v, dict) for v in sides):
        return "map"
    if sides and all(isinstance(v, list) for v in sides):
        return "list"
    return "leaf"


def _leaf(c: _Comparison, fpath: Path, old: Any, new: Any) -> None:
    if not fpath:
        return
    if old is _MISSING:
        c.added.add(fpath)
    elif new is _MISSING:
        c.removed.add(fpath)
    elif not _eq(old, new):
        c.modified.add(fpath)


def _cmp(c: _Comparison, kind: str, fpath: Path, spath: tuple[str, ...], old: Any, new: Any) -> None:
    shape = _shape(old, new)
    if shape == "map":
        _cmp_map(c, kind, fpath, spath, old, new)
    elif shape == "list":
        _cmp_list(c, kind, fpath, spath, old, new)
    else:
        _leaf(c, fpath, old, new)


def _side_map(kind: str, spath: tuple[str, ...], v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        return {}
    zero = _zero_fields(kind, spath)
    return {**zero, **v} if zero else v


def _cmp_map(c: _Comparison, kind: str, fpath: Path, spath: tuple[str, ...], old: Any, new: Any) -> None:
    empty = all(v is _MISSING or v is None or not v for v in (old, new))
    if (fpath and _atomic_map(kind, spath)) or empty:
        _leaf(c, fpath, old, new)
        return
    o, n = _side_map(kind, spath, old), _side_map(kind, spath, new)
    for k in list(o) + [k for k in n if k not in o]:
        _cmp(c, kind, fpath + (("f", k),), spath + (k,), o.get(k, _MISSING), n.get(k, _MISSING))
    _post(c, fpath, old, new)


def _cmp_list(c: _Comparison, kind: str, fpath: Path, spath: tuple[str, ...], old: Any, new: Any) -> None:
    meta = list_meta(kind, spath)
    empty = all(v is _MISSING or v is None or not v for v in (old, new))
    if meta.ssa_type == "atomic" or empty:
        _leaf(c, fpath, old, new)
        return
    o_order, o_items = _list_items(kind, spath, meta, old if isinstance(old, list) else [])
    n_order, n_items = _list_items(kind, spath, meta, new if isinstance(new, list) else [])
    for pe in o_order + [pe for pe in n_order if pe not in o_items]:
        ov = o_items[pe][0] if pe in o_items else _MISSING
        nv = n_items[pe][0] if pe in n_items else _MISSING
        _cmp(c, kind, fpath + (pe,), spath, ov, nv)
    _post(c, fpath, old, new)


def _post(c: _Comparison, fpath: Path, old: Any, new: Any) -> None:
    """postItemHook: a map or list node that appears/disappears is itself added/removed."""
    if not fpath:
        return
    if old is _MISSING:
        c.added.add(fpath)
    elif new is _MISSING:
        c.removed.add(fpath)


# --------------------------------------------------------------------------------------------
# Merge (typed.Merge, config wins) and RemoveItems


def _merge(kind: str, spath: tuple[str, ...], live: Any, cfg: Any) -> Any:
    if isinstance(live, dict) and isinstance(cfg, dict) and not (spath and _atomic_map(kind, spath)):
        out = dict(live)
        for k, v in cfg.items():
            out[k] = _merge(kind, spath + (k,), live[k], v) if k in live else copy.deepcopy(v)
        return out
    if isinstance(live, list) and isinstance(cfg, list):
        meta = list_meta(kind, spath)
        if meta.ssa_type != "atomic":
            return _merge_list(kind, spath, meta, live, cfg)
    return copy.deepcopy(cfg)


def _merge_list(
    kind: str, spath: tuple[str, ...], meta: ListMeta, live: list[Any], cfg: list[Any]
) -> list[Any]:
    """mergingWalker.visitListItems: shared items keep the config's relative order, live-only
    items stay where they were, new items are placed where the config puts them."""
    l_order, l_items = _list_items(kind, spath, meta, live)
    r_order, r_items = _list_items(kind, spath, meta, cfg)
    shared = [pe for pe in r_order if pe in l_items]
    out: list[Any] = []
    si = 0
    next_shared = shared[0] if shared else None

    def advance() -> None:
        nonlocal si, next_shared
        si += 1
        next_shared = shared[si] if si < len(shared) else None

    def merged(pe: PE) -> Any:
        if pe not in l_items:
            return copy.deepcopy(r_items[pe][0])
        return _merge(kind, spath, l_items[pe][0], r_items[pe][0])

    li = ri = 0
    while li < len(l_order) or ri < len(r_order):
        if li < len(l_order) and ri < len(r_order):
            pe = l_order[li]
            if pe == r_order[ri]:
                out.append(merged(pe))
                li, ri = li + 1, ri + 1
                advance()
                continue
            if pe in r_items and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(l_order) and l_order[li] not in r_items:
            out.extend(l_items[l_order[li]])
            li += 1
            continue
        if ri < len(r_order):
            pe = r_order[ri]
            out.append(merged(pe))
            ri += 1
            if next_shared is not None and next_shared == pe:
                advance()
            continue
        li += 1  # a live item the config already placed: nothing left to emit for it
    return out


def _remove(kind: str, value: Any, paths: set[Path]) -> Any:
    """RemoveItems: drop every member path (with its subtree); containers emptied this way go."""
    return _remove_walk(kind, (), value, _trie(paths))


def _remove_walk(kind: str, spath: tuple[str, ...], value: Any, node: dict[PE, list[Any]]) -> Any:
    if isinstance(value, dict):
        if spath and _atomic_map(kind, spath):
            return value
        out = {}
        for k, v in value.items():
            entry = node.get(("f", k))
            if entry is None:
                out[k] = v
            elif not entry[0]:
                nv = _remove_walk(kind, spath + (k,), v, entry[1]) if entry[1] else v
                if not (entry[1] and isinstance(nv, (dict, list)) and not nv):
                    out[k] = nv
        return out
    if isinstance(value, list):
        meta = list_meta(kind, spath)
        if meta.ssa_type == "atomic":
            return value
        items = []
        for i, item in enumerate(value):
            entry = node.get(_item_pe(kind, spath, meta, item, i, strict=False))
            if entry is None:
                items.append(item)
            elif not entry[0]:
                items.append(_remove_walk(kind, spath, item, entry[1]) if entry[1] else item)
        return items
    return value


def _prune(kind: str, merged: dict[str, Any], last: set[Path], managed: set[Path]) -> dict[str, Any]:
    """Updater.prune: remove what the applier owned last time and nobody (including its new
    config) owns now; the three-step dance keeps unowned siblings and other owners' items."""
    last_e = _ensure_named(last)
    pruned = _remove(kind, merged, last_e)
    merged_set = _ensure_named(field_set(kind, merged))
    pruned_set = _ensure_named(field_set(kind, pruned))
    owned = _ensure_named(managed)
    pruned = _remove(kind, merged, merged_set - (pruned_set | owned))
    pruned_set = _ensure_named(field_set(kind, pruned))
    return _remove(kind, merged, (merged_set - pruned_set) & last_e)


# --------------------------------------------------------------------------------------------
# managedFields entries


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: set[Path]

    @property
    def ident(self) -> tuple[str, str, str, str]:
        """BuildManagerIdentifier: appliers are one entry whatever their apiVersion."""
        return (
            self.manager,
            self.operation,
            "" if self.operation == "Apply" else self.api_version,
            self.subresource,
        )

    def owner(self) -> ConflictOwner:
        return ConflictOwner(self.manager, self.operation, self.api_version, self.subresource)

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _decode_entries(raw: Any) -> list[_Entry] | None:
    """DecodeManagedFields; None when the list is unusable (the apiserver then falls back)."""
    if not isinstance(raw, list):
        return None
    entries: dict[tuple[str, str, str, str], _Entry] = {}
    try:
        for item in raw:
            if item.get("operation") not in ("Apply", "Update") or not item.get("apiVersion"):
                return None
            if item.get("fieldsType") != "FieldsV1":
                return None
            e = _Entry(
                manager=item.get("manager", ""),
                operation=item["operation"],
                api_version=item["apiVersion"],
                subresource=item.get("subresource", "") or "",
                time=item.get("time"),
                fields=decode_fields_v1(item.get("fieldsV1") or {}),
            )
            entries[e.ident] = e
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return list(entries.values())


def _epoch(t: str | None) -> float:
    if not t:
        return 0.0
    try:
        return datetime.fromisoformat(t).timestamp()
    except ValueError:
        return 0.0


def _encode_entries(entries: list[_Entry]) -> list[dict[str, Any]]:
    """sortEncodedManagedFields: operation, then time (seconds), manager, apiVersion, subresource."""
    ordered = sorted(
        entries,
        key=lambda e: (e.operation, int(_epoch(e.time)), e.manager, e.api_version, e.subresource),
    )
    return [e.encode() for e in ordered]


def _with_entries(obj: dict[str, Any], entries: list[_Entry]) -> dict[str, Any]:
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = _encode_entries(entries)
    else:
        meta.pop("managedFields", None)
    return obj


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy without metadata.managedFields.

    Deep copies here dominated the sandbox's write path (every controller write goes through
    record_update); nothing below mutates nested values, only the fresh top-level and metadata dicts.
    """
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _ignored(has_status: bool, subresource: str | None) -> frozenset[str]:
    """Reset fields: the main resource does not own status, the status subresource not spec."""
    if subresource == "status":
        return frozenset({"spec"})
    if subresource is None and has_status:
        return frozenset({"status"})
    return frozenset()


def _changes(
    kind: str, old: dict[str, Any], new: dict[str, Any], ignored: frozenset[str]
) -> tuple[set[Path], set[Path]]:
    """(modified ∪ added, removed) between two objects, minus what nobody may own."""
    c = _compare(kind, old, new)
    return _owned(c.modified | c.added, ignored), _owned(c.removed, ignored)


def _resolve_has_status(kind: str, api_version: str, has_status: bool | None) -> bool:
    return registry_has_status(kind, api_version) if has_status is None else has_status


# --------------------------------------------------------------------------------------------
# Update


def record_update(
    kind: str,
    api_version: str,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: str,
    subresource: str | None = None,
    *,
    has_status: bool | None = None,
) -> dict[str, Any]:
    """managedFields after a create (old=None), update or non-apply patch by `manager`.

    `new` is the object about to be stored (defaults applied); its managedFields, if the request
    set any, win over the live ones, except on subresources. Returns a copy of `new`.
    """
    ignored = _ignored(_resolve_has_status(kind, api_version, has_status), subresource)
    entries = _entries_for_update(old, new, subresource)
    result = _without_managed_fields(new)
    if old is not None and not entries:  # skipNonAppliedManager: untracked objects stay untracked
        return result
    base = _without_managed_fields(old) if old is not None else {}
    changed, removed = _changes(kind, base, result, ignored)
    entries = _take_from_others(entries, changed, removed)
    if changed:
        _upsert(entries, _Entry(manager, "Update", api_version, subresource or "", now, changed))
    return _with_entries(result, entries)


def _entries_for_update(
    old: dict[str, Any] | None, new: dict[str, Any], subresource: str | None
) -> list[_Entry]:
    """decodeLiveOrNew: the request's managedFields unless empty, unusable or a subresource."""
    live = _decode_entries(((old or {}).get("metadata") or {}).get("managedFields")) or []
    if subresource:
        return live
    requested = (new.get("metadata") or {}).get("managedFields")
    if requested == [{}]:  # isResetManagedFields
        return []
    decoded = _decode_entries(requested) if requested else None
    return decoded if decoded else live


def _take_from_others(entries: list[_Entry], changed: set[Path], removed: set[Path]) -> list[_Entry]:
    for e in entries:
        e.fields = e.fields - changed - removed
    return [e for e in entries if e.fields]


def _upsert(entries: list[_Entry], entry: _Entry) -> None:
    """managedFieldsUpdater: merge into the manager's previous entry, with a fresh time."""
    for e in entries:
        if e.ident == entry.ident:
            e.fields |= entry.fields
            e.time = entry.time
            e.api_version = entry.api_version
            return
    entries.append(entry)


# --------------------------------------------------------------------------------------------
# Apply


def apply(
    kind: str,
    api_version: str,
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    now: str,
    *,
    name: str | None = None,
    namespace: str | None = None,
    has_status: bool | None = None,
    subresource: str | None = None,
) -> dict[str, Any]:
    """Server-side apply of `applied` by `manager` onto `live` (None: create).

    `name` / `namespace` are the URL's (default: the live object's); they are checked like the
    apiserver does after the merge. Raises ApplyError or ApplyConflict. The returned object carries
    the new managedFields; on a no-op apply it equals `live` except for managedFields.
    """
    _check_config(kind, api_version, applied)
    ignored = _ignored(_resolve_has_status(kind, api_version, has_status), subresource)
    cfg = {k: v for k, v in _drop_nulls(applied).items() if k not in ignored}
    try:
        cfg_set = _strict_field_set(kind, cfg)
    except _TypedError as exc:
        raise ApplyError(
            f"failed to create typed patch object ({_gvknn(applied, api_version, kind)}): {exc}", 500
        ) from exc

    base = _without_managed_fields(live) if live is not None else {}
    entries = (
        (_decode_entries(((live or {}).get("metadata") or {}).get("managedFields")) or []) if live else []
    )
    if live is not None and not entries:
        entries = _before_first_apply(kind, api_version, base, now, ignored)

    # unstripped while pruning (metadata.name keeps `metadata` owned), stripped when stored
    me = _Entry(manager, "Apply", api_version, subresource or "", None, set(cfg_set))
    last = next((e for e in entries if e.ident == me.ident), None)
    others = [e for e in entries if e.ident != me.ident]

    merged = _merge(kind, (), base, cfg)
    if last is not None and last.fields:
        managed = set(me.fields).union(*(e.fields for e in others))
        merged = _prune(kind, merged, last.fields, managed)

    changed, removed = _changes(kind, base, merged, ignored)
    conflicts = [(e, p) for e in others for p in _iterate(e.fields & changed)]
    if conflicts and not force:
        conflicts = _conflict_order(_unforgiven(kind, manager, live, conflicts))
        if conflicts:
            raise ApplyConflict(
                [(e.manager, e.api_version, format_path(p)) for e, p in conflicts],
                [e.owner() for e, _ in conflicts],
            )
    others = _take_from_others(others, changed, removed)

    me.fields = _owned(me.fields, ignored)
    me.time = now if (live is None or not _eq(base, merged)) else (last.time if last else None)
    result = _check_identity(merged, live, name, namespace)
    result = _sync_last_applied(result, manager, applied)
    return _with_entries(result, others + ([me] if cfg_set else []))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _gvk_string(api_version: str, kind: str) -> str:
    """schema.GroupVersionKind.String(): `apps/v1, Kind=DaemonSet`, `/v1, Kind=Pod`."""
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _gvknn(obj: dict[str, Any], api_version: str, kind: str) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}; {_gvk_string(api_version, kind)}"


def _check_config(kind: str, api_version: str, applied: Any) -> None:
    """versionCheckManager then structuredMergeManager's checks on the config itself."""
    if not isinstance(applied, dict):
        raise ApplyError("invalid object type: /, Kind=")
    cfg_av, cfg_kind = applied.get("apiVersion"), applied.get("kind")
    av_text = cfg_av if isinstance(cfg_av, str) and cfg_av.count("/") <= 1 else ""
    kind_text = cfg_kind if isinstance(cfg_kind, str) else ""
    if av_text != api_version or kind_text != kind:
        raise ApplyError(f"invalid object type: {_gvk_string(av_text, kind_text)}")
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise ApplyError("metadata.managedFields must be nil")


def _before_first_apply(
    kind: str, api_version: str, live: dict[str, Any], now: str, ignored: frozenset[str]
) -> list[_Entry]:
    """skipNonAppliedManager.Apply: an untracked object's fields go to `before-first-apply`."""
    changed, _ = _changes(kind, {}, live, ignored)
    return [_Entry(BEFORE_FIRST_APPLY, "Update", api_version, "", now, changed)] if changed else []


def _conflict_order(conflicts: list[tuple[_Entry, Path]]) -> list[tuple[_Entry, Path]]:
    """Managers by identifier, paths in Set.Iterate order (stable: already iterated per entry)."""
    return sorted(conflicts, key=lambda c: c[0].owner().identifier())


def _unforgiven(
    kind: str, manager: str, live: dict[str, Any] | None, conflicts: list[tuple[_Entry, Path]]
) -> list[tuple[_Entry, Path]]:
    """lastAppliedManager: `kubectl` moving from client-side to server-side apply is not blocked
    by conflicts on fields whose live value still equals the last-applied annotation."""
    if manager != "kubectl" or live is None:
        return conflicts
    allowed = _allowed_from_last_applied(kind, live)
    if allowed is None:
        return conflicts
    return [(e, p) for e, p in conflicts if p not in allowed]


def _allowed_from_last_applied(kind: str, live: dict[str, Any]) -> set[Path] | None:
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict):
        return None
    return field_set(kind, last) - _compare(kind, last, _without_managed_fields(live)).modified


def _sync_last_applied(obj: dict[str, Any], manager: str, applied: dict[str, Any]) -> dict[str, Any]:
    """lastAppliedUpdater: `kubectl` applies keep an existing last-applied annotation current."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if (
        manager != "kubectl"
        or not isinstance(annotations, dict)
        or LAST_APPLIED_ANNOTATION not in annotations
    ):
        return obj
    source = copy.deepcopy(applied)
    src_meta = source.get("metadata")
    if isinstance(src_meta, dict) and isinstance(src_meta.get("annotations"), dict):
        src_meta["annotations"].pop(LAST_APPLIED_ANNOTATION, None)
    annotations[LAST_APPLIED_ANNOTATION] = _go_json_sorted(source) + "\n"
    return obj


def _go_json_sorted(v: Any) -> str:
    """encoding/json of a map[string]interface{}: sorted keys, compact, HTML-escaped."""
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _check_identity(
    obj: dict[str, Any], live: dict[str, Any] | None, name: str | None, namespace: str | None
) -> dict[str, Any]:
    """patcher.applyPatch: namespace defaulted/checked, then checkName against the URL."""
    meta = obj.setdefault("metadata", {})
    if namespace is not None:
        obj_ns = meta.get("namespace") or ""
        if obj_ns == "":
            if namespace:
                meta["namespace"] = namespace
        elif namespace == "":
            meta.pop("namespace", None)
        elif obj_ns != namespace:
            raise ApplyError(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
    url_name = name if name is not None else ((live or {}).get("metadata") or {}).get("name")
    obj_name = meta.get("name") or ""
    if not obj_name:
        raise ApplyError(
            f"the name of the object ({url_name or ''} based on URL) was undeterminable: name must be provided"
        )
    if url_name is not None and obj_name != url_name:
        raise ApplyError(
            f"the name of the object ({obj_name}) does not match the name on the URL ({url_name})"
        )
    return obj


def manager_from_user_agent(user_agent: str) -> str:
    """prefixFromUserAgent: what the apiserver records when a request names no fieldManager."""
    out = ""
    for ch in user_agent.split("/")[0]:
        if not ch.isprintable():
            continue
        if len((out + ch).encode()) > FIELD_MANAGER_MAX_LENGTH:
            break
        out += ch
    return out
