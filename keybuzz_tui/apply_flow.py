"""`keybuzz-tui apply`: the runbook end to end, headless — lock, plan, confirm, apply step by step,
validate. The journal records the run so an interrupted apply is resumed by running it again.

Also the CLI's shared judgement of what went wrong: `classify` maps any step error (a Kubernetes
refusal, a Hetzner error code, a missing secret, a held lock...) to the documented exit code with
the operator-facing message and remediation, and `plan_all` runs the full plan keeping the errors
themselves (not only their text) so `plan` and `apply` exit with the right code.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cancel import Cancelled
from .engine.plan import Plan
from .engine.platform import FullPlan, Platform
from .events import Info, StepStarted, Warning_
from .redact import safe_error

OK, FAILED, USAGE, CONFLICTS, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

# Hetzner error codes (hcloudio.CloudError.code) by exit code; the rest is a failed apply (1)
_CLOUD_CREDENTIALS = {"unauthorized", "token_readonly", "forbidden", "no_token"}
_CLOUD_UNREACHABLE = {"unreachable", "timeout", "maintenance", "unavailable", "bad_gateway"}
_CLOUD_CONFLICTS = {"uniqueness_error", "source_port_already_used", "stale_plan", "conflict"}
LB_SETTLE_TIMEOUT = 120.0  # seconds (Hetzner time) for every new LB target to get a health verdict


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        sys.stderr.write(f"{question} [y/N] ")  # not stdout: with --json, stdout is JSON lines only
        sys.stderr.flush()
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _layer(plan: Plan, layer: str) -> Plan:
    return Plan(changes=plan.of(layer))


def _step_of(layer: str) -> str:
    return {"kubernetes": "kubernetes", "hetzner": "lb", "dns": "dns", "firewall": "firewall"}.get(layer, layer)


# --- what went wrong, as an exit code ------------------------------------------------------------


@dataclass
class Problem:
    code: int
    message: str
    remediation: str = ""


def classify(e: BaseException) -> Problem:
    """Any error a step can raise, as (exit code, message, remediation); never a traceback."""
    from .config import ConfigError
    from .credentials import CredentialError
    from .engine import kubeio
    from .engine.hcloudio import CloudError
    from .engine.lock import LockHeld
    from .engine.render import MissingSecret, RenderError

    msg = safe_error(e)
    remediation = str(getattr(e, "remediation", "") or "")
    if isinstance(e, Cancelled):
        return Problem(INTERRUPTED, f"stopped: {msg}", "what was applied is in the journal; run apply again to resume")
    if isinstance(e, LockHeld):
        return Problem(CONFLICTS, msg, lock_remediation(e))
    if isinstance(e, MissingSecret):
        return Problem(CREDENTIALS, msg, remediation)
    if isinstance(e, CredentialError):
        return Problem(CREDENTIALS, msg, str(getattr(e, "remediation", "") or ""))
    if isinstance(e, (RenderError, ConfigError)):
        return Problem(USAGE, msg, remediation)
    if isinstance(e, kubeio.Unreachable):
        return Problem(UNREACHABLE, f"cannot reach the Kubernetes API: {msg}",
                       remediation or "check the kubeconfig context, the API address and the network (VPN), then run apply again: it resumes")
    if isinstance(e, CloudError):
        code = e.code
        if code in _CLOUD_CREDENTIALS:
            out = CREDENTIALS
        elif code in _CLOUD_UNREACHABLE:
            out = UNREACHABLE
        elif code in _CLOUD_CONFLICTS:
            out = CONFLICTS
        elif code == "destructive":
            out = USAGE
        else:
            out = FAILED
        return Problem(out, e.message, e.remediation)
    if isinstance(e, kubeio.KubeError):
        status = e.status
        if status in (401, 403):
            out = CREDENTIALS
        elif status in (409, 422):
            out = CONFLICTS
        else:
            out = FAILED
        return Problem(out, msg, remediation)
    from .engine.portprobe import ProbeError
    from .engine.ports import PortScanError

    if isinstance(e, (PortScanError, ProbeError)):
        cause: BaseException | None = e.__cause__ or e.__context__
        while cause is not None and not isinstance(cause, kubeio.Unreachable):
            cause = cause.__cause__ or cause.__context__
        return Problem(UNREACHABLE if cause is not None else FAILED, msg, "check the kubeconfig context and that the API server is up, then run again")
    if remediation:  # other step errors carry their own advice
        return Problem(FAILED, msg, remediation)
    return Problem(FAILED, f"unexpected error: {type(e).__name__}: {msg}", "run again; if it persists, report it with the journal (no secrets in it)")


_PRIORITY = {CREDENTIALS: 0, UNREACHABLE: 1, USAGE: 2, CONFLICTS: 3, FAILED: 4}


def worst(codes: list[int]) -> int:
    """The exit code for several problems at once: credentials, then reachability, then config, then conflicts."""
    return min(codes, key=lambda c: _PRIORITY.get(c, 9)) if codes else OK


# --- the plan ------------------------------------------------------------------------------------


@dataclass
class PlanOutcome:
    full: FullPlan
    problems: list[tuple[str, Problem]] = field(default_factory=list)
    firewall: Any = None  # firewall.FirewallReview in check mode (warnings only: never in `code`)

    @property
    def code(self) -> int:
        codes = [p.code for _, p in self.problems]
        if self.full.conflicts:
            codes.append(CONFLICTS)
        if self.full.errors and not codes:
            codes.append(CONFLICTS)
        return worst(codes)


class _Recording(Platform):
    """The facade, remembering each plan step's exception (Platform.plan keeps only its text)."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.raised: list[tuple[str, BaseException]] = []

    def _keep(self, step: str, fn: Any) -> Any:
        try:
            return fn()
        except Cancelled:
            raise
        except Exception as e:
            self.raised.append((step, e))
            raise

    def scan_ports(self, *, probe: bool = False) -> list[Any]:
        return self._keep("ports", lambda: super(_Recording, self).scan_ports(probe=probe))  # type: ignore[no-any-return]

    def plan_kubernetes(self) -> Plan:
        return self._keep("kubernetes", lambda: super(_Recording, self).plan_kubernetes())  # type: ignore[no-any-return]

    def plan_lb(self) -> Plan:
        return self._keep("load balancer", lambda: super(_Recording, self).plan_lb())  # type: ignore[no-any-return]

    def plan_dns(self) -> Plan:
        return self._keep("dns", lambda: super(_Recording, self).plan_dns())  # type: ignore[no-any-return]

    def plan_firewall(self, *, mode: str | None = None) -> Plan:
        return self._keep("firewall", lambda: super(_Recording, self).plan_firewall(mode=mode))  # type: ignore[no-any-return]


