"""How the headless CLI shows engine events: readable lines on a terminal, JSON lines with --json.

Both writers take events from the engine's sink (any thread), redact again on the way out, and
never print a traceback: errors arrive as events with a remediation.

The readable printer is written for an operator at 3 a.m.: one line per thing that happened,
every failure followed by what to do (`→ ...`), no repeated lines (a pod flapping between
ErrImagePull and ImagePullBackOff, a BackOff event counted up every few seconds and a warning
that repeats a failed check are shown once), new objects listed by name only (their full content
with --verbose), and a final one-line verdict (`verdict`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any, TextIO

from . import events as ev
from .redact import REDACTOR

SYMBOL = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-", "pending": "…", "running": "…", "info": "·"}
ACTION = {"create": "+", "update": "~", "unchanged": "=", "delete": "-", "manual": "?"}


def _write(out: TextIO, text: str) -> None:
    """Write and flush; a reader that went away (`keybuzz-tui apply | head`) must not stop the
    engine half-way: the rest of the output goes to /dev/null (Python's documented recipe)."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
        except (OSError, ValueError, AttributeError):
            pass


def _indent(text: str, first: str, rest: str) -> list[str]:
    lines = [ln for ln in str(text).splitlines() if ln.strip()] or [""]
    return [first + lines[0], *(rest + ln.strip() for ln in lines[1:])]


class HumanPrinter:
    def __init__(self, out: TextIO | None = None, *, verbose: bool = False, color: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        self.color = self.out.isatty() if color is None else color
        self._lock = threading.Lock()
        self._last_rollout: dict[str, tuple[int, ...]] = {}
        self._pod_states: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._pod_last: dict[tuple[str, str], tuple[str, str]] = {}
        self._kube_events: set[tuple[str, str, str, str]] = set()
        self._warnings: set[tuple[str, str]] = set()
        self._check_remediations: dict[str, str] = {}  # remediation -> detail, of failed checks shown
        self._planned: set[tuple[Any, ...]] = set()

    def _c(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def line(self, text: str) -> None:
        with self._lock:
            _write(self.out, REDACTOR.redact(text) + "\n")

    def lines(self, items: list[str]) -> None:
        for t in items:
            self.line(t)

    def verdict(self, ok: bool, text: str) -> None:
        """The last line of a command: what happened, in one line."""
        self.line(self._c(f"{SYMBOL['ok' if ok else 'fail']} {text}", "1;32" if ok else "1;31"))

    def _remediation(self, remediation: str, message: str, indent: str) -> None:
        if not remediation:
            return
        first = remediation.strip().splitlines()[0].strip() if remediation.strip() else ""
        if first and first in message:  # the message already says what to do (e.g. "What to do: ...")
            return
        self.lines(_indent(remediation, f"{indent}→ ", f"{indent}  "))

    def __call__(self, e: ev.Event) -> None:  # noqa: C901 - one branch per event type reads best
        if isinstance(e, ev.StepStarted):
            self.line(self._c(f"▶ {e.title or e.step}", "1"))
        elif isinstance(e, ev.StepFinished):
            sym = SYMBOL.get(e.status, "·")
            if e.summary:
                self.lines(_indent(e.summary, f"  {sym} {e.step}: ", "      "))
            else:
                self.line(f"  {sym} {e.step}")
        elif isinstance(e, ev.Info):
            head = "plan: " if e.step == "plan" and not e.message.startswith("plan") else ""
            self.lines(_indent(head + e.message, "  ", "    "))
        elif isinstance(e, ev.Warning_):
            key = (e.message, e.remediation)
            if key in self._warnings:
                return
            self._warnings.add(key)
            detail = self._check_remediations.get(e.remediation) if e.remediation else None
            if detail is not None and (not detail or detail in e.message):
                return  # the failed check above already said this, with the same remediation
            self.lines([self._c(t, "33") for t in _indent(e.message, "  ! ", "    ")])
            self._remediation(e.remediation, e.message, "    ")
        elif isinstance(e, ev.ObjectPlanned):
            if e.action == "unchanged" and not self.verbose:
                return
            key = (e.action, e.kind, e.namespace, e.name, e.diff)
            if key in self._planned:
                return  # a step re-plans right before it applies: the plan was shown already
            self._planned.add(key)
            ns = f"{e.namespace}/" if e.namespace else ""
            self.line(f"  {ACTION.get(e.action, '?')} {e.kind} {ns}{e.name}")
            if e.action in ("create", "manual") and not self.verbose:
                return  # a new object: its content is the rendered manifest (--verbose shows it)
            for d in e.diff[:20]:
                self.line(f"      {d}")
            if len(e.diff) > 20:
                self.line(f"      … {len(e.diff) - 20} more")
        elif isinstance(e, ev.ObjectApplied):
            ns = f"{e.namespace}/" if e.namespace else ""
            if e.action == "unchanged" and not self.verbose:
                return
            self.line(f"  {ACTION.get(e.action, '·')} {e.kind} {ns}{e.name} {e.detail}".rstrip())
        elif isinstance(e, ev.RolloutProgress):
            key = (e.desired, e.updated, e.ready, e.available)
            if self._last_rollout.get(e.app) != key:
                self._last_rollout[e.app] = key
                self.line(f"  {e.app}: {e.available}/{e.desired} available, {e.updated} updated, {e.ready} ready {e.message}".rstrip())
        elif isinstance(e, ev.PodProgress):
            who = (e.app, e.node)
            state = (e.phase, e.reason)
            if self._pod_last.get(who) == state:
                return
            self._pod_last[who] = state
            seen = self._pod_states.setdefault(who, set())
            if state in seen and not self.verbose:
                return  # flapping (ErrImagePull <-> ImagePullBackOff, CrashLoopBackOff restarts): said once
            seen.add(state)
            why = f" — {e.reason}: {e.message}" if (e.reason or e.message) and not e.ready else ""
            self.line(f"    {e.node:16} {e.app:16} {e.phase}{why}")
        elif isinstance(e, ev.KubeEvent):
            if e.type_ == "Warning" or self.verbose:
                key = (e.kind, "" if e.kind == "Pod" else e.name, e.reason, e.message)
                if key in self._kube_events and not self.verbose:
                    return  # the same event counted up again, or the same for another pod of the app
                self._kube_events.add(key)
                self.line(f"    {e.type_} {e.reason} {e.kind}/{e.name}: {e.message}")
        elif isinstance(e, ev.ActionProgress):
            if e.status != "running" or self.verbose:
                tail = f" ({e.error})" if e.error else ""
                self.line(f"  {e.command} {e.resource}: {e.status}{tail}")
        elif isinstance(e, ev.TargetHealth):
            if e.status == "unknown" and not self.verbose:
                return  # not checked yet
            self.line(f"    LB {e.lb} :{e.listen_port} → {e.target}: {e.status}")
        elif isinstance(e, ev.CheckResult):
            if e.status in ("pending", "running"):
                return
            node = f" [{e.node}]" if e.node else ""
            self.lines(_indent(f"{SYMBOL.get(e.status, '?')} {e.check}{node}: {e.title}" + (f" — {e.detail}" if e.detail else ""), "  ", "      "))
            if e.status in ("fail", "warn") and e.remediation:
                self._check_remediations[e.remediation] = e.detail
                self._remediation(e.remediation, e.detail, "      ")
        elif isinstance(e, ev.HopResult):
            # the CLI sums the trace up per host after the checks (first broken hop, from which
            # workers); every hop of every path only with --verbose
            if self.verbose:
                self.line(f"    {e.node} {e.host} {e.hop}: {e.status} {e.detail}".rstrip())


class JsonPrinter:
    """One JSON object per line: events as they happen, then a final {"type":"Result",...}."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def write(self, obj: dict[str, Any]) -> None:
        with self._lock:
            _write(self.out, json.dumps(REDACTOR.redact_obj(obj), default=str) + "\n")

    def __call__(self, e: ev.Event) -> None:
        self.write(e.to_dict())
