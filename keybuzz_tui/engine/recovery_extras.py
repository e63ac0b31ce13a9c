"""Objects of our apps that keybuzz.yaml does not want: the "extra" half of the drift.

What counts, in the platform namespace only (nothing elsewhere is ever ours to delete):

- workloads running one of our apps under another shape: the classic topology's Deployments (and
  their ReplicaSets and pods), StatefulSets, orphan ReplicaSets, DaemonSets whose name is not an
  app of keybuzz.yaml - found by the app's name or its `app.kubernetes.io/name` / `app` label, or
  a selector naming it;
- Services the live Ingress routes our hosts to, which the rendered Ingress does not (the classic
  install's ClusterIP Services under other names), and Ingresses other than ours routing our hosts
  (ingress-nginx would merge two Ingresses for one host unpredictably);
- anything labelled `app.kubernetes.io/managed-by: keybuzz-tui` that the rendered objects do not
  contain any more (an app removed from keybuzz.yaml): Secrets and ConfigMaps only this way, so a
  credential someone else keeps next to the app is never proposed for deletion.

Every extra becomes a `delete` Change with destructive=True and a note saying exactly what goes
("deletes Deployment keybuzz/keybuzz-api and its 1 pod: ..."). Deleting is the repair's last
Kubernetes step, after the hostNetwork pods are Ready and serving (recovery_repair.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import kubeio
from .context import Context
from .plan import Change

STEP = "drift"
MANAGED_BY = ("app.kubernetes.io/managed-by", "keybuzz-tui")
APP_LABELS = ("app.kubernetes.io/name", "app", "k8s-app")
# (apiVersion, kind, plural): what may hold one of our apps
KINDS: tuple[tuple[str, str, str], ...] = (
    ("apps/v1", "Deployment", "deployments"),
    ("apps/v1", "StatefulSet", "statefulsets"),
    ("apps/v1", "ReplicaSet", "replicasets"),
    ("apps/v1", "DaemonSet", "daemonsets"),
    ("v1", "Service", "services"),
    ("networking.k8s.io/v1", "Ingress", "ingresses"),
    ("v1", "ConfigMap", "configmaps"),
    ("v1", "Secret", "secrets"),
)
PLURAL = {(a, k): p for a, k, p in KINDS}


@dataclass
class Extra:
    """One object to delete, with what it takes along (pods) and why it is extra."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str
    app: str
    note: str
    pods: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def path(self) -> str:
        return kubeio.resource_path(self.api_version, PLURAL[(self.api_version, self.kind)], self.namespace, self.name)

    def change(self) -> Change:
        desired = {
            "apiVersion": self.api_version, "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
            "pods": list(self.pods),
        }
        return Change("kubernetes", "delete", self.kind, self.name, self.namespace, [], desired, self.note, destructive=True)


def extra_of(change: Change) -> Extra:
    """The Extra a delete Change was made from (repair reads path, uid and pods back)."""
    d = change.desired or {}
    meta = d.get("metadata") or {}
    return Extra(
        str(d.get("apiVersion", "")), change.kind, change.name, str(change.namespace or meta.get("namespace") or ""),
        str(meta.get("uid") or ""), "", change.note, list(d.get("pods") or []),
    )


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return _meta(obj).get("labels") or {}


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _app_of(obj: dict[str, Any], apps: set[str]) -> str | None:
    """Which of our apps this workload or Service runs / selects, if any."""
    labels = _labels(obj)
    for key in APP_LABELS:
        if labels.get(key) in apps:
            return labels[key]
    if _meta(obj).get("name") in apps:
        return str(_meta(obj)["name"])
    spec = obj.get("spec") or {}
    sel = spec.get("selector") or {}
    if isinstance(sel, dict):
        values = (sel.get("matchLabels") or {}) if "matchLabels" in sel else sel
        for v in values.values() if isinstance(values, dict) else ():
            if v in apps:
                return str(v)
    return None


def _ingress_backends(ing: dict[str, Any], hosts: set[str]) -> tuple[set[str], set[str]]:
    """(hosts of ours this Ingress routes, Service names it sends them to)."""
    routed: set[str] = set()
    services: set[str] = set()
    for rule in (ing.get("spec") or {}).get("rules") or []:
        host = rule.get("host") or ""
        if host not in hosts:
            continue
        routed.add(host)
        for p in ((rule.get("http") or {}).get("paths")) or []:
            svc = ((p.get("backend") or {}).get("service") or {}).get("name")
            if svc:
                services.add(str(svc))
    return routed, services