def plan_all(ctx: Any, *, probe: bool = False, firewall_check: bool = False) -> PlanOutcome:
    """Platform.plan (every step emits its own events), with each error classified. With
    firewall_check and firewall.mode: check, the Firewall step follows as a check (what passes,
    what is missing, the fix, the UFW rules): warnings that never change the exit code."""
    platform = _Recording(ctx)
    fp = platform.plan(probe=probe)
    outcome = PlanOutcome(fp, [(step, classify(e)) for step, e in platform.raised])
    if firewall_check and ctx.config.firewall.mode == "check":
        outcome.firewall = platform.review_firewall()
    return outcome


def plan_result(fp: FullPlan, firewall: Any = None) -> dict[str, Any]:
    """The plan's part of the --json Result object (`firewall`: the check mode's review)."""
    counts = fp.plan.counts()
    extra = {"firewall": firewall.to_dict()} if firewall is not None else {}
    return {**extra,
        "summary": fp.plan.summary(),
        "changes": fp.plan.has_changes,
        "counts": {k: counts.get(k, 0) for k in ("create", "update", "delete", "unchanged", "manual")},
        "errors": list(fp.errors),
        "conflicts": [
            {"name": c.name, "port": c.port, "status": c.status, "detail": c.detail, "remediation": c.remediation,
             "holders": list(c.holders), "nodes": list(c.nodes), "suggestions": list(c.suggestions)}
            for c in fp.conflicts
        ],
    }


def plan_verdict(outcome: PlanOutcome, *, applying: bool) -> str:
    """One line: why the plan stops here."""
    fp = outcome.full
    parts = []
    if fp.conflicts:
        parts.append(f"{len(fp.conflicts)} port conflict(s): " + ", ".join(
            f"{c.name} {c.port}" + (f" (held by {'; '.join(c.holders[:2])}" + (f" on {', '.join(c.nodes[:3])}" if c.nodes else "") + ")" if c.holders else "")
            for c in fp.conflicts))
    for step, p in outcome.problems:
        lines = [ln.strip() for ln in p.message.strip().splitlines() if ln.strip()] or [step]
        first = lines[0].replace("; nothing was changed", "")
        if first.endswith(":") and len(lines) > 1:  # a header, then what is refused
            first = f"{first} {lines[1]}"
        parts.append(f"{step}: {first}")
    what = "; ".join(parts) or "the plan has errors"
    tail = "nothing was changed; fix what is shown above and run apply again" if applying else "fix what is shown above and plan again"
    return f"{what} — {tail}"


