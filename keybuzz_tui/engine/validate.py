"""Validation: the runbook's checks and more, once (`validate`) or continuously (`watch`).

Every check is a named `Check` (ids like `k8s.pods-ready`, usable with --only/--skip), run on a
small thread pool as soon as the checks it depends on are done; a check whose prerequisite failed
is skipped and says why. Every check has a timeout and the run honours ctx.cancel between calls.
After the checks, the request path of each public host is traced from every worker
(trace.py), from the observations the checks already made.

Continuous mode (the board): the Kubernetes side is kept current by WATCHes on the namespace's
pods, DaemonSets, Endpoints and Services (and the cluster's nodes); an event re-runs the checks
whose state lives in Kubernetes, from the watch-fed cache, for zero LIST requests. The network
side (HTTP probes, DNS, the Hetzner API) is re-checked on a modest interval. Each report carries
the number of Kubernetes API requests its refresh made (the issue's benchmark), counted on the
client side by ApiCounter. A fast lane of cheap port probes (no API request) turns the board
within a second of a network change, provisionally, until the full refresh confirms it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..cancel import Cancelled
from ..events import StepFinished, StepStarted
from .checks_base import Check, CheckOutcome, CheckRecord
from .checks_counter import ApiCounter
from .checks_registry import (
    TRACE_ID,
    UnknownCheck,
    build_checks,
    check_ids,
    https_check_id,
    select_checks,
    wants_trace,
)
from .checks_run import ValidationReport, info_for, run_checks, traces_for
from .checks_state import ValidationState
from .checks_watch import Watcher
from .context import Context
from .trace import HOPS, Hop, first_broken, trace

__all__ = [
    "Check", "CheckOutcome", "CheckRecord", "ValidationReport", "ApiCounter", "ValidationState",
    "build_checks", "select_checks", "check_ids", "run_checks", "validate", "watch", "trace", "first_broken", "HOPS", "Hop",
    "TRACE_ID", "https_check_id", "Watcher", "UnknownCheck",
]


def validate(
    ctx: Context,
    *,
    only: set[str] | None = None,
    skip: set[str] | frozenset[str] = frozenset(),
    http_timeout: float | None = None,
    traces: bool | None = None,
) -> ValidationReport:
    """Run the checks once (and trace every host from every worker) and return the report.

    `only`/`skip`: check ids or prefixes (`k8s`, `lb.*`; `trace` for the matrix); unknown names
    raise UnknownCheck (a ValueError whose message lists the known ids). A cancel (ctx.cancel) returns at once with the checks done so far and the
    others marked skipped, `cancelled=True`: a validation changes nothing, so a partial report is
    worth showing."""
    checks, skipped = select_checks(build_checks(ctx.config), only, skip)
    counter = ApiCounter.for_context(ctx)
    scope = counter.scope()
    started, t0 = time.time(), time.monotonic()
    state = ValidationState(ctx, http_timeout=http_timeout, counter=counter, scope=scope)
    ctx.emit(StepStarted(step="validate", title="Validation"))
    cancelled = False
    rows: dict[str, dict[str, list[Hop]]] = {}
    try:
        records, cancelled = counter.bind(scope, lambda: run_checks(ctx, checks, state, skipped=skipped))()
        want = traces if traces is not None else wants_trace(only, skip)
        if want and not cancelled:
            try:
                rows = counter.bind(scope, lambda: traces_for(ctx, state))()
            except Cancelled:
                cancelled = True
        info = info_for(ctx, state) if not cancelled else info_for(ctx, None)
    finally:
        state.close()
    report = ValidationReport(
        [records[c.id] for c in checks if c.id in records], rows, started, time.monotonic() - t0, scope.count, 0, "full",
        [c.id for c in checks], cancelled, info,
    )
    ctx.emit(StepFinished(step="validate", status="fail" if report.failed else ("warn" if report.status == "warn" else "ok"),  # type: ignore[arg-type]
                          summary=report.summary()))
    return report


def watch(
    ctx: Context,
    interval: float,
    on_report: Callable[[ValidationReport], None],
    *,
    only: set[str] | None = None,
    skip: set[str] | frozenset[str] = frozenset(),
    http_timeout: float | None = None,
    debounce: float = 0.2,
    watch_timeout: int = 300,
    refresh: threading.Event | None = None,
    fast_interval: float | None = 0.5,
    fast_timeout: float = 0.4,
) -> None:
    """Validate continuously until ctx.cancel: a full run first, then a refresh of the Kubernetes
    checks on every relevant watch event (bursts coalesced over `debounce` s) and of everything
    on every `interval` s. Each refresh calls on_report (from this thread) with a full report:
    the checks not re-run keep their last result, `rerun` names those that ran, `api_requests`
    counts that refresh's Kubernetes API requests. Setting `refresh` (an Event the caller owns)
    asks for a full refresh now (the board's "refresh" key). `fast_interval` (None: off): how
    often the fast lane probes the workers' ports (no API request); a change it sees is published
    at once as a provisional refresh (trigger "fast") and confirmed by a full one. Returns within
    about a second of a cancel."""
    Watcher(ctx, interval, on_report, only=only, skip=skip, http_timeout=http_timeout, debounce=debounce,
             watch_timeout=watch_timeout, refresh=refresh, fast_interval=fast_interval, fast_timeout=fast_timeout).run()
