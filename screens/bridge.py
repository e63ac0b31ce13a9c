"""The one way the screens drive the engine: a Context per run whose sink posts EngineEvent
messages to the screen that started the run (they bubble to the app), and a CancelToken per run
that is cancelled when the screen or the app goes away.

The engine runs in thread workers; `post_message` is thread-safe, so progress reaches widgets as
ordinary Textual messages on the UI thread and nothing ever polls engine internals.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.message_pump import MessagePump

from keybuzz_tui.cancel import CancelToken

if TYPE_CHECKING:
    from keybuzz_tui.engine.context import Context
    from keybuzz_tui.engine.platform import Platform
    from keybuzz_tui.events import Event


class EngineEvent(Message):
    """An engine event (already redacted by the Context), delivered on the UI thread.

    Posted to the screen that owns the run and bubbles to the app, which turns warnings into
    notifications and keeps check results for the report. Handlers should not stop() it.
    """

    def __init__(self, event: Event, run: str = "") -> None:
        super().__init__()
        self.event = event
        self.run = run


class RunFinished(Message):
    """A run registered with the bridge ended (ok, failed or cancelled): posted to the app."""

    def __init__(self, run: str, applying: bool, outcome: str) -> None:
        super().__init__()
        self.run = run
        self.applying = applying
        self.outcome = outcome


@dataclass
class Run:
    id: int
    name: str
    owner: MessagePump | None
    cancel: CancelToken
    applying: bool
    started: float = field(default_factory=time.monotonic)
    ctx: Any = None


class EngineBridge:
    """Builds engine Contexts for the app's current world and keeps track of running work."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._runs: dict[int, Run] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.recorded: list[Event] = []  # every event seen, for the report (bounded)

    # --- runs --------------------------------------------------------------------------------

    def context(self, owner: MessagePump | None = None, *, name: str = "", applying: bool = False) -> Context:
        """A Context for one run, registered until `finish(ctx)` (prefer the `run` manager)."""
        from keybuzz_tui.engine.context import Context
        from keybuzz_tui.journal import Journal

        app = self.app
        if app.endpoints is None:
            raise RuntimeError("the platform is not connected yet")
        token = CancelToken()
        run = Run(next(self._ids), name or "run", owner, token, applying)
        ctx = Context(
            app.config,
            app.endpoints,
            app.secrets,
            sink=self._sink(run),
            cancel=token,
            journal=Journal(app.journal_path),
        )
        run.ctx = ctx
        ctx._keybuzz_run = run  # type: ignore[attr-defined]
        with self._lock:
            self._runs[run.id] = run
        return ctx

    def finish(self, ctx: Context, outcome: str = "done") -> None:
        run: Run | None = getattr(ctx, "_keybuzz_run", None)
        with contextlib.suppress(Exception):
            ctx.close()
        if run is None:
            return
        with self._lock:
            self._runs.pop(run.id, None)
        self.app.post_message(RunFinished(run.name, run.applying, outcome))

    @contextlib.contextmanager
    def run(self, owner: MessagePump | None = None, *, name: str = "", applying: bool = False) -> Iterator[Context]:
        """`with bridge.run(self, name="scan") as ctx:` inside a thread worker."""
        ctx = self.context(owner, name=name, applying=applying)
        outcome = "done"
        try:
            yield ctx
        except BaseException as e:
            from keybuzz_tui.cancel import Cancelled

            outcome = "cancelled" if isinstance(e, Cancelled) or ctx.cancel.cancelled else "failed"
            raise
        finally:
            if ctx.cancel.cancelled and outcome == "done":
                outcome = "cancelled"
            self.finish(ctx, outcome)

    def platform(self, ctx: Context) -> Platform:
        from keybuzz_tui.engine.platform import Platform

        return Platform(ctx)

    def _sink(self, run: Run) -> Any:
        app = self.app

        def sink(event: Event) -> None:
            with self._lock:
                self.recorded.append(event)
                if len(self.recorded) > 5000:
                    del self.recorded[:1000]
            msg = EngineEvent(event, run.name)
            owner = run.owner
            if owner is None or owner is app or not owner.post_message(msg):
                app.post_message(msg if owner is None or owner is app else EngineEvent(event, run.name))

        return sink

    # --- cancellation ------------------------------------------------------------------------

    def cancel_owner(self, owner: MessagePump, reason: str) -> None:
        with self._lock:
            runs = [r for r in self._runs.values() if r.owner is owner]
        for r in runs:
            r.cancel.cancel(reason)

    def cancel_all(self, reason: str, *, applying_only: bool = False) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for r in runs:
            if r.applying or not applying_only:
                r.cancel.cancel(reason)

    @property
    def runs(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    @property
    def applying(self) -> list[Run]:
        """Runs that change the platform (apply, rollout, LB, DNS): quitting asks first."""
        return [r for r in self.runs if r.applying]