def find(ctx: Context, desired: list[dict[str, Any]]) -> tuple[list[Extra], list[str]]:
    """(extras, warnings) in the platform namespace, against the rendered `desired` objects."""
    cfg = ctx.config
    ns = cfg.namespace
    apps = {a.name for a in cfg.apps}
    hosts = {a.host for a in cfg.apps if a.host}
    wanted = {(o.get("kind"), _meta(o).get("name")) for o in desired}
    desired_backends: set[str] = set()
    for o in desired:
        if o.get("kind") == "Ingress":
            desired_backends |= _ingress_backends(o, hosts)[1]
    live: dict[str, list[dict[str, Any]]] = {}
    for api_version, kind, plural in KINDS:
        ctx.cancel.check()
        try:
            live[kind] = list(kubeio.get(ctx, kubeio.resource_path(api_version, plural, ns)).get("items") or [])
        except kubeio.KubeError as e:
            if e.status in (403, 404):
                live[kind] = []  # a kind the server does not serve, or we may not list: nothing to say
                continue
            raise
    pods = list(kubeio.get(ctx, kubeio.resource_path("v1", "pods", ns)).get("items") or [])
    pods_by_owner: dict[str, list[str]] = {}
    for p in pods:
        if _meta(p).get("deletionTimestamp"):
            continue
        ref = _controller(p)
        if ref is not None:
            pods_by_owner.setdefault(str(ref.get("uid")), []).append(str(_meta(p)["name"]))
    rs_by_owner: dict[str, list[str]] = {}
    for rs in live["ReplicaSet"]:
        ref = _controller(rs)
        if ref is not None:
            rs_by_owner.setdefault(str(ref.get("uid")), []).append(str(_meta(rs).get("uid")))

    out: list[Extra] = []
    warnings: list[str] = []

    def add(api_version: str, obj: dict[str, Any], app: str, note: str, owned_pods: list[str]) -> None:
        m = _meta(obj)
        out.append(Extra(api_version, obj["kind"] if "kind" in obj else "", m["name"], ns, str(m.get("uid") or ""), app, note, owned_pods))

    ds_names = {a.name for a in cfg.apps}
    for api_version, kind, _plural_name in KINDS:
        for obj in live[kind]:
            obj.setdefault("kind", kind)
            m = _meta(obj)
            name = str(m.get("name"))
            if (kind, name) in wanted or m.get("deletionTimestamp"):
                continue
            leftover = _labels(obj).get(MANAGED_BY[0]) == MANAGED_BY[1]
            uid = str(m.get("uid") or "")
            if kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"):
                if kind == "ReplicaSet" and _controller(obj) is not None:
                    continue  # reported (and deleted) through its Deployment
                app = _app_of(obj, apps)
                if app is None and not leftover:
                    continue
                owned = list(pods_by_owner.get(uid, []))
                for rs_uid in rs_by_owner.get(uid, []):
                    owned += pods_by_owner.get(rs_uid, [])
                goes = f"deletes {kind} {ns}/{name} and its {_plural(len(owned), 'pod')}"
                if app is not None and app in ds_names and kind != "DaemonSet":
                    why = f"the classic install; traffic moves to the hostNetwork DaemonSet {app}"
                elif leftover:
                    why = "created by keybuzz-tui but not in keybuzz.yaml any more"
                else:
                    why = f"runs {app} outside the DaemonSet keybuzz.yaml describes"
                add(api_version, obj, app or "", f"{goes}: {why}", sorted(owned))
            elif kind == "Service":
                routed_by_live = any(name in _ingress_backends(i, hosts)[1] for i in live["Ingress"])
                app = _app_of(obj, apps)
                spec = obj.get("spec") or {}
                shape = f"{spec.get('type') or 'ClusterIP'} {spec.get('clusterIP')}" if spec.get("clusterIP") not in (None, "None") else (spec.get("type") or "ClusterIP")
                if routed_by_live and name not in desired_backends:
                    to = ", ".join(sorted(desired_backends)) or "the NodePort Services"
                    add(api_version, obj, app or "", f"deletes Service {ns}/{name} ({shape}): the classic install's Service; the Ingress routes to {to} instead", [])
                elif leftover:
                    add(api_version, obj, app or "", f"deletes Service {ns}/{name} ({shape}): created by keybuzz-tui but not in keybuzz.yaml any more", [])
                elif app is not None:
                    warnings.append(f"Service {ns}/{name} also selects {app}'s pods; it is not keybuzz-tui's and is left alone")
            elif kind == "Ingress":
                routed, _svcs = _ingress_backends(obj, hosts)
                if routed:
                    add(api_version, obj, "", f"deletes Ingress {ns}/{name}: it also routes {', '.join(sorted(routed))}, which the Ingress of keybuzz.yaml routes (ingress-nginx would merge both unpredictably)", [])
                elif leftover:
                    add(api_version, obj, "", f"deletes Ingress {ns}/{name}: created by keybuzz-tui but not in keybuzz.yaml any more", [])
            elif leftover:  # ConfigMaps and Secrets: only what keybuzz-tui created itself
                what = "its values (they stay in the keyring)" if kind == "Secret" else "its data"
                add(api_version, obj, "", f"deletes {kind} {ns}/{name} and {what}: created by keybuzz-tui but not in keybuzz.yaml any more", [])
    return out, warnings