# --- secrets -------------------------------------------------------------------------------------


def missing_secrets(ctx: Any) -> list[Problem]:
    """Entered (not generated) app secrets with no value in the keyring or the environment."""
    secrets = ctx.secrets
    if not hasattr(secrets, "missing"):
        return []
    from .credentials import CredentialError
    from .engine.render import MissingSecret

    names = [n for n in secrets.missing(ctx.config) if n.startswith("app/")]
    keyring_problem = ""
    if names:
        try:
            secrets.verify()
        except CredentialError as e:
            keyring_problem = str(getattr(e, "reason", "") or e).splitlines()[0]
    out = []
    for name in names:
        _, app, key = name.split("/", 2)
        ms = MissingSecret(app, key, False)
        remediation = ms.remediation + (f" (the OS keyring cannot be used here: {keyring_problem})" if keyring_problem else "")
        out.append(Problem(CREDENTIALS, str(ms), remediation))
    return out


# --- the platform lock ---------------------------------------------------------------------------


def lock_remediation(e: Any) -> str:
    from .engine.lock import DURATION, RENEW_EVERY

    if e.info.stale:  # not renewed in time, or its process on this machine is gone
        return ("its run stopped renewing the lock (it crashed, was killed or lost the cluster): if nobody else is repairing the "
                "platform, run apply again with --take-over-stale-lock (the takeover is written to the journal)")
    return (f"another keybuzz-tui run is changing this platform: wait until it finishes (it renews the lock every {RENEW_EVERY} s; "
            f"a lock not renewed for {DURATION} s counts as stale), or ask its operator; never run two repairs at once")


def acquire_lock(ctx: Any, args: argparse.Namespace) -> Any:
    """The platform lock, held; LockHeld when another run holds it (a stale one is taken over only
    with --take-over-stale-lock, confirmed at the prompt or by --yes)."""
    from .engine.lock import LockHeld, PlatformLock, lock_namespace

    # a first install locks in kube-system (its namespace does not exist yet): while that Lease
    # exists every run must look there, or two runs would each hold "the" lock
    ns = lock_namespace(ctx)
    lock = PlatformLock(ctx, namespace=ns)
    try:
        lock.acquire()
    except LockHeld as e:
        if not (e.info.stale and getattr(args, "take_over_stale_lock", False)):
            raise
        if not args.yes and not _confirm(f"Take over the stale platform lock of {e.info.holder}?"):
            raise
        lock = PlatformLock(ctx, namespace=ns, take_over=True)
        lock.acquire()
        ctx.emit(Warning_(step="lock", message=f"took over the stale platform lock of {e.info.holder} (written to the journal)"))
    ctx.emit(Info(step="lock", message=f"platform lock held (Lease {lock.namespace}/keybuzz-tui-lock, {lock.me})"))
    return lock


# --- the rollout's verdict -----------------------------------------------------------------------


# the kubelet alternates these two for one cause (a pull failed, then a wait before the next try):
# workers caught at different moments of the same failure are one diagnosis, not two
_ONE_CAUSE = {"ErrImagePull": "image pull", "ImagePullBackOff": "image pull"}


def _cause(n: Any) -> str:
    reason = n.reason or n.phase
    return _ONE_CAUSE.get(reason, reason)


def _reasons(nodes: list[Any]) -> str:
    """The states the grouped nodes were caught in, each once: `ErrImagePull/ImagePullBackOff`."""
    return "/".join(dict.fromkeys(sorted(n.reason or n.phase for n in nodes)))


