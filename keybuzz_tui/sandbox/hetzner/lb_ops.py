"""Load Balancer operations (POST/PUT/DELETE /load_balancers and its actions).

Visibility: every change is in the model, and in GET, when the request returns; the returned
action is `running` for the configured duration and the Load Balancer is `locked` meanwhile
(423 for a second mutating request or a delete; hcloud does not retry `locked`, so clients wait
for each action, as the CCM does). The data plane sees `busy=True` on the LB view until then.
Delete (hcloud 2.27) removes the LB at once and answers 201 `{"action": ...}` (command
`delete_load_balancer`); the spec's 204 predates that change (reference 2.7 item 1).

Codes: 412 source_port_already_used on create/add_service, 422 on update_service (as the spec
lists them); 403 resource_limit_exceeded for the type's max_services / max_targets /
max_assigned_certificates (the CCM handles this code when adding targets); the 422 target codes
from the spec. References in a body to objects that do not exist (certificate, server, network,
load balancer type) are `invalid_input` on that field.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .actions import Action
from .errors import (
    FieldErrors,
    HetznerError,
    invalid_input,
    not_found,
    protected,
    resource_limit_exceeded,
    uniqueness_error,
    unprocessable,
)
from .labels import check_labels
from .lb_validation import merge_update, parse_service, parse_target, service_as_body
from .model import LoadBalancer, Network, Service, Target
from .render import dns_ptr_for
from .validation import INT64_MAX, NAME_RE, is_int, read_bool, read_int, read_obj, read_str

if TYPE_CHECKING:
    from .state import HetznerState

ALGORITHMS = ("round_robin", "least_connections")


def _catalogue_name(
    body: dict[str, Any],
    key: str,
    errors: FieldErrors,
    catalogue: dict[str, Any],
    what: str,
    *,
    required: bool = False,
) -> str | None:
    """`load_balancer_type` / `location` are "ID or name": hcloud sends a bound object's int id."""
    value = body.get(key)
    if value is None:
        if required:
            errors.add(key, "is required")
        return None
    if is_int(value) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        found = next((name for name, spec in catalogue.items() if spec.id == int(value)), None)
    elif isinstance(value, str):
        found = value if value in catalogue else None
    else:
        errors.add(key, "must be an ID or a name")
        return None
    if found is None:
        errors.add(key, f"{what} '{value}' not found")
    return found


# ---- semantic checks -----------------------------------------------------------------------------
def _check_ports(services: list[Service], new: Service, status: int) -> None:
    """source_port_already_used: a listen port taken twice, or port 80 taken by a service while an
    https service with redirect_http wants it (or the other way round)."""
    for other in services:
        clash = other.occupied_ports() & new.occupied_ports()
        if not clash:
            continue
        if other.listen_port == new.listen_port:
            msg = f"listen_port {new.listen_port} is already used by another service"
        elif new.protocol == "https" and new.http is not None and new.http.redirect_http and 80 in clash:
            msg = "port 80 is busy, can not enable redirect_http while another service listens on port 80"
        else:
            msg = "port 80 is busy, redirect_http is enabled on another service"
        raise HetznerError(status, "source_port_already_used", msg)


def _check_service_limits(st: HetznerState, lb_type: str, services: list[Service]) -> None:
    spec = st.lb_types[lb_type]
    if len(services) > spec.max_services:
        raise resource_limit_exceeded(
            "max_services", f"load balancer type {lb_type} allows at most {spec.max_services} services"
        )
    certs = {c for s in services if s.http is not None and s.protocol == "https" for c in s.http.certificates}
    if len(certs) > spec.max_assigned_certificates:
        raise resource_limit_exceeded(
            "max_assigned_certificates",
            f"load balancer type {lb_type} allows at most {spec.max_assigned_certificates} certificates",
        )


def _target_count(st: HetznerState, targets: list[Target]) -> int:
    n = 0
    for t in targets:
        n += len(st.selector_servers(t.selector or "")) if t.type == "label_selector" else 1
    return n


