"""Plan and apply the platform's Kubernetes objects: server-side dry-run diff, then server-side apply.

The plan is `kubectl diff`'s method: send each object as a server-side apply with dryRun=All and
compare the live object with what the server says it would become. Only what our apply would
change shows up: server defaults, other managers' fields, status and bookkeeping metadata are the
same on both sides. The server also validates and admits the object in the dry run, so a NodePort
already allocated elsewhere (422) or a missing permission (403) is found before anything changes.

Secrets never leave this module with their values: plan diffs name the keys and say "changed",
Change.desired holds the masked object, and apply reads the values again from the SecretSource
(checking the content fingerprint against the plan) at the moment it sends them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import ObjectApplied, ObjectPlanned, Warning_
from ..redact import REDACTOR, safe_error
from . import kubeio, render
from .context import Context
from .plan import MASKED, Change, FieldDiff, Plan, diff_objects

STEP = "kubernetes"
CHANGED = "(changed, masked)"
# api version + kind -> plural: the kinds render() produces
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "namespaces",
    ("v1", "Secret"): "secrets",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("apps/v1", "DaemonSet"): "daemonsets",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
}
# maintained by the apiserver itself: a change there is never ours to show
SERVER_ANNOTATIONS = ("deprecated.daemonset.template.generation",)
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| at the cluster scope)?'
)
# answers that are the server's verdict on this object (the rest are about the connection)
REFUSALS = (400, 403, 404, 409, 422)
_NODEPORT = re.compile(r"nodePort: Invalid value: (?P<port>\d+): (?P<why>.+)$")


# --- results and errors ----------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectProblem:
    """Why one object cannot be applied: the server's words, and what to do."""

    kind: str
    name: str
    namespace: str | None
    status: int
    reason: str
    message: str
    remediation: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def render(self) -> str:
        text = f"{self.ref}: {self.message}"
        return f"{text}\n  -> {self.remediation}" if self.remediation else text


class KubePlanError(kubeio.KubeError):
    """The plan found objects the server would refuse. `plan` is what could be computed (the
    refused objects are `manual` changes); nothing was changed in the cluster.

    A KubeError (status 403 or 422, the message listing every refusal) so that callers which
    already report kubeio errors report this one too, with `remediation` on top."""

    def __init__(self, problems: list[ObjectProblem], plan: Plan) -> None:
        self.problems = problems
        self.plan = plan
        self.remediation = "\n".join(dict.fromkeys(p.remediation for p in problems if p.remediation))
        head = f"the server would refuse {len(problems)} Kubernetes change(s); nothing was changed:"
        lines = [head, *(f"  {p.ref}: {p.message}" for p in problems)]
        if self.remediation:
            lines += ["What to do:", *(f"  {r}" for r in self.remediation.split("\n"))]
        status = 422 if any(p.status == 422 for p in problems) else problems[0].status if problems else 0
        super().__init__(status, problems[0].reason if problems else "", "\n".join(lines))


class ApplyError(kubeio.KubeError):
    """Apply stopped at one object; the objects before it are applied (and journaled).
    A KubeError for the same reason as KubePlanError; `status` is the server's, 0 when the
    refusal is ours (secret values changed since the plan, a plan with errors)."""

    def __init__(self, message: str, remediation: str = "", *, ref: str = "", status: int = 0, applied: list[AppliedObject] | None = None) -> None:
        super().__init__(status, "ApplyFailed", message)
        self.remediation = remediation
        self.ref = ref
        self.applied = applied or []


@dataclass(frozen=True)
class AppliedObject:
    kind: str
    name: str
    namespace: str | None
    action: str  # create | update | unchanged
    resource_version: str | None = None


@dataclass
class _Problems:
    items: list[ObjectProblem] = field(default_factory=list)
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def add(self, p: ObjectProblem, key: tuple[str, ...] | None = None) -> None:
        k = key or (p.kind, p.namespace or "", p.name, p.message)
        if k not in self.seen:
            self.seen.add(k)
            self.items.append(p)


