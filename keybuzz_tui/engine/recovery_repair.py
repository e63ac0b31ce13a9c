"""Repair: the drift made true again, in an order that never makes a live platform worse.

The order is the point. Production's starting point is the outage: the classic Deployments answer
one request in five, the rest are 504s. A careless repair deletes the Deployments first and the
site goes from "mostly 504" to "all down" while the new pods pull their images. So:

1. kubernetes  Namespace, Secrets (values read again from the keyring), ConfigMaps, the Services
               that do not exist yet, then the hostNetwork DaemonSets. Nothing that serves
               traffic today changes in this step.
2. rollout     wait until the DaemonSets run Ready on every worker (rollout.watch_rollout); a
               rollout that does not complete stops the repair here: nothing was switched or
               deleted, the platform serves exactly as before.
3. switch      the existing Services (ClusterIP -> NodePort, the selector) and the Ingress move
               to the hostNetwork pods; then wait until each app's Service has the Ready
               hostNetwork pods (worker IPs) as endpoints.
4. cleanup     delete the extra objects (the classic Deployments with their ReplicaSets and pods,
               their Services...): destructive, refused without allow_destructive=True, each
               deletion guarded by the uid the operator saw, then wait until they are gone.
5. load_balancer  lb.apply (recreated, re-targeted, services restored), then wait for healthy
               targets (a replaced worker's new IP shows up through its label or server id).
6. dns         planned again now that the LB's address is known, then applied.
7. firewall    when firewall.mode is manage.

The run is journaled (`run-started` command "repair" ... `run-finished`), holds the platform lock
(PlatformLock) for its whole duration, honours ctx.cancel between calls, and stops at the first
failure with the operator's remediation. Whatever it stops on, the next drift shows exactly what
remains and the next repair finishes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import Info, ObjectApplied, StepFinished, StepStarted, Warning_
from ..redact import REDACTOR, safe_error
from . import kubeio
from .context import Context
from .lock import PlatformLock, lock_namespace
from .plan import Change, Plan
from .recovery_extras import extra_of

STEP = "repair"
ORDER = ("kubernetes", "rollout", "switch", "cleanup", "load_balancer", "dns", "firewall")
TITLES = {
    "kubernetes": "Secrets, ConfigMaps, new Services and the hostNetwork DaemonSets",
    "rollout": "Wait for the DaemonSets to be Ready on every worker",
    "switch": "Move the Services and the Ingress to the hostNetwork pods",
    "cleanup": "Delete what keybuzz.yaml does not want (destructive)",
    "load_balancer": "Hetzner Load Balancer",
    "dns": "DNS records (planned again once the LB's address is known)",
    "firewall": "Hetzner firewall",
}
SERVING_TIMEOUT = 60.0  # seconds for the endpoints controller to list the hostNetwork pods
POLL = 0.25


class RepairRefused(Exception):
    """The repair did not start: why, and what to do. Nothing was changed."""

    def __init__(self, message: str, remediation: str = "") -> None:
        super().__init__(REDACTOR.redact(message))
        self.remediation = remediation


class DestructiveNotAllowed(RepairRefused):
    """The plan deletes or cuts something and the caller did not pass allow_destructive=True
    (the operator confirms destructive changes twice; `changes` lists what would go)."""

    def __init__(self, changes: list[Change]) -> None:
        self.changes = changes
        super().__init__(
            "the repair plan destroys something; nothing was changed:\n" + "\n".join(f"  {c.ref}: {c.note}" for c in changes),
            "confirm the destructive changes explicitly (twice in the wizard; `keybuzz-tui repair --allow-destructive`), "
            "or plan without them (repair_plan(..., include_destructive=False))",
        )


@dataclass
class RepairStep:
    name: str  # one of ORDER
    title: str
    changes: list[Change] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(c.action in ("create", "update", "delete") for c in self.changes)


@dataclass
class RepairPlan(Plan):
    """A Plan (changes in execution order, unchanged ones included, so lb.apply can check that
    the LB still is what the operator saw) grouped into the repair's steps."""

    steps: list[RepairStep] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)  # recovery.LayerProblem: layers not compared
    needs_generation: list[str] = field(default_factory=list)
    topology: str = ""

    @property
    def destructive(self) -> list[Change]:
        return [c for c in self.changes if c.destructive and c.action in ("create", "update", "delete")]

    @property
    def blocked(self) -> list[Change]:
        return [c for c in self.changes if c.action == "manual" and c.layer == "kubernetes"]

    def step(self, name: str) -> RepairStep | None:
        return next((s for s in self.steps if s.name == name), None)

    def destructive_lines(self) -> list[str]:
        """What the destructive changes destroy, one line each (the second confirmation)."""
        return [REDACTOR.redact(c.note or f"{c.action} {c.ref}") for c in self.destructive]

    def to_dict(self) -> dict[str, Any]:
        return REDACTOR.redact_obj({  # type: ignore[no-any-return]
            "summary": self.summary(), "has_changes": self.has_changes, "topology": self.topology,
            "destructive": [{"ref": c.ref, "note": c.note} for c in self.destructive],
            "steps": [
                {"name": s.name, "title": s.title, "changes": [
                    {"action": c.action, "layer": c.layer, "ref": c.ref, "diff": c.lines(), "note": c.note, "destructive": c.destructive}
                    for c in s.changes if c.action != "unchanged"]}
                for s in self.steps
            ],
            "warnings": list(self.warnings), "needs_generation": list(self.needs_generation),
        })

    def lines(self) -> list[str]:
        out = [f"repair plan: {self.summary()}"]
        for s in self.steps:
            todo = [c for c in s.changes if c.action != "unchanged"]
            if s.name in ("rollout",):
                out.append(f"  {s.name}: {s.title}")
                continue
            if not todo:
                continue
            out.append(f"  {s.name}: {s.title}")
            for c in todo:
                mark = " [destructive]" if c.destructive else ""
                out.append(f"    {c.action:8} {c.ref}{mark}")
                out.extend(f"        {line}" for line in c.lines()[:12])
                if c.note:
                    out.append(f"        ({c.note})")
        return [REDACTOR.redact(x) for x in out]


