"""The network rule, enforced: nothing a test runs may talk outside 127.0.0.0/8 and ::1.

A CPython audit hook sees every socket connect/sendto/getaddrinfo made by Python code in this
process, from any thread and from asyncio, the kubernetes client, hcloud and dnspython alike.
A forbidden call is refused (the hook raises) and recorded, so the test that caused it fails even
when the refusal was swallowed by a retry loop or happened in a server thread.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from dataclasses import dataclass, field

_ALLOWED_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class ForbiddenNetworkAccess(PermissionError):
    """Raised inside the offending call; also recorded for the test's teardown."""


@dataclass
class Guard:
    enabled: bool = True
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str) -> None:
        with self.lock:
            self.violations.append(what)

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
