"""The documented overlay applied to the official cloud.spec.json before contract checks.

The spec is a May-2026 snapshot that predates hcloud-python 2.27.0; the sandbox follows the
library where they differ (reference/hetzner.md, section 2.7). Each entry below cites the item it
implements. Two kinds:

- REPLACE: operations whose reply the spec describes wrongly for 2.27 (the schema is replaced);
- TIGHTEN: keys hcloud indexes directly, which the spec leaves optional; the contract test makes
  them required so a sandbox reply that would crash the library fails the test. Objects are
  recognised by their property names, wherever they appear in a response schema.

ERROR_DETAILS is not a deviation: the spec's error catalogue (info.description, "Error Codes")
documents the `details` of some codes only as examples, which its generic 4xx schema does not
check (`details: object, nullable`); these schemas state those examples so the contract test
holds error replies to them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]


def _action_schema(spec: Schema) -> Schema:
    return copy.deepcopy(
        spec["paths"]["/actions/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
            "properties"
        ]["action"]
    )


# (method, spec path, status) -> builder(spec) -> response schema
REPLACE: dict[tuple[str, str, str], Callable[[Schema], Schema]] = {
    # 2.7 item 1: DELETE /load_balancers/{id} returns an action since 2026-10-05 (hcloud 2.27 reads
    # response["action"]); the spec still says 204 without a body. The sandbox answers 201.
    ("delete", "/load_balancers/{id}", "201"): lambda spec: {
        "type": "object",
        "required": ["action"],
        "properties": {"action": _action_schema(spec)},
    },
}


def _named_list(key: str, *, messages: bool = False) -> Schema:
    item: Schema = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}}
    if messages:
        item["required"] = ["name", "messages"]
        item["properties"]["messages"] = {"type": "array", "minItems": 1, "items": {"type": "string"}}
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "minItems": 1, "items": item}},
    }


# code -> schema of error.details, from the catalogue's examples:
#   invalid_input  {"fields": [{"name": "broken_field", "messages": ["is too long"]}]}
#   uniqueness_error  {"fields": [{"name": "public_key"}]}
#   resource_limit_exceeded  {"limits": [{"name": "project_limit"}]}
ERROR_DETAILS: dict[str, Schema] = {
    "invalid_input": _named_list("fields", messages=True),
    "uniqueness_error": _named_list("fields"),
    "resource_limit_exceeded": _named_list("limits"),
}


def _props(schema: Schema) -> set[str]:
    return set(schema.get("properties", {}))


def _require(schema: Schema, *keys: str) -> None:
    req = list(schema.get("required", []))
    for k in keys:
        if k not in req:
            req.append(k)
    schema["required"] = req


def _tighten_one(schema: Schema) -> None:
    p = _props(schema)
    # 2.7 item 4: health_check.http.{domain,path,response,status_codes,tls} are indexed directly.
    if {"domain", "path", "response", "status_codes", "tls"} <= p:
        _require(schema, "domain", "path", "response", "status_codes", "tls")
    # 2.7 items 3 and 4: every non-tcp service's `http` has timeout_idle, redirect_http and
    # certificates (the spec's http variant lacks the last two; hcloud indexes them).
    if {"cookie_name", "cookie_lifetime", "timeout_idle", "sticky_sessions"} <= p:
        schema["properties"].setdefault("redirect_http", {"type": "boolean"})
        schema["properties"].setdefault("certificates", {"type": "array", "items": {"type": "integer"}})
        _require(schema, "timeout_idle", "redirect_http", "certificates")
    # 2.7 item 4: firewall rule `description` (null ok) is indexed directly.
    if {"direction", "source_ips", "destination_ips", "protocol", "port"} <= p:
        _require(schema, "description", "port", "source_ips", "destination_ips")
    # 2.7 item 4: server private_net[].{network,ip,alias_ips,mac_address}.
    if p == {"network", "ip", "alias_ips", "mac_address"}:
        _require(schema, "network", "ip", "alias_ips", "mac_address")
    # 2.7 item 4: server public_net.ipv4.{id,ip,blocked,dns_ptr} (hcloud reads ipv4["id"]).
    if (
        p == {"id", "ip", "blocked", "dns_ptr"}
        and schema.get("properties", {}).get("dns_ptr", {}).get("type") == "string"
    ):
        _require(schema, "id", "ip", "blocked", "dns_ptr")
    # 2.7 item 4: certificate status.{issuance,renewal} when status is not null.
    if {"issuance", "renewal", "error"} <= p:
        _require(schema, "issuance", "renewal")
    # 2.3: Pagination(**meta["pagination"]) accepts exactly these six keys.
    if p == {"page", "per_page", "previous_page", "next_page", "last_page", "total_entries"}:
        schema["additionalProperties"] = False


def tighten(schema: Any) -> Any:
    """Apply TIGHTEN rules everywhere in an (already $ref-resolved) schema, in place."""
    if isinstance(schema, dict):
        if "properties" in schema:
            _tighten_one(schema)
        for value in schema.values():
            tighten(value)
    elif isinstance(schema, list):
        for item in schema:
            tighten(item)
    return schema
