"""Guided disaster recovery (issue 6): drift, repair, resume, rollback, lock.

The on-call engineer's questions, in order, and where they are answered:

- What differs from keybuzz.yaml? `drift(ctx)` compares the desired state (keybuzz.yaml rendered
  with the secrets of the keyring) with the live state, per object: `missing`, `changed` (the
  field diff of the server-side dry run, Secrets by key names only), `extra` (objects of our apps
  the desired state does not have: the classic topology's Deployments and Services, leftovers),
  and per Hetzner resource (the LB, its services and targets, DNS records, the firewall). It
  reuses every step's own planner (kube.plan, lb.plan, dns.plan, firewall.plan); nothing is
  changed, not even the keyring.
- Did a run stop halfway? `interrupted(ctx)` (recovery_runs.py): from the journal and the live
  drift ("the apply of 2026-11-26 03:12 stopped after DaemonSet keybuzz/keybuzz-api; 4 changes
  remain"). The next repair continues from there because it plans against the live state.
- How do I fix it safely? `repair_plan(ctx, report)` then `repair(ctx, plan)`
  (recovery_repair.py): the same plan / confirm / apply flow, in an order that never makes a
  live platform worse (the hostNetwork pods Ready before any traffic moves, the classic objects
  deleted last and only with allow_destructive=True), journaled, cancel-aware, under the lock.
- Can I go back? `revisions(ctx, app)` / `rollback(ctx, app, revision)` (rollout.py, wrapped).

Everything here is plain Python (no Textual) and meant to run in a worker thread: the screens
and `keybuzz-tui recover|repair|rollback` (cli_recover.py) drive the same functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import ObjectPlanned, StepFinished, StepStarted, Warning_
from ..redact import REDACTOR, safe_error
from . import kubeio, recovery_extras
from .context import Context
from .plan import Change, FieldDiff, Plan
from .recovery_repair import (
    DestructiveNotAllowed,
    RepairPlan,
    RepairRefused,
    RepairResult,
    RepairStep,
    StepOutcome,
    repair,
    repair_plan,
)
from .recovery_runs import InterruptedRun, interrupted, lock_status, revisions, rollback, stopped_runs

__all__ = [
    "Drift", "DriftReport", "LayerProblem", "drift",
    "RepairPlan", "RepairStep", "RepairResult", "StepOutcome", "RepairRefused", "DestructiveNotAllowed", "repair_plan", "repair",
    "InterruptedRun", "interrupted", "stopped_runs", "lock_status", "revisions", "rollback",
]

STEP = "drift"
STATE_OF_ACTION = {"create": "missing", "update": "changed", "delete": "extra", "manual": "blocked"}
NEW_LB_ADDRESS = "(the new Load Balancer's address)"
_PLACEHOLDER_V4 = "192.0.2.1"  # TEST-NET-1: only used to name the records, never written


@dataclass(frozen=True)
class Drift:
    """One object or Hetzner resource that differs from keybuzz.yaml.

    state: missing (will be created), changed (will be updated: `diff`), extra (will be deleted:
    destructive, `note` says what goes), pending (follows another change: DNS records of a Load
    Balancer that is recreated), blocked (cannot be repaired automatically: `note` says why)."""

    layer: str
    state: str
    kind: str
    name: str
    namespace: str | None = None
    diff: tuple[FieldDiff, ...] = ()
    note: str = ""
    destructive: bool = False

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def lines(self) -> list[str]:
        return [d.render() for d in self.diff]

    def describe(self) -> str:
        return REDACTOR.redact(f"{self.state}: {self.ref}" + (f" — {self.note}" if self.note else ""))

    def to_dict(self) -> dict[str, Any]:
        return REDACTOR.redact_obj({  # type: ignore[no-any-return]
            "layer": self.layer, "state": self.state, "kind": self.kind, "name": self.name, "namespace": self.namespace,
            "ref": self.ref, "diff": self.lines(), "note": self.note, "destructive": self.destructive,
        })


@dataclass(frozen=True)
class LayerProblem:
    """A layer that could not be compared (or repaired): what failed and what to do."""

    layer: str
    message: str
    remediation: str = ""
    kind: str = "error"  # unreachable | credentials | refused | config | error

    def to_dict(self) -> dict[str, Any]:
        return REDACTOR.redact_obj({"layer": self.layer, "message": self.message, "remediation": self.remediation, "kind": self.kind})  # type: ignore[no-any-return]


@dataclass
class DriftReport:
    items: list[Drift] = field(default_factory=list)
    in_sync: list[str] = field(default_factory=list)  # refs of what matches keybuzz.yaml
    problems: list[LayerProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: list[InterruptedRun] = field(default_factory=list)
    plan: Plan = field(default_factory=Plan)  # every change the drift was computed from (unchanged ones too)
    topology: str = ""  # hostnetwork | classic | mixed (migration half done) | none
    needs_generation: list[str] = field(default_factory=list)  # generated secrets missing everywhere
    checked: list[str] = field(default_factory=list)  # layers compared
    started: float = field(default_factory=time.time)
    elapsed: float = 0.0

    @property
    def has_drift(self) -> bool:
        return bool(self.items)

    @property
    def ok(self) -> bool:
        """Nothing differs and every layer could be compared."""
        return not self.items and not self.problems

    def of(self, state: str) -> list[Drift]:
        return [d for d in self.items if d.state == state]

    @property
    def destructive(self) -> list[Drift]:
        return [d for d in self.items if d.destructive]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("missing", "changed", "extra", "pending", "blocked"), 0)
        for d in self.items:
            out[d.state] = out.get(d.state, 0) + 1
        return out

    def summary(self) -> str:
        if not self.items:
            head = "none: the platform matches keybuzz.yaml" if not self.problems else "none found in the layers that could be compared"
        else:
            c = self.counts()
            head = ", ".join(f"{n} {k}" for k, n in c.items() if n)
        tail = f" ({len(self.in_sync)} in sync" + (f", {len(self.problems)} layer(s) not compared" if self.problems else "") + ")"
        return head + tail

    def lines(self) -> list[str]:
        """The report as an operator reads it (no secret value can be in it)."""
        out = [f"drift: {self.summary()}"]
        if self.topology == "classic":
            out.append("topology: classic (Deployments behind ClusterIP Services): the repair moves the apps to hostNetwork DaemonSets")
        elif self.topology == "mixed":
            out.append("topology: half migrated (classic objects next to the hostNetwork DaemonSets): the repair finishes the move")
        for d in self.items:
            out.append(f"  {d.state:8} {d.ref}" + (" [destructive]" if d.destructive else ""))
            out.extend(f"      {line}" for line in d.lines()[:20])
            if d.note:
                out.append(f"      ({d.note})")
        for p in self.problems:
            out.append(f"  not compared: {p.layer}: {p.message}")
            if p.remediation:
                out.append(f"      → {p.remediation}")
        for w in self.warnings:
            out.append(f"  ! {w}")
        for r in self.interrupted:
            out.append(f"  interrupted: {r.describe()}")
        return [REDACTOR.redact(x) for x in out]

    def to_dict(self) -> dict[str, Any]:
        return REDACTOR.redact_obj({  # type: ignore[no-any-return]
            "summary": self.summary(), "has_drift": self.has_drift, "ok": self.ok, "topology": self.topology,
            "counts": self.counts(), "items": [d.to_dict() for d in self.items], "in_sync": list(self.in_sync),
            "problems": [p.to_dict() for p in self.problems], "warnings": list(self.warnings),
            "interrupted": [r.to_dict() for r in self.interrupted], "needs_generation": list(self.needs_generation),
            "checked": list(self.checked), "elapsed": round(self.elapsed, 3),
        })

    # --- building --------------------------------------------------------------------------

    def take(self, plan: Plan, state_override: str | None = None) -> None:
        """Add a step's plan: its changes become drift items (or in-sync refs)."""
        self.plan.changes.extend(plan.changes)
        self.warnings.extend(w for w in plan.warnings if w not in self.warnings)
        for c in plan.changes:
            if c.action == "unchanged":
                self.in_sync.append(c.ref)
                continue
            state = state_override or STATE_OF_ACTION.get(c.action, "changed")
            self.items.append(Drift(c.layer, state, c.kind, c.name, c.namespace, tuple(c.diff), c.note, c.destructive))


