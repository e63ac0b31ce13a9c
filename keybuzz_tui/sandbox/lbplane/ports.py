"""Which local port a Load Balancer listen port is bound to.

Production listens on 80 and 443. The sandbox does too whenever the process may bind ports below
1024 (root, CAP_NET_BIND_SERVICE, or a lowered net.ipv4.ip_unprivileged_port_start); otherwise a
privileged listen port P is bound at P + 20000 (80 -> 20080, 443 -> 20443). 20000 was chosen
because [20000, 21023] avoids everything else the sandbox world uses on its loopback addresses:
the K3s/kubelet ports (2379-2382, 6443, 10010-10259), the KeyBuzz hostPorts (3000, 8080), the
NodePort range (30000-32767) and Linux's ephemeral range (32768-60999). Ports >= 1024 are bound
as they are.

If the chosen port is taken anyway (another process on that loopback address), the listener falls
back to an ephemeral port rather than failing: the effective mapping is always published
(`LoadBalancerPlane.effective_ports`, sandbox.json), so clients never guess.

`port_offset`:
- None (auto): try the real port first, learn once that privileged binds are refused (EACCES),
  then use the default offset for the rest of the run;
- an int: privileged listen ports always get that offset (0 means "real ports, or ephemeral").
"""

from __future__ import annotations

PRIVILEGED_LIMIT = 1024
DEFAULT_PRIVILEGED_OFFSET = 20000


class PortPolicy:
    def __init__(self, offset: int | None) -> None:
        if offset is not None and not 0 <= offset <= 65535 - (PRIVILEGED_LIMIT - 1):
            raise ValueError(f"port_offset must be None or 0..{65535 - (PRIVILEGED_LIMIT - 1)}")
        self.offset = offset
        self._privileged_denied = False
        self._privileged_ok = False

    def candidates(self, listen_port: int, previous: int | None = None) -> list[int]:
        """Ports to try in order; 0 (ephemeral) is always last. `previous` keeps a re-opened
        listener on the port it had, so a published mapping stays valid across reconfiguration."""
        out: list[int] = []
        if previous:
            out.append(previous)
        if listen_port >= PRIVILEGED_LIMIT:
            out.append(listen_port)
        elif self.offset is None:
            if not self._privileged_denied:
                out.append(listen_port)
            out.append(listen_port + DEFAULT_PRIVILEGED_OFFSET)
        else:
            out.append(listen_port + self.offset)
        out.append(0)
        return list(dict.fromkeys(out))

    def note_bound(self, listen_port: int, port: int) -> None:
        if listen_port < PRIVILEGED_LIMIT and port == listen_port:
            self._privileged_ok = True

    def note_privileged_denied(self) -> None:
        self._privileged_denied = True

    def describe(self) -> int | None:
        """The offset privileged ports currently get (0: real ports; None: not known yet)."""
        if self.offset is not None:
            return self.offset
        if self._privileged_denied:
            return DEFAULT_PRIVILEGED_OFFSET
        return 0 if self._privileged_ok else None
