"""`keybuzz-tui recover | repair | rollback`: guided disaster recovery, headless.

    keybuzz-tui recover  [--config FILE] [--context NAME] [--sandbox DIR] [--json]
        The drift between keybuzz.yaml (+ the keyring) and the live platform, per object and per
        Hetzner resource, and the runs that stopped halfway. Changes nothing.
        Exit: 0 no drift, 1 drift found, 3/4/5 a layer could not be compared (refused /
        credentials / unreachable).
    keybuzz-tui repair   [...] [--yes] [--allow-destructive] [--take-over-stale-lock] [--timeout S]
        drift -> repair plan -> confirm (destructive changes asked a second time, each listed with
        what it destroys) -> repair (journaled, under the platform lock) -> validate.
        Exit: 0 repaired and every check green, 1 repair or validation failed, 2 not confirmed,
        3 plan refused or the platform lock is held, 4 credentials, 5 unreachable, 130 interrupted.
    keybuzz-tui rollback APP [--revision N] [--yes] [--take-over-stale-lock]
        The DaemonSet's revisions with what changed in each, then a rollback to N (default: the
        previous one), watched. Exit: 0 rolled back, 1 the rollout did not complete, 2 no such
        app or revision / not confirmed, 3 lock held.

The commands share the other commands' conventions (keybuzz_tui.cli): --config, --context,
--sandbox, --json, the exit codes, Ctrl-C stopping at the next safe point.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

OK, FAILED, USAGE, CONFLICTS, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
_PROBLEM_CODES = {"unreachable": UNREACHABLE, "credentials": CREDENTIALS}
SETTLE = 5.0  # seconds before validating once more when checks fail right after a repair


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .cli import add_common_options

    rec = subparsers.add_parser(
        "recover", help="show the drift from keybuzz.yaml and the runs that stopped halfway (changes nothing)",
        description="Compare keybuzz.yaml and the keyring with the live platform: missing, changed and extra objects, "
        "Hetzner resources, interrupted runs. Exit 0 no drift, 1 drift found.",
    )
    add_common_options(rec)
    rec.set_defaults(run=_guarded(_cmd_recover))

    rep = subparsers.add_parser(
        "repair", help="repair the drift: plan, confirm (destructive changes twice), repair, validate",
        description="Recreate Secrets from the keyring, re-apply the DaemonSets and Services, recreate or re-target the "
        "Load Balancer, restore DNS, move a classic install to the hostNetwork topology (deleting the classic "
        "objects only after the new pods serve), then validate.",
    )
    add_common_options(rep)
    rep.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rep.add_argument("--allow-destructive", action="store_true", help="with --yes: also delete what the plan lists as destructive")
    rep.add_argument("--take-over-stale-lock", action="store_true", help="take over a platform lock whose holder stopped renewing it (journaled)")
    rep.add_argument("--timeout", type=int, help="rollout timeout in seconds (default: rollout.timeout)")
    rep.set_defaults(run=_guarded(_cmd_repair))

    rb = subparsers.add_parser(
        "rollback", help="take an app's DaemonSet back to an earlier revision",
        description="List the app's DaemonSet revisions with what changed in each, then roll back (default: the previous revision).",
    )
    add_common_options(rb)
    rb.add_argument("app", metavar="APP", help="the app (its DaemonSet), e.g. keybuzz-api")
    rb.add_argument("--revision", type=int, help="the revision to go back to (default: the previous one)")
    rb.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rb.add_argument("--take-over-stale-lock", action="store_true", help="take over a stale platform lock (journaled)")
    rb.add_argument("--timeout", type=int, help="rollout timeout in seconds (default: rollout.timeout)")
    rb.set_defaults(run=_guarded(_cmd_rollback))
    return rep


# --- plumbing --------------------------------------------------------------------------------------


def _guarded(fn: Any) -> Any:
    """Usage problems found before anything starts: one line on stderr, exit 2, no traceback."""

    def run(args: argparse.Namespace) -> int:
        from . import cli as base

        try:
            return int(fn(args))
        except _Usage as e:
            base.err(str(e))
            return USAGE

    run.__name__ = fn.__name__.lstrip("_")
    return run


class _Sink:
    """The printer, with the planners' per-object lines and warnings held back while the drift is
    computed: the drift report says the same things once, in recovery's words."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.quiet = False

    def __call__(self, event: Any) -> None:
        from .events import ObjectPlanned, Warning_

        if self.quiet and isinstance(event, (ObjectPlanned, Warning_)):
            return
        self.inner(event)


