"""The Hetzner Cloud API over HTTP: `build_app(state)` serves everything under /v1.

One middleware does what every real reply has: the rate-limit budget (429 when empty) and the
RateLimit-* headers, bearer authentication (401 `unauthorized`; 401 `token_readonly` for a write
with the read-only token, as the spec's catalogue lists it), an `X-Correlation-Id` header, and
the JSON error body for everything that goes wrong: malformed JSON is 400 `json_error`, an unknown
route 404 `not_found`, a wrong method 405 `method_not_allowed`. An unexpected exception is a 500
`server_error` and logged: that is a sandbox bug, which the fuzz tests hunt for.

Status codes: creates 201; actions 201 (`update_records` 200, as the spec says); PUT 200;
DELETE of certificates/firewalls 204; DELETE of load balancers, zones and rrsets 201 with
`{"action": ...}` (hcloud 2.27 reads the LB's action; the spec's 204 predates it).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import cert_ops, dns_ops, firewall_ops, lb_ops, render, server_ops
from .actions import Action
from .errors import (
    HetznerError,
    invalid_input,
    json_error,
    method_not_allowed,
    not_found,
    rate_limit_exceeded,
    route_not_found,
    token_readonly,
    unauthorized,
)
from .pagination import filter_common, link_header, paginate, sort_items
from .state import HetznerState

log = logging.getLogger(__name__)

STATE: web.AppKey[HetznerState] = web.AppKey("hetzner_state", HetznerState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_METHODS = ("GET", "HEAD", "OPTIONS")
ACTION_STATUSES = ("running", "success", "error")
RESOURCE_TYPES = {
    "servers": "server",
    "networks": "network",
    "load_balancers": "load_balancer",
    "certificates": "certificate",
    "firewalls": "firewall",
    "zones": "zone",
}


# ---- plumbing ------------------------------------------------------------------------------------
def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=json.dumps)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body; empty means {} (hcloud sends no body for argument-less actions)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise json_error() from None
    if not isinstance(data, dict):
        raise json_error("the JSON body must be an object")
    return data


def _int_path(request: web.Request, key: str = "id") -> int:
    return int(request.match_info[key])


def _state(request: web.Request) -> HetznerState:
    return request.app[STATE]


def _list_reply(request: web.Request, data: dict[str, Any]) -> web.Response:
    headers = {}
    link = link_header(str(request.url.with_query(None)), data.get("meta", {}))
    if link:
        headers["Link"] = link
    return reply(data, headers=headers)


def _by_id(items: dict[int, Any], rid: int, what: str) -> Any:
    item = items.get(rid)
    if item is None:
        raise not_found(what, rid)
    return item


SORT_COMMON = {"id": lambda x: x.id, "name": lambda x: x.name, "created": lambda x: x.created}


def _list_resources(
    request: web.Request,
    items: list[Any],
    key: str,
    render_one: Callable[[Any], dict],
    *,
    labels: bool = True,
    max_per_page: int = 50,
) -> web.Response:
    q = request.query
    items = filter_common(
        sorted(items, key=lambda x: x.id), q, lambda x: x.name, (lambda x: x.labels) if labels else None
    )
    items = sort_items(items, q, SORT_COMMON)
    return _list_reply(request, paginate(items, q, key, render_one, max_per_page))


def make_middleware(state: HetznerState) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        correlation_id = uuid.uuid4().hex[:16]
        try:
            if not state.rate_limiter.take():
                raise rate_limit_exceeded()
            auth = request.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            token = token.strip()
            s = state.settings
            if scheme.lower() != "bearer" or not token:
                raise unauthorized()
            if token == s.token:
                pass
            elif s.read_only_token and token == s.read_only_token:
                if request.method not in READ_METHODS:
                    raise token_readonly()
            else:
                raise unauthorized()
            fault = state.take_fault(request.path.removeprefix("/v1"))
            if fault is not None:
                raise fault
            response = await handler(request)
        except HetznerError as exc:
            response = reply(exc.body(), exc.status, exc.headers)
        except web.HTTPException as exc:
            if exc.status == 405:
                err = method_not_allowed(request.method)
                allow = exc.headers.get("Allow")
                response = reply(err.body(), 405, {"Allow": allow} if allow else None)
            elif exc.status == 404:
                response = reply(route_not_found().body(), 404)
            elif exc.status == 413:
                response = reply(HetznerError(413, "json_error", "the request body is too large").body(), 413)
            else:
                response = reply(HetznerError(exc.status, "invalid_input", exc.reason).body(), exc.status)
        except Exception:
            log.exception("hetzner sandbox: unexpected error on %s %s", request.method, request.path)
            response = reply(
                HetznerError(500, "server_error", "error within the sandbox API backend").body(), 500
            )
        response.headers["X-Correlation-Id"] = correlation_id
        response.headers.update(state.rate_limiter.headers())
        return response

    return middleware


# ---- actions -------------------------------------------------------------------------------------
ACTION_SORT: dict[str, Callable[[Action], Any]] = {
    "id": lambda a: a.id,
    "command": lambda a: a.command,
    "status": lambda a: a.status,
    "started": lambda a: a.started,
    "finished": lambda a: a.finished or "",
}


def _filter_actions(request: web.Request, actions: list[Action], *, allow_ids: bool) -> list[Action]:
    q = request.query
    if allow_ids and q.getall("id", []):
        try:
            ids = {int(i) for i in q.getall("id")}
        except ValueError:
            raise invalid_input("id", "must be an integer") from None
        actions = [a for a in actions if a.id in ids]
    statuses = q.getall("status", [])
    bad = [s for s in statuses if s not in ACTION_STATUSES]
    if bad:
        raise invalid_input("status", f"must be one of {', '.join(ACTION_STATUSES)}")
    if statuses:
        actions = [a for a in actions if a.status in statuses]
    return sort_items(sorted(actions, key=lambda a: a.id), q, ACTION_SORT)


async def get_actions(request: web.Request) -> web.Response:
    """GET /actions?id=..: listing all actions was removed from the API (2025-01-30); ids are required."""
    st = _state(request)
    if not request.query.getall("id", []):
        raise invalid_input("id", "is required")
    actions = _filter_actions(request, list(st.actions.actions.values()), allow_ids=True)
    return reply({"actions": [st.actions.render(a) for a in actions]})


async def get_action(request: web.Request) -> web.Response:
    st = _state(request)
    action = _by_id(st.actions.actions, _int_path(request), "action")
    return reply({"action": st.actions.render(action)})


def _resource_actions(rtype: str) -> tuple[Handler, Handler, Handler, Handler]:
    """GET /{res}/actions, /{res}/actions/{id}, /{res}/{id}/actions, /{res}/{id}/actions/{action_id}."""

    def resolve(request: web.Request) -> int:
        st = _state(request)
        if rtype == "zone":
            return dns_ops.get_zone(st, request.match_info["id"]).id
        rid = _int_path(request)
        store = {
            "server": st.servers,
            "network": st.networks,
            "load_balancer": st.lbs,
            "certificate": st.certificates,
            "firewall": st.firewalls,
        }[rtype]
        if rid not in store:
            raise not_found(rtype.replace("_", " "), rid)
        return rid

    async def all_actions(request: web.Request) -> web.Response:
        st = _state(request)
        actions = _filter_actions(request, st.actions.for_resource(rtype), allow_ids=True)
        return _list_reply(request, paginate(actions, request.query, "actions", st.actions.render))

    async def one_action(request: web.Request) -> web.Response:
        st = _state(request)
        action = _by_id(st.actions.actions, _int_path(request), "action")
        if not any(t == rtype for _, t in action.resources):
            raise not_found("action", action.id)
        return reply({"action": st.actions.render(action)})

    async def resource_actions(request: web.Request) -> web.Response:
        st = _state(request)
        rid = resolve(request)
        actions = _filter_actions(request, st.actions.for_resource(rtype, rid), allow_ids=False)
        return _list_reply(request, paginate(actions, request.query, "actions", st.actions.render))

    async def resource_action(request: web.Request) -> web.Response:
        st = _state(request)
        rid = resolve(request)
        action = _by_id(st.actions.actions, _int_path(request, "action_id"), "action")
        if not action.touches(rtype, rid):
            raise not_found("action", action.id)
        return reply({"action": st.actions.render(action)})

    return all_actions, one_action, resource_actions, resource_action


# ---- catalogue, servers, networks ----------------------------------------------------------------
async def list_locations(request: web.Request) -> web.Response:
    st = _state(request)
    items = [_Named(loc.id, loc.name, loc) for loc in st.locations.values()]
    return _list_resources(request, items, "locations", lambda n: render.location(n.obj), labels=False)


async def get_location(request: web.Request) -> web.Response:
    st = _state(request)
    loc = next((loc for loc in st.locations.values() if loc.id == _int_path(request)), None)
    if loc is None:
        raise not_found("location", _int_path(request))
    return reply({"location": render.location(loc)})


async def list_lb_types(request: web.Request) -> web.Response:
    st = _state(request)
    items = [_Named(t.id, t.name, t) for t in st.lb_types.values()]
    return _list_resources(
        request, items, "load_balancer_types", lambda n: render.lb_type(st, n.obj), labels=False
    )


async def get_lb_type(request: web.Request) -> web.Response:
    st = _state(request)
    spec = next((t for t in st.lb_types.values() if t.id == _int_path(request)), None)
    if spec is None:
        raise not_found("load balancer type", _int_path(request))
    return reply({"load_balancer_type": render.lb_type(st, spec)})


async def list_server_types(request: web.Request) -> web.Response:
    st = _state(request)
    items = [_Named(t.id, t.name, t) for t in st.server_types.values()]
    return _list_resources(
        request, items, "server_types", lambda n: render.server_type(st, n.obj), labels=False
    )


async def get_server_type(request: web.Request) -> web.Response:
    st = _state(request)
    spec = next((t for t in st.server_types.values() if t.id == _int_path(request)), None)
    if spec is None:
        raise not_found("server type", _int_path(request))
    return reply({"server_type": render.server_type(st, spec)})


class _Named:
    """Adapter so catalogue entries go through the same filter/sort/paginate path."""

    def __init__(self, id: int, name: str, obj: Any) -> None:
        self.id, self.name, self.obj, self.created = id, name, obj, ""


async def list_servers(request: web.Request) -> web.Response:
    st = _state(request)
    statuses = request.query.getall("status", [])
    items = [s for s in st.servers.values() if not statuses or s.status in statuses]
    return _list_resources(request, items, "servers", lambda s: render.server(st, s))


async def get_server(request: web.Request) -> web.Response:
    st = _state(request)
    return reply({"server": render.server(st, _by_id(st.servers, _int_path(request), "server"))})


async def update_server(request: web.Request) -> web.Response:
    st = _state(request)
    server_ops.get(st, _int_path(request))
    server = server_ops.update(st, _int_path(request), await read_body(request))
    return reply({"server": render.server(st, server)})


async def list_networks(request: web.Request) -> web.Response:
    st = _state(request)
    return _list_resources(request, list(st.networks.values()), "networks", lambda n: render.network(st, n))


async def get_network(request: web.Request) -> web.Response:
    st = _state(request)
    return reply({"network": render.network(st, _by_id(st.networks, _int_path(request), "network"))})


# ---- load balancers ------------------------------------------------------------------------------
async def list_lbs(request: web.Request) -> web.Response:
    st = _state(request)
    return _list_resources(
        request, list(st.lbs.values()), "load_balancers", lambda lb: render.load_balancer(st, lb)
    )


async def create_lb(request: web.Request) -> web.Response:
    st = _state(request)
    lb, action = lb_ops.create(st, await read_body(request))
    return reply({"load_balancer": render.load_balancer(st, lb), "action": st.actions.render(action)}, 201)


async def get_lb(request: web.Request) -> web.Response:
    st = _state(request)
    return reply({"load_balancer": render.load_balancer(st, st.get_lb(_int_path(request)))})


async def update_lb(request: web.Request) -> web.Response:
    st = _state(request)
    lb_id = _int_path(request)
    st.get_lb(lb_id)
    lb = lb_ops.update(st, lb_id, await read_body(request))
    return reply({"load_balancer": render.load_balancer(st, lb)})


async def delete_lb(request: web.Request) -> web.Response:
    st = _state(request)
    action = lb_ops.delete(st, _int_path(request))
    return reply({"action": st.actions.render(action)}, 201)


async def lb_action(request: web.Request) -> web.Response:
    st = _state(request)
    fn = lb_ops.ACTIONS.get(request.match_info["command"])
    if fn is None:
        raise route_not_found()
    lb_id = _int_path(request)
    st.get_lb(lb_id)  # 404 before body problems, like the real API
    action = fn(st, lb_id, await read_body(request))
    return reply({"action": st.actions.render(action)}, 201)


async def lb_metrics(request: web.Request) -> web.Response:
    st = _state(request)
    q = request.query
    return reply(
        lb_ops.metrics(
            st, _int_path(request), q.getall("type", []), q.get("start"), q.get("end"), q.get("step")
        )
    )


# ---- certificates --------------------------------------------------------------------------------
async def list_certs(request: web.Request) -> web.Response:
    st = _state(request)
    types = request.query.getall("type", [])
    items = [c for c in st.certificates.values() if not types or c.type in types]
    return _list_resources(request, items, "certificates", lambda c: render.certificate(st, c))


async def create_cert(request: web.Request) -> web.Response:
    st = _state(request)
    cert, action = cert_ops.create(st, await read_body(request))
    return reply(
        {
            "certificate": render.certificate(st, cert),
            "action": st.actions.render(action) if action else None,
        },
        201,
    )


async def get_cert(request: web.Request) -> web.Response:
    st = _state(request)
    return reply({"certificate": render.certificate(st, cert_ops.get(st, _int_path(request)))})


async def update_cert(request: web.Request) -> web.Response:
    st = _state(request)
    cert_ops.get(st, _int_path(request))
    cert = cert_ops.update(st, _int_path(request), await read_body(request))
    return reply({"certificate": render.certificate(st, cert)})


async def delete_cert(request: web.Request) -> web.Response:
    cert_ops.delete(_state(request), _int_path(request))
    return web.Response(status=204)


async def retry_cert(request: web.Request) -> web.Response:
    st = _state(request)
    action = cert_ops.retry(st, _int_path(request))
    return reply({"action": st.actions.render(action)}, 201)


# ---- zones ---------------------------------------------------------------------------------------
async def list_zones(request: web.Request) -> web.Response:
    st = _state(request)
    mode = request.query.get("mode")
    items = [z for z in st.zones.values() if mode is None or z.mode == mode]
    return _list_resources(request, items, "zones", lambda z: render.zone(st, z))


async def create_zone(request: web.Request) -> web.Response:
    st = _state(request)
    z, action = dns_ops.create_zone(st, await read_body(request))
    return reply({"zone": render.zone(st, z), "action": st.actions.render(action)}, 201)


async def get_zone(request: web.Request) -> web.Response:
    st = _state(request)
    return reply({"zone": render.zone(st, dns_ops.get_zone(st, request.match_info["id"]))})


async def update_zone(request: web.Request) -> web.Response:
    st = _state(request)
    dns_ops.get_zone(st, request.match_info["id"])
    z = dns_ops.update_zone(st, request.match_info["id"], await read_body(request))
    return reply({"zone": render.zone(st, z)})


async def delete_zone(request: web.Request) -> web.Response:
    st = _state(request)
    action = dns_ops.delete_zone(st, request.match_info["id"])
    return reply({"action": st.actions.render(action)}, 201)


async def zone_action(request: web.Request) -> web.Response:
    st = _state(request)
    command = request.match_info["command"]
    fn = {"change_ttl": dns_ops.change_zone_ttl, "change_protection": dns_ops.change_zone_protection}.get(
        command
    )
    if fn is None:
        raise route_not_found()
    dns_ops.get_zone(st, request.match_info["id"])
    action = fn(st, request.match_info["id"], await read_body(request))
    return reply({"action": st.actions.render(action)}, 201)


RRSET_SORT = {"id": lambda r: r.id, "name": lambda r: r.name, "created": lambda r: r.id}


async def list_rrsets(request: web.Request) -> web.Response:
    st = _state(request)
    z = dns_ops.get_zone(st, request.match_info["id"])
    q = request.query
    types = q.getall("type", [])
    items = [
        r for r in sorted(z.rrsets.values(), key=lambda r: (r.name, r.type)) if not types or r.type in types
    ]
    items = filter_common(items, q, lambda r: r.name, lambda r: r.labels)
    items = sort_items(items, q, RRSET_SORT)
    return _list_reply(request, paginate(items, q, "rrsets", lambda r: render.rrset(z, r), max_per_page=100))


async def create_rrset(request: web.Request) -> web.Response:
    st = _state(request)
    dns_ops.get_zone(st, request.match_info["id"])
    z, rr, action = dns_ops.create_rrset(st, request.match_info["id"], await read_body(request))
    return reply({"rrset": render.rrset(z, rr), "action": st.actions.render(action)}, 201)


def _rr_path(request: web.Request) -> tuple[str, str, str]:
    m = request.match_info
    return m["id"], m["rr_name"], m["rr_type"]


async def get_rrset(request: web.Request) -> web.Response:
    st = _state(request)
    z, rr = dns_ops.get_rrset(st, *_rr_path(request))
    return reply({"rrset": render.rrset(z, rr)})


async def update_rrset(request: web.Request) -> web.Response:
    st = _state(request)
    dns_ops.get_rrset(st, *_rr_path(request))
    z, rr = dns_ops.update_rrset(st, *_rr_path(request), await read_body(request))
    return reply({"rrset": render.rrset(z, rr)})


async def delete_rrset(request: web.Request) -> web.Response:
    st = _state(request)
    action = dns_ops.delete_rrset(st, *_rr_path(request))
    return reply({"action": st.actions.render(action)}, 201)


async def rrset_action(request: web.Request) -> web.Response:
    st = _state(request)
    command = request.match_info["command"]
    if command not in dns_ops.RRSET_ACTIONS:
        raise route_not_found()
    zone, name, rtype = _rr_path(request)
    dns_ops.get_zone(st, zone)
    action = dns_ops.rrset_action(st, zone, name, rtype, command, await read_body(request))
    return reply({"action": st.actions.render(action)}, 200 if command == "update_records" else 201)


# ---- firewalls -----------------------------------------------------------------------------------
async def list_firewalls(request: web.Request) -> web.Response:
    st = _state(request)
    return _list_resources(
        request, list(st.firewalls.values()), "firewalls", lambda f: render.firewall(st, f)
    )


async def create_firewall(request: web.Request) -> web.Response:
    st = _state(request)
    fw, actions = firewall_ops.create(st, await read_body(request))
    return reply(
        {"firewall": render.firewall(st, fw), "actions": [st.actions.render(a) for a in actions]}, 201
    )


async def get_firewall(request: web.Request) -> web.Response:
    st = _state(request)
    return reply({"firewall": render.firewall(st, firewall_ops.get(st, _int_path(request)))})


async def update_firewall(request: web.Request) -> web.Response:
    st = _state(request)
    firewall_ops.get(st, _int_path(request))
    fw = firewall_ops.update(st, _int_path(request), await read_body(request))
    return reply({"firewall": render.firewall(st, fw)})


async def delete_firewall(request: web.Request) -> web.Response:
    firewall_ops.delete(_state(request), _int_path(request))
    return web.Response(status=204)


async def firewall_action(request: web.Request) -> web.Response:
    st = _state(request)
    fn = {
        "set_rules": firewall_ops.set_rules,
        "apply_to_resources": firewall_ops.apply_to_resources,
        "remove_from_resources": firewall_ops.remove_from_resources,
    }.get(request.match_info["command"])
    if fn is None:
        raise route_not_found()
    firewall_ops.get(st, _int_path(request))
    actions = fn(st, _int_path(request), await read_body(request))
    return reply({"actions": [st.actions.render(a) for a in actions]}, 201)


# ---- the app -------------------------------------------------------------------------------------
ID = r"{id:\d+}"
ZONE = "{id}"


def build_app(state: HetznerState) -> web.Application:
    """The aiohttp application; hcloud talks to it with api_endpoint="http://HOST:PORT/v1"."""
    app = web.Application(middlewares=[make_middleware(state)], client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    r = app.router
    v = "/v1"
    r.add_get(f"{v}/actions", get_actions)
    r.add_get(f"{v}/actions/{ID}", get_action)
    for res, rtype in RESOURCE_TYPES.items():
        all_a, one_a, res_a, res_one = _resource_actions(rtype)
        ident = ZONE if rtype == "zone" else ID
        r.add_get(f"{v}/{res}/actions", all_a)
        r.add_get(f"{v}/{res}/actions/{ID}", one_a)
        r.add_get(f"{v}/{res}/{ident}/actions", res_a)
        r.add_get(f"{v}/{res}/{ident}/actions/{{action_id:\\d+}}", res_one)

    r.add_get(f"{v}/locations", list_locations)
    r.add_get(f"{v}/locations/{ID}", get_location)
    r.add_get(f"{v}/load_balancer_types", list_lb_types)
    r.add_get(f"{v}/load_balancer_types/{ID}", get_lb_type)
    r.add_get(f"{v}/server_types", list_server_types)
    r.add_get(f"{v}/server_types/{ID}", get_server_type)
    r.add_get(f"{v}/servers", list_servers)
    r.add_get(f"{v}/servers/{ID}", get_server)
    r.add_put(f"{v}/servers/{ID}", update_server)
    r.add_get(f"{v}/networks", list_networks)
    r.add_get(f"{v}/networks/{ID}", get_network)

    r.add_get(f"{v}/load_balancers", list_lbs)
    r.add_post(f"{v}/load_balancers", create_lb)
    r.add_get(f"{v}/load_balancers/{ID}", get_lb)
    r.add_put(f"{v}/load_balancers/{ID}", update_lb)
    r.add_delete(f"{v}/load_balancers/{ID}", delete_lb)
    r.add_post(f"{v}/load_balancers/{ID}/actions/{{command:[a-z_]+}}", lb_action)
    r.add_get(f"{v}/load_balancers/{ID}/metrics", lb_metrics)

    r.add_get(f"{v}/certificates", list_certs)
    r.add_post(f"{v}/certificates", create_cert)
    r.add_get(f"{v}/certificates/{ID}", get_cert)
    r.add_put(f"{v}/certificates/{ID}", update_cert)
    r.add_delete(f"{v}/certificates/{ID}", delete_cert)
    r.add_post(f"{v}/certificates/{ID}/actions/retry", retry_cert)

    r.add_get(f"{v}/zones", list_zones)
    r.add_post(f"{v}/zones", create_zone)
    r.add_get(f"{v}/zones/{ZONE}", get_zone)
    r.add_put(f"{v}/zones/{ZONE}", update_zone)
    r.add_delete(f"{v}/zones/{ZONE}", delete_zone)
    r.add_post(f"{v}/zones/{ZONE}/actions/{{command:[a-z_]+}}", zone_action)
    r.add_get(f"{v}/zones/{ZONE}/rrsets", list_rrsets)
    r.add_post(f"{v}/zones/{ZONE}/rrsets", create_rrset)
    rr = f"{v}/zones/{ZONE}/rrsets/{{rr_name}}/{{rr_type}}"
    r.add_get(rr, get_rrset)
    r.add_put(rr, update_rrset)
    r.add_delete(rr, delete_rrset)
    r.add_post(f"{rr}/actions/{{command:[a-z_]+}}", rrset_action)

    r.add_get(f"{v}/firewalls", list_firewalls)
    r.add_post(f"{v}/firewalls", create_firewall)
    r.add_get(f"{v}/firewalls/{ID}", get_firewall)
    r.add_put(f"{v}/firewalls/{ID}", update_firewall)
    r.add_delete(f"{v}/firewalls/{ID}", delete_firewall)
    r.add_post(f"{v}/firewalls/{ID}/actions/{{command:[a-z_]+}}", firewall_action)
    return app
