"""`keybuzz-tui firewall check | advice | apply`: step 6 of the runbook on its own.

    keybuzz-tui firewall check  [--config FILE] [--context NAME] [--sandbox DIR] [--json] [-v]
        Which Hetzner Cloud Firewalls apply to the workers and whether the NodePorts get through
        (the LB's health check and traffic first), what is missing and how to fix it, and the UFW
        rules each worker needs. Changes nothing; needs only the Hetzner API.
        Exit: 0 nothing missing, 1 something is missing, 2 usage/config error, 4 no usable Hetzner
        token, 5 the Hetzner API cannot be reached.
    keybuzz-tui firewall advice [--config FILE] [--sandbox DIR] [--json]
        The UFW commands the runbook expects on every worker, ready to copy (keybuzz-tui cannot see
        UFW through any API). Lists the workers when a Hetzner token is at hand; works offline.
        Exit: 0, or 2 for a bad keybuzz.yaml.
    keybuzz-tui firewall apply  [...] [--yes] [--allow-destructive] [--take-over-stale-lock]
        The fix, whatever firewall.mode says (except off): the firewall firewall.name with one inbound
        rule per NodePort from firewall.allow_from (rules keybuzz-tui did not create are kept),
        applied to the workers by label selector. The usual flow: preflight, the platform lock,
        the plan, a confirmation (changes that cut access are asked a second time; with --yes they
        need --allow-destructive), the changes (journaled as a run of its own), then the check again.
        Exit: 0 applied (or nothing to change) and nothing missing, 1 the apply failed or something
        is still missing, 2 not confirmed / destructive without --allow-destructive / firewall.mode
        off, 3 the platform lock is held, 4 credentials, 5 unreachable, 130 interrupted.

The commands share the other commands' conventions (keybuzz_tui.cli): --config, --context,
--sandbox, --json (JSON lines ending with a Result object), Ctrl-C stopping at the next safe point.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

OK, FAILED, USAGE, CONFLICTS, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .cli import add_common_options

    p = subparsers.add_parser(
        "firewall", help="step 6: check the Hetzner firewalls of the workers, print the UFW rules, apply the fix",
        description="Hetzner Cloud Firewalls filter the workers' public interface, UFW the host. `check` says what the "
        "NodePorts need and what is missing, `advice` prints the UFW commands for every worker, `apply` applies the "
        "Hetzner firewall fix (plan, confirm, apply, journaled).",
        epilog="exit codes: 0 ok, 1 something missing (check) or the apply failed, 2 usage/config error or not confirmed, "
        "3 platform lock held, 4 credentials, 5 Hetzner/cluster unreachable, 130 interrupted.",
    )
    sub = p.add_subparsers(dest="firewall_command", metavar="ACTION")
    ch = sub.add_parser("check", help="what reaches the workers, what is missing, the fix (exit 1 when something is missing)")
    add_common_options(ch)
    ch.set_defaults(run=_cmd_check)
    ad = sub.add_parser("advice", help="the UFW rules the runbook expects on every worker, to copy and paste")
    add_common_options(ad)
    ad.set_defaults(run=_cmd_advice)
    ap = sub.add_parser("apply", help="apply the Hetzner firewall fix: plan, confirm, apply (journaled), check again")
    add_common_options(ap)
    ap.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    ap.add_argument("--allow-destructive", action="store_true",
                    help="with --yes: also accept changes that cut access (a first firewall on a worker drops what no rule allows)")
    ap.add_argument("--take-over-stale-lock", action="store_true", help="take over a platform lock whose run stopped renewing it (journaled)")
    ap.set_defaults(run=_cmd_apply)
    p.set_defaults(run=_no_action, _firewall_parser=p)
    return p


def _no_action(args: argparse.Namespace) -> int:
    parser = getattr(args, "_firewall_parser", None)
    if parser is not None:
        parser.print_help(sys.stderr)
    return USAGE


def _setup(args: argparse.Namespace) -> tuple[Any, Any]:
    from . import cli as base

    cfg = base.load_config(args)  # ConfigError -> 2 in cli.main
    sink = base.make_sink(args)
    ctx = base.make_context(args, cfg, sink)
    base.install_sigint(ctx)
    return ctx, sink


def _confirm(question: str) -> bool:
    """y/N on a terminal (asked on stderr: with --json stdout is JSON only); never yes without one."""
    if not sys.stdin.isatty():
        return False
    try:
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# --- check -------------------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from . import cli as base
    from .apply_flow import classify
    from .cancel import Cancelled
    from .engine.platform import Platform

    ctx, sink = _setup(args)
    try:
        rv = Platform(ctx).review_firewall()
    except Cancelled:
        return base.finish(args, sink, INTERRUPTED, "firewall check interrupted", interrupted=True)
    finally:
        ctx.close()
    off = " (firewall.mode is off: plan and apply skip this step)" if ctx.config.firewall.mode == "off" else ""
    if rv.error:
        p = classify(rv.exception) if rv.exception is not None else None
        code = p.code if p is not None and p.code in (CREDENTIALS, UNREACHABLE, USAGE) else FAILED
        return base.finish(args, sink, code, f"firewall check could not run: {rv.error.splitlines()[0]}", firewall=rv.to_dict())
    if rv.missing:
        return base.finish(args, sink, FAILED, f"firewall: {rv.summary()}{off}", firewall=rv.to_dict())
    return base.finish(args, sink, OK, f"firewall: nothing missing; {rv.summary()}{off}", firewall=rv.to_dict())


# --- advice ------------------------------------------------------------------------------------------


def _cmd_advice(args: argparse.Namespace) -> int:
    from . import cli as base
    from .engine import firewall
    from .output import JsonPrinter
    from .redact import safe_error

    ctx, sink = _setup(args)
    cfg = ctx.config
    sel = cfg.load_balancer.target_selector
    workers: list[str] = []
    why = ""
    try:
        workers = firewall.worker_names(ctx)
    except Exception as e:  # offline, no token: the advice does not need the list
        why = safe_error(e).splitlines()[0]
    finally:
        ctx.close()
    lines = firewall.ufw_advice(cfg)
    commands = [ln for ln in lines if not ln.startswith("#")]
    if isinstance(sink, JsonPrinter):
        sink.write({"type": "UfwAdvice", "selector": sel, "workers": workers, "workers_error": why, "commands": commands, "lines": lines})
        return base.finish(args, sink, OK, f"UFW advice: {len(commands)} command(s) for each of "
                           + (f"{len(workers)} worker(s)" if workers else f"the servers matching {sel}"), workers=workers)
    out = sys.stdout
    head = [
        "# UFW rules the KeyBuzz runbook expects on every worker. keybuzz-tui cannot see UFW through any API:",
        "# run these on each worker (as root or with sudo), then `keybuzz-tui validate` checks the NodePorts answer.",
    ]
    if workers:
        head.append(f"# workers (servers matching {sel}): {', '.join(workers)}")
    else:
        head.append(f"# workers: the servers matching {sel}" + (f" (not listed: {why})" if why else ""))
    from .redact import REDACTOR

    for ln in [*head, *lines]:
        out.write(REDACTOR.redact(ln) + "\n")
    out.flush()
    return OK


# --- apply -------------------------------------------------------------------------------------------


def _cmd_apply(args: argparse.Namespace) -> int:
    ctx, sink = _setup(args)
    try:
        return _apply(args, ctx, sink)
    finally:
        ctx.close()


def _apply(args: argparse.Namespace, ctx: Any, sink: Any) -> int:  # noqa: C901 - the confirmation dialogue reads best in one place
    from . import cli as base
    from .apply_flow import acquire_lock, classify
    from .cancel import Cancelled
    from .engine.lock import LockHeld
    from .engine.platform import Platform
    from .events import Warning_

    if ctx.config.firewall.mode == "off":
        base.err("firewall.mode is off in keybuzz.yaml: keybuzz-tui does not touch the firewall (set it to check or manage first)")
        return base.finish(args, sink, USAGE, error="firewall.mode is off")
    code = base.guard_preflight(ctx, args, sink, need_hcloud=True)
    if code is not None:
        return code
    ctx.journal.new_run()  # one id for the lock lines and the changes of this run
    try:
        lock = acquire_lock(ctx, args)
    except LockHeld as e:
        p = classify(e)
        ctx.emit(Warning_(step="lock", message=p.message, remediation=p.remediation))
        return base.finish(args, sink, p.code, f"{p.message} — nothing was changed", lock_holder=e.info.holder)
    except Cancelled:
        return base.finish(args, sink, INTERRUPTED, "interrupted before anything changed", interrupted=True)
    except Exception as e:
        p = classify(e)
        return base.finish(args, sink, p.code, f"cannot take the platform lock: {p.message.splitlines()[0]} — nothing was changed", error=p.message)
    platform = Platform(ctx)
    started = finished = False

    def end(status: str, **fields: Any) -> None:
        nonlocal finished
        if started and not finished:
            finished = True
            ctx.journal.finish_run(status, **fields)

    try:
        try:
            plan = platform.plan_firewall(mode="manage")  # the fix is explicit here, whatever firewall.mode says
        except Cancelled:
            return base.finish(args, sink, INTERRUPTED, "interrupted before anything changed", interrupted=True)
        except Exception as e:
            p = classify(e)
            ctx.emit(Warning_(step="firewall", message=p.message, remediation=p.remediation))
            return base.finish(args, sink, p.code, f"the firewall plan failed: {p.message.splitlines()[0]} — nothing was changed", error=p.message)
        mine = [c for c in plan.changes if c.action in ("create", "update")]
        destructive = [c for c in mine if c.destructive]
        if not mine:
            rv = platform.review_firewall()
            return base.finish(args, sink, FAILED if rv.missing else OK,
                               f"firewall: nothing to change ({plan.summary()}); {rv.summary()}", applied=False, firewall=rv.to_dict())
        if destructive:
            ctx.emit(Warning_(step="firewall", message="CUTS ACCESS: " + "; ".join(f"{c.ref}: {c.note}" for c in destructive)))
        allow = False
        if not args.yes:
            if not _confirm(f"Apply to the Hetzner firewall: {plan.summary()}?"):
                ctx.emit(Warning_(step="firewall", message="nothing applied", remediation="re-run with --yes to apply without a prompt"))
                return base.finish(args, sink, USAGE, "nothing applied: not confirmed (no terminal to ask, or declined); use --yes", applied=False)
            if destructive:
                if not _confirm(f"This cuts access: {'; '.join(c.note for c in destructive)}. Really proceed?"):
                    return base.finish(args, sink, USAGE, "nothing applied: the changes that cut access were declined", applied=False)
                allow = True
        elif destructive:
            allow = bool(args.allow_destructive)
            if not allow:
                ctx.emit(Warning_(step="firewall", message="the plan cuts access: " + "; ".join(c.note for c in destructive),
                                  remediation="add --allow-destructive to --yes to accept it (first add an SSH rule for your admin addresses if you need one), "
                                  "or run interactively"))
                return base.finish(args, sink, USAGE, "nothing applied: the firewall plan cuts access (add --allow-destructive)",
                                   applied=False, destructive=[c.ref for c in destructive])
        ctx.journal.start_run("firewall-apply", summary=plan.summary(), steps=["firewall"])
        started = True
        try:
            platform.apply_firewall(plan, allow_destructive=allow)
        except Cancelled as e:
            end("interrupted", reason=str(e))
            return base.finish(args, sink, INTERRUPTED, "interrupted: what was applied is in the journal; run it again to finish", interrupted=True)
        except Exception as e:
            p = classify(e)
            end("failed", error=p.message.splitlines()[0] if p.message else "")
            ctx.emit(Warning_(step="firewall", message=p.message, remediation=p.remediation))
            return base.finish(args, sink, p.code, f"the firewall apply failed: {p.message.splitlines()[0] if p.message else p.code}", error=p.message)
        end("ok")  # the changes are done; the check below only reports
        rv = platform.review_firewall()
        if rv.missing:
            return base.finish(args, sink, FAILED, f"firewall applied ({plan.summary()}), but still missing: {rv.summary()}", applied=True, firewall=rv.to_dict())
        return base.finish(args, sink, OK, f"firewall applied: {plan.summary()}; {rv.summary()}", applied=True, firewall=rv.to_dict())
    except BaseException:
        end("interrupted", reason="aborted")
        raise
    finally:
        lock.release()