def rollout_diagnosis(res: Any) -> list[Warning_]:
    """What is stuck, grouped: one warning per app and cause, naming the nodes, with the last log
    line and the remediation (instead of the same cause repeated for every worker)."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for app, n in res.stuck():
        groups.setdefault((app, _cause(n), n.remediation), []).append(n)
    out = []
    for (app, _c, remediation), nodes in groups.items():
        first = nodes[0]
        where = ", ".join(n.node for n in nodes)
        phase = "/".join(dict.fromkeys(sorted(n.phase for n in nodes)))
        reason = _reasons(nodes)
        why = first.message or reason
        text = f"{app} on {where}: {phase}" + (f" — {reason}: {why}" if why and why != phase else "")
        if first.last_log and first.last_log not in text:
            text += f"; last log line: {first.last_log}"
        out.append(Warning_(step="rollout", message=text, remediation=remediation))
    return out


def rollout_brief(res: Any) -> str:
    """`keybuzz-api: CrashLoopBackOff on k3s-worker-03` — what is stuck, per app and cause."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for app, n in res.stuck():
        groups.setdefault((app, _cause(n)), []).append(n)
    return "; ".join(f"{app}: {_reasons(nodes)} on {', '.join(n.node for n in nodes)}" for (app, _c), nodes in groups.items()) or _short(res.message)