def _check_target(
    st: HetznerState,
    t: Target,
    existing: list[Target],
    networks: set[int],
    public_enabled: bool,
    lb_type: str,
) -> None:
    if any(e.key() == t.key() for e in existing):
        raise unprocessable("target_already_defined", "the load balancer target is already defined")
    if t.type in ("server", "label_selector") and t.use_private_ip:
        if not networks:
            raise unprocessable(
                "load_balancer_not_attached_to_network",
                "the load balancer is not attached to a network (use_private_ip needs one)",
            )
        if t.type == "server":
            server = st.servers[t.server_id]  # type: ignore[index]
            if server.network_id not in networks:
                raise unprocessable(
                    "resolve_cloud_private_targets_error",
                    f"server {server.id} is not attached to the load balancer's network",
                )
    if t.type in ("server", "label_selector") and not t.use_private_ip:
        if not public_enabled:
            raise unprocessable(
                "load_balancer_public_interface_disabled",
                "the load balancer's public interface is disabled; use use_private_ip",
            )
        if t.type == "server" and st.servers[t.server_id].public_ipv4 is None:  # type: ignore[index]
            raise unprocessable(
                "resolve_cloud_public_targets_error", f"server {t.server_id} has no public IPv4 address"
            )
    if t.type == "ip" and t.ip in st.used_ips():
        raise unprocessable(
            "ip_not_owned", f"{t.ip} belongs to a Hetzner Cloud resource; use a server target instead"
        )
    spec = st.lb_types[lb_type]
    if _target_count(st, existing + [t]) > spec.max_targets:
        raise resource_limit_exceeded(
            "max_targets", f"load balancer type {lb_type} allows at most {spec.max_targets} targets"
        )


def allocate_private_ip(
    st: HetznerState, network: Network, location: str, ip: str | None = None, ip_range: str | None = None
) -> str:
    zone = st.locations[location].network_zone
    subnets = [sn for sn in network.subnets if sn.network_zone == zone and sn.type in ("cloud", "server")]
    if ip_range is not None:
        try:
            wanted = ipaddress.ip_network(ip_range, strict=False)
        except ValueError:
            raise invalid_input("ip_range", "is not a valid CIDR range") from None
        subnets = [sn for sn in subnets if ipaddress.ip_network(sn.ip_range) == wanted]
    if not subnets:
        raise unprocessable(
            "no_subnet_available",
            f"network {network.id} has no subnet in network zone {zone} for the load balancer",
        )
    used = st.used_ips() | {sn.gateway for sn in network.subnets} | set(st.settings.reserved_ips)
    if ip is not None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise invalid_input("ip", "is not a valid IP address") from None
        nets = [ipaddress.ip_network(sn.ip_range) for sn in subnets]
        if ip in used or not any(
            addr in n and addr not in (n.network_address, n.broadcast_address) for n in nets
        ):
            raise unprocessable("ip_not_available", f"{ip} is not available in network {network.id}")
        return ip
    for sn in subnets:
        for host in ipaddress.ip_network(sn.ip_range).hosts():
            if str(host) not in used:
                return str(host)
    raise unprocessable("no_subnet_available", f"no free IP left in network {network.id}")