def _problem(report: DriftReport, ctx: Context, layer: str, exc: BaseException, kind: str = "error") -> None:
    from .hcloudio import CloudError

    msg = REDACTOR.redact(exc.message) if isinstance(exc, CloudError) else safe_error(exc)  # CloudError's str repeats the remediation
    remediation = str(getattr(exc, "remediation", "") or "")
    if isinstance(exc, kubeio.Unreachable):
        kind = "unreachable"
        remediation = remediation or "check the kubeconfig context and that the API server answers (kubectl get nodes), then run recover again"
    code = str(getattr(exc, "code", "") or "")
    if code in ("unreachable", "timeout"):
        kind = "unreachable"
    elif code in ("no_token", "unauthorized", "token_readonly", "forbidden"):
        kind = "credentials"
    report.problems.append(LayerProblem(layer, msg, remediation, kind))
    ctx.emit(Warning_(step=STEP, message=f"{layer}: {msg}", remediation=remediation))


# --- Kubernetes ------------------------------------------------------------------------------------


def _kubernetes(ctx: Context, report: DriftReport) -> None:
    from . import kube, render
    from .platform import _PlanSecrets

    cfg = ctx.config
    try:
        objects = render.render(cfg, _PlanSecrets(ctx.secrets, cfg), include_secret_values=True)
    except render.RenderError as e:
        _problem(report, ctx, "kubernetes", e, "credentials" if isinstance(e, render.MissingSecret) else "config")
        return
    try:
        kplan = kube.plan(ctx, objects)
    except kube.KubePlanError as e:
        kplan = e.plan
        _problem(report, ctx, "kubernetes", e, "refused")
    except (kubeio.Unreachable, kubeio.KubeError) as e:
        _problem(report, ctx, "kubernetes", e)
        return
    _guard_generated_secrets(ctx, kplan, report)
    for c in kplan.changes:
        if c.kind == "Secret" and c.action == "update" and any(d.path.startswith(".data.") for d in c.diff) and not c.note:
            c.note = "values differ from the keyring's: the keyring's are written (the keyring is the source of the credentials)"
    report.take(kplan)
    try:
        extras, warnings = recovery_extras.find(ctx, objects)
    except (kubeio.Unreachable, kubeio.KubeError) as e:
        _problem(report, ctx, "kubernetes", e)
        return
    extra_plan = Plan(changes=[x.change() for x in extras], warnings=warnings)
    for c in extra_plan.changes:
        ctx.emit(ObjectPlanned(step=STEP, action="delete", kind=c.kind, name=c.name, namespace=c.namespace, diff=(c.note,)))
    report.take(extra_plan)
    report.topology = _topology(report, kplan, extras)
    report.checked.append("kubernetes")