@dataclass
class StepOutcome:
    name: str
    status: str  # ok | warn | fail | skip
    summary: str = ""


@dataclass
class RepairResult:
    status: str = "ok"  # ok | failed | cancelled
    steps: list[StepOutcome] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rollout: Any = None  # rollout.RolloutResult
    message: str = ""
    remediation: str = ""
    kind: str = ""  # failed: unreachable (an API did not answer) | error | "" (the step's verdict, e.g. a stuck rollout)
    run: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return REDACTOR.redact_obj({  # type: ignore[no-any-return]
            "status": self.status, "ok": self.ok, "run": self.run, "message": self.message, "remediation": self.remediation, "kind": self.kind,
            "steps": [s.__dict__ for s in self.steps], "changed": list(self.changed), "deleted": list(self.deleted),
            "elapsed": round(self.elapsed, 3),
        })


# --- planning --------------------------------------------------------------------------------------


def _kube_step(c: Change) -> str:
    if c.action == "delete":
        return "cleanup"
    if c.kind == "DaemonSet":
        return "kubernetes"
    if c.kind == "Ingress" or (c.kind == "Service" and c.action == "update"):
        return "switch"  # what routes today's traffic moves only once the new pods are Ready
    return "kubernetes"


def repair_plan(ctx: Context, report: Any, *, include_destructive: bool = True) -> RepairPlan:
    """The drift report as a repair plan, step by step (see the module docstring).

    include_destructive=False leaves the extra objects alone (they stay in the next drift)."""
    steps = {name: RepairStep(name, TITLES[name]) for name in ORDER}
    kube_order = {"Namespace": 0, "Secret": 1, "ConfigMap": 2, "Service": 3, "DaemonSet": 4, "Ingress": 5}
    for c in report.plan.changes:
        if c.layer == "kubernetes":
            if c.action == "delete" and not include_destructive:
                continue
            steps[_kube_step(c)].changes.append(c)
        elif c.layer == "hetzner":
            steps["load_balancer"].changes.append(c)
        elif c.layer in ("dns", "firewall"):
            steps[c.layer].changes.append(c)
    for name in ("kubernetes", "switch"):
        steps[name].changes.sort(key=lambda c: kube_order.get(c.kind, 9))
    ordered = [steps[n] for n in ORDER]
    out = RepairPlan(
        changes=[c for s in ordered for c in s.changes], warnings=list(report.warnings), steps=ordered,
        problems=list(report.problems), needs_generation=list(report.needs_generation), topology=report.topology,
    )
    return out


