"""The journal: one JSON line per change applied, in the platform's state directory.

It is how a re-run (or an on-call engineer) knows what was done and what was interrupted: a run
writes `run-started`, one line per object or Hetzner resource it changes, and `run-finished`.
A run with no `run-finished` line was interrupted. Every line passes through the redaction
registry, and no field ever carries a secret value in the first place.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .redact import REDACTOR


class Journal:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.run_id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        rec = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run": self.run_id, "event": event, **fields}
        line = REDACTOR.redact(json.dumps(rec, sort_keys=False, default=str))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

    def new_run(self) -> str:
        """A fresh run id: one session (the wizard) may apply, then repair, with one journal."""
        self.run_id = uuid.uuid4().hex[:12]
        return self.run_id

    def start_run(self, command: str, **fields: Any) -> None:
        self.write("run-started", command=command, host=socket.gethostname(), user=os.environ.get("USER", ""), **fields)

    def finish_run(self, status: str, **fields: Any) -> None:
        self.write("run-finished", status=status, **fields)

    def entries(self) -> Iterator[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return
        with self.path.open() as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash: skip it, the rest is still history

    def last_run(self) -> list[dict[str, Any]]:
        runs: dict[str, list[dict[str, Any]]] = {}
        order: list[str] = []
        for e in self.entries():
            rid = e.get("run", "")
            if rid not in runs:
                runs[rid] = []
                order.append(rid)
            runs[rid].append(e)
        return runs[order[-1]] if order else []

    def interrupted_runs(self) -> list[list[dict[str, Any]]]:
        """Runs that started an apply and never wrote run-finished (crash, kill, lost connection)."""
        runs: dict[str, list[dict[str, Any]]] = {}
        for e in self.entries():
            runs.setdefault(e.get("run", ""), []).append(e)
        out = []
        for entries in runs.values():
            started = any(e.get("event") == "run-started" and e.get("command") in ("apply", "repair") for e in entries)
            finished = any(e.get("event") == "run-finished" for e in entries)
            if started and not finished:
                out.append(entries)
        return out
