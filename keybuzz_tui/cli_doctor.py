"""`keybuzz-tui doctor`: find why the platform is down, in plain words, with the evidence.

    keybuzz-tui doctor [--config FILE] [--context NAME] [--sandbox DIR] [--json] [-v]
                       [--skip ID,...] [--only ID,...] [--no-probes] [--report FILE]
                       [--expected-workers N] [--probe-timeout S] [--list]

Runs the named checks of keybuzz_tui.engine.doctor (Kubernetes, the overlay with short-lived probe
pods, Hetzner, DNS, the platform), prints each as it finishes, then the diagnosis: the ranked
causes, the evidence they rest on, and the next command to run. `--skip` names checks to leave out
on purpose (the report says so), `--no-probes` creates no pod at all.

Exit codes (as the other commands): 0 nothing failed; 1 problems found; 2 usage or configuration
error (an unknown check id, a bad keybuzz.yaml, a kubeconfig that cannot be loaded); 4 the
credentials stopped the checks (the kubeconfig user is refused, or no usable Hetzner token when
nothing else could be checked); 5 the cluster (or, when nothing else could be checked, the Hetzner
API) cannot be reached; 130 interrupted (the probe pods are deleted before exiting).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

OK, FAILED, USAGE, CREDENTIALS, UNREACHABLE, INTERRUPTED = 0, 1, 2, 4, 5, 130


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "doctor",
        help="find why the platform is down: named checks with evidence, then the diagnosis",
        description="Kubernetes, the overlay (real probe pods on two workers), Hetzner, DNS and the request path per "
        "worker, each a named check with its evidence; then the ranked causes in plain words and what to run next.",
        epilog="exit codes: 0 no problem, 1 problems found, 2 usage/config error, 4 credentials or permissions, "
        "5 cluster unreachable, 130 interrupted.",
    )
    p.add_argument("--config", metavar="FILE", help="answers file (default: ./keybuzz.yaml, else the user config dir)")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context (default: the file's, else the current one)")
    p.add_argument("--sandbox", metavar="DIR", help="point everything at a running sandbox (its --state-dir)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of readable text (the last line: the result)")
    p.add_argument("-v", "--verbose", action="store_true", help="also show every hop of the request paths")
    p.add_argument("--skip", default="", metavar="ID,...", help="check ids (or prefixes: overlay, hetzner) to skip on purpose")
    p.add_argument("--only", default="", metavar="ID,...", help="run only these check ids (or prefixes)")
    p.add_argument("--no-probes", action="store_true", help="create no probe pod: the overlay is not tested")
    p.add_argument("--report", metavar="FILE", help="write the report (.json by extension, else Markdown)")
    p.add_argument("--expected-workers", type=int, default=None, metavar="N", help="how many workers the cluster should have (default 5)")
    p.add_argument("--probe-timeout", type=float, default=None, metavar="S", help="seconds for the overlay probe pods (default 60)")
    p.add_argument("--list", action="store_true", help="list the check ids and exit")
    p.set_defaults(run=run)
    return p


def _ids(text: str) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def run(args: argparse.Namespace) -> int:
    from . import cli as base
    from .engine import doctor

    cfg = base.load_config(args)  # ConfigError -> 2 in cli.main
    if args.list:
        for c in doctor.catalogue(cfg):
            print(f"{c['id']:24} {c['layer']:11} {c['title']}")
        return OK
    if args.expected_workers is not None and args.expected_workers < 1:
        base.err("doctor: --expected-workers must be at least 1")
        return USAGE
    sink = base.make_sink(args)
    try:
        ctx = base.make_context(args, cfg, sink)
    except (OSError, ValueError, KeyError) as e:
        from .redact import safe_error

        base.err(f"doctor: cannot use --sandbox {args.sandbox}: {safe_error(e)}" if getattr(args, "sandbox", None)
             else f"doctor: {safe_error(e)}")
        return base.finish(args, sink, USAGE, error="bad --sandbox" if getattr(args, "sandbox", None) else "bad setup")
    base.install_sigint(ctx)
    kw: dict[str, Any] = {"expected_workers": cfg.cluster.workers}  # keybuzz.yaml's, unless the flag says otherwise
    if args.expected_workers is not None:
        kw["expected_workers"] = args.expected_workers
    if args.probe_timeout is not None:
        kw["probe_timeout"] = args.probe_timeout
    try:
        rep = doctor.run(ctx, skip=_ids(args.skip), only=_ids(args.only) or None, probes=not args.no_probes, **kw)
    except doctor.UnknownCheck as e:
        base.err(f"doctor: {e}")
        return base.finish(args, sink, USAGE, error=str(e))
    finally:
        ctx.close()
    if args.report:
        text = rep.to_json() if args.report.endswith(".json") else rep.to_markdown()
        Path(args.report).write_text(text, encoding="utf-8")
    code = rep.exit_code()
    _print_diagnosis(sink, rep)
    return base.finish(args, sink, code, status=rep.status, summary=rep.summary(), diagnosis=rep.diagnosis.to_dict(),
                   failed=[r.check for r in rep.failed], skipped_on_request=rep.skipped_on_request,
                   cancelled=rep.cancelled, probe=rep.probe, **({"report": args.report} if args.report else {}))


def _print_diagnosis(sink: Any, rep: Any) -> None:
    """Readable mode: the ranked causes after the checks (JSON mode: in the final Result)."""
    line = getattr(sink, "line", None)
    if line is None:
        return
    line("")
    if rep.cancelled:
        line("Doctor interrupted: the checks above ran; the probe pods were deleted.")
        return
    causes = rep.diagnosis.causes
    if not causes:
        line("Diagnosis: no problem found, every check passed.")
    else:
        line(f"Diagnosis ({len(causes)} cause{'s' if len(causes) != 1 else ''}, most important first):")
    for i, c in enumerate(causes, 1):
        line("")
        line(f"{i}. [{c.severity}] {c.title}")
        line(f"   {c.explanation}")
        ev = [e for e in c.evidence if e]
        if ev:
            line("   Evidence:")
            for e in ev[:8]:
                line(f"     | {e}")
        if c.next_command:
            line(f"   Next: {c.next_command}")
    if rep.skipped_on_request:
        line("")
        line(f"Skipped on purpose: {', '.join(rep.skipped_on_request)}")
    if not rep.probes:
        line("The overlay was not tested (--no-probes).")