# --- paths -----------------------------------------------------------------------------------


def object_path(obj: dict[str, Any]) -> str:
    plural = PLURALS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if plural is None:
        raise ValueError(f"keybuzz-tui does not manage {obj.get('apiVersion')} {obj.get('kind')}")
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") if obj["kind"] != "Namespace" else None
    return kubeio.resource_path(obj["apiVersion"], plural, ns, meta["name"])


def _ident(obj: dict[str, Any]) -> tuple[str, str, str | None]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("name", ""), meta.get("namespace") if obj.get("kind") != "Namespace" else None


# --- error explanations ----------------------------------------------------------------------


def explain(e: kubeio.KubeError, ctx: Context, obj: dict[str, Any], verb: str) -> ObjectProblem:
    """A KubeError on one object as the operator should read it."""
    kind, name, ns = _ident(obj)
    if e.status == 403:
        m = _FORBIDDEN.search(e.message)
        if m:
            where = f'in namespace {m["namespace"]}' if m["namespace"] else "cluster-wide"
            grp = m["group"] or "core"
            msg = f'the kubeconfig user "{m["user"]}" may not {m["verb"]} {m["resource"]} ({grp} API group) {where} (server: {e.message})'
        else:
            msg = f"permission denied to {verb} {kind} {name}: {e.message}"
        return ObjectProblem(kind, name, ns, 403, e.reason, msg, _RBAC_FIX)
    if e.status == 422 and kind == "Service":
        m = _NODEPORT.search(e.message)
        if m:
            return ObjectProblem(kind, name, ns, 422, e.reason, e.message, _nodeport_fix(ctx, name, int(m["port"]), m["why"]))
    if e.status == 422:
        return ObjectProblem(kind, name, ns, 422, e.reason, e.message, "The server rejected the field named in the message: fix it in keybuzz.yaml and plan again.")
    if e.status == 409:
        return ObjectProblem(kind, name, ns, 409, e.reason, e.message, "Another writer changed the object meanwhile: plan again.")
    if e.status == 404:
        return ObjectProblem(kind, name, ns, 404, e.reason, e.message, "The API server does not know this resource or its namespace: check the cluster version and plan again.")
    return ObjectProblem(kind, name, ns, e.status, e.reason, e.message, "")


_RBAC_FIX = (
    "Use a kubeconfig context allowed to manage the namespace (for K3s, the admin kubeconfig "
    "/etc/rancher/k3s/k3s.yaml; `keybuzz-tui --context NAME`), or ask a cluster admin for a Role "
    "granting these verbs. Nothing was changed."
)


def _nodeport_fix(ctx: Context, service: str, port: int, why: str) -> str:
    field_name = "node_port"
    for i, app in enumerate(ctx.config.apps):
        if app.name == service:
            field_name = f"apps[{i}].node_port"
    if "valid range" in why:
        return f"Choose a NodePort inside the cluster's range for {field_name} in keybuzz.yaml."
    holder = ""
    try:
        for svc in kubeio.get(ctx, "/api/v1/services").get("items") or []:
            meta = svc.get("metadata") or {}
            if meta.get("name") == service and meta.get("namespace") == ctx.config.namespace:
                continue
            if any(p.get("nodePort") == port for p in (svc.get("spec") or {}).get("ports") or []):
                holder = f"{meta.get('namespace')}/{meta.get('name')}"
                break
    except (kubeio.KubeError, kubeio.Unreachable):
        pass
    who = f"Service {holder} holds NodePort {port}" if holder else f"another Service holds NodePort {port}"
    return (
        f"{who} (NodePorts are cluster-wide). Choose a free port for {field_name} in keybuzz.yaml "
        "(the Ports step lists the nearest free ones), or move that Service off the port; then plan again."
    )


# --- diffs -----------------------------------------------------------------------------------


