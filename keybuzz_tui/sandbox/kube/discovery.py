"""Discovery documents (/api, /apis, /api/v1, /apis/GROUP/VERSION) built from the registry.

Aggregated discovery (apidiscovery.k8s.io/v2) is declined the way a server without it declines it
(apimachinery's negotiation with DefaultEndpointRestrictions, which allow no conversion): a clause
asking for a conversion (`g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`) is skipped, the
next acceptable clause wins, and the plain document is returned as `application/json`. client-go
(kubectl 1.32 sends `<v2>,<v2beta1>,application/json`) then sees no aggregated content type and
falls back to the legacy per-group-version requests. A client that accepts nothing but the
aggregated types gets 406 NotAcceptable, as from such a server.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from .registry import GROUP_ORDER, GROUPS, ResourceType, types_in

# subresource -> (kind, verbs, group, version); None kind means the parent's kind
_SUBRESOURCES: dict[str, tuple[str | None, list[str], str | None, str | None]] = {
    "status": (None, ["get", "patch", "update"], None, None),
    "log": (None, ["get"], None, None),
    "binding": ("Binding", ["create"], None, None),
    "eviction": ("Eviction", ["create"], "policy", "v1"),
    "finalize": (None, ["update"], None, None),
    "scale": ("Scale", ["get", "patch", "update"], "autoscaling", "v1"),
}


# what the sandbox can write for a discovery document (a real server also offers protobuf)
_SERVED_MEDIA = (("application", "json"), ("application", "yaml"))


def accepts_plain(accept: str | None) -> bool:
    """Whether an Accept header admits the plain (non-aggregated) discovery document.

    Mirrors NegotiateMediaTypeOptions: an empty header takes the default; a clause matches a
    served type exactly, by `type/*` or by `*/*`; a clause with a conversion (`as`, `g`, `v`), a
    server version (`sv`) or a stream other than watch is not acceptable for this endpoint.
    """
    if accept is None or not accept.strip():
        return True
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        mtype, _, subtype = pieces[0].lower().partition("/")
        if not mtype:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, sep, value = piece.partition("=")
            if sep:
                params[key.strip()] = value.strip().strip('"')
        if any(k in params for k in ("as", "g", "v")) or params.get("sv"):
            continue
        if params.get("stream") not in (None, "", "watch"):
            continue
        subtype = subtype or "*"
        for served_type, served_sub in _SERVED_MEDIA:
            if (mtype == served_type and subtype in (served_sub, "*")) or (mtype == "*" and subtype == "*"):
                return True
    return False


def storage_version_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _resource_entry(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": sorted(rt.verbs),
        "storageVersionHash": storage_version_hash(rt),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _sub_entries(rt: ResourceType) -> list[dict[str, Any]]:
    out = []
    for sub in rt.subresources:
        kind, verbs, group, version = _SUBRESOURCES[sub]
        e: dict[str, Any] = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": kind or rt.kind,
            "verbs": verbs,
        }
        if group:
            e["group"], e["version"] = group, version
        out.append(e)
    return out


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    types = types_in(group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in sorted(types, key=lambda t: t.plural):
        resources.append(_resource_entry(rt))
        resources.extend(_sub_entries(rt))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g) for g in GROUP_ORDER if g],
    }


def group(name: str) -> dict[str, Any] | None:
    if not name or name not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}