def _short(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def target_flags(args: Any) -> str:
    """The options that point a command at the same platform (--config, --context, --sandbox), so
    a command the CLI suggests can be pasted as it is."""
    out = ""
    for flag in ("config", "context", "sandbox"):
        value = getattr(args, flag, None)
        if value:
            out += f" --{flag} {shlex.quote(str(value))}"
    return out


def previous_revisions(ctx: Any, apps: list[str]) -> dict[str, Any]:
    """app -> the revision `keybuzz-tui rollback APP` goes back to (rollout.Revision), or None
    when there is none (the app's first rollout, or its history cannot be read)."""
    from .engine import rollout

    out: dict[str, Any] = {}
    for app in apps:
        try:
            hist = rollout.history(ctx, app)
        except Cancelled:
            raise
        except Exception:  # the advice must not hide the rollout's own verdict
            out[app] = None
            continue
        cur = next((h for h in reversed(hist) if h.current), None)
        older = [h for h in hist if not h.current and (cur is None or h.revision < cur.revision)]
        out[app] = older[-1] if older else None
    return out


def rollback_advice(previous: dict[str, Any], flags: str = "") -> str:
    """The remediation of a failed rollout: fix and re-run, or go back with `keybuzz-tui rollback
    APP` for each app that has an earlier revision (its first rollout has none)."""
    can = [(a, r) for a, r in previous.items() if r is not None]
    cannot = [a for a, r in previous.items() if r is None]
    text = "fix the cause above, then run apply again (it resumes)"
    if can:
        text += ", or go back to what ran before: " + "; ".join(
            f"`keybuzz-tui rollback {a}{flags}` (to revision {r.revision}: {', '.join(r.images)})" for a, r in can)
        text += " (keybuzz.yaml is not changed: pin the old image there, or the next apply rolls forward again)"
    if cannot:
        text += (f"; {', '.join(cannot)}: nothing to roll back to, this was the first rollout "
                 "(`keybuzz-tui rollback APP` needs an earlier revision)")
    return text


# --- apply ---------------------------------------------------------------------------------------


def _time_scale(ctx: Any) -> float:
    """How much faster than real time the world runs (a sandbox's `speed`; 1 for a real platform)."""
    d = getattr(ctx.endpoints, "sandbox_dir", None)
    if d is None:
        return 1.0
    try:
        return max(1.0, float(json.loads((Path(d) / "sandbox.json").read_text()).get("speed") or 1.0))
    except (OSError, ValueError):
        return 1.0


def run_apply(ctx: Any, args: argparse.Namespace, steps: set[str]) -> tuple[int, dict[str, Any]]:
    """The apply after the preflight: returns (exit code, the Result fields incl. "verdict")."""
    from .engine.lock import LockHeld

    ctx.journal.new_run()  # one id for everything this apply writes, lock lines included
    try:
        lock = acquire_lock(ctx, args)
    except LockHeld as e:
        p = classify(e)
        ctx.emit(Warning_(step="lock", message=p.message, remediation=p.remediation))
        return p.code, {"verdict": f"{p.message} — nothing was changed", "lock_holder": e.info.holder, "lock_stale": e.info.stale}
    except Cancelled as e:
        return INTERRUPTED, {"verdict": f"interrupted before anything changed: {e}", "interrupted": True}
    except Exception as e:  # reading or writing the Lease failed: the cluster's answer, classified
        p = classify(e)
        ctx.emit(Warning_(step="lock", message=f"cannot take the platform lock: {p.message}", remediation=p.remediation))
        return p.code, {"verdict": f"cannot take the platform lock: {_short(p.message)} — nothing was changed"}
    try:
        return _apply_locked(ctx, args, steps)
    finally:
        lock.release()


def _apply_locked(ctx: Any, args: argparse.Namespace, steps: set[str]) -> tuple[int, dict[str, Any]]:
    platform = Platform(ctx)
    if "kubernetes" in steps:
        missing = missing_secrets(ctx)
        for p in missing:
            ctx.emit(Warning_(step="credentials", message=p.message, remediation=p.remediation))
        if missing:
            return CREDENTIALS, {"verdict": f"{len(missing)} secret(s) the apps need are not set ({_short(missing[0].message)}) — nothing was changed",
                                 "missing_secrets": [p.message for p in missing]}
        ensure = getattr(ctx.secrets, "ensure_app_secrets", None)
        if ensure is not None:
            for name in ensure(ctx.config):
                ctx.emit(Info(step="credentials", message=f"generated {name} and stored it in the keyring"))
    outcome = plan_all(ctx, probe=getattr(args, "probe", False))
    fp = outcome.full
    wanted = Plan(changes=[c for c in fp.plan.changes if _step_of(c.layer) in steps])
    if fp.conflicts or fp.errors:
        return outcome.code, {**plan_result(fp), "verdict": "apply stopped before any change: " + plan_verdict(outcome, applying=True)}
    destructive = [c for c in wanted.changes if c.destructive]
    allow_destructive = False
    if destructive:
        ctx.emit(Warning_(step="plan", message="DESTRUCTIVE: " + "; ".join(f"{c.ref}: {c.note}" for c in destructive)))
    if wanted.has_changes and not args.yes:
        if not _confirm(f"Apply {wanted.summary()}?"):
            ctx.emit(Warning_(step="apply", message="nothing applied", remediation="re-run with --yes to apply without a prompt"))
            return USAGE, {"applied": False, "verdict": "nothing applied: not confirmed (no terminal to ask, or declined); use --yes"}
        if destructive:
            # destructive changes are asked for twice, and the second question names what goes
            what = ", ".join(c.ref for c in destructive)
            if not _confirm(f"This destroys {what}. Really proceed?"):
                ctx.emit(Warning_(step="apply", message="nothing applied (destructive changes declined)"))
                return USAGE, {"applied": False, "verdict": "nothing applied: the destructive changes were declined"}
            allow_destructive = True
    elif destructive:
        allow_destructive = bool(getattr(args, "allow_destructive", False))
        if not allow_destructive:
            ctx.emit(Warning_(step="apply", message="the plan has destructive changes", remediation="add --allow-destructive to --yes to accept them, or run interactively"))
            return USAGE, {"applied": False, "destructive": [c.ref for c in destructive],
                           "verdict": "nothing applied: the plan destroys " + ", ".join(c.ref for c in destructive) + " (add --allow-destructive)"}
    ctx.journal.start_run("apply", summary=wanted.summary(), steps=sorted(steps))
    finished = False

    def finish(status: str, **fields: Any) -> None:
        nonlocal finished
        if not finished:
            finished = True
            ctx.journal.finish_run(status, **fields)

    degraded = ""
    try:
        if "kubernetes" in steps:
            ctx.emit(StepStarted(step="kubernetes", title="Kubernetes objects"))
            platform.apply_kubernetes(_layer(wanted, "kubernetes"))
            res = platform.rollout(getattr(args, "timeout", None))  # announces its own step and verdict
            if res.status == "cancelled":
                raise Cancelled(ctx.cancel.reason or "interrupted")
            if not res.ok:
                for w in rollout_diagnosis(res):
                    ctx.emit(w)
                if res.status != "degraded":
                    finish("failed", step="rollout", rollout=res.status)
                    failing = sorted({a for a, _ in res.stuck()}) or [a.name for a in ctx.config.apps]
                    previous = previous_revisions(ctx, failing)
                    ctx.emit(Warning_(step="rollout", message=f"the rollout did not complete ({res.status})",
                                      remediation=rollback_advice(previous, target_flags(args))))
                    return FAILED, {"failed": "rollout", "rollout": res.status,
                                    "rollback": {a: ({"command": f"keybuzz-tui rollback {a}{target_flags(args)}", "to_revision": r.revision,
                                                      "images": list(r.images)} if r is not None else None) for a, r in previous.items()},
                                    "stuck": [{"app": a, "node": n.node, "phase": n.phase, "reason": n.reason, "message": n.message} for a, n in res.stuck()],
                                    "verdict": f"apply failed at the rollout ({res.status} after {res.elapsed:.0f} s): {rollout_brief(res)}"}
                degraded = _short(res.message)
                ctx.emit(Warning_(step="rollout", message="continuing on the reachable workers: the platform is served without the missing ones",
                                  remediation="bring the NotReady workers back, then run apply again: their pods start there"))
        if "lb" in steps:
            platform.apply_lb(platform.plan_lb(), allow_destructive=allow_destructive)
            from .engine import lb

            health = lb.wait_healthy(ctx, max(10.0, LB_SETTLE_TIMEOUT / _time_scale(ctx)), until="settled")
            bad = sorted({t for (_, t), st in health.items() if st != "healthy"})
            if bad:
                ctx.emit(Warning_(step="lb", message=f"Load Balancer targets not healthy: {', '.join(bad)} (the LB serves from the healthy ones)",
                                  remediation="the validation below says why; fix it and run validate (or apply) again"))
        if "dns" in steps:
            platform.apply_dns(platform.plan_dns())
        review = None
        if "firewall" in steps and ctx.config.firewall.mode == "manage":
            platform.apply_firewall(platform.plan_firewall(), allow_destructive=allow_destructive)
        elif "firewall" in steps and ctx.config.firewall.mode == "check":
            review = platform.review_firewall()  # a warning at most: it never fails the apply
        rep = platform.validate()  # announces its own step
        if rep.cancelled:
            raise Cancelled(ctx.cancel.reason or "interrupted")
        failed = [r for r in rep.results if r.status == "fail"]
        if getattr(args, "junit", None):
            from .engine import report

            Path(args.junit).write_text(report.to_junit(rep))
        emit_trace_summary(ctx, rep)
        result: dict[str, Any] = {"changes": wanted.summary(), "failed_checks": [r.check for r in failed], "validation": rep.summary(),
                                  "first_broken": rep.first_broken()}
        if degraded:
            result["rollout"] = "degraded"
        fw_note = ""
        if review is not None:
            result["firewall"] = review.to_dict()
            if review.status != "ok":
                fw_note = f"; firewall (warning): {review.summary()}"
        if failed:
            finish("validation-failed", failed=[r.check for r in failed])
            result["verdict"] = f"applied, but validation fails: {rep.summary()} ({', '.join(r.check for r in failed)}){fw_note}"
            return FAILED, result
        if degraded:
            finish("degraded", rollout=degraded)
            result["verdict"] = f"applied, but degraded: {degraded}{fw_note}"
            return FAILED, result
        finish("ok")
        what = f"applied {wanted.summary()}" if wanted.has_changes else "nothing to change"
        result["verdict"] = f"apply complete: {what}; validation {rep.summary()}{fw_note}"
        return OK, result
    except Cancelled as e:
        finish("interrupted", reason=str(e))
        ctx.emit(Warning_(step="apply", message=f"stopped: {e}", remediation="what was applied is in the journal; run apply again to resume"))
        return INTERRUPTED, {"interrupted": True, "verdict": "interrupted: what was applied is in the journal; run apply again to resume"}
    except Exception as e:  # step errors (KubeError, CloudError, RenderError...) carry a remediation
        p = classify(e)
        finish("failed", error=_short(p.message))
        ctx.emit(Warning_(step="apply", message=p.message, remediation=(p.remediation + " — " if p.remediation else "") + "then run apply again: it resumes where it stopped"))
        return p.code, {"error": p.message, "verdict": f"apply failed: {_short(p.message)}"}
    except BaseException:  # a second Ctrl-C (KeyboardInterrupt): the journal still says so
        finish("interrupted", reason="aborted")
        raise


def emit_trace_summary(ctx: Any, rep: Any) -> None:
    """Per host, one line per broken hop: from which workers the request path breaks there first,
    and why (the first such worker's hop detail)."""
    from .engine.trace import first_broken

    for host, rows in (rep.traces or {}).items():
        broken: dict[str, list[tuple[str, Any]]] = {}
        ok = []
        for node, hops in rows.items():
            fb = first_broken(hops)
            if fb is None:
                ok.append(node)
            else:
                broken.setdefault(fb.hop, []).append((node, fb))
        for hop, items in broken.items():
            nodes = ", ".join(n for n, _ in items)
            first = items[0][1]
            works = f" (works from {', '.join(ok)})" if ok else ""
            ctx.emit(Warning_(step="trace", message=f"{host}: first broken hop {hop} from {nodes}{works}: {first.detail}",
                              remediation=str(getattr(first, "remediation", "") or "")))