def _confirm(question: str) -> bool:
    """y/N on a terminal; never yes without one (use --yes)."""
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _say(sink: _Sink, lines: list[str]) -> None:
    from .output import HumanPrinter

    if isinstance(sink.inner, HumanPrinter):
        for line in lines:
            sink.inner.line(line)


def _write(sink: _Sink, obj: dict[str, Any]) -> None:
    from .output import JsonPrinter

    if isinstance(sink.inner, JsonPrinter):
        sink.inner.write(obj)


class _Usage(Exception):
    pass


def _setup(args: argparse.Namespace) -> tuple[Any, _Sink]:
    from pathlib import Path

    from . import cli as base

    if getattr(args, "sandbox", None) and not (Path(args.sandbox) / "sandbox.json").exists():
        raise _Usage(f"{args.sandbox} is not the state directory of a running sandbox (no sandbox.json): "
                     "start one with `keybuzz-tui sandbox --state-dir DIR`")
    cfg = base.load_config(args)
    sink = _Sink(base.make_sink(args))
    ctx = base.make_context(args, cfg, sink)
    base.install_sigint(ctx)
    return ctx, sink


def _finish(args: argparse.Namespace, sink: _Sink, code: int, **result: Any) -> int:
    from . import cli as base

    return base.finish(args, sink.inner, code, **result)


def _reach(ctx: Any, args: argparse.Namespace, sink: _Sink) -> int | None:
    """The cluster must answer (a read-only look needs no write permission)."""
    from . import cli as base
    from .engine import preflight
    from .redact import safe_error

    try:
        pf = preflight.run(ctx)
    except Exception as e:
        base.err(f"cannot use the kubeconfig: {safe_error(e)}")
        return _finish(args, sink, UNREACHABLE, error=safe_error(e))
    if not pf.reachable:
        base.err(pf.user_message)
        return _finish(args, sink, CREDENTIALS if "refused us: 401" in pf.user_message else UNREACHABLE, error=pf.user_message)
    return None


def _drift(ctx: Any, sink: _Sink) -> Any:
    from .engine import recovery

    sink.quiet = True
    try:
        report = recovery.drift(ctx)
    finally:
        sink.quiet = False
    _say(sink, report.lines()[1:])  # the first line (the summary) closed the drift step already
    _write(sink, {"type": "DriftReport", **report.to_dict()})
    return report


def _problem_code(report: Any) -> int:
    codes = [_PROBLEM_CODES.get(p.kind, CONFLICTS) for p in report.problems]
    return max(codes) if codes else OK


def _lock_message(e: Any, args: argparse.Namespace) -> tuple[str, str]:
    from .engine.lock import holder_alive

    if holder_alive(e.info.holder) is False:
        return str(e), ("its holder no longer runs on this machine (killed or crashed), so the lock is stale: "
                        "run again with --take-over-stale-lock (the takeover is journaled)")
    if e.info.stale:
        return str(e), "its holder stopped renewing it (a crashed run?): add --take-over-stale-lock to take it over (journaled)"
    return str(e), "another wizard is changing this platform: wait until it finishes (or ask its holder), then try again"


# --- recover ---------------------------------------------------------------------------------------


def _cmd_recover(args: argparse.Namespace) -> int:
    from .cancel import Cancelled

    ctx, sink = _setup(args)
    code = _reach(ctx, args, sink)
    if code is not None:
        return code
    try:
        report = _drift(ctx, sink)
    except Cancelled:
        return _finish(args, sink, INTERRUPTED, interrupted=True)
    if report.problems:
        return _finish(args, sink, _problem_code(report), summary=report.summary(), problems=[p.message for p in report.problems],
                       verdict=f"drift: {report.summary()}; not compared: {', '.join(sorted({p.layer for p in report.problems}))}")
    stopped = f"; {len(report.interrupted)} interrupted run(s)" if report.interrupted else ""
    fix = "; `keybuzz-tui repair` repairs it" if report.has_drift else ""
    return _finish(args, sink, FAILED if report.has_drift else OK, summary=report.summary(), drift=len(report.items),
                   interrupted=[r.describe() for r in report.interrupted], verdict=f"drift: {report.summary()}{stopped}{fix}")