def _guard_generated_secrets(ctx: Context, kplan: Plan, report: DriftReport) -> None:
    """A generated secret missing from the keyring is generated by the repair only when the cluster
    has no value either: replacing a live credential with a new random one is never silent."""
    from ..credentials import app_secret_name
    from . import render

    cfg = ctx.config
    for app in cfg.apps:
        missing = [s.key for s in app.secrets if s.generate and not ctx.secrets.app_secret(app.name, s.key)]
        if not missing:
            continue
        try:
            live = kubeio.get_or_none(ctx, kubeio.resource_path("v1", "secrets", cfg.namespace, render.secret_name(app)))
        except (kubeio.Unreachable, kubeio.KubeError):
            live = None
        held = [k for k in missing if k in ((live or {}).get("data") or {})]
        for k in missing:
            if k not in held:
                report.needs_generation.append(app_secret_name(app.name, k))
        if not held:
            continue
        names = ", ".join(app_secret_name(app.name, k) for k in held)
        why = (f"{names} {'is' if len(held) == 1 else 'are'} not in the keyring, but Secret {cfg.namespace}/{render.secret_name(app)} "
               "holds a value: repairing would replace a live credential with a new random one")
        fix = (f"restore the value into the keyring (`keybuzz-tui credentials set {app_secret_name(app.name, held[0])}`), or rotate it on "
               f"purpose (`keybuzz-tui credentials rotate {app_secret_name(app.name, held[0])}`); then run recover again")
        for c in kplan.changes:
            if c.kind == "Secret" and c.name == render.secret_name(app):
                c.action, c.note = "manual", why
        report.problems.append(LayerProblem("kubernetes", why, fix, "credentials"))
        ctx.emit(Warning_(step=STEP, message=why, remediation=fix))


def _topology(report: DriftReport, kplan: Plan, extras: list[recovery_extras.Extra]) -> str:
    ds_live = any(c.kind == "DaemonSet" and c.action in ("update", "unchanged") for c in kplan.changes)
    classic = any(x.kind in ("Deployment", "StatefulSet", "ReplicaSet") and x.app for x in extras)
    if classic and ds_live:
        return "mixed"
    if classic:
        return "classic"
    if ds_live:
        return "hostnetwork"
    return "none"


# --- Hetzner: LB, DNS, firewall -------------------------------------------------------------------


