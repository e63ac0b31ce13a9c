"""Validate recorded sandbox replies against the official Hetzner spec plus the overlay.

The spec is read from the shared folder at run time (never copied into the repo); tests skip
when it is absent. Paths are matched to the spec's templates, literal segments first, so
`/zones/actions` is not taken for `/zones/{id_or_name}`.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator

from support.hetzner_overlay import REPLACE, tighten

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


def validate(rec: Recorded) -> list[str]:
    """Problems with one reply (empty list when it conforms)."""
    template = match_template(rec.path)
    if template is None:
        return [f"{rec.method.upper()} {rec.path}: no such path in the spec"]
    schema = response_schema(rec.method.lower(), template, str(rec.status))
    where = f"{rec.method.upper()} {template} -> {rec.status}"
    if schema is None:
        return [f"{where}: status not documented for this operation"]
    if schema.get("__empty__"):
        return [] if rec.body is None else [f"{where}: expected an empty body"]
    errors = sorted(OAS30Validator(schema).iter_errors(rec.body), key=lambda e: list(e.absolute_path))
    return [f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5]]
