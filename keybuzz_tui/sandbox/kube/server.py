"""The Kubernetes API over HTTPS: routing, content negotiation, auth, watch streams and logs.

This layer only translates HTTP into KubeApi calls and back; every semantic decision lives in
api.py. Anything a client sends that the server cannot take is answered with a Status object and
a 4xx code; an unexpected exception becomes a 500 Status and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml
from aiohttp import web

from . import discovery, errors, openapi, tables
from .api import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, SMP, Caller, KubeApi
from .auth import Authorizer, User
from .errors import ApiError
from .registry import ResourceType, lookup
from .store import Entry, Event, dumps

log = logging.getLogger("keybuzz.sandbox.kube")

MAX_BODY = 3 * 1024 * 1024
JSON_CT = "application/json"
VERB = web.RequestKey("kb_verb", str)
BOOKMARK_INTERVAL = 5.0


@dataclass
class Faults:
    """The flaky-api scenario: seeded failures so a run can be replayed exactly."""

    error_rate: float = 0.0  # share of non-watch requests answered 500/503/504
    slow_rate: float = 0.0  # share of requests delayed by slow_seconds
    slow_seconds: float = 2.0
    watch_drop_after: float | None = None  # seconds after which a watch is closed by the server
    seed: int = 1
    rand: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rand = random.Random(self.seed)


@dataclass
class RequestStats:
    """Server-side latency per verb, for bench/ (the sandbox must never be the bottleneck)."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0

    def add(self, verb: str, seconds: float) -> None:
        self.requests += 1
        bucket = self.samples[verb]
        bucket.append(seconds)
        if len(bucket) > 100_000:
            del bucket[:50_000]

    def quantile(self, verb: str, q: float) -> float | None:
        data = sorted(self.samples.get(verb, ()))
        if not data:
            return None
        return data[min(len(data) - 1, int(q * len(data)))]

    def reset(self) -> None:
        self.samples.clear()
        self.requests = 0


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


