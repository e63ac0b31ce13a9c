"""How the headless CLI shows engine events: readable lines on a terminal, JSON lines with --json.

Both writers take events from the engine's sink (any thread), redact again on the way out, and
never print a traceback: errors arrive as events with a remediation.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

from . import events as ev
from .redact import REDACTOR

SYMBOL = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-", "pending": "…", "running": "…", "info": "·"}
ACTION = {"create": "+", "update": "~", "unchanged": "=", "delete": "-", "manual": "?"}


class HumanPrinter:
    def __init__(self, out: TextIO | None = None, *, verbose: bool = False, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        self.color = self.out.isatty() if color is None else color
        self._lock = threading.Lock()
        self._last_rollout: dict[str, tuple[int, ...]] = {}
        self._last_pod: dict[tuple[str, str], tuple[str, str]] = {}

    def _c(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def line(self, text: str) -> None:
        with self._lock:
            self.out.write(REDACTOR.redact(text) + "\n")
            self.out.flush()

    def __call__(self, e: ev.Event) -> None:  # noqa: C901 - one branch per event type reads best
        if isinstance(e, ev.StepStarted):
            self.line(self._c(f"▶ {e.title or e.step}", "1"))
        elif isinstance(e, ev.StepFinished):
            sym = SYMBOL.get(e.status, "·")
            self.line(f"  {sym} {e.step}: {e.summary}" if e.summary else f"  {sym} {e.step}")
        elif isinstance(e, ev.Info):
            self.line(f"  {e.message}")
        elif isinstance(e, ev.Warning_):
            self.line(self._c(f"  ! {e.message}", "33"))
            if e.remediation:
                self.line(f"    → {e.remediation}")
        elif isinstance(e, ev.ObjectPlanned):
            if e.action == "unchanged" and not self.verbose:
                return
            ns = f"{e.namespace}/" if e.namespace else ""
            self.line(f"  {ACTION.get(e.action, '?')} {e.kind} {ns}{e.name}")
            for d in e.diff[:20]:
                self.line(f"      {d}")
        elif isinstance(e, ev.ObjectApplied):
            ns = f"{e.namespace}/" if e.namespace else ""
            self.line(f"  {ACTION.get(e.action, '·')} {e.kind} {ns}{e.name} {e.detail}".rstrip())
        elif isinstance(e, ev.RolloutProgress):
            key = (e.desired, e.updated, e.ready, e.available)
            if self._last_rollout.get(e.app) != key:
                self._last_rollout[e.app] = key
                self.line(f"  {e.app}: {e.available}/{e.desired} available, {e.updated} updated, {e.ready} ready {e.message}".rstrip())
        elif isinstance(e, ev.PodProgress):
            key = (e.phase, e.reason)
            if self._last_pod.get((e.app, e.node)) != key:
                self._last_pod[(e.app, e.node)] = key
                why = f" — {e.reason}: {e.message}" if (e.reason or e.message) and not e.ready else ""
                self.line(f"    {e.node:16} {e.app:16} {e.phase}{why}")
        elif isinstance(e, ev.KubeEvent):
            if e.type_ == "Warning" or self.verbose:
                self.line(f"    {e.type_} {e.reason} {e.kind}/{e.name}: {e.message}")
        elif isinstance(e, ev.ActionProgress):
            if e.status != "running" or self.verbose:
                tail = f" ({e.error})" if e.error else ""
                self.line(f"  {e.command} {e.resource}: {e.status}{tail}")
        elif isinstance(e, ev.TargetHealth):
            self.line(f"    LB {e.lb} :{e.listen_port} → {e.target}: {e.status}")
        elif isinstance(e, ev.CheckResult):
            if e.status in ("pending", "running"):
                return
            node = f" [{e.node}]" if e.node else ""
            self.line(f"  {SYMBOL.get(e.status, '?')} {e.check}{node}: {e.title}" + (f" — {e.detail}" if e.detail else ""))
            if e.status in ("fail", "warn") and e.remediation:
                self.line(f"      → {e.remediation}")
        elif isinstance(e, ev.HopResult):
            if self.verbose or e.status == "fail":
                self.line(f"    {e.node} {e.host} {e.hop}: {e.status} {e.detail}".rstrip())


class JsonPrinter:
    """One JSON object per line: events as they happen, then a final {"type":"Result",...}."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def write(self, obj: dict[str, Any]) -> None:
        with self._lock:
            self.out.write(json.dumps(REDACTOR.redact_obj(obj), default=str) + "\n")
            self.out.flush()

    def __call__(self, e: ev.Event) -> None:
        self.write(e.to_dict())