# --- running ---------------------------------------------------------------------------------------


def repair(
    ctx: Context,
    plan: RepairPlan,
    *,
    allow_destructive: bool = False,
    take_over: bool = False,
    rollout_timeout: float | None = None,
    lb_timeout: float = 120.0,
    delete_timeout: float | None = None,
) -> RepairResult:
    """Make the repair plan true, step by step, under the platform lock, journaled.

    Raises RepairRefused (layers that could not be compared, objects the server refuses) or
    DestructiveNotAllowed before anything changes; lock.LockHeld when another wizard holds the
    platform (take_over=True takes a *stale* lock over, after the operator confirmed). Every other
    outcome is a RepairResult: ok, failed (with message and remediation; the next run resumes),
    or cancelled (ctx.cancel: stopped between two calls; the next run resumes)."""
    if plan.problems:
        raise RepairRefused(
            "some layers could not be compared, so the repair would be blind there; nothing was changed:\n"
            + "\n".join(f"  {p.layer}: {p.message}" for p in plan.problems),
            "\n".join(dict.fromkeys(p.remediation for p in plan.problems if p.remediation)) or "fix the cause and run recover again",
        )
    if plan.blocked:
        raise RepairRefused(
            "the server would refuse some objects; nothing was changed:\n" + "\n".join(f"  {c.ref}: {c.note}" for c in plan.blocked),
            "fix what the plan reports, then run recover again",
        )
    if plan.destructive and not allow_destructive:
        raise DestructiveNotAllowed(plan.destructive)
    result = RepairResult()
    t0 = time.monotonic()
    result.run = ctx.journal.new_run()  # one run per repair (lock lines included), even on a reused context
    with PlatformLock(ctx, take_over=take_over, namespace=lock_namespace(ctx)):
        ctx.journal.start_run("repair", summary=plan.summary(), destructive=[c.ref for c in plan.destructive])
        ctx.emit(StepStarted(step=STEP, title=f"Repair: {plan.summary()}"))
        runner = _Runner(ctx, plan, result, allow_destructive, rollout_timeout, lb_timeout, delete_timeout)
        try:
            for step in plan.steps:
                ctx.cancel.check()
                outcome = runner.run(step)
                result.steps.append(outcome)
                if outcome.status == "fail":
                    result.status = "failed"
                    break
        except Cancelled as e:
            result.status, result.message = "cancelled", f"stopped: {e}"
            result.remediation = "what was changed is in the journal; run recover to see what remains and repair to finish"
            ctx.journal.finish_run("interrupted", reason=str(e))
        except Exception as e:
            if not _operator_error(e):
                ctx.journal.finish_run("failed", error=safe_error(e))
                raise
            result.status, result.message = "failed", safe_error(e)
            code = str(getattr(e, "code", "") or "")
            result.kind = "unreachable" if isinstance(e, kubeio.Unreachable) or code in ("unreachable", "timeout") else "error"
            result.remediation = (str(getattr(e, "remediation", "") or "") + " — then run repair again: it resumes where it stopped").lstrip(" —")
            ctx.journal.finish_run("failed", error=result.message)
        else:
            if result.status == "failed":
                ctx.journal.finish_run("failed", step=result.steps[-1].name, error=result.message)
            else:
                ctx.journal.finish_run("ok", changed=len(result.changed), deleted=len(result.deleted))
    result.elapsed = time.monotonic() - t0
    if result.ok:
        ctx.emit(StepFinished(step=STEP, status="ok", summary=f"{len(result.changed)} change(s), {len(result.deleted)} deletion(s)"))
    else:
        ctx.emit(Warning_(step=STEP, message=result.message, remediation=result.remediation))
        ctx.emit(StepFinished(step=STEP, status="fail" if result.status == "failed" else "warn", summary=result.message))
    return result


