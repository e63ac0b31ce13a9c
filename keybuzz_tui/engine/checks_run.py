"""Running checks and collecting their results: the scheduler and the report.

The scheduler runs a check as soon as the checks it depends on are done, on a small thread pool,
each within its own timeout; it skips (saying why) a check whose prerequisite failed, turns a
check's exception into a failed result instead of a traceback, and stops at once on a cancel.
The doctor runs its own checks through the same `run_checks`.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import CheckResult, Warning_
from ..redact import REDACTOR, safe_error
from . import kubeio
from .checks_base import LAYER_TITLES, LAYERS, STATUS_ORDER, Check, CheckOutcome, CheckRecord
from .checks_state import ValidationState
from .context import Context
from .trace import Hop, first_broken, trace

POOL_SIZE = 6


def _record(check: Check, out: CheckOutcome, duration: float) -> CheckRecord:
    clean = REDACTOR.redact_obj({"detail": out.detail, "remediation": out.remediation, "evidence": out.evidence})
    return CheckRecord(check.id, check.layer, check.title, out.status, clean["detail"], clean["remediation"], clean["evidence"],
                       round(duration, 3), check.source, time.time())


def _outcome_for_error(ctx: Context, check: Check, e: BaseException) -> CheckOutcome:
    if isinstance(e, kubeio.Unreachable):
        return CheckOutcome("fail", f"the Kubernetes API cannot be reached: {safe_error(e)}", "see k8s.api")
    if isinstance(e, kubeio.KubeError):
        ns = ctx.config.namespace
        rem = f"ask for read access to the namespace (`kubectl auth can-i --list -n {ns}`)" if e.status == 403 else "retry; see k8s.api"
        return CheckOutcome("fail", f"Kubernetes API: {e.status} {e.reason}: {e.message}", rem)
    return CheckOutcome("fail", f"{check.id} could not run: {type(e).__name__}: {safe_error(e)}",
                        "this is a bug in keybuzz-tui: please report it with the JSON report (`--report r.json`)")


def run_checks(
    ctx: Context,
    checks: list[Check],
    state: ValidationState,
    *,
    skipped: set[str] | None = None,
    pool_size: int = POOL_SIZE,
    timeout: float | None = None,
    previous: dict[str, CheckRecord] | None = None,
    step: str = "validate",
) -> tuple[dict[str, CheckRecord], bool]:
    """Run checks respecting `requires` (skip when failed) and `after` (ordering), concurrently,
    each within its timeout. Returns (records by id, cancelled). `previous`: records of checks not
    in this run that dependencies may refer to (continuous mode)."""
    skipped = skipped or set()
    default_timeout = timeout or (2 * ctx.request_timeout + 2 * state.http_timeout + 5)
    selected = {c.id for c in checks}
    done: dict[str, CheckRecord] = {}
    known = dict(previous or {})
    pending = list(checks)
    running: dict[cf.Future[CheckOutcome], tuple[Check, float, float]] = {}
    scope = state.counter.current_scope() or state.scope
    pool = cf.ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="keybuzz-validate")
    cancelled = False

    def finish(c: Check, out: CheckOutcome, started: float) -> None:
        rec = _record(c, out, time.monotonic() - started)
        done[c.id] = rec
        state.outcomes[c.id] = rec
        ctx.emit(CheckResult(step=step, check=c.id, layer=c.layer, status=rec.status, title=c.title, detail=rec.detail,
                             remediation=rec.remediation, duration=rec.duration))

    try:
        while pending or running:
            if ctx.cancel.cancelled:
                cancelled = True
                break
            for c in list(pending):
                deps = [d for d in c.requires + c.after if d in selected]
                if any(d not in done for d in deps):
                    continue
                pending.remove(c)
                now = time.monotonic()
                if c.id in skipped:
                    finish(c, CheckOutcome("skip", "skipped on request (--skip)"), now)
                    continue
                blocking = [d for d in c.requires if (done.get(d) or known.get(d)) is not None and d not in skipped
                            and (done.get(d) or known[d]).status in ("fail", "skip")]
                if blocking:
                    d = blocking[0]
                    rec = done.get(d) or known[d]
                    finish(c, CheckOutcome("skip", f"skipped: {d} {'failed' if rec.status == 'fail' else 'was skipped'}"
                                                   f" ({rec.detail[:160]})", f"fix {d} first"), now)
                    continue
                ctx.emit(CheckResult(step=step, check=c.id, layer=c.layer, status="running", title=c.title))
                fut = pool.submit(state.counter.bind(scope, lambda c=c: c.run(ctx, state)))
                running[fut] = (c, now, now + (c.timeout or default_timeout))
            if not running:
                if pending:  # a dependency cycle or a missing prerequisite: never hang
                    for c in pending:
                        finish(c, CheckOutcome("skip", "skipped: its prerequisites never ran"), time.monotonic())
                    pending.clear()
                continue
            nearest = min(dl for _, _, dl in running.values())
            wait = max(0.0, min(0.1, nearest - time.monotonic()))
            finished, _ = cf.wait(list(running), timeout=wait, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                c, started, _ = running.pop(fut)
                try:
                    out = fut.result()
                    if not isinstance(out, CheckOutcome):
                        raise TypeError(f"returned {type(out).__name__}, not a CheckOutcome")
                except Cancelled:
                    out = CheckOutcome("skip", "cancelled")
                except Exception as e:  # noqa: BLE001 - a check's failure is a finding, never a crash
                    out = _outcome_for_error(ctx, c, e)
                finish(c, out, started)
            now = time.monotonic()
            for fut, (c, started, dl) in list(running.items()):
                if now >= dl:
                    running.pop(fut)
                    fut.cancel()
                    finish(c, CheckOutcome("fail", f"did not finish within {dl - started:.3g}s: a call it makes hangs",
                                           "retry; if it keeps timing out, the component this check talks to is overloaded or unreachable"), started)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if cancelled:
        for c in pending + [c for c, _, _ in running.values()]:
            rec = CheckRecord(c.id, c.layer, c.title, "skip", "cancelled before it finished", "", {}, 0.0, c.source, time.time())
            done[c.id] = rec
            ctx.emit(CheckResult(step=step, check=c.id, layer=c.layer, status="skip", title=c.title, detail=rec.detail))
    return done, cancelled


@dataclass
class ValidationReport:
    """The outcome of one validation (or one refresh in continuous mode)."""

    results: list[CheckRecord]
    traces: dict[str, dict[str, list[Hop]]] = field(default_factory=dict)  # host -> worker -> hops
    started_at: float = 0.0
    duration: float = 0.0
    api_requests: int = 0  # Kubernetes API requests made by this run / refresh
    refresh: int = 0  # 0: the first (or only) run; n: the n-th refresh in continuous mode
    trigger: str = "full"  # full | kube (a watch event) | net (the interval) | fast (a fast-lane change, provisional)
    rerun: list[str] = field(default_factory=list)  # check ids run in this refresh
    cancelled: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    api_requests_total: int = 0  # continuous mode: since watch() started
    watch_requests: int = 0  # continuous mode: WATCH connections opened since watch() started
    fast_lane: dict[str, Any] = field(default_factory=dict)  # continuous mode: the fast network probes' budget (0 API requests)

    @property
    def status(self) -> str:
        return max((r.status for r in self.results), key=lambda s: STATUS_ORDER.get(s, 0), default="ok")

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[CheckRecord]:
        return [r for r in self.results if r.status == "fail"]

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def result(self, check_id: str) -> CheckRecord | None:
        return next((r for r in self.results if r.check == check_id), None)

    def by_layer(self) -> list[tuple[str, list[CheckRecord]]]:
        layers = list(LAYERS) + sorted({r.layer for r in self.results} - set(LAYERS))
        return [(ly, [r for r in self.results if r.layer == ly]) for ly in layers if any(r.layer == ly for r in self.results)]

    def first_broken(self) -> dict[str, dict[str, str | None]]:
        """host -> worker -> the first broken hop (None when that path works)."""
        return {host: {node: (fb.hop if (fb := first_broken(hops)) else None) for node, hops in rows.items()} for host, rows in self.traces.items()}

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c['ok']} ok"] + [f"{c[k]} {k}" for k in ("warn", "fail", "skip") if c[k]]
        return f"{len(self.results)} checks: " + ", ".join(parts) + (" (cancelled)" if self.cancelled else "")

    def to_dict(self) -> dict[str, Any]:
        d = {
            "status": self.status,
            "summary": self.summary(),
            "started_at": self.started_at,
            "duration": round(self.duration, 3),
            "refresh": self.refresh,
            "trigger": self.trigger,
            "rerun": list(self.rerun),
            "cancelled": self.cancelled,
            "api_requests": self.api_requests,
            "api_requests_total": self.api_requests_total,
            "watch_requests": self.watch_requests,
            "fast_lane": self.fast_lane,
            "info": self.info,
            "checks": [dataclasses.asdict(r) for r in self.results],
            "layers": {ly: LAYER_TITLES.get(ly, ly) for ly, _ in self.by_layer()},
            "traces": {host: {node: [h.to_dict() for h in hops] for node, hops in rows.items()} for host, rows in self.traces.items()},
            "first_broken": self.first_broken(),
        }
        return REDACTOR.redact_obj(d)  # type: ignore[no-any-return]


def info_for(ctx: Context, state: ValidationState | None) -> dict[str, Any]:
    """The report's header: where it was run (context, namespace, hosts, LB, workers)."""
    cfg = ctx.config
    info: dict[str, Any] = {
        "context": ctx.endpoints.context or cfg.cluster.context or "",
        "namespace": cfg.namespace,
        "hosts": [a.host for a in cfg.apps if a.host],
        "load_balancer": cfg.load_balancer.name,
        "sandbox": ctx.endpoints.sandbox_dir is not None,
    }
    if state is not None:
        try:
            info["workers"] = [w.name for w in state.workers()]
        except Exception:
            info["workers"] = []
        info["kubernetes_version"] = state.server_version
    return info


def traces_for(ctx: Context, state: ValidationState) -> dict[str, dict[str, list[Hop]]]:
    """Every configured host traced from every worker, from the observations in `state`."""
    out: dict[str, dict[str, list[Hop]]] = {}
    for app in ctx.config.apps:
        if not app.host:
            continue
        ctx.cancel.check()
        try:
            out[app.host] = trace(ctx, app.host, state=state)
        except Cancelled:
            raise
        except Exception as e:  # the matrix is an aid: a failure here must not hide the checks
            ctx.emit(Warning_(step="validate", message=f"could not trace {app.host}: {safe_error(e)}"))
    return out
