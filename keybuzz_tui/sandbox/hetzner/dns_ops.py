"""DNS zones and rrsets (the Hetzner Cloud DNS API under /zones).

Visibility: the API shows a change as soon as the request returns, with a `running` action and
the zone's `status: updating`; the authoritative DNS server (dns_snapshot) serves it only when
that action succeeds, as if Hetzner's nameservers were being updated. Each change captures the
zone at request time and is published at completion unless a newer change was published first.
Every change bumps the SOA serial. RRSet ids are `name/TYPE`; names are relative and lower case,
`@` for the apex. Zones can be addressed by id or name. The sandbox has primary zones only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .actions import Action
from .errors import (
    FieldErrors,
    HetznerError,
    invalid_input,
    not_found,
    protected,
    uniqueness_error,
)
from .labels import check_labels
from .model import RRSet, Zone
from .validation import DOMAIN_RE, MISSING, read_bool, read_int, read_list, read_str, valid_ip

if TYPE_CHECKING:
    from .state import HetznerState

RR_TYPES = (
    "A",
    "AAAA",
    "CAA",
    "CNAME",
    "DS",
    "HINFO",
    "HTTPS",
    "MX",
    "NS",
    "PTR",
    "RP",
    "SOA",
    "SRV",
    "SVCB",
    "TLSA",
    "TXT",
)
TTL_MAX = 2147483647
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
RR_NAME_RE = re.compile(rf"^(\*|{_LABEL})(\.{_LABEL})*$")


# ---- zones ---------------------------------------------------------------------------------------
def get_zone(st: HetznerState, id_or_name: str) -> Zone:
    if id_or_name.isascii() and id_or_name.isdigit():
        z = st.zones.get(int(id_or_name))
    else:
        wanted = id_or_name.lower().rstrip(".")
        z = next((z for z in st.zones.values() if z.name == wanted), None)
    if z is None:
        raise not_found("zone", id_or_name)
    return z


def _changed(
    st: HetznerState,
    z: Zone,
    command: str,
    resources: list[tuple[int, str]] | None = None,
    status_only: bool = False,
) -> Action:
    """Record a change: bump the serial, start the action, publish to DNS when it succeeds."""
    if not status_only:
        st.bump_serial(z)
    seq, data = st.snapshot_zone(z)
    action = st.actions.start(
        command,
        resources or [(z.id, "zone")],
        on_success=lambda: st.publish_zone(z, data, seq) if z.id in st.zones else None,
    )
    st.emit("updated", "zone", z.id)
    return action


def create_zone(st: HetznerState, body: dict[str, Any]) -> tuple[Zone, Action]:
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", required=True, max_len=255)
    if isinstance(name, str):
        name = name.lower().rstrip(".")
        if not DOMAIN_RE.match(name) or name.startswith("*."):
            errors.add("name", "is not a valid domain name")
    mode = read_str(body, "mode", errors, "mode", choices=("primary", "secondary"), default="primary")
    if mode == "secondary":
        errors.add("mode", "secondary zones are not supported by the sandbox")
    ttl = read_int(body, "ttl", errors, "ttl", lo=60, hi=TTL_MAX, default=3600)
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else {}
    if body.get("zonefile") is not None:
        errors.add("zonefile", "zone file import is not supported by the sandbox")
    raw_rrsets = read_list(body, "rrsets", errors, "rrsets") or []
    parsed = [_parse_rrset(raw, errors, f"rrsets[{i}].") for i, raw in enumerate(raw_rrsets)]
    errors.raise_if_any()
    if any(z.name == name for z in st.zones.values()):
        raise uniqueness_error("name", f"zone '{name}' already exists")
    z = st.new_zone(st.next_id("zone"), name, ttl, labels or {})
    for rr in parsed:
        if rr is not None:
            z.rrsets[(rr.name, rr.type)] = rr
    st.zones[z.id] = z
    seq, data = st.snapshot_zone(z)
    action = st.actions.start(
        "create_zone",
        [(z.id, "zone")],
        on_success=lambda: st.publish_zone(z, data, seq) if z.id in st.zones else None,
    )
    st.emit("created", "zone", z.id)
    return z, action


def update_zone(st: HetznerState, id_or_name: str, body: dict[str, Any]) -> Zone:
    z = get_zone(st, id_or_name)
    errors = FieldErrors()
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else None
    errors.raise_if_any()
    if labels is not None:
        z.labels = labels
    st.emit("updated", "zone", z.id)
    return z


def delete_zone(st: HetznerState, id_or_name: str) -> Action:
    z = get_zone(st, id_or_name)
    if z.protection_delete:
        raise protected(f"zone {z.name}")
    del st.zones[z.id]
    action = st.actions.start("delete_zone", [(z.id, "zone")], on_success=lambda: st.unpublish_zone(z.id))
    st.emit("deleted", "zone", z.id)
    return action


def change_zone_ttl(st: HetznerState, id_or_name: str, body: dict[str, Any]) -> Action:
    z = get_zone(st, id_or_name)
    errors = FieldErrors()
    ttl = read_int(body, "ttl", errors, "ttl", required=True, lo=60, hi=TTL_MAX)
    errors.raise_if_any()
    z.ttl = ttl
    return _changed(st, z, "change_ttl")


def change_zone_protection(st: HetznerState, id_or_name: str, body: dict[str, Any]) -> Action:
    z = get_zone(st, id_or_name)
    errors = FieldErrors()
    flag = read_bool(body, "delete", errors, "delete")
    errors.raise_if_any()
    if flag is not None:
        z.protection_delete = flag
    return _changed(st, z, "change_protection", status_only=True)


# ---- rrsets --------------------------------------------------------------------------------------
def _check_value(rtype: str, value: str) -> str | None:
    if rtype == "A" and not valid_ip(value, 4):
        return f"'{value}' is not a valid IPv4 address"
    if rtype == "AAAA" and not valid_ip(value, 6):
        return f"'{value}' is not a valid IPv6 address"
    if not value.strip():
        return "value must not be empty"
    return None


def _parse_records(
    raw: Any,
    errors: FieldErrors,
    field: str,
    rtype: str | None,
    *,
    required: bool = True,
    comment_required: bool = False,
) -> list[dict[str, str]] | None:
    if raw is MISSING or raw is None:
        if required:
            errors.add(field, "is required")
        return None
    if not isinstance(raw, list):
        errors.add(field, "must be an array")
        return None
    if len(raw) > 50:
        errors.add(field, "must not have more than 50 items")
        return None
    items = raw
    out: list[dict[str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.add(f"{field}[{i}]", "must be an object")
            continue
        value = read_str(item, "value", errors, f"{field}[{i}].value", required=True, min_len=1, max_len=4096)
        comment = read_str(
            item, "comment", errors, f"{field}[{i}].comment", required=comment_required, max_len=255
        )
        if isinstance(value, str):
            problem = _check_value(rtype, value) if rtype else None
            if problem:
                errors.add(f"{field}[{i}].value", problem)
                continue
            rec = {"value": value}
            if comment is not None:
                rec["comment"] = comment
            out.append(rec)
    if rtype == "CNAME" and len(out) > 1:
        errors.add(field, "a CNAME rrset can hold only one record")
    return out


def _check_name(name: Any, errors: FieldErrors, field: str) -> str | None:
    if not isinstance(name, str):
        errors.add(field, "is required" if name is None or name is MISSING else "must be a string")
        return None
    if name == "@":
        return name
    if name != name.lower():
        errors.add(field, "must be lower case")
    elif name.endswith("."):
        errors.add(field, "must be relative to the zone (no trailing dot)")
    elif not RR_NAME_RE.match(name):
        errors.add(field, "is not a valid record name")
    else:
        return name
    return None


def _parse_rrset(raw: Any, errors: FieldErrors, prefix: str = "") -> RRSet | None:
    if not isinstance(raw, dict):
        errors.add(prefix.rstrip(".") or "rrset", "must be an object")
        return None
    name = _check_name(raw.get("name", MISSING), errors, f"{prefix}name")
    rtype = read_str(raw, "type", errors, f"{prefix}type", required=True, choices=RR_TYPES)
    ttl = read_int(raw, "ttl", errors, f"{prefix}ttl", lo=60, hi=TTL_MAX)
    records = _parse_records(raw.get("records", MISSING), errors, f"{prefix}records", rtype)
    if records is not None and not records and not errors:
        errors.add(f"{prefix}records", "at least one record is required")
    labels = check_labels(raw["labels"], errors, f"{prefix}labels") if raw.get("labels") is not None else {}
    if name is None or rtype is None or records is None:
        return None
    return RRSet(name, rtype, ttl, records, labels or {})


def _check_cname(z: Zone, name: str, rtype: str) -> None:
    others = [t for (n, t) in z.rrsets if n == name and t != rtype]
    if others and (rtype == "CNAME" or "CNAME" in others):
        raise invalid_input("type", f"a CNAME rrset cannot coexist with other rrsets at '{name}'")


def get_rrset(st: HetznerState, id_or_name: str, name: str, rtype: str) -> tuple[Zone, RRSet]:
    z = get_zone(st, id_or_name)
    rr = z.rrsets.get((name, rtype))
    if rr is None:
        raise not_found("rrset", f"{name}/{rtype}")
    return z, rr


def _mutable(st: HetznerState, id_or_name: str, name: str, rtype: str) -> tuple[Zone, RRSet]:
    z, rr = get_rrset(st, id_or_name, name, rtype)
    if rr.protection_change:
        raise protected(f"rrset {rr.id}")
    return z, rr


def create_rrset(st: HetznerState, id_or_name: str, body: dict[str, Any]) -> tuple[Zone, RRSet, Action]:
    z = get_zone(st, id_or_name)
    errors = FieldErrors()
    rr = _parse_rrset(body, errors)
    errors.raise_if_any()
    assert rr is not None
    if (rr.name, rr.type) in z.rrsets:
        raise uniqueness_error("name", f"rrset {rr.id} already exists in zone {z.name}")
    _check_cname(z, rr.name, rr.type)
    z.rrsets[(rr.name, rr.type)] = rr
    return z, rr, _changed(st, z, "create_rrset")


def update_rrset(
    st: HetznerState, id_or_name: str, name: str, rtype: str, body: dict[str, Any]
) -> tuple[Zone, RRSet]:
    z, rr = get_rrset(st, id_or_name, name, rtype)
    errors = FieldErrors()
    labels = check_labels(body["labels"], errors) if body.get("labels") is not None else None
    errors.raise_if_any()
    if labels is not None:
        rr.labels = labels
    st.emit("updated", "zone", z.id)
    return z, rr


def delete_rrset(st: HetznerState, id_or_name: str, name: str, rtype: str) -> Action:
    z, rr = _mutable(st, id_or_name, name, rtype)
    del z.rrsets[(rr.name, rr.type)]
    return _changed(st, z, "delete_rrset")


def rrset_action(
    st: HetznerState, id_or_name: str, name: str, rtype: str, command: str, body: dict[str, Any]
) -> Action:
    errors = FieldErrors()
    if command == "add_records":
        # add_records creates the rrset when missing (the spec's "for convenience")
        z = get_zone(st, id_or_name)
        rr = z.rrsets.get((name, rtype))
        if rr is not None and rr.protection_change:
            raise protected(f"rrset {rr.id}")
        ttl = read_int(body, "ttl", errors, "ttl", lo=60, hi=TTL_MAX)
        records = _parse_records(body.get("records", MISSING), errors, "records", rtype)
        if rr is None:
            _check_name(name, errors, "name")
            if rtype not in RR_TYPES:
                errors.add("type", f"must be one of {', '.join(RR_TYPES)}")
        errors.raise_if_any()
        assert records is not None
        if rr is None:
            _check_cname(z, name, rtype)
            rr = RRSet(name, rtype, ttl, [])
            z.rrsets[(name, rtype)] = rr
        elif ttl is not None:
            rr.ttl = ttl
        have = {r["value"] for r in rr.records}
        rr.records.extend(r for r in records if r["value"] not in have)
        if rtype == "CNAME" and len(rr.records) > 1:
            raise invalid_input("records", "a CNAME rrset can hold only one record")
        return _changed(st, z, "add_rrset_records")
    if command == "change_protection":
        z, rr = get_rrset(st, id_or_name, name, rtype)
        flag = read_bool(body, "change", errors, "change", required=True)
        errors.raise_if_any()
        rr.protection_change = flag
        return _changed(st, z, "change_rrset_protection", status_only=True)
    z, rr = _mutable(st, id_or_name, name, rtype)
    if command == "set_records":
        records = _parse_records(body.get("records", MISSING), errors, "records", rtype)
        if records is not None and not records and not errors:
            errors.add("records", "at least one record is required")
        errors.raise_if_any()
        rr.records = records or []
        return _changed(st, z, "set_rrset_records")
    if command == "remove_records":
        records = _parse_records(body.get("records", MISSING), errors, "records", None)
        errors.raise_if_any()
        drop = {r["value"] for r in records or []}
        rr.records = [r for r in rr.records if r["value"] not in drop]
        if not rr.records:
            del z.rrsets[(rr.name, rr.type)]
        return _changed(st, z, "remove_rrset_records")
    if command == "update_records":
        records = _parse_records(body.get("records", MISSING), errors, "records", None, comment_required=True)
        errors.raise_if_any()
        by_value = {r["value"]: r for r in rr.records}
        for rec in records or []:
            if rec["value"] not in by_value:
                raise invalid_input("records", f"record '{rec['value']}' is not in rrset {rr.id}")
        comments = {rec["value"]: rec.get("comment", "") for rec in records or []}
        rr.records = [
            {**r, "comment": comments[r["value"]]} if r["value"] in comments else r for r in rr.records
        ]
        return _changed(st, z, "update_rrset_records", status_only=True)
    if command == "change_ttl":
        if "ttl" not in body:
            errors.add("ttl", "is required (null means the zone's default)")
        ttl = read_int(body, "ttl", errors, "ttl", lo=60, hi=TTL_MAX)
        errors.raise_if_any()
        rr.ttl = ttl
        return _changed(st, z, "change_rrset_ttl")
    raise HetznerError(404, "not_found", f"unknown rrset action {command}")


RRSET_ACTIONS = (
    "set_records",
    "add_records",
    "remove_records",
    "update_records",
    "change_ttl",
    "change_protection",
)