def _hetzner(ctx: Context, report: DriftReport) -> None:
    from . import dns, firewall, lb
    from .hcloudio import CloudError

    cfg = ctx.config
    try:
        lplan = lb.plan(ctx, target_mode=cfg.load_balancer.target_mode)
    except CloudError as e:
        _problem(report, ctx, "hetzner", e)
        report.problems.append(LayerProblem("dns", "not compared: the Load Balancer could not be read (DNS must point at it)", str(e.remediation), "error"))
        return
    report.take(lplan)
    report.checked.append("hetzner")
    recreated = any(c.kind == "LoadBalancer" and c.action in ("create", "delete") for c in lplan.changes)
    try:
        if recreated:
            report.take(_dns_pending(ctx), "pending")
        else:
            dplan = dns.plan(ctx, lb.addresses(ctx))
            _manual_dns(ctx, dplan, lb.addresses(ctx))
            report.take(dplan)
        report.checked.append("dns")
    except CloudError as e:
        _problem(report, ctx, "dns", e)
    if cfg.firewall.mode == "manage":
        try:
            report.take(firewall.plan(ctx))
            report.checked.append("firewall")
        except CloudError as e:
            _problem(report, ctx, "firewall", e)


def _manual_dns(ctx: Context, dplan: Plan, lb_ips: list[str]) -> None:
    """Records kept at another provider are drift only when DNS does not answer the LB's address."""
    from . import dns

    manual = [c for c in dplan.changes if c.action == "manual"]
    if not manual or not lb_ips:
        return
    answers = {(a.host, a.type): a for a in dns.check(ctx, lb_ips)}
    for c in manual:
        a = answers.get((c.name, c.kind))
        if a is not None and a.status == "ok":
            c.action, c.note = "unchanged", "at the DNS provider, answering the Load Balancer's address"
        elif a is not None:
            c.note = f"{a.detail}; {c.note}"


def _dns_pending(ctx: Context) -> Plan:
    """The records of a Load Balancer that is (re)created: they will follow its new address, known
    only once it exists; the repair plans DNS again right after the LB step."""
    from . import dns
    from .hcloudio import hcloud_client

    cfg = ctx.config
    out = Plan()
    records = dns.desired_records(cfg, [_PLACEHOLDER_V4])
    zone = None
    client = None
    if cfg.dns.mode == "hetzner":
        client = hcloud_client(ctx)
        zone = dns._zone(ctx, client)
    for rec in records:
        live = dns._get_rrset(ctx, client, zone, rec.name, rec.type) if zone is not None else None
        have = sorted(r.value for r in (live.records or [])) if live is not None else None
        where = "" if zone is not None else " (at your DNS provider: change it by hand)"
        out.add(Change(
            "dns", "update" if live is not None else "create", rec.type, rec.host,
            diff=[FieldDiff(".records", have, [NEW_LB_ADDRESS])],
            desired={"zone": rec.zone, "name": rec.name, "type": rec.type, "ttl": rec.ttl, "records": [NEW_LB_ADDRESS]},
            note=f"follows the Load Balancer created above: planned again once it has its address{where}",
        ))
    for c in out.changes:
        ctx.emit(ObjectPlanned(step="dns", action=c.action, kind=c.kind, name=c.name, diff=tuple(c.lines())))
    return out


# --- the report ------------------------------------------------------------------------------------


def drift(ctx: Context, *, with_interrupted: bool = True, layers: set[str] | None = None) -> DriftReport:
    """Compare keybuzz.yaml (+ the keyring) with the live platform; change nothing.

    `layers`: a subset of {"kubernetes", "hetzner"} (the latter covers LB, DNS and firewall).
    A layer that cannot be compared (API unreachable, no token, refused) is a LayerProblem with
    its remediation; the others are still compared. Raises only Cancelled."""
    report = DriftReport()
    want = layers or {"kubernetes", "hetzner"}
    ctx.emit(StepStarted(step=STEP, title="Drift: keybuzz.yaml and the keyring against the live platform"))
    t0 = time.monotonic()
    try:
        if "kubernetes" in want:
            _kubernetes(ctx, report)
        ctx.cancel.check()
        if "hetzner" in want:
            _hetzner(ctx, report)
        ctx.cancel.check()
        if with_interrupted:
            report.interrupted = interrupted(ctx, report=report)
    except Cancelled:
        ctx.emit(StepFinished(step=STEP, status="fail", summary="cancelled"))
        raise
    report.elapsed = time.monotonic() - t0
    status = "ok" if report.ok else ("fail" if report.problems and not report.items else "warn")
    ctx.emit(StepFinished(step=STEP, status=status, summary=report.summary()))  # type: ignore[arg-type]
    return report
