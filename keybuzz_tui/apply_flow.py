"""`keybuzz-tui apply`: the runbook end to end, headless — plan, confirm, apply step by step,
validate. The journal records the run so an interrupted apply is resumed by running it again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .cancel import Cancelled
from .engine.plan import Plan
from .engine.platform import Platform
from .events import Info, StepFinished, StepStarted, Warning_
from .redact import safe_error

OK, FAILED, USAGE, CONFLICTS, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _layer(plan: Plan, layer: str) -> Plan:
    return Plan(changes=plan.of(layer))


def run_apply(ctx: Any, args: argparse.Namespace, steps: set[str]) -> tuple[int, dict[str, Any]]:
    from .engine import kubeio

    platform = Platform(ctx)
    generated: list[str] = []
    ensure = getattr(ctx.secrets, "ensure_app_secrets", None)
    if ensure is not None and "kubernetes" in steps:
        generated = ensure(ctx.config)
        for name in generated:
            ctx.emit(Info(step="credentials", message=f"generated {name} and stored it in the keyring"))
    fp = platform.plan(probe=getattr(args, "probe", False))
    wanted = Plan(changes=[c for c in fp.plan.changes if _step_of(c.layer) in steps])
    ctx.emit(Info(step="plan", message=f"plan: {wanted.summary()}"))
    if fp.conflicts or fp.errors:
        for e in fp.errors:
            ctx.emit(Warning_(step="plan", message=e))
        return CONFLICTS, {"errors": fp.errors, "conflicts": len(fp.conflicts)}
    destructive = [c for c in wanted.changes if c.destructive]
    allow_destructive = False
    if destructive:
        ctx.emit(Warning_(step="plan", message="DESTRUCTIVE: " + "; ".join(f"{c.ref}: {c.note}" for c in destructive)))
    if wanted.has_changes and not args.yes:
        if not _confirm(f"Apply {wanted.summary()}?"):
            ctx.emit(Warning_(step="apply", message="nothing applied", remediation="re-run with --yes to apply without a prompt"))
            return USAGE, {"applied": False}
        if destructive:
            # destructive changes are asked for twice, and the second question names what goes
            what = ", ".join(c.ref for c in destructive)
            if not _confirm(f"This destroys {what}. Really proceed?"):
                ctx.emit(Warning_(step="apply", message="nothing applied (destructive changes declined)"))
                return USAGE, {"applied": False}
            allow_destructive = True
    elif destructive:
        allow_destructive = bool(getattr(args, "allow_destructive", False))
        if not allow_destructive:
            ctx.emit(Warning_(step="apply", message="the plan has destructive changes", remediation="add --allow-destructive to --yes to accept them, or run interactively"))
            return USAGE, {"applied": False, "destructive": [c.ref for c in destructive]}
    ctx.journal.start_run("apply", summary=wanted.summary(), steps=sorted(steps))
    try:
        if "kubernetes" in steps:
            ctx.emit(StepStarted(step="kubernetes", title="Kubernetes objects and DaemonSet rollout"))
            platform.apply_kubernetes(_layer(wanted, "kubernetes"))
            res = platform.rollout(getattr(args, "timeout", None))
            ok = bool(getattr(res, "ok", False))
            ctx.emit(StepFinished(step="kubernetes", status="ok" if ok else "fail", summary=str(getattr(res, "summary", ""))))
            if not ok:
                ctx.journal.finish_run("failed", step="rollout")
                ctx.emit(Warning_(step="rollout", message="the rollout did not complete", remediation="fix the cause shown above and re-run apply; `keybuzz-tui` (the wizard) offers a rollback to the previous revision"))
                return FAILED, {"failed": "rollout"}
        if "lb" in steps:
            ctx.emit(StepStarted(step="lb", title="Hetzner Load Balancer"))
            platform.apply_lb(platform.plan_lb(), allow_destructive=allow_destructive)
            platform.wait_lb_healthy()
            ctx.emit(StepFinished(step="lb", status="ok"))
        if "dns" in steps:
            ctx.emit(StepStarted(step="dns", title="DNS records"))
            platform.apply_dns(platform.plan_dns())
            ctx.emit(StepFinished(step="dns", status="ok"))
        if "firewall" in steps and ctx.config.firewall.mode == "manage":
            ctx.emit(StepStarted(step="firewall", title="Hetzner firewall"))
            platform.apply_firewall(platform.plan_firewall(), allow_destructive=allow_destructive)
            ctx.emit(StepFinished(step="firewall", status="ok"))
        rep = platform.validate()  # announces its own step
        failed = [r for r in rep.results if r.status == "fail"]
        if getattr(args, "junit", None):
            from .engine import report

            Path(args.junit).write_text(report.to_junit(rep))
        ctx.journal.finish_run("ok" if not failed else "validation-failed")
        return (FAILED if failed else OK), {"failed_checks": [r.check for r in failed]}
    except Cancelled as e:
        ctx.journal.finish_run("interrupted", reason=str(e))
        ctx.emit(Warning_(step="apply", message=f"stopped: {e}", remediation="what was applied is in the journal; run apply again to resume"))
        return INTERRUPTED, {"interrupted": True}
    except Exception as e:  # step errors (KubeError, CloudError, RenderError...) carry a remediation
        if not isinstance(e, (kubeio.KubeError, kubeio.Unreachable)) and not hasattr(e, "remediation"):
            raise
        ctx.journal.finish_run("failed", error=safe_error(e))
        remediation = str(getattr(e, "remediation", "") or "")
        ctx.emit(Warning_(step="apply", message=safe_error(e), remediation=(remediation + " — " if remediation else "") + "then run apply again: it resumes where it stopped"))
        return (UNREACHABLE if isinstance(e, kubeio.Unreachable) else FAILED), {"error": safe_error(e)}


def _step_of(layer: str) -> str:
    return {"kubernetes": "kubernetes", "hetzner": "lb", "dns": "dns", "firewall": "firewall"}.get(layer, layer)