def _mask_secret_diffs(diffs: list[FieldDiff]) -> list[FieldDiff]:
    """Key names and "changed" only: a Secret's values never reach a diff."""
    out: list[FieldDiff] = []
    for d in diffs:
        top = d.path.split(".")[1] if d.path.count(".") >= 1 else d.path
        if d.path in (".data", ".stringData"):
            old, new = d.old if isinstance(d.old, dict) else {}, d.new if isinstance(d.new, dict) else {}
            for k in sorted(set(old) | set(new)):
                out.append(FieldDiff(f"{d.path}.{k}", MASKED if k in old else None, (CHANGED if k in old else MASKED) if k in new else None))
        elif top in ("data", "stringData"):
            both = d.old is not None and d.new is not None
            out.append(FieldDiff(d.path, MASKED if d.old is not None else None, (CHANGED if both else MASKED) if d.new is not None else None))
        elif "last-applied-configuration" in d.path:
            out.append(FieldDiff(d.path, MASKED if d.old is not None else None, MASKED if d.new is not None else None))
        else:
            out.append(d)
    return out


def object_diff(kind: str, live: dict[str, Any], result: dict[str, Any]) -> list[FieldDiff]:
    """What applying would change: diff(live, dry-run result), server bookkeeping left out."""
    diffs = [d for d in diff_objects(live, result) if not any(d.path.endswith(f".annotations.{a}") for a in SERVER_ANNOTATIONS)]
    if kind == "Secret":
        diffs = _mask_secret_diffs(diffs)
    return [FieldDiff(d.path, REDACTOR.redact_obj(d.old), REDACTOR.redact_obj(d.new)) for d in diffs]


def _create_diff(masked: dict[str, Any]) -> list[FieldDiff]:
    return [FieldDiff(d.path, None, REDACTOR.redact_obj(d.new)) for d in diff_objects({}, masked)]


# --- plan ------------------------------------------------------------------------------------


def plan(ctx: Context, objects: list[dict[str, Any]]) -> Plan:
    """Create / update / unchanged for each object, with field diffs, against the live cluster.

    Raises KubePlanError (carrying the partial plan) when the server would refuse an object:
    403 (who may not do what, where), 422 (the exact server text, e.g. "provided port is already
    allocated", and the fix). Unreachable API and other errors propagate as kubeio errors.
    """
    out = Plan()
    problems = _Problems()
    missing_ns = _missing_namespaces(ctx, objects)
    services: list[dict[str, Any]] | None = None
    for obj in objects:
        ctx.cancel.check()
        kind, name, ns = _ident(obj)
        path = object_path(obj)
        masked = render.mask(obj)
        change: Change
        if kind == "Secret" and any(v in (MASKED, render.NOT_SET) for v in (obj.get("data") or {}).values()):
            raise ValueError(f"{kind} {ns}/{name} carries masked values: plan needs render(..., include_secret_values=True)")
        if ns is not None and ns in missing_ns:
            # nothing can exist (or be dry-run) in a namespace that does not exist yet
            mine = _check_create_in_new_namespace(ctx, obj, problems)
            if kind == "Service":
                services = services if services is not None else _all_services(ctx)
                mine += _nodeport_taken(ctx, obj, services, problems)
            note = "; ".join(p.message for p in mine) or f"namespace {ns} does not exist yet: the server validates this object at apply time"
            change = Change(STEP, "manual" if mine else "create", kind, name, ns, _create_diff(masked), masked, note)
        else:
            try:
                live = kubeio.get_or_none(ctx, path)
                result = kubeio.apply(ctx, path, obj, dry_run=True)
            except kubeio.KubeError as e:
                if e.status not in REFUSALS:
                    raise  # 5xx, 429, 401: not about this object; the caller reports it
                p = explain(e, ctx, obj, "get" if "cannot get" in e.message else "apply")
                problems.add(p)
                out.add(Change(STEP, "manual", kind, name, ns, [], masked, p.render()))
                _emit_planned(ctx, out.changes[-1])
                continue
            if live is None:
                change = Change(STEP, "create", kind, name, ns, _create_diff(masked), masked)
            else:
                diff = object_diff(kind, live, result)
                change = Change(STEP, "update" if diff else "unchanged", kind, name, ns, diff, masked)
        out.add(change)
        _emit_planned(ctx, change)
    if problems.items:
        raise KubePlanError(problems.items, out)
    return out


