"""Reading Load Balancer services and targets from request bodies.

Field problems become `invalid_input` (all fields at once, names relative to the body, e.g.
`health_check.interval` or `services[1].http.certificates`). The semantic checks that have their
own codes (source_port_already_used, target_already_defined, ...) live in lb_ops.py because they
need the Load Balancer's current state.

Defaults follow the API: http/https services listen on 80/443 and forward to 80 unless told,
proxyprotocol false, health check = the service's protocol (http for https) on the destination
port every 15 s, timeout 10 s, 3 retries, path "/", status codes 2??/3??. The spec marks some of
these required on create; like the real API (and unlike the spec), missing ones get defaults, and
a missing health check `domain` is accepted (reference 2.7 item 6).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .errors import FieldErrors, HetznerError
from .model import HealthCheck, HealthCheckHttp, Service, ServiceHttp, Target
from .validation import (
    INT64_MAX,
    is_int,
    read_bool,
    read_id_list,
    read_int,
    read_obj,
    read_str,
    read_str_list,
    valid_ip,
)

if TYPE_CHECKING:
    from .state import HetznerState

PROTOCOLS = ("tcp", "http", "https")
STATUS_CODE_RE = re.compile(r"^[1-5][0-9?]{2}$")
TIMEOUT_IDLE_RANGE = (30, 300)  # the CCM's documented range (reference 2.7 item 7)


def parse_health_check(
    raw: Any, errors: FieldErrors, prefix: str, service_protocol: str | None, destination_port: int | None
) -> HealthCheck:
    default_protocol = "tcp" if service_protocol in (None, "tcp") else "http"
    protocol = read_str(
        raw, "protocol", errors, f"{prefix}protocol", choices=("tcp", "http"), default=default_protocol
    )
    port = read_int(raw, "port", errors, f"{prefix}port", lo=1, hi=65535, default=destination_port or 80)
    interval = read_int(raw, "interval", errors, f"{prefix}interval", lo=3, hi=60, default=15)
    timeout = read_int(raw, "timeout", errors, f"{prefix}timeout", lo=1, hi=60, default=10)
    retries = read_int(raw, "retries", errors, f"{prefix}retries", lo=1, hi=5, default=3)
    http = None
    http_raw = read_obj(raw, "http", errors, f"{prefix}http")
    if protocol == "http":
        hp = f"{prefix}http."
        domain = read_str(http_raw, "domain", errors, f"{hp}domain", max_len=128)
        path = read_str(http_raw, "path", errors, f"{hp}path", min_len=1, max_len=256, default="/")
        if isinstance(path, str) and not path.startswith("/"):
            errors.add(f"{hp}path", "must start with /")
        response = read_str(http_raw, "response", errors, f"{hp}response", max_len=256, default="")
        codes = read_str_list(http_raw, "status_codes", errors, f"{hp}status_codes", max_items=20)
        if codes is not None and not all(STATUS_CODE_RE.match(c) for c in codes):
            errors.add(f"{hp}status_codes", "each status code must look like 200, 2?? or 30?")
            codes = None
        tls = read_bool(http_raw, "tls", errors, f"{hp}tls", default=False)
        http = HealthCheckHttp(
            domain=domain or None,
            path=path,
            response=response,
            status_codes=codes if codes else ["2??", "3??"],
            tls=tls,
        )
    return HealthCheck(protocol, port, interval, timeout, retries, http)


def parse_service_http(
    st: HetznerState, raw: Any, errors: FieldErrors, prefix: str, protocol: str | None
) -> ServiceHttp:
    lo, hi = TIMEOUT_IDLE_RANGE
    http = ServiceHttp(
        cookie_name=read_str(
            raw, "cookie_name", errors, f"{prefix}cookie_name", min_len=1, max_len=100, default="HCLBSTICKY"
        ),
        cookie_lifetime=read_int(
            raw, "cookie_lifetime", errors, f"{prefix}cookie_lifetime", lo=30, hi=86400, default=300
        ),
        timeout_idle=read_int(raw, "timeout_idle", errors, f"{prefix}timeout_idle", lo=lo, hi=hi, default=50),
        sticky_sessions=read_bool(raw, "sticky_sessions", errors, f"{prefix}sticky_sessions", default=False),
        redirect_http=read_bool(raw, "redirect_http", errors, f"{prefix}redirect_http", default=False),
        certificates=read_id_list(raw, "certificates", errors, f"{prefix}certificates") or [],
    )
    if protocol == "http":
        if http.redirect_http:
            errors.add(f"{prefix}redirect_http", "is only allowed for protocol https")
        if http.certificates:
            errors.add(f"{prefix}certificates", "are only allowed for protocol https")
    elif protocol == "https":
        if not http.certificates:
            errors.add(f"{prefix}certificates", "at least one certificate is required for protocol https")
        for cert_id in http.certificates:
            if cert_id not in st.certificates:
                errors.add(f"{prefix}certificates", f"certificate {cert_id} not found")
        http.certificates = list(dict.fromkeys(http.certificates))
    return http


def parse_service(st: HetznerState, raw: Any, errors: FieldErrors, prefix: str = "") -> Service | None:
    if not isinstance(raw, dict):
        errors.add(prefix.rstrip(".") or "service", "must be an object")
        return None
    protocol = read_str(raw, "protocol", errors, f"{prefix}protocol", required=True, choices=PROTOCOLS)
    default_listen = {"http": 80, "https": 443}.get(protocol or "")
    listen_port = read_int(
        raw,
        "listen_port",
        errors,
        f"{prefix}listen_port",
        lo=1,
        hi=65535,
        required=protocol == "tcp",
        default=default_listen,
    )
    destination_port = read_int(
        raw,
        "destination_port",
        errors,
        f"{prefix}destination_port",
        lo=1,
        hi=65535,
        required=protocol == "tcp",
        default=80 if protocol in ("http", "https") else None,
    )
    proxyprotocol = read_bool(raw, "proxyprotocol", errors, f"{prefix}proxyprotocol", default=False)
    http_raw = read_obj(raw, "http", errors, f"{prefix}http")
    http = None
    if protocol in ("http", "https"):
        http = parse_service_http(st, http_raw, errors, f"{prefix}http.", protocol)
    elif protocol == "tcp" and http_raw:
        errors.add(f"{prefix}http", "is only allowed for protocol http and https")
    hc_raw = read_obj(raw, "health_check", errors, f"{prefix}health_check")
    hc = parse_health_check(hc_raw, errors, f"{prefix}health_check.", protocol, destination_port)
    if protocol is None or listen_port is None or destination_port is None:
        return None
    return Service(protocol, listen_port, destination_port, proxyprotocol, hc, http)


def parse_target(
    st: HetznerState, raw: Any, errors: FieldErrors, prefix: str = "", *, removing: bool = False
) -> Target | None:
    """A target body; `removing` (remove_target) ignores use_private_ip as hcloud strips it."""
    if not isinstance(raw, dict):
        errors.add(prefix.rstrip(".") or "target", "must be an object")
        return None
    ttype = read_str(
        raw, "type", errors, f"{prefix}type", required=True, choices=("server", "label_selector", "ip")
    )
    use_private_ip = False
    if not removing:
        use_private_ip = read_bool(raw, "use_private_ip", errors, f"{prefix}use_private_ip", default=False)
    target = None
    if ttype == "server":
        obj = read_obj(raw, "server", errors, f"{prefix}server", required=True)
        sid = read_int(obj, "id", errors, f"{prefix}server.id", required=obj is not None, lo=1, hi=INT64_MAX)
        if is_int(sid):
            if sid not in st.servers and not removing:
                errors.add(f"{prefix}server.id", f"server {sid} not found")
            target = Target("server", server_id=sid, use_private_ip=use_private_ip)
    elif ttype == "label_selector":
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
                target = Target("label_selector", selector=sel, use_private_ip=use_private_ip)
    elif ttype == "ip":
        obj = read_obj(raw, "ip", errors, f"{prefix}ip", required=True)
        ip = read_str(obj, "ip", errors, f"{prefix}ip.ip", required=obj is not None)
        if isinstance(ip, str):
            if not valid_ip(ip):
                errors.add(f"{prefix}ip.ip", "is not a valid IP address")
            else:
                target = Target("ip", ip=ip)
        if use_private_ip:
            errors.add(
                f"{prefix}use_private_ip", "is only allowed for target types server and label_selector"
            )
    return target


def service_as_body(svc: Service) -> dict[str, Any]:
    """The service as a request body (the base that update_service merges into)."""
    from .render import service as render_service

    return render_service(svc)


def merge_update(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """update_service: the body's fields override the current service, nested objects merged."""
    merged = dict(current)
    for key, value in body.items():
        if key in ("http", "health_check") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            inner = dict(merged[key])
            for k2, v2 in value.items():
                if k2 == "http" and isinstance(v2, dict) and isinstance(inner.get("http"), dict):
                    inner["http"] = {**inner["http"], **v2}
                else:
                    inner[k2] = v2
            merged[key] = inner
        else:
            merged[key] = value
    new_protocol = merged.get("protocol")
    if new_protocol != current.get("protocol") and isinstance(merged.get("http"), dict):
        http = dict(merged["http"])
        body_http = body.get("http") if isinstance(body.get("http"), dict) else {}
        if new_protocol != "https":
            for k in ("certificates", "redirect_http"):
                if k not in body_http:
                    http.pop(k, None)
        merged["http"] = http
    if new_protocol == "tcp" and "http" not in body:
        merged.pop("http", None)
    return merged
