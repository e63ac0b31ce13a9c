"""Bearer-token authentication and a small RBAC evaluator with the apiserver's semantics.

Tokens and rules come from the scenario: an admin token in group system:masters, and optionally a
restricted operator whose missing rights produce the real 403 text. SelfSubjectAccessReview is
answered by the same evaluator, so the wizard's permission preflight and the real enforcement can
never disagree.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    namespaces: tuple[str, ...] | None = None  # None: every namespace (a ClusterRoleBinding)
    resource_names: tuple[str, ...] = ()

    def allows(self, verb: str, group: str, resource: str, namespace: str | None, name: str | None) -> bool:
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.api_groups and group not in self.api_groups:
            return False
        base = resource.split("/")[0]
        if "*" not in self.resources and resource not in self.resources:
            # "pods/*" style and plain "pods" do not grant subresources, as in RBAC
            if not any(r.endswith("/*") and r[:-2] == base for r in self.resources):
                return False
        if self.namespaces is not None and (namespace is None or namespace not in self.namespaces):
            return False
        return not self.resource_names or (name is not None and name in self.resource_names)


@dataclass
class User:
    name: str
    token: str
    groups: tuple[str, ...] = ("system:authenticated",)
    rules: tuple[Rule, ...] = ()
    uid: str = ""

    @property
    def is_admin(self) -> bool:
        return "system:masters" in self.groups


@dataclass
class Authorizer:
    users: list[User] = field(default_factory=list)

    def authenticate(self, authorization: str | None) -> User | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization[7:].strip()
        for u in self.users:
            if hmac.compare_digest(u.token.encode(), token.encode()):
                return u
        return None

    def allowed(
        self, user: User, verb: str, group: str, resource: str, namespace: str | None, name: str | None
    ) -> bool:
        if user.is_admin:
            return True
        return any(r.allows(verb, group, resource, namespace, name) for r in user.rules)

    def review(self, user: User, spec: dict[str, Any]) -> dict[str, Any]:
        """The status of a SelfSubjectAccessReview for `spec`."""
        ra = spec.get("resourceAttributes")
        if isinstance(ra, dict):
            resource = ra.get("resource", "")
            if ra.get("subresource"):
                resource = f"{resource}/{ra['subresource']}"
            ok = self.allowed(
                user, ra.get("verb", ""), ra.get("group", ""), resource, ra.get("namespace") or None, ra.get("name") or None
            )
        else:
            nra = spec.get("nonResourceAttributes") or {}
            ok = user.is_admin or nra.get("path", "") in ("/version", "/api", "/apis", "/healthz", "/livez", "/readyz")
        if ok:
            reason = (
                'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"'
                if user.is_admin
                else f'RBAC: allowed by RoleBinding for User "{user.name}"'
            )
            return {"allowed": True, "reason": reason}
        return {"allowed": False}


def rule_from_dict(d: dict[str, Any]) -> Rule:
    ns = d.get("namespaces")
    return Rule(
        verbs=tuple(d.get("verbs", ())),
        api_groups=tuple(d.get("apiGroups", ("*",))),
        resources=tuple(d.get("resources", ("*",))),
        namespaces=tuple(ns) if ns is not None else None,
        resource_names=tuple(d.get("resourceNames", ())),
    )
