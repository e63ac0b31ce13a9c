"""The `keybuzz-tui` command line: the wizard by default, headless subcommands for automation.

Exit codes (documented in the README and `--help`):
  0  success                       3  conflicts found (ports, allocator, plan errors, platform lock held)
  1  failed checks / apply failed  4  credentials or permissions (token, keyring, RBAC, missing secret)
  2  usage or configuration error  5  the cluster or the Hetzner API cannot be reached
  130 interrupted (Ctrl-C): what was applied is in the journal; a re-run resumes

Output: readable progress on stdout, then a one-line verdict (on stderr when the command fails);
with --json, one JSON object per line on stdout, the last one {"type": "Result", "exit_code": N,
"verdict": "...", ...}. Nothing is changed before the preflight (cluster reachable, permissions,
Hetzner token, secrets) has passed and the platform lock (a Lease; one apply at a time) is held.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from . import __version__

OK, FAILED, USAGE, CONFLICTS, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

EPILOG = """exit codes: 0 success, 1 failed checks or apply, 2 usage/config error, 3 conflicts found
(ports, plan errors, the platform lock held by another run), 4 credentials or permissions (token,
RBAC, missing secret), 5 cluster/Hetzner unreachable, 130 interrupted (re-run resumes).
environment: KUBECONFIG, HCLOUD_TOKEN, HCLOUD_ENDPOINT, KEYBUZZ_SECRET_<APP>_<KEY>, KEYBUZZ_STATE_DIR."""


YES_NOOP = "accepted and ignored: this command never changes anything (for scripts that pass --yes to every command)"


def _net_arg(value: str) -> int | None:
    """`--net`: a number 0-254, or `auto` (None: the sandbox reserves the first free network)."""
    if value == "auto":
        return None
    try:
        net = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a number from 0 to 254 nor `auto`") from None
    if not 0 <= net <= 254:
        raise argparse.ArgumentTypeError(f"{net} is outside 0-254 (the second byte of a 127.x.y.z address)")
    return net


def add_common_options(p: argparse.ArgumentParser, *, json_out: bool = True) -> None:
    p.add_argument("--config", metavar="FILE", help="answers file (default: ./keybuzz.yaml, else the user config dir)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the file's, else the current one)")
    p.add_argument("--sandbox", metavar="DIR", help="point everything at a running sandbox (its --state-dir)")
    if json_out:
        p.add_argument("--json", action="store_true", help="JSON lines instead of readable text")
    p.add_argument("-v", "--verbose", action="store_true", help="also show unchanged objects and routine events")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keybuzz-tui",
        description="Install, repair and verify the KeyBuzz platform on K3s + Hetzner Cloud. "
        "Without a command: the interactive wizard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"keybuzz-tui {__version__}")
    p.add_argument("--config", metavar="FILE", help="answers file for the wizard")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context for the wizard")
    p.add_argument("--demo", action="store_true", help="run the wizard on the embedded sandbox world (no cloud account)")
    p.add_argument("--scenario", default="healthy", help="demo scenario (see `keybuzz-tui sandbox --list`)")
    p.add_argument("--sandbox", metavar="DIR", help="run the wizard against a running sandbox (its --state-dir)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sb = sub.add_parser("sandbox", help="run the sandbox world (Kubernetes + Hetzner APIs, DNS, data plane on loopback)")
    sb.add_argument("--state-dir", help="where to write kubeconfig, ca.pem, hcloud.env and sandbox.json")
    sb.add_argument("--scenario", default="healthy", help="scenario name or path to a scenario file (see --list)")
    sb.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sb.add_argument("--workers", type=int, default=None, help="number of K3s workers (default: the scenario's, 5)")
    sb.add_argument("--servers", type=int, default=None, help="number of K3s servers (default: the scenario's, 3)")
    sb.add_argument("--net", type=_net_arg, default=0,
                    help="loopback network 127.NET.x.y to use (default 0), or `auto` for the first free one (sandbox.json says which)")
    sb.add_argument("--speed", type=float, default=None, help="divide every simulated delay by this factor")

    pl = sub.add_parser("plan", help="show what apply would change (nothing is changed)")
    add_common_options(pl)
    pl.add_argument("--probe", action="store_true", help="also run short-lived probe pods to find host processes holding ports")
    pl.add_argument("--junit", metavar="FILE", help="write the plan as JUnit XML (a testcase per step and per port; conflicts fail)")
    pl.add_argument("--yes", action="store_true", help=YES_NOOP)

    ap = sub.add_parser("apply", help="plan, confirm, then apply every step and validate")
    add_common_options(ap)
    ap.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    ap.add_argument("--allow-destructive", action="store_true", help="with --yes: also accept changes that destroy something (listed in the plan)")
    ap.add_argument("--probe", action="store_true", help="probe the workers' listening ports before the rollout")
    ap.add_argument("--timeout", type=int, help="rollout timeout in seconds (default: rollout.timeout)")
    ap.add_argument("--junit", metavar="FILE", help="write the final validation as JUnit XML")
    ap.add_argument("--steps", default="kubernetes,lb,dns,firewall", help="comma-separated subset of kubernetes,lb,dns,firewall")
    ap.add_argument("--take-over-stale-lock", action="store_true",
                    help="take over a platform lock whose run stopped renewing it (crashed); asks first unless --yes")

    va = sub.add_parser("validate", help="run the named checks and trace the request path per worker")
    add_common_options(va)
    va.add_argument("--junit", metavar="FILE", help="write the report as JUnit XML")
    va.add_argument("--report", metavar="FILE", help="write the report (.md or .json by extension)")
    va.add_argument("--only", default="", help="comma-separated check ids to run")
    va.add_argument("--skip", default="", help="comma-separated check ids to skip on purpose")
    va.add_argument("--board", action="store_true", help="open the live validation board (TUI)")
    va.add_argument("--watch", action="store_true",
                    help="keep validating (watches + a timer); one line (JSON line with --json) per check whose status changes, until Ctrl-C (exit 130)")
    va.add_argument("--interval", type=float, default=10.0, metavar="S",
                    help="with --watch: seconds between re-checks of the network side (default 10, at least 1); Kubernetes changes are seen at once")
    va.add_argument("--yes", action="store_true", help=YES_NOOP)
    va.add_argument("--demo", action="store_true", help="with --board: on the embedded sandbox world")
    va.add_argument("--scenario", default="healthy", help="with --board --demo: the scenario")

    po = sub.add_parser("ports", help="scan the cluster for port conflicts with the configured ports")
    add_common_options(po)
    po.add_argument("--probe", action="store_true", help="run short-lived probe pods on the workers (listening ports)")

    _attach_optional(sub)
    return p


def _attach_optional(sub: Any) -> None:
    """Subcommands whose modules may be absent in a partial install still leave the CLI usable."""
    for mod in ("cli_config", "cli_credentials", "cli_recover", "cli_doctor", "cli_firewall"):
        try:
            m = __import__(f"keybuzz_tui.{mod}", fromlist=["add_parser"])
        except ImportError:
            continue
        m.add_parser(sub)


# --- helpers ---------------------------------------------------------------------------------


def err(msg: str) -> None:
    from .redact import REDACTOR

    sys.stderr.write(f"keybuzz-tui: {REDACTOR.redact(msg)}\n")


def load_config(args: argparse.Namespace) -> Any:
    from . import config as cfgmod
    from .paths import config_path

    path = Path(args.config).expanduser() if getattr(args, "config", None) else config_path()
    if not path.exists() and not getattr(args, "config", None):
        cfg = cfgmod.Config()  # no file yet: the runbook defaults
    else:
        cfg = cfgmod.load(path)
    if getattr(args, "context", None):
        cfg.cluster.context = args.context
    return cfg


def make_context(args: argparse.Namespace, cfg: Any, sink: Any) -> Any:
    from .cancel import CancelToken
    from .engine.context import Context, Endpoints, kubeconfig_path
    from .journal import Journal
    from .paths import journal_path

    if getattr(args, "sandbox", None):
        endpoints = Endpoints.from_sandbox(args.sandbox)
        if getattr(args, "context", None):
            endpoints.context = args.context
    else:
        endpoints = Endpoints(
            # every file of KUBECONFIG's list, merged as kubectl does (engine.context.merged_kubeconfig)
            kubeconfig=kubeconfig_path(cfg),
            context=cfg.cluster.context or None,
            hcloud_endpoint=os.environ.get("HCLOUD_ENDPOINT") or None,
        )
    journal = Journal(journal_path(cfg.profile))
    secrets = make_secrets(cfg, journal=journal)
    ctx = Context(cfg, endpoints, secrets, sink=sink, cancel=CancelToken(), journal=journal)
    return ctx


def make_secrets(cfg: Any, *, journal: Any = None) -> Any:
    """The credential store of cfg.profile; with `journal`, generating, rotating, setting or
    forgetting a credential writes a journal line (name, action, source; never the value)."""
    try:
        from .credentials import CredentialStore
    except ImportError:
        from .engine.context import NoSecrets

        return NoSecrets()
    return CredentialStore(cfg.profile, journal=journal)


def make_sink(args: argparse.Namespace) -> Any:
    from .output import HumanPrinter, JsonPrinter

    if getattr(args, "json", False):
        return JsonPrinter()
    return HumanPrinter(verbose=getattr(args, "verbose", False))


def install_sigint(ctx: Any) -> None:
    def handler(signum: int, frame: Any) -> None:
        if ctx.cancel.cancelled:
            raise KeyboardInterrupt
        ctx.cancel.cancel("interrupted (Ctrl-C)")
        err("interrupting at the next safe point (Ctrl-C again to abort at once)…")

    signal.signal(signal.SIGINT, handler)


def finish(args: argparse.Namespace, sink: Any, code: int, verdict: str = "", **result: Any) -> int:
    """End a command: the --json Result object, or the readable one-line verdict (stderr on failure)."""
    from .output import JsonPrinter

    if isinstance(sink, JsonPrinter):
        sink.write({"type": "Result", "exit_code": code, "verdict": verdict, **result})
        if code != OK and verdict:
            err(f"{verdict} (exit {code})")
    elif verdict:
        if code == OK:
            sink.verdict(True, verdict)
        else:
            err(f"✗ {verdict} (exit {code})")
    return code


def _short(text: str) -> str:
    text = (text or "").strip()
    return text.splitlines()[0] if text else ""


# --- commands --------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    from .apply_flow import plan_all, plan_result, plan_verdict

    cfg = load_config(args)
    sink = make_sink(args)
    ctx = make_context(args, cfg, sink)
    install_sigint(ctx)
    code = guard_preflight(ctx, args, sink, need_hcloud=False)
    if code is not None:
        return code
    import time

    started = time.time()
    # each step emits its ObjectPlanned events and its summary; in firewall.mode: check, the
    # Firewall step follows as a check (warnings only: it never changes the exit code)
    outcome = plan_all(ctx, probe=args.probe, firewall_check=True)
    fp = outcome.full
    if getattr(args, "junit", None):
        from .engine.report import plan_to_junit

        Path(args.junit).write_text(plan_to_junit(fp, firewall=outcome.firewall, started_at=started))
    result = plan_result(fp, outcome.firewall)
    if fp.errors or fp.conflicts:
        return finish(args, sink, outcome.code, f"plan: {fp.plan.summary()}, but " + plan_verdict(outcome, applying=False), **result)
    what = "no changes: the platform matches keybuzz.yaml" if not fp.plan.has_changes else f"apply would make {fp.plan.summary()}"
    fw = outcome.firewall
    note = f"; firewall (warning): {fw.summary()}" if fw is not None and fw.status != "ok" else ""
    return finish(args, sink, OK, f"plan: {what}{note}", **result)


def sink_summary(sink: Any, text: str) -> None:
    from .events import Info

    sink(Info(step="summary", message=text))


def guard_preflight(ctx: Any, args: argparse.Namespace, sink: Any, *, need_hcloud: bool) -> int | None:
    """Stop before anything changes when the cluster, the permissions or the token are wrong."""
    from .cancel import Cancelled
    from .engine import kubeio, preflight
    from .events import Warning_
    from .redact import safe_error

    nothing = "nothing was changed"
    try:
        pf = preflight.run(ctx)
    except Cancelled:
        return finish(args, sink, INTERRUPTED, f"interrupted before anything changed; {nothing}", interrupted=True)
    except kubeio.Unreachable as e:
        msg = f"cannot reach the Kubernetes API: {safe_error(e)}"
        ctx.emit(Warning_(step="preflight", message=msg, remediation="check the kubeconfig context (--context), the API address and the network (VPN)"))
        return finish(args, sink, UNREACHABLE, f"{msg} — {nothing}", error=msg)
    except kubeio.KubeError as e:
        from .apply_flow import classify

        p = classify(e)
        ctx.emit(Warning_(step="preflight", message=p.message, remediation=p.remediation))
        return finish(args, sink, p.code, f"the preflight failed: {_short(p.message)} — {nothing}", error=p.message)
    except Exception as e:  # the kubeconfig itself: missing file, unknown context, bad YAML
        where = ctx.endpoints.kubeconfig or ctx.config.cluster.kubeconfig
        msg = f"cannot use the kubeconfig {where}" + (f" (context {ctx.endpoints.context})" if ctx.endpoints.context else "") + f": {safe_error(e)}"
        ctx.emit(Warning_(step="preflight", message=msg, remediation="check cluster.kubeconfig / cluster.context in keybuzz.yaml, KUBECONFIG, or --context"))
        return finish(args, sink, USAGE, f"{_short(msg)} — {nothing}", error=msg)
    if not pf.reachable:
        code = CREDENTIALS if "refused us: 401" in pf.user_message else UNREACHABLE
        return finish(args, sink, code, f"{_short(pf.user_message)} — {nothing}", error=pf.user_message)
    if pf.missing:
        missing = [g.render() for g in pf.missing]
        return finish(args, sink, CREDENTIALS,
                       f"the kubeconfig user lacks {len(missing)} permission(s) the install needs: {'; '.join(missing)} — {nothing}",
                       missing=missing)
    if need_hcloud:
        from .credentials import CredentialError, check_hcloud_token

        try:
            res = check_hcloud_token(ctx)
        except Cancelled:
            return finish(args, sink, INTERRUPTED, f"interrupted before anything changed; {nothing}", interrupted=True)
        except CredentialError as e:  # the keyring could not be asked for the token
            msg = safe_error(e)
            ctx.emit(Warning_(step="credentials", message=msg))
            return finish(args, sink, CREDENTIALS, f"cannot read the Hetzner API token: {_short(msg)} — {nothing}", error=msg)
        ctx.emit(res.to_event())
        if res.status != "valid":
            code = UNREACHABLE if res.status in ("unreachable", "rate-limited") else CREDENTIALS
            return finish(args, sink, code, f"the Hetzner API token is {res.status}: {res.message} — {nothing}",
                           token_status=res.status, error=res.message, remediation=res.remediation)
    return None


def cmd_apply(args: argparse.Namespace) -> int:
    from .apply_flow import run_apply

    cfg = load_config(args)
    sink = make_sink(args)
    ctx = make_context(args, cfg, sink)
    install_sigint(ctx)
    steps = {s.strip() for s in args.steps.split(",") if s.strip()}
    unknown = steps - {"kubernetes", "lb", "dns", "firewall"}
    if unknown or not steps:
        err(f"--steps: unknown step(s) {', '.join(sorted(unknown)) or '(none given)'}; choose among kubernetes,lb,dns,firewall")
        return finish(args, sink, USAGE)
    code = guard_preflight(ctx, args, sink, need_hcloud=bool(steps & {"lb", "dns", "firewall"}))
    if code is not None:
        return code
    code, result = run_apply(ctx, args, steps)
    return finish(args, sink, code, **result)


def cmd_validate(args: argparse.Namespace) -> int:
    if args.board and args.watch:
        err("validate: --watch prints changes headless; --board shows them live in the TUI: choose one")
        return USAGE
    if args.board:
        from .app import run_wizard

        return run_wizard(args.config, args.context, demo=args.demo, scenario=args.scenario, board_only=True, sandbox=args.sandbox)
    from .apply_flow import emit_trace_summary
    from .engine import report as reportmod
    from .engine.platform import Platform

    cfg = load_config(args)
    if args.watch:
        from .cli_watch import run_watch

        return run_watch(args, cfg)
    sink = make_sink(args)
    ctx = make_context(args, cfg, sink)
    install_sigint(ctx)
    only = {s for s in args.only.split(",") if s} or None
    skip = {s for s in args.skip.split(",") if s}
    from .engine.validate import UnknownCheck


    try:
        rep = Platform(ctx).validate(only=only, skip=skip)
    except UnknownCheck as e:
        err(str(e))
        return finish(args, sink, USAGE, error=str(e))
    if rep.cancelled:
        return finish(args, sink, INTERRUPTED, f"interrupted: {rep.summary()}", interrupted=True)
    emit_trace_summary(ctx, rep)
    if args.junit:
        Path(args.junit).write_text(reportmod.to_junit(rep))
    if args.report:
        text = reportmod.to_json(rep) if args.report.endswith(".json") else reportmod.to_markdown(rep)
        Path(args.report).write_text(text)
    failed = [r for r in rep.results if r.status == "fail"]
    result = {"failed": [r.check for r in failed], "summary": rep.summary(), "first_broken": rep.first_broken(), "api_requests": rep.api_requests}
    api = rep.result("k8s.api")
    if api is not None and api.status == "fail":  # failed checks, or no cluster to check at all?
        code, why = reachable(ctx)
        if code != OK:
            return finish(args, sink, code, f"{why} ({rep.summary()})", **result)
    if failed:
        return finish(args, sink, FAILED, f"validation fails: {rep.summary()} ({', '.join(r.check for r in failed)})", **result)
    return finish(args, sink, OK, f"validation passes: {rep.summary()}", **result)


def reachable(ctx: Any) -> tuple[int, str]:
    """(OK, "") when the Kubernetes API answers; else the exit code and why (5 unreachable, 2 bad kubeconfig)."""
    from .engine import kubeio
    from .redact import safe_error

    try:
        kubeio.get(ctx, "/version")
    except kubeio.Unreachable as e:
        return UNREACHABLE, f"cannot reach the Kubernetes API: {safe_error(e)}"
    except kubeio.KubeError:
        return OK, ""  # it answers (a refusal is a failed check, reported as such)
    except Exception as e:
        return USAGE, f"cannot use the kubeconfig: {_short(safe_error(e))}"
    return OK, ""


def cmd_ports(args: argparse.Namespace) -> int:
    from .apply_flow import classify
    from .engine.platform import Platform
    from .events import Warning_

    cfg = load_config(args)
    sink = make_sink(args)
    ctx = make_context(args, cfg, sink)
    install_sigint(ctx)
    try:
        checks = Platform(ctx).scan_ports(probe=args.probe)
    except Exception as e:  # the scan's own error (unreachable, forbidden), classified
        p = classify(e)
        ctx.emit(Warning_(step="ports", message=p.message, remediation=p.remediation))
        return finish(args, sink, p.code, f"the port scan failed: {_short(p.message)}", error=p.message)
    bad = [c for c in checks if getattr(c, "failed", False)]
    if bad:
        return finish(args, sink, CONFLICTS, f"{len(bad)} port conflict(s): " + ", ".join(f"{c.name} {c.port}" for c in bad), conflicts=len(bad))
    return finish(args, sink, OK, f"{len(checks)} ports checked, no conflict", conflicts=0)


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the sandbox world until SIGINT/SIGTERM, then exit 0."""
    import threading

    from .sandbox import scenarios
    from .sandbox.runtime import Sandbox, SandboxError

    if args.list:
        for name in scenarios.available():
            sc = scenarios.load(name)
            print(f"{name:28} {sc.description.splitlines()[0] if sc.description else ''}")
        return OK
    if not args.state_dir:
        err("sandbox: --state-dir is required")
        return USAGE
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sb = Sandbox(args.state_dir, args.scenario, workers=args.workers, servers=args.servers, net=args.net, speed=args.speed).start()
    except (scenarios.ScenarioError, SandboxError) as e:
        err(f"sandbox: {e}")
        return USAGE
    print(f"sandbox ready: scenario {sb.scenario.name}, Kubernetes API {sb.kube_url}", flush=True)
    print(f"  export KUBECONFIG={sb.kubeconfig_path.resolve()}", flush=True)
    print(f"  set -a; . {sb.hcloud_env_path.resolve()}; set +a   # HCLOUD_TOKEN / HCLOUD_ENDPOINT", flush=True)
    print(f"  keybuzz-tui apply --sandbox {Path(args.state_dir).resolve()}   (addresses: {sb.info_path.resolve()}; Ctrl-C stops)", flush=True)
    try:
        stop.wait()
    finally:
        sb.stop()
    print("sandbox stopped", flush=True)
    return OK