class KubeServer:
    def __init__(
        self,
        api: KubeApi,
        authz: Authorizer,
        version_info: dict[str, Any],
        *,
        server_address: str = "127.0.0.1:6443",
        logs: Any = None,
        faults: Faults | None = None,
    ) -> None:
        self.api = api
        self.authz = authz
        self.version_info = version_info
        self.server_address = server_address
        self.logs = logs
        self.faults = faults or Faults()
        self.stats = RequestStats()
        self._closing = False

    # --- application -------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY + 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def shutdown(self) -> None:
        self._closing = True
        self.api.store.close_all_watches()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        verb = request.method
        try:
            return await handler(request)
        except ApiError as e:
            return self._status(e)
        except web.HTTPException as e:
            if e.status == 413:
                return self._status(errors.too_large(MAX_BODY))
            return self._status(ApiError(e.status, e.reason or "Unknown", e.text or e.reason or ""))
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # never crash the server on a bug: answer 500 and log it
            log.exception("internal error on %s %s", request.method, request.path)
            return self._status(errors.internal(f"{type(e).__name__}: {e}"))
        finally:
            v = request.get(VERB, verb)
            if v != "WATCH":  # a watch lasts as long as the client wants; its setup is timed in _watch
                self.stats.add(v, time.perf_counter() - started)

    def _status(self, e: ApiError) -> web.Response:
        return web.Response(
            body=dumps(e.status()), status=e.code, content_type=JSON_CT, headers=e.headers or None
        )

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        return web.Response(body=dumps(obj), status=status, content_type=JSON_CT)

    @staticmethod
    def _raw(body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type=JSON_CT)

    # --- dispatch ----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        user = self.authz.authenticate(request.headers.get("Authorization"))
        if user is None:
            raise errors.unauthorized()
        await self._inject_faults(request)
        segs = [unquote(s) for s in path.strip("/").split("/") if s]
        if path == "/version" or path == "/version/":
            return self._json(self.version_info)
        if path == "/metrics":
            return web.Response(text=self._metrics(), content_type="text/plain")
        if segs[:1] == ["openapi"]:
            return self._openapi(segs)
        if self._is_discovery(segs) and not discovery.accepts_plain(request.headers.get("Accept")):
            raise errors.not_acceptable(request.headers.get("Accept", ""))
        if not segs:
            return self._json({"paths": ["/api", "/api/v1", "/apis", *[f"/apis/{g}" for g in discovery.GROUPS if g], "/healthz", "/livez", "/metrics", "/openapi/v3", "/readyz", "/version"]})
        if segs == ["api"]:
            return self._json(discovery.api_versions(self.server_address))
        if segs == ["apis"]:
            return self._json(discovery.group_list())
        if segs[0] == "apis" and len(segs) == 2:
            g = discovery.group(segs[1])
            if g is None:
                raise self._not_found_path(path)
            return self._json(g)
        if segs[0] == "api" and len(segs) == 2:
            rl = discovery.resource_list("", segs[1])
            if rl is None:
                raise self._not_found_path(path)
            return self._json(rl)
        if segs[0] == "apis" and len(segs) == 3:
            rl = discovery.resource_list(segs[1], segs[2])
            if rl is None:
                raise self._not_found_path(path)
            return self._json(rl)
        return await self._resource(request, user, segs)

    @staticmethod
    def _is_discovery(segs: list[str]) -> bool:
        """/api, /apis, /api/VERSION, /apis/GROUP and /apis/GROUP/VERSION: negotiated documents."""
        return (segs[:1] == ["api"] and len(segs) <= 2) or (segs[:1] == ["apis"] and len(segs) <= 3)

    @staticmethod
    def _not_found_path(path: str) -> ApiError:
        return ApiError(404, "NotFound", "the server could not find the requested resource", {})

    async def _inject_faults(self, request: web.Request) -> None:
        f = self.faults
        watching = request.query.get("watch") in ("1", "true", "True")
        if f.slow_rate and f.rand.random() < f.slow_rate:
            await self.api.clock.sleep(f.slow_seconds)
        if f.error_rate and not watching and f.rand.random() < f.error_rate:
            choice = f.rand.choice([500, 503, 504])
            if choice == 500:
                raise errors.internal("etcdserver: request timed out")
            if choice == 503:
                raise errors.unavailable()
            raise errors.timeout()

    def _openapi(self, segs: list[str]) -> web.Response:
        if segs == ["openapi", "v3"]:
            return self._json(openapi.openapi_v3_index())
        if segs[:2] == ["openapi", "v3"] and len(segs) > 2:
            doc = openapi.openapi_v3_document("/".join(segs[2:]))
            if doc is not None:
                return self._raw(doc)
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _parse_target(self, segs: list[str]) -> Target:
        if segs[0] == "api" and len(segs) >= 3:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis" and len(segs) >= 4:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise self._not_found_path("/" + "/".join(segs))
        if rest and rest[0] == "watch":  # deprecated /watch/ prefix
            rest = rest[1:]
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and lookup(group, version, rest[2]) is not None:
            ns, rest = rest[1], rest[2:]
        if not rest:
            raise self._not_found_path("/" + "/".join(segs))
        rt = lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise self._not_found_path("/" + "/".join(segs))
        if ns is not None and not rt.namespaced:
            raise self._not_found_path("/" + "/".join(segs))
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub is not None and sub not in rt.subresources:
            raise self._not_found_path("/" + "/".join(segs))
        return Target(rt, ns, name, sub)

    # --- resources ---------------------------------------------------------------------------

    async def _resource(self, request: web.Request, user: User, segs: list[str]) -> web.StreamResponse:
        t = self._parse_target(segs)
        q = request.query
        method = request.method
        watch = q.get("watch") in ("1", "true", "True") or "watch" in segs[:4]
        if method == "GET":
            verb = "get" if t.name else ("watch" if watch else "list")
        elif method == "POST":
            verb = "create"
        elif method == "PUT":
            verb = "update"
        elif method == "PATCH":
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if t.name else "deletecollection"
        else:
            raise errors.method_not_allowed(method)
        request[VERB] = verb.upper()
        if t.sub in ("binding", "eviction"):
            if method != "POST":
                raise errors.method_not_allowed(method)
        if t.rt.verbs and verb not in t.rt.verbs and t.sub is None:
            raise errors.method_not_allowed(method)
        resource = f"{t.rt.plural}/{t.sub}" if t.sub else t.rt.plural
        if not self.authz.allowed(user, verb, t.rt.group, resource, t.namespace, t.name):
            raise errors.forbidden(t.rt, t.name, user.name, verb if not t.sub else f"{verb}", t.namespace)
        caller = Caller(user=user.name, manager=self._manager(request))
        dry_run = q.get("dryRun") == "All"
        if "dryRun" in q and q.get("dryRun") not in ("All", ""):
            raise errors.bad_request(f'Invalid dryRun value: "{q.get("dryRun")}". Only "All" is supported')

        if t.rt.kind == "SelfSubjectAccessReview":
            if method != "POST":
                raise errors.method_not_allowed(method)
            body = await self._body(request)
            if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
                raise errors.invalid(
                    "SelfSubjectAccessReview", "authorization.k8s.io", "",
                    [errors.FieldError("Invalid", "spec.resourceAttributes", "exactly one of nonResourceAttributes or resourceAttributes must be specified", "null")],
                )
            out = {
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": body["spec"],
                "status": self.authz.review(user, body["spec"]),
            }
            return self._json(out, 201)

        if verb == "get":
            return await self._get(request, t)
        if verb in ("list", "watch"):
            if watch:
                return await self._watch(request, t)
            return self._list(request, t)
        if verb == "create":
            return await self._create(request, t, caller, dry_run)
        if verb == "update":
            body = await self._body(request)
            if t.sub == "scale":
                return self._set_scale(t, body, caller, dry_run)
            obj = self.api.update(t.rt, t.namespace, t.name or "", body, caller, subresource=t.sub, dry_run=dry_run)
            return self._json(obj)
        if verb == "patch":
            return await self._patch(request, t, caller, dry_run)
        if verb == "delete":
            return await self._delete(request, t, dry_run)
        return await self._delete_collection(request, t, dry_run)

    def _manager(self, request: web.Request) -> str:
        fm = request.query.get("fieldManager")
        if fm:
            return fm
        ua = request.headers.get("User-Agent", "")
        # the apiserver uses the user agent up to the first "/" as the default manager name
        return ua.split("/")[0] if ua else "unknown"

    async def _body(self, request: web.Request) -> Any:
        if request.content_length and request.content_length > MAX_BODY:
            raise errors.too_large(MAX_BODY)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise errors.too_large(MAX_BODY) from None
        if len(raw) > MAX_BODY:
            raise errors.too_large(MAX_BODY)
        ctype = (request.content_type or "").lower()
        if "protobuf" in ctype or "cbor" in ctype:
            raise errors.unsupported_media(
                ctype,
                ["application/json", "application/yaml", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"],
            )
        if not raw.strip():
            raise errors.bad_request("the body of the request was empty")
        text = raw.decode("utf-8", errors="replace")
        if "yaml" in ctype:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise errors.bad_request(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None
            return data
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {e.msg} at line {e.lineno} column {e.colno}"
            ) from None

    # --- get / list --------------------------------------------------------------------------

    async def _get(self, request: web.Request, t: Target) -> web.StreamResponse:
        assert t.name is not None
        if t.sub == "log":
            return await self._logs(request, t)
        if t.sub == "scale":
            return self._json(self._scale(self.api.get(t.rt, t.namespace, t.name)))
        entry = self.api.store.entry(t.rt, t.namespace if t.rt.namespaced else None, t.name)
        if entry is None:
            raise errors.not_found(t.rt, t.name)
        table = tables.wants_table(request.headers.get("Accept", ""))
        if table:
            return self._json(self._table(request, t.rt, [entry.obj], table))
        return self._raw(entry.raw)

    def _table(
        self,
        request: web.Request,
        rt: ResourceType,
        objs: list[dict[str, Any]],
        version: str,
        list_meta: dict[str, Any] | None = None,
        *,
        no_headers: bool = False,
    ) -> dict[str, Any]:
        return tables.to_table(
            rt,
            objs,
            include_object=request.query.get("includeObject", ""),
            list_meta=list_meta,
            table_version=version,
            no_headers=no_headers,
        )

    def _list(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        limit = _int_param(q, "limit")
        page = self.api.list(
            t.rt,
            t.namespace,
            label_selector=q.get("labelSelector") or None,
            field_selector=q.get("fieldSelector") or None,
            limit=limit,
            continue_token=q.get("continue") or None,
        )
        meta: dict[str, Any] = {"resourceVersion": str(page.rv)}
        if page.continue_token:
            meta["continue"] = page.continue_token
            meta["remainingItemCount"] = page.remaining
        table = tables.wants_table(request.headers.get("Accept", ""))
        if table:
            return self._json(self._table(request, t.rt, [e.obj for e in page.entries], table, meta))
        head = dumps({"kind": t.rt.list_kind, "apiVersion": t.rt.api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(e.raw for e in page.entries) + b"]}"
        return self._raw(body)

    # --- watch -------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        setup_started = time.perf_counter()
        q = request.query
        matches = self.api.matcher(t.rt, q.get("labelSelector") or None, q.get("fieldSelector") or None)
        match_fn = matches or (lambda _o: True)
        rv_param = q.get("resourceVersion", "")
        send_initial = q.get("sendInitialEvents") in ("true", "1")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout = _int_param(q, "timeoutSeconds")
        if send_initial:
            if q.get("resourceVersionMatch") != "NotOlderThan":
                raise errors.invalid(
                    "ListOptions", "meta.k8s.io", "",
                    [errors.FieldError("Forbidden", "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")],
                )
            if not bookmarks:
                raise errors.invalid(
                    "ListOptions", "meta.k8s.io", "",
                    [errors.FieldError("Forbidden", "allowWatchBookmarks", "allowWatchBookmarks must be set to true when sendInitialEvents is specified")],
                )
        since: int | None = None
        initial: list[Entry] = []
        ns = t.namespace if t.rt.namespaced else None
        expired: ApiError | None = None
        if send_initial or rv_param in ("", "0"):
            initial = [e for e in self.api.store.entries(t.rt, ns) if match_fn(e.obj)]
            watcher, backlog = self.api.store.watch(t.rt, ns, match_fn, None)
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise errors.bad_request(f'invalid resource version: "{rv_param}"') from None
            try:
                watcher, backlog = self.api.store.watch(t.rt, ns, match_fn, since)
            except ApiError as e:
                expired = e
                watcher, backlog = None, []  # type: ignore[assignment]

        table = tables.wants_table(request.headers.get("Accept", ""))
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON_CT, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        first_table = [True]

        def frame(etype: str, obj: dict[str, Any], raw: bytes | None) -> bytes:
            if table and etype in ("ADDED", "MODIFIED", "DELETED"):
                tbl = self._table(request, t.rt, [obj], table, no_headers=not first_table[0])
                first_table[0] = False
                payload = dumps(tbl)
            else:
                payload = raw if raw is not None else dumps(obj)
            return b'{"type":"' + etype.encode() + b'","object":' + payload + b"}\n"

        try:
            if expired is not None:
                await resp.write(frame("ERROR", expired.status(), None))
                return resp
            for e in initial:
                await resp.write(frame("ADDED", e.obj, e.raw))
            if send_initial:
                bm = self._bookmark(t.rt, self.api.store.rv, initial_end=True)
                await resp.write(frame("BOOKMARK", bm, None))
            for ev in backlog:
                await resp.write(frame(ev.type, ev.obj, ev.entry.raw))
            self.stats.add("WATCH", time.perf_counter() - setup_started)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout else None  # a client timeout is wall-clock, never scaled
            if self.faults.watch_drop_after:
                drop = loop.time() + self.api.clock.scaled(self.faults.watch_drop_after)
                deadline = min(deadline, drop) if deadline else drop
            last_rv = self.api.store.rv
            while not self._closing:
                wait = BOOKMARK_INTERVAL if bookmarks else 30.0
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except TimeoutError:
                    if bookmarks:
                        await resp.write(frame("BOOKMARK", self._bookmark(t.rt, max(last_rv, self.api.store.rv)), None))
                    elif request.transport is None or request.transport.is_closing():
                        break
                    continue
                if ev is None:
                    break
                last_rv = ev.rv
                await resp.write(frame(ev.type, ev.obj, ev.entry.raw))
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if watcher is not None:
                self.api.store.unwatch(watcher)
        try:
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, RuntimeError):
            pass
        return resp

    @staticmethod
    def _bookmark(rt: ResourceType, rv: int, *, initial_end: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

    # --- writes ------------------------------------------------------------------------------

    async def _create(self, request: web.Request, t: Target, caller: Caller, dry_run: bool) -> web.Response:
        body = await self._body(request)
        if t.sub == "binding":
            return self._bind(t, body)
        if t.sub == "eviction":
            obj, _done = self.api.delete(t.rt, t.namespace, t.name or "", dry_run=dry_run)
            return self._json(_success(t.rt, obj), 201)
        if t.name is not None:
            raise errors.method_not_allowed("POST")
        obj = self.api.create(t.rt, t.namespace, body, caller, dry_run=dry_run)
        return self._json(obj, 201)

    def _bind(self, t: Target, body: Any) -> web.Response:
        pod = self.api.get(t.rt, t.namespace, t.name or "")
        target = (body or {}).get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid("Binding", "", t.name or "", [errors.FieldError("Required", "target.name", "")])
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict(
                t.rt, t.name or "", f'pod {t.name} is already assigned to node "{pod["spec"]["nodeName"]}"'
            )
        new = json.loads(json.dumps(pod))
        new["spec"]["nodeName"] = node
        self.api.write(t.rt, new, manager="kube-scheduler")
        return self._json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    async def _patch(self, request: web.Request, t: Target, caller: Caller, dry_run: bool) -> web.Response:
        ctype = (request.content_type or "").lower()
        if ctype not in (JSON_PATCH, MERGE_PATCH, SMP, APPLY_PATCH):
            raise errors.unsupported_media(ctype, [JSON_PATCH, MERGE_PATCH, SMP, APPLY_PATCH])
        if ctype == APPLY_PATCH and not request.query.get("fieldManager"):
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]},
            )
        body = await self._body(request)
        force = request.query.get("force") in ("true", "1")
        if t.sub == "scale":
            current = self._scale(self.api.get(t.rt, t.namespace, t.name or ""))
            from . import patching

            patched = patching.merge_patch(current, body) if ctype != JSON_PATCH else patching.json_patch(current, body)
            return self._set_scale(t, patched, caller, dry_run)
        obj, created = self.api.patch(
            t.rt, t.namespace, t.name or "", ctype, body, caller, subresource=t.sub, force=force, dry_run=dry_run
        )
        return self._json(obj, 201 if created else 200)

    async def _delete(self, request: web.Request, t: Target, dry_run: bool) -> web.Response:
        opts: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    opts = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise errors.bad_request(f"couldn't get version/kind; json parse error: {e.msg}") from None
                if not isinstance(opts, dict):
                    raise errors.bad_request("DeleteOptions must be an object")
        q = request.query
        propagation = q.get("propagationPolicy") or opts.get("propagationPolicy")
        if opts.get("orphanDependents") is True or q.get("orphanDependents") == "true":
            propagation = "Orphan"
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid(
                "DeleteOptions", "meta.k8s.io", "",
                [errors.FieldError("NotSupported", "propagationPolicy", 'supported values: "Foreground", "Background", "Orphan", "nil"', propagation)],
            )
        grace = _int_param(q, "gracePeriodSeconds")
        if grace is None and isinstance(opts.get("gracePeriodSeconds"), int):
            grace = opts["gracePeriodSeconds"]
        obj, done = self.api.delete(
            t.rt,
            t.namespace,
            t.name or "",
            propagation=propagation,
            grace_period=grace,
            preconditions=opts.get("preconditions"),
            dry_run=dry_run or q.get("dryRun") == "All" or opts.get("dryRun") == ["All"],
        )
        if done and not t.rt.returns_deleted_object:
            return self._json(_success(t.rt, obj))
        return self._json(obj)

    async def _delete_collection(self, request: web.Request, t: Target, dry_run: bool) -> web.Response:
        q = request.query
        page = self.api.list(
            t.rt, t.namespace, label_selector=q.get("labelSelector") or None, field_selector=q.get("fieldSelector") or None
        )
        for e in page.entries:
            m = e.obj["metadata"]
            try:
                self.api.delete(t.rt, m.get("namespace"), m["name"], dry_run=dry_run)
            except ApiError as err:
                if err.code != 404:
                    raise
        return self._json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    # --- scale -------------------------------------------------------------------------------

    @staticmethod
    def _scale(obj: dict[str, Any]) -> dict[str, Any]:
        from .selectors import selector_from_label_selector

        meta = obj["metadata"]
        sel = (obj.get("spec") or {}).get("selector") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": str(selector_from_label_selector(sel)),
            },
        }

    def _set_scale(self, t: Target, body: Any, caller: Caller, dry_run: bool) -> web.Response:
        replicas = ((body or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", t.name or "", [errors.FieldError("Invalid", "spec.replicas", "must be greater than or equal to 0", replicas)])
        obj = json.loads(json.dumps(self.api.get(t.rt, t.namespace, t.name or "")))
        obj["spec"]["replicas"] = replicas
        new = self.api.update(t.rt, t.namespace, t.name or "", obj, caller, dry_run=dry_run)
        return self._json(self._scale(new))

    # --- logs --------------------------------------------------------------------------------

    async def _logs(self, request: web.Request, t: Target) -> web.StreamResponse:
        pod = self.api.get(t.rt, t.namespace, t.name or "")
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        q = request.query
        container = q.get("container")
        if not container:
            if len(containers) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {t.name}, choose one of: [{' '.join(containers)}]"
                )
            container = containers[0]
        all_names = containers + [c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []]
        if container not in all_names:
            raise errors.bad_request(f"container {container} is not valid for pod {t.name}")
        previous = q.get("previous") in ("true", "1")
        follow = q.get("follow") in ("true", "1")
        tail = _int_param(q, "tailLines")
        timestamps = q.get("timestamps") in ("true", "1")
        if self.logs is None:
            raise errors.bad_request(f'container "{container}" in pod "{t.name}" is waiting to start: ContainerCreating')
        lines = self.logs.read(pod, container, previous=previous)  # raises ApiError when not available
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []

        def fmt(ts: str, line: str) -> str:
            return f"{ts} {line}\n" if timestamps else f"{line}\n"

        if not follow:
            return web.Response(text="".join(fmt(ts, ln) for ts, ln in lines), content_type="text/plain")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for ts, ln in lines:
                await resp.write(fmt(ts, ln).encode())
            async for ts, ln in self.logs.follow(pod, container):
                await resp.write(fmt(ts, ln).encode())
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        return resp

    # --- metrics -----------------------------------------------------------------------------

    def _metrics(self) -> str:
        out = ["# HELP sandbox_request_duration_seconds server-side latency by verb", "# TYPE sandbox_request_duration_seconds summary"]
        for verb in sorted(self.stats.samples):
            for q in (0.5, 0.9, 0.99):
                v = self.stats.quantile(verb, q)
                out.append(f'sandbox_request_duration_seconds{{verb="{verb}",quantile="{q}"}} {v:.6f}')
            out.append(f'sandbox_request_duration_seconds_count{{verb="{verb}"}} {len(self.stats.samples[verb])}')
        out.append(f"sandbox_requests_total {self.stats.requests}")
        return "\n".join(out) + "\n"


def _int_param(q: Any, name: str) -> int | None:
    v = q.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{v}": strconv.ParseInt: parsing "{v}": invalid syntax') from None


def _success(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    details: dict[str, Any] = {"name": meta.get("name"), "kind": rt.plural, "uid": meta.get("uid")}
    if rt.group:
        details["group"] = rt.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


__all__ = ["Faults", "KubeServer", "RequestStats", "Event"]
