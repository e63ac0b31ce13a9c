"""JSON shapes of every resource, spelled as the spec and hcloud 2.27 expect.

Keys hcloud indexes directly are always present, even where the spec leaves them optional
(reference/hetzner.md 2.7 item 4): service `http.timeout_idle`, `http.redirect_http` and
`http.certificates` on http services too (item 3), `health_check.http.{domain,path,response,
status_codes,tls}`, target `use_private_ip`, firewall rule `description`/`port`/ip lists, server
`private_net[].{network,ip,alias_ips,mac_address}` and `public_net.{ipv4{id,ip,blocked,dns_ptr},
ipv6,floating_ips}`, certificate `status.{issuance,renewal}`.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from .model import (
    Certificate,
    Firewall,
    HealthCheck,
    LoadBalancer,
    Network,
    RRSet,
    Server,
    Service,
    Target,
    Zone,
)
from .seeds import HETZNER_NAMESERVERS, LoadBalancerTypeSpec, LocationSpec, ServerTypeSpec

if TYPE_CHECKING:
    from .state import HetznerState

VAT = 1.19


def _price(monthly_net: str, location: str, included_traffic: int) -> dict[str, Any]:
    net = float(monthly_net)
    hourly = net / 730.0
    return {
        "location": location,
        "price_hourly": {"net": f"{hourly:.10f}", "gross": f"{hourly * VAT:.10f}"},
        "price_monthly": {"net": f"{net:.10f}", "gross": f"{net * VAT:.10f}"},
        "included_traffic": included_traffic,
        "price_per_tb_traffic": {"net": "1.0000000000", "gross": "1.1900000000"},
    }


def location(spec: LocationSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "country": spec.country,
        "city": spec.city,
        "latitude": spec.latitude,
        "longitude": spec.longitude,
        "network_zone": spec.network_zone,
    }


def lb_type(st: HetznerState, spec: LoadBalancerTypeSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "max_connections": spec.max_connections,
        "max_services": spec.max_services,
        "max_targets": spec.max_targets,
        "max_assigned_certificates": spec.max_assigned_certificates,
        "deprecated": None,
        "prices": [_price(spec.price_monthly_net, loc, spec.included_traffic) for loc in st.locations],
    }


def server_type(st: HetznerState, spec: ServerTypeSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "cores": spec.cores,
        "memory": spec.memory,
        "disk": spec.disk,
        "deprecated": False,
        "prices": [_price(spec.price_monthly_net, loc, 21990232555520) for loc in st.locations],
        "storage_type": "local",
        "cpu_type": spec.cpu_type,
        "category": "shared" if spec.cpu_type == "shared" else "dedicated",
        "architecture": spec.architecture,
        "deprecation": None,
        "locations": [
            {"id": loc.id, "name": loc.name, "deprecation": None, "recommended": True, "available": True}
            for loc in st.locations.values()
        ],
    }


def datacenter(st: HetznerState, loc: LocationSpec) -> dict[str, Any]:
    ids = [t.id for t in st.server_types.values()]
    return {
        "id": loc.datacenter_id,
        "name": loc.datacenter_name,
        "description": f"{loc.city} DC",
        "location": location(loc),
        "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
    }


def _image(arch: str) -> dict[str, Any]:
    return {
        "id": 161547269 if arch == "x86" else 161547270,
        "type": "system",
        "status": "available",
        "name": "ubuntu-24.04",
        "description": "Ubuntu 24.04",
        "image_size": None,
        "disk_size": 5,
        "created": "2024-04-25T14:26:42Z",
        "created_from": None,
        "bound_to": None,
        "os_flavor": "ubuntu",
        "os_version": "24.04",
        "rapid_deploy": True,
        "protection": {"delete": False},
        "deprecated": None,
        "deleted": None,
        "labels": {},
        "architecture": arch,
    }


def dns_ptr_for(ip: str) -> str:
    try:
        rev = ".".join(reversed(str(ipaddress.ip_address(ip)).split(".")))
    except ValueError:
        rev = ip
    return f"static.{rev}.clients.your-server.de"


def mac_for(server_id: int) -> str:
    b = server_id.to_bytes(4, "big", signed=False) if server_id < 2**32 else bytes(4)
    return "86:00:" + ":".join(f"{x:02x}" for x in b)


def server(st: HetznerState, s: Server) -> dict[str, Any]:
    stype = st.server_types[s.server_type]
    loc = st.locations[s.location]
    ipv4 = None
    if s.public_ipv4 is not None:
        ipv4 = {
            "id": s.public_ipv4_id,
            "ip": s.public_ipv4,
            "blocked": False,
            "dns_ptr": dns_ptr_for(s.public_ipv4),
        }
    private_net = []
    if s.network_id is not None:
        private_net.append(
            {"network": s.network_id, "ip": s.private_ip, "alias_ips": [], "mac_address": mac_for(s.id)}
        )
    return {
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "created": s.created,
        "public_net": {
            "ipv4": ipv4,
            "ipv6": None,
            "floating_ips": [],
            "firewalls": [{"id": fid, "status": status} for fid, status in st.firewall_status_for(s.id)],
        },
        "private_net": private_net,
        "server_type": server_type(st, stype),
        "datacenter": datacenter(st, loc),
        "location": location(loc),
        "image": _image(stype.architecture),
        "iso": None,
        "rescue_enabled": False,
        "locked": st.actions.running_lock("server", s.id) is not None,
        "backup_window": None,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": 21990232555520,
        "protection": {"delete": False, "rebuild": False},
        "labels": dict(s.labels),
        "volumes": [],
        "load_balancers": st.load_balancers_targeting(s.id),
        "primary_disk_size": stype.disk,
        "placement_group": None,
    }


def network(st: HetznerState, n: Network) -> dict[str, Any]:
    return {
        "id": n.id,
        "name": n.name,
        "ip_range": n.ip_range,
        "subnets": [
            {
                "type": sn.type,
                "ip_range": sn.ip_range,
                "network_zone": sn.network_zone,
                "gateway": sn.gateway,
                "vswitch_id": None,
            }
            for sn in n.subnets
        ],
        "routes": [],
        "servers": sorted(s.id for s in st.servers.values() if s.network_id == n.id),
        "load_balancers": sorted(
            lb.id for lb in st.lbs.values() if any(nid == n.id for nid, _ in lb.private_net)
        ),
        "protection": {"delete": n.protection_delete},
        "labels": dict(n.labels),
        "created": n.created,
        "expose_routes_to_vswitch": False,
    }


def health_check(hc: HealthCheck) -> dict[str, Any]:
    out: dict[str, Any] = {
        "protocol": hc.protocol,
        "port": hc.port,
        "interval": hc.interval,
        "timeout": hc.timeout,
        "retries": hc.retries,
    }
    if hc.protocol == "http" and hc.http is not None:
        out["http"] = {
            "domain": hc.http.domain,
            "path": hc.http.path,
            "response": hc.http.response,
            "status_codes": list(hc.http.status_codes),
            "tls": hc.http.tls,
        }
    return out


def service(svc: Service) -> dict[str, Any]:
    out: dict[str, Any] = {
        "protocol": svc.protocol,
        "listen_port": svc.listen_port,
        "destination_port": svc.destination_port,
        "proxyprotocol": svc.proxyprotocol,
        "health_check": health_check(svc.health_check),
    }
    if svc.protocol != "tcp" and svc.http is not None:
        # http services carry redirect_http and certificates too (2.7 item 3)
        out["http"] = {
            "cookie_name": svc.http.cookie_name,
            "cookie_lifetime": svc.http.cookie_lifetime,
            "timeout_idle": svc.http.timeout_idle,
            "sticky_sessions": svc.http.sticky_sessions,
            "redirect_http": svc.http.redirect_http if svc.protocol == "https" else False,
            "certificates": list(svc.http.certificates) if svc.protocol == "https" else [],
        }
    return out


def _health(st: HetznerState, lb: LoadBalancer, key: tuple[str, object]) -> list[dict[str, Any]]:
    out = []
    for svc in lb.services:
        status, detail, code = st.health.get((lb.id, svc.listen_port, key), ("unknown", None, None))
        item: dict[str, Any] = {"listen_port": svc.listen_port, "status": status}
        if status == "unhealthy" and detail:
            item["detail"] = detail
            if code is not None:
                item["http_status_code"] = code
        out.append(item)
    return out


def target(st: HetznerState, lb: LoadBalancer, t: Target) -> dict[str, Any]:
    if t.type == "server":
        return {
            "type": "server",
            "server": {"id": t.server_id},
            "health_status": _health(st, lb, ("server", t.server_id)),
            "use_private_ip": t.use_private_ip,
        }
    if t.type == "label_selector":
        assert t.selector is not None
        return {
            "type": "label_selector",
            "label_selector": {"selector": t.selector},
            "targets": [
                {
                    "type": "server",
                    "server": {"id": s.id},
                    "health_status": _health(st, lb, ("server", s.id)),
                    "use_private_ip": t.use_private_ip,
                }
                for s in st.selector_servers(t.selector)
            ],
            "use_private_ip": t.use_private_ip,
        }
    return {"type": "ip", "ip": {"ip": t.ip}, "health_status": _health(st, lb, ("ip", t.ip))}


def load_balancer(st: HetznerState, lb: LoadBalancer) -> dict[str, Any]:
    spec = st.lb_types[lb.lb_type]
    return {
        "id": lb.id,
        "name": lb.name,
        "public_net": {
            "enabled": lb.public_enabled,
            "ipv4": {"ip": lb.ipv4, "dns_ptr": lb.ipv4_dns_ptr},
            "ipv6": {"ip": None, "dns_ptr": None},
        },
        "private_net": [{"network": nid, "ip": ip} for nid, ip in lb.private_net],
        "location": location(st.locations[lb.location]),
        "load_balancer_type": lb_type(st, spec),
        "protection": {"delete": lb.protection_delete},
        "labels": dict(lb.labels),
        "created": lb.created,
        "services": [service(s) for s in lb.services],
        "targets": [target(st, lb, t) for t in lb.targets],
        "algorithm": {"type": lb.algorithm},
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": spec.included_traffic,
    }


def certificate(st: HetznerState, c: Certificate) -> dict[str, Any]:
    status = None
    if c.type == "managed":
        status = {"issuance": c.issuance, "renewal": c.renewal, "error": dict(c.error) if c.error else None}
    return {
        "id": c.id,
        "name": c.name,
        "labels": dict(c.labels),
        "type": c.type,
        "certificate": c.certificate,
        "created": c.created,
        "not_valid_before": c.not_valid_before,
        "not_valid_after": c.not_valid_after,
        "domain_names": list(c.domain_names),
        "fingerprint": c.fingerprint,
        "status": status,
        "used_by": [{"id": lb_id, "type": "load_balancer"} for lb_id in st.certificate_users(c.id)],
    }


def zone(st: HetznerState, z: Zone) -> dict[str, Any]:
    return {
        "id": z.id,
        "name": z.name,
        "created": z.created,
        "mode": z.mode,
        "labels": dict(z.labels),
        "protection": {"delete": z.protection_delete},
        "ttl": z.ttl,
        "status": "updating" if st.actions.running_for("zone", z.id) else "ok",
        "record_count": sum(len(r.records) for r in z.rrsets.values()),
        "authoritative_nameservers": {
            "assigned": list(HETZNER_NAMESERVERS),
            "delegated": list(HETZNER_NAMESERVERS),
            "delegation_last_check": z.created,
            "delegation_status": "valid",
        },
        "registrar": "other",
    }


def rrset(z: Zone, r: RRSet) -> dict[str, Any]:
    records = []
    for rec in r.records:
        item = {"value": rec["value"]}
        if rec.get("comment") is not None:
            item["comment"] = rec["comment"]
        records.append(item)
    return {
        "id": r.id,
        "name": r.name,
        "type": r.type,
        "ttl": r.ttl,
        "labels": dict(r.labels),
        "protection": {"change": r.protection_change},
        "records": records,
        "zone": z.id,
    }


def firewall(st: HetznerState, fw: Firewall) -> dict[str, Any]:
    applied: list[dict[str, Any]] = []
    for a in fw.applied_to:
        if a.type == "server":
            applied.append({"type": "server", "server": {"id": a.server_id}})
        else:
            assert a.selector is not None
            applied.append(
                {
                    "type": "label_selector",
                    "label_selector": {"selector": a.selector},
                    "applied_to_resources": [
                        {"type": "server", "server": {"id": s.id}} for s in st.selector_servers(a.selector)
                    ],
                }
            )
    return {
        "id": fw.id,
        "name": fw.name,
        "labels": dict(fw.labels),
        "created": fw.created,
        "rules": [
            {
                "description": r.description,
                "direction": r.direction,
                "source_ips": list(r.source_ips),
                "destination_ips": list(r.destination_ips),
                "protocol": r.protocol,
                "port": r.port,
            }
            for r in fw.rules
        ],
        "applied_to": applied,
    }