# ---- create / update / delete --------------------------------------------------------------------
def create(st: HetznerState, body: dict[str, Any]) -> tuple[LoadBalancer, Action]:
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", required=True, min_len=1, max_len=128, pattern=NAME_RE)
    type_name = _catalogue_name(
        body, "load_balancer_type", errors, st.lb_types, "load balancer type", required=True
    )
    location = _catalogue_name(body, "location", errors, st.locations, "location")
    network_zone = read_str(body, "network_zone", errors, "network_zone")
    if location is not None and network_zone is not None:
        errors.add("location", "location and network_zone are mutually exclusive")
    elif location is None and "location" in body and body["location"] is not None:
        pass  # already reported
    elif network_zone is not None:
        zone_locs = [loc.name for loc in st.locations.values() if loc.network_zone == network_zone]
        if not zone_locs:
            errors.add("network_zone", f"network zone '{network_zone}' not found")
        else:
            location = zone_locs[0]
    elif location is None:
        errors.add("location", "location or network_zone is required")
    algo = read_obj(body, "algorithm", errors, "algorithm")
    algorithm = read_str(
        algo,
        "type",
        errors,
        "algorithm.type",
        required=algo is not None,
        choices=ALGORITHMS,
        default="round_robin",
    )
    labels: dict[str, str] = {}
    if body.get("labels") is not None:
        labels = check_labels(body["labels"], errors) or {}
    public_enabled = read_bool(body, "public_interface", errors, "public_interface", default=True)
    network_id = read_int(body, "network", errors, "network", lo=1, hi=INT64_MAX)
    if is_int(network_id) and network_id not in st.networks:
        errors.add("network", f"network {network_id} not found")
        network_id = None
    public_net = read_obj(body, "public_net", errors, "public_net")
    for fam in ("ipv4", "ipv6"):
        if public_net is not None and public_net.get(fam) is not None:
            errors.add(f"public_net.{fam}", "primary IP not found (the sandbox has no Primary IPs)")
    raw_services = body.get("services")
    raw_targets = body.get("targets")
    services: list[Service] = []
    targets: list[Target] = []
    if raw_services is not None and not isinstance(raw_services, list):
        errors.add("services", "must be an array")
    elif raw_services:
        for i, raw in enumerate(raw_services):
            svc = parse_service(st, raw, errors, f"services[{i}].")
            if svc is not None:
                services.append(svc)
    if raw_targets is not None and not isinstance(raw_targets, list):
        errors.add("targets", "must be an array")
    elif raw_targets:
        for i, raw in enumerate(raw_targets):
            t = parse_target(st, raw, errors, f"targets[{i}].")
            if t is not None:
                targets.append(t)
    errors.raise_if_any()
    assert isinstance(name, str) and isinstance(type_name, str) and isinstance(location, str)

    if any(lb.name == name for lb in st.lbs.values()):
        raise uniqueness_error("name", f"load balancer name '{name}' is already used")
    accepted: list[Service] = []
    for svc in services:
        _check_ports(accepted, svc, 412)
        accepted.append(svc)
    _check_service_limits(st, type_name, accepted)
    networks = {network_id} if network_id else set()
    accepted_t: list[Target] = []
    for t in targets:
        _check_target(st, t, accepted_t, networks, public_enabled, type_name)
        accepted_t.append(t)
    private_net: list[tuple[int, str]] = []
    if network_id:
        private_net.append((network_id, allocate_private_ip(st, st.networks[network_id], location)))
    ipv4 = st.next_public_ip()
    if ipv4 is None:
        raise HetznerError(
            412, "resource_unavailable", "no public IPv4 address is available for the load balancer"
        )

    lb = LoadBalancer(
        id=st.next_id("load_balancer"),
        name=name,
        lb_type=type_name,
        location=location,
        labels=labels,
        created=st.clock.stamp(),
        algorithm=algorithm,
        public_enabled=public_enabled,
        ipv4=ipv4,
        ipv4_dns_ptr=dns_ptr_for(ipv4),
        private_net=private_net,
        services=accepted,
        targets=accepted_t,
    )
    st.lbs[lb.id] = lb
    resources = [(lb.id, "load_balancer")] + [(nid, "network") for nid, _ in private_net]
    action = st.actions.start("create_load_balancer", resources, lock=True)
    st.emit("created", "load_balancer", lb.id)
    return lb, action


def update(st: HetznerState, lb_id: int, body: dict[str, Any]) -> LoadBalancer:
    lb = st.get_lb(lb_id)
    errors = FieldErrors()
    name = read_str(body, "name", errors, "name", min_len=1, max_len=128, pattern=NAME_RE)
    labels = None
    if body.get("labels") is not None:
        labels = check_labels(body["labels"], errors)
    errors.raise_if_any()
    if name is not None and name != lb.name and any(o.name == name for o in st.lbs.values()):
        raise uniqueness_error("name", f"load balancer name '{name}' is already used")
    if name is not None:
        lb.name = name
    if labels is not None:
        lb.labels = labels
    st.emit("updated", "load_balancer", lb.id)
    return lb


def delete(st: HetznerState, lb_id: int) -> Action:
    lb = st.get_lb(lb_id)
    if lb.protection_delete:
        raise protected(f"load balancer {lb.id}")
    st.actions.ensure_unlocked("load_balancer", lb.id, f"load balancer {lb.id}")
    del st.lbs[lb.id]
    st.prune_health()
    action = st.actions.start("delete_load_balancer", [(lb.id, "load_balancer")])
    st.emit("deleted", "load_balancer", lb.id)
    return action