# --- repair ----------------------------------------------------------------------------------------


def _cmd_repair(args: argparse.Namespace) -> int:  # noqa: C901 - the confirmation dialogue reads best in one place
    from . import cli as base
    from .cancel import Cancelled
    from .engine import kubeio, recovery
    from .engine.lock import LockHeld
    from .engine.platform import Platform
    from .events import Info, Warning_
    from .redact import safe_error

    ctx, sink = _setup(args)
    code = base.guard_preflight(ctx, args, sink.inner, need_hcloud=True)
    if code is not None:
        return code
    try:
        report = _drift(ctx, sink)
        if report.problems:
            layers = ", ".join(dict.fromkeys(p.layer for p in report.problems))
            return _finish(args, sink, _problem_code(report), summary=report.summary(), problems=[p.message for p in report.problems],
                           verdict=f"nothing repaired: {layers} could not be compared (see above for what to do)")
        plan = recovery.repair_plan(ctx, report)
        _say(sink, plan.lines())
        _write(sink, {"type": "RepairPlan", **plan.to_dict()})
        destructive = plan.destructive
        allow = False
        if plan.has_changes and not args.yes:
            if not _confirm(f"Repair: {plan.summary()}?"):
                ctx.emit(Warning_(step="repair", message="nothing changed", remediation="re-run with --yes to repair without a prompt"))
                return _finish(args, sink, USAGE, repaired=False)
            if destructive:
                _say(sink, ["This repair DESTROYS:", *(f"  - {line}" for line in plan.destructive_lines())])
                if not _confirm(f"Really delete these {len(destructive)} object(s)?"):
                    ctx.emit(Warning_(step="repair", message="nothing changed (destructive changes declined)",
                                      remediation="re-run and accept them, or remove them from the platform by hand"))
                    return _finish(args, sink, USAGE, repaired=False, destructive=[c.ref for c in destructive])
                allow = True
        elif destructive:
            allow = bool(args.allow_destructive)
            if not allow:
                ctx.emit(Warning_(step="repair", message="the plan destroys: " + "; ".join(plan.destructive_lines()),
                                  remediation="add --allow-destructive to --yes to accept them, or run interactively"))
                return _finish(args, sink, USAGE, repaired=False, destructive=[c.ref for c in destructive])
        if not plan.has_changes:
            ctx.emit(Info(step="repair", message="nothing to change: checking the rollout and the Load Balancer, then validating"))
        take_over = bool(args.take_over_stale_lock)
        while True:
            try:
                result = recovery.repair(ctx, plan, allow_destructive=allow, take_over=take_over, rollout_timeout=args.timeout)
                break
            except LockHeld as e:
                if e.info.stale and not take_over and not args.yes and _confirm(f"{e}. Take the lock over?"):
                    take_over = True
                    continue
                msg, fix = _lock_message(e, args)
                base.err(f"{msg}\n  -> {fix}")
                return _finish(args, sink, CONFLICTS, error=msg, holder=e.info.holder)
            except recovery.RepairRefused as e:
                base.err(f"{e}\n  -> {e.remediation}" if e.remediation else str(e))
                return _finish(args, sink, USAGE if isinstance(e, recovery.DestructiveNotAllowed) else CONFLICTS, error=str(e))
    except (kubeio.KubeError, kubeio.Unreachable) as e:  # the lock's own calls (a 403 on leases, the API gone)
        code = UNREACHABLE if isinstance(e, kubeio.Unreachable) else (CREDENTIALS if getattr(e, "status", 0) in (401, 403) else FAILED)
        return _finish(args, sink, code, error=safe_error(e), verdict=f"nothing repaired: {safe_error(e)}")
    except Cancelled:
        return _finish(args, sink, INTERRUPTED, interrupted=True)
    if result.status == "cancelled":
        return _finish(args, sink, INTERRUPTED, interrupted=True, repair=result.to_dict(),
                       verdict="repair interrupted: run `keybuzz-tui repair` again to finish it")
    if not result.ok:
        return _finish(args, sink, UNREACHABLE if result.kind == "unreachable" else FAILED, repair=result.to_dict(),
                       verdict=f"repair failed: {result.message.splitlines()[0] if result.message else result.status}")
    rep = Platform(ctx).validate()
    failed = [r.check for r in rep.results if r.status == "fail"]
    if failed and not rep.cancelled and (result.changed or result.deleted):
        # right after changes some answers may still be settling (health checks, caches): look once more
        ctx.emit(Info(step="validate", message=f"{', '.join(failed)} failed right after the changes; checking again in {SETTLE:.0f} s"))
        if not ctx.cancel.wait(SETTLE):
            rep = Platform(ctx).validate()
            failed = [r.check for r in rep.results if r.status == "fail"]
    if rep.cancelled or ctx.cancel.cancelled:
        return _finish(args, sink, INTERRUPTED, interrupted=True, repair=result.to_dict(), verdict="validation interrupted")
    done = f"repaired ({len(result.changed)} change(s), {len(result.deleted)} deletion(s))"
    verdict = f"{done}; validation: {len(failed)} check(s) failed: {', '.join(failed)}" if failed else f"{done}; every check green"
    return _finish(args, sink, FAILED if failed else OK, repair=result.to_dict(), failed_checks=failed, verdict=verdict)


