"""`keybuzz-tui validate --watch [--interval S]`: the validation, continuously, headless.

    keybuzz-tui validate --watch [--interval S] [--only IDS] [--skip IDS] [--config FILE]
                         [--context NAME] [--sandbox DIR] [--json] [--junit FILE] [--report FILE]

The engine's continuous mode (engine.validate.watch: WATCHes keep the Kubernetes side current, a
timer every S seconds re-checks the network side) with the board's data printed as changes: one
line per check whose status changes (the first refresh gives every check's initial status), and
with --json one {"type": "CheckChanged", ...} object per line. Runs until Ctrl-C, then writes the
last report to --junit/--report when given, ends with the verdict (the Result object with --json)
and exits 130, like every interrupted command. Unknown check ids exit 2 before anything runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

USAGE, INTERRUPTED = 2, 130


class _ChangesOnly:
    """The printer without the per-refresh CheckResult/HopResult events: in continuous mode every
    refresh re-emits every check, and the point of --watch is to show what changed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, event: Any) -> None:
        from .events import CheckResult, HopResult

        if isinstance(event, (CheckResult, HopResult)):
            return
        self.inner(event)


class ChangePrinter:
    """Turns each report of the watch into one output per check whose status changed."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.last: dict[str, str] = {}
        self.report: Any = None
        self.refreshes = 0
        self.changes = 0

    def __call__(self, report: Any) -> None:
        from .output import SYMBOL, JsonPrinter

        self.report = report
        self.refreshes += 1
        now = time.time()
        for r in report.results:
            prev = self.last.get(r.check)
            if prev == r.status:
                continue
            self.last[r.check] = r.status
            self.changes += 1
            if isinstance(self.sink, JsonPrinter):
                self.sink.write({"type": "CheckChanged", "ts": now, "check": r.check, "layer": r.layer, "title": r.title,
                                 "status": r.status, "previous": prev, "detail": r.detail, "remediation": r.remediation,
                                 "refresh": report.refresh, "trigger": report.trigger})
                continue
            line = getattr(self.sink, "line", None)
            if line is None:
                continue
            was = f"{prev} → " if prev else ""
            stamp = time.strftime("%H:%M:%S", time.localtime(now))
            line(f"{stamp} {SYMBOL.get(r.status, '?')} {r.check}: {was}{r.status} — {r.title}" + (f": {r.detail}" if r.detail else ""))
            if r.status in ("fail", "warn") and r.remediation:
                line(f"         → {r.remediation.strip().splitlines()[0]}")


def run_watch(args: argparse.Namespace, cfg: Any) -> int:
    from . import cli as base
    from .apply_flow import classify
    from .engine import report as reportmod
    from .engine import validate
    from .events import Warning_

    sink = base.make_sink(args)
    ctx = base.make_context(args, cfg, _ChangesOnly(sink))
    base.install_sigint(ctx)
    only = {s for s in args.only.split(",") if s} or None
    skip = {s for s in args.skip.split(",") if s}
    printer = ChangePrinter(sink)
    try:
        validate.watch(ctx, max(1.0, float(args.interval)), printer, only=only, skip=skip)
    except validate.UnknownCheck as e:
        base.err(str(e))
        return base.finish(args, sink, USAGE, error=str(e))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        pass
    except Exception as e:  # the watch's own failure (a refresh raised): classified like the rest
        p = classify(e)
        ctx.emit(Warning_(step="validate", message=p.message, remediation=p.remediation))
        return base.finish(args, sink, p.code, f"the continuous validation stopped: {p.message.splitlines()[0] if p.message else p.code}",
                           error=p.message)
    finally:
        ctx.close()
    rep = printer.report
    if rep is not None:
        if args.junit:
            Path(args.junit).write_text(reportmod.to_junit(rep))
        if args.report:
            Path(args.report).write_text(reportmod.to_json(rep) if args.report.endswith(".json") else reportmod.to_markdown(rep))
    last = rep.summary() if rep is not None else "no refresh completed"
    failed = [r.check for r in rep.results if r.status == "fail"] if rep is not None else []
    return base.finish(args, sink, INTERRUPTED, f"validation watch stopped after {printer.refreshes} refresh(es), "
                       f"{printer.changes} change(s); last: {last}",
                       interrupted=True, refreshes=printer.refreshes, changes=printer.changes, summary=last, failed=failed)