def _operator_error(e: BaseException) -> bool:
    """Errors that carry the operator's words (server refusals, unreachable APIs, cloud errors)."""
    from .hcloudio import CloudError
    from .render import RenderError
    from .rollout import RolloutError

    return isinstance(e, (kubeio.KubeError, kubeio.Unreachable, CloudError, RenderError, RolloutError))


class _Runner:
    def __init__(self, ctx: Context, plan: RepairPlan, result: RepairResult, allow_destructive: bool,
                 rollout_timeout: float | None, lb_timeout: float, delete_timeout: float | None) -> None:
        self.ctx, self.plan, self.result = ctx, plan, result
        self.allow_destructive = allow_destructive
        self.rollout_timeout = float(rollout_timeout if rollout_timeout is not None else ctx.config.rollout.timeout)
        self.lb_timeout = lb_timeout
        self.delete_timeout = float(delete_timeout if delete_timeout is not None else ctx.config.rollout.timeout)
        self.lb_recreated = False

    def run(self, step: RepairStep) -> StepOutcome:
        fn = getattr(self, f"_{step.name}")
        return fn(step)  # type: ignore[no-any-return]

    # --- kubernetes --------------------------------------------------------------------------

    def _apply(self, changes: list[Change]) -> int:
        from . import kube

        applied = kube.apply(self.ctx, Plan(changes=changes))
        done = [a for a in applied if a.action != "unchanged"]
        self.result.changed += [f"{a.kind} {a.namespace}/{a.name}" if a.namespace else f"{a.kind} {a.name}" for a in done]
        return len(done)

    def _kubernetes(self, step: RepairStep) -> StepOutcome:
        if self.plan.needs_generation:
            self._generate()
        if not step.has_changes:
            return StepOutcome(step.name, "skip", "nothing to create or update")
        self.ctx.emit(StepStarted(step=step.name, title=step.title))
        n = self._apply(step.changes)
        self.ctx.emit(StepFinished(step=step.name, status="ok", summary=f"{n} object(s) applied"))
        return StepOutcome(step.name, "ok", f"{n} object(s) applied")

    def _generate(self) -> None:
        """Generated secrets missing everywhere: generate them into the keyring now, then plan the
        Kubernetes objects again (their fingerprints change with the values)."""
        from . import kube, render
        from .platform import _PlanSecrets

        ensure = getattr(self.ctx.secrets, "ensure_app_secrets", None)
        if ensure is None:
            raise render.RenderError(
                f"{', '.join(self.plan.needs_generation)} must be generated but this secret source cannot store values",
                "store them with `keybuzz-tui credentials rotate NAME` (OS keyring) or set their environment variables",
            )
        for name in ensure(self.ctx.config):
            self.ctx.emit(Info(step=STEP, message=f"generated {name} and stored it in the keyring"))
        fresh = kube.plan(self.ctx, render.render(self.ctx.config, _PlanSecrets(self.ctx.secrets, self.ctx.config), include_secret_values=True))
        by_ref = {c.ref: c for c in fresh.changes}
        for s in self.plan.steps:
            if s.name in ("kubernetes", "switch"):
                s.changes = [by_ref.get(c.ref, c) for c in s.changes]
        self.plan.needs_generation = []

    def _rollout(self, step: RepairStep) -> StepOutcome:
        from . import rollout

        apps = [a.name for a in self.ctx.config.apps]
        res = rollout.watch_rollout(self.ctx, apps, self.rollout_timeout)
        self.result.rollout = res
        if res.status == "cancelled":
            raise Cancelled(self.ctx.cancel.reason or "cancelled")
        if not res.ok:
            self.result.message = f"the DaemonSets did not roll out ({res.status}): {res.message}"
            self.result.remediation = ("fix the cause shown for each stuck node, then run repair again; nothing was switched or "
                                       "deleted, so the platform serves exactly as before")
            return StepOutcome(step.name, "fail", res.summary)
        return StepOutcome(step.name, "ok", res.message)

    def _switch(self, step: RepairStep) -> StepOutcome:
        n = 0
        if step.has_changes:
            self.ctx.emit(StepStarted(step=step.name, title=step.title))
            n = self._apply(step.changes)
        cleanup = self.plan.step("cleanup")
        if step.has_changes or (cleanup is not None and cleanup.has_changes):
            problem = self._wait_serving()
            if problem:
                self.result.message = problem
                self.result.remediation = ("check the Services' selectors and the pods' readiness (kubectl -n "
                                           f"{self.ctx.config.namespace} get endpoints); nothing was deleted; run repair again")
                if step.has_changes:
                    self.ctx.emit(StepFinished(step=step.name, status="fail", summary=problem))
                return StepOutcome(step.name, "fail", problem)
        if step.has_changes:
            self.ctx.emit(StepFinished(step=step.name, status="ok", summary=f"{n} object(s) applied; the Services route to the hostNetwork pods"))
        return StepOutcome(step.name, "ok" if step.has_changes else "skip", f"{n} object(s) applied")

    def _wait_serving(self) -> str:
        """Until every app's Service lists its Ready hostNetwork pods (node IPs) as endpoints.
        Returns "" when they do, else what is missing at the deadline."""
        ctx, cfg = self.ctx, self.ctx.config
        deadline = time.monotonic() + SERVING_TIMEOUT
        why = ""
        while True:
            ctx.cancel.check()
            nodes = kubeio.get(ctx, "/api/v1/nodes").get("items") or []
            node_ips = {a["address"] for n in nodes for a in (n.get("status") or {}).get("addresses") or [] if a.get("type") == "InternalIP"}
            missing = []
            for app in cfg.apps:
                ds = kubeio.get_or_none(ctx, kubeio.resource_path("apps/v1", "daemonsets", cfg.namespace, app.name)) or {}
                want = int((ds.get("status") or {}).get("numberReady") or 0)
                ep = kubeio.get_or_none(ctx, kubeio.resource_path("v1", "endpoints", cfg.namespace, app.name)) or {}
                ready = {a.get("ip") for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
                on_nodes = len(ready & node_ips)
                if want == 0 or on_nodes < want:
                    missing.append(f"{app.name}: {on_nodes}/{want} hostNetwork pods among the Service's endpoints")
            if not missing:
                ctx.emit(Info(step="switch", message="every app's Service routes to its hostNetwork pods"))
                return ""
            why = "; ".join(missing)
            if time.monotonic() >= deadline:
                return f"the Services do not route to the hostNetwork pods yet ({why})"
            if ctx.cancel.wait(POLL):
                raise Cancelled(ctx.cancel.reason)

    def _cleanup(self, step: RepairStep) -> StepOutcome:
        ctx = self.ctx
        todo = [c for c in step.changes if c.action == "delete"]
        if not todo:
            return StepOutcome(step.name, "skip", "nothing to delete")
        if not self.allow_destructive:  # repair() refuses earlier; never delete without it
            raise DestructiveNotAllowed(todo)
        ctx.emit(StepStarted(step=step.name, title=step.title))
        gone: list[tuple[Any, str]] = []
        for c in todo:
            ctx.cancel.check()
            x = extra_of(c)
            body: dict[str, Any] = {"propagationPolicy": "Background"}
            if x.uid:
                body["preconditions"] = {"uid": x.uid}
            try:
                kubeio.request(ctx, "DELETE", x.path, body=body)
            except kubeio.KubeError as e:
                if e.status == 404:
                    ctx.emit(Info(step=step.name, message=f"{x.ref} is already gone"))
                    continue
                if e.status == 409:
                    raise kubeio.KubeError(409, "Conflict", f"{x.ref} was replaced since the plan (another uid): not deleted") from None
                raise
            ctx.journal.write("object-deleted", kind=x.kind, namespace=x.namespace, name=x.name, uid=x.uid, note=c.note)
            ctx.emit(ObjectApplied(step=step.name, action="delete", kind=x.kind, name=x.name, namespace=x.namespace, detail=c.note))
            self.result.deleted.append(x.ref)
            gone.append((x, c.note))
        left = self._wait_gone([x for x, _ in gone])
        summary = f"{len(gone)} object(s) deleted"
        if left:
            ctx.emit(Warning_(step=step.name, message=f"still terminating after {self.delete_timeout:.0f}s: {', '.join(left)}",
                              remediation="they go away by themselves; run recover later to confirm"))
            ctx.emit(StepFinished(step=step.name, status="warn", summary=summary))
            return StepOutcome(step.name, "warn", f"{summary}; still terminating: {', '.join(left)}")
        ctx.emit(StepFinished(step=step.name, status="ok", summary=summary))
        return StepOutcome(step.name, "ok", summary)

    def _wait_gone(self, extras: list[Any]) -> list[str]:
        """Until the deleted objects and their pods are gone (or the deadline): what is left."""
        ctx, ns = self.ctx, self.ctx.config.namespace
        deadline = time.monotonic() + self.delete_timeout
        while True:
            left: list[str] = []
            for x in extras:
                ctx.cancel.check()
                live = kubeio.get_or_none(ctx, x.path)
                if live is not None and (live.get("metadata") or {}).get("uid") == x.uid:
                    left.append(x.ref)
                for pod in x.pods:
                    if kubeio.get_or_none(ctx, kubeio.resource_path("v1", "pods", ns, pod)) is not None:
                        left.append(f"Pod {ns}/{pod}")
            if not left or time.monotonic() >= deadline:
                return left
            if ctx.cancel.wait(POLL):
                raise Cancelled(ctx.cancel.reason)

    # --- Hetzner -----------------------------------------------------------------------------

    def _load_balancer(self, step: RepairStep) -> StepOutcome:
        from . import lb

        ctx, cfg = self.ctx, self.ctx.config
        if not step.changes:
            return StepOutcome(step.name, "skip", "not compared")
        summary = "unchanged"
        if step.has_changes:
            applied = lb.apply(ctx, Plan(changes=step.changes), target_mode=cfg.load_balancer.target_mode, allow_destructive=self.allow_destructive)
            done = [c for c in applied.changes if c.action in ("create", "update", "delete")]
            self.result.changed += [c.ref for c in done]
            self.lb_recreated = any(c.kind == "LoadBalancer" and c.action in ("create", "delete") for c in done)
            summary = f"{len(done)} change(s) applied"
        health = lb.wait_healthy(ctx, self.lb_timeout)
        bad = sorted({name for (_port, name), st in health.items() if st != "healthy"})
        if bad:
            return StepOutcome(step.name, "warn", f"{summary}; not healthy yet: {', '.join(bad)}")
        return StepOutcome(step.name, "ok", f"{summary}; every target healthy")

    def _dns(self, step: RepairStep) -> StepOutcome:
        from . import dns, lb

        ctx = self.ctx
        if not step.has_changes and not self.lb_recreated:
            return StepOutcome(step.name, "skip", "records unchanged" if step.changes else "not compared")
        fresh = dns.plan(ctx, lb.addresses(ctx))
        if not fresh.has_changes and not any(c.action == "manual" for c in fresh.changes):
            return StepOutcome(step.name, "ok", "records already point at the Load Balancer")
        dns.apply(ctx, fresh)
        done = [c for c in fresh.changes if c.action in ("create", "update", "delete")]
        self.result.changed += [c.ref for c in done]
        manual = [c for c in fresh.changes if c.action == "manual"]
        if manual:
            return StepOutcome(step.name, "warn", f"{len(done)} record(s) changed; {len(manual)} to change by hand at the DNS provider")
        return StepOutcome(step.name, "ok", f"{len(done)} record(s) changed")

    def _firewall(self, step: RepairStep) -> StepOutcome:
        from . import firewall

        if not step.has_changes:
            return StepOutcome(step.name, "skip", "nothing to change" if step.changes else "not managed")
        applied = firewall.apply(self.ctx, Plan(changes=step.changes), allow_destructive=self.allow_destructive)
        done = [c for c in applied.changes if c.action in ("create", "update")]
        self.result.changed += [c.ref for c in done]
        return StepOutcome(step.name, "ok", f"{len(done)} change(s) applied")
