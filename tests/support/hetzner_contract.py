"""Validate recorded sandbox replies against the official Hetzner spec plus the overlay.

The spec is read from the shared folder at run time (never copied into the repo); tests skip
when it is absent. Paths are matched to the spec's templates, literal segments first, so
`/zones/actions` is not taken for `/zones/{id_or_name}`.

Error replies are checked beyond the spec's generic 4xx schema (`{error: {code, message}}`, which
any code passes): the (status, code) pair must be in the spec's error catalogue (info.description,
"Error Codes") or in the operation's own "Operation specific errors" table, `details` must have
the shape the catalogue documents for its code, a 429 must carry the RateLimit-* headers the
"Rate Limiting" section describes, and a 405 must carry `Allow` with the path's methods.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

from support.hetzner_overlay import ERROR_DETAILS, REPLACE, tighten

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = (
    Path(os.environ.get("KEYBUZZ_SHARED_SPECS", REPO.parent / "shared" / "specs"))
    / "hetzner"
    / "cloud.spec.json"
)


@dataclass
class Recorded:
    method: str
    path: str  # without the /v1 prefix
    status: int
    body: Any  # parsed JSON or None
    headers: dict[str, str] | None = None  # lower-cased names; None: not recorded
    at: float = 0.0  # time.time() when the reply arrived


class Recorder:
    """A requests response hook that records every /v1 reply of a session."""

    def __init__(self) -> None:
        self.replies: list[Recorded] = []

    def hook(self, resp: Any, *args: object, **kwargs: object) -> None:
        from urllib.parse import urlparse

        path = urlparse(resp.url).path
        assert path.startswith("/v1")
        body = json.loads(resp.content) if resp.content else None
        headers = {k.lower(): v for k, v in resp.headers.items()}
        method = resp.request.method or "GET"
        self.replies.append(Recorded(method, path[3:], resp.status_code, body, headers, time.time()))

    def attach(self, session: Any) -> None:
        session.hooks["response"].append(self.hook)

    def seen(self) -> set[tuple[str, str | None, int]]:
        return {(r.method.upper(), match_template(r.path), r.status) for r in self.replies}


@functools.lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def _resolve(node: Any, spec: dict[str, Any], depth: int = 0) -> Any:
    if depth > 50:
        raise RecursionError("spec $ref nesting too deep")
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(copy.deepcopy(target), spec, depth + 1)
        # `discriminator` maps to components by $ref; plain oneOf checks the same variants (and
        # the tightened inline copies), so it is dropped.
        return {k: _resolve(v, spec, depth) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_resolve(v, spec, depth) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in load_spec()["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        out.append((re.compile(rx), template))
    out.sort(key=lambda t: (t[1].count("{"), -len(t[1])))
    return out


def match_template(path: str) -> str | None:
    return next((tpl for rx, tpl in _templates() if rx.match(path)), None)


@functools.cache
def response_schema(method: str, template: str, status: str) -> dict[str, Any] | None:
    spec = load_spec()
    if (method, template, status) in REPLACE:
        return tighten(_resolve(REPLACE[(method, template, status)](spec), spec))
    op = spec["paths"].get(template, {}).get(method)
    if op is None:
        return None
    responses = op["responses"]
    resp = responses.get(status) or responses.get(f"{status[0]}xx")
    if resp is None:
        return None
    resp = _resolve(resp, spec)
    content = resp.get("content", {}).get("application/json")
    if content is None:
        return {"__empty__": True}
    return tighten(content["schema"])


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ERROR_ROW = re.compile(r"^\|\s*`(\d{3})`\s*\|\s*`([a-z_]+)`\s*\|", re.M)


@functools.lru_cache(maxsize=1)
def error_catalogue() -> frozenset[tuple[int, str]]:
    """(status, code) pairs of the spec's general error table (info.description, "Error Codes")."""
    return frozenset((int(st), code) for st, code in _ERROR_ROW.findall(load_spec()["info"]["description"]))


@functools.cache
def operation_errors(method: str, template: str) -> frozenset[tuple[int, str]]:
    """(status, code) pairs of one operation's "Operation specific errors" table."""
    op = load_spec()["paths"].get(template, {}).get(method.lower()) or {}
    return frozenset((int(st), code) for st, code in _ERROR_ROW.findall(op.get("description", "")))


def path_methods(template: str) -> set[str]:
    return {m.upper() for m in load_spec()["paths"].get(template, {}) if m in HTTP_METHODS}


def _generic_error_schema(template: str) -> dict[str, Any] | None:
    """The 4xx schema of any operation on the path: what a 405 on that path must still look like."""
    for method in sorted(path_methods(template)):
        schema = response_schema(method.lower(), template, "405")
        if schema is not None:
            return schema
    return None


def _check_error(rec: Recorded, template: str, where: str) -> list[str]:
    body = rec.body if isinstance(rec.body, dict) else {}
    err = body.get("error")
    if not isinstance(err, dict):
        return [f"{where}: no error object"]
    code = err.get("code")
    allowed = error_catalogue() | operation_errors(rec.method, template)
    out = []
    if (rec.status, code) not in allowed:
        documented = sorted(c for s, c in allowed if s == rec.status)
        out.append(f"{where}: code {code!r} is not documented with status {rec.status} (documented: {documented})")
    shape = ERROR_DETAILS.get(str(code))
    if shape is not None:
        errors = list(OAS30Validator(shape).iter_errors(err.get("details")))
        out += [f"{where}: details of {code}: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:3]]
    if rec.headers is not None:
        out += _check_headers(rec, template, where)
    return out


def _check_headers(rec: Recorded, template: str, where: str) -> list[str]:
    h = rec.headers or {}
    out = []
    if rec.status == 429:
        values = {}
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
            raw = h.get(name)
            if raw is None or not raw.isdigit():
                out.append(f"{where}: header {name} missing or not an integer: {raw!r}")
            else:
                values[name] = int(raw)
        if values.get("ratelimit-remaining", 0) != 0:
            out.append(f"{where}: RateLimit-Remaining is {values['ratelimit-remaining']} on a 429")
        if "ratelimit-reset" in values and values["ratelimit-reset"] < int(rec.at or time.time()):
            out.append(f"{where}: RateLimit-Reset {values['ratelimit-reset']} is in the past")
    if rec.status == 405:
        allow = {m.strip().upper() for m in h.get("allow", "").split(",") if m.strip()}
        want = path_methods(template)
        if not want <= allow or not allow <= want | {"HEAD"}:
            out.append(f"{where}: Allow {sorted(allow)} does not list the path's methods {sorted(want)}")
    return out


def validate(rec: Recorded) -> list[str]:
    """Problems with one reply (empty list when it conforms)."""
    template = match_template(rec.path)
    if template is None:
        return [f"{rec.method.upper()} {rec.path}: no such path in the spec"]
    schema = response_schema(rec.method.lower(), template, str(rec.status))
    where = f"{rec.method.upper()} {template} -> {rec.status}"
    if schema is None and rec.status == 405 and rec.method.upper() not in path_methods(template):
        schema = _generic_error_schema(template)  # no such operation: the 405 is the catalogue's
    if schema is None:
        return [f"{where}: status not documented for this operation"]
    if schema.get("__empty__"):
        return [] if rec.body is None else [f"{where}: expected an empty body"]
    errors = sorted(OAS30Validator(schema).iter_errors(rec.body), key=lambda e: list(e.absolute_path))
    out = [f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5]]
    if rec.status >= 400:
        out += _check_error(rec, template, where)
    elif rec.headers is not None:
        out += _check_headers(rec, template, where)
    return out