COMMANDS = {"plan": cmd_plan, "apply": cmd_apply, "validate": cmd_validate, "ports": cmd_ports, "sandbox": cmd_sandbox}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # nothing heavy before dispatch: the wizard must paint before keyring or PyYAML load
    try:
        if args.command is None:
            from .app import run_wizard

            return run_wizard(args.config, args.context, demo=args.demo, scenario=args.scenario, sandbox=args.sandbox)
        handler = COMMANDS.get(args.command) or getattr(args, "run", None)
        if handler is None:
            parser.print_help()
            return USAGE
        return int(handler(args))
    except KeyboardInterrupt:
        err("interrupted; what was applied is in the journal, and a re-run resumes from there")
        return fatal(args, INTERRUPTED, "interrupted", interrupted=True)
    except Exception as e:  # never a traceback for the operator (KEYBUZZ_DEBUG=1 shows it)
        from .config import ConfigError
        from .credentials import CredentialError

        if isinstance(e, ConfigError):
            err(str(e))
            return fatal(args, USAGE, str(e))
        if isinstance(e, CredentialError):
            err(str(e))
            return fatal(args, CREDENTIALS, str(e))
        from .apply_flow import classify

        if os.environ.get("KEYBUZZ_DEBUG"):
            import traceback

            traceback.print_exc()
        p = classify(e)
        err(f"{p.message}" + (f"\n  → {p.remediation}" if p.remediation else ""))
        return fatal(args, p.code, p.message)


def fatal(args: argparse.Namespace, code: int, message: str, **result: Any) -> int:
    """A command that stopped before its own end still ends its --json output with a Result."""
    if getattr(args, "json", False) and getattr(args, "command", None) in COMMANDS:
        from .output import JsonPrinter

        JsonPrinter().write({"type": "Result", "exit_code": code, "verdict": message.splitlines()[0] if message else "", "error": message, **result})
    return code


if __name__ == "__main__":
    sys.exit(main())
