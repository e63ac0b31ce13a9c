"""Cooperative cancellation for engine work running in threads.

Textual waits for thread workers on exit and Ctrl-C must stop an apply between two calls, never
in the middle of one: every loop in the engine checks the token between external calls, and every
external call has its own timeout, so a cancel is honoured within one call's timeout.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised at a safe point after the operator (or the app exiting) asked to stop."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled by the operator") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if cancelled meanwhile (then stop at once)."""
        return self._event.wait(seconds)