# ---- actions -------------------------------------------------------------------------------------
def _begin(st: HetznerState, lb_id: int) -> LoadBalancer:
    lb = st.get_lb(lb_id)
    st.actions.ensure_unlocked("load_balancer", lb.id, f"load balancer {lb.id}")
    return lb


def _commit(
    st: HetznerState, lb: LoadBalancer, command: str, extra: list[tuple[int, str]] | None = None
) -> Action:
    st.prune_health()
    action = st.actions.start(command, [(lb.id, "load_balancer")] + (extra or []), lock=True)
    st.emit("updated", "load_balancer", lb.id)
    return action


def add_service(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    svc = parse_service(st, body, errors)
    errors.raise_if_any()
    assert svc is not None
    _check_ports(lb.services, svc, 412)
    _check_service_limits(st, lb.lb_type, lb.services + [svc])
    lb.services.append(svc)
    return _commit(st, lb, "add_service")


def update_service(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    port = read_int(body, "listen_port", errors, "listen_port", required=True, lo=1, hi=65535)
    errors.raise_if_any()
    current = lb.service(port)
    if current is None:
        raise not_found(f"service with listen_port {port} on load balancer", lb.id)
    merged = merge_update(service_as_body(current), body)
    new = parse_service(st, merged, errors)
    errors.raise_if_any()
    assert new is not None
    others = [s for s in lb.services if s is not current]
    _check_ports(others, new, 422)
    _check_service_limits(st, lb.lb_type, others + [new])
    lb.services[lb.services.index(current)] = new
    return _commit(st, lb, "update_service")


def delete_service(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    port = read_int(body, "listen_port", errors, "listen_port", required=True, lo=1, hi=65535)
    errors.raise_if_any()
    current = lb.service(port)
    if current is None:
        raise not_found(f"service with listen_port {port} on load balancer", lb.id)
    lb.services.remove(current)
    return _commit(st, lb, "delete_service")


def add_target(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    t = parse_target(st, body, errors)
    errors.raise_if_any()
    assert t is not None
    _check_target(st, t, lb.targets, {nid for nid, _ in lb.private_net}, lb.public_enabled, lb.lb_type)
    lb.targets.append(t)
    extra = [(t.server_id, "server")] if t.type == "server" and t.server_id is not None else []
    return _commit(st, lb, "add_target", extra)


def remove_target(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    t = parse_target(st, body, errors, removing=True)
    errors.raise_if_any()
    assert t is not None
    existing = next((e for e in lb.targets if e.key() == t.key()), None)
    if existing is None:
        raise not_found("target on load balancer", lb.id)
    lb.targets.remove(existing)
    extra = [(t.server_id, "server")] if t.type == "server" and t.server_id in st.servers else []
    return _commit(st, lb, "remove_target", extra)


def attach_to_network(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    network_id = read_int(body, "network", errors, "network", required=True, lo=1, hi=INT64_MAX)
    ip = read_str(body, "ip", errors, "ip")
    ip_range = read_str(body, "ip_range", errors, "ip_range")
    if is_int(network_id) and network_id not in st.networks:
        errors.add("network", f"network {network_id} not found")
    errors.raise_if_any()
    if lb.private_net:
        raise unprocessable(
            "load_balancer_already_attached", "the load balancer is already attached to a network"
        )
    address = allocate_private_ip(st, st.networks[network_id], lb.location, ip, ip_range)
    lb.private_net.append((network_id, address))
    return _commit(st, lb, "attach_to_network", [(network_id, "network")])


def detach_from_network(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    network_id = read_int(body, "network", errors, "network", required=True, lo=1, hi=INT64_MAX)
    errors.raise_if_any()
    if not any(nid == network_id for nid, _ in lb.private_net):
        raise unprocessable(
            "load_balancer_not_attached_to_network",
            f"the load balancer is not attached to network {network_id}",
        )
    lb.private_net = [(nid, ip) for nid, ip in lb.private_net if nid != network_id]
    return _commit(st, lb, "detach_from_network", [(network_id, "network")])


def change_algorithm(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    algorithm = read_str(body, "type", errors, "type", required=True, choices=ALGORITHMS)
    errors.raise_if_any()
    lb.algorithm = algorithm
    return _commit(st, lb, "change_algorithm")


def change_type(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    type_name = _catalogue_name(
        body, "load_balancer_type", errors, st.lb_types, "load balancer type", required=True
    )
    errors.raise_if_any()
    spec = st.lb_types[type_name]
    certs = {c for s in lb.services if s.http and s.protocol == "https" for c in s.http.certificates}
    if (
        len(lb.services) > spec.max_services
        or _target_count(st, lb.targets) > spec.max_targets
        or len(certs) > spec.max_assigned_certificates
    ):
        raise unprocessable(
            "invalid_load_balancer_type",
            f"load balancer type {type_name} is too small for this load balancer's configuration",
        )
    lb.lb_type = type_name
    return _commit(st, lb, "change_load_balancer_type")


def change_protection(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    delete_flag = read_bool(body, "delete", errors, "delete")
    errors.raise_if_any()
    if delete_flag is not None:
        lb.protection_delete = delete_flag
    return _commit(st, lb, "change_protection")


def change_dns_ptr(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    errors = FieldErrors()
    ip = read_str(body, "ip", errors, "ip", required=True)
    ptr = read_str(body, "dns_ptr", errors, "dns_ptr", min_len=1, max_len=255)
    if isinstance(ip, str) and ip != lb.ipv4:
        errors.add("ip", f"{ip} is not an IP of load balancer {lb.id}")
    errors.raise_if_any()
    lb.ipv4_dns_ptr = ptr if ptr is not None else dns_ptr_for(lb.ipv4 or "")
    return _commit(st, lb, "change_dns_ptr")


def enable_public_interface(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    lb.public_enabled = True
    return _commit(st, lb, "enable_public_interface")


def disable_public_interface(st: HetznerState, lb_id: int, body: dict[str, Any]) -> Action:
    lb = _begin(st, lb_id)
    if not lb.private_net:
        raise unprocessable(
            "load_balancer_not_attached_to_network", "the load balancer is not attached to a network"
        )
    if any(t.type == "ip" or not t.use_private_ip for t in lb.targets):
        raise unprocessable(
            "targets_without_use_private_ip",
            "the load balancer has targets that use the public IP instead of the private IP",
        )
    lb.public_enabled = False
    return _commit(st, lb, "disable_public_interface")


ACTIONS = {
    "add_service": add_service,
    "update_service": update_service,
    "delete_service": delete_service,
    "add_target": add_target,
    "remove_target": remove_target,
    "attach_to_network": attach_to_network,
    "detach_from_network": detach_from_network,
    "change_algorithm": change_algorithm,
    "change_type": change_type,
    "change_protection": change_protection,
    "change_dns_ptr": change_dns_ptr,
    "enable_public_interface": enable_public_interface,
    "disable_public_interface": disable_public_interface,
}

METRIC_TYPES = ("open_connections", "connections_per_second", "requests_per_second", "bandwidth")


def metrics(
    st: HetznerState, lb_id: int, types: list[str], start: str | None, end: str | None, step: str | None
) -> dict[str, Any]:
    """Zero-valued series: the sandbox does not count traffic (yet); the shape is what matters."""
    st.get_lb(lb_id)
    errors = FieldErrors()
    if not types:
        errors.add("type", "is required")
    for t in types:
        if t not in METRIC_TYPES:
            errors.add("type", f"must be one of {', '.join(METRIC_TYPES)}")
    times = []
    for field, raw in (("start", start), ("end", end)):
        if not raw:
            errors.add(field, "is required")
            continue
        try:
            times.append(datetime.fromisoformat(raw))
        except ValueError:
            errors.add(field, "must be an RFC 3339 timestamp")
    step_s = 60.0
    if step:
        try:
            step_s = float(step)
            if step_s <= 0:
                raise ValueError
        except ValueError:
            errors.add("step", "must be a positive number")
    errors.raise_if_any()
    t0, t1 = times
    if t1 < t0:
        raise invalid_input("end", "must not be before start")
    points = []
    ts = t0.timestamp()
    while ts <= t1.timestamp() and len(points) < 500:
        points.append([ts, "0"])
        ts += step_s
    series: dict[str, Any] = {}
    for t in types:
        names = ("bandwidth.in", "bandwidth.out") if t == "bandwidth" else (t,)
        for n in names:
            series[n] = {"values": [list(p) for p in points]}
    return {"metrics": {"start": start, "end": end, "step": step_s, "time_series": series}}
