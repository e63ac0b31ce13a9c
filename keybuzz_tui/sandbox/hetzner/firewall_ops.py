"""Firewalls: rules, and application to servers directly or through a label selector.

Visibility: `rules` and `applied_to` change when the request returns. A server the firewall is
being applied to shows `public_net.firewalls[].status: pending` until its `apply_firewall` action
succeeds, then `applied` (servers that match a selector later are `applied` at once). set_rules
replies 201 `{"actions": [...]}` (plural): `set_firewall_rules` plus one `apply_firewall` per
server it is applied to. effective_firewall_rules() (the data plane's view) counts only
`applied` servers and always uses the current rules. A firewall still applied to something
cannot be deleted (422 `resource_in_use`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .actions import Action
from .errors import FieldErrors, HetznerError, not_found, uniqueness_error, unprocessable
from .labels import check_labels
from .model import Firewall, FirewallApply, FirewallRule
from .validation import (
    INT64_MAX,
    NAME_RE,
    is_int,
    read_int,
    read_list,
    read_obj,
    read_str,
    read_str_list,
    valid_cidr,
)

if TYPE_CHECKING:
    from .state import HetznerState

PROTOCOLS = ("tcp", "udp", "icmp", "esp", "gre")
PORT_RE = re.compile(r"^(\d{1,5})(-(\d{1,5}))?$")


def get(st: HetznerState, fw_id: int) -> Firewall:
    fw = st.firewalls.get(fw_id)
    if fw is None:
        raise not_found("firewall", fw_id)
    return fw


def _parse_rule(raw: Any, errors: FieldErrors, prefix: str) -> FirewallRule | None:
    if not isinstance(raw, dict):
        errors.add(prefix.rstrip("."), "must be an object")
        return None
    direction = read_str(raw, "direction", errors, f"{prefix}direction", required=True, choices=("in", "out"))
    protocol = read_str(raw, "protocol", errors, f"{prefix}protocol", required=True, choices=PROTOCOLS)
    port = read_str(raw, "port", errors, f"{prefix}port")
    description = read_str(raw, "description", errors, f"{prefix}description", max_len=255)
    sources = read_str_list(raw, "source_ips", errors, f"{prefix}source_ips") or []
    dests = read_str_list(raw, "destination_ips", errors, f"{prefix}destination_ips") or []
    ok = True
    if protocol in ("tcp", "udp"):
        m = PORT_RE.match(port) if isinstance(port, str) else None
        if port is None:
            errors.add(f"{prefix}port", "is required for protocol tcp and udp")
            ok = False
        elif not m or not 1 <= int(m[1]) <= 65535 or (m[3] and not int(m[1]) < int(m[3]) <= 65535):
            errors.add(f"{prefix}port", "must be a port (80) or a port range (30000-32767)")
            ok = False
    elif protocol is not None and port is not None:
        errors.add(f"{prefix}port", f"is not allowed for protocol {protocol}")
        ok = False
    for field, ips in (("source_ips", sources), ("destination_ips", dests)):
        bad = [ip for ip in ips if "/" not in ip or not valid_cidr(ip)]
        if bad:
            errors.add(f"{prefix}{field}", f"'{bad[0]}' is not a valid CIDR")
            ok = False
    if direction == "in":
        if not sources:
            errors.add(f"{prefix}source_ips", "is required for direction in")
            ok = False
        if dests:
            errors.add(f"{prefix}destination_ips", "is not allowed for direction in")
            ok = False
    elif direction == "out":
        if not dests:
            errors.add(f"{prefix}destination_ips", "is required for direction out")
            ok = False
        if sources:
            errors.add(f"{prefix}source_ips", "is not allowed for direction out")
            ok = False
    if not ok or direction is None or protocol is None:
        return None
    return FirewallRule(direction, protocol, port, sources, dests, description)


def _parse_rules(body: Any, errors: FieldErrors, required: bool) -> list[FirewallRule]:
    items = read_list(body, "rules", errors, "rules", required=required, max_items=50) or []
    rules = [_parse_rule(raw, errors, f"rules[{i}].") for i, raw in enumerate(items)]
    return [r for r in rules if r is not None]


def _parse_resources(st: HetznerState, body: Any, key: str, errors: FieldErrors) -> list[FirewallApply]:
    items = read_list(body, key, errors, key, required=True) or []
    out = []
    for i, raw in enumerate(items):
        prefix = f"{key}[{i}]."
        if not isinstance(raw, dict):
            errors.add(f"{key}[{i}]", "must be an object")
            continue
        rtype = read_str(
            raw, "type", errors, f"{prefix}type", required=True, choices=("server", "label_selector")
        )
        if rtype == "server":
            obj = read_obj(raw, "server", errors, f"{prefix}server", required=True)
            sid = read_int(
                obj, "id", errors, f"{prefix}server.id", required=obj is not None, lo=1, hi=INT64_MAX
            )
            if is_int(sid):
                out.append(FirewallApply("server", server_id=sid))
        elif rtype == "label_selector":
            obj = read_obj(raw, "label_selector", errors, f"{prefix}label_selector", required=True)
            sel = read_str(
                obj,
                "selector",
                errors,
                f"{prefix}label_selector.selector",
                required=obj is not None,
                min_len=1,
                max_len=1000,
            )
            if isinstance(sel, str):
                try:
                    st.selector(sel)
                except HetznerError as exc:
                    errors.add(f"{prefix}label_selector.selector", exc.message.split(": ", 1)[-1])
                else:
                    out.append(FirewallApply("label_selector", selector=sel))
    return out


def _apply(st: HetznerState, fw: Firewall, resources: list[FirewallApply]) -> list[Action]:
    """Check then apply; one `apply_firewall` action per resource."""
    for res in resources:
        if res.type == "server":
            server = st.servers.get(res.server_id)  # type: ignore[arg-type]
            if server is None:
                raise HetznerError(404, "firewall_resource_not_found", f"server {res.server_id} not found")
            if server.public_ipv4 is None:
                raise unprocessable("private_net_only_server", f"server {server.id} has no public interface")
        if any(
            a.type == res.type and a.server_id == res.server_id and a.selector == res.selector
            for a in fw.applied_to
        ):
            raise unprocessable(
                "firewall_already_applied", f"firewall {fw.id} is already applied to this resource"
            )
    actions = []
    for res in resources:
        fw.applied_to.append(res)
        servers = (
            [res.server_id]
            if res.type == "server"
            else [s.id for s in st.selector_servers(res.selector or "")]
        )
        for sid in servers:
            if fw.server_status.get(sid) != "applied" or res.type == "server":
                fw.server_status[sid] = "pending"
        resources_ids = [(fw.id, "firewall")] + [(sid, "server") for sid in servers if res.type == "server"]
        actions.append(
            st.actions.start("apply_firewall", resources_ids, on_success=_mark_applied(st, fw, servers))
        )
    return actions


def _mark_applied(st: HetznerState, fw: Firewall, servers: list[int]) -> Callable[[], None]:
    """What the apply_firewall action does when it succeeds: pending servers become applied."""

    def done() -> None:
        for sid in servers:
            if fw.server_status.get(sid) == "pending":
                fw.server_status[sid] = "applied"

    return done


def create(st: HetznerState, body: dict[str, Any]) -> tuple[Firewall, list[Action]]:
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", required=True, min_len=1, max_len=128, pattern=NAME_RE)
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else {}
    rules = _parse_rules(body, errors, required=False)
    apply_to = _parse_resources(st, body, "apply_to", errors) if body.get("apply_to") is not None else []
    errors.raise_if_any()
    if any(f.name == name for f in st.firewalls.values()):
        raise uniqueness_error("name", f"firewall name '{name}' is already used")
    fw = Firewall(st.next_id("firewall"), name, labels or {}, st.clock.stamp(), rules)
    actions: list[Action] = []
    # check resources before storing, so a failed apply leaves no half-created firewall
    probe = Firewall(0, name, {}, "", [])
    for res in apply_to:
        if res.type == "server" and res.server_id not in st.servers:
            # 422 here (POST /firewalls' table), 404 on apply_to_resources (its table)
            raise unprocessable("firewall_resource_not_found", f"server {res.server_id} not found")
        if res.type == "server" and st.servers[res.server_id].public_ipv4 is None:  # type: ignore[index]
            raise unprocessable("private_net_only_server", f"server {res.server_id} has no public interface")
        if any(
            a.type == res.type and a.server_id == res.server_id and a.selector == res.selector
            for a in probe.applied_to
        ):
            raise unprocessable("server_already_added", "the resource was applied more than once")
        probe.applied_to.append(res)
    st.firewalls[fw.id] = fw
    if rules:
        actions.append(st.actions.start("set_firewall_rules", [(fw.id, "firewall")]))
    actions.extend(_apply(st, fw, apply_to))
    st.emit("created", "firewall", fw.id)
    return fw, actions


def update(st: HetznerState, fw_id: int, body: dict[str, Any]) -> Firewall:
    fw = get(st, fw_id)
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", min_len=1, max_len=128, pattern=NAME_RE)
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else None
    errors.raise_if_any()
    if name is not None and name != fw.name and any(f.name == name for f in st.firewalls.values()):
        raise uniqueness_error("name", f"firewall name '{name}' is already used")
    if name is not None:
        fw.name = name
    if labels is not None:
        fw.labels = labels
    st.emit("updated", "firewall", fw.id)
    return fw


def delete(st: HetznerState, fw_id: int) -> None:
    fw = get(st, fw_id)
    if fw.applied_to:
        raise unprocessable("resource_in_use", f"firewall {fw.id} is still applied to a resource")
    del st.firewalls[fw.id]
    st.emit("deleted", "firewall", fw.id)


def set_rules(st: HetznerState, fw_id: int, body: dict[str, Any]) -> list[Action]:
    fw = get(st, fw_id)
    errors = FieldErrors()
    rules = _parse_rules(body, errors, required=True)
    errors.raise_if_any()
    fw.rules = rules
    actions = [st.actions.start("set_firewall_rules", [(fw.id, "firewall")])]
    for server in sorted(st.servers.values(), key=lambda s: s.id):
        if st.firewall_applies_to(fw, server.id):
            actions.append(st.actions.start("apply_firewall", [(fw.id, "firewall"), (server.id, "server")]))
    st.emit("updated", "firewall", fw.id)
    return actions


def apply_to_resources(st: HetznerState, fw_id: int, body: dict[str, Any]) -> list[Action]:
    fw = get(st, fw_id)
    errors = FieldErrors()
    resources = _parse_resources(st, body, "apply_to", errors)
    errors.raise_if_any()
    actions = _apply(st, fw, resources)
    st.emit("updated", "firewall", fw.id)
    return actions


def remove_from_resources(st: HetznerState, fw_id: int, body: dict[str, Any]) -> list[Action]:
    fw = get(st, fw_id)
    errors = FieldErrors()
    resources = _parse_resources(st, body, "remove_from", errors)
    errors.raise_if_any()
    for res in resources:
        direct = any(
            a.type == res.type and a.server_id == res.server_id and a.selector == res.selector
            for a in fw.applied_to
        )
        if direct:
            continue
        if res.type == "server" and st.firewall_applies_to(fw, res.server_id):  # type: ignore[arg-type]
            raise unprocessable(
                "firewall_managed_by_label_selector",
                f"firewall {fw.id} is applied to server {res.server_id} by a label selector",
            )
        raise HetznerError(404, "firewall_resource_not_found", "the firewall is not applied to this resource")
    actions = []
    for res in resources:
        fw.applied_to = [
            a
            for a in fw.applied_to
            if not (a.type == res.type and a.server_id == res.server_id and a.selector == res.selector)
        ]
        for sid in list(fw.server_status):
            if not st.firewall_applies_to(fw, sid):
                del fw.server_status[sid]
        ids = [(fw.id, "firewall")] + ([(res.server_id, "server")] if res.type == "server" else [])
        actions.append(st.actions.start("remove_firewall", ids))  # type: ignore[list-item]
    st.emit("updated", "firewall", fw.id)
    return actions