def _emit_planned(ctx: Context, c: Change) -> None:
    ctx.emit(ObjectPlanned(step=STEP, action=c.action, kind=c.kind, name=c.name, namespace=c.namespace, diff=tuple(c.lines()) or ((c.note,) if c.note else ())))


def _missing_namespaces(ctx: Context, objects: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for ns in dict.fromkeys(_ident(o)[2] for o in objects if _ident(o)[2]):
        ctx.cancel.check()
        try:
            if kubeio.get_or_none(ctx, kubeio.resource_path("v1", "namespaces", None, ns)) is None:
                out.add(ns)  # type: ignore[arg-type]
        except kubeio.KubeError as e:
            if e.status != 403:
                raise
            # may not read namespaces: the per-object calls will tell what else is refused
    return out


def _check_create_in_new_namespace(ctx: Context, obj: dict[str, Any], problems: _Problems) -> list[ObjectProblem]:
    """Ask the server (SelfSubjectAccessReview) whether we may create and patch this kind there."""
    kind, name, ns = _ident(obj)
    api_version = obj["apiVersion"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    resource = PLURALS[(api_version, kind)]
    denied: list[str] = []
    for verb in ("create", "patch"):
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": ns}},
        }
        try:
            review = kubeio.request(ctx, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
        except kubeio.KubeError:
            break  # cannot ask: the apply will tell
        if not (review.get("status") or {}).get("allowed"):
            denied.append(verb)
    if not denied:
        return []
    msg = f"the kubeconfig user may not {' or '.join(denied)} {resource} ({group or 'core'} API group) in namespace {ns} (SelfSubjectAccessReview)"
    p = ObjectProblem(kind, name, ns, 403, "Forbidden", msg, _RBAC_FIX)
    problems.add(p, ("rbac", group, resource, ns or ""))  # listed once per resource, noted on every object
    return [p]


def _all_services(ctx: Context) -> list[dict[str, Any]]:
    try:
        return list(kubeio.get(ctx, "/api/v1/services").get("items") or [])
    except kubeio.KubeError:
        return []


def _nodeport_taken(ctx: Context, obj: dict[str, Any], services: list[dict[str, Any]], problems: _Problems) -> list[ObjectProblem]:
    """The allocator's check, done locally when the Service cannot be dry-run yet: the same 422 text
    the server will answer at apply time, with the Service that holds the port."""
    kind, name, ns = _ident(obj)
    found: list[ObjectProblem] = []
    for i, port in enumerate((obj.get("spec") or {}).get("ports") or []):
        np = port.get("nodePort")
        if not np:
            continue
        for svc in services:
            meta = svc.get("metadata") or {}
            if (meta.get("namespace"), meta.get("name")) == (ns, name):
                continue
            if any(p.get("nodePort") == np for p in (svc.get("spec") or {}).get("ports") or []):
                msg = f'Service "{name}" is invalid: spec.ports[{i}].nodePort: Invalid value: {np}: provided port is already allocated'
                problem = ObjectProblem(kind, name, ns, 422, "Invalid", msg, _nodeport_fix(ctx, name, int(np), "already allocated"))
                problems.add(problem)
                found.append(problem)
                break
    return found


# --- apply -----------------------------------------------------------------------------------


def apply(ctx: Context, plan: Plan) -> list[AppliedObject]:
    """Server-side apply of every create/update of the plan, in order, under FIELD_MANAGER.

    Unchanged objects are skipped (so a re-run after a failure resumes where it stopped), each
    applied object is journaled with its new resourceVersion, a failure journals the object that
    failed and raises ApplyError (kubeio.Unreachable when the API cannot be reached), and a
    cancel is honoured between two objects (Cancelled, journaled with the next object).
    """
    changes = [c for c in plan.changes if c.layer == STEP]
    blocked = [c for c in changes if c.action == "manual"]
    if blocked:
        raise ApplyError(
            "the plan has objects the server would refuse; nothing was applied:\n" + "\n".join(f"{c.ref}: {c.note}" for c in blocked),
            "Fix what the plan reported, then plan again.",
        )
    applied: list[AppliedObject] = []
    for c in changes:
        if ctx.cancel.cancelled:
            ctx.journal.write("kube-apply-cancelled", next=c.ref, applied=len([a for a in applied if a.action != "unchanged"]))
            raise Cancelled(ctx.cancel.reason)
        if c.action == "unchanged":
            applied.append(AppliedObject(c.kind, c.name, c.namespace, "unchanged"))
            ctx.emit(ObjectApplied(step=STEP, action="unchanged", kind=c.kind, name=c.name, namespace=c.namespace, detail="already up to date"))
            continue
        if c.action not in ("create", "update") or c.desired is None:
            ctx.emit(Warning_(step=STEP, message=f"{c.ref}: {c.action} is not done automatically", remediation=c.note))
            continue
        try:
            obj = _for_apply(ctx, c)
            result = kubeio.apply(ctx, object_path(obj), obj)
        except ApplyError as e:  # ours (before KubeError: it is one)
            _failed(ctx, c, str(e), applied)
            e.applied, e.ref = applied, c.ref
            raise
        except kubeio.KubeError as e:
            p = explain(e, ctx, c.desired, "apply")
            _failed(ctx, c, p.message, applied)
            raise ApplyError(f"{c.ref}: {p.message}", p.remediation, ref=c.ref, status=e.status, applied=applied) from None
        except kubeio.Unreachable as e:
            _failed(ctx, c, safe_error(e), applied)
            raise  # the callers tell "cannot reach the API" apart from "the API refused"
        rv = (result.get("metadata") or {}).get("resourceVersion")
        applied.append(AppliedObject(c.kind, c.name, c.namespace, c.action, rv))
        ctx.journal.write("object-applied", kind=c.kind, namespace=c.namespace, name=c.name, action=c.action, resourceVersion=rv)
        ctx.emit(ObjectApplied(step=STEP, action=c.action, kind=c.kind, name=c.name, namespace=c.namespace, detail=f"resourceVersion {rv}"))
    return applied


def _failed(ctx: Context, c: Change, message: str, applied: list[AppliedObject]) -> None:
    done = len([a for a in applied if a.action != "unchanged"])
    ctx.journal.write("object-failed", kind=c.kind, namespace=c.namespace, name=c.name, action=c.action, error=message, applied_before=done)
    ctx.emit(Warning_(step=STEP, message=f"{c.ref}: {message}", remediation="Fix the cause and run apply again: applied objects show as unchanged."))


def _for_apply(ctx: Context, c: Change) -> dict[str, Any]:
    """The object to send: the plan's object, or for a Secret the same object with the real values
    read again now, provided they are the ones the plan saw (same content fingerprint)."""
    assert c.desired is not None
    if c.kind != "Secret":
        return c.desired
    app_name = ((c.desired.get("metadata") or {}).get("labels") or {}).get(render.NAME_LABEL, "")
    try:
        app = ctx.config.app(app_name)
    except KeyError:
        raise ApplyError(f"{c.ref}: no app {app_name!r} in keybuzz.yaml to take its values from", "Plan again with the current keybuzz.yaml.") from None
    try:
        values = render.secret_values(app, ctx.secrets, required=True)
    except render.RenderError as e:
        raise ApplyError(f"{c.ref}: {e}", e.remediation) from None
    real = render.secret(ctx.config, app, values, include_secret_values=True)
    planned = ((c.desired.get("metadata") or {}).get("annotations") or {}).get(render.CONTENT_HASH)
    now = real["metadata"]["annotations"][render.CONTENT_HASH]
    if planned != now or sorted(real["data"]) != sorted(c.desired.get("data") or {}):
        raise ApplyError(
            f"{c.ref}: the secret values changed since the plan (rotated meanwhile?)",
            "Plan again, review, then apply.",
        )
    return real
