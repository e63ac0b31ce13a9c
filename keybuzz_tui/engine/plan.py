"""Plans: what each step would change, as create / update / unchanged / delete with field diffs.

Every step computes a plan against the live state before touching anything; the operator sees it
and confirms. The same types serve Kubernetes objects and Hetzner resources so the review screen
and the CLI print one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "unchanged", "delete", "manual"]
Layer = Literal["kubernetes", "hetzner", "dns", "firewall"]

MASKED = "(secret, masked)"


@dataclass(frozen=True)
class FieldDiff:
    path: str  # ".spec.template.spec.containers[name=api].image"
    old: Any
    new: Any

    def render(self) -> str:
        if self.old is None:
            return f"+ {self.path}: {_short(self.new)}"
        if self.new is None:
            return f"- {self.path}: {_short(self.old)}"
        return f"~ {self.path}: {_short(self.old)} -> {_short(self.new)}"


@dataclass
class Change:
    layer: Layer
    action: Action
    kind: str
    name: str
    namespace: str | None = None
    diff: list[FieldDiff] = field(default_factory=list)
    desired: dict[str, Any] | None = None  # secret values already masked
    note: str = ""
    destructive: bool = False

    @property
    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"

    def lines(self) -> list[str]:
        return [d.render() for d in self.diff]


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def extend(self, other: Plan) -> None:
        self.changes.extend(other.changes)
        self.warnings.extend(other.warnings)

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0, "delete": 0, "manual": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    @property
    def has_changes(self) -> bool:
        return any(c.action in ("create", "update", "delete") for c in self.changes)

    def of(self, layer: str) -> list[Change]:
        return [c for c in self.changes if c.layer == layer]

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[k]} to {k}" for k in ("create", "update", "delete") if c[k]]
        parts.append(f"{c['unchanged']} unchanged")
        if c["manual"]:
            parts.append(f"{c['manual']} manual")
        return ", ".join(parts)


def _short(v: Any, limit: int = 80) -> str:
    s = repr(v) if not isinstance(v, str) else v
    return s if len(s) <= limit else s[: limit - 1] + "…"


IGNORED_META = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")


def diff_objects(live: Any, desired: Any, path: str = "") -> list[FieldDiff]:
    """Field-level differences, lists of named items compared by name (containers, ports...)."""
    out: list[FieldDiff] = []
    if isinstance(live, dict) and isinstance(desired, dict):
        for k in sorted(set(live) | set(desired), key=str):
            if path == ".metadata" and k in IGNORED_META:
                continue
            if path == "" and k == "status":
                continue
            p = f"{path}.{k}"
            if k not in desired:
                out.append(FieldDiff(p, live[k], None))
            elif k not in live:
                out.append(FieldDiff(p, None, desired[k]))
            else:
                out.extend(diff_objects(live[k], desired[k], p))
        return out
    if isinstance(live, list) and isinstance(desired, list):
        key = _list_key(live, desired)
        if key:
            lmap = {str(x.get(key)): x for x in live}
            dmap = {str(x.get(key)): x for x in desired}
            for name in list(dict.fromkeys([*lmap, *dmap])):
                p = f"{path}[{key}={name}]"
                if name not in dmap:
                    out.append(FieldDiff(p, lmap[name], None))
                elif name not in lmap:
                    out.append(FieldDiff(p, None, dmap[name]))
                else:
                    out.extend(diff_objects(lmap[name], dmap[name], p))
            return out
        if live != desired:
            out.append(FieldDiff(path, live, desired))
        return out
    if live != desired:
        out.append(FieldDiff(path or ".", live, desired))
    return out


def _list_key(live: list[Any], desired: list[Any]) -> str | None:
    """The field that identifies items in both lists, if every item has a unique one."""
    for key in ("name", "containerPort", "port", "listen_port", "type", "key"):
        ok = True
        for items in (live, desired):
            if not all(isinstance(x, dict) and key in x for x in items):
                ok = False
                break
            vals = [str(x[key]) for x in items]
            if len(set(vals)) != len(vals):
                ok = False
                break
        if ok and (live or desired):
            return key
    return None
