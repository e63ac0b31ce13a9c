"""The redaction registry: every secret value the process knows, masked in every output.

Secrets are registered the moment they are read (from the keyring, an environment variable, a
prompt) or generated; every writer (CLI lines, JSON events, the journal, reports, log records,
exception texts shown to the operator) passes its text through `redact`. Base64 forms are
registered too, because Kubernetes Secrets carry their values base64-encoded.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from typing import Any

MASK = "••••••"
MIN_LEN = 4  # shorter values would mask innocent text


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_LEN:
            return
        forms = {secret, base64.b64encode(secret.encode()).decode()}
        forms.add(base64.b64encode(secret.encode()).decode().rstrip("="))
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def known(self, text: str) -> bool:
        return bool(self._pattern and self._pattern.search(text))

    def redact(self, text: str) -> str:
        p = self._pattern
        if not p or not text:
            return text
        return p.sub(MASK, text)

    def redact_obj(self, obj: Any) -> Any:
        """Deep-redact strings inside dicts/lists/tuples (events, JSON reports)."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.redact_obj(v) for v in obj)
        return obj

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """Masks secrets in every log record handled by a handler that carries this filter."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = REDACTOR.redact(msg), None
        if record.exc_text:
            record.exc_text = REDACTOR.redact(record.exc_text)
        return True


def safe_error(exc: BaseException) -> str:
    """An exception's text for the operator, secrets masked."""
    text = str(exc) or type(exc).__name__
    return REDACTOR.redact(text)
