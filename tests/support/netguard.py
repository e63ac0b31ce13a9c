"""The network rule, enforced: nothing a test runs may talk outside 127.0.0.0/8 and ::1.

A CPython audit hook sees every socket connect/sendto/getaddrinfo made by Python code in this
process, from any thread and from asyncio, the kubernetes client, hcloud and dnspython alike.
A forbidden call is refused (the hook raises) and recorded, so the test that caused it fails even
when the refusal was swallowed by a retry loop or happened in a server thread. Binding a listening
socket to anything but a loopback address (the wildcard included) is refused too: a sandbox that
listens on every interface would be reachable from outside.

Child processes are guarded the same way: `guard_children` puts `guarded_site/` on PYTHONPATH, so
every Python process a test starts (the CLI, `keybuzz-tui sandbox`, the demo inside tmux) loads a
sitecustomize that installs this hook and appends each violation to a log file that the suite's
autouse fixture reads after every test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

_ALLOWED_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class ForbiddenNetworkAccess(PermissionError):
    """Raised inside the offending call; also recorded for the test's teardown."""


@dataclass
class Guard:
    enabled: bool = True
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    child_log: str | None = None  # set in a guarded child process: violations go to this file

    def record(self, what: str) -> None:
        with self.lock:
            self.violations.append(what)
        if self.child_log:
            line = f"pid {os.getpid()} ({' '.join(sys.argv)[:200]}): {what}".replace("\n", " ") + "\n"
            fd = os.open(self.child_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8", "replace"))
            finally:
                os.close(fd)

    def take(self) -> list[str]:
        with self.lock:
            out, self.violations = self.violations, []
        return out


GUARD = Guard()


def is_loopback_host(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) means the local wildcard
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    h = host.strip("[]").split("%", 1)[0].lower()
    if h in _ALLOWED_NAMES or h.endswith(".localhost") or h == "":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _bind_ok(family: object, address: object) -> bool:
    if family == socket.AF_UNIX or isinstance(address, (str, bytes)):
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host in ("", None):
            return False  # the wildcard: every interface
        return is_loopback_host(host)
    return True


def _address_ok(family: object, address: object) -> bool:
    if family == socket.AF_UNIX or isinstance(address, (str, bytes)):
        return True  # unix sockets (D-Bus, tmux) never leave the machine
    if isinstance(address, tuple) and address:
        return is_loopback_host(address[0])
    return True


def _hook(event: str, args: tuple) -> None:
    if not GUARD.enabled:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[-1]
        family = getattr(sock, "family", None)
        if event == "socket.sendmsg" and address is None:
            return
        if not _address_ok(family, address):
            what = f"{event} to {address!r}"
            GUARD.record(what)
            raise ForbiddenNetworkAccess(f"network rule: {what} is outside 127.0.0.0/8 and ::1")
    elif event == "socket.bind":
        sock, address = args[0], args[1]
        family = getattr(sock, "family", None)
        if family in (socket.AF_INET, socket.AF_INET6) and not _bind_ok(family, address):
            what = f"socket.bind to {address!r}"
            GUARD.record(what)
            raise ForbiddenNetworkAccess(f"network rule: {what} would listen outside 127.0.0.0/8 and ::1")
    elif event == "socket.getaddrinfo":
        host = args[0]
        if not is_loopback_host(host):
            what = f"getaddrinfo({host!r})"
            GUARD.record(what)
            raise ForbiddenNetworkAccess(f"network rule: name lookup {what} would leave loopback")
    elif event == "socket.gethostbyname":
        if not is_loopback_host(args[0]):
            what = f"gethostbyname({args[0]!r})"
            GUARD.record(what)
            raise ForbiddenNetworkAccess(f"network rule: name lookup {what} would leave loopback")


_installed = False


def install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


# --- child processes ------------------------------------------------------------------------------

LOG_ENV = "KEYBUZZ_NETGUARD_LOG"
SITE_DIR = Path(__file__).resolve().parent / "guarded_site"


def install_child(log_path: str) -> None:
    """In a child process (from guarded_site/sitecustomize.py): guard it, and log what it breaks."""
    GUARD.child_log = log_path
    install()


def child_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a child process that must be guarded (for tests that build an environment from
    scratch instead of inheriting this process's)."""
    out = dict(env)
    if os.environ.get(LOG_ENV):
        out[LOG_ENV] = os.environ[LOG_ENV]
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE_DIR), env.get("PYTHONPATH", "")) if p)
    return out


class ChildLog:
    """The file the guarded children of this process report to, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        path.touch()

    def take(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


def guard_children(log_path: Path) -> ChildLog:
    """From now on every Python process this one starts (inheriting its environment) is guarded."""
    os.environ[LOG_ENV] = str(log_path)
    current = os.environ.get("PYTHONPATH", "")
    if str(SITE_DIR) not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE_DIR), current) if p)
    return ChildLog(log_path)
