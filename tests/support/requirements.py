"""Skips that CI turns into failures.

A developer without gnome-keyring or tmux still gets a useful run (those tests skip, saying what to
install), but on CI a missing tool must not turn the tests that prove the product's promises (the
real OS keyring, the real terminal) into silent skips. `.ci/run` sets KEYBUZZ_CI_STRICT=1.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

STRICT_ENV = "KEYBUZZ_CI_STRICT"


def strict() -> bool:
    return os.environ.get(STRICT_ENV) == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`, or fail with it when CI demands every test to really run."""
    if strict():
        pytest.fail(f"{reason} ({STRICT_ENV}=1: on CI this test must run, not skip)", pytrace=False)
    pytest.skip(reason)
