"""Labels and label selectors, with Hetzner's error shape.

Hetzner's selector grammar (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (..)`, `k notin (..)`) is the
Kubernetes one, so the sandbox shares `keybuzz_tui.sandbox.kube.selectors.parse_label_selector`.
Its ApiError becomes a Hetzner `invalid_input` here. `_FallbackSelector` below is a small internal
parser used ONLY when the kube module is not importable (it is being written in parallel); it
implements the same grammar so both paths behave alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from .errors import FieldErrors, invalid_input

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_NAME_RE = re.compile(rf"^{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_PREFIX_RE = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")


class Selector(Protocol):
    def matches(self, labels: dict[str, str]) -> bool: ...


def valid_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX_RE.match(prefix)):
        return False
    return bool(_NAME_RE.match(name)) and len(name) <= 63


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_VALUE_RE.match(value))


def check_labels(raw: Any, errors: FieldErrors, field: str = "labels") -> dict[str, str] | None:
    """Validate a `labels` body value; returns the labels or None (errors recorded)."""
    if not isinstance(raw, dict):
        errors.add(field, "must be an object of string keys and string values")
        return None
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            errors.add(field, f"value of label '{key}' must be a string")
            continue
        if key.startswith("hetzner.cloud/"):
            errors.add(field, f"label key '{key}' uses the reserved prefix hetzner.cloud/")
        elif not valid_label_key(key):
            errors.add(field, f"label key '{key}' is invalid")
        elif not valid_label_value(value):
            errors.add(field, f"label value '{value}' of key '{key}' is invalid")
        else:
            out[key] = value
    return out


def parse_selector(text: str, field: str = "label_selector") -> Selector:
    """Parse a label selector or raise 422 invalid_input naming `field`."""
    try:
        from keybuzz_tui.sandbox.kube.errors import ApiError
        from keybuzz_tui.sandbox.kube.selectors import parse_label_selector
    except ImportError:
        parse_label_selector = None
    if parse_label_selector is not None:
        try:
            return parse_label_selector(text)
        except (ApiError, ValueError) as exc:  # bad syntax
            raise invalid_input(field, f"invalid label selector: {getattr(exc, 'message', exc)}") from None
    try:
        return _FallbackSelector(text)
    except ValueError as exc:
        raise invalid_input(field, f"invalid label selector: {exc}") from None


def matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    return selector.matches(dict(labels))


# ---- fallback parser (only used when keybuzz_tui.sandbox.kube.selectors is missing) -------------

_REQ_RE = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=(),]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[^\s!=(),]*)|\s+(?P<setop>in|notin)\s*\((?P<set>[^()]*)\))?\s*$"
)


class _FallbackSelector:
    def __init__(self, text: str) -> None:
        self.requirements: list[tuple[str, str, frozenset[str]]] = []
        for part in _split_top(text):
            if not part.strip():
                if text.strip():
                    raise ValueError("empty requirement")
                continue
            m = _REQ_RE.match(part)
            if not m:
                raise ValueError(f"cannot parse {part.strip()!r}")
            key = m["key"]
            if not valid_label_key(key):
                raise ValueError(f"invalid label key {key!r}")
            if m["neg"]:
                if m["op"] or m["setop"]:
                    raise ValueError(f"cannot parse {part.strip()!r}")
                self.requirements.append((key, "!", frozenset()))
            elif m["op"]:
                val = m["val"] or ""
                if not valid_label_value(val):
                    raise ValueError(f"invalid label value {val!r}")
                self.requirements.append((key, "!=" if m["op"] == "!=" else "=", frozenset([val])))
            elif m["setop"]:
                vals = [v.strip() for v in m["set"].split(",")]
                if not vals or any(not valid_label_value(v) for v in vals):
                    raise ValueError(f"invalid value set in {part.strip()!r}")
                self.requirements.append((key, m["setop"], frozenset(vals)))
            else:
                self.requirements.append((key, "exists", frozenset()))

    def matches(self, labels: dict[str, str]) -> bool:
        for key, op, vals in self.requirements:
            present = key in labels
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
            if op in ("=", "in") and (not present or labels[key] not in vals):
                return False
            if op in ("!=", "notin") and present and labels[key] in vals:
                return False
        return True


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced parenthesis")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError("unbalanced parenthesis")
    parts.append("".join(cur))
    return parts