# --- rollback --------------------------------------------------------------------------------------


def _cmd_rollback(args: argparse.Namespace) -> int:
    from . import cli as base
    from .cancel import Cancelled
    from .engine import kubeio, recovery
    from .engine.lock import LockHeld
    from .engine.rollout import RolloutError
    from .redact import safe_error

    ctx, sink = _setup(args)
    apps = [a.name for a in ctx.config.apps]
    if args.app not in apps:
        base.err(f"no app {args.app!r} in keybuzz.yaml; apps: {', '.join(apps)}")
        return _finish(args, sink, USAGE, error=f"unknown app {args.app}")
    code = _reach(ctx, args, sink)
    if code is not None:
        return code
    try:
        revs = recovery.revisions(ctx, args.app)
    except RolloutError as e:
        base.err(f"{e}\n  -> {e.remediation}" if e.remediation else str(e))
        return _finish(args, sink, USAGE, error=str(e))
    lines = [f"{args.app}: {len(revs)} revision(s)"]
    for r in revs:
        mark = "  (running)" if r.current else ""
        cause = f" — {r.change_cause}" if r.change_cause else ""
        lines.append(f"  revision {r.revision}: {', '.join(r.images)}{mark}{cause}  [{r.created}]")
        lines.extend(f"      {line}" for line in r.lines()[:12])
    _say(sink, lines)
    _write(sink, {"type": "Revisions", "app": args.app, "revisions": [
        {"revision": r.revision, "images": list(r.images), "current": r.current, "change_cause": r.change_cause, "created": r.created, "diff": r.lines()}
        for r in revs]})
    target = args.revision
    if not args.yes:
        what = f"revision {target}" if target is not None else "the previous revision"
        if not _confirm(f"Roll {args.app} back to {what}?"):
            return _finish(args, sink, USAGE, rolled_back=False)
    take_over = bool(args.take_over_stale_lock)
    try:
        while True:
            try:
                res = recovery.rollback(ctx, args.app, target, take_over=take_over, timeout=args.timeout)
                break
            except LockHeld as e:
                if e.info.stale and not take_over and not args.yes and _confirm(f"{e}. Take the lock over?"):
                    take_over = True
                    continue
                msg, fix = _lock_message(e, args)
                base.err(f"{msg}\n  -> {fix}")
                return _finish(args, sink, CONFLICTS, error=msg, holder=e.info.holder)
    except RolloutError as e:
        base.err(f"{e}\n  -> {e.remediation}" if e.remediation else str(e))
        return _finish(args, sink, USAGE, error=str(e))
    except (kubeio.KubeError, kubeio.Unreachable) as e:
        code = UNREACHABLE if isinstance(e, kubeio.Unreachable) else (CREDENTIALS if getattr(e, "status", 0) in (401, 403) else FAILED)
        return _finish(args, sink, code, error=safe_error(e), verdict=f"no rollback: {safe_error(e)}")
    except Cancelled:
        return _finish(args, sink, INTERRUPTED, interrupted=True)
    if res.rollout is not None and not res.rollout.ok:
        _say(sink, [res.rollout.summary])
    return _finish(args, sink, OK if res.ok else FAILED, app=args.app, to_revision=res.to_revision, skipped=res.skipped, message=res.message,
                   verdict=res.message if res.ok else f"{args.app}: the rollback's rollout did not complete")
